//! Customer feedback over HTTP: closing a ticket creates one CSAT survey whose public link records one answer; an
//! NPS survey over a saved segment; the summary's CSAT and NPS on known data and its visibility per role; complaint
//! terms segmented into words without masked fragments; no typed phone number in responses, logs or storage.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use veil_app::both_backends;
use veil_app::testing::Harness;
use veil_app::users::Role;

use crate::{add_user, captured_logs, Client, Reply};

/// A number typed into a comment: only these tests use it, so finding it anywhere is a leak.
const TYPED_PHONE: &str = "13712340987";
const CUSTOMER_NAME: &str = "欧阳娜娜";

async fn create_customer(client: &Client, token: &str, phone: &str, tags: &[&str]) -> String {
    let reply = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(json!({"name": CUSTOMER_NAME, "phone": phone, "tags": tags})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// The token of a survey link (`/survey/{token}`).
fn token_of(link: &Value) -> String {
    link.as_str()
        .unwrap()
        .strip_prefix("/survey/")
        .unwrap()
        .to_owned()
}

/// Opens the public survey page and returns it with the form's nonce (empty when there is no form).
pub(crate) async fn open_survey(client: &Client, token: &str) -> (Reply, String) {
    let reply = client
        .send(Method::GET, &format!("/survey/{token}"), None, None)
        .await;
    let nonce = reply
        .raw
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    (reply, nonce)
}

/// Posts the survey form as a browser would: the nonce in the cookie and in the hidden field.
pub(crate) async fn post_survey(
    client: &Client,
    token: &str,
    nonce: &str,
    score: &str,
    comment: &str,
) -> Reply {
    let body =
        serde_urlencoded::to_string([("csrf", nonce), ("score", score), ("comment", comment)])
            .unwrap();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/survey/{token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("veil_survey={nonce}"))
        .body(Body::from(body))
        .unwrap();
    client.send_request(request).await
}

/// Answers a survey through its public page.
async fn answer(client: &Client, token: &str, score: i64, comment: &str) {
    let (page, nonce) = open_survey(client, token).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
    let reply = post_survey(client, token, &nonce, &score.to_string(), comment).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
}

/// A browser session's cookie header, signed in as `username`.
async fn web_session(client: &Client, username: &str) -> String {
    let login = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login?session=cookie")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"username": username, "password": crate::PASSWORD}).to_string(),
        ))
        .unwrap();
    let response = client.router.clone().oneshot(login).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

async fn summary(client: &Client, token: &str, query: &str) -> Reply {
    client
        .send(
            Method::GET,
            &format!("/api/v1/feedback/summary{query}"),
            Some(token),
            None,
        )
        .await
}

async fn record(client: &Client, token: &str, body: Value) -> Reply {
    let reply = client
        .send(Method::POST, "/api/v1/feedback", Some(token), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply
}

/// Everything stored, as text (SQLite file and WAL, or the feedback tables and the audit log on PostgreSQL).
pub(crate) async fn stored_text(harness: &Harness) -> String {
    stored_text_in(harness, &["feedback", "survey", "ticket", "audit_log"]).await
}

/// Everything stored, as text: the SQLite file and its WAL, or on PostgreSQL the rows of `tables`.
pub(crate) async fn stored_text_in(harness: &Harness, tables: &[&str]) -> String {
    match harness.sqlite_path() {
        Some(path) => {
            harness.veil.store().checkpoint().await.unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
            String::from_utf8_lossy(&bytes).into_owned()
        }
        None => {
            let veil_store::Pool::Postgres(pool) = harness.veil.store().pool() else {
                unreachable!()
            };
            let mut dump = String::new();
            for table in tables {
                let text: Option<String> = veil_store::sqlx::query_scalar(&format!(
                    "SELECT string_agg(t::text, '|') FROM {table} t"
                ))
                .fetch_one(pool)
                .await
                .unwrap_or(None);
                dump.push_str(&text.unwrap_or_default());
            }
            dump
        }
    }
}

both_backends!(
    closing_a_ticket_creates_one_csat_survey_answered_once,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let dora = client.login("dora").await;
        let customer = create_customer(&client, &sally, "13800001111", &[]).await;
        let opened = client
            .send(
                Method::POST,
                "/api/v1/tickets",
                Some(&sally),
                Some(
                    json!({"customer_id": customer, "channel": "wechat", "category": "complaint",
                    "subject": "空调不制冷"}),
                ),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.raw);
        let ticket = opened.body["id"].as_str().unwrap().to_owned();
        let uri = format!("/api/v1/tickets/{ticket}");
        let mut responses = Vec::new();

        // Resolving creates the survey and hands back its link, once.
        let resolved = client
            .send(
                Method::PATCH,
                &uri,
                Some(&sally),
                Some(json!({"status": "resolved"})),
            )
            .await;
        assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.raw);
        let survey = resolved.body["csat_survey"].clone();
        assert_eq!(survey["kind"], "csat", "{}", resolved.raw);
        assert_eq!(survey["customer_id"], customer.as_str());
        let token = token_of(&survey["link"]);
        assert_eq!(token.len(), 43);
        // Closing, reopening and closing again create no second survey.
        for status in ["closed", "reopened", "closed"] {
            let moved = client
                .send(
                    Method::PATCH,
                    &uri,
                    Some(&sally),
                    Some(json!({"status": status})),
                )
                .await;
            assert_eq!(moved.status, StatusCode::OK, "{}", moved.raw);
            assert!(moved.body.get("csat_survey").is_none(), "{}", moved.raw);
        }
        assert_eq!(
            harness
                .veil
                .store()
                .ticket_survey_count(&ticket)
                .await
                .unwrap(),
            1
        );

        // The public page needs no sign-in and shows no personal data.
        let (page, nonce) = open_survey(&client, &token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
        assert!(!nonce.is_empty());
        assert!(page.raw.contains("name=\"score\" value=\"5\""));
        assert!(
            !page.raw.contains("name=\"score\" value=\"6\""),
            "CSAT is 1–5"
        );
        for secret in [
            CUSTOMER_NAME,
            "欧阳",
            "13800001111",
            "138****1111",
            customer.as_str(),
        ] {
            assert!(!page.raw.contains(secret), "{secret}");
        }
        // In Chinese for a Chinese browser.
        let chinese = client
            .send_request(
                Request::builder()
                    .uri(format!("/survey/{token}"))
                    .header(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(chinese.status, StatusCode::OK);
        assert!(
            chinese.raw.contains("您对我们处理您的请求是否满意"),
            "{}",
            chinese.raw
        );
        // A form without the nonce cookie is refused and records nothing.
        let forged = Request::builder()
            .method(Method::POST)
            .uri(format!("/survey/{token}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={nonce}&score=5")))
            .unwrap();
        assert_eq!(
            client.send_request(forged).await.status,
            StatusCode::FORBIDDEN
        );
        // Out of range: shown again.
        let refused = post_survey(&client, &token, &nonce, "9", "").await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.raw
        );

        let comment = format!("服务态度差，等待时间太长，回电{TYPED_PHONE}");
        let answered = post_survey(&client, &token, &nonce, "2", &comment).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.raw);
        responses.push(answered.raw.clone());
        // The same token again: refused, nothing recorded twice.
        let again = post_survey(&client, &token, &nonce, "5", "").await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.raw);
        let (closed, _) = open_survey(&client, &token).await;
        assert_eq!(closed.status, StatusCode::CONFLICT);
        // A wrong token is 404, on the page and on the form.
        let wrong = "A".repeat(43);
        assert_eq!(
            open_survey(&client, &wrong).await.0.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            post_survey(&client, &wrong, &nonce, "5", "").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            open_survey(&client, "short").await.0.status,
            StatusCode::NOT_FOUND
        );

        let figures = summary(&client, &sally, "?by=channel").await;
        assert_eq!(figures.status, StatusCode::OK, "{}", figures.raw);
        responses.push(figures.raw.clone());
        assert_eq!(
            figures.body["overall"]["csat"]["count"], 1,
            "{}",
            figures.raw
        );
        assert_eq!(figures.body["overall"]["csat"]["average"], 2.0);
        assert_eq!(
            figures.body["overall"]["csat"]["distribution"],
            json!([0, 1, 0, 0, 0])
        );
        assert_eq!(
            figures.body["groups"][0]["key"], "wechat",
            "{}",
            figures.raw
        );
        let by_agent = summary(&client, &sally, "?by=agent").await;
        assert_eq!(
            by_agent.body["groups"][0]["label"], "sally",
            "{}",
            by_agent.raw
        );
        let terms: Vec<&str> = figures.body["complaint_terms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|term| term["term"].as_str().unwrap())
            .collect();
        assert!(
            terms.contains(&"服务态度") && terms.contains(&"等待时间"),
            "{terms:?}"
        );
        // The subject of the complaint ticket counts too.
        assert!(terms.contains(&"空调"), "{terms:?}");

        // Audited: the answer by no one (the anonymous customer), the survey's creation by sally.
        let audit = client
            .send(
                Method::GET,
                "/api/v1/audit?action=survey.answer",
                Some(&dora),
                None,
            )
            .await;
        assert_eq!(audit.status, StatusCode::OK, "{}", audit.raw);
        let entries = audit.body["items"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{}", audit.raw);
        assert!(entries[0]["actor_id"].is_null());
        assert_eq!(entries[0]["customer_ids"], json!([customer]));
        let created = client
            .send(
                Method::GET,
                "/api/v1/audit?action=survey.create",
                Some(&dora),
                None,
            )
            .await;
        assert_eq!(
            created.body["items"].as_array().unwrap().len(),
            1,
            "{}",
            created.raw
        );
        responses.push(audit.raw);

        // The typed number is nowhere: responses, logs, storage (which keeps the masked text).
        for raw in &responses {
            assert!(!raw.contains(TYPED_PHONE), "{raw}");
        }
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert!(!logs.contains(TYPED_PHONE));
        let stored = stored_text(&harness).await;
        assert!(
            stored.contains("137****0987"),
            "the masked comment is stored"
        );
        assert!(!stored.contains(TYPED_PHONE));
        assert!(!stored.contains(&token), "only the token's hash is stored");
    }
);

both_backends!(nps_over_a_segment_and_the_summary_per_role, |harness| {
    add_user(&harness, "ada", Role::Admin, None).await;
    add_user(&harness, "mona", Role::Manager, Some("east")).await;
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "will", Role::Sales, Some("west")).await;
    add_user(&harness, "sue", Role::Service, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let ada = client.login("ada").await;
    let mona = client.login("mona").await;
    let sally = client.login("sally").await;
    let will = client.login("will").await;
    let sue = client.login("sue").await;
    let dora = client.login("dora").await;
    let mut vip = Vec::new();
    for index in 0..3 {
        vip.push(create_customer(&client, &sally, &format!("1390000{index:04}"), &["vip"]).await);
    }
    let plain = create_customer(&client, &sally, "13900009999", &[]).await;
    let westerner = create_customer(&client, &will, "13600001234", &["vip"]).await;

    // mona's segment of VIPs: her team's three, not will's.
    let segment = client
        .send(
            Method::POST,
            "/api/v1/segments",
            Some(&mona),
            Some(json!({"name": "VIP", "filter": {"tag": "vip"}})),
        )
        .await;
    assert_eq!(segment.status, StatusCode::CREATED, "{}", segment.raw);
    let segment = segment.body["id"].as_str().unwrap().to_owned();
    let batch = client
        .send(
            Method::POST,
            "/api/v1/surveys/nps",
            Some(&mona),
            Some(json!({"segment": segment})),
        )
        .await;
    assert_eq!(batch.status, StatusCode::CREATED, "{}", batch.raw);
    let surveys = batch.body["surveys"].as_array().unwrap().clone();
    let mut asked: Vec<String> = surveys
        .iter()
        .map(|survey| survey["customer_id"].as_str().unwrap().to_owned())
        .collect();
    asked.sort();
    let mut expected = vip.clone();
    expected.sort();
    assert_eq!(asked, expected);
    assert!(!batch.raw.contains(&westerner) && !batch.raw.contains(&plain));
    // Salespeople do not send surveys; another manager's segment is not mine; neither both nor none.
    let refused = client
        .send(
            Method::POST,
            "/api/v1/surveys/nps",
            Some(&sally),
            Some(json!({"customer_ids": [vip[0]]})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.raw);
    let unseen = client
        .send(
            Method::POST,
            "/api/v1/surveys/nps",
            Some(&mona),
            Some(json!({"customer_ids": [westerner]})),
        )
        .await;
    assert_eq!(unseen.status, StatusCode::NOT_FOUND, "{}", unseen.raw);
    let neither = client
        .send(
            Method::POST,
            "/api/v1/surveys/nps",
            Some(&mona),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        neither.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        neither.raw
    );
    assert_eq!(
        neither.body["errors"][0]["field"], "customer_ids",
        "{}",
        neither.raw
    );

    // NPS answers through the links: 10, 9, 3 → (2 − 1) / 3 = 33.3.
    for (survey, score) in surveys.iter().zip([10, 9, 3]) {
        let token = token_of(&survey["link"]);
        let (page, _) = open_survey(&client, &token).await;
        assert!(
            page.raw.contains("name=\"score\" value=\"0\"") && page.raw.contains("value=\"10\"")
        );
        answer(&client, &token, score, "").await;
    }
    // Feedback staff heard by phone: CSAT 4 and 2 for sally's customers; NPS 0 and CSAT 5 for will's.
    record(
        &client,
        &sally,
        json!({"customer_id": plain, "kind": "csat", "score": 4, "channel": "phone"}),
    )
    .await;
    record(
        &client,
        &sally,
        json!({"customer_id": vip[0], "kind": "csat", "score": 2}),
    )
    .await;
    record(
        &client,
        &will,
        json!({"customer_id": westerner, "kind": "nps", "score": 0}),
    )
    .await;
    record(
        &client,
        &will,
        json!({"customer_id": westerner, "kind": "csat", "score": 5}),
    )
    .await;
    // Out of range and someone else's customer.
    let bad = client
        .send(
            Method::POST,
            "/api/v1/feedback",
            Some(&sally),
            Some(json!({"customer_id": plain, "kind": "csat", "score": 6})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.raw);
    assert_eq!(bad.body["errors"][0]["field"], "score");
    let foreign = client
        .send(
            Method::POST,
            "/api/v1/feedback",
            Some(&sally),
            Some(json!({"customer_id": westerner, "kind": "csat", "score": 3})),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.raw);

    let overall = |reply: &Reply| reply.body["overall"].clone();
    let for_mona = summary(&client, &mona, "").await;
    assert_eq!(for_mona.status, StatusCode::OK, "{}", for_mona.raw);
    let figures = overall(&for_mona);
    assert_eq!(figures["nps"]["count"], 3, "{}", for_mona.raw);
    assert_eq!(
        (
            figures["nps"]["promoters"].clone(),
            figures["nps"]["passives"].clone(),
            figures["nps"]["detractors"].clone()
        ),
        (json!(2), json!(0), json!(1))
    );
    assert_eq!(figures["nps"]["score"], 33.3);
    assert_eq!(figures["csat"]["count"], 2);
    assert_eq!(figures["csat"]["average"], 3.0);
    assert_eq!(figures["csat"]["distribution"], json!([0, 1, 0, 1, 0]));
    // The salesperson counts her own customers only; will his; the admin everyone.
    let for_sally = overall(&summary(&client, &sally, "").await);
    assert_eq!(for_sally, figures);
    let for_will = overall(&summary(&client, &will, "").await);
    assert_eq!(for_will["nps"]["count"], 1);
    assert_eq!(for_will["nps"]["score"], -100.0);
    assert_eq!(for_will["csat"]["average"], 5.0);
    let for_ada = overall(&summary(&client, &ada, "").await);
    assert_eq!(for_ada["nps"]["count"], 4);
    assert_eq!(for_ada["nps"]["score"], 0.0);
    assert_eq!(for_ada["csat"]["count"], 3);
    assert_eq!(for_ada["csat"]["average"], 3.67);
    // Grouped by month: this month holds everything; the trend lists the window's months.
    let monthly = summary(&client, &ada, "?by=month").await;
    let trend = monthly.body["trend"].as_array().unwrap();
    assert!(trend.len() >= 12, "{}", monthly.raw);
    assert_eq!(trend.last().unwrap()["nps"]["count"], 4, "{}", monthly.raw);
    let by_channel = summary(&client, &mona, "?by=channel").await;
    let groups = by_channel.body["groups"].as_array().unwrap();
    assert!(
        groups
            .iter()
            .any(|group| group["key"] == "phone" && group["csat"]["count"] == 1),
        "{}",
        by_channel.raw
    );
    assert!(
        groups
            .iter()
            .any(|group| group["key"].is_null() && group["nps"]["count"] == 3),
        "{}",
        by_channel.raw
    );
    // Bad parameters are precise; other roles are refused.
    let bad = summary(&client, &ada, "?by=weather").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.raw);
    assert_eq!(bad.body["errors"][0]["field"], "by");
    let backwards = summary(&client, &ada, "?from=2026-03-01&to=2026-02-01").await;
    assert_eq!(
        backwards.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        backwards.raw
    );
    for token in [&sue, &dora] {
        assert_eq!(
            summary(&client, token, "").await.status,
            StatusCode::FORBIDDEN
        );
    }
    // An empty past window has no figures.
    let empty = summary(&client, &ada, "?from=2020-01-01&to=2020-02-01").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.raw);
    assert!(empty.body["overall"]["nps"]["score"].is_null());
    assert_eq!(empty.body["trend"].as_array().unwrap().len(), 1);
});

both_backends!(
    complaint_terms_are_words_without_masked_fragments,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let customer = create_customer(&client, &sally, "13800002222", &[]).await;
        let comments = [
            (
                1,
                format!("服务态度很差！等待时间两个小时，电话{TYPED_PHONE}一直占线"),
            ),
            (2, "等待时间太长，服务态度也不好，13812345678".to_owned()),
            (5, "服务态度很好，非常满意".to_owned()),
        ];
        let mut responses = Vec::new();
        for (score, comment) in &comments {
            let reply = record(
                &client,
                &sally,
                json!({"customer_id": customer, "kind": "csat", "score": score, "comment": comment}),
            )
            .await;
            assert!(reply.body["comment_pii"].is_array());
            responses.push(reply.raw);
        }
        assert!(responses[0].contains("137****0987"), "{}", responses[0]);
        let opened = client
            .send(
                Method::POST,
                "/api/v1/tickets",
                Some(&sally),
                Some(
                    json!({"customer_id": customer, "channel": "phone", "category": "complaint",
                    "subject": "投诉服务态度", "description": "客服服务态度恶劣"}),
                ),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.raw);
        let figures = summary(&client, &sally, "?top=10").await;
        assert_eq!(figures.status, StatusCode::OK, "{}", figures.raw);
        responses.push(figures.raw.clone());
        let terms = figures.body["complaint_terms"].as_array().unwrap();
        assert!(terms.len() <= 10);
        let count = |term: &str| {
            terms
                .iter()
                .find(|found| found["term"] == term)
                .map(|found| found["count"].as_u64().unwrap())
        };
        // Two low-score comments and the complaint ticket's subject and description; the happy comment is left out.
        assert_eq!(count("服务态度"), Some(4), "{}", figures.raw);
        assert_eq!(count("等待时间"), Some(2), "{}", figures.raw);
        assert_eq!(terms[0]["term"], "服务态度");
        assert_eq!(count("满意"), None, "high scores are not complaints");
        for term in terms {
            let text = term["term"].as_str().unwrap();
            assert!(text.chars().count() >= 2, "{text}");
            assert!(
                !text.contains('*') && !text.chars().any(|c| c.is_ascii_digit()),
                "{text}"
            );
        }
        assert_eq!(figures.body["complaint_texts"], 3);
        for raw in &responses {
            assert!(
                !raw.contains(TYPED_PHONE) && !raw.contains("13812345678"),
                "{raw}"
            );
        }
        let stored = stored_text(&harness).await;
        assert!(!stored.contains(TYPED_PHONE) && !stored.contains("13812345678"));

        // The web page draws the same analysis, in Chinese too.
        let session = web_session(&client, "sally").await;
        for language in ["en", "zh-CN"] {
            let page = client
                .send_request(
                    Request::builder()
                        .uri("/feedback")
                        .header(header::COOKIE, &session)
                        .header(header::ACCEPT_LANGUAGE, language)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
            assert!(page.raw.contains("<svg class=\"chart\""), "{}", page.raw);
            assert!(page.raw.contains("服务态度") && page.raw.contains("href=\"/feedback\""));
            assert!(!page.raw.contains(TYPED_PHONE));
            let heading = if language == "en" {
                "Most frequent complaint terms"
            } else {
                "最常见的投诉词语"
            };
            assert!(page.raw.contains(heading), "{}", page.raw);
        }
    }
);
