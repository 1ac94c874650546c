//! HTTP assembly: shared state, the router built from each resource's `router()`, and the
//! middleware that applies careq's global HTTP rules once for every route.
pub mod conditional;
pub mod context;
pub mod cors;
pub mod extract;
pub mod idempotency;
pub mod middleware;
pub mod negotiate;
pub mod paging;
pub mod precondition;
pub mod resource;
pub mod server;

use std::sync::Arc;

use std::convert::Infallible;

use axum::extract::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::Router;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt};

use crate::auth::throttle::{LoginThrottle, RateLimiter};
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::telemetry::Metrics;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub metrics: Arc<Metrics>,
    pub throttle: Arc<LoginThrottle>,
    pub limiter: Arc<RateLimiter>,
    /// Bounds concurrent Argon2 work (sign-in, password changes).
    pub hashing: Arc<crate::auth::password::HashGate>,
    pub maintenance: Arc<crate::ops::maintenance::Maintenance>,
    /// Permits for requests in flight; when none is left, requests are shed with 503.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Every queue change, for live clients.
    pub events: tokio::sync::broadcast::Sender<crate::queue::live::QueueEvent>,
}

/// The application as one service: what the accept loop calls for every request.
pub type App = BoxCloneService<Request, Response, Infallible>;

/// The whole application: every resource's routes plus the global HTTP behaviour.
///
/// The global middleware wraps the finished router as a service rather than `Router::layer`,
/// which would run it inside each route, before axum adds `Allow` and `Content-Length`.
pub fn app(state: AppState) -> App {
    let mut routes = Router::new()
        .merge(crate::catalogue::router())
        .merge(crate::ops::router())
        .merge(crate::ops::maintenance::router())
        .merge(crate::auth::routes::router())
        .merge(crate::users::router())
        .merge(crate::clinics::router())
        .merge(crate::patients::router(&state))
        .merge(crate::queue::router())
        .merge(crate::appointments::router());
    if state.config.test_routes {
        routes = routes
            .route("/v1/_test/panic", axum::routing::get(deliberate_panic))
            .route(
                "/v1/_test/echo",
                axum::routing::post(echo).put(echo).patch(echo),
            );
    }
    let router = routes
        .route_layer(from_fn(middleware::tag_route))
        .fallback(|| async { ApiError::NotFound("no resource at this path".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone());
    ServiceBuilder::new()
        .layer(from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .layer(from_fn_with_state(state, middleware::guards))
        .service(router)
        .boxed_clone()
}

/// Test-only handler showing that a panic becomes a 500 problem and the server keeps serving.
async fn deliberate_panic() -> &'static str {
    panic!("deliberate panic for tests")
}

/// Test-only shape for exercising the JSON body extractor.
#[derive(serde::Deserialize, serde::Serialize)]
struct Echo {
    name: String,
    count: u32,
}

async fn echo(extract::JsonBody(body): extract::JsonBody<Echo>) -> axum::Json<Echo> {
    axum::Json(body)
}
