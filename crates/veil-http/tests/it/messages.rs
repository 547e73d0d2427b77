//! Message templates and sending: a real SMTP server (Python's aiosmtpd) receives the e-mail with the customer's
//! real address, and a local HTTP listener the SMS with the real number, while the API response, the audit trail
//! and the stored message hold only masked values; sending without consent is refused; a salesperson who does not
//! see the customer gets 404.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::messages::{Messenger, MessengerConfig, SmsWebhookTarget};
use veil_app::monitor::notify::{signature, Secret};
use veil_app::users::Role;

use super::{
    add_user, assert_no_plaintext, assert_problem, audit_of, captured_logs, full_customer, Client,
    EMAIL, PHONE,
};

const SMS_SECRET: &str = "sms-webhook-secret-0123456789";

/// A real SMTP server writing each message to a directory; killed on drop.
pub(crate) struct SmtpSink {
    child: std::process::Child,
    pub(crate) port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the alert tests' aiosmtpd sink (`crates/veil-app/tests/support/smtp_sink.py`); `None` (skip) without
/// aiosmtpd, except under CI.
pub(crate) fn start_smtp_sink(out_dir: &Path) -> Option<SmtpSink> {
    let importable = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !importable {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but python3 cannot import aiosmtpd (pip install aiosmtpd)");
        }
        eprintln!("python3 with aiosmtpd not available: skipping the SMTP delivery test");
        return None;
    }
    let port = veil_app::testing::free_port();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../veil-app/tests/support/smtp_sink.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(out_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the SMTP sink");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready", "SMTP sink did not start");
    Some(SmtpSink { child, port })
}

/// The first message the sink wrote, waiting up to 20 s.
fn received(dir: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|extension| extension == "eml"));
        if let Some(path) = found {
            return std::fs::read_to_string(path).unwrap();
        }
        assert!(Instant::now() < deadline, "no e-mail arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The decoded text body of a single-part message (base64 or quoted-printable, as lettre chose).
pub(crate) fn decoded_body(message: &str) -> String {
    let normalized = message.replace("\r\n", "\n");
    let (head, body) = normalized.split_once("\n\n").unwrap();
    let head = head.to_lowercase();
    if head.contains("content-transfer-encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap(),
        )
        .unwrap()
    } else if head.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index] == b'=' && index + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                index += 3;
            } else {
                out.push(bytes[index]);
                index += 1;
            }
        }
        String::from_utf8(out).unwrap()
    } else {
        body.to_owned()
    }
}

async fn create_customer(client: &Client, token: &str) -> String {
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(full_customer()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    created.body["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn record_consent(
    client: &Client,
    token: &str,
    id: &str,
    purpose: &str,
    field: &str,
) -> String {
    let reply = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/consents"),
            Some(token),
            Some(json!({
                "purposes": [purpose], "fields": [field], "recipient": "internal",
                "evidence_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn create_template(client: &Client, token: &str, body: Value) -> String {
    let reply = client
        .send(
            Method::POST,
            "/api/v1/message-templates",
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

both_backends!(templates_check_their_placeholders, |harness| {
    add_user(&harness, "mona", Role::Manager, Some("east")).await;
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let mona = client.login("mona").await;
    let sally = client.login("sally").await;
    let template = json!({
        "name": "points_zh", "channel": "sms", "language": "zh", "purpose": "care",
        "body": "{{customer.surname}}{{customer.title}}您好，您有{{points}}积分。"
    });
    let refused = client
        .send(
            Method::POST,
            "/api/v1/message-templates",
            Some(&sally),
            Some(template.clone()),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    let id = create_template(&client, &mona, template.clone()).await;
    let again = client
        .send(
            Method::POST,
            "/api/v1/message-templates",
            Some(&mona),
            Some(template),
        )
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "conflict");
    for (body, code, named) in [
        (
            "您好{{customer.nickname}}",
            "unknown_placeholder",
            "{{customer.nickname}}",
        ),
        (
            "您的号码{{customer.mobile}}",
            "personal_data_placeholder",
            "{{customer.mobile}}",
        ),
        (
            "{{ customer.name }}您好",
            "personal_data_placeholder",
            "{{customer.name}}",
        ),
        ("您好{{points", "unclosed_placeholder", "{{"),
        (&*format!("请回电{PHONE}"), "personal_data", "personal data"),
    ] {
        let reply = client
            .send(
                Method::POST,
                "/api/v1/message-templates",
                Some(&mona),
                Some(
                    json!({"name": "bad", "channel": "sms", "language": "zh", "purpose": "care",
                            "body": body}),
                ),
            )
            .await;
        assert_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let error = &reply.body["errors"][0];
        assert_eq!(error["code"], code, "{}", reply.raw);
        assert!(
            error["message"].as_str().unwrap().contains(named),
            "{}",
            reply.raw
        );
        assert!(!reply.raw.contains(PHONE));
    }
    // An e-mail template needs a subject; an SMS one has none.
    let no_subject = client
        .send(
            Method::POST,
            "/api/v1/message-templates",
            Some(&mona),
            Some(
                json!({"name": "mail", "channel": "email", "language": "en", "purpose": "care",
                        "body": "Dear {{customer.title}} {{customer.surname}}"}),
            ),
        )
        .await;
    assert_eq!(
        no_subject.body["errors"][0]["code"], "required",
        "{}",
        no_subject.raw
    );
    // Patch, read, list, delete.
    let patched = client
        .send(
            Method::PATCH,
            &format!("/api/v1/message-templates/{id}"),
            Some(&mona),
            Some(json!({"body": "{{customer.surname}}{{customer.title}}，{{holiday}}快乐！——{{agent.name}}"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.raw);
    assert_eq!(
        patched.body["placeholders"],
        json!([
            "customer.surname",
            "customer.title",
            "holiday",
            "agent.name"
        ])
    );
    let bad_patch = client
        .send(
            Method::PATCH,
            &format!("/api/v1/message-templates/{id}"),
            Some(&mona),
            Some(json!({"body": "{{customer.email}}"})),
        )
        .await;
    assert_eq!(
        bad_patch.body["errors"][0]["code"],
        "personal_data_placeholder"
    );
    let listed = client
        .send(Method::GET, "/api/v1/message-templates", Some(&sally), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let by_name = client
        .send(
            Method::GET,
            "/api/v1/message-templates/points_zh",
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(by_name.body["id"], id.as_str());
    let deleted = client
        .send(
            Method::DELETE,
            &format!("/api/v1/message-templates/{id}"),
            Some(&mona),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
});

both_backends!(
    email_reaches_the_customer_while_staff_see_it_masked,
    |harness| {
        let mailbox = tempfile::tempdir().unwrap();
        let Some(sink) = start_smtp_sink(mailbox.path()) else {
            return;
        };
        harness.veil.set_messenger(Some(
            Messenger::new(MessengerConfig {
                smtp_url: Some(Secret::new(format!("smtp://127.0.0.1:{}", sink.port))),
                email_from: Some("care@veil.example".to_owned()),
                sms_webhook: None,
            })
            .unwrap(),
        ));
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sam", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let mona = client.login("mona").await;
        let sally = client.login("sally").await;
        let sam = client.login("sam").await;
        let id = create_customer(&client, &sally).await;
        create_template(
        &client,
        &mona,
        json!({"name": "birthday_zh", "channel": "email", "language": "zh", "purpose": "care",
               "subject": "{{customer.surname}}{{customer.title}}，生日快乐",
               "body": "尊敬的{{customer.surname}}{{customer.title}}：祝您生日快乐！您当前积分{{points}}分。——{{agent.name}}"}),
    )
    .await;
        create_template(
        &client,
        &mona,
        json!({"name": "promo_zh", "channel": "email", "language": "zh", "purpose": "marketing",
               "subject": "新品上市", "body": "{{customer.surname}}{{customer.title}}，新品八折。"}),
    )
    .await;
        let send = |template: &'static str| {
            let uri = format!("/api/v1/customers/{id}/messages");
            let (client, sally) = (&client, &sally);
            async move {
                client
                    .send(
                        Method::POST,
                        &uri,
                        Some(sally),
                        Some(json!({"template": template, "channel": "email"})),
                    )
                    .await
            }
        };

        // No consent: refused with a precise code, nothing sent.
        let refused = send("birthday_zh").await;
        assert_problem(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            refused.body["errors"][0]["code"], "consent_required",
            "{}",
            refused.raw
        );
        record_consent(&client, &sally, &id, "customer_service", "email").await;
        // A care consent does not cover marketing.
        let marketing = send("promo_zh").await;
        assert_eq!(
            marketing.body["errors"][0]["code"], "consent_required",
            "{}",
            marketing.raw
        );
        // The wrong channel for the template.
        let wrong = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{id}/messages"),
                Some(&sally),
                Some(json!({"template": "birthday_zh", "channel": "sms"})),
            )
            .await;
        assert_eq!(
            wrong.body["errors"][0]["code"], "channel_mismatch",
            "{}",
            wrong.raw
        );
        // A salesperson who does not see the customer: 404, as for any other request about it.
        let other = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{id}/messages"),
                Some(&sam),
                Some(json!({"template": "birthday_zh"})),
            )
            .await;
        assert_problem(&other, StatusCode::NOT_FOUND, "not_found");
        assert!(
            std::fs::read_dir(mailbox.path()).unwrap().next().is_none(),
            "nothing sent yet"
        );

        let sent = send("birthday_zh").await;
        assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
        assert_eq!(sent.body["status"], "sent", "{}", sent.raw);
        assert_eq!(sent.body["recipient"], "x***@example.com");
        assert_eq!(sent.body["purpose"], "care");
        assert_no_plaintext(&sent.raw, "the send response");

        // The customer gets the real address and the rendered text.
        let message = received(mailbox.path());
        assert!(message.contains(EMAIL), "{message}");
        let body = decoded_body(&message);
        assert!(
            body.contains("尊敬的司马先生：祝您生日快乐！您当前积分0分。——sally"),
            "{body}"
        );

        // The audit entry: a system use with the purpose and the masked recipient, never the address.
        let entries = audit_of(&harness, "message.send").await;
        let ok: Vec<_> = entries
            .iter()
            .filter(|entry| entry.event.outcome == "ok")
            .collect();
        assert_eq!(ok.len(), 1, "{entries:?}");
        let entry = &ok[0].event;
        assert_eq!(entry.purpose.as_deref(), Some("care"));
        assert_eq!(entry.customer_ids, std::slice::from_ref(&id));
        assert!(entry.fields.contains(&"email".to_owned()));
        assert!(
            entry.detail.contains("x***@example.com"),
            "{}",
            entry.detail
        );
        assert!(
            entries.iter().any(|entry| entry.event.outcome == "denied"),
            "refusals audited"
        );
        let audit_text = format!("{entries:?}");
        assert_no_plaintext(&audit_text, "the audit trail");
        let reveals = audit_of(&harness, "customer.reveal").await;
        assert!(reveals.is_empty(), "sending is not a reveal");

        // The stored record: masked recipient, status sent.
        let stored = harness
            .veil
            .store()
            .customer_messages(&id, 10)
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].recipient_masked, "x***@example.com");
        assert_eq!(stored[0].status, "sent");
        assert_no_plaintext(&format!("{stored:?}"), "the message record");
        if let Some(path) = harness.sqlite_path() {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
            assert!(
                !bytes
                    .windows(EMAIL.len())
                    .any(|window| window == EMAIL.as_bytes()),
                "the address is in the database file"
            );
        }
        let listed = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{id}/messages"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(
            listed.body[0]["recipient"], "x***@example.com",
            "{}",
            listed.raw
        );
        let hidden = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{id}/messages"),
                Some(&sam),
                None,
            )
            .await;
        assert_problem(&hidden, StatusCode::NOT_FOUND, "not_found");
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert_no_plaintext(&logs, "the logs");
    }
);

/// A messenger that sends SMS only, to the local listener on `port` (see [`sms_listener`]), signed with
/// [`SMS_SECRET`].
pub(crate) fn sms_messenger(port: u16) -> Messenger {
    Messenger::new(MessengerConfig {
        smtp_url: None,
        email_from: None,
        sms_webhook: Some(SmsWebhookTarget {
            url: format!("http://127.0.0.1:{port}/sms"),
            secret: Secret::new(SMS_SECRET),
        }),
    })
    .unwrap()
}

pub(crate) type Captured = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A local HTTP listener standing in for an SMS provider's adapter: records each request.
pub(crate) async fn sms_listener() -> (u16, Captured) {
    let captured: Captured = Arc::new(Mutex::new(Vec::new()));
    let sink = captured.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, captured)
}

both_backends!(sms_reaches_the_webhook_with_the_real_number, |harness| {
    let (port, captured) = sms_listener().await;
    harness.veil.set_messenger(Some(sms_messenger(port)));
    add_user(&harness, "ada", Role::Admin, None).await;
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let ada = client.login("ada").await;
    let sally = client.login("sally").await;
    let id = create_customer(&client, &sally).await;
    create_template(
        &client,
        &ada,
        json!({"name": "festival_sms", "channel": "sms", "language": "zh", "purpose": "marketing",
               "body": "{{customer.surname}}{{customer.title}}您好，{{holiday}}快乐！回复TD退订"}),
    )
    .await;
    let uri = format!("/api/v1/customers/{id}/messages");
    let body = json!({"template": "festival_sms", "holiday": "mid_autumn"});
    let refused = client
        .send(Method::POST, &uri, Some(&sally), Some(body.clone()))
        .await;
    assert_eq!(
        refused.body["errors"][0]["code"], "consent_required",
        "{}",
        refused.raw
    );
    let consent = record_consent(&client, &sally, &id, "marketing", "phone").await;

    let sent = client
        .send(Method::POST, &uri, Some(&sally), Some(body.clone()))
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
    assert_eq!(sent.body["status"], "sent", "{}", sent.raw);
    assert_eq!(sent.body["recipient"], "139****4321");
    assert_no_plaintext(&sent.raw, "the send response");
    let requests = captured.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (headers, raw) = &requests[0];
    let payload: Value = serde_json::from_slice(raw).unwrap();
    assert_eq!(payload["to"], PHONE);
    assert_eq!(payload["text"], "司马先生您好，中秋节快乐！回复TD退订");
    assert_eq!(payload["id"], sent.body["id"]);
    let header = headers["x-veil-signature"].to_str().unwrap();
    let (stamp, mac) = header.split_once(",v1=").unwrap();
    let stamp: i64 = stamp.trim_start_matches("t=").parse().unwrap();
    assert_eq!(mac, signature(SMS_SECRET.as_bytes(), stamp, raw));
    let entries = audit_of(&harness, "message.send").await;
    assert!(entries
        .iter()
        .any(|entry| entry.event.outcome == "ok"
            && entry.event.purpose.as_deref() == Some("marketing")));
    assert_no_plaintext(&format!("{entries:?}"), "the audit trail");

    // Withdrawn consent: refused again.
    let withdrawn = client
        .send(
            Method::POST,
            &format!("/api/v1/consents/{consent}/withdraw"),
            Some(&sally),
            Some(json!({})),
        )
        .await;
    assert!(withdrawn.status.is_success(), "{}", withdrawn.raw);
    let after = client
        .send(Method::POST, &uri, Some(&sally), Some(body.clone()))
        .await;
    assert_eq!(
        after.body["errors"][0]["code"], "consent_required",
        "{}",
        after.raw
    );
    assert_eq!(captured.lock().unwrap().len(), 1);

    // A gateway that does not answer: the message is recorded as failed, its error without the number.
    record_consent(&client, &sally, &id, "marketing", "phone").await;
    let closed = veil_app::testing::free_port();
    let messenger = Arc::new(sms_messenger(closed));
    harness.veil.share_messenger(Some(messenger));
    let failing = Client::new(&harness).await;
    let sally = failing.login("sally").await;
    let failed = failing
        .send(Method::POST, &uri, Some(&sally), Some(body))
        .await;
    assert_eq!(failed.status, StatusCode::CREATED, "{}", failed.raw);
    assert_eq!(failed.body["status"], "failed", "{}", failed.raw);
    assert!(failed.body["error"].is_string());
    assert_no_plaintext(&failed.raw, "the failure");
    let stored = harness
        .veil
        .store()
        .customer_messages(&id, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].status, "failed");
    assert_no_plaintext(&format!("{stored:?}"), "the message records");
});
