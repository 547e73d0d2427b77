//! The customer pool page (公海): customers without an owner, names masked as the caller's role sees them and
//! every other personal field fully masked, filtered by industry and tag, each with a Claim button (a CSRF form).
//! The customer page's pool section (where the customer stands, its claims, releases and returns, the release
//! form) is built here too. Every read and write is a call to the domain (`Veil::list_pool`,
//! `claim_from_pool`, `release_to_pool`, `pool_state`), which decides who may, masks and audits.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::authz::{role_permits, Action};
use veil_app::pool::{PoolFilter, ReleaseInput};
use veil_app::{AppError, CustomerId};

use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// Customers per page.
const PAGE_SIZE: u32 = 25;

/// One pool customer as listed.
pub struct PoolRow {
    id: String,
    name: String,
    contacts: String,
    industry: String,
    tags: String,
    since: String,
    activity: String,
}

#[derive(Template)]
#[template(path = "pool.html")]
struct PoolTemplate {
    t: Tr,
    layout: Layout,
    rows: Vec<PoolRow>,
    industry: String,
    tag: String,
    filtered: bool,
    held_text: String,
    notice: Option<String>,
    notice_error: bool,
    next_href: Option<String>,
    paged: bool,
}

/// The list's query string.
#[derive(Deserialize, Default)]
pub struct PoolParams {
    #[serde(default)]
    industry: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn query_value(value: &str) -> String {
    super::encode_path(value).replace('/', "%2F")
}

async fn pool_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    params: &PoolParams,
    notice: Option<(String, bool)>,
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    let filter = PoolFilter {
        industry: params
            .industry
            .clone()
            .filter(|value| !value.trim().is_empty()),
        tag: params.tag.clone().filter(|value| !value.trim().is_empty()),
    };
    let listed = state
        .veil
        .list_pool(&user.actor, &filter, params.cursor.as_deref(), PAGE_SIZE)
        .await;
    let listed = match listed {
        Ok(listed) => listed,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let rows = listed
        .items
        .iter()
        .map(|entry| {
            let contacts: Vec<String> = [
                ("field.phone", &entry.phone),
                ("field.email", &entry.email),
                ("field.address", &entry.address),
            ]
            .into_iter()
            .filter_map(|(key, value)| {
                value
                    .as_ref()
                    .map(|shown| format!("{} {shown}", tr.get(key)))
            })
            .collect();
            PoolRow {
                id: entry.id.to_string(),
                name: entry.name.clone(),
                contacts: contacts.join(" · "),
                industry: entry.industry.clone().unwrap_or_default(),
                tags: entry.tags.join(", "),
                since: entry
                    .in_pool_since
                    .as_deref()
                    .map(|at| tr.datetime(at))
                    .unwrap_or_default(),
                activity: entry
                    .last_activity
                    .as_deref()
                    .map(|at| tr.datetime(at))
                    .unwrap_or_else(|| tr.get("pool.never").to_owned()),
            }
        })
        .collect();
    let industry = filter.industry.clone().unwrap_or_default();
    let tag = filter.tag.clone().unwrap_or_default();
    let next_href = listed.next_cursor.as_ref().map(|cursor| {
        format!(
            "/pool?industry={}&tag={}&cursor={}",
            query_value(&industry),
            query_value(&tag),
            query_value(cursor)
        )
    });
    let notice = notice.or_else(|| match params.done.as_deref() {
        Some("released") => Some((tr.get("pool.released").to_owned(), false)),
        _ => None,
    });
    let template = PoolTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        rows,
        filtered: !industry.is_empty() || !tag.is_empty(),
        industry,
        tag,
        held_text: if listed.claim_limit > 0 {
            tr.fill(
                "pool.held_of",
                &[
                    ("held", &listed.held.to_string()),
                    ("limit", &listed.claim_limit.to_string()),
                ],
            )
        } else {
            tr.fill("pool.held", &[("held", &listed.held.to_string())])
        },
        notice_error: notice.as_ref().is_some_and(|(_, error)| *error),
        notice: notice.map(|(text, _)| text),
        next_href,
        paged: params.cursor.is_some(),
    };
    render(&template, tr, status)
}

/// `/pool`: the pool, filtered and paged.
pub async fn list(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<PoolParams>,
) -> Response {
    pool_page(&state, &page, &user, &params, None, StatusCode::OK).await
}

/// The claim form: nothing but the CSRF token.
#[derive(Deserialize)]
pub struct ClaimForm {}

/// Claims a customer, then opens its page; a lost race or the limit shows the pool again with why.
pub async fn claim(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<ClaimForm>,
) -> Response {
    let SignedForm { user, .. } = signed;
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    match state.veil.claim_from_pool(&user.actor, customer).await {
        Ok(_) => Redirect::to(&format!("/customers/{customer}?pool=claimed")).into_response(),
        Err(AppError::Conflict(_)) => {
            let notice = (page.tr.get("pool.taken").to_owned(), true);
            pool_page(
                &state,
                &page,
                &user,
                &PoolParams::default(),
                Some(notice),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(AppError::Validation(errors))
            if errors
                .iter()
                .any(|error| error.code == "claim_limit_reached") =>
        {
            let notice = (page.tr.get("pool.limit_reached").to_owned(), true);
            pool_page(
                &state,
                &page,
                &user,
                &PoolParams::default(),
                Some(notice),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// The release form.
#[derive(Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    reason: String,
}

/// Puts the customer back in the pool, then shows the pool (the previous owner no longer sees the customer).
pub async fn release(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<ReleaseForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    let input = ReleaseInput {
        reason: form.reason,
    };
    match state
        .veil
        .release_to_pool(&user.actor, customer, &input)
        .await
    {
        Ok(_) => Redirect::to("/pool?done=released").into_response(),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// One claim, release or return on the customer page.
pub struct PoolEventRow {
    /// Translation key of the event.
    pub kind_key: String,
    /// When, in the locale's words.
    pub at: String,
    /// Who (a user name, or "automatic").
    pub by: String,
    /// Why (masked).
    pub reason: String,
}

/// The customer page's pool section.
pub struct PoolSection {
    /// `pool.state_in_pool`, `pool.state_claimed` or `pool.state_owned`.
    pub state_key: &'static str,
    /// When a salesperson's customer goes back without a follow-up (in words), if it does.
    pub return_rule: Option<String>,
    /// Claims, releases and returns, newest first.
    pub history: Vec<PoolEventRow>,
    /// Whether the release form is shown.
    pub may_release: bool,
    /// A notice after a claim.
    pub notice: Option<String>,
}

/// The pool section of a customer's page (the caller already sees the customer).
pub async fn pool_section(
    state: &AppState,
    tr: Tr,
    user: &WebUser,
    customer: CustomerId,
) -> Result<PoolSection, AppError> {
    let pool = state.veil.pool_state(&user.actor, customer).await?;
    let names = super::tickets::usernames(state).await;
    let name_of = |id: &Option<String>| {
        id.as_ref()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
    };
    Ok(PoolSection {
        state_key: if pool.in_pool {
            "pool.state_in_pool"
        } else if pool.claimed {
            "pool.state_claimed"
        } else {
            "pool.state_owned"
        },
        return_rule: (!pool.in_pool && pool.return_days > 0).then(|| {
            tr.fill(
                "pool.return_rule",
                &[("days", &pool.return_days.to_string())],
            )
        }),
        history: pool
            .history
            .iter()
            .map(|event| PoolEventRow {
                kind_key: format!("pool.kind_{}", event.kind),
                at: tr.datetime(&event.at),
                by: name_of(&event.actor).unwrap_or_else(|| tr.get("pool.system").to_owned()),
                reason: event.reason.clone(),
            })
            .collect(),
        may_release: !pool.in_pool && role_permits(user.actor.role, Action::PoolRelease).is_ok(),
        notice: None,
    })
}
