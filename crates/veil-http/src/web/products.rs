//! `/products`: the catalogue for those who keep it (admins, managers): every product with SKU, category, price
//! and whether it can be ordered, filtered by category, a form to add one and, per product, a form to change its
//! name, category, price or availability. Orders already entered keep the price they were entered with.
//!
//! Every read and write is the domain's (`Veil::list_products`, `create_product`, `update_product`), which checks
//! the role, validates and audits. Prices are typed in yuan (`1299.50`, `1,299.5`) and travel as integer fen from
//! here on: no float ever holds money.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::authz::{role_permits, Action};
use veil_app::orders::{ProductInput, ProductPatch};
use veil_app::{AppError, FieldError};

use super::customer_orders::format_money;
use super::customers::form_value;
use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// One product as listed, with its edit form's values.
pub struct ProductLine {
    id: String,
    sku: String,
    name: String,
    category: String,
    /// `CNY 1299.50`.
    price: String,
    /// `1299.50`: the edit form's value.
    price_input: String,
    active: bool,
    updated: String,
}

#[derive(Template)]
#[template(path = "products.html")]
struct ProductsTemplate {
    t: Tr,
    layout: Layout,
    products: Vec<ProductLine>,
    categories: Vec<String>,
    category: String,
    notice: Option<String>,
    errors: Vec<String>,
    /// The add form's values after a refusal.
    draft: Vec<(String, String)>,
}

impl ProductsTemplate {
    /// The add form's value of `name` after a refusal.
    fn typed(&self, name: &str) -> &str {
        form_value(&self.draft, name)
    }
}

/// `?category=…&done=…`.
#[derive(Deserialize, Default)]
pub struct ProductParams {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// Yuan as typed (`1299.50`, `1,299.5`, `¥12`) → fen; `None` for anything else (negative, more than two decimals,
/// not a number, a comma that does not separate thousands: `1,5` is refused rather than read as 15 or 1.5).
pub fn parse_yuan(text: &str) -> Option<i64> {
    let cleaned = text.trim().trim_start_matches(['¥', '￥']);
    let (grouped, decimals) = match cleaned.split_once('.') {
        Some((units, decimals)) => (units, decimals),
        None => (cleaned, ""),
    };
    let groups: Vec<&str> = grouped.split(',').collect();
    let grouped_well = groups.len() == 1
        || (!groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|group| group.len() == 3));
    if !grouped_well {
        return None;
    }
    let units = groups.concat();
    if units.is_empty()
        || !units.chars().all(|c| c.is_ascii_digit())
        || decimals.len() > 2
        || !decimals.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let fen: i64 = format!("{decimals:0<2}").parse().ok()?;
    units.checked_mul(100)?.checked_add(fen)
}

/// `129950` → `1299.50`, for a form's price box.
fn yuan_input(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// What the page says after a form: a notice, or the refusal with the add form's typed values.
#[derive(Default)]
struct FormOutcome {
    notice: Option<String>,
    errors: Vec<String>,
    draft: Vec<(String, String)>,
}

async fn products_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    category: Option<&str>,
    outcome: FormOutcome,
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    // Admins and managers keep the catalogue; the others read it on the customer page's order form.
    if let Err(reason) = role_permits(user.actor.role, Action::ProductManage) {
        return error_page(page, Some(user), &AppError::Forbidden(reason));
    }
    let all = match state.veil.list_products(&user.actor, None, true).await {
        Ok(all) => all,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let mut categories: Vec<String> = all.iter().map(|product| product.category.clone()).collect();
    categories.sort();
    categories.dedup();
    let category = category.map(str::trim).unwrap_or_default().to_lowercase();
    let products = all
        .into_iter()
        .filter(|product| category.is_empty() || product.category == category)
        .map(|product| ProductLine {
            price: format_money(product.price_fen, &product.currency),
            price_input: yuan_input(product.price_fen),
            updated: tr.datetime(&product.updated_at),
            id: product.id,
            sku: product.sku,
            name: product.name,
            category: product.category,
            active: product.active,
        })
        .collect();
    let template = ProductsTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        products,
        categories,
        category,
        notice: outcome.notice,
        errors: outcome.errors,
        draft: outcome.draft,
    };
    render(&template, tr, status)
}

/// The catalogue page.
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<ProductParams>,
) -> Response {
    let notice = match params.done.as_deref() {
        Some("created") => Some(page.tr.get("products.created").to_owned()),
        Some("updated") => Some(page.tr.get("products.updated").to_owned()),
        _ => None,
    };
    products_page(
        &state,
        &page,
        &user,
        params.category.as_deref(),
        FormOutcome {
            notice,
            ..FormOutcome::default()
        },
        StatusCode::OK,
    )
    .await
}

/// The domain's field errors in the page's words.
fn messages(tr: Tr, errors: &[FieldError]) -> Vec<String> {
    errors
        .iter()
        .map(|error| {
            format!(
                "{}: {}",
                tr.get(&format!("products.field_{}", error.field)),
                tr.field_error(&error.code)
            )
        })
        .collect()
}

/// The price box, or the refusal the domain would give for it.
fn price_of(form: &[(String, String)]) -> Result<i64, AppError> {
    parse_yuan(form_value(form, "price")).ok_or_else(|| {
        AppError::Validation(vec![FieldError::new(
            "price_fen",
            "out_of_range",
            "a price in yuan with at most two decimals",
        )])
    })
}

/// After a form: back to the list with a notice, or the page again with the refusal (the add form keeps what was
/// typed: a catalogue holds no personal data).
async fn answer(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    outcome: Result<&'static str, AppError>,
    draft: Vec<(String, String)>,
) -> Response {
    let (errors, status) = match outcome {
        Ok(done) => return Redirect::to(&format!("/products?done={done}")).into_response(),
        Err(AppError::Validation(errors)) => {
            (messages(page.tr, &errors), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(AppError::Conflict(_)) => (
            vec![page.tr.get("products.conflict").to_owned()],
            StatusCode::CONFLICT,
        ),
        Err(error) => return error_page(page, Some(user), &error),
    };
    let outcome = FormOutcome {
        notice: None,
        errors,
        draft,
    };
    products_page(state, page, user, None, outcome, status).await
}

/// Adds a product: `sku`, `name`, `category`, `price` (yuan), `currency`.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<Vec<(String, String)>>,
) -> Response {
    let SignedForm { user, form } = signed;
    let outcome = match price_of(&form) {
        Ok(price_fen) => {
            let input = ProductInput {
                sku: form_value(&form, "sku").to_owned(),
                name: form_value(&form, "name").to_owned(),
                category: form_value(&form, "category").to_owned(),
                price_fen,
                currency: Some(form_value(&form, "currency").to_owned())
                    .filter(|currency| !currency.is_empty()),
                active: Some(true),
            };
            state
                .veil
                .create_product(&user.actor, &input)
                .await
                .map(|_| "created")
        }
        Err(error) => Err(error),
    };
    let draft = form
        .into_iter()
        .filter(|(name, _)| name != "csrf")
        .collect();
    answer(&state, &page, &user, outcome, draft).await
}

/// Changes a product: `name`, `category`, `price` (yuan), `active` (a checkbox).
pub async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<Vec<(String, String)>>,
) -> Response {
    let SignedForm { user, form } = signed;
    let outcome = match price_of(&form) {
        Ok(price_fen) => {
            let patch = ProductPatch {
                name: Some(form_value(&form, "name").to_owned()),
                category: Some(form_value(&form, "category").to_owned()),
                price_fen: Some(price_fen),
                active: Some(form.iter().any(|(name, _)| name == "active")),
            };
            state
                .veil
                .update_product(&user.actor, &id, &patch)
                .await
                .map(|_| "updated")
        }
        Err(error) => Err(error),
    };
    answer(&state, &page, &user, outcome, Vec::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_are_read_into_fen_without_floats() {
        assert_eq!(parse_yuan("1299.50"), Some(129_950));
        assert_eq!(parse_yuan("1,299.5"), Some(129_950));
        assert_eq!(parse_yuan(" ¥12 "), Some(1_200));
        assert_eq!(parse_yuan("0.07"), Some(7));
        assert_eq!(parse_yuan("12."), Some(1_200));
        assert_eq!(parse_yuan("12,345,678.9"), Some(1_234_567_890));
        for bad in [
            "",
            "-1",
            "1.234",
            "abc",
            "1.2.3",
            ".5",
            "1e3",
            "99999999999999999999",
            "1,5",
            "1,2,3",
            ",500",
            "1234,567",
            "1,000.5,0",
        ] {
            assert_eq!(parse_yuan(bad), None, "{bad}");
        }
        assert_eq!(yuan_input(129_950), "1299.50");
        assert_eq!(yuan_input(7), "0.07");
    }
}
