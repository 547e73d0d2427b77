//! The cryptography behind the `encryption` method and the key hierarchy.
//!
//! - [`SecretKey`]: 32 bytes of key material, zeroized on drop, redacted in `Debug`, never `Serialize`.
//! - [`FieldCipher`]: AES-256-GCM with a random 96-bit nonce; the associated data ([`Aad`]) binds a ciphertext to
//!   its table, record, field and key version so that it cannot be moved to another place and still decrypt.
//! - [`wrap_key`]/[`unwrap_key`]: envelope encryption of one key under another (a data key under a key-encryption
//!   key, a key-encryption key under the master key).
//! - [`BlindIndexer`]: HMAC-SHA-256 over a normalised value under its own key, for exact search and
//!   de-duplication without decryption.
//! - [`derive_from_passphrase`]: Argon2id, for a master key that comes from a passphrase.
//!
//! Sealed format: `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The leading byte is the format
//! version so the layout can change without guessing.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, AeadInPlace, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of every key in Veil, in bytes (AES-256, HMAC-SHA-256).
pub const KEY_LEN: usize = 32;
/// Length of a blind index, in bytes (truncated HMAC-SHA-256; 128 bits make accidental collisions negligible).
pub const BLIND_INDEX_LEN: usize = 16;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Errors of the cryptographic layer. None of them carries key material or plaintext.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext was altered, moved to another record or field, or sealed under another key.
    #[error(
        "integrity check failed: the ciphertext was altered, moved, or sealed under another key"
    )]
    Integrity,
    /// The sealed bytes are too short or of an unknown format version.
    #[error("malformed ciphertext ({0})")]
    Malformed(&'static str),
    /// Key material of the wrong length.
    #[error("key material must be {KEY_LEN} bytes, found {0}")]
    KeyLength(usize),
    /// The passphrase-based key derivation failed (bad parameters or salt).
    #[error("key derivation failed: {0}")]
    Derivation(String),
}

/// 32 bytes of secret key material. Zeroized when dropped; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        SecretKey(bytes)
    }

    /// Takes ownership of raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// Copies key bytes out of a slice, which must be exactly [`KEY_LEN`] long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError::KeyLength(bytes.len()))?;
        Ok(SecretKey(array))
    }

    /// The raw key bytes. Only for writing a new key file or feeding a cipher; never log them.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SecretKey(<redacted>)")
    }
}

/// Associated data that binds a ciphertext to where it belongs.
///
/// Encoded unambiguously (length-prefixed parts) so that no two different places share an encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad<'a> {
    /// The table the value lives in, e.g. `customer`.
    pub table: &'a str,
    /// The record's id.
    pub record_id: &'a str,
    /// The field (column family) name, e.g. `phone`.
    pub field: &'a str,
    /// Version of the key the value is sealed under.
    pub key_version: u32,
}

impl Aad<'_> {
    /// The byte encoding fed to the AEAD.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// The same encoding written into `out` (cleared first), so that bulk paths reuse one buffer.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(8 + self.table.len() + self.record_id.len() + self.field.len() + 16);
        out.extend_from_slice(b"veil.v1");
        for part in [self.table, self.record_id, self.field] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(&self.key_version.to_be_bytes());
    }
}

/// AES-256-GCM under one key, with the key schedule computed once for many fields.
pub struct FieldCipher {
    cipher: Aes256Gcm,
}

impl fmt::Debug for FieldCipher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("FieldCipher(<redacted>)")
    }
}

impl FieldCipher {
    /// A cipher for `key`.
    pub fn new(key: &SecretKey) -> Self {
        FieldCipher {
            cipher: Aes256Gcm::new(key.expose_secret().into()),
        }
    }

    /// Encrypts `plaintext` with a fresh random nonce, authenticating `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        // A CSPRNG seeded from the OS (ChaCha, reseeded periodically) instead of one system call per field.
        let nonce = Aes256Gcm::generate_nonce(&mut rand::thread_rng());
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption only fails for inputs larger than 64 GiB");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts what [`FieldCipher::seal`] produced under the same key and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (&version, rest) = sealed
            .split_first()
            .ok_or(CryptoError::Malformed("empty"))?;
        if version != FORMAT_V1 {
            return Err(CryptoError::Malformed("unknown format version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed("too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Integrity)
    }

    /// [`FieldCipher::open`] into a caller's buffer, for bulk paths that open many values: `plaintext` is wiped
    /// and then holds the opened value (or nothing, on error). The buffer only grows through
    /// [`reserve_zeroizing`], so no copy of earlier plaintext is left behind in freed memory.
    pub fn open_into(
        &self,
        aad: &[u8],
        sealed: &[u8],
        plaintext: &mut Zeroizing<Vec<u8>>,
    ) -> Result<(), CryptoError> {
        plaintext.zeroize();
        let (&version, rest) = sealed
            .split_first()
            .ok_or(CryptoError::Malformed("empty"))?;
        if version != FORMAT_V1 {
            return Err(CryptoError::Malformed("unknown format version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed("too short"));
        }
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        reserve_zeroizing(plaintext, ciphertext.len());
        plaintext.extend_from_slice(ciphertext);
        let opened = self.cipher.decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            aad,
            plaintext.as_mut_slice(),
            aes_gcm::Tag::from_slice(tag),
        );
        if opened.is_err() {
            plaintext.zeroize();
            return Err(CryptoError::Integrity);
        }
        Ok(())
    }
}

/// Makes room for `additional` more bytes in a buffer that holds secrets. A plain `reserve` may move the contents
/// and free the old allocation without wiping it; this copies into a larger buffer and wipes the old one.
pub fn reserve_zeroizing(buffer: &mut Zeroizing<Vec<u8>>, additional: usize) {
    let needed = buffer.len() + additional;
    if needed <= buffer.capacity() {
        return;
    }
    let mut larger = Vec::with_capacity(needed.max(buffer.capacity() * 2));
    larger.extend_from_slice(buffer.as_slice());
    let mut old = std::mem::replace(&mut **buffer, larger);
    old.zeroize();
}

/// Seals `plaintext` under `key` (one-shot form of [`FieldCipher::seal`]).
pub fn seal(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    FieldCipher::new(key).seal(aad, plaintext)
}

/// Opens what [`seal`] produced (one-shot form of [`FieldCipher::open`]).
pub fn open(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    FieldCipher::new(key).open(aad, sealed)
}

/// Envelope-encrypts `key` under `wrapping_key`, binding `aad` (who the key belongs to, which versions).
pub fn wrap_key(wrapping_key: &SecretKey, aad: &[u8], key: &SecretKey) -> Vec<u8> {
    seal(wrapping_key, aad, key.expose_secret())
}

/// Recovers a key wrapped by [`wrap_key`].
pub fn unwrap_key(
    wrapping_key: &SecretKey,
    aad: &[u8],
    wrapped: &[u8],
) -> Result<SecretKey, CryptoError> {
    let bytes = open(wrapping_key, aad, wrapped)?;
    SecretKey::from_slice(&bytes)
}

/// Computes blind indexes: keyed HMAC-SHA-256 over normalised values, truncated to [`BLIND_INDEX_LEN`] bytes.
///
/// The field name is part of the MAC input so equal values in different fields get unrelated indexes.
#[derive(Clone)]
pub struct BlindIndexer {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for BlindIndexer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("BlindIndexer(<redacted>)")
    }
}

impl BlindIndexer {
    /// An indexer under `key`, which must be used for nothing else.
    pub fn new(key: &SecretKey) -> Self {
        BlindIndexer {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
                .expect("HMAC accepts keys of any length"),
        }
    }

    /// The blind index of `normalized` in `field`.
    pub fn index(&self, field: &str, normalized: &str) -> [u8; BLIND_INDEX_LEN] {
        let mut mac = self.mac.clone();
        mac.update(&(field.len() as u32).to_be_bytes());
        mac.update(field.as_bytes());
        mac.update(normalized.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; BLIND_INDEX_LEN];
        out.copy_from_slice(&digest[..BLIND_INDEX_LEN]);
        out
    }
}

/// Argon2id parameters for passphrase-derived master keys: 64 MiB, 3 passes, 1 lane (OWASP's first
/// recommendation for Argon2id is 46 MiB/1 pass; we spend more since this runs once per start-up).
pub const PASSPHRASE_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes for passphrase-derived master keys.
pub const PASSPHRASE_PASSES: u32 = 3;
/// Length of the random salt stored beside a passphrase-derived key's check value.
pub const SALT_LEN: usize = 16;

/// Derives a master key from a passphrase with Argon2id.
pub fn derive_from_passphrase(passphrase: &[u8], salt: &[u8]) -> Result<SecretKey, CryptoError> {
    let params = argon2::Params::new(PASSPHRASE_MEMORY_KIB, PASSPHRASE_PASSES, 1, Some(KEY_LEN))
        .map_err(|error| CryptoError::Derivation(error.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|error| CryptoError::Derivation(error.to_string()))?;
    Ok(SecretKey::from_bytes(*out))
}

/// A fresh random salt for [`derive_from_passphrase`].
pub fn generate_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    salt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(record: &str, field: &str) -> Vec<u8> {
        Aad {
            table: "customer",
            record_id: record,
            field,
            key_version: 1,
        }
        .encode()
    }

    #[test]
    fn seal_open_round_trip() {
        let key = SecretKey::generate();
        let sealed = seal(&key, &aad("a", "phone"), "13812345678".as_bytes());
        let opened = open(&key, &aad("a", "phone"), &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"13812345678");
        assert!(!sealed.windows(11).any(|w| w == b"13812345678"));
    }

    #[test]
    fn moved_ciphertext_fails_integrity() {
        let key = SecretKey::generate();
        let sealed = seal(&key, &aad("a", "phone"), b"13812345678");
        assert_eq!(
            open(&key, &aad("b", "phone"), &sealed),
            Err(CryptoError::Integrity)
        );
        assert_eq!(
            open(&key, &aad("a", "email"), &sealed),
            Err(CryptoError::Integrity)
        );
        let other = SecretKey::generate();
        assert_eq!(
            open(&other, &aad("a", "phone"), &sealed),
            Err(CryptoError::Integrity)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&key, &aad("a", "phone"), &tampered),
            Err(CryptoError::Integrity)
        );
    }

    #[test]
    fn open_into_agrees_with_open_and_leaves_nothing_on_failure() {
        let key = SecretKey::generate();
        let cipher = FieldCipher::new(&key);
        let long = "x".repeat(300);
        let mut buffer = Zeroizing::new(Vec::with_capacity(4));
        for value in ["13812345678", "", long.as_str(), "短"] {
            let sealed = seal(&key, &aad("a", "phone"), value.as_bytes());
            cipher
                .open_into(&aad("a", "phone"), &sealed, &mut buffer)
                .unwrap();
            assert_eq!(buffer.as_slice(), value.as_bytes());
            // Moved to another record or field, tampered, or truncated: an error and an empty buffer.
            let mut tampered = sealed.clone();
            *tampered.last_mut().unwrap() ^= 1;
            for (aad_bytes, bytes) in [
                (aad("b", "phone"), sealed.as_slice()),
                (aad("a", "email"), sealed.as_slice()),
                (aad("a", "phone"), tampered.as_slice()),
            ] {
                assert_eq!(
                    cipher.open_into(&aad_bytes, bytes, &mut buffer),
                    Err(CryptoError::Integrity)
                );
                assert!(buffer.is_empty());
            }
            assert!(matches!(
                cipher.open_into(&aad("a", "phone"), &sealed[..20], &mut buffer),
                Err(CryptoError::Malformed(_))
            ));
            assert!(buffer.is_empty());
        }
    }

    #[test]
    fn reserve_zeroizing_keeps_the_contents() {
        let mut buffer = Zeroizing::new(b"abc".to_vec());
        reserve_zeroizing(&mut buffer, 1000);
        assert!(buffer.capacity() >= 1003);
        assert_eq!(buffer.as_slice(), b"abc");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let key = SecretKey::generate();
        assert!(matches!(
            open(&key, b"", &[]),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            open(&key, b"", &[1, 2, 3]),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            open(&key, b"", &[9; 40]),
            Err(CryptoError::Malformed(_))
        ));
    }

    #[test]
    fn aad_encoding_is_unambiguous() {
        let one = Aad {
            table: "ab",
            record_id: "c",
            field: "d",
            key_version: 1,
        };
        let two = Aad {
            table: "a",
            record_id: "bc",
            field: "d",
            key_version: 1,
        };
        assert_ne!(one.encode(), two.encode());
    }

    #[test]
    fn wrap_unwrap_round_trip_and_binding() {
        let kek = SecretKey::generate();
        let dek = SecretKey::generate();
        let wrapped = wrap_key(&kek, b"customer_key|a|1", &dek);
        assert_eq!(
            unwrap_key(&kek, b"customer_key|a|1", &wrapped).unwrap(),
            dek
        );
        assert_eq!(
            unwrap_key(&kek, b"customer_key|b|1", &wrapped),
            Err(CryptoError::Integrity)
        );
    }

    #[test]
    fn blind_index_is_deterministic_keyed_and_field_separated() {
        let key = SecretKey::generate();
        let indexer = BlindIndexer::new(&key);
        assert_eq!(
            indexer.index("phone", "13812345678"),
            indexer.index("phone", "13812345678")
        );
        assert_ne!(
            indexer.index("phone", "13812345678"),
            indexer.index("phone", "13812345679")
        );
        assert_ne!(
            indexer.index("phone", "13812345678"),
            indexer.index("bank_card", "13812345678")
        );
        let other = BlindIndexer::new(&SecretKey::generate());
        assert_ne!(
            indexer.index("phone", "13812345678"),
            other.index("phone", "13812345678")
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let key = SecretKey::from_bytes([0xAB; KEY_LEN]);
        let shown = format!(
            "{key:?} {:?} {:?}",
            FieldCipher::new(&key),
            BlindIndexer::new(&key)
        );
        assert!(!shown.contains("171"), "{shown}");
        assert!(!shown.to_lowercase().contains("ab, ab"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn passphrase_derivation_depends_on_passphrase_and_salt() {
        let salt = [7u8; SALT_LEN];
        let one = derive_from_passphrase(b"correct horse", &salt).unwrap();
        assert_eq!(
            one,
            derive_from_passphrase(b"correct horse", &salt).unwrap()
        );
        assert_ne!(
            one,
            derive_from_passphrase(b"correct horsf", &salt).unwrap()
        );
        assert_ne!(
            one,
            derive_from_passphrase(b"correct horse", &[8u8; SALT_LEN]).unwrap()
        );
    }
}
