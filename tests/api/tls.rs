//! HTTPS: HTTP/1.1 and HTTP/2 by ALPN, HSTS, certificates re-read on SIGHUP, and clear start-up
//! errors. Certificates come from a CA made in the test (rcgen).
use std::io::BufRead;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::*;

struct Pair {
    ca: reqwest::Certificate,
    cert_pem: String,
    key_pem: String,
}

fn pair() -> Pair {
    let pki = test_pki();
    Pair {
        ca: reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap(),
        cert_pem: pki.cert_pem,
        key_pem: pki.key_pem,
    }
}

fn write(dir: &std::path::Path, p: &Pair) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &p.cert_pem).unwrap();
    std::fs::write(&key, &p.key_pem).unwrap();
    (cert, key)
}

fn client(ca: &reqwest::Certificate, http1: bool) -> reqwest::Client {
    let b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.clone());
    let b = if http1 { b.http1_only() } else { b };
    b.build().unwrap()
}

#[tokio::test]
async fn https_speaks_http2_and_http1_by_alpn_and_sends_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair();
    let (cert, key) = write(dir.path(), &p);
    let app = spawn_app_with(move |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    let base = format!("https://127.0.0.1:{}", app.addr.port());
    for (http1, version) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let c = client(&p.ca, http1);
        let res = c.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), version);
        assert_eq!(
            res.headers()["strict-transport-security"],
            "max-age=31536000"
        );
        // The whole stack answers over it: sign in, then a problem with its headers.
        let res = c
            .post(format!("{base}/v1/auth/token"))
            .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), version);
        let token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let res = c
            .get(format!("{base}/v1/patients/pat_00000000000000000000"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert!(res.headers().contains_key("strict-transport-security"));
        // A body over the limit is 413 on either protocol.
        let res = c
            .post(format!("{base}/v1/patients"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(vec![b' '; 2 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(res.version(), version);
        assert!(res.headers().contains_key("strict-transport-security"));
        assert_problem(res, 413).await;
    }
    // Plain HTTP on the TLS port gets nothing it could mistake for an answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", app.addr.port()))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP got an HTTP answer: {plain:?}");
}

/// Starts the real binary with TLS; returns it and its https base URL.
fn start_tls(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "CAREQ_DATABASE_URL",
            format!("sqlite://{}", dir.join("t.db").display()),
        )
        .env("CAREQ_TLS_CERT", dir.join("cert.pem"))
        .env("CAREQ_TLS_KEY", dir.join("key.pem"))
        .env("CAREQ_ADMIN_PASSWORD", "a-long-admin-password")
        .env("CAREQ_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines();
    let addr = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if line.contains("careq listening") {
            let v: Value = serde_json::from_str(&line).unwrap();
            break v["fields"]["address"].as_str().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, format!("https://{addr}"))
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = pair();
    write(dir.path(), &old);
    let (mut child, base) = start_tls(dir.path());
    let res = client(&old.ca, false)
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let new = pair();
    write(dir.path(), &new);
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut renewed = false;
    for _ in 0..50 {
        // A fresh client: a new connection, so a new handshake.
        if let Ok(res) = client(&new.ca, false)
            .get(format!("{base}/healthz"))
            .send()
            .await
        {
            assert_eq!(res.status(), 200);
            renewed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(renewed, "the new certificate is served after SIGHUP");
    assert!(
        client(&old.ca, false)
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "the old certificate is gone"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_wrong_certificate_path_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "CAREQ_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env("CAREQ_TLS_CERT", "/nonexistent/cert.pem")
        .env("CAREQ_TLS_KEY", "/nonexistent/key.pem")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CAREQ_TLS_CERT /nonexistent/cert.pem"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.path().join("t.db").exists(), "nothing was opened");
    let out = Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "CAREQ_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env("CAREQ_TLS_CERT", "/nonexistent/cert.pem")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set both CAREQ_TLS_CERT and CAREQ_TLS_KEY")
    );
}

#[test]
fn plain_http_on_a_public_address_warns_that_tokens_need_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env(
            "CAREQ_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env("CAREQ_ADMIN_PASSWORD", "a-long-admin-password")
        .env("CAREQ_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut warning = None;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("\"WARN\"") => {
                warning = Some(line);
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let warning = warning.expect("a warning line");
    assert!(warning.contains("RFC 6750"), "{warning}");
}
