//! The domain error: what went wrong, in terms a caller can act on. Messages never contain personal data.

use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::CustomerId;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The JSON field name.
    pub field: String,
    /// A stable machine code, e.g. `bad_checksum`.
    pub code: String,
    /// A human message that does not repeat the value.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Errors of Veil's domain services.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input failed validation; nothing was written.
    #[error("validation failed: {}", summarize(.0))]
    Validation(Vec<FieldError>),
    /// Another customer already has this value.
    #[error("a customer with the same {field} already exists ({existing})")]
    Duplicate {
        /// Which field collided.
        field: &'static str,
        /// The existing customer.
        existing: CustomerId,
    },
    /// The record does not exist, or the caller may not know it exists.
    #[error("not found")]
    NotFound,
    /// The caller is known but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Authentication failed or is missing.
    #[error("authentication required or failed")]
    Unauthenticated,
    /// A conflicting change (username taken, concurrent update).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A loyalty redemption asked for more points than the balance holds; nothing was deducted.
    #[error("insufficient points: {requested} requested, {balance} available")]
    InsufficientPoints {
        /// The balance at the time.
        balance: i64,
        /// What was asked for.
        requested: i64,
    },
    /// Stored data could not be decrypted (wrong key, tampering). Fails closed.
    #[error("stored data failed its integrity check: {0}")]
    Integrity(#[from] veil_mask::CryptoError),
    /// The configured master key does not open this database.
    #[error("the master key does not match this database (wrong key file or passphrase)")]
    WrongMasterKey,
    /// The database has not been initialised (`veil init`).
    #[error("the database is not initialised: run `veil init` first")]
    NotInitialised,
    /// The audit trail could not be written, so the action was not carried out (fail closed).
    #[error("the audit trail is unavailable; the action was not carried out")]
    AuditUnavailable,
    /// Plaintext needs a live grant covering the customer and fields: ask with an unmask request.
    #[error("no live grant covers this reveal: request one with POST /api/v1/unmask-requests")]
    GrantRequired,
    /// A storage failure.
    #[error(transparent)]
    Store(#[from] veil_store::StoreError),
    /// A backup could not be created, read, verified or restored.
    #[error(transparent)]
    Backup(crate::backup::BackupError),
    /// Anything else unexpected (bug or environment).
    #[error("internal error: {0}")]
    Internal(String),
}

fn summarize(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|error| format!("{}: {}", error.field, error.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result type of the domain services.
pub type AppResult<T> = Result<T, AppError>;
