//! `web-bench`: server time of the web UI's pages on a real (large) database — the time from a request entering
//! the in-process router to the last byte of the rendered page, with a cookie session like a browser's.
//!
//! Opens a database filled by `veil-bench` (users `bench-admin`, `bench-sales-1`, …), then for each page prints
//! p50/p99 over `--requests` requests after a warm-up. Pages:
//! - the customer list, first page and walking the next-page links (admin; and one salesperson's own list);
//! - the list filtered by industry and by tag;
//! - customer detail pages of random customers seen on the walk;
//! - every extra `--page PATH` given (dashboards, inboxes, …), fetched as the admin.
//!
//! Runs on a current-thread runtime (one core). Results go to stdout as one JSON object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tower::ServiceExt;
use veil_app::keys::MasterKeySource;
use veil_app::users::Password;
use veil_app::Veil;
use veil_store::{DatabaseUrl, Store};

#[derive(Parser)]
struct Args {
    /// Database URL of a database filled by `veil-bench`.
    #[arg(long)]
    database_url: String,
    /// Directory holding its `master.key`.
    #[arg(long)]
    key_dir: std::path::PathBuf,
    /// Requests per page.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Extra pages to time as the admin (paths, e.g. `/dashboard`).
    #[arg(long = "page")]
    pages: Vec<String>,
}

const PASSWORD: &str = "benchmark password 1";

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn summary(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    serde_json::json!({
        "requests": samples.len(),
        "p50_ms": (percentile(&samples, 0.50) * 1000.0).round() / 1000.0,
        "p99_ms": (percentile(&samples, 0.99) * 1000.0).round() / 1000.0,
        "max_ms": (percentile(&samples, 1.0) * 1000.0).round() / 1000.0,
    })
}

/// A signed-in browser: the session cookie.
struct Browser {
    cookie: String,
}

impl Browser {
    async fn sign_in(veil: &Veil, username: &str) -> anyhow::Result<Browser> {
        let session = veil
            .login(username, &Password::new(PASSWORD.into()))
            .await
            .with_context(|| {
                format!("sign in as {username} (fill the database with veil-bench first)")
            })?;
        Ok(Browser {
            cookie: format!(
                "{}={}",
                veil_http::extract::SESSION_COOKIE,
                session.token.expose()
            ),
        })
    }

    /// One page: its server time and body.
    async fn get(&self, router: &axum::Router, uri: &str) -> anyhow::Result<(Duration, String)> {
        let request = Request::builder()
            .uri(uri)
            .header(header::COOKIE, &self.cookie)
            .header(header::ACCEPT_LANGUAGE, "zh-CN")
            .body(Body::empty())?;
        let started = Instant::now();
        let response = router.clone().oneshot(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let elapsed = started.elapsed();
        anyhow::ensure!(status == StatusCode::OK, "{uri}: {status}");
        Ok((elapsed, String::from_utf8(bytes.to_vec())?))
    }
}

/// The next-page link of a list page.
fn next_href(page: &str) -> Option<String> {
    let start = page
        .find("rel=\"next\"")
        .and_then(|end| page[..end].rfind("href=\""))?
        + 6;
    let end = page[start..].find('"')? + start;
    Some(page[start..end].replace("&amp;", "&"))
}

/// The customer ids a list page links to.
fn customer_ids(page: &str) -> Vec<String> {
    page.match_indices("href=\"/customers/")
        .filter_map(|(at, marker)| {
            let rest = &page[at + marker.len()..];
            let id = &rest[..rest.find('"')?];
            (id.len() == 36).then(|| id.to_owned())
        })
        .collect()
}

/// Times `requests` requests of pages produced by `next` after 20 warm-up requests.
async fn time_pages(
    browser: &Browser,
    router: &axum::Router,
    requests: usize,
    mut next: impl FnMut(Option<&str>) -> String,
) -> anyhow::Result<serde_json::Value> {
    let mut samples = Vec::with_capacity(requests);
    let mut previous: Option<String> = None;
    for index in 0..requests + 20 {
        let uri = next(previous.as_deref());
        let (elapsed, body) = browser.get(router, &uri).await?;
        if index >= 20 {
            samples.push(elapsed);
        }
        previous = Some(body);
    }
    Ok(summary(samples))
}

/// Walks a list by its next-page links, starting over at the end.
fn walker(start: &'static str) -> impl FnMut(Option<&str>) -> String {
    move |previous| {
        previous
            .and_then(next_href)
            .unwrap_or_else(|| start.to_owned())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let store = Store::connect(&DatabaseUrl::new(args.database_url.clone())).await?;
    let backend = store.backend();
    let veil = Veil::initialise(
        store,
        &MasterKeySource::File(args.key_dir.join("master.key")),
    )
    .await
    .context("open the benchmark database")?;
    let total = veil.count_customers().await?;
    let veil = Arc::new(veil);
    let router = veil_http::app(
        veil_http::AppState::new(veil.clone()).with_rate_limits(veil_http::RateLimits::unlimited()),
    );
    let admin = Browser::sign_in(&veil, "bench-admin").await?;
    let sales = Browser::sign_in(&veil, "bench-sales-1").await?;
    let requests = args.requests;

    // Collect customer ids from a walk over the first pages, for the detail pages.
    let mut ids = Vec::new();
    let mut uri = "/customers".to_owned();
    while ids.len() < 2_000 {
        let (_, page) = admin.get(&router, &uri).await?;
        ids.extend(customer_ids(&page));
        match next_href(&page) {
            Some(next) => uri = next,
            None => break,
        }
    }
    anyhow::ensure!(!ids.is_empty(), "the list shows no customers");
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);

    let mut report = serde_json::Map::new();
    report.insert("backend".into(), backend.as_str().into());
    report.insert("customers_in_database".into(), total.into());
    report.insert(
        "list_first_page".into(),
        time_pages(&admin, &router, requests, |_| "/customers".to_owned()).await?,
    );
    report.insert(
        "list_walk_next_pages".into(),
        time_pages(&admin, &router, requests, walker("/customers")).await?,
    );
    report.insert(
        "list_walk_salesperson_own".into(),
        time_pages(&sales, &router, requests, walker("/customers")).await?,
    );
    report.insert(
        "list_filtered_by_industry".into(),
        time_pages(
            &admin,
            &router,
            requests,
            walker("/customers?industry=education"),
        )
        .await?,
    );
    report.insert(
        "list_filtered_by_tag".into(),
        time_pages(&admin, &router, requests, walker("/customers?tag=vip")).await?,
    );
    report.insert(
        "customer_detail".into(),
        time_pages(&admin, &router, requests, |_| {
            format!("/customers/{}", ids.choose(&mut rng).expect("ids"))
        })
        .await?,
    );
    for page in &args.pages {
        let path = page.clone();
        report.insert(
            page.clone(),
            time_pages(&admin, &router, requests, move |_| path.clone()).await?,
        );
    }
    for (name, value) in &report {
        if let Some(p50) = value.get("p50_ms") {
            eprintln!("{name:<32} p50 {p50} ms  p99 {} ms", value["p99_ms"]);
        }
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
