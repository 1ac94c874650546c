//! 503 (maintenance, load shedding, a busy database), 507 (size cap), CORS and security headers.
use reqwest::Method;
use tokio::io::AsyncWriteExt;

use crate::helpers::{assert_problem, read_head, read_to_close, spawn_app, spawn_app_with};

async fn set_maintenance(
    app: &crate::helpers::TestApp,
    token: &str,
    enabled: bool,
) -> reqwest::Response {
    app.authed(Method::POST, "/v1/admin/maintenance", token)
        .json(&serde_json::json!({"enabled": enabled, "retry_after_seconds": 30}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn maintenance_mode_answers_503_with_retry_after_to_everyone_but_admins() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "M").await;
    let (_, clerk) = app
        .create_staff(&admin, "clerk", "receptionist", &[&clinic])
        .await;
    assert_problem(set_maintenance(&app, &clerk, true).await, 403).await;
    assert_eq!(set_maintenance(&app, &admin, true).await.status(), 200);

    let res = app
        .authed(Method::GET, "/v1/clinics", &clerk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["retry-after"], "30");
    assert_problem(res, 503).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.headers()["retry-after"], "30");
    assert_problem(ready, 503).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(
        app.authed(Method::GET, "/v1/clinics", &admin)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Signing in still works, so an admin can always end maintenance.
    let admin2 = app.admin_token().await;
    assert_eq!(set_maintenance(&app, &admin2, false).await.status(), 200);
    assert_eq!(
        app.authed(Method::GET, "/v1/clinics", &clerk)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn requests_over_the_in_flight_limit_are_shed_with_503_and_retry_after() {
    let app = spawn_app_with(|c| c.max_in_flight = 1).await;
    let body = br#"{"name":"x","count":1}"#;
    let mut held = app.connect().await;
    held.write_all(
        format!(
            "POST /v1/_test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert!(read_head(&mut held).await.starts_with("HTTP/1.1 100"));
    // The one permit is taken by the request above, still waiting for its body.
    let res = app.get("/v1/status-codes/404").await;
    assert_eq!(res.headers()["retry-after"], "1");
    assert_problem(res, 503).await;
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness is never shed"
    );
    held.write_all(body).await.unwrap();
    assert_eq!(read_to_close(&mut held).await.status, 200);
    assert_eq!(app.get("/v1/status-codes/404").await.status(), 200);
}

#[tokio::test]
async fn a_database_locked_past_the_busy_timeout_answers_503_with_retry_after() {
    let app = spawn_app_with(|c| c.db_busy_timeout_ms = 200).await;
    let admin = app.admin_token().await;
    let mut locker = app.hold_writes().await;
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .json(&serde_json::json!({"name": "Busy", "timezone": "UTC", "ticket_prefix": "B"}))
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
    assert_problem(res, 503).await;
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    drop(locker);
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .json(&serde_json::json!({"name": "Busy", "timezone": "UTC", "ticket_prefix": "B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_full_database_answers_507_stores_nothing_partial_keeps_reads_and_recovers() {
    crate::sqlite_only!(
        "a cap of 400 KiB is below an empty PostgreSQL database, whose size does not shrink on DELETE"
    );
    let app = spawn_app_with(|c| {
        c.db_max_bytes = Some(400 * 1024);
        c.rate_burst = 100_000;
    })
    .await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Full").await;
    let mut created = 0i64;
    let mut full = None;
    for i in 0..5000 {
        let res = app
            .authed(Method::POST, "/v1/patients", &admin)
            .json(&serde_json::json!({
                "clinic_id": clinic, "given_name": format!("Fill{i}"), "family_name": "Up",
                "date_of_birth": "1980-01-01", "sex": "other", "address": "x".repeat(500)
            }))
            .send()
            .await
            .unwrap();
        if res.status() == 201 {
            created += 1;
        } else {
            full = Some(res);
            break;
        }
    }
    let res = full.expect("the cap was reached");
    assert_problem(res, 507).await;
    assert!(created > 0);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM patients")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, created, "nothing partial is stored");
    let logged: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_log WHERE action = 'create' AND resource_type = 'patient'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(logged, created, "no change without its access-log entry");
    let list = app
        .authed(Method::GET, "/v1/patients?limit=5", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200, "reads keep working");
    // An operator frees space; writes work again.
    sqlx::query("DELETE FROM patients")
        .execute(&mut app.writable().await)
        .await
        .unwrap();
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .json(&serde_json::json!({
            "clinic_id": clinic, "given_name": "After", "family_name": "Space",
            "date_of_birth": "1980-01-01", "sex": "other"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn cors_headers_go_only_to_configured_origins() {
    let app =
        spawn_app_with(|c| c.cors_origins = vec!["https://front.clinic.example".into()]).await;
    let allowed = app
        .client
        .get(app.url("/v1/status-codes/200"))
        .header("origin", "https://front.clinic.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://front.clinic.example"
    );
    assert!(allowed
        .headers()
        .get_all("vary")
        .iter()
        .any(|v| v == "Origin"));
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/v1/clinics"))
        .header("origin", "https://front.clinic.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Authorization"));
    let other = app
        .client
        .get(app.url("/v1/status-codes/200"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn patient_data_is_never_cached_and_every_answer_says_nosniff() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Sec").await;
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .json(&serde_json::json!({"clinic_id": clinic, "given_name": "Nia", "family_name": "Safe", "date_of_birth": "1990-01-01", "sex": "female"}))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    for path in [location.as_str(), "/v1/patients", "/v1/nowhere"] {
        let res = app.authed(Method::GET, path, &admin).send().await.unwrap();
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}
