//! Operator and security fixes of issue 15 (items 1 and 2): staff change their own password
//! (every session ends), and the client's address behind a trusted reverse proxy.
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, STAFF_PASSWORD};

#[tokio::test]
async fn me_answers_the_callers_own_account_with_an_etag() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (id, token) = app
        .create_staff(&admin, "nurse.kim", "clinician", &[])
        .await;
    let res = app
        .authed(Method::GET, "/v1/me", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["username"], "nurse.kim");
    assert!(body.get("password_hash").is_none());
    let res = app
        .authed(Method::GET, "/v1/me", &token)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    let res = app.get("/v1/me").await;
    assert!(res.headers().contains_key("www-authenticate"));
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn changing_your_own_password_ends_every_session_and_a_wrong_current_one_is_throttled() {
    let app = spawn_app_with(|c| c.login_attempts = 3).await;
    let admin = app.admin_token().await;
    app.create_staff(&admin, "nurse.lee", "receptionist", &[])
        .await;
    let first = app.login("nurse.lee", STAFF_PASSWORD).await;
    let second = app.login("nurse.lee", STAFF_PASSWORD).await;
    let change = |token: &str, current: &str, new: &str| {
        app.authed(Method::POST, "/v1/me/password", token)
            .json(&json!({"current": current, "new": new}))
            .send()
    };
    let problem = assert_problem(change(&first, STAFF_PASSWORD, "short").await.unwrap(), 422).await;
    assert_eq!(problem["errors"][0]["pointer"], "/new");
    let problem = assert_problem(
        change(&first, "not my password", "a perfectly new password")
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["pointer"], "/current");

    let res = change(&first, STAFF_PASSWORD, "a perfectly new password")
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for token in [&first, &second] {
        let res = app
            .authed(Method::GET, "/v1/me", token)
            .send()
            .await
            .unwrap();
        assert_problem(res, 401).await;
    }
    let fresh = app.login("nurse.lee", "a perfectly new password").await;
    // Guessing the current password is throttled as sign-in is (the wrong guess above counted
    // too: with three allowed, two more fill the window).
    for _ in 0..2 {
        let res = change(&fresh, "guess guess guess", "another new password")
            .await
            .unwrap();
        assert_problem(res, 422).await;
    }
    let res = change(&fresh, "a perfectly new password", "another new password")
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429).await;
}

/// The IP the access log recorded for the newest entry.
async fn last_logged_ip(app: &crate::helpers::TestApp) -> String {
    sqlx::query_scalar("SELECT ip FROM access_log ORDER BY seq DESC LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_address_is_used() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec![careq::auth::client_ip::Cidr::parse("127.0.0.0/8").unwrap()];
        c.login_attempts = 2;
    })
    .await;
    let admin = app.admin_token().await;
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.23")
        .json(&json!({"name": "Proxied", "timezone": "UTC", "ticket_prefix": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let clinic = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .header("x-forwarded-for", "192.0.2.44")
        .json(
            &json!({"clinic_id": clinic, "given_name": "Pro", "family_name": "Xy",
            "date_of_birth": "1970-01-01", "sex": "other"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(last_logged_ip(&app).await, "192.0.2.44");
    // Failed sign-ins lock the address that failed, not the proxy everyone shares.
    let sign_in = |from: &'static str| {
        app.client
            .post(app.url("/v1/auth/token"))
            .header("x-forwarded-for", from)
            .json(&json!({"username": "admin", "password": "wrong password!"}))
            .send()
    };
    for _ in 0..2 {
        assert_problem(sign_in("203.0.113.5").await.unwrap(), 401).await;
    }
    assert_problem(sign_in("203.0.113.5").await.unwrap(), 429).await;
    assert_problem(sign_in("203.0.113.6").await.unwrap(), 401).await;
}

#[tokio::test]
async fn from_an_untrusted_peer_forwarding_headers_are_ignored() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec![careq::auth::client_ip::Cidr::parse("10.0.0.0/8").unwrap()];
    })
    .await;
    let admin = app.admin_token().await;
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .header("x-forwarded-for", "198.51.100.23")
        .json(&json!({"name": "Direct", "timezone": "UTC", "ticket_prefix": "D"}))
        .send()
        .await
        .unwrap();
    let clinic = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .header("x-forwarded-for", "198.51.100.23")
        .json(
            &json!({"clinic_id": clinic, "given_name": "Di", "family_name": "Rect",
            "date_of_birth": "1970-01-01", "sex": "other"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(last_logged_ip(&app).await, "127.0.0.1");
}
