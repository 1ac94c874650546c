//! The waiting-room board and the kiosk keep their keys out of URLs and Referer headers, board
//! screens cannot take the live sockets staff screens need, and the board learns the clinic's
//! time zone (issue 24, points 10, 11 and 15).
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{assert_problem, assert_problem_body, spawn_app, spawn_app_with, TestApp};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A clinic, its board key and its kiosk key, made by the admin.
async fn clinic_with_keys(app: &TestApp) -> (String, String, String, String) {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Screens").await;
    let mut keys = Vec::new();
    for what in ["board", "kiosk"] {
        let res = app
            .authed(
                Method::POST,
                &format!("/v1/clinics/{clinic}/{what}"),
                &admin,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let link: Value = res.json().await.unwrap();
        let url = link["url"].as_str().unwrap();
        keys.push(url.split("key=").nth(1).unwrap().to_string());
    }
    let kiosk = keys.pop().unwrap();
    let board = keys.pop().unwrap();
    (admin, clinic, board, kiosk)
}

/// An upgrade request for the clinic's live feed offering these subprotocols, as a browser's
/// `new WebSocket(url, protocols)` sends them.
fn live_request(app: &TestApp, clinic: &str, query: &str, protocols: &str) -> Request {
    let mut req = format!("ws://{}/v1/clinics/{clinic}/queue/live{query}", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    req
}

fn board_request(app: &TestApp, clinic: &str, key: &str) -> Request {
    live_request(app, clinic, "", &format!("careq, careq.board.{key}"))
}

fn staff_request(app: &TestApp, clinic: &str, token: &str) -> Request {
    live_request(app, clinic, "", &format!("careq, careq.bearer.{token}"))
}

/// Opens a socket that must be accepted: 101, the subprotocol `careq`, then the snapshot.
async fn open(req: Request) -> (Socket, Value) {
    let (mut ws, res) = tokio_tungstenite::connect_async(req)
        .await
        .expect("the upgrade is accepted");
    assert_eq!(res.status(), 101);
    assert_eq!(res.headers()["sec-websocket-protocol"], "careq");
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["kind"], "snapshot");
    (ws, snapshot)
}

async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// An upgrade that must be refused: its HTTP answer, with the problem body.
async fn refused(req: Request, status: u16) -> tokio_tungstenite::tungstenite::http::HeaderMap {
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), status);
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
            assert_problem_body(&body, status);
            res.headers().clone()
        }
        Err(other) => panic!("expected {status}, got {other:?}"),
        Ok(_) => panic!("expected {status}, the upgrade was accepted"),
    }
}

#[tokio::test]
async fn board_and_kiosk_pages_and_everything_they_load_forbid_the_referer_header() {
    let app = spawn_app().await;
    let (_, clinic, board, kiosk) = clinic_with_keys(&app).await;
    for path in [
        format!("/board/{clinic}?key={board}"),
        "/board/app.js".to_string(),
        "/board/app.css".to_string(),
        format!("/kiosk/{clinic}?key={kiosk}"),
        "/desk/assets/kiosk.js".to_string(),
        "/desk/assets/desk.css".to_string(),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            res.headers()
                .get("referrer-policy")
                .map(|v| v.to_str().unwrap()),
            Some("no-referrer"),
            "{path} keeps the address (and the key in it) out of Referer"
        );
    }
    // The pages take the key out of the address bar and keep it in the page's storage; the
    // board's socket offers it as a subprotocol, never in its URL.
    let board_js = app.get("/board/app.js").await.text().await.unwrap();
    assert!(board_js.contains("history.replaceState"));
    assert!(board_js.contains("localStorage"));
    assert!(board_js.contains("careq.board."));
    assert!(!board_js.contains("board_key="));
    let kiosk_js = app.get("/desk/assets/kiosk.js").await.text().await.unwrap();
    assert!(kiosk_js.contains("history.replaceState"));
    assert!(kiosk_js.contains("localStorage"));
}

#[tokio::test]
async fn a_board_socket_offers_its_key_as_a_subprotocol_and_a_key_in_the_url_is_refused() {
    let app = spawn_app().await;
    let (_, clinic, board, _) = clinic_with_keys(&app).await;
    let (mut ws, snapshot) = open(board_request(&app, &clinic, &board)).await;
    assert_eq!(snapshot["clinic"], "Screens");
    // The board's clock shows the clinic's time, not the screen's.
    assert_eq!(snapshot["timezone"], "Europe/Vienna");
    ws.close(None).await.unwrap();

    // A key that is not the clinic's: 401, as for a wrong token.
    let headers = refused(board_request(&app, &clinic, &"0".repeat(64)), 401).await;
    assert!(headers.contains_key("www-authenticate"));

    // The key in the URL (the old way) is not taken: a clear 400 naming the parameter, on a
    // plain GET and on an upgrade alike.
    let res = app
        .get(&format!(
            "/v1/clinics/{clinic}/queue/live?board_key={board}"
        ))
        .await;
    let problem = assert_problem(res, 400).await;
    assert_eq!(problem["errors"][0]["pointer"], "query/board_key");
    let query = format!("?board_key={board}");
    refused(live_request(&app, &clinic, &query, "careq"), 400).await;
}

#[tokio::test]
async fn board_sockets_have_their_own_cap_and_leave_staff_sockets_their_room() {
    // Two staff sockets per clinic; boards have their own default room of 8.
    assert_eq!(
        careq::config::Config::default().max_board_sockets_per_clinic,
        8
    );
    let app = spawn_app_with(|c| c.max_sockets_per_clinic = 2).await;
    let (admin, clinic, board, _) = clinic_with_keys(&app).await;
    let mut boards = Vec::new();
    for _ in 0..8 {
        boards.push(open(board_request(&app, &clinic, &board)).await.0);
    }
    // A ninth board screen is refused, with when to try again…
    let headers = refused(board_request(&app, &clinic, &board), 503).await;
    assert!(headers.contains_key("retry-after"));
    // …while the staff screens still get both of their places.
    let (_, desk) = app
        .create_staff(&admin, "desk.screens", "receptionist", &[&clinic])
        .await;
    let (mut counter, _) = open(staff_request(&app, &clinic, &desk)).await;
    let (mut reception, _) = open(staff_request(&app, &clinic, &admin)).await;
    let headers = refused(staff_request(&app, &clinic, &desk), 503).await;
    assert!(headers.contains_key("retry-after"));
    // The operator sees every open socket.
    let text = app
        .authed(Method::GET, "/metrics", &admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\ncareq_websockets_open 10\n"), "{text}");
    counter.close(None).await.unwrap();
    reception.close(None).await.unwrap();
    for mut ws in boards {
        ws.close(None).await.unwrap();
    }
}
