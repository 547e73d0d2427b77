//! Staff users, roles, passwords (Argon2id, checked against [`crate::password_policy`]) and opaque bearer tokens
//! (stored as SHA-256 hashes, with expiry). Logins go through the lock-out counters of [`lockout`] and, for users
//! with MFA, the second factor of [`crate::mfa`].

use crate::audit::{event, EventExt, Outcome};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use veil_store::{StoreError, TokenRow, UserRow};
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult, FieldError};
use crate::ids::UserId;
use crate::{format_time, now_ms, Veil};

pub mod admin;
pub mod lockout;

pub use crate::password_policy::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

/// How long a bearer token lives.
pub const TOKEN_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

/// Staff roles (see `interface.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Users and settings; customer data masked like anyone else.
    Admin,
    /// Data-protection officer: approves unmask requests, reads the audit log.
    Dpo,
    /// Customers of their team.
    Manager,
    /// Customers they own.
    Sales,
    /// Customers linked to their tickets.
    Service,
    /// Audit log, read-only.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Dpo,
        Role::Manager,
        Role::Sales,
        Role::Service,
        Role::Auditor,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dpo => "dpo",
            Role::Manager => "manager",
            Role::Sales => "sales",
            Role::Service => "service",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown role {text:?}; expected one of {}",
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })
    }
}

/// The authenticated caller of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Who.
    pub user_id: UserId,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Team, if any.
    pub team: Option<String>,
    /// The scopes of the API token used, or `None` for a login session (the role alone decides).
    pub scopes: Option<Vec<crate::tokens::Scope>>,
    /// The client address the request came from (set by the HTTP layer), for the audit trail.
    pub source_ip: Option<String>,
}

/// A password. Zeroized on drop, redacted in `Debug`, never serialised.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: String) -> Self {
        Password(Zeroizing::new(password))
    }

    /// A random 20-character password (for generated accounts).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 15];
        OsRng.fill_bytes(&mut bytes);
        Password::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The password text — only to show a generated password once to the person who asked for it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Password(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Password::new)
    }
}

/// A bearer token, shown once at login. Redacted in `Debug`.
#[derive(Clone)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// The token text, for the login response only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("BearerToken(<redacted>)")
    }
}

/// A user as listed (no password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// User id.
    #[schema(value_type = String)]
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Team.
    pub team: Option<String>,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token.
    pub token: BearerToken,
    /// Unix ms.
    pub expires_at: i64,
    /// Who logged in.
    pub actor: Actor,
    /// The login proved a second factor (the token counts as freshly verified for step-up checks).
    pub mfa_verified: bool,
    /// The user's role must use MFA and the user has not enrolled yet.
    pub mfa_enrollment_required: bool,
}

/// One login attempt.
#[derive(Debug, Clone, Copy)]
pub struct LoginAttempt<'a> {
    /// Login name as typed.
    pub username: &'a str,
    /// Password.
    pub password: &'a Password,
    /// A TOTP code or a recovery code, required when the user has MFA enabled.
    pub second_factor: Option<&'a str>,
    /// The client's address, for the per-address lock-out; `None` when unknown (only the per-account lock-out
    /// applies then).
    pub client: Option<IpAddr>,
}

/// Why a login (or a step-up) failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Too many failures: the account or the client address is locked out for a while. Said the same way for
    /// usernames that do not exist.
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    Locked {
        /// Seconds until the lock-out ends.
        retry_after_secs: u64,
    },
    /// The password was right, but the user has MFA enabled and no second factor was given.
    #[error("a second factor (TOTP code or recovery code) is required")]
    MfaRequired,
    /// The password was right, but the second factor was wrong or already used.
    #[error("the second factor is wrong, expired or was already used")]
    MfaInvalid,
    /// Wrong credentials (`Unauthenticated`) or another failure.
    #[error(transparent)]
    App(#[from] AppError),
}

impl LoginError {
    pub(crate) fn locked(remaining_ms: i64) -> LoginError {
        LoginError::Locked {
            retry_after_secs: (remaining_ms.max(1) as u64).div_ceil(1000),
        }
    }
}

impl From<veil_store::StoreError> for LoginError {
    fn from(error: veil_store::StoreError) -> Self {
        LoginError::App(error.into())
    }
}

pub(crate) fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn hash_password(password: &Password) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AppError::Internal(format!("password hashing failed: {error}")))
}

fn verify_password(password: &Password, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A PHC hash of a random password, verified against when the username does not exist, so that response time does
/// not reveal which usernames exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&Password::generate()).unwrap_or_default())
}

fn validate_username(username: &str) -> AppResult<()> {
    let ok = (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "._-".contains(character));
    if ok {
        Ok(())
    } else {
        Err(AppError::Validation(vec![FieldError::new(
            "username",
            "invalid",
            "3 to 64 characters: letters, digits, '.', '_' or '-'",
        )]))
    }
}

/// Applies the password policy off the async executor (zxcvbn takes a few milliseconds).
async fn validate_password(password: &Password, username: &str) -> AppResult<()> {
    let password = password.clone();
    let username = username.to_owned();
    blocking(move || crate::password_policy::check_password(password.expose(), &username))
        .await?
        .map_err(AppError::Validation)
}

fn actor_of(row: &UserRow) -> AppResult<Actor> {
    Ok(Actor {
        user_id: row
            .id
            .parse()
            .map_err(|_| AppError::Internal("malformed user id in database".to_owned()))?,
        username: row.username.clone(),
        role: row.role.parse().map_err(AppError::Internal)?,
        team: row.team.clone(),
        scopes: None,
        source_ip: None,
    })
}

fn user_view(row: &UserRow) -> AppResult<UserView> {
    let actor = actor_of(row)?;
    Ok(UserView {
        id: actor.user_id,
        username: actor.username,
        role: actor.role,
        team: actor.team,
        disabled: row.disabled,
        created_at: format_time(row.created_at),
    })
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| AppError::Internal(error.to_string()))
}

impl Veil {
    /// Adds a user with the given password (hashed with Argon2id).
    pub async fn add_user(
        &self,
        username: &str,
        role: Role,
        team: Option<&str>,
        password: &Password,
    ) -> AppResult<UserView> {
        self.insert_new_user(None, username, role, team, password)
            .await
    }

    /// [`Veil::add_user`], recorded as done by `actor` (an admin in the web UI) or by the operator (`None`).
    pub(crate) async fn insert_new_user(
        &self,
        actor: Option<&Actor>,
        username: &str,
        role: Role,
        team: Option<&str>,
        password: &Password,
    ) -> AppResult<UserView> {
        validate_username(username)?;
        validate_password(password, username).await?;
        let password = password.clone();
        let password_hash = blocking(move || hash_password(&password)).await??;
        let now = now_ms();
        let row = UserRow {
            id: UserId::new().to_string(),
            username: username.to_owned(),
            password_hash,
            role: role.as_str().to_owned(),
            team: team.map(str::to_owned),
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        let entry = event(actor, "user.add", Outcome::Ok).detail(serde_json::json!({
            "user_id": row.id, "username": row.username, "role": row.role, "team": row.team,
        }));
        self.store()
            .insert_user(&row, &[entry])
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => {
                    AppError::Conflict(format!("username {username} is taken"))
                }
                other => other.into(),
            })?;
        tracing::info!(user = %row.id, role = role.as_str(), "user added");
        user_view(&row)
    }

    /// All users.
    pub async fn list_users(&self) -> AppResult<Vec<UserView>> {
        self.store()
            .list_users()
            .await?
            .iter()
            .map(user_view)
            .collect()
    }

    /// Sets a new password (and re-enables the account); ends all its sessions.
    pub async fn reset_password(&self, username: &str, password: &Password) -> AppResult<()> {
        validate_password(password, username).await?;
        let user = self
            .store()
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        let password = password.clone();
        let hash = blocking(move || hash_password(&password)).await??;
        let now = now_ms();
        let target = serde_json::json!({"user_id": user.id, "username": user.username});
        self.store()
            .update_user_credentials(
                &user.id,
                &hash,
                false,
                now,
                &[event(None, "user.reset_password", Outcome::Ok).detail(target.clone())],
            )
            .await?;
        self.store()
            .revoke_user_tokens(
                &user.id,
                now,
                &[event(None, "auth.sessions_revoked", Outcome::Ok).detail(target)],
            )
            .await?;
        Ok(())
    }

    /// Changes the caller's own password: the current one must be right (a session alone is not enough, so an
    /// unattended browser cannot take the account over), the new one must pass the password policy. Every session
    /// and token of the user ends, this one included: they sign in again with the new password.
    pub async fn change_password(
        &self,
        actor: &Actor,
        current: &Password,
        new: &Password,
    ) -> AppResult<()> {
        let user = self
            .store()
            .user_by_id(&actor.user_id.to_string())
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let (typed, stored) = (current.clone(), user.password_hash.clone());
        if !blocking(move || verify_password(&typed, &stored)).await? {
            self.record_best_effort(
                &[event(Some(actor), "user.change_password", Outcome::Failed)
                    .detail(serde_json::json!({"reason": "wrong current password"}))],
            )
            .await;
            return Err(AppError::Validation(vec![FieldError::new(
                "current_password",
                "mismatch",
                "the current password is wrong",
            )]));
        }
        validate_password(new, &user.username).await?;
        let new = new.clone();
        let hash = blocking(move || hash_password(&new)).await??;
        let now = now_ms();
        let target = serde_json::json!({"user_id": user.id, "username": user.username});
        self.store()
            .update_user_credentials(
                &user.id,
                &hash,
                user.disabled,
                now,
                &[event(Some(actor), "user.change_password", Outcome::Ok).detail(target.clone())],
            )
            .await?;
        self.store()
            .revoke_user_tokens(
                &user.id,
                now,
                &[event(Some(actor), "auth.sessions_revoked", Outcome::Ok).detail(target)],
            )
            .await?;
        Ok(())
    }

    /// Disables an account and ends all its sessions at once.
    pub async fn disable_user(&self, username: &str) -> AppResult<()> {
        self.set_disabled(None, username, true).await
    }

    /// Disables an account (ending all its sessions at once) or enables it again (it signs in anew), recorded as
    /// done by `actor` or by the operator (`None`).
    pub(crate) async fn set_disabled(
        &self,
        actor: Option<&Actor>,
        username: &str,
        disabled: bool,
    ) -> AppResult<()> {
        let user = self
            .store()
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        let now = now_ms();
        let target = serde_json::json!({"user_id": user.id, "username": user.username});
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.store()
            .update_user_credentials(
                &user.id,
                &user.password_hash,
                disabled,
                now,
                &[event(actor, action, Outcome::Ok).detail(target.clone())],
            )
            .await?;
        if disabled {
            self.store()
                .revoke_user_tokens(
                    &user.id,
                    now,
                    &[event(actor, "auth.sessions_revoked", Outcome::Ok).detail(target)],
                )
                .await?;
        }
        tracing::info!(user = %user.id, disabled, "user disabled or enabled");
        Ok(())
    }

    /// Checks a username and password and issues a bearer token, with no second factor and no client address
    /// (CLI, tests). Lock-outs count; a user with MFA enabled cannot log in this way.
    pub async fn login(&self, username: &str, password: &Password) -> AppResult<Session> {
        self.login_with(LoginAttempt {
            username,
            password,
            second_factor: None,
            client: None,
        })
        .await
        .map_err(|error| match error {
            LoginError::App(error) => error,
            LoginError::Locked { .. } => {
                AppError::Forbidden("too many failed logins: the account is locked for a while")
            }
            LoginError::MfaRequired | LoginError::MfaInvalid => AppError::Unauthenticated,
        })
    }

    /// Checks a login attempt and issues a bearer token.
    ///
    /// 1. If the account (the username as typed, existing or not) or the client address is locked out, the attempt
    ///    is refused with [`LoginError::Locked`] before the password is looked at.
    /// 2. The password is verified (against a dummy hash for unknown or disabled users, so timing says nothing);
    ///    a failure counts against the account and the address.
    /// 3. A user with MFA enabled must give a TOTP code (accepted once only) or an unused recovery code; a wrong
    ///    one counts as a failure too.
    /// 4. Success clears the account's counter and issues the token, stamped as MFA-verified when a second factor
    ///    was given.
    pub async fn login_with(&self, attempt: LoginAttempt<'_>) -> Result<Session, LoginError> {
        use lockout::{address_key, ACCOUNT_THROTTLE, ADDRESS_THROTTLE};
        let now = now_ms();
        let keys = self.mfa_keys().await?;
        let account = (
            ACCOUNT_THROTTLE,
            keys.subject(ACCOUNT_THROTTLE.scope, attempt.username),
        );
        let mut subjects = vec![account.clone()];
        if let Some(address) = attempt.client {
            subjects.push((
                ADDRESS_THROTTLE,
                keys.subject(ADDRESS_THROTTLE.scope, &address_key(address)),
            ));
        }
        let source_ip = attempt.client.map(|address| address.to_string());
        // A name that matches no account may be a password typed into the wrong box: the trail keeps a keyed
        // fingerprint of it (stable, so bursts against one name are still visible), never the text.
        let tried_name = if self
            .store()
            .user_by_username(attempt.username)
            .await?
            .is_some()
        {
            attempt.username.to_owned()
        } else {
            let fingerprint = keys.subject("audit_unknown_user", attempt.username);
            format!("unknown:{}", crate::audit::hex(&fingerprint[..8]))
        };
        let attempt_event = |outcome: Outcome, reason: &str| {
            let mut entry = event(None, "auth.login", outcome);
            entry.actor_name = Some(tried_name.clone());
            entry.source_ip = source_ip.clone();
            entry.detail(serde_json::json!({"reason": reason}))
        };
        if let Some(remaining) = self.lock_remaining(&subjects, now).await? {
            self.record_best_effort(&[attempt_event(Outcome::Denied, "locked_out")])
                .await;
            tracing::warn!("login refused: locked out");
            return Err(LoginError::locked(remaining));
        }
        let user = self.store().user_by_username(attempt.username).await?;
        let hash = user
            .as_ref()
            .filter(|user| !user.disabled)
            .map(|user| user.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_owned());
        let candidate = attempt.password.clone();
        let verified = blocking(move || verify_password(&candidate, &hash)).await?;
        let user = match user {
            Some(user) if verified && !user.disabled => user,
            _ => {
                self.record_failures(&subjects, now).await?;
                let mut entry = attempt_event(Outcome::Failed, "bad_credentials");
                entry.actor_id = user.as_ref().map(|user| user.id.clone());
                self.record_best_effort(&[entry]).await;
                tracing::warn!("login failed");
                return Err(AppError::Unauthenticated.into());
            }
        };
        let mfa = self.active_mfa(&user.id).await?;
        let mfa_verified = match (&mfa, attempt.second_factor) {
            (None, _) => false,
            (Some(_), None) => {
                tracing::info!(user = %user.id, "login needs a second factor");
                return Err(LoginError::MfaRequired);
            }
            (Some(row), Some(code)) => {
                if !self.check_second_factor(&keys, row, code, now).await? {
                    self.record_failures(&subjects, now).await?;
                    let mut entry = attempt_event(Outcome::Failed, "bad_second_factor");
                    entry.actor_id = Some(user.id.clone());
                    self.record_best_effort(&[entry]).await;
                    tracing::warn!(user = %user.id, "login failed: second factor");
                    return Err(LoginError::MfaInvalid);
                }
                true
            }
        };
        self.clear_failures(&account).await?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        let token = BearerToken(Zeroizing::new(format!(
            "veil_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
        )));
        let expires_at = now + TOKEN_LIFETIME_MS;
        let token_hash = hash_token(token.expose());
        let mut login_actor = actor_of(&user)?;
        login_actor.source_ip = source_ip.clone();
        let entry = event(Some(&login_actor), "auth.login", Outcome::Ok)
            .detail(serde_json::json!({"mfa": mfa_verified}));
        self.store()
            .insert_token(
                &TokenRow {
                    token_hash: token_hash.clone(),
                    user_id: user.id.clone(),
                    created_at: now,
                    expires_at,
                    name: None,
                    scopes: None,
                },
                &[entry],
            )
            .await?;
        if mfa_verified {
            self.store()
                .mark_token_mfa_verified(&token_hash, now)
                .await?;
        }
        let actor = actor_of(&user)?;
        let mfa_enrollment_required =
            mfa.is_none() && self.mfa_required_roles().await?.contains(&actor.role);
        tracing::info!(user = %actor.user_id, mfa = mfa_verified, "login");
        Ok(Session {
            token,
            expires_at,
            actor,
            mfa_verified,
            mfa_enrollment_required,
        })
    }

    /// The actor behind a bearer token, if it is valid, unexpired, unrevoked and its user enabled.
    pub async fn authenticate(&self, token: &str) -> AppResult<Actor> {
        let (user, scopes) = self
            .store()
            .user_by_token(&hash_token(token), now_ms())
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let mut actor = actor_of(&user)?;
        if let Some(scopes) = scopes {
            actor.scopes =
                Some(serde_json::from_str(&scopes).map_err(|error| {
                    AppError::Internal(format!("stored token scopes: {error}"))
                })?);
        }
        Ok(actor)
    }

    /// Revokes a bearer token (logout).
    pub async fn logout(&self, token: &str) -> AppResult<()> {
        let actor = self.authenticate(token).await.ok();
        self.store()
            .revoke_token(
                &hash_token(token),
                now_ms(),
                &[event(actor.as_ref(), "auth.logout", Outcome::Ok)],
            )
            .await?;
        Ok(())
    }

    /// The actor for a username (CLI operations run as a named user).
    pub async fn actor_by_username(&self, username: &str) -> AppResult<Actor> {
        let user = self
            .store()
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        actor_of(&user)
    }
}
