//! Audit trail throughput on this machine: batched appends to SQLite (or PostgreSQL), chain verification read
//! back from the database, verification of entries already in memory, and the raw SHA-256 rate on buffers of the
//! same size (the bound verification is measured against).
//!
//! `cargo run --release -p veil-bench --bin audit-bench -- --entries 1000000 --batch 1000`

use std::time::Instant;

use clap::Parser;
use sha2::{Digest, Sha256};
use veil_app::audit::ChainVerifier;
use veil_store::audit::canonical_bytes;
use veil_store::{AuditEvent, DatabaseUrl, Store};

#[derive(Parser)]
struct Args {
    /// Entries to append.
    #[arg(long, default_value_t = 1_000_000)]
    entries: usize,
    /// Entries per transaction.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Database URL (default: a new SQLite file in a temporary directory).
    #[arg(long)]
    database_url: Option<String>,
}

fn event(index: usize) -> AuditEvent {
    AuditEvent {
        at: 1_795_000_000_000 + index as i64,
        actor_id: Some("01a22745-79ee-75f0-9cba-b62dfcefb147".to_owned()),
        actor_name: Some(format!("sales{}", index % 50)),
        actor_role: Some("sales".to_owned()),
        source_ip: Some("10.0.3.17".to_owned()),
        action: "customer.read".to_owned(),
        outcome: "ok".to_owned(),
        customer_ids: vec![format!("01a22745-850d-73a5-a800-{:012x}", index)],
        fields: vec![
            "name".to_owned(),
            "phone".to_owned(),
            "id_number".to_owned(),
        ],
        grant_id: None,
        purpose: None,
        detail: "{}".to_owned(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("audit.db").display()));
    let store = Store::connect(&DatabaseUrl::new(url)).await?;
    store.migrate().await?;
    let entry_size = canonical_bytes(1, &event(0)).len() + 13 + 32;
    println!(
        "backend {}, {} entries, batches of {}, ~{entry_size} bytes hashed per entry",
        store.backend().as_str(),
        args.entries,
        args.batch
    );

    let started = Instant::now();
    let mut written = 0;
    while written < args.entries {
        let count = args.batch.min(args.entries - written);
        let batch: Vec<AuditEvent> = (written..written + count).map(event).collect();
        store.append_audit(&batch).await?;
        written += count;
    }
    let append_secs = started.elapsed().as_secs_f64();
    println!(
        "append:                {:>10.0} entries/s ({append_secs:.2} s)",
        written as f64 / append_secs
    );

    // Verification streaming the rows back from the database (what `veil audit verify` does).
    let started = Instant::now();
    let verifier = store
        .scan_audit(
            0,
            written as i64,
            ChainVerifier::from_genesis(),
            |verifier, entry| {
                verifier.push(entry);
                !verifier.failed()
            },
        )
        .await?;
    let report = verifier.finish(&[], None);
    anyhow::ensure!(
        report.ok && report.entries_checked as usize == written,
        "chain did not verify: {report:?}"
    );
    let db_secs = started.elapsed().as_secs_f64();
    println!(
        "verify from database:  {:>10.0} entries/s ({db_secs:.2} s)",
        written as f64 / db_secs
    );

    // The async driver's paged read alone, for comparison (the path PostgreSQL takes).
    let started = Instant::now();
    let mut entries = Vec::with_capacity(written);
    let mut after = 0;
    loop {
        let page = store.audit_entries_after(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        entries.extend(page);
    }
    let paged_secs = started.elapsed().as_secs_f64();
    println!(
        "read via sqlx, paged:  {:>10.0} entries/s ({paged_secs:.2} s)",
        written as f64 / paged_secs
    );

    // Verification of entries in memory: encoding + SHA-256 + comparisons only.
    let started = Instant::now();
    let mut verifier = ChainVerifier::from_genesis();
    for entry in &entries {
        verifier.push(entry);
    }
    anyhow::ensure!(verifier.finish(&[], None).ok);
    let memory_secs = started.elapsed().as_secs_f64();
    let memory_rate = written as f64 / memory_secs;
    println!("verify in memory:      {memory_rate:>10.0} entries/s ({memory_secs:.2} s)");

    // The bound: SHA-256 of one entry-sized buffer per entry.
    let buffer = vec![0x5a_u8; entry_size];
    let started = Instant::now();
    let mut digest = [0u8; 32];
    for _ in 0..written {
        let mut hasher = Sha256::new();
        hasher.update(buffer.as_slice());
        hasher.update(digest);
        digest = hasher.finalize().into();
    }
    let sha_secs = started.elapsed().as_secs_f64();
    let sha_rate = written as f64 / sha_secs;
    println!(
        "sha-256 ({entry_size} B) alone:  {sha_rate:>10.0} hashes/s ({:.0} MB/s)",
        sha_rate * entry_size as f64 / 1e6
    );
    println!(
        "verify in memory / sha-256 bound: {:.2}",
        memory_rate / sha_rate
    );
    println!("(compare `openssl speed -evp sha256 -bytes {entry_size} -seconds 3`)");
    Ok(())
}
