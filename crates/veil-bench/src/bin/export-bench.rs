//! Bulk unmasked export throughput (issue P6): an approved export of N customers × 3 fields (name, phone,
//! id_number) through `Veil::run_export` — audit entry + grant use, per-customer key unwrap, AES-256-GCM field
//! decryption, CSV, age encryption, signed manifest — on SQLite, beside decrypting the same values stored with
//! PostgreSQL `pgcrypto` (`decrypt()` and `pgp_sym_decrypt()`) when `--pgcrypto-url` is given.
//!
//! `cargo build --release -p veil-bench --bin export-bench && taskset -c 0 ./target/release/export-bench \
//!   --customers 100000 --pgcrypto-url postgres://postgres@127.0.0.1:5432/test`

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use veil_app::demo::demo_input;
use veil_app::demo_data::DemoGenerator;
use veil_app::keys::{create_master_key_file, MasterKeySource};
use veil_app::mfa::TotpSecret;
use veil_app::users::{Password, Role};
use veil_app::Veil;
use veil_store::sqlx;
use veil_store::{DatabaseUrl, Pool, Store};

const PASSWORD: &str = "export bench password 2026";
const SEED: u64 = 20_261_129;

#[derive(Parser)]
struct Args {
    /// Customers to export.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// Runs of the export (the best is reported, with the median and the worst).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// PostgreSQL URL for the pgcrypto side (skipped without it).
    #[arg(long)]
    pgcrypto_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// User + system CPU time of this process (every thread) from `/proc/self/stat`, in seconds (Linux reports it in
/// units of USER_HZ = 100 per second). On a shared machine it shows how much of the wall time was ours.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at the state, field 3; utime and stime
    // are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

fn totp_now(secret: &TotpSecret, offset: u64) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    Ok(secret.code_at(now + offset * 30)?)
}

async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("master.key");
    create_master_key_file(&key)?;
    let url = format!("sqlite://{}", dir.path().join("veil.db").display());
    let store = Store::connect(&DatabaseUrl::new(url)).await?;
    let veil = Veil::initialise(store, &MasterKeySource::File(key)).await?;
    veil.add_user("exporter", Role::Dpo, None, &Password::new(PASSWORD.into()))
        .await?;
    veil.add_user("loader", Role::Admin, None, &Password::new(PASSWORD.into()))
        .await?;
    let loader = veil.actor_by_username("loader").await?;
    let exporter = veil.actor_by_username("exporter").await?;

    eprintln!("creating {} customers", args.customers);
    let mut generator = DemoGenerator::new(SEED);
    let mut plaintexts = Vec::with_capacity(args.customers);
    let mut ids = Vec::with_capacity(args.customers);
    while ids.len() < args.customers {
        let size = 1000.min(args.customers - ids.len());
        let batch: Vec<_> = (0..size).map(|_| generator.next_customer()).collect();
        let inputs: Vec<_> = batch.iter().map(|c| demo_input(c, None)).collect();
        for customer in &batch {
            plaintexts.push((
                customer.name.clone(),
                customer.phone.clone(),
                customer.id_number.clone(),
            ));
        }
        ids.extend(
            veil.create_customers_batch(&loader, &inputs)
                .await?
                .into_iter()
                .map(|id| id.to_string()),
        );
    }

    // The exporter enrols a second factor and steps up, as the export requires.
    let enrollment = veil.enroll_mfa(&exporter).await?;
    let secret = TotpSecret::from_base32(&enrollment.secret).context("TOTP secret")?;
    veil.confirm_mfa(&exporter, &totp_now(&secret, 0)?).await?;
    // Signing in with the second factor makes the session freshly verified (the step-up the export needs).
    let password = Password::new(PASSWORD.into());
    let code = totp_now(&secret, 1)?;
    let session = veil
        .login_with(veil_app::users::LoginAttempt {
            username: "exporter",
            password: &password,
            second_factor: Some(&code),
            client: None,
        })
        .await
        .map_err(|error| anyhow::anyhow!("sign-in: {error}"))?;
    anyhow::ensure!(
        session.mfa_verified,
        "the sign-in did not verify the second factor"
    );
    let token = session.token.expose().to_owned();

    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let customer_json = serde_json::to_string(&ids)?;
    let fields = r#"["name","phone","id_number"]"#;
    let mut timings = Vec::new();
    for run in 0..args.runs {
        // An approved, active export request and its grant, as the DPO's approval would leave them.
        let request_id = format!("bench-request-{run}");
        let Pool::Sqlite(pool) = veil.store().pool() else {
            unreachable!("the export side runs on SQLite")
        };
        let now = veil_app::now_ms();
        sqlx::query(
            "INSERT INTO unmask_request (id, requester_id, requester_role, requester_team, purpose, purpose_detail, \
             legal_basis, jurisdiction, consent_ids, customer_ids, fields, mode, duration_minutes, recipient, \
             recipient_name, policy_change, max_reveals, risk, checks, approvals_needed, state, created_at, \
             updated_at) VALUES ($1, $2, 'dpo', NULL, 'audit', 'export benchmark', 'legal_obligation', 'CN', '[]', \
             $3, $4, 'export', 60, $5, 'bench', NULL, NULL, 'high', '[]', 2, 'active', $6, $6)",
        )
        .bind(&request_id)
        .bind(exporter.user_id.to_string())
        .bind(&customer_json)
        .bind(fields)
        .bind(&recipient)
        .bind(now)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO unmask_grant (id, request_id, user_id, customer_ids, fields, mode, purpose, created_at, \
             expires_at, max_reveals, reveals_used) VALUES ($1, $2, $3, $4, $5, 'export', 'audit', $6, $7, 1, 0)",
        )
        .bind(format!("bench-grant-{run}"))
        .bind(&request_id)
        .bind(exporter.user_id.to_string())
        .bind(&customer_json)
        .bind(fields)
        .bind(now)
        .bind(now + 3_600_000)
        .execute(pool)
        .await?;
        let cpu_before = process_cpu_seconds();
        let started = Instant::now();
        let delivery = veil
            .run_export(&exporter, Some(&token), &request_id)
            .await?;
        let elapsed = started.elapsed();
        let cpu = process_cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        anyhow::ensure!(delivery.manifest.manifest.rows as usize == args.customers);
        timings.push(elapsed.as_secs_f64());
        eprintln!(
            "  export run {}: {:.3} s, {:.0} customers/s; CPU {} (all threads); file {} bytes",
            run + 1,
            elapsed.as_secs_f64(),
            args.customers as f64 / elapsed.as_secs_f64(),
            cpu.map_or("unknown".to_owned(), |cpu| format!(
                "{cpu:.2} s, {:.0} customers per CPU-second",
                args.customers as f64 / cpu
            )),
            delivery.file_base64.len() * 3 / 4
        );
    }
    let mut sorted = timings.clone();
    sorted.sort_by(f64::total_cmp);
    let best = sorted[0];
    let median = sorted[sorted.len() / 2];
    let worst = sorted[sorted.len() - 1];
    let veil_rate = args.customers as f64 / best;
    println!(
        "veil export (3 fields, audit + grant + unwrap + decrypt + CSV + age + signed manifest): {:.3} s, {:.0} customers/s \
         (best of {}; median {:.0}/s, worst {:.0}/s)",
        best,
        veil_rate,
        sorted.len(),
        args.customers as f64 / median,
        args.customers as f64 / worst
    );

    if let Some(url) = &args.pgcrypto_url {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .context("connect to PostgreSQL for the pgcrypto side")?;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pgcrypto")
            .execute(&pool)
            .await?;
        sqlx::query("DROP TABLE IF EXISTS veil_export_bench")
            .execute(&pool)
            .await?;
        sqlx::query(
            "CREATE TABLE veil_export_bench (id BIGINT PRIMARY KEY, name_raw BYTEA, phone_raw BYTEA, id_raw BYTEA, \
             name_pgp BYTEA, phone_pgp BYTEA, id_pgp BYTEA)",
        )
        .execute(&pool)
        .await?;
        eprintln!("loading the same values into PostgreSQL with encrypt() and pgp_sym_encrypt()");
        for (chunk_index, chunk) in plaintexts.chunks(1000).enumerate() {
            let mut numbers = Vec::new();
            let (mut names, mut phones, mut id_numbers) = (Vec::new(), Vec::new(), Vec::new());
            for (offset, (name, phone, id_number)) in chunk.iter().enumerate() {
                numbers.push((chunk_index * 1000 + offset) as i64);
                names.push(name.clone());
                phones.push(phone.clone());
                id_numbers.push(id_number.clone());
            }
            sqlx::query(
                "INSERT INTO veil_export_bench SELECT n, \
                 encrypt(convert_to(a, 'UTF8'), 'bench-key-32-bytes-long-xxxxxxxx', 'aes'), \
                 encrypt(convert_to(b, 'UTF8'), 'bench-key-32-bytes-long-xxxxxxxx', 'aes'), \
                 encrypt(convert_to(c, 'UTF8'), 'bench-key-32-bytes-long-xxxxxxxx', 'aes'), \
                 pgp_sym_encrypt(a, 'bench-pass', 'cipher-algo=aes256'), \
                 pgp_sym_encrypt(b, 'bench-pass', 'cipher-algo=aes256'), \
                 pgp_sym_encrypt(c, 'bench-pass', 'cipher-algo=aes256') \
                 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS t(n, a, b, c)",
            )
            .bind(&numbers)
            .bind(&names)
            .bind(&phones)
            .bind(&id_numbers)
            .execute(&pool)
            .await?;
        }
        let started = Instant::now();
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, convert_from(decrypt(name_raw, 'bench-key-32-bytes-long-xxxxxxxx', 'aes'), 'UTF8'), \
             convert_from(decrypt(phone_raw, 'bench-key-32-bytes-long-xxxxxxxx', 'aes'), 'UTF8'), \
             convert_from(decrypt(id_raw, 'bench-key-32-bytes-long-xxxxxxxx', 'aes'), 'UTF8') \
             FROM veil_export_bench",
        )
        .fetch_all(&pool)
        .await?;
        let raw = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            rows.len() == args.customers && rows[0].2 == plaintexts[rows[0].0 as usize].1
        );
        let started = Instant::now();
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, pgp_sym_decrypt(name_pgp, 'bench-pass'), pgp_sym_decrypt(phone_pgp, 'bench-pass'), \
             pgp_sym_decrypt(id_pgp, 'bench-pass') FROM veil_export_bench",
        )
        .fetch_all(&pool)
        .await?;
        let pgp = started.elapsed().as_secs_f64();
        anyhow::ensure!(rows.len() == args.customers);
        sqlx::query("DROP TABLE veil_export_bench")
            .execute(&pool)
            .await?;
        let n = args.customers as f64;
        println!(
            "pgcrypto decrypt() (AES, 3 fields, fetched): {raw:.3} s, {:.0} customers/s — Veil is {:.2}x",
            n / raw,
            veil_rate / (n / raw)
        );
        println!(
            "pgcrypto pgp_sym_decrypt() (3 fields, fetched): {pgp:.3} s, {:.0} customers/s — Veil is {:.2}x",
            n / pgp,
            veil_rate / (n / pgp)
        );
    }
    Ok(())
}
