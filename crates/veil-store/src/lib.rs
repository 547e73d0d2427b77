//! Persistence for Veil: one [`Store`] over SQLite (the embedded default) or PostgreSQL.
//!
//! The store knows tables and columns, never keys or plaintext: it receives ciphertext, masked display values
//! and blind indexes already computed by the layers above, and gives them back. Every query is written once with
//! `$N` placeholders (which both SQLite and PostgreSQL accept) and run against whichever pool is configured; the
//! schemas are kept column-for-column identical, one migrations folder per backend.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use sqlx;

pub mod alerts;
pub mod audit;
pub mod backups;
pub mod checks;
pub mod customers;
pub mod deals;
pub mod displays;
pub mod feedback;
pub mod governance;
pub mod imports;
pub mod incidents;
pub mod industries;
pub mod interactions;
pub mod keyring;
pub mod loyalty;
pub mod messages;
pub mod mfa;
pub mod notes;
pub mod orders;
pub mod policies;
pub mod pool;
pub mod reports;
pub mod segments;
pub mod snapshot;
pub mod teams;
pub mod tickets;
pub mod users;
pub mod vault;

pub use alerts::{AlertFilter, AlertRow, Channel};
pub use audit::{AuditEntry, AuditEvent, AuditFilter, CheckpointRow, PruneRow};
pub use backups::{BackupRow, ErasureRow};
pub use checks::CheckRunRow;
pub use customers::{
    CustomerFilter, CustomerProfile, CustomerRow, CustomerScope, MaskedCustomerRow,
    SealedExportRow, SealedValue, SensitiveField,
};
pub use deals::{
    DealFilter, DealRow, DealStageChangeRow, StageTotalRow, TaskFilter, TaskRow, TaskVisibility,
};
pub use displays::{DisplayRow, DisplayWrite, RemaskProgress};
pub use feedback::{FeedbackRow, FeedbackStatRow, SurveyLinkRow, SurveyRow};
pub use governance::{ConsentRow, DecisionRow, GrantRow, RequestRow, RiskRow};
pub use imports::{ImportBatchWrite, ImportIssueRow, ImportJobRow};
pub use incidents::IncidentRow;
pub use industries::IndustryFieldRow;
pub use interactions::{InteractionRow, TimeCursor};
pub use keyring::{CustomerKeyRow, KeyringRow, MasterKeyMeta};
pub use loyalty::{
    InsufficientPoints, LoyaltyAccountRow, LoyaltyEffect, LoyaltyEntryRow, LoyaltyOutcome,
    TierChangeRow, TierLadder,
};
pub use messages::{MessageRow, TemplateRow};
pub use mfa::{LoginFailureRow, MfaRow};
pub use notes::NoteRow;
pub use orders::{
    CoPurchaseRow, HistoryItem, NeighbourBacklog, NeighbourRow, OrderItemRow, OrderRow, ProductRow,
    PurchaseTotals, RankedProduct, Transition, NEIGHBOUR_DEPTH,
};
pub use policies::PolicyRow;
pub use pool::{ClaimOutcome, PoolEventRow, ReturnCandidate};
pub use reports::{
    AttentionCounts, AttentionRow, PointsBucketRow, RedemptionRow, SlaBucketRow, TicketCountRow,
    TierCountRow,
};
pub use segments::SegmentRow;
pub use snapshot::{ColumnKind, ForeignKey, Loader, RowSink, Snapshot, TableInfo, Value, ValueRef};
pub use teams::{TeamRow, TransferRow};
pub use tickets::{
    EscalationRow, ServiceLink, StatusChangeRow, TicketCommentRow, TicketFilter, TicketRow,
    TicketVisibility,
};
pub use users::{TokenRow, UserRow};
pub use vault::VaultRow;

/// Runs `$body` with `$pool` bound to the concrete pool of `$store`, compiling the body once per backend.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Errors of the storage layer. Messages never contain row contents or passwords.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one Veil understands.
    #[error("unsupported database URL {0}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(DatabaseUrl),
    /// The database could not be reached or opened.
    #[error("cannot connect to the database at {url}")]
    Connect {
        /// Where we tried (password hidden).
        url: DatabaseUrl,
        /// Why it failed.
        source: sqlx::Error,
    },
    /// Applying migrations failed.
    #[error("applying schema migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A uniqueness constraint was violated.
    #[error("a record with the same unique value already exists ({0})")]
    Conflict(String),
    /// An update lost a race with another writer.
    #[error("the record was changed by someone else; reload and retry")]
    StaleWrite,
    /// A data key was wrapped under a key-encryption key that is no longer active; reload the keyring and retry.
    #[error("the key-encryption key is no longer active (keys were rotated); reload and retry")]
    StaleKey,
    /// A snapshot or bulk load could not handle the data or schema (the message names tables and columns only).
    #[error("{0}")]
    Snapshot(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database_error) = &error {
            if database_error.is_unique_violation() {
                return StoreError::Conflict(
                    database_error
                        .constraint()
                        .unwrap_or("unique constraint")
                        .to_owned(),
                );
            }
        }
        StoreError::Database(error)
    }
}

/// Opens the second, synchronous reader on the SQLite file (rusqlite, read-only) that bulk scans use: it decodes
/// rows several times faster than the async driver. Each statement run on it in autocommit mode reads one
/// consistent snapshot.
pub(crate) fn open_sqlite_reader(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(10))?;
    Ok(connection)
}

/// A failure of the synchronous SQLite reader (or of its blocking task), as a store error.
pub(crate) fn reader_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(error.to_string()))
}

/// Result type of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// A database URL whose `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Which backend the URL selects.
    pub fn backend(&self) -> Option<Backend> {
        if self.0.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if self.0.starts_with("postgres://") || self.0.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    fn redacted(&self) -> String {
        let Some(scheme_end) = self.0.find("://") else {
            return self.0.clone();
        };
        let authority_start = scheme_end + 3;
        let rest = &self.0[authority_start..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &self.0[..authority_start],
                        &userinfo[..colon],
                        &self.0[authority_start + at..]
                    ),
                    None => self.0.clone(),
                }
            }
            None => self.0.clone(),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "DatabaseUrl({})", self.redacted())
    }
}

/// The two supported database engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A [`Store`] for one bulk job ([`Store::bulk_session`]): its own connection on SQLite, the shared pool on
/// PostgreSQL.
#[derive(Debug)]
pub struct BulkSession {
    store: Store,
    own_pool: bool,
}

impl std::ops::Deref for BulkSession {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl BulkSession {
    /// Ends the session: closes its own connection (never the shared pool).
    pub async fn close(self) {
        if self.own_pool {
            self.store.close().await;
        }
    }
}

/// SQLite's page size in this database (the default; Veil never changes it).
const SQLITE_PAGE_SIZE: u64 = 4096;

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub enum Pool {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

/// The handle every repository method hangs off. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// The SQLite file, for bulk scans through a second, synchronous reader.
    sqlite_path: Option<std::path::PathBuf>,
}

impl Store {
    /// Connects to the database at `url` (creating an SQLite file if needed). Does not migrate.
    pub async fn connect(url: &DatabaseUrl) -> StoreResult<Store> {
        let connect_error = |source| StoreError::Connect {
            url: url.clone(),
            source,
        };
        let pool = match url.backend() {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(connect_error)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    // Freed pages are overwritten with zeros, so deleted ciphertext does not linger in the file.
                    .pragma("secure_delete", "ON")
                    // 32 MiB page cache per connection: the four blind-index B-trees take random inserts.
                    .pragma("cache_size", "-32768")
                    // Statement journals of multi-row inserts stay in memory instead of temp files.
                    .pragma("temp_store", "MEMORY")
                    // Checkpoint every ~40 MiB of WAL instead of ~4 MiB: index pages rewritten many times
                    // between checkpoints are copied back once.
                    .pragma("wal_autocheckpoint", "10000");
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Pool::Sqlite(pool)
            }
            Some(Backend::Postgres) => {
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url.expose())
                    .await
                    .map_err(connect_error)?;
                Pool::Postgres(pool)
            }
            None => return Err(StoreError::UnsupportedUrl(url.clone())),
        };
        let sqlite_path = match url.backend() {
            Some(Backend::Sqlite) => {
                let rest = url
                    .expose()
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = rest.split('?').next().unwrap_or_default();
                (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
            }
            _ => None,
        };
        Ok(Store { pool, sqlite_path })
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The underlying pool, for tests and maintenance tasks that inspect raw storage.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Writes the SQLite WAL back into the main file (no-op on PostgreSQL).
    pub async fn checkpoint(&self) -> StoreResult<()> {
        if let Pool::Sqlite(pool) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// A store for one bulk write job (an import) to use for its reads and writes. On SQLite it has its own single
    /// connection, opened with the pool's settings and then given a page cache of `cache_mib` MiB and a WAL
    /// checkpoint only every `checkpoint_mib` MiB: the blind-index B-trees take random inserts, so with the
    /// default 32 MiB cache a million-row import re-reads and re-writes the same index pages batch after batch,
    /// and each checkpoint copies them back again. Checkpoints from a long WAL copy each page once however often
    /// it changed. The WAL is truncated to `checkpoint_mib` after each checkpoint. On PostgreSQL it is the same
    /// pool. Close it with [`BulkSession::close`] when the job ends (its memory goes with the connection).
    pub async fn bulk_session(
        &self,
        cache_mib: u32,
        checkpoint_mib: u32,
    ) -> StoreResult<BulkSession> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Ok(BulkSession {
                store: self.clone(),
                own_pool: false,
            });
        };
        let pages = u64::from(checkpoint_mib.max(4)) * 1024 * 1024 / SQLITE_PAGE_SIZE;
        let options = (*pool.connect_options())
            .clone()
            .pragma(
                "cache_size",
                format!("-{}", u64::from(cache_mib.max(2)) * 1024),
            )
            .pragma("wal_autocheckpoint", pages.to_string())
            .pragma(
                "journal_size_limit",
                (u64::from(checkpoint_mib.max(4)) * 1024 * 1024).to_string(),
            );
        let bulk = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(BulkSession {
            store: Store {
                pool: Pool::Sqlite(bulk),
                sqlite_path: self.sqlite_path.clone(),
            },
            own_pool: true,
        })
    }

    /// Closes every connection in the pool.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    /// A named setting.
    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let value = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>("SELECT value FROM setting WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
        })?;
        Ok(value)
    }

    /// Sets a named setting.
    pub async fn put_setting(&self, name: &str, value: &str, now: i64) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO setting (name, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3",
            )
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_hides_password() {
        let url = DatabaseUrl::new("postgres://veil:s3cret@db.internal:5432/veil");
        assert_eq!(url.to_string(), "postgres://veil:***@db.internal:5432/veil");
        assert!(!format!("{url:?}").contains("s3cret"));
        let plain = DatabaseUrl::new("postgres://postgres@127.0.0.1/test");
        assert_eq!(plain.to_string(), "postgres://postgres@127.0.0.1/test");
        assert_eq!(plain.backend(), Some(Backend::Postgres));
        assert_eq!(
            DatabaseUrl::new("sqlite://./veil-data/veil.db").backend(),
            Some(Backend::Sqlite)
        );
        assert_eq!(DatabaseUrl::new("mysql://x").backend(), None);
    }

    #[tokio::test]
    async fn a_bulk_session_is_a_tuned_connection_to_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::new(format!("sqlite://{}", dir.path().join("bulk.db").display()));
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let bulk = store.bulk_session(64, 16).await.unwrap();
        let pragma = |store: &Store, name: &'static str| {
            let Pool::Sqlite(pool) = store.pool().clone() else {
                panic!("an SQLite store");
            };
            async move {
                sqlx::query_scalar::<_, i64>(&format!("PRAGMA {name}"))
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(pragma(&bulk, "cache_size").await, -64 * 1024);
        assert_eq!(
            pragma(&bulk, "wal_autocheckpoint").await,
            16 * 1024 * 1024 / 4096
        );
        assert_eq!(pragma(&bulk, "journal_size_limit").await, 16 * 1024 * 1024);
        assert_eq!(pragma(&bulk, "page_size").await as u64, SQLITE_PAGE_SIZE);
        // The pool's own connections keep their settings.
        assert_eq!(pragma(&store, "cache_size").await, -32768);
        assert_eq!(pragma(&store, "wal_autocheckpoint").await, 10000);
        // What the session writes is the store's, and closing it leaves the store working.
        bulk.put_setting("written_by", "bulk session", 1)
            .await
            .unwrap();
        bulk.close().await;
        assert_eq!(
            store.setting("written_by").await.unwrap().as_deref(),
            Some("bulk session")
        );
    }
}
