//! `/leads` and `/tasks`: the leads the caller may list (masked names, newest first) with a form to enter one and
//! a button that converts a lead into a customer; and the caller's open follow-up tasks (overdue first, then by
//! due time) with a form to add one and a button to mark one done.
//!
//! Every read and write is the domain's (`Veil::list_leads`, `create_lead`, `convert_lead`, `list_tasks`,
//! `create_task`, `set_task_done`), which decides visibility, validates, masks and audits. A lead's phone number
//! and e-mail address are typed into the form and travel in the POST body only; the page never shows them back.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::customers::CustomerInput;
use veil_app::tasks::{TaskInput, TaskQuery};
use veil_app::{AppError, CustomerId, FieldError};

use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// Leads shown on the page.
const MAX_LEADS: u32 = 100;
/// Tasks shown on the page.
const MAX_TASKS: u32 = 200;

/// A lead as listed.
pub struct LeadLine {
    id: String,
    name: String,
    industry: String,
    source: String,
    created: String,
}

/// The values a lead form is redrawn with after an error (never the sensitive ones).
#[derive(Default)]
pub struct LeadFormValues {
    industry: String,
    source: String,
}

/// The industries the lead form offers (the customer record takes any; these have labels and pipelines).
const INDUSTRIES: [&str; 7] = [
    "real_estate",
    "automotive",
    "services",
    "finance",
    "education",
    "ecommerce",
    "other",
];

/// An industry option: value, label, selected.
pub struct IndustryChoice {
    value: &'static str,
    label: String,
    selected: bool,
}

fn industry_choices(tr: Tr, selected: &str) -> Vec<IndustryChoice> {
    INDUSTRIES
        .iter()
        .map(|industry| IndustryChoice {
            value: industry,
            label: industry_label(tr, Some(industry)),
            selected: *industry == selected,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "leads.html")]
struct LeadsTemplate {
    t: Tr,
    layout: Layout,
    leads: Vec<LeadLine>,
    more: bool,
    industries: Vec<IndustryChoice>,
    form: LeadFormValues,
    errors: Vec<String>,
    notice: Option<String>,
}

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub struct DoneParams {
    #[serde(default)]
    done: String,
}

fn industry_label(tr: Tr, industry: Option<&str>) -> String {
    match industry {
        None => String::new(),
        Some(industry) => {
            let key = format!("industry.{industry}");
            match tr.get(&key) {
                text if text == key => industry.to_owned(),
                text => text.to_owned(),
            }
        }
    }
}

async fn leads_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    form: LeadFormValues,
    errors: Vec<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    let leads = match state.veil.list_leads(&user.actor, None, MAX_LEADS).await {
        Ok(leads) => leads,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let template = LeadsTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        more: leads.next_cursor.is_some(),
        leads: leads
            .items
            .into_iter()
            .map(|lead| LeadLine {
                id: lead.customer.id.to_string(),
                name: lead.customer.name,
                industry: industry_label(tr, lead.customer.industry.as_deref()),
                source: lead.customer.source.unwrap_or_default(),
                created: tr.datetime(&lead.customer.created_at),
            })
            .collect(),
        industries: industry_choices(tr, &form.industry),
        form,
        errors,
        notice,
    };
    render(&template, tr, status)
}

/// The leads page.
pub async fn list(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<DoneParams>,
) -> Response {
    let notice = match params.done.as_str() {
        "created" => Some(page.tr.get("leads.created").to_owned()),
        _ => None,
    };
    leads_page(
        &state,
        &page,
        &user,
        LeadFormValues::default(),
        Vec::new(),
        notice,
        StatusCode::OK,
    )
    .await
}

/// The new-lead form as posted.
#[derive(Debug, Deserialize)]
pub struct LeadForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    industry: String,
    #[serde(default)]
    source: String,
}

fn present(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Enters a lead; invalid input comes back in the form with each problem named (sensitive boxes emptied).
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<LeadForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let tr = page.tr;
    let input = CustomerInput {
        name: present(&form.name),
        phone: present(&form.phone),
        email: present(&form.email),
        industry: present(&form.industry),
        source: present(&form.source),
        ..CustomerInput::default()
    };
    let values = LeadFormValues {
        industry: form.industry.clone(),
        source: form.source.clone(),
    };
    match state.veil.create_lead(&user.actor, &input, false).await {
        Ok(_) => Redirect::to("/leads?done=created").into_response(),
        Err(AppError::Validation(errors)) => {
            let messages = errors
                .iter()
                .map(|error| {
                    format!(
                        "{}: {}",
                        tr.get(&format!("field.{}", error.field)),
                        tr.field_error(&error.code)
                    )
                })
                .collect();
            leads_page(
                &state,
                &page,
                &user,
                values,
                messages,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::Duplicate { field, .. }) => {
            let label = tr.get(&format!("field.{field}")).to_owned();
            let message = tr.fill("customers.duplicate", &[("field", &label)]);
            leads_page(
                &state,
                &page,
                &user,
                values,
                vec![message],
                None,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// Converts a lead into a customer and opens the customer's page.
pub async fn convert(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<std::collections::HashMap<String, String>>,
) -> Response {
    let user = signed.user;
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    match state.veil.convert_lead(&user.actor, customer).await {
        Ok(lead) => Redirect::to(&format!("/customers/{}", lead.customer.id)).into_response(),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// A task as listed.
pub struct TaskLine {
    id: String,
    title: String,
    due: String,
    overdue: bool,
    link: Option<String>,
}

/// The values the task form is redrawn with after an error.
#[derive(Default)]
pub struct TaskFormValues {
    title: String,
    due_at: String,
    customer: String,
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksTemplate {
    t: Tr,
    layout: Layout,
    tasks: Vec<TaskLine>,
    overdue: usize,
    form: TaskFormValues,
    errors: Vec<String>,
    notice: Option<String>,
}

async fn tasks_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    form: TaskFormValues,
    errors: Vec<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    let query = TaskQuery {
        assignee: Some("me".to_owned()),
        done: Some(false),
        limit: Some(MAX_TASKS),
        ..TaskQuery::default()
    };
    let tasks = match state.veil.list_tasks(&user.actor, &query).await {
        Ok(tasks) => tasks,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let tasks: Vec<TaskLine> = tasks
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
        .collect();
    let template = TasksTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        overdue: tasks.iter().filter(|task| task.overdue).count(),
        tasks,
        form,
        errors,
        notice,
    };
    render(&template, tr, status)
}

/// The tasks page.
pub async fn tasks(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<DoneParams>,
) -> Response {
    let notice = match params.done.as_str() {
        "created" => Some(page.tr.get("tasks.created").to_owned()),
        "completed" => Some(page.tr.get("tasks.completed").to_owned()),
        _ => None,
    };
    tasks_page(
        &state,
        &page,
        &user,
        TaskFormValues::default(),
        Vec::new(),
        notice,
        StatusCode::OK,
    )
    .await
}

/// The new-task form as posted.
#[derive(Debug, Deserialize)]
pub struct TaskForm {
    #[serde(default)]
    title: String,
    /// `YYYY-MM-DDTHH:MM` from a `datetime-local` input, in China Standard Time.
    #[serde(default)]
    due_at: String,
    #[serde(default)]
    customer: String,
}

/// A `datetime-local` value (China Standard Time, the CRM's calendar) as RFC 3339; other text is passed on for
/// the domain to refuse precisely.
fn due_rfc3339(text: &str) -> String {
    let text = text.trim();
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if chrono::NaiveDateTime::parse_from_str(text, format).is_ok() {
            let seconds = if text.len() == 16 { ":00" } else { "" };
            return format!("{text}{seconds}+08:00");
        }
    }
    text.to_owned()
}

/// Adds a task for the caller.
pub async fn create_task(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<TaskForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let tr = page.tr;
    let input = TaskInput {
        title: form.title.clone(),
        due_at: due_rfc3339(&form.due_at),
        assignee: None,
        customer_id: present(&form.customer),
        deal_id: None,
    };
    let result = if input.due_at.is_empty() {
        Err(AppError::Validation(vec![FieldError::new(
            "due_at", "required", "required",
        )]))
    } else {
        state.veil.create_task(&user.actor, &input).await
    };
    match result {
        Ok(_) => Redirect::to("/tasks?done=created").into_response(),
        Err(AppError::Validation(errors)) => {
            let messages = errors
                .iter()
                .map(|error| {
                    format!(
                        "{}: {}",
                        tr.get(&format!("tasks.field.{}", error.field)),
                        tr.field_error(&error.code)
                    )
                })
                .collect();
            let values = TaskFormValues {
                title: form.title,
                due_at: form.due_at,
                customer: form.customer,
            };
            tasks_page(
                &state,
                &page,
                &user,
                values,
                messages,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_china_standard_time() {
        assert_eq!(due_rfc3339("2030-01-02T09:30"), "2030-01-02T09:30:00+08:00");
        assert_eq!(
            due_rfc3339("2030-01-02T09:30:15"),
            "2030-01-02T09:30:15+08:00"
        );
        assert_eq!(due_rfc3339(" tomorrow "), "tomorrow");
    }
}
