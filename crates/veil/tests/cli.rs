//! The `veil` binary as a user runs it: start-up errors with their fixes, init, pure PII commands.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn veil(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("VEIL_DATABASE_URL")
        .env_remove("VEIL_MASTER_PASSPHRASE")
        .env_remove("VEIL_MASTER_KEY_FILE")
        .env("VEIL_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run veil")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn init_creates_a_private_key_and_prints_the_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = veil(&data, &["init"]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("first admin: admin / "),
        "{}",
        text(&first)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let second = veil(&data, &["init"]);
    assert!(second.status.success());
    assert!(text(&second).contains("already initialised"));
    assert!(!text(&second).contains("first admin"));
    let users = veil(&data, &["--format", "json", "user", "list"]);
    let listed: serde_json::Value = serde_json::from_slice(&users.stdout).unwrap();
    assert_eq!(listed[0]["username"], "admin");
    assert_eq!(listed[0]["role"], "admin");
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let key = data.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = veil(&data, &["user", "list"]);
    assert!(!refused.status.success());
    let message = text(&refused);
    assert!(
        message.contains("accessible by group or others"),
        "{message}"
    );
    assert!(
        message.contains(&format!("chmod 600 {}", key.display())),
        "{message}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(veil(&data, &["user", "list"]).status.success());
}

#[test]
fn a_missing_key_or_database_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = veil(&dir.path().join("empty"), &["user", "list"]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("veil init"), "{}", text(&missing));
}

#[test]
fn a_wrong_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let other = dir.path().join("other");
    assert!(veil(&other, &["init"]).status.success());
    let output = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["--data-dir"])
        .arg(&data)
        .args(["user", "list"])
        .env("VEIL_MASTER_KEY_FILE", other.join("master.key"))
        .env_remove("VEIL_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("master key does not match"),
        "{}",
        text(&output)
    );
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let output = veil(
        dir.path(),
        &[
            "--database-url",
            "postgres://veil:hunter2secret@127.0.0.1:1/veil",
            "migrate",
        ],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("cannot connect to the database"),
        "{message}"
    );
    assert!(
        message.contains("postgres://veil:***@127.0.0.1:1/veil"),
        "{message}"
    );
    assert!(!message.contains("hunter2secret"), "{message}");
}

#[test]
fn a_port_in_use_is_reported_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = veil(&data, &["serve", "--listen", &address]);
    assert!(!output.status.success());
    let message = text(&output);
    assert!(message.contains("already in use"), "{message}");
    assert!(message.contains("--listen"), "{message}");
}

#[test]
fn pii_validate_exit_codes_and_details() {
    let dir = tempfile::tempdir().unwrap();
    let valid = veil(
        dir.path(),
        &[
            "--format",
            "json",
            "pii",
            "validate",
            "--kind",
            "cn_id",
            "11010119840227615X",
        ],
    );
    // 11010119840227615X has a wrong check digit (the right one is 1).
    assert_eq!(valid.status.code(), Some(1), "{}", text(&valid));
    let ok = veil(
        dir.path(),
        &[
            "--format",
            "json",
            "pii",
            "validate",
            "--kind",
            "cn_id",
            "110101198402276151",
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let details: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(details["details"]["birth_date"], "1984-02-27");
    assert_eq!(details["details"]["sex"], "male");
    assert_eq!(details["details"]["region_code"], "110101");
    assert_eq!(details["masked"], "110101********6151");
    let mobile = veil(
        dir.path(),
        &["mask", "--kind", "cn_mobile", "+86 138 1234 5678"],
    );
    assert_eq!(
        String::from_utf8_lossy(&mobile.stdout).trim(),
        "138****5678"
    );
    let junk = veil(dir.path(), &["mask", "--kind", "cn_mobile", "hello"]);
    assert!(!String::from_utf8_lossy(&junk.stdout).contains("hello"));
    let unknown = veil(dir.path(), &["pii", "validate", "--kind", "nope", "x"]);
    assert!(!unknown.status.success());
}

#[test]
fn master_key_rotation_swaps_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["demo", "--no-serve", "--customers", "20"])
        .status
        .success());
    let old_key = std::fs::read(data.join("master.key")).unwrap();
    let rotated = veil(&data, &["keys", "rotate-master"]);
    assert!(rotated.status.success(), "{}", text(&rotated));
    let new_key = std::fs::read(data.join("master.key")).unwrap();
    assert_ne!(old_key, new_key);
    let retired: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("master.key.retired-")
        })
        .collect();
    assert_eq!(retired.len(), 1);
    assert_eq!(std::fs::read(retired[0].path()).unwrap(), old_key);
    // Everything opens under the new key, and a KEK rotation re-wraps all 20 data keys.
    let status = veil(&data, &["keys", "rotate"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("20 data keys re-wrapped"),
        "{}",
        text(&status)
    );
    let json = veil(&data, &["--format", "json", "keys", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(status["current_kek_version"], 2);
    assert_eq!(status["kek_versions"][0]["state"], "retired");
}

#[test]
fn pii_scan_reports_character_offsets_and_masks_lines() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("notes.txt");
    let mut file = std::fs::File::create(&input).unwrap();
    writeln!(file, "客户电话13812345678，身份证110101198402276151").unwrap();
    writeln!(file, "订单号20261129138123456789已发货").unwrap();
    drop(file);
    let json = veil(
        dir.path(),
        &["--format", "json", "pii", "scan", input.to_str().unwrap()],
    );
    assert!(json.status.success(), "{}", text(&json));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 1);
    let spans = lines[0]["spans"].as_array().unwrap();
    assert_eq!(spans[0]["kind"], "cn_mobile");
    assert_eq!(
        (spans[0]["start"].as_u64(), spans[0]["end"].as_u64()),
        (Some(4), Some(15))
    );
    assert_eq!(spans[0]["masked"], "138****5678");
    assert_eq!(spans[1]["kind"], "cn_id");
    assert_eq!(spans[1]["masked"], "110101********6151");
    assert_eq!(
        lines[1]["spans"],
        serde_json::json!([]),
        "a mobile inside an order number is not a mobile"
    );
    let masked = veil(dir.path(), &["pii", "scan", input.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&masked.stdout);
    assert!(
        out.contains("客户电话138****5678，身份证110101********6151"),
        "{out}"
    );
    assert!(!out.lines().next().unwrap().contains("13812345678"));
}

#[test]
fn policy_show_set_and_preview() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let shown = veil(&data, &["--format", "json", "policy", "show"]);
    let state: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(state["version"], 0);
    let mut document = state["document"].clone();
    document["fields"]["birth_date"]["roles"] =
        serde_json::json!({"sales": {"op": "generalize", "to": "year"}});
    let file = dir.path().join("policy.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let set = veil(
        &data,
        &[
            "policy",
            "set",
            file.to_str().unwrap(),
            "--reason",
            "sales see birth years only",
        ],
    );
    assert!(set.status.success(), "{}", text(&set));
    assert!(text(&set).contains("v1"), "{}", text(&set));
    let preview = veil(
        &data,
        &["--format", "json", "policy", "preview", "--role", "sales"],
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&preview.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let birth = rows
        .iter()
        .find(|row| row["field"] == "birth_date")
        .unwrap();
    assert_eq!(birth["operator"], "generalize");
    assert_eq!(birth["shown"].as_str().unwrap().len(), 4, "{birth}");
    let phone = rows.iter().find(|row| row["field"] == "phone").unwrap();
    assert!(phone["shown"].as_str().unwrap().contains("****"), "{phone}");
    // A broken document is refused and nothing is recorded.
    std::fs::write(&file, "{\"schema\": 1}").unwrap();
    let refused = veil(
        &data,
        &["policy", "set", file.to_str().unwrap(), "--reason", "oops"],
    );
    assert!(!refused.status.success());
    let shown = veil(&data, &["--format", "json", "policy", "show"]);
    let state: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(state["version"], 1);
}

/// A self-signed certificate for `localhost`, written as PEM files into `dir`.
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key, generated.cert.der().to_vec())
}

/// One HTTP/1.1 request over TLS, trusting only `trusted` (DER); the raw response.
fn https_get(port: u16, path: &str, trusted: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(trusted.to_vec()))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        // A peer that closes without close_notify: the response is complete all the same.
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
        }
        Err(error) => return Err(error),
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[test]
fn serve_over_tls_sends_hsts_refuses_plain_http_and_stops_on_sigterm() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let (cert, key, der) = self_signed(dir.path());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_veil"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env_remove("VEIL_DATABASE_URL")
        .env_remove("VEIL_MASTER_PASSPHRASE")
        .env_remove("VEIL_MASTER_KEY_FILE")
        .env("VEIL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let response = loop {
        match https_get(port, "/healthz", &der) {
            Ok(response) => break response,
            Err(error) => {
                if started.elapsed() > std::time::Duration::from_secs(60) {
                    let _ = server.kill();
                    panic!("no HTTPS answer: {error}");
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    let lowercase = response.to_ascii_lowercase();
    let checks = [
        response.starts_with("HTTP/1.1 200"),
        lowercase.contains("strict-transport-security: max-age=31536000"),
        lowercase.contains("content-security-policy: default-src 'self'"),
    ];

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);

    // SIGTERM: graceful shutdown, exit 0.
    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = server.kill();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stdout = String::new();
    server
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(checks.iter().all(|passed| *passed), "{response}");
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1"),
        "plain HTTP was answered: {answer:?}"
    );
    assert!(terminated.success());
    assert!(
        status.is_some_and(|status| status.success()),
        "no clean exit on SIGTERM: {status:?}"
    );
    assert!(
        stdout.contains(&format!("https://127.0.0.1:{port}")),
        "{stdout}"
    );
}

#[test]
fn tls_start_up_errors_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let (cert, _, _) = self_signed(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (_, foreign_key, _) = self_signed(other.path());
    let missing = dir.path().join("missing.pem");
    let cert = cert.to_str().unwrap();
    for (args, expected) in [
        (vec!["--tls-cert", cert], "pass --tls-key PATH"),
        (
            vec!["--tls-cert", missing.to_str().unwrap(), "--tls-key", cert],
            "cannot read the TLS certificate",
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", cert],
            "holds no private key",
        ),
        (
            vec![
                "--tls-cert",
                cert,
                "--tls-key",
                foreign_key.to_str().unwrap(),
            ],
            "does not belong to the certificate",
        ),
    ] {
        let mut full = vec!["serve", "--listen", "127.0.0.1:0"];
        full.extend(args);
        let output = veil(&data, &full);
        assert!(!output.status.success(), "{expected}");
        let message = text(&output);
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains("PRIVATE KEY-----\n"), "{message}");
    }
}

/// Runs SQL on the SQLite file directly, as someone with access to the file (not the application) could.
fn tamper(database: &Path, sql: &str) {
    use veil_store::sqlx::{self, Connection};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", database.display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
        connection.close().await.unwrap();
    });
}

#[test]
fn audit_verify_export_and_tamper_detection() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["demo", "--no-serve", "--customers", "30"])
        .status
        .success());
    let checkpoint = veil(&data, &["audit", "checkpoint"]);
    assert!(checkpoint.status.success(), "{}", text(&checkpoint));
    let verified = veil(&data, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    // The self-check: one line per check; the demo has no backup and no MFA, so it fails (exit 1).
    let doctor = veil(&data, &["doctor"]);
    assert_eq!(doctor.status.code(), Some(1), "{}", text(&doctor));
    let report = text(&doctor);
    assert!(report.contains("ok   audit_chain"), "{report}");
    assert!(report.contains("FAIL backup_age"), "{report}");
    assert!(text(&verified).starts_with("ok: "), "{}", text(&verified));

    // Export, then verify the file offline against the server's public key.
    let key = veil(&data, &["audit", "public-key"]);
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    assert_eq!(key.len(), 64);
    let export = dir.path().join("audit.jsonl");
    let exported = veil(
        &data,
        &[
            "--format",
            "jsonl",
            "audit",
            "export",
            "-o",
            export.to_str().unwrap(),
        ],
    );
    assert!(exported.status.success(), "{}", text(&exported));
    let offline = veil(
        &data,
        &[
            "audit",
            "verify",
            "--file",
            export.to_str().unwrap(),
            "--public-key",
            &key,
        ],
    );
    assert!(offline.status.success(), "{}", text(&offline));
    let csv = veil(
        &data,
        &["--format", "csv", "audit", "export", "--from", "2000-01-01"],
    );
    assert!(csv.status.success(), "{}", text(&csv));
    assert!(String::from_utf8_lossy(&csv.stdout).starts_with("seq,time,"));
    let bad_date = veil(&data, &["audit", "export", "--from", "last tuesday"]);
    assert!(!bad_date.status.success());
    assert!(text(&bad_date).contains("from"), "{}", text(&bad_date));

    // Editing an entry in the database file (after removing the guard trigger) is found and named.
    let database = data.join("veil.db");
    tamper(
        &database,
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET outcome = 'denied' WHERE seq = 7;",
    );
    let broken = veil(&data, &["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(
        text(&broken).contains("BROKEN at entry 7"),
        "{}",
        text(&broken)
    );
    let doctor = veil(&data, &["doctor"]);
    assert!(
        text(&doctor).contains("FAIL audit_chain          broken at entry 7"),
        "{}",
        text(&doctor)
    );
}

fn veil_backup(data_dir: &Path, args: &[&str], passphrase: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veil"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("VEIL_DATABASE_URL")
        .env_remove("VEIL_MASTER_PASSPHRASE")
        .env_remove("VEIL_MASTER_KEY_FILE")
        .env_remove("VEIL_BACKUP_RECIPIENTS")
        .env_remove("VEIL_BACKUP_IDENTITY")
        .env_remove("VEIL_BACKUP_PASSPHRASE")
        .env_remove("VEIL_BACKUP_DIR")
        .env_remove("VEIL_BACKUP_S3_URL")
        .env_remove("VEIL_BACKUP_S3_ENDPOINT")
        .env_remove("VEIL_BACKUP_S3_ACCESS_KEY_ID")
        .env_remove("VEIL_BACKUP_S3_SECRET_ACCESS_KEY")
        .env_remove("VEIL_BACKUP_S3_ALLOW_HTTP")
        .env("VEIL_LOG", "warn")
        .stdin(Stdio::null());
    if let Some(passphrase) = passphrase {
        command.env("VEIL_BACKUP_PASSPHRASE", passphrase);
    }
    command.output().expect("run veil")
}

#[test]
fn backup_create_verify_restore_and_their_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let secret = Some("a long backup passphrase for tests");

    let unconfigured = veil_backup(&data, &["backup", "create"], None);
    assert_eq!(unconfigured.status.code(), Some(1));
    assert!(
        text(&unconfigured).contains("VEIL_BACKUP_RECIPIENTS"),
        "{}",
        text(&unconfigured)
    );

    let created = veil_backup(&data, &["--format", "json", "backup", "create"], secret);
    assert!(created.status.success(), "{}", text(&created));
    let view: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = view["id"].as_str().unwrap().to_owned();
    let location = view["location"].as_str().unwrap().to_owned();

    let verified = veil_backup(&data, &["backup", "verify", &id], secret);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("sample_decrypt"),
        "{}",
        text(&verified)
    );
    let listed = veil_backup(&data, &["backup", "list"], secret);
    assert!(text(&listed).contains("verified"), "{}", text(&listed));

    // A flipped byte: exit 1 and the reason.
    let mut bytes = std::fs::read(&location).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    let broken = dir.path().join("broken.age");
    std::fs::write(&broken, &bytes).unwrap();
    let failed = veil_backup(
        &data,
        &["backup", "verify", broken.to_str().unwrap()],
        secret,
    );
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        text(&failed).contains("verification failed"),
        "{}",
        text(&failed)
    );

    let target = format!("sqlite://{}", dir.path().join("restored.db").display());
    let restored = veil_backup(&data, &["backup", "restore", &id, "--db", &target], secret);
    assert!(restored.status.success(), "{}", text(&restored));
    let again = veil_backup(&data, &["backup", "restore", &id, "--db", &target], secret);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    let forced = veil_backup(
        &data,
        &["backup", "restore", &id, "--db", &target, "--force"],
        secret,
    );
    assert!(forced.status.success(), "{}", text(&forced));
}

/// A moto S3 server (`python3 -m pip install 'moto[server]'`) on a free port, killed on drop.
struct MotoServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MotoServer {
    /// `None` (skip) when moto is missing outside CI; a panic under CI.
    fn start() -> Option<MotoServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let unavailable = |why: &str| {
            assert!(
                std::env::var_os("CI").is_none(),
                "moto is required under CI: {why}"
            );
            eprintln!("skipping: {why}; install it with python3 -m pip install 'moto[server]'");
            None
        };
        let Ok(child) = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return unavailable("python3 -m moto.server does not start");
        };
        let mut server = MotoServer { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if server.request("GET", "/").is_some() {
                return Some(server);
            }
            if matches!(server.child.try_wait(), Ok(Some(_))) {
                return unavailable("moto exited");
            }
            if std::time::Instant::now() > deadline {
                return unavailable("moto did not answer in 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// One unsigned HTTP/1.0 request (moto accepts them); the whole response.
    fn request(&self, method: &str, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
            self.port
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.starts_with("HTTP/").then_some(response)
    }
}

#[test]
fn backup_to_object_storage_lists_verifies_and_restores() {
    let Some(server) = MotoServer::start() else {
        return;
    };
    let bucket = server.request("PUT", "/veil-cli").unwrap();
    assert!(
        bucket.starts_with("HTTP/1.0 200") || bucket.starts_with("HTTP/1.1 200"),
        "{bucket}"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let secret = "a long backup passphrase for tests";
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    let secret_file = dir.path().join("s3-secret");
    std::fs::write(&secret_file, "testing\n").unwrap();
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_veil"));
        command
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env_remove("VEIL_DATABASE_URL")
            .env_remove("VEIL_MASTER_PASSPHRASE")
            .env_remove("VEIL_MASTER_KEY_FILE")
            .env_remove("VEIL_BACKUP_RECIPIENTS")
            .env_remove("VEIL_BACKUP_IDENTITY")
            .env_remove("VEIL_BACKUP_DIR")
            .env_remove("VEIL_BACKUP_S3_SECRET_ACCESS_KEY")
            .env("VEIL_BACKUP_PASSPHRASE", secret)
            .env("VEIL_BACKUP_S3_URL", "s3://veil-cli/nightly")
            .env("VEIL_BACKUP_S3_ENDPOINT", &endpoint)
            .env("VEIL_BACKUP_S3_ACCESS_KEY_ID", "testing")
            .env("VEIL_BACKUP_S3_SECRET_ACCESS_KEY_FILE", &secret_file)
            .env("VEIL_BACKUP_S3_ALLOW_HTTP", "true")
            .env("VEIL_LOG", "warn")
            .stdin(Stdio::null());
        command.output().expect("run veil")
    };

    let created = run(&["--format", "json", "backup", "create", "--to", "s3"]);
    assert!(created.status.success(), "{}", text(&created));
    let view: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = view["id"].as_str().unwrap().to_owned();
    let location = view["location"].as_str().unwrap().to_owned();
    assert!(
        location.starts_with("s3://veil-cli/nightly/veil-backup-"),
        "{location}"
    );
    let local = std::fs::read_dir(data.join("backups")).unwrap().count();
    assert_eq!(local, 0, "the local copy is deleted after the upload");

    let listed = run(&["backup", "list"]);
    assert!(text(&listed).contains(&location), "{}", text(&listed));
    let verified = run(&["backup", "verify", &id]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("sample_decrypt"),
        "{}",
        text(&verified)
    );
    let target = format!("sqlite://{}", dir.path().join("restored.db").display());
    let restored = run(&["backup", "restore", &id, "--db", &target]);
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(text(&restored).contains(&id), "{}", text(&restored));
}

/// Like [`veil`], with extra environment variables.
fn veil_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("VEIL_DATABASE_URL")
        .env_remove("VEIL_MASTER_PASSPHRASE")
        .env_remove("VEIL_MASTER_KEY_FILE")
        .env("VEIL_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run veil")
}

#[test]
fn the_master_key_can_be_exported_escrowed_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["demo", "--no-serve", "--customers", "5"])
        .status
        .success());
    let key_file = data.join("master.key");
    let original = std::fs::read(&key_file).unwrap();

    // Escrow into 5 shares, any 3 recover.
    let shares_dir = dir.path().join("shares");
    let escrow = veil(
        &data,
        &[
            "keys",
            "escrow",
            "--shares",
            "5",
            "--threshold",
            "3",
            "--out-dir",
            shares_dir.to_str().unwrap(),
        ],
    );
    assert!(escrow.status.success(), "{}", text(&escrow));
    let share = |n: usize| shares_dir.join(format!("veil-key-share-{n}-of-5.txt"));
    // The key is lost…
    std::fs::remove_file(&key_file).unwrap();
    assert!(!veil(&data, &["keys", "status"]).status.success());
    // …two shares are not enough…
    let too_few = veil(
        &data,
        &[
            "keys",
            "recover",
            "--share",
            share(1).to_str().unwrap(),
            "--share",
            share(4).to_str().unwrap(),
            "--out",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(!too_few.status.success());
    assert!(text(&too_few).contains("3 needed"), "{}", text(&too_few));
    assert!(!key_file.exists());
    // …three are.
    let recovered = veil(
        &data,
        &[
            "keys",
            "recover",
            "--share",
            share(2).to_str().unwrap(),
            "--share",
            share(4).to_str().unwrap(),
            "--share",
            share(5).to_str().unwrap(),
            "--out",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(recovered.status.success(), "{}", text(&recovered));
    assert_eq!(std::fs::read(&key_file).unwrap(), original);
    assert!(veil(&data, &["keys", "status"]).status.success());

    // Export under a passphrase; the wrong passphrase is refused, the right one recovers.
    let export = dir.path().join("master.key.age");
    let passphrase = [("VEIL_EXPORT_PASSPHRASE", "correct horse battery staple")];
    let exported = veil_with(
        &data,
        &["keys", "export", "--out", export.to_str().unwrap()],
        &passphrase,
    );
    assert!(exported.status.success(), "{}", text(&exported));
    assert!(text(&exported).contains("WARNING"));
    let exported_bytes = std::fs::read(&export).unwrap();
    assert!(!exported_bytes
        .windows(original.len() - 1)
        .any(|window| window == &original[..original.len() - 1]));
    let elsewhere = dir.path().join("recovered.key");
    let wrong = veil_with(
        &data,
        &[
            "keys",
            "recover",
            "--from-export",
            export.to_str().unwrap(),
            "--out",
            elsewhere.to_str().unwrap(),
        ],
        &[("VEIL_EXPORT_PASSPHRASE", "wrong horse battery staple")],
    );
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("wrong passphrase"),
        "{}",
        text(&wrong)
    );
    let right = veil_with(
        &data,
        &[
            "keys",
            "recover",
            "--from-export",
            export.to_str().unwrap(),
            "--out",
            elsewhere.to_str().unwrap(),
        ],
        &passphrase,
    );
    assert!(right.status.success(), "{}", text(&right));
    assert_eq!(std::fs::read(&elsewhere).unwrap(), original);
    // Both are in the audit trail.
    let listed = veil(&data, &["audit", "list", "--action", "key."]);
    assert!(
        text(&listed).contains("key.escrow") && text(&listed).contains("key.export"),
        "{}",
        text(&listed)
    );
}

/// Spawns `command` (a `veil backup create` with `VEIL_TEST_PAUSE_AT=point`), waits until it says it is paused
/// there, and kills it with SIGKILL. Returns what it printed.
#[cfg(unix)]
fn kill_at(command: &mut Command, point: &str) -> String {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut child = command
        .env("VEIL_TEST_PAUSE_AT", point)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start veil");
    let stdout = child.stdout.take().unwrap();
    let mut printed = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line == format!("paused at {point}") {
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
            return printed;
        }
    }
    let status = child.wait().unwrap();
    panic!("veil ended ({status}) without pausing at {point}: {printed}");
}

/// `veil backup list --format json` as JSON.
fn backup_list(output: &Output) -> Vec<serde_json::Value> {
    assert!(output.status.success(), "{}", text(output));
    serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout).unwrap()
}

fn file_names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(unix)]
#[test]
fn a_backup_killed_half_way_is_never_listed_and_the_next_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let secret = "a long backup passphrase for tests";
    let backups = data.join("backups");
    let command = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_veil"));
        command
            .arg("--data-dir")
            .arg(&data)
            .args(["backup", "create"])
            .env_remove("VEIL_DATABASE_URL")
            .env_remove("VEIL_MASTER_PASSPHRASE")
            .env_remove("VEIL_MASTER_KEY_FILE")
            .env_remove("VEIL_BACKUP_RECIPIENTS")
            .env_remove("VEIL_BACKUP_DIR")
            .env_remove("VEIL_BACKUP_S3_URL")
            .env("VEIL_BACKUP_PASSPHRASE", secret)
            .env("VEIL_LOG", "warn")
            .stdin(Stdio::null());
        command
    };

    // Killed after the first chunk of the database image went into the archive: the archive is left under its
    // `.partial` name, and nothing else (the image is read straight from the database, never copied to disk).
    kill_at(&mut command(), "backup.chunk_sent");
    let left = file_names(&backups);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with(".age.partial"), "{left:?}");
    let listed = backup_list(&veil_backup(
        &data,
        &["--format", "json", "backup", "list"],
        Some(secret),
    ));
    assert!(listed.is_empty(), "nothing is catalogued: {listed:?}");
    // The cut-short file is no backup: verification refuses it.
    let partial = backups.join(&left[0]);
    let refused = veil_backup(
        &data,
        &["backup", "verify", partial.to_str().unwrap()],
        Some(secret),
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));

    let created = veil_backup(
        &data,
        &["--format", "json", "backup", "create"],
        Some(secret),
    );
    assert!(created.status.success(), "{}", text(&created));
    let view: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = view["id"].as_str().unwrap();
    let verified = veil_backup(&data, &["backup", "verify", id], Some(secret));
    assert!(verified.status.success(), "{}", text(&verified));
    let listed = backup_list(&veil_backup(
        &data,
        &["--format", "json", "backup", "list"],
        Some(secret),
    ));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["verification"]["ok"], true, "{listed:?}");
    // The killed run's `.partial` is young, so it may belong to a running backup: kept, never listed. Once it is
    // older than a minute, the next backup removes it.
    assert!(partial.exists());
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&partial)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let again = veil_backup(&data, &["backup", "create"], Some(secret));
    assert!(again.status.success(), "{}", text(&again));
    assert!(!partial.exists(), "{:?}", file_names(&backups));
    assert!(file_names(&backups)
        .iter()
        .all(|name| name.ends_with(".age")));
}

#[cfg(unix)]
#[test]
fn an_upload_killed_half_way_is_never_listed_and_the_next_run_resumes_it() {
    let Some(server) = MotoServer::start() else {
        return;
    };
    let bucket = server.request("PUT", "/veil-kill").unwrap();
    assert!(bucket.contains(" 200 "), "{bucket}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(veil(&data, &["init"]).status.success());
    let backups = data.join("backups");
    let secret = "a long backup passphrase for tests";
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    let command = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_veil"));
        command
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env_remove("VEIL_DATABASE_URL")
            .env_remove("VEIL_MASTER_PASSPHRASE")
            .env_remove("VEIL_MASTER_KEY_FILE")
            .env_remove("VEIL_BACKUP_RECIPIENTS")
            .env_remove("VEIL_BACKUP_IDENTITY")
            .env_remove("VEIL_BACKUP_DIR")
            .env_remove("VEIL_BACKUP_S3_SECRET_ACCESS_KEY_FILE")
            .env("VEIL_BACKUP_PASSPHRASE", secret)
            .env("VEIL_BACKUP_S3_URL", "s3://veil-kill/nightly")
            .env("VEIL_BACKUP_S3_ENDPOINT", &endpoint)
            .env("VEIL_BACKUP_S3_ACCESS_KEY_ID", "testing")
            .env("VEIL_BACKUP_S3_SECRET_ACCESS_KEY", "testing")
            .env("VEIL_BACKUP_S3_ALLOW_HTTP", "true")
            .env("VEIL_LOG", "warn")
            .stdin(Stdio::null());
        command
    };
    let run = |args: &[&str]| command(args).output().expect("run veil");
    let list = || backup_list(&run(&["--format", "json", "backup", "list"]));
    let objects = || server.request("GET", "/veil-kill").unwrap();
    let open_uploads = || {
        server
            .request("GET", "/veil-kill?uploads")
            .unwrap()
            .matches("<UploadId>")
            .count()
    };

    // Killed after its first part: nothing listed, no object visible, one incomplete upload and its journal.
    kill_at(
        &mut command(&["backup", "create", "--to", "s3"]),
        "backup.part_uploaded",
    );
    assert!(list().is_empty());
    assert!(!objects().contains("<Key>"), "{}", objects());
    assert_eq!(open_uploads(), 1);
    let left = file_names(&backups);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left[0].ends_with(".age") && left[1] == format!("{}.upload", left[0]),
        "the archive and its upload journal: {left:?}"
    );

    // The next run finishes that upload first, then takes its own backup; both verify.
    let created = run(&["--format", "json", "backup", "create", "--to", "s3"]);
    assert!(created.status.success(), "{}", text(&created));
    let listed = list();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let resumed_name = left[0].clone();
    assert!(
        listed
            .iter()
            .any(|view| view["location"] == format!("s3://veil-kill/nightly/{resumed_name}")),
        "{listed:?}"
    );
    for view in &listed {
        let verified = run(&["backup", "verify", view["id"].as_str().unwrap()]);
        assert!(verified.status.success(), "{}", text(&verified));
    }
    assert_eq!(objects().matches("<Key>").count(), 2, "{}", objects());
    assert_eq!(open_uploads(), 0);
    assert!(
        file_names(&backups).is_empty(),
        "{:?}",
        file_names(&backups)
    );

    // Killed again, and the local archive is lost: the next run aborts that upload, nothing of it is listed.
    kill_at(
        &mut command(&["backup", "create", "--to", "s3"]),
        "backup.part_uploaded",
    );
    assert_eq!(open_uploads(), 1);
    for name in file_names(&backups) {
        if name.ends_with(".age") {
            std::fs::remove_file(backups.join(name)).unwrap();
        }
    }
    let created = run(&["--format", "json", "backup", "create", "--to", "s3"]);
    assert!(created.status.success(), "{}", text(&created));
    assert_eq!(open_uploads(), 0, "the abandoned upload is aborted");
    assert_eq!(list().len(), 3);
    assert_eq!(objects().matches("<Key>").count(), 3, "{}", objects());
    assert!(
        file_names(&backups).is_empty(),
        "{:?}",
        file_names(&backups)
    );
}

/// Reads rows of the SQLite file directly: (industry, custom_fields, custom_sealed) of every customer.
fn custom_field_rows(database: &Path) -> Vec<(Option<String>, String, Option<String>)> {
    use veil_store::sqlx::{self, Connection, Row};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", database.display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let rows = sqlx::query("SELECT industry, custom_fields, custom_sealed FROM customer")
            .fetch_all(&mut connection)
            .await
            .unwrap()
            .into_iter()
            .map(|row| {
                (
                    row.get("industry"),
                    row.get("custom_fields"),
                    row.get("custom_sealed"),
                )
            })
            .collect();
        connection.close().await.unwrap();
        rows
    })
}

#[test]
fn demo_seeds_an_industry_template_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = veil(
        &data,
        &[
            "demo",
            "--no-serve",
            "--industry",
            "education",
            "--customers",
            "12",
        ],
    );
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("education: created 12 customers with custom fields, 12 deals"),
        "{}",
        text(&first)
    );
    let rows = custom_field_rows(&data.join("veil.db"));
    assert_eq!(rows.len(), 12);
    for (industry, custom_fields, sealed) in &rows {
        assert_eq!(industry.as_deref(), Some("education"));
        let shown: serde_json::Value = serde_json::from_str(custom_fields).unwrap();
        // The student's name and the guardian's mobile are sensitive: stored masked, sealed beside.
        let masked: Vec<&str> = shown["masked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key.as_str().unwrap())
            .collect();
        assert_eq!(masked, ["guardian_mobile", "student_name"]);
        let mobile = shown["values"]["guardian_mobile"].as_str().unwrap();
        assert!(mobile.contains("****"), "{mobile}");
        assert!(shown["values"]["grade"].is_string());
        let sealed: serde_json::Value = serde_json::from_str(sealed.as_deref().unwrap()).unwrap();
        assert!(sealed["student_name"].is_string() && sealed["guardian_mobile"].is_string());
    }
    // Again: the industry has customers already, nothing is added; an unknown industry is refused.
    let again = veil(&data, &["demo", "--no-serve", "--industry", "education"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("nothing added"), "{}", text(&again));
    assert_eq!(custom_field_rows(&data.join("veil.db")).len(), 12);
    let unknown = veil(&data, &["demo", "--no-serve", "--industry", "farming"]);
    assert!(!unknown.status.success());
    assert!(text(&unknown).contains("--industry must be one of"));
}
