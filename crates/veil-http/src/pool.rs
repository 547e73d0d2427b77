//! The customer pool (公海) and messages to customers. Who may do what is decided in `veil_app::pool` and
//! `veil_app::messages`: the pool shows names masked and every other personal field fully masked; a message is
//! sent by the server, which alone uses the address or number, and the response names the recipient masked.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::messages::{MessageView, SendInput, TemplateInput, TemplatePatch, TemplateView};
use veil_app::pool::{ClaimResult, PoolEventView, PoolFilter, PoolPage, PoolState, ReleaseInput};

use crate::error::{ApiResult, Problem};
use crate::extract::{parse_customer, ApiJson, ApiQuery, CurrentUser};
use crate::AppState;

/// The pool's filters and paging.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolParams {
    /// Only this industry.
    pub industry: Option<String>,
    /// Only customers with this tag.
    pub tag: Option<String>,
    /// Cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 25).
    pub limit: Option<u32>,
}

/// The customer pool: customers without an owner, newest first. Names masked as the caller's role sees them,
/// every other personal field fully masked; industry, tags, when each entered the pool and its last activity.
#[utoipa::path(get, path = "/api/v1/pool", tag = "crm", params(PoolParams),
    responses((status = 200, body = PoolPage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<PoolParams>,
) -> ApiResult<Json<PoolPage>> {
    let filter = PoolFilter {
        industry: params.industry,
        tag: params.tag,
    };
    Ok(Json(
        state
            .veil
            .list_pool(
                &user.actor,
                &filter,
                params.cursor.as_deref(),
                params.limit.unwrap_or(25),
            )
            .await?,
    ))
}

/// Claims a pool customer: the caller becomes its owner, with their team. Of two claims at once exactly one
/// wins; the other gets 409. 422 `claim_limit_reached` once the caller holds `VEIL_POOL_CLAIM_LIMIT` customers
/// from the pool.
#[utoipa::path(post, path = "/api/v1/pool/{id}/claim", tag = "crm",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = ClaimResult), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn claim(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ClaimResult>> {
    let id = parse_customer(&id)?;
    Ok(Json(state.veil.claim_from_pool(&user.actor, id).await?))
}

/// Puts a customer back in the pool (its owner, their manager, an admin), with a reason.
#[utoipa::path(post, path = "/api/v1/customers/{id}/release", tag = "crm",
    params(("id" = String, Path, description = "Customer id")), request_body = ReleaseInput,
    responses((status = 200, body = PoolEventView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn release(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ReleaseInput>,
) -> ApiResult<Json<PoolEventView>> {
    let id = parse_customer(&id)?;
    Ok(Json(
        state.veil.release_to_pool(&user.actor, id, &input).await?,
    ))
}

/// A customer's pool state: whether it is in the pool, whether its owner claimed it, and its claims, releases
/// and returns.
#[utoipa::path(get, path = "/api/v1/customers/{id}/pool", tag = "crm",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = PoolState), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn pool_state(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<PoolState>> {
    let id = parse_customer(&id)?;
    Ok(Json(state.veil.pool_state(&user.actor, id).await?))
}

/// Message templates, by name.
#[utoipa::path(get, path = "/api/v1/message-templates", tag = "crm",
    responses((status = 200, body = [TemplateView]), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_templates(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<TemplateView>>> {
    Ok(Json(state.veil.list_templates(&user.actor).await?))
}

/// Adds a template (admins and managers). Placeholders are checked: an unknown one is 422 naming it, one that
/// would insert personal data (`{{customer.mobile}}`) is 422 `personal_data_placeholder`.
#[utoipa::path(post, path = "/api/v1/message-templates", tag = "crm", request_body = TemplateInput,
    responses((status = 201, body = TemplateView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_template(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    let view = state.veil.create_template(&user.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One template, by id or name.
#[utoipa::path(get, path = "/api/v1/message-templates/{id}", tag = "crm",
    params(("id" = String, Path, description = "Template id or name")),
    responses((status = 200, body = TemplateView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateView>> {
    Ok(Json(state.veil.get_template(&user.actor, &id).await?))
}

/// Changes a template (admins and managers); a concurrent change is 409.
#[utoipa::path(patch, path = "/api/v1/message-templates/{id}", tag = "crm",
    params(("id" = String, Path, description = "Template id or name")), request_body = TemplatePatch,
    responses((status = 200, body = TemplateView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn update_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<TemplatePatch>,
) -> ApiResult<Json<TemplateView>> {
    Ok(Json(
        state.veil.update_template(&user.actor, &id, &patch).await?,
    ))
}

/// Deletes a template (admins and managers).
#[utoipa::path(delete, path = "/api/v1/message-templates/{id}", tag = "crm",
    params(("id" = String, Path, description = "Template id or name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_template(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.veil.delete_template(&user.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a message from a template to a customer the caller sees. The server decrypts the address or number
/// and sends; the response (and the audit entry) name the recipient masked. 422 `consent_required` without a
/// live consent covering the template's purpose and the channel.
#[utoipa::path(post, path = "/api/v1/customers/{id}/messages", tag = "crm",
    params(("id" = String, Path, description = "Customer id")), request_body = SendInput,
    responses((status = 201, body = MessageView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn send_message(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SendInput>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let id = parse_customer(&id)?;
    let view = state.veil.send_message(&user.actor, id, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A customer's messages, newest first, recipients masked.
#[utoipa::path(get, path = "/api/v1/customers/{id}/messages", tag = "crm",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = [MessageView]), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_messages(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MessageView>>> {
    let id = parse_customer(&id)?;
    Ok(Json(state.veil.list_messages(&user.actor, id).await?))
}

/// The pool and message routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pool))
        .routes(routes!(claim))
        .routes(routes!(release))
        .routes(routes!(pool_state))
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(send_message, list_messages))
}
