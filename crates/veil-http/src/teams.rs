//! Teams and ownership transfers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::teams::{TeamView, TransferInput, TransferView};
use veil_app::CustomerId;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, CurrentUser};
use crate::AppState;

/// A new team.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    /// Unique name.
    pub name: String,
    /// Parent team (must exist).
    pub parent: Option<String>,
}

fn parse_id(text: &str) -> ApiResult<CustomerId> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// Every team.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams",
    responses((status = 200, body = Vec<TeamView>), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn list_teams(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> ApiResult<Json<Vec<TeamView>>> {
    Ok(Json(state.veil.list_teams().await?))
}

/// Adds a team (admin).
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = TeamInput,
    responses((status = 201, body = TeamView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn add_team(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<TeamInput>,
) -> ApiResult<(StatusCode, Json<TeamView>)> {
    let team = state
        .veil
        .add_team(&user.actor, &input.name, input.parent.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// Moves a customer to another owner (and team); the transfer is recorded with its reason.
#[utoipa::path(post, path = "/api/v1/customers/{id}/transfer", tag = "customers",
    params(("id" = String, Path, description = "Customer id")), request_body = TransferInput,
    responses((status = 200, body = Vec<TransferView>), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn transfer_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TransferInput>,
) -> ApiResult<Json<Vec<TransferView>>> {
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .veil
            .transfer_customer(&user.actor, id, &input)
            .await?,
    ))
}

/// A customer's ownership history.
#[utoipa::path(get, path = "/api/v1/customers/{id}/transfers", tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = Vec<TransferView>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn transfer_history(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TransferView>>> {
    let id = parse_id(&id)?;
    Ok(Json(state.veil.transfer_history(&user.actor, id).await?))
}

/// A service user to link to a customer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceLinkInput {
    /// The service user's id.
    pub user: String,
    /// Why (kept with the link; personal data in it is masked in the audit trail).
    pub reason: String,
}

/// Links a customer to a service user so they can serve it (admins, and managers for their customers); tickets
/// will create these links when they are assigned.
#[utoipa::path(post, path = "/api/v1/customers/{id}/service-links", tag = "customers",
    params(("id" = String, Path, description = "Customer id")), request_body = ServiceLinkInput,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn link_service_user(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ServiceLinkInput>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let service_user: veil_app::UserId = input.user.parse().map_err(|_| {
        ApiError::from(veil_app::AppError::Validation(vec![
            veil_app::FieldError::new("user", "invalid", "must be a user id"),
        ]))
    })?;
    if input.reason.trim().is_empty() {
        return Err(ApiError::from(veil_app::AppError::Validation(vec![
            veil_app::FieldError::new(
                "reason",
                "required",
                "say why the service user needs this customer",
            ),
        ])));
    }
    state
        .veil
        .link_service_user(&user.actor, id, service_user, input.reason.trim())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The team and transfer routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_teams, add_team))
        .routes(routes!(transfer_customer))
        .routes(routes!(transfer_history))
        .routes(routes!(link_service_user))
}
