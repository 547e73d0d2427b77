//! Who is browsing, and proof that a form came from our own page.
//!
//! The web UI uses the same session as the API's cookie login: the bearer token in the HttpOnly, SameSite=Strict
//! `veil_session` cookie, and a CSRF token derived from it ([`crate::extract::csrf_for`]). API clients echo that
//! token in a header; our forms carry it in a hidden `csrf` field, which [`SignedForm`] checks before the form is
//! even parsed into its type, so no handler can forget it.
//!
//! Before there is a session (the sign-in form), a random nonce in an HttpOnly cookie scoped to `/login` plays
//! the CSRF token's part (double submit), so another site cannot sign a browser into an account of its choosing.
//! Between the password step and the TOTP step the typed password waits in this process's memory, keyed by a
//! random id in another `/login` cookie, for at most [`PENDING_LOGIN_TTL`]; it never goes back to the browser.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use veil_app::users::Password;
use veil_app::Actor;

use super::i18n::{negotiate, Tr};
use super::{error_page, Page};
use crate::extract::{csrf_for, CSRF_COOKIE, SESSION_COOKIE};
use crate::AppState;

/// The pre-session CSRF nonce of the sign-in form.
pub const LOGIN_NONCE_COOKIE: &str = "veil_login";
/// The id of a sign-in waiting for its TOTP code.
pub const PENDING_LOGIN_COOKIE: &str = "veil_login_pending";
/// How long a password-checked sign-in waits for its second factor.
pub const PENDING_LOGIN_TTL: Duration = Duration::from_secs(300);
/// Most sign-ins waiting at once; beyond it new ones are refused until old ones expire (memory stays bounded).
const MAX_PENDING_LOGINS: usize = 10_000;
/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// State the web UI keeps in this process's memory.
#[derive(Default)]
pub struct WebState {
    pending: Mutex<HashMap<String, PendingLogin>>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("WebState(<pending sign-ins>)")
    }
}

/// A sign-in whose password was right, waiting for the TOTP code.
pub struct PendingLogin {
    /// Login name.
    pub username: String,
    /// The password, zeroized on drop.
    pub password: Password,
    created: Instant,
}

impl WebState {
    /// Parks a sign-in until its second factor arrives; `None` when too many are waiting.
    pub fn park(&self, username: String, password: Password) -> Option<String> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        pending.retain(|_, login| login.created.elapsed() < PENDING_LOGIN_TTL);
        if pending.len() >= MAX_PENDING_LOGINS {
            return None;
        }
        let id = random_token();
        pending.insert(
            id.clone(),
            PendingLogin {
                username,
                password,
                created: Instant::now(),
            },
        );
        Some(id)
    }

    /// Takes a parked sign-in out (it is put back with [`WebState::restore`] after a wrong code).
    pub fn take(&self, id: &str) -> Option<PendingLogin> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        pending
            .remove(id)
            .filter(|login| login.created.elapsed() < PENDING_LOGIN_TTL)
    }

    /// Puts a sign-in back under its id, keeping its original deadline.
    pub fn restore(&self, id: String, login: PendingLogin) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        pending.insert(id, login);
    }
}

/// 128 random bits as hex.
pub fn random_token() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Compares two tokens without an early exit on the first difference.
pub fn same_token(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The value of cookie `name`, if sent and non-empty.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: SameSite=Strict always, `Secure` under TLS, HttpOnly unless a page must read it.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: i64,
    http_only: bool,
    tls: bool,
) -> Option<HeaderValue> {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; SameSite=Strict; Max-Age={max_age_secs}{http_only}{secure}"
    ))
    .ok()
}

/// The signed-in user of a page, from the session cookie. Without a valid session a page redirects to sign-in.
pub struct WebUser {
    /// Who.
    pub actor: Actor,
    /// The session's bearer token (for step-up checks and sign-out).
    pub token: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

impl WebUser {
    async fn from_headers(parts: &Parts, state: &AppState) -> Result<WebUser, veil_app::AppError> {
        let token =
            cookie(&parts.headers, SESSION_COOKIE).ok_or(veil_app::AppError::Unauthenticated)?;
        let mut actor = state.veil.authenticate(token).await?;
        actor.source_ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|axum::extract::ConnectInfo(address)| address.ip().to_string());
        Ok(WebUser {
            actor,
            csrf: csrf_for(token),
            token: token.to_owned(),
        })
    }
}

/// Where an anonymous visitor goes: the sign-in page, coming back here afterwards (GET pages only).
fn to_login(parts: &Parts) -> Response {
    let target = if parts.method == axum::http::Method::GET {
        format!("/login?next={}", super::encode_path(parts.uri.path()))
    } else {
        "/login".to_owned()
    };
    let mut response = Redirect::to(&target).into_response();
    // A stale session cookie would bring the browser straight back here; drop it.
    clear_session_cookies(response.headers_mut());
    response
}

/// Expires the session and CSRF cookies.
pub fn clear_session_cookies(headers: &mut HeaderMap) {
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Some(value) = set_cookie(name, "", "/", 0, true, false) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match WebUser::from_headers(parts, state).await {
            Ok(user) => Ok(user),
            Err(veil_app::AppError::Unauthenticated) => Err(to_login(parts)),
            Err(error) => {
                let page = Page::from_parts(parts);
                Err(error_page(&page, None, &error))
            }
        }
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Reads and decodes a form body (`application/x-www-form-urlencoded`), refusing more than 64 KiB.
pub async fn read_form<T: DeserializeOwned>(
    request: Request,
    tr: Tr,
) -> Result<(Parts, T, String), Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| plain_error(StatusCode::PAYLOAD_TOO_LARGE, tr.get("error.too_large")))?;
    let CsrfField { csrf } = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| plain_error(StatusCode::BAD_REQUEST, tr.get("error.bad_form")))?;
    // serde's messages may quote the offending value (a phone number): never shown or logged.
    let form = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| plain_error(StatusCode::BAD_REQUEST, tr.get("error.bad_form")))?;
    Ok((parts, form, csrf))
}

fn plain_error(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

/// A form posted by a signed-in user from one of our pages: the session is valid and the hidden `csrf` field
/// matches it. A missing or wrong token is `403` and nothing happens.
pub struct SignedForm<T> {
    /// Who posted it.
    pub user: WebUser,
    /// The decoded form.
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for SignedForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let tr = Tr::new(negotiate(request.headers()));
        let (mut parts, form, csrf) = read_form::<T>(request, tr).await?;
        let user = WebUser::from_request_parts(&mut parts, state).await?;
        if csrf.is_empty() || !same_token(&csrf, &user.csrf) {
            tracing::warn!(user = %user.actor.user_id, "web: form refused, CSRF token missing or wrong");
            let page = Page::from_parts(&parts);
            return Err(super::message_page(
                &page,
                Some(&user),
                StatusCode::FORBIDDEN,
                "error.csrf_title",
                "error.csrf",
            ));
        }
        Ok(SignedForm { user, form })
    }
}

/// A `multipart/form-data` form posted by a signed-in user from one of our pages, checked like [`SignedForm`].
/// Text fields are collected by name (a name may repeat); each file is hashed with SHA-256 as it streams in and
/// then dropped: only its fingerprint is kept, never its bytes (consent evidence is a signed document full of
/// personal data, and the database keeps the hash as proof of what was signed).
pub struct SignedMultipart {
    /// Who posted it.
    pub user: WebUser,
    /// Text fields, in order, by name.
    pub fields: Vec<(String, String)>,
    /// Non-empty files: field name and SHA-256 of the content (hex).
    pub file_hashes: Vec<(String, String)>,
}

impl SignedMultipart {
    /// The first value of text field `name`, or `""`.
    pub fn text(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_default()
    }

    /// Whether checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.fields.iter().any(|(field, _)| field == name)
    }
}

impl FromRequest<AppState> for SignedMultipart {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        use sha2::{Digest, Sha256};
        let tr = Tr::new(negotiate(request.headers()));
        let (mut parts, body) = request.into_parts();
        let user = WebUser::from_request_parts(&mut parts, state).await?;
        let page = Page::from_parts(&parts);
        let request = Request::from_parts(parts, body);
        let bad_form = || plain_error(StatusCode::BAD_REQUEST, tr.get("error.bad_form"));
        let mut multipart = axum::extract::Multipart::from_request(request, state)
            .await
            .map_err(|_| bad_form())?;
        let mut fields = Vec::new();
        let mut file_hashes = Vec::new();
        let mut text_bytes = 0usize;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(plain_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        tr.get("error.too_large"),
                    ))
                }
                Err(_) => return Err(bad_form()),
            };
            let name = field.name().unwrap_or_default().to_owned();
            if field.file_name().is_some() {
                let mut field = field;
                let mut hasher = Sha256::new();
                let mut size = 0usize;
                while let Some(chunk) = field.chunk().await.map_err(|_| bad_form())? {
                    size += chunk.len();
                    hasher.update(&chunk);
                }
                if size > 0 {
                    let digest = hasher.finalize();
                    let hex = digest.iter().map(|byte| format!("{byte:02x}")).collect();
                    file_hashes.push((name, hex));
                }
            } else {
                let value = field.text().await.map_err(|_| bad_form())?;
                text_bytes += value.len();
                if text_bytes > MAX_FORM_BYTES {
                    return Err(plain_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        tr.get("error.too_large"),
                    ));
                }
                fields.push((name, value));
            }
        }
        let form = SignedMultipart {
            user,
            fields,
            file_hashes,
        };
        let csrf = form.text("csrf");
        if csrf.is_empty() || !same_token(csrf, &form.user.csrf) {
            tracing::warn!(user = %form.user.actor.user_id, "web: form refused, CSRF token missing or wrong");
            return Err(super::message_page(
                &page,
                Some(&form.user),
                StatusCode::FORBIDDEN,
                "error.csrf_title",
                "error.csrf",
            ));
        }
        Ok(form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_logins_are_taken_once() {
        let state = WebState::default();
        let id = state
            .park("sally".to_owned(), Password::new("secret".to_owned()))
            .unwrap();
        assert_eq!(id.len(), 32);
        let login = state.take(&id).unwrap();
        assert_eq!(login.username, "sally");
        assert!(state.take(&id).is_none(), "taken once");
        state.restore(id.clone(), login);
        assert!(state.take(&id).is_some(), "restored after a wrong code");
        assert!(state.take("unknown").is_none());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        assert!(!same_token("", "a"));
        assert_ne!(random_token(), random_token());
    }
}
