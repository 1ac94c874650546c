//! The application's state: what every handler can reach. It sits below the features (they
//! import it; it imports none of their handlers), so building the app (`startup`) is the one
//! place that knows every feature.
use std::sync::Arc;

use crate::auth::throttle::{LoginThrottle, RateLimiter};
use crate::config::Config;
use crate::store::Store;
use crate::telemetry::Metrics;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Store,
    pub metrics: Arc<Metrics>,
    pub throttle: Arc<LoginThrottle>,
    pub limiter: Arc<RateLimiter>,
    /// Tickets per kiosk key.
    pub kiosk_limiter: Arc<RateLimiter>,
    /// The origin every absolute link starts with (`CAREQ_PUBLIC_URL`, or the bound address).
    pub public_url: crate::config::PublicUrl,
    /// Encrypts cursors whose sort keys hold patient names.
    pub cursor_seal: crate::http::cursor_seal::CursorSeal,
    /// Bounds concurrent Argon2 work (sign-in, password changes).
    pub hashing: Arc<crate::auth::password::HashGate>,
    pub maintenance: Arc<crate::ops::mode::Maintenance>,
    /// Permits for requests in flight; when none is left, requests are shed with 503.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Every queue change, for live clients.
    pub events: tokio::sync::broadcast::Sender<crate::queue::events::QueueEvent>,
    /// Open live sockets per clinic.
    pub sockets: Arc<crate::queue::events::SocketCounts>,
    /// The webhook notifier (one client for the process).
    pub notifier: Arc<crate::queue::notifier::Notifier>,
    /// Turns true when the server starts shutting down: live sockets close with 1001.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Wakes this process's export runner when a job is queued.
    pub jobs: Arc<tokio::sync::Notify>,
}

impl axum::extract::FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Self {
        state.config.clone()
    }
}
