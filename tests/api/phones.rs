//! Phone numbers as people type them: spaces, dashes, dots, parentheses, `00`, and national
//! numbers read in the clinic's country; stored and searched as E.164.
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::patients::{header, new_patient_json, post_patient};

async fn clinic_with_country(app: &TestApp, admin: &str, country: Option<&str>) -> String {
    let mut body = json!({"name": "Phones", "timezone": "Europe/Vienna", "ticket_prefix": "P"});
    if let Some(c) = country {
        body["country"] = json!(c);
    }
    let res = app
        .authed(Method::POST, "/v1/clinics", admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let clinic: Value = res.json().await.unwrap();
    assert_eq!(clinic["country"], country.map_or(Value::Null, |c| json!(c)));
    clinic["id"].as_str().unwrap().to_string()
}

fn with_phone(clinic: &str, given: &str, phone: &str) -> Value {
    let mut p = new_patient_json(clinic, given, "Caller");
    p["phone"] = json!(phone);
    p
}

#[tokio::test]
async fn typed_numbers_are_stored_as_e164_national_ones_in_the_clinics_country() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let vienna = clinic_with_country(&app, &admin, Some("AT")).await;
    for (given, typed, stored) in [
        ("Anna", "0664 123 45 67", "+436641234567"),
        ("Berta", "(0664) 123-45.68", "+436641234568"),
        ("Clara", "+44 20 7946 0000", "+442079460000"),
        ("Dora", "0044 20 7946 0001", "+442079460001"),
        ("Emma", "+43-1-534-360", "+431534360"),
    ] {
        let res = post_patient(&app, &admin, &with_phone(&vienna, given, typed)).await;
        assert_eq!(res.status(), 201, "{typed}");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["phone"], stored, "{typed}");
    }

    // Search and lookup read the query the same way.
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/patients?clinic_id={vienna}&phone=0664%20123%2045%2067"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["given_name"], "Anna");
    let res = app
        .client
        .get(app.url("/v1/patients/lookup?phone=%2B43%20664%20123-45-68"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    assert!(header(&res, "location").starts_with("/v1/patients/pat_"));
}

#[tokio::test]
async fn a_number_that_cannot_be_one_is_422_at_phone_and_nothing_is_stored() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let nowhere = clinic_with_country(&app, &admin, None).await;
    let vienna = clinic_with_country(&app, &admin, Some("AT")).await;
    for (clinic, typed, says) in [
        // A national number needs the clinic's country.
        (&nowhere, "0664 1234567", "country"),
        (&vienna, "12", "not a phone number"),
        (&vienna, "+99 123", "not a phone number"),
        (&vienna, "0664 12345678901234", "not a phone number"),
    ] {
        let res = post_patient(&app, &admin, &with_phone(clinic, "Fay", typed)).await;
        let body = assert_problem(res, 422).await;
        assert_eq!(body["errors"][0]["pointer"], "/phone", "{typed}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(says),
            "{typed}: {body}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM patients")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // A query shaped like a phone number that cannot be one finds nobody (no stored number is
    // invalid); one that is not even shaped like one is a 400 naming the parameter.
    let res = app
        .authed(Method::GET, "/v1/patients?phone=000", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert!(page["items"].as_array().unwrap().is_empty());
    let res = app
        .authed(Method::GET, "/v1/patients/lookup?phone=000", &admin)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
    let res = app
        .authed(Method::GET, "/v1/patients?phone=call%20me", &admin)
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 400).await;
    assert_eq!(body["errors"][0]["pointer"], "query/phone");
}

#[tokio::test]
async fn a_clinics_country_is_checked_and_can_be_cleared() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let res = app
        .authed(Method::POST, "/v1/clinics", &admin)
        .json(&json!({"name": "X", "timezone": "Europe/Vienna", "ticket_prefix": "X", "country": "XX"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/country");
    let clinic = clinic_with_country(&app, &admin, Some("AT")).await;
    let res = app
        .authed(Method::PATCH, &format!("/v1/clinics/{clinic}"), &admin)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"1\"")
        .body(json!({"country": null}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["country"], Value::Null);
    // Now a national number has no country to be read in.
    let res = post_patient(&app, &admin, &with_phone(&clinic, "Gil", "0664 1234567")).await;
    assert_problem(res, 422).await;
}
