//! The walk-in queue: numbers, order, calling, transitions, now-serving, closing, the report.
use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

async fn setup(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Queue").await;
    (admin, clinic)
}

async fn issue(app: &TestApp, token: &str, clinic: &str, priority: &str) -> reqwest::Response {
    app.authed(
        Method::POST,
        &format!("/v1/clinics/{clinic}/queue/tickets"),
        token,
    )
    .json(&json!({"priority": priority}))
    .send()
    .await
    .unwrap()
}

async fn call(app: &TestApp, token: &str, clinic: &str, counter: &str) -> reqwest::Response {
    app.authed(
        Method::POST,
        &format!("/v1/clinics/{clinic}/queue/call-next"),
        token,
    )
    .json(&json!({"counter": counter}))
    .send()
    .await
    .unwrap()
}

async fn move_ticket(
    app: &TestApp,
    token: &str,
    id: &str,
    etag: Option<&str>,
    status: &str,
) -> reqwest::Response {
    let mut req = app
        .authed(Method::PATCH, &format!("/v1/tickets/{id}"), token)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"status": status}).to_string());
    if let Some(e) = etag {
        req = req.header("if-match", e);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn issuing_a_ticket_returns_201_with_its_number_position_and_wait_estimate() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let res = issue(&app, &admin, &clinic, "normal").await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let t: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/tickets/{}", t["id"].as_str().unwrap())
    );
    assert_eq!(t["number"], "A-001");
    assert_eq!(t["status"], "waiting");
    assert_eq!(t["position"], 1);
    assert_eq!(t["estimated_wait_seconds"], 0);
    let second: Value = issue(&app, &admin, &clinic, "normal")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["number"], "A-002");
    assert_eq!(second["position"], 2);
    assert_eq!(second["estimated_wait_seconds"], 300);
    let bad = issue(&app, &admin, &clinic, "whenever").await;
    let body = assert_problem(bad, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/priority");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_tickets_from_eight_clients_get_two_hundred_consecutive_numbers() {
    let app = spawn_app_with(|c| c.rate_burst = 100_000).await;
    let (admin, clinic) = setup(&app).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/v1/clinics/{clinic}/queue/tickets")),
            admin.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for _ in 0..25 {
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
                let t: Value = res.json().await.unwrap();
                numbers.push(t["number"].as_str().unwrap().to_string());
            }
            numbers
        }));
    }
    let mut seqs = Vec::new();
    for c in clients {
        for n in c.await.unwrap() {
            seqs.push(n.trim_start_matches("A-").parse::<u32>().unwrap());
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<u32>>());
}

#[tokio::test]
async fn calling_follows_priority_then_arrival_and_an_empty_queue_answers_204() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    issue(&app, &admin, &clinic, "normal").await;
    issue(&app, &admin, &clinic, "emergency").await;
    issue(&app, &admin, &clinic, "urgent").await;
    let mut called = Vec::new();
    for _ in 0..3 {
        let res = call(&app, &admin, &clinic, "2").await;
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("etag").is_some());
        let t: Value = res.json().await.unwrap();
        assert_eq!(t["status"], "called");
        assert_eq!(t["counter"], "2");
        called.push(t["number"].as_str().unwrap().to_string());
    }
    assert_eq!(called, ["A-002", "A-003", "A-001"]);
    let empty = call(&app, &admin, &clinic, "2").await;
    assert_eq!(empty.status(), 204);
    assert!(empty.headers().get("content-length").is_none());
    assert!(empty.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_counters_calling_at_once_never_get_the_same_ticket() {
    let app = spawn_app_with(|c| c.rate_burst = 100_000).await;
    let (admin, clinic) = setup(&app).await;
    for _ in 0..40 {
        issue(&app, &admin, &clinic, "normal").await;
    }
    let mut loops = Vec::new();
    for counter in ["1", "2"] {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/v1/clinics/{clinic}/queue/call-next")),
            admin.clone(),
        );
        loops.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"counter": counter}))
                    .send()
                    .await
                    .unwrap();
                if res.status() == 204 {
                    break got;
                }
                assert_eq!(res.status(), 200);
                let t: Value = res.json().await.unwrap();
                got.push(t["id"].as_str().unwrap().to_string());
            }
        }));
    }
    let mut all = Vec::new();
    for l in loops {
        all.extend(l.await.unwrap());
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 40);
    assert_eq!(distinct.len(), 40);
}

#[tokio::test]
async fn tickets_move_only_along_allowed_transitions_with_one_recall() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let t: Value = issue(&app, &admin, &clinic, "normal")
        .await
        .json()
        .await
        .unwrap();
    let id = t["id"].as_str().unwrap().to_string();
    assert_problem(move_ticket(&app, &admin, &id, None, "cancelled").await, 428).await;
    let res = move_ticket(&app, &admin, &id, Some("\"1\""), "served").await;
    let body = assert_problem(res, 409).await;
    assert_eq!(body["related"], format!("/v1/tickets/{id}"));
    call(&app, &admin, &clinic, "1").await;
    let res = move_ticket(&app, &admin, &id, Some("\"2\""), "no_show").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"3\"");
    let recalled = move_ticket(&app, &admin, &id, Some("\"3\""), "waiting").await;
    assert_eq!(recalled.status(), 200);
    let v: Value = recalled.json().await.unwrap();
    assert_eq!(v["recalled"], true);
    call(&app, &admin, &clinic, "1").await;
    assert_eq!(
        move_ticket(&app, &admin, &id, Some("\"5\""), "no_show")
            .await
            .status(),
        200
    );
    assert_problem(
        move_ticket(&app, &admin, &id, Some("\"6\""), "waiting").await,
        409,
    )
    .await;
    let stale = move_ticket(&app, &admin, &id, Some("\"1\""), "waiting").await;
    assert_eq!(stale.headers()["etag"], "\"6\"");
    assert_problem(stale, 412).await;
}

#[tokio::test]
async fn now_serving_redirects_302_to_the_ticket_called_last() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let path = format!("/v1/clinics/{clinic}/queue/now-serving");
    assert_problem(
        app.authed(Method::GET, &path, &admin).send().await.unwrap(),
        404,
    )
    .await;
    issue(&app, &admin, &clinic, "normal").await;
    issue(&app, &admin, &clinic, "normal").await;
    call(&app, &admin, &clinic, "1").await;
    let second: Value = call(&app, &admin, &clinic, "2").await.json().await.unwrap();
    let res = app.authed(Method::GET, &path, &admin).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        format!("/v1/tickets/{}", second["id"].as_str().unwrap())
    );
}

#[tokio::test]
async fn the_queue_view_has_a_strong_etag_and_answers_304_until_it_changes() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    issue(&app, &admin, &clinic, "normal").await;
    let path = format!("/v1/clinics/{clinic}/queue");
    let res = app.authed(Method::GET, &path, &admin).send().await.unwrap();
    let etag = res.headers()["etag"].clone();
    assert!(!etag.to_str().unwrap().starts_with("W/"));
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["items"].as_array().unwrap().len(), 1);
    assert_eq!(view["closed"], false);
    let same = app
        .authed(Method::GET, &path, &admin)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 304);
    assert_eq!(same.headers()["etag"], etag);
    issue(&app, &admin, &clinic, "urgent").await;
    let changed = app
        .authed(Method::GET, &path, &admin)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag);
}

#[tokio::test]
async fn a_closed_queue_refuses_tickets_with_423_until_reopened() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    issue(&app, &admin, &clinic, "normal").await;
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/close"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_problem(issue(&app, &admin, &clinic, "normal").await, 423).await;
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/reopen"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let t: Value = issue(&app, &admin, &clinic, "normal")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["number"], "A-002", "a refused ticket uses up no number");
}

#[tokio::test]
async fn the_daily_report_counts_served_and_no_shows_with_wait_figures() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    for _ in 0..3 {
        issue(&app, &admin, &clinic, "normal").await;
    }
    for outcome in ["served", "no_show"] {
        let t: Value = call(&app, &admin, &clinic, "1").await.json().await.unwrap();
        let res = move_ticket(
            &app,
            &admin,
            t["id"].as_str().unwrap(),
            Some("\"2\""),
            outcome,
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    let r: Value = app
        .authed(
            Method::GET,
            &format!("/v1/clinics/{clinic}/queue/report"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["issued"], 3);
    assert_eq!(r["served"], 1);
    assert_eq!(r["no_shows"], 1);
    assert!(r["average_wait_seconds"].as_f64().unwrap() >= 0.0);
    assert!(r["p90_wait_seconds"].as_f64().unwrap() >= 0.0);
    let bad = app
        .authed(
            Method::GET,
            &format!("/v1/clinics/{clinic}/queue/report?date=yesterday"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_problem(bad, 400).await;
    // A bad `day` beside a good `date` is still a bad request.
    let bad = app
        .authed(
            Method::GET,
            &format!("/v1/clinics/{clinic}/queue/report?date=2030-01-10&day=%C3%96"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    let problem = assert_problem(bad, 400).await;
    assert!(problem.to_string().contains("query/day"), "{problem}");
}
