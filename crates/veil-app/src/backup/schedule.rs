//! Scheduled backups: at each time of a cron expression the server takes a backup (to object storage when it
//! is configured, else the local directory), verifies it — which restores it into a scratch database, the
//! mission's regular restore test — and prunes older backups by a daily / weekly / monthly retention. A failed
//! backup or restore test raises a security alert.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::audit::{event, EventExt, Outcome};
use crate::error::{AppError, AppResult};
use crate::{now_ms, Veil};

/// When and how many to keep.
#[derive(Debug, Clone)]
pub struct BackupSchedule {
    /// The cron expression (5 fields, UTC).
    pub cron: String,
    /// Newest backup of each of the last N days.
    pub keep_daily: usize,
    /// Newest backup of each of the last N ISO weeks.
    pub keep_weekly: usize,
    /// Newest backup of each of the last N months.
    pub keep_monthly: usize,
}

impl BackupSchedule {
    /// Checks the cron expression.
    pub fn validate(&self) -> Result<(), String> {
        croner::Cron::from_str(&self.cron)
            .map(|_| ())
            .map_err(|error| format!("VEIL_BACKUP_SCHEDULE is not a cron expression: {error}"))
    }

    /// The next time after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = croner::Cron::from_str(&self.cron).ok()?;
        cron.find_next_occurrence(&after, false).ok()
    }
}

/// Which of `backups` (id, snapshot time in Unix ms) the retention keeps: the newest of each day, ISO week and
/// month within the configured counts, and always the newest overall.
pub fn retained(backups: &[(String, i64)], schedule: &BackupSchedule) -> BTreeSet<String> {
    let mut sorted: Vec<&(String, i64)> = backups.iter().collect();
    sorted.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    let mut keep = BTreeSet::new();
    if let Some((id, _)) = sorted.first() {
        keep.insert(id.clone());
    }
    let mut pass = |limit: usize, bucket: &dyn Fn(DateTime<Utc>) -> (i32, u32)| {
        let mut seen = Vec::new();
        for (id, at) in &sorted {
            let Some(time) = Utc.timestamp_millis_opt(*at).single() else {
                continue;
            };
            let key = bucket(time);
            if seen.contains(&key) {
                continue;
            }
            if seen.len() == limit {
                break;
            }
            seen.push(key);
            keep.insert(id.clone());
        }
    };
    pass(schedule.keep_daily, &|time| (time.year(), time.ordinal()));
    pass(schedule.keep_weekly, &|time| {
        let week = time.iso_week();
        (week.year(), week.week())
    });
    pass(schedule.keep_monthly, &|time| (time.year(), time.month()));
    keep
}

/// What one scheduled run did.
#[derive(Debug, Clone)]
pub struct ScheduledRun {
    /// The new backup, when it was taken.
    pub backup_id: Option<String>,
    /// Whether its verification (restore test) passed.
    pub verified: bool,
    /// Backups removed by the retention.
    pub pruned: Vec<String>,
}

impl Veil {
    /// Takes, verifies and prunes once (what the schedule runs; also callable directly).
    pub async fn run_scheduled_backup(&self, schedule: &BackupSchedule) -> AppResult<ScheduledRun> {
        let settings = self
            .backup_settings()
            .ok_or_else(|| AppError::Internal("backups are not configured".to_owned()))?;
        let created = if settings.object_storage.is_some() {
            self.create_backup_in_object_storage(None, None, false, &())
                .await
        } else {
            self.create_backup(None, None, &()).await
        };
        let backup = match created {
            Ok(backup) => backup,
            Err(error) => {
                self.raise_backup_alert(
                    "backup_failed",
                    &format!("the scheduled backup failed: {error}"),
                )
                .await;
                return Err(error);
            }
        };
        let verified = match self.verify_backup(None, &backup.id, &()).await {
            Ok(report) if report.ok => true,
            Ok(_) | Err(_) => {
                self.raise_backup_alert(
                    "restore_test_failed",
                    &format!("the scheduled restore test of backup {} failed", backup.id),
                )
                .await;
                false
            }
        };
        let pruned = self.prune_backups(schedule).await?;
        Ok(ScheduledRun {
            backup_id: Some(backup.id),
            verified,
            pruned,
        })
    }

    /// Removes the backups the retention does not keep (file or object, and catalogue state `pruned`).
    pub async fn prune_backups(&self, schedule: &BackupSchedule) -> AppResult<Vec<String>> {
        let rows = self.store().list_backups(10_000).await?;
        let live: Vec<(String, i64)> = rows
            .iter()
            .filter(|row| row.state == "complete")
            .map(|row| (row.id.clone(), row.created_at))
            .collect();
        let keep = retained(&live, schedule);
        let settings = self.backup_settings();
        let mut pruned = Vec::new();
        for row in rows
            .iter()
            .filter(|row| row.state == "complete" && !keep.contains(&row.id))
        {
            let removed = if super::object_storage::is_object_location(&row.location) {
                match settings
                    .as_ref()
                    .and_then(|settings| settings.object_storage.clone())
                {
                    Some(storage) => super::object_storage::delete(&storage, &row.location)
                        .await
                        .is_ok(),
                    None => false,
                }
            } else {
                match std::fs::remove_file(&row.location) {
                    Ok(()) => true,
                    Err(error) => error.kind() == std::io::ErrorKind::NotFound,
                }
            };
            if !removed {
                tracing::warn!(backup = %row.id, "retention could not remove a backup; kept in the catalogue");
                continue;
            }
            let entry = event(None, "backup.prune", Outcome::Ok)
                .detail(serde_json::json!({"backup_id": row.id, "created_at": crate::format_time(row.created_at)}));
            self.store()
                .mark_backup_pruned(&row.id, now_ms(), &[entry])
                .await?;
            pruned.push(row.id.clone());
        }
        Ok(pruned)
    }

    async fn raise_backup_alert(&self, rule: &str, summary: &str) {
        let subject = format!("{rule}:{}", now_ms());
        let raised = self
            .raise_alert(
                rule,
                "high",
                None,
                &subject,
                summary.to_owned(),
                serde_json::json!({}),
            )
            .await;
        if let Err(error) = raised {
            tracing::error!(%error, "could not raise the backup alert");
        }
    }

    /// Runs the schedule until the process ends.
    pub fn spawn_backup_schedule(
        veil: std::sync::Arc<Veil>,
        schedule: BackupSchedule,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Some(next) = schedule.next_after(Utc::now()) else {
                    tracing::error!("the backup schedule has no next time; scheduled backups stop");
                    return;
                };
                let wait = (next - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                match veil.run_scheduled_backup(&schedule).await {
                    Ok(run) => tracing::info!(backup = ?run.backup_id, verified = run.verified,
                                              pruned = run.pruned.len(), "scheduled backup"),
                    Err(error) => tracing::error!(%error, "scheduled backup failed"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn retention_keeps_the_newest_per_day_week_and_month() {
        let schedule = BackupSchedule {
            cron: "0 2 * * *".to_owned(),
            keep_daily: 2,
            keep_weekly: 2,
            keep_monthly: 2,
        };
        let backups: Vec<(String, i64)> = [
            ("a", "2026-09-15T02:00:00Z"),
            ("b", "2026-10-20T02:00:00Z"),
            ("c", "2026-11-16T02:00:00Z"),
            ("d", "2026-11-27T02:00:00Z"),
            ("e", "2026-11-28T02:00:00Z"),
            ("e2", "2026-11-28T14:00:00Z"),
            ("f", "2026-11-29T02:00:00Z"),
        ]
        .iter()
        .map(|(id, time)| ((*id).to_owned(), at(time)))
        .collect();
        let keep = retained(&backups, &schedule);
        // Days: f (29th), e2 (28th). Weeks: f (week 48), c (week 47). Months: f (November), b (October).
        let expected: BTreeSet<String> = ["f", "e2", "c", "b"]
            .iter()
            .map(|id| (*id).to_owned())
            .collect();
        assert_eq!(keep, expected);
        assert!(schedule.validate().is_ok());
        let bad = BackupSchedule {
            cron: "every day".to_owned(),
            ..schedule.clone()
        };
        assert!(bad.validate().is_err());
        let next = schedule
            .next_after(
                DateTime::parse_from_rfc3339("2026-11-29T03:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            )
            .unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-30T02:00:00+00:00");
    }
}
