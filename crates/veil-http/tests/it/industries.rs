//! Industry templates over HTTP: custom fields validated against the customer's industry, sensitive ones sealed and
//! shown masked everywhere, admin-defined fields (admins only, audited).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::testing::Harness;
use veil_app::users::Role;

use crate::{add_user, assert_problem, audit_where, captured_logs, enrol_and_step_up, Client};

/// The planted sensitive values: an income (a JSON number whose text cannot occur in base64) and an employer.
const INCOME: f64 = 876_543.21;
pub(crate) const INCOME_TEXT: &str = "876543.21";
pub(crate) const EMPLOYER: &str = "上海浦江量子科技有限公司";
const EMPLOYER_PART: &str = "浦江量子";

/// Rows of `table` whose `column` contains `needle`.
pub(crate) async fn count_containing(
    harness: &Harness,
    table: &str,
    column: &str,
    needle: &str,
) -> i64 {
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

pub(crate) fn assert_nothing_planted(text: &str, what: &str) {
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

// ------------------------------------------------------------------------------------ governed reveal

/// (field, code, message) of every field error of a 422.
fn field_error_details(body: &Value) -> Vec<(String, String, String)> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["field"].as_str().unwrap().to_owned(),
                error["code"].as_str().unwrap().to_owned(),
                error["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A one-customer view request for `fields` on a contract basis (no consent needed).
pub(crate) fn view_request(customer: &str, fields: &[&str]) -> Value {
    json!({
        "purpose": "customer_service", "purpose_detail": "客户来电核对收入证明",
        "legal_basis": "contract", "jurisdiction": "CN", "scope": {"customer_ids": [customer]},
        "fields": fields, "mode": "view", "duration_minutes": 30
    })
}

/// Files `request` as `requester` and has `approver` approve it: (request id, grant id).
pub(crate) async fn approved_grant(
    client: &Client,
    requester: &str,
    approver: &str,
    request: Value,
) -> (String, String) {
    let asked = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(requester),
            Some(request),
        )
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.raw);
    assert_eq!(asked.body["state"], "pending", "{}", asked.raw);
    let request_id = asked.body["id"].as_str().unwrap().to_owned();
    let approved = client
        .send(
            Method::POST,
            &format!("/api/v1/unmask-requests/{request_id}/approve"),
            Some(approver),
            Some(json!({"reason": "income check for the mortgage file"})),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.raw);
    assert_eq!(approved.body["state"], "active", "{}", approved.raw);
    let grant_id = approved.body["grant_id"].as_str().unwrap().to_owned();
    (request_id, grant_id)
}

both_backends!(
    sensitive_custom_fields_reveal_only_under_their_grant,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "audrey", Role::Auditor, None).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let dora = client.login("dora").await;
        let create = |phone: &str, income: f64| {
            json!({"name": "欧阳理财", "phone": phone, "industry": "finance",
               "custom_fields": {"risk_level": "R3", "annual_income": income, "employer": EMPLOYER}})
        };
        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(create("13912340001", INCOME)),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let other = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(create("13912340002", 1.0)),
            )
            .await;
        assert_eq!(other.status, StatusCode::CREATED, "{}", other.raw);
        let other_id = other.body["id"].as_str().unwrap().to_owned();
        let reveal_uri = format!("/api/v1/customers/{id}/reveal");
        let reveal = |uri: String, fields: Value| {
            let client = &client;
            let sally = sally.clone();
            async move {
                client
                    .send(
                        Method::POST,
                        &uri,
                        Some(&sally),
                        Some(json!({ "fields": fields })),
                    )
                    .await
            }
        };

        // Without a grant (after a step-up): refused like a built-in field.
        enrol_and_step_up(&client, &sally).await;
        let refused = reveal(reveal_uri.clone(), json!(["custom.annual_income"])).await;
        assert_problem(&refused, StatusCode::FORBIDDEN, "grant_required");

        // On a consent basis a sensitive custom field needs the separate consent for sensitive data (PIPL Art. 29).
        let consent_uri = format!("/api/v1/customers/{id}/consents");
        let consent = |sensitive: bool| {
            json!({"purposes": ["customer_service"], "fields": ["custom.annual_income"], "recipient": "internal",
               "sensitive": sensitive, "evidence_ref": "e-consent 2026-0001"})
        };
        let plain_consent = client
            .send(
                Method::POST,
                &consent_uri,
                Some(&sally),
                Some(consent(false)),
            )
            .await;
        assert_eq!(
            plain_consent.status,
            StatusCode::CREATED,
            "{}",
            plain_consent.raw
        );
        assert_eq!(
            plain_consent.body["fields"],
            json!(["custom.annual_income"])
        );
        let mut on_consent = view_request(&id, &["custom.annual_income"]);
        on_consent["legal_basis"] = json!("consent");
        let asked = client
            .send(
                Method::POST,
                "/api/v1/unmask-requests",
                Some(&sally),
                Some(on_consent),
            )
            .await;
        assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.raw);
        assert_eq!(asked.body["state"], "blocked", "{}", asked.raw);
        assert_eq!(asked.body["fields"], json!(["custom.annual_income"]));
        let consent_check = asked.body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "consent")
            .unwrap()
            .clone();
        assert_eq!(
            consent_check["code"], "consent.lacking_sensitive",
            "{consent_check}"
        );
        let sensitive_consent = client
            .send(
                Method::POST,
                &consent_uri,
                Some(&sally),
                Some(consent(true)),
            )
            .await;
        assert_eq!(
            sensitive_consent.status,
            StatusCode::CREATED,
            "{}",
            sensitive_consent.raw
        );
        let request_id = asked.body["id"].as_str().unwrap().to_owned();
        let rechecked = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{request_id}/recheck"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(rechecked.body["state"], "pending", "{}", rechecked.raw);
        // One person and one sensitive field: low risk, one approval.
        assert_eq!(rechecked.body["risk"], "low", "{}", rechecked.raw);
        let approved = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{request_id}/approve"),
                Some(&dora),
                Some(json!({"reason": "customer asked for the income on file"})),
            )
            .await;
        assert_eq!(approved.body["state"], "active", "{}", approved.raw);
        let grant_id = approved.body["grant_id"].as_str().unwrap().to_owned();

        // The grant reveals the planted income, through the reveal path, by the name asked for.
        let revealed = reveal(reveal_uri.clone(), json!(["custom.annual_income"])).await;
        assert_eq!(revealed.status, StatusCode::OK, "{}", revealed.raw);
        assert_eq!(revealed.body, json!({"custom.annual_income": INCOME_TEXT}));
        // It covers that field of that customer only.
        for fields in [
            json!(["custom.employer"]),
            json!(["phone"]),
            json!(["custom.annual_income", "custom.employer"]),
        ] {
            let refused = reveal(reveal_uri.clone(), fields.clone()).await;
            assert_problem(&refused, StatusCode::FORBIDDEN, "grant_required");
            assert_nothing_planted(&refused.raw, &format!("the refusal of {fields}"));
        }
        let elsewhere = reveal(
            format!("/api/v1/customers/{other_id}/reveal"),
            json!(["custom.annual_income"]),
        )
        .await;
        assert_problem(&elsewhere, StatusCode::FORBIDDEN, "grant_required");

        // The reveal is audited under the grant and its purpose, naming the field and never the value.
        let trail = audit_where(
            &harness,
            veil_store::AuditFilter {
                action: Some("customer.reveal".to_owned()),
                customer_id: Some(id.clone()),
                ..veil_store::AuditFilter::default()
            },
        )
        .await;
        let ok: Vec<_> = trail
            .iter()
            .filter(|entry| entry.event.outcome == "ok")
            .collect();
        assert_eq!(ok.len(), 1, "{trail:?}");
        assert_eq!(ok[0].event.fields, ["custom.annual_income"]);
        assert_eq!(ok[0].event.grant_id.as_deref(), Some(grant_id.as_str()));
        assert_eq!(ok[0].event.purpose.as_deref(), Some("customer_service"));
        assert!(trail.iter().any(|entry| entry.event.outcome == "denied"
            && entry.event.fields.contains(&"custom.employer".to_owned())));
        assert_nothing_planted(&format!("{trail:?}"), "the reveal's audit entries");

        // Everywhere else the values stay masked: reads, search, requests, grants, the audit page, the database, logs.
        for uri in [
            format!("/api/v1/customers/{id}"),
            "/api/v1/customers".to_owned(),
            "/api/v1/customers?phone=13912340001".to_owned(),
            format!("/api/v1/unmask-requests/{request_id}"),
            "/api/v1/unmask-requests".to_owned(),
            "/api/v1/grants".to_owned(),
        ] {
            let read = client.send(Method::GET, &uri, Some(&sally), None).await;
            assert_eq!(read.status, StatusCode::OK, "{uri}: {}", read.raw);
            assert_nothing_planted(&read.raw, &uri);
        }
        let found = client
            .send(
                Method::GET,
                "/api/v1/customers?phone=13912340001",
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(
            found.body["items"][0]["custom_fields"]["annual_income"],
            "******"
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
        for (table, column) in [
            ("audit_log", "detail"),
            ("audit_log", "fields"),
            ("unmask_request", "fields"),
            ("unmask_grant", "fields"),
            ("customer", "custom_fields"),
        ] {
            for needle in [INCOME_TEXT, EMPLOYER_PART] {
                assert_eq!(
                    count_containing(&harness, table, column, needle).await,
                    0,
                    "{needle} in {table}.{column}"
                );
            }
        }

        // Revoked: the grant reveals nothing more.
        let revoked = client
            .send(
                Method::POST,
                &format!("/api/v1/grants/{grant_id}/revoke"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.raw);
        let after = reveal(reveal_uri.clone(), json!(["custom.annual_income"])).await;
        assert_problem(&after, StatusCode::FORBIDDEN, "grant_required");

        // Expired: neither.
        let (expiring_request, expiring) = approved_grant(
            &client,
            &sally,
            &dora,
            view_request(&id, &["custom.employer"]),
        )
        .await;
        let works = reveal(reveal_uri.clone(), json!(["custom.employer"])).await;
        assert_eq!(
            works.body,
            json!({"custom.employer": EMPLOYER}),
            "{}",
            works.raw
        );
        harness
            .raw_sql(&format!(
                "UPDATE unmask_grant SET expires_at = 1 WHERE id = '{expiring}'"
            ))
            .await
            .unwrap();
        let expired = reveal(reveal_uri.clone(), json!(["custom.employer"])).await;
        assert_problem(&expired, StatusCode::FORBIDDEN, "grant_required");
        let read = client
            .send(
                Method::GET,
                &format!("/api/v1/unmask-requests/{expiring_request}"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(read.body["state"], "expired", "{}", read.raw);

        // Erased: a live grant opens nothing once the customer's key and row are gone.
        approved_grant(
            &client,
            &sally,
            &dora,
            view_request(&id, &["custom.annual_income"]),
        )
        .await;
        let works = reveal(reveal_uri.clone(), json!(["custom.annual_income"])).await;
        assert_eq!(works.status, StatusCode::OK, "{}", works.raw);
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
        let gone = reveal(reveal_uri.clone(), json!(["custom.annual_income"])).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.raw);
        assert_nothing_planted(&gone.raw, "the reveal after erasure");

        // Break-glass names a custom field like a built-in one (an allergy in an emergency, an employer here).
        let glass = client
            .send(
                Method::POST,
                "/api/v1/break-glass",
                Some(&sally),
                Some(
                    json!({"customer_id": other_id, "fields": ["custom.employer"],
                            "reason": "customer collapsed in the branch, calling the employer"}),
                ),
            )
            .await;
        assert_eq!(glass.status, StatusCode::CREATED, "{}", glass.raw);
        assert_eq!(glass.body["fields"], json!(["custom.employer"]));
        let works = reveal(
            format!("/api/v1/customers/{other_id}/reveal"),
            json!(["custom.employer"]),
        )
        .await;
        assert_eq!(
            works.body,
            json!({"custom.employer": EMPLOYER}),
            "{}",
            works.raw
        );

        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert_nothing_planted(&logs, "the logs");
        assert!(harness.veil.verify_audit_chain().await.unwrap().ok);
    }
);

both_backends!(unmask_fields_name_only_sensitive_custom_fields, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let ada = client.login("ada").await;
    // An admin adds a sensitive and a plain field to the finance template.
    for field in [
        json!({"key": "wechat_id", "label_en": "WeChat ID", "type": "text", "sensitive": true}),
        json!({"key": "member_no", "label_en": "Member number", "type": "text"}),
    ] {
        let added = client
            .send(
                Method::POST,
                "/api/v1/industries/finance/fields",
                Some(&ada),
                Some(field),
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.raw);
    }
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(json!({"name": "欧阳理财", "industry": "finance",
                        "custom_fields": {"annual_income": INCOME, "wechat_id": "wxid_planted42"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Requests: an unknown key, a plain field (built-in or added), a malformed name — 422 on `fields` naming it.
    let cases = [
        ("custom.shoe_size", "unknown", "custom.shoe_size"),
        ("custom.risk_level", "not_sensitive", "custom.risk_level"),
        ("custom.member_no", "not_sensitive", "custom.member_no"),
        ("custom.Annual Income", "unknown", "custom.<key>"),
        ("annual_income", "unknown", "annual_income"),
    ];
    for (field, code, named) in cases {
        let reply = client
            .send(
                Method::POST,
                "/api/v1/unmask-requests",
                Some(&sally),
                Some(view_request(&id, &["phone", field])),
            )
            .await;
        assert_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let errors = field_error_details(&reply.body);
        assert_eq!(errors.len(), 1, "{field}: {}", reply.raw);
        assert_eq!(
            (errors[0].0.as_str(), errors[0].1.as_str()),
            ("fields", code),
            "{field}"
        );
        assert!(errors[0].2.contains(named), "{field}: {}", errors[0].2);
    }
    // The same check on consents, reveals and break-glass.
    let consent = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/consents"),
            Some(&sally),
            Some(
                json!({"purposes": ["customer_service"], "fields": ["custom.risk_level"],
                        "recipient": "internal", "evidence_ref": "e-consent 1"}),
            ),
        )
        .await;
    assert_problem(
        &consent,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(field_error_details(&consent.body)[0].1, "not_sensitive");
    let reveal = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/reveal"),
            Some(&sally),
            Some(json!({"fields": ["custom.shoe_size"]})),
        )
        .await;
    assert_problem(
        &reveal,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(reveal.raw.contains("custom.shoe_size"), "{}", reveal.raw);
    let glass = client
        .send(
            Method::POST,
            "/api/v1/break-glass",
            Some(&sally),
            Some(json!({"customer_id": id, "fields": ["custom.risk_level"],
                        "reason": "customer collapsed in the branch"})),
        )
        .await;
    assert_problem(
        &glass,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(field_error_details(&glass.body)[0].1, "not_sensitive");

    // Custom fields are for view grants: an export or a policy change naming one is refused.
    let mut export = view_request(&id, &["custom.annual_income"]);
    export["mode"] = json!("export");
    export["recipient"] = json!(age::x25519::Identity::generate().to_public().to_string());
    let mut policy = view_request(&id, &["custom.annual_income"]);
    policy["mode"] = json!("policy_change");
    policy["scope"] = json!({"customer_ids": []});
    policy["policy_change"] =
        json!({"field": "custom.annual_income", "role": "sales", "rule": {"op": "plaintext"}});
    for body in [export, policy] {
        let reply = client
            .send(
                Method::POST,
                "/api/v1/unmask-requests",
                Some(&sally),
                Some(body.clone()),
            )
            .await;
        assert_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            field_error_details(&reply.body)
                .iter()
                .any(|(field, code, _)| field == "fields" && code == "view_only"),
            "{}: {}",
            body["mode"],
            reply.raw
        );
    }

    // A sensitive field an admin added is asked for like a built-in one, until it is removed.
    let asked = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&sally),
            Some(view_request(
                &id,
                &["custom.wechat_id", "custom.annual_income"],
            )),
        )
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.raw);
    assert_eq!(
        asked.body["fields"],
        json!(["custom.wechat_id", "custom.annual_income"])
    );
    assert!(!asked.raw.contains("planted42"), "{}", asked.raw);
    let removed = client
        .send(
            Method::DELETE,
            "/api/v1/industries/finance/fields/wechat_id",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.raw);
    let gone = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&sally),
            Some(view_request(&id, &["custom.wechat_id"])),
        )
        .await;
    assert_problem(&gone, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_error_details(&gone.body)[0].1, "unknown");
});
