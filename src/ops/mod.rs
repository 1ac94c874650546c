//! Operations endpoints: liveness, readiness, metrics, the OpenAPI document and its docs page.
pub mod maintenance;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::header::{self, HeaderValue};
use http::HeaderMap;
use serde::Serialize;

use crate::error::ApiError;
use crate::http::conditional::Representation;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs_page))
        .route("/docs/app.js", get(docs_script))
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

/// This OpenAPI 3.1 document
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The spec", content_type = "application/json", body = Object,
        headers(("ETag" = String, description = "Strong validator"))),
        (status = 304, description = "Not modified")),
    security(()))]
pub async fn openapi_json(headers: HeaderMap) -> Response {
    let spec = crate::openapi::spec();
    Representation::json(&spec)
        .cache("public, max-age=300")
        .respond(&headers)
}

/// The docs page: plain HTML and a script from this binary, no CDN.
const DOCS_HTML: &str = include_str!("docs.html");
const DOCS_JS: &str = include_str!("docs.js");
const HTML_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

pub async fn docs_page(headers: HeaderMap) -> Response {
    let mut rep = Representation::new(DOCS_HTML.as_bytes().to_vec(), "text/html; charset=utf-8")
        .cache("public, max-age=300");
    rep.extra.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(HTML_CSP),
    );
    rep.respond(&headers)
}

pub async fn docs_script(headers: HeaderMap) -> Response {
    Representation::new(
        DOCS_JS.as_bytes().to_vec(),
        "text/javascript; charset=utf-8",
    )
    .cache("public, max-age=300")
    .respond(&headers)
}
