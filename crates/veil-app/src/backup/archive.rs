//! The backup archive format: one file, an `age`-encrypted tar stream, in two versions.
//!
//! ```text
//! version 1, logical (written for PostgreSQL sources; read from either)
//! age( tar(
//!   header.json                        format, version, backup id, created at, backend, schema version
//!   tables/<table>/<n>.jsonl.zst       one or more parts per table, parents before children (foreign keys)
//!   …
//!   manifest.json                      the header again, and per table: columns, row count, and per part
//! ))                                   its row count, size and SHA-256 (of the compressed bytes)
//!
//! version 2, page image (written for SQLite sources)
//! age( tar(
//!   header.json                        as in version 1, format_version 2
//!   image/<n>.db.zst                   the database file at one point in time, in chunks of IMAGE_CHUNK_BYTES,
//!   …                                  each its own zstd frame
//!   manifest.json                      the header again; per table its columns and row count (COUNT(*) in the
//! ))                                   image's read transaction); per chunk its size, compressed size and SHA-256
//! ```
//!
//! A version 1 part is zstd-compressed JSON lines: a first line `{"table": …, "columns": […]}`, then one JSON array
//! per row whose values are typed: `null`, an integer, a string, `true`/`false`, `{"f": 1.5}` for a real and
//! `{"b": "<base64>"}` for bytes. Parts hold at most [`PART_ROWS`] rows, so a reader or writer never holds more
//! than one part in memory. A version 2 image is the database's pages read in one read transaction (page 1
//! switched to rollback-journal mode): restoring it into SQLite is a file copy, and restoring it into PostgreSQL scans the materialised file table by table into the same loader a
//! version 1 archive feeds. The manifest comes last because it carries every part's or chunk's checksum; the header
//! comes first so that a restore knows the schema version, and which version it reads, before the first byte of
//! data.
//!
//! Either version holds the database's own bytes: personal fields are ciphertext, masked values and blind indexes,
//! and the wrapped keys are there (a restore needs them), but no master key and no unwrapped key. Decrypting needs
//! an age identity (X25519) or the backup passphrase; `age -d -i key.txt FILE | tar x` unpacks an archive without
//! Veil, and `cat image/*.db.zst | zstd -d > veil.db` rebuilds a version 2 database file.

use crate::audit::hex;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use age::secrecy::SecretString;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use veil_store::{RowSink, StoreError, Value, ValueRef};

/// `format` of every archive.
pub const FORMAT: &str = "veil-backup";
/// The newest archive format version, written for SQLite sources: a page image (see the module documentation).
pub const FORMAT_VERSION: u32 = 2;
/// The logical format version (table parts), written for PostgreSQL sources and read from either.
pub const LOGICAL_FORMAT_VERSION: u32 = 1;
/// Bytes of the database file per image chunk (small in this crate's tests, so that images span several chunks).
pub const IMAGE_CHUNK_BYTES: usize = if cfg!(test) { 64 << 10 } else { 64 << 20 };
/// zstd level of image chunks: -3, one of zstd's fast negative levels. At 1,000,000 customers the 1.56 GB image
/// compresses to 48% at -3 for 2.6 s of CPU, to 44% at level 1 for 6.2 s (too slow for a backup that must keep
/// within 1.5× of `sqlite3 .backup` + `age`), and not at all without compression, which would double what is
/// encrypted, hashed, written and decrypted (see `docs/benchmarks.md`).
pub const IMAGE_ZSTD_LEVEL: i32 = -3;
/// Name of the first tar entry.
pub const HEADER_NAME: &str = "header.json";
/// Name of the last tar entry.
pub const MANIFEST_NAME: &str = "manifest.json";
/// Rows per part (a handful in this crate's tests, so that they exercise tables split over several parts).
pub const PART_ROWS: u64 = if cfg!(test) { 3 } else { 50_000 };
/// Rows per batch handed between the database and the archive.
pub const BATCH_ROWS: usize = 5_000;
/// Bytes of encoded rows handed from the database scan to the compressor at a time.
pub const CHUNK_BYTES: usize = 1 << 20;
/// zstd level of the parts: 1, the fastest standard level. Most of a Veil database is ciphertext, which no level
/// compresses; higher levels cost time on it for next to nothing.
pub const ZSTD_LEVEL: i32 = 1;

/// Everything that can be wrong with writing or reading an archive. Messages name files, parts, tables and counts,
/// never row contents.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// The archive cannot be decrypted with what we were given.
    #[error("cannot decrypt the backup: {0}")]
    Decrypt(String),
    /// The archive is not a Veil backup of a format this build reads.
    #[error("not a readable Veil backup: {0}")]
    Format(String),
    /// The archive decrypts but its contents do not match its manifest.
    #[error("the backup fails its integrity check: {0}")]
    Integrity(String),
    /// The other side of the pipeline stopped.
    #[error("the backup was cancelled")]
    Cancelled,
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let context = context.into();
    move |source| ArchiveError::Io { context, source }
}

/// How archives are encrypted.
#[derive(Clone)]
pub enum Encryption {
    /// To these age X25519 recipients (`age1…`).
    Recipients(Vec<age::x25519::Recipient>),
    /// With a passphrase (age's scrypt recipient).
    Passphrase(SecretString),
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encryption::Recipients(recipients) => {
                write!(
                    formatter,
                    "Encryption::Recipients({} keys)",
                    recipients.len()
                )
            }
            Encryption::Passphrase(_) => formatter.write_str("Encryption::Passphrase(<redacted>)"),
        }
    }
}

/// How archives are decrypted.
#[derive(Clone)]
pub enum Decryption {
    /// With the age identities (`AGE-SECRET-KEY-1…` lines) of an identity file's contents.
    Identities(SecretString),
    /// With the passphrase.
    Passphrase(SecretString),
}

impl std::fmt::Debug for Decryption {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decryption::Identities(_) => formatter.write_str("Decryption::Identities(<redacted>)"),
            Decryption::Passphrase(_) => formatter.write_str("Decryption::Passphrase(<redacted>)"),
        }
    }
}

/// Parses comma-separated `age1…` recipients.
pub fn parse_recipients(list: &str) -> Result<Vec<age::x25519::Recipient>, String> {
    let recipients: Vec<age::x25519::Recipient> = list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<age::x25519::Recipient>()
                .map_err(|_| format!("`{item}` is not an age X25519 recipient (age1…)"))
        })
        .collect::<Result<_, _>>()?;
    if recipients.is_empty() {
        return Err("no recipients given".to_owned());
    }
    Ok(recipients)
}

/// A new age X25519 key pair: the public key (`age1…`, for `VEIL_BACKUP_RECIPIENTS`) and the identity
/// (`AGE-SECRET-KEY-1…`, the contents of a `VEIL_BACKUP_IDENTITY` file).
pub fn generate_identity() -> (String, SecretString) {
    let identity = age::x25519::Identity::generate();
    (identity.to_public().to_string(), identity.to_string())
}

/// What the first entry says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The backup's id (also its catalogue id).
    pub backup_id: String,
    /// Snapshot time, RFC 3339.
    pub created_at: String,
    /// Snapshot time, Unix ms.
    pub created_at_ms: i64,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Highest migration applied in the source database.
    pub schema_version: i64,
    /// Version of Veil that wrote it.
    pub veil_version: String,
    /// Rows in the snapshot (for progress; the manifest has the exact per-table counts).
    pub rows: u64,
    /// Version 2: bytes of the database image (for progress; the manifest has every chunk's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_bytes: Option<u64>,
}

/// One part in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartManifest {
    /// Tar entry name.
    pub name: String,
    /// Rows in the part.
    pub rows: u64,
    /// Compressed size.
    pub bytes: u64,
    /// SHA-256 of the compressed bytes, hex.
    pub sha256: String,
}

/// One chunk of a version 2 page image in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageChunkManifest {
    /// Tar entry name.
    pub name: String,
    /// Bytes of the database file it holds.
    pub size: u64,
    /// Compressed size.
    pub bytes: u64,
    /// SHA-256 of the compressed bytes, hex.
    pub sha256: String,
}

/// One chunk of a page image, compressed and hashed (see [`compress_image_chunk`]).
#[derive(Debug)]
pub struct CompressedChunk {
    /// Bytes of the database file it holds.
    pub size: u64,
    /// The zstd frame.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, hex.
    pub sha256: String,
}

/// Compresses and hashes chunks of a page image (CPU only: the pipeline runs it on its own thread), keeping one
/// zstd context for every chunk.
pub struct ImageCompressor {
    zstd: zstd::bulk::Compressor<'static>,
}

impl ImageCompressor {
    /// A compressor at [`IMAGE_ZSTD_LEVEL`].
    pub fn new() -> Result<ImageCompressor, ArchiveError> {
        let zstd = zstd::bulk::Compressor::new(IMAGE_ZSTD_LEVEL)
            .map_err(io_error("cannot start zstd compression"))?;
        Ok(ImageCompressor { zstd })
    }

    /// Compresses `chunk` into `output` (a recycled buffer: its contents are replaced, its memory reused) and
    /// hashes the frame.
    pub fn compress(
        &mut self,
        chunk: &[u8],
        mut output: Vec<u8>,
    ) -> Result<CompressedChunk, ArchiveError> {
        output.clear();
        output.reserve(zstd::zstd_safe::compress_bound(chunk.len()));
        self.zstd
            .compress_to_buffer(chunk, &mut output)
            .map_err(io_error("cannot compress the database image"))?;
        Ok(CompressedChunk {
            size: chunk.len() as u64,
            sha256: hex(&Sha256::digest(&output)),
            bytes: output,
        })
    }
}

/// One table in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableManifest {
    /// Table name.
    pub name: String,
    /// Column names, in row order.
    pub columns: Vec<String>,
    /// Rows in the table.
    pub rows: u64,
    /// Its parts, in order.
    pub parts: Vec<PartManifest>,
}

/// The last entry: the header and every table's parts and checksums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The header, repeated.
    #[serde(flatten)]
    pub header: Header,
    /// Tables in load order (version 2: with no parts, their counts taken on the image).
    pub tables: Vec<TableManifest>,
    /// Version 2: the page image's chunks, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image: Vec<ImageChunkManifest>,
}

impl Manifest {
    /// Rows over all tables.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|table| table.rows).sum()
    }
}

/// Appends one row as a JSON line (see the module documentation for the typed values).
pub fn encode_row(out: &mut Vec<u8>, values: &[ValueRef<'_>]) {
    out.push(b'[');
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        match *value {
            ValueRef::Null => out.extend_from_slice(b"null"),
            ValueRef::Integer(number) => {
                out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes())
            }
            ValueRef::Real(number) => {
                out.extend_from_slice(b"{\"f\":");
                serde_json::to_writer(&mut *out, &number).expect("writing to memory");
                out.push(b'}');
            }
            ValueRef::Text(text) => {
                serde_json::to_writer(&mut *out, text).expect("writing to memory")
            }
            ValueRef::Blob(bytes) => {
                out.extend_from_slice(b"{\"b\":\"");
                let start = out.len();
                let length = base64::encoded_len(bytes.len(), true).expect("a blob fits in memory");
                out.resize(start + length, 0);
                base64::engine::general_purpose::STANDARD
                    .encode_slice(bytes, &mut out[start..])
                    .expect("the buffer was sized for it");
                out.extend_from_slice(b"\"}");
            }
            ValueRef::Bool(flag) => out.extend_from_slice(if flag { b"true" } else { b"false" }),
        }
    }
    out.extend_from_slice(b"]\n");
}

/// Rows of one table encoded as JSON lines, never crossing a part boundary.
#[derive(Debug)]
pub struct EncodedRows {
    /// How many rows.
    pub rows: u64,
    /// Their JSON lines.
    pub bytes: Vec<u8>,
}

/// Encodes a table's rows as they are scanned and sends them on in chunks of about [`CHUNK_BYTES`], each ending
/// at a row boundary and never crossing a part boundary ([`PART_ROWS`]). Runs on the scan's blocking thread, so
/// the database read and the encoding share one core while compression and encryption run on another.
pub struct RowEncoder {
    buffer: Vec<u8>,
    rows: u64,
    part_rows: u64,
    sender: tokio::sync::mpsc::Sender<EncodedRows>,
}

impl RowEncoder {
    /// An encoder sending to `sender`.
    pub fn new(sender: tokio::sync::mpsc::Sender<EncodedRows>) -> RowEncoder {
        RowEncoder {
            buffer: Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
            rows: 0,
            part_rows: 0,
            sender,
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.rows == 0 {
            return Ok(());
        }
        let bytes = std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
        );
        let rows = std::mem::take(&mut self.rows);
        self.sender
            .blocking_send(EncodedRows { rows, bytes })
            .map_err(|_| StoreError::Snapshot("the backup writer stopped".to_owned()))
    }
}

impl RowSink for RowEncoder {
    fn row(&mut self, values: &[ValueRef<'_>]) -> Result<(), StoreError> {
        encode_row(&mut self.buffer, values);
        self.rows += 1;
        self.part_rows += 1;
        if self.part_rows >= PART_ROWS {
            self.part_rows = 0;
            self.flush()
        } else if self.buffer.len() >= CHUNK_BYTES {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn end(&mut self) -> Result<(), StoreError> {
        self.flush()
    }
}

/// One row of a part, decoded straight into [`Value`]s (no intermediate `serde_json::Value`).
struct DecodedRow(Vec<Value>);

struct TypedValue(Value);

impl<'de> Deserialize<'de> for DecodedRow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> serde::de::Visitor<'de> for RowVisitor {
            type Value = DecodedRow;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON array of typed values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DecodedRow, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(TypedValue(value)) = seq.next_element()? {
                    values.push(value);
                }
                Ok(DecodedRow(values))
            }
        }
        deserializer.deserialize_seq(RowVisitor)
    }
}

impl<'de> Deserialize<'de> for TypedValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        struct ValueVisitor;
        impl<'de> serde::de::Visitor<'de> for ValueVisitor {
            type Value = TypedValue;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter
                    .write_str("null, an integer, a string, a boolean, {\"f\": …} or {\"b\": …}")
            }
            fn visit_unit<E: Error>(self) -> Result<TypedValue, E> {
                Ok(TypedValue(Value::Null))
            }
            fn visit_bool<E: Error>(self, flag: bool) -> Result<TypedValue, E> {
                Ok(TypedValue(Value::Bool(flag)))
            }
            fn visit_i64<E: Error>(self, number: i64) -> Result<TypedValue, E> {
                Ok(TypedValue(Value::Integer(number)))
            }
            fn visit_u64<E: Error>(self, number: u64) -> Result<TypedValue, E> {
                i64::try_from(number)
                    .map(|number| TypedValue(Value::Integer(number)))
                    .map_err(|_| E::custom("an integer out of range"))
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<TypedValue, E> {
                Err(E::custom("a bare real (reals are written {\"f\": …})"))
            }
            fn visit_str<E: Error>(self, text: &str) -> Result<TypedValue, E> {
                Ok(TypedValue(Value::Text(text.to_owned())))
            }
            fn visit_string<E: Error>(self, text: String) -> Result<TypedValue, E> {
                Ok(TypedValue(Value::Text(text)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<TypedValue, A::Error> {
                Err(A::Error::custom("a nested array"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TypedValue, A::Error> {
                let key: std::borrow::Cow<'de, str> = map
                    .next_key()?
                    .ok_or_else(|| A::Error::custom("an empty object"))?;
                let value = match key.as_ref() {
                    "b" => {
                        let encoded: std::borrow::Cow<'de, str> = map.next_value()?;
                        Value::Blob(
                            base64::engine::general_purpose::STANDARD
                                .decode(encoded.as_bytes())
                                .map_err(|_| A::Error::custom("invalid base64 bytes"))?,
                        )
                    }
                    "f" => Value::Real(map.next_value()?),
                    _ => {
                        return Err(A::Error::custom(
                            "an object that is neither bytes nor a real",
                        ))
                    }
                };
                if map.next_key::<std::borrow::Cow<'de, str>>()?.is_some() {
                    return Err(A::Error::custom("an object with more than one key"));
                }
                Ok(TypedValue(value))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl Header {
    /// Whether the archive holds a page image (version 2) rather than table parts (version 1).
    pub fn is_image(&self) -> bool {
        self.format_version == FORMAT_VERSION
    }
}

/// Counts and hashes what passes through.
pub(crate) struct HashingWriter<W> {
    pub(crate) inner: W,
    pub(crate) hasher: Sha256,
    pub(crate) bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct PartBuilder {
    table: usize,
    index: usize,
    encoder: zstd::Encoder<'static, Vec<u8>>,
    rows: u64,
}

type Sink = age::stream::StreamWriter<HashingWriter<BufWriter<File>>>;

/// Writes an archive (blocking I/O and CPU: run it on a blocking thread).
pub struct ArchiveWriter {
    builder: tar::Builder<Sink>,
    header: Header,
    tables: Vec<TableManifest>,
    image: Vec<ImageChunkManifest>,
    current: Option<PartBuilder>,
    path: std::path::PathBuf,
}

/// What a finished archive is.
#[derive(Debug, Clone)]
pub struct Written {
    /// The manifest written last.
    pub manifest: Manifest,
    /// File size.
    pub size: u64,
    /// SHA-256 of the encrypted file, hex.
    pub sha256: String,
}

impl ArchiveWriter {
    /// Creates `path` (which must not exist) and writes the header.
    pub fn create(
        path: &Path,
        encryption: &Encryption,
        header: Header,
    ) -> Result<ArchiveWriter, ArchiveError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(io_error(format!("cannot create {}", path.display())))?;
        let output = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let encryptor = match encryption {
            Encryption::Recipients(recipients) => age::Encryptor::with_recipients(
                recipients
                    .iter()
                    .map(|recipient| recipient as &dyn age::Recipient),
            )
            .map_err(|error| ArchiveError::Format(format!("age: {error}")))?,
            Encryption::Passphrase(passphrase) => {
                age::Encryptor::with_user_passphrase(passphrase.clone())
            }
        };
        let sink = encryptor
            .wrap_output(output)
            .map_err(io_error(format!("cannot write {}", path.display())))?;
        let mut writer = ArchiveWriter {
            builder: tar::Builder::new(sink),
            header,
            tables: Vec::new(),
            image: Vec::new(),
            current: None,
            path: path.to_owned(),
        };
        let bytes = serde_json::to_vec_pretty(&writer.header).expect("a header serialises");
        writer.append(HEADER_NAME, &bytes)?;
        Ok(writer)
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime((self.header.created_at_ms / 1000).max(0) as u64);
        header.set_entry_type(tar::EntryType::Regular);
        let path = self.path.display().to_string();
        self.builder
            .append_data(&mut header, name, bytes)
            .map_err(io_error(format!("cannot write {path}")))
    }

    /// Starts the next table.
    pub fn begin_table(&mut self, name: &str, columns: &[String]) -> Result<(), ArchiveError> {
        self.finish_part()?;
        self.tables.push(TableManifest {
            name: name.to_owned(),
            columns: columns.to_vec(),
            rows: 0,
            parts: Vec::new(),
        });
        Ok(())
    }

    /// Records a table of a page image with its row count on the image (version 2).
    pub fn add_image_table(&mut self, name: &str, columns: &[String], rows: u64) {
        self.tables.push(TableManifest {
            name: name.to_owned(),
            columns: columns.to_vec(),
            rows,
            parts: Vec::new(),
        });
    }

    /// Appends the next chunk of the page image (version 2) and hands its buffer back for reuse.
    pub fn push_image_chunk(&mut self, chunk: CompressedChunk) -> Result<Vec<u8>, ArchiveError> {
        if !self.header.is_image() {
            return Err(ArchiveError::Format(
                "an image chunk in a logical archive".to_owned(),
            ));
        }
        let name = format!("image/{:06}.db.zst", self.image.len());
        self.append(&name, &chunk.bytes)?;
        self.image.push(ImageChunkManifest {
            name,
            size: chunk.size,
            bytes: chunk.bytes.len() as u64,
            sha256: chunk.sha256,
        });
        Ok(chunk.bytes)
    }

    fn start_part(&mut self) -> Result<(), ArchiveError> {
        let table_index = self.tables.len() - 1;
        let table = &self.tables[table_index];
        let mut encoder = zstd::Encoder::new(Vec::new(), ZSTD_LEVEL)
            .map_err(io_error("cannot start zstd compression"))?;
        let first = serde_json::json!({"table": table.name, "columns": table.columns});
        serde_json::to_writer(&mut encoder, &first).expect("writing to memory");
        encoder.write_all(b"\n").map_err(io_error("zstd"))?;
        self.current = Some(PartBuilder {
            table: table_index,
            index: table.parts.len(),
            encoder,
            rows: 0,
        });
        Ok(())
    }

    /// Adds encoded rows of the current table (see [`RowEncoder`]).
    pub fn push_encoded(&mut self, chunk: EncodedRows) -> Result<(), ArchiveError> {
        if self.tables.is_empty() {
            return Err(ArchiveError::Format("rows before any table".to_owned()));
        }
        if chunk.rows == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.start_part()?;
        }
        let part = self.current.as_mut().expect("a part was started");
        part.encoder
            .write_all(&chunk.bytes)
            .map_err(io_error("zstd"))?;
        part.rows += chunk.rows;
        if part.rows >= PART_ROWS {
            self.finish_part()?;
        }
        Ok(())
    }

    fn finish_part(&mut self) -> Result<(), ArchiveError> {
        let Some(part) = self.current.take() else {
            return Ok(());
        };
        let bytes = part.encoder.finish().map_err(io_error("zstd"))?;
        let table = &self.tables[part.table];
        let name = format!("tables/{}/{:06}.jsonl.zst", table.name, part.index);
        let sha256 = hex(&Sha256::digest(&bytes));
        self.append(&name, &bytes)?;
        let table = &mut self.tables[part.table];
        table.rows += part.rows;
        table.parts.push(PartManifest {
            name,
            rows: part.rows,
            bytes: bytes.len() as u64,
            sha256,
        });
        Ok(())
    }

    /// Writes the manifest, closes the encryption and syncs the file to disk.
    pub fn finish(mut self) -> Result<Written, ArchiveError> {
        self.finish_part()?;
        let manifest = Manifest {
            header: self.header.clone(),
            tables: std::mem::take(&mut self.tables),
            image: std::mem::take(&mut self.image),
        };
        let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        self.append(MANIFEST_NAME, &bytes)?;
        let path = self.path.display().to_string();
        let sink = self
            .builder
            .into_inner()
            .map_err(io_error(format!("cannot write {path}")))?;
        let mut output = sink
            .finish()
            .map_err(io_error(format!("cannot write {path}")))?;
        output
            .flush()
            .map_err(io_error(format!("cannot write {path}")))?;
        let file = output
            .inner
            .into_inner()
            .map_err(|error| ArchiveError::Io {
                context: format!("cannot write {path}"),
                source: error.into_error(),
            })?;
        file.sync_all()
            .map_err(io_error(format!("cannot sync {path}")))?;
        Ok(Written {
            manifest,
            size: output.bytes,
            sha256: hex(&output.hasher.finalize()),
        })
    }
}

/// What a reader reports, in archive order.
#[derive(Debug)]
pub enum ReadEvent {
    /// The header (first).
    Header(Header),
    /// A part of `table` starts; rows follow.
    Part {
        /// Table name.
        table: String,
        /// Column names.
        columns: Vec<String>,
    },
    /// Rows of the current part.
    Rows(Vec<Vec<Value>>),
    /// The next chunk of a page image: its zstd frame, which declares `size` bytes of the database file
    /// (decompress it with [`decompress_image_chunk`]). Its bytes are checked against the manifest when the
    /// manifest arrives, so hold what it builds back until then.
    Image {
        /// The compressed frame.
        frame: Vec<u8>,
        /// Bytes of the database file it holds, from the frame header (at most 64 MiB).
        size: u64,
    },
    /// The manifest (last), after every part was checked against it.
    Manifest(Manifest),
}

/// Opens the archive at `path` and decrypts it as a stream, or says why it cannot.
fn open_decrypted(path: &Path, decryption: &Decryption) -> Result<impl Read, ArchiveError> {
    let file = File::open(path).map_err(io_error(format!("cannot open {}", path.display())))?;
    let decryptor =
        age::Decryptor::new(BufReader::with_capacity(1 << 20, file)).map_err(|error| {
            ArchiveError::Decrypt(format!(
                "{} is not an age-encrypted file ({error})",
                path.display()
            ))
        })?;
    match decryption {
        Decryption::Passphrase(passphrase) => {
            if !decryptor.is_scrypt() {
                return Err(ArchiveError::Decrypt(
                    "this backup is encrypted to age recipients, not a passphrase: set VEIL_BACKUP_IDENTITY"
                        .to_owned(),
                ));
            }
            let identity = age::scrypt::Identity::new(passphrase.clone());
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        }
        Decryption::Identities(contents) => {
            use age::secrecy::ExposeSecret;
            if decryptor.is_scrypt() {
                return Err(ArchiveError::Decrypt(
                    "this backup is encrypted with a passphrase: set VEIL_BACKUP_PASSPHRASE".to_owned(),
                ));
            }
            let identities = age::IdentityFile::from_buffer(contents.expose_secret().as_bytes())
                .map_err(|_| ArchiveError::Decrypt("the identity file cannot be parsed".to_owned()))?
                .into_identities()
                .map_err(|_| ArchiveError::Decrypt("the identity file cannot be parsed".to_owned()))?;
            if identities.is_empty() {
                return Err(ArchiveError::Decrypt("the identity file holds no identity".to_owned()));
            }
            decryptor.decrypt(identities.iter().map(|identity| identity.as_ref()))
        }
    }
    .map_err(|error| {
        ArchiveError::Decrypt(match error {
            age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => {
                "none of the given identities can open it (wrong age identity or passphrase)".to_owned()
            }
            age::DecryptError::InvalidMac | age::DecryptError::InvalidHeader => {
                "its header is damaged or was modified".to_owned()
            }
            other => other.to_string(),
        })
    })
}

/// The header of the archive at `path` (decrypts only the start of the file).
pub fn read_header(path: &Path, decryption: &Decryption) -> Result<Header, ArchiveError> {
    let reader = open_decrypted(path, decryption)?;
    let mut archive = tar::Archive::new(reader);
    let mut entries = archive.entries().map_err(tampered)?;
    let mut entry = entries
        .next()
        .ok_or_else(|| ArchiveError::Format("the archive is empty".to_owned()))?
        .map_err(tampered)?;
    let name = entry
        .path()
        .map_err(tampered)?
        .to_string_lossy()
        .into_owned();
    if name != HEADER_NAME {
        return Err(ArchiveError::Format(
            "the archive does not start with its header".to_owned(),
        ));
    }
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(tampered)?;
    parse_header(&bytes)
}

fn tampered(error: io::Error) -> ArchiveError {
    ArchiveError::Integrity(format!(
        "the encrypted stream failed authentication or ended early: it was modified, corrupted or truncated ({error})"
    ))
}

fn parse_header(bytes: &[u8]) -> Result<Header, ArchiveError> {
    let parsed: Header = serde_json::from_slice(bytes)
        .map_err(|error| ArchiveError::Format(format!("header: {error}")))?;
    if parsed.format != FORMAT {
        return Err(ArchiveError::Format(format!(
            "format is {:?}",
            parsed.format
        )));
    }
    if parsed.format_version != FORMAT_VERSION && parsed.format_version != LOGICAL_FORMAT_VERSION {
        return Err(ArchiveError::Format(format!(
            "format version {} (this Veil reads versions {LOGICAL_FORMAT_VERSION} and {FORMAT_VERSION})",
            parsed.format_version
        )));
    }
    Ok(parsed)
}

/// Largest image chunk a reader accepts (decompressed).
const MAX_IMAGE_CHUNK_BYTES: usize = 64 << 20;

/// Decompresses an image chunk's `frame` (of [`ReadEvent::Image`]) into `output`, a recycled buffer whose
/// contents are replaced, and checks that it holds the `size` bytes its header declared.
pub fn decompress_image_chunk(
    decompressor: &mut zstd::bulk::Decompressor<'static>,
    frame: &[u8],
    size: u64,
    output: &mut Vec<u8>,
) -> Result<(), ArchiveError> {
    output.clear();
    output.reserve(size as usize);
    let written = decompressor
        .decompress_to_buffer(frame, output)
        .map_err(|error| {
            ArchiveError::Integrity(format!("an image chunk cannot be decompressed ({error})"))
        })?;
    if written as u64 != size {
        return Err(ArchiveError::Integrity(format!(
            "an image chunk holds {written} bytes, its header says {size}"
        )));
    }
    Ok(())
}

/// Reads and checks a whole archive (blocking), handing what it finds to `on_event`. Fails on a wrong key, a
/// modified or truncated file, a part or chunk whose checksum (or a part whose row count) differs from the
/// manifest, and a part or chunk missing from the archive, out of order, or absent from the manifest.
pub fn read_archive(
    path: &Path,
    decryption: &Decryption,
    mut on_event: impl FnMut(ReadEvent) -> Result<(), ArchiveError>,
) -> Result<Manifest, ArchiveError> {
    let reader = open_decrypted(path, decryption)?;
    let mut archive = tar::Archive::new(reader);
    let mut seen: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
    let mut image_seen: Vec<ImageChunkManifest> = Vec::new();
    let mut header: Option<Header> = None;
    let mut manifest: Option<Manifest> = None;
    for entry in archive.entries().map_err(tampered)? {
        let mut entry = entry.map_err(tampered)?;
        let name = entry
            .path()
            .map_err(tampered)?
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(tampered)?;
        if manifest.is_some() {
            return Err(ArchiveError::Format(format!(
                "entry {name} follows the manifest"
            )));
        }
        if name == HEADER_NAME {
            if header.is_some() {
                return Err(ArchiveError::Format("a second header".to_owned()));
            }
            let parsed = parse_header(&bytes)?;
            header = Some(parsed.clone());
            on_event(ReadEvent::Header(parsed))?;
        } else if name == MANIFEST_NAME {
            let parsed: Manifest = serde_json::from_slice(&bytes)
                .map_err(|error| ArchiveError::Format(format!("manifest: {error}")))?;
            manifest = Some(parsed);
        } else if name.starts_with("image/") {
            if !header.as_ref().is_some_and(Header::is_image) {
                return Err(ArchiveError::Format(format!(
                    "image chunk {name} outside a version {FORMAT_VERSION} archive"
                )));
            }
            let sha256 = hex(&Sha256::digest(&bytes));
            // Veil's frames declare their size. One that does not (or declares too much) was not written by
            // Veil: it is held back, and the manifest check at the end names the chunk that fails.
            let size = zstd::zstd_safe::get_frame_content_size(&bytes)
                .ok()
                .flatten()
                .filter(|size| *size <= MAX_IMAGE_CHUNK_BYTES as u64);
            image_seen.push(ImageChunkManifest {
                name,
                size: size.unwrap_or(0),
                bytes: bytes.len() as u64,
                sha256,
            });
            if let Some(size) = size {
                on_event(ReadEvent::Image { frame: bytes, size })?;
            }
        } else if name.starts_with("tables/") {
            if header.as_ref().is_none_or(Header::is_image) {
                return Err(ArchiveError::Format(format!(
                    "part {name} outside a version {LOGICAL_FORMAT_VERSION} archive"
                )));
            }
            let sha256 = hex(&Sha256::digest(&bytes));
            let rows = read_part(&name, &bytes, &mut on_event)?;
            seen.insert(name, (sha256, bytes.len() as u64, rows));
        } else {
            return Err(ArchiveError::Format(format!("unexpected entry {name}")));
        }
    }
    let header =
        header.ok_or_else(|| ArchiveError::Format("the archive has no header".to_owned()))?;
    let manifest = manifest.ok_or_else(|| {
        ArchiveError::Integrity("the archive has no manifest: it is incomplete".to_owned())
    })?;
    if manifest.header != header {
        return Err(ArchiveError::Integrity(
            "the manifest does not repeat the header".to_owned(),
        ));
    }
    check_image(&manifest, &image_seen)?;
    for table in &manifest.tables {
        if header.is_image() {
            if !table.parts.is_empty() {
                return Err(ArchiveError::Integrity(format!(
                    "table {} lists parts in an image archive",
                    table.name
                )));
            }
            continue;
        }
        let mut rows = 0;
        for part in &table.parts {
            let Some((sha256, bytes, part_rows)) = seen.remove(&part.name) else {
                return Err(ArchiveError::Integrity(format!(
                    "part {} (table {}) is listed in the manifest but missing from the archive",
                    part.name, table.name
                )));
            };
            if sha256 != part.sha256 || bytes != part.bytes {
                return Err(ArchiveError::Integrity(format!(
                    "part {} fails its SHA-256 check (manifest {}, archive {})",
                    part.name, part.sha256, sha256
                )));
            }
            if part_rows != part.rows {
                return Err(ArchiveError::Integrity(format!(
                    "part {} holds {part_rows} rows, the manifest says {}",
                    part.name, part.rows
                )));
            }
            rows += part_rows;
        }
        if rows != table.rows {
            return Err(ArchiveError::Integrity(format!(
                "table {}: its parts hold {rows} rows, the manifest says {}",
                table.name, table.rows
            )));
        }
    }
    if let Some(extra) = seen.keys().next() {
        return Err(ArchiveError::Integrity(format!(
            "part {extra} is not in the manifest"
        )));
    }
    on_event(ReadEvent::Manifest(manifest.clone()))?;
    Ok(manifest)
}

/// Every chunk the manifest lists was read, in its order, with its size and SHA-256, and no other.
fn check_image(manifest: &Manifest, seen: &[ImageChunkManifest]) -> Result<(), ArchiveError> {
    for (index, listed) in manifest.image.iter().enumerate() {
        let Some(found) = seen.get(index) else {
            return Err(ArchiveError::Integrity(format!(
                "image chunk {} is listed in the manifest but missing from the archive",
                listed.name
            )));
        };
        if found.name != listed.name {
            return Err(ArchiveError::Integrity(format!(
                "image chunk {} is missing from the archive or out of order (found {} in its place)",
                listed.name, found.name
            )));
        }
        if found.sha256 != listed.sha256 || found.bytes != listed.bytes {
            return Err(ArchiveError::Integrity(format!(
                "image chunk {} fails its SHA-256 check (manifest {}, archive {})",
                listed.name, listed.sha256, found.sha256
            )));
        }
        if found.size != listed.size {
            return Err(ArchiveError::Integrity(format!(
                "image chunk {} holds {} bytes, the manifest says {}",
                listed.name, found.size, listed.size
            )));
        }
    }
    if let Some(extra) = seen.get(manifest.image.len()) {
        return Err(ArchiveError::Integrity(format!(
            "image chunk {} is not in the manifest",
            extra.name
        )));
    }
    if manifest.header.is_image() && manifest.image.is_empty() {
        return Err(ArchiveError::Integrity(
            "the manifest lists no image chunk".to_owned(),
        ));
    }
    Ok(())
}

fn read_part(
    name: &str,
    bytes: &[u8],
    on_event: &mut impl FnMut(ReadEvent) -> Result<(), ArchiveError>,
) -> Result<u64, ArchiveError> {
    let bad = |what: String| ArchiveError::Integrity(format!("part {name}: {what}"));
    let text = zstd::stream::decode_all(bytes)
        .map_err(|error| bad(format!("cannot decompress ({error})")))?;
    let mut lines = text.split(|byte| *byte == b'\n');
    let first = lines
        .next()
        .filter(|line| !line.is_empty())
        .ok_or_else(|| bad("empty".to_owned()))?;
    #[derive(Deserialize)]
    struct PartHeader {
        table: String,
        columns: Vec<String>,
    }
    let part: PartHeader =
        serde_json::from_slice(first).map_err(|error| bad(format!("first line: {error}")))?;
    let width = part.columns.len();
    on_event(ReadEvent::Part {
        table: part.table,
        columns: part.columns,
    })?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut rows = 0u64;
    for (number, line) in lines.enumerate() {
        if line.is_empty() {
            // The newline that ends the last row.
            continue;
        }
        let DecodedRow(row) = serde_json::from_slice(line)
            .map_err(|error| bad(format!("row {}: {error}", number + 1)))?;
        if row.len() != width {
            return Err(bad(format!(
                "row {} has {} values for {width} columns",
                number + 1,
                row.len()
            )));
        }
        batch.push(row);
        rows += 1;
        if batch.len() >= BATCH_ROWS {
            on_event(ReadEvent::Rows(std::mem::replace(
                &mut batch,
                Vec::with_capacity(BATCH_ROWS),
            )))?;
        }
    }
    if !batch.is_empty() {
        on_event(ReadEvent::Rows(batch))?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_json() {
        for value in [
            Value::Null,
            Value::Integer(-42),
            Value::Integer(i64::MAX),
            Value::Real(1.5),
            Value::Text("张三".to_owned()),
            Value::Blob(vec![0, 1, 255]),
            Value::Bool(true),
        ] {
            let mut line = Vec::new();
            encode_row(&mut line, &[value.as_ref()]);
            assert_eq!(line.last(), Some(&b'\n'));
            let DecodedRow(decoded) = serde_json::from_slice(&line).unwrap();
            assert_eq!(decoded, vec![value]);
        }
    }

    #[test]
    fn malformed_rows_are_refused_with_the_reason() {
        for (line, reason) in [
            (r#"[[1]]"#, "a nested array"),
            (r#"[{"b": "!!"}]"#, "invalid base64"),
            (r#"[{"x": 1}]"#, "neither bytes nor a real"),
            (r#"[{"f": 1.5, "b": "AA=="}]"#, "more than one key"),
            (r#"[18446744073709551615]"#, "out of range"),
            (r#"[1.5]"#, "bare real"),
            (r#"{"a": 1}"#, "JSON array"),
        ] {
            let error = serde_json::from_str::<DecodedRow>(line)
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains(reason), "{line}: {error}");
        }
    }

    #[test]
    fn recipients_parse_or_explain() {
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        assert_eq!(parse_recipients(&format!(" {public} ,")).unwrap().len(), 1);
        let error = parse_recipients("age1nope").unwrap_err();
        assert!(error.contains("not an age X25519 recipient"), "{error}");
        assert!(parse_recipients(" , ").is_err());
    }
}
