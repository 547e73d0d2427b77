//! Customer notes: the masked body, the sealed original spans and an index of where they sit.

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

/// A stored note.
#[derive(Clone)]
pub struct NoteRow {
    /// Note id (UUIDv7 text).
    pub id: String,
    /// The customer it belongs to.
    pub customer_id: String,
    /// Who wrote it.
    pub author_id: Option<String>,
    /// The text with every personal-data span replaced by its masked display.
    pub body_masked: String,
    /// The original spans, sealed under the customer's data key (`None` when nothing was found).
    pub spans_ct: Option<Vec<u8>>,
    /// JSON array of `{kind, start, end}` in `body_masked` coordinates.
    pub span_index: String,
    /// Unix ms.
    pub created_at: i64,
}

impl std::fmt::Debug for NoteRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NoteRow")
            .field("id", &self.id)
            .field("customer_id", &self.customer_id)
            .finish_non_exhaustive()
    }
}

macro_rules! note_from_row {
    ($row:expr) => {
        (|| -> Result<NoteRow, sqlx::Error> {
            Ok(NoteRow {
                id: $row.try_get("id")?,
                customer_id: $row.try_get("customer_id")?,
                author_id: $row.try_get("author_id")?,
                body_masked: $row.try_get("body_masked")?,
                spans_ct: $row.try_get("spans_ct")?,
                span_index: $row.try_get("span_index")?,
                created_at: $row.try_get("created_at")?,
            })
        })()
    };
}

impl Store {
    /// Stores a note.
    pub async fn insert_note(
        &self,
        note: &NoteRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected =             sqlx::query(
                "INSERT INTO customer_note (id, customer_id, author_id, body_masked, spans_ct, span_index, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&note.id)
            .bind(&note.customer_id)
            .bind(&note.author_id)
            .bind(&note.body_masked)
            .bind(&note.spans_ct)
            .bind(&note.span_index)
            .bind(note.created_at)
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

    /// A customer's notes, newest first, before the cursor id.
    pub async fn list_notes(
        &self,
        customer_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<NoteRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, customer_id, author_id, body_masked, spans_ct, span_index, created_at \
                 FROM customer_note WHERE customer_id = $1 AND ($2 IS NULL OR id < $2) \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(customer_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| note_from_row!(row))
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// One note of a customer.
    pub async fn note(&self, customer_id: &str, note_id: &str) -> StoreResult<Option<NoteRow>> {
        let row = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, customer_id, author_id, body_masked, spans_ct, span_index, created_at \
                 FROM customer_note WHERE customer_id = $1 AND id = $2",
            )
            .bind(customer_id)
            .bind(note_id)
            .fetch_optional(pool)
            .await?
            .map(|row| note_from_row!(row))
        });
        Ok(row.transpose()?)
    }
}
