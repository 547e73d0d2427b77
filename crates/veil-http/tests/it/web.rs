//! The web UI driven like a browser would: cookies kept between requests, forms posted URL-encoded with the
//! hidden CSRF token read from the page, redirects inspected rather than followed.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;
use veil_app::both_backends;
use veil_app::users::Role;

mod crm_pages;
mod custom_fields;
mod customer_actions;

use super::{
    add_user, assert_no_plaintext, enrol_mfa, full_customer, post_from, take_verified_backup,
    totp_now, Client, ID_NUMBER, PASSWORD,
};

/// A browser: a cookie jar and a language.
struct Browser<'a> {
    client: &'a Client,
    cookies: BTreeMap<String, String>,
    accept_language: Option<&'static str>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a csrf field") + marker.len();
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_owned()
    }

    /// Asserts the status, and that the page says `text` (a refusal's reason, a notice).
    #[track_caller]
    fn assert_says(&self, status: StatusCode, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(text), "{text:?} not in {}", self.body);
    }

    fn sets_cookie(&self, name: &str) -> bool {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.starts_with(&format!("{name}=")) && !value.contains("Max-Age=0"))
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl<'a> Browser<'a> {
    fn new(client: &'a Client) -> Browser<'a> {
        Browser {
            client,
            cookies: BTreeMap::new(),
            accept_language: None,
        }
    }

    async fn request(&mut self, method: Method, uri: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut request = Request::builder().method(method).uri(uri);
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(language) = self.accept_language {
            request = request.header(header::ACCEPT_LANGUAGE, language);
        }
        let request = match form {
            Some(fields) => {
                let body = fields
                    .iter()
                    .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
                    .collect::<Vec<_>>()
                    .join("&");
                request
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))
            }
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.client.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, cookie_value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") || cookie_value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies
                    .insert(name.to_owned(), cookie_value.to_owned());
            }
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&mut self, uri: &str) -> Page {
        self.request(Method::GET, uri, None).await
    }

    async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Page {
        self.request(Method::POST, uri, Some(form)).await
    }

    /// Posts `multipart/form-data`: text fields, then files as (field, file name, content).
    async fn post_multipart(
        &mut self,
        uri: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Page {
        let boundary = "veil-test-boundary-7d3f";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        for (name, file_name, content) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/pdf\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let cookie = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::COOKIE, cookie)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        let response = self.client.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Signs in (no second factor) and expects to land on `next`.
    async fn signed_in(client: &'a Client, username: &str) -> Browser<'a> {
        let mut browser = Browser::new(client);
        let page = browser.sign_in(username, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        browser
    }

    /// Signs in with the password and a TOTP or recovery code.
    async fn signed_in_with_code(client: &'a Client, username: &str, code: &str) -> Browser<'a> {
        let mut browser = Browser::new(client);
        let step = browser.sign_in(username, PASSWORD).await;
        assert_eq!(step.status, StatusCode::OK, "{}", step.body);
        let csrf = step.csrf();
        let done = browser
            .post(
                "/login/totp",
                &[("csrf", &csrf), ("code", code), ("next", "/customers")],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        browser
    }

    /// Signs in with the password; returns the page after the password step.
    async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
                ("next", "/customers"),
            ],
        )
        .await
    }
}

/// The page's security headers: CSP without inline scripts, no caching, no framing.
fn assert_page_headers(page: &Page) {
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(page.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // Nothing inline that the CSP would have to allow.
    assert!(!page.body.contains("<script>"), "inline script");
    assert!(!page.body.contains(" style="), "inline style");
    assert!(!page.body.contains(" onclick="), "inline handler");
}

async fn create_customer_via_api(client: &Client, token: &str) -> String {
    let created = client
        .send(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(full_customer()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    created.body["id"].as_str().unwrap().to_owned()
}

async fn create_customer_via_api_with(
    client: &Client,
    token: &str,
    body: serde_json::Value,
) -> String {
    let created = client
        .send(Method::POST, "/api/v1/customers", Some(token), Some(body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    created.body["id"].as_str().unwrap().to_owned()
}

both_backends!(web_sign_in_then_masked_list_and_detail, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let token = client.login("sally").await;
    let id = create_customer_via_api(&client, &token).await;
    let mut browser = Browser::new(&client);

    // Signed out: pages send the visitor to sign in, coming back afterwards.
    let redirected = browser.get("/customers").await;
    assert_eq!(redirected.status, StatusCode::SEE_OTHER);
    assert_eq!(redirected.location(), "/login?next=/customers");

    // A wrong password: the form again, with the error, no session.
    let wrong = browser.sign_in("sally", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert!(
        wrong.body.contains("Wrong username or password."),
        "{}",
        wrong.body
    );
    assert!(!wrong.sets_cookie("veil_session"));

    let signed_in = browser.sign_in("sally", PASSWORD).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/customers");
    assert!(signed_in.sets_cookie("veil_session"));
    let session_cookie = signed_in
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .find(|value| value.starts_with("veil_session="))
        .unwrap();
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Strict"));

    let list = browser.get("/customers").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_page_headers(&list);
    assert_no_plaintext(&list.body, "the customer list page");
    for masked in ["司马**", "139****4321", "330106********0034"] {
        assert!(list.body.contains(masked), "{masked} in the list");
    }
    assert!(list.body.contains(&format!("href=\"/customers/{id}\"")));
    assert!(
        list.body.contains("name=\"csrf\""),
        "the search form is signed"
    );

    let detail = browser.get(&format!("/customers/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_page_headers(&detail);
    assert_no_plaintext(&detail.body, "the customer page");
    assert!(detail.body.contains("class=\"lock\""), "lock icon");
    assert!(detail.body.contains("Request access"));
    assert!(detail.body.contains(&format!(
        "/unmask-requests/new?customer={id}&amp;field=id_number"
    )));
    assert!(
        !detail.body.contains(">Reveal<"),
        "no grant, no reveal button"
    );

    // Exact search by mobile (POST: the number is in no URL), then by a malformed ID number.
    let csrf = list.csrf();
    let found = browser
        .post(
            "/customers/search",
            &[
                ("csrf", &csrf),
                ("by", "phone"),
                ("value", "+86 139-8765-4321"),
            ],
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert!(
        found.body.contains("1 customer(s) found."),
        "{}",
        found.body
    );
    assert_no_plaintext(&found.body, "the search result page");
    let bad = browser
        .post(
            "/customers/search",
            &[
                ("csrf", &csrf),
                ("by", "id_number"),
                ("value", "330106197312210035"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(
        bad.body.contains("The check digit is wrong"),
        "{}",
        bad.body
    );

    // Sign out revokes the session: the old cookie no longer opens pages.
    let old_session = browser.cookies["veil_session"].clone();
    let out = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    assert!(!browser.cookies.contains_key("veil_session"));
    browser
        .cookies
        .insert("veil_session".to_owned(), old_session);
    let after = browser.get("/customers").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "revoked session");
});

both_backends!(web_forms_without_the_csrf_token_are_refused, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let mut browser = Browser::new(&client);
    assert_eq!(
        browser.sign_in("sally", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let before = harness.veil.count_customers().await.unwrap();
    let form = [("name", "司马相如"), ("phone", "13987654321")];
    let missing = browser.post("/customers/new", &form).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.body);
    assert!(missing.body.contains("Form expired"), "{}", missing.body);
    let wrong = browser
        .post(
            "/customers/new",
            &[
                ("csrf", "0123456789abcdef0123456789abcdef01234567"),
                form[0],
                form[1],
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(
        harness.veil.count_customers().await.unwrap(),
        before,
        "nothing written"
    );
    // Sign-out without the token does not sign out.
    let logout = browser.post("/logout", &[]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/customers").await.status, StatusCode::OK);

    // The sign-in form is protected by its nonce cookie: a post from elsewhere (no cookie) signs nobody in.
    let mut other = Browser::new(&client);
    let forged = other
        .post(
            "/login",
            &[
                ("csrf", "forged"),
                ("username", "sally"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    assert_eq!(forged.location(), "/login");
    assert!(!forged.sets_cookie("veil_session"));

    // With the token, the same form creates the customer and shows it.
    let page = browser.get("/customers/new").await;
    let csrf = page.csrf();
    let created = browser
        .post("/customers/new", &[("csrf", &csrf), form[0], form[1]])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert!(created.location().starts_with("/customers/"));
    assert_eq!(harness.veil.count_customers().await.unwrap(), before + 1);
});

both_backends!(
    web_bad_id_number_is_explained_in_the_users_language,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let mut browser = Browser::new(&client);
        browser.accept_language = Some("zh-CN,zh;q=0.9,en;q=0.5");
        assert_eq!(
            browser.sign_in("sally", PASSWORD).await.status,
            StatusCode::SEE_OTHER
        );
        let page = browser.get("/customers/new").await;
        assert!(page.body.contains("<html lang=\"zh-CN\">"));
        assert!(page.body.contains("新建客户"));
        let csrf = page.csrf();
        let bad_id = "330106197312210035"; // the right one ends in 4
        let refused = browser
            .post(
                "/customers/new",
                &[
                    ("csrf", &csrf),
                    ("name", "司马相如"),
                    ("id_number", bad_id),
                    ("phone", "12345"),
                ],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert_page_headers(&refused);
        assert!(
            refused.body.contains("校验位错误：请检查号码是否输错。"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("id=\"id_number-error\""));
        assert!(refused.body.contains("aria-invalid=\"true\""));
        assert!(refused.body.contains("请更正以下字段："));
        assert_eq!(harness.veil.count_customers().await.unwrap(), 0);

        // The same mistake in English once the user switches language.
        let switched = browser.get("/lang?set=en&next=/customers/new").await;
        assert_eq!(switched.status, StatusCode::SEE_OTHER);
        assert_eq!(switched.location(), "/customers/new");
        let page = browser.get("/customers/new").await;
        let csrf = page.csrf();
        let refused = browser
            .post(
                "/customers/new",
                &[("csrf", &csrf), ("name", "司马相如"), ("id_number", bad_id)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused
                .body
                .contains("The check digit is wrong: please check the number for a typo."),
            "{}",
            refused.body
        );
        assert!(!refused.body.contains("校验位"));
    }
);

both_backends!(web_language_switch_and_negotiation, |harness| {
    let client = Client::new(&harness).await;
    let mut browser = Browser::new(&client);
    let english = browser.get("/login").await;
    assert!(english.body.contains("<html lang=\"en\">"));
    assert!(english.body.contains(">Sign in</h1>"));
    assert!(
        english
            .body
            .contains("href=\"/lang?set=zh&#38;next=/login\""),
        "{}",
        english.body
    );

    browser.accept_language = Some("zh-CN");
    let negotiated = browser.get("/login").await;
    assert!(negotiated.body.contains("<html lang=\"zh-CN\">"));
    assert!(negotiated.body.contains(">登录</h1>"));

    // The cookie wins over the header, and survives across pages.
    let switched = browser.get("/lang?set=en&next=/login").await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.location(), "/login");
    assert_eq!(browser.cookies["lang"], "en");
    assert!(browser.get("/login").await.body.contains(">Sign in</h1>"));
    browser.get("/lang?set=zh&next=/login").await;
    let chinese = browser.get("/login").await;
    assert!(chinese.body.contains(">登录</h1>"));
    assert!(chinese
        .body
        .contains("aria-current=\"true\">简体中文</span>"));

    // `next` never leaves the site.
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let page = browser
            .get(&format!("/lang?set=en&next={}", encode(next)))
            .await;
        assert_eq!(page.location(), "/dashboard", "{next}");
    }
    // Static assets are served from the binary.
    let css = browser.get("/static/veil.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let js = browser.get("/static/veil.js").await;
    assert!(js.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
});

both_backends!(web_totp_sign_in_then_governed_reveal, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let id = create_customer_via_api(&client, &sally).await;
    let (_, recovery_code) = enrol_mfa(&client, &sally).await;

    // Access through the API's governance: consent, request, the DPO's approval.
    let consent = client
        .send(
            Method::POST,
            &format!("/api/v1/customers/{id}/consents"),
            Some(&sally),
            Some(json!({"purposes": ["customer_service"], "fields": ["id_number"],
                        "recipient": "internal", "sensitive": true,
                        "evidence_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})),
        )
        .await;
    assert_eq!(consent.status, StatusCode::CREATED, "{}", consent.raw);

    // The request itself goes through the web form, pre-filled from the customer page's link.
    let mut browser = Browser::new(&client);
    let password_step = browser.sign_in("sally", PASSWORD).await;
    assert_eq!(
        password_step.status,
        StatusCode::OK,
        "{}",
        password_step.body
    );
    assert!(password_step
        .body
        .contains("autocomplete=\"one-time-code\""));
    assert!(
        !password_step.sets_cookie("veil_session"),
        "not signed in yet"
    );
    assert!(
        !password_step.body.contains(PASSWORD),
        "the password is not sent back"
    );
    let csrf = password_step.csrf();
    let wrong = browser
        .post(
            "/login/totp",
            &[("csrf", &csrf), ("code", "12345x"), ("next", "/customers")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert!(wrong.body.contains("That code is wrong"));
    let signed_in = browser
        .post(
            "/login/totp",
            &[
                ("csrf", &csrf),
                ("code", &recovery_code),
                ("next", "/customers"),
            ],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert!(signed_in.sets_cookie("veil_session"));

    let form = browser
        .get(&format!(
            "/unmask-requests/new?customer={id}&field=id_number"
        ))
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains(
        "id=\"field_id_number\" name=\"field_id_number\" type=\"checkbox\" value=\"on\" checked"
    ));
    let csrf = form.csrf();
    let submitted = browser
        .post(
            "/unmask-requests/new",
            &[
                ("csrf", &csrf),
                ("customer", &id),
                ("field_id_number", "on"),
                ("purpose", "customer_service"),
                ("purpose_detail", "caller identity check"),
                ("legal_basis", "consent"),
                ("jurisdiction", "CN"),
                ("duration_minutes", "30"),
            ],
        )
        .await;
    assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.body);
    assert!(
        submitted.body.contains("Waiting for approval"),
        "{}",
        submitted.body
    );
    let requests = client
        .send(Method::GET, "/api/v1/unmask-requests", Some(&sally), None)
        .await;
    let request_id = requests.body[0]["id"].as_str().unwrap().to_owned();
    let dora = client.login("dora").await;
    let approved = client
        .send(
            Method::POST,
            &format!("/api/v1/unmask-requests/{request_id}/approve"),
            Some(&dora),
            Some(json!({"reason": "verified"})),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.raw);

    // The detail page now offers Reveal for the granted field only.
    let detail = browser.get(&format!("/customers/{id}")).await;
    assert_no_plaintext(&detail.body, "the customer page before the reveal");
    assert!(detail
        .body
        .contains("<input type=\"hidden\" name=\"field\" value=\"id_number\">"));
    assert!(!detail.body.contains("name=\"field\" value=\"phone\""));
    let csrf = detail.csrf();
    let revealed = browser
        .post(
            &format!("/customers/{id}/reveal"),
            &[("csrf", &csrf), ("field", "id_number")],
        )
        .await;
    assert_eq!(revealed.status, StatusCode::OK, "{}", revealed.body);
    assert_page_headers(&revealed);
    assert!(revealed.body.contains(ID_NUMBER), "the value is shown");
    assert!(revealed.body.contains("data-hide-after=\"60\""));
    assert!(
        !revealed.body.contains("13987654321"),
        "only the granted field"
    );

    // Audited as a reveal under the grant; the next ordinary view is masked again.
    let audit = client
        .send(
            Method::GET,
            "/api/v1/audit?action=customer.reveal",
            Some(&dora),
            None,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.raw);
    assert!(
        audit.raw.contains("customer.reveal") && audit.raw.contains("\"ok\""),
        "{}",
        audit.raw
    );
    let again = browser.get(&format!("/customers/{id}")).await;
    assert_no_plaintext(&again.body, "the customer page after the reveal");

    // A reveal without the CSRF token does nothing.
    let forged = browser
        .post(
            &format!("/customers/{id}/reveal"),
            &[("field", "id_number")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!forged.body.contains(ID_NUMBER));
});

both_backends!(
    web_reveals_a_sensitive_custom_field_under_its_grant,
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
            Some(json!({"name": "欧阳理财", "industry": "finance",
                        "custom_fields": {"annual_income": 876_543.21, "employer": "上海浦江量子科技有限公司"}})),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let (_, recovery_code) = enrol_mfa(&client, &sally).await;
        let mut browser = Browser::signed_in_with_code(&client, "sally", &recovery_code).await;
        let planted = ["876543.21", "浦江量子"];

        // Without a grant each sensitive custom field links to the request form, pre-filled with that field.
        let detail = browser.get(&format!("/customers/{id}")).await;
        assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
        assert!(
            detail.body.contains(&format!(
                "/unmask-requests/new?customer={id}&amp;field=custom.annual_income"
            )),
            "{}",
            detail.body
        );
        assert!(!detail.body.contains("name=\"field\" value=\"custom."));
        let form = browser
            .get(&format!(
                "/unmask-requests/new?customer={id}&field=custom.annual_income"
            ))
            .await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        assert!(form.body.contains(
        "id=\"field_custom.annual_income\" name=\"field_custom.annual_income\" type=\"checkbox\" value=\"on\" checked"
    ), "{}", form.body);
        assert!(form.body.contains(
        "id=\"field_custom.employer\" name=\"field_custom.employer\" type=\"checkbox\" value=\"on\">"
    ));
        assert!(form.body.contains("Annual income (CNY)"));
        assert!(
            !form.body.contains("field_custom.risk_level"),
            "plain fields are not offered"
        );
        let csrf = form.csrf();
        let submitted = browser
            .post(
                "/unmask-requests/new",
                &[
                    ("csrf", &csrf),
                    ("customer", &id),
                    ("field_custom.annual_income", "on"),
                    ("purpose", "customer_service"),
                    ("purpose_detail", "income check for the mortgage file"),
                    ("legal_basis", "contract"),
                    ("jurisdiction", "CN"),
                    ("duration_minutes", "30"),
                ],
            )
            .await;
        assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.body);
        let requests = client
            .send(Method::GET, "/api/v1/unmask-requests", Some(&sally), None)
            .await;
        assert_eq!(requests.body[0]["fields"], json!(["custom.annual_income"]));
        let request_id = requests.body[0]["id"].as_str().unwrap().to_owned();
        // The approver's inbox names the field as requested.
        let mut approver = Browser::signed_in(&client, "dora").await;
        let inbox = approver.get("/approvals").await;
        assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
        assert!(
            inbox.body.contains("custom.annual_income"),
            "{}",
            inbox.body
        );
        assert!(!inbox.body.contains("field.custom."), "{}", inbox.body);
        let dora = client.login("dora").await;
        let approved = client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{request_id}/approve"),
                Some(&dora),
                Some(json!({"reason": "verified"})),
            )
            .await;
        assert_eq!(approved.body["state"], "active", "{}", approved.raw);

        // The page offers Reveal for the granted custom field only; the value shows on that response alone.
        let detail = browser.get(&format!("/customers/{id}")).await;
        assert!(detail
            .body
            .contains("<input type=\"hidden\" name=\"field\" value=\"custom.annual_income\">"));
        assert!(!detail
            .body
            .contains("name=\"field\" value=\"custom.employer\""));
        for needle in planted {
            assert!(!detail.body.contains(needle), "{needle} before the reveal");
        }
        let csrf = detail.csrf();
        let revealed = browser
            .post(
                &format!("/customers/{id}/reveal"),
                &[("csrf", &csrf), ("field", "custom.annual_income")],
            )
            .await;
        assert_eq!(revealed.status, StatusCode::OK, "{}", revealed.body);
        assert_page_headers(&revealed);
        assert!(revealed.body.contains("876543.21"), "the value is shown");
        assert!(
            !revealed.body.contains("浦江量子"),
            "only the granted field"
        );
        let refused = browser
            .post(
                &format!("/customers/{id}/reveal"),
                &[("csrf", &csrf), ("field", "custom.employer")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        let again = browser.get(&format!("/customers/{id}")).await;
        for needle in planted {
            assert!(!again.body.contains(needle), "{needle} after the reveal");
        }
    }
);

both_backends!(web_list_filters_and_saved_segments, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "mona", Role::Manager, Some("east")).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    for (phone, tag) in [("13700003333", "vip"), ("13700004444", "vip2")] {
        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(json!({"name": "筛选", "phone": phone, "tags": [tag], "industry": "finance"})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    }
    let mut browser = Browser::new(&client);
    let signed_in = browser.sign_in("mona", PASSWORD).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let rows = |page: &Page| page.body.matches("<tr>").count().saturating_sub(1);

    let all = browser.get("/customers").await;
    assert_eq!(rows(&all), 2, "{}", all.body);
    let vip = browser.get("/customers?tag=vip&industry=finance").await;
    assert_eq!(vip.status, StatusCode::OK, "{}", vip.body);
    assert_page_headers(&vip);
    assert_eq!(rows(&vip), 1, "{}", vip.body);
    assert!(
        vip.body.contains("value=\"vip\""),
        "the filter form keeps its values"
    );
    // "Only my customers" for a manager who owns none.
    let mine = browser.get("/customers?mine=1").await;
    assert_eq!(rows(&mine), 0);
    assert!(mine.body.contains("checked"));

    // Save the filters as a segment: redirected to the list by segment, which offers it in the select.
    let csrf = vip.csrf();
    let saved = browser
        .post(
            "/customers/segments",
            &[
                ("csrf", &csrf),
                ("name", "东区VIP"),
                ("tag", "vip"),
                ("industry", "finance"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(
        saved.location().starts_with("/customers?segment="),
        "{}",
        saved.location()
    );
    let by_segment = browser.get(saved.location()).await;
    assert_eq!(rows(&by_segment), 1, "{}", by_segment.body);
    assert!(by_segment.body.contains("东区VIP"));
    // Without the CSRF token nothing is saved.
    let forged = browser
        .post("/customers/segments", &[("name", "forged"), ("tag", "vip")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let unknown = browser.get("/customers?segment=nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let segments = client
        .send(
            Method::GET,
            "/api/v1/segments",
            Some(&client.login("mona").await),
            None,
        )
        .await;
    assert_eq!(
        segments.body.as_array().unwrap().len(),
        1,
        "{}",
        segments.raw
    );
});

/// A salesperson's customer with an unmask request from her, and the DPO who decides it.
struct Governed<'a> {
    client: &'a Client,
    sally: String,
    /// One of Sally's recovery codes, for signing her in on the web.
    recovery: String,
    customer: String,
    request: String,
}

/// Sally (sales, MFA stepped up) asks for the ID number of her customer. Without consent the request is blocked.
async fn blocked_request(client: &Client) -> Governed<'_> {
    let sally = client.login("sally").await;
    let customer = create_customer_via_api(client, &sally).await;
    let (secret, recovery) = enrol_mfa(client, &sally).await;
    let (status, _, body) = post_from(
        &client.router,
        "/api/v1/auth/mfa/verify",
        Some(&sally),
        json!({"code": totp_now(&secret, 1)}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let asked = client
        .send(
            Method::POST,
            "/api/v1/unmask-requests",
            Some(&sally),
            Some(json!({
                "purpose": "customer_service", "purpose_detail": "caller identity check",
                "legal_basis": "consent", "jurisdiction": "CN", "scope": {"customer_ids": [customer]},
                "fields": ["id_number"], "mode": "view", "duration_minutes": 30
            })),
        )
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.raw);
    assert_eq!(asked.body["state"], "blocked", "{}", asked.raw);
    Governed {
        client,
        recovery,
        request: asked.body["id"].as_str().unwrap().to_owned(),
        sally,
        customer,
    }
}

impl Governed<'_> {
    async fn recheck(&self) -> serde_json::Value {
        let rechecked = self
            .client
            .send(
                Method::POST,
                &format!("/api/v1/unmask-requests/{}/recheck", self.request),
                Some(&self.sally),
                None,
            )
            .await;
        assert_eq!(rechecked.status, StatusCode::OK, "{}", rechecked.raw);
        rechecked.body
    }
}

both_backends!(
    web_consents_recorded_with_evidence_and_withdrawn,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "otto", Role::Auditor, None).await;
        let client = Client::new(&harness).await;
        let governed = blocked_request(&client).await;
        let customer = governed.customer.clone();
        let mut browser = Browser::signed_in_with_code(&client, "sally", &governed.recovery).await;

        let detail = browser.get(&format!("/customers/{customer}")).await;
        assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
        assert!(
            detail.body.contains("No consent is recorded"),
            "{}",
            detail.body
        );
        assert!(detail.body.contains("enctype=\"multipart/form-data\""));
        let csrf = detail.csrf();

        // Without the token: refused, nothing recorded.
        let document: &[u8] = b"%PDF-1.4 signed consent of the customer";
        let forged = browser
            .post_multipart(
                &format!("/customers/{customer}/consents"),
                &[
                    ("purpose_customer_service", "on"),
                    ("field_id_number", "on"),
                ],
                &[("evidence", "consent.pdf", document)],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);

        // No purpose and no evidence: the form again, with the domain's complaints in words.
        let invalid = browser
            .post_multipart(
                &format!("/customers/{customer}/consents"),
                &[("csrf", &csrf), ("recipient", "internal")],
                &[],
            )
            .await;
        assert_eq!(
            invalid.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            invalid.body
        );
        assert!(invalid.body.contains("Purposes:"), "{}", invalid.body);
        assert!(invalid.body.contains("Evidence:"), "{}", invalid.body);
        assert_page_headers(&invalid);

        // The document is reduced to its SHA-256; the sensitive-data consent is ticked.
        let recorded = browser
            .post_multipart(
                &format!("/customers/{customer}/consents"),
                &[
                    ("csrf", &csrf),
                    ("purpose_customer_service", "on"),
                    ("field_id_number", "on"),
                    ("recipient", "internal"),
                    ("sensitive", "on"),
                    ("expires_at", "2099-12-31"),
                ],
                &[("evidence", "consent.pdf", document)],
            )
            .await;
        assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
        let consents = client
            .send(
                Method::GET,
                &format!("/api/v1/customers/{customer}/consents"),
                Some(&governed.sally),
                None,
            )
            .await;
        let hash = veil_app::audit::sha256_hex(document);
        assert_eq!(
            consents.body[0]["evidence_sha256"], hash,
            "{}",
            consents.raw
        );
        assert_eq!(consents.body[0]["sensitive"], true);
        let listed = browser.get(recorded.location()).await;
        assert!(listed.body.contains("The consent was recorded."));
        assert!(listed.body.contains(&hash[..16]), "{}", listed.body);
        assert!(listed.body.contains("In force"));
        assert_no_plaintext(&listed.body, "the customer page with consents");

        // With consent, the blocked request can go ahead.
        assert_eq!(governed.recheck().await["state"], "pending");

        // Withdrawing: CSRF first, then for real.
        let consent_id = consents.body[0]["id"].as_str().unwrap().to_owned();
        let forged = browser
            .post(
                &format!("/consents/{consent_id}/withdraw"),
                &[("customer", &customer)],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let csrf = listed.csrf();
        let withdrawn = browser
            .post(
                &format!("/consents/{consent_id}/withdraw"),
                &[("csrf", &csrf), ("customer", &customer)],
            )
            .await;
        assert_eq!(
            withdrawn.status,
            StatusCode::SEE_OTHER,
            "{}",
            withdrawn.body
        );
        let after = browser.get(withdrawn.location()).await;
        assert!(after.body.contains("Withdrawn"), "{}", after.body);
        assert!(
            !after.body.contains("/withdraw\""),
            "no button on a withdrawn consent"
        );

        // An auditor cannot open customer pages at all (the domain answers not found).
        let mut auditor = Browser::signed_in(&client, "otto").await;
        let refused = auditor.get(&format!("/customers/{customer}")).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
        assert_no_plaintext(&refused.body, "the refusal");
    }
);

both_backends!(
    web_approvals_inbox_decides_and_my_access_revokes,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        add_user(&harness, "ada", Role::Admin, None).await;
        let client = Client::new(&harness).await;
        let governed = blocked_request(&client).await;
        let short_id: String = governed.request.chars().take(8).collect();

        // Blocked: in the inbox's blocked list, naming the customer who lacks consent, with no buttons.
        let mut dpo = Browser::signed_in(&client, "dora").await;
        let inbox = dpo.get("/approvals").await;
        assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
        assert_page_headers(&inbox);
        let customer_short: String = governed.customer.chars().take(8).collect();
        assert!(inbox.body.contains(&short_id), "{}", inbox.body);
        assert!(inbox.body.contains("Lacking consent"));
        assert!(inbox.body.contains(&customer_short));
        assert!(!inbox.body.contains("/decide\""), "nothing to decide yet");
        assert_no_plaintext(&inbox.body, "the approvals inbox");

        client
            .send(
                Method::POST,
                &format!("/api/v1/customers/{}/consents", governed.customer),
                Some(&governed.sally),
                Some(
                    json!({"purposes": ["customer_service"], "fields": ["id_number"],
                        "recipient": "internal", "sensitive": true,
                        "evidence_ref": "e-consent-42"}),
                ),
            )
            .await;
        assert_eq!(governed.recheck().await["state"], "pending");

        // Pending: details, checks with reasons, risk, and the decision form.
        let inbox = dpo.get("/approvals").await;
        assert!(
            inbox.body.contains("Waiting for approval"),
            "{}",
            inbox.body
        );
        assert!(inbox.body.contains("Customer consent covers it"));
        assert!(inbox.body.contains("Risk: Low"), "{}", inbox.body);
        assert!(inbox.body.contains("caller identity check"));
        assert!(inbox
            .body
            .contains(&format!("/approvals/{}/decide", governed.request)));
        let csrf = inbox.csrf();
        let decide = format!("/approvals/{}/decide", governed.request);

        // No token: refused. No reason: the domain's complaint, translated.
        let forged = dpo
            .post(&decide, &[("decision", "approve"), ("reason", "ok")])
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let no_reason = dpo
            .post(
                &decide,
                &[("csrf", &csrf), ("decision", "approve"), ("reason", " ")],
            )
            .await;
        assert_eq!(
            no_reason.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            no_reason.body
        );
        assert!(no_reason.body.contains("Give the reason for the decision."));

        // Sales has no inbox.
        let mut sales = Browser::signed_in_with_code(&client, "sally", &governed.recovery).await;
        assert_eq!(sales.get("/approvals").await.status, StatusCode::FORBIDDEN);
        let sales_csrf = sales.get("/access").await.csrf();
        let forged_by_sales = sales
            .post(
                &decide,
                &[
                    ("csrf", &sales_csrf),
                    ("decision", "approve"),
                    ("reason", "me"),
                ],
            )
            .await;
        assert_eq!(forged_by_sales.status, StatusCode::FORBIDDEN);

        // The DPO approves: back to the inbox with a notice; the grant exists.
        let approved = dpo
            .post(
                &decide,
                &[
                    ("csrf", &csrf),
                    ("decision", "approve"),
                    ("reason", "identity check is legitimate"),
                ],
            )
            .await;
        assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
        assert_eq!(approved.location(), "/approvals?done=approved");
        let after = dpo.get(approved.location()).await;
        assert!(after.body.contains("Approved. The decision was recorded."));
        assert!(after
            .body
            .contains("No requests are waiting for a decision."));

        // Sally's access page: the request active, the grant with time left, revocable.
        let access = sales.get("/access").await;
        assert_eq!(access.status, StatusCode::OK, "{}", access.body);
        assert_page_headers(&access);
        assert!(access.body.contains("Active"), "{}", access.body);
        assert!(access.body.contains("min left"), "{}", access.body);
        assert_no_plaintext(&access.body, "the access page");
        let grants = client
            .send(Method::GET, "/api/v1/grants", Some(&governed.sally), None)
            .await;
        let grant = grants.body[0]["id"].as_str().unwrap().to_owned();
        let revoke = format!("/access/grants/{grant}/revoke");
        assert!(access.body.contains(&revoke));
        assert_eq!(sales.post(&revoke, &[]).await.status, StatusCode::FORBIDDEN);
        let csrf = access.csrf();
        let revoked = sales.post(&revoke, &[("csrf", &csrf)]).await;
        assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
        let access = sales.get(revoked.location()).await;
        assert!(access.body.contains("The grant was revoked."));
        assert!(access.body.contains("Revoked"));
        assert!(!access.body.contains(&revoke));

        // An approver's own request: no buttons, and the domain's refusal explained if forced.
        let ada = client.login("ada").await;
        let (secret, recovery) = enrol_mfa(&client, &ada).await;
        let (status, _, _) = post_from(
            &client.router,
            "/api/v1/auth/mfa/verify",
            Some(&ada),
            json!({"code": totp_now(&secret, 1)}),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let own = client
            .send(
                Method::POST,
                "/api/v1/unmask-requests",
                Some(&ada),
                Some(json!({
                    "purpose": "customer_service", "purpose_detail": "own request",
                    "legal_basis": "consent", "jurisdiction": "CN",
                    "scope": {"customer_ids": [governed.customer]},
                    "fields": ["id_number"], "mode": "view", "duration_minutes": 30
                })),
            )
            .await;
        assert_eq!(own.body["state"], "pending", "{}", own.raw);
        let own_id = own.body["id"].as_str().unwrap().to_owned();
        let mut admin = Browser::new(&client);
        let step = admin.sign_in("ada", PASSWORD).await;
        let csrf = step.csrf();
        let signed_in = admin
            .post(
                "/login/totp",
                &[("csrf", &csrf), ("code", &recovery), ("next", "/approvals")],
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        let inbox = admin.get("/approvals").await;
        assert!(
            inbox.body.contains("This is your own request"),
            "{}",
            inbox.body
        );
        assert!(!inbox.body.contains(&format!("/approvals/{own_id}/decide")));
        let forced = admin
            .post(
                &format!("/approvals/{own_id}/decide"),
                &[
                    ("csrf", &inbox.csrf()),
                    ("decision", "approve"),
                    ("reason", "mine"),
                ],
            )
            .await;
        assert_eq!(forced.status, StatusCode::FORBIDDEN, "{}", forced.body);
        assert!(forced.body.contains("This is your own request"));
        // The DPO sees it with buttons.
        let inbox = dpo.get("/approvals").await;
        assert!(inbox.body.contains(&format!("/approvals/{own_id}/decide")));
    }
);

both_backends!(web_audit_viewer_filters_pages_and_verifies, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    add_user(&harness, "otto", Role::Auditor, None).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let customer = create_customer_via_api(&client, &sally).await;

    let mut auditor = Browser::signed_in(&client, "otto").await;
    let log = auditor.get("/audit").await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    assert_page_headers(&log);
    assert!(log.body.contains("customer.create"), "{}", log.body);
    assert!(log.body.contains("auth.login"));
    assert_no_plaintext(&log.body, "the audit log page");

    // Filters: by action prefix, by actor's login name, by customer, by dates.
    let filtered = auditor.get("/audit?action=customer.&actor=sally").await;
    assert!(filtered.body.contains("customer.create"));
    assert!(
        !filtered.body.contains("<code>auth.login</code>"),
        "{}",
        filtered.body
    );
    let by_customer = auditor.get(&format!("/audit?customer={customer}")).await;
    assert!(by_customer.body.contains("customer.create"));
    let future = auditor.get("/audit?from=2099-01-01").await;
    assert!(future.body.contains("No entries match."), "{}", future.body);
    let bad = auditor.get("/audit?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Paging: 50 a page; an older page links back to the newest.
    for _ in 0..60 {
        client
            .send(Method::GET, "/api/v1/customers", Some(&sally), None)
            .await;
    }
    let first = auditor.get("/audit").await;
    let marker = "href=\"/audit?before=";
    let start = first
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("a next page: {} rows", first.body.matches("<tr>").count()))
        + "href=\"".len();
    let end = first.body[start..].find('"').unwrap();
    let older = auditor.get(&first.body[start..start + end]).await;
    assert_eq!(older.status, StatusCode::OK);
    assert!(
        older.body.contains("href=\"/audit?\""),
        "a link back to the newest"
    );

    // Verify chain: CSRF-checked, result shown.
    assert_eq!(
        auditor.post("/audit/verify", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let verified = auditor
        .post("/audit/verify", &[("csrf", &log.csrf())])
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert!(
        verified.body.contains("The audit chain is intact."),
        "{}",
        verified.body
    );

    // Admins verify but do not read entries; sales and DPOs: sales refused, DPO reads.
    let mut admin = Browser::signed_in(&client, "ada").await;
    let admin_page = admin.get("/audit").await;
    assert_eq!(admin_page.status, StatusCode::OK);
    assert!(admin_page.body.contains("does not read entries"));
    assert!(!admin_page.body.contains("customer.create"));
    let mut sales = Browser::signed_in(&client, "sally").await;
    assert_eq!(sales.get("/audit").await.status, StatusCode::FORBIDDEN);
    let mut dpo = Browser::signed_in(&client, "dora").await;
    assert_eq!(dpo.get("/audit").await.status, StatusCode::OK);
});

both_backends!(web_security_and_backups_pages_for_admins, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    let _backups = take_verified_backup(&harness).await;
    let client = Client::new(&harness).await;
    let mut sales = Browser::signed_in(&client, "sally").await;
    assert_eq!(sales.get("/security").await.status, StatusCode::FORBIDDEN);
    assert_eq!(sales.get("/backups").await.status, StatusCode::FORBIDDEN);

    let mut admin = Browser::signed_in(&client, "ada").await;
    let security = admin.get("/security").await;
    assert_eq!(security.status, StatusCode::OK, "{}", security.body);
    assert_page_headers(&security);
    assert!(security.body.contains("No open alerts."));
    let csrf = security.csrf();

    // Lock-down: a confirmation page first, then the real thing.
    assert_eq!(
        admin
            .post("/security/lockdown", &[("text", "laptop stolen")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let confirm = admin
        .post(
            "/security/lockdown",
            &[("csrf", &csrf), ("text", "laptop stolen")],
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""));
    assert!(confirm.body.contains("laptop stolen"));
    let incidents = client
        .send(
            Method::GET,
            "/api/v1/incidents",
            Some(&client.login("ada").await),
            None,
        )
        .await;
    assert_eq!(
        incidents.body,
        json!([]),
        "nothing happened before confirming"
    );
    let locked = admin
        .post(
            "/security/lockdown",
            &[
                ("csrf", &csrf),
                ("text", "laptop stolen"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(locked.status, StatusCode::SEE_OTHER, "{}", locked.body);
    let security = admin.get(locked.location()).await;
    assert!(
        security.body.contains("Lock-down is in force."),
        "{}",
        security.body
    );
    let close = {
        let marker = "action=\"/security/incidents/";
        let start = security.body.find(marker).unwrap() + "action=\"".len();
        let end = security.body[start..].find('"').unwrap();
        security.body[start..start + end].to_owned()
    };
    let confirm = admin
        .post(&close, &[("csrf", &csrf), ("text", "wiped remotely")])
        .await;
    assert!(
        confirm.body.contains("Confirm end of lock-down"),
        "{}",
        confirm.body
    );
    let closed = admin
        .post(
            &close,
            &[
                ("csrf", &csrf),
                ("text", "wiped remotely"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
    assert!(admin.get("/security").await.body.contains("Lock down…"));

    // Backups: status, list, create, verify.
    let backups = admin.get("/backups").await;
    assert_eq!(backups.status, StatusCode::OK, "{}", backups.body);
    assert_page_headers(&backups);
    assert!(
        backups
            .body
            .contains("A verified backup is less than a day old."),
        "{}",
        backups.body
    );
    let csrf = backups.csrf();
    assert_eq!(
        admin.post("/backups/create", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let created = admin.post("/backups/create", &[("csrf", &csrf)]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let listed = client
        .send(
            Method::GET,
            "/api/v1/backups",
            Some(&client.login("ada").await),
            None,
        )
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2, "{}", listed.raw);
    let newest = listed.body[0]["id"].as_str().unwrap().to_owned();
    let verified = admin
        .post(&format!("/backups/{newest}/verify"), &[("csrf", &csrf)])
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert!(
        verified.body.contains("every check passed"),
        "{}",
        verified.body
    );
    let unknown = admin
        .post("/backups/..%2F..%2Fetc%2Fpasswd/verify", &[("csrf", &csrf)])
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
});

both_backends!(web_account_mfa_enrolment_and_password_change, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let mut browser = Browser::signed_in(&client, "sally").await;
    let account = browser.get("/account").await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    assert_page_headers(&account);
    assert!(account.body.contains("Two-step verification is off."));
    let csrf = account.csrf();

    assert_eq!(
        browser.post("/account/mfa/enroll", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let enrolling = browser
        .post("/account/mfa/enroll", &[("csrf", &csrf)])
        .await;
    assert_eq!(enrolling.status, StatusCode::OK, "{}", enrolling.body);
    assert_page_headers(&enrolling);
    assert!(enrolling.body.contains("<svg class=\"qr\" role=\"img\""));
    assert!(
        enrolling.body.contains("<path d=\"M4 4h1v1h-1z"),
        "the finder pattern's corner"
    );
    let secret = {
        let marker = "<code class=\"secret\">";
        let start = enrolling.body.find(marker).unwrap() + marker.len();
        let end = enrolling.body[start..].find('<').unwrap();
        veil_app::mfa::TotpSecret::from_base32(&enrolling.body[start..start + end]).unwrap()
    };
    let wrong = browser
        .post(
            "/account/mfa/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    let confirmed = browser
        .post(
            "/account/mfa/confirm",
            &[("csrf", &csrf), ("code", &totp_now(&secret, 0))],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert!(confirmed.body.contains("Recovery codes"));
    assert!(browser
        .get("/account")
        .await
        .body
        .contains("Two-step verification is on."));

    // Password: the current one must be right, the two new ones equal, the new one strong.
    let new_password = "plum orchard lantern 1887";
    let wrong_current = browser
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "nope"),
                ("new_password", new_password),
                ("repeat_password", new_password),
            ],
        )
        .await;
    assert_eq!(wrong_current.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong_current.body.contains("wrong password"));
    assert!(
        !wrong_current.body.contains(new_password),
        "passwords are not sent back"
    );
    let differ = browser
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", new_password),
                ("repeat_password", "something else"),
            ],
        )
        .await;
    assert!(differ.body.contains("The two new passwords differ."));
    let weak = browser
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", "password"),
                ("repeat_password", "password"),
            ],
        )
        .await;
    assert!(
        weak.body.contains("too short or too easy to guess"),
        "{}",
        weak.body
    );
    let changed = browser
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", new_password),
                ("repeat_password", new_password),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    assert!(changed.location().starts_with("/login"));
    // Signed out everywhere; the old password no longer works, the new one does (with the second factor).
    assert_eq!(browser.get("/account").await.status, StatusCode::SEE_OTHER);
    let old = Browser::new(&client).sign_in("sally", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = Browser::new(&client).sign_in("sally", new_password).await;
    assert_eq!(new.status, StatusCode::OK, "the TOTP step: {}", new.body);
});

both_backends!(web_dashboard_per_role, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    create_customer_via_api(&client, &sally).await;

    let mut sales = Browser::signed_in(&client, "sally").await;
    for path in ["/", "/dashboard"] {
        let page = sales.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert_page_headers(&page);
        assert_no_plaintext(&page.body, "the dashboard");
        assert!(page.body.contains("My customers by industry"));
        assert!(page
            .body
            .contains("<span class=\"number\">1</span><span class=\"label\">My customers"));
        assert!(page.body.contains(">Finance</text>"), "{}", page.body);
        assert!(page
            .body
            .contains("Upcoming birthdays and holidays (next 7 days)"));
        assert!(!page.body.contains("Requests waiting for approval"));
        assert!(
            !page.body.contains("href=\"/approvals\""),
            "no inbox link for sales"
        );
    }
    // A birthday tomorrow (China time) is on the dashboard: masked name, month and day, no year of birth.
    let china = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let tomorrow =
        chrono::Utc::now().with_timezone(&china).date_naive() + chrono::Duration::days(1);
    let birth_date = format!("1988-{}", tomorrow.format("%m-%d"));
    let birthday = create_customer_via_api_with(
        &client,
        &sally,
        json!({"name": "王小明", "birth_date": birth_date}),
    )
    .await;
    let page = sales.get("/dashboard").await;
    assert!(
        page.body.contains(&format!(
            "<span class=\"date\">{}</span> <a href=\"/customers/{birthday}\">Birthday: 王**</a> <span class=\"hint\">tomorrow</span>",
            tomorrow.format("%m-%d")
        )),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&birth_date) && !page.body.contains("王小明"));
    let mut dpo = Browser::signed_in(&client, "dora").await;
    let page = dpo.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Requests waiting for approval"));
    assert!(page.body.contains("Reveals per day, last 14 days"));
    assert!(!page.body.contains("My customers by industry"));
    assert!(!page.body.contains("Upcoming birthdays and holidays"));
    assert!(page.body.contains("href=\"/approvals\""));
    let mut admin = Browser::signed_in(&client, "ada").await;
    let page = admin.get("/dashboard").await;
    assert!(page.body.contains("Open security alerts"), "{}", page.body);
    assert!(page.body.contains("href=\"/security\""));
});

both_backends!(web_admin_dashboard_counts_everyone, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let first = create_customer_via_api(&client, &sally).await;
    create_customer_via_api_with(
        &client,
        &sally,
        json!({"name": "王小明", "industry": "education"}),
    )
    .await;
    let mut admin = Browser::signed_in(&client, "ada").await;
    let page = admin.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_page_headers(&page);
    assert_no_plaintext(&page.body, "the admin dashboard");
    // The admin's count comes from the counts the triggers keep, not from a scan: the same numbers.
    assert!(page
        .body
        .contains("<span class=\"number\">2</span><span class=\"label\">My customers"));
    assert!(page.body.contains(">Finance</text>"), "{}", page.body);
    assert!(page.body.contains(">Education</text>"), "{}", page.body);
    // An industry change moves the customer to its new bar.
    let changed = client
        .send(
            Method::PATCH,
            &format!("/api/v1/customers/{first}"),
            Some(&sally),
            Some(json!({"industry": "education"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.raw);
    let page = admin.get("/dashboard").await;
    assert!(!page.body.contains(">Finance</text>"), "{}", page.body);
    assert!(page.body.contains(">Education</text>"));
    assert!(page
        .body
        .contains("<span class=\"number\">2</span><span class=\"label\">My customers"));
});

both_backends!(web_users_and_teams_for_admins, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    let client = Client::new(&harness).await;
    let mut sales = Browser::signed_in(&client, "sally").await;
    assert_eq!(sales.get("/users").await.status, StatusCode::FORBIDDEN);
    assert!(!sales
        .get("/dashboard")
        .await
        .body
        .contains("href=\"/users\""));

    let mut admin = Browser::signed_in(&client, "ada").await;
    let page = admin.get("/users").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_page_headers(&page);
    assert!(page.body.contains("href=\"/users\""), "in the navigation");
    assert!(page.body.contains("data-user=\"sally\""));
    assert!(
        page.body.contains("This is you"),
        "no role form for oneself"
    );
    assert!(!page.body.contains("action=\"/users/ada/disable\""));
    assert!(
        page.body.contains("Off, but required for this role"),
        "admins must use MFA"
    );
    let csrf = page.csrf();

    // Every form needs the token.
    for (path, form) in [
        (
            "/users/new",
            vec![
                ("username", "eve"),
                ("password", "correct horse battery staple"),
                ("role", "admin"),
            ],
        ),
        ("/users/sally/disable", vec![]),
        ("/teams/new", vec![("name", "evil")]),
    ] {
        assert_eq!(
            admin.post(path, &form).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }

    // Teams: a top-level team, a child, and refusals next to the field.
    for (name, parent) in [("east", ""), ("east-north", "east")] {
        let done = admin
            .post(
                "/teams/new",
                &[("csrf", &csrf), ("name", name), ("parent", parent)],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), "/users?done=team");
    }
    let taken = admin
        .post(
            "/teams/new",
            &[("csrf", &csrf), ("name", "east"), ("parent", "")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        taken.body.contains("This name is already taken."),
        "{}",
        taken.body
    );
    let page = admin.get("/users?done=team").await;
    assert!(page.body.contains("The team was added."));
    assert!(
        page.body.contains("<td>east-north</td><td>east</td>"),
        "{}",
        page.body
    );

    // A new account: errors in the user's language, the password never put back into the page.
    let weak = admin
        .post(
            "/users/new",
            &[
                ("csrf", &csrf),
                ("username", "newbie"),
                ("password", "hunter2"),
                ("role", "sales"),
                ("team", "east"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_page_headers(&weak);
    assert!(
        weak.body.contains("This password is too short."),
        "{}",
        weak.body
    );
    assert!(weak.body.contains("value=\"newbie\""));
    assert!(!weak.body.contains("hunter2"));
    let mut chinese = Browser::signed_in(&client, "ada").await;
    chinese.accept_language = Some("zh-CN,zh;q=0.9");
    let zh_csrf = chinese.get("/users").await.csrf();
    let weak = chinese
        .post(
            "/users/new",
            &[
                ("csrf", &zh_csrf),
                ("username", "newbie"),
                ("password", "hunter2"),
                ("role", "sales"),
                ("team", "nowhere"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("密码太短。"), "{}", weak.body);
    let unknown_team = chinese
        .post(
            "/users/new",
            &[
                ("csrf", &zh_csrf),
                ("username", "newbie"),
                ("password", "correct horse battery staple"),
                ("role", "sales"),
                ("team", "nowhere"),
            ],
        )
        .await;
    assert_eq!(unknown_team.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown_team.body.contains("请从给出的选项中选择"),
        "{}",
        unknown_team.body
    );
    let added = admin
        .post(
            "/users/new",
            &[
                ("csrf", &csrf),
                ("username", "newbie"),
                ("password", PASSWORD),
                ("role", "sales"),
                ("team", "east"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), "/users?done=added");

    // Role and team; not one's own.
    let changed = admin
        .post(
            "/users/newbie/role",
            &[("csrf", &csrf), ("role", "manager"), ("team", "east-north")],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let newbie = harness
        .veil
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .find(|user| user.username == "newbie")
        .unwrap();
    assert_eq!(
        (newbie.role, newbie.team.as_deref()),
        (Role::Manager, Some("east-north"))
    );
    let own = admin
        .post(
            "/users/ada/role",
            &[("csrf", &csrf), ("role", "sales"), ("team", "")],
        )
        .await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        own.body.contains("You cannot change your own role"),
        "{}",
        own.body
    );

    // Disable: the user is signed out and cannot sign in; enable: they can again.
    let mut newbie_browser = Browser::signed_in(&client, "newbie").await;
    let disabled = admin
        .post("/users/newbie/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER, "{}", disabled.body);
    assert_ne!(
        newbie_browser.get("/dashboard").await.status,
        StatusCode::OK
    );
    assert_ne!(
        Browser::new(&client)
            .sign_in("newbie", PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = admin.get("/users").await;
    assert!(page.body.contains("action=\"/users/newbie/enable\""));
    let enabled = admin.post("/users/newbie/enable", &[("csrf", &csrf)]).await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER, "{}", enabled.body);
    Browser::signed_in(&client, "newbie").await;

    // Lock-outs after failed sign-ins are visible.
    for _ in 0..5 {
        Browser::new(&client)
            .sign_in("sally", "not the password")
            .await;
    }
    let page = admin.get("/users").await;
    assert!(
        page.body.contains("Locked after failed sign-ins"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("users."), "an untranslated key");
});

both_backends!(web_policy_preview_shows_synthetic_values_only, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    add_user(&harness, "ada", Role::Admin, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    create_customer_via_api(&client, &sally).await;
    let mut sales = Browser::signed_in(&client, "sally").await;
    assert_eq!(sales.get("/policies").await.status, StatusCode::FORBIDDEN);

    let sample = veil_app::policies::preview_samples(1).remove(0);
    let phone = &sample
        .iter()
        .find(|(field, _)| *field == "phone")
        .unwrap()
        .1;
    for username in ["ada", "dora"] {
        let mut browser = Browser::signed_in(&client, username).await;
        let page = browser.get("/policies").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_page_headers(&page);
        assert_no_plaintext(&page.body, "the policy page");
        assert!(
            page.body.contains("href=\"/policies\""),
            "in the navigation"
        );
        assert!(page
            .body
            .contains("The built-in default policy is in force."));
        // The synthetic sample and its default mask (138****5678 style) for the roles.
        assert!(
            page.body.contains(&format!("<code>{phone}</code>")),
            "{}",
            page.body
        );
        let masked = format!("{}****{}", &phone[..3], &phone[7..]);
        assert!(page.body.contains(&masked), "{masked}: {}", page.body);
        assert!(page.body.contains("<code>default_mask</code>"));
        for role in ["Administrator", "Sales", "Auditor"] {
            assert!(
                page.body
                    .contains(&format!("<th scope=\"col\">{role}</th>")),
                "{role}"
            );
        }
        assert!(!page.body.contains("policies."), "an untranslated key");
    }
    let mut chinese = Browser::signed_in(&client, "ada").await;
    chinese.accept_language = Some("zh-CN");
    let page = chinese.get("/policies").await;
    assert!(page.body.contains("脱敏策略"));
    assert!(page.body.contains("虚构"));
});

both_backends!(web_customer_edit_with_inline_errors, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "dora", Role::Dpo, None).await;
    let client = Client::new(&harness).await;
    let sally = client.login("sally").await;
    let id = create_customer_via_api(&client, &sally).await;
    let mut dpo = Browser::signed_in(&client, "dora").await;
    let refused = dpo.get(&format!("/customers/{id}/edit")).await.status;
    assert!(
        [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&refused),
        "{refused}"
    );

    let mut sales = Browser::signed_in(&client, "sally").await;
    let detail = sales.get(&format!("/customers/{id}")).await;
    assert!(detail
        .body
        .contains(&format!("href=\"/customers/{id}/edit\"")));
    let form = sales.get(&format!("/customers/{id}/edit")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert_page_headers(&form);
    assert_no_plaintext(&form.body, "the edit form");
    assert!(form
        .body
        .contains(&format!("action=\"/customers/{id}/edit\"")));
    assert!(form.body.contains("Now 139****4321."), "{}", form.body);
    assert!(
        form.body.contains("value=\"vip\""),
        "tags are shown to edit"
    );
    let csrf = form.csrf();

    // Without the token nothing happens; a wrong check digit is shown next to the field, in the user's language.
    let edit = format!("/customers/{id}/edit");
    assert_eq!(
        sales
            .post(&edit, &[("id_number", "330106197312210035")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let wrong = sales
        .post(
            &edit,
            &[
                ("csrf", &csrf),
                ("id_number", "330106197312210035"),
                ("industry", "finance"),
                ("tags", "vip"),
            ],
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    assert_page_headers(&wrong);
    assert!(
        wrong.body.contains("The check digit is wrong"),
        "{}",
        wrong.body
    );
    assert!(wrong.body.contains("aria-invalid=\"true\""));
    let bad_mobile = sales
        .post(
            &edit,
            &[("csrf", &csrf), ("phone", "12345"), ("industry", "finance")],
        )
        .await;
    assert_eq!(bad_mobile.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad_mobile.body.contains("phone-error"),
        "{}",
        bad_mobile.body
    );
    let mut chinese = Browser::signed_in(&client, "sally").await;
    chinese.accept_language = Some("zh-CN");
    let zh_csrf = chinese.get(&edit).await.csrf();
    let wrong = chinese
        .post(
            &edit,
            &[("csrf", &zh_csrf), ("id_number", "330106197312210035")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("校验"), "{}", wrong.body);

    // Nothing was changed by the refusals; a good edit replaces what was typed and keeps the rest.
    let saved = sales
        .post(
            &edit,
            &[
                ("csrf", &csrf),
                ("phone", "13812345678"),
                ("industry", "education"),
                ("tags", "vip, new"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(saved.location(), format!("/customers/{id}"));
    let view = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}"),
            Some(&sally),
            None,
        )
        .await;
    assert_eq!(view.body["phone"], "138****5678", "{}", view.raw);
    assert_eq!(view.body["industry"], "education");
    assert_eq!(view.body["tags"], json!(["vip", "new"]));
    assert!(
        view.body["email"].as_str().unwrap().contains('*'),
        "kept: {}",
        view.raw
    );
    assert!(view.body["id_number"].as_str().unwrap().contains('*'));

    // An industry the form does not offer (given through the API) stays selected, so saving keeps it.
    let hotel = create_customer_via_api_with(
        &client,
        &sally,
        json!({"name": "王小明", "industry": "hotel", "gender": "female"}),
    )
    .await;
    let form = sales.get(&format!("/customers/{hotel}/edit")).await;
    assert!(
        form.body.contains("<option value=\"hotel\" selected>"),
        "{}",
        form.body
    );
    assert!(form.body.contains("<option value=\"female\" selected>"));
});

both_backends!(web_customer_page_shows_orders_and_points, |harness| {
    add_user(&harness, "ada", Role::Admin, None).await;
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "audrey", Role::Auditor, None).await;
    let client = Client::new(&harness).await;
    let ada = client.login("ada").await;
    let sally = client.login("sally").await;
    let id = create_customer_via_api(&client, &sally).await;
    let product = client
        .send(Method::POST, "/api/v1/products", Some(&ada),
              Some(json!({"sku": "TEA-SET", "name": "功夫茶具套装", "category": "tea", "price_fen": 129_950})))
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.raw);
    let ordered = client
        .send(Method::POST, &format!("/api/v1/customers/{id}/orders"), Some(&sally),
              Some(json!({"items": [{"product_id": product.body["id"], "quantity": 1}], "status": "paid"})))
        .await;
    assert_eq!(ordered.status, StatusCode::CREATED, "{}", ordered.raw);
    // Another customer bought the tea set and a kettle: the kettle is what this customer is offered.
    let kettle = client
        .send(Method::POST, "/api/v1/products", Some(&ada),
              Some(json!({"sku": "KETTLE", "name": "电陶炉烧水壶", "category": "tea", "price_fen": 39_900})))
        .await;
    assert_eq!(kettle.status, StatusCode::CREATED, "{}", kettle.raw);
    let other = create_customer_via_api_with(&client, &sally, json!({"name": "王小明"})).await;
    let both = client
        .send(Method::POST, &format!("/api/v1/customers/{other}/orders"), Some(&sally),
              Some(json!({"items": [{"product_id": product.body["id"], "quantity": 1},
                                    {"product_id": kettle.body["id"], "quantity": 1}], "status": "paid"})))
        .await;
    assert_eq!(both.status, StatusCode::CREATED, "{}", both.raw);
    harness.veil.refresh_product_neighbours().await.unwrap();

    let mut browser = Browser::signed_in(&client, "sally").await;
    let detail = browser.get(&format!("/customers/{id}")).await;
    let recommended = detail
        .body
        .split("<ol class=\"recommended\"")
        .nth(1)
        .unwrap_or_else(|| panic!("a recommendation list: {}", detail.body));
    let recommended = recommended.split("</ol>").next().unwrap();
    assert!(recommended.contains("电陶炉烧水壶"), "{recommended}");
    assert!(
        recommended.contains("Bought by customers who bought the same"),
        "{recommended}"
    );
    assert!(recommended.contains("CNY 399.00"), "{recommended}");
    // What the customer already bought is not offered again.
    assert!(!recommended.contains("功夫茶具套装"), "{recommended}");
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_no_plaintext(&detail.body, "the customer page with orders");
    assert!(
        detail.body.contains("Orders and loyalty"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("功夫茶具套装 × 1"), "{}", detail.body);
    assert!(detail.body.contains("CNY 1299.50"), "{}", detail.body);
    assert!(detail.body.contains("<td>Paid</td>"), "{}", detail.body);
    // ¥1,299.50 earns 1,299 points: a silver member.
    assert!(detail.body.contains("<dd>1299</dd>"), "{}", detail.body);
    assert!(detail.body.contains("<dd>Silver</dd>"), "{}", detail.body);

    browser.accept_language = Some("zh-CN");
    let chinese = browser.get(&format!("/customers/{id}")).await;
    assert!(chinese.body.contains("订单与积分"), "{}", chinese.body);
    assert!(chinese.body.contains("<td>已支付</td>"), "{}", chinese.body);
    assert!(chinese.body.contains("为该客户推荐"), "{}", chinese.body);
    assert!(
        chinese.body.contains("买过相同商品的客户也买了"),
        "{}",
        chinese.body
    );
    assert!(
        chinese.body.contains("<dd>银卡会员</dd>"),
        "{}",
        chinese.body
    );
});

/// The ticket id in a `/tickets/{id}?done=…` redirect.
fn ticket_id_from(location: &str) -> String {
    let rest = location
        .strip_prefix("/tickets/")
        .unwrap_or_else(|| panic!("a ticket page: {location}"));
    rest.split('?').next().unwrap().to_owned()
}

both_backends!(
    web_tickets_open_comment_change_reassign_and_scope,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sam", Role::Sales, Some("east")).await;
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "sue", Role::Service, Some("east")).await;
        add_user(&harness, "audrey", Role::Auditor, None).await;
        let client = Client::new(&harness).await;
        let token = client.login("sally").await;
        let customer = create_customer_via_api(&client, &token).await;
        // Numbers typed into the ticket's free text: finding them on any page is a leak.
        let typed_phone = "13712340987";

        let mut sally = Browser::signed_in(&client, "sally").await;
        let page = sally.get(&format!("/customers/{customer}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page
            .body
            .contains(&format!("href=\"/tickets/new?customer={customer}\"")));
        assert!(page.body.contains("No tickets to show."), "{}", page.body);
        assert!(
            page.body.contains("href=\"/tickets\""),
            "nav link for sales"
        );

        // The new-ticket form: a blank subject is refused next to its field, keeping what was typed.
        let form = sally
            .get(&format!("/tickets/new?customer={customer}"))
            .await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        assert_page_headers(&form);
        assert_no_plaintext(&form.body, "the new-ticket form");
        assert!(form.body.contains("司马**"), "masked customer name");
        let csrf = form.csrf();
        let blank = sally
            .post(
                "/tickets/new",
                &[
                    ("csrf", &csrf),
                    ("customer", &customer),
                    ("channel", "wechat"),
                    ("category", "complaint"),
                    ("priority", "urgent"),
                    ("subject", " "),
                    ("description", "空调不制冷"),
                ],
            )
            .await;
        assert_eq!(
            blank.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            blank.body
        );
        assert!(
            blank.body.contains("id=\"subject-error\""),
            "{}",
            blank.body
        );
        assert!(blank.body.contains("空调不制冷"), "the description is kept");
        let description = format!("客户电话{typed_phone}，空调不制冷");
        let created = sally
            .post(
                "/tickets/new",
                &[
                    ("csrf", &csrf),
                    ("customer", &customer),
                    ("channel", "wechat"),
                    ("category", "complaint"),
                    ("priority", "urgent"),
                    ("subject", "空调投诉"),
                    ("description", &description),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let ticket = ticket_id_from(created.location());
        let path = format!("/tickets/{ticket}");

        let detail = sally.get(created.location()).await;
        assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
        assert_page_headers(&detail);
        assert_no_plaintext(&detail.body, "the ticket page");
        assert!(!detail.body.contains(typed_phone), "typed number masked");
        assert!(
            detail.body.contains("客户电话137****0987"),
            "{}",
            detail.body
        );
        assert!(detail.body.contains("The ticket was opened."));
        assert!(detail.body.contains("司马**"), "the customer, masked");
        assert!(
            detail
                .body
                .contains("<dd class=\"ticket-status\">Open</dd>"),
            "{}",
            detail.body
        );
        assert!(
            detail.body.contains("due in"),
            "SLA time left: {}",
            detail.body
        );
        assert!(
            detail.body.contains("<dd>sally <span class=\"hint\">("),
            "assigned to the owner: {}",
            detail.body
        );
        // Only the transitions the domain allows are offered.
        assert!(detail.body.contains("<option value=\"in_progress\">"));
        assert!(!detail.body.contains("<option value=\"reopened\">"));

        // The list, with filters in the URL.
        let list = sally.get("/tickets").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        assert_page_headers(&list);
        assert_no_plaintext(&list.body, "the ticket list");
        assert!(
            list.body.contains(&format!("href=\"{path}\">空调投诉</a>")),
            "{}",
            list.body
        );
        assert!(list.body.contains(">Urgent<"));
        let urgent = sally.get("/tickets?status=open&priority=urgent").await;
        assert!(urgent.body.contains(&path), "{}", urgent.body);
        let low = sally.get("/tickets?priority=low").await;
        assert!(!low.body.contains(&path));
        assert!(low.body.contains("No tickets to show."));
        let customer_page = sally.get(&format!("/customers/{customer}")).await;
        assert!(customer_page
            .body
            .contains(&format!("href=\"{path}\">空调投诉</a>")));

        // A comment without the form's token changes nothing; with it, it appears masked and stops the timer.
        let refused = sally
            .post(&format!("{path}/comment"), &[("body", "不该出现的评论")])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        let csrf = detail.csrf();
        let comment = format!("已回电 {typed_phone}");
        let commented = sally
            .post(
                &format!("{path}/comment"),
                &[("csrf", &csrf), ("body", &comment)],
            )
            .await;
        assert_eq!(
            commented.status,
            StatusCode::SEE_OTHER,
            "{}",
            commented.body
        );
        assert_eq!(commented.location(), format!("{path}?done=commented"));
        let detail = sally.get(&path).await;
        assert!(
            detail.body.contains("已回电 137****0987"),
            "{}",
            detail.body
        );
        assert!(!detail.body.contains("不该出现的评论"));
        assert!(!detail.body.contains(typed_phone));
        assert!(
            detail.body.contains("— met"),
            "first response met: {}",
            detail.body
        );

        // Status change, recorded in the history; a transition the domain refuses is explained.
        let changed = sally
            .post(
                &format!("{path}/status"),
                &[
                    ("csrf", &csrf),
                    ("status", "in_progress"),
                    ("priority", "urgent"),
                ],
            )
            .await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
        let detail = sally.get(&path).await;
        assert!(detail
            .body
            .contains("<dd class=\"ticket-status\">In progress</dd>"));
        assert!(
            detail.body.contains("Open → In progress · sally"),
            "{}",
            detail.body
        );
        // Raising or lowering the priority moves the deadlines (high: resolution within 8 hours).
        let lowered = sally
            .post(
                &format!("{path}/status"),
                &[
                    ("csrf", &csrf),
                    ("status", ""),
                    ("priority", "high"),
                    ("current_priority", "urgent"),
                ],
            )
            .await;
        assert_eq!(lowered.status, StatusCode::SEE_OTHER, "{}", lowered.body);
        let detail = sally.get(&path).await;
        assert!(
            detail
                .body
                .contains("<dd class=\"priority-high\">High</dd>"),
            "{}",
            detail.body
        );
        assert!(detail
            .body
            .contains("<dd class=\"ticket-status\">In progress</dd>"));
        let backwards = sally
            .post(
                &format!("{path}/status"),
                &[("csrf", &csrf), ("status", "open")],
            )
            .await;
        assert_eq!(
            backwards.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            backwards.body
        );
        assert!(
            backwards.body.contains("cannot move to this status"),
            "{}",
            backwards.body
        );

        // Another salesperson neither lists nor opens it.
        let mut sam = Browser::signed_in(&client, "sam").await;
        assert_eq!(sam.get(&path).await.status, StatusCode::NOT_FOUND);
        assert!(!sam.get("/tickets").await.body.contains(&path));
        let sam_csrf = sam.get("/tickets").await.csrf();
        let forced = sam
            .post(
                &format!("{path}/comment"),
                &[("csrf", &sam_csrf), ("body", "x")],
            )
            .await;
        assert_eq!(forced.status, StatusCode::NOT_FOUND);

        // The manager sees the team's tickets and reassigns to a service agent, who then finds it as theirs.
        let sue_id = harness
            .veil
            .actor_by_username("sue")
            .await
            .unwrap()
            .user_id
            .to_string();
        let mut mona = Browser::signed_in(&client, "mona").await;
        let team_list = mona.get("/tickets").await;
        assert!(team_list.body.contains(&path), "{}", team_list.body);
        assert!(
            team_list.body.contains("My team"),
            "the manager's scope is named"
        );
        let mona_detail = mona.get(&path).await;
        assert!(
            mona_detail.body.contains("id=\"assign-heading\""),
            "{}",
            mona_detail.body
        );
        let mona_csrf = mona_detail.csrf();
        let reassigned = mona
            .post(
                &format!("{path}/assign"),
                &[
                    ("csrf", &mona_csrf),
                    ("assignee", &sue_id),
                    ("assign_by", "owner"),
                    ("team", ""),
                ],
            )
            .await;
        assert_eq!(
            reassigned.status,
            StatusCode::SEE_OTHER,
            "{}",
            reassigned.body
        );
        let detail = mona.get(&path).await;
        assert!(
            detail
                .body
                .contains("sue <span class=\"hint\">(chosen by hand)</span>"),
            "{}",
            detail.body
        );
        let mut sue = Browser::signed_in(&client, "sue").await;
        let mine = sue.get("/tickets?scope=mine").await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
        assert!(mine.body.contains(&path), "{}", mine.body);
        let sue_detail = sue.get(&path).await;
        assert!(
            !sue_detail.body.contains("id=\"assign-heading\""),
            "service staff do not reassign"
        );

        // The resolution target is missed: the ticket is escalated to the manager and marked breached.
        let later = chrono::Utc::now().timestamp_millis() + 9 * 3_600_000;
        assert_eq!(
            harness.veil.escalate_ticket_breaches(later).await.unwrap(),
            1
        );
        let detail = sally.get(&path).await;
        assert!(
            detail.body.contains("class=\"breached-marker\""),
            "{}",
            detail.body
        );
        assert!(
            detail.body.contains("Resolution target missed"),
            "{}",
            detail.body
        );
        assert!(detail.body.contains("escalated to mona"), "{}", detail.body);
        let breached = sally.get("/tickets?breached=yes").await;
        assert!(breached.body.contains(&path));
        assert!(!sally.get("/tickets?breached=no").await.body.contains(&path));

        // In Chinese.
        sally.accept_language = Some("zh-CN,zh;q=0.9");
        let chinese = sally.get(&path).await;
        assert_eq!(chinese.status, StatusCode::OK);
        assert!(chinese.body.contains("状态历史"), "{}", chinese.body);
        assert!(chinese.body.contains("待处理 → 处理中"), "{}", chinese.body);
        assert!(chinese.body.contains("年"), "dates in the Chinese style");
        assert!(chinese.body.contains("已超时限"));

        // Roles that do not work with tickets get no link and no page.
        let mut audrey = Browser::signed_in(&client, "audrey").await;
        let dashboard = audrey.get("/dashboard").await;
        assert!(!dashboard.body.contains("href=\"/tickets\""));
        assert_eq!(audrey.get("/tickets").await.status, StatusCode::FORBIDDEN);
        assert_eq!(audrey.get(&path).await.status, StatusCode::FORBIDDEN);
    }
);

/// How many unmask requests `token`'s user sees.
async fn unmask_request_count(client: &Client, token: &str) -> usize {
    let listed = client
        .send(Method::GET, "/api/v1/unmask-requests", Some(token), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.raw);
    listed.body.as_array().map(Vec::len).unwrap_or_default()
}

/// The unmask request form for one customer's ID number, filled in.
fn request_form(
    customer: &str,
    basis: &str,
    detail: &str,
    csrf: Option<&str>,
) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = [
        ("customer", customer),
        ("field_id_number", "on"),
        ("purpose", "customer_service"),
        ("purpose_detail", detail),
        ("legal_basis", basis),
        ("jurisdiction", "CN"),
        ("duration_minutes", "30"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    if let Some(csrf) = csrf {
        fields.push(("csrf".to_owned(), csrf.to_owned()));
    }
    fields
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

fn live_check(result: &serde_json::Value, name: &str) -> serde_json::Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == name)
        .unwrap_or_else(|| panic!("check {name} in {result}"))
        .clone()
}

both_backends!(
    web_unmask_form_checks_live_without_creating_a_request,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let token = client.login("sally").await;
        let customer = create_customer_via_api(&client, &token).await;

        let mut sally = Browser::signed_in(&client, "sally").await;
        let form = sally
            .get(&format!(
                "/unmask-requests/new?customer={customer}&field=id_number"
            ))
            .await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        assert_page_headers(&form);
        assert!(form
            .body
            .contains("data-check-url=\"/unmask-requests/check\""));
        assert!(
            form.body.contains("id=\"live-checks\""),
            "the panel the script fills"
        );
        let script = sally.get("/static/veil.js").await;
        assert!(script.body.contains("data-live-checks"));
        assert!(
            !script.body.contains("innerHTML"),
            "the answer is shown as text only"
        );
        let csrf = form.csrf();

        // Consent as the basis, but no consent recorded: the consent check fails, with the domain's reason.
        let fields = request_form(&customer, "consent", "verify the caller", Some(&csrf));
        let live = sally.post("/unmask-requests/check", &pairs(&fields)).await;
        assert_eq!(live.status, StatusCode::OK, "{}", live.body);
        assert_eq!(live.headers[header::CACHE_CONTROL], "no-store");
        assert!(live.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert_no_plaintext(&live.body, "the live checks");
        let result: serde_json::Value = serde_json::from_str(&live.body).unwrap();
        assert_eq!(result["valid"], true, "{result}");
        assert_eq!(live_check(&result, "legal_basis")["met"], true, "{result}");
        let consent = live_check(&result, "consent");
        assert_eq!(consent["met"], false, "{result}");
        assert_eq!(consent["label"], "Customer consent covers it");
        assert!(
            consent["reason"]
                .as_str()
                .unwrap()
                .contains("lack a live consent"),
            "{result}"
        );
        assert!(
            result["summary"]
                .as_str()
                .unwrap()
                .contains("Would be held"),
            "{result}"
        );
        assert!(["low", "medium", "high"].contains(&result["risk"].as_str().unwrap()));

        // A basis that does not fit the purpose is flagged as soon as it is chosen; in Chinese for a Chinese browser.
        sally.accept_language = Some("zh-CN");
        let fields = request_form(
            &customer,
            "vital_interests",
            "verify the caller",
            Some(&csrf),
        );
        let live = sally.post("/unmask-requests/check", &pairs(&fields)).await;
        let result: serde_json::Value = serde_json::from_str(&live.body).unwrap();
        assert_eq!(live_check(&result, "legal_basis")["met"], false, "{result}");
        assert_eq!(
            live_check(&result, "legal_basis")["label"],
            "合法性基础与目的相符"
        );
        // The reason is worded in Chinese too, the basis by its name, not the domain's English.
        let reason = live_check(&result, "legal_basis")["reason"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(reason.contains("不能支持目的"), "{reason}");
        assert!(reason.contains("保护生命健康和财产安全"), "{reason}");
        assert!(!reason.contains("does not support"), "{reason}");
        assert!(
            result["summary"].as_str().unwrap().contains("风险"),
            "{result}"
        );
        sally.accept_language = None;

        // Incomplete: what to fix, no checks.
        let fields = request_form(&customer, "consent", " ", Some(&csrf));
        let live = sally.post("/unmask-requests/check", &pairs(&fields)).await;
        let result: serde_json::Value = serde_json::from_str(&live.body).unwrap();
        assert_eq!(result["valid"], false, "{result}");
        assert!(
            result["errors"][0]
                .as_str()
                .unwrap()
                .starts_with("Purpose in words"),
            "{result}"
        );

        // Without the form's token: refused.
        let fields = request_form(&customer, "consent", "verify the caller", None);
        let forged = sally.post("/unmask-requests/check", &pairs(&fields)).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // None of this created a request; submitting the same form (the path without the script) does.
        assert_eq!(unmask_request_count(&client, &token).await, 0);
        let fields = request_form(&customer, "consent", "verify the caller", Some(&csrf));
        let submitted = sally.post("/unmask-requests/new", &pairs(&fields)).await;
        assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.body);
        assert_eq!(unmask_request_count(&client, &token).await, 1);
    }
);

both_backends!(web_notes_are_added_and_shown_masked_in_place, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "wendy", Role::Sales, Some("west")).await;
    add_user(&harness, "otto", Role::Auditor, None).await;
    let client = Client::new(&harness).await;
    let token = client.login("sally").await;
    let id = create_customer_via_api(&client, &token).await;
    let mut browser = Browser::signed_in(&client, "sally").await;
    let notes = format!("/customers/{id}/notes");

    let detail = browser.get(&format!("/customers/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert!(detail.body.contains("No notes yet."), "{}", detail.body);
    assert!(detail.body.contains(&format!("action=\"{notes}\"")));
    let csrf = detail.csrf();
    let text = format!("客户电话13812345678，身份证{ID_NUMBER}\nCall back Monday");

    // Without the token: refused, nothing stored.
    let forged = browser.post(&notes, &[("body", &text)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);

    // An empty note: the page again, the error in words next to the form.
    let empty = browser
        .post(&notes, &[("csrf", &csrf), ("body", "  ")])
        .await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.body
    );
    assert!(
        empty
            .body
            .contains("A note must have 1 to 10,000 characters."),
        "{}",
        empty.body
    );
    assert_page_headers(&empty);

    let added = browser
        .post(&notes, &[("csrf", &csrf), ("body", &text)])
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), format!("/customers/{id}#notes"));
    let shown = browser.get(&format!("/customers/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_page_headers(&shown);
    let masked_id = format!("{}********{}", &ID_NUMBER[..6], &ID_NUMBER[14..]);
    for masked in [
        "138****5678",
        masked_id.as_str(),
        "Call back Monday",
        "sally · ",
    ] {
        assert!(shown.body.contains(masked), "{masked} in {}", shown.body);
    }
    assert!(!shown.body.contains("13812345678"), "{}", shown.body);
    assert!(shown.body.contains("class=\"note-body\""));
    assert!(!shown.body.contains("No notes yet."));
    assert_no_plaintext(&shown.body, "the customer page with notes");

    // A salesperson of another team cannot see the customer, so cannot add a note to it either.
    let mut wendy = Browser::signed_in(&client, "wendy").await;
    let wendy_csrf = wendy.get("/customers").await.csrf();
    let refused = wendy
        .post(&notes, &[("csrf", &wendy_csrf), ("body", "hello")])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let listed = client
        .send(
            Method::GET,
            &format!("/api/v1/customers/{id}/notes"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.raw);

    // A role that does not read notes (nor customers) gets no page at all.
    let mut auditor = Browser::signed_in(&client, "otto").await;
    let refused = auditor.get(&format!("/customers/{id}")).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    assert!(!refused.body.contains("138****5678"));
});

both_backends!(web_deal_board_renders_stages_and_moves_a_card, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let token = client.login("sally").await;
    let customer = create_customer_via_api_with(
        &client,
        &token,
        json!({"name": "司马相如", "phone": "13912340000", "industry": "real_estate"}),
    )
    .await;
    let created = client
        .send(
            Method::POST,
            "/api/v1/deals",
            Some(&token),
            Some(
                json!({"customer_id": customer, "title": "学区房三居", "amount_minor": 350_000_000,
                        "expected_close": "2030-06-30"}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let task = client
        .send(
            Method::POST,
            "/api/v1/tasks",
            Some(&token),
            Some(json!({"title": "约客户看房", "deal_id": id,
                        "due_at": (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339()})),
        )
        .await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.raw);

    let mut browser = Browser::signed_in(&client, "sally").await;
    let board = browser.get("/deals").await;
    assert_eq!(board.status, StatusCode::OK, "{}", board.body);
    assert_page_headers(&board);
    // One column per stage of the customer's industry pipeline, in order, with the funnel above.
    let mut last = 0;
    for stage in [
        "First contact",
        "Viewing",
        "Intent",
        "Subscription",
        "Contract signed",
        "Closing",
    ] {
        let at = board.body[last..]
            .find(&format!(">{stage}</h2>"))
            .unwrap_or_else(|| panic!("column {stage} in order"));
        last += at;
    }
    assert!(board.body.contains("<svg class=\"chart funnel\""));
    assert!(board.body.contains("学区房三居"));
    assert!(
        board.body.contains("¥3,500,000.00"),
        "the amount per locale"
    );
    assert!(board.body.contains("2030-06-30"));
    assert_no_plaintext(&board.body, "the board");
    let column = |body: &str, stage: &str| -> String {
        let start = body.find(&format!("id=\"stage-{stage}\"")).unwrap();
        let rest = &body[start + 1..];
        let end = rest.find("id=\"stage-").unwrap_or(rest.len());
        rest[..end].to_owned()
    };
    assert!(column(&board.body, "first_contact").contains(&id));
    assert!(column(&board.body, "first_contact").contains("1 deals"));

    // The card's own form moves it (CSRF token and version from the page).
    let csrf = board.csrf();
    let moved = browser
        .post(
            &format!("/deals/{id}/move"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("stage", "viewing"),
                ("back", "board"),
            ],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert!(moved
        .location()
        .starts_with("/deals?pipeline=real_estate&done=moved"));
    // The redirect names the column as a fragment, which the browser keeps to itself.
    let next = moved.location().split('#').next().unwrap().to_owned();
    let after = browser.get(&next).await;
    assert!(column(&after.body, "viewing").contains(&id));
    assert!(!column(&after.body, "first_contact").contains(&id));
    assert!(after.body.contains("The deal was moved."));
    // The same form again, from the stale page: 409, nothing moved.
    let stale = browser
        .post(
            &format!("/deals/{id}/move"),
            &[
                ("csrf", &csrf),
                ("version", "1"),
                ("stage", "intent"),
                ("back", "board"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    // Without the token nothing happens.
    let forged = browser
        .post(
            &format!("/deals/{id}/move"),
            &[("version", "2"), ("stage", "intent")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // The deal's page shows the history; the dashboard lists the overdue task.
    let detail = browser.get(&format!("/deals/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert!(detail
        .body
        .contains("First contact · Open → Viewing · Open"));
    let dashboard = browser.get("/dashboard").await;
    assert!(dashboard.body.contains("约客户看房"), "{}", dashboard.body);
    assert!(dashboard.body.contains("overdue"));
});

both_backends!(web_pool_lists_masked_and_claims_with_csrf, |harness| {
    add_user(&harness, "sally", Role::Sales, Some("east")).await;
    add_user(&harness, "sam", Role::Sales, Some("east")).await;
    let client = Client::new(&harness).await;
    let sally = harness.veil.actor_by_username("sally").await.unwrap();
    let mut input: veil_app::customers::CustomerInput =
        serde_json::from_value(full_customer()).unwrap();
    input.owner = Some(sally.user_id.to_string());
    let customer = harness
        .veil
        .create_customer(&sally, &input, true)
        .await
        .unwrap();
    let id = customer.id.to_string();

    // The owner releases it from the customer page.
    let mut owner = Browser::signed_in(&client, "sally").await;
    let detail = owner.get(&format!("/customers/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("action=\"/customers/") && detail.body.contains("/release\""));
    let csrf = detail.csrf();
    let released = owner
        .post(
            &format!("/customers/{id}/release"),
            &[("csrf", &csrf), ("reason", "换人跟进")],
        )
        .await;
    assert_eq!(released.status, StatusCode::SEE_OTHER, "{}", released.body);
    assert_eq!(released.location(), "/pool?done=released");
    assert_eq!(
        owner.get(&format!("/customers/{id}")).await.status,
        StatusCode::NOT_FOUND
    );

    // Another salesperson sees it in the pool, masked, with a Claim form.
    let mut browser = Browser::signed_in(&client, "sam").await;
    let pool = browser.get("/pool").await;
    assert_eq!(pool.status, StatusCode::OK);
    assert!(pool.body.contains("司马**"), "{}", pool.body);
    assert!(pool.body.contains(&format!("action=\"/pool/{id}/claim\"")));
    assert!(pool.body.contains("href=\"/pool\""), "navigation link");
    assert_no_plaintext(&pool.body, "the pool page");
    assert!(
        !pool.body.contains("139****"),
        "no partial mobile in the pool"
    );
    // Without the token the claim is refused.
    let forged = browser
        .post(&format!("/pool/{id}/claim"), &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = pool.csrf();
    let claimed = browser
        .post(&format!("/pool/{id}/claim"), &[("csrf", &csrf)])
        .await;
    assert_eq!(claimed.status, StatusCode::SEE_OTHER, "{}", claimed.body);
    assert_eq!(claimed.location(), format!("/customers/{id}?pool=claimed"));
    let page = browser.get(claimed.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("You claimed this customer"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Claimed from the pool by its owner."));
    assert!(
        page.body.contains("139****4321"),
        "the owner sees the usual masked view"
    );
    assert_no_plaintext(&page.body, "the customer page");
    // Claiming again: the pool page says someone was first.
    let again = browser
        .post(&format!("/pool/{id}/claim"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.body.contains("no longer in the pool"),
        "{}",
        again.body
    );
});

both_backends!(
    web_form_shows_the_template_fields_and_masks_sensitive_ones,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        let client = Client::new(&harness).await;
        let mut browser = Browser::new(&client);
        browser.accept_language = Some("zh-CN,zh;q=0.9");
        assert_eq!(
            browser.sign_in("sally", PASSWORD).await.status,
            StatusCode::SEE_OTHER
        );
        let page = browser.get("/customers/new?industry=finance").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains("name=\"custom.risk_level\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("风险等级") && page.body.contains("R3 平衡型"));
        assert!(page
            .body
            .contains("href=\"/customers/new?industry=education\""));
        let csrf = page.csrf();
        let income = "912345.67";
        // A wrong enum value comes back next to its field.
        let refused = browser
            .post(
                "/customers/new",
                &[
                    ("csrf", &csrf),
                    ("name", "司马理财"),
                    ("industry", "finance"),
                    ("custom.risk_level", "R9"),
                ],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("href=\"#custom.risk_level\""),
            "{}",
            refused.body
        );
        let created = browser
            .post(
                "/customers/new",
                &[
                    ("csrf", &csrf),
                    ("name", "司马理财"),
                    ("industry", "finance"),
                    ("custom.risk_level", "R2"),
                    ("custom.annual_income", income),
                    ("custom.qualified_investor", "true"),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let detail = browser.get(created.location()).await;
        assert_eq!(detail.status, StatusCode::OK);
        assert!(detail.body.contains("R2 稳健型"), "{}", detail.body);
        assert!(detail.body.contains("年收入（元）"));
        assert!(detail.body.contains("******"));
        assert!(!detail.body.contains(income));
    }
);
