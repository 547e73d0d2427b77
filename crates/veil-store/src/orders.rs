//! The product catalogue, orders with their items, and the purchase-history queries recommendations are built
//! from. Amounts are integers in minor units (fen). Nothing here is personal data beyond the customer id.

use sqlx::Row;

use crate::loyalty::{LoyaltyEffect, LoyaltyOutcome, TierLadder};
use crate::{with_pool, Store, StoreError, StoreResult, TimeCursor};

/// A catalogue product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    /// Product id (UUIDv7 text).
    pub id: String,
    /// Stock-keeping unit, unique.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Category, e.g. `skincare`.
    pub category: String,
    /// Price in minor units.
    pub price_fen: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Whether it can be ordered.
    pub active: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

macro_rules! product_from_row {
    ($row:expr) => {
        (|| -> Result<ProductRow, sqlx::Error> {
            Ok(ProductRow {
                id: $row.try_get("id")?,
                sku: $row.try_get("sku")?,
                name: $row.try_get("name")?,
                category: $row.try_get("category")?,
                price_fen: $row.try_get("price_fen")?,
                currency: $row.try_get("currency")?,
                active: $row.try_get("active")?,
                created_at: $row.try_get("created_at")?,
                updated_at: $row.try_get("updated_at")?,
            })
        })()
    };
}

const PRODUCT_COLUMNS: &str =
    "id, sku, name, category, price_fen, currency, active, created_at, updated_at";

/// An order's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Order id (UUIDv7 text).
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// `placed`, `paid`, `refunded` or `cancelled`.
    pub status: String,
    /// ISO 4217 code shared by every item.
    pub currency: String,
    /// Sum of the items' line totals, minor units.
    pub total_fen: i64,
    /// Points credited when it was paid.
    pub points_earned: i64,
    /// Who entered it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub placed_at: i64,
    /// Unix ms, once paid.
    pub paid_at: Option<i64>,
    /// Unix ms.
    pub updated_at: i64,
}

macro_rules! order_from_row {
    ($row:expr) => {
        (|| -> Result<OrderRow, sqlx::Error> {
            Ok(OrderRow {
                id: $row.try_get("id")?,
                customer_id: $row.try_get("customer_id")?,
                status: $row.try_get("status")?,
                currency: $row.try_get("currency")?,
                total_fen: $row.try_get("total_fen")?,
                points_earned: $row.try_get("points_earned")?,
                created_by: $row.try_get("created_by")?,
                placed_at: $row.try_get("placed_at")?,
                paid_at: $row.try_get("paid_at")?,
                updated_at: $row.try_get("updated_at")?,
            })
        })()
    };
}

const ORDER_COLUMNS: &str =
    "id, customer_id, status, currency, total_fen, points_earned, created_by, placed_at, \
     paid_at, updated_at";

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItemRow {
    /// The order.
    pub order_id: String,
    /// Position from 1.
    pub line_no: i64,
    /// The product.
    pub product_id: String,
    /// How many.
    pub quantity: i64,
    /// Price of one at the time of the order, minor units.
    pub unit_price_fen: i64,
    /// `quantity × unit_price_fen`.
    pub line_total_fen: i64,
}

/// How many distinct customers bought both `source` and `candidate` (with a paid order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoPurchaseRow {
    /// A product the customer in question bought.
    pub source: String,
    /// Another product bought by customers who bought `source`.
    pub candidate: String,
    /// Distinct customers who bought both.
    pub customers: i64,
}

/// How many products each product's neighbour list keeps (`product_neighbour`, migration 0030): recommendations
/// count the similarity of a product to one the customer bought only when it is among that product's
/// `NEIGHBOUR_DEPTH` most similar.
pub const NEIGHBOUR_DEPTH: i64 = 50;

/// The advisory lock (PostgreSQL) that purchase changes hold shared, from their triggers to their commit, and a
/// neighbour refresh holds exclusively (see migration 0030): `'veil-nbr'` as a big-endian integer.
const NEIGHBOUR_LOCK: i64 = 8_531_340_982_462_866_034;

/// Takes [`NEIGHBOUR_LOCK`] exclusively until the transaction `$tx` ends (PostgreSQL; on SQLite the write
/// transaction already excludes purchase changes).
macro_rules! lock_neighbours_exclusive {
    ($store:expr, $tx:ident) => {
        if $store.backend() == crate::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(NEIGHBOUR_LOCK)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// One member of the neighbour list of a product a customer bought, with the counts recommendations score it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourRow {
    /// The customer's product whose list it is.
    pub source: String,
    /// The listed product (active, bought by someone).
    pub candidate: String,
    /// Distinct customers who bought both, when the list was computed (now, unless it is marked stale).
    pub customers: i64,
    /// The listed product's category.
    pub category: String,
    /// The listed product's distinct buyers, now.
    pub buyers: i64,
}

/// The work waiting for a neighbour refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourBacklog {
    /// Lists marked stale.
    pub lists: i64,
    /// Products whose buyers fell, to test against the cuts of the lists they are not on.
    pub rises: i64,
    /// When the oldest of either was marked (unix ms).
    pub oldest_marked_at: Option<i64>,
}

/// A product the customer bought, as their recommendations need it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    /// The product.
    pub product_id: String,
    /// Units bought over paid orders.
    pub units: i64,
    /// Its category while it is active; `None` for an inactive product.
    pub active_category: Option<String>,
    /// Its distinct buyers.
    pub buyers: i64,
}

/// A product that may be recommended (active), with its category and distinct buyers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedProduct {
    /// The product.
    pub product_id: String,
    /// Its category.
    pub category: String,
    /// Its distinct buyers.
    pub buyers: i64,
}

macro_rules! ranked_from_row {
    ($row:expr) => {
        (|| -> Result<RankedProduct, sqlx::Error> {
            Ok(RankedProduct {
                product_id: $row.try_get("product_id")?,
                category: $row.try_get("category")?,
                buyers: $row.try_get("buyers")?,
            })
        })()
    };
}

/// Purchase statistics in full, as maps: `bought` is (customer, product) → units, `buyers` product → distinct
/// buyers, `pairs` (product, other product) → distinct customers who bought both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseTotals {
    /// Units bought per (customer, product), over paid orders.
    pub bought: std::collections::BTreeMap<(String, String), i64>,
    /// Distinct buyers per product.
    pub buyers: std::collections::BTreeMap<String, i64>,
    /// Distinct customers per ordered pair of products bought by the same customer.
    pub pairs: std::collections::BTreeMap<(String, String), i64>,
}

/// Writes the neighbour lists of `$products` (all products when empty) with `$depth` members, in the cosine order
/// `customers² / buyers(neighbour)` then neighbour id (the same floating-point expression on both backends), and
/// the cut of each list that had more candidates; the lists must have been deleted first. `$1` is the depth, the
/// products follow.
macro_rules! compute_neighbour_lists {
    ($tx:expr, $depth:expr, $products:expr) => {{
        let products: &[String] = $products;
        let filter = |column: &str| {
            if products.is_empty() {
                String::new()
            } else {
                format!(
                    " AND {column} IN ({})",
                    crate::customers::in_list_from(2, products.len())
                )
            }
        };
        let statements = [
            // One member beyond the depth tells a truncated list from a complete one.
            format!(
                "INSERT INTO product_neighbour (product_id, rank, neighbour_id, customers) \
                 SELECT product_id, rank, other_id, customers FROM ( \
                   SELECT pair.product_id, pair.other_id, pair.customers, \
                     ROW_NUMBER() OVER (PARTITION BY pair.product_id \
                     ORDER BY CAST(pair.customers AS DOUBLE PRECISION) * pair.customers / b.buyers DESC, \
                     pair.other_id) AS rank \
                   FROM product_pair pair JOIN product_buyers b ON b.product_id = pair.other_id \
                   WHERE pair.customers > 0 AND b.buyers > 0{}) ranked \
                 WHERE rank <= $1 + 1",
                filter("pair.product_id")
            ),
            format!(
                "INSERT INTO product_neighbour_cut (product_id, customers, buyers) \
                 SELECT last.product_id, last.customers, b.buyers FROM product_neighbour last \
                 JOIN product_buyers b ON b.product_id = last.neighbour_id \
                 WHERE last.rank = $1{} AND EXISTS (SELECT 1 FROM product_neighbour beyond \
                   WHERE beyond.product_id = last.product_id AND beyond.rank > $1)",
                filter("last.product_id")
            ),
            format!(
                "DELETE FROM product_neighbour WHERE rank > $1{}",
                filter("product_id")
            ),
        ];
        for sql in &statements {
            let mut query = sqlx::query(sql).bind($depth);
            for product in products {
                query = query.bind(product);
            }
            query.execute($tx).await?;
        }
    }};
}

/// The result of [`Store::transition_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The order was no longer in the expected status; nothing was written.
    Stale,
    /// The order moved; the loyalty account after its effect, when it had one.
    Moved(Option<Box<LoyaltyOutcome>>),
}

/// A paid order's purchases, the set recommendations count ("bought" = an item of a paid order).
const BOUGHT: &str = "SELECT DISTINCT i.customer_id, i.product_id FROM order_item i \
     JOIN sales_order o ON o.id = i.order_id WHERE o.status = 'paid'";

/// Re-derives one customer's (`$1`) `customer_product` rows from their paid orders: adds what they now have bought
/// (the table's triggers count the new buyer and pairs) and updates the units. Run with [`SYNC_UNBOUGHT`] in the
/// transaction of every order write that makes, or stops, an order being paid.
const SYNC_BOUGHT: &str = "INSERT INTO customer_product (customer_id, product_id, units) \
     SELECT i.customer_id, i.product_id, SUM(i.quantity) FROM order_item i JOIN sales_order o ON o.id = i.order_id \
     WHERE i.customer_id = $1 AND o.status = 'paid' GROUP BY i.customer_id, i.product_id \
     ON CONFLICT (customer_id, product_id) DO UPDATE SET units = excluded.units \
     WHERE customer_product.units <> excluded.units";

/// Removes the products one customer (`$1`) no longer has on any paid order (a refund, a cancellation); the
/// triggers take them out of the buyer and pair counts.
const SYNC_UNBOUGHT: &str =
    "DELETE FROM customer_product WHERE customer_id = $1 AND product_id NOT IN \
     (SELECT i.product_id FROM order_item i JOIN sales_order o ON o.id = i.order_id \
      WHERE i.customer_id = $1 AND o.status = 'paid')";

impl Store {
    /// Adds a product with its audit entries; `Conflict` when the SKU is taken.
    pub async fn insert_product(
        &self,
        row: &ProductRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO product (id, sku, name, category, price_fen, currency, active, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&row.id)
            .bind(&row.sku)
            .bind(&row.name)
            .bind(&row.category)
            .bind(row.price_fen)
            .bind(&row.currency)
            .bind(row.active)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Writes a product's changeable fields (name, category, price, active) if it was last updated at
    /// `expected_updated_at`; `StaleWrite` otherwise.
    pub async fn update_product(
        &self,
        row: &ProductRow,
        expected_updated_at: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE product SET name = $2, category = $3, price_fen = $4, active = $5, updated_at = $6 \
                 WHERE id = $1 AND updated_at = $7",
            )
            .bind(&row.id)
            .bind(&row.name)
            .bind(&row.category)
            .bind(row.price_fen)
            .bind(row.active)
            .bind(row.updated_at)
            .bind(expected_updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                return Err(StoreError::StaleWrite);
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// One product.
    pub async fn product(&self, id: &str) -> StoreResult<Option<ProductRow>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM product WHERE id = $1");
        let row = with_pool!(self, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Some(product_from_row!(row)?),
                None => None,
            }
        });
        Ok(row)
    }

    /// Products by category and name, optionally only active ones or one category.
    pub async fn list_products(
        &self,
        category: Option<&str>,
        active_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<ProductRow>> {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM product WHERE ($1 IS NULL OR category = $1) \
             AND ($2 = FALSE OR active = TRUE) ORDER BY category, name, id LIMIT $3"
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(category)
                .bind(active_only)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| product_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Stores an order with its items and audit entries, in one transaction.
    pub async fn insert_order(
        &self,
        order: &OrderRow,
        items: &[OrderItemRow],
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO sales_order (id, customer_id, status, currency, total_fen, points_earned, created_by, \
                 placed_at, paid_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(&order.id)
            .bind(&order.customer_id)
            .bind(&order.status)
            .bind(&order.currency)
            .bind(order.total_fen)
            .bind(order.points_earned)
            .bind(&order.created_by)
            .bind(order.placed_at)
            .bind(order.paid_at)
            .bind(order.updated_at)
            .execute(&mut *tx)
            .await?;
            for item in items {
                sqlx::query(
                    "INSERT INTO order_item (order_id, line_no, customer_id, product_id, quantity, unit_price_fen, \
                     line_total_fen) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&order.id)
                .bind(item.line_no)
                .bind(&order.customer_id)
                .bind(&item.product_id)
                .bind(item.quantity)
                .bind(item.unit_price_fen)
                .bind(item.line_total_fen)
                .execute(&mut *tx)
                .await?;
            }
            if order.status == "paid" {
                sqlx::query(SYNC_BOUGHT)
                    .bind(&order.customer_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SYNC_UNBOUGHT)
                    .bind(&order.customer_id)
                    .execute(&mut *tx)
                    .await?;
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// One order's head.
    pub async fn order(&self, id: &str) -> StoreResult<Option<OrderRow>> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM sales_order WHERE id = $1");
        let row = with_pool!(self, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Some(order_from_row!(row)?),
                None => None,
            }
        });
        Ok(row)
    }

    /// A customer's orders, newest `placed_at` first, strictly before `before`.
    pub async fn list_customer_orders(
        &self,
        customer_id: &str,
        before: Option<&TimeCursor>,
        limit: i64,
    ) -> StoreResult<Vec<OrderRow>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM sales_order WHERE customer_id = $1 \
             AND ($2 IS NULL OR placed_at < $2 OR (placed_at = $2 AND id < $3)) \
             ORDER BY placed_at DESC, id DESC LIMIT $4"
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(customer_id)
                .bind(before.map(|cursor| cursor.at))
                .bind(before.map(|cursor| cursor.id.as_str()).unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| order_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The items of one customer's orders (all of them, for a page of that customer's orders), by order and line.
    pub async fn customer_order_items(
        &self,
        customer_id: &str,
        order_ids: &[String],
    ) -> StoreResult<Vec<OrderItemRow>> {
        if order_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..order_ids.len())
            .map(|index| format!("${}", index + 2))
            .collect();
        let sql = format!(
            "SELECT order_id, line_no, product_id, quantity, unit_price_fen, line_total_fen FROM order_item \
             WHERE customer_id = $1 AND order_id IN ({}) ORDER BY order_id, line_no",
            placeholders.join(", ")
        );
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).bind(customer_id);
            for id in order_ids {
                query = query.bind(id);
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<OrderItemRow, sqlx::Error> {
                    Ok(OrderItemRow {
                        order_id: row.try_get("order_id")?,
                        line_no: row.try_get("line_no")?,
                        product_id: row.try_get("product_id")?,
                        quantity: row.try_get("quantity")?,
                        unit_price_fen: row.try_get("unit_price_fen")?,
                        line_total_fen: row.try_get("line_total_fen")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Moves an order from `from` to `to` and applies its loyalty effect, with the audit entries, in one
    /// transaction. `None` (nothing written) when the order was no longer in `from`: another request moved it.
    #[allow(clippy::too_many_arguments)]
    pub async fn transition_order(
        &self,
        order_id: &str,
        from: &str,
        to: &str,
        now: i64,
        effect: &LoyaltyEffect,
        ladder: &TierLadder,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<Transition> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The guarded UPDATE is the first statement: it takes the row (PostgreSQL) or the write lock (SQLite)
            // before anything is read, so two requests cannot both move the order.
            let customer: Option<String> = sqlx::query_scalar(
                "UPDATE sales_order SET status = $3, updated_at = $4, \
                 paid_at = CASE WHEN $3 = 'paid' THEN $4 ELSE paid_at END \
                 WHERE id = $1 AND status = $2 RETURNING customer_id",
            )
            .bind(order_id)
            .bind(from)
            .bind(to)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(customer) = customer else {
                tx.rollback().await?;
                return Ok(Transition::Stale);
            };
            if from == "paid" || to == "paid" {
                sqlx::query(SYNC_BOUGHT)
                    .bind(&customer)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SYNC_UNBOUGHT)
                    .bind(&customer)
                    .execute(&mut *tx)
                    .await?;
            }
            let outcome = if *effect == LoyaltyEffect::None {
                None
            } else {
                Some(Box::new(
                    crate::loyalty::apply_effect(
                        &mut *tx,
                        &customer,
                        Some(order_id),
                        effect,
                        ladder,
                        now,
                        audit,
                    )
                    .await?,
                ))
            };
            if let LoyaltyEffect::Earn { points, .. } = effect {
                sqlx::query("UPDATE sales_order SET points_earned = $2 WHERE id = $1")
                    .bind(order_id)
                    .bind(*points)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut events = audit.to_vec();
            events.extend(
                outcome
                    .iter()
                    .filter_map(|outcome| outcome.tier_event.clone()),
            );
            crate::audit::append_in(&mut *tx, &events).await?;
            tx.commit().await?;
            Ok::<Transition, StoreError>(Transition::Moved(outcome))
        })
    }

    /// What one customer bought (units over paid orders), with each product's category while active and its
    /// buyer count, in product order.
    pub async fn purchase_history(&self, customer_id: &str) -> StoreResult<Vec<HistoryItem>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT mine.product_id, mine.units, p.category, p.active, COALESCE(b.buyers, 0) AS buyers \
                 FROM customer_product mine JOIN product p ON p.id = mine.product_id \
                 LEFT JOIN product_buyers b ON b.product_id = mine.product_id \
                 WHERE mine.customer_id = $1 ORDER BY mine.product_id",
            )
            .bind(customer_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<HistoryItem, sqlx::Error> {
                let active: bool = row.try_get("active")?;
                let category: String = row.try_get("category")?;
                Ok(HistoryItem {
                    product_id: row.try_get("product_id")?,
                    units: row.try_get("units")?,
                    active_category: active.then_some(category),
                    buyers: row.try_get("buyers")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The `limit` best "also bought" candidates for customer `customer_id`, ranked in the database: active
    /// products they have not bought, by `(Σ_source customers(source, candidate) · weight(source))² /
    /// buyers(candidate)`, then product id. `weights` pairs each of the customer's products with `1 /
    /// √buyers(source)`, so the order is that of the cosine score `Σ customers / √(buyers(source) ·
    /// buyers(candidate))` without a square root in SQL (SQLite has none). Only the candidates leave the database,
    /// not the pair rows behind them.
    pub async fn co_purchase_candidates(
        &self,
        customer_id: &str,
        weights: &[(String, f64)],
        limit: i64,
    ) -> StoreResult<Vec<RankedProduct>> {
        if weights.is_empty() {
            return Ok(Vec::new());
        }
        let sources = match self.backend() {
            crate::Backend::Sqlite => {
                "SELECT json_extract(value, '$[0]') AS product_id, json_extract(value, '$[1]') AS w \
                 FROM json_each($2)"
            }
            crate::Backend::Postgres => {
                "SELECT e->>0 AS product_id, (e->>1)::DOUBLE PRECISION AS w \
                 FROM jsonb_array_elements($2::jsonb) AS e"
            }
        };
        let sql = format!(
            "WITH src AS ({sources}), \
             agg AS (SELECT pair.other_id AS id, SUM(pair.customers * src.w) AS s \
                     FROM src JOIN product_pair pair ON pair.product_id = src.product_id \
                     WHERE pair.customers > 0 GROUP BY pair.other_id) \
             SELECT agg.id AS product_id, p.category, b.buyers FROM agg \
             JOIN product_buyers b ON b.product_id = agg.id AND b.buyers > 0 \
             JOIN product p ON p.id = agg.id AND p.active = TRUE \
             WHERE NOT EXISTS (SELECT 1 FROM customer_product own \
                               WHERE own.customer_id = $1 AND own.product_id = agg.id) \
             ORDER BY agg.s * agg.s / b.buyers DESC, agg.id LIMIT $3"
        );
        let weights = serde_json::Value::Array(
            weights
                .iter()
                .map(|(id, weight)| serde_json::json!([id, weight]))
                .collect(),
        )
        .to_string();
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(customer_id)
                .bind(&weights)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| ranked_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The co-purchase counts from customer `customer_id`'s products to `candidates` (at most a few hundred).
    pub async fn co_purchases_with(
        &self,
        customer_id: &str,
        candidates: &[String],
    ) -> StoreResult<Vec<CoPurchaseRow>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT pair.product_id AS source, pair.other_id AS candidate, pair.customers \
             FROM customer_product mine JOIN product_pair pair ON pair.product_id = mine.product_id \
             WHERE mine.customer_id = $1 AND pair.customers > 0 AND pair.other_id IN ({})",
            crate::customers::in_list_from(2, candidates.len())
        );
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).bind(customer_id);
            for candidate in candidates {
                query = query.bind(candidate);
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<CoPurchaseRow, sqlx::Error> {
                    Ok(CoPurchaseRow {
                        source: row.try_get("source")?,
                        candidate: row.try_get("candidate")?,
                        customers: row.try_get("customers")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The neighbour lists of customer `customer_id`'s products: each listed product that is active, with the
    /// pair count of the list and the product's buyers now (one index range per product they bought, about
    /// `NEIGHBOUR_DEPTH` rows, and a lookup per row in the small product tables; no `product_pair` row). Lists are
    /// as last computed ([`Store::refresh_product_neighbours`]): for a list not marked stale the pair counts are
    /// the current ones.
    pub async fn neighbour_rows(&self, customer_id: &str) -> StoreResult<Vec<NeighbourRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT listed.product_id AS source, listed.neighbour_id AS candidate, listed.customers, \
                 p.category, b.buyers FROM customer_product mine \
                 JOIN product_neighbour listed ON listed.product_id = mine.product_id \
                 JOIN product_buyers b ON b.product_id = listed.neighbour_id \
                 JOIN product p ON p.id = listed.neighbour_id \
                 WHERE mine.customer_id = $1 AND b.buyers > 0 AND p.active = TRUE",
            )
            .bind(customer_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<NeighbourRow, sqlx::Error> {
                Ok(NeighbourRow {
                    source: row.try_get("source")?,
                    candidate: row.try_get("candidate")?,
                    customers: row.try_get("customers")?,
                    category: row.try_get("category")?,
                    buyers: row.try_get("buyers")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The `limit` most-bought active products (of `category`, when given) that customer `customer_id` has not
    /// bought: by buyers, then product id, products nobody bought last (by id).
    pub async fn popular_products(
        &self,
        customer_id: &str,
        category: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RankedProduct>> {
        // Bought ones walk the (buyers, product) index; the rest, if needed, the product key.
        let bought = "SELECT b.product_id, p.category, b.buyers FROM product_buyers b \
             JOIN product p ON p.id = b.product_id AND p.active = TRUE AND ($2 IS NULL OR p.category = $2) \
             WHERE b.buyers > 0 AND NOT EXISTS (SELECT 1 FROM customer_product own \
                 WHERE own.customer_id = $1 AND own.product_id = b.product_id) \
             ORDER BY b.buyers DESC, b.product_id LIMIT $3";
        let unbought = "SELECT p.id AS product_id, p.category, CAST(0 AS BIGINT) AS buyers FROM product p \
             WHERE p.active = TRUE AND ($2 IS NULL OR p.category = $2) \
             AND NOT EXISTS (SELECT 1 FROM product_buyers b WHERE b.product_id = p.id AND b.buyers > 0) \
             ORDER BY p.id LIMIT $3";
        let rows = with_pool!(self, |pool| {
            let mut rows = sqlx::query(bought)
                .bind(customer_id)
                .bind(category)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| ranked_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let missing = limit - rows.len() as i64;
            if missing > 0 {
                for row in sqlx::query(unbought)
                    .bind(customer_id)
                    .bind(category)
                    .bind(missing)
                    .fetch_all(pool)
                    .await?
                {
                    rows.push(ranked_from_row!(row)?);
                }
            }
            Ok::<_, sqlx::Error>(rows)
        })?;
        Ok(rows)
    }

    /// Which of `names` are categories of active products.
    pub async fn active_categories_among(&self, names: &[String]) -> StoreResult<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT category FROM product WHERE active = TRUE AND category IN ({}) ORDER BY category",
            crate::customers::in_list(names.len())
        );
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for name in names {
                query = query.bind(name);
            }
            query.fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Products by id (those that exist).
    pub async fn products_by_ids(&self, ids: &[String]) -> StoreResult<Vec<ProductRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM product WHERE id IN ({})",
            crate::customers::in_list(ids.len())
        );
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql);
            for id in ids {
                query = query.bind(id);
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| product_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The purchase statistics computed afresh from the paid orders, in the shape they are kept in
    /// (`customer_product` rows, buyers per product, customers per ordered pair; zero counts left out), for
    /// checking the kept ones ([`Store::kept_purchase_stats`]) and for [`Store::rebuild_purchase_stats`].
    pub async fn derived_purchase_stats(&self) -> StoreResult<PurchaseTotals> {
        self.purchase_totals(
            "SELECT i.customer_id, i.product_id, CAST(SUM(i.quantity) AS BIGINT) AS units FROM order_item i \
             JOIN sales_order o ON o.id = i.order_id WHERE o.status = 'paid' \
             GROUP BY i.customer_id, i.product_id",
            &format!("SELECT product_id, COUNT(*) AS n FROM ({BOUGHT}) bought GROUP BY product_id"),
            &format!(
                "WITH bought AS ({BOUGHT}) SELECT a.product_id, b.product_id AS other_id, COUNT(*) AS n \
                 FROM bought a JOIN bought b ON b.customer_id = a.customer_id AND b.product_id <> a.product_id \
                 GROUP BY a.product_id, b.product_id"
            ),
        )
        .await
    }

    /// The purchase statistics as kept on write (zero counts left out).
    pub async fn kept_purchase_stats(&self) -> StoreResult<PurchaseTotals> {
        self.purchase_totals(
            "SELECT customer_id, product_id, units FROM customer_product",
            "SELECT product_id, buyers AS n FROM product_buyers WHERE buyers > 0",
            "SELECT product_id, other_id, customers AS n FROM product_pair WHERE customers > 0",
        )
        .await
    }

    async fn purchase_totals(
        &self,
        bought_sql: &str,
        buyers_sql: &str,
        pairs_sql: &str,
    ) -> StoreResult<PurchaseTotals> {
        let totals = with_pool!(self, |pool| {
            let mut totals = PurchaseTotals::default();
            for row in sqlx::query(bought_sql).fetch_all(pool).await? {
                totals.bought.insert(
                    (row.try_get("customer_id")?, row.try_get("product_id")?),
                    row.try_get("units")?,
                );
            }
            for row in sqlx::query(buyers_sql).fetch_all(pool).await? {
                totals
                    .buyers
                    .insert(row.try_get("product_id")?, row.try_get("n")?);
            }
            for row in sqlx::query(pairs_sql).fetch_all(pool).await? {
                totals.pairs.insert(
                    (row.try_get("product_id")?, row.try_get("other_id")?),
                    row.try_get("n")?,
                );
            }
            Ok::<PurchaseTotals, sqlx::Error>(totals)
        })?;
        Ok(totals)
    }

    /// Recomputes the kept purchase statistics from the paid orders, and every neighbour list from them
    /// ([`NEIGHBOUR_DEPTH`]): for orders written around the order functions (a bulk load), and as a repair. Runs in
    /// one transaction.
    pub async fn rebuild_purchase_stats(&self) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            lock_neighbours_exclusive!(self, tx);
            for sql in [
                // The lists go first, so that the triggers of the deletes below have none to mark.
                "DELETE FROM product_neighbour",
                "DELETE FROM product_neighbour_cut",
                "DELETE FROM customer_product",
                "DELETE FROM product_pair",
                "DELETE FROM product_buyers",
                "INSERT INTO customer_product (customer_id, product_id, units) \
                 SELECT i.customer_id, i.product_id, SUM(i.quantity) FROM order_item i \
                 JOIN sales_order o ON o.id = i.order_id WHERE o.status = 'paid' \
                 GROUP BY i.customer_id, i.product_id",
            ] {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            compute_neighbour_lists!(&mut *tx, NEIGHBOUR_DEPTH, &[] as &[String]);
            for sql in [
                "DELETE FROM product_neighbour_stale",
                "DELETE FROM product_neighbour_rise",
            ] {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// One step of the neighbour refresh, in one transaction: tests at most `batch` recorded rises (products
    /// whose buyers fell) against the cuts of the truncated lists and marks the lists they reach, then recomputes
    /// at most `batch` lists marked stale, oldest mark first, keeping `depth` products per list. Returns how many
    /// rises and lists it handled (0: nothing was waiting). On PostgreSQL it holds [`NEIGHBOUR_LOCK`] exclusively,
    /// so purchase changes wait for it: keep `batch` small.
    pub async fn refresh_product_neighbours(&self, depth: i64, batch: i64) -> StoreResult<usize> {
        let now = match self.backend() {
            crate::Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            crate::Backend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            lock_neighbours_exclusive!(self, tx);
            // A write first: on SQLite it takes the write lock before anything is read.
            let risen: Vec<String> = sqlx::query_scalar(
                "DELETE FROM product_neighbour_rise WHERE product_id IN \
                 (SELECT product_id FROM product_neighbour_rise ORDER BY marked_at, product_id LIMIT $1) \
                 RETURNING product_id",
            )
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
            if !risen.is_empty() {
                // p gets into list x when customers(x, p)² / buyers(p) reaches the cut's customers² / buyers,
                // compared multiplied out in floating point with a little slack (a list marked without need only
                // costs a recomputation). product_pair is symmetric: the partners x of p are read from p's rows.
                let sql = format!(
                    "INSERT INTO product_neighbour_stale (product_id, marked_at) \
                     SELECT reached.product_id, {now} FROM ( \
                       SELECT DISTINCT cut.product_id FROM product_pair pair \
                       JOIN product_neighbour_cut cut ON cut.product_id = pair.other_id \
                       JOIN product_buyers gone ON gone.product_id = pair.product_id \
                       WHERE pair.product_id IN ({}) AND pair.customers > 0 \
                         AND CAST(pair.customers AS DOUBLE PRECISION) * pair.customers * cut.buyers \
                             >= 0.999999 * CAST(cut.customers AS DOUBLE PRECISION) * cut.customers * gone.buyers \
                     ) reached WHERE TRUE \
                     ON CONFLICT (product_id) DO NOTHING",
                    crate::customers::in_list(risen.len())
                );
                let mut query = sqlx::query(&sql);
                for product in &risen {
                    query = query.bind(product);
                }
                query.execute(&mut *tx).await?;
            }
            let products: Vec<String> = sqlx::query_scalar(
                "DELETE FROM product_neighbour_stale WHERE product_id IN \
                 (SELECT product_id FROM product_neighbour_stale ORDER BY marked_at, product_id LIMIT $1) \
                 RETURNING product_id",
            )
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
            if risen.is_empty() && products.is_empty() {
                tx.rollback().await?;
                return Ok(0);
            }
            let claimed = crate::customers::in_list(products.len());
            for table in ["product_neighbour", "product_neighbour_cut"] {
                let sql = format!("DELETE FROM {table} WHERE product_id IN ({claimed})");
                let mut query = sqlx::query(&sql);
                for product in &products {
                    query = query.bind(product);
                }
                query.execute(&mut *tx).await?;
            }
            if !products.is_empty() {
                compute_neighbour_lists!(&mut *tx, depth, &products);
            }
            tx.commit().await?;
            Ok::<usize, StoreError>(risen.len() + products.len())
        })
    }

    /// Recomputes every neighbour list with `depth` products and clears the stale marks and rises, in one
    /// transaction (a repair, a change of depth).
    pub async fn rebuild_product_neighbours(&self, depth: i64) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            lock_neighbours_exclusive!(self, tx);
            for sql in [
                "DELETE FROM product_neighbour",
                "DELETE FROM product_neighbour_cut",
                "DELETE FROM product_neighbour_stale",
                "DELETE FROM product_neighbour_rise",
            ] {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            compute_neighbour_lists!(&mut *tx, depth, &[] as &[String]);
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Every neighbour list as stored, members in rank order (for checking them against a computation afresh).
    pub async fn product_neighbour_lists(
        &self,
    ) -> StoreResult<std::collections::BTreeMap<String, Vec<String>>> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT product_id, neighbour_id FROM product_neighbour ORDER BY product_id, rank",
            )
            .fetch_all(pool)
            .await?
        });
        let mut lists = std::collections::BTreeMap::<String, Vec<String>>::new();
        for (product, neighbour) in rows {
            lists.entry(product).or_default().push(neighbour);
        }
        Ok(lists)
    }

    /// The work waiting for a neighbour refresh.
    pub async fn neighbour_backlog(&self) -> StoreResult<NeighbourBacklog> {
        let (lists, rises, oldest_marked_at): (i64, i64, Option<i64>) = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM product_neighbour_stale), \
                 (SELECT COUNT(*) FROM product_neighbour_rise), \
                 (SELECT MIN(marked_at) FROM (SELECT marked_at FROM product_neighbour_stale \
                   UNION ALL SELECT marked_at FROM product_neighbour_rise) marks)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(NeighbourBacklog {
            lists,
            rises,
            oldest_marked_at,
        })
    }
}
