//! Sending survey links by e-mail and SMS, and reminding those who have not answered: a real SMTP server (Python's
//! aiosmtpd) receives an e-mail whose link, opened on the public page, records the answer; the link shown at
//! creation stops working once the survey is sent, while every sent link works until the survey is answered; an
//! NPS campaign send reaches the unanswered customers only and reports each customer's outcome; consent, answered
//! surveys and templates are checked precisely; responses, audit entries, stored messages and logs hold neither the
//! address nor the number, and neither the database nor the logs hold a sent link's token.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::messages::{Messenger, MessengerConfig};
use veil_app::monitor::notify::Secret;
use veil_app::testing::Harness;
use veil_app::users::Role;

use super::feedback::{open_survey, post_survey};
use super::messages::{
    create_template, decoded_body, record_consent, sms_listener, sms_messenger, start_smtp_sink,
};
use super::{
    add_user, assert_no_plaintext, assert_problem, audit_of, captured_logs, full_customer, Client,
    Reply, EMAIL,
};

/// The server's public address in these tests (with a path: links must keep it).
const PUBLIC_URL: &str = "https://crm.example.com/veil";

/// The `n` first e-mails the sink wrote (`1.eml`, `2.eml`, …), waiting up to 20 s for them.
fn received_emails(dir: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let paths: Vec<_> = (1..=n)
            .map(|index| dir.join(format!("{index}.eml")))
            .collect();
        if paths.iter().all(|path| path.exists()) {
            return paths
                .iter()
                .map(|path| std::fs::read_to_string(path).unwrap())
                .collect();
        }
        assert!(Instant::now() < deadline, "fewer than {n} e-mails arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn email_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
        .count()
}

/// The token of the survey link in a message's text: what follows `PUBLIC_URL/survey/` (43 base64url
/// characters).
fn link_token(text: &str) -> String {
    let prefix = format!("{PUBLIC_URL}/survey/");
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no survey link in {text}"))
        + prefix.len();
    let token: String = text[start..]
        .chars()
        .take_while(|character| character.is_ascii_alphanumeric() || "-_".contains(*character))
        .collect();
    assert_eq!(token.len(), 43, "{text}");
    token
}

/// Answers through the public page as the customer's browser would.
async fn answer(client: &Client, token: &str, score: i64) -> Reply {
    let (page, nonce) = open_survey(client, token).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
    post_survey(client, token, &nonce, &score.to_string(), "").await
}

/// Everything these tests write, as text (see `feedback::stored_text_in`).
async fn stored_text(harness: &Harness) -> String {
    crate::feedback::stored_text_in(
        harness,
        &[
            "survey",
            "survey_link",
            "customer_message",
            "feedback",
            "audit_log",
        ],
    )
    .await
}

fn error_code(reply: &Reply) -> &str {
    reply.body["errors"][0]["code"].as_str().unwrap_or_default()
}

both_backends!(
    a_csat_link_sent_by_email_is_answered_through_that_link,
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
            .unwrap()
            .with_public_url(&format!("{PUBLIC_URL}/"))
            .unwrap(),
        ));
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sam", Role::Sales, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let mona = client.login("mona").await;
        let sally = client.login("sally").await;
        let sam = client.login("sam").await;
        let dora = client.login("dora").await;
        let mut responses: Vec<String> = Vec::new();

        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(full_customer()),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
        let customer = created.body["id"].as_str().unwrap().to_owned();
        let opened = client
            .send(
                Method::POST,
                "/api/v1/tickets",
                Some(&sally),
                Some(
                    json!({"customer_id": customer, "channel": "email", "category": "inquiry",
                            "subject": "发票"}),
                ),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.raw);
        let ticket = opened.body["id"].as_str().unwrap().to_owned();
        let resolved = client
            .send(
                Method::PATCH,
                &format!("/api/v1/tickets/{ticket}"),
                Some(&sally),
                Some(json!({"status": "resolved"})),
            )
            .await;
        assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.raw);
        let survey = resolved.body["csat_survey"]["survey_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let creation_token = resolved.body["csat_survey"]["link"]
            .as_str()
            .unwrap()
            .strip_prefix("/survey/")
            .unwrap()
            .to_owned();

        create_template(
            &client,
            &mona,
            json!({"name": "csat_mail", "channel": "email", "language": "zh", "purpose": "care",
                   "subject": "{{customer.surname}}{{customer.title}}，请评价本次服务",
                   "body": "尊敬的{{customer.surname}}{{customer.title}}：请点击 {{survey.link}} 为本次服务打分\
                            （{{survey.expires}}前有效）。——{{agent.name}}"}),
        )
        .await;
        create_template(
            &client,
            &mona,
            json!({"name": "thanks_mail", "channel": "email", "language": "zh", "purpose": "care",
                   "subject": "感谢", "body": "{{customer.surname}}{{customer.title}}，感谢您的支持。"}),
        )
        .await;
        let uri = format!("/api/v1/surveys/{survey}/send");
        let send = |token: &str, body: Value| {
            let (client, uri, token) = (&client, uri.clone(), token.to_owned());
            async move {
                client
                    .send(Method::POST, &uri, Some(&token), Some(body))
                    .await
            }
        };

        // A template with {{survey.link}} but no survey: a precise 422 naming the placeholder.
        let no_survey = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{customer}/messages"),
                Some(&sally),
                Some(json!({"template": "csat_mail"})),
            )
            .await;
        assert_problem(
            &no_survey,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            error_code(&no_survey),
            "survey_required",
            "{}",
            no_survey.raw
        );
        assert!(
            no_survey.raw.contains("{{survey.link}}"),
            "{}",
            no_survey.raw
        );
        // A survey send whose template carries no link.
        let no_link = send(&sally, json!({"template": "thanks_mail"})).await;
        assert_eq!(
            error_code(&no_link),
            "survey_link_missing",
            "{}",
            no_link.raw
        );
        // No consent yet: refused, nothing sent.
        let refused = send(&sally, json!({"template": "csat_mail", "channel": "email"})).await;
        assert_eq!(error_code(&refused), "consent_required", "{}", refused.raw);
        // Who may send: whoever sees the customer.
        let other = send(&sam, json!({"template": "csat_mail"})).await;
        assert_problem(&other, StatusCode::NOT_FOUND, "not_found");
        let dpo = send(&dora, json!({"template": "csat_mail"})).await;
        assert_problem(&dpo, StatusCode::FORBIDDEN, "forbidden");
        let unknown = client
            .send(
                Method::POST,
                &format!("/api/v1/surveys/{}/send", uuid::Uuid::now_v7()),
                Some(&sally),
                Some(json!({"template": "csat_mail"})),
            )
            .await;
        assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(email_count(mailbox.path()), 0, "nothing sent yet");
        // Before any send, the link shown at creation works.
        assert_eq!(
            open_survey(&client, &creation_token).await.0.status,
            StatusCode::OK
        );

        record_consent(&client, &sally, &customer, "customer_service", "email").await;
        let sent = send(&sally, json!({"template": "csat_mail"})).await;
        assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
        assert_eq!(sent.body["message"]["status"], "sent", "{}", sent.raw);
        assert_eq!(sent.body["message"]["recipient"], "x***@example.com");
        assert_eq!(sent.body["sends"], 1);
        assert_eq!(sent.body["kind"], "csat");
        assert!(
            !sent.raw.contains("/survey/"),
            "the link is not returned: {}",
            sent.raw
        );
        responses.push(sent.raw.clone());

        // The customer's e-mail: to the real address, with a working link to the public address.
        let first = received_emails(mailbox.path(), 1).remove(0);
        assert!(first.contains(EMAIL), "{first}");
        let body = decoded_body(&first);
        assert!(body.starts_with("尊敬的司马先生：请点击 "), "{body}");
        assert!(body.ends_with("——sally"), "{body}");
        let first_token = link_token(&body);
        assert_ne!(first_token, creation_token);
        // Once sent, the creation link no longer works; the sent one does.
        assert_eq!(
            open_survey(&client, &creation_token).await.0.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            open_survey(&client, &first_token).await.0.status,
            StatusCode::OK
        );

        // The reminder: a second e-mail with a link of its own; the first link keeps working.
        let reminder = send(&mona, json!({"template": "csat_mail"})).await;
        assert_eq!(reminder.status, StatusCode::CREATED, "{}", reminder.raw);
        assert_eq!(reminder.body["sends"], 2);
        responses.push(reminder.raw.clone());
        let second = received_emails(mailbox.path(), 2).remove(1);
        let second_token = link_token(&decoded_body(&second));
        assert_ne!(second_token, first_token);
        assert_eq!(
            open_survey(&client, &first_token).await.0.status,
            StatusCode::OK
        );

        // The customer answers through the reminder's link: the answer is recorded once.
        let answered = answer(&client, &second_token, 4).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.raw);
        let (closed, _) = open_survey(&client, &first_token).await;
        assert_eq!(closed.status, StatusCode::CONFLICT, "{}", closed.raw);
        let figures = client
            .send(
                Method::GET,
                "/api/v1/feedback/summary?by=agent",
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(
            figures.body["overall"]["csat"]["count"], 1,
            "{}",
            figures.raw
        );
        assert_eq!(figures.body["overall"]["csat"]["average"], 4.0);
        let answers = audit_of(&harness, "survey.answer").await;
        assert_eq!(answers.len(), 1);
        assert!(
            answers[0]
                .event
                .detail
                .contains(reminder.body["message"]["id"].as_str().unwrap()),
            "the answer names the message whose link was used: {}",
            answers[0].event.detail
        );

        // An answered survey is not sent again.
        let again = send(&sally, json!({"template": "csat_mail"})).await;
        assert_problem(
            &again,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(error_code(&again), "survey_answered", "{}", again.raw);
        assert_eq!(email_count(mailbox.path()), 2);

        // Audit: each send a system use naming the survey and the masked address; refusals recorded.
        let sends = audit_of(&harness, "message.send").await;
        let ok: Vec<_> = sends
            .iter()
            .filter(|entry| entry.event.outcome == "ok")
            .collect();
        assert_eq!(ok.len(), 2, "{sends:?}");
        for entry in &ok {
            assert_eq!(entry.event.purpose.as_deref(), Some("care"));
            assert!(
                entry.event.detail.contains(&survey),
                "{}",
                entry.event.detail
            );
            assert!(entry.event.detail.contains("x***@example.com"));
            assert_eq!(entry.event.customer_ids, std::slice::from_ref(&customer));
        }
        assert!(sends.iter().any(|entry| entry.event.outcome == "denied"));
        let audit_text = format!("{sends:?}{answers:?}");
        assert_no_plaintext(&audit_text, "the audit trail");
        let api_audit = client
            .send(
                Method::GET,
                "/api/v1/audit?action=message.send",
                Some(&dora),
                None,
            )
            .await;
        responses.push(api_audit.raw);

        // Stored messages: masked recipient only.
        let stored = harness
            .veil
            .store()
            .customer_messages(&customer, 10)
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert!(stored
            .iter()
            .all(|message| message.recipient_masked == "x***@example.com"
                && message.status == "sent"));
        assert_no_plaintext(&format!("{stored:?}"), "the message records");

        // No address in any response; no address nor token in the logs or the database.
        for raw in &responses {
            assert_no_plaintext(raw, "a response");
        }
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert_no_plaintext(&logs, "the logs");
        let everything = stored_text(&harness).await;
        assert!(
            !everything.contains(EMAIL),
            "the address is stored in clear"
        );
        for token in [&first_token, &second_token, &creation_token] {
            assert!(!logs.contains(token.as_str()), "a survey token was logged");
            assert!(
                !everything.contains(token.as_str()),
                "a survey token was stored"
            );
        }
    }
);

both_backends!(
    an_nps_campaign_reaches_unanswered_customers_by_sms,
    |harness| {
        let (port, captured) = sms_listener().await;
        harness.veil.set_messenger(Some(
            sms_messenger(port).with_public_url(PUBLIC_URL).unwrap(),
        ));
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "will", Role::Sales, Some("west")).await;
        let client = Client::new(&harness).await;
        let ada = client.login("ada").await;
        let mona = client.login("mona").await;
        let sally = client.login("sally").await;
        let will = client.login("will").await;
        let phones = ["13911110001", "13911110002", "13911110003"];
        let mut customers = Vec::new();
        for (index, phone) in phones.iter().enumerate() {
            let reply = client
                .send(
                    Method::POST,
                    "/api/v1/customers",
                    Some(&sally),
                    Some(
                        json!({"name": format!("欧阳{}", ["娜娜", "修", "锋"][index]),
                                "phone": phone, "gender": "female"}),
                    ),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
            customers.push(reply.body["id"].as_str().unwrap().to_owned());
        }
        // One customer without a mobile number, and one of another team.
        let no_phone = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(json!({"name": "张三", "email": "zhang.san@example.com"})),
            )
            .await;
        customers.push(no_phone.body["id"].as_str().unwrap().to_owned());
        let western = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&will),
                Some(json!({"name": "李四", "phone": "13922220009"})),
            )
            .await;
        let western = western.body["id"].as_str().unwrap().to_owned();
        // Consents for SMS: the first two customers (care: customer_service or marketing); not the third.
        record_consent(&client, &sally, &customers[0], "customer_service", "phone").await;
        record_consent(&client, &sally, &customers[1], "marketing", "phone").await;
        record_consent(&client, &sally, &customers[3], "customer_service", "phone").await;

        let mut asked = customers.clone();
        asked.push(western.clone());
        let batch = client
            .send(
                Method::POST,
                "/api/v1/surveys/nps",
                Some(&ada),
                Some(json!({"customer_ids": asked})),
            )
            .await;
        assert_eq!(batch.status, StatusCode::CREATED, "{}", batch.raw);
        let campaign = batch.body["campaign_id"].as_str().unwrap().to_owned();
        create_template(
            &client,
            &mona,
            json!({"name": "nps_sms", "channel": "sms", "language": "zh", "purpose": "care",
                   "body": "{{customer.surname}}{{customer.title}}您好，您会向朋友推荐我们吗？请打分：{{survey.link}}"}),
        )
        .await;
        let uri = format!("/api/v1/surveys/campaigns/{campaign}/send");
        let body = json!({"template": "nps_sms", "channel": "sms"});

        // Campaigns are sent by admins and managers.
        let by_sales = client
            .send(Method::POST, &uri, Some(&sally), Some(body.clone()))
            .await;
        assert_problem(&by_sales, StatusCode::FORBIDDEN, "forbidden");
        // So are its surveys one by one: sally sees the customer but does not run campaigns.
        let one = batch.body["surveys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|link| link["customer_id"] == customers[0].as_str())
            .unwrap_or_else(|| panic!("a survey for the customer: {}", batch.raw))["survey_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let single_by_sales = client
            .send(
                Method::POST,
                &format!("/api/v1/surveys/{one}/send"),
                Some(&sally),
                Some(body.clone()),
            )
            .await;
        assert_problem(&single_by_sales, StatusCode::FORBIDDEN, "forbidden");
        let unknown = client
            .send(
                Method::POST,
                &format!("/api/v1/surveys/campaigns/{}/send", uuid::Uuid::now_v7()),
                Some(&mona),
                Some(body.clone()),
            )
            .await;
        assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");

        // mona's send: her team's four customers; will's is out of her scope (counted, not listed).
        let first = client
            .send(Method::POST, &uri, Some(&mona), Some(body.clone()))
            .await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.raw);
        let outcome_of = |reply: &Reply, customer: &str| -> (String, i64) {
            let found = reply.body["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|outcome| outcome["customer_id"] == customer)
                .unwrap_or_else(|| panic!("no outcome for {customer}: {}", reply.raw))
                .clone();
            (
                found["outcome"].as_str().unwrap().to_owned(),
                found["sends"].as_i64().unwrap(),
            )
        };
        assert_eq!(outcome_of(&first, &customers[0]), ("sent".to_owned(), 1));
        assert_eq!(outcome_of(&first, &customers[1]), ("sent".to_owned(), 1));
        assert_eq!(
            outcome_of(&first, &customers[2]),
            ("consent_required".to_owned(), 0)
        );
        assert_eq!(
            outcome_of(&first, &customers[3]),
            ("no_mobile".to_owned(), 0)
        );
        assert_eq!(first.body["outcomes"].as_array().unwrap().len(), 4);
        assert_eq!(first.body["out_of_scope"], 1);
        assert_eq!(
            first.body["counts"],
            json!({"sent": 2, "consent_required": 1, "no_mobile": 1})
        );
        assert!(!first.raw.contains(&western), "{}", first.raw);
        let requests = captured.lock().unwrap().clone();
        assert_eq!(requests.len(), 2);
        let payloads: Vec<Value> = requests
            .iter()
            .map(|(_, raw)| serde_json::from_slice(raw).unwrap())
            .collect();
        let text_to = |phone: &str| -> Vec<String> {
            payloads
                .iter()
                .filter(|payload| payload["to"] == phone)
                .map(|payload| payload["text"].as_str().unwrap().to_owned())
                .collect()
        };
        let to_first = text_to(phones[0]);
        assert_eq!(to_first.len(), 1);
        assert!(
            to_first[0].starts_with(
                "欧阳女士您好，您会向朋友推荐我们吗？请打分：https://crm.example.com/veil/survey/"
            ),
            "{}",
            to_first[0]
        );
        let second_first_link = link_token(&text_to(phones[1])[0]);

        // The first customer answers; the campaign's progress shows it.
        let answered = answer(&client, &link_token(&to_first[0]), 9).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.raw);
        let progress = client
            .send(
                Method::GET,
                &format!("/api/v1/surveys/campaigns/{campaign}"),
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(progress.status, StatusCode::OK, "{}", progress.raw);
        assert_eq!(
            progress.body["counts"],
            json!({"open": 3, "answered": 1, "expired": 0}),
            "{}",
            progress.raw
        );
        assert_eq!(progress.body["out_of_scope"], 1);
        let everyone = client
            .send(
                Method::GET,
                &format!("/api/v1/surveys/campaigns/{campaign}"),
                Some(&ada),
                None,
            )
            .await;
        assert_eq!(everyone.body["surveys"].as_array().unwrap().len(), 5);

        // Run again at once, the campaign reminds nobody: the links went out less than 24 hours ago.
        let too_soon = client
            .send(Method::POST, &uri, Some(&mona), Some(body.clone()))
            .await;
        assert_eq!(too_soon.status, StatusCode::OK, "{}", too_soon.raw);
        assert_eq!(
            outcome_of(&too_soon, &customers[1]),
            ("recently_sent".to_owned(), 1)
        );
        assert_eq!(captured.lock().unwrap().len(), 2, "no SMS");
        let out_of_range = client
            .send(
                Method::POST,
                &uri,
                Some(&mona),
                Some(json!({"template": "nps_sms", "remind_after_hours": 721})),
            )
            .await;
        assert_problem(
            &out_of_range,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            out_of_range.body["errors"][0]["field"],
            "remind_after_hours"
        );

        // A day later — the links' sends moved 25 hours back — the default run reminds: only those who have not
        // answered get a new SMS.
        harness
            .raw_sql(&format!(
                "UPDATE survey SET last_sent_at = last_sent_at - {} WHERE last_sent_at IS NOT NULL",
                25 * 3_600_000_i64
            ))
            .await
            .unwrap();
        let reminder = client
            .send(Method::POST, &uri, Some(&mona), Some(body.clone()))
            .await;
        assert_eq!(reminder.status, StatusCode::OK, "{}", reminder.raw);
        assert_eq!(
            outcome_of(&reminder, &customers[0]),
            ("answered".to_owned(), 1)
        );
        assert_eq!(outcome_of(&reminder, &customers[1]), ("sent".to_owned(), 2));
        assert_eq!(outcome_of(&reminder, &customers[2]).0, "consent_required");
        let requests = captured.lock().unwrap().clone();
        assert_eq!(requests.len(), 3, "one reminder SMS");
        let last: Value = serde_json::from_slice(&requests[2].1).unwrap();
        assert_eq!(last["to"], phones[1]);
        let reminder_link = link_token(last["text"].as_str().unwrap());
        assert_ne!(reminder_link, second_first_link);
        // The customer answers through the first SMS's link: it still works.
        let late = answer(&client, &second_first_link, 6).await;
        assert_eq!(late.status, StatusCode::OK, "{}", late.raw);
        let progress = client
            .send(
                Method::GET,
                &format!("/api/v1/surveys/campaigns/{campaign}"),
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(progress.body["counts"]["answered"], 2, "{}", progress.raw);

        // A campaign whose surveys are all answered is not sent.
        let small = client
            .send(
                Method::POST,
                "/api/v1/surveys/nps",
                Some(&mona),
                Some(json!({"customer_ids": [customers[0]]})),
            )
            .await;
        let small_campaign = small.body["campaign_id"].as_str().unwrap().to_owned();
        let small_token = small.body["surveys"][0]["link"]
            .as_str()
            .unwrap()
            .strip_prefix("/survey/")
            .unwrap()
            .to_owned();
        assert_eq!(
            answer(&client, &small_token, 10).await.status,
            StatusCode::OK
        );
        let closed = client
            .send(
                Method::POST,
                &format!("/api/v1/surveys/campaigns/{small_campaign}/send"),
                Some(&mona),
                Some(body.clone()),
            )
            .await;
        assert_problem(
            &closed,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(error_code(&closed), "campaign_closed", "{}", closed.raw);
        assert_eq!(captured.lock().unwrap().len(), 3);

        // Audit: one survey.send per campaign send (the one that found every link too recent included), naming
        // the customers messaged; no number anywhere.
        let campaign_sends = audit_of(&harness, "survey.send").await;
        assert_eq!(campaign_sends.len(), 3, "{campaign_sends:?}");
        assert!(
            campaign_sends[1].event.customer_ids.is_empty(),
            "the run that sent nothing names nobody: {campaign_sends:?}"
        );
        let entries = format!(
            "{campaign_sends:?}{:?}",
            audit_of(&harness, "message.send").await
        );
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        let everything = stored_text(&harness).await;
        for phone in phones {
            for (what, text) in [
                ("first send", &first.raw),
                ("reminder", &reminder.raw),
                ("progress", &progress.raw),
                ("audit", &entries),
                ("logs", &logs),
                ("storage", &everything),
            ] {
                assert!(!text.contains(phone), "{phone} in the {what}");
            }
        }
        for token in [&second_first_link, &reminder_link] {
            assert!(
                !everything.contains(token.as_str()),
                "a survey token was stored"
            );
            assert!(!logs.contains(token.as_str()), "a survey token was logged");
        }
    }
);
