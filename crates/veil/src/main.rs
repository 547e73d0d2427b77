//! The `veil` binary: parses the command line, resolves configuration, starts tracing and calls the libraries.
//! Exit codes are decided in one place ([`main`]): 0 success, 1 failure, 2 usage error (clap).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use veil_app::keys::{self, MasterKeySource};
use veil_app::users::{Password, Role};
use veil_app::{AppError, Veil};
use veil_pii::PiiKind;

/// mimalloc instead of glibc's malloc: see the workspace manifest.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit_cmd;
mod backup_cmd;
mod config;
mod export_cmd;
mod import_cmd;
mod incident_cmd;
mod partner_cmd;
mod tls;

use config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "veil",
    version,
    about = "Veil — a privacy-first CRM: masked by default, unmasked only through governance."
)]
struct Cli {
    /// Data directory [default: ./veil-data]
    #[arg(long, global = true, env = "VEIL_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Database URL: sqlite://PATH or postgres://…
    #[arg(long, global = true, env = "VEIL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    /// One JSON object per line (`veil audit export` only).
    Jsonl,
    /// Comma-separated values (`veil audit export`, `veil export customers`).
    Csv,
    /// An Excel workbook (`veil export customers` only).
    Xlsx,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory, master key, schema and first admin (prints a one-time password).
    Init,
    /// Run the HTTP server (API).
    Serve {
        /// Listen address [default: 127.0.0.1:8080]
        #[arg(long, env = "VEIL_LISTEN")]
        listen: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Initialise a fresh data directory with demo data if it is empty, then serve.
    Demo {
        /// Listen address
        #[arg(long, env = "VEIL_LISTEN")]
        listen: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
        /// How many synthetic customers to create in an empty database [default: 2000; with --industry, 200 per
        /// industry].
        #[arg(long)]
        customers: Option<usize>,
        /// Seed customers of an industry template (real_estate, automotive, services, finance, education,
        /// ecommerce, or all) with custom fields, deals in its pipeline and interactions of its kinds; skipped for
        /// an industry the database already has customers of.
        #[arg(long, value_name = "KEY")]
        industry: Option<String>,
        /// Seed the data and print the accounts, but do not start the server.
        #[arg(long)]
        no_serve: bool,
    },
    /// Apply schema migrations to the configured database.
    Migrate,
    /// Manage staff users.
    #[command(subcommand)]
    User(UserCommand),
    /// Key versions and rotation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Teams (a hierarchy that scopes managers).
    #[command(subcommand)]
    Team(TeamCommand),
    /// Customer operations that are not everyday API work.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Masking policies: show, preview, record a change.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Personal-data detection and validation.
    #[command(subcommand)]
    Pii(PiiCommand),
    /// The audit trail: verify, export, checkpoint, list.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Data-subject rights: who accessed one customer's data.
    #[command(subcommand)]
    Subject(audit_cmd::SubjectCommand),
    /// Encrypted backups: create, list, verify, restore.
    #[command(subcommand)]
    Backup(backup_cmd::BackupCommand),
    /// Security self-check: one line per check, exit 1 if any fails.
    Doctor,
    /// Unmasked exports: verify a delivered file against its signed manifest.
    #[command(subcommand)]
    Export(export_cmd::ExportCommand),
    /// Partner data exchange: partners, pseudonymised exports with k-anonymity.
    #[command(subcommand)]
    Partner(partner_cmd::PartnerCommand),
    /// Import customers from CSV or XLSX (`veil import customers FILE`), or map a partner's enriched file back
    /// onto customers under a grant (`veil import FILE --reidentify …`).
    Import(ImportArgs),
    /// Incident response: lock-down, affected-subjects report, notification templates.
    #[command(subcommand)]
    Incident(incident_cmd::IncidentCommand),
    /// Print the default masked display of a value.
    Mask {
        /// PII kind (cn_id, cn_mobile, email, bank_card, …).
        #[arg(long)]
        kind: String,
        /// The value.
        value: String,
    },
}

/// `veil import customers …` or the partner re-identification `veil import FILE --reidentify …`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct ImportArgs {
    #[command(subcommand)]
    what: Option<ImportCommand>,
    /// The partner's CSV (a `pseudonym` column plus its own columns).
    file: Option<std::path::PathBuf>,
    /// Re-identify the partner's pseudonyms.
    #[arg(long)]
    reidentify: bool,
    /// The partner whose pseudonyms the file carries.
    #[arg(long)]
    partner: Option<String>,
    /// The caller's live grant covering the customers to map back.
    #[arg(long)]
    grant: Option<String>,
    /// Where to write the file with customer ids.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// The admin or DPO doing it.
    #[arg(long = "as", default_value = "admin")]
    actor: String,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import customers from a .csv (UTF-8) or .xlsx file: columns mapped by --map, else by header names and by
    /// their values; every row validated as a create is; duplicates (mobile, ID number) of stored customers or of
    /// earlier rows reported, not imported; resumable. Prints the mapping and every refused row (row, column,
    /// reason — never the value).
    Customers {
        /// The file (.csv or .xlsx).
        file: std::path::PathBuf,
        /// Explicit mapping, e.g. "手机=mobile,身份证号=cn_id,年收入=custom.annual_income" (COLUMN is a header,
        /// #N or a letter; custom.KEY is a custom field of the rows' industry template).
        #[arg(long)]
        map: Option<String>,
        /// Owner of the imported customers (username or user id) [default: the importing user].
        #[arg(long)]
        owner: Option<String>,
        /// Industry template (key or name, e.g. finance) of rows without an industry column or cell; headers
        /// naming its custom fields (key, English or Chinese label) are then mapped to them.
        #[arg(long)]
        industry: Option<String>,
        /// Check and report only; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Continue the interrupted import of this same file (matched by its SHA-256).
        #[arg(long)]
        resume: bool,
        /// Rows per transaction (at most 50,000).
        #[arg(long, default_value_t = veil_app::imports::DEFAULT_BATCH)]
        batch: usize,
        /// The user importing (admin, manager or sales).
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
}

/// HTTPS for `serve` and `demo`.
#[derive(clap::Args)]
struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (server certificate first); needs --tls-key.
    #[arg(long, env = "VEIL_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "VEIL_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; reads the password from stdin with --password-stdin, or prints a generated one.
    Add {
        /// Login name.
        username: String,
        /// admin, dpo, manager, sales, service or auditor.
        #[arg(long)]
        role: String,
        /// Team name.
        #[arg(long)]
        team: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user and end all their sessions.
    Disable {
        /// Login name.
        username: String,
    },
    /// Set a new password (generated unless --password-stdin) and end all sessions.
    ResetPassword {
        /// Login name.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Show key versions and how many data keys each wraps.
    Status,
    /// Rotate the key-encryption key: re-wrap every customer data key (resumable), retire the old version.
    Rotate,
    /// Replace the master key: a new key file (or the passphrase in VEIL_NEW_MASTER_PASSPHRASE); re-wraps the
    /// keyring only, in one transaction.
    RotateMaster,
    /// Write the master key, wrapped under a passphrase (VEIL_EXPORT_PASSPHRASE, or the first line of standard
    /// input), to FILE. Keep it apart from the database and its backups.
    Export {
        /// Where to write the wrapped key (must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Split the master key into N Shamir shares of which any K recover it, one file per share in DIR.
    Escrow {
        /// Number of shares.
        #[arg(long)]
        shares: u8,
        /// Shares needed to recover.
        #[arg(long)]
        threshold: u8,
        /// Directory for the share files (created; must not hold shares already).
        #[arg(long)]
        out_dir: std::path::PathBuf,
    },
    /// Recreate the master key file from an export (with its passphrase) or from escrow shares.
    Recover {
        /// A file written by `veil keys export`.
        #[arg(long, conflicts_with = "share")]
        from_export: Option<std::path::PathBuf>,
        /// A share file written by `veil keys escrow` (repeat for each share).
        #[arg(long)]
        share: Vec<std::path::PathBuf>,
        /// Where to write the key file (mode 0600; must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum TeamCommand {
    /// Add a team, optionally under a parent team.
    Add {
        /// Team name.
        name: String,
        /// Parent team (must exist).
        #[arg(long)]
        parent: Option<String>,
        /// The admin recording the change.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
    /// List teams.
    List,
}

#[derive(Subcommand)]
enum CustomerCommand {
    /// Move every customer of one user to another (when a salesperson leaves); each move is recorded.
    Transfer {
        /// Username of the current owner.
        #[arg(long)]
        from: String,
        /// Username of the new owner.
        #[arg(long)]
        to: String,
        /// Why (kept with every transfer).
        #[arg(long)]
        reason: String,
        /// The admin doing it.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the policy in force (JSON) and its history.
    Show,
    /// Show how synthetic sample customers look to a role (or in an export profile) under the policy in force,
    /// or under the policy in FILE.
    Preview {
        /// Role to preview (admin, dpo, manager, sales, service, auditor, or a custom role).
        #[arg(long, default_value = "sales")]
        role: String,
        /// Preview an export profile (masked, pseudonymised, unmasked) instead of a role's display.
        #[arg(long)]
        profile: Option<String>,
        /// A policy document to preview instead of the one in force.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Record a new policy version from FILE (admin; the reason is kept with the change).
    Set {
        /// The policy document (JSON).
        file: std::path::PathBuf,
        /// Why the policy changes.
        #[arg(long)]
        reason: String,
        /// The admin recording the change.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
    /// Compute the stored displays the policy in force needs for every customer (resumes an interrupted run;
    /// the server also runs this in the background after a policy change).
    Remask,
    /// Show whether every customer has the displays of the policy in force.
    RemaskStatus,
}

#[derive(Subcommand)]
enum PiiCommand {
    /// Find personal data in text (FILE, or standard input) and print each line masked; with --format json one
    /// object per line: {"line": N, "spans": [{"kind", "start", "end", "masked", "valid", "confidence"}]}.
    Scan {
        /// The text file (UTF-8); standard input when absent.
        file: Option<std::path::PathBuf>,
    },
    /// Exit 0 if VALUE is a valid KIND, 1 if not; --format json prints the details.
    Validate {
        /// PII kind.
        #[arg(long)]
        kind: String,
        /// The value.
        value: String,
    },
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command()
        .after_help(config::settings_help())
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Pure commands need no configuration, database or runtime.
    match &cli.command {
        Command::Pii(PiiCommand::Validate { kind, value }) => {
            return pii_validate(kind, value, cli.format)
        }
        Command::Mask { kind, value } => return mask(kind, value),
        Command::Pii(PiiCommand::Scan { file }) => return pii_scan(file.as_deref(), cli.format),
        Command::Export(command @ export_cmd::ExportCommand::Verify { .. }) => {
            return export_cmd::run(command, cli.format == Format::Json)
        }
        Command::Keys(KeysCommand::Recover {
            from_export,
            share,
            out,
        }) => return keys_recover(from_export.as_deref(), share, out),
        Command::Audit(audit_cmd::AuditCommand::Verify {
            file: Some(file),
            public_key,
        }) => {
            return audit_cmd::verify_file(file, public_key.as_deref(), cli.format == Format::Json)
        }
        _ => {}
    }
    let export = matches!(
        &cli.command,
        Command::Audit(audit_cmd::AuditCommand::Export { .. })
    );
    let customer_export = matches!(
        &cli.command,
        Command::Export(export_cmd::ExportCommand::Customers { .. })
    );
    if cli.format == Format::Xlsx && !customer_export {
        bail!("--format xlsx is for `veil export customers`");
    }
    if matches!(cli.format, Format::Jsonl | Format::Csv) && !export && !customer_export {
        bail!("--format jsonl and csv are for `veil audit export`; use text or json here");
    }
    let (listen, tls) = match &cli.command {
        Command::Serve { listen, tls } | Command::Demo { listen, tls, .. } => {
            (listen.clone(), Some(tls))
        }
        _ => (None, None),
    };
    let config = Config::resolve(Overrides {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        listen,
        tls_cert: tls.and_then(|tls| tls.tls_cert.clone()),
        tls_key: tls.and_then(|tls| tls.tls_key.clone()),
    })?;
    init_tracing(&config.log);
    for name in config::unknown_env_vars() {
        tracing::warn!(variable = %name, "unknown VEIL_* environment variable ignored (typo?)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(cli, config))
}

fn parse_kind(kind: &str) -> anyhow::Result<PiiKind> {
    kind.parse::<PiiKind>()
        .map_err(|error| anyhow::anyhow!("{error}"))
}

fn pii_validate(kind: &str, value: &str, format: Format) -> anyhow::Result<ExitCode> {
    let kind = parse_kind(kind)?;
    let result = veil_pii::validate(kind, value, veil_app::today());
    let valid = result.is_ok();
    if format == Format::Json {
        let json = match &result {
            Ok(validated) => serde_json::json!({
                "kind": kind.as_str(),
                "valid": true,
                "masked": veil_mask::default_display(kind, &validated.normalized),
                "details": details_json(&validated.details),
            }),
            Err(invalid) => serde_json::json!({
                "kind": kind.as_str(),
                "valid": false,
                "reason": invalid.reason.code(),
                "message": invalid.to_string(),
            }),
        };
        println!("{json}");
    } else {
        match &result {
            Ok(validated) => println!(
                "valid {} ({})",
                kind.as_str(),
                veil_mask::default_display(kind, &validated.normalized)
            ),
            Err(invalid) => println!("invalid: {invalid}"),
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn pii_scan(file: Option<&std::path::Path>, format: Format) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let reader: Box<dyn BufRead> = match file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let scanner = veil_pii::scan::Scanner::new();
    let today = veil_app::today();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut spans = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("line {} is not valid UTF-8", index + 1))?;
        spans.clear();
        scanner.scan_into(&line, today, &mut spans);
        if format == Format::Json {
            let found: Vec<serde_json::Value> = spans
                .iter()
                .map(|span| {
                    serde_json::json!({
                        "kind": span.kind.as_str(),
                        "start": span.start,
                        "end": span.end,
                        "masked": veil_mask::default_display(span.kind, span.normalized.as_deref().unwrap_or("")),
                        "valid": span.valid,
                        "confidence": (f64::from(span.confidence) * 100.0).round() / 100.0,
                    })
                })
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({"line": index + 1, "spans": found})
            )?;
        } else {
            writeln!(out, "{}", veil_app::notes::mask_text(&line).body)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Details that are not themselves the identifying value (region, birth date, sex, card length…).
fn details_json(details: &veil_pii::Details) -> serde_json::Value {
    match details {
        veil_pii::Details::CnId(info) => serde_json::json!({
            "region_code": info.region_code,
            "province": info.province,
            "birth_date": info.birth_date.to_string(),
            "sex": info.sex.as_str(),
            "legacy_15": info.legacy_15,
        }),
        veil_pii::Details::BankCard { length, .. } => serde_json::json!({ "length": length }),
        _ => serde_json::json!({}),
    }
}

fn mask(kind: &str, value: &str) -> anyhow::Result<ExitCode> {
    let kind = parse_kind(kind)?;
    let masked = match veil_pii::validate(kind, value, veil_app::today()) {
        Ok(validated) => veil_mask::default_display(kind, &validated.normalized),
        // Fail safe: a value that does not fit its kind is masked entirely.
        Err(_) => veil_mask::default_display(kind, ""),
    };
    println!("{masked}");
    Ok(ExitCode::SUCCESS)
}

async fn connect(config: &Config) -> anyhow::Result<veil_store::Store> {
    if config.database_url.backend() == Some(veil_app::Backend::Sqlite) {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    Ok(veil_store::Store::connect(&config.database_url).await?)
}

/// Checks the key file up front so that permission problems are reported with their fix.
fn check_master_key(config: &Config) -> anyhow::Result<()> {
    if let MasterKeySource::File(path) = &config.master_key {
        keys::read_master_key_file(path)?;
    }
    Ok(())
}

async fn open(config: &Config) -> anyhow::Result<Veil> {
    check_master_key(config)?;
    let store = connect(config).await?;
    let veil = Veil::open(store, &config.master_key)
        .await
        .map_err(|error| match error {
            AppError::NotInitialised => anyhow::anyhow!(
                "the database at {} is not initialised: run `veil init` (or `veil demo`) first",
                config.database_url
            ),
            other => other.into(),
        })?;
    veil.set_backup_settings(config.backup.clone());
    Ok(veil)
}

/// Creates the data directory and key file if needed and initialises the database. Returns whether it was new.
async fn initialise(config: &Config) -> anyhow::Result<(Veil, bool)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let store = connect(config).await?;
    store.migrate().await?;
    let fresh = store.master_key_meta().await?.is_none();
    if let MasterKeySource::File(path) = &config.master_key {
        if fresh && !path.exists() {
            keys::create_master_key_file(path)?;
        }
    }
    check_master_key(config)?;
    let veil = Veil::initialise(store, &config.master_key).await?;
    veil.set_backup_settings(config.backup.clone());
    Ok((veil, fresh))
}

fn read_password_stdin() -> anyhow::Result<Password> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(Password::new(password))
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub(crate) struct Bar(pub(crate) ProgressBar);

impl Bar {
    pub(crate) fn new(message: impl Into<std::borrow::Cow<'static, str>>) -> Bar {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(message);
        Bar(bar)
    }
}

impl keys::Progress for Bar {
    fn update(&self, done: u64, total: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
    }
}

async fn run_async(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    let json = cli.format == Format::Json;
    match cli.command {
        Command::Init => {
            let (veil, fresh) = initialise(&config).await?;
            if !fresh {
                println!("already initialised: {}", config.database_url);
                return Ok(ExitCode::SUCCESS);
            }
            let password = Password::generate();
            veil.add_user("admin", Role::Admin, None, &password).await?;
            println!("initialised {}", config.database_url);
            if let MasterKeySource::File(_) = &config.master_key {
                println!(
                    "master key: {} (mode 0600 — back it up separately from the database)",
                    config.master_key_file.display()
                );
            }
            println!("first admin: admin / {}  (shown once; change it with `veil user reset-password admin`)", password.expose());
        }
        Command::Migrate => {
            let store = connect(&config).await?;
            store.migrate().await?;
            println!("migrations applied to {}", config.database_url);
        }
        Command::Serve { .. } => {
            let veil = open(&config).await?;
            serve(Arc::new(veil), &config, None).await?;
        }
        Command::Demo {
            customers,
            industry,
            no_serve,
            ..
        } => {
            let industries: Vec<String> = match industry.as_deref() {
                None => Vec::new(),
                Some("all") => veil_app::industries::industry_keys()
                    .map(str::to_owned)
                    .collect(),
                Some(key) if veil_app::industries::builtin(key).is_some() => vec![key.to_owned()],
                Some(_) => bail!(
                    "--industry must be one of {}, or all",
                    veil_app::industries::industry_keys()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let (veil, fresh) = initialise(&config).await?;
            if fresh {
                veil.store()
                    .put_setting("demo", "true", veil_app::now_ms())
                    .await?;
            } else if veil.store().setting("demo").await?.as_deref() != Some("true") {
                bail!(
                    "the database at {} was not created by `veil demo`; refusing to reset its accounts. \
                     Use `veil serve`, or point --data-dir at an empty directory for a demo",
                    config.database_url
                );
            }
            let accounts = veil_app::demo::ensure_demo_accounts(&veil).await?;
            for key in &industries {
                let bar = Bar::new(format!("creating {key} demo customers"));
                let seeded =
                    veil_app::demo::seed_industry(&veil, key, customers.unwrap_or(200), &bar)
                        .await?;
                bar.0.finish_and_clear();
                if seeded.customers == 0 {
                    eprintln!(
                        "{key}: the database already has customers of this industry; nothing added"
                    );
                } else {
                    eprintln!(
                        "{key}: created {} customers with custom fields, {} deals, {} interactions",
                        seeded.customers, seeded.deals, seeded.interactions
                    );
                }
            }
            let customers = customers.unwrap_or(2000);
            if industries.is_empty() && veil.count_customers().await? == 0 && customers > 0 {
                let bar = Bar::new("creating demo customers");
                veil_app::demo::seed_customers(&veil, customers, &bar).await?;
                bar.0.finish_and_clear();
                eprintln!("created {customers} synthetic customers");
                let orders = veil_app::demo::seed_orders(&veil, customers).await?;
                eprintln!("created {orders} demo orders");
                let pooled = veil_app::demo::seed_pool_and_templates(&veil, 40).await?;
                eprintln!("put {pooled} customers in the customer pool; added 2 message templates");
            }
            let mut banner =
                String::from("Demo accounts (passwords are new on every `veil demo` run):\n");
            for account in &accounts {
                banner.push_str(&format!(
                    "  {:<8} {:<8} {}\n",
                    account.username,
                    account.role.as_str(),
                    account.password.expose()
                ));
            }
            if no_serve {
                println!("{banner}");
            } else {
                serve(Arc::new(veil), &config, Some(banner)).await?;
            }
        }
        Command::User(command) => user_command(&config, command, json).await?,
        Command::Policy(command) => policy_command(&config, command, json).await?,
        Command::Team(command) => {
            let veil = open(&config).await?;
            match command {
                TeamCommand::Add {
                    name,
                    parent,
                    actor,
                } => {
                    let actor = veil.actor_by_username(&actor).await?;
                    let team = veil.add_team(&actor, &name, parent.as_deref()).await?;
                    if json {
                        println!("{}", serde_json::to_string(&team)?);
                    } else {
                        println!(
                            "added team {}{}",
                            team.name,
                            team.parent
                                .map(|parent| format!(" under {parent}"))
                                .unwrap_or_default()
                        );
                    }
                }
                TeamCommand::List => {
                    let teams = veil.list_teams().await?;
                    if json {
                        println!("{}", serde_json::to_string(&teams)?);
                    } else {
                        for team in teams {
                            println!(
                                "{:<24} {}",
                                team.name,
                                team.parent.as_deref().unwrap_or("-")
                            );
                        }
                    }
                }
            }
        }
        Command::Customer(CustomerCommand::Transfer {
            from,
            to,
            reason,
            actor,
        }) => {
            let veil = open(&config).await?;
            let actor = veil.actor_by_username(&actor).await?;
            let from = veil.actor_by_username(&from).await?;
            let to = veil.actor_by_username(&to).await?;
            let moved = veil
                .transfer_all_customers(&actor, from.user_id, to.user_id, &reason)
                .await?;
            if json {
                println!("{}", serde_json::json!({"moved": moved}));
            } else {
                println!(
                    "moved {moved} customers from {} to {}",
                    from.username, to.username
                );
            }
        }
        Command::Keys(command) => {
            let veil = open(&config).await?;
            match command {
                KeysCommand::Status => {
                    let status = keys::key_status(veil.store()).await?;
                    if json {
                        println!("{}", serde_json::to_string(&status)?);
                    } else {
                        println!("master key source: {}", status.master_key_source);
                        println!(
                            "current key-encryption key: v{}",
                            status.current_kek_version
                        );
                        for version in status.kek_versions {
                            println!(
                                "  v{:<4} {:<9} wraps {} data keys",
                                version.version, version.state, version.data_keys
                            );
                        }
                    }
                }
                KeysCommand::RotateMaster => rotate_master(&config, &veil, json).await?,
                KeysCommand::Export { out } => {
                    let passphrase = match std::env::var("VEIL_EXPORT_PASSPHRASE") {
                        Ok(value) if !value.is_empty() => value,
                        _ => read_password_stdin()?.expose().to_owned(),
                    };
                    let wrapped = veil.export_master_key(&passphrase).await?;
                    let mut options = std::fs::OpenOptions::new();
                    options.write(true).create_new(true);
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::OpenOptionsExt;
                        options.mode(0o600);
                    }
                    let mut file = options.open(&out).with_context(|| {
                        format!("cannot create {} (it must not exist)", out.display())
                    })?;
                    std::io::Write::write_all(&mut file, &wrapped)?;
                    file.sync_all()?;
                    eprintln!(
                        "WARNING: {} now holds the master key, protected only by the passphrase. Anyone with both \
                         can decrypt every customer. Keep it offline, apart from the database and its backups.",
                        out.display()
                    );
                    println!("exported the master key to {}", out.display());
                }
                KeysCommand::Escrow {
                    shares,
                    threshold,
                    out_dir,
                } => {
                    let pieces = veil.escrow_master_key(shares, threshold).await?;
                    std::fs::create_dir_all(&out_dir)
                        .with_context(|| format!("cannot create {}", out_dir.display()))?;
                    for (index, piece) in pieces.iter().enumerate() {
                        let path =
                            out_dir.join(format!("veil-key-share-{}-of-{shares}.txt", index + 1));
                        let mut options = std::fs::OpenOptions::new();
                        options.write(true).create_new(true);
                        #[cfg(unix)]
                        {
                            use std::os::unix::fs::OpenOptionsExt;
                            options.mode(0o600);
                        }
                        let mut file = options.open(&path).with_context(|| {
                            format!(
                                "cannot create {} (shares must not be overwritten)",
                                path.display()
                            )
                        })?;
                        std::io::Write::write_all(
                            &mut file,
                            format!("{}\n", piece.as_str()).as_bytes(),
                        )?;
                        file.sync_all()?;
                    }
                    eprintln!(
                        "WARNING: any {threshold} of these {shares} files recover the master key. Give each to a \
                         different custodian and delete them here."
                    );
                    println!(
                        "wrote {shares} shares (any {threshold} recover the key) to {}",
                        out_dir.display()
                    );
                }
                KeysCommand::Recover { .. } => unreachable!("handled before configuration"),
                KeysCommand::Rotate => {
                    let bar = Bar::new("re-wrapping data keys");
                    let (report, retired) = veil.rotate_keys(&bar).await?;
                    bar.0.finish_and_clear();
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"rotation": report, "retired": retired})
                        );
                    } else {
                        println!(
                            "key-encryption key now v{} ({} data keys re-wrapped{}); retired: {:?}",
                            report.new_version,
                            report.rewrapped,
                            if report.resumed {
                                ", resumed an interrupted rotation"
                            } else {
                                ""
                            },
                            retired
                        );
                    }
                }
            }
        }
        Command::Audit(command) => {
            let veil = open(&config).await?;
            return audit_cmd::run(&veil, command, json, cli.format == Format::Csv).await;
        }
        Command::Doctor => {
            let veil = open(&config).await?;
            let report = veil.run_doctor(&host_facts(&config), "cli").await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                for check in &report.checks {
                    let mark = match check.status {
                        veil_app::doctor::Status::Ok => "ok  ",
                        veil_app::doctor::Status::Warn => "warn",
                        veil_app::doctor::Status::Fail => "FAIL",
                    };
                    println!("{mark} {:<20} {}", check.name, check.detail);
                }
            }
            return Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Incident(command) => {
            let veil = open(&config).await?;
            return incident_cmd::run(&veil, command, json).await;
        }
        Command::Partner(command) => {
            let veil = open(&config).await?;
            return partner_cmd::run(&veil, command, json).await;
        }
        Command::Import(ImportArgs {
            what:
                Some(ImportCommand::Customers {
                    file,
                    map,
                    owner,
                    industry,
                    dry_run,
                    resume,
                    batch,
                    actor,
                }),
            ..
        }) => {
            let veil = open(&config).await?;
            return import_cmd::import_customers(
                &veil,
                &file,
                map.as_deref(),
                owner,
                industry,
                dry_run,
                resume,
                batch,
                &actor,
                json,
            )
            .await;
        }
        Command::Import(ImportArgs {
            what: None,
            file,
            reidentify,
            partner,
            grant,
            out,
            actor,
        }) => {
            let (Some(file), Some(partner), Some(grant), Some(out)) = (file, partner, grant, out)
            else {
                bail!(
                    "use `veil import customers FILE`, or `veil import FILE --reidentify --partner P --grant G --out OUT`"
                );
            };
            let veil = open(&config).await?;
            return partner_cmd::import(
                &veil, &file, reidentify, &partner, &grant, &out, &actor, json,
            )
            .await;
        }
        Command::Export(export_cmd::ExportCommand::Customers {
            profile,
            out,
            actor,
        }) => {
            let veil = open(&config).await?;
            let format = match cli.format {
                Format::Xlsx => "xlsx",
                Format::Csv => "csv",
                _ if out.extension().is_some_and(|extension| extension == "xlsx") => "xlsx",
                _ => "csv",
            };
            return import_cmd::export_customers(&veil, format, &profile, &out, &actor, json).await;
        }
        Command::Backup(command @ backup_cmd::BackupCommand::Restore { .. }) => {
            return backup_cmd::restore(&config, command, json).await;
        }
        Command::Backup(command) => {
            let veil = open(&config).await?;
            return backup_cmd::run(&veil, command, json).await;
        }
        Command::Subject(command) => {
            let veil = open(&config).await?;
            return audit_cmd::subject(&veil, command, json).await;
        }
        Command::Pii(_)
        | Command::Mask { .. }
        | Command::Export(export_cmd::ExportCommand::Verify { .. }) => {
            unreachable!("handled before configuration")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `veil keys recover`: needs no database or configuration.
fn keys_recover(
    from_export: Option<&std::path::Path>,
    shares: &[std::path::PathBuf],
    out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use veil_app::keys::escrow;
    let key = match from_export {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let passphrase = match std::env::var("VEIL_EXPORT_PASSPHRASE") {
                Ok(value) if !value.is_empty() => value,
                _ => read_password_stdin()?.expose().to_owned(),
            };
            escrow::recover_from_export(&bytes, &passphrase)
                .map_err(|error| anyhow::anyhow!(error))?
        }
        None => {
            if shares.is_empty() {
                bail!("give --from-export FILE or one --share FILE per share");
            }
            let texts = shares
                .iter()
                .map(|path| {
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))
                })
                .collect::<anyhow::Result<Vec<String>>>()?;
            escrow::recover_from_shares(&texts).map_err(|error| anyhow::anyhow!(error))?
        }
    };
    keys::write_master_key_file(out, &key)?;
    println!(
        "recovered the master key (check {}) into {} (mode 0600)",
        escrow::key_check(&key),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn rotate_master(config: &Config, veil: &Veil, json: bool) -> anyhow::Result<()> {
    let new_passphrase = std::env::var("VEIL_NEW_MASTER_PASSPHRASE")
        .ok()
        .filter(|value| !value.is_empty());
    if let Some(passphrase) = new_passphrase {
        if passphrase.chars().count() < 12 {
            bail!("VEIL_NEW_MASTER_PASSPHRASE must be at least 12 characters");
        }
        veil.replace_master_key(&MasterKeySource::Passphrase(keys::Passphrase::new(
            passphrase,
        )))
        .await?;
        if json {
            println!("{}", serde_json::json!({"master_key_source": "passphrase"}));
        } else {
            println!(
                "master key replaced; from now on set VEIL_MASTER_PASSPHRASE to the new passphrase"
            );
        }
        return Ok(());
    }
    let current = &config.master_key_file;
    let mut staged = current.clone().into_os_string();
    staged.push(".new");
    let staged = std::path::PathBuf::from(staged);
    if staged.exists() {
        bail!(
            "{} exists: an earlier rotation was interrupted. If `veil keys status` works with the current key, \
             delete it and retry; otherwise the database is under the new key: move it to {}",
            staged.display(),
            current.display()
        );
    }
    keys::create_master_key_file(&staged)?;
    if let Err(error) = veil
        .replace_master_key(&MasterKeySource::File(staged.clone()))
        .await
    {
        // Nothing was committed: the database is still under the current key.
        let _ = std::fs::remove_file(&staged);
        return Err(error.into());
    }
    let mut retired = current.clone().into_os_string();
    retired.push(format!(".retired-{}", veil_app::now_ms() / 1000));
    let retired = std::path::PathBuf::from(retired);
    if current.exists() {
        std::fs::rename(current, &retired).with_context(|| {
            format!(
                "the database is under the new key in {}; move it to {} by hand",
                staged.display(),
                current.display()
            )
        })?;
    }
    std::fs::rename(&staged, current).with_context(|| {
        format!(
            "the database is under the new key in {}; move it to {} by hand",
            staged.display(),
            current.display()
        )
    })?;
    if json {
        println!(
            "{}",
            serde_json::json!({"master_key_file": current, "retired_key_file": retired})
        );
    } else {
        println!(
            "master key replaced: {} (old key moved to {}; destroy it once you no longer need to restore older backups)",
            current.display(),
            retired.display()
        );
    }
    Ok(())
}

async fn policy_command(config: &Config, command: PolicyCommand, json: bool) -> anyhow::Result<()> {
    use veil_mask::policy::{self, ExportProfile, Policy};
    let veil = open(config).await?;
    match command {
        PolicyCommand::Show => {
            let (version, policy) = veil.current_policy().await?;
            let history = veil.store().policy_history().await?;
            if json {
                let document: serde_json::Value = serde_json::from_str(&policy.to_json())?;
                println!(
                    "{}",
                    serde_json::json!({"version": version, "document": document})
                );
            } else {
                println!(
                    "masking policy v{version}{}",
                    if version == 0 {
                        " (built-in default)"
                    } else {
                        ""
                    }
                );
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(
                        &policy.to_json()
                    )?)?
                );
                for row in history {
                    println!(
                        "  v{} {} by {} — {}",
                        row.version,
                        veil_app::format_time(row.created_at),
                        row.created_by.as_deref().unwrap_or("-"),
                        row.reason
                    );
                }
            }
        }
        PolicyCommand::Preview {
            role,
            profile,
            file,
        } => {
            let policy = match file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    Policy::from_json(&text)
                        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
                }
                None => veil.current_policy().await?.1,
            };
            // Synthetic people only: a preview never shows a real customer.
            let mut rows = Vec::new();
            for person in veil_app::policies::preview_samples(3) {
                let samples: Vec<(&str, &str)> = person
                    .iter()
                    .map(|(field, value)| (*field, value.as_str()))
                    .collect();
                let preview = match &profile {
                    Some(name) => {
                        let profile: ExportProfile =
                            name.parse().map_err(|error| anyhow::anyhow!("{error}"))?;
                        policy::preview_export(&policy, profile, &samples, veil_app::today())
                    }
                    None => policy::preview(&policy, &role, &samples, veil_app::today()),
                };
                for (row, (_, sample)) in preview.into_iter().zip(samples.iter()) {
                    rows.push((row, sample.to_string()));
                }
            }
            for (row, sample) in rows {
                let shown = row
                    .shown
                    .clone()
                    .or(row.error.clone().map(|error| format!("<{error}>")))
                    .unwrap_or_default();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"field": row.field, "sample": sample, "operator": row.operator, "shown": row.shown, "error": row.error})
                    );
                } else {
                    println!(
                        "{:<11} {:<13} {:<26} -> {}",
                        row.field, row.operator, sample, shown
                    );
                }
            }
        }
        PolicyCommand::Set {
            file,
            reason,
            actor,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let actor = veil.actor_by_username(&actor).await?;
            let version = veil.record_policy_change(&actor, &text, &reason).await?;
            if json {
                println!("{}", serde_json::to_string(&version)?);
            } else {
                println!("masking policy v{} recorded", version.version);
                println!("run `veil policy remask` (or let a running server do it) to compute its displays");
            }
        }
        PolicyCommand::Remask => {
            let bar = Bar::new("re-masking");
            let status = veil
                .remask(&|done, total| keys::Progress::update(&bar, done, total))
                .await?;
            bar.0.finish_and_clear();
            print_remask(&status, json)?;
        }
        PolicyCommand::RemaskStatus => {
            let status = veil.remask_status().await?;
            print_remask(&status, json)?;
        }
    }
    Ok(())
}

fn print_remask(status: &veil_app::displays::RemaskStatus, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(status)?);
    } else if status.finished {
        println!(
            "policy v{}: displays complete ({} stored rule(s), {} customer(s) done)",
            status.policy_version, status.rules, status.done
        );
    } else {
        println!(
            "policy v{}: {} customer(s) done; run `veil policy remask` to finish",
            status.policy_version, status.done
        );
    }
    Ok(())
}

async fn user_command(config: &Config, command: UserCommand, json: bool) -> anyhow::Result<()> {
    let veil = open(config).await?;
    match command {
        UserCommand::Add {
            username,
            role,
            team,
            password_stdin,
        } => {
            let role: Role = role
                .parse()
                .map_err(|error: String| anyhow::anyhow!(error))?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (Password::generate(), true)
            };
            let user = veil
                .add_user(&username, role, team.as_deref(), &password)
                .await?;
            if json {
                let mut value = serde_json::to_value(&user)?;
                if generated {
                    value["password"] = serde_json::Value::from(password.expose());
                }
                println!("{value}");
            } else {
                println!("added {} ({}) id {}", user.username, user.role, user.id);
                if generated {
                    println!("password: {}  (shown once)", password.expose());
                }
            }
        }
        UserCommand::List => {
            let users = veil.list_users().await?;
            if json {
                println!("{}", serde_json::to_string(&users)?);
            } else {
                for user in users {
                    println!(
                        "{:<20} {:<8} {:<14} {}{}",
                        user.username,
                        user.role,
                        user.team.as_deref().unwrap_or("-"),
                        user.id,
                        if user.disabled { "  (disabled)" } else { "" }
                    );
                }
            }
        }
        UserCommand::Disable { username } => {
            veil.disable_user(&username).await?;
            println!("disabled {username}; all sessions ended");
        }
        UserCommand::ResetPassword {
            username,
            password_stdin,
        } => {
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (Password::generate(), true)
            };
            veil.reset_password(&username, &password).await?;
            println!("password of {username} reset; all sessions ended");
            if generated {
                println!("password: {}  (shown once)", password.expose());
            }
        }
    }
    Ok(())
}

async fn serve(veil: Arc<Veil>, config: &Config, banner: Option<String>) -> anyhow::Result<()> {
    let listen = config.listen.as_str();
    // Certificate problems are reported before the port is taken.
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "cannot listen on {listen}: the address is already in use; stop the other process or pass --listen HOST:PORT (or set VEIL_LISTEN)"
        ),
        Err(error) => return Err(error).with_context(|| format!("cannot listen on {listen}")),
    };
    let address = listener.local_addr()?;
    // The audit head is signed periodically (truncation evidence), and once more on the way out.
    let checkpoints = Veil::spawn_checkpoints(veil.clone());
    let _monitor = start_monitor(&veil, config)?;
    let doctor = Veil::spawn_doctor(veil.clone(), host_facts(config));
    let expiry = Veil::spawn_grant_expiry(veil.clone());
    let remask = Veil::spawn_remask(veil.clone(), std::time::Duration::from_secs(60));
    // Care reminders: birthdays of customers written before the month and day were stored (once; quick when none).
    let birthday_backfill = Veil::spawn_birthday_backfill(veil.clone());
    // Recommendations: the neighbour lists that purchases changed are recomputed (at start, then every 10 s).
    let neighbour_refresh =
        Veil::spawn_neighbour_refresh(veil.clone(), std::time::Duration::from_secs(10));
    veil.set_sla_targets(config.ticket_sla.clone());
    veil.set_loyalty_rules(config.loyalty.clone());
    veil.set_pool_rules(config.pool.clone());
    let mut messenger = veil_app::messages::Messenger::new(config.messages.clone())
        .map_err(|error| anyhow::anyhow!("invalid message delivery settings: {error}"))?;
    if let Some(url) = &config.public_url {
        messenger = messenger
            .with_public_url(url)
            .map_err(|error| anyhow::anyhow!("invalid VEIL_PUBLIC_URL: {error}"))?;
    }
    veil.set_messenger(messenger.is_configured().then_some(messenger));
    // The customer pool: customers their owner has not followed up go back (checked on a timer).
    let pool_return = config
        .pool_return_interval
        .map(|interval| Veil::spawn_pool_return(veil.clone(), interval));
    let ticket_sla = config
        .ticket_sla_interval
        .map(|interval| Veil::spawn_ticket_sla(veil.clone(), interval));
    let scheduled_backups = config
        .backup_schedule
        .clone()
        .map(|schedule| Veil::spawn_backup_schedule(veil.clone(), schedule));
    let state = veil_http::AppState::new(veil.clone()).with_tls(tls.is_some());
    // Handlers may take `ConnectInfo<SocketAddr>` (the TCP peer) in both modes.
    let app = veil_http::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "Veil listening on {scheme}://{address}  (web UI at /, API under /api/v1, OpenAPI at /api/openapi.json)"
    );
    if let Some(banner) = banner {
        println!("{banner}");
        println!("Try: curl -s {scheme}://{address}/api/v1/auth/login -H 'content-type: application/json' -d '{{\"username\":\"sales\",\"password\":\"…\"}}'");
    }
    tracing::info!(%address, tls = tls.is_some(), "serving");
    match tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server error")?,
        Some(server_config) => {
            let handle = axum_server::Handle::new();
            let on_signal = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                // In-flight requests get this long to finish, as under plain HTTP (where axum waits unbounded).
                on_signal.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
            });
            let rustls =
                axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server_config));
            axum_server::from_tcp_rustls(listener.into_std()?, rustls)
                .context("cannot serve TLS")?
                .handle(handle)
                .serve(app)
                .await
                .context("server error")?
        }
    }
    checkpoints.abort();
    doctor.abort();
    expiry.abort();
    remask.abort();
    birthday_backfill.abort();
    neighbour_refresh.abort();
    if let Some(task) = ticket_sla {
        task.abort();
    }
    if let Some(task) = pool_return {
        task.abort();
    }
    if let Some(task) = scheduled_backups {
        task.abort();
    }
    if let Err(error) = veil.audit_checkpoint().await {
        tracing::error!(%error, "final audit checkpoint failed");
    }
    Ok(())
}

/// Starts the security monitor (unless `VEIL_MONITOR_INTERVAL_SECS=0`) with the configured alert channels.
/// What `veil doctor` needs to know about this host's configuration.
fn host_facts(config: &Config) -> veil_app::doctor::HostFacts {
    veil_app::doctor::HostFacts::from_source(
        &config.master_key,
        config
            .tls
            .as_ref()
            .map(|tls| (tls.cert.clone(), tls.key.clone())),
        &config.listen,
    )
}

fn start_monitor(
    veil: &Arc<Veil>,
    config: &Config,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let notifier = veil_app::monitor::notify::Notifier::new(config.alerts.clone())
        .map_err(|error| anyhow::anyhow!("invalid alert delivery settings: {error}"))?;
    veil.set_notifier(notifier.is_configured().then_some(notifier));
    Ok(config
        .monitor_interval
        .map(|interval| veil_app::monitor::spawn_monitor(veil.clone(), interval)))
}

/// Resolves on Ctrl-C or SIGTERM (service managers), so in-flight requests finish.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
