//! What staff do from the customer page besides reading it: enter an order, pay, cancel or refund one, redeem
//! points, send a message from a template and send a survey's link by SMS. Each form is posted with the CSRF
//! token and checked against the API's view of the same data; refusals come back next to the section with the
//! domain's reason and change nothing; no page, SMS log line or response carries the customer's number in clear
//! (the SMS itself, at the gateway, does).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::users::Role;

use super::{create_customer_via_api, create_customer_via_api_with, Browser};
use crate::messages::{create_template, record_consent, sms_listener, sms_messenger};
use crate::{add_user, assert_no_plaintext, captured_logs, Client, PHONE};

async fn api(
    client: &Client,
    token: &str,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> Value {
    let reply = client.send(method, uri, Some(token), body).await;
    assert!(reply.status.is_success(), "{uri}: {}", reply.raw);
    reply.body
}

async fn product(client: &Client, admin: &str, sku: &str, name: &str, price_fen: i64) -> String {
    api(
        client,
        admin,
        Method::POST,
        "/api/v1/products",
        Some(json!({"sku": sku, "name": name, "category": "tea", "price_fen": price_fen})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The customer's orders through the API, newest first.
async fn orders_of(client: &Client, token: &str, customer: &str) -> Vec<Value> {
    api(
        client,
        token,
        Method::GET,
        &format!("/api/v1/customers/{customer}/orders"),
        None,
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The whole catalogue through the API, products off sale included.
async fn catalogue(client: &Client, token: &str) -> Vec<Value> {
    api(
        client,
        token,
        Method::GET,
        "/api/v1/products?include_inactive=true",
        None,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

async fn balance_of(client: &Client, token: &str, customer: &str) -> i64 {
    api(
        client,
        token,
        Method::GET,
        &format!("/api/v1/customers/{customer}/loyalty"),
        None,
    )
    .await["balance"]
        .as_i64()
        .unwrap()
}

both_backends!(
    web_orders_are_entered_moved_and_points_redeemed_from_the_customer_page,
    |harness| {
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sue", Role::Service, Some("east")).await;
        let client = Client::new(&harness).await;
        let ada = client.login("ada").await;
        let sally_token = client.login("sally").await;
        let tea = product(&client, &ada, "TEA-SET", "功夫茶具套装", 129_950).await;
        let kettle = product(&client, &ada, "KETTLE", "电陶炉烧水壶", 39_900).await;
        let id = create_customer_via_api(&client, &sally_token).await;
        let page_uri = format!("/customers/{id}");

        let mut sally = Browser::signed_in(&client, "sally").await;
        let page = sally.get(&page_uri).await;
        page.assert_says(StatusCode::OK, "Enter an order");
        assert!(
            page.body.contains(&format!(
                "<option value=\"{tea}\">功夫茶具套装 · TEA-SET · CNY 1299.50</option>"
            )),
            "{}",
            page.body
        );
        assert!(page.body.contains("Redeem points"));
        let csrf = page.csrf();

        // Two lines, the second form line left empty: entered paid, priced by the server, points credited.
        let entered = sally
            .post(
                &format!("/customers/{id}/orders"),
                &[
                    ("csrf", &csrf),
                    ("product_1", &tea),
                    ("quantity_1", "2"),
                    ("product_2", ""),
                    ("quantity_2", "1"),
                    ("product_3", &kettle),
                    ("quantity_3", ""),
                    ("status", "paid"),
                ],
            )
            .await;
        assert_eq!(entered.status, StatusCode::SEE_OTHER, "{}", entered.body);
        assert_eq!(
            entered.location(),
            format!("/customers/{id}?order=created#orders")
        );
        let orders = orders_of(&client, &sally_token, &id).await;
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0]["status"], "paid");
        // 2 × 1,299.50 + 1 × 399.00 (an empty quantity box is one unit).
        assert_eq!(orders[0]["total_fen"], 2 * 129_950 + 39_900);
        assert_eq!(balance_of(&client, &sally_token, &id).await, 2998);
        let paid_order = orders[0]["id"].as_str().unwrap().to_owned();
        let page = sally.get(&format!("{page_uri}?order=created")).await;
        assert!(
            page.body.contains("The order was entered."),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("功夫茶具套装 × 2, 电陶炉烧水壶 × 1"),
            "{}",
            page.body
        );
        assert!(page.body.contains("<dd>2998</dd>"), "{}", page.body);
        // A paid order offers a refund only.
        let paid_row = page
            .body
            .split(&format!("/orders/{paid_order}/status"))
            .count();
        assert_eq!(
            paid_row, 2,
            "one status form for the paid order: {}",
            page.body
        );
        assert!(page.body.contains("name=\"status\" value=\"refunded\""));
        assert_no_plaintext(&page.body, "the customer page after an order");

        // Refusals name the form's line and change nothing: quantity 0 on line 1, an unknown product on line 4.
        let refused = sally
            .post(
                &format!("/customers/{id}/orders"),
                &[
                    ("csrf", &csrf),
                    ("product_1", &tea),
                    ("quantity_1", "0"),
                    ("product_4", "no-such-product"),
                    ("quantity_4", "1"),
                    ("status", "placed"),
                ],
            )
            .await;
        refused.assert_says(StatusCode::UNPROCESSABLE_ENTITY, "id=\"order-errors\"");
        assert!(
            refused
                .body
                .contains("Line 1: This number is outside the allowed range."),
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("Line 4: No such product on sale."),
            "{}",
            refused.body
        );
        assert_eq!(orders_of(&client, &sally_token, &id).await.len(), 1);

        // A placed order: paid from its button, then the page offers no more moves for it.
        let placed = sally
            .post(
                &format!("/customers/{id}/orders"),
                &[
                    ("csrf", &csrf),
                    ("product_1", &kettle),
                    ("quantity_1", "1"),
                    ("status", "placed"),
                ],
            )
            .await;
        assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
        let orders = orders_of(&client, &sally_token, &id).await;
        let placed_order = orders
            .iter()
            .find(|order| order["status"] == "placed")
            .unwrap_or_else(|| panic!("a placed order: {orders:?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let page = sally.get(&page_uri).await;
        assert!(page.body.contains("Mark paid"), "{}", page.body);
        let cancelled = sally
            .post(
                &format!("/customers/{id}/orders/{placed_order}/status"),
                &[("csrf", &csrf), ("status", "cancelled")],
            )
            .await;
        assert_eq!(
            cancelled.status,
            StatusCode::SEE_OTHER,
            "{}",
            cancelled.body
        );
        assert_eq!(
            cancelled.location(),
            format!("/customers/{id}?order=cancelled#orders")
        );
        // A cancelled order cannot be paid any more: refused by the domain, nothing moves.
        let late = sally
            .post(
                &format!("/customers/{id}/orders/{placed_order}/status"),
                &[("csrf", &csrf), ("status", "paid")],
            )
            .await;
        assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
        let orders = orders_of(&client, &sally_token, &id).await;
        let moved = orders
            .iter()
            .find(|order| order["id"] == placed_order.as_str())
            .unwrap();
        assert_eq!(moved["status"], "cancelled");
        assert_eq!(balance_of(&client, &sally_token, &id).await, 2998);

        // Redeem 998 points; more than the balance is refused with the balance and takes nothing.
        let redeemed = sally
            .post(
                &format!("/customers/{id}/points/redeem"),
                &[("csrf", &csrf), ("points", "998"), ("reason", "茶叶礼盒")],
            )
            .await;
        assert_eq!(redeemed.status, StatusCode::SEE_OTHER, "{}", redeemed.body);
        assert_eq!(
            redeemed.location(),
            format!("/customers/{id}?order=redeemed#orders")
        );
        assert_eq!(balance_of(&client, &sally_token, &id).await, 2000);
        let too_many = sally
            .post(
                &format!("/customers/{id}/points/redeem"),
                &[("csrf", &csrf), ("points", "2001"), ("reason", "")],
            )
            .await;
        too_many.assert_says(
            StatusCode::CONFLICT,
            "Not enough points: the balance is 2000.",
        );
        let unreadable = sally
            .post(
                &format!("/customers/{id}/points/redeem"),
                &[("csrf", &csrf), ("points", "lots")],
            )
            .await;
        unreadable.assert_says(StatusCode::UNPROCESSABLE_ENTITY, "Points: ");
        assert_eq!(balance_of(&client, &sally_token, &id).await, 2000);

        // The refund takes back what is left of the order's points.
        let refunded = sally
            .post(
                &format!("/customers/{id}/orders/{paid_order}/status"),
                &[("csrf", &csrf), ("status", "refunded")],
            )
            .await;
        assert_eq!(refunded.status, StatusCode::SEE_OTHER, "{}", refunded.body);
        let orders = orders_of(&client, &sally_token, &id).await;
        let moved = orders
            .iter()
            .find(|order| order["id"] == paid_order.as_str())
            .unwrap();
        assert_eq!(moved["status"], "refunded");
        assert_eq!(balance_of(&client, &sally_token, &id).await, 0);
        let page = sally.get(&format!("{page_uri}?order=refunded")).await;
        assert!(
            page.body.contains("The order was refunded"),
            "{}",
            page.body
        );
        assert!(page.body.contains("<td>Refunded</td>"), "{}", page.body);

        // Another customer's order is not moved from this customer's page, though sally sees both.
        let other =
            create_customer_via_api_with(&client, &sally_token, json!({"name": "王小明"})).await;
        let other_order = api(
            &client,
            &sally_token,
            Method::POST,
            &format!("/api/v1/customers/{other}/orders"),
            Some(json!({"items": [{"product_id": tea, "quantity": 1}]})),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let elsewhere = sally
            .post(
                &format!("/customers/{id}/orders/{other_order}/status"),
                &[("csrf", &csrf), ("status", "cancelled")],
            )
            .await;
        assert_eq!(
            elsewhere.status,
            StatusCode::NOT_FOUND,
            "{}",
            elsewhere.body
        );
        assert_eq!(
            orders_of(&client, &sally_token, &other).await[0]["status"],
            "placed"
        );

        // Chinese.
        sally.accept_language = Some("zh-CN");
        let chinese = sally.get(&page_uri).await;
        assert!(chinese.body.contains("录入订单"), "{}", chinese.body);
        assert!(chinese.body.contains("兑换积分"), "{}", chinese.body);

        // A service agent (linked by a ticket assigned to her) reads orders but does not enter them: no form, and a
        // posted one is refused.
        let sue_id = harness
            .veil
            .actor_by_username("sue")
            .await
            .unwrap()
            .user_id
            .to_string();
        api(
            &client,
            &sally_token,
            Method::POST,
            "/api/v1/tickets",
            Some(
                json!({"customer_id": id, "channel": "phone", "category": "inquiry",
                        "subject": "积分", "assignee": sue_id}),
            ),
        )
        .await;
        let mut sue = Browser::signed_in(&client, "sue").await;
        let page = sue.get(&page_uri).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(!page.body.contains("Enter an order"), "{}", page.body);
        assert!(
            !page.body.contains("/status\""),
            "no status buttons: {}",
            page.body
        );
        let sue_csrf = page.csrf();
        let by_service = sue
            .post(
                &format!("/customers/{id}/orders"),
                &[
                    ("csrf", &sue_csrf),
                    ("product_1", &tea),
                    ("quantity_1", "1"),
                ],
            )
            .await;
        assert_eq!(
            by_service.status,
            StatusCode::FORBIDDEN,
            "{}",
            by_service.body
        );
        // Without the CSRF token nothing happens.
        let forged = sally
            .post(
                &format!("/customers/{id}/orders"),
                &[("product_1", &tea), ("quantity_1", "1"), ("status", "paid")],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
        assert_eq!(orders_of(&client, &sally_token, &id).await.len(), 2);
    }
);

both_backends!(
    web_messages_and_survey_links_are_sent_from_the_customer_page,
    |harness| {
        let (port, captured) = sms_listener().await;
        harness.veil.set_messenger(Some(
            sms_messenger(port)
                .with_public_url("https://crm.example.com")
                .unwrap(),
        ));
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let ada = client.login("ada").await;
        let mona = client.login("mona").await;
        let sally_token = client.login("sally").await;
        let id = create_customer_via_api(&client, &sally_token).await;
        let page_uri = format!("/customers/{id}");

        let mut sally = Browser::signed_in(&client, "sally").await;
        let page = sally.get(&page_uri).await;
        assert!(page.body.contains("Messages and surveys"), "{}", page.body);
        assert!(
            page.body.contains("No message templates yet"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("No surveys for this customer."),
            "{}",
            page.body
        );

        create_template(
            &client,
            &mona,
            json!({"name": "care_sms", "channel": "sms", "language": "zh", "purpose": "care",
                   "body": "{{customer.surname}}{{customer.title}}您好，祝您节日快乐！"}),
        )
        .await;
        create_template(
            &client,
            &mona,
            json!({"name": "csat_sms", "channel": "sms", "language": "zh", "purpose": "care",
                   "body": "{{customer.surname}}{{customer.title}}，请为本次服务打分：{{survey.link}}"}),
        )
        .await;
        // A ticket resolved: its CSAT survey is the customer's.
        let ticket = api(
            &client,
            &sally_token,
            Method::POST,
            "/api/v1/tickets",
            Some(json!({"customer_id": id, "channel": "phone", "category": "inquiry", "subject": "发票"})),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let resolved = api(
            &client,
            &sally_token,
            Method::PATCH,
            &format!("/api/v1/tickets/{ticket}"),
            Some(json!({"status": "resolved"})),
        )
        .await;
        let csat = resolved["csat_survey"]["survey_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // And an NPS survey of a campaign, which only admins and managers send.
        let batch = api(
            &client,
            &ada,
            Method::POST,
            "/api/v1/surveys/nps",
            Some(json!({"customer_ids": [id]})),
        )
        .await;
        let nps = batch["surveys"][0]["survey_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let listed = api(
            &client,
            &sally_token,
            Method::GET,
            &format!("/api/v1/customers/{id}/surveys"),
            None,
        )
        .await;
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        let of = |survey: &str| {
            listed
                .iter()
                .find(|row| row["survey_id"] == survey)
                .unwrap()
                .clone()
        };
        assert_eq!(of(&csat)["state"], "open");
        assert_eq!(of(&csat)["ticket_id"], ticket.as_str());
        assert_eq!(of(&csat)["may_send"], true);
        assert_eq!(of(&nps)["may_send"], false, "sally does not run campaigns");
        assert!(
            listed
                .iter()
                .all(|row| row.get("link").is_none() && !row.to_string().contains("/survey/")),
            "no link in the list: {listed:?}"
        );

        let page = sally.get(&page_uri).await;
        let csrf = page.csrf();
        assert!(
            page.body
                .contains("<option value=\"care_sms\">care_sms · SMS</option>"),
            "{}",
            page.body
        );
        // The survey template is offered for surveys only.
        let message_form = page
            .body
            .split("action=\"/customers/")
            .filter(|form| form.contains("/messages\""))
            .collect::<Vec<_>>();
        assert_eq!(message_form.len(), 1, "{}", page.body);
        assert!(!message_form[0]
            .split("</form>")
            .next()
            .unwrap()
            .contains("csat_sms"));
        assert!(
            page.body
                .contains(&format!("/customers/{id}/surveys/{csat}/send")),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains(&format!("/surveys/{nps}/send")),
            "{}",
            page.body
        );

        // No consent yet: refused with the reason next to the forms; nothing reaches the gateway.
        let refused = sally
            .post(
                &format!("/customers/{id}/messages"),
                &[("csrf", &csrf), ("template", "care_sms")],
            )
            .await;
        refused.assert_says(StatusCode::UNPROCESSABLE_ENTITY, "id=\"message-errors\"");
        assert!(
            refused.body.contains("record a consent first"),
            "{}",
            refused.body
        );
        assert!(captured.lock().unwrap().is_empty());

        record_consent(&client, &sally_token, &id, "customer_service", "phone").await;
        let sent = sally
            .post(
                &format!("/customers/{id}/messages"),
                &[("csrf", &csrf), ("template", "care_sms")],
            )
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        assert_eq!(
            sent.location(),
            format!("/customers/{id}?message=sent#messages")
        );
        {
            let captured = captured.lock().unwrap();
            assert_eq!(captured.len(), 1);
            let sms = String::from_utf8_lossy(&captured[0].1);
            assert!(sms.contains(PHONE), "the gateway gets the number: {sms}");
            assert!(sms.contains("节日快乐"), "{sms}");
        }
        let page = sally.get(&format!("{page_uri}?message=sent")).await;
        assert!(page.body.contains("The message was sent."), "{}", page.body);
        assert!(
            page.body.contains("<td class=\"masked\">139****4321</td>"),
            "{}",
            page.body
        );
        assert_no_plaintext(&page.body, "the customer page after a message");

        // A survey template is not a plain message; a plain template cannot carry a survey.
        let survey_template = sally
            .post(
                &format!("/customers/{id}/messages"),
                &[("csrf", &csrf), ("template", "csat_sms")],
            )
            .await;
        survey_template.assert_says(StatusCode::UNPROCESSABLE_ENTITY, "send it from a survey");
        let no_link = sally
            .post(
                &format!("/customers/{id}/surveys/{csat}/send"),
                &[("csrf", &csrf), ("template", "care_sms")],
            )
            .await;
        no_link.assert_says(StatusCode::UNPROCESSABLE_ENTITY, "choose a survey template");
        // A survey is sent from its own customer's page only.
        let other =
            create_customer_via_api_with(&client, &sally_token, json!({"name": "王小明"})).await;
        let elsewhere = sally
            .post(
                &format!("/customers/{other}/surveys/{csat}/send"),
                &[("csrf", &csrf), ("template", "csat_sms")],
            )
            .await;
        assert_eq!(
            elsewhere.status,
            StatusCode::NOT_FOUND,
            "{}",
            elsewhere.body
        );
        // Sally cannot send the campaign's survey, even by posting the form herself.
        let nps_by_sales = sally
            .post(
                &format!("/customers/{id}/surveys/{nps}/send"),
                &[("csrf", &csrf), ("template", "csat_sms")],
            )
            .await;
        assert_eq!(
            nps_by_sales.status,
            StatusCode::FORBIDDEN,
            "{}",
            nps_by_sales.body
        );
        assert_eq!(captured.lock().unwrap().len(), 1);

        let survey_sent = sally
            .post(
                &format!("/customers/{id}/surveys/{csat}/send"),
                &[("csrf", &csrf), ("template", "csat_sms")],
            )
            .await;
        assert_eq!(
            survey_sent.status,
            StatusCode::SEE_OTHER,
            "{}",
            survey_sent.body
        );
        assert_eq!(
            survey_sent.location(),
            format!("/customers/{id}?message=survey_sent#messages")
        );
        let token = {
            let captured = captured.lock().unwrap();
            assert_eq!(captured.len(), 2);
            let sms = String::from_utf8_lossy(&captured[1].1).into_owned();
            let start = sms
                .find("https://crm.example.com/survey/")
                .unwrap_or_else(|| panic!("a link: {sms}"));
            sms[start + "https://crm.example.com/survey/".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
        };
        let page = sally.get(&format!("{page_uri}?message=survey_sent")).await;
        assert!(
            page.body.contains("The survey link was sent."),
            "{}",
            page.body
        );
        assert!(page.body.contains("link sent 1 times"), "{}", page.body);
        assert!(page.body.contains("Send reminder"), "{}", page.body);
        assert!(
            !page.body.contains(&token),
            "the page never shows the sent link"
        );

        // Answered through the link it received, the survey shows as answered and offers no send.
        let (public, nonce) = crate::feedback::open_survey(&client, &token).await;
        assert_eq!(public.status, StatusCode::OK, "{}", public.raw);
        let answered = crate::feedback::post_survey(&client, &token, &nonce, "5", "").await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.raw);
        let page = sally.get(&page_uri).await;
        assert!(page.body.contains("CSAT · answered"), "{}", page.body);
        assert!(
            !page.body.contains(&format!("/surveys/{csat}/send")),
            "{}",
            page.body
        );

        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert_no_plaintext(&logs, "the logs");
        assert!(!logs.contains(&token), "no sent link in the logs");
    }
);

both_backends!(web_products_are_kept_on_the_catalogue_page, |harness| {
    add_user(&harness, "mona", Role::Manager, Some("east")).await;
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let mona_token = client.login("mona").await;

    let mut mona = Browser::signed_in(&client, "mona").await;
    let page = mona.get("/products").await;
    page.assert_says(StatusCode::OK, "No products.");
    assert!(
        page.body.contains("href=\"/products\""),
        "in the navigation"
    );
    let csrf = page.csrf();

    // Yuan typed with a thousands separator become integer fen; the category is stored in lower case.
    let added = mona
        .post(
            "/products",
            &[
                ("csrf", &csrf),
                ("sku", "TEA-SET"),
                ("name", "功夫茶具套装"),
                ("category", "Tea"),
                ("price", "1,299.50"),
                ("currency", "CNY"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), "/products?done=created");
    let products = catalogue(&client, &mona_token).await;
    assert_eq!(products.len(), 1, "{products:?}");
    assert_eq!(products[0]["price_fen"], 129_950);
    assert_eq!(products[0]["category"], "tea");
    assert_eq!(products[0]["active"], true);
    let id = products[0]["id"].as_str().unwrap().to_owned();

    // Refusals keep what was typed and add nothing: a taken SKU, a price with three decimals.
    let taken = mona
        .post(
            "/products",
            &[
                ("csrf", &csrf),
                ("sku", "TEA-SET"),
                ("name", "另一套"),
                ("category", "tea"),
                ("price", "99"),
            ],
        )
        .await;
    taken.assert_says(StatusCode::CONFLICT, "That SKU is taken");
    assert!(taken.body.contains("value=\"另一套\""), "{}", taken.body);
    let bad_price = mona
        .post(
            "/products",
            &[
                ("csrf", &csrf),
                ("sku", "KETTLE"),
                ("name", "烧水壶"),
                ("category", "tea"),
                ("price", "12.345"),
            ],
        )
        .await;
    bad_price.assert_says(StatusCode::UNPROCESSABLE_ENTITY, "Price: ");
    assert_eq!(catalogue(&client, &mona_token).await.len(), 1);

    // A change of price and availability; the box left unticked takes it off sale.
    let changed = mona
        .post(
            &format!("/products/{id}"),
            &[
                ("csrf", &csrf),
                ("name", "功夫茶具套装（新）"),
                ("category", "tea"),
                ("price", "1199"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let products = catalogue(&client, &mona_token).await;
    assert_eq!(products[0]["price_fen"], 119_900);
    assert_eq!(products[0]["active"], false);
    assert_eq!(products[0]["name"], "功夫茶具套装（新）");
    let page = mona.get("/products?done=updated&category=tea").await;
    page.assert_says(StatusCode::OK, "The product was changed.");
    assert!(page.body.contains("CNY 1199.00"), "{}", page.body);
    assert!(page.body.contains("value=\"1199.00\""), "{}", page.body);
    let other = mona.get("/products?category=shoes").await;
    other.assert_says(StatusCode::OK, "No products.");
    mona.accept_language = Some("zh-CN");
    mona.get("/products")
        .await
        .assert_says(StatusCode::OK, "添加产品");

    // Salespeople order from the catalogue but do not keep it.
    let mut sally = Browser::signed_in(&client, "sally").await;
    let dashboard = sally.get("/dashboard").await;
    assert!(
        !dashboard.body.contains("href=\"/products\""),
        "not in sally's navigation"
    );
    assert_eq!(sally.get("/products").await.status, StatusCode::FORBIDDEN);
    let sally_csrf = dashboard.csrf();
    let by_sales = sally
        .post(
            "/products",
            &[
                ("csrf", &sally_csrf),
                ("sku", "X-1"),
                ("name", "x"),
                ("category", "x"),
                ("price", "1"),
            ],
        )
        .await;
    assert_eq!(by_sales.status, StatusCode::FORBIDDEN, "{}", by_sales.body);
    assert_eq!(catalogue(&client, &mona_token).await.len(), 1);
});
