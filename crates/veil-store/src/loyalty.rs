//! The loyalty ledger: one account per customer (balance, lifetime points, tier), an append-only list of entries
//! whose earn entries double as lots (what is left of them, when they expire), and the history of tier changes.
//!
//! Every change runs in one transaction that starts by locking the customer's account row (an upsert: the row
//! lock on PostgreSQL, the database write lock on SQLite), so concurrent redemptions, expiry and refunds of one
//! customer run one after the other. A deduction is a guarded `UPDATE … WHERE balance >= points`, and the column
//! has `CHECK (balance >= 0)` behind it: the balance cannot go negative.

use sqlx::Row;

use crate::audit::AuditAppend;
use crate::{with_pool, AuditEvent, Store, StoreError, StoreResult};

/// Membership tiers by lifetime points: `(name, threshold)` ascending, the first at 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLadder {
    tiers: Vec<(String, i64)>,
}

impl TierLadder {
    /// A ladder from `(name, threshold)` pairs; they are sorted, and a tier at 0 is expected to be among them
    /// (below the lowest threshold the lowest tier applies anyway).
    pub fn new(mut tiers: Vec<(String, i64)>) -> TierLadder {
        tiers.sort_by(|left, right| left.1.cmp(&right.1).then_with(|| left.0.cmp(&right.0)));
        TierLadder { tiers }
    }

    /// The tier a customer with `lifetime_points` belongs to.
    pub fn tier_for(&self, lifetime_points: i64) -> &str {
        self.tiers
            .iter()
            .rev()
            .find(|(_, threshold)| lifetime_points >= *threshold)
            .or(self.tiers.first())
            .map(|(name, _)| name.as_str())
            .unwrap_or("member")
    }

    /// The tiers, ascending.
    pub fn tiers(&self) -> &[(String, i64)] {
        &self.tiers
    }
}

/// What an order's status change does to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoyaltyEffect {
    /// Nothing.
    None,
    /// Credit `points` as a new lot expiring at `expires_at` (an order was paid).
    Earn {
        /// The new entry's id.
        entry_id: String,
        /// Points to credit (> 0).
        points: i64,
        /// When the lot expires, Unix ms.
        expires_at: i64,
        /// Who caused it.
        actor_id: Option<String>,
    },
    /// Take back what is left of the order's earned lot and its lifetime points (a paid order was refunded).
    Reverse {
        /// The new entry's id.
        entry_id: String,
        /// Who caused it.
        actor_id: Option<String>,
    },
}

/// The account after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyOutcome {
    /// Points available.
    pub balance: i64,
    /// Points ever earned (net of refunds).
    pub lifetime_points: i64,
    /// The tier now.
    pub tier: String,
    /// `(from, to)` when the change moved the customer to another tier.
    pub tier_change: Option<(String, String)>,
    /// Points the change added (positive) or removed (negative) from the balance.
    pub delta: i64,
    /// The audit event of the tier change, if any (appended by the caller's transaction).
    pub tier_event: Option<AuditEvent>,
}

/// A customer's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyAccountRow {
    /// The customer.
    pub customer_id: String,
    /// Points available.
    pub balance: i64,
    /// Points ever earned (net of refunds).
    pub lifetime_points: i64,
    /// Current tier.
    pub tier: String,
    /// Unix ms.
    pub updated_at: i64,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyEntryRow {
    /// Entry id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// `earn`, `redeem`, `expire` or `reverse`.
    pub kind: String,
    /// Signed change of the balance.
    pub points: i64,
    /// For an earn lot: what is left of it.
    pub remaining: i64,
    /// The order that caused it.
    pub order_id: Option<String>,
    /// For an earn lot: when it expires, Unix ms.
    pub expires_at: Option<i64>,
    /// Short reason, masked.
    pub reason: Option<String>,
    /// Who caused it.
    pub actor_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// One tier change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChangeRow {
    /// Previous tier (`None` for the first).
    pub from_tier: Option<String>,
    /// New tier.
    pub to_tier: String,
    /// Lifetime points at the change.
    pub lifetime_points: i64,
    /// `earn` or `refund`.
    pub reason: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A redemption that asked for more than the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientPoints {
    /// The balance at the time.
    pub balance: i64,
}

/// The ledger operations, on an open transaction's connection. Implemented for both backends.
#[allow(async_fn_in_trait)]
pub trait LoyaltyConnection {
    /// Creates the account if needed and locks it; returns `(balance, lifetime_points, tier)`.
    async fn lock_account(
        &mut self,
        customer_id: &str,
        first_tier: &str,
        now: i64,
    ) -> StoreResult<(i64, i64, String)>;
    /// Expires the lots due at `now`; returns the points removed (already taken off the balance).
    async fn expire_due(&mut self, customer_id: &str, now: i64) -> StoreResult<i64>;
    /// Adds `delta` to the balance (guarded: never below 0) and `lifetime_delta` to lifetime points; `false` when
    /// the guard refused.
    async fn adjust_account(
        &mut self,
        customer_id: &str,
        delta: i64,
        lifetime_delta: i64,
        now: i64,
    ) -> StoreResult<bool>;
    /// Writes a ledger entry.
    async fn insert_entry(&mut self, entry: &LoyaltyEntryRow) -> StoreResult<()>;
    /// Takes `points` from the customer's lots, soonest expiry first.
    async fn consume_lots(&mut self, customer_id: &str, points: i64) -> StoreResult<()>;
    /// Zeroes the order's earn lot; returns `(points it earned, what was left)`.
    async fn close_order_lot(&mut self, order_id: &str) -> StoreResult<(i64, i64)>;
    /// Sets the tier and records the change.
    async fn change_tier(&mut self, customer_id: &str, change: &TierChangeRow) -> StoreResult<()>;
}

macro_rules! impl_loyalty {
    ($connection:ty) => {
        impl LoyaltyConnection for $connection {
            async fn lock_account(
                &mut self,
                customer_id: &str,
                first_tier: &str,
                now: i64,
            ) -> StoreResult<(i64, i64, String)> {
                let state: (i64, i64, String) = sqlx::query_as(
                    "INSERT INTO loyalty_account (customer_id, balance, lifetime_points, tier, created_at, updated_at) \
                     VALUES ($1, 0, 0, $2, $3, $3) \
                     ON CONFLICT (customer_id) DO UPDATE SET updated_at = $3 \
                     RETURNING balance, lifetime_points, tier",
                )
                .bind(customer_id)
                .bind(first_tier)
                .bind(now)
                .fetch_one(&mut *self)
                .await?;
                Ok(state)
            }

            async fn expire_due(&mut self, customer_id: &str, now: i64) -> StoreResult<i64> {
                let due: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT id, remaining FROM loyalty_entry WHERE customer_id = $1 AND kind = 'earn' \
                     AND remaining > 0 AND expires_at <= $2 ORDER BY expires_at, id",
                )
                .bind(customer_id)
                .bind(now)
                .fetch_all(&mut *self)
                .await?;
                let total: i64 = due.iter().map(|(_, remaining)| remaining).sum();
                if total == 0 {
                    return Ok(0);
                }
                for (id, _) in &due {
                    sqlx::query("UPDATE loyalty_entry SET remaining = 0 WHERE id = $1")
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                }
                if !self.adjust_account(customer_id, -total, 0, now).await? {
                    // The lots always add up to the balance; a refusal means the ledger was edited by hand.
                    return Err(StoreError::Snapshot(
                        "loyalty_account.balance is below its unexpired lots".to_owned(),
                    ));
                }
                self.insert_entry(&LoyaltyEntryRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    customer_id: customer_id.to_owned(),
                    kind: "expire".to_owned(),
                    points: -total,
                    remaining: 0,
                    order_id: None,
                    expires_at: None,
                    reason: None,
                    actor_id: None,
                    created_at: now,
                })
                .await?;
                Ok(total)
            }

            async fn adjust_account(
                &mut self,
                customer_id: &str,
                delta: i64,
                lifetime_delta: i64,
                now: i64,
            ) -> StoreResult<bool> {
                let changed = sqlx::query(
                    "UPDATE loyalty_account SET balance = balance + $2, \
                     lifetime_points = lifetime_points + $3, updated_at = $4 \
                     WHERE customer_id = $1 AND balance + $2 >= 0",
                )
                .bind(customer_id)
                .bind(delta)
                .bind(lifetime_delta)
                .bind(now)
                .execute(&mut *self)
                .await?
                .rows_affected();
                Ok(changed == 1)
            }

            async fn insert_entry(&mut self, entry: &LoyaltyEntryRow) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO loyalty_entry (id, customer_id, kind, points, remaining, order_id, expires_at, \
                     reason, actor_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&entry.id)
                .bind(&entry.customer_id)
                .bind(&entry.kind)
                .bind(entry.points)
                .bind(entry.remaining)
                .bind(&entry.order_id)
                .bind(entry.expires_at)
                .bind(&entry.reason)
                .bind(&entry.actor_id)
                .bind(entry.created_at)
                .execute(&mut *self)
                .await?;
                Ok(())
            }

            async fn consume_lots(&mut self, customer_id: &str, points: i64) -> StoreResult<()> {
                let lots: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT id, remaining FROM loyalty_entry WHERE customer_id = $1 AND kind = 'earn' \
                     AND remaining > 0 ORDER BY expires_at, id",
                )
                .bind(customer_id)
                .fetch_all(&mut *self)
                .await?;
                let mut left = points;
                for (id, remaining) in lots {
                    if left == 0 {
                        break;
                    }
                    let take = remaining.min(left);
                    sqlx::query("UPDATE loyalty_entry SET remaining = remaining - $2 WHERE id = $1")
                        .bind(&id)
                        .bind(take)
                        .execute(&mut *self)
                        .await?;
                    left -= take;
                }
                if left > 0 {
                    return Err(StoreError::Snapshot(
                        "loyalty_entry lots are below the account balance".to_owned(),
                    ));
                }
                Ok(())
            }

            async fn close_order_lot(&mut self, order_id: &str) -> StoreResult<(i64, i64)> {
                let lot: Option<(String, i64, i64)> = sqlx::query_as(
                    "SELECT id, points, remaining FROM loyalty_entry WHERE order_id = $1 AND kind = 'earn'",
                )
                .bind(order_id)
                .fetch_optional(&mut *self)
                .await?;
                let Some((id, points, remaining)) = lot else {
                    return Ok((0, 0));
                };
                sqlx::query("UPDATE loyalty_entry SET remaining = 0 WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *self)
                    .await?;
                Ok((points, remaining))
            }

            async fn change_tier(
                &mut self,
                customer_id: &str,
                change: &TierChangeRow,
            ) -> StoreResult<()> {
                sqlx::query("UPDATE loyalty_account SET tier = $2 WHERE customer_id = $1")
                    .bind(customer_id)
                    .bind(&change.to_tier)
                    .execute(&mut *self)
                    .await?;
                sqlx::query(
                    "INSERT INTO loyalty_tier_change (id, customer_id, from_tier, to_tier, lifetime_points, reason, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(customer_id)
                .bind(&change.from_tier)
                .bind(&change.to_tier)
                .bind(change.lifetime_points)
                .bind(&change.reason)
                .bind(change.created_at)
                .execute(&mut *self)
                .await?;
                Ok(())
            }
        }
    };
}

impl_loyalty!(sqlx::SqliteConnection);
impl_loyalty!(sqlx::PgConnection);

/// Applies an order's loyalty effect on an open transaction. The caller appends `outcome.tier_event`.
pub(crate) async fn apply_effect<C: LoyaltyConnection>(
    connection: &mut C,
    customer_id: &str,
    order_id: Option<&str>,
    effect: &LoyaltyEffect,
    ladder: &TierLadder,
    now: i64,
    audit: &[AuditEvent],
) -> StoreResult<LoyaltyOutcome> {
    let first_tier = ladder.tier_for(0).to_owned();
    let (balance, lifetime, tier) = connection
        .lock_account(customer_id, &first_tier, now)
        .await?;
    let expired = connection.expire_due(customer_id, now).await?;
    let (delta, lifetime_delta, reason) = match effect {
        LoyaltyEffect::None => (0, 0, "none"),
        LoyaltyEffect::Earn {
            entry_id,
            points,
            expires_at,
            actor_id,
        } => {
            connection
                .insert_entry(&LoyaltyEntryRow {
                    id: entry_id.clone(),
                    customer_id: customer_id.to_owned(),
                    kind: "earn".to_owned(),
                    points: *points,
                    remaining: *points,
                    order_id: order_id.map(str::to_owned),
                    expires_at: Some(*expires_at),
                    reason: None,
                    actor_id: actor_id.clone(),
                    created_at: now,
                })
                .await?;
            (*points, *points, "earn")
        }
        LoyaltyEffect::Reverse { entry_id, actor_id } => {
            let (earned, left) = match order_id {
                Some(order) => connection.close_order_lot(order).await?,
                None => (0, 0),
            };
            if earned > 0 {
                connection
                    .insert_entry(&LoyaltyEntryRow {
                        id: entry_id.clone(),
                        customer_id: customer_id.to_owned(),
                        kind: "reverse".to_owned(),
                        points: -left,
                        remaining: 0,
                        order_id: order_id.map(str::to_owned),
                        expires_at: None,
                        reason: None,
                        actor_id: actor_id.clone(),
                        created_at: now,
                    })
                    .await?;
            }
            (-left, -earned.min(lifetime), "refund")
        }
    };
    if (delta != 0 || lifetime_delta != 0)
        && !connection
            .adjust_account(customer_id, delta, lifetime_delta, now)
            .await?
    {
        return Err(StoreError::Snapshot(
            "loyalty_account.balance is below its unexpired lots".to_owned(),
        ));
    }
    let lifetime_points = lifetime + lifetime_delta;
    let new_tier = ladder.tier_for(lifetime_points).to_owned();
    let mut tier_change = None;
    let mut tier_event = None;
    if new_tier != tier {
        connection
            .change_tier(
                customer_id,
                &TierChangeRow {
                    from_tier: Some(tier.clone()),
                    to_tier: new_tier.clone(),
                    lifetime_points,
                    reason: reason.to_owned(),
                    created_at: now,
                },
            )
            .await?;
        tier_event = audit.first().map(|template| {
            let mut event = template.clone();
            event.action = "loyalty.tier_change".to_owned();
            event.customer_ids = vec![customer_id.to_owned()];
            event.detail = serde_json::json!({"from": tier, "to": new_tier, "lifetime_points": lifetime_points})
                .to_string();
            event
        });
        tier_change = Some((tier, new_tier.clone()));
    }
    Ok(LoyaltyOutcome {
        balance: balance - expired + delta,
        lifetime_points,
        tier: new_tier,
        tier_change,
        delta,
        tier_event,
    })
}

impl Store {
    /// Redeems `points` (> 0) after expiring the lots due at `now`, with the audit entries, in one transaction.
    /// `Err(InsufficientPoints)` inside `Ok` (nothing written but the expiry) when the balance is too low.
    #[allow(clippy::too_many_arguments)]
    pub async fn redeem_points(
        &self,
        customer_id: &str,
        points: i64,
        entry_id: &str,
        reason: Option<&str>,
        actor_id: Option<&str>,
        ladder: &TierLadder,
        now: i64,
        audit: &[AuditEvent],
    ) -> StoreResult<Result<LoyaltyOutcome, InsufficientPoints>> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let first_tier = ladder.tier_for(0).to_owned();
            let (balance, lifetime, tier) = tx.lock_account(customer_id, &first_tier, now).await?;
            let expired = tx.expire_due(customer_id, now).await?;
            // The guard: one statement that deducts only if enough is left.
            if !tx.adjust_account(customer_id, -points, 0, now).await? {
                // Nothing is written, the expiry included: the next change of this account applies it again.
                tx.rollback().await?;
                return Ok(Err(InsufficientPoints {
                    balance: balance - expired,
                }));
            }
            tx.consume_lots(customer_id, points).await?;
            tx.insert_entry(&LoyaltyEntryRow {
                id: entry_id.to_owned(),
                customer_id: customer_id.to_owned(),
                kind: "redeem".to_owned(),
                points: -points,
                remaining: 0,
                order_id: None,
                expires_at: None,
                reason: reason.map(str::to_owned),
                actor_id: actor_id.map(str::to_owned),
                created_at: now,
            })
            .await?;
            tx.append_audit_events(audit).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(Ok(LoyaltyOutcome {
                balance: balance - expired - points,
                lifetime_points: lifetime,
                tier,
                tier_change: None,
                delta: -points,
                tier_event: None,
            }))
        })
    }

    /// Expires the customer's lots due at `now`, appending `audit` (with the points in its detail) when any did.
    /// Returns the points expired.
    pub async fn expire_points(
        &self,
        customer_id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> StoreResult<i64> {
        let due = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM loyalty_entry WHERE customer_id = $1 AND kind = 'earn' \
                 AND remaining > 0 AND expires_at <= $2",
            )
            .bind(customer_id)
            .bind(now)
            .fetch_one(pool)
            .await
        })?;
        if due == 0 {
            return Ok(0);
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The account exists: lots do. Touching it takes the lock before anything is read.
            sqlx::query("UPDATE loyalty_account SET updated_at = $2 WHERE customer_id = $1")
                .bind(customer_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let expired = tx.expire_due(customer_id, now).await?;
            if expired > 0 {
                let mut event = audit.clone();
                event.detail = serde_json::json!({"expired_points": expired}).to_string();
                tx.append_audit_events(&[event]).await?;
            }
            tx.commit().await?;
            Ok::<i64, StoreError>(expired)
        })
    }

    /// A customer's account, if they ever had one.
    pub async fn loyalty_account(
        &self,
        customer_id: &str,
    ) -> StoreResult<Option<LoyaltyAccountRow>> {
        let row = with_pool!(self, |pool| {
            match sqlx::query(
                "SELECT customer_id, balance, lifetime_points, tier, updated_at FROM loyalty_account \
                 WHERE customer_id = $1",
            )
            .bind(customer_id)
            .fetch_optional(pool)
            .await?
            {
                Some(row) => Some(LoyaltyAccountRow {
                    customer_id: row.try_get("customer_id")?,
                    balance: row.try_get("balance")?,
                    lifetime_points: row.try_get("lifetime_points")?,
                    tier: row.try_get("tier")?,
                    updated_at: row.try_get("updated_at")?,
                }),
                None => None,
            }
        });
        Ok(row)
    }

    /// A customer's newest ledger entries first.
    pub async fn loyalty_entries(
        &self,
        customer_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<LoyaltyEntryRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, customer_id, kind, points, remaining, order_id, expires_at, reason, actor_id, created_at \
                 FROM loyalty_entry WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            )
            .bind(customer_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<LoyaltyEntryRow, sqlx::Error> {
                Ok(LoyaltyEntryRow {
                    id: row.try_get("id")?,
                    customer_id: row.try_get("customer_id")?,
                    kind: row.try_get("kind")?,
                    points: row.try_get("points")?,
                    remaining: row.try_get("remaining")?,
                    order_id: row.try_get("order_id")?,
                    expires_at: row.try_get("expires_at")?,
                    reason: row.try_get("reason")?,
                    actor_id: row.try_get("actor_id")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The soonest-expiring lot with points left: `(expires_at, remaining)`.
    pub async fn next_expiring_lot(&self, customer_id: &str) -> StoreResult<Option<(i64, i64)>> {
        let row = with_pool!(self, |pool| {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT expires_at, remaining FROM loyalty_entry WHERE customer_id = $1 AND kind = 'earn' \
                 AND remaining > 0 ORDER BY expires_at, id LIMIT 1",
            )
            .bind(customer_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    /// A customer's tier changes, oldest first.
    pub async fn loyalty_tier_changes(&self, customer_id: &str) -> StoreResult<Vec<TierChangeRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT from_tier, to_tier, lifetime_points, reason, created_at FROM loyalty_tier_change \
                 WHERE customer_id = $1 ORDER BY created_at, id",
            )
            .bind(customer_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<TierChangeRow, sqlx::Error> {
                Ok(TierChangeRow {
                    from_tier: row.try_get("from_tier")?,
                    to_tier: row.try_get("to_tier")?,
                    lifetime_points: row.try_get("lifetime_points")?,
                    reason: row.try_get("reason")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }
}
