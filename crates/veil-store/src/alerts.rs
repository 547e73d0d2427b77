//! Security alerts raised by the monitor: stored with their evidence and the actions taken, listed and
//! acknowledged by security staff, and tracked per delivery channel (webhook, email) so failed deliveries are
//! retried.
//!
//! An alert is inserted together with its `security.alert` audit entry in one transaction. The unique key
//! `(rule, subject, trigger_seq)` makes raising the same alert twice (two monitors, or a batch re-processed after
//! a crash) a no-op.

use sqlx::Row;

use crate::audit::append_in;
use crate::{with_pool, AuditEvent, Store, StoreResult};

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Alert id (UUIDv7 text: sorts by creation).
    pub id: String,
    /// The rule that fired, e.g. `reveals_per_hour`.
    pub rule: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
    /// The user concerned, when known.
    pub user_id: Option<String>,
    /// That user's login name.
    pub username: Option<String>,
    /// The client address concerned, when known.
    pub source_ip: Option<String>,
    /// What the rule counts per (user id, address, or a hash of a login name tried).
    pub subject: String,
    /// The audit entry that tripped the rule.
    pub trigger_seq: i64,
    /// That entry's time (Unix ms).
    pub triggered_at: i64,
    /// One line for people; never customer data.
    pub summary: String,
    /// JSON object: counts, thresholds, audit sequence numbers.
    pub evidence: String,
    /// JSON array of `{action, result}` objects.
    pub actions_taken: String,
    /// When raised (Unix ms).
    pub created_at: i64,
    /// Who acknowledged it (user id).
    pub acknowledged_by: Option<String>,
    /// When (Unix ms).
    pub acknowledged_at: Option<i64>,
    /// When the webhook accepted it.
    pub webhook_delivered_at: Option<i64>,
    /// Failed webhook attempts so far.
    pub webhook_attempts: i64,
    /// When the SMTP server accepted it.
    pub email_delivered_at: Option<i64>,
    /// Failed email attempts so far.
    pub email_attempts: i64,
}

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The signed webhook.
    Webhook,
    /// Email over SMTP.
    Email,
}

impl Channel {
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Channel::Webhook => ("webhook_delivered_at", "webhook_attempts"),
            Channel::Email => ("email_delivered_at", "email_attempts"),
        }
    }
}

const COLUMNS: &str = "id, rule, severity, user_id, username, source_ip, subject, trigger_seq, triggered_at, \
     summary, evidence, actions_taken, created_at, acknowledged_by, acknowledged_at, webhook_delivered_at, \
     webhook_attempts, email_delivered_at, email_attempts";

macro_rules! alert_from_row {
    ($row:expr) => {
        (|| -> Result<AlertRow, sqlx::Error> {
            Ok(AlertRow {
                id: $row.try_get("id")?,
                rule: $row.try_get("rule")?,
                severity: $row.try_get("severity")?,
                user_id: $row.try_get("user_id")?,
                username: $row.try_get("username")?,
                source_ip: $row.try_get("source_ip")?,
                subject: $row.try_get("subject")?,
                trigger_seq: $row.try_get("trigger_seq")?,
                triggered_at: $row.try_get("triggered_at")?,
                summary: $row.try_get("summary")?,
                evidence: $row.try_get("evidence")?,
                actions_taken: $row.try_get("actions_taken")?,
                created_at: $row.try_get("created_at")?,
                acknowledged_by: $row.try_get("acknowledged_by")?,
                acknowledged_at: $row.try_get("acknowledged_at")?,
                webhook_delivered_at: $row.try_get("webhook_delivered_at")?,
                webhook_attempts: i64::from($row.try_get::<i32, _>("webhook_attempts")?),
                email_delivered_at: $row.try_get("email_delivered_at")?,
                email_attempts: i64::from($row.try_get::<i32, _>("email_attempts")?),
            })
        })()
    };
}

/// Filters of an alert listing.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only alerts nobody has acknowledged yet.
    pub open_only: bool,
    /// Only alerts with an id below this (paging backwards, newest first).
    pub before_id: Option<String>,
}

impl Store {
    /// Stores a new alert and appends `events` (its `security.alert` entry) in the same transaction. Returns
    /// `false`, writing nothing, when the same rule already fired for the same subject and triggering entry.
    pub async fn insert_security_alert(
        &self,
        alert: &AlertRow,
        events: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO security_alert (id, rule, severity, user_id, username, source_ip, subject, \
                 trigger_seq, triggered_at, summary, evidence, actions_taken, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (rule, subject, trigger_seq) DO NOTHING",
            )
            .bind(&alert.id)
            .bind(&alert.rule)
            .bind(&alert.severity)
            .bind(&alert.user_id)
            .bind(&alert.username)
            .bind(&alert.source_ip)
            .bind(&alert.subject)
            .bind(alert.trigger_seq)
            .bind(alert.triggered_at)
            .bind(&alert.summary)
            .bind(&alert.evidence)
            .bind(&alert.actions_taken)
            .bind(alert.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            append_in(&mut *tx, events).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The trigger time of the newest alert of `rule` about `subject` (for de-duplication).
    pub async fn last_alert_time(&self, rule: &str, subject: &str) -> StoreResult<Option<i64>> {
        let time = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(triggered_at) FROM security_alert WHERE rule = $1 AND subject = $2",
            )
            .bind(rule)
            .bind(subject)
            .fetch_one(pool)
            .await
        })?;
        Ok(time)
    }

    /// Alerts matching `filter`, newest first.
    pub async fn list_security_alerts(
        &self,
        filter: &AlertFilter,
        limit: i64,
    ) -> StoreResult<Vec<AlertRow>> {
        let mut clauses = Vec::new();
        if filter.open_only {
            clauses.push("acknowledged_at IS NULL".to_owned());
        }
        if filter.before_id.is_some() {
            clauses.push("id < $2".to_owned());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM security_alert{}{} ORDER BY id DESC LIMIT $1",
            if clauses.is_empty() { "" } else { " WHERE " },
            clauses.join(" AND ")
        );
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).bind(limit);
            if let Some(before) = &filter.before_id {
                query = query.bind(before.as_str());
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| alert_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// One alert.
    pub async fn security_alert(&self, id: &str) -> StoreResult<Option<AlertRow>> {
        let sql = format!("SELECT {COLUMNS} FROM security_alert WHERE id = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| alert_from_row!(row))
        });
        Ok(row.transpose()?)
    }

    /// Marks an open alert acknowledged and appends `events` in the same transaction. Returns `false` (writing
    /// nothing) when the alert does not exist or was already acknowledged.
    pub async fn acknowledge_security_alert(
        &self,
        id: &str,
        by: &str,
        now: i64,
        events: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE security_alert SET acknowledged_by = $2, acknowledged_at = $3 \
                 WHERE id = $1 AND acknowledged_at IS NULL",
            )
            .bind(id)
            .bind(by)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            append_in(&mut *tx, events).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Alerts created since `since` not yet delivered on `channel` and tried fewer than `max_attempts` times,
    /// oldest first.
    pub async fn undelivered_alerts(
        &self,
        channel: Channel,
        since: i64,
        max_attempts: i64,
        limit: i64,
    ) -> StoreResult<Vec<AlertRow>> {
        let (delivered, attempts) = channel.columns();
        let sql = format!(
            "SELECT {COLUMNS} FROM security_alert WHERE {delivered} IS NULL AND {attempts} < $1 \
             AND created_at >= $2 ORDER BY id LIMIT $3"
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(max_attempts)
                .bind(since)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| alert_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Records the outcome of one delivery attempt: delivered at `now`, or one more failed attempt.
    pub async fn record_alert_delivery(
        &self,
        id: &str,
        channel: Channel,
        delivered: bool,
        now: i64,
    ) -> StoreResult<()> {
        let (delivered_column, attempts) = channel.columns();
        let sql = if delivered {
            format!("UPDATE security_alert SET {delivered_column} = $2 WHERE id = $1")
        } else {
            format!("UPDATE security_alert SET {attempts} = {attempts} + 1 WHERE id = $1")
        };
        with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).bind(id);
            if delivered {
                query = query.bind(now);
            }
            query.execute(pool).await.map(|done| done.rows_affected())
        })?;
        Ok(())
    }
}
