//! S3-compatible object storage as a backup destination (through the `object_store` crate).
//!
//! An archive is always built locally first (the `.partial` + rename flow of [`super`]), then uploaded with a
//! multipart upload straight to its final key. Object stores cannot rename, but completing a multipart upload is
//! atomic: until then no object exists under the key, and a failed upload is aborted, so a half-uploaded archive
//! is never visible — and the catalogue row is written only after completion, so it is never listed either.
//! Verify and restore download the object to a temporary file and reuse the local code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::secrecy::{ExposeSecret, SecretString};
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};

use super::BackupError;

/// URL scheme of object-storage locations in the catalogue.
pub const SCHEME: &str = "s3://";
/// Size of one uploaded part (S3 requires at least 5 MiB for every part but the last).
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

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

fn client(
    settings: &ObjectStorageSettings,
    bucket: &str,
) -> Result<Arc<dyn ObjectStore>, BackupError> {
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
    let store = builder
        .build()
        .map_err(failure("invalid object storage settings"))?;
    Ok(Arc::new(store))
}

/// Uploads the local file `source` to `target` with a multipart upload; aborts the upload on any failure, so
/// that nothing is left under the key. Returns the bytes uploaded.
pub async fn upload(
    settings: &ObjectStorageSettings,
    source: &Path,
    target: &ObjectLocation,
) -> Result<u64, BackupError> {
    let store = client(settings, &target.bucket)?;
    let key = ObjectPath::from(target.key.as_str());
    let upload = store
        .put_multipart(&key)
        .await
        .map_err(failure(format!("cannot start the upload to {target}")))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let sent = send_parts(&mut writer, source, target).await;
    let sent = match sent {
        Ok(sent) => sent,
        Err(error) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(%target, error = %abort, "cannot abort the failed multipart upload");
            }
            return Err(error);
        }
    };
    // `finish` aborts the upload itself when completing it fails.
    writer
        .finish()
        .await
        .map_err(failure(format!("cannot complete the upload to {target}")))?;
    Ok(sent)
}

async fn send_parts(
    writer: &mut WriteMultipart,
    source: &Path,
    target: &ObjectLocation,
) -> Result<u64, BackupError> {
    let mut file = std::fs::File::open(source)
        .map_err(io_failure(format!("cannot open {}", source.display())))?;
    let mut sent = 0u64;
    loop {
        let (returned, chunk) = tokio::task::spawn_blocking(move || {
            let mut chunk = Vec::with_capacity(PART_BYTES);
            let read = (&mut file).take(PART_BYTES as u64).read_to_end(&mut chunk);
            (file, read.map(|_| chunk))
        })
        .await
        .map_err(|error| BackupError::ObjectStorage {
            context: "the upload reader stopped".to_owned(),
            detail: error.to_string(),
        })?;
        file = returned;
        let chunk = chunk.map_err(io_failure(format!("cannot read {}", source.display())))?;
        if chunk.is_empty() {
            break;
        }
        writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(failure(format!("cannot upload a part to {target}")))?;
        sent += chunk.len() as u64;
        writer.write(&chunk);
    }
    // Wait for every part here, so that a failed part is aborted by the caller.
    writer
        .wait_for_capacity(0)
        .await
        .map_err(failure(format!("cannot upload a part to {target}")))?;
    Ok(sent)
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
