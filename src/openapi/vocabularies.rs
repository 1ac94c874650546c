//! Schema facts known only at run time or derived from other schemas, so the spec states what
//! careq accepts rather than a looser shape: countries as the phone-number metadata knows them,
//! and each merge patch as the fields it may touch.
use serde_json::{json, Map, Value};

/// The zone names `TimeZoneName::parse` accepts, as the database spells them.
#[cfg(test)]
fn zone_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A pattern matching, in any ASCII case, exactly the two-letter codes `Country::parse` accepts.
fn country_pattern() -> String {
    let mut groups = Vec::new();
    for first in b'A'..=b'Z' {
        let seconds: String = (b'A'..=b'Z')
            .filter(|second| {
                let code = String::from_utf8(vec![first, *second]).expect("ASCII");
                crate::clinics::domain::Country::parse(&code).is_ok()
            })
            .map(|b| format!("{}{}", b as char, b.to_ascii_lowercase() as char))
            .collect();
        if !seconds.is_empty() {
            let f = first as char;
            groups.push(format!("[{f}{}][{seconds}]", f.to_ascii_lowercase()));
        }
    }
    format!("^(?:{})$", groups.join("|"))
}

fn schema_mut<'a>(spec: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    spec["components"]["schemas"][name]
        .as_object_mut()
        .unwrap_or_else(|| panic!("the spec has no schema {name}"))
}

/// Countries get the pattern of the codes careq knows. Time zones keep their shape's pattern:
/// an `enum` of the ~600 zone names would state the same rule, but the coverage phase of a
/// conformance run would create a clinic per name, for nothing a few zones do not show.
fn tighten(spec: &mut Value, schema: &str, countries: &str) {
    let properties = schema_mut(spec, schema)
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .expect("properties");
    if let Some(tz) = properties
        .get_mut("timezone")
        .and_then(Value::as_object_mut)
    {
        tz.insert(
            "description".into(),
            json!(
                "An IANA time zone name this server's zone database knows, e.g. `Europe/Vienna` \
                   (any other is 422); any ASCII case is accepted and stored as the database \
                   spells it."
            ),
        );
    }
    if let Some(country) = properties.get_mut("country").and_then(Value::as_object_mut) {
        country.insert("pattern".into(), json!(countries));
    }
}

/// The schema of an RFC 7396 merge patch of `of`: any of its members, none required, `null`
/// only where `of` allows it (removing an optional member); nothing else.
fn merge_patch_of(spec: &mut Value, of: &str, name: &str, description: &str) {
    let mut patch = schema_mut(spec, of).clone();
    patch.remove("required");
    patch.insert("description".into(), json!(description));
    spec["components"]["schemas"][name] = Value::Object(patch);
}

/// Members of a merge patch where `null` does not remove anything (the field cannot be empty):
/// careq takes `null` there as "not given", and the schema says so rather than leave a reader
/// to guess what a nullable member clears.
const NULL_MEANS_UNCHANGED: &[(&str, &[&str])] = &[
    ("UserPatch", &["role", "clinic_ids", "active", "password"]),
    ("ClinicPatch", &["name", "timezone", "ticket_prefix"]),
    (
        "AppointmentPatch",
        &["start", "duration_minutes", "reason", "status"],
    ),
];

fn note_null_meanings(spec: &mut Value) {
    for (schema, members) in NULL_MEANS_UNCHANGED {
        let properties = schema_mut(spec, schema)
            .get_mut("properties")
            .and_then(Value::as_object_mut)
            .expect("properties");
        for member in *members {
            let p = properties
                .get_mut(*member)
                .and_then(Value::as_object_mut)
                .unwrap_or_else(|| panic!("{schema} has no {member}"));
            let before = p
                .get("description")
                .and_then(Value::as_str)
                .map(|d| format!("{d} "))
                .unwrap_or_default();
            p.insert(
                "description".into(),
                json!(format!(
                    "{before}Absent or `null`: left as it is (it cannot be removed)."
                )),
            );
        }
    }
}

/// Request bodies take an empty string for an optional member as "not given" (what an HTML
/// form sends for a blank field): each optional string member with a shape to meet (a pattern,
/// a length, a format) says so with an `anyOf` that admits `""` beside its own schema.
fn admit_empty_optional_strings(spec: &mut Value) {
    let mut bodies = std::collections::BTreeSet::new();
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        if path.starts_with("/fhir/") {
            continue;
        }
        for op in item.as_object().into_iter().flatten().map(|(_, op)| op) {
            for c in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                if let Some(name) = c.1["schema"]["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    bodies.insert(name.to_string());
                }
            }
        }
    }
    for name in bodies {
        let schema = schema_mut(spec, &name);
        let required: Vec<String> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (member, p) in properties.iter_mut() {
            let is_string = match &p["type"] {
                Value::String(t) => t == "string",
                Value::Array(ts) => ts.iter().any(|t| t == "string"),
                _ => false,
            };
            let shaped = ["pattern", "minLength", "format", "enum"]
                .iter()
                .any(|k| p.get(k).is_some());
            if required.contains(member) || !is_string || !shaped {
                continue;
            }
            let mut own = p.as_object().cloned().unwrap_or_default();
            let description = own.remove("description");
            let mut wrapped = serde_json::Map::new();
            wrapped.insert(
                "anyOf".into(),
                json!([own, {"type": "string", "maxLength": 0}]),
            );
            let note = "An empty string means not given.";
            wrapped.insert(
                "description".into(),
                json!(match description.as_ref().and_then(Value::as_str) {
                    Some(d) => format!("{d} {note}"),
                    None => note.to_string(),
                }),
            );
            *p = Value::Object(wrapped);
        }
    }
}

pub fn apply(spec: &mut Value) {
    note_null_meanings(spec);
    let countries = country_pattern();
    for schema in ["NewClinic", "ClinicPatch"] {
        tighten(spec, schema, &countries);
    }
    merge_patch_of(
        spec,
        "PatientFields",
        "PatientPatch",
        "A JSON merge patch (RFC 7396) of the patient's fields: members sent replace, `null` \
         removes an optional one; the result must still be a valid patient.",
    );
    let body = &mut spec["paths"]["/v1/patients/{id}"]["patch"]["requestBody"]["content"]
        ["application/merge-patch+json"]["schema"];
    assert!(
        body.is_object(),
        "PATCH /v1/patients/{{id}} takes a merge patch"
    );
    *body = json!({"$ref": "#/components/schemas/PatientPatch"});
    admit_empty_optional_strings(spec);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_country_pattern_is_exactly_what_the_clinic_rules_accept() {
        let re = regex::Regex::new(&country_pattern()).unwrap();
        for code in ["AT", "at", "gB", "US"] {
            assert!(re.is_match(code), "{code}");
        }
        for code in ["XX", "AA", "A", "AUT", " AT"] {
            assert!(!re.is_match(code), "{code}");
        }
    }

    #[test]
    fn every_listed_zone_is_accepted_as_spelled() {
        let zones = zone_names();
        assert!(zones.iter().any(|z| z == "Europe/Vienna"));
        for zone in zones {
            let parsed = crate::clinics::domain::TimeZoneName::parse(&zone).unwrap();
            assert_eq!(parsed.as_str(), zone);
        }
    }
}
