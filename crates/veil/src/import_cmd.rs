//! `veil import customers FILE` (CSV or XLSX, with a progress bar, resumable) and `veil export customers`
//! (masked CSV or XLSX). See `veil_app::imports`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use veil_app::imports::{self, FileFormat, ImportOptions, ImportReport, ImportSource};
use veil_app::Veil;

use crate::backup_cmd::PAUSE_AT;

/// The import's progress bar (share of the file read, rows so far), with the hidden [`PAUSE_AT`] hook
/// (`import.batch_committed`) that lets tests kill a real import right after a committed batch.
struct ImportBar {
    bar: ProgressBar,
    pause_at: Option<String>,
}

impl ImportBar {
    fn new(message: &'static str) -> ImportBar {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {percent}% ({elapsed}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(message);
        ImportBar {
            bar,
            pause_at: std::env::var(PAUSE_AT).ok(),
        }
    }
}

impl veil_app::keys::Progress for ImportBar {
    fn update(&self, done: u64, total: u64) {
        self.bar.set_length(total.max(1));
        self.bar.set_position(done.min(total));
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

/// `veil import customers`.
#[allow(clippy::too_many_arguments)]
pub async fn import_customers(
    veil: &Veil,
    file: &std::path::Path,
    map: Option<&str>,
    owner: Option<String>,
    industry: Option<String>,
    dry_run: bool,
    resume: bool,
    batch: usize,
    actor: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let format = FileFormat::from_path(file)
        .with_context(|| format!("{}: expected a .csv or .xlsx file", file.display()))?;
    let actor = veil.actor_by_username(actor).await?;
    let options = ImportOptions {
        format,
        map: match map {
            Some(text) => imports::parse_map(text)?,
            None => Vec::new(),
        },
        owner,
        dry_run,
        resume,
        batch,
        industry,
        ..ImportOptions::default()
    };
    let bar = ImportBar::new(if dry_run {
        "checking customers"
    } else {
        "importing customers"
    });
    let report = veil
        .import_customers(&actor, ImportSource::Path(file), &options, &bar)
        .await?;
    bar.bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &ImportReport) {
    println!("mapping:");
    for column in &report.mapping {
        println!(
            "  {:<3} {:<16} -> {:<10} ({}{}){}",
            column.letter,
            column.header.as_deref().unwrap_or("-"),
            column.target.as_deref().unwrap_or("ignored"),
            column.source,
            column
                .detected_kind
                .as_deref()
                .map(|kind| format!(", {}/{} cells valid {kind}", column.valid, column.sampled))
                .unwrap_or_default(),
            column
                .note
                .as_deref()
                .map(|note| format!(": {note}"))
                .unwrap_or_default()
        );
    }
    for issue in &report.issues {
        println!(
            "row {:<7} {:<9} {:<16} {:<10} {}{}",
            issue.row,
            issue.kind,
            issue.column.as_deref().unwrap_or("-"),
            issue.reason,
            issue.message,
            match (&issue.existing_customer_id, issue.duplicate_of_row) {
                (Some(id), _) => format!(" (customer {id})"),
                (None, Some(row)) => format!(" (row {row})"),
                _ => String::new(),
            }
        );
    }
    if report.issues_truncated {
        println!("(more issues than listed: --format json, or the job's stored issues)");
    }
    println!(
        "{}{} rows: {} {}, {} invalid, {} duplicates{}",
        if report.dry_run { "dry run: " } else { "" },
        report.rows,
        report.imported,
        if report.dry_run {
            "would be imported"
        } else {
            "imported"
        },
        report.invalid,
        report.duplicates,
        report
            .job_id
            .as_deref()
            .map(|id| format!(
                " (job {id}{})",
                if report.resumed { ", resumed" } else { "" }
            ))
            .unwrap_or_default()
    );
}

/// `veil export customers`.
pub async fn export_customers(
    veil: &Veil,
    format: &str,
    profile: &str,
    out: &std::path::Path,
    actor: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let format = match format {
        "csv" => FileFormat::Csv,
        "xlsx" => FileFormat::Xlsx,
        other => bail!("--format {other}: use csv or xlsx"),
    };
    match profile {
        "masked" => {}
        "unmasked" => bail!(
            "unmasked exports are governed: file an unmask request with mode \"export\" \
             (POST /api/v1/unmask-requests), have it approved, then run it with \
             POST /api/v1/unmask-requests/{{id}}/export — the file is encrypted to the request's recipient, \
             signed, and checked with `veil export verify`"
        ),
        "pseudonymised" => bail!(
            "pseudonymised exports are per partner: `veil partner export --partner P --recipient age1…`"
        ),
        other => bail!("--profile {other}: use masked, pseudonymised or unmasked"),
    }
    let actor = veil.actor_by_username(actor).await?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let file = options
        .open(out)
        .with_context(|| format!("cannot create {} (it must not exist)", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let bar = crate::Bar::new("exporting customers (masked)");
    let summary = veil
        .export_customers_masked(&actor, format, &mut writer, &bar)
        .await?;
    bar.0.finish_and_clear();
    std::io::Write::flush(&mut writer)?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "{} customers exported ({} profile) to {}",
            summary.rows,
            summary.profile,
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
