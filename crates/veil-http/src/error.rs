//! One error type for every handler, rendered as `application/problem+json` (RFC 9457) with a stable `code`.
//! Internal causes are logged here, never sent to the client; no message carries personal data.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use veil_app::{AppError, FieldError};

/// A problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// URI reference naming the problem type (`urn:veil:problem:<code>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Per-field validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For duplicates: the customer that already has the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_customer_id: Option<String>,
    /// For duplicates: which field collided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The error every handler returns.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Box<Problem>,
}

impl ApiError {
    /// A problem with the given status, code, title and detail.
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            problem: Box::new(Problem {
                problem_type: format!("urn:veil:problem:{code}"),
                title: title.to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                code: code.to_owned(),
                errors: Vec::new(),
                existing_customer_id: None,
                field: None,
            }),
        }
    }

    /// 422 with per-field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|error| format!("{}: {}", error.field, error.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut error = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Invalid input",
            detail,
        );
        error.problem.errors = errors;
        error
    }

    /// 400 for a body or query string that cannot be parsed at all.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Malformed request",
            detail,
        )
    }

    /// 404.
    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "no such resource, or it is outside your access",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn internal(code: &str, error: &AppError) -> Self {
        tracing::error!(error = %error, code, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            "Internal error",
            "the server could not complete the request; the incident was logged",
        )
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Validation(errors) => ApiError::validation(errors),
            AppError::Duplicate { field, existing } => {
                let mut api = ApiError::new(
                    StatusCode::CONFLICT,
                    "duplicate",
                    "Duplicate customer",
                    format!(
                        "customer {existing} already has this {field}; pass allow_duplicate=true to save anyway"
                    ),
                );
                api.problem.existing_customer_id = Some(existing.to_string());
                api.problem.field = Some(field.to_owned());
                api
            }
            AppError::NotFound => ApiError::not_found(),
            AppError::Forbidden(reason) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", reason)
            }
            AppError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                "missing, invalid or expired credentials",
            ),
            AppError::Conflict(detail) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            AppError::InsufficientPoints { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "insufficient_points",
                "Insufficient points",
                error.to_string(),
            ),
            AppError::WrongMasterKey | AppError::NotInitialised => {
                tracing::error!(error = %error, "service unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "the service is not ready",
                )
            }
            AppError::GrantRequired => ApiError::new(
                StatusCode::FORBIDDEN,
                "grant_required",
                "Grant required",
                "no live grant of yours covers this customer and these fields: request one with                  POST /api/v1/unmask-requests",
            ),
            AppError::AuditUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "Audit trail unavailable",
                "the action was not carried out because it could not be recorded in the audit trail",
            ),
            AppError::Integrity(_) => ApiError::internal("integrity_error", &error),
            AppError::Backup(ref backup) => match backup {
                veil_app::backup::BackupError::NotConfigured(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    "backup_not_configured",
                    "Backups are not configured",
                    backup.to_string(),
                ),
                veil_app::backup::BackupError::Unknown(_) => ApiError::not_found(),
                veil_app::backup::BackupError::UnknownDestination(_) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_backup_destination",
                    "Unknown backup destination",
                    backup.to_string(),
                ),
                _ => ApiError::internal("backup_failed", &error),
            },
            AppError::Store(_) | AppError::Internal(_) => ApiError::internal("internal", &error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(self.problem.as_ref()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;
