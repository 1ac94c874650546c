//! `/v1/users`: create, read, conditional update, delete then 410, the access log, the CLI.
use reqwest::Method;

use crate::helpers::{assert_problem, spawn_app, STAFF_PASSWORD};

#[tokio::test]
async fn an_admin_creates_a_user_with_201_location_and_etag_and_no_password_in_sight() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    let res = app
        .authed(Method::POST, "/v1/users", &admin)
        .json(&serde_json::json!({"username": "Nurse.Joy", "password": STAFF_PASSWORD, "role": "clinician", "clinic_ids": [clinic]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let etag = res.headers()["etag"].clone();
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = res.text().await.unwrap();
    assert!(!text.contains(STAFF_PASSWORD) && !text.contains("argon2"));
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        location,
        format!("/v1/users/{}", body["id"].as_str().unwrap())
    );
    assert_eq!(body["username"], "nurse.joy");
    assert_eq!(body["clinic_ids"][0], clinic.as_str());

    let res = app
        .authed(Method::GET, &location, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], etag);
    assert!(res.headers().get("last-modified").is_some());
    let res = app
        .authed(Method::GET, &location, &admin)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["etag"], etag);

    // The creation is in the access log with who, what and the request id.
    let row: (String, String, String) = sqlx::query_as(
        "SELECT a.action, a.request_id, u.username FROM access_log a JOIN users u ON u.id = a.actor_id
         WHERE a.resource_type = 'user' AND a.resource_id = $1",
    )
    .bind(body["id"].as_str().unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(row, ("create".into(), request_id, "admin".into()));
    // And the log cannot be rewritten.
    let mut own = app.writable().await;
    assert!(sqlx::query("UPDATE access_log SET action = 'x'")
        .execute(&mut own)
        .await
        .is_err());
    assert!(sqlx::query("DELETE FROM access_log")
        .execute(&mut own)
        .await
        .is_err());
}

#[tokio::test]
async fn invalid_users_get_422_with_pointers_and_duplicates_409() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let post = |body: serde_json::Value| {
        app.authed(Method::POST, "/v1/users", &admin)
            .json(&body)
            .send()
    };
    let short =
        post(serde_json::json!({"username": "sam", "password": "short", "role": "clinician"}))
            .await
            .unwrap();
    let body = assert_problem(short, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/password");
    let role =
        post(serde_json::json!({"username": "sam", "password": STAFF_PASSWORD, "role": "janitor"}))
            .await
            .unwrap();
    let body = assert_problem(role, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/role");
    let clinic = post(serde_json::json!({"username": "sam", "password": STAFF_PASSWORD, "role": "clinician", "clinic_ids": ["cln_nope"]}))
        .await
        .unwrap();
    let body = assert_problem(clinic, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/clinic_ids/0");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "nothing a failed request sent is stored");
    app.create_staff(&admin, "sam", "receptionist", &[]).await;
    let dup = post(
        serde_json::json!({"username": "SAM", "password": STAFF_PASSWORD, "role": "clinician"}),
    )
    .await
    .unwrap();
    assert_problem(dup, 409).await;
}

#[tokio::test]
async fn updates_need_if_match_428_and_a_stale_tag_gets_412_with_the_current_etag() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (id, _) = app.create_staff(&admin, "rita", "receptionist", &[]).await;
    let path = format!("/v1/users/{id}");
    let patch = |etag: Option<&str>| {
        let mut r = app
            .authed(Method::PATCH, &path, &admin)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"role":"clinician"}"#);
        if let Some(e) = etag {
            r = r.header("if-match", e);
        }
        r.send()
    };
    assert_problem(patch(None).await.unwrap(), 428).await;
    let stale = patch(Some("\"99\"")).await.unwrap();
    assert_eq!(stale.headers()["etag"], "\"1\"");
    assert_problem(stale, 412).await;
    let ok = patch(Some("\"1\"")).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["role"], "clinician");
    // The old tag is now stale.
    let again = patch(Some("\"1\"")).await.unwrap();
    assert_eq!(again.headers()["etag"], "\"2\"");
    assert_problem(again, 412).await;
}

#[tokio::test]
async fn a_deleted_user_is_gone_410_and_its_tokens_stop_working() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (id, token) = app.create_staff(&admin, "leaving", "clinician", &[]).await;
    let path = format!("/v1/users/{id}");
    let res = app
        .authed(Method::DELETE, &path, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());
    assert_problem(
        app.authed(Method::GET, &path, &admin).send().await.unwrap(),
        410,
    )
    .await;
    let patch = app
        .authed(Method::PATCH, &path, &admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"1\"")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(patch, 410).await;
    assert_eq!(
        app.authed(Method::DELETE, &path, &admin)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let res = app
        .authed(Method::GET, "/v1/clinics", &token)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
    assert_problem(
        app.authed(Method::GET, "/v1/users/usr_missing", &admin)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn the_user_list_pages_with_a_next_link() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for name in ["ann", "bob", "cat"] {
        app.create_staff(&admin, name, "receptionist", &[]).await;
    }
    let res = app
        .authed(Method::GET, "/v1/users?limit=3", &admin)
        .send()
        .await
        .unwrap();
    let link = res.headers()["link"].to_str().unwrap().to_string();
    let page: serde_json::Value = res.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let res = app.authed(Method::GET, &next, &admin).send().await.unwrap();
    let page2: serde_json::Value = res.json().await.unwrap();
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());
}

#[tokio::test]
async fn the_cli_adds_a_user_who_can_then_sign_in() {
    use std::io::Write;
    let app = spawn_app().await;
    let url = app.state.config.database_url.clone();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
        .args([
            "user",
            "add",
            "cli.nurse",
            "--role",
            "clinician",
            "--database-url",
            &url,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"cli-password-long\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created cli.nurse (clinician)"));
    app.login("cli.nurse", "cli-password-long").await;
}

#[tokio::test]
async fn an_admin_cannot_delete_deactivate_demote_or_re_password_themselves_as_a_user() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me: String = sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let path = format!("/v1/users/{me}");
    let res = app
        .authed(Method::DELETE, &path, &admin)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;
    for (body, pointer) in [
        (r#"{"active":false}"#, "/active"),
        (r#"{"role":"clinician"}"#, "/role"),
        // Their own password changes at /v1/me/password, which asks for the current one.
        (r#"{"password":"a-new-long-password"}"#, "/password"),
    ] {
        let res = app
            .authed(Method::PATCH, &path, &admin)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", "*")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 422).await;
        assert_eq!(problem["errors"][0]["pointer"], pointer);
    }
    assert_eq!(
        app.authed(Method::GET, "/v1/users", &admin)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
