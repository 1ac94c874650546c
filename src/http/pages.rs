//! Pages and their scripts as the binary serves them (the desk's screens, the waiting-room
//! board): revalidated on every load, so an upgrade shows at once, and never telling what they
//! load the page's address.
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

use crate::http::conditional::Representation;

/// One page, revalidated on every load (so an upgrade shows at once), under the page policy.
pub fn html(headers: &HeaderMap, body: &'static str, csp: &'static str) -> Response {
    let mut rep =
        Representation::new(body.as_bytes().to_vec(), "text/html; charset=utf-8").cache("no-cache");
    rep.extra.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    rep.extra.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    rep.respond(headers)
}

/// A script or stylesheet of the pages, revalidated on every load. It sends no `Referer`
/// either: what it loads must not learn the address of the page, which may hold a key.
pub fn static_file(
    headers: &HeaderMap,
    body: &'static str,
    content_type: &'static str,
) -> Response {
    let mut rep = Representation::new(body.as_bytes().to_vec(), content_type).cache("no-cache");
    rep.extra.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    rep.respond(headers)
}
