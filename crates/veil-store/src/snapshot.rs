//! Whole-database snapshots and bulk loads for backups and restores, independent of any one table's shape.
//!
//! A [`Snapshot`] reads every table inside one transaction that sees a single point in time: on SQLite a
//! deferred read transaction on one connection (in WAL mode its first read fixes the snapshot, and writers carry
//! on), on PostgreSQL a `REPEATABLE READ READ ONLY` transaction. Rows come out as typed [`Value`]s, so a backup
//! taken on one backend loads into the other. A [`Loader`] writes them back inside one transaction, in the
//! dependency order of the foreign keys, converting each value to the target column's type.
//!
//! The store still sees no keys and no plaintext: the rows are the database's own ciphertext, masked values and
//! wrapped keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::TryStreamExt;
use sqlx::{Column, Row, TypeInfo, ValueRef as _};

use crate::{reader_error, with_pool, Pool, Store, StoreError, StoreResult};

mod sqlite_file;
mod sqlite_image;

pub use sqlite_image::{stream_image as stream_sqlite_image, ImageLayout, SqliteImage};

/// Tables never copied: sqlx's migration bookkeeping (the target runs its own migrations), the backup catalogue
/// (it describes backups; a restored database starts with an empty one) and derived counts that triggers keep
/// (`customer_industry_count`: loading the customers fires the triggers, which rebuild it exactly; copying it as
/// well would count every customer twice; likewise `product_buyers` and `product_pair`, rebuilt by the triggers
/// on `customer_product`, and `loyalty_day_total` and `loyalty_redemption_total`, rebuilt by those on
/// `loyalty_entry`) or recomputed from them (the neighbour lists: loading `customer_product` marks every bought
/// product's list stale, and the refresh job recomputes them).
pub const EXCLUDED_TABLES: &[&str] = &[
    "_sqlx_migrations",
    "backup",
    "customer_industry_count",
    "loyalty_day_total",
    "loyalty_redemption_total",
    "product_buyers",
    "product_neighbour",
    "product_neighbour_cut",
    "product_neighbour_rise",
    "product_neighbour_stale",
    "product_pair",
];

/// Rows per batch a scan on PostgreSQL hands to its sink.
pub const SCAN_BATCH_ROWS: usize = 1_000;

/// Rows seeded by migrations that a restore overwrites instead of inserting (`audit_head` starts at sequence 0).
const SEEDED_TABLES: &[&str] = &["audit_head"];

/// One column value, typed independently of the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Any integer column.
    Integer(i64),
    /// A floating-point column.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (ciphertext, hashes, wrapped keys).
    Blob(Vec<u8>),
    /// A PostgreSQL boolean (SQLite stores booleans as integers).
    Bool(bool),
}

impl Value {
    /// The value, borrowed.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(number) => ValueRef::Integer(*number),
            Value::Real(number) => ValueRef::Real(*number),
            Value::Text(text) => ValueRef::Text(text),
            Value::Blob(bytes) => ValueRef::Blob(bytes),
            Value::Bool(flag) => ValueRef::Bool(*flag),
        }
    }
}

/// One column value borrowed from the database's row buffer (see [`Value`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// Any integer column.
    Integer(i64),
    /// A floating-point column.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
    /// A PostgreSQL boolean.
    Bool(bool),
}

/// Receives a table's rows one at a time on a blocking thread (see [`Snapshot::scan_table`]): it may block, for
/// example on a channel to the next stage of a pipeline. An error stops the scan and is returned by it.
pub trait RowSink: Send + 'static {
    /// One row, its values in the table's column order.
    fn row(&mut self, values: &[ValueRef<'_>]) -> StoreResult<()>;
    /// After the last row.
    fn end(&mut self) -> StoreResult<()>;
}

/// The storage type of a target column, from its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Integer of any width.
    Integer,
    /// Floating point.
    Real,
    /// Text.
    Text,
    /// Bytes.
    Blob,
    /// Boolean.
    Bool,
}

impl ColumnKind {
    /// Maps a declared SQL type (`BIGINT`, `bytea`, `BOOLEAN`, …) to its kind.
    pub fn from_declared(declared: &str) -> ColumnKind {
        let declared = declared.to_ascii_lowercase();
        if declared.contains("bool") {
            ColumnKind::Bool
        } else if declared.contains("int") {
            ColumnKind::Integer
        } else if declared.contains("char")
            || declared.contains("text")
            || declared.contains("clob")
        {
            ColumnKind::Text
        } else if declared.contains("blob") || declared.contains("bytea") {
            ColumnKind::Blob
        } else if declared.contains("real")
            || declared.contains("floa")
            || declared.contains("doub")
            || declared.contains("numeric")
        {
            ColumnKind::Real
        } else {
            ColumnKind::Text
        }
    }
}

/// A table and its columns, in the order rows list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Column names.
    pub columns: Vec<String>,
}

/// A foreign key: `table.column` references `ref_table.ref_column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referencing table.
    pub table: String,
    /// The referencing column.
    pub column: String,
    /// The referenced table.
    pub ref_table: String,
    /// The referenced column.
    pub ref_column: String,
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The tables a backup copies (all but [`EXCLUDED_TABLES`]), parents before the tables that reference them.
fn backed_up_in_order(names: Vec<String>, keys: &[ForeignKey]) -> Vec<String> {
    let names: Vec<String> = names
        .into_iter()
        .filter(|name| !EXCLUDED_TABLES.contains(&name.as_str()))
        .collect();
    dependency_order(&names, keys)
}

/// Orders tables so that every table comes after the tables it references (self-references ignored); ties and
/// cycles fall back to name order.
pub fn dependency_order(tables: &[String], keys: &[ForeignKey]) -> Vec<String> {
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for table in tables {
        parents.entry(table.as_str()).or_default();
    }
    for key in keys {
        if key.table != key.ref_table && parents.contains_key(key.ref_table.as_str()) {
            if let Some(set) = parents.get_mut(key.table.as_str()) {
                set.insert(key.ref_table.as_str());
            }
        }
    }
    let mut ordered: Vec<String> = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while done.len() < parents.len() {
        let ready: Vec<&str> = parents
            .iter()
            .filter(|(table, needs)| {
                !done.contains(*table) && needs.iter().all(|p| done.contains(p))
            })
            .map(|(table, _)| *table)
            .collect();
        let next = if ready.is_empty() {
            // A cycle between tables: take the first remaining one and let the database report any violation.
            parents
                .keys()
                .copied()
                .filter(|table| !done.contains(table))
                .take(1)
                .collect()
        } else {
            ready
        };
        for table in next {
            done.insert(table);
            ordered.push(table.to_owned());
        }
    }
    ordered
}

fn sqlite_value(row: &sqlx::sqlite::SqliteRow, index: usize) -> StoreResult<Value> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_owned();
    Ok(match storage.as_str() {
        "INTEGER" | "BOOLEAN" => Value::Integer(row.try_get_unchecked::<i64, _>(index)?),
        "REAL" | "NUMERIC" => Value::Real(row.try_get_unchecked::<f64, _>(index)?),
        "BLOB" => Value::Blob(row.try_get_unchecked::<Vec<u8>, _>(index)?),
        _ => Value::Text(row.try_get_unchecked::<String, _>(index)?),
    })
}

fn postgres_value(row: &sqlx::postgres::PgRow, index: usize) -> StoreResult<Value> {
    let type_name = row.column(index).type_info().name().to_owned();
    let value = match type_name.as_str() {
        "INT8" => row.try_get::<Option<i64>, _>(index)?.map(Value::Integer),
        "INT4" => row
            .try_get::<Option<i32>, _>(index)?
            .map(|value| Value::Integer(value.into())),
        "INT2" => row
            .try_get::<Option<i16>, _>(index)?
            .map(|value| Value::Integer(value.into())),
        "BOOL" => row.try_get::<Option<bool>, _>(index)?.map(Value::Bool),
        "FLOAT8" => row.try_get::<Option<f64>, _>(index)?.map(Value::Real),
        "FLOAT4" => row
            .try_get::<Option<f32>, _>(index)?
            .map(|value| Value::Real(value.into())),
        "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(index)?.map(Value::Blob),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
            row.try_get::<Option<String>, _>(index)?.map(Value::Text)
        }
        other => {
            return Err(StoreError::Snapshot(format!(
                "column {} has type {other}, which backups do not support",
                row.column(index).name()
            )))
        }
    };
    Ok(value.unwrap_or(Value::Null))
}

/// Queries shared by snapshots, loaders and the store: tables, columns, keys, schema version. Each is written
/// once per backend and run on whatever executor (pool or transaction) the caller holds.
macro_rules! schema_queries {
    ($name:ident, $executor_ty:ty, $backend:literal) => {
        mod $name {
            use super::*;

            pub(super) async fn tables(executor: $executor_ty) -> StoreResult<Vec<String>> {
                let sql = if $backend == "sqlite" {
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                } else {
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
                };
                Ok(sqlx::query_scalar::<_, String>(sql).fetch_all(executor).await?)
            }

            pub(super) async fn columns(
                executor: $executor_ty,
                table: &str,
            ) -> StoreResult<Vec<(String, ColumnKind)>> {
                let sql = if $backend == "sqlite" {
                    "SELECT name, type FROM pragma_table_info($1) ORDER BY cid"
                } else {
                    "SELECT column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
                };
                let rows: Vec<(String, String)> =
                    sqlx::query_as(sql).bind(table).fetch_all(executor).await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, declared)| (name, ColumnKind::from_declared(&declared)))
                    .collect())
            }

            pub(super) async fn schema_version(executor: $executor_ty) -> StoreResult<i64> {
                Ok(sqlx::query_scalar::<_, Option<i64>>(
                    "SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE",
                )
                .fetch_one(executor)
                .await
                .unwrap_or(None)
                .unwrap_or(0))
            }
        }
    };
}

schema_queries!(sqlite_schema, &mut sqlx::SqliteConnection, "sqlite");
schema_queries!(postgres_schema, &mut sqlx::PgConnection, "postgres");

async fn sqlite_foreign_keys(
    connection: &mut sqlx::SqliteConnection,
    tables: &[String],
) -> StoreResult<Vec<ForeignKey>> {
    let mut keys = Vec::new();
    for table in tables {
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list($1)")
                .bind(table)
                .fetch_all(&mut *connection)
                .await?;
        for (ref_table, column, ref_column) in rows {
            keys.push(ForeignKey {
                table: table.clone(),
                column,
                ref_column: ref_column.unwrap_or_else(|| "id".to_owned()),
                ref_table,
            });
        }
    }
    Ok(keys)
}

async fn postgres_foreign_keys(
    connection: &mut sqlx::PgConnection,
) -> StoreResult<Vec<ForeignKey>> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT child.relname::text, a.attname::text, parent.relname::text, pa.attname::text \
         FROM pg_constraint c \
         JOIN pg_class child ON child.oid = c.conrelid \
         JOIN pg_class parent ON parent.oid = c.confrelid \
         JOIN pg_namespace n ON n.oid = child.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1] \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(table, column, ref_table, ref_column)| ForeignKey {
            table,
            column,
            ref_table,
            ref_column,
        })
        .collect())
}

enum Transaction {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    /// A read transaction on a synchronous connection to the SQLite file (taken out while a blocking task uses it).
    SqliteFile(Option<rusqlite::Connection>),
}

/// Runs `work` on the snapshot's file connection on a blocking thread.
async fn on_file<R: Send + 'static>(
    slot: &mut Option<rusqlite::Connection>,
    work: impl FnOnce(&rusqlite::Connection) -> StoreResult<R> + Send + 'static,
) -> StoreResult<R> {
    let connection = slot
        .take()
        .ok_or_else(|| StoreError::Snapshot("the snapshot's connection was lost".to_owned()))?;
    let (connection, result) = tokio::task::spawn_blocking(move || {
        let result = work(&connection);
        (connection, result)
    })
    .await
    .map_err(reader_error)?;
    *slot = Some(connection);
    result
}

/// A read-only view of the whole database at one point in time.
pub struct Snapshot {
    tx: Transaction,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Snapshot")
    }
}

impl Snapshot {
    /// A snapshot of the SQLite file at `path` that no server writes: a backup's page image, copied or restored.
    pub async fn of_sqlite_file(path: &std::path::Path) -> StoreResult<Snapshot> {
        let path = path.to_owned();
        let connection = tokio::task::spawn_blocking(move || sqlite_file::open_snapshot(&path))
            .await
            .map_err(reader_error)??;
        Ok(Snapshot {
            tx: Transaction::SqliteFile(Some(connection)),
        })
    }

    /// The highest applied migration.
    pub async fn schema_version(&mut self) -> StoreResult<i64> {
        match &mut self.tx {
            Transaction::Sqlite(tx) => sqlite_schema::schema_version(tx).await,
            Transaction::Postgres(tx) => postgres_schema::schema_version(tx).await,
            Transaction::SqliteFile(slot) => {
                on_file(slot, |connection| {
                    Ok(sqlite_file::schema_version(connection))
                })
                .await
            }
        }
    }

    /// Every table to back up, parents before the tables that reference them.
    pub async fn tables(&mut self) -> StoreResult<Vec<TableInfo>> {
        let (names, keys) = match &mut self.tx {
            Transaction::Sqlite(tx) => {
                let names = sqlite_schema::tables(tx).await?;
                let keys = sqlite_foreign_keys(tx, &names).await?;
                (names, keys)
            }
            Transaction::Postgres(tx) => {
                let names = postgres_schema::tables(tx).await?;
                (names, postgres_foreign_keys(tx).await?)
            }
            Transaction::SqliteFile(slot) => return on_file(slot, sqlite_file::table_infos).await,
        };
        let mut tables = Vec::new();
        for name in backed_up_in_order(names, &keys) {
            let columns = match &mut self.tx {
                Transaction::Sqlite(tx) => sqlite_schema::columns(tx, &name).await?,
                Transaction::Postgres(tx) => postgres_schema::columns(tx, &name).await?,
                Transaction::SqliteFile(_) => {
                    unreachable!("a file snapshot lists its tables in one blocking call above")
                }
            };
            tables.push(TableInfo {
                name,
                columns: columns.into_iter().map(|(column, _)| column).collect(),
            });
        }
        Ok(tables)
    }

    /// Hands every row of `table` to `sink` on a blocking thread, then calls its `end`; returns the row count.
    /// On an SQLite file the values are borrowed straight from SQLite's row buffers; on PostgreSQL (and an
    /// in-memory SQLite database) rows are fetched in batches of [`SCAN_BATCH_ROWS`] and each batch is handed over
    /// on a blocking thread.
    pub async fn scan_table<S: RowSink>(&mut self, table: &TableInfo, sink: S) -> StoreResult<u64> {
        let mut sink = sink;
        if let Transaction::SqliteFile(slot) = &mut self.tx {
            let table = table.clone();
            return on_file(slot, move |connection| {
                sqlite_file::scan(connection, &table, &mut sink)
            })
            .await;
        }
        let columns: Vec<String> = table.columns.iter().map(|column| quote(column)).collect();
        let sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(SCAN_BATCH_ROWS);
        let mut count = 0u64;
        async fn hand_over<S: RowSink>(
            sink: S,
            batch: Vec<Vec<Value>>,
            end: bool,
        ) -> StoreResult<S> {
            tokio::task::spawn_blocking(move || {
                let mut sink = sink;
                for row in &batch {
                    let values: Vec<ValueRef<'_>> = row.iter().map(Value::as_ref).collect();
                    sink.row(&values)?;
                }
                if end {
                    sink.end()?;
                }
                Ok(sink)
            })
            .await
            .map_err(reader_error)?
        }
        macro_rules! drain {
            ($tx:expr, $convert:ident) => {{
                let mut rows = sqlx::query(&sql).fetch(&mut **$tx);
                while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
                    let mut values = Vec::with_capacity(table.columns.len());
                    for index in 0..table.columns.len() {
                        values.push($convert(&row, index)?);
                    }
                    batch.push(values);
                    count += 1;
                    if batch.len() >= SCAN_BATCH_ROWS {
                        let full =
                            std::mem::replace(&mut batch, Vec::with_capacity(SCAN_BATCH_ROWS));
                        sink = hand_over(sink, full, false).await?;
                    }
                }
            }};
        }
        match &mut self.tx {
            Transaction::Sqlite(tx) => drain!(tx, sqlite_value),
            Transaction::Postgres(tx) => drain!(tx, postgres_value),
            Transaction::SqliteFile(_) => unreachable!("scanned on the file above"),
        }
        hand_over(sink, batch, true).await?;
        Ok(count)
    }

    /// Rows in `table` (inside the snapshot).
    pub async fn count(&mut self, table: &str) -> StoreResult<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", quote(table));
        Ok(match &mut self.tx {
            Transaction::Sqlite(tx) => {
                sqlx::query_scalar::<_, i64>(&sql)
                    .fetch_one(&mut **tx)
                    .await?
            }
            Transaction::Postgres(tx) => {
                sqlx::query_scalar::<_, i64>(&sql)
                    .fetch_one(&mut **tx)
                    .await?
            }
            Transaction::SqliteFile(slot) => {
                let table = table.to_owned();
                on_file(slot, move |connection| {
                    sqlite_file::count(connection, &table)
                })
                .await?
            }
        })
    }

    /// Ends the read transaction.
    pub async fn finish(self) -> StoreResult<()> {
        match self.tx {
            Transaction::Sqlite(tx) => tx.rollback().await?,
            Transaction::Postgres(tx) => tx.rollback().await?,
            // Dropping the connection ends its read transaction.
            Transaction::SqliteFile(_) => {}
        }
        Ok(())
    }
}

/// Binds one value converted to the target column's kind (so `0/1` become booleans on PostgreSQL and a NULL
/// carries the column's type).
fn kind_mismatch(table: &str, column: &str, found: &Value, kind: ColumnKind) -> StoreError {
    StoreError::Snapshot(format!(
        "column {table}.{column}: a {} value does not fit a {kind:?} column",
        match found {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
            Value::Bool(_) => "boolean",
        },
    ))
}

/// Appends `row` to `out` in PostgreSQL's COPY text format (tab-separated, `\N` for NULL, backslash escapes,
/// `\\x…` hex for bytes), each value converted to its column's kind.
fn copy_text_row(
    out: &mut Vec<u8>,
    row: &[Value],
    kinds: &[ColumnKind],
    table: &str,
    columns: &[String],
) -> StoreResult<()> {
    if row.len() != columns.len() {
        return Err(StoreError::Snapshot(format!(
            "a row of {table} has {} values for {} columns",
            row.len(),
            columns.len()
        )));
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (index, ((value, kind), column)) in row.iter().zip(kinds).zip(columns).enumerate() {
        if index > 0 {
            out.push(b'\t');
        }
        match (*kind, value) {
            (_, Value::Null) => out.extend_from_slice(b"\\N"),
            (ColumnKind::Integer, Value::Integer(number)) => {
                out.extend_from_slice(itoa::Buffer::new().format(*number).as_bytes())
            }
            (ColumnKind::Integer, Value::Bool(flag)) => out.push(if *flag { b'1' } else { b'0' }),
            (ColumnKind::Bool, Value::Bool(flag)) => out.push(if *flag { b't' } else { b'f' }),
            (ColumnKind::Bool, Value::Integer(number)) => {
                out.push(if *number != 0 { b't' } else { b'f' })
            }
            (ColumnKind::Real, Value::Real(number)) => {
                out.extend_from_slice(number.to_string().as_bytes())
            }
            (ColumnKind::Real, Value::Integer(number)) => {
                out.extend_from_slice((*number as f64).to_string().as_bytes())
            }
            (ColumnKind::Text, Value::Text(text)) => {
                for &byte in text.as_bytes() {
                    match byte {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        other => out.push(other),
                    }
                }
            }
            (ColumnKind::Blob, Value::Blob(bytes)) => {
                out.extend_from_slice(b"\\\\x");
                for byte in bytes {
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0x0f)]);
                }
            }
            (kind, found) => return Err(kind_mismatch(table, column, found, kind)),
        }
    }
    out.push(b'\n');
    Ok(())
}

macro_rules! bind_value {
    ($query:expr, $value:expr, $kind:expr, $table:expr, $column:expr) => {{
        let mismatch = |found: &Value| kind_mismatch($table, $column, found, $kind);
        match ($kind, $value) {
            (ColumnKind::Integer, Value::Integer(value)) => $query.bind(*value),
            (ColumnKind::Integer, Value::Bool(value)) => $query.bind(i64::from(*value)),
            (ColumnKind::Integer, Value::Null) => $query.bind(None::<i64>),
            (ColumnKind::Bool, Value::Bool(value)) => $query.bind(*value),
            (ColumnKind::Bool, Value::Integer(value)) => $query.bind(*value != 0),
            (ColumnKind::Bool, Value::Null) => $query.bind(None::<bool>),
            (ColumnKind::Real, Value::Real(value)) => $query.bind(*value),
            (ColumnKind::Real, Value::Integer(value)) => $query.bind(*value as f64),
            (ColumnKind::Real, Value::Null) => $query.bind(None::<f64>),
            (ColumnKind::Text, Value::Text(value)) => $query.bind(value.as_str()),
            (ColumnKind::Text, Value::Null) => $query.bind(None::<String>),
            (ColumnKind::Blob, Value::Blob(value)) => $query.bind(value.as_slice()),
            (ColumnKind::Blob, Value::Null) => $query.bind(None::<Vec<u8>>),
            (_, other) => return Err(mismatch(other)),
        }
    }};
}

/// The load's transaction.
enum LoadTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    /// A write transaction on a synchronous connection to the SQLite file: one prepared single-row insert per
    /// table, the fastest way into SQLite.
    SqliteFile(Option<rusqlite::Connection>),
}

/// Writes a whole database inside one transaction (see [`Store::begin_load`]).
pub struct Loader {
    tx: LoadTx,
    kinds: HashMap<String, HashMap<String, ColumnKind>>,
    keys: Vec<ForeignKey>,
    /// Indexes (and, on PostgreSQL, foreign keys) dropped for the bulk insert: the statements that create them
    /// again before anything reads the loaded tables.
    deferred_indexes: Vec<String>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Loader")
    }
}

impl Loader {
    /// The table's self-referencing foreign key, if any (`team.parent → team.name`): such rows must be loaded
    /// parents first, see [`order_self_referencing`].
    pub fn self_reference(&self, table: &str) -> Option<(String, String)> {
        self.keys
            .iter()
            .find(|key| key.table == table && key.ref_table == table)
            .map(|key| (key.column.clone(), key.ref_column.clone()))
    }

    /// Inserts rows of `table` whose values follow `columns`.
    pub async fn insert_rows(
        &mut self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let target = self.kinds.get(table).ok_or_else(|| {
            StoreError::Snapshot(format!("table {table} does not exist in the target schema"))
        })?;
        let kinds: Vec<ColumnKind> = columns
            .iter()
            .map(|column| {
                target.get(column).copied().ok_or_else(|| {
                    StoreError::Snapshot(format!(
                        "column {table}.{column} does not exist in the target schema"
                    ))
                })
            })
            .collect::<StoreResult<_>>()?;
        if let LoadTx::SqliteFile(slot) = &mut self.tx {
            let seeded = SEEDED_TABLES.contains(&table);
            let sql = if seeded {
                // The migrations seeded this table's single row: overwrite it rather than insert a second one.
                let assignments: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(index, column)| format!("{} = ?{}", quote(column), index + 1))
                    .collect();
                format!("UPDATE {} SET {}", quote(table), assignments.join(", "))
            } else {
                let parameters: Vec<String> = (1..=columns.len())
                    .map(|index| format!("?{index}"))
                    .collect();
                let column_list: Vec<String> = columns.iter().map(|column| quote(column)).collect();
                format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    quote(table),
                    column_list.join(", "),
                    parameters.join(", ")
                )
            };
            let (table, columns) = (table.to_owned(), columns.to_vec());
            return on_file(slot, move |connection| {
                sqlite_file::write_rows(connection, &sql, &table, &columns, &kinds, &rows)
            })
            .await;
        }
        if let (LoadTx::Postgres(tx), false) = (&mut self.tx, SEEDED_TABLES.contains(&table)) {
            // COPY: PostgreSQL's bulk path, several times faster than multi-row inserts.
            let mut data = Vec::with_capacity(rows.len() * 256);
            for row in &rows {
                copy_text_row(&mut data, row, &kinds, table, columns)?;
            }
            let column_list: Vec<String> = columns.iter().map(|column| quote(column)).collect();
            let sql = format!(
                "COPY {} ({}) FROM STDIN",
                quote(table),
                column_list.join(", ")
            );
            let mut copy = tx.copy_in_raw(&sql).await?;
            if let Err(error) = copy.send(data).await {
                let _ = copy.abort("the load stopped").await;
                return Err(error.into());
            }
            copy.finish().await?;
            return Ok(());
        }
        let rows = &rows[..];
        if SEEDED_TABLES.contains(&table) {
            // The migrations seeded this table's single row: overwrite it rather than insert a second one.
            for row in rows {
                let assignments: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(index, column)| format!("{} = ${}", quote(column), index + 1))
                    .collect();
                let sql = format!("UPDATE {} SET {}", quote(table), assignments.join(", "));
                self.execute(&sql, table, columns, &kinds, std::slice::from_ref(row))
                    .await?;
            }
            return Ok(());
        }
        // Only an in-memory SQLite database gets here. sqlx's SQLite driver looks each parameter up in a list, a
        // cost that grows with their number per statement: keep statements small.
        let per_statement = (500 / columns.len().max(1)).max(1);
        let column_list: Vec<String> = columns.iter().map(|column| quote(column)).collect();
        for chunk in rows.chunks(per_statement) {
            let mut sql = format!(
                "INSERT INTO {} ({}) VALUES ",
                quote(table),
                column_list.join(", ")
            );
            let mut parameter = 1;
            for (row_index, _) in chunk.iter().enumerate() {
                if row_index > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for column_index in 0..columns.len() {
                    if column_index > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${parameter}"));
                    parameter += 1;
                }
                sql.push(')');
            }
            self.execute(&sql, table, columns, &kinds, chunk).await?;
        }
        Ok(())
    }

    async fn execute(
        &mut self,
        sql: &str,
        table: &str,
        columns: &[String],
        kinds: &[ColumnKind],
        rows: &[Vec<Value>],
    ) -> StoreResult<()> {
        macro_rules! run {
            ($tx:expr) => {{
                let mut query = sqlx::query(sql);
                for row in rows {
                    if row.len() != columns.len() {
                        return Err(StoreError::Snapshot(format!(
                            "a row of {table} has {} values for {} columns",
                            row.len(),
                            columns.len()
                        )));
                    }
                    for ((value, kind), column) in row.iter().zip(kinds).zip(columns) {
                        query = bind_value!(query, value, *kind, table, column);
                    }
                }
                query.execute(&mut **$tx).await?;
            }};
        }
        match &mut self.tx {
            LoadTx::Sqlite(tx) => run!(tx),
            LoadTx::Postgres(tx) => run!(tx),
            LoadTx::SqliteFile(_) => unreachable!("insert_rows writes SQLite files itself"),
        }
        Ok(())
    }

    /// Creates the indexes deferred for the bulk insert, once, before the loaded tables are read or changed.
    async fn ensure_indexes(&mut self) -> StoreResult<()> {
        if self.deferred_indexes.is_empty() {
            return Ok(());
        }
        let statements = std::mem::take(&mut self.deferred_indexes);
        match &mut self.tx {
            LoadTx::SqliteFile(slot) => {
                on_file(slot, move |connection| {
                    sqlite_file::rebuild_indexes(connection, &statements)
                })
                .await
            }
            LoadTx::Postgres(tx) => {
                for statement in &statements {
                    sqlx::query(statement).execute(&mut **tx).await?;
                }
                Ok(())
            }
            LoadTx::Sqlite(_) => Ok(()),
        }
    }

    /// Rows in `table` now (inside the load transaction).
    pub async fn count(&mut self, table: &str) -> StoreResult<i64> {
        self.ensure_indexes().await?;
        let sql = format!("SELECT COUNT(*) FROM {}", quote(table));
        Ok(match &mut self.tx {
            LoadTx::Sqlite(tx) => {
                sqlx::query_scalar::<_, i64>(&sql)
                    .fetch_one(&mut **tx)
                    .await?
            }
            LoadTx::Postgres(tx) => {
                sqlx::query_scalar::<_, i64>(&sql)
                    .fetch_one(&mut **tx)
                    .await?
            }
            LoadTx::SqliteFile(slot) => {
                let table = table.to_owned();
                on_file(slot, move |connection| {
                    sqlite_file::count(connection, &table)
                })
                .await?
            }
        })
    }

    /// Customer ids in the erasure table of the load.
    pub async fn erased_ids(&mut self) -> StoreResult<Vec<String>> {
        self.ensure_indexes().await?;
        let sql = "SELECT customer_id FROM erasure";
        Ok(match &mut self.tx {
            LoadTx::Sqlite(tx) => sqlx::query_scalar(sql).fetch_all(&mut **tx).await?,
            LoadTx::Postgres(tx) => sqlx::query_scalar(sql).fetch_all(&mut **tx).await?,
            LoadTx::SqliteFile(slot) => on_file(slot, sqlite_file::erased_ids).await?,
        })
    }

    /// Erases a customer again inside the load: deletes its data key and its row (dependent rows cascade) and
    /// records the erasure if it is not recorded yet. Returns whether a key or row was removed.
    pub async fn erase_customer(
        &mut self,
        customer_id: &str,
        erased_by: Option<&str>,
        erased_at: i64,
    ) -> StoreResult<bool> {
        self.ensure_indexes().await?;
        macro_rules! run {
            ($tx:expr) => {{
                let keys = sqlx::query("DELETE FROM customer_key WHERE customer_id = $1")
                    .bind(customer_id)
                    .execute(&mut **$tx)
                    .await?
                    .rows_affected();
                let rows = sqlx::query("DELETE FROM customer WHERE id = $1")
                    .bind(customer_id)
                    .execute(&mut **$tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "INSERT INTO erasure (customer_id, erased_by, erased_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (customer_id) DO NOTHING",
                )
                .bind(customer_id)
                .bind(erased_by)
                .bind(erased_at)
                .execute(&mut **$tx)
                .await?;
                keys + rows > 0
            }};
        }
        Ok(match &mut self.tx {
            LoadTx::Sqlite(tx) => run!(tx),
            LoadTx::Postgres(tx) => run!(tx),
            LoadTx::SqliteFile(slot) => {
                let (customer_id, erased_by) =
                    (customer_id.to_owned(), erased_by.map(str::to_owned));
                on_file(slot, move |connection| {
                    sqlite_file::erase_customer(
                        connection,
                        &customer_id,
                        erased_by.as_deref(),
                        erased_at,
                    )
                })
                .await?
            }
        })
    }

    /// Commits the load.
    pub async fn commit(mut self) -> StoreResult<()> {
        self.ensure_indexes().await?;
        match self.tx {
            LoadTx::Sqlite(tx) => tx.commit().await?,
            LoadTx::Postgres(tx) => tx.commit().await?,
            LoadTx::SqliteFile(mut slot) => {
                on_file(&mut slot, |connection| {
                    connection.execute_batch("COMMIT").map_err(reader_error)
                })
                .await?
            }
        }
        Ok(())
    }

    /// Abandons the load: nothing of it stays in the target.
    pub async fn rollback(self) -> StoreResult<()> {
        match self.tx {
            LoadTx::Sqlite(tx) => tx.rollback().await?,
            LoadTx::Postgres(tx) => tx.rollback().await?,
            // Closing the connection rolls its transaction back.
            LoadTx::SqliteFile(_) => {}
        }
        Ok(())
    }
}

/// Orders rows of a self-referencing table so that each row comes after the row it references.
/// `column` and `ref_column` index into the row. Rows whose parent is missing keep their relative order at the end.
pub fn order_self_referencing(
    rows: Vec<Vec<Value>>,
    column: usize,
    ref_column: usize,
) -> Vec<Vec<Value>> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let key = |value: &Value| format!("{value:?}");
    let mut remaining = rows;
    let mut ordered = Vec::with_capacity(remaining.len());
    loop {
        let before = remaining.len();
        let mut next = Vec::new();
        for row in remaining {
            let parent = &row[column];
            if *parent == Value::Null || placed.contains(&key(parent)) {
                placed.insert(key(&row[ref_column]));
                ordered.push(row);
            } else {
                next.push(row);
            }
        }
        remaining = next;
        if remaining.is_empty() || remaining.len() == before {
            break;
        }
    }
    ordered.extend(remaining);
    ordered
}

impl Store {
    /// The SQLite database file, when this store is one (not PostgreSQL, not in memory): backups copy it as a page
    /// image.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_path.as_deref()
    }

    /// Opens a consistent read-only snapshot of the whole database.
    pub async fn snapshot(&self) -> StoreResult<Snapshot> {
        if let Some(path) = self.sqlite_path.clone() {
            let connection = tokio::task::spawn_blocking(move || sqlite_file::open_snapshot(&path))
                .await
                .map_err(reader_error)??;
            return Ok(Snapshot {
                tx: Transaction::SqliteFile(Some(connection)),
            });
        }
        let tx = match self.pool() {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                // The first read fixes the WAL snapshot for the rest of the transaction.
                sqlx::query("SELECT COUNT(*) FROM sqlite_master")
                    .execute(&mut *tx)
                    .await?;
                Transaction::Sqlite(tx)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                Transaction::Postgres(tx)
            }
        };
        Ok(Snapshot { tx })
    }

    /// The highest applied migration of this database (0 before any).
    pub async fn schema_version(&self) -> StoreResult<i64> {
        match self.pool() {
            Pool::Sqlite(pool) => sqlite_schema::schema_version(&mut *pool.acquire().await?).await,
            Pool::Postgres(pool) => {
                postgres_schema::schema_version(&mut *pool.acquire().await?).await
            }
        }
    }

    /// The newest migration this build knows.
    pub fn latest_migration(&self) -> i64 {
        let migrator = match self.pool() {
            Pool::Sqlite(_) => sqlx::migrate!("./migrations/sqlite"),
            Pool::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .iter()
            .map(|migration| migration.version)
            .max()
            .unwrap_or(0)
    }

    /// Applies this backend's migrations up to and including `version` only (a restore loads an older backup
    /// into the schema it was taken with, then [`Store::migrate`] brings it forward).
    pub async fn migrate_to(&self, version: i64) -> StoreResult<()> {
        let mut migrator = match self.pool() {
            Pool::Sqlite(_) => sqlx::migrate!("./migrations/sqlite"),
            Pool::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.migrations = std::borrow::Cow::Owned(
            migrator
                .iter()
                .filter(|migration| migration.version <= version)
                .cloned()
                .collect(),
        );
        match self.pool() {
            Pool::Sqlite(pool) => migrator.run(pool).await?,
            Pool::Postgres(pool) => migrator.run(pool).await?,
        }
        Ok(())
    }

    /// Whether the database holds any data: a row in any table except migration bookkeeping and the seeded
    /// audit head at sequence 0.
    pub async fn holds_data(&self) -> StoreResult<bool> {
        let tables = match self.pool() {
            Pool::Sqlite(pool) => sqlite_schema::tables(&mut *pool.acquire().await?).await?,
            Pool::Postgres(pool) => postgres_schema::tables(&mut *pool.acquire().await?).await?,
        };
        for table in tables {
            if table == "_sqlx_migrations" {
                continue;
            }
            let sql = if table == "audit_head" {
                "SELECT COUNT(*) FROM audit_head WHERE seq > 0".to_owned()
            } else {
                format!("SELECT COUNT(*) FROM {}", quote(&table))
            };
            let count: i64 =
                with_pool!(self, |pool| sqlx::query_scalar(&sql).fetch_one(pool).await)?;
            if count > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Drops every table (and, on PostgreSQL, every function) in the database or schema: the `--force` of a
    /// restore over existing data. Irreversible.
    pub async fn drop_everything(&self) -> StoreResult<()> {
        match self.pool() {
            Pool::Sqlite(pool) => {
                let mut connection = pool.acquire().await?;
                let tables = sqlite_schema::tables(&mut connection).await?;
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut *connection)
                    .await?;
                let mut result = Ok(());
                for table in tables {
                    if let Err(error) =
                        sqlx::query(&format!("DROP TABLE IF EXISTS {}", quote(&table)))
                            .execute(&mut *connection)
                            .await
                    {
                        result = Err(error.into());
                        break;
                    }
                }
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *connection)
                    .await?;
                result
            }
            Pool::Postgres(pool) => {
                let mut connection = pool.acquire().await?;
                for table in postgres_schema::tables(&mut connection).await? {
                    sqlx::query(&format!("DROP TABLE IF EXISTS {} CASCADE", quote(&table)))
                        .execute(&mut *connection)
                        .await?;
                }
                let functions: Vec<String> = sqlx::query_scalar(
                    "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                     WHERE n.nspname = current_schema()",
                )
                .fetch_all(&mut *connection)
                .await?;
                for function in functions {
                    sqlx::query(&format!(
                        "DROP FUNCTION IF EXISTS {} CASCADE",
                        quote(&function)
                    ))
                    .execute(&mut *connection)
                    .await?;
                }
                Ok(())
            }
        }
    }

    /// Starts loading a whole database in one transaction. The schema must already be migrated.
    pub async fn begin_load(&self) -> StoreResult<Loader> {
        if let Some(path) = self.sqlite_path.clone() {
            let (connection, kinds, keys, deferred_indexes) =
                tokio::task::spawn_blocking(move || {
                    let connection = sqlite_file::open_loader(&path)?;
                    let deferred_indexes = sqlite_file::defer_indexes(&connection)?;
                    let tables = sqlite_file::tables(&connection)?;
                    let keys = sqlite_file::foreign_keys(&connection, &tables)?;
                    let mut kinds = HashMap::new();
                    for table in tables {
                        let columns = sqlite_file::columns(&connection, &table)?;
                        kinds.insert(table, columns.into_iter().collect());
                    }
                    Ok::<_, StoreError>((connection, kinds, keys, deferred_indexes))
                })
                .await
                .map_err(reader_error)??;
            return Ok(Loader {
                tx: LoadTx::SqliteFile(Some(connection)),
                kinds,
                keys,
                deferred_indexes,
            });
        }
        let (mut tx, tables, keys) = match self.pool() {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let tables = sqlite_schema::tables(&mut tx).await?;
                let keys = sqlite_foreign_keys(&mut tx, &tables).await?;
                (LoadTx::Sqlite(tx), tables, keys)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let tables = postgres_schema::tables(&mut tx).await?;
                let keys = postgres_foreign_keys(&mut tx).await?;
                (LoadTx::Postgres(tx), tables, keys)
            }
        };
        let mut deferred_indexes = Vec::new();
        if let LoadTx::Postgres(tx) = &mut tx {
            // As pg_restore does: secondary indexes are built once after the data is in, not kept up to date
            // through every COPY. Primary keys, unique constraints and unique indexes stay, so duplicates are
            // refused as they arrive. Inside the transaction: a failed load leaves them as they were.
            let indexes: Vec<(String, String)> = sqlx::query_as(
                "SELECT i.indexname::text, i.indexdef FROM pg_indexes i \
                 WHERE i.schemaname = current_schema() AND i.indexdef NOT LIKE 'CREATE UNIQUE%' \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) \
                 ORDER BY i.indexname",
            )
            .fetch_all(&mut **tx)
            .await?;
            for (name, definition) in indexes {
                sqlx::query(&format!("DROP INDEX {}", quote(&name)))
                    .execute(&mut **tx)
                    .await?;
                deferred_indexes.push(definition);
            }
            // Foreign keys too: checked once per table with one join when added back, instead of one look-up per
            // row. The loader's own order (parents first) is unchanged; a dangling reference fails the load when
            // the key is added back, before anything reads the tables.
            let foreign_keys: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT c.conrelid::regclass::text, c.conname::text, pg_get_constraintdef(c.oid) \
                 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
                 WHERE c.contype = 'f' AND n.nspname = current_schema() ORDER BY c.conname",
            )
            .fetch_all(&mut **tx)
            .await?;
            for (table, name, definition) in foreign_keys {
                sqlx::query(&format!(
                    "ALTER TABLE {table} DROP CONSTRAINT {}",
                    quote(&name)
                ))
                .execute(&mut **tx)
                .await?;
                deferred_indexes.push(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {} {definition}",
                    quote(&name)
                ));
            }
        }
        let mut loader = Loader {
            tx,
            kinds: HashMap::new(),
            keys,
            deferred_indexes,
        };
        for table in tables {
            let columns = match &mut loader.tx {
                LoadTx::Sqlite(tx) => sqlite_schema::columns(tx, &table).await?,
                LoadTx::SqliteFile(_) => unreachable!("file loads read their columns above"),
                LoadTx::Postgres(tx) => postgres_schema::columns(tx, &table).await?,
            };
            loader.kinds.insert(table, columns.into_iter().collect());
        }
        Ok(loader)
    }

    /// Names of the indexes in the database (a restore must leave the same ones as the migrations create).
    pub async fn index_names(&self) -> StoreResult<BTreeSet<String>> {
        let names: Vec<String> =
            match self.pool() {
                Pool::Sqlite(pool) => {
                    sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index'")
                        .fetch_all(pool)
                        .await?
                }
                Pool::Postgres(pool) => sqlx::query_scalar(
                    "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()",
                )
                .fetch_all(pool)
                .await?,
            };
        Ok(names.into_iter().collect())
    }

    /// Every foreign key in the database (a restore must leave the same ones as the migrations create).
    pub async fn foreign_keys(&self) -> StoreResult<Vec<ForeignKey>> {
        let mut keys = match self.pool() {
            Pool::Sqlite(pool) => {
                let mut connection = pool.acquire().await?;
                let tables = sqlite_schema::tables(&mut connection).await?;
                sqlite_foreign_keys(&mut connection, &tables).await?
            }
            Pool::Postgres(pool) => postgres_foreign_keys(&mut *pool.acquire().await?).await?,
        };
        keys.sort_by(|a, b| (&a.table, &a.column).cmp(&(&b.table, &b.column)));
        Ok(keys)
    }

    /// Row count of every table (for comparing a restore with its manifest).
    pub async fn table_counts(&self) -> StoreResult<BTreeMap<String, i64>> {
        let tables = match self.pool() {
            Pool::Sqlite(pool) => sqlite_schema::tables(&mut *pool.acquire().await?).await?,
            Pool::Postgres(pool) => postgres_schema::tables(&mut *pool.acquire().await?).await?,
        };
        let mut counts = BTreeMap::new();
        for table in tables {
            let sql = format!("SELECT COUNT(*) FROM {}", quote(&table));
            let count: i64 =
                with_pool!(self, |pool| sqlx::query_scalar(&sql).fetch_one(pool).await)?;
            counts.insert(table, count);
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(table: &str, ref_table: &str) -> ForeignKey {
        ForeignKey {
            table: table.to_owned(),
            column: "x".to_owned(),
            ref_table: ref_table.to_owned(),
            ref_column: "id".to_owned(),
        }
    }

    #[test]
    fn parents_come_first() {
        let tables: Vec<String> = ["customer_key", "customer", "app_user", "team"]
            .iter()
            .map(|name| name.to_string())
            .collect();
        let keys = vec![
            key("customer_key", "customer"),
            key("customer", "app_user"),
            key("team", "team"),
        ];
        let order = dependency_order(&tables, &keys);
        let position = |name: &str| order.iter().position(|table| table == name).unwrap();
        assert!(position("app_user") < position("customer"));
        assert!(position("customer") < position("customer_key"));
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn self_references_are_loaded_parents_first() {
        let row = |name: &str, parent: Option<&str>| {
            vec![
                Value::Text(name.to_owned()),
                parent.map_or(Value::Null, |parent| Value::Text(parent.to_owned())),
            ]
        };
        let rows = vec![
            row("leaf", Some("mid")),
            row("mid", Some("root")),
            row("root", None),
        ];
        let ordered = order_self_referencing(rows, 1, 0);
        let names: Vec<&Value> = ordered.iter().map(|row| &row[0]).collect();
        assert_eq!(
            names,
            vec![
                &Value::Text("root".into()),
                &Value::Text("mid".into()),
                &Value::Text("leaf".into())
            ]
        );
    }

    #[test]
    fn copy_rows_escape_text_and_encode_bytes_and_nulls() {
        let columns: Vec<String> = ["a", "b", "c", "d", "e", "f"].map(str::to_owned).to_vec();
        let kinds = [
            ColumnKind::Text,
            ColumnKind::Blob,
            ColumnKind::Bool,
            ColumnKind::Integer,
            ColumnKind::Text,
            ColumnKind::Real,
        ];
        let row = vec![
            Value::Text("tab\there\\ and\nline\r".to_owned()),
            Value::Blob(vec![0x00, 0xab, 0xff]),
            Value::Integer(1),
            Value::Bool(true),
            Value::Null,
            Value::Integer(2),
        ];
        let mut out = Vec::new();
        copy_text_row(&mut out, &row, &kinds, "t", &columns).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "tab\\there\\\\ and\\nline\\r\t\\\\x00abff\tt\t1\t\\N\t2\n"
        );
        let error = copy_text_row(
            &mut Vec::new(),
            &[Value::Text("x".to_owned())],
            &[ColumnKind::Blob],
            "t",
            &columns[..1],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("column t.a: a text value does not fit a Blob column"),
            "{error}"
        );
    }

    #[test]
    fn declared_types_map_to_kinds() {
        for (declared, kind) in [
            ("BIGINT", ColumnKind::Integer),
            ("smallint", ColumnKind::Integer),
            ("BOOLEAN", ColumnKind::Bool),
            ("bytea", ColumnKind::Blob),
            ("BLOB", ColumnKind::Blob),
            ("TEXT", ColumnKind::Text),
            ("double precision", ColumnKind::Real),
        ] {
            assert_eq!(ColumnKind::from_declared(declared), kind, "{declared}");
        }
    }
}
