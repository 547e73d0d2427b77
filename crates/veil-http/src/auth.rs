//! Login, logout and "who am I".

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::users::{Password, Role};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, CurrentUser};
use crate::AppState;

/// Login credentials.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// TOTP code (reserved for MFA).
    pub totp: Option<String>,
}

/// A bearer token.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// The caller.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    /// User id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Team.
    pub team: Option<String>,
}

/// Exchanges a username and password for a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let session = state
        .veil
        .login(&request.username, &request.password)
        .await?;
    Ok(Json(LoginResponse {
        token: session.token.expose().to_owned(),
        expires_at: veil_app::format_time(session.expires_at),
    }))
}

/// Revokes the caller's token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn logout(State(state): State<AppState>, user: CurrentUser) -> ApiResult<StatusCode> {
    state.veil.logout(&user.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn me(user: CurrentUser) -> Json<MeResponse> {
    Json(MeResponse {
        id: user.actor.user_id.to_string(),
        username: user.actor.username,
        role: user.actor.role,
        team: user.actor.team,
    })
}

/// The auth routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}
