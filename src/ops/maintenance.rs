//! Maintenance mode: `POST /v1/admin/maintenance {enabled, retry_after_seconds}` (admin). While
//! it is on, every API call except an admin's (and signing in or out) answers 503 with
//! `Retry-After`, and so does `/readyz`.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub use super::mode::Maintenance;
use crate::auth::{perm, Require};
use crate::error::{ApiError, FieldError};
use crate::http::extract::JsonBody;
use crate::state::AppState;

/// The gate every request passes after the global checks: while maintenance is on, the API
/// answers 503 with `Retry-After`, except to an admin and to signing in (admins need a token to
/// end maintenance).
pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(retry_after) = state.maintenance.retry_after() {
        let token = bearer_token(&req);
        if in_maintenance_scope(&req) && !is_admin(&state, token).await {
            return Maintenance::error(retry_after).into_response();
        }
    }
    next.run(req).await
}

/// During maintenance the API answers 503, except signing in or out (admins need a token to
/// end maintenance).
fn in_maintenance_scope(req: &Request) -> bool {
    let path = req.uri().path();
    path.starts_with("/v1/") && path != "/v1/auth/token"
}

/// Whether the request carries a live admin token. The caller is not cached here, so the
/// handler's own authentication (and rate limit) still runs.
async fn is_admin(state: &AppState, token: Option<String>) -> bool {
    let Some(token) = token else {
        return false;
    };
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    matches!(
        crate::auth::tokens::authenticate(&state.db, token.trim(), ip).await,
        Ok(Some(c)) if c.role == crate::auth::Role::Admin
    )
}

fn bearer_token(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned)
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/maintenance", post(set_maintenance))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceState {
    pub enabled: bool,
    /// What `Retry-After` says while maintenance is on (1–86400, default 60).
    #[serde(default = "default_retry")]
    #[schema(minimum = 1, maximum = 86400)]
    pub retry_after_seconds: u64,
}

fn default_retry() -> u64 {
    60
}

/// Turn maintenance mode on or off (admin)
#[utoipa::path(post, path = "/v1/admin/maintenance", tag = "operations", request_body = MaintenanceState,
    responses((status = 200, description = "The new state", body = MaintenanceState),
        (status = 403, description = "Not an admin")))]
pub async fn set_maintenance(
    State(st): State<AppState>,
    _admin: Require<perm::ManageUsers>,
    JsonBody(req): JsonBody<MaintenanceState>,
) -> Result<Json<MaintenanceState>, ApiError> {
    if !(1..=86_400).contains(&req.retry_after_seconds) {
        return Err(ApiError::invalid(vec![FieldError::new(
            "/retry_after_seconds",
            "between 1 and 86400",
        )]));
    }
    st.maintenance
        .set(req.enabled.then_some(req.retry_after_seconds));
    tracing::warn!(enabled = req.enabled, "maintenance mode changed");
    Ok(Json(req))
}

impl crate::http::extract::BodyRules for MaintenanceState {}
