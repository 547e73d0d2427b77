//! "Request access": the unmask request form, pre-filled from the customer page, and the request's evaluation
//! (risk, prerequisite checks, state) once submitted. Approving is the approvers' inbox (`approvals.rs`).
//!
//! While the form is filled in, the page's script posts it to `/unmask-requests/check`, which answers with the
//! prerequisite checks as JSON (translated labels): `Veil::preview_unmask_request`, the very validation and
//! evaluation a submission runs, with nothing stored. Without the script the form submits as before.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use veil_app::customers::CustomerView;
use veil_app::governance::{RequestScope, UnmaskRequestInput, UnmaskRequestView, CUSTOM_PREFIX};
use veil_app::{AppError, CustomerId};

use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// Purposes offered (the domain's codes; see `docs/governance.md`).
const PURPOSES: [&str; 7] = [
    "customer_service",
    "contract_performance",
    "audit",
    "legal_claim",
    "fraud_investigation",
    "regulatory_report",
    "marketing",
];
const LEGAL_BASES: [&str; 7] = [
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_interest",
    "publicly_disclosed",
    "legitimate_interests",
];
const JURISDICTIONS: [&str; 2] = ["CN", "EU"];
const FIELDS: [&str; 7] = [
    "name",
    "phone",
    "id_number",
    "email",
    "address",
    "birth_date",
    "bank_card",
];

/// An option of a select or a checkbox.
struct Choice {
    value: &'static str,
    label_key: String,
    selected: bool,
}

fn choices(options: &[&'static str], prefix: &str, selected: &[&str]) -> Vec<Choice> {
    options
        .iter()
        .map(|&value| Choice {
            value,
            label_key: format!("{prefix}.{value}"),
            selected: selected.contains(&value),
        })
        .collect()
}

/// A checkbox for a sensitive custom field of the customer's industry template (`field_custom.<key>`), labelled
/// from the template in the page's language.
struct CustomChoice {
    /// `custom.<key>`.
    value: String,
    label: String,
    selected: bool,
}

/// The sensitive custom fields of `view`'s industry template, those in `selected` ticked.
async fn custom_choices(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    view: &CustomerView,
    selected: &[String],
) -> Result<Vec<CustomChoice>, AppError> {
    let Some(industry) = view.industry.as_deref() else {
        return Ok(Vec::new());
    };
    let zh = page.tr.locale == super::i18n::Locale::Zh;
    Ok(state
        .veil
        .list_industries(&user.actor)
        .await?
        .into_iter()
        .filter(|template| template.key == industry)
        .flat_map(|template| template.fields)
        .filter(|def| def.sensitive)
        .map(|def| {
            let value = format!("{CUSTOM_PREFIX}{}", def.key);
            CustomChoice {
                selected: selected.contains(&value),
                label: if zh { def.label_zh } else { def.label_en },
                value,
            }
        })
        .collect())
}

#[derive(Template)]
#[template(path = "request_new.html")]
struct NewRequestTemplate {
    t: Tr,
    layout: Layout,
    customer_id: String,
    customer_name: String,
    fields: Vec<Choice>,
    /// The sensitive custom fields of the customer's industry.
    custom_fields: Vec<CustomChoice>,
    purposes: Vec<Choice>,
    legal_bases: Vec<Choice>,
    jurisdictions: Vec<Choice>,
    purpose_detail: String,
    duration_minutes: i64,
    errors: Vec<String>,
}

/// `?customer=…&field=…`.
#[derive(Deserialize)]
pub struct NewParams {
    customer: Option<String>,
    field: Option<String>,
}

/// The request form, pre-filled with the customer and the field the user clicked.
pub async fn new_form(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<NewParams>,
) -> Response {
    let Some(customer) = params
        .customer
        .as_deref()
        .and_then(|id| id.parse::<CustomerId>().ok())
    else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    let view = match state.veil.get_customer(&user.actor, customer).await {
        Ok(view) => view,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let field = params.field.unwrap_or_default();
    let custom_fields =
        match custom_choices(&state, &page, &user, &view, std::slice::from_ref(&field)).await {
            Ok(choices) => choices,
            Err(error) => return error_page(&page, Some(&user), &error),
        };
    let template = NewRequestTemplate {
        t: page.tr,
        layout: Layout::new(&page, Some(&user)),
        customer_id: view.id.to_string(),
        customer_name: view.name,
        fields: choices(&FIELDS, "field", &[field.as_str()]),
        custom_fields,
        purposes: choices(&PURPOSES, "purpose", &["customer_service"]),
        legal_bases: choices(&LEGAL_BASES, "basis", &["consent"]),
        jurisdictions: choices(&JURISDICTIONS, "jurisdiction", &["CN"]),
        purpose_detail: String::new(),
        duration_minutes: 60,
        errors: Vec::new(),
    };
    render(&template, page.tr, StatusCode::OK)
}

/// The submitted form. Each field is its own checkbox (`field_phone=on`): URL-encoded forms have no lists.
#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    purpose_detail: String,
    #[serde(default)]
    legal_basis: String,
    #[serde(default)]
    jurisdiction: String,
    #[serde(default)]
    duration_minutes: String,
    field_name: Option<String>,
    field_phone: Option<String>,
    field_id_number: Option<String>,
    field_email: Option<String>,
    field_address: Option<String>,
    field_birth_date: Option<String>,
    field_bank_card: Option<String>,
    /// The custom fields' checkboxes (`field_custom.<key>=on`); other names are ignored.
    #[serde(flatten)]
    custom: BTreeMap<String, String>,
}

impl RequestForm {
    fn duration(&self) -> i64 {
        self.duration_minutes.trim().parse::<i64>().unwrap_or(0)
    }

    /// The domain's input: a view of the named fields of this one customer.
    fn input(&self) -> UnmaskRequestInput {
        UnmaskRequestInput {
            purpose: self.purpose.clone(),
            purpose_detail: self.purpose_detail.clone(),
            legal_basis: self.legal_basis.clone(),
            jurisdiction: self.jurisdiction.clone(),
            consent_ids: Vec::new(),
            scope: RequestScope {
                customer_ids: vec![self.customer.clone()],
                segment: None,
            },
            fields: self.fields(),
            mode: "view".to_owned(),
            duration_minutes: self.duration(),
            recipient: None,
            recipient_name: None,
            cross_border: false,
            max_reveals: None,
            necessity: None,
            policy_change: None,
        }
    }

    /// The ticked fields: built-in ones, then custom ones (`custom.<key>`).
    fn fields(&self) -> Vec<String> {
        [
            ("name", &self.field_name),
            ("phone", &self.field_phone),
            ("id_number", &self.field_id_number),
            ("email", &self.field_email),
            ("address", &self.field_address),
            ("birth_date", &self.field_birth_date),
            ("bank_card", &self.field_bank_card),
        ]
        .into_iter()
        .filter(|(_, checked)| checked.is_some())
        .map(|(name, _)| name.to_owned())
        .chain(self.custom.keys().filter_map(|name| {
            name.strip_prefix("field_")
                .filter(|field| field.starts_with(CUSTOM_PREFIX))
                .map(str::to_owned)
        }))
        .collect()
    }
}

/// A check of the evaluated request.
struct CheckRow {
    label_key: String,
    met: bool,
}

#[derive(Template)]
#[template(path = "request_result.html")]
struct ResultTemplate {
    t: Tr,
    layout: Layout,
    customer_id: String,
    state_key: String,
    risk_key: String,
    approvals_needed: i64,
    checks: Vec<CheckRow>,
    created: String,
}

/// Submits the request; shows its evaluation, or the form again with translated errors.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<RequestForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let fields = form.fields();
    let duration = form.duration();
    let input = form.input();
    match state
        .veil
        .create_unmask_request(&user.actor, Some(&user.token), &input)
        .await
    {
        Ok(request) => result_page(&page, &user, &form.customer, &request),
        Err(AppError::Validation(errors)) => {
            form_again(&state, &page, &user, &form, &fields, duration, &errors).await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

async fn form_again(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    form: &RequestForm,
    fields: &[String],
    duration: i64,
    errors: &[veil_app::FieldError],
) -> Response {
    let tr = page.tr;
    let customer = form
        .customer
        .parse::<CustomerId>()
        .map_err(|_| AppError::NotFound);
    let view = match customer {
        Ok(customer) => state.veil.get_customer(&user.actor, customer).await,
        Err(error) => Err(error),
    };
    let view = match view {
        Ok(view) => view,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let custom_fields = match custom_choices(state, page, user, &view, fields).await {
        Ok(choices) => choices,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let built_in: Vec<&str> = fields.iter().map(String::as_str).collect();
    let template = NewRequestTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        customer_id: view.id.to_string(),
        customer_name: view.name,
        fields: choices(&FIELDS, "field", &built_in),
        custom_fields,
        purposes: choices(&PURPOSES, "purpose", &[form.purpose.as_str()]),
        legal_bases: choices(&LEGAL_BASES, "basis", &[form.legal_basis.as_str()]),
        jurisdictions: choices(
            &JURISDICTIONS,
            "jurisdiction",
            &[form.jurisdiction.as_str()],
        ),
        purpose_detail: form.purpose_detail.clone(),
        duration_minutes: duration,
        errors: error_messages(tr, errors),
    };
    render(&template, tr, StatusCode::UNPROCESSABLE_ENTITY)
}

/// Validation errors as `Field: message` lines in the user's language.
fn error_messages(tr: Tr, errors: &[veil_app::FieldError]) -> Vec<String> {
    errors
        .iter()
        .map(|error| {
            format!(
                "{}: {}",
                tr.get(&format!("request.field.{}", error.field)),
                tr.field_error(&error.code)
            )
        })
        .collect()
}

/// One check of the live evaluation.
#[derive(Serialize)]
pub struct LiveCheck {
    /// `legal_basis`, `consent`, … (stable, for styling and tests).
    name: String,
    /// The check's name in the user's language.
    label: String,
    met: bool,
    /// "met" or "not met" in the user's language.
    status: String,
    /// Why, in the user's language (no personal data).
    reason: String,
}

/// The live evaluation of the form as it stands.
#[derive(Serialize)]
pub struct LiveChecks {
    /// Whether the form is complete enough to evaluate.
    valid: bool,
    /// What to fix first, in the user's language (when not valid).
    errors: Vec<String>,
    /// `low`, `medium` or `high` (empty when not valid).
    risk: String,
    /// "Would go to approval · Risk: high · Approvals needed: 2".
    summary: String,
    checks: Vec<LiveCheck>,
}

/// The prerequisite checks of the form as filled in so far, as JSON: evaluated by the domain exactly as a
/// submission would be, without creating a request (nothing is stored or audited). Posted by the page's script
/// with the form's CSRF token.
pub async fn check(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<RequestForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let tr = page.tr;
    let preview = state
        .veil
        .preview_unmask_request(&user.actor, Some(&user.token), &form.input())
        .await;
    match preview {
        Ok(preview) => {
            // Worded apart from the result page's states: this is a forecast, not a request.
            let state_key = if preview.blocked {
                "request.live_would_block"
            } else {
                "request.live_would_go"
            };
            let risk_label = tr.get(&format!("request.risk.{}", preview.risk)).to_owned();
            let summary = tr.fill(
                "request.live_summary",
                &[
                    ("state", tr.get(state_key)),
                    ("risk", &risk_label),
                    ("approvals", &preview.approvals_needed.to_string()),
                ],
            );
            Json(LiveChecks {
                valid: true,
                errors: Vec::new(),
                risk: preview.risk.clone(),
                summary,
                checks: preview
                    .checks
                    .into_iter()
                    .map(|check| LiveCheck {
                        reason: tr.check_reason(&check),
                        label: tr.get(&format!("check.{}", check.name)).to_owned(),
                        status: tr
                            .get(if check.met {
                                "request.check_met"
                            } else {
                                "request.check_unmet"
                            })
                            .to_owned(),
                        name: check.name,
                        met: check.met,
                    })
                    .collect(),
            })
            .into_response()
        }
        Err(AppError::Validation(errors)) => Json(LiveChecks {
            valid: false,
            errors: error_messages(tr, &errors),
            risk: String::new(),
            summary: tr.get("request.live_incomplete").to_owned(),
            checks: Vec::new(),
        })
        .into_response(),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

fn result_page(
    page: &Page,
    user: &WebUser,
    customer: &str,
    request: &UnmaskRequestView,
) -> Response {
    let template = ResultTemplate {
        t: page.tr,
        layout: Layout::new(page, Some(user)),
        customer_id: customer.to_owned(),
        state_key: format!("request.state.{}", request.state),
        risk_key: format!("request.risk.{}", request.risk),
        approvals_needed: request.approvals_needed,
        checks: request
            .checks
            .iter()
            .map(|check| CheckRow {
                label_key: format!("check.{}", check.name),
                met: check.met,
            })
            .collect(),
        created: page.tr.datetime(&request.created_at),
    };
    render(&template, page.tr, StatusCode::CREATED)
}
