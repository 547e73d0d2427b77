//! Custom fields admins add to an industry template (`industry_field`). The templates' built-in fields live in
//! code (`veil_app::industries`); a row here holds one added field's definition as JSON, which this crate stores
//! without interpreting.

use crate::audit::append_in;
use crate::{with_pool, AuditEvent, Store, StoreError, StoreResult};

/// An admin-defined custom field of an industry template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndustryFieldRow {
    /// The industry template's key (`finance`, …).
    pub industry: String,
    /// The field's key, unique within the industry.
    pub field_key: String,
    /// The definition (JSON written by `veil-app`).
    pub definition: String,
    /// Who added it.
    pub created_by: Option<String>,
    /// When (Unix ms).
    pub created_at: i64,
}

const COLUMNS: &str = "industry, field_key, definition, created_by, created_at";

macro_rules! field_from {
    ($row:expr) => {{
        use sqlx::Row;
        IndustryFieldRow {
            industry: $row.try_get("industry")?,
            field_key: $row.try_get("field_key")?,
            definition: $row.try_get("definition")?,
            created_by: $row.try_get("created_by")?,
            created_at: $row.try_get("created_at")?,
        }
    }};
}

impl Store {
    /// Every admin-defined field, by industry then key.
    pub async fn industry_fields(&self) -> StoreResult<Vec<IndustryFieldRow>> {
        let sql = format!("SELECT {COLUMNS} FROM industry_field ORDER BY industry, field_key");
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| Ok::<_, sqlx::Error>(field_from!(row)))
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Adds a field with its audit entry. `false` (nothing written) when the industry already has that key.
    pub async fn insert_industry_field(
        &self,
        row: &IndustryFieldRow,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(&format!(
                "INSERT INTO industry_field ({COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (industry, field_key) DO NOTHING"
            ))
            .bind(&row.industry)
            .bind(&row.field_key)
            .bind(&row.definition)
            .bind(row.created_by.as_deref())
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

    /// Removes a field with its audit entry; `false` when there was none. Values customers already hold stay
    /// (masked displays and ciphertexts alike) until the customer is next written.
    pub async fn delete_industry_field(
        &self,
        industry: &str,
        field_key: &str,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted =
                sqlx::query("DELETE FROM industry_field WHERE industry = $1 AND field_key = $2")
                    .bind(industry)
                    .bind(field_key)
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
