//! Backups over HTTP: list (admins, DPOs, auditors), create and verify (admins). Restoring is a CLI operation
//! (`veil backup restore`): it replaces a whole database and belongs with whoever holds the server.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::backup::{BackupView, VerifyReport};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, CurrentUser};
use crate::AppState;

/// Catalogued backups, newest first, with size, location, age and latest verification.
#[utoipa::path(get, path = "/api/v1/backups", tag = "backups",
    responses((status = 200, body = Vec<BackupView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_backups(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<BackupView>>> {
    Ok(Json(state.veil.list_backups(Some(&user.actor)).await?))
}

/// Where `POST /api/v1/backups` writes. The body is optional; without it, or without `to`, the backup goes to the
/// configured backup directory.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBackupRequest {
    /// `local` (the configured backup directory) or `s3` (the configured object storage); the configured
    /// directory path or `s3://bucket/prefix` itself is accepted too. Never another path or bucket: a client
    /// chooses among the server's destinations only.
    pub to: Option<String>,
}

/// Takes a consistent snapshot now and writes it as an encrypted archive to a configured destination: the backup
/// directory, or object storage with `{"to": "s3"}` (a multipart upload, catalogued once complete). 400
/// `unknown_backup_destination` for any other destination; 409 `backup_not_configured` when no recipients or
/// passphrase are configured.
#[utoipa::path(post, path = "/api/v1/backups", tag = "backups",
    request_body(content = Option<CreateBackupRequest>, content_type = "application/json"),
    responses((status = 201, body = BackupView), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_backup(
    State(state): State<AppState>,
    user: CurrentUser,
    request: Option<ApiJson<CreateBackupRequest>>,
) -> ApiResult<(StatusCode, Json<BackupView>)> {
    let request = request.map(|ApiJson(request)| request).unwrap_or_default();
    let view = state
        .veil
        .create_backup_to(Some(&user.actor), request.to.as_deref(), &())
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Verifies a catalogued backup end to end (decrypt, checksums, scratch restore, counts, sampled decryption) and
/// stores the result. A failed verification is a 200 with `ok: false` and the reason; 409
/// `backup_not_configured` when the server holds no identity or passphrase to decrypt with.
#[utoipa::path(post, path = "/api/v1/backups/{id}/verify", tag = "backups",
    params(("id" = String, Path, description = "Backup id")),
    responses((status = 200, body = VerifyReport), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn verify_backup(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<VerifyReport>> {
    // Only catalogued ids: a path from a client must never name a file on the server.
    let catalogued = state
        .veil
        .store()
        .backup(&id)
        .await
        .map_err(veil_app::AppError::from)?;
    if catalogued.is_none() {
        state
            .veil
            .permit_recorded(&user.actor, veil_app::authz::Action::BackupManage, None)
            .await?;
        return Err(veil_app::AppError::NotFound.into());
    }
    Ok(Json(
        state
            .veil
            .verify_backup(Some(&user.actor), &id, &())
            .await?,
    ))
}

/// The backup routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_backups, create_backup))
        .routes(routes!(verify_backup))
}
