//! Tickets (咨询/投诉) and a customer's interactions and timeline. Every read is masked; who sees what is decided
//! by `Veil::authorize` and the ticket visibility rules in `veil_app::tickets`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::interactions::{InteractionInput, InteractionPage, InteractionView, TimelinePage};
use veil_app::tickets::{
    AssignInput, CommentInput, CommentView, TicketInput, TicketPage, TicketPatch, TicketQuery,
    TicketView,
};
use veil_app::UserId;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{parse_customer, ApiJson, ApiQuery, CurrentUser};
use crate::AppState;

/// Paging parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
}

/// A customer's interactions, newest first, with personal data in notes masked.
#[utoipa::path(get, path = "/api/v1/customers/{id}/interactions", tag = "crm",
    params(("id" = String, Path, description = "Customer id"), PageParams),
    responses((status = 200, body = InteractionPage), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_interactions(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<InteractionPage>> {
    let id = parse_customer(&id)?;
    Ok(Json(
        state
            .veil
            .list_interactions(
                &user.actor,
                id,
                params.cursor.as_deref(),
                params.limit.unwrap_or(50),
            )
            .await?,
    ))
}

/// Records an interaction (call, visit, viewing 看房, test drive, consultation, email, message). Personal data in
/// the note is masked and its originals sealed under the customer's key.
#[utoipa::path(post, path = "/api/v1/customers/{id}/interactions", tag = "crm",
    params(("id" = String, Path, description = "Customer id")), request_body = InteractionInput,
    responses((status = 201, body = InteractionView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_interaction(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<InteractionInput>,
) -> ApiResult<(StatusCode, Json<InteractionView>)> {
    let id = parse_customer(&id)?;
    let view = state.veil.add_interaction(&user.actor, id, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A customer's timeline: interactions, notes, tickets and ownership transfers, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/timeline", tag = "crm",
    params(("id" = String, Path, description = "Customer id"), PageParams),
    responses((status = 200, body = TimelinePage), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn customer_timeline(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<TimelinePage>> {
    let id = parse_customer(&id)?;
    Ok(Json(
        state
            .veil
            .customer_timeline(
                &user.actor,
                id,
                params.cursor.as_deref(),
                params.limit.unwrap_or(50),
            )
            .await?,
    ))
}

/// Ticket list filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketParams {
    /// `open`, `in_progress`, `resolved`, `closed` or `reopened`.
    pub status: Option<String>,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: Option<String>,
    /// Assignee user id.
    pub assignee: Option<String>,
    /// Customer id.
    pub customer: Option<String>,
    /// Only tickets with (`true`) or without (`false`) a breached SLA timer.
    pub breached: Option<bool>,
    /// Cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
}

/// The tickets the caller sees: of customers they see, assigned to them, or (managers) to their team.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "crm", params(TicketParams),
    responses((status = 200, body = TicketPage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_tickets(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<TicketParams>,
) -> ApiResult<Json<TicketPage>> {
    let query = TicketQuery {
        status: params.status,
        priority: params.priority,
        assignee: params.assignee,
        customer: params.customer,
        breached: params.breached,
        cursor: params.cursor,
        limit: params.limit.unwrap_or(50),
    };
    Ok(Json(state.veil.list_tickets(&user.actor, &query).await?))
}

/// Opens a ticket, assigns it (explicitly or by rule) and starts its SLA timers.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "crm", request_body = TicketInput,
    responses((status = 201, body = TicketView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_ticket(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<TicketInput>,
) -> ApiResult<(StatusCode, Json<TicketView>)> {
    let view = state.veil.create_ticket(&user.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One ticket with its SLA timers, escalations, status history and comments.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "crm",
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_ticket(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TicketView>> {
    Ok(Json(state.veil.get_ticket(&user.actor, &id).await?))
}

/// Changes a ticket's status (allowed transitions only), priority (due times recomputed) or category.
#[utoipa::path(patch, path = "/api/v1/tickets/{id}", tag = "crm",
    params(("id" = String, Path, description = "Ticket id")), request_body = TicketPatch,
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn update_ticket(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<TicketPatch>,
) -> ApiResult<Json<TicketView>> {
    Ok(Json(
        state.veil.update_ticket(&user.actor, &id, &patch).await?,
    ))
}

/// Adds a comment; the first one stops the first-response timer. Personal data in it is masked.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/comments", tag = "crm",
    params(("id" = String, Path, description = "Ticket id")), request_body = CommentInput,
    responses((status = 201, body = CommentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn comment_ticket(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CommentInput>,
) -> ApiResult<(StatusCode, Json<CommentView>)> {
    let view = state.veil.comment_ticket(&user.actor, &id, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// (Re)assigns a ticket to a named user or by rule (`owner`, `round_robin`, `skill`); a service assignee gains
/// access to the customer.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/assign", tag = "crm",
    params(("id" = String, Path, description = "Ticket id")), request_body = AssignInput,
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn assign_ticket(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AssignInput>,
) -> ApiResult<Json<TicketView>> {
    Ok(Json(
        state.veil.assign_ticket(&user.actor, &id, &input).await?,
    ))
}

/// A user's skills.
#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillsInput {
    /// Skills (ticket categories such as `billing`), replacing the current list.
    pub skills: Vec<String>,
}

/// Replaces a user's skills (admins), used by assignment by skill.
#[utoipa::path(put, path = "/api/v1/users/{id}/skills", tag = "crm",
    params(("id" = String, Path, description = "User id")), request_body = SkillsInput,
    responses((status = 200, body = SkillsInput), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn set_user_skills(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SkillsInput>,
) -> ApiResult<Json<SkillsInput>> {
    let user_id: UserId = id.parse().map_err(|_| ApiError::not_found())?;
    let skills = state
        .veil
        .set_user_skills(&user.actor, user_id, &input.skills)
        .await?;
    Ok(Json(SkillsInput { skills }))
}

/// The CRM routes: interactions, timeline, tickets, skills.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_interactions, add_interaction))
        .routes(routes!(customer_timeline))
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(get_ticket, update_ticket))
        .routes(routes!(comment_ticket))
        .routes(routes!(assign_ticket))
        .routes(routes!(set_user_skills))
}
