//! The backup catalogue (table `backup`): archives written completely, and each one's latest verification.

use crate::{with_pool, Store, StoreResult};

/// One catalogued backup (serialisable: an upload in progress keeps the row it will insert in its journal).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupRow {
    /// Id (UUIDv7, also in the archive's manifest).
    pub id: String,
    /// Where the archive is (a file path).
    pub location: String,
    /// Archive size in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the encrypted archive (hex).
    pub sha256: String,
    /// `complete` (only complete archives are catalogued).
    pub state: String,
    /// Backend the snapshot was taken on.
    pub backend: String,
    /// Highest migration applied when it was taken.
    pub schema_version: i64,
    /// Tables in the archive.
    pub table_count: i64,
    /// Rows in the archive.
    pub total_rows: i64,
    /// User id of whoever asked for it (none for the CLI).
    pub created_by: Option<String>,
    /// Snapshot time (Unix ms).
    pub created_at: i64,
    /// Latest verification time.
    pub verified_at: Option<i64>,
    /// Latest verification outcome.
    pub verify_ok: Option<bool>,
    /// Latest verification detail (JSON, no personal data).
    pub verify_detail: Option<String>,
}

type Tuple = (
    String,
    String,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    i64,
    Option<i64>,
    Option<bool>,
    Option<String>,
);

const COLUMNS: &str =
    "id, location, size_bytes, sha256, state, backend, schema_version, table_count, total_rows, \
                       created_by, created_at, verified_at, verify_ok, verify_detail";

fn from_tuple(tuple: Tuple) -> BackupRow {
    let (
        id,
        location,
        size_bytes,
        sha256,
        state,
        backend,
        schema_version,
        table_count,
        total_rows,
        created_by,
        created_at,
        verified_at,
        verify_ok,
        verify_detail,
    ) = tuple;
    BackupRow {
        id,
        location,
        size_bytes,
        sha256,
        state,
        backend,
        schema_version,
        table_count,
        total_rows,
        created_by,
        created_at,
        verified_at,
        verify_ok,
        verify_detail,
    }
}

impl Store {
    /// Catalogues a backup whose archive is complete and in place.
    pub async fn insert_backup(&self, row: &BackupRow, now: i64) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO backup (id, location, size_bytes, sha256, state, backend, schema_version, \
                 table_count, total_rows, created_by, created_at, verified_at, verify_ok, verify_detail, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&row.id)
            .bind(&row.location)
            .bind(row.size_bytes)
            .bind(&row.sha256)
            .bind(&row.state)
            .bind(&row.backend)
            .bind(row.schema_version)
            .bind(row.table_count)
            .bind(row.total_rows)
            .bind(&row.created_by)
            .bind(row.created_at)
            .bind(row.verified_at)
            .bind(row.verify_ok)
            .bind(&row.verify_detail)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Records a verification of a catalogued backup; false if there is no such backup.
    pub async fn record_backup_verification(
        &self,
        id: &str,
        ok: bool,
        detail: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE backup SET verified_at = $2, verify_ok = $3, verify_detail = $4, updated_at = $2 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .bind(ok)
            .bind(detail)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(changed > 0)
    }

    /// One catalogued backup.
    pub async fn backup(&self, id: &str) -> StoreResult<Option<BackupRow>> {
        let sql = format!("SELECT {COLUMNS} FROM backup WHERE id = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query_as::<_, Tuple>(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(from_tuple))
    }

    /// Catalogued backups, newest first.
    pub async fn list_backups(&self, limit: i64) -> StoreResult<Vec<BackupRow>> {
        let sql =
            format!("SELECT {COLUMNS} FROM backup ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, Tuple>(&sql)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(from_tuple).collect())
    }

    /// Marks a backup removed by the retention, with its audit entry.
    pub async fn mark_backup_pruned(
        &self,
        id: &str,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE backup SET state = 'pruned', updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), crate::StoreError>(())
        })
    }

    /// Snapshot time of the newest backup whose latest verification succeeded.
    pub async fn newest_verified_backup(&self) -> StoreResult<Option<i64>> {
        let at = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(created_at) FROM backup WHERE verify_ok = TRUE AND state = 'complete'",
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(at)
    }
}

/// One recorded erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRow {
    /// The erased customer.
    pub customer_id: String,
    /// Who erased it.
    pub erased_by: Option<String>,
    /// When (Unix ms).
    pub erased_at: i64,
}

impl Store {
    /// Every recorded erasure (the list a restore replays).
    pub async fn erasures(&self) -> StoreResult<Vec<ErasureRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, (String, Option<String>, i64)>(
                "SELECT customer_id, erased_by, erased_at FROM erasure ORDER BY erased_at",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(customer_id, erased_by, erased_at)| ErasureRow {
                customer_id,
                erased_by,
                erased_at,
            })
            .collect())
    }

    /// Up to `limit` customer ids chosen at random (for sampled checks).
    pub async fn sample_customer_ids(&self, limit: i64) -> StoreResult<Vec<String>> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>("SELECT id FROM customer ORDER BY random() LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await
        })?)
    }

    /// How many of `customer_ids` still have a data key.
    pub async fn count_customer_keys(&self, customer_ids: &[String]) -> StoreResult<i64> {
        let mut found = 0;
        for id in customer_ids {
            let exists: i64 = with_pool!(self, |pool| {
                sqlx::query_scalar("SELECT COUNT(*) FROM customer_key WHERE customer_id = $1")
                    .bind(id)
                    .fetch_one(pool)
                    .await
            })?;
            found += exists;
        }
        Ok(found)
    }
}
