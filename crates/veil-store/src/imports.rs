//! Customer import jobs (`import_job`, `import_issue`, migration 0023): which file (by SHA-256) is being
//! imported, with which mapping, up to which data row its batches committed, and the issues found so far (row,
//! column, field, reason code — never a value). The customers themselves go through
//! [`Store::insert_customers_with`], which advances the job in the same transaction.

use sqlx::Row;

use crate::customers::placeholder_rows;
use crate::{with_pool, SensitiveField, Store, StoreResult};

/// One import job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJobRow {
    /// Job id (UUIDv7 text).
    pub id: String,
    /// SHA-256 (hex) of the imported file.
    pub file_sha256: String,
    /// Who runs it.
    pub actor_id: String,
    /// The owner given for every imported customer (user id), if any.
    pub owner_id: Option<String>,
    /// `csv` or `xlsx`.
    pub format: String,
    /// Whether the file's first row is a header.
    pub has_header: bool,
    /// The mapping used (JSON: columns to fields, no values).
    pub mapping: String,
    /// `running` or `done`.
    pub state: String,
    /// The last data row (file row number) whose batch committed; 0 before the first.
    pub rows_done: i64,
    /// Customers imported.
    pub imported: i64,
    /// Rows refused by validation.
    pub invalid: i64,
    /// Rows refused as duplicates.
    pub duplicates: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// One problem with one row: a refused value (by field and reason) or a duplicate (by key and match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportIssueRow {
    /// The row number in the file (the header, when there is one, is row 1).
    pub row_number: i64,
    /// Order of the issues of one row.
    pub seq: i64,
    /// `invalid` or `duplicate`.
    pub kind: String,
    /// The column (its header, masked, or `column N`).
    pub column_name: Option<String>,
    /// The customer field.
    pub field: Option<String>,
    /// A stable reason code (the create path's validation codes, `duplicate`, …).
    pub reason: String,
    /// The reason in words; never the value.
    pub message: String,
    /// For a duplicate of a stored customer: its id.
    pub existing_customer_id: Option<String>,
    /// For a duplicate of an earlier row of the same file: that row.
    pub duplicate_of_row: Option<i64>,
}

/// What a committed batch changes in its job: written with the batch's customers.
#[derive(Debug, Clone, Default)]
pub struct ImportBatchWrite {
    /// The job.
    pub job_id: String,
    /// The last data row of the batch.
    pub rows_done: i64,
    /// Counters to add.
    pub imported: i64,
    /// Counters to add.
    pub invalid: i64,
    /// Counters to add.
    pub duplicates: i64,
    /// The batch's issues.
    pub issues: Vec<ImportIssueRow>,
    /// Unix ms.
    pub now: i64,
}

const ISSUES_PER_INSERT: usize = 100;

fn issue_insert_sql(backend: crate::Backend, rows: usize) -> String {
    format!(
        "INSERT INTO import_issue (job_id, row_number, seq, kind, column_name, field, reason, message, \
         existing_customer_id, duplicate_of_row) VALUES {}",
        placeholder_rows(backend, rows, 10)
    )
}

/// Advances the job and stores the batch's issues inside the caller's transaction.
macro_rules! write_import_batch {
    ($backend:expr, $tx:expr, $batch:expr) => {{
        let batch: &$crate::imports::ImportBatchWrite = $batch;
        sqlx::query(
            "UPDATE import_job SET rows_done = $1, imported = imported + $2, invalid = invalid + $3, \
             duplicates = duplicates + $4, updated_at = $5 WHERE id = $6 AND state = 'running'",
        )
        .bind(batch.rows_done)
        .bind(batch.imported)
        .bind(batch.invalid)
        .bind(batch.duplicates)
        .bind(batch.now)
        .bind(&batch.job_id)
        .execute(&mut *$tx)
        .await?;
        for chunk in batch.issues.chunks($crate::imports::issues_per_insert()) {
            let sql = $crate::imports::issue_sql($backend, chunk.len());
            let mut query = sqlx::query(&sql);
            for issue in chunk {
                query = query
                    .bind(&batch.job_id)
                    .bind(issue.row_number)
                    .bind(issue.seq)
                    .bind(&issue.kind)
                    .bind(issue.column_name.as_deref())
                    .bind(issue.field.as_deref())
                    .bind(&issue.reason)
                    .bind(&issue.message)
                    .bind(issue.existing_customer_id.as_deref())
                    .bind(issue.duplicate_of_row);
            }
            query.execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use write_import_batch;

pub(crate) fn issues_per_insert() -> usize {
    ISSUES_PER_INSERT
}

pub(crate) fn issue_sql(backend: crate::Backend, rows: usize) -> String {
    issue_insert_sql(backend, rows)
}

macro_rules! job_from_row {
    ($row:expr) => {
        ImportJobRow {
            id: $row.try_get("id")?,
            file_sha256: $row.try_get("file_sha256")?,
            actor_id: $row.try_get("actor_id")?,
            owner_id: $row.try_get("owner_id")?,
            format: $row.try_get("format")?,
            has_header: $row.try_get("has_header")?,
            mapping: $row.try_get("mapping")?,
            state: $row.try_get("state")?,
            rows_done: $row.try_get("rows_done")?,
            imported: $row.try_get("imported")?,
            invalid: $row.try_get("invalid")?,
            duplicates: $row.try_get("duplicates")?,
            created_at: $row.try_get("created_at")?,
            updated_at: $row.try_get("updated_at")?,
        }
    };
}

const JOB_COLUMNS: &str =
    "id, file_sha256, actor_id, owner_id, format, has_header, mapping, state, rows_done, \
                           imported, invalid, duplicates, created_at, updated_at";

impl Store {
    /// Records a new, running import job.
    pub async fn create_import_job(&self, job: &ImportJobRow) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(&format!(
                "INSERT INTO import_job ({JOB_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ))
            .bind(&job.id)
            .bind(&job.file_sha256)
            .bind(&job.actor_id)
            .bind(job.owner_id.as_deref())
            .bind(&job.format)
            .bind(job.has_header)
            .bind(&job.mapping)
            .bind(&job.state)
            .bind(job.rows_done)
            .bind(job.imported)
            .bind(job.invalid)
            .bind(job.duplicates)
            .bind(job.created_at)
            .bind(job.updated_at)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// The newest unfinished job for the file with this SHA-256, if any.
    pub async fn running_import_job(&self, file_sha256: &str) -> StoreResult<Option<ImportJobRow>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM import_job WHERE file_sha256 = $1 AND state = 'running' \
             ORDER BY id DESC LIMIT 1"
        );
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(file_sha256)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<ImportJobRow, sqlx::Error> { Ok(job_from_row!(row)) })
                .transpose()
        })?;
        Ok(row)
    }

    /// One job by id.
    pub async fn import_job(&self, id: &str) -> StoreResult<Option<ImportJobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM import_job WHERE id = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<ImportJobRow, sqlx::Error> { Ok(job_from_row!(row)) })
                .transpose()
        })?;
        Ok(row)
    }

    /// The newest jobs, newest first (all of them, or one actor's).
    pub async fn import_jobs(
        &self,
        actor_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ImportJobRow>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM import_job WHERE ($1 = '' OR actor_id = $1) ORDER BY id DESC LIMIT $2"
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(actor_id.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<ImportJobRow, sqlx::Error> { Ok(job_from_row!(row)) })
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Up to `limit` issues of a job, in row order.
    pub async fn import_issues(
        &self,
        job_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<ImportIssueRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT row_number, seq, kind, column_name, field, reason, message, existing_customer_id, \
                 duplicate_of_row FROM import_issue WHERE job_id = $1 ORDER BY row_number, seq LIMIT $2",
            )
            .bind(job_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<ImportIssueRow, sqlx::Error> {
                Ok(ImportIssueRow {
                    row_number: row.try_get("row_number")?,
                    seq: row.try_get("seq")?,
                    kind: row.try_get("kind")?,
                    column_name: row.try_get("column_name")?,
                    field: row.try_get("field")?,
                    reason: row.try_get("reason")?,
                    message: row.try_get("message")?,
                    existing_customer_id: row.try_get("existing_customer_id")?,
                    duplicate_of_row: row.try_get("duplicate_of_row")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Marks a job done, with its closing audit entry, in one transaction.
    pub async fn finish_import_job(
        &self,
        job_id: &str,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE import_job SET state = 'done', updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// For each of `blind_indexes` that a stored customer's `field` has, the lowest such customer id: the
    /// import's de-duplication, a few indexed look-ups per batch, no decryption.
    pub async fn customers_by_blind_indexes(
        &self,
        field: SensitiveField,
        blind_indexes: &[Vec<u8>],
    ) -> StoreResult<Vec<(Vec<u8>, String)>> {
        let Some(column) = field.blind_index_column() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for chunk in blind_indexes.chunks(500) {
            let rows = match &self.pool {
                crate::Pool::Postgres(pool) => {
                    let sql = format!(
                        "SELECT {column} AS bidx, MIN(id) AS id FROM customer WHERE {column} = ANY($1) \
                         GROUP BY {column}"
                    );
                    sqlx::query(&sql)
                        .bind(chunk.to_vec())
                        .fetch_all(pool)
                        .await?
                        .into_iter()
                        .map(|row| Ok::<_, sqlx::Error>((row.try_get("bidx")?, row.try_get("id")?)))
                        .collect::<Result<Vec<(Vec<u8>, String)>, _>>()?
                }
                crate::Pool::Sqlite(pool) => {
                    // Anonymous placeholders: numbered ones make SQLite's binding quadratic.
                    let marks = vec!["?"; chunk.len()].join(", ");
                    let sql = format!(
                        "SELECT {column} AS bidx, MIN(id) AS id FROM customer WHERE {column} IN ({marks}) \
                         GROUP BY {column}"
                    );
                    let mut query = sqlx::query(&sql);
                    for value in chunk {
                        query = query.bind(value.as_slice());
                    }
                    query
                        .fetch_all(pool)
                        .await?
                        .into_iter()
                        .map(|row| Ok::<_, sqlx::Error>((row.try_get("bidx")?, row.try_get("id")?)))
                        .collect::<Result<Vec<(Vec<u8>, String)>, _>>()?
                }
            };
            out.extend(rows);
        }
        Ok(out)
    }
}
