//! Incident response over HTTP (admins and DPOs): open (lock-down), close, list, and the affected-subjects
//! report with notification templates.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::incident::{CloseIncident, IncidentReport, IncidentView, Lockdown, OpenIncident};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::AppState;

/// Every incident, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents",
    responses((status = 200, body = Vec<IncidentView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_incidents(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<IncidentView>>> {
    Ok(Json(state.veil.list_incidents(&user.actor).await?))
}

/// Opens an incident: lock-down at once (reveals and exports blocked, every session but admins' and DPOs' ended).
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = OpenIncident,
    responses((status = 201, body = Lockdown), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn open_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<OpenIncident>,
) -> ApiResult<(StatusCode, Json<Lockdown>)> {
    let lockdown = state
        .veil
        .open_incident_as(Some(&user.actor), &input)
        .await?;
    Ok((StatusCode::CREATED, Json(lockdown)))
}

/// Closes the open incident, lifting the lock-down.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/close", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")), request_body = CloseIncident,
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn close_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CloseIncident>,
) -> ApiResult<Json<IncidentView>> {
    Ok(Json(
        state
            .veil
            .close_incident_as(Some(&user.actor), Some(&id), &input)
            .await?,
    ))
}

/// The period of an incident report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportPeriod {
    /// From (YYYY-MM-DD or RFC 3339), inclusive; default 30 days before `to`.
    pub from: Option<String>,
    /// To (YYYY-MM-DD or RFC 3339), exclusive; default now.
    pub to: Option<String>,
}

/// Who revealed or exported which customers' which fields in the period, with notification templates
/// (customers and regulator, Chinese and English).
#[utoipa::path(get, path = "/api/v1/incidents/report", tag = "incidents", params(ReportPeriod),
    responses((status = 200, body = IncidentReport), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn incident_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(period): ApiQuery<ReportPeriod>,
) -> ApiResult<Json<IncidentReport>> {
    let to = match &period.to {
        Some(text) => veil_app::audit::parse_time("to", text)?,
        None => veil_app::now_ms(),
    };
    let from = match &period.from {
        Some(text) => veil_app::audit::parse_time("from", text)?,
        None => to - 30 * 24 * 60 * 60 * 1000,
    };
    Ok(Json(
        state
            .veil
            .incident_report(Some(&user.actor), from, to)
            .await?,
    ))
}

/// The incident routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_incidents, open_incident))
        .routes(routes!(close_incident))
        .routes(routes!(incident_report))
}
