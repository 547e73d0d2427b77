//! `veil partner …` and `veil import --reidentify`: partner data exchange from the server's command line —
//! register and retire partners (each its own pseudonym domain), pseudonymised exports with k-anonymity, and
//! re-identification of a partner's enriched file under a grant.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use veil_app::governance::partner::{QuasiIdentifier, DEFAULT_K};
use veil_app::Veil;
use veil_store::SensitiveField;

#[derive(Subcommand)]
pub enum PartnerCommand {
    /// Register a partner: a fresh key in the keyring is its pseudonym domain.
    Add {
        /// Partner name (letters, digits, '-', '_').
        name: String,
        /// The admin or DPO doing it.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
    /// Retire a partner at contract end: its key is destroyed and its pseudonyms become unlinkable.
    Retire {
        /// Partner name.
        name: String,
        /// The admin or DPO doing it.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
    /// List partners and whether their keys are live.
    List,
    /// Write a pseudonymised CSV for a partner, encrypted with age to the partner's key: the partner's customer
    /// pseudonym, FF1 pseudonyms of the fields, and quasi-identifiers generalised to k-anonymity (or refused).
    Export {
        /// Partner name.
        #[arg(long)]
        partner: String,
        /// The partner's age public key (age1…).
        #[arg(long)]
        recipient: String,
        /// Fields (phone, id_number, bank_card), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "phone")]
        fields: Vec<String>,
        /// Quasi-identifiers (birth_year, gender, province), comma-separated.
        #[arg(long, value_delimiter = ',')]
        quasi: Vec<String>,
        /// Smallest group size allowed for the quasi-identifiers.
        #[arg(long, default_value_t = DEFAULT_K)]
        k: usize,
        /// Customer ids, comma-separated [default: every customer].
        #[arg(long, value_delimiter = ',')]
        customers: Vec<String>,
        /// Where to write the encrypted file.
        #[arg(long)]
        out: std::path::PathBuf,
        /// The admin or DPO doing it.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
}

pub async fn run(veil: &Veil, command: PartnerCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        PartnerCommand::Add { name, actor } => {
            let actor = veil.actor_by_username(&actor).await?;
            veil.add_partner(&actor, &name).await?;
            println!("partner {name} added");
        }
        PartnerCommand::Retire { name, actor } => {
            let actor = veil.actor_by_username(&actor).await?;
            veil.retire_partner(&actor, &name).await?;
            println!("partner {name} retired: its key is destroyed");
        }
        PartnerCommand::List => {
            let partners = veil.partners().await?;
            if json {
                println!("{}", serde_json::to_string(&partners)?);
            } else {
                for (name, state) in partners {
                    println!("{name}\t{state}");
                }
            }
        }
        PartnerCommand::Export {
            partner,
            recipient,
            fields,
            quasi,
            k,
            customers,
            out,
            actor,
        } => {
            let actor = veil.actor_by_username(&actor).await?;
            let recipient: age::x25519::Recipient = recipient
                .parse()
                .map_err(|_| anyhow::anyhow!("--recipient is not an age public key (age1…)"))?;
            let fields = fields
                .iter()
                .map(|name| {
                    SensitiveField::parse(name).with_context(|| format!("unknown field {name}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let quasi = quasi
                .iter()
                .map(|name| {
                    QuasiIdentifier::parse(name).with_context(|| {
                        format!("unknown quasi-identifier {name} (birth_year, gender, province)")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let customers = if customers.is_empty() {
                veil.all_customer_ids().await?
            } else {
                customers
            };
            let (file, report) = veil
                .pseudonymised_export(&actor, &partner, &customers, &fields, &quasi, k, &recipient)
                .await?;
            std::fs::write(&out, file)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{} rows for {} in {} (k = {}, smallest group {}, generalisation: {})",
                    report.rows,
                    report.partner,
                    out.display(),
                    report.k,
                    report.smallest_class,
                    report.generalisation
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `veil import FILE --reidentify --partner P --grant G --out OUT`.
#[allow(clippy::too_many_arguments)]
pub async fn import(
    veil: &Veil,
    file: &std::path::Path,
    reidentify: bool,
    partner: &str,
    grant: &str,
    out: &std::path::Path,
    actor: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !reidentify {
        bail!("veil import maps a partner's file back onto customers: pass --reidentify");
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let actor = veil.actor_by_username(actor).await?;
    let (mapped, report) = veil.reidentify(&actor, partner, grant, &text).await?;
    std::fs::write(out, mapped).with_context(|| format!("cannot write {}", out.display()))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} rows mapped to customers in {}; {} unknown pseudonyms; {} outside the grant (left out)",
            report.matched,
            out.display(),
            report.unknown,
            report.outside_grant
        );
    }
    Ok(ExitCode::SUCCESS)
}
