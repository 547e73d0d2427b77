//! Interactions, the customer timeline and tickets over HTTP: SLA breach and escalation (time driven by calling
//! the breach job with an explicit `now`), round-robin assignment, the service link an assignment creates,
//! masking of free text (responses, logs and storage), and ticket visibility between salespeople.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::testing::Harness;
use veil_app::users::Role;

use crate::{add_user, captured_logs, Client};

/// Numbers typed into free text by staff: only these tests use them, so finding them anywhere is a leak.
const TYPED_PHONE: &str = "13712340987";
const TYPED_ID: &str = "110101198402276151";
const MINUTE_MS: i64 = 60_000;

async fn user_id(harness: &Harness, username: &str) -> String {
    harness
        .veil
        .actor_by_username(username)
        .await
        .unwrap()
        .user_id
        .to_string()
}

async fn create_customer(client: &Client, token: &str, phone: &str) -> String {
    let reply = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(json!({"name": "欧阳娜娜", "phone": phone})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn open_ticket(client: &Client, token: &str, body: Value) -> Value {
    let reply = client
        .send(Method::POST, "/api/v1/tickets", Some(token), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body
}

fn millis(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

both_backends!(
    ticket_breaches_its_sla_and_escalates_to_the_manager,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sue", Role::Service, Some("east")).await;
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let mona = client.login("mona").await;
        let customer = create_customer(&client, &sally, "13800001111").await;
        let sue_id = user_id(&harness, "sue").await;
        let mona_id = user_id(&harness, "mona").await;
        let ticket = open_ticket(
        &client,
        &sally,
        json!({"customer_id": customer, "channel": "wechat", "category": "complaint", "priority": "urgent",
               "subject": "空调不制冷", "assignee": sue_id}),
    )
    .await;
        let answered = open_ticket(
        &client,
        &sally,
        json!({"customer_id": customer, "channel": "phone", "category": "inquiry", "priority": "urgent",
               "subject": "发票", "assignee": sue_id}),
    )
    .await;
        assert_eq!(ticket["status"], "open");
        assert_eq!(ticket["assigned_by"], "explicit");
        assert_eq!(ticket["sla"]["first_response_breached"], false);
        let created = millis(&ticket["created_at"]);
        // The default urgent targets: 15 minutes to the first response, 4 hours to resolution.
        assert_eq!(
            millis(&ticket["sla"]["first_response_due"]) - created,
            15 * MINUTE_MS
        );
        assert_eq!(
            millis(&ticket["sla"]["resolution_due"]) - created,
            240 * MINUTE_MS
        );
        // Sue answers the second ticket: its first-response timer stops.
        let sue = client.login("sue").await;
        let comment = client
            .send(
                Method::POST,
                &format!(
                    "/api/v1/tickets/{}/comments",
                    answered["id"].as_str().unwrap()
                ),
                Some(&sue),
                Some(json!({"body": "已联系客户"})),
            )
            .await;
        assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.raw);

        // Nothing is due yet.
        assert_eq!(
            harness
                .veil
                .escalate_ticket_breaches(created + MINUTE_MS)
                .await
                .unwrap(),
            0
        );
        // 16 minutes later the unanswered ticket has missed its first response; the answered one has not.
        let later = created + 16 * MINUTE_MS;
        assert_eq!(
            harness.veil.escalate_ticket_breaches(later).await.unwrap(),
            1
        );
        // Once per ticket per timer, however often the job runs.
        assert_eq!(
            harness.veil.escalate_ticket_breaches(later).await.unwrap(),
            0
        );

        let id = ticket["id"].as_str().unwrap();
        let seen = client
            .send(
                Method::GET,
                &format!("/api/v1/tickets/{id}"),
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(seen.status, StatusCode::OK, "{}", seen.raw);
        assert_eq!(seen.body["breached"], true, "{}", seen.raw);
        assert_eq!(seen.body["sla"]["first_response_breached"], true);
        assert_eq!(seen.body["sla"]["resolution_breached"], false);
        let escalations = seen.body["escalations"].as_array().unwrap();
        assert_eq!(escalations.len(), 1, "{}", seen.raw);
        assert_eq!(escalations[0]["timer"], "first_response");
        assert_eq!(escalations[0]["to"], "manager");
        assert_eq!(escalations[0]["escalated_to"], mona_id.as_str());
        // The manager finds it among the breached tickets; the answered one is not there.
        let breached = client
            .send(
                Method::GET,
                "/api/v1/tickets?breached=true",
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(breached.status, StatusCode::OK, "{}", breached.raw);
        let ids: Vec<&str> = breached.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![id]);

        // Resolution is missed four hours on: a second escalation, again only once.
        let much_later = created + 241 * MINUTE_MS;
        assert_eq!(
            harness
                .veil
                .escalate_ticket_breaches(much_later)
                .await
                .unwrap(),
            2,
            "the resolution timers of both tickets"
        );
        assert_eq!(
            harness
                .veil
                .escalate_ticket_breaches(much_later)
                .await
                .unwrap(),
            0
        );

        // Each escalation raised an alert and is in the audit trail.
        let ada = client.login("ada").await;
        let alerts = client
            .send(Method::GET, "/api/v1/security/alerts", Some(&ada), None)
            .await;
        assert_eq!(alerts.status, StatusCode::OK, "{}", alerts.raw);
        let ticket_alerts = alerts.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|alert| alert["rule"] == "ticket_sla_breach")
            .count();
        assert_eq!(ticket_alerts, 3, "{}", alerts.raw);
        let dora = client.login("dora").await;
        let audit = client
            .send(
                Method::GET,
                "/api/v1/audit?action=ticket.escalate",
                Some(&dora),
                None,
            )
            .await;
        assert_eq!(audit.status, StatusCode::OK, "{}", audit.raw);
        assert_eq!(
            audit.body["items"].as_array().unwrap().len(),
            3,
            "{}",
            audit.raw
        );

        // Resolving and closing stop the timers; the history records each step.
        for status in ["in_progress", "resolved", "closed"] {
            let reply = client
                .send(
                    Method::PATCH,
                    &format!("/api/v1/tickets/{id}"),
                    Some(&sue),
                    Some(json!({"status": status})),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{status}: {}", reply.raw);
        }
        let refused = client
            .send(
                Method::PATCH,
                &format!("/api/v1/tickets/{id}"),
                Some(&sue),
                Some(json!({"status": "open"})),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.raw
        );
        let done = client
            .send(
                Method::GET,
                &format!("/api/v1/tickets/{id}"),
                Some(&sue),
                None,
            )
            .await;
        let history: Vec<&str> = done.body["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|change| change["to"].as_str().unwrap())
            .collect();
        assert_eq!(history, ["open", "in_progress", "resolved", "closed"]);
        // A closed ticket is no longer a candidate.
        assert_eq!(
            harness
                .veil
                .escalate_ticket_breaches(created + 10_000 * MINUTE_MS)
                .await
                .unwrap(),
            0
        );

        // With no manager above the assignee's team, the escalation goes to the admins.
        add_user(&harness, "lone", Role::Service, Some("night")).await;
        let lone_id = user_id(&harness, "lone").await;
        let orphan = open_ticket(
        &client,
        &sally,
        json!({"customer_id": customer, "channel": "web", "category": "billing", "priority": "high",
               "subject": "退款", "assignee": lone_id}),
    )
    .await;
        let orphan_created = millis(&orphan["created_at"]);
        assert_eq!(
            harness
                .veil
                .escalate_ticket_breaches(orphan_created + 61 * MINUTE_MS)
                .await
                .unwrap(),
            1
        );
        let seen = client
            .send(
                Method::GET,
                &format!("/api/v1/tickets/{}", orphan["id"].as_str().unwrap()),
                Some(&ada),
                None,
            )
            .await;
        assert_eq!(seen.body["escalations"][0]["to"], "admins", "{}", seen.raw);
        assert!(seen.body["escalations"][0]["escalated_to"].is_null());
    }
);

both_backends!(round_robin_alternates_between_service_users, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sue", Role::Service, Some("care")).await;
    add_user(&harness, "sid", Role::Service, Some("care")).await;
    // Disabled and other-team service users are never picked.
    add_user(&harness, "sam", Role::Service, Some("other")).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let customer = create_customer(&client, &sally, "13800002222").await;
    let mut assignees = Vec::new();
    for index in 0..4 {
        let ticket = open_ticket(
            &client,
            &sally,
            json!({"customer_id": customer, "channel": "email", "category": "inquiry",
                   "subject": format!("问题 {index}"), "assign_by": "round_robin", "team": "care"}),
        )
        .await;
        assert_eq!(ticket["assigned_by"], "round_robin");
        assignees.push(ticket["assignee"].as_str().unwrap().to_owned());
    }
    let sue = user_id(&harness, "sue").await;
    let sid = user_id(&harness, "sid").await;
    assert_ne!(assignees[0], assignees[1]);
    assert_eq!(assignees[0], assignees[2]);
    assert_eq!(assignees[1], assignees[3]);
    let mut pair = vec![assignees[0].clone(), assignees[1].clone()];
    pair.sort();
    let mut expected = vec![sue.clone(), sid.clone()];
    expected.sort();
    assert_eq!(pair, expected);
    // The cursor lives in the database: another handle (a second server, or a restart) continues the turn.
    let other_server = harness.reopen().await;
    let sally_actor = other_server.actor_by_username("sally").await.unwrap();
    let next = other_server
        .create_ticket(
            &sally_actor,
            &serde_json::from_value(json!({
                "customer_id": customer, "channel": "email", "category": "inquiry", "subject": "下一位",
                "assign_by": "round_robin", "team": "care"
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(next.assignee.as_deref(), Some(assignees[0].as_str()));
    // A team without service users is a clear 422.
    let reply = client
        .send(
            Method::POST,
            "/api/v1/tickets",
            Some(&sally),
            Some(
                json!({"customer_id": customer, "channel": "email", "category": "inquiry",
                        "subject": "x", "assign_by": "round_robin", "team": "nobody"}),
            ),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.raw
    );
    assert_eq!(
        reply.body["errors"][0]["code"], "no_service_users",
        "{}",
        reply.raw
    );
    // By skill: the least-loaded service user with the category as a skill.
    add_user(&harness, "ada", Role::Admin, None).await;
    let ada = client.login("ada").await;
    for (name, skills) in [
        ("sue", json!(["billing"])),
        ("sid", json!(["billing", "complaint"])),
    ] {
        let id = user_id(&harness, name).await;
        let reply = client
            .send(
                Method::PUT,
                &format!("/api/v1/users/{id}/skills"),
                Some(&ada),
                Some(json!({"skills": skills})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
    }
    let complaint = open_ticket(
        &client,
        &sally,
        json!({"customer_id": customer, "channel": "store", "category": "complaint", "subject": "投诉",
               "assign_by": "skill"}),
    )
    .await;
    assert_eq!(complaint["assignee"], sid.as_str());
    assert_eq!(complaint["assigned_by"], "skill");
});

both_backends!(
    assigned_service_user_gains_access_to_the_customer,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sue", Role::Service, Some("east")).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let sue = client.login("sue").await;
        let customer = create_customer(&client, &sally, "13800003333").await;
        let ticket = open_ticket(
        &client,
        &sally,
        json!({"customer_id": customer, "channel": "phone", "category": "after_sales", "subject": "保修"}),
    )
    .await;
        // Assigned by the default rule to the owner; the service user sees neither customer nor ticket.
        assert_eq!(ticket["assigned_by"], "owner");
        assert_eq!(
            ticket["assignee"],
            user_id(&harness, "sally").await.as_str()
        );
        let id = ticket["id"].as_str().unwrap();
        let before = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{customer}"),
                Some(&sue),
                None,
            )
            .await;
        assert_eq!(before.status, StatusCode::NOT_FOUND, "{}", before.raw);
        let hidden = client
            .send(
                Method::GET,
                &format!("/api/v1/tickets/{id}"),
                Some(&sue),
                None,
            )
            .await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND);
        // Service staff may not reassign.
        let sue_id = user_id(&harness, "sue").await;
        let assign = client
            .send(
                Method::POST,
                &format!("/api/v1/tickets/{id}/assign"),
                Some(&sally),
                Some(json!({"assignee": sue_id})),
            )
            .await;
        assert_eq!(assign.status, StatusCode::OK, "{}", assign.raw);
        assert_eq!(assign.body["assignee"], sue_id.as_str());
        // Now the link exists: sue reads the customer (masked), its ticket and its timeline.
        let after = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{customer}"),
                Some(&sue),
                None,
            )
            .await;
        assert_eq!(after.status, StatusCode::OK, "{}", after.raw);
        assert_eq!(after.body["phone"], "138****3333");
        let visible = client
            .send(
                Method::GET,
                &format!("/api/v1/tickets/{id}"),
                Some(&sue),
                None,
            )
            .await;
        assert_eq!(visible.status, StatusCode::OK, "{}", visible.raw);
        let mine = client
            .send(Method::GET, "/api/v1/tickets", Some(&sue), None)
            .await;
        assert_eq!(
            mine.body["items"].as_array().unwrap().len(),
            1,
            "{}",
            mine.raw
        );
        let timeline = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{customer}/timeline"),
                Some(&sue),
                None,
            )
            .await;
        assert_eq!(timeline.status, StatusCode::OK, "{}", timeline.raw);
        let reassign = client
            .send(
                Method::POST,
                &format!("/api/v1/tickets/{id}/assign"),
                Some(&sue),
                Some(json!({"assign_by": "owner"})),
            )
            .await;
        assert_eq!(reassign.status, StatusCode::FORBIDDEN, "{}", reassign.raw);
    }
);

both_backends!(
    pii_typed_into_tickets_and_interactions_is_masked,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let customer = create_customer(&client, &sally, "13800004444").await;
        let typed = format!("客户电话{TYPED_PHONE}，身份证{TYPED_ID}，请回电");
        let interaction = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{customer}/interactions"),
                Some(&sally),
                Some(
                    json!({"kind": "viewing", "duration_minutes": 45, "outcome": "意向强烈",
                        "occurred_at": "2026-03-01T10:00:00+08:00", "note": typed}),
                ),
            )
            .await;
        assert_eq!(
            interaction.status,
            StatusCode::CREATED,
            "{}",
            interaction.raw
        );
        assert_eq!(interaction.body["kind"], "viewing");
        assert!(
            interaction.body["note"]
                .as_str()
                .unwrap()
                .contains("137****0987"),
            "{}",
            interaction.raw
        );
        let ticket = open_ticket(
            &client,
            &sally,
            json!({"customer_id": customer, "channel": "phone", "category": "complaint",
               "subject": format!("回电 {TYPED_PHONE}"), "description": typed}),
        )
        .await;
        assert!(
            ticket["description"]
                .as_str()
                .unwrap()
                .contains("137****0987"),
            "{ticket}"
        );
        assert!(!ticket["description_pii"].as_array().unwrap().is_empty());
        let id = ticket["id"].as_str().unwrap();
        let comment = client
            .send(
                Method::POST,
                &format!("/api/v1/tickets/{id}/comments"),
                Some(&sally),
                Some(json!({"body": typed})),
            )
            .await;
        assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.raw);
        let note = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{customer}/notes"),
                Some(&sally),
                Some(json!({"body": "跟进"})),
            )
            .await;
        assert_eq!(note.status, StatusCode::CREATED);
        let mut responses = vec![interaction.raw, ticket.to_string(), comment.raw];
        for uri in [
            format!("/api/v1/customers/{customer}/interactions"),
            format!("/api/v1/customers/{customer}/timeline"),
            format!("/api/v1/tickets/{id}"),
            "/api/v1/tickets".to_owned(),
        ] {
            let reply = client.send(Method::GET, &uri, Some(&sally), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.raw);
            responses.push(reply.raw);
        }
        // The timeline merges the three kinds, newest first (the viewing happened in March, before the rest).
        let timeline: Value = serde_json::from_str(&responses[4]).unwrap();
        let kinds: Vec<&str> = timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["note", "ticket", "interaction"], "{timeline}");
        let page = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{customer}/timeline?limit=2"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
        let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
        let rest = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{customer}/timeline?limit=2&cursor={cursor}"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(rest.body["items"][0]["kind"], "interaction", "{}", rest.raw);
        assert!(rest.body["next_cursor"].is_null());
        for (index, raw) in responses.iter().enumerate() {
            assert!(
                !raw.contains(TYPED_PHONE) && !raw.contains(TYPED_ID),
                "response {index}: {raw}"
            );
        }
        // Not in the logs, not at rest.
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert!(!logs.contains(TYPED_PHONE) && !logs.contains(TYPED_ID));
        let stored = match harness.sqlite_path() {
            Some(path) => {
                harness.veil.store().checkpoint().await.unwrap();
                let mut bytes = std::fs::read(&path).unwrap();
                bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
                String::from_utf8_lossy(&bytes).into_owned()
            }
            None => {
                let veil_app::Backend::Postgres = harness.veil.store().backend() else {
                    unreachable!()
                };
                let veil_store::Pool::Postgres(pool) = harness.veil.store().pool() else {
                    unreachable!()
                };
                let mut dump = String::new();
                for table in ["interaction", "ticket", "ticket_comment", "audit_log"] {
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
        };
        assert!(stored.contains("137****0987"), "the masked text is stored");
        assert!(!stored.contains(TYPED_PHONE) && !stored.contains(TYPED_ID));
    }
);

both_backends!(
    salesperson_cannot_see_another_salespersons_tickets,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "will", Role::Sales, Some("west")).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let will = client.login("will").await;
        let customer = create_customer(&client, &sally, "13800005555").await;
        let ticket = open_ticket(
        &client,
        &sally,
        json!({"customer_id": customer, "channel": "web", "category": "inquiry", "subject": "报价"}),
    )
    .await;
        let id = ticket["id"].as_str().unwrap();
        for (method, uri, body) in [
            (Method::GET, format!("/api/v1/tickets/{id}"), None),
            (
                Method::PATCH,
                format!("/api/v1/tickets/{id}"),
                Some(json!({"status": "closed"})),
            ),
            (
                Method::POST,
                format!("/api/v1/tickets/{id}/comments"),
                Some(json!({"body": "hi"})),
            ),
            (
                Method::POST,
                format!("/api/v1/tickets/{id}/assign"),
                Some(json!({"assign_by": "owner"})),
            ),
            (
                Method::GET,
                format!("/api/v1/customers/{customer}/timeline"),
                None,
            ),
            (
                Method::GET,
                format!("/api/v1/customers/{customer}/interactions"),
                None,
            ),
        ] {
            let reply = client.send(method.clone(), &uri, Some(&will), body).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{method} {uri}: {}",
                reply.raw
            );
        }
        let opened_elsewhere = client
        .send(
            Method::POST,
            "/api/v1/tickets",
            Some(&will),
            Some(json!({"customer_id": customer, "channel": "web", "category": "inquiry", "subject": "x"})),
        )
        .await;
        assert_eq!(opened_elsewhere.status, StatusCode::NOT_FOUND);
        let listed = client
            .send(
                Method::GET,
                &format!("/api/v1/tickets?customer={customer}"),
                Some(&will),
                None,
            )
            .await;
        assert_eq!(listed.status, StatusCode::OK);
        assert!(
            listed.body["items"].as_array().unwrap().is_empty(),
            "{}",
            listed.raw
        );
        assert!(!listed.raw.contains(id));
    }
);
