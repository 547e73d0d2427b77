//! Leads, deals and follow-up tasks over HTTP: a lead is a masked, de-duplicated customer record converted once;
//! deals follow their customer's visibility, move through their industry's pipeline with a history and an
//! optimistic version (409 when stale, one winner of two concurrent moves); tasks are listed by assignee and due
//! time; and no typed personal data reaches a response, a log line or a database column.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::testing::Harness;
use veil_app::users::Role;

use crate::{add_user, assert_problem, captured_logs, Client};

/// A number typed into deal titles, reasons and task titles: only this file uses it, so finding it is a leak.
const TYPED_PHONE: &str = "13712345670";
const LEAD_NAME: &str = "欧阳修远";
const LEAD_PHONE: &str = "13598761234";

async fn create_customer(client: &Client, token: &str, phone: &str, industry: &str) -> String {
    let reply = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(json!({"name": "诸葛明", "phone": phone, "industry": industry})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn create_deal(client: &Client, token: &str, body: Value) -> Value {
    let reply = client
        .send(Method::POST, "/api/v1/deals", Some(token), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body
}

both_backends!(lead_is_a_masked_customer_record_converted_once, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let sam = client.login("sam").await;

    // Validation is the customer's: a malformed mobile is a precise 422.
    let invalid = client
        .send(
            Method::POST,
            "/api/v1/leads",
            Some(&sally),
            Some(json!({"name": LEAD_NAME, "phone": "1359876"})),
        )
        .await;
    assert_problem(
        &invalid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let created = client
        .send(
            Method::POST,
            "/api/v1/leads",
            Some(&sally),
            Some(json!({"name": LEAD_NAME, "phone": LEAD_PHONE, "source": "展会"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    assert_eq!(created.body["lifecycle"], "lead");
    let id = created.body["customer"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["customer"]["phone"], "135****1234");
    assert!(!created.raw.contains(LEAD_PHONE) && !created.raw.contains(LEAD_NAME));

    // De-duplication by blind index, as for customers: the same mobile again is a conflict.
    let again = client
        .send(
            Method::POST,
            "/api/v1/leads",
            Some(&sally),
            Some(json!({"name": "另一个", "phone": LEAD_PHONE})),
        )
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "duplicate");

    let leads = client
        .send(Method::GET, "/api/v1/leads", Some(&sally), None)
        .await;
    assert_eq!(leads.status, StatusCode::OK, "{}", leads.raw);
    assert_eq!(leads.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(leads.body["items"][0]["customer"]["id"], id.as_str());
    assert!(!leads.raw.contains(LEAD_NAME));
    // Another salesperson neither lists nor converts it.
    let theirs = client
        .send(Method::GET, "/api/v1/leads", Some(&sam), None)
        .await;
    assert!(theirs.body["items"].as_array().unwrap().is_empty());
    let stranger = client
        .send(
            Method::POST,
            &format!("/api/v1/leads/{id}/convert"),
            Some(&sam),
            None,
        )
        .await;
    assert_problem(&stranger, StatusCode::NOT_FOUND, "not_found");

    let converted = client
        .send(
            Method::POST,
            &format!("/api/v1/leads/{id}/convert"),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(converted.status, StatusCode::OK, "{}", converted.raw);
    assert_eq!(converted.body["lifecycle"], "customer");
    assert!(converted.body["converted_at"].is_string());
    let twice = client
        .send(
            Method::POST,
            &format!("/api/v1/leads/{id}/convert"),
            Some(&sally),
            None,
        )
        .await;
    assert_problem(&twice, StatusCode::CONFLICT, "conflict");

    // The customer is visible to its owner, masked; it is no longer a lead.
    let customer = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(customer.status, StatusCode::OK, "{}", customer.raw);
    assert_eq!(customer.body["phone"], "135****1234");
    let leads = client
        .send(Method::GET, "/api/v1/leads", Some(&sally), None)
        .await;
    assert!(leads.body["items"].as_array().unwrap().is_empty());
    let converts = count_containing(&harness, "audit_log", "action", "lead.convert").await;
    assert_eq!(converts, 1, "one audited conversion");
    assert_eq!(
        count_containing(&harness, "customer", "lifecycle", "customer").await,
        1
    );
});

both_backends!(
    deal_stages_move_with_history_and_stale_versions_conflict,
    |harness| {
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "will", Role::Sales, Some("west")).await;
        add_user(&harness, "sue", Role::Service, Some("east")).await;
        let client = Client::new(&harness).await;
        let mona = client.login("mona").await;
        let sally = client.login("sally").await;
        let will = client.login("will").await;
        let sue = client.login("sue").await;

        let pipelines = client
            .send(Method::GET, "/api/v1/pipelines", Some(&sally), None)
            .await;
        assert_eq!(pipelines.status, StatusCode::OK, "{}", pipelines.raw);
        let keys: Vec<&str> = pipelines
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|pipeline| pipeline["key"].as_str().unwrap())
            .collect();
        for key in [
            "real_estate",
            "automotive",
            "finance",
            "education",
            "ecommerce",
            "services",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        let service = client
            .send(Method::GET, "/api/v1/deals", Some(&sue), None)
            .await;
        assert_problem(&service, StatusCode::FORBIDDEN, "forbidden");

        // The pipeline defaults to the customer's industry and the stage to its first.
        let customer = create_customer(&client, &sally, "13811112222", "real_estate").await;
        let deal = create_deal(
            &client,
            &sally,
            json!({"customer_id": customer, "title": "三室一厅", "amount_minor": 350_000_000,
                   "expected_close": "2030-06-30"}),
        )
        .await;
        let id = deal["id"].as_str().unwrap().to_owned();
        assert_eq!(deal["pipeline"], "real_estate");
        assert_eq!(deal["stage"], "first_contact");
        assert_eq!(deal["status"], "open");
        assert_eq!(deal["version"], 1);
        let name = deal["customer_name"].as_str().unwrap();
        assert!(name.starts_with('诸') && name != "诸葛明", "{name}");

        // Precise errors: an unknown stage, a lost deal without a reason, a bad amount.
        let unknown = client
            .send(
                Method::POST,
                &format!("/api/v1/deals/{id}/stage"),
                Some(&sally),
                Some(json!({"version": 1, "stage": "test_drive"})),
            )
            .await;
        assert_problem(
            &unknown,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let bad = client
            .send(
                Method::POST,
                "/api/v1/deals",
                Some(&sally),
                Some(json!({"customer_id": customer, "title": "x", "amount_minor": -1})),
            )
            .await;
        assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

        let moved = client
            .send(
                Method::POST,
                &format!("/api/v1/deals/{id}/stage"),
                Some(&sally),
                Some(json!({"version": 1, "stage": "viewing"})),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.raw);
        assert_eq!(moved.body["stage"], "viewing");
        assert_eq!(moved.body["version"], 2);
        let history = moved.body["history"].as_array().unwrap();
        assert_eq!(history.len(), 2, "{}", moved.raw);
        assert_eq!(history[1]["from_stage"], "first_contact");
        assert_eq!(history[1]["to_stage"], "viewing");
        assert!(history[1]["by"].is_string() && history[1]["at"].is_string());

        // A move based on the version before is stale: 409, nothing written.
        let stale = client
            .send(
                Method::POST,
                &format!("/api/v1/deals/{id}/stage"),
                Some(&sally),
                Some(json!({"version": 1, "stage": "intent"})),
            )
            .await;
        assert_problem(&stale, StatusCode::CONFLICT, "conflict");

        // Two concurrent moves from the same version: exactly one wins.
        let uri = format!("/api/v1/deals/{id}/stage");
        let (first, second) = tokio::join!(
            client.send(
                Method::POST,
                &uri,
                Some(&sally),
                Some(json!({"version": 2, "stage": "intent"}))
            ),
            client.send(
                Method::POST,
                &uri,
                Some(&mona),
                Some(json!({"version": 2, "stage": "subscription"}))
            ),
        );
        let mut statuses = [first.status, second.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "{} / {}",
            first.raw,
            second.raw
        );
        let current = client
            .send(
                Method::GET,
                &format!("/api/v1/deals/{id}"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(current.body["version"], 3);
        assert_eq!(current.body["history"].as_array().unwrap().len(), 3);

        // Another salesperson: 404 for a deal on a customer they do not own, on every route; not in their list.
        for (method, uri, body) in [
            (Method::GET, format!("/api/v1/deals/{id}"), None),
            (
                Method::PATCH,
                format!("/api/v1/deals/{id}"),
                Some(json!({"version": 3, "amount_minor": 1})),
            ),
            (
                Method::POST,
                format!("/api/v1/deals/{id}/stage"),
                Some(json!({"version": 3, "status": "won"})),
            ),
        ] {
            let reply = client.send(method, &uri, Some(&will), body).await;
            assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
        }
        let theirs = client
            .send(Method::GET, "/api/v1/deals", Some(&will), None)
            .await;
        assert!(theirs.body["items"].as_array().unwrap().is_empty());
        let on_foreign = client
            .send(
                Method::POST,
                "/api/v1/deals",
                Some(&will),
                Some(json!({"customer_id": customer, "title": "抢单", "amount_minor": 1})),
            )
            .await;
        assert_problem(&on_foreign, StatusCode::NOT_FOUND, "not_found");
        // The manager of the team sees it.
        let listed = client
            .send(
                Method::GET,
                "/api/v1/deals?pipeline=real_estate&status=open",
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

        // Lost needs a reason; the reason is masked.
        let version = current.body["version"].as_i64().unwrap();
        let no_reason = client
            .send(
                Method::POST,
                &uri,
                Some(&sally),
                Some(json!({"version": version, "status": "lost"})),
            )
            .await;
        assert_problem(
            &no_reason,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let lost = client
            .send(
                Method::POST,
                &uri,
                Some(&sally),
                Some(json!({"version": version, "status": "lost",
                        "lost_reason": format!("客户改买别家，电话{TYPED_PHONE}")})),
            )
            .await;
        assert_eq!(lost.status, StatusCode::OK, "{}", lost.raw);
        assert_eq!(lost.body["status"], "lost");
        assert!(lost.body["closed_at"].is_string());
        assert!(lost.body["lost_reason"]
            .as_str()
            .unwrap()
            .contains("137****5670"));
        assert!(!lost.raw.contains(TYPED_PHONE));
        let stage_moves = count_containing(&harness, "audit_log", "action", "deal.stage").await;
        assert_eq!(stage_moves, 3, "every move audited");
    }
);

both_backends!(tasks_list_by_assignee_and_due_time, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "will", Role::Sales, Some("west")).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let will = client.login("will").await;
    let customer = create_customer(&client, &sally, "13822223333", "education").await;
    let deal = create_deal(
        &client,
        &sally,
        json!({"customer_id": customer, "title": "少儿英语", "amount_minor": 1_280_000}),
    )
    .await;
    assert_eq!(deal["pipeline"], "education");
    let now = chrono::Utc::now();
    let at = |hours: i64| (now + chrono::Duration::hours(hours)).to_rfc3339();
    let mut ids = Vec::new();
    for (title, hours, customer_id, deal_id) in [
        ("昨天该打的回访电话", -20, Some(customer.clone()), None),
        (
            "约试听",
            30,
            None,
            Some(deal["id"].as_str().unwrap().to_owned()),
        ),
        ("下周跟进", 240, None, None),
    ] {
        let reply = client
            .send(
                Method::POST,
                "/api/v1/tasks",
                Some(&sally),
                Some(
                    json!({"title": title, "due_at": at(hours), "customer_id": customer_id,
                            "deal_id": deal_id}),
                ),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
        if deal_id.is_some() {
            assert_eq!(
                reply.body["customer_id"],
                customer.as_str(),
                "the deal's customer"
            );
        }
    }
    let due_before = at(72);
    let due = client
        .send(
            Method::GET,
            &format!(
                "/api/v1/tasks?assignee=me&due_before={}",
                due_before.replace('+', "%2B")
            ),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(due.status, StatusCode::OK, "{}", due.raw);
    let items = due.body.as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", due.raw);
    assert_eq!(items[0]["id"], ids[0].as_str());
    assert_eq!(items[0]["overdue"], true);
    assert_eq!(items[1]["id"], ids[1].as_str());
    assert_eq!(items[1]["overdue"], false);
    let bad = client
        .send(
            Method::GET,
            "/api/v1/tasks?due_before=tomorrow",
            Some(&sally),
            None,
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Done once (audited), then a conflict; not done again.
    let uri = format!("/api/v1/tasks/{}", ids[0]);
    let done = client
        .send(
            Method::PATCH,
            &uri,
            Some(&sally),
            Some(json!({"done": true})),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.raw);
    assert_eq!(done.body["done"], true);
    let twice = client
        .send(
            Method::PATCH,
            &uri,
            Some(&sally),
            Some(json!({"done": true})),
        )
        .await;
    assert_problem(&twice, StatusCode::CONFLICT, "conflict");
    let open = client
        .send(
            Method::GET,
            "/api/v1/tasks?assignee=me&done=false",
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(open.body.as_array().unwrap().len(), 2);

    // Another salesperson sees none of them, cannot complete them, nor attach a task to the customer.
    let theirs = client
        .send(Method::GET, "/api/v1/tasks", Some(&will), None)
        .await;
    assert!(theirs.body.as_array().unwrap().is_empty(), "{}", theirs.raw);
    let foreign = client
        .send(
            Method::PATCH,
            &format!("/api/v1/tasks/{}", ids[1]),
            Some(&will),
            Some(json!({"done": true})),
        )
        .await;
    assert_problem(&foreign, StatusCode::NOT_FOUND, "not_found");
    let attach = client
        .send(
            Method::POST,
            "/api/v1/tasks",
            Some(&will),
            Some(json!({"title": "x", "due_at": at(1), "customer_id": customer})),
        )
        .await;
    assert_problem(&attach, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        count_containing(&harness, "audit_log", "action", "task.create").await,
        3
    );
    assert_eq!(
        count_containing(&harness, "audit_log", "action", "task.complete").await,
        1
    );
});

both_backends!(
    no_typed_personal_data_in_deal_or_task_responses_logs_or_columns,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let customer = create_customer(&client, &sally, "13833334444", "automotive").await;
        let typed = format!("试驾后回电{TYPED_PHONE}");
        let deal = client
            .send(
                Method::POST,
                "/api/v1/deals",
                Some(&sally),
                Some(
                    json!({"customer_id": customer, "title": typed, "amount_minor": 25_980_000,
                            "stage": "test_drive"}),
                ),
            )
            .await;
        assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.raw);
        assert!(deal.body["title"].as_str().unwrap().contains("137****5670"));
        let id = deal.body["id"].as_str().unwrap().to_owned();
        let patched = client
            .send(
                Method::PATCH,
                &format!("/api/v1/deals/{id}"),
                Some(&sally),
                Some(json!({"version": 1, "title": typed, "amount_minor": 26_000_000})),
            )
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.raw);
        let task = client
            .send(
                Method::POST,
                "/api/v1/tasks",
                Some(&sally),
                Some(json!({"title": typed, "due_at": "2030-01-01T09:00:00+08:00", "deal_id": id})),
            )
            .await;
        assert_eq!(task.status, StatusCode::CREATED, "{}", task.raw);
        let mut replies = vec![deal.raw, patched.raw, task.raw];
        for uri in [
            format!("/api/v1/deals/{id}"),
            "/api/v1/deals".to_owned(),
            "/api/v1/tasks?assignee=me".to_owned(),
        ] {
            let reply = client.send(Method::GET, &uri, Some(&sally), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
            replies.push(reply.raw);
        }
        for raw in &replies {
            assert!(!raw.contains(TYPED_PHONE), "{raw}");
            assert!(!raw.contains("诸葛明"), "{raw}");
        }
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert!(
            !logs.contains(TYPED_PHONE),
            "a typed number reached the logs"
        );
        for (table, column) in [
            ("deal", "title"),
            ("deal", "lost_reason"),
            ("follow_up_task", "title"),
            ("audit_log", "detail"),
        ] {
            assert_eq!(
                count_containing(&harness, table, column, TYPED_PHONE).await,
                0,
                "{table}.{column} holds the typed number"
            );
        }
        assert_eq!(
            count_containing(&harness, "deal", "title", "137****5670").await,
            1,
            "the masked title is stored"
        );
    }
);

/// Rows of `table` whose `column` contains `needle`.
async fn count_containing(harness: &Harness, table: &str, column: &str, needle: &str) -> i64 {
    use veil_store::sqlx;
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} LIKE '%' || $1 || '%'");
    match harness.veil.store().pool() {
        veil_store::Pool::Sqlite(pool) => sqlx::query_scalar(&sql)
            .bind(needle)
            .fetch_one(pool)
            .await
            .unwrap(),
        veil_store::Pool::Postgres(pool) => sqlx::query_scalar(&sql)
            .bind(needle)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}
