//! Exports over real HTTP: 202 → 200 (Retry-After) → 303 → the file with 200 / 206 / 416, the
//! one-export-per-user 429, who sees a job, CSV that a standard reader round-trips, retention
//! (410), resumed downloads (`curl -C -`), clients that hang up, one snapshot per export.
//! Durable jobs across processes are in `exports_jobs.rs`.
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::helpers::*;
use crate::patients::{admin_and_clinic, create_patient, header, new_patient_json, pointers};

async fn post_export(app: &TestApp, token: &str, body: &Value) -> Response {
    app.authed(Method::POST, "/v1/exports", token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Starts an export and insists on the 202 with its headers; returns the job.
async fn start_export(app: &TestApp, token: &str, body: &Value) -> Value {
    let res = post_export(app, token, body).await;
    assert_eq!(res.status(), 202, "{body}");
    assert_eq!(header(&res, "retry-after"), "1");
    let location = header(&res, "location");
    let job: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/jobs/{}", job["id"].as_str().unwrap())
    );
    assert_eq!(job["state"], "queued");
    assert_eq!(job["kind"], body["kind"]);
    assert_eq!(job["format"], body["format"]);
    assert_eq!(job["progress"]["rows_written"], 0);
    assert!(job["owner"].as_str().is_some_and(|o| o.starts_with("usr_")));
    job
}

/// Follows a job until it answers 303, honouring nothing but a short poll; returns the last
/// answer's `Location` and body.
pub async fn until_done(base: &str, token: &str, job: &str) -> (String, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let res = client
            .get(format!("{base}/v1/jobs/{job}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            303 => {
                let location = header(&res, "location");
                assert!(res.headers().get("retry-after").is_none());
                return (location, res.json().await.unwrap());
            }
            200 => {
                let body: Value = res.json().await.unwrap();
                assert_ne!(body["state"], "failed", "{body}");
            }
            other => panic!("job answered {other}"),
        }
        assert!(Instant::now() < deadline, "job {job} did not finish");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn seed_patients(app: &TestApp, token: &str, clinic: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| new_patient_json(clinic, &format!("Given{i:05}"), &format!("Family{i:05}")))
            .collect();
        let res = app
            .authed(Method::POST, "/v1/patients/batch", token)
            .json(&json!({"atomic": true, "items": items}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 207);
    }
}

/// An app whose runner holds each claimed job until the test releases it.
async fn gated_app() -> (TestApp, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    let app = spawn_app_with(move |c| c.export_gate = Some(held)).await;
    (app, gate)
}

#[tokio::test]
async fn an_export_is_accepted_202_followed_with_200_and_retry_after_then_303_to_its_file() {
    let (app, gate) = gated_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    seed_patients(&app, &admin, &clinic, 30).await;

    let job = start_export(&app, &admin, &json!({"kind": "patients", "format": "csv"})).await;
    let id = job["id"].as_str().unwrap();
    let res = app
        .authed(Method::GET, &format!("/v1/jobs/{id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "retry-after"), "1");
    assert!(res.headers().get("location").is_none());
    let body: Value = res.json().await.unwrap();
    assert!(
        matches!(body["state"].as_str(), Some("queued" | "running")),
        "{body}"
    );

    gate.add_permits(1);
    let (location, done) = until_done(&app.url(""), &admin, id).await;
    assert_eq!(location, format!("/v1/exports/{id}/file"));
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["progress"]["rows_written"], 30);
    assert_eq!(done["progress"]["rows_total"], 30);
    assert_eq!(done["file"], location);
    assert!(done["expires_at"].as_str().is_some());

    let res = app
        .authed(Method::GET, &location, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), "text/csv; charset=utf-8");
    assert_eq!(header(&res, "accept-ranges"), "bytes");
    let etag = header(&res, "etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    assert_eq!(
        header(&res, "content-disposition"),
        format!("attachment; filename=\"careq-patients-{id}.csv\"")
    );
    let length: usize = header(&res, "content-length").parse().unwrap();
    let whole = res.bytes().await.unwrap();
    assert_eq!(whole.len(), length);
    assert_eq!(done["size_bytes"], length);
    assert_eq!(
        whole.iter().filter(|b| **b == b'\n').count(),
        31,
        "header + 30 rows"
    );
}

#[tokio::test]
async fn the_file_answers_ranges_with_206_416_if_range_and_head_and_is_never_gzipped() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    seed_patients(&app, &admin, &clinic, 20).await;
    let job = start_export(
        &app,
        &admin,
        &json!({"kind": "patients", "format": "ndjson"}),
    )
    .await;
    let (file, _) = until_done(&app.url(""), &admin, job["id"].as_str().unwrap()).await;
    let get = |range: Option<&str>, if_range: Option<&str>| {
        let mut r = app.authed(Method::GET, &file, &admin);
        if let Some(range) = range {
            r = r.header("range", range);
        }
        if let Some(v) = if_range {
            r = r.header("if-range", v);
        }
        r.send()
    };
    let res = get(None, None).await.unwrap();
    let etag = header(&res, "etag");
    assert_eq!(header(&res, "content-type"), "application/x-ndjson");
    let whole = res.bytes().await.unwrap();
    let len = whole.len();
    for line in whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap();
        assert!(v["given_name"].as_str().unwrap().starts_with("Given"));
    }

    // One range: 206 with Content-Range, the range's length, the same validator.
    let res = get(Some("bytes=10-19"), None).await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(header(&res, "content-range"), format!("bytes 10-19/{len}"));
    assert_eq!(header(&res, "content-length"), "10");
    assert_eq!(header(&res, "accept-ranges"), "bytes");
    assert_eq!(header(&res, "etag"), etag);
    assert_eq!(res.bytes().await.unwrap(), whole[10..20]);
    let res = get(Some("bytes=-5"), None).await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap(), whole[len - 5..]);

    // Outside the file: 416 naming the length, as a problem.
    let res = get(Some(&format!("bytes={len}-")), None).await.unwrap();
    assert_eq!(header(&res, "content-range"), format!("bytes */{len}"));
    assert_eq!(header(&res, "content-type"), "application/problem+json");
    assert_problem(res, 416).await;

    // If-Range: the range while the tag is current, the whole file once it is not.
    let res = get(Some("bytes=0-4"), Some(&etag)).await.unwrap();
    assert_eq!(res.status(), 206);
    let res = get(Some("bytes=0-4"), Some("\"stale\"")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("content-range").is_none());
    assert_eq!(res.bytes().await.unwrap(), whole);

    // Several ranges: the whole file (careq sends no multipart/byteranges).
    let res = get(Some("bytes=0-1,5-6"), None).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().len(), len);

    // HEAD: the headers of a GET, no body.
    let res = app
        .authed(Method::HEAD, &file, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-length"), len.to_string());
    assert_eq!(header(&res, "etag"), etag);
    assert!(res.bytes().await.unwrap().is_empty());

    // A client that takes gzip gets the stored bytes: ranges count the same bytes.
    for range in [None, Some("bytes=0-9")] {
        let mut r = app
            .authed(Method::GET, &file, &admin)
            .header("accept-encoding", "gzip");
        if let Some(range) = range {
            r = r.header("range", range);
        }
        let res = r.send().await.unwrap();
        assert!(res.headers().get("content-encoding").is_none(), "{range:?}");
        assert_eq!(header(&res, "etag"), etag);
        assert_eq!(header(&res, "accept-ranges"), "bytes");
    }

    // A current If-None-Match: 304 with the validator.
    let res = app
        .authed(Method::GET, &file, &admin)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(header(&res, "etag"), etag);
}

#[tokio::test]
async fn a_second_export_while_one_runs_gets_429_with_retry_after_and_ratelimit_headers() {
    let (app, gate) = gated_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (_, doc) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let body = json!({"kind": "appointments", "format": "csv"});
    let first = start_export(&app, &doc, &body).await;

    // Many at once: none gets through while the first is active.
    let tries = (0..8).map(|_| post_export(&app, &doc, &body));
    for res in futures_util::future::join_all(tries).await {
        assert_eq!(res.headers()["retry-after"], "5");
        assert_eq!(res.headers()["ratelimit-limit"], "1");
        assert_eq!(res.headers()["ratelimit-remaining"], "0");
        assert!(res.headers().get("ratelimit-reset").is_some());
        assert_problem(res, 429).await;
    }
    // Someone else is not held back by it.
    start_export(&app, &admin, &json!({"kind": "queue", "format": "ndjson"})).await;

    gate.add_permits(2);
    until_done(&app.url(""), &doc, first["id"].as_str().unwrap()).await;
    start_export(&app, &doc, &body).await;
    gate.add_permits(1);
}

#[tokio::test]
async fn a_job_is_seen_by_its_owner_and_admins_only_and_receptionists_may_not_export() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (_, ann) = app
        .create_staff(&admin, "ann", "clinician", &[&clinic])
        .await;
    let (_, bob) = app
        .create_staff(&admin, "bob", "clinician", &[&clinic])
        .await;
    let (_, rita) = app
        .create_staff(&admin, "rita", "receptionist", &[&clinic])
        .await;
    let job = start_export(&app, &ann, &json!({"kind": "patients", "format": "csv"})).await;
    let id = job["id"].as_str().unwrap();
    let (file, _) = until_done(&app.url(""), &ann, id).await;
    for path in [format!("/v1/jobs/{id}"), file.clone()] {
        let res = app.authed(Method::GET, &path, &bob).send().await.unwrap();
        assert_problem(res, 404).await;
    }
    let res = app.authed(Method::GET, &file, &admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .authed(Method::GET, "/v1/jobs/job_00000000000000000000", &admin)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
    let res = post_export(&app, &rita, &json!({"kind": "patients", "format": "csv"})).await;
    assert_problem(res, 403).await;
    let res = app
        .client
        .post(app.url("/v1/exports"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // The export is in the access log once, under the job; each download as a read.
    let res = app
        .authed(Method::GET, "/v1/access-log?resource_type=export", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log: Value = res.json().await.unwrap();
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_id"] == id)
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["export", "read"], "{log}");
}

#[tokio::test]
async fn a_job_that_cannot_write_its_file_fails_with_a_problem_and_frees_its_owner() {
    let blocked = tempfile::NamedTempFile::new().unwrap();
    // A directory inside a plain file cannot be made.
    let dir = blocked.path().join("exports");
    let app = spawn_app_with(move |c| c.export_dir = Some(dir)).await;
    let admin = app.admin_token().await;
    let body = json!({"kind": "patients", "format": "csv"});
    let job = start_export(&app, &admin, &body).await;
    let id = job["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let res = app
            .authed(Method::GET, &format!("/v1/jobs/{id}"), &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        if body["state"] == "failed" {
            break body;
        }
        assert!(Instant::now() < deadline, "never failed: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(failed["error"]["status"], 500);
    assert_eq!(failed["error"]["type"], "/v1/status-codes/500");
    assert!(failed["error"]["request_id"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert!(
        failed["error"]["detail"]
            .as_str()
            .is_some_and(|d| !d.contains('/')),
        "no paths"
    );
    assert!(failed["file"].is_null());
    let res = app
        .authed(Method::GET, &format!("/v1/exports/{id}/file"), &admin)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
    // The owner may export again at once.
    start_export(&app, &admin, &body).await;
}

#[tokio::test]
async fn invalid_exports_get_422_with_pointers_and_foreign_clinics_are_refused_alike() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let other = app.create_clinic(&admin, "Elsewhere").await;
    let (_, doc) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let res = post_export(
        &app,
        &doc,
        &json!({"kind": "people", "format": "xml", "from": "2026-02-30", "to": "2026-01-01"}),
    )
    .await;
    let problem = assert_problem(res, 422).await;
    assert_eq!(pointers(&problem), ["/kind", "/format", "/from"]);
    for clinic_id in [other.as_str(), "cln_00000000000000000000"] {
        let body = json!({"kind": "patients", "format": "csv", "clinic_id": clinic_id});
        let problem = assert_problem(post_export(&app, &doc, &body).await, 422).await;
        assert_eq!(pointers(&problem), ["/clinic_id"]);
    }
    let res = app
        .authed(Method::POST, "/v1/exports", &doc)
        .header("content-type", "application/json")
        .body("{\"kind\":")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
}

/// Names a CSV writer has to quote, and text outside ASCII.
const AWKWARD: &[(&str, &str, &str)] = &[
    (
        "Ana, María",
        "O'Neil \"Nell\"",
        "Hauptstraße 1\nTür 3, 1010 Wien",
    ),
    ("Zoë", "Ångström", "Line one\nLine two, \"three\""),
    ("Jean-Luc", "Picard, Jr.", "\"Quoted\" Lane"),
    ("Łukasz", "Żółć", "plain"),
];

#[tokio::test]
async fn a_csv_export_parses_with_a_standard_reader_and_round_trips_every_field() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let other = app.create_clinic(&admin, "Elsewhere").await;
    let (_, doc) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let mut ids = Vec::new();
    for (given, family, address) in AWKWARD {
        let mut p = new_patient_json(&clinic, given, family);
        p["address"] = json!(address);
        p["height_cm"] = json!(172.5);
        ids.push(create_patient(&app, &admin, &p).await.0);
    }
    create_patient(&app, &admin, &new_patient_json(&other, "Not", "Mine")).await;
    let sealed = create_patient(&app, &admin, &new_patient_json(&clinic, "Sealed", "Person"))
        .await
        .0;
    let res = app
        .authed(Method::POST, &format!("/v1/patients/{sealed}/seal"), &admin)
        .json(&json!({"reason": "court order"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    let job = start_export(&app, &doc, &json!({"kind": "patients", "format": "csv"})).await;
    let (file, _) = until_done(&app.url(""), &doc, job["id"].as_str().unwrap()).await;
    let bytes = app
        .authed(Method::GET, &file, &doc)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(
        records.len(),
        AWKWARD.len(),
        "the clinician's clinic only, no sealed record"
    );
    for (given, family, address) in AWKWARD {
        let r = records
            .iter()
            .find(|r| &r[col("given_name")] == *given)
            .unwrap_or_else(|| panic!("{given} missing"));
        assert_eq!(&r[col("family_name")], *family);
        assert_eq!(&r[col("address")], *address);
        assert_eq!(&r[col("height_cm")], "172.5");
        assert_eq!(&r[col("clinic_id")], clinic);
        assert!(ids.contains(&r[col("id")].to_string()));
    }

    // An admin's export of everything includes the sealed record and the other clinic.
    let job = start_export(&app, &admin, &json!({"kind": "patients", "format": "csv"})).await;
    let (file, done) = until_done(&app.url(""), &admin, job["id"].as_str().unwrap()).await;
    assert_eq!(done["progress"]["rows_written"], AWKWARD.len() + 2);
    let bytes = app
        .authed(Method::GET, &file, &admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        csv::Reader::from_reader(&bytes[..]).records().count(),
        AWKWARD.len() + 2
    );
}

#[tokio::test]
async fn an_export_file_is_removed_after_its_retention_and_then_answers_410() {
    let app =
        spawn_app_with(|c| c.export_retention_override = Some(Duration::from_millis(300))).await;
    let (admin, _) = admin_and_clinic(&app).await;
    let job = start_export(&app, &admin, &json!({"kind": "queue", "format": "csv"})).await;
    let (file, _) = until_done(&app.url(""), &admin, job["id"].as_str().unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = app.authed(Method::GET, &file, &admin).send().await.unwrap();
        if res.status() == 410 {
            assert_problem(res, 410).await;
            break;
        }
        assert_eq!(res.status(), 200);
        assert!(Instant::now() < deadline, "never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The file itself is gone from the export directory.
    let dir = app.state.config.export_dir();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&dir).unwrap().count() > 0 {
        assert!(Instant::now() < deadline, "the file stays on disk");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn curl_resumes_an_interrupted_download_with_continue_at() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    seed_patients(&app, &admin, &clinic, 50).await;
    let job = start_export(&app, &admin, &json!({"kind": "patients", "format": "csv"})).await;
    let (file, _) = until_done(&app.url(""), &admin, job["id"].as_str().unwrap()).await;
    let whole = app
        .authed(Method::GET, &file, &admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(whole.len() > 1000);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export.csv");
    let auth = format!("Authorization: Bearer {admin}");
    // curl runs off the test's runtime, which also serves the app.
    let curl = |args: &'static [&'static str]| {
        let (auth, out, url) = (auth.clone(), out.clone(), app.url(&file));
        tokio::task::spawn_blocking(move || {
            let status = std::process::Command::new("curl")
                .args(["-sS", "-f", "-H", &auth, "-o", out.to_str().unwrap()])
                .args(args)
                .arg(url)
                .status()
                .unwrap();
            assert!(status.success(), "curl {args:?}");
        })
    };
    // The first part only, as a download cut off would leave it.
    curl(&["-r", "0-99"]).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), whole[..100]);
    curl(&["-C", "-"]).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), whole);
}

#[tokio::test]
async fn clients_that_reset_mid_request_leave_exports_and_writes_working() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    seed_patients(&app, &admin, &clinic, 200).await;
    let job = start_export(&app, &admin, &json!({"kind": "patients", "format": "csv"})).await;
    let (file, _) = until_done(&app.url(""), &admin, job["id"].as_str().unwrap()).await;

    for _ in 0..10 {
        // Half a POST body, then a reset.
        let mut s = app.connect().await;
        let head = format!(
            "POST /v1/exports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
             Content-Type: application/json\r\nContent-Length: 60\r\n\r\n{{\"kind\": \"pat"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        reset(s);
        // A download read a little, then a reset.
        let mut s = app.connect().await;
        let get =
            format!("GET {file} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\r\n");
        s.write_all(get.as_bytes()).await.unwrap();
        let mut buf = [0u8; 512];
        let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
        reset(s);
        // A whole export request, reset before the answer is read.
        let mut s = app.connect().await;
        let body = r#"{"kind":"queue","format":"csv"}"#;
        let post = format!(
            "POST /v1/exports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(post.as_bytes()).await.unwrap();
        reset(s);
    }
    // Whatever was accepted finishes; then exports, reads and writes all work.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = post_export(
            &app,
            &admin,
            &json!({"kind": "patients", "format": "ndjson"}),
        )
        .await;
        if res.status() == 202 {
            let job: Value = res.json().await.unwrap();
            until_done(&app.url(""), &admin, job["id"].as_str().unwrap()).await;
            break;
        }
        assert_eq!(res.status(), 429);
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    create_patient(&app, &admin, &new_patient_json(&clinic, "After", "Resets")).await;
    let res = app.authed(Method::GET, &file, &admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.assert_no_transaction_left_open().await;
}

/// Closes with a reset (RST), as a client that crashed or was cut off would.
fn reset(s: tokio::net::TcpStream) {
    #[allow(deprecated)] // the blocking drop is what a reset needs here, and it is instant
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

#[tokio::test]
async fn an_exports_snapshot_sees_one_moment_while_writes_go_on() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    seed_patients(&app, &admin, &clinic, 5).await;
    let scope = careq::store::ExportScope {
        kind: "patients".into(),
        ..Default::default()
    };
    // One read unit holds the snapshot open (as the runner does) until the writes are made.
    use careq::exports::records::{export_count, export_page};
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let reading = {
        let (db, scope) = (app.state.db.clone(), scope.clone());
        tokio::spawn(async move {
            db.read(move |conn| {
                careq_store::jobs::snapshot(conn, |conn| {
                    let count = export_count(conn, &scope)?;
                    let first = export_page(conn, &scope, "", 2)?;
                    let _ = first_tx.send((count, first));
                    let _ = go_rx.recv();
                    Ok((
                        export_count(conn, &scope)?,
                        export_page(conn, &scope, "", 10)?,
                    ))
                })
            })
            .await
        })
    };
    let (count, first) = first_rx.await.unwrap();
    assert_eq!(count, 5);

    // A new patient and a changed one, committed while the snapshot is open.
    create_patient(&app, &admin, &new_patient_json(&clinic, "Late", "Comer")).await;
    let changed = first[0].id.clone();
    let res = app
        .authed(Method::PATCH, &format!("/v1/patients/{changed}"), &admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "*")
        .body(r#"{"given_name": "Renamed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    go_tx.send(()).unwrap();
    let (count, again) = reading.await.unwrap().unwrap();
    assert_eq!(count, 5);
    assert_eq!(again.len(), 5);
    assert_eq!(again[0].cells, first[0].cells, "the old version, whole");
    let fresh = app
        .state
        .db
        .read(move |conn| Ok(export_count(conn, &scope)?))
        .await
        .unwrap();
    assert_eq!(fresh, 6);
}
