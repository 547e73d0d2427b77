//! Sign-in (password, then TOTP when the account has MFA), sign-out and the language switch.
//!
//! Sign-in goes through the same domain call as `POST /api/v1/auth/login` (`Veil::login_with`), so lock-outs,
//! the password policy and MFA behave identically; it then sets the same session cookies as the API's
//! `?session=cookie` login.

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::users::{LoginAttempt, LoginError, Password, Session};

use super::i18n::{Locale, Tr, LANG_COOKIE};
use super::session::{
    clear_session_cookies, cookie, random_token, read_form, same_token, set_cookie, SignedForm,
    LOGIN_NONCE_COOKIE, PENDING_LOGIN_COOKIE, PENDING_LOGIN_TTL,
};
use super::{local_path, render, Layout, Page};
use crate::auth::ClientAddress;
use crate::extract::{csrf_for, CSRF_COOKIE, SESSION_COOKIE};
use crate::AppState;

/// How long the sign-in form's nonce lives.
const LOGIN_NONCE_SECS: i64 = 900;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate {
    t: Tr,
    layout: Layout,
    nonce: String,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "login_totp.html")]
struct TotpTemplate {
    t: Tr,
    layout: Layout,
    nonce: String,
    next: String,
    error: Option<String>,
}

/// `?next=` after sign-in.
#[derive(Deserialize)]
pub struct NextParams {
    next: Option<String>,
}

/// The sign-in form, with a fresh nonce cookie for its CSRF check.
pub async fn login_form(
    State(state): State<AppState>,
    page: Page,
    Query(params): Query<NextParams>,
) -> Response {
    let nonce = random_token();
    let template = LoginTemplate {
        t: page.tr,
        layout: Layout::new(&page, None),
        nonce: nonce.clone(),
        next: local_path(params.next.as_deref()),
        username: String::new(),
        error: None,
    };
    let mut response = render(&template, page.tr, StatusCode::OK);
    if let Some(value) = set_cookie(
        LOGIN_NONCE_COOKIE,
        &nonce,
        "/login",
        LOGIN_NONCE_SECS,
        true,
        state.tls,
    ) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
struct TotpForm {
    #[serde(default)]
    code: String,
    next: Option<String>,
}

/// The nonce cookie matches the form's `csrf` field.
fn nonce_matches(headers: &HeaderMap, sent: &str) -> Option<String> {
    let expected = cookie(headers, LOGIN_NONCE_COOKIE)?;
    (!sent.is_empty() && same_token(sent, expected)).then(|| expected.to_owned())
}

/// A stale or forged sign-in form: start again with a fresh one.
fn restart_login() -> Response {
    Redirect::to("/login").into_response()
}

/// Password step. Right password without MFA: signed in. With MFA: the TOTP step.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    request: Request,
) -> Response {
    let page = Page::of(&request);
    let (parts, form, csrf) = match read_form::<LoginForm>(request, page.tr).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let Some(nonce) = nonce_matches(&parts.headers, &csrf) else {
        tracing::warn!("web: sign-in form refused, nonce missing or wrong");
        return restart_login();
    };
    let next = local_path(form.next.as_deref());
    let password = Password::new(form.password);
    let attempt = LoginAttempt {
        username: form.username.trim(),
        password: &password,
        second_factor: None,
        client,
    };
    let result = state.veil.login_with(attempt).await;
    match result {
        Ok(session) => signed_in(&state, &session, &next),
        Err(LoginError::MfaRequired) => {
            let Some(id) = state.web.park(form.username.trim().to_owned(), password) else {
                return login_failed(
                    &page,
                    nonce,
                    next,
                    form.username,
                    "login.busy",
                    StatusCode::SERVICE_UNAVAILABLE,
                );
            };
            let template = TotpTemplate {
                t: page.tr,
                layout: Layout::new(&page, None),
                nonce,
                next,
                error: None,
            };
            let mut response = render(&template, page.tr, StatusCode::OK);
            if let Some(value) = set_cookie(
                PENDING_LOGIN_COOKIE,
                &id,
                "/login",
                PENDING_LOGIN_TTL.as_secs() as i64,
                true,
                state.tls,
            ) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(LoginError::Locked { retry_after_secs }) => {
            let message = page.tr.fill(
                "login.locked",
                &[("seconds", &retry_after_secs.to_string())],
            );
            login_failed_message(
                &page,
                nonce,
                next,
                form.username,
                message,
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(LoginError::MfaInvalid) | Err(LoginError::App(veil_app::AppError::Unauthenticated)) => {
            login_failed(
                &page,
                nonce,
                next,
                form.username,
                "login.failed",
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(LoginError::App(error)) => super::error_page(&page, None, &error),
    }
}

fn login_failed(
    page: &Page,
    nonce: String,
    next: String,
    username: String,
    key: &'static str,
    status: StatusCode,
) -> Response {
    login_failed_message(
        page,
        nonce,
        next,
        username,
        page.tr.get(key).to_owned(),
        status,
    )
}

fn login_failed_message(
    page: &Page,
    nonce: String,
    next: String,
    username: String,
    message: String,
    status: StatusCode,
) -> Response {
    let template = LoginTemplate {
        t: page.tr,
        layout: Layout::new(page, None),
        nonce,
        next,
        username,
        error: Some(message),
    };
    render(&template, page.tr, status)
}

/// TOTP step: the parked sign-in plus the code. A wrong code keeps the sign-in parked (it counts towards the
/// lock-out like any failed login).
pub async fn login_totp(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    request: Request,
) -> Response {
    let page = Page::of(&request);
    let (parts, form, csrf) = match read_form::<TotpForm>(request, page.tr).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let Some(nonce) = nonce_matches(&parts.headers, &csrf) else {
        tracing::warn!("web: TOTP form refused, nonce missing or wrong");
        return restart_login();
    };
    let next = local_path(form.next.as_deref());
    let Some(id) = cookie(&parts.headers, PENDING_LOGIN_COOKIE).map(str::to_owned) else {
        return restart_login();
    };
    let Some(pending) = state.web.take(&id) else {
        return restart_login();
    };
    let attempt = LoginAttempt {
        username: &pending.username,
        password: &pending.password,
        second_factor: Some(form.code.trim()),
        client,
    };
    let result = state.veil.login_with(attempt).await;
    match result {
        Ok(session) => {
            let mut response = signed_in(&state, &session, &next);
            if let Some(value) = set_cookie(PENDING_LOGIN_COOKIE, "", "/login", 0, true, state.tls)
            {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(LoginError::MfaInvalid) | Err(LoginError::MfaRequired) => {
            state.web.restore(id, pending);
            let template = TotpTemplate {
                t: page.tr,
                layout: Layout::new(&page, None),
                nonce,
                next,
                error: Some(page.tr.get("login.totp_invalid").to_owned()),
            };
            render(&template, page.tr, StatusCode::UNAUTHORIZED)
        }
        Err(LoginError::Locked { retry_after_secs }) => {
            let message = page.tr.fill(
                "login.locked",
                &[("seconds", &retry_after_secs.to_string())],
            );
            login_failed_message(
                &page,
                nonce,
                next,
                pending.username.clone(),
                message,
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(LoginError::App(veil_app::AppError::Unauthenticated)) => login_failed(
            &page,
            nonce,
            next,
            pending.username.clone(),
            "login.failed",
            StatusCode::UNAUTHORIZED,
        ),
        Err(LoginError::App(error)) => super::error_page(&page, None, &error),
    }
}

/// Sets the session cookies (as the API's cookie login does) and goes to `next`.
fn signed_in(state: &AppState, session: &Session, next: &str) -> Response {
    let token = session.token.expose();
    let max_age = veil_app::users::TOKEN_LIFETIME_MS / 1000;
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    for value in [
        set_cookie(SESSION_COOKIE, token, "/", max_age, true, state.tls),
        set_cookie(
            CSRF_COOKIE,
            &csrf_for(token),
            "/",
            max_age,
            false,
            state.tls,
        ),
        set_cookie(LOGIN_NONCE_COOKIE, "", "/login", 0, true, state.tls),
    ]
    .into_iter()
    .flatten()
    {
        headers.append(header::SET_COOKIE, value);
    }
    response
}

/// Ends the session (the token is revoked server-side) and clears the cookies.
pub async fn logout(State(state): State<AppState>, signed: SignedForm<LogoutForm>) -> Response {
    if let Err(error) = state.veil.logout(&signed.user.token).await {
        tracing::warn!(%error, "web: sign-out could not revoke the session");
    }
    let mut response = Redirect::to("/login").into_response();
    clear_session_cookies(response.headers_mut());
    response
}

/// The sign-out form has no fields besides its CSRF token.
#[derive(Deserialize)]
pub struct LogoutForm {}

/// `?set=zh&next=/customers`.
#[derive(Deserialize)]
pub struct LanguageParams {
    set: Option<String>,
    next: Option<String>,
}

/// Remembers the chosen language for a year and returns to the page. A preference, not a state change worth a
/// CSRF token: the worst another site can do is switch the visitor's language.
pub async fn switch_language(
    State(state): State<AppState>,
    Query(params): Query<LanguageParams>,
) -> Response {
    let next = local_path(params.next.as_deref());
    let mut response = Redirect::to(&next).into_response();
    if let Some(locale) = params.set.as_deref().and_then(Locale::from_code) {
        if let Some(value) = set_cookie(
            LANG_COOKIE,
            locale.code(),
            "/",
            365 * 24 * 3600,
            false,
            state.tls,
        ) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
