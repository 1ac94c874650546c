//! FHIR search: the query string read under `handling=strict` (unknown parameters → 400) or
//! `handling=lenient` (ignored, and left out of the `self` link), and `searchset` Bundles.
use serde_json::{json, Value};

use crate::error::{ApiError, FieldError};
use crate::http::paging::{DEFAULT_LIMIT, MAX_LIMIT};

/// Parameters every search takes besides its own.
const COMMON: &[&str] = &["_count", "_cursor", "_format"];

/// A search's parameters, in the order sent, with the ones careq does not know removed.
pub struct Query {
    pub used: Vec<(String, String)>,
}

/// Whether the request asked for `Prefer: handling=lenient` (strict is the default).
pub fn lenient(headers: &http::HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=lenient"))
}

impl Query {
    pub fn parse(raw: Option<&str>, known: &[&str], lenient: bool) -> Result<Query, ApiError> {
        let mut used = Vec::new();
        let mut unknown = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            // As in the native API: NUL cannot reach a query, so it becomes U+0001.
            let (k, v) = (k.replace('\0', "\u{1}"), v.replace('\0', "\u{1}"));
            if known.contains(&k.as_str()) || COMMON.contains(&k.as_str()) {
                if !v.is_empty() {
                    used.push((k, v));
                }
            } else if !unknown.contains(&k) {
                unknown.push(k);
            }
        }
        if !unknown.is_empty() && !lenient {
            return Err(ApiError::BadRequest {
                detail: format!(
                    "unknown search parameter(s): {}; send `Prefer: handling=lenient` to have them ignored",
                    unknown.join(", ")
                ),
                errors: unknown
                    .iter()
                    .map(|k| FieldError::new(format!("query/{k}"), "not a parameter of this search"))
                    .collect(),
            });
        }
        for (k, _) in &used {
            let many = used.iter().filter(|(o, _)| o == k).count();
            if many > 1 && k != "date" {
                return Err(ApiError::bad_param(k, "give this parameter once"));
            }
        }
        Ok(Query { used })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.used
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.used
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `_count`: 1–200, default 50 (the native paging bounds).
    pub fn count(&self) -> Result<u32, ApiError> {
        match self.get("_count") {
            None => Ok(DEFAULT_LIMIT),
            Some(c) => c
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::bad_param("_count", "a whole number from 1 to 200")),
        }
    }

    /// The search's URL with the parameters used, and `_cursor` set to `cursor` when given.
    pub fn url(&self, base: &str, cursor: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.used {
            if k != "_cursor" || cursor.is_none() {
                q.append_pair(k, v);
            }
        }
        if let Some(c) = cursor {
            q.append_pair("_cursor", c);
        }
        let q = q.finish();
        if q.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{q}")
        }
    }
}

/// A `searchset` Bundle: `self` (and `next` when there is more), one entry per match.
pub fn searchset(
    url: &str,
    next: Option<String>,
    total: Option<i64>,
    entries: Vec<(String, Value)>,
) -> Value {
    let mut links = vec![json!({"relation": "self", "url": url})];
    if let Some(n) = next {
        links.push(json!({"relation": "next", "url": n}));
    }
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
    });
    if let Some(t) = total {
        b["total"] = json!(t);
    }
    if !entries.is_empty() {
        b["entry"] = Value::Array(
            entries
                .into_iter()
                .map(|(full_url, resource)| {
                    json!({"fullUrl": full_url, "resource": resource, "search": {"mode": "match"}})
                })
                .collect(),
        );
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_refused_unless_lenient() {
        let raw = Some("name=po&colour=red&_count=2");
        let err = Query::parse(raw, &["name"], false).err().unwrap();
        assert_eq!(err.status().code, 400);
        let q = Query::parse(raw, &["name"], true).unwrap();
        assert_eq!(
            q.url("http://h/Patient", None),
            "http://h/Patient?name=po&_count=2"
        );
        assert_eq!(
            q.url("http://h/Patient", Some("x")),
            "http://h/Patient?name=po&_count=2&_cursor=x"
        );
    }
}
