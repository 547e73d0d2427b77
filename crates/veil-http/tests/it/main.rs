//! HTTP tests: the real router driven in-process with `tower::ServiceExt::oneshot`, over SQLite and PostgreSQL.

use std::io::Write;
use std::sync::{Arc, Mutex, Once, OnceLock};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use veil_app::both_backends;
use veil_app::testing::Harness;
use veil_app::users::{Password, Role};
use veil_http::{app, AppState};

mod care;
mod deals;
mod feedback;
mod imports;
mod industries;
mod matrix;
mod messages;
mod orders;
mod pool;
mod surveys;
mod tickets;
mod web;

const PASSWORD: &str = "correct horse battery";
const NAME: &str = "司马相如";
const PHONE: &str = "13987654321";
const ID_NUMBER: &str = "330106197312210034";
const EMAIL: &str = "xiangru.sima@example.com";
const BANK_CARD: &str = "6222021234567890128";

/// Every log line of the test process, to prove no plaintext is ever logged.
fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        captured_logs().lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .init();
    });
}

struct Client {
    router: Router,
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
    raw: String,
}

impl Client {
    async fn new(harness: &Harness) -> Client {
        capture_logs();
        // The harness owns the Veil; the router gets a second handle on the same database and keys.
        let veil = harness.reopen().await;
        // Same configuration as the harness's handle.
        if let Some(settings) = harness.veil.backup_settings() {
            veil.set_backup_settings((*settings).clone());
        }
        veil.share_messenger(harness.veil.messenger());
        veil.set_pool_rules((*harness.veil.pool_rules()).clone());
        let veil = Arc::new(veil);
        // Rate limits have their own tests; here they would only turn long tables of cases into 429s.
        Client {
            router: app(AppState::new(veil).with_rate_limits(veil_http::RateLimits::unlimited())),
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        self.send_request(request).await
    }

    async fn send_request(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
            raw,
        }
    }

    async fn login(&self, username: &str) -> String {
        let reply = self
            .send(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
        reply.body["token"].as_str().unwrap().to_owned()
    }
}

async fn add_user(harness: &Harness, username: &str, role: Role, team: Option<&str>) {
    harness
        .veil
        .add_user(username, role, team, &Password::new(PASSWORD.to_owned()))
        .await
        .unwrap();
}

fn full_customer() -> Value {
    json!({
        "name": NAME, "phone": PHONE, "id_number": ID_NUMBER, "email": EMAIL,
        "address": "浙江省杭州市西湖区文三路100号2幢301室", "bank_card": BANK_CARD,
        "tags": ["vip"], "source": "官网", "industry": "finance", "attributes": {"risk_level": "C3"}
    })
}

fn assert_problem(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.raw);
    assert_eq!(
        reply.content_type, "application/problem+json",
        "{}",
        reply.raw
    );
    assert_eq!(reply.body["code"], code, "{}", reply.raw);
    assert_eq!(reply.body["status"], status.as_u16());
    assert!(
        reply.body["title"].is_string()
            && reply.body["detail"].is_string()
            && reply.body["type"].is_string()
    );
}

fn assert_no_plaintext(text: &str, what: &str) {
    for value in [
        NAME,
        PHONE,
        ID_NUMBER,
        EMAIL,
        BANK_CARD,
        "文三路100号",
        "330106197312210035",
    ] {
        assert!(!text.contains(value), "{value} found in {what}");
    }
}

/// The audit entries of `action` (oldest first, at most 500).
async fn audit_of(harness: &Harness, action: &str) -> Vec<veil_store::AuditEntry> {
    audit_where(
        harness,
        veil_store::AuditFilter {
            action: Some(action.to_owned()),
            ..veil_store::AuditFilter::default()
        },
    )
    .await
}

/// The audit entries `filter` selects (oldest first, at most 500).
async fn audit_where(
    harness: &Harness,
    filter: veil_store::AuditFilter,
) -> Vec<veil_store::AuditEntry> {
    harness
        .veil
        .store()
        .query_audit(&filter, 500)
        .await
        .unwrap()
}

both_backends!(create_list_get_are_masked, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let token = client.login("sally").await;
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(full_customer()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    assert_no_plaintext(&created.raw, "the create response");
    let body = &created.body;
    assert_eq!(body["name"], "司马**");
    assert_eq!(body["phone"], "139****4321");
    assert_eq!(body["id_number"], "330106********0034");
    assert_eq!(body["email"], "x***@example.com");
    assert_eq!(body["address"], "浙江省杭州市西湖区****");
    assert_eq!(
        body["birth_date"], "1973-**-**",
        "birth date derived from the ID number"
    );
    assert_eq!(body["gender"], "male");
    assert_eq!(body["team"], "east");
    assert_eq!(body["tags"], json!(["vip"]));
    let masked: Vec<&str> = body["masked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in [
        "name",
        "phone",
        "id_number",
        "email",
        "address",
        "bank_card",
        "birth_date",
    ] {
        assert!(masked.contains(&field), "{field} not listed as masked");
    }
    let id = body["id"].as_str().unwrap().to_owned();

    let list = client
        .send(
            Method::GET,
            "/api/v1/customers?limit=10",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_no_plaintext(&list.raw, "the list");
    let one = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["phone"], "139****4321");
    assert_no_plaintext(&one.raw, "the get response");

    // Exact search with the number written another way; the query string never reaches the logs.
    let found = client
        .send(
            Method::GET,
            "/api/v1/customers?phone=%2B86%20139-8765-4321",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.raw);
    assert_eq!(found.body["items"][0]["id"], id.as_str());
    let by_id = client
        .send(
            Method::GET,
            &format!("/api/v1/customers?id_number={ID_NUMBER}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(by_id.body["items"].as_array().unwrap().len(), 1);
    let two = client
        .send(
            Method::GET,
            &format!("/api/v1/customers?phone={PHONE}&email={EMAIL}"),
            Some(&token),
            None,
        )
        .await;
    assert_problem(&two, StatusCode::BAD_REQUEST, "bad_request");
    let bad_search = client
        .send(
            Method::GET,
            "/api/v1/customers?phone=12345",
            Some(&token),
            None,
        )
        .await;
    assert_problem(
        &bad_search,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(logs.contains("/api/v1/customers"), "request logging is on");
    assert_no_plaintext(&logs, "the logs");
});

both_backends!(bad_input_is_422_per_field_and_writes_nothing, |harness| {
    add_user(&harness, "sally", Role::Sales, None).await;
    let client = Client::new(&harness).await;
    let token = client.login("sally").await;
    let cases = [
        (
            "id_number",
            json!({"name": "张三", "id_number": "330106197312210035"}),
        ),
        (
            "id_number",
            json!({"name": "张三", "id_number": "330106197302300034"}),
        ),
        ("phone", json!({"name": "张三", "phone": "1398765432"})),
        ("phone", json!({"name": "张三", "phone": "10987654321"})),
        ("email", json!({"name": "张三", "email": "not-an-email"})),
        (
            "bank_card",
            json!({"name": "张三", "bank_card": "6222021234567890123"}),
        ),
        ("name", json!({"phone": PHONE})),
    ];
    for (field, body) in cases {
        let before = harness.veil.count_customers().await.unwrap();
        let reply = client
            .send(Method::POST, "/api/v1/customers", Some(&token), Some(body))
            .await;
        assert_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let errors = reply.body["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|error| error["field"] == field),
            "{field}: {}",
            reply.raw
        );
        assert_no_plaintext(&reply.raw, "a validation error");
        assert_eq!(
            harness.veil.count_customers().await.unwrap(),
            before,
            "{field}: nothing written"
        );
    }
    // Several problems are reported at once.
    let many = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(json!({"name": "张三", "phone": "1", "email": "x"})),
        )
        .await;
    assert_eq!(
        many.body["errors"].as_array().unwrap().len(),
        2,
        "{}",
        many.raw
    );
    // Malformed JSON is a 400, an unknown field a 422; neither writes.
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/customers")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let broken = client.send_request(request).await;
    assert_problem(&broken, StatusCode::BAD_REQUEST, "bad_request");
    request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/customers")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"name": "张三", "mobile": PHONE}).to_string(),
        ))
        .unwrap();
    let unknown = client.send_request(request).await;
    assert_problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert_eq!(harness.veil.count_customers().await.unwrap(), 0);
});

both_backends!(duplicates_are_409_naming_the_existing_customer, |harness| {
    add_user(&harness, "sally", Role::Sales, None).await;
    let client = Client::new(&harness).await;
    let token = client.login("sally").await;
    let first = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(full_customer()),
        )
        .await;
    let existing = first.body["id"].as_str().unwrap().to_owned();
    let same_phone = json!({"name": "另一位", "phone": "139 8765 4321"});
    let duplicate = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(same_phone.clone()),
        )
        .await;
    assert_problem(&duplicate, StatusCode::CONFLICT, "duplicate");
    assert_eq!(duplicate.body["existing_customer_id"], existing.as_str());
    assert_eq!(duplicate.body["field"], "phone");
    assert_no_plaintext(&duplicate.raw, "the duplicate error");
    let same_id = json!({"name": "又一位", "id_number": ID_NUMBER});
    let duplicate = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&token),
            Some(same_id),
        )
        .await;
    assert_eq!(duplicate.body["field"], "id_number");
    let forced = client
        .send(
            Method::POST,
            "/api/v1/customers?allow_duplicate=true",
            Some(&token),
            Some(same_phone),
        )
        .await;
    assert_eq!(forced.status, StatusCode::CREATED, "{}", forced.raw);
    assert_eq!(harness.veil.count_customers().await.unwrap(), 2);
});

both_backends!(authentication_and_scopes, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    add_user(&harness, "mona", Role::Manager, Some("east")).await;
    add_user(&harness, "dan", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let anonymous = client
        .send(Method::GET, "/api/v1/customers", None, None)
        .await;
    assert_problem(&anonymous, StatusCode::UNAUTHORIZED, "unauthenticated");
    let forged = client
        .send(Method::GET, "/api/v1/customers", Some("veil_forged"), None)
        .await;
    assert_problem(&forged, StatusCode::UNAUTHORIZED, "unauthenticated");
    let wrong = client
        .send(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "sally", "password": "nope nope nope"})),
        )
        .await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "unauthenticated");

    let sally = client.login("sally").await;
    let sam = client.login("sam").await;
    let mona = client.login("mona").await;
    let dan = client.login("dan").await;
    let me = client
        .send(Method::GET, "/api/v1/auth/me", Some(&sally), None)
        .await;
    assert_eq!(me.body["role"], "sales");
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(full_customer()),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/customers/{id}");

    // Another salesperson: the record does not exist for them, in every verb and in search.
    assert_problem(
        &client.send(Method::GET, &path, Some(&sam), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &client
            .send(
                Method::PATCH,
                &path,
                Some(&sam),
                Some(json!({"tags": ["x"]})),
            )
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &client.send(Method::DELETE, &path, Some(&sam), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let probe = client
        .send(
            Method::GET,
            &format!("/api/v1/customers?phone={PHONE}"),
            Some(&sam),
            None,
        )
        .await;
    assert_eq!(probe.body["items"], json!([]));
    // The DPO reads no customer data by default.
    assert_problem(
        &client
            .send(Method::GET, "/api/v1/customers", Some(&dan), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // The owner may edit but not erase; the team manager may erase.
    let patched = client
        .send(
            Method::PATCH,
            &path,
            Some(&sally),
            Some(json!({"phone": "13700001111", "tags": ["vip", "回访"]})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.raw);
    assert_eq!(patched.body["phone"], "137****1111");
    assert_problem(
        &client.send(Method::DELETE, &path, Some(&sally), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        client
            .send(Method::GET, &path, Some(&mona), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        client
            .send(Method::DELETE, &path, Some(&mona), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_problem(
        &client.send(Method::GET, &path, Some(&sally), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &client
            .send(
                Method::GET,
                "/api/v1/customers/not-a-uuid",
                Some(&sally),
                None,
            )
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Logout ends the token at once.
    assert_eq!(
        client
            .send(Method::POST, "/api/v1/auth/logout", Some(&sally), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_problem(
        &client
            .send(Method::GET, "/api/v1/customers", Some(&sally), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
});

both_backends!(system_endpoints_and_openapi, |harness| {
    let client = Client::new(&harness).await;
    let health = client.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let metrics = client.send(Method::GET, "/metrics", None, None).await;
    assert!(
        metrics
            .raw
            .contains("veil_http_responses_total{class=\"2xx\"}"),
        "{}",
        metrics.raw
    );
    let missing = client.send(Method::GET, "/nope", None, None).await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found");
    let openapi = client
        .send(Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(openapi.status, StatusCode::OK);
    let paths = openapi.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/customers",
        "/api/v1/customers/{id}",
        "/api/v1/auth/login",
        "/healthz",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(paths["/api/v1/customers/{id}"]["delete"].is_object());
    assert!(openapi.body["components"]["schemas"]["CustomerView"].is_object());
});

both_backends!(notes_are_masked_before_they_are_stored, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let sam = client.login("sam").await;
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(full_customer()),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/customers/{id}/notes");
    let body = format!("回访：客户换了新手机{PHONE}，银行卡{BANK_CARD}，邮件{EMAIL}");
    let note = client
        .send(
            Method::POST,
            &path,
            Some(&sally),
            Some(json!({ "body": body })),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.raw);
    assert_no_plaintext(&note.raw, "the note response");
    assert!(
        note.body["body"].as_str().unwrap().contains("139****4321"),
        "{}",
        note.raw
    );
    assert!(
        note.body["pii"].as_array().unwrap().len() >= 3,
        "{}",
        note.raw
    );
    let listed = client.send(Method::GET, &path, Some(&sally), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_no_plaintext(&listed.raw, "the note list");
    assert_problem(
        &client.send(Method::GET, &path, Some(&sam), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &client
            .send(Method::POST, &path, Some(&sam), Some(json!({"body": "hi"})))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let empty = client
        .send(Method::POST, &path, Some(&sally), Some(json!({"body": ""})))
        .await;
    assert_problem(
        &empty,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert_no_plaintext(&logs, "the logs");
});

both_backends!(policies_are_readable_by_governance_roles_only, |harness| {
    add_user(&harness, "ada", Role::Admin, None).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    add_user(&harness, "sally", Role::Sales, None).await;
    let client = Client::new(&harness).await;
    let dora = client.login("dora").await;
    let sally = client.login("sally").await;
    let read = client
        .send(Method::GET, "/api/v1/policies", Some(&dora), None)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.raw);
    assert_eq!(read.body["version"], 0);
    assert!(
        read.body["document"]["fields"]["phone"].is_object(),
        "{}",
        read.raw
    );
    assert_problem(
        &client
            .send(Method::GET, "/api/v1/policies", Some(&sally), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // A recorded change shows up with its reason.
    let ada = harness.veil.actor_by_username("ada").await.unwrap();
    let document = veil_mask::policy::Policy::default_policy().to_json();
    harness
        .veil
        .record_policy_change(&ada, &document, "annual review")
        .await
        .unwrap();
    let read = client
        .send(Method::GET, "/api/v1/policies", Some(&dora), None)
        .await;
    assert_eq!(read.body["version"], 1);
    assert_eq!(read.body["history"][0]["reason"], "annual review");
});

/// Sends a GET and keeps the response headers (which `Reply` drops); `peer` plays the TCP peer address that
/// `veil serve` attaches as `ConnectInfo`.
async fn get_with_headers(
    router: &Router,
    uri: &str,
    token: Option<&str>,
    peer: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(Method::GET).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request.body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        let address: std::net::SocketAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(address));
    }
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn assert_rate_limited(status: StatusCode, headers: &axum::http::HeaderMap, body: &Value) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let retry_after: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
}

both_backends!(security_headers_on_every_response, |harness| {
    capture_logs();
    let veil = Arc::new(harness.reopen().await);
    let plain = app(AppState::new(veil.clone()));
    let tls = app(AppState::new(veil).with_tls(true));
    for (router, hsts) in [(&plain, false), (&tls, true)] {
        for (uri, expected) in [
            ("/healthz", StatusCode::OK),
            ("/api/v1/auth/me", StatusCode::UNAUTHORIZED),
            ("/nope", StatusCode::NOT_FOUND),
        ] {
            let (status, headers, body) = get_with_headers(router, uri, None, None).await;
            assert_eq!(status, expected, "{uri}: {body}");
            for (name, value) in [
                ("x-content-type-options", "nosniff"),
                ("referrer-policy", "no-referrer"),
                ("cache-control", "no-store"),
                ("x-frame-options", "DENY"),
                (
                    "content-security-policy",
                    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                ),
                (
                    "permissions-policy",
                    "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
                ),
            ] {
                assert_eq!(
                    headers.get(name).and_then(|value| value.to_str().ok()),
                    Some(value),
                    "{name} on {uri} ({status})"
                );
            }
            assert_eq!(
                headers
                    .get("strict-transport-security")
                    .and_then(|value| value.to_str().ok()),
                hsts.then_some("max-age=31536000"),
                "HSTS only under TLS ({uri})"
            );
        }
    }
});

both_backends!(exact_searches_are_rate_limited_per_user, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    capture_logs();
    let veil = Arc::new(harness.reopen().await);
    let limits = veil_http::RateLimits {
        exact_search_per_user: veil_http::RateLimit::per_minute(1, 3),
        ..veil_http::RateLimits::default()
    };
    let client = Client {
        router: app(AppState::new(veil).with_rate_limits(limits)),
    };
    let sally = client.login("sally").await;
    let sam = client.login("sam").await;
    let searches = [
        format!("/api/v1/customers?phone={PHONE}"),
        format!("/api/v1/customers?id_number={ID_NUMBER}"),
        format!("/api/v1/customers?email={EMAIL}"),
    ];
    for uri in &searches {
        let (status, _, body) = get_with_headers(&client.router, uri, Some(&sally), None).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    // The fourth in the window, by any field, even percent-encoded, is refused; and it is not logged with its value.
    for uri in [
        format!("/api/v1/customers?bank_card={BANK_CARD}"),
        format!("/api/v1/customers?%70hone={PHONE}"),
    ] {
        let (status, headers, body) =
            get_with_headers(&client.router, &uri, Some(&sally), None).await;
        assert_rate_limited(status, &headers, &body);
        assert_no_plaintext(&body.to_string(), "a rate-limit refusal");
    }
    // Listing without an exact value is not a search; another user has their own budget.
    let (status, _, body) =
        get_with_headers(&client.router, "/api/v1/customers", Some(&sally), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = get_with_headers(&client.router, &searches[0], Some(&sam), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert_no_plaintext(&logs, "the logs");
});

both_backends!(rate_limits_per_user_and_address, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    capture_logs();
    let veil = Arc::new(harness.reopen().await);
    let sally = veil
        .login("sally", &Password::new(PASSWORD.to_owned()))
        .await
        .unwrap();
    let sally = sally.token.expose().to_owned();
    let sam = veil
        .login("sam", &Password::new(PASSWORD.to_owned()))
        .await
        .unwrap();
    let sam = sam.token.expose().to_owned();
    let router = app(AppState::new(veil).with_rate_limits(veil_http::RateLimits {
        per_user: veil_http::RateLimit::per_minute(1, 2),
        exact_search_per_user: veil_http::RateLimit::per_minute(1, 2),
        per_client: veil_http::RateLimit::per_minute(1, 2),
    }));
    // Per user, whatever address they come from; the address budget is for requests without a valid token.
    for peer in ["192.0.2.1:4000", "192.0.2.2:4000"] {
        let (status, _, body) =
            get_with_headers(&router, "/api/v1/auth/me", Some(&sally), Some(peer)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) =
        get_with_headers(&router, "/api/v1/auth/me", Some(&sally), Some("[::1]:1")).await;
    assert_rate_limited(status, &headers, &body);
    let csp = headers.contains_key("content-security-policy");
    assert!(csp, "refusals carry the security headers");
    let (status, _, body) = get_with_headers(&router, "/api/v1/auth/me", Some(&sam), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Anonymous requests and invalid tokens count against the client address.
    let (status, _, _) = get_with_headers(&router, "/healthz", None, Some("192.0.2.1:4000")).await;
    assert_eq!(status, StatusCode::OK);
    let guessed = Some("guessed");
    let (status, _, _) =
        get_with_headers(&router, "/api/v1/auth/me", guessed, Some("192.0.2.1:5000")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, body) =
        get_with_headers(&router, "/healthz", None, Some("192.0.2.1:6000")).await;
    assert_rate_limited(status, &headers, &body);
    // The page assets a browser loads with every page are not charged (an office shares one address).
    for asset in ["/static/veil.css", "/static/veil.js"] {
        let (status, _, _) = get_with_headers(&router, asset, None, Some("192.0.2.1:7000")).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
    }
    let (status, headers, body) =
        get_with_headers(&router, "/static/other.css", None, Some("192.0.2.1:7000")).await;
    assert_rate_limited(status, &headers, &body);
    let (status, _, _) = get_with_headers(&router, "/healthz", None, Some("192.0.2.9:4000")).await;
    assert_eq!(status, StatusCode::OK, "another address has its own budget");
    // Without a peer address (in-process callers) there is one shared bucket.
    let (ok, refused) = (StatusCode::OK, StatusCode::TOO_MANY_REQUESTS);
    for expected in [ok, ok, refused] {
        let (status, _, _) = get_with_headers(&router, "/healthz", None, None).await;
        assert_eq!(status, expected);
    }
});

both_backends!(authorisation_matrix, |harness| {
    matrix::run(&harness).await;
});

// ---- Authentication security: lock-outs, MFA enrolment and step-up, disabled users ----

/// POSTs JSON, optionally as if from TCP peer `peer`; returns status, headers and the parsed body.
async fn post_from(
    router: &Router,
    uri: &str,
    token: Option<&str>,
    body: Value,
    peer: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request.body(Body::from(body.to_string())).unwrap();
    if let Some(peer) = peer {
        let address: std::net::SocketAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(address));
    }
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn totp_now(secret: &veil_app::mfa::TotpSecret, offset_steps: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let step = now / veil_app::mfa::TOTP_STEP_SECONDS + offset_steps;
    secret
        .code_at(step * veil_app::mfa::TOTP_STEP_SECONDS)
        .unwrap()
}

fn assert_locked(status: StatusCode, headers: &axum::http::HeaderMap, body: &Value) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "locked", "{body}");
    assert_eq!(body["status"], 429);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    let retry: u64 = headers
        .get(header::RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

both_backends!(http_login_lockout_is_429_with_retry_after, |harness| {
    add_user(&harness, "lena", Role::Sales, None).await;
    add_user(&harness, "vera", Role::Sales, None).await;
    let client = Client::new(&harness).await;
    let router = &client.router;
    let login = "/api/v1/auth/login";
    let wrong = |username: &str| json!({"username": username, "password": "not her password"});
    let right = |username: &str| json!({"username": username, "password": PASSWORD});

    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        let (status, _, body) = post_from(router, login, None, wrong("lena"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["code"], "unauthenticated");
        let (status, _, body) = post_from(router, login, None, wrong("ghost"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Locked: even the right password gets 429 with Retry-After.
    let (status, headers, body) = post_from(router, login, None, right("lena"), None).await;
    assert_locked(status, &headers, &body);
    known.push(body);
    // An unknown username gets the very same answer.
    let (status, headers, body) = post_from(router, login, None, right("ghost"), None).await;
    assert_locked(status, &headers, &body);
    unknown.push(body);
    let shape = |body: &Value| {
        let mut body = body.clone();
        body["detail"] = Value::Null; // the seconds left may differ by one
        body
    };
    assert_eq!(shape(&known[0]), shape(&unknown[0]));
    // Other accounts are unaffected.
    let (status, _, body) = post_from(router, login, None, right("vera"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Per client address: 20 failures from one peer lock that peer out, whoever it claims to be.
    for index in 0..20 {
        let (status, _, body) = post_from(
            router,
            login,
            None,
            wrong(&format!("probe{index}")),
            Some("192.0.2.77:40000"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{index}: {body}");
    }
    let (status, headers, body) =
        post_from(router, login, None, right("vera"), Some("192.0.2.77:40001")).await;
    assert_locked(status, &headers, &body);
    let (status, _, body) =
        post_from(router, login, None, right("vera"), Some("192.0.2.78:40000")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
});

both_backends!(http_mfa_enroll_confirm_verify_flow, |harness| {
    add_user(&harness, "ada", Role::Admin, None).await;
    let client = Client::new(&harness).await;
    let router = &client.router;
    let login = "/api/v1/auth/login";

    let (status, _, body) = post_from(
        router,
        login,
        None,
        json!({"username": "ada", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mfa_enrollment_required"], true, "{body}");
    assert_eq!(body["mfa_verified"], false);
    let token = body["token"].as_str().unwrap().to_owned();
    let me = client
        .send(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await;
    assert_eq!(me.body["mfa_enabled"], false, "{}", me.raw);
    assert_eq!(me.body["mfa_enrollment_required"], true);

    // Enrolment and confirmation need a token.
    let (status, _, _) = post_from(router, "/api/v1/auth/mfa/enroll", None, json!({}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Confirming before enrolling is a conflict.
    let (status, _, body) = post_from(
        router,
        "/api/v1/auth/mfa/confirm",
        Some(&token),
        json!({"code": "123456"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, _, body) = post_from(
        router,
        "/api/v1/auth/mfa/enroll",
        Some(&token),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret_text = body["secret"].as_str().unwrap().to_owned();
    let uri = body["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with(&format!(
            "otpauth://totp/Veil:ada?secret={secret_text}&issuer=Veil"
        )),
        "{uri}"
    );
    let secret = veil_app::mfa::TotpSecret::from_base32(&secret_text).unwrap();

    let (status, _, body) = post_from(
        router,
        "/api/v1/auth/mfa/confirm",
        Some(&token),
        json!({"code": "12ab"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "code", "{body}");
    let (status, _, body) = post_from(
        router,
        "/api/v1/auth/mfa/confirm",
        Some(&token),
        json!({"code": totp_now(&secret, 0)}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let recovery: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    let me = client
        .send(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await;
    assert_eq!(me.body["mfa_enabled"], true, "{}", me.raw);
    assert_eq!(me.body["mfa_enrollment_required"], false);

    // Login now needs the second factor.
    let (status, headers, body) = post_from(
        router,
        login,
        None,
        json!({"username": "ada", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "mfa_required");
    assert_eq!(headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    let code = totp_now(&secret, 1);
    let with_code = json!({"username": "ada", "password": PASSWORD, "totp": code});
    let (status, _, body) = post_from(router, login, None, with_code.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mfa_verified"], true);
    let stepped_up = body["token"].as_str().unwrap().to_owned();
    // Replaying the same code is refused.
    let (status, _, body) = post_from(router, login, None, with_code, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "mfa_invalid");
    // A recovery code in its own field works once.
    let with_recovery =
        json!({"username": "ada", "password": PASSWORD, "recovery_code": recovery[0]});
    let (status, _, body) = post_from(router, login, None, with_recovery.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = post_from(router, login, None, with_recovery, None).await;
    assert_eq!(body["code"], "mfa_invalid", "{body}");
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Step-up on the first token (which logged in before MFA existed).
    let verify = "/api/v1/auth/mfa/verify";
    let (status, _, body) = post_from(
        router,
        verify,
        Some(&token),
        json!({"code": "000000x"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, body) = post_from(
        router,
        verify,
        Some(&token),
        json!({"code": recovery[1]}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["mfa_verified_at"].is_string() && body["step_up_valid_until"].is_string());
    let veil = &harness.veil;
    let window = veil_app::mfa::STEP_UP_WINDOW_MS;
    assert!(veil.recent_mfa(&token, window).await.unwrap());
    assert!(veil.recent_mfa(&stepped_up, window).await.unwrap());
    let (status, _, body) = post_from(
        router,
        verify,
        Some(&token),
        json!({"code": recovery[1]}),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "used recovery code: {body}"
    );
    // Enrolling again while active is a conflict.
    let (status, _, _) = post_from(
        router,
        "/api/v1/auth/mfa/enroll",
        Some(&token),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Neither the secret nor any recovery code was ever logged.
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(!logs.contains(&secret_text), "the TOTP secret was logged");
    for code in &recovery {
        assert!(!logs.contains(code.as_str()), "a recovery code was logged");
    }
});

both_backends!(http_disabled_user_tokens_stop_working, |harness| {
    add_user(&harness, "dora", Role::Sales, None).await;
    let client = Client::new(&harness).await;
    let first = client.login("dora").await;
    let second = client.login("dora").await;
    for token in [&first, &second] {
        let me = client
            .send(Method::GET, "/api/v1/auth/me", Some(token), None)
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.raw);
    }
    harness.veil.disable_user("dora").await.unwrap();
    for token in [&first, &second] {
        let me = client
            .send(Method::GET, "/api/v1/auth/me", Some(token), None)
            .await;
        assert_problem(&me, StatusCode::UNAUTHORIZED, "unauthenticated");
        let list = client
            .send(Method::GET, "/api/v1/customers", Some(token), None)
            .await;
        assert_problem(&list, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    let (status, _, body) = post_from(
        &client.router,
        "/api/v1/auth/login",
        None,
        json!({"username": "dora", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A password reset re-enables the account but does not bring old tokens back.
    harness
        .veil
        .reset_password("dora", &Password::new("a brand new passphrase 42".into()))
        .await
        .unwrap();
    let me = client
        .send(Method::GET, "/api/v1/auth/me", Some(&first), None)
        .await;
    assert_problem(&me, StatusCode::UNAUTHORIZED, "unauthenticated");
});

both_backends!(
    scoped_api_tokens_do_only_what_their_scopes_allow,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "ada", Role::Admin, None).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(full_customer()),
            )
            .await;
        let id = created.body["id"].as_str().unwrap().to_owned();
        let minted = client
        .send(Method::POST, "/api/v1/auth/tokens", Some(&sally), Some(json!({"name": "crm-sync", "scopes": ["customers:read"], "expires_in_days": 30})))
        .await;
        assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.raw);
        let api = minted.body["token"].as_str().unwrap().to_owned();
        assert_eq!(minted.body["kind"], "api");
        // Reads work, writes do not, and a token cannot mint tokens.
        assert_eq!(
            client
                .send(
                    Method::GET,
                    &format!("/api/v1/customers/{id}"),
                    Some(&api),
                    None
                )
                .await
                .status,
            StatusCode::OK
        );
        assert_problem(
            &client
                .send(
                    Method::PATCH,
                    &format!("/api/v1/customers/{id}"),
                    Some(&api),
                    Some(json!({"tags": ["x"]})),
                )
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &client
                .send(
                    Method::POST,
                    "/api/v1/customers",
                    Some(&api),
                    Some(json!({"name": "新客户"})),
                )
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &client
                .send(
                    Method::POST,
                    "/api/v1/auth/tokens",
                    Some(&api),
                    Some(json!({"name": "x", "scopes": ["customers:write"]})),
                )
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        // Scopes never widen the role: an admin's policies:read token still cannot change anything else.
        let ada = client.login("ada").await;
        let admin_api = client
            .send(
                Method::POST,
                "/api/v1/auth/tokens",
                Some(&ada),
                Some(json!({"name": "audit", "scopes": ["policies:read"]})),
            )
            .await;
        let admin_api = admin_api.body["token"].as_str().unwrap().to_owned();
        assert_eq!(
            client
                .send(Method::GET, "/api/v1/policies", Some(&admin_api), None)
                .await
                .status,
            StatusCode::OK
        );
        assert_problem(
            &client
                .send(
                    Method::POST,
                    "/api/v1/teams",
                    Some(&admin_api),
                    Some(json!({"name": "x"})),
                )
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &client
                .send(Method::GET, "/api/v1/customers", Some(&admin_api), None)
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        // Bad requests are precise.
        let bad = client
            .send(
                Method::POST,
                "/api/v1/auth/tokens",
                Some(&sally),
                Some(json!({"name": "", "scopes": [], "expires_in_days": 1000})),
            )
            .await;
        assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            bad.body["errors"].as_array().unwrap().len(),
            3,
            "{}",
            bad.raw
        );
        let unknown = client
            .send(
                Method::POST,
                "/api/v1/auth/tokens",
                Some(&sally),
                Some(json!({"name": "x", "scopes": ["everything"]})),
            )
            .await;
        assert_problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        // The owner lists tokens (never the secret) and revokes the API token; it stops working at once.
        let listed = client
            .send(Method::GET, "/api/v1/auth/tokens", Some(&sally), None)
            .await;
        assert!(!listed.raw.contains(&api), "token secrets are never listed");
        let tokens = listed.body.as_array().unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(tokens
            .iter()
            .any(|token| token["current"] == true && token["kind"] == "session"));
        let api_id = tokens.iter().find(|token| token["kind"] == "api").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let revoked = client
            .send(
                Method::DELETE,
                &format!("/api/v1/auth/tokens/{api_id}"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(revoked.status, StatusCode::NO_CONTENT);
        assert_problem(
            &client
                .send(Method::GET, "/api/v1/customers", Some(&api), None)
                .await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
        // Another user's token id is not found.
        assert_problem(
            &client
                .send(
                    Method::DELETE,
                    &format!("/api/v1/auth/tokens/{api_id}"),
                    Some(&ada),
                    None,
                )
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
);

both_backends!(
    cookie_sessions_need_the_csrf_token_to_change_anything,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let login = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login?session=cookie")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"username": "sally", "password": PASSWORD}).to_string(),
            ))
            .unwrap();
        let response = client.router.clone().oneshot(login).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookies: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect();
        let body: Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert!(
            body.get("token").is_none(),
            "a cookie session does not hand the token to scripts: {body}"
        );
        let csrf = body["csrf_token"].as_str().unwrap().to_owned();
        let session = cookies
            .iter()
            .find(|cookie| cookie.starts_with("veil_session="))
            .expect("session cookie");
        assert!(
            session.contains("HttpOnly") && session.contains("SameSite=Strict"),
            "{session}"
        );
        assert!(
            !session.contains("Secure"),
            "no Secure flag without TLS: {session}"
        );
        let session_value = session.split(';').next().unwrap().to_owned();
        let with_cookie = |method: Method, uri: &str, csrf: Option<&str>, body: Option<Value>| {
            let mut request = Request::builder().method(method).uri(uri).header(
                header::COOKIE,
                format!(
                    "{session_value}; veil_csrf={csrf_cookie}",
                    csrf_cookie = "ignored"
                ),
            );
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf);
            }
            match body {
                Some(body) => request
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
                None => request.body(Body::empty()).unwrap(),
            }
        };
        // Reads work with the cookie alone.
        let me = client
            .send_request(with_cookie(Method::GET, "/api/v1/auth/me", None, None))
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.raw);
        assert_eq!(me.body["username"], "sally");
        // A state change without (or with a wrong) CSRF token is refused and writes nothing.
        let forged = client
            .send_request(with_cookie(
                Method::POST,
                "/api/v1/customers",
                None,
                Some(json!({"name": "张三"})),
            ))
            .await;
        assert_problem(&forged, StatusCode::FORBIDDEN, "csrf");
        let wrong = client
            .send_request(with_cookie(
                Method::POST,
                "/api/v1/customers",
                Some("00"),
                Some(json!({"name": "张三"})),
            ))
            .await;
        assert_problem(&wrong, StatusCode::FORBIDDEN, "csrf");
        assert_eq!(harness.veil.count_customers().await.unwrap(), 0);
        let created = client
            .send_request(with_cookie(
                Method::POST,
                "/api/v1/customers",
                Some(&csrf),
                Some(json!({"name": "张三"})),
            ))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
        // Logout ends the session and clears the cookies.
        let logout = client
            .send_request(with_cookie(
                Method::POST,
                "/api/v1/auth/logout",
                Some(&csrf),
                None,
            ))
            .await;
        assert_eq!(logout.status, StatusCode::NO_CONTENT);
        let after = client
            .send_request(with_cookie(Method::GET, "/api/v1/auth/me", None, None))
            .await;
        assert_problem(&after, StatusCode::UNAUTHORIZED, "unauthenticated");
        // Under TLS the cookie is Secure.
        let tls_router = veil_http::app(
            AppState::new(Arc::new(harness.reopen().await))
                .with_tls(true)
                .with_rate_limits(veil_http::RateLimits::unlimited()),
        );
        let login = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login?session=cookie")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"username": "sally", "password": PASSWORD}).to_string(),
            ))
            .unwrap();
        let response = tls_router.oneshot(login).await.unwrap();
        let secure = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .all(|value| value.to_str().unwrap().contains("; Secure"));
        assert!(secure);
    }
);

// ---- The audit trail over HTTP ----

both_backends!(http_audit_query_verify_and_subject_report, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    add_user(&harness, "audrey", Role::Auditor, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(full_customer()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let found = client
        .send(
            Method::GET,
            &format!("/api/v1/customers?phone={PHONE}"),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.raw);
    client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(&sally),
            None,
        )
        .await;

    let audrey = client.login("audrey").await;
    let page = client
        .send(
            Method::GET,
            &format!("/api/v1/audit?customer={id}&action=customer."),
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
    assert_no_plaintext(&page.raw, "the audit page");
    let actions: Vec<&str> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["customer.read", "customer.search", "customer.create"]
    );
    let search = &page.body["items"][1];
    assert_eq!(search["fields"], json!(["phone"]));
    assert_eq!(search["actor_name"], "sally");
    // Bad filters are 422, not a silently empty page.
    let bad = client
        .send(
            Method::GET,
            "/api/v1/audit?from=yesterday",
            Some(&audrey),
            None,
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let verified = client
        .send(Method::GET, "/api/v1/audit/verify", Some(&audrey), None)
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.raw);
    assert_eq!(verified.body["ok"], true, "{}", verified.raw);
    let checkpoint = client
        .send(
            Method::POST,
            "/api/v1/audit/checkpoints",
            Some(&audrey),
            None,
        )
        .await;
    assert_eq!(checkpoint.status, StatusCode::OK, "{}", checkpoint.raw);
    let key = client
        .send(Method::GET, "/api/v1/audit/public-key", Some(&audrey), None)
        .await;
    assert_eq!(
        checkpoint.body["checkpoint"]["public_key"],
        key.body["public_key"]
    );

    // The DPO's subject report: who looked at this customer.
    let dora = client.login("dora").await;
    let report = client
        .send(
            Method::GET,
            &format!("/api/v1/subjects/{id}/report"),
            Some(&dora),
            None,
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.raw);
    assert_no_plaintext(&report.raw, "the subject report");
    assert_eq!(report.body["accessed_by"], json!(["sally"]));
    // The auditor cannot produce it.
    let refused = client
        .send(
            Method::GET,
            &format!("/api/v1/subjects/{id}/report"),
            Some(&audrey),
            None,
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
});

// ---- Governed unmasking, end to end ----

/// Enrols `token`'s user in MFA through the API; returns the TOTP secret and one recovery code.
async fn enrol_mfa(client: &Client, token: &str) -> (veil_app::mfa::TotpSecret, String) {
    let router = &client.router;
    let (status, _, body) = post_from(
        router,
        "/api/v1/auth/mfa/enroll",
        Some(token),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = veil_app::mfa::TotpSecret::from_base32(body["secret"].as_str().unwrap()).unwrap();
    let (status, _, body) = post_from(
        router,
        "/api/v1/auth/mfa/confirm",
        Some(token),
        json!({"code": totp_now(&secret, 0)}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let recovery = body["recovery_codes"][0].as_str().unwrap().to_owned();
    (secret, recovery)
}

/// Enrols `token`'s user in MFA and verifies a step-up; returns nothing (the token is now fresh).
async fn enrol_and_step_up(client: &Client, token: &str) {
    let router = &client.router;
    let (secret, _) = enrol_mfa(client, token).await;
    let (status, _, body) = post_from(
        router,
        "/api/v1/auth/mfa/verify",
        Some(token),
        json!({"code": totp_now(&secret, 1)}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Configures local, age-encrypted backups and takes and verifies one (as the host operator would); the returned
/// directory holds it.
async fn take_verified_backup(harness: &Harness) -> tempfile::TempDir {
    let keys = age::x25519::Identity::generate();
    let backups = tempfile::tempdir().unwrap();
    harness
        .veil
        .set_backup_settings(veil_app::backup::BackupSettings {
            directory: backups.path().to_owned(),
            encryption: Some(veil_app::backup::Encryption::Recipients(vec![
                keys.to_public()
            ])),
            decryption: Some(veil_app::backup::Decryption::Identities(keys.to_string())),
            max_age_days: 7,
            object_storage: None,
        });
    let backup = harness.veil.create_backup(None, None, &()).await.unwrap();
    harness
        .veil
        .verify_backup(None, &backup.id, &())
        .await
        .unwrap();
    backups
}

both_backends!(backups_go_only_to_configured_destinations, |harness| {
    let Some(server) = veil_app::testing::MotoServer::start() else {
        return;
    };
    server.create_bucket("veil-http");
    let keys = age::x25519::Identity::generate();
    let backups = tempfile::tempdir().unwrap();
    let settings = veil_app::backup::BackupSettings {
        directory: backups.path().to_owned(),
        encryption: Some(veil_app::backup::Encryption::Recipients(vec![
            keys.to_public()
        ])),
        decryption: Some(veil_app::backup::Decryption::Identities(keys.to_string())),
        max_age_days: 7,
        object_storage: Some(server.settings("s3://veil-http/api/")),
    };
    harness.veil.set_backup_settings(settings.clone());
    add_user(&harness, "root", Role::Admin, None).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let admin = client.login("root").await;
    let dpo = client.login("dora").await;
    let post = |token: &str, body: Option<Value>| {
        let token = token.to_owned();
        let client = &client;
        async move {
            client
                .send(Method::POST, "/api/v1/backups", Some(&token), body)
                .await
        }
    };
    let local_files = || {
        std::fs::read_dir(backups.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };

    // `s3`: a multipart upload to the configured bucket and prefix, catalogued as s3://…, no local copy left.
    let uploaded = post(&admin, Some(json!({"to": "s3"}))).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.raw);
    let location = uploaded.body["location"].as_str().unwrap().to_owned();
    assert!(
        location.starts_with("s3://veil-http/api/veil-backup-") && location.ends_with(".age"),
        "{location}"
    );
    assert_eq!(
        server.object(&location).len() as u64,
        uploaded.body["size_bytes"].as_u64().unwrap()
    );
    assert!(local_files().is_empty(), "{:?}", local_files());
    // The configured URL itself names the same destination.
    let by_url = post(&admin, Some(json!({"to": "s3://veil-http/api"}))).await;
    assert_eq!(by_url.status, StatusCode::CREATED, "{}", by_url.raw);
    assert!(by_url.body["location"]
        .as_str()
        .unwrap()
        .starts_with("s3://veil-http/api/"));

    // No body, `local`, or the configured directory itself: the backup directory.
    for body in [
        None,
        Some(json!({})),
        Some(json!({"to": "local"})),
        Some(json!({"to": backups.path().to_str().unwrap()})),
    ] {
        let local = post(&admin, body.clone()).await;
        assert_eq!(local.status, StatusCode::CREATED, "{body:?}: {}", local.raw);
        let path = std::path::PathBuf::from(local.body["location"].as_str().unwrap());
        assert_eq!(
            path.parent().unwrap(),
            backups.path().canonicalize().unwrap(),
            "{body:?}"
        );
    }
    assert_eq!(local_files().len(), 4, "{:?}", local_files());

    // A path or bucket of the client's own is refused before anything is written.
    let elsewhere = tempfile::tempdir().unwrap();
    for to in [
        elsewhere.path().to_str().unwrap(),
        "s3://other-bucket/api",
        "s3://veil-http/other-prefix",
        "../backups",
        "",
    ] {
        let refused = post(&admin, Some(json!({ "to": to }))).await;
        assert_problem(
            &refused,
            StatusCode::BAD_REQUEST,
            "unknown_backup_destination",
        );
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("\"local\"") && detail.contains("\"s3\" (s3://veil-http/api/)"),
            "{to}: {detail}"
        );
    }
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    let listed = client
        .send(Method::GET, "/api/v1/backups", Some(&admin), None)
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 6, "{}", listed.raw);
    let objects = server.listing("veil-http");
    assert_eq!(objects.matches("<Key>").count(), 2, "{objects}");

    // Malformed bodies; a non-admin is refused whatever the body says.
    let wrong_type = post(&admin, Some(json!({"to": 5}))).await;
    assert_problem(
        &wrong_type,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    let unknown_field = post(&admin, Some(json!({"path": "/tmp"}))).await;
    assert_problem(
        &unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    let untyped = client
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/backups")
                .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                .body(Body::from(r#"{"to": "s3"}"#))
                .unwrap(),
        )
        .await;
    assert_problem(&untyped, StatusCode::BAD_REQUEST, "bad_request");
    for body in [Some(json!({"to": "s3"})), Some(json!({"to": "/tmp"}))] {
        let denied = post(&dpo, body).await;
        assert_problem(&denied, StatusCode::FORBIDDEN, "forbidden");
    }

    // The s3 backup verifies over the API (downloaded first).
    let id = uploaded.body["id"].as_str().unwrap();
    let verified = client
        .send(
            Method::POST,
            &format!("/api/v1/backups/{id}/verify"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.raw);
    assert_eq!(verified.body["ok"], true, "{}", verified.raw);

    // Without object storage configured, `s3` is no destination of this server.
    harness
        .veil
        .set_backup_settings(veil_app::backup::BackupSettings {
            object_storage: None,
            ..settings
        });
    let client = Client::new(&harness).await;
    let refused = client
        .send(
            Method::POST,
            "/api/v1/backups",
            Some(&admin),
            Some(json!({"to": "s3"})),
        )
        .await;
    assert_problem(
        &refused,
        StatusCode::BAD_REQUEST,
        "unknown_backup_destination",
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("no object storage is configured"),
        "{}",
        refused.raw
    );
});

async fn raw_sql(harness: &Harness, sql: &str) {
    harness.raw_sql(sql).await.unwrap();
}

both_backends!(governed_unmasking_story, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(&sally),
            Some(full_customer()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Without a grant (and before any step-up): refused.
    let reveal_uri = format!("/api/v1/customers/{id}/reveal");
    let refused = client
        .send(
            Method::POST,
            &reveal_uri,
            Some(&sally),
            Some(json!({"fields": ["id_number"]})),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    enrol_and_step_up(&client, &sally).await;
    let refused = client
        .send(
            Method::POST,
            &reveal_uri,
            Some(&sally),
            Some(json!({"fields": ["id_number"]})),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "grant_required");

    // The request: blocked, because the customer has not consented.
    let request = json!({
        "purpose": "customer_service", "purpose_detail": "客户来电核实身份 13987654321",
        "legal_basis": "consent", "jurisdiction": "CN", "scope": {"customer_ids": [id]},
        "fields": ["id_number"], "mode": "view", "duration_minutes": 30
    });
    let asked = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&sally),
            Some(request.clone()),
        )
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.raw);
    assert_no_plaintext(&asked.raw, "the request");
    assert_eq!(asked.body["state"], "blocked", "{}", asked.raw);
    let checks = asked.body["checks"].as_array().unwrap();
    let consent_check = checks
        .iter()
        .find(|check| check["name"] == "consent")
        .unwrap();
    assert_eq!(consent_check["met"], false);
    assert_eq!(consent_check["customers"], json!([id]));
    for name in ["legal_basis", "risk_assessment", "security", "backup"] {
        let found = checks.iter().find(|check| check["name"] == name).unwrap();
        assert_eq!(found["met"], true, "{name}: {found}");
    }
    assert_eq!(asked.body["risk"], "low", "one person, one sensitive field");
    let request_id = asked.body["id"].as_str().unwrap().to_owned();

    // Consent recorded (with the separate consent for sensitive data), recheck: pending.
    let consent = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/consents"),
            Some(&sally),
            Some(json!({"purposes": ["customer_service"], "fields": ["id_number", "phone"],
                        "recipient": "internal", "sensitive": true,
                        "evidence_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})),
        )
        .await;
    assert_eq!(consent.status, StatusCode::CREATED, "{}", consent.raw);
    let consent_id = consent.body["id"].as_str().unwrap().to_owned();
    let rechecked = client
        .send(
            Method::POST,
            &format!("/api/v1/unmask-requests/{request_id}/recheck"),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(rechecked.status, StatusCode::OK, "{}", rechecked.raw);
    assert_eq!(rechecked.body["state"], "pending", "{}", rechecked.raw);

    // The salesperson cannot approve her own request; the DPO can.
    let approve_uri = format!("/api/v1/unmask-requests/{request_id}/approve");
    let own = client
        .send(
            Method::POST,
            &approve_uri,
            Some(&sally),
            Some(json!({"reason": "mine"})),
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.raw);
    let dora = client.login("dora").await;
    let approved = client
        .send(
            Method::POST,
            &approve_uri,
            Some(&dora),
            Some(json!({"reason": "customer verified by phone"})),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.raw);
    assert_eq!(approved.body["state"], "active", "{}", approved.raw);
    let grant_id = approved.body["grant_id"].as_str().unwrap().to_owned();

    // The reveal works, only for the granted field, and is audited with the grant and purpose.
    let revealed = client
        .send(
            Method::POST,
            &reveal_uri,
            Some(&sally),
            Some(json!({"fields": ["id_number"]})),
        )
        .await;
    assert_eq!(revealed.status, StatusCode::OK, "{}", revealed.raw);
    assert_eq!(revealed.body, json!({"id_number": ID_NUMBER}));
    let other_field = client
        .send(
            Method::POST,
            &reveal_uri,
            Some(&sally),
            Some(json!({"fields": ["bank_card"]})),
        )
        .await;
    assert_problem(&other_field, StatusCode::FORBIDDEN, "grant_required");

    // A note's spans reveal under the same grant: the granted kind in clear, every other span still masked.
    let note = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/notes"),
            Some(&sally),
            Some(json!({"body": format!("核实身份证{ID_NUMBER}，回电13987654321")})),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.raw);
    assert_no_plaintext(&note.raw, "the note");
    let note_id = note.body["id"].as_str().unwrap().to_owned();
    let note_uri = format!("/api/v1/customers/{id}/notes/{note_id}/reveal");
    let shown = client
        .send(
            Method::POST,
            &note_uri,
            Some(&sally),
            Some(json!({"fields": ["id_number"]})),
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.raw);
    assert_eq!(shown.body["revealed"], 1, "{}", shown.raw);
    let body = shown.body["body"].as_str().unwrap();
    assert!(body.contains(ID_NUMBER), "{body}");
    assert!(
        !body.contains("13987654321") && body.contains("139****4321"),
        "{body}"
    );
    let not_granted = client
        .send(
            Method::POST,
            &note_uri,
            Some(&sally),
            Some(json!({"fields": ["phone"]})),
        )
        .await;
    assert_problem(&not_granted, StatusCode::FORBIDDEN, "grant_required");
    let unknown_note = client
        .send(
            Method::POST,
            &format!(
                "/api/v1/customers/{id}/notes/{}/reveal",
                uuid::Uuid::now_v7()
            ),
            Some(&sally),
            Some(json!({"fields": ["id_number"]})),
        )
        .await;
    assert_eq!(
        unknown_note.status,
        StatusCode::NOT_FOUND,
        "{}",
        unknown_note.raw
    );

    let trail = audit_of(&harness, "customer.reveal").await;
    let ok = trail
        .iter()
        .rev()
        .find(|entry| entry.event.outcome == "ok")
        .unwrap();
    assert_eq!(ok.event.grant_id.as_deref(), Some(grant_id.as_str()));
    assert_eq!(ok.event.purpose.as_deref(), Some("customer_service"));
    assert_eq!(ok.event.fields, vec!["id_number".to_owned()]);
    let note_entry = trail
        .iter()
        .find(|entry| {
            entry.event.outcome == "ok" && format!("{:?}", entry.event).contains(&note_id)
        })
        .expect("the note reveal is audited and names the note");
    assert_eq!(
        note_entry.event.grant_id.as_deref(),
        Some(grant_id.as_str())
    );
    assert!(!format!("{trail:?}").contains(ID_NUMBER));

    // After expiry the reveal is refused and the request reads `expired`.
    raw_sql(
        &harness,
        &format!("UPDATE unmask_grant SET expires_at = 1 WHERE id = '{grant_id}'"),
    )
    .await;
    let expired = client
        .send(
            Method::POST,
            &reveal_uri,
            Some(&sally),
            Some(json!({"fields": ["id_number"]})),
        )
        .await;
    assert_problem(&expired, StatusCode::FORBIDDEN, "grant_required");
    let read = client
        .send(
            Method::GET,
            &format!("/api/v1/unmask-requests/{request_id}"),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(read.body["state"], "expired", "{}", read.raw);

    // A second grant, then the customer withdraws consent: the grant is revoked at once.
    let again = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&sally),
            Some(request),
        )
        .await;
    assert_eq!(again.body["state"], "pending", "{}", again.raw);
    let second = again.body["id"].as_str().unwrap().to_owned();
    let approved = client
        .send(
            Method::POST,
            &format!("/api/v1/unmask-requests/{second}/approve"),
            Some(&dora),
            Some(json!({"reason": "second call"})),
        )
        .await;
    assert_eq!(approved.body["state"], "active", "{}", approved.raw);
    let works = client
        .send(
            Method::POST,
            &reveal_uri,
            Some(&sally),
            Some(json!({"fields": ["id_number"]})),
        )
        .await;
    assert_eq!(works.status, StatusCode::OK, "{}", works.raw);
    let withdrawn = client
        .send(
            Method::POST,
            &format!("/api/v1/consents/{consent_id}/withdraw"),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.raw);
    let after = client
        .send(
            Method::POST,
            &reveal_uri,
            Some(&sally),
            Some(json!({"fields": ["id_number"]})),
        )
        .await;
    assert_problem(&after, StatusCode::FORBIDDEN, "grant_required");
    let read = client
        .send(
            Method::GET,
            &format!("/api/v1/unmask-requests/{second}"),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(read.body["state"], "revoked", "{}", read.raw);
    let grants = client
        .send(Method::GET, "/api/v1/grants", Some(&sally), None)
        .await;
    assert!(grants
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|grant| grant["live"] == false));
    assert!(harness.veil.verify_audit_chain().await.unwrap().ok);
});

both_backends!(
    high_risk_needs_two_approvers_and_bulk_needs_a_backup,
    |harness| {
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        add_user(&harness, "dan", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let ada = client.login("ada").await;
        enrol_and_step_up(&client, &ada).await;
        let mut ids = Vec::new();
        for index in 0..12 {
            let created = client
                .send(
                    Method::POST,
                    "/api/v1/customers",
                    Some(&ada),
                    Some(
                        json!({"name": "测试", "phone": format!("1390000{:04}", index),
                            "bank_card": "6222021234567890128"}),
                    ),
                )
                .await;
            ids.push(created.body["id"].as_str().unwrap().to_owned());
        }
        // Twelve people, a sensitive field, a week-long grant: high risk on a contract basis.
        let asked = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&ada),
            Some(json!({"purpose": "fraud_investigation", "purpose_detail": "chargeback ring",
                        "legal_basis": "legal_obligation", "jurisdiction": "CN", "scope": {"customer_ids": ids},
                        "fields": ["bank_card", "phone"], "mode": "view", "duration_minutes": 10080,
                        "cross_border": true})),
        )
        .await;
        assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.raw);
        assert_eq!(asked.body["risk"], "high", "{}", asked.raw);
        assert_eq!(asked.body["approvals_needed"], 2);
        assert_eq!(asked.body["state"], "pending", "{}", asked.raw);
        let id = asked.body["id"].as_str().unwrap().to_owned();
        let approve = format!("/api/v1/unmask-requests/{id}/approve");
        let dora = client.login("dora").await;
        let one = client
            .send(
                Method::POST,
                &approve,
                Some(&dora),
                Some(json!({"reason": "looks right"})),
            )
            .await;
        assert_eq!(
            one.body["state"], "pending",
            "one approval is not enough: {}",
            one.raw
        );
        let twice = client
            .send(
                Method::POST,
                &approve,
                Some(&dora),
                Some(json!({"reason": "again"})),
            )
            .await;
        assert_eq!(
            twice.status,
            StatusCode::CONFLICT,
            "the same approver twice: {}",
            twice.raw
        );
        let dan = client.login("dan").await;
        let two = client
            .send(
                Method::POST,
                &approve,
                Some(&dan),
                Some(json!({"reason": "agreed"})),
            )
            .await;
        assert_eq!(two.body["state"], "active", "{}", two.raw);

        // A bulk scope (over 100 people) without a verified backup is blocked with that reason.
        let mut many: Vec<String> = ids.clone();
        for index in 0..95 {
            let created = client
                .send(
                    Method::POST,
                    "/api/v1/customers",
                    Some(&ada),
                    Some(json!({"name": "批量", "phone": format!("1370000{:04}", index)})),
                )
                .await;
            many.push(created.body["id"].as_str().unwrap().to_owned());
        }
        let bulk = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&ada),
            Some(json!({"purpose": "audit", "purpose_detail": "annual data audit",
                        "legal_basis": "legal_obligation", "jurisdiction": "CN", "scope": {"customer_ids": many},
                        "fields": ["phone"], "mode": "view", "duration_minutes": 60})),
        )
        .await;
        assert_eq!(bulk.body["state"], "blocked", "{}", bulk.raw);
        let backup = bulk.body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "backup")
            .unwrap();
        assert_eq!(backup["met"], false);
        assert!(
            backup["reason"]
                .as_str()
                .unwrap()
                .contains("no verified backup"),
            "{backup}"
        );
        // A purpose the basis cannot carry is blocked at the first check.
        let wrong = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&ada),
            Some(json!({"purpose": "marketing", "purpose_detail": "campaign", "legal_basis": "legitimate_interests",
                        "jurisdiction": "CN", "scope": {"customer_ids": [ids[0]]}, "fields": ["phone"],
                        "mode": "view", "duration_minutes": 60})),
        )
        .await;
        assert_eq!(wrong.body["state"], "blocked");
        assert_eq!(wrong.body["checks"][0]["name"], "legal_basis");
        assert_eq!(wrong.body["checks"][0]["met"], false);
    }
);

both_backends!(
    unmasked_export_is_encrypted_signed_and_verifiable,
    |harness| {
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let ada = client.login("ada").await;
        enrol_and_step_up(&client, &ada).await;
        let mut ids = Vec::new();
        for (name, phone) in [
            ("导出甲", "13911110001"),
            ("导出乙", "13911110002"),
            ("导出丙", "13911110003"),
        ] {
            let created = client
                .send(
                    Method::POST,
                    "/api/v1/customers",
                    Some(&ada),
                    Some(json!({"name": name, "phone": phone})),
                )
                .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
            ids.push(created.body["id"].as_str().unwrap().to_owned());
        }
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let request = json!({
            "purpose": "audit", "purpose_detail": "2026 annual data audit", "legal_basis": "legal_obligation",
            "jurisdiction": "CN", "scope": {"customer_ids": ids}, "fields": ["phone", "name"], "mode": "export",
            "duration_minutes": 60, "recipient": recipient
        });
        // No recipient key: refused as invalid.
        let mut keyless = request.clone();
        keyless["recipient"] = json!(null);
        let refused = client
            .send(
                Method::POST,
                "/api/v1/unmask-requests",
                Some(&ada),
                Some(keyless),
            )
            .await;
        assert_problem(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        // Without a fresh verified backup an export is blocked with that reason.
        let asked = client
            .send(
                Method::POST,
                "/api/v1/unmask-requests",
                Some(&ada),
                Some(request),
            )
            .await;
        assert_eq!(asked.body["state"], "blocked", "{}", asked.raw);
        let backup_check = asked.body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "backup")
            .unwrap()
            .clone();
        assert_eq!(backup_check["met"], false, "{backup_check}");
        let id = asked.body["id"].as_str().unwrap().to_owned();

        // Take and verify a backup (as the host operator), recheck, approve.
        let _backups = take_verified_backup(&harness).await;
        let rechecked = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{id}/recheck"),
                Some(&ada),
                None,
            )
            .await;
        assert_eq!(rechecked.body["state"], "pending", "{}", rechecked.raw);
        let dora = client.login("dora").await;
        let approved = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{id}/approve"),
                Some(&dora),
                Some(json!({"reason": "audit plan 2026"})),
            )
            .await;
        assert_eq!(approved.body["state"], "active", "{}", approved.raw);

        // The export: encrypted to the recipient, with a signed manifest that matches it.
        let exported = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{id}/export"),
                Some(&ada),
                None,
            )
            .await;
        assert_eq!(exported.status, StatusCode::OK, "{}", exported.raw);
        assert!(
            !exported.raw.contains("13911110001"),
            "plaintext outside the encrypted file"
        );
        use base64::Engine;
        let file = base64::engine::general_purpose::STANDARD
            .decode(exported.body["file_base64"].as_str().unwrap())
            .unwrap();
        let signed: veil_app::governance::SignedManifest =
            serde_json::from_value(exported.body["manifest"].clone()).unwrap();
        assert_eq!(signed.manifest.rows, 3);
        assert_eq!(signed.manifest.counts.get("phone"), Some(&3));
        let key = harness
            .veil
            .audit_signing_key()
            .await
            .unwrap()
            .verifying_key();
        let identity_text = identity.to_string();
        use age::secrecy::ExposeSecret;
        let check = veil_app::governance::verify_export_file(
            &file,
            &signed,
            &key,
            Some(identity_text.expose_secret()),
        );
        assert!(check.problems.is_empty(), "{check:?}");
        assert_eq!(check.contents_ok, Some(true));
        let decryptor = age::Decryptor::new(file.as_slice()).unwrap();
        let mut csv = String::new();
        std::io::Read::read_to_string(
            &mut decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .unwrap(),
            &mut csv,
        )
        .unwrap();
        assert!(csv.starts_with("customer_id,phone,name\n"), "{csv}");
        assert!(csv.contains("13911110002,导出乙"), "{csv}");
        // A changed byte, or another server's key, is caught.
        let mut tampered = file.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 1;
        let check = veil_app::governance::verify_export_file(&tampered, &signed, &key, None);
        assert!(!check.checksum_ok);
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert!(
            !veil_app::governance::verify_export_file(&file, &signed, &stranger, None).signature_ok
        );
        // The grant exported once; a second run is refused.
        let again = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{id}/export"),
                Some(&ada),
                None,
            )
            .await;
        assert_problem(&again, StatusCode::FORBIDDEN, "grant_required");
        let trail = audit_of(&harness, "customer.export").await;
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].event.customer_ids.len(), 3);
        assert!(!format!("{trail:?}").contains("13911110001"));
    }
);

both_backends!(
    break_glass_is_short_alerted_reviewed_and_escalated,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(full_customer()),
            )
            .await;
        let id = created.body["id"].as_str().unwrap().to_owned();
        let body = json!({"customer_id": id, "fields": ["phone"], "reason": "customer collapsed in the branch, calling family"});
        // No step-up yet: refused.
        let refused = client
            .send(
                Method::POST,
                "/api/v1/break-glass",
                Some(&sally),
                Some(body.clone()),
            )
            .await;
        assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
        enrol_and_step_up(&client, &sally).await;
        let mut too_long = body.clone();
        too_long["minutes"] = json!(60);
        let refused = client
            .send(
                Method::POST,
                "/api/v1/break-glass",
                Some(&sally),
                Some(too_long),
            )
            .await;
        assert_problem(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let opened = client
            .send(
                Method::POST,
                "/api/v1/break-glass",
                Some(&sally),
                Some(body.clone()),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.raw);
        assert_eq!(opened.body["state"], "active");
        let request_id = opened.body["id"].as_str().unwrap().to_owned();
        let revealed = client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{id}/reveal"),
                Some(&sally),
                Some(json!({"fields": ["phone"]})),
            )
            .await;
        assert_eq!(revealed.body, json!({"phone": PHONE}), "{}", revealed.raw);
        // The DPO was alerted at once.
        let dora = client.login("dora").await;
        let alerts = client
            .send(Method::GET, "/api/v1/security/alerts", Some(&dora), None)
            .await;
        assert!(
            alerts.raw.contains("\"rule\":\"break_glass\""),
            "{}",
            alerts.raw
        );
        assert_no_plaintext(&alerts.raw, "the alert");
        // Only the DPO reviews.
        let review_uri = format!("/api/v1/unmask-requests/{request_id}/review");
        let not_hers = client
            .send(
                Method::POST,
                &review_uri,
                Some(&sally),
                Some(json!({"reason": "fine"})),
            )
            .await;
        assert_eq!(not_hers.status, StatusCode::FORBIDDEN, "{}", not_hers.raw);
        let reviewed = client
            .send(
                Method::POST,
                &review_uri,
                Some(&dora),
                Some(json!({"reason": "justified emergency"})),
            )
            .await;
        assert_eq!(reviewed.status, StatusCode::OK, "{}", reviewed.raw);
        // A second access left unreviewed for a day escalates to the admins, and the self-check fails.
        let second = client
            .send(
                Method::POST,
                "/api/v1/break-glass",
                Some(&sally),
                Some(body),
            )
            .await;
        let second_id = second.body["id"].as_str().unwrap().to_owned();
        let day_ago = veil_app::now_ms() - 25 * 60 * 60 * 1000;
        raw_sql(
            &harness,
            &format!("UPDATE unmask_request SET created_at = {day_ago} WHERE id = '{second_id}'"),
        )
        .await;
        assert_eq!(harness.veil.escalate_break_glass().await.unwrap(), 1);
        let alerts = client
            .send(Method::GET, "/api/v1/security/alerts", Some(&dora), None)
            .await;
        assert!(
            alerts.raw.contains("break_glass_unreviewed"),
            "{}",
            alerts.raw
        );
        let report = harness
            .veil
            .run_doctor(&veil_app::doctor::HostFacts::default(), "cli")
            .await
            .unwrap();
        let check = report
            .checks
            .iter()
            .find(|check| check.name == "break_glass_review")
            .unwrap();
        assert_eq!(check.status, veil_app::doctor::Status::Fail, "{check:?}");
    }
);

both_backends!(
    policy_change_turns_masking_off_for_a_role_and_rolls_back,
    |harness| {
        add_user(&harness, "ada", Role::Admin, None).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(full_customer()),
            )
            .await;
        let id = created.body["id"].as_str().unwrap().to_owned();
        let ada = client.login("ada").await;
        enrol_and_step_up(&client, &ada).await;
        let _backups = take_verified_backup(&harness).await;

        let asked = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&ada),
            Some(json!({"purpose": "customer_service", "purpose_detail": "managers call customers back",
                        "legal_basis": "contract", "jurisdiction": "CN", "scope": {"customer_ids": []},
                        "fields": ["phone"], "mode": "policy_change", "duration_minutes": 60,
                        "policy_change": {"field": "phone", "role": "manager", "rule": {"op": "plaintext"}}})),
        )
        .await;
        assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.raw);
        assert_eq!(asked.body["state"], "pending", "{}", asked.raw);
        let request_id = asked.body["id"].as_str().unwrap().to_owned();
        let mona = client.login("mona").await;
        let before = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{id}"),
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(before.body["phone"], "139****4321");
        let dora = client.login("dora").await;
        let approved = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{request_id}/approve"),
                Some(&dora),
                Some(json!({"reason": "call-backs are part of the service contract"})),
            )
            .await;
        assert_eq!(approved.body["state"], "active", "{}", approved.raw);
        // Managers now read the phone number in clear, audited as a reveal under the request; salespeople do not.
        let after = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{id}"),
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(after.body["phone"], PHONE, "{}", after.raw);
        let sales_view = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{id}"),
                Some(&sally),
                None,
            )
            .await;
        assert_eq!(sales_view.body["phone"], "139****4321");
        let reveals = audit_of(&harness, "customer.reveal").await;
        assert_eq!(reveals[0].event.purpose.as_deref(), Some("policy_change"));
        assert_eq!(
            reveals[0].event.grant_id.as_deref(),
            Some(request_id.as_str())
        );
        let report = harness
            .veil
            .run_doctor(&veil_app::doctor::HostFacts::default(), "cli")
            .await
            .unwrap();
        let plaintext = report
            .checks
            .iter()
            .find(|check| check.name == "policy_plaintext")
            .unwrap();
        assert_eq!(
            plaintext.status,
            veil_app::doctor::Status::Ok,
            "{plaintext:?}"
        );
        // Revoking rolls the change back.
        let revoked = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{request_id}/revoke"),
                Some(&dora),
                None,
            )
            .await;
        assert_eq!(revoked.body["state"], "revoked", "{}", revoked.raw);
        let rolled_back = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{id}"),
                Some(&mona),
                None,
            )
            .await;
        assert_eq!(
            rolled_back.body["phone"], "139****4321",
            "{}",
            rolled_back.raw
        );
        let policies = client
            .send(Method::GET, "/api/v1/policies", Some(&dora), None)
            .await;
        assert!(
            policies.raw.contains("rollback of unmask request"),
            "{}",
            policies.raw
        );
    }
);

both_backends!(filters_segments_and_partner_exchange_over_http, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let dora = client.login("dora").await;
    let phones = ["13700001111", "13700002222"];
    let mut ids = Vec::new();
    for (phone, tags) in phones.iter().zip([json!(["vip"]), json!(["vip2"])]) {
        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(json!({"name": "筛选", "phone": phone, "tags": tags, "industry": "finance"})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let get = |uri: String, token: String| {
        let client = &client;
        async move { client.send(Method::GET, &uri, Some(&token), None).await }
    };
    let listed_ids = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // Filters narrow the list; they do not mix with exact search; bad values are precise 422s.
    let vip = get("/api/v1/customers?tag=vip".into(), sally.clone()).await;
    assert_eq!(vip.status, StatusCode::OK, "{}", vip.raw);
    assert_eq!(listed_ids(&vip), [ids[0].clone()]);
    let both = get("/api/v1/customers?industry=finance".into(), sally.clone()).await;
    assert_eq!(listed_ids(&both).len(), 2);
    let mixed = get(
        format!("/api/v1/customers?tag=vip&phone={}", phones[0]),
        sally.clone(),
    )
    .await;
    assert_problem(&mixed, StatusCode::BAD_REQUEST, "bad_request");
    let bad_owner = get("/api/v1/customers?owner=somebody".into(), sally.clone()).await;
    assert_problem(
        &bad_owner,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        bad_owner.body["errors"][0]["field"], "owner",
        "{}",
        bad_owner.raw
    );

    // A saved segment lists the same customers and scopes an unmask request.
    let saved = client
        .send(
            Method::POST,
            "/api/v1/segments",
            Some(&sally),
            Some(json!({"name": "VIP", "filter": {"tag": "vip"}})),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.raw);
    let segment = saved.body["id"].as_str().unwrap().to_owned();
    let by_segment = get(
        format!("/api/v1/customers?segment={segment}"),
        sally.clone(),
    )
    .await;
    assert_eq!(listed_ids(&by_segment), [ids[0].clone()]);
    let unknown = get("/api/v1/customers?segment=nope".into(), sally.clone()).await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");
    let listed = get("/api/v1/segments".into(), sally.clone()).await;
    assert_eq!(
        listed.body[0]["filter"],
        json!({"tag": "vip"}),
        "{}",
        listed.raw
    );
    let asked = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&sally),
            Some(json!({
                "purpose": "customer_service", "purpose_detail": "VIP call-backs",
                "legal_basis": "consent", "jurisdiction": "CN", "scope": {"segment": segment},
                "fields": ["phone"], "mode": "view", "duration_minutes": 30
            })),
        )
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.raw);
    assert_eq!(asked.body["segment"], segment.as_str());
    assert_eq!(asked.body["customer_ids"], json!([ids[0]]));

    // Partner exchange: only admins and the DPO; the file carries pseudonyms, never the numbers.
    let added = client
        .send(
            Method::POST,
            "/api/v1/partners",
            Some(&dora),
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.raw);
    let partners = get("/api/v1/partners".into(), dora.clone()).await;
    assert_eq!(partners.body, json!([{"name": "acme", "state": "active"}]));
    assert_eq!(
        get("/api/v1/partners".into(), sally.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let identity = age::x25519::Identity::generate();
    let export = |body: Value| {
        let client = &client;
        let dora = dora.clone();
        async move {
            client
                .send(
                    Method::POST,
                    "/api/v1/partners/acme/exports",
                    Some(&dora),
                    Some(body),
                )
                .await
        }
    };
    let exported =
        export(json!({"recipient": identity.to_public().to_string(), "fields": ["phone"]})).await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.raw);
    assert_eq!(exported.body["report"]["rows"], 2, "{}", exported.raw);
    use base64::Engine;
    let file = base64::engine::general_purpose::STANDARD
        .decode(exported.body["file_base64"].as_str().unwrap())
        .unwrap();
    let decryptor = age::Decryptor::new(&file[..]).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut reader, &mut csv).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two rows: {csv}");
    assert!(csv.starts_with("pseudonym,"), "{csv}");
    for phone in phones {
        assert!(
            !csv.contains(phone),
            "the partner file carries a real number"
        );
    }
    let bad = export(json!({"recipient": "not-a-key", "quasi": ["shoe_size"]})).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["recipient", "quasi"]);
    // Re-identification needs a live grant of the caller.
    let reidentified = client
        .send(
            Method::POST,
            "/api/v1/partners/acme/reidentify",
            Some(&dora),
            Some(json!({"grant_id": "none", "file": csv})),
        )
        .await;
    assert_problem(&reidentified, StatusCode::FORBIDDEN, "grant_required");
    // Retired: the key is gone, so no further export in its domain.
    let retired = client
        .send(
            Method::POST,
            "/api/v1/partners/acme/retire",
            Some(&dora),
            None,
        )
        .await;
    assert_eq!(retired.status, StatusCode::NO_CONTENT, "{}", retired.raw);
    let after = export(json!({"recipient": identity.to_public().to_string()})).await;
    assert_problem(
        &after,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
});
