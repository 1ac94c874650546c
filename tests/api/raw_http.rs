//! Behaviour that an HTTP client library would hide, checked over raw TCP.
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{assert_problem_body, read_head, read_to_close, spawn_app, spawn_app_with};

#[tokio::test]
async fn expect_100_continue_gets_100_before_the_body_is_sent() {
    let app = spawn_app().await;
    let body = br#"{"name":"x","count":3}"#;
    let mut s = app.connect().await;
    let head = format!(
        "POST /v1/_test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let interim = read_head(&mut s).await;
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{interim}"
    );
    s.write_all(body).await.unwrap();
    let res = read_to_close(&mut s).await;
    assert_eq!(res.status, 200, "{}", res.raw);
    assert_eq!(res.body, r#"{"name":"x","count":3}"#);
}

#[tokio::test]
async fn a_missing_or_repeated_host_returns_400_problem() {
    let app = spawn_app().await;
    let missing = app
        .raw(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(missing.status, 400, "{}", missing.raw);
    assert_problem_body(&missing.problem(), 400);
    assert!(missing.problem()["detail"]
        .as_str()
        .unwrap()
        .contains("Host"));

    let twice = app
        .raw(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(twice.status, 400, "{}", twice.raw);
    assert_problem_body(&twice.problem(), 400);

    // HTTP/1.0 clients may omit Host.
    let old = app.raw(b"GET /healthz HTTP/1.0\r\n\r\n").await;
    assert_eq!(old.status, 200, "{}", old.raw);
}

#[tokio::test]
async fn a_slow_body_gets_408_with_connection_close() {
    let app = spawn_app_with(|c| c.client_timeout_ms = 300).await;
    let mut s = app.connect().await;
    s.write_all(b"POST /v1/_test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"na")
        .await
        .unwrap();
    // Send nothing more: the server must give up on its own and close.
    let res = read_to_close(&mut s).await;
    assert_eq!(res.status, 408, "{}", res.raw);
    assert_eq!(res.header("connection"), Some("close"));
    assert_problem_body(&res.problem(), 408);
}

#[tokio::test]
async fn slow_headers_get_the_connection_closed() {
    let app = spawn_app_with(|c| c.client_timeout_ms = 300).await;
    for partial in [
        &b"GET /healthz HT"[..],
        &b"GET /healthz HTTP/1.1\r\nHost: t\r\n"[..],
    ] {
        let mut s = app.connect().await;
        s.write_all(partial).await.unwrap();
        let mut buf = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .expect("closed by the server in time");
        assert!(n.is_err() || !String::from_utf8_lossy(&buf).contains("200 OK"));
    }
    // Others are still served.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn an_overlong_request_target_returns_414_problem() {
    let app = spawn_app_with(|c| c.uri_max_bytes = 2048).await;
    let req = format!(
        "GET /v1/status-codes?x={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "a".repeat(70_000)
    );
    let res = app.raw(req.as_bytes()).await;
    assert_eq!(res.status, 414, "{}", &res.raw[..res.raw.len().min(300)]);
    assert_problem_body(&res.problem(), 414);
}

#[tokio::test]
async fn oversized_header_fields_return_431() {
    let app = spawn_app().await;
    let head = |n: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "b".repeat(n)
        )
    };
    // Over careq's 32 KiB of header fields: careq's own 431, a problem.
    let res = app.raw(head(40_000).as_bytes()).await;
    assert_eq!(res.status, 431, "{}", &res.raw[..res.raw.len().min(300)]);
    assert!(res.header("x-request-id").is_some());
    let problem = res.problem();
    assert_problem_body(&problem, 431);
    assert!(problem["detail"].as_str().unwrap().contains("32768"));
    // Far over hyper's read buffer: hyper refuses the head before careq sees it.
    let res = app.raw(head(200_000).as_bytes()).await;
    assert_eq!(res.status, 431, "{}", &res.raw[..res.raw.len().min(300)]);
    // Just under the limit is served.
    let res = app.raw(head(30_000).as_bytes()).await;
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn another_http_version_returns_505_problem() {
    let app = spawn_app().await;
    for line in [
        "GET /healthz HTTP/2.0",
        "GET /healthz HTTP/1.2",
        "GET /healthz HTTP/3",
    ] {
        let res = app
            .raw(format!("{line}\r\nHost: t\r\n\r\n").as_bytes())
            .await;
        assert_eq!(res.status, 505, "{line}: {}", res.raw);
        assert_eq!(res.header("connection"), Some("close"));
        assert!(res.header("x-request-id").is_some());
        assert_problem_body(&res.problem(), 505);
    }
}

/// Cleartext HTTP/2 with prior knowledge is refused, as the README says: its connection
/// preface is answered 505 with a problem, and the connection closes.
#[tokio::test]
async fn the_h2c_preface_is_refused_with_505() {
    let app = spawn_app().await;
    let res = app.raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert_eq!(res.status, 505, "{}", res.raw);
    assert_eq!(res.header("connection"), Some("close"));
    assert_problem_body(&res.problem(), 505);
}

#[tokio::test]
async fn a_malformed_request_line_returns_400_problem() {
    let app = spawn_app().await;
    let res = app.raw(b"GET /healthz\r\nHost: t\r\n\r\n").await;
    assert_eq!(res.status, 400, "{}", res.raw);
    assert_problem_body(&res.problem(), 400);
}

#[tokio::test]
async fn a_host_outside_the_allowed_list_is_misdirected_over_raw_http_too() {
    let app = spawn_app_with(|c| c.allowed_hosts = vec!["clinic.example".into()]).await;
    let res = app
        .raw(b"GET /healthz HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(res.status, 421, "{}", res.raw);
    assert_problem_body(&res.problem(), 421);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let app = spawn_app().await;
    let mut s = app.connect().await;
    let body = br#"{"name":"late","count":1}"#;
    s.write_all(
        format!(
            "POST /v1/_test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The 100 shows the handler is reading the body: the request is in flight.
    let interim = read_head(&mut s).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    s.write_all(&body[..5]).await.unwrap();
    let addr = app.addr;
    let stopping = tokio::spawn(app.stop());
    s.write_all(&body[5..]).await.unwrap();
    let res = read_to_close(&mut s).await;
    assert_eq!(res.status, 200, "{}", res.raw);
    assert!(res.body.contains("late"));
    stopping.await.unwrap();
    // And the listener is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
