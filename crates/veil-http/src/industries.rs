//! Industry templates: their pipelines, interaction kinds, ticket categories and custom fields
//! (`veil_app::industries`). Reading them is for every signed-in user (definitions, no personal data); adding and
//! removing custom fields is for admins and audited.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::industries::{CustomFieldDef, CustomFieldInput, IndustryView};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, CurrentUser};
use crate::AppState;

/// The industry templates with their custom fields (built-in, then added by admins).
#[utoipa::path(get, path = "/api/v1/industries", tag = "crm",
    responses((status = 200, body = [IndustryView]), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn list_industries(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<IndustryView>>> {
    Ok(Json(state.veil.list_industries(&user.actor).await?))
}

/// Adds a custom field to an industry template (admins). A `sensitive` field is sealed and shown masked on every
/// customer; `pii_kind` makes a sensitive text field validate and mask as that kind.
#[utoipa::path(post, path = "/api/v1/industries/{key}/fields", tag = "crm",
    params(("key" = String, Path, description = "Industry key, e.g. finance")),
    request_body = CustomFieldInput,
    responses((status = 201, body = CustomFieldDef), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn add_industry_field(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(key): Path<String>,
    ApiJson(input): ApiJson<CustomFieldInput>,
) -> ApiResult<(StatusCode, Json<CustomFieldDef>)> {
    let field = state
        .veil
        .add_industry_field(&user.actor, &key, &input)
        .await?;
    Ok((StatusCode::CREATED, Json(field)))
}

/// Removes a custom field an admin added (built-in fields cannot be removed: 409). Customers keep the values
/// they hold until they are next written.
#[utoipa::path(delete, path = "/api/v1/industries/{key}/fields/{field}", tag = "crm",
    params(("key" = String, Path, description = "Industry key"), ("field" = String, Path, description = "Field key")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn delete_industry_field(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((key, field)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .veil
        .delete_industry_field(&user.actor, &key, &field)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes: templates and their custom fields.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_industries))
        .routes(routes!(add_industry_field))
        .routes(routes!(delete_industry_field))
}
