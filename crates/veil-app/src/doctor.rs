//! The security self-check (`veil doctor`, and on a schedule in the server): one result per check, each `ok`,
//! `warn` or `fail` with a reason and, where there is one, the fix. A run fails if any check fails; results are
//! stored and shown by the API.
//!
//! Checks: master key file permissions; passphrase strength; TLS (required off loopback); MFA for every user in
//! a role that works with or reveals personal data; audit chain intact; audit checkpoint fresh; newest verified
//! backup age; expired grants cleaned; dormant admin accounts; policies that show sensitive fields in plaintext
//! without an approval; an open incident; unacknowledged security alerts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::CheckRunRow;

use crate::authz::Action;
use crate::error::AppResult;
use crate::keys::MasterKeySource;
use crate::users::{Actor, Role};
use crate::{format_time, now_ms, Veil};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// An admin account unused this long is dormant.
pub const DORMANT_ADMIN_DAYS: i64 = 90;
/// Roles that work with customer data (and so will be able to reveal it under a grant).
const REVEALING_ROLES: [Role; 5] = [
    Role::Admin,
    Role::Dpo,
    Role::Manager,
    Role::Sales,
    Role::Service,
];

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Worth attention; does not fail the run.
    Warn,
    /// A security problem; the run fails.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    /// Stable check name.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// What was found, and the fix when failing.
    pub detail: String,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DoctorReport {
    /// When.
    pub time: String,
    /// No check failed.
    pub ok: bool,
    /// `cli` or `server`.
    pub source: String,
    /// Every check.
    pub checks: Vec<CheckResult>,
}

/// What the host knows that the database does not: where keys and certificates are, where we listen.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// The master key file, when the key comes from a file.
    pub master_key_file: Option<PathBuf>,
    /// The passphrase's zxcvbn score (0–4) and length, when the key comes from a passphrase.
    pub passphrase_strength: Option<(u8, usize)>,
    /// TLS certificate and key files, when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The listen address.
    pub listen: String,
}

impl HostFacts {
    /// Facts from a master key source (the passphrase is scored here and not kept).
    pub fn from_source(
        source: &MasterKeySource,
        tls: Option<(PathBuf, PathBuf)>,
        listen: &str,
    ) -> Self {
        let (master_key_file, passphrase_strength) = match source {
            MasterKeySource::File(path) => (Some(path.clone()), None),
            MasterKeySource::Passphrase(passphrase) => {
                let text = passphrase.expose();
                let score = zxcvbn::zxcvbn(text, &[]).score() as u8;
                (None, Some((score, text.chars().count())))
            }
        };
        HostFacts {
            master_key_file,
            passphrase_strength,
            tls,
            listen: listen.to_owned(),
        }
    }
}

fn result(name: &str, status: Status, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        status,
        detail: detail.into(),
    }
}

#[cfg(unix)]
fn private_file(path: &std::path::Path) -> Result<bool, std::io::Error> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private_file(path: &std::path::Path) -> Result<bool, std::io::Error> {
    std::fs::metadata(path).map(|_| true)
}

fn loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::SocketAddr>()
        .map(|address| address.ip().is_loopback())
        .unwrap_or_else(|_| listen.starts_with("localhost:"))
}

impl Veil {
    /// Runs every check, stores the run and records it in the audit trail.
    pub async fn run_doctor(&self, host: &HostFacts, source: &str) -> AppResult<DoctorReport> {
        let now = now_ms();
        let mut checks = Vec::new();

        checks.push(match &host.master_key_file {
            Some(path) => match private_file(path) {
                Ok(true) => result(
                    "master_key_file",
                    Status::Ok,
                    format!("{} is readable by its owner only", path.display()),
                ),
                Ok(false) => result(
                    "master_key_file",
                    Status::Fail,
                    format!(
                        "{} is readable by group or others: chmod 600 {}",
                        path.display(),
                        path.display()
                    ),
                ),
                Err(error) => result(
                    "master_key_file",
                    Status::Fail,
                    format!("cannot read {}: {error}", path.display()),
                ),
            },
            None => result(
                "master_key_file",
                Status::Ok,
                "the master key comes from a passphrase",
            ),
        });
        checks.push(match host.passphrase_strength {
            None => result("passphrase_strength", Status::Ok, "no passphrase in use (key file)"),
            Some((score, length)) if score >= 3 && length >= 16 => result(
                "passphrase_strength",
                Status::Ok,
                format!("strong passphrase (score {score}/4, {length} characters)"),
            ),
            Some((score, length)) => result(
                "passphrase_strength",
                Status::Fail,
                format!("weak master passphrase (score {score}/4, {length} characters): use at least 16 characters \
                         scoring 3/4, then `veil keys rotate-master` with VEIL_NEW_MASTER_PASSPHRASE"),
            ),
        });
        checks.push(match &host.tls {
            Some((cert, key)) => match (std::fs::metadata(cert), private_file(key)) {
                (Ok(_), Ok(true)) => result("tls", Status::Ok, format!("HTTPS with {}", cert.display())),
                (Ok(_), Ok(false)) => result("tls", Status::Fail, format!("TLS key {} is readable by group or others: chmod 600", key.display())),
                (Err(error), _) | (_, Err(error)) => result("tls", Status::Fail, format!("TLS files unreadable: {error}")),
            },
            None if loopback(&host.listen) => result(
                "tls",
                Status::Warn,
                format!("plain HTTP on loopback ({}); serve HTTPS (--tls-cert/--tls-key) or put a TLS proxy in front before real use", host.listen),
            ),
            None => result(
                "tls",
                Status::Fail,
                format!("plain HTTP on {} (not loopback): personal data would cross the network unencrypted; set VEIL_TLS_CERT and VEIL_TLS_KEY", host.listen),
            ),
        });

        let required = self.mfa_required_roles().await?;
        let users = self.store().list_users().await?;
        let mut without_mfa = Vec::new();
        for user in users.iter().filter(|user| !user.disabled) {
            let Ok(role) = user.role.parse::<Role>() else {
                continue;
            };
            if !REVEALING_ROLES.contains(&role) {
                continue;
            }
            let enrolled = self
                .store()
                .mfa_by_user(&user.id)
                .await?
                .is_some_and(|row| row.confirmed_at.is_some());
            if !enrolled {
                without_mfa.push(format!("{} ({})", user.username, user.role));
            }
        }
        let unrequired: Vec<&str> = REVEALING_ROLES
            .iter()
            .filter(|role| !required.contains(role))
            .map(|role| role.as_str())
            .collect();
        checks.push(if without_mfa.is_empty() && unrequired.is_empty() {
            result("mfa_coverage", Status::Ok, "every user who can reach personal data uses MFA")
        } else if without_mfa.is_empty() {
            result("mfa_coverage", Status::Warn, format!(
                "all current users use MFA, but it is not required for: {}", unrequired.join(", ")))
        } else {
            let shown: Vec<&str> = without_mfa.iter().take(10).map(String::as_str).collect();
            result("mfa_coverage", Status::Fail, format!(
                "{} user(s) who can reach personal data have no MFA: {}{}; roles without the requirement: {}",
                without_mfa.len(), shown.join(", "),
                if without_mfa.len() > shown.len() { ", …" } else { "" },
                if unrequired.is_empty() { "none".to_owned() } else { unrequired.join(", ") }))
        });

        let chain = self.verify_audit_chain().await?;
        checks.push(if chain.ok {
            result(
                "audit_chain",
                Status::Ok,
                format!(
                    "{} entries intact, {} signed checkpoints verified",
                    chain.entries_checked, chain.checkpoints_checked
                ),
            )
        } else {
            result(
                "audit_chain",
                Status::Fail,
                format!(
                    "broken at entry {}: {}",
                    chain.first_bad_seq.unwrap_or(0),
                    chain.problem.unwrap_or_default()
                ),
            )
        });
        let checkpoints = self.store().audit_checkpoints().await?;
        let (head, _) = self.store().audit_head().await?;
        checks.push(match checkpoints.last() {
            Some(last) if last.seq >= head || now - last.at < DAY_MS => result(
                "audit_checkpoint", Status::Ok,
                format!("newest checkpoint covers entry {} ({})", last.seq, format_time(last.at))),
            Some(last) => result("audit_checkpoint", Status::Warn, format!(
                "newest checkpoint ({}) is over a day old and {} entries are unsigned: is the server running?",
                format_time(last.at), head - last.seq)),
            None if head == 0 => result("audit_checkpoint", Status::Ok, "the audit trail is empty"),
            None => result("audit_checkpoint", Status::Warn,
                "no signed checkpoint yet: truncation would go unnoticed; run `veil audit checkpoint`"),
        });

        let max_age_days = self
            .backup_settings()
            .map_or(crate::backup::DEFAULT_MAX_AGE_DAYS, |settings| {
                settings.max_age_days
            });
        checks.push(match self.latest_verified_backup_age().await? {
            None => result(
                "backup_age",
                Status::Fail,
                "no verified backup exists: run `veil backup create` then `veil backup verify ID`; a recent \
                 verified backup is required before any bulk or persistent unmasking",
            ),
            Some(age) if age > max_age_days * DAY_MS => result(
                "backup_age",
                Status::Fail,
                format!(
                    "the newest verified backup is {} days old (limit {max_age_days}, VEIL_BACKUP_MAX_AGE_DAYS): \
                     take and verify a new one",
                    age / DAY_MS
                ),
            ),
            Some(age) => result(
                "backup_age",
                Status::Ok,
                format!(
                    "newest verified backup taken {} hours ago (limit {max_age_days} days)",
                    age / (60 * 60 * 1000)
                ),
            ),
        });
        let overdue = self
            .store()
            .unreviewed_break_glass(now - crate::governance::BREAK_GLASS_REVIEW_MS)
            .await?;
        checks.push(if overdue.is_empty() {
            result("break_glass_review", Status::Ok, "every break-glass access was reviewed within 24 hours")
        } else {
            result("break_glass_review", Status::Fail, format!(
                "{} break-glass access(es) still unreviewed by the DPO after 24 hours (escalated to the admins): \
                 review with POST /api/v1/unmask-requests/{{id}}/review", overdue.len()))
        });
        let closed = self.expire_grants().await?;
        checks.push(if closed == 0 {
            result("expired_grants", Status::Ok, "no grant outlived its time")
        } else {
            result("expired_grants", Status::Warn, format!(
                "{closed} grant(s) had outlived their time and were closed now (they could not be used: every reveal \
                 checks expiry); is the server's expiry job running?"))
        });

        let last_logins: std::collections::HashMap<String, i64> =
            self.store().last_logins().await?.into_iter().collect();
        let dormant: Vec<String> = users
            .iter()
            .filter(|user| !user.disabled && user.role == Role::Admin.as_str())
            .filter(|user| {
                let last = last_logins
                    .get(&user.id)
                    .copied()
                    .unwrap_or(user.created_at);
                now - last > DORMANT_ADMIN_DAYS * DAY_MS
            })
            .map(|user| user.username.clone())
            .collect();
        checks.push(if dormant.is_empty() {
            result("dormant_admins", Status::Ok, format!("no admin account unused for {DORMANT_ADMIN_DAYS} days"))
        } else {
            result("dormant_admins", Status::Fail, format!(
                "admin account(s) unused for over {DORMANT_ADMIN_DAYS} days: {}; disable them with `veil user disable`",
                dormant.join(", ")))
        });

        let (version, policy) = self.current_policy().await?;
        let approved = self.approved_plaintext().await?;
        let is_approved = |field: &str, role: &str| {
            approved.iter().any(|(granted_field, granted_role, _)| {
                granted_field == field && granted_role == role
            })
        };
        let plaintext: Vec<String> = policy
            .fields
            .iter()
            .flat_map(|(field, rules)| {
                rules
                    .roles
                    .iter()
                    .filter(|(_, rule)| matches!(rule, veil_mask::policy::Rule::Plaintext))
                    .map(move |(role, _)| (field.clone(), role.clone()))
            })
            .filter(|(field, role)| !is_approved(field, role))
            .map(|(field, role)| format!("{field} for {role}"))
            .collect();
        checks.push(if plaintext.is_empty() {
            result("policy_plaintext", Status::Ok, format!(
                "policy v{version}: no field is shown in plaintext without an approved policy-change request ({} approved)",
                approved.len()))
        } else {
            result("policy_plaintext", Status::Fail, format!(
                "policy v{version} shows {} in plaintext without an approved policy-change request; \
                 revert it with `veil policy set`", plaintext.join(", ")))
        });

        checks.push(match self.store().open_incident_row().await? {
            Some(incident) => result(
                "incident",
                Status::Warn,
                format!(
                    "incident {} open since {}: lock-down in force",
                    incident.id,
                    format_time(incident.opened_at)
                ),
            ),
            None => result("incident", Status::Ok, "no open incident"),
        });
        let unacknowledged = self.store().unacknowledged_alert_count().await?;
        checks.push(if unacknowledged == 0 {
            result(
                "security_alerts",
                Status::Ok,
                "no unacknowledged security alerts",
            )
        } else {
            result(
                "security_alerts",
                Status::Warn,
                format!("{unacknowledged} unacknowledged security alert(s)"),
            )
        });

        let ok = checks.iter().all(|check| check.status != Status::Fail);
        let run = CheckRunRow {
            id: uuid::Uuid::now_v7().to_string(),
            at: now,
            ok,
            source: source.to_owned(),
            results: serde_json::to_string(&checks).unwrap_or_else(|_| "[]".to_owned()),
        };
        self.store().insert_check_run(&run).await?;
        let failed: Vec<&str> = checks
            .iter()
            .filter(|check| check.status == Status::Fail)
            .map(|check| check.name.as_str())
            .collect();
        use crate::audit::EventExt;
        self.record(&[
            crate::audit::event(None, "security.check", crate::audit::Outcome::Ok)
                .detail(serde_json::json!({"ok": ok, "failed": failed, "source": source})),
        ])
        .await?;
        Ok(DoctorReport {
            time: format_time(now),
            ok,
            source: source.to_owned(),
            checks,
        })
    }

    /// The newest stored run (admins, DPOs, auditors).
    pub async fn latest_doctor_report(&self, actor: &Actor) -> AppResult<Option<DoctorReport>> {
        self.permit_recorded(actor, Action::SecurityRead, None)
            .await?;
        let Some(row) = self.store().check_runs(1).await?.pop() else {
            return Ok(None);
        };
        Ok(Some(DoctorReport {
            time: format_time(row.at),
            ok: row.ok,
            source: row.source,
            checks: serde_json::from_str(&row.results).unwrap_or_default(),
        }))
    }

    /// Runs the self-check every `security.check_interval_secs` (a setting, default 6 h) in the server.
    pub fn spawn_doctor(
        veil: std::sync::Arc<Veil>,
        host: HostFacts,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match veil.run_doctor(&host, "server").await {
                    Ok(report) if !report.ok => {
                        let failed: Vec<&str> = report
                            .checks
                            .iter()
                            .filter(|check| check.status == Status::Fail)
                            .map(|check| check.name.as_str())
                            .collect();
                        tracing::warn!(failed = ?failed, "security self-check failed");
                    }
                    Ok(_) => tracing::info!("security self-check passed"),
                    Err(error) => tracing::error!(%error, "security self-check could not run"),
                }
                let seconds = match veil.store().setting(CHECK_INTERVAL_SETTING).await {
                    Ok(Some(text)) => text
                        .parse::<u64>()
                        .ok()
                        .filter(|secs| *secs >= 60)
                        .unwrap_or(DEFAULT_CHECK_SECS),
                    _ => DEFAULT_CHECK_SECS,
                };
                tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
            }
        })
    }
}

/// Setting: seconds between the server's scheduled self-checks (at least 60).
pub const CHECK_INTERVAL_SETTING: &str = "security.check_interval_secs";
const DEFAULT_CHECK_SECS: u64 = 6 * 60 * 60;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_backends;
    use crate::AppError;

    fn status_of(report: &DoctorReport, name: &str) -> Status {
        report
            .checks
            .iter()
            .find(|check| check.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
            .status
    }

    fn facts(harness: &crate::testing::Harness, listen: &str) -> HostFacts {
        HostFacts::from_source(&harness.master, None, listen)
    }

    both_backends!(doctor_finds_each_problem_and_stores_the_run, |harness| {
        let veil = &harness.veil;
        let admin = harness.actor("root", Role::Admin, None).await;
        let report = veil
            .run_doctor(&facts(&harness, "127.0.0.1:8080"), "cli")
            .await
            .unwrap();
        assert_eq!(status_of(&report, "master_key_file"), Status::Ok);
        assert_eq!(status_of(&report, "audit_chain"), Status::Ok);
        assert_eq!(status_of(&report, "policy_plaintext"), Status::Ok);
        assert_eq!(status_of(&report, "dormant_admins"), Status::Ok);
        assert_eq!(
            status_of(&report, "tls"),
            Status::Warn,
            "plain HTTP on loopback"
        );
        // root has no MFA and there is no backup: the run fails, honestly.
        assert_eq!(status_of(&report, "mfa_coverage"), Status::Fail);
        assert_eq!(status_of(&report, "backup_age"), Status::Fail);
        assert!(!report.ok);

        // Plain HTTP off loopback fails.
        let open = veil
            .run_doctor(&facts(&harness, "0.0.0.0:8080"), "cli")
            .await
            .unwrap();
        assert_eq!(status_of(&open, "tls"), Status::Fail);

        // A key file readable by others fails.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let crate::keys::MasterKeySource::File(path) = &harness.master else {
                unreachable!()
            };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let loose = veil
                .run_doctor(&facts(&harness, "127.0.0.1:8080"), "cli")
                .await
                .unwrap();
            assert_eq!(status_of(&loose, "master_key_file"), Status::Fail);
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }

        // A weak passphrase fails; a strong one passes.
        let weak = HostFacts::from_source(
            &crate::keys::MasterKeySource::Passphrase(crate::keys::Passphrase::new(
                "password123".to_owned(),
            )),
            None,
            "127.0.0.1:1",
        );
        assert_eq!(weak.passphrase_strength.map(|(_, length)| length), Some(11));
        let weak_report = veil.run_doctor(&weak, "cli").await.unwrap();
        assert_eq!(status_of(&weak_report, "passphrase_strength"), Status::Fail);

        // A policy showing a field in plaintext to a role fails.
        let (_, mut policy) = veil.current_policy().await.unwrap();
        policy
            .fields
            .get_mut("phone")
            .unwrap()
            .roles
            .insert("sales".to_owned(), veil_mask::policy::Rule::Plaintext);
        // An admin can no longer do this (plaintext needs an approved request), but a direct database write or an
        // older version could have: the doctor must still notice.
        assert!(matches!(
            veil.record_policy_change(&admin, &policy.to_json(), "testing the doctor")
                .await,
            Err(AppError::Validation(_))
        ));
        veil.store_policy_version(Some(&admin), policy, "written around the check")
            .await
            .unwrap();
        // A dormant admin: created long ago, never logged in.
        harness.actor("old-admin", Role::Admin, None).await;
        let long_ago = now_ms() - 200 * DAY_MS;
        let sql =
            format!("UPDATE app_user SET created_at = {long_ago} WHERE username = 'old-admin'");
        harness.raw_sql(&sql).await.unwrap();
        let report = veil
            .run_doctor(&facts(&harness, "127.0.0.1:8080"), "server")
            .await
            .unwrap();
        assert_eq!(status_of(&report, "policy_plaintext"), Status::Fail);
        let dormant = report
            .checks
            .iter()
            .find(|check| check.name == "dormant_admins")
            .unwrap();
        assert_eq!(dormant.status, Status::Fail);
        assert!(dormant.detail.contains("old-admin") && !dormant.detail.contains("root"));

        // The newest run is stored and readable by an auditor, not by a salesperson.
        let auditor = harness.actor("audrey", Role::Auditor, None).await;
        let stored = veil.latest_doctor_report(&auditor).await.unwrap().unwrap();
        assert_eq!(stored.source, "server");
        assert_eq!(stored.checks, report.checks);
        let sales = harness.actor("sam", Role::Sales, None).await;
        assert!(veil.latest_doctor_report(&sales).await.is_err());
    });
}
