//! `recommend-bench`: how long recommending for one customer takes at 1,000,000 orders, and what keeping the
//! purchase statistics and the neighbour lists costs an order write.
//!
//! 1. Creates `--customers` customers through the service's batch create, and a catalogue of `--products`
//!    products in 40 categories.
//! 2. Writes `--orders` paid orders of 1–3 items (each customer prefers two categories; within a category the
//!    popular products are bought more) straight into `sales_order` and `order_item` in large transactions — the
//!    order service's per-order audit entries and loyalty postings would take hours and are not what is measured —
//!    then derives the kept statistics and the neighbour lists once with `Store::rebuild_purchase_stats` (timed),
//!    and times recomputing every neighbour list alone (`Store::rebuild_product_neighbours`).
//! 3. Times `Veil::recommendations` (authorisation, the customer's history, their products' neighbour lists,
//!    scoring, the products' details, the audit entry) for `--requests` random customers: p50/p99; then the
//!    reads and the ranking alone (`Veil::recommendation_inputs` and `recommend`) for as many others.
//! 4. For `--full-requests` random customers, computes the inputs both ways — from the neighbour lists
//!    (`Veil::recommendation_inputs`) and with the plain item cosine over every pair row, ranked in SQL
//!    (`Veil::full_recommendation_inputs`, the method before neighbour lists) — times both, and counts how often
//!    the five recommended products are the same.
//! 5. For comparison, times the first method's co-purchase query (a self-join of every paid order line, computed
//!    per request) for `--old-queries` customers.
//! 6. Times `--writes` paid orders entered through `Veil::create_order`, which keeps the statistics and marks the
//!    neighbour lists they change; then `--refunds` of those orders refunded through `Veil::set_order_status`;
//!    then the refresh job testing the rises and recomputing the marked lists (`Veil::refresh_product_neighbours`).
//!
//! Run: `cargo run --release -p veil-bench --bin recommend-bench -- --orders 1000000` (SQLite in a temporary
//! directory; `--database-url postgres://…` for an empty PostgreSQL database). Prints one JSON object.

use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use veil_app::demo::demo_input;
use veil_app::demo_data::DemoGenerator;
use veil_app::keys::{create_master_key_file, MasterKeySource};
use veil_app::orders::{OrderInput, OrderItemInput, OrderStatus, OrderStatusInput, ProductInput};
use veil_app::recommendations::recommend;
use veil_app::users::{Password, Role};
use veil_app::Veil;
use veil_store::{sqlx, DatabaseUrl, Pool, Store};

#[derive(Parser)]
struct Args {
    /// Database URL; default: SQLite in a temporary directory. A PostgreSQL database must be empty.
    #[arg(long)]
    database_url: Option<String>,
    /// Customers.
    #[arg(long, default_value_t = 200_000)]
    customers: usize,
    /// Paid orders.
    #[arg(long, default_value_t = 1_000_000)]
    orders: usize,
    /// Products in the catalogue.
    #[arg(long, default_value_t = 2_000)]
    products: usize,
    /// Timed recommendation requests.
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    /// Customers whose recommendations are computed both from the neighbour lists and over every pair row.
    #[arg(long, default_value_t = 200)]
    full_requests: usize,
    /// Timed runs of the previous per-request co-purchase query.
    #[arg(long, default_value_t = 5)]
    old_queries: usize,
    /// Timed order writes through the service.
    #[arg(long, default_value_t = 500)]
    writes: usize,
    /// Timed refunds of those orders through the service (at most `--writes`).
    #[arg(long, default_value_t = 50)]
    refunds: usize,
}

const PASSWORD: &str = "benchmark password 1";
const CATEGORIES: usize = 40;

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn summary(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    json!({
        "runs": samples.len(),
        "p50_ms": percentile(&samples, 0.50),
        "p99_ms": percentile(&samples, 0.99),
        "max_ms": percentile(&samples, 1.0),
    })
}

/// A product of `category`, popular ones more often (the square skews toward the category's first products).
fn product_in(rng: &mut StdRng, category: usize, per_category: usize) -> usize {
    let rank = (rng.gen::<f64>().powi(2) * per_category as f64) as usize;
    category * per_category + rank.min(per_category - 1)
}

/// Inserts rows with one prepared statement per row inside the given transaction, on either backend.
macro_rules! insert_orders {
    ($pool:expr, $orders:expr) => {{
        let mut tx = $pool.begin().await?;
        for (order_id, customer_id, at, items) in $orders {
            let total: i64 = items.iter().map(|(_, quantity, price)| quantity * price).sum();
            sqlx::query(
                "INSERT INTO sales_order (id, customer_id, status, currency, total_fen, points_earned, created_by, \
                 placed_at, paid_at, created_at, updated_at) VALUES ($1, $2, 'paid', 'CNY', $3, 0, NULL, $4, $4, $4, $4)",
            )
            .bind(order_id)
            .bind(customer_id)
            .bind(total)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            for (line, (product_id, quantity, price)) in items.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO order_item (order_id, line_no, customer_id, product_id, quantity, unit_price_fen, \
                     line_total_fen) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(order_id)
                .bind(line as i64 + 1)
                .bind(customer_id)
                .bind(product_id)
                .bind(quantity)
                .bind(price)
                .bind(quantity * price)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    }};
}

type OrderRows = Vec<(String, String, i64, Vec<(String, i64, i64)>)>;

/// The previous method: the co-purchase counts of one customer's products, from every paid order line.
const OLD_CO_PURCHASES: &str =
    "WITH bought AS (SELECT DISTINCT i.customer_id, i.product_id FROM order_item i \
     JOIN sales_order o ON o.id = i.order_id WHERE o.status = 'paid'), \
     mine AS (SELECT product_id FROM bought WHERE customer_id = $1) \
     SELECT a.product_id AS source, b.product_id AS candidate, COUNT(*) AS customers \
     FROM bought a JOIN bought b ON b.customer_id = a.customer_id AND b.product_id <> a.product_id \
     WHERE a.product_id IN (SELECT product_id FROM mine) GROUP BY a.product_id, b.product_id";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.products >= CATEGORIES,
        "--products must be at least {CATEGORIES}"
    );
    anyhow::ensure!(
        args.customers > 0 && args.requests > 0,
        "--customers and --requests must be positive"
    );
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("master.key");
    create_master_key_file(&key)?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("veil.db").display()));
    let store = Store::connect(&DatabaseUrl::new(url)).await?;
    let veil = Veil::initialise(store, &MasterKeySource::File(key)).await?;
    veil.add_user("admin", Role::Admin, None, &Password::new(PASSWORD.into()))
        .await?;
    let admin = veil.actor_by_username("admin").await?;

    eprintln!("creating {} customers", args.customers);
    let mut generator = DemoGenerator::new(7);
    let mut customers = Vec::with_capacity(args.customers);
    while customers.len() < args.customers {
        let size = 1000.min(args.customers - customers.len());
        let inputs: Vec<_> = (0..size)
            .map(|_| demo_input(&generator.next_customer(), None))
            .collect();
        customers.extend(veil.create_customers_batch(&admin, &inputs).await?);
    }

    eprintln!("creating {} products", args.products);
    let per_category = args.products / CATEGORIES;
    let mut products = Vec::with_capacity(per_category * CATEGORIES);
    let mut prices = Vec::with_capacity(per_category * CATEGORIES);
    for index in 0..per_category * CATEGORIES {
        let price = 1_000 + (index as i64 * 7919) % 100_000;
        let product = veil
            .create_product(
                &admin,
                &ProductInput {
                    sku: format!("SKU-{index:05}"),
                    name: format!("商品 {index}"),
                    category: format!("category-{}", index / per_category),
                    price_fen: price,
                    currency: None,
                    active: Some(true),
                },
            )
            .await?;
        products.push(product.id);
        prices.push(price);
    }

    eprintln!("writing {} paid orders", args.orders);
    let mut rng = StdRng::seed_from_u64(11);
    let preferences: Vec<(usize, usize)> = (0..customers.len())
        .map(|_| (rng.gen_range(0..CATEGORIES), rng.gen_range(0..CATEGORIES)))
        .collect();
    let started = Instant::now();
    let year_ago = veil_app::now_ms() - 365 * 24 * 3_600_000;
    let mut written = 0;
    while written < args.orders {
        let size = 10_000.min(args.orders - written);
        let mut batch: OrderRows = Vec::with_capacity(size);
        for offset in 0..size {
            let index = written + offset;
            let who = rng.gen_range(0..customers.len());
            let (first, second) = preferences[who];
            let lines = rng.gen_range(1..=3);
            let mut items: Vec<(String, i64, i64)> = Vec::new();
            for _ in 0..lines {
                let category = if rng.gen_bool(0.7) { first } else { second };
                let product = product_in(&mut rng, category, per_category);
                if items.iter().any(|(id, _, _)| *id == products[product]) {
                    continue;
                }
                items.push((
                    products[product].clone(),
                    rng.gen_range(1..=2),
                    prices[product],
                ));
            }
            batch.push((
                format!("bench-order-{index:08}"),
                customers[who].to_string(),
                year_ago + index as i64,
                items,
            ));
        }
        match veil.store().pool() {
            Pool::Sqlite(pool) => insert_orders!(pool, &batch),
            Pool::Postgres(pool) => insert_orders!(pool, &batch),
        }
        written += size;
        if written % 100_000 == 0 {
            eprintln!(
                "  {written}/{} orders ({:.0}/s)",
                args.orders,
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let orders_seconds = started.elapsed().as_secs_f64();

    eprintln!("deriving the purchase statistics");
    let started = Instant::now();
    veil.store().rebuild_purchase_stats().await?;
    let rebuild_seconds = started.elapsed().as_secs_f64();
    eprintln!("recomputing every neighbour list");
    let started = Instant::now();
    veil.store()
        .rebuild_product_neighbours(veil_store::NEIGHBOUR_DEPTH)
        .await?;
    let neighbours_seconds = started.elapsed().as_secs_f64();
    // PostgreSQL plans from table statistics, which autovacuum keeps (it is off on some test servers): without
    // them the neighbour-list read is a sequential scan (210 ms instead of 1.8 ms).
    if let veil_store::Pool::Postgres(pool) = veil.store().pool() {
        veil_store::sqlx::query("ANALYZE").execute(pool).await?;
    }
    let lists = veil.store().product_neighbour_lists().await?;
    let neighbour_rows: usize = lists.values().map(Vec::len).sum();

    eprintln!("timing {} recommendations", args.requests);
    let mut samples = Vec::with_capacity(args.requests);
    let mut returned = 0;
    for _ in 0..args.requests {
        let customer = customers[rng.gen_range(0..customers.len())];
        let started = Instant::now();
        let list = veil.recommendations(&admin, customer, 5).await?;
        samples.push(started.elapsed());
        returned += list.items.len();
    }
    anyhow::ensure!(returned > 0, "no recommendations at all");

    eprintln!(
        "timing {} reads of the inputs and rankings alone",
        args.requests
    );
    let mut inputs_only = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        let customer = customers[rng.gen_range(0..customers.len())].to_string();
        let started = Instant::now();
        let inputs = veil.recommendation_inputs(&customer, &[], 5).await?;
        std::hint::black_box(recommend(inputs.as_input(), 5));
        inputs_only.push(started.elapsed());
    }

    eprintln!(
        "comparing with the plain item cosine for {} customers",
        args.full_requests
    );
    let mut listed_inputs = Vec::with_capacity(args.full_requests);
    let mut full_inputs = Vec::with_capacity(args.full_requests);
    let (mut same_list, mut same_set, mut shared) = (0, 0, 0);
    for _ in 0..args.full_requests {
        let customer = customers[rng.gen_range(0..customers.len())].to_string();
        let started = Instant::now();
        let inputs = veil.recommendation_inputs(&customer, &[], 5).await?;
        let listed = recommend(inputs.as_input(), 5);
        listed_inputs.push(started.elapsed());
        let started = Instant::now();
        let inputs = veil.full_recommendation_inputs(&customer, &[], 5).await?;
        let full = recommend(inputs.as_input(), 5);
        full_inputs.push(started.elapsed());
        let ids = |list: &[veil_app::recommendations::Scored]| {
            list.iter()
                .map(|scored| scored.product_id.clone())
                .collect::<Vec<_>>()
        };
        let (listed, full) = (ids(&listed), ids(&full));
        same_list += usize::from(listed == full);
        same_set += usize::from(listed.iter().all(|id| full.contains(id)));
        shared += listed.iter().filter(|id| full.contains(id)).count();
    }

    eprintln!("timing {} runs of the previous query", args.old_queries);
    let mut old = Vec::with_capacity(args.old_queries);
    for _ in 0..args.old_queries {
        let customer = customers[rng.gen_range(0..customers.len())].to_string();
        let started = Instant::now();
        let rows = match veil.store().pool() {
            Pool::Sqlite(pool) => sqlx::query(OLD_CO_PURCHASES)
                .bind(&customer)
                .fetch_all(pool)
                .await?
                .len(),
            Pool::Postgres(pool) => sqlx::query(OLD_CO_PURCHASES)
                .bind(&customer)
                .fetch_all(pool)
                .await?
                .len(),
        };
        old.push(started.elapsed());
        std::hint::black_box(rows);
    }

    eprintln!("timing {} paid orders through the service", args.writes);
    let mut writes = Vec::with_capacity(args.writes);
    let mut written_orders = Vec::with_capacity(args.writes);
    for _ in 0..args.writes {
        let customer = customers[rng.gen_range(0..customers.len())];
        let (first, _) = preferences[0];
        let product = product_in(&mut rng, first, per_category);
        let input = OrderInput {
            items: vec![OrderItemInput {
                product_id: products[product].clone(),
                quantity: 1,
            }],
            status: Some(OrderStatus::Paid),
            placed_at: None,
        };
        let started = Instant::now();
        let order = veil.create_order(&admin, customer, &input).await?;
        writes.push(started.elapsed());
        written_orders.push(order.id);
    }
    let backlog_after_writes = veil.store().neighbour_backlog().await?.lists;

    eprintln!("timing {} refunds through the service", args.refunds);
    let mut refunds = Vec::with_capacity(args.refunds);
    for order in written_orders.iter().take(args.refunds) {
        let started = Instant::now();
        veil.set_order_status(
            &admin,
            order,
            &OrderStatusInput {
                status: OrderStatus::Refunded,
            },
        )
        .await?;
        refunds.push(started.elapsed());
    }
    let backlog = veil.store().neighbour_backlog().await?;

    eprintln!(
        "refreshing: {} marked lists, {} rises",
        backlog.lists, backlog.rises
    );
    let started = Instant::now();
    let refreshed = veil.refresh_product_neighbours().await?;
    let refresh_seconds = started.elapsed().as_secs_f64();

    let kept = veil.store().kept_purchase_stats().await?;
    let report = json!({
        "customers": customers.len(),
        "orders": args.orders,
        "products": products.len(),
        "orders_insert_seconds": orders_seconds,
        "rebuild_purchase_stats_seconds": rebuild_seconds,
        "rebuild_neighbour_lists_seconds": neighbours_seconds,
        "customer_product_rows": kept.bought.len(),
        "product_pair_rows": kept.pairs.len(),
        "neighbour_depth": veil_store::NEIGHBOUR_DEPTH,
        "neighbour_lists": lists.len(),
        "product_neighbour_rows": neighbour_rows,
        "recommendations": summary(samples),
        "recommendation_inputs_and_ranking": summary(inputs_only),
        "against_the_plain_cosine": if args.full_requests == 0 { serde_json::Value::Null } else { json!({
            "customers": args.full_requests,
            "inputs_and_ranking_from_neighbour_lists": summary(listed_inputs),
            "inputs_and_ranking_over_every_pair": summary(full_inputs),
            "same_top5_in_order": same_list,
            "same_top5_as_a_set": same_set,
            "mean_shared_of_5": shared as f64 / args.full_requests as f64,
        }) },
        "previous_co_purchase_query": if old.is_empty() { serde_json::Value::Null } else { summary(old) },
        "paid_order_write": if writes.is_empty() { serde_json::Value::Null } else { summary(writes) },
        "lists_marked_after_writes": backlog_after_writes,
        "refund_write": if refunds.is_empty() { serde_json::Value::Null } else { summary(refunds) },
        "lists_marked_after_refunds": backlog.lists,
        "rises_after_refunds": backlog.rises,
        "refresh_job": json!({
            "rises_and_lists_handled": refreshed,
            "seconds": refresh_seconds,
            "ms_each": refresh_seconds * 1000.0 / refreshed.max(1) as f64,
        }),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
