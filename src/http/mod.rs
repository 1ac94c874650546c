//! HTTP mechanism, importing no feature: the accept loop, the middleware that applies careq's
//! global HTTP rules once for every route, extractors, conditional requests, paging and
//! negotiation. The application state and the router are assembled in `startup`.
pub mod conditional;
pub mod context;
pub mod cors;
pub mod csv_out;
pub mod cursor_seal;
pub mod extract;
pub mod middleware;
pub mod negotiate;
pub mod pages;
pub mod paging;
pub mod precondition;
pub mod range;
pub mod resource;
pub mod server;
pub mod shape;
pub mod tls;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use tower::util::BoxCloneService;

/// The application as one service: what the accept loop calls for every request.
pub type App = BoxCloneService<Request, Response, Infallible>;

/// What the HTTP mechanism needs from the application: its configuration, the permits for
/// requests in flight, and the metrics it records. Built from the app's state in `startup`.
#[derive(Clone)]
pub struct HttpState {
    pub config: Arc<crate::config::Config>,
    pub in_flight: Arc<tokio::sync::Semaphore>,
    pub metrics: Arc<crate::telemetry::Metrics>,
}
