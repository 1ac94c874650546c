//! `/v1/clinics`: validation, members-only visibility (404 like a missing clinic), If-Match.
use reqwest::Method;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_clinic_with_broken_fields_gets_422_naming_each() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .json(&serde_json::json!({"name": "", "timezone": "Mars/Base", "ticket_prefix": "TOOLONG"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422).await;
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/name", "/timezone", "/ticket_prefix"]);
}

#[tokio::test]
async fn staff_see_their_clinics_and_another_clinic_is_404_like_a_missing_one() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mine = app.create_clinic(&admin, "Mine").await;
    let other = app.create_clinic(&admin, "Other").await;
    let (_, token) = app
        .create_staff(&admin, "recep", "receptionist", &[&mine])
        .await;

    let res = app
        .authed(Method::GET, &format!("/v1/clinics/{mine}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"1\"");

    let hidden = app
        .authed(Method::GET, &format!("/v1/clinics/{other}"), &token)
        .send()
        .await
        .unwrap();
    let missing = app
        .authed(Method::GET, "/v1/clinics/cln_nonexistent", &token)
        .send()
        .await
        .unwrap();
    let a = assert_problem(hidden, 404).await;
    let b = assert_problem(missing, 404).await;
    assert_eq!(a["detail"], b["detail"]);

    let list: serde_json::Value = app
        .authed(Method::GET, "/v1/clinics", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    let all: serde_json::Value = app
        .authed(Method::GET, "/v1/clinics", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn clinic_updates_follow_if_match() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app.create_clinic(&admin, "Central").await;
    let path = format!("/v1/clinics/{id}");
    let patch = |etag: &'static str, body: &'static str| {
        app.authed(Method::PATCH, &path, &admin)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", etag)
            .body(body)
            .send()
    };
    let ok = patch("\"1\"", r#"{"ticket_prefix":"b"}"#).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["ticket_prefix"], "B");
    let stale = patch("\"1\"", r#"{"name":"X"}"#).await.unwrap();
    assert_eq!(stale.headers()["etag"], "\"2\"");
    assert_problem(stale, 412).await;
    let bad = patch("\"2\"", r#"{"timezone":"Nowhere"}"#).await.unwrap();
    assert_problem(bad, 422).await;
}
