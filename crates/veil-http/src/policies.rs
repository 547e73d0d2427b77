//! Masking policies: read-only over HTTP. Changes go through the governed `policy_change` request (a later
//! issue); until then an admin records them with `veil policy set`.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::policies::PolicyState;

use crate::error::{ApiResult, Problem};
use crate::extract::CurrentUser;
use crate::AppState;

/// The masking policy in force (document and version) with its history.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies",
    responses((status = 200, body = PolicyState), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn get_policies(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<PolicyState>> {
    Ok(Json(state.veil.policy_state(&user.actor).await?))
}

/// The policy routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_policies))
}
