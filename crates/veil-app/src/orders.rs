//! Products and orders: the catalogue, a customer's orders with items and a server-computed total, status
//! changes (`placed` → `paid` | `cancelled`, `paid` → `refunded`), and the purchase history per customer.
//!
//! Orders follow the customer's visibility ([`Veil::authorize`]): a salesperson enters and reads orders of their
//! own customers only, and an order of a customer the caller cannot see is "not found". Paying an order credits
//! loyalty points in the same transaction ([`crate::loyalty`]); refunding it takes back what is left of them.
//! Amounts are integers in minor units (fen).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{LoyaltyEffect, OrderItemRow, OrderRow, ProductRow, StoreError, Transition};

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::interactions::{parse_cursor, parse_rfc3339};
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// Most items in one order.
pub const MAX_ITEMS: usize = 100;
/// Most units of one item.
pub const MAX_QUANTITY: i64 = 10_000;
/// Highest price of a product, in minor units (¥100,000,000).
pub const MAX_PRICE_FEN: i64 = 10_000_000_000;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Entered, not paid yet.
    Placed,
    /// Paid: counts as a purchase and earns points.
    Paid,
    /// Paid, then refunded: the points left from it are taken back.
    Refunded,
    /// Cancelled before payment.
    Cancelled,
}

impl OrderStatus {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Paid => "paid",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Whether an order may move from `self` to `to`.
    pub fn can_become(self, to: OrderStatus) -> bool {
        matches!(
            (self, to),
            (OrderStatus::Placed, OrderStatus::Paid)
                | (OrderStatus::Placed, OrderStatus::Cancelled)
                | (OrderStatus::Paid, OrderStatus::Refunded)
        )
    }

    fn parse(text: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Placed,
            OrderStatus::Paid,
            OrderStatus::Refunded,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A new product.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Stock-keeping unit, unique: 1–64 characters of letters, digits, `-`, `_`, `.`.
    pub sku: String,
    /// Display name (1–200 characters).
    pub name: String,
    /// Category (1–64 characters), e.g. `skincare`.
    pub category: String,
    /// Price in minor units (fen), 0 to 10,000,000,000.
    pub price_fen: i64,
    /// ISO 4217 code (default `CNY`).
    #[serde(default)]
    pub currency: Option<String>,
    /// Whether it can be ordered (default true).
    #[serde(default)]
    pub active: Option<bool>,
}

/// A change to a product; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New category.
    #[serde(default)]
    pub category: Option<String>,
    /// New price (minor units); orders already entered keep theirs.
    #[serde(default)]
    pub price_fen: Option<i64>,
    /// Whether it can be ordered.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A catalogue product.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductView {
    /// Product id.
    pub id: String,
    /// Stock-keeping unit.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Price in minor units.
    pub price_fen: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Whether it can be ordered.
    pub active: bool,
    /// RFC 3339.
    pub updated_at: String,
}

pub(crate) fn product_view(row: ProductRow) -> ProductView {
    ProductView {
        id: row.id,
        sku: row.sku,
        name: row.name,
        category: row.category,
        price_fen: row.price_fen,
        currency: row.currency,
        active: row.active,
        updated_at: format_time(row.updated_at),
    }
}

/// One line of a new order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemInput {
    /// The product (must be active).
    pub product_id: String,
    /// Units, 1–10,000.
    pub quantity: i64,
}

/// A new order. Prices come from the catalogue; the total is computed by the server.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// 1–100 lines; every product in one currency.
    pub items: Vec<OrderItemInput>,
    /// `placed` (default) or `paid` (entered already paid: earns points at once).
    #[serde(default)]
    pub status: Option<OrderStatus>,
    /// When it was placed (RFC 3339, not in the future; default now), for entering past orders.
    #[serde(default)]
    pub placed_at: Option<String>,
}

/// A status change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderStatusInput {
    /// `paid` or `cancelled` (from `placed`), `refunded` (from `paid`).
    pub status: OrderStatus,
}

/// One line of an order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderItemView {
    /// Position from 1.
    pub line: i64,
    /// The product.
    pub product_id: String,
    /// Its SKU and name now (absent if the product is gone).
    pub sku: Option<String>,
    /// Its name now.
    pub name: Option<String>,
    /// Units.
    pub quantity: i64,
    /// Price of one at the time of the order, minor units.
    pub unit_price_fen: i64,
    /// `quantity × unit_price_fen`.
    pub line_total_fen: i64,
}

/// An order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    /// Order id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// `placed`, `paid`, `refunded` or `cancelled`.
    pub status: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Sum of the lines, minor units.
    pub total_fen: i64,
    /// Points credited when it was paid.
    pub points_earned: i64,
    /// The lines.
    pub items: Vec<OrderItemView>,
    /// Who entered it.
    pub by: Option<String>,
    /// RFC 3339.
    pub placed_at: String,
    /// RFC 3339, once paid.
    pub paid_at: Option<String>,
}

/// A page of a customer's orders.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    /// Newest first.
    pub items: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Total of the paid orders on this page per currency (minor units).
    pub paid_totals: BTreeMap<String, i64>,
}

fn valid_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "invalid_length",
            format!("must be 1 to {max} characters"),
        ));
    }
    value.to_owned()
}

fn check_price(price: i64, errors: &mut Vec<FieldError>) {
    if !(0..=MAX_PRICE_FEN).contains(&price) {
        errors.push(FieldError::new(
            "price_fen",
            "out_of_range",
            format!("must be 0 to {MAX_PRICE_FEN} (minor units)"),
        ));
    }
}

impl Veil {
    /// The catalogue, by category and name (inactive products too when asked).
    pub async fn list_products(
        &self,
        actor: &Actor,
        category: Option<&str>,
        include_inactive: bool,
    ) -> AppResult<Vec<ProductView>> {
        self.permit_recorded(actor, Action::ProductRead, None)
            .await?;
        Ok(self
            .store()
            .list_products(category, !include_inactive, 1000)
            .await?
            .into_iter()
            .map(product_view)
            .collect())
    }

    /// Adds a product (admins and managers).
    pub async fn create_product(
        &self,
        actor: &Actor,
        input: &ProductInput,
    ) -> AppResult<ProductView> {
        self.permit_recorded(actor, Action::ProductManage, None)
            .await?;
        let mut errors = Vec::new();
        let sku = input.sku.trim().to_owned();
        if sku.is_empty()
            || sku.len() > 64
            || !sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            errors.push(FieldError::new(
                "sku",
                "invalid",
                "must be 1 to 64 characters of letters, digits, '-', '_' and '.'",
            ));
        }
        let name = valid_text("name", &input.name, 200, &mut errors);
        let category = valid_text("category", &input.category, 64, &mut errors).to_lowercase();
        check_price(input.price_fen, &mut errors);
        let currency = input
            .currency
            .as_deref()
            .unwrap_or("CNY")
            .trim()
            .to_ascii_uppercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            errors.push(FieldError::new(
                "currency",
                "invalid",
                "must be a three-letter ISO 4217 code",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let now = now_ms();
        let row = ProductRow {
            id: uuid::Uuid::now_v7().to_string(),
            sku,
            name,
            category,
            price_fen: input.price_fen,
            currency,
            active: input.active.unwrap_or(true),
            created_at: now,
            updated_at: now,
        };
        let entry = crate::audit::event(Some(actor), "product.create", crate::audit::Outcome::Ok)
            .detail(serde_json::json!({"product_id": row.id, "sku": row.sku, "price_fen": row.price_fen}));
        match self.store().insert_product(&row, &[entry]).await {
            Ok(()) => Ok(product_view(row)),
            Err(StoreError::Conflict(_)) => Err(AppError::Conflict(
                "a product with this SKU already exists".to_owned(),
            )),
            Err(error) => Err(error.into()),
        }
    }

    /// Changes a product (admins and managers).
    pub async fn update_product(
        &self,
        actor: &Actor,
        id: &str,
        patch: &ProductPatch,
    ) -> AppResult<ProductView> {
        self.permit_recorded(actor, Action::ProductManage, None)
            .await?;
        let current = self.store().product(id).await?.ok_or(AppError::NotFound)?;
        let mut errors = Vec::new();
        let mut row = current.clone();
        if let Some(name) = &patch.name {
            row.name = valid_text("name", name, 200, &mut errors);
        }
        if let Some(category) = &patch.category {
            row.category = valid_text("category", category, 64, &mut errors).to_lowercase();
        }
        if let Some(price) = patch.price_fen {
            check_price(price, &mut errors);
            row.price_fen = price;
        }
        if let Some(active) = patch.active {
            row.active = active;
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        row.updated_at = now_ms().max(current.updated_at + 1);
        let entry = crate::audit::event(Some(actor), "product.update", crate::audit::Outcome::Ok)
            .detail(
                serde_json::json!({"product_id": row.id, "price_fen": row.price_fen,
                                       "active": row.active}),
            );
        match self
            .store()
            .update_product(&row, current.updated_at, &[entry])
            .await
        {
            Ok(()) => Ok(product_view(row)),
            Err(StoreError::StaleWrite) => Err(AppError::Conflict(
                "the product was changed by someone else; reload and retry".to_owned(),
            )),
            Err(error) => Err(error.into()),
        }
    }

    /// Enters an order for a customer the caller can see, pricing it from the catalogue.
    pub async fn create_order(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        input: &OrderInput,
    ) -> AppResult<OrderView> {
        let customer = customer_id.to_string();
        self.customer_for(actor, &customer, Action::OrderWrite)
            .await?;
        let now = now_ms();
        let mut errors = Vec::new();
        if input.items.is_empty() || input.items.len() > MAX_ITEMS {
            errors.push(FieldError::new(
                "items",
                "invalid_length",
                format!("must have 1 to {MAX_ITEMS} lines"),
            ));
        }
        let status = input.status.unwrap_or(OrderStatus::Placed);
        if !matches!(status, OrderStatus::Placed | OrderStatus::Paid) {
            errors.push(FieldError::new(
                "status",
                "invalid",
                "a new order is `placed` or `paid`",
            ));
        }
        let placed_at = match &input.placed_at {
            None => now,
            Some(text) => match parse_rfc3339("placed_at", text) {
                Ok(at) if at <= now => at,
                Ok(_) => {
                    errors.push(FieldError::new(
                        "placed_at",
                        "in_future",
                        "must not be in the future",
                    ));
                    now
                }
                Err(error) => {
                    errors.push(error);
                    now
                }
            },
        };
        let order_id = uuid::Uuid::now_v7().to_string();
        let mut items = Vec::new();
        let mut products: HashMap<String, ProductRow> = HashMap::new();
        let mut currency: Option<String> = None;
        let mut total: i64 = 0;
        for (index, item) in input.items.iter().enumerate().take(MAX_ITEMS) {
            let field = format!("items[{index}]");
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                errors.push(FieldError::new(
                    &format!("{field}.quantity"),
                    "out_of_range",
                    format!("must be 1 to {MAX_QUANTITY}"),
                ));
                continue;
            }
            let product = match products.get(&item.product_id) {
                Some(product) => Some(product.clone()),
                None => self.store().product(&item.product_id).await?,
            };
            let Some(product) = product.filter(|product| product.active) else {
                errors.push(FieldError::new(
                    &format!("{field}.product_id"),
                    "unknown_product",
                    "no such active product",
                ));
                continue;
            };
            match &currency {
                Some(known) if *known != product.currency => {
                    errors.push(FieldError::new(
                        &format!("{field}.product_id"),
                        "currency_mismatch",
                        "every product of an order must have the same currency",
                    ));
                    continue;
                }
                _ => currency = Some(product.currency.clone()),
            }
            // Both factors are bounded (10,000 × 10^10), so the product fits; the sum is checked.
            let line_total = item.quantity * product.price_fen;
            total = match total.checked_add(line_total) {
                Some(total) => total,
                None => {
                    errors.push(FieldError::new(
                        "items",
                        "too_large",
                        "the total is too large",
                    ));
                    continue;
                }
            };
            items.push(OrderItemRow {
                order_id: order_id.clone(),
                line_no: items.len() as i64 + 1,
                product_id: product.id.clone(),
                quantity: item.quantity,
                unit_price_fen: product.price_fen,
                line_total_fen: line_total,
            });
            products.insert(product.id.clone(), product);
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let row = OrderRow {
            id: order_id,
            customer_id: customer.clone(),
            status: OrderStatus::Placed.as_str().to_owned(),
            currency: currency.unwrap_or_else(|| "CNY".to_owned()),
            total_fen: total,
            points_earned: 0,
            created_by: Some(actor.user_id.to_string()),
            placed_at,
            paid_at: None,
            updated_at: now,
        };
        let entry = crate::audit::event(Some(actor), "order.create", crate::audit::Outcome::Ok)
            .customers([customer.clone()])
            .detail(serde_json::json!({"order_id": row.id, "items": items.len(),
                                       "total_fen": row.total_fen, "currency": row.currency}));
        self.store().insert_order(&row, &items, &[entry]).await?;
        tracing::info!(customer = %customer, order = %row.id, "order entered");
        if status == OrderStatus::Paid {
            return self.move_order(actor, row, OrderStatus::Paid).await;
        }
        Ok(self.order_views(&customer, vec![row]).await?.remove(0))
    }

    /// Changes an order's status (see [`OrderStatus::can_become`]); 404 when the caller cannot see its customer.
    pub async fn set_order_status(
        &self,
        actor: &Actor,
        order_id: &str,
        input: &OrderStatusInput,
    ) -> AppResult<OrderView> {
        self.move_order_of(actor, None, order_id, input).await
    }

    /// [`Veil::set_order_status`] for an order of `customer_id` only: another customer's order is 404, as one
    /// that does not exist (the customer page's status buttons).
    pub async fn set_customer_order_status(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        order_id: &str,
        input: &OrderStatusInput,
    ) -> AppResult<OrderView> {
        let customer = customer_id.to_string();
        self.move_order_of(actor, Some(&customer), order_id, input)
            .await
    }

    async fn move_order_of(
        &self,
        actor: &Actor,
        customer: Option<&str>,
        order_id: &str,
        input: &OrderStatusInput,
    ) -> AppResult<OrderView> {
        // The role is checked before the lookup, so a role without orders cannot probe for order ids.
        self.permit_recorded(actor, Action::OrderWrite, None)
            .await?;
        let row = self
            .store()
            .order(order_id)
            .await?
            .filter(|row| customer.is_none_or(|customer| row.customer_id == customer))
            .ok_or(AppError::NotFound)?;
        self.customer_for(actor, &row.customer_id, Action::OrderWrite)
            .await?;
        self.move_order(actor, row, input.status).await
    }

    async fn move_order(
        &self,
        actor: &Actor,
        row: OrderRow,
        to: OrderStatus,
    ) -> AppResult<OrderView> {
        let from = OrderStatus::parse(&row.status)
            .ok_or_else(|| AppError::Internal("unknown order status in the database".to_owned()))?;
        if !from.can_become(to) {
            return Err(AppError::Conflict(format!(
                "an order that is {} cannot become {}",
                from.as_str(),
                to.as_str()
            )));
        }
        let rules = self.loyalty_rules();
        let now = now_ms();
        let effect = match to {
            OrderStatus::Paid => {
                let tier = self
                    .store()
                    .loyalty_account(&row.customer_id)
                    .await?
                    .map(|account| account.tier)
                    .unwrap_or_else(|| rules.tiers[0].name.clone());
                let points = rules.points_for(row.total_fen, &tier);
                if points > 0 {
                    LoyaltyEffect::Earn {
                        entry_id: uuid::Uuid::now_v7().to_string(),
                        points,
                        expires_at: rules.expires_at(now),
                        actor_id: Some(actor.user_id.to_string()),
                    }
                } else {
                    LoyaltyEffect::None
                }
            }
            OrderStatus::Refunded if row.points_earned > 0 => LoyaltyEffect::Reverse {
                entry_id: uuid::Uuid::now_v7().to_string(),
                actor_id: Some(actor.user_id.to_string()),
            },
            _ => LoyaltyEffect::None,
        };
        let earned = match &effect {
            LoyaltyEffect::Earn { points, .. } => *points,
            _ => 0,
        };
        let entry = crate::audit::event(Some(actor), "order.status", crate::audit::Outcome::Ok)
            .customers([row.customer_id.clone()])
            .detail(
                serde_json::json!({"order_id": row.id, "from": from.as_str(), "to": to.as_str(),
                                       "points_earned": earned}),
            );
        let transition = self
            .store()
            .transition_order(
                &row.id,
                from.as_str(),
                to.as_str(),
                now,
                &effect,
                &rules.ladder(),
                &[entry],
            )
            .await?;
        if let Transition::Moved(Some(outcome)) = &transition {
            if let Some((from_tier, to_tier)) = &outcome.tier_change {
                tracing::info!(customer = %row.customer_id, from = %from_tier, to = %to_tier, "loyalty tier changed");
            }
        }
        match transition {
            Transition::Stale => Err(AppError::Conflict(
                "the order was changed by someone else; reload and retry".to_owned(),
            )),
            Transition::Moved(_) => {
                let moved = self
                    .store()
                    .order(&row.id)
                    .await?
                    .ok_or(AppError::NotFound)?;
                Ok(self
                    .order_views(&row.customer_id, vec![moved])
                    .await?
                    .remove(0))
            }
        }
    }

    /// A customer's orders (purchase history), newest first, with items.
    pub async fn list_customer_orders(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        cursor: Option<&str>,
        limit: u32,
    ) -> AppResult<OrderPage> {
        let customer = customer_id.to_string();
        self.customer_for(actor, &customer, Action::OrderRead)
            .await?;
        let cursor = parse_cursor(cursor)?;
        let limit = limit.clamp(1, 200) as usize;
        let mut rows = self
            .store()
            .list_customer_orders(&customer, cursor.as_ref(), limit as i64 + 1)
            .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = more
            .then(|| {
                rows.last()
                    .map(|row| format!("{}_{}", row.placed_at, row.id))
            })
            .flatten();
        let mut paid_totals = BTreeMap::new();
        for row in rows.iter().filter(|row| row.status == "paid") {
            *paid_totals.entry(row.currency.clone()).or_insert(0) += row.total_fen;
        }
        self.record(&[
            crate::audit::event(Some(actor), "order.read", crate::audit::Outcome::Ok)
                .customers([customer.clone()])
                .detail(serde_json::json!({"orders": rows.len()})),
        ])
        .await?;
        Ok(OrderPage {
            items: self.order_views(&customer, rows).await?,
            next_cursor,
            paid_totals,
        })
    }

    async fn order_views(&self, customer: &str, rows: Vec<OrderRow>) -> AppResult<Vec<OrderView>> {
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let mut items: HashMap<String, Vec<OrderItemView>> = HashMap::new();
        let mut names: HashMap<String, Option<ProductRow>> = HashMap::new();
        for item in self.store().customer_order_items(customer, &ids).await? {
            if !names.contains_key(&item.product_id) {
                let product = self.store().product(&item.product_id).await?;
                names.insert(item.product_id.clone(), product);
            }
            let product = names.get(&item.product_id).and_then(Option::as_ref);
            items
                .entry(item.order_id.clone())
                .or_default()
                .push(OrderItemView {
                    line: item.line_no,
                    sku: product.map(|product| product.sku.clone()),
                    name: product.map(|product| product.name.clone()),
                    product_id: item.product_id,
                    quantity: item.quantity,
                    unit_price_fen: item.unit_price_fen,
                    line_total_fen: item.line_total_fen,
                });
        }
        Ok(rows
            .into_iter()
            .map(|row| OrderView {
                items: items.remove(&row.id).unwrap_or_default(),
                id: row.id,
                customer_id: row.customer_id,
                status: row.status,
                currency: row.currency,
                total_fen: row.total_fen,
                points_earned: row.points_earned,
                by: row.created_by,
                placed_at: format_time(row.placed_at),
                paid_at: row.paid_at.map(format_time),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_changes_follow_the_lifecycle() {
        use OrderStatus::*;
        let all = [Placed, Paid, Refunded, Cancelled];
        let allowed = [(Placed, Paid), (Placed, Cancelled), (Paid, Refunded)];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
            assert_eq!(OrderStatus::parse(from.as_str()), Some(from));
        }
    }
}
