//! The second factor for staff: TOTP (RFC 6238), one-time recovery codes, step-up verification and the per-role
//! "MFA required" setting.
//!
//! - **Codes**: HMAC-SHA-1, 6 digits, 30-second steps, a 160-bit random secret shown once as base32 in an
//!   `otpauth://` URI (issuer `Veil`, account = username). One step of clock skew either way is accepted. A code is
//!   accepted **once only**: the last accepted time step is stored per user and only a later step is accepted
//!   (one conditional `UPDATE`, so the rule holds across several servers).
//! - **Secrets at rest**: sealed with AES-256-GCM under a subkey of the keyring's `mfa` key (created on first use,
//!   wrapped by the master key), with associated data binding the ciphertext to `user_mfa`, the user id and the key
//!   version. A second subkey (HMAC-SHA-256) hashes recovery codes and the subjects of failed-login counters.
//! - **Recovery codes**: ten codes of 80 random bits (`xxxx-xxxx-xxxx-xxxx`, base32), shown once at confirmation,
//!   stored as keyed hashes, each usable once in place of a TOTP code.
//! - **Step-up**: a login with a second factor, or `POST /auth/mfa/verify`, stamps the bearer token with the time;
//!   [`Veil::recent_mfa`] asks whether that was within a window ([`STEP_UP_WINDOW_MS`], 10 minutes, by default).
//! - **Required roles**: the setting [`MFA_REQUIRED_ROLES_SETTING`] (comma-separated role names; default
//!   `admin,dpo`). A user of such a role without MFA can still log in, but the login says
//!   `mfa_enrollment_required: true`, and [`Veil::require_recent_mfa`] refuses them until they enrol.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use totp_rs::{Algorithm, TOTP};
use veil_mask::crypto::Aad;
use veil_mask::{BlindIndexer, FieldCipher, SecretKey};
use veil_store::MfaRow;
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult, FieldError};
use crate::users::{hash_token, Actor, Role};
use crate::{now_ms, Veil};

/// Issuer shown by authenticator apps.
pub const TOTP_ISSUER: &str = "Veil";
/// Digits per code.
pub const TOTP_DIGITS: usize = 6;
/// Seconds per time step.
pub const TOTP_STEP_SECONDS: u64 = 30;
/// Time steps of clock skew accepted either way.
pub const TOTP_SKEW_STEPS: u8 = 1;
/// Bytes of a TOTP secret (160 bits, as RFC 4226 recommends).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Recovery codes issued at confirmation.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// How recent a second factor must be for a step-up check, by default.
pub const STEP_UP_WINDOW_MS: i64 = 10 * 60 * 1000;
/// The setting naming the roles that must use MFA.
pub const MFA_REQUIRED_ROLES_SETTING: &str = "mfa_required_roles";
/// Roles that must use MFA when the setting is absent.
pub const DEFAULT_MFA_REQUIRED_ROLES: [Role; 2] = [Role::Admin, Role::Dpo];

const RFC4648_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A TOTP shared secret. Zeroized on drop, redacted in `Debug`, never serialised.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; TOTP_SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// Wraps raw secret bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret(Zeroizing::new(bytes))
    }

    /// Reads a base32 secret (RFC 4648; case, spaces and padding ignored), as shown at enrolment.
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
        let mut buffer: u32 = 0;
        let mut bits = 0;
        for character in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
            let upper = character.to_ascii_uppercase() as u8;
            let value = RFC4648_ALPHABET.iter().position(|&a| a == upper)? as u32;
            buffer = (buffer << 5) | value;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((buffer >> bits) as u8);
            }
        }
        Some(TotpSecret(bytes))
    }

    /// The secret in base32 (RFC 4648, no padding), as authenticator apps take it.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32_encode(&self.0))
    }

    fn totp(&self, digits: usize) -> AppResult<TOTP> {
        TOTP::new(
            Algorithm::SHA1,
            digits,
            TOTP_SKEW_STEPS,
            TOTP_STEP_SECONDS,
            self.0.to_vec(),
        )
        .map_err(|error| AppError::Internal(format!("TOTP parameters rejected: {error}")))
    }

    /// The code for the time step containing `unix_seconds`.
    pub fn code_at(&self, unix_seconds: u64) -> AppResult<String> {
        Ok(self.totp(TOTP_DIGITS)?.generate(unix_seconds))
    }

    /// The time step whose code is `code`, among the steps within the accepted skew of `unix_seconds`.
    pub fn matching_step(&self, code: &str, unix_seconds: u64) -> AppResult<Option<u64>> {
        let code = code.trim();
        if code.len() != TOTP_DIGITS || !code.bytes().all(|byte| byte.is_ascii_digit()) {
            return Ok(None);
        }
        let totp = self.totp(TOTP_DIGITS)?;
        let current = unix_seconds / TOTP_STEP_SECONDS;
        let skew = u64::from(TOTP_SKEW_STEPS);
        let mut found = None;
        // Every candidate is compared (no early exit), in constant time.
        for step in current.saturating_sub(skew)..=current + skew {
            let expected = totp.generate(step * TOTP_STEP_SECONDS);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
                found = Some(step);
            }
        }
        Ok(found)
    }
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(RFC4648_ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(RFC4648_ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// What enrolment shows the user once: the secret and the URI for a QR code. Redacted in `Debug`.
pub struct Enrollment {
    /// Base32 secret.
    pub secret: Zeroizing<String>,
    /// `otpauth://totp/Veil:<username>?secret=…&issuer=Veil&algorithm=SHA1&digits=6&period=30`.
    pub otpauth_uri: Zeroizing<String>,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Enrollment(<redacted>)")
    }
}

/// One-time recovery codes, shown once at confirmation. Redacted in `Debug`.
pub struct RecoveryCodes(Vec<Zeroizing<String>>);

impl RecoveryCodes {
    /// The codes, to show to their owner once.
    pub fn expose(&self) -> Vec<String> {
        self.0.iter().map(|code| code.as_str().to_owned()).collect()
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "RecoveryCodes(<{} redacted>)", self.0.len())
    }
}

fn generate_recovery_code() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 10]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let text = Zeroizing::new(base32_encode(bytes.as_ref()).to_lowercase());
    Zeroizing::new(format!(
        "{}-{}-{}-{}",
        &text[0..4],
        &text[4..8],
        &text[8..12],
        &text[12..16]
    ))
}

/// A recovery code as typed, without separators and in lower case.
fn normalize_recovery_code(code: &str) -> Zeroizing<String> {
    Zeroizing::new(
        code.chars()
            .filter(|character| character.is_ascii_alphanumeric())
            .map(|character| character.to_ascii_lowercase())
            .collect(),
    )
}

/// Keys derived from the keyring's `mfa` key.
pub(crate) struct MfaKeys {
    version: i64,
    cipher: FieldCipher,
    mac: BlindIndexer,
}

fn derive_subkey(key: &SecretKey, label: &str) -> SecretKey {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
        .expect("HMAC accepts keys of any length");
    mac.update(label.as_bytes());
    let mut digest = mac.finalize().into_bytes();
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&digest);
    zeroize::Zeroize::zeroize(digest.as_mut_slice());
    SecretKey::from_bytes(bytes)
}

fn secret_aad(user_id: &str, key_version: i64) -> Vec<u8> {
    Aad {
        table: "user_mfa",
        record_id: user_id,
        field: "secret",
        key_version: key_version as u32,
    }
    .encode()
}

impl MfaKeys {
    /// The keyed hash of a login-counter subject (a username as typed, or a client address).
    pub(crate) fn subject(&self, scope: &str, value: &str) -> Vec<u8> {
        self.mac
            .index(&format!("login_failure.{scope}"), value)
            .to_vec()
    }

    fn recovery_hash(&self, user_id: &str, normalized: &str) -> Vec<u8> {
        self.mac
            .index("recovery_code", &format!("{user_id}:{normalized}"))
            .to_vec()
    }

    fn seal_secret(&self, user_id: &str, secret: &TotpSecret) -> Vec<u8> {
        self.cipher
            .seal(&secret_aad(user_id, self.version), &secret.0)
    }

    fn open_secret(&self, row: &MfaRow) -> AppResult<TotpSecret> {
        if row.key_version != self.version {
            return Err(AppError::Internal(format!(
                "TOTP secret sealed under unknown MFA key v{}",
                row.key_version
            )));
        }
        let bytes = self.cipher.open(
            &secret_aad(&row.user_id, row.key_version),
            &row.secret_sealed,
        )?;
        Ok(TotpSecret::from_bytes(bytes.to_vec()))
    }
}

/// What a login or step-up offered as its second factor.
enum SecondFactor {
    Totp(String),
    RecoveryCode(Zeroizing<String>),
}

fn parse_second_factor(code: &str) -> SecondFactor {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() == TOTP_DIGITS && compact.bytes().all(|byte| byte.is_ascii_digit()) {
        SecondFactor::Totp(compact)
    } else {
        SecondFactor::RecoveryCode(normalize_recovery_code(code))
    }
}

fn unix_seconds(now_ms: i64) -> u64 {
    (now_ms.max(0) / 1000) as u64
}

fn invalid_code() -> AppError {
    AppError::Validation(vec![FieldError::new(
        "code",
        "invalid_code",
        "the code is wrong, expired or was already used",
    )])
}

/// A user's MFA state, for `GET /auth/me` and the login response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaStatus {
    /// A confirmed TOTP enrolment exists.
    pub enabled: bool,
    /// The user's role must use MFA and it is not enabled.
    pub enrollment_required: bool,
}

impl Veil {
    pub(crate) async fn mfa_keys(&self) -> AppResult<MfaKeys> {
        let (version, key) = self.keyring().mfa_key(self.store()).await?;
        Ok(MfaKeys {
            version,
            cipher: FieldCipher::new(&derive_subkey(&key, "veil mfa seal v1")),
            mac: BlindIndexer::new(&derive_subkey(&key, "veil mfa mac v1")),
        })
    }

    /// Starts TOTP enrolment (or restarts a pending one) with a fresh secret, sealed at rest. Refused with a
    /// conflict if MFA is already active.
    pub async fn enroll_mfa(&self, actor: &Actor) -> AppResult<Enrollment> {
        let keys = self.mfa_keys().await?;
        let user_id = actor.user_id.to_string();
        let secret = TotpSecret::generate();
        let sealed = keys.seal_secret(&user_id, &secret);
        if !self
            .store()
            .put_pending_mfa(&user_id, &sealed, keys.version, now_ms())
            .await?
        {
            return Err(AppError::Conflict(
                "MFA is already active for this account; an administrator can reset it".to_owned(),
            ));
        }
        let encoded = secret.base32();
        // Usernames are letters, digits, '.', '_' and '-': nothing in them needs escaping in a URI.
        let otpauth_uri = Zeroizing::new(format!(
            "otpauth://totp/{TOTP_ISSUER}:{username}?secret={secret}&issuer={TOTP_ISSUER}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}",
            username = actor.username,
            secret = encoded.as_str(),
        ));
        tracing::info!(user = %actor.user_id, "mfa enrolment started");
        Ok(Enrollment {
            secret: encoded,
            otpauth_uri,
        })
    }

    /// Activates a pending enrolment with a first code from the authenticator; returns the recovery codes, which
    /// are shown this once and stored only as keyed hashes.
    pub async fn confirm_mfa(&self, actor: &Actor, code: &str) -> AppResult<RecoveryCodes> {
        let keys = self.mfa_keys().await?;
        let user_id = actor.user_id.to_string();
        let row = self
            .store()
            .mfa_by_user(&user_id)
            .await?
            .filter(|row| row.confirmed_at.is_none())
            .ok_or_else(|| {
                AppError::Conflict(
                    "no pending MFA enrolment: start one with POST /api/v1/auth/mfa/enroll"
                        .to_owned(),
                )
            })?;
        let secret = keys.open_secret(&row)?;
        let now = now_ms();
        let step = secret
            .matching_step(code, unix_seconds(now))?
            .ok_or_else(invalid_code)?;
        let codes: Vec<Zeroizing<String>> = (0..RECOVERY_CODE_COUNT)
            .map(|_| generate_recovery_code())
            .collect();
        let hashes: Vec<Vec<u8>> = codes
            .iter()
            .map(|code| keys.recovery_hash(&user_id, &normalize_recovery_code(code)))
            .collect();
        if !self
            .store()
            .confirm_mfa(
                &user_id,
                step as i64,
                &hashes,
                now,
                &[crate::audit::event(
                    Some(actor),
                    "auth.mfa.enable",
                    crate::audit::Outcome::Ok,
                )],
            )
            .await?
        {
            return Err(AppError::Conflict(
                "the MFA enrolment changed meanwhile; start again".to_owned(),
            ));
        }
        tracing::info!(user = %actor.user_id, "mfa enabled");
        Ok(RecoveryCodes(codes))
    }

    /// Checks a second factor (a TOTP code, accepted once only, or an unused recovery code, used up) for a user
    /// with a confirmed enrolment. Returns whether it was accepted.
    pub(crate) async fn check_second_factor(
        &self,
        keys: &MfaKeys,
        row: &MfaRow,
        code: &str,
        now: i64,
    ) -> AppResult<bool> {
        match parse_second_factor(code) {
            SecondFactor::Totp(code) => {
                let secret = keys.open_secret(row)?;
                match secret.matching_step(&code, unix_seconds(now))? {
                    Some(step) => Ok(self
                        .store()
                        .accept_totp_step(&row.user_id, step as i64, now)
                        .await?),
                    None => Ok(false),
                }
            }
            SecondFactor::RecoveryCode(normalized) => {
                if normalized.len() != 16 {
                    return Ok(false);
                }
                let hash = keys.recovery_hash(&row.user_id, &normalized);
                let used = self
                    .store()
                    .use_recovery_code(&row.user_id, &hash, now)
                    .await?;
                if used {
                    tracing::warn!(user = %row.user_id, "recovery code used");
                }
                Ok(used)
            }
        }
    }

    /// A confirmed enrolment of `user_id`, if any.
    pub(crate) async fn active_mfa(&self, user_id: &str) -> AppResult<Option<MfaRow>> {
        Ok(self
            .store()
            .mfa_by_user(user_id)
            .await?
            .filter(|row| row.confirmed_at.is_some()))
    }

    /// Step-up: checks a second factor for the holder of `token` and stamps the token with the time. A wrong code
    /// counts as a failed login for the account (and may lock it out). Returns the time of verification.
    pub async fn verify_mfa(
        &self,
        actor: &Actor,
        token: &str,
        code: &str,
    ) -> Result<i64, crate::users::LoginError> {
        use crate::users::lockout::ACCOUNT_THROTTLE;
        use crate::users::LoginError;
        let keys = self.mfa_keys().await?;
        let user_id = actor.user_id.to_string();
        let now = now_ms();
        let subjects = [(
            ACCOUNT_THROTTLE,
            keys.subject(ACCOUNT_THROTTLE.scope, &actor.username),
        )];
        if let Some(remaining) = self.lock_remaining(&subjects, now).await? {
            return Err(LoginError::locked(remaining));
        }
        let row = self.active_mfa(&user_id).await?.ok_or_else(|| {
            AppError::Conflict(
                "MFA is not enabled for this account: enrol with POST /api/v1/auth/mfa/enroll"
                    .to_owned(),
            )
        })?;
        if !self.check_second_factor(&keys, &row, code, now).await? {
            self.record_failures(&subjects, now).await?;
            self.record_best_effort(&[crate::audit::event(
                Some(actor),
                "auth.mfa.verify",
                crate::audit::Outcome::Failed,
            )])
            .await;
            tracing::warn!(user = %actor.user_id, "mfa step-up failed");
            return Err(LoginError::App(invalid_code()));
        }
        self.store()
            .mark_token_mfa_verified(&hash_token(token), now)
            .await?;
        self.record(&[crate::audit::event(
            Some(actor),
            "auth.mfa.verify",
            crate::audit::Outcome::Ok,
        )])
        .await?;
        tracing::info!(user = %actor.user_id, "mfa step-up");
        Ok(now)
    }

    /// Whether the holder of `token` proved a second factor within the last `within_ms` milliseconds (use
    /// [`STEP_UP_WINDOW_MS`] unless a setting says otherwise).
    pub async fn recent_mfa(&self, token: &str, within_ms: i64) -> AppResult<bool> {
        let now = now_ms();
        Ok(self
            .store()
            .token_mfa_verified_at(&hash_token(token), now)
            .await?
            .is_some_and(|at| now - at <= within_ms))
    }

    /// For the reveal path: refuses (403) unless the token holder verified a second factor within
    /// [`STEP_UP_WINDOW_MS`]. A user without MFA enrolled can never pass this.
    pub async fn require_recent_mfa(&self, token: &str) -> AppResult<()> {
        if self.recent_mfa(token, STEP_UP_WINDOW_MS).await? {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "a recent second factor is required: verify with POST /api/v1/auth/mfa/verify",
            ))
        }
    }

    /// The roles that must use MFA (setting [`MFA_REQUIRED_ROLES_SETTING`], default admin and dpo).
    pub async fn mfa_required_roles(&self) -> AppResult<Vec<Role>> {
        match self.store().setting(MFA_REQUIRED_ROLES_SETTING).await? {
            None => Ok(DEFAULT_MFA_REQUIRED_ROLES.to_vec()),
            Some(value) => value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(|name| {
                    name.parse::<Role>().map_err(|error| {
                        AppError::Internal(format!("setting {MFA_REQUIRED_ROLES_SETTING}: {error}"))
                    })
                })
                .collect(),
        }
    }

    /// Sets the roles that must use MFA (an empty list requires it of nobody).
    pub async fn set_mfa_required_roles(&self, roles: &[Role]) -> AppResult<()> {
        let value = roles
            .iter()
            .map(|role| role.as_str())
            .collect::<Vec<_>>()
            .join(",");
        self.store()
            .put_setting(MFA_REQUIRED_ROLES_SETTING, &value, now_ms())
            .await?;
        self.record(&[crate::audit::EventExt::detail(
            crate::audit::event(None, "setting.change", crate::audit::Outcome::Ok),
            serde_json::json!({"setting": MFA_REQUIRED_ROLES_SETTING, "value": value}),
        )])
        .await?;
        Ok(())
    }

    /// Whether `actor` has MFA enabled, and whether their role requires it while they have not.
    pub async fn mfa_status(&self, actor: &Actor) -> AppResult<MfaStatus> {
        let enabled = self.active_mfa(&actor.user_id.to_string()).await?.is_some();
        let required = self.mfa_required_roles().await?.contains(&actor.role);
        Ok(MfaStatus {
            enabled,
            enrollment_required: required && !enabled,
        })
    }

    /// Removes a user's MFA enrolment and recovery codes (lost authenticator) and ends their sessions; they enrol
    /// again after their next login.
    pub async fn reset_mfa(&self, username: &str) -> AppResult<()> {
        use crate::audit::{event, EventExt, Outcome};
        let user = self
            .store()
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        let target = serde_json::json!({"user_id": user.id, "username": user.username});
        self.store()
            .delete_mfa(
                &user.id,
                &[event(None, "user.mfa_reset", Outcome::Ok).detail(target.clone())],
            )
            .await?;
        self.store()
            .revoke_user_tokens(
                &user.id,
                now_ms(),
                &[event(None, "auth.sessions_revoked", Outcome::Ok).detail(target)],
            )
            .await?;
        tracing::warn!(user = %user.id, "mfa reset");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1: the shared secret is the ASCII string "12345678901234567890".
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        let eight = secret.totp(8).unwrap();
        for (time, expected) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(eight.generate(time), expected, "8 digits at {time}");
            // Six digits are the low six of the same truncated value.
            assert_eq!(
                secret.code_at(time).unwrap(),
                expected[2..],
                "6 digits at {time}"
            );
            assert_eq!(
                secret.matching_step(&expected[2..], time).unwrap(),
                Some(time / 30)
            );
        }
    }

    #[test]
    fn skew_is_one_step_either_way() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_015u64;
        let step = now / 30;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let at = ((step as i64 + offset) as u64) * 30;
            let code = secret.code_at(at).unwrap();
            let found = secret.matching_step(&code, now).unwrap();
            if accepted {
                assert_eq!(found, Some((step as i64 + offset) as u64));
            } else {
                // A collision with a code inside the window is possible but then it names that step.
                assert!(found.is_none() || found != Some((step as i64 + offset) as u64));
            }
        }
        assert_eq!(secret.matching_step("12345", now).unwrap(), None);
        assert_eq!(secret.matching_step("abcdef", now).unwrap(), None);
    }

    #[test]
    fn base32_matches_rfc4648() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(input), expected);
        }
        assert_eq!(
            TotpSecret::from_bytes(RFC_SECRET.to_vec())
                .base32()
                .as_str(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        for length in 0..25 {
            let bytes: Vec<u8> = (0..length).map(|n| (n * 37 + 11) as u8).collect();
            let encoded = base32_encode(&bytes);
            let decoded = TotpSecret::from_base32(&encoded.to_lowercase()).unwrap();
            assert_eq!(decoded.0.as_slice(), bytes.as_slice());
        }
        assert!(TotpSecret::from_base32("not base32!").is_none());
    }

    #[test]
    fn recovery_codes_look_right_and_secrets_are_redacted() {
        let code = generate_recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(normalize_recovery_code(&code.to_uppercase()).len(), 16);
        assert!(matches!(
            parse_second_factor(&code),
            SecondFactor::RecoveryCode(_)
        ));
        assert!(matches!(
            parse_second_factor(" 123 456 "),
            SecondFactor::Totp(_)
        ));
        let secret = TotpSecret::generate();
        let shown = format!("{secret:?}");
        assert!(!shown.contains(secret.base32().as_str()));
        assert_eq!(shown, "TotpSecret(<redacted>)");
        let codes = RecoveryCodes(vec![code.clone()]);
        assert!(!format!("{codes:?}").contains(code.as_str()));
    }
}
