//! Answers for single versioned resources, so every resource sends the same validators:
//! `ETag` from the version, `Last-Modified` from `updated_at`, `Location` on create.
use super::conditional::Representation;
use super::precondition::version_etag;
use crate::clock::unix_of;
pub use crate::versioned::Versioned;
use axum::response::Response;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

fn representation<T: Versioned>(value: &T) -> Representation {
    let mut rep = Representation::json(value).modified(unix_of(value.updated_at()));
    rep.etag = version_etag(value.version());
    rep
}

/// 200 (or 304 on a matching `If-None-Match` / `If-Modified-Since`).
pub fn read<T: Versioned>(value: &T, req_headers: &HeaderMap) -> Response {
    representation(value).respond(req_headers)
}

/// 200 after an update.
pub fn updated<T: Versioned>(value: &T) -> Response {
    representation(value).respond(&HeaderMap::new())
}

/// 201 with `Location` and `ETag`.
pub fn created<T: Versioned>(value: &T, location: &str) -> Response {
    let mut rep = representation(value).status(StatusCode::CREATED);
    if let Ok(v) = HeaderValue::from_str(location) {
        rep.extra.insert(header::LOCATION, v);
    }
    rep.respond(&HeaderMap::new())
}
