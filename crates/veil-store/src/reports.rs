//! Report figures for the dashboards (issue 9): tickets and their SLA, and the loyalty programme. Every figure is
//! counted by the database (`GROUP BY` over the caller's rows, read through indexes of migration 0028), never by
//! loading rows into the application, so a report costs the same at a million customers as at a hundred.
//!
//! Time buckets (weeks, months) are given as boundaries by the caller, which knows the calendar and the time zone;
//! the SQL only compares integers (`CASE WHEN created_at < $b1 THEN 0 …`), the same on SQLite and PostgreSQL.
//! Without a customer scope (admins) the loyalty figures are read from `loyalty_day_total` and
//! `loyalty_redemption_total`, per-day totals kept by triggers (migration 0028), instead of the whole ledger.

use sqlx::Row;

use crate::tickets::{placeholder, visibility_clause, Bind, TicketVisibility};
use crate::{with_pool, CustomerScope, Store, StoreResult};

/// Open tickets of one status and priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCountRow {
    /// `open`, `in_progress` or `reopened`.
    pub status: String,
    /// `low`, `normal`, `high`, `urgent`.
    pub priority: String,
    /// How many.
    pub tickets: i64,
}

/// The SLA figures of the tickets opened in one time bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaBucketRow {
    /// Index of the bucket (0 = oldest).
    pub bucket: i64,
    /// Tickets opened in it.
    pub tickets: i64,
    /// First response in time.
    pub first_response_met: i64,
    /// First response late, still missing after its deadline, or escalated.
    pub first_response_breached: i64,
    /// Resolved in time.
    pub resolution_met: i64,
    /// Resolved late, still unresolved after its deadline, or escalated.
    pub resolution_breached: i64,
    /// Tickets with a first response.
    pub responded: i64,
    /// Sum over them of the time to the first response, ms.
    pub response_ms_total: i64,
}

/// Counts of open tickets that need attention now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttentionCounts {
    /// Open and past a deadline (or escalated).
    pub breached: i64,
    /// Open, not breached, and a deadline falls before the at-risk horizon.
    pub at_risk: i64,
}

/// An open ticket that breached its SLA or is about to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionRow {
    /// Ticket id.
    pub id: String,
    /// Its customer.
    pub customer_id: String,
    /// Priority.
    pub priority: String,
    /// Status.
    pub status: String,
    /// Subject, masked as stored.
    pub subject_masked: String,
    /// First-response deadline, Unix ms.
    pub first_response_due_at: i64,
    /// When staff first answered.
    pub first_responded_at: Option<i64>,
    /// Resolution deadline, Unix ms.
    pub resolution_due_at: i64,
    /// Breached (else at risk).
    pub breached: bool,
}

/// Loyalty members of one tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierCountRow {
    /// Tier name.
    pub tier: String,
    /// Accounts in it.
    pub members: i64,
}

/// Points moved by one kind of ledger entry in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsBucketRow {
    /// Index of the bucket (0 = oldest).
    pub bucket: i64,
    /// `earn`, `redeem`, `expire` or `reverse`.
    pub kind: String,
    /// Sum of the signed points.
    pub points: i64,
    /// Entries.
    pub entries: i64,
}

/// Redemptions with one (masked) reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionRow {
    /// The reason as stored (personal data masked); `None` when none was given.
    pub reason: Option<String>,
    /// How many redemptions.
    pub redemptions: i64,
    /// Points redeemed (positive).
    pub points: i64,
}

/// `customer_id IN (…the scope…)` with its binds, numbering from `next`; `None` for an unrestricted scope.
fn customer_clause(
    scope: Option<&CustomerScope>,
    next: &mut usize,
    binds: &mut Vec<Bind>,
) -> Option<String> {
    let scope = scope?;
    let mut clauses = Vec::new();
    crate::customers::scope_clause(scope, next, &mut clauses);
    if let Some(owner) = &scope.owner_id {
        binds.push(Bind::Text(owner.clone()));
    }
    for team in scope.teams.iter().flatten() {
        binds.push(Bind::Text(team.clone()));
    }
    if let Some(user) = &scope.linked_user {
        binds.push(Bind::Text(user.clone()));
    }
    if clauses.is_empty() {
        return None;
    }
    Some(format!(
        "customer_id IN (SELECT id FROM customer WHERE {})",
        clauses.join(" AND ")
    ))
}

/// The bucket index of `column` for ascending `boundaries` (`b0 ≤ t < b1` → 0, …), and the range condition that
/// keeps rows inside `[b0, bN)`. Needs at least two boundaries.
fn bucket_sql(
    column: &str,
    boundaries: &[i64],
    next: &mut usize,
    binds: &mut Vec<Bind>,
) -> (String, String) {
    let first = placeholder(binds, next, Bind::Int(boundaries[0]));
    let last = placeholder(binds, next, Bind::Int(boundaries[boundaries.len() - 1]));
    let range = format!("{column} >= {first} AND {column} < {last}");
    let mut case = String::from("CASE");
    for (index, boundary) in boundaries[1..boundaries.len() - 1].iter().enumerate() {
        let slot = placeholder(binds, next, Bind::Int(*boundary));
        case.push_str(&format!(" WHEN {column} < {slot} THEN {index}"));
    }
    case.push_str(&format!(" ELSE {} END", boundaries.len() - 2));
    (format!("CAST({case} AS BIGINT)"), range)
}

fn where_sql(clauses: &[String]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    }
}

/// The day number the loyalty totals are kept by: days in China Standard Time, `(unix_ms + 8 h) / 24 h` (the
/// triggers of migration 0028 compute the same).
pub fn china_day(unix_ms: i64) -> i64 {
    (unix_ms + 8 * 3_600_000).div_euclid(86_400_000)
}

/// Tickets still being worked on.
const OPEN_STATUSES: &str = "status IN ('open', 'in_progress', 'reopened')";

/// The breach condition of the ticket list (`crate::tickets`), with `now` as the placeholder of the current time.
fn breached_sql(now: &str) -> String {
    format!(
        "(COALESCE(first_responded_at, {now}) > first_response_due_at \
         OR COALESCE(resolved_at, {now}) > resolution_due_at \
         OR EXISTS (SELECT 1 FROM ticket_escalation e WHERE e.ticket_id = ticket.id))"
    )
}

/// A report's query with its binds, planned for those values at every run (`persistent(false)`: not kept as a
/// prepared statement). PostgreSQL switches a prepared statement to a generic plan after five runs, and a generic
/// plan has to guess how much `owner_id = $1` and a time range select: for a salesperson it walked every row of
/// the window through `customer`'s primary key (1M customers, 100k feedback rows: 907 ms against 100 ms with the
/// plan for the actual values; see docs/benchmarks.md, `crm-bench`). Planning costs well under a millisecond.
macro_rules! bound {
    ($sql:expr, $binds:expr) => {{
        let mut query = sqlx::query($sql).persistent(false);
        for bind in $binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(number) => query.bind(*number),
            };
        }
        query
    }};
}

impl Store {
    /// Open tickets visible under `visibility`, counted per status and priority.
    pub async fn open_ticket_counts(
        &self,
        visibility: &TicketVisibility,
    ) -> StoreResult<Vec<TicketCountRow>> {
        let mut next = 1usize;
        let mut binds = Vec::new();
        let mut clauses = vec![OPEN_STATUSES.to_owned()];
        clauses.extend(visibility_clause(visibility, &mut next, &mut binds));
        let sql = format!(
            "SELECT status, priority, COUNT(*) AS tickets FROM ticket {} GROUP BY status, priority",
            where_sql(&clauses)
        );
        let rows = with_pool!(self, |pool| {
            bound!(&sql, &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<TicketCountRow, sqlx::Error> {
                    Ok(TicketCountRow {
                        status: row.try_get("status")?,
                        priority: row.try_get("priority")?,
                        tickets: row.try_get("tickets")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The SLA figures of the tickets visible under `visibility` opened in each bucket of `boundaries`, judged at
    /// `now` (a ticket still waiting past its deadline counts as breached). Buckets without tickets are absent.
    pub async fn ticket_sla_buckets(
        &self,
        visibility: &TicketVisibility,
        boundaries: &[i64],
        now: i64,
    ) -> StoreResult<Vec<SlaBucketRow>> {
        if boundaries.len() < 2 {
            return Ok(Vec::new());
        }
        let mut next = 1usize;
        let mut binds = Vec::new();
        let now_slot = placeholder(&mut binds, &mut next, Bind::Int(now));
        let (bucket, range) = bucket_sql("created_at", boundaries, &mut next, &mut binds);
        let mut clauses = vec![range];
        clauses.extend(visibility_clause(visibility, &mut next, &mut binds));
        // Judged by the deadlines alone, so that the index holds every column read: an escalation only ever
        // follows a missed deadline (the ticket list also counts escalated timers whose deadline a priority change
        // moved later; the weekly figures do not).
        let first_breached =
            format!("(COALESCE(first_responded_at, {now_slot}) > first_response_due_at)");
        let resolution_breached =
            format!("(COALESCE(resolved_at, {now_slot}) > resolution_due_at)");
        // One row per ticket with its flags, then one GROUP BY over the buckets.
        let sql = format!(
            "SELECT bucket, COUNT(*) AS tickets, \
             CAST(SUM(first_met) AS BIGINT) AS first_met, CAST(SUM(first_breached) AS BIGINT) AS first_breached, \
             CAST(SUM(resolution_met) AS BIGINT) AS resolution_met, \
             CAST(SUM(resolution_breached) AS BIGINT) AS resolution_breached, \
             CAST(SUM(responded) AS BIGINT) AS responded, \
             CAST(COALESCE(SUM(response_ms), 0) AS BIGINT) AS response_ms \
             FROM (SELECT {bucket} AS bucket, \
               CASE WHEN {first_breached} THEN 0 WHEN first_responded_at IS NOT NULL THEN 1 ELSE 0 END AS first_met, \
               CASE WHEN {first_breached} THEN 1 ELSE 0 END AS first_breached, \
               CASE WHEN {resolution_breached} THEN 0 WHEN resolved_at IS NOT NULL THEN 1 ELSE 0 END AS resolution_met, \
               CASE WHEN {resolution_breached} THEN 1 ELSE 0 END AS resolution_breached, \
               CASE WHEN first_responded_at IS NOT NULL THEN 1 ELSE 0 END AS responded, \
               first_responded_at - created_at AS response_ms \
               FROM ticket {}) AS flagged \
             GROUP BY bucket ORDER BY bucket",
            where_sql(&clauses)
        );
        let rows = with_pool!(self, |pool| {
            bound!(&sql, &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<SlaBucketRow, sqlx::Error> {
                    Ok(SlaBucketRow {
                        bucket: row.try_get("bucket")?,
                        tickets: row.try_get("tickets")?,
                        first_response_met: row.try_get("first_met")?,
                        first_response_breached: row.try_get("first_breached")?,
                        resolution_met: row.try_get("resolution_met")?,
                        resolution_breached: row.try_get("resolution_breached")?,
                        responded: row.try_get("responded")?,
                        response_ms_total: row.try_get("response_ms")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// How many open tickets visible under `visibility` breached their SLA at `now`, and how many more have a
    /// deadline before `horizon`; and up to `limit` of them, breached first, then by resolution deadline.
    pub async fn tickets_needing_attention(
        &self,
        visibility: &TicketVisibility,
        now: i64,
        horizon: i64,
        limit: i64,
    ) -> StoreResult<(AttentionCounts, Vec<AttentionRow>)> {
        let mut next = 1usize;
        let mut binds = Vec::new();
        let now_slot = placeholder(&mut binds, &mut next, Bind::Int(now));
        let horizon_slot = placeholder(&mut binds, &mut next, Bind::Int(horizon));
        let mut clauses = vec![OPEN_STATUSES.to_owned()];
        clauses.extend(visibility_clause(visibility, &mut next, &mut binds));
        let breached = breached_sql(&now_slot);
        let at_risk = format!(
            "((first_responded_at IS NULL AND first_response_due_at <= {horizon_slot}) \
             OR resolution_due_at <= {horizon_slot})"
        );
        let counts_sql = format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN {breached} THEN 1 ELSE 0 END), 0) AS BIGINT) AS breached, \
             CAST(COALESCE(SUM(CASE WHEN {breached} THEN 0 WHEN {at_risk} THEN 1 ELSE 0 END), 0) AS BIGINT) AS at_risk \
             FROM ticket {}",
            where_sql(&clauses)
        );
        let limit_slot = placeholder(&mut binds, &mut next, Bind::Int(limit));
        let list_sql = format!(
            "SELECT id, customer_id, priority, status, subject_masked, first_response_due_at, first_responded_at, \
             resolution_due_at, CAST(CASE WHEN {breached} THEN 1 ELSE 0 END AS BIGINT) AS breached \
             FROM ticket {} AND ({breached} OR {at_risk}) \
             ORDER BY breached DESC, resolution_due_at, id LIMIT {limit_slot}",
            where_sql(&clauses)
        );
        let count_binds = &binds[..binds.len() - 1];
        let (counts, rows) = with_pool!(self, |pool| {
            let counts = bound!(&counts_sql, count_binds).fetch_one(pool).await?;
            let counts = AttentionCounts {
                breached: counts.try_get("breached")?,
                at_risk: counts.try_get("at_risk")?,
            };
            let rows = bound!(&list_sql, &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<AttentionRow, sqlx::Error> {
                    Ok(AttentionRow {
                        id: row.try_get("id")?,
                        customer_id: row.try_get("customer_id")?,
                        priority: row.try_get("priority")?,
                        status: row.try_get("status")?,
                        subject_masked: row.try_get("subject_masked")?,
                        first_response_due_at: row.try_get("first_response_due_at")?,
                        first_responded_at: row.try_get("first_responded_at")?,
                        resolution_due_at: row.try_get("resolution_due_at")?,
                        breached: row.try_get::<i64, _>("breached")? == 1,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok::<_, sqlx::Error>((counts, rows))
        })?;
        Ok((counts, rows))
    }

    /// Loyalty accounts of customers in `scope` (`None`: all), counted per tier.
    pub async fn loyalty_tier_counts(
        &self,
        scope: Option<&CustomerScope>,
    ) -> StoreResult<Vec<TierCountRow>> {
        let mut next = 1usize;
        let mut binds = Vec::new();
        let clauses: Vec<String> = customer_clause(scope, &mut next, &mut binds)
            .into_iter()
            .collect();
        let sql = format!(
            "SELECT tier, COUNT(*) AS members FROM loyalty_account {} GROUP BY tier",
            where_sql(&clauses)
        );
        let rows = with_pool!(self, |pool| {
            bound!(&sql, &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<TierCountRow, sqlx::Error> {
                    Ok(TierCountRow {
                        tier: row.try_get("tier")?,
                        members: row.try_get("members")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Points of the ledger entries of customers in `scope` (`None`: all), summed per bucket of `boundaries` and
    /// kind of entry. Without a scope the figures come from the per-day totals, so the boundaries must then be
    /// midnights in China Standard Time ([`china_day`]).
    pub async fn loyalty_points_buckets(
        &self,
        scope: Option<&CustomerScope>,
        boundaries: &[i64],
    ) -> StoreResult<Vec<PointsBucketRow>> {
        if boundaries.len() < 2 {
            return Ok(Vec::new());
        }
        let mut next = 1usize;
        let mut binds = Vec::new();
        let scoped = customer_clause(scope, &mut next, &mut binds);
        let sql = match scoped {
            Some(clause) => {
                let (bucket, range) = bucket_sql("created_at", boundaries, &mut next, &mut binds);
                format!(
                    "SELECT bucket, kind, CAST(SUM(points) AS BIGINT) AS points, COUNT(*) AS entries \
                     FROM (SELECT {bucket} AS bucket, kind, points FROM loyalty_entry \
                     WHERE {clause} AND {range}) AS bucketed \
                     GROUP BY bucket, kind ORDER BY bucket, kind"
                )
            }
            // Every entry: the per-day totals the triggers keep.
            None => {
                let days: Vec<i64> = boundaries.iter().map(|at| china_day(*at)).collect();
                let (bucket, range) = bucket_sql("day", &days, &mut next, &mut binds);
                format!(
                    "SELECT bucket, kind, CAST(SUM(points) AS BIGINT) AS points, \
                     CAST(SUM(entries) AS BIGINT) AS entries \
                     FROM (SELECT {bucket} AS bucket, kind, points, entries FROM loyalty_day_total \
                     WHERE {range}) AS bucketed \
                     GROUP BY bucket, kind ORDER BY bucket, kind"
                )
            }
        };
        let rows = with_pool!(self, |pool| {
            bound!(&sql, &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<PointsBucketRow, sqlx::Error> {
                    Ok(PointsBucketRow {
                        bucket: row.try_get("bucket")?,
                        kind: row.try_get("kind")?,
                        points: row.try_get("points")?,
                        entries: row.try_get("entries")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The `limit` reasons most points were redeemed for in `[from, to)` by customers in `scope` (`None`: all;
    /// then from the per-day totals, `from` and `to` being midnights in China Standard Time).
    pub async fn top_redemptions(
        &self,
        scope: Option<&CustomerScope>,
        from: i64,
        to: i64,
        limit: i64,
    ) -> StoreResult<Vec<RedemptionRow>> {
        let mut next = 1usize;
        let mut binds = Vec::new();
        let sql = match customer_clause(scope, &mut next, &mut binds) {
            Some(clause) => {
                let from_slot = placeholder(&mut binds, &mut next, Bind::Int(from));
                let to_slot = placeholder(&mut binds, &mut next, Bind::Int(to));
                let limit_slot = placeholder(&mut binds, &mut next, Bind::Int(limit));
                format!(
                    "SELECT reason, COUNT(*) AS redemptions, CAST(-SUM(points) AS BIGINT) AS redeemed \
                     FROM loyalty_entry WHERE {clause} AND kind = 'redeem' \
                     AND created_at >= {from_slot} AND created_at < {to_slot} \
                     GROUP BY reason ORDER BY redeemed DESC, redemptions DESC, reason LIMIT {limit_slot}"
                )
            }
            // Every entry: the per-day totals the triggers keep.
            None => {
                let from_slot = placeholder(&mut binds, &mut next, Bind::Int(china_day(from)));
                let to_slot = placeholder(&mut binds, &mut next, Bind::Int(china_day(to)));
                let limit_slot = placeholder(&mut binds, &mut next, Bind::Int(limit));
                format!(
                    "SELECT reason, CAST(SUM(redemptions) AS BIGINT) AS redemptions, \
                     CAST(SUM(points) AS BIGINT) AS redeemed FROM loyalty_redemption_total \
                     WHERE day >= {from_slot} AND day < {to_slot} GROUP BY reason_key, reason \
                     ORDER BY redeemed DESC, redemptions DESC, reason LIMIT {limit_slot}"
                )
            }
        };
        let rows = with_pool!(self, |pool| {
            bound!(&sql, &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<RedemptionRow, sqlx::Error> {
                    Ok(RedemptionRow {
                        reason: row.try_get("reason")?,
                        redemptions: row.try_get("redemptions")?,
                        points: row.try_get("redeemed")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }
}
