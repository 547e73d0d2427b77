//! The orders and loyalty section of the customer page: the loyalty account, the newest orders with the status
//! changes each allows (pay, cancel, refund), products recommended for the customer, the form to enter an order
//! (up to [`FORM_LINES`] lines from the active catalogue; the server prices it) and the form to redeem points.
//! Every read and write is a call to the domain (`Veil::create_order`, `set_order_status`, `redeem_points`, …),
//! which decides who may, computes amounts and points, and audits. A refused form shows the page again with the
//! domain's reasons next to the section (422, or 409 for points the account does not have); a done one redirects
//! back with a notice.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use veil_app::authz::{role_permits, Action};
use veil_app::loyalty::RedeemInput;
use veil_app::orders::{OrderInput, OrderItemInput, OrderStatus, OrderStatusInput};
use veil_app::recommendations::Reason;
use veil_app::{AppError, CustomerId};

use super::customers::form_value;
use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, Page};
use crate::AppState;

/// Order lines the entry form offers (an order may have more through the API).
pub const FORM_LINES: usize = 5;

/// Newest orders shown.
const ORDERS_SHOWN: u32 = 10;

/// The orders and loyalty section of the detail page.
pub struct OrderSection {
    pub balance: i64,
    pub lifetime: i64,
    pub tier: String,
    pub rows: Vec<OrderRow>,
    /// Products to offer the customer, best first (`Veil::recommendations`).
    pub recommended: Vec<RecommendedRow>,
    /// Whether the order form and the status buttons are shown (admins, managers, salespeople).
    pub may_write: bool,
    /// Whether the redeem form is shown.
    pub may_redeem: bool,
    /// The active catalogue for the order form: id and "name · SKU · price".
    pub products: Vec<(String, String)>,
    /// The lines of the order form, 1 to [`FORM_LINES`], with their legend.
    pub lines: Vec<(usize, String)>,
    /// The domain's reasons after a refused form, translated.
    pub errors: Vec<String>,
    /// After a form that went through.
    pub notice: Option<String>,
}

/// One recommended product in the section.
pub struct RecommendedRow {
    pub name: String,
    pub category: String,
    pub price: String,
    pub reason_key: String,
}

/// One order in the section.
pub struct OrderRow {
    pub id: String,
    pub placed: String,
    pub items: String,
    pub total: String,
    pub status_key: String,
    /// The statuses the order may move to, with their button's translation key.
    pub moves: Vec<(&'static str, &'static str)>,
}

/// `12345` fen of `CNY` → `CNY 123.45`. Money stays an integer up to here.
pub fn format_money(minor_units: i64, currency: &str) -> String {
    let sign = if minor_units < 0 { "-" } else { "" };
    let units = minor_units.unsigned_abs();
    format!("{currency} {sign}{}.{:02}", units / 100, units % 100)
}

/// The buttons an order in `status` shows: where it may go, as [`OrderStatus::can_become`] allows.
fn moves_from(status: &str) -> Vec<(&'static str, &'static str)> {
    let Ok(from) = serde_json::from_value::<OrderStatus>(serde_json::Value::from(status)) else {
        return Vec::new();
    };
    [
        (OrderStatus::Paid, "paid", "orders.mark_paid"),
        (OrderStatus::Cancelled, "cancelled", "orders.cancel"),
        (OrderStatus::Refunded, "refunded", "orders.refund"),
    ]
    .into_iter()
    .filter(|(to, _, _)| from.can_become(*to))
    .map(|(_, name, key)| (name, key))
    .collect()
}

/// The customer's loyalty account and newest orders, or `None` for roles that do not read orders.
pub async fn order_section(
    state: &AppState,
    tr: Tr,
    user: &WebUser,
    customer_id: CustomerId,
) -> Result<Option<OrderSection>, AppError> {
    if role_permits(user.actor.role, Action::OrderRead).is_err() {
        return Ok(None);
    }
    let may_write = role_permits(user.actor.role, Action::OrderWrite).is_ok();
    let loyalty = state.veil.loyalty(&user.actor, customer_id).await?;
    let page = state
        .veil
        .list_customer_orders(&user.actor, customer_id, None, ORDERS_SHOWN)
        .await?;
    let rows = page
        .items
        .iter()
        .map(|order| OrderRow {
            id: order.id.clone(),
            placed: tr.datetime(&order.placed_at),
            items: order
                .items
                .iter()
                .map(|item| {
                    let name = item.name.as_deref().unwrap_or(item.product_id.as_str());
                    format!("{name} × {}", item.quantity)
                })
                .collect::<Vec<_>>()
                .join(", "),
            total: format_money(order.total_fen, &order.currency),
            status_key: format!("orders.status_{}", order.status),
            moves: if may_write {
                moves_from(&order.status)
            } else {
                Vec::new()
            },
        })
        .collect();
    let recommended = state
        .veil
        .recommendations(&user.actor, customer_id, 5)
        .await?
        .items
        .into_iter()
        .map(|item| RecommendedRow {
            price: format_money(item.product.price_fen, &item.product.currency),
            name: item.product.name,
            category: item.product.category,
            reason_key: match item.reason {
                Reason::AlsoBought => "orders.reason_also_bought",
                Reason::PopularInCategory => "orders.reason_category",
                Reason::Popular => "orders.reason_popular",
            }
            .to_owned(),
        })
        .collect();
    let products = if may_write {
        state
            .veil
            .list_products(&user.actor, None, false)
            .await?
            .into_iter()
            .map(|product| {
                let label = format!(
                    "{} · {} · {}",
                    product.name,
                    product.sku,
                    format_money(product.price_fen, &product.currency)
                );
                (product.id, label)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Some(OrderSection {
        balance: loyalty.balance,
        lifetime: loyalty.lifetime_points,
        tier: super::customers::known_or_raw(tr, "tier", &loyalty.tier.name),
        rows,
        recommended,
        may_write,
        may_redeem: role_permits(user.actor.role, Action::LoyaltyRedeem).is_ok(),
        products,
        lines: (1..=FORM_LINES)
            .map(|line| (line, tr.fill("orders.line_n", &[("n", &line.to_string())])))
            .collect(),
        errors: Vec::new(),
        notice: None,
    }))
}

/// The notice for `?order=…` after a form of this section.
pub fn notice_key(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "orders.done_created",
        "paid" => "orders.done_paid",
        "cancelled" => "orders.done_cancelled",
        "refunded" => "orders.done_refunded",
        "redeemed" => "orders.done_redeemed",
        _ => return None,
    })
}

/// The domain's refusal as lines for the section: each field error by its code (the field named by the form's
/// words: "line 2", "points"), a refused redemption with the balance.
fn refusal_lines(tr: Tr, error: &AppError) -> Option<Vec<String>> {
    match error {
        AppError::Validation(errors) => Some(
            errors
                .iter()
                .map(|error| {
                    // `items[1].quantity` → line 2.
                    let field = match error
                        .field
                        .strip_prefix("items[")
                        .and_then(|rest| rest.split_once(']'))
                        .and_then(|(index, _)| index.parse::<usize>().ok())
                    {
                        Some(index) => tr.fill("orders.line_n", &[("n", &(index + 1).to_string())]),
                        None => tr.get(&format!("orders.field_{}", error.field)).to_owned(),
                    };
                    format!("{field}: {}", tr.field_error(&error.code))
                })
                .collect(),
        ),
        AppError::InsufficientPoints { balance, .. } => {
            Some(vec![tr.fill(
                "orders.insufficient",
                &[("balance", &balance.to_string())],
            )])
        }
        _ => None,
    }
}

/// After a form of this section: back to the section with a notice, or the page again with the refusal next to
/// the section, or the error page.
async fn answer(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    id: &str,
    outcome: Result<&'static str, AppError>,
) -> Response {
    let error = match outcome {
        Ok(done) => {
            return Redirect::to(&format!("/customers/{id}?order={done}#orders")).into_response()
        }
        Err(error) => error,
    };
    let Some(lines) = refusal_lines(page.tr, &error) else {
        return error_page(page, Some(user), &error);
    };
    let status = if matches!(error, AppError::InsufficientPoints { .. }) {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    super::customers::detail_after_refusal(state, page, user, id, status, |template| {
        if let Some(orders) = template.orders.as_mut() {
            orders.errors = lines;
        }
    })
    .await
}

/// Enters an order from the form: `product_N` / `quantity_N` for N = 1…[`FORM_LINES`] (lines without a product
/// are skipped), `status` `placed` or `paid`.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<Vec<(String, String)>>,
) -> Response {
    let SignedForm { user, form } = signed;
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    let value = |name: &str| form_value(&form, name);
    let mut items = Vec::new();
    // The form line of each item, to name the right line in the domain's errors (empty lines are skipped).
    let mut form_lines = Vec::new();
    for line in 1..=FORM_LINES {
        let product = value(&format!("product_{line}"));
        if product.is_empty() {
            continue;
        }
        form_lines.push(line);
        let quantity = value(&format!("quantity_{line}"));
        items.push(OrderItemInput {
            product_id: product.to_owned(),
            // An empty box is one unit; anything unreadable is 0, which the domain refuses for this line.
            quantity: if quantity.is_empty() {
                1
            } else {
                quantity.parse().unwrap_or(0)
            },
        });
    }
    let status = match value("status") {
        "paid" => OrderStatus::Paid,
        _ => OrderStatus::Placed,
    };
    let input = OrderInput {
        items,
        status: Some(status),
        placed_at: None,
    };
    let outcome = match state.veil.create_order(&user.actor, customer, &input).await {
        Ok(_) => Ok("created"),
        Err(AppError::Validation(mut errors)) => {
            for error in &mut errors {
                let index = error
                    .field
                    .strip_prefix("items[")
                    .and_then(|rest| rest.split_once(']'))
                    .and_then(|(index, rest)| {
                        Some((index.parse::<usize>().ok()?, rest.to_owned()))
                    });
                if let Some((index, rest)) = index {
                    if let Some(line) = form_lines.get(index) {
                        error.field = format!("items[{}]{rest}", line - 1);
                    }
                }
            }
            Err(AppError::Validation(errors))
        }
        Err(error) => Err(error),
    };
    answer(&state, &page, &user, &id, outcome).await
}

/// Moves one order of the customer (`status`: `paid`, `cancelled` or `refunded`).
pub async fn set_status(
    State(state): State<AppState>,
    page: Page,
    Path((id, order)): Path<(String, String)>,
    signed: SignedForm<Vec<(String, String)>>,
) -> Response {
    let SignedForm { user, form } = signed;
    let (status, done) = match form_value(&form, "status") {
        "paid" => (OrderStatus::Paid, "paid"),
        "cancelled" => (OrderStatus::Cancelled, "cancelled"),
        "refunded" => (OrderStatus::Refunded, "refunded"),
        _ => {
            let error = AppError::Validation(vec![veil_app::FieldError::new(
                "status",
                "invalid",
                "paid, cancelled or refunded",
            )]);
            return answer(&state, &page, &user, &id, Err(error)).await;
        }
    };
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    // Only an order of this page's customer moves from here (another's is 404), and the domain checks the caller
    // sees that customer.
    let outcome = state
        .veil
        .set_customer_order_status(&user.actor, customer, &order, &OrderStatusInput { status })
        .await
        .map(|_| done);
    answer(&state, &page, &user, &id, outcome).await
}

/// Redeems points from the form (`points`, `reason`).
pub async fn redeem(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<Vec<(String, String)>>,
) -> Response {
    let SignedForm { user, form } = signed;
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    let input = RedeemInput {
        // Unreadable is 0, which the domain refuses as out of range.
        points: form_value(&form, "points").parse().unwrap_or(0),
        reason: Some(form_value(&form, "reason").to_owned()).filter(|reason| !reason.is_empty()),
    };
    let outcome = state
        .veil
        .redeem_points(&user.actor, customer, &input)
        .await
        .map(|_| "redeemed");
    answer(&state, &page, &user, &id, outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_from_integers() {
        assert_eq!(format_money(12345, "CNY"), "CNY 123.45");
        assert_eq!(format_money(5, "CNY"), "CNY 0.05");
        assert_eq!(format_money(-1999, "USD"), "USD -19.99");
    }

    #[test]
    fn an_order_offers_the_moves_its_status_allows() {
        assert_eq!(
            moves_from("placed"),
            vec![("paid", "orders.mark_paid"), ("cancelled", "orders.cancel")]
        );
        assert_eq!(moves_from("paid"), vec![("refunded", "orders.refund")]);
        assert!(moves_from("refunded").is_empty());
        assert!(moves_from("cancelled").is_empty());
        assert!(moves_from("bogus").is_empty());
    }
}
