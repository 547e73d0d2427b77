//! Interactions with a customer (calls, visits, viewings, test drives …) and the rows a customer timeline merges.
//! Free text arrives already masked, with its original spans sealed by the layer above.

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

/// A stored interaction.
#[derive(Clone)]
pub struct InteractionRow {
    /// Interaction id (UUIDv7 text).
    pub id: String,
    /// The customer it concerns.
    pub customer_id: String,
    /// `call`, `visit`, `viewing`, `test_drive`, `consultation`, `email` or `message`.
    pub kind: String,
    /// When it happened, Unix ms.
    pub occurred_at: i64,
    /// How long it took, in minutes.
    pub duration_minutes: Option<i64>,
    /// Short outcome, masked.
    pub outcome: Option<String>,
    /// The note with every personal-data span replaced by its masked display.
    pub note_masked: String,
    /// The note's original spans, sealed under the customer's data key.
    pub note_spans_ct: Option<Vec<u8>>,
    /// JSON array of `{kind, start, end}` in `note_masked` coordinates.
    pub note_span_index: String,
    /// Who recorded it.
    pub author_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

impl std::fmt::Debug for InteractionRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InteractionRow")
            .field("id", &self.id)
            .field("customer_id", &self.customer_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

macro_rules! interaction_from_row {
    ($row:expr) => {
        (|| -> Result<InteractionRow, sqlx::Error> {
            Ok(InteractionRow {
                id: $row.try_get("id")?,
                customer_id: $row.try_get("customer_id")?,
                kind: $row.try_get("kind")?,
                occurred_at: $row.try_get("occurred_at")?,
                duration_minutes: $row.try_get("duration_minutes")?,
                outcome: $row.try_get("outcome")?,
                note_masked: $row.try_get("note_masked")?,
                note_spans_ct: $row.try_get("note_spans_ct")?,
                note_span_index: $row.try_get("note_span_index")?,
                author_id: $row.try_get("author_id")?,
                created_at: $row.try_get("created_at")?,
            })
        })()
    };
}

const COLUMNS: &str =
    "id, customer_id, kind, occurred_at, duration_minutes, outcome, note_masked, note_spans_ct, \
     note_span_index, author_id, created_at";

/// A position in a newest-first listing: items strictly before `(at, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeCursor {
    /// Unix ms of the last item seen.
    pub at: i64,
    /// Its id.
    pub id: String,
}

impl Store {
    /// Stores an interaction with its audit entries, in one transaction.
    pub async fn insert_interaction(
        &self,
        row: &InteractionRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO interaction (id, customer_id, kind, occurred_at, duration_minutes, outcome, note_masked, \
                 note_spans_ct, note_span_index, author_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
            )
            .bind(&row.id)
            .bind(&row.customer_id)
            .bind(&row.kind)
            .bind(row.occurred_at)
            .bind(row.duration_minutes)
            .bind(&row.outcome)
            .bind(&row.note_masked)
            .bind(&row.note_spans_ct)
            .bind(&row.note_span_index)
            .bind(&row.author_id)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), crate::StoreError>(())
        })
    }

    /// A customer's interactions, newest `occurred_at` first, strictly before `before`.
    pub async fn list_interactions(
        &self,
        customer_id: &str,
        before: Option<&TimeCursor>,
        limit: i64,
    ) -> StoreResult<Vec<InteractionRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM interaction WHERE customer_id = $1 \
             AND ($2 IS NULL OR occurred_at < $2 OR (occurred_at = $2 AND id < $3)) \
             ORDER BY occurred_at DESC, id DESC LIMIT $4"
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
                .map(|row| interaction_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// A customer's notes, newest first by `(created_at, id)`, strictly before `before` (for the timeline).
    pub async fn list_notes_by_time(
        &self,
        customer_id: &str,
        before: Option<&TimeCursor>,
        limit: i64,
    ) -> StoreResult<Vec<crate::NoteRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, customer_id, author_id, body_masked, spans_ct, span_index, created_at \
                 FROM customer_note WHERE customer_id = $1 \
                 AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
                 ORDER BY created_at DESC, id DESC LIMIT $4",
            )
            .bind(customer_id)
            .bind(before.map(|cursor| cursor.at))
            .bind(before.map(|cursor| cursor.id.as_str()).unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<crate::NoteRow, sqlx::Error> {
                Ok(crate::NoteRow {
                    id: row.try_get("id")?,
                    customer_id: row.try_get("customer_id")?,
                    author_id: row.try_get("author_id")?,
                    body_masked: row.try_get("body_masked")?,
                    spans_ct: row.try_get("spans_ct")?,
                    span_index: row.try_get("span_index")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }
}
