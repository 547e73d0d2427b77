//! Customer feedback: scores staff record, NPS surveys with their public links, and the feedback analysis. The
//! public survey page itself is a web page (`web::survey`), not part of the API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::feedback::{
    CampaignSendInput, CampaignSendReport, CampaignView, CustomerSurveyView, FeedbackInput,
    FeedbackSummary, FeedbackView, NpsSurveyBatch, NpsSurveyInput, SummaryQuery, SurveySendInput,
    SurveySent,
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

/// Sends a survey's link to its customer by e-mail or SMS, from a template containing `{{survey.link}}`
/// (anyone who sees the customer). The message carries a link of its own, to the server's public address
/// (`VEIL_PUBLIC_URL`); the links shown at creation stop working. Sending again is a reminder: every link sent
/// works until the survey is answered or expires. 422 `survey_answered` / `survey_expired` for a closed survey,
/// `consent_required` without a live consent for the template's purpose and the channel.
#[utoipa::path(post, path = "/api/v1/surveys/{id}/send", tag = "crm",
    params(("id" = String, Path, description = "Survey id")), request_body = SurveySendInput,
    responses((status = 201, body = SurveySent), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn send_survey(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SurveySendInput>,
) -> ApiResult<(StatusCode, Json<SurveySent>)> {
    let sent = state.veil.send_survey(&user.actor, &id, &input).await?;
    Ok((StatusCode::CREATED, Json(sent)))
}

/// An NPS campaign's progress (admins and managers, customers in their scope): each survey `open`, `answered`
/// or `expired`, with how often its link was sent.
#[utoipa::path(get, path = "/api/v1/surveys/campaigns/{id}", tag = "crm",
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = CampaignView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn campaign_progress(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    Ok(Json(state.veil.campaign_progress(&user.actor, &id).await?))
}

/// Sends the survey link to every customer of an NPS campaign who has not answered (admins and managers,
/// customers in their scope); run again, it is the reminder, for those whose link was sent at least
/// `remind_after_hours` (default 24) ago. Per-customer outcomes (`sent`, `failed`, `consent_required`,
/// `no_email`, `no_mobile`, `answered`, `expired`, `recently_sent`, `sent_concurrently`) without personal data.
/// 422 `campaign_closed` when every survey has been answered or has expired.
#[utoipa::path(post, path = "/api/v1/surveys/campaigns/{id}/send", tag = "crm",
    params(("id" = String, Path, description = "Campaign id")), request_body = CampaignSendInput,
    responses((status = 200, body = CampaignSendReport), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn send_campaign(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CampaignSendInput>,
) -> ApiResult<Json<CampaignSendReport>> {
    Ok(Json(
        state.veil.send_campaign(&user.actor, &id, &input).await?,
    ))
}

/// A customer's surveys (CSAT after a ticket, NPS from a campaign), newest first: whether each is open, answered
/// or expired, how often its link was sent, and whether the caller may send it (`POST /api/v1/surveys/{id}/send`).
/// No link: a survey's links exist only in the messages the server sent.
#[utoipa::path(get, path = "/api/v1/customers/{id}/surveys", tag = "crm",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = [CustomerSurveyView]), (status = 403, body = Problem),
        (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn customer_surveys(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<CustomerSurveyView>>> {
    let id = crate::extract::parse_customer(&id)?;
    Ok(Json(state.veil.customer_surveys(&user.actor, id).await?))
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
        .routes(routes!(send_survey))
        .routes(routes!(customer_surveys))
        .routes(routes!(campaign_progress))
        .routes(routes!(send_campaign))
        .routes(routes!(feedback_summary))
}
