//! Partner data exchange over HTTP (admin or DPO): partners and their pseudonym domains, pseudonymised exports
//! with k-anonymity, and re-identification of a partner's enriched file under a grant. The same domain calls as
//! `veil partner …` and `veil import --reidentify`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::governance::partner::{
    PartnerExportDelivery, PartnerExportInput, PartnerView, ReidentifyDelivery, ReidentifyInput,
};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, CurrentUser};
use crate::AppState;

/// A partner to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerInput {
    /// 1 to 64 letters, digits, `-` or `_`; a retired name is not reused.
    pub name: String,
}

/// Every partner and whether its key is live.
#[utoipa::path(get, path = "/api/v1/partners", tag = "governance",
    responses((status = 200, body = [PartnerView]), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_partners(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<PartnerView>>> {
    Ok(Json(state.veil.list_partners(&user.actor).await?))
}

/// Registers a partner: a fresh key in the keyring is its own pseudonym domain, so two partners' files cannot be
/// joined.
#[utoipa::path(post, path = "/api/v1/partners", tag = "governance", request_body = PartnerInput,
    responses((status = 201, body = PartnerView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn add_partner(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<PartnerInput>,
) -> ApiResult<(StatusCode, Json<PartnerView>)> {
    state.veil.add_partner(&user.actor, &input.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(PartnerView {
            name: input.name,
            state: "active".to_owned(),
        }),
    ))
}

/// Retires a partner at contract end: its key is destroyed and its pseudonyms become unlinkable, for Veil too.
#[utoipa::path(post, path = "/api/v1/partners/{id}/retire", tag = "governance",
    params(("id" = String, Path, description = "Partner name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn retire_partner(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.veil.retire_partner(&user.actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A pseudonymised export for the partner: its customer pseudonym, format-preserving pseudonyms of the fields,
/// quasi-identifiers generalised until every group has at least k rows (or refused with the smallest group),
/// encrypted to the partner's age key. No plaintext is in it; audited before anything is decrypted.
#[utoipa::path(post, path = "/api/v1/partners/{id}/exports", tag = "governance",
    params(("id" = String, Path, description = "Partner name")), request_body = PartnerExportInput,
    responses((status = 200, body = PartnerExportDelivery), (status = 403, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn export_for_partner(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
    ApiJson(input): ApiJson<PartnerExportInput>,
) -> ApiResult<Json<PartnerExportDelivery>> {
    Ok(Json(
        state
            .veil
            .partner_export(&user.actor, &name, &input)
            .await?,
    ))
}

/// Maps the partner's enriched file back onto customers under the caller's live grant: the same CSV with
/// `customer_id` in place of `pseudonym`, for the customers the grant covers. Audited before anything returns.
#[utoipa::path(post, path = "/api/v1/partners/{id}/reidentify", tag = "governance",
    params(("id" = String, Path, description = "Partner name")), request_body = ReidentifyInput,
    responses((status = 200, body = ReidentifyDelivery), (status = 403, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn reidentify(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
    ApiJson(input): ApiJson<ReidentifyInput>,
) -> ApiResult<Json<ReidentifyDelivery>> {
    Ok(Json(
        state
            .veil
            .partner_reidentify(&user.actor, &name, &input)
            .await?,
    ))
}

/// The partner routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_partners, add_partner))
        .routes(routes!(retire_partner))
        .routes(routes!(export_for_partner))
        .routes(routes!(reidentify))
}
