//! The staff-authentication security tables (migration 0004): TOTP enrolments (sealed secrets only), one-time
//! recovery codes (keyed hashes only), the step-up time on bearer tokens, and failed-login counters.
//!
//! Every "use once" rule is a single conditional `UPDATE`, so it holds across several servers sharing one
//! database: a TOTP time step is accepted only if it is newer than the last one, a recovery code only while it is
//! unused. Failed-login counters are updated compare-and-swap on a `revision` column.

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

/// A user's TOTP enrolment.
#[derive(Debug, Clone)]
pub struct MfaRow {
    /// The user.
    pub user_id: String,
    /// The TOTP secret, sealed by the layer above (never plaintext).
    pub secret_sealed: Vec<u8>,
    /// Version of the key it is sealed under.
    pub key_version: i64,
    /// When the enrolment was confirmed with a first code; `None` while pending.
    pub confirmed_at: Option<i64>,
    /// The last accepted TOTP time step.
    pub last_step: Option<i64>,
}

/// Failed-login bookkeeping for one account or one client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailureRow {
    /// Failures in the current window.
    pub failures: i64,
    /// Start of the current window, Unix ms.
    pub window_start: i64,
    /// Lock-outs so far (the exponent of the back-off).
    pub lockouts: i64,
    /// Locked until, Unix ms.
    pub locked_until: Option<i64>,
    /// Last failure, Unix ms.
    pub last_failure_at: i64,
    /// Incremented on every write (compare-and-swap).
    pub revision: i64,
}

impl Store {
    /// Starts (or restarts) a TOTP enrolment. Refused — returns `false` — if the user already has a confirmed one.
    pub async fn put_pending_mfa(
        &self,
        user_id: &str,
        secret_sealed: &[u8],
        key_version: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO user_mfa (user_id, secret_ct, key_version, confirmed_at, last_step, created_at, updated_at) \
                 VALUES ($1, $2, $3, NULL, NULL, $4, $4) \
                 ON CONFLICT (user_id) DO UPDATE SET secret_ct = $2, key_version = $3, last_step = NULL, \
                 created_at = $4, updated_at = $4 WHERE user_mfa.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(secret_sealed)
            .bind(key_version)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// A user's enrolment, pending or confirmed.
    pub async fn mfa_by_user(&self, user_id: &str) -> StoreResult<Option<MfaRow>> {
        let row = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT user_id, secret_ct, key_version, confirmed_at, last_step FROM user_mfa WHERE user_id = $1",
            )
            .bind(user_id)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<MfaRow, sqlx::Error> {
                Ok(MfaRow {
                    user_id: row.try_get("user_id")?,
                    secret_sealed: row.try_get("secret_ct")?,
                    key_version: row.try_get("key_version")?,
                    confirmed_at: row.try_get("confirmed_at")?,
                    last_step: row.try_get("last_step")?,
                })
            })
        });
        Ok(row.transpose()?)
    }

    /// Confirms a pending enrolment with the time step of its first code and replaces the user's recovery codes,
    /// in one transaction. Returns `false` (and changes nothing) if there was no pending enrolment.
    pub async fn confirm_mfa(
        &self,
        user_id: &str,
        step: i64,
        recovery_code_hashes: &[Vec<u8>],
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let confirmed = sqlx::query(
                "UPDATE user_mfa SET confirmed_at = $2, last_step = $3, updated_at = $2 \
                 WHERE user_id = $1 AND confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .bind(step)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if confirmed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("DELETE FROM recovery_code WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for hash in recovery_code_hashes {
                sqlx::query(
                    "INSERT INTO recovery_code (user_id, code_hash, used_at, created_at) VALUES ($1, $2, NULL, $3)",
                )
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Accepts TOTP time step `step` for a confirmed enrolment if it is newer than every step accepted before.
    /// Returns whether it was accepted; a replayed (or older) step is refused.
    pub async fn accept_totp_step(&self, user_id: &str, step: i64, now: i64) -> StoreResult<bool> {
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE user_mfa SET last_step = $2, updated_at = $3 \
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)",
            )
            .bind(user_id)
            .bind(step)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// Uses up a recovery code. Returns whether it existed and was unused.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE recovery_code SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(code_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// How many unused recovery codes a user has left.
    pub async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64> {
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM recovery_code WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .fetch_one(pool)
            .await
        })?;
        Ok(count)
    }

    /// Removes a user's enrolment and recovery codes (lost authenticator, reset by an administrator).
    pub async fn delete_mfa(
        &self,
        user_id: &str,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        let deleted = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM recovery_code WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM user_mfa WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(deleted)
        })?;
        Ok(deleted == 1)
    }

    /// Records that the holder of an active token proved a second factor now.
    pub async fn mark_token_mfa_verified(&self, token_hash: &[u8], now: i64) -> StoreResult<bool> {
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE auth_token SET mfa_verified_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(token_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// When the holder of an active, unexpired token last proved a second factor.
    pub async fn token_mfa_verified_at(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let value = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT mfa_verified_at FROM auth_token \
                 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        Ok(value.flatten())
    }

    /// The failed-login counter of one subject in `scope`.
    pub async fn login_failure(
        &self,
        scope: &str,
        subject: &[u8],
    ) -> StoreResult<Option<LoginFailureRow>> {
        let row = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT failures, window_start, lockouts, locked_until, last_failure_at, revision \
                 FROM login_failure WHERE scope = $1 AND subject = $2",
            )
            .bind(scope)
            .bind(subject)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<LoginFailureRow, sqlx::Error> {
                Ok(LoginFailureRow {
                    failures: row.try_get("failures")?,
                    window_start: row.try_get("window_start")?,
                    lockouts: row.try_get("lockouts")?,
                    locked_until: row.try_get("locked_until")?,
                    last_failure_at: row.try_get("last_failure_at")?,
                    revision: row.try_get("revision")?,
                })
            })
        });
        Ok(row.transpose()?)
    }

    /// Writes a failed-login counter if nobody else wrote it since it was read: `previous_revision` is the revision
    /// read (`None` if there was no row). Returns `false` when another writer won; read again and retry.
    pub async fn put_login_failure(
        &self,
        scope: &str,
        subject: &[u8],
        row: &LoginFailureRow,
        previous_revision: Option<i64>,
    ) -> StoreResult<bool> {
        let changed = with_pool!(self, |pool| {
            match previous_revision {
                None => sqlx::query(
                    "INSERT INTO login_failure \
                     (scope, subject, failures, window_start, lockouts, locked_until, last_failure_at, revision) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (scope, subject) DO NOTHING",
                )
                .bind(scope)
                .bind(subject)
                .bind(row.failures)
                .bind(row.window_start)
                .bind(row.lockouts)
                .bind(row.locked_until)
                .bind(row.last_failure_at)
                .bind(row.revision)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
                Some(previous) => sqlx::query(
                    "UPDATE login_failure SET failures = $3, window_start = $4, lockouts = $5, locked_until = $6, \
                     last_failure_at = $7, revision = $8 WHERE scope = $1 AND subject = $2 AND revision = $9",
                )
                .bind(scope)
                .bind(subject)
                .bind(row.failures)
                .bind(row.window_start)
                .bind(row.lockouts)
                .bind(row.locked_until)
                .bind(row.last_failure_at)
                .bind(row.revision)
                .bind(previous)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
            }
        })?;
        Ok(changed == 1)
    }

    /// Forgets the failed-login counter of one subject (after a successful login).
    pub async fn clear_login_failure(&self, scope: &str, subject: &[u8]) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM login_failure WHERE scope = $1 AND subject = $2")
                .bind(scope)
                .bind(subject)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes counters whose last failure is older than `before` and which are not locked at `now`.
    pub async fn prune_login_failures(&self, before: i64, now: i64) -> StoreResult<u64> {
        let deleted = with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM login_failure WHERE last_failure_at < $1 \
                 AND (locked_until IS NULL OR locked_until < $2)",
            )
            .bind(before)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(deleted)
    }
}
