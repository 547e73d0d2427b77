//! The approvers' inbox (DPOs, admins, managers) and everyone's own access page: requests and their states, grants
//! with time left, revoking one's own grant.
//!
//! Every decision goes through `Veil::decide_unmask_request`, which enforces separation of duties, the manager's
//! limits and the blocked/pending states; this page only explains its answer. A request shows who asked, why, the
//! prerequisite checks with the domain's reasons, the risk and which customers lack consent: never customer data
//! (customers appear by id).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::governance::{DecisionInput, GrantView, UnmaskRequestView};
use veil_app::AppError;

use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// A prerequisite check as shown.
pub struct CheckRow {
    /// `check.<name>`.
    pub label_key: String,
    /// Met or not.
    pub met: bool,
    /// The domain's explanation (English, no personal data).
    pub reason: String,
}

/// A request as shown in the inbox or on the access page.
pub struct RequestRow {
    id: String,
    short_id: String,
    requester: String,
    requester_role_key: String,
    mine: bool,
    purpose_key: String,
    purpose_detail: String,
    basis_key: String,
    jurisdiction_key: String,
    mode_key: String,
    fields: Vec<String>,
    customers: Vec<String>,
    lacking_consent: Vec<String>,
    duration: String,
    risk: String,
    risk_key: String,
    state_key: String,
    approvals_given: usize,
    approvals_needed: i64,
    checks: Vec<CheckRow>,
    created: String,
}

/// The first 8 characters of an id, enough to tell rows apart on screen.
pub fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

fn request_row(
    tr: Tr,
    me: &str,
    names: &HashMap<String, String>,
    request: &UnmaskRequestView,
) -> RequestRow {
    let lacking_consent = request
        .checks
        .iter()
        .filter(|check| check.name == "consent" && !check.met)
        .flat_map(|check| check.customers.iter().map(|id| short(id)))
        .collect();
    RequestRow {
        id: request.id.clone(),
        short_id: short(&request.id),
        requester: names
            .get(&request.requester_id)
            .cloned()
            .unwrap_or_else(|| short(&request.requester_id)),
        requester_role_key: format!("role.{}", request.requester_role),
        mine: request.requester_id == me,
        purpose_key: format!("purpose.{}", request.purpose),
        purpose_detail: request.purpose_detail.clone(),
        basis_key: format!("basis.{}", request.legal_basis),
        jurisdiction_key: format!("jurisdiction.{}", request.jurisdiction),
        mode_key: format!("mode.{}", request.mode),
        fields: request
            .fields
            .iter()
            .map(|field| tr.field_name(field))
            .collect(),
        customers: request.customer_ids.iter().map(|id| short(id)).collect(),
        lacking_consent,
        duration: tr.fill(
            "approvals.minutes",
            &[("minutes", &request.duration_minutes.to_string())],
        ),
        risk: request.risk.clone(),
        risk_key: format!("request.risk.{}", request.risk),
        state_key: format!("request.state.{}", request.state),
        approvals_given: request
            .approvals
            .iter()
            .filter(|decision| decision.decision == "approve")
            .count(),
        approvals_needed: request.approvals_needed,
        checks: request
            .checks
            .iter()
            .map(|check| CheckRow {
                label_key: format!("check.{}", check.name),
                met: check.met,
                reason: tr.check_reason(check),
            })
            .collect(),
        created: tr.datetime(&request.created_at),
    }
}

/// User ids to login names, for showing who asked. Staff names are not customer data.
async fn usernames(state: &AppState) -> HashMap<String, String> {
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

/// Notices the inbox and the access page show after a redirect (`?done=…`), by translation key.
fn notice_key(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "approved" => Some("approvals.done_approved"),
        "rejected" => Some("approvals.done_rejected"),
        "revoked" => Some("access.done_revoked"),
        _ => None,
    }
}

/// `?done=`.
#[derive(Deserialize)]
pub struct DoneParams {
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct InboxTemplate {
    t: Tr,
    layout: Layout,
    pending: Vec<RequestRow>,
    blocked: Vec<RequestRow>,
    notice: Option<String>,
    error: Option<String>,
}

/// The inbox: pending requests to decide, and blocked ones waiting for their requester.
pub async fn inbox(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<DoneParams>,
) -> Response {
    let notice = notice_key(params.done.as_deref()).map(|key| page.tr.get(key).to_owned());
    inbox_page(&state, &page, &user, notice, None, StatusCode::OK).await
}

async fn inbox_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    // The inbox is for those who decide; the domain's role table says who that is.
    if let Err(reason) =
        veil_app::authz::role_permits(user.actor.role, veil_app::authz::Action::UnmaskApprove)
    {
        return error_page(page, Some(user), &AppError::Forbidden(reason));
    }
    let requests = match state.veil.list_unmask_requests(&user.actor).await {
        Ok(requests) => requests,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let names = usernames(state).await;
    let me = user.actor.user_id.to_string();
    let rows = |wanted: &str| -> Vec<RequestRow> {
        requests
            .iter()
            .filter(|request| request.state == wanted)
            .map(|request| request_row(page.tr, &me, &names, request))
            .collect()
    };
    let template = InboxTemplate {
        t: page.tr,
        layout: Layout::new(page, Some(user)),
        pending: rows("pending"),
        blocked: rows("blocked"),
        notice,
        error,
    };
    render(&template, page.tr, status)
}

/// The decision form: `decision` is `approve` or `reject`.
#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

/// Approves or rejects a request; the domain's refusal (own request, manager's limits, blocked, decided twice,
/// no reason) comes back as a translated message on the inbox.
pub async fn decide(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<DecisionForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return error_page(&page, Some(&user), &AppError::Validation(Vec::new())),
    };
    let input = DecisionInput {
        reason: form.reason,
    };
    // Said before the domain refuses it too, so the message can be precise.
    let own = state
        .veil
        .get_unmask_request(&user.actor, &id)
        .await
        .is_ok_and(|request| request.requester_id == user.actor.user_id.to_string());
    match state
        .veil
        .decide_unmask_request(&user.actor, &id, approve, &input)
        .await
    {
        Ok(_) => {
            let done = if approve { "approved" } else { "rejected" };
            Redirect::to(&format!("/approvals?done={done}")).into_response()
        }
        Err(AppError::NotFound) => error_page(&page, Some(&user), &AppError::NotFound),
        Err(error) => {
            let key = match &error {
                AppError::Forbidden(_) if own => "approvals.own_request",
                AppError::Forbidden(_) => "approvals.refused",
                AppError::Validation(_) => "approvals.reason_required",
                AppError::Conflict(_) => "approvals.conflict",
                _ => return error_page(&page, Some(&user), &error),
            };
            let status = match error {
                AppError::Forbidden(_) => StatusCode::FORBIDDEN,
                AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            };
            inbox_page(
                &state,
                &page,
                &user,
                None,
                Some(page.tr.get(key).to_owned()),
                status,
            )
            .await
        }
    }
}

/// A grant as shown on the access page.
struct GrantRow {
    id: String,
    short_id: String,
    fields: Vec<String>,
    customers: Vec<String>,
    purpose_key: String,
    mode_key: String,
    expires: String,
    time_left: String,
    reveals: String,
    live: bool,
    ended_key: &'static str,
}

fn time_left(tr: Tr, seconds: i64) -> String {
    let minutes = (seconds + 59) / 60;
    if minutes >= 120 {
        tr.fill(
            "access.hours_left",
            &[("hours", &(minutes / 60).to_string())],
        )
    } else {
        tr.fill("access.minutes_left", &[("minutes", &minutes.to_string())])
    }
}

fn grant_row(tr: Tr, grant: &GrantView) -> GrantRow {
    GrantRow {
        id: grant.id.clone(),
        short_id: short(&grant.id),
        fields: grant
            .fields
            .iter()
            .map(|field| tr.field_name(field))
            .collect(),
        customers: grant.customer_ids.iter().map(|id| short(id)).collect(),
        purpose_key: format!("purpose.{}", grant.purpose),
        mode_key: format!("mode.{}", grant.mode),
        expires: tr.datetime(&grant.expires_at),
        time_left: time_left(tr, grant.seconds_left),
        reveals: match grant.max_reveals {
            Some(most) => format!("{} / {most}", grant.reveals_used),
            None => grant.reveals_used.to_string(),
        },
        live: grant.live,
        ended_key: if grant.revoked_at.is_some() {
            "access.revoked"
        } else {
            "access.expired"
        },
    }
}

#[derive(Template)]
#[template(path = "access.html")]
struct AccessTemplate {
    t: Tr,
    layout: Layout,
    requests: Vec<RequestRow>,
    grants: Vec<GrantRow>,
    notice: Option<String>,
}

/// My unmask requests and my grants.
pub async fn access(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<DoneParams>,
) -> Response {
    let me = user.actor.user_id.to_string();
    let requests = match state.veil.list_unmask_requests(&user.actor).await {
        Ok(requests) => requests,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let grants = match state.veil.list_grants(&user.actor).await {
        Ok(grants) => grants,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let names = HashMap::from([(me.clone(), user.actor.username.clone())]);
    let template = AccessTemplate {
        t: page.tr,
        layout: Layout::new(&page, Some(&user)),
        requests: requests
            .iter()
            .filter(|request| request.requester_id == me)
            .map(|request| request_row(page.tr, &me, &names, request))
            .collect(),
        grants: grants
            .iter()
            .filter(|grant| grant.user_id == me)
            .map(|grant| grant_row(page.tr, grant))
            .collect(),
        notice: notice_key(params.done.as_deref()).map(|key| page.tr.get(key).to_owned()),
    };
    render(&template, page.tr, StatusCode::OK)
}

/// The revoke button carries nothing but the token.
#[derive(Deserialize)]
pub struct EmptyForm {}

/// Gives up one of my grants.
pub async fn revoke_grant(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<EmptyForm>,
) -> Response {
    let SignedForm { user, .. } = signed;
    match state.veil.revoke_grant(&user.actor, &id).await {
        Ok(_) => Redirect::to("/access?done=revoked").into_response(),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}
