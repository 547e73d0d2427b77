//! The CRM pages of issue 9 in the browser: `/reports` (tickets/SLA, satisfaction, loyalty) and its JSON twins,
//! `/leads`, `/tasks` and `/imports`. Each page is checked in the caller's scope (one salesperson never sees
//! another's data), its forms are posted with the CSRF token, the report figures are compared with seeded data,
//! and no page carries a planted phone number in clear.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::users::Role;

use super::Browser;
use crate::{add_user, assert_no_plaintext, raw_sql, Client, PHONE};

async fn customer(client: &Client, token: &str, phone: &str) -> String {
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

async fn ticket(client: &Client, token: &str, customer: &str, subject: &str) -> String {
    let reply = client
        .send(
            Method::POST,
            "/api/v1/tickets",
            Some(token),
            Some(
                json!({"customer_id": customer, "channel": "phone", "category": "complaint",
                        "priority": "high", "subject": subject}),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// Sets a ticket's two deadlines `offset_ms` from now (negative: already missed).
async fn due_in(harness: &veil_app::testing::Harness, id: &str, offset_ms: i64) {
    let at = veil_app::now_ms() + offset_ms;
    raw_sql(
        harness,
        &format!(
            "UPDATE ticket SET first_response_due_at = {at}, resolution_due_at = {at} WHERE id = '{id}'"
        ),
    )
    .await;
}

async fn get_json(client: &Client, uri: &str, token: &str) -> Value {
    let reply = client.send(Method::GET, uri, Some(token), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.raw);
    assert_no_plaintext(&reply.raw, uri);
    reply.body
}

const HOUR: i64 = 3_600_000;

both_backends!(
    reports_agree_with_seeded_tickets_and_points_in_scope,
    |harness| {
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sam", Role::Sales, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let (ada, sally, sam, dora) = (
            client.login("ada").await,
            client.login("sally").await,
            client.login("sam").await,
            client.login("dora").await,
        );
        let hers = customer(&client, &sally, PHONE).await;
        let his = customer(&client, &sam, "13800001111").await;
        // Sally: two breached, one at risk, one answered and far from its deadline.
        let subject = format!("回电 {PHONE}");
        let breached_one = ticket(&client, &sally, &hers, &subject).await;
        let breached_two = ticket(&client, &sally, &hers, "发票错误").await;
        let at_risk = ticket(&client, &sally, &hers, "物流延误").await;
        let answered = ticket(&client, &sally, &hers, "咨询价格").await;
        due_in(&harness, &breached_one, -2 * HOUR).await;
        due_in(&harness, &breached_two, -HOUR).await;
        due_in(&harness, &at_risk, HOUR).await;
        due_in(&harness, &answered, 240 * HOUR).await;
        let commented = client
            .send(
                Method::POST,
                &format!("/api/v1/tickets/{answered}/comments"),
                Some(&sally),
                Some(json!({"body": "已联系客户"})),
            )
            .await;
        assert_eq!(commented.status, StatusCode::CREATED, "{}", commented.raw);
        // Sam: one breached ticket of his own.
        let his_ticket = ticket(&client, &sam, &his, "退货咨询").await;
        due_in(&harness, &his_ticket, -HOUR).await;

        let report = get_json(&client, "/api/v1/reports/tickets", &sally).await;
        assert_eq!(report["open"], 4, "{report}");
        assert_eq!(report["breached"], 2, "{report}");
        assert_eq!(report["at_risk"], 1, "{report}");
        let high = report["open_by_priority"]
            .as_array()
            .unwrap()
            .iter()
            .find(|count| count["key"] == "high")
            .unwrap();
        assert_eq!(high["count"], 4, "{report}");
        let attention = report["attention"].as_array().unwrap();
        assert_eq!(attention.len(), 3, "{report}");
        assert_eq!(attention[0]["state"], "breached");
        assert_eq!(attention[2]["id"], at_risk.as_str());
        assert_eq!(attention[2]["state"], "at_risk");
        assert!(
            attention
                .iter()
                .any(|line| line["subject"].as_str().unwrap().contains("139****4321")),
            "{report}"
        );
        let weeks = report["weeks"].as_array().unwrap();
        assert_eq!(weeks.len(), 12);
        let this_week = &weeks[11];
        assert_eq!(this_week["tickets"], 4, "{report}");
        assert_eq!(this_week["first_response_met"], 1, "{report}");
        assert_eq!(this_week["first_response_breached"], 2, "{report}");
        assert_eq!(this_week["resolution_breached"], 2, "{report}");
        assert!(report["average_first_response_minutes"].is_number());
        // Sam sees only his; the admin all; the DPO none.
        let his_report = get_json(&client, "/api/v1/reports/tickets", &sam).await;
        assert_eq!(his_report["open"], 1, "{his_report}");
        assert_eq!(his_report["breached"], 1, "{his_report}");
        assert!(!his_report.to_string().contains("139****4321"));
        let all = get_json(&client, "/api/v1/reports/tickets", &ada).await;
        assert_eq!(all["breached"], 3, "{all}");
        let refused = client
            .send(Method::GET, "/api/v1/reports/tickets", Some(&dora), None)
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.raw);

        // Loyalty: a paid order earns points; a redemption with a reason that carries a phone number.
        let product = client
        .send(
            Method::POST,
            "/api/v1/products",
            Some(&ada),
            Some(json!({"sku": "RPT-1", "name": "报表商品", "category": "report", "price_fen": 150_000})),
        )
        .await;
        assert_eq!(product.status, StatusCode::CREATED, "{}", product.raw);
        let order = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{hers}/orders"),
            Some(&sally),
            Some(json!({"items": [{"product_id": product.body["id"], "quantity": 1}], "status": "paid"})),
        )
        .await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.raw);
        let redeemed = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{hers}/loyalty/redeem"),
                Some(&sally),
                Some(json!({"points": 300, "reason": format!("电影票 {PHONE}")})),
            )
            .await;
        assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.raw);
        let lifetime = redeemed.body["lifetime_points"].as_i64().unwrap();
        assert!(lifetime > 300, "{}", redeemed.raw);
        let loyalty = get_json(&client, "/api/v1/reports/loyalty", &sally).await;
        assert_eq!(loyalty["members"], 1, "{loyalty}");
        let months = loyalty["months"].as_array().unwrap();
        assert_eq!(months.len(), 12);
        assert_eq!(months[11]["earned"], lifetime, "{loyalty}");
        assert_eq!(months[11]["redeemed"], 300, "{loyalty}");
        assert_eq!(months[11]["redemptions"], 1, "{loyalty}");
        assert_eq!(loyalty["top_redemptions"][0]["points"], 300, "{loyalty}");
        let reason = loyalty["top_redemptions"][0]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("电影票") && reason.contains("139****4321"),
            "{loyalty}"
        );
        let tier_total: i64 = loyalty["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tier| tier["members"].as_i64().unwrap())
            .sum();
        assert_eq!(tier_total, 1);
        let his_loyalty = get_json(&client, "/api/v1/reports/loyalty", &sam).await;
        assert_eq!(his_loyalty["members"], 0, "{his_loyalty}");
        assert_eq!(his_loyalty["months"][11]["earned"], 0, "{his_loyalty}");
        assert!(his_loyalty["top_redemptions"]
            .as_array()
            .unwrap()
            .is_empty());
        // The admin's figures come from the per-day totals the triggers keep: the same numbers.
        let every = get_json(&client, "/api/v1/reports/loyalty", &ada).await;
        assert_eq!(every["members"], 1, "{every}");
        assert_eq!(every["months"][11]["earned"], lifetime, "{every}");
        assert_eq!(every["months"][11]["redeemed"], 300, "{every}");
        assert_eq!(every["months"][11]["redemptions"], 1, "{every}");
        assert_eq!(every["top_redemptions"][0]["points"], 300, "{every}");
        assert_eq!(every["top_redemptions"][0]["redemptions"], 1, "{every}");

        // The page shows the same numbers, in both languages, without the number in clear.
        let mut browser = Browser::signed_in(&client, "sally").await;
        let page = browser.get("/reports").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        crate::web::assert_page_headers(&page);
        assert_no_plaintext(&page.body, "the reports page");
        for expected in [
            "id=\"report-open\"><span class=\"number\">4</span>",
            "id=\"report-breached\"><span class=\"number\">2</span>",
            "id=\"report-at-risk\"><span class=\"number\">1</span>",
            "id=\"report-members\"><span class=\"number\">1</span>",
            "139****4321",
            "电影票",
            "href=\"/reports\" aria-current=\"page\"",
            "<svg class=\"chart grouped\"",
        ] {
            assert!(page.body.contains(expected), "{expected}: {}", page.body);
        }
        assert!(
            !page.body.contains("退货咨询"),
            "another salesperson's ticket"
        );
        let mut his_browser = Browser::signed_in(&client, "sam").await;
        his_browser.accept_language = Some("zh-CN");
        let his_page = his_browser.get("/reports").await;
        assert_eq!(his_page.status, StatusCode::OK, "{}", his_page.body);
        assert!(his_page.body.contains("<h1>报表</h1>"), "{}", his_page.body);
        assert!(his_page
            .body
            .contains("id=\"report-breached\"><span class=\"number\">1</span>"));
        assert!(!his_page.body.contains("139****4321"));
        assert!(!his_page.body.contains("回电"));
        // The DPO works with no customer records: no link, and the page says there is nothing for her.
        let mut dpo = Browser::signed_in(&client, "dora").await;
        let empty = dpo.get("/reports").await;
        assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
        assert!(!empty.body.contains("href=\"/reports\""));
        assert!(!empty.body.contains("id=\"report-open\""));
    }
);

both_backends!(leads_page_lists_creates_and_converts_in_scope, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let mut browser = Browser::signed_in(&client, "sally").await;
    let form = browser.get("/leads").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    crate::web::assert_page_headers(&form);
    let csrf = form.csrf();
    // A bad phone number comes back as a named problem; nothing is written, the number is not shown back.
    let bad = browser
        .post(
            "/leads/new",
            &[
                ("csrf", &csrf),
                ("name", "司马相如"),
                ("phone", "1398765432"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(!bad.body.contains("1398765432"));
    let created = browser
        .post(
            "/leads/new",
            &[
                ("csrf", &csrf),
                ("name", "司马相如"),
                ("phone", PHONE),
                ("industry", "real_estate"),
                ("source", "展会"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), "/leads?done=created");
    let listed = browser.get("/leads?done=created").await;
    assert_no_plaintext(&listed.body, "the leads page");
    assert!(listed.body.contains("司马**"), "{}", listed.body);
    assert!(listed.body.contains("展会"));
    let marker = "action=\"/leads/";
    let start = listed.body.find(marker).expect("a convert form") + marker.len();
    let id = listed.body[start..start + 36].to_owned();
    // Without the token nothing happens.
    let forged = browser.post(&format!("/leads/{id}/convert"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Another salesperson neither sees nor converts it.
    let mut sam = Browser::signed_in(&client, "sam").await;
    let his = sam.get("/leads").await;
    assert!(!his.body.contains("司马**"), "{}", his.body);
    let his_csrf = his.csrf();
    let not_his = sam
        .post(&format!("/leads/{id}/convert"), &[("csrf", &his_csrf)])
        .await;
    assert_eq!(not_his.status, StatusCode::NOT_FOUND, "{}", not_his.body);
    let converted = browser
        .post(&format!("/leads/{id}/convert"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        converted.status,
        StatusCode::SEE_OTHER,
        "{}",
        converted.body
    );
    assert_eq!(converted.location(), format!("/customers/{id}"));
    assert!(!browser.get("/leads").await.body.contains("司马**"));
    let again = browser
        .post(&format!("/leads/{id}/convert"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
});

both_backends!(tasks_page_lists_creates_and_completes_mine, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let mut browser = Browser::signed_in(&client, "sally").await;
    let page = browser.get("/tasks").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    crate::web::assert_page_headers(&page);
    let csrf = page.csrf();
    let title = format!("回电 {PHONE}");
    let created = browser
        .post(
            "/tasks/new",
            &[
                ("csrf", &csrf),
                ("title", &title),
                ("due_at", "2020-01-02T09:30"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let bad = browser
        .post(
            "/tasks/new",
            &[("csrf", &csrf), ("title", "x"), ("due_at", "tomorrow")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let listed = browser.get("/tasks?done=created").await;
    assert_no_plaintext(&listed.body, "the tasks page");
    assert!(listed.body.contains("139****4321"), "{}", listed.body);
    assert!(listed.body.contains("class=\"overdue\""), "{}", listed.body);
    assert!(listed.body.contains("id=\"tasks-overdue\""));
    let mut sam = Browser::signed_in(&client, "sam").await;
    assert!(!sam.get("/tasks").await.body.contains("回电"));
    let marker = "action=\"/tasks/";
    let start = listed.body.find(marker).expect("a done form") + marker.len();
    let id = listed.body[start..start + 36].to_owned();
    let done = browser
        .post(
            &format!("/tasks/{id}/done"),
            &[("csrf", &csrf), ("back", "tasks")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/tasks?done=completed");
    assert!(!browser.get("/tasks").await.body.contains("回电"));
});

both_backends!(
    imports_page_runs_an_import_and_reports_each_bad_row,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sam", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        // A stored customer the file duplicates.
        customer(&client, &sally, "13600002222").await;
        let mut browser = Browser::signed_in(&client, "sally").await;
        let page = browser.get("/imports").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        crate::web::assert_page_headers(&page);
        let csrf = page.csrf();
        let file = format!(
        "姓名,手机,身份证号\n张三,{PHONE},\n李四,13600002222,\n王五,1390000,\n赵六,13700003333,330106197312210035\n"
    );
        let forged = browser
            .post_multipart("/imports", &[], &[("file", "c.csv", file.as_bytes())])
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
        let result = browser
            .post_multipart(
                "/imports",
                &[("csrf", &csrf)],
                &[("file", "customers.csv", file.as_bytes())],
            )
            .await;
        assert_eq!(result.status, StatusCode::OK, "{}", result.body);
        assert_no_plaintext(&result.body, "the import result");
        for value in ["13600002222", "1390000", "13700003333"] {
            assert!(!result.body.contains(value), "{value} in the result page");
        }
        for expected in [
            "id=\"count-imported\">1</strong>",
            "id=\"count-invalid\">2</strong>",
            "id=\"count-duplicates\">1</strong>",
            "<th scope=\"row\">3</th>",
            "<th scope=\"row\">4</th>",
            "<th scope=\"row\">5</th>",
        ] {
            assert!(
                result.body.contains(expected),
                "{expected}: {}",
                result.body
            );
        }
        // The job is listed and its stored result can be opened again; not by another salesperson.
        let listed = browser.get("/imports").await;
        let marker = "href=\"/imports/";
        let start = listed.body.find(marker).expect("a job link") + marker.len();
        let id = listed.body[start..start + 36].to_owned();
        let job = browser.get(&format!("/imports/{id}")).await;
        assert_eq!(job.status, StatusCode::OK, "{}", job.body);
        assert!(job.body.contains("id=\"count-invalid\">2</strong>"));
        assert!(job.body.contains("<th scope=\"row\">5</th>"));
        let mut sam = Browser::signed_in(&client, "sam").await;
        assert_eq!(
            sam.get(&format!("/imports/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert!(!sam.get("/imports").await.body.contains(&id));
        // A check-only run writes nothing.
        let before = harness.veil.count_customers().await.unwrap();
        let dry = browser
            .post_multipart(
                "/imports",
                &[("csrf", &csrf), ("dry_run", "1")],
                &[(
                    "file",
                    "more.csv",
                    "姓名,手机\n钱七,13500004444\n".as_bytes(),
                )],
            )
            .await;
        assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
        assert!(dry.body.contains("id=\"count-imported\">"), "{}", dry.body);
        assert_eq!(harness.veil.count_customers().await.unwrap(), before);
    }
);
