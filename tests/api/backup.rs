//! `careq backup PATH` while the server serves and takes writes; the copy restores into a
//! working careq that reads back every record the copy holds.
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;
use crate::patients::{create_patient, new_patient_json};

#[tokio::test]
async fn an_online_backup_restores_into_a_careq_that_reads_every_record() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let (id, _) = create_patient(
            &app,
            &admin,
            &new_patient_json(&clinic, &format!("Given{i}"), "Backup"),
        )
        .await;
        ids.push(id);
    }
    // Writers keep going while the backup runs.
    let busy = {
        let (client, url, token, clinic) = (
            app.client.clone(),
            app.url("/v1/patients"),
            admin.clone(),
            clinic.clone(),
        );
        tokio::spawn(async move {
            for i in 0..40 {
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&new_patient_json(&clinic, &format!("During{i}"), "Busy"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let url = app.state.config.database_url.clone();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["backup", copy.to_str().unwrap(), "--database-url", &url])
        .output()
        .unwrap();
    if on_postgres() {
        // careq copies SQLite files only; PostgreSQL is backed up with its own tools.
        busy.await.unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("pg_dump"), "{stderr}");
        assert!(!copy.exists());
        eprintln!("on PostgreSQL: the restore half is SQLite's (a VACUUM INTO copy)");
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up to"));
    busy.await.unwrap();
    // A second backup to the same file is refused.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["backup", copy.to_str().unwrap(), "--database-url", &url])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // Restore: a careq started on the copy.
    let restored_url = format!("sqlite://{}", copy.display());
    let restored = spawn_app_with(move |c| c.database_url = restored_url).await;
    let token = restored.admin_token().await;
    for id in &ids {
        let res = restored
            .authed(Method::GET, &format!("/v1/patients/{id}"), &token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{id} is in the copy");
    }
    // Everything the copy holds reads back: its list pages walk every patient it has.
    let mut seen = 0;
    let mut next = Some("/v1/patients?limit=200".to_string());
    while let Some(path) = next {
        let page: Value = restored
            .authed(Method::GET, &path, &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += page["items"].as_array().unwrap().len();
        next = page["next_cursor"]
            .as_str()
            .map(|c| format!("/v1/patients?limit=200&cursor={c}"));
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM patients")
        .fetch_one(&restored.pool)
        .await
        .unwrap();
    assert_eq!(seen as i64, stored);
    assert!(stored >= 30, "{stored}");
    // The restored server takes writes.
    create_patient(
        &restored,
        &token,
        &new_patient_json(&clinic, "After", "Restore"),
    )
    .await;
    // The original is untouched and still serving.
    let res = app
        .authed(Method::GET, &format!("/v1/patients/{}", ids[0]), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
