//! Tickets (咨询/投诉): a customer's inquiry or complaint with a channel, category and priority, assigned to
//! staff by an explicit choice or a rule, timed against SLA targets, and escalated when a target is missed.
//!
//! - **Visibility.** Staff who can see the customer see its tickets; a user sees the tickets assigned to them;
//!   a manager sees the tickets assigned to members of their team tree. Outside that, a ticket is 404.
//! - **Assignment.** An explicit assignee, else a rule: `owner` (the customer's owner, the default),
//!   `round_robin` (the active `service` users of a team in turn; the cursor is a database row advanced by one
//!   `… RETURNING` statement, so it survives restarts and two servers never hand out the same turn) or `skill`
//!   (the least-loaded active `service` user whose skills include the ticket's category). Assigning a `service`
//!   user links them to the customer (`customer_service_link`), which is what gives them access to it.
//! - **SLA.** Each priority has a first-response and a resolution target ([`SlaTargets`]); the due times are
//!   fixed when the ticket is opened (and recomputed from its creation when the priority changes). The first
//!   comment stops the first-response timer, resolution (or closing) stops both.
//! - **Escalation.** [`Veil::escalate_ticket_breaches`] finds timers past due, records one escalation per ticket
//!   and timer (to the manager of the assignee's team, walking up the team tree; with none, to the admins),
//!   audits it in the same transaction and raises a `ticket_sla_breach` alert through the security-alert
//!   channels. `veil serve` runs it periodically ([`Veil::spawn_ticket_sla`]).
//! - **Free text.** Subject, description and comments are masked like customer notes
//!   ([`crate::notes::mask_text`]), their originals sealed under the customer's data key.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{
    EscalationRow, ServiceLink, StatusChangeRow, TicketCommentRow, TicketFilter, TicketRow,
    TicketVisibility, UserRow,
};

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::notes::{mask_text, parse_span_index, MaskedSpan, MAX_NOTE_CHARS};
use crate::users::{Actor, Role};
use crate::{format_time, now_ms, Veil};

/// Longest accepted subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a stable name.
            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|value| value.as_str() == text)
            }
        }
    };
}

string_enum!(
    /// Where the ticket came in.
    TicketChannel {
        /// A phone call.
        Phone => "phone",
        /// An email.
        Email => "email",
        /// The web site.
        Web => "web",
        /// WeChat.
        Wechat => "wechat",
        /// In a store.
        Store => "store",
    }
);

string_enum!(
    /// What the ticket is about; also the skill that assignment by skill looks for.
    TicketCategory {
        /// A question (咨询).
        Inquiry => "inquiry",
        /// A complaint (投诉).
        Complaint => "complaint",
        /// After-sales service.
        AfterSales => "after_sales",
        /// Billing and payments.
        Billing => "billing",
        /// Technical problems.
        Technical => "technical",
        /// Anything else.
        Other => "other",
    }
);

string_enum!(
    /// How urgent: decides the SLA targets.
    TicketPriority {
        /// Low.
        Low => "low",
        /// Normal (the default).
        Normal => "normal",
        /// High.
        High => "high",
        /// Urgent.
        Urgent => "urgent",
    }
);

string_enum!(
    /// Where the ticket stands: `open` → `in_progress` → `resolved` → `closed`; `reopened` from resolved or
    /// closed.
    TicketStatus {
        /// New.
        Open => "open",
        /// Being worked on.
        InProgress => "in_progress",
        /// Solved (stops the resolution timer).
        Resolved => "resolved",
        /// Done.
        Closed => "closed",
        /// Opened again after being resolved or closed.
        Reopened => "reopened",
    }
);

string_enum!(
    /// How to choose an assignee when none is named.
    AssignRule {
        /// The customer's owner.
        Owner => "owner",
        /// The active service users of a team, in turn.
        RoundRobin => "round_robin",
        /// The least-loaded active service user with the ticket's category as a skill.
        Skill => "skill",
    }
);

/// Whether a ticket may move from `from` to `to`.
pub fn transition_allowed(from: TicketStatus, to: TicketStatus) -> bool {
    use TicketStatus::*;
    matches!(
        (from, to),
        (Open | Reopened, InProgress | Resolved | Closed)
            | (InProgress, Resolved | Closed)
            | (Resolved, Closed | Reopened | InProgress)
            | (Closed, Reopened)
    )
}

/// One priority's SLA targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTarget {
    /// Time to the first staff response, ms.
    pub first_response_ms: i64,
    /// Time to resolution, ms.
    pub resolution_ms: i64,
}

/// SLA targets per priority (calendar time; business hours are not modelled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaTargets {
    /// `urgent`.
    pub urgent: SlaTarget,
    /// `high`.
    pub high: SlaTarget,
    /// `normal`.
    pub normal: SlaTarget,
    /// `low`.
    pub low: SlaTarget,
}

/// The documented default of `VEIL_TICKET_SLA`.
pub const DEFAULT_SLA: &str = "urgent=15m/4h,high=1h/8h,normal=4h/24h,low=8h/72h";

impl Default for SlaTargets {
    fn default() -> Self {
        let target = |first_response_ms, resolution_ms| SlaTarget {
            first_response_ms,
            resolution_ms,
        };
        SlaTargets {
            urgent: target(15 * MINUTE_MS, 4 * HOUR_MS),
            high: target(HOUR_MS, 8 * HOUR_MS),
            normal: target(4 * HOUR_MS, 24 * HOUR_MS),
            low: target(8 * HOUR_MS, 72 * HOUR_MS),
        }
    }
}

fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok().filter(|number| *number > 0)?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => 24 * HOUR_MS,
        _ => return None,
    };
    number.checked_mul(unit_ms)
}

impl SlaTargets {
    /// Parses `priority=FIRST/RESOLUTION,…` (durations like `15m`, `4h`, `3d`); priorities left out keep their
    /// defaults. The first-response target may not exceed the resolution target.
    pub fn parse(text: &str) -> Result<SlaTargets, String> {
        let mut targets = SlaTargets::default();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let (name, times) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected PRIORITY=FIRST/RESOLUTION"))?;
            let priority = TicketPriority::parse(name.trim())
                .ok_or_else(|| format!("`{name}`: priority must be low, normal, high or urgent"))?;
            let (first, resolution) = times
                .split_once('/')
                .ok_or_else(|| format!("`{part}`: expected FIRST/RESOLUTION, e.g. 1h/8h"))?;
            let invalid = |what: &str| format!("`{what}`: a duration is a number and s, m, h or d");
            let target = SlaTarget {
                first_response_ms: parse_duration(first).ok_or_else(|| invalid(first))?,
                resolution_ms: parse_duration(resolution).ok_or_else(|| invalid(resolution))?,
            };
            if target.first_response_ms > target.resolution_ms {
                return Err(format!(
                    "`{part}`: the first-response target exceeds the resolution target"
                ));
            }
            *targets.for_priority_mut(priority) = target;
        }
        Ok(targets)
    }

    /// The targets of `priority`.
    pub fn for_priority(&self, priority: TicketPriority) -> SlaTarget {
        match priority {
            TicketPriority::Urgent => self.urgent,
            TicketPriority::High => self.high,
            TicketPriority::Normal => self.normal,
            TicketPriority::Low => self.low,
        }
    }

    fn for_priority_mut(&mut self, priority: TicketPriority) -> &mut SlaTarget {
        match priority {
            TicketPriority::Urgent => &mut self.urgent,
            TicketPriority::High => &mut self.high,
            TicketPriority::Normal => &mut self.normal,
            TicketPriority::Low => &mut self.low,
        }
    }
}

/// A new ticket.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketInput {
    /// The customer it concerns.
    pub customer_id: String,
    /// Where it came in.
    pub channel: TicketChannel,
    /// What it is about.
    pub category: TicketCategory,
    /// Default `normal`.
    #[serde(default)]
    pub priority: Option<TicketPriority>,
    /// One line (at most 200 characters); personal data in it is masked.
    pub subject: String,
    /// Free text; personal data in it is masked, its originals sealed.
    #[serde(default)]
    pub description: Option<String>,
    /// Assign to this user (id); otherwise `assign_by` decides.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The assignment rule when no assignee is named (default `owner`).
    #[serde(default)]
    pub assign_by: Option<AssignRule>,
    /// The team for `round_robin` (default: the customer's team) or to narrow `skill`.
    #[serde(default)]
    pub team: Option<String>,
}

impl std::fmt::Debug for TicketInput {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TicketInput")
            .field("customer_id", &self.customer_id)
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

/// A change of status, priority or category.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    /// New status (see the allowed transitions).
    #[serde(default)]
    pub status: Option<TicketStatus>,
    /// New priority: the due times are recomputed from the ticket's creation.
    #[serde(default)]
    pub priority: Option<TicketPriority>,
    /// New category.
    #[serde(default)]
    pub category: Option<TicketCategory>,
}

/// A (re)assignment.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    /// Assign to this user (id); otherwise `assign_by` decides.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The rule when no assignee is named (default `owner`).
    #[serde(default)]
    pub assign_by: Option<AssignRule>,
    /// The team for `round_robin` or to narrow `skill`.
    #[serde(default)]
    pub team: Option<String>,
}

/// A new comment.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    /// Free text; personal data in it is masked, its originals sealed.
    pub body: String,
}

impl std::fmt::Debug for CommentInput {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CommentInput(<redacted>)")
    }
}

/// A ticket's SLA timers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SlaView {
    /// First-response deadline (RFC 3339).
    pub first_response_due: String,
    /// When staff first commented.
    pub first_responded_at: Option<String>,
    /// The first response came (or is still missing) after its deadline, or the timer was escalated.
    pub first_response_breached: bool,
    /// Resolution deadline (RFC 3339).
    pub resolution_due: String,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// Resolution came (or is still missing) after its deadline, or the timer was escalated.
    pub resolution_breached: bool,
}

/// An escalation of a missed SLA target.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EscalationView {
    /// `first_response` or `resolution`.
    pub timer: String,
    /// `manager` or `admins`.
    pub to: String,
    /// The manager's user id (absent when it went to the admins).
    pub escalated_to: Option<String>,
    /// The missed deadline (RFC 3339).
    pub due: String,
    /// When it was escalated (RFC 3339).
    pub at: String,
}

/// One status change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusChangeView {
    /// Previous status (absent for the opening).
    pub from: Option<String>,
    /// New status.
    pub to: String,
    /// Who (user id).
    pub by: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// A comment as readers see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommentView {
    /// Comment id.
    pub id: String,
    /// Who (user id).
    pub author: Option<String>,
    /// The text, personal data masked in place.
    pub body: String,
    /// Masked spans in `body`.
    pub pii: Vec<MaskedSpan>,
    /// RFC 3339.
    pub created_at: String,
}

/// A ticket as readers see it (masked).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TicketView {
    /// Ticket id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// Channel.
    pub channel: String,
    /// Category.
    pub category: String,
    /// Priority.
    pub priority: String,
    /// Status.
    pub status: String,
    /// Subject, masked.
    pub subject: String,
    /// Masked spans in `subject`.
    pub subject_pii: Vec<MaskedSpan>,
    /// Description, masked.
    pub description: String,
    /// Masked spans in `description`.
    pub description_pii: Vec<MaskedSpan>,
    /// Assignee (user id).
    pub assignee: Option<String>,
    /// `explicit`, `owner`, `round_robin` or `skill`.
    pub assigned_by: Option<String>,
    /// Who opened it (user id).
    pub created_by: Option<String>,
    /// SLA timers.
    pub sla: SlaView,
    /// Any timer breached.
    pub breached: bool,
    /// Escalations so far.
    pub escalations: Vec<EscalationView>,
    /// Status history, oldest first (single-ticket reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<StatusChangeView>>,
    /// Comments, oldest first (single-ticket reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Vec<CommentView>>,
    /// The CSAT survey this change created (only in the response of the resolution or closing that created
    /// it): its public link, for the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat_survey: Option<crate::feedback::SurveyLink>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A page of tickets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TicketPage {
    /// Newest first.
    pub items: Vec<TicketView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The tickets `actor` sees, given their customer scope: admins all; others the tickets of customers in scope,
/// those assigned to them, and (managers) those assigned to members of their team tree.
pub(crate) fn ticket_visibility(
    actor: &Actor,
    scope: veil_store::CustomerScope,
) -> TicketVisibility {
    if actor.role == Role::Admin {
        TicketVisibility::default()
    } else {
        TicketVisibility {
            assignee: Some(actor.user_id.to_string()),
            assignee_teams: if actor.role == Role::Manager {
                scope.teams.clone().unwrap_or_default()
            } else {
                Vec::new()
            },
            customers: Some(scope),
        }
    }
}

/// Ticket list filters.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this priority.
    pub priority: Option<String>,
    /// Only tickets assigned to this user id.
    pub assignee: Option<String>,
    /// Only this customer's tickets.
    pub customer: Option<String>,
    /// Only breached (`true`) or unbreached (`false`) tickets.
    pub breached: Option<bool>,
    /// The last id of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200.
    pub limit: u32,
}

fn comment_view(row: TicketCommentRow) -> CommentView {
    CommentView {
        pii: parse_span_index(&row.span_index),
        id: row.id,
        author: row.author_id,
        body: row.body_masked,
        created_at: format_time(row.created_at),
    }
}

fn ticket_view(row: TicketRow, escalations: Vec<EscalationRow>, now: i64) -> TicketView {
    let escalated = |timer: &str| {
        escalations
            .iter()
            .any(|escalation| escalation.timer == timer)
    };
    let first_response_breached = row.first_responded_at.unwrap_or(now) > row.first_response_due_at
        || escalated("first_response");
    let resolution_breached =
        row.resolved_at.unwrap_or(now) > row.resolution_due_at || escalated("resolution");
    TicketView {
        subject_pii: parse_span_index(&row.subject_span_index),
        description_pii: parse_span_index(&row.description_span_index),
        id: row.id,
        customer_id: row.customer_id,
        channel: row.channel,
        category: row.category,
        priority: row.priority,
        status: row.status,
        subject: row.subject_masked,
        description: row.description_masked,
        assignee: row.assignee_id,
        assigned_by: row.assigned_by,
        created_by: row.created_by,
        sla: SlaView {
            first_response_due: format_time(row.first_response_due_at),
            first_responded_at: row.first_responded_at.map(format_time),
            first_response_breached,
            resolution_due: format_time(row.resolution_due_at),
            resolved_at: row.resolved_at.map(format_time),
            resolution_breached,
        },
        breached: first_response_breached || resolution_breached,
        escalations: escalations
            .into_iter()
            .map(|escalation| EscalationView {
                to: if escalation.escalated_to.is_some() {
                    "manager".to_owned()
                } else {
                    "admins".to_owned()
                },
                timer: escalation.timer,
                escalated_to: escalation.escalated_to,
                due: format_time(escalation.due_at),
                at: format_time(escalation.created_at),
            })
            .collect(),
        history: None,
        comments: None,
        csat_survey: None,
        created_at: format_time(row.created_at),
        updated_at: format_time(row.updated_at),
    }
}

/// A lost optimistic-concurrency race is a conflict the caller can retry.
fn stale_to_conflict(error: veil_store::StoreError) -> AppError {
    match error {
        veil_store::StoreError::StaleWrite => AppError::Conflict(
            "the ticket was changed by someone else; reload and retry".to_owned(),
        ),
        other => other.into(),
    }
}

fn invalid(field: &str, code: &str, message: &str) -> AppError {
    AppError::Validation(vec![FieldError::new(field, code, message)])
}

fn status_change(
    ticket_id: &str,
    from: Option<&str>,
    to: &str,
    actor: &Actor,
    at: i64,
) -> StatusChangeRow {
    StatusChangeRow {
        id: uuid::Uuid::now_v7().to_string(),
        ticket_id: ticket_id.to_owned(),
        from_status: from.map(str::to_owned),
        to_status: to.to_owned(),
        actor_id: Some(actor.user_id.to_string()),
        created_at: at,
    }
}

/// The assignee chosen for a ticket and how.
struct Assignment {
    user: Option<UserRow>,
    how: &'static str,
}

impl Veil {
    /// The SLA targets new tickets are timed against.
    pub fn sla_targets(&self) -> Arc<SlaTargets> {
        self.sla_targets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the SLA targets (from `VEIL_TICKET_SLA`).
    pub fn set_sla_targets(&self, targets: SlaTargets) {
        *self
            .sla_targets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(targets);
    }

    /// Whether `actor` sees `ticket`: they see its customer, it is assigned to them, or (managers) it is
    /// assigned to someone in their team tree.
    async fn ticket_visible(&self, actor: &Actor, ticket: &TicketRow) -> AppResult<bool> {
        let me = actor.user_id.to_string();
        if ticket.assignee_id.as_deref() == Some(me.as_str()) {
            return Ok(true);
        }
        let scope = self.customer_scope(actor).await?;
        if let Some(customer) = self.store().masked_customer(&ticket.customer_id).await? {
            let linked = match &scope.linked_user {
                Some(user) => self.store().is_linked(&customer.id, user).await?,
                None => true,
            };
            if linked && crate::authz::in_scope(&scope, &customer.profile) {
                return Ok(true);
            }
        }
        if actor.role == Role::Manager {
            if let (Some(teams), Some(assignee)) = (&scope.teams, &ticket.assignee_id) {
                let team = self
                    .store()
                    .user_by_id(assignee)
                    .await?
                    .and_then(|user| user.team);
                if team.is_some_and(|team| teams.contains(&team)) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The ticket `id` if `actor` may perform `action` on it. Roles that never work with tickets are refused
    /// (403) before the lookup, so they learn nothing about which tickets exist; then a ticket the caller does
    /// not see is 404, and an action their role may not take on it is 403.
    async fn ticket_for(&self, actor: &Actor, id: &str, action: Action) -> AppResult<TicketRow> {
        if crate::authz::role_permits(actor.role, Action::TicketRead).is_err() {
            self.permit_recorded(actor, Action::TicketRead, None)
                .await?;
        }
        let ticket = self.store().ticket(id).await?.ok_or(AppError::NotFound)?;
        if !self.ticket_visible(actor, &ticket).await? {
            self.record_denial(
                actor,
                action,
                Some(&ticket.customer_id),
                "outside the caller's scope",
            )
            .await;
            return Err(AppError::NotFound);
        }
        self.permit_recorded(actor, action, Some(&ticket.customer_id))
            .await?;
        Ok(ticket)
    }

    async fn escalations_view(&self, row: TicketRow, now: i64) -> AppResult<TicketView> {
        let escalations = self.store().ticket_escalations(&row.id).await?;
        Ok(ticket_view(row, escalations, now))
    }

    /// Chooses the assignee: the named user, or the rule's choice.
    async fn choose_assignee(
        &self,
        customer: &veil_store::MaskedCustomerRow,
        category: &str,
        assignee: Option<&str>,
        rule: Option<AssignRule>,
        team: Option<&str>,
    ) -> AppResult<Assignment> {
        if let Some(assignee) = assignee {
            let user = self
                .store()
                .user_by_id(assignee)
                .await?
                .filter(|user| {
                    !user.disabled
                        && matches!(
                            user.role.as_str(),
                            "admin" | "manager" | "sales" | "service"
                        )
                })
                .ok_or_else(|| {
                    invalid(
                        "assignee",
                        "not_staff",
                        "no such active admin, manager, salesperson or service user",
                    )
                })?;
            return Ok(Assignment {
                user: Some(user),
                how: "explicit",
            });
        }
        match rule.unwrap_or(AssignRule::Owner) {
            AssignRule::Owner => {
                let user = match &customer.profile.owner_id {
                    Some(owner) => self
                        .store()
                        .user_by_id(owner)
                        .await?
                        .filter(|user| !user.disabled),
                    None => None,
                };
                Ok(Assignment { user, how: "owner" })
            }
            AssignRule::RoundRobin => {
                let team = team
                    .map(str::to_owned)
                    .or_else(|| customer.profile.team.clone())
                    .ok_or_else(|| {
                        invalid(
                            "team",
                            "required",
                            "round-robin needs a team (the customer has none)",
                        )
                    })?;
                let members = self
                    .store()
                    .active_users_in_team(Role::Service.as_str(), &team)
                    .await?;
                if members.is_empty() {
                    return Err(invalid(
                        "team",
                        "no_service_users",
                        "the team has no active service users",
                    ));
                }
                let position = self.store().next_round_robin(&team, now_ms()).await?;
                let chosen = &members[position.rem_euclid(members.len() as i64) as usize];
                Ok(Assignment {
                    user: self.store().user_by_id(chosen).await?,
                    how: "round_robin",
                })
            }
            AssignRule::Skill => {
                let chosen = self
                    .store()
                    .least_loaded_with_skill(category, team)
                    .await?
                    .ok_or_else(|| {
                        invalid(
                            "assign_by",
                            "no_skilled_user",
                            "no active service user has this category as a skill",
                        )
                    })?;
                Ok(Assignment {
                    user: self.store().user_by_id(&chosen).await?,
                    how: "skill",
                })
            }
        }
    }

    /// The service link an assignment creates (service users only) and its audit entry.
    fn link_for(
        actor: &Actor,
        ticket: &TicketRow,
        user: Option<&UserRow>,
    ) -> Option<(ServiceLink, veil_store::AuditEvent)> {
        let user = user.filter(|user| user.role == Role::Service.as_str())?;
        let link = ServiceLink {
            customer_id: ticket.customer_id.clone(),
            user_id: user.id.clone(),
            reason: format!("ticket {}", ticket.id),
        };
        let entry = crate::audit::event(
            Some(actor),
            "customer.link_service",
            crate::audit::Outcome::Ok,
        )
        .customers([ticket.customer_id.clone()])
        .detail(serde_json::json!({"service_user": user.id, "ticket_id": ticket.id}));
        Some((link, entry))
    }

    /// Opens a ticket about a customer the caller can see, assigns it and starts its SLA timers.
    pub async fn create_ticket(&self, actor: &Actor, input: &TicketInput) -> AppResult<TicketView> {
        self.permit_recorded(actor, Action::TicketWrite, None)
            .await?;
        let mut errors = Vec::new();
        let subject = input.subject.trim();
        if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
            errors.push(FieldError::new(
                "subject",
                "invalid_length",
                format!("must be 1 to {MAX_SUBJECT_CHARS} characters"),
            ));
        }
        let description = input.description.clone().unwrap_or_default();
        if description.chars().count() > MAX_NOTE_CHARS {
            errors.push(FieldError::new(
                "description",
                "invalid_length",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            ));
        }
        let customer_id: Option<crate::CustomerId> = input.customer_id.parse().ok();
        if customer_id.is_none() {
            errors.push(FieldError::new(
                "customer_id",
                "invalid",
                "not a customer id",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let customer_id = customer_id.map(|id| id.to_string()).unwrap_or_default();
        let customer = self
            .customer_for(actor, &customer_id, Action::TicketWrite)
            .await?;
        if input.assignee.is_some() || input.assign_by.is_some() {
            self.permit_recorded(actor, Action::TicketAssign, Some(&customer.id))
                .await?;
        }
        let category = input.category.as_str();
        let assignment = self
            .choose_assignee(
                &customer,
                category,
                input.assignee.as_deref(),
                input.assign_by,
                input.team.as_deref(),
            )
            .await?;
        let now = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let priority = input.priority.unwrap_or(TicketPriority::Normal);
        let target = self.sla_targets().for_priority(priority);
        let subject = mask_text(subject);
        let description = mask_text(&description);
        let subject_spans_ct = self
            .seal_originals(&customer.id, &subject, "ticket", &id, "subject")
            .await?;
        let description_spans_ct = self
            .seal_originals(&customer.id, &description, "ticket", &id, "description")
            .await?;
        let row = TicketRow {
            id: id.clone(),
            customer_id: customer.id.clone(),
            channel: input.channel.as_str().to_owned(),
            category: category.to_owned(),
            priority: priority.as_str().to_owned(),
            status: TicketStatus::Open.as_str().to_owned(),
            subject_span_index: subject.span_index_json(),
            subject_masked: subject.body.clone(),
            subject_spans_ct,
            description_span_index: description.span_index_json(),
            description_masked: description.body.clone(),
            description_spans_ct,
            assignee_id: assignment.user.as_ref().map(|user| user.id.clone()),
            assigned_by: assignment.user.as_ref().map(|_| assignment.how.to_owned()),
            created_by: Some(actor.user_id.to_string()),
            first_response_due_at: now + target.first_response_ms,
            resolution_due_at: now + target.resolution_ms,
            first_responded_at: None,
            resolved_at: None,
            closed_at: None,
            created_at: now,
            updated_at: now,
        };
        let opened = status_change(&id, None, TicketStatus::Open.as_str(), actor, now);
        let mut entries = vec![crate::audit::event(
            Some(actor),
            "ticket.create",
            crate::audit::Outcome::Ok,
        )
        .customers([row.customer_id.clone()])
        .detail(serde_json::json!({
            "ticket_id": row.id, "channel": row.channel, "category": row.category, "priority": row.priority,
            "assignee": row.assignee_id, "assigned_by": row.assigned_by,
            "pii_spans": subject.spans.len() + description.spans.len(),
        }))];
        let link = Veil::link_for(actor, &row, assignment.user.as_ref());
        if let Some((_, entry)) = &link {
            entries.push(entry.clone());
        }
        self.store()
            .insert_ticket(&row, &opened, link.as_ref().map(|(link, _)| link), &entries)
            .await?;
        tracing::info!(ticket = %row.id, customer = %row.customer_id, "ticket opened");
        let mut view = ticket_view(row, Vec::new(), now);
        view.history = Some(vec![StatusChangeView {
            from: None,
            to: opened.to_status,
            by: opened.actor_id,
            at: format_time(opened.created_at),
        }]);
        view.comments = Some(Vec::new());
        Ok(view)
    }

    /// One ticket with its history and comments.
    pub async fn get_ticket(&self, actor: &Actor, id: &str) -> AppResult<TicketView> {
        let row = self.ticket_for(actor, id, Action::TicketRead).await?;
        self.record(&[
            crate::audit::event(Some(actor), "ticket.read", crate::audit::Outcome::Ok)
                .customers([row.customer_id.clone()])
                .detail(serde_json::json!({"ticket_id": row.id})),
        ])
        .await?;
        self.full_ticket_view(row).await
    }

    /// The tickets the caller sees, newest first, filtered.
    pub async fn list_tickets(&self, actor: &Actor, query: &TicketQuery) -> AppResult<TicketPage> {
        let scope = self.authorize(actor, Action::TicketRead, None).await?;
        let mut errors = Vec::new();
        if let Some(status) = &query.status {
            if TicketStatus::parse(status).is_none() {
                errors.push(FieldError::new(
                    "status",
                    "invalid",
                    "must be open, in_progress, resolved, closed or reopened",
                ));
            }
        }
        if let Some(priority) = &query.priority {
            if TicketPriority::parse(priority).is_none() {
                errors.push(FieldError::new(
                    "priority",
                    "invalid",
                    "must be low, normal, high or urgent",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let visibility = ticket_visibility(actor, scope);
        let now = now_ms();
        let limit = query.limit.clamp(1, 200) as usize;
        let mut rows = self
            .store()
            .list_tickets(
                &visibility,
                &TicketFilter {
                    status: query.status.clone(),
                    priority: query.priority.clone(),
                    assignee: query.assignee.clone(),
                    customer: query.customer.clone(),
                    breached: query.breached,
                    now,
                    before_id: query.cursor.clone(),
                    limit: limit as i64 + 1,
                },
            )
            .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = more
            .then(|| rows.last().map(|row| row.id.clone()))
            .flatten();
        let mut customers: Vec<String> = rows.iter().map(|row| row.customer_id.clone()).collect();
        customers.sort();
        customers.dedup();
        self.record(&[
            crate::audit::event(Some(actor), "ticket.list", crate::audit::Outcome::Ok)
                .customers(customers)
                .detail(serde_json::json!({"tickets": rows.len()})),
        ])
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.escalations_view(row, now).await?);
        }
        Ok(TicketPage { items, next_cursor })
    }

    /// Changes a ticket's status, priority or category; the status change is recorded in its history.
    pub async fn update_ticket(
        &self,
        actor: &Actor,
        id: &str,
        patch: &TicketPatch,
    ) -> AppResult<TicketView> {
        let current = self.ticket_for(actor, id, Action::TicketWrite).await?;
        let now = now_ms();
        let mut row = current.clone();
        let mut change = None;
        if let Some(priority) = patch.priority {
            let target = self.sla_targets().for_priority(priority);
            row.priority = priority.as_str().to_owned();
            row.first_response_due_at = row.created_at + target.first_response_ms;
            row.resolution_due_at = row.created_at + target.resolution_ms;
        }
        if let Some(category) = patch.category {
            row.category = category.as_str().to_owned();
        }
        if let Some(status) = patch.status {
            let from = TicketStatus::parse(&current.status).unwrap_or(TicketStatus::Open);
            if from != status {
                if !transition_allowed(from, status) {
                    return Err(invalid(
                        "status",
                        "invalid_transition",
                        "this status change is not allowed from the ticket's current status",
                    ));
                }
                row.status = status.as_str().to_owned();
                match status {
                    TicketStatus::Resolved => {
                        row.resolved_at = Some(now);
                        // Resolving answers the customer too.
                        row.first_responded_at = row.first_responded_at.or(Some(now));
                    }
                    TicketStatus::Closed => {
                        row.closed_at = Some(now);
                        row.resolved_at = row.resolved_at.or(Some(now));
                        row.first_responded_at = row.first_responded_at.or(Some(now));
                    }
                    TicketStatus::Reopened | TicketStatus::InProgress => {
                        if matches!(from, TicketStatus::Resolved | TicketStatus::Closed) {
                            row.resolved_at = None;
                            row.closed_at = None;
                        }
                    }
                    TicketStatus::Open => {}
                }
                change = Some(status_change(
                    &row.id,
                    Some(&current.status),
                    &row.status,
                    actor,
                    now,
                ));
            }
        }
        row.updated_at = now.max(current.updated_at + 1);
        let entry = crate::audit::event(Some(actor), "ticket.update", crate::audit::Outcome::Ok)
            .customers([row.customer_id.clone()])
            .detail(serde_json::json!({
                "ticket_id": row.id,
                "status": {"from": current.status, "to": row.status},
                "priority": {"from": current.priority, "to": row.priority},
                "category": {"from": current.category, "to": row.category},
            }));
        // Resolving or closing asks the customer how it went: one CSAT survey per ticket, created in the same
        // transaction (the store skips it when the ticket already has one).
        let survey = matches!(
            TicketStatus::parse(&row.status),
            Some(TicketStatus::Resolved | TicketStatus::Closed)
        ) && change.is_some();
        let survey =
            survey.then(|| crate::feedback::csat_survey_for(actor, &row.id, &row.customer_id, now));
        let created = self
            .store()
            .update_ticket_with_survey(
                &row,
                current.updated_at,
                change.as_ref(),
                None,
                survey.as_ref().map(|(survey, _, entry)| (survey, entry)),
                &[entry],
            )
            .await
            .map_err(stale_to_conflict)?;
        let mut view = self.full_ticket_view(row).await?;
        if created {
            view.csat_survey = survey.map(|(_, link, _)| link);
        }
        Ok(view)
    }

    /// A ticket with its escalations, status history and comments.
    async fn full_ticket_view(&self, row: TicketRow) -> AppResult<TicketView> {
        let history = self.store().ticket_status_history(&row.id).await?;
        let comments = self.store().ticket_comments(&row.id).await?;
        let mut view = self.escalations_view(row, now_ms()).await?;
        view.history = Some(
            history
                .into_iter()
                .map(|change| StatusChangeView {
                    from: change.from_status,
                    to: change.to_status,
                    by: change.actor_id,
                    at: format_time(change.created_at),
                })
                .collect(),
        );
        view.comments = Some(comments.into_iter().map(comment_view).collect());
        Ok(view)
    }

    /// Adds a comment to a ticket; the first one stops the first-response timer.
    pub async fn comment_ticket(
        &self,
        actor: &Actor,
        id: &str,
        input: &CommentInput,
    ) -> AppResult<CommentView> {
        let ticket = self.ticket_for(actor, id, Action::TicketWrite).await?;
        let length = input.body.chars().count();
        if input.body.trim().is_empty() || length > MAX_NOTE_CHARS {
            return Err(invalid(
                "body",
                "invalid_length",
                &format!("must be 1 to {MAX_NOTE_CHARS} characters"),
            ));
        }
        let comment_id = uuid::Uuid::now_v7().to_string();
        let masked = mask_text(&input.body);
        let spans_ct = self
            .seal_originals(
                &ticket.customer_id,
                &masked,
                "ticket_comment",
                &comment_id,
                "body",
            )
            .await?;
        let row = TicketCommentRow {
            id: comment_id,
            ticket_id: ticket.id.clone(),
            author_id: Some(actor.user_id.to_string()),
            span_index: masked.span_index_json(),
            body_masked: masked.body.clone(),
            spans_ct,
            created_at: now_ms(),
        };
        let entry = crate::audit::event(Some(actor), "ticket.comment", crate::audit::Outcome::Ok)
            .customers([ticket.customer_id.clone()])
            .detail(
                serde_json::json!({"ticket_id": ticket.id, "comment_id": row.id,
                                       "first_response": ticket.first_responded_at.is_none(),
                                       "pii_spans": masked.spans.len()}),
            );
        self.store().insert_ticket_comment(&row, &[entry]).await?;
        Ok(comment_view(row))
    }

    /// (Re)assigns a ticket: to the named user, or by rule. A service assignee is linked to the customer.
    pub async fn assign_ticket(
        &self,
        actor: &Actor,
        id: &str,
        input: &AssignInput,
    ) -> AppResult<TicketView> {
        let current = self.ticket_for(actor, id, Action::TicketAssign).await?;
        let customer = self
            .store()
            .masked_customer(&current.customer_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let assignment = self
            .choose_assignee(
                &customer,
                &current.category,
                input.assignee.as_deref(),
                input.assign_by,
                input.team.as_deref(),
            )
            .await?;
        let now = now_ms();
        let mut row = current.clone();
        row.assignee_id = assignment.user.as_ref().map(|user| user.id.clone());
        row.assigned_by = assignment.user.as_ref().map(|_| assignment.how.to_owned());
        row.updated_at = now.max(current.updated_at + 1);
        let mut entries =
            vec![
                crate::audit::event(Some(actor), "ticket.assign", crate::audit::Outcome::Ok)
                    .customers([row.customer_id.clone()])
                    .detail(
                        serde_json::json!({"ticket_id": row.id, "from": current.assignee_id,
                                   "to": row.assignee_id, "assigned_by": row.assigned_by}),
                    ),
            ];
        let link = Veil::link_for(actor, &row, assignment.user.as_ref());
        if let Some((_, entry)) = &link {
            entries.push(entry.clone());
        }
        self.store()
            .update_ticket(
                &row,
                current.updated_at,
                None,
                link.as_ref().map(|(link, _)| link),
                &entries,
            )
            .await
            .map_err(stale_to_conflict)?;
        self.full_ticket_view(row).await
    }

    /// Replaces a user's skills (admins): the categories assignment by skill matches.
    pub async fn set_user_skills(
        &self,
        actor: &Actor,
        user_id: crate::UserId,
        skills: &[String],
    ) -> AppResult<Vec<String>> {
        self.permit_recorded(actor, Action::UserManage, None)
            .await?;
        let user = self
            .store()
            .user_by_id(&user_id.to_string())
            .await?
            .ok_or(AppError::NotFound)?;
        let mut cleaned: Vec<String> = Vec::new();
        for skill in skills {
            let skill = skill.trim();
            if skill.is_empty()
                || skill.len() > 64
                || !skill
                    .chars()
                    .all(|char| char.is_ascii_lowercase() || char.is_ascii_digit() || char == '_')
            {
                return Err(invalid(
                    "skills",
                    "invalid",
                    "a skill is 1 to 64 of a-z, 0-9 and _ (e.g. a ticket category)",
                ));
            }
            cleaned.push(skill.to_owned());
        }
        cleaned.sort();
        cleaned.dedup();
        let entry = crate::audit::event(Some(actor), "user.skills", crate::audit::Outcome::Ok)
            .detail(serde_json::json!({"user": user.id, "skills": cleaned}));
        self.store()
            .set_user_skills(&user.id, &cleaned, now_ms(), &[entry])
            .await?;
        Ok(cleaned)
    }

    /// Who an escalation goes to: an active manager of the assignee's team or, walking up the team tree, of a
    /// team above it; `None` (the admins) when there is none.
    async fn escalation_manager(&self, assignee: Option<&str>) -> AppResult<Option<String>> {
        let Some(assignee) = assignee else {
            return Ok(None);
        };
        let Some(mut team) = self
            .store()
            .user_by_id(assignee)
            .await?
            .and_then(|user| user.team)
        else {
            return Ok(None);
        };
        let parents = self.team_parents().await?;
        for _ in 0..64 {
            let managers = self
                .store()
                .active_users_in_team(Role::Manager.as_str(), &team)
                .await?;
            if let Some(manager) = managers.into_iter().next() {
                return Ok(Some(manager));
            }
            match parents.get(&team).cloned().flatten() {
                Some(parent) => team = parent,
                None => break,
            }
        }
        Ok(None)
    }

    /// Escalates every SLA timer past due at `now` that has not been escalated yet: records the escalation and
    /// its `ticket.escalate` audit entry in one transaction (once per ticket and timer, even with several
    /// servers), then raises a `ticket_sla_breach` alert. Returns how many timers were escalated.
    pub async fn escalate_ticket_breaches(&self, now: i64) -> AppResult<usize> {
        let mut escalated = 0;
        for ticket in self.store().ticket_breach_candidates(now, 500).await? {
            let mut timers = Vec::new();
            if ticket.first_responded_at.is_none() && ticket.first_response_due_at <= now {
                timers.push(("first_response", ticket.first_response_due_at));
            }
            if ticket.resolution_due_at <= now {
                timers.push(("resolution", ticket.resolution_due_at));
            }
            for (timer, due_at) in timers {
                let manager = self
                    .escalation_manager(ticket.assignee_id.as_deref())
                    .await?;
                let to = if manager.is_some() {
                    "manager"
                } else {
                    "admins"
                };
                let escalation = EscalationRow {
                    ticket_id: ticket.id.clone(),
                    timer: timer.to_owned(),
                    escalated_to: manager.clone(),
                    assignee_id: ticket.assignee_id.clone(),
                    due_at,
                    created_at: now,
                };
                let entry = crate::audit::event(None, "ticket.escalate", crate::audit::Outcome::Ok)
                    .customers([ticket.customer_id.clone()])
                    .detail(serde_json::json!({
                        "ticket_id": ticket.id, "timer": timer, "due_at": format_time(due_at),
                        "priority": ticket.priority, "assignee": ticket.assignee_id,
                        "to": to, "escalated_to": manager,
                    }));
                if !self
                    .store()
                    .insert_ticket_escalation(&escalation, &[entry])
                    .await?
                {
                    continue;
                }
                escalated += 1;
                let whom = match &manager {
                    Some(manager) => format!("manager {manager}"),
                    None => "the admins".to_owned(),
                };
                let severity = match ticket.priority.as_str() {
                    "urgent" | "high" => "high",
                    _ => "medium",
                };
                self.raise_alert(
                    "ticket_sla_breach",
                    severity,
                    None,
                    &format!("ticket:{}:{timer}", ticket.id),
                    format!(
                        "escalation to {whom}: {} ticket {} missed its {} target due {}",
                        ticket.priority,
                        ticket.id,
                        timer.replace('_', " "),
                        format_time(due_at)
                    ),
                    serde_json::json!({"ticket_id": ticket.id, "timer": timer, "escalated_to": manager,
                                       "assignee": ticket.assignee_id}),
                )
                .await?;
                tracing::warn!(ticket = %ticket.id, timer, "ticket SLA breached; escalated");
            }
        }
        Ok(escalated)
    }

    /// Runs [`Veil::escalate_ticket_breaches`] every `interval` (the `veil serve` job).
    pub fn spawn_ticket_sla(
        veil: Arc<Veil>,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match veil.escalate_ticket_breaches(now_ms()).await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "ticket SLA timers escalated"),
                    Err(error) => tracing::error!(%error, "ticket SLA escalation failed"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ticket's description is stored masked; its originals open with the customer's key (bound to the
    /// ticket and field) and with no other.
    #[tokio::test]
    async fn description_originals_are_sealed_under_the_customer_key() {
        let harness = crate::testing::Harness::sqlite().await;
        let admin = harness.actor("root", Role::Admin, None).await;
        let customer = harness
            .veil
            .create_customer(
                &admin,
                &crate::customers::CustomerInput {
                    name: Some("张三".to_owned()),
                    ..Default::default()
                },
                true,
            )
            .await
            .unwrap();
        let input: TicketInput = serde_json::from_value(serde_json::json!({
            "customer_id": customer.id.to_string(), "channel": "phone", "category": "inquiry",
            "subject": "回电", "description": "客户电话13712340987"
        }))
        .unwrap();
        let view = harness.veil.create_ticket(&admin, &input).await.unwrap();
        assert_eq!(view.description, "客户电话137****0987");
        let row = harness
            .veil
            .store()
            .ticket(&view.id)
            .await
            .unwrap()
            .unwrap();
        let key_row = harness
            .veil
            .store()
            .customer_key(&customer.id.to_string())
            .await
            .unwrap()
            .unwrap();
        let dek = harness.veil.unwrap_customer_key(&key_row).await.unwrap();
        let authority = crate::customers::reveal::RevealAuthority::for_tests();
        let sealed = row.description_spans_ct.clone().unwrap();
        let spans = crate::notes::open_field_spans(
            &authority,
            &dek,
            &sealed,
            ("ticket", &row.id, "description"),
            key_row.dek_version,
        )
        .unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].1.as_str(), "13712340987");
        // Bound to its field and to its key.
        assert!(crate::notes::open_field_spans(
            &authority,
            &dek,
            &sealed,
            ("ticket", &row.id, "subject"),
            key_row.dek_version,
        )
        .is_err());
        let stranger = veil_mask::SecretKey::generate();
        assert!(crate::notes::open_field_spans(
            &authority,
            &stranger,
            &sealed,
            ("ticket", &row.id, "description"),
            key_row.dek_version,
        )
        .is_err());
        harness.finish().await;
    }

    #[test]
    fn sla_defaults_and_parsing() {
        let defaults = SlaTargets::default();
        assert_eq!(SlaTargets::parse(DEFAULT_SLA).unwrap(), defaults);
        assert_eq!(defaults.urgent.first_response_ms, 15 * MINUTE_MS);
        assert_eq!(defaults.low.resolution_ms, 72 * HOUR_MS);
        let custom = SlaTargets::parse("high=30m/2d").unwrap();
        assert_eq!(custom.high.first_response_ms, 30 * MINUTE_MS);
        assert_eq!(custom.high.resolution_ms, 48 * HOUR_MS);
        assert_eq!(custom.normal, defaults.normal);
        for bad in [
            "high",
            "high=1h",
            "vip=1h/2h",
            "high=1x/2h",
            "high=0m/2h",
            "high=3h/2h",
        ] {
            assert!(SlaTargets::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_transitions() {
        use TicketStatus::*;
        let allowed = [
            (Open, InProgress),
            (Open, Resolved),
            (InProgress, Resolved),
            (Resolved, Closed),
            (Resolved, Reopened),
            (Closed, Reopened),
            (Reopened, InProgress),
        ];
        let refused = [
            (Closed, Open),
            (Open, Reopened),
            (Closed, Resolved),
            (InProgress, Open),
        ];
        for (from, to) in allowed {
            assert!(transition_allowed(from, to), "{from:?} → {to:?}");
        }
        for (from, to) in refused {
            assert!(!transition_allowed(from, to), "{from:?} → {to:?}");
        }
    }
}
