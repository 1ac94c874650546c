//! `careq migrate-data`: a SQLite database holding every kind of record is copied into a new
//! PostgreSQL database; every row of every table compares equal, and careq serving the copy
//! reads and writes it.
use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};

use crate::helpers::*;
use crate::patients::{create_patient, new_patient_json};

/// Every table's rows as sorted lists of printed values, from the SQLite file.
async fn sqlite_rows(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let rows = sqlx::query(&format!("SELECT * FROM {t}"))
            .fetch_all(&mut c)
            .await
            .unwrap();
        let mut printed: Vec<String> = rows
            .iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        let name = r.columns()[i].name().to_string();
                        let raw = r.try_get_raw(i).unwrap();
                        let v = if raw.is_null() {
                            "NULL".to_string()
                        } else {
                            match raw.type_info().name() {
                                "INTEGER" => r.get::<i64, _>(i).to_string(),
                                "REAL" => format!("{:?}", r.get::<f64, _>(i)),
                                "BLOB" => hex(&r.get::<Vec<u8>, _>(i)),
                                _ => r.get::<String, _>(i),
                            }
                        };
                        format!("{name}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        printed.sort();
        out.insert(t, printed);
    }
    out
}

/// The same tables' rows from PostgreSQL, printed alike (column by column, by name).
async fn postgres_rows(url: &str, tables: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        // The SQLite column order, so both sides print alike.
        let rows = sqlx::query(&format!("SELECT * FROM {t}"))
            .fetch_all(&mut c)
            .await
            .unwrap();
        let mut printed: Vec<String> = rows
            .iter()
            .map(|r| {
                let mut cols: Vec<(usize, String)> = Vec::new();
                for (i, col) in r.columns().iter().enumerate() {
                    let raw = r.try_get_raw(i).unwrap();
                    let v = if raw.is_null() {
                        "NULL".to_string()
                    } else {
                        match col.type_info().name() {
                            "INT8" => r.get::<i64, _>(i).to_string(),
                            "INT4" => r.get::<i32, _>(i).to_string(),
                            "FLOAT8" => format!("{:?}", r.get::<f64, _>(i)),
                            "BYTEA" => hex(&r.get::<Vec<u8>, _>(i)),
                            "BOOL" => (r.get::<bool, _>(i) as i64).to_string(),
                            _ => r.get::<String, _>(i),
                        }
                    };
                    cols.push((i, format!("{}={v}", col.name())));
                }
                cols.into_iter()
                    .map(|(_, s)| s)
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        printed.sort();
        out.insert(t.clone(), printed);
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reorders the `name=value` fields of each printed row by the SQLite row's field order.
fn align(sqlite: &[String], pg: &[String]) -> Vec<String> {
    let order: Vec<String> = sqlite
        .first()
        .map(|r| {
            r.split('|')
                .map(|f| f.split('=').next().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut rows: Vec<String> = pg
        .iter()
        .map(|r| {
            let fields: BTreeMap<&str, &str> = r
                .split('|')
                .map(|f| f.split_once('=').unwrap_or((f, "")))
                .collect();
            order
                .iter()
                .map(|name| {
                    format!(
                        "{name}={}",
                        fields.get(name.as_str()).unwrap_or(&"<missing>")
                    )
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn every_record_moves_from_sqlite_to_postgres_and_compares_equal() {
    // The source is SQLite whichever engine the suite runs on.
    let source_dir = tempfile::tempdir().unwrap();
    let source_url = format!("sqlite://{}", source_dir.path().join("source.db").display());
    let app = spawn_app_with(move |c| c.database_url = source_url).await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Moving").await;
    let (doctor, doctor_token) = app
        .create_staff(&admin, "dr-move", "clinician", &[&clinic])
        .await;
    // Patients: live, merged, sealed, deleted (sealed and merged leave their marks).
    let mut ids = Vec::new();
    for (given, family) in [
        ("Ann", "Live"),
        ("Ben", "Merged"),
        ("Cal", "Sealed"),
        ("Dee", "Gone"),
        ("Eve", "Kept"),
    ] {
        let mut body = new_patient_json(&clinic, given, family);
        body["phone"] = json!("+44 20 7946 0001");
        let (id, _) = create_patient(&app, &admin, &body).await;
        ids.push(id);
    }
    let ok = |res: reqwest::Response, want: u16| async move {
        let status = res.status().as_u16();
        assert_eq!(status, want, "{}", res.text().await.unwrap_or_default());
    };
    ok(
        app.authed(
            Method::POST,
            &format!("/v1/patients/{}/merge", ids[1]),
            &admin,
        )
        .json(&json!({"into": ids[0]}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    ok(
        app.authed(
            Method::POST,
            &format!("/v1/patients/{}/seal", ids[2]),
            &admin,
        )
        .json(&json!({"reason": "court order"}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    ok(
        app.authed(Method::DELETE, &format!("/v1/patients/{}", ids[3]), &admin)
            .header("if-match", "\"1\"")
            .send()
            .await
            .unwrap(),
        204,
    )
    .await;
    // An appointment, checked in (a ticket), a walk-in, one called; the day closed.
    let start = crate::helpers::later_today_in_vienna().await;
    let res = app.authed(Method::POST, "/v1/appointments", &admin)
        .json(&json!({"clinic_id": clinic, "patient_id": ids[0], "clinician_id": doctor, "start": start, "duration_minutes": 20, "reason": "check-up"}))
        .send().await.unwrap();
    assert_eq!(res.status(), 201);
    let appt: Value = res.json().await.unwrap();
    ok(
        app.authed(
            Method::POST,
            &format!("/v1/appointments/{}/check-in", appt["id"].as_str().unwrap()),
            &doctor_token,
        )
        .send()
        .await
        .unwrap(),
        201,
    )
    .await;
    ok(
        app.authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/tickets"),
            &doctor_token,
        )
        .json(&json!({"priority": "normal"}))
        .send()
        .await
        .unwrap(),
        201,
    )
    .await;
    ok(
        app.authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/call-next"),
            &doctor_token,
        )
        .json(&json!({"counter": "Room 1"}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    ok(
        app.authed(Method::POST, &format!("/v1/clinics/{clinic}/board"), &admin)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    ok(
        app.authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/close"),
            &admin,
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    // A create made with an Idempotency-Key keeps its outcome.
    ok(
        app.authed(Method::POST, "/v1/patients", &admin)
            .header("idempotency-key", "move-once-1")
            .json(&new_patient_json(&clinic, "Gus", "Once"))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    // Reads leave access-log rows; a paged list seals a cursor (a setting).
    ok(
        app.authed(Method::GET, "/v1/patients?limit=1", &admin)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    // A list of several patients is one access-log row and a pair per patient.
    ok(
        app.authed(Method::GET, "/v1/patients?limit=200", &admin)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;

    let from = app.state.config.database_url.clone();
    let source = sqlite_rows(&from).await;
    for table in [
        "patients",
        "appointments",
        "tickets",
        "access_log",
        "access_log_patients",
        "tokens",
        "users",
        "clinics",
        "idempotency_keys",
    ] {
        assert!(
            !source.get(table).is_none_or(|r| r.is_empty()),
            "no rows in {table}: the test must cover it"
        );
    }

    let pg = fresh_postgres_database().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["migrate-data", "--from", &from, "--to", &pg.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("counts verified"), "{stdout}");

    // Every row of every table, compared field by field.
    let tables: Vec<String> = source.keys().cloned().collect();
    let target = postgres_rows(&pg.url, &tables).await;
    for t in &tables {
        assert_eq!(
            align(&source[t], &target[t]),
            source[t],
            "table {t} differs"
        );
    }

    // A second move into the same (now full) database is refused, and changes nothing.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
        .args(["migrate-data", "--from", &from, "--to", &pg.url])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds rows"));
    assert_eq!(postgres_rows(&pg.url, &tables).await, target);

    // careq on the copy: the same records with the same versions, and it takes writes.
    let pg_url = pg.url.clone();
    let moved = spawn_app_with(move |c| c.database_url = pg_url).await;
    let token = moved.admin_token().await;
    let res = moved
        .authed(Method::GET, &format!("/v1/patients/{}", ids[0]), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let original = app
        .authed(Method::GET, &format!("/v1/patients/{}", ids[0]), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], original.headers()["etag"]);
    let res = moved
        .authed(Method::GET, &format!("/v1/patients/{}", ids[3]), &token)
        .send()
        .await
        .unwrap();
    assert_problem(res, 410).await;
    let (new_id, _) =
        create_patient(&moved, &token, &new_patient_json(&clinic, "Fay", "After")).await;
    assert!(new_id.starts_with("pat_"));
    // The access log's numbering continues after the copied entries.
    let res = moved
        .authed(Method::GET, "/v1/access-log?limit=200", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log: Value = res.json().await.unwrap();
    let seqs: Vec<i64> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let mut sorted = seqs.clone();
    sorted.dedup();
    assert_eq!(
        seqs.len(),
        sorted.len(),
        "duplicate access-log numbers: {seqs:?}"
    );
    drop(moved);
    let _ = pg;
}

#[tokio::test]
async fn migrate_data_refuses_what_it_cannot_move() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    for (from, to, says) in [
        (
            missing.as_str(),
            "postgres://postgres@127.0.0.1:5432/test",
            "no database file",
        ),
        (
            "postgres://x/y",
            "postgres://postgres@127.0.0.1:5432/test",
            "--from must be a sqlite",
        ),
        (
            missing.as_str(),
            "sqlite://other.db",
            "--to must be a postgres",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_careq"))
            .args(["migrate-data", "--from", from, "--to", to])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{from} → {to}: {err}");
    }
    assert!(
        !dir.path().join("none.db").exists(),
        "a missing source must not be created"
    );
}
