//! Staff accounts and their bearer tokens (stored as hashes only).

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

/// A staff account.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// User id (UUIDv7 text).
    pub id: String,
    /// Unique login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role name.
    pub role: String,
    /// Team name, if any.
    pub team: Option<String>,
    /// Disabled accounts cannot log in and their tokens stop working.
    pub disabled: bool,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
}

/// A bearer token, identified by the SHA-256 of its secret.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Whose token it is.
    pub user_id: String,
    /// Issued at, Unix ms.
    pub created_at: i64,
    /// Expires at, Unix ms.
    pub expires_at: i64,
    /// Name of an API token (`None` for a login session).
    pub name: Option<String>,
    /// JSON array of scopes of an API token (`None` for a login session: the role decides).
    pub scopes: Option<String>,
}

macro_rules! user_from_row {
    ($row:expr) => {
        (|| -> Result<UserRow, sqlx::Error> {
            Ok(UserRow {
                id: $row.try_get("id")?,
                username: $row.try_get("username")?,
                password_hash: $row.try_get("password_hash")?,
                role: $row.try_get("role")?,
                team: $row.try_get("team")?,
                disabled: $row.try_get("disabled")?,
                created_at: $row.try_get("created_at")?,
                updated_at: $row.try_get("updated_at")?,
            })
        })()
    };
}

const USER_COLUMNS: &str =
    "app_user.id, app_user.username, app_user.password_hash, app_user.role, app_user.team, \
     app_user.disabled, app_user.created_at, app_user.updated_at";

impl Store {
    /// Adds a user; a taken username is a [`crate::StoreError::Conflict`].
    pub async fn insert_user(
        &self,
        user: &UserRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected =             sqlx::query(
                "INSERT INTO app_user (id, username, password_hash, role, team, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(&user.role)
            .bind(&user.team)
            .bind(user.disabled)
            .bind(user.created_at)
            .bind(user.updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if affected > 0 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(affected)
        })?;
        Ok(())
    }

    /// A user by login name.
    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM app_user WHERE username = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(username)
                .fetch_optional(pool)
                .await?
                .map(|row| user_from_row!(row))
        });
        Ok(row.transpose()?)
    }

    /// A user by id.
    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM app_user WHERE id = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| user_from_row!(row))
        });
        Ok(row.transpose()?)
    }

    /// All users, by name.
    pub async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM app_user ORDER BY username");
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| user_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Replaces a user's password hash and disabled flag. Returns whether the user exists.
    pub async fn update_user_credentials(
        &self,
        id: &str,
        password_hash: &str,
        disabled: bool,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected = sqlx::query(
                "UPDATE app_user SET password_hash = $2, disabled = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(password_hash)
            .bind(disabled)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if affected > 0 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(affected)
        })?;
        Ok(result == 1)
    }

    /// Sets a user's role and team. Returns whether the user exists. The role takes effect on the user's next
    /// request: sessions carry no role of their own (see [`Store::user_by_token`]).
    pub async fn update_user_role_team(
        &self,
        id: &str,
        role: &str,
        team: Option<&str>,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected = sqlx::query(
                "UPDATE app_user SET role = $2, team = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(role)
            .bind(team)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if affected > 0 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(affected)
        })?;
        Ok(result == 1)
    }

    /// Stores a new token.
    pub async fn insert_token(
        &self,
        token: &TokenRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected =             sqlx::query(
                "INSERT INTO auth_token (token_hash, user_id, created_at, expires_at, name, scopes) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&token.token_hash)
            .bind(&token.user_id)
            .bind(token.created_at)
            .bind(token.expires_at)
            .bind(&token.name)
            .bind(&token.scopes)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if affected > 0 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(affected)
        })?;
        Ok(())
    }

    /// The enabled user owning an unexpired, unrevoked token with this hash, and the token's scopes (JSON; `None`
    /// for a login session).
    pub async fn user_by_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<(UserRow, Option<String>)>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, auth_token.scopes AS token_scopes FROM auth_token \
             JOIN app_user ON app_user.id = auth_token.user_id \
             WHERE auth_token.token_hash = $1 AND auth_token.revoked_at IS NULL \
             AND auth_token.expires_at > $2 AND app_user.disabled = FALSE"
        );
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<(UserRow, Option<String>), sqlx::Error> {
                    let scopes: Option<String> = row.try_get("token_scopes")?;
                    Ok((user_from_row!(row)?, scopes))
                })
        });
        Ok(row.transpose()?)
    }

    /// A user's active tokens, newest first.
    pub async fn active_tokens(&self, user_id: &str, now: i64) -> StoreResult<Vec<TokenRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT token_hash, user_id, created_at, expires_at, name, scopes FROM auth_token \
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC",
            )
            .bind(user_id)
            .bind(now)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<TokenRow, sqlx::Error> {
                Ok(TokenRow {
                    token_hash: row.try_get("token_hash")?,
                    user_id: row.try_get("user_id")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    name: row.try_get("name")?,
                    scopes: row.try_get("scopes")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Revokes one token. Returns whether it existed and was active.
    pub async fn revoke_token(
        &self,
        token_hash: &[u8],
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected =             sqlx::query(
                "UPDATE auth_token SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(token_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if affected > 0 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(affected)
        })?;
        Ok(result == 1)
    }

    /// Revokes every active token of a user (on disable or password reset).
    pub async fn revoke_user_tokens(
        &self,
        user_id: &str,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<u64> {
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected = sqlx::query(
                "UPDATE auth_token SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if affected > 0 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(affected)
        })?;
        Ok(result)
    }
}
