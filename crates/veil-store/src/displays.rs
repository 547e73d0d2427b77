//! Per-rule masked displays and the re-mask job's progress (migration 0015).
//!
//! A masking-policy rule whose operator is not the field's default display (stored on the customer row) has its
//! output stored here, keyed by customer, field and the operator's canonical JSON, so that reads serve every
//! role's view without a key (principle 2).

use std::collections::HashMap;

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

/// One stored display: what `rule` makes of `customer_id`'s `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayRow {
    /// The customer.
    pub customer_id: String,
    /// Field name (`phone`, `id_number`, …).
    pub field: String,
    /// The operator's canonical JSON.
    pub rule: String,
    /// The operator's output (never the plaintext).
    pub display: String,
}

/// The displays written with a customer write: the fields whose previous displays are dropped first, and the new
/// rows.
#[derive(Debug, Clone, Default)]
pub struct DisplayWrite {
    /// `(customer id, field)` pairs whose stored displays are replaced.
    pub replaced: Vec<(String, String)>,
    /// The new displays.
    pub rows: Vec<DisplayRow>,
    /// Token-vault entries the displays rely on (tokens, kept fakes), written in the same transaction.
    pub vault: Vec<crate::VaultRow>,
}

/// Where the re-mask job stands for one policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemaskProgress {
    /// The policy version the job computes displays for.
    pub policy_version: i64,
    /// The last customer id done (ids ascend).
    pub cursor: Option<String>,
    /// Customers done so far.
    pub done: i64,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms, once every customer is done.
    pub finished_at: Option<i64>,
}

/// Rows per multi-row display INSERT.
pub(crate) const DISPLAYS_PER_INSERT: usize = 200;

pub(crate) fn insert_sql_for(backend: crate::Backend, rows: usize) -> String {
    format!(
        "INSERT INTO customer_display (customer_id, field, rule, display) VALUES {} \
         ON CONFLICT (customer_id, field, rule) DO UPDATE SET display = excluded.display",
        crate::customers::placeholder_rows(backend, rows, 4)
    )
}

/// Writes `$write` (a [`DisplayWrite`]) on the open transaction `$tx`.
macro_rules! write_displays {
    ($backend:expr, $tx:expr, $write:expr) => {{
        let write: &$crate::displays::DisplayWrite = $write;
        $crate::vault::insert_vault_rows!($tx, &write.vault);
        for (customer_id, field) in &write.replaced {
            sqlx::query("DELETE FROM customer_display WHERE customer_id = $1 AND field = $2")
                .bind(customer_id)
                .bind(field)
                .execute(&mut *$tx)
                .await?;
        }
        for chunk in write.rows.chunks($crate::displays::DISPLAYS_PER_INSERT) {
            let sql = $crate::displays::insert_sql_for($backend, chunk.len());
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&row.customer_id)
                    .bind(&row.field)
                    .bind(&row.rule)
                    .bind(&row.display);
            }
            query.execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use write_displays;

impl Store {
    /// The stored displays of `customer_ids` for the `(field, rule)` pairs asked, keyed by
    /// `(customer id, field, rule)`.
    pub async fn displays_for(
        &self,
        customer_ids: &[String],
        rules: &[(String, String)],
    ) -> StoreResult<HashMap<(String, String, String), String>> {
        let mut out = HashMap::new();
        if customer_ids.is_empty() || rules.is_empty() {
            return Ok(out);
        }
        for ids in customer_ids.chunks(500) {
            let sql = format!(
                "SELECT customer_id, field, rule, display FROM customer_display WHERE customer_id IN ({})",
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
                    .map(|row| {
                        Ok::<_, sqlx::Error>((
                            row.try_get::<String, _>("customer_id")?,
                            row.try_get::<String, _>("field")?,
                            row.try_get::<String, _>("rule")?,
                            row.try_get::<String, _>("display")?,
                        ))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            });
            for (customer_id, field, rule, display) in rows {
                if rules.iter().any(|(wanted_field, wanted_rule)| {
                    *wanted_field == field && *wanted_rule == rule
                }) {
                    out.insert((customer_id, field, rule), display);
                }
            }
        }
        Ok(out)
    }

    /// Stores displays computed by the re-mask job (replacing any older output of the same rule) and moves its
    /// progress forward, in one transaction. Displays of rules no longer in the policy are dropped for the same
    /// customers (`keep` lists the `(field, rule)` pairs in force).
    pub async fn save_remask_batch(
        &self,
        progress: &RemaskProgress,
        rows: &[DisplayRow],
        vault: &[crate::VaultRow],
        customer_ids: &[String],
        keep: &[(String, String)],
    ) -> StoreResult<()> {
        let backend = self.backend();
        let write = DisplayWrite {
            replaced: Vec::new(),
            rows: rows.to_vec(),
            vault: vault.to_vec(),
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for id in customer_ids {
                let stored: Vec<(String, String)> = sqlx::query_as(
                    "SELECT field, rule FROM customer_display WHERE customer_id = $1",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                for (field, rule) in stored {
                    if !keep.iter().any(|(f, r)| *f == field && *r == rule) {
                        sqlx::query(
                            "DELETE FROM customer_display WHERE customer_id = $1 AND field = $2 AND rule = $3",
                        )
                        .bind(id)
                        .bind(&field)
                        .bind(&rule)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            write_displays!(backend, tx, &write);
            sqlx::query(
                "INSERT INTO remask_progress (policy_version, cursor, done, started_at, finished_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (policy_version) DO UPDATE SET \
                 cursor = excluded.cursor, done = excluded.done, finished_at = excluded.finished_at",
            )
            .bind(progress.policy_version)
            .bind(&progress.cursor)
            .bind(progress.done)
            .bind(progress.started_at)
            .bind(progress.finished_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<(), crate::StoreError>(())
        })
    }

    /// The re-mask job's progress for `policy_version`, if it ever started.
    pub async fn remask_progress(
        &self,
        policy_version: i64,
    ) -> StoreResult<Option<RemaskProgress>> {
        let row = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT policy_version, cursor, done, started_at, finished_at FROM remask_progress \
                 WHERE policy_version = $1",
            )
            .bind(policy_version)
            .fetch_optional(pool)
            .await?
            .map(|row| {
                Ok::<_, sqlx::Error>(RemaskProgress {
                    policy_version: row.try_get("policy_version")?,
                    cursor: row.try_get("cursor")?,
                    done: row.try_get("done")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                })
            })
        });
        Ok(row.transpose()?)
    }
}
