//! The front desk: its pages (served from the binary under a strict CSP), the kiosk key and the
//! kiosk's take-a-number endpoint (401 / 423 / 429, concurrency, resets), and staff WebSockets
//! opened with the token offered as a subprotocol.
use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

/// Rotates the clinic's kiosk key as `admin` and returns the key.
async fn kiosk_key(app: &TestApp, admin: &str, clinic: &str) -> String {
    let res = app
        .authed(Method::POST, &format!("/v1/clinics/{clinic}/kiosk"), admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let link: Value = res.json().await.unwrap();
    let url = link["url"].as_str().unwrap();
    let prefix = format!("/kiosk/{clinic}?key=");
    assert!(url.starts_with(&prefix), "{url}");
    url[prefix.len()..].to_string()
}

async fn take_number(app: &TestApp, clinic: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/clinics/{clinic}/kiosk/tickets")));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

async fn queue(app: &TestApp, token: &str, clinic: &str) -> Vec<Value> {
    let res = app
        .authed(Method::GET, &format!("/v1/clinics/{clinic}/queue"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_admin_gets_a_kiosk_link_and_a_receptionist_may_not() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Kiosk").await;
    let first = kiosk_key(&app, &admin, &clinic).await;
    let second = kiosk_key(&app, &admin, &clinic).await;
    assert_ne!(first, second, "each rotation makes a new key");
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    let res = app
        .authed(Method::POST, &format!("/v1/clinics/{clinic}/kiosk"), &desk)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;
    let res = app
        .authed(
            Method::POST,
            "/v1/clinics/cln_00000000000000000000/kiosk",
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
}

#[tokio::test]
async fn the_kiosk_takes_a_normal_number_and_shows_nothing_about_anyone() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Kiosk clinic").await;
    let key = kiosk_key(&app, &admin, &clinic).await;
    let res = take_number(&app, &clinic, Some(&key)).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/v1/tickets/tkt_"), "{location}");
    assert!(res.headers().get("etag").is_some());
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    let keys: HashSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "number",
            "clinic_name",
            "issued_at",
            "position",
            "estimated_wait_seconds"
        ])
    );
    assert_eq!(body["number"], "A-001");
    assert_eq!(body["clinic_name"], "Kiosk clinic");
    assert_eq!(body["position"], 1);
    // Staff see it as an ordinary walk-in: normal priority, no patient.
    let ticket: Value = app
        .authed(Method::GET, &location, &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ticket["priority"], "normal");
    assert_eq!(ticket["patient_id"], Value::Null);
    assert_eq!(ticket["status"], "waiting");
}

#[tokio::test]
async fn a_missing_wrong_or_foreign_key_is_401_and_issues_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Mine").await;
    let other = app.create_clinic(&admin, "Other").await;
    let old = kiosk_key(&app, &admin, &clinic).await;
    let _current = kiosk_key(&app, &admin, &clinic).await;
    let foreign = kiosk_key(&app, &admin, &other).await;
    let board: Value = app
        .authed(Method::POST, &format!("/v1/clinics/{clinic}/board"), &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let board_key = board["url"].as_str().unwrap().split("key=").nth(1).unwrap();

    let res = take_number(&app, &clinic, None).await;
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="careq""#);
    assert_problem(res, 401).await;
    for (what, key) in [
        ("a replaced key", old.as_str()),
        ("another clinic's key", foreign.as_str()),
        ("the read-only board key", board_key),
        ("a staff token", admin.as_str()),
        ("garbage", "nope"),
    ] {
        let res = take_number(&app, &clinic, Some(key)).await;
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{what}"
        );
        assert_problem(res, 401).await;
    }
    // A key for a clinic that does not exist is no key either.
    let res = take_number(&app, "cln_00000000000000000000", Some(&foreign)).await;
    assert_problem(res, 401).await;
    assert!(
        queue(&app, &admin, &clinic).await.is_empty(),
        "nothing issued"
    );
}

#[tokio::test]
async fn a_closed_queue_refuses_the_kiosk_with_423() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Closed").await;
    let key = kiosk_key(&app, &admin, &clinic).await;
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/close"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert_problem(take_number(&app, &clinic, Some(&key)).await, 423).await;
    assert!(queue(&app, &admin, &clinic).await.is_empty());
}

#[tokio::test]
async fn a_kiosk_past_its_burst_gets_429_with_retry_after_and_other_kiosks_do_not() {
    let app = spawn_app_with(|c| {
        c.kiosk_burst = 3;
        c.kiosk_per_minute = 1;
    })
    .await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Busy").await;
    let other = app.create_clinic(&admin, "Quiet").await;
    let key = kiosk_key(&app, &admin, &clinic).await;
    let other_key = kiosk_key(&app, &admin, &other).await;
    for _ in 0..3 {
        assert_eq!(take_number(&app, &clinic, Some(&key)).await.status(), 201);
    }
    let res = take_number(&app, &clinic, Some(&key)).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry),
        "one ticket refills in a minute: {retry}"
    );
    assert_eq!(res.headers()["ratelimit-limit"], "3");
    let body = assert_problem(res, 429).await;
    assert!(body["detail"].as_str().unwrap().contains("kiosk"));
    assert_eq!(
        queue(&app, &admin, &clinic).await.len(),
        3,
        "the refused tap issued nothing"
    );
    assert_eq!(
        take_number(&app, &other, Some(&other_key)).await.status(),
        201
    );
    // Staff are not limited by the kiosk's bucket.
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/tickets"),
            &admin,
        )
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// Closes with a reset (RST), as a kiosk that lost power mid-request would.
fn reset(s: tokio::net::TcpStream) {
    #[allow(deprecated)] // the blocking drop is what a reset needs here, and it is instant
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

#[tokio::test]
async fn concurrent_taps_get_distinct_gap_free_numbers_and_resets_leave_the_server_working() {
    let app = spawn_app_with(|c| c.kiosk_burst = 10_000).await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Rush").await;
    let key = kiosk_key(&app, &admin, &clinic).await;
    let taps = (0..40).map(|_| take_number(&app, &clinic, Some(&key)));
    let resets = (0..10).map(|i| {
        let (app, clinic, key) = (&app, clinic.clone(), key.clone());
        async move {
            let mut s = app.connect().await;
            let head = format!(
                "POST /v1/clinics/{clinic}/kiosk/tickets HTTP/1.1\r\nHost: x\r\n\
                 Authorization: Bearer {key}\r\nContent-Length: 0\r\n"
            );
            // Half of them stop inside the head; the rest send it whole and vanish unanswered.
            let sent = if i % 2 == 0 {
                &head[..head.len() / 2]
            } else {
                &format!("{head}\r\n")[..]
            };
            s.write_all(sent.as_bytes()).await.unwrap();
            reset(s);
        }
    });
    let (answers, _) = futures_util::future::join(
        futures_util::future::join_all(taps),
        futures_util::future::join_all(resets),
    )
    .await;
    let mut numbers = HashSet::new();
    for res in answers {
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        assert!(numbers.insert(body["number"].as_str().unwrap().to_string()));
    }
    assert_eq!(numbers.len(), 40);
    // The server still writes and reads: one more tap, and a staff write.
    assert_eq!(take_number(&app, &clinic, Some(&key)).await.status(), 201);
    let items = queue(&app, &admin, &clinic).await;
    // Whatever the reset requests issued, the day's numbers have no gap and no repeat.
    let mut seen: Vec<u32> = items
        .iter()
        .map(|t| t["number"].as_str().unwrap()[2..].parse().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (1..=seen.len() as u32).collect::<Vec<_>>());
    assert!((41..=46).contains(&seen.len()), "{} tickets", seen.len());
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .json(
            &serde_json::json!({"clinic_id": clinic, "given_name": "After", "family_name": "Rush",
            "date_of_birth": "1990-01-01", "sex": "female"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    app.assert_no_transaction_left_open().await;
}

#[tokio::test]
async fn the_desk_pages_are_served_from_the_binary_under_a_strict_csp() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Pages").await;
    for path in [
        "/desk".to_string(),
        "/desk/reception".into(),
        "/desk/counter".into(),
        format!("/kiosk/{clinic}?key=whatever"),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}"
        );
        let html = res.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path}: nothing from elsewhere"
        );
        assert!(
            !html.contains("<style") && !html.contains(" style="),
            "{path}: no inline style"
        );
        assert!(!html.contains("<script>"), "{path}: no inline script");
    }
    for (asset, kind) in [
        ("desk.css", "text/css; charset=utf-8"),
        ("common.js", "text/javascript; charset=utf-8"),
        ("reception.js", "text/javascript; charset=utf-8"),
        ("counter.js", "text/javascript; charset=utf-8"),
        ("kiosk.js", "text/javascript; charset=utf-8"),
        ("signin.js", "text/javascript; charset=utf-8"),
    ] {
        let res = app.get(&format!("/desk/assets/{asset}")).await;
        assert_eq!(res.status(), 200, "{asset}");
        assert_eq!(res.headers()["content-type"], kind);
        let text = res.text().await.unwrap();
        // The kiosk keeps its kiosk key in localStorage (so it works after a restart); it has
        // no staff token.
        if asset == "kiosk.js" {
            assert!(!text.contains("careq.token"), "{asset}: no staff token");
        } else {
            assert!(
                !text.contains("localStorage"),
                "{asset}: the token stays in sessionStorage"
            );
        }
    }
    assert_problem(app.get("/desk/assets/secret.txt").await, 404).await;
    // The board lost its inline style too.
    let res = app.get(&format!("/board/{clinic}?key=x")).await;
    assert!(!res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("unsafe-inline"));
    assert_eq!(app.get("/board/app.css").await.status(), 200);
}

#[tokio::test]
async fn a_browser_opens_the_live_queue_with_its_token_offered_as_a_subprotocol() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Live desk").await;
    let url = format!("ws://{}/v1/clinics/{clinic}/queue/live", app.addr);
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("careq, careq.bearer.{admin}").parse().unwrap(),
    );
    let (mut ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(res.status(), 101);
    assert_eq!(res.headers()["sec-websocket-protocol"], "careq");
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Text(text) = msg else {
        panic!("a text snapshot first")
    };
    let snapshot: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(snapshot["kind"], "snapshot");
    assert_eq!(snapshot["clinic"], "Live desk");

    // A token that is not one gets the same 401 as a bad Authorization header.
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "careq, careq.bearer.0000".parse().unwrap(),
    );
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(res) = err else {
        panic!("an HTTP refusal, not {err}")
    };
    assert_eq!(res.status(), 401);
}
