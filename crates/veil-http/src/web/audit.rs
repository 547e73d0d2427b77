//! The audit log viewer (DPOs and auditors read entries; admins, DPOs and auditors verify the chain): filters by
//! action, actor, customer and date range, pages backwards, and a "verify chain" button that shows the result.
//!
//! Entries never contain plaintext (the domain writes names of fields, ids and purposes only), so the viewer shows
//! them as they are; the filters are ids, action names and dates, none of them personal data, so they travel in
//! the URL like any link.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use veil_app::audit::{AuditQuery, AuditRecord, VerifyReport};
use veil_app::authz::{role_permits, Action};
use veil_app::AppError;

use super::approvals::short;
use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{encode_path, error_page, render, Layout, Page};
use crate::AppState;

/// Entries per page.
const PAGE_SIZE: u32 = 50;

/// The filters as typed (`?action=customer.reveal&actor=dora&from=2026-11-01…`).
#[derive(Deserialize, Default, Clone)]
pub struct AuditFilters {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

impl AuditFilters {
    /// The query string of these filters (without `before`).
    fn query_string(&self) -> String {
        [
            ("action", &self.action),
            ("actor", &self.actor),
            ("customer", &self.customer),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| format!("{name}={}", encode_path(value.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// An entry as shown.
struct EntryRow {
    seq: i64,
    time: String,
    actor: String,
    role_key: String,
    action: String,
    outcome: String,
    customers: String,
    fields: String,
    purpose: String,
    source_ip: String,
}

fn entry_row(tr: Tr, entry: &AuditRecord) -> EntryRow {
    EntryRow {
        seq: entry.seq,
        time: tr.datetime(&entry.time),
        actor: entry
            .actor_name
            .clone()
            .or_else(|| entry.actor_id.as_deref().map(short))
            .unwrap_or_else(|| tr.get("audit.system").to_owned()),
        role_key: entry
            .actor_role
            .as_deref()
            .map(|role| format!("role.{role}"))
            .unwrap_or_default(),
        action: entry.action.clone(),
        outcome: entry.outcome.clone(),
        customers: entry
            .customer_ids
            .iter()
            .map(|id| short(id))
            .collect::<Vec<_>>()
            .join(", "),
        fields: entry
            .fields
            .iter()
            .map(|field| tr.field_name(field))
            .collect::<Vec<_>>()
            .join(", "),
        purpose: entry
            .purpose
            .as_deref()
            .map(|purpose| {
                let key = format!("purpose.{purpose}");
                match tr.get(&key) {
                    text if text == key => purpose.to_owned(),
                    text => text.to_owned(),
                }
            })
            .unwrap_or_default(),
        source_ip: entry.source_ip.clone().unwrap_or_default(),
    }
}

/// The result of "verify chain".
struct VerifyResult {
    ok: bool,
    summary: String,
    problem: Option<String>,
}

fn verify_result(tr: Tr, report: &VerifyReport) -> VerifyResult {
    let entries = report.entries_checked.to_string();
    let checkpoints = report.checkpoints_checked.to_string();
    let values = [
        ("entries", entries.as_str()),
        ("checkpoints", checkpoints.as_str()),
    ];
    VerifyResult {
        ok: report.ok,
        summary: if report.ok {
            tr.fill("audit.verify_ok", &values)
        } else {
            let seq = report
                .first_bad_seq
                .map(|seq| seq.to_string())
                .unwrap_or_default();
            tr.fill("audit.verify_broken", &[("seq", &seq)])
        },
        problem: report.problem.clone(),
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditTemplate {
    t: Tr,
    layout: Layout,
    may_read: bool,
    filters: AuditFilters,
    rows: Vec<EntryRow>,
    next_href: Option<String>,
    first_href: Option<String>,
    error: Option<String>,
    verified: Option<VerifyResult>,
}

/// The log page.
pub async fn log(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(filters): Query<AuditFilters>,
) -> Response {
    audit_page(&state, &page, &user, filters, None).await
}

async fn audit_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    filters: AuditFilters,
    verified: Option<VerifyResult>,
) -> Response {
    let tr = page.tr;
    let may_read = role_permits(user.actor.role, Action::AuditRead).is_ok();
    if !may_read && verified.is_none() {
        // Admins verify the chain but do not read entries; anyone else is refused by the domain.
        if let Err(reason) = role_permits(user.actor.role, Action::AuditVerify) {
            return error_page(page, Some(user), &AppError::Forbidden(reason));
        }
    }
    let mut template = AuditTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        may_read,
        filters: filters.clone(),
        rows: Vec::new(),
        next_href: None,
        first_href: None,
        error: None,
        verified,
    };
    if !may_read {
        return render(&template, tr, StatusCode::OK);
    }
    let present = |value: &str| {
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_owned())
    };
    // The actor filter takes a login name (what people know) or a user id.
    let actor = match present(&filters.actor) {
        Some(name) => match state.veil.actor_by_username(&name).await {
            Ok(actor) => Some(actor.user_id.to_string()),
            Err(_) => Some(name),
        },
        None => None,
    };
    let before = match present(&filters.before).map(|text| text.parse::<i64>()) {
        Some(Ok(before)) => Some(before),
        Some(Err(_)) => None,
        None => None,
    };
    let query = AuditQuery {
        actor,
        action: present(&filters.action),
        customer: present(&filters.customer),
        from: present(&filters.from),
        to: present(&filters.to),
        before,
        limit: Some(PAGE_SIZE),
    };
    match state.veil.query_audit(&user.actor, &query).await {
        Ok(entries) => {
            template.rows = entries
                .items
                .iter()
                .map(|entry| entry_row(tr, entry))
                .collect();
            let base = filters.query_string();
            let join = if base.is_empty() { "" } else { "&" };
            template.next_href = entries
                .next_before
                .map(|seq| format!("/audit?{base}{join}before={seq}"));
            template.first_href = before.map(|_| format!("/audit?{base}"));
            render(&template, tr, StatusCode::OK)
        }
        Err(AppError::Validation(errors)) => {
            template.error = Some(
                errors
                    .iter()
                    .map(|error| {
                        format!(
                            "{}: {}",
                            tr.get(&format!("audit.{}", error.field)),
                            tr.get("audit.bad_date")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            render(&template, tr, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(error) => error_page(page, Some(user), &error),
    }
}

/// The verify button carries nothing but the token.
#[derive(Deserialize)]
pub struct VerifyForm {}

/// Verifies the whole chain (recorded in the audit trail itself) and shows the result above the log.
pub async fn verify(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<VerifyForm>,
) -> Response {
    let SignedForm { user, .. } = signed;
    match state.veil.verify_audit_as(&user.actor).await {
        Ok(report) => {
            let result = verify_result(page.tr, &report);
            audit_page(&state, &page, &user, AuditFilters::default(), Some(result)).await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}
