//! The real binary's log output never holds passwords or tokens, and a generated admin password
//! is shown once on the terminal, not in the log.
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use crate::helpers::STAFF_PASSWORD;

struct Server {
    child: Child,
    addr: String,
    log: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// Starts `careq serve` on a free port and waits for the line that logs the bound address.
fn start(db: &std::path::Path, admin_password: Option<&str>) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_careq"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("CAREQ_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("CAREQ_LOG", "debug")
        .env_remove("CAREQ_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pw) = admin_password {
        cmd.env("CAREQ_ADMIN_PASSWORD", pw);
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
        stderr,
    }
}

impl Server {
    fn stop(mut self) -> (String, String) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let log: String = self.log.iter().collect::<Vec<_>>().join("\n");
        (log, self.stderr.join().unwrap())
    }
}

#[tokio::test]
async fn passwords_and_tokens_never_reach_the_log_or_later_responses() {
    let dir = tempfile::tempdir().unwrap();
    let admin_pw = "log-test-admin-password";
    let server = start(&dir.path().join("c.db"), Some(admin_pw));
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let login = |u: &'static str, p: &'static str| {
        client
            .post(format!("{base}/v1/auth/token"))
            .json(&serde_json::json!({"username": u, "password": p}))
            .send()
    };
    let admin: serde_json::Value = login("admin", admin_pw)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["access_token"].as_str().unwrap().to_string();
    let res = client
        .post(format!("{base}/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"username": "logged", "password": STAFF_PASSWORD, "role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let user: serde_json::Value = res.json().await.unwrap();
    let staff: serde_json::Value = login("logged", STAFF_PASSWORD)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let staff = staff["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        login("logged", "a-wrong-password").await.unwrap().status(),
        401
    );
    let read = client
        .get(format!("{base}/v1/users/{}", user["id"].as_str().unwrap()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [STAFF_PASSWORD, "argon2", &staff, &admin] {
        assert!(
            !read.contains(secret),
            "a response after issue holds a secret"
        );
    }
    client
        .delete(format!("{base}/v1/auth/token"))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    let (log, stderr) = server.stop();
    assert!(
        log.contains("\"route\":\"/v1/auth/token\""),
        "the log was captured: {log}"
    );
    for secret in [
        admin_pw,
        STAFF_PASSWORD,
        "a-wrong-password",
        &admin,
        &staff,
        "$argon2",
    ] {
        assert!(
            !log.contains(secret) && !stderr.contains(secret),
            "{secret} leaked into the output"
        );
    }
}

#[tokio::test]
async fn a_generated_admin_password_is_shown_once_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    // The password line is printed before the server listens; stop to collect the output.
    let (log, stderr) = start(&db, None).stop();
    let pw = stderr
        .split("with password ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the generated password is printed")
        .to_string();
    assert!(pw.len() >= 16);
    assert!(!log.contains(&pw), "the password is not in the log");
    // Restart on the same file: the password works and is not printed again.
    let server = start(&db, None);
    let base = format!("http://{}", server.addr);
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/auth/token"))
        .json(&serde_json::json!({"username": "admin", "password": pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, stderr) = server.stop();
    assert!(!stderr.contains("with password"));
}
