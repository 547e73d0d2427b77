//! Security alerts raised by the monitor: listing (admins, DPOs, auditors) and acknowledging (admins and DPOs,
//! who handle incidents); and the newest security self-check results.

use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::monitor::{AlertPage, AlertQuery, AlertView};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiQuery, CurrentUser};
use crate::AppState;

/// The newest security self-check (`veil doctor` or the server's schedule); `null` before the first run.
#[utoipa::path(get, path = "/api/v1/security/checks", tag = "security",
    responses((status = 200, body = Option<veil_app::doctor::DoctorReport>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn latest_checks(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Option<veil_app::doctor::DoctorReport>>> {
    Ok(Json(state.veil.latest_doctor_report(&user.actor).await?))
}

/// Security alerts, newest first; open ones by default.
#[utoipa::path(get, path = "/api/v1/security/alerts", tag = "security", params(AlertQuery),
    responses((status = 200, body = AlertPage), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> ApiResult<Json<AlertPage>> {
    Ok(Json(state.veil.list_alerts(&user.actor, &query).await?))
}

/// Acknowledges an open alert (admins and DPOs).
#[utoipa::path(post, path = "/api/v1/security/alerts/{id}/acknowledge", tag = "security",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, body = AlertView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn acknowledge_alert(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertView>> {
    Ok(Json(state.veil.acknowledge_alert(&user.actor, &id).await?))
}

/// The alert routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(latest_checks))
        .routes(routes!(list_alerts))
        .routes(routes!(acknowledge_alert))
}
