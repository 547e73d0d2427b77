//! The dashboard at `/dashboard` (and `/`): what each role needs at a glance. My customers and their industries
//! (sales, service, managers, admins), pending approvals (DPOs, admins, managers), open alerts (admins, DPOs,
//! auditors), reveals per day over the last 14 days counted from the audit log (DPOs, auditors), a way to my tickets
//! (roles that work with tickets) and upcoming birthdays and holidays (care reminders, for the roles that work
//! with customers).
//!
//! Charts are SVG drawn by the template from numbers computed here: no script, no chart library, nothing inline
//! that the CSP would have to allow (colours come from the stylesheet). Each panel asks the domain, and a panel the
//! role may not see is simply left out.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use veil_app::authz::{role_permits, Action};
use veil_app::monitor::AlertQuery;
use veil_app::AppError;

use super::i18n::{Locale, Tr};
use super::session::WebUser;
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// Days in the reveals chart.
const DAYS: u32 = 14;
/// Industries shown as their own bar; the rest are summed into "other".
const MAX_INDUSTRY_BARS: usize = 7;
/// How far ahead the reminders panel looks.
const REMINDER_DAYS: u32 = 7;
/// Reminders the panel lists at most.
const MAX_REMINDER_LINES: usize = 20;

/// One line of the reminders panel: a customer's birthday (masked name, linked) or a holiday.
pub struct ReminderLine {
    /// `MM-DD`.
    pub month_day: String,
    /// "Birthday of 欧阳**" or the holiday's name.
    pub text: String,
    /// "today" or "in N days".
    pub when: String,
    /// The customer's page, for birthdays.
    pub link: Option<String>,
}

fn reminder_lines(tr: Tr, reminders: &veil_app::care::Reminders) -> Vec<ReminderLine> {
    reminders
        .items
        .iter()
        .take(MAX_REMINDER_LINES)
        .map(|item| {
            let text = match (&item.holiday, &item.customer_name) {
                (Some(holiday), _) => match tr.locale {
                    Locale::Zh => holiday.name_zh.clone(),
                    Locale::En => holiday.name_en.clone(),
                },
                (None, Some(name)) => tr.fill("dashboard.birthday_of", &[("name", name.as_str())]),
                (None, None) => String::new(),
            };
            let when = match item.days_until {
                0 => tr.get("dashboard.today").to_owned(),
                1 => tr.get("dashboard.tomorrow").to_owned(),
                days => tr.fill("dashboard.in_days", &[("days", days.to_string().as_str())]),
            };
            ReminderLine {
                month_day: item.month_day.clone(),
                text,
                when,
                link: item.customer_id.map(|id| format!("/customers/{id}")),
            }
        })
        .collect()
}

/// One line of the follow-up tasks panel: an open task of mine, overdue or due within the window.
pub struct TaskLine {
    /// Task id (for the "done" form).
    pub id: String,
    /// Masked title.
    pub title: String,
    /// Due time in the locale's style.
    pub due: String,
    /// Past due.
    pub overdue: bool,
    /// The deal's or the customer's page.
    pub link: Option<String>,
}

async fn task_lines(
    state: &AppState,
    tr: Tr,
    actor: &veil_app::Actor,
) -> Result<Option<Vec<TaskLine>>, AppError> {
    let until = chrono::Utc::now() + chrono::Duration::days(i64::from(REMINDER_DAYS));
    let query = veil_app::tasks::TaskQuery {
        assignee: Some("me".to_owned()),
        due_before: Some(until.to_rfc3339()),
        done: Some(false),
        limit: Some(MAX_REMINDER_LINES as u32),
        ..Default::default()
    };
    Ok(
        optional(state.veil.list_tasks(actor, &query).await)?.map(|tasks| {
            tasks
                .into_iter()
                .map(|task| TaskLine {
                    link: match (&task.deal_id, &task.customer_id) {
                        (Some(deal), _) => Some(format!("/deals/{deal}")),
                        (None, Some(customer)) => Some(format!("/customers/{customer}")),
                        (None, None) => None,
                    },
                    due: tr.datetime(&task.due_at),
                    overdue: task.overdue,
                    title: task.title,
                    id: task.id,
                })
                .collect()
        }),
    )
}

/// The "done" button of a task on the dashboard or the tasks page.
pub async fn complete_task(
    State(state): State<AppState>,
    page: Page,
    axum::extract::Path(id): axum::extract::Path<String>,
    signed: super::session::SignedForm<std::collections::HashMap<String, String>>,
) -> Response {
    let user = signed.user;
    // The tasks page sends `back=tasks` to come back to it.
    let back = match signed.form.get("back").map(String::as_str) {
        Some("tasks") => "/tasks?done=completed",
        _ => "/dashboard",
    };
    let patch = veil_app::tasks::TaskPatch { done: true };
    match state.veil.set_task_done(&user.actor, &id, &patch).await {
        Ok(_) => axum::response::IntoResponse::into_response(axum::response::Redirect::to(back)),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// One bar of a chart, in the SVG's user units.
pub struct Bar {
    /// Label under or beside the bar.
    pub label: String,
    /// The number.
    pub value: i64,
    /// Position and size.
    pub x: i64,
    /// Top.
    pub y: i64,
    /// Width.
    pub width: i64,
    /// Height.
    pub height: i64,
    /// Where the label goes.
    pub label_x: i64,
    /// Where the label goes.
    pub label_y: i64,
    /// Where the value goes.
    pub value_x: i64,
    /// Where the value goes.
    pub value_y: i64,
}

/// Horizontal bars (label, bar, value), one per row: readable on a phone, labels of any length.
pub fn horizontal_bars(values: &[(String, i64)]) -> Vec<Bar> {
    const ROW: i64 = 28;
    const LABEL: i64 = 130;
    const SPAN: i64 = 220;
    let most = values
        .iter()
        .map(|(_, value)| *value)
        .max()
        .unwrap_or(0)
        .max(1);
    values
        .iter()
        .enumerate()
        .map(|(index, (label, value))| {
            let y = index as i64 * ROW + 4;
            let width = (value * SPAN / most).max(i64::from(*value > 0));
            Bar {
                label: label.clone(),
                value: *value,
                x: LABEL,
                y,
                width,
                height: ROW - 8,
                label_x: LABEL - 6,
                label_y: y + 15,
                value_x: LABEL + width + 6,
                value_y: y + 15,
            }
        })
        .collect()
}

/// Vertical bars (one per day) over a 14-column grid.
pub fn vertical_bars(values: &[(String, i64)]) -> Vec<Bar> {
    const COLUMN: i64 = 26;
    const HEIGHT: i64 = 120;
    const TOP: i64 = 16;
    let most = values
        .iter()
        .map(|(_, value)| *value)
        .max()
        .unwrap_or(0)
        .max(1);
    values
        .iter()
        .enumerate()
        .map(|(index, (label, value))| {
            let height = (value * HEIGHT / most).max(i64::from(*value > 0));
            let x = index as i64 * COLUMN + 4;
            Bar {
                label: label.clone(),
                value: *value,
                x,
                y: TOP + HEIGHT - height,
                width: COLUMN - 6,
                height,
                label_x: x + (COLUMN - 6) / 2,
                label_y: TOP + HEIGHT + 14,
                value_x: x + (COLUMN - 6) / 2,
                value_y: TOP + HEIGHT - height - 3,
            }
        })
        .collect()
}

/// A chart: its bars, the SVG height, and a text summary for screen readers (and the table beside it).
pub struct Chart {
    /// Bars.
    pub bars: Vec<Bar>,
    /// SVG height in user units.
    pub height: i64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardTemplate {
    t: Tr,
    layout: Layout,
    customers: Option<i64>,
    industries: Option<Chart>,
    pending_approvals: Option<usize>,
    open_alerts: Option<usize>,
    reveals: Option<Chart>,
    my_grants: Option<usize>,
    /// Whether the role works with tickets (the tile links to the ones assigned to me).
    tickets: bool,
    reminders: Option<Vec<ReminderLine>>,
    tasks: Option<Vec<TaskLine>>,
    /// Whether the role works with deals (the tile links to the board).
    deals: bool,
}

/// Keeps `Forbidden` as "not for this role" (the panel is left out); other errors stop the page.
fn optional<T>(result: Result<T, AppError>) -> Result<Option<T>, AppError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(AppError::Forbidden(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

async fn build(
    state: &AppState,
    page: &Page,
    user: &WebUser,
) -> Result<DashboardTemplate, AppError> {
    let tr = page.tr;
    let actor = &user.actor;
    let may = |action: Action| role_permits(actor.role, action).is_ok();

    let mut customers = None;
    let mut industries = None;
    if may(Action::CustomerList) {
        if let Some(counts) = optional(state.veil.customer_industry_counts(actor).await)? {
            customers = Some(counts.iter().map(|(_, count)| count).sum());
            let mut bars: Vec<(String, i64)> = Vec::new();
            let mut other = 0;
            for (index, (industry, count)) in counts.iter().enumerate() {
                let label = match industry.as_deref() {
                    Some(industry) if index < MAX_INDUSTRY_BARS => {
                        let key = format!("industry.{industry}");
                        match tr.get(&key) {
                            text if text == key => industry.to_owned(),
                            text => text.to_owned(),
                        }
                    }
                    None if index < MAX_INDUSTRY_BARS => tr.get("dashboard.no_industry").to_owned(),
                    _ => {
                        other += count;
                        continue;
                    }
                };
                bars.push((label, *count));
            }
            if other > 0 {
                bars.push((tr.get("dashboard.other_industries").to_owned(), other));
            }
            let bars = horizontal_bars(&bars);
            industries = Some(Chart {
                height: bars.len() as i64 * 28 + 8,
                bars,
            });
        }
    }

    let pending_approvals = if may(Action::UnmaskApprove) {
        optional(state.veil.list_unmask_requests(actor).await)?.map(|requests| {
            requests
                .iter()
                .filter(|request| {
                    request.state == "pending" && request.requester_id != actor.user_id.to_string()
                })
                .count()
        })
    } else {
        None
    };

    let my_grants = if may(Action::Reveal) {
        optional(state.veil.list_grants(actor).await)?.map(|grants| {
            grants
                .iter()
                .filter(|grant| grant.live && grant.user_id == actor.user_id.to_string())
                .count()
        })
    } else {
        None
    };

    let open_alerts = if may(Action::SecurityRead) {
        optional(state.veil.list_alerts(actor, &AlertQuery::default()).await)?
            .map(|alerts| alerts.items.len())
    } else {
        None
    };

    let reminders = if may(Action::CustomerList) {
        optional(state.veil.reminders(actor, Some(REMINDER_DAYS)).await)?
            .map(|reminders| reminder_lines(tr, &reminders))
    } else {
        None
    };

    let tasks = if may(Action::TaskRead) {
        task_lines(state, tr, actor).await?
    } else {
        None
    };

    let reveals = if may(Action::AuditRead) {
        reveals_per_day(state, user).await?
    } else {
        None
    };

    Ok(DashboardTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        customers,
        industries,
        pending_approvals,
        open_alerts,
        reveals,
        my_grants,
        tickets: may(Action::TicketRead),
        reminders,
        tasks,
        deals: may(Action::DealRead),
    })
}

/// Reveals per UTC day over the last [`DAYS`] days, counted by the database from `customer.reveal` audit entries.
async fn reveals_per_day(state: &AppState, user: &WebUser) -> Result<Option<Chart>, AppError> {
    let Some(per_day) = optional(state.veil.reveals_per_day(&user.actor, DAYS).await)? else {
        return Ok(None);
    };
    let values: Vec<(String, i64)> = per_day
        .iter()
        .map(|(day, count)| (day.format("%d").to_string(), *count))
        .collect();
    Ok(Some(Chart {
        bars: vertical_bars(&values),
        height: 156,
    }))
}

/// The dashboard.
pub async fn dashboard(State(state): State<AppState>, page: Page, user: WebUser) -> Response {
    match build(&state, &page, &user).await {
        Ok(template) => render(&template, page.tr, StatusCode::OK),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value() {
        let bars = horizontal_bars(&[
            ("a".to_owned(), 10),
            ("b".to_owned(), 5),
            ("c".to_owned(), 0),
        ]);
        assert_eq!(bars[0].width, 220);
        assert_eq!(bars[1].width, 110);
        assert_eq!(bars[2].width, 0);
        let bars = vertical_bars(&[("1".to_owned(), 1), ("2".to_owned(), 1000)]);
        assert_eq!(bars[1].height, 120);
        assert_eq!(bars[0].height, 1, "a non-zero value stays visible");
        assert!(vertical_bars(&[]).is_empty());
    }
}
