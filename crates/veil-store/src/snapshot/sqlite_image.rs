//! Page images of an SQLite database for backups: a consistent image of the live file read page by page inside
//! one read transaction (so writers carry on), and the restored copy's finishing touches (integrity check, counts,
//! erasures replayed, backup catalogue emptied) done on the file before it replaces the target.
//!
//! Everything here is synchronous rusqlite: call it from a blocking thread.

use std::path::Path;

use rusqlite::Connection;

use super::{quote, sqlite_file, TableInfo};
use crate::{reader_error, StoreError, StoreResult};

/// What [`stream_image`] read in its read transaction before the first page: the image's schema version, every
/// backed-up table with its row count, and the page geometry.
#[derive(Debug, Clone)]
pub struct ImageLayout {
    /// The highest applied migration.
    pub schema_version: i64,
    /// Every table a backup copies (parents first) with its rows at that point in time.
    pub tables: Vec<(TableInfo, u64)>,
    /// Bytes per page.
    pub page_size: u64,
    /// Pages in the image.
    pub pages: u64,
}

impl ImageLayout {
    /// Bytes of the image (the size of the database file it rebuilds).
    pub fn bytes(&self) -> u64 {
        self.page_size * self.pages
    }
}

/// Reads a consistent page image of the SQLite database at `source` without copying it to disk first. In one read
/// transaction (WAL mode: the server keeps writing) it reads the schema version and every backed-up table's row
/// count, hands them to `start`, then reads every page in order through SQLite's `sqlite_dbpage` virtual table,
/// which reads through the pager, so the pages are that transaction's snapshot, WAL frames included.
///
/// Pages are gathered into buffers of `chunk_bytes` (rounded down to whole pages); `chunk` receives each filled
/// buffer and returns an empty one to fill next, so a pipeline can recycle its buffers instead of faulting in
/// fresh memory for every chunk. Page 1's header is switched from WAL to rollback-journal mode (bytes 18 and 19),
/// what `PRAGMA journal_mode = DELETE` writes: a restored file is a plain file until a server opens it.
///
/// Against SQLite's backup API into a scratch file (format 2's first version), this writes nothing to disk and
/// reads the database once: at 1,000,000 customers see `docs/benchmarks.md`.
pub fn stream_image(
    source: &Path,
    chunk_bytes: usize,
    start: impl FnOnce(&ImageLayout) -> StoreResult<()>,
    mut chunk: impl FnMut(Vec<u8>) -> StoreResult<Vec<u8>>,
) -> StoreResult<ImageLayout> {
    let connection = sqlite_file::open_snapshot(source)?;
    let schema_version = sqlite_file::schema_version(&connection);
    let pragma = |name: &str| -> StoreResult<u64> {
        connection
            .query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0))
            .map(|value| value.max(0) as u64)
            .map_err(reader_error)
    };
    let (page_size, pages) = (pragma("page_size")?, pragma("page_count")?);
    let mut tables = Vec::new();
    for table in sqlite_file::table_infos(&connection)? {
        let rows = sqlite_file::count(&connection, &table.name)? as u64;
        tables.push((table, rows));
    }
    let layout = ImageLayout {
        schema_version,
        tables,
        page_size,
        pages,
    };
    start(&layout)?;
    let per_chunk = ((chunk_bytes as u64 / page_size).max(1) * page_size) as usize;
    let mut statement = connection
        .prepare("SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")
        .map_err(|error| {
            StoreError::Snapshot(format!(
                "cannot read database pages (this SQLite lacks SQLITE_ENABLE_DBPAGE_VTAB?): {error}"
            ))
        })?;
    let mut rows = statement.query([]).map_err(reader_error)?;
    let mut buffer = Vec::with_capacity(per_chunk);
    let mut next_page = 1u64;
    while let Some(row) = rows.next().map_err(reader_error)? {
        let page = row.get::<_, i64>(0).map_err(reader_error)?;
        let data = row.get_ref(1).map_err(reader_error)?;
        let data = data.as_blob().map_err(reader_error)?;
        if page != next_page as i64 || data.len() as u64 != page_size {
            return Err(StoreError::Snapshot(format!(
                "page {page} ({} bytes) came where page {next_page} ({page_size} bytes) was due",
                data.len()
            )));
        }
        let at = buffer.len();
        buffer.extend_from_slice(data);
        if page == 1 && buffer[at + 18] == 2 && buffer[at + 19] == 2 {
            buffer[at + 18] = 1;
            buffer[at + 19] = 1;
        }
        next_page += 1;
        if buffer.len() >= per_chunk {
            buffer = chunk(std::mem::take(&mut buffer))?;
            buffer.clear();
        }
    }
    if next_page - 1 != pages {
        return Err(StoreError::Snapshot(format!(
            "read {} pages of an image of {pages}",
            next_page - 1
        )));
    }
    if !buffer.is_empty() {
        chunk(buffer)?;
    }
    drop(rows);
    drop(statement);
    connection.execute_batch("COMMIT").map_err(reader_error)?;
    Ok(layout)
}

/// A restored page image, open read-write inside one transaction until [`SqliteImage::commit`].
pub struct SqliteImage {
    connection: Connection,
}

impl std::fmt::Debug for SqliteImage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SqliteImage")
    }
}

impl SqliteImage {
    /// Opens the image at `path` (no other connection may have it open) and begins its write transaction. The
    /// image is switched to a rollback journal first, so that everything committed is in the file itself when it
    /// is renamed into place (a WAL would stay behind under the old name); the server's connections switch it back
    /// to WAL when they open it. A scratch image (not `durable`: verification's) is written without syncs.
    pub fn open(path: &Path, durable: bool) -> StoreResult<SqliteImage> {
        use rusqlite::OpenFlags;
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(reader_error)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))
            .map_err(reader_error)?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(StoreError::Snapshot(format!(
                "the restored image stays in journal mode {mode}"
            )));
        }
        if !durable {
            connection
                .execute_batch("PRAGMA synchronous = OFF")
                .map_err(reader_error)?;
        }
        connection
            .execute_batch(
                "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA cache_size = -65536; \
                 BEGIN IMMEDIATE",
            )
            .map_err(reader_error)?;
        Ok(SqliteImage { connection })
    }

    /// `PRAGMA quick_check`: `None` when the file is sound, else SQLite's first findings (page and b-tree
    /// structure only, never row contents).
    pub fn quick_check(&self) -> StoreResult<Option<String>> {
        let mut statement = self
            .connection
            .prepare("PRAGMA quick_check(5)")
            .map_err(reader_error)?;
        let findings = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(reader_error)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(reader_error)?;
        Ok((findings != ["ok"]).then(|| findings.join("; ")))
    }

    /// The highest applied migration.
    pub fn schema_version(&self) -> i64 {
        sqlite_file::schema_version(&self.connection)
    }

    /// Rows in `table`, or `None` when the image has no such table.
    pub fn count(&self, table: &str) -> StoreResult<Option<i64>> {
        let exists: i64 = self
            .connection
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .map_err(reader_error)?;
        if exists == 0 {
            return Ok(None);
        }
        sqlite_file::count(&self.connection, table).map(Some)
    }

    /// Customer ids in the image's erasure list.
    pub fn erased_ids(&self) -> StoreResult<Vec<String>> {
        sqlite_file::erased_ids(&self.connection)
    }

    /// Erases a customer again, as [`super::Loader::erase_customer`] does. Returns whether a key or row was removed.
    pub fn erase_customer(
        &self,
        customer_id: &str,
        erased_by: Option<&str>,
        erased_at: i64,
    ) -> StoreResult<bool> {
        sqlite_file::erase_customer(&self.connection, customer_id, erased_by, erased_at)
    }

    /// Empties the backup catalogue: it described the source's backups, and a restored database starts with an
    /// empty one, as after a logical restore.
    pub fn clear_backup_catalogue(&self) -> StoreResult<()> {
        self.connection
            .execute_batch(&format!("DELETE FROM {}", quote("backup")))
            .map_err(reader_error)
    }

    /// Commits (into the file itself: see [`SqliteImage::open`]) and closes.
    pub fn commit(self) -> StoreResult<()> {
        self.connection
            .execute_batch("COMMIT")
            .map_err(reader_error)?;
        self.connection
            .close()
            .map_err(|(_, error)| reader_error(error))
    }
}
