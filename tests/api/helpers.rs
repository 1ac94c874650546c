//! `spawn_app()`: the real application on 127.0.0.1:0 with a fresh database — a SQLite file, or,
//! when `CAREQ_TEST_DATABASE_URL` names a PostgreSQL server, a PostgreSQL database created for
//! the test and dropped after it — plus helpers for raw-socket requests where an HTTP client
//! library would hide the behaviour under test.
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use careq::config::Config;
use careq::startup::AppState;
use careq::startup::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_PASSWORD: &str = "test-admin-password";
pub const STAFF_PASSWORD: &str = "staff-password-123";

pub struct TestApp {
    pub addr: SocketAddr,
    /// The unauthenticated metrics address, when the test configured one.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub state: AppState,
    /// Connections of the test's own to the app's database (read-only on SQLite), to check
    /// what is stored without going through the API. Engine-neutral: queries written for it
    /// run on both engines (`$1` placeholders, no engine-specific functions).
    pub pool: sqlx::AnyPool,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
    /// Dropped last: the PostgreSQL database of the test, if it has one.
    _pg: Option<PgTestDb>,
}

/// The PostgreSQL server the suite runs on (`CAREQ_TEST_DATABASE_URL`), if any.
pub fn postgres_server() -> Option<String> {
    std::env::var("CAREQ_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres:") || u.starts_with("postgresql:"))
}

/// Whether the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    postgres_server().is_some()
}

/// Ends a test that is about SQLite's file alone when the suite runs on PostgreSQL, saying why.
#[macro_export]
macro_rules! sqlite_only {
    ($why:expr) => {
        if $crate::helpers::on_postgres() {
            eprintln!("skipped on PostgreSQL: {}", $why);
            return;
        }
    };
}

/// A database created on the test server for one test, dropped (with its connections) when
/// this is dropped.
pub struct PgTestDb {
    server: String,
    name: String,
    pub url: String,
}

impl PgTestDb {
    pub async fn create(server: &str) -> PgTestDb {
        use sqlx::Connection;
        let name = format!("careq_t_{:016x}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(server)
            .await
            .expect("connecting to CAREQ_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let _ = admin.close().await;
        PgTestDb {
            url: database_url(server, &name),
            server: server.to_string(),
            name,
        }
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread with a
        // runtime of its own drops the database before the test is reported done.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    use sqlx::Connection;
                    let mut admin = sqlx::PgConnection::connect(&server).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// The URL of database `name` on the server `server` names (its path replaced).
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", dir.join("careq.db").display()),
        test_routes: true,
        allowed_hosts: Vec::new(),
        admin_password: Some(ADMIN_PASSWORD.into()),
        log: "off".into(),
        export_dir: Some(dir.join("exports")),
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    let pg = match postgres_server() {
        Some(server) => Some(PgTestDb::create(&server).await),
        None => None,
    };
    if let Some(db) = &pg {
        config.database_url = db.url.clone();
    }
    customise(&mut config);
    let app = Application::build(config).await.expect("app builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let state = app.state().clone();
    let pool = {
        sqlx::any::install_default_drivers();
        let url = &state.config.database_url;
        let url = if url.starts_with("sqlite:") {
            format!("{url}?mode=ro")
        } else {
            url.clone()
        };
        sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap()
    };
    let (tx, rx) = oneshot::channel::<()>();
    // The listener is bound before this returns, so requests can be sent at once.
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        pool,
        addr,
        metrics_addr,
        client,
        state,
        shutdown: Some(tx),
        handle: Some(handle),
        _dir: dir,
        _pg: pg,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Signs in and returns the bearer token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let res = self
            .client
            .post(self.url("/v1/auth/token"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "sign-in of {username}");
        let body: serde_json::Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// A request with a bearer token.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Creates a clinic as `admin_token` and returns its id.
    pub async fn create_clinic(&self, admin_token: &str, name: &str) -> String {
        let res = self
            .authed(reqwest::Method::POST, "/v1/clinics", admin_token)
            .json(&serde_json::json!({"name": name, "timezone": "Europe/Vienna", "ticket_prefix": "A"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.unwrap();
        body["id"].as_str().unwrap().to_string()
    }

    /// Creates a staff member and returns (id, token).
    pub async fn create_staff(
        &self,
        admin_token: &str,
        username: &str,
        role: &str,
        clinics: &[&str],
    ) -> (String, String) {
        let res = self
            .authed(reqwest::Method::POST, "/v1/users", admin_token)
            .json(&serde_json::json!({"username": username, "password": STAFF_PASSWORD, "role": role, "clinic_ids": clinics}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "creating {username}");
        let body: serde_json::Value = res.json().await.unwrap();
        let token = self.login(username, STAFF_PASSWORD).await;
        (body["id"].as_str().unwrap().to_string(), token)
    }

    /// Starts graceful shutdown and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// A writable connection of the test's own to the app's database, for what an operator or
    /// another process would do (free space, try to rewrite the log).
    pub async fn writable(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::AnyConnection::connect(&self.state.config.database_url)
            .await
            .unwrap()
    }

    /// A connection of the test's own holding a transaction that keeps every write of the app
    /// waiting (SQLite: the write lock; PostgreSQL: the tables locked against writers, reads
    /// still allowed), as another process could. `COMMIT` on it lets the writes go on.
    pub async fn hold_writes(&self) -> sqlx::AnyConnection {
        let mut conn = self.writable().await;
        if on_postgres() {
            // Tables are locked one by one while the app's units may hold row locks: the lock
            // can lose a deadlock against them, and is then taken again.
            for attempt in 1.. {
                sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                let locked = sqlx::query(
                    "LOCK TABLE clinics, users, user_clinics, tokens, patients, clinic_counters,
                         queue_days, tickets, appointments, meta, idempotency_keys, access_log
                     IN EXCLUSIVE MODE",
                )
                .execute(&mut conn)
                .await;
                match locked {
                    Ok(_) => break,
                    Err(e) if attempt < 20 => {
                        assert!(e.to_string().contains("deadlock"), "{e}");
                        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        } else {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn
    }

    /// On PostgreSQL: once the app has finished what it was given, none of its connections is
    /// left inside a transaction (idle in transaction, or still running one), and it holds no
    /// more connections than its two pools allow. (SQLite's writer is checked by the requests
    /// that follow: a leaked transaction there holds the write lock and they answer 503.)
    pub async fn assert_no_transaction_left_open(&self) {
        if !on_postgres() {
            return;
        }
        let mut open = Vec::new();
        for _ in 0..100 {
            open = sqlx::query_scalar::<_, String>(
                "SELECT COALESCE(state, '') FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend' AND state <> 'idle'",
            )
            .fetch_all(&self.pool)
            .await
            .unwrap();
            if open.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            open.is_empty(),
            "connections still in a transaction: {open:?}"
        );
        let connections: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND backend_type = 'client backend'",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap();
        assert!(connections <= 2 * 32 + 4, "{connections} connections");
    }

    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// Sends a request and resets the connection (RST) without reading a byte of the answer,
    /// 0–15 ms later, while the server may be in the middle of the work: a closed browser tab or
    /// a proxy that gave up. `headers` are whole lines (`If-Match: *`); with `partial`, only half
    /// the body is sent.
    pub async fn vanish(
        &self,
        method: &str,
        path: &str,
        headers: &[String],
        body: &str,
        partial: bool,
    ) {
        use rand::Rng;
        let mut s = self.connect().await;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let sent = if partial {
            &body[..body.len() / 2]
        } else {
            body
        };
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(sent.as_bytes()).await;
        let wait = rand::thread_rng().gen_range(0..15);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        #[allow(deprecated)] // the blocking drop is what a reset needs here, and it is instant
        let _ = s.set_linger(Some(Duration::ZERO));
        drop(s);
    }

    /// Sends raw bytes and reads until the server closes the connection.
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        let mut s = self.connect().await;
        s.write_all(request).await.unwrap();
        read_to_close(&mut s).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Reads a whole answer until the peer closes, bounded so a bug fails instead of hanging.
pub async fn read_to_close(s: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("server closed the connection in time")
        .ok();
    RawResponse::parse(&buf)
}

/// Reads until one complete head (up to the blank line) has arrived.
pub async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(20), async {
        while !buf.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            buf.push(byte[0]);
        }
    })
    .await
    .expect("a response head in time");
    String::from_utf8_lossy(&buf).into_owned()
}

#[derive(Debug)]
pub struct RawResponse {
    pub raw: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn parse(bytes: &[u8]) -> Self {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        RawResponse {
            status,
            headers,
            body: body.to_string(),
            raw: raw.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn problem(&self) -> serde_json::Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.raw
        );
        serde_json::from_str(&self.body).expect("a JSON problem body")
    }
}

/// Checks a problem response over reqwest: status, media type, body fields; returns the body.
pub async fn assert_problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "problem media type"
    );
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_problem_body(&body, status);
    assert_eq!(body["request_id"], request_id.as_str());
    body
}

pub fn assert_problem_body(body: &serde_json::Value, status: u16) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], format!("/v1/status-codes/{status}"));
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["request_id"].as_str().is_some_and(|t| !t.is_empty()));
}

/// The real `careq` binary, started on a free port.
pub struct Server {
    pub child: Child,
    pub addr: String,
    log: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// A database for a test that starts the binary itself: the SQLite file `file`, or, when the
/// suite runs on PostgreSQL, a database created for the test (dropped with this).
pub struct TestDatabase {
    pub url: String,
    _pg: Option<PgTestDb>,
}

pub async fn test_database(file: &std::path::Path) -> TestDatabase {
    match postgres_server() {
        Some(server) => {
            let pg = PgTestDb::create(&server).await;
            TestDatabase {
                url: pg.url.clone(),
                _pg: Some(pg),
            }
        }
        None => TestDatabase {
            url: format!("sqlite://{}", file.display()),
            _pg: None,
        },
    }
}

impl TestDatabase {
    /// Connections of the test's own to the database, to check what is stored.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.url).await.unwrap()
    }
}

/// Starts `careq serve` on a free port on the database `db_url` and waits for the line that
/// logs the bound address.
pub fn start_binary(db_url: &str, admin_password: Option<&str>) -> Server {
    match admin_password {
        Some(pw) => start_binary_url(db_url, &[("CAREQ_ADMIN_PASSWORD", pw)]),
        None => start_binary_url(db_url, &[]),
    }
}

/// Starts `careq serve` on the database at `url` with extra environment settings.
pub fn start_binary_url(url: &str, env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_careq"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("CAREQ_DATABASE_URL", url)
        .env("CAREQ_LOG", "debug")
        .env("CAREQ_RATE_BURST", "100000")
        .env_remove("CAREQ_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "server exited before listening"
        );
        tx.send(line.clone()).unwrap();
        if line.contains("careq listening") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            addr = Some(v["fields"]["address"].as_str().unwrap().to_string());
        }
    }
    std::thread::spawn(move || {
        for l in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    Server {
        child,
        addr: addr.unwrap(),
        log: rx,
        stderr: Some(stderr),
    }
}

impl Server {
    /// Kills the process (SIGKILL) and returns (stdout log, stderr).
    pub fn stop(mut self) -> (String, String) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let log: String = self.log.iter().collect::<Vec<_>>().join("\n");
        let stderr = self.stderr.take().map(|h| h.join().unwrap());
        (log, stderr.unwrap_or_default())
    }
}

/// A test that ends early (a failed assertion) must not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A CA made for the test and a certificate it signed for 127.0.0.1 and localhost (PEM).
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn test_pki() -> TestPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "careq test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
    TestPki {
        ca_pem: ca.pem(),
        cert_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A new PostgreSQL database for a test that needs PostgreSQL whichever engine the suite runs
/// on (moving data to it, several processes on it): on the suite's server, or on the local one.
pub async fn fresh_postgres_database() -> PgTestDb {
    let server =
        postgres_server().unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    PgTestDb::create(&server).await
}

/// An appointment start two minutes from now that is still today on the test clinics' clock
/// (Europe/Vienna), so a check-in (allowed on the appointment's own day only) works whatever
/// the hour the suite runs at: in the last two minutes of Vienna's day, its next day is awaited.
pub async fn later_today_in_vienna() -> String {
    let vienna = jiff::tz::TimeZone::get("Europe/Vienna").unwrap();
    loop {
        let now = jiff::Timestamp::now();
        let start = now + jiff::SignedDuration::from_secs(120);
        if now.to_zoned(vienna.clone()).date() == start.to_zoned(vienna.clone()).date() {
            return start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}
