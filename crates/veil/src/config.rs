//! Configuration: command-line flags > environment variables > `veil.toml` in the data directory > defaults.
//!
//! Every setting is declared once in [`SETTINGS`] (name, environment variable, default, doc); `docs/configuration.md`
//! is checked against it by a test.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use veil_app::backup::{
    archive, BackupSettings, Decryption, Encryption, ObjectLocation, ObjectStorageSettings,
};
use veil_app::keys::Passphrase;
use veil_app::monitor::notify::{EmailTarget, NotifierConfig, Secret, WebhookTarget};
use veil_app::{DatabaseUrl, MasterKeySource};

/// One configuration setting.
pub struct Setting {
    /// Key in `veil.toml` (empty if it cannot be set there).
    pub toml_key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Default, as documented.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// Every setting Veil reads.
pub const SETTINGS: &[Setting] = &[
    Setting {
        toml_key: "",
        env: "VEIL_DATA_DIR",
        default: "./veil-data",
        doc: "Data directory (SQLite database, master key, veil.toml). Flag: --data-dir.",
    },
    Setting {
        toml_key: "database_url",
        env: "VEIL_DATABASE_URL",
        default: "sqlite://<data dir>/veil.db",
        doc: "Database URL; postgres://… selects PostgreSQL. Flag: --database-url. Also VEIL_DATABASE_URL_FILE.",
    },
    Setting {
        toml_key: "listen",
        env: "VEIL_LISTEN",
        default: "127.0.0.1:8080",
        doc: "Address the HTTP server listens on. Flag: --listen.",
    },
    Setting {
        toml_key: "tls_cert",
        env: "VEIL_TLS_CERT",
        default: "unset (plain HTTP)",
        doc: "PEM certificate chain (leaf first); with VEIL_TLS_KEY, serve HTTPS (rustls) and send HSTS. Flag: --tls-cert.",
    },
    Setting {
        toml_key: "tls_key",
        env: "VEIL_TLS_KEY",
        default: "unset",
        doc: "PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate; keep it mode 0600. Flag: --tls-key.",
    },
    Setting {
        toml_key: "master_key_file",
        env: "VEIL_MASTER_KEY_FILE",
        default: "<data dir>/master.key",
        doc: "Master key file (32 random bytes, base64), mode 0600, created by `veil init`.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_MASTER_PASSPHRASE",
        default: "unset",
        doc: "Derive the master key from this passphrase (Argon2id) instead of a key file. Also VEIL_MASTER_PASSPHRASE_FILE.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_MONITOR_INTERVAL_SECS",
        default: "30",
        doc: "Seconds between passes of the security monitor in `veil serve`; 0 turns the monitor off.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_ALERT_WEBHOOK_URL",
        default: "unset (no webhook)",
        doc: "POST each security alert as JSON to this http(s) URL, signed in X-Veil-Signature.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_ALERT_WEBHOOK_SECRET",
        default: "unset",
        doc: "HMAC-SHA256 key of the webhook signature (16+ characters); required with the URL. Also VEIL_ALERT_WEBHOOK_SECRET_FILE.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_ALERT_SMTP_URL",
        default: "unset (no email)",
        doc: "Email alerts through this SMTP server: smtp://[user:pass@]host[:port][?tls=required] or smtps://…. Also VEIL_ALERT_SMTP_URL_FILE.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_ALERT_EMAIL_FROM",
        default: "veil@localhost",
        doc: "Sender address of alert emails.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_ALERT_EMAIL_TO",
        default: "unset",
        doc: "Comma-separated recipients of alert emails; required with the SMTP URL.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_DIR",
        default: "<data dir>/backups",
        doc: "Where `veil backup create` and POST /api/v1/backups write archives (created with mode 0700). Flag: `veil backup create --to DIR`.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_RECIPIENTS",
        default: "unset",
        doc: "Comma-separated age X25519 public keys (age1…) that backups are encrypted to. Either this or VEIL_BACKUP_PASSPHRASE is needed to create backups.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_PASSPHRASE",
        default: "unset",
        doc: "Encrypt (and decrypt) backups with this passphrase (age scrypt) instead of recipients; at least 16 characters. Also VEIL_BACKUP_PASSPHRASE_FILE.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_IDENTITY",
        default: "unset",
        doc: "An age identity file (AGE-SECRET-KEY-1… lines, mode 0600) that decrypts backups for `veil backup verify/restore`. Keep it off the server when you can.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_MAX_AGE_DAYS",
        default: "7",
        doc: "`veil doctor` fails its backup_age check when the newest verified backup is older than this many days.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_SCHEDULE",
        default: "unset (no scheduled backups)",
        doc: "Cron expression (5 fields, UTC), e.g. `0 2 * * *`: `veil serve` then takes a backup (to S3 when configured), verifies it by restoring it into a scratch database, alerts on failure, and applies the retention below.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_KEEP_DAILY",
        default: "7",
        doc: "Scheduled-backup retention: keep the newest backup of each of this many days.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_KEEP_WEEKLY",
        default: "4",
        doc: "Scheduled-backup retention: keep the newest backup of each of this many ISO weeks.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_KEEP_MONTHLY",
        default: "12",
        doc: "Scheduled-backup retention: keep the newest backup of each of this many months.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_S3_URL",
        default: "unset",
        doc: "S3-compatible object storage for backups, s3://bucket/prefix: `veil backup create --to s3` uploads there (multipart; catalogued only once complete).",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_S3_ENDPOINT",
        default: "unset (AWS)",
        doc: "Endpoint of an S3-compatible server (MinIO, Ceph, …), e.g. https://minio.internal:9000.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_S3_REGION",
        default: "us-east-1",
        doc: "Region of the bucket (used for request signing).",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_S3_ACCESS_KEY_ID",
        default: "unset",
        doc: "Access key id for object storage; without one, AWS instance credentials are tried.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_S3_SECRET_ACCESS_KEY",
        default: "unset",
        doc: "Secret access key for object storage. Also VEIL_BACKUP_S3_SECRET_ACCESS_KEY_FILE.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_BACKUP_S3_ALLOW_HTTP",
        default: "false",
        doc: "Allow a plain http:// endpoint (local test servers only).",
    },
    Setting {
        toml_key: "",
        env: "VEIL_TICKET_SLA",
        default: veil_app::tickets::DEFAULT_SLA,
        doc: "Ticket SLA targets per priority, PRIORITY=FIRST_RESPONSE/RESOLUTION (durations in s, m, h, d); priorities left out keep their defaults. Applies to tickets opened (or re-prioritised) afterwards.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_TICKET_SLA_INTERVAL_SECS",
        default: "60",
        doc: "Seconds between passes of the ticket SLA job in `veil serve` (finds missed targets, escalates, alerts); 0 turns it off.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_LOYALTY_POINTS_PER_YUAN",
        default: "1",
        doc: "Loyalty points a paid order earns per yuan (100 fen) of its total, before the tier bonus; 0 turns earning off.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_LOYALTY_EXPIRY_DAYS",
        default: "365",
        doc: "Days after which earned loyalty points expire; 0: they never do. Applies to points earned afterwards.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_LOYALTY_TIERS",
        default: veil_app::loyalty::DEFAULT_TIERS,
        doc: "Membership tiers by lifetime points, NAME=THRESHOLD[+BONUS] (BONUS: extra points in percent); one tier must start at 0.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_POOL_CLAIM_LIMIT",
        default: "50",
        doc: "Most customers one person may hold from the customer pool (claimed and still theirs); 0: no limit.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_POOL_RETURN_DAYS",
        default: "30",
        doc: "A salesperson's customer with no follow-up by its owner (interaction, note, ticket, ticket comment, order, message) for this many days goes back to the pool; 0 turns the return off.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_POOL_RETURN_INTERVAL_SECS",
        default: "3600",
        doc: "Seconds between passes of the pool return job in `veil serve`; 0 turns the job off.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_MESSAGE_SMTP_URL",
        default: "unset (no e-mail to customers)",
        doc: "Send template e-mails to customers through this SMTP server: smtp://[user:pass@]host[:port][?tls=required] or smtps://…. Also VEIL_MESSAGE_SMTP_URL_FILE.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_MESSAGE_EMAIL_FROM",
        default: "veil@localhost",
        doc: "Sender address of e-mails to customers.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_SMS_WEBHOOK_URL",
        default: "unset (no SMS)",
        doc: "Send SMS by POSTing {\"id\", \"to\", \"text\"} as JSON to this http(s) URL (an SMS provider's adapter), signed in X-Veil-Signature.",
    },
    Setting {
        toml_key: "",
        env: "VEIL_SMS_WEBHOOK_SECRET",
        default: "unset",
        doc: "HMAC-SHA256 key of the SMS webhook signature (16+ characters); required with the URL. Also VEIL_SMS_WEBHOOK_SECRET_FILE.",
    },
    Setting {
        toml_key: "public_url",
        env: "VEIL_PUBLIC_URL",
        default: "unset (survey links cannot be sent)",
        doc: "The address customers reach this server at (e.g. https://crm.example.com): survey links sent by e-mail or SMS start with it.",
    },
    Setting {
        toml_key: "log",
        env: "VEIL_LOG",
        default: "info",
        doc: "Log filter (tracing EnvFilter syntax, e.g. `info,veil_http=debug`).",
    },
];

/// The configuration table for `veil --help`, generated from [`SETTINGS`].
pub fn settings_help() -> String {
    let mut out = String::from(
        "Configuration (flags > environment > veil.toml in the data dir > defaults):\n",
    );
    for setting in SETTINGS {
        let toml = if setting.toml_key.is_empty() {
            String::new()
        } else {
            format!(" (veil.toml: {})", setting.toml_key)
        };
        out.push_str(&format!(
            "  {}{toml}\n      {} [default: {}]\n",
            setting.env, setting.doc, setting.default
        ));
    }
    out
}

/// Environment variables Veil knows besides [`SETTINGS`] (the `_FILE` variants and the test database).
const OTHER_KNOWN_ENV: &[&str] = &[
    "VEIL_DATABASE_URL_FILE",
    "VEIL_MASTER_PASSPHRASE_FILE",
    "VEIL_TEST_DATABASE_URL",
    "VEIL_NEW_MASTER_PASSPHRASE",
    "VEIL_EXPORT_PASSPHRASE",
    "VEIL_ALERT_WEBHOOK_SECRET_FILE",
    "VEIL_ALERT_SMTP_URL_FILE",
    "VEIL_BACKUP_PASSPHRASE_FILE",
    "VEIL_BACKUP_S3_SECRET_ACCESS_KEY_FILE",
    "VEIL_MESSAGE_SMTP_URL_FILE",
    "VEIL_SMS_WEBHOOK_SECRET_FILE",
    crate::backup_cmd::PAUSE_AT,
];

/// `veil.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlConfig {
    database_url: Option<String>,
    listen: Option<String>,
    master_key_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    public_url: Option<String>,
    log: Option<String>,
}

/// Values given on the command line (already merged with the environment by clap).
#[derive(Debug, Default)]
pub struct Overrides {
    /// --data-dir / VEIL_DATA_DIR.
    pub data_dir: Option<PathBuf>,
    /// --database-url / VEIL_DATABASE_URL.
    pub database_url: Option<String>,
    /// --listen / VEIL_LISTEN.
    pub listen: Option<String>,
    /// --tls-cert / VEIL_TLS_CERT.
    pub tls_cert: Option<PathBuf>,
    /// --tls-key / VEIL_TLS_KEY.
    pub tls_key: Option<PathBuf>,
}

/// The certificate and key files of `veil serve` over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL (password redacted in Debug/Display).
    pub database_url: DatabaseUrl,
    /// Listen address.
    pub listen: String,
    /// Serve HTTPS with these files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Where the master key comes from.
    pub master_key: MasterKeySource,
    /// The key file path, when the key comes from a file.
    pub master_key_file: PathBuf,
    /// Log filter.
    pub log: String,
    /// Time between security monitor passes; `None` when the monitor is off.
    pub monitor_interval: Option<std::time::Duration>,
    /// Where security alerts are delivered besides the in-app list.
    pub alerts: NotifierConfig,
    /// Backup destination, encryption and decryption.
    pub backup: BackupSettings,
    /// Scheduled backups, when `VEIL_BACKUP_SCHEDULE` is set.
    pub backup_schedule: Option<veil_app::backup::schedule::BackupSchedule>,
    /// Ticket SLA targets per priority.
    pub ticket_sla: veil_app::tickets::SlaTargets,
    /// Time between passes of the ticket SLA job; `None` when it is off.
    pub ticket_sla_interval: Option<std::time::Duration>,
    /// Points, expiry and tiers of the loyalty programme.
    pub loyalty: veil_app::loyalty::LoyaltyRules,
    /// The customer pool's claim limit and return period.
    pub pool: veil_app::pool::PoolRules,
    /// Time between passes of the pool return job; `None` when it is off.
    pub pool_return_interval: Option<std::time::Duration>,
    /// How messages to customers are sent.
    pub messages: veil_app::messages::MessengerConfig,
    /// The address customers reach the server at (survey links), normalised.
    pub public_url: Option<String>,
}

fn pool_rules() -> anyhow::Result<veil_app::pool::PoolRules> {
    let mut rules = veil_app::pool::PoolRules::default();
    if let Some(text) = env_value("VEIL_POOL_CLAIM_LIMIT")? {
        rules.claim_limit = text
            .trim()
            .parse()
            .ok()
            .filter(|limit| *limit <= 100_000)
            .context("VEIL_POOL_CLAIM_LIMIT must be a whole number from 0 to 100000")?;
    }
    if let Some(text) = env_value("VEIL_POOL_RETURN_DAYS")? {
        rules.return_days = text
            .trim()
            .parse()
            .ok()
            .filter(|days| *days <= 3650)
            .context("VEIL_POOL_RETURN_DAYS must be a whole number of days from 0 to 3650")?;
    }
    Ok(rules)
}

/// The channels of messages to customers from the environment.
fn message_channels() -> anyhow::Result<veil_app::messages::MessengerConfig> {
    use veil_app::messages::{MessengerConfig, SmsWebhookTarget};
    let sms_webhook = match (
        env_value("VEIL_SMS_WEBHOOK_URL")?,
        secret_env_value("VEIL_SMS_WEBHOOK_SECRET")?,
    ) {
        (None, None) => None,
        (Some(url), Some(secret)) => Some(SmsWebhookTarget {
            url,
            secret: Secret::new(secret),
        }),
        (Some(_), None) => {
            bail!("VEIL_SMS_WEBHOOK_URL is set without VEIL_SMS_WEBHOOK_SECRET: the webhook must be signed")
        }
        (None, Some(_)) => bail!("VEIL_SMS_WEBHOOK_SECRET is set without VEIL_SMS_WEBHOOK_URL"),
    };
    Ok(MessengerConfig {
        smtp_url: secret_env_value("VEIL_MESSAGE_SMTP_URL")?.map(Secret::new),
        email_from: env_value("VEIL_MESSAGE_EMAIL_FROM")?,
        sms_webhook,
    })
}

fn loyalty_rules() -> anyhow::Result<veil_app::loyalty::LoyaltyRules> {
    let mut rules = veil_app::loyalty::LoyaltyRules::default();
    if let Some(text) = env_value("VEIL_LOYALTY_POINTS_PER_YUAN")? {
        rules.points_per_yuan = text
            .trim()
            .parse()
            .ok()
            .filter(|rate| (0..=10_000).contains(rate))
            .context("VEIL_LOYALTY_POINTS_PER_YUAN must be a whole number from 0 to 10000")?;
    }
    if let Some(text) = env_value("VEIL_LOYALTY_EXPIRY_DAYS")? {
        rules.expiry_days = text
            .trim()
            .parse()
            .ok()
            .filter(|days| (0..=36_500).contains(days))
            .context("VEIL_LOYALTY_EXPIRY_DAYS must be a whole number of days from 0 to 36500")?;
    }
    if let Some(text) = env_value("VEIL_LOYALTY_TIERS")? {
        rules.tiers = veil_app::loyalty::parse_tiers(&text)
            .map_err(|error| anyhow::anyhow!("invalid VEIL_LOYALTY_TIERS: {error}"))?;
    }
    Ok(rules)
}

fn backup_schedule() -> anyhow::Result<Option<veil_app::backup::schedule::BackupSchedule>> {
    let Some(cron) = env_value("VEIL_BACKUP_SCHEDULE")? else {
        return Ok(None);
    };
    let count = |name: &str, default: usize| -> anyhow::Result<usize> {
        match env_value(name)? {
            None => Ok(default),
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| anyhow::anyhow!("{name} must be a whole number")),
        }
    };
    let schedule = veil_app::backup::schedule::BackupSchedule {
        cron,
        keep_daily: count("VEIL_BACKUP_KEEP_DAILY", 7)?,
        keep_weekly: count("VEIL_BACKUP_KEEP_WEEKLY", 4)?,
        keep_monthly: count("VEIL_BACKUP_KEEP_MONTHLY", 12)?,
    };
    schedule
        .validate()
        .map_err(|error| anyhow::anyhow!(error))?;
    Ok(Some(schedule))
}

fn env_value(name: &str) -> anyhow::Result<Option<String>> {
    Ok(std::env::var(name).ok().filter(|value| !value.is_empty()))
}

/// A secret setting: from `NAME`, or from the file named by `NAME_FILE` (Docker/Kubernetes secrets).
fn secret_env_value(name: &str) -> anyhow::Result<Option<String>> {
    if let Some(value) = env_value(name)? {
        return Ok(Some(value));
    }
    let file_variable = format!("{name}_FILE");
    if let Ok(path) = std::env::var(&file_variable) {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {file_variable}={path}"))?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
    }
    Ok(None)
}

/// Names of `VEIL_*` variables in the environment that Veil does not know (probably typos).
pub fn unknown_env_vars() -> Vec<String> {
    std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("VEIL_"))
        .filter(|name| {
            !SETTINGS.iter().any(|setting| setting.env == name)
                && !OTHER_KNOWN_ENV.contains(&name.as_str())
        })
        .collect()
}

fn read_toml(data_dir: &Path) -> anyhow::Result<TomlConfig> {
    let path = data_dir.join("veil.toml");
    match std::fs::read_to_string(&path) {
        // toml's own message quotes the offending line, which may hold a database password: report the
        // position and the problem only.
        Ok(text) => toml::from_str(&text).map_err(|error: toml::de::Error| {
            let line = error
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1))
                .unwrap_or(0);
            anyhow::anyhow!(
                "invalid {} (line {line}): {}",
                path.display(),
                error.message()
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(TomlConfig::default()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The alert delivery channels from the environment.
fn alert_channels() -> anyhow::Result<NotifierConfig> {
    let webhook = match (
        env_value("VEIL_ALERT_WEBHOOK_URL")?,
        secret_env_value("VEIL_ALERT_WEBHOOK_SECRET")?,
    ) {
        (None, None) => None,
        (Some(url), Some(secret)) => Some(WebhookTarget {
            url,
            secret: Secret::new(secret),
        }),
        (Some(_), None) => bail!(
            "VEIL_ALERT_WEBHOOK_URL is set without VEIL_ALERT_WEBHOOK_SECRET: the webhook must be signed"
        ),
        (None, Some(_)) => bail!("VEIL_ALERT_WEBHOOK_SECRET is set without VEIL_ALERT_WEBHOOK_URL"),
    };
    let email = match secret_env_value("VEIL_ALERT_SMTP_URL")? {
        None => None,
        Some(url) => Some(EmailTarget {
            smtp_url: Secret::new(url),
            from: env_value("VEIL_ALERT_EMAIL_FROM")?
                .unwrap_or_else(|| "veil@localhost".to_owned()),
            to: env_value("VEIL_ALERT_EMAIL_TO")?
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|address| !address.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }),
    };
    Ok(NotifierConfig { webhook, email })
}

/// The backup settings from the environment.
fn backup_settings(data_dir: &Path) -> anyhow::Result<BackupSettings> {
    use age::secrecy::SecretString;
    let directory = env_value("VEIL_BACKUP_DIR")?
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("backups"));
    let passphrase = secret_env_value("VEIL_BACKUP_PASSPHRASE")?;
    if passphrase
        .as_ref()
        .is_some_and(|passphrase| passphrase.chars().count() < 16)
    {
        bail!("VEIL_BACKUP_PASSPHRASE must be at least 16 characters");
    }
    let recipients = match env_value("VEIL_BACKUP_RECIPIENTS")? {
        Some(list) => Some(
            archive::parse_recipients(&list)
                .map_err(|problem| anyhow::anyhow!("VEIL_BACKUP_RECIPIENTS: {problem}"))?,
        ),
        None => None,
    };
    let encryption = match (recipients, &passphrase) {
        (Some(_), Some(_)) => bail!(
            "set VEIL_BACKUP_RECIPIENTS or VEIL_BACKUP_PASSPHRASE, not both: a backup is encrypted one way"
        ),
        (Some(recipients), None) => Some(Encryption::Recipients(recipients)),
        (None, Some(passphrase)) => Some(Encryption::Passphrase(SecretString::from(passphrase.clone()))),
        (None, None) => None,
    };
    let decryption = match env_value("VEIL_BACKUP_IDENTITY")? {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read VEIL_BACKUP_IDENTITY={path}"))?;
            Some(Decryption::Identities(SecretString::from(text)))
        }
        None => passphrase.map(|passphrase| Decryption::Passphrase(SecretString::from(passphrase))),
    };
    let max_age_days = match env_value("VEIL_BACKUP_MAX_AGE_DAYS")? {
        None => veil_app::backup::DEFAULT_MAX_AGE_DAYS,
        Some(text) => match text.parse::<i64>() {
            Ok(days) if days > 0 => days,
            _ => bail!("VEIL_BACKUP_MAX_AGE_DAYS must be a whole number of days above 0"),
        },
    };
    Ok(BackupSettings {
        directory,
        encryption,
        decryption,
        max_age_days,
        object_storage: object_storage_settings()?,
    })
}

/// The object-storage settings, when any `VEIL_BACKUP_S3_*` setting is present.
fn object_storage_settings() -> anyhow::Result<Option<ObjectStorageSettings>> {
    use age::secrecy::SecretString;
    let url = env_value("VEIL_BACKUP_S3_URL")?;
    if let Some(url) = &url {
        if ObjectLocation::parse(url).is_none() {
            bail!("VEIL_BACKUP_S3_URL must be s3://bucket/prefix, not {url}");
        }
    }
    let endpoint = env_value("VEIL_BACKUP_S3_ENDPOINT")?;
    let region = env_value("VEIL_BACKUP_S3_REGION")?;
    let access_key_id = env_value("VEIL_BACKUP_S3_ACCESS_KEY_ID")?;
    let secret_access_key = secret_env_value("VEIL_BACKUP_S3_SECRET_ACCESS_KEY")?;
    let allow_http = match env_value("VEIL_BACKUP_S3_ALLOW_HTTP")?.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => bail!("VEIL_BACKUP_S3_ALLOW_HTTP must be true or false, not {other}"),
    };
    if access_key_id.is_some() != secret_access_key.is_some() {
        bail!("set both VEIL_BACKUP_S3_ACCESS_KEY_ID and VEIL_BACKUP_S3_SECRET_ACCESS_KEY, or neither");
    }
    if url.is_none() && endpoint.is_none() && access_key_id.is_none() {
        return Ok(None);
    }
    Ok(Some(ObjectStorageSettings {
        url,
        endpoint,
        region: region.unwrap_or_else(|| "us-east-1".to_owned()),
        access_key_id,
        secret_access_key: secret_access_key.map(SecretString::from),
        allow_http,
    }))
}

impl Config {
    /// Resolves every setting.
    pub fn resolve(overrides: Overrides) -> anyhow::Result<Config> {
        let data_dir = overrides
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./veil-data"));
        let file = read_toml(&data_dir)?;
        let database_url = match overrides
            .database_url
            .or(secret_env_value("VEIL_DATABASE_URL")?)
        {
            Some(url) => url,
            None => match file.database_url {
                Some(url) => url,
                None => format!("sqlite://{}", data_dir.join("veil.db").display()),
            },
        };
        let database_url = DatabaseUrl::new(database_url);
        if database_url.backend().is_none() {
            bail!("unsupported database URL {database_url}: use sqlite://PATH or postgres://USER@HOST/DB");
        }
        let listen = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        // A relative key path in veil.toml is relative to the data directory, not the working directory.
        let master_key_file = env_value("VEIL_MASTER_KEY_FILE")?
            .map(PathBuf::from)
            .or(file.master_key_file.map(|path| data_dir.join(path)))
            .unwrap_or_else(|| data_dir.join("master.key"));
        let master_key = match secret_env_value("VEIL_MASTER_PASSPHRASE")? {
            Some(passphrase) => {
                if passphrase.chars().count() < 12 {
                    bail!("VEIL_MASTER_PASSPHRASE must be at least 12 characters");
                }
                MasterKeySource::Passphrase(Passphrase::new(passphrase))
            }
            None => MasterKeySource::File(master_key_file.clone()),
        };
        // Relative paths in veil.toml are relative to the data directory, like the key file.
        let tls_cert = overrides
            .tls_cert
            .or(file.tls_cert.map(|path| data_dir.join(path)));
        let tls_key = overrides
            .tls_key
            .or(file.tls_key.map(|path| data_dir.join(path)));
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => bail!(
                "a TLS certificate was given without its key: pass --tls-key PATH (or set VEIL_TLS_KEY)"
            ),
            (None, Some(_)) => bail!(
                "a TLS key was given without its certificate: pass --tls-cert PATH (or set VEIL_TLS_CERT)"
            ),
        };
        let log = env_value("VEIL_LOG")?
            .or(file.log)
            .unwrap_or_else(|| "info".to_owned());
        let monitor_interval = match env_value("VEIL_MONITOR_INTERVAL_SECS")? {
            None => Some(std::time::Duration::from_secs(30)),
            Some(text) => match text.parse::<u64>() {
                Ok(0) => None,
                Ok(seconds) => Some(std::time::Duration::from_secs(seconds)),
                Err(_) => bail!("VEIL_MONITOR_INTERVAL_SECS must be a whole number of seconds"),
            },
        };
        let ticket_sla = match env_value("VEIL_TICKET_SLA")? {
            None => veil_app::tickets::SlaTargets::default(),
            Some(text) => veil_app::tickets::SlaTargets::parse(&text)
                .map_err(|error| anyhow::anyhow!("invalid VEIL_TICKET_SLA: {error}"))?,
        };
        let ticket_sla_interval = match env_value("VEIL_TICKET_SLA_INTERVAL_SECS")? {
            None => Some(std::time::Duration::from_secs(60)),
            Some(text) => match text.parse::<u64>() {
                Ok(0) => None,
                Ok(seconds) => Some(std::time::Duration::from_secs(seconds)),
                Err(_) => bail!("VEIL_TICKET_SLA_INTERVAL_SECS must be a whole number of seconds"),
            },
        };
        let loyalty = loyalty_rules()?;
        let pool = pool_rules()?;
        let pool_return_interval = match env_value("VEIL_POOL_RETURN_INTERVAL_SECS")? {
            None => Some(std::time::Duration::from_secs(3600)),
            Some(text) => match text.parse::<u64>() {
                Ok(0) => None,
                Ok(seconds) => Some(std::time::Duration::from_secs(seconds)),
                Err(_) => bail!("VEIL_POOL_RETURN_INTERVAL_SECS must be a whole number of seconds"),
            },
        };
        let messages = message_channels()?;
        let public_url = match env_value("VEIL_PUBLIC_URL")?.or(file.public_url) {
            None => None,
            Some(url) => Some(
                veil_app::messages::normalise_public_url(&url)
                    .map_err(|problem| anyhow::anyhow!("VEIL_PUBLIC_URL {problem}"))?,
            ),
        };
        let alerts = alert_channels()?;
        let backup = backup_settings(&data_dir)?;
        let backup_schedule = backup_schedule()?;
        Ok(Config {
            loyalty,
            pool,
            pool_return_interval,
            messages,
            public_url,
            backup,
            backup_schedule,
            ticket_sla,
            ticket_sla_interval,
            monitor_interval,
            alerts,
            data_dir,
            database_url,
            listen,
            tls,
            master_key,
            master_key_file,
            log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_is_read_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("veil.toml"),
            "listen = \"127.0.0.1:9999\"\ndatabase_url = \"sqlite://elsewhere.db\"\n",
        )
        .unwrap();
        let from_file = Config::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(from_file.listen, "127.0.0.1:9999");
        let flagged = Config::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            listen: Some("127.0.0.1:7000".to_owned()),
            database_url: Some("sqlite://flag.db".to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(flagged.listen, "127.0.0.1:7000");
        assert_eq!(flagged.database_url.expose(), "sqlite://flag.db");
    }

    #[test]
    fn defaults_follow_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(config.master_key_file, dir.path().join("master.key"));
        assert_eq!(config.listen, "127.0.0.1:8080");
        assert_eq!(config.tls, None);
    }

    #[test]
    fn unknown_toml_keys_and_bad_urls_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("veil.toml"), "lisen = \"x\"\n").unwrap();
        let error = Config::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(format!("{error:#}").contains("veil.toml"), "{error:#}");
        let other = tempfile::tempdir().unwrap();
        let error = Config::resolve(Overrides {
            data_dir: Some(other.path().to_owned()),
            database_url: Some("mysql://u:secret@h/db".to_owned()),
            ..Overrides::default()
        })
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("unsupported database URL"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn tls_files_come_in_pairs_and_toml_paths_follow_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("veil.toml"),
            "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
        )
        .unwrap();
        let from_file = Config::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(
            from_file.tls,
            Some(TlsFiles {
                cert: dir.path().join("cert.pem"),
                key: dir.path().join("key.pem"),
            })
        );
        let flagged = Config::resolve(Overrides {
            data_dir: Some(dir.path().to_owned()),
            tls_cert: Some(PathBuf::from("/etc/veil/cert.pem")),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(
            flagged.tls.unwrap().cert,
            PathBuf::from("/etc/veil/cert.pem")
        );
        let other = tempfile::tempdir().unwrap();
        let error = Config::resolve(Overrides {
            data_dir: Some(other.path().to_owned()),
            tls_cert: Some(PathBuf::from("cert.pem")),
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(format!("{error:#}").contains("--tls-key"), "{error:#}");
        let error = Config::resolve(Overrides {
            data_dir: Some(other.path().to_owned()),
            tls_key: Some(PathBuf::from("key.pem")),
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(format!("{error:#}").contains("--tls-cert"), "{error:#}");
    }

    #[test]
    fn every_setting_is_documented() {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
        )
        .expect("docs/configuration.md exists");
        for setting in SETTINGS {
            assert!(
                doc.contains(setting.env),
                "{} missing from docs/configuration.md",
                setting.env
            );
            if !setting.toml_key.is_empty() {
                assert!(
                    doc.contains(setting.toml_key),
                    "{} missing",
                    setting.toml_key
                );
            }
        }
    }
}
