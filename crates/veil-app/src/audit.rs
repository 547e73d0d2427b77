//! The audit trail as the rest of Veil uses it: building events from an [`Actor`], recording them, signing
//! checkpoints of the chain head with the server's Ed25519 key, verifying the chain (from the database or from
//! an exported file), querying, exporting, and the data-subject report.
//!
//! Recording rules: an action that writes records its entry in the same transaction (the store methods take the
//! events); a read records its entry before the data is returned, and if that fails the read fails; a reveal
//! records before any plaintext is decrypted. Entries name fields, never values: a search records which field
//! was searched, not what for.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use veil_store::audit::{chain_hash, checkpoint_message, GENESIS_HASH};
use veil_store::{AuditEntry, AuditEvent, AuditFilter, CheckpointRow};

use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// How many entries the verifier reads per page.
const VERIFY_PAGE: i64 = 10_000;
/// Most entries one query returns.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused by authorisation or policy.
    Denied,
    /// Attempted and failed (bad password, invalid input).
    Failed,
}

impl Outcome {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// An event by `actor` (or by the system when `None`): fill in targets and detail, then record it.
pub fn event(actor: Option<&Actor>, action: &str, outcome: Outcome) -> AuditEvent {
    AuditEvent {
        at: now_ms(),
        actor_id: actor.map(|actor| actor.user_id.to_string()),
        actor_name: actor.map(|actor| actor.username.clone()),
        actor_role: actor.map(|actor| actor.role.as_str().to_owned()),
        source_ip: actor.and_then(|actor| actor.source_ip.clone()),
        action: action.to_owned(),
        outcome: outcome.as_str().to_owned(),
        customer_ids: Vec::new(),
        fields: Vec::new(),
        grant_id: None,
        purpose: None,
        detail: "{}".to_owned(),
    }
}

/// Builder helpers on an event.
pub trait EventExt: Sized {
    /// Sets the customers concerned.
    fn customers<I: IntoIterator<Item = S>, S: Into<String>>(self, ids: I) -> Self;
    /// Sets the fields concerned.
    fn fields<I: IntoIterator<Item = S>, S: Into<String>>(self, names: I) -> Self;
    /// Sets the non-personal detail.
    fn detail(self, detail: serde_json::Value) -> Self;
}

impl EventExt for AuditEvent {
    fn customers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.customer_ids = ids.into_iter().map(Into::into).collect();
        self
    }

    fn fields<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.fields = names.into_iter().map(Into::into).collect();
        self
    }

    fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail.to_string();
        self
    }
}

/// One entry as the API and exports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// Position in the chain.
    pub seq: i64,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// When (Unix milliseconds; what the hash covers).
    pub at: i64,
    /// Acting user id.
    pub actor_id: Option<String>,
    /// Acting user name.
    pub actor_name: Option<String>,
    /// Role at the time.
    pub actor_role: Option<String>,
    /// Client address.
    pub source_ip: Option<String>,
    /// What was done.
    pub action: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// Customers concerned.
    pub customer_ids: Vec<String>,
    /// Fields concerned (names only).
    pub fields: Vec<String>,
    /// Grant relied on.
    pub grant_id: Option<String>,
    /// Declared purpose.
    pub purpose: Option<String>,
    /// Further detail (JSON object).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

impl AuditRecord {
    /// The API view of a stored entry.
    pub fn from_entry(entry: &AuditEntry) -> Self {
        AuditRecord {
            seq: entry.seq,
            time: format_time(entry.event.at),
            at: entry.event.at,
            actor_id: entry.event.actor_id.clone(),
            actor_name: entry.event.actor_name.clone(),
            actor_role: entry.event.actor_role.clone(),
            source_ip: entry.event.source_ip.clone(),
            action: entry.event.action.clone(),
            outcome: entry.event.outcome.clone(),
            customer_ids: entry.event.customer_ids.clone(),
            fields: entry.event.fields.clone(),
            grant_id: entry.event.grant_id.clone(),
            purpose: entry.event.purpose.clone(),
            detail: serde_json::from_str(&entry.event.detail)
                .unwrap_or(serde_json::Value::String(entry.event.detail.clone())),
            prev_hash: hex(&entry.prev_hash),
            hash: hex(&entry.hash),
        }
    }

    /// Back to the stored form (for verifying an exported file).
    pub fn to_entry(&self) -> Result<AuditEntry, String> {
        let detail = match &self.detail {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        Ok(AuditEntry {
            seq: self.seq,
            event: AuditEvent {
                at: self.at,
                actor_id: self.actor_id.clone(),
                actor_name: self.actor_name.clone(),
                actor_role: self.actor_role.clone(),
                source_ip: self.source_ip.clone(),
                action: self.action.clone(),
                outcome: self.outcome.clone(),
                customer_ids: self.customer_ids.clone(),
                fields: self.fields.clone(),
                grant_id: self.grant_id.clone(),
                purpose: self.purpose.clone(),
                detail,
            },
            prev_hash: unhex(&self.prev_hash)
                .ok_or_else(|| format!("entry {}: prev_hash is not hex", self.seq))?,
            hash: unhex(&self.hash)
                .ok_or_else(|| format!("entry {}: hash is not hex", self.seq))?,
        })
    }
}

/// A signed checkpoint as shown and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// Head sequence number signed.
    pub seq: i64,
    /// Head hash (hex).
    pub head_hash: String,
    /// When signed.
    pub time: String,
    /// Unix milliseconds.
    pub at: i64,
    /// Ed25519 public key (hex).
    pub public_key: String,
    /// Signature (hex).
    pub signature: String,
}

impl CheckpointView {
    fn from_row(row: &CheckpointRow) -> Self {
        CheckpointView {
            seq: row.seq,
            head_hash: hex(&row.head_hash),
            time: format_time(row.at),
            at: row.at,
            public_key: hex(&row.public_key),
            signature: hex(&row.signature),
        }
    }

    fn to_row(&self) -> Result<CheckpointRow, String> {
        let field = |name: &str, text: &str| {
            unhex(text).ok_or_else(|| format!("checkpoint {}: {name} is not hex", self.seq))
        };
        Ok(CheckpointRow {
            seq: self.seq,
            head_hash: field("head_hash", &self.head_hash)?,
            at: self.at,
            public_key: field("public_key", &self.public_key)?,
            signature: field("signature", &self.signature)?,
        })
    }
}

/// One line of an exported JSONL file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportLine {
    /// An entry.
    Entry(Box<AuditRecord>),
    /// A checkpoint.
    Checkpoint(CheckpointView),
}

/// The result of verifying the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VerifyReport {
    /// Whether everything checked out.
    pub ok: bool,
    /// Entries whose hash was recomputed.
    pub entries_checked: u64,
    /// First sequence number checked.
    pub first_seq: Option<i64>,
    /// Last sequence number checked.
    pub last_seq: Option<i64>,
    /// Checkpoints whose signature and head were checked.
    pub checkpoints_checked: u64,
    /// The newest checkpoint that verified.
    pub last_checkpoint_seq: Option<i64>,
    /// The first sequence number at which the chain breaks.
    pub first_bad_seq: Option<i64>,
    /// What is wrong, in words (`None` when ok).
    pub problem: Option<String>,
    /// Entries up to this sequence number were pruned under the retention settings (archived first); the chain
    /// was verified from the signed anchor they left.
    pub pruned_through: Option<i64>,
}

/// Streaming chain verifier: feed entries in order, then checkpoints, then [`ChainVerifier::finish`].
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: Option<i64>,
    prev_hash: Vec<u8>,
    checked: u64,
    first_seq: Option<i64>,
    /// Hashes of entries at checkpointed sequences, filled while streaming.
    wanted: std::collections::HashMap<i64, Option<Vec<u8>>>,
    failure: Option<(i64, String)>,
}

impl ChainVerifier {
    /// A verifier for a chain that starts at sequence 1 (the whole log).
    pub fn from_genesis() -> Self {
        ChainVerifier {
            expected_seq: Some(1),
            prev_hash: GENESIS_HASH.to_vec(),
            checked: 0,
            first_seq: None,
            wanted: Default::default(),
            failure: None,
        }
    }

    /// A verifier for an exported range: the first entry's sequence and previous hash are taken as given.
    pub fn from_anchor() -> Self {
        ChainVerifier {
            expected_seq: None,
            ..ChainVerifier::from_genesis()
        }
    }

    /// A verifier for a chain whose entries up to `upto_seq` were pruned, continuing from their last hash.
    pub fn anchored(upto_seq: i64, upto_hash: Vec<u8>) -> Self {
        ChainVerifier {
            expected_seq: Some(upto_seq + 1),
            prev_hash: upto_hash,
            ..ChainVerifier::from_genesis()
        }
    }

    /// Remembers to capture the hash of entry `seq` (to compare with a checkpoint).
    pub fn want(&mut self, seq: i64) {
        self.wanted.entry(seq).or_insert(None);
    }

    /// Whether a break was already found.
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Checks the next entry.
    pub fn push(&mut self, entry: &AuditEntry) {
        if self.failure.is_some() {
            return;
        }
        let expected = match self.expected_seq {
            Some(seq) => seq,
            None => {
                self.prev_hash = entry.prev_hash.clone();
                entry.seq
            }
        };
        if entry.seq != expected {
            let problem = if entry.seq > expected {
                format!(
                    "entries {expected}..{} are missing (deleted), or entry {} was renumbered",
                    entry.seq - 1,
                    entry.seq
                )
            } else {
                format!(
                    "entry {} appears where {expected} was expected (reordered or duplicated)",
                    entry.seq
                )
            };
            self.failure = Some((expected, problem));
            return;
        }
        if entry.prev_hash != self.prev_hash {
            self.failure = Some((
                entry.seq,
                format!(
                    "entry {} does not link to entry {} (its previous hash differs: entries were \
                     reordered, removed or edited)",
                    entry.seq,
                    entry.seq - 1
                ),
            ));
            return;
        }
        let hash = chain_hash(&self.prev_hash, entry.seq, &entry.event);
        if hash.as_slice() != entry.hash.as_slice() {
            self.failure = Some((
                entry.seq,
                format!(
                    "entry {} was altered: its contents no longer match its hash",
                    entry.seq
                ),
            ));
            return;
        }
        if let Some(slot) = self.wanted.get_mut(&entry.seq) {
            *slot = Some(hash.to_vec());
        }
        self.first_seq.get_or_insert(entry.seq);
        self.prev_hash = hash.to_vec();
        self.expected_seq = Some(entry.seq + 1);
        self.checked += 1;
    }

    /// Finishes: checks every checkpoint's signature (against `trusted_key` when given, else the key it names)
    /// and that the chain contains the head it signed.
    pub fn finish(
        self,
        checkpoints: &[CheckpointRow],
        trusted_key: Option<&VerifyingKey>,
    ) -> VerifyReport {
        let last_seq = self
            .expected_seq
            .map(|next| next - 1)
            .filter(|seq| *seq > 0);
        let mut report = VerifyReport {
            ok: true,
            entries_checked: self.checked,
            first_seq: self.first_seq,
            last_seq: if self.checked > 0 { last_seq } else { None },
            checkpoints_checked: 0,
            last_checkpoint_seq: None,
            first_bad_seq: None,
            problem: None,
            pruned_through: None,
        };
        if let Some((seq, problem)) = self.failure {
            report.ok = false;
            report.first_bad_seq = Some(seq);
            report.problem = Some(problem);
            return report;
        }
        for checkpoint in checkpoints {
            if let Err(why) = check_signature(checkpoint, trusted_key) {
                report.ok = false;
                report.problem = Some(format!(
                    "checkpoint at entry {}: {why} (forged or signed by another key)",
                    checkpoint.seq
                ));
                report.first_bad_seq = Some(checkpoint.seq);
                return report;
            }
            if checkpoint.seq == 0 {
                report.checkpoints_checked += 1;
                continue;
            }
            match self.wanted.get(&checkpoint.seq) {
                Some(Some(hash)) if *hash == checkpoint.head_hash => {
                    report.checkpoints_checked += 1;
                    report.last_checkpoint_seq = Some(checkpoint.seq);
                }
                Some(Some(_)) => {
                    report.ok = false;
                    report.first_bad_seq = Some(checkpoint.seq);
                    report.problem = Some(format!(
                        "entry {} differs from the head signed in its checkpoint (the log was rewritten)",
                        checkpoint.seq
                    ));
                    return report;
                }
                _ if report.last_seq.is_some_and(|last| checkpoint.seq > last)
                    || report.last_seq.is_none() =>
                {
                    report.ok = false;
                    let first_missing = report.last_seq.map_or(1, |last| last + 1);
                    report.first_bad_seq = Some(first_missing);
                    report.problem = Some(format!(
                        "the log was truncated: a checkpoint signed entry {} but the log ends at {}",
                        checkpoint.seq,
                        report.last_seq.unwrap_or(0)
                    ));
                    return report;
                }
                // Before the start of an exported range: nothing to compare.
                _ => {}
            }
        }
        report
    }
}

/// Whether a checkpoint's signature verifies (against `trusted_key`, or the key it names).
fn check_signature(
    checkpoint: &CheckpointRow,
    trusted_key: Option<&VerifyingKey>,
) -> Result<(), String> {
    let key = match trusted_key {
        Some(key) => *key,
        None => public_key_from(&checkpoint.public_key)?,
    };
    let signature = Signature::from_slice(&checkpoint.signature)
        .map_err(|_| "malformed signature".to_owned())?;
    key.verify(
        &checkpoint_message(checkpoint.seq, &checkpoint.head_hash),
        &signature,
    )
    .map_err(|_| "signature does not verify".to_owned())
}

fn public_key_from(bytes: &[u8]) -> Result<VerifyingKey, String> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "public key is not 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&array).map_err(|_| "malformed public key".to_owned())
}

/// Parses a hex Ed25519 public key (as `veil audit public-key` prints it).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = unhex(text.trim()).ok_or_else(|| "the public key is not hex".to_owned())?;
    public_key_from(&bytes)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

/// Parses lower- or upper-case hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}

/// Verifies an exported JSONL file (entries in order, checkpoints anywhere), trusting `public_key` for the
/// checkpoints (or, without it, the key each checkpoint names — which proves integrity, not origin).
pub fn verify_export(
    reader: impl BufRead,
    public_key: Option<&VerifyingKey>,
) -> Result<VerifyReport, String> {
    let mut verifier = ChainVerifier::from_anchor();
    let mut checkpoints = Vec::new();
    let mut entries = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(|error| format!("cannot read line {}: {error}", number + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ExportLine = serde_json::from_str(&line)
            .map_err(|error| format!("line {} is not an audit export line: {error}", number + 1))?;
        match parsed {
            ExportLine::Entry(record) => entries.push(record.to_entry()?),
            ExportLine::Checkpoint(view) => checkpoints.push(view.to_row()?),
        }
    }
    for checkpoint in &checkpoints {
        verifier.want(checkpoint.seq);
    }
    for entry in &entries {
        verifier.push(entry);
    }
    // An exported range only proves checkpoints inside it.
    let first = entries.first().map(|entry| entry.seq).unwrap_or(1);
    let checkpoints: Vec<CheckpointRow> = checkpoints
        .into_iter()
        .filter(|checkpoint| checkpoint.seq >= first)
        .collect();
    Ok(verifier.finish(&checkpoints, public_key))
}

/// The data-subject report: every recorded access to and change of one customer's data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubjectReport {
    /// The customer.
    pub customer_id: String,
    /// When the report was made.
    pub generated_at: String,
    /// Entries concerning the customer, oldest first.
    pub entries: Vec<SubjectAccess>,
    /// Distinct people who accessed the data.
    pub accessed_by: Vec<String>,
}

/// One line of a subject report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubjectAccess {
    /// Audit sequence number (for reference).
    pub seq: i64,
    /// When.
    pub time: String,
    /// Who (user name).
    pub who: Option<String>,
    /// Their role.
    pub role: Option<String>,
    /// What (action).
    pub action: String,
    /// Whether it succeeded.
    pub outcome: String,
    /// Fields concerned.
    pub fields: Vec<String>,
    /// Why (purpose).
    pub purpose: Option<String>,
    /// Under which grant.
    pub grant_id: Option<String>,
}

/// Query parameters of an audit search, as the API and CLI accept them.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// User id of the actor.
    pub actor: Option<String>,
    /// Action name, or a prefix ending in `.` (e.g. `customer.`).
    pub action: Option<String>,
    /// Customer id.
    pub customer: Option<String>,
    /// From (RFC 3339 or `YYYY-MM-DD`), inclusive.
    pub from: Option<String>,
    /// To (RFC 3339 or `YYYY-MM-DD`), exclusive.
    pub to: Option<String>,
    /// Page backwards from this sequence number (exclusive), as returned in `next_before`.
    pub before: Option<i64>,
    /// Page size (default 100, at most 500).
    pub limit: Option<u32>,
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub items: Vec<AuditRecord>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<i64>,
}

/// Parses `YYYY-MM-DD` (UTC midnight) or RFC 3339 into Unix milliseconds.
pub fn parse_time(field: &str, text: &str) -> AppResult<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(midnight) = date.and_hms_opt(0, 0, 0) {
            return Ok(midnight.and_utc().timestamp_millis());
        }
    }
    Err(AppError::Validation(vec![FieldError::new(
        field,
        "invalid",
        "expected a date (YYYY-MM-DD) or an RFC 3339 time",
    )]))
}

impl AuditQuery {
    /// The store filter this query means.
    pub fn filter(&self) -> AppResult<AuditFilter> {
        Ok(AuditFilter {
            actor_id: self.actor.clone(),
            action: self.action.clone(),
            customer_id: self.customer.clone(),
            from: self
                .from
                .as_deref()
                .map(|text| parse_time("from", text))
                .transpose()?,
            to: self
                .to
                .as_deref()
                .map(|text| parse_time("to", text))
                .transpose()?,
            before_seq: self.before,
            after_seq: None,
        })
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line, entries then the checkpoints inside the range; verifiable offline.
    Jsonl,
    /// A spreadsheet-friendly table of the entries.
    Csv,
}

/// One CSV cell: quoted when needed, with cells a spreadsheet would run as a formula prefixed by a quote.
pub(crate) fn csv_field(text: &str) -> String {
    // Cells that a spreadsheet would run as a formula are prefixed with a quote.
    let guarded = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

const SIGNING_PURPOSE: &str = "audit_signing";
/// Setting: seconds between automatic checkpoints (at least 10).
pub const CHECKPOINT_INTERVAL_SETTING: &str = "audit.checkpoint_interval_secs";
const DEFAULT_CHECKPOINT_SECS: u64 = 300;

impl Veil {
    /// Records events on their own (for reads and failed attempts). An error means nothing was recorded, and
    /// the caller must not go on to return data.
    pub async fn record(&self, events: &[AuditEvent]) -> AppResult<()> {
        self.store().append_audit(events).await.map_err(|error| {
            tracing::error!(%error, "audit write failed");
            AppError::AuditUnavailable
        })?;
        Ok(())
    }

    /// Records and logs (but does not propagate) a failure to record: for events about failures that are
    /// already being reported, such as a refused login.
    pub async fn record_best_effort(&self, events: &[AuditEvent]) {
        if let Err(error) = self.store().append_audit(events).await {
            tracing::error!(%error, "audit write failed");
        }
    }

    /// The server's audit signing key (keyring purpose `audit_signing`, wrapped by the master key, created on
    /// first use).
    pub async fn audit_signing_key(&self) -> AppResult<SigningKey> {
        let (_, secret) = self
            .keyring()
            .purpose_key(self.store(), SIGNING_PURPOSE)
            .await?;
        Ok(SigningKey::from_bytes(secret.expose_secret()))
    }

    /// The public half of the audit signing key (hex), for offline verification.
    pub async fn audit_public_key(&self) -> AppResult<String> {
        Ok(hex(self
            .audit_signing_key()
            .await?
            .verifying_key()
            .as_bytes()))
    }

    /// Signs the current head. Returns `None` when the head is already checkpointed (nothing new).
    pub async fn audit_checkpoint(&self) -> AppResult<Option<CheckpointView>> {
        let key = self.audit_signing_key().await?;
        let (seq, head_hash) = self.store().audit_head().await?;
        let signature = key.sign(&checkpoint_message(seq, &head_hash));
        let row = CheckpointRow {
            seq,
            head_hash,
            at: now_ms(),
            public_key: key.verifying_key().as_bytes().to_vec(),
            signature: signature.to_bytes().to_vec(),
        };
        match self.store().insert_audit_checkpoint(&row).await {
            Ok(()) => Ok(Some(CheckpointView::from_row(&row))),
            Err(veil_store::StoreError::Conflict(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Verifies the whole chain in the database: every entry's link and hash, every checkpoint's signature
    /// (against this server's key) and head, and that the head row matches the last entry.
    pub async fn verify_audit_chain(&self) -> AppResult<VerifyReport> {
        let key = self.audit_signing_key().await?.verifying_key();
        self.verify_audit_chain_with(Some(&key)).await
    }

    /// [`Veil::verify_audit_chain`] with a given trusted key (or the keys the checkpoints name).
    pub async fn verify_audit_chain_with(
        &self,
        key: Option<&VerifyingKey>,
    ) -> AppResult<VerifyReport> {
        let mut checkpoints = self.store().audit_checkpoints().await?;
        let (head_seq, head_hash) = self.store().audit_head().await?;
        let prunes = self.store().audit_prunes().await?;
        let anchor = prunes.last().cloned();
        if let Some(anchor) = &anchor {
            if let Some(problem) = self
                .check_prune_anchor(anchor, &prunes, &checkpoints, key)
                .await?
            {
                return Ok(VerifyReport {
                    ok: false,
                    entries_checked: 0,
                    first_seq: None,
                    last_seq: None,
                    checkpoints_checked: 0,
                    last_checkpoint_seq: None,
                    first_bad_seq: Some(anchor.upto_seq),
                    problem: Some(problem),
                    pruned_through: Some(anchor.upto_seq),
                });
            }
            // Checkpoints of pruned entries vouch for nothing that is still here.
            checkpoints.retain(|checkpoint| checkpoint.seq > anchor.upto_seq);
        }
        let mut verifier = match &anchor {
            Some(anchor) => ChainVerifier::anchored(anchor.upto_seq, anchor.upto_hash.clone()),
            None => ChainVerifier::from_genesis(),
        };
        for checkpoint in &checkpoints {
            verifier.want(checkpoint.seq);
        }
        verifier.want(head_seq);
        // Up to the head read above: entries appended meanwhile are the next verification's.
        let after = anchor.as_ref().map_or(0, |anchor| anchor.upto_seq);
        let verifier = self
            .store()
            .scan_audit(after, head_seq, verifier, |verifier, entry| {
                verifier.push(entry);
                !verifier.failed()
            })
            .await?;
        let head_entry = verifier.wanted.get(&head_seq).cloned().flatten();
        let mut report = verifier.finish(&checkpoints, key);
        report.pruned_through = anchor.as_ref().map(|anchor| anchor.upto_seq);
        if report.ok && head_seq > 0 {
            let last = report.last_seq.unwrap_or(0);
            if last < head_seq {
                report.ok = false;
                report.first_bad_seq = Some(last + 1);
                report.problem = Some(format!(
                    "the log was truncated: the head records entry {head_seq} but the log ends at {last}"
                ));
            } else if head_entry.as_deref() != Some(head_hash.as_slice()) {
                report.ok = false;
                report.first_bad_seq = Some(head_seq);
                report.problem = Some(format!(
                    "entry {head_seq} differs from the recorded head hash"
                ));
            }
        }
        Ok(report)
    }

    /// Verifies on behalf of a user (admin, DPO, auditor), recording that the check was run and its result.
    pub async fn verify_audit_as(&self, actor: &Actor) -> AppResult<VerifyReport> {
        self.permit_recorded(actor, Action::AuditVerify, None)
            .await?;
        let report = self.verify_audit_chain().await?;
        self.record(&[event(Some(actor), "audit.verify", Outcome::Ok).detail(
            serde_json::json!({"intact": report.ok, "entries": report.entries_checked,
                               "first_bad_seq": report.first_bad_seq}),
        )])
        .await?;
        Ok(report)
    }

    /// A page of the audit log for a DPO or auditor, newest first. The query itself is recorded.
    pub async fn query_audit(&self, actor: &Actor, query: &AuditQuery) -> AppResult<AuditPage> {
        self.permit_recorded(actor, Action::AuditRead, None).await?;
        let filter = query.filter()?;
        let limit = query.limit.unwrap_or(100).clamp(1, MAX_AUDIT_PAGE);
        let mut entries = self
            .store()
            .query_audit(&filter, i64::from(limit) + 1)
            .await?;
        let next_before = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|entry| entry.seq)
        } else {
            None
        };
        self.record(&[
            event(Some(actor), "audit.read", Outcome::Ok).detail(serde_json::json!({
                "filter": {"actor": query.actor, "action": query.action, "customer": query.customer,
                           "from": query.from, "to": query.to},
                "returned": entries.len(),
            })),
        ])
        .await?;
        Ok(AuditPage {
            items: entries.iter().map(AuditRecord::from_entry).collect(),
            next_before,
        })
    }

    /// Successful reveals (`customer.reveal`, outcome ok) per UTC day, for the `days` days ending today, oldest
    /// first and every day present (zero when none): the dashboard's chart for DPOs and auditors. Counted in the
    /// database over an index range, so the cost follows the reveals of those days only. Recorded as an audit read.
    pub async fn reveals_per_day(
        &self,
        actor: &Actor,
        days: u32,
    ) -> AppResult<Vec<(chrono::NaiveDate, i64)>> {
        const DAY_MS: i64 = 86_400_000;
        self.permit_recorded(actor, Action::AuditRead, None).await?;
        let days = i64::from(days.clamp(1, 366));
        let today = now_ms().div_euclid(DAY_MS);
        let first = today - (days - 1);
        let counts = self
            .store()
            .audit_counts_per_day(
                "customer.reveal",
                "ok",
                first * DAY_MS,
                (today + 1) * DAY_MS,
            )
            .await?;
        self.record(&[
            event(Some(actor), "audit.read", Outcome::Ok).detail(serde_json::json!({
                "filter": {"action": "customer.reveal", "outcome": "ok", "days": days},
                "counted_by": "day",
            })),
        ])
        .await?;
        Ok((first..=today)
            .filter_map(|day| {
                let date = chrono::DateTime::from_timestamp_millis(day * DAY_MS)?.date_naive();
                let count = counts
                    .iter()
                    .find(|(counted, _)| *counted == day)
                    .map_or(0, |(_, count)| *count);
                Some((date, count))
            })
            .collect())
    }

    /// Writes entries with `from <= at < to` to `out`, oldest first; JSONL also carries the checkpoints inside
    /// the range, so the file verifies offline with the public key. Returns how many entries were written.
    pub async fn export_audit(
        &self,
        from: Option<i64>,
        to: Option<i64>,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> AppResult<u64> {
        let filter = AuditFilter {
            from,
            to,
            ..AuditFilter::default()
        };
        self.export_filtered(filter, format, out).await
    }

    /// Writes entries `after_seq < seq <= upto_seq`, as [`Veil::export_audit`] does.
    pub async fn export_audit_range(
        &self,
        after_seq: i64,
        upto_seq: i64,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> AppResult<u64> {
        let filter = AuditFilter {
            after_seq: Some(after_seq),
            before_seq: Some(upto_seq + 1),
            ..AuditFilter::default()
        };
        self.export_filtered(filter, format, out).await
    }

    async fn export_filtered(
        &self,
        base: AuditFilter,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> AppResult<u64> {
        let io =
            |error: std::io::Error| AppError::Internal(format!("cannot write the export: {error}"));
        if format == ExportFormat::Csv {
            writeln!(
                out,
                "seq,time,actor_id,actor_name,actor_role,source_ip,action,outcome,customer_ids,fields,grant_id,purpose,detail,prev_hash,hash"
            )
            .map_err(io)?;
        }
        let mut written = 0u64;
        let mut first_seq = None;
        let mut last_seq = None;
        let mut after = base.after_seq.unwrap_or(0);
        loop {
            let filter = AuditFilter {
                after_seq: Some(after),
                ..base.clone()
            };
            let page = self.store().query_audit(&filter, VERIFY_PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.seq;
            for entry in &page {
                first_seq.get_or_insert(entry.seq);
                last_seq = Some(entry.seq);
                let record = AuditRecord::from_entry(entry);
                match format {
                    ExportFormat::Jsonl => {
                        let line = serde_json::to_string(&ExportLine::Entry(Box::new(record)))
                            .map_err(|error| AppError::Internal(error.to_string()))?;
                        writeln!(out, "{line}").map_err(io)?;
                    }
                    ExportFormat::Csv => {
                        let cells = [
                            record.seq.to_string(),
                            record.time,
                            record.actor_id.unwrap_or_default(),
                            record.actor_name.unwrap_or_default(),
                            record.actor_role.unwrap_or_default(),
                            record.source_ip.unwrap_or_default(),
                            record.action,
                            record.outcome,
                            record.customer_ids.join(" "),
                            record.fields.join(" "),
                            record.grant_id.unwrap_or_default(),
                            record.purpose.unwrap_or_default(),
                            record.detail.to_string(),
                            record.prev_hash,
                            record.hash,
                        ];
                        let line: Vec<String> = cells.iter().map(|cell| csv_field(cell)).collect();
                        writeln!(out, "{}", line.join(",")).map_err(io)?;
                    }
                }
                written += 1;
            }
        }
        if format == ExportFormat::Jsonl {
            if let (Some(first), Some(last)) = (first_seq, last_seq) {
                for checkpoint in self.store().audit_checkpoints().await? {
                    if checkpoint.seq >= first && checkpoint.seq <= last {
                        let line = serde_json::to_string(&ExportLine::Checkpoint(
                            CheckpointView::from_row(&checkpoint),
                        ))
                        .map_err(|error| AppError::Internal(error.to_string()))?;
                        writeln!(out, "{line}").map_err(io)?;
                    }
                }
            }
        }
        out.flush().map_err(io)?;
        Ok(written)
    }

    /// Signs the current head on behalf of a user (admin, DPO, auditor); recorded.
    pub async fn audit_checkpoint_as(&self, actor: &Actor) -> AppResult<Option<CheckpointView>> {
        self.permit_recorded(actor, Action::AuditVerify, None)
            .await?;
        let checkpoint = self.audit_checkpoint().await?;
        self.record(&[event(Some(actor), "audit.checkpoint", Outcome::Ok)
            .detail(serde_json::json!({"seq": checkpoint.as_ref().map(|view| view.seq)}))])
            .await?;
        Ok(checkpoint)
    }

    /// The audit public key for a user who verifies (admin, DPO, auditor).
    pub async fn audit_public_key_as(&self, actor: &Actor) -> AppResult<String> {
        self.permit_recorded(actor, Action::AuditVerify, None)
            .await?;
        self.audit_public_key().await
    }

    /// Signs the head every `audit.checkpoint_interval_secs` (a setting, default 300 s) until the process ends.
    /// Several servers on one database may all run it: a head already signed is skipped.
    pub fn spawn_checkpoints(veil: std::sync::Arc<Veil>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let seconds = match veil.store().setting(CHECKPOINT_INTERVAL_SETTING).await {
                    Ok(Some(text)) => text
                        .parse::<u64>()
                        .ok()
                        .filter(|seconds| *seconds >= 10)
                        .unwrap_or(DEFAULT_CHECKPOINT_SECS),
                    _ => DEFAULT_CHECKPOINT_SECS,
                };
                tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
                match veil.audit_checkpoint().await {
                    Ok(Some(view)) => tracing::info!(seq = view.seq, "audit checkpoint signed"),
                    Ok(None) => {}
                    Err(error) => tracing::error!(%error, "audit checkpoint failed"),
                }
            }
        })
    }

    /// Checkpoints, newest first.
    pub async fn audit_checkpoints(&self, actor: &Actor) -> AppResult<Vec<CheckpointView>> {
        self.permit_recorded(actor, Action::AuditVerify, None)
            .await?;
        let mut rows = self.store().audit_checkpoints().await?;
        rows.reverse();
        Ok(rows.iter().map(CheckpointView::from_row).collect())
    }

    /// The data-subject report for one customer (DPO only; the report itself is recorded against the customer).
    /// Erased customers still have their history: the report works from the audit log alone.
    pub async fn subject_report(
        &self,
        actor: Option<&Actor>,
        customer_id: &str,
    ) -> AppResult<SubjectReport> {
        if let Some(actor) = actor {
            self.permit_recorded(actor, Action::SubjectReport, None)
                .await?;
        }
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let filter = AuditFilter {
                customer_id: Some(customer_id.to_owned()),
                after_seq: Some(after),
                ..AuditFilter::default()
            };
            let page = self.store().query_audit(&filter, VERIFY_PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.seq;
            entries.extend(page);
        }
        self.record(&[event(actor, "subject.report", Outcome::Ok)
            .customers([customer_id])
            .detail(serde_json::json!({"entries": entries.len()}))])
            .await?;
        let accessed_by: BTreeSet<String> = entries
            .iter()
            .filter(|entry| entry.event.outcome == "ok")
            .filter_map(|entry| entry.event.actor_name.clone())
            .collect();
        Ok(SubjectReport {
            customer_id: customer_id.to_owned(),
            generated_at: format_time(now_ms()),
            entries: entries
                .iter()
                .map(|entry| SubjectAccess {
                    seq: entry.seq,
                    time: format_time(entry.event.at),
                    who: entry.event.actor_name.clone(),
                    role: entry.event.actor_role.clone(),
                    action: entry.event.action.clone(),
                    outcome: entry.event.outcome.clone(),
                    fields: entry.event.fields.clone(),
                    purpose: entry.event.purpose.clone(),
                    grant_id: entry.event.grant_id.clone(),
                })
                .collect(),
            accessed_by: accessed_by.into_iter().collect(),
        })
    }
}

/// SHA-256 of `bytes`, hex (for evidence fingerprints in audit detail).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

mod retention;
pub use retention::{PruneReport, Retention, GOVERNANCE_PREFIXES};

#[cfg(test)]
mod tests;
