//! `crm-bench`: the customer pool's automatic return and the CRM reports at 1,000,000 customers.
//!
//! Loading (not the measurement):
//! 1. `--salespeople` sales users in `--teams` teams under `sales`, `--service-agents` service users, an admin.
//! 2. `--customers` real customers (sealed, masked, blind-indexed, audited) through `Veil::create_customers_batch`
//!    in batches of `--batch`, owner `i mod salespeople`, on the import's own connection (`Store::bulk_session`);
//!    on SQLite two batches in flight, so that one is sealed while the other is written.
//! 3. Everything else is written straight into the tables with multi-row `INSERT`s in large transactions (the
//!    services' per-row audit entries would take hours and are not what is measured): for every customer one old
//!    contact by its owner; for all but `--unattended-percent` of them one follow-up by the owner after the pool's
//!    cut-off, spread over every source the return rule checks (ownership transfer, pool claim, interaction, note,
//!    ticket, comment on an older ticket, order (a row without lines: the rule reads `sales_order` only), message);
//!    30% of the unattended ones get a recent interaction by a service agent, which must not count. Then
//!    `--tickets` tickets of the last 16 weeks (mixed channel, category, priority and status; deadlines from the
//!    SLA targets in force, about a third answered late; comments for the first responses; escalations for half of
//!    the breached open ones), loyalty accounts and ledgers (earn lots, redemptions from the soonest-expiring lots)
//!    for `--loyalty-percent` of the customers over 13 months, and `--feedback` feedback rows (CSAT on tickets,
//!    NPS; low scores with complaint comments) over 12 months. PostgreSQL is then `ANALYZE`d (autovacuum may be
//!    off on test servers).
//!
//! The pool's return judges by the time it is given (`Veil::return_unattended(now)`, as the tests drive it): the
//! customers were created just now, so the simulated timeline puts the old contacts 30–59 days after the load, the
//! cut-off at 60 days and the judgement `VEIL_POOL_RETURN_DAYS` (30) days later, with the follow-ups in between.
//! None of it falls in the reports' windows, which end at the real present.
//!
//! Measured:
//! 1. The pool's candidate query alone (`Store::pool_return_candidates`, paged by 500 like the job) over the whole
//!    customer table; the first `Veil::return_unattended` (returns the unattended customers: count and seconds);
//!    then `--steady-runs` runs right after, which return nothing — the cost `veil serve` pays every
//!    `VEIL_POOL_RETURN_INTERVAL_SECS` (default 3,600 s) — as p50/min/max.
//! 2. `Veil::ticket_report`, `Veil::loyalty_report` and `Veil::feedback_summary` (default window: a year, by
//!    month) as the admin and as the first salesperson: one untimed call, then `--requests` calls, p50/p99.
//!
//! Run: `cargo run --release -p veil-bench --bin crm-bench` (SQLite in a temporary directory, or `--keep-dir DIR`
//! to keep the database for `EXPLAIN`; `--database-url postgres://…` for an empty PostgreSQL database). A small
//! run: `--customers 20000 --tickets 5000 --feedback 2000 --requests 5`. Progress goes to stderr; the result is
//! one JSON object on stdout.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use veil_app::demo::demo_input;
use veil_app::demo_data::DemoGenerator;
use veil_app::feedback::SummaryQuery;
use veil_app::imports::{DEFAULT_IMPORT_CACHE_MIB, DEFAULT_IMPORT_CHECKPOINT_MIB};
use veil_app::interactions::InteractionKind;
use veil_app::keys::{create_master_key_file, MasterKeySource};
use veil_app::tickets::{TicketCategory, TicketChannel, TicketPriority};
use veil_app::users::{Actor, Password, Role};
use veil_app::{format_time, now_ms, AppResult, CustomerId, Veil};
use veil_store::{sqlx, Backend, DatabaseUrl, Pool, Store};

/// mimalloc instead of glibc's malloc, as `veil` runs: see the workspace manifest.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Database URL; default SQLite in a temporary directory (or in `--keep-dir`). A PostgreSQL database must be
    /// empty.
    #[arg(long)]
    database_url: Option<String>,
    /// Directory for the master key and the SQLite file, kept after the run (must not hold either yet).
    #[arg(long)]
    keep_dir: Option<PathBuf>,
    /// Customers.
    #[arg(long, default_value_t = 1_000_000)]
    customers: usize,
    /// Sales users owning the customers (customer `i` belongs to salesperson `i mod N`).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    salespeople: u32,
    /// Sales teams the salespeople are spread over (`sales-1` … under `sales`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    teams: u32,
    /// Service users (team `service`): ticket assignees, authors of contacts that are not the owner's.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    service_agents: u32,
    /// Share of the customers not followed up by their owner since the cut-off, percent.
    #[arg(long, default_value_t = 2.0)]
    unattended_percent: f64,
    /// Tickets for the reports (the tickets and comments among the follow-ups come on top).
    #[arg(long, default_value_t = 200_000)]
    tickets: usize,
    /// Share of the customers with a loyalty account and ledger, percent.
    #[arg(long, default_value_t = 60.0)]
    loyalty_percent: f64,
    /// Feedback rows.
    #[arg(long, default_value_t = 100_000)]
    feedback: usize,
    /// Timed calls of each report per caller.
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// Timed runs of the pool's return after the first (they return nothing).
    #[arg(long, default_value_t = 5)]
    steady_runs: usize,
    /// Customers per `create_customers_batch` call.
    #[arg(long, default_value_t = 25_000)]
    batch: usize,
    /// Load nothing: time the reports again on the database an earlier run kept in `--keep-dir` (or at
    /// `--database-url`, with the master key in `--keep-dir`).
    #[arg(long, requires = "keep_dir")]
    reports_only: bool,
}

const PASSWORD: &str = "benchmark password 1";
const SEED: u64 = 7;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;
/// The return job's batch (`RETURN_BATCH` in `crates/veil-app/src/pool.rs`), for the candidate scan alone.
const JOB_BATCH: i64 = 500;
/// The default of `VEIL_POOL_RETURN_INTERVAL_SECS` (`crates/veil/src/config.rs`): how often `veil serve` runs the
/// return.
const SERVE_INTERVAL_SECS: f64 = 3_600.0;
/// Most bound values per `INSERT` statement.
const MAX_BINDS: usize = 2_000;
/// Rows per transaction of the direct loads.
const FLUSH_ROWS: usize = 25_000;

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn summary(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    json!({
        "requests": samples.len(),
        "p50_ms": percentile(&samples, 0.50),
        "p99_ms": percentile(&samples, 0.99),
        "max_ms": percentile(&samples, 1.0),
    })
}

/// An index drawn with the given relative weights.
fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.gen_range(0..total);
    for (index, weight) in weights.iter().enumerate() {
        if pick < *weight {
            return index;
        }
        pick -= weight;
    }
    weights.len() - 1
}

// ---------------------------------------------------------------------------------------------------------------
// Direct loading: rows of a few tables, written in one transaction with multi-row INSERTs.

/// A table and the columns the bench writes (the others take their defaults).
struct TableSpec {
    name: &'static str,
    columns: &'static [&'static str],
}

static INTERACTION: TableSpec = TableSpec {
    name: "interaction",
    columns: &[
        "id",
        "customer_id",
        "kind",
        "occurred_at",
        "duration_minutes",
        "note_masked",
        "author_id",
        "created_at",
        "updated_at",
    ],
};
static CUSTOMER_NOTE: TableSpec = TableSpec {
    name: "customer_note",
    columns: &[
        "id",
        "customer_id",
        "author_id",
        "body_masked",
        "created_at",
        "updated_at",
    ],
};
static OWNERSHIP_TRANSFER: TableSpec = TableSpec {
    name: "ownership_transfer",
    columns: &[
        "customer_id",
        "from_owner",
        "to_owner",
        "from_team",
        "to_team",
        "actor_id",
        "reason",
        "created_at",
    ],
};
static POOL_EVENT: TableSpec = TableSpec {
    name: "customer_pool_event",
    columns: &[
        "id",
        "customer_id",
        "kind",
        "from_owner",
        "from_team",
        "to_owner",
        "to_team",
        "actor_id",
        "reason",
        "at",
    ],
};
static TICKET: TableSpec = TableSpec {
    name: "ticket",
    columns: &[
        "id",
        "customer_id",
        "channel",
        "category",
        "priority",
        "status",
        "subject_masked",
        "description_masked",
        "assignee_id",
        "assigned_by",
        "created_by",
        "first_response_due_at",
        "resolution_due_at",
        "first_responded_at",
        "resolved_at",
        "closed_at",
        "created_at",
        "updated_at",
    ],
};
static TICKET_COMMENT: TableSpec = TableSpec {
    name: "ticket_comment",
    columns: &[
        "id",
        "ticket_id",
        "author_id",
        "body_masked",
        "created_at",
        "updated_at",
    ],
};
static TICKET_ESCALATION: TableSpec = TableSpec {
    name: "ticket_escalation",
    columns: &[
        "ticket_id",
        "timer",
        "escalated_to",
        "assignee_id",
        "due_at",
        "created_at",
    ],
};
static SALES_ORDER: TableSpec = TableSpec {
    name: "sales_order",
    columns: &[
        "id",
        "customer_id",
        "status",
        "currency",
        "total_fen",
        "points_earned",
        "created_by",
        "placed_at",
        "created_at",
        "updated_at",
    ],
};
static CUSTOMER_MESSAGE: TableSpec = TableSpec {
    name: "customer_message",
    columns: &[
        "id",
        "customer_id",
        "template_name",
        "channel",
        "purpose",
        "recipient_masked",
        "status",
        "sent_by",
        "created_at",
        "updated_at",
    ],
};
static LOYALTY_ACCOUNT: TableSpec = TableSpec {
    name: "loyalty_account",
    columns: &[
        "customer_id",
        "balance",
        "lifetime_points",
        "tier",
        "created_at",
        "updated_at",
    ],
};
static LOYALTY_ENTRY: TableSpec = TableSpec {
    name: "loyalty_entry",
    columns: &[
        "id",
        "customer_id",
        "kind",
        "points",
        "remaining",
        "expires_at",
        "reason",
        "actor_id",
        "created_at",
    ],
};
static FEEDBACK: TableSpec = TableSpec {
    name: "feedback",
    columns: &[
        "id",
        "customer_id",
        "kind",
        "score",
        "comment_masked",
        "source",
        "ticket_id",
        "channel",
        "agent_id",
        "recorded_by",
        "created_at",
        "updated_at",
    ],
};

/// One column value. Nulls carry their column's type: PostgreSQL needs it to bind them.
enum Value {
    Text(String),
    Int(i64),
    NullText,
    NullInt,
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Value::Int(number)
    }
}

impl From<Option<&str>> for Value {
    fn from(text: Option<&str>) -> Self {
        text.map_or(Value::NullText, Value::from)
    }
}

impl From<Option<i64>> for Value {
    fn from(number: Option<i64>) -> Self {
        number.map_or(Value::NullInt, Value::Int)
    }
}

/// `INSERT INTO table (columns) VALUES (…), (…)` for `rows` rows: anonymous `?` placeholders on SQLite (numbered
/// ones make SQLite walk its parameter list on every bind, see docs/benchmarks.md), `$N` on PostgreSQL.
fn insert_sql(spec: &TableSpec, rows: usize, numbered: bool) -> String {
    let width = spec.columns.len();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        spec.name,
        spec.columns.join(", ")
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                let _ = write!(sql, "${}", row * width + column + 1);
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// Writes `$tables` (spec, rows) in order in one transaction on `$pool`.
macro_rules! insert_tables {
    ($pool:expr, $tables:expr, $numbered:expr) => {{
        let mut tx = $pool.begin().await?;
        for (spec, rows) in $tables {
            let per_statement = (MAX_BINDS / spec.columns.len()).max(1);
            for chunk in rows.chunks(per_statement) {
                let sql = insert_sql(spec, chunk.len(), $numbered);
                let mut query = sqlx::query(&sql);
                for value in chunk.iter().flatten() {
                    query = match value {
                        Value::Text(text) => query.bind(text.as_str()),
                        Value::Int(number) => query.bind(*number),
                        Value::NullText => query.bind(None::<&str>),
                        Value::NullInt => query.bind(None::<i64>),
                    };
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
    }};
}

/// Rows waiting to be written, per table in the order first used (parents before children).
#[derive(Default)]
struct Batch {
    tables: Vec<(&'static TableSpec, Vec<Vec<Value>>)>,
    rows: usize,
}

impl Batch {
    fn push(&mut self, spec: &'static TableSpec, row: Vec<Value>) {
        debug_assert_eq!(row.len(), spec.columns.len(), "{}", spec.name);
        self.rows += 1;
        match self
            .tables
            .iter_mut()
            .find(|(table, _)| table.name == spec.name)
        {
            Some((_, rows)) => rows.push(row),
            None => self.tables.push((spec, vec![row])),
        }
    }

    /// Writes everything in one transaction; returns the rows written.
    async fn flush(&mut self, pool: &Pool) -> anyhow::Result<usize> {
        let tables = std::mem::take(&mut self.tables);
        let rows = std::mem::take(&mut self.rows);
        if rows > 0 {
            match pool {
                Pool::Sqlite(pool) => insert_tables!(pool, &tables, false),
                Pool::Postgres(pool) => insert_tables!(pool, &tables, true),
            }
        }
        Ok(rows)
    }
}

/// Prints a progress line at every `step` items and at the end.
struct Progress {
    what: &'static str,
    total: usize,
    step: usize,
    next: usize,
    started: Instant,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Progress {
        eprintln!("{what}: {total}");
        let step = (total / 10).max(1);
        Progress {
            what,
            total,
            step,
            next: step,
            started: Instant::now(),
        }
    }

    fn update(&mut self, done: usize, rows: usize) {
        if done >= self.next || done == self.total {
            let seconds = self.started.elapsed().as_secs_f64();
            eprintln!(
                "  {done}/{} {} ({rows} rows, {:.0} rows/s, {seconds:.1} s)",
                self.total,
                self.what,
                rows as f64 / seconds.max(1e-9)
            );
            while self.next <= done {
                self.next += self.step;
            }
        }
    }

    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// What the rows say (masked text as the services store it: no personal data, or only masked displays).

const CONTACT_NOTES: [&str; 4] = [
    "电话回访，客户对方案有兴趣，约下周面谈",
    "上门拜访，介绍新产品和优惠活动",
    "微信沟通报价细节，客户需要再考虑",
    "客户询问售后政策，已解答",
];
const COMPLAINTS: [&str; 6] = [
    "服务态度很差，等待时间太长",
    "退款一直没有到账，客服电话打不通",
    "产品质量有问题，换货流程太慢",
    "送货延迟三天，没有任何通知",
    "电话138****5678一直没人接，投诉处理太慢",
    "收费不透明，账单金额和报价不一致",
];
const PRAISE: [&str; 3] = [
    "服务很周到，问题很快解决",
    "客服耐心专业",
    "送货及时，包装完好",
];
/// Subjects per category, in the order of `TicketCategory::ALL` (complaints use `COMPLAINTS`).
const SUBJECTS: [&str; 6] = [
    "咨询产品价格和优惠活动",
    "",
    "申请售后维修",
    "发票开具问题",
    "系统登录失败",
    "其他问题",
];
/// Category weights, in the order of `TicketCategory::ALL`: inquiry, complaint, after-sales, billing, technical,
/// other.
const CATEGORY_WEIGHTS: [u32; 6] = [40, 15, 20, 10, 10, 5];
const PRIORITIES: [TicketPriority; 4] = [
    TicketPriority::Urgent,
    TicketPriority::High,
    TicketPriority::Normal,
    TicketPriority::Low,
];
const PRIORITY_WEIGHTS: [u32; 4] = [5, 15, 60, 20];
const REDEMPTIONS: [&str; 5] = [
    "兑换电影票两张",
    "兑换咖啡券",
    "兑换保养套餐",
    "积分抵扣订单金额",
    "兑换积分商城礼品",
];

/// The ways the return rule counts an owner's follow-up, with their share of the followed-up customers.
#[derive(Clone, Copy)]
enum FollowUp {
    Transfer,
    Claim,
    Interaction,
    Note,
    Ticket,
    TicketComment,
    Order,
    Message,
}

const FOLLOW_UPS: [(FollowUp, &str, u32); 8] = [
    (FollowUp::Transfer, "ownership_transfer", 4),
    (FollowUp::Claim, "pool_claim", 4),
    (FollowUp::Interaction, "interaction", 36),
    (FollowUp::Note, "note", 14),
    (FollowUp::Ticket, "ticket", 6),
    (FollowUp::TicketComment, "ticket_comment", 8),
    (FollowUp::Order, "order", 14),
    (FollowUp::Message, "message", 14),
];

fn interaction_row(
    id: String,
    customer: &str,
    kind: InteractionKind,
    at: i64,
    author: &str,
    note: &str,
) -> Vec<Value> {
    vec![
        id.into(),
        customer.into(),
        kind.as_str().into(),
        at.into(),
        15i64.into(),
        note.into(),
        author.into(),
        at.into(),
        at.into(),
    ]
}

/// A ticket row.
struct TicketFields<'a> {
    id: String,
    customer: &'a str,
    channel: TicketChannel,
    category: TicketCategory,
    priority: TicketPriority,
    status: &'static str,
    subject: &'static str,
    description: &'static str,
    assignee: Option<&'a str>,
    assigned_by: Option<&'static str>,
    created_by: Option<&'a str>,
    first_response_due_at: i64,
    resolution_due_at: i64,
    first_responded_at: Option<i64>,
    resolved_at: Option<i64>,
    closed_at: Option<i64>,
    created_at: i64,
}

impl TicketFields<'_> {
    fn row(self) -> Vec<Value> {
        let updated_at = [self.first_responded_at, self.resolved_at, self.closed_at]
            .into_iter()
            .flatten()
            .fold(self.created_at, i64::max);
        vec![
            self.id.into(),
            self.customer.into(),
            self.channel.as_str().into(),
            self.category.as_str().into(),
            self.priority.as_str().into(),
            self.status.into(),
            self.subject.into(),
            self.description.into(),
            self.assignee.into(),
            self.assigned_by.into(),
            self.created_by.into(),
            self.first_response_due_at.into(),
            self.resolution_due_at.into(),
            self.first_responded_at.into(),
            self.resolved_at.into(),
            self.closed_at.into(),
            self.created_at.into(),
            updated_at.into(),
        ]
    }
}

/// A closed ticket of `customer` opened at `at` (answered after 30 minutes, resolved after 2 hours).
fn closed_ticket<'a>(
    id: String,
    customer: &'a str,
    at: i64,
    by: &'a str,
    assignee: &'a str,
) -> TicketFields<'a> {
    TicketFields {
        id,
        customer,
        channel: TicketChannel::Phone,
        category: TicketCategory::Inquiry,
        priority: TicketPriority::Normal,
        status: "closed",
        subject: SUBJECTS[0],
        description: "",
        assignee: Some(assignee),
        assigned_by: Some("explicit"),
        created_by: Some(by),
        first_response_due_at: at + 4 * HOUR_MS,
        resolution_due_at: at + DAY_MS,
        first_responded_at: Some(at + 30 * MINUTE_MS),
        resolved_at: Some(at + 2 * HOUR_MS),
        closed_at: Some(at + 3 * HOUR_MS),
        created_at: at,
    }
}

/// What feedback needs of a report ticket.
struct TicketFacts {
    customer: usize,
    channel: TicketChannel,
    assignee: Option<usize>,
    created_at: i64,
}

fn ticket_id(index: usize) -> String {
    format!("bench-tk-{index:07}")
}

/// The users: an admin, the salespeople (customer `i` belongs to `owner_ids[i mod N]`) and the service agents.
struct Staff {
    admin: Actor,
    salespeople: Vec<Actor>,
    owner_ids: Vec<String>,
    owner_teams: Vec<String>,
    agent_ids: Vec<String>,
}

impl Staff {
    /// The owner of customer `customer`, by index into `owner_ids`.
    fn owner_of(&self, customer: usize) -> usize {
        customer % self.owner_ids.len()
    }

    /// A ticket assignee by index: the salespeople, then the agents.
    fn member(&self, index: usize) -> &str {
        match index.checked_sub(self.owner_ids.len()) {
            None => &self.owner_ids[index],
            Some(agent) => &self.agent_ids[agent],
        }
    }

    fn random_agent(&self, rng: &mut StdRng) -> &str {
        &self.agent_ids[rng.gen_range(0..self.agent_ids.len())]
    }
}

/// The pool's simulated timeline (see the module documentation), Unix ms.
struct Timeline {
    /// Old contacts fall in `[old_from, old_to)`.
    old_from: i64,
    old_to: i64,
    /// The return's cut-off: follow-ups count from here.
    cutoff: i64,
    /// The time the return judges by.
    judge_at: i64,
}

/// What `write_contacts` wrote.
struct Contacts {
    unattended: usize,
    others_recent: usize,
    follow_ups: [usize; FOLLOW_UPS.len()],
    rows: usize,
    seconds: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Multi-threaded, as `veil serve` runs (and so that the customer load can seal a batch while one is written).
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.customers > 0 && args.requests > 0 && args.steady_runs > 0 && args.batch > 0,
        "--customers, --requests, --steady-runs and --batch must be positive"
    );
    anyhow::ensure!(
        (0.0..=100.0).contains(&args.unattended_percent)
            && (0.0..=100.0).contains(&args.loyalty_percent),
        "--unattended-percent and --loyalty-percent are percentages"
    );
    if args.reports_only {
        return reports_again(&args).await;
    }
    let temporary = tempfile::tempdir()?;
    let dir = match &args.keep_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => temporary.path().to_owned(),
    };
    let key = MasterKeySource::File(dir.join("master.key"));
    let database = dir.join("veil.db");
    anyhow::ensure!(
        !dir.join("master.key").exists() && !database.exists(),
        "{} already holds a master key or a database",
        dir.display()
    );
    create_master_key_file(&dir.join("master.key"))?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", database.display()));
    let store = Store::connect(&DatabaseUrl::new(url)).await?;
    let backend = store.backend();
    let veil = Veil::initialise(store, &key).await?;
    let started_at = now_ms();

    let staff = add_staff(&veil, &args).await?;
    // Everything is loaded on the import's connection (its large page cache and rare checkpoints).
    let bulk = veil
        .store()
        .bulk_session(DEFAULT_IMPORT_CACHE_MIB, DEFAULT_IMPORT_CHECKPOINT_MIB)
        .await?;
    let (customers, customers_seconds) =
        create_customers(Veil::open(Store::clone(&bulk), &key).await?, &staff, &args).await?;

    let loaded_at = now_ms();
    let return_days = i64::from(veil.pool_rules().return_days);
    anyhow::ensure!(return_days > 0, "the pool's return is off");
    let timeline = Timeline {
        old_from: loaded_at + 30 * DAY_MS,
        old_to: loaded_at + 59 * DAY_MS,
        cutoff: loaded_at + 60 * DAY_MS,
        judge_at: loaded_at + (60 + return_days) * DAY_MS,
    };
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let contacts = write_contacts(
        bulk.pool(),
        &mut rng,
        &customers,
        &staff,
        &timeline,
        args.unattended_percent / 100.0,
    )
    .await?;
    let real_now = now_ms();
    let (tickets, tickets_load) = write_tickets(
        &veil,
        bulk.pool(),
        &mut rng,
        &customers,
        &staff,
        args.tickets,
        real_now,
    )
    .await?;
    let loyalty_load = write_loyalty(
        &veil,
        bulk.pool(),
        &mut rng,
        &customers,
        &staff,
        args.loyalty_percent / 100.0,
        real_now,
    )
    .await?;
    let feedback_load = write_feedback(
        bulk.pool(),
        &mut rng,
        &customers,
        &staff,
        &tickets,
        args.feedback,
        real_now,
    )
    .await?;
    drop(tickets);
    bulk.close().await;
    let started = Instant::now();
    match veil.store().pool() {
        // PostgreSQL plans from table statistics, which autovacuum keeps (it is off on some test servers).
        Pool::Postgres(pool) => {
            eprintln!("ANALYZE");
            sqlx::query("ANALYZE").execute(pool).await?;
        }
        Pool::Sqlite(_) => veil.store().checkpoint().await?,
    }
    let settle_seconds = started.elapsed().as_secs_f64();
    let load_seconds = (now_ms() - started_at) as f64 / 1000.0;

    let pool_return = time_pool_return(&veil, &timeline, &contacts, args.steady_runs).await?;
    let reports = time_reports(&veil, &staff, args.requests).await?;

    let report = json!({
        "backend": backend.as_str(),
        "customers": customers.len(),
        "salespeople": staff.owner_ids.len(),
        "customers_per_salesperson": customers.len().div_ceil(staff.owner_ids.len()),
        "teams": args.teams,
        "service_agents": staff.agent_ids.len(),
        "load": {
            "seconds": load_seconds,
            "customers_seconds": customers_seconds,
            "customers_per_second": customers.len() as f64 / customers_seconds,
            "contact_and_follow_up_rows": contacts.rows,
            "contact_and_follow_up_seconds": contacts.seconds,
            "tickets": tickets_load,
            "loyalty": loyalty_load,
            "feedback": feedback_load,
            "settle": match backend { Backend::Sqlite => "checkpoint", Backend::Postgres => "ANALYZE" },
            "settle_seconds": settle_seconds,
        },
        "pool_return": pool_return,
        "reports": reports,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The admin, `--teams` sales teams under `sales` with the salespeople spread over them, and the service agents.
async fn add_staff(veil: &Veil, args: &Args) -> anyhow::Result<Staff> {
    eprintln!(
        "adding {} salespeople in {} teams and {} service agents",
        args.salespeople, args.teams, args.service_agents
    );
    let password = Password::new(PASSWORD.into());
    veil.add_user("bench-admin", Role::Admin, None, &password)
        .await?;
    let admin = veil.actor_by_username("bench-admin").await?;
    veil.add_team(&admin, "sales", None).await?;
    for team in 1..=args.teams {
        veil.add_team(&admin, &format!("sales-{team}"), Some("sales"))
            .await?;
    }
    veil.add_team(&admin, "service", None).await?;
    let mut salespeople = Vec::with_capacity(args.salespeople as usize);
    for index in 0..args.salespeople {
        let username = format!("bench-sales-{:03}", index + 1);
        let team = format!("sales-{}", index % args.teams + 1);
        veil.add_user(&username, Role::Sales, Some(&team), &password)
            .await?;
        salespeople.push(veil.actor_by_username(&username).await?);
    }
    let mut agent_ids = Vec::with_capacity(args.service_agents as usize);
    for index in 0..args.service_agents {
        let username = format!("bench-service-{:02}", index + 1);
        veil.add_user(&username, Role::Service, Some("service"), &password)
            .await?;
        agent_ids.push(veil.actor_by_username(&username).await?.user_id.to_string());
    }
    Ok(Staff {
        admin,
        owner_ids: salespeople
            .iter()
            .map(|actor| actor.user_id.to_string())
            .collect(),
        owner_teams: salespeople
            .iter()
            .map(|actor| actor.team.clone().unwrap_or_default())
            .collect(),
        salespeople,
        agent_ids,
    })
}

/// Creates the customers through `Veil::create_customers_batch` on `loader` (a `Veil` over the bulk session), two
/// batches in flight on SQLite (one sealed while the other is written). Returns their ids, in order, and the
/// seconds taken.
async fn create_customers(
    loader: Veil,
    staff: &Staff,
    args: &Args,
) -> anyhow::Result<(Vec<String>, f64)> {
    // On SQLite the bulk session's one connection runs the two batches' transactions one after the other. On
    // PostgreSQL two concurrent ones would both lock rows of `customer_industry_count` (its insert trigger), in an
    // order the plan chooses: one batch at a time there, rather than risk a deadlock late in a long load.
    let in_flight = match loader.store().backend() {
        Backend::Sqlite => 2,
        Backend::Postgres => 1,
    };
    let loader = Arc::new(loader);
    let mut progress = Progress::new("customers", args.customers);
    let mut generator = DemoGenerator::new(SEED);
    let mut pending: VecDeque<tokio::task::JoinHandle<AppResult<Vec<CustomerId>>>> =
        VecDeque::new();
    let mut customers: Vec<String> = Vec::with_capacity(args.customers);
    let mut queued = 0;
    loop {
        if queued < args.customers && pending.len() < in_flight {
            let size = args.batch.min(args.customers - queued);
            let inputs: Vec<_> = (queued..queued + size)
                .map(|index| {
                    demo_input(
                        &generator.next_customer(),
                        Some(staff.owner_ids[staff.owner_of(index)].clone()),
                    )
                })
                .collect();
            let (loader, admin) = (loader.clone(), staff.admin.clone());
            pending.push_back(tokio::spawn(async move {
                loader.create_customers_batch(&admin, &inputs).await
            }));
            queued += size;
            continue;
        }
        let Some(batch) = pending.pop_front() else {
            break;
        };
        let ids = batch.await??;
        customers.extend(ids.iter().map(ToString::to_string));
        progress.update(customers.len(), customers.len());
    }
    anyhow::ensure!(
        customers.len() == args.customers,
        "created {} customers",
        customers.len()
    );
    Ok((customers, progress.seconds()))
}

/// For every customer an old contact by its owner; for all but `unattended` of them (a fraction) one follow-up by
/// the owner after the cut-off, from one of the sources the return rule checks; for 30% of the others a recent
/// contact by a service agent, which does not count.
async fn write_contacts(
    pool: &Pool,
    rng: &mut StdRng,
    customers: &[String],
    staff: &Staff,
    timeline: &Timeline,
    unattended: f64,
) -> anyhow::Result<Contacts> {
    let weights: Vec<u32> = FOLLOW_UPS.iter().map(|(_, _, weight)| *weight).collect();
    let mut contacts = Contacts {
        unattended: 0,
        others_recent: 0,
        follow_ups: [0; FOLLOW_UPS.len()],
        rows: 0,
        seconds: 0.0,
    };
    let mut batch = Batch::default();
    let mut progress = Progress::new("customers' contacts and follow-ups", customers.len());
    for (index, customer) in customers.iter().enumerate() {
        let owner = staff.owner_of(index);
        let owner_id = staff.owner_ids[owner].as_str();
        let owner_team = staff.owner_teams[owner].as_str();
        let agent = staff.random_agent(rng);
        let old_at = rng.gen_range(timeline.old_from..timeline.old_to);
        let at = rng.gen_range(timeline.cutoff + HOUR_MS..timeline.judge_at - HOUR_MS);
        let kind = InteractionKind::ALL[rng.gen_range(0..InteractionKind::ALL.len())];
        let note = CONTACT_NOTES[rng.gen_range(0..CONTACT_NOTES.len())];
        batch.push(
            &INTERACTION,
            interaction_row(
                format!("bench-io-{index:07}"),
                customer,
                kind,
                old_at,
                owner_id,
                note,
            ),
        );
        if rng.gen_bool(unattended) {
            contacts.unattended += 1;
            if rng.gen_bool(0.3) {
                contacts.others_recent += 1;
                batch.push(
                    &INTERACTION,
                    interaction_row(
                        format!("bench-ia-{index:07}"),
                        customer,
                        InteractionKind::Call,
                        at,
                        agent,
                        note,
                    ),
                );
            }
        } else {
            let pick = weighted(rng, &weights);
            contacts.follow_ups[pick] += 1;
            match FOLLOW_UPS[pick].0 {
                FollowUp::Transfer => {
                    let previous = (owner + 1) % staff.owner_ids.len();
                    batch.push(
                        &OWNERSHIP_TRANSFER,
                        vec![
                            customer.as_str().into(),
                            staff.owner_ids[previous].as_str().into(),
                            owner_id.into(),
                            staff.owner_teams[previous].as_str().into(),
                            owner_team.into(),
                            staff.admin.user_id.to_string().into(),
                            "客户重新分配".into(),
                            at.into(),
                        ],
                    );
                }
                FollowUp::Claim => batch.push(
                    &POOL_EVENT,
                    vec![
                        format!("bench-pe-{index:07}").into(),
                        customer.as_str().into(),
                        "claim".into(),
                        None::<&str>.into(),
                        None::<&str>.into(),
                        owner_id.into(),
                        owner_team.into(),
                        owner_id.into(),
                        "".into(),
                        at.into(),
                    ],
                ),
                FollowUp::Interaction => batch.push(
                    &INTERACTION,
                    interaction_row(
                        format!("bench-if-{index:07}"),
                        customer,
                        kind,
                        at,
                        owner_id,
                        note,
                    ),
                ),
                FollowUp::Note => batch.push(
                    &CUSTOMER_NOTE,
                    vec![
                        format!("bench-note-{index:07}").into(),
                        customer.as_str().into(),
                        owner_id.into(),
                        note.into(),
                        at.into(),
                        at.into(),
                    ],
                ),
                FollowUp::Ticket => batch.push(
                    &TICKET,
                    closed_ticket(
                        format!("bench-tf-{index:07}"),
                        customer,
                        at,
                        owner_id,
                        owner_id,
                    )
                    .row(),
                ),
                FollowUp::TicketComment => {
                    // The owner answers on an older ticket an agent opened.
                    let ticket = format!("bench-th-{index:07}");
                    batch.push(
                        &TICKET,
                        closed_ticket(ticket.clone(), customer, old_at, agent, agent).row(),
                    );
                    batch.push(
                        &TICKET_COMMENT,
                        vec![
                            format!("bench-tc-{index:07}").into(),
                            ticket.into(),
                            owner_id.into(),
                            "已与客户确认处理结果".into(),
                            at.into(),
                            at.into(),
                        ],
                    );
                }
                FollowUp::Order => batch.push(
                    &SALES_ORDER,
                    vec![
                        format!("bench-so-{index:07}").into(),
                        customer.as_str().into(),
                        "placed".into(),
                        "CNY".into(),
                        rng.gen_range(1_000..500_000i64).into(),
                        0i64.into(),
                        owner_id.into(),
                        at.into(),
                        at.into(),
                        at.into(),
                    ],
                ),
                FollowUp::Message => batch.push(
                    &CUSTOMER_MESSAGE,
                    vec![
                        format!("bench-msg-{index:07}").into(),
                        customer.as_str().into(),
                        "节日关怀".into(),
                        "sms".into(),
                        "care".into(),
                        "138****5678".into(),
                        "sent".into(),
                        owner_id.into(),
                        at.into(),
                        at.into(),
                    ],
                ),
            }
        }
        if batch.rows >= FLUSH_ROWS {
            contacts.rows += batch.flush(pool).await?;
        }
        progress.update(index + 1, contacts.rows + batch.rows);
    }
    contacts.rows += batch.flush(pool).await?;
    contacts.seconds = progress.seconds();
    Ok(contacts)
}

/// `count` tickets of the last 16 weeks before `now`, with comments for their first responses and escalations for
/// half of the breached open ones. Returns what feedback needs of each, and the load's figures.
async fn write_tickets(
    veil: &Veil,
    pool: &Pool,
    rng: &mut StdRng,
    customers: &[String],
    staff: &Staff,
    count: usize,
    now: i64,
) -> anyhow::Result<(Vec<TicketFacts>, serde_json::Value)> {
    let sla = veil.sla_targets();
    let admin_id = staff.admin.user_id.to_string();
    let mut tickets = Vec::with_capacity(count);
    let (mut rows, mut open_tickets, mut escalations) = (0, 0usize, 0usize);
    let mut batch = Batch::default();
    let mut progress = Progress::new("tickets", count);
    for index in 0..count {
        let customer = rng.gen_range(0..customers.len());
        let owner = staff.owner_of(customer);
        let created_at = now - rng.gen_range(10 * MINUTE_MS..16 * WEEK_MS);
        let priority = PRIORITIES[weighted(rng, &PRIORITY_WEIGHTS)];
        let target = sla.for_priority(priority);
        let first_response_due_at = created_at + target.first_response_ms;
        let resolution_due_at = created_at + target.resolution_ms;
        let age = now - created_at;
        let open_share = if age < 2 * DAY_MS {
            0.6
        } else if age < 2 * WEEK_MS {
            0.15
        } else {
            0.03
        };
        let status = if rng.gen_bool(open_share) {
            ["open", "in_progress", "reopened"][weighted(rng, &[50, 40, 10])]
        } else {
            ["resolved", "closed"][weighted(rng, &[30, 70])]
        };
        let open = matches!(status, "open" | "in_progress" | "reopened");
        open_tickets += usize::from(open);
        // About a third answered or resolved after the deadline.
        let answer_at =
            created_at + (target.first_response_ms as f64 * rng.gen_range(0.1..1.4)) as i64;
        let first_responded_at = if !open {
            Some(answer_at.min(now - MINUTE_MS))
        } else if answer_at < now && (status != "open" || rng.gen_bool(0.4)) {
            Some(answer_at)
        } else {
            None
        };
        let resolved_at = (!open).then(|| {
            (created_at + (target.resolution_ms as f64 * rng.gen_range(0.2..1.5)) as i64)
                .max(first_responded_at.unwrap_or(created_at))
                .min(now - MINUTE_MS)
        });
        let closed_at = match resolved_at {
            Some(at) if status == "closed" => {
                Some((at + rng.gen_range(HOUR_MS..2 * DAY_MS)).min(now))
            }
            _ => None,
        };
        let (assignee, assigned_by) = match weighted(rng, &[70, 20, 10]) {
            0 => (
                Some(staff.owner_ids.len() + rng.gen_range(0..staff.agent_ids.len())),
                Some("round_robin"),
            ),
            1 => (Some(owner), Some("owner")),
            _ => (None, None),
        };
        let created_by = match weighted(rng, &[50, 30, 20]) {
            0 => staff.random_agent(rng),
            1 => staff.owner_ids[owner].as_str(),
            _ => admin_id.as_str(),
        };
        let channel = TicketChannel::ALL[rng.gen_range(0..TicketChannel::ALL.len())];
        let category_index = weighted(rng, &CATEGORY_WEIGHTS);
        let category = TicketCategory::ALL[category_index];
        let (subject, description) = if category == TicketCategory::Complaint {
            (
                COMPLAINTS[rng.gen_range(0..COMPLAINTS.len())],
                COMPLAINTS[rng.gen_range(0..COMPLAINTS.len())],
            )
        } else {
            (SUBJECTS[category_index], "")
        };
        let id = ticket_id(index);
        batch.push(
            &TICKET,
            TicketFields {
                id: id.clone(),
                customer: &customers[customer],
                channel,
                category,
                priority,
                status,
                subject,
                description,
                assignee: assignee.map(|member| staff.member(member)),
                assigned_by,
                created_by: Some(created_by),
                first_response_due_at,
                resolution_due_at,
                first_responded_at,
                resolved_at,
                closed_at,
                created_at,
            }
            .row(),
        );
        if let Some(at) = first_responded_at {
            let author = assignee.map_or(created_by, |member| staff.member(member));
            batch.push(
                &TICKET_COMMENT,
                vec![
                    format!("bench-tkc-{index:07}").into(),
                    id.as_str().into(),
                    author.into(),
                    "已联系客户，正在处理".into(),
                    at.into(),
                    at.into(),
                ],
            );
        }
        let first_late = first_responded_at.unwrap_or(now) > first_response_due_at;
        let resolution_late = now > resolution_due_at;
        if open && (first_late || resolution_late) && rng.gen_bool(0.5) {
            escalations += 1;
            let (timer, due_at) = if first_late {
                ("first_response", first_response_due_at)
            } else {
                ("resolution", resolution_due_at)
            };
            batch.push(
                &TICKET_ESCALATION,
                vec![
                    id.into(),
                    timer.into(),
                    None::<&str>.into(),
                    assignee.map(|member| staff.member(member)).into(),
                    due_at.into(),
                    (due_at + MINUTE_MS).min(now).into(),
                ],
            );
        }
        tickets.push(TicketFacts {
            customer,
            channel,
            assignee,
            created_at,
        });
        if batch.rows >= FLUSH_ROWS {
            rows += batch.flush(pool).await?;
        }
        progress.update(index + 1, rows + batch.rows);
    }
    rows += batch.flush(pool).await?;
    let figures = json!({
        "tickets": count,
        "open": open_tickets,
        "escalations": escalations,
        "rows_with_comments_and_escalations": rows,
        "seconds": progress.seconds(),
    });
    Ok((tickets, figures))
}

/// Loyalty accounts and ledgers for `share` of the customers: 1–4 earn lots over the 13 months before `now`, a
/// redemption after the last for about a third (from the oldest lots, as the service takes them), balance and
/// tier from the lots and the rules in force.
async fn write_loyalty(
    veil: &Veil,
    pool: &Pool,
    rng: &mut StdRng,
    customers: &[String],
    staff: &Staff,
    share: f64,
    now: i64,
) -> anyhow::Result<serde_json::Value> {
    let rules = veil.loyalty_rules();
    let (mut accounts, mut entries, mut rows) = (0usize, 0usize, 0);
    let mut batch = Batch::default();
    let mut progress = Progress::new("customers' loyalty accounts", customers.len());
    for (index, customer) in customers.iter().enumerate() {
        if rng.gen_bool(share) {
            accounts += 1;
            // Earn lots: (time, points, remaining).
            let mut lots: Vec<(i64, i64, i64)> = (0..rng.gen_range(1..=4))
                .map(|_| {
                    let points = (rng.gen::<f64>().powi(4) * 12_000.0) as i64 + 20;
                    (now - rng.gen_range(HOUR_MS..400 * DAY_MS), points, points)
                })
                .collect();
            lots.sort_unstable();
            let lifetime: i64 = lots.iter().map(|(_, points, _)| points).sum();
            let first_earn = lots[0].0;
            let last_earn = lots[lots.len() - 1].0;
            let redemption = if rng.gen_bool(0.35) && lifetime >= 100 {
                let wanted = (rng.gen_range(1..=20i64) * 100).min(lifetime / 100 * 100);
                let mut left = wanted;
                for lot in &mut lots {
                    let taken = left.min(lot.2);
                    lot.2 -= taken;
                    left -= taken;
                }
                let at = (last_earn + rng.gen_range(HOUR_MS..30 * DAY_MS)).min(now - MINUTE_MS);
                let reason =
                    (!rng.gen_bool(0.1)).then(|| REDEMPTIONS[rng.gen_range(0..REDEMPTIONS.len())]);
                Some((at, wanted, reason))
            } else {
                None
            };
            for (number, (at, points, remaining)) in lots.iter().enumerate() {
                let expires_at = (rules.expiry_days > 0).then(|| at + rules.expiry_days * DAY_MS);
                batch.push(
                    &LOYALTY_ENTRY,
                    vec![
                        format!("bench-le-{index:07}-{number}").into(),
                        customer.as_str().into(),
                        "earn".into(),
                        (*points).into(),
                        (*remaining).into(),
                        expires_at.into(),
                        None::<&str>.into(),
                        None::<&str>.into(),
                        (*at).into(),
                    ],
                );
            }
            entries += lots.len();
            let mut updated_at = last_earn;
            if let Some((at, points, reason)) = redemption {
                entries += 1;
                updated_at = at;
                batch.push(
                    &LOYALTY_ENTRY,
                    vec![
                        format!("bench-le-{index:07}-r").into(),
                        customer.as_str().into(),
                        "redeem".into(),
                        (-points).into(),
                        0i64.into(),
                        None::<i64>.into(),
                        reason.into(),
                        staff.owner_ids[staff.owner_of(index)].as_str().into(),
                        at.into(),
                    ],
                );
            }
            let balance: i64 = lots.iter().map(|(_, _, remaining)| remaining).sum();
            let tier = rules
                .tiers
                .iter()
                .rfind(|tier| tier.threshold <= lifetime)
                .map_or("member", |tier| tier.name.as_str());
            batch.push(
                &LOYALTY_ACCOUNT,
                vec![
                    customer.as_str().into(),
                    balance.into(),
                    lifetime.into(),
                    tier.into(),
                    first_earn.into(),
                    updated_at.into(),
                ],
            );
        }
        if batch.rows >= FLUSH_ROWS {
            rows += batch.flush(pool).await?;
        }
        progress.update(index + 1, rows + batch.rows);
    }
    rows += batch.flush(pool).await?;
    Ok(json!({
        "accounts": accounts,
        "entries": entries,
        "rows": rows,
        "seconds": progress.seconds(),
    }))
}

/// `count` feedback rows: 70% CSAT on a report ticket (its customer, channel and assignee, a few days after it was
/// opened), 30% NPS over the 12 months before `now`; low scores with a complaint, some others with praise.
async fn write_feedback(
    pool: &Pool,
    rng: &mut StdRng,
    customers: &[String],
    staff: &Staff,
    tickets: &[TicketFacts],
    count: usize,
    now: i64,
) -> anyhow::Result<serde_json::Value> {
    let (mut rows, mut low_scores) = (0, 0usize);
    let mut batch = Batch::default();
    let mut progress = Progress::new("feedback", count);
    for index in 0..count {
        let csat = !tickets.is_empty() && rng.gen_bool(0.7);
        let (customer, score, ticket, channel, agent, created_at) = if csat {
            let number = rng.gen_range(0..tickets.len());
            let facts = &tickets[number];
            (
                facts.customer,
                weighted(rng, &[5, 7, 13, 35, 40]) as i64 + 1,
                Some(ticket_id(number)),
                Some(facts.channel.as_str()),
                facts.assignee.map(|member| staff.member(member)),
                (facts.created_at + rng.gen_range(HOUR_MS..3 * DAY_MS)).min(now - MINUTE_MS),
            )
        } else {
            (
                rng.gen_range(0..customers.len()),
                weighted(rng, &[2, 1, 2, 2, 3, 5, 7, 12, 18, 22, 26]) as i64,
                None,
                None,
                None,
                now - rng.gen_range(HOUR_MS..360 * DAY_MS),
            )
        };
        let low = if csat { score <= 2 } else { score <= 6 };
        low_scores += usize::from(low);
        let comment = if low {
            COMPLAINTS[rng.gen_range(0..COMPLAINTS.len())]
        } else if rng.gen_bool(0.3) {
            PRAISE[rng.gen_range(0..PRAISE.len())]
        } else {
            ""
        };
        batch.push(
            &FEEDBACK,
            vec![
                format!("bench-fb-{index:07}").into(),
                customers[customer].as_str().into(),
                if csat { "csat" } else { "nps" }.into(),
                score.into(),
                comment.into(),
                "staff".into(),
                ticket.as_deref().into(),
                channel.into(),
                agent.into(),
                staff.random_agent(rng).into(),
                created_at.into(),
                created_at.into(),
            ],
        );
        if batch.rows >= FLUSH_ROWS {
            rows += batch.flush(pool).await?;
        }
        progress.update(index + 1, rows + batch.rows);
    }
    rows += batch.flush(pool).await?;
    Ok(json!({
        "rows": rows,
        "low_scores": low_scores,
        "seconds": progress.seconds(),
    }))
}

/// Times the pool's candidate query alone over the whole table, the first return and `steady_runs` runs after it.
async fn time_pool_return(
    veil: &Veil,
    timeline: &Timeline,
    contacts: &Contacts,
    steady_runs: usize,
) -> anyhow::Result<serde_json::Value> {
    eprintln!(
        "pool return: judged at {} (cut-off {}), {} customers unattended",
        format_time(timeline.judge_at),
        format_time(timeline.cutoff),
        contacts.unattended
    );
    let started = Instant::now();
    let mut after: Option<String> = None;
    let (mut candidates, mut queries) = (0usize, 0usize);
    loop {
        let found = veil
            .store()
            .pool_return_candidates(timeline.cutoff, after.as_deref(), JOB_BATCH)
            .await?;
        queries += 1;
        candidates += found.len();
        let Some(last) = found.last() else {
            break;
        };
        after = Some(last.customer_id.clone());
        if (found.len() as i64) < JOB_BATCH {
            break;
        }
    }
    let scan_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "  candidate query alone: {candidates} found by {queries} queries in {scan_seconds:.2} s"
    );
    let started = Instant::now();
    let returned = veil.return_unattended(timeline.judge_at).await?;
    let first_seconds = started.elapsed().as_secs_f64();
    eprintln!("  first run: {returned} returned in {first_seconds:.2} s");
    if returned as usize != contacts.unattended {
        eprintln!(
            "  warning: {} customers were left unattended, {returned} returned",
            contacts.unattended
        );
    }
    let mut steady = Vec::with_capacity(steady_runs);
    let mut returned_again = 0;
    for _ in 0..steady_runs {
        let started = Instant::now();
        returned_again += veil.return_unattended(timeline.judge_at).await?;
        let elapsed = started.elapsed();
        eprintln!("  steady run: {:.2} s", elapsed.as_secs_f64());
        steady.push(elapsed);
    }
    if returned_again > 0 {
        eprintln!("  warning: the runs after the first returned {returned_again} more");
    }
    steady.sort();
    let steady_p50 = steady[(steady.len() - 1) / 2].as_secs_f64();
    let followed_up_by: serde_json::Map<String, serde_json::Value> = FOLLOW_UPS
        .iter()
        .zip(contacts.follow_ups)
        .map(|((_, name, _), count)| ((*name).to_owned(), json!(count)))
        .collect();
    Ok(json!({
        "return_days": veil.pool_rules().return_days,
        "cutoff": format_time(timeline.cutoff),
        "judged_at": format_time(timeline.judge_at),
        "unattended": contacts.unattended,
        "unattended_with_someone_elses_recent_contact": contacts.others_recent,
        "followed_up_by": followed_up_by,
        "candidate_query_alone": {
            "candidates": candidates,
            "queries": queries,
            "seconds": scan_seconds,
        },
        "first_run": {
            "returned": returned,
            "seconds": first_seconds,
        },
        "steady_runs": {
            "runs": steady.len(),
            "returned": returned_again,
            "p50_seconds": steady_p50,
            "min_seconds": steady[0].as_secs_f64(),
            "max_seconds": steady[steady.len() - 1].as_secs_f64(),
        },
        "serve_interval_seconds": SERVE_INTERVAL_SECS,
        "steady_p50_share_of_interval": steady_p50 / SERVE_INTERVAL_SECS,
    }))
}

/// Times the three reports as the admin and as the first salesperson: one untimed call, then `requests`.
/// `--reports-only`: the reports timed again on a kept database, as the admin and the first salesperson.
async fn reports_again(args: &Args) -> anyhow::Result<()> {
    let dir = args.keep_dir.as_ref().expect("clap requires --keep-dir");
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("veil.db").display()));
    let store = Store::connect(&DatabaseUrl::new(url)).await?;
    let veil = Veil::open(store, &MasterKeySource::File(dir.join("master.key"))).await?;
    let staff = Staff {
        admin: veil.actor_by_username("bench-admin").await?,
        salespeople: vec![veil.actor_by_username("bench-sales-001").await?],
        owner_ids: Vec::new(),
        owner_teams: Vec::new(),
        agent_ids: Vec::new(),
    };
    let reports = time_reports(&veil, &staff, args.requests).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "reports": reports }))?
    );
    Ok(())
}

async fn time_reports(
    veil: &Veil,
    staff: &Staff,
    requests: usize,
) -> anyhow::Result<serde_json::Value> {
    let query = SummaryQuery::default();
    let mut timings = serde_json::Map::new();
    let mut figures = serde_json::Map::new();
    for (caller, actor) in [("admin", &staff.admin), ("sales", &staff.salespeople[0])] {
        eprintln!("reports as {caller}: {requests} calls each");
        macro_rules! timed {
            ($call:expr) => {{
                let mut last = $call.await?;
                let mut samples = Vec::with_capacity(requests);
                for _ in 0..requests {
                    let started = Instant::now();
                    last = $call.await?;
                    samples.push(started.elapsed());
                }
                (summary(samples), last)
            }};
        }
        let (tickets_timing, tickets) = timed!(veil.ticket_report(actor));
        let (loyalty_timing, loyalty) = timed!(veil.loyalty_report(actor));
        let (feedback_timing, feedback) = timed!(veil.feedback_summary(actor, &query));
        timings.insert(
            caller.to_owned(),
            json!({
                "ticket_report": tickets_timing,
                "loyalty_report": loyalty_timing,
                "feedback_summary": feedback_timing,
            }),
        );
        let terms: Vec<String> = feedback
            .complaint_terms
            .iter()
            .take(5)
            .map(|term| format!("{} ({})", term.term, term.count))
            .collect();
        figures.insert(
            caller.to_owned(),
            json!({
                "tickets_open": tickets.open,
                "tickets_breached": tickets.breached,
                "tickets_at_risk": tickets.at_risk,
                "tickets_opened_in_the_12_weeks": tickets.weeks.iter().map(|week| week.tickets).sum::<i64>(),
                "loyalty_members": loyalty.members,
                "points_earned_in_the_12_months": loyalty.months.iter().map(|month| month.earned).sum::<i64>(),
                "redemption_reasons": loyalty.top_redemptions.len(),
                "csat_scores": feedback.overall.csat.count,
                "nps_scores": feedback.overall.nps.count,
                "complaint_texts_segmented": feedback.complaint_texts,
                "top_complaint_terms": terms,
            }),
        );
    }
    Ok(json!({
        "requests": requests,
        "timings": timings,
        "figures": figures,
    }))
}
