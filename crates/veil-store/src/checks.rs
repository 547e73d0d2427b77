//! Stored results of security self-checks (`veil doctor`, the server's schedule).

use crate::{with_pool, Store, StoreResult};

/// One stored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunRow {
    /// Id (UUID).
    pub id: String,
    /// When (Unix ms).
    pub at: i64,
    /// Whether no check failed.
    pub ok: bool,
    /// `cli` or `server`.
    pub source: String,
    /// JSON array of results.
    pub results: String,
}

impl Store {
    /// Stores a run.
    pub async fn insert_check_run(&self, run: &CheckRunRow) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO security_check_run (id, at, ok, source, results) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&run.id)
            .bind(run.at)
            .bind(run.ok)
            .bind(&run.source)
            .bind(&run.results)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// The newest runs, newest first.
    pub async fn check_runs(&self, limit: i64) -> StoreResult<Vec<CheckRunRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, (String, i64, bool, String, String)>(
                "SELECT id, at, ok, source, results FROM security_check_run ORDER BY at DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, at, ok, source, results)| CheckRunRow {
                id,
                at,
                ok,
                source,
                results,
            })
            .collect())
    }

    /// Security alerts nobody has acknowledged yet.
    pub async fn unacknowledged_alert_count(&self) -> StoreResult<i64> {
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM security_alert WHERE acknowledged_at IS NULL",
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(count)
    }

    /// When each user last logged in successfully (from the audit trail): `(user_id, unix ms)`.
    pub async fn last_logins(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT actor_id, MAX(at) FROM audit_log WHERE action = 'auth.login' AND outcome = 'ok' \
                 AND actor_id IS NOT NULL GROUP BY actor_id",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }
}
