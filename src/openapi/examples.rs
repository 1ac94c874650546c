//! A request example for every operation that takes a body (what the docs page fills in and
//! "Try" sends). Kept in one table so a test can hold the spec to it: an operation added with a
//! body and no example fails the build's tests, not a reader. (Path ids get no example: an id
//! made up for the page names no record, and a conformance run would spend its budget on 404s.)
use serde_json::{json, Value};

const CLINIC: &str = "cln_0a1b2c3d4e5f60718293";
const PATIENT: &str = "pat_0a1b2c3d4e5f60718293";
const OTHER_PATIENT: &str = "pat_93827160f5e4d3c2b1a0";
const USER: &str = "usr_0a1b2c3d4e5f60718293";

/// (method, path, example body).
fn bodies() -> Vec<(&'static str, &'static str, Value)> {
    // Not the names and birth date of the schema's own property examples (Amy Pond), which
    // generated replace bodies use: a conformance run that creates this example patient would
    // otherwise meet its own duplicate (409) in most of them.
    let patient = json!({
        "clinic_id": CLINIC, "given_name": "Clara", "family_name": "Oswald",
        "date_of_birth": "1990-11-23", "sex": "female", "phone": "+43 664 2345678",
        "email": "clara.oswald@example.org", "address": "Coal Hill School, London",
        "height_cm": 157, "weight_kg": 52.0
    });
    // Nor theirs for a replace: the run's generated replace bodies (Amy Pond, from the property
    // examples) go to the patient this example first made someone else; were it Amy Pond too,
    // every one sent to another patient would be her duplicate (409).
    let fields = json!({
        "given_name": "Rory", "family_name": "Williams", "date_of_birth": "1988-06-12",
        "sex": "male", "phone": "+43 664 3456789",
        "email": "rory.williams@example.org", "address": null, "height_cm": 180, "weight_kg": 75.5
    });
    // The same person as a FHIR Patient: the clinic is named by identifier, careq's MRN system.
    let fhir_patient = json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:careq:mrn", "value": "FHIR-0001"}],
        "name": [{"use": "official", "family": "Oswald", "given": ["Clara"]}],
        "gender": "female", "birthDate": "1990-11-23",
        "telecom": [{"system": "phone", "value": "+436642345678"}],
        "managingOrganization": {"identifier": {"system": "urn:careq:clinic", "value": CLINIC}}
    });
    vec![
        (
            "post",
            "/v1/auth/token",
            json!({"username": "admin", "password": "the admin password"}),
        ),
        (
            "post",
            "/v1/admin/maintenance",
            json!({"enabled": true, "retry_after_seconds": 120}),
        ),
        (
            "post",
            "/v1/me/password",
            json!({"current": "the password in use", "new": "correct horse battery staple"}),
        ),
        (
            "post",
            "/v1/users",
            json!({"username": "desk.anna", "password": "correct horse battery", "role": "receptionist", "clinic_ids": [CLINIC]}),
        ),
        (
            "patch",
            "/v1/users/{id}",
            json!({"role": "clinician", "clinic_ids": [CLINIC]}),
        ),
        (
            "post",
            "/v1/clinics",
            json!({"name": "Riverside Clinic", "timezone": "Europe/Vienna", "ticket_prefix": "A", "country": "AT"}),
        ),
        (
            "patch",
            "/v1/clinics/{id}",
            json!({"name": "Riverside Walk-in Clinic", "country": null}),
        ),
        ("post", "/v1/patients", patient.clone()),
        (
            "post",
            "/v1/patients/batch",
            json!({"atomic": false, "items": [patient,
            {"clinic_id": CLINIC, "given_name": "Rory", "family_name": "Williams", "date_of_birth": "1988-03-03", "sex": "male"}]}),
        ),
        ("put", "/v1/patients/{id}", fields),
        (
            "patch",
            "/v1/patients/{id}",
            json!({"phone": "+43 664 7654321", "email": null}),
        ),
        (
            "post",
            "/v1/patients/{id}/merge",
            json!({"into": OTHER_PATIENT}),
        ),
        (
            "post",
            "/v1/patients/{id}/seal",
            json!({"reason": "court order 12 C 345/26"}),
        ),
        (
            "post",
            "/v1/clinics/{id}/queue/tickets",
            json!({"patient_id": PATIENT, "priority": "urgent"}),
        ),
        (
            "post",
            "/v1/clinics/{id}/queue/call-next",
            json!({"counter": "3"}),
        ),
        ("patch", "/v1/tickets/{id}", json!({"status": "served"})),
        (
            "post",
            "/v1/tickets/{id}/notify",
            json!({"message": "Please come to counter 3."}),
        ),
        (
            "post",
            "/v1/appointments",
            json!({"clinic_id": CLINIC, "patient_id": PATIENT, "clinician_id": USER,
            "start": "2099-01-02T09:30:00Z", "duration_minutes": 30, "reason": "check-up"}),
        ),
        (
            "patch",
            "/v1/appointments/{id}",
            json!({"start": "2099-01-02T10:00:00Z", "duration_minutes": 45}),
        ),
        ("post", "/fhir/r4/Patient", fhir_patient.clone()),
        ("put", "/fhir/r4/Patient/{id}", fhir_patient),
        (
            "post",
            "/v1/exports",
            json!({"kind": "patients", "format": "csv", "clinic_id": CLINIC}),
        ),
    ]
}

pub fn apply(spec: &mut Value) {
    for (method, path, example) in bodies() {
        let content = spec["paths"][path][method]["requestBody"]["content"]
            .as_object_mut()
            .unwrap_or_else(|| panic!("{method} {path} takes no body to give an example"));
        // `examples` (a named map) rather than `example`: RapiDoc fills its body editor from
        // the map, and otherwise from a sample it builds out of the schema.
        for media in content.values_mut() {
            media["examples"] =
                json!({"typical": {"summary": "A typical request", "value": example}});
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_with_a_body_has_a_request_example() {
        let spec = crate::openapi::spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (media, c) in op["requestBody"]["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    assert!(
                        c["examples"]["typical"]["value"].is_object(),
                        "{method} {path} {media}: no example"
                    );
                }
            }
        }
    }
}
