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
                // serde's messages name the field and position, never the value.
                Err(match rejection {
                    JsonRejection::JsonDataError(error) => ApiError::new(
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_body",
                        "Invalid request body",
                        error.body_text(),
                    ),
                    other => ApiError::bad_request(other.body_text()),
                })
            }
        }
    }
}

/// A query string; a wrong shape is a 400 as problem+json.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// The authenticated caller, from `Authorization: Bearer <token>`.
pub struct CurrentUser {
    /// Who is calling.
    pub actor: Actor,
    /// The raw token (for logout).
    pub token: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AppError::Unauthenticated)?;
        let actor = state.veil.authenticate(token).await?;
        Ok(CurrentUser {
            actor,
            token: token.to_owned(),
        })
    }
}
