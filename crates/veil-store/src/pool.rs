//! The customer pool (公海): customers without an owner, the guarded claim (one winner however many claim at
//! once, and a per-person limit), release, the automatic return of customers their owner has not followed up, and
//! the history of all three.

use std::collections::HashMap;

use sqlx::Row;

use crate::customers::in_list;
use crate::{with_pool, Store, StoreResult};

/// One claim, release or return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEventRow {
    /// Event id (UUIDv7).
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// `claim`, `release` or `return`.
    pub kind: String,
    /// Owner before.
    pub from_owner: Option<String>,
    /// Team before.
    pub from_team: Option<String>,
    /// Owner after.
    pub to_owner: Option<String>,
    /// Team after.
    pub to_team: Option<String>,
    /// Who did it; `None` for the automatic return.
    pub actor_id: Option<String>,
    /// Why (masked by the caller).
    pub reason: String,
    /// Unix ms.
    pub at: i64,
}

/// What a claim came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller owns the customer now.
    Claimed {
        /// The team the customer was in before (normally none).
        from_team: Option<String>,
    },
    /// Someone owns it (another claim won, or it was never in the pool).
    Taken,
    /// No such customer.
    Missing,
    /// The claimant already holds `held` customers from the pool, the limit.
    LimitReached {
        /// How many they hold.
        held: i64,
    },
}

/// A customer due to go back to the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnCandidate {
    /// The customer.
    pub customer_id: String,
    /// Its owner.
    pub owner_id: String,
    /// Its team.
    pub team: Option<String>,
}

/// The condition "no follow-up by the owner since `$1`, and the owner has had the customer since before `$1`"
/// on the row of `customer` (referred to by the table name). Follow-ups: interactions, notes, tickets opened,
/// ticket comments, orders entered and messages sent by the owner; any ownership transfer or pool event after the
/// cut-off means the owner got the customer recently.
fn not_followed_up() -> &'static str {
    "customer.created_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM ownership_transfer t WHERE t.customer_id = customer.id AND t.created_at >= $1) \
     AND NOT EXISTS (SELECT 1 FROM customer_pool_event e WHERE e.customer_id = customer.id AND e.at >= $1) \
     AND NOT EXISTS (SELECT 1 FROM interaction i WHERE i.customer_id = customer.id \
         AND i.author_id = customer.owner_id AND i.created_at >= $1) \
     AND NOT EXISTS (SELECT 1 FROM customer_note n WHERE n.customer_id = customer.id \
         AND n.author_id = customer.owner_id AND n.created_at >= $1) \
     AND NOT EXISTS (SELECT 1 FROM ticket k WHERE k.customer_id = customer.id \
         AND k.created_by = customer.owner_id AND k.created_at >= $1) \
     AND NOT EXISTS (SELECT 1 FROM ticket_comment m JOIN ticket mk ON mk.id = m.ticket_id \
         WHERE mk.customer_id = customer.id AND m.author_id = customer.owner_id AND m.created_at >= $1) \
     AND NOT EXISTS (SELECT 1 FROM sales_order o WHERE o.customer_id = customer.id \
         AND o.created_by = customer.owner_id AND o.created_at >= $1) \
     AND NOT EXISTS (SELECT 1 FROM customer_message s WHERE s.customer_id = customer.id \
         AND s.sent_by = customer.owner_id AND s.created_at >= $1)"
}

macro_rules! insert_event {
    ($tx:expr, $event:expr) => {
        sqlx::query(
            "INSERT INTO customer_pool_event (id, customer_id, kind, from_owner, from_team, to_owner, to_team, \
             actor_id, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&$event.id)
        .bind(&$event.customer_id)
        .bind(&$event.kind)
        .bind($event.from_owner.as_deref())
        .bind($event.from_team.as_deref())
        .bind($event.to_owner.as_deref())
        .bind($event.to_team.as_deref())
        .bind($event.actor_id.as_deref())
        .bind(&$event.reason)
        .bind($event.at)
        .execute(&mut *$tx)
        .await?
    };
}

/// Revokes, inside transaction `$tx`, the live grants of user `$user` that cover customer `$customer` (their
/// requests become `revoked`): the previous owner must not keep revealing a customer who has left them. Appends
/// one copy of the audit template `$revoke` per grant, naming it. Evaluates to the number revoked.
macro_rules! revoke_grants_covering {
    ($tx:expr, $user:expr, $customer:expr, $now:expr, $revoke:expr) => {{
        let revoked: Vec<(String, String)> = sqlx::query_as(
            "UPDATE unmask_grant SET revoked_at = $1, revoked_by = 'system', revoke_reason = $4 \
             WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1 AND customer_ids LIKE $3 \
             RETURNING id, request_id",
        )
        .bind($now)
        .bind($user)
        .bind(crate::governance::contains_pattern($customer))
        .bind(REVOKE_REASON)
        .fetch_all(&mut *$tx)
        .await?;
        let mut entries = Vec::with_capacity(revoked.len());
        for (grant, request) in &revoked {
            sqlx::query("UPDATE unmask_request SET state = 'revoked', updated_at = $2 WHERE id = $1")
                .bind(request)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
            let mut entry: crate::AuditEvent = $revoke.clone();
            entry.grant_id = Some(grant.clone());
            entry.customer_ids = vec![$customer.to_owned()];
            entries.push(entry);
        }
        if !entries.is_empty() {
            crate::audit::append_in(&mut *$tx, &entries).await?;
        }
        revoked.len()
    }};
}

/// The reason a grant revoked by a release or return carries.
pub const REVOKE_REASON: &str = "the customer went back to the pool";

impl Store {
    /// Claims `event.customer_id` for `event.to_owner` (team `event.to_team`) if it is in the pool and the
    /// claimant holds fewer than `limit` customers from the pool (0: no limit). One transaction: the claimant's
    /// row in `pool_claimant` is written first (serialising one person's claims), then the count, then the
    /// guarded `UPDATE … WHERE owner_id IS NULL` — of two claims at once, exactly one changes the row. The event,
    /// the holding and `audit` are written with it.
    pub async fn claim_from_pool(
        &self,
        event: &PoolEventRow,
        limit: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<ClaimOutcome> {
        let owner = event.to_owner.as_deref().unwrap_or_default();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO pool_claimant (user_id, last_claim_at) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET last_claim_at = excluded.last_claim_at",
            )
            .bind(owner)
            .bind(event.at)
            .execute(&mut *tx)
            .await?;
            if limit > 0 {
                let held: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pool_holding h JOIN customer c \
                     ON c.id = h.customer_id AND c.owner_id = h.user_id WHERE h.user_id = $1",
                )
                .bind(owner)
                .fetch_one(&mut *tx)
                .await?;
                if held >= limit {
                    tx.rollback().await?;
                    return Ok(ClaimOutcome::LimitReached { held });
                }
            }
            let before: Option<(Option<String>, Option<String>)> =
                sqlx::query_as("SELECT owner_id, team FROM customer WHERE id = $1")
                    .bind(&event.customer_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((_, from_team)) = before else {
                tx.rollback().await?;
                return Ok(ClaimOutcome::Missing);
            };
            let changed = sqlx::query(
                "UPDATE customer SET owner_id = $2, team = $3, updated_at = $4 \
                 WHERE id = $1 AND owner_id IS NULL",
            )
            .bind(&event.customer_id)
            .bind(owner)
            .bind(event.to_team.as_deref())
            .bind(event.at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                tx.rollback().await?;
                return Ok(ClaimOutcome::Taken);
            }
            let mut event = event.clone();
            event.from_team = from_team.clone();
            insert_event!(tx, event);
            sqlx::query(
                "INSERT INTO pool_holding (customer_id, user_id, claimed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (customer_id) DO UPDATE SET user_id = excluded.user_id, \
                 claimed_at = excluded.claimed_at",
            )
            .bind(&event.customer_id)
            .bind(owner)
            .bind(event.at)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(ClaimOutcome::Claimed { from_team })
        })
    }

    /// Puts a customer back in the pool (no owner, no team) provided its owner is still `event.from_owner`
    /// (compare and set), with the event and `audit`. Returns whether it moved.
    pub async fn release_to_pool(
        &self,
        event: &PoolEventRow,
        audit: &[crate::AuditEvent],
        revoke: &crate::AuditEvent,
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE customer SET owner_id = NULL, team = NULL, updated_at = $3 \
                 WHERE id = $1 AND owner_id = $2",
            )
            .bind(&event.customer_id)
            .bind(event.from_owner.as_deref())
            .bind(event.at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_event!(tx, event);
            sqlx::query("DELETE FROM pool_holding WHERE customer_id = $1")
                .bind(&event.customer_id)
                .execute(&mut *tx)
                .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            if let Some(owner) = event.from_owner.as_deref() {
                revoke_grants_covering!(tx, owner, event.customer_id.as_str(), event.at, revoke);
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Up to `limit` customers after `after` (id order) owned by a salesperson who has not followed them up since
    /// `cutoff` (see the module's rule) and had them since before it.
    pub async fn pool_return_candidates(
        &self,
        cutoff: i64,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ReturnCandidate>> {
        let sql = format!(
            "SELECT customer.id, customer.owner_id, customer.team FROM customer \
             JOIN app_user u ON u.id = customer.owner_id \
             WHERE u.role = 'sales' AND customer.id > $2 AND {} ORDER BY customer.id LIMIT $3",
            not_followed_up()
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(cutoff)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<ReturnCandidate, sqlx::Error> {
                    Ok(ReturnCandidate {
                        customer_id: row.try_get(0)?,
                        owner_id: row.try_get(1)?,
                        team: row.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Returns `candidates` to the pool in one transaction, each only if it still has the same owner and still
    /// has no follow-up since `cutoff` (checked again by the `UPDATE` itself, so a follow-up recorded meanwhile
    /// keeps the customer). `event` is the template of each customer's event; `audit`'s entry is written naming
    /// the customers that moved. Returns the candidates that moved.
    pub async fn return_to_pool(
        &self,
        candidates: &[ReturnCandidate],
        cutoff: i64,
        event: &PoolEventRow,
        new_id: &(dyn Fn() -> String + Sync),
        audit: &crate::AuditEvent,
        revoke: &crate::AuditEvent,
    ) -> StoreResult<Vec<ReturnCandidate>> {
        let sql = format!(
            "UPDATE customer SET owner_id = NULL, team = NULL, updated_at = $2 \
             WHERE customer.id = $3 AND customer.owner_id = $4 AND {}",
            not_followed_up()
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut moved = Vec::new();
            for candidate in candidates {
                let changed = sqlx::query(&sql)
                    .bind(cutoff)
                    .bind(event.at)
                    .bind(&candidate.customer_id)
                    .bind(&candidate.owner_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed != 1 {
                    continue;
                }
                let row = PoolEventRow {
                    id: new_id(),
                    customer_id: candidate.customer_id.clone(),
                    from_owner: Some(candidate.owner_id.clone()),
                    from_team: candidate.team.clone(),
                    ..event.clone()
                };
                insert_event!(tx, row);
                sqlx::query("DELETE FROM pool_holding WHERE customer_id = $1")
                    .bind(&candidate.customer_id)
                    .execute(&mut *tx)
                    .await?;
                moved.push(candidate.clone());
            }
            if !moved.is_empty() {
                let mut entry = audit.clone();
                entry.customer_ids = moved.iter().map(|c| c.customer_id.clone()).collect();
                crate::audit::append_in(&mut *tx, std::slice::from_ref(&entry)).await?;
            }
            for candidate in &moved {
                revoke_grants_covering!(
                    tx,
                    candidate.owner_id.as_str(),
                    candidate.customer_id.as_str(),
                    event.at,
                    revoke
                );
            }
            tx.commit().await?;
            Ok(moved)
        })
    }

    /// A customer's claims, releases and returns, newest first.
    pub async fn pool_events(&self, customer_id: &str) -> StoreResult<Vec<PoolEventRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, customer_id, kind, from_owner, from_team, to_owner, to_team, actor_id, reason, at \
                 FROM customer_pool_event WHERE customer_id = $1 ORDER BY at DESC, id DESC LIMIT 200",
            )
            .bind(customer_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<PoolEventRow, sqlx::Error> {
                Ok(PoolEventRow {
                    id: row.try_get("id")?,
                    customer_id: row.try_get("customer_id")?,
                    kind: row.try_get("kind")?,
                    from_owner: row.try_get("from_owner")?,
                    from_team: row.try_get("from_team")?,
                    to_owner: row.try_get("to_owner")?,
                    to_team: row.try_get("to_team")?,
                    actor_id: row.try_get("actor_id")?,
                    reason: row.try_get("reason")?,
                    at: row.try_get("at")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// How many customers `user_id` holds from the pool (claimed and still theirs).
    pub async fn pool_held(&self, user_id: &str) -> StoreResult<i64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM pool_holding h JOIN customer c \
                 ON c.id = h.customer_id AND c.owner_id = h.user_id WHERE h.user_id = $1",
            )
            .bind(user_id)
            .fetch_one(pool)
            .await?
        }))
    }

    /// For each of `customer_ids`: the newest recorded activity by anyone (interaction, note, ticket, order,
    /// message, pool event), Unix ms; absent when there is none.
    pub async fn last_activity(
        &self,
        customer_ids: &[String],
    ) -> StoreResult<HashMap<String, i64>> {
        if customer_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids = in_list(customer_ids.len());
        let sql = format!(
            "SELECT customer_id, MAX(at) FROM ( \
               SELECT customer_id, created_at AS at FROM interaction WHERE customer_id IN ({ids}) \
               UNION ALL SELECT customer_id, created_at FROM customer_note WHERE customer_id IN ({ids}) \
               UNION ALL SELECT customer_id, created_at FROM ticket WHERE customer_id IN ({ids}) \
               UNION ALL SELECT customer_id, created_at FROM sales_order WHERE customer_id IN ({ids}) \
               UNION ALL SELECT customer_id, created_at FROM customer_message WHERE customer_id IN ({ids}) \
               UNION ALL SELECT customer_id, at FROM customer_pool_event WHERE customer_id IN ({ids}) \
             ) AS activity GROUP BY customer_id"
        );
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
            for id in customer_ids {
                query = query.bind(id);
            }
            query.fetch_all(pool).await?
        });
        Ok(rows.into_iter().collect())
    }

    /// For each of `customer_ids`: when it last went back to the pool (release or return), Unix ms.
    pub async fn pool_entered(&self, customer_ids: &[String]) -> StoreResult<HashMap<String, i64>> {
        if customer_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT customer_id, MAX(at) FROM customer_pool_event \
             WHERE kind IN ('release', 'return') AND customer_id IN ({}) GROUP BY customer_id",
            in_list(customer_ids.len())
        );
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
            for id in customer_ids {
                query = query.bind(id);
            }
            query.fetch_all(pool).await?
        });
        Ok(rows.into_iter().collect())
    }
}
