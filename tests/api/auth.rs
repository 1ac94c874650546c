//! Tokens: sign-in, 401 with WWW-Authenticate, revocation, expiry, login throttling, rate limits.
use reqwest::Method;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, ADMIN_PASSWORD};

const BEARER: &str = r#"Bearer realm="careq""#;
const INVALID: &str = r#"Bearer realm="careq", error="invalid_token""#;

async fn sign_in(
    app: &crate::helpers::TestApp,
    client: &reqwest::Client,
    user: &str,
    pw: &str,
) -> reqwest::Response {
    client
        .post(app.url("/v1/auth/token"))
        .json(&serde_json::json!({"username": user, "password": pw}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_returns_a_bearer_token_that_opens_protected_endpoints() {
    let app = spawn_app().await;
    let res = sign_in(&app, &app.client, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 43_200);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 32, "at least 128 bits");
    let res = app
        .authed(Method::GET, "/v1/users", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_missing_token_returns_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let res = app.get("/v1/users").await;
    assert_eq!(res.headers()["www-authenticate"], BEARER);
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn an_unknown_token_returns_401_invalid_token() {
    let app = spawn_app().await;
    let res = app
        .authed(Method::GET, "/v1/clinics", "not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], INVALID);
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_revoked_token_returns_401_invalid_token() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let res = app
        .authed(Method::DELETE, "/v1/auth/token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.headers().get("content-length").is_none());
    let res = app
        .authed(Method::GET, "/v1/users", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], INVALID);
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn an_expired_token_returns_401_invalid_token() {
    let app = spawn_app_with(|c| c.token_ttl_seconds = 0).await;
    let token = app.admin_token().await;
    let res = app
        .authed(Method::GET, "/v1/users", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], INVALID);
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    let wrong = sign_in(&app, &app.client, "admin", "not-the-password").await;
    let unknown = sign_in(&app, &app.client, "nobody-here", "not-the-password").await;
    for res in [&wrong, &unknown] {
        assert_eq!(res.headers()["www-authenticate"], BEARER);
    }
    let a = assert_problem(wrong, 401).await;
    let b = assert_problem(unknown, 401).await;
    assert_eq!(a["detail"], b["detail"]);
    assert_eq!(a["title"], b["title"]);
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(ip.parse().unwrap()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn repeated_failed_logins_get_429_per_user_and_ip_and_a_success_does_not_unlock() {
    let app = spawn_app_with(|c| c.login_attempts = 3).await;
    let attacker = client_from("127.0.0.2");
    let nurse = client_from("127.0.0.3");
    for _ in 0..3 {
        let res = sign_in(&app, &attacker, "admin", "guess-guess-guess").await;
        assert_eq!(res.headers()["www-authenticate"], BEARER);
        assert_problem(res, 401).await;
    }
    // Even the right password is refused from that address now.
    let res = sign_in(&app, &attacker, "admin", ADMIN_PASSWORD).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_problem(res, 429).await;
    // The real user elsewhere signs in fine, and that does not unlock the attacker.
    assert_eq!(
        sign_in(&app, &nurse, "admin", ADMIN_PASSWORD)
            .await
            .status(),
        200
    );
    let res = sign_in(&app, &attacker, "admin", ADMIN_PASSWORD).await;
    assert_problem(res, 429).await;
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after_and_ratelimit_headers() {
    let app = spawn_app_with(|c| {
        c.rate_per_second = 1;
        c.rate_burst = 3;
    })
    .await;
    let token = app.admin_token().await;
    for _ in 0..3 {
        let res = app
            .authed(Method::GET, "/v1/clinics", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = app
        .authed(Method::GET, "/v1/clinics", &token)
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(res.headers()["ratelimit-limit"], "3");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    assert!(res.headers().get("ratelimit-reset").is_some());
    assert_problem(res, 429).await;
}
