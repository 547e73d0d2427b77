//! `GET /api/v1/reports/tickets` and `GET /api/v1/reports/loyalty`: the figures the web UI's `/reports` page
//! draws, as JSON (see `veil_app::reports`). Counted by the database over what the caller may see; nothing in
//! them is personal data except masked ticket subjects.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::reports::{LoyaltyReport, TicketReport};

use crate::error::{ApiResult, Problem};
use crate::extract::CurrentUser;
use crate::AppState;

/// Tickets and their SLA over the tickets the caller sees (admins all; others those of their customers, those
/// assigned to them and, for managers, to their team tree): open tickets per status and priority, how many are
/// breached or at risk now and which (masked subjects), first-response and resolution SLA met vs breached per
/// week over the last 12 weeks, and the mean time to the first response.
#[utoipa::path(get, path = "/api/v1/reports/tickets", tag = "crm",
    responses((status = 200, body = TicketReport), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn ticket_report(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<TicketReport>> {
    Ok(Json(state.veil.ticket_report(&user.actor).await?))
}

/// The loyalty programme over the customers the caller may list: members per tier, points earned, redeemed,
/// expired and reversed per month over the last 12 months, and the rewards most points were redeemed for.
#[utoipa::path(get, path = "/api/v1/reports/loyalty", tag = "crm",
    responses((status = 200, body = LoyaltyReport), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn loyalty_report(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<LoyaltyReport>> {
    Ok(Json(state.veil.loyalty_report(&user.actor).await?))
}

/// The report routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ticket_report))
        .routes(routes!(loyalty_report))
}
