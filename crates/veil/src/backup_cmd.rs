//! `veil backup …`: create, list, verify and restore encrypted backups (see `veil_app::backup`).
//!
//! `create`, `list` and `verify` open the configured database with the master key; `restore` needs only the
//! archive, its decryption (identity file or passphrase) and the target URL. Exit 1 when verification fails.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use veil_app::audit::{self, EventExt, Outcome};
use veil_app::backup::{self, BackupView, RestoreOptions, VerifyReport};
use veil_app::{DatabaseUrl, Veil};
use veil_store::Store;

use crate::config::Config;
use crate::Bar;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Snapshot the whole database (consistent while the server runs) into an encrypted archive.
    Create {
        /// Destination: a directory [default: VEIL_BACKUP_DIR, or <data dir>/backups], `s3` (VEIL_BACKUP_S3_URL)
        /// or `s3://bucket/prefix`. Object storage gets a multipart upload of the archive built locally.
        #[arg(long)]
        to: Option<String>,
        /// With an s3 destination: keep the local copy after the upload (deleted by default).
        #[arg(long)]
        keep_local: bool,
    },
    /// Catalogued backups: size, location, age, verification state.
    List,
    /// Decrypt, check every checksum, restore into a scratch database, compare counts and decrypt a sample of
    /// customers. Needs VEIL_BACKUP_IDENTITY or VEIL_BACKUP_PASSPHRASE. Exit 1 if any check fails.
    Verify {
        /// A backup id from `veil backup list`, or an archive file.
        backup: String,
    },
    /// Load a backup into an empty SQLite or PostgreSQL database (also the way to move to PostgreSQL). Erasures
    /// recorded in the configured (live) database since the backup are replayed when it is reachable.
    Restore {
        /// A backup id from `veil backup list`, or an archive file.
        backup: String,
        /// The target database: sqlite://PATH or postgres://….
        #[arg(long)]
        db: String,
        /// Drop everything in a non-empty target first.
        #[arg(long)]
        force: bool,
    },
}

/// Hidden test hook: `VEIL_TEST_PAUSE_AT=backup.chunk_sent` (`backup.table_sent` for a logical backup, or
/// `backup.part_uploaded`) makes `backup create`
/// print `paused at <point>` on standard output the first time it gets there, then wait until it is killed — so
/// that tests can SIGKILL a real process at a known point instead of guessing with timers.
pub const PAUSE_AT: &str = "VEIL_TEST_PAUSE_AT";

/// The progress bar of `backup create`, with the [`PAUSE_AT`] hook.
struct CreateProgress {
    bar: Bar,
    pause_at: Option<String>,
}

impl veil_app::keys::Progress for CreateProgress {
    fn update(&self, done: u64, total: u64) {
        veil_app::keys::Progress::update(&self.bar, done, total);
    }

    fn reached(&self, point: &'static str) {
        if self.pause_at.as_deref() == Some(point) {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "paused at {point}");
            let _ = stdout.flush();
            loop {
                std::thread::park();
            }
        }
    }
}

fn human_size(bytes: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn human_age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn verification_state(view: &BackupView) -> String {
    match &view.verification {
        None => "unverified".to_owned(),
        Some(verification) if verification.ok => format!("verified {}", verification.at),
        Some(verification) => format!("FAILED {}", verification.at),
    }
}

fn print_verify(report: &VerifyReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        for check in &report.checks {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            println!("{mark} {:<22} {}", check.name, check.detail);
        }
        match &report.reason {
            None => println!(
                "ok: backup {} verified",
                report.backup_id.as_deref().unwrap_or(&report.location)
            ),
            Some(reason) => eprintln!("verification failed: {reason}"),
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs a subcommand that works on the opened database.
pub async fn run(veil: &Veil, command: BackupCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        BackupCommand::Create { to, keep_local } => {
            let bar = CreateProgress {
                bar: Bar::new("backup"),
                pause_at: std::env::var(PAUSE_AT).ok(),
            };
            let view = match to.as_deref() {
                Some("s3") => {
                    veil.create_backup_in_object_storage(None, None, keep_local, &bar)
                        .await?
                }
                Some(url) if backup::object_storage::is_object_location(url) => {
                    veil.create_backup_in_object_storage(None, Some(url), keep_local, &bar)
                        .await?
                }
                directory => {
                    if keep_local {
                        bail!("--keep-local applies to an s3 destination only");
                    }
                    let directory = directory.map(std::path::Path::new);
                    veil.create_backup(None, directory, &bar).await?
                }
            };
            bar.bar.0.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&view)?);
            } else {
                println!(
                    "backup {} written: {} ({}, {} tables, {} rows)",
                    view.id,
                    view.location,
                    human_size(view.size_bytes),
                    view.tables,
                    view.rows
                );
                println!("verify it with: veil backup verify {}", view.id);
            }
        }
        BackupCommand::List => {
            let views = veil.list_backups(None).await?;
            if json {
                println!("{}", serde_json::to_string(&views)?);
            } else if views.is_empty() {
                println!("no backups yet: run `veil backup create`");
            } else {
                println!(
                    "{:<36}  {:>10}  {:>5}  {:<32}  location",
                    "id", "size", "age", "verification"
                );
                for view in &views {
                    println!(
                        "{:<36}  {:>10}  {:>5}  {:<32}  {}",
                        view.id,
                        human_size(view.size_bytes),
                        human_age(view.age_seconds),
                        verification_state(view),
                        view.location
                    );
                }
            }
        }
        BackupCommand::Verify { backup } => {
            let bar = Bar::new("verify");
            let report = veil.verify_backup(None, &backup, &bar).await?;
            bar.0.finish_and_clear();
            return print_verify(&report, json);
        }
        BackupCommand::Restore { .. } => unreachable!("restore does not open the live database"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `veil backup restore`: works without the master key. The configured database, when reachable, resolves a
/// backup id and supplies the erasures to replay.
pub async fn restore(
    config: &Config,
    command: BackupCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let BackupCommand::Restore { backup, db, force } = command else {
        unreachable!("only restore")
    };
    let decryption = config.backup.decryption.clone().context(
        "set VEIL_BACKUP_IDENTITY (an age identity file) or VEIL_BACKUP_PASSPHRASE to decrypt the backup",
    )?;
    let target_url = DatabaseUrl::new(db);
    if target_url.backend().is_none() {
        bail!("unsupported target URL {target_url}: use sqlite://PATH or postgres://USER@HOST/DB");
    }
    let live = match Store::connect(&config.database_url).await {
        Ok(store) => Some(store),
        Err(error) => {
            eprintln!(
                "warning: the configured database {} is not reachable ({error}); erasures recorded there since the \
                 backup cannot be replayed",
                config.database_url
            );
            None
        }
    };
    let mut location = backup.clone();
    let mut erasures = Vec::new();
    if let Some(live) = &live {
        if !std::path::Path::new(&backup).is_file() {
            if let Ok(Some(row)) = live.backup(&backup).await {
                location = row.location;
            }
        }
        match live.erasures().await {
            Ok(list) => erasures = list,
            Err(error) => eprintln!(
                "warning: cannot read the erasure list of {} ({error}); erasures since the backup are not replayed",
                config.database_url
            ),
        }
    }
    // An archive in object storage is downloaded to a temporary file first (removed when done).
    let archive = backup::LocalArchive::fetch(&location, &config.backup)
        .await
        .with_context(|| format!("cannot fetch the backup {location}"))?;
    let path = archive.path().to_owned();
    if !path.is_file() {
        bail!(
            "no backup {backup}: not an id in the catalogue of {}, nor a file",
            config.database_url
        );
    }
    if let Some(live) = live {
        live.close().await;
    }
    let bar = Bar::new("restore");
    let options = RestoreOptions {
        force,
        erasures,
        ..RestoreOptions::default()
    };
    // A page image restored into an SQLite file replaces the file, so the target is opened by the restore.
    let restored = backup::restore_to(&path, &decryption, &target_url, &options, &bar).await;
    bar.0.finish_and_clear();
    let (report, target) = restored?;
    let entry = audit::event(None, "backup.restore", Outcome::Ok).detail(serde_json::json!({
        "backup_id": report.backup_id, "location": location, "tables": report.tables,
        "rows": report.rows, "erasures_replayed": report.erasures_replayed, "forced": force}));
    target
        .append_audit(&[entry])
        .await
        .context("the restore is complete, but its audit entry could not be written")?;
    target.close().await;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "restored backup {} ({} database, schema {}) into {target_url}: {} tables, {} rows; {} customers erased \
             again from the erasure lists",
            report.backup_id,
            report.source_backend,
            report.schema_version,
            report.tables,
            report.rows,
            report.erasures_replayed
        );
        println!("open it with the same master key (VEIL_MASTER_KEY_FILE or VEIL_MASTER_PASSPHRASE) as the source");
    }
    Ok(ExitCode::SUCCESS)
}
