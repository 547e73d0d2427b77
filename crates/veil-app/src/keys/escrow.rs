//! Backing up the master key, deliberately and separately from the database: an export wrapped under a
//! passphrase (age, scrypt), or Shamir escrow into N shares of which any K recover it (GF(256), `sharks`). Both
//! carry a check value so a wrong passphrase or too few shares is reported instead of yielding a wrong key, and
//! both are recorded in the audit trail. Recovery needs no database: it writes a key file (mode 0600).

use std::io::{Read, Write};

use base64::Engine;
use sha2::{Digest, Sha256};
use veil_mask::SecretKey;
use zeroize::Zeroizing;

use crate::audit::{event, hex, unhex, EventExt, Outcome};
use crate::error::{AppError, AppResult, FieldError};
use crate::Veil;

const EXPORT_HEADER: &str = "veil-master-key-v1";
const SHARE_PREFIX: &str = "veil-share-1";
/// Shortest passphrase accepted for an export.
pub const MIN_EXPORT_PASSPHRASE: usize = 16;

/// A short fingerprint of the key: shown with exports and shares, and checked on recovery.
pub fn key_check(key: &SecretKey) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"veil-master-key-check");
    hasher.update(key.expose_secret());
    hex(&hasher.finalize()[..8])
}

impl Veil {
    /// The master key, wrapped under `passphrase` with age (scrypt). Recorded as `key.export`.
    pub async fn export_master_key(&self, passphrase: &str) -> AppResult<Vec<u8>> {
        if passphrase.chars().count() < MIN_EXPORT_PASSPHRASE {
            return Err(AppError::Validation(vec![FieldError::new(
                "passphrase",
                "too_short",
                format!("at least {MIN_EXPORT_PASSPHRASE} characters"),
            )]));
        }
        let keyring = self.keyring();
        let key = keyring.master_key();
        let body = Zeroizing::new(format!(
            "{EXPORT_HEADER}\n{}\n{}\n",
            key_check(key),
            base64::engine::general_purpose::STANDARD.encode(key.expose_secret())
        ));
        let encryptor = age::Encryptor::with_user_passphrase(age::secrecy::SecretString::from(
            passphrase.to_owned(),
        ));
        let mut out = Vec::new();
        let io =
            |error: std::io::Error| AppError::Internal(format!("cannot wrap the key: {error}"));
        let mut writer = encryptor.wrap_output(&mut out).map_err(io)?;
        writer.write_all(body.as_bytes()).map_err(io)?;
        writer.finish().map_err(io)?;
        self.record(&[event(None, "key.export", Outcome::Ok)
            .detail(serde_json::json!({"key_check": key_check(key), "method": "age passphrase"}))])
            .await?;
        Ok(out)
    }

    /// Splits the master key into `shares` Shamir shares of which any `threshold` recover it. Recorded as
    /// `key.escrow` (the shares themselves never are).
    pub async fn escrow_master_key(
        &self,
        shares: u8,
        threshold: u8,
    ) -> AppResult<Vec<Zeroizing<String>>> {
        if threshold < 2 || shares < threshold {
            return Err(AppError::Validation(vec![FieldError::new(
                "threshold",
                "invalid",
                "need 2 ≤ threshold ≤ shares ≤ 255",
            )]));
        }
        let keyring = self.keyring();
        let key = keyring.master_key();
        let check = key_check(key);
        let dealer = sharks::Sharks(threshold).dealer(key.expose_secret());
        let out: Vec<Zeroizing<String>> = dealer
            .take(usize::from(shares))
            .map(|share| {
                let bytes = Zeroizing::new(Vec::from(&share));
                Zeroizing::new(format!(
                    "{SHARE_PREFIX}:{threshold}:{check}:{}",
                    hex(&bytes)
                ))
            })
            .collect();
        self.record(&[
            event(None, "key.escrow", Outcome::Ok).detail(serde_json::json!({
                "key_check": check, "shares": shares, "threshold": threshold,
            })),
        ])
        .await?;
        Ok(out)
    }
}

/// Opens an export with its passphrase.
pub fn recover_from_export(file: &[u8], passphrase: &str) -> Result<SecretKey, String> {
    let decryptor = age::Decryptor::new(file)
        .map_err(|_| "not a Veil key export (not age-encrypted)".to_owned())?;
    if !decryptor.is_scrypt() {
        return Err("not a passphrase-wrapped key export".to_owned());
    }
    let identity =
        age::scrypt::Identity::new(age::secrecy::SecretString::from(passphrase.to_owned()));
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|_| "wrong passphrase (or a damaged export)".to_owned())?;
    let mut text = Zeroizing::new(String::new());
    reader
        .read_to_string(&mut text)
        .map_err(|_| "the export is damaged".to_owned())?;
    let mut lines = text.lines();
    if lines.next() != Some(EXPORT_HEADER) {
        return Err("not a Veil key export".to_owned());
    }
    let check = lines.next().unwrap_or_default().to_owned();
    let encoded = lines.next().unwrap_or_default();
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "the export is damaged".to_owned())?,
    );
    let key = SecretKey::from_slice(&bytes).map_err(|_| "the export is damaged".to_owned())?;
    if key_check(&key) != check {
        return Err("the export's check value does not match its key".to_owned());
    }
    Ok(key)
}

/// Recovers the key from shares (at least the threshold, all of one escrow).
pub fn recover_from_shares(texts: &[String]) -> Result<SecretKey, String> {
    let mut threshold = None;
    let mut check = None;
    let mut shares = Vec::new();
    for text in texts {
        let parts: Vec<&str> = text.trim().split(':').collect();
        let [prefix, k, share_check, body] = parts.as_slice() else {
            return Err("not a Veil key share".to_owned());
        };
        if *prefix != SHARE_PREFIX {
            return Err("not a Veil key share".to_owned());
        }
        let k: u8 = k
            .parse()
            .map_err(|_| "a share's threshold is damaged".to_owned())?;
        if threshold.replace(k).is_some_and(|previous| previous != k)
            || check
                .replace(share_check.to_string())
                .is_some_and(|previous| previous != *share_check)
        {
            return Err("the shares come from different escrows".to_owned());
        }
        let bytes = Zeroizing::new(unhex(body).ok_or_else(|| "a share is damaged".to_owned())?);
        shares.push(
            sharks::Share::try_from(bytes.as_slice())
                .map_err(|error| format!("a share is damaged: {error}"))?,
        );
    }
    let threshold = threshold.ok_or_else(|| "no shares given".to_owned())?;
    if shares.len() < usize::from(threshold) {
        return Err(format!(
            "{} share(s) given, {threshold} needed",
            shares.len()
        ));
    }
    let secret = Zeroizing::new(
        sharks::Sharks(threshold)
            .recover(shares.as_slice())
            .map_err(|error| format!("the shares do not recover a key: {error}"))?,
    );
    let key =
        SecretKey::from_slice(&secret).map_err(|_| "the shares do not recover a key".to_owned())?;
    if Some(key_check(&key)) != check {
        return Err("the recovered key fails its check value (damaged or mixed shares)".to_owned());
    }
    Ok(key)
}
