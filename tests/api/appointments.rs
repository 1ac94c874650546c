//! `/v1/appointments`: booking rules, overlap 409, conditional updates, 410, check-in.
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, later_today_in_vienna, spawn_app, TestApp};

struct World {
    admin: String,
    clinic: String,
    doctor: String,
    patient: String,
}

async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Appts").await;
    let (doctor, _) = app
        .create_staff(&admin, "dr.who", "clinician", &[&clinic])
        .await;
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .json(&json!({"clinic_id": clinic, "given_name": "Amy", "family_name": "Pond", "date_of_birth": "1989-04-01", "sex": "female"}))
        .send()
        .await
        .unwrap();
    let p: Value = res.json().await.unwrap();
    World {
        admin,
        clinic,
        doctor,
        patient: p["id"].as_str().unwrap().into(),
    }
}

fn future(hours: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours);
    t.strftime("%Y-%m-%dT%H:00:00Z").to_string()
}

async fn book(app: &TestApp, w: &World, start: &str, minutes: i64) -> reqwest::Response {
    app.authed(Method::POST, "/v1/appointments", &w.admin)
        .json(&json!({"clinic_id": w.clinic, "patient_id": w.patient, "clinician_id": w.doctor, "start": start, "duration_minutes": minutes, "reason": "check-up"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn booking_returns_201_and_breaking_a_rule_422() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let res = book(&app, &w, &future(48), 30).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let a: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/appointments/{}", a["id"].as_str().unwrap())
    );
    assert_eq!(a["status"], "booked");
    let past = book(&app, &w, "2001-01-01T10:00:00Z", 30).await;
    assert_eq!(
        assert_problem(past, 422).await["errors"][0]["pointer"],
        "/start"
    );
    let long = book(&app, &w, &future(72), 721).await;
    assert_eq!(
        assert_problem(long, 422).await["errors"][0]["pointer"],
        "/duration_minutes"
    );
    let short = book(&app, &w, &future(72), 4).await;
    assert_problem(short, 422).await;
}

#[tokio::test]
async fn a_length_written_as_30_point_0_is_30_minutes_and_30_point_5_is_422() {
    // JSON Schema's `integer` includes 30.0, so a schema-valid client may send it.
    let app = spawn_app().await;
    let w = world(&app).await;
    let res = app
        .authed(Method::POST, "/v1/appointments", &w.admin)
        .json(&json!({"clinic_id": w.clinic, "patient_id": w.patient, "clinician_id": w.doctor, "start": future(30), "duration_minutes": 30.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let a: Value = res.json().await.unwrap();
    assert_eq!(a["duration_minutes"], 30);
    let res = app
        .authed(Method::POST, "/v1/appointments", &w.admin)
        .json(&json!({"clinic_id": w.clinic, "patient_id": w.patient, "clinician_id": w.doctor, "start": future(90), "duration_minutes": 30.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(res, 422).await["errors"][0]["pointer"],
        "/duration_minutes"
    );
}

#[tokio::test]
async fn an_overlapping_slot_for_the_same_clinician_is_409_naming_the_other() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let start = future(24);
    let first: Value = book(&app, &w, &start, 60).await.json().await.unwrap();
    let later = (start.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_mins(30))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let clash = book(&app, &w, &later, 30).await;
    let body = assert_problem(clash, 409).await;
    assert_eq!(
        body["related"],
        format!("/v1/appointments/{}", first["id"].as_str().unwrap())
    );
    let after = (start.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_mins(60))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(
        book(&app, &w, &after, 30).await.status(),
        201,
        "back-to-back is fine"
    );
}

#[tokio::test]
async fn rescheduling_needs_if_match_and_a_deleted_appointment_is_410() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let a: Value = book(&app, &w, &future(30), 30).await.json().await.unwrap();
    let path = format!("/v1/appointments/{}", a["id"].as_str().unwrap());
    let patch = |etag: Option<&'static str>, body: Value| {
        let mut r = app
            .authed(Method::PATCH, &path, &w.admin)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string());
        if let Some(e) = etag {
            r = r.header("if-match", e);
        }
        r.send()
    };
    assert_problem(
        patch(None, json!({"status": "cancelled"})).await.unwrap(),
        428,
    )
    .await;
    let stale = patch(Some("\"7\""), json!({"status": "cancelled"}))
        .await
        .unwrap();
    assert_eq!(stale.headers()["etag"], "\"1\"");
    assert_problem(stale, 412).await;
    let moved = patch(Some("\"1\""), json!({"start": future(50)}))
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(moved.headers()["etag"], "\"2\"");
    assert_eq!(
        app.authed(Method::DELETE, &path, &w.admin)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_problem(
        app.authed(Method::GET, &path, &w.admin)
            .send()
            .await
            .unwrap(),
        410,
    )
    .await;
    assert_problem(
        patch(Some("\"3\""), json!({"status": "cancelled"}))
            .await
            .unwrap(),
        410,
    )
    .await;
}

#[tokio::test]
async fn checking_in_issues_a_ticket_once() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let a: Value = book(&app, &w, &later_today_in_vienna().await, 15)
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/v1/appointments/{}/check-in", a["id"].as_str().unwrap());
    let res = app
        .authed(Method::POST, &path, &w.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let t: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/tickets/{}", t["id"].as_str().unwrap())
    );
    assert_eq!(t["patient_id"], w.patient.as_str());
    assert_eq!(t["number"], "A-001");
    let again = app
        .authed(Method::POST, &path, &w.admin)
        .send()
        .await
        .unwrap();
    assert_problem(again, 409).await;
    let view: Value = app
        .authed(
            Method::GET,
            &format!("/v1/appointments/{}", a["id"].as_str().unwrap()),
            &w.admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "checked_in");
    assert_eq!(view["ticket_id"], t["id"]);
}

#[tokio::test]
async fn merging_a_patient_moves_its_appointments_to_the_survivor() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let a: Value = book(&app, &w, &future(40), 30).await.json().await.unwrap();
    let res = app
        .authed(Method::POST, "/v1/patients", &w.admin)
        .json(&json!({"clinic_id": w.clinic, "given_name": "Amelia", "family_name": "Pond", "date_of_birth": "1989-04-01", "sex": "female"}))
        .send()
        .await
        .unwrap();
    let survivor: Value = res.json().await.unwrap();
    let merged = app
        .authed(
            Method::POST,
            &format!("/v1/patients/{}/merge", w.patient),
            &w.admin,
        )
        .json(&json!({"into": survivor["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(merged.status(), 200);
    let moved: Value = app
        .authed(
            Method::GET,
            &format!("/v1/appointments/{}", a["id"].as_str().unwrap()),
            &w.admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved["patient_id"], survivor["id"]);
}
