//! careq's patient ↔ FHIR R4 `Patient`. Height, weight and BMI are observations in FHIR, not
//! elements of `Patient`: they are not shown here, and a FHIR update keeps them as they are.
use serde_json::{json, Map, Value};

use super::{fhir_id, meta, native_id, MRN_SYSTEM};
use crate::error::{ApiError, FieldError};
use crate::patients::domain::{NewPatient, Patient, PatientFields, Sex};

/// Where a clinic is named: a logical reference (Organization is not served).
pub const CLINIC_SYSTEM: &str = "urn:careq:clinic";

/// The FHIR form of a live patient.
pub fn to_fhir(p: &Patient) -> Value {
    let mut r = json!({
        "resourceType": "Patient",
        "id": fhir_id(&p.id),
        "meta": meta(p.version, &p.updated_at),
        "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": p.mrn}],
        "active": true,
        "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
        "gender": p.sex.as_str(),
        "birthDate": p.date_of_birth,
        "managingOrganization": {"identifier": {"system": CLINIC_SYSTEM, "value": p.clinic_id}},
    });
    let mut telecom = Vec::new();
    if let Some(phone) = &p.phone {
        telecom.push(json!({"system": "phone", "value": phone}));
    }
    if let Some(email) = &p.email {
        telecom.push(json!({"system": "email", "value": email}));
    }
    if !telecom.is_empty() {
        r["telecom"] = Value::Array(telecom);
    }
    if let Some(address) = &p.address {
        r["address"] = json!([{"text": address}]);
    }
    r
}

/// The old record of a merge: inactive, and linked to the survivor (`replaced-by`).
pub fn replaced(p: &Patient, survivor: &str) -> Value {
    let mut r = to_fhir(p);
    r["active"] = json!(false);
    r["link"] = json!([{"other": {"reference": format!("Patient/{}", fhir_id(survivor))}, "type": "replaced-by"}]);
    r
}

/// Elements a client may send; others are refused so nothing is silently dropped.
const ELEMENTS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "text",
    "identifier",
    "active",
    "name",
    "telecom",
    "gender",
    "birthDate",
    "address",
    "managingOrganization",
];

/// The careq fields a FHIR `Patient` carries, as the native API's field names. Errors point
/// into the FHIR document.
pub struct Parsed {
    pub fields: Map<String, Value>,
    pub clinic_id: Option<String>,
    pub id: Option<String>,
}

pub fn parse(doc: &Value) -> Result<Parsed, ApiError> {
    let Some(obj) = doc.as_object() else {
        return Err(invalid("", "a Patient resource (a JSON object)"));
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(invalid("/resourceType", "must be \"Patient\""));
    }
    if let Some(k) = obj.keys().find(|k| !ELEMENTS.contains(&k.as_str())) {
        return Err(invalid(
            &format!("/{k}"),
            "careq does not store this element",
        ));
    }
    let mut f = Map::new();
    let names = obj.get("name").and_then(Value::as_array);
    let name = names
        .and_then(|n| n.iter().find(|n| n["use"] == "official").or(n.first()))
        .cloned()
        .unwrap_or(Value::Null);
    match name["family"].as_str() {
        Some(family) => f.insert("family_name".into(), json!(family)),
        None => return Err(invalid("/name/0/family", "a family name is required")),
    };
    let given: Vec<&str> = name["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if given.is_empty() {
        return Err(invalid("/name/0/given", "a given name is required"));
    }
    f.insert("given_name".into(), json!(given.join(" ")));
    match obj.get("birthDate") {
        Some(d) => f.insert("date_of_birth".into(), d.clone()),
        None => return Err(invalid("/birthDate", "a birth date is required")),
    };
    let gender = obj
        .get("gender")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    if Sex::parse(gender).is_none() {
        return Err(invalid("/gender", "male, female, other or unknown"));
    }
    f.insert("sex".into(), json!(gender));
    let identifiers = obj.get("identifier").and_then(Value::as_array);
    if let Some(mrn) = identifiers
        .into_iter()
        .flatten()
        .find(|i| i["system"] == MRN_SYSTEM)
    {
        f.insert("mrn".into(), mrn["value"].clone());
    }
    for t in obj
        .get("telecom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = match t["system"].as_str() {
            Some("phone") => "phone",
            Some("email") => "email",
            _ => return Err(invalid("/telecom", "careq stores one phone and one email")),
        };
        if f.insert(key.into(), t["value"].clone()).is_some() {
            return Err(invalid("/telecom", "careq stores one phone and one email"));
        }
    }
    if let Some(a) = obj.get("address").and_then(Value::as_array) {
        match a.as_slice() {
            [] => {}
            [one] => {
                let text = one["text"].as_str().map(str::to_string).or_else(|| {
                    let lines: Vec<&str> = one["line"]
                        .as_array()
                        .map(|l| l.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let mut parts = lines;
                    for k in ["city", "postalCode", "country"] {
                        if let Some(v) = one[k].as_str() {
                            parts.push(v);
                        }
                    }
                    (!parts.is_empty()).then(|| parts.join(", "))
                });
                if let Some(t) = text {
                    f.insert("address".into(), json!(t));
                }
            }
            _ => return Err(invalid("/address", "careq stores one address")),
        }
    }
    let org = obj.get("managingOrganization");
    let clinic_id = org
        .and_then(|o| o["identifier"]["value"].as_str())
        .or_else(|| {
            org.and_then(|o| o["reference"].as_str())
                .and_then(|r| r.strip_prefix("Organization/"))
        })
        .map(str::to_string);
    let id = obj.get("id").and_then(Value::as_str).map(native_id);
    Ok(Parsed {
        fields: f,
        clinic_id,
        id,
    })
}

fn invalid(pointer: &str, message: &str) -> ApiError {
    ApiError::invalid(vec![FieldError::new(pointer, message)])
}

/// Native field errors, pointed at the FHIR elements they came from.
pub fn repoint(err: ApiError) -> ApiError {
    match err {
        ApiError::Unprocessable { detail, errors } => ApiError::Unprocessable {
            detail,
            errors: errors
                .into_iter()
                .map(|e| {
                    let at = match e.pointer.as_str() {
                        "/given_name" => "/name/0/given",
                        "/family_name" => "/name/0/family",
                        "/date_of_birth" => "/birthDate",
                        "/sex" => "/gender",
                        "/mrn" => "/identifier",
                        "/phone" | "/email" => "/telecom",
                        "/address" => "/address",
                        "/clinic_id" => "/managingOrganization",
                        other => other,
                    };
                    FieldError::new(at, e.message)
                })
                .collect(),
        },
        other => other,
    }
}

/// A new patient from a FHIR `Patient`; the clinic is the one named, or the caller's only one.
pub fn new_patient(doc: &Value, caller_clinics: &[String]) -> Result<NewPatient, ApiError> {
    let p = parse(doc)?;
    let clinic = match (p.clinic_id, caller_clinics) {
        (Some(c), _) => c,
        (None, [one]) => one.clone(),
        (None, _) => {
            return Err(invalid(
                "/managingOrganization",
                "name the clinic (identifier system urn:careq:clinic)",
            ))
        }
    };
    let mut f = p.fields;
    f.insert("clinic_id".into(), json!(clinic));
    crate::http::extract::parse_value(Value::Object(f)).map_err(repoint)
}

/// The replacement fields of a FHIR update. What FHIR's `Patient` has no element for (height,
/// weight) stays as stored; the clinic cannot change.
pub fn replacement(doc: &Value, id: &str, current: &Patient) -> Result<PatientFields, ApiError> {
    let p = parse(doc)?;
    if p.id.as_deref() != Some(id) {
        return Err(ApiError::BadRequest {
            detail: "the resource's id must be the id in the URL (FHIR update)".into(),
            errors: vec![FieldError::new("/id", "must equal the id in the URL")],
        });
    }
    let mut f = p.fields;
    if let Some(h) = current.height_cm {
        f.insert("height_cm".into(), json!(h));
    }
    if let Some(w) = current.weight_kg {
        f.insert("weight_kg".into(), json!(w));
    }
    crate::http::extract::parse_value(Value::Object(f)).map_err(repoint)
}
