//! Customer CRUD and exact search. Every read is masked; search goes through blind indexes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::customers::{CustomerInput, CustomerPage, CustomerPatch, CustomerView, ExactSearch};
use veil_app::notes::{NoteInput, NoteView};
use veil_app::segments::{ListFilter, SegmentInput, SegmentView};
use veil_app::{CustomerId, SensitiveField};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::AppState;

/// List and search parameters. At most one of the exact-search parameters may be given.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// Exact search by mobile number (blind index; never logged).
    pub phone: Option<String>,
    /// Exact search by resident ID number.
    pub id_number: Option<String>,
    /// Exact search by email.
    pub email: Option<String>,
    /// Exact search by bank card number.
    pub bank_card: Option<String>,
    /// Only customers of this owner (user id).
    pub owner: Option<String>,
    /// Only customers of this team.
    pub team: Option<String>,
    /// Only customers carrying this tag.
    pub tag: Option<String>,
    /// Only customers of this industry.
    pub industry: Option<String>,
    /// Only customers matching one of the caller's saved segments (instead of owner/team/tag/industry).
    pub segment: Option<String>,
}

/// Write options.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteParams {
    /// Create or update even if another customer has the same mobile or ID number.
    #[serde(default)]
    pub allow_duplicate: bool,
}

fn parse_id(text: &str) -> ApiResult<CustomerId> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// Lists the caller's customers (masked), or finds them by an exact value.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(ListParams),
    responses((status = 200, body = CustomerPage), (status = 422, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_customers(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<CustomerPage>> {
    let searches: Vec<ExactSearch> = [
        (SensitiveField::Phone, params.phone),
        (SensitiveField::IdNumber, params.id_number),
        (SensitiveField::Email, params.email),
        (SensitiveField::BankCard, params.bank_card),
    ]
    .into_iter()
    .filter_map(|(field, value)| value.map(|value| ExactSearch { field, value }))
    .collect();
    let mut filter = ListFilter {
        owner: params.owner,
        team: params.team,
        tag: params.tag,
        industry: params.industry,
    };
    if let Some(segment) = &params.segment {
        if filter != ListFilter::default() {
            return Err(ApiError::bad_request(
                "give a segment or owner/team/tag/industry, not both",
            ));
        }
        filter = state
            .veil
            .segment_filter(&user.actor, segment)
            .await?
            .ok_or_else(ApiError::not_found)?;
    }
    if !searches.is_empty() && filter != ListFilter::default() {
        return Err(ApiError::bad_request(
            "an exact search cannot be combined with filters",
        ));
    }
    match searches.as_slice() {
        [] => Ok(Json(
            state
                .veil
                .list_customers_where(
                    &user.actor,
                    &filter,
                    params.cursor.as_deref(),
                    params.limit.unwrap_or(50),
                )
                .await?,
        )),
        [search] => Ok(Json(CustomerPage {
            items: state.veil.search_customers(&user.actor, search).await?,
            next_cursor: None,
        })),
        _ => Err(ApiError::bad_request(
            "give at most one of phone, id_number, email, bank_card",
        )),
    }
}

/// Creates a customer. Sensitive fields are validated, encrypted, masked and indexed before anything is written.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", params(WriteParams), request_body = CustomerInput,
    responses((status = 201, body = CustomerView), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(input): ApiJson<CustomerInput>,
) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    let view = state
        .veil
        .create_customer(&user.actor, &input, params.allow_duplicate)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One customer, masked per the caller's role.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = CustomerView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerView>> {
    Ok(Json(
        state.veil.get_customer(&user.actor, parse_id(&id)?).await?,
    ))
}

/// Changes some fields; `null` clears a field.
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id"), WriteParams), request_body = CustomerPatch,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn update_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<WriteParams>,
    ApiJson(patch): ApiJson<CustomerPatch>,
) -> ApiResult<Json<CustomerView>> {
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .veil
            .update_customer(&user.actor, id, &patch, params.allow_duplicate)
            .await?,
    ))
}

/// Erases a customer: destroys its data key so no copy of its data, backups included, can be read again.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .veil
        .delete_customer(&user.actor, parse_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Note list parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoteParams {
    /// Cursor: the id of the last note of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
}

/// A customer's notes, newest first, with personal data masked in place.
#[utoipa::path(get, path = "/api/v1/customers/{id}/notes", tag = "customers",
    params(("id" = String, Path, description = "Customer id"), NoteParams),
    responses((status = 200, body = Vec<NoteView>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_notes(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<NoteParams>,
) -> ApiResult<Json<Vec<NoteView>>> {
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .veil
            .list_notes(
                &user.actor,
                id,
                params.cursor.as_deref(),
                params.limit.unwrap_or(50),
            )
            .await?,
    ))
}

/// Adds a note. Phone numbers, ID numbers, cards, emails, names and addresses in it are found, masked in the
/// stored text, and their originals sealed under the customer's key.
#[utoipa::path(post, path = "/api/v1/customers/{id}/notes", tag = "customers",
    params(("id" = String, Path, description = "Customer id")), request_body = NoteInput,
    responses((status = 201, body = NoteView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_note(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<NoteInput>,
) -> ApiResult<(StatusCode, Json<NoteView>)> {
    let id = parse_id(&id)?;
    let note = state.veil.add_note(&user.actor, id, &input).await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// The caller's saved segments (named customer filters).
#[utoipa::path(get, path = "/api/v1/segments", tag = "customers",
    responses((status = 200, body = [SegmentView]), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_segments(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<SegmentView>>> {
    Ok(Json(state.veil.segments(&user.actor).await?))
}

/// Saves a segment: a named filter (owner, team, tag, industry) to list customers by
/// (`GET /api/v1/customers?segment=ID`) and to scope unmask requests by (`"scope": {"segment": "ID"}`).
#[utoipa::path(post, path = "/api/v1/segments", tag = "customers", request_body = SegmentInput,
    responses((status = 201, body = SegmentView), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_segment(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<SegmentInput>,
) -> ApiResult<(StatusCode, Json<SegmentView>)> {
    let segment = state.veil.save_segment(&user.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(segment)))
}

/// Deletes one of the caller's segments (requests made from it keep their customers).
#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "customers",
    params(("id" = String, Path, description = "Segment id")),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_segment(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.veil.delete_segment(&user.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The customer routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_segments, create_segment))
        .routes(routes!(delete_segment))
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(get_customer, update_customer, delete_customer))
        .routes(routes!(list_notes, add_note))
}
