//! The command line for bootstrapping without HTTP: clinics, users, deactivation, plain-word
//! errors and clear messages for a database that cannot be opened. Run as the real binary
//! against the same SQLite file a spawned server uses.
use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::helpers::*;

fn careq(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn clinics_and_users_are_set_up_and_deactivated_from_the_shell() {
    let app = spawn_app().await;
    let url = app.state.config.database_url.clone();
    let db = ["--database-url", url.as_str()];

    let out = careq(
        &[
            &[
                "clinic",
                "add",
                "Hill Surgery",
                "--timezone",
                "Europe/Vienna",
                "--prefix",
                "H",
            ][..],
            &db[..],
        ]
        .concat(),
        "",
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let clinic = stdout.split_whitespace().last().unwrap().to_string();
    assert!(clinic.starts_with("cln_"), "{stdout}");

    let out = careq(&[&["clinic", "list"][..], &db[..]].concat(), "");
    let (stdout, _) = text(&out);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("ID\tNAME\tTIMEZONE\tPREFIX"));
    assert!(stdout.contains(&format!("{clinic}\tHill Surgery\tEurope/Vienna\tH")));

    let out = careq(
        &[
            &[
                "user",
                "add",
                "nurse.kim",
                "--role",
                "clinician",
                "--clinic",
                &clinic,
            ][..],
            &db[..],
        ]
        .concat(),
        "a-long-enough-password\n",
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let token = app.login("nurse.kim", "a-long-enough-password").await;
    let me = app
        .authed(reqwest::Method::GET, "/v1/me", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(body["clinic_ids"][0], clinic.as_str());

    let out = careq(&[&["user", "list"][..], &db[..]].concat(), "");
    let (stdout, _) = text(&out);
    assert!(
        stdout.starts_with("ID\tUSERNAME\tROLE\tSTATE\tCLINICS\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\tnurse.kim\tclinician\tactive\t"));

    let out = careq(
        &[&["user", "deactivate", "Nurse.Kim"][..], &db[..]].concat(),
        "",
    );
    assert!(out.status.success(), "{}", text(&out).1);
    // The session ends at once and signing in is refused.
    let me = app
        .authed(reqwest::Method::GET, "/v1/me", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    assert!(me.headers().contains_key("www-authenticate"));
    let res = app
        .client
        .post(app.url("/v1/auth/token"))
        .json(&serde_json::json!({"username": "nurse.kim", "password": "a-long-enough-password"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
    let out = careq(&[&["user", "list"][..], &db[..]].concat(), "");
    assert!(text(&out).0.contains("\tnurse.kim\tclinician\tinactive\t"));
    let out = careq(
        &[&["user", "deactivate", "nobody"][..], &db[..]].concat(),
        "",
    );
    assert!(!out.status.success());
    assert!(text(&out).1.contains("no user named nobody"));

    // The server reads and writes as before.
    let admin = app.admin_token().await;
    app.create_clinic(&admin, "After").await;
}

#[tokio::test]
async fn cli_errors_name_the_field_in_plain_words() {
    let app = spawn_app().await;
    let url = app.state.config.database_url.clone();
    let db = ["--database-url", url.as_str()];
    let out = careq(
        &[
            &[
                "clinic",
                "add",
                "X",
                "--timezone",
                "Mars/Olympus",
                "--prefix",
                "abcd",
            ][..],
            &db[..],
        ]
        .concat(),
        "",
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("timezone:"), "{stderr}");
    assert!(stderr.contains("ticket_prefix:"), "{stderr}");
    assert!(
        !stderr.contains("Unprocessable") && !stderr.contains("422"),
        "{stderr}"
    );

    let out = careq(
        &[
            &["user", "add", "short.pw", "--role", "receptionist"][..],
            &db[..],
        ]
        .concat(),
        "short\n",
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("password:"), "{stderr}");
    assert!(!stderr.contains("Unprocessable"), "{stderr}");

    // Nothing was stored by the refused commands.
    let clinics: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clinics")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clinics, 0);
}

#[test]
fn a_database_that_cannot_be_opened_is_named() {
    let out = careq(
        &[
            "user",
            "list",
            "--database-url",
            "sqlite:///no/such/dir/careq.db",
        ],
        "",
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("/no/such/dir"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    let out = careq(
        &[
            "clinic",
            "list",
            "--database-url",
            "mysql://localhost/careq",
        ],
        "",
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`mysql:`") && stderr.contains("not supported"),
        "{stderr}"
    );
    // A PostgreSQL server that does not answer is named too, without the password.
    let out = careq(
        &[
            "clinic",
            "list",
            "--database-url",
            "postgres://careq:secret-pw@127.0.0.1:1/careq",
        ],
        "",
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot connect to postgres://careq:***@127.0.0.1:1/careq"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-pw"), "{stderr}");
}

/// Reads from `out` until `marker` has appeared; returns everything read.
fn read_until(out: &mut impl std::io::Read, seen: &mut Vec<u8>, marker: &str) {
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(seen).contains(marker) {
        let n = out.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "ended before {marker:?}: {}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn at_a_terminal_the_password_is_asked_twice_and_never_echoed() {
    use std::io::Read;
    let app = spawn_app().await;
    let url = app.state.config.database_url.clone();
    // `script` gives the command a pseudo-terminal, as an operator's shell would.
    let command = format!(
        "{} user add tty.user --role receptionist --database-url {url}",
        env!("CARGO_BIN_EXE_careq")
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    // The prompt is printed just before echo is switched off: typing into that gap would be
    // echoed by the terminal itself, so the test types as a person does, a moment later.
    let pause = std::time::Duration::from_millis(500);
    read_until(&mut stdout, &mut seen, "Password: ");
    std::thread::sleep(pause);
    stdin.write_all(b"terminal-password-1\n").unwrap();
    read_until(&mut stdout, &mut seen, "Password again: ");
    std::thread::sleep(pause);
    stdin.write_all(b"terminal-password-1\n").unwrap();
    stdout.read_to_end(&mut seen).unwrap();
    assert!(child.wait().unwrap().success());
    let shown = String::from_utf8_lossy(&seen);
    assert!(shown.contains("created tty.user (receptionist)"), "{shown}");
    assert!(!shown.contains("terminal-password-1"), "echoed: {shown}");
    app.login("tty.user", "terminal-password-1").await;
}
