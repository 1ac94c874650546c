//! `/v1/patients`: create, read, replace, merge-patch, delete, search, phone lookup, merging,
//! sealing and the access log, each with the headers and problem bodies that must come along.
use std::collections::HashSet;

use jiff::ToSpan;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// The smallest valid create body: a woman born 1980-04-12, registered in `clinic`.
pub fn new_patient_json(clinic: &str, given: &str, family: &str) -> Value {
    json!({
        "clinic_id": clinic,
        "given_name": given,
        "family_name": family,
        "date_of_birth": "1980-04-12",
        "sex": "female",
    })
}

pub async fn post_patient(app: &TestApp, token: &str, body: &Value) -> Response {
    app.authed(Method::POST, "/v1/patients", token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Creates a patient, insisting on 201, and returns its id and ETag.
pub async fn create_patient(app: &TestApp, token: &str, body: &Value) -> (String, String) {
    let res = post_patient(app, token, body).await;
    assert_eq!(res.status(), 201, "creating {body}");
    let etag = header(&res, "etag");
    let created: Value = res.json().await.unwrap();
    (created["id"].as_str().unwrap().to_string(), etag)
}

/// A header that must be present, as text.
pub fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header on a {}", res.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The JSON Pointers of a validation problem, in order.
pub fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_string())
        .collect()
}

/// How many patient rows exist, deleted ones included: proves that a refused request stored nothing.
pub async fn stored_patients(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM patients")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The ids of a list page.
pub fn ids_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

pub fn path_of(id: &str) -> String {
    format!("/v1/patients/{id}")
}

/// An admin token and a fresh clinic.
pub async fn admin_and_clinic(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Central").await;
    (admin, clinic)
}

/// A PUT (JSON) or PATCH (merge patch) of a patient, with `If-Match` when given.
fn update(
    app: &TestApp,
    method: Method,
    token: &str,
    id: &str,
    if_match: Option<&str>,
    body: &Value,
) -> RequestBuilder {
    let media = if method == Method::PATCH {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let mut req = app
        .authed(method, &path_of(id), token)
        .header("content-type", media)
        .body(body.to_string());
    if let Some(tag) = if_match {
        req = req.header("if-match", tag);
    }
    req
}

async fn read(app: &TestApp, token: &str, id: &str) -> Response {
    app.authed(Method::GET, &path_of(id), token)
        .send()
        .await
        .unwrap()
}

/// A list or search as `token`, insisting on 200; returns the ids found.
async fn search(app: &TestApp, token: &str, query: Query<'_>) -> HashSet<String> {
    let res = app
        .authed(Method::GET, "/v1/patients", token)
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query:?}");
    ids_of(&res.json().await.unwrap()).into_iter().collect()
}

/// Query-string pairs of one search.
type Query<'a> = &'a [(&'a str, &'a str)];

fn set(ids: &[&String]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn creating_a_patient_returns_201_with_location_etag_an_assigned_mrn_and_a_bmi() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut body = new_patient_json(&clinic, "Maria", "Huber");
    body["phone"] = json!("+436641234567");
    body["email"] = json!("maria.huber@example.org");
    body["height_cm"] = json!(172);
    body["weight_kg"] = json!(70);
    let res = post_patient(&app, &admin, &body).await;
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "etag"), "\"1\"");
    let location = header(&res, "location");
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, path_of(id));
    assert_eq!(created["clinic_id"], clinic.as_str());
    assert_eq!(
        created["mrn"], "A-000001",
        "prefix of the clinic + sequence"
    );
    assert_eq!(created["given_name"], "Maria");
    assert_eq!(created["family_name"], "Huber");
    assert_eq!(created["date_of_birth"], "1980-04-12");
    assert_eq!(created["sex"], "female");
    assert_eq!(created["phone"], "+436641234567");
    assert_eq!(created["email"], "maria.huber@example.org");
    assert_eq!(created.get("address"), Some(&Value::Null));
    assert_eq!(created["height_cm"].as_f64(), Some(172.0));
    assert_eq!(created["weight_kg"].as_f64(), Some(70.0));
    // 70 / 1.72² = 23.66…
    assert_eq!(created["bmi"].as_f64(), Some(23.7));
    assert_eq!(created["version"], 1);
    assert!(created["created_at"].as_str().is_some());
    assert!(created["updated_at"].as_str().is_some());

    // The next patient without an MRN gets the next number, and no BMI without height and weight.
    let res = post_patient(&app, &admin, &new_patient_json(&clinic, "Karl", "Berger")).await;
    assert_eq!(res.status(), 201);
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["mrn"], "A-000002");
    assert_eq!(second.get("bmi"), Some(&Value::Null));

    // Reading it back gives the same representation and tag, a date, and no caching.
    let res = app
        .authed(Method::GET, &location, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), "\"1\"");
    assert!(res.headers().get("last-modified").is_some());
    assert_eq!(header(&res, "cache-control"), "no-store");
    let read_back: Value = res.json().await.unwrap();
    assert_eq!(read_back, created);
}

#[tokio::test]
async fn each_broken_field_gets_422_pointing_at_it_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    // Two days ahead of UTC is tomorrow or later in every time zone.
    let future = (jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        + 2.days())
    .to_string();
    let cases: [(&str, Value, &str); 12] = [
        ("given_name", json!(""), "/given_name"),
        ("family_name", json!(""), "/family_name"),
        ("date_of_birth", json!(future), "/date_of_birth"),
        ("date_of_birth", json!("1850-06-01"), "/date_of_birth"),
        ("date_of_birth", json!("1980-02-30"), "/date_of_birth"),
        ("sex", json!("robot"), "/sex"),
        ("phone", json!("0664 1234567"), "/phone"),
        ("phone", json!("+43 664 123"), "/phone"),
        ("height_cm", json!(500), "/height_cm"),
        ("height_cm", json!(10), "/height_cm"),
        ("weight_kg", json!(0.1), "/weight_kg"),
        ("weight_kg", json!(700), "/weight_kg"),
    ];
    for (field, value, pointer) in cases {
        let mut body = new_patient_json(&clinic, "Eva", "Klein");
        body[field] = value.clone();
        let res = post_patient(&app, &admin, &body).await;
        let problem = assert_problem(res, 422).await;
        assert_eq!(pointers(&problem), [pointer], "{field} = {value}");
    }
    assert_eq!(stored_patients(&app).await, 0);
}

#[tokio::test]
async fn malformed_json_gets_400_and_a_body_that_is_not_json_gets_415_with_accept() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .header("content-type", "application/json")
        .body(r#"{"clinic_id": "x", "given_name": "#)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;

    let res = app
        .authed(Method::POST, "/v1/patients", &admin)
        .header("content-type", "text/plain")
        .body(new_patient_json(&clinic, "Eva", "Klein").to_string())
        .send()
        .await
        .unwrap();
    assert!(header(&res, "accept-post").contains("application/json"));
    assert!(res.headers().get("accept").is_none());
    assert_problem(res, 415).await;
    assert_eq!(stored_patients(&app).await, 0);
}

#[tokio::test]
async fn creating_in_an_unknown_or_a_foreign_clinic_is_422_at_clinic_id() {
    let app = spawn_app().await;
    let (admin, mine) = admin_and_clinic(&app).await;
    let other = app.create_clinic(&admin, "Elsewhere").await;
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&mine])
        .await;
    for clinic in ["cln_nonexistent", other.as_str()] {
        let res = post_patient(&app, &desk, &new_patient_json(clinic, "Ida", "Roth")).await;
        let problem = assert_problem(res, 422).await;
        assert_eq!(pointers(&problem), ["/clinic_id"], "{clinic}");
    }
    assert_eq!(stored_patients(&app).await, 0);
    create_patient(&app, &desk, &new_patient_json(&mine, "Ida", "Roth")).await;
    // Admins belong to every clinic.
    create_patient(&app, &admin, &new_patient_json(&other, "Ida", "Roth")).await;
}

#[tokio::test]
async fn the_same_mrn_or_the_same_name_and_birth_date_in_a_clinic_is_409_naming_the_first() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut first = new_patient_json(&clinic, "Anna", "Muster");
    first["mrn"] = json!("M-77");
    let (first_id, _) = create_patient(&app, &admin, &first).await;

    let mut same_mrn = new_patient_json(&clinic, "Berta", "Anders");
    same_mrn["mrn"] = json!("M-77");
    let mut same_person = new_patient_json(&clinic, "ANNA", "muster");
    for body in [&same_mrn, &same_person] {
        let res = post_patient(&app, &admin, body).await;
        let problem = assert_problem(res, 409).await;
        assert_eq!(problem["related"], path_of(&first_id), "{body}");
    }
    assert_eq!(stored_patients(&app).await, 1);

    // A caller who knows better may register a namesake born the same day.
    same_person["allow_duplicate"] = json!(true);
    create_patient(&app, &admin, &same_person).await;

    // Another clinic keeps its own register: the same MRN and person are new there.
    let elsewhere = app.create_clinic(&admin, "Elsewhere").await;
    first["clinic_id"] = json!(elsewhere);
    create_patient(&app, &admin, &first).await;
}

#[tokio::test]
async fn a_patient_of_another_clinic_is_404_exactly_like_a_missing_one() {
    let app = spawn_app().await;
    let (admin, mine) = admin_and_clinic(&app).await;
    let other = app.create_clinic(&admin, "Elsewhere").await;
    let (_, doc) = app.create_staff(&admin, "doc", "clinician", &[&mine]).await;
    let (own, _) = create_patient(&app, &admin, &new_patient_json(&mine, "Ida", "Roth")).await;
    let (foreign, _) =
        create_patient(&app, &admin, &new_patient_json(&other, "Olga", "Fink")).await;

    assert_eq!(read(&app, &doc, &own).await.status(), 200);
    let hidden = assert_problem(read(&app, &doc, &foreign).await, 404).await;
    let missing = assert_problem(read(&app, &doc, "pat_nonexistent").await, 404).await;
    assert_eq!(hidden["detail"], missing["detail"]);
    assert_eq!(hidden["title"], missing["title"]);
}

#[tokio::test]
async fn reading_a_patient_with_its_current_etag_returns_304_without_a_body() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (id, etag) = create_patient(&app, &admin, &new_patient_json(&clinic, "Ida", "Roth")).await;
    let res = app
        .authed(Method::GET, &path_of(&id), &admin)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(header(&res, "etag"), etag);
    assert!(res.bytes().await.unwrap().is_empty());

    let res = app
        .authed(Method::GET, &path_of(&id), &admin)
        .header("if-none-match", "\"99\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn updates_without_if_match_get_428_and_a_stale_tag_gets_412_with_the_current_etag() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (id, _) = create_patient(&app, &admin, &new_patient_json(&clinic, "Ida", "Roth")).await;
    let put_body = json!({"given_name": "Ida", "family_name": "Roth-Berg", "date_of_birth": "1980-04-12", "sex": "female", "mrn": "A-000001"});
    let patch_body = json!({"address": "Hauptplatz 1, 8010 Graz"});
    let mut version = 1;
    for (method, body) in [(Method::PUT, &put_body), (Method::PATCH, &patch_body)] {
        let res = update(&app, method.clone(), &admin, &id, None, body)
            .send()
            .await
            .unwrap();
        assert_problem(res, 428).await;

        let res = update(&app, method.clone(), &admin, &id, Some("\"99\""), body)
            .send()
            .await
            .unwrap();
        assert_eq!(header(&res, "etag"), format!("\"{version}\""), "{method}");
        assert_problem(res, 412).await;

        let current = format!("\"{version}\"");
        let res = update(&app, method.clone(), &admin, &id, Some(&current), body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{method}");
        version += 1;
        assert_eq!(header(&res, "etag"), format!("\"{version}\""));
        let updated: Value = res.json().await.unwrap();
        assert_eq!(updated["version"], version);
    }
    // Both changes hold.
    let now: Value = read(&app, &admin, &id).await.json().await.unwrap();
    assert_eq!(now["family_name"], "Roth-Berg");
    assert_eq!(now["address"], "Hauptplatz 1, 8010 Graz");
}

#[tokio::test]
async fn a_put_replaces_the_whole_record_and_clears_the_fields_it_leaves_out() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut body = new_patient_json(&clinic, "Maria", "Huber");
    body["phone"] = json!("+436641234567");
    body["email"] = json!("maria.huber@example.org");
    body["address"] = json!("Hauptplatz 1, 8010 Graz");
    body["height_cm"] = json!(172);
    body["weight_kg"] = json!(70);
    let (id, etag) = create_patient(&app, &admin, &body).await;

    let replacement = json!({"given_name": "Maria", "family_name": "Huber-Lang", "date_of_birth": "1980-04-12", "sex": "female", "mrn": "A-000001", "height_cm": 172});
    let res = update(&app, Method::PUT, &admin, &id, Some(&etag), &replacement)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), "\"2\"");
    let replaced: Value = res.json().await.unwrap();
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(replaced["clinic_id"], clinic.as_str());
    assert_eq!(replaced["family_name"], "Huber-Lang");
    assert_eq!(replaced["height_cm"].as_f64(), Some(172.0));
    for gone in ["phone", "email", "address", "weight_kg", "bmi"] {
        assert_eq!(replaced.get(gone), Some(&Value::Null), "{gone}");
    }
    let read_back: Value = read(&app, &admin, &id).await.json().await.unwrap();
    assert_eq!(read_back, replaced);
}

#[tokio::test]
async fn a_merge_patch_changes_what_it_names_and_null_removes_an_optional_field() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let mut body = new_patient_json(&clinic, "Maria", "Huber");
    body["phone"] = json!("+436641234567");
    body["height_cm"] = json!(180);
    body["weight_kg"] = json!(81);
    let (id, etag) = create_patient(&app, &admin, &body).await;

    let patch = json!({"phone": null, "weight_kg": 90, "address": "Hauptplatz 1, 8010 Graz"});
    let res = update(&app, Method::PATCH, &admin, &id, Some(&etag), &patch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "etag"), "\"2\"");
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched.get("phone"), Some(&Value::Null));
    assert_eq!(patched["weight_kg"].as_f64(), Some(90.0));
    // 90 / 1.8² = 27.77…
    assert_eq!(patched["bmi"].as_f64(), Some(27.8));
    assert_eq!(patched["address"], "Hauptplatz 1, 8010 Graz");
    assert_eq!(patched["given_name"], "Maria");
    assert_eq!(patched["mrn"], "A-000001");

    // A PATCH must say it is a merge patch.
    let res = app
        .authed(Method::PATCH, &path_of(&id), &admin)
        .header("if-match", "\"2\"")
        .json(&json!({"given_name": "Mia"}))
        .send()
        .await
        .unwrap();
    assert!(header(&res, "accept-patch").contains("application/merge-patch+json"));
    assert_problem(res, 415).await;
}

#[tokio::test]
async fn a_patch_naming_id_or_clinic_id_or_breaking_a_rule_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let other = app.create_clinic(&admin, "Elsewhere").await;
    let (id, etag) = create_patient(&app, &admin, &new_patient_json(&clinic, "Ida", "Roth")).await;
    for patch in [
        json!({"clinic_id": other}),
        json!({"id": "pat_other"}),
        json!({"sex": "robot"}),
        json!({"given_name": null}),
        json!({"date_of_birth": "1850-06-01"}),
    ] {
        let res = update(&app, Method::PATCH, &admin, &id, Some(&etag), &patch)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 422).await;
        assert!(!pointers(&problem).is_empty(), "{patch}");
    }
    let res = read(&app, &admin, &id).await;
    assert_eq!(header(&res, "etag"), "\"1\"");
    let now: Value = res.json().await.unwrap();
    assert_eq!(now["clinic_id"], clinic.as_str());
    assert_eq!(now["given_name"], "Ida");
}

#[tokio::test]
async fn a_deleted_patient_is_204_then_gone_410_and_deleting_again_is_still_204() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (_, doc) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let (id, _) = create_patient(&app, &doc, &new_patient_json(&clinic, "Ida", "Roth")).await;
    let delete = || app.authed(Method::DELETE, &path_of(&id), &doc).send();

    let res = delete().await.unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.headers().get("content-length").is_none());
    assert!(res.headers().get("content-type").is_none());
    assert!(res.bytes().await.unwrap().is_empty());

    assert_problem(read(&app, &doc, &id).await, 410).await;
    let put = json!({"given_name": "Ida", "family_name": "Roth", "date_of_birth": "1980-04-12", "sex": "female", "mrn": "A-000001"});
    let res = update(&app, Method::PUT, &doc, &id, Some("\"1\""), &put)
        .send()
        .await
        .unwrap();
    assert_problem(res, 410).await;
    let patch = json!({"given_name": "Ina"});
    let res = update(&app, Method::PATCH, &doc, &id, Some("\"1\""), &patch)
        .send()
        .await
        .unwrap();
    assert_problem(res, 410).await;

    assert_eq!(delete().await.unwrap().status(), 204);
    assert!(search(&app, &doc, &[]).await.is_empty());
}

#[tokio::test]
async fn a_receptionist_may_not_delete_a_patient() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    let (id, _) = create_patient(&app, &desk, &new_patient_json(&clinic, "Ida", "Roth")).await;
    let res = app
        .authed(Method::DELETE, &path_of(&id), &desk)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 403).await;
    assert!(problem["detail"].as_str().unwrap().contains("role"));
    assert_eq!(read(&app, &desk, &id).await.status(), 200);
}

#[tokio::test]
async fn a_name_search_is_a_case_and_accent_blind_prefix_over_the_callers_clinics_only() {
    let app = spawn_app().await;
    let (admin, mine) = admin_and_clinic(&app).await;
    let other = app.create_clinic(&admin, "Elsewhere").await;
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&mine])
        .await;
    let mut made = Vec::new();
    for (clinic, given, family) in [
        (&mine, "José", "García"),
        (&mine, "Josefa", "Lang"),
        (&mine, "Anna", "Josefsson"),
        (&mine, "Peter", "Huber"),
        (&other, "Josep", "Vidal"),
    ] {
        let (id, _) = create_patient(&app, &admin, &new_patient_json(clinic, given, family)).await;
        made.push(id);
    }
    let [jose, josefa, anna, _peter, josep] = &made[..] else {
        unreachable!()
    };

    let jose_and_co = set(&[jose, josefa, anna]);
    assert_eq!(search(&app, &desk, &[("q", "jose")]).await, jose_and_co);
    assert_eq!(search(&app, &desk, &[("q", "JOSÉ")]).await, jose_and_co);
    assert_eq!(search(&app, &desk, &[("q", "garc")]).await, set(&[jose]));
    assert!(
        search(&app, &desk, &[("q", "ose")]).await.is_empty(),
        "a prefix, not a substring"
    );
    // Admins search every clinic.
    assert_eq!(
        search(&app, &admin, &[("q", "jose")]).await,
        set(&[jose, josefa, anna, josep])
    );
}

#[tokio::test]
async fn a_search_filters_by_birth_date_mrn_phone_and_clinic() {
    let app = spawn_app().await;
    let (admin, a) = admin_and_clinic(&app).await;
    let b = app.create_clinic(&admin, "Elsewhere").await;
    let person = |clinic: &str, given: &str, dob: &str, phone: &str| {
        let mut p = new_patient_json(clinic, given, "Wolf");
        p["date_of_birth"] = json!(dob);
        p["phone"] = json!(phone);
        p
    };
    let mut lena = person(&a, "Lena", "1990-01-01", "+436641111111");
    lena["mrn"] = json!("W-1");
    let (lena_a, _) = create_patient(&app, &admin, &lena).await;
    let (lukas_a, _) = create_patient(
        &app,
        &admin,
        &person(&a, "Lukas", "1985-05-05", "+436642222222"),
    )
    .await;
    let (lena_b, _) = create_patient(
        &app,
        &admin,
        &person(&b, "Lena", "1990-01-01", "+436641111111"),
    )
    .await;

    let cases: [(Query, HashSet<String>); 5] = [
        (&[("date_of_birth", "1990-01-01")], set(&[&lena_a, &lena_b])),
        (
            &[("date_of_birth", "1990-01-01"), ("clinic_id", &a)],
            set(&[&lena_a]),
        ),
        (&[("mrn", "W-1")], set(&[&lena_a])),
        (&[("phone", "+436642222222")], set(&[&lukas_a])),
        (&[("q", "wolf"), ("clinic_id", &b)], set(&[&lena_b])),
    ];
    for (query, want) in cases {
        assert_eq!(search(&app, &admin, query).await, want, "{query:?}");
    }
}

#[tokio::test]
async fn the_patient_list_is_offered_as_csv_with_a_header_row() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (ida, _) = create_patient(&app, &admin, &new_patient_json(&clinic, "Ida", "Roth")).await;
    let (eva, _) = create_patient(&app, &admin, &new_patient_json(&clinic, "Eva", "Klein")).await;
    let res = app
        .authed(Method::GET, "/v1/patients", &admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/csv"));
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    let columns: Vec<&str> = lines[0].split(',').map(|c| c.trim_matches('"')).collect();
    for name in ["id", "mrn", "given_name", "family_name", "date_of_birth"] {
        assert!(columns.contains(&name), "{name} in {}", lines[0]);
    }
    for id in [&ida, &eva] {
        assert_eq!(lines.iter().filter(|l| l.contains(id.as_str())).count(), 1);
    }
}

#[tokio::test]
async fn a_limit_outside_1_to_200_or_a_forged_cursor_is_400() {
    let app = spawn_app().await;
    let (admin, _) = admin_and_clinic(&app).await;
    for (query, pointer) in [
        ("limit=0", "query/limit"),
        ("limit=201", "query/limit"),
        ("limit=many", "query/limit"),
        ("cursor=not-a-cursor", "query/cursor"),
    ] {
        let res = app
            .authed(Method::GET, &format!("/v1/patients?{query}"), &admin)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(res, 400).await;
        assert_eq!(pointers(&problem), [pointer], "{query}");
    }
    for ok in ["limit=1", "limit=200"] {
        let res = app
            .authed(Method::GET, &format!("/v1/patients?{ok}"), &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{ok}");
    }
}

#[tokio::test]
async fn a_phone_lookup_answers_307_for_one_match_300_for_several_and_404_for_none() {
    let app = spawn_app().await;
    let (admin, mine) = admin_and_clinic(&app).await;
    let other = app.create_clinic(&admin, "Elsewhere").await;
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&mine])
        .await;
    let with_phone = |clinic: &str, given: &str, phone: &str| {
        let mut p = new_patient_json(clinic, given, "Brunner");
        p["phone"] = json!(phone);
        p
    };
    let (single, _) =
        create_patient(&app, &admin, &with_phone(&mine, "Max", "+436641234567")).await;
    // The same number in a clinic the receptionist does not see must not make it ambiguous.
    create_patient(&app, &admin, &with_phone(&other, "Moritz", "+436641234567")).await;
    let (mum, _) = create_patient(&app, &admin, &with_phone(&mine, "Eva", "+436649999999")).await;
    let (kid, _) = create_patient(&app, &admin, &with_phone(&mine, "Lisa", "+436649999999")).await;
    let lookup = |phone: &'static str| {
        app.authed(Method::GET, "/v1/patients/lookup", &desk)
            .query(&[("phone", phone)])
            .send()
    };

    let res = lookup("+436641234567").await.unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(header(&res, "location"), path_of(&single));

    let res = lookup("+436649999999").await.unwrap();
    assert_eq!(res.status(), 300);
    assert!(header(&res, "content-type").starts_with("application/json"));
    let links: Vec<String> = res
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let links = links.join(", ");
    for id in [&mum, &kid] {
        assert!(
            links.contains(&format!("<{}>; rel=\"alternate\"", path_of(id))),
            "{links}"
        );
    }
    let choices: Value = res.json().await.unwrap();
    assert_eq!(
        ids_of(&choices).into_iter().collect::<HashSet<_>>(),
        set(&[&mum, &kid])
    );

    assert_problem(lookup("+436640000000").await.unwrap(), 404).await;
    // A national number with no clinic country to read it in finds nobody; not even the shape
    // of a number is a 400.
    let body = assert_problem(lookup("0664 1234567").await.unwrap(), 404).await;
    assert!(body["detail"].as_str().unwrap().contains("country code"));
    assert_problem(lookup("call-me").await.unwrap(), 400).await;
}

#[tokio::test]
async fn a_merged_patient_redirects_301_to_the_survivor() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (_, doc) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    let (old, _) = create_patient(&app, &desk, &new_patient_json(&clinic, "Franz", "Meier")).await;
    let (survivor, _) =
        create_patient(&app, &desk, &new_patient_json(&clinic, "Franz", "Maier")).await;
    let merge = |token: &str| {
        app.authed(Method::POST, &format!("/v1/patients/{old}/merge"), token)
            .json(&json!({"into": survivor}))
            .send()
    };

    let problem = assert_problem(merge(&desk).await.unwrap(), 403).await;
    assert!(problem["detail"].as_str().unwrap().contains("role"));
    assert_eq!(read(&app, &doc, &old).await.status(), 200);

    let res = merge(&doc).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("etag").is_some());
    let merged: Value = res.json().await.unwrap();
    assert_eq!(merged["id"], survivor.as_str());

    let res = read(&app, &doc, &old).await;
    assert_eq!(res.status(), 301);
    assert_eq!(header(&res, "location"), path_of(&survivor));
    assert_eq!(read(&app, &doc, &survivor).await.status(), 200);
}

#[tokio::test]
async fn a_sealed_patient_is_451_to_staff_readable_by_admins_and_423_to_every_write() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (_, doc) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    let (id, _) = create_patient(&app, &doc, &new_patient_json(&clinic, "Ida", "Roth")).await;
    let seal = |token: &str| {
        app.authed(Method::POST, &format!("/v1/patients/{id}/seal"), token)
            .json(&json!({"reason": "court order 4 C 12/24"}))
            .send()
    };
    let unseal = |token: &str| {
        app.authed(Method::POST, &format!("/v1/patients/{id}/unseal"), token)
            .send()
    };
    for token in [&doc, &desk] {
        assert_problem(seal(token).await.unwrap(), 403).await;
    }
    assert_eq!(seal(&admin).await.unwrap().status(), 200);

    for token in [&doc, &desk] {
        let res = read(&app, token, &id).await;
        assert!(header(&res, "link").contains("rel=\"blocked-by\""));
        assert_problem(res, 451).await;
    }
    let res = read(&app, &admin, &id).await;
    assert_eq!(res.status(), 200);
    let etag = header(&res, "etag");

    let put = json!({"given_name": "Ida", "family_name": "Roth", "date_of_birth": "1980-04-12", "sex": "female", "mrn": "A-000001"});
    let patch = json!({"address": "Hauptplatz 1, 8010 Graz"});
    for token in [&admin, &doc] {
        let res = update(&app, Method::PUT, token, &id, Some(&etag), &put)
            .send()
            .await
            .unwrap();
        assert_problem(res, 423).await;
        let res = update(&app, Method::PATCH, token, &id, Some(&etag), &patch)
            .send()
            .await
            .unwrap();
        assert_problem(res, 423).await;
        let res = app
            .authed(Method::DELETE, &path_of(&id), token)
            .send()
            .await
            .unwrap();
        assert_problem(res, 423).await;
    }

    assert_problem(unseal(&doc).await.unwrap(), 403).await;
    assert_eq!(unseal(&admin).await.unwrap().status(), 200);
    let res = read(&app, &doc, &id).await;
    assert_eq!(res.status(), 200);
    let etag = header(&res, "etag");
    let res = update(&app, Method::PATCH, &doc, &id, Some(&etag), &patch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_access_log_shows_who_created_and_read_a_patient_under_which_request() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (desk_id, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    let (doc_id, doc) = app
        .create_staff(&admin, "doc", "clinician", &[&clinic])
        .await;
    let res = post_patient(&app, &desk, &new_patient_json(&clinic, "Ida", "Roth")).await;
    assert_eq!(res.status(), 201);
    let create_request = header(&res, "x-request-id");
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = read(&app, &doc, &id).await;
    assert_eq!(res.status(), 200);
    let read_request = header(&res, "x-request-id");

    let log_path = format!("/v1/patients/{id}/access-log");
    for token in [&doc, &desk] {
        let res = app
            .authed(Method::GET, &log_path, token)
            .send()
            .await
            .unwrap();
        assert_problem(res, 403).await;
    }
    let res = app
        .authed(Method::GET, &log_path, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log: Value = res.json().await.unwrap();
    assert!(log.get("next_cursor").is_some());
    let entry = |request_id: &str| {
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no entry for {request_id} in {log}"))
            .clone()
    };
    let created = entry(&create_request);
    let read_entry = entry(&read_request);
    for (e, action, actor) in [
        (&created, "create", &desk_id),
        (&read_entry, "read", &doc_id),
    ] {
        assert_eq!(e["action"], action);
        assert_eq!(e["actor_id"], actor.as_str());
        assert_eq!(e["resource_type"], "patient");
        assert_eq!(e["resource_id"], id.as_str());
        assert_eq!(e["ip"], "127.0.0.1");
        assert!(e["at"].as_str().is_some_and(|t| !t.is_empty()));
    }
    assert!(created["seq"].as_i64().unwrap() < read_entry["seq"].as_i64().unwrap());
}
