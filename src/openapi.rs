//! The OpenAPI 3.1 document. Operations are declared next to their handlers (`#[utoipa::path]`);
//! `Conventions` then adds what every operation shares, reading descriptions and required headers
//! from the status registry, so the spec lists every status an operation can return.
use careq_status::lookup;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, ObjectBuilder, Ref, RefOr, Required, Response, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};

use crate::error::PROBLEM_JSON;

mod examples;
mod links;
mod vocabularies;

#[derive(OpenApi)]
#[openapi(
    info(title = "careq", description = "Patient records and clinic queues over HTTP that means what it says. Every error is `application/problem+json`; every status code is listed in `/v1/status-codes`."),
    paths(
        crate::catalogue::list,
        crate::catalogue::read,
        crate::ops::healthz,
        crate::ops::readyz,
        crate::ops::metrics,
        openapi_json,
        crate::auth::routes::sign_in,
        crate::auth::routes::sign_out,
        crate::users::routes::create,
        crate::users::routes::list,
        crate::users::routes::read,
        crate::users::routes::update,
        crate::users::routes::remove,
        crate::users::routes::me,
        crate::users::routes::change_password,
        crate::clinics::routes::create,
        crate::clinics::routes::list,
        crate::clinics::routes::read,
        crate::clinics::routes::update,
        crate::patients::routes::list,
        crate::patients::routes::create,
        crate::patients::routes::read,
        crate::patients::routes::replace,
        crate::patients::routes::patch,
        crate::patients::routes::remove,
        crate::patients::routes::merge,
        crate::patients::routes::lookup,
        crate::patients::routes::seal,
        crate::patients::routes::unseal,
        crate::patients::routes::access_log,
        crate::access::routes::list,
        crate::patients::batch::batch,
        crate::ops::maintenance::set_maintenance,
        crate::queue::routes::issue,
        crate::queue::routes::view,
        crate::queue::routes::call_next,
        crate::queue::routes::now_serving,
        crate::queue::routes::close,
        crate::queue::routes::reopen,
        crate::queue::routes::report,
        crate::queue::routes::read,
        crate::queue::routes::transition,
        crate::queue::routes::served,
        crate::queue::routes::no_show,
        crate::queue::routes::recall,
        crate::queue::routes::cancel,
        crate::queue::routes::rotate_board_key,
        crate::desk::kiosk::rotate_kiosk_key,
        crate::desk::kiosk::take_number,
        crate::queue::live::live,
        crate::queue::notify::notify,
        crate::appointments::routes::book,
        crate::appointments::routes::list,
        crate::appointments::routes::read,
        crate::appointments::routes::update,
        crate::appointments::routes::remove,
        crate::appointments::routes::check_in,
        crate::exports::routes::create,
        crate::exports::routes::read,
        crate::exports::routes::file,
        crate::fhir::routes::metadata,
        crate::fhir::routes::read_patient,
        crate::fhir::routes::vread_patient,
        crate::fhir::routes::search_patients,
        crate::fhir::routes::create_patient,
        crate::fhir::routes::update_patient,
        crate::fhir::schedule::read_appointment,
        crate::fhir::schedule::search_appointments,
        crate::fhir::schedule::read_practitioner,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    security(("bearer" = [])),
    modifiers(&Conventions),
    tags((name = "catalogue", description = "The status-code catalogue"),
         (name = "operations", description = "Health, readiness, metrics, the spec"),
         (name = "auth", description = "Tokens"),
         (name = "users", description = "Staff accounts (admin only)"),
         (name = "clinics", description = "Clinics"),
         (name = "patients", description = "Patient records"),
         (name = "queue", description = "The walk-in queue and tickets"),
         (name = "appointments", description = "Appointments"),
         (name = "exports", description = "Export jobs and their files"),
         (name = "fhir", description = "HL7 FHIR R4 (application/fhir+json): Patient, Appointment, Practitioner; errors are OperationOutcome")),
)]
pub struct ApiDoc;

/// The route of the document itself (`/openapi.json`).
pub fn router() -> axum::Router<crate::state::AppState> {
    axum::Router::new().route("/openapi.json", axum::routing::get(openapi_json))
}

/// This OpenAPI 3.1 document
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The spec", content_type = "application/json", body = Object,
        headers(("ETag" = String, description = "Strong validator"))),
        (status = 304, description = "Not modified")),
    security(()))]
pub async fn openapi_json(headers: http::HeaderMap) -> axum::response::Response {
    let spec = spec();
    crate::http::conditional::Representation::json(&spec)
        .cache("public, max-age=300")
        .respond(&headers)
}

/// The spec as served at `/openapi.json`.
pub fn spec() -> serde_json::Value {
    let mut json = serde_json::to_value(ApiDoc::openapi()).expect("the spec serializes");
    fix_link_keys(&mut json);
    vocabularies::apply(&mut json);
    examples::apply(&mut json);
    json
}

/// utoipa 5.5 writes a link's `operationId` and `requestBody` in snake case; OpenAPI wants
/// camelCase.
fn fix_link_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(links) = map.get_mut("links").and_then(|l| l.as_object_mut()) {
                for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
                    for (snake, camel) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(v) = link.remove(snake) {
                            link.insert(camel.into(), v);
                        }
                    }
                }
            }
            map.values_mut().for_each(fix_link_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fix_link_keys),
        _ => {}
    }
}

struct Conventions;

/// Statuses any request can meet before its handler runs (the global guards).
const EVERY_OPERATION: &[u16] = &[400, 406, 414, 417, 421, 431, 500, 503];
/// Statuses any request with a body can meet while it is read and parsed.
const WITH_BODY: &[u16] = &[408, 413, 415, 422];

/// Headers that must come with a status (CONTRACT §3), documented on every response with it.
fn required_headers(code: u16) -> &'static [(&'static str, &'static str)] {
    match code {
        201 => &[
            ("Location", "URI of the new resource"),
            ("ETag", "Strong validator of the new resource"),
        ],
        202 => &[
            ("Location", "URI of the job"),
            ("Retry-After", "Seconds until it is worth asking"),
        ],
        206 => &[
            ("Content-Range", "The range sent"),
            ("Accept-Ranges", "`bytes`"),
            ("ETag", "Strong validator"),
        ],
        301 | 302 | 303 | 307 | 308 => &[("Location", "Where to go")],
        304 => &[("ETag", "The current validator")],
        401 => &[(
            "WWW-Authenticate",
            "`Bearer realm=\"careq\"`, with `error=\"invalid_token\"` when a token was sent",
        )],
        405 => &[("Allow", "The methods the resource supports")],
        408 => &[("Connection", "`close`")],
        412 => &[("ETag", "The current validator")],
        416 => &[("Content-Range", "`bytes */LENGTH`")],
        426 => &[("Upgrade", "`websocket`")],
        429 => &[("Retry-After", "Seconds until a retry can succeed")],
        451 => &[("Link", "`rel=\"blocked-by\"`")],
        503 => &[("Retry-After", "Seconds until a retry is worth it")],
        _ => &[],
    }
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// The media type of error bodies on `path`: FHIR answers errors as `OperationOutcome`.
fn error_media(path: &str) -> (&'static str, RefOr<utoipa::openapi::schema::Schema>) {
    if path.starts_with("/fhir/") {
        (
            crate::fhir::FHIR_JSON,
            RefOr::T(utoipa::openapi::schema::Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some("An OperationOutcome"))
                    .build(),
            )),
        )
    } else {
        (PROBLEM_JSON, Ref::from_schema_name("Problem").into())
    }
}

fn complete(code: u16, existing: Option<Response>) -> Response {
    complete_at("/", code, existing)
}

fn complete_at(path: &str, code: u16, existing: Option<Response>) -> Response {
    let entry = lookup(code);
    let mut res = existing.unwrap_or_else(|| {
        ResponseBuilder::new()
            .description(entry.map(|e| e.reason).unwrap_or("Response"))
            .build()
    });
    if let Some(e) = entry {
        if !res.description.contains(e.usage.text()) {
            res.description = format!("{} — {}", res.description, e.usage.text());
        }
    }
    if code >= 400 {
        let (media, schema) = error_media(path);
        res.content
            .insert(media.to_string(), Content::new(Some(schema)));
    }
    for (name, description) in required_headers(code) {
        res.headers.entry(name.to_string()).or_insert_with(|| {
            HeaderBuilder::new()
                .schema(string_schema())
                .description(Some(*description))
                .build()
        });
    }
    res.headers.entry("X-Request-Id".into()).or_insert_with(|| {
        HeaderBuilder::new()
            .schema(string_schema())
            .description(Some("The request's id, as in logs and problem bodies"))
            .build()
    });
    res
}

/// An `If-Match` value as careq parses it: `*`, or a list of entity tags.
fn if_match_schema() -> ObjectBuilder {
    string_schema().pattern(Some(r#"^(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)$"#))
}

/// Where `If-Match` is optional (the ticket actions), it has the same form as where it is
/// required: anything else is a 400, which a schema must not allow.
fn shape_optional_if_match(op: &mut Operation) {
    for p in op.parameters.iter_mut().flatten() {
        if p.name == "If-Match" && p.parameter_in == ParameterIn::Header {
            // Here an empty value is also taken: an empty list of tags, which nothing matches (412).
            p.schema = Some(
                string_schema()
                    .pattern(Some(r#"^(|\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)$"#))
                    .into(),
            );
        }
    }
}

/// PUT and PATCH require `If-Match` (428 without it): the spec says so, so clients know.
fn require_if_match(op: &mut Operation, path: &str) {
    let param = ParameterBuilder::new()
        .name("If-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(
            "The ETag of the version being changed (from a GET or the last write)",
        ))
        .schema(Some(if_match_schema()))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(param);
    for code in [412u16, 428] {
        op.responses
            .responses
            .entry(code.to_string())
            .or_insert_with(|| RefOr::T(complete_at(path, code, None)));
    }
}

fn apply(op: &mut Operation, method: &str, path: &str) {
    let mut codes: Vec<u16> = EVERY_OPERATION.to_vec();
    let has_body = op
        .request_body
        .as_ref()
        .is_some_and(|b: &RequestBody| !b.content.is_empty());
    if has_body {
        codes.extend_from_slice(WITH_BODY);
    }
    // `security(())` marks a public operation; all others need a bearer token.
    let public = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
    if !public {
        codes.extend_from_slice(&[401, 429]);
    }
    for code in codes {
        op.responses
            .responses
            .entry(code.to_string())
            .or_insert_with(|| RefOr::T(complete_at(path, code, None)));
    }
    let keys: Vec<String> = op.responses.responses.keys().cloned().collect();
    for key in keys {
        let Ok(code) = key.parse::<u16>() else {
            continue;
        };
        if let Some(RefOr::T(r)) = op.responses.responses.remove(&key) {
            op.responses
                .responses
                .insert(key, RefOr::T(complete_at(path, code, Some(r))));
        }
    }
    // A 415 names what the endpoint takes in the header made for its method.
    let accept = match method {
        "post" => Some("Accept-Post"),
        "patch" => Some("Accept-Patch"),
        _ => None,
    };
    if let (Some(name), Some(RefOr::T(r))) = (accept, op.responses.responses.get_mut("415")) {
        r.headers.entry(name.to_string()).or_insert_with(|| {
            HeaderBuilder::new()
                .schema(string_schema())
                .description(Some("The media type the endpoint takes"))
                .build()
        });
    }
}

/// A unique operation id from method and path: `get_v1_patients_id`.
fn operation_id(method: &str, path: &str) -> String {
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let slug = slug
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    format!("{method}_{slug}")
}

/// Whether `template` (`/v1/patients/{id}`) also matches a static sibling path
/// (`/v1/patients/batch`), whose other methods answer 405 with `Allow`.
fn shadows_static_sibling(template: &str, all: &[String]) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    all.iter().any(|other| {
        let o: Vec<&str> = other.split('/').collect();
        other != template
            && o.len() == t.len()
            && t.iter()
                .zip(&o)
                .all(|(a, b)| a == b || (a.starts_with('{') && !b.starts_with('{')))
    })
}

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let all_paths: Vec<String> = api.paths.paths.keys().cloned().collect();
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for (path, item) in api.paths.paths.iter_mut() {
            for (method, op) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ] {
                if let Some(op) = op {
                    op.operation_id = Some(operation_id(method, path));
                }
            }
            for op in [&mut item.put, &mut item.patch].into_iter().flatten() {
                require_if_match(op, path);
            }
            if let Some(op) = &mut item.post {
                shape_optional_if_match(op);
            }
            if shadows_static_sibling(path, &all_paths) {
                for op in [
                    &mut item.get,
                    &mut item.put,
                    &mut item.patch,
                    &mut item.delete,
                    &mut item.post,
                ]
                .into_iter()
                .flatten()
                {
                    op.responses
                        .responses
                        .entry("405".into())
                        .or_insert_with(|| RefOr::T(complete(405, None)));
                }
            }
            for (method, op) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
                ("head", &mut item.head),
                ("options", &mut item.options),
                ("trace", &mut item.trace),
            ] {
                if let Some(op) = op {
                    apply(op, method, path);
                }
            }
        }
        links::add(api);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_is_in_the_catalogue_with_its_headers() {
        let json = spec();
        assert_eq!(json["openapi"], "3.1.0");
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                for code in EVERY_OPERATION {
                    assert!(
                        responses.contains_key(&code.to_string()),
                        "{method} {path} lacks {code}"
                    );
                }
                if let Some(res) = responses.get("415") {
                    let name = match method.as_str() {
                        "post" => Some("Accept-Post"),
                        "patch" => Some("Accept-Patch"),
                        _ => None,
                    };
                    if let Some(name) = name {
                        assert!(res["headers"].get(name).is_some(), "{method} {path} 415");
                    }
                    assert!(
                        res["headers"].get("Accept").is_none(),
                        "{method} {path} 415"
                    );
                }
                for (code, res) in responses {
                    let code: u16 = code.parse().unwrap();
                    assert!(lookup(code).is_some(), "{code} not catalogued");
                    for (h, _) in required_headers(code) {
                        assert!(
                            res["headers"].get(*h).is_some(),
                            "{method} {path} {code} lacks {h}"
                        );
                    }
                }
            }
        }
    }
}
