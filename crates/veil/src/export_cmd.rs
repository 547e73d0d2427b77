//! `veil export verify` (and the `veil export customers` arguments, run by `import_cmd`): checks an unmasked export offline against its signed manifest — signature under the
//! server's public key, the file's SHA-256, and (with the recipient's age identity) rows and per-field counts.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use veil_app::governance::{verify_export_file, SignedManifest};

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Write the customers the user may list as CSV or XLSX (`--format csv|xlsx`, else by the --out extension)
    /// in an export profile: `masked` (default: the
    /// masked displays only, nothing decrypted). Unmasked exports need an approved unmask request (the governed
    /// `POST /api/v1/unmask-requests/{id}/export`); pseudonymised ones are `veil partner export`.
    Customers {
        /// masked (default), pseudonymised or unmasked.
        #[arg(long, default_value = "masked")]
        profile: String,
        /// The file to write (must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
        /// The user exporting.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
    /// Check an export file against its manifest; exit 1 if anything differs.
    Verify {
        /// The encrypted export file.
        file: std::path::PathBuf,
        /// The signed manifest (JSON) delivered with it.
        #[arg(long)]
        manifest: std::path::PathBuf,
        /// The server's Ed25519 public key (hex, `veil audit public-key`).
        #[arg(long)]
        public_key: String,
        /// The recipient's age identity file, to check the contents too.
        #[arg(long)]
        identity: Option<std::path::PathBuf>,
    },
}

pub fn run(command: &ExportCommand, json: bool) -> anyhow::Result<ExitCode> {
    let ExportCommand::Verify {
        file,
        manifest,
        public_key,
        identity,
    } = command
    else {
        anyhow::bail!("`veil export customers` needs the database");
    };
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let signed: SignedManifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed export manifest", manifest.display()))?;
    let key = veil_app::audit::parse_public_key(public_key)
        .map_err(|error| anyhow::anyhow!("--public-key: {error}"))?;
    let identity = identity
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        })
        .transpose()?;
    let check = verify_export_file(&bytes, &signed, &key, identity.as_deref());
    let ok = check.problems.is_empty();
    if json {
        println!("{}", serde_json::to_string(&check)?);
    } else if ok {
        println!(
            "ok: signature, checksum{} match ({} rows, fields {})",
            if check.contents_ok.is_some() {
                " and contents"
            } else {
                ""
            },
            signed.manifest.rows,
            signed.manifest.fields.join(", ")
        );
    } else {
        for problem in &check.problems {
            println!("FAIL {problem}");
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
