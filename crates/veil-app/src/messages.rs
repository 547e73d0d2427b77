//! Message templates and sending messages to customers by e-mail and SMS — without the sender ever seeing the
//! address or number.
//!
//! - **Templates** (admins and managers manage them; everyone who works with customers reads them) have a
//!   channel (`email` or `sms`), a language (`zh` or `en`), a purpose (`care` or `marketing`), an e-mail subject and
//!   a body with placeholders: `{{customer.surname}}`, `{{customer.title}}` (先生/女士, Mr./Ms.), `{{points}}`
//!   (the loyalty balance), `{{holiday}}` (a holiday's name), `{{agent.name}}` (the sender's user name) and
//!   `{{today}}`; survey sends also fill `{{survey.link}}` and `{{survey.expires}}` (see
//!   [`crate::feedback`]), which any other send refuses. Any other placeholder is refused with 422 naming it; those that would insert personal data
//!   (`{{customer.mobile}}`, `{{customer.name}}`, `{{customer.id_number}}`, …) are refused with their own code,
//!   so a template can never put a full name, number or address into a message.
//! - **Sending** (`Veil::send_message`): anyone who sees the customer (404 otherwise) picks a template. The
//!   server checks the legal basis (a live consent of the customer covering the template's purpose, the channel's
//!   field and the recipient `internal`: `marketing` needs a consent for `marketing`; `care` one for
//!   `customer_service` or `marketing`), records the message (`sending`) and the audit entry `message.send` (a
//!   system use with the purpose, the fields used and the masked recipient — not a reveal) in one transaction,
//!   and only then decrypts the address or number (and the name, for the surname) inside the server, renders and
//!   sends. The outcome (`sent`, or `failed` with an error from which the recipient has been removed) is stored on
//!   the message; the response carries the masked recipient only.
//! - **Channels**: e-mail over SMTP with `lettre` (`VEIL_MESSAGE_SMTP_URL`, as the alert e-mail is configured);
//!   SMS through an [`SmsGateway`] — the built-in one POSTs JSON to a webhook (`VEIL_SMS_WEBHOOK_URL`, signed like
//!   the alert webhook); real providers plug in behind the trait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{
    MaskedCustomerRow, MessageRow, SensitiveField, StoreError, SurveyLinkRow, SurveyRow,
    TemplateRow,
};

use crate::audit::{self, EventExt, Outcome};
use crate::authz::Action;
use crate::customers::reveal;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::monitor::notify::{signature_header, Secret, DELIVERY_TIMEOUT, SIGNATURE_HEADER};
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 8] = [
    "customer.surname",
    "customer.title",
    "points",
    "holiday",
    "agent.name",
    "today",
    "survey.link",
    "survey.expires",
];

/// The placeholders only a survey send fills (`POST /api/v1/surveys/{id}/send`): the survey's public link
/// (the server's public address + `/survey/{token}`, a token minted for this message) and its expiry date.
pub const SURVEY_PLACEHOLDERS: [&str; 2] = ["survey.link", "survey.expires"];

/// Placeholders that would put personal data into a message: refused by name.
const PERSONAL_PLACEHOLDERS: [&str; 16] = [
    "customer.name",
    "customer.full_name",
    "customer.given_name",
    "customer.mobile",
    "customer.phone",
    "customer.email",
    "customer.id_number",
    "customer.id",
    "customer.address",
    "customer.bank_card",
    "customer.birth_date",
    "customer.birthday",
    "mobile",
    "phone",
    "email",
    "name",
];

/// Longest template body, in characters (an SMS provider splits long texts; e-mail bodies stay short notes).
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest subject or name, in characters.
pub const MAX_LINE_CHARS: usize = 200;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The stable name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stable name.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// How a message travels.
    MessageChannel {
        /// E-mail over SMTP.
        Email => "email",
        /// SMS through the gateway.
        Sms => "sms",
    }
);

string_enum!(
    /// The language of a template (titles and holiday names follow it).
    TemplateLanguage {
        /// Simplified Chinese.
        Zh => "zh",
        /// English.
        En => "en",
    }
);

string_enum!(
    /// Why messages of a template are sent: decides the consent a send needs.
    MessagePurpose {
        /// Care (birthday and holiday greetings, points reminders): a consent for `customer_service` or
        /// `marketing`.
        Care => "care",
        /// Marketing: a consent for `marketing`.
        Marketing => "marketing",
    }
);

impl MessageChannel {
    /// The customer field the channel sends to.
    pub fn field(self) -> SensitiveField {
        match self {
            MessageChannel::Email => SensitiveField::Email,
            MessageChannel::Sms => SensitiveField::Phone,
        }
    }
}

impl MessagePurpose {
    /// The consent purposes (docs/governance.md) any one of which covers this purpose.
    pub fn consent_purposes(self) -> &'static [&'static str] {
        match self {
            MessagePurpose::Care => &["customer_service", "marketing"],
            MessagePurpose::Marketing => &["marketing"],
        }
    }
}

/// A new template.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Unique name, e.g. `birthday_zh`.
    pub name: String,
    /// `email` or `sms`.
    pub channel: MessageChannel,
    /// `zh` or `en`.
    pub language: TemplateLanguage,
    /// `care` or `marketing`.
    pub purpose: MessagePurpose,
    /// E-mail subject (required for e-mail, not allowed for SMS).
    #[serde(default)]
    pub subject: Option<String>,
    /// Body with placeholders.
    pub body: String,
}

/// A change to a template: what is given replaces what was there.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    /// New name.
    pub name: Option<String>,
    /// New channel.
    pub channel: Option<MessageChannel>,
    /// New language.
    pub language: Option<TemplateLanguage>,
    /// New purpose.
    pub purpose: Option<MessagePurpose>,
    /// New subject.
    pub subject: Option<String>,
    /// New body.
    pub body: Option<String>,
}

/// A template as shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateView {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Channel.
    pub channel: MessageChannel,
    /// Language.
    pub language: TemplateLanguage,
    /// Purpose.
    pub purpose: MessagePurpose,
    /// E-mail subject.
    pub subject: Option<String>,
    /// Body.
    pub body: String,
    /// The placeholders it uses.
    pub placeholders: Vec<String>,
    /// Who created it.
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A message to send.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    /// The template's id or name.
    pub template: String,
    /// The channel; must be the template's (default: the template's).
    #[serde(default)]
    pub channel: Option<MessageChannel>,
    /// The holiday `{{holiday}}` names (a key such as `spring_festival`); default the next one.
    #[serde(default)]
    pub holiday: Option<String>,
}

/// A message as shown: the recipient masked, never in clear.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// Id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// The template's name.
    pub template: String,
    /// Channel.
    pub channel: String,
    /// Purpose.
    pub purpose: String,
    /// The address or number, masked as the caller's role sees it.
    pub recipient: String,
    /// `sending`, `sent` or `failed`.
    pub status: String,
    /// Why it failed (no personal data).
    pub error: Option<String>,
    /// Who sent it.
    pub sent_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Placeholders

/// The placeholders in `text`, in order, or the problem (an unclosed `{{`).
pub fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a placeholder opened with {{ is not closed with }}".to_owned());
        };
        found.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    Ok(found)
}

/// Checks every placeholder of `text` (field `field`): unknown ones are `unknown_placeholder`, those that would
/// insert personal data `personal_data_placeholder`; each error names the placeholder.
pub fn check_placeholders(field: &str, text: &str) -> Vec<FieldError> {
    let names = match placeholders(text) {
        Ok(names) => names,
        Err(problem) => return vec![FieldError::new(field, "unclosed_placeholder", problem)],
    };
    let mut errors = Vec::new();
    for name in names {
        if PLACEHOLDERS.contains(&name.as_str()) {
            continue;
        }
        let lowered = name.to_lowercase();
        let personal = PERSONAL_PLACEHOLDERS.contains(&lowered.as_str())
            || [
                "mobile",
                "phone",
                "email",
                "id_number",
                "address",
                "bank_card",
                "birth",
                "full_name",
            ]
            .iter()
            .any(|word| lowered.contains(word));
        let shown: String = name.chars().take(60).collect();
        errors.push(if personal {
            FieldError::new(
                field,
                "personal_data_placeholder",
                format!(
                    "placeholder {{{{{shown}}}}} would put personal data into the message; templates may use {}",
                    known_list()
                ),
            )
        } else {
            FieldError::new(
                field,
                "unknown_placeholder",
                format!("unknown placeholder {{{{{shown}}}}}; templates may use {}", known_list()),
            )
        });
    }
    errors
}

fn known_list() -> String {
    PLACEHOLDERS
        .iter()
        .map(|name| format!("{{{{{name}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replaces each placeholder of `text` by its value from `value` (every placeholder must be known: checked first).
fn fill(text: &str, value: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push_str(&value(after[..end].trim()));
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The surname of a (normalised) person name: a Chinese name's first character, or its compound surname (欧阳,
/// 司马, …) when it has at least three characters; for names with a name dot, the part before it; for Latin-script
/// names, the last word.
pub fn surname(name: &str) -> String {
    let name = name.trim();
    if name
        .chars()
        .any(|character| character.is_ascii_alphabetic())
    {
        return name
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned();
    }
    if let Some((first, _)) = name.split_once('·') {
        return first.to_owned();
    }
    if name.chars().count() >= 3 {
        if let Some(compound) = veil_mask::display::COMPOUND_SURNAMES
            .iter()
            .find(|compound| name.starts_with(**compound))
        {
            return (*compound).to_owned();
        }
    }
    name.chars().next().map(String::from).unwrap_or_default()
}

/// `{{customer.title}}` for a gender in a language.
pub fn title(gender: Option<&str>, language: TemplateLanguage) -> &'static str {
    match (gender, language) {
        (Some("male"), TemplateLanguage::Zh) => "先生",
        (Some("female"), TemplateLanguage::Zh) => "女士",
        (Some("male"), TemplateLanguage::En) => "Mr.",
        (Some("female"), TemplateLanguage::En) => "Ms.",
        _ => "",
    }
}

/// Removes the recipient from a delivery error (in every spelling the server knows), masks any other personal
/// data the scanner finds, and shortens it: what is stored and shown never holds the address or number.
pub fn sanitize_error(error: &str, recipient: &str) -> String {
    let mut text = error.replace(['\r', '\n'], " ");
    let digits: String = recipient.chars().filter(char::is_ascii_digit).collect();
    for spelling in [
        recipient.to_owned(),
        recipient.to_lowercase(),
        format!("+86{digits}"),
        digits.clone(),
    ] {
        if spelling.len() >= 5 {
            text = text.replace(&spelling, "[recipient]");
        }
    }
    if let Some((local, _)) = recipient.split_once('@') {
        if local.len() >= 3 {
            text = text.replace(local, "[recipient]");
        }
    }
    let masked = crate::notes::mask_text(&text).body;
    masked.chars().take(300).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Channels

/// A boxed future of a gateway call.
pub type GatewayFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Sends SMS. The built-in [`WebhookSmsGateway`] POSTs to a webhook; a provider's API plugs in here.
pub trait SmsGateway: Send + Sync + fmt::Debug {
    /// Sends `text` to the mobile number `to` (normalised, 11 digits); `message_id` identifies the message for
    /// the provider's receipts. The error must not contain the number (it is sanitised again by the caller).
    fn send<'a>(&'a self, message_id: &'a str, to: &'a str, text: &'a str) -> GatewayFuture<'a>;
}

/// Where the SMS webhook goes.
#[derive(Debug, Clone)]
pub struct SmsWebhookTarget {
    /// `http://` or `https://` URL.
    pub url: String,
    /// HMAC key of the `X-Veil-Signature` header (16+ characters).
    pub secret: Secret,
}

/// The SMS gateway that POSTs `{"id", "to", "text"}` as JSON to a URL, signed like the alert webhook.
pub struct WebhookSmsGateway {
    target: SmsWebhookTarget,
    agent: ureq::Agent,
}

impl fmt::Debug for WebhookSmsGateway {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WebhookSmsGateway")
            .finish_non_exhaustive()
    }
}

impl WebhookSmsGateway {
    /// Checks the target and prepares the client.
    pub fn new(target: SmsWebhookTarget) -> AppResult<WebhookSmsGateway> {
        if !(target.url.starts_with("https://") || target.url.starts_with("http://")) {
            return Err(setting_error(
                "VEIL_SMS_WEBHOOK_URL",
                "must be an http:// or https:// URL",
            ));
        }
        if target.secret.expose().len() < 16 {
            return Err(setting_error(
                "VEIL_SMS_WEBHOOK_SECRET",
                "is required with the SMS webhook URL and must be at least 16 characters",
            ));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(DELIVERY_TIMEOUT))
            .http_status_as_error(true)
            .build()
            .into();
        Ok(WebhookSmsGateway { target, agent })
    }
}

impl SmsGateway for WebhookSmsGateway {
    fn send<'a>(&'a self, message_id: &'a str, to: &'a str, text: &'a str) -> GatewayFuture<'a> {
        Box::pin(async move {
            let body =
                serde_json::to_vec(&serde_json::json!({"id": message_id, "to": to, "text": text}))
                    .map_err(|error| error.to_string())?;
            let header = signature_header(
                self.target.secret.expose().as_bytes(),
                now_ms() / 1000,
                &body,
            );
            let agent = self.agent.clone();
            let url = self.target.url.clone();
            tokio::task::spawn_blocking(move || {
                agent
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(SIGNATURE_HEADER, &header)
                    .send(&body[..])
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            })
            .await
            .map_err(|error| error.to_string())?
        })
    }
}

/// How messages are sent: each channel optional.
#[derive(Debug, Clone, Default)]
pub struct MessengerConfig {
    /// `smtp://…` or `smtps://…` (as `VEIL_ALERT_SMTP_URL`).
    pub smtp_url: Option<Secret>,
    /// The sender address of e-mails.
    pub email_from: Option<String>,
    /// The SMS webhook.
    pub sms_webhook: Option<SmsWebhookTarget>,
}

/// Sends messages on the configured channels.
pub struct Messenger {
    email: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    sms: Option<Arc<dyn SmsGateway>>,
    /// The address customers reach the server at (`VEIL_PUBLIC_URL`), for survey links; no trailing slash.
    public_url: Option<String>,
}

impl fmt::Debug for Messenger {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Messenger")
            .field("email", &self.email.is_some())
            .field("sms", &self.sms.is_some())
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// Checks and normalises the server's public address (`VEIL_PUBLIC_URL`): `http://` or `https://`, a host, an
/// optional port and path, no query, fragment, user or spaces; the trailing slash is dropped. The error says
/// what is wrong, without repeating the value.
pub fn normalise_public_url(url: &str) -> Result<String, &'static str> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("must name a host, e.g. https://crm.example.com");
    }
    if rest.contains(['?', '#', '@'])
        || rest
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
    {
        return Err("must be a plain address (scheme, host, optional port and path; no query, fragment or user)");
    }
    Ok(url.to_owned())
}

fn setting_error(field: &str, message: &str) -> AppError {
    AppError::Validation(vec![FieldError::new(field, "invalid", message)])
}

impl Messenger {
    /// Checks the configuration and prepares the clients. Errors name the setting.
    pub fn new(config: MessengerConfig) -> AppResult<Messenger> {
        let email = match config.smtp_url {
            None => None,
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|_| {
                        setting_error(
                            "VEIL_MESSAGE_SMTP_URL",
                            "must be smtp://[user:pass@]host[:port][?tls=required] or smtps://[user:pass@]host[:port]",
                        )
                    })?
                    .timeout(Some(DELIVERY_TIMEOUT))
                    .build();
                let from: Mailbox = config
                    .email_from
                    .as_deref()
                    .unwrap_or("veil@localhost")
                    .parse()
                    .map_err(|_| {
                        setting_error("VEIL_MESSAGE_EMAIL_FROM", "is not a valid email address")
                    })?;
                Some((transport, from))
            }
        };
        let sms: Option<Arc<dyn SmsGateway>> = match config.sms_webhook {
            None => None,
            Some(target) => Some(Arc::new(WebhookSmsGateway::new(target)?)),
        };
        Ok(Messenger {
            email,
            sms,
            public_url: None,
        })
    }

    /// Sets the address customers reach the server at (`VEIL_PUBLIC_URL`), which survey links start with.
    pub fn with_public_url(mut self, url: &str) -> AppResult<Messenger> {
        let url = normalise_public_url(url)
            .map_err(|problem| setting_error("VEIL_PUBLIC_URL", problem))?;
        self.public_url = Some(url);
        Ok(self)
    }

    /// The address survey links start with, if configured.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// Replaces the SMS gateway (a provider's implementation of [`SmsGateway`]).
    pub fn with_sms_gateway(mut self, gateway: Arc<dyn SmsGateway>) -> Messenger {
        self.sms = Some(gateway);
        self
    }

    /// Whether any channel is configured.
    pub fn is_configured(&self) -> bool {
        self.email.is_some() || self.sms.is_some()
    }

    /// Whether `channel` is configured.
    pub fn has(&self, channel: MessageChannel) -> bool {
        match channel {
            MessageChannel::Email => self.email.is_some(),
            MessageChannel::Sms => self.sms.is_some(),
        }
    }

    async fn send_email(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let Some((transport, from)) = &self.email else {
            return Err("e-mail is not configured".to_owned());
        };
        let to: Mailbox = to
            .parse()
            .map_err(|_| "the stored address is not deliverable".to_owned())?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|error| error.to_string())?;
        tokio::time::timeout(DELIVERY_TIMEOUT * 2, transport.send(message))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    async fn send_sms(&self, message_id: &str, to: &str, text: &str) -> Result<(), String> {
        let Some(gateway) = &self.sms else {
            return Err("SMS is not configured".to_owned());
        };
        tokio::time::timeout(DELIVERY_TIMEOUT * 2, gateway.send(message_id, to, text))
            .await
            .map_err(|_| "timed out".to_owned())?
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Templates

/// What a send fills placeholders with besides the customer's decrypted fields; the survey link is a bearer
/// secret until answered, held in a zeroizing buffer and never stored or logged.
struct RenderValues {
    points: i64,
    holiday: Option<String>,
    survey_link: Option<zeroize::Zeroizing<String>>,
    survey_expires: Option<String>,
}

fn template_view(row: TemplateRow) -> TemplateView {
    let mut used: Vec<String> = Vec::new();
    for text in row.subject.iter().chain(std::iter::once(&row.body)) {
        for name in placeholders(text).unwrap_or_default() {
            if !used.contains(&name) {
                used.push(name);
            }
        }
    }
    TemplateView {
        id: row.id,
        name: row.name,
        channel: MessageChannel::parse(&row.channel).unwrap_or(MessageChannel::Email),
        language: TemplateLanguage::parse(&row.language).unwrap_or(TemplateLanguage::Zh),
        purpose: MessagePurpose::parse(&row.purpose).unwrap_or(MessagePurpose::Marketing),
        subject: row.subject,
        body: row.body,
        placeholders: used,
        created_by: row.created_by,
        created_at: format_time(row.created_at),
        updated_at: format_time(row.updated_at),
    }
}

/// Checks a template's fields; every problem at once.
fn validate_template(row: &TemplateRow) -> AppResult<()> {
    let mut errors = Vec::new();
    let name = row.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_LINE_CHARS
        || name.chars().any(char::is_control)
        || name != row.name
    {
        errors.push(FieldError::new(
            "name",
            "invalid",
            format!(
                "1 to {MAX_LINE_CHARS} characters, no control characters or surrounding spaces"
            ),
        ));
    }
    let email = row.channel == MessageChannel::Email.as_str();
    match (&row.subject, email) {
        (None, true) => errors.push(FieldError::new(
            "subject",
            "required",
            "an e-mail template needs a subject",
        )),
        (Some(_), false) => errors.push(FieldError::new(
            "subject",
            "not_allowed",
            "SMS templates have no subject",
        )),
        (Some(subject), true) => {
            if subject.trim().is_empty()
                || subject.chars().count() > MAX_LINE_CHARS
                || subject.chars().any(char::is_control)
            {
                errors.push(FieldError::new(
                    "subject",
                    "invalid",
                    format!("1 to {MAX_LINE_CHARS} characters on one line"),
                ));
            }
            errors.extend(check_placeholders("subject", subject));
        }
        (None, false) => {}
    }
    if row.body.trim().is_empty() || row.body.chars().count() > MAX_BODY_CHARS {
        errors.push(FieldError::new(
            "body",
            "invalid",
            format!("1 to {MAX_BODY_CHARS} characters"),
        ));
    }
    errors.extend(check_placeholders("body", &row.body));
    // Fixed text may not carry personal data either (a number typed into a template would go to everyone). Names,
    // addresses and dates are left out: the scanner finds them by context words, which greetings are full of.
    for (field, text) in [
        ("subject", row.subject.as_deref()),
        ("body", Some(row.body.as_str())),
    ] {
        if let Some(text) = text {
            let scanned = crate::notes::mask_text(text);
            if scanned
                .spans
                .iter()
                .any(|span| !matches!(span.kind.as_str(), "person_name" | "address" | "birth_date"))
            {
                errors.push(FieldError::new(
                    field,
                    "personal_data",
                    "the text contains personal data (a number, an ID or an e-mail address); use placeholders",
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

fn message_view(row: MessageRow, recipient: String) -> MessageView {
    MessageView {
        id: row.id,
        customer_id: row.customer_id,
        template: row.template_name,
        channel: row.channel,
        purpose: row.purpose,
        recipient,
        status: row.status,
        error: row.error,
        sent_by: row.sent_by,
        created_at: format_time(row.created_at),
    }
}

impl Veil {
    /// The messenger in force, if any.
    pub fn messenger(&self) -> Option<Arc<Messenger>> {
        self.messenger
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Sets (or clears) the messenger (from the configuration).
    pub fn set_messenger(&self, messenger: Option<Messenger>) {
        *self
            .messenger
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = messenger.map(Arc::new);
    }

    /// Shares a messenger already in use (a second handle on the same configuration).
    pub fn share_messenger(&self, messenger: Option<Arc<Messenger>>) {
        *self
            .messenger
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = messenger;
    }

    /// Adds a template (admins and managers).
    pub async fn create_template(
        &self,
        actor: &Actor,
        input: &TemplateInput,
    ) -> AppResult<TemplateView> {
        self.permit_recorded(actor, Action::TemplateManage, None)
            .await?;
        let now = now_ms();
        let row = TemplateRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: input.name.clone(),
            channel: input.channel.as_str().to_owned(),
            language: input.language.as_str().to_owned(),
            purpose: input.purpose.as_str().to_owned(),
            subject: input.subject.clone(),
            body: input.body.clone(),
            created_by: Some(actor.user_id.to_string()),
            created_at: now,
            updated_at: now,
        };
        validate_template(&row)?;
        let entry = audit::event(Some(actor), "template.create", Outcome::Ok).detail(
            serde_json::json!({"template": row.id, "name": row.name, "channel": row.channel,
                               "purpose": row.purpose}),
        );
        self.store()
            .insert_template(&row, &[entry])
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => {
                    AppError::Conflict(format!("a template named {} exists", row.name))
                }
                other => other.into(),
            })?;
        Ok(template_view(row))
    }

    /// Every template (everyone who may send messages).
    pub async fn list_templates(&self, actor: &Actor) -> AppResult<Vec<TemplateView>> {
        self.permit_recorded(actor, Action::TemplateRead, None)
            .await?;
        Ok(self
            .store()
            .list_templates()
            .await?
            .into_iter()
            .map(template_view)
            .collect())
    }

    /// One template by id or name.
    pub async fn get_template(&self, actor: &Actor, id: &str) -> AppResult<TemplateView> {
        self.permit_recorded(actor, Action::TemplateRead, None)
            .await?;
        self.store()
            .template(id)
            .await?
            .map(template_view)
            .ok_or(AppError::NotFound)
    }

    /// Changes a template (admins and managers); a concurrent change is 409.
    pub async fn update_template(
        &self,
        actor: &Actor,
        id: &str,
        patch: &TemplatePatch,
    ) -> AppResult<TemplateView> {
        self.permit_recorded(actor, Action::TemplateManage, None)
            .await?;
        let before = self.store().template(id).await?.ok_or(AppError::NotFound)?;
        let mut row = before.clone();
        if let Some(name) = &patch.name {
            row.name = name.clone();
        }
        if let Some(channel) = patch.channel {
            row.channel = channel.as_str().to_owned();
            if channel == MessageChannel::Sms && patch.subject.is_none() {
                row.subject = None;
            }
        }
        if let Some(language) = patch.language {
            row.language = language.as_str().to_owned();
        }
        if let Some(purpose) = patch.purpose {
            row.purpose = purpose.as_str().to_owned();
        }
        if let Some(subject) = &patch.subject {
            row.subject = Some(subject.clone());
        }
        if let Some(body) = &patch.body {
            row.body = body.clone();
        }
        row.updated_at = now_ms().max(before.updated_at + 1);
        validate_template(&row)?;
        let entry = audit::event(Some(actor), "template.update", Outcome::Ok).detail(
            serde_json::json!({"template": row.id, "name": row.name, "channel": row.channel,
                               "purpose": row.purpose}),
        );
        self.store()
            .update_template(&row, before.updated_at, &[entry])
            .await
            .map_err(|error| match error {
                StoreError::StaleWrite => {
                    AppError::Conflict("the template changed meanwhile; reload it".to_owned())
                }
                StoreError::Conflict(_) => {
                    AppError::Conflict(format!("a template named {} exists", row.name))
                }
                other => other.into(),
            })?;
        Ok(template_view(row))
    }

    /// Deletes a template (admins and managers). Messages sent with it keep its name.
    pub async fn delete_template(&self, actor: &Actor, id: &str) -> AppResult<()> {
        self.permit_recorded(actor, Action::TemplateManage, None)
            .await?;
        let row = self.store().template(id).await?.ok_or(AppError::NotFound)?;
        let entry = audit::event(Some(actor), "template.delete", Outcome::Ok)
            .detail(serde_json::json!({"template": row.id, "name": row.name}));
        if !self.store().delete_template(&row.id, &[entry]).await? {
            return Err(AppError::NotFound);
        }
        Ok(())
    }

    /// The masked recipient as `actor`'s role sees it (never in clear).
    async fn recipient_display(
        &self,
        actor: &Actor,
        customer_id: &str,
        field: SensitiveField,
        default: &str,
    ) -> AppResult<String> {
        let mut items = [(customer_id.to_owned(), default.to_owned())];
        self.role_displays_without_plaintext(actor, field, &mut items)
            .await?;
        let [(_, shown)] = items;
        Ok(shown)
    }

    /// Whether a live consent of `customer_id` covers sending `purpose` by `channel` (see the module docs).
    async fn message_consent(
        &self,
        customer_id: &str,
        purpose: MessagePurpose,
        channel: MessageChannel,
    ) -> AppResult<bool> {
        let now = now_ms();
        let field = channel.field().as_str();
        let list = |text: &str| serde_json::from_str::<Vec<String>>(text).unwrap_or_default();
        Ok(self
            .store()
            .consents_of(customer_id)
            .await?
            .iter()
            .any(|consent| {
                consent.withdrawn_at.is_none()
                    && consent.granted_at <= now
                    && consent.expires_at.is_none_or(|at| at > now)
                    && consent.recipient == "internal"
                    && list(&consent.fields).iter().any(|f| f == field)
                    && list(&consent.purposes)
                        .iter()
                        .any(|p| purpose.consent_purposes().contains(&p.as_str()))
            }))
    }

    /// Sends a message to a customer the caller sees, from a template: the server decrypts the address or
    /// number, renders and sends; the caller gets the masked recipient and the outcome. See the module docs.
    pub async fn send_message(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        input: &SendInput,
    ) -> AppResult<MessageView> {
        let id = customer_id.to_string();
        let masked = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::MessageSend, Some((&id, &masked.profile)))
            .await?;
        let (template, view) = self
            .template_for_send(&input.template, input.channel, false)
            .await?;
        self.send_from_template(
            actor,
            &masked,
            &template,
            &view,
            input.holiday.as_deref(),
            None,
        )
        .await
    }

    /// The template a send names, checked for that send: the channel asked for must be the template's, its
    /// placeholders are checked again (a template stored before a rule changed cannot slip by), the survey
    /// placeholders are filled only by a survey send (`survey_required` otherwise), and a survey send's template
    /// must carry `{{survey.link}}` (`survey_link_missing`).
    pub(crate) async fn template_for_send(
        &self,
        name: &str,
        channel: Option<MessageChannel>,
        survey: bool,
    ) -> AppResult<(TemplateRow, TemplateView)> {
        let template = self.store().template(name.trim()).await?.ok_or_else(|| {
            AppError::Validation(vec![FieldError::new(
                "template",
                "unknown",
                "no such template",
            )])
        })?;
        let view = template_view(template.clone());
        if let Some(channel) = channel {
            if channel != view.channel {
                return Err(AppError::Validation(vec![FieldError::new(
                    "channel",
                    "channel_mismatch",
                    format!(
                        "the template {} is for {}",
                        view.name,
                        view.channel.as_str()
                    ),
                )]));
            }
        }
        let mut errors = check_placeholders("body", &template.body);
        if let Some(subject) = &template.subject {
            errors.extend(check_placeholders("subject", subject));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let survey_placeholder = view
            .placeholders
            .iter()
            .find(|name| SURVEY_PLACEHOLDERS.contains(&name.as_str()));
        if let (false, Some(name)) = (survey, survey_placeholder) {
            return Err(AppError::Validation(vec![FieldError::new(
                "template",
                "survey_required",
                format!(
                    "the template {} uses {{{{{name}}}}}, which only a survey send fills: send it with \
                     POST /api/v1/surveys/{{id}}/send (or /api/v1/surveys/campaigns/{{id}}/send)",
                    view.name
                ),
            )]));
        }
        if survey && !view.placeholders.iter().any(|name| name == "survey.link") {
            return Err(AppError::Validation(vec![FieldError::new(
                "template",
                "survey_link_missing",
                format!(
                    "the template {} has no {{{{survey.link}}}}: a survey send must carry the link",
                    view.name
                ),
            )]));
        }
        Ok((template, view))
    }

    /// The messenger configured for `channel` (422 `channel_not_configured` otherwise); a survey send also
    /// needs the server's public address (422 `public_url_not_configured`).
    pub(crate) fn messenger_for(
        &self,
        channel: MessageChannel,
        survey: bool,
    ) -> AppResult<Arc<Messenger>> {
        let Some(messenger) = self.messenger().filter(|messenger| messenger.has(channel)) else {
            return Err(AppError::Validation(vec![FieldError::new(
                "channel",
                "channel_not_configured",
                format!(
                    "sending by {} is not configured on this server",
                    channel.as_str()
                ),
            )]));
        };
        if survey && messenger.public_url().is_none() {
            return Err(AppError::Validation(vec![FieldError::new(
                "survey",
                "public_url_not_configured",
                "survey links need the address customers reach this server at: set VEIL_PUBLIC_URL",
            )]));
        }
        Ok(messenger)
    }

    /// Sends `template` (checked by [`Veil::template_for_send`]) to a customer the caller has been authorised
    /// for; with a `survey` (open, of this customer), the message carries a link of its own to it. Consent,
    /// recipient and channel are checked here, per customer.
    pub(crate) async fn send_from_template(
        &self,
        actor: &Actor,
        masked: &MaskedCustomerRow,
        template: &TemplateRow,
        view: &TemplateView,
        holiday: Option<&str>,
        survey: Option<&SurveyRow>,
    ) -> AppResult<MessageView> {
        let id = masked.id.clone();
        let channel = view.channel;
        let field = channel.field();
        let Some(default_recipient) = masked.masked.get(&field).cloned() else {
            return Err(AppError::Validation(vec![FieldError::new(
                field.as_str(),
                match channel {
                    MessageChannel::Email => "no_email",
                    MessageChannel::Sms => "no_mobile",
                },
                "the customer has no value to send to on this channel",
            )]));
        };
        if !self.message_consent(&id, view.purpose, channel).await? {
            self.record_best_effort(&[audit::event(Some(actor), "message.send", Outcome::Denied)
                .customers([id.clone()])
                .fields([field.as_str()])
                .detail(
                    serde_json::json!({"template": view.name, "channel": channel.as_str(),
                                       "survey_id": survey.map(|survey| &survey.id),
                                       "reason": "consent_required"}),
                )])
            .await;
            return Err(AppError::Validation(vec![FieldError::new(
                "consent",
                "consent_required",
                format!(
                    "no live consent of this customer covers {} messages by {} (a consent for {} covering the \
                     field {} with recipient internal): record one first",
                    view.purpose.as_str(),
                    channel.as_str(),
                    view.purpose.consent_purposes().join(" or "),
                    field.as_str()
                ),
            )]));
        }
        let messenger = self.messenger_for(channel, survey.is_some())?;
        // Values that are not personal data, gathered before anything is decrypted.
        let language = view.language;
        let used: Vec<String> = view.placeholders.clone();
        let points = if used.iter().any(|name| name == "points") {
            self.store()
                .loyalty_account(&id)
                .await?
                .map(|account| account.balance)
                .unwrap_or(0)
        } else {
            0
        };
        let holiday = if used.iter().any(|name| name == "holiday") {
            Some(holiday_name(holiday, language)?)
        } else {
            None
        };
        let needs_name = used.iter().any(|name| name == "customer.surname");
        let now = now_ms();
        let message = MessageRow {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: id.clone(),
            template_id: Some(template.id.clone()),
            template_name: template.name.clone(),
            channel: channel.as_str().to_owned(),
            purpose: view.purpose.as_str().to_owned(),
            recipient_masked: default_recipient.clone(),
            status: "sending".to_owned(),
            error: None,
            sent_by: Some(actor.user_id.to_string()),
            created_at: now,
            updated_at: now,
        };
        let mut fields = vec![field];
        if needs_name {
            fields.push(SensitiveField::Name);
        }
        // A survey send mints a token for this message alone: only its hash is stored, the link itself lives in
        // this process until the message is handed over.
        let mut values = RenderValues {
            points,
            holiday,
            survey_link: None,
            survey_expires: None,
        };
        let mut sent_link = None;
        if let Some(survey) = survey {
            let (token, token_hash) = crate::feedback::new_token();
            let token = zeroize::Zeroizing::new(token);
            let public_url = messenger.public_url().unwrap_or_default();
            values.survey_link = Some(zeroize::Zeroizing::new(format!(
                "{public_url}/survey/{}",
                token.as_str()
            )));
            values.survey_expires = Some(crate::feedback::china_date(survey.expires_at));
            sent_link = Some(SurveyLinkRow {
                token_hash,
                survey_id: survey.id.clone(),
                message_id: Some(message.id.clone()),
                created_at: now,
            });
        }
        let mut entry = audit::event(Some(actor), "message.send", Outcome::Ok)
            .customers([id.clone()])
            .fields(fields.iter().map(|field| field.as_str()))
            .detail(serde_json::json!({
                "message_id": message.id, "template": template.name, "channel": channel.as_str(),
                "recipient": default_recipient, "system_use": "message_delivery",
                "survey_id": survey.map(|survey| &survey.id),
                "reminder": survey.map(|survey| survey.sent_count > 0),
            }));
        entry.purpose = Some(view.purpose.as_str().to_owned());
        // The use is on record before anything is decrypted (fail closed).
        match (&sent_link, survey) {
            (Some(link), Some(survey)) => {
                // The creation link's hash is replaced by one nobody holds: once sent, only sent links work.
                let (_, retired_hash) = crate::feedback::new_token();
                let claimed = self
                    .store()
                    .insert_survey_message(
                        &message,
                        link,
                        &retired_hash,
                        survey.last_sent_at,
                        &[entry],
                    )
                    .await?;
                if !claimed {
                    let now_state = self.store().survey(&survey.id).await?;
                    let now_state = now_state.as_ref().unwrap_or(survey);
                    return Err(crate::feedback::survey_closed_error(now_state, now_ms())
                        .unwrap_or_else(|| {
                            AppError::Validation(vec![FieldError::new(
                                "survey",
                                "sent_concurrently",
                                "another request sent this survey's link just now: nothing more was sent",
                            )])
                        }));
                }
            }
            _ => self.store().insert_message(&message, &[entry]).await?,
        }

        let outcome = self
            .deliver(
                &messenger,
                &message,
                template,
                language,
                &fields,
                &values,
                actor,
                masked.profile.gender.as_deref(),
            )
            .await;
        drop(values);
        let (status, error) = match outcome {
            Ok(()) => ("sent", None),
            Err(error) => ("failed", Some(error)),
        };
        let mut audit_entries = Vec::new();
        if let Some(error) = &error {
            tracing::warn!(message = %message.id, error = %error, "message delivery failed");
            audit_entries.push(
                audit::event(Some(actor), "message.send", Outcome::Failed)
                    .customers([id.clone()])
                    .detail(serde_json::json!({"message_id": message.id, "error": error})),
            );
        } else {
            tracing::info!(message = %message.id, channel = channel.as_str(), "message sent");
        }
        self.store()
            .finish_message(
                &message.id,
                status,
                error.as_deref(),
                now_ms(),
                &audit_entries,
            )
            .await?;
        let recipient = self
            .recipient_display(actor, &id, field, &default_recipient)
            .await?;
        let mut row = message;
        row.status = status.to_owned();
        row.error = error;
        Ok(message_view(row, recipient))
    }

    /// Decrypts, renders and sends; the error (if any) is already free of the recipient.
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        messenger: &Messenger,
        message: &MessageRow,
        template: &TemplateRow,
        language: TemplateLanguage,
        fields: &[SensitiveField],
        values: &RenderValues,
        actor: &Actor,
        gender: Option<&str>,
    ) -> Result<(), String> {
        let opened = async {
            let row = self
                .store()
                .customer_row(&message.customer_id)
                .await?
                .ok_or(AppError::NotFound)?;
            let key = self
                .store()
                .customer_key(&message.customer_id)
                .await?
                .ok_or(AppError::NotFound)?;
            reveal::open_fields(
                self,
                &reveal::RevealAuthority::message_send(),
                &row,
                &key,
                fields,
            )
        }
        .await
        .map_err(|error| match error {
            AppError::NotFound => "the customer was erased".to_owned(),
            _ => "the customer's data could not be opened".to_owned(),
        })?;
        let Some(recipient) = opened.get(&fields[0]) else {
            return Err("the customer has no value on this channel".to_owned());
        };
        let family = opened
            .get(&SensitiveField::Name)
            .map(|name| surname(name))
            .unwrap_or_default();
        let today = crate::today();
        let value = |name: &str| -> String {
            match name {
                "customer.surname" => family.clone(),
                "customer.title" => title(gender, language).to_owned(),
                "points" => values.points.to_string(),
                "holiday" => values.holiday.clone().unwrap_or_default(),
                "agent.name" => actor.username.clone(),
                "today" => format!("{:04}-{:02}-{:02}", today.year, today.month, today.day),
                "survey.link" => values
                    .survey_link
                    .as_deref()
                    .map(String::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                "survey.expires" => values.survey_expires.clone().unwrap_or_default(),
                _ => String::new(),
            }
        };
        let body = zeroize::Zeroizing::new(fill(&template.body, &value));
        let result = match MessageChannel::parse(&message.channel) {
            Some(MessageChannel::Email) => {
                let subject = fill(template.subject.as_deref().unwrap_or_default(), &value);
                messenger.send_email(recipient, &subject, &body).await
            }
            Some(MessageChannel::Sms) => messenger.send_sms(&message.id, recipient, &body).await,
            None => Err("unknown channel".to_owned()),
        };
        result.map_err(|error| {
            // The link (and its token alone, however a gateway escaped or cut the rest) goes before the error is
            // shortened and scanned.
            let mut raw = error;
            if let Some(link) = &values.survey_link {
                raw = raw.replace(link.as_str(), "[survey link]");
                if let Some(token) = link.rsplit('/').next().filter(|token| !token.is_empty()) {
                    raw = raw.replace(token, "[survey token]");
                }
            }
            sanitize_error(&raw, recipient)
        })
    }

    /// A customer's newest messages (for callers who see the customer), recipients masked.
    pub async fn list_messages(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
    ) -> AppResult<Vec<MessageView>> {
        let id = customer_id.to_string();
        let masked = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::InteractionRead, Some((&id, &masked.profile)))
            .await?;
        let rows = self.store().customer_messages(&id, 100).await?;
        self.record(&[audit::event(Some(actor), "message.list", Outcome::Ok)
            .customers([id.clone()])
            .detail(serde_json::json!({"returned": rows.len()}))])
            .await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let field = MessageChannel::parse(&row.channel)
                .unwrap_or(MessageChannel::Email)
                .field();
            let recipient = self
                .recipient_display(actor, &id, field, &row.recipient_masked)
                .await?;
            views.push(message_view(row, recipient));
        }
        Ok(views)
    }
}

/// The name of the holiday `key` (default: the next one from today) in `language`.
fn holiday_name(key: Option<&str>, language: TemplateLanguage) -> AppResult<String> {
    use chrono::Datelike;
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .date_naive();
    let holidays: Vec<crate::care::Holiday> = (today.year()..=today.year() + 1)
        .flat_map(crate::care::holidays_in)
        .filter(|holiday| holiday.date >= today)
        .collect();
    let found = match key.map(str::trim).filter(|key| !key.is_empty()) {
        Some(key) => holidays
            .iter()
            .find(|holiday| holiday.key == key)
            .ok_or_else(|| {
                AppError::Validation(vec![FieldError::new(
                    "holiday",
                    "unknown",
                    "no such holiday (keys as GET /api/v1/reminders lists them, e.g. spring_festival)",
                )])
            })?,
        None => holidays.first().ok_or_else(|| {
            AppError::Validation(vec![FieldError::new("holiday", "unknown", "no upcoming holiday")])
        })?,
    };
    Ok(match language {
        TemplateLanguage::Zh => found.name_zh.to_owned(),
        TemplateLanguage::En => found.name_en.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked_by_name() {
        assert!(check_placeholders(
            "body",
            "尊敬的{{customer.surname}}{{customer.title}}，{{ points }}"
        )
        .is_empty());
        let unknown = check_placeholders("body", "hi {{customer.nickname}}");
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].code, "unknown_placeholder");
        assert!(
            unknown[0].message.contains("{{customer.nickname}}"),
            "{}",
            unknown[0].message
        );
        let personal = check_placeholders("body", "{{customer.mobile}} {{customer.name}}");
        assert_eq!(personal.len(), 2);
        assert!(personal
            .iter()
            .all(|error| error.code == "personal_data_placeholder"));
        assert!(personal[0].message.contains("{{customer.mobile}}"));
        assert_eq!(
            check_placeholders("body", "{{points")[0].code,
            "unclosed_placeholder"
        );
    }

    #[test]
    fn rendering_fills_known_placeholders() {
        let text = fill(
            "亲爱的{{customer.surname}}{{ customer.title }}，您有{{points}}分",
            &|name| match name {
                "customer.surname" => "欧阳".to_owned(),
                "customer.title" => "女士".to_owned(),
                "points" => "120".to_owned(),
                _ => String::new(),
            },
        );
        assert_eq!(text, "亲爱的欧阳女士，您有120分");
    }

    #[test]
    fn surnames_and_titles() {
        assert_eq!(surname("欧阳娜娜"), "欧阳");
        assert_eq!(surname("司马相如"), "司马");
        assert_eq!(surname("张三"), "张");
        assert_eq!(surname("买买提·艾力"), "买买提");
        assert_eq!(surname("John Smith"), "Smith");
        assert_eq!(title(Some("female"), TemplateLanguage::Zh), "女士");
        assert_eq!(title(Some("male"), TemplateLanguage::En), "Mr.");
        assert_eq!(title(None, TemplateLanguage::En), "");
    }

    #[test]
    fn survey_placeholders_are_known() {
        assert!(check_placeholders(
            "body",
            "请打分：{{survey.link}}（{{ survey.expires }}前有效）"
        )
        .is_empty());
        for name in SURVEY_PLACEHOLDERS {
            assert!(PLACEHOLDERS.contains(&name));
        }
    }

    #[test]
    fn public_urls_are_checked() {
        for (input, expected) in [
            ("https://crm.example.com", Ok("https://crm.example.com")),
            ("https://crm.example.com/", Ok("https://crm.example.com")),
            (
                " http://10.0.0.5:8080/veil/ ",
                Ok("http://10.0.0.5:8080/veil"),
            ),
            ("crm.example.com", Err(())),
            ("ftp://crm.example.com", Err(())),
            ("https://", Err(())),
            ("https://:443", Err(())),
            ("https://crm.example.com/?a=1", Err(())),
            ("https://crm.example.com/#x", Err(())),
            ("https://user@crm.example.com", Err(())),
            ("https://crm example.com", Err(())),
        ] {
            assert_eq!(
                normalise_public_url(input).map_err(|_| ()),
                expected.map(str::to_owned),
                "{input}"
            );
        }
        let messenger = Messenger::new(MessengerConfig::default())
            .unwrap()
            .with_public_url("https://crm.example.com/")
            .unwrap();
        assert_eq!(messenger.public_url(), Some("https://crm.example.com"));
        assert!(Messenger::new(MessengerConfig::default())
            .unwrap()
            .with_public_url("crm.example.com")
            .is_err());
    }

    #[test]
    fn errors_lose_the_recipient() {
        let error =
            "550 5.1.1 <nana.ouyang@example.com>: Recipient address rejected; nana.ouyang unknown";
        let clean = sanitize_error(error, "nana.ouyang@example.com");
        assert!(!clean.contains("nana.ouyang"), "{clean}");
        let clean = sanitize_error(
            "gateway refused 13912345678 (+8613912345678)",
            "13912345678",
        );
        assert!(!clean.contains("13912345678"), "{clean}");
    }
}
