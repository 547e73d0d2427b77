//! The token vault's rows (migration 0016): sealed values behind `tokenize` tokens and kept fakes.

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

/// One vault entry. `value_ct` is sealed by the application; the store never sees the value.
#[derive(Clone, PartialEq, Eq)]
pub struct VaultRow {
    /// `token` or `fake`.
    pub surrogate_kind: String,
    /// The value's PII kind (`untyped` for custom fields).
    pub kind: String,
    /// The context (field, or export domain) the surrogate is valid in.
    pub context: String,
    /// The token or kept fake.
    pub surrogate: String,
    /// The value, sealed.
    pub value_ct: Vec<u8>,
    /// Keyed index of scope and value, for deterministic entries.
    pub value_index: Option<Vec<u8>>,
    /// Whose value it is, when made for a customer.
    pub customer_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

impl std::fmt::Debug for VaultRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VaultRow")
            .field("surrogate_kind", &self.surrogate_kind)
            .field("kind", &self.kind)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// Inserts `$rows` (`&[VaultRow]`) on the open transaction `$tx`; a taken surrogate or deterministic value is a
/// unique violation, which the caller retries.
macro_rules! insert_vault_rows {
    ($tx:expr, $rows:expr) => {{
        for row in $rows {
            sqlx::query(
                "INSERT INTO token_vault (surrogate_kind, kind, context, surrogate, value_ct, value_index, \
                 customer_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&row.surrogate_kind)
            .bind(&row.kind)
            .bind(&row.context)
            .bind(&row.surrogate)
            .bind(&row.value_ct)
            .bind(&row.value_index)
            .bind(&row.customer_id)
            .bind(row.created_at)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use insert_vault_rows;

impl Store {
    /// The surrogate a deterministic entry recorded for the value with `value_index` in the scope, if any.
    pub async fn vault_surrogate(
        &self,
        surrogate_kind: &str,
        kind: &str,
        context: &str,
        value_index: &[u8],
    ) -> StoreResult<Option<String>> {
        let found = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT surrogate FROM token_vault WHERE surrogate_kind = $1 AND kind = $2 AND context = $3 \
                 AND value_index = $4",
            )
            .bind(surrogate_kind)
            .bind(kind)
            .bind(context)
            .bind(value_index)
            .fetch_optional(pool)
            .await?
        });
        Ok(found)
    }

    /// The entry for `surrogate` in the scope, if recorded.
    pub async fn vault_entry(
        &self,
        surrogate_kind: &str,
        kind: &str,
        context: &str,
        surrogate: &str,
    ) -> StoreResult<Option<VaultRow>> {
        let row = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT surrogate_kind, kind, context, surrogate, value_ct, value_index, customer_id, created_at \
                 FROM token_vault WHERE surrogate_kind = $1 AND kind = $2 AND context = $3 AND surrogate = $4",
            )
            .bind(surrogate_kind)
            .bind(kind)
            .bind(context)
            .bind(surrogate)
            .fetch_optional(pool)
            .await?
            .map(|row| {
                Ok::<_, sqlx::Error>(VaultRow {
                    surrogate_kind: row.try_get("surrogate_kind")?,
                    kind: row.try_get("kind")?,
                    context: row.try_get("context")?,
                    surrogate: row.try_get("surrogate")?,
                    value_ct: row.try_get("value_ct")?,
                    value_index: row.try_get("value_index")?,
                    customer_id: row.try_get("customer_id")?,
                    created_at: row.try_get("created_at")?,
                })
            })
        });
        Ok(row.transpose()?)
    }

    /// Records vault entries on their own (exports made outside a customer write).
    pub async fn insert_vault_rows(&self, rows: &[VaultRow]) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            insert_vault_rows!(tx, rows);
            tx.commit().await?;
            Ok::<(), crate::StoreError>(())
        })
    }

    /// How many entries the vault holds.
    pub async fn vault_len(&self) -> StoreResult<i64> {
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM token_vault")
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }
}
