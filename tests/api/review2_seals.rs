//! Issue 24 (second security review), points 1, 6 and 9: a seal reached through a merged-away
//! record over FHIR, a double-booking 409 that named a sealed patient's appointment, and the
//! access-log rows of tickets that name a patient. Each test failed on the reviewed code.
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::fhir::{fhir, Answer};
use crate::helpers::{assert_problem, spawn_app, TestApp};

/// A clinic with an admin, a receptionist and a clinician.
struct Desk {
    admin: String,
    clinic: String,
    desk: String,
    doctor_id: String,
}

async fn desk(app: &TestApp) -> Desk {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Review two").await;
    let (_, desk) = app
        .create_staff(&admin, "front", "receptionist", &[&clinic])
        .await;
    let (doctor_id, _) = app
        .create_staff(&admin, "dr.two", "clinician", &[&clinic])
        .await;
    Desk {
        admin,
        clinic,
        desk,
        doctor_id,
    }
}

/// Registers a patient (duplicates allowed: a merge needs two records of one person).
async fn patient(app: &TestApp, d: &Desk, given: &str, mrn: &str) -> String {
    let res = app
        .authed(Method::POST, "/v1/patients", &d.desk)
        .json(
            &json!({"clinic_id": d.clinic, "given_name": given, "family_name": "Pond",
            "date_of_birth": "1961-02-03", "sex": "female", "phone": "+43 664 7654321",
            "mrn": mrn, "allow_duplicate": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn merge(app: &TestApp, d: &Desk, from: &str, into: &str) {
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/patients/{from}/merge"),
            &d.admin,
        )
        .json(&json!({ "into": into }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "merging {from} into {into}");
}

async fn seal(app: &TestApp, d: &Desk, id: &str) {
    let res = app
        .authed(Method::POST, &format!("/v1/patients/{id}/seal"), &d.admin)
        .json(&json!({"reason": "court order"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// B merged into A, then A sealed: (A, B).
async fn merged_then_sealed(app: &TestApp, d: &Desk) -> (String, String) {
    let a = patient(app, d, "Amy", "SURV-1").await;
    let b = patient(app, d, "Amy", "GONE-1").await;
    merge(app, d, &b, &a).await;
    seal(app, d, &a).await;
    (a, b)
}

fn fhir_id(native: &str) -> String {
    native.replacen('_', "-", 1)
}

/// The patient's access log as the admin view serves it.
async fn log_of(app: &TestApp, d: &Desk, patient: &str) -> Vec<Value> {
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/patients/{patient}/access-log?limit=200"),
            &d.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// How many rows say `action` about the record `resource_type`/`resource_id`.
fn rows(log: &[Value], action: &str, resource_type: &str, resource_id: &str) -> usize {
    log.iter()
        .filter(|e| {
            e["action"] == action
                && e["resource_type"] == resource_type
                && e["resource_id"] == resource_id
        })
        .count()
}

/// A FHIR 451: an OperationOutcome blocked by the seal of `holder`, carrying none of its data.
fn assert_sealed_outcome(a: &Answer, holder: &str) {
    a.assert_outcome(451);
    assert_eq!(
        a.header("link"),
        format!("</v1/patients/{holder}/seal>; rel=\"blocked-by\"")
    );
    let text = a.body.to_string();
    for secret in ["Amy", "Pond", "1961-02-03", "7654321"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

async fn get_fhir(app: &TestApp, path: &str, token: &str) -> Answer {
    fhir(app, Method::GET, path, Some(token), None, &[]).await
}

#[tokio::test]
async fn fhir_read_and_vread_of_a_record_merged_into_a_sealed_patient_are_451_to_staff_and_logged_against_the_survivor(
) {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let (a, b) = merged_then_sealed(&app, &d).await;
    let read = format!("/Patient/{}", fhir_id(&b));
    assert_sealed_outcome(&get_fhir(&app, &read, &d.desk).await, &a);
    // The version asked for is judged after the seal: any one is 451.
    for vid in ["2", "99"] {
        let vread = format!("{read}/_history/{vid}");
        assert_sealed_outcome(&get_fhir(&app, &vread, &d.desk).await, &a);
    }
    // Admins read sealed records: the old record, pointing at its survivor.
    for path in [read.clone(), format!("{read}/_history/2")] {
        let ok = get_fhir(&app, &path, &d.admin).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!(ok.header("etag"), "W/\"2\"");
        assert_eq!(ok.body["active"], false);
        assert_eq!(ok.body["link"][0]["type"], "replaced-by");
        assert_eq!(
            ok.body["link"][0]["other"]["reference"],
            format!("Patient/{}", fhir_id(&a))
        );
    }
    // Every attempt is in both records' logs: one row each, about B, naming A as the person.
    for log in [log_of(&app, &d, &a).await, log_of(&app, &d, &b).await] {
        assert_eq!(rows(&log, "denied", "patient", &b), 3, "{log:?}");
        assert_eq!(rows(&log, "read", "patient", &b), 2, "{log:?}");
        let reads_of_b = log.iter().filter(|e| {
            e["resource_id"] == b.as_str() && (e["action"] == "read" || e["action"] == "denied")
        });
        assert!(reads_of_b
            .into_iter()
            .all(|e| e["patient_id"] == a.as_str()));
    }
}

#[tokio::test]
async fn fhir_update_of_a_record_merged_into_a_sealed_patient_is_423_for_everyone() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let (a, b) = merged_then_sealed(&app, &d).await;
    let path = format!("/Patient/{}", fhir_id(&b));
    let survivor = format!("/Patient/{}", fhir_id(&a));
    let before = get_fhir(&app, &survivor, &d.admin).await;
    let doc = json!({"resourceType": "Patient", "id": fhir_id(&b),
        "name": [{"family": "Pond", "given": ["Amelia"]}], "birthDate": "1961-02-03"});
    for token in [&d.desk, &d.admin] {
        let res = fhir(
            &app,
            Method::PUT,
            &path,
            Some(token),
            Some(&doc),
            &[("if-match", "W/\"2\"")],
        )
        .await;
        res.assert_outcome(423);
        assert_eq!(res.header("location"), "");
    }
    // Nothing changed: the survivor is as it was.
    let after = get_fhir(&app, &survivor, &d.admin).await;
    assert_eq!(after.body, before.body);
    assert_eq!(after.header("etag"), before.header("etag"));
}

#[tokio::test]
async fn fhir_follows_a_chain_of_merges_to_the_sealed_survivor_and_a_deleted_one_is_410() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    // B into A, then A into C, then C sealed: B is C's person now.
    let a = patient(&app, &d, "Amy", "CHAIN-A").await;
    let b = patient(&app, &d, "Amy", "CHAIN-B").await;
    let c = patient(&app, &d, "Amy", "CHAIN-C").await;
    merge(&app, &d, &b, &a).await;
    merge(&app, &d, &a, &c).await;
    // Before the seal, an update of B is pointed at the end of the chain, not at A.
    let doc = json!({"resourceType": "Patient", "id": fhir_id(&b),
        "name": [{"family": "Pond", "given": ["Amy"]}], "birthDate": "1961-02-03"});
    let moved = fhir(
        &app,
        Method::PUT,
        &format!("/Patient/{}", fhir_id(&b)),
        Some(&d.desk),
        Some(&doc),
        &[("if-match", "W/\"2\"")],
    )
    .await;
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        format!("/fhir/r4/Patient/{}", fhir_id(&c))
    );
    seal(&app, &d, &c).await;
    for old in [&b, &a] {
        let res = get_fhir(&app, &format!("/Patient/{}", fhir_id(old)), &d.desk).await;
        assert_sealed_outcome(&res, &c);
    }
    let ok = get_fhir(&app, &format!("/Patient/{}", fhir_id(&b)), &d.admin).await;
    assert_eq!(
        ok.body["link"][0]["other"]["reference"],
        format!("Patient/{}", fhir_id(&c))
    );
    assert_eq!(
        rows(&log_of(&app, &d, &c).await, "denied", "patient", &b),
        1
    );

    // A survivor deleted: the old record is gone with it (natively it 301s to a 410).
    let e = patient(&app, &d, "Amy", "DEL-E").await;
    let f = patient(&app, &d, "Amy", "DEL-F").await;
    merge(&app, &d, &f, &e).await;
    let res = app
        .authed(Method::DELETE, &format!("/v1/patients/{e}"), &d.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let gone = get_fhir(&app, &format!("/Patient/{}", fhir_id(&f)), &d.desk).await;
    gone.assert_outcome(410);
    assert!(!gone.body.to_string().contains("Amy"));
}

#[tokio::test]
async fn fhir_search_never_returns_a_record_merged_into_a_sealed_patient() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let (a, b) = merged_then_sealed(&app, &d).await;
    let queries = [
        format!("_id={}", fhir_id(&b)),
        format!("_id={}", fhir_id(&a)),
        "name=amy".to_string(),
        "identifier=GONE-1".to_string(),
        "phone=%2B436647654321".to_string(),
    ];
    for q in &queries {
        let res = get_fhir(&app, &format!("/Patient?{q}"), &d.desk).await;
        assert_eq!(res.status, 200, "{q}: {}", res.body);
        assert_eq!(res.body["total"], 0, "{q}: {}", res.body);
        assert!(!res.body.to_string().contains("Amy"), "{q}");
    }
    // An admin finds the sealed survivor, never the merged-away record.
    let res = get_fhir(&app, "/Patient?name=amy", &d.admin).await;
    assert_eq!(res.body["total"], 1, "{}", res.body);
    assert_eq!(res.body["entry"][0]["resource"]["id"], fhir_id(&a));
    let res = get_fhir(&app, &format!("/Patient?_id={}", fhir_id(&b)), &d.admin).await;
    assert_eq!(res.body["total"], 0, "{}", res.body);
}

#[tokio::test]
async fn fhir_appointments_booked_for_a_merged_away_record_follow_the_survivors_seal() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let a = patient(&app, &d, "Amy", "APT-A").await;
    let b = patient(&app, &d, "Amy", "APT-B").await;
    let booked = book(&app, &d, &d.desk, &b, &future(30)).await;
    assert_eq!(booked.status(), 201);
    let apt = booked.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    merge(&app, &d, &b, &a).await;
    seal(&app, &d, &a).await;
    let read = format!("/Appointment/{}", fhir_id(&apt));
    let res = get_fhir(&app, &read, &d.desk).await;
    res.assert_outcome(451);
    assert_eq!(
        res.header("link"),
        format!("</v1/patients/{a}/seal>; rel=\"blocked-by\"")
    );
    let ok = get_fhir(&app, &read, &d.admin).await;
    assert_eq!(ok.status, 200);
    let text = ok.body.to_string();
    assert!(text.contains(&format!("Patient/{}", fhir_id(&a))), "{text}");
    for q in [
        format!("patient={}", fhir_id(&b)),
        format!("patient={}", fhir_id(&a)),
    ] {
        let res = get_fhir(&app, &format!("/Appointment?{q}"), &d.desk).await;
        assert_eq!(res.status, 200);
        assert!(
            res.body["entry"].as_array().is_none_or(|e| e.is_empty()),
            "{q}: {}",
            res.body
        );
    }
    // An admin finds it under the survivor.
    let res = get_fhir(
        &app,
        &format!("/Appointment?patient={}", fhir_id(&a)),
        &d.admin,
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.body["entry"][0]["resource"]["id"],
        fhir_id(&apt),
        "{}",
        res.body
    );
}

fn future(hours: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours);
    t.strftime("%Y-%m-%dT%H:00:00Z").to_string()
}

async fn book(app: &TestApp, d: &Desk, token: &str, patient: &str, start: &str) -> Response {
    app.authed(Method::POST, "/v1/appointments", token)
        .json(
            &json!({"clinic_id": d.clinic, "patient_id": patient, "clinician_id": d.doctor_id,
            "start": start, "duration_minutes": 30, "reason": "private matter"}),
        )
        .send()
        .await
        .unwrap()
}

/// A 409 for a taken slot; returns its problem body.
async fn assert_taken(res: Response) -> Value {
    let body = assert_problem(res, 409).await;
    assert_eq!(
        body["detail"],
        "the clinician already has an appointment in this slot"
    );
    body
}

#[tokio::test]
async fn a_double_booking_over_a_sealed_patients_appointment_names_it_to_admins_only() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let hidden = patient(&app, &d, "Hidden", "HOLD-1").await;
    let other = patient(&app, &d, "Rory", "OPEN-1").await;
    let slot = future(40);
    let res = book(&app, &d, &d.desk, &hidden, &slot).await;
    assert_eq!(res.status(), 201);
    let sealed_apt = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    seal(&app, &d, &hidden).await;

    // Booking the taken slot: still 409 (it is taken), but nothing names the appointment.
    let body = assert_taken(book(&app, &d, &d.desk, &other, &slot).await).await;
    assert!(body.get("related").is_none(), "{body}");
    assert!(!body.to_string().contains(&sealed_apt), "{body}");
    let body = assert_taken(book(&app, &d, &d.admin, &other, &slot).await).await;
    assert_eq!(body["related"], format!("/v1/appointments/{sealed_apt}"));

    // Rescheduling into it: the same.
    let res = book(&app, &d, &d.desk, &other, &future(44)).await;
    assert_eq!(res.status(), 201);
    let mine = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (token, named) in [(&d.desk, false), (&d.admin, true)] {
        let res = app
            .authed(Method::PATCH, &format!("/v1/appointments/{mine}"), token)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", "\"1\"")
            .body(json!({ "start": slot }).to_string())
            .send()
            .await
            .unwrap();
        let body = assert_taken(res).await;
        assert_eq!(body.to_string().contains(&sealed_apt), named, "{body}");
        assert_eq!(body.get("related").is_some(), named, "{body}");
    }
    // An unsealed patient's appointment is still named to staff.
    let res = book(&app, &d, &d.desk, &other, &future(44)).await;
    let body = assert_taken(res).await;
    assert_eq!(body["related"], format!("/v1/appointments/{mine}"));
}

/// Issues a ticket naming `patient` (or anonymous); returns its id.
async fn issue(app: &TestApp, d: &Desk, patient: Option<&str>) -> String {
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{}/queue/tickets", d.clinic),
            &d.desk,
        )
        .json(&json!({ "patient_id": patient }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn post(app: &TestApp, d: &Desk, path: &str, body: Value) -> Value {
    let res = app
        .authed(Method::POST, path, &d.desk)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn call_next(app: &TestApp, d: &Desk) -> Value {
    let path = format!("/v1/clinics/{}/queue/call-next", d.clinic);
    post(app, d, &path, json!({"counter": "2"})).await
}

#[tokio::test]
async fn every_touch_of_a_ticket_naming_a_patient_is_in_the_patients_access_log() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    // 08:00 in Vienna: an appointment at 10:00 today can be checked in.
    app.state
        .config
        .clock
        .set("2031-06-02T06:00:00Z".parse().unwrap());
    let p = patient(&app, &d, "Clara", "TKT-1").await;

    // Issued, read, shown in the queue view, called and served.
    let t1 = issue(&app, &d, Some(&p)).await;
    let res = app
        .authed(Method::GET, &format!("/v1/tickets/{t1}"), &d.desk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/clinics/{}/queue", d.clinic),
            &d.desk,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(call_next(&app, &d).await["id"], t1.as_str());
    post(&app, &d, &format!("/v1/tickets/{t1}/served"), json!({})).await;
    // Issued and cancelled by PATCH.
    let t2 = issue(&app, &d, Some(&p)).await;
    let res = app
        .authed(Method::PATCH, &format!("/v1/tickets/{t2}"), &d.desk)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"1\"")
        .body(r#"{"status":"cancelled"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Issued, called, a no-show, recalled, cancelled.
    let t3 = issue(&app, &d, Some(&p)).await;
    assert_eq!(call_next(&app, &d).await["id"], t3.as_str());
    for action in ["no-show", "recall", "cancel"] {
        post(&app, &d, &format!("/v1/tickets/{t3}/{action}"), json!({})).await;
    }
    // A check-in issues a ticket.
    let res = book(&app, &d, &d.desk, &p, "2031-06-02T08:00:00Z").await;
    assert_eq!(res.status(), 201);
    let apt = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/appointments/{apt}/check-in"),
            &d.desk,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let t4 = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let log = log_of(&app, &d, &p).await;
    let expect = [
        (&t1, "create", 1),
        (&t1, "read", 2),
        (&t1, "update", 2),
        (&t2, "create", 1),
        (&t2, "update", 1),
        (&t3, "create", 1),
        (&t3, "update", 4),
        (&t4, "create", 1),
    ];
    for (ticket, action, n) in expect {
        assert_eq!(
            rows(&log, action, "ticket", ticket),
            n,
            "{action} {ticket}: {log:?}"
        );
    }
    let ticket_rows: Vec<&Value> = log
        .iter()
        .filter(|e| e["resource_type"] == "ticket")
        .collect();
    assert_eq!(ticket_rows.len(), 13, "{log:?}");
    assert!(ticket_rows.iter().all(|e| e["patient_id"] == p.as_str()));
}

#[tokio::test]
async fn an_anonymous_walk_in_ticket_writes_no_access_log_rows() {
    let app = spawn_app().await;
    let d = desk(&app).await;
    let t = issue(&app, &d, None).await;
    let res = app
        .authed(Method::GET, &format!("/v1/tickets/{t}"), &d.desk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(call_next(&app, &d).await["id"], t.as_str());
    post(&app, &d, &format!("/v1/tickets/{t}/served"), json!({})).await;
    let res = app
        .authed(Method::GET, "/v1/access-log?resource_type=ticket", &d.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"], json!([]), "{page}");
}
