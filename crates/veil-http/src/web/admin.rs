//! The administrators' pages: security (the newest `veil doctor` results, open alerts, incident lock-down opened
//! and closed with a confirmation step) and backups (list, status, create, verify).
//!
//! Each action is the API's domain call (`open_incident_as`, `close_incident_as`, `create_backup_to`,
//! `verify_backup`); the roles are the domain's to check. Restoring stays a command-line operation, as in the API.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::authz::{role_permits, Action};
use veil_app::backup::BackupView;
use veil_app::doctor::Status;
use veil_app::incident::{CloseIncident, OpenIncident};
use veil_app::monitor::AlertQuery;
use veil_app::AppError;

use super::approvals::short;
use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// A doctor check as shown.
struct DoctorRow {
    name: String,
    status: &'static str,
    status_key: &'static str,
    detail: String,
}

/// An alert as shown.
struct AlertRow {
    severity: String,
    severity_key: String,
    rule: String,
    summary: String,
    who: String,
    time: String,
}

/// An incident as shown.
struct IncidentRow {
    id: String,
    short_id: String,
    reason: String,
    opened: String,
    closed: String,
    open: bool,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityTemplate {
    t: Tr,
    layout: Layout,
    doctor_time: Option<String>,
    doctor_ok: bool,
    checks: Vec<DoctorRow>,
    alerts: Vec<AlertRow>,
    incidents: Vec<IncidentRow>,
    locked_down: bool,
    may_manage_incidents: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// `?done=…` after an action.
#[derive(Deserialize)]
pub struct DoneParams {
    done: Option<String>,
}

fn done_notice(tr: Tr, done: Option<&str>) -> Option<String> {
    let key = match done? {
        "locked" => "security.done_locked",
        "unlocked" => "security.done_unlocked",
        "created" => "backups.done_created",
        _ => return None,
    };
    Some(tr.get(key).to_owned())
}

/// The security page.
pub async fn security(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<DoneParams>,
) -> Response {
    let notice = done_notice(page.tr, params.done.as_deref());
    security_page(&state, &page, &user, notice, None, StatusCode::OK).await
}

async fn security_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    let report = match state.veil.latest_doctor_report(&user.actor).await {
        Ok(report) => report,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let alerts = match state
        .veil
        .list_alerts(&user.actor, &AlertQuery::default())
        .await
    {
        Ok(alerts) => alerts.items,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let may_manage_incidents = role_permits(user.actor.role, Action::IncidentManage).is_ok();
    let incidents = if may_manage_incidents {
        match state.veil.list_incidents(&user.actor).await {
            Ok(incidents) => incidents,
            Err(error) => return error_page(page, Some(user), &error),
        }
    } else {
        Vec::new()
    };
    let template = SecurityTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        doctor_time: report.as_ref().map(|report| tr.datetime(&report.time)),
        doctor_ok: report.as_ref().is_some_and(|report| report.ok),
        checks: report
            .iter()
            .flat_map(|report| report.checks.iter())
            .map(|check| {
                let (status, status_key) = match check.status {
                    Status::Ok => ("ok", "security.status_ok"),
                    Status::Warn => ("warn", "security.status_warn"),
                    Status::Fail => ("fail", "security.status_fail"),
                };
                DoctorRow {
                    name: check.name.clone(),
                    status,
                    status_key,
                    detail: check.detail.clone(),
                }
            })
            .collect(),
        alerts: alerts
            .iter()
            .map(|alert| AlertRow {
                severity: alert.severity.clone(),
                severity_key: format!("request.risk.{}", alert.severity),
                rule: alert.rule.clone(),
                summary: alert.summary.clone(),
                who: alert.username.clone().unwrap_or_default(),
                time: tr.datetime(&alert.created_at),
            })
            .collect(),
        locked_down: incidents.iter().any(|incident| incident.open),
        incidents: incidents
            .iter()
            .take(20)
            .map(|incident| IncidentRow {
                id: incident.id.clone(),
                short_id: short(&incident.id),
                reason: incident.reason.clone(),
                opened: tr.datetime(&incident.opened_at),
                closed: incident
                    .closed_at
                    .as_deref()
                    .map(|at| tr.datetime(at))
                    .unwrap_or_default(),
                open: incident.open,
            })
            .collect(),
        may_manage_incidents,
        notice,
        error,
    };
    render(&template, tr, status)
}

/// Opening or closing an incident: the text, and `confirm=yes` once the user has seen the confirmation page.
#[derive(Deserialize)]
pub struct IncidentForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "security_confirm.html")]
struct ConfirmTemplate {
    t: Tr,
    layout: Layout,
    action: String,
    title_key: &'static str,
    explain_key: &'static str,
    button_key: &'static str,
    text: String,
}

fn confirm_page(
    page: &Page,
    user: &WebUser,
    action: String,
    opening: bool,
    text: String,
) -> Response {
    let template = ConfirmTemplate {
        t: page.tr,
        layout: Layout::new(page, Some(user)),
        action,
        title_key: if opening {
            "security.confirm_lock_title"
        } else {
            "security.confirm_unlock_title"
        },
        explain_key: if opening {
            "security.confirm_lock"
        } else {
            "security.confirm_unlock"
        },
        button_key: if opening {
            "security.lock_now"
        } else {
            "security.unlock_now"
        },
        text,
    };
    render(&template, page.tr, StatusCode::OK)
}

async fn refused_text(state: &AppState, page: &Page, user: &WebUser, key: &str) -> Response {
    security_page(
        state,
        page,
        user,
        None,
        Some(page.tr.get(key).to_owned()),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// Opens an incident (lock-down) after the confirmation step.
pub async fn lock_down(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<IncidentForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    if form.text.trim().is_empty() {
        return refused_text(&state, &page, &user, "security.reason_required").await;
    }
    if form.confirm != "yes" {
        return confirm_page(
            &page,
            &user,
            "/security/lockdown".to_owned(),
            true,
            form.text,
        );
    }
    let input = OpenIncident { reason: form.text };
    match state.veil.open_incident_as(Some(&user.actor), &input).await {
        Ok(_) => Redirect::to("/security?done=locked").into_response(),
        Err(AppError::Validation(_)) => {
            refused_text(&state, &page, &user, "security.reason_required").await
        }
        Err(AppError::Conflict(_)) => {
            refused_text(&state, &page, &user, "security.already_locked").await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// Closes an incident (ends the lock-down) after the confirmation step.
pub async fn close_incident(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<IncidentForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    if form.text.trim().is_empty() {
        return refused_text(&state, &page, &user, "security.note_required").await;
    }
    if form.confirm != "yes" {
        let action = format!("/security/incidents/{id}/close");
        return confirm_page(&page, &user, action, false, form.text);
    }
    let input = CloseIncident { note: form.text };
    match state
        .veil
        .close_incident_as(Some(&user.actor), Some(&id), &input)
        .await
    {
        Ok(_) => Redirect::to("/security?done=unlocked").into_response(),
        Err(AppError::Validation(_)) => {
            refused_text(&state, &page, &user, "security.note_required").await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// A backup as shown.
struct BackupRow {
    id: String,
    short_id: String,
    created: String,
    age: String,
    size: String,
    rows: i64,
    backend: String,
    verified_key: &'static str,
    verified_at: String,
}

fn age(tr: Tr, seconds: i64) -> String {
    if seconds < 3600 {
        tr.fill("backups.minutes_ago", &[("n", &(seconds / 60).to_string())])
    } else if seconds < 2 * 86_400 {
        tr.fill("backups.hours_ago", &[("n", &(seconds / 3600).to_string())])
    } else {
        tr.fill(
            "backups.days_ago",
            &[("n", &(seconds / 86_400).to_string())],
        )
    }
}

fn size(bytes: i64) -> String {
    match bytes {
        bytes if bytes < 1024 => format!("{bytes} B"),
        bytes if bytes < 1024 * 1024 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        bytes => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
    }
}

fn backup_row(tr: Tr, backup: &BackupView) -> BackupRow {
    let (verified_key, verified_at) = match &backup.verification {
        Some(verification) if verification.ok => {
            ("backups.verified_ok", tr.datetime(&verification.at))
        }
        Some(verification) => ("backups.verified_failed", tr.datetime(&verification.at)),
        None => ("backups.not_verified", String::new()),
    };
    BackupRow {
        id: backup.id.clone(),
        short_id: short(&backup.id),
        created: tr.datetime(&backup.created_at),
        age: age(tr, backup.age_seconds),
        size: size(backup.size_bytes),
        rows: backup.rows,
        backend: backup.backend.clone(),
        verified_key,
        verified_at,
    }
}

/// The result of verifying one archive, as shown.
struct VerifyRow {
    name: String,
    ok: bool,
    detail: String,
}

#[derive(Template)]
#[template(path = "backups.html")]
struct BackupsTemplate {
    t: Tr,
    layout: Layout,
    backups: Vec<BackupRow>,
    configured: bool,
    may_manage: bool,
    status_key: &'static str,
    newest_verified: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    verified: Option<VerifyOutcome>,
}

/// A verification's outcome as shown.
struct VerifyOutcome {
    ok: bool,
    checks: Vec<VerifyRow>,
}

/// Backups younger than this count as recent (the unmask prerequisite uses the same day).
const RECENT_SECONDS: i64 = 86_400;

async fn backups_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    notice: Option<String>,
    error: Option<String>,
    verified: Option<VerifyOutcome>,
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    let backups = match state.veil.list_backups(Some(&user.actor)).await {
        Ok(backups) => backups,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let newest_verified = backups
        .iter()
        .filter(|backup| backup.verification.as_ref().is_some_and(|check| check.ok))
        .min_by_key(|backup| backup.age_seconds);
    let status_key = match newest_verified {
        Some(backup) if backup.age_seconds < RECENT_SECONDS => "backups.status_fresh",
        Some(_) => "backups.status_stale",
        None => "backups.status_none",
    };
    let template = BackupsTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        newest_verified: newest_verified.map(|backup| age(tr, backup.age_seconds)),
        backups: backups
            .iter()
            .map(|backup| backup_row(tr, backup))
            .collect(),
        configured: state.veil.backup_settings().is_some(),
        may_manage: role_permits(user.actor.role, Action::BackupManage).is_ok(),
        status_key,
        notice,
        error,
        verified,
    };
    render(&template, tr, status)
}

/// The backups page.
pub async fn backups(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<DoneParams>,
) -> Response {
    let notice = done_notice(page.tr, params.done.as_deref());
    backups_page(&state, &page, &user, notice, None, None, StatusCode::OK).await
}

/// A button's form: the token only.
#[derive(Deserialize)]
pub struct EmptyForm {}

/// Takes a backup now (to the configured destination).
pub async fn create_backup(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<EmptyForm>,
) -> Response {
    let SignedForm { user, .. } = signed;
    match state
        .veil
        .create_backup_to(Some(&user.actor), None, &())
        .await
    {
        Ok(_) => Redirect::to("/backups?done=created").into_response(),
        Err(error @ (AppError::Forbidden(_) | AppError::NotFound)) => {
            error_page(&page, Some(&user), &error)
        }
        Err(error) => {
            tracing::warn!(%error, "web: backup failed");
            let message = page.tr.get("backups.failed").to_owned();
            backups_page(
                &state,
                &page,
                &user,
                None,
                Some(message),
                None,
                StatusCode::CONFLICT,
            )
            .await
        }
    }
}

/// Verifies one catalogued backup and shows each check.
pub async fn verify_backup(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<EmptyForm>,
) -> Response {
    let SignedForm { user, .. } = signed;
    // Only catalogued ids: a value from a browser must never name a file on the server.
    let known = match state.veil.list_backups(Some(&user.actor)).await {
        Ok(backups) => backups.iter().any(|backup| backup.id == id),
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    if !known {
        return error_page(&page, Some(&user), &AppError::NotFound);
    }
    match state.veil.verify_backup(Some(&user.actor), &id, &()).await {
        Ok(report) => {
            let rows = report
                .checks
                .iter()
                .map(|check| VerifyRow {
                    name: check.name.clone(),
                    ok: check.ok,
                    detail: check.detail.clone(),
                })
                .collect();
            backups_page(
                &state,
                &page,
                &user,
                None,
                None,
                Some(VerifyOutcome {
                    ok: report.ok,
                    checks: rows,
                }),
                StatusCode::OK,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}
