//! Walks every request body type the API documents: each broken member of each body is reported
//! in one 422, at its own pointer, in plain words (no serde jargon).
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::extract::parse_value;

type Check = fn(Value) -> Result<(), ApiError>;

fn check<T: serde::de::DeserializeOwned + crate::http::extract::BodyRules>(
    v: Value,
) -> Result<(), ApiError> {
    parse_value::<T>(v).map(|_| ())
}

/// A patient PATCH is read as an object, merged into the stored fields, then read as those.
fn patient_patch(v: Value) -> Result<(), ApiError> {
    let patch = parse_value::<serde_json::Map<String, Value>>(v)?;
    let mut doc = json!({"given_name": "Amy", "family_name": "Pond",
        "date_of_birth": "1989-04-01", "sex": "female"});
    for (k, v) in patch {
        if v.is_null() {
            doc.as_object_mut().unwrap().remove(&k);
        } else {
            doc[k] = v;
        }
    }
    check::<crate::patients::domain::PatientFields>(doc)
}

/// Every request body schema, by its name in the OpenAPI document.
fn bodies() -> Vec<(&'static str, Check)> {
    use crate::{appointments, auth, clinics, exports, ops, patients, queue, users};
    vec![
        ("NewPatient", check::<patients::domain::NewPatient>),
        ("PatientFields", check::<patients::domain::PatientFields>),
        ("PatientPatch", patient_patch),
        ("BatchRequest", check::<patients::batch::BatchRequest>),
        ("MergeRequest", check::<patients::routes::MergeRequest>),
        ("SealRequest", check::<patients::routes::SealRequest>),
        (
            "MaintenanceState",
            check::<ops::maintenance::MaintenanceState>,
        ),
        ("NewUser", check::<users::domain::NewUser>),
        ("UserPatch", check::<users::domain::UserPatch>),
        ("PasswordChange", check::<users::routes::PasswordChange>),
        ("Credentials", check::<auth::routes::Credentials>),
        ("NewExport", check::<exports::domain::NewExport>),
        ("IssueRequest", check::<queue::routes::IssueRequest>),
        ("CallRequest", check::<queue::routes::CallRequest>),
        ("TicketPatch", check::<queue::routes::TicketPatch>),
        ("NotifyRequest", check::<queue::notify::NotifyRequest>),
        ("NewClinic", check::<clinics::domain::NewClinic>),
        ("ClinicPatch", check::<clinics::domain::ClinicPatch>),
        (
            "NewAppointment",
            check::<appointments::domain::NewAppointment>,
        ),
        (
            "AppointmentPatch",
            check::<appointments::domain::AppointmentPatch>,
        ),
    ]
}

const JARGON: &[&str] = &[
    "expected",
    "invalid type",
    "invalid value",
    "unknown variant",
    "f64",
    "u32",
    "i64",
    "struct",
    "`",
];

fn errors(r: Result<(), ApiError>, what: &str) -> Vec<(String, String)> {
    match r {
        Err(ApiError::Unprocessable { errors, .. }) => {
            for e in &errors {
                for j in JARGON {
                    let m = &e.message;
                    assert!(!m.contains(j), "{what}: {}: {m:?} has {j:?}", e.pointer);
                }
            }
            errors.into_iter().map(|e| (e.pointer, e.message)).collect()
        }
        other => panic!("{what}: not a 422: {other:?}"),
    }
}

#[test]
fn every_request_body_type_reports_every_broken_member_at_once_in_plain_words() {
    let spec = crate::openapi::spec();
    let schemas = &spec["components"]["schemas"];
    let table = bodies();
    // The table covers every body the spec documents by reference.
    let mut documented = Vec::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for media in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                if let Some(r) = media.1["schema"]["$ref"].as_str() {
                    documented.push(r.rsplit('/').next().unwrap().to_string());
                }
            }
        }
    }
    let unwalked: Vec<&String> = documented
        .iter()
        .filter(|name| !table.iter().any(|(n, _)| n == name))
        .collect();
    assert!(unwalked.is_empty(), "not walked: {unwalked:?}");
    for (name, check) in table {
        let schema = &schemas[name];
        let props = schema["properties"].as_object().expect(name);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Every member of a type no member has: one error each, all in one answer.
        let mut body = serde_json::Map::new();
        for p in props.keys() {
            body.insert(p.clone(), json!([[true]]));
        }
        let got = errors(check(Value::Object(body)), name);
        for p in props.keys() {
            let at = format!("/{p}");
            assert!(
                got.iter()
                    .any(|(ptr, _)| ptr == &at || ptr.starts_with(&format!("{at}/"))),
                "{name}: no error at {at}: {got:?}"
            );
        }
        // Nothing sent: every required member is named.
        if !required.is_empty() {
            let got = errors(check(json!({})), name);
            for r in &required {
                let at = format!("/{r}");
                assert!(
                    got.contains(&(at.clone(), "is required".to_string())),
                    "{name}: {at} not reported missing: {got:?}"
                );
            }
        }
        // Not an object at all.
        let got = errors(check(json!(7)), name);
        assert_eq!(
            got,
            [(String::new(), "must be an object".to_string())],
            "{name}"
        );
        let got = errors(check(json!({"no_such_member": 1, "x": [[true]]})), name);
        assert!(
            got.iter().all(|(ptr, _)| ptr.starts_with('/')),
            "{name}: {got:?}"
        );
    }
}
