//! `ApiError`: the only place where a failure becomes a status code, headers and an RFC 9457
//! `application/problem+json` body. Handlers and middleware return these; nothing else picks a
//! status for an error.
use axum::response::{IntoResponse, Response};
use careq_status::{self as status, Status};
use http::header::{HeaderName, HeaderValue};
use http::{header, HeaderMap};
use serde::Serialize;

use crate::http::context;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One broken rule inside a request, located by a JSON Pointer into the body (`/given_name`) or
/// `query/NAME` / `header/NAME` for parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Per-token rate-limit state, reported on 429s (and successful answers) as `RateLimit-*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    pub reset_seconds: u64,
}

/// Every failure careq reports. The variant decides the status; see `status()`.
/// The method of a request whose body was refused with 415: it decides which header names the
/// media type the endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMethod {
    Post,
    Patch,
    Put,
}

#[derive(Debug)]
pub enum ApiError {
    /// Malformed syntax: JSON, a parameter, a header, a cursor.
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// No usable credentials. `invalid_token` when a token was sent but is not valid.
    Unauthorized {
        detail: String,
        invalid_token: bool,
    },
    Forbidden(String),
    NotFound(String),
    /// The router adds `Allow`.
    MethodNotAllowed,
    NotAcceptable {
        available: &'static [&'static str],
    },
    RequestTimeout,
    Conflict {
        detail: String,
        existing: Option<String>,
    },
    Gone(String),
    LengthRequired(String),
    PreconditionFailed {
        current_etag: String,
    },
    /// A conditional request's search (FHIR `If-None-Exist`) matched more than one resource, so
    /// there is no single current version to name.
    AmbiguousCondition(String),
    PayloadTooLarge(String),
    UriTooLong {
        limit: usize,
    },
    /// The request's header fields together are over `limit` bytes.
    HeaderFieldsTooLarge {
        limit: usize,
    },
    /// `accept` is what the endpoint takes, named in `Accept-Post` for POST and `Accept-Patch`
    /// for PATCH (never in `Accept`, which is a request header); PUT has no such header, so the
    /// problem's detail says it.
    UnsupportedMediaType {
        accept: &'static str,
        method: BodyMethod,
    },
    RangeNotSatisfiable {
        length: u64,
    },
    ExpectationFailed,
    MisdirectedRequest,
    Unprocessable {
        detail: String,
        errors: Vec<FieldError>,
    },
    Locked(String),
    /// Inside an atomic batch: this item was fine but rolled back because another failed.
    FailedDependency(String),
    UpgradeRequired,
    PreconditionRequired,
    TooManyRequests {
        detail: String,
        retry_after: u64,
        rate: Option<RateInfo>,
    },
    UnavailableForLegalReasons {
        blocked_by: String,
    },
    /// An unexpected fault. The cause goes to the log (by request id), never to the client.
    Internal(String),
    NotImplemented(String),
    BadGateway(String),
    ServiceUnavailable {
        detail: String,
        retry_after: u64,
    },
    GatewayTimeout(String),
    VersionNotSupported,
    InsufficientStorage,
}

/// An RFC 9457 problem document, as every error body carries it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference to the problem type's documentation (its catalogue entry).
    #[serde(rename = "type")]
    pub type_: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub request_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// A link to the resource the problem is about (the existing duplicate, the holder of a seal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<String>,
    /// On 406: the media types that can be produced.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub available: Option<&'static [&'static str]>,
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 400 for a query parameter of the wrong form, pointing at `query/NAME`.
    pub fn bad_param(name: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: format!("the query parameter {name} is not valid; see errors"),
            errors: vec![FieldError::new(format!("query/{name}"), message)],
        }
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        ApiError::Unprocessable {
            detail: "the request body breaks one or more rules; see errors".into(),
            errors,
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// The catalogue entry this error answers with.
    pub fn status(&self) -> &'static Status {
        use ApiError::*;
        match self {
            BadRequest { .. } => &status::HTTP_400_BAD_REQUEST,
            Unauthorized { .. } => &status::HTTP_401_UNAUTHORIZED,
            Forbidden(_) => &status::HTTP_403_FORBIDDEN,
            NotFound(_) => &status::HTTP_404_NOT_FOUND,
            MethodNotAllowed => &status::HTTP_405_METHOD_NOT_ALLOWED,
            NotAcceptable { .. } => &status::HTTP_406_NOT_ACCEPTABLE,
            RequestTimeout => &status::HTTP_408_REQUEST_TIMEOUT,
            Conflict { .. } => &status::HTTP_409_CONFLICT,
            Gone(_) => &status::HTTP_410_GONE,
            LengthRequired(_) => &status::HTTP_411_LENGTH_REQUIRED,
            PreconditionFailed { .. } | AmbiguousCondition(_) => {
                &status::HTTP_412_PRECONDITION_FAILED
            }
            PayloadTooLarge(_) => &status::HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            UriTooLong { .. } => &status::HTTP_414_REQUEST_URI_TOO_LONG,
            HeaderFieldsTooLarge { .. } => &status::HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE,
            UnsupportedMediaType { .. } => &status::HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            RangeNotSatisfiable { .. } => &status::HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
            ExpectationFailed => &status::HTTP_417_EXPECTATION_FAILED,
            MisdirectedRequest => &status::HTTP_421_MISDIRECTED_REQUEST,
            Unprocessable { .. } => &status::HTTP_422_UNPROCESSABLE_ENTITY,
            Locked(_) => &status::HTTP_423_LOCKED,
            FailedDependency(_) => &status::HTTP_424_FAILED_DEPENDENCY,
            UpgradeRequired => &status::HTTP_426_UPGRADE_REQUIRED,
            PreconditionRequired => &status::HTTP_428_PRECONDITION_REQUIRED,
            TooManyRequests { .. } => &status::HTTP_429_TOO_MANY_REQUESTS,
            UnavailableForLegalReasons { .. } => &status::HTTP_451_UNAVAILABLE_FOR_LEGAL_REASONS,
            Internal(_) => &status::HTTP_500_INTERNAL_SERVER_ERROR,
            NotImplemented(_) => &status::HTTP_501_NOT_IMPLEMENTED,
            BadGateway(_) => &status::HTTP_502_BAD_GATEWAY,
            ServiceUnavailable { .. } => &status::HTTP_503_SERVICE_UNAVAILABLE,
            GatewayTimeout(_) => &status::HTTP_504_GATEWAY_TIMEOUT,
            VersionNotSupported => &status::HTTP_505_HTTP_VERSION_NOT_SUPPORTED,
            InsufficientStorage => &status::HTTP_507_INSUFFICIENT_STORAGE,
        }
    }

    fn detail(&self) -> String {
        use ApiError::*;
        match self {
            BadRequest { detail, .. }
            | Unauthorized { detail, .. }
            | Conflict { detail, .. }
            | Unprocessable { detail, .. }
            | TooManyRequests { detail, .. }
            | ServiceUnavailable { detail, .. } => detail.clone(),
            Forbidden(d)
            | NotFound(d)
            | Gone(d)
            | LengthRequired(d)
            | PayloadTooLarge(d)
            | Locked(d)
            | FailedDependency(d)
            | NotImplemented(d)
            | BadGateway(d)
            | GatewayTimeout(d)
            | AmbiguousCondition(d) => d.clone(),
            MethodNotAllowed => "this resource does not support that method; see Allow".into(),
            NotAcceptable { available } => format!(
                "none of the media types in Accept can be produced; available: {}",
                available.join(", ")
            ),
            RequestTimeout => "the request body did not arrive in time".into(),
            PreconditionFailed { .. } => {
                "If-Match does not match the current ETag; fetch the resource again".into()
            }
            UriTooLong { limit } => format!("the request target is longer than {limit} bytes"),
            HeaderFieldsTooLarge { limit } => {
                format!("the header fields together are longer than {limit} bytes")
            }
            UnsupportedMediaType { accept, .. } => format!("this endpoint takes {accept} bodies"),
            RangeNotSatisfiable { length } => {
                format!("the range lies outside the {length} bytes of the file")
            }
            ExpectationFailed => "only `Expect: 100-continue` is supported".into(),
            MisdirectedRequest => "this server does not answer for that host".into(),
            UpgradeRequired => "this endpoint speaks WebSocket only; send an upgrade".into(),
            PreconditionRequired => "this update needs an If-Match header with the ETag".into(),
            UnavailableForLegalReasons { .. } => "this record is sealed for a legal reason".into(),
            // The cause is logged, not shown.
            Internal(_) => "an unexpected error occurred; quote the request_id".into(),
            VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported".into(),
            InsufficientStorage => "the database cannot store more data; nothing was stored".into(),
        }
    }

    fn headers(&self) -> HeaderMap {
        use ApiError::*;
        let mut h = HeaderMap::new();
        let mut put = |name: HeaderName, value: String| {
            if let Ok(v) = HeaderValue::try_from(value) {
                h.append(name, v);
            }
        };
        match self {
            Unauthorized { invalid_token, .. } => put(
                header::WWW_AUTHENTICATE,
                if *invalid_token {
                    r#"Bearer realm="careq", error="invalid_token""#.into()
                } else {
                    r#"Bearer realm="careq""#.into()
                },
            ),
            RequestTimeout => put(header::CONNECTION, "close".into()),
            PreconditionFailed { current_etag } => put(header::ETAG, current_etag.clone()),
            UnsupportedMediaType { accept, method } => match method {
                BodyMethod::Post => put(HeaderName::from_static("accept-post"), (*accept).into()),
                BodyMethod::Patch => put(HeaderName::from_static("accept-patch"), (*accept).into()),
                BodyMethod::Put => {}
            },
            RangeNotSatisfiable { length } => {
                put(header::CONTENT_RANGE, format!("bytes */{length}"))
            }
            UpgradeRequired => {
                put(header::UPGRADE, "websocket".into());
                put(header::CONNECTION, "Upgrade".into());
            }
            TooManyRequests {
                retry_after, rate, ..
            } => {
                put(header::RETRY_AFTER, retry_after.to_string());
                if let Some(r) = rate {
                    put_rate_headers(r, &mut put);
                }
            }
            ServiceUnavailable { retry_after, .. } => {
                put(header::RETRY_AFTER, retry_after.to_string())
            }
            UnavailableForLegalReasons { blocked_by } => {
                put(header::LINK, format!("<{blocked_by}>; rel=\"blocked-by\""))
            }
            VersionNotSupported => put(header::CONNECTION, "close".into()),
            _ => {}
        }
        h
    }

    /// Builds the problem document for this error in the current request's context.
    pub fn problem(&self) -> Problem {
        let st = self.status();
        let ctx = context::current();
        let (errors, related, available) = match self {
            ApiError::BadRequest { errors, .. } | ApiError::Unprocessable { errors, .. } => {
                (errors.clone(), None, None)
            }
            ApiError::Conflict { existing, .. } => (Vec::new(), existing.clone(), None),
            ApiError::UnavailableForLegalReasons { blocked_by } => {
                (Vec::new(), Some(blocked_by.clone()), None)
            }
            ApiError::NotAcceptable { available } => (Vec::new(), None, Some(*available)),
            _ => (Vec::new(), None, None),
        };
        Problem {
            type_: problem_type(st.code),
            title: st.reason,
            status: st.code,
            detail: self.detail(),
            instance: ctx.as_ref().map(|c| c.path.clone()),
            request_id: ctx
                .map(|c| c.request_id)
                .unwrap_or_else(|| "unknown".into()),
            errors,
            related,
            available,
        }
    }
}

/// Problem types are the catalogue entries themselves, so every `type` resolves to its
/// documentation on the same server.
pub fn problem_type(code: u16) -> String {
    format!("/v1/status-codes/{code}")
}

fn put_rate_headers(r: &RateInfo, put: &mut impl FnMut(HeaderName, String)) {
    put(
        HeaderName::from_static("ratelimit-limit"),
        r.limit.to_string(),
    );
    put(
        HeaderName::from_static("ratelimit-remaining"),
        r.remaining.to_string(),
    );
    put(
        HeaderName::from_static("ratelimit-reset"),
        r.reset_seconds.to_string(),
    );
}

/// Adds `RateLimit-*` headers to a successful response.
pub fn rate_headers(r: RateInfo) -> HeaderMap {
    let mut h = HeaderMap::new();
    put_rate_headers(&r, &mut |n, v| {
        if let Ok(v) = HeaderValue::try_from(v) {
            h.append(n, v);
        }
    });
    h
}

/// Marks a response as an error so the request middleware can log it with its cause.
#[derive(Debug, Clone)]
pub struct ErrorLog {
    pub status: u16,
    pub cause: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (self.status().to_http(), body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res.headers_mut().extend(self.headers());
        let cause = match &self {
            ApiError::Internal(c) => Some(c.clone()),
            _ => None,
        };
        res.extensions_mut().insert(ErrorLog {
            status: problem.status,
            cause,
        });
        res
    }
}

/// Renders an error as raw HTTP/1.1 bytes, for answers the accept loop writes before hyper
/// sees the connection (505, 414 and malformed request lines). The connection is closed after.
pub fn raw_response(err: &ApiError, request_id: &str) -> Vec<u8> {
    let mut problem = err.problem();
    problem.request_id = request_id.to_string();
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let st = err.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\nconnection: close\r\nx-request-id: {request_id}\r\nx-content-type-options: nosniff\r\ncache-control: no-store\r\n",
        st.code,
        st.reason,
        body.len()
    );
    for (name, value) in err.headers().iter() {
        if name != header::CONNECTION {
            if let Ok(v) = value.to_str() {
                out.push_str(&format!("{}: {}\r\n", name, v));
            }
        }
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// What a 503 caused by the database tells clients to wait.
pub const RETRY_AFTER_SECS: u64 = 2;

/// The one place storage failures become answers.
impl From<careq_store::StoreError> for ApiError {
    fn from(err: careq_store::StoreError) -> Self {
        use careq_store::StoreError;
        match err {
            StoreError::NotFound => ApiError::NotFound("no such resource".into()),
            StoreError::Conflict => ApiError::Conflict {
                detail: "a resource with the same unique key already exists".into(),
                existing: None,
            },
            StoreError::Full => ApiError::InsufficientStorage,
            StoreError::Busy => ApiError::ServiceUnavailable {
                detail: "the database is busy; try again shortly".into(),
                retry_after: RETRY_AFTER_SECS,
            },
            StoreError::Other(e) => ApiError::internal(format!("database: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_variants() -> Vec<(ApiError, u16)> {
        vec![
            (ApiError::bad_request("x"), 400),
            (
                ApiError::Unauthorized {
                    detail: "x".into(),
                    invalid_token: false,
                },
                401,
            ),
            (ApiError::Forbidden("x".into()), 403),
            (ApiError::NotFound("x".into()), 404),
            (ApiError::MethodNotAllowed, 405),
            (
                ApiError::NotAcceptable {
                    available: &["a/b"],
                },
                406,
            ),
            (ApiError::RequestTimeout, 408),
            (
                ApiError::Conflict {
                    detail: "x".into(),
                    existing: None,
                },
                409,
            ),
            (ApiError::Gone("x".into()), 410),
            (ApiError::LengthRequired("x".into()), 411),
            (
                ApiError::PreconditionFailed {
                    current_etag: "\"1\"".into(),
                },
                412,
            ),
            (ApiError::AmbiguousCondition("x".into()), 412),
            (ApiError::PayloadTooLarge("x".into()), 413),
            (ApiError::UriTooLong { limit: 1 }, 414),
            (ApiError::HeaderFieldsTooLarge { limit: 1 }, 431),
            (
                ApiError::UnsupportedMediaType {
                    accept: "application/json",
                    method: BodyMethod::Post,
                },
                415,
            ),
            (ApiError::RangeNotSatisfiable { length: 1 }, 416),
            (ApiError::ExpectationFailed, 417),
            (ApiError::MisdirectedRequest, 421),
            (ApiError::invalid(vec![]), 422),
            (ApiError::Locked("x".into()), 423),
            (ApiError::FailedDependency("x".into()), 424),
            (ApiError::UpgradeRequired, 426),
            (ApiError::PreconditionRequired, 428),
            (
                ApiError::TooManyRequests {
                    detail: "x".into(),
                    retry_after: 1,
                    rate: None,
                },
                429,
            ),
            (
                ApiError::UnavailableForLegalReasons {
                    blocked_by: "/x".into(),
                },
                451,
            ),
            (ApiError::internal("boom"), 500),
            (ApiError::NotImplemented("x".into()), 501),
            (ApiError::BadGateway("x".into()), 502),
            (
                ApiError::ServiceUnavailable {
                    detail: "x".into(),
                    retry_after: 1,
                },
                503,
            ),
            (ApiError::GatewayTimeout("x".into()), 504),
            (ApiError::VersionNotSupported, 505),
            (ApiError::InsufficientStorage, 507),
        ]
    }

    #[test]
    fn each_variant_maps_to_its_status_and_a_problem_body() {
        for (err, code) in all_variants() {
            assert_eq!(err.status().code, code, "{err:?}");
            let res = err.into_response();
            assert_eq!(res.status().as_u16(), code);
            assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        }
    }

    #[test]
    fn every_produced_error_status_has_a_variant() {
        let covered: Vec<u16> = all_variants().iter().map(|(_, c)| *c).collect();
        for st in careq_status::ALL
            .iter()
            .filter(|s| s.is_error() && s.usage.is_sent())
        {
            assert!(covered.contains(&st.code), "no ApiError for {}", st.code);
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::internal("SELECT * FROM secret at /src/db.rs:12");
        let body = serde_json::to_string(&err.problem()).unwrap();
        assert!(!body.contains("SELECT") && !body.contains("src/"));
    }

    #[test]
    fn headers_that_must_come_with_the_status_are_set() {
        let cases: Vec<(ApiError, &str)> = vec![
            (
                ApiError::Unauthorized {
                    detail: "x".into(),
                    invalid_token: true,
                },
                "www-authenticate",
            ),
            (ApiError::RequestTimeout, "connection"),
            (
                ApiError::PreconditionFailed {
                    current_etag: "\"1\"".into(),
                },
                "etag",
            ),
            (ApiError::RangeNotSatisfiable { length: 3 }, "content-range"),
            (ApiError::UpgradeRequired, "upgrade"),
            (
                ApiError::ServiceUnavailable {
                    detail: "x".into(),
                    retry_after: 5,
                },
                "retry-after",
            ),
            (
                ApiError::UnavailableForLegalReasons {
                    blocked_by: "/v1/x".into(),
                },
                "link",
            ),
        ];
        for (err, name) in cases {
            let res = err.into_response();
            assert!(res.headers().contains_key(name), "{name} missing");
        }
    }
}
