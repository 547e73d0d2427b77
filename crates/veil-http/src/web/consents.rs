//! Consents on the customer page: the list, the record form (purposes, fields — the built-in personal fields and
//! the sensitive custom fields of the customer's industry template, `custom.<key>` — recipient, the separate
//! sensitive-data and third-party consents PIPL asks for, expiry, and the evidence) and withdrawal.
//!
//! Evidence is either the signed document, uploaded and reduced to its SHA-256 on the way in (the document is
//! never stored: it is full of personal data, and the hash is what proves which document was signed), or the id
//! of an e-consent event. Recording and withdrawing go through `Veil::record_consent` / `withdraw_consent`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::governance::{ConsentInput, ConsentView, CUSTOM_PREFIX};
use veil_app::{AppError, CustomerId};

use super::i18n::Tr;
use super::session::{SignedForm, SignedMultipart};
use super::{error_page, Page};
use crate::AppState;

/// Largest evidence document accepted (it is hashed, not stored).
pub const MAX_EVIDENCE_BYTES: usize = 20 * 1024 * 1024;

/// Purposes a consent can cover (the domain's codes).
pub const PURPOSES: [&str; 7] = [
    "customer_service",
    "contract_performance",
    "audit",
    "legal_claim",
    "fraud_investigation",
    "regulatory_report",
    "marketing",
];

/// Built-in fields a consent can cover (the customer's sensitive custom fields come from its industry template,
/// as `field_custom.<key>` checkboxes).
pub const FIELDS: [&str; 7] = [
    "name",
    "phone",
    "id_number",
    "email",
    "address",
    "birth_date",
    "bank_card",
];

/// A consent as listed on the customer page.
pub struct ConsentRow {
    /// Id.
    pub id: String,
    /// Translated purposes.
    pub purposes: String,
    /// Translated fields.
    pub fields: String,
    /// `internal` or the partner.
    pub recipient: String,
    /// The evidence: `sha256:…` (shortened) or the e-consent reference.
    pub evidence: String,
    /// Given.
    pub granted: String,
    /// Lapses.
    pub expires: String,
    /// Separate sensitive-data consent.
    pub sensitive: bool,
    /// Separate third-party consent.
    pub third_party: bool,
    /// Live now.
    pub live: bool,
    /// Translation key of its state.
    pub state_key: &'static str,
}

impl ConsentRow {
    /// The row for `consent`; `custom_labels` names its custom fields (`custom.<key>` → the template's label in
    /// the page's language; a field no longer in the template shows its name).
    pub fn new(
        tr: Tr,
        consent: &ConsentView,
        custom_labels: &BTreeMap<String, String>,
    ) -> ConsentRow {
        let translate = |prefix: &str, values: &[String]| {
            values
                .iter()
                .map(|value| tr.get(&format!("{prefix}.{value}")).to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let evidence = match (&consent.evidence_sha256, &consent.evidence_ref) {
            (Some(hash), _) => format!("SHA-256 {}…", hash.chars().take(16).collect::<String>()),
            (None, Some(reference)) => reference.clone(),
            (None, None) => String::new(),
        };
        ConsentRow {
            id: consent.id.clone(),
            purposes: translate("purpose", &consent.purposes),
            fields: consent
                .fields
                .iter()
                .map(|field| {
                    custom_labels
                        .get(field)
                        .cloned()
                        .unwrap_or_else(|| tr.field_name(field))
                })
                .collect::<Vec<_>>()
                .join(", "),
            recipient: consent.recipient.clone(),
            evidence,
            granted: tr.datetime(&consent.granted_at),
            expires: consent
                .expires_at
                .as_deref()
                .map(|at| tr.datetime(at))
                .unwrap_or_else(|| tr.get("consents.no_expiry").to_owned()),
            sensitive: consent.sensitive,
            third_party: consent.third_party,
            live: consent.live,
            state_key: if consent.withdrawn_at.is_some() {
                "consents.withdrawn"
            } else if consent.live {
                "consents.live"
            } else {
                "consents.lapsed"
            },
        }
    }
}

/// Records a consent from the customer page's form, then shows the page again (with the form's errors, if any).
pub async fn record(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    form: SignedMultipart,
) -> Response {
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&form.user), &AppError::NotFound);
    };
    let chosen = |prefix: &str, options: &[&str]| -> Vec<String> {
        options
            .iter()
            .filter(|option| form.checked(&format!("{prefix}_{option}")))
            .map(|option| (*option).to_owned())
            .collect()
    };
    let present = |name: &str| {
        let value = form.text(name).trim();
        (!value.is_empty()).then(|| value.to_owned())
    };
    let recipient = present("recipient").unwrap_or_else(|| "internal".to_owned());
    // The custom fields' checkboxes (`field_custom.<key>`): the domain checks each key against the templates.
    let custom_fields = form.fields.iter().filter_map(|(name, _)| {
        name.strip_prefix("field_")
            .filter(|field| field.starts_with(CUSTOM_PREFIX))
            .map(str::to_owned)
    });
    let mut fields = chosen("field", &FIELDS);
    for field in custom_fields {
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    let input = ConsentInput {
        purposes: chosen("purpose", &PURPOSES),
        fields,
        recipient,
        evidence_sha256: form
            .file_hashes
            .iter()
            .find(|(name, _)| name == "evidence")
            .map(|(_, hash)| hash.clone()),
        evidence_ref: present("evidence_ref"),
        granted_at: None,
        expires_at: present("expires_at"),
        sensitive: form.checked("sensitive"),
        third_party: form.checked("third_party"),
    };
    let user = &form.user;
    match state
        .veil
        .record_consent(&user.actor, customer, &input)
        .await
    {
        Ok(_) => {
            Redirect::to(&format!("/customers/{id}?consent=recorded#consents")).into_response()
        }
        Err(AppError::Validation(errors)) => {
            let tr = page.tr;
            let messages = errors
                .iter()
                .map(|error| {
                    format!(
                        "{}: {}",
                        tr.get(&format!("consents.field.{}", error.field)),
                        tr.field_error(&error.code)
                    )
                })
                .collect();
            super::customers::detail_with_consent_errors(&state, &page, user, &id, messages).await
        }
        Err(error) => error_page(&page, Some(user), &error),
    }
}

/// The withdraw button names the customer to come back to.
#[derive(Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    customer: String,
}

/// Withdraws a consent; every live grant relying on it is revoked by the domain.
pub async fn withdraw(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<WithdrawForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    match state.veil.withdraw_consent(&user.actor, &id).await {
        Ok(consent) => {
            let customer = if form.customer == consent.customer_id {
                form.customer
            } else {
                consent.customer_id
            };
            Redirect::to(&format!("/customers/{customer}?consent=withdrawn#consents"))
                .into_response()
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// The status a redirect back to the customer page announces.
pub fn notice_key(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "recorded" => Some("consents.done_recorded"),
        "withdrawn" => Some("consents.done_withdrawn"),
        _ => None,
    }
}

/// HTTP status for a consent form shown again with errors.
pub const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
