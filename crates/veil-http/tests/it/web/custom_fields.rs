//! The sensitive custom fields of an industry template in the browser: the customer page's consent form offers
//! them (and records a consent naming one), and the import page takes the rows' industry so that headers naming
//! the template's fields are imported into them, sealed.

use axum::http::{Method, StatusCode};
use serde_json::json;
use veil_app::both_backends;
use veil_app::users::Role;

use super::Browser;
use crate::industries::{assert_nothing_planted, EMPLOYER, INCOME_TEXT};
use crate::{add_user, Client};

both_backends!(
    consent_form_lists_and_records_sensitive_custom_fields,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(
                    json!({"name": "欧阳理财", "phone": "13912340001", "industry": "finance",
                            "custom_fields": {"risk_level": "R3", "annual_income": 876_543.21,
                                              "employer": EMPLOYER}}),
                ),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let mut browser = Browser::signed_in(&client, "sally").await;
        let detail = browser.get(&format!("/customers/{id}")).await;
        assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
        // The form offers the template's sensitive fields by their labels; a plain field has nothing to consent to.
        for expected in [
            "name=\"field_custom.annual_income\"",
            "name=\"field_custom.employer\"",
            "Annual income (CNY)</label>",
        ] {
            assert!(
                detail.body.contains(expected),
                "{expected}: {}",
                detail.body
            );
        }
        assert!(!detail.body.contains("field_custom.risk_level"));
        assert_nothing_planted(&detail.body, "the customer page");
        let csrf = detail.csrf();
        let recorded = browser
            .post_multipart(
                &format!("/customers/{id}/consents"),
                &[
                    ("csrf", &csrf),
                    ("purpose_customer_service", "on"),
                    ("field_custom.annual_income", "on"),
                    ("recipient", "internal"),
                    ("sensitive", "on"),
                    ("evidence_ref", "e-consent 2026-0002"),
                ],
                &[],
            )
            .await;
        assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
        let consents = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{id}/consents"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(
            consents.body[0]["fields"],
            json!(["custom.annual_income"]),
            "{}",
            consents.raw
        );
        assert_eq!(consents.body[0]["sensitive"], true);
        // Listed under its label.
        let listed = browser.get(recorded.location()).await;
        assert!(
            listed.body.contains("The consent was recorded."),
            "{}",
            listed.body
        );
        assert!(
            listed.body.contains("<td>Annual income (CNY)</td>"),
            "{}",
            listed.body
        );
        // A key that is not a sensitive custom field is the domain's 422, shown on the form.
        let refused = browser
            .post_multipart(
                &format!("/customers/{id}/consents"),
                &[
                    ("csrf", &csrf),
                    ("purpose_customer_service", "on"),
                    ("field_custom.risk_level", "on"),
                    ("evidence_ref", "e-consent 2026-0003"),
                ],
                &[],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
    }
);

both_backends!(import_page_takes_the_rows_industry, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let mut browser = Browser::signed_in(&client, "sally").await;
    let page = browser.get("/imports").await;
    assert!(
        page.body.contains("<option value=\"finance\">"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let file = format!(
        "姓名,手机号,年收入（元）,工作单位\n欧阳理财,13912340001,{INCOME_TEXT},{EMPLOYER}\n"
    );
    let result = browser
        .post_multipart(
            "/imports",
            &[("csrf", &csrf), ("industry", "finance")],
            &[("file", "finance.csv", file.as_bytes())],
        )
        .await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.body);
    assert!(
        result.body.contains("id=\"count-imported\">1</strong>"),
        "{}",
        result.body
    );
    assert!(
        result.body.contains("custom.annual_income"),
        "{}",
        result.body
    );
    assert_nothing_planted(&result.body, "the import result");
    let list = client
        .send(Method::GET, "/api/v1/customers", Some(&sally), None)
        .await;
    assert_eq!(
        list.body["items"][0]["custom_fields"]["annual_income"],
        "******"
    );
    assert_nothing_planted(&list.raw, "the customer list");
});
