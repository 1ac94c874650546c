//! Global HTTP rules, applied once for every route: request ids, panics, logging and metrics
//! (`request_context`), and the checks every request passes before routing (`guards`).
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode, Version};

use super::context::{self, RequestCtx};
use super::cors;
use super::negotiate::{self, Preference};
use super::HttpState;
use crate::error::{ApiError, ErrorLog};

/// The route template a response was served by, for metrics and logs (never the raw path).
#[derive(Clone)]
pub struct RouteTag(pub String);

pub async fn tag_route(path: MatchedPath, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.extensions_mut()
        .insert(RouteTag(path.as_str().to_string()));
    res
}

const X_REQUEST_ID: &str = "x-request-id";
const X_CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// Outermost layer: gives the request an id, turns panics into 500 problems, logs one line per
/// request (ids and route templates only, never patient data), records metrics, and enforces
/// what every response must (not) carry.
pub async fn request_context(State(state): State<HttpState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // careq's own id, always: a client-chosen one could make audit rows collide. The client's
    // (when plain) is kept beside it and echoed as `X-Client-Request-Id`.
    let request_id = context::new_request_id();
    let client_request_id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| context::sane_request_id(v))
        .map(str::to_owned);
    let method = req.method().clone();
    let version = req.version();
    let ctx = RequestCtx {
        request_id: request_id.clone(),
        client_request_id: client_request_id.clone(),
        path: req.uri().path().to_string(),
    };
    let origin = cors::allowed_origin(&state.config, req.headers());
    // Shed load rather than queue without bound; liveness is always answered.
    let permit = state.in_flight.clone().try_acquire_owned();
    let shed = permit.is_err() && req.uri().path() != "/healthz";
    let work = context::scope(ctx.clone(), async move {
        let _permit = permit;
        if shed {
            return ApiError::ServiceUnavailable {
                detail: "careq is handling as many requests as it may; try again shortly".into(),
                retry_after: 1,
            }
            .into_response();
        }
        match AssertUnwindSafe(next.run(req)).catch_unwind().await {
            Ok(res) => res,
            Err(_) => ApiError::internal("a handler panicked").into_response(),
        }
    });
    // The work runs to its end on a task of its own: a client that hangs up drops only this
    // wait, never a transaction half-way, so what the request started finishes or rolls back
    // whole and its connection goes back to the pool clean. Its in-flight permit goes with it.
    let mut res = match tokio::spawn(work).await {
        Ok(res) => res,
        Err(e) => {
            context::scope(ctx, async move {
                ApiError::internal(format!("the request's task ended early: {e}")).into_response()
            })
            .await
        }
    };
    if let Some(origin) = origin {
        let preflight = (method == Method::OPTIONS && res.status() == StatusCode::NO_CONTENT)
            .then(|| res.headers().get(header::ALLOW).cloned())
            .flatten();
        cors::decorate(&mut res, origin, preflight);
    }

    let route = res
        .extensions()
        .get::<RouteTag>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .record(&route, method.as_str(), status, elapsed.as_secs_f64());
    let cause = res
        .extensions()
        .get::<ErrorLog>()
        .and_then(|e| e.cause.clone());
    let client_id = client_request_id.as_deref().unwrap_or("");
    if let Some(cause) = cause {
        tracing::error!(request_id = %request_id, client_request_id = client_id, %method, %route, status, %cause, "request failed");
    } else {
        tracing::info!(request_id = %request_id, client_request_id = client_id, %method, %route, status, micros = elapsed.as_micros() as u64, "request");
    }

    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(X_REQUEST_ID, v);
    }
    if let Some(v) = client_request_id.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(X_CLIENT_REQUEST_ID, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if state.config.tls_cert.is_some() {
        // Served over TLS: browsers must not fall back to plain HTTP for a year.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if version == Version::HTTP_2 {
        // Connection-specific fields do not exist in HTTP/2 (RFC 9113 §8.2.2): an error that
        // closes an HTTP/1.1 connection (408) only ends its stream here.
        headers.remove(header::CONNECTION);
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // A 204 or 304 never has a body, so neither has it a length (hyper keeps one a handler set).
    if matches!(
        res.status(),
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
    ) {
        res.headers_mut().remove(header::CONTENT_LENGTH);
        res.headers_mut().remove(header::CONTENT_TYPE);
        *res.body_mut() = axum::body::Body::empty();
    }
    res
}

/// The most bytes of header fields careq reads. hyper (HTTP/1.1) and h2 refuse heads beyond
/// their buffers (64 KiB and up) with an empty 431 before careq sees them; below that, careq
/// answers 431 itself, as a problem, at this one limit on both protocols.
pub const HEADER_FIELDS_MAX_BYTES: usize = 32 * 1024;

/// Methods HTTP defines (RFC 9110, PATCH, QUERY); others answer 501 rather than 405.
fn is_known_method(m: &Method) -> bool {
    matches!(
        m.as_str(),
        "GET"
            | "HEAD"
            | "POST"
            | "PUT"
            | "DELETE"
            | "CONNECT"
            | "OPTIONS"
            | "TRACE"
            | "PATCH"
            | "QUERY"
    )
}

/// First path segments that, without `/v1`, are redirected to their versioned path.
const UNVERSIONED: &[&str] = &[
    "patients",
    "patient",
    "appointments",
    "appointment",
    "clinics",
    "users",
    "tickets",
    "exports",
    "jobs",
    "auth",
    "status-codes",
];

/// Checks every request passes before it is routed, in the order a careful server applies them.
pub async fn guards(State(state): State<HttpState>, mut req: Request, next: Next) -> Response {
    match check(&state, &req) {
        Ok(pref) => {
            req.extensions_mut().insert(pref);
        }
        Err(err) => return err.into_response(),
    }
    if let Some(redirect) = canonical_redirect(&req) {
        return redirect;
    }
    let method = req.method().clone();
    let pref = req.extensions().get::<Preference>().copied();
    let res = next.run(req).await;
    if method == Method::OPTIONS && res.status() == StatusCode::METHOD_NOT_ALLOWED {
        // The router answered 405 with the path's Allow: that is exactly what OPTIONS reports.
        let allow = res.headers().get(header::ALLOW).cloned();
        let mut ok = StatusCode::NO_CONTENT.into_response();
        if let Some(allow) = allow.and_then(|a| a.to_str().ok().map(|s| format!("{s},OPTIONS"))) {
            if let Ok(v) = HeaderValue::from_str(&allow) {
                ok.headers_mut().insert(header::ALLOW, v);
            }
        }
        return ok;
    }
    if pref == Some(Preference::CsvOnly) && negotiate::is_json_success(&res) {
        // The client accepts only CSV and this resource has no CSV form.
        return negotiate::not_acceptable().into_response();
    }
    res
}

fn check(state: &HttpState, req: &Request) -> Result<Preference, ApiError> {
    let cfg = &state.config;
    if !is_known_method(req.method()) {
        return Err(ApiError::NotImplemented(format!(
            "the method {} is not one careq implements",
            req.method()
        )));
    }
    check_host(state, req)?;
    let target_len = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().len())
        .unwrap_or(0);
    if target_len > cfg.uri_max_bytes {
        return Err(ApiError::UriTooLong {
            limit: cfg.uri_max_bytes,
        });
    }
    // No resource's name holds NUL (and PostgreSQL's text cannot): such a path names nothing,
    // the same on both engines. (Query values: see `ApiQuery`; bodies: `parse_value`.)
    if req.uri().path().contains("%00") {
        return Err(ApiError::NotFound(
            "no resource has a NUL character (%00) in its path".into(),
        ));
    }
    // Counted as on the HTTP/1.1 wire (`name: value` and CRLF), whichever protocol carried them.
    let fields: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if fields > HEADER_FIELDS_MAX_BYTES {
        return Err(ApiError::HeaderFieldsTooLarge {
            limit: HEADER_FIELDS_MAX_BYTES,
        });
    }
    if let Some(expect) = req.headers().get(header::EXPECT) {
        if !expect.as_bytes().eq_ignore_ascii_case(b"100-continue") {
            return Err(ApiError::ExpectationFailed);
        }
    }
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH) {
        let len: u64 = len.to_str().ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        if len > cfg.body_limit_bytes as u64 {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is over the limit of {} bytes",
                cfg.body_limit_bytes
            )));
        }
    }
    // Only the API negotiates; pages (`/docs`) and `/metrics` have one fixed form each.
    // OPTIONS answers with no body at all, so there is nothing to negotiate.
    if req.uri().path().starts_with("/v1/") && req.method() != Method::OPTIONS {
        let offers = negotiate::offered(req.method(), req.uri().path());
        negotiate::preference(req.headers(), offers)
    } else {
        Ok(Preference::Json)
    }
}

fn check_host(state: &HttpState, req: &Request) -> Result<(), ApiError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(ApiError::bad_request("more than one Host header"));
    }
    // HTTP/2 names the host in the `:authority` pseudo-header, which arrives as the URI's
    // authority; the same rules apply to it.
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .filter(|_| req.version() == Version::HTTP_2);
    let authority = authority.and_then(|a| HeaderValue::from_str(a).ok());
    if let (Some(host), Some(authority)) = (host, authority.as_ref()) {
        // RFC 9113 §8.3.1: a Host naming another entity than `:authority` is malformed.
        let name = |v: &HeaderValue| v.to_str().ok().and_then(host_name).map(str::to_owned);
        let (h, a) = (name(host), name(authority));
        if h.is_none()
            || !h
                .as_deref()
                .unwrap_or("")
                .eq_ignore_ascii_case(a.as_deref().unwrap_or(""))
        {
            return Err(ApiError::bad_request(
                "the Host header and :authority name different hosts",
            ));
        }
    }
    let Some(host) = host.or(authority.as_ref()) else {
        // HTTP/1.1 requires Host (RFC 9112 §3.2); HTTP/1.0 clients may omit it.
        if req.version() == Version::HTTP_10 {
            return Ok(());
        }
        return Err(ApiError::bad_request("the Host header is missing"));
    };
    let host = host
        .to_str()
        .map_err(|_| ApiError::bad_request("the Host header is not valid"))?;
    let name =
        host_name(host).ok_or_else(|| ApiError::bad_request("the Host header is not valid"))?;
    if !state.config.host_allowed(name) {
        return Err(ApiError::MisdirectedRequest);
    }
    Ok(())
}

/// The host name of a `Host` value, without the port (IPv6 literals keep their brackets).
fn host_name(host: &str) -> Option<&str> {
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
        return None;
    }
    if host.starts_with('[') {
        let end = host.find(']')?;
        return Some(&host[..=end]);
    }
    Some(host.split(':').next().unwrap_or(host))
}

/// Whether `path` is one a redirect may point at: a single `/` and then a character that is
/// neither `/` nor `\\`. Browsers read `//host` and `/\\host` as another host, so echoing such
/// a path in `Location` would be an open redirect.
fn is_local_path(path: &str) -> bool {
    let mut bytes = path.bytes();
    bytes.next() == Some(b'/') && !matches!(bytes.next(), Some(b'/') | Some(b'\\'))
}

/// 301 for a trailing slash on GET/HEAD (308 for other methods, so the body is resent);
/// 308 from an unversioned API path to its `/v1` path. A path that does not start with exactly
/// one `/` is never redirected (it answers 404 from the router).
fn canonical_redirect(req: &Request) -> Option<Response> {
    let path = req.uri().path();
    if !is_local_path(path) {
        return None;
    }
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        if !trimmed.is_empty() && !is_local_path(trimmed) {
            return None;
        }
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let status = if safe {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::PERMANENT_REDIRECT
        };
        return Some(redirect(status, &format!("{trimmed}{query}")));
    }
    let first = path[1..].split('/').next().unwrap_or("");
    if UNVERSIONED.contains(&first) {
        let rest = &path[1 + first.len()..];
        let segment = match first {
            "patient" => "patients",
            "appointment" => "appointments",
            s => s,
        };
        return Some(redirect(
            StatusCode::PERMANENT_REDIRECT,
            &format!("/v1/{segment}{rest}{query}"),
        ));
    }
    None
}

/// A redirect answer: status, `Location`, and no body.
pub fn redirect(status: StatusCode, location: &str) -> Response {
    let mut res = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_slash_paths_are_redirect_targets() {
        for ok in ["/", "/v1/patients", "/a//b"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "///evil.example",
            "",
            "evil",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("example.org:8080"), Some("example.org"));
        assert_eq!(host_name("[::1]:80"), Some("[::1]"));
        assert_eq!(host_name("a b"), None);
        assert_eq!(host_name(""), None);
    }
}
