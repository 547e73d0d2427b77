//! Teams (a hierarchy) and the record of ownership transfers.

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

/// A team and its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRow {
    /// Unique name.
    pub name: String,
    /// Parent team, if any.
    pub parent: Option<String>,
}

/// One customer moved to another owner and/or team.
#[derive(Debug, Clone)]
pub struct TransferRow {
    /// The customer.
    pub customer_id: String,
    /// Previous owner.
    pub from_owner: Option<String>,
    /// New owner.
    pub to_owner: Option<String>,
    /// Previous team.
    pub from_team: Option<String>,
    /// New team.
    pub to_team: Option<String>,
    /// Who moved it.
    pub actor_id: Option<String>,
    /// Why.
    pub reason: String,
    /// Unix ms.
    pub created_at: i64,
}

impl Store {
    /// Adds a team; a taken name is a conflict.
    pub async fn insert_team(
        &self,
        team: &TeamRow,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected = sqlx::query(
                "INSERT INTO team (name, parent, created_at, updated_at) VALUES ($1, $2, $3, $3)",
            )
            .bind(&team.name)
            .bind(&team.parent)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if affected > 0 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(affected)
        })?;
        Ok(())
    }

    /// Every team.
    pub async fn list_teams(&self) -> StoreResult<Vec<TeamRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query("SELECT name, parent FROM team ORDER BY name")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<TeamRow, sqlx::Error> {
                    Ok(TeamRow {
                        name: row.try_get("name")?,
                        parent: row.try_get("parent")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Moves customers to `transfer.to_owner`/`transfer.to_team` and records each move (actor, reason, time from
    /// `transfer`), in one transaction. `customer_ids` empty means every customer of `from_owner`. Returns how
    /// many moved.
    pub async fn transfer_customers(
        &self,
        customer_ids: &[String],
        from_owner: Option<&str>,
        transfer: &TransferRow,
        audit: &crate::AuditEvent,
    ) -> StoreResult<u64> {
        let (to_owner, to_team) = (transfer.to_owner.as_deref(), transfer.to_team.as_deref());
        let (actor_id, reason, now) = (
            transfer.actor_id.as_deref(),
            transfer.reason.as_str(),
            transfer.created_at,
        );
        let moved = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let ids: Vec<String> = if customer_ids.is_empty() {
                sqlx::query_scalar::<_, String>("SELECT id FROM customer WHERE owner_id = $1")
                    .bind(from_owner)
                    .fetch_all(&mut *tx)
                    .await?
            } else {
                customer_ids.to_vec()
            };
            let mut moved = 0u64;
            for id in &ids {
                let inserted = sqlx::query(
                    "INSERT INTO ownership_transfer (customer_id, from_owner, to_owner, from_team, to_team, actor_id, reason, created_at) \
                     SELECT id, owner_id, $2, team, $3, $4, $5, $6 FROM customer WHERE id = $1",
                )
                .bind(id)
                .bind(to_owner)
                .bind(to_team)
                .bind(actor_id)
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    moved += sqlx::query(
                        "UPDATE customer SET owner_id = $2, team = $3, updated_at = $4 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(to_owner)
                    .bind(to_team)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
            }
            if moved > 0 {
                // The entry names every customer that moved, whether listed or selected by owner.
                let mut event = audit.clone();
                event.customer_ids = ids;
                crate::audit::append_in(&mut *tx, std::slice::from_ref(&event)).await?;
            }
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(moved)
        })?;
        Ok(moved)
    }

    /// The transfer history of one customer, newest first.
    pub async fn customer_transfers(&self, customer_id: &str) -> StoreResult<Vec<TransferRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT customer_id, from_owner, to_owner, from_team, to_team, actor_id, reason, created_at \
                 FROM ownership_transfer WHERE customer_id = $1 ORDER BY created_at DESC",
            )
            .bind(customer_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<TransferRow, sqlx::Error> {
                Ok(TransferRow {
                    customer_id: row.try_get("customer_id")?,
                    from_owner: row.try_get("from_owner")?,
                    to_owner: row.try_get("to_owner")?,
                    from_team: row.try_get("from_team")?,
                    to_team: row.try_get("to_team")?,
                    actor_id: row.try_get("actor_id")?,
                    reason: row.try_get("reason")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }
}
