//! Ticket pages (咨询/投诉): the list (assigned to me, or everything the caller sees: their customers' tickets,
//! their team's for managers, all for admins) with status, priority and breach filters and each ticket's SLA
//! state; a ticket's page with its customer (masked), SLA timers, escalations, status history and comments; the
//! forms to comment, change the status or priority, and reassign; and the new-ticket form reached from a customer.
//!
//! Every read and write is a call to the domain (`Veil::list_tickets`, `get_ticket`, `create_ticket`,
//! `comment_ticket`, `update_ticket`, `assign_ticket`), which decides visibility (a ticket outside the caller's
//! reach is 404), checks the role, masks the free text as it masks notes and audits. This module turns forms into
//! those calls and answers into pages; the only thing it computes is how long is left until a deadline.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::authz::{role_permits, Action};
use veil_app::tickets::{
    transition_allowed, AssignInput, AssignRule, CommentInput, TicketCategory, TicketChannel,
    TicketInput, TicketPatch, TicketPriority, TicketQuery, TicketStatus, TicketView,
};
use veil_app::{AppError, CustomerId, FieldError};

use super::approvals::short;
use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// Tickets per page of the list.
const PAGE_SIZE: u32 = 25;

/// An option of a `<select>`.
pub struct Choice {
    value: String,
    label_key: String,
    selected: bool,
}

fn choices<'a>(
    values: impl IntoIterator<Item = &'a str>,
    prefix: &str,
    selected: &str,
) -> Vec<Choice> {
    values
        .into_iter()
        .map(|value| Choice {
            value: value.to_owned(),
            label_key: format!("{prefix}.{value}"),
            selected: value == selected,
        })
        .collect()
}

/// An RFC 3339 instant as Unix ms.
fn millis(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|instant| instant.timestamp_millis())
}

/// A span of time in the locale's words, to the minute (`3 h 05 min`, `2 d 4 h`).
fn span(tr: Tr, ms: i64) -> String {
    let minutes = (ms.max(0) + 59_999) / 60_000;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        tr.fill(
            "tickets.span_days",
            &[("days", &days.to_string()), ("hours", &hours.to_string())],
        )
    } else if hours > 0 {
        tr.fill(
            "tickets.span_hours",
            &[
                ("hours", &hours.to_string()),
                ("minutes", &format!("{minutes:02}")),
            ],
        )
    } else {
        tr.fill("tickets.span_minutes", &[("minutes", &minutes.to_string())])
    }
}

/// One SLA timer as shown: its deadline and where it stands.
pub struct Timer {
    due: String,
    /// `due in 3 h`, `overdue by 10 min`, `met`, `missed`.
    state: String,
    breached: bool,
}

fn timer(tr: Tr, now: i64, due: &str, stopped: Option<&str>, breached: bool) -> Timer {
    let state = match (stopped, millis(due)) {
        (Some(_), _) if breached => tr.get("tickets.missed").to_owned(),
        (Some(_), _) => tr.get("tickets.met").to_owned(),
        (None, Some(due)) if due < now => {
            tr.fill("tickets.overdue", &[("time", &span(tr, now - due))])
        }
        (None, Some(due)) => tr.fill("tickets.due_in", &[("time", &span(tr, due - now))]),
        (None, None) => String::new(),
    };
    Timer {
        due: tr.datetime(due),
        state,
        breached,
    }
}

/// User ids to login names (staff names are not customer data).
pub(super) async fn usernames(state: &AppState) -> HashMap<String, String> {
    match state.veil.list_users().await {
        Ok(users) => users
            .into_iter()
            .map(|user| (user.id.to_string(), user.username))
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "web: user names unavailable");
            HashMap::new()
        }
    }
}

pub(super) fn name_of(names: &HashMap<String, String>, id: Option<&str>) -> String {
    id.map(|id| names.get(id).cloned().unwrap_or_else(|| short(id)))
        .unwrap_or_default()
}

/// A ticket as a row of the list.
pub struct TicketRow {
    id: String,
    subject: String,
    customer_id: String,
    customer_short: String,
    category_key: String,
    priority: String,
    priority_key: String,
    status_key: String,
    assignee: String,
    first_response: Timer,
    resolution: Timer,
    breached: bool,
    created: String,
}

fn ticket_row(tr: Tr, now: i64, names: &HashMap<String, String>, view: &TicketView) -> TicketRow {
    TicketRow {
        id: view.id.clone(),
        subject: view.subject.clone(),
        customer_id: view.customer_id.clone(),
        customer_short: short(&view.customer_id),
        category_key: format!("ticket.category.{}", view.category),
        priority: view.priority.clone(),
        priority_key: format!("ticket.priority.{}", view.priority),
        status_key: format!("ticket.status.{}", view.status),
        assignee: name_of(names, view.assignee.as_deref()),
        first_response: timer(
            tr,
            now,
            &view.sla.first_response_due,
            view.sla.first_responded_at.as_deref(),
            view.sla.first_response_breached,
        ),
        resolution: timer(
            tr,
            now,
            &view.sla.resolution_due,
            view.sla.resolved_at.as_deref(),
            view.sla.resolution_breached,
        ),
        breached: view.breached,
        created: tr.datetime(&view.created_at),
    }
}

/// The list's filters, in the URL (none is personal data).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct ListParams {
    /// `mine` (assigned to me) or empty (everything I see).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    scope: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    priority: String,
    /// `yes`, `no` or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    breached: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

impl ListParams {
    fn href(&self, cursor: Option<&str>) -> String {
        let params = ListParams {
            cursor: cursor.unwrap_or_default().to_owned(),
            ..self.clone()
        };
        match serde_urlencoded::to_string(&params) {
            Ok(query) if !query.is_empty() => format!("/tickets?{query}"),
            _ => "/tickets".to_owned(),
        }
    }
}

#[derive(Template)]
#[template(path = "tickets.html")]
struct ListTemplate {
    t: Tr,
    layout: Layout,
    rows: Vec<TicketRow>,
    /// What "everything I see" means for this role.
    all_key: &'static str,
    scopes: Vec<Choice>,
    statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    breached: Vec<Choice>,
    filtered: bool,
    paged: bool,
    first_href: String,
    next_href: Option<String>,
}

/// The tickets the caller sees, newest first, filtered, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<ListParams>,
) -> Response {
    let text = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let query = TicketQuery {
        status: text(&params.status),
        priority: text(&params.priority),
        assignee: (params.scope == "mine").then(|| user.actor.user_id.to_string()),
        customer: None,
        breached: match params.breached.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        cursor: text(&params.cursor),
        limit: PAGE_SIZE,
    };
    let listed = match state.veil.list_tickets(&user.actor, &query).await {
        Ok(listed) => listed,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let names = usernames(&state).await;
    let now = chrono::Utc::now().timestamp_millis();
    let tr = page.tr;
    let all_key = match user.actor.role {
        veil_app::users::Role::Admin => "tickets.scope_all",
        veil_app::users::Role::Manager => "tickets.scope_team",
        _ => "tickets.scope_visible",
    };
    let template = ListTemplate {
        t: tr,
        layout: Layout::new(&page, Some(&user)),
        rows: listed
            .items
            .iter()
            .map(|view| ticket_row(tr, now, &names, view))
            .collect(),
        all_key,
        scopes: vec![
            Choice {
                value: String::new(),
                label_key: all_key.to_owned(),
                selected: params.scope != "mine",
            },
            Choice {
                value: "mine".to_owned(),
                label_key: "tickets.scope_mine".to_owned(),
                selected: params.scope == "mine",
            },
        ],
        statuses: choices(
            TicketStatus::ALL.iter().map(|status| status.as_str()),
            "ticket.status",
            &params.status,
        ),
        priorities: choices(
            TicketPriority::ALL.iter().map(|priority| priority.as_str()),
            "ticket.priority",
            &params.priority,
        ),
        breached: choices(["yes", "no"], "tickets.breached_filter", &params.breached),
        filtered: !(params.scope.is_empty()
            && params.status.is_empty()
            && params.priority.is_empty()
            && params.breached.is_empty()),
        paged: !params.cursor.is_empty(),
        first_href: params.href(None),
        next_href: listed
            .next_cursor
            .as_deref()
            .map(|cursor| params.href(Some(cursor))),
    };
    render(&template, tr, StatusCode::OK)
}

/// A status change as shown.
pub struct HistoryRow {
    from_key: Option<String>,
    to_key: String,
    by: String,
    at: String,
}

/// A comment as shown (masked as the domain stored it).
pub struct CommentRow {
    author: String,
    body: String,
    at: String,
}

/// An escalation as shown.
pub struct EscalationRow {
    /// Which timer, to whom, which deadline.
    line: String,
    at: String,
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct DetailTemplate {
    t: Tr,
    layout: Layout,
    id: String,
    short_id: String,
    subject: String,
    description: String,
    customer_id: String,
    /// The customer's name as the caller's role sees it (masked), or `None` when the caller does not see the
    /// customer (a manager reading a ticket of their team's agent).
    customer_name: Option<String>,
    channel_key: String,
    category_key: String,
    priority: String,
    priority_key: String,
    status_key: String,
    assignee: String,
    assigned_by_key: Option<String>,
    created_by: String,
    created: String,
    updated: String,
    first_response: Timer,
    resolution: Timer,
    breached: bool,
    escalations: Vec<EscalationRow>,
    history: Vec<HistoryRow>,
    comments: Vec<CommentRow>,
    /// The statuses the ticket may move to now.
    next_statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    may_assign: bool,
    assignees: Vec<(String, String)>,
    rules: Vec<Choice>,
    teams: Vec<String>,
    comment_text: String,
    notice: Option<String>,
    error: Option<String>,
}

/// `?done=commented|updated|assigned|created` after a form.
#[derive(Deserialize)]
pub struct DoneParams {
    done: Option<String>,
}

fn notice_key(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("ticket.done_created"),
        "commented" => Some("ticket.done_commented"),
        "updated" => Some("ticket.done_updated"),
        "assigned" => Some("ticket.done_assigned"),
        _ => None,
    }
}

/// One ticket.
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Path(id): Path<String>,
    Query(params): Query<DoneParams>,
) -> Response {
    let notice = notice_key(params.done.as_deref()).map(|key| page.tr.get(key).to_owned());
    let view = state.veil.get_ticket(&user.actor, &id).await;
    detail_page(
        &state,
        &page,
        &user,
        view,
        notice,
        None,
        String::new(),
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn detail_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    view: Result<TicketView, AppError>,
    notice: Option<String>,
    error: Option<String>,
    comment_text: String,
    status: StatusCode,
) -> Response {
    let view = match view {
        Ok(view) => view,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let tr = page.tr;
    let now = chrono::Utc::now().timestamp_millis();
    let users = state.veil.list_users().await.unwrap_or_default();
    let names: HashMap<String, String> = users
        .iter()
        .map(|user| (user.id.to_string(), user.username.clone()))
        .collect();
    // The customer as the caller sees them; a ticket can be visible without its customer (assigned to someone in
    // a manager's team), and then only the id is shown.
    let customer_name = match view.customer_id.parse::<CustomerId>() {
        Ok(customer) => state
            .veil
            .get_customer(&user.actor, customer)
            .await
            .ok()
            .map(|customer| customer.name),
        Err(_) => None,
    };
    let current = TicketStatus::parse(&view.status).unwrap_or(TicketStatus::Open);
    let may_assign = role_permits(user.actor.role, Action::TicketAssign).is_ok();
    let assignees = if may_assign {
        users
            .iter()
            .filter(|user| {
                !user.disabled
                    && matches!(
                        user.role.as_str(),
                        "admin" | "manager" | "sales" | "service"
                    )
            })
            .map(|user| {
                (
                    user.id.to_string(),
                    format!(
                        "{} · {}",
                        user.username,
                        tr.get(&format!("role.{}", user.role.as_str()))
                    ),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let teams = if may_assign {
        state
            .veil
            .list_teams()
            .await
            .map(|teams| teams.into_iter().map(|team| team.name).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let template = DetailTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        short_id: short(&view.id),
        id: view.id.clone(),
        subject: view.subject.clone(),
        description: view.description.clone(),
        customer_id: view.customer_id.clone(),
        customer_name,
        channel_key: format!("ticket.channel.{}", view.channel),
        category_key: format!("ticket.category.{}", view.category),
        priority: view.priority.clone(),
        priority_key: format!("ticket.priority.{}", view.priority),
        status_key: format!("ticket.status.{}", view.status),
        assignee: name_of(&names, view.assignee.as_deref()),
        assigned_by_key: view
            .assigned_by
            .as_deref()
            .map(|how| format!("ticket.assigned_by.{how}")),
        created_by: name_of(&names, view.created_by.as_deref()),
        created: tr.datetime(&view.created_at),
        updated: tr.datetime(&view.updated_at),
        first_response: timer(
            tr,
            now,
            &view.sla.first_response_due,
            view.sla.first_responded_at.as_deref(),
            view.sla.first_response_breached,
        ),
        resolution: timer(
            tr,
            now,
            &view.sla.resolution_due,
            view.sla.resolved_at.as_deref(),
            view.sla.resolution_breached,
        ),
        breached: view.breached,
        escalations: view
            .escalations
            .iter()
            .map(|escalation| {
                let to = match &escalation.escalated_to {
                    Some(manager) => name_of(&names, Some(manager)),
                    None => tr.get("ticket.to_admins").to_owned(),
                };
                let timer = tr
                    .get(&format!("ticket.timer.{}", escalation.timer))
                    .to_owned();
                EscalationRow {
                    line: tr.fill(
                        "ticket.escalation_line",
                        &[
                            ("timer", &timer),
                            ("to", &to),
                            ("due", &tr.datetime(&escalation.due)),
                        ],
                    ),
                    at: tr.datetime(&escalation.at),
                }
            })
            .collect(),
        history: view
            .history
            .iter()
            .flatten()
            .map(|change| HistoryRow {
                from_key: change
                    .from
                    .as_deref()
                    .map(|from| format!("ticket.status.{from}")),
                to_key: format!("ticket.status.{}", change.to),
                by: name_of(&names, change.by.as_deref()),
                at: tr.datetime(&change.at),
            })
            .collect(),
        comments: view
            .comments
            .iter()
            .flatten()
            .map(|comment| CommentRow {
                author: name_of(&names, comment.author.as_deref()),
                body: comment.body.clone(),
                at: tr.datetime(&comment.created_at),
            })
            .collect(),
        next_statuses: choices(
            TicketStatus::ALL
                .iter()
                .filter(|status| transition_allowed(current, **status))
                .map(|status| status.as_str()),
            "ticket.status",
            "",
        ),
        priorities: choices(
            TicketPriority::ALL.iter().map(|priority| priority.as_str()),
            "ticket.priority",
            &view.priority,
        ),
        may_assign,
        assignees,
        rules: choices(
            AssignRule::ALL.iter().map(|rule| rule.as_str()),
            "ticket.assigned_by",
            "",
        ),
        teams,
        comment_text,
        notice,
        error,
    };
    render(&template, tr, status)
}

/// The domain's refusal of a form on the ticket page, as a message above the forms and a status; `None` when it
/// is a page of its own (not found, internal).
fn refusal(tr: Tr, error: &AppError) -> Option<(String, StatusCode)> {
    match error {
        AppError::Validation(errors) => {
            let messages: Vec<String> = errors
                .iter()
                .map(|error| {
                    format!(
                        "{}: {}",
                        tr.get(&format!("ticket.field.{}", error.field)),
                        field_message(tr, error)
                    )
                })
                .collect();
            Some((messages.join(" "), StatusCode::UNPROCESSABLE_ENTITY))
        }
        AppError::Conflict(_) => Some((tr.get("ticket.conflict").to_owned(), StatusCode::CONFLICT)),
        AppError::Forbidden(_) => {
            Some((tr.get("error.forbidden").to_owned(), StatusCode::FORBIDDEN))
        }
        _ => None,
    }
}

/// A ticket validation message: the ticket-specific codes first, then the shared ones.
fn field_message(tr: Tr, error: &FieldError) -> String {
    let key = format!("ticket.error.{}", error.code);
    match tr.get(&key) {
        text if text == key => tr.field_error(&error.code).to_owned(),
        text => text.to_owned(),
    }
}

/// After a form the domain refused: the ticket page again with the message, or the error page.
async fn refused(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    id: &str,
    error: AppError,
    comment_text: String,
) -> Response {
    match refusal(page.tr, &error) {
        Some((message, status)) => {
            let view = state.veil.get_ticket(&user.actor, id).await;
            detail_page(
                state,
                page,
                user,
                view,
                None,
                Some(message),
                comment_text,
                status,
            )
            .await
        }
        None => error_page(page, Some(user), &error),
    }
}

/// The comment form.
#[derive(Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    body: String,
}

/// Adds a comment (the first one stops the first-response timer).
pub async fn comment(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<CommentForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let input = CommentInput {
        body: form.body.clone(),
    };
    match state.veil.comment_ticket(&user.actor, &id, &input).await {
        Ok(_) => Redirect::to(&format!("/tickets/{id}?done=commented")).into_response(),
        // The text goes back into the box (this no-store page goes only to who typed it).
        Err(error) => refused(&state, &page, &user, &id, error, form.body).await,
    }
}

/// The status and priority form: an empty or unchanged value changes nothing. The priority shown when the page
/// was drawn comes back too, so that saving a status change does not recompute the deadlines.
#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    current_priority: String,
}

/// Changes the status (allowed transitions only; recorded in the history) and the priority.
pub async fn change_status(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<StatusForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let unknown = |field: &str| {
        AppError::Validation(vec![FieldError::new(field, "unknown", "not an option")])
    };
    let status = match form.status.as_str() {
        "" => None,
        text => match TicketStatus::parse(text) {
            Some(status) => Some(status),
            None => {
                return refused(&state, &page, &user, &id, unknown("status"), String::new()).await
            }
        },
    };
    let priority = match form.priority.as_str() {
        "" => None,
        text if text == form.current_priority => None,
        text => match TicketPriority::parse(text) {
            Some(priority) => Some(priority),
            None => {
                return refused(
                    &state,
                    &page,
                    &user,
                    &id,
                    unknown("priority"),
                    String::new(),
                )
                .await
            }
        },
    };
    let patch = TicketPatch {
        status,
        priority,
        category: None,
    };
    match state.veil.update_ticket(&user.actor, &id, &patch).await {
        Ok(_) => Redirect::to(&format!("/tickets/{id}?done=updated")).into_response(),
        Err(error) => refused(&state, &page, &user, &id, error, String::new()).await,
    }
}

/// The reassignment form: a named user, or a rule (with a team for round-robin or to narrow skill).
#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    assign_by: String,
    #[serde(default)]
    team: String,
}

/// Reassigns the ticket (admins, managers, salespeople: the domain decides).
pub async fn assign(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<AssignForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let assign_by = match form.assign_by.as_str() {
        "" => None,
        text => match AssignRule::parse(text) {
            Some(rule) => Some(rule),
            None => {
                let error = AppError::Validation(vec![FieldError::new("assign_by", "unknown", "")]);
                return refused(&state, &page, &user, &id, error, String::new()).await;
            }
        },
    };
    let text = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_owned());
    let input = AssignInput {
        assignee: text(&form.assignee),
        assign_by,
        team: text(&form.team),
    };
    match state.veil.assign_ticket(&user.actor, &id, &input).await {
        Ok(_) => Redirect::to(&format!("/tickets/{id}?done=assigned")).into_response(),
        Err(error) => refused(&state, &page, &user, &id, error, String::new()).await,
    }
}

/// The new-ticket form's fields, as typed.
#[derive(Deserialize, Default)]
pub struct NewForm {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    description: String,
}

#[derive(Template)]
#[template(path = "ticket_new.html")]
struct NewTemplate {
    t: Tr,
    layout: Layout,
    customer_id: String,
    customer_name: String,
    channels: Vec<Choice>,
    categories: Vec<Choice>,
    priorities: Vec<Choice>,
    subject: String,
    description: String,
    subject_error: Option<String>,
    description_error: Option<String>,
    errors: Vec<String>,
}

async fn new_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    form: &NewForm,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    let customer = match form.customer.parse::<CustomerId>() {
        Ok(customer) => state.veil.get_customer(&user.actor, customer).await,
        Err(_) => Err(AppError::NotFound),
    };
    let customer = match customer {
        Ok(customer) => customer,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let error_for = |field: &str| {
        errors
            .iter()
            .find(|error| error.field == field)
            .map(|error| field_message(tr, error))
    };
    let or = |value: &str, default: &str| {
        if value.is_empty() {
            default.to_owned()
        } else {
            value.to_owned()
        }
    };
    let template = NewTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        customer_id: customer.id.to_string(),
        customer_name: customer.name,
        channels: choices(
            TicketChannel::ALL.iter().map(|channel| channel.as_str()),
            "ticket.channel",
            &or(&form.channel, "phone"),
        ),
        categories: choices(
            TicketCategory::ALL.iter().map(|category| category.as_str()),
            "ticket.category",
            &or(&form.category, "inquiry"),
        ),
        priorities: choices(
            TicketPriority::ALL.iter().map(|priority| priority.as_str()),
            "ticket.priority",
            &or(&form.priority, "normal"),
        ),
        subject: form.subject.clone(),
        description: form.description.clone(),
        subject_error: error_for("subject"),
        description_error: error_for("description"),
        errors: errors
            .iter()
            .filter(|error| !matches!(error.field.as_str(), "subject" | "description"))
            .map(|error| {
                format!(
                    "{}: {}",
                    tr.get(&format!("ticket.field.{}", error.field)),
                    field_message(tr, error)
                )
            })
            .collect(),
    };
    render(&template, tr, status)
}

/// `?customer=…`.
#[derive(Deserialize)]
pub struct NewParams {
    #[serde(default)]
    customer: String,
}

/// The new-ticket form for one customer (reached from the customer's page).
pub async fn new_form(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<NewParams>,
) -> Response {
    if let Err(reason) = role_permits(user.actor.role, Action::TicketWrite) {
        return error_page(&page, Some(&user), &AppError::Forbidden(reason));
    }
    let form = NewForm {
        customer: params.customer,
        ..NewForm::default()
    };
    new_page(&state, &page, &user, &form, &[], StatusCode::OK).await
}

/// Opens the ticket (assigned by the default rule: the customer's owner) and shows it, or the form again with
/// each problem next to its field.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<NewForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let mut errors = Vec::new();
    let channel = TicketChannel::parse(&form.channel);
    if channel.is_none() {
        errors.push(FieldError::new("channel", "unknown", "not an option"));
    }
    let category = TicketCategory::parse(&form.category);
    if category.is_none() {
        errors.push(FieldError::new("category", "unknown", "not an option"));
    }
    let priority = TicketPriority::parse(&form.priority);
    if !form.priority.is_empty() && priority.is_none() {
        errors.push(FieldError::new("priority", "unknown", "not an option"));
    }
    let (Some(channel), Some(category), true) = (channel, category, errors.is_empty()) else {
        return new_page(
            &state,
            &page,
            &user,
            &form,
            &errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let input = TicketInput {
        customer_id: form.customer.clone(),
        channel,
        category,
        priority,
        subject: form.subject.clone(),
        description: (!form.description.trim().is_empty()).then(|| form.description.clone()),
        assignee: None,
        assign_by: None,
        team: None,
    };
    match state.veil.create_ticket(&user.actor, &input).await {
        Ok(view) => Redirect::to(&format!("/tickets/{}?done=created", view.id)).into_response(),
        Err(AppError::Validation(errors)) => {
            new_page(
                &state,
                &page,
                &user,
                &form,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// A customer's tickets on the customer page.
pub struct CustomerTicket {
    /// Ticket id.
    pub id: String,
    /// Subject, masked.
    pub subject: String,
    /// `ticket.status.<status>`.
    pub status_key: String,
    /// `low` … `urgent`.
    pub priority: String,
    /// `ticket.priority.<priority>`.
    pub priority_key: String,
    /// An SLA timer is breached.
    pub breached: bool,
    /// Opened, in the locale's style.
    pub created: String,
}

/// The customer's newest tickets for their page, or `None` for roles that do not work with tickets.
pub async fn customer_tickets(
    state: &AppState,
    tr: Tr,
    user: &WebUser,
    customer_id: &str,
) -> Result<Option<Vec<CustomerTicket>>, AppError> {
    if role_permits(user.actor.role, Action::TicketRead).is_err() {
        return Ok(None);
    }
    let query = TicketQuery {
        customer: Some(customer_id.to_owned()),
        limit: 10,
        ..TicketQuery::default()
    };
    let listed = state.veil.list_tickets(&user.actor, &query).await?;
    Ok(Some(
        listed
            .items
            .iter()
            .map(|view| CustomerTicket {
                id: view.id.clone(),
                subject: view.subject.clone(),
                status_key: format!("ticket.status.{}", view.status),
                priority: view.priority.clone(),
                priority_key: format!("ticket.priority.{}", view.priority),
                breached: view.breached,
                created: tr.datetime(&view.created_at),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Locale;

    #[test]
    fn spans_and_timers_in_both_languages() {
        let en = Tr::new(Locale::En);
        let zh = Tr::new(Locale::Zh);
        assert_eq!(span(en, 5 * 60_000), "5 min");
        assert_eq!(span(en, (3 * 60 + 5) * 60_000), "3 h 05 min");
        assert_eq!(span(en, (50 * 60) * 60_000), "2 d 2 h");
        assert_eq!(span(zh, (3 * 60 + 5) * 60_000), "3小时05分钟");
        let due = "2026-11-29T10:00:00.000Z";
        let at = |text: &str| millis(text).unwrap();
        let before = timer(en, at("2026-11-29T09:00:00Z"), due, None, false);
        assert_eq!(before.state, "due in 1 h 00 min");
        assert_eq!(before.due, "29 Nov 2026, 10:00 UTC");
        let late = timer(en, at("2026-11-29T10:10:00Z"), due, None, true);
        assert_eq!(late.state, "overdue by 10 min");
        assert!(late.breached);
        let met = timer(en, 0, due, Some("2026-11-29T09:00:00Z"), false);
        assert_eq!(met.state, "met");
        let missed = timer(zh, 0, due, Some("2026-11-29T11:00:00Z"), true);
        assert_eq!(missed.state, zh.get("tickets.missed"));
    }
}
