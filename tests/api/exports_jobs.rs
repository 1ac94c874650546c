//! Durable export jobs with the real binary: a job running when its server is killed finishes
//! after the restart, and two processes on one PostgreSQL database run each job exactly once.
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::exports::until_done;
use crate::helpers::*;

/// Signs in against a spawned binary.
async fn token_of(base: &str, username: &str, password: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_job_running_when_the_server_is_killed_finishes_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("careq.db").display());
    let seeded = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
        .args([
            "bench-seed",
            "--database-url",
            &sqlite,
            "--patients",
            "20000",
            "--tickets",
            "0",
        ])
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let _pg;
    let url = match postgres_server() {
        Some(_) => {
            let db = fresh_postgres_database().await;
            let moved = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
                .args(["migrate-data", "--from", &sqlite, "--to", &db.url])
                .output()
                .unwrap();
            assert!(
                moved.status.success(),
                "{}",
                String::from_utf8_lossy(&moved.stderr)
            );
            let url = db.url.clone();
            _pg = db;
            url
        }
        None => sqlite,
    };
    let exports = dir.path().join("exports");
    let env = [
        ("CAREQ_EXPORT_DIR", exports.to_str().unwrap()),
        ("CAREQ_EXPORT_PAGE_ROWS", "20"),
        ("CAREQ_EXPORT_LEASE_SECONDS", "1"),
    ];
    let server = start_binary_url(&url, &env);
    let base = format!("http://{}", server.addr);
    let token = token_of(&base, "bench", "bench-password-123").await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}/v1/exports"))
        .bearer_auth(&token)
        .json(&json!({"kind": "patients", "format": "csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Killed once it has written part of the file.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = client
            .get(format!("{base}/v1/jobs/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "the job finished before the kill: make it bigger"
        );
        let job: Value = res.json().await.unwrap();
        if job["state"] == "running" && job["progress"]["rows_written"].as_i64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop();
    assert!(!exports.join(format!("{id}.csv")).exists());

    let server = start_binary_url(&url, &env);
    let base = format!("http://{}", server.addr);
    let token = token_of(&base, "bench", "bench-password-123").await;
    let (file, done) = until_done(&base, &token, &id).await;
    assert_eq!(done["progress"]["rows_written"], 20_000 + 20);
    let bytes = client
        .get(format!("{base}{file}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let records = csv::Reader::from_reader(&bytes[..]).records().count();
    assert_eq!(records, 20_000 + 20, "every patient once, whole");
    drop(server);
}

#[tokio::test]
async fn two_processes_on_postgres_run_each_job_exactly_once() {
    let db = fresh_postgres_database().await;
    let exports = tempfile::tempdir().unwrap();
    let env = [
        ("CAREQ_ADMIN_PASSWORD", "two-process-admin-pw"),
        ("CAREQ_EXPORT_DIR", exports.path().to_str().unwrap()),
    ];
    let a = start_binary_url(&db.url, &env);
    let b = start_binary_url(&db.url, &env);
    let bases = [format!("http://{}", a.addr), format!("http://{}", b.addr)];
    let admin = token_of(&bases[0], "admin", "two-process-admin-pw").await;
    let client = reqwest::Client::new();
    let mut tokens = Vec::new();
    for i in 0..6 {
        let name = format!("clinician{i}");
        let res = client
            .post(format!("{}/v1/users", bases[0]))
            .bearer_auth(&admin)
            .json(&json!({"username": name, "password": STAFF_PASSWORD, "role": "clinician", "clinic_ids": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        tokens.push(token_of(&bases[1], &name, STAFF_PASSWORD).await);
    }
    // Every user starts an export at once, half through each process, both runners awake.
    let starts = tokens.iter().enumerate().map(|(i, t)| {
        client
            .post(format!("{}/v1/exports", bases[i % 2]))
            .bearer_auth(t)
            .json(&json!({"kind": "patients", "format": "ndjson"}))
            .send()
    });
    let mut ids = Vec::new();
    for res in futures_util::future::join_all(starts).await {
        let res = res.unwrap();
        assert_eq!(res.status(), 202);
        ids.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for (i, id) in ids.iter().enumerate() {
        until_done(&bases[(i + 1) % 2], &tokens[i], id).await;
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let runs: Vec<(String, i64)> = sqlx::query_as("SELECT id, runs FROM jobs ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(runs.len(), ids.len());
    assert!(runs.iter().all(|(_, n)| *n == 1), "{runs:?}");
    let logged: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT resource_id) FROM access_log WHERE action = 'export'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let entries: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM access_log WHERE action = 'export'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((logged, entries), (ids.len() as i64, ids.len() as i64));
    drop(conn);
    drop((a, b));
}
