//! How FHIR requests are read and answered: resource bodies in (`application/fhir+json` or
//! `application/json`, through the native body reader), versioned resources and Bundles out.
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use http::header::{self, HeaderValue};
use serde_json::Value;

use crate::config::Config;
use crate::error::{ApiError, BodyMethod};
use crate::http::conditional::Representation;
use crate::http::extract::{parse_json, read_body};
use crate::http::precondition::version_etag;

pub const FHIR_JSON: &str = "application/fhir+json";

/// A FHIR resource body: `application/fhir+json` or `application/json`, read within the same
/// limits and with the same errors as every JSON body.
pub struct FhirBody(pub Value);

impl<S> FromRequest<S> for FhirBody
where
    S: Send + Sync,
    std::sync::Arc<Config>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = std::sync::Arc::<Config>::from_ref(state);
        let media = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if !matches!(media.as_deref(), Some(FHIR_JSON) | Some("application/json")) {
            let method = if req.method() == http::Method::PUT {
                BodyMethod::Put
            } else {
                BodyMethod::Post
            };
            return Err(ApiError::UnsupportedMediaType {
                accept: FHIR_JSON,
                method,
            });
        }
        let bytes = read_body(req.into_body(), &config).await?;
        parse_json::<Value>(&bytes).map(FhirBody)
    }
}

/// A versioned resource's answer: `ETag` from the version (weak once it leaves), `Last-Modified`,
/// and 304 on a matching `If-None-Match`.
pub fn versioned(body: &Value, version: i64, updated_at: &str) -> Representation {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut rep = Representation::new(bytes, FHIR_JSON).modified(crate::clock::unix_of(updated_at));
    rep.etag = version_etag(version);
    rep
}

pub fn created(body: &Value, version: i64, updated_at: &str, location: &str) -> Response {
    let mut rep = versioned(body, version, updated_at).status(StatusCode::CREATED);
    if let Ok(v) = HeaderValue::from_str(location) {
        rep.extra.insert(header::LOCATION, v);
    }
    rep.respond(&HeaderMap::new())
}

pub fn bundle_response(b: &Value) -> Response {
    Representation::new(serde_json::to_vec(b).unwrap_or_default(), FHIR_JSON)
        .respond(&HeaderMap::new())
}
