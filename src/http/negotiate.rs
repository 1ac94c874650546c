//! Content negotiation on `Accept`. Each endpoint offers a fixed set of media types (JSON, and
//! for the lists in `OFFERS` also CSV); the decision is made once per request, before any
//! handler runs, and stored as a `Preference` extension. A 406 lists what that endpoint offers.
use axum::response::Response;
use http::{header, HeaderMap};

use crate::error::ApiError;

pub const JSON: &str = "application/json";
pub const CSV: &str = "text/csv";
pub const NDJSON: &str = "application/x-ndjson";
/// What most endpoints offer.
pub const JSON_ONLY: &[&str] = &[JSON];
/// What a list with a CSV form offers, in order of preference.
pub const JSON_OR_CSV: &[&str] = &[JSON, CSV];

/// The `GET` (and `HEAD`) endpoints that offer more than JSON, by route template. OpenAPI lists
/// the same types on the same operations (a test checks).
pub const OFFERS: &[(&str, &[&str])] = &[
    ("/v1/patients", JSON_OR_CSV),
    ("/v1/appointments", JSON_OR_CSV),
    ("/v1/users", JSON_OR_CSV),
    ("/v1/status-codes", JSON_OR_CSV),
    ("/v1/clinics/{id}/queue/report", JSON_OR_CSV),
    // An export file is in the format its job was asked for.
    ("/v1/exports/{id}/file", &[CSV, NDJSON]),
];

fn matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') && !ps.is_empty() => {}
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

/// The media types `method` on `path` can answer with.
pub fn offered(method: &http::Method, path: &str) -> &'static [&'static str] {
    if method != http::Method::GET && method != http::Method::HEAD {
        return JSON_ONLY;
    }
    OFFERS
        .iter()
        .find(|(t, _)| matches(t, path))
        .map_or(JSON_ONLY, |(_, o)| *o)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// JSON is acceptable (and preferred over CSV, or equal).
    Json,
    /// Both are acceptable and CSV has the higher weight.
    CsvPreferred,
    /// Only CSV is acceptable.
    CsvOnly,
}

impl Preference {
    pub fn wants_csv(self) -> bool {
        matches!(self, Preference::CsvPreferred | Preference::CsvOnly)
    }
}

/// The weight `accept` gives `media` (0.0 if not acceptable), by the most specific range.
fn weight(accept: &str, media: &str) -> f32 {
    let (mtype, msub) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let r = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        let (rtype, rsub) = r.split_once('/').unwrap_or((r.as_str(), ""));
        let specificity = if rtype == mtype && rsub == msub {
            3
        } else if rtype == mtype && rsub == "*" {
            2
        } else if rtype == "*" && rsub == "*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map(|(_, q)| q).unwrap_or(0.0)
}

/// Decides from the request's `Accept` (absent = anything) among what the endpoint `offers`.
pub fn preference(
    headers: &HeaderMap,
    offers: &'static [&'static str],
) -> Result<Preference, ApiError> {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return Ok(Preference::Json);
    }
    let accept = values.join(",");
    let w = |m: &str| {
        if offers.contains(&m) {
            weight(&accept, m)
        } else {
            0.0
        }
    };
    if offers.iter().all(|m| weight(&accept, m) <= 0.0) {
        return Err(ApiError::NotAcceptable { available: offers });
    }
    let (json, csv) = (w(JSON), w(CSV));
    Ok(match (json > 0.0, csv > 0.0) {
        (true, _) if json >= csv => Preference::Json,
        (true, true) => Preference::CsvPreferred,
        (false, true) => Preference::CsvOnly,
        // Another type the endpoint offers (an export file's own format).
        _ => Preference::Json,
    })
}

pub fn not_acceptable() -> ApiError {
    ApiError::NotAcceptable {
        available: JSON_ONLY,
    }
}

/// A 2xx JSON answer: what a CSV-only client cannot take.
pub fn is_json_success(res: &Response) -> bool {
    res.status().is_success()
        && res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(JSON.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pref_for(accept: &str, offers: &'static [&'static str]) -> Result<Preference, String> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, accept.parse().unwrap());
        preference(&h, offers).map_err(|e| match e {
            ApiError::NotAcceptable { available } => available.join(","),
            other => format!("{other:?}"),
        })
    }

    fn pref(accept: &str) -> Result<Preference, String> {
        pref_for(accept, JSON_OR_CSV)
    }

    #[test]
    fn accept_headers_are_weighed() {
        assert_eq!(pref("*/*"), Ok(Preference::Json));
        assert_eq!(pref("application/json"), Ok(Preference::Json));
        assert_eq!(
            pref("application/*;q=0.5, text/csv"),
            Ok(Preference::CsvPreferred)
        );
        assert_eq!(pref("text/csv"), Ok(Preference::CsvOnly));
        assert_eq!(pref("text/csv; bom=1"), Ok(Preference::CsvOnly));
        assert_eq!(pref("text/*"), Ok(Preference::CsvOnly));
        assert_eq!(
            pref("application/xml"),
            Err("application/json,text/csv".into())
        );
        assert!(pref("application/json;q=0, text/html").is_err());
        assert_eq!(
            pref("*/*;q=0.1, application/json;q=0"),
            Ok(Preference::CsvOnly)
        );
    }

    #[test]
    fn a_406_lists_only_what_the_endpoint_offers() {
        assert_eq!(
            pref_for("text/csv", JSON_ONLY),
            Err("application/json".into())
        );
        assert_eq!(
            pref_for("text/csv, application/json;q=0.2", JSON_ONLY),
            Ok(Preference::Json)
        );
        let get = http::Method::GET;
        assert_eq!(offered(&get, "/v1/appointments"), JSON_OR_CSV);
        assert_eq!(offered(&get, "/v1/clinics/cln_1/queue/report"), JSON_OR_CSV);
        assert_eq!(offered(&get, "/v1/clinics/cln_1/queue"), JSON_ONLY);
        assert_eq!(offered(&get, "/v1/patients/pat_1"), JSON_ONLY);
        assert_eq!(offered(&http::Method::POST, "/v1/patients"), JSON_ONLY);
        assert_eq!(
            pref_for("application/x-ndjson", offered(&get, "/v1/exports/x/file")),
            Ok(Preference::Json)
        );
    }

    /// OpenAPI lists `text/csv` on exactly the operations that produce it.
    #[test]
    fn the_spec_lists_each_endpoints_media_types_as_negotiation_offers_them() {
        let spec = crate::openapi::spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Ok(m) = method.to_uppercase().parse::<http::Method>() else {
                    continue;
                };
                for (code, res) in op["responses"].as_object().into_iter().flatten() {
                    let Some(content) = res["content"].as_object() else {
                        continue;
                    };
                    let listed: Vec<&str> = content.keys().map(String::as_str).collect();
                    let has_csv = listed.contains(&CSV);
                    let offers_csv = code.starts_with('2') && offered(&m, path).contains(&CSV);
                    assert_eq!(has_csv, offers_csv, "{method} {path} {code}: {listed:?}");
                }
            }
        }
    }
}
