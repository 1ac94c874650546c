//! The live queue over WebSocket (101 / 426), the board page, and notify (501 / 502 / 504).
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

async fn clinic_and_board_key(app: &TestApp) -> (String, String, String) {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Live").await;
    let link: Value = app
        .authed(Method::POST, &format!("/v1/clinics/{clinic}/board"), &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap().to_string();
    let key = url.split("key=").nth(1).unwrap().to_string();
    (admin, clinic, key)
}

/// An upgrade request for the clinic's live feed that offers the board key as a subprotocol, as
/// the board page does (the key never goes in the URL).
fn board_socket(
    app: &TestApp,
    clinic: &str,
    key: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/clinics/{clinic}/queue/live", app.addr),
    )
    .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("careq, careq.board.{key}").parse().unwrap(),
    );
    req
}

/// The status and headers of a refused upgrade.
async fn refused(
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> (u16, tokio_tungstenite::tungstenite::http::HeaderMap, Value) {
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
            (res.status().as_u16(), res.headers().clone(), body)
        }
        other => panic!("the upgrade should be refused, got {other:?}"),
    }
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an event in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn the_live_endpoint_upgrades_to_a_websocket_and_pushes_every_change() {
    let app = spawn_app().await;
    let (admin, clinic, key) = clinic_and_board_key(&app).await;
    let (mut ws, res) = tokio_tungstenite::connect_async(board_socket(&app, &clinic, &key))
        .await
        .unwrap();
    assert_eq!(res.status(), 101);
    assert_eq!(
        res.headers()["connection"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase(),
        "upgrade"
    );
    assert_eq!(
        res.headers()["upgrade"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase(),
        "websocket"
    );
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["kind"], "snapshot");
    let issued = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/tickets"),
            &admin,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let event = next_json(&mut ws).await;
    assert_eq!(event["kind"], "issued");
    assert_eq!(event["ticket"]["number"], "A-001");
    assert_eq!(event["next"][0]["number"], "A-001");
    assert!(
        event["ticket"].get("patient_id").is_none(),
        "no patient data on the wire"
    );
    app.authed(
        Method::POST,
        &format!("/v1/clinics/{clinic}/queue/call-next"),
        &admin,
    )
    .json(&json!({"counter": "4"}))
    .send()
    .await
    .unwrap();
    let called = next_json(&mut ws).await;
    assert_eq!(called["kind"], "called");
    assert_eq!(called["now_serving"][0]["number"], "A-001");
    assert_eq!(called["now_serving"][0]["counter"], "4");
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_plain_get_on_the_live_endpoint_is_426_and_a_wrong_board_key_401() {
    let app = spawn_app().await;
    let (admin, clinic, _) = clinic_and_board_key(&app).await;
    let path = format!("/v1/clinics/{clinic}/queue/live");
    let res = app.authed(Method::GET, &path, &admin).send().await.unwrap();
    assert_eq!(res.headers()["upgrade"], "websocket");
    assert_problem(res, 426).await;
    let (status, headers, body) = refused(board_socket(&app, &clinic, "wrong")).await;
    assert_eq!(status, 401);
    assert!(headers.get("www-authenticate").is_some());
    crate::helpers::assert_problem_body(&body, 401);
}

#[tokio::test]
async fn the_board_page_is_served_from_the_binary_with_a_strict_csp() {
    let app = spawn_app().await;
    let (_, clinic, key) = clinic_and_board_key(&app).await;
    let res = app.get(&format!("/board/{clinic}?key={key}")).await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    let js = app.get("/board/app.js").await.text().await.unwrap();
    assert!(js.contains("\"careq.board.\" + key"));
    assert!(
        !js.contains("board_key="),
        "the key never goes in the socket's URL"
    );
}

/// A local notifier: answers each request with the given status after a delay.
async fn notifier(status: u16, delay: Duration, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 8192];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/hook")
}

pub async fn ticket(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Notify").await;
    let t: Value = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/tickets"),
            &admin,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (admin, t["id"].as_str().unwrap().to_string())
}

pub async fn send_notify(app: &TestApp, admin: &str, id: &str) -> reqwest::Response {
    app.authed(Method::POST, &format!("/v1/tickets/{id}/notify"), admin)
        .json(&json!({"message": "Please come to counter 2"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn notify_maps_the_notifiers_answer_to_200_502_504_or_501() {
    let app = spawn_app().await;
    let (admin, id) = ticket(&app).await;
    assert_problem(send_notify(&app, &admin, &id).await, 501).await;

    let ok = notifier(202, Duration::ZERO, "{}").await;
    let app = spawn_app_with(move |c| c.notify_url = Some(ok)).await;
    let (admin, id) = ticket(&app).await;
    let res = send_notify(&app, &admin, &id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["upstream_status"], 202);

    // A redirect is the notifier's answer, not an instruction: 502, nothing resent.
    let moved = notifier(302, Duration::ZERO, "").await;
    let app = spawn_app_with(move |c| c.notify_url = Some(moved)).await;
    let (admin, id) = ticket(&app).await;
    assert_problem(send_notify(&app, &admin, &id).await, 502).await;

    let failing = notifier(500, Duration::ZERO, "oops").await;
    let app = spawn_app_with(move |c| c.notify_url = Some(failing)).await;
    let (admin, id) = ticket(&app).await;
    assert_problem(send_notify(&app, &admin, &id).await, 502).await;

    let app = spawn_app_with(|c| c.notify_url = Some("http://127.0.0.1:1/closed".into())).await;
    let (admin, id) = ticket(&app).await;
    assert_problem(send_notify(&app, &admin, &id).await, 502).await;

    let slow = notifier(200, Duration::from_secs(3), "{}").await;
    let app = spawn_app_with(move |c| {
        c.notify_url = Some(slow);
        c.notify_timeout_ms = 300;
    })
    .await;
    let (admin, id) = ticket(&app).await;
    assert_problem(send_notify(&app, &admin, &id).await, 504).await;
}

/// Waits until the server closes the socket; the close code, if a close frame came.
async fn closed<S>(ws: &mut S) -> Option<u16>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server closes the socket in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

async fn issue(app: &TestApp, token: &str, clinic: &str) {
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/tickets"),
            token,
        )
        .json(&json!({"priority": "normal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn rotating_the_board_key_ends_the_old_keys_sockets_and_keeps_only_a_hash() {
    let app = spawn_app().await;
    let (admin, clinic, old) = clinic_and_board_key(&app).await;
    let live = |key: &str| board_socket(&app, &clinic, key);
    let (mut screen, _) = tokio_tungstenite::connect_async(live(&old)).await.unwrap();
    next_json(&mut screen).await; // the snapshot
    let res = app
        .authed(Method::POST, &format!("/v1/clinics/{clinic}/board"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let url = res.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let new = url.split("key=").nth(1).unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(
        closed(&mut screen).await,
        Some(1008),
        "the old key's screen is closed"
    );
    let (status, headers, body) = refused(live(&old)).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    crate::helpers::assert_problem_body(&body, 401);
    let (mut fresh, res) = tokio_tungstenite::connect_async(live(&new)).await.unwrap();
    assert_eq!(res.status(), 101);
    next_json(&mut fresh).await;
    // Neither key is stored: only the new one's SHA-256.
    let stored: Vec<Option<String>> = sqlx::query_scalar("SELECT board_key_hash FROM clinics")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let hash = careq::auth::tokens::hash_token(&new);
    assert_eq!(stored, vec![Some(hash)]);
    // A GET stays safe: it no longer hands out (or makes) a key.
    let res = app
        .authed(Method::GET, &format!("/v1/clinics/{clinic}/board"), &admin)
        .send()
        .await
        .unwrap();
    assert!(res.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_problem(res, 405).await;
}

#[tokio::test]
async fn a_staff_socket_is_closed_once_its_token_is_revoked() {
    let app = spawn_app().await;
    let (admin, clinic, _) = clinic_and_board_key(&app).await;
    let (_, desk) = app
        .create_staff(&admin, "desk.live", "receptionist", &[&clinic])
        .await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/clinics/{clinic}/queue/live", app.addr),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {desk}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    next_json(&mut ws).await;
    let res = app
        .authed(Method::DELETE, "/v1/auth/token", &desk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // The next event is not delivered: the socket re-checks its token and closes.
    issue(&app, &admin, &clinic).await;
    assert_eq!(closed(&mut ws).await, Some(1008));
}

#[tokio::test]
async fn live_sockets_per_clinic_are_capped_with_503() {
    // Board screens have their own room (staff screens theirs: see review2_screens.rs).
    let app = spawn_app_with(|c| c.max_board_sockets_per_clinic = 2).await;
    let (_, clinic, key) = clinic_and_board_key(&app).await;
    let url = || board_socket(&app, &clinic, &key);
    let (mut first, _) = tokio_tungstenite::connect_async(url()).await.unwrap();
    let (mut second, _) = tokio_tungstenite::connect_async(url()).await.unwrap();
    next_json(&mut first).await;
    next_json(&mut second).await;
    // The operator sees them in the metrics.
    let admin = app.admin_token().await;
    let text = app
        .authed(reqwest::Method::GET, "/metrics", &admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\ncareq_websockets_open 2\n"), "{text}");
    match tokio_tungstenite::connect_async(url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 503);
            assert!(res.headers().contains_key("retry-after"));
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
            crate::helpers::assert_problem_body(&body, 503);
        }
        other => panic!("a third socket should be refused, got {other:?}"),
    }
    first.close(None).await.unwrap();
    // Wait for the server's answer to the close: then its place is free.
    closed(&mut first).await;
    // The freed place is taken again.
    let mut again = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(url()).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a place frees up once a socket closes");
}

#[tokio::test]
async fn on_shutdown_live_boards_hear_going_away_and_the_server_finishes() {
    let app = spawn_app().await;
    let (_, clinic, key) = clinic_and_board_key(&app).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(board_socket(&app, &clinic, &key))
        .await
        .unwrap();
    next_json(&mut ws).await; // the snapshot
    let listening = tokio::spawn(async move { closed(&mut ws).await });
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("shutdown finishes with a socket open");
    assert_eq!(
        listening.await.unwrap(),
        Some(1001),
        "a board is told the server is going away, so it reconnects at once"
    );
}
