//! Content negotiation on `Accept`. Every resource has a JSON form; lists also have CSV. The
//! decision is made once per request and stored as a `Preference` extension.
use axum::response::Response;
use http::{header, HeaderMap};

use crate::error::ApiError;

pub const JSON: &str = "application/json";
pub const CSV: &str = "text/csv";
/// What careq can produce, in order of preference.
pub const AVAILABLE: &[&str] = &[JSON, CSV];

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

/// Decides from the request's `Accept` (absent = anything).
pub fn preference(headers: &HeaderMap) -> Result<Preference, ApiError> {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return Ok(Preference::Json);
    }
    let accept = values.join(",");
    let json = weight(&accept, JSON);
    let csv = weight(&accept, CSV);
    match (json > 0.0, csv > 0.0) {
        (true, _) if json >= csv => Ok(Preference::Json),
        (true, true) => Ok(Preference::CsvPreferred),
        (false, true) => Ok(Preference::CsvOnly),
        _ => Err(not_acceptable()),
    }
}

pub fn not_acceptable() -> ApiError {
    ApiError::NotAcceptable {
        available: AVAILABLE,
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

    fn pref(accept: &str) -> Result<Preference, u16> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, accept.parse().unwrap());
        preference(&h).map_err(|e| e.status().code)
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
        assert_eq!(pref("text/*"), Ok(Preference::CsvOnly));
        assert_eq!(pref("application/xml"), Err(406));
        assert_eq!(pref("application/json;q=0, text/html"), Err(406));
        assert_eq!(
            pref("*/*;q=0.1, application/json;q=0"),
            Ok(Preference::CsvOnly)
        );
    }
}
