//! Lost-update protection: updates must send `If-Match` (428 without), and a tag that is not the
//! current one answers 412 with the current `ETag`. Versioned resources carry `ETag: "N"` where N
//! is their version, so the database can check the precondition atomically
//! (`UPDATE … WHERE version = N`).
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::header;
use http::request::Parts;

use crate::error::ApiError;

/// The strong entity tag of a resource at `version`.
pub fn version_etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The `If-Match` header of an update.
#[derive(Debug, Clone)]
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    /// Whether the resource at `version` satisfies the precondition (strong comparison).
    pub fn matches(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| *t == version_etag(version)),
        }
    }

    /// Fails with 412 (and the current tag) unless the resource at `version` matches.
    pub fn check(&self, version: i64) -> Result<(), ApiError> {
        if self.matches(version) {
            Ok(())
        } else {
            Err(stale(version))
        }
    }

    /// The same precondition with weak tags read as version tags (`W/"3"` names version 3):
    /// FHIR's version validators are weak by definition (`ETag: W/"3"`, `If-Match: W/"3"`).
    pub fn weak_as_version(self) -> IfMatch {
        match self {
            IfMatch::Any => IfMatch::Any,
            IfMatch::Tags(tags) => IfMatch::Tags(
                tags.into_iter()
                    .map(|t| t.strip_prefix("W/").map(str::to_string).unwrap_or(t))
                    .collect(),
            ),
        }
    }
}

/// The 412 for a resource now at `version`.
pub fn stale(version: i64) -> ApiError {
    ApiError::PreconditionFailed {
        current_etag: version_etag(version),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let values: Vec<&str> = parts
            .headers
            .get_all(header::IF_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(ApiError::PreconditionRequired);
        }
        let joined = values.join(",");
        if joined.trim() == "*" {
            return Ok(IfMatch::Any);
        }
        match parse_tags(&joined) {
            Some(tags) if !tags.is_empty() => Ok(IfMatch::Tags(tags)),
            _ => Err(malformed()),
        }
    }
}

/// 400 for an `If-Match` that is not an entity-tag list.
fn malformed() -> ApiError {
    ApiError::BadRequest {
        detail: "If-Match must list entity tags such as \"3\", or be *".into(),
        errors: vec![crate::error::FieldError::new(
            "header/If-Match",
            "not an entity-tag list",
        )],
    }
}

/// Where `If-Match` is optional (a move the state machine guards): absent is `None`, sent is
/// checked as on any update.
impl<S: Send + Sync> OptionalFromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let values = parts.headers.get_all(header::IF_MATCH);
        if values.iter().next().is_none() {
            return Ok(None);
        }
        // An empty field is an empty list of tags (`#entity-tag` allows none): a condition no
        // version meets, so 412, as RFC 9110 §13.1.1 has it for a list that matches nothing.
        // Bytes outside visible ASCII cannot form entity tags.
        if values.iter().any(|v| v.to_str().is_err()) {
            return Err(malformed());
        }
        let blank = values
            .iter()
            .all(|v| v.to_str().is_ok_and(|s| s.trim().is_empty()));
        if blank {
            return Ok(Some(IfMatch::Tags(Vec::new())));
        }
        <IfMatch as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// Parses `#1#entity-tag` (RFC 9110 §8.8.3): quoted tags, maybe `W/`, separated by commas
/// (which may also stand inside the quotes).
fn parse_tags(list: &str) -> Option<Vec<String>> {
    let mut tags = Vec::new();
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            return Some(tags);
        }
        let weak = rest.starts_with("W/");
        let body = if weak { &rest[2..] } else { rest };
        let body = body.strip_prefix('"')?;
        let end = body.find('"')?;
        // A tag of a gzip-encoded representation names the same version (`"3-gzip"` is `"3"`).
        let opaque = &body[..end];
        let opaque = opaque
            .strip_suffix(super::conditional::GZIP_SUFFIX)
            .unwrap_or(opaque);
        tags.push(format!("{}\"{opaque}\"", if weak { "W/" } else { "" }));
        rest = &body[end + 1..];
        let next = rest.trim_start_matches([' ', '\t']);
        if !(next.is_empty() || next.starts_with(',')) {
            return None;
        }
        rest = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tag_lists_parse_with_commas_inside_quotes() {
        assert_eq!(
            parse_tags(r#""a,b" , W/"c""#),
            Some(vec![r#""a,b""#.into(), r#"W/"c""#.into()])
        );
        assert_eq!(parse_tags(""), Some(vec![]));
        assert_eq!(parse_tags("abc"), None);
        assert_eq!(parse_tags(r#""a" x"#), None);
    }

    #[test]
    fn weak_tags_never_satisfy_if_match() {
        let m = IfMatch::Tags(vec!["W/\"3\"".into(), "\"2\"".into()]);
        assert!(m.matches(2));
        assert!(!m.matches(3));
        assert!(IfMatch::Any.matches(9));
        assert_eq!(m.check(4).unwrap_err().status().code, 412);
    }
}
