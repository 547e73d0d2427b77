//! `import-bench`: times `Veil::import_customers` on a generated CSV of N synthetic customers (the demo
//! generator's checksum-valid values), with bad rows (a wrong ID check digit every 97th row, a short mobile every
//! 89th) and duplicates (every 50th row repeats an earlier row's mobile): detection, validation, encryption,
//! masking, blind indexes, de-duplication and the batched, audited inserts. Prints one JSON object, with the load
//! average before and after (other work on the machine moves the figure).

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use veil_app::demo_data::DemoGenerator;
use veil_app::imports::{FileFormat, ImportOptions, ImportSource};
use veil_app::keys::{create_master_key_file, MasterKeySource};
use veil_app::users::{Password, Role};
use veil_app::Veil;
use veil_store::{DatabaseUrl, Store};

/// mimalloc instead of glibc's malloc: see the workspace manifest.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Database URL; default a fresh SQLite file in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Rows in the generated file.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Rows per transaction.
    #[arg(long, default_value_t = veil_app::imports::DEFAULT_BATCH)]
    batch: usize,
    /// Page cache of the import's SQLite connection, MiB.
    #[arg(long, default_value_t = veil_app::imports::DEFAULT_IMPORT_CACHE_MIB)]
    cache_mib: u32,
    /// WAL volume between the import connection's checkpoints, MiB.
    #[arg(long, default_value_t = veil_app::imports::DEFAULT_IMPORT_CHECKPOINT_MIB)]
    checkpoint_mib: u32,
    /// Run on a current-thread runtime instead of the multi-threaded one `veil` uses.
    #[arg(long)]
    current_thread: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runtime = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        // As `veil import` runs it.
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("master.key");
    create_master_key_file(&key)?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("veil.db").display()));
    let store = Store::connect(&DatabaseUrl::new(url)).await?;
    let backend = store.backend();
    let veil = Veil::initialise(store, &MasterKeySource::File(key))
        .await
        .context("open the benchmark database")?;
    veil.add_user(
        "import-admin",
        Role::Admin,
        None,
        &Password::new("benchmark password 1".into()),
    )
    .await?;
    let admin = veil.actor_by_username("import-admin").await?;
    let path = dir.path().join("customers.csv");
    let started = Instant::now();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(file, "姓名,手机号,身份证号,邮箱,地址,性别,来源")?;
    let mut generator = DemoGenerator::new(42);
    let mut phones: Vec<String> = Vec::new();
    for index in 0..args.rows {
        let customer = generator.next_customer();
        let mut phone = customer.phone.clone();
        let mut id_number = customer.id_number.clone();
        if index % 50 == 49 {
            phone = phones[index / 2 % phones.len()].clone();
        } else if index % 89 == 88 {
            phone.truncate(10);
        }
        if index % 97 == 96 {
            let last = if id_number.ends_with('0') { '1' } else { '0' };
            id_number.pop();
            id_number.push(last);
        }
        phones.push(customer.phone.clone());
        writeln!(
            file,
            "{},{},{},{},\"{}\",{},{}",
            customer.name,
            phone,
            id_number,
            customer.email.as_deref().unwrap_or(""),
            customer.address,
            if customer.gender.as_str() == "female" {
                "女"
            } else {
                "男"
            },
            customer.source
        )?;
    }
    file.flush()?;
    drop(file);
    let bytes = std::fs::metadata(&path)?.len();
    eprintln!(
        "generated {} rows ({bytes} bytes) in {:.1} s",
        args.rows,
        started.elapsed().as_secs_f64()
    );
    let options = ImportOptions {
        format: FileFormat::Csv,
        batch: args.batch,
        cache_mib: args.cache_mib,
        checkpoint_mib: args.checkpoint_mib,
        ..ImportOptions::default()
    };
    let load_before = load_average();
    let started = Instant::now();
    let report = veil
        .import_customers(&admin, ImportSource::Path(&path), &options, &())
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let rate = args.rows as f64 / seconds;
    eprintln!("imported: {rate:.0} rows/s");
    let result = serde_json::json!({
        "backend": backend.as_str(),
        "rows": report.rows,
        "imported": report.imported,
        "invalid": report.invalid,
        "duplicates": report.duplicates,
        "batch": args.batch,
        "cache_mib": args.cache_mib,
        "checkpoint_mib": args.checkpoint_mib,
        "runtime": if args.current_thread { "current_thread" } else { "multi_thread" },
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "seconds": seconds,
        "rows_per_second": rate.round(),
        "mapping": report.mapping.iter().map(|column| column.target.clone()).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

/// The 1-, 5- and 15-minute load averages (Linux), to tell an idle machine's figure from a busy one's.
fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg").ok().map(|text| {
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    })
}
