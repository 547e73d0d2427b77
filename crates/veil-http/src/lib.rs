//! Veil's HTTP API and web UI: an axum [`Router`] built by [`app`], with problem+json errors, bearer authentication and an
//! OpenAPI document generated from the handlers.
//!
//! Request logging records method, route template, status and latency — never the query string or body, since
//! searches carry phone and ID numbers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use veil_app::Veil;

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod backups;
pub mod care;
pub mod customers;
pub mod deals;
pub mod error;
pub mod extract;
pub mod feedback;
pub mod governance;
pub mod imports;
pub mod incidents;
pub mod industries;
pub mod orders;
pub mod partners;
pub mod policies;
pub mod pool;
pub mod reports;
pub mod security;
pub mod teams;
pub mod tickets;
pub mod web;

pub use error::{ApiError, ApiResult, Problem};
pub use security::{RateLimit, RateLimits};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The application.
    pub veil: Arc<Veil>,
    /// Request counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Whether Veil itself terminates TLS (sends HSTS; cookies may be marked `Secure`).
    pub tls: bool,
    /// API rate-limit buckets (in this process's memory).
    pub rate_limiter: Arc<security::RateLimiter>,
    /// The web UI's in-memory state (sign-ins waiting for their TOTP code).
    pub web: Arc<web::session::WebState>,
}

impl AppState {
    /// State around an opened [`Veil`]: plain HTTP, default rate limits.
    pub fn new(veil: Arc<Veil>) -> Self {
        AppState {
            veil,
            metrics: Arc::new(Metrics::default()),
            tls: false,
            rate_limiter: Arc::new(security::RateLimiter::new(RateLimits::default())),
            web: Arc::new(web::session::WebState::default()),
        }
    }

    /// Says whether responses go out over TLS terminated by Veil.
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Replaces the rate limits (fresh buckets).
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limiter = Arc::new(security::RateLimiter::new(limits));
        self
    }
}

/// Request counters by status class. Labels never carry request data.
#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; 5],
    duration_micros: AtomicU64,
}

impl Metrics {
    fn record(&self, status: StatusCode, micros: u64) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        self.duration_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "# HELP veil_http_responses_total HTTP responses by status class.\n\
             # TYPE veil_http_responses_total counter\n",
        );
        for (index, counter) in self.responses.iter().enumerate() {
            out.push_str(&format!(
                "veil_http_responses_total{{class=\"{}xx\"}} {}\n",
                index + 1,
                counter.load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!(
            "# HELP veil_http_request_duration_seconds_sum Total time spent serving requests.\n\
             # TYPE veil_http_request_duration_seconds_sum counter\n\
             veil_http_request_duration_seconds_sum {:.6}\n",
            self.duration_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
        out
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Veil", description = "Privacy-first CRM: masked by default, unmasked only through governance."),
    modifiers(&BearerScheme),
    tags((name = "auth"), (name = "customers"), (name = "policies"), (name = "teams"), (name = "audit"), (name = "incidents"), (name = "governance"), (name = "security"), (name = "crm"), (name = "system"))
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200), (status = 503, body = Problem)))]
async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.veil.store().ping().await.map_err(|error| {
        tracing::error!(%error, "health check: database unreachable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "database unreachable",
        )
    })?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "database": state.veil.store().backend().as_str(),
    })))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The routes and the OpenAPI document describing them.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(metrics))
        .merge(auth::router())
        .merge(customers::router())
        .merge(policies::router())
        .merge(teams::router())
        .merge(audit::router())
        .merge(incidents::router())
        .merge(governance::router())
        .merge(partners::router())
        .merge(alerts::router())
        .merge(backups::router())
        .merge(tickets::router())
        .merge(orders::router())
        .merge(care::router())
        .merge(feedback::router())
        .merge(deals::router())
        .merge(imports::router())
        .merge(pool::router())
        .merge(reports::router())
        .merge(industries::router())
        .split_for_parts()
}

/// The whole HTTP application: the test seam and what `veil serve` runs. The web UI's pages are merged in as
/// plain routes, outside the OpenAPI document.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes();
    let openapi = Arc::new(openapi);
    router
        .merge(web::router())
        .route(
            "/api/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found() })
        // Outermost first on the way in: observe (logs, counts, headers) wraps the rate limiter, so refusals are
        // logged, counted and carry the security headers too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Logs and counts each request by route template (never the raw URI: query strings carry PII) and adds the
/// security headers of [`security::apply_security_headers`] to every response.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    state
        .metrics
        .record(response.status(), elapsed.as_micros() as u64);
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        micros = elapsed.as_micros() as u64,
        "request"
    );
    security::apply_security_headers(response.headers_mut(), state.tls);
    response
}
