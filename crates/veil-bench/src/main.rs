//! `veil-bench`: measures the foundation's hot paths on a real database.
//!
//! 1. create throughput through the service layer (validate + encrypt + mask + blind index + insert), batched;
//! 2. listing pages of 50 masked customers through the in-process HTTP router (p50/p99);
//! 3. exact search by mobile through the blind index via the router (p50/p99);
//! 4. listing pages of 50 as one salesperson (their own customers only, through the owner index) against the
//!    admin listing of step 2 (p50/p99 and the ratio).
//!
//! The fill spreads customers over `--salespeople` sales users (`bench-sales-1` … `bench-sales-N`): customer `i` of
//! each create run goes to owner `i mod N`. Owners are fixed when rows are inserted, so a database filled with a
//! different `N` keeps its owners; measure a new `N` on a fresh database.
//!
//! The database is filled up to `--customers` and reused on the next run (populating is resumable), so the
//! 1,000,000-row figures can be re-measured without re-inserting. Results go to stdout as one JSON object.
//! Runs on a current-thread runtime: one core for Veil's own work.

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
use veil_app::demo::demo_input;
use veil_app::demo_data::DemoGenerator;
use veil_app::keys::{create_master_key_file, MasterKeySource};
use veil_app::users::{Password, Role};
use veil_app::Veil;
use veil_store::{DatabaseUrl, Store};

#[derive(Parser)]
struct Args {
    /// Database URL (sqlite://… or postgres://…). The database is reused across runs.
    #[arg(long)]
    database_url: String,
    /// Directory for the master key (created if missing).
    #[arg(long, default_value = "./bench-data")]
    key_dir: std::path::PathBuf,
    /// Customers the database should hold before the read benchmarks.
    #[arg(long, default_value_t = 1_000_000)]
    customers: usize,
    /// Customers created in the timed throughput run (on top of the fill).
    #[arg(long, default_value_t = 50_000)]
    throughput_customers: usize,
    /// Batch size for creation.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Requests per read benchmark.
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    /// Sales users the customers are spread over (`bench-sales-1` … `bench-sales-N`, team east). Applies to rows
    /// inserted by this run; rows already in the database keep their owners.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    salespeople: u32,
}

const PASSWORD: &str = "benchmark password 1";
const SEED: u64 = 7;

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn summary(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    serde_json::json!({
        "requests": samples.len(),
        "p50_ms": percentile(&samples, 0.50),
        "p99_ms": percentile(&samples, 0.99),
        "max_ms": percentile(&samples, 1.0),
    })
}

async fn create(
    veil: &Veil,
    generator: &mut DemoGenerator,
    count: usize,
    batch: usize,
    owners: &[String],
) -> anyhow::Result<Duration> {
    let admin = veil.actor_by_username("bench-admin").await?;
    let started = Instant::now();
    let mut done = 0;
    let mut next_report = 0;
    while done < count {
        let size = batch.min(count - done);
        let inputs: Vec<_> = (0..size)
            .map(|offset| {
                demo_input(
                    &generator.next_customer(),
                    Some(owners[(done + offset) % owners.len()].clone()),
                )
            })
            .collect();
        veil.create_customers_batch(&admin, &inputs).await?;
        done += size;
        if done >= next_report {
            eprintln!(
                "  {done}/{count} customers ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
            next_report += 100_000;
        }
    }
    Ok(started.elapsed())
}

async fn get(
    router: &axum::Router,
    uri: &str,
    token: &str,
) -> anyhow::Result<(Duration, serde_json::Value)> {
    let request = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())?;
    let started = Instant::now();
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let elapsed = started.elapsed();
    anyhow::ensure!(status == StatusCode::OK, "{uri}: {status}");
    Ok((elapsed, serde_json::from_slice(&bytes)?))
}

/// A walk through consecutive pages of 50 of one caller's customer list, starting over at the end.
struct Walk {
    token: String,
    cursor: Option<String>,
    /// When set, every row must be owned by this user id (the salesperson's scope).
    owner: Option<String>,
    rows: usize,
    first_pass_rows: Option<usize>,
}

impl Walk {
    fn new(token: String, cursor: Option<String>, owner: Option<String>) -> Walk {
        Walk {
            token,
            cursor,
            owner,
            rows: 0,
            first_pass_rows: None,
        }
    }

    /// Fetches the next page and returns how long it took.
    async fn step(&mut self, router: &axum::Router) -> anyhow::Result<Duration> {
        let uri = match &self.cursor {
            Some(cursor) => format!("/api/v1/customers?limit=50&cursor={cursor}"),
            None => "/api/v1/customers?limit=50".to_owned(),
        };
        let (elapsed, page) = get(router, &uri, &self.token).await?;
        let items = page["items"].as_array().context("no items")?;
        anyhow::ensure!(
            !items.is_empty() && items.len() <= 50,
            "page of {} items",
            items.len()
        );
        if let Some(owner) = &self.owner {
            anyhow::ensure!(
                items
                    .iter()
                    .all(|item| item["owner"].as_str() == Some(owner.as_str())),
                "a salesperson saw a customer they do not own"
            );
        }
        self.rows += items.len();
        self.cursor = page["next_cursor"].as_str().map(str::to_owned);
        if self.cursor.is_none() && self.first_pass_rows.is_none() {
            self.first_pass_rows = Some(self.rows);
        }
        Ok(elapsed)
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
    std::fs::create_dir_all(&args.key_dir)?;
    let key = args.key_dir.join("master.key");
    if !key.exists() {
        create_master_key_file(&key)?;
    }
    let url = DatabaseUrl::new(args.database_url.clone());
    let store = Store::connect(&url).await?;
    let backend = store.backend();
    let veil = Veil::initialise(store, &MasterKeySource::File(key))
        .await
        .context("open the benchmark database")?;
    if veil
        .store()
        .user_by_username("bench-admin")
        .await?
        .is_none()
    {
        veil.add_user(
            "bench-admin",
            Role::Admin,
            None,
            &Password::new(PASSWORD.into()),
        )
        .await?;
    }
    let mut owners = Vec::with_capacity(args.salespeople as usize);
    for index in 1..=args.salespeople {
        let username = format!("bench-sales-{index}");
        if veil.store().user_by_username(&username).await?.is_none() {
            veil.add_user(
                &username,
                Role::Sales,
                Some("east"),
                &Password::new(PASSWORD.into()),
            )
            .await?;
        }
        owners.push(veil.actor_by_username(&username).await?.user_id.to_string());
    }

    // The generator is deterministic: skip what earlier runs already inserted so phones stay unique.
    let existing = veil.count_customers().await? as usize;
    let mut generator = DemoGenerator::new(SEED);
    let mut phones = Vec::with_capacity(existing.max(args.customers));
    for _ in 0..existing {
        phones.push(generator.next_customer().phone);
    }
    let throughput_elapsed = create(
        &veil,
        &mut generator,
        args.throughput_customers,
        args.batch,
        &owners,
    )
    .await?;
    let throughput = args.throughput_customers as f64 / throughput_elapsed.as_secs_f64();
    eprintln!("throughput: {throughput:.0} customers/s");
    let now = veil.count_customers().await? as usize;
    if now < args.customers {
        eprintln!("filling to {} customers", args.customers);
        let mut fill = DemoGenerator::new(SEED);
        for _ in 0..now {
            fill.next_customer();
        }
        create(&veil, &mut fill, args.customers - now, args.batch, &owners).await?;
    }
    veil.store().checkpoint().await?;
    let total = veil.count_customers().await? as usize;
    let mut regenerate = DemoGenerator::new(SEED);
    phones.clear();
    for _ in 0..total.min(args.customers) {
        phones.push(regenerate.next_customer().phone);
    }

    let veil = Arc::new(veil);
    let router = veil_http::app(
        veil_http::AppState::new(veil.clone()).with_rate_limits(veil_http::RateLimits::unlimited()),
    );
    let session = veil
        .login("bench-admin", &Password::new(PASSWORD.into()))
        .await?;
    let token = session.token.expose().to_owned();

    // Warm up, then walk consecutive pages of 50.
    let mut cursor: Option<String> = None;
    let mut list = Vec::with_capacity(args.requests);
    for index in 0..args.requests + 50 {
        let uri = match &cursor {
            Some(cursor) => format!("/api/v1/customers?limit=50&cursor={cursor}"),
            None => "/api/v1/customers?limit=50".to_owned(),
        };
        let (elapsed, page) = get(&router, &uri, &token).await?;
        anyhow::ensure!(
            page["items"].as_array().map(Vec::len) == Some(50),
            "short page"
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if index >= 50 {
            list.push(elapsed);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut search = Vec::with_capacity(args.requests);
    for index in 0..args.requests + 50 {
        let phone = phones.choose(&mut rng).context("no phones")?;
        let (elapsed, found) =
            get(&router, &format!("/api/v1/customers?phone={phone}"), &token).await?;
        anyhow::ensure!(
            found["items"].as_array().map(Vec::len) >= Some(1),
            "search found nothing"
        );
        if index >= 50 {
            search.push(elapsed);
        }
    }

    // The same walk as one salesperson: only their own customers (scope owner = them, the owner index), against
    // the admin's walk, one page of each in turn so both see the same machine (caches, other load). The admin walk
    // continues from where the list benchmark stopped; the salesperson's list is ~total/N rows, so their walk
    // starts over from their first page when it reaches the end.
    let sales_session = veil
        .login("bench-sales-1", &Password::new(PASSWORD.into()))
        .await?;
    let mut own_walk = Walk::new(
        sales_session.token.expose().to_owned(),
        None,
        Some(owners[0].clone()),
    );
    let mut admin_walk = Walk::new(token.clone(), cursor, None);
    let mut own_list = Vec::with_capacity(args.requests);
    let mut admin_list = Vec::with_capacity(args.requests);
    for index in 0..args.requests + 50 {
        let own = own_walk.step(&router).await?;
        let admin = admin_walk.step(&router).await?;
        if index >= 50 {
            own_list.push(own);
            admin_list.push(admin);
        }
    }
    let admin_list = summary(admin_list);
    let own_list = summary(own_list);
    let ratio =
        |key: &str| -> Option<f64> { Some(own_list[key].as_f64()? / admin_list[key].as_f64()?) };
    let (ratio_p50, ratio_p99) = (ratio("p50_ms"), ratio("p99_ms"));
    eprintln!(
        "salesperson list / admin list: p50 {:.2}x, p99 {:.2}x",
        ratio_p50.unwrap_or(f64::NAN),
        ratio_p99.unwrap_or(f64::NAN)
    );
    let report = serde_json::json!({
        "backend": backend.as_str(),
        "customers_in_database": total,
        "salespeople": args.salespeople,
        "create_batched": {
            "customers": args.throughput_customers,
            "batch": args.batch,
            "seconds": throughput_elapsed.as_secs_f64(),
            "customers_per_second": throughput.round(),
        },
        "list_page_of_50_via_router": summary(list),
        "search_by_mobile_via_router": summary(search),
        // Interleaved: one salesperson page, one admin page, in turn.
        "salesperson_vs_admin_list_page_of_50_via_router": {
            "salesperson_username": "bench-sales-1",
            // Rows the salesperson owns (one full walk of their list), or null if the walk never reached the end.
            "own_customers": own_walk.first_pass_rows,
            "salesperson": own_list,
            "admin": admin_list,
            "ratio_p50": ratio_p50,
            "ratio_p99": ratio_p99,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
