//! Queue actions without a read-modify-write: `POST /v1/tickets/{id}/served|no-show|recall|cancel`
//! guarded by the state machine (409 naming the state, no `If-Match` needed), and the queue view
//! a counter screen reads in one request (number, priority, waiting time, patient's name).
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::StreamExt;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::patients::create_patient;

async fn setup(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Counter").await;
    (admin, clinic)
}

/// Issues a ticket (optionally for a patient) and returns its id.
async fn issue(app: &TestApp, token: &str, clinic: &str, body: Value) -> String {
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/tickets"),
            token,
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let t: Value = res.json().await.unwrap();
    t["id"].as_str().unwrap().to_string()
}

/// Calls the next ticket to a counter and returns its id.
async fn call(app: &TestApp, token: &str, clinic: &str) -> String {
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/call-next"),
            token,
        )
        .json(&json!({"counter": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    t["id"].as_str().unwrap().to_string()
}

async fn act(app: &TestApp, token: &str, id: &str, action: &str) -> reqwest::Response {
    app.authed(Method::POST, &format!("/v1/tickets/{id}/{action}"), token)
        .send()
        .await
        .unwrap()
}

async fn ticket(app: &TestApp, token: &str, id: &str) -> Value {
    let res = app
        .authed(Method::GET, &format!("/v1/tickets/{id}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A 200 from an action: the moved ticket, with the ETag of its new version.
async fn moved(res: reqwest::Response, status: &str) -> Value {
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let t: Value = res.json().await.unwrap();
    assert_eq!(t["status"], status, "{t}");
    assert_eq!(
        etag,
        format!("\"{}\"", t["version"]),
        "the new version's tag"
    );
    t
}

#[tokio::test]
async fn marking_a_called_ticket_served_needs_no_if_match_and_answers_200_with_its_new_etag() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let id = issue(&app, &admin, &clinic, json!({})).await;
    call(&app, &admin, &clinic).await;
    let t = moved(act(&app, &admin, &id, "served").await, "served").await;
    assert!(t["finished_at"].is_string(), "{t}");
    let read = ticket(&app, &admin, &id).await;
    assert_eq!(read["status"], "served");
    assert_eq!(read["version"], t["version"]);
}

#[tokio::test]
async fn an_illegal_action_is_409_naming_the_tickets_state_and_the_wanted_one_and_changes_nothing()
{
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let id = issue(&app, &admin, &clinic, json!({})).await;
    for (action, wanted) in [
        ("served", "served"),
        ("no-show", "no_show"),
        ("recall", "waiting"),
    ] {
        let p = assert_problem(act(&app, &admin, &id, action).await, 409).await;
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains("is waiting"), "{detail}");
        assert!(
            detail.contains(&format!("cannot become {wanted}")),
            "{detail}"
        );
        assert_eq!(p["related"], format!("/v1/tickets/{id}"));
    }
    let t = ticket(&app, &admin, &id).await;
    assert_eq!(
        (t["status"].as_str(), t["version"].as_i64()),
        (Some("waiting"), Some(1))
    );
}

#[tokio::test]
async fn a_no_show_is_recalled_once_and_a_second_recall_is_409_saying_so() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let id = issue(&app, &admin, &clinic, json!({})).await;
    call(&app, &admin, &clinic).await;
    moved(act(&app, &admin, &id, "no-show").await, "no_show").await;
    let back = moved(act(&app, &admin, &id, "recall").await, "waiting").await;
    assert_eq!(back["recalled"], true);
    call(&app, &admin, &clinic).await;
    moved(act(&app, &admin, &id, "no-show").await, "no_show").await;
    let p = assert_problem(act(&app, &admin, &id, "recall").await, 409).await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("is no_show") && detail.contains("recall is used"),
        "{detail}"
    );
}

#[tokio::test]
async fn an_action_honours_an_if_match_if_sent_412_with_the_current_etag_when_stale() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let id = issue(&app, &admin, &clinic, json!({})).await;
    let res = app
        .authed(Method::POST, &format!("/v1/tickets/{id}/cancel"), &admin)
        .header("if-match", "\"7\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"1\"");
    assert_problem(res, 412).await;
    let res = app
        .authed(Method::POST, &format!("/v1/tickets/{id}/cancel"), &admin)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    moved(res, "cancelled").await;
    let p = assert_problem(act(&app, &admin, &id, "cancel").await, 409).await;
    assert!(
        p["detail"].as_str().unwrap().contains("is cancelled"),
        "{p}"
    );
    let res = app
        .authed(Method::POST, &format!("/v1/tickets/{id}/cancel"), &admin)
        .header("if-match", "not a tag")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
    let res = app
        .authed(Method::POST, &format!("/v1/tickets/{id}/cancel"), &admin)
        .header(
            "if-match",
            reqwest::header::HeaderValue::from_bytes(b"\xc2\x84").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
    // An empty If-Match is an empty list of tags: nothing matches.
    let res = app
        .authed(Method::POST, &format!("/v1/tickets/{id}/recall"), &admin)
        .header("if-match", "")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    assert_problem(res, 412).await;
}

#[tokio::test]
async fn actions_on_a_missing_or_another_clinics_ticket_are_404_and_patch_still_works() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let other = app.create_clinic(&admin, "Elsewhere").await;
    let id = issue(&app, &admin, &other, json!({})).await;
    let (_, desk) = app
        .create_staff(&admin, "desk.actions", "receptionist", &[&clinic])
        .await;
    assert_problem(act(&app, &desk, &id, "cancel").await, 404).await;
    let missing = "tkt_00000000000000000000";
    assert_problem(act(&app, &admin, missing, "served").await, 404).await;
    // The same move by merge patch, for integrators who want it, still needs If-Match.
    let patch = |etag: Option<&str>| {
        let mut req = app
            .authed(Method::PATCH, &format!("/v1/tickets/{id}"), &admin)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"status": "cancelled"}).to_string());
        if let Some(e) = etag {
            req = req.header("if-match", e);
        }
        req.send()
    };
    assert_problem(patch(None).await.unwrap(), 428).await;
    moved(patch(Some("\"1\"")).await.unwrap(), "cancelled").await;
}

#[tokio::test]
async fn two_counters_racing_for_one_ticket_one_wins_and_the_others_hear_409_naming_its_state() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    for round in 0..3 {
        let id = issue(&app, &admin, &clinic, json!({})).await;
        assert_eq!(call(&app, &admin, &clinic).await, id, "round {round}");
        // Half the counters mark it served, half a no-show, all at once, none with If-Match.
        let sent = (0..10).map(|i| {
            let action = if i % 2 == 0 { "served" } else { "no-show" };
            act(&app, &admin, &id, action)
        });
        let res = join_all(sent).await;
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for r in res {
            match r.status().as_u16() {
                200 => winners.push(r.json::<Value>().await.unwrap()),
                409 => losers.push(assert_problem(r, 409).await),
                other => panic!("an action answered {other}"),
            }
        }
        assert_eq!((winners.len(), losers.len()), (1, 9), "round {round}");
        let state = winners[0]["status"].as_str().unwrap().to_string();
        for p in losers {
            let detail = p["detail"].as_str().unwrap();
            assert!(detail.contains(&format!("is {state}")), "{detail}");
        }
        assert_eq!(ticket(&app, &admin, &id).await["status"], state.as_str());
    }
}

/// Sends an action and resets the connection (RST) a moment later without reading the answer.
async fn vanish(app: &TestApp, token: &str, path: String) {
    let mut s = app.connect().await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    );
    let _ = s.write_all(head.as_bytes()).await;
    // Not a wait for readiness: the reset lands at a random point of the server's work.
    let wait = rand::thread_rng().gen_range(0..10);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    #[allow(deprecated)] // the blocking drop is what a reset needs here, and it is instant
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

#[tokio::test]
async fn clients_resetting_mid_action_leave_each_ticket_whole_and_the_queue_working() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        issue(&app, &admin, &clinic, json!({})).await;
        ids.push(call(&app, &admin, &clinic).await);
    }
    join_all(
        ids.iter()
            .map(|id| vanish(&app, &admin, format!("/v1/tickets/{id}/served"))),
    )
    .await;
    // Each ticket is moved whole or not at all. A reset request may still be at work (the server
    // finishes what it started), so serving one that reads as called may meet that move: 409
    // naming `served`. Either way each ends served at version 3.
    for id in &ids {
        let t = ticket(&app, &admin, id).await;
        match t["status"].as_str().unwrap() {
            "served" => {}
            "called" => {
                let res = act(&app, &admin, id, "served").await;
                if res.status() == 409 {
                    let p = assert_problem(res, 409).await;
                    assert!(p["detail"].as_str().unwrap().contains("is served"), "{p}");
                } else {
                    moved(res, "served").await;
                }
            }
            other => panic!("a reset left a ticket {other}"),
        }
        let t = ticket(&app, &admin, id).await;
        assert_eq!(
            (t["status"].as_str(), t["version"].as_i64()),
            (Some("served"), Some(3)),
            "{t}"
        );
    }
    // Then normal reads and writes.
    let id = issue(&app, &admin, &clinic, json!({})).await;
    assert_eq!(call(&app, &admin, &clinic).await, id);
    moved(act(&app, &admin, &id, "no-show").await, "no_show").await;
    let res = app
        .authed(Method::GET, &format!("/v1/clinics/{clinic}/queue"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.assert_no_transaction_left_open().await;
}

async fn next_event<S>(ws: &mut S) -> Value
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
async fn the_board_hears_an_action_as_it_hears_a_patch_and_never_a_name() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let (pid, _) = create_patient(
        &app,
        &admin,
        &json!({"clinic_id": clinic, "given_name": "Rory", "family_name": "Williams",
            "date_of_birth": "1988-03-03", "sex": "male"}),
    )
    .await;
    let link: Value = app
        .authed(Method::POST, &format!("/v1/clinics/{clinic}/board"), &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = link["url"]
        .as_str()
        .unwrap()
        .split("key=")
        .nth(1)
        .unwrap()
        .to_string();
    // The board key goes in a subprotocol (as a browser offers it), never in the URL.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/clinics/{clinic}/queue/live", app.addr),
    )
    .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("careq, careq.board.{key}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(next_event(&mut ws).await["kind"], "snapshot");
    let id = issue(&app, &admin, &clinic, json!({"patient_id": pid})).await;
    assert_eq!(next_event(&mut ws).await["kind"], "issued");
    call(&app, &admin, &clinic).await;
    assert_eq!(next_event(&mut ws).await["kind"], "called");
    moved(act(&app, &admin, &id, "served").await, "served").await;
    let event = next_event(&mut ws).await;
    assert_eq!(event["kind"], "updated", "{event}");
    assert_eq!(event["ticket"]["number"], "A-001");
    assert_eq!(event["ticket"]["status"], "served");
    let text = event.to_string();
    assert!(!text.contains("Rory") && !text.contains(&pid), "{text}");
}

#[tokio::test]
async fn the_queue_view_gives_each_ticket_its_number_priority_waiting_time_and_patients_name() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let (pid, _) = create_patient(
        &app,
        &admin,
        &json!({"clinic_id": clinic, "given_name": "Amy", "family_name": "Pond",
            "date_of_birth": "1989-04-01", "sex": "female"}),
    )
    .await;
    let (_, desk) = app
        .create_staff(&admin, "desk.view", "receptionist", &[&clinic])
        .await;
    let walk_in = issue(&app, &desk, &clinic, json!({})).await;
    let urgent = issue(
        &app,
        &desk,
        &clinic,
        json!({"patient_id": pid, "priority": "urgent"}),
    )
    .await;
    let res = app
        .authed(Method::GET, &format!("/v1/clinics/{clinic}/queue"), &desk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("etag"));
    let view: Value = res.json().await.unwrap();
    let items = view["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [urgent.as_str(), walk_in.as_str()], "urgent first");
    assert_eq!(items[0]["number"], "A-002");
    assert_eq!(items[0]["priority"], "urgent");
    assert_eq!(items[0]["patient_name"], "Amy Pond");
    assert_eq!(items[1]["number"], "A-001");
    assert_eq!(items[1]["priority"], "normal");
    assert!(items[1]["patient_name"].is_null(), "{}", items[1]);
    for t in items {
        let waited = t["waiting_seconds"].as_u64().expect("whole seconds");
        assert!(waited < 600, "{t}");
    }
    // The name shown is a read of the patient's record, in its access log.
    let log: Value = app
        .authed(
            Method::GET,
            &format!("/v1/patients/{pid}/access-log"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        log.to_string().contains("\"read\""),
        "the queue view's read is logged: {log}"
    );
}
