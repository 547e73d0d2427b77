//! Tickets: the ticket row (masked subject and description, SLA due times), its status history, comments and
//! escalations, the round-robin cursor and users' skills. Every write appends its audit entries in the same
//! transaction.

use sqlx::Row;

use crate::interactions::TimeCursor;
use crate::{with_pool, CustomerScope, Store, StoreError, StoreResult};

macro_rules! insert_status_change {
    ($tx:ident, $change:expr) => {
        sqlx::query(
            "INSERT INTO ticket_status_change (id, ticket_id, from_status, to_status, actor_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&$change.id)
        .bind(&$change.ticket_id)
        .bind(&$change.from_status)
        .bind(&$change.to_status)
        .bind(&$change.actor_id)
        .bind($change.created_at)
        .execute(&mut *$tx)
        .await?;
    };
}

macro_rules! link_in {
    ($tx:ident, $link:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO customer_service_link (customer_id, user_id, reason, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (customer_id, user_id) DO NOTHING",
        )
        .bind(&$link.customer_id)
        .bind(&$link.user_id)
        .bind(&$link.reason)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    };
}

/// A stored ticket.
#[derive(Clone)]
pub struct TicketRow {
    /// Ticket id (UUIDv7 text).
    pub id: String,
    /// The customer it concerns.
    pub customer_id: String,
    /// `phone`, `email`, `web`, `wechat`, `store`.
    pub channel: String,
    /// `inquiry`, `complaint`, `after_sales`, `billing`, …
    pub category: String,
    /// `low`, `normal`, `high`, `urgent`.
    pub priority: String,
    /// `open`, `in_progress`, `resolved`, `closed`, `reopened`.
    pub status: String,
    /// Subject, masked.
    pub subject_masked: String,
    /// The subject's original spans, sealed under the customer's key.
    pub subject_spans_ct: Option<Vec<u8>>,
    /// JSON span index of the subject.
    pub subject_span_index: String,
    /// Description, masked.
    pub description_masked: String,
    /// The description's original spans, sealed under the customer's key.
    pub description_spans_ct: Option<Vec<u8>>,
    /// JSON span index of the description.
    pub description_span_index: String,
    /// Who works on it.
    pub assignee_id: Option<String>,
    /// How the assignee was chosen (`explicit`, `owner`, `round_robin`, `skill`).
    pub assigned_by: Option<String>,
    /// Who opened it.
    pub created_by: Option<String>,
    /// First-response deadline, Unix ms.
    pub first_response_due_at: i64,
    /// Resolution deadline, Unix ms.
    pub resolution_due_at: i64,
    /// When staff first commented (stops the first-response timer).
    pub first_responded_at: Option<i64>,
    /// When it was resolved (stops the resolution timer).
    pub resolved_at: Option<i64>,
    /// When it was closed.
    pub closed_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; the optimistic-concurrency token.
    pub updated_at: i64,
}

impl std::fmt::Debug for TicketRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TicketRow")
            .field("id", &self.id)
            .field("customer_id", &self.customer_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, customer_id, channel, category, priority, status, subject_masked, subject_spans_ct, \
     subject_span_index, description_masked, description_spans_ct, description_span_index, assignee_id, \
     assigned_by, created_by, first_response_due_at, resolution_due_at, first_responded_at, resolved_at, \
     closed_at, created_at, updated_at";

macro_rules! ticket_from_row {
    ($row:expr) => {
        (|| -> Result<TicketRow, sqlx::Error> {
            Ok(TicketRow {
                id: $row.try_get("id")?,
                customer_id: $row.try_get("customer_id")?,
                channel: $row.try_get("channel")?,
                category: $row.try_get("category")?,
                priority: $row.try_get("priority")?,
                status: $row.try_get("status")?,
                subject_masked: $row.try_get("subject_masked")?,
                subject_spans_ct: $row.try_get("subject_spans_ct")?,
                subject_span_index: $row.try_get("subject_span_index")?,
                description_masked: $row.try_get("description_masked")?,
                description_spans_ct: $row.try_get("description_spans_ct")?,
                description_span_index: $row.try_get("description_span_index")?,
                assignee_id: $row.try_get("assignee_id")?,
                assigned_by: $row.try_get("assigned_by")?,
                created_by: $row.try_get("created_by")?,
                first_response_due_at: $row.try_get("first_response_due_at")?,
                resolution_due_at: $row.try_get("resolution_due_at")?,
                first_responded_at: $row.try_get("first_responded_at")?,
                resolved_at: $row.try_get("resolved_at")?,
                closed_at: $row.try_get("closed_at")?,
                created_at: $row.try_get("created_at")?,
                updated_at: $row.try_get("updated_at")?,
            })
        })()
    };
}

/// One status change.
#[derive(Debug, Clone)]
pub struct StatusChangeRow {
    /// Change id (UUIDv7 text).
    pub id: String,
    /// The ticket.
    pub ticket_id: String,
    /// Previous status (`None` when the ticket was opened).
    pub from_status: Option<String>,
    /// New status.
    pub to_status: String,
    /// Who changed it.
    pub actor_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// A comment on a ticket (masked, originals sealed).
#[derive(Clone)]
pub struct TicketCommentRow {
    /// Comment id (UUIDv7 text).
    pub id: String,
    /// The ticket.
    pub ticket_id: String,
    /// Who wrote it.
    pub author_id: Option<String>,
    /// The text with personal data masked in place.
    pub body_masked: String,
    /// The original spans, sealed under the customer's key.
    pub spans_ct: Option<Vec<u8>>,
    /// JSON span index.
    pub span_index: String,
    /// Unix ms.
    pub created_at: i64,
}

impl std::fmt::Debug for TicketCommentRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TicketCommentRow")
            .field("id", &self.id)
            .field("ticket_id", &self.ticket_id)
            .finish_non_exhaustive()
    }
}

/// An SLA escalation: one per ticket and timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRow {
    /// The ticket.
    pub ticket_id: String,
    /// `first_response` or `resolution`.
    pub timer: String,
    /// The manager it went to; `None` means the admins.
    pub escalated_to: Option<String>,
    /// The assignee at the time.
    pub assignee_id: Option<String>,
    /// The deadline that was missed, Unix ms.
    pub due_at: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// A service user to link to the ticket's customer, and why.
#[derive(Debug, Clone)]
pub struct ServiceLink {
    /// The customer.
    pub customer_id: String,
    /// The service user.
    pub user_id: String,
    /// Why (e.g. `ticket <id>`).
    pub reason: String,
}

/// Which tickets a caller sees: those of customers in `customers`, those assigned to `assignee`, and those
/// assigned to members of `assignee_teams`. `customers: None` means every ticket.
#[derive(Debug, Clone, Default)]
pub struct TicketVisibility {
    /// The caller's customer scope (`None`: all tickets).
    pub customers: Option<CustomerScope>,
    /// The caller's own user id.
    pub assignee: Option<String>,
    /// Teams whose members' tickets the caller sees (a manager's team tree).
    pub assignee_teams: Vec<String>,
}

/// Filters of a ticket listing.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this priority.
    pub priority: Option<String>,
    /// Only tickets assigned to this user.
    pub assignee: Option<String>,
    /// Only tickets of this customer.
    pub customer: Option<String>,
    /// Only tickets whose SLA is (`Some(true)`) or is not (`Some(false)`) breached at `now`, or escalated.
    pub breached: Option<bool>,
    /// The time `breached` is judged at, Unix ms.
    pub now: i64,
    /// Only ids below this (newest first paging).
    pub before_id: Option<String>,
    /// Page size.
    pub limit: i64,
}

pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Adds a bound value and returns its `$N` placeholder.
pub(crate) fn placeholder(binds: &mut Vec<Bind>, next: &mut usize, value: Bind) -> String {
    binds.push(value);
    let text = format!("${next}");
    *next += 1;
    text
}

/// The tickets `visibility` lets a caller see, as one parenthesised condition over `ticket` with its binds
/// (numbered from `next`); `None` when every ticket is visible.
pub(crate) fn visibility_clause(
    visibility: &TicketVisibility,
    next: &mut usize,
    binds: &mut Vec<Bind>,
) -> Option<String> {
    let scope = visibility.customers.as_ref()?;
    let mut alternatives: Vec<String> = Vec::new();
    // The customer scope, as a subquery over customer (the same clause the customer list uses); its
    // values are bound in the order the clause numbers them.
    let mut scope_clauses = Vec::new();
    crate::customers::scope_clause(scope, next, &mut scope_clauses);
    if let Some(owner) = &scope.owner_id {
        binds.push(Bind::Text(owner.clone()));
    }
    for team in scope.teams.iter().flatten() {
        binds.push(Bind::Text(team.clone()));
    }
    if let Some(user) = &scope.linked_user {
        binds.push(Bind::Text(user.clone()));
    }
    let scope_sql = if scope_clauses.is_empty() {
        "1 = 1".to_owned()
    } else {
        scope_clauses.join(" AND ")
    };
    alternatives.push(format!(
        "customer_id IN (SELECT id FROM customer WHERE {scope_sql})"
    ));
    if let Some(assignee) = &visibility.assignee {
        let slot = placeholder(binds, next, Bind::Text(assignee.clone()));
        alternatives.push(format!("assignee_id = {slot}"));
    }
    if !visibility.assignee_teams.is_empty() {
        let slots: Vec<String> = visibility
            .assignee_teams
            .iter()
            .map(|team| placeholder(binds, next, Bind::Text(team.clone())))
            .collect();
        alternatives.push(format!(
            "assignee_id IN (SELECT id FROM app_user WHERE team IN ({}))",
            slots.join(", ")
        ));
    }
    Some(format!("({})", alternatives.join(" OR ")))
}

impl Store {
    /// Opens a ticket: the row, its first status entry, the service link of its assignee (if any) and the audit
    /// entries, in one transaction.
    pub async fn insert_ticket(
        &self,
        row: &TicketRow,
        opened: &StatusChangeRow,
        link: Option<&ServiceLink>,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO ticket ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, $22)"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&sql)
                .bind(&row.id)
                .bind(&row.customer_id)
                .bind(&row.channel)
                .bind(&row.category)
                .bind(&row.priority)
                .bind(&row.status)
                .bind(&row.subject_masked)
                .bind(&row.subject_spans_ct)
                .bind(&row.subject_span_index)
                .bind(&row.description_masked)
                .bind(&row.description_spans_ct)
                .bind(&row.description_span_index)
                .bind(&row.assignee_id)
                .bind(&row.assigned_by)
                .bind(&row.created_by)
                .bind(row.first_response_due_at)
                .bind(row.resolution_due_at)
                .bind(row.first_responded_at)
                .bind(row.resolved_at)
                .bind(row.closed_at)
                .bind(row.created_at)
                .bind(row.updated_at)
                .execute(&mut *tx)
                .await?;
            insert_status_change!(tx, opened);
            if let Some(link) = link {
                link_in!(tx, link, row.created_at);
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Writes a ticket's changeable columns, provided nobody changed it since `expected_updated_at`; with the
    /// status change, service link and audit entries, in one transaction.
    pub async fn update_ticket(
        &self,
        row: &TicketRow,
        expected_updated_at: i64,
        change: Option<&StatusChangeRow>,
        link: Option<&ServiceLink>,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        self.update_ticket_with_survey(row, expected_updated_at, change, link, None, audit)
            .await
            .map(|_| ())
    }

    /// [`Store::update_ticket`], also recording the CSAT survey a resolution or closing creates, with its own
    /// audit entry, in the same transaction. A ticket has at most one survey: when it already has one, the new
    /// survey and its entry are skipped and the result is `false`.
    pub async fn update_ticket_with_survey(
        &self,
        row: &TicketRow,
        expected_updated_at: i64,
        change: Option<&StatusChangeRow>,
        link: Option<&ServiceLink>,
        survey: Option<(&crate::feedback::SurveyRow, &crate::AuditEvent)>,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        let (affected, surveyed) = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected = sqlx::query(
                "UPDATE ticket SET category = $2, priority = $3, status = $4, assignee_id = $5, assigned_by = $6, \
                 first_response_due_at = $7, resolution_due_at = $8, first_responded_at = $9, resolved_at = $10, \
                 closed_at = $11, updated_at = $12 WHERE id = $1 AND updated_at = $13",
            )
            .bind(&row.id)
            .bind(&row.category)
            .bind(&row.priority)
            .bind(&row.status)
            .bind(&row.assignee_id)
            .bind(&row.assigned_by)
            .bind(row.first_response_due_at)
            .bind(row.resolution_due_at)
            .bind(row.first_responded_at)
            .bind(row.resolved_at)
            .bind(row.closed_at)
            .bind(row.updated_at)
            .bind(expected_updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if affected == 1 {
                if let Some(change) = change {
                    insert_status_change!(tx, change);
                }
                if let Some(link) = link {
                    link_in!(tx, link, row.updated_at);
                }
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            let mut surveyed = false;
            if let (1, Some((survey, entry))) = (affected, survey) {
                surveyed = crate::feedback::bind_survey!(survey)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if surveyed {
                    crate::audit::append_in(&mut *tx, std::slice::from_ref(entry)).await?;
                }
            }
            tx.commit().await?;
            Ok::<(u64, bool), StoreError>((affected, surveyed))
        })?;
        if affected == 1 {
            Ok(surveyed)
        } else {
            Err(StoreError::StaleWrite)
        }
    }

    /// Adds a comment; the first comment stops the ticket's first-response timer. One transaction with the audit
    /// entries.
    pub async fn insert_ticket_comment(
        &self,
        comment: &TicketCommentRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO ticket_comment (id, ticket_id, author_id, body_masked, spans_ct, span_index, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&comment.id)
            .bind(&comment.ticket_id)
            .bind(&comment.author_id)
            .bind(&comment.body_masked)
            .bind(&comment.spans_ct)
            .bind(&comment.span_index)
            .bind(comment.created_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE ticket SET first_responded_at = COALESCE(first_responded_at, $2), updated_at = $2 WHERE id = $1",
            )
            .bind(&comment.ticket_id)
            .bind(comment.created_at)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// One ticket.
    pub async fn ticket(&self, id: &str) -> StoreResult<Option<TicketRow>> {
        let sql = format!("SELECT {COLUMNS} FROM ticket WHERE id = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| ticket_from_row!(row))
        });
        Ok(row.transpose()?)
    }

    /// Tickets visible under `visibility` that pass `filter`, newest first.
    pub async fn list_tickets(
        &self,
        visibility: &TicketVisibility,
        filter: &TicketFilter,
    ) -> StoreResult<Vec<TicketRow>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut next = 1usize;
        if let Some(clause) = visibility_clause(visibility, &mut next, &mut binds) {
            clauses.push(clause);
        }
        if let Some(status) = &filter.status {
            let slot = placeholder(&mut binds, &mut next, Bind::Text(status.clone()));
            clauses.push(format!("status = {slot}"));
        }
        if let Some(priority) = &filter.priority {
            let slot = placeholder(&mut binds, &mut next, Bind::Text(priority.clone()));
            clauses.push(format!("priority = {slot}"));
        }
        if let Some(assignee) = &filter.assignee {
            let slot = placeholder(&mut binds, &mut next, Bind::Text(assignee.clone()));
            clauses.push(format!("assignee_id = {slot}"));
        }
        if let Some(customer) = &filter.customer {
            let slot = placeholder(&mut binds, &mut next, Bind::Text(customer.clone()));
            clauses.push(format!("customer_id = {slot}"));
        }
        if let Some(breached) = filter.breached {
            let now = placeholder(&mut binds, &mut next, Bind::Int(filter.now));
            let condition = format!(
                "(COALESCE(first_responded_at, {now}) > first_response_due_at \
                 OR COALESCE(resolved_at, {now}) > resolution_due_at \
                 OR EXISTS (SELECT 1 FROM ticket_escalation e WHERE e.ticket_id = ticket.id))"
            );
            clauses.push(if breached {
                condition
            } else {
                format!("NOT {condition}")
            });
        }
        if let Some(before) = &filter.before_id {
            let slot = placeholder(&mut binds, &mut next, Bind::Text(before.clone()));
            clauses.push(format!("id < {slot}"));
        }
        let limit = placeholder(&mut binds, &mut next, Bind::Int(filter.limit));
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql =
            format!("SELECT {COLUMNS} FROM ticket {where_sql} ORDER BY id DESC LIMIT {limit}");
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql);
            for bind in &binds {
                query = match bind {
                    Bind::Text(text) => query.bind(text.as_str()),
                    Bind::Int(number) => query.bind(*number),
                };
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| ticket_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// A customer's tickets, newest first by `(created_at, id)`, strictly before `before` (for the timeline).
    pub async fn customer_tickets_by_time(
        &self,
        customer_id: &str,
        before: Option<&TimeCursor>,
        limit: i64,
    ) -> StoreResult<Vec<TicketRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM ticket WHERE customer_id = $1 \
             AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(customer_id)
                .bind(before.map(|cursor| cursor.at))
                .bind(before.map(|cursor| cursor.id.as_str()).unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| ticket_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// A ticket's status history, oldest first.
    pub async fn ticket_status_history(
        &self,
        ticket_id: &str,
    ) -> StoreResult<Vec<StatusChangeRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, ticket_id, from_status, to_status, actor_id, created_at FROM ticket_status_change \
                 WHERE ticket_id = $1 ORDER BY id",
            )
            .bind(ticket_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<StatusChangeRow, sqlx::Error> {
                Ok(StatusChangeRow {
                    id: row.try_get("id")?,
                    ticket_id: row.try_get("ticket_id")?,
                    from_status: row.try_get("from_status")?,
                    to_status: row.try_get("to_status")?,
                    actor_id: row.try_get("actor_id")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// A ticket's comments, oldest first.
    pub async fn ticket_comments(&self, ticket_id: &str) -> StoreResult<Vec<TicketCommentRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, ticket_id, author_id, body_masked, spans_ct, span_index, created_at FROM ticket_comment \
                 WHERE ticket_id = $1 ORDER BY id",
            )
            .bind(ticket_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<TicketCommentRow, sqlx::Error> {
                Ok(TicketCommentRow {
                    id: row.try_get("id")?,
                    ticket_id: row.try_get("ticket_id")?,
                    author_id: row.try_get("author_id")?,
                    body_masked: row.try_get("body_masked")?,
                    spans_ct: row.try_get("spans_ct")?,
                    span_index: row.try_get("span_index")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// A ticket's escalations, oldest first.
    pub async fn ticket_escalations(&self, ticket_id: &str) -> StoreResult<Vec<EscalationRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT ticket_id, timer, escalated_to, assignee_id, due_at, created_at FROM ticket_escalation \
                 WHERE ticket_id = $1 ORDER BY created_at, timer",
            )
            .bind(ticket_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<EscalationRow, sqlx::Error> {
                Ok(EscalationRow {
                    ticket_id: row.try_get("ticket_id")?,
                    timer: row.try_get("timer")?,
                    escalated_to: row.try_get("escalated_to")?,
                    assignee_id: row.try_get("assignee_id")?,
                    due_at: row.try_get("due_at")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Unresolved tickets with a timer past due at `now` that has not been escalated yet, oldest first.
    pub async fn ticket_breach_candidates(
        &self,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<TicketRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM ticket WHERE resolved_at IS NULL AND closed_at IS NULL AND ( \
             (first_responded_at IS NULL AND first_response_due_at <= $1 AND NOT EXISTS \
               (SELECT 1 FROM ticket_escalation e WHERE e.ticket_id = ticket.id AND e.timer = 'first_response')) \
             OR (resolution_due_at <= $1 AND NOT EXISTS \
               (SELECT 1 FROM ticket_escalation e WHERE e.ticket_id = ticket.id AND e.timer = 'resolution'))) \
             ORDER BY id LIMIT $2"
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| ticket_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Records an escalation with its audit entries; `false` (nothing written) when this ticket's timer was
    /// already escalated, by this server or another.
    pub async fn insert_ticket_escalation(
        &self,
        escalation: &EscalationRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO ticket_escalation (ticket_id, timer, escalated_to, assignee_id, due_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ticket_id, timer) DO NOTHING",
            )
            .bind(&escalation.ticket_id)
            .bind(&escalation.timer)
            .bind(&escalation.escalated_to)
            .bind(&escalation.assignee_id)
            .bind(escalation.due_at)
            .bind(escalation.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Advances `team`'s round-robin cursor and returns the new position (0 on first use). One statement, so two
    /// servers never get the same position.
    pub async fn next_round_robin(&self, team: &str, now: i64) -> StoreResult<i64> {
        let position = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO ticket_assignment_cursor (team, position, updated_at) VALUES ($1, 0, $2) \
                 ON CONFLICT (team) DO UPDATE SET position = ticket_assignment_cursor.position + 1, updated_at = $2 \
                 RETURNING position",
            )
            .bind(team)
            .bind(now)
            .fetch_one(pool)
            .await
        })?;
        Ok(position)
    }

    /// Active users of `role` in `team`, by id.
    pub async fn active_users_in_team(&self, role: &str, team: &str) -> StoreResult<Vec<String>> {
        let ids = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT id FROM app_user WHERE role = $1 AND team = $2 AND disabled = $3 ORDER BY id",
            )
            .bind(role)
            .bind(team)
            .bind(false)
            .fetch_all(pool)
            .await
        })?;
        Ok(ids)
    }

    /// Active users of `role`, by id.
    pub async fn active_users_with_role(&self, role: &str) -> StoreResult<Vec<String>> {
        let ids = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT id FROM app_user WHERE role = $1 AND disabled = $2 ORDER BY id",
            )
            .bind(role)
            .bind(false)
            .fetch_all(pool)
            .await
        })?;
        Ok(ids)
    }

    /// The active service user with `skill` (in `team`, when given) holding the fewest unresolved tickets; ties go
    /// to the lowest id.
    pub async fn least_loaded_with_skill(
        &self,
        skill: &str,
        team: Option<&str>,
    ) -> StoreResult<Option<String>> {
        let id = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT u.id FROM app_user u JOIN user_skill s ON s.user_id = u.id \
                 WHERE s.skill = $1 AND u.role = 'service' AND u.disabled = $2 AND ($3 IS NULL OR u.team = $3) \
                 ORDER BY (SELECT COUNT(*) FROM ticket t WHERE t.assignee_id = u.id AND t.resolved_at IS NULL \
                   AND t.closed_at IS NULL), u.id LIMIT 1",
            )
            .bind(skill)
            .bind(false)
            .bind(team)
            .fetch_optional(pool)
            .await
        })?;
        Ok(id)
    }

    /// Replaces a user's skills, with the audit entries, in one transaction.
    pub async fn set_user_skills(
        &self,
        user_id: &str,
        skills: &[String],
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM user_skill WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for skill in skills {
                sqlx::query(
                    "INSERT INTO user_skill (user_id, skill, created_at) VALUES ($1, $2, $3)",
                )
                .bind(user_id)
                .bind(skill)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// A user's skills, sorted.
    pub async fn user_skills(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let skills = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT skill FROM user_skill WHERE user_id = $1 ORDER BY skill",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(skills)
    }
}
