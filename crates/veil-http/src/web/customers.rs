//! Customer pages: the masked list with paging and exact search, the detail page with per-field reveal or
//! "request access", and the create and edit forms (one form, one validation: the domain's) with inline,
//! translated validation errors; and the customer's notes, shown as stored (masked in place on write), with a form
//! to add one. The edit form never holds a plaintext value: sensitive boxes start empty, their
//! hint shows the masked value, and an empty box keeps what is stored.
//!
//! Everything shown comes from the domain's masked reads. Plaintext appears only on the response to a reveal
//! form, through `Veil::reveal_customer` (live grant, recent MFA step-up, audit entry first), and that response is
//! `no-store` like every other. Search values travel in the POST body, so they never land in a URL, a browser
//! history or an access log.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::authz::{role_permits, Action};
use veil_app::customers::{CustomerInput, CustomerPatch, CustomerView, ExactSearch};
use veil_app::governance::RevealInput;
use veil_app::notes::NoteInput;
use veil_app::segments::{ListFilter, SegmentInput};
use veil_app::users::LoginError;
use veil_app::{AppError, CustomerId, FieldError, SensitiveField};
use zeroize::Zeroizing;

use super::consents::{self, ConsentRow};
use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// Customers per page.
const PAGE_SIZE: u32 = 25;

/// The sensitive fields in display order, with their names as the domain spells them.
const SENSITIVE_FIELDS: [SensitiveField; 7] = [
    SensitiveField::Name,
    SensitiveField::Phone,
    SensitiveField::IdNumber,
    SensitiveField::Email,
    SensitiveField::Address,
    SensitiveField::BirthDate,
    SensitiveField::BankCard,
];

fn masked_value(view: &CustomerView, field: SensitiveField) -> Option<&str> {
    match field {
        SensitiveField::Name => Some(view.name.as_str()),
        SensitiveField::Phone => view.phone.as_deref(),
        SensitiveField::IdNumber => view.id_number.as_deref(),
        SensitiveField::Email => view.email.as_deref(),
        SensitiveField::Address => view.address.as_deref(),
        SensitiveField::BirthDate => view.birth_date.as_deref(),
        SensitiveField::BankCard => view.bank_card.as_deref(),
    }
}

/// A translated label for a free-text code the UI knows (industry, gender), or the text itself.
pub(super) fn known_or_raw(tr: Tr, prefix: &str, value: &str) -> String {
    let key = format!("{prefix}.{value}");
    match tr.get(&key) {
        text if text == key => value.to_owned(),
        text => text.to_owned(),
    }
}

/// One row of the list.
struct ListRow {
    id: String,
    name: String,
    phone: String,
    id_number: String,
    email: String,
    industry: String,
    tags: String,
    created: String,
}

impl ListRow {
    fn new(tr: Tr, view: &CustomerView) -> ListRow {
        ListRow {
            id: view.id.to_string(),
            name: view.name.clone(),
            phone: view.phone.clone().unwrap_or_default(),
            id_number: view.id_number.clone().unwrap_or_default(),
            email: view.email.clone().unwrap_or_default(),
            industry: view
                .industry
                .as_deref()
                .map(|industry| known_or_raw(tr, "industry", industry))
                .unwrap_or_default(),
            tags: view.tags.join(", "),
            created: tr.datetime(&view.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "customers.html")]
struct ListTemplate {
    t: Tr,
    layout: Layout,
    rows: Vec<ListRow>,
    next_href: Option<String>,
    paged: bool,
    searched: bool,
    search_by: String,
    search_error: Option<String>,
    search_summary: String,
    filter: FilterParams,
    filtered: bool,
    industries: Vec<(String, String)>,
    segments: Vec<(String, String)>,
}

/// The list's filters as the form and the paging links carry them (none of them is personal data, so they may
/// sit in the URL).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct FilterParams {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    mine: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    team: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    tag: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    industry: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    segment: String,
}

impl FilterParams {
    fn is_empty(&self) -> bool {
        self.mine.is_empty()
            && self.team.is_empty()
            && self.tag.is_empty()
            && self.industry.is_empty()
            && self.segment.is_empty()
    }

    /// The domain's filter: a saved segment's, or the fields given ("mine" is the caller as owner).
    async fn resolve(
        &self,
        state: &AppState,
        actor: &veil_app::users::Actor,
    ) -> Result<ListFilter, AppError> {
        if !self.segment.is_empty() {
            return state
                .veil
                .segment_filter(actor, &self.segment)
                .await?
                .ok_or(AppError::NotFound);
        }
        let text = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_owned());
        Ok(ListFilter {
            owner: (!self.mine.is_empty()).then(|| actor.user_id.to_string()),
            team: text(&self.team),
            tag: text(&self.tag),
            industry: text(&self.industry),
        })
    }

    /// `/customers?…` with these filters and an optional cursor.
    fn href(&self, cursor: Option<&str>) -> String {
        #[derive(serde::Serialize)]
        struct WithCursor<'a> {
            #[serde(flatten)]
            filter: &'a FilterParams,
            #[serde(skip_serializing_if = "Option::is_none")]
            cursor: Option<&'a str>,
        }
        let query = serde_urlencoded::to_string(WithCursor {
            filter: self,
            cursor,
        })
        .unwrap_or_default();
        if query.is_empty() {
            "/customers".to_owned()
        } else {
            format!("/customers?{query}")
        }
    }
}

/// The industries the filter offers, with their labels.
fn industry_options(tr: Tr) -> Vec<(String, String)> {
    INDUSTRIES
        .iter()
        .map(|code| ((*code).to_owned(), known_or_raw(tr, "industry", code)))
        .collect()
}

/// The caller's saved segments for the filter's select (none when they cannot list customers).
async fn segment_options(
    state: &AppState,
    actor: &veil_app::users::Actor,
) -> Vec<(String, String)> {
    state
        .veil
        .segments(actor)
        .await
        .map(|segments| {
            segments
                .into_iter()
                .map(|segment| (segment.id, segment.name))
                .collect()
        })
        .unwrap_or_default()
}

/// `?cursor=` and the filters.
#[derive(Deserialize)]
pub struct ListParams {
    cursor: Option<String>,
    #[serde(flatten)]
    filter: FilterParams,
}

/// The caller's customers, masked, newest first, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<ListParams>,
) -> Response {
    let cursor = params.cursor.filter(|cursor| !cursor.is_empty());
    let listed = match params.filter.resolve(&state, &user.actor).await {
        Ok(filter) => {
            state
                .veil
                .list_customers_where(&user.actor, &filter, cursor.as_deref(), PAGE_SIZE)
                .await
        }
        Err(error) => Err(error),
    };
    let customers = match listed {
        Ok(customers) => customers,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let template = ListTemplate {
        t: page.tr,
        layout: Layout::new(&page, Some(&user)),
        rows: customers
            .items
            .iter()
            .map(|view| ListRow::new(page.tr, view))
            .collect(),
        next_href: customers
            .next_cursor
            .map(|cursor| params.filter.href(Some(&cursor))),
        paged: cursor.is_some(),
        searched: false,
        search_by: "phone".to_owned(),
        search_error: None,
        search_summary: String::new(),
        filtered: !params.filter.is_empty(),
        industries: industry_options(page.tr),
        segments: segment_options(&state, &user.actor).await,
        filter: params.filter,
    };
    render(&template, page.tr, StatusCode::OK)
}

/// The "save these filters as a segment" form.
#[derive(Deserialize)]
pub struct SegmentForm {
    #[serde(default)]
    name: String,
    #[serde(flatten)]
    filter: FilterParams,
}

/// Saves the list's current filters as one of the caller's segments, then lists by it.
pub async fn save_segment(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<SegmentForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let filter = FilterParams {
        segment: String::new(),
        ..form.filter
    };
    let saved = match filter.resolve(&state, &user.actor).await {
        Ok(filter) => {
            state
                .veil
                .save_segment(
                    &user.actor,
                    &SegmentInput {
                        name: form.name,
                        filter,
                    },
                )
                .await
        }
        Err(error) => Err(error),
    };
    match saved {
        Ok(segment) => Redirect::to(
            &FilterParams {
                segment: segment.id,
                ..FilterParams::default()
            }
            .href(None),
        )
        .into_response(),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// The exact-search form.
#[derive(Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    by: String,
    #[serde(default)]
    value: String,
}

/// Exact search by mobile or resident ID number through the blind index. Charged to the same per-user exact
/// search budget as `GET /api/v1/customers?phone=…`, so the web UI is no way around it.
pub async fn search(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<SearchForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let field = match form.by.as_str() {
        "id_number" => SensitiveField::IdNumber,
        _ => SensitiveField::Phone,
    };
    let mut template = ListTemplate {
        t: page.tr,
        layout: Layout::new(&page, Some(&user)),
        rows: Vec::new(),
        next_href: None,
        paged: false,
        searched: true,
        search_by: field.as_str().to_owned(),
        search_error: None,
        search_summary: String::new(),
        filter: FilterParams::default(),
        filtered: false,
        industries: industry_options(page.tr),
        segments: segment_options(&state, &user.actor).await,
    };
    if state
        .rate_limiter
        .check_user(user.actor.user_id, true)
        .is_err()
    {
        template.search_error = Some(page.tr.get("customers.search_rate_limited").to_owned());
        return render(&template, page.tr, StatusCode::TOO_MANY_REQUESTS);
    }
    let search = ExactSearch {
        field,
        value: form.value,
    };
    match state.veil.search_customers(&user.actor, &search).await {
        Ok(found) => {
            template.rows = found
                .iter()
                .map(|view| ListRow::new(page.tr, view))
                .collect();
            template.search_summary = page.tr.fill(
                "customers.search_results",
                &[("count", &template.rows.len().to_string())],
            );
            render(&template, page.tr, StatusCode::OK)
        }
        Err(AppError::Validation(errors)) => {
            let code = errors
                .first()
                .map(|error| error.code.as_str())
                .unwrap_or("invalid");
            template.search_error = Some(page.tr.field_error(code).to_owned());
            render(&template, page.tr, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// One custom field of the customer's industry template on the detail page.
struct CustomRow {
    /// The field's name in requests, grants and reveals (`custom.<key>`).
    name: String,
    label: String,
    value: String,
    masked: bool,
    /// A live view grant of the caller covers it (a Reveal button instead of "Request access").
    granted: bool,
    /// The plaintext, on the response to its reveal only.
    revealed: Option<Zeroizing<String>>,
}

/// The custom-field rows of `view`, labelled from its industry's template in the page's language; values of
/// fields the template no longer has keep their key as label.
fn custom_rows(
    tr: Tr,
    view: &CustomerView,
    templates: &[veil_app::industries::IndustryView],
) -> Vec<CustomRow> {
    let zh = tr.locale == super::i18n::Locale::Zh;
    let defs = view
        .industry
        .as_deref()
        .and_then(|industry| templates.iter().find(|template| template.key == industry))
        .map(|template| template.fields.as_slice())
        .unwrap_or_default();
    let Some(values) = view.custom_fields.as_object() else {
        return Vec::new();
    };
    values
        .iter()
        .map(|(key, value)| {
            let masked = view
                .masked
                .iter()
                .any(|name| *name == format!("custom.{key}"));
            let def = defs.iter().find(|def| def.key == *key);
            let label = def.map_or_else(
                || key.clone(),
                |def| {
                    if zh {
                        def.label_zh.clone()
                    } else {
                        def.label_en.clone()
                    }
                },
            );
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Bool(flag) => tr
                    .get(if *flag { "form.yes" } else { "form.no" })
                    .to_owned(),
                other => other.to_string(),
            };
            let shown = def
                .filter(|_| !masked)
                .and_then(|def| def.options.iter().find(|option| option.value == text))
                .map_or(text.clone(), |option| {
                    if zh {
                        option.label_zh.clone()
                    } else {
                        option.label_en.clone()
                    }
                });
            CustomRow {
                name: format!("custom.{key}"),
                label,
                value: shown,
                masked,
                granted: false,
                revealed: None,
            }
        })
        .collect()
}

/// One custom-field input of the create form (`custom.<key>`).
struct CustomInput {
    name: String,
    label: String,
    /// `text`, `number`, `date` or `select`.
    input_type: &'static str,
    options: Vec<(String, String, bool)>,
    value: String,
    sensitive: bool,
    error: Option<String>,
}

/// One sensitive field on the detail page.
struct FieldRow {
    name: &'static str,
    label_key: String,
    masked_value: String,
    masked: bool,
    granted: bool,
    revealed: Option<Zeroizing<String>>,
}

#[derive(Template)]
#[template(path = "customer.html")]
pub(super) struct DetailTemplate {
    t: Tr,
    layout: Layout,
    id: String,
    fields: Vec<FieldRow>,
    gender: String,
    tags: String,
    industry: String,
    /// The industry template's custom fields: label, shown value (masked display for sensitive ones), masked.
    custom: Vec<CustomRow>,
    source: String,
    created: String,
    updated: String,
    mfa_enabled: bool,
    step_up_fresh: bool,
    may_edit: bool,
    notice: Option<String>,
    consents: ConsentSection,
    /// `None` when the role may not read orders (the section is left out).
    pub(super) orders: Option<super::customer_orders::OrderSection>,
    /// The customer's newest tickets; `None` when the role does not work with tickets.
    tickets: Option<Vec<super::tickets::CustomerTicket>>,
    /// Whether the "New ticket" link is shown.
    may_open_ticket: bool,
    /// The customer's notes; `None` when the role may not read notes (the section is left out).
    notes: Option<NoteSection>,
    /// Where the customer stands with respect to the pool (公海).
    pool: super::pool::PoolSection,
    /// Messages and surveys; `None` when the role does not read a customer's interactions.
    pub(super) messages: Option<super::customer_messages::MessageSection>,
}

/// The notes section of the detail page: the notes as stored (personal data already masked in place on write).
struct NoteSection {
    rows: Vec<NoteRow>,
    /// Whether the add form is shown.
    may_write: bool,
    /// The add form's error, translated, after the domain refused a note.
    error: Option<String>,
    /// The text typed, put back into the box after a refusal (this response is no-store and goes only to the
    /// person who typed it, like the create form's values).
    draft: String,
}

/// One note in the section.
struct NoteRow {
    author: String,
    written: String,
    body: String,
}

/// Notes shown on the detail page (the newest ones).
const NOTES_SHOWN: u32 = 50;

/// The customer's newest notes, masked, or `None` for roles that do not read notes.
async fn note_section(
    state: &AppState,
    tr: Tr,
    user: &WebUser,
    customer_id: CustomerId,
) -> Result<Option<NoteSection>, AppError> {
    if role_permits(user.actor.role, Action::NoteRead).is_err() {
        return Ok(None);
    }
    let notes = state
        .veil
        .list_notes(&user.actor, customer_id, None, NOTES_SHOWN)
        .await?;
    let names = if notes.is_empty() {
        Default::default()
    } else {
        super::tickets::usernames(state).await
    };
    Ok(Some(NoteSection {
        rows: notes
            .into_iter()
            .map(|note| NoteRow {
                author: super::tickets::name_of(&names, note.author.as_deref()),
                written: tr.datetime(&note.created_at),
                body: note.body,
            })
            .collect(),
        may_write: role_permits(user.actor.role, Action::NoteWrite).is_ok(),
        error: None,
        draft: String::new(),
    }))
}

/// A sensitive custom field of the customer's industry template in the consent form (`field_custom.<key>`).
struct CustomConsentChoice {
    /// `custom.<key>`.
    value: String,
    /// The template's label in the page's language.
    label: String,
}

/// The consents section of the detail page.
struct ConsentSection {
    /// `None` when the role may not read consents (the section is left out).
    rows: Option<Vec<ConsentRow>>,
    /// Whether the record form is shown.
    may_record: bool,
    purposes: Vec<Choice>,
    fields: Vec<Choice>,
    /// The sensitive custom fields of the customer's industry template, after the built-in fields.
    custom_fields: Vec<CustomConsentChoice>,
    errors: Vec<String>,
    notice: Option<String>,
}

fn parse_customer_id(text: &str) -> Result<CustomerId, AppError> {
    text.parse().map_err(|_| AppError::NotFound)
}

/// `?consent=recorded|withdrawn` after a consent form.
#[derive(Deserialize)]
pub struct DetailParams {
    consent: Option<String>,
    pool: Option<String>,
    /// After an order form (`customer_orders::notice_key`).
    order: Option<String>,
    /// After a send form (`customer_messages::notice`).
    message: Option<String>,
}

/// A customer, each sensitive field masked with a lock; Reveal where a live grant covers the field, otherwise a
/// link to request access; and the customer's consents.
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Path(id): Path<String>,
    Query(params): Query<DetailParams>,
) -> Response {
    let built = build_detail(&state, &page, &user, &id, None, None).await;
    match built {
        Ok(mut template) => {
            template.consents.notice = consents::notice_key(params.consent.as_deref())
                .map(|key| page.tr.get(key).to_owned());
            if params.pool.as_deref() == Some("claimed") {
                template.pool.notice = Some(page.tr.get("pool.claimed").to_owned());
            }
            if let Some(orders) = template.orders.as_mut() {
                orders.notice = super::customer_orders::notice_key(params.order.as_deref())
                    .map(|key| page.tr.get(key).to_owned());
            }
            if let Some(messages) = template.messages.as_mut() {
                messages.notice = super::customer_messages::notice(params.message.as_deref());
            }
            render(&template, page.tr, StatusCode::OK)
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// The detail page again after a consent form the domain refused, with its errors next to the form.
pub async fn detail_with_consent_errors(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    id: &str,
    errors: Vec<String>,
) -> Response {
    detail_after_refusal(state, page, user, id, consents::INVALID, |template| {
        template.consents.errors = errors;
    })
    .await
}

async fn detail_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    id: &str,
    revealed: Option<(String, Zeroizing<String>)>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let built = build_detail(state, page, user, id, revealed, notice).await;
    match built {
        Ok(template) => render(&template, page.tr, status),
        Err(error) => error_page(page, Some(user), &error),
    }
}

async fn build_detail(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    id: &str,
    mut revealed: Option<(String, Zeroizing<String>)>,
    notice: Option<String>,
) -> Result<DetailTemplate, AppError> {
    let customer_id = parse_customer_id(id)?;
    let view = state.veil.get_customer(&user.actor, customer_id).await?;
    let id = view.id.to_string();
    // The caller's live view grants on this customer decide which fields get a Reveal button. Roles that may not
    // request grants simply have none.
    let granted: Vec<String> = match state.veil.list_grants(&user.actor).await {
        Ok(grants) => grants
            .into_iter()
            .filter(|grant| {
                grant.live
                    && grant.mode == "view"
                    && grant.user_id == user.actor.user_id.to_string()
                    && grant.customer_ids.contains(&id)
            })
            .flat_map(|grant| grant.fields)
            .collect(),
        Err(AppError::Forbidden(_)) => Vec::new(),
        Err(error) => return Err(error),
    };
    let mfa = state.veil.mfa_status(&user.actor).await?;
    let step_up_fresh = state
        .veil
        .recent_mfa(&user.token, veil_app::mfa::STEP_UP_WINDOW_MS)
        .await?;
    let tr = page.tr;
    let templates = state.veil.list_industries(&user.actor).await?;
    // The sensitive custom fields of the customer's template: what a consent may name besides the built-in ones.
    let custom_consent_fields: Vec<CustomConsentChoice> = view
        .industry
        .as_deref()
        .and_then(|industry| templates.iter().find(|template| template.key == industry))
        .map(|template| template.fields.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|def| def.sensitive)
        .map(|def| CustomConsentChoice {
            value: format!("custom.{}", def.key),
            label: if tr.locale == super::i18n::Locale::Zh {
                def.label_zh.clone()
            } else {
                def.label_en.clone()
            },
        })
        .collect();
    let custom_labels: std::collections::BTreeMap<String, String> = custom_consent_fields
        .iter()
        .map(|choice| (choice.value.clone(), choice.label.clone()))
        .collect();
    let consent_rows = match state.veil.list_consents(&user.actor, customer_id).await {
        Ok(consents) => Some(
            consents
                .iter()
                .map(|consent| ConsentRow::new(tr, consent, &custom_labels))
                .collect(),
        ),
        Err(AppError::Forbidden(_)) => None,
        Err(error) => return Err(error),
    };
    let consents = ConsentSection {
        rows: consent_rows,
        may_record: role_permits(user.actor.role, Action::ConsentWrite).is_ok(),
        purposes: choices(&consents::PURPOSES, "purpose", ""),
        fields: choices(&consents::FIELDS, "field", ""),
        custom_fields: custom_consent_fields,
        errors: Vec::new(),
        notice: None,
    };
    let orders = super::customer_orders::order_section(state, tr, user, customer_id).await?;
    let tickets = super::tickets::customer_tickets(state, tr, user, &id).await?;
    let notes = note_section(state, tr, user, customer_id).await?;
    let pool = super::pool::pool_section(state, tr, user, customer_id).await?;
    let messages = super::customer_messages::message_section(state, tr, user, customer_id).await?;
    let mut custom = custom_rows(tr, &view, &templates);
    // Sensitive custom fields reveal like the personal ones: through a live view grant naming `custom.<key>`.
    for row in custom.iter_mut().filter(|row| row.masked) {
        row.granted = granted.contains(&row.name);
        if revealed
            .as_ref()
            .is_some_and(|(revealed_field, _)| *revealed_field == row.name)
        {
            row.revealed = revealed.take().map(|(_, value)| value);
        }
    }
    let fields = SENSITIVE_FIELDS
        .iter()
        .filter_map(|&field| {
            let value = masked_value(&view, field)?;
            let name = field.as_str();
            let shown = if revealed
                .as_ref()
                .is_some_and(|(revealed_field, _)| revealed_field == name)
            {
                revealed.take().map(|(_, value)| value)
            } else {
                None
            };
            Some(FieldRow {
                name,
                label_key: format!("field.{name}"),
                masked_value: value.to_owned(),
                masked: view.masked.iter().any(|masked| masked == name),
                granted: granted.iter().any(|granted| granted == name),
                revealed: shown,
            })
        })
        .collect();
    Ok(DetailTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        id,
        fields,
        gender: view
            .gender
            .as_deref()
            .map(|gender| known_or_raw(tr, "gender", gender))
            .unwrap_or_default(),
        tags: view.tags.join(", "),
        industry: view
            .industry
            .as_deref()
            .map(|industry| known_or_raw(tr, "industry", industry))
            .unwrap_or_default(),
        custom,
        source: view.source.clone().unwrap_or_default(),
        created: tr.datetime(&view.created_at),
        updated: tr.datetime(&view.updated_at),
        mfa_enabled: mfa.enabled,
        step_up_fresh,
        may_edit: role_permits(user.actor.role, Action::CustomerUpdate).is_ok(),
        notice,
        consents,
        orders,
        tickets,
        may_open_ticket: role_permits(user.actor.role, Action::TicketWrite).is_ok(),
        notes,
        pool,
        messages,
    })
}

/// The detail page again after a form of one of its sections was refused: `edit` puts the refusal into its
/// section, and the page is answered with `status`.
pub(super) async fn detail_after_refusal(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    id: &str,
    status: StatusCode,
    edit: impl FnOnce(&mut DetailTemplate),
) -> Response {
    match build_detail(state, page, user, id, None, None).await {
        Ok(mut template) => {
            edit(&mut template);
            render(&template, page.tr, status)
        }
        Err(error) => error_page(page, Some(user), &error),
    }
}

/// The value of field `name` of a form read as pairs (`SignedForm<Vec<(String, String)>>`), trimmed; `""` when
/// absent.
pub(super) fn form_value<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.trim())
        .unwrap_or_default()
}

/// The add-note form.
#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    body: String,
}

/// Adds a note through the domain (which masks personal data in it before storing it), then back to the customer
/// page; a refused note shows the page again with the error next to the form.
pub async fn add_note(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<NoteForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let customer_id = match parse_customer_id(&id) {
        Ok(customer_id) => customer_id,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let input = NoteInput { body: form.body };
    match state.veil.add_note(&user.actor, customer_id, &input).await {
        Ok(_) => Redirect::to(&format!("/customers/{id}#notes")).into_response(),
        Err(AppError::Validation(_)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            detail_after_refusal(&state, &page, &user, &id, status, |template| {
                if let Some(notes) = template.notes.as_mut() {
                    notes.error = Some(page.tr.get("notes.invalid").to_owned());
                    notes.draft = input.body;
                }
            })
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// The reveal form: one field, and a TOTP code when the session's step-up is not fresh.
#[derive(Deserialize)]
pub struct RevealForm {
    #[serde(default)]
    field: String,
    #[serde(default)]
    code: String,
}

/// Reveals one field through the governed path and shows it on this (no-store) response only.
pub async fn reveal(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<RevealForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let tr = page.tr;
    let customer_id = match parse_customer_id(&id) {
        Ok(customer_id) => customer_id,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let code = form.code.trim();
    if !code.is_empty() {
        let verified = state.veil.verify_mfa(&user.actor, &user.token, code).await;
        let notice = match verified {
            Ok(_) => None,
            Err(LoginError::Locked { retry_after_secs }) => Some(tr.fill(
                "login.locked",
                &[("seconds", &retry_after_secs.to_string())],
            )),
            Err(LoginError::App(AppError::Conflict(_))) => {
                Some(tr.get("reveal.mfa_not_enrolled").to_owned())
            }
            Err(_) => Some(tr.get("reveal.code_invalid").to_owned()),
        };
        if let Some(notice) = notice {
            return detail_page(
                &state,
                &page,
                &user,
                &id,
                None,
                Some(notice),
                StatusCode::FORBIDDEN,
            )
            .await;
        }
    }
    let input = RevealInput {
        fields: vec![form.field.clone()],
        grant_id: None,
    };
    match state
        .veil
        .reveal_customer(&user.actor, Some(&user.token), customer_id, &input)
        .await
    {
        Ok(mut values) => {
            let revealed = values.remove(&form.field).map(|value| (form.field, value));
            detail_page(&state, &page, &user, &id, revealed, None, StatusCode::OK).await
        }
        Err(AppError::Forbidden(_)) => {
            let key = if state
                .veil
                .mfa_status(&user.actor)
                .await
                .is_ok_and(|status| status.enabled)
            {
                "reveal.step_up_needed"
            } else {
                "reveal.mfa_not_enrolled"
            };
            detail_page(
                &state,
                &page,
                &user,
                &id,
                None,
                Some(tr.get(key).to_owned()),
                StatusCode::FORBIDDEN,
            )
            .await
        }
        Err(AppError::GrantRequired) => {
            detail_page(
                &state,
                &page,
                &user,
                &id,
                None,
                Some(tr.get("reveal.no_grant").to_owned()),
                StatusCode::FORBIDDEN,
            )
            .await
        }
        Err(AppError::Validation(_)) => {
            detail_page(
                &state,
                &page,
                &user,
                &id,
                None,
                Some(tr.get("reveal.unknown_field").to_owned()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// The create form's fields, as typed.
#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    gender: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    bank_card: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    industry: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    allow_duplicate: Option<String>,
    /// Custom fields of the industry template, posted as `custom.<key>` (other names are ignored).
    #[serde(flatten)]
    custom: BTreeMap<String, String>,
}

fn present(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl CreateForm {
    fn to_input(&self) -> CustomerInput {
        let tags: Vec<String> = self
            .tags
            .split([',', '，'])
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect();
        CustomerInput {
            name: present(&self.name),
            gender: present(&self.gender),
            birth_date: present(&self.birth_date),
            phone: present(&self.phone),
            id_number: present(&self.id_number),
            email: present(&self.email),
            address: present(&self.address),
            bank_card: present(&self.bank_card),
            tags: (!tags.is_empty()).then_some(tags),
            source: present(&self.source),
            industry: present(&self.industry),
            custom_fields: self.custom_fields(),
            ..CustomerInput::default()
        }
    }

    /// The filled `custom.<key>` boxes as the API's `custom_fields` (none when all are empty).
    fn custom_fields(&self) -> Option<serde_json::Value> {
        let values: serde_json::Map<String, serde_json::Value> = self
            .custom
            .iter()
            .filter_map(|(name, value)| {
                let key = name.strip_prefix("custom.")?;
                let value = value.trim();
                (!value.is_empty())
                    .then(|| (key.to_owned(), serde_json::Value::String(value.to_owned())))
            })
            .collect();
        (!values.is_empty()).then_some(serde_json::Value::Object(values))
    }
}

/// One text input of the create form.
struct Input {
    name: &'static str,
    label_key: String,
    hint_key: String,
    input_type: &'static str,
    autocomplete: &'static str,
    inputmode: &'static str,
    required: bool,
    value: String,
    /// On the edit form, the field's masked value now (the hint says an empty box keeps it).
    current: Option<String>,
    error: Option<String>,
}

/// A choice of a select.
struct Choice {
    value: String,
    label_key: String,
    selected: bool,
}

const INDUSTRIES: [&str; 7] = [
    "real_estate",
    "automotive",
    "services",
    "finance",
    "education",
    "ecommerce",
    "other",
];
const GENDERS: [&str; 4] = ["male", "female", "other", "unknown"];

#[derive(Template)]
#[template(path = "customer_new.html")]
struct NewTemplate {
    t: Tr,
    layout: Layout,
    /// Where the form posts: `/customers/new`, or `/customers/{id}/edit`.
    action: String,
    /// `customers.new_title` or `customers.edit_title`.
    title_key: &'static str,
    /// `customers.create` or `customers.save`.
    submit_key: &'static str,
    /// The customer page, when editing (for the way back).
    back: Option<String>,
    inputs: Vec<Input>,
    genders: Vec<Choice>,
    industries: Vec<Choice>,
    gender_error: Option<String>,
    industry_error: Option<String>,
    /// The industry templates, as links that reload the create form with one picked: key, name, current.
    templates: Vec<(String, String, bool)>,
    /// The picked template's custom fields.
    custom_inputs: Vec<CustomInput>,
    errors: Vec<(String, String)>,
    duplicate: Option<String>,
}

fn choices(options: &[&'static str], prefix: &str, selected: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|&value| Choice {
            value: value.to_owned(),
            label_key: format!("{prefix}.{value}"),
            selected: value == selected,
        })
        .collect()
}

fn new_template(
    page: &Page,
    user: &WebUser,
    form: &CreateForm,
    errors: &[FieldError],
    duplicate: Option<String>,
    templates: &[veil_app::industries::IndustryView],
) -> NewTemplate {
    let tr = page.tr;
    let zh = tr.locale == super::i18n::Locale::Zh;
    let mut template = form_template(page, user, form, errors, duplicate, None);
    template.templates = templates
        .iter()
        .map(|industry| {
            let name = if zh {
                &industry.name_zh
            } else {
                &industry.name_en
            };
            (
                industry.key.clone(),
                name.clone(),
                industry.key == form.industry,
            )
        })
        .collect();
    let fields = templates
        .iter()
        .find(|industry| industry.key == form.industry)
        .map(|industry| industry.fields.as_slice())
        .unwrap_or_default();
    template.custom_inputs = fields
        .iter()
        .map(|def| {
            use veil_app::industries::FieldType;
            let name = format!("custom.{}", def.key);
            let value = form.custom.get(&name).cloned().unwrap_or_default();
            let label = |en: &str, zh_label: &str| {
                if zh {
                    zh_label.to_owned()
                } else {
                    en.to_owned()
                }
            };
            let options: Vec<(String, String, bool)> = match def.field_type {
                FieldType::Enum => def
                    .options
                    .iter()
                    .map(|option| {
                        (
                            option.value.clone(),
                            label(&option.label_en, &option.label_zh),
                            option.value == value,
                        )
                    })
                    .collect(),
                FieldType::Bool => ["true", "false"]
                    .into_iter()
                    .map(|flag| {
                        let text = tr.get(if flag == "true" {
                            "form.yes"
                        } else {
                            "form.no"
                        });
                        (flag.to_owned(), text.to_owned(), value == flag)
                    })
                    .collect(),
                _ => Vec::new(),
            };
            CustomInput {
                error: errors
                    .iter()
                    .find(|error| error.field == format!("custom_fields.{}", def.key))
                    .map(|error| tr.field_error(&error.code).to_owned()),
                label: label(&def.label_en, &def.label_zh),
                input_type: match def.field_type {
                    FieldType::Enum | FieldType::Bool => "select",
                    FieldType::Number => "number",
                    FieldType::Date => "date",
                    FieldType::Text => "text",
                },
                options,
                // A sensitive value typed goes back into its box only on this no-store response, like the others.
                value,
                sensitive: def.sensitive,
                name,
            }
        })
        .collect();
    template
}

/// The create form, or with `editing` (the customer as read, masked) the edit form of that customer: the same
/// inputs, validation and messages; sensitive boxes start empty and keep the value when left empty.
fn form_template(
    page: &Page,
    user: &WebUser,
    form: &CreateForm,
    errors: &[FieldError],
    duplicate: Option<String>,
    editing: Option<&CustomerView>,
) -> NewTemplate {
    let tr = page.tr;
    let current = |name: &str| {
        let view = editing?;
        let field = SensitiveField::parse(name)?;
        let masked = masked_value(view, field).unwrap_or_default();
        let masked = if masked.is_empty() {
            tr.get("customers.empty_now").to_owned()
        } else {
            masked.to_owned()
        };
        Some(tr.fill("customers.keep_hint", &[("value", &masked)]))
    };
    let error_for = |field: &str| {
        errors
            .iter()
            .find(|error| error.field == field)
            .map(|error| tr.field_error(&error.code).to_owned())
    };
    let spec: [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        bool,
        &str,
    ); 9] = [
        ("name", "text", "name", "text", true, &form.name),
        ("phone", "tel", "tel", "tel", false, &form.phone),
        ("id_number", "text", "off", "text", false, &form.id_number),
        ("email", "email", "email", "email", false, &form.email),
        (
            "address",
            "text",
            "street-address",
            "text",
            false,
            &form.address,
        ),
        (
            "birth_date",
            "date",
            "bday",
            "text",
            false,
            &form.birth_date,
        ),
        (
            "bank_card",
            "text",
            "off",
            "numeric",
            false,
            &form.bank_card,
        ),
        ("tags", "text", "off", "text", false, &form.tags),
        ("source", "text", "off", "text", false, &form.source),
    ];
    NewTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        action: editing.map_or_else(
            || "/customers/new".to_owned(),
            |view| format!("/customers/{}/edit", view.id),
        ),
        title_key: if editing.is_some() {
            "customers.edit_title"
        } else {
            "customers.new_title"
        },
        submit_key: if editing.is_some() {
            "customers.save"
        } else {
            "customers.create"
        },
        back: editing.map(|view| format!("/customers/{}", view.id)),
        inputs: spec
            .into_iter()
            .map(
                |(name, input_type, autocomplete, inputmode, required, value)| Input {
                    name,
                    label_key: format!("field.{name}"),
                    hint_key: format!("hint.{name}"),
                    input_type,
                    autocomplete,
                    inputmode,
                    required: required && editing.is_none(),
                    value: value.to_owned(),
                    current: current(name),
                    error: error_for(name),
                },
            )
            .collect(),
        genders: choices(&GENDERS, "gender", &form.gender),
        industries: {
            let mut industries = choices(&INDUSTRIES, "industry", &form.industry);
            // An industry given through the API that the form does not offer stays selectable, so saving the edit
            // form does not clear it. Its label is the text itself (a missing key reads as itself).
            if !form.industry.is_empty() && !INDUSTRIES.contains(&form.industry.as_str()) {
                industries.push(Choice {
                    value: form.industry.clone(),
                    label_key: form.industry.clone(),
                    selected: true,
                });
            }
            industries
        },
        gender_error: error_for("gender"),
        industry_error: error_for("industry"),
        templates: Vec::new(),
        custom_inputs: Vec::new(),
        errors: errors
            .iter()
            .map(|error| {
                let anchor = error
                    .field
                    .strip_prefix("custom_fields.")
                    .map_or_else(|| error.field.clone(), |key| format!("custom.{key}"));
                (anchor, tr.get(&format!("field.{}", error.field)).to_owned())
            })
            .collect(),
        duplicate,
    }
}

/// `?industry=` on the create form: the template whose custom fields it shows.
#[derive(Deserialize, Default)]
pub struct NewFormParams {
    #[serde(default)]
    industry: String,
}

/// The empty create form; `?industry=KEY` picks an industry template and shows its custom fields.
pub async fn new_form(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<NewFormParams>,
) -> Response {
    let templates = match state.veil.list_industries(&user.actor).await {
        Ok(templates) => templates,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let form = CreateForm {
        industry: params.industry,
        ..CreateForm::default()
    };
    let template = new_template(&page, &user, &form, &[], None, &templates);
    render(&template, page.tr, StatusCode::OK)
}

/// Creates the customer, or shows the form again with every problem next to its field, in the user's language.
/// The values typed are put back into the form (this response is no-store and goes only to the person who typed
/// them) so that one wrong digit does not mean typing everything again.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<CreateForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let input = form.to_input();
    let allow_duplicate = form.allow_duplicate.is_some();
    let templates = match state.veil.list_industries(&user.actor).await {
        Ok(templates) => templates,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    match state
        .veil
        .create_customer(&user.actor, &input, allow_duplicate)
        .await
    {
        Ok(view) => Redirect::to(&format!("/customers/{}", view.id)).into_response(),
        Err(AppError::Validation(errors)) => {
            let template = new_template(&page, &user, &form, &errors, None, &templates);
            render(&template, page.tr, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(AppError::Duplicate { field, .. }) => {
            let label = page.tr.get(&format!("field.{field}")).to_owned();
            let message = page.tr.fill("customers.duplicate", &[("field", &label)]);
            let template = new_template(&page, &user, &form, &[], Some(message), &templates);
            render(&template, page.tr, StatusCode::CONFLICT)
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

impl CreateForm {
    /// The form as read back into the edit form: the customer's non-sensitive fields; sensitive boxes empty.
    fn from_view(view: &CustomerView) -> CreateForm {
        CreateForm {
            gender: view.gender.clone().unwrap_or_default(),
            tags: view.tags.join(", "),
            industry: view.industry.clone().unwrap_or_default(),
            source: view.source.clone().unwrap_or_default(),
            ..CreateForm::default()
        }
    }

    /// The edit form as a patch: a filled sensitive box replaces the value, an empty one keeps it; gender changes
    /// only when one is picked; tags, industry and source are set to what the form shows (empty clears them).
    fn to_patch(&self) -> CustomerPatch {
        let input = self.to_input();
        CustomerPatch {
            name: input.name,
            gender: input.gender.map(Some),
            birth_date: input.birth_date.map(Some),
            phone: input.phone.map(Some),
            id_number: input.id_number.map(Some),
            email: input.email.map(Some),
            address: input.address.map(Some),
            bank_card: input.bank_card.map(Some),
            tags: Some(input.tags.unwrap_or_default()),
            source: Some(input.source),
            industry: Some(input.industry),
            ..CustomerPatch::default()
        }
    }
}

/// The edit form of one customer (masked: sensitive boxes start empty and show the masked value in their hint).
pub async fn edit_form(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Path(id): Path<String>,
) -> Response {
    let view = match parse_customer_id(&id) {
        Ok(id) => state.veil.get_customer(&user.actor, id).await,
        Err(error) => Err(error),
    };
    match view {
        Ok(view) => {
            if let Err(reason) = role_permits(user.actor.role, Action::CustomerUpdate) {
                return error_page(&page, Some(&user), &AppError::Forbidden(reason));
            }
            let form = CreateForm::from_view(&view);
            let template = form_template(&page, &user, &form, &[], None, Some(&view));
            render(&template, page.tr, StatusCode::OK)
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// Saves the edit form, or shows it again with every problem next to its field, in the user's language (the
/// create form's validation: it is the same domain call's).
pub async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<CreateForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let id = match parse_customer_id(&id) {
        Ok(id) => id,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let allow_duplicate = form.allow_duplicate.is_some();
    let result = state
        .veil
        .update_customer(&user.actor, id, &form.to_patch(), allow_duplicate)
        .await;
    let (errors, duplicate, status) = match result {
        Ok(view) => return Redirect::to(&format!("/customers/{}", view.id)).into_response(),
        Err(AppError::Validation(errors)) => (errors, None, StatusCode::UNPROCESSABLE_ENTITY),
        Err(AppError::Duplicate { field, .. }) => {
            let label = page.tr.get(&format!("field.{field}")).to_owned();
            let message = page.tr.fill("customers.duplicate", &[("field", &label)]);
            (Vec::new(), Some(message), StatusCode::CONFLICT)
        }
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    // The page again, around the current masked values (the typed ones go back into their boxes).
    match state.veil.get_customer(&user.actor, id).await {
        Ok(view) => {
            let template = form_template(&page, &user, &form, &errors, duplicate, Some(&view));
            render(&template, page.tr, status)
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}
