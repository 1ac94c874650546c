//! The admin view of the whole access log, and the archive that is the one way entries leave it.
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;
use crate::patients::{create_patient, header, new_patient_json};

async fn log_page(app: &TestApp, token: &str, query: &str) -> (Value, Option<String>) {
    let res = app
        .authed(Method::GET, &format!("/v1/access-log{query}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    assert_eq!(res.headers()["content-type"], "application/json");
    let link = res
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_string());
    (res.json().await.unwrap(), link)
}

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_admin_log_filters_by_actor_kind_and_time_and_names_each_actor() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    let (desk_id, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    let (patient, _) =
        create_patient(&app, &desk, &new_patient_json(&clinic, "Ada", "Byron")).await;
    let read = app
        .authed(Method::GET, &format!("/v1/patients/{patient}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    // Only admins read the log.
    let res = app
        .authed(Method::GET, "/v1/access-log", &desk)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;

    let (all, _) = log_page(&app, &admin, "").await;
    let all = items(&all);
    assert!(all.len() >= 3, "{all:?}");
    assert!(
        all.windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()),
        "oldest first"
    );

    let (mine, _) = log_page(&app, &admin, &format!("?actor={desk_id}")).await;
    let mine = items(&mine);
    assert!(!mine.is_empty());
    for e in &mine {
        assert_eq!(e["actor_id"], desk_id.as_str());
        assert_eq!(e["actor_username"], "desk");
    }
    assert!(mine
        .iter()
        .any(|e| e["action"] == "create" && e["resource_id"] == patient.as_str()));

    let (users, _) = log_page(&app, &admin, "?resource_type=user").await;
    let users = items(&users);
    assert!(users.iter().any(|e| e["resource_id"] == desk_id.as_str()));
    assert!(users.iter().all(|e| e["resource_type"] == "user"));
    let (patients, _) = log_page(&app, &admin, "?resource_type=patient").await;
    assert!(items(&patients)
        .iter()
        .all(|e| e["resource_type"] == "patient"));
    assert!(items(&patients).iter().any(|e| e["action"] == "read"));

    // Time windows: today holds everything, yesterday and the future nothing.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let yesterday = today.yesterday().unwrap();
    let (t, _) = log_page(&app, &admin, &format!("?from={today}&to={today}")).await;
    assert_eq!(items(&t).len(), all.len(), "to=DAY includes that whole day");
    let (y, _) = log_page(&app, &admin, &format!("?to={yesterday}")).await;
    assert!(items(&y).is_empty());
    let (f, _) = log_page(&app, &admin, "?from=2999-01-01T00:00:00Z").await;
    assert!(items(&f).is_empty());
    // A window that ends before it starts holds nothing.
    let (w, _) = log_page(&app, &admin, "?from=2026-11-29&to=2026-11-28").await;
    assert!(items(&w).is_empty());

    // Paging is exact and linked.
    let (first, link) = log_page(&app, &admin, "?limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    assert!(link.unwrap().contains("rel=\"next\""));
    let (second, _) = log_page(&app, &admin, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(items(&first)[0]["seq"], all[0]["seq"]);
    assert_eq!(items(&second)[0]["seq"], all[1]["seq"]);

    // Bad filters are 400 problems naming the parameter.
    for (query, param) in [
        ("?actor=bob", "query/actor"),
        ("?from=yesterday", "query/from"),
        ("?to=2026-13-01", "query/to"),
        ("?from=", "query/from"),
        ("?actor=", "query/actor"),
    ] {
        let res = app
            .authed(Method::GET, &format!("/v1/access-log{query}"), &admin)
            .send()
            .await
            .unwrap();
        let body = assert_problem(res, 400).await;
        assert_eq!(body["errors"][0]["pointer"], param, "{query}: {body}");
    }
    let res = app
        .authed(Method::GET, "/v1/access-log?resource_type=planet", &admin)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;

    // The log has no write methods.
    let res = app
        .authed(Method::DELETE, "/v1/access-log", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert!(header(&res, "allow").contains("GET"));
}

fn careq(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_archive_moves_old_entries_to_a_file_and_the_api_still_cannot_delete() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    create_patient(&app, &admin, &new_patient_json(&clinic, "Ada", "Byron")).await;
    // Two entries dated in the past, as an old log would hold (written the way the server
    // writes: the trigger refuses only UPDATE and DELETE).
    let mut conn = app.writable().await;
    for day in ["2020-01-01", "2020-06-01"] {
        sqlx::query(
            "INSERT INTO access_log (at, actor_id, action, resource_type, resource_id, ip, request_id)
             VALUES ($1, 'usr_00000000000000000000', 'read', 'patient', 'pat_old', '127.0.0.1', 'req_old')",
        )
        .bind(format!("{day}T10:00:00.000Z"))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Nothing can delete through SQL either, outside the archive.
    let refused = sqlx::query("DELETE FROM access_log")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    drop(conn);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("2020.jsonl");
    let url = app.state.config.database_url.clone();
    let run = careq(&[
        "audit",
        "archive",
        "--before",
        "2021-01-01",
        "--out",
        out.to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("archived 2 entries"), "{stdout}");
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|e| e["resource_id"] == "pat_old"));
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        after,
        before - 2,
        "exactly the archived entries left the log"
    );

    // The guard is back: the log is append-only again.
    let mut conn = app.writable().await;
    let refused = sqlx::query("DELETE FROM access_log")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    drop(conn);

    // An existing file is never overwritten, and the future cannot be archived.
    let again = careq(&[
        "audit",
        "archive",
        "--before",
        "2021-01-01",
        "--out",
        out.to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("must not exist"));
    let future = careq(&[
        "audit",
        "archive",
        "--before",
        "2999-01-01",
        "--out",
        dir.path().join("f.jsonl").to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    assert!(!future.status.success());
    assert!(String::from_utf8_lossy(&future.stderr).contains("future"));

    // The server reads and writes normally afterwards.
    create_patient(&app, &admin, &new_patient_json(&clinic, "Grace", "Hopper")).await;
    let (page, _) = log_page(&app, &admin, "?resource_type=patient").await;
    assert!(!items(&page).is_empty());
}
