//! Industry templates over HTTP: custom fields validated against the customer's industry, sensitive ones sealed and
//! shown masked everywhere, admin-defined fields (admins only, audited).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::testing::Harness;
use veil_app::users::Role;

use crate::{add_user, assert_problem, captured_logs, Client};

/// The planted sensitive values: an income (a JSON number whose text cannot occur in base64) and an employer.
const INCOME: f64 = 876_543.21;
const INCOME_TEXT: &str = "876543.21";
const EMPLOYER: &str = "上海浦江量子科技有限公司";
const EMPLOYER_PART: &str = "浦江量子";

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

fn assert_nothing_planted(text: &str, what: &str) {
    for needle in [INCOME_TEXT, EMPLOYER_PART] {
        assert!(!text.contains(needle), "{needle} found in {what}: {text}");
    }
}

fn field_errors(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect()
}

both_backends!(finance_custom_fields_are_checked_and_sealed, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    add_user(&harness, "audrey", Role::Auditor, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;

    // The templates: six, each with its pipeline; finance has the R1–R5 risk level and a sensitive income.
    let templates = client
        .send(Method::GET, "/api/v1/industries", Some(&sally), None)
        .await;
    assert_eq!(templates.status, StatusCode::OK, "{}", templates.raw);
    let keys: Vec<&str> = templates
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|template| template["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "real_estate",
            "automotive",
            "services",
            "finance",
            "education",
            "ecommerce"
        ]
    );
    let finance = &templates.body[3];
    assert_eq!(finance["pipeline"], "finance");
    let field = |key: &str| {
        finance["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|field| field["key"] == key)
            .cloned()
            .unwrap()
    };
    assert_eq!(field("risk_level")["type"], "enum");
    assert_eq!(field("risk_level")["label_zh"], "风险等级");
    assert_eq!(field("risk_level")["options"].as_array().unwrap().len(), 5);
    assert_eq!(field("annual_income")["sensitive"], true);

    // Created with a risk level and a sensitive income and employer: the response shows them masked.
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(json!({
                "name": "欧阳理财", "phone": "13912340001", "industry": "finance",
                "custom_fields": {"risk_level": "R3", "annual_income": INCOME, "employer": EMPLOYER,
                                  "qualified_investor": false}
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    let custom = &created.body["custom_fields"];
    assert_eq!(custom["risk_level"], "R3");
    assert_eq!(custom["qualified_investor"], false);
    assert_eq!(custom["annual_income"], "******");
    assert!(
        custom["employer"].as_str().unwrap().starts_with("上海*"),
        "{custom}"
    );
    let masked = created.body["masked"].as_array().unwrap();
    assert!(
        masked.contains(&json!("custom.annual_income"))
            && masked.contains(&json!("custom.employer"))
    );
    assert_nothing_planted(&created.raw, "the create response");
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Reads: one customer and the list.
    for uri in [
        format!("/api/v1/customers/{id}"),
        "/api/v1/customers".to_owned(),
    ] {
        let read = client.send(Method::GET, &uri, Some(&sally), None).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.raw);
        assert!(
            read.raw.contains("\"annual_income\":\"******\""),
            "{}",
            read.raw
        );
        assert_nothing_planted(&read.raw, &uri);
    }

    // An update changes the risk level; the sealed income stays sealed and masked.
    let updated = client
        .send(
            Method::PATCH,
            &format!("/api/v1/customers/{id}"),
            Some(&sally),
            Some(json!({"custom_fields": {"risk_level": "R4", "qualified_investor": null}})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.raw);
    assert_eq!(updated.body["custom_fields"]["risk_level"], "R4");
    assert!(updated.body["custom_fields"]
        .get("qualified_investor")
        .is_none());
    assert_eq!(updated.body["custom_fields"]["annual_income"], "******");
    assert_nothing_planted(&updated.raw, "the update response");

    // Bad values: 422 naming the field, without echoing the value.
    let cases = [
        (json!({"risk_level": "R9"}), "custom_fields.risk_level"),
        (
            json!({"annual_income": "a lot"}),
            "custom_fields.annual_income",
        ),
        (json!({"shoe_size": 42}), "custom_fields.shoe_size"),
        (
            json!({"risk_assessed_on": "2026-13-01"}),
            "custom_fields.risk_assessed_on",
        ),
    ];
    for (custom_fields, field) in cases {
        let reply = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(
                    json!({"name": "错误", "industry": "finance", "custom_fields": custom_fields}),
                ),
            )
            .await;
        assert_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(field_errors(&reply.body), [field], "{}", reply.raw);
        assert!(!reply.raw.contains("a lot"), "{}", reply.raw);
    }
    // Custom fields need an industry with a template.
    let reply = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(json!({"name": "无行业", "custom_fields": {"risk_level": "R1"}})),
        )
        .await;
    assert_problem(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(field_errors(&reply.body), ["custom_fields"]);
    // A wrong value in a PATCH changes nothing.
    let reply = client
        .send(
            Method::PATCH,
            &format!("/api/v1/customers/{id}"),
            Some(&sally),
            Some(json!({"custom_fields": {"risk_level": "R0"}})),
        )
        .await;
    assert_problem(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // Nothing planted is stored in plaintext or written to the audit trail or the logs; the ciphertexts exist.
    for (table, column) in [
        ("customer", "custom_fields"),
        ("customer", "custom_sealed"),
        ("customer", "attributes"),
        ("audit_log", "detail"),
        ("audit_log", "fields"),
    ] {
        for needle in [INCOME_TEXT, EMPLOYER_PART] {
            assert_eq!(
                count_containing(&harness, table, column, needle).await,
                0,
                "{needle} in {table}.{column}"
            );
        }
    }
    assert_eq!(
        count_containing(&harness, "customer", "custom_sealed", "annual_income").await,
        1
    );
    let audrey = client.login("audrey").await;
    let audit = client
        .send(
            Method::GET,
            &format!("/api/v1/audit?customer={id}"),
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.raw);
    assert!(audit.raw.contains("custom.annual_income"), "{}", audit.raw);
    assert_nothing_planted(&audit.raw, "the audit page");
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert_nothing_planted(&logs, "the logs");

    // Erasure destroys the data key: the row and its sealed custom fields go with it.
    let ada = client.login("ada").await;
    let erased = client
        .send(
            Method::DELETE,
            &format!("/api/v1/customers/{id}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT, "{}", erased.raw);
    assert_eq!(
        count_containing(&harness, "customer", "custom_sealed", "annual_income").await,
        0
    );
});

both_backends!(admins_add_custom_fields_and_sales_cannot, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    add_user(&harness, "audrey", Role::Auditor, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let ada = client.login("ada").await;
    let wechat = json!({"key": "wechat_id", "label_en": "WeChat ID", "label_zh": "微信号", "type": "text",
                        "sensitive": true, "keep_leading": 2});
    let refused = client
        .send(
            Method::POST,
            "/api/v1/industries/finance/fields",
            Some(&sally),
            Some(wechat.clone()),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    let added = client
        .send(
            Method::POST,
            "/api/v1/industries/finance/fields",
            Some(&ada),
            Some(wechat.clone()),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.raw);
    assert_eq!(added.body["builtin"], false);
    let again = client
        .send(
            Method::POST,
            "/api/v1/industries/finance/fields",
            Some(&ada),
            Some(wechat),
        )
        .await;
    assert_problem(
        &again,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let unknown = client
        .send(
            Method::POST,
            "/api/v1/industries/farming/fields",
            Some(&ada),
            Some(json!({"key": "crop", "label_en": "Crop", "type": "text"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.raw);

    // The added field is part of the template, and customers use it: sealed and masked like the built-ins.
    let templates = client
        .send(Method::GET, "/api/v1/industries", Some(&sally), None)
        .await;
    assert!(
        templates.raw.contains("\"key\":\"wechat_id\""),
        "{}",
        templates.raw
    );
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(json!({"name": "微信客户", "industry": "finance",
                        "custom_fields": {"wechat_id": "wxid_planted42"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    assert_eq!(created.body["custom_fields"]["wechat_id"], "wx************");
    assert!(!created.raw.contains("planted42"));

    // Built-in fields stay; added ones can be removed once.
    let builtin = client
        .send(
            Method::DELETE,
            "/api/v1/industries/finance/fields/risk_level",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(builtin.status, StatusCode::CONFLICT, "{}", builtin.raw);
    let by_sales = client
        .send(
            Method::DELETE,
            "/api/v1/industries/finance/fields/wechat_id",
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(by_sales.status, StatusCode::FORBIDDEN);
    for expected in [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND] {
        let removed = client
            .send(
                Method::DELETE,
                "/api/v1/industries/finance/fields/wechat_id",
                Some(&ada),
                None,
            )
            .await;
        assert_eq!(removed.status, expected, "{}", removed.raw);
    }

    // Both changes and the refusal are in the audit trail.
    let audrey = client.login("audrey").await;
    let audit = client
        .send(
            Method::GET,
            "/api/v1/audit?action=industry.field.",
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.raw);
    let actions: Vec<(&str, &str)> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["action"].as_str().unwrap(),
                item["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("industry.field.add", "ok")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("industry.field.delete", "ok")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("industry.field.manage", "denied")),
        "{actions:?}"
    );
});
