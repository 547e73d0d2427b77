//! Transport-level protections applied to every request: security headers on every response and in-memory API
//! rate limits.
//!
//! Rate limits are GCRA buckets (`governor`) kept in this process's memory. Several `veil serve` instances behind
//! one load balancer each have their own budget, so the effective limit is the configured one times the number of
//! instances. Buckets:
//!
//! - every request with a valid bearer token counts against its **user** (not the token, so logging in again does
//!   not buy a fresh budget);
//! - exact searches (`GET /api/v1/customers` with `phone`, `id_number`, `email` or `bank_card`) also count against a
//!   much smaller per-user **exact search** bucket, so nobody can enumerate numbers through the blind index;
//! - requests without a valid token (login, health checks, guessed tokens) count against the **client address**
//!   (the TCP peer; behind a reverse proxy that is the proxy). Without a known peer address (in-process tests)
//!   they share one bucket.
//!
//! A refused request gets `429` problem+json with `code: "rate_limited"` and `Retry-After` in whole seconds.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use veil_app::{Actor, UserId};

use crate::error::ApiError;
use crate::AppState;

/// `Content-Security-Policy`: only same-origin resources, never framed, no `<base>` rewriting, forms post home.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// `Permissions-Policy`: a CRM needs no camera, microphone, location, payment or USB access.
pub const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=()";
/// `Strict-Transport-Security`, sent only when Veil itself serves TLS: one year, this host only (subdomains may
/// be other services that are not ready for HTTPS-only).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Adds the security headers to a response. `tls` says whether the connection was served over TLS by Veil; HSTS
/// over plain HTTP is ignored by browsers and would mislead, so it is sent only then.
pub fn apply_security_headers(headers: &mut HeaderMap, tls: bool) {
    let fixed: [(HeaderName, &'static str); 8] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (
            HeaderName::from_static("permissions-policy"),
            PERMISSIONS_POLICY,
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
}

/// One bucket's budget: `burst` requests at once, refilled by one every `replenish_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed back to back after a quiet period.
    pub burst: NonZeroU32,
    /// Time to earn one more request.
    pub replenish_every: Duration,
}

impl RateLimit {
    /// `per_second` requests a second on average, up to `burst` at once. Zeros are raised to one.
    pub fn per_second(per_second: u32, burst: u32) -> RateLimit {
        RateLimit::per_period(Duration::from_secs(1), per_second, burst)
    }

    /// `per_minute` requests a minute on average, up to `burst` at once. Zeros are raised to one.
    pub fn per_minute(per_minute: u32, burst: u32) -> RateLimit {
        RateLimit::per_period(Duration::from_secs(60), per_minute, burst)
    }

    fn per_period(period: Duration, count: u32, burst: u32) -> RateLimit {
        RateLimit {
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
            replenish_every: (period / count.max(1)).max(Duration::from_nanos(1)),
        }
    }

    fn quota(self) -> Quota {
        Quota::with_period(self.replenish_every)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(self.burst)
    }
}

/// The budgets of the API. [`Default`] holds the production values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Every request of an authenticated user (default 20/s, burst 40).
    pub per_user: RateLimit,
    /// Exact searches of one user, on top of `per_user` (default 10/min, burst 20).
    pub exact_search_per_user: RateLimit,
    /// Requests without a valid token, per client address (default 10/s, burst 30).
    pub per_client: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_user: RateLimit::per_second(20, 40),
            exact_search_per_user: RateLimit::per_minute(10, 20),
            per_client: RateLimit::per_second(10, 30),
        }
    }
}

impl RateLimits {
    /// Budgets no realistic caller exhausts: for benchmarks and tests that are not about rate limiting.
    pub fn unlimited() -> RateLimits {
        let unlimited = RateLimit {
            burst: NonZeroU32::MAX,
            replenish_every: Duration::from_nanos(1),
        };
        RateLimits {
            per_user: unlimited,
            exact_search_per_user: unlimited,
            per_client: unlimited,
        }
    }
}

/// Who an anonymous request is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    Address(IpAddr),
    /// No peer address known (in-process callers): one shared bucket.
    Unknown,
}

/// The live buckets for [`RateLimits`].
pub struct RateLimiter {
    limits: RateLimits,
    per_user: DefaultKeyedRateLimiter<UserId>,
    exact_search_per_user: DefaultKeyedRateLimiter<UserId>,
    per_client: DefaultKeyedRateLimiter<ClientKey>,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Forget idle buckets every this many checks, so addresses seen once do not accumulate forever.
const SWEEP_EVERY: u64 = 4096;

impl RateLimiter {
    /// Fresh buckets for these budgets.
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            per_user: DefaultKeyedRateLimiter::keyed(limits.per_user.quota()),
            exact_search_per_user: DefaultKeyedRateLimiter::keyed(
                limits.exact_search_per_user.quota(),
            ),
            per_client: DefaultKeyedRateLimiter::keyed(limits.per_client.quota()),
            checks: AtomicU64::new(0),
        }
    }

    /// The budgets in force.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    fn sweep_now_and_then(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.per_user.retain_recent();
            self.exact_search_per_user.retain_recent();
            self.per_client.retain_recent();
        }
    }

    /// Charges one request of an authenticated user; `Err` holds how long to wait.
    pub fn check_user(&self, user: UserId, exact_search: bool) -> Result<(), Duration> {
        self.sweep_now_and_then();
        check(&self.per_user, &user)?;
        if exact_search {
            check(&self.exact_search_per_user, &user)?;
        }
        Ok(())
    }

    /// Charges one request without a valid token to its client address (`None`: the shared bucket).
    pub fn check_client(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        self.sweep_now_and_then();
        let key = address.map_or(ClientKey::Unknown, ClientKey::Address);
        check(&self.per_client, &key)
    }
}

fn check<K: Clone + Hash + Eq>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), Duration> {
    limiter
        .check_key(key)
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// The query parameters that make `GET /api/v1/customers` an exact search over a blind index.
const EXACT_SEARCH_PARAMETERS: [&str; 4] = ["phone", "id_number", "email", "bank_card"];

/// Whether the request is an exact search, decided from the (percent-decoded) parameter names; values are never
/// looked at. A query string that does not parse is refused by the handler before any search runs.
fn is_exact_search(request: &Request) -> bool {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    if request.method() != Method::GET || route != Some("/api/v1/customers") {
        return false;
    }
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(request.uri())
        .map(|axum::extract::Query(pairs)| {
            pairs
                .iter()
                .any(|(name, _)| EXACT_SEARCH_PARAMETERS.contains(&name.as_str()))
        })
        .unwrap_or(false)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// 429 with `Retry-After` (whole seconds, at least one).
pub fn rate_limited(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many requests",
        format!("request budget exhausted; retry after {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Middleware charging each request to its user or client address. A request with a valid token carries the
/// resolved [`Actor`] in its extensions afterwards; an invalid token is left for the handler's extractor to refuse.
pub async fn rate_limit(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // The stylesheet and script are constant and come with every page a browser loads: charging them would spend
    // an office's shared address's budget three times per page.
    if matches!(request.uri().path(), "/static/veil.css" | "/static/veil.js") {
        return next.run(request).await;
    }
    let actor = match bearer_token(request.headers()) {
        Some(token) => state.veil.authenticate(token).await.ok(),
        None => None,
    };
    let verdict = match &actor {
        Some(actor) => state
            .rate_limiter
            .check_user(actor.user_id, is_exact_search(&request)),
        None => {
            let address = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip());
            state.rate_limiter.check_client(address)
        }
    };
    if let Err(wait) = verdict {
        let who = if actor.is_some() { "user" } else { "client" };
        tracing::warn!(bucket = who, "rate limited");
        return rate_limited(wait);
    }
    if let Some(actor) = actor {
        request.extensions_mut().insert::<Actor>(actor);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_refill_and_keys_are_separate() {
        let limiter = RateLimiter::new(RateLimits {
            per_user: RateLimit::per_second(1000, 1000),
            exact_search_per_user: RateLimit::per_minute(1, 2),
            per_client: RateLimit::per_minute(1, 1),
        });
        let alice = UserId::new();
        let bob = UserId::new();
        assert!(limiter.check_user(alice, true).is_ok());
        assert!(limiter.check_user(alice, true).is_ok());
        let wait = limiter.check_user(alice, true).unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(
            limiter.check_user(alice, false).is_ok(),
            "ordinary requests go on"
        );
        assert!(
            limiter.check_user(bob, true).is_ok(),
            "other users are unaffected"
        );

        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.check_client(Some(here)).is_ok());
        assert!(limiter.check_client(Some(here)).is_err());
        assert!(limiter.check_client(Some(there)).is_ok());
        assert!(limiter.check_client(None).is_ok());
        assert!(limiter.check_client(None).is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        for (wait, expected) in [
            (Duration::from_millis(1), "1"),
            (Duration::from_millis(1000), "1"),
            (Duration::from_millis(1001), "2"),
            (Duration::ZERO, "1"),
            (Duration::from_secs(59), "59"),
        ] {
            let response = rate_limited(wait);
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(
                response.headers()[header::RETRY_AFTER],
                expected,
                "{wait:?}"
            );
        }
    }

    #[test]
    fn zero_budgets_are_raised_to_one() {
        let limit = RateLimit::per_second(0, 0);
        assert_eq!(limit.burst.get(), 1);
        assert_eq!(limit.replenish_every, Duration::from_secs(1));
    }
}
