//! Every write route under concurrent clients, some of which reset the connection mid-request
//! (half a body, or a whole one and then RST): each real client gets one of the route's
//! documented answers (never a 5xx unless the route documents it), work that may happen once
//! happens at most once, and afterwards the server reads and writes normally and holds no
//! transaction open. Races for one outcome are in `races.rs`; a long mixed load in `load.rs`.
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, STAFF_PASSWORD};

/// Real clients and vanishing clients per route.
const CLIENTS: usize = 6;

/// One write, as both kinds of client send it.
struct Write {
    method: &'static str,
    path: String,
    token: Option<String>,
    content_type: &'static str,
    if_match: Option<String>,
    body: Value,
}

impl Write {
    fn new(method: &'static str, path: impl Into<String>, token: &str, body: Value) -> Self {
        Write {
            method,
            path: path.into(),
            token: Some(token.to_string()),
            content_type: "application/json",
            if_match: None,
            body,
        }
    }

    fn patch(path: impl Into<String>, token: &str, body: Value) -> Self {
        Write {
            content_type: "application/merge-patch+json",
            if_match: Some("*".into()),
            ..Write::new("PATCH", path, token, body)
        }
    }

    fn if_match(mut self, tag: &str) -> Self {
        self.if_match = Some(tag.into());
        self
    }

    fn content_type(mut self, media: &'static str) -> Self {
        self.content_type = media;
        self
    }

    fn body_text(&self) -> String {
        if self.body.is_null() {
            String::new()
        } else {
            self.body.to_string()
        }
    }

    fn header_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("Content-Type: {}", self.content_type)];
        if let Some(t) = &self.token {
            lines.push(format!("Authorization: Bearer {t}"));
        }
        if let Some(tag) = &self.if_match {
            lines.push(format!("If-Match: {tag}"));
        }
        lines
    }

    async fn send(&self, app: &TestApp) -> (u16, reqwest::header::HeaderMap, Value) {
        let method = Method::from_bytes(self.method.as_bytes()).unwrap();
        let mut req = app
            .client
            .request(method, app.url(&self.path))
            .header("content-type", self.content_type)
            .body(self.body_text());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(tag) = &self.if_match {
            req = req.header("if-match", tag);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }
}

/// What the real clients got.
struct Outcome {
    answers: Vec<(u16, reqwest::header::HeaderMap, Value)>,
}

impl Outcome {
    fn count(&self, status: u16) -> usize {
        self.answers.iter().filter(|(s, _, _)| *s == status).count()
    }

    fn bodies(&self, status: u16) -> Vec<&Value> {
        self.answers
            .iter()
            .filter(|(s, _, _)| *s == status)
            .map(|(_, _, b)| b)
            .collect()
    }
}

/// Sends `write` from `CLIENTS` real clients and `CLIENTS` vanishing ones at once; checks every
/// real answer is one of `allowed` with what must come with it, then that the server still
/// creates and reads a patient.
async fn storm(app: &TestApp, w: &World, write: &Write, allowed: &[u16]) -> Outcome {
    let out = fire(app, write, allowed).await;
    still_serves(app, w).await;
    out
}

/// `storm` without the check that the server still creates patients (maintenance turns that
/// off on purpose).
async fn fire(app: &TestApp, write: &Write, allowed: &[u16]) -> Outcome {
    let body = write.body_text();
    let headers = write.header_lines();
    let real = (0..CLIENTS).map(|_| write.send(app));
    let gone =
        (0..CLIENTS).map(|i| app.vanish(write.method, &write.path, &headers, &body, i % 2 == 0));
    let (answers, _) = tokio::join!(
        futures_util::future::join_all(real),
        futures_util::future::join_all(gone)
    );
    let what = format!("{} {}", write.method, write.path);
    for (status, headers, body) in &answers {
        assert!(
            allowed.contains(status),
            "{what}: {status} is not one of {allowed:?}: {body}"
        );
        if *status >= 400 {
            let media = headers["content-type"].to_str().unwrap();
            assert!(
                media.starts_with("application/problem+json")
                    || media.starts_with("application/fhir+json"),
                "{what}: {status} as {media}"
            );
            if media.starts_with("application/problem+json") {
                assert_eq!(body["status"], *status, "{what}: {body}");
            } else {
                assert_eq!(body["resourceType"], "OperationOutcome", "{what}: {body}");
            }
        }
        if matches!(status, 429 | 503) {
            assert!(headers.contains_key("retry-after"), "{what}: {status}");
        }
        if *status == 201 {
            assert!(headers.contains_key("location"), "{what}: 201");
        }
    }
    Outcome { answers }
}

/// A create answers 201 and reads back 200, at once.
async fn still_serves(app: &TestApp, w: &World) {
    let res = app
        .authed(Method::POST, "/v1/patients", &w.admin)
        .json(
            &json!({"clinic_id": w.clinic, "given_name": "Still", "family_name": "Serving",
            "date_of_birth": "1970-01-01", "sex": "unknown", "allow_duplicate": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = app
        .authed(Method::GET, &location, &w.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

struct World {
    admin: String,
    clinic: String,
    doctor: String,
    doctor_token: String,
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let res = app
        .authed(Method::POST, path, token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

fn person(clinic: &str, given: &str) -> Value {
    json!({"clinic_id": clinic, "given_name": given, "family_name": "Storm",
        "date_of_birth": "1980-02-02", "sex": "female"})
}

async fn patient(app: &TestApp, w: &World, given: &str) -> String {
    let p = post(app, &w.admin, "/v1/patients", person(&w.clinic, given)).await;
    p["id"].as_str().unwrap().to_string()
}

async fn ticket(app: &TestApp, w: &World) -> String {
    let path = format!("/v1/clinics/{}/queue/tickets", w.clinic);
    let t = post(app, &w.admin, &path, json!({"priority": "normal"})).await;
    t["id"].as_str().unwrap().to_string()
}

/// Issues a ticket and calls it (calling any still waiting before it).
async fn called_ticket(app: &TestApp, w: &World) -> String {
    let id = ticket(app, w).await;
    let path = format!("/v1/clinics/{}/queue/call-next", w.clinic);
    while post(app, &w.admin, &path, json!({"counter": "1"})).await["id"] != id.as_str() {}
    id
}

async fn book(app: &TestApp, w: &World, patient: &str, start: &str) -> String {
    let a = post(
        app,
        &w.admin,
        "/v1/appointments",
        json!({"clinic_id": w.clinic, "patient_id": patient, "clinician_id": w.doctor,
            "start": start, "duration_minutes": 20}),
    )
    .await;
    a["id"].as_str().unwrap().to_string()
}

async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Storm").await;
    let (doctor, doctor_token) = app
        .create_staff(&admin, "dr.storm", "clinician", &[&clinic])
        .await;
    World {
        admin,
        clinic,
        doctor,
        doctor_token,
    }
}

/// An app whose rate limits stay out of the way: these clients are many, from one token.
async fn unlimited() -> TestApp {
    unlimited_with(|_| {}).await
}

async fn unlimited_with(more: impl FnOnce(&mut careq::config::Config)) -> TestApp {
    spawn_app_with(|c| {
        c.rate_burst = 1_000_000;
        c.rate_per_second = 1_000_000;
        c.kiosk_burst = 10_000;
        more(c);
    })
    .await
}

#[tokio::test]
async fn people_clinics_and_accounts_take_concurrent_and_vanishing_writers() {
    let app = unlimited().await;
    let w = world(&app).await;
    let (a, c) = (w.admin.as_str(), w.clinic.as_str());

    let write = Write::new(
        "POST",
        "/v1/clinics",
        a,
        json!({"name": "Storm annex", "timezone": "Europe/Vienna", "ticket_prefix": "B"}),
    );
    storm(&app, &w, &write, &[201]).await;
    let write = Write::patch(
        format!("/v1/clinics/{c}"),
        a,
        json!({"name": "Storm clinic"}),
    );
    storm(&app, &w, &write, &[200]).await;

    // One username: at most one account, the rest 409 (or 503 while passwords are hashed).
    let body = json!({"username": "storm.user", "password": STAFF_PASSWORD, "role": "receptionist",
        "clinic_ids": [c]});
    let out = storm(
        &app,
        &w,
        &Write::new("POST", "/v1/users", a, body),
        &[201, 409, 503],
    )
    .await;
    assert!(out.count(201) <= 1);
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username = 'storm.user'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "one account, whoever made it");
    let write = Write::patch(
        format!("/v1/users/{}", w.doctor),
        a,
        json!({"active": true, "clinic_ids": [c]}),
    );
    storm(&app, &w, &write, &[200]).await;

    // Sign-ins, and sign-outs of one token (the first revokes it; the rest are no longer signed
    // in). Every sign-in comes from one address, so beyond its share of the hashing gate it is
    // 429 (a gate full of many addresses' sign-ins would be 503).
    let write = Write {
        token: None,
        ..Write::new(
            "POST",
            "/v1/auth/token",
            a,
            json!({"username": "storm.user", "password": STAFF_PASSWORD}),
        )
    };
    storm(&app, &w, &write, &[200, 429, 503]).await;
    let doomed = app.login("storm.user", STAFF_PASSWORD).await;
    let write = Write::new("DELETE", "/v1/auth/token", &doomed, Value::Null);
    storm(&app, &w, &write, &[204, 401]).await;
    let res = app
        .authed(Method::GET, "/v1/me", &doomed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the token stays revoked");

    // A password change from several tabs: it changes at most once; the old one may be gone.
    let user_token = app.login("storm.user", STAFF_PASSWORD).await;
    let new_password = "a brand new password 789";
    let write = Write::new(
        "POST",
        "/v1/me/password",
        &user_token,
        json!({"current": STAFF_PASSWORD, "new": new_password}),
    );
    let out = storm(&app, &w, &write, &[204, 401, 422, 429, 503]).await;
    assert!(out.count(204) <= 1);
    app.login("storm.user", new_password).await;

    // Patients: one person created once; batches; replace, patch, seal, unseal, merge, delete.
    let write = Write::new("POST", "/v1/patients", a, person(c, "Una"));
    let out = storm(&app, &w, &write, &[201, 409]).await;
    assert!(out.count(201) <= 1);
    let unas: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM patients WHERE given_name = 'Una' AND deleted_at IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(unas, 1);
    let batch = json!({"atomic": false, "items": [person(c, "Bea"), person(c, "Cai")]});
    storm(
        &app,
        &w,
        &Write::new("POST", "/v1/patients/batch", a, batch),
        &[207],
    )
    .await;
    let p = patient(&app, &w, "Dora").await;
    let fields = json!({"given_name": "Dora", "family_name": "Storm", "date_of_birth": "1980-02-02",
        "sex": "female", "address": "Quay 1"});
    let write = Write::new("PUT", format!("/v1/patients/{p}"), a, fields).if_match("*");
    storm(&app, &w, &write, &[200]).await;
    let write = Write::patch(format!("/v1/patients/{p}"), a, json!({"address": "Quay 2"}));
    storm(&app, &w, &write, &[200]).await;
    let write = Write::new(
        "POST",
        format!("/v1/patients/{p}/seal"),
        a,
        json!({"reason": "a court order"}),
    );
    storm(&app, &w, &write, &[200]).await;
    let write = Write::new("POST", format!("/v1/patients/{p}/unseal"), a, Value::Null);
    storm(&app, &w, &write, &[200]).await;
    let read = app
        .authed(Method::GET, &format!("/v1/patients/{p}"), a)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "unsealed");
    let (from, into) = (
        patient(&app, &w, "Eve").await,
        patient(&app, &w, "Fay").await,
    );
    let write = Write::new(
        "POST",
        format!("/v1/patients/{from}/merge"),
        a,
        json!({"into": into}),
    );
    let out = storm(&app, &w, &write, &[200, 301]).await;
    assert!(out.count(200) <= 1);
    for moved in out.answers.iter().filter(|(s, _, _)| *s == 301) {
        assert_eq!(moved.1["location"], format!("/v1/patients/{into}").as_str());
    }
    let gone = patient(&app, &w, "Gil").await;
    let write = Write::new("DELETE", format!("/v1/patients/{gone}"), a, Value::Null);
    storm(&app, &w, &write, &[204]).await;
    let res = app
        .authed(Method::GET, &format!("/v1/patients/{gone}"), a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);

    // FHIR: a create of one person, and versioned updates (one wins per version).
    let fhir = json!({"resourceType": "Patient",
        "name": [{"family": "Storm", "given": ["Hal"]}], "gender": "male", "birthDate": "1979-09-09",
        "managingOrganization": {"identifier": {"system": "urn:careq:clinic", "value": c}}});
    let write = Write::new("POST", "/fhir/r4/Patient", a, fhir.clone())
        .content_type("application/fhir+json");
    let out = storm(&app, &w, &write, &[201, 409]).await;
    assert!(out.count(201) <= 1);
    let hal = patient(&app, &w, "Ida").await.replace('_', "-");
    let mut update = fhir.clone();
    update["id"] = json!(hal);
    update["name"] = json!([{"family": "Storm", "given": ["Ida"]}]);
    let write = Write::new("PUT", format!("/fhir/r4/Patient/{hal}"), a, update)
        .content_type("application/fhir+json")
        .if_match("W/\"1\"");
    let out = storm(&app, &w, &write, &[200, 412]).await;
    assert!(out.count(200) <= 1);

    // Maintenance on and off again from several admins at once.
    for enabled in [true, false] {
        let write = Write::new(
            "POST",
            "/v1/admin/maintenance",
            a,
            json!({"enabled": enabled, "retry_after_seconds": 5}),
        );
        fire(&app, &write, &[200]).await;
    }
    still_serves(&app, &w).await;
    app.assert_no_transaction_left_open().await;
}

#[tokio::test]
async fn appointments_queue_keys_and_exports_take_concurrent_and_vanishing_writers() {
    // The runner holds claimed exports until the storm is over: an export that finished
    // mid-storm would rightly let the same user start another (202 twice), which is not the
    // race this test is about.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let app = unlimited_with(move |c| c.export_gate = Some(held)).await;
    let w = world(&app).await;
    let (a, c) = (w.admin.as_str(), w.clinic.as_str());
    // 09:00 in Vienna, so today's appointments can be booked and checked in.
    app.state
        .config
        .clock
        .set("2030-03-01T08:00:00Z".parse().unwrap());

    // One slot, booked once.
    let p = patient(&app, &w, "Jan").await;
    let slot = json!({"clinic_id": c, "patient_id": p, "clinician_id": w.doctor,
        "start": "2030-03-01T12:00:00Z", "duration_minutes": 20});
    let out = storm(
        &app,
        &w,
        &Write::new("POST", "/v1/appointments", a, slot),
        &[201, 409],
    )
    .await;
    assert!(out.count(201) <= 1);
    let booked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM appointments WHERE start_at = '2030-03-01T12:00:00Z' AND deleted_at IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(booked, 1);
    let moved = book(&app, &w, &p, "2030-03-01T13:00:00Z").await;
    let write = Write::patch(
        format!("/v1/appointments/{moved}"),
        a,
        json!({"duration_minutes": 30, "reason": "follow-up"}),
    );
    storm(&app, &w, &write, &[200]).await;
    let cancelled = book(&app, &w, &p, "2030-03-01T14:00:00Z").await;
    let write = Write::new(
        "DELETE",
        format!("/v1/appointments/{cancelled}"),
        a,
        Value::Null,
    );
    // Deleting what is already deleted succeeds too (DELETE is idempotent); reads then say 410.
    storm(&app, &w, &write, &[204]).await;
    let res = app
        .authed(Method::GET, &format!("/v1/appointments/{cancelled}"), a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let arriving = book(&app, &w, &p, "2030-03-01T15:00:00Z").await;
    let write = Write::new(
        "POST",
        format!("/v1/appointments/{arriving}/check-in"),
        a,
        Value::Null,
    );
    let out = storm(&app, &w, &write, &[201, 409]).await;
    assert!(out.count(201) <= 1);
    // One ticket for the arrival: the patient's only one, and the appointment names it.
    let tickets: Vec<String> = sqlx::query_scalar("SELECT id FROM tickets WHERE patient_id = $1")
        .bind(&p)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let linked: Option<String> =
        sqlx::query_scalar("SELECT ticket_id FROM appointments WHERE id = $1")
            .bind(&arriving)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(linked.as_ref(), Some(&tickets[0]));

    // The queue: tickets, calls, each ticket move once, notify, close and reopen.
    let issue = Write::new(
        "POST",
        format!("/v1/clinics/{c}/queue/tickets"),
        a,
        json!({"priority": "normal"}),
    );
    storm(&app, &w, &issue, &[201]).await;
    let call = Write::new(
        "POST",
        format!("/v1/clinics/{c}/queue/call-next"),
        a,
        json!({"counter": "2"}),
    );
    let out = storm(&app, &w, &call, &[200, 204]).await;
    let mut called: Vec<&str> = out
        .bodies(200)
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    called.sort();
    let calls = called.len();
    called.dedup();
    assert_eq!(called.len(), calls, "no ticket called twice");
    for action in ["served", "no-show", "cancel"] {
        let t = called_ticket(&app, &w).await;
        let write = Write::new("POST", format!("/v1/tickets/{t}/{action}"), a, Value::Null);
        let out = storm(&app, &w, &write, &[200, 409]).await;
        assert!(out.count(200) <= 1, "{action}");
        if action == "no-show" {
            let write = Write::new("POST", format!("/v1/tickets/{t}/recall"), a, Value::Null);
            let out = storm(&app, &w, &write, &[200, 409]).await;
            assert!(out.count(200) <= 1, "recall");
        }
    }
    let t = called_ticket(&app, &w).await;
    let write = Write::patch(format!("/v1/tickets/{t}"), a, json!({"status": "served"}));
    let out = storm(&app, &w, &write, &[200, 409]).await;
    assert!(out.count(200) <= 1);
    let t = ticket(&app, &w).await;
    let write = Write::new(
        "POST",
        format!("/v1/tickets/{t}/notify"),
        a,
        json!({"message": "Counter 2, please."}),
    );
    storm(&app, &w, &write, &[501]).await;
    for step in ["close", "reopen"] {
        let write = Write::new(
            "POST",
            format!("/v1/clinics/{c}/queue/{step}"),
            a,
            Value::Null,
        );
        storm(&app, &w, &write, &[200]).await;
    }
    // Ticket numbers of the day are still 1..N: nothing half-written.
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM tickets ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());

    // Board and kiosk keys rotated from several screens: at most one answered key is current
    // (a vanished rotation may have come last), and a rotation afterwards works at once.
    for (kind, key_of) in [("board", "/board/"), ("kiosk", "/kiosk/")] {
        let write = Write::new("POST", format!("/v1/clinics/{c}/{kind}"), a, Value::Null);
        let out = storm(&app, &w, &write, &[200]).await;
        assert!(out.bodies(200)[0]["url"]
            .as_str()
            .unwrap()
            .starts_with(key_of));
    }
    let rotate = Write::new("POST", format!("/v1/clinics/{c}/kiosk"), a, Value::Null);
    let out = storm(&app, &w, &rotate, &[200]).await;
    let keys: Vec<String> = out
        .bodies(200)
        .iter()
        .map(|l| {
            l["url"]
                .as_str()
                .unwrap()
                .rsplit("key=")
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut current = 0;
    for key in &keys {
        let (status, _, _) = kiosk_tap(c, key).send(&app).await;
        assert!(status == 201 || status == 401, "{status}");
        current += usize::from(status == 201);
    }
    assert!(current <= 1, "{current} of the answered keys work");
    let (_, _, link) = rotate.send(&app).await;
    let fresh = link["url"]
        .as_str()
        .unwrap()
        .rsplit("key=")
        .next()
        .unwrap()
        .to_string();
    storm(&app, &w, &kiosk_tap(c, &fresh), &[201]).await;
    for key in &keys {
        assert_eq!(kiosk_tap(c, key).send(&app).await.0, 401);
    }

    // Exports: one per user at a time, the rest 429.
    let write = Write::new(
        "POST",
        "/v1/exports",
        &w.doctor_token,
        json!({"kind": "patients", "format": "csv"}),
    );
    let out = storm(&app, &w, &write, &[202, 429]).await;
    assert!(out.count(202) <= 1);
    gate.add_permits(1_000);
    app.assert_no_transaction_left_open().await;
}

/// A kiosk's take-a-number with `key`.
fn kiosk_tap(clinic: &str, key: &str) -> Write {
    Write::new(
        "POST",
        format!("/v1/clinics/{clinic}/kiosk/tickets"),
        key,
        Value::Null,
    )
}
