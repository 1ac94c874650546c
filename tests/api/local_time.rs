//! Days on the clinic's clock: `day=` lists, "date of birth not in the future" and check-in
//! follow the clinic's time zone, east (Vienna) and west (New York) of UTC, around midnight.
//! The app's clock is moved to the moment each case needs (`Config::clock`).
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};

struct World {
    admin: String,
    doctor: String,
    /// The clinician's token (member of both clinics).
    doctor_token: String,
    vienna: String,
    new_york: String,
}

async fn clinic(app: &TestApp, admin: &str, name: &str, tz: &str, prefix: &str) -> String {
    let res = app
        .authed(Method::POST, "/v1/clinics", admin)
        .json(&json!({"name": name, "timezone": tz, "ticket_prefix": prefix}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let c: Value = res.json().await.unwrap();
    c["id"].as_str().unwrap().to_string()
}

async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let vienna = clinic(app, &admin, "Wien", "Europe/Vienna", "W").await;
    let new_york = clinic(app, &admin, "NYC", "America/New_York", "N").await;
    let (doctor, doctor_token) = app
        .create_staff(&admin, "dr.zone", "clinician", &[&vienna, &new_york])
        .await;
    World {
        admin,
        doctor,
        doctor_token,
        vienna,
        new_york,
    }
}

/// Moves the app's clock to `at` (RFC 3339).
fn set_clock(app: &TestApp, at: &str) {
    app.state.config.clock.set(at.parse().unwrap());
}

async fn patient(app: &TestApp, w: &World, clinic: &str, dob: &str) -> reqwest::Response {
    app.authed(Method::POST, "/v1/patients", &w.admin)
        .json(
            &json!({"clinic_id": clinic, "given_name": "Nina", "family_name": "Newborn",
            "date_of_birth": dob, "sex": "female", "allow_duplicate": true}),
        )
        .send()
        .await
        .unwrap()
}

async fn book(app: &TestApp, w: &World, clinic: &str, start: &str) -> Value {
    let res = patient(app, w, clinic, "1990-01-01").await;
    assert_eq!(res.status(), 201);
    let p: Value = res.json().await.unwrap();
    let res = app
        .authed(Method::POST, "/v1/appointments", &w.admin)
        .json(
            &json!({"clinic_id": clinic, "patient_id": p["id"], "clinician_id": w.doctor,
            "start": start, "duration_minutes": 20}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "booking {start}");
    res.json().await.unwrap()
}

async fn listed(app: &TestApp, w: &World, query: &str) -> Vec<String> {
    let res = app
        .authed(Method::GET, &format!("/v1/appointments?{query}"), &w.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    let page: Value = res.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["start_local"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn day_lists_the_appointments_of_that_day_on_each_clinics_clock() {
    let app = spawn_app().await;
    let w = world(&app).await;
    set_clock(&app, "2030-02-20T12:00:00Z");
    // 00:30 in Vienna on 1 March is still 28 February in UTC.
    let a = book(&app, &w, &w.vienna, "2030-02-28T23:30:00Z").await;
    assert_eq!(a["start"], "2030-02-28T23:30:00Z");
    assert_eq!(a["start_local"], "2030-03-01T00:30:00+01:00");
    assert_eq!(a["timezone"], "Europe/Vienna");
    // 23:30 in New York on 28 February is already 1 March in UTC.
    let b = book(&app, &w, &w.new_york, "2030-03-01T04:30:00Z").await;
    assert_eq!(b["start_local"], "2030-02-28T23:30:00-05:00");
    assert_eq!(b["timezone"], "America/New_York");
    let v = &w.vienna;
    let n = &w.new_york;
    assert_eq!(
        listed(&app, &w, &format!("clinic_id={v}&day=2030-03-01")).await,
        ["2030-03-01T00:30:00+01:00"]
    );
    assert!(listed(&app, &w, &format!("clinic_id={v}&day=2030-02-28"))
        .await
        .is_empty());
    assert_eq!(
        listed(&app, &w, &format!("clinic_id={n}&day=2030-02-28")).await,
        ["2030-02-28T23:30:00-05:00"]
    );
    assert!(listed(&app, &w, &format!("clinic_id={n}&day=2030-03-01"))
        .await
        .is_empty());
    // Without a clinic, each clinic's appointments are judged on its own clock.
    assert_eq!(
        listed(&app, &w, "day=2030-03-01").await,
        ["2030-03-01T00:30:00+01:00"]
    );
    assert_eq!(
        listed(&app, &w, "day=2030-02-28").await,
        ["2030-02-28T23:30:00-05:00"]
    );
    // The single read says the same.
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/appointments/{}", a["id"].as_str().unwrap()),
            &w.admin,
        )
        .send()
        .await
        .unwrap();
    let read: Value = res.json().await.unwrap();
    assert_eq!(read["start_local"], "2030-03-01T00:30:00+01:00");
}

#[tokio::test]
async fn a_date_of_birth_is_judged_against_the_clinics_local_date() {
    let app = spawn_app().await;
    let w = world(&app).await;
    // 23:30 UTC on 1 March: already 2 March in Vienna, still 1 March in New York.
    set_clock(&app, "2030-03-01T23:30:00Z");
    let res = patient(&app, &w, &w.vienna, "2030-03-02").await;
    assert_eq!(
        res.status(),
        201,
        "a newborn after local midnight east of UTC"
    );
    let res = patient(&app, &w, &w.new_york, "2030-03-02").await;
    let problem = assert_problem(res, 422).await;
    assert_eq!(problem["errors"][0]["pointer"], "/date_of_birth");
    assert_eq!(
        patient(&app, &w, &w.new_york, "2030-03-01").await.status(),
        201
    );
    // 03:00 UTC on 2 March: still 1 March in New York, so 2 March is in the future there.
    set_clock(&app, "2030-03-02T03:00:00Z");
    let res = patient(&app, &w, &w.new_york, "2030-03-02").await;
    assert_problem(res, 422).await;
    assert_eq!(
        patient(&app, &w, &w.vienna, "2030-03-02").await.status(),
        201
    );
    // The refusals stored nothing: three newborns, one per 201 above.
    let res = app
        .authed(Method::GET, "/v1/patients?q=nina%20newborn", &w.admin)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
}

async fn check_in(app: &TestApp, w: &World, id: &Value) -> reqwest::Response {
    app.authed(
        Method::POST,
        &format!("/v1/appointments/{}/check-in", id.as_str().unwrap()),
        &w.admin,
    )
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn check_in_is_allowed_only_on_the_appointments_local_day_and_its_ticket_is_that_day() {
    let app = spawn_app().await;
    let w = world(&app).await;
    // East: 22:00 UTC on 1 March is 23:00 in Vienna; the appointment is at 00:30 on 2 March.
    set_clock(&app, "2030-03-01T22:00:00Z");
    let a = book(&app, &w, &w.vienna, "2030-03-01T23:30:00Z").await;
    let res = check_in(&app, &w, &a["id"]).await;
    let problem = assert_problem(res, 409).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("2030-03-02"), "{detail}");
    let path = format!("/v1/appointments/{}", a["id"].as_str().unwrap());
    let res = app
        .authed(Method::GET, &path, &w.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["etag"],
        "\"1\"",
        "the refusal changed nothing"
    );
    let now: Value = res.json().await.unwrap();
    assert_eq!(now["status"], "booked");
    // 00:10 in Vienna on 2 March (still 1 March in UTC): the appointment's day.
    set_clock(&app, "2030-03-01T23:10:00Z");
    let res = check_in(&app, &w, &a["id"]).await;
    assert_eq!(res.status(), 201);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/v1/tickets/"));
    let ticket: Value = res.json().await.unwrap();
    assert_eq!(ticket["day"], "2030-03-02");
    assert_eq!(ticket["number"], "W-001");
    // The clinic's queue of that day holds it.
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/clinics/{}/queue", w.vienna),
            &w.admin,
        )
        .send()
        .await
        .unwrap();
    let queue: Value = res.json().await.unwrap();
    assert_eq!(queue["day"], "2030-03-02");
    assert_eq!(queue["items"][0]["id"], ticket["id"]);

    // West: 23:00 UTC on 1 March is 18:00 in New York; 04:30 UTC on 2 March is 23:30 there.
    set_clock(&app, "2030-03-01T23:00:00Z");
    let late = book(&app, &w, &w.new_york, "2030-03-02T04:30:00Z").await;
    let tomorrow = book(&app, &w, &w.new_york, "2030-03-02T15:00:00Z").await;
    let res = check_in(&app, &w, &tomorrow["id"]).await;
    let problem = assert_problem(res, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("2030-03-02"));
    let res = check_in(&app, &w, &late["id"]).await;
    assert_eq!(res.status(), 201);
    let ticket: Value = res.json().await.unwrap();
    assert_eq!(ticket["day"], "2030-03-01");
    assert_eq!(ticket["number"], "N-001");
}

#[tokio::test]
async fn the_openapi_schema_describes_local_times_and_day_parameters() {
    let app = spawn_app().await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let props = &spec["components"]["schemas"]["Appointment"]["properties"];
    assert_eq!(props["start_local"]["format"], "date-time");
    assert!(props["timezone"].is_object());
    let params = spec["paths"]["/v1/patients"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for n in ["q", "email", "sort", "phone", "limit", "cursor"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
}

#[tokio::test]
async fn concurrent_check_ins_with_resetting_clients_issue_one_ticket_on_the_local_day() {
    let app = spawn_app().await;
    let w = world(&app).await;
    // 23:20 UTC on 1 March is 00:20 on 2 March in Vienna; the appointment is at 00:40 there.
    set_clock(&app, "2030-03-01T23:20:00Z");
    let a = book(&app, &w, &w.vienna, "2030-03-01T23:40:00Z").await;
    let path = format!("/v1/appointments/{}/check-in", a["id"].as_str().unwrap());
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (client, url, token) = (app.client.clone(), app.url(&path), w.admin.clone());
        tasks.push(tokio::spawn(async move {
            let res = client.post(url).bearer_auth(token).send().await.unwrap();
            res.status().as_u16()
        }));
    }
    for _ in 0..3 {
        use tokio::io::AsyncWriteExt;
        let mut s = app.connect().await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
            w.admin
        );
        let _ = s.write_all(head.as_bytes()).await;
        #[allow(deprecated)] // the blocking drop is what a reset needs here, and it is instant
        let _ = s.set_linger(Some(std::time::Duration::ZERO));
        drop(s);
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!(created <= 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    // Exactly one ticket, on the Vienna day, whoever's request made it (a vanished one may have).
    let tickets: Vec<(String,)> = sqlx::query_as("SELECT day FROM tickets WHERE clinic_id = $1")
        .bind(&w.vienna)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(tickets, [("2030-03-02".to_string(),)]);
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/appointments/{}", a["id"].as_str().unwrap()),
            &w.admin,
        )
        .send()
        .await
        .unwrap();
    let now: Value = res.json().await.unwrap();
    assert_eq!(now["status"], "checked_in");
    // The server still writes: a walk-in gets the next number of that day.
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{}/queue/tickets", w.vienna),
            &w.admin,
        )
        .json(&json!({"priority": "normal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let t: Value = res.json().await.unwrap();
    assert_eq!(t["number"], "W-002");
    app.assert_no_transaction_left_open().await;
}

/// Runs an export as `token` to its end and returns the ids in its NDJSON file.
async fn exported(app: &TestApp, token: &str, body: Value) -> Vec<String> {
    let res = app
        .authed(Method::POST, "/v1/exports", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{body}");
    assert_eq!(res.headers()["retry-after"], "1");
    let job: Value = res.json().await.unwrap();
    let (file, _) =
        crate::exports::until_done(&app.url(""), token, job["id"].as_str().unwrap()).await;
    let res = app.authed(Method::GET, &file, token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| {
            let row: Value = serde_json::from_str(l).unwrap();
            row["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn export_days_are_each_clinics_days_for_appointments_and_tickets() {
    let app = spawn_app().await;
    let w = world(&app).await;
    set_clock(&app, "2030-02-20T12:00:00Z");
    // Vienna 00:30 on 1 March (28 February in UTC); New York 23:30 on 28 February (1 March
    // in UTC).
    let a = book(&app, &w, &w.vienna, "2030-02-28T23:30:00Z").await;
    let b = book(&app, &w, &w.new_york, "2030-03-01T04:30:00Z").await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    );
    let appointments = |from: Option<&str>, to: Option<&str>, clinic: Option<&str>| {
        let mut body = json!({"kind": "appointments", "format": "ndjson"});
        for (k, v) in [("from", from), ("to", to), ("clinic_id", clinic)] {
            if let Some(v) = v {
                body[k] = json!(v);
            }
        }
        body
    };
    let admin = w.admin.clone();
    let day = Some("2030-03-01");
    assert_eq!(
        exported(&app, &admin, appointments(day, day, None)).await,
        [a.as_str()]
    );
    let day = Some("2030-02-28");
    assert_eq!(
        exported(&app, &admin, appointments(day, day, None)).await,
        [b.as_str()]
    );
    // Open on one side, and the clinician's own scope (both clinics) judged the same way.
    let v = Some(w.vienna.as_str());
    assert_eq!(
        exported(&app, &admin, appointments(Some("2030-03-01"), None, v)).await,
        [a.as_str()]
    );
    assert!(
        exported(&app, &admin, appointments(None, Some("2030-02-28"), v))
            .await
            .is_empty()
    );
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(
        exported(
            &app,
            &w.doctor_token,
            appointments(Some("2030-02-28"), Some("2030-03-01"), None)
        )
        .await,
        both
    );
    assert_eq!(
        exported(
            &app,
            &w.doctor_token,
            appointments(None, Some("2030-02-28"), None)
        )
        .await,
        [b.as_str()]
    );

    // Tickets by queue day: 23:30 UTC on 1 March is 2 March in Vienna, 1 March in New York.
    set_clock(&app, "2030-03-01T23:30:00Z");
    let mut tickets = Vec::new();
    for clinic in [&w.vienna, &w.new_york] {
        let res = app
            .authed(
                Method::POST,
                &format!("/v1/clinics/{clinic}/queue/tickets"),
                &admin,
            )
            .json(&json!({"priority": "normal"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let t: Value = res.json().await.unwrap();
        tickets.push(t["id"].as_str().unwrap().to_string());
    }
    let queue = |d: &str| json!({"kind": "queue", "format": "ndjson", "from": d, "to": d});
    assert_eq!(
        exported(&app, &admin, queue("2030-03-02")).await,
        [tickets[0].clone()]
    );
    assert_eq!(
        exported(&app, &admin, queue("2030-03-01")).await,
        [tickets[1].clone()]
    );
}

#[tokio::test]
async fn export_days_are_each_clinics_days_for_patients_by_creation() {
    // Creation times come from the real clock, so the zones are chosen to disagree with UTC
    // about today's date whatever the hour: Kiritimati (UTC+14) is on tomorrow from 10:00 UTC,
    // Pago Pago (UTC−11) still on yesterday until 11:00 UTC.
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut differs = 0;
    for (zone, prefix) in [("Pacific/Kiritimati", "K"), ("Pacific/Pago_Pago", "P")] {
        let res = app
            .authed(Method::POST, "/v1/clinics", &admin)
            .json(&json!({"name": zone, "timezone": zone, "ticket_prefix": prefix}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let clinic: Value = res.json().await.unwrap();
        let clinic = clinic["id"].as_str().unwrap().to_string();
        let res = app
            .authed(Method::POST, "/v1/patients", &admin)
            .json(
                &json!({"clinic_id": clinic, "given_name": "Tala", "family_name": "Aumua",
                "date_of_birth": "1990-01-01", "sex": "female"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let p: Value = res.json().await.unwrap();
        let id = p["id"].as_str().unwrap().to_string();
        let created: jiff::Timestamp = p["created_at"].as_str().unwrap().parse().unwrap();
        let local = created
            .to_zoned(jiff::tz::TimeZone::get(zone).unwrap())
            .date()
            .to_string();
        let utc = created.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
        let export = |from: &str, to: &str| {
            json!({"kind": "patients", "format": "ndjson", "clinic_id": clinic,
                "from": from, "to": to})
        };
        assert_eq!(
            exported(&app, &admin, export(&local, &local)).await,
            [id.as_str()],
            "{zone}"
        );
        if local != utc {
            differs += 1;
            assert!(
                exported(&app, &admin, export(&utc, &utc)).await.is_empty(),
                "{zone}: created {created}, the UTC day {utc} is not the clinic's day {local}"
            );
        }
    }
    assert!(
        differs >= 1,
        "one of the zones is always on another date than UTC"
    );
}
