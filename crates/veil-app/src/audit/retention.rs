//! Audit retention: how long entries are kept, and pruning the expired prefix of the chain into an archive.
//!
//! Ordinary entries are kept `audit.retention_days` (default 1,095, at least 365); entries of the governance
//! workflow — approvals, rejections, risk assessments, consents, grants (actions `unmask.`, `consent.`, `grant.`,
//! `risk.`) — `audit.governance_retention_days` (default 1,825, never less than 1,095: three years). Only a prefix
//! is pruned (everything before the first entry that must be kept), so the rest stays one verifiable chain: the
//! pruned entries are first written to an archive (JSONL, the export format, verifiable offline), a checkpoint is
//! signed over the last pruned entry, and then, in one transaction, the anchor (that entry's sequence and hash and
//! the archive's SHA-256) is stored, the entries deleted, and an `audit.prune` entry appended.

use std::io::Write;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use veil_store::{AuditFilter, CheckpointRow, PruneRow};

use super::{check_signature, event, hex, EventExt, ExportFormat, Outcome};
use crate::backup::archive::HashingWriter;
use crate::error::{AppError, AppResult, FieldError};
use crate::{now_ms, Veil};

/// Setting: days ordinary entries are kept.
pub const RETENTION_SETTING: &str = "audit.retention_days";
/// Setting: days governance entries (approvals, risk assessments, consents, grants) are kept.
pub const GOVERNANCE_RETENTION_SETTING: &str = "audit.governance_retention_days";
/// Action prefixes of the governance workflow.
pub const GOVERNANCE_PREFIXES: [&str; 4] = ["unmask.", "consent.", "grant.", "risk."];
const DEFAULT_DAYS: i64 = 1095;
const MIN_DAYS: i64 = 365;
const DEFAULT_GOVERNANCE_DAYS: i64 = 1825;
/// Three years: what PIPL practice and the issue require for approvals and risk assessments.
const MIN_GOVERNANCE_DAYS: i64 = 1095;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The retention settings in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Retention {
    /// Days ordinary entries are kept.
    pub days: i64,
    /// Days governance entries are kept.
    pub governance_days: i64,
}

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PruneReport {
    /// Entries archived and deleted (0 when nothing has expired).
    pub entries: u64,
    /// The last pruned entry.
    pub upto_seq: Option<i64>,
    /// SHA-256 of the archive written.
    pub archive_sha256: Option<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

fn days_setting(name: &str, text: Option<String>, default: i64, minimum: i64) -> AppResult<i64> {
    let Some(text) = text else {
        return Ok(default);
    };
    let days: i64 = text
        .parse()
        .map_err(|_| AppError::Internal(format!("setting {name} is not a number of days")))?;
    Ok(days.max(minimum))
}

impl Veil {
    /// The retention settings in force.
    pub async fn audit_retention(&self) -> AppResult<Retention> {
        Ok(Retention {
            days: days_setting(
                RETENTION_SETTING,
                self.store().setting(RETENTION_SETTING).await?,
                DEFAULT_DAYS,
                MIN_DAYS,
            )?,
            governance_days: days_setting(
                GOVERNANCE_RETENTION_SETTING,
                self.store().setting(GOVERNANCE_RETENTION_SETTING).await?,
                DEFAULT_GOVERNANCE_DAYS,
                MIN_GOVERNANCE_DAYS,
            )?,
        })
    }

    /// Changes the retention settings (host operator); refuses values below the minimums. Recorded.
    pub async fn set_audit_retention(
        &self,
        days: Option<i64>,
        governance_days: Option<i64>,
    ) -> AppResult<Retention> {
        let mut errors = Vec::new();
        if days.is_some_and(|days| days < MIN_DAYS) {
            errors.push(FieldError::new(
                "days",
                "too_short",
                format!("ordinary audit entries are kept at least {MIN_DAYS} days"),
            ));
        }
        if governance_days.is_some_and(|days| days < MIN_GOVERNANCE_DAYS) {
            errors.push(FieldError::new(
                "governance_days",
                "too_short",
                format!(
                    "approvals, risk assessments and consents are kept at least {MIN_GOVERNANCE_DAYS} days (3 years)"
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let before = self.audit_retention().await?;
        let now = now_ms();
        if let Some(days) = days {
            self.store()
                .put_setting(RETENTION_SETTING, &days.to_string(), now)
                .await?;
        }
        if let Some(days) = governance_days {
            self.store()
                .put_setting(GOVERNANCE_RETENTION_SETTING, &days.to_string(), now)
                .await?;
        }
        let after = self.audit_retention().await?;
        self.record(&[
            event(None, "setting.change", Outcome::Ok).detail(serde_json::json!({
                "setting": "audit retention", "before": before, "after": after,
            })),
        ])
        .await?;
        Ok(after)
    }

    /// Archives the expired prefix of the trail to `archive` (JSONL, verifiable offline with the public key) and
    /// deletes it, leaving a signed anchor. With `dry_run`, only says what would be pruned.
    pub async fn prune_audit(
        &self,
        archive: &mut dyn Write,
        dry_run: bool,
    ) -> AppResult<PruneReport> {
        let retention = self.audit_retention().await?;
        let now = now_ms();
        let keep_from = self
            .store()
            .first_retained_seq(
                now - retention.days * DAY_MS,
                now - retention.governance_days * DAY_MS,
                &GOVERNANCE_PREFIXES,
            )
            .await?;
        let (head, _) = self.store().audit_head().await?;
        let upto = keep_from.map_or(head, |first| first - 1);
        let anchor = self
            .store()
            .audit_prunes()
            .await?
            .last()
            .map_or(0, |prune| prune.upto_seq);
        if upto <= anchor {
            return Ok(PruneReport {
                entries: 0,
                upto_seq: None,
                archive_sha256: None,
                dry_run,
            });
        }
        if dry_run {
            return Ok(PruneReport {
                entries: (upto - anchor) as u64,
                upto_seq: Some(upto),
                archive_sha256: None,
                dry_run,
            });
        }
        // The archive first: nothing is deleted that is not written down.
        let first_time = self
            .store()
            .audit_entries_after(anchor, 1)
            .await?
            .first()
            .map_or(0, |entry| entry.event.at);
        let last = self
            .store()
            .audit_entries_after(upto - 1, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal("the entry to prune up to is missing".to_owned()))?;
        let mut writer = HashingWriter {
            inner: archive,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let written = self
            .export_audit_range(anchor, upto, ExportFormat::Jsonl, &mut writer)
            .await?;
        writer
            .flush()
            .map_err(|error| AppError::Internal(format!("cannot write the archive: {error}")))?;
        let archive_sha256 = hex(&writer.hasher.finalize());
        // A signed statement of the anchor, so that the retained chain's start is vouched for.
        let key = self.audit_signing_key().await?;
        let checkpoint = CheckpointRow {
            seq: last.seq,
            head_hash: last.hash.clone(),
            at: now,
            public_key: key.verifying_key().as_bytes().to_vec(),
            signature: ed25519_dalek::Signer::sign(
                &key,
                &veil_store::audit::checkpoint_message(last.seq, &last.hash),
            )
            .to_bytes()
            .to_vec(),
        };
        match self.store().insert_audit_checkpoint(&checkpoint).await {
            Ok(()) | Err(veil_store::StoreError::Conflict(_)) => {}
            Err(error) => return Err(error.into()),
        }
        let prune = PruneRow {
            upto_seq: upto,
            upto_hash: last.hash.clone(),
            archive_sha256: archive_sha256.clone(),
            pruned_at: now,
        };
        let entry = event(None, "audit.prune", Outcome::Ok).detail(serde_json::json!({
            "from_seq": anchor + 1, "upto_seq": upto, "entries": written,
            "archive_sha256": archive_sha256, "oldest": crate::format_time(first_time),
            "retention_days": retention.days, "governance_retention_days": retention.governance_days,
        }));
        let deleted = self.store().prune_audit(&prune, &entry).await?;
        Ok(PruneReport {
            entries: deleted,
            upto_seq: Some(upto),
            archive_sha256: Some(archive_sha256),
            dry_run,
        })
    }

    /// Checks the newest prune anchor: a signed checkpoint must vouch for it, and every prune must be recorded by
    /// an `audit.prune` entry still in the chain. Returns the problem, if any.
    pub(super) async fn check_prune_anchor(
        &self,
        anchor: &PruneRow,
        prunes: &[PruneRow],
        checkpoints: &[CheckpointRow],
        key: Option<&VerifyingKey>,
    ) -> AppResult<Option<String>> {
        let vouching = checkpoints
            .iter()
            .find(|checkpoint| checkpoint.seq == anchor.upto_seq);
        match vouching {
            None => {
                return Ok(Some(format!(
                    "entries up to {} were removed but no signed checkpoint vouches for the anchor they left",
                    anchor.upto_seq
                )))
            }
            Some(checkpoint) => {
                if let Err(why) = check_signature(checkpoint, key) {
                    return Ok(Some(format!(
                        "the checkpoint of the prune anchor at entry {}: {why}",
                        anchor.upto_seq
                    )));
                }
                if checkpoint.head_hash != anchor.upto_hash {
                    return Ok(Some(format!(
                        "the prune anchor at entry {} differs from its signed checkpoint",
                        anchor.upto_seq
                    )));
                }
            }
        }
        let recorded = self
            .store()
            .query_audit(
                &AuditFilter {
                    action: Some("audit.prune".to_owned()),
                    ..AuditFilter::default()
                },
                10_000,
            )
            .await?;
        for prune in prunes {
            let found = recorded.iter().any(|entry| {
                serde_json::from_str::<serde_json::Value>(&entry.event.detail)
                    .ok()
                    .and_then(|detail| detail["upto_seq"].as_i64())
                    == Some(prune.upto_seq)
            });
            if !found && prune.upto_seq == anchor.upto_seq {
                return Ok(Some(format!(
                    "entries up to {} were removed without an audit.prune entry recording it",
                    prune.upto_seq
                )));
            }
        }
        Ok(None)
    }
}
