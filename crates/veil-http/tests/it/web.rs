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

use super::{add_user, assert_no_plaintext, enrol_mfa, full_customer, Client, ID_NUMBER, PASSWORD};

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
        assert_eq!(page.location(), "/customers", "{next}");
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
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    let rows = |page: &Page| page.body.matches("<tr>").count().saturating_sub(1);

    let all = browser.get("/customers").await;
    assert_eq!(rows(&all), 2, "{}", all.body);
    let vip = browser.get("/customers?tag=vip&industry=finance").await;
    assert_eq!(vip.status, StatusCode::OK, "{}", vip.body);
    assert_page_headers(&vip);
    assert_eq!(rows(&vip), 1, "{}", vip.body);
    assert!(vip.body.contains("value=\"vip\""), "the filter form keeps its values");
    // "Only my customers" for a manager who owns none.
    let mine = browser.get("/customers?mine=1").await;
    assert_eq!(rows(&mine), 0);
    assert!(mine.body.contains("checked"));

    // Save the filters as a segment: redirected to the list by segment, which offers it in the select.
    let csrf = vip.csrf();
    let saved = browser
        .post(
            "/customers/segments",
            &[("csrf", &csrf), ("name", "东区VIP"), ("tag", "vip"), ("industry", "finance")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(saved.location().starts_with("/customers?segment="), "{}", saved.location());
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
        .send(Method::GET, "/api/v1/segments", Some(&client.login("mona").await), None)
        .await;
    assert_eq!(segments.body.as_array().unwrap().len(), 1, "{}", segments.raw);
});
