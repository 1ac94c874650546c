//! Operations endpoints: liveness, readiness, metrics and the docs page (the OpenAPI document
//! itself is served by `openapi`).
pub mod maintenance;
pub mod mode;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::header::{self, HeaderValue};
use http::HeaderMap;
use serde::Serialize;

use crate::error::ApiError;
use crate::http::conditional::Representation;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/docs", get(docs_page))
        .route(DOCS_BUNDLE_PATH, get(docs_bundle))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// Liveness: the process answers
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)), security(()))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Health)), security(()))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if let Some(retry_after) = state.maintenance.retry_after() {
        return Err(maintenance::Maintenance::error(retry_after));
    }
    if state.db.ping().await {
        Ok(Json(Health { status: "ok" }))
    } else {
        Err(ApiError::ServiceUnavailable {
            detail: "the database does not answer".into(),
            retry_after: crate::store::RETRY_AFTER_SECS,
        })
    }
}

/// Prometheus metrics (admin; or unauthenticated on `CAREQ_METRICS_LISTEN` only)
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 403, description = "Not an admin")))]
pub async fn metrics(
    State(state): State<AppState>,
    _admin: crate::auth::Require<crate::auth::perm::ReadMetrics>,
) -> Response {
    exposition(&state).await
}

/// The metrics router for `CAREQ_METRICS_LISTEN`: `/metrics` without a token (that address is
/// meant to be reachable by the scraper only), nothing else.
pub fn metrics_only_router() -> Router<AppState> {
    Router::new().route(
        "/metrics",
        get(|State(state): State<AppState>| async move { exposition(&state).await }),
    )
}

/// How often records are sealed or their logs read is itself sensitive: never public.
async fn exposition(state: &AppState) -> Response {
    // A scrape must not fail because the database is busy: the per-clinic gauge is then left out.
    let waiting = crate::queue::waiting_per_clinic(&state.db)
        .await
        .unwrap_or_default();
    let gauges = crate::telemetry::Gauges {
        in_flight: state
            .config
            .max_in_flight
            .max(1)
            .saturating_sub(state.in_flight.available_permits()),
        sockets: state.sockets.total(),
        write_queue: state.db.write_queue_depth(),
        waiting,
    };
    let mut res = state.metrics.render(&gauges).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// The docs page: a RapiDoc reference UI over `/openapi.json`, its bundle vendored from npm
/// (`src/ops/vendor/`, MIT) and served from this binary: no CDN, no web fonts.
const DOCS_HTML: &str = include_str!("docs.html");
/// The bundle's path names its version, so it can be cached for a year: a new version is a new
/// path (and `docs.html` names it).
pub const DOCS_BUNDLE_PATH: &str = "/docs/rapidoc-9.3.8.min.js";
const DOCS_BUNDLE: &[u8] = include_bytes!("vendor/rapidoc-min.js");
/// Scripts only from this origin and no `eval`. RapiDoc styles its web components with inline
/// `<style>` and `style=` attributes inside their shadow roots, hence `'unsafe-inline'` for
/// styles (and only styles) on this page; icons are `data:` SVG images.
const HTML_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; font-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

pub async fn docs_page(headers: HeaderMap) -> Response {
    let mut rep = Representation::new(DOCS_HTML.as_bytes().to_vec(), "text/html; charset=utf-8")
        .cache("public, max-age=300");
    rep.extra.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(HTML_CSP),
    );
    rep.respond(&headers)
}

pub async fn docs_bundle(headers: HeaderMap) -> Response {
    // Its tag is computed once: hashing 850 KB on every request would be waste.
    static ETAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let etag = ETAG
        .get_or_init(|| crate::http::conditional::etag_of(DOCS_BUNDLE))
        .clone();
    Representation {
        body: DOCS_BUNDLE.to_vec(),
        content_type: "text/javascript; charset=utf-8",
        etag,
        last_modified: None,
        cache_control: "public, max-age=31536000, immutable",
        status: http::StatusCode::OK,
        extra: HeaderMap::new(),
    }
    .respond(&headers)
}
