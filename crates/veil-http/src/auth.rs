//! Login (with lock-outs and the TOTP second factor), logout, "who am I", and MFA enrolment and step-up.
//!
//! A locked-out login is `429` problem+json with `code: "locked"` and `Retry-After`, said the same way whether or
//! not the username exists. A login whose password is right but whose second factor is missing is `401` with
//! `code: "mfa_required"`; a wrong or replayed second factor is `401` with `code: "mfa_invalid"`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::users::{LoginAttempt, LoginError, Password, Role};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, CurrentUser};
use crate::AppState;

/// The TCP peer's address, when the server was started with connect info (`veil serve` is); `None` in in-process
/// tests, where only the per-account lock-out applies.
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip()),
        ))
    }
}

/// The problem response of a failed login or step-up.
fn login_problem(error: LoginError) -> Response {
    match error {
        LoginError::Locked { retry_after_secs } => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "locked",
                "Too many failed attempts",
                format!("too many failed attempts; try again in {retry_after_secs} seconds"),
            )
            .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
            response
        }
        LoginError::MfaRequired => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mfa_required",
                "Second factor required",
                "this account uses MFA: send a TOTP code (or a recovery code) in `totp`",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        LoginError::MfaInvalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "mfa_invalid",
            "Second factor rejected",
            "the code is wrong, expired or was already used",
        )
        .into_response(),
        LoginError::App(error) => ApiError::from(error).into_response(),
    }
}

/// Login credentials.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// The current TOTP code, or a recovery code; required when the account has MFA enabled.
    #[schema(value_type = Option<String>, format = Password)]
    pub totp: Option<Password>,
    /// A recovery code (may also be sent in `totp`).
    #[schema(value_type = Option<String>, format = Password)]
    pub recovery_code: Option<Password>,
}

/// Login options.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginParams {
    /// `cookie`: start a browser session instead of returning a bearer token — the token goes into an HttpOnly,
    /// SameSite=Strict cookie (Secure under TLS) and the response carries the CSRF token to echo in
    /// `X-CSRF-Token` on state-changing requests.
    pub session: Option<String>,
}

/// A bearer token (or, for a cookie session, the CSRF token).
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>` (absent for a cookie session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// For a cookie session: echo in `X-CSRF-Token` on POST/PATCH/PUT/DELETE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
    /// The login proved a second factor (the token counts as freshly verified for step-up).
    pub mfa_verified: bool,
    /// The account's role must use MFA and it is not enrolled yet: enrol with `POST /api/v1/auth/mfa/enroll`.
    /// Until then, actions that need a recent second factor (reveals) are refused.
    pub mfa_enrollment_required: bool,
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
    /// MFA (TOTP) is enabled.
    pub mfa_enabled: bool,
    /// The role must use MFA and it is not enrolled yet.
    pub mfa_enrollment_required: bool,
}

/// Exchanges a username and password (and, with MFA, a TOTP or recovery code) for a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, params(LoginParams),
    responses((status = 200, body = LoginResponse),
        (status = 401, body = Problem, description = "`unauthenticated`, `mfa_required` or `mfa_invalid`"),
        (status = 429, body = Problem, description = "`locked`: too many failures; see `Retry-After`")))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    crate::extract::ApiQuery(params): crate::extract::ApiQuery<LoginParams>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, Response> {
    let cookie = match params.session.as_deref() {
        None => false,
        Some("cookie") => true,
        Some(_) => {
            return Err(
                ApiError::bad_request("session must be \"cookie\" when given").into_response(),
            )
        }
    };
    let second_factor = request.totp.as_ref().or(request.recovery_code.as_ref());
    let session = state
        .veil
        .login_with(LoginAttempt {
            username: &request.username,
            password: &request.password,
            second_factor: second_factor.map(Password::expose),
            client,
        })
        .await
        .map_err(login_problem)?;
    let token = session.token.expose();
    let body = LoginResponse {
        token: (!cookie).then(|| token.to_owned()),
        csrf_token: cookie.then(|| crate::extract::csrf_for(token)),
        expires_at: veil_app::format_time(session.expires_at),
        mfa_verified: session.mfa_verified,
        mfa_enrollment_required: session.mfa_enrollment_required,
    };
    let mut response = Json(body).into_response();
    if cookie {
        let secure = if state.tls { "; Secure" } else { "" };
        let max_age = veil_app::users::TOKEN_LIFETIME_MS / 1000;
        for value in [
            format!(
                "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
                crate::extract::SESSION_COOKIE
            ),
            format!(
                "{}={}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}",
                crate::extract::CSRF_COOKIE,
                crate::extract::csrf_for(token)
            ),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
    }
    Ok(response)
}

/// Revokes the caller's token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn logout(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Response> {
    state.veil.logout(&user.token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for name in [crate::extract::SESSION_COOKIE, crate::extract::CSRF_COOKIE] {
        if let Ok(value) =
            HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0; SameSite=Strict"))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<MeResponse>> {
    let mfa = state.veil.mfa_status(&user.actor).await?;
    Ok(Json(MeResponse {
        id: user.actor.user_id.to_string(),
        username: user.actor.username,
        role: user.actor.role,
        team: user.actor.team,
        mfa_enabled: mfa.enabled,
        mfa_enrollment_required: mfa.enrollment_required,
    }))
}

/// A new TOTP secret, shown once.
#[derive(Serialize, ToSchema)]
pub struct MfaEnrollResponse {
    /// Base32 secret (RFC 4648, no padding) for manual entry.
    pub secret: String,
    /// `otpauth://totp/Veil:<username>?secret=…&issuer=Veil&algorithm=SHA1&digits=6&period=30`, for a QR code.
    pub otpauth_uri: String,
}

/// A code from the authenticator app (or, for `verify`, a recovery code).
#[derive(Deserialize, ToSchema)]
pub struct MfaCodeRequest {
    /// Six digits, or a recovery code `xxxx-xxxx-xxxx-xxxx`.
    #[schema(value_type = String, format = Password)]
    pub code: Password,
}

/// MFA is active; the recovery codes are shown this once.
#[derive(Serialize, ToSchema)]
pub struct MfaConfirmResponse {
    /// Ten one-time recovery codes; each replaces a TOTP code once.
    pub recovery_codes: Vec<String>,
}

/// The step-up succeeded.
#[derive(Serialize, ToSchema)]
pub struct MfaVerifyResponse {
    /// RFC 3339: when the second factor was verified.
    pub mfa_verified_at: String,
    /// RFC 3339: until when actions that need a recent second factor are allowed with this token.
    pub step_up_valid_until: String,
}

/// Starts TOTP enrolment: a fresh secret (stored sealed) and its `otpauth://` URI. Restarting replaces a pending
/// enrolment; with MFA already active it is `409`.
#[utoipa::path(post, path = "/api/v1/auth/mfa/enroll", tag = "auth",
    responses((status = 200, body = MfaEnrollResponse), (status = 401, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn mfa_enroll(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<MfaEnrollResponse>> {
    let enrollment = state.veil.enroll_mfa(&user.actor).await?;
    Ok(Json(MfaEnrollResponse {
        secret: enrollment.secret.as_str().to_owned(),
        otpauth_uri: enrollment.otpauth_uri.as_str().to_owned(),
    }))
}

/// Activates the pending enrolment with a first code; returns ten one-time recovery codes.
#[utoipa::path(post, path = "/api/v1/auth/mfa/confirm", tag = "auth", request_body = MfaCodeRequest,
    responses((status = 200, body = MfaConfirmResponse), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "no pending enrolment"),
        (status = 422, body = Problem, description = "wrong code")),
    security(("bearer" = [])))]
pub async fn mfa_confirm(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(request): ApiJson<MfaCodeRequest>,
) -> ApiResult<Json<MfaConfirmResponse>> {
    let codes = state
        .veil
        .confirm_mfa(&user.actor, request.code.expose())
        .await?;
    Ok(Json(MfaConfirmResponse {
        recovery_codes: codes.expose(),
    }))
}

/// Step-up: proves a second factor now, so that this token may perform actions that need a recent one (reveals)
/// for the next 10 minutes. Wrong codes count towards the account's lock-out.
#[utoipa::path(post, path = "/api/v1/auth/mfa/verify", tag = "auth", request_body = MfaCodeRequest,
    responses((status = 200, body = MfaVerifyResponse), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "MFA not enabled"),
        (status = 422, body = Problem, description = "wrong or replayed code"),
        (status = 429, body = Problem, description = "`locked`")),
    security(("bearer" = [])))]
pub async fn mfa_verify(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(request): ApiJson<MfaCodeRequest>,
) -> Result<Json<MfaVerifyResponse>, Response> {
    let verified_at = state
        .veil
        .verify_mfa(&user.actor, &user.token, request.code.expose())
        .await
        .map_err(login_problem)?;
    Ok(Json(MfaVerifyResponse {
        mfa_verified_at: veil_app::format_time(verified_at),
        step_up_valid_until: veil_app::format_time(verified_at + veil_app::mfa::STEP_UP_WINDOW_MS),
    }))
}

/// The caller's active tokens (sessions and API tokens).
#[utoipa::path(get, path = "/api/v1/auth/tokens", tag = "auth",
    responses((status = 200, body = Vec<veil_app::tokens::TokenView>), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<veil_app::tokens::TokenView>>> {
    Ok(Json(
        state.veil.list_tokens(&user.actor, &user.token).await?,
    ))
}

/// Creates a scoped API token for an integration; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/auth/tokens", tag = "auth", request_body = veil_app::tokens::ApiTokenInput,
    responses((status = 201, body = veil_app::tokens::CreatedApiToken), (status = 403, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<veil_app::tokens::ApiTokenInput>,
) -> ApiResult<(StatusCode, Json<veil_app::tokens::CreatedApiToken>)> {
    let created = state
        .veil
        .create_api_token(&user.actor, &user.token, &input)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes one of the caller's tokens; it stops working on the next request.
#[utoipa::path(delete, path = "/api/v1/auth/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "Token id from the token list")),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    state.veil.revoke_token_by_id(&user.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The auth routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(mfa_enroll))
        .routes(routes!(mfa_confirm))
        .routes(routes!(mfa_verify))
}
