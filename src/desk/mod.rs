//! The front desk: staff pages (sign-in, reception, counter) and the patients' kiosk, served by
//! the binary itself as plain HTML, CSS and scripts (no framework, no CDN, no external fonts)
//! under a strict Content-Security-Policy. The pages use the native API like any client; the
//! kiosk's one write endpoint lives in `kiosk.rs`.
pub mod kiosk;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::http::pages::{html, static_file};
use crate::state::AppState;

/// No inline script or style anywhere; the pages talk only to this server.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/desk", get(|h: HeaderMap| page(h, SIGN_IN)))
        .route("/desk/reception", get(|h: HeaderMap| page(h, RECEPTION)))
        .route("/desk/counter", get(|h: HeaderMap| page(h, COUNTER)))
        .route("/desk/assets/{name}", get(asset))
        .route("/kiosk/{clinic_id}", get(|h: HeaderMap| page(h, KIOSK)))
        .route("/v1/clinics/{id}/kiosk", post(kiosk::rotate_kiosk_key))
        .route("/v1/clinics/{id}/kiosk/tickets", post(kiosk::take_number))
}

const SIGN_IN: &str = include_str!("assets/signin.html");
const RECEPTION: &str = include_str!("assets/reception.html");
const COUNTER: &str = include_str!("assets/counter.html");
const KIOSK: &str = include_str!("assets/kiosk.html");

/// The scripts and the stylesheet the pages load, by name.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "desk.css",
        "text/css; charset=utf-8",
        include_str!("assets/desk.css"),
    ),
    ("common.js", JS, include_str!("assets/common.js")),
    ("signin.js", JS, include_str!("assets/signin.js")),
    ("reception.js", JS, include_str!("assets/reception.js")),
    ("counter.js", JS, include_str!("assets/counter.js")),
    ("kiosk.js", JS, include_str!("assets/kiosk.js")),
];
const JS: &str = "text/javascript; charset=utf-8";

async fn page(headers: HeaderMap, body: &'static str) -> Response {
    html(&headers, body, PAGE_CSP)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ApiError::NotFound("no desk asset with this name".into()))?;
    Ok(static_file(&headers, body, content_type))
}
