//! `/fhir/r4`: every interaction and status over real HTTP. With `CAREQ_FHIR_CAPTURE_DIR` set,
//! every FHIR body careq answers is written there for `scripts/fhir_validate.py`.
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

const FHIR_JSON: &str = "application/fhir+json";
static CAPTURED: AtomicUsize = AtomicUsize::new(0);

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The answer is an OperationOutcome with `status`, as FHIR media type.
    fn assert_outcome(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), FHIR_JSON);
        assert_eq!(
            self.body["resourceType"], "OperationOutcome",
            "{}",
            self.body
        );
        let issue = &self.body["issue"][0];
        assert_eq!(issue["severity"], "error");
        assert!(issue["diagnostics"]
            .as_str()
            .unwrap()
            .contains(self.header("x-request-id")));
        &self.body
    }
}

/// One FHIR request; the body answered is captured for validation.
async fn fhir(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        app.url(&format!("/fhir/r4{path}"))
    };
    let mut req = app.client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", FHIR_JSON)
            .body(serde_json::to_vec(b).unwrap());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let (Ok(dir), false) = (std::env::var("CAREQ_FHIR_CAPTURE_DIR"), bytes.is_empty()) {
        let n = CAPTURED.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}-{n}.json", std::process::id());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), &bytes).unwrap();
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// The careq id a FHIR id names (FHIR ids have `-` where careq's have `_`).
fn native(id: &str) -> String {
    id.replacen('-', "_", 1)
}

fn amy(family: &str, given: &str, mrn: Option<&str>) -> Value {
    let mut p = json!({
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": "1989-04-01",
        "telecom": [{"system": "phone", "value": "+43 664 1234567"}],
    });
    if let Some(m) = mrn {
        p["identifier"] = json!([{"system": "urn:careq:mrn", "value": m}]);
    }
    p
}

struct World {
    admin: String,
    clinic: String,
    nurse: String,
    doctor_id: String,
    doctor: String,
}

async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let clinic = app.create_clinic(&admin, "Fhir").await;
    let (_, nurse) = app
        .create_staff(&admin, "nurse", "receptionist", &[&clinic])
        .await;
    let (doctor_id, doctor) = app
        .create_staff(&admin, "dr.fhir", "clinician", &[&clinic])
        .await;
    World {
        admin,
        clinic,
        nurse,
        doctor_id,
        doctor,
    }
}

async fn create(app: &TestApp, token: &str, p: &Value) -> Answer {
    fhir(app, Method::POST, "/Patient", Some(token), Some(p), &[]).await
}

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
async fn patient_search_pages_by_keyset_with_total_and_absolute_next_links() {
    let app = spawn_app().await;
    let w = world(&app).await;
    for (i, given) in ["Ana", "Bea", "Cai"].iter().enumerate() {
        let mut p = amy("Núñez", given, Some(&format!("N-{i}")));
        p["birthDate"] = json!(format!("1990-01-0{}", i + 1));
        assert_eq!(create(&app, &w.nurse, &p).await.status, 201);
    }
    create(&app, &w.nurse, &amy("Pond", "Amy", Some("P-1"))).await;
    let first = fhir(
        &app,
        Method::GET,
        "/Patient?name=NUNEZ&_count=2",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["type"], "searchset");
    assert_eq!(first.body["total"], 3);
    assert_eq!(first.body["entry"].as_array().unwrap().len(), 2);
    let next = first.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(next.starts_with(&app.url("/fhir/r4/Patient?")), "{next}");
    let second = fhir(&app, Method::GET, &next, Some(&w.nurse), None, &[]).await;
    assert_eq!(second.body["entry"].as_array().unwrap().len(), 1);
    assert_eq!(
        second.body["entry"][0]["resource"]["name"][0]["given"][0],
        "Cai"
    );
    assert!(second.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["relation"] != "next"));

    let count = |path: &'static str| {
        let app = &app;
        let token = w.nurse.clone();
        async move {
            let a = fhir(app, Method::GET, path, Some(&token), None, &[]).await;
            assert_eq!(a.status, 200, "{path}: {}", a.body);
            a.body["total"].as_i64().unwrap()
        }
    };
    assert_eq!(count("/Patient?family=nun").await, 3);
    assert_eq!(count("/Patient?given=be").await, 1);
    assert_eq!(count("/Patient?family=nun&given=ca").await, 1);
    assert_eq!(count("/Patient?birthdate=1990-01-02").await, 1);
    assert_eq!(count("/Patient?birthdate=eq1990-01-02").await, 1);
    assert_eq!(count("/Patient?identifier=urn:careq:mrn|N-0").await, 1);
    assert_eq!(count("/Patient?identifier=N-1").await, 1);
    assert_eq!(count("/Patient?identifier=urn:other|N-1").await, 0);
    assert_eq!(count("/Patient?phone=%2B43%20664%201234567").await, 4);
    assert_eq!(count("/Patient?telecom=phone|%2B436641234567").await, 4);
    assert_eq!(count("/Patient").await, 4);

    let unknown = fhir(
        &app,
        Method::GET,
        "/Patient?name=pond&colour=red",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    let body = unknown.assert_outcome(400);
    assert!(body.to_string().contains("colour"));
    let lenient = fhir(
        &app,
        Method::GET,
        "/Patient?name=pond&colour=red",
        Some(&w.nurse),
        None,
        &[("prefer", "handling=lenient")],
    )
    .await;
    assert_eq!(lenient.status, 200);
    assert_eq!(lenient.body["total"], 1);
    assert_eq!(
        lenient.body["link"][0]["url"],
        app.url("/fhir/r4/Patient?name=pond")
    );
    let id = lenient.body["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_id = fhir(
        &app,
        Method::GET,
        &format!("/Patient?_id={id}"),
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(by_id.body["total"], 1);
    fhir(
        &app,
        Method::GET,
        "/Patient?_count=0",
        Some(&w.nurse),
        None,
        &[],
    )
    .await
    .assert_outcome(400);
    fhir(
        &app,
        Method::GET,
        "/Patient?birthdate=gt1990-01-01",
        Some(&w.nurse),
        None,
        &[],
    )
    .await
    .assert_outcome(400);
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

#[tokio::test]
async fn concurrent_fhir_creates_and_a_reset_client_leave_the_server_reading_and_writing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = app.client.clone();
        let url = app.url("/fhir/r4/Patient");
        let token = w.nurse.clone();
        // Half ask for the same MRN conditionally: exactly one of them may create it.
        let (mrn, cond) = if i % 2 == 0 {
            ("SAME".to_string(), Some("identifier=SAME"))
        } else {
            (format!("C-{i}"), None)
        };
        tasks.push(tokio::spawn(async move {
            let mut req = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", FHIR_JSON)
                .json(&amy(&format!("Crowd{i}"), "Ann", Some(&mrn)));
            if let Some(c) = cond {
                req = req.header("if-none-exist", c);
            }
            req.send().await.unwrap().status().as_u16()
        }));
    }
    // A client that sends half a create and resets the connection.
    let mut s = app.connect().await;
    let body = serde_json::to_vec(&amy("Reset", "R", None)).unwrap();
    let head = format!(
        "POST /fhir/r4/Patient HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: {FHIR_JSON}\r\ncontent-length: {}\r\n\r\n",
        w.nurse,
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..body.len() / 2]).await.unwrap();
    #[allow(deprecated)] // the blocking drop is what a reset needs here, and it is instant
    let _ = s.set_linger(Some(std::time::Duration::ZERO));
    drop(s);
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!(
        statuses.iter().all(|s| [200, 201, 409].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(created, 7, "{statuses:?}");
    let same = fhir(
        &app,
        Method::GET,
        "/Patient?identifier=SAME",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(same.body["total"], 1);
    let reset = fhir(
        &app,
        Method::GET,
        "/Patient?family=reset",
        Some(&w.nurse),
        None,
        &[],
    )
    .await;
    assert_eq!(reset.body["total"], 0);
    let after = create(&app, &w.nurse, &amy("After", "A", None)).await;
    assert_eq!(after.status, 201);
    app.assert_no_transaction_left_open().await;
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_as_an_outcome_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.rate_per_second = 1;
        c.rate_burst = 3;
    })
    .await;
    let token = app.admin_token().await;
    for _ in 0..3 {
        let ok = fhir(&app, Method::GET, "/Patient", Some(&token), None, &[]).await;
        assert_eq!(ok.status, 200);
    }
    let limited = fhir(&app, Method::GET, "/Patient", Some(&token), None, &[]).await;
    limited.assert_outcome(429);
    assert!(limited.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(limited.header("ratelimit-remaining"), "0");
    assert_eq!(limited.body["issue"][0]["code"], "throttled");
}
