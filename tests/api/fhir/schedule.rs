//! FHIR Appointment read and search, status mapping, and the Practitioners appointments name.
use reqwest::Method;
use serde_json::{json, Value};

use super::{amy, create, fhir, native, world};
use crate::helpers::spawn_app;

#[tokio::test]
async fn appointments_and_practitioners_resolve_with_mapped_statuses() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let pat = create(&app, &w.nurse, &amy("Pond", "Amy", None)).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ids = Vec::new();
    for day in ["2099-01-01", "2099-01-02", "2099-01-03"] {
        let res = app
            .authed(Method::POST, "/v1/appointments", &w.nurse)
            .json(&json!({"clinic_id": w.clinic, "patient_id": native(&pat), "clinician_id": w.doctor_id, "start": format!("{day}T09:00:00Z"), "duration_minutes": 30, "reason": "check-up"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let a: Value = res.json().await.unwrap();
        ids.push(a["id"].as_str().unwrap().to_string());
    }
    // Check-in is allowed on the appointment's own day only: the app's clock moves there.
    app.state
        .config
        .clock
        .set("2099-01-02T08:00:00Z".parse().unwrap());
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/appointments/{}/check-in", ids[1]),
            &w.nurse,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let read = fhir(
        &app,
        Method::GET,
        &format!("/Appointment/{}", ids[0]),
        Some(&w.doctor),
        None,
        &[],
    )
    .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag"), "W/\"1\"");
    assert_eq!(read.body["status"], "booked");
    assert_eq!(read.body["end"], "2099-01-01T09:30:00Z");
    assert_eq!(
        read.body["participant"][0]["actor"]["reference"],
        format!("Patient/{pat}")
    );
    let practitioner = read.body["participant"][1]["actor"]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = fhir(
        &app,
        Method::GET,
        &format!("/{practitioner}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["identifier"][0]["value"], "dr.fhir");
    assert!(!doc.body.to_string().contains("password"));

    let total = |path: String| {
        let app = &app;
        let token = w.doctor.clone();
        async move {
            let a = fhir(app, Method::GET, &path, Some(&token), None, &[]).await;
            assert_eq!(a.status, 200, "{path}: {}", a.body);
            a.body["entry"].as_array().map(|e| e.len()).unwrap_or(0)
        }
    };
    assert_eq!(
        total(format!("/Appointment?patient=Patient/{pat}")).await,
        3
    );
    assert_eq!(
        total(format!("/Appointment?practitioner={}", w.doctor_id)).await,
        3
    );
    assert_eq!(total("/Appointment?date=ge2099-01-02".into()).await, 2);
    assert_eq!(total("/Appointment?date=le2099-01-02".into()).await, 2);
    assert_eq!(total("/Appointment?date=2099-01-03".into()).await, 1);
    assert_eq!(
        total("/Appointment?date=ge2099-01-02&date=le2099-01-02".into()).await,
        1
    );
    assert_eq!(total("/Appointment?status=arrived".into()).await, 1);
    assert_eq!(total("/Appointment?status=booked".into()).await, 2);
    assert_eq!(total("/Appointment?status=proposed".into()).await, 0);
    let paged = fhir(
        &app,
        Method::GET,
        "/Appointment?_count=2",
        Some(&w.doctor),
        None,
        &[],
    )
    .await;
    let next = paged.body["link"][1]["url"].as_str().unwrap().to_string();
    assert_eq!(total(next).await, 1);
    fhir(
        &app,
        Method::GET,
        "/Appointment?status=sleeping",
        Some(&w.doctor),
        None,
        &[],
    )
    .await
    .assert_outcome(400);
    fhir(
        &app,
        Method::GET,
        "/Appointment?date=gt2099-01-01",
        Some(&w.doctor),
        None,
        &[],
    )
    .await
    .assert_outcome(400);

    let (nurse_id, _) = app
        .create_staff(&w.admin, "desk", "receptionist", &[&w.clinic])
        .await;
    fhir(
        &app,
        Method::GET,
        &format!("/Practitioner/{nurse_id}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await
    .assert_outcome(404);
}
