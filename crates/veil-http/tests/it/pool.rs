//! The customer pool over HTTP: release, the masked pool listing, claims (one winner of two at once), the
//! previous owner's 404, the customer's pool state.

use axum::http::{Method, StatusCode};
use serde_json::json;
use veil_app::both_backends;
use veil_app::users::Role;

use super::{add_user, assert_no_plaintext, assert_problem, full_customer, Client, PHONE};

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
