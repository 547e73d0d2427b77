//! `veil incident open/close/report/list`: lock-down from the server's command line (for when the web
//! application is the thing under attack), and the affected-subjects report with notification templates.

use std::process::ExitCode;

use clap::Subcommand;
use veil_app::incident::{CloseIncident, OpenIncident};
use veil_app::Veil;

#[derive(Subcommand)]
pub enum IncidentCommand {
    /// Open an incident: lock-down at once (reveals and exports blocked, every session but admins' and DPOs'
    /// ended).
    Open {
        /// Why (personal data in it is masked before it is stored).
        #[arg(long)]
        reason: String,
    },
    /// Close the open incident and lift the lock-down.
    Close {
        /// What was found and done.
        #[arg(long)]
        note: String,
    },
    /// Who revealed or exported which customers' which fields between FROM and TO, with notification templates
    /// for customers and the regulator (Chinese and English).
    Report {
        /// From (YYYY-MM-DD or RFC 3339), inclusive.
        #[arg(long)]
        from: String,
        /// To (YYYY-MM-DD or RFC 3339), exclusive [default: now].
        #[arg(long)]
        to: Option<String>,
    },
    /// List incidents, newest first.
    List,
}

pub async fn run(veil: &Veil, command: IncidentCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        IncidentCommand::Open { reason } => {
            let lockdown = veil
                .open_incident_as(None, &OpenIncident { reason })
                .await?;
            if json {
                println!("{}", serde_json::to_string(&lockdown)?);
            } else {
                println!(
                    "incident {} open: lock-down in force ({} sessions ended; reveals and exports blocked)",
                    lockdown.incident.id, lockdown.sessions_revoked
                );
            }
        }
        IncidentCommand::Close { note } => {
            let closed = veil
                .close_incident_as(None, None, &CloseIncident { note })
                .await?;
            if json {
                println!("{}", serde_json::to_string(&closed)?);
            } else {
                println!("incident {} closed: lock-down lifted", closed.id);
            }
        }
        IncidentCommand::Report { from, to } => {
            let from = veil_app::audit::parse_time("from", &from)?;
            let to = match to {
                Some(text) => veil_app::audit::parse_time("to", &text)?,
                None => veil_app::now_ms(),
            };
            let report = veil.incident_report(None, from, to).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "Incident report {} – {}: {} affected customers, {} staff, fields: {}",
                report.from,
                report.to,
                report.affected.len(),
                report.actors.len(),
                report.fields.join(", ")
            );
            for subject in &report.affected {
                println!(
                    "customer {}  fields: {}",
                    subject.customer_id,
                    subject.fields.join(",")
                );
                for exposure in &subject.exposures {
                    println!(
                        "    {} {:<10} {:<16} {}{}",
                        exposure.time,
                        exposure.who.as_deref().unwrap_or("(system)"),
                        exposure.action,
                        exposure.fields.join(","),
                        exposure
                            .grant_id
                            .as_deref()
                            .map(|grant| format!(" grant={grant}"))
                            .unwrap_or_default()
                    );
                }
            }
            for (title, text) in [
                ("Notice to customers (中文)", &report.notice_subject_zh),
                ("Notice to customers (English)", &report.notice_subject_en),
                (
                    "Report to the regulator (中文)",
                    &report.notice_regulator_zh,
                ),
                (
                    "Report to the regulator (English)",
                    &report.notice_regulator_en,
                ),
            ] {
                println!("\n--- {title} ---\n{text}");
            }
        }
        IncidentCommand::List => {
            let incidents = veil.store().incidents().await?;
            for row in incidents {
                println!(
                    "{} {} {} {}",
                    row.id,
                    veil_app::format_time(row.opened_at),
                    row.closed_at
                        .map(|at| format!("closed {}", veil_app::format_time(at)))
                        .unwrap_or_else(|| "OPEN (lock-down)".to_owned()),
                    row.reason
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
