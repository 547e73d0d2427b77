//! Saved segments: named customer filters a user keeps (no personal data in them).

use crate::audit::append_in;
use crate::{with_pool, AuditEvent, Store, StoreError, StoreResult};

/// A saved segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    /// Id (UUID).
    pub id: String,
    /// Its name, unique per owner.
    pub name: String,
    /// The user who saved it.
    pub owner_id: String,
    /// The filter (JSON of [`crate::CustomerFilter`]).
    pub filter: String,
    /// When it was saved (ms since the epoch).
    pub created_at: i64,
}

macro_rules! segment_from {
    ($row:expr) => {{
        use sqlx::Row;
        SegmentRow {
            id: $row.try_get("id")?,
            name: $row.try_get("name")?,
            owner_id: $row.try_get("owner_id")?,
            filter: $row.try_get("filter")?,
            created_at: $row.try_get("created_at")?,
        }
    }};
}

const SEGMENT_COLUMNS: &str = "id, name, owner_id, filter, created_at";

impl Store {
    /// Saves a segment with its audit entry. Returns `false` (nothing written) when the owner already has a
    /// segment of that name.
    pub async fn insert_segment(
        &self,
        row: &SegmentRow,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(&format!(
                "INSERT INTO segment ({SEGMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (owner_id, name) DO NOTHING"
            ))
            .bind(&row.id)
            .bind(&row.name)
            .bind(&row.owner_id)
            .bind(&row.filter)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<bool, StoreError>(inserted)
        })
    }

    /// One segment.
    pub async fn segment(&self, id: &str) -> StoreResult<Option<SegmentRow>> {
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segment WHERE id = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| Ok::<_, sqlx::Error>(segment_from!(row)))
                .transpose()
        })?;
        Ok(row)
    }

    /// A user's segments by name.
    pub async fn segments_of(&self, owner_id: &str) -> StoreResult<Vec<SegmentRow>> {
        let sql =
            format!("SELECT {SEGMENT_COLUMNS} FROM segment WHERE owner_id = $1 ORDER BY name");
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(owner_id)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| Ok::<_, sqlx::Error>(segment_from!(row)))
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Deletes a segment of `owner_id` with its audit entry; `false` when there was none.
    pub async fn delete_segment(
        &self,
        id: &str,
        owner_id: &str,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM segment WHERE id = $1 AND owner_id = $2")
                .bind(id)
                .bind(owner_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if deleted {
                append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<bool, StoreError>(deleted)
        })
    }
}
