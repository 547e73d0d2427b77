//! Products, orders (purchase history), loyalty points and recommendations. Who may see what is decided by
//! `Veil::authorize` in `veil_app::orders`, `veil_app::loyalty` and `veil_app::recommendations`: everything about
//! a customer follows the customer's visibility, and an invisible customer is "not found".

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::loyalty::{LoyaltyView, RedeemInput};
use veil_app::orders::{
    OrderInput, OrderPage, OrderStatusInput, OrderView, ProductInput, ProductPatch, ProductView,
};
use veil_app::recommendations::RecommendationList;

use crate::error::{ApiResult, Problem};
use crate::extract::{parse_customer, ApiJson, ApiQuery, CurrentUser};
use crate::tickets::PageParams;
use crate::AppState;

/// Catalogue filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductParams {
    /// Only this category.
    pub category: Option<String>,
    /// Include products that can no longer be ordered (default false).
    pub include_inactive: Option<bool>,
}

/// The product catalogue, by category and name.
#[utoipa::path(get, path = "/api/v1/products", tag = "crm", params(ProductParams),
    responses((status = 200, body = [ProductView]), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_products(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<ProductParams>,
) -> ApiResult<Json<Vec<ProductView>>> {
    Ok(Json(
        state
            .veil
            .list_products(
                &user.actor,
                params.category.as_deref(),
                params.include_inactive.unwrap_or(false),
            )
            .await?,
    ))
}

/// Adds a product (admins and managers). Prices are integers in minor units (fen).
#[utoipa::path(post, path = "/api/v1/products", tag = "crm", request_body = ProductInput,
    responses((status = 201, body = ProductView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_product(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<ProductInput>,
) -> ApiResult<(StatusCode, Json<ProductView>)> {
    let view = state.veil.create_product(&user.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes a product's name, category, price or availability (admins and managers).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "crm",
    params(("id" = String, Path, description = "Product id")), request_body = ProductPatch,
    responses((status = 200, body = ProductView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn update_product(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ProductPatch>,
) -> ApiResult<Json<ProductView>> {
    Ok(Json(
        state.veil.update_product(&user.actor, &id, &patch).await?,
    ))
}

/// A customer's orders (purchase history), newest first, with their items.
#[utoipa::path(get, path = "/api/v1/customers/{id}/orders", tag = "crm",
    params(("id" = String, Path, description = "Customer id"), PageParams),
    responses((status = 200, body = OrderPage), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_orders(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<OrderPage>> {
    let id = parse_customer(&id)?;
    Ok(Json(
        state
            .veil
            .list_customer_orders(
                &user.actor,
                id,
                params.cursor.as_deref(),
                params.limit.unwrap_or(50),
            )
            .await?,
    ))
}

/// Enters an order: prices come from the catalogue, the total is computed by the server. An order entered as
/// `paid` earns loyalty points at once.
#[utoipa::path(post, path = "/api/v1/customers/{id}/orders", tag = "crm",
    params(("id" = String, Path, description = "Customer id")), request_body = OrderInput,
    responses((status = 201, body = OrderView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_order(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<OrderInput>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let id = parse_customer(&id)?;
    let view = state.veil.create_order(&user.actor, id, &input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Moves an order: `placed` → `paid` (earns points) or `cancelled`; `paid` → `refunded` (takes back the points
/// left from it). 409 for any other move, or when someone else moved it first.
#[utoipa::path(post, path = "/api/v1/orders/{id}/status", tag = "crm",
    params(("id" = String, Path, description = "Order id")), request_body = OrderStatusInput,
    responses((status = 200, body = OrderView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn set_order_status(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<OrderStatusInput>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        state
            .veil
            .set_order_status(&user.actor, &id, &input)
            .await?,
    ))
}

/// A customer's loyalty account: balance, lifetime points, tier with benefits, the next tier, the points that
/// expire next, recent ledger entries and tier history. Points due to expire are expired first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/loyalty", tag = "crm",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = LoyaltyView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_loyalty(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<LoyaltyView>> {
    let id = parse_customer(&id)?;
    Ok(Json(state.veil.loyalty(&user.actor, id).await?))
}

/// Redeems points. 409 `insufficient_points` (nothing deducted) when the balance is lower than asked; safe
/// under concurrent redemptions.
#[utoipa::path(post, path = "/api/v1/customers/{id}/loyalty/redeem", tag = "crm",
    params(("id" = String, Path, description = "Customer id")), request_body = RedeemInput,
    responses((status = 200, body = LoyaltyView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn redeem_points(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RedeemInput>,
) -> ApiResult<Json<LoyaltyView>> {
    let id = parse_customer(&id)?;
    Ok(Json(
        state.veil.redeem_points(&user.actor, id, &input).await?,
    ))
}

/// Recommendation parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecommendationParams {
    /// How many, 1–50 (default 5).
    pub limit: Option<u32>,
}

/// Products to suggest to a customer: "bought together" by item-to-item cosine similarity over purchase
/// history, then popular products of the customer's preferred categories, then popular products.
#[utoipa::path(get, path = "/api/v1/customers/{id}/recommendations", tag = "crm",
    params(("id" = String, Path, description = "Customer id"), RecommendationParams),
    responses((status = 200, body = RecommendationList), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn recommendations(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<RecommendationParams>,
) -> ApiResult<Json<RecommendationList>> {
    let id = parse_customer(&id)?;
    Ok(Json(
        state
            .veil
            .recommendations(&user.actor, id, params.limit.unwrap_or(5))
            .await?,
    ))
}

/// The routes: products, orders, loyalty, recommendations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(update_product))
        .routes(routes!(list_orders, create_order))
        .routes(routes!(set_order_status))
        .routes(routes!(get_loyalty))
        .routes(routes!(redeem_points))
        .routes(routes!(recommendations))
}
