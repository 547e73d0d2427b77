//! `veil audit …` and `veil subject …`: verify the chain (from the database or an exported file), export a range,
//! sign a checkpoint, print the public key, list entries, and the data-subject report.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use veil_app::audit::{self, AuditQuery, ExportFormat, VerifyReport};
use veil_app::Veil;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain: every entry's link and hash, every signed checkpoint, the head. With --file, check
    /// an exported JSONL file offline instead (give the server's key with --public-key). Exit 1 if broken.
    Verify {
        /// An exported JSONL file to verify instead of the database.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The Ed25519 public key (hex, from `veil audit public-key`) that must have signed the checkpoints.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Export entries with FROM <= time < TO, oldest first: --format jsonl (default; verifiable offline, with
    /// the checkpoints in range) or --format csv.
    Export {
        /// From (YYYY-MM-DD or RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// To (YYYY-MM-DD or RFC 3339), exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Sign the current head now (the server also does so periodically).
    Checkpoint,
    /// Show or change how long entries are kept (ordinary at least 365 days; approvals, risk assessments and
    /// consents at least 1,095).
    Retention {
        /// Days ordinary entries are kept.
        #[arg(long)]
        days: Option<i64>,
        /// Days governance entries (approvals, risk assessments, consents, grants) are kept.
        #[arg(long)]
        governance_days: Option<i64>,
    },
    /// Archive the entries past their retention to FILE (JSONL, verifiable offline) and delete them from the
    /// database, leaving a signed anchor the rest of the chain verifies from.
    Prune {
        /// Where to write the archive (must not exist).
        #[arg(long)]
        archive: Option<std::path::PathBuf>,
        /// Only say how many entries would be pruned.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the Ed25519 public key that signs checkpoints (hex).
    PublicKey,
    /// List entries, newest first.
    List {
        /// Only this actor (user id).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, or a prefix ending in '.' (e.g. customer.).
        #[arg(long)]
        action: Option<String>,
        /// Only entries concerning this customer id.
        #[arg(long)]
        customer: Option<String>,
        /// From (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// To (YYYY-MM-DD or RFC 3339), exclusive.
        #[arg(long)]
        to: Option<String>,
        /// How many (at most 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum SubjectCommand {
    /// Every recorded access to, reveal, export and change of one customer's data: who, when, why, under which
    /// grant (PIPL Art. 45, GDPR Art. 15).
    Report {
        /// The customer id.
        customer_id: String,
    },
}

/// A file whose `flush` also syncs it to disk.
struct SyncingFile(std::fs::File);

impl Write for SyncingFile {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.0.write(buffer)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.0.sync_all()
    }
}

fn print_report(report: &VerifyReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else if report.ok {
        println!(
            "ok: {} entries ({}..{}), {} signed checkpoints verified{}",
            report.entries_checked,
            report.first_seq.unwrap_or(0),
            report.last_seq.unwrap_or(0),
            report.checkpoints_checked,
            report
                .last_checkpoint_seq
                .map(|seq| format!(", newest covers entry {seq}"))
                .unwrap_or_default()
        );
    } else {
        println!(
            "BROKEN at entry {}: {}",
            report.first_bad_seq.unwrap_or(0),
            report.problem.as_deref().unwrap_or("unknown problem")
        );
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `veil audit verify --file` needs no database or key: it runs before configuration is opened.
pub fn verify_file(
    file: &std::path::Path,
    public_key: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let key = public_key
        .map(audit::parse_public_key)
        .transpose()
        .map_err(|error| anyhow::anyhow!("--public-key: {error}"))?;
    if key.is_none() {
        eprintln!(
            "warning: no --public-key given: checkpoints are checked against the key they name, which proves \
             integrity but not that this server signed them"
        );
    }
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let report =
        audit::verify_export(reader, key.as_ref()).map_err(|error| anyhow::anyhow!(error))?;
    print_report(&report, json)
}

pub async fn run(
    veil: &Veil,
    command: AuditCommand,
    json: bool,
    csv: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { file: Some(_), .. } => unreachable!("handled before configuration"),
        AuditCommand::Verify {
            file: None,
            public_key,
        } => {
            let report = match public_key {
                Some(text) => {
                    let key = audit::parse_public_key(&text)
                        .map_err(|error| anyhow::anyhow!("--public-key: {error}"))?;
                    veil.verify_audit_chain_with(Some(&key)).await?
                }
                None => veil.verify_audit_chain().await?,
            };
            veil.record(&[audit::EventExt::detail(
                audit::event(None, "audit.verify", audit::Outcome::Ok),
                serde_json::json!({"intact": report.ok, "entries": report.entries_checked,
                                   "first_bad_seq": report.first_bad_seq, "via": "cli"}),
            )])
            .await?;
            print_report(&report, json)
        }
        AuditCommand::Export { from, to, output } => {
            let from_ms = from
                .as_deref()
                .map(|text| audit::parse_time("from", text))
                .transpose()?;
            let to_ms = to
                .as_deref()
                .map(|text| audit::parse_time("to", text))
                .transpose()?;
            let format = if csv {
                ExportFormat::Csv
            } else {
                ExportFormat::Jsonl
            };
            let written = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    let written = veil
                        .export_audit(from_ms, to_ms, format, &mut writer)
                        .await?;
                    writer.flush()?;
                    written
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut writer = std::io::BufWriter::new(stdout.lock());
                    veil.export_audit(from_ms, to_ms, format, &mut writer)
                        .await?
                }
            };
            veil.record(&[audit::EventExt::detail(
                audit::event(None, "audit.export", audit::Outcome::Ok),
                serde_json::json!({"from": from, "to": to, "entries": written,
                                   "format": if csv { "csv" } else { "jsonl" }}),
            )])
            .await?;
            if let Some(path) = output {
                eprintln!("exported {written} entries to {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint => {
            let checkpoint = veil.audit_checkpoint().await?;
            if json {
                println!("{}", serde_json::json!({ "checkpoint": checkpoint }));
            } else {
                match checkpoint {
                    Some(view) => println!(
                        "signed checkpoint at entry {} ({})",
                        view.seq, view.head_hash
                    ),
                    None => println!("the head is already checkpointed"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Retention {
            days,
            governance_days,
        } => {
            let retention = if days.is_some() || governance_days.is_some() {
                veil.set_audit_retention(days, governance_days).await?
            } else {
                veil.audit_retention().await?
            };
            if json {
                println!("{}", serde_json::to_string(&retention)?);
            } else {
                println!(
                    "audit entries kept {} days; approvals, risk assessments, consents and grants {} days",
                    retention.days, retention.governance_days
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prune { archive, dry_run } => {
            let report = if dry_run {
                veil.prune_audit(&mut std::io::sink(), true).await?
            } else {
                let Some(path) = archive else {
                    anyhow::bail!("--archive FILE is required: pruned entries are archived before they are deleted");
                };
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .with_context(|| {
                        format!(
                            "cannot create the archive {} (it must not exist)",
                            path.display()
                        )
                    })?;
                // Flushing syncs the file to disk, and the entries are deleted only after that flush.
                let mut writer = std::io::BufWriter::new(SyncingFile(file));
                let report = veil.prune_audit(&mut writer, false).await?;
                drop(writer);
                if report.entries == 0 {
                    let _ = std::fs::remove_file(&path);
                }
                report
            };
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else if report.entries == 0 {
                println!("nothing has outlived its retention");
            } else if dry_run {
                println!(
                    "would archive and delete {} entries (up to entry {})",
                    report.entries,
                    report.upto_seq.unwrap_or(0)
                );
            } else {
                println!(
                    "archived and deleted {} entries (up to entry {}); archive SHA-256 {}",
                    report.entries,
                    report.upto_seq.unwrap_or(0),
                    report.archive_sha256.as_deref().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::PublicKey => {
            let key = veil.audit_public_key().await?;
            if json {
                println!("{}", serde_json::json!({ "public_key": key }));
            } else {
                println!("{key}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::List {
            actor,
            action,
            customer,
            from,
            to,
            limit,
        } => {
            let query = AuditQuery {
                actor,
                action,
                customer,
                from,
                to,
                before: None,
                limit: Some(limit),
            };
            let entries = veil
                .store()
                .query_audit(
                    &query.filter()?,
                    i64::from(limit.clamp(1, audit::MAX_AUDIT_PAGE)),
                )
                .await?;
            for entry in &entries {
                let record = audit::AuditRecord::from_entry(entry);
                if json {
                    println!("{}", serde_json::to_string(&record)?);
                } else {
                    println!(
                        "{:>8} {} {:<10} {:<8} {:<22} {:<7} {}{}",
                        record.seq,
                        record.time,
                        record.actor_name.as_deref().unwrap_or("(system)"),
                        record.actor_role.as_deref().unwrap_or("-"),
                        record.action,
                        record.outcome,
                        if record.customer_ids.is_empty() {
                            String::new()
                        } else {
                            format!("customers={} ", record.customer_ids.len())
                        },
                        if record.fields.is_empty() {
                            String::new()
                        } else {
                            format!("fields={}", record.fields.join(","))
                        },
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn subject(veil: &Veil, command: SubjectCommand, json: bool) -> anyhow::Result<ExitCode> {
    let SubjectCommand::Report { customer_id } = command;
    let id: veil_app::CustomerId = customer_id
        .parse()
        .map_err(|_| anyhow::anyhow!("{customer_id} is not a customer id"))?;
    let report = veil.subject_report(None, &id.to_string()).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Data-subject access report for customer {} (generated {})",
        report.customer_id, report.generated_at
    );
    println!(
        "Accessed by: {}",
        if report.accessed_by.is_empty() {
            "nobody".to_owned()
        } else {
            report.accessed_by.join(", ")
        }
    );
    for entry in &report.entries {
        println!(
            "{} {:<10} {:<8} {:<20} {:<7} {}{}{}",
            entry.time,
            entry.who.as_deref().unwrap_or("(system)"),
            entry.role.as_deref().unwrap_or("-"),
            entry.action,
            entry.outcome,
            entry.fields.join(","),
            entry
                .purpose
                .as_deref()
                .map(|purpose| format!(" purpose={purpose}"))
                .unwrap_or_default(),
            entry
                .grant_id
                .as_deref()
                .map(|grant| format!(" grant={grant}"))
                .unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
