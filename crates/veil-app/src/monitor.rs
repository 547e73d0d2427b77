//! Monitoring rules over the audit trail: a rule engine that reads new audit entries after its cursor, keeps
//! sliding windows per user, login name and client address, and raises security alerts, which the
//! [`notify::Notifier`] delivers by signed webhook and email.
//!
//! Rules (names are stable; thresholds are in [`MonitorConfig`], defaults in `docs/operations.md`):
//!
//! | rule | fires when |
//! | --- | --- |
//! | `reveal_burst` | one user has `threshold` `customer.reveal` entries within the window |
//! | `list_scraping` | one user has `threshold` `customer.list` / `customer.search` pages within the window |
//! | `off_hours_access` | a user works with customers (or logs in) outside the configured working hours |
//! | `large_export` | an export is over `min_rows` and over `factor` × the user's median export |
//! | `failed_login_burst_account` | `threshold` failed or refused logins for one login name within the window |
//! | `failed_login_burst_address` | `threshold` failed or refused logins from one client address within the window |
//! | `new_login_address` | a user with `min_prior_logins` successful logins logs in from an address never seen for them |
//!
//! The engine works in event time (each entry's `at`), not wall-clock time, so replaying the log gives the same
//! alerts. On start it rebuilds its windows from the recent history before the cursor, and its long-term memory
//! (export sizes, known addresses) from the whole log, so a restart does not blind it. An alert is de-duplicated
//! per rule and subject: once raised, the same rule stays quiet about the same user (or address) for the rule's
//! window, however many more entries match.
//!
//! Each rule alerts; it may also lock the account (disable the user, ending their sessions) or suspend the user's
//! active unmask grants (revoked at once, recorded as `grant.revoke_user`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Timelike};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use veil_store::{AlertFilter, AlertRow, AuditEntry, AuditFilter};

use crate::audit::{event, EventExt, Outcome};
use crate::authz::{permit, Action};
use crate::error::{AppError, AppResult, FieldError};
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

pub mod notify;
#[cfg(test)]
mod tests;

/// The `setting` row holding the last audit sequence number the monitor processed.
pub const CURSOR_SETTING: &str = "monitor.cursor";
/// The `setting` row holding the [`MonitorConfig`] as JSON (absent: defaults).
pub const CONFIG_SETTING: &str = "monitor.config";
/// Most alerts one listing returns.
pub const MAX_ALERT_PAGE: u32 = 200;
const MINUTE_MS: i64 = 60_000;
/// Export sizes remembered per user (for the median).
const EXPORT_HISTORY: usize = 100;
/// Audit sequence numbers kept as evidence in one alert.
const EVIDENCE_SEQS: usize = 50;
/// Entries read per page while warming up.
const WARM_UP_PAGE: i64 = 5_000;

/// What a rule does besides raising the alert (which it always does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Raise the alert (implied; allowed for clarity).
    Alert,
    /// Disable the user's account and revoke all their sessions and API tokens.
    LockAccount,
    /// Suspend the user's active unmask grants. Grants do not exist yet: recorded as not done.
    SuspendGrants,
}

impl RuleAction {
    fn as_str(self) -> &'static str {
        match self {
            RuleAction::Alert => "alert",
            RuleAction::LockAccount => "lock_account",
            RuleAction::SuspendGrants => "suspend_grants",
        }
    }
}

/// A rule that counts entries in a sliding window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Fires when this many entries fall within the window.
    pub threshold: u32,
    /// Window length; also how long the rule then stays quiet about the same subject.
    pub window_minutes: u32,
    /// Actions besides the alert.
    pub actions: Vec<RuleAction>,
}

/// Access outside working hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffHoursRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Working hours start (local hour, inclusive, 0–23).
    pub start_hour: u32,
    /// Working hours end (local hour, exclusive, 1–24). Below `start_hour` means working hours span midnight.
    pub end_hour: u32,
    /// The local time zone as an offset from UTC in minutes (480 = UTC+8).
    pub utc_offset_minutes: i32,
    /// Saturdays and Sundays are outside working hours altogether.
    pub weekdays_only: bool,
    /// After an alert, stay quiet about the same user for this long.
    pub dedup_minutes: u32,
    /// Actions besides the alert.
    pub actions: Vec<RuleAction>,
}

/// Exports larger than the user's usual.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Fires when an export has more than `factor` × the user's median rows…
    pub factor: f64,
    /// …and more than this many rows.
    pub min_rows: u64,
    /// With fewer earlier exports than this, the user has no usual yet…
    pub min_history: u32,
    /// …and this stands in for their median.
    pub baseline_without_history: u64,
    /// After an alert, stay quiet about the same user for this long.
    pub dedup_minutes: u32,
    /// Actions besides the alert.
    pub actions: Vec<RuleAction>,
}

/// First login from a new address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAddressRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Fires only for users with at least this many earlier successful logins (new users have no usual).
    pub min_prior_logins: u32,
    /// Actions besides the alert.
    pub actions: Vec<RuleAction>,
}

/// Every rule's settings, stored as JSON in the `monitor.config` setting. Missing fields take their defaults
/// (also inside a rule), unknown fields are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Audit entries processed per batch.
    pub batch_size: u32,
    /// `reveal_burst`.
    pub reveal_burst: WindowRule,
    /// `list_scraping`.
    pub list_scraping: WindowRule,
    /// `off_hours_access`.
    pub off_hours_access: OffHoursRule,
    /// `large_export`.
    pub large_export: ExportRule,
    /// `failed_login_burst_account`.
    pub failed_login_burst_account: WindowRule,
    /// `failed_login_burst_address` (alert only: there is no user to act on).
    pub failed_login_burst_address: WindowRule,
    /// `new_login_address`.
    pub new_login_address: NewAddressRule,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        let window = |threshold, window_minutes| WindowRule {
            enabled: true,
            threshold,
            window_minutes,
            actions: vec![RuleAction::Alert],
        };
        MonitorConfig {
            batch_size: 500,
            reveal_burst: window(20, 60),
            list_scraping: window(30, 1),
            off_hours_access: OffHoursRule {
                enabled: true,
                start_hour: 8,
                end_hour: 20,
                utc_offset_minutes: 480,
                weekdays_only: true,
                dedup_minutes: 60,
                actions: vec![RuleAction::Alert],
            },
            large_export: ExportRule {
                enabled: true,
                factor: 3.0,
                min_rows: 100,
                min_history: 3,
                baseline_without_history: 1_000,
                dedup_minutes: 60,
                actions: vec![RuleAction::Alert],
            },
            failed_login_burst_account: window(10, 5),
            failed_login_burst_address: window(10, 5),
            new_login_address: NewAddressRule {
                enabled: true,
                min_prior_logins: 3,
                actions: vec![RuleAction::Alert],
            },
        }
    }
}

fn merge(base: &mut serde_json::Value, overlay: serde_json::Value) {
    match (base, overlay) {
        (serde_json::Value::Object(base), serde_json::Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(slot) if slot.is_object() && value.is_object() => merge(slot, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn config_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(&format!("{CONFIG_SETTING}.{field}"), "invalid", message)
}

impl MonitorConfig {
    /// Parses a configuration (JSON; missing fields default) and validates it. Errors name the field, e.g.
    /// `monitor.config.reveal_burst.threshold`.
    pub fn from_json(text: &str) -> AppResult<MonitorConfig> {
        let overlay: serde_json::Value = serde_json::from_str(text).map_err(|error| {
            AppError::Validation(vec![config_error("", format!("not valid JSON ({error})"))])
        })?;
        let mut merged = serde_json::to_value(MonitorConfig::default())
            .map_err(|error| AppError::Internal(error.to_string()))?;
        merge(&mut merged, overlay);
        let config: MonitorConfig = serde_path_to_error::deserialize(merged).map_err(|error| {
            let path = error.path().to_string();
            AppError::Validation(vec![config_error(&path, error.into_inner().to_string())])
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and combinations; every problem is reported with its field.
    pub fn validate(&self) -> AppResult<()> {
        let mut errors = Vec::new();
        if !(1..=10_000).contains(&self.batch_size) {
            errors.push(config_error("batch_size", "must be between 1 and 10000"));
        }
        for (name, rule) in [
            ("reveal_burst", &self.reveal_burst),
            ("list_scraping", &self.list_scraping),
            (
                "failed_login_burst_account",
                &self.failed_login_burst_account,
            ),
            (
                "failed_login_burst_address",
                &self.failed_login_burst_address,
            ),
        ] {
            if rule.threshold == 0 {
                errors.push(config_error(
                    &format!("{name}.threshold"),
                    "must be at least 1",
                ));
            }
            if !(1..=10_080).contains(&rule.window_minutes) {
                errors.push(config_error(
                    &format!("{name}.window_minutes"),
                    "must be between 1 and 10080 (one week)",
                ));
            }
        }
        if self
            .failed_login_burst_address
            .actions
            .iter()
            .any(|action| *action != RuleAction::Alert)
        {
            errors.push(config_error(
                "failed_login_burst_address.actions",
                "only `alert`: an address burst has no single user to lock or suspend",
            ));
        }
        let hours = &self.off_hours_access;
        if hours.start_hour > 23 {
            errors.push(config_error(
                "off_hours_access.start_hour",
                "must be between 0 and 23",
            ));
        }
        if !(1..=24).contains(&hours.end_hour) || hours.end_hour == hours.start_hour {
            errors.push(config_error(
                "off_hours_access.end_hour",
                "must be between 1 and 24 and differ from start_hour",
            ));
        }
        if !(-840..=840).contains(&hours.utc_offset_minutes) {
            errors.push(config_error(
                "off_hours_access.utc_offset_minutes",
                "must be between -840 and 840",
            ));
        }
        for (name, minutes) in [
            ("off_hours_access.dedup_minutes", hours.dedup_minutes),
            (
                "large_export.dedup_minutes",
                self.large_export.dedup_minutes,
            ),
        ] {
            if !(1..=10_080).contains(&minutes) {
                errors.push(config_error(name, "must be between 1 and 10080"));
            }
        }
        if !self.large_export.factor.is_finite() || self.large_export.factor < 1.0 {
            errors.push(config_error(
                "large_export.factor",
                "must be a number of at least 1",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(errors))
        }
    }

    fn longest_window_ms(&self) -> i64 {
        [
            &self.reveal_burst,
            &self.list_scraping,
            &self.failed_login_burst_account,
            &self.failed_login_burst_address,
        ]
        .iter()
        .map(|rule| i64::from(rule.window_minutes) * MINUTE_MS)
        .max()
        .unwrap_or(0)
    }
}

/// How serious an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// A rule's finding, before de-duplication and actions.
#[derive(Debug, Clone)]
struct Trigger {
    rule: &'static str,
    severity: Severity,
    subject: String,
    user_id: Option<String>,
    username: Option<String>,
    source_ip: Option<String>,
    seq: i64,
    at: i64,
    summary: String,
    evidence: serde_json::Value,
    actions: Vec<RuleAction>,
    quiet_ms: i64,
}

/// Timestamps and sequence numbers of the entries inside one window.
type Window = VecDeque<(i64, i64)>;

/// Pushes an entry and drops those older than `window_ms` before it; returns how many remain.
fn slide(window: &mut Window, at: i64, seq: i64, window_ms: i64) -> usize {
    window.push_back((at, seq));
    while window
        .front()
        .is_some_and(|(first, _)| *first <= at - window_ms)
    {
        window.pop_front();
    }
    window.len()
}

fn window_evidence(window: &Window, rule: &WindowRule) -> serde_json::Value {
    let seqs: Vec<i64> = window
        .iter()
        .rev()
        .take(EVIDENCE_SEQS)
        .map(|(_, seq)| *seq)
        .rev()
        .collect();
    serde_json::json!({
        "count": window.len(),
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "audit_seqs": seqs,
    })
}

/// Whether `at` falls outside working hours.
pub fn outside_working_hours(rule: &OffHoursRule, at: i64) -> bool {
    let Some(offset) = chrono::FixedOffset::east_opt(rule.utc_offset_minutes * 60) else {
        return false;
    };
    let Some(utc) = chrono::DateTime::from_timestamp_millis(at) else {
        return false;
    };
    let local = utc.with_timezone(&offset);
    if rule.weekdays_only && matches!(local.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun)
    {
        return true;
    }
    let hour = local.hour();
    let working = if rule.start_hour < rule.end_hour {
        (rule.start_hour..rule.end_hour).contains(&hour)
    } else {
        hour >= rule.start_hour || hour < rule.end_hour
    };
    !working
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => 0,
        length if length % 2 == 1 => sorted[length / 2],
        length => (sorted[length / 2 - 1] + sorted[length / 2]) / 2,
    }
}

/// A short, stable, non-reversible label for a login name that may be anything a person typed (even a password
/// or a phone number), so it can key de-duplication without being stored.
fn login_name_subject(name: &str) -> String {
    format!(
        "name:{}",
        &crate::audit::sha256_hex(format!("veil-monitor-login-name\0{name}").as_bytes())[..16]
    )
}

fn is_access(action: &str) -> bool {
    action.starts_with("customer.") || action.starts_with("note.") || action == "auth.login"
}

fn is_failed_login(entry: &AuditEntry) -> bool {
    entry.event.action == "auth.login"
        && matches!(entry.event.outcome.as_str(), "failed" | "denied")
}

/// The rule engine's memory.
#[derive(Debug, Default)]
struct Engine {
    /// Last audit sequence number processed.
    cursor: i64,
    reveals: HashMap<String, Window>,
    pages: HashMap<String, Window>,
    failed_by_name: HashMap<String, Window>,
    failed_by_address: HashMap<String, Window>,
    /// Recent export sizes per user, oldest first.
    exports: HashMap<String, VecDeque<u64>>,
    /// Successful logins per user, and the addresses they came from.
    logins: HashMap<String, (u64, HashSet<String>)>,
    /// Trigger time of the last alert per (rule, subject), as far as this process knows.
    last_alert: HashMap<(&'static str, String), Option<i64>>,
}

impl Engine {
    /// Updates the windowed counters with `entry` and returns what they trip.
    fn observe_windows(&mut self, config: &MonitorConfig, entry: &AuditEntry) -> Vec<Trigger> {
        let event = &entry.event;
        let mut found = Vec::new();
        let counted = |rule: &WindowRule,
                       windows: &mut HashMap<String, Window>,
                       key: &str|
         -> Option<serde_json::Value> {
            let window = windows.entry(key.to_owned()).or_default();
            let count = slide(
                window,
                event.at,
                entry.seq,
                i64::from(rule.window_minutes) * MINUTE_MS,
            );
            (rule.enabled && count >= rule.threshold as usize)
                .then(|| window_evidence(window, rule))
        };
        let user = event.actor_id.clone();
        if event.outcome == "ok" {
            if let Some(user_id) = &user {
                if event.action == "customer.reveal" {
                    let rule = &config.reveal_burst;
                    if let Some(evidence) = counted(rule, &mut self.reveals, user_id) {
                        found.push(Trigger {
                            rule: "reveal_burst",
                            severity: Severity::High,
                            subject: user_id.clone(),
                            user_id: user.clone(),
                            username: event.actor_name.clone(),
                            source_ip: event.source_ip.clone(),
                            seq: entry.seq,
                            at: event.at,
                            summary: format!(
                                "user {} revealed customer data {} times within {} minutes (threshold {})",
                                event.actor_name.as_deref().unwrap_or("?"),
                                evidence["count"],
                                rule.window_minutes,
                                rule.threshold
                            ),
                            evidence,
                            actions: rule.actions.clone(),
                            quiet_ms: i64::from(rule.window_minutes) * MINUTE_MS,
                        });
                    }
                }
                if matches!(event.action.as_str(), "customer.list" | "customer.search") {
                    let rule = &config.list_scraping;
                    if let Some(evidence) = counted(rule, &mut self.pages, user_id) {
                        found.push(Trigger {
                            rule: "list_scraping",
                            severity: Severity::High,
                            subject: user_id.clone(),
                            user_id: user.clone(),
                            username: event.actor_name.clone(),
                            source_ip: event.source_ip.clone(),
                            seq: entry.seq,
                            at: event.at,
                            summary: format!(
                                "user {} fetched {} customer list or search pages within {} minutes \
                                 (threshold {})",
                                event.actor_name.as_deref().unwrap_or("?"),
                                evidence["count"],
                                rule.window_minutes,
                                rule.threshold
                            ),
                            evidence,
                            actions: rule.actions.clone(),
                            quiet_ms: i64::from(rule.window_minutes) * MINUTE_MS,
                        });
                    }
                }
            }
        }
        if is_failed_login(entry) {
            if let Some(name) = &event.actor_name {
                let rule = &config.failed_login_burst_account;
                let subject = login_name_subject(name);
                if let Some(evidence) = counted(rule, &mut self.failed_by_name, &subject) {
                    found.push(Trigger {
                        rule: "failed_login_burst_account",
                        severity: Severity::Medium,
                        // The name as typed is not kept: `raise` fills in the user when the name is an account.
                        username: Some(name.clone()),
                        subject,
                        user_id: event.actor_id.clone(),
                        source_ip: event.source_ip.clone(),
                        seq: entry.seq,
                        at: event.at,
                        summary: format!(
                            "{} failed or refused logins for one account name within {} minutes (threshold {})",
                            evidence["count"], rule.window_minutes, rule.threshold
                        ),
                        evidence,
                        actions: rule.actions.clone(),
                        quiet_ms: i64::from(rule.window_minutes) * MINUTE_MS,
                    });
                }
            }
            if let Some(address) = &event.source_ip {
                let rule = &config.failed_login_burst_address;
                if let Some(evidence) = counted(rule, &mut self.failed_by_address, address) {
                    found.push(Trigger {
                        rule: "failed_login_burst_address",
                        severity: Severity::Medium,
                        subject: format!("ip:{address}"),
                        user_id: None,
                        username: None,
                        source_ip: Some(address.clone()),
                        seq: entry.seq,
                        at: event.at,
                        summary: format!(
                            "{} failed or refused logins from address {address} within {} minutes \
                             (threshold {})",
                            evidence["count"], rule.window_minutes, rule.threshold
                        ),
                        evidence,
                        actions: Vec::new(),
                        quiet_ms: i64::from(rule.window_minutes) * MINUTE_MS,
                    });
                }
            }
        }
        found
    }

    /// Updates the long-term memory (export sizes, login addresses) with `entry` and returns what it trips.
    fn observe_history(&mut self, config: &MonitorConfig, entry: &AuditEntry) -> Vec<Trigger> {
        let event = &entry.event;
        let mut found = Vec::new();
        let (Some(user_id), "ok") = (&event.actor_id, event.outcome.as_str()) else {
            return found;
        };
        let who = event.actor_name.as_deref().unwrap_or("?");
        if event.action == "customer.export" {
            let rows = serde_json::from_str::<serde_json::Value>(&event.detail)
                .ok()
                .and_then(|detail| detail.get("rows").and_then(serde_json::Value::as_u64));
            if let Some(rows) = rows {
                let history = self.exports.entry(user_id.clone()).or_default();
                let rule = &config.large_export;
                let earlier: Vec<u64> = history.iter().copied().collect();
                let baseline = if earlier.len() >= rule.min_history as usize {
                    median(&earlier)
                } else {
                    rule.baseline_without_history
                };
                if rule.enabled
                    && rows > rule.min_rows
                    && rows as f64 > rule.factor * baseline as f64
                {
                    found.push(Trigger {
                        rule: "large_export",
                        severity: Severity::High,
                        subject: user_id.clone(),
                        user_id: Some(user_id.clone()),
                        username: event.actor_name.clone(),
                        source_ip: event.source_ip.clone(),
                        seq: entry.seq,
                        at: event.at,
                        summary: format!(
                            "user {who} exported {rows} customer rows, over {} × their usual {baseline} \
                             (minimum {})",
                            rule.factor, rule.min_rows
                        ),
                        evidence: serde_json::json!({
                            "rows": rows,
                            "baseline_rows": baseline,
                            "earlier_exports": earlier.len(),
                            "factor": rule.factor,
                            "min_rows": rule.min_rows,
                            "audit_seqs": [entry.seq],
                        }),
                        actions: rule.actions.clone(),
                        quiet_ms: i64::from(rule.dedup_minutes) * MINUTE_MS,
                    });
                }
                history.push_back(rows);
                if history.len() > EXPORT_HISTORY {
                    history.pop_front();
                }
            }
        }
        if event.action == "auth.login" {
            if let Some(address) = &event.source_ip {
                let (count, known) = self.logins.entry(user_id.clone()).or_default();
                let rule = &config.new_login_address;
                if rule.enabled
                    && *count >= u64::from(rule.min_prior_logins)
                    && !known.contains(address)
                {
                    found.push(Trigger {
                        rule: "new_login_address",
                        severity: Severity::Medium,
                        subject: format!("{user_id}|{address}"),
                        user_id: Some(user_id.clone()),
                        username: event.actor_name.clone(),
                        source_ip: Some(address.clone()),
                        seq: entry.seq,
                        at: event.at,
                        summary: format!(
                            "user {who} logged in from {address}, an address not seen for them in {count} \
                             earlier logins"
                        ),
                        evidence: serde_json::json!({
                            "prior_logins": *count,
                            "known_addresses": known.len(),
                            "audit_seqs": [entry.seq],
                        }),
                        actions: rule.actions.clone(),
                        quiet_ms: i64::MAX,
                    });
                }
                *count += 1;
                known.insert(address.clone());
            }
        }
        found
    }

    fn observe_off_hours(&self, config: &MonitorConfig, entry: &AuditEntry) -> Option<Trigger> {
        let event = &entry.event;
        let rule = &config.off_hours_access;
        let user_id = event.actor_id.as_ref()?;
        if !rule.enabled
            || event.outcome != "ok"
            || !is_access(&event.action)
            || !outside_working_hours(rule, event.at)
        {
            return None;
        }
        let offset = chrono::FixedOffset::east_opt(rule.utc_offset_minutes * 60)?;
        let local = chrono::DateTime::from_timestamp_millis(event.at)?.with_timezone(&offset);
        Some(Trigger {
            rule: "off_hours_access",
            severity: Severity::Low,
            subject: user_id.clone(),
            user_id: Some(user_id.clone()),
            username: event.actor_name.clone(),
            source_ip: event.source_ip.clone(),
            seq: entry.seq,
            at: event.at,
            summary: format!(
                "user {} used {} at {} local time, outside working hours ({:02}:00–{:02}:00{})",
                event.actor_name.as_deref().unwrap_or("?"),
                event.action,
                local.format("%a %H:%M"),
                rule.start_hour,
                rule.end_hour,
                if rule.weekdays_only { ", weekdays" } else { "" }
            ),
            evidence: serde_json::json!({
                "action": event.action,
                "local_time": local.to_rfc3339(),
                "audit_seqs": [entry.seq],
            }),
            actions: rule.actions.clone(),
            quiet_ms: i64::from(rule.dedup_minutes) * MINUTE_MS,
        })
    }

    fn observe(&mut self, config: &MonitorConfig, entry: &AuditEntry) -> Vec<Trigger> {
        if entry.event.action.starts_with("security.") {
            return Vec::new();
        }
        let mut found = self.observe_windows(config, entry);
        found.extend(self.observe_history(config, entry));
        found.extend(self.observe_off_hours(config, entry));
        found
    }
}

/// The monitor's state inside [`Veil`]: the engine (loaded on first use) and the configured notifier.
#[derive(Debug, Default)]
pub struct MonitorSlot {
    engine: tokio::sync::Mutex<Option<Engine>>,
    notifier: std::sync::RwLock<Option<Arc<notify::Notifier>>>,
}

/// What one pass of the monitor did.
#[derive(Debug, Clone, Default)]
pub struct MonitorRun {
    /// Audit entries processed.
    pub processed: u64,
    /// The cursor afterwards (last audit sequence number processed).
    pub cursor: i64,
    /// Alerts raised in this pass.
    pub alerts: Vec<AlertView>,
    /// Deliveries that succeeded (webhook and email counted separately).
    pub delivered: u64,
    /// Deliveries that failed (retried next pass).
    pub delivery_failures: u64,
}

/// An alert as the API, the webhook and the CLI show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    /// Alert id.
    pub id: String,
    /// The rule that fired.
    pub rule: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
    /// The user concerned.
    pub user_id: Option<String>,
    /// Their login name.
    pub username: Option<String>,
    /// The client address concerned.
    pub source_ip: Option<String>,
    /// One line for people (no customer data).
    pub summary: String,
    /// Counts, thresholds and audit sequence numbers.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// What the monitor did: `[{action, result}]`.
    #[schema(value_type = Vec<Object>)]
    pub actions_taken: serde_json::Value,
    /// The audit entry that tripped the rule.
    pub trigger_seq: i64,
    /// That entry's time (RFC 3339).
    pub triggered_at: String,
    /// When raised (RFC 3339).
    pub created_at: String,
    /// Who acknowledged it (user id).
    pub acknowledged_by: Option<String>,
    /// When (RFC 3339).
    pub acknowledged_at: Option<String>,
}

impl AlertView {
    /// The view of a stored alert.
    pub fn from_row(row: &AlertRow) -> Self {
        AlertView {
            id: row.id.clone(),
            rule: row.rule.clone(),
            severity: row.severity.clone(),
            user_id: row.user_id.clone(),
            username: row.username.clone(),
            source_ip: row.source_ip.clone(),
            summary: row.summary.clone(),
            evidence: serde_json::from_str(&row.evidence).unwrap_or_default(),
            actions_taken: serde_json::from_str(&row.actions_taken).unwrap_or_default(),
            trigger_seq: row.trigger_seq,
            triggered_at: format_time(row.triggered_at),
            created_at: format_time(row.created_at),
            acknowledged_by: row.acknowledged_by.clone(),
            acknowledged_at: row.acknowledged_at.map(format_time),
        }
    }
}

/// Which alerts to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Not yet acknowledged (the default).
    #[default]
    Open,
    /// Every alert.
    All,
}

/// A listing query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `open` (default) or `all`.
    pub status: Option<AlertStatus>,
    /// Page backwards: alerts older than this alert id (`next_before` of the previous page).
    pub before: Option<String>,
    /// Page size (default 50, at most 200).
    pub limit: Option<u32>,
}

/// A page of alerts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertPage {
    /// The alerts.
    pub items: Vec<AlertView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
}

impl Veil {
    /// The monitor configuration in force (the `monitor.config` setting, or the defaults).
    pub async fn monitor_config(&self) -> AppResult<MonitorConfig> {
        match self.store().setting(CONFIG_SETTING).await? {
            Some(text) => MonitorConfig::from_json(&text),
            None => Ok(MonitorConfig::default()),
        }
    }

    /// Replaces the monitor configuration (admins and DPOs); the change is audited as `monitor.config`.
    pub async fn set_monitor_config(&self, actor: &Actor, config: &MonitorConfig) -> AppResult<()> {
        permit(actor, Action::IncidentManage)?;
        config.validate()?;
        let text =
            serde_json::to_string(config).map_err(|error| AppError::Internal(error.to_string()))?;
        self.record(&[event(Some(actor), "monitor.config", Outcome::Ok)
            .detail(serde_json::json!({"config": config}))])
            .await?;
        self.store()
            .put_setting(CONFIG_SETTING, &text, now_ms())
            .await?;
        Ok(())
    }

    /// Sets where alerts are delivered (webhook, email); `None` keeps them in the app only.
    pub fn set_notifier(&self, notifier: Option<notify::Notifier>) {
        *self
            .monitor
            .notifier
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = notifier.map(Arc::new);
    }

    fn notifier(&self) -> Option<Arc<notify::Notifier>> {
        self.monitor
            .notifier
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// One pass of the monitor: processes every audit entry after the cursor in batches, raises alerts, then
    /// delivers undelivered alerts. A delivery failure is logged and retried next pass; it never fails the pass.
    pub async fn run_monitor_once(&self) -> AppResult<MonitorRun> {
        let config = self.monitor_config().await?;
        let mut slot = self.monitor.engine.lock().await;
        if slot.is_none() {
            *slot = Some(self.warm_up(&config).await?);
        }
        let engine = slot.as_mut().expect("engine was just loaded");
        let mut run = MonitorRun {
            cursor: engine.cursor,
            ..MonitorRun::default()
        };
        loop {
            let batch = self
                .store()
                .audit_entries_after(engine.cursor, i64::from(config.batch_size))
                .await?;
            let Some(last) = batch.last().map(|entry| entry.seq) else {
                break;
            };
            for entry in &batch {
                for trigger in engine.observe(&config, entry) {
                    if let Some(alert) = self.raise(engine, trigger).await? {
                        run.alerts.push(alert);
                    }
                }
            }
            self.store()
                .put_setting(CURSOR_SETTING, &last.to_string(), now_ms())
                .await?;
            engine.cursor = last;
            run.processed += batch.len() as u64;
            run.cursor = last;
        }
        drop(slot);
        if let Some(notifier) = self.notifier() {
            let (delivered, failed) = notifier.deliver_pending(self.store()).await;
            run.delivered = delivered;
            run.delivery_failures = failed;
        }
        Ok(run)
    }

    /// Rebuilds the engine's memory from the audit log up to the stored cursor without raising anything.
    async fn warm_up(&self, config: &MonitorConfig) -> AppResult<Engine> {
        let cursor = match self.store().setting(CURSOR_SETTING).await? {
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| AppError::Internal("malformed monitor cursor".to_owned()))?,
            None => 0,
        };
        let mut engine = Engine {
            cursor,
            ..Engine::default()
        };
        if cursor == 0 {
            return Ok(engine);
        }
        // Long-term memory: every successful login and export so far.
        for action in ["auth.login", "customer.export"] {
            let mut after = 0;
            'pages: loop {
                let filter = AuditFilter {
                    action: Some(action.to_owned()),
                    after_seq: Some(after),
                    ..AuditFilter::default()
                };
                let page = self.store().query_audit(&filter, WARM_UP_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for entry in &page {
                    if entry.seq > cursor {
                        break 'pages;
                    }
                    engine.observe_history(config, entry);
                }
            }
        }
        // Windows: the entries within the longest window before the cursor.
        let newest = self
            .store()
            .query_audit(
                &AuditFilter {
                    before_seq: Some(cursor + 1),
                    ..AuditFilter::default()
                },
                1,
            )
            .await?;
        if let Some(newest) = newest.first() {
            let mut after = 0;
            'windows: loop {
                let filter = AuditFilter {
                    from: Some(newest.event.at - config.longest_window_ms()),
                    after_seq: Some(after),
                    ..AuditFilter::default()
                };
                let page = self.store().query_audit(&filter, WARM_UP_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for entry in &page {
                    if entry.seq > cursor {
                        break 'windows;
                    }
                    engine.observe_windows(config, entry);
                }
            }
        }
        tracing::info!(cursor, "security monitor warmed up from the audit log");
        Ok(engine)
    }

    /// De-duplicates a trigger, carries out its actions and stores the alert with its audit entry.
    async fn raise(
        &self,
        engine: &mut Engine,
        mut trigger: Trigger,
    ) -> AppResult<Option<AlertView>> {
        let key = (trigger.rule, trigger.subject.clone());
        let last = match engine.last_alert.get(&key) {
            Some(last) => *last,
            None => {
                self.store()
                    .last_alert_time(trigger.rule, &trigger.subject)
                    .await?
            }
        };
        engine.last_alert.insert(key.clone(), last);
        if let Some(last) = last {
            if trigger.at.saturating_sub(last) < trigger.quiet_ms {
                return Ok(None);
            }
        }
        if trigger.rule == "failed_login_burst_account" {
            // Keep the typed name only when it is an existing account's name.
            let account = match trigger.username.as_deref() {
                Some(name) => self.store().user_by_username(name).await?,
                None => None,
            };
            trigger.user_id = account.as_ref().map(|user| user.id.clone());
            trigger.username = account.map(|user| user.username);
        }
        let mut actions_taken = vec![serde_json::json!({"action": "alert", "result": "raised"})];
        for action in &trigger.actions {
            match action {
                RuleAction::Alert => {}
                RuleAction::LockAccount => {
                    actions_taken.push(self.lock_account(trigger.user_id.as_deref()).await);
                }
                RuleAction::SuspendGrants => {
                    let result = match trigger.user_id.as_deref() {
                        None => "not done: no user concerned".to_owned(),
                        Some(user) => {
                            let entry = crate::audit::EventExt::detail(
                                crate::audit::event(
                                    None,
                                    "grant.revoke_user",
                                    crate::audit::Outcome::Ok,
                                ),
                                serde_json::json!({"user_id": user, "rule": trigger.rule}),
                            );
                            match self
                                .store()
                                .revoke_user_grants(
                                    user,
                                    &format!("monitoring rule {}", trigger.rule),
                                    now_ms(),
                                    &[entry],
                                )
                                .await
                            {
                                Ok(count) => format!("{count} active grant(s) revoked"),
                                Err(error) => {
                                    tracing::error!(%error, "suspending grants failed");
                                    "failed: see the server log".to_owned()
                                }
                            }
                        }
                    };
                    actions_taken
                        .push(serde_json::json!({"action": "suspend_grants", "result": result}));
                }
            }
        }
        let now = now_ms();
        let row = AlertRow {
            id: uuid::Uuid::now_v7().to_string(),
            rule: trigger.rule.to_owned(),
            severity: trigger.severity.as_str().to_owned(),
            user_id: trigger.user_id.clone(),
            username: trigger.username.clone(),
            source_ip: trigger.source_ip.clone(),
            subject: trigger.subject.clone(),
            trigger_seq: trigger.seq,
            triggered_at: trigger.at,
            summary: trigger.summary.clone(),
            evidence: trigger.evidence.to_string(),
            actions_taken: serde_json::Value::Array(actions_taken).to_string(),
            created_at: now,
            acknowledged_by: None,
            acknowledged_at: None,
            webhook_delivered_at: None,
            webhook_attempts: 0,
            email_delivered_at: None,
            email_attempts: 0,
        };
        let audit = event(None, "security.alert", Outcome::Ok).detail(serde_json::json!({
            "rule": row.rule,
            "alert_id": row.id,
            "severity": row.severity,
            "user_id": row.user_id,
            "trigger_seq": row.trigger_seq,
            "actions": trigger.actions.iter().map(|action| action.as_str()).collect::<Vec<_>>(),
        }));
        let inserted = self.store().insert_security_alert(&row, &[audit]).await?;
        engine.last_alert.insert(key, Some(trigger.at));
        if !inserted {
            return Ok(None);
        }
        tracing::warn!(alert = %row.id, rule = %row.rule, severity = %row.severity, "security alert");
        Ok(Some(AlertView::from_row(&row)))
    }

    async fn lock_account(&self, user_id: Option<&str>) -> serde_json::Value {
        let result = async {
            let user_id = user_id.ok_or("not done: no user to lock")?;
            let user = self
                .store()
                .user_by_id(user_id)
                .await
                .map_err(|_| "failed: database error")?
                .ok_or("not done: the user no longer exists")?;
            self.disable_user(&user.username)
                .await
                .map_err(|_| "failed: could not disable the user")?;
            Ok::<_, &str>("account disabled; sessions and API tokens revoked")
        }
        .await;
        let text = result.unwrap_or_else(|why| why);
        if text.starts_with("failed") {
            tracing::error!(result = text, "monitor could not lock an account");
        }
        serde_json::json!({"action": "lock_account", "result": text})
    }

    /// A page of security alerts, newest first (admins, DPOs, auditors). The listing is audited.
    pub async fn list_alerts(&self, actor: &Actor, query: &AlertQuery) -> AppResult<AlertPage> {
        permit(actor, Action::SecurityRead)?;
        let limit = query.limit.unwrap_or(50).clamp(1, MAX_ALERT_PAGE);
        let filter = AlertFilter {
            open_only: query.status.unwrap_or_default() == AlertStatus::Open,
            before_id: query.before.clone(),
        };
        let mut rows = self
            .store()
            .list_security_alerts(&filter, i64::from(limit) + 1)
            .await?;
        let next_before = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        self.record(&[event(Some(actor), "security.alert.read", Outcome::Ok)
            .detail(serde_json::json!({"returned": rows.len()}))])
            .await?;
        Ok(AlertPage {
            items: rows.iter().map(AlertView::from_row).collect(),
            next_before,
        })
    }

    /// Acknowledges an open alert (admins and DPOs, who handle incidents; auditors only read). Audited as
    /// `security.alert.acknowledge`. An unknown id is `NotFound`; an acknowledged alert is a `Conflict`.
    pub async fn acknowledge_alert(&self, actor: &Actor, id: &str) -> AppResult<AlertView> {
        permit(actor, Action::IncidentManage)?;
        let existing = self
            .store()
            .security_alert(id)
            .await?
            .ok_or(AppError::NotFound)?;
        let audit = event(Some(actor), "security.alert.acknowledge", Outcome::Ok)
            .detail(serde_json::json!({"alert_id": existing.id, "rule": existing.rule}));
        let by = actor.user_id.to_string();
        if !self
            .store()
            .acknowledge_security_alert(id, &by, now_ms(), &[audit])
            .await?
        {
            return Err(AppError::Conflict(
                "the alert was already acknowledged".to_owned(),
            ));
        }
        let row = self
            .store()
            .security_alert(id)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(AlertView::from_row(&row))
    }
}

/// Runs [`Veil::run_monitor_once`] every `interval` until the task is aborted. Errors are logged and the next
/// pass tries again.
pub fn spawn_monitor(veil: Arc<Veil>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match veil.run_monitor_once().await {
                Ok(run) if !run.alerts.is_empty() || run.delivery_failures > 0 => tracing::info!(
                    processed = run.processed,
                    alerts = run.alerts.len(),
                    delivered = run.delivered,
                    delivery_failures = run.delivery_failures,
                    "security monitor pass"
                ),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "security monitor pass failed"),
            }
        }
    })
}
