//! Issue 24, points 2, 12, 16 and 17: the client's address comes from the one header the proxy
//! writes; secrets at start (files, flags, a generated password); the first admin always exists
//! or the log says why not; settings that make no sense are refused before anything is opened.
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

// ---- Point 2: the client's address -------------------------------------------------------

const REAL: &str = "203.0.113.7";

fn behind_local_proxy(c: &mut careq::config::Config) {
    c.trusted_proxies = vec![careq::auth::client_ip::Cidr::parse("127.0.0.1").unwrap()];
}

async fn last_logged_ip(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT ip FROM access_log ORDER BY seq DESC LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A sign-in as `admin` through the proxy, with the headers given.
async fn sign_in(app: &TestApp, password: &str, headers: &[(&str, String)]) -> reqwest::Response {
    let mut req = app.client.post(app.url("/v1/auth/token"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
}

async fn create_patient_via(app: &TestApp, token: &str, headers: &[(&str, String)]) {
    let clinic = app.create_clinic(token, "Proxied").await;
    let mut req = app.authed(Method::POST, "/v1/patients", token);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req
        .json(
            &json!({"clinic_id": clinic, "given_name": "Pro", "family_name": "Xy",
            "date_of_birth": "1970-01-01", "sex": "other"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_forged_forwarded_header_neither_dodges_the_lockout_nor_reaches_the_access_log() {
    let app = spawn_app_with(behind_local_proxy).await;
    let attempts = app.state.config.login_attempts;
    assert!(attempts >= 8);
    // The client forges a new `Forwarded` address every try; the proxy appends the real one
    // to `X-Forwarded-For` (the default header).
    for n in 0..attempts {
        let headers = [
            ("forwarded", format!("for=198.51.100.{}", n + 1)),
            ("x-forwarded-for", REAL.to_string()),
        ];
        assert_problem(sign_in(&app, "wrong password!", &headers).await, 401).await;
    }
    let headers = [
        ("forwarded", "for=198.51.100.200".to_string()),
        ("x-forwarded-for", REAL.to_string()),
    ];
    let res = sign_in(&app, ADMIN_PASSWORD, &headers).await;
    assert!(res.headers().contains_key("retry-after"), "{res:?}");
    assert_problem(res, 429).await;
    // Another real address is not locked out, whatever it forges.
    let other = [
        ("forwarded", format!("for={REAL}")),
        ("x-forwarded-for", "203.0.113.8".to_string()),
    ];
    assert_eq!(sign_in(&app, ADMIN_PASSWORD, &other).await.status(), 200);
    // The access log stores the address the proxy saw.
    let token = app.admin_token().await;
    let forged = [
        ("forwarded", "for=198.51.100.99".to_string()),
        ("x-forwarded-for", format!("198.51.100.98, {REAL}")),
    ];
    create_patient_via(&app, &token, &forged).await;
    assert_eq!(last_logged_ip(&app).await, REAL);
}

#[tokio::test]
async fn with_forwarded_chosen_a_forged_x_forwarded_for_is_ignored() {
    let app = spawn_app_with(|c| {
        behind_local_proxy(c);
        c.client_ip_header = careq::auth::client_ip::ClientIpHeader::Forwarded;
    })
    .await;
    for n in 0..app.state.config.login_attempts {
        let headers = [
            ("x-forwarded-for", format!("198.51.100.{}", n + 1)),
            (
                "forwarded",
                format!("for=198.51.100.250, for={REAL};proto=https"),
            ),
        ];
        assert_problem(sign_in(&app, "wrong password!", &headers).await, 401).await;
    }
    let headers = [
        ("x-forwarded-for", "198.51.100.201".to_string()),
        ("forwarded", format!("for={REAL}")),
    ];
    let res = sign_in(&app, ADMIN_PASSWORD, &headers).await;
    assert!(res.headers().contains_key("retry-after"), "{res:?}");
    assert_problem(res, 429).await;
    let token = app.admin_token().await;
    let forged = [
        ("x-forwarded-for", "198.51.100.97".to_string()),
        ("forwarded", format!("for=\"{REAL}:4711\"")),
    ];
    create_patient_via(&app, &token, &forged).await;
    assert_eq!(last_logged_ip(&app).await, REAL);
}

// ---- The real binary ----------------------------------------------------------------------

/// `careq ARGS` in `cwd`, with none of the developer's `CAREQ_*` variables, and `env` added.
fn careq(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_careq"));
    cmd.args(args).current_dir(cwd);
    clean(&mut cmd, env);
    cmd
}

fn clean(cmd: &mut Command, env: &[(&str, &str)]) {
    for (k, _) in std::env::vars() {
        if k.starts_with("CAREQ_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CAREQ_LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` (a `careq serve` expected to be refused) to its end: its exit code and stderr. A
/// server that starts anyway is stopped and the test fails, rather than waiting forever.
fn refused(mut cmd: Command) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if line.contains("careq listening") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("careq started anyway: {line}");
        }
    }
    let status = child.wait().unwrap();
    (status.code(), stderr.join().unwrap())
}

/// A serving process: its address, and its output once stopped.
struct Serving {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Serving {
    /// Starts `cmd` (a `careq serve`) and waits for the line that logs the bound address.
    fn start(mut cmd: Command) -> Serving {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let (tx, lines) = mpsc::channel();
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                panic!("careq exited before listening: {}", stderr.join().unwrap());
            }
            tx.send(line.clone()).unwrap();
            if line.contains("careq listening") {
                let v: Value = serde_json::from_str(&line).unwrap();
                break v["fields"]["address"].as_str().unwrap().to_string();
            }
        };
        std::thread::spawn(move || {
            for l in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Serving {
            child,
            addr,
            lines,
            stderr: Some(stderr),
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the process; its log (stdout) and stderr.
    fn stop(mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = self.lines.try_iter().collect::<Vec<_>>().join("\n");
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (log, stderr)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sign-in's status; a refusal (401) must come as a problem with `WWW-Authenticate`.
async fn token_status(base: &str, username: &str, password: &str) -> u16 {
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 401 {
        assert_unauthorized(res).await;
    }
    status
}

/// 401 with its challenge and a problem body.
async fn assert_unauthorized(res: reqwest::Response) {
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_problem(res, 401).await;
}

fn serve_args() -> Vec<&'static str> {
    vec!["serve", "--listen", "127.0.0.1:0"]
}

// ---- Point 12: secrets at start -----------------------------------------------------------

#[tokio::test]
async fn a_generated_admin_password_is_written_to_a_new_owner_only_file_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("careq.db")).await;
    // Started through a shell with umask 000, in a working directory of its own.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "umask 000; exec \"$0\" serve --listen 127.0.0.1:0"])
        .arg(env!("CARGO_BIN_EXE_careq"))
        .current_dir(dir.path());
    clean(&mut cmd, &[("CAREQ_DATABASE_URL", &db.url)]);
    let server = Serving::start(cmd);
    let file = dir.path().join("careq-admin-password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let password = std::fs::read_to_string(&file).unwrap();
    let password = password.trim_end();
    assert!(password.len() >= 16);
    assert_eq!(token_status(&server.base(), "admin", password).await, 200);
    let (log, stderr) = server.stop();
    assert!(!log.contains(password) && !stderr.contains(password));
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");

    // CAREQ_ADMIN_PASSWORD_OUT names another path; an existing file there is never replaced,
    // and nothing is created when it cannot be written.
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("careq.db")).await;
    let out = dir.path().join("secret").join("pw");
    std::fs::create_dir(dir.path().join("secret")).unwrap();
    std::fs::write(&out, "keep me\n").unwrap();
    let (code, stderr) = refused(careq(
        dir.path(),
        &serve_args(),
        &[
            ("CAREQ_DATABASE_URL", &db.url),
            ("CAREQ_ADMIN_PASSWORD_OUT", out.to_str().unwrap()),
        ],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("CAREQ_ADMIN_PASSWORD_OUT"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
    std::fs::remove_file(&out).unwrap();
    let server = Serving::start(careq(
        dir.path(),
        &serve_args(),
        &[
            ("CAREQ_DATABASE_URL", &db.url),
            ("CAREQ_ADMIN_PASSWORD_OUT", out.to_str().unwrap()),
        ],
    ));
    let password = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        token_status(&server.base(), "admin", password.trim_end()).await,
        200
    );
    assert!(!dir.path().join("careq-admin-password").exists());
}

#[tokio::test]
async fn secrets_are_read_from_their_file_variables_and_both_forms_at_once_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("named.db")).await;
    let pw_file = dir.path().join("admin-pw");
    std::fs::write(&pw_file, "a-password-from-a-file\n").unwrap();
    let url_file = dir.path().join("db-url");
    std::fs::write(&url_file, format!("{}\n", db.url)).unwrap();
    let secret_file = dir.path().join("notify-secret");
    std::fs::write(&secret_file, "hook-secret\n").unwrap();
    let files = [
        ("CAREQ_ADMIN_PASSWORD_FILE", pw_file.to_str().unwrap()),
        ("CAREQ_DATABASE_URL_FILE", url_file.to_str().unwrap()),
        ("CAREQ_NOTIFY_SECRET_FILE", secret_file.to_str().unwrap()),
    ];
    let server = Serving::start(careq(dir.path(), &serve_args(), &files));
    // The trailing newline is not part of the password; the URL file named the database.
    assert_eq!(
        token_status(&server.base(), "admin", "a-password-from-a-file").await,
        200
    );
    let (log, _) = server.stop();
    assert!(!log.contains("hook-secret") && !log.contains("a-password-from-a-file"));
    // Not the default database in the working directory: the one the file names.
    assert!(!dir.path().join("careq.db").exists());
    assert_eq!(dir.path().join("named.db").exists(), !on_postgres());

    // The same `careq user` command finds the database through the file too.
    let out = careq(
        dir.path(),
        &["user", "list"],
        &[("CAREQ_DATABASE_URL_FILE", url_file.to_str().unwrap())],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("\tadmin\tadmin\tactive"), "{stdout}");

    for (value, file) in [
        ("CAREQ_ADMIN_PASSWORD", files[0]),
        ("CAREQ_DATABASE_URL", files[1]),
        ("CAREQ_NOTIFY_SECRET", files[2]),
    ] {
        let fresh = tempfile::tempdir().unwrap();
        let (code, stderr) = refused(careq(
            fresh.path(),
            &serve_args(),
            &[(value, "some-long-enough-value"), file],
        ));
        assert_eq!(code, Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains(value) && stderr.contains(file.0) && stderr.contains("both"),
            "{stderr}"
        );
        assert!(!stderr.contains("some-long-enough-value"), "{stderr}");
        assert_eq!(std::fs::read_dir(fresh.path()).unwrap().count(), 0);
    }
    let (code, stderr) = refused(careq(
        dir.path(),
        &serve_args(),
        &[("CAREQ_NOTIFY_SECRET_FILE", "/no/such/secret")],
    ));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("CAREQ_NOTIFY_SECRET_FILE") && stderr.contains("/no/such/secret"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_secret_given_as_a_flag_is_warned_about_by_name_never_by_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("careq.db")).await;
    let mut args = serve_args();
    args.extend([
        "--admin-password",
        "flag-admin-password",
        "--notify-secret",
        "flag-notify-secret",
    ]);
    let server = Serving::start(careq(dir.path(), &args, &[("CAREQ_DATABASE_URL", &db.url)]));
    let (log, stderr) = server.stop();
    for flag in ["--admin-password", "--notify-secret"] {
        let warned = log.lines().any(|l| {
            l.contains("\"WARN\"")
                && l.contains(&format!("\"flag\":\"{flag}\""))
                && l.contains("_FILE")
        });
        assert!(warned, "no warning for {flag}: {log}");
    }
    assert!(!log.contains("flag-admin-password") && !log.contains("flag-notify-secret"));
    assert!(!stderr.contains("flag-admin-password") && !stderr.contains("flag-notify-secret"));
    // The same secrets from the environment: no warning.
    let server = Serving::start(careq(
        dir.path(),
        &serve_args(),
        &[
            ("CAREQ_DATABASE_URL", &db.url),
            ("CAREQ_NOTIFY_SECRET", "env-notify-secret"),
        ],
    ));
    let (log, _) = server.stop();
    assert!(!log.contains("\"flag\":"), "{log}");
    // A database URL with a password, as a flag of a CLI command, is warned about on stderr.
    let (code, stderr) = refused(careq(
        dir.path(),
        &[
            "user",
            "list",
            "--database-url",
            "postgres://careq:url-secret@127.0.0.1:1/careq",
        ],
        &[],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--database-url carries a secret")
            && stderr.contains("CAREQ_DATABASE_URL_FILE"),
        "{stderr}"
    );
    assert!(!stderr.contains("url-secret"), "{stderr}");
}

// ---- Point 16: the first admin ------------------------------------------------------------

#[tokio::test]
async fn a_listen_address_that_cannot_be_used_fails_before_a_database_or_password_exists() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = refused(careq(
        dir.path(),
        &["serve"],
        &[("CAREQ_LISTEN", "notanaddress")],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("CAREQ_LISTEN"), "{stderr}");
    assert!(!stderr.contains("password"), "{stderr}");
    // An address in use fails at bind, which comes before the database too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = refused(careq(dir.path(), &["serve"], &[("CAREQ_LISTEN", &addr)]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing is created: {left:?}");
}

#[tokio::test]
async fn users_added_before_the_first_start_do_not_keep_admin_from_being_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("careq.db")).await;
    let url = [("CAREQ_DATABASE_URL", db.url.as_str())];
    let mut add = careq(
        dir.path(),
        &["user", "add", "nurse.kim", "--role", "clinician"],
        &url,
    );
    let mut child = add
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"a-long-nurse-password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let server = Serving::start(careq(
        dir.path(),
        &serve_args(),
        &[url[0], ("CAREQ_ADMIN_PASSWORD", "first-admin-password")],
    ));
    assert_eq!(
        token_status(&server.base(), "admin", "first-admin-password").await,
        200
    );
    assert_eq!(
        token_status(&server.base(), "nurse.kim", "a-long-nurse-password").await,
        200
    );
}

#[tokio::test]
async fn an_ignored_admin_password_is_said_at_start_with_how_to_reset_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("careq.db")).await;
    let with = |pw: &'static str| {
        careq(
            dir.path(),
            &serve_args(),
            &[
                ("CAREQ_DATABASE_URL", &db.url),
                ("CAREQ_ADMIN_PASSWORD", pw),
            ],
        )
    };
    let (log, _) = Serving::start(with("the-first-password")).stop();
    assert!(!log.contains("is ignored"), "{log}");
    let server = Serving::start(with("a-second-password"));
    assert_eq!(
        token_status(&server.base(), "admin", "a-second-password").await,
        401
    );
    assert_eq!(
        token_status(&server.base(), "admin", "the-first-password").await,
        200
    );
    let (log, _) = server.stop();
    let said = log
        .lines()
        .find(|l| l.contains("is ignored"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(said.contains("CAREQ_ADMIN_PASSWORD"), "{said}");
    assert!(said.contains("careq user passwd admin"), "{said}");
    assert!(!said.contains("a-second-password"), "{said}");
}

/// Runs `careq user …` on the database; stdin is `input`.
fn user_cmd(dir: &Path, url: &str, args: &[&str], input: &str) {
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    let mut child = careq(dir, &all, &[("CAREQ_DATABASE_URL", url)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", texts(&out));
}

#[tokio::test]
async fn a_deactivated_admin_named_admin_is_made_active_again_when_no_admin_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("careq.db")).await;
    let with = |pw: &'static str| {
        careq(
            dir.path(),
            &serve_args(),
            &[
                ("CAREQ_DATABASE_URL", &db.url),
                ("CAREQ_ADMIN_PASSWORD", pw),
            ],
        )
    };
    let server = Serving::start(with("the-first-password"));
    let base = server.base();
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({"username": "admin", "password": "the-first-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    drop(server);
    user_cmd(dir.path(), &db.url, &["deactivate", "admin"], "");
    let server = Serving::start(with("a-new-admin-password"));
    let base = server.base();
    assert_eq!(
        token_status(&base, "admin", "a-new-admin-password").await,
        200
    );
    assert_eq!(
        token_status(&base, "admin", "the-first-password").await,
        401
    );
    // The session from before the deactivation stays ended.
    let res = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_unauthorized(res).await;
    let (log, _) = server.stop();
    assert!(log.contains("active again"), "{log}");
}

#[tokio::test]
async fn a_clinician_named_admin_is_never_made_an_admin_and_the_log_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("careq.db")).await;
    user_cmd(
        dir.path(),
        &db.url,
        &["add", "admin", "--role", "clinician"],
        "the-clinicians-password\n",
    );
    let server = Serving::start(careq(
        dir.path(),
        &serve_args(),
        &[
            ("CAREQ_DATABASE_URL", &db.url),
            ("CAREQ_ADMIN_PASSWORD", "an-admin-password"),
        ],
    ));
    let base = server.base();
    assert_eq!(token_status(&base, "admin", "an-admin-password").await, 401);
    assert_eq!(
        token_status(&base, "admin", "the-clinicians-password").await,
        200
    );
    let (log, _) = server.stop();
    let said = log
        .lines()
        .find(|l| l.contains("\"ERROR\"") && l.contains("no active admin"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(said.contains("clinician"), "{said}");
    assert!(said.contains("careq user add NAME --role admin"), "{said}");
}

// ---- Point 17: settings that make no sense ------------------------------------------------

#[test]
fn settings_that_make_no_sense_are_refused_at_start_naming_the_variable_and_what_it_takes() {
    let cases: &[(&str, &str, &str)] = &[
        ("CAREQ_LOG", "careq=[bad", "log filter"),
        ("CAREQ_RATE_BURST", "0", "at least 1"),
        ("CAREQ_NOTIFY_URL", "not-a-url", "http:// or https:// URL"),
        ("CAREQ_CORS_ORIGINS", "*", "origins such as"),
        ("CAREQ_CORS_ORIGINS", "https://desk.example/", "no path"),
        (
            "CAREQ_ALLOWED_HOSTS",
            "https://clinic.example",
            "host names",
        ),
        ("CAREQ_LOGIN_ATTEMPTS", "0", "at least 1"),
        ("CAREQ_TOKEN_TTL_SECONDS", "0", "at least 1"),
        ("CAREQ_WRITE_QUEUE", "0", "at least 1"),
        ("CAREQ_PASSWORD_HASH_SLOTS", "0", "at least 1"),
        ("CAREQ_EXPORT_RETENTION_HOURS", "0", "at least 1"),
        ("CAREQ_ADMIN_PASSWORD", "short", "12 to 256 characters"),
        ("CAREQ_METRICS_LISTEN", "nowhere", "HOST:PORT"),
        ("CAREQ_DATABASE_URL", "mysql://db/careq", "sqlite://PATH"),
    ];
    for (var, value, takes) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (code, stderr) = refused(careq(dir.path(), &serve_args(), &[(var, value)]));
        assert_eq!(code, Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(
            stderr.contains("takes") && stderr.contains(takes),
            "{var}: {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{var}: nothing is created"
        );
    }
    // Several at once are all named.
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = refused(careq(
        dir.path(),
        &serve_args(),
        &[("CAREQ_RATE_BURST", "0"), ("CAREQ_CORS_ORIGINS", "*")],
    ));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("CAREQ_RATE_BURST") && stderr.contains("CAREQ_CORS_ORIGINS"));
}

#[test]
fn values_the_flag_parser_refuses_name_the_variable_as_well_as_the_flag() {
    for (var, flag, value) in [
        ("CAREQ_RATE_BURST", "--rate-burst", "abc"),
        ("CAREQ_TRUSTED_PROXIES", "--trusted-proxies", "proxy.local"),
        ("CAREQ_CLIENT_IP_HEADER", "--client-ip-header", "x-real-ip"),
        ("CAREQ_LOG_FORMAT", "--log-format", "yaml"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (code, stderr) = refused(careq(dir.path(), &serve_args(), &[(var, value)]));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(var) && stderr.contains(flag), "{stderr}");
        let mut args = serve_args();
        args.extend([flag, value]);
        let (code, stderr) = refused(careq(dir.path(), &args, &[]));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(var) && stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn a_directory_given_as_the_sqlite_path_is_called_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().display());
    let (code, stderr) = refused(careq(
        dir.path(),
        &serve_args(),
        &[("CAREQ_DATABASE_URL", &url)],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("CAREQ_DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert!(!stderr.contains("code: 14"), "{stderr}");
    let (code, stderr) = refused(careq(
        dir.path(),
        &["user", "list", "--database-url", &url],
        &[],
    ));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert!(!stderr.contains("code: 14"), "{stderr}");
}

#[tokio::test]
async fn a_deleted_admin_is_not_brought_back_and_no_password_file_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(&dir.path().join("careq.db")).await;
    let server = Serving::start(careq(
        dir.path(),
        &serve_args(),
        &[
            ("CAREQ_DATABASE_URL", &db.url),
            ("CAREQ_ADMIN_PASSWORD", "the-first-password"),
        ],
    ));
    let base = server.base();
    let client = reqwest::Client::new();
    let token = |user: &'static str, pw: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let v: Value = client
                .post(format!("{base}/v1/auth/token"))
                .json(&json!({"username": user, "password": pw}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["access_token"].as_str().unwrap().to_string()
        }
    };
    let admin = token("admin", "the-first-password").await;
    let res = client
        .post(format!("{base}/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "boss", "password": "a-boss-password-1", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let boss = token("boss", "a-boss-password-1").await;
    let res = client
        .delete(format!("{base}/v1/users/{}", me["id"].as_str().unwrap()))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    drop(server);
    user_cmd(dir.path(), &db.url, &["deactivate", "boss"], "");
    // No active admin now; `admin` was deleted, so careq says so and creates nothing.
    let out = dir.path().join("generated");
    let server = Serving::start(careq(
        dir.path(),
        &serve_args(),
        &[
            ("CAREQ_DATABASE_URL", &db.url),
            ("CAREQ_ADMIN_PASSWORD_OUT", out.to_str().unwrap()),
        ],
    ));
    assert!(!out.exists(), "the unused password file is removed");
    let (log, stderr) = server.stop();
    let said = log
        .lines()
        .find(|l| l.contains("\"ERROR\"") && l.contains("no active admin"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(said.contains("deleted"), "{said}");
    assert!(said.contains("careq user add NAME --role admin"), "{said}");
    assert!(!stderr.contains("generated"), "{stderr}");
}
