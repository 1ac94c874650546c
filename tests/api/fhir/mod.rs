//! `/fhir/r4`: every interaction and status over real HTTP, one file per subject. The helper
//! here is the only way the tests talk FHIR: with `CAREQ_FHIR_CAPTURE_DIR` set, every FHIR body
//! careq answers is written there for `scripts/fhir_validate.py`.
mod limits;
mod patients;
mod schedule;
mod search;

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;

pub(super) const FHIR_JSON: &str = "application/fhir+json";
static CAPTURED: AtomicUsize = AtomicUsize::new(0);

pub(super) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The answer is an OperationOutcome with `status`, as FHIR media type.
    pub fn assert_outcome(&self, status: u16) -> &Value {
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
pub(super) async fn fhir(
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
pub(super) fn native(id: &str) -> String {
    id.replacen('-', "_", 1)
}

pub(super) fn amy(family: &str, given: &str, mrn: Option<&str>) -> Value {
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

pub(super) struct World {
    pub admin: String,
    pub clinic: String,
    pub nurse: String,
    pub doctor_id: String,
    pub doctor: String,
}

pub(super) async fn world(app: &TestApp) -> World {
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

pub(super) async fn create(app: &TestApp, token: &str, p: &Value) -> Answer {
    fhir(app, Method::POST, "/Patient", Some(token), Some(p), &[]).await
}
