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
    // And an old search that returned two patients: its one row, and a pair per patient.
    let search: i64 = sqlx::query_scalar(
        "INSERT INTO access_log (at, actor_id, action, resource_type, resource_id, ip, request_id)
         VALUES ('2020-03-01T10:00:00.000Z', 'usr_00000000000000000000', 'search', 'patient',
                 'several', '127.0.0.1', 'req_old_search')
         RETURNING seq",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    for patient in ["pat_old_b", "pat_old_a"] {
        sqlx::query("INSERT INTO access_log_patients (patient_id, seq) VALUES ($1, $2)")
            .bind(patient)
            .bind(search)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Nothing can delete through SQL either, outside the archive.
    for sql in ["DELETE FROM access_log", "DELETE FROM access_log_patients"] {
        let refused = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(
            refused.to_string().contains("append-only"),
            "{sql}: {refused}"
        );
    }
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
    assert!(stdout.contains("archived 3 entries"), "{stdout}");
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let ids: Vec<&str> = lines
        .iter()
        .map(|e| e["resource_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pat_old", "pat_old", "several"], "in the log's order");
    // The search's line names the patients it returned; the others have no list.
    assert_eq!(lines[2]["request_id"], "req_old_search");
    assert_eq!(
        lines[2]["patients"],
        serde_json::json!(["pat_old_a", "pat_old_b"])
    );
    assert!(lines[0].get("patients").is_none(), "{}", lines[0]);
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        after,
        before - 3,
        "exactly the archived entries left the log"
    );
    let pairs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log_patients")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pairs, 0, "the search's pairs left with it");

    // The guard is back: the log is append-only again (a list of two patients writes pairs
    // to try it on; a DELETE that finds no row would fire no trigger).
    create_patient(&app, &admin, &new_patient_json(&clinic, "Alan", "Turing")).await;
    let res = app
        .authed(Method::GET, "/v1/patients", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut conn = app.writable().await;
    for sql in ["DELETE FROM access_log", "DELETE FROM access_log_patients"] {
        let refused = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(
            refused.to_string().contains("append-only"),
            "{sql}: {refused}"
        );
    }
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

/// Registers `n` patients of family `family` in one batch.
async fn register(app: &TestApp, token: &str, clinic: &str, family: &str, n: usize) {
    let items: Vec<Value> = (0..n)
        .map(|i| new_patient_json(clinic, &format!("Given{i:03}"), family))
        .collect();
    let res = app
        .authed(Method::POST, "/v1/patients/batch", token)
        .json(&serde_json::json!({"atomic": true, "items": items}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 207);
}

/// Every page of `path` (a log view taking `limit` and `cursor`), 200 entries at a time.
async fn every_entry(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let (mut out, mut cursor) = (Vec::new(), String::new());
    let join = if path.contains('?') { '&' } else { '?' };
    loop {
        let res = app
            .authed(
                Method::GET,
                &format!("{path}{join}limit=200{cursor}"),
                token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let page: Value = res.json().await.unwrap();
        out.extend(items(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// A patient search; its request id and the ids of the patients it returned.
async fn search(app: &TestApp, token: &str, query: &str) -> (String, Vec<String>) {
    let res = app
        .authed(Method::GET, &format!("/v1/patients?{query}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    let request = header(&res, "x-request-id");
    let page: Value = res.json().await.unwrap();
    let ids = items(&page)
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    (request, ids)
}

/// The fields of every entry a patient's own log shows, request entries included.
const ENTRY_FIELDS: [&str; 11] = [
    "seq",
    "at",
    "actor_id",
    "actor_username",
    "action",
    "resource_type",
    "resource_id",
    "ip",
    "request_id",
    "patient_id",
    "client_request_id",
];

fn fields(e: &Value) -> Vec<&str> {
    let mut f: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    f.sort_unstable();
    f
}

/// Every search in the whole log is in the own log of each patient it returned, as an entry
/// about that patient (a search of several patients is one entry naming them, one of a single
/// patient an entry about that one), and patients' own logs hold no other searches. Answers
/// the whole log.
async fn assert_each_patient_sees_each_request(
    app: &TestApp,
    admin: &str,
    patients: &[String],
) -> Vec<Value> {
    let whole = every_entry(app, admin, "/v1/access-log").await;
    let mut expected: std::collections::BTreeSet<(String, i64)> = Default::default();
    for e in &whole {
        if let Some(named) = e["patients"].as_array() {
            assert_eq!(e["resource_type"], "patient", "{e}");
            assert_eq!(e["resource_id"], "several", "{e}");
            assert!(e["patient_id"].is_null(), "{e}");
            let named: Vec<&str> = named.iter().map(|p| p.as_str().unwrap()).collect();
            assert!(named.len() > 1, "{e}");
            assert!(named.windows(2).all(|w| w[0] < w[1]), "in id order: {e}");
            for p in named {
                expected.insert((p.to_string(), e["seq"].as_i64().unwrap()));
            }
        } else {
            assert_ne!(e["resource_id"], "several", "{e}");
            if e["action"] == "search" && e["resource_type"] == "patient" {
                let p = e["resource_id"].as_str().unwrap().to_string();
                expected.insert((p, e["seq"].as_i64().unwrap()));
            }
        }
    }
    let mut found: std::collections::BTreeSet<(String, i64)> = Default::default();
    for p in patients {
        for e in every_entry(app, admin, &format!("/v1/patients/{p}/access-log")).await {
            let mut want = ENTRY_FIELDS.to_vec();
            want.sort_unstable();
            assert_eq!(fields(&e), want, "{e}");
            if e["action"] == "search" {
                assert_eq!(e["resource_type"], "patient", "{e}");
                assert_eq!(e["resource_id"], p.as_str(), "{e}");
                assert_eq!(e["patient_id"], p.as_str(), "{e}");
                found.insert((p.clone(), e["seq"].as_i64().unwrap()));
            }
        }
    }
    assert_eq!(found, expected, "each patient's log against the whole log");
    whole
}

#[tokio::test]
async fn a_search_returning_many_patients_is_one_entry_naming_them_that_each_patients_log_shows() {
    // The check reads every patient's own log: more requests than the default burst allows.
    let app = spawn_app_with(|c| c.rate_burst = 100_000).await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    let (desk_id, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    register(&app, &admin, &clinic, "Manyfold", 60).await;
    register(&app, &admin, &clinic, "Other", 3).await;

    let (request, returned) = search(&app, &desk, "q=manyfold&limit=200").await;
    assert_eq!(returned.len(), 60);
    // A search returning one patient keeps an entry about that patient, as before.
    let (single, one) = search(&app, &desk, "q=other+given001").await;
    assert_eq!(one.len(), 1);

    // The whole log: the search is one entry, naming every patient it returned.
    let whole = every_entry(&app, &admin, "/v1/access-log").await;
    let of = |id: &str| -> Vec<Value> {
        whole
            .iter()
            .filter(|e| e["request_id"] == id)
            .cloned()
            .collect()
    };
    let entries = of(&request);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["action"], "search");
    assert_eq!(e["actor_id"], desk_id.as_str());
    assert_eq!(e["actor_username"], "desk");
    assert_eq!(e["resource_type"], "patient");
    assert_eq!(e["resource_id"], "several");
    assert!(e["patient_id"].is_null(), "{e}");
    assert_eq!(e["ip"], "127.0.0.1");
    let mut sorted = returned.clone();
    sorted.sort();
    assert_eq!(e["patients"], serde_json::json!(sorted), "in id order");
    let single = of(&single);
    assert_eq!(single.len(), 1);
    assert_eq!(single[0]["resource_id"], one[0].as_str());
    assert_eq!(single[0]["patient_id"], one[0].as_str());
    assert!(single[0].get("patients").is_none(), "{}", single[0]);
    // The kind filter keeps the search's entry, with its patients.
    let patients_only = every_entry(&app, &admin, "/v1/access-log?resource_type=patient").await;
    assert!(patients_only
        .iter()
        .any(|x| x["request_id"] == request.as_str() && x["patients"] == e["patients"]));

    // In the database: one row for the request, one narrow pair per patient.
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log WHERE request_id = $1")
        .bind(&request)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let pairs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log_patients WHERE seq = $1")
        .bind(e["seq"].as_i64().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pairs, 60);

    // Each patient's own log shows the search as an entry about that patient, as it did when
    // every hit had an entry of its own.
    for p in &returned {
        let log = every_entry(&app, &admin, &format!("/v1/patients/{p}/access-log")).await;
        let searches: Vec<&Value> = log.iter().filter(|x| x["action"] == "search").collect();
        assert_eq!(searches.len(), 1, "{p}: {log:?}");
        let s = searches[0];
        assert_eq!(s["seq"], e["seq"]);
        assert_eq!(s["at"], e["at"]);
        assert_eq!(s["request_id"], request.as_str());
        assert_eq!(s["actor_username"], "desk");
        assert_eq!(s["resource_id"], p.as_str());
        assert_eq!(s["patient_id"], p.as_str());
        assert!(s.get("patients").is_none(), "{s}");
        // After the creation, in the log's order.
        assert_eq!(log[0]["action"], "create", "{log:?}");
        assert!(log[0]["seq"].as_i64() < s["seq"].as_i64());
    }
    // A patient the search did not return does not see it.
    let (_, others) = search(&app, &admin, "q=other").await;
    for p in others.iter().filter(|p| **p != one[0]) {
        let log = every_entry(&app, &admin, &format!("/v1/patients/{p}/access-log")).await;
        assert!(
            log.iter().all(|x| x["request_id"] != request.as_str()),
            "{log:?}"
        );
    }

    // Paging a patient's own log goes through the search's entry one by one.
    let p = &returned[7];
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/patients/{p}/access-log?limit=1"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.unwrap();
    assert_eq!(items(&first)[0]["action"], "create");
    let cursor = first["next_cursor"].as_str().unwrap();
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/patients/{p}/access-log?limit=1&cursor={cursor}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    let second: Value = res.json().await.unwrap();
    assert_eq!(items(&second)[0]["request_id"], request.as_str());

    let mut all = returned.clone();
    all.extend(others);
    assert_each_patient_sees_each_request(&app, &admin, &all).await;

    // The OpenAPI document describes the list, as optional.
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let entry = &spec["components"]["schemas"]["LogEntry"];
    assert_eq!(entry["properties"]["patients"]["type"], "array", "{entry}");
    assert_eq!(entry["properties"]["patients"]["items"]["type"], "string");
    let required: Vec<&str> = entry["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(required.contains(&"resource_id"), "{required:?}");
    assert!(!required.contains(&"patients"), "{required:?}");
}

#[tokio::test]
async fn concurrent_searches_and_clients_that_reset_leave_one_entry_per_search_and_a_working_server(
) {
    let app = spawn_app_with(|c| c.rate_burst = 100_000).await;
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "North").await;
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    register(&app, &admin, &clinic, "Crowd", 40).await;

    // Searches of different pages at once, from two users, while other clients send searches
    // and writes and reset the connection before (or while) the answer comes.
    let queries = [
        "q=crowd&limit=200",
        "q=crowd&limit=10",
        "q=crowd&limit=25&sort=created",
        "q=crowd&limit=3&sort=birth_date",
        "q=crowd+given01",
        "limit=200",
    ];
    let searches = (0..24).map(|i| {
        let (app, token) = (&app, if i % 2 == 0 { &admin } else { &desk });
        async move { search(app, token, queries[i % queries.len()]).await }
    });
    let auth = format!("Authorization: Bearer {desk}");
    let body = new_patient_json(&clinic, "Vanishing", "Crowd").to_string();
    let resets = (0..16).map(|i| {
        let (app, auth, body) = (&app, auth.clone(), body.clone());
        async move {
            if i % 2 == 0 {
                let path = format!("/v1/patients?{}", queries[i % queries.len()]);
                app.vanish("GET", &path, &[auth], "", false).await;
            } else {
                let headers = [auth, "Content-Type: application/json".to_string()];
                app.vanish("POST", "/v1/patients", &headers, &body, i % 4 == 1)
                    .await;
            }
        }
    });
    let (done, _) = futures_util::future::join(
        futures_util::future::join_all(searches),
        futures_util::future::join_all(resets),
    )
    .await;

    // The server still writes and reads.
    let (created, _) =
        create_patient(&app, &desk, &new_patient_json(&clinic, "After", "Crowd")).await;
    let res = app
        .authed(Method::GET, &format!("/v1/patients/{created}"), &desk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let after = search(&app, &desk, "q=crowd&limit=200").await;
    assert!(after.1.len() >= 40);

    // Each answered search is one entry naming what it returned (or, for one patient, an
    // entry about that one); whatever the reset clients' searches logged is whole too.
    let mut everyone: Vec<String> = search(&app, &admin, "limit=200").await.1;
    everyone.sort();
    let whole = assert_each_patient_sees_each_request(&app, &admin, &everyone).await;
    for (request, returned) in done.iter().chain([&after]) {
        let entries: Vec<&Value> = whole
            .iter()
            .filter(|e| e["request_id"] == request.as_str())
            .collect();
        assert_eq!(entries.len(), 1, "{request}: {entries:?}");
        if returned.len() > 1 {
            let mut sorted = returned.clone();
            sorted.sort();
            assert_eq!(entries[0]["patients"], serde_json::json!(sorted));
        } else if returned.len() == 1 {
            assert_eq!(entries[0]["resource_id"], returned[0].as_str());
        }
    }
    app.assert_no_transaction_left_open().await;
}
