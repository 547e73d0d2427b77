//! The customer pool over HTTP: release, the masked pool listing, claims (one winner of two at once), the
//! previous owner's 404, the customer's pool state.

use axum::http::{Method, StatusCode};
use serde_json::json;
use veil_app::both_backends;
use veil_app::users::Role;

use super::{
    add_user, assert_no_plaintext, assert_problem, audit_where, enrol_and_step_up, full_customer,
    raw_sql, Client, Reply, PHONE,
};

both_backends!(pool_release_list_and_claim, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    add_user(&harness, "will", Role::Sales, Some("west")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let sam = client.login("sam").await;
    let will = client.login("will").await;
    let dora = client.login("dora").await;
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(full_customer()),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Only the owner's side releases; a reason is required.
    let refused = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/release"),
            Some(&will),
            Some(json!({"reason": "mine now"})),
        )
        .await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "not_found");
    let released = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/release"),
            Some(&sally),
            Some(json!({"reason": format!("号码{PHONE}停机")})),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.raw);
    assert_eq!(released.body["kind"], "release");
    assert_no_plaintext(&released.raw, "the release");
    let gone = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(&sally),
            None,
        )
        .await;
    assert_problem(&gone, StatusCode::NOT_FOUND, "not_found");

    // The pool: fully masked contact fields, no partial mobile; DPOs are refused.
    let pool = client
        .send(
            Method::GET,
            "/api/v1/pool?industry=finance&tag=vip",
            Some(&will),
            None,
        )
        .await;
    assert_eq!(pool.status, StatusCode::OK, "{}", pool.raw);
    let item = &pool.body["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["name"], "司马**");
    assert_eq!(item["phone"], "******");
    assert_eq!(item["email"], "******");
    assert_no_plaintext(&pool.raw, "the pool");
    for partial in ["139****", "x***@", "330106", "浙江省"] {
        assert!(!pool.raw.contains(partial), "{partial} in {}", pool.raw);
    }
    let other_industry = client
        .send(
            Method::GET,
            "/api/v1/pool?industry=retail",
            Some(&will),
            None,
        )
        .await;
    assert_eq!(other_industry.body["items"], json!([]));
    let dpo = client
        .send(Method::GET, "/api/v1/pool", Some(&dora), None)
        .await;
    assert_problem(&dpo, StatusCode::FORBIDDEN, "forbidden");

    // Two claims at once: exactly one 200, the other 409.
    let uri = format!("/api/v1/pool/{id}/claim");
    let (first, second) = tokio::join!(
        client.send(Method::POST, &uri, Some(&sam), None),
        client.send(Method::POST, &uri, Some(&will), None)
    );
    let statuses = [first.status, second.status];
    assert!(
        statuses.contains(&StatusCode::OK) && statuses.contains(&StatusCode::CONFLICT),
        "{statuses:?} {} {}",
        first.raw,
        second.raw
    );
    let (winner, loser, reply) = if first.status == StatusCode::OK {
        (&sam, &will, &first)
    } else {
        (&will, &sam, &second)
    };
    assert_eq!(reply.body["customer"]["phone"], "139****4321");
    assert_eq!(reply.body["held"], 1);
    assert_no_plaintext(&reply.raw, "the claim");
    let conflict = if first.status == StatusCode::OK {
        &second
    } else {
        &first
    };
    assert_problem(conflict, StatusCode::CONFLICT, "conflict");
    let read = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(winner),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let not_theirs = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(loser),
            None,
        )
        .await;
    assert_problem(&not_theirs, StatusCode::NOT_FOUND, "not_found");
    let state = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}/pool"),
            Some(winner),
            None,
        )
        .await;
    assert_eq!(state.status, StatusCode::OK, "{}", state.raw);
    assert_eq!(state.body["in_pool"], false);
    assert_eq!(state.body["claimed"], true);
    assert_eq!(state.body["history"][0]["kind"], "claim");
    assert_eq!(state.body["history"][1]["kind"], "release");
    assert_no_plaintext(&state.raw, "the pool state");
    let missing = client
        .send(
            Method::POST,
            &format!("/api/v1/pool/{}/claim", veil_app::CustomerId::new()),
            Some(&sam),
            None,
        )
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found");
});

async fn reveal_phone(client: &Client, token: &str, id: &str) -> Reply {
    client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/reveal"),
            Some(token),
            Some(json!({"fields": ["phone"]})),
        )
        .await
}

both_backends!(leaving_an_owner_ends_their_grants, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let ada = client.login("ada").await;
    let sam_id = harness.veil.actor_by_username("sam").await.unwrap().user_id;
    let mut ids = Vec::new();
    for body in [
        full_customer(),
        json!({"name": "欧阳娜娜", "phone": "13912345670"}),
        json!({"name": "上官云", "phone": "13912345671"}),
    ] {
        let created = client
            .send(Method::POST, "/api/v1/customers", Some(&sally), Some(body))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    // Sally holds a live grant on each of her three customers (an emergency view).
    enrol_and_step_up(&client, &sally).await;
    let mut grants = Vec::new();
    for id in &ids {
        let opened = client
            .send(
                Method::POST,
                "/api/v1/break-glass",
                Some(&sally),
                Some(json!({"customer_id": id, "fields": ["phone"],
                            "reason": "customer collapsed in the branch, calling family"})),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.raw);
        grants.push(opened.body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        reveal_phone(&client, &sally, &ids[0]).await.body,
        json!({"phone": PHONE})
    );

    // She releases the first: her grant on it is revoked in the same transaction, the reveal is 404.
    let released = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{}/release", ids[0]),
            Some(&sally),
            Some(json!({"reason": "moved abroad"})),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.raw);
    assert_problem(
        &reveal_phone(&client, &sally, &ids[0]).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // The second goes back by the return job (not followed up for 40 days).
    let old = veil_app::now_ms() - 40 * 24 * 60 * 60 * 1000;
    raw_sql(
        &harness,
        &format!(
            "UPDATE customer SET created_at = {old} WHERE id = '{}'",
            ids[1]
        ),
    )
    .await;
    assert_eq!(
        harness
            .veil
            .return_unattended(veil_app::now_ms())
            .await
            .unwrap(),
        1
    );
    assert_problem(
        &reveal_phone(&client, &sally, &ids[1]).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // The third moves to Sam by a transfer: her grant stays live, but it no longer reaches the customer.
    let moved = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{}/transfer", ids[2]),
            Some(&ada),
            Some(json!({"owner": sam_id.to_string(), "reason": "territory change"})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.raw);
    assert_problem(
        &reveal_phone(&client, &sally, &ids[2]).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // The grants list says which were revoked and why.
    let listed = client
        .send(Method::GET, "/api/v1/grants", Some(&sally), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.raw);
    assert_eq!(listed.body.as_array().unwrap().len(), 3, "{}", listed.raw);
    for grant in listed.body.as_array().unwrap() {
        let request = grant["request_id"].as_str().unwrap();
        let customer = grant["customer_ids"][0].as_str().unwrap();
        if customer == ids[2] {
            assert_eq!(grant["live"], true, "{grant}");
        } else {
            assert!(grants.iter().any(|id| id == request), "{grant}");
            assert_eq!(grant["live"], false, "{grant}");
            assert_eq!(
                grant["revoke_reason"],
                veil_store::pool::REVOKE_REASON,
                "{grant}"
            );
        }
    }
    assert_no_plaintext(&listed.raw, "the grants");

    // Each revocation is in the customer's audit trail, naming the grant.
    for id in &ids[..2] {
        let trail = audit_where(
            &harness,
            veil_store::AuditFilter {
                customer_id: Some(id.clone()),
                action: Some("grant.revoke".to_owned()),
                ..veil_store::AuditFilter::default()
            },
        )
        .await;
        assert_eq!(trail.len(), 1, "{trail:?}");
        assert!(trail[0].event.grant_id.is_some());
    }
});
