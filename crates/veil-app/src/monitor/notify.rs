//! Alert delivery: a signed webhook and email over SMTP, each optional.
//!
//! Every alert is delivered at least once per configured channel: the store keeps, per alert and channel, when it
//! was delivered and how many attempts failed. Each monitor pass sends what is undelivered (alerts younger than
//! [`DELIVERY_HORIZON_MS`], fewer than [`MAX_ATTEMPTS`] failures), oldest first, and stops a channel at its first
//! failure so a dead server costs one timeout per pass. Failures are logged with the alert id and the error,
//! never the alert's content.
//!
//! The webhook is `POST <url>` with the alert as JSON ([`super::AlertView`]) and the header
//! `X-Veil-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; receivers recompute the
//! HMAC and reject old timestamps. Email is plain text with the rule, severity, summary and ids — the same
//! content as the in-app list, which never holds customer data.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;
use veil_store::{AlertRow, Channel, Store};
use zeroize::Zeroizing;

use super::AlertView;
use crate::error::{AppError, AppResult, FieldError};
use crate::now_ms;

/// Alerts older than this are not delivered any more (a channel configured later does not replay history).
pub const DELIVERY_HORIZON_MS: i64 = 24 * 60 * 60 * 1000;
/// Failed attempts after which an alert is no longer sent on a channel.
pub const MAX_ATTEMPTS: i64 = 10;
/// Time allowed for one delivery.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Alerts sent per channel per pass.
const BATCH: i64 = 50;
/// The signature header of webhook requests.
pub const SIGNATURE_HEADER: &str = "X-Veil-Signature";

/// A secret string (webhook secret, SMTP URL with its password): redacted in `Debug`, zeroized on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(Zeroizing::new(text.into()))
    }

    /// The secret, for the code that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

/// Where a webhook goes.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// `http://` or `https://` URL.
    pub url: String,
    /// HMAC key for the signature header.
    pub secret: Secret,
}

/// How alert email is sent.
#[derive(Debug, Clone)]
pub struct EmailTarget {
    /// `smtp://[user:pass@]host[:port]` (plain; add `?tls=required` for STARTTLS) or `smtps://…` (TLS).
    pub smtp_url: Secret,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// The configured channels; both optional.
#[derive(Debug, Clone, Default)]
pub struct NotifierConfig {
    /// The signed webhook.
    pub webhook: Option<WebhookTarget>,
    /// Email.
    pub email: Option<EmailTarget>,
}

/// Sends alerts to the configured channels.
pub struct Notifier {
    webhook: Option<(WebhookTarget, ureq::Agent)>,
    email: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox, Vec<Mailbox>)>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Notifier")
            .field("webhook", &self.webhook.is_some())
            .field("email", &self.email.is_some())
            .finish()
    }
}

/// HMAC-SHA256 over `"<timestamp>.<body>"`, hex.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    crate::audit::hex(&mac.finalize().into_bytes())
}

/// The `X-Veil-Signature` header value for `body` signed at `timestamp` (Unix seconds).
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", signature(secret, timestamp, body))
}

const SMTP_URL_FORMS: &str =
    "must be smtp://[user:pass@]host[:port][?tls=required] or smtps://[user:pass@]host[:port]";

fn setting_error(field: &str, message: &str) -> AppError {
    AppError::Validation(vec![FieldError::new(field, "invalid", message)])
}

impl Notifier {
    /// Checks the configuration and prepares the clients. Errors name the setting (`VEIL_ALERT_…`).
    pub fn new(config: NotifierConfig) -> AppResult<Notifier> {
        let webhook = match config.webhook {
            None => None,
            Some(target) => {
                if !(target.url.starts_with("https://") || target.url.starts_with("http://")) {
                    return Err(setting_error(
                        "VEIL_ALERT_WEBHOOK_URL",
                        "must be an http:// or https:// URL",
                    ));
                }
                if target.secret.expose().len() < 16 {
                    return Err(setting_error(
                        "VEIL_ALERT_WEBHOOK_SECRET",
                        "is required with a webhook URL and must be at least 16 characters",
                    ));
                }
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(DELIVERY_TIMEOUT))
                    .http_status_as_error(true)
                    .build()
                    .into();
                Some((target, agent))
            }
        };
        let email = match config.email {
            None => None,
            Some(target) => {
                let url = target.smtp_url.expose();
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|_| setting_error("VEIL_ALERT_SMTP_URL", SMTP_URL_FORMS))?
                    .timeout(Some(DELIVERY_TIMEOUT))
                    .build();
                let from: Mailbox = target.from.parse().map_err(|_| {
                    setting_error("VEIL_ALERT_EMAIL_FROM", "is not a valid email address")
                })?;
                let to = target
                    .to
                    .iter()
                    .map(|address| address.trim().parse::<Mailbox>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        setting_error(
                            "VEIL_ALERT_EMAIL_TO",
                            "must be comma-separated email addresses",
                        )
                    })?;
                if to.is_empty() {
                    return Err(setting_error(
                        "VEIL_ALERT_EMAIL_TO",
                        "is required with an SMTP URL",
                    ));
                }
                Some((transport, from, to))
            }
        };
        Ok(Notifier { webhook, email })
    }

    /// Whether any channel is configured.
    pub fn is_configured(&self) -> bool {
        self.webhook.is_some() || self.email.is_some()
    }

    /// Sends every undelivered alert on every channel. Returns `(delivered, failed)` attempts; never fails.
    pub async fn deliver_pending(&self, store: &Store) -> (u64, u64) {
        let mut delivered = 0;
        let mut failed = 0;
        for channel in [Channel::Webhook, Channel::Email] {
            let configured = match channel {
                Channel::Webhook => self.webhook.is_some(),
                Channel::Email => self.email.is_some(),
            };
            if !configured {
                continue;
            }
            let pending = match store
                .undelivered_alerts(channel, now_ms() - DELIVERY_HORIZON_MS, MAX_ATTEMPTS, BATCH)
                .await
            {
                Ok(pending) => pending,
                Err(error) => {
                    tracing::error!(%error, "cannot read undelivered alerts");
                    continue;
                }
            };
            for alert in pending {
                let outcome = match channel {
                    Channel::Webhook => self.send_webhook(&alert).await,
                    Channel::Email => self.send_email(&alert).await,
                };
                let ok = outcome.is_ok();
                if let Err(why) = &outcome {
                    tracing::warn!(alert = %alert.id, ?channel, error = %why, "alert delivery failed; will retry");
                }
                if let Err(error) = store
                    .record_alert_delivery(&alert.id, channel, ok, now_ms())
                    .await
                {
                    tracing::error!(%error, alert = %alert.id, "cannot record an alert delivery");
                }
                if ok {
                    delivered += 1;
                } else {
                    failed += 1;
                    // The receiver is probably down: try the rest next pass.
                    break;
                }
            }
        }
        (delivered, failed)
    }

    async fn send_webhook(&self, alert: &AlertRow) -> Result<(), String> {
        let Some((target, agent)) = &self.webhook else {
            return Ok(());
        };
        let body =
            serde_json::to_vec(&AlertView::from_row(alert)).map_err(|error| error.to_string())?;
        let timestamp = now_ms() / 1000;
        let header = signature_header(target.secret.expose().as_bytes(), timestamp, &body);
        let agent = agent.clone();
        let url = target.url.clone();
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
    }

    async fn send_email(&self, alert: &AlertRow) -> Result<(), String> {
        let Some((transport, from, to)) = &self.email else {
            return Ok(());
        };
        let mut builder = Message::builder().from(from.clone()).subject(format!(
            "[Veil security] {} alert: {}",
            alert.severity, alert.rule
        ));
        for recipient in to {
            builder = builder.to(recipient.clone());
        }
        let message = builder
            .header(ContentType::TEXT_PLAIN)
            .body(email_body(alert))
            .map_err(|error| error.to_string())?;
        tokio::time::timeout(DELIVERY_TIMEOUT * 2, transport.send(message))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}

/// The plain-text email for an alert.
fn email_body(alert: &AlertRow) -> String {
    let view = AlertView::from_row(alert);
    let actions: Vec<String> = view
        .actions_taken
        .as_array()
        .into_iter()
        .flatten()
        .map(|action| {
            format!(
                "  - {}: {}",
                action["action"].as_str().unwrap_or("?"),
                action["result"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!(
        "Veil raised a {severity} security alert.\n\n\
         Rule:      {rule}\n\
         Summary:   {summary}\n\
         User:      {user}\n\
         Address:   {address}\n\
         Triggered: {triggered} (audit entry {seq})\n\
         Alert id:  {id}\n\n\
         Actions taken:\n{actions}\n\n\
         Review and acknowledge it under GET /api/v1/security/alerts.\n",
        severity = view.severity,
        rule = view.rule,
        summary = view.summary,
        user = view.username.as_deref().unwrap_or("-"),
        address = view.source_ip.as_deref().unwrap_or("-"),
        triggered = view.triggered_at,
        seq = view.trigger_seq,
        id = view.id,
        actions = actions.join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector_and_secrets_are_redacted() {
        // HMAC-SHA256("key", "1700000000.{}") computed independently (Python hmac module).
        assert_eq!(
            signature(b"key", 1_700_000_000, b"{}"),
            "9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert!(signature_header(b"key", 5, b"x").starts_with("t=5,v1="));
        assert_eq!(
            format!("{:?}", Secret::new("hunter2hunter2hunter2")),
            "Secret(<redacted>)"
        );
    }
}
