//! OpenAPI links: how a client (or schemathesis's stateful phase) gets from a response to the
//! operations that take what it carries. Two kinds:
//! - a response that *is* a resource (its body is `Patient`, `Ticket`, …) leads to every
//!   operation on that resource's path and below it, with the id from the body and, for
//!   conditional writes, `If-Match` from the response's `ETag`;
//! - a response whose body holds another resource's id leads where that id is taken (a clinic's
//!   id into a new patient's body, a patient's into an appointment, …): `FOREIGN_KEYS` lists them.
use serde_json::{json, Value};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{OpenApi, RefOr};

use super::operation_id;

/// Each resource schema and the path of one such resource.
const RESOURCES: &[(&str, &str)] = &[
    ("Clinic", "/v1/clinics/{id}"),
    ("Patient", "/v1/patients/{id}"),
    ("Appointment", "/v1/appointments/{id}"),
    ("Ticket", "/v1/tickets/{id}"),
    ("User", "/v1/users/{id}"),
    ("Job", "/v1/jobs/{id}"),
];

/// Operations below a resource that a fresh resource does not serve yet, reached instead by the
/// link that makes them meaningful: now-serving is 404 until someone is called (a link from
/// call-next leads there).
const NOT_FROM_THE_RESOURCE: &[&str] = &["/v1/clinics/{id}/queue/now-serving"];

/// Responses that are a resource but lead nowhere: `/v1/me` is the caller's own account, which
/// the user operations refuse to delete, deactivate or demote (a client walking the links
/// would only meet those refusals).
const NOT_A_SOURCE: &[&str] = &["/v1/me"];

/// A link from the `status` response of `from` (method, path) to `to`.
struct ForeignKey {
    from: (&'static str, &'static str, &'static str),
    name: &'static str,
    to: (&'static str, &'static str),
    parameters: &'static [(&'static str, &'static str)],
    body: Option<fn() -> Value>,
}

/// Where an id in a response is taken by another operation.
const FOREIGN_KEYS: &[ForeignKey] = &[
    // An export's file has the job's id (303 from the job leads there once it has succeeded).
    ForeignKey {
        from: ("post", "/v1/exports", "202"),
        name: "DownloadExport",
        to: ("get", "/v1/exports/{id}/file"),
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
    ForeignKey {
        from: ("post", "/v1/clinics", "201"),
        name: "RegisterPatient",
        to: ("post", "/v1/patients"),
        parameters: &[],
        body: Some(|| json!({"clinic_id": "$response.body#/id"})),
    },
    ForeignKey {
        from: ("post", "/v1/clinics", "201"),
        name: "AddStaff",
        to: ("post", "/v1/users"),
        parameters: &[],
        body: Some(|| json!({"clinic_ids": ["$response.body#/id"]})),
    },
    ForeignKey {
        from: ("post", "/v1/clinics", "201"),
        name: "SearchPatients",
        to: ("get", "/v1/patients"),
        parameters: &[("query.clinic_id", "$response.body#/id")],
        body: None,
    },
    ForeignKey {
        from: ("post", "/v1/clinics", "201"),
        name: "ListAppointments",
        to: ("get", "/v1/appointments"),
        parameters: &[("query.clinic_id", "$response.body#/id")],
        body: None,
    },
    ForeignKey {
        from: ("post", "/v1/patients", "201"),
        name: "BookAppointment",
        to: ("post", "/v1/appointments"),
        parameters: &[],
        body: Some(
            || json!({"clinic_id": "$response.body#/clinic_id", "patient_id": "$response.body#/id"}),
        ),
    },
    ForeignKey {
        from: ("post", "/v1/patients", "201"),
        name: "IssueTicket",
        to: ("post", "/v1/clinics/{id}/queue/tickets"),
        parameters: &[("path.id", "$response.body#/clinic_id")],
        body: Some(|| json!({"patient_id": "$response.body#/id"})),
    },
    ForeignKey {
        from: ("post", "/v1/patients", "201"),
        name: "LookUpByPhone",
        to: ("get", "/v1/patients/lookup"),
        parameters: &[("query.phone", "$response.body#/phone")],
        body: None,
    },
    ForeignKey {
        from: ("post", "/v1/patients", "201"),
        name: "SearchTheClinic",
        to: ("get", "/v1/patients"),
        parameters: &[("query.clinic_id", "$response.body#/clinic_id")],
        body: None,
    },
    ForeignKey {
        from: ("post", "/v1/patients", "201"),
        name: "ListTheirAppointments",
        to: ("get", "/v1/appointments"),
        parameters: &[("query.patient_id", "$response.body#/id")],
        body: None,
    },
    // Two patients found in one search: the first merged into the second.
    ForeignKey {
        from: ("get", "/v1/patients", "200"),
        name: "MergeDuplicate",
        to: ("post", "/v1/patients/{id}/merge"),
        parameters: &[("path.id", "$response.body#/items/0/id")],
        body: Some(|| json!({"into": "$response.body#/items/1/id"})),
    },
    ForeignKey {
        from: ("post", "/v1/appointments", "201"),
        name: "BookFollowUp",
        to: ("post", "/v1/appointments"),
        parameters: &[],
        body: Some(|| {
            json!({
                "clinic_id": "$response.body#/clinic_id",
                "patient_id": "$response.body#/patient_id",
                "clinician_id": "$response.body#/clinician_id",
            })
        }),
    },
    ForeignKey {
        from: ("post", "/v1/users", "201"),
        name: "BookWithClinician",
        to: ("post", "/v1/appointments"),
        parameters: &[],
        body: Some(|| {
            json!({
                "clinic_id": "$response.body#/clinic_ids/0",
                "clinician_id": "$response.body#/id",
            })
        }),
    },
    ForeignKey {
        from: ("post", "/v1/clinics/{id}/queue/tickets", "201"),
        name: "CallNext",
        to: ("post", "/v1/clinics/{id}/queue/call-next"),
        parameters: &[("path.id", "$response.body#/clinic_id")],
        body: None,
    },
    ForeignKey {
        from: ("post", "/v1/appointments/{id}/check-in", "201"),
        name: "CallNext",
        to: ("post", "/v1/clinics/{id}/queue/call-next"),
        parameters: &[("path.id", "$response.body#/clinic_id")],
        body: None,
    },
    ForeignKey {
        from: ("post", "/v1/clinics/{id}/queue/call-next", "200"),
        name: "NowServing",
        to: ("get", "/v1/clinics/{id}/queue/now-serving"),
        parameters: &[("path.id", "$response.body#/clinic_id")],
        body: None,
    },
];

fn operations(item: &PathItem) -> [(&'static str, Option<&Operation>); 5] {
    [
        ("get", item.get.as_ref()),
        ("put", item.put.as_ref()),
        ("post", item.post.as_ref()),
        ("patch", item.patch.as_ref()),
        ("delete", item.delete.as_ref()),
    ]
}

fn operation_mut<'a>(api: &'a mut OpenApi, method: &str, path: &str) -> Option<&'a mut Operation> {
    let item = api.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "put" => item.put.as_mut(),
        "post" => item.post.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }
}

/// The resource schema a 2xx response's JSON body is, if it is one.
fn resource_of(response: &utoipa::openapi::Response) -> Option<&'static str> {
    let content = response.content.get("application/json")?;
    let RefOr::Ref(r) = content.schema.as_ref()? else {
        return None;
    };
    let name = r.ref_location.rsplit('/').next()?;
    RESOURCES.iter().map(|(n, _)| *n).find(|n| *n == name)
}

/// A link's name from its target: `get /v1/patients/{id}/access-log` → `GetAccessLog`.
fn link_name(method: &str, path: &str, item: &str) -> String {
    let rest = path.strip_prefix(item).unwrap_or(path);
    let words = std::iter::once(method)
        .chain(rest.split(['/', '-']).filter(|w| !w.is_empty()))
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<String>();
    words
}

/// Adds both kinds of links to the spec.
pub fn add(api: &mut OpenApi) {
    let paths: Vec<String> = api.paths.paths.keys().cloned().collect();
    // (source method, source path, status, name, link)
    let mut found: Vec<(String, String, String, String, utoipa::openapi::link::Link)> = Vec::new();
    for (path, item) in &api.paths.paths {
        if NOT_A_SOURCE.contains(&path.as_str()) {
            continue;
        }
        for (method, op) in operations(item) {
            let Some(op) = op else { continue };
            for (status, response) in &op.responses.responses {
                let RefOr::T(response) = response else {
                    continue;
                };
                if !status.starts_with('2') {
                    continue;
                }
                let Some(schema) = resource_of(response) else {
                    continue;
                };
                let item_path = RESOURCES
                    .iter()
                    .find(|(n, _)| *n == schema)
                    .map(|(_, p)| *p)
                    .expect("a listed resource");
                let has_etag = response.headers.contains_key("ETag");
                for target in paths
                    .iter()
                    .filter(|p| *p == item_path || p.starts_with(&format!("{item_path}/")))
                    .filter(|p| !NOT_FROM_THE_RESOURCE.contains(&p.as_str()))
                {
                    for (to_method, to_op) in operations(&api.paths.paths[target]) {
                        // Reading again what was just read teaches nothing.
                        if to_op.is_none()
                            || (method == "get" && to_method == "get" && target == path)
                        {
                            continue;
                        }
                        let mut link = LinkBuilder::new()
                            .operation_id(operation_id(to_method, target))
                            .parameter("path.id", "$response.body#/id");
                        if matches!(to_method, "put" | "patch") {
                            if !has_etag {
                                continue;
                            }
                            link = link.parameter("header.If-Match", "$response.header.ETag");
                        }
                        found.push((
                            method.to_string(),
                            path.clone(),
                            status.clone(),
                            link_name(to_method, target, item_path),
                            link.build(),
                        ));
                    }
                }
            }
        }
    }
    for fk in FOREIGN_KEYS {
        let mut link = LinkBuilder::new().operation_id(operation_id(fk.to.0, fk.to.1));
        for (name, expression) in fk.parameters {
            link = link.parameter(*name, *expression);
        }
        if let Some(body) = fk.body {
            link = link.request_body(Some(body()));
        }
        let (method, path, status) = fk.from;
        found.push((
            method.into(),
            path.into(),
            status.into(),
            fk.name.into(),
            link.build(),
        ));
    }
    for (method, path, status, name, link) in found {
        let response = operation_mut(api, &method, &path)
            .and_then(|op| op.responses.responses.get_mut(&status));
        let Some(RefOr::T(response)) = response else {
            panic!("a link from {method} {path} {status}, which the spec lacks");
        };
        response.links.insert(name, RefOr::T(link));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn every_operation_that_takes_a_record_id_is_reached_by_a_link() {
        let spec = crate::openapi::spec();
        let paths = spec["paths"].as_object().unwrap();
        let ids: BTreeSet<&str> = paths
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        let mut targets = BTreeSet::new();
        for op in paths.values().flat_map(|i| i.as_object().unwrap().values()) {
            for response in op["responses"].as_object().unwrap().values() {
                for link in response["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    let target = link["operationId"].as_str().unwrap();
                    assert!(
                        ids.contains(target),
                        "a link to {target}, which is not in the spec"
                    );
                    targets.insert(target.to_string());
                }
            }
        }
        // The catalogue's `{code}` is a status code anyone can type, not a record.
        // FHIR operations are left out of schemathesis (scripts/schemathesis.sh says why), so
        // no stateful walk needs to reach them.
        for (path, item) in paths
            .iter()
            .filter(|(p, _)| p.contains("{id}") && !p.starts_with("/fhir/"))
        {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(targets.contains(id), "no link leads to {method} {path}");
            }
        }
        assert!(
            targets.contains("post_v1_appointments"),
            "a patient leads to booking"
        );
        assert!(
            targets.contains("get_v1_patients_lookup"),
            "a patient leads to the lookup"
        );
    }
}
