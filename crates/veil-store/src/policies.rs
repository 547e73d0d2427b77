//! Versioned masking-policy documents (append-only).

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

/// One version of the masking policy.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    /// Version, from 1.
    pub version: i64,
    /// The policy document (JSON).
    pub document: String,
    /// Why it changed.
    pub reason: String,
    /// Who changed it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

macro_rules! policy_from_row {
    ($row:expr) => {
        (|| -> Result<PolicyRow, sqlx::Error> {
            Ok(PolicyRow {
                version: $row.try_get("version")?,
                document: $row.try_get("document")?,
                reason: $row.try_get("reason")?,
                created_by: $row.try_get("created_by")?,
                created_at: $row.try_get("created_at")?,
            })
        })()
    };
}

impl Store {
    /// The policy in force (the highest version), if any was ever recorded.
    pub async fn current_policy(&self) -> StoreResult<Option<PolicyRow>> {
        let row = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT version, document, reason, created_by, created_at FROM masking_policy \
                 ORDER BY version DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
            .map(|row| policy_from_row!(row))
        });
        Ok(row.transpose()?)
    }

    /// Every version, newest first.
    pub async fn policy_history(&self) -> StoreResult<Vec<PolicyRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT version, document, reason, created_by, created_at FROM masking_policy \
                 ORDER BY version DESC",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| policy_from_row!(row))
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Records a new version; a version that already exists (a concurrent change) is a conflict.
    pub async fn insert_policy(
        &self,
        row: &PolicyRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected = sqlx::query(
                "INSERT INTO masking_policy (version, document, reason, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(row.version)
            .bind(&row.document)
            .bind(&row.reason)
            .bind(&row.created_by)
            .bind(row.created_at)
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
}
