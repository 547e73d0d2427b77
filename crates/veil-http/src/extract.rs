//! Our own extractors: JSON bodies and query strings whose rejections use the problem format, and
//! [`CurrentUser`], which every protected handler takes so that forgetting authentication does not compile.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use veil_app::{Actor, AppError};

use crate::error::ApiError;
use crate::AppState;

/// A JSON body; malformed JSON is a 400 and a wrong shape a 422, both as problem+json.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                use axum::extract::rejection::JsonRejection;
                Err(match rejection {
                    JsonRejection::JsonDataError(error) => ApiError::new(
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_body",
                        "Invalid request body",
                        describe_without_values(&error.body_text()),
                    ),
                    JsonRejection::JsonSyntaxError(error) => {
                        ApiError::bad_request(describe_without_values(&error.body_text()))
                    }
                    other => ApiError::bad_request(other.body_text()),
                })
            }
        }
    }
}

/// An optional JSON body (`Option<ApiJson<T>>`): no body at all is `None`; a body is parsed as [`ApiJson`], and a
/// non-empty body without a JSON content type is a 400 rather than silently ignored.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            return <ApiJson<T> as FromRequest<S>>::from_request(request, state)
                .await
                .map(Some);
        }
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else {
            Err(ApiError::bad_request(
                "a request body must be sent with Content-Type: application/json",
            ))
        }
    }
}

/// A customer id from a path: one that does not parse is a customer that does not exist (404), as for any id.
pub fn parse_customer(text: &str) -> crate::error::ApiResult<veil_app::CustomerId> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// serde's messages quote offending values (`invalid type: string "138…"`); keep the field path and what was
/// expected, drop every quoted value, so a rejected phone number is never echoed back or logged.
pub fn describe_without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for character in message.chars() {
        match quote {
            Some(open) if character == open => {
                out.push('…');
                out.push(character);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(character);
                if character == '"' {
                    quote = Some('"');
                }
            }
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    // Numbers and booleans are unquoted: `invalid type: integer `13812345678``.
    let mut cleaned = String::with_capacity(out.len());
    let mut inside_backticks = false;
    let mut segment = String::new();
    for character in out.chars() {
        if character == '`' {
            if inside_backticks {
                // Field names are backticked too (`unknown field `mobile``): keep identifiers, drop values.
                if segment.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                    cleaned.push_str(&segment);
                } else {
                    cleaned.push('…');
                }
                segment.clear();
            }
            inside_backticks = !inside_backticks;
            cleaned.push(character);
        } else if inside_backticks {
            segment.push(character);
        } else {
            cleaned.push(character);
        }
    }
    if inside_backticks {
        cleaned.push('…');
    }
    let digits_scrubbed: String = {
        // Any run of 5+ digits that survived (unquoted numbers) is replaced.
        let mut result = String::with_capacity(cleaned.len());
        let mut run = String::new();
        for character in cleaned.chars().chain(std::iter::once(' ')) {
            if character.is_ascii_digit() {
                run.push(character);
            } else {
                if run.len() >= 5 {
                    result.push('…');
                } else {
                    result.push_str(&run);
                }
                run.clear();
                result.push(character);
            }
        }
        result.pop();
        result
    };
    digits_scrubbed
}

/// A query string; a wrong shape is a 400 as problem+json.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError::bad_request(describe_without_values(&rejection.body_text()))
            })
    }
}

/// The authenticated caller, from `Authorization: Bearer <token>`.
pub struct CurrentUser {
    /// Who is calling.
    pub actor: Actor,
    /// The raw token (for logout).
    pub token: String,
}

/// Name of the session cookie the web UI uses (HttpOnly: scripts cannot read it).
pub const SESSION_COOKIE: &str = "veil_session";
/// Name of the CSRF cookie (readable by the page, which echoes it in [`CSRF_HEADER`]).
pub const CSRF_COOKIE: &str = "veil_csrf";
/// Header that must carry the CSRF token on state-changing requests authenticated by the session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token bound to a session token: derived, so nothing extra is stored, and useless without the
/// session it belongs to. A page on another site can make the browser send the cookie but cannot read this.
pub fn csrf_for(session_token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"veil csrf v1\0")
        .chain_update(session_token.as_bytes())
        .finalize();
    digest
        .iter()
        .take(20)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty());
        let token = match bearer {
            Some(token) => token,
            None => {
                let token = cookie_value(parts, SESSION_COOKIE).ok_or(AppError::Unauthenticated)?;
                // A cookie rides along with cross-site requests; a state change must prove it came from our
                // page by echoing the CSRF token it could read.
                if !parts.method.is_safe() {
                    let sent = parts
                        .headers
                        .get(CSRF_HEADER)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default();
                    if sent.is_empty() || sent != csrf_for(token) {
                        return Err(ApiError::new(
                            axum::http::StatusCode::FORBIDDEN,
                            "csrf",
                            "CSRF check failed",
                            "state-changing requests with the session cookie need the X-CSRF-Token header",
                        ));
                    }
                }
                token
            }
        };
        // The rate-limit middleware already resolved a bearer token for this very request; reuse its answer
        // instead of looking the token up a second time.
        let resolved = bearer
            .is_some()
            .then(|| parts.extensions.get::<Actor>().cloned())
            .flatten();
        let mut actor = match resolved {
            Some(actor) => actor,
            None => state.veil.authenticate(token).await?,
        };
        // The audit trail records where each action came from.
        actor.source_ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|axum::extract::ConnectInfo(address)| address.ip().to_string());
        Ok(CurrentUser {
            actor,
            token: token.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::describe_without_values;

    #[test]
    fn values_are_not_echoed() {
        for (message, forbidden, kept) in [
            (
                "Failed to deserialize the JSON body into the target type: tags: invalid type: string \"13812345678\", expected a sequence at line 1 column 24",
                "13812345678",
                "expected a sequence",
            ),
            (
                "phone: invalid type: integer `13812345678`, expected a string at line 1 column 20",
                "13812345678",
                "expected a string",
            ),
            ("unknown field `mobile`, expected one of `name`, `phone`", "§", "`mobile`"),
            ("name: invalid type: string \"张三\", expected a sequence", "张三", "name"),
        ] {
            let cleaned = describe_without_values(message);
            assert!(!cleaned.contains(forbidden), "{cleaned}");
            assert!(cleaned.contains(kept), "{cleaned}");
        }
    }
}
