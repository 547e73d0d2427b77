//! The web UI: server-rendered pages under `/` for people in a browser, beside the JSON API under `/api/v1`.
//!
//! - Templates (askama, `src/web/templates`) are compiled into the binary and escape everything they print;
//!   none uses the `safe` filter.
//! - Every string comes from the translation files (`src/web/i18n`), in English or Simplified Chinese
//!   ([`i18n`]).
//! - The one stylesheet and the one script are embedded with `include_str!` and served from `/static/`; pages
//!   carry no inline script or style, so the global Content-Security-Policy (`default-src 'self'`) holds.
//! - Sessions and CSRF tokens are the API's cookie sessions ([`session`]); every form carries the token.
//! - Every response is `Cache-Control: no-store` (the global security headers), which matters for the reveal
//!   page. Values typed into searches travel in POST bodies, never in URLs.
//!
//! These routes are plain axum routes, not in the OpenAPI document: they are not part of the API.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use veil_app::authz::role_permits;
use veil_app::AppError;

use crate::AppState;

pub mod account;
pub mod admin;
pub mod approvals;
pub mod audit;
pub mod consents;
pub mod customer_messages;
pub mod customer_orders;
pub mod customers;
pub mod dashboard;
pub mod deals;
pub mod feedback;
pub mod i18n;
pub mod imports;
pub mod leads;
pub mod pages;
pub mod policies;
pub mod pool;
pub mod products;
pub mod reports;
pub mod requests;
pub mod session;
pub mod survey;
pub mod tickets;
pub mod users;

use i18n::{Locale, Tr};
use session::WebUser;

/// The web routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::dashboard))
        .route("/dashboard", get(dashboard::dashboard))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/login/totp", post(pages::login_totp))
        .route("/logout", post(pages::logout))
        .route("/lang", get(pages::switch_language))
        .route("/static/veil.css", get(stylesheet))
        .route("/static/veil.js", get(script))
        .route("/customers", get(customers::list))
        .route("/customers/search", post(customers::search))
        .route("/customers/segments", post(customers::save_segment))
        .route(
            "/customers/new",
            get(customers::new_form).post(customers::create),
        )
        .route("/customers/{id}", get(customers::detail))
        .route(
            "/customers/{id}/edit",
            get(customers::edit_form).post(customers::update),
        )
        .route("/customers/{id}/reveal", post(customers::reveal))
        .route("/customers/{id}/notes", post(customers::add_note))
        .route("/customers/{id}/orders", post(customer_orders::create))
        .route(
            "/customers/{id}/orders/{order}/status",
            post(customer_orders::set_status),
        )
        .route(
            "/customers/{id}/points/redeem",
            post(customer_orders::redeem),
        )
        .route("/customers/{id}/messages", post(customer_messages::send))
        .route(
            "/customers/{id}/surveys/{survey}/send",
            post(customer_messages::send_survey),
        )
        .route("/deals", get(deals::board))
        .route("/deals/new", get(deals::new_form).post(deals::create))
        .route("/deals/{id}", get(deals::detail))
        .route("/deals/{id}/edit", post(deals::edit))
        .route("/deals/{id}/move", post(deals::move_deal))
        .route("/tasks", get(leads::tasks))
        .route("/tasks/new", post(leads::create_task))
        .route("/tasks/{id}/done", post(dashboard::complete_task))
        .route("/leads", get(leads::list))
        .route("/leads/new", post(leads::create))
        .route("/leads/{id}/convert", post(leads::convert))
        .route("/reports", get(reports::page))
        .route("/products", get(products::page).post(products::create))
        .route("/products/{id}", post(products::update))
        .route(
            "/imports",
            get(imports::page)
                .post(imports::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::imports::MAX_IMPORT_BYTES,
                )),
        )
        .route("/imports/{id}", get(imports::job))
        .route("/pool", get(pool::list))
        .route("/pool/{id}/claim", post(pool::claim))
        .route("/customers/{id}/release", post(pool::release))
        .route("/tickets", get(tickets::list))
        .route("/tickets/new", get(tickets::new_form).post(tickets::create))
        .route("/tickets/{id}", get(tickets::detail))
        .route("/tickets/{id}/comment", post(tickets::comment))
        .route("/tickets/{id}/status", post(tickets::change_status))
        .route("/tickets/{id}/assign", post(tickets::assign))
        .route("/feedback", get(feedback::page))
        .route("/survey/{token}", get(survey::form).post(survey::answer))
        .route(
            "/unmask-requests/new",
            get(requests::new_form).post(requests::create),
        )
        .route("/unmask-requests/check", post(requests::check))
        .route(
            "/customers/{id}/consents",
            post(consents::record).layer(axum::extract::DefaultBodyLimit::max(
                consents::MAX_EVIDENCE_BYTES,
            )),
        )
        .route("/consents/{id}/withdraw", post(consents::withdraw))
        .route("/account", get(account::account))
        .route("/account/mfa/enroll", post(account::enroll))
        .route("/account/mfa/confirm", post(account::confirm))
        .route("/account/password", post(account::change_password))
        .route("/security", get(admin::security))
        .route("/security/lockdown", post(admin::lock_down))
        .route(
            "/security/incidents/{id}/close",
            post(admin::close_incident),
        )
        .route("/backups", get(admin::backups))
        .route("/backups/create", post(admin::create_backup))
        .route("/backups/{id}/verify", post(admin::verify_backup))
        .route("/audit", get(audit::log))
        // The verify result is a POST response; its language switch comes back here with a GET.
        .route(
            "/audit/verify",
            get(|| async { Redirect::to("/audit") }).post(audit::verify),
        )
        .route("/approvals", get(approvals::inbox))
        .route("/approvals/{id}/decide", post(approvals::decide))
        .route("/access", get(approvals::access))
        .route("/access/grants/{id}/revoke", post(approvals::revoke_grant))
        .route("/users", get(users::list))
        .route("/users/new", post(users::create))
        .route("/users/{username}/role", post(users::change_role))
        .route("/users/{username}/disable", post(users::disable))
        .route("/users/{username}/enable", post(users::enable))
        .route("/teams/new", post(users::create_team))
        .route("/policies", get(policies::policies))
}

async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        include_str!("web/static/veil.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        include_str!("web/static/veil.js"),
    )
        .into_response()
}

/// What every page needs before knowing who is asking: the language and where it is.
pub struct Page {
    /// Strings in the visitor's language.
    pub tr: Tr,
    /// The path of this request (for the language switch to come back to).
    pub path: String,
}

impl Page {
    /// From a request's head.
    pub fn from_parts(parts: &Parts) -> Page {
        Page {
            tr: Tr::new(i18n::negotiate(&parts.headers)),
            path: parts.uri.path().to_owned(),
        }
    }
}

impl Page {
    /// From a whole request (before its body is read).
    pub fn of(request: &axum::extract::Request) -> Page {
        Page {
            tr: Tr::new(i18n::negotiate(request.headers())),
            path: request.uri().path().to_owned(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Page::from_parts(parts))
    }
}

/// A link of the language switch.
pub struct LanguageLink {
    /// `/lang?set=…&next=…`.
    pub href: String,
    /// The language's own name.
    pub name: &'static str,
    /// Its BCP 47 tag (for `hreflang`/`lang`).
    pub tag: &'static str,
    /// Whether it is the page's language.
    pub current: bool,
}

/// The frame around every page: language, switch, who is signed in, the sign-out form's CSRF token.
pub struct Layout {
    /// `<html lang>`.
    pub html_lang: &'static str,
    /// The language switch.
    pub languages: Vec<LanguageLink>,
    /// The signed-in user's name.
    pub username: Option<String>,
    /// The translation key of their role.
    pub role_key: String,
    /// The session's CSRF token (empty when signed out).
    pub csrf: String,
    /// The main navigation: only the pages this role can use (the handlers still ask the domain).
    pub nav: Vec<NavLink>,
}

/// A link of the main navigation.
pub struct NavLink {
    /// Where.
    pub href: &'static str,
    /// Its translation key.
    pub label_key: &'static str,
    /// Whether it is the page shown (or a page under it).
    pub current: bool,
}

/// The navigation for `role`, decided by the same role table the domain applies ([`role_permits`]); hiding a
/// link is a courtesy, the page itself is refused by the domain when the role may not use it.
fn navigation(role: veil_app::users::Role, path: &str) -> Vec<NavLink> {
    use veil_app::authz::Action;
    let may = |action: Action| role_permits(role, action).is_ok();
    let links: [(&'static str, &'static str, bool); 20] = [
        ("/dashboard", "nav.dashboard", true),
        ("/customers", "nav.customers", may(Action::CustomerList)),
        (
            "/customers/new",
            "nav.new_customer",
            may(Action::CustomerCreate),
        ),
        ("/leads", "nav.leads", may(Action::CustomerList)),
        ("/imports", "nav.imports", may(Action::CustomerCreate)),
        ("/deals", "nav.deals", may(Action::DealRead)),
        ("/tasks", "nav.tasks", may(Action::TaskRead)),
        ("/pool", "nav.pool", may(Action::PoolRead)),
        ("/products", "nav.products", may(Action::ProductManage)),
        ("/tickets", "nav.tickets", may(Action::TicketRead)),
        ("/feedback", "nav.feedback", may(Action::FeedbackRead)),
        (
            "/reports",
            "nav.reports",
            may(Action::TicketRead) || may(Action::LoyaltyRead) || may(Action::FeedbackRead),
        ),
        ("/access", "nav.access", may(Action::UnmaskRequest)),
        ("/approvals", "nav.approvals", may(Action::UnmaskApprove)),
        ("/audit", "nav.audit", may(Action::AuditVerify)),
        ("/security", "nav.security", may(Action::IncidentManage)),
        ("/backups", "nav.backups", may(Action::BackupRead)),
        ("/users", "nav.users", may(Action::UserManage)),
        ("/policies", "nav.policies", may(Action::PolicyRead)),
        ("/account", "nav.account", true),
    ];
    links
        .into_iter()
        .filter(|(_, _, shown)| *shown)
        .map(|(href, label_key, _)| NavLink {
            href,
            label_key,
            current: path == href
                || (href != "/customers" && path.starts_with(&format!("{href}/")))
                || (href == "/customers"
                    && path.starts_with("/customers/")
                    && path != "/customers/new"),
        })
        .collect()
}

impl Layout {
    /// The frame for `page`, signed in as `user` (or not).
    pub fn new(page: &Page, user: Option<&WebUser>) -> Layout {
        let current = page.tr.locale;
        Layout {
            html_lang: current.html_lang(),
            languages: Locale::ALL
                .iter()
                .map(|&locale| LanguageLink {
                    href: format!(
                        "/lang?set={}&next={}",
                        locale.code(),
                        encode_path(&page.path)
                    ),
                    name: locale.native_name(),
                    tag: locale.html_lang(),
                    current: locale == current,
                })
                .collect(),
            username: user.map(|user| user.actor.username.clone()),
            role_key: user
                .map(|user| format!("role.{}", user.actor.role.as_str()))
                .unwrap_or_default(),
            csrf: user.map(|user| user.csrf.clone()).unwrap_or_default(),
            nav: user
                .map(|user| navigation(user.actor.role, &page.path))
                .unwrap_or_default(),
        }
    }
}

/// Percent-encodes a path for use as a query value (keeps only unreserved characters and `/`).
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A local path to return to after sign-in or a language switch; anything else (another site, `//host`,
/// `/\host`) becomes `/dashboard`, so these parameters cannot be used for open redirects.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control()) =>
        {
            path.to_owned()
        }
        _ => "/dashboard".to_owned(),
    }
}

/// Renders a template as an HTML response with `status`.
pub fn render(template: &impl Template, tr: Tr, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "web: a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, tr.get("error.internal")).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    t: Tr,
    layout: Layout,
    title_key: &'static str,
    message_key: &'static str,
}

/// A page with a title and a message, both translation keys.
pub fn message_page(
    page: &Page,
    user: Option<&WebUser>,
    status: StatusCode,
    title_key: &'static str,
    message_key: &'static str,
) -> Response {
    let template = ErrorTemplate {
        t: page.tr,
        layout: Layout::new(page, user),
        title_key,
        message_key,
    };
    render(&template, page.tr, status)
}

/// The page for a domain error. Internal causes are logged (without personal data: the domain's messages carry
/// none), never shown.
pub fn error_page(page: &Page, user: Option<&WebUser>, error: &AppError) -> Response {
    let (status, title, message) = match error {
        AppError::NotFound => (
            StatusCode::NOT_FOUND,
            "error.not_found_title",
            "error.not_found",
        ),
        AppError::Forbidden(_) => (
            StatusCode::FORBIDDEN,
            "error.forbidden_title",
            "error.forbidden",
        ),
        AppError::GrantRequired => (
            StatusCode::FORBIDDEN,
            "error.forbidden_title",
            "error.grant_required",
        ),
        AppError::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "error.unauthenticated_title",
            "error.unauthenticated",
        ),
        AppError::Conflict(_) | AppError::InsufficientPoints { .. } => (
            StatusCode::CONFLICT,
            "error.conflict_title",
            "error.conflict",
        ),
        AppError::Validation(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "error.invalid_title",
            "error.invalid",
        ),
        AppError::AuditUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "error.unavailable_title",
            "error.audit_unavailable",
        ),
        other => {
            tracing::error!(error = %other, "web: request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "error.internal_title",
                "error.internal",
            )
        }
    };
    message_page(page, user, status, title, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        for (next, expected) in [
            (Some("/customers/abc"), "/customers/abc"),
            (Some("/"), "/"),
            (Some("//evil.example/x"), "/dashboard"),
            (Some("/\\evil.example"), "/dashboard"),
            (Some("https://evil.example"), "/dashboard"),
            (Some("/a\nb"), "/dashboard"),
            (None, "/dashboard"),
        ] {
            assert_eq!(local_path(next), expected, "{next:?}");
        }
    }

    #[test]
    fn paths_are_encoded_for_queries() {
        assert_eq!(encode_path("/customers/0193-ab"), "/customers/0193-ab");
        assert_eq!(encode_path("/a b&c=d"), "/a%20b%26c%3Dd");
    }
}
