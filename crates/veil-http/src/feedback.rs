//! Customer feedback: scores staff record, NPS surveys with their public links, and the feedback analysis. The
//! public survey page itself is a web page (`web::survey`), not part of the API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::feedback::{
    FeedbackInput, FeedbackSummary, FeedbackView, NpsSurveyBatch, NpsSurveyInput, SummaryQuery,
};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::AppState;

/// Records feedback staff received (by phone, in the store…) from a customer they see: a CSAT (1–5) or NPS
/// (0–10) score and an optional comment, masked like notes.
#[utoipa::path(post, path = "/api/v1/feedback", tag = "crm", request_body = FeedbackInput,
    responses((status = 201, body = FeedbackView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn record_feedback(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<FeedbackInput>,
) -> ApiResult<(StatusCode, Json<FeedbackView>)> {
    let view = state.veil.record_feedback(&user.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Creates an NPS survey (0–10) for each named customer, or for the customers of one of the caller's saved
/// segments (admins and managers, customers in their scope), and returns the single-use public links.
#[utoipa::path(post, path = "/api/v1/surveys/nps", tag = "crm", request_body = NpsSurveyInput,
    responses((status = 201, body = NpsSurveyBatch), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_nps_surveys(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<NpsSurveyInput>,
) -> ApiResult<(StatusCode, Json<NpsSurveyBatch>)> {
    let batch = state.veil.create_nps_surveys(&user.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(batch)))
}

/// The summary window and grouping.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Start: a date (`YYYY-MM-DD`, midnight in China Standard Time) or an RFC 3339 time (default: 365 days
    /// before `to`).
    pub from: Option<String>,
    /// End, exclusive (default: the end of today in China Standard Time).
    pub to: Option<String>,
    /// `month` (default), `agent`, `channel` or `product`.
    pub by: Option<String>,
    /// How many complaint terms, 1–100 (default 20).
    pub top: Option<u32>,
}

/// The feedback analysis: CSAT average and distribution and NPS per group and per month, and the most frequent
/// complaint terms, over the customers the caller may list (admins all, managers their team tree, salespeople
/// their own).
#[utoipa::path(get, path = "/api/v1/feedback/summary", tag = "crm", params(SummaryParams),
    responses((status = 200, body = FeedbackSummary), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn feedback_summary(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> ApiResult<Json<FeedbackSummary>> {
    let query = SummaryQuery {
        from: params.from,
        to: params.to,
        by: params.by,
        top: params.top,
    };
    Ok(Json(
        state.veil.feedback_summary(&user.actor, &query).await?,
    ))
}

/// The feedback routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record_feedback))
        .routes(routes!(create_nps_surveys))
        .routes(routes!(feedback_summary))
}
