//! Issue 24, points 8 and 18: names that only look different are the same person for duplicate
//! checks (on create, PUT and PATCH, FHIR included), names that show nothing are refused, and a
//! phone that is no number anywhere is listed with the body's shape errors.
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::fhir::{amy, fhir};
use crate::helpers::*;
use crate::patients::{
    admin_and_clinic, create_patient, header, new_patient_json, path_of, pointers, post_patient,
    stored_patients,
};

/// The look-alikes of "Pond" from the review: fillers and blanks after it, a Cyrillic о in it,
/// and a few more of the same kinds.
const LOOK_ALIKES: &[&str] = &[
    "Pond\u{3164}", // Hangul filler
    "Pond\u{115F}", // Hangul choseong filler
    "Pond\u{2800}", // braille blank
    "P\u{043E}nd",  // Cyrillic small o
    "Pond\u{FFA0}", // halfwidth Hangul filler
    "Pond\u{FE0F}", // variation selector
    "Pond\u{180B}", // Mongolian free variation selector
    "P\u{041E}ND",  // Cyrillic capital O, upper case
    "\u{FF30}ond",  // full-width P
    "P0nd",         // digit zero
];

async fn patch_patient(app: &TestApp, token: &str, id: &str, etag: &str, body: &Value) -> Response {
    app.authed(Method::PATCH, &path_of(id), token)
        .header("content-type", "application/merge-patch+json")
        .header("if-match", etag)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn put_patient(app: &TestApp, token: &str, id: &str, etag: &str, body: &Value) -> Response {
    app.authed(Method::PUT, &path_of(id), token)
        .header("if-match", etag)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The stored patient as an admin reads it, with its ETag.
async fn current(app: &TestApp, admin: &str, id: &str) -> (String, Value) {
    let res = app
        .authed(Method::GET, &path_of(id), admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let etag = header(&res, "etag");
    (etag, res.json().await.unwrap())
}

/// The fields a PUT sends for `p` (what the server answered), with other names.
fn replacement(p: &Value, given: &str, family: &str) -> Value {
    let mut body = json!({
        "given_name": given,
        "family_name": family,
        "date_of_birth": p["date_of_birth"],
        "sex": p["sex"],
        "mrn": p["mrn"],
    });
    if let Some(phone) = p["phone"].as_str() {
        body["phone"] = json!(phone);
    }
    body
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn look_alike_names_are_the_same_person_and_a_create_is_409_naming_the_first() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (first, _) = create_patient(&app, &admin, &new_patient_json(&clinic, "Amy", "Pond")).await;
    for family in LOOK_ALIKES {
        let res = post_patient(&app, &admin, &new_patient_json(&clinic, "Amy", family)).await;
        let problem = assert_problem(res, 409).await;
        assert_eq!(problem["related"], path_of(&first), "{family:?}");
    }
    // The given name is compared the same way.
    let res = post_patient(
        &app,
        &admin,
        &new_patient_json(&clinic, "\u{0410}my\u{3164}", "Pond"),
    )
    .await;
    let problem = assert_problem(res, 409).await;
    assert_eq!(problem["related"], path_of(&first));
    assert_eq!(stored_patients(&app).await, 1);

    // The escape hatch of create still stores a namesake knowingly.
    let mut forced = new_patient_json(&clinic, "Amy", "P\u{043E}nd");
    forced["allow_duplicate"] = json!(true);
    create_patient(&app, &admin, &forced).await;
    assert_eq!(stored_patients(&app).await, 2);

    // Ordinary different names are still different people, and search still finds by typing.
    create_patient(&app, &admin, &new_patient_json(&clinic, "Amy", "Pound")).await;
    let res = app
        .authed(Method::GET, "/v1/patients?q=pond", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    let found: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(found.contains(&first.as_str()), "{page}");
}

#[tokio::test]
async fn a_name_of_only_invisible_or_filler_characters_is_422_at_its_pointer_and_nothing_is_stored()
{
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    for (given, family, want) in [
        ("\u{3164}", "Pond", vec!["/given_name"]),
        ("Amy", "\u{2800}\u{115F}", vec!["/family_name"]),
        (
            "\u{FE0F} \u{FFA0}",
            "\u{1160}",
            vec!["/family_name", "/given_name"],
        ),
    ] {
        let res = post_patient(&app, &admin, &new_patient_json(&clinic, given, family)).await;
        let problem = assert_problem(res, 422).await;
        assert_eq!(sorted(pointers(&problem)), want, "{given:?} {family:?}");
    }
    assert_eq!(stored_patients(&app).await, 0);

    // A patch to such a name is refused the same way, and changes nothing.
    let (id, etag) = create_patient(&app, &admin, &new_patient_json(&clinic, "Amy", "Pond")).await;
    let res = patch_patient(
        &app,
        &admin,
        &id,
        &etag,
        &json!({"given_name": "\u{3164}\u{3164}"}),
    )
    .await;
    let problem = assert_problem(res, 422).await;
    assert_eq!(pointers(&problem), ["/given_name"]);
    let (now, body) = current(&app, &admin, &id).await;
    assert_eq!(now, etag);
    assert_eq!(body["given_name"], "Amy");
}

#[tokio::test]
async fn a_put_or_patch_that_makes_a_patient_anothers_duplicate_is_409_and_changes_nothing() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (_, desk) = app
        .create_staff(&admin, "desk", "receptionist", &[&clinic])
        .await;
    let (amy_id, _) = create_patient(&app, &admin, &new_patient_json(&clinic, "Amy", "Pond")).await;
    let (rory, etag) =
        create_patient(&app, &admin, &new_patient_json(&clinic, "Rory", "Williams")).await;
    let (_, before) = current(&app, &admin, &rory).await;

    // PATCH to a look-alike of Amy's names, and PUT to her names exactly.
    let res = patch_patient(
        &app,
        &desk,
        &rory,
        &etag,
        &json!({"given_name": "Amy", "family_name": "P\u{043E}nd"}),
    )
    .await;
    let problem = assert_problem(res, 409).await;
    assert_eq!(problem["related"], path_of(&amy_id));
    let res = put_patient(
        &app,
        &desk,
        &rory,
        &etag,
        &replacement(&before, "Amy", "Pond\u{3164}"),
    )
    .await;
    let problem = assert_problem(res, 409).await;
    assert_eq!(problem["related"], path_of(&amy_id));
    let (now, after) = current(&app, &admin, &rory).await;
    assert_eq!(now, etag, "nothing changed");
    assert_eq!(after, before);

    // Changing the birth date onto another's is checked too.
    let (amy2, _) = create_patient(&app, &admin, &{
        let mut p = new_patient_json(&clinic, "Rory", "Williams");
        p["date_of_birth"] = json!("1979-01-01");
        p
    })
    .await;
    let res = patch_patient(
        &app,
        &desk,
        &rory,
        &etag,
        &json!({"date_of_birth": "1979-01-01"}),
    )
    .await;
    let problem = assert_problem(res, 409).await;
    assert_eq!(problem["related"], path_of(&amy2));

    // A sealed record is named only to admins, as on create; either way nothing changes.
    let res = app
        .authed(Method::POST, &format!("/v1/patients/{amy_id}/seal"), &admin)
        .json(&json!({"reason": "court order"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let into_amy = json!({"given_name": "AMY", "family_name": "Pond\u{2800}"});
    let problem = assert_problem(
        patch_patient(&app, &desk, &rory, &etag, &into_amy).await,
        409,
    )
    .await;
    assert!(problem.get("related").is_none(), "{problem}");
    assert!(!problem.to_string().contains(&amy_id), "{problem}");
    let problem = assert_problem(
        patch_patient(&app, &admin, &rory, &etag, &into_amy).await,
        409,
    )
    .await;
    assert_eq!(problem["related"], path_of(&amy_id));
    let (now, after) = current(&app, &admin, &rory).await;
    assert_eq!(now, etag, "nothing changed");
    assert_eq!(after, before);

    // What does not change the identity is not checked again: a namesake stored knowingly can
    // still be updated.
    let mut twin = new_patient_json(&clinic, "Rory", "Williams");
    twin["allow_duplicate"] = json!(true);
    let (twin_id, twin_etag) = create_patient(&app, &admin, &twin).await;
    let res = patch_patient(
        &app,
        &desk,
        &twin_id,
        &twin_etag,
        &json!({"phone": "+43 664 7654321", "given_name": "RORY"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_ne!(header(&res, "etag"), twin_etag);
}

#[tokio::test]
async fn a_fhir_create_or_update_of_a_look_alike_is_409_too() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let in_clinic = |family: &str| {
        let mut p = amy(family, "Amy", None);
        p["managingOrganization"] = json!({"reference": format!("Organization/{clinic}")});
        p
    };
    let first = fhir(
        &app,
        Method::POST,
        "/Patient",
        Some(&admin),
        Some(&in_clinic("Pond")),
        &[],
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = in_clinic("P\u{043E}nd\u{3164}");
    let res = fhir(
        &app,
        Method::POST,
        "/Patient",
        Some(&admin),
        Some(&again),
        &[],
    )
    .await;
    res.assert_outcome(409);
    assert_eq!(stored_patients(&app).await, 1);

    // An update of another patient into Amy's look-alike is refused, and changes nothing.
    let (rory, _) = create_patient(
        &app,
        &admin,
        &json!({"clinic_id": clinic, "given_name": "Rory", "family_name": "Williams",
                "date_of_birth": "1989-04-01", "sex": "male"}),
    )
    .await;
    let fhir_id = rory.replacen('_', "-", 1);
    let path = format!("/Patient/{fhir_id}");
    let mut into_amy = in_clinic("Pond\u{2800}");
    into_amy["id"] = json!(fhir_id);
    let res = fhir(
        &app,
        Method::PUT,
        &path,
        Some(&admin),
        Some(&into_amy),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    res.assert_outcome(409);
    let after = fhir(&app, Method::GET, &path, Some(&admin), None, &[]).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body["meta"]["versionId"], "1");
    assert_eq!(after.body["name"][0]["family"], "Williams");
}

#[tokio::test]
async fn a_phone_that_is_no_number_anywhere_is_listed_with_the_shape_errors_of_every_patient_body()
{
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;

    // Create: a wrong enum, a missing date of birth and a phone with no digits at all.
    let mut body = new_patient_json(&clinic, "Amy", "Pond");
    body["sex"] = json!("M");
    body.as_object_mut().unwrap().remove("date_of_birth");
    for phone in ["not a phone", "+43 664 CALL-ME", "()", "+"] {
        body["phone"] = json!(phone);
        let problem = assert_problem(post_patient(&app, &admin, &body).await, 422).await;
        assert_eq!(
            sorted(pointers(&problem)),
            ["/date_of_birth", "/phone", "/sex"],
            "{phone:?}: {problem}"
        );
    }
    // A national-looking number is still left for the clinic's country to judge.
    body["phone"] = json!("0664 1234567");
    let problem = assert_problem(post_patient(&app, &admin, &body).await, 422).await;
    assert_eq!(sorted(pointers(&problem)), ["/date_of_birth", "/sex"]);
    // On its own, a phone with letters is refused as before, at /phone.
    let mut letters = new_patient_json(&clinic, "Amy", "Pond");
    letters["phone"] = json!("not a phone");
    let problem = assert_problem(post_patient(&app, &admin, &letters).await, 422).await;
    assert_eq!(pointers(&problem), ["/phone"]);
    assert_eq!(stored_patients(&app).await, 0);

    // PUT and PATCH.
    let (id, etag) = create_patient(&app, &admin, &new_patient_json(&clinic, "Amy", "Pond")).await;
    let (_, before) = current(&app, &admin, &id).await;
    let mut put = replacement(&before, "Amy", "Pond");
    put["sex"] = json!("M");
    put["phone"] = json!("not a phone");
    let problem = assert_problem(put_patient(&app, &admin, &id, &etag, &put).await, 422).await;
    assert_eq!(sorted(pointers(&problem)), ["/phone", "/sex"]);
    let patch = json!({"sex": "M", "phone": "not a phone"});
    let problem = assert_problem(patch_patient(&app, &admin, &id, &etag, &patch).await, 422).await;
    assert_eq!(sorted(pointers(&problem)), ["/phone", "/sex"]);
    let (now, after) = current(&app, &admin, &id).await;
    assert_eq!(now, etag);
    assert_eq!(after, before);

    // A batch item.
    body["phone"] = json!("not a phone");
    let res = app
        .authed(Method::POST, "/v1/patients/batch", &admin)
        .json(&json!({"atomic": false, "items": [body]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 207);
    let results: Value = res.json().await.unwrap();
    let problem = &results["results"][0]["problem"];
    assert_problem_body(problem, 422);
    assert_eq!(
        sorted(pointers(problem)),
        ["/items/0/date_of_birth", "/items/0/phone", "/items/0/sex"]
    );

    // FHIR: a birth date of the wrong type and a telecom that is no number.
    let mut doc = amy("Pond", "Amy", None);
    doc["birthDate"] = json!(19890401);
    doc["telecom"] = json!([{"system": "phone", "value": "not a phone"}]);
    doc["managingOrganization"] = json!({"reference": format!("Organization/{clinic}")});
    let res = fhir(
        &app,
        Method::POST,
        "/Patient",
        Some(&admin),
        Some(&doc),
        &[],
    )
    .await;
    let outcome = res.assert_outcome(422);
    let locations: Vec<&str> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["location"][0].as_str())
        .collect();
    assert!(locations.contains(&"/birthDate"), "{outcome}");
    assert!(locations.contains(&"/telecom"), "{outcome}");
    assert_eq!(stored_patients(&app).await, 1);
}

#[tokio::test]
async fn patients_stored_before_identity_keys_get_them_when_careq_starts() {
    let app = spawn_app().await;
    let (admin, clinic) = admin_and_clinic(&app).await;
    let (old, _) = create_patient(
        &app,
        &admin,
        &new_patient_json(&clinic, "Amy", "P\u{043E}nd"),
    )
    .await;
    // The row as an earlier version stored it: names merely folded (the Cyrillic о kept), and
    // listed for re-keying as migration 0017 lists every earlier row.
    let mut w = app.writable().await;
    sqlx::query("UPDATE patients SET given_norm = $1, family_norm = $2 WHERE id = $3")
        .bind("amy")
        .bind("p\u{043E}nd")
        .bind(&old)
        .execute(&mut w)
        .await
        .unwrap();
    sqlx::query("INSERT INTO patients_rekey (id) VALUES ($1)")
        .bind(&old)
        .execute(&mut w)
        .await
        .unwrap();
    drop(w);
    // Opening the database again (a restart) re-keys the row before serving.
    let store =
        careq::store::Store::open(careq::store::Options::cli(&app.state.config.database_url))
            .await
            .unwrap();
    careq::startup::backfill(&store).await.unwrap();
    store.close().await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM patients_rekey")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let res = post_patient(&app, &admin, &new_patient_json(&clinic, "Amy", "Pond")).await;
    let problem = assert_problem(res, 409).await;
    assert_eq!(problem["related"], path_of(&old));
    assert_eq!(stored_patients(&app).await, 1);
}
