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
