//! The web UI in a real headless Chromium: starts `veil demo` on a free port, then runs `e2e/web.mjs`
//! (playwright-core) against it with the demo accounts the server printed.
//!
//! Needs `node`, Debian's `chromium` (or `CHROMIUM=/path`) and `npm ci` in `e2e/`. Without them the test says what
//! is missing and passes, except under CI (`CI` set), where a missing piece is a failure: `.ci/run` installs them.
//! Screenshots go to a temporary directory, or to `VEIL_SCREENSHOTS` (e.g. `docs/screenshots`) when set.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// What is missing to run the browser checks, if anything.
fn missing_prerequisite(root: &Path) -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|status| status.success()) {
        return Some("node is not installed".to_owned());
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        return Some(format!(
            "{} is missing (apt-get install chromium fonts-noto-cjk)",
            chromium.display()
        ));
    }
    if !root.join("e2e/node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed (cd e2e && npm ci)".to_owned());
    }
    None
}

#[test]
fn web_ui_in_headless_chromium() {
    let root = repository_root();
    if let Some(missing) = missing_prerequisite(&root) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser test is required under CI: {missing}"
        );
        eprintln!("skipping the browser test: {missing}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "demo",
            "--customers",
            "40",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("VEIL_DATABASE_URL")
        .env_remove("VEIL_MASTER_PASSPHRASE")
        .env_remove("VEIL_MASTER_KEY_FILE")
        .env("VEIL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The banner lists `username role password` under "Demo accounts"; read it off stdout as it comes.
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut passwords = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while passwords.len() < 7 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = received
            .recv_timeout(left)
            .expect("the demo server prints its accounts");
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [username, role, password] = words[..] {
            let roles = ["admin", "dpo", "manager", "sales", "service", "auditor"];
            if roles.contains(&role) {
                passwords.insert(username.to_owned(), password.to_owned());
            }
        }
    }
    // Serving once /healthz answers.
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the demo server does not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let shots = std::env::var_os("VEIL_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("screenshots"));
    let started = Instant::now();
    let output = Command::new("node")
        .arg("web.mjs")
        .arg(&shots)
        .current_dir(root.join("e2e"))
        .env("VEIL_URL", format!("http://127.0.0.1:{port}"))
        .env("VEIL_USER", "sales")
        .env("VEIL_PASSWORD", &passwords["sales"])
        .env("VEIL_DPO_PASSWORD", &passwords["dpo"])
        .env("VEIL_ADMIN_PASSWORD", &passwords["admin"])
        .output()
        .unwrap();
    drop(server);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser checks failed:\n{text}"
    );
    assert!(text.contains("web UI browser checks passed"), "{text}");
    eprintln!("browser checks took {:?}", started.elapsed());
}
