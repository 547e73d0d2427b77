//! Care reminders (客户关怀): upcoming birthdays of the caller's customers and upcoming holidays, lunar festivals
//! included. Birthdays are found by the month and day stored at write time (`veil_app::care`); the response names
//! the customer masked and the day of the birthday, never the ID number or the year of birth.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::care::Reminders;

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiQuery, CurrentUser};
use crate::AppState;

/// The reminder window.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReminderParams {
    /// Days ahead, 0–60 (default 7; 0: today only).
    pub days: Option<u32>,
}

/// Upcoming birthdays of the customers the caller may list (sales: their own, managers: their team's, admins:
/// all) and upcoming holidays (fixed dates and lunar festivals), soonest first. Recorded in the audit log.
#[utoipa::path(get, path = "/api/v1/reminders", tag = "crm", params(ReminderParams),
    responses((status = 200, body = Reminders), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_reminders(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<ReminderParams>,
) -> ApiResult<Json<Reminders>> {
    Ok(Json(state.veil.reminders(&user.actor, params.days).await?))
}

/// The care routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_reminders))
}
