//! Customer import over HTTP: bad rows are reported (row, column, reason) while the good ones are imported,
//! duplicates by blind index are reported, and neither the response nor the logs repeat a value from the file.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use veil_app::both_backends;
use veil_app::users::Role;

use crate::{add_user, captured_logs, Client};

const VALUES: [&str; 5] = [
    "13912345678",
    "110101198402276151",
    "11010119840227615X",
    "1391234567",
    "欧阳娜娜",
];

both_backends!(an_import_keeps_good_rows_and_reports_bad_ones, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let dora = client.login("dora").await;
    let csv = "姓名,手机号,身份证号\n\
               欧阳娜娜,13912345678,110101198402276151\n\
               赵磊,13812345679,11010119840227615X\n\
               李娜,1391234567,\n\
               张伟,13912345678,\n";
    let post = |token: &str, query: &str| {
        Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/imports{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(csv))
            .unwrap()
    };
    let refused = client.send_request(post(&dora, "")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let reply = client.send_request(post(&sally, "")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
    let report = &reply.body;
    assert_eq!(report["imported"], 1);
    assert_eq!(report["invalid"], 2);
    assert_eq!(report["duplicates"], 1);
    let issues = report["issues"].as_array().unwrap();
    assert_eq!(issues[0]["row"], 3);
    assert_eq!(issues[0]["column"], "身份证号");
    assert_eq!(issues[0]["reason"], "bad_checksum");
    assert_eq!(issues[1]["row"], 4);
    assert_eq!(issues[1]["field"], "phone");
    assert_eq!(issues[2]["row"], 5);
    assert_eq!(issues[2]["kind"], "duplicate");
    assert_eq!(issues[2]["duplicate_of_row"], 2);
    // The same file again: the imported row is now a stored customer's duplicate.
    let again = client.send_request(post(&sally, "?dry_run=true")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.raw);
    assert_eq!(again.body["imported"], 0);
    assert_eq!(again.body["duplicates"], 2);
    let stored = &again.body["issues"][0];
    assert_eq!(
        (stored["row"].as_u64(), stored["kind"].as_str()),
        (Some(2), Some("duplicate"))
    );
    assert!(stored["existing_customer_id"].is_string(), "{}", again.raw);
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    for value in VALUES {
        assert!(!reply.raw.contains(value), "{value} in the response");
        assert!(
            !again.raw.contains(value),
            "{value} in the dry run's response"
        );
        assert!(!logs.contains(value), "{value} in the logs");
    }
    // Over the customer list the import is masked as any create.
    let list = client
        .send(Method::GET, "/api/v1/customers", Some(&sally), None)
        .await;
    assert_eq!(list.body["items"][0]["phone"], "139****5678");
});

both_backends!(
    imported_sensitive_custom_fields_are_sealed_and_reveal_only_under_a_grant,
    |harness| {
        use crate::industries::{
            approved_grant, assert_nothing_planted, count_containing, view_request, EMPLOYER,
            INCOME_TEXT,
        };
        use serde_json::json;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let dora = client.login("dora").await;
        // No industry column: `industry=finance` gives the template, whose labels the headers use (年收入 without
        // the unit of 年收入（元）, the English "Employer", the key risk_level).
        let csv = format!(
            "姓名,手机号,年收入,Employer,risk_level\n\
             欧阳理财,13912340001,{INCOME_TEXT},{EMPLOYER},R3\n\
             李娜,13912340002,lots,{EMPLOYER},R1\n"
        );
        let reply = client
            .send_request(
                Request::builder()
                    .method(Method::POST)
                    .uri("/api/v1/imports?industry=finance")
                    .header(header::AUTHORIZATION, format!("Bearer {sally}"))
                    .header(header::CONTENT_TYPE, "text/csv")
                    .body(Body::from(csv))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
        let report = &reply.body;
        let targets: Vec<&str> = report["mapping"]
            .as_array()
            .unwrap()
            .iter()
            .map(|column| column["target"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            targets,
            [
                "name",
                "phone",
                "custom.annual_income",
                "custom.employer",
                "custom.risk_level"
            ]
        );
        assert_eq!(report["imported"], 1, "{}", reply.raw);
        let issue = &report["issues"][0];
        assert_eq!(
            (
                issue["row"].as_u64(),
                issue["column"].as_str(),
                issue["reason"].as_str()
            ),
            (Some(3), Some("年收入"), Some("invalid_type")),
            "{}",
            reply.raw
        );
        assert_nothing_planted(&reply.raw, "the import report");
        assert!(!reply.raw.contains("lots"), "{}", reply.raw);

        // Sealed: no table column holds the values; reads show the masked displays.
        for (column, needle) in [
            ("custom_fields", INCOME_TEXT),
            ("custom_sealed", INCOME_TEXT),
            ("custom_fields", "浦江量子"),
            ("custom_sealed", "浦江量子"),
        ] {
            assert_eq!(
                count_containing(&harness, "customer", column, needle).await,
                0,
                "{needle} in customer.{column}"
            );
        }
        let list = client
            .send(Method::GET, "/api/v1/customers", Some(&sally), None)
            .await;
        let customer = &list.body["items"][0];
        assert_eq!(customer["industry"], "finance");
        assert_eq!(customer["custom_fields"]["annual_income"], "******");
        assert_eq!(customer["custom_fields"]["risk_level"], "R3");
        assert_nothing_planted(&list.raw, "the customer list");
        let id = customer["id"].as_str().unwrap().to_owned();

        // Revealed only under a grant naming the field.
        crate::enrol_and_step_up(&client, &sally).await;
        let reveal = |fields: serde_json::Value| {
            let (client, sally, id) = (&client, sally.clone(), id.clone());
            async move {
                client
                    .send(
                        Method::POST,
                        &format!("/api/v1/customers/{id}/reveal"),
                        Some(&sally),
                        Some(json!({ "fields": fields })),
                    )
                    .await
            }
        };
        let refused = reveal(json!(["custom.annual_income"])).await;
        crate::assert_problem(&refused, StatusCode::FORBIDDEN, "grant_required");
        approved_grant(
            &client,
            &sally,
            &dora,
            view_request(&id, &["custom.annual_income"]),
        )
        .await;
        let revealed = reveal(json!(["custom.annual_income"])).await;
        assert_eq!(revealed.status, StatusCode::OK, "{}", revealed.raw);
        assert_eq!(revealed.body, json!({"custom.annual_income": INCOME_TEXT}));
        let other = reveal(json!(["custom.employer"])).await;
        crate::assert_problem(&other, StatusCode::FORBIDDEN, "grant_required");
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert_nothing_planted(&logs, "the logs");
    }
);
