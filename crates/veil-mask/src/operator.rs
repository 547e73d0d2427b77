//! The masking methods as operators, each declaring how it is undone (principle 5).
//!
//! An [`Operator`] is a value (it lives in policy documents as JSON, `{"op": "mask", …}`); it holds no key. Keys
//! live in [`OperatorKeys`], the token vault behind the [`TokenVault`] trait, and both reach an operator through an
//! [`OperatorContext`] together with the *context* (usually the field name) that domain-separates every keyed
//! operator: the FF1 tweak, the AEAD associated data, the HMAC input, the vault scope.
//!
//! | operator | what it does | [`Reversibility`] |
//! | --- | --- | --- |
//! | `mask`, `default_mask` | keep some characters, mask the rest ([`crate::display`]) | `by_policy`: the original is kept encrypted; a policy or grant shows it |
//! | `redact` | a fixed replacement | `irreversible` |
//! | `hash` | keyed HMAC-SHA-256, hex or base32 | `irreversible` (equality only) |
//! | `generalize` | birth date → year or age band; address → province or city; `cn_id` → province, region + birth year | `irreversible` |
//! | `replace_fake` | a realistic synthetic value of the same kind ([`crate::fake`]) | `irreversible`, or `by_vault` with `keep_mapping` |
//! | `tokenize` | a random token kept in the token vault, optionally deterministic per value and context | `by_vault` |
//! | `fpe` | NIST SP 800-38G FF1-AES-256 keeping the format (and validity) of mobiles, IDs and cards | `by_key` |
//! | `encrypt` | AES-256-GCM (random nonce) or AES-256-GCM-SIV (deterministic), base64url | `by_key` |
//!
//! The hybrid method (混合) is not an operator but a pipeline: a field's policy names one operator per stage
//! (display per role, export per profile, storage), each undone by its own rule; see [`crate::policy`].
//!
//! [`apply`] transforms; [`reverse`] undoes a `by_key` or `by_vault` operator and refuses the others with an error
//! that says which rule applies ([`OperatorError::Irreversible`], [`OperatorError::ByPolicyOnly`]). Display
//! operators fail safe: a value that does not fit its kind becomes [`FULL_MASK`]. Pseudonymising operators (`fpe`)
//! refuse such a value with [`OperatorError::InvalidInput`] instead, because a pseudonym that is not a pseudonym of
//! anything would not decrypt.

use std::collections::HashMap;
use std::fmt;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use veil_pii::{Date, PiiKind};
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, FieldCipher, SecretKey, KEY_LEN};
use crate::display::{self, MaskSpec, FULL_MASK};
use crate::fake;
use crate::ff1::{self, Ff1Cipher, Ff1Error, PreparedTweak, MIN_DOMAIN};

/// How a transformed value can be turned back into the original (principle 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reversibility {
    /// The transformation is a view: the original is kept encrypted beside it and a policy or grant shows it.
    ByPolicy,
    /// Whoever holds the operator's key can undo it.
    ByKey,
    /// Whoever can read the token vault can undo it.
    ByVault,
    /// Nothing can undo it.
    Irreversible,
}

impl Reversibility {
    /// The stable snake_case name (`"by_policy"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reversibility::ByPolicy => "by_policy",
            Reversibility::ByKey => "by_key",
            Reversibility::ByVault => "by_vault",
            Reversibility::Irreversible => "irreversible",
        }
    }
}

impl fmt::Display for Reversibility {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How a keyed hash is written out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashEncoding {
    /// 64 lower-case hexadecimal characters.
    #[default]
    Hex,
    /// 52 lower-case RFC 4648 base32 characters, no padding.
    Base32,
}

/// What `generalize` reduces a value to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generalization {
    /// `birth_date`, `cn_id`: the birth year, `1984`.
    Year,
    /// `birth_date`, `cn_id`: the age today in a band of `band_width` years (default 10), `30-39`.
    AgeBand,
    /// `address`: the first administrative level, `浙江省`; `cn_id`: the province of the region code.
    Province,
    /// `address`: province and city, `浙江省杭州市` (a municipality: `北京市`).
    City,
    /// `cn_id`: the six-digit region code and the birth year, `110101-1984`.
    RegionAndBirthYear,
}

/// How much of a resident ID's region code `fpe` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionKeep {
    /// The two-digit province code; the four county digits are encrypted.
    Province,
    /// The whole six-digit county code.
    County,
}

/// Parameters of the `fpe` operator per kind. Every field has a default, so `{"op": "fpe"}` is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FpeOptions {
    /// `cn_mobile`: leading digits kept, 1 to 5 (default 3, the network segment). The rest is encrypted.
    pub mobile_keep_prefix: u8,
    /// `cn_id`: how much of the region code is kept (default `province`).
    pub id_keep_region: RegionKeep,
    /// `cn_id`: keep the birth date (default true). When false, the date is encrypted into another real date
    /// between [`FPE_DATE_FIRST`] and [`FPE_DATE_LAST`].
    pub id_keep_birth_date: bool,
    /// `cn_id`: keep the sex (the parity of the sequence number; default true).
    pub id_keep_sex: bool,
    /// `bank_card`: keep the six-digit BIN (default true); otherwise only the first digit (the card's industry).
    pub card_keep_bin: bool,
    /// `bank_card`: keep the last four digits (default false). The Luhn digit stays valid either way.
    pub card_keep_last4: bool,
}

impl Default for FpeOptions {
    fn default() -> Self {
        FpeOptions {
            mobile_keep_prefix: 3,
            id_keep_region: RegionKeep::Province,
            id_keep_birth_date: true,
            id_keep_sex: true,
            card_keep_bin: true,
            card_keep_last4: false,
        }
    }
}

/// The first birth date `fpe` can map a resident ID's date to or from when the date is not kept.
pub const FPE_DATE_FIRST: Date = Date {
    year: 1900,
    month: 1,
    day: 1,
};
/// The last such date. Fixed forever (it defines the permutation): a later birth date cannot have its date
/// encrypted and gets [`OperatorError::OutOfDomain`]; keep the birth date for such values.
pub const FPE_DATE_LAST: Date = Date {
    year: 2025,
    month: 12,
    day: 31,
};
const FPE_DATE_DAYS: u64 =
    (FPE_DATE_LAST.days_since_unix_epoch() - FPE_DATE_FIRST.days_since_unix_epoch() + 1) as u64;

/// One masking method with its parameters. Serialised as `{"op": "<name>", …parameters}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operator {
    /// Keep N leading and M trailing characters, mask the rest.
    Mask(MaskSpec),
    /// The kind's default display ([`display::default_display`]).
    DefaultMask,
    /// A fixed replacement (default [`FULL_MASK`]).
    Redact {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replacement: Option<String>,
    },
    /// Keyed HMAC-SHA-256 of the context and value.
    Hash {
        #[serde(default)]
        encoding: HashEncoding,
    },
    /// A coarser value: year, age band, province, city, region.
    Generalize {
        to: Generalization,
        /// Width of an age band in years (1–100, default 10); only for `age_band`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        band_width: Option<u8>,
    },
    /// A realistic synthetic value of the same kind; with `keep_mapping` the vault remembers what it replaced.
    ReplaceFake {
        #[serde(default)]
        keep_mapping: bool,
    },
    /// A random token kept in the vault; `deterministic` gives the same value the same token in one context.
    Tokenize {
        #[serde(default)]
        deterministic: bool,
    },
    /// Format-preserving encryption (FF1-AES-256).
    Fpe(FpeOptions),
    /// AES-256-GCM, or AES-256-GCM-SIV when `deterministic`, written as base64url.
    Encrypt {
        #[serde(default)]
        deterministic: bool,
    },
}

impl Operator {
    /// The stable name used in documents (`"mask"`, `"replace_fake"`, …).
    pub const fn name(&self) -> &'static str {
        match self {
            Operator::Mask(_) => "mask",
            Operator::DefaultMask => "default_mask",
            Operator::Redact { .. } => "redact",
            Operator::Hash { .. } => "hash",
            Operator::Generalize { .. } => "generalize",
            Operator::ReplaceFake { .. } => "replace_fake",
            Operator::Tokenize { .. } => "tokenize",
            Operator::Fpe(_) => "fpe",
            Operator::Encrypt { .. } => "encrypt",
        }
    }

    /// How a value this operator produced can be turned back into the original.
    pub const fn reversibility(&self) -> Reversibility {
        match self {
            Operator::Mask(_) | Operator::DefaultMask => Reversibility::ByPolicy,
            Operator::Redact { .. } | Operator::Hash { .. } | Operator::Generalize { .. } => {
                Reversibility::Irreversible
            }
            Operator::ReplaceFake { keep_mapping: true } | Operator::Tokenize { .. } => {
                Reversibility::ByVault
            }
            Operator::ReplaceFake {
                keep_mapping: false,
            } => Reversibility::Irreversible,
            Operator::Fpe(_) | Operator::Encrypt { .. } => Reversibility::ByKey,
        }
    }

    /// Whether this operator can be applied to values of `kind` (`None`: a custom field with no kind) with its
    /// parameters. [`apply`] checks this first; policy validation reports it per field.
    pub fn check(&self, kind: Option<PiiKind>) -> Result<(), OperatorError> {
        let unsupported = || OperatorError::Unsupported {
            operator: self.name(),
            kind: kind_name(kind),
        };
        match self {
            Operator::Mask(_)
            | Operator::Redact { .. }
            | Operator::Hash { .. }
            | Operator::Tokenize { .. }
            | Operator::Encrypt { .. } => Ok(()),
            Operator::DefaultMask => kind.map(|_| ()).ok_or_else(unsupported),
            Operator::Generalize { to, band_width } => {
                use Generalization as G;
                use PiiKind as K;
                let supported = matches!(
                    (to, kind),
                    (G::Year | G::AgeBand, Some(K::BirthDate | K::CnId))
                        | (G::Province, Some(K::Address | K::CnId))
                        | (G::City, Some(K::Address))
                        | (G::RegionAndBirthYear, Some(K::CnId))
                );
                if !supported {
                    return Err(unsupported());
                }
                match (to, band_width) {
                    (G::AgeBand, Some(width)) if !(1..=100).contains(width) => Err(
                        OperatorError::InvalidOptions("band_width must be between 1 and 100"),
                    ),
                    (G::AgeBand, _) | (_, None) => Ok(()),
                    (_, Some(_)) => Err(OperatorError::InvalidOptions(
                        "band_width applies only to generalize to age_band",
                    )),
                }
            }
            Operator::ReplaceFake { .. } => match kind {
                Some(
                    PiiKind::PersonName
                    | PiiKind::CnMobile
                    | PiiKind::CnId
                    | PiiKind::BankCard
                    | PiiKind::Email
                    | PiiKind::Address
                    | PiiKind::BirthDate,
                ) => Ok(()),
                _ => Err(unsupported()),
            },
            Operator::Fpe(options) => match kind {
                Some(PiiKind::CnMobile) => {
                    if (1..=5).contains(&options.mobile_keep_prefix) {
                        Ok(())
                    } else {
                        Err(OperatorError::InvalidOptions(
                            "mobile_keep_prefix must be between 1 and 5 (FF1 needs at least 6 digits)",
                        ))
                    }
                }
                Some(PiiKind::CnId) => {
                    if id_layout(options).modulus >= MIN_DOMAIN {
                        Ok(())
                    } else {
                        Err(OperatorError::InvalidOptions(
                            "keeping the county code and the birth date leaves too few digits for FF1; keep only \
                             the province (id_keep_region: province) or encrypt the birth date",
                        ))
                    }
                }
                Some(PiiKind::BankCard) | None => Ok(()),
                Some(_) => Err(unsupported()),
            },
        }
    }
}

/// The name of a kind in messages, `untyped` for a custom field without one.
fn kind_name(kind: Option<PiiKind>) -> &'static str {
    kind.map_or("untyped", PiiKind::as_str)
}

/// Errors of applying or reversing an operator. Messages name the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// The operator does not apply to this kind (`fpe` on an e-mail address, `default_mask` on untyped text, …).
    #[error("operator {operator} cannot be applied to {kind} values")]
    Unsupported {
        operator: &'static str,
        kind: &'static str,
    },
    /// The operator's parameters are invalid.
    #[error("invalid operator options: {0}")]
    InvalidOptions(&'static str),
    /// The value does not have the shape the operator needs (pseudonymising operators do not fail safe).
    #[error("the value is not a well-formed {0}")]
    InvalidInput(&'static str),
    /// The value is valid but outside what the operator can encode (e.g. a birth date after [`FPE_DATE_LAST`]).
    #[error("the value is outside the operator's domain: {0}")]
    OutOfDomain(&'static str),
    /// `reverse` on an irreversible operator.
    #[error(
        "operator {operator} is irreversible: the original cannot be recovered from its output"
    )]
    Irreversible { operator: &'static str },
    /// `reverse` on a masking operator: its output is a view, the original is kept encrypted elsewhere.
    #[error(
        "operator {operator} is undone by policy, not by reversing its output: the original is kept encrypted \
         and shown through a grant or a policy"
    )]
    ByPolicyOnly { operator: &'static str },
    /// A keyed operator was applied without its key.
    #[error("no {0} key was provided")]
    MissingKey(&'static str),
    /// `tokenize`, or `replace_fake` with a mapping, without a token vault.
    #[error("operator {0} needs a token vault and none was provided")]
    MissingVault(&'static str),
    /// The token is not in the vault (or belongs to another kind or context).
    #[error("the token is not in the vault for this kind and context")]
    UnknownToken,
    /// A value given to `reverse` is not something the operator produces.
    #[error("malformed input to reverse: {0}")]
    Malformed(&'static str),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Decryption failed (wrong key, context or kind, or tampered ciphertext).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// FF1 refused its input.
    #[error(transparent)]
    Fpe(#[from] Ff1Error),
}

/// The keys of the keyed operators, each computed once (key schedules, HMAC state) and reused for every value.
/// Operators never hold keys; a missing key is [`OperatorError::MissingKey`]. `Debug` is redacted.
#[derive(Default)]
pub struct OperatorKeys {
    hash: Option<Hmac<Sha256>>,
    fake: Option<Hmac<Sha256>>,
    fpe: Option<Ff1Cipher>,
    encryption: Option<FieldCipher>,
    deterministic: Option<Aes256GcmSiv>,
}

impl fmt::Debug for OperatorKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OperatorKeys")
            .field("hash", &self.hash.is_some())
            .field("fake", &self.fake.is_some())
            .field("fpe", &self.fpe.is_some())
            .field("encryption", &self.encryption.is_some())
            .field("deterministic", &self.deterministic.is_some())
            .finish()
    }
}

/// A 32-byte subkey of `root` for one purpose: HMAC-SHA-256(root, label).
pub fn derive_subkey(root: &SecretKey, label: &str) -> SecretKey {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(root.expose_secret())
        .expect("HMAC accepts keys of any length");
    mac.update(label.as_bytes());
    let digest = Zeroizing::new(<[u8; KEY_LEN]>::from(mac.finalize().into_bytes()));
    SecretKey::from_bytes(*digest)
}

fn hmac_for(key: &SecretKey) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
        .expect("HMAC accepts keys of any length")
}

impl OperatorKeys {
    /// No keys: only the unkeyed operators (mask, redact, generalize, unseeded replace_fake) work.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every operator key derived from one root key, one subkey per purpose (`veil.operator.<purpose>.v1`), so
    /// that no key serves two algorithms.
    pub fn derive(root: &SecretKey) -> Self {
        let subkey = |purpose: &str| derive_subkey(root, &format!("veil.operator.{purpose}.v1"));
        OperatorKeys::none()
            .with_hash_key(&subkey("hash"))
            .with_fake_key(&subkey("fake"))
            .with_fpe_key(&subkey("fpe"))
            .with_encryption_key(&subkey("encrypt"))
            .with_deterministic_key(&subkey("encrypt-deterministic"))
    }

    /// The HMAC key of `hash`.
    pub fn with_hash_key(mut self, key: &SecretKey) -> Self {
        self.hash = Some(hmac_for(key));
        self
    }

    /// The key that seeds `replace_fake`, making it deterministic: the same value in the same context gets the
    /// same fake. Without it fakes are drawn at random.
    pub fn with_fake_key(mut self, key: &SecretKey) -> Self {
        self.fake = Some(hmac_for(key));
        self
    }

    /// The FF1-AES-256 key of `fpe`.
    pub fn with_fpe_key(mut self, key: &SecretKey) -> Self {
        self.fpe = Some(Ff1Cipher::decimal(key));
        self
    }

    /// The AES-256-GCM key of randomised `encrypt`.
    pub fn with_encryption_key(mut self, key: &SecretKey) -> Self {
        self.encryption = Some(FieldCipher::new(key));
        self
    }

    /// The AES-256-GCM-SIV key of deterministic `encrypt`.
    pub fn with_deterministic_key(mut self, key: &SecretKey) -> Self {
        self.deterministic = Some(Aes256GcmSiv::new(key.expose_secret().into()));
        self
    }

    fn fpe(&self) -> Result<&Ff1Cipher, OperatorError> {
        self.fpe.as_ref().ok_or(OperatorError::MissingKey("fpe"))
    }
}

/// What a vault entry stands for: tokens and fake-value mappings live in separate namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SurrogateKind {
    /// A `tokenize` token.
    Token,
    /// A `replace_fake` value kept with `keep_mapping`.
    Fake,
}

/// Where a surrogate is valid: its namespace, the value's kind and the context (field). A surrogate from one
/// scope never resolves in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VaultScope<'a> {
    pub surrogate: SurrogateKind,
    pub kind: Option<PiiKind>,
    pub context: &'a str,
}

/// A failure of the vault's storage. The message must not contain a value or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token vault: {0}")]
pub struct VaultError(pub String);

/// Storage for surrogate → value mappings (tokens, kept fakes). Veil's store implements it over the database,
/// keeping each value encrypted (and looking deterministic entries up by a blind index of the value, never by
/// plaintext); [`MemoryVault`] is the in-memory version for tests and previews. Surrogates are generated here, in
/// the operator, so every vault issues the same formats.
pub trait TokenVault {
    /// The surrogate recorded for `value` in `scope` by an earlier deterministic [`TokenVault::record`], if any.
    fn find_surrogate(
        &self,
        scope: &VaultScope<'_>,
        value: &str,
    ) -> Result<Option<String>, VaultError>;

    /// Records that `surrogate` stands for `value` in `scope`; `deterministic` entries are also found by
    /// [`TokenVault::find_surrogate`]. Returns `Ok(false)`, recording nothing, if `surrogate` is already taken in
    /// `scope` (the operator then draws another).
    fn record(
        &mut self,
        scope: &VaultScope<'_>,
        surrogate: &str,
        value: &str,
        deterministic: bool,
    ) -> Result<bool, VaultError>;

    /// The value `surrogate` stands for in `scope`, if recorded. Only the reveal path should reach this.
    fn value_for(
        &self,
        scope: &VaultScope<'_>,
        surrogate: &str,
    ) -> Result<Option<String>, VaultError>;
}

type VaultKey = (SurrogateKind, Option<PiiKind>, String, String);

/// A [`TokenVault`] in memory, for tests and previews. It holds values in plaintext memory (zeroized on drop),
/// so it must not back real data.
#[derive(Default)]
pub struct MemoryVault {
    values: HashMap<VaultKey, Zeroizing<String>>,
    deterministic: HashMap<VaultKey, String>,
}

impl fmt::Debug for MemoryVault {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "MemoryVault({} entries)", self.values.len())
    }
}

impl MemoryVault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many surrogates are recorded.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn vault_key(scope: &VaultScope<'_>, text: &str) -> VaultKey {
    (
        scope.surrogate,
        scope.kind,
        scope.context.to_owned(),
        text.to_owned(),
    )
}

impl TokenVault for MemoryVault {
    fn find_surrogate(
        &self,
        scope: &VaultScope<'_>,
        value: &str,
    ) -> Result<Option<String>, VaultError> {
        Ok(self.deterministic.get(&vault_key(scope, value)).cloned())
    }

    fn record(
        &mut self,
        scope: &VaultScope<'_>,
        surrogate: &str,
        value: &str,
        deterministic: bool,
    ) -> Result<bool, VaultError> {
        let key = vault_key(scope, surrogate);
        if self.values.contains_key(&key) {
            return Ok(false);
        }
        self.values.insert(key, Zeroizing::new(value.to_owned()));
        if deterministic {
            self.deterministic
                .insert(vault_key(scope, value), surrogate.to_owned());
        }
        Ok(true)
    }

    fn value_for(
        &self,
        scope: &VaultScope<'_>,
        surrogate: &str,
    ) -> Result<Option<String>, VaultError> {
        Ok(self
            .values
            .get(&vault_key(scope, surrogate))
            .map(|value| value.as_str().to_owned()))
    }
}

/// Everything an operator may need besides the value: keys, the vault, the context and today's date.
pub struct OperatorContext<'a> {
    keys: &'a OperatorKeys,
    vault: Option<&'a mut dyn TokenVault>,
    context: &'a str,
    today: Date,
    /// FF1 tweaks prepared in this context (per kind and numeral length): a context is typically one field of
    /// one batch, so this saves the tweak's AES calls on every value after the first.
    ff1_tweaks: Vec<(Vec<u8>, PreparedTweak)>,
}

impl fmt::Debug for OperatorContext<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OperatorContext")
            .field("keys", self.keys)
            .field("vault", &self.vault.is_some())
            .field("context", &self.context)
            .field("today", &self.today)
            .finish()
    }
}

impl<'a> OperatorContext<'a> {
    /// A context without a vault. `context` (usually the field name, e.g. `phone`) domain-separates every keyed
    /// operator: the same value in two contexts gets unrelated hashes, tokens, pseudonyms and ciphertexts, and a
    /// value reverses only in the context it was made in. `today` dates age bands.
    pub fn new(keys: &'a OperatorKeys, context: &'a str, today: Date) -> Self {
        OperatorContext {
            keys,
            vault: None,
            context,
            today,
            ff1_tweaks: Vec::new(),
        }
    }

    /// The same context with a token vault (needed by `tokenize` and by `replace_fake` with `keep_mapping`).
    pub fn with_vault(mut self, vault: &'a mut dyn TokenVault) -> Self {
        self.vault = Some(vault);
        self
    }

    fn vault(&mut self, operator: &'static str) -> Result<&mut dyn TokenVault, OperatorError> {
        match self.vault.as_mut() {
            Some(vault) => Ok(&mut **vault),
            None => Err(OperatorError::MissingVault(operator)),
        }
    }

    fn scope(&self, surrogate: SurrogateKind, kind: Option<PiiKind>) -> VaultScope<'a> {
        VaultScope {
            surrogate,
            kind,
            context: self.context,
        }
    }
}

/// Domain-separation bytes for keyed operators: a label, the kind and the context, length-prefixed.
fn scope_bytes(label: &str, kind: Option<PiiKind>, context: &str) -> Vec<u8> {
    let kind = kind_name(kind);
    let mut out = Vec::with_capacity(16 + label.len() + kind.len() + context.len());
    for part in ["veil.operator.v1", label, kind, context] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Applies `op` to `normalized`, a value of `kind` already validated and normalised by `veil_pii::validate`.
pub fn apply(
    op: &Operator,
    kind: PiiKind,
    normalized: &str,
    ctx: &mut OperatorContext<'_>,
) -> Result<String, OperatorError> {
    apply_to(op, Some(kind), normalized, ctx)
}

/// Applies `op` to a value of a custom field that has no [`PiiKind`]: only kind-agnostic operators apply
/// (`mask`, `redact`, `hash`, `tokenize`, `encrypt`, and `fpe` on a string of at least 6 digits).
pub fn apply_untyped(
    op: &Operator,
    value: &str,
    ctx: &mut OperatorContext<'_>,
) -> Result<String, OperatorError> {
    apply_to(op, None, value, ctx)
}

/// Undoes `op` on `transformed` (what [`apply`] returned for `kind` in the same context): decrypts `fpe` and
/// `encrypt` with their keys, looks `tokenize` and kept fakes up in the vault. A `by_policy` operator gives
/// [`OperatorError::ByPolicyOnly`], an irreversible one [`OperatorError::Irreversible`].
pub fn reverse(
    op: &Operator,
    kind: PiiKind,
    transformed: &str,
    ctx: &mut OperatorContext<'_>,
) -> Result<String, OperatorError> {
    reverse_to(op, Some(kind), transformed, ctx)
}

/// [`reverse`] for a custom field without a kind.
pub fn reverse_untyped(
    op: &Operator,
    transformed: &str,
    ctx: &mut OperatorContext<'_>,
) -> Result<String, OperatorError> {
    reverse_to(op, None, transformed, ctx)
}

fn apply_to(
    op: &Operator,
    kind: Option<PiiKind>,
    value: &str,
    ctx: &mut OperatorContext<'_>,
) -> Result<String, OperatorError> {
    op.check(kind)?;
    match op {
        Operator::Mask(spec) => {
            // Fail safe, as the default displays: a value that is not a normalised value of its kind is masked
            // entirely, so that keeping "the last 4" never shows the last 4 of something else.
            let fits = kind.is_none_or(|kind| {
                veil_pii::validate(kind, value, ctx.today)
                    .is_ok_and(|valid| valid.normalized == value)
            });
            if !fits {
                return Ok(FULL_MASK.to_owned());
            }
            let masked = display::mask(value, spec);
            // A mask that changes nothing (only separators, or mask characters) shows the value as it is.
            Ok(if masked == value && !value.is_empty() {
                FULL_MASK.to_owned()
            } else {
                masked
            })
        }
        Operator::DefaultMask => Ok(display::default_display(
            kind.expect("checked: default_mask needs a kind"),
            value,
        )),
        Operator::Redact { replacement } => {
            Ok(replacement.clone().unwrap_or_else(|| FULL_MASK.to_owned()))
        }
        Operator::Hash { encoding } => {
            let mut mac = ctx
                .keys
                .hash
                .clone()
                .ok_or(OperatorError::MissingKey("hash"))?;
            mac.update(&scope_bytes("hash", kind, ctx.context));
            mac.update(value.as_bytes());
            let digest = mac.finalize().into_bytes();
            Ok(match encoding {
                HashEncoding::Hex => hex(&digest),
                HashEncoding::Base32 => base32(&digest),
            })
        }
        Operator::Generalize { to, band_width } => Ok(generalize(
            *to,
            band_width.unwrap_or(10),
            kind.expect("checked: generalize needs a kind"),
            value,
            ctx.today,
        )
        .unwrap_or_else(|| FULL_MASK.to_owned())),
        Operator::ReplaceFake { keep_mapping } => {
            let kind = kind.expect("checked: replace_fake needs a kind");
            replace_fake(kind, value, *keep_mapping, ctx)
        }
        Operator::Tokenize { deterministic } => tokenize(kind, value, *deterministic, ctx),
        Operator::Fpe(options) => fpe(options, kind, value, ctx, true),
        Operator::Encrypt { deterministic } => {
            let aad = scope_bytes("encrypt", kind, ctx.context);
            let sealed = if *deterministic {
                let cipher = ctx
                    .keys
                    .deterministic
                    .as_ref()
                    .ok_or(OperatorError::MissingKey("deterministic encryption"))?;
                let mut sealed = vec![DETERMINISTIC_FORMAT];
                sealed.extend(
                    cipher
                        .encrypt(
                            Nonce::from_slice(&DETERMINISTIC_NONCE),
                            Payload {
                                msg: value.as_bytes(),
                                aad: &aad,
                            },
                        )
                        .expect("AES-GCM-SIV encryption only fails for inputs larger than 64 GiB"),
                );
                sealed
            } else {
                ctx.keys
                    .encryption
                    .as_ref()
                    .ok_or(OperatorError::MissingKey("encryption"))?
                    .seal(&aad, value.as_bytes())
            };
            Ok(URL_SAFE_NO_PAD.encode(sealed))
        }
    }
}

/// First byte of a deterministic `encrypt` output (randomised outputs use [`FieldCipher`]'s format byte, 1).
const DETERMINISTIC_FORMAT: u8 = 2;

/// The fixed nonce of deterministic encryption. AES-GCM-SIV (RFC 8452) derives its real IV from the key, the
/// nonce, the associated data and the plaintext, so repeating a nonce reveals only whether two plaintexts (in the
/// same context) are equal — exactly the property equality joins need — and nothing else (RFC 8452 §9). A random
/// nonce would break joins; a fixed one costs no bytes.
const DETERMINISTIC_NONCE: [u8; 12] = [0; 12];

fn reverse_to(
    op: &Operator,
    kind: Option<PiiKind>,
    transformed: &str,
    ctx: &mut OperatorContext<'_>,
) -> Result<String, OperatorError> {
    match op.reversibility() {
        Reversibility::ByPolicy => {
            return Err(OperatorError::ByPolicyOnly {
                operator: op.name(),
            })
        }
        Reversibility::Irreversible => {
            return Err(OperatorError::Irreversible {
                operator: op.name(),
            })
        }
        Reversibility::ByKey | Reversibility::ByVault => {}
    }
    op.check(kind)?;
    match op {
        Operator::Tokenize { .. } | Operator::ReplaceFake { .. } => {
            let surrogate = if matches!(op, Operator::Tokenize { .. }) {
                SurrogateKind::Token
            } else {
                SurrogateKind::Fake
            };
            let scope = ctx.scope(surrogate, kind);
            ctx.vault(op.name())?
                .value_for(&scope, transformed)?
                .ok_or(OperatorError::UnknownToken)
        }
        Operator::Fpe(options) => fpe(options, kind, transformed, ctx, false),
        Operator::Encrypt { deterministic } => {
            let sealed = URL_SAFE_NO_PAD
                .decode(transformed)
                .map_err(|_| OperatorError::Malformed("not base64url"))?;
            let aad = scope_bytes("encrypt", kind, ctx.context);
            let plaintext = if *deterministic {
                let cipher = ctx
                    .keys
                    .deterministic
                    .as_ref()
                    .ok_or(OperatorError::MissingKey("deterministic encryption"))?;
                let Some((&DETERMINISTIC_FORMAT, body)) = sealed.split_first() else {
                    return Err(CryptoError::Malformed("unknown format version").into());
                };
                Zeroizing::new(
                    cipher
                        .decrypt(
                            Nonce::from_slice(&DETERMINISTIC_NONCE),
                            Payload {
                                msg: body,
                                aad: &aad,
                            },
                        )
                        .map_err(|_| CryptoError::Integrity)?,
                )
            } else {
                ctx.keys
                    .encryption
                    .as_ref()
                    .ok_or(OperatorError::MissingKey("encryption"))?
                    .open(&aad, &sealed)?
            };
            String::from_utf8(plaintext.to_vec())
                .map_err(|_| OperatorError::Malformed("the plaintext is not UTF-8"))
        }
        _ => unreachable!("only by_key and by_vault operators get here"),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xF)]));
    }
    out
}

/// RFC 4648 base32, lower case, without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The birth date inside an 18-character resident ID.
fn id_birth_date(value: &str) -> Option<Date> {
    let bytes = value.as_bytes();
    (bytes.len() == 18 && bytes[..17].iter().all(u8::is_ascii_digit))
        .then(|| Date::parse_compact(&bytes[6..14]))
        .flatten()
}

fn age_band(born: Date, today: Date, width: u8) -> Option<String> {
    let age = born.age_on(today);
    if age < 0 {
        return None;
    }
    let width = i32::from(width.max(1));
    let low = age / width * width;
    Some(if width == 1 {
        low.to_string()
    } else {
        format!("{low}-{}", low + width - 1)
    })
}

const MUNICIPALITIES: [&str; 4] = ["北京市", "天津市", "上海市", "重庆市"];

fn generalize(
    to: Generalization,
    band_width: u8,
    kind: PiiKind,
    value: &str,
    today: Date,
) -> Option<String> {
    let birth = || match kind {
        PiiKind::BirthDate => Date::parse_iso(value),
        PiiKind::CnId => id_birth_date(value),
        _ => None,
    };
    match (to, kind) {
        (Generalization::Year, _) => birth().map(|date| format!("{:04}", date.year)),
        (Generalization::AgeBand, _) => age_band(birth()?, today, band_width),
        (Generalization::Province, PiiKind::CnId) => {
            id_birth_date(value)?;
            veil_pii::cn_id::province_name(&value[..2]).map(str::to_owned)
        }
        (Generalization::RegionAndBirthYear, PiiKind::CnId) => {
            let born = id_birth_date(value)?;
            Some(format!("{}-{:04}", &value[..6], born.year))
        }
        (Generalization::Province | Generalization::City, PiiKind::Address) => {
            let (ends, count) = display::admin_level_ends(value);
            if count == 0 {
                return None;
            }
            let first = &value[..ends[0]];
            let keep = if to == Generalization::Province
                || count == 1
                || MUNICIPALITIES.contains(&first)
            {
                ends[0]
            } else {
                ends[1]
            };
            Some(value[..keep].to_owned())
        }
        _ => None,
    }
}

/// The random source of `replace_fake`: seeded from HMAC(fake key, scope, value) when a fake key is set, so the
/// same value in the same context always gets the same fake; the thread's CSPRNG otherwise.
fn fake_rng(keys: &OperatorKeys, kind: PiiKind, context: &str, value: &str) -> Box<dyn RngCore> {
    match &keys.fake {
        Some(mac) => {
            let mut mac = mac.clone();
            mac.update(&scope_bytes("fake", Some(kind), context));
            mac.update(value.as_bytes());
            Box::new(StdRng::from_seed(mac.finalize().into_bytes().into()))
        }
        None => Box::new(rand::thread_rng()),
    }
}

fn fake_value(kind: PiiKind, rng: &mut dyn RngCore) -> String {
    match kind {
        PiiKind::PersonName => {
            let sex = fake::sex(rng);
            fake::person_name(rng, sex)
        }
        PiiKind::CnMobile => fake::cn_mobile(rng),
        PiiKind::CnId => {
            let district = fake::district(rng);
            let sex = fake::sex(rng);
            fake::cn_id(rng, district, sex).1
        }
        PiiKind::BankCard => fake::bank_card(rng),
        PiiKind::Email => fake::example_email(rng),
        PiiKind::Address => {
            let district = fake::district(rng);
            fake::address(rng, district)
        }
        PiiKind::BirthDate => fake::birth_date(rng).to_string(),
        _ => unreachable!("checked: replace_fake supports this kind"),
    }
}

/// How many surrogates are drawn before giving up on finding one that is free (and differs from the value).
const MAX_DRAWS: usize = 64;

fn replace_fake(
    kind: PiiKind,
    value: &str,
    keep_mapping: bool,
    ctx: &mut OperatorContext<'_>,
) -> Result<String, OperatorError> {
    let scope = ctx.scope(SurrogateKind::Fake, Some(kind));
    if keep_mapping {
        if let Some(existing) = ctx.vault("replace_fake")?.find_surrogate(&scope, value)? {
            return Ok(existing);
        }
    }
    let mut rng = fake_rng(ctx.keys, kind, ctx.context, value);
    for _ in 0..MAX_DRAWS {
        let fake = fake_value(kind, &mut *rng);
        if fake == value {
            continue;
        }
        if !keep_mapping
            || ctx
                .vault("replace_fake")?
                .record(&scope, &fake, value, true)?
        {
            return Ok(fake);
        }
    }
    Err(OperatorError::OutOfDomain(
        "no free fake value was found for this kind and context",
    ))
}

/// Tokens are `tok_` and 26 base32 characters: 128 random bits, so guessing one is hopeless and collisions are
/// negligible (the vault still refuses a duplicate and a new one is drawn).
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("tok_{}", base32(&bytes))
}

fn tokenize(
    kind: Option<PiiKind>,
    value: &str,
    deterministic: bool,
    ctx: &mut OperatorContext<'_>,
) -> Result<String, OperatorError> {
    let scope = ctx.scope(SurrogateKind::Token, kind);
    let vault = ctx.vault("tokenize")?;
    if deterministic {
        if let Some(existing) = vault.find_surrogate(&scope, value)? {
            return Ok(existing);
        }
    }
    for _ in 0..MAX_DRAWS {
        let token = new_token();
        if vault.record(&scope, &token, value, deterministic)? {
            return Ok(token);
        }
    }
    Err(OperatorError::OutOfDomain("no free token was found"))
}

fn fpe(
    options: &FpeOptions,
    kind: Option<PiiKind>,
    value: &str,
    ctx: &mut OperatorContext<'_>,
    encrypt: bool,
) -> Result<String, OperatorError> {
    let cipher = ctx.keys.fpe()?;
    let mut session = Ff1Session {
        cipher,
        tweak: scope_bytes("fpe", kind, ctx.context),
        cache: &mut ctx.ff1_tweaks,
        encrypt,
    };
    match kind {
        Some(PiiKind::CnMobile) => fpe_mobile(&mut session, options, value),
        Some(PiiKind::CnId) => fpe_cn_id(&mut session, options, value),
        Some(PiiKind::BankCard) => fpe_bank_card(&mut session, options, value),
        None => {
            let numerals = ff1::decimal_numerals(value)
                .filter(|numerals| numerals.len() >= 6)
                .ok_or(OperatorError::InvalidInput("string of at least 6 digits"))?;
            let out = if encrypt {
                cipher.encrypt(&session.tweak, &numerals)?
            } else {
                cipher.decrypt(&session.tweak, &numerals)?
            };
            Ok(ff1::decimal_string(&out))
        }
        Some(_) => unreachable!("checked: fpe supports this kind"),
    }
}

/// Most tweaks the FF1 cache of a context keeps; more means the context is misused across many fields.
const MAX_CACHED_TWEAKS: usize = 16;

/// One `fpe` call: the cipher, the tweak, the direction, and the context's cache of prepared tweaks.
struct Ff1Session<'c> {
    cipher: &'c Ff1Cipher,
    tweak: Vec<u8>,
    cache: &'c mut Vec<(Vec<u8>, PreparedTweak)>,
    encrypt: bool,
}

impl Ff1Session<'_> {
    /// Encrypts (or decrypts) `value < modulus` written with `digits` digits, cycle walking until `accept`.
    fn walk(
        &mut self,
        value: u64,
        modulus: u64,
        digits: usize,
        accept: impl Fn(u64) -> bool,
    ) -> Result<u64, Ff1Error> {
        let cached = self
            .cache
            .iter()
            .find(|(tweak, prepared)| prepared.digits() == digits && *tweak == self.tweak)
            .map(|(_, prepared)| *prepared);
        let prepared = match cached {
            Some(prepared) => prepared,
            None => {
                let prepared = self.cipher.prepare(&self.tweak, digits)?;
                if self.cache.len() >= MAX_CACHED_TWEAKS {
                    self.cache.clear();
                }
                self.cache.push((self.tweak.clone(), prepared));
                prepared
            }
        };
        if self.encrypt {
            self.cipher
                .encrypt_below_prepared(&prepared, value, modulus, accept)
        } else {
            self.cipher
                .decrypt_below_prepared(&prepared, value, modulus, accept)
        }
    }

    fn input_error(&self, kind: PiiKind) -> OperatorError {
        input_error(self.encrypt, kind)
    }
}

fn all_digits(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_digit)
}

fn parse_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0, |value, &byte| value * 10 + u64::from(byte - b'0'))
}

fn push_padded(out: &mut String, value: u64, width: usize) {
    use std::fmt::Write;
    write!(out, "{value:0width$}").expect("writing to a String cannot fail");
}

/// `cn_mobile`: the first `mobile_keep_prefix` digits are kept, the rest encrypted with FF1. When fewer than 3
/// digits are kept, cycle walking repeats the encryption until the 3-digit network segment is allocated again, so
/// the output always validates as a mobile (and decryption walks back the same way).
fn fpe_mobile(
    session: &mut Ff1Session<'_>,
    options: &FpeOptions,
    value: &str,
) -> Result<String, OperatorError> {
    let bytes = value.as_bytes();
    let keep = usize::from(options.mobile_keep_prefix);
    let well_formed = bytes.len() == 11
        && bytes[0] == b'1'
        && all_digits(bytes)
        && (keep >= 3 || veil_pii::cn_mobile::is_allocated_prefix(&value[..3]));
    if !well_formed {
        return Err(session.input_error(PiiKind::CnMobile));
    }
    let digits = 11 - keep;
    let modulus = 10u64.pow(digits as u32);
    let segment_allocated = |candidate: u64| {
        if keep >= 3 {
            return true;
        }
        let mut segment = [b'0'; 3];
        segment[..keep].copy_from_slice(&bytes[..keep]);
        let leading = candidate / 10u64.pow((digits - (3 - keep)) as u32);
        let mut leading_digits = leading;
        for index in (keep..3).rev() {
            segment[index] = b'0' + (leading_digits % 10) as u8;
            leading_digits /= 10;
        }
        veil_pii::cn_mobile::is_allocated_prefix(std::str::from_utf8(&segment).unwrap_or(""))
    };
    let rest = parse_u64(&bytes[keep..]);
    let out = session.walk(rest, modulus, digits, segment_allocated)?;
    let mut result = String::with_capacity(11);
    result.push_str(&value[..keep]);
    push_padded(&mut result, out, digits);
    Ok(result)
}

fn input_error(encrypt: bool, kind: PiiKind) -> OperatorError {
    if encrypt {
        OperatorError::InvalidInput(kind.description())
    } else {
        OperatorError::Malformed("not a value this fpe operator produces")
    }
}

/// Which parts of a resident ID `fpe` encrypts, as a mixed-radix number: the county digits (when only the
/// province is kept), the birth date as a day index (when not kept), and the sequence number (halved when the
/// sex, its parity, is kept). `modulus` is the product of the radixes.
struct IdLayout {
    county: bool,
    date: bool,
    sequence_radix: u64,
    modulus: u64,
}

fn id_layout(options: &FpeOptions) -> IdLayout {
    let county = options.id_keep_region == RegionKeep::Province;
    let date = !options.id_keep_birth_date;
    let sequence_radix = if options.id_keep_sex { 500 } else { 1000 };
    let modulus =
        sequence_radix * if county { 10_000 } else { 1 } * if date { FPE_DATE_DAYS } else { 1 };
    IdLayout {
        county,
        date,
        sequence_radix,
        modulus,
    }
}

/// `cn_id`: the kept parts are copied, the others encrypted together with FF1 and cycle walking over the exact
/// domain (so an encrypted date is always a real date between [`FPE_DATE_FIRST`] and [`FPE_DATE_LAST`]), and the
/// check character is recomputed. The output validates as a resident ID: the province code is always kept, the
/// date is real and in the past, the check character matches.
fn fpe_cn_id(
    session: &mut Ff1Session<'_>,
    options: &FpeOptions,
    value: &str,
) -> Result<String, OperatorError> {
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 18
        && all_digits(&bytes[..17])
        && veil_pii::cn_id::check_digit(&value[..17]) == Some(char::from(bytes[17]));
    if !well_formed {
        return Err(session.input_error(PiiKind::CnId));
    }
    let layout = id_layout(options);
    if layout.modulus < MIN_DOMAIN {
        return Err(OperatorError::InvalidOptions(
            "keeping the county code and the birth date leaves too few digits for FF1",
        ));
    }
    let date_index = if layout.date {
        let date =
            Date::parse_compact(&bytes[6..14]).ok_or_else(|| session.input_error(PiiKind::CnId))?;
        if date < FPE_DATE_FIRST || date > FPE_DATE_LAST {
            return Err(OperatorError::OutOfDomain(
                "birth dates after 2025-12-31 cannot be encrypted; keep the birth date",
            ));
        }
        (date.days_since_unix_epoch() - FPE_DATE_FIRST.days_since_unix_epoch()) as u64
    } else {
        0
    };
    let sequence = parse_u64(&bytes[14..17]);
    let parity = sequence % 2;
    let sequence_part = if options.id_keep_sex {
        sequence / 2
    } else {
        sequence
    };
    // Mixed radix, most significant first: county, date, sequence.
    let mut number = 0u64;
    if layout.county {
        number = parse_u64(&bytes[2..6]);
    }
    if layout.date {
        number = number * FPE_DATE_DAYS + date_index;
    }
    number = number * layout.sequence_radix + sequence_part;

    let digits = decimal_width(layout.modulus - 1);
    let out = session.walk(number, layout.modulus, digits, |_| true)?;

    let mut rest = out;
    let mut new_sequence = rest % layout.sequence_radix;
    rest /= layout.sequence_radix;
    if options.id_keep_sex {
        new_sequence = new_sequence * 2 + parity;
    }
    let new_date = if layout.date {
        let index = rest % FPE_DATE_DAYS;
        rest /= FPE_DATE_DAYS;
        Some(Date::from_days_since_unix_epoch(
            FPE_DATE_FIRST.days_since_unix_epoch() + index as i64,
        ))
    } else {
        None
    };
    let mut result = String::with_capacity(18);
    if layout.county {
        result.push_str(&value[..2]);
        push_padded(&mut result, rest, 4);
    } else {
        result.push_str(&value[..6]);
    }
    match new_date {
        Some(date) => {
            push_padded(&mut result, date.year as u64, 4);
            push_padded(&mut result, u64::from(date.month), 2);
            push_padded(&mut result, u64::from(date.day), 2);
        }
        None => result.push_str(&value[6..14]),
    }
    push_padded(&mut result, new_sequence, 3);
    let check = veil_pii::cn_id::check_digit(&result).expect("17 ASCII digits");
    result.push(check);
    Ok(result)
}

/// Number of decimal digits needed to write `value` (at least 1).
fn decimal_width(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// `bank_card`: the BIN (or the first digit) is kept. Without `card_keep_last4` the digits up to the Luhn digit
/// are encrypted and the Luhn digit recomputed; with it, the digits between BIN and last four are encrypted with
/// cycle walking until the whole number passes Luhn again (one try in ten on average).
fn fpe_bank_card(
    session: &mut Ff1Session<'_>,
    options: &FpeOptions,
    value: &str,
) -> Result<String, OperatorError> {
    let bytes = value.as_bytes();
    let well_formed = (16..=19).contains(&bytes.len())
        && all_digits(bytes)
        && veil_pii::bank_card::luhn_valid(value);
    if !well_formed {
        return Err(session.input_error(PiiKind::BankCard));
    }
    let lead = if options.card_keep_bin { 6 } else { 1 };
    let tail = if options.card_keep_last4 { 4 } else { 1 };
    let digits = bytes.len() - lead - tail;
    let modulus = 10u64.pow(digits as u32);
    let middle = parse_u64(&bytes[lead..bytes.len() - tail]);
    let assemble = |candidate: u64| {
        let mut card = String::with_capacity(bytes.len());
        card.push_str(&value[..lead]);
        push_padded(&mut card, candidate, digits);
        card
    };
    let out = if options.card_keep_last4 {
        let luhn_ok = |candidate: u64| {
            let mut card = assemble(candidate);
            card.push_str(&value[bytes.len() - tail..]);
            veil_pii::bank_card::luhn_valid(&card)
        };
        let out = session.walk(middle, modulus, digits, luhn_ok)?;
        let mut card = assemble(out);
        card.push_str(&value[bytes.len() - tail..]);
        card
    } else {
        let out = session.walk(middle, modulus, digits, |_| true)?;
        let mut card = assemble(out);
        let check = veil_pii::bank_card::luhn_check_digit(&card).expect("ASCII digits");
        card.push(char::from(b'0' + check));
        card
    };
    Ok(out)
}

#[cfg(test)]
mod tests;
