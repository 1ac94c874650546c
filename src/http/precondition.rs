//! Lost-update protection: updates must send `If-Match` (428 without), and a tag that is not the
//! current one answers 412 with the current `ETag`. Versioned resources carry `ETag: "N"` where N
//! is their version, so the database can check the precondition atomically
//! (`UPDATE … WHERE version = N`).
use axum::extract::FromRequestParts;
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
        let tags: Vec<String> = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if tags.iter().any(|t| t == "*") {
            return Ok(IfMatch::Any);
        }
        let well_formed = |t: &str| {
            let t = t.strip_prefix("W/").unwrap_or(t);
            t.len() >= 2
                && t.starts_with('"')
                && t.ends_with('"')
                && !t[1..t.len() - 1].contains('"')
        };
        if tags.is_empty() || !tags.iter().all(|t| well_formed(t)) {
            return Err(ApiError::BadRequest {
                detail: "If-Match must list entity tags such as \"3\", or be *".into(),
                errors: vec![crate::error::FieldError::new(
                    "header/If-Match",
                    "not an entity-tag list",
                )],
            });
        }
        Ok(IfMatch::Tags(tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_tags_never_satisfy_if_match() {
        let m = IfMatch::Tags(vec!["W/\"3\"".into(), "\"2\"".into()]);
        assert!(m.matches(2));
        assert!(!m.matches(3));
        assert!(IfMatch::Any.matches(9));
        assert_eq!(m.check(4).unwrap_err().status().code, 412);
    }
}
