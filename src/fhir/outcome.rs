//! The one place FHIR answers take their form: every request under `/fhir/` is negotiated here
//! (`application/fhir+json`, `application/json` or `_format=json`; anything else 406), and every
//! answer leaves as FHIR: a problem from `ApiError` becomes an `OperationOutcome` with the same
//! status and headers, JSON bodies are labelled `application/fhir+json`, and version tags are
//! given in FHIR's weak form (`W/"3"`).
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::respond::FHIR_JSON;
use crate::error::{ApiError, PROBLEM_JSON};

/// What FHIR clients may ask for.
pub const AVAILABLE: &[&str] = &[FHIR_JSON, "application/json"];

/// Problems are small; a larger body is left as it is rather than read whole.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

pub async fn render(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/fhir/") {
        return next.run(req).await;
    }
    let res = match negotiate(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    as_fhir(res).await
}

/// Whether the client can take FHIR JSON: `_format` wins over `Accept` (FHIR §3.1.0.1.7).
fn negotiate(req: &Request) -> Result<(), ApiError> {
    let refused = || ApiError::NotAcceptable {
        available: AVAILABLE,
    };
    let format = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.into_owned());
    if let Some(f) = format {
        return match f.split(';').next().unwrap_or("").trim() {
            "json" | FHIR_JSON | "application/json" => Ok(()),
            _ => Err(refused()),
        };
    }
    let accept: Vec<&str> = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.is_empty() {
        return Ok(());
    }
    let takes_json = accept.join(",").split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused_q = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        !refused_q
            && matches!(
                media.as_str(),
                FHIR_JSON | "application/json" | "application/*" | "*/*"
            )
    });
    if takes_json {
        Ok(())
    } else {
        Err(refused())
    }
}

async fn as_fhir(res: Response) -> Response {
    let (mut parts, body) = res.into_parts();
    weaken_etag(&mut parts.headers);
    let media = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
    match media.as_deref() {
        Some(PROBLEM_JSON) => {
            let bytes = match http_body_util::Limited::new(body, MAX_PROBLEM_BYTES)
                .collect()
                .await
            {
                Ok(c) => c.to_bytes(),
                Err(_) => return Response::from_parts(parts, Body::empty()),
            };
            let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let outcome = serde_json::to_vec(&from_problem(&problem)).unwrap_or_default();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
            Response::from_parts(parts, Body::from(outcome))
        }
        Some("application/json") => {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
            Response::from_parts(parts, body)
        }
        _ => Response::from_parts(parts, body),
    }
}

/// `"3"` → `W/"3"`: a FHIR version tag.
fn weaken_etag(headers: &mut http::HeaderMap) {
    let weak = headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|t| t.starts_with('"'))
        .and_then(|t| HeaderValue::from_str(&format!("W/{t}")).ok());
    if let Some(v) = weak {
        headers.insert(header::ETAG, v);
    }
}

/// The FHIR issue type for an HTTP status (R4 value set `issue-type`).
fn issue_code(status: u64) -> &'static str {
    match status {
        400 | 422 => "invalid",
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 | 406 | 415 | 501 => "not-supported",
        409 => "duplicate",
        410 => "deleted",
        412 => "conflict",
        413 | 414 | 431 => "too-long",
        423 => "lock-error",
        428 => "required",
        429 => "throttled",
        451 => "suppressed",
        408 | 503 | 504 => "transient",
        s if s >= 500 => "exception",
        _ => "processing",
    }
}

/// An `OperationOutcome` saying what the problem says: one issue for the problem, one more per
/// broken rule (its JSON Pointer or `query/NAME` as the issue's expression-free location text).
pub fn from_problem(problem: &Value) -> Value {
    let status = problem["status"].as_u64().unwrap_or(500);
    let text = |k: &str| problem[k].as_str().unwrap_or("").to_string();
    let code = issue_code(status);
    let mut diagnostics = format!("{} (request_id {})", text("detail"), text("request_id"));
    if let Some(related) = problem["related"].as_str() {
        diagnostics.push_str(&format!("; see {related}"));
    }
    let mut issues = vec![json!({
        "severity": "error",
        "code": code,
        "details": {"text": format!("{} {}", status, text("title"))},
        "diagnostics": diagnostics,
    })];
    for e in problem["errors"].as_array().into_iter().flatten() {
        issues.push(json!({
            "severity": "error",
            "code": code,
            "diagnostics": e["message"].as_str().unwrap_or(""),
            "location": [e["pointer"].as_str().unwrap_or("")],
        }));
    }
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_becomes_an_outcome_with_one_issue_per_rule() {
        let p = json!({"status": 422, "title": "Unprocessable Entity", "detail": "d",
            "request_id": "r", "errors": [{"pointer": "/birthDate", "message": "m"}]});
        let o = from_problem(&p);
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(o["issue"].as_array().unwrap().len(), 2);
        assert_eq!(o["issue"][1]["location"][0], "/birthDate");
        assert_eq!(issue_code(410), "deleted");
    }
}
