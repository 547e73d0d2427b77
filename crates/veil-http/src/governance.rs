//! Governed unmasking over HTTP: consents, unmask requests and their decisions, grants, and the reveal endpoint —
//! the only response that ever carries plaintext personal data (and only under a live grant, after its audit
//! entry is committed; responses are `Cache-Control: no-store` like every other).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::governance::{
    BreakGlassInput, ConsentInput, ConsentView, DecisionInput, ExportDelivery, GrantView,
    RevealInput, UnmaskRequestInput, UnmaskRequestView,
};
use veil_app::notes::NoteRevealInput;
use veil_app::CustomerId;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, CurrentUser};
use crate::AppState;

fn customer(text: &str) -> ApiResult<CustomerId> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// A customer's consents.
#[utoipa::path(get, path = "/api/v1/customers/{id}/consents", tag = "governance",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = Vec<ConsentView>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_consents(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ConsentView>>> {
    Ok(Json(
        state
            .veil
            .list_consents(&user.actor, customer(&id)?)
            .await?,
    ))
}

/// Records a consent (purposes, fields, recipient, evidence, separate sensitive / third-party consent).
#[utoipa::path(post, path = "/api/v1/customers/{id}/consents", tag = "governance",
    params(("id" = String, Path, description = "Customer id")), request_body = ConsentInput,
    responses((status = 201, body = ConsentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn record_consent(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ConsentInput>,
) -> ApiResult<(StatusCode, Json<ConsentView>)> {
    let consent = state
        .veil
        .record_consent(&user.actor, customer(&id)?, &input)
        .await?;
    Ok((StatusCode::CREATED, Json(consent)))
}

/// Withdraws a consent: every live grant relying on it is revoked at once.
#[utoipa::path(post, path = "/api/v1/consents/{id}/withdraw", tag = "governance",
    params(("id" = String, Path, description = "Consent id")),
    responses((status = 200, body = ConsentView), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn withdraw_consent(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ConsentView>> {
    Ok(Json(state.veil.withdraw_consent(&user.actor, &id).await?))
}

/// Unmask requests: the caller's own (approvers and auditors see all).
#[utoipa::path(get, path = "/api/v1/unmask-requests", tag = "governance",
    responses((status = 200, body = Vec<UnmaskRequestView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_requests(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<UnmaskRequestView>>> {
    Ok(Json(state.veil.list_unmask_requests(&user.actor).await?))
}

/// Asks to unmask: the response carries the risk, every prerequisite check (met or not, and why), the approvals
/// needed and the state (`blocked` or `pending`). `fields` names built-in fields and, for a view, sensitive custom
/// fields as `custom.<key>`; an unknown or non-sensitive custom key is a 422 on `fields` naming it.
#[utoipa::path(post, path = "/api/v1/unmask-requests", tag = "governance", request_body = UnmaskRequestInput,
    responses((status = 201, body = UnmaskRequestView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_request(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<UnmaskRequestInput>,
) -> ApiResult<(StatusCode, Json<UnmaskRequestView>)> {
    let request = state
        .veil
        .create_unmask_request(&user.actor, Some(&user.token), &input)
        .await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// One request.
#[utoipa::path(get, path = "/api/v1/unmask-requests/{id}", tag = "governance",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = UnmaskRequestView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<UnmaskRequestView>> {
    Ok(Json(state.veil.get_unmask_request(&user.actor, &id).await?))
}

/// Re-evaluates the checks of a blocked request (the requester, after recording consent or verifying MFA).
#[utoipa::path(post, path = "/api/v1/unmask-requests/{id}/recheck", tag = "governance",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = UnmaskRequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn recheck_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<UnmaskRequestView>> {
    Ok(Json(
        state
            .veil
            .recheck_unmask_request(&user.actor, Some(&user.token), &id)
            .await?,
    ))
}

/// Approves a pending request (never one's own); enough approvals create the grant.
#[utoipa::path(post, path = "/api/v1/unmask-requests/{id}/approve", tag = "governance",
    params(("id" = String, Path, description = "Request id")), request_body = DecisionInput,
    responses((status = 200, body = UnmaskRequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn approve_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DecisionInput>,
) -> ApiResult<Json<UnmaskRequestView>> {
    Ok(Json(
        state
            .veil
            .decide_unmask_request(&user.actor, &id, true, &input)
            .await?,
    ))
}

/// Rejects a pending request.
#[utoipa::path(post, path = "/api/v1/unmask-requests/{id}/reject", tag = "governance",
    params(("id" = String, Path, description = "Request id")), request_body = DecisionInput,
    responses((status = 200, body = UnmaskRequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn reject_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DecisionInput>,
) -> ApiResult<Json<UnmaskRequestView>> {
    Ok(Json(
        state
            .veil
            .decide_unmask_request(&user.actor, &id, false, &input)
            .await?,
    ))
}

/// Revokes the grant of a request.
#[utoipa::path(post, path = "/api/v1/unmask-requests/{id}/revoke", tag = "governance",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = UnmaskRequestView), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<UnmaskRequestView>> {
    Ok(Json(
        state.veil.revoke_unmask_request(&user.actor, &id).await?,
    ))
}

/// Runs an approved export request: the approved fields of the approved customers as CSV, encrypted to the
/// request's age recipient, with a manifest signed by the server (check it with `veil export verify`).
#[utoipa::path(post, path = "/api/v1/unmask-requests/{id}/export", tag = "governance",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = ExportDelivery), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)), security(("bearer" = [])))]
pub async fn run_export(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ExportDelivery>> {
    Ok(Json(
        state
            .veil
            .run_export(&user.actor, Some(&user.token), &id)
            .await?,
    ))
}

/// Break-glass: an emergency view (≤ 15 minutes) of one customer without prior approval. Needs a recent MFA
/// step-up; the DPO is alerted at once and must review it within 24 hours, or it escalates to the admins.
#[utoipa::path(post, path = "/api/v1/break-glass", tag = "governance", request_body = BreakGlassInput,
    responses((status = 201, body = UnmaskRequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn break_glass(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<BreakGlassInput>,
) -> ApiResult<(StatusCode, Json<UnmaskRequestView>)> {
    let request = state
        .veil
        .break_glass(&user.actor, Some(&user.token), &input)
        .await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// The DPO's review of a break-glass access.
#[utoipa::path(post, path = "/api/v1/unmask-requests/{id}/review", tag = "governance",
    params(("id" = String, Path, description = "Request id")), request_body = DecisionInput,
    responses((status = 200, body = UnmaskRequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn review_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DecisionInput>,
) -> ApiResult<Json<UnmaskRequestView>> {
    Ok(Json(
        state
            .veil
            .review_break_glass(&user.actor, &id, &input)
            .await?,
    ))
}

/// Grants: the caller's own (DPOs, admins and auditors see all), with time left.
#[utoipa::path(get, path = "/api/v1/grants", tag = "governance",
    responses((status = 200, body = Vec<GrantView>)), security(("bearer" = [])))]
pub async fn list_grants(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<GrantView>>> {
    Ok(Json(state.veil.list_grants(&user.actor).await?))
}

/// Revokes a grant (its holder, an approver, a DPO or an admin).
#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", tag = "governance",
    params(("id" = String, Path, description = "Grant id")),
    responses((status = 200, body = GrantView), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantView>> {
    Ok(Json(state.veil.revoke_grant(&user.actor, &id).await?))
}

/// Reveals fields of one customer under the caller's live grant, after a recent MFA step-up: built-in fields
/// (`phone`, `id_number`, …) and sensitive custom fields of the customer's industry template (`custom.<key>`,
/// e.g. `custom.annual_income`). The answer maps each requested field that has a value to its plaintext, by the
/// name asked for. Every call is audited (naming the fields, never their values) before the plaintext leaves;
/// without a grant: 403 `grant_required`; an unknown field or a custom field that is not sensitive: 422 on
/// `fields`.
#[utoipa::path(post, path = "/api/v1/customers/{id}/reveal", tag = "governance",
    params(("id" = String, Path, description = "Customer id")), request_body = RevealInput,
    responses((status = 200, body = BTreeMap<String, String>), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn reveal(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RevealInput>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let revealed = state
        .veil
        .reveal_customer(&user.actor, Some(&user.token), customer(&id)?, &input)
        .await?;
    Ok(Json(
        revealed
            .into_iter()
            .map(|(field, value)| (field, value.to_string()))
            .collect(),
    ))
}

/// A note with its personal-data spans revealed.
#[derive(Serialize, ToSchema)]
pub struct RevealedNoteView {
    /// The note's text: spans of the granted fields in clear, every other span masked.
    pub body: String,
    /// How many spans are shown in clear.
    pub revealed: usize,
}

/// Reveals the spans of one note whose kinds map to the requested fields (`phone` shows mobile and landline
/// numbers, `id_number` ID numbers, …) under the caller's live grant on the customer, after a recent MFA step-up;
/// other spans stay masked. Audited (naming the note) before the plaintext leaves.
#[utoipa::path(post, path = "/api/v1/customers/{id}/notes/{note_id}/reveal", tag = "governance",
    params(("id" = String, Path, description = "Customer id"), ("note_id" = String, Path, description = "Note id")),
    request_body = NoteRevealInput,
    responses((status = 200, body = RevealedNoteView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn reveal_note(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, note_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<NoteRevealInput>,
) -> ApiResult<Json<RevealedNoteView>> {
    let revealed = state
        .veil
        .reveal_note(
            &user.actor,
            Some(&user.token),
            customer(&id)?,
            &note_id,
            &input,
        )
        .await?;
    Ok(Json(RevealedNoteView {
        body: revealed.body.to_string(),
        revealed: revealed.revealed,
    }))
}

/// The governance routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_consents, record_consent))
        .routes(routes!(withdraw_consent))
        .routes(routes!(list_requests, create_request))
        .routes(routes!(get_request))
        .routes(routes!(recheck_request))
        .routes(routes!(approve_request))
        .routes(routes!(reject_request))
        .routes(routes!(revoke_request))
        .routes(routes!(run_export))
        .routes(routes!(break_glass))
        .routes(routes!(review_request))
        .routes(routes!(list_grants))
        .routes(routes!(revoke_grant))
        .routes(routes!(reveal))
        .routes(routes!(reveal_note))
}
