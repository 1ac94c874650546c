//! Request bodies: every field error of a body in one 422 (shape and rules together), each at its
//! JSON Pointer in words a receptionist's screen can show; empty optional fields mean "not given".
use jiff::ToSpan;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::patients::{admin_and_clinic, new_patient_json, post_patient, stored_patients};

/// Serde's words, which must never reach a client.
const JARGON: &[&str] = &[
    "expected",
    "invalid type",
    "invalid value",
    "unknown variant",
    "missing field",
    "f64",
    "u32",
    "i64",
    "`",
];

/// The `(pointer, message)` pairs of a 422, sorted, after checking none speaks serde.
async fn field_errors(res: reqwest::Response) -> Vec<(String, String)> {
    let problem = assert_problem(res, 422).await;
    let mut out: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| {
            let (p, m) = (
                e["pointer"].as_str().unwrap(),
                e["message"].as_str().unwrap(),
            );
            for j in JARGON {
                assert!(!m.contains(j), "{p}: {m:?} speaks serde ({j})");
            }
            (p.to_string(), m.to_string())
        })
        .collect();
    out.sort();
    out
}

fn pointers(errors: &[(String, String)]) -> Vec<&str> {
    errors.iter().map(|(p, _)| p.as_str()).collect()
}

fn message<'a>(errors: &'a [(String, String)], pointer: &str) -> &'a str {
    errors
        .iter()
        .find(|(p, _)| p == pointer)
        .map(|(_, m)| m.as_str())
        .unwrap_or_else(|| panic!("no error at {pointer}: {errors:?}"))
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn tomorrow_and_a_day() -> String {
    (jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        + 2.days())
    .to_string()
}

#[tokio::test]
async fn a_patient_with_a_wrong_enum_a_bad_phone_a_missing_name_and_a_text_height_gets_every_error_in_one_422_and_nothing_is_stored(
) {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut body = new_patient_json(&clinic, "Eva", "Klein");
    body.as_object_mut().unwrap().remove("family_name");
    body["sex"] = json!("robot");
    body["phone"] = json!("+43 664 123");
    body["height_cm"] = json!("tall");
    body["weight_kg"] = json!(9000);
    body["date_of_birth"] = json!(tomorrow_and_a_day());
    body["nickname"] = json!("Evi");
    let errors = field_errors(post_patient(&app, &admin, &body).await).await;
    assert_eq!(
        pointers(&errors),
        [
            "/date_of_birth",
            "/family_name",
            "/height_cm",
            "/nickname",
            "/phone",
            "/sex",
            "/weight_kg"
        ]
    );
    assert_eq!(message(&errors, "/family_name"), "is required");
    assert_eq!(message(&errors, "/height_cm"), "must be a number");
    assert_eq!(
        message(&errors, "/sex"),
        "must be one of: female, male, other, unknown"
    );
    assert_eq!(
        message(&errors, "/date_of_birth"),
        "must not be in the future"
    );
    assert_eq!(
        message(&errors, "/nickname"),
        "is not a field of this request"
    );
    assert_eq!(stored_patients(&app).await, 0);
}

#[tokio::test]
async fn a_clinic_without_a_ticket_prefix_and_with_a_number_for_a_name_and_an_unknown_zone_lists_all_three(
) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let before = count(&app, "clinics").await;
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .json(&json!({"name": 42, "timezone": "Mars/Olympus"}))
        .send()
        .await
        .unwrap();
    let errors = field_errors(res).await;
    assert_eq!(pointers(&errors), ["/name", "/ticket_prefix", "/timezone"]);
    assert_eq!(message(&errors, "/name"), "must be a string");
    assert_eq!(message(&errors, "/ticket_prefix"), "is required");
    assert_eq!(count(&app, "clinics").await, before);
}

#[tokio::test]
async fn an_appointment_with_a_text_length_a_past_start_and_no_clinician_lists_every_error() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let res = app
        .authed(Method::POST, "/v1/appointments", &admin)
        .json(&json!({
            "clinic_id": clinic,
            "patient_id": "pat_00000000000000000000",
            "start": "2001-01-01T09:00:00Z",
            "duration_minutes": "thirty",
        }))
        .send()
        .await
        .unwrap();
    let errors = field_errors(res).await;
    assert_eq!(
        pointers(&errors),
        ["/clinician_id", "/duration_minutes", "/start"]
    );
    assert_eq!(
        message(&errors, "/duration_minutes"),
        "must be a whole number"
    );
    assert_eq!(message(&errors, "/start"), "must be in the future");
    assert_eq!(count(&app, "appointments").await, 0);
}

#[tokio::test]
async fn a_user_with_an_unknown_role_a_short_password_and_a_bad_username_lists_all_three() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let before = count(&app, "users").await;
    let res = app
        .authed(Method::POST, "/v1/users", &admin)
        .json(&json!({"username": "a b", "password": "short", "role": "boss"}))
        .send()
        .await
        .unwrap();
    let errors = field_errors(res).await;
    assert_eq!(pointers(&errors), ["/password", "/role", "/username"]);
    assert_eq!(
        message(&errors, "/role"),
        "must be one of: admin, clinician, receptionist"
    );
    // The rules alone (right shape) are also reported together.
    let res = app
        .authed(Method::POST, "/v1/users", &admin)
        .json(&json!({"username": "a b", "password": "short", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        pointers(&field_errors(res).await),
        ["/password", "/username"]
    );
    assert_eq!(count(&app, "users").await, before);
}

#[tokio::test]
async fn a_user_patch_with_a_text_for_active_and_a_short_password_lists_both_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (id, _) = app
        .create_staff(&admin, "desk.one", "receptionist", &[])
        .await;
    let path = format!("/v1/users/{id}");
    let read = app.authed(Method::GET, &path, &admin).send().await.unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_string();
    let before: Value = read.json().await.unwrap();
    let res = app
        .authed(Method::PATCH, &path, &admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", &etag)
        .body(json!({"active": "no", "password": "short", "role": "boss"}).to_string())
        .send()
        .await
        .unwrap();
    let errors = field_errors(res).await;
    assert_eq!(pointers(&errors), ["/active", "/password", "/role"]);
    assert_eq!(message(&errors, "/active"), "must be true or false");
    let after: Value = app
        .authed(Method::GET, &path, &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
    // The old password still signs in: nothing was changed.
    app.login("desk.one", crate::helpers::STAFF_PASSWORD).await;
}

#[tokio::test]
async fn a_ticket_with_a_wrong_priority_and_a_numeric_patient_says_both_in_plain_words() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/clinics/{clinic}/queue/tickets"),
            &admin,
        )
        .json(&json!({"priority": "asap", "patient_id": 7}))
        .send()
        .await
        .unwrap();
    let errors = field_errors(res).await;
    assert_eq!(
        errors,
        [
            ("/patient_id".to_string(), "must be a string".to_string()),
            (
                "/priority".to_string(),
                "must be one of: normal, urgent, emergency".to_string()
            ),
        ]
    );
    assert_eq!(count(&app, "tickets").await, 0);
}

#[tokio::test]
async fn empty_strings_for_optional_fields_mean_not_given_and_for_required_fields_are_422() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut body = new_patient_json(&clinic, "Eva", "Klein");
    for field in ["phone", "email", "address", "mrn", "height_cm", "weight_kg"] {
        body[field] = json!("");
    }
    let res = post_patient(&app, &admin, &body).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert!(created["phone"].is_null(), "{created}");
    assert!(created["email"].is_null(), "{created}");
    assert!(created["height_cm"].is_null(), "{created}");
    assert!(!created["mrn"].as_str().unwrap().is_empty(), "assigned");

    let mut body = new_patient_json(&clinic, "", "Klein");
    body["date_of_birth"] = json!("");
    body["sex"] = json!("");
    body["phone"] = json!("");
    let errors = field_errors(post_patient(&app, &admin, &body).await).await;
    assert_eq!(
        errors,
        [
            (
                "/date_of_birth".to_string(),
                "must not be empty".to_string()
            ),
            ("/given_name".to_string(), "must not be empty".to_string()),
            ("/sex".to_string(), "must not be empty".to_string()),
        ]
    );
    assert_eq!(stored_patients(&app).await, 1);
}

#[tokio::test]
async fn a_batch_item_with_several_errors_lists_them_all_in_its_own_result() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut broken = new_patient_json(&clinic, "Eva", "Klein");
    broken["sex"] = json!("robot");
    broken["height_cm"] = json!("tall");
    broken.as_object_mut().unwrap().remove("given_name");
    let res = app
        .authed(Method::POST, "/v1/patients/batch", &admin)
        .json(&json!({"atomic": true, "items": [broken]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 207);
    let body: Value = res.json().await.unwrap();
    let problem = &body["results"][0]["problem"];
    let mut got: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    got.sort();
    assert_eq!(
        got,
        ["/items/0/given_name", "/items/0/height_cm", "/items/0/sex"],
        "{body}"
    );
    assert_eq!(stored_patients(&app).await, 0);
}

#[tokio::test]
async fn a_patch_with_a_wrong_type_and_a_broken_rule_lists_both_and_changes_nothing() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let res = post_patient(&app, &admin, &new_patient_json(&clinic, "Eva", "Klein")).await;
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let created: Value = res.json().await.unwrap();
    let path = format!("/v1/patients/{}", created["id"].as_str().unwrap());
    let res = app
        .authed(Method::PATCH, &path, &admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", &etag)
        .body(json!({"height_cm": "tall", "sex": "robot", "email": "nope"}).to_string())
        .send()
        .await
        .unwrap();
    let errors = field_errors(res).await;
    assert_eq!(pointers(&errors), ["/email", "/height_cm", "/sex"]);
    let now: Value = app
        .authed(Method::GET, &path, &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now, created);
}

#[tokio::test]
async fn a_clinic_patch_with_a_wrong_type_and_an_unknown_zone_lists_both_and_changes_nothing() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let path = format!("/v1/clinics/{clinic}");
    let read = app.authed(Method::GET, &path, &admin).send().await.unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_string();
    let before: Value = read.json().await.unwrap();
    let res = app
        .authed(Method::PATCH, &path, &admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", &etag)
        .body(json!({"ticket_prefix": 7, "timezone": "Mars/Olympus", "country": "XX"}).to_string())
        .send()
        .await
        .unwrap();
    let errors = field_errors(res).await;
    assert_eq!(
        pointers(&errors),
        ["/country", "/ticket_prefix", "/timezone"]
    );
    assert_eq!(message(&errors, "/ticket_prefix"), "must be a string");
    let after: Value = app
        .authed(Method::GET, &path, &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
}

#[tokio::test]
async fn malformed_json_is_still_400_not_a_list_of_field_errors() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .header("content-type", "application/json")
        .body(r#"{"name": "#)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 400).await;
    assert!(problem
        .get("errors")
        .is_none_or(|e| e.as_array().unwrap().is_empty()));
}
