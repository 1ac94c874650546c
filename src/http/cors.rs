//! CORS, for the configured origins only (`CAREQ_CORS_ORIGINS`); other origins get no CORS
//! headers, so browsers keep them out.
use axum::response::Response;
use http::header::{self, HeaderValue};
use http::HeaderMap;

use crate::config::Config;

const ALLOW_HEADERS: &str = "Authorization, Content-Type, If-Match, If-None-Match, If-Modified-Since, Idempotency-Key, X-Request-Id";
const EXPOSE_HEADERS: &str = "ETag, Location, Link, Retry-After, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Idempotent-Replayed";

/// The request's `Origin` if it is one of the configured origins.
pub fn allowed_origin(config: &Config, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    config
        .cors_origins
        .iter()
        .any(|o| o.trim().eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// Adds the CORS headers for an allowed origin; `preflight` carries the methods for OPTIONS.
pub fn decorate(res: &mut Response, origin: HeaderValue, preflight: Option<HeaderValue>) {
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    if let Some(methods) = preflight {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
}
