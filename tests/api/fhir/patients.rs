//! FHIR Patient: capabilities, read, vread, create, conditional create, update, and the native answers for deleted, merged, sealed and foreign records.
use reqwest::Method;
use serde_json::{json, Value};

use super::{amy, create, fhir, native, world, Answer, FHIR_JSON};
use crate::helpers::spawn_app;

#[tokio::test]
async fn metadata_is_a_capability_statement_and_xml_is_refused_with_406() {
    let app = spawn_app().await;
    let ok = fhir(&app, Method::GET, "/metadata", None, None, &[]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), FHIR_JSON);
    assert_eq!(ok.body["resourceType"], "CapabilityStatement");
    assert_eq!(ok.body["fhirVersion"], "4.0.1");
    let types: Vec<&str> = ok.body["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Patient", "Appointment", "Practitioner"]);
    for accept in ["application/fhir+json", "application/json"] {
        let a = fhir(
            &app,
            Method::GET,
            "/metadata",
            None,
            None,
            &[("accept", accept)],
        )
        .await;
        assert_eq!(a.status, 200, "{accept}");
    }
    let by_format = fhir(
        &app,
        Method::GET,
        "/metadata?_format=json",
        None,
        None,
        &[("accept", "application/fhir+xml")],
    )
    .await;
    assert_eq!(by_format.status, 200);
    let xml = fhir(
        &app,
        Method::GET,
        "/metadata",
        None,
        None,
        &[("accept", "application/fhir+xml")],
    )
    .await;
    xml.assert_outcome(406);
    let xml = fhir(&app, Method::GET, "/metadata?_format=xml", None, None, &[]).await;
    xml.assert_outcome(406);
}

#[tokio::test]
async fn a_patient_is_created_read_vread_and_updated_by_version() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let made = create(&app, &w.nurse, &amy("Pond", "Amy", Some("MRN-1"))).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.header("etag"), "W/\"1\"");
    let id = made.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("pat-"), "{id}");
    assert_eq!(
        made.header("location"),
        app.url(&format!("/fhir/r4/Patient/{id}/_history/1"))
    );
    assert_eq!(made.body["meta"]["versionId"], "1");
    assert_eq!(made.body["telecom"][0]["value"], "+436641234567");
    assert_eq!(
        made.body["managingOrganization"]["identifier"]["value"],
        w.clinic.as_str()
    );

    // The native API returns the same record.
    let native: Value = app
        .authed(
            Method::GET,
            &format!("/v1/patients/{}", native(&id)),
            &w.nurse,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(native["family_name"], "Pond");
    assert_eq!(native["mrn"], "MRN-1");

    let read = fhir(
        &app,
        Method::GET,
        &format!("/Patient/{id}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag"), "W/\"1\"");
    assert_eq!(read.body["name"][0]["family"], "Pond");
    let cached = fhir(
        &app,
        Method::GET,
        &format!("/Patient/{id}"),
        Some(&w.nurse),
        None,
        &[("if-none-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(cached.status, 304);
    assert_eq!(cached.header("etag"), "W/\"1\"");
    let mut extra = amy("Smith", "Jo", None);
    extra["photo"] = json!([]);
    let refused = create(&app, &w.nurse, &extra).await;
    assert_eq!(
        refused.assert_outcome(422)["issue"][1]["location"][0],
        "/photo"
    );
    let v1 = fhir(
        &app,
        Method::GET,
        &format!("/Patient/{id}/_history/1"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(v1.status, 200);
    fhir(
        &app,
        Method::GET,
        &format!("/Patient/{id}/_history/7"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await
    .assert_outcome(404);

    let mut changed = read.body.clone();
    changed["name"][0]["family"] = json!("Williams");
    let path = format!("/Patient/{id}");
    fhir(
        &app,
        Method::PUT,
        &path,
        Some(&w.nurse),
        Some(&changed),
        &[],
    )
    .await
    .assert_outcome(428);
    let ok = fhir(
        &app,
        Method::PUT,
        &path,
        Some(&w.nurse),
        Some(&changed),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("etag"), "W/\"2\"");
    assert_eq!(ok.body["meta"]["versionId"], "2");
    let stale = fhir(
        &app,
        Method::PUT,
        &path,
        Some(&w.nurse),
        Some(&changed),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    stale.assert_outcome(412);
    assert_eq!(stale.header("etag"), "W/\"2\"");

    // Broken input: nothing changes.
    let mut other_id = changed.clone();
    other_id["id"] = json!("pat_00000000000000000000");
    fhir(
        &app,
        Method::PUT,
        &path,
        Some(&w.nurse),
        Some(&other_id),
        &[("if-match", "W/\"2\"")],
    )
    .await
    .assert_outcome(400);
    let mut no_birth = amy("Smith", "Jo", None);
    no_birth.as_object_mut().unwrap().remove("birthDate");
    let bad = create(&app, &w.nurse, &no_birth).await;
    assert_eq!(
        bad.assert_outcome(422)["issue"][1]["location"][0],
        "/birthDate"
    );
    let mut future = amy("Smith", "Jo", None);
    future["birthDate"] = json!("2999-01-01");
    assert_eq!(
        create(&app, &w.nurse, &future).await.assert_outcome(422)["issue"][1]["location"][0],
        "/birthDate"
    );
    let plain = app
        .authed(Method::POST, "/fhir/r4/Patient", &w.nurse)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 415);
    assert_eq!(plain.headers()["accept-post"], FHIR_JSON);
    let after = fhir(&app, Method::GET, &path, Some(&w.nurse), None, &[]).await;
    assert_eq!(after.body["meta"]["versionId"], "2");
    assert_eq!(after.body["name"][0]["family"], "Williams");
}

#[tokio::test]
async fn conditional_create_answers_201_then_200_then_412_and_duplicates_409() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let cond = [("if-none-exist", "identifier=urn:careq:mrn|MRN-7")];
    let first = fhir(
        &app,
        Method::POST,
        "/Patient",
        Some(&w.nurse),
        Some(&amy("Pond", "Amy", Some("MRN-7"))),
        &cond,
    )
    .await;
    assert_eq!(first.status, 201);
    let again = fhir(
        &app,
        Method::POST,
        "/Patient",
        Some(&w.nurse),
        Some(&amy("Pond", "Amy", Some("MRN-7"))),
        &cond,
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.header("etag"), "W/\"1\"");
    let dup = create(&app, &w.nurse, &amy("Other", "Name", Some("MRN-7"))).await;
    dup.assert_outcome(409);
    let twin = create(&app, &w.nurse, &amy("Pond", "Amy", None)).await;
    twin.assert_outcome(409);
    create(&app, &w.nurse, &amy("Pondering", "Rory", None)).await;
    let many = fhir(
        &app,
        Method::POST,
        "/Patient",
        Some(&w.nurse),
        Some(&amy("New", "One", None)),
        &[("if-none-exist", "family=pond")],
    )
    .await;
    many.assert_outcome(412);
    let unknown = fhir(
        &app,
        Method::POST,
        "/Patient",
        Some(&w.nurse),
        Some(&amy("New", "One", None)),
        &[("if-none-exist", "colour=red")],
    )
    .await;
    unknown.assert_outcome(400);
}

#[tokio::test]
async fn deleted_merged_sealed_and_foreign_patients_answer_as_natively() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let id_of = |a: Answer| native(a.body["id"].as_str().unwrap());
    let gone = id_of(create(&app, &w.admin, &json!({"resourceType": "Patient", "name": [{"family": "Gone", "given": ["G"]}], "birthDate": "1970-01-01", "managingOrganization": {"reference": format!("Organization/{}", w.clinic)}})).await);
    let old = id_of(create(&app, &w.nurse, &amy("Old", "O", None)).await);
    let survivor = id_of(create(&app, &w.nurse, &amy("Survivor", "S", None)).await);
    let sealed = id_of(create(&app, &w.nurse, &amy("Sealed", "S", None)).await);
    let send = |m: Method, p: String, body: Option<Value>| {
        let app = &app;
        let admin = w.admin.clone();
        async move {
            let mut r = app.authed(m, &p, &admin);
            if let Some(b) = body {
                r = r.json(&b);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(
        send(Method::DELETE, format!("/v1/patients/{gone}"), None).await,
        204
    );
    assert_eq!(
        send(
            Method::POST,
            format!("/v1/patients/{old}/merge"),
            Some(json!({"into": survivor}))
        )
        .await,
        200
    );
    assert_eq!(
        send(
            Method::POST,
            format!("/v1/patients/{sealed}/seal"),
            Some(json!({"reason": "court order"}))
        )
        .await,
        200
    );

    fhir(
        &app,
        Method::GET,
        &format!("/Patient/{gone}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await
    .assert_outcome(410);
    let merged = fhir(
        &app,
        Method::GET,
        &format!("/Patient/{old}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(merged.status, 200);
    assert_eq!(merged.body["active"], false);
    assert_eq!(merged.body["link"][0]["type"], "replaced-by");
    assert_eq!(
        merged.body["link"][0]["other"]["reference"],
        format!("Patient/{}", survivor.replacen('_', "-", 1))
    );
    let mut update = merged.body.clone();
    update.as_object_mut().unwrap().remove("link");
    let moved = fhir(
        &app,
        Method::PUT,
        &format!("/Patient/{old}"),
        Some(&w.nurse),
        Some(&update),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        format!("/fhir/r4/Patient/{}", survivor.replacen('_', "-", 1))
    );
    let s = fhir(
        &app,
        Method::GET,
        &format!("/Patient/{sealed}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    s.assert_outcome(451);
    assert!(s.header("link").contains("rel=\"blocked-by\""));

    let other_clinic = app.create_clinic(&w.admin, "Elsewhere").await;
    let (_, stranger) = app
        .create_staff(&w.admin, "stranger", "clinician", &[&other_clinic])
        .await;
    fhir(
        &app,
        Method::GET,
        &format!("/Patient/{survivor}"),
        Some(&stranger),
        None,
        &[],
    )
    .await
    .assert_outcome(404);
    let anon = fhir(
        &app,
        Method::GET,
        &format!("/Patient/{survivor}"),
        None,
        None,
        &[],
    )
    .await;
    anon.assert_outcome(401);
    assert!(anon.header("www-authenticate").starts_with("Bearer"));
    let delete = fhir(
        &app,
        Method::DELETE,
        &format!("/Patient/{survivor}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    delete.assert_outcome(405);
    assert!(delete.header("allow").contains("GET"));
    fhir(&app, Method::GET, "/Nothing", Some(&w.nurse), None, &[])
        .await
        .assert_outcome(404);

    // Reads and denials are in the access log, as on the native API.
    let log: Value = app
        .authed(
            Method::GET,
            &format!("/v1/patients/{sealed}/access-log"),
            &w.admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"denied"), "{actions:?}");
}
