//! Security incidents: opening one (lock-down) and closing it, each with its audit entry in the same
//! transaction.

use crate::audit::append_in;
use crate::{with_pool, AuditEvent, Store, StoreError, StoreResult};

/// A stored incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    /// Id (UUID).
    pub id: String,
    /// Why it was opened (masked).
    pub reason: String,
    /// Who opened it (user id; `None` from the command line).
    pub opened_by: Option<String>,
    /// When (Unix ms).
    pub opened_at: i64,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// When it was closed.
    pub closed_at: Option<i64>,
    /// What was found and done (masked).
    pub close_note: Option<String>,
}

type IncidentTuple = (
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn from_tuple(tuple: IncidentTuple) -> IncidentRow {
    let (id, reason, opened_by, opened_at, closed_by, closed_at, close_note) = tuple;
    IncidentRow {
        id,
        reason,
        opened_by,
        opened_at,
        closed_by,
        closed_at,
        close_note,
    }
}

const COLUMNS: &str = "id, reason, opened_by, opened_at, closed_by, closed_at, close_note";

impl Store {
    /// Opens an incident and, in the same transaction, revokes every active session and token of users whose
    /// role is not in `keep_roles`, and records `audit` (with the number of sessions ended added to its detail
    /// by the caller's event). A second open incident is a [`StoreError::Conflict`]. Returns sessions revoked.
    pub async fn open_incident(
        &self,
        incident: &IncidentRow,
        keep_roles: &[&str],
        audit: &AuditEvent,
    ) -> StoreResult<u64> {
        let keep: Vec<String> = keep_roles.iter().map(|role| (*role).to_owned()).collect();
        let placeholders: Vec<String> = (0..keep.len())
            .map(|index| format!("${}", index + 2))
            .collect();
        let revoke_sql = format!(
            "UPDATE auth_token SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id IN \
             (SELECT id FROM app_user WHERE role NOT IN ({}))",
            placeholders.join(", ")
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO incident ({COLUMNS}) VALUES ($1, $2, $3, $4, NULL, NULL, NULL)"
            ))
            .bind(&incident.id)
            .bind(&incident.reason)
            .bind(&incident.opened_by)
            .bind(incident.opened_at)
            .execute(&mut *tx)
            .await?;
            let mut query = sqlx::query(&revoke_sql).bind(incident.opened_at);
            for role in &keep {
                query = query.bind(role.as_str());
            }
            let revoked = query.execute(&mut *tx).await?.rows_affected();
            let mut event = audit.clone();
            let mut detail: serde_json::Value =
                serde_json::from_str(&event.detail).unwrap_or_else(|_| serde_json::json!({}));
            detail["sessions_revoked"] = serde_json::json!(revoked);
            event.detail = detail.to_string();
            append_in(&mut *tx, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
            Ok::<u64, StoreError>(revoked)
        })
    }

    /// Closes the open incident `id`. Returns whether it was open.
    pub async fn close_incident(
        &self,
        id: &str,
        closed_by: Option<&str>,
        note: &str,
        now: i64,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let closed = sqlx::query(
                "UPDATE incident SET closed_by = $2, closed_at = $3, close_note = $4 \
                 WHERE id = $1 AND closed_at IS NULL",
            )
            .bind(id)
            .bind(closed_by)
            .bind(now)
            .bind(note)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if closed == 1 {
                append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<bool, StoreError>(closed == 1)
        })
    }

    /// The open incident, if any.
    pub async fn open_incident_row(&self) -> StoreResult<Option<IncidentRow>> {
        let sql = format!("SELECT {COLUMNS} FROM incident WHERE closed_at IS NULL");
        let row = with_pool!(self, |pool| {
            sqlx::query_as::<_, IncidentTuple>(&sql)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(from_tuple))
    }

    /// Every incident, newest first.
    pub async fn incidents(&self) -> StoreResult<Vec<IncidentRow>> {
        let sql = format!("SELECT {COLUMNS} FROM incident ORDER BY opened_at DESC");
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, IncidentTuple>(&sql)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(from_tuple).collect())
    }
}
