//! Leads, deals, pipelines and follow-up tasks. Who may see what is decided by `Veil::authorize` in
//! `veil_app::deals` and `veil_app::tasks`: a lead is a customer record, a deal follows its customer's visibility,
//! and an invisible record is "not found".

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::customers::CustomerInput;
use veil_app::deals::{
    DealInput, DealPage, DealPatch, DealQuery, DealStatus, DealView, LeadPage, LeadView,
    PipelineView, StageMove,
};
use veil_app::tasks::{TaskInput, TaskPatch, TaskQuery, TaskView};

use crate::customers::WriteParams;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::tickets::PageParams;
use crate::AppState;

/// The pipeline templates (one per industry) with their stages, in order.
#[utoipa::path(get, path = "/api/v1/pipelines", tag = "crm",
    responses((status = 200, body = [PipelineView]), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_pipelines(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<PipelineView>>> {
    Ok(Json(state.veil.list_pipelines(&user.actor).await?))
}

/// Creates a lead: a customer record in the `lead` stage, validated, encrypted, masked and de-duplicated (409 on
/// a mobile or ID number another record has) exactly as a customer.
#[utoipa::path(post, path = "/api/v1/leads", tag = "crm", params(WriteParams), request_body = CustomerInput,
    responses((status = 201, body = LeadView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_lead(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(input): ApiJson<CustomerInput>,
) -> ApiResult<(StatusCode, Json<LeadView>)> {
    let view = state
        .veil
        .create_lead(&user.actor, &input, params.allow_duplicate)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The caller's leads (names masked), newest first.
#[utoipa::path(get, path = "/api/v1/leads", tag = "crm", params(PageParams),
    responses((status = 200, body = LeadPage), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_leads(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<LeadPage>> {
    Ok(Json(
        state
            .veil
            .list_leads(
                &user.actor,
                params.cursor.as_deref(),
                params.limit.unwrap_or(50),
            )
            .await?,
    ))
}

/// Converts a lead into a customer (audited); 409 when the record is no lead.
#[utoipa::path(post, path = "/api/v1/leads/{id}/convert", tag = "crm",
    params(("id" = String, Path, description = "Customer id of the lead")),
    responses((status = 200, body = LeadView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn convert_lead(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<LeadView>> {
    let id = crate::extract::parse_customer(&id)?;
    Ok(Json(state.veil.convert_lead(&user.actor, id).await?))
}

/// Deal list filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DealParams {
    /// Only this pipeline.
    pub pipeline: Option<String>,
    /// Only this status (`open`, `won`, `lost`).
    pub status: Option<DealStatus>,
    /// Only this customer's.
    pub customer: Option<String>,
    /// Only deals owned by this user id (`me`: the caller).
    pub owner: Option<String>,
    /// Cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
}

/// Deals of the customers the caller sees, newest first.
#[utoipa::path(get, path = "/api/v1/deals", tag = "crm", params(DealParams),
    responses((status = 200, body = DealPage), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_deals(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<DealParams>,
) -> ApiResult<Json<DealPage>> {
    let owner = match params.owner.as_deref() {
        Some("me") => Some(user.actor.user_id.to_string()),
        other => other.map(str::to_owned),
    };
    let query = DealQuery {
        pipeline: params.pipeline,
        status: params.status,
        customer: params.customer,
        owner,
        cursor: params.cursor,
        limit: params.limit.unwrap_or(50),
    };
    Ok(Json(state.veil.list_deals(&user.actor, &query).await?))
}

/// Enters a deal on a customer the caller sees. Amounts are integers in minor units.
#[utoipa::path(post, path = "/api/v1/deals", tag = "crm", request_body = DealInput,
    responses((status = 201, body = DealView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_deal(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<DealInput>,
) -> ApiResult<(StatusCode, Json<DealView>)> {
    let view = state.veil.create_deal(&user.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One deal with its stage history.
#[utoipa::path(get, path = "/api/v1/deals/{id}", tag = "crm",
    params(("id" = String, Path, description = "Deal id")),
    responses((status = 200, body = DealView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_deal(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<DealView>> {
    Ok(Json(state.veil.get_deal(&user.actor, &id).await?))
}

/// Changes a deal's title, amount, currency or expected close date; `version` must be the one read (409 if
/// someone changed it since).
#[utoipa::path(patch, path = "/api/v1/deals/{id}", tag = "crm",
    params(("id" = String, Path, description = "Deal id")), request_body = DealPatch,
    responses((status = 200, body = DealView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn update_deal(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<DealPatch>,
) -> ApiResult<Json<DealView>> {
    Ok(Json(
        state.veil.update_deal(&user.actor, &id, &patch).await?,
    ))
}

/// Moves a deal to another stage and/or marks it won, lost (with a reason) or open again. Optimistic: `version`
/// must be the one read (409 if someone changed it since). Recorded in the stage history and the audit trail.
#[utoipa::path(post, path = "/api/v1/deals/{id}/stage", tag = "crm",
    params(("id" = String, Path, description = "Deal id")), request_body = StageMove,
    responses((status = 200, body = DealView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn move_deal(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<StageMove>,
) -> ApiResult<Json<DealView>> {
    Ok(Json(state.veil.move_deal(&user.actor, &id, &input).await?))
}

/// Task list filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskParams {
    /// `me` or a user id.
    pub assignee: Option<String>,
    /// Due strictly before this time (RFC 3339).
    pub due_before: Option<String>,
    /// Done (`true`) or not (`false`).
    pub done: Option<bool>,
    /// About this customer.
    pub customer: Option<String>,
    /// About this deal.
    pub deal: Option<String>,
    /// At most this many, 1–500 (default 100).
    pub limit: Option<u32>,
}

/// Follow-up tasks the caller sees (assigned to or created by them, or about a customer they see), soonest due
/// first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "crm", params(TaskParams),
    responses((status = 200, body = [TaskView]), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_tasks(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<TaskParams>,
) -> ApiResult<Json<Vec<TaskView>>> {
    let query = TaskQuery {
        assignee: params.assignee,
        due_before: params.due_before,
        done: params.done,
        customer: params.customer,
        deal: params.deal,
        limit: params.limit,
    };
    Ok(Json(state.veil.list_tasks(&user.actor, &query).await?))
}

/// Creates a follow-up task (about a customer or deal the caller sees, if any).
#[utoipa::path(post, path = "/api/v1/tasks", tag = "crm", request_body = TaskInput,
    responses((status = 201, body = TaskView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_task(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<TaskInput>,
) -> ApiResult<(StatusCode, Json<TaskView>)> {
    let view = state.veil.create_task(&user.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Marks a task done or not done (audited); 409 when it already is.
#[utoipa::path(patch, path = "/api/v1/tasks/{id}", tag = "crm",
    params(("id" = String, Path, description = "Task id")), request_body = TaskPatch,
    responses((status = 200, body = TaskView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn update_task(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<TaskPatch>,
) -> ApiResult<Json<TaskView>> {
    Ok(Json(
        state.veil.set_task_done(&user.actor, &id, &patch).await?,
    ))
}

/// The routes: pipelines, leads, deals, tasks.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pipelines))
        .routes(routes!(list_leads, create_lead))
        .routes(routes!(convert_lead))
        .routes(routes!(list_deals, create_deal))
        .routes(routes!(get_deal, update_deal))
        .routes(routes!(move_deal))
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(update_task))
}
