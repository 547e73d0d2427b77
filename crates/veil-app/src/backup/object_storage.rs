//! S3-compatible object storage as a backup destination (through the `object_store` crate).
//!
//! An archive is always built locally first (the `.partial` + rename flow of [`super`]), then uploaded with a
//! multipart upload straight to its final key. Object stores cannot rename, but completing a multipart upload is
//! atomic: until then no object exists under the key, and the catalogue row is written only after completion, so
//! a half-uploaded archive is never visible nor listed. A failed upload is aborted. An upload killed half-way is
//! recorded in its [`UploadJournal`] (upload id and the parts sent, next to the local archive), which the next
//! upload into that directory resumes — or aborts when the local archive is gone.
//! Verify and restore download the object to a temporary file and reuse the local code.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use veil_store::BackupRow;

use super::BackupError;

/// URL scheme of object-storage locations in the catalogue.
pub const SCHEME: &str = "s3://";
/// Size of one uploaded part (S3 requires at least 5 MiB for every part but the last).
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// Suffix of the journal of an upload in progress, next to the local archive.
pub const JOURNAL_SUFFIX: &str = ".upload";

/// Connection settings for S3-compatible object storage (from configuration). `Debug` hides the secret key.
#[derive(Debug, Clone)]
pub struct ObjectStorageSettings {
    /// Default destination, `s3://bucket/prefix`.
    pub url: Option<String>,
    /// Endpoint of an S3-compatible server (MinIO, Ceph, …); AWS when unset.
    pub endpoint: Option<String>,
    /// Region (signing); `us-east-1` by default.
    pub region: String,
    /// Access key id; with none, the AWS default chain (instance metadata) is tried.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<SecretString>,
    /// Allow `http://` endpoints (local test servers).
    pub allow_http: bool,
}

/// A parsed `s3://bucket/prefix/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLocation {
    /// Bucket.
    pub bucket: String,
    /// Key (or prefix), without leading or trailing slashes.
    pub key: String,
}

impl ObjectLocation {
    /// Parses `s3://bucket[/key]`; `None` for anything else.
    pub fn parse(url: &str) -> Option<ObjectLocation> {
        let rest = url.strip_prefix(SCHEME)?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return None;
        }
        Some(ObjectLocation {
            bucket: bucket.to_owned(),
            key: key.trim_matches('/').to_owned(),
        })
    }

    /// The location of `name` under this prefix.
    pub fn join(&self, name: &str) -> ObjectLocation {
        let key = if self.key.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.key)
        };
        ObjectLocation {
            bucket: self.bucket.clone(),
            key,
        }
    }
}

impl std::fmt::Display for ObjectLocation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{SCHEME}{}/{}", self.bucket, self.key)
    }
}

/// Whether a catalogue location is in object storage.
pub fn is_object_location(location: &str) -> bool {
    location.starts_with(SCHEME)
}

fn failure(context: impl Into<String>) -> impl FnOnce(object_store::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::ObjectStorage {
        context,
        detail: source.to_string(),
    }
}

fn io_failure(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::ObjectStorage {
        context,
        detail: source.to_string(),
    }
}

fn client(settings: &ObjectStorageSettings, bucket: &str) -> Result<AmazonS3, BackupError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&settings.region)
        .with_allow_http(settings.allow_http);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(access_key_id) = &settings.access_key_id {
        builder = builder.with_access_key_id(access_key_id);
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose_secret());
    }
    builder
        .build()
        .map_err(failure("invalid object storage settings"))
}

/// The state of one multipart upload, kept next to the local archive (`<archive>.upload`) and rewritten after
/// every part, so that a run killed half-way is resumed (or, without its archive, aborted) by the next one:
/// object stores cannot list the parts of an upload through `object_store`, so the journal is the only record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadJournal {
    /// Where the archive goes, `s3://bucket/key`.
    pub target: String,
    /// The multipart upload's id; empty until it is started.
    pub upload_id: String,
    /// Size of every part but the last.
    pub part_bytes: u64,
    /// Entity tags of the parts uploaded so far; part `i` is `parts[i]`.
    pub parts: Vec<String>,
    /// Keep the local archive after the upload completed.
    pub keep_local: bool,
    /// The catalogue row to insert once the upload completed (its location is `target`).
    pub row: BackupRow,
}

impl UploadJournal {
    /// Where the journal of the upload of `archive` is kept.
    pub fn path_for(archive: &Path) -> PathBuf {
        let mut name = archive.as_os_str().to_owned();
        name.push(JOURNAL_SUFFIX);
        PathBuf::from(name)
    }

    /// The archive a journal at `journal` belongs to.
    pub fn archive_for(journal: &Path) -> Option<PathBuf> {
        let name = journal.to_str()?.strip_suffix(JOURNAL_SUFFIX)?;
        Some(PathBuf::from(name))
    }

    /// Reads a journal.
    pub fn load(path: &Path) -> Result<UploadJournal, BackupError> {
        let text =
            std::fs::read(path).map_err(io_failure(format!("cannot read {}", path.display())))?;
        serde_json::from_slice(&text).map_err(|error| BackupError::ObjectStorage {
            context: format!("cannot read the upload journal {}", path.display()),
            detail: error.to_string(),
        })
    }

    /// Writes the journal atomically (temporary file, sync, rename).
    pub fn save(&self, path: &Path) -> Result<(), BackupError> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let text = serde_json::to_vec(self).map_err(|error| BackupError::ObjectStorage {
            context: "cannot write the upload journal".to_owned(),
            detail: error.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        };
        write().map_err(io_failure(format!("cannot write {}", path.display())))
    }

    fn location(&self) -> Result<ObjectLocation, BackupError> {
        ObjectLocation::parse(&self.target).ok_or_else(|| BackupError::ObjectStorage {
            context: format!("{} is not an s3://bucket/key location", self.target),
            detail: "invalid location".to_owned(),
        })
    }
}

/// Uploads the local archive `source` to `journal.target` with a multipart upload, one part at a time, starting
/// after the parts `journal` already records (a resumed upload) and saving it to `journal_path` after each part;
/// `on_part` runs after each. The caller holds the lock on `source` (see [`lock_archive`]). On an error the upload
/// is left as it is, for the caller to [`abort`] or to resume later. Returns the bytes uploaded by this call.
pub async fn upload(
    settings: &ObjectStorageSettings,
    source: &Path,
    journal: &mut UploadJournal,
    journal_path: &Path,
    on_part: &(dyn Fn() + Sync),
) -> Result<u64, BackupError> {
    let target = journal.location()?;
    let store = client(settings, &target.bucket)?;
    let key = ObjectPath::from(target.key.as_str());
    if journal.upload_id.is_empty() {
        journal.upload_id = store
            .create_multipart(&key)
            .await
            .map_err(failure(format!("cannot start the upload to {target}")))?;
        journal.save(journal_path)?;
    }
    let mut file = std::fs::File::open(source)
        .map_err(io_failure(format!("cannot open {}", source.display())))?;
    let mut sent = 0u64;
    loop {
        let index = journal.parts.len();
        let offset = index as u64 * journal.part_bytes;
        let part_bytes = journal.part_bytes;
        let (returned, chunk) = tokio::task::spawn_blocking(move || {
            let read = (|| {
                file.seek(SeekFrom::Start(offset))?;
                let mut chunk = Vec::with_capacity(part_bytes as usize);
                (&mut file).take(part_bytes).read_to_end(&mut chunk)?;
                Ok::<_, std::io::Error>(chunk)
            })();
            (file, read)
        })
        .await
        .map_err(|error| BackupError::ObjectStorage {
            context: "the upload reader stopped".to_owned(),
            detail: error.to_string(),
        })?;
        file = returned;
        let chunk: Vec<u8> =
            chunk.map_err(io_failure(format!("cannot read {}", source.display())))?;
        if chunk.is_empty() && index > 0 {
            break;
        }
        let length = chunk.len() as u64;
        let part = store
            .put_part(&key, &journal.upload_id, index, PutPayload::from(chunk))
            .await
            .map_err(failure(format!(
                "cannot upload part {} to {target}",
                index + 1
            )))?;
        journal.parts.push(part.content_id);
        journal.save(journal_path)?;
        sent += length;
        on_part();
        if length < part_bytes {
            break;
        }
    }
    let parts = journal
        .parts
        .iter()
        .map(|content_id| PartId {
            content_id: content_id.clone(),
        })
        .collect();
    store
        .complete_multipart(&key, &journal.upload_id, parts)
        .await
        .map_err(failure(format!("cannot complete the upload to {target}")))?;
    Ok(sent)
}

/// Aborts the multipart upload a journal records, so that its parts are deleted (best effort: an upload that no
/// longer exists is fine).
pub async fn abort(settings: &ObjectStorageSettings, journal: &UploadJournal) {
    if journal.upload_id.is_empty() {
        return;
    }
    let Ok(target) = journal.location() else {
        return;
    };
    let result = match client(settings, &target.bucket) {
        Ok(store) => store
            .abort_multipart(&ObjectPath::from(target.key.as_str()), &journal.upload_id)
            .await
            .map_err(failure(format!("cannot abort the upload to {target}"))),
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        tracing::warn!(%target, %error, "cannot abort a multipart upload; a bucket lifecycle rule will");
    }
}

/// The size of the object at `location`, or `None` when there is none.
pub async fn object_size(
    settings: &ObjectStorageSettings,
    location: &str,
) -> Result<Option<u64>, BackupError> {
    let source = ObjectLocation::parse(location).ok_or_else(|| BackupError::ObjectStorage {
        context: format!("{location} is not an s3://bucket/key location"),
        detail: "invalid location".to_owned(),
    })?;
    let store = client(settings, &source.bucket)?;
    match store.head(&ObjectPath::from(source.key.as_str())).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(failure(format!("cannot look up {source}"))(error)),
    }
}

/// Opens `archive` and takes an exclusive advisory lock on it, held until the returned file is dropped (or the
/// process dies): an upload in progress is never resumed by another process at the same time. `None` when another
/// process holds it.
pub fn lock_archive(archive: &Path) -> Result<Option<std::fs::File>, BackupError> {
    let file = std::fs::File::open(archive)
        .map_err(io_failure(format!("cannot open {}", archive.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(error)) => Err(io_failure(format!(
            "cannot lock {}",
            archive.display()
        ))(error)),
    }
}

/// An archive downloaded from object storage into a temporary directory (removed on drop).
#[derive(Debug)]
pub struct DownloadedArchive {
    path: PathBuf,
    _directory: tempfile::TempDir,
}

impl DownloadedArchive {
    /// The local copy.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Deletes the archive at `location` (`s3://bucket/key`), for the retention.
pub async fn delete(settings: &ObjectStorageSettings, location: &str) -> Result<(), BackupError> {
    let source = ObjectLocation::parse(location).ok_or_else(|| BackupError::ObjectStorage {
        context: format!("{location} is not an s3://bucket/key location"),
        detail: "invalid location".to_owned(),
    })?;
    let store = client(settings, &source.bucket)?;
    store
        .delete(&ObjectPath::from(source.key.as_str()))
        .await
        .map_err(failure(format!("cannot delete {source}")))
}

/// Downloads the archive at `location` (`s3://bucket/key`) into a temporary file.
pub async fn download(
    settings: &ObjectStorageSettings,
    location: &str,
) -> Result<DownloadedArchive, BackupError> {
    let source = ObjectLocation::parse(location).ok_or_else(|| BackupError::ObjectStorage {
        context: format!("{location} is not an s3://bucket/key location"),
        detail: "invalid location".to_owned(),
    })?;
    let store = client(settings, &source.bucket)?;
    let directory = tempfile::tempdir()
        .map_err(io_failure("cannot create a temporary directory".to_owned()))?;
    let path = directory.path().join("archive.age");
    let mut file = std::fs::File::create(&path)
        .map_err(io_failure(format!("cannot create {}", path.display())))?;
    let mut stream = store
        .get(&ObjectPath::from(source.key.as_str()))
        .await
        .map_err(failure(format!("cannot download {source}")))?
        .into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(failure(format!("cannot download {source}")))?;
        file.write_all(&chunk)
            .map_err(io_failure(format!("cannot write {}", path.display())))?;
    }
    file.sync_all()
        .map_err(io_failure(format!("cannot write {}", path.display())))?;
    Ok(DownloadedArchive {
        path,
        _directory: directory,
    })
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn locations_parse_and_join() {
        let check = |url: &str, expected: Option<(&str, &str)>| {
            assert_eq!(
                ObjectLocation::parse(url),
                expected.map(|(bucket, key)| ObjectLocation {
                    bucket: bucket.to_owned(),
                    key: key.to_owned()
                }),
                "{url}"
            );
        };
        check("s3://bucket", Some(("bucket", "")));
        check("s3://bucket/", Some(("bucket", "")));
        check(
            "s3://bucket/veil/backups/",
            Some(("bucket", "veil/backups")),
        );
        check("s3:///key", None);
        check("/srv/backups", None);
        let prefix = ObjectLocation::parse("s3://bucket/veil").unwrap();
        assert_eq!(prefix.join("a.age").to_string(), "s3://bucket/veil/a.age");
        let root = ObjectLocation::parse("s3://bucket").unwrap();
        assert_eq!(root.join("a.age").to_string(), "s3://bucket/a.age");
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let settings = ObjectStorageSettings {
            url: None,
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: Some("AKIDEXAMPLE".to_owned()),
            secret_access_key: Some(SecretString::from("wJalrXUtnFEMI-very-secret".to_owned())),
            allow_http: false,
        };
        assert!(!format!("{settings:?}").contains("very-secret"));
    }
}
