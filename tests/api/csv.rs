//! CSV answers: one writer for every list, the queue report and export files; read back here with
//! a real CSV parser (header row, quoting, accents, formula cells neutralised, a BOM only when
//! asked), and a 406 that lists only what the endpoint offers.
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::patients::{admin_and_clinic, create_patient, new_patient_json};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// GETs `path` with `accept`, insisting on a 200 CSV answer; returns the raw bytes.
async fn csv_bytes(app: &TestApp, token: &str, path: &str, accept: &str) -> Vec<u8> {
    let res = app
        .authed(Method::GET, path, token)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    res.bytes().await.unwrap().to_vec()
}

/// Header row and records, parsed by the `csv` crate (no BOM expected).
fn parse(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    assert!(!bytes.starts_with(BOM), "a BOM nobody asked for");
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

#[tokio::test]
async fn the_patient_list_as_csv_reads_back_with_quotes_commas_newlines_accents_and_neutralised_formulas(
) {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut body = new_patient_json(&clinic, "José", "O'Brien, \"Jr\"");
    body["address"] = json!("1 Main St\nFlat 2");
    body["phone"] = json!("+43 664 1234567");
    create_patient(&app, &admin, &body).await;
    create_patient(
        &app,
        &admin,
        &new_patient_json(&clinic, "=cmd|' /C calc'!A0", "@Evil"),
    )
    .await;

    let bytes = csv_bytes(&app, &admin, "/v1/patients", "text/csv").await;
    let (header, rows) = parse(&bytes);
    assert_eq!(
        header[..5],
        ["id", "clinic_id", "mrn", "given_name", "family_name"]
    );
    assert_eq!(rows.len(), 2);
    let (given, family) = (
        column(&header, "given_name"),
        column(&header, "family_name"),
    );
    let jose = rows
        .iter()
        .find(|r| r[given] == "José")
        .expect("José, accent intact");
    assert_eq!(jose[family], "O'Brien, \"Jr\"");
    assert_eq!(jose[column(&header, "address")], "1 Main St\nFlat 2");
    // An E.164 number starts with '+', which a spreadsheet would evaluate: it is text.
    assert_eq!(jose[column(&header, "phone")], "'+436641234567");
    let evil = rows.iter().find(|r| r[given] != "José").unwrap();
    assert_eq!(evil[given], "'=cmd|' /C calc'!A0");
    assert_eq!(evil[family], "'@Evil");

    // The BOM comes only when asked for, and the rest is the same.
    let with_bom = csv_bytes(&app, &admin, "/v1/patients", "text/csv; bom=1").await;
    assert!(with_bom.starts_with(BOM));
    assert_eq!(&with_bom[BOM.len()..], &bytes[..]);
}

#[tokio::test]
async fn appointments_users_and_the_queue_report_answer_csv_too() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (patient, _) =
        create_patient(&app, &admin, &new_patient_json(&clinic, "Eva", "Klein")).await;
    let (doctor, _) = app
        .create_staff(&admin, "dr.who", "clinician", &[&clinic])
        .await;
    let res = app
        .authed(Method::POST, "/v1/appointments", &admin)
        .json(
            &json!({"clinic_id": clinic, "patient_id": patient, "clinician_id": doctor,
            "start": "2099-01-02T09:30:00Z", "duration_minutes": 30, "reason": "-checkup, yearly"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let (header, rows) = parse(&csv_bytes(&app, &admin, "/v1/appointments", "text/csv").await);
    assert_eq!(
        header[..4],
        ["id", "clinic_id", "patient_id", "clinician_id"]
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][column(&header, "reason")], "'-checkup, yearly");
    assert_eq!(rows[0][column(&header, "status")], "booked");

    let (header, rows) = parse(&csv_bytes(&app, &admin, "/v1/users", "text/csv").await);
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r[column(&header, "username")].as_str())
        .collect();
    assert!(
        names.contains(&"admin") && names.contains(&"dr.who"),
        "{names:?}"
    );

    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/tickets"),
            &admin,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let report = format!("/v1/clinics/{clinic}/queue/report");
    let (header, rows) = parse(&csv_bytes(&app, &admin, &report, "text/csv").await);
    assert_eq!(
        header,
        [
            "date",
            "issued",
            "served",
            "no_shows",
            "cancelled",
            "average_wait_seconds",
            "p90_wait_seconds"
        ]
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1], "1");
    // JSON stays the default.
    let json: Value = app
        .authed(Method::GET, &report, &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["issued"], 1);
}

#[tokio::test]
async fn a_406_lists_only_the_types_that_endpoint_offers() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    for (path, offered) in [
        (
            "/v1/appointments".to_string(),
            json!(["application/json", "text/csv"]),
        ),
        (
            "/v1/users".to_string(),
            json!(["application/json", "text/csv"]),
        ),
        (format!("/v1/clinics/{clinic}"), json!(["application/json"])),
        (
            format!("/v1/clinics/{clinic}/queue"),
            json!(["application/json"]),
        ),
    ] {
        let res = app
            .authed(Method::GET, &path, &admin)
            .header("accept", "application/xml")
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 406).await;
        assert_eq!(problem["available"], offered, "{path}");
    }
    // CSV only, where there is no CSV form: 406 naming JSON alone, before anything is done.
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .header("accept", "text/csv")
        .json(&json!({"name": "Never", "timezone": "UTC", "ticket_prefix": "N"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 406).await;
    assert_eq!(problem["available"], json!(["application/json"]));
    let clinics: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clinics WHERE name = 'Never'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clinics, 0);
}

#[tokio::test]
async fn an_export_file_in_csv_neutralises_formula_cells_with_the_same_writer() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut body = new_patient_json(&clinic, "=HYPERLINK(\"http://x\")", "Müller, \"Max\"");
    body["phone"] = json!("+43 664 1234567");
    create_patient(&app, &admin, &body).await;
    let res = app
        .authed(Method::POST, "/v1/exports", &admin)
        .json(&json!({"kind": "patients", "format": "csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job: Value = res.json().await.unwrap();
    let (file, _) =
        crate::exports::until_done(&app.url(""), &admin, job["id"].as_str().unwrap()).await;
    let res = app.authed(Method::GET, &file, &admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (header, rows) = parse(&res.bytes().await.unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][column(&header, "given_name")],
        "'=HYPERLINK(\"http://x\")"
    );
    assert_eq!(rows[0][column(&header, "family_name")], "Müller, \"Max\"");
    assert_eq!(rows[0][column(&header, "phone")], "'+436641234567");
}
