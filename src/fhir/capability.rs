//! The CapabilityStatement: exactly what `/fhir/r4` implements.
use serde_json::{json, Value};

use super::{FHIR_JSON, MRN_SYSTEM};

fn param(name: &str, kind: &str, doc: &str) -> Value {
    json!({"name": name, "type": kind, "documentation": doc})
}

pub fn statement(base: &str, date: &str) -> Value {
    let paging = [
        param("_count", "number", "Matches per page, 1–200 (default 50)"),
        param(
            "_cursor",
            "string",
            "careq's keyset position, from a `next` link",
        ),
    ];
    let mut patient_params = vec![
        param("_id", "token", "The patient's id"),
        param(
            "name",
            "string",
            "Prefix of the given or family name; case and accents ignored",
        ),
        param(
            "family",
            "string",
            "Prefix of the family name; case and accents ignored",
        ),
        param(
            "given",
            "string",
            "Prefix of the given name; case and accents ignored",
        ),
        param(
            "birthdate",
            "date",
            "The date of birth (YYYY-MM-DD, prefix eq only)",
        ),
        param(
            "identifier",
            "token",
            &format!("The MRN, as {MRN_SYSTEM}|VALUE or VALUE"),
        ),
        param(
            "telecom",
            "token",
            "A phone number (phone|NUMBER or NUMBER), compared in E.164",
        ),
        param("phone", "token", "A phone number, compared in E.164"),
    ];
    patient_params.extend(paging.iter().cloned());
    let mut appointment_params = vec![
        param("patient", "reference", "Patient/ID or ID"),
        param(
            "practitioner",
            "reference",
            "Practitioner/ID or ID (the clinician)",
        ),
        param(
            "date",
            "date",
            "The start day (YYYY-MM-DD) with prefix eq, ge or le; may be given twice",
        ),
        param(
            "status",
            "token",
            "booked, arrived (checked in), fulfilled, cancelled, noshow",
        ),
    ];
    appointment_params.extend(paging.iter().cloned());
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "careq", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "careq FHIR R4 interface", "url": base},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Unknown search parameters answer 400 unless the request sends `Prefer: handling=lenient`, which ignores them (the Bundle's self link shows the parameters used).",
            "security": {"description": "Bearer tokens from POST /v1/auth/token; roles and clinic scoping as in the native API"},
            "resource": [
                {
                    "type": "Patient",
                    "versioning": "versioned-update",
                    "readHistory": false,
                    "updateCreate": false,
                    "conditionalCreate": true,
                    "conditionalUpdate": false,
                    "conditionalDelete": "not-supported",
                    "interaction": [
                        {"code": "read"}, {"code": "vread"}, {"code": "search-type"},
                        {"code": "create"}, {"code": "update"}
                    ],
                    "searchParam": patient_params,
                },
                {
                    "type": "Appointment",
                    "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": appointment_params,
                },
                {
                    "type": "Practitioner",
                    "interaction": [{"code": "read"}],
                }
            ]
        }]
    })
}
