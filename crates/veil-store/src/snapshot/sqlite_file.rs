//! The SQLite-file side of snapshots: a synchronous rusqlite connection on the database file, always used from
//! a blocking thread. It hands each row to a [`RowSink`] with its values borrowed from SQLite's own buffers, so a
//! backup copies every value once (into its encoded form) instead of three times through the async driver.

use rusqlite::types::ValueRef as SqlValue;
use rusqlite::Connection;

use super::{quote, ColumnKind, ForeignKey, RowSink, TableInfo, Value, ValueRef};
use crate::{reader_error, StoreError, StoreResult};

/// Opens a read-only connection on `path` and starts a read transaction whose first read fixes the WAL snapshot:
/// everything read on it afterwards sees one point in time while writers carry on.
pub(super) fn open_snapshot(path: &std::path::Path) -> StoreResult<Connection> {
    let connection = crate::open_sqlite_reader(path).map_err(reader_error)?;
    connection
        .execute_batch("BEGIN DEFERRED")
        .map_err(reader_error)?;
    connection
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(reader_error)?;
    Ok(connection)
}

/// User tables, by name.
pub(super) fn tables(connection: &Connection) -> StoreResult<Vec<String>> {
    let mut statement = connection
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .map_err(reader_error)?;
    let names = statement
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(reader_error)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(reader_error)?;
    Ok(names)
}

/// A table's columns in row order, with their kinds.
pub(super) fn columns(
    connection: &Connection,
    table: &str,
) -> StoreResult<Vec<(String, ColumnKind)>> {
    let mut statement = connection
        .prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")
        .map_err(reader_error)?;
    let columns = statement
        .query_map([table], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(reader_error)?
        .map(|column| column.map(|(name, declared)| (name, ColumnKind::from_declared(&declared))))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(reader_error)?;
    Ok(columns)
}

/// The foreign keys of `tables`.
pub(super) fn foreign_keys(
    connection: &Connection,
    tables: &[String],
) -> StoreResult<Vec<ForeignKey>> {
    let mut statement = connection
        .prepare("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)")
        .map_err(reader_error)?;
    let mut keys = Vec::new();
    for table in tables {
        let rows = statement
            .query_map([table], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(reader_error)?;
        for row in rows {
            let (ref_table, column, ref_column) = row.map_err(reader_error)?;
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

/// Every table a backup copies with its columns, parents first (what [`super::Snapshot::tables`] lists).
pub(super) fn table_infos(connection: &Connection) -> StoreResult<Vec<TableInfo>> {
    let names = tables(connection)?;
    let keys = foreign_keys(connection, &names)?;
    super::backed_up_in_order(names, &keys)
        .into_iter()
        .map(|name| {
            let columns = columns(connection, &name)?;
            Ok(TableInfo {
                name,
                columns: columns.into_iter().map(|(column, _)| column).collect(),
            })
        })
        .collect()
}

/// The highest applied migration (0 before any).
pub(super) fn schema_version(connection: &Connection) -> i64 {
    connection
        .query_row(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE",
            [],
            |row| row.get::<_, Option<i64>>(0),
        )
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// Rows in `table`.
pub(super) fn count(connection: &Connection, table: &str) -> StoreResult<i64> {
    connection
        .query_row(
            &format!("SELECT COUNT(*) FROM {}", quote(table)),
            [],
            |row| row.get(0),
        )
        .map_err(reader_error)
}

/// Hands every row of `table` to `sink`, then calls its `end`; returns the row count.
pub(super) fn scan(
    connection: &Connection,
    table: &TableInfo,
    sink: &mut dyn RowSink,
) -> StoreResult<u64> {
    let columns: Vec<String> = table.columns.iter().map(|column| quote(column)).collect();
    let sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
    let mut statement = connection.prepare(&sql).map_err(reader_error)?;
    let mut rows = statement.query([]).map_err(reader_error)?;
    let width = table.columns.len();
    let mut count = 0u64;
    while let Some(row) = rows.next().map_err(reader_error)? {
        let mut values: Vec<ValueRef<'_>> = Vec::with_capacity(width);
        for index in 0..width {
            values.push(match row.get_ref(index).map_err(reader_error)? {
                SqlValue::Null => ValueRef::Null,
                SqlValue::Integer(number) => ValueRef::Integer(number),
                SqlValue::Real(number) => ValueRef::Real(number),
                SqlValue::Text(bytes) => {
                    ValueRef::Text(std::str::from_utf8(bytes).map_err(|_| {
                        StoreError::Snapshot(format!(
                            "column {}.{} holds text that is not UTF-8",
                            table.name, table.columns[index]
                        ))
                    })?)
                }
                SqlValue::Blob(bytes) => ValueRef::Blob(bytes),
            });
        }
        sink.row(&values)?;
        count += 1;
    }
    sink.end()?;
    Ok(count)
}

/// Opens a read-write connection on `path` for a load and starts its write transaction. Foreign keys are
/// enforced as on the server's own connections; the page cache is large because a restore writes every index.
pub(super) fn open_loader(path: &std::path::Path) -> StoreResult<Connection> {
    use rusqlite::OpenFlags;
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(reader_error)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(reader_error)?;
    connection
        .execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA cache_size = -262144; \
             PRAGMA temp_store = MEMORY; BEGIN IMMEDIATE",
        )
        .map_err(reader_error)?;
    Ok(connection)
}

/// `value` as SQLite stores a column of `kind` (booleans as integers), or why it does not fit.
fn parameter<'a>(
    value: &'a Value,
    kind: ColumnKind,
    table: &str,
    column: &str,
) -> StoreResult<SqlValue<'a>> {
    Ok(match (kind, value) {
        (_, Value::Null) => SqlValue::Null,
        (ColumnKind::Integer | ColumnKind::Bool, Value::Integer(number)) => {
            SqlValue::Integer(*number)
        }
        (ColumnKind::Integer | ColumnKind::Bool, Value::Bool(flag)) => {
            SqlValue::Integer(i64::from(*flag))
        }
        (ColumnKind::Real, Value::Real(number)) => SqlValue::Real(*number),
        (ColumnKind::Real, Value::Integer(number)) => SqlValue::Real(*number as f64),
        (ColumnKind::Text, Value::Text(text)) => SqlValue::Text(text.as_bytes()),
        (ColumnKind::Blob, Value::Blob(bytes)) => SqlValue::Blob(bytes),
        (kind, found) => return Err(super::kind_mismatch(table, column, found, kind)),
    })
}

/// Runs `sql` (one row's worth of `?N` parameters, one per column) once per row, binding each value converted
/// to its column's kind.
pub(super) fn write_rows(
    connection: &Connection,
    sql: &str,
    table: &str,
    columns: &[String],
    kinds: &[ColumnKind],
    rows: &[Vec<Value>],
) -> StoreResult<()> {
    let mut statement = connection.prepare_cached(sql).map_err(reader_error)?;
    for row in rows {
        if row.len() != columns.len() {
            return Err(StoreError::Snapshot(format!(
                "a row of {table} has {} values for {} columns",
                row.len(),
                columns.len()
            )));
        }
        for (index, ((value, kind), column)) in row.iter().zip(kinds).zip(columns).enumerate() {
            statement
                .raw_bind_parameter(
                    index + 1,
                    rusqlite::types::ToSqlOutput::Borrowed(parameter(value, *kind, table, column)?),
                )
                .map_err(reader_error)?;
        }
        statement.raw_execute().map_err(reader_error)?;
    }
    Ok(())
}

/// Customer ids in the erasure table.
pub(super) fn erased_ids(connection: &Connection) -> StoreResult<Vec<String>> {
    let mut statement = connection
        .prepare("SELECT customer_id FROM erasure")
        .map_err(reader_error)?;
    let ids = statement
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(reader_error)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(reader_error)?;
    Ok(ids)
}

/// Deletes a customer's data key and row and records the erasure (see [`super::Loader::erase_customer`]).
pub(super) fn erase_customer(
    connection: &Connection,
    customer_id: &str,
    erased_by: Option<&str>,
    erased_at: i64,
) -> StoreResult<bool> {
    let keys = connection
        .execute(
            "DELETE FROM customer_key WHERE customer_id = ?1",
            [customer_id],
        )
        .map_err(reader_error)?;
    let rows = connection
        .execute("DELETE FROM customer WHERE id = ?1", [customer_id])
        .map_err(reader_error)?;
    connection
        .execute(
            "INSERT INTO erasure (customer_id, erased_by, erased_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (customer_id) DO NOTHING",
            rusqlite::params![customer_id, erased_by, erased_at],
        )
        .map_err(reader_error)?;
    Ok(keys + rows > 0)
}

/// Drops the secondary indexes the schema declares (keeping primary keys and unique indexes, so that duplicates
/// are still refused row by row) and returns the statements that create them again: building an index once over
/// a loaded table is much cheaper than keeping it up to date through a million random inserts. Inside the load's
/// transaction, so a load that fails leaves them as they were.
pub(super) fn defer_indexes(connection: &Connection) -> StoreResult<Vec<String>> {
    let mut statement = connection
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND upper(sql) NOT LIKE 'CREATE UNIQUE%' ORDER BY name",
        )
        .map_err(reader_error)?;
    let indexes = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(reader_error)?
        .collect::<rusqlite::Result<Vec<(String, String)>>>()
        .map_err(reader_error)?;
    for (name, _) in &indexes {
        connection
            .execute_batch(&format!("DROP INDEX {}", quote(name)))
            .map_err(reader_error)?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

/// Creates again the indexes [`defer_indexes`] dropped.
pub(super) fn rebuild_indexes(connection: &Connection, statements: &[String]) -> StoreResult<()> {
    for sql in statements {
        connection.execute_batch(sql).map_err(reader_error)?;
    }
    Ok(())
}
