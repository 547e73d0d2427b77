//! Backups: create, catalogue, verify and restore encrypted archives of the whole database.
//!
//! - **Create** ([`Veil::create_backup`]) takes one consistent snapshot while the server keeps running and streams
//!   it into an archive (see [`archive`]) written under a `.partial` name, synced, then renamed; only then is it
//!   catalogued as `complete`. SQLite is read as a page image (format version 2): one thread reads the pages inside one
//!   read transaction through `sqlite_dbpage`, one compresses and hashes 64 MiB chunks, one encrypts and writes,
//!   with recycled buffers and nothing written but the archive, so that a restore into SQLite is a decryption and a file copy rather than a million inserts.
//!   PostgreSQL is read table by table inside one transaction into table parts (version 1). A backup killed
//!   half-way leaves at most `.partial` files, which are never listed and are removed by the next backup once they
//!   are a minute old.
//! - **Object storage** ([`Veil::create_backup_in_object_storage`], [`object_storage`]): the archive is built
//!   locally as above, then uploaded to S3-compatible storage with a multipart upload to its final key and only
//!   catalogued (location `s3://bucket/key`) once the upload completed; verify and restore download it first. An
//!   upload killed half-way leaves its [`UploadJournal`], and the next upload resumes it ([`Veil::resume_uploads`]).
//! - **Destinations over the API** ([`Veil::create_backup_to`]): a client names `local` or `s3`, never a path.
//! - **Verify** ([`Veil::verify_backup`]) decrypts the archive, checks every part against the manifest, restores it
//!   into a scratch SQLite database, compares row counts, opens the restored key hierarchy with this server's
//!   master key and decrypts a random sample of customers (the plaintext is dropped at once), and checks that
//!   erased customers have no data key. The result is stored in the catalogue and the audit trail; the newest
//!   verified backup's age is what `veil doctor` checks.
//! - **Restore** ([`restore_to`], [`restore`]) loads an archive into an empty SQLite or PostgreSQL database (so it
//!   also moves an installation from one to the other), checks counts, and erases again every customer in the
//!   archive's erasure list and in a list the caller passes (the live database's): a backup taken before an
//!   erasure does not bring the erased customer back. A page image restored into an SQLite file is written beside
//!   it, checked chunk by chunk, counted and cleaned of erased customers there, then renamed into place; anything
//!   else is loaded in one transaction (an image through a scratch file scanned table by table, the way to
//!   PostgreSQL).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use veil_store::{BackupRow, ErasureRow, Store, StoreError, Value};

use crate::audit::{self, EventExt, Outcome};
use crate::authz::Action;
use crate::customers::reveal;
use crate::error::{AppError, AppResult};
use crate::keys::Progress;
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

pub mod archive;
pub mod object_storage;
#[cfg(test)]
mod object_storage_tests;
pub mod schedule;
#[cfg(test)]
mod tests;

pub use archive::{ArchiveError, Decryption, Encryption, Manifest};
pub use object_storage::{ObjectLocation, ObjectStorageSettings, UploadJournal};

/// A verified backup older than this many days fails `veil doctor`, unless configured otherwise.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 7;
/// How many customers verification decrypts.
pub const SAMPLE_CUSTOMERS: i64 = 100;
/// A `.partial` file untouched this long belongs to a backup that died; the next backup removes it.
pub const STALE_PARTIAL_SECS: u64 = 60;
const FILE_PREFIX: &str = "veil-backup-";
const PARTIAL_SUFFIX: &str = ".partial";

/// Where backups go and how they are encrypted and decrypted (from configuration).
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// Default destination directory.
    pub directory: PathBuf,
    /// How new archives are encrypted; `None` when neither recipients nor a passphrase are configured.
    pub encryption: Option<Encryption>,
    /// How archives are decrypted for verification and restore; `None` when neither an identity file nor a
    /// passphrase is configured.
    pub decryption: Option<Decryption>,
    /// The `backup_age` check fails when the newest verified backup is older than this.
    pub max_age_days: i64,
    /// S3-compatible object storage, when configured.
    pub object_storage: Option<ObjectStorageSettings>,
}

/// Why a backup operation failed. Messages carry no personal data.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A setting is missing.
    #[error("backups are not configured: {0}")]
    NotConfigured(&'static str),
    /// The archive could not be written or read, or failed a check.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A restore target holds data and `--force` was not given.
    #[error(
        "the target database already holds data; pass --force to drop everything in it and restore"
    )]
    TargetNotEmpty,
    /// The archive comes from a newer schema than this build knows.
    #[error("the backup has schema version {backup}, newer than this Veil's {supported}: restore it with a newer Veil")]
    SchemaTooNew {
        /// The archive's.
        backup: i64,
        /// This build's newest.
        supported: i64,
    },
    /// The restored data does not match the manifest, or a row does not fit the schema.
    #[error("the restore check failed: {0}")]
    Mismatch(String),
    /// An upload to or a download from object storage failed (a failed upload is aborted, never catalogued).
    #[error("object storage: {context}: {detail}")]
    ObjectStorage {
        /// What was being done.
        context: String,
        /// The client's error.
        detail: String,
    },
    /// Neither a catalogued id nor a file.
    #[error("no backup {0}: not an id in the catalogue, nor a file")]
    Unknown(String),
    /// A client named a destination this server is not configured with (the API never takes a path).
    #[error("unknown backup destination: {0}")]
    UnknownDestination(String),
}

impl From<BackupError> for AppError {
    fn from(error: BackupError) -> Self {
        AppError::Backup(error)
    }
}

/// A catalogued backup as the API and CLI show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupView {
    /// Id.
    pub id: String,
    /// Where the archive is.
    pub location: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the encrypted file (hex).
    pub sha256: String,
    /// `complete`.
    pub state: String,
    /// Backend it was taken on.
    pub backend: String,
    /// Highest migration applied when taken.
    pub schema_version: i64,
    /// Tables.
    pub tables: i64,
    /// Rows.
    pub rows: i64,
    /// Snapshot time (RFC 3339).
    pub created_at: String,
    /// Seconds since the snapshot.
    pub age_seconds: i64,
    /// The latest verification, if any.
    pub verification: Option<VerificationView>,
}

/// The latest verification of a backup.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerificationView {
    /// Whether every check passed.
    pub ok: bool,
    /// When (RFC 3339).
    pub at: String,
    /// What was checked, or why it failed.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl BackupView {
    fn from_row(row: BackupRow, now: i64) -> Self {
        let verification = match (row.verified_at, row.verify_ok) {
            (Some(at), Some(ok)) => Some(VerificationView {
                ok,
                at: format_time(at),
                detail: row
                    .verify_detail
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or(serde_json::Value::Null),
            }),
            _ => None,
        };
        BackupView {
            age_seconds: (now - row.created_at).max(0) / 1000,
            created_at: format_time(row.created_at),
            id: row.id,
            location: row.location,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            state: row.state,
            backend: row.backend,
            schema_version: row.schema_version,
            tables: row.table_count,
            rows: row.total_rows,
            verification,
        }
    }
}

/// One check of a verification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyCheck {
    /// `decrypt_and_checksums`, `restore_counts`, `master_key`, `sample_decrypt`, `erasure`.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The result of verifying one archive.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyReport {
    /// Every check passed.
    pub ok: bool,
    /// The backup's id, when known (from the catalogue or the archive).
    pub backup_id: Option<String>,
    /// The archive checked.
    pub location: String,
    /// When (RFC 3339).
    pub checked_at: String,
    /// The checks run, in order; a failed one ends the list.
    pub checks: Vec<VerifyCheck>,
    /// Why it failed.
    pub reason: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The archive's backup id.
    pub backup_id: String,
    /// The archive's schema version (the target is migrated past it afterwards).
    pub schema_version: i64,
    /// Backend the archive was taken on.
    pub source_backend: String,
    /// The archive's format version: 1 for table parts, 2 for a page image.
    pub format_version: u32,
    /// Tables loaded.
    pub tables: usize,
    /// Archive parts (version 1) or image chunks (version 2) checked.
    pub parts: usize,
    /// Rows loaded (before erasures were replayed).
    pub rows: u64,
    /// Customers erased again because an erasure list named them.
    pub erasures_replayed: u64,
}

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Drop everything in a non-empty target first.
    pub force: bool,
    /// Erasures to replay besides the archive's own (the live database's).
    pub erasures: Vec<ErasureRow>,
    /// Run `PRAGMA quick_check` on a page image restored into SQLite (verification does; a restore relies on the
    /// chunks' checksums, since the check reads the whole file: see `docs/benchmarks.md`).
    pub integrity_check: bool,
    /// The target is a scratch database thrown away afterwards (verification): a page image restored into it
    /// is not synced to disk. A real restore syncs every chunk as it is written, and the file before it is
    /// renamed into place.
    pub scratch: bool,
}

fn archive_error(error: ArchiveError) -> AppError {
    AppError::Backup(BackupError::Archive(error))
}

fn io_failure(context: String) -> impl FnOnce(std::io::Error) -> AppError {
    move |source| archive_error(ArchiveError::Io { context, source })
}

/// A destination a client of the API may choose: only those this server is configured with, never a path or
/// bucket of the client's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupDestination {
    /// The configured backup directory (`VEIL_BACKUP_DIR`).
    Local,
    /// The configured object storage location (`VEIL_BACKUP_S3_URL`).
    ObjectStorage,
}

impl BackupSettings {
    /// Resolves a client's choice: `local` or the configured directory itself, `s3` or the configured
    /// `s3://bucket/prefix` itself. Anything else, including `s3` when no object storage is configured, is
    /// [`BackupError::UnknownDestination`] with what the server offers.
    pub fn destination(&self, to: &str) -> Result<BackupDestination, BackupError> {
        let configured_url = self
            .object_storage
            .as_ref()
            .and_then(|storage| storage.url.as_deref());
        let to = to.trim();
        if to == "local" || Path::new(to) == self.directory {
            return Ok(BackupDestination::Local);
        }
        if let Some(url) = configured_url {
            let same_url = ObjectLocation::parse(to)
                .is_some_and(|location| Some(location) == ObjectLocation::parse(url));
            if to == "s3" || same_url {
                return Ok(BackupDestination::ObjectStorage);
            }
        }
        let offered = match configured_url {
            Some(url) => format!("\"local\" (the configured backup directory) or \"s3\" ({url})"),
            None => "\"local\" (the configured backup directory); no object storage is configured \
                     (VEIL_BACKUP_S3_URL)"
                .to_owned(),
        };
        Err(BackupError::UnknownDestination(format!(
            "`to` must be {offered}; other paths and buckets cannot be chosen by a client"
        )))
    }
}

/// Where and how [`Veil::create_backup_in_object_storage`] uploads.
struct Upload {
    storage: ObjectStorageSettings,
    prefix: ObjectLocation,
    keep_local: bool,
}

enum WriteCommand {
    Table(String, Vec<String>),
    Rows(archive::EncodedRows),
    Finish,
}

/// Removes `.partial` archives in `directory` untouched for [`STALE_PARTIAL_SECS`] (left by a backup that was
/// killed). Returns how many were removed.
pub fn remove_stale_partials(directory: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(FILE_PREFIX) && name.ends_with(PARTIAL_SUFFIX)) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age.as_secs() >= STALE_PARTIAL_SECS);
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            tracing::warn!(file = %name, "removed the partial archive of an interrupted backup");
            removed += 1;
        }
    }
    removed
}

/// After an upload is catalogued or has failed: removes its journal, and its local archive unless it is kept.
fn forget_upload(archive: &Path, keep_local: bool) {
    if !keep_local {
        let _ = std::fs::remove_file(archive);
    }
    let _ = std::fs::remove_file(UploadJournal::path_for(archive));
}

fn sync_directory(directory: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = std::fs::File::open(directory) {
        let _ = handle.sync_all();
    }
}

impl Veil {
    /// Installs the backup configuration (the CLI and server do so at start-up).
    pub fn set_backup_settings(&self, settings: BackupSettings) {
        *self
            .backup_settings
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(settings));
    }

    /// The backup configuration, if installed.
    pub fn backup_settings(&self) -> Option<Arc<BackupSettings>> {
        self.backup_settings
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn require_backup_settings(&self) -> AppResult<Arc<BackupSettings>> {
        self.backup_settings()
            .ok_or(AppError::Backup(BackupError::NotConfigured(
                "no backup settings are loaded",
            )))
    }

    async fn permit_backup(&self, actor: Option<&Actor>, action: Action) -> AppResult<()> {
        match actor {
            Some(actor) => self.permit_recorded(actor, action, None).await,
            // The CLI runs as the operator who holds the database and the master key.
            None => Ok(()),
        }
    }

    /// Takes a consistent snapshot of the whole database and writes it as an encrypted archive into
    /// `destination` (default: the configured backup directory); catalogues it and records `backup.create`.
    pub async fn create_backup(
        &self,
        actor: Option<&Actor>,
        destination: Option<&Path>,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<BackupView> {
        self.create_backup_with(actor, destination, None, false, progress)
            .await
    }

    /// Like [`Veil::create_backup`], but writes a version 1 (logical) archive from whatever backend: the reader of
    /// older archives is tested with it.
    #[cfg(test)]
    pub(crate) async fn create_logical_backup(
        &self,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<BackupView> {
        self.create_backup_with(None, None, None, true, progress)
            .await
    }

    /// Like [`Veil::create_backup`], but uploads the archive to S3-compatible object storage under `url`
    /// (`s3://bucket/prefix`; default: the configured one) with a multipart upload, and catalogues the object only
    /// once the upload completed. The local copy, built in the backup directory, is deleted afterwards unless
    /// `keep_local`; a failed upload is aborted and leaves neither a catalogue row nor the local copy.
    pub async fn create_backup_in_object_storage(
        &self,
        actor: Option<&Actor>,
        url: Option<&str>,
        keep_local: bool,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<BackupView> {
        let settings = self.require_backup_settings()?;
        let storage =
            settings
                .object_storage
                .clone()
                .ok_or(AppError::Backup(BackupError::NotConfigured(
                    "set VEIL_BACKUP_S3_URL (s3://bucket/prefix) and its credentials",
                )))?;
        let url =
            url.or(storage.url.as_deref())
                .ok_or(AppError::Backup(BackupError::NotConfigured(
                    "set VEIL_BACKUP_S3_URL (s3://bucket/prefix)",
                )))?;
        let prefix = ObjectLocation::parse(url).ok_or_else(|| {
            AppError::Backup(BackupError::ObjectStorage {
                context: format!("{url} is not a valid destination"),
                detail: "expected s3://bucket/prefix".to_owned(),
            })
        })?;
        let upload = Upload {
            storage,
            prefix,
            keep_local,
        };
        self.create_backup_with(actor, None, Some(&upload), false, progress)
            .await
    }

    /// Creates a backup at a destination a client chose by name (`POST /api/v1/backups`): `None` or `local` for
    /// the configured directory, `s3` for the configured object storage (see [`BackupSettings::destination`]).
    /// Authorisation is checked first, so that only admins learn which destinations exist.
    pub async fn create_backup_to(
        &self,
        actor: Option<&Actor>,
        to: Option<&str>,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<BackupView> {
        self.permit_backup(actor, Action::BackupManage).await?;
        let settings = self.require_backup_settings()?;
        let destination = match to {
            None => BackupDestination::Local,
            Some(to) => settings.destination(to)?,
        };
        match destination {
            BackupDestination::Local => self.create_backup(actor, None, progress).await,
            BackupDestination::ObjectStorage => {
                self.create_backup_in_object_storage(actor, None, false, progress)
                    .await
            }
        }
    }

    async fn create_backup_with(
        &self,
        actor: Option<&Actor>,
        destination: Option<&Path>,
        upload: Option<&Upload>,
        logical: bool,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<BackupView> {
        self.permit_backup(actor, Action::BackupManage).await?;
        let settings = self.require_backup_settings()?;
        let encryption =
            settings
                .encryption
                .clone()
                .ok_or(AppError::Backup(BackupError::NotConfigured(
                    "set VEIL_BACKUP_RECIPIENTS (age1… public keys) or VEIL_BACKUP_PASSPHRASE",
                )))?;
        let directory = destination.unwrap_or(&settings.directory).to_owned();
        let result = self
            .write_backup(actor, &directory, encryption, upload, logical, progress)
            .await;
        if let Err(error) = &result {
            let entry = audit::event(actor, "backup.create", Outcome::Failed)
                .detail(serde_json::json!({"reason": error.to_string()}));
            self.record_best_effort(&[entry]).await;
        }
        result
    }

    async fn write_backup(
        &self,
        actor: Option<&Actor>,
        directory: &Path,
        encryption: Encryption,
        upload: Option<&Upload>,
        logical: bool,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<BackupView> {
        if !directory.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(directory)
                .map_err(io_failure(format!("cannot create {}", directory.display())))?;
        }
        let directory = directory
            .canonicalize()
            .map_err(io_failure(format!("cannot open {}", directory.display())))?;
        remove_stale_partials(&directory);
        if let Some(upload) = upload {
            // Uploads a killed run left are finished first (or aborted), so that none lingers half-done.
            self.resume_uploads(actor, &directory, &upload.storage, progress)
                .await;
        }

        let id = uuid::Uuid::now_v7().to_string();
        let created_at_ms = now_ms();
        let stamp = chrono::DateTime::from_timestamp_millis(created_at_ms)
            .unwrap_or_default()
            .format("%Y%m%dT%H%M%SZ");
        let final_path = directory.join(format!("{FILE_PREFIX}{stamp}-{id}.age"));
        let partial_path = directory.join(format!("{FILE_PREFIX}{stamp}-{id}.age{PARTIAL_SUFFIX}"));
        let header = archive::Header {
            format: archive::FORMAT.to_owned(),
            format_version: archive::LOGICAL_FORMAT_VERSION,
            backup_id: id.clone(),
            created_at: format_time(created_at_ms),
            created_at_ms,
            backend: self.store().backend().as_str().to_owned(),
            schema_version: 0,
            veil_version: env!("CARGO_PKG_VERSION").to_owned(),
            rows: 0,
            image_bytes: None,
        };
        let written = match self.store().sqlite_file() {
            Some(source) if !logical => {
                write_image(
                    source.to_owned(),
                    &partial_path,
                    encryption,
                    header,
                    progress,
                )
                .await
            }
            _ => write_logical(self.store(), &partial_path, encryption, header, progress).await,
        };
        let written = match written {
            Ok(written) => written,
            Err(error) => {
                let _ = std::fs::remove_file(&partial_path);
                return Err(error);
            }
        };
        let schema_version = written.manifest.header.schema_version;
        std::fs::rename(&partial_path, &final_path).map_err(io_failure(format!(
            "cannot rename {} into place",
            partial_path.display()
        )))?;
        sync_directory(&directory);
        let row = BackupRow {
            id: id.clone(),
            location: final_path.display().to_string(),
            size_bytes: written.size as i64,
            sha256: written.sha256.clone(),
            state: "complete".to_owned(),
            backend: written.manifest.header.backend.clone(),
            schema_version,
            table_count: written.manifest.tables.len() as i64,
            total_rows: written.manifest.total_rows() as i64,
            created_by: actor.map(|actor| actor.user_id.to_string()),
            created_at: created_at_ms,
            verified_at: None,
            verify_ok: None,
            verify_detail: None,
        };
        if let Some(upload) = upload {
            let name = final_path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = upload.prefix.join(&name).to_string();
            let journal = UploadJournal {
                target: target.clone(),
                upload_id: String::new(),
                part_bytes: object_storage::PART_BYTES as u64,
                parts: Vec::new(),
                keep_local: upload.keep_local,
                row: BackupRow {
                    location: target,
                    ..row
                },
            };
            let lock = object_storage::lock_archive(&final_path)?.ok_or_else(|| {
                AppError::Backup(BackupError::ObjectStorage {
                    context: format!("cannot upload {}", final_path.display()),
                    detail: "another process holds the archive".to_owned(),
                })
            })?;
            let row = self
                .send_archive(&upload.storage, &final_path, lock, journal, progress)
                .await?;
            let view = self.catalogue(actor, row, false).await?;
            forget_upload(&final_path, upload.keep_local);
            return Ok(view);
        }
        self.catalogue(actor, row, false).await
    }

    /// Uploads the local archive at `archive` (whose lock the caller holds, see
    /// [`object_storage::lock_archive`]) as `journal` describes — a new upload, or one a killed run left — and
    /// returns the row to catalogue. An upload that fails here is aborted and leaves nothing: neither the object,
    /// nor the local archive, nor the journal.
    async fn send_archive(
        &self,
        storage: &ObjectStorageSettings,
        archive: &Path,
        lock: std::fs::File,
        mut journal: UploadJournal,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<BackupRow> {
        let journal_path = UploadJournal::path_for(archive);
        if journal.upload_id.is_empty() {
            journal.save(&journal_path)?;
        }
        let on_part = || progress.reached("backup.part_uploaded");
        let uploaded =
            object_storage::upload(storage, archive, &mut journal, &journal_path, &on_part).await;
        drop(lock);
        if let Err(error) = uploaded {
            // A failed upload is no backup: nothing of it stays, here or there.
            object_storage::abort(storage, &journal).await;
            forget_upload(archive, false);
            return Err(error.into());
        }
        // The journal stays until the row is catalogued: a kill in between is finished by `resume_uploads`.
        Ok(journal.row)
    }

    /// Inserts a complete backup into the catalogue and records `backup.create`.
    async fn catalogue(
        &self,
        actor: Option<&Actor>,
        row: BackupRow,
        resumed: bool,
    ) -> AppResult<BackupView> {
        let id = row.id.clone();
        self.store().insert_backup(&row, now_ms()).await?;
        self.record(&[audit::event(actor, "backup.create", Outcome::Ok).detail(
            serde_json::json!({"backup_id": id, "location": row.location, "size_bytes": row.size_bytes,
                               "tables": row.table_count, "rows": row.total_rows, "resumed_upload": resumed}),
        )])
        .await?;
        tracing::info!(backup = %id, bytes = row.size_bytes, rows = row.total_rows, resumed, "backup created");
        Ok(BackupView::from_row(row, now_ms()))
    }

    /// Finishes the uploads that killed runs left in `directory` (a journal next to each archive): an upload whose
    /// archive is still there is resumed from the parts its journal records, then catalogued; one whose archive is
    /// gone is aborted. Uploads another process holds are left alone. Returns the backups catalogued.
    pub async fn resume_uploads(
        &self,
        actor: Option<&Actor>,
        directory: &Path,
        storage: &ObjectStorageSettings,
        progress: &(dyn Progress + Sync),
    ) -> Vec<BackupView> {
        let mut resumed = Vec::new();
        let Ok(entries) = std::fs::read_dir(directory) else {
            return resumed;
        };
        let journals: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name().is_some_and(|name| {
                    let name = name.to_string_lossy();
                    name.starts_with(FILE_PREFIX) && name.ends_with(object_storage::JOURNAL_SUFFIX)
                })
            })
            .collect();
        for journal_path in journals {
            match self
                .resume_upload(actor, &journal_path, storage, progress)
                .await
            {
                Ok(Some(view)) => resumed.push(view),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(journal = %journal_path.display(), %error, "cannot resume an interrupted upload");
                }
            }
        }
        resumed
    }

    async fn resume_upload(
        &self,
        actor: Option<&Actor>,
        journal_path: &Path,
        storage: &ObjectStorageSettings,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<Option<BackupView>> {
        let journal = UploadJournal::load(journal_path)?;
        let Some(archive) = UploadJournal::archive_for(journal_path) else {
            return Ok(None);
        };
        if !archive.is_file() {
            tracing::warn!(target = %journal.target, "aborting an interrupted upload whose local archive is gone");
            object_storage::abort(storage, &journal).await;
            let _ = std::fs::remove_file(journal_path);
            return Ok(None);
        }
        let Some(lock) = object_storage::lock_archive(&archive)? else {
            // Another process is uploading it right now.
            return Ok(None);
        };
        let keep_local = journal.keep_local;
        if self.store().backup(&journal.row.id).await?.is_some() {
            // Catalogued just before the kill: only the clean-up was missing.
            drop(lock);
            forget_upload(&archive, keep_local);
            return Ok(None);
        }
        let completed = object_storage::object_size(storage, &journal.target).await?;
        let row = if completed == Some(journal.row.size_bytes as u64) {
            // Completed just before the kill.
            drop(lock);
            journal.row
        } else {
            tracing::info!(target = %journal.target, parts = journal.parts.len(), "resuming an interrupted upload");
            self.send_archive(storage, &archive, lock, journal, progress)
                .await?
        };
        let view = self.catalogue(actor, row, true).await?;
        forget_upload(&archive, keep_local);
        Ok(Some(view))
    }

    /// Catalogued backups, newest first.
    pub async fn list_backups(&self, actor: Option<&Actor>) -> AppResult<Vec<BackupView>> {
        self.permit_backup(actor, Action::BackupRead).await?;
        let now = now_ms();
        Ok(self
            .store()
            .list_backups(1000)
            .await?
            .into_iter()
            .map(|row| BackupView::from_row(row, now))
            .collect())
    }

    /// Milliseconds since the snapshot of the newest backup whose latest verification passed.
    pub async fn latest_verified_backup_age(&self) -> AppResult<Option<i64>> {
        Ok(self
            .store()
            .newest_verified_backup()
            .await?
            .map(|created_at| (now_ms() - created_at).max(0)))
    }

    /// The archive for `target`: a catalogued id (downloaded first when it is in object storage), or a path.
    /// Returns the local archive, its location and the catalogued id.
    async fn locate_backup(
        &self,
        target: &str,
        settings: &BackupSettings,
    ) -> AppResult<(LocalArchive, String, Option<String>)> {
        if let Some(row) = self.store().backup(target).await? {
            let archive = LocalArchive::fetch(&row.location, settings).await?;
            return Ok((archive, row.location, Some(row.id)));
        }
        let path = PathBuf::from(target);
        if path.is_file() {
            return Ok((LocalArchive::File(path), target.to_owned(), None));
        }
        Err(AppError::Backup(BackupError::Unknown(target.to_owned())))
    }

    /// Verifies one archive (a catalogued id or a file) end to end; stores the result in the catalogue when the
    /// archive is catalogued and records `backup.verify`. A failed check is an `ok: false` report, not an error.
    pub async fn verify_backup(
        &self,
        actor: Option<&Actor>,
        target: &str,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<VerifyReport> {
        self.permit_backup(actor, Action::BackupManage).await?;
        let settings = self.require_backup_settings()?;
        let decryption =
            settings
                .decryption
                .clone()
                .ok_or(AppError::Backup(BackupError::NotConfigured(
                    "set VEIL_BACKUP_IDENTITY (an age identity file) or VEIL_BACKUP_PASSPHRASE",
                )))?;
        let (local, location, catalogued) = self.locate_backup(target, &settings).await?;
        let path = local.path().to_owned();
        let mut report = VerifyReport {
            ok: false,
            backup_id: catalogued.clone(),
            location,
            checked_at: format_time(now_ms()),
            checks: Vec::new(),
            reason: None,
        };
        let outcome = self
            .verify_into_scratch(&path, &decryption, &mut report, progress)
            .await;
        if let Err(error) = outcome {
            report.reason = Some(error.to_string());
        } else {
            report.ok = report.checks.iter().all(|check| check.ok);
            if !report.ok {
                report.reason = report
                    .checks
                    .iter()
                    .find(|check| !check.ok)
                    .map(|check| format!("{}: {}", check.name, check.detail));
            }
        }
        let detail = serde_json::json!({"checks": report.checks, "reason": report.reason});
        let mut recorded = false;
        if let Some(id) = report.backup_id.clone() {
            recorded = self
                .store()
                .record_backup_verification(&id, report.ok, &detail.to_string(), now_ms())
                .await?;
        }
        let outcome = if report.ok {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        self.record(&[
            audit::event(actor, "backup.verify", outcome).detail(serde_json::json!({
            "backup_id": report.backup_id, "location": report.location, "ok": report.ok,
            "reason": report.reason, "catalogued": recorded})),
        ])
        .await?;
        Ok(report)
    }

    async fn verify_into_scratch(
        &self,
        path: &Path,
        decryption: &Decryption,
        report: &mut VerifyReport,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<()> {
        let scratch_dir = tempfile::tempdir()
            .map_err(io_failure("cannot create a scratch directory".to_owned()))?;
        let url = veil_store::DatabaseUrl::new(format!(
            "sqlite://{}",
            scratch_dir.path().join("verify.db").display()
        ));
        let options = RestoreOptions {
            integrity_check: true,
            scratch: true,
            ..RestoreOptions::default()
        };
        let restored = restore_to(path, decryption, &url, &options, progress).await;
        let (restored, scratch) = match restored {
            Ok(restored) => restored,
            Err(error) => {
                let name = match &error {
                    AppError::Backup(BackupError::Archive(ArchiveError::Integrity(_)))
                    | AppError::Backup(BackupError::Archive(ArchiveError::Decrypt(_)))
                    | AppError::Backup(BackupError::Archive(ArchiveError::Format(_))) => {
                        "decrypt_and_checksums"
                    }
                    _ => "restore_counts",
                };
                report.checks.push(VerifyCheck {
                    name: name.to_owned(),
                    ok: false,
                    detail: error.to_string(),
                });
                return Ok(());
            }
        };
        let result = self.verify_checks(&restored, &scratch, report).await;
        scratch.close().await;
        result
    }

    async fn verify_checks(
        &self,
        restored: &RestoreReport,
        scratch: &Store,
        report: &mut VerifyReport,
    ) -> AppResult<()> {
        let mut check = |name: &str, ok: bool, detail: String| {
            report.checks.push(VerifyCheck {
                name: name.to_owned(),
                ok,
                detail,
            });
            ok
        };
        let image = restored.format_version == archive::FORMAT_VERSION;
        check(
            "decrypt_and_checksums",
            true,
            if image {
                format!(
                    "decrypted; {} image chunks match the manifest's SHA-256",
                    restored.parts
                )
            } else {
                format!(
                    "decrypted; {} parts match the manifest's SHA-256",
                    restored.parts
                )
            },
        );
        check(
            "restore_counts",
            true,
            if image {
                format!(
                    "restored the database image into a scratch SQLite file: PRAGMA quick_check ok; {} tables, {} \
                     rows, every count matches the manifest",
                    restored.tables, restored.rows
                )
            } else {
                format!(
                    "restored {} tables, {} rows into a scratch SQLite database; every count matches the manifest",
                    restored.tables, restored.rows
                )
            },
        );
        let backup_id = restored.backup_id.clone();
        let keyring = match self.keyring().open_with_same_master(scratch).await {
            Ok(keyring) => keyring,
            Err(error) => {
                check(
                    "master_key",
                    false,
                    format!("the backup's key hierarchy does not open with this server's master key ({error})"),
                );
                return Ok(());
            }
        };
        check(
            "master_key",
            true,
            "the backup's keys open with this server's master key".to_owned(),
        );
        let sample = scratch.sample_customer_ids(SAMPLE_CUSTOMERS).await?;
        let authority = reveal::RevealAuthority::internal_verification();
        let mut fields = 0usize;
        for id in &sample {
            let row = scratch.customer_row(id).await?;
            let key_row = scratch.customer_key(id).await?;
            let (Some(row), Some(key_row)) = (row, key_row) else {
                check(
                    "sample_decrypt",
                    false,
                    format!("customer {id} has no data key in the backup"),
                );
                return Ok(());
            };
            match reveal::verify_decrypts(&keyring, &authority, &row, &key_row) {
                Ok(opened) => fields += opened,
                Err(error) => {
                    check(
                        "sample_decrypt",
                        false,
                        format!("customer {id} does not decrypt: {error}"),
                    );
                    return Ok(());
                }
            }
        }
        check(
            "sample_decrypt",
            true,
            format!(
                "{} customers ({fields} fields) decrypt with the restored keys",
                sample.len()
            ),
        );
        let erased: Vec<String> = scratch
            .erasures()
            .await?
            .into_iter()
            .map(|erasure| erasure.customer_id)
            .collect();
        let keys_left = scratch.count_customer_keys(&erased).await?;
        check(
            "erasure",
            keys_left == 0,
            if keys_left == 0 {
                format!("{} erased customers have no data key", erased.len())
            } else {
                format!("{keys_left} erased customers still have a data key")
            },
        );
        report.backup_id.get_or_insert(backup_id);
        Ok(())
    }
}

/// Writes a version 1 (logical) archive at `partial_path`: every table read inside one snapshot, encoded as JSON
/// lines on the scan's thread, compressed, hashed and encrypted on the writer's.
async fn write_logical(
    store: &Store,
    partial_path: &Path,
    encryption: Encryption,
    mut header: archive::Header,
    progress: &(dyn Progress + Sync),
) -> AppResult<archive::Written> {
    let mut snapshot = store.snapshot().await?;
    let prepared: AppResult<(i64, Vec<veil_store::TableInfo>, u64)> = async {
        let schema_version = snapshot.schema_version().await?;
        let tables = snapshot.tables().await?;
        let mut total = 0u64;
        for table in &tables {
            total += snapshot.count(&table.name).await? as u64;
        }
        Ok((schema_version, tables, total))
    }
    .await;
    let (schema_version, tables, total) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            let _ = snapshot.finish().await;
            return Err(error);
        }
    };
    header.format_version = archive::LOGICAL_FORMAT_VERSION;
    header.schema_version = schema_version;
    header.rows = total;

    let (sender, mut receiver) = tokio::sync::mpsc::channel::<WriteCommand>(4);
    let writer_path = partial_path.to_owned();
    // The `.partial` file exists from here on: a backup killed while streaming always leaves it behind.
    let created = tokio::task::spawn_blocking(move || {
        archive::ArchiveWriter::create(&writer_path, &encryption, header)
    })
    .await;
    let mut writer = match created {
        Ok(Ok(writer)) => writer,
        failed => {
            let _ = snapshot.finish().await;
            return Err(match failed {
                Ok(Err(error)) => archive_error(error),
                Err(error) => AppError::Internal(format!("the backup writer stopped: {error}")),
                Ok(Ok(_)) => unreachable!("handled above"),
            });
        }
    };
    let writer = tokio::task::spawn_blocking(move || {
        while let Some(command) = receiver.blocking_recv() {
            match command {
                WriteCommand::Table(name, columns) => writer.begin_table(&name, &columns)?,
                WriteCommand::Rows(rows) => writer.push_encoded(rows)?,
                WriteCommand::Finish => return writer.finish(),
            }
        }
        Err(ArchiveError::Cancelled)
    });

    let streamed: AppResult<()> = async {
        let mut done = 0u64;
        for table in &tables {
            sender
                .send(WriteCommand::Table(
                    table.name.clone(),
                    table.columns.clone(),
                ))
                .await
                .map_err(|_| archive_error(ArchiveError::Cancelled))?;
            // The scan encodes on its blocking thread; chunks pass through here (for progress) to the writer's
            // thread, which compresses, hashes and encrypts.
            let (chunks, received) = tokio::sync::mpsc::channel::<archive::EncodedRows>(4);
            let scan = snapshot.scan_table(table, archive::RowEncoder::new(chunks));
            let forward = async {
                // Owned here, so that a forward that fails drops it and unblocks the scan.
                let mut received = received;
                while let Some(chunk) = received.recv().await {
                    done += chunk.rows;
                    progress.update(done, total);
                    sender
                        .send(WriteCommand::Rows(chunk))
                        .await
                        .map_err(|_| archive_error(ArchiveError::Cancelled))?;
                }
                Ok::<(), AppError>(())
            };
            let (scanned, forwarded) = tokio::join!(scan, forward);
            // A writer that stopped explains itself better than the scan it cut short.
            forwarded?;
            scanned?;
            progress.reached("backup.table_sent");
        }
        sender
            .send(WriteCommand::Finish)
            .await
            .map_err(|_| archive_error(ArchiveError::Cancelled))?;
        Ok(())
    }
    .await;
    drop(sender);
    let _ = snapshot.finish().await;
    let written = writer
        .await
        .map_err(|error| AppError::Internal(format!("the backup writer stopped: {error}")));
    finish_writer(streamed, written)
}

/// The archive a writer thread finished, or the error that explains best why it did not.
fn finish_writer(
    streamed: AppResult<()>,
    written: AppResult<Result<archive::Written, ArchiveError>>,
) -> AppResult<archive::Written> {
    match (streamed, written) {
        (Ok(()), Ok(Ok(written))) => Ok(written),
        // The writer's own error explains a cancelled stream best.
        (_, Ok(Err(error))) if !matches!(error, ArchiveError::Cancelled) => {
            Err(archive_error(error))
        }
        (Err(error), _) => Err(error),
        (_, Err(error)) => Err(error),
        (_, Ok(Err(error))) => Err(archive_error(error)),
    }
}

/// Creates `path` empty, readable by its owner only (a page image or a restored database lands there).
fn create_private_file(path: &Path) -> AppResult<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(io_failure(format!("cannot create {}", path.display())))
}

/// Writes a version 2 (page image) archive at `partial_path` from the live SQLite database at `source`, in a
/// pipeline of three threads with recycled buffers: one reads the page image inside one read transaction (the
/// server keeps writing; see [`veil_store::snapshot::stream_sqlite_image`]), one compresses and hashes each chunk,
/// one encrypts and writes. Nothing but the archive touches the disk.
async fn write_image(
    source: PathBuf,
    partial_path: &Path,
    encryption: Encryption,
    mut header: archive::Header,
    progress: &(dyn Progress + Sync),
) -> AppResult<archive::Written> {
    use std::sync::mpsc;
    let (layout_sender, layout) =
        tokio::sync::oneshot::channel::<veil_store::snapshot::ImageLayout>();
    // Raw chunks go to the compressor and come back empty; compressed frames come back from the writer.
    let (to_compressor, raw_chunks) = mpsc::sync_channel::<Vec<u8>>(1);
    let (recycle_raw, reusable_raw) = mpsc::channel::<Vec<u8>>();
    let (recycle_frame, reusable_frames) = mpsc::channel::<Vec<u8>>();
    let stopped = || StoreError::Snapshot("the backup stopped".to_owned());
    let reader = tokio::task::spawn_blocking(move || {
        veil_store::snapshot::stream_sqlite_image(
            &source,
            archive::IMAGE_CHUNK_BYTES,
            move |layout| layout_sender.send(layout.clone()).map_err(|_| stopped()),
            |full| {
                to_compressor.send(full).map_err(|_| stopped())?;
                Ok(reusable_raw
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(archive::IMAGE_CHUNK_BYTES)))
            },
        )
    });
    let (to_forward, mut compressed) = tokio::sync::mpsc::channel::<archive::CompressedChunk>(2);
    let compressor = tokio::task::spawn_blocking(move || -> Result<(), ArchiveError> {
        let mut compressor = archive::ImageCompressor::new()?;
        while let Ok(raw) = raw_chunks.recv() {
            let frame = reusable_frames.try_recv().unwrap_or_default();
            let chunk = compressor.compress(&raw, frame)?;
            let _ = recycle_raw.send(raw);
            if to_forward.blocking_send(chunk).is_err() {
                return Err(ArchiveError::Cancelled);
            }
        }
        Ok(())
    });
    let reader_failed = |joined: Result<
        veil_store::StoreResult<veil_store::snapshot::ImageLayout>,
        _,
    >| match joined {
        Ok(Ok(_)) => AppError::Internal("the image reader ended before its first page".to_owned()),
        Ok(Err(error)) => AppError::from(error),
        Err(error) => AppError::Internal(format!("the image reader stopped: {error}")),
    };
    let Ok(layout) = layout.await else {
        drop(compressed);
        let _ = compressor.await;
        return Err(reader_failed(reader.await));
    };
    let total_bytes = layout.bytes();
    header.format_version = archive::FORMAT_VERSION;
    header.schema_version = layout.schema_version;
    header.rows = layout.tables.iter().map(|(_, rows)| rows).sum();
    header.image_bytes = Some(total_bytes);

    let writer_path = partial_path.to_owned();
    // The `.partial` file exists from here on: a backup killed while streaming always leaves it behind.
    let writer = tokio::task::spawn_blocking(move || {
        let mut writer = archive::ArchiveWriter::create(&writer_path, &encryption, header)?;
        for (table, rows) in &layout.tables {
            writer.add_image_table(&table.name, &table.columns, *rows);
        }
        Ok::<_, ArchiveError>(writer)
    })
    .await
    .map_err(|error| AppError::Internal(format!("the backup writer stopped: {error}")))
    .and_then(|created| created.map_err(archive_error));
    let mut writer = match writer {
        Ok(writer) => writer,
        Err(error) => {
            drop(compressed);
            let _ = compressor.await;
            let _ = reader.await;
            return Err(error);
        }
    };
    let (to_writer, mut writer_receiver) =
        tokio::sync::mpsc::channel::<archive::CompressedChunk>(2);
    let writer = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = writer_receiver.blocking_recv() {
            let _ = recycle_frame.send(writer.push_image_chunk(chunk)?);
        }
        writer.finish()
    });
    let streamed: AppResult<()> = async {
        let mut done = 0u64;
        while let Some(chunk) = compressed.recv().await {
            done += chunk.size;
            to_writer
                .send(chunk)
                .await
                .map_err(|_| archive_error(ArchiveError::Cancelled))?;
            progress.update(done, total_bytes);
            progress.reached("backup.chunk_sent");
        }
        Ok(())
    }
    .await;
    drop(compressed);
    drop(to_writer);
    let compressed = compressor
        .await
        .map_err(|error| AppError::Internal(format!("the image compressor stopped: {error}")))
        .and_then(|result| result.map_err(archive_error));
    let read = match reader.await {
        Ok(Ok(_)) => Ok(()),
        joined => Err(reader_failed(joined)),
    };
    let written = writer
        .await
        .map_err(|error| AppError::Internal(format!("the backup writer stopped: {error}")));
    // A reader that fails stops the pipeline quietly (the others see their input end), so its error comes
    // first when they finished; a reader that was stopped by their failure defers to theirs.
    let written = match (finish_writer(streamed.and(compressed), written), read) {
        (Ok(written), Ok(())) => written,
        (Ok(_), Err(error)) | (Err(error), _) => return Err(error),
    };
    if written
        .manifest
        .image
        .iter()
        .map(|chunk| chunk.size)
        .sum::<u64>()
        != total_bytes
    {
        return Err(AppError::Backup(BackupError::Mismatch(format!(
            "the image holds {} bytes, its pages {total_bytes}",
            written
                .manifest
                .image
                .iter()
                .map(|chunk| chunk.size)
                .sum::<u64>()
        ))));
    }
    Ok(written)
}

/// An archive on local disk: a file, or a temporary copy downloaded from object storage (removed on drop).
#[derive(Debug)]
pub enum LocalArchive {
    /// A local file.
    File(PathBuf),
    /// Downloaded from object storage.
    Downloaded(object_storage::DownloadedArchive),
}

impl LocalArchive {
    /// The archive at a catalogue `location`: the file itself, or a download when it is in object storage.
    pub async fn fetch(location: &str, settings: &BackupSettings) -> AppResult<LocalArchive> {
        if !object_storage::is_object_location(location) {
            return Ok(LocalArchive::File(PathBuf::from(location)));
        }
        let storage = settings
            .object_storage
            .as_ref()
            .ok_or(AppError::Backup(BackupError::NotConfigured(
            "the backup is in object storage: set VEIL_BACKUP_S3_ENDPOINT/REGION and credentials",
        )))?;
        Ok(LocalArchive::Downloaded(
            object_storage::download(storage, location).await?,
        ))
    }

    /// Its path on disk.
    pub fn path(&self) -> &Path {
        match self {
            LocalArchive::File(path) => path,
            LocalArchive::Downloaded(downloaded) => downloaded.path(),
        }
    }
}

/// Loads the archive at `path` into `target`: checks the header, drops everything first when `options.force`
/// (refuses a non-empty target otherwise), migrates the target to the archive's schema version, loads every
/// table in one transaction, checks each table's count against the manifest, erases again every customer in the
/// archive's and `options.erasures`' lists, commits, and migrates the target to this build's newest schema.
pub async fn restore(
    path: &Path,
    decryption: &Decryption,
    target: &Store,
    options: &RestoreOptions,
    progress: &(dyn Progress + Sync),
) -> AppResult<RestoreReport> {
    let header = read_header(path, decryption).await?;
    if header.is_image() {
        return restore_image_by_load(path, decryption, &header, target, options, progress).await;
    }
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Result<archive::ReadEvent, ArchiveError>>(4);
    let reader_path = path.to_owned();
    let reader_decryption = decryption.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let result = archive::read_archive(&reader_path, &reader_decryption, |event| {
            sender
                .blocking_send(Ok(event))
                .map_err(|_| ArchiveError::Cancelled)
        });
        if let Err(error) = result {
            let _ = sender.blocking_send(Err(error));
        }
    });
    let result = load(&mut receiver, target, options, progress).await;
    drop(receiver);
    let _ = reader.await;
    result
}

/// The header of the archive at `path`, decrypting only its start.
async fn read_header(path: &Path, decryption: &Decryption) -> AppResult<archive::Header> {
    let (path, decryption) = (path.to_owned(), decryption.clone());
    tokio::task::spawn_blocking(move || archive::read_header(&path, &decryption))
        .await
        .map_err(|error| AppError::Internal(format!("the backup reader stopped: {error}")))?
        .map_err(archive_error)
}

/// Refuses a restore the target cannot take: an archive of a newer schema, or (without `force`) a target that
/// already holds data.
async fn check_target(
    target: &Store,
    header: &archive::Header,
    options: &RestoreOptions,
) -> AppResult<()> {
    let supported = target.latest_migration();
    if header.schema_version > supported {
        return Err(AppError::Backup(BackupError::SchemaTooNew {
            backup: header.schema_version,
            supported,
        }));
    }
    if !options.force && target.holds_data().await? {
        return Err(AppError::Backup(BackupError::TargetNotEmpty));
    }
    Ok(())
}

/// Restores the archive at `path` into the database at `target_url` and returns the report with the target
/// opened (and migrated to this build's newest schema). A page image (version 2) restored into an SQLite file is
/// written beside the target, checked, and moved into its place, so that the restore costs about a decryption
/// and a file copy and a failed one leaves the target as it was; everything else goes through [`restore`].
pub async fn restore_to(
    path: &Path,
    decryption: &Decryption,
    target_url: &veil_store::DatabaseUrl,
    options: &RestoreOptions,
    progress: &(dyn Progress + Sync),
) -> AppResult<(RestoreReport, Store)> {
    let header = read_header(path, decryption).await?;
    let target = Store::connect(target_url).await?;
    let Some(file) = target
        .sqlite_file()
        .filter(|_| header.is_image())
        .map(Path::to_owned)
    else {
        let report = restore(path, decryption, &target, options, progress).await;
        return match report {
            Ok(report) => Ok((report, target)),
            Err(error) => {
                target.close().await;
                Err(error)
            }
        };
    };
    let checked = check_target(&target, &header, options).await;
    target.close().await;
    checked?;
    let report = restore_image_file(path, decryption, &file, options, progress).await?;
    let target = Store::connect(target_url).await?;
    // An image of an older schema is brought forward like a logical restore is.
    target.migrate().await?;
    Ok((report, target))
}

/// Removes a file (and SQLite's companions of it) on drop, unless it was moved into place.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut name = path.clone().into_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
        }
    }
}

/// Writes the page image of the archive at `path` over the SQLite file `target` (whose emptiness, or `force`,
/// the caller checked): decrypted, checked and decompressed into a file beside it, finished there (counts,
/// erasures, catalogue; `PRAGMA quick_check` when asked), then renamed into place.
async fn restore_image_file(
    path: &Path,
    decryption: &Decryption,
    target: &Path,
    options: &RestoreOptions,
    progress: &(dyn Progress + Sync),
) -> AppResult<RestoreReport> {
    let directory = target
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = directory.join(format!(
        ".{name}.restore-{}{PARTIAL_SUFFIX}",
        uuid::Uuid::now_v7()
    ));
    let mut scratch = Scratch(Some(temporary.clone()));
    let durable = !options.scratch;
    let manifest = materialise_image(path, decryption, &temporary, durable, progress).await?;
    let (image_path, finish_manifest, erasures, integrity_check) = (
        temporary.clone(),
        manifest.clone(),
        options.erasures.clone(),
        options.integrity_check,
    );
    let replayed = tokio::task::spawn_blocking(move || {
        finish_image(
            &image_path,
            &finish_manifest,
            &erasures,
            integrity_check,
            durable,
        )
    })
    .await
    .map_err(|error| AppError::Internal(format!("the restore stopped: {error}")))??;
    // The target's own journal files belong to what is being replaced: SQLite must not replay them on the image.
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut companion = target.to_owned().into_os_string();
        companion.push(suffix);
        let _ = std::fs::remove_file(companion);
    }
    std::fs::rename(&temporary, target).map_err(io_failure(format!(
        "cannot move the restored database into place at {}",
        target.display()
    )))?;
    scratch.0 = None;
    sync_directory(directory);
    Ok(RestoreReport {
        backup_id: manifest.header.backup_id.clone(),
        schema_version: manifest.header.schema_version,
        source_backend: manifest.header.backend.clone(),
        format_version: manifest.header.format_version,
        tables: manifest.tables.len(),
        parts: manifest.image.len(),
        rows: manifest.total_rows(),
        erasures_replayed: replayed,
    })
}

/// Decrypts the page image of the archive at `path` into a new file at `destination` and returns the manifest,
/// which every chunk matched. One thread decrypts and hashes while another decompresses and writes; when
/// `durable`, the writer syncs each chunk as it is written, so the disk writes overlap the decryption of the next
/// chunks instead of all waiting for one sync at the end.
async fn materialise_image(
    path: &Path,
    decryption: &Decryption,
    destination: &Path,
    durable: bool,
    progress: &(dyn Progress + Sync),
) -> AppResult<Manifest> {
    let file = create_private_file(destination)?;
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Result<archive::ReadEvent, ArchiveError>>(2);
    let (reader_path, reader_decryption) = (path.to_owned(), decryption.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let result = archive::read_archive(&reader_path, &reader_decryption, |event| {
            sender
                .blocking_send(Ok(event))
                .map_err(|_| ArchiveError::Cancelled)
        });
        if let Err(error) = result {
            let _ = sender.blocking_send(Err(error));
        }
    });
    let (to_writer, mut chunks) = tokio::sync::mpsc::channel::<(Vec<u8>, u64)>(2);
    let writer_path = destination.to_owned();
    // The reader decrypts and hashes; this thread decompresses (into one reused buffer) and writes.
    let writer = tokio::task::spawn_blocking(move || -> AppResult<()> {
        use std::io::Write;
        let mut file = file;
        let mut decompressor = zstd::bulk::Decompressor::new()
            .map_err(io_failure("cannot start zstd decompression".to_owned()))?;
        let mut chunk = Vec::new();
        while let Some((frame, size)) = chunks.blocking_recv() {
            archive::decompress_image_chunk(&mut decompressor, &frame, size, &mut chunk)
                .map_err(archive_error)?;
            file.write_all(&chunk).map_err(io_failure(format!(
                "cannot write {}",
                writer_path.display()
            )))?;
            if durable {
                file.sync_data()
                    .map_err(io_failure(format!("cannot sync {}", writer_path.display())))?;
            }
        }
        if durable {
            file.sync_all()
                .map_err(io_failure(format!("cannot sync {}", writer_path.display())))?;
        }
        Ok(())
    });
    let read: AppResult<Manifest> = async {
        let mut total = 0u64;
        let mut done = 0u64;
        loop {
            match next_event(&mut receiver).await? {
                archive::ReadEvent::Header(header) => {
                    if !header.is_image() {
                        return Err(archive_error(ArchiveError::Format(
                            "not a page image archive".to_owned(),
                        )));
                    }
                    total = header.image_bytes.unwrap_or_default();
                }
                archive::ReadEvent::Image { frame, size } => {
                    done += size;
                    progress.update(done, done.max(total));
                    to_writer
                        .send((frame, size))
                        .await
                        .map_err(|_| archive_error(ArchiveError::Cancelled))?;
                }
                archive::ReadEvent::Manifest(manifest) => return Ok(manifest),
                archive::ReadEvent::Part { .. } | archive::ReadEvent::Rows(_) => {
                    return Err(archive_error(ArchiveError::Format(
                        "table parts in a page image archive".to_owned(),
                    )))
                }
            }
        }
    }
    .await;
    drop(receiver);
    drop(to_writer);
    let _ = reader.await;
    let written = writer
        .await
        .map_err(|error| AppError::Internal(format!("the restore writer stopped: {error}")))
        .and_then(|result| result);
    // A writer that fails (a chunk that does not decompress, a full disk) ends the read as cancelled: its own
    // error says why.
    match (read, written) {
        (Ok(manifest), Ok(())) => Ok(manifest),
        (Err(AppError::Backup(BackupError::Archive(ArchiveError::Cancelled))), Err(error)) => {
            Err(error)
        }
        (Err(error), _) | (Ok(_), Err(error)) => Err(error),
    }
}

/// Finishes a restored page image in place (blocking): `PRAGMA quick_check` when asked, the schema version and
/// every table's count against the manifest, then, in one transaction, the erasures of the image's own list and
/// of `erasures` replayed and the backup catalogue emptied. Returns how many customers were erased again.
fn finish_image(
    path: &Path,
    manifest: &Manifest,
    erasures: &[ErasureRow],
    integrity_check: bool,
    durable: bool,
) -> AppResult<u64> {
    let image = veil_store::snapshot::SqliteImage::open(path, durable)?;
    let mismatch = |message: String| AppError::Backup(BackupError::Mismatch(message));
    if integrity_check {
        if let Some(findings) = image.quick_check()? {
            return Err(mismatch(format!(
                "the restored database fails PRAGMA quick_check: {findings}"
            )));
        }
    }
    let schema_version = image.schema_version();
    if schema_version != manifest.header.schema_version {
        return Err(mismatch(format!(
            "the image has schema version {schema_version}, the manifest says {}",
            manifest.header.schema_version
        )));
    }
    for table in &manifest.tables {
        match image.count(&table.name)? {
            Some(count) if count as u64 == table.rows => {}
            Some(count) => {
                return Err(mismatch(format!(
                    "table {} has {count} rows after the restore, the manifest says {}",
                    table.name, table.rows
                )))
            }
            None => {
                return Err(mismatch(format!(
                    "table {} is missing from the restored image",
                    table.name
                )))
            }
        }
    }
    let mut all = erasures.to_vec();
    for customer_id in image.erased_ids()? {
        all.push(ErasureRow {
            customer_id,
            erased_by: None,
            erased_at: now_ms(),
        });
    }
    let mut replayed = 0u64;
    for erasure in &all {
        if image.erase_customer(
            &erasure.customer_id,
            erasure.erased_by.as_deref(),
            erasure.erased_at,
        )? {
            replayed += 1;
        }
    }
    image.clear_backup_catalogue()?;
    image.commit()?;
    Ok(replayed)
}

/// Hands a scanned table's rows on as owned batches of [`archive::BATCH_ROWS`] (a page image feeding the loader).
struct RowBatches {
    batch: Vec<Vec<Value>>,
    sender: tokio::sync::mpsc::Sender<Result<archive::ReadEvent, ArchiveError>>,
}

impl RowBatches {
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(&mut self.batch, Vec::with_capacity(archive::BATCH_ROWS));
        self.sender
            .blocking_send(Ok(archive::ReadEvent::Rows(rows)))
            .map_err(|_| StoreError::Snapshot("the restore stopped".to_owned()))
    }
}

impl veil_store::RowSink for RowBatches {
    fn row(&mut self, values: &[veil_store::ValueRef<'_>]) -> Result<(), StoreError> {
        use veil_store::ValueRef;
        self.batch.push(
            values
                .iter()
                .map(|value| match *value {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(number) => Value::Integer(number),
                    ValueRef::Real(number) => Value::Real(number),
                    ValueRef::Text(text) => Value::Text(text.to_owned()),
                    ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
                    ValueRef::Bool(flag) => Value::Bool(flag),
                })
                .collect(),
        );
        if self.batch.len() >= archive::BATCH_ROWS {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn end(&mut self) -> Result<(), StoreError> {
        self.flush()
    }
}

/// Restores a page image into any store through the logical loader (the way from SQLite to PostgreSQL): the
/// image is materialised in a scratch directory, then scanned table by table into the same events a version 1
/// archive yields.
async fn restore_image_by_load(
    path: &Path,
    decryption: &Decryption,
    header: &archive::Header,
    target: &Store,
    options: &RestoreOptions,
    progress: &(dyn Progress + Sync),
) -> AppResult<RestoreReport> {
    check_target(target, header, options).await?;
    let scratch_dir =
        tempfile::tempdir().map_err(io_failure("cannot create a scratch directory".to_owned()))?;
    let image = scratch_dir.path().join("image.db");
    let manifest = materialise_image(path, decryption, &image, false, progress).await?;
    let chunks = manifest.image.len();
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Result<archive::ReadEvent, ArchiveError>>(4);
    let feeder = tokio::spawn(async move {
        let fed: AppResult<()> = async {
            let closed = || archive_error(ArchiveError::Cancelled);
            sender
                .send(Ok(archive::ReadEvent::Header(manifest.header.clone())))
                .await
                .map_err(|_| closed())?;
            let mut snapshot = veil_store::Snapshot::of_sqlite_file(&image).await?;
            for table in snapshot.tables().await? {
                sender
                    .send(Ok(archive::ReadEvent::Part {
                        table: table.name.clone(),
                        columns: table.columns.clone(),
                    }))
                    .await
                    .map_err(|_| closed())?;
                let sink = RowBatches {
                    batch: Vec::with_capacity(archive::BATCH_ROWS),
                    sender: sender.clone(),
                };
                snapshot.scan_table(&table, sink).await?;
            }
            snapshot.finish().await?;
            sender
                .send(Ok(archive::ReadEvent::Manifest(manifest)))
                .await
                .map_err(|_| closed())?;
            Ok(())
        }
        .await;
        if let Err(error) = fed {
            let _ = sender
                .send(Err(ArchiveError::Format(format!(
                    "cannot read the restored image: {error}"
                ))))
                .await;
        }
        drop(scratch_dir);
    });
    let result = load(&mut receiver, target, options, progress).await;
    drop(receiver);
    let _ = feeder.await;
    result.map(|report| RestoreReport {
        parts: chunks,
        ..report
    })
}

async fn next_event(
    receiver: &mut tokio::sync::mpsc::Receiver<Result<archive::ReadEvent, ArchiveError>>,
) -> AppResult<archive::ReadEvent> {
    match receiver.recv().await {
        Some(Ok(event)) => Ok(event),
        Some(Err(error)) => Err(archive_error(error)),
        None => Err(archive_error(ArchiveError::Cancelled)),
    }
}

fn mismatch(error: StoreError) -> AppError {
    match error {
        StoreError::Snapshot(message) => AppError::Backup(BackupError::Mismatch(message)),
        other => AppError::Store(other),
    }
}

async fn load(
    receiver: &mut tokio::sync::mpsc::Receiver<Result<archive::ReadEvent, ArchiveError>>,
    target: &Store,
    options: &RestoreOptions,
    progress: &(dyn Progress + Sync),
) -> AppResult<RestoreReport> {
    let archive::ReadEvent::Header(header) = next_event(receiver).await? else {
        return Err(archive_error(ArchiveError::Format(
            "the archive does not start with its header".to_owned(),
        )));
    };
    let supported = target.latest_migration();
    if header.schema_version > supported {
        return Err(AppError::Backup(BackupError::SchemaTooNew {
            backup: header.schema_version,
            supported,
        }));
    }
    if target.holds_data().await? {
        if !options.force {
            return Err(AppError::Backup(BackupError::TargetNotEmpty));
        }
        target.drop_everything().await?;
    }
    target.migrate_to(header.schema_version).await?;
    let mut loader = target.begin_load().await?;
    let mut current: Option<CurrentTable> = None;
    let mut buffered: Vec<Vec<Value>> = Vec::new();
    let mut done = 0u64;
    let mut parts = 0usize;
    // A row the database refuses (say, a foreign key to a part that is missing) may be a symptom of a damaged
    // archive: keep reading so that the archive's own finding, which names the cause, wins.
    let mut failure: Option<AppError> = None;
    let manifest = loop {
        match next_event(receiver).await? {
            archive::ReadEvent::Header(_) => {
                return Err(archive_error(ArchiveError::Format(
                    "a second header".to_owned(),
                )))
            }
            archive::ReadEvent::Part { table, columns } => {
                parts += 1;
                let same = current.as_ref().is_some_and(|(name, _, _)| *name == table);
                if !same {
                    if failure.is_none() {
                        failure = flush_buffered(&mut loader, &current, &mut buffered)
                            .await
                            .err();
                    }
                    buffered.clear();
                    let self_reference =
                        loader
                            .self_reference(&table)
                            .and_then(|(column, ref_column)| {
                                let position = |name: &str| columns.iter().position(|c| c == name);
                                Some((position(&column)?, position(&ref_column)?))
                            });
                    current = Some((table, columns, self_reference));
                }
            }
            archive::ReadEvent::Rows(rows) => {
                let Some((table, columns, self_reference)) = &current else {
                    return Err(archive_error(ArchiveError::Format(
                        "rows outside a part".to_owned(),
                    )));
                };
                done += rows.len() as u64;
                if failure.is_some() {
                    // Only reading on, to check the archive.
                } else if self_reference.is_some() {
                    buffered.extend(rows);
                } else if let Err(error) = loader.insert_rows(table, columns, rows).await {
                    failure = Some(AppError::Backup(BackupError::Mismatch(format!(
                        "loading table {table}: {error}"
                    ))));
                }
                progress.update(done, header.rows.max(done));
            }
            archive::ReadEvent::Manifest(manifest) => break manifest,
            archive::ReadEvent::Image { .. } => {
                return Err(archive_error(ArchiveError::Format(
                    "an image chunk in a logical archive".to_owned(),
                )))
            }
        }
    };
    if let Some(error) = failure {
        return Err(error);
    }
    flush_buffered(&mut loader, &current, &mut buffered).await?;
    for table in &manifest.tables {
        let count = loader.count(&table.name).await.map_err(mismatch)?;
        if count as u64 != table.rows {
            return Err(AppError::Backup(BackupError::Mismatch(format!(
                "table {} has {count} rows after the restore, the manifest says {}",
                table.name, table.rows
            ))));
        }
    }
    let mut erasures = options.erasures.clone();
    for customer_id in loader.erased_ids().await? {
        erasures.push(ErasureRow {
            customer_id,
            erased_by: None,
            erased_at: now_ms(),
        });
    }
    let mut replayed = 0u64;
    for erasure in &erasures {
        if loader
            .erase_customer(
                &erasure.customer_id,
                erasure.erased_by.as_deref(),
                erasure.erased_at,
            )
            .await?
        {
            replayed += 1;
        }
    }
    loader.commit().await?;
    target.migrate().await?;
    Ok(RestoreReport {
        backup_id: manifest.header.backup_id.clone(),
        schema_version: manifest.header.schema_version,
        source_backend: manifest.header.backend.clone(),
        format_version: manifest.header.format_version,
        tables: manifest.tables.len(),
        parts,
        rows: manifest.total_rows(),
        erasures_replayed: replayed,
    })
}

/// The table being loaded: name, columns, and the positions of a self-referencing key and its target column.
type CurrentTable = (String, Vec<String>, Option<(usize, usize)>);

async fn flush_buffered(
    loader: &mut veil_store::Loader,
    current: &Option<CurrentTable>,
    buffered: &mut Vec<Vec<Value>>,
) -> AppResult<()> {
    if let Some((table, columns, Some((column, ref_column)))) = current {
        let rows = veil_store::snapshot::order_self_referencing(
            std::mem::take(buffered),
            *column,
            *ref_column,
        );
        for chunk in rows.chunks(archive::BATCH_ROWS) {
            loader
                .insert_rows(table, columns, chunk.to_vec())
                .await
                .map_err(mismatch)?;
        }
    }
    Ok(())
}
