//! The key hierarchy and its life cycle.
//!
//! ```text
//! master key (file `master.key`, 0600 — or Argon2id(passphrase, salt))
//!   └─ wraps key-encryption keys (KEK v1, v2, …) and the blind-index key      [table keyring]
//!        └─ a KEK wraps each customer's data key (DEK)                         [table customer_key]
//!             └─ a DEK seals that customer's fields with AES-256-GCM           [table customer]
//! ```
//! Rotating the KEK re-wraps data keys only; no field is re-encrypted. Deleting a customer's DEK row makes every
//! copy of that customer's ciphertext unreadable (crypto-shredding).

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use veil_mask::crypto::{self, Aad, KEY_LEN};
use veil_mask::{BlindIndexer, FieldCipher, SecretKey};
use veil_store::{CustomerKeyRow, KeyringRow, MasterKeyMeta, Store};
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult};
use crate::now_ms;

const CHECK_PLAINTEXT: &[u8] = b"veil master key check v1";
const PURPOSE_KEK: &str = "kek";
const PURPOSE_BLIND_INDEX: &str = "blind_index";
const PURPOSE_MFA: &str = "mfa";

/// A passphrase for the master key. Zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(passphrase: String) -> Self {
        Passphrase(Zeroizing::new(passphrase))
    }

    /// The passphrase text (for strength checks; never logged).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Passphrase(<redacted>)")
    }
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// A key file holding 32 random bytes (base64), readable by its owner only.
    File(PathBuf),
    /// Argon2id over a passphrase and the salt stored in the database.
    Passphrase(Passphrase),
}

/// Problems with the master key file, each saying how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// No file at the path.
    #[error("master key file {0} does not exist: run `veil init` to create it, or set VEIL_MASTER_KEY_FILE")]
    Missing(PathBuf),
    /// The file exists but cannot be read.
    #[error("cannot read master key file {path}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error("master key file {path} is accessible by group or others (mode {mode:o}); refusing to use it. Fix with: chmod 600 {path}")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a key.
    #[error("master key file {0} does not contain a base64-encoded 32-byte key")]
    Malformed(PathBuf),
    /// The file could not be created.
    #[error("cannot create master key file {path}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

pub mod escrow;

/// Creates a new master key file with mode 0600; refuses to overwrite an existing one.
pub fn create_master_key_file(path: &Path) -> Result<SecretKey, KeyFileError> {
    let key = SecretKey::generate();
    write_master_key_file(path, &key)?;
    Ok(key)
}

/// Writes `key` as a new master key file with mode 0600 (recovery); refuses to overwrite an existing one.
pub fn write_master_key_file(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    let encoded =
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.expose_secret()));
    let create_error = |source| KeyFileError::Create {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(create_error)?;
    file.write_all(encoded.as_bytes()).map_err(create_error)?;
    file.write_all(b"\n").map_err(create_error)?;
    file.sync_all().map_err(create_error)?;
    Ok(())
}

/// Reads the master key file, refusing one that group or others can access.
pub fn read_master_key_file(path: &Path) -> Result<SecretKey, KeyFileError> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyFileError::Missing(path.to_owned()))
        }
        Err(source) => {
            return Err(KeyFileError::Unreadable {
                path: path.to_owned(),
                source,
            })
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text =
        Zeroizing::new(
            fs::read_to_string(path).map_err(|source| KeyFileError::Unreadable {
                path: path.to_owned(),
                source,
            })?,
        );
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyFileError::Malformed(path.to_owned()))?,
    );
    SecretKey::from_slice(&bytes).map_err(|_| KeyFileError::Malformed(path.to_owned()))
}

/// Unwrapped keys in memory: the master key, every live KEK version and the blind-index key.
pub struct Keyring {
    master: SecretKey,
    keks: HashMap<i64, SecretKey>,
    current_kek: i64,
    blind_indexer: BlindIndexer,
}

impl Keyring {
    /// The master key (for the deliberate key backups of [`escrow`] only).
    pub(crate) fn master_key(&self) -> &SecretKey {
        &self.master
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Keyring")
            .field("current_kek", &self.current_kek)
            .field("kek_versions", &self.keks.len())
            .finish_non_exhaustive()
    }
}

fn keyring_aad(purpose: &str, version: i64) -> Vec<u8> {
    Aad {
        table: "keyring",
        record_id: purpose,
        field: "key",
        key_version: version as u32,
    }
    .encode()
}

fn customer_key_aad(customer_id: &str, dek_version: i64, kek_version: i64) -> Vec<u8> {
    let field = format!("dek.v{dek_version}");
    Aad {
        table: "customer_key",
        record_id: customer_id,
        field: &field,
        key_version: kek_version as u32,
    }
    .encode()
}

fn check_aad() -> Vec<u8> {
    Aad {
        table: "master_key_meta",
        record_id: "1",
        field: "check",
        key_version: 1,
    }
    .encode()
}

/// What `veil keys status` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyStatus {
    /// How the master key is obtained.
    pub master_key_source: String,
    /// The KEK version new data keys are wrapped under.
    pub current_kek_version: i64,
    /// Every KEK version with its state and how many data keys it wraps.
    pub kek_versions: Vec<KekVersionStatus>,
}

/// One KEK version in [`KeyStatus`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct KekVersionStatus {
    /// Version.
    pub version: i64,
    /// `active`, `previous` or `retired`.
    pub state: String,
    /// Data keys it wraps.
    pub data_keys: i64,
}

async fn resolve_master(source: &MasterKeySource, salt: Option<&[u8]>) -> AppResult<SecretKey> {
    match source {
        MasterKeySource::File(path) => {
            read_master_key_file(path).map_err(|error| AppError::Internal(error.to_string()))
        }
        MasterKeySource::Passphrase(passphrase) => {
            let salt = salt.ok_or(AppError::WrongMasterKey)?.to_vec();
            let passphrase = passphrase.clone();
            // Argon2id is deliberately slow: keep it off the async executor.
            tokio::task::spawn_blocking(move || {
                crypto::derive_from_passphrase(passphrase.0.as_bytes(), &salt)
            })
            .await
            .map_err(|error| AppError::Internal(error.to_string()))?
            .map_err(AppError::from)
        }
    }
}

impl Keyring {
    /// Sets up the key hierarchy in a fresh database: master key check, KEK v1, blind-index key.
    pub async fn initialise(store: &Store, source: &MasterKeySource) -> AppResult<Keyring> {
        if store.master_key_meta().await?.is_some() {
            return Keyring::open(store, source).await;
        }
        let (source_name, salt) = match source {
            MasterKeySource::File(_) => ("file", None),
            MasterKeySource::Passphrase(_) => {
                ("passphrase", Some(crypto::generate_salt().to_vec()))
            }
        };
        let master = resolve_master(source, salt.as_deref()).await?;
        let now = now_ms();
        let kek = SecretKey::generate();
        let blind_index_key = SecretKey::generate();
        store
            .insert_keyring_row(
                &KeyringRow {
                    purpose: PURPOSE_KEK.to_owned(),
                    version: 1,
                    wrapped: Some(crypto::wrap_key(
                        &master,
                        &keyring_aad(PURPOSE_KEK, 1),
                        &kek,
                    )),
                    state: "active".to_owned(),
                },
                now,
            )
            .await?;
        store
            .insert_keyring_row(
                &KeyringRow {
                    purpose: PURPOSE_BLIND_INDEX.to_owned(),
                    version: 1,
                    wrapped: Some(crypto::wrap_key(
                        &master,
                        &keyring_aad(PURPOSE_BLIND_INDEX, 1),
                        &blind_index_key,
                    )),
                    state: "active".to_owned(),
                },
                now,
            )
            .await?;
        // The check value goes last: a database with it is fully initialised.
        store
            .put_master_key_meta(
                &MasterKeyMeta {
                    source: source_name.to_owned(),
                    salt,
                    check_blob: crypto::seal(&master, &check_aad(), CHECK_PLAINTEXT),
                },
                now,
            )
            .await?;
        Ok(Keyring {
            master,
            keks: HashMap::from([(1, kek)]),
            current_kek: 1,
            blind_indexer: BlindIndexer::new(&blind_index_key),
        })
    }

    /// Opens the key hierarchy of an initialised database, proving the master key matches.
    pub async fn open(store: &Store, source: &MasterKeySource) -> AppResult<Keyring> {
        let meta = store
            .master_key_meta()
            .await?
            .ok_or(AppError::NotInitialised)?;
        let master = resolve_master(source, meta.salt.as_deref()).await?;
        crypto::open(&master, &check_aad(), &meta.check_blob)
            .map_err(|_| AppError::WrongMasterKey)?;
        Keyring::load(store, master).await
    }

    async fn load(store: &Store, master: SecretKey) -> AppResult<Keyring> {
        let mut keks = HashMap::new();
        let mut current_kek = None;
        let mut blind_indexer = None;
        for row in store.keyring_rows().await? {
            let Some(wrapped) = &row.wrapped else {
                continue;
            };
            let key =
                crypto::unwrap_key(&master, &keyring_aad(&row.purpose, row.version), wrapped)?;
            match row.purpose.as_str() {
                PURPOSE_KEK => {
                    if row.state == "active" {
                        current_kek = Some(current_kek.unwrap_or(0).max(row.version));
                    }
                    keks.insert(row.version, key);
                }
                PURPOSE_BLIND_INDEX => blind_indexer = Some(BlindIndexer::new(&key)),
                _ => {}
            }
        }
        Ok(Keyring {
            master,
            keks,
            current_kek: current_kek
                .ok_or_else(|| AppError::Internal("no active key-encryption key".to_owned()))?,
            blind_indexer: blind_indexer
                .ok_or_else(|| AppError::Internal("no blind-index key".to_owned()))?,
        })
    }

    /// Opens another database's key hierarchy (a restored backup) with this keyring's master key, proving first
    /// that the master key matches that database's check value.
    pub(crate) async fn open_with_same_master(&self, store: &Store) -> AppResult<Keyring> {
        let meta = store
            .master_key_meta()
            .await?
            .ok_or(AppError::NotInitialised)?;
        crypto::open(&self.master, &check_aad(), &meta.check_blob)
            .map_err(|_| AppError::WrongMasterKey)?;
        Keyring::load(store, self.master.clone()).await
    }

    /// Re-reads the keyring from the database (after another process rotated keys).
    pub async fn reload(&self, store: &Store) -> AppResult<Keyring> {
        Keyring::load(store, self.master.clone()).await
    }

    /// The blind-index computer.
    pub fn blind_indexer(&self) -> &BlindIndexer {
        &self.blind_indexer
    }

    /// The KEK version new data keys are wrapped under.
    pub fn current_kek_version(&self) -> i64 {
        self.current_kek
    }

    /// Wraps a new customer's data key under the current KEK.
    pub fn wrap_customer_key(
        &self,
        customer_id: &str,
        dek_version: i64,
        dek: &SecretKey,
    ) -> CustomerKeyRow {
        let kek = &self.keks[&self.current_kek];
        CustomerKeyRow {
            customer_id: customer_id.to_owned(),
            dek_version,
            kek_version: self.current_kek,
            wrapped: crypto::wrap_key(
                kek,
                &customer_key_aad(customer_id, dek_version, self.current_kek),
                dek,
            ),
        }
    }

    /// Whether this keyring holds KEK `version` (a newer one may have been created by another process).
    pub fn has_kek(&self, version: i64) -> bool {
        self.keks.contains_key(&version)
    }

    /// Unwraps a customer's data key.
    pub fn unwrap_customer_key(&self, row: &CustomerKeyRow) -> AppResult<SecretKey> {
        let kek = self.keks.get(&row.kek_version).ok_or_else(|| {
            AppError::Internal(format!(
                "key-encryption key v{} is not available (retired?)",
                row.kek_version
            ))
        })?;
        Ok(crypto::unwrap_key(
            kek,
            &customer_key_aad(&row.customer_id, row.dek_version, row.kek_version),
            &row.wrapped,
        )?)
    }
}

impl Keyring {
    /// An unwrapper for many customers' data keys at once (bulk exports).
    pub(crate) fn customer_key_unwrapper(&self) -> CustomerKeyUnwrapper {
        CustomerKeyUnwrapper {
            ciphers: self
                .keks
                .iter()
                .map(|(version, kek)| (*version, FieldCipher::new(kek)))
                .collect(),
            aad: Vec::new(),
            field: String::new(),
            key_bytes: Zeroizing::new(Vec::with_capacity(KEY_LEN)),
        }
    }
}

/// Unwraps many customers' data keys: each KEK's AES key schedule is computed once instead of once per
/// customer, and the associated data and the unwrapped bytes live in buffers reused from one key to the next.
/// Same checks as [`Keyring::unwrap_customer_key`]: a wrapped key bound to another customer, data-key version or
/// KEK version does not unwrap.
pub(crate) struct CustomerKeyUnwrapper {
    ciphers: Vec<(i64, FieldCipher)>,
    aad: Vec<u8>,
    field: String,
    key_bytes: Zeroizing<Vec<u8>>,
}

impl CustomerKeyUnwrapper {
    /// The data key of `customer_id`, wrapped as `wrapped` (data-key `dek_version` under KEK `kek_version`).
    pub(crate) fn unwrap(
        &mut self,
        customer_id: &str,
        dek_version: i64,
        kek_version: i64,
        wrapped: &[u8],
    ) -> AppResult<SecretKey> {
        let cipher = self
            .ciphers
            .iter()
            .find(|(version, _)| *version == kek_version)
            .map(|(_, cipher)| cipher)
            .ok_or_else(|| {
                AppError::Internal(format!(
                    "key-encryption key v{kek_version} is not available (retired?)"
                ))
            })?;
        self.field.clear();
        write!(self.field, "dek.v{dek_version}").expect("writing to a String cannot fail");
        Aad {
            table: "customer_key",
            record_id: customer_id,
            field: &self.field,
            key_version: kek_version as u32,
        }
        .encode_into(&mut self.aad);
        cipher.open_into(&self.aad, wrapped, &mut self.key_bytes)?;
        let key = SecretKey::from_slice(&self.key_bytes);
        zeroize::Zeroize::zeroize(&mut *self.key_bytes);
        Ok(key?)
    }
}

impl Keyring {
    /// The key that protects staff second factors (TOTP secrets, recovery-code and login-counter hashes): keyring
    /// purpose `mfa`, version 1, created on first use. Like every keyring row it is wrapped by the master key and
    /// re-wrapped when the master key is replaced; KEK rotation does not touch it. Returns `(version, key)`.
    pub async fn mfa_key(&self, store: &Store) -> AppResult<(i64, SecretKey)> {
        self.purpose_key(store, PURPOSE_MFA).await
    }

    /// The active key of `purpose` if one exists (never creates one): `None` when it was never made or was retired.
    pub(crate) async fn existing_purpose_key(
        &self,
        store: &Store,
        purpose: &str,
    ) -> AppResult<Option<SecretKey>> {
        let row = store
            .keyring_rows()
            .await?
            .into_iter()
            .find(|row| row.purpose == purpose && row.state == "active");
        match row.and_then(|row| row.wrapped.map(|wrapped| (row.version, wrapped))) {
            Some((version, wrapped)) => Ok(Some(crypto::unwrap_key(
                &self.master,
                &keyring_aad(purpose, version),
                &wrapped,
            )?)),
            None => Ok(None),
        }
    }

    /// A single-version key for `purpose` (`mfa`, `audit_signing`, …), wrapped by the master key like every
    /// keyring row and created on first use. Returns `(version, key)`.
    pub async fn purpose_key(&self, store: &Store, purpose: &str) -> AppResult<(i64, SecretKey)> {
        for _ in 0..3 {
            let existing = store
                .keyring_rows()
                .await?
                .into_iter()
                .find(|row| row.purpose == purpose && row.state == "active");
            if let Some(row) = existing {
                let wrapped = row.wrapped.as_deref().ok_or_else(|| {
                    AppError::Internal(format!("the {purpose} key has no key material"))
                })?;
                let key =
                    crypto::unwrap_key(&self.master, &keyring_aad(purpose, row.version), wrapped)?;
                return Ok((row.version, key));
            }
            let key = SecretKey::generate();
            let created = store
                .insert_keyring_row(
                    &KeyringRow {
                        purpose: purpose.to_owned(),
                        version: 1,
                        wrapped: Some(crypto::wrap_key(
                            &self.master,
                            &keyring_aad(purpose, 1),
                            &key,
                        )),
                        state: "active".to_owned(),
                    },
                    now_ms(),
                )
                .await;
            match created {
                Ok(()) => return Ok((1, key)),
                // Another server created it first: read theirs.
                Err(veil_store::StoreError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Internal(format!(
            "could not create or read the {purpose} key"
        )))
    }
}

/// Re-wraps the keyring (every live KEK version and the blind-index key) under a new master key, and replaces the
/// check value, in one transaction. Data keys and field ciphertexts are untouched. Returns the new keyring.
pub async fn replace_master_key(
    store: &Store,
    keyring: &Keyring,
    new_source: &MasterKeySource,
) -> AppResult<Keyring> {
    let (source_name, salt) = match new_source {
        MasterKeySource::File(_) => ("file", None),
        MasterKeySource::Passphrase(_) => ("passphrase", Some(crypto::generate_salt().to_vec())),
    };
    let new_master = resolve_master(new_source, salt.as_deref()).await?;
    let mut rewrapped = Vec::new();
    for row in store.keyring_rows().await? {
        let Some(wrapped) = &row.wrapped else {
            continue;
        };
        let aad = keyring_aad(&row.purpose, row.version);
        let key = crypto::unwrap_key(&keyring.master, &aad, wrapped)?;
        rewrapped.push(KeyringRow {
            wrapped: Some(crypto::wrap_key(&new_master, &aad, &key)),
            ..row
        });
    }
    let meta = MasterKeyMeta {
        source: source_name.to_owned(),
        salt,
        check_blob: crypto::seal(&new_master, &check_aad(), CHECK_PLAINTEXT),
    };
    store
        .replace_master_key(&rewrapped, &meta, now_ms())
        .await?;
    Keyring::load(store, new_master).await
}

/// Progress of a long key operation, reported after each batch.
pub trait Progress {
    /// `done` of `total` items processed.
    fn update(&self, done: u64, total: u64);

    /// A named point of the operation was reached (`backup.chunk_sent`, `backup.table_sent`, `backup.part_uploaded`). Nothing by
    /// default; the CLI's hidden `VEIL_TEST_PAUSE_AT` stops there, so that tests can kill it at that point.
    fn reached(&self, _point: &'static str) {}
}

impl Progress for () {
    fn update(&self, _done: u64, _total: u64) {}
}

/// Outcome of [`rotate_kek`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotationReport {
    /// The KEK version now current.
    pub new_version: i64,
    /// Data keys re-wrapped by this run.
    pub rewrapped: u64,
    /// Whether this run resumed an unfinished rotation instead of starting a new one.
    pub resumed: bool,
}

const REWRAP_BATCH: i64 = 500;

/// Rotates the key-encryption key: creates version n+1, re-wraps every customer data key under it (batched,
/// resumable: re-running finishes an interrupted rotation instead of starting another), and marks the old version
/// `previous`. Field ciphertexts are untouched. Retire old versions afterwards with [`retire_unused_keks`].
pub async fn rotate_kek(
    store: &Store,
    keyring: &Keyring,
    progress: &dyn Progress,
) -> AppResult<(Keyring, RotationReport)> {
    let counts = store.customer_key_counts().await?;
    let pending: i64 = counts
        .iter()
        .filter(|(version, _)| *version < keyring.current_kek)
        .map(|(_, count)| count)
        .sum();
    let resumed = pending > 0;
    let keyring = if resumed {
        keyring.reload(store).await?
    } else {
        let now = now_ms();
        let new_version = keyring
            .keks
            .keys()
            .copied()
            .max()
            .unwrap_or(0)
            .max(keyring.current_kek)
            + 1;
        let kek = SecretKey::generate();
        store
            .insert_keyring_row(
                &KeyringRow {
                    purpose: PURPOSE_KEK.to_owned(),
                    version: new_version,
                    wrapped: Some(crypto::wrap_key(
                        &keyring.master,
                        &keyring_aad(PURPOSE_KEK, new_version),
                        &kek,
                    )),
                    state: "active".to_owned(),
                },
                now,
            )
            .await?;
        for row in store.keyring_rows().await? {
            if row.purpose == PURPOSE_KEK && row.version < new_version && row.state == "active" {
                store
                    .update_keyring_row(
                        &KeyringRow {
                            state: "previous".to_owned(),
                            ..row
                        },
                        now,
                    )
                    .await?;
            }
        }
        keyring.reload(store).await?
    };
    let total: i64 = store
        .customer_key_counts()
        .await?
        .iter()
        .filter(|(version, _)| *version < keyring.current_kek)
        .map(|(_, count)| count)
        .sum();
    let mut rewrapped = 0u64;
    loop {
        let batch = store
            .customer_keys_below_kek(keyring.current_kek, REWRAP_BATCH)
            .await?;
        if batch.is_empty() {
            break;
        }
        let mut updates = Vec::with_capacity(batch.len());
        for row in batch {
            let dek = keyring.unwrap_customer_key(&row)?;
            let previous = row.kek_version;
            updates.push((
                keyring.wrap_customer_key(&row.customer_id, row.dek_version, &dek),
                previous,
            ));
        }
        rewrapped += store.rewrap_customer_keys(&updates, now_ms()).await?;
        progress.update(rewrapped, total.max(0) as u64);
    }
    let report = RotationReport {
        new_version: keyring.current_kek,
        rewrapped,
        resumed,
    };
    Ok((keyring, report))
}

/// Retires every non-current KEK version that no longer wraps any data key: its wrapped material is deleted.
/// Returns the retired versions.
pub async fn retire_unused_keks(store: &Store, keyring: &Keyring) -> AppResult<Vec<i64>> {
    let counts: HashMap<i64, i64> = store.customer_key_counts().await?.into_iter().collect();
    let mut retired = Vec::new();
    for row in store.keyring_rows().await? {
        if row.purpose == PURPOSE_KEK
            && row.version != keyring.current_kek
            && row.state != "retired"
            && counts.get(&row.version).copied().unwrap_or(0) == 0
        {
            retired.push(row.version);
            store
                .update_keyring_row(
                    &KeyringRow {
                        wrapped: None,
                        state: "retired".to_owned(),
                        ..row
                    },
                    now_ms(),
                )
                .await?;
        }
    }
    Ok(retired)
}

/// Key versions and what they wrap.
pub async fn key_status(store: &Store) -> AppResult<KeyStatus> {
    let meta = store
        .master_key_meta()
        .await?
        .ok_or(AppError::NotInitialised)?;
    let counts: HashMap<i64, i64> = store.customer_key_counts().await?.into_iter().collect();
    let mut current = 0;
    let mut versions = Vec::new();
    for row in store.keyring_rows().await? {
        if row.purpose != PURPOSE_KEK {
            continue;
        }
        if row.state == "active" {
            current = current.max(row.version);
        }
        versions.push(KekVersionStatus {
            version: row.version,
            data_keys: counts.get(&row.version).copied().unwrap_or(0),
            state: row.state,
        });
    }
    Ok(KeyStatus {
        master_key_source: meta.source,
        current_kek_version: current,
        kek_versions: versions,
    })
}
