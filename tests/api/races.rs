//! Requests racing for something only one of them may have: exactly one wins, on either engine.
//! (SQLite's one writer orders them; on PostgreSQL the engine's locks must.)
use std::collections::HashSet;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

const RACERS: usize = 12;

async fn statuses(responses: Vec<reqwest::Response>) -> Vec<u16> {
    let mut s: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    s.sort();
    s
}

async fn setup(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Race").await;
    (admin, clinic)
}

#[tokio::test]
async fn simultaneous_creates_of_the_same_person_store_one_and_refuse_the_rest_409() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    // Each with an MRN of its own: nothing but the duplicate-person check stands between them.
    // (More racers than elsewhere: without a lock, a dozen rarely overlap closely enough.)
    const RACERS: usize = 40;
    let sent = (0..RACERS).map(|i| {
        app.authed(Method::POST, "/v1/patients", &admin)
            .json(
                &json!({"clinic_id": clinic, "given_name": "Ada", "family_name": "Twin",
                "date_of_birth": "1990-02-03", "sex": "female", "mrn": format!("RACE-{i}")}),
            )
            .send()
    });
    let res: Vec<_> = join_all(sent)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut want = vec![409u16; RACERS - 1];
    want.insert(0, 201);
    assert_eq!(statuses(res).await, want);
}

#[tokio::test]
async fn simultaneous_bookings_of_one_clinicians_slot_store_one_and_refuse_the_rest_409() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let (doctor, _) = app
        .create_staff(&admin, "dr.race", "clinician", &[&clinic])
        .await;
    let start = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(30))
        .strftime("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let mut patients = Vec::new();
    for i in 0..RACERS {
        let res = app
            .authed(Method::POST, "/v1/patients", &admin)
            .json(
                &json!({"clinic_id": clinic, "given_name": format!("P{i}"), "family_name": "Slot",
                "date_of_birth": "1980-01-01", "sex": "other"}),
            )
            .send()
            .await
            .unwrap();
        let p: Value = res.json().await.unwrap();
        patients.push(p["id"].as_str().unwrap().to_string());
    }
    let sent = patients.iter().map(|p| {
        app.authed(Method::POST, "/v1/appointments", &admin)
            .json(
                &json!({"clinic_id": clinic, "patient_id": p, "clinician_id": doctor,
                "start": start, "duration_minutes": 30}),
            )
            .send()
    });
    let res: Vec<_> = join_all(sent)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut want = vec![409u16; RACERS - 1];
    want.insert(0, 201);
    assert_eq!(statuses(res).await, want);
}

#[tokio::test]
async fn counters_calling_at_once_never_get_the_same_ticket() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let waiting = RACERS / 2;
    for _ in 0..waiting {
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
    }
    let sent = (0..RACERS).map(|c| {
        app.authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/call-next"),
            &admin,
        )
        .json(&json!({"counter": format!("{c}")}))
        .send()
    });
    let res: Vec<_> = join_all(sent)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut called = HashSet::new();
    let mut empty = 0;
    for r in res {
        match r.status().as_u16() {
            200 => {
                let t: Value = r.json().await.unwrap();
                assert!(called.insert(t["id"].as_str().unwrap().to_string()), "{t}");
            }
            204 => empty += 1,
            other => panic!("call-next answered {other}"),
        }
    }
    assert_eq!((called.len(), empty), (waiting, RACERS - waiting));
}

#[tokio::test]
async fn simultaneous_updates_with_one_etag_let_one_through_and_answer_the_rest_412() {
    let app = spawn_app().await;
    let (admin, clinic) = setup(&app).await;
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .json(
            &json!({"clinic_id": clinic, "given_name": "Eve", "family_name": "Match",
            "date_of_birth": "1970-07-07", "sex": "female"}),
        )
        .send()
        .await
        .unwrap();
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let p: Value = res.json().await.unwrap();
    let path = format!("/v1/patients/{}", p["id"].as_str().unwrap());
    let sent = (0..RACERS).map(|i| {
        app.authed(Method::PATCH, &path, &admin)
            .header("if-match", &etag)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"address": format!("street {i}")}).to_string())
            .send()
    });
    let res: Vec<_> = join_all(sent)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut want = vec![412u16; RACERS - 1];
    want.insert(0, 200);
    assert_eq!(statuses(res).await, want);
}
