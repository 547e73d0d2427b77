//! Bearer tokens a user can see and revoke, and scoped API tokens for integrations.
//!
//! A login session token carries the user's role and nothing less. An API token is created by a logged-in user
//! for an integration, with a name, an expiry and scopes (`customers:read`, `customers:write`,
//! `policies:read`); it can do only what both its scopes and the user's role allow, and never manage users,
//! teams or policies. Tokens are stored as SHA-256 hashes; a token's public id is the first 8 bytes of that
//! hash in hex, so listing and revoking never handle the secret.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::TokenRow;

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::users::{hash_token, Actor};
use crate::{format_time, now_ms, Veil};

/// Longest lifetime of an API token.
pub const MAX_API_TOKEN_DAYS: u32 = 365;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What an API token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    /// List, search and read customers and their notes (masked).
    #[serde(rename = "customers:read")]
    CustomersRead,
    /// Create, change, erase and transfer customers; add notes.
    #[serde(rename = "customers:write")]
    CustomersWrite,
    /// Read masking policies.
    #[serde(rename = "policies:read")]
    PoliciesRead,
    /// Read the audit log, its checkpoints and verification (for a SIEM).
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::PoliciesRead,
        Scope::AuditRead,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CustomersRead => "customers:read",
            Scope::CustomersWrite => "customers:write",
            Scope::PoliciesRead => "policies:read",
            Scope::AuditRead => "audit:read",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown scope; expected one of {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })
    }
}

/// The scope an action needs when the caller uses an API token (`None`: API tokens may never do it).
pub fn required_scope(action: Action) -> Option<Scope> {
    use Action::*;
    match action {
        CustomerList | CustomerRead | NoteRead | InteractionRead | TicketRead | ProductRead
        | OrderRead | LoyaltyRead | FeedbackRead | DealRead | TaskRead | PoolRead
        | TemplateRead => Some(Scope::CustomersRead),
        CustomerCreate | CustomerUpdate | CustomerErase | CustomerTransfer | NoteWrite
        | InteractionWrite | TicketWrite | TicketAssign | OrderWrite | LoyaltyRedeem
        | FeedbackWrite | SurveyManage | DealWrite | TaskWrite | PoolClaim | PoolRelease => {
            Some(Scope::CustomersWrite)
        }
        // Sending uses the customer's address or number: a person does it, never an integration's token.
        ProductManage | TemplateManage | MessageSend | IndustryFieldManage => None,
        PolicyRead => Some(Scope::PoliciesRead),
        AuditRead | AuditVerify | SecurityRead => Some(Scope::AuditRead),
        PolicyChange | UserManage | TeamManage | SubjectReport | IncidentManage | ConsentRead
        | ConsentWrite | UnmaskRequest | UnmaskApprove | Reveal | BackupRead | BackupManage => None,
    }
}

/// Refuses an action the caller's API token is not scoped for (login sessions pass).
pub fn check_scope(actor: &Actor, action: Action) -> AppResult<()> {
    let Some(scopes) = &actor.scopes else {
        return Ok(());
    };
    match required_scope(action) {
        Some(scope) if scopes.contains(&scope) => Ok(()),
        Some(_) => Err(AppError::Forbidden(
            "this API token lacks the scope for this action",
        )),
        None => Err(AppError::Forbidden("API tokens cannot perform this action")),
    }
}

/// A new API token.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenInput {
    /// What the integration is.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Lifetime in days, 1–365 (default 90).
    pub expires_in_days: Option<u32>,
}

/// A token as its owner sees it (never the secret, except once at creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    /// Public id (first 8 bytes of the token's hash, hex).
    pub id: String,
    /// `session` (from login) or `api`.
    pub kind: String,
    /// API token name.
    pub name: Option<String>,
    /// API token scopes.
    pub scopes: Option<Vec<Scope>>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Whether this is the token used for this request.
    pub current: bool,
}

/// A newly created API token: the secret is shown here once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedApiToken {
    /// The token's public details.
    #[serde(flatten)]
    pub view: TokenView,
    /// Send as `Authorization: Bearer <token>`; shown once.
    pub token: String,
}

fn public_id(hash: &[u8]) -> String {
    hash.iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn view(row: &TokenRow, current_hash: &[u8]) -> TokenView {
    TokenView {
        id: public_id(&row.token_hash),
        kind: if row.scopes.is_some() {
            "api"
        } else {
            "session"
        }
        .to_owned(),
        name: row.name.clone(),
        scopes: row
            .scopes
            .as_deref()
            .and_then(|scopes| serde_json::from_str(scopes).ok()),
        created_at: format_time(row.created_at),
        expires_at: format_time(row.expires_at),
        current: row.token_hash == current_hash,
    }
}

impl Veil {
    /// Creates an API token for the caller (from a login session only: a token cannot mint tokens).
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        current_token: &str,
        input: &ApiTokenInput,
    ) -> AppResult<CreatedApiToken> {
        if actor.scopes.is_some() {
            return Err(AppError::Forbidden("API tokens cannot create tokens"));
        }
        let mut errors = Vec::new();
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.push(FieldError::new("name", "invalid", "1 to 100 characters"));
        }
        if input.scopes.is_empty() {
            errors.push(FieldError::new(
                "scopes",
                "required",
                "give at least one scope",
            ));
        }
        let days = input.expires_in_days.unwrap_or(90);
        if !(1..=MAX_API_TOKEN_DAYS).contains(&days) {
            errors.push(FieldError::new(
                "expires_in_days",
                "out_of_range",
                format!("must be 1 to {MAX_API_TOKEN_DAYS}"),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let mut scopes = input.scopes.clone();
        scopes.sort_by_key(|scope| scope.as_str());
        scopes.dedup();
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        let token = zeroize::Zeroizing::new(format!(
            "veil_api_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
        ));
        let now = now_ms();
        let row = TokenRow {
            token_hash: hash_token(&token),
            user_id: actor.user_id.to_string(),
            created_at: now,
            expires_at: now + i64::from(days) * DAY_MS,
            name: Some(name.to_owned()),
            scopes: Some(
                serde_json::to_string(&scopes)
                    .map_err(|error| AppError::Internal(error.to_string()))?,
            ),
        };
        let entry = crate::audit::event(
            Some(actor),
            "auth.token.create",
            crate::audit::Outcome::Ok,
        )
        .detail(serde_json::json!({
            "token_id": public_id(&row.token_hash), "name": name, "scopes": scopes, "days": days,
        }));
        self.store().insert_token(&row, &[entry]).await?;
        tracing::info!(user = %actor.user_id, token = %public_id(&row.token_hash), "API token created");
        Ok(CreatedApiToken {
            view: view(&row, &hash_token(current_token)),
            token: token.to_string(),
        })
    }

    /// The caller's active tokens.
    pub async fn list_tokens(
        &self,
        actor: &Actor,
        current_token: &str,
    ) -> AppResult<Vec<TokenView>> {
        let current = hash_token(current_token);
        Ok(self
            .store()
            .active_tokens(&actor.user_id.to_string(), now_ms())
            .await?
            .iter()
            .map(|row| view(row, &current))
            .collect())
    }

    /// Revokes one of the caller's tokens by public id; takes effect on the next request.
    pub async fn revoke_token_by_id(&self, actor: &Actor, id: &str) -> AppResult<()> {
        let now = now_ms();
        let row = self
            .store()
            .active_tokens(&actor.user_id.to_string(), now)
            .await?
            .into_iter()
            .find(|row| public_id(&row.token_hash) == id)
            .ok_or(AppError::NotFound)?;
        let entry =
            crate::audit::event(Some(actor), "auth.token.revoke", crate::audit::Outcome::Ok)
                .detail(serde_json::json!({"token_id": id}));
        self.store()
            .revoke_token(&row.token_hash, now, &[entry])
            .await?;
        tracing::info!(user = %actor.user_id, token = %id, "token revoked");
        Ok(())
    }
}
