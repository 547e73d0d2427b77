//! The database-backed token vault (`by_vault` reversibility): `tokenize` tokens and kept `replace_fake` values.
//!
//! The operators in `veil-mask` talk to a synchronous [`TokenVault`]; the database is asynchronous. So a write
//! stages its vault work: [`StagedVault::prefetch`] looks up, before the operators run, the surrogate a
//! deterministic entry already has for a value (by a keyed index of scope and value — the value itself is never a
//! lookup key); the operators then record new entries in memory, sealed at once, and the caller commits them in
//! the same transaction as the displays that use them. Resolving a surrogate back ([`Veil::vault_value`]) has no
//! caller outside tests yet: a governed detokenise (reveal of a tokenised field) is still to be built.

use std::collections::HashMap;
use std::sync::Arc;

use veil_mask::operator::{derive_subkey, SurrogateKind, VaultError, VaultScope};
use veil_mask::{BlindIndexer, FieldCipher, TokenVault};
use veil_store::VaultRow;
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult};
use crate::{now_ms, Veil};

/// Keyring purpose of the vault's root key.
const VAULT_PURPOSE: &str = "token_vault";

/// The vault's keys: one seals values, one indexes deterministic entries.
pub struct VaultKeys {
    cipher: FieldCipher,
    index: BlindIndexer,
}

impl std::fmt::Debug for VaultKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("VaultKeys(<redacted>)")
    }
}

fn surrogate_kind_name(kind: SurrogateKind) -> &'static str {
    match kind {
        SurrogateKind::Token => "token",
        SurrogateKind::Fake => "fake",
    }
}

fn kind_name(scope: &VaultScope<'_>) -> &'static str {
    scope.kind.map_or("untyped", veil_pii::PiiKind::as_str)
}

/// Associated data binding a sealed value to its scope and surrogate.
fn value_aad(scope: &VaultScope<'_>, surrogate: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [
        "veil.vault.v1",
        surrogate_kind_name(scope.surrogate),
        kind_name(scope),
        scope.context,
        surrogate,
    ] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

impl VaultKeys {
    fn index_of(&self, scope: &VaultScope<'_>, value: &str) -> Vec<u8> {
        let label = format!(
            "{}|{}|{}",
            surrogate_kind_name(scope.surrogate),
            kind_name(scope),
            scope.context
        );
        self.index.index(&label, value).to_vec()
    }
}

type ScopeKey = (&'static str, &'static str, String);

fn scope_key(scope: &VaultScope<'_>) -> ScopeKey {
    (
        surrogate_kind_name(scope.surrogate),
        kind_name(scope),
        scope.context.to_owned(),
    )
}

/// A vault for one write: deterministic entries prefetched from the database, new entries held (sealed) until
/// the caller commits them with [`StagedVault::into_rows`].
pub struct StagedVault {
    keys: Arc<VaultKeys>,
    customer_id: Option<String>,
    /// `(scope, value index)` → surrogate, from the database or recorded here.
    known: HashMap<(ScopeKey, Vec<u8>), String>,
    /// Surrogates recorded here, with their values (for `value_for` within the same write).
    recorded: HashMap<(ScopeKey, String), Zeroizing<String>>,
    rows: Vec<VaultRow>,
}

impl std::fmt::Debug for StagedVault {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "StagedVault({} new entries)", self.rows.len())
    }
}

impl StagedVault {
    /// An empty staging vault; entries recorded name `customer_id` (erasing the customer deletes them).
    pub fn new(keys: Arc<VaultKeys>, customer_id: Option<String>) -> Self {
        StagedVault {
            keys,
            customer_id,
            known: HashMap::new(),
            recorded: HashMap::new(),
            rows: Vec::new(),
        }
    }

    /// Entries now attributed to `customer_id` (for batches that stage several customers in turn).
    pub fn set_customer(&mut self, customer_id: Option<String>) {
        self.customer_id = customer_id;
    }

    /// Looks up the surrogate a deterministic entry already has for `value` in `scope`.
    pub async fn prefetch(
        &mut self,
        veil: &Veil,
        scope: &VaultScope<'_>,
        value: &str,
    ) -> AppResult<()> {
        let index = self.keys.index_of(scope, value);
        let key = (scope_key(scope), index);
        if self.known.contains_key(&key) {
            return Ok(());
        }
        if let Some(surrogate) = veil
            .store()
            .vault_surrogate(key.0 .0, key.0 .1, &key.0 .2, &key.1)
            .await?
        {
            self.known.insert(key, surrogate);
        }
        Ok(())
    }

    /// The new entries, to be committed with the write that uses them.
    pub fn into_rows(self) -> Vec<VaultRow> {
        self.rows
    }
}

impl TokenVault for StagedVault {
    fn find_surrogate(
        &self,
        scope: &VaultScope<'_>,
        value: &str,
    ) -> Result<Option<String>, VaultError> {
        let index = self.keys.index_of(scope, value);
        Ok(self.known.get(&(scope_key(scope), index)).cloned())
    }

    fn record(
        &mut self,
        scope: &VaultScope<'_>,
        surrogate: &str,
        value: &str,
        deterministic: bool,
    ) -> Result<bool, VaultError> {
        let key = (scope_key(scope), surrogate.to_owned());
        if self.recorded.contains_key(&key) {
            return Ok(false);
        }
        let index = deterministic.then(|| self.keys.index_of(scope, value));
        if let Some(index) = &index {
            self.known
                .insert((key.0.clone(), index.clone()), surrogate.to_owned());
        }
        self.rows.push(VaultRow {
            surrogate_kind: key.0 .0.to_owned(),
            kind: key.0 .1.to_owned(),
            context: key.0 .2.clone(),
            surrogate: surrogate.to_owned(),
            value_ct: self
                .keys
                .cipher
                .seal(&value_aad(scope, surrogate), value.as_bytes()),
            value_index: index,
            customer_id: self.customer_id.clone(),
            created_at: now_ms(),
        });
        self.recorded.insert(key, Zeroizing::new(value.to_owned()));
        Ok(true)
    }

    fn value_for(
        &self,
        scope: &VaultScope<'_>,
        surrogate: &str,
    ) -> Result<Option<String>, VaultError> {
        Ok(self
            .recorded
            .get(&(scope_key(scope), surrogate.to_owned()))
            .map(|value| value.as_str().to_owned()))
    }
}

impl Veil {
    /// The vault's keys, derived from the keyring's `token_vault` key (created on first use).
    pub async fn vault_keys(&self) -> AppResult<Arc<VaultKeys>> {
        self.vault_keys
            .get_or_try_init(|| async {
                let (_, root) = self
                    .keyring()
                    .purpose_key(self.store(), VAULT_PURPOSE)
                    .await?;
                Ok::<_, AppError>(Arc::new(VaultKeys {
                    cipher: FieldCipher::new(&derive_subkey(&root, "veil.vault.seal.v1")),
                    index: BlindIndexer::new(&derive_subkey(&root, "veil.vault.index.v1")),
                }))
            })
            .await
            .cloned()
    }

    /// What `surrogate` stands for in `scope`, if the vault holds it. Crate-private: only the governed
    /// re-identification path may call it, after its grant check and audit entry.
    // No production caller yet: detokenising through a governed reveal is still to be built (partner
    // re-identification uses the partner's key, not the vault). Tests use it to prove what the vault holds.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn vault_value(
        &self,
        scope: &VaultScope<'_>,
        surrogate: &str,
    ) -> AppResult<Option<Zeroizing<String>>> {
        let key = scope_key(scope);
        let Some(row) = self
            .store()
            .vault_entry(key.0, key.1, &key.2, surrogate)
            .await?
        else {
            return Ok(None);
        };
        let keys = self.vault_keys().await?;
        let plain = keys
            .cipher
            .open(&value_aad(scope, surrogate), &row.value_ct)
            .map_err(|_| AppError::Internal("a token-vault entry does not decrypt".to_owned()))?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| AppError::Internal("a token-vault value is not UTF-8".to_owned()))?;
        Ok(Some(Zeroizing::new(text)))
    }
}
