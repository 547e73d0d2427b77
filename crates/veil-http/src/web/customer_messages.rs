//! The messages and surveys section of the customer page: the messages the server sent the customer (recipient
//! masked as the caller's role sees it, status, reason of a failure), a form to send one from a template, and the
//! customer's surveys (CSAT after a ticket, NPS from a campaign) with a form to send an open one's link by e-mail
//! or SMS. The server uses the address or number itself: staff contact the customer without seeing it
//! (`Veil::send_message`, `Veil::send_survey`, which check consent, scope and role and audit the send).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::authz::{role_permits, Action};
use veil_app::feedback::SurveySendInput;
use veil_app::messages::SendInput;
use veil_app::{AppError, CustomerId};

use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, Page};
use crate::AppState;

/// Messages listed (the newest).
const MESSAGES_SHOWN: usize = 10;

/// The messages and surveys section of the detail page.
pub struct MessageSection {
    pub rows: Vec<MessageRow>,
    /// Whether the send forms are shown.
    pub may_send: bool,
    /// Templates a plain message can use: name and "name · channel".
    pub templates: Vec<(String, String)>,
    /// Templates carrying `{{survey.link}}`: name and "name · channel".
    pub survey_templates: Vec<(String, String)>,
    pub surveys: Vec<SurveyRow>,
    /// The domain's reasons after a refused send, translated.
    pub errors: Vec<String>,
    /// After a send: its translation key, and whether it is bad news (a failed delivery).
    pub notice: Option<(String, bool)>,
}

/// One message in the section.
pub struct MessageRow {
    pub template: String,
    pub channel_key: String,
    /// Masked as the caller's role sees it.
    pub recipient: String,
    pub status_key: String,
    /// Why a delivery failed (no personal data).
    pub error: String,
    pub sent: String,
}

/// One survey in the section.
pub struct SurveyRow {
    pub id: String,
    pub kind: String,
    pub state_key: String,
    /// The ticket a CSAT survey is about.
    pub ticket_id: Option<String>,
    /// "Sent 2 times".
    pub sends_text: String,
    /// Whether its link was sent before (the button is then a reminder).
    pub sent: bool,
    pub expires: String,
    /// Whether this caller may send its link now.
    pub may_send: bool,
}

/// The section, or `None` for roles that do not read a customer's interactions.
pub async fn message_section(
    state: &AppState,
    tr: Tr,
    user: &WebUser,
    customer_id: CustomerId,
) -> Result<Option<MessageSection>, AppError> {
    if role_permits(user.actor.role, Action::InteractionRead).is_err() {
        return Ok(None);
    }
    let rows = state
        .veil
        .list_messages(&user.actor, customer_id)
        .await?
        .into_iter()
        .take(MESSAGES_SHOWN)
        .map(|message| MessageRow {
            template: message.template,
            channel_key: format!("messages.channel_{}", message.channel),
            recipient: message.recipient,
            status_key: format!("messages.status_{}", message.status),
            error: message.error.unwrap_or_default(),
            sent: tr.datetime(&message.created_at),
        })
        .collect();
    let surveys: Vec<SurveyRow> = state
        .veil
        .customer_surveys(&user.actor, customer_id)
        .await?
        .into_iter()
        .map(|survey| SurveyRow {
            kind: survey.kind.as_str().to_uppercase(),
            state_key: format!("messages.survey_{}", survey.state),
            expires: tr.datetime(&survey.expires_at),
            sends_text: tr.fill("messages.survey_sends", &[("n", &survey.sends.to_string())]),
            sent: survey.sends > 0,
            may_send: survey.may_send,
            ticket_id: survey.ticket_id,
            id: survey.survey_id,
        })
        .collect();
    let may_send = role_permits(user.actor.role, Action::MessageSend).is_ok();
    let (mut templates, mut survey_templates) = (Vec::new(), Vec::new());
    if may_send {
        for template in state.veil.list_templates(&user.actor).await? {
            let label = format!(
                "{} · {}",
                template.name,
                tr.get(&format!("messages.channel_{}", template.channel.as_str()))
            );
            let uses = |name: &str| template.placeholders.iter().any(|used| used == name);
            if uses("survey.link") {
                survey_templates.push((template.name, label));
            } else if !uses("survey.expires") {
                templates.push((template.name, label));
            }
        }
    }
    Ok(Some(MessageSection {
        rows,
        may_send,
        templates,
        survey_templates,
        surveys,
        errors: Vec::new(),
        notice: None,
    }))
}

/// The notice for `?message=…`: the translation key and whether it is bad news.
pub fn notice(done: Option<&str>) -> Option<(String, bool)> {
    let (key, bad) = match done? {
        "sent" => ("messages.done_sent", false),
        "failed" => ("messages.done_failed", true),
        "survey_sent" => ("messages.done_survey_sent", false),
        "survey_failed" => ("messages.done_failed", true),
        _ => return None,
    };
    Some((key.to_owned(), bad))
}

/// After a send: back to the section with a notice, or the page again with the refusal next to the forms.
async fn answer(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    id: &str,
    outcome: Result<&'static str, AppError>,
) -> Response {
    let errors = match outcome {
        Ok(done) => {
            return Redirect::to(&format!("/customers/{id}?message={done}#messages"))
                .into_response()
        }
        Err(AppError::Validation(errors)) => errors,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let tr = page.tr;
    let lines = errors
        .iter()
        .map(|error| {
            format!(
                "{}: {}",
                tr.get(&format!("messages.field_{}", error.field)),
                tr.field_error(&error.code)
            )
        })
        .collect();
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    super::customers::detail_after_refusal(state, page, user, id, status, |template| {
        if let Some(messages) = template.messages.as_mut() {
            messages.errors = lines;
        }
    })
    .await
}

/// The send forms: a template's name.
#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    template: String,
}

/// Sends a message from a template to the customer.
pub async fn send(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<SendForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    let input = SendInput {
        template: form.template,
        channel: None,
        holiday: None,
    };
    let outcome = state
        .veil
        .send_message(&user.actor, customer, &input)
        .await
        .map(|message| {
            if message.status == "failed" {
                "failed"
            } else {
                "sent"
            }
        });
    answer(&state, &page, &user, &id, outcome).await
}

/// Sends a survey's link to its customer from a template with `{{survey.link}}`.
pub async fn send_survey(
    State(state): State<AppState>,
    page: Page,
    Path((id, survey)): Path<(String, String)>,
    signed: SignedForm<SendForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let input = SurveySendInput {
        template: form.template,
        channel: None,
    };
    let Ok(customer) = id.parse::<CustomerId>() else {
        return error_page(&page, Some(&user), &AppError::NotFound);
    };
    // Only a survey of this page's customer is sent from here (another's is 404); the domain checks the caller may.
    let outcome = state
        .veil
        .send_customer_survey(&user.actor, customer, &survey, &input)
        .await
        .map(|sent| {
            if sent.message.status == "failed" {
                "survey_failed"
            } else {
                "survey_sent"
            }
        });
    answer(&state, &page, &user, &id, outcome).await
}
