//! Test harness: a real, initialised Veil on a temporary SQLite file or in a private PostgreSQL schema.
//!
//! PostgreSQL comes from `VEIL_TEST_DATABASE_URL`. Without it the PostgreSQL variant of a test is skipped — except
//! when `CI` is set, where a missing or unreachable server fails the test instead.

use std::path::PathBuf;

use veil_store::sqlx;
use veil_store::{DatabaseUrl, Store};

use crate::keys::{create_master_key_file, MasterKeySource};
use crate::users::{Actor, Password, Role};
use crate::Veil;

/// One test's database and the Veil opened on it.
pub struct Harness {
    /// The application under test.
    pub veil: Veil,
    /// The database URL (for opening a second instance on the same data).
    pub url: DatabaseUrl,
    /// The master key source.
    pub master: MasterKeySource,
    /// Temporary directory (SQLite file, key file); removed on drop.
    pub dir: tempfile::TempDir,
    /// PostgreSQL: the admin pool and private schema to drop at the end.
    postgres: Option<(sqlx::PgPool, String)>,
}

/// Reads `VEIL_TEST_DATABASE_URL`; `None` means skip (never under CI).
pub fn postgres_test_url() -> Option<String> {
    match std::env::var("VEIL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but VEIL_TEST_DATABASE_URL is not: PostgreSQL tests must run under CI");
            }
            eprintln!("VEIL_TEST_DATABASE_URL not set: skipping the PostgreSQL variant");
            None
        }
    }
}

impl Harness {
    /// A fresh SQLite-backed Veil.
    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = DatabaseUrl::new(format!("sqlite://{}", dir.path().join("veil.db").display()));
        Harness::open(dir, url, None).await
    }

    /// A fresh PostgreSQL-backed Veil in its own schema, or `None` when PostgreSQL tests are skipped.
    pub async fn postgres() -> Option<Harness> {
        let base = postgres_test_url()?;
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&base)
            .await
            .unwrap_or_else(|error| panic!("cannot reach the PostgreSQL test server: {error}"));
        let schema = format!("veil_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create test schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = DatabaseUrl::new(format!("{base}{separator}options[search_path]={schema}"));
        let dir = tempfile::tempdir().expect("temporary directory");
        Some(Harness::open(dir, url, Some((admin, schema))).await)
    }

    async fn open(
        dir: tempfile::TempDir,
        url: DatabaseUrl,
        postgres: Option<(sqlx::PgPool, String)>,
    ) -> Harness {
        let key_path: PathBuf = dir.path().join("master.key");
        create_master_key_file(&key_path).expect("master key file");
        let master = MasterKeySource::File(key_path);
        let store = Store::connect(&url).await.expect("connect");
        let veil = Veil::initialise(store, &master).await.expect("initialise");
        Harness {
            veil,
            url,
            master,
            dir,
            postgres,
        }
    }

    /// Opens a second, independent Veil on the same database (another server process, in effect).
    pub async fn reopen(&self) -> Veil {
        let store = Store::connect(&self.url).await.expect("connect");
        Veil::open(store, &self.master).await.expect("open")
    }

    /// Adds a user and returns the actor.
    pub async fn actor(&self, username: &str, role: Role, team: Option<&str>) -> Actor {
        self.veil
            .add_user(
                username,
                role,
                team,
                &Password::new("correct horse battery".to_owned()),
            )
            .await
            .expect("add user");
        self.veil.actor_by_username(username).await.expect("actor")
    }

    /// Runs `sql` on the database directly, bypassing the application (what someone with file or database access
    /// could do): tampering and time-travel in tests.
    pub async fn raw_sql(&self, sql: &str) -> Result<(), sqlx::Error> {
        match self.veil.store().pool() {
            veil_store::Pool::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
            veil_store::Pool::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        }
    }

    /// The SQLite database file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.postgres
            .is_none()
            .then(|| self.dir.path().join("veil.db"))
    }

    /// Closes pools and drops the PostgreSQL schema.
    pub async fn finish(self) {
        self.veil.store().close().await;
        if let Some((admin, schema)) = self.postgres {
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

/// An empty database (a restore target): a fresh SQLite file, or a new PostgreSQL schema dropped by
/// [`EmptyDatabase::finish`].
pub struct EmptyDatabase {
    /// Its URL.
    pub url: DatabaseUrl,
    dir: tempfile::TempDir,
    postgres: Option<(sqlx::PgPool, String)>,
}

impl EmptyDatabase {
    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> EmptyDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = DatabaseUrl::new(format!(
            "sqlite://{}",
            dir.path().join("target.db").display()
        ));
        EmptyDatabase {
            url,
            dir,
            postgres: None,
        }
    }

    /// A new PostgreSQL schema, or `None` when PostgreSQL tests are skipped.
    pub async fn postgres() -> Option<EmptyDatabase> {
        let base = postgres_test_url()?;
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&base)
            .await
            .unwrap_or_else(|error| panic!("cannot reach the PostgreSQL test server: {error}"));
        let schema = format!("veil_target_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create target schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(EmptyDatabase {
            url: DatabaseUrl::new(format!("{base}{separator}options[search_path]={schema}")),
            dir: tempfile::tempdir().expect("temporary directory"),
            postgres: Some((admin, schema)),
        })
    }

    /// The same backend as `harness`: `None` only when PostgreSQL tests are skipped.
    pub async fn like(harness: &Harness) -> Option<EmptyDatabase> {
        if harness.postgres.is_some() {
            EmptyDatabase::postgres().await
        } else {
            Some(EmptyDatabase::sqlite())
        }
    }

    /// A directory that lives as long as this database.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Drops the PostgreSQL schema.
    pub async fn finish(self) {
        if let Some((admin, schema)) = self.postgres {
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

/// Runs an async test body once against SQLite and once against PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$harness:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $harness = $crate::testing::Harness::sqlite().await;
                $body
                $harness.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($harness) = $crate::testing::Harness::postgres().await else {
                    return;
                };
                $body
                $harness.finish().await;
            }
        }
    };
}

/// A real S3-compatible server for object-storage tests: moto (`python3 -m pip install 'moto[server]'`, installed
/// by `.ci/run`) on a free port, killed on drop. Without moto, [`MotoServer::start`] returns `None` (the test
/// skips with a message) — except under `CI`, where it panics.
pub struct MotoServer {
    child: std::process::Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn spawn_moto(port: u16) -> Option<std::process::Child> {
    use std::process::{Command, Stdio};
    let port = port.to_string();
    let quiet = |command: &mut Command| {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    };
    quiet(Command::new("moto_server").args(["-H", "127.0.0.1", "-p", &port])).or_else(|| {
        quiet(Command::new("python3").args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port]))
    })
}

/// Object-storage settings for `url` (`s3://bucket/prefix`) on the server at `endpoint`, with moto's credentials.
pub fn storage_settings(
    endpoint: &str,
    url: &str,
) -> crate::backup::object_storage::ObjectStorageSettings {
    crate::backup::object_storage::ObjectStorageSettings {
        url: Some(url.to_owned()),
        endpoint: Some(endpoint.to_owned()),
        region: "us-east-1".to_owned(),
        access_key_id: Some("testing".to_owned()),
        secret_access_key: Some(age::secrecy::SecretString::from("testing".to_owned())),
        allow_http: true,
    }
}

impl MotoServer {
    /// Starts moto and waits until it answers; `None` (a skip, or a panic under CI) when it cannot.
    pub fn start() -> Option<MotoServer> {
        use std::time::{Duration, Instant};
        const STARTUP: Duration = Duration::from_secs(60);
        let port = free_port();
        let unavailable = |why: String| {
            if std::env::var_os("CI").is_some() {
                panic!("moto (S3 test server) is required under CI: {why}");
            }
            eprintln!("skipping the object-storage test: {why}; install it with python3 -m pip install 'moto[server]'");
            None
        };
        let Some(child) = spawn_moto(port) else {
            return unavailable("neither moto_server nor python3 -m moto.server starts".to_owned());
        };
        let mut server = MotoServer { child, port };
        let deadline = Instant::now() + STARTUP;
        loop {
            if ureq::get(&server.url("/")).call().is_ok() {
                return Some(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return unavailable(format!("moto exited with {status}"));
            }
            if Instant::now() > deadline {
                return unavailable(format!("moto did not answer within {STARTUP:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The endpoint to configure (`VEIL_BACKUP_S3_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        self.url("")
    }

    /// object_store cannot create buckets: an unsigned PUT, which moto accepts.
    pub fn create_bucket(&self, bucket: &str) {
        let response = ureq::put(&self.url(&format!("/{bucket}")))
            .send_empty()
            .expect("create the bucket");
        assert!(response.status().is_success(), "{:?}", response.status());
    }

    /// The bytes of the object at `location` (`s3://bucket/key`), read without Veil.
    pub fn object(&self, location: &str) -> Vec<u8> {
        let location = crate::backup::ObjectLocation::parse(location).expect("an s3 location");
        let mut response = ureq::get(&self.url(&format!("/{}/{}", location.bucket, location.key)))
            .call()
            .expect("the object exists");
        response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("the object's bytes")
    }

    /// The bucket's object listing (ListObjects XML): every `<Key>` in it is a visible object.
    pub fn listing(&self, bucket: &str) -> String {
        self.get_text(&format!("/{bucket}"))
    }

    /// The bucket's incomplete multipart uploads (ListMultipartUploads XML): every `<UploadId>` in it is an upload
    /// that was neither completed nor aborted.
    pub fn multipart_uploads(&self, bucket: &str) -> String {
        self.get_text(&format!("/{bucket}?uploads"))
    }

    fn get_text(&self, path: &str) -> String {
        ureq::get(&self.url(path))
            .call()
            .expect("moto answers")
            .body_mut()
            .read_to_string()
            .expect("a text body")
    }

    /// Settings for `url` (`s3://bucket/prefix`) on this server.
    pub fn settings(&self, url: &str) -> crate::backup::object_storage::ObjectStorageSettings {
        storage_settings(&self.endpoint(), url)
    }
}
