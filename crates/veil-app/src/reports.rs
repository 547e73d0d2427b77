//! Report figures for the dashboards (issue 9): tickets and their SLA, and the loyalty programme, over what the
//! caller may see — the ticket list's visibility for tickets (admins all; others the tickets of their customers,
//! those assigned to them and, for managers, to their team tree), the customer list's scope for loyalty. The
//! satisfaction figures are the feedback analysis ([`crate::feedback`]).
//!
//! Every count is a `GROUP BY` in the database ([`veil_store::reports`]); nothing here loads the rows. Weeks
//! start on Monday and months on the 1st, both in China Standard Time, like the feedback trend. Nothing in a
//! report is personal data except the subjects of the tickets needing attention, which are stored masked.

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::AppResult;
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// Weeks in the SLA trend.
pub const SLA_WEEKS: usize = 12;
/// Months in the points trend.
pub const POINTS_MONTHS: usize = 12;
/// An open ticket whose deadline falls within this many hours is at risk.
pub const AT_RISK_HOURS: i64 = 4;
/// Tickets listed as needing attention, at most.
pub const MAX_ATTENTION: i64 = 20;
/// Redemption reasons listed, at most.
pub const MAX_TOP_REDEMPTIONS: i64 = 10;
const HOUR_MS: i64 = 3_600_000;
const CHINA_OFFSET_MS: i64 = 8 * HOUR_MS;

/// A count under a key (a status, a priority, a tier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyCount {
    /// The key.
    pub key: String,
    /// How many.
    pub count: i64,
}

/// The SLA figures of the tickets opened in one week.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlaWeek {
    /// The week's Monday (`YYYY-MM-DD`, China Standard Time).
    pub week: String,
    /// Tickets opened that week.
    pub tickets: i64,
    /// Answered before the first-response deadline.
    pub first_response_met: i64,
    /// Answered after the deadline, or still unanswered past it.
    pub first_response_breached: i64,
    /// Resolved before the resolution deadline.
    pub resolution_met: i64,
    /// Resolved after the deadline, or still unresolved past it.
    pub resolution_breached: i64,
    /// Mean time to the first response of the answered ones, minutes (one decimal; absent when none was).
    pub average_first_response_minutes: Option<f64>,
}

/// An open ticket that breached its SLA or is about to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttentionTicket {
    /// Ticket id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// Priority.
    pub priority: String,
    /// Status.
    pub status: String,
    /// Subject, masked.
    pub subject: String,
    /// `breached` or `at_risk`.
    pub state: String,
    /// The deadline that matters: the first response's while unanswered, else the resolution's (RFC 3339).
    pub due: String,
}

/// The tickets report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TicketReport {
    /// When it was computed (RFC 3339).
    pub generated_at: String,
    /// Open tickets (open, in progress, reopened).
    pub open: i64,
    /// Open tickets per status.
    pub open_by_status: Vec<KeyCount>,
    /// Open tickets per priority, `urgent` first.
    pub open_by_priority: Vec<KeyCount>,
    /// Open tickets past an SLA deadline (or escalated) now.
    pub breached: i64,
    /// Open tickets not breached whose deadline falls within `at_risk_hours`.
    pub at_risk: i64,
    /// See `at_risk`.
    pub at_risk_hours: i64,
    /// Mean time to the first response over the weeks shown, minutes (absent when nothing was answered).
    pub average_first_response_minutes: Option<f64>,
    /// The last 12 weeks, oldest first (weeks without tickets are listed, zero).
    pub weeks: Vec<SlaWeek>,
    /// Breached tickets first, then those at risk, soonest deadline first (at most 20).
    pub attention: Vec<AttentionTicket>,
}

/// Members of one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TierMembers {
    /// Tier name.
    pub tier: String,
    /// Its threshold in lifetime points.
    pub threshold: i64,
    /// Members.
    pub members: i64,
}

/// Points moved in one month (all positive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PointsMonth {
    /// `YYYY-MM` (China Standard Time).
    pub month: String,
    /// Points earned on orders.
    pub earned: i64,
    /// Points redeemed.
    pub redeemed: i64,
    /// Points expired.
    pub expired: i64,
    /// Points taken back by refunds.
    pub reversed: i64,
    /// Redemptions.
    pub redemptions: i64,
}

/// Redemptions with one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Redemption {
    /// The reason (the reward), personal data masked; absent when none was given.
    pub reason: Option<String>,
    /// How many times.
    pub redemptions: i64,
    /// Points redeemed.
    pub points: i64,
}

/// The loyalty report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoyaltyReport {
    /// When it was computed (RFC 3339).
    pub generated_at: String,
    /// Accounts.
    pub members: i64,
    /// Members per tier of the programme, lowest first (configured tiers without members are listed, zero).
    pub tiers: Vec<TierMembers>,
    /// The last 12 months, oldest first. Points expire when an account is next read, so a month's expiry shows
    /// once the accounts concerned were.
    pub months: Vec<PointsMonth>,
    /// The reasons most points were redeemed for over those months (at most 10).
    pub top_redemptions: Vec<Redemption>,
}

/// Midnight (China Standard Time) of `date`, Unix ms.
fn china_midnight(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map(|time| time.and_utc().timestamp_millis() - CHINA_OFFSET_MS)
        .unwrap_or_default()
}

fn china_date(unix_ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(unix_ms + CHINA_OFFSET_MS)
        .map(|time| time.date_naive())
        .unwrap_or_default()
}

/// The Mondays of the last `weeks` weeks up to `now`'s, and the Monday after: `weeks + 1` boundaries.
pub fn week_starts(now: i64, weeks: usize) -> Vec<NaiveDate> {
    let today = china_date(now);
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    (0..=weeks)
        .map(|index| monday - Duration::weeks(weeks as i64 - 1 - index as i64))
        .collect()
}

/// The first days of the last `months` months up to `now`'s, and of the month after: `months + 1` boundaries.
pub fn month_starts(now: i64, months: usize) -> Vec<NaiveDate> {
    let today = china_date(now);
    let current = today.year() * 12 + today.month0() as i32;
    (0..=months)
        .map(|index| {
            let month = current - (months as i32 - 1) + index as i32;
            NaiveDate::from_ymd_opt(month.div_euclid(12), month.rem_euclid(12) as u32 + 1, 1)
                .unwrap_or_default()
        })
        .collect()
}

fn minutes(total_ms: i64, count: i64) -> Option<f64> {
    (count > 0).then(|| (total_ms as f64 / count as f64 / 6_000.0).round() / 10.0)
}

const STATUSES: [&str; 3] = ["open", "in_progress", "reopened"];
const PRIORITIES: [&str; 4] = ["urgent", "high", "normal", "low"];

impl Veil {
    /// The tickets report over the tickets the caller sees.
    pub async fn ticket_report(&self, actor: &Actor) -> AppResult<TicketReport> {
        let scope = self.authorize(actor, Action::TicketRead, None).await?;
        let visibility = crate::tickets::ticket_visibility(actor, scope);
        let now = now_ms();
        let store = self.store();
        let counts = store.open_ticket_counts(&visibility).await?;
        let open_by_status = STATUSES
            .iter()
            .map(|key| KeyCount {
                key: (*key).to_owned(),
                count: counts
                    .iter()
                    .filter(|row| row.status == *key)
                    .map(|row| row.tickets)
                    .sum(),
            })
            .collect();
        let open_by_priority = PRIORITIES
            .iter()
            .map(|key| KeyCount {
                key: (*key).to_owned(),
                count: counts
                    .iter()
                    .filter(|row| row.priority == *key)
                    .map(|row| row.tickets)
                    .sum(),
            })
            .collect();
        let starts = week_starts(now, SLA_WEEKS);
        let boundaries: Vec<i64> = starts.iter().map(|date| china_midnight(*date)).collect();
        let buckets = store
            .ticket_sla_buckets(&visibility, &boundaries, now)
            .await?;
        let mut weeks: Vec<SlaWeek> = starts[..SLA_WEEKS]
            .iter()
            .map(|date| SlaWeek {
                week: date.format("%Y-%m-%d").to_string(),
                ..SlaWeek::default()
            })
            .collect();
        let (mut responded, mut response_ms) = (0, 0);
        for bucket in &buckets {
            let Some(week) = usize::try_from(bucket.bucket)
                .ok()
                .and_then(|index| weeks.get_mut(index))
            else {
                continue;
            };
            week.tickets = bucket.tickets;
            week.first_response_met = bucket.first_response_met;
            week.first_response_breached = bucket.first_response_breached;
            week.resolution_met = bucket.resolution_met;
            week.resolution_breached = bucket.resolution_breached;
            week.average_first_response_minutes =
                minutes(bucket.response_ms_total, bucket.responded);
            responded += bucket.responded;
            response_ms += bucket.response_ms_total;
        }
        let (attention_counts, rows) = store
            .tickets_needing_attention(
                &visibility,
                now,
                now + AT_RISK_HOURS * HOUR_MS,
                MAX_ATTENTION,
            )
            .await?;
        let mut customers: Vec<String> = rows.iter().map(|row| row.customer_id.clone()).collect();
        customers.sort();
        customers.dedup();
        self.record(&[crate::audit::event(
            Some(actor),
            "report.tickets",
            crate::audit::Outcome::Ok,
        )
        .customers(customers)
        .detail(serde_json::json!({"attention": rows.len()}))])
            .await?;
        Ok(TicketReport {
            generated_at: format_time(now),
            open: counts.iter().map(|row| row.tickets).sum(),
            open_by_status,
            open_by_priority,
            breached: attention_counts.breached,
            at_risk: attention_counts.at_risk,
            at_risk_hours: AT_RISK_HOURS,
            average_first_response_minutes: minutes(response_ms, responded),
            weeks,
            attention: rows
                .into_iter()
                .map(|row| AttentionTicket {
                    due: format_time(if row.first_responded_at.is_none() {
                        row.first_response_due_at.min(row.resolution_due_at)
                    } else {
                        row.resolution_due_at
                    }),
                    state: if row.breached { "breached" } else { "at_risk" }.to_owned(),
                    id: row.id,
                    customer_id: row.customer_id,
                    priority: row.priority,
                    status: row.status,
                    subject: row.subject_masked,
                })
                .collect(),
        })
    }

    /// The loyalty report over the customers the caller may list.
    pub async fn loyalty_report(&self, actor: &Actor) -> AppResult<LoyaltyReport> {
        let scope = self.authorize(actor, Action::LoyaltyRead, None).await?;
        let now = now_ms();
        let store = self.store();
        let counts = store.loyalty_tier_counts(Some(&scope)).await?;
        let rules = self.loyalty_rules();
        let mut tiers: Vec<TierMembers> = rules
            .tiers
            .iter()
            .map(|tier| TierMembers {
                tier: tier.name.clone(),
                threshold: tier.threshold,
                members: counts
                    .iter()
                    .filter(|row| row.tier == tier.name)
                    .map(|row| row.members)
                    .sum(),
            })
            .collect();
        // A tier no longer configured still has its members counted.
        for row in &counts {
            if !tiers.iter().any(|tier| tier.tier == row.tier) {
                tiers.push(TierMembers {
                    tier: row.tier.clone(),
                    threshold: 0,
                    members: row.members,
                });
            }
        }
        let starts = month_starts(now, POINTS_MONTHS);
        let boundaries: Vec<i64> = starts.iter().map(|date| china_midnight(*date)).collect();
        let mut months: Vec<PointsMonth> = starts[..POINTS_MONTHS]
            .iter()
            .map(|date| PointsMonth {
                month: date.format("%Y-%m").to_string(),
                ..PointsMonth::default()
            })
            .collect();
        for row in store
            .loyalty_points_buckets(Some(&scope), &boundaries)
            .await?
        {
            let Some(month) = usize::try_from(row.bucket)
                .ok()
                .and_then(|index| months.get_mut(index))
            else {
                continue;
            };
            match row.kind.as_str() {
                "earn" => month.earned += row.points,
                "redeem" => {
                    month.redeemed -= row.points;
                    month.redemptions += row.entries;
                }
                "expire" => month.expired -= row.points,
                "reverse" => month.reversed -= row.points,
                _ => {}
            }
        }
        let top_redemptions = store
            .top_redemptions(
                Some(&scope),
                boundaries[0],
                boundaries[POINTS_MONTHS],
                MAX_TOP_REDEMPTIONS,
            )
            .await?
            .into_iter()
            .map(|row| Redemption {
                reason: row.reason,
                redemptions: row.redemptions,
                points: row.points,
            })
            .collect();
        self.record(&[crate::audit::event(
            Some(actor),
            "report.loyalty",
            crate::audit::Outcome::Ok,
        )])
        .await?;
        Ok(LoyaltyReport {
            generated_at: format_time(now),
            members: counts.iter().map(|row| row.members).sum(),
            tiers,
            months,
            top_redemptions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> i64 {
        china_midnight(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()) + HOUR_MS
    }

    #[test]
    fn weeks_start_on_monday_in_china() {
        // Sunday 2026-03-08, 01:00 in China (still Saturday in UTC).
        let starts = week_starts(at("2026-03-08"), 3);
        let shown: Vec<String> = starts.iter().map(|date| date.to_string()).collect();
        assert_eq!(
            shown,
            ["2026-02-16", "2026-02-23", "2026-03-02", "2026-03-09"]
        );
    }

    #[test]
    fn months_cross_the_year() {
        let starts = month_starts(at("2026-02-10"), 3);
        let shown: Vec<String> = starts.iter().map(|date| date.to_string()).collect();
        assert_eq!(
            shown,
            ["2025-12-01", "2026-01-01", "2026-02-01", "2026-03-01"]
        );
        assert_eq!(minutes(0, 0), None);
        assert_eq!(minutes(90 * 60_000, 2), Some(45.0));
    }
}
