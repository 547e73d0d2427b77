//! Products, orders, loyalty and recommendations over HTTP: server-computed totals and catalogue prices, order
//! visibility between salespeople, points earned on payment and taken back on refund, tier changes recorded,
//! expiry, 100 concurrent redemptions that never overdraw, and recommendations from co-purchases and preferences.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use veil_app::both_backends;
use veil_app::testing::Harness;
use veil_app::users::Role;

use crate::{add_user, captured_logs, Client};

/// A number typed into a redemption reason: only this test uses it, so finding it anywhere is a leak.
const TYPED_PHONE: &str = "13712349876";

async fn create_customer(client: &Client, token: &str, phone: &str, tags: &[&str]) -> String {
    let reply = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(json!({"name": "上官婉儿", "phone": phone, "tags": tags})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn create_product(
    client: &Client,
    token: &str,
    sku: &str,
    category: &str,
    price: i64,
) -> String {
    let reply = client
        .send(
            Method::POST,
            "/api/v1/products",
            Some(token),
            Some(json!({"sku": sku, "name": format!("商品 {sku}"), "category": category, "price_fen": price})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn order(
    client: &Client,
    token: &str,
    customer: &str,
    items: &[(&str, i64)],
    status: &str,
) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
        .collect();
    let reply = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{customer}/orders"),
            Some(token),
            Some(json!({"items": items, "status": status})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.body
}

async fn loyalty(client: &Client, token: &str, customer: &str) -> Value {
    let reply = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{customer}/loyalty"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
    reply.body
}

both_backends!(
    orders_price_from_the_catalogue_and_follow_visibility,
    |harness| {
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sam", Role::Sales, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let ada = client.login("ada").await;
        let sally = client.login("sally").await;
        let sam = client.login("sam").await;
        let mona = client.login("mona").await;

        // Salespeople read the catalogue but do not change it; SKUs are unique.
        let phone = create_product(&client, &ada, "DIG-PHONE", "digital", 399_900).await;
        let case = create_product(&client, &ada, "DIG-CASE", "digital", 4_900).await;
        let refused = client
            .send(
                Method::POST,
                "/api/v1/products",
                Some(&sally),
                Some(json!({"sku": "X-1", "name": "x", "category": "x", "price_fen": 1})),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.raw);
        let duplicate = client
        .send(Method::POST, "/api/v1/products", Some(&ada),
              Some(json!({"sku": "DIG-PHONE", "name": "again", "category": "digital", "price_fen": 1})))
        .await;
        assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.raw);
        let catalogue = client
            .send(Method::GET, "/api/v1/products", Some(&sally), None)
            .await;
        assert_eq!(
            catalogue.body.as_array().unwrap().len(),
            2,
            "{}",
            catalogue.raw
        );

        let customer = create_customer(&client, &sally, "13800002222", &[]).await;
        // The client cannot set prices: unknown fields are refused, and the server prices from the catalogue.
        let priced_by_client = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{customer}/orders"),
                Some(&sally),
                Some(json!({"items": [{"product_id": phone, "quantity": 1, "unit_price_fen": 1}]})),
            )
            .await;
        assert_eq!(
            priced_by_client.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            priced_by_client.raw
        );
        let bad = client
        .send(Method::POST, &format!("/api/v1/customers/{customer}/orders"), Some(&sally),
              Some(json!({"items": [{"product_id": "nope", "quantity": 1}, {"product_id": case, "quantity": 0}]})))
        .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.raw);
        let fields: Vec<&str> = bad.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            ["items[0].product_id", "items[1].quantity"],
            "{}",
            bad.raw
        );

        let placed = order(
            &client,
            &sally,
            &customer,
            &[(&phone, 1), (&case, 2)],
            "placed",
        )
        .await;
        assert_eq!(placed["total_fen"], 399_900 + 2 * 4_900);
        assert_eq!(placed["status"], "placed");
        assert_eq!(placed["points_earned"], 0);
        assert_eq!(placed["items"][1]["unit_price_fen"], 4_900);
        assert_eq!(placed["items"][1]["line_total_fen"], 9_800);
        let order_id = placed["id"].as_str().unwrap().to_owned();

        // Another salesperson of the same team neither sees nor touches it: the customer is "not found".
        for (method, uri, body) in [
            (
                Method::GET,
                format!("/api/v1/customers/{customer}/orders"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/customers/{customer}/orders"),
                Some(json!({"items": [{"product_id": case, "quantity": 1}]})),
            ),
            (
                Method::POST,
                format!("/api/v1/orders/{order_id}/status"),
                Some(json!({"status": "paid"})),
            ),
            (
                Method::GET,
                format!("/api/v1/customers/{customer}/loyalty"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/customers/{customer}/loyalty/redeem"),
                Some(json!({"points": 1})),
            ),
            (
                Method::GET,
                format!("/api/v1/customers/{customer}/recommendations"),
                None,
            ),
        ] {
            let reply = client.send(method.clone(), &uri, Some(&sam), body).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{method} {uri}: {}",
                reply.raw
            );
        }

        // Paying earns 1 point per yuan: ¥4,097 → 4,097 points, which lifts the member to silver.
        let paid = client
            .send(
                Method::POST,
                &format!("/api/v1/orders/{order_id}/status"),
                Some(&sally),
                Some(json!({"status": "paid"})),
            )
            .await;
        assert_eq!(paid.status, StatusCode::OK, "{}", paid.raw);
        assert_eq!(paid.body["points_earned"], 4_097);
        assert!(paid.body["paid_at"].is_string());
        let again = client
            .send(
                Method::POST,
                &format!("/api/v1/orders/{order_id}/status"),
                Some(&sally),
                Some(json!({"status": "paid"})),
            )
            .await;
        assert_eq!(
            again.status,
            StatusCode::CONFLICT,
            "paying twice earns twice: {}",
            again.raw
        );
        let account = loyalty(&client, &sally, &customer).await;
        assert_eq!(account["balance"], 4_097, "{account}");
        assert_eq!(account["lifetime_points"], 4_097);
        assert_eq!(account["tier"]["name"], "silver");
        assert_eq!(account["next_tier"]["name"], "gold");
        assert_eq!(account["next_tier"]["points_needed"], 5_000 - 4_097);
        assert_eq!(account["tier_history"][0]["from"], "member");
        assert_eq!(account["tier_history"][0]["to"], "silver");

        // A later price change does not touch orders already entered; the manager sees the history.
        let patched = client
            .send(
                Method::PATCH,
                &format!("/api/v1/products/{phone}"),
                Some(&mona),
                Some(json!({"price_fen": 349_900})),
            )
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.raw);
        let second = order(&client, &sally, &customer, &[(&phone, 1)], "placed").await;
        assert_eq!(second["total_fen"], 349_900);
        let history = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{customer}/orders"),
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(history.status, StatusCode::OK, "{}", history.raw);
        let items = history.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["id"], order_id.as_str(), "newest first");
        assert_eq!(items[1]["items"][0]["unit_price_fen"], 399_900);
        assert_eq!(history.body["paid_totals"]["CNY"], 409_700);
        let cancelled = client
            .send(
                Method::POST,
                &format!("/api/v1/orders/{}/status", second["id"].as_str().unwrap()),
                Some(&sally),
                Some(json!({"status": "cancelled"})),
            )
            .await;
        assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.raw);

        // Spending some points, with personal data in the reason (masked, never stored or logged as typed).
        let redeemed = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{customer}/loyalty/redeem"),
                Some(&sally),
                Some(json!({"points": 1_000, "reason": format!("兑换礼品，联系{TYPED_PHONE}")})),
            )
            .await;
        assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.raw);
        assert_eq!(redeemed.body["balance"], 3_097);
        assert!(!redeemed.raw.contains(TYPED_PHONE), "{}", redeemed.raw);
        assert!(
            redeemed.body["entries"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("****"),
            "{}",
            redeemed.raw
        );

        // The refund takes back what is left of the order's points (3,097) and its lifetime points: back to member.
        let refunded = client
            .send(
                Method::POST,
                &format!("/api/v1/orders/{order_id}/status"),
                Some(&sally),
                Some(json!({"status": "refunded"})),
            )
            .await;
        assert_eq!(refunded.status, StatusCode::OK, "{}", refunded.raw);
        let account = loyalty(&client, &sally, &customer).await;
        assert_eq!(account["balance"], 0, "{account}");
        assert_eq!(account["lifetime_points"], 0);
        assert_eq!(account["tier"]["name"], "member");
        let kinds: Vec<&str> = account["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["reverse", "redeem", "earn"], "{account}");
        assert_eq!(account["entries"][0]["points"], -3_097);
        let tiers: Vec<(&str, &str)> = account["tier_history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|change| {
                (
                    change["to"].as_str().unwrap(),
                    change["reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(tiers, [("silver", "earn"), ("member", "refund")]);

        // Every step is in the audit trail, tier changes included.
        let dora = client.login("dora").await;
        for (action, count) in [
            ("order.create", 2),
            ("order.status", 3),
            ("loyalty.tier_change", 2),
            ("loyalty.redeem", 1),
            ("product.", 3),
        ] {
            let audit = client
                .send(
                    Method::GET,
                    &format!("/api/v1/audit?action={action}"),
                    Some(&dora),
                    None,
                )
                .await;
            assert_eq!(audit.status, StatusCode::OK, "{}", audit.raw);
            let ok = audit.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|item| item["outcome"] == "ok")
                .count();
            assert_eq!(ok, count, "{action}: {}", audit.raw);
            assert!(!audit.raw.contains(TYPED_PHONE));
        }
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert!(
            !logs.contains(TYPED_PHONE),
            "a typed number reached the logs"
        );
        for (table, column) in [("loyalty_entry", "reason"), ("audit_log", "detail")] {
            assert_eq!(
                count_containing(&harness, table, column, TYPED_PHONE).await,
                0,
                "{table} holds the typed number"
            );
        }
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

both_backends!(hundred_concurrent_redemptions_never_overdraw, |harness| {
    add_user(&harness, "ada", Role::Admin, None).await;
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let ada = client.login("ada").await;
    let sally = client.login("sally").await;
    let voucher = create_product(&client, &ada, "GIFT-100", "gift", 10_000).await;
    let customer = create_customer(&client, &sally, "13800003333", &[]).await;
    order(&client, &sally, &customer, &[(&voucher, 1)], "paid").await;
    assert_eq!(loyalty(&client, &sally, &customer).await["balance"], 100);

    // 100 redemptions of 3 points race for 100 points: exactly 33 can succeed.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let router = client.router.clone();
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/customers/{customer}/loyalty/redeem"))
            .header(header::AUTHORIZATION, format!("Bearer {sally}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"points": 3}).to_string()))
            .unwrap();
        tasks.spawn(async move { router.oneshot(request).await.unwrap().status() });
    }
    let mut ok = 0;
    let mut refused = 0;
    while let Some(status) = tasks.join_next().await {
        match status.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, refused), (33, 67));
    let account = loyalty(&client, &sally, &customer).await;
    assert_eq!(account["balance"], 1, "{account}");
    let redeemed: i64 = account["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["kind"] == "redeem")
        .map(|entry| entry["points"].as_i64().unwrap())
        .sum();
    assert_eq!(redeemed, -99);
    let last = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{customer}/loyalty/redeem"),
            Some(&sally),
            Some(json!({"points": 2})),
        )
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.raw);
    assert_eq!(last.body["code"], "insufficient_points", "{}", last.raw);
});

both_backends!(points_expire_after_their_days, |harness| {
    add_user(&harness, "ada", Role::Admin, None).await;
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let ada = client.login("ada").await;
    let sally = client.login("sally").await;
    let tea = create_product(&client, &ada, "TEA-1", "tea", 50_000).await;
    let customer = create_customer(&client, &sally, "13800004444", &[]).await;
    order(&client, &sally, &customer, &[(&tea, 1)], "paid").await;
    order(&client, &sally, &customer, &[(&tea, 1)], "paid").await;
    let account = loyalty(&client, &sally, &customer).await;
    assert_eq!(account["balance"], 1_000);
    assert_eq!(account["tier"]["name"], "silver");
    let expiry =
        chrono::DateTime::parse_from_rfc3339(account["next_expiry"]["at"].as_str().unwrap())
            .unwrap();
    let days = (expiry.timestamp_millis() - veil_app::now_ms()) / (24 * 60 * 60 * 1000);
    assert!((364..=365).contains(&days), "{days}");
    // Spend 300: taken from the lot that expires first.
    let spent = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{customer}/loyalty/redeem"),
            Some(&sally),
            Some(json!({"points": 300})),
        )
        .await;
    assert_eq!(spent.status, StatusCode::OK, "{}", spent.raw);

    // A year later (time travel on the first lot's expiry): what is left of it (200) expires, the other stays.
    let entries = loyalty(&client, &sally, &customer).await["entries"].clone();
    let first_lot = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["kind"] == "earn")
        .map(|entry| entry["id"].as_str().unwrap().to_owned())
        .min()
        .unwrap();
    harness
        .raw_sql(&format!(
            "UPDATE loyalty_entry SET expires_at = 1 WHERE id = '{first_lot}'"
        ))
        .await
        .unwrap();
    let account = loyalty(&client, &sally, &customer).await;
    assert_eq!(account["balance"], 500, "{account}");
    assert_eq!(account["entries"][0]["kind"], "expire");
    assert_eq!(account["entries"][0]["points"], -200);
    assert_eq!(
        account["lifetime_points"], 1_000,
        "expiry does not lower the tier"
    );
    assert_eq!(account["tier"]["name"], "silver");
    let too_much = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{customer}/loyalty/redeem"),
            Some(&sally),
            Some(json!({"points": 501})),
        )
        .await;
    assert_eq!(
        too_much.body["code"], "insufficient_points",
        "{}",
        too_much.raw
    );
    let invalid = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{customer}/loyalty/redeem"),
            Some(&sally),
            Some(json!({"points": 0})),
        )
        .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid.raw
    );
});

both_backends!(
    recommendations_come_from_co_purchases_and_preferences,
    |harness| {
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let ada = client.login("ada").await;
        let sally = client.login("sally").await;
        let phone = create_product(&client, &ada, "PHONE", "digital", 100_000).await;
        let case = create_product(&client, &ada, "CASE", "digital", 5_000).await;
        let charger = create_product(&client, &ada, "CHARGER", "digital", 8_000).await;
        let tea = create_product(&client, &ada, "TEA", "tea", 3_000).await;
        let cream = create_product(&client, &ada, "CREAM", "beauty", 20_000).await;
        let baskets: [&[&str]; 7] = [
            &[&phone, &case],
            &[&phone, &case, &tea],
            &[&phone, &charger],
            &[&tea],
            &[&tea],
            &[&tea],
            &[&tea],
        ];
        for (index, basket) in baskets.iter().enumerate() {
            let buyer = create_customer(&client, &sally, &format!("1390000{index:04}"), &[]).await;
            let items: Vec<(&str, i64)> = basket.iter().map(|product| (*product, 1)).collect();
            order(&client, &sally, &buyer, &items, "paid").await;
        }
        // A placed (unpaid) order is no purchase: it must not count.
        let unpaid = create_customer(&client, &sally, "13900009999", &[]).await;
        order(
            &client,
            &sally,
            &unpaid,
            &[(&phone, 1), (&cream, 1)],
            "placed",
        )
        .await;

        let target = create_customer(&client, &sally, "13900008888", &[]).await;
        order(&client, &sally, &target, &[(&phone, 1)], "paid").await;
        // The neighbour lists these purchases changed are recomputed by `veil serve`'s job; here, directly.
        harness.veil.refresh_product_neighbours().await.unwrap();
        let recommend = |customer: String, limit: u32| {
            let client = &client;
            let sally = sally.clone();
            async move {
                let reply = client
                    .send(
                        Method::GET,
                        &format!("/api/v1/customers/{customer}/recommendations?limit={limit}"),
                        Some(&sally),
                        None,
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
                reply.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|item| {
                        (
                            item["product"]["sku"].as_str().unwrap().to_owned(),
                            item["reason"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let pairs = |expected: &[(&str, &str)]| -> Vec<(String, String)> {
            expected
                .iter()
                .map(|(sku, reason)| ((*sku).to_owned(), (*reason).to_owned()))
                .collect()
        };
        // Four buyers of the phone (the target included): the case is bought with it twice (cosine 2/√(4·2)), the
        // charger once (1/√(4·1)), tea once but by five buyers (1/√(4·5)): ranked case, charger, tea; cream (only on
        // an unpaid order) comes as a popular fallback.
        assert_eq!(
            recommend(target.clone(), 5).await,
            pairs(&[
                ("CASE", "also_bought"),
                ("CHARGER", "also_bought"),
                ("TEA", "also_bought"),
                ("CREAM", "popular")
            ])
        );
        // An inactive product is never recommended.
        let off = client
            .send(
                Method::PATCH,
                &format!("/api/v1/products/{case}"),
                Some(&ada),
                Some(json!({"active": false})),
            )
            .await;
        assert_eq!(off.status, StatusCode::OK, "{}", off.raw);
        assert_eq!(
            recommend(target, 1).await,
            pairs(&[("CHARGER", "also_bought")])
        );
        // No purchases but a recorded preference (a tag naming a category): that category's products first.
        let newcomer = create_customer(&client, &sally, "13900007777", &["beauty"]).await;
        assert_eq!(
            recommend(newcomer, 2).await,
            pairs(&[("CREAM", "popular_in_category"), ("TEA", "popular")])
        );
    }
);

/// The purchase statistics kept on write equal the ones computed afresh from the paid orders, and so do the
/// neighbour lists once the marked ones are recomputed.
async fn assert_stats_match(harness: &Harness, when: &str) -> veil_store::PurchaseTotals {
    let store = harness.veil.store();
    let kept = store.kept_purchase_stats().await.unwrap();
    assert_eq!(
        kept,
        store.derived_purchase_stats().await.unwrap(),
        "kept purchase statistics after {when}"
    );
    harness.veil.refresh_product_neighbours().await.unwrap();
    assert_eq!(
        store.product_neighbour_lists().await.unwrap(),
        veil_app::recommendations::neighbour_lists(
            kept.pairs.iter().map(|((product, other), customers)| (
                product.as_str(),
                other.as_str(),
                *customers
            )),
            |id| kept.buyers.get(id).copied().unwrap_or(0),
            veil_app::recommendations::NEIGHBOUR_DEPTH,
        ),
        "neighbour lists after {when}"
    );
    kept
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

both_backends!(
    purchase_statistics_follow_payments_refunds_and_erasure,
    |harness| {
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let ada = client.login("ada").await;
        let sally = client.login("sally").await;
        let a = create_product(&client, &ada, "A", "digital", 1_000).await;
        let b = create_product(&client, &ada, "B", "digital", 2_000).await;
        let c = create_product(&client, &ada, "C", "tea", 3_000).await;
        let xavier = create_customer(&client, &sally, "13900001111", &[]).await;
        let yolanda = create_customer(&client, &sally, "13900002222", &[]).await;
        let zoe = create_customer(&client, &sally, "13900003333", &[]).await;

        let x_order = order(&client, &sally, &xavier, &[(&a, 1), (&b, 2)], "paid").await;
        order(&client, &sally, &yolanda, &[(&a, 1), (&c, 1)], "paid").await;
        // A second paid order of a product already bought adds units, not a buyer.
        order(&client, &sally, &yolanda, &[(&a, 3)], "paid").await;
        let z_order = order(&client, &sally, &zoe, &[(&b, 1), (&c, 1)], "placed").await;
        let stats = assert_stats_match(&harness, "entering orders").await;
        assert_eq!(stats.buyers[&a], 2);
        assert_eq!(stats.buyers[&b], 1, "zoe's unpaid order is no purchase");
        assert_eq!(stats.bought[&pair(&yolanda, &a)], 4);
        assert_eq!(stats.pairs[&pair(&a, &b)], 1);
        assert_eq!(stats.pairs[&pair(&c, &a)], 1);
        assert!(!stats.pairs.contains_key(&pair(&b, &c)));

        let status = |order: Value, to: &'static str| {
            let client = &client;
            let sally = sally.clone();
            async move {
                let reply = client
                    .send(
                        Method::POST,
                        &format!("/api/v1/orders/{}/status", order["id"].as_str().unwrap()),
                        Some(&sally),
                        Some(json!({"status": to})),
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
            }
        };
        status(z_order, "paid").await;
        let stats = assert_stats_match(&harness, "a payment").await;
        assert_eq!(stats.pairs[&pair(&b, &c)], 1);
        assert_eq!(stats.buyers[&c], 2);

        status(x_order, "refunded").await;
        let stats = assert_stats_match(&harness, "a refund").await;
        assert!(!stats.bought.contains_key(&pair(&xavier, &a)));
        assert_eq!(stats.buyers[&a], 1);
        assert!(!stats.pairs.contains_key(&pair(&a, &b)), "{stats:?}");

        let erased = client
            .send(
                Method::DELETE,
                &format!("/api/v1/customers/{yolanda}"),
                Some(&ada),
                None,
            )
            .await;
        assert!(erased.status.is_success(), "{}", erased.raw);
        let stats = assert_stats_match(&harness, "an erasure").await;
        assert!(!stats.buyers.contains_key(&a), "{stats:?}");
        assert_eq!(
            stats.pairs.keys().cloned().collect::<Vec<_>>(),
            {
                let mut expected = vec![pair(&b, &c), pair(&c, &b)];
                expected.sort();
                expected
            },
            "only zoe's pair is left"
        );

        // A rebuild from the orders gives the same.
        harness.veil.store().rebuild_purchase_stats().await.unwrap();
        assert_eq!(assert_stats_match(&harness, "a rebuild").await, stats);

        // A refund that leaves the customer other purchases: the pairs between what went and what stays are taken
        // out both ways, those among what stays are kept (the three joins of PostgreSQL's delete trigger, 0032).
        let walter = create_customer(&client, &sally, "13900004444", &[]).await;
        let w_order = order(&client, &sally, &walter, &[(&a, 1), (&b, 1)], "paid").await;
        order(&client, &sally, &walter, &[(&c, 1)], "paid").await;
        let before = assert_stats_match(&harness, "walter's orders").await;
        assert_eq!(before.pairs[&pair(&a, &c)], 1);
        status(w_order, "refunded").await;
        let after = assert_stats_match(&harness, "a refund leaving other purchases").await;
        for (x, y) in [(&a, &b), (&b, &a), (&a, &c), (&c, &a)] {
            assert!(!after.pairs.contains_key(&pair(x, y)), "{x} {y}: {after:?}");
        }
        assert_eq!(after.pairs[&pair(&b, &c)], before.pairs[&pair(&b, &c)] - 1);
        assert_eq!(after.pairs[&pair(&c, &b)], before.pairs[&pair(&c, &b)] - 1);
        assert!(after.bought.contains_key(&pair(&walter, &c)));
    }
);
