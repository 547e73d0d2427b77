//! The audit trail over HTTP: query (DPO, auditor), verification, checkpoints and the public key (admin, DPO,
//! auditor), and the data-subject report (DPO).

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::audit::{AuditPage, AuditQuery, CheckpointView, SubjectReport, VerifyReport};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiQuery, CurrentUser};
use crate::AppState;

/// Audit entries matching the filters, newest first. The query itself is recorded.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn query_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    Ok(Json(state.veil.query_audit(&user.actor, &query).await?))
}

/// Verifies the whole chain: every entry's link and hash, every checkpoint's signature and head.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyReport), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn verify_audit(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(state.veil.verify_audit_as(&user.actor).await?))
}

/// Signed checkpoints, newest first.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, body = Vec<CheckpointView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_checkpoints(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<CheckpointView>>> {
    Ok(Json(state.veil.audit_checkpoints(&user.actor).await?))
}

/// The result of asking for a checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointResult {
    /// The new checkpoint, or `null` when the head was already signed.
    pub checkpoint: Option<CheckpointView>,
}

/// Signs the current head now.
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, body = CheckpointResult), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn create_checkpoint(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<CheckpointResult>> {
    Ok(Json(CheckpointResult {
        checkpoint: state.veil.audit_checkpoint_as(&user.actor).await?,
    }))
}

/// The server's audit signing public key.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    /// Ed25519 public key, hex.
    pub public_key: String,
}

/// The Ed25519 public key that signs checkpoints, for verifying exports offline.
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = PublicKey), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn public_key(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<PublicKey>> {
    Ok(Json(PublicKey {
        public_key: state.veil.audit_public_key_as(&user.actor).await?,
    }))
}

/// Who accessed, revealed, exported or changed one customer's data — the data-subject report (PIPL Art. 45,
/// GDPR Art. 15). DPO only; works for erased customers too.
#[utoipa::path(get, path = "/api/v1/subjects/{id}/report", tag = "audit",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = SubjectReport), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn subject_report(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<SubjectReport>> {
    let id: veil_app::CustomerId = id
        .parse()
        .map_err(|_| crate::error::ApiError::not_found())?;
    Ok(Json(
        state
            .veil
            .subject_report(Some(&user.actor), &id.to_string())
            .await?,
    ))
}

/// The audit routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(query_audit))
        .routes(routes!(verify_audit))
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(public_key))
        .routes(routes!(subject_report))
}
