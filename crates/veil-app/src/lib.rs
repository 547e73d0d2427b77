//! Veil's domain services: customers, users and sessions, and the key hierarchy.
//!
//! [`Veil`] is the one handle the HTTP layer and the CLI hold. It owns the [`veil_store::Store`] and the unwrapped
//! [`keys::Keyring`]; every operation takes an [`users::Actor`] and decides what that actor may see. Reads return
//! masked views computed at write time; decryption lives only in [`customers::reveal`].

use std::sync::{Arc, RwLock};

use veil_store::Store;

pub mod audit;
pub mod authz;
pub mod backup;
pub mod care;
pub mod customers;
pub mod deals;
pub mod demo;
pub mod demo_data;
pub mod displays;
pub mod doctor;
pub mod error;
pub mod feedback;
pub mod governance;
pub mod ids;
pub mod import_jobs;
pub mod imports;
pub mod incident;
pub mod industries;
pub mod interactions;
pub mod keys;
pub mod loyalty;
pub mod messages;
pub mod mfa;
pub mod monitor;
pub mod notes;
pub mod orders;
pub mod password_policy;
pub mod policies;
pub mod pool;
pub mod recommendations;
pub mod reports;
pub mod segments;
pub mod tasks;
pub mod teams;
pub mod tickets;
pub mod tokens;
pub mod users;
pub mod vault;

#[cfg(test)]
mod suite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{AppError, AppResult, FieldError};
pub use ids::{CustomerId, UserId};
pub use keys::{Keyring, MasterKeySource};
pub use users::{Actor, Role};
pub use veil_store::{Backend, DatabaseUrl, SensitiveField, StoreError};

/// The application: storage plus keys. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Veil {
    store: Store,
    keyring: RwLock<Arc<Keyring>>,
    /// The team tree and when it was loaded (see `teams::TEAM_CACHE_MS`).
    team_cache: std::sync::Mutex<Option<TeamCache>>,
    /// The security monitor's rule engine and notifier (see [`monitor`]).
    monitor: monitor::MonitorSlot,
    /// Where backups go and how they are encrypted (see [`backup`]).
    backup_settings: RwLock<Option<Arc<backup::BackupSettings>>>,
    /// Keys of the keyed display operators, loaded on first use (see [`displays`]).
    operator_keys: tokio::sync::OnceCell<Arc<veil_mask::OperatorKeys>>,
    /// Keys of the token vault, loaded on first use (see [`vault`]).
    vault_keys: tokio::sync::OnceCell<Arc<vault::VaultKeys>>,
    /// Wakes the background re-mask job after a policy change.
    remask_wake: tokio::sync::Notify,
    /// SLA targets of new tickets (see [`tickets`]).
    sla_targets: RwLock<Arc<tickets::SlaTargets>>,
    /// Points, expiry and tiers of the loyalty programme (see [`loyalty`]).
    loyalty_rules: RwLock<Arc<loyalty::LoyaltyRules>>,
    /// The customer pool's claim limit and return period (see [`pool`]).
    pool_rules: RwLock<Arc<pool::PoolRules>>,
    /// How messages to customers are sent (see [`messages`]); `None` until configured.
    messenger: RwLock<Option<Arc<messages::Messenger>>>,
}

type TeamCache = (i64, Arc<std::collections::HashMap<String, Option<String>>>);

impl Veil {
    /// Connects, migrates and sets up the key hierarchy of a new database (or opens an existing one with
    /// the same master key).
    pub async fn initialise(store: Store, source: &MasterKeySource) -> AppResult<Veil> {
        store.migrate().await?;
        let keyring = Keyring::initialise(&store, source).await?;
        Ok(Veil::with_keyring(store, keyring))
    }

    /// Opens an initialised database, proving the master key matches.
    pub async fn open(store: Store, source: &MasterKeySource) -> AppResult<Veil> {
        store.migrate().await?;
        let keyring = Keyring::open(&store, source).await?;
        Ok(Veil::with_keyring(store, keyring))
    }

    fn with_keyring(store: Store, keyring: Keyring) -> Veil {
        Veil {
            store,
            keyring: RwLock::new(Arc::new(keyring)),
            team_cache: std::sync::Mutex::new(None),
            monitor: monitor::MonitorSlot::default(),
            backup_settings: RwLock::new(None),
            operator_keys: tokio::sync::OnceCell::new(),
            remask_wake: tokio::sync::Notify::new(),
            vault_keys: tokio::sync::OnceCell::new(),
            sla_targets: RwLock::new(Arc::new(tickets::SlaTargets::default())),
            loyalty_rules: RwLock::new(Arc::new(loyalty::LoyaltyRules::default())),
            pool_rules: RwLock::new(Arc::new(pool::PoolRules::default())),
            messenger: RwLock::new(None),
        }
    }

    fn team_cache(&self) -> std::sync::MutexGuard<'_, Option<TeamCache>> {
        self.team_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The storage handle.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current keyring.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace_keyring(&self, keyring: Keyring) {
        *self
            .keyring
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keyring);
    }

    /// Re-reads the keyring (another process rotated keys).
    pub async fn reload_keyring(&self) -> AppResult<()> {
        let keyring = self.keyring().reload(&self.store).await?;
        self.replace_keyring(keyring);
        Ok(())
    }

    /// Unwraps a customer's data key, re-reading the keyring first if another process rotated keys since we
    /// loaded it.
    pub async fn unwrap_customer_key(
        &self,
        key_row: &veil_store::CustomerKeyRow,
    ) -> AppResult<veil_mask::SecretKey> {
        if !self.keyring().has_kek(key_row.kek_version) {
            self.reload_keyring().await?;
        }
        self.keyring().unwrap_customer_key(key_row)
    }

    /// Replaces the master key (new key file or passphrase): re-wraps the keyring only.
    pub async fn replace_master_key(&self, new_source: &MasterKeySource) -> AppResult<()> {
        let keyring = keys::replace_master_key(&self.store, &self.keyring(), new_source).await?;
        self.replace_keyring(keyring);
        let source = match new_source {
            MasterKeySource::File(_) => "file",
            MasterKeySource::Passphrase(_) => "passphrase",
        };
        self.record(&[audit::EventExt::detail(
            audit::event(None, "key.rotate_master", audit::Outcome::Ok),
            serde_json::json!({"new_source": source}),
        )])
        .await?;
        Ok(())
    }

    /// Rotates the key-encryption key (re-wrapping every data key) and retires versions no longer used.
    pub async fn rotate_keys(
        &self,
        progress: &dyn keys::Progress,
    ) -> AppResult<(keys::RotationReport, Vec<i64>)> {
        let (keyring, report) = keys::rotate_kek(&self.store, &self.keyring(), progress).await?;
        self.replace_keyring(keyring);
        let retired = keys::retire_unused_keks(&self.store, &self.keyring()).await?;
        self.record(&[audit::EventExt::detail(
            audit::event(None, "key.rotate", audit::Outcome::Ok),
            serde_json::json!({"new_version": report.new_version, "rewrapped": report.rewrapped,
                               "resumed": report.resumed, "retired": retired}),
        )])
        .await?;
        Ok((report, retired))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Today's date in China Standard Time (UTC+8), for "not in the future" checks.
pub fn today() -> veil_pii::Date {
    use chrono::Datelike;
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    let now = chrono::Utc::now().with_timezone(&china);
    veil_pii::Date {
        year: now.year(),
        month: now.month(),
        day: now.day(),
    }
}

/// RFC 3339 (UTC, milliseconds) for a Unix-ms timestamp.
pub fn format_time(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
