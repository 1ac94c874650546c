//! Building the application: its state, the router assembled from every feature's `router()`,
//! the database and the listener; and running it until shutdown.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::throttle::{LoginThrottle, RateLimiter};
use crate::config::Config;
use crate::http::{server, App, HttpState};
use crate::ops::maintenance::Maintenance;
use crate::telemetry::Metrics;
use tokio::sync::Semaphore;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;
use http::{Extensions, HeaderMap, StatusCode, Version};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::CompressionLayer;

use crate::error::ApiError;
pub use crate::state::AppState;
use crate::store::Store;

mod admin;

/// What the HTTP mechanism takes from the app's state.
fn http_state(state: &AppState) -> HttpState {
    HttpState {
        config: state.config.clone(),
        in_flight: state.in_flight.clone(),
        metrics: state.metrics.clone(),
    }
}

/// The whole application: every resource's routes plus the global HTTP behaviour.
///
/// The global middleware wraps the finished router as a service rather than `Router::layer`,
/// which would run it inside each route, before axum adds `Allow` and `Content-Length`.
pub fn app(state: AppState) -> App {
    let mut routes = Router::new()
        .merge(crate::catalogue::router())
        .merge(crate::ops::router())
        .merge(crate::openapi::router())
        .merge(crate::ops::maintenance::router())
        .merge(crate::auth::routes::router())
        .merge(crate::access::routes::router())
        .merge(crate::users::router())
        .merge(crate::clinics::router())
        .merge(crate::patients::router(&state))
        .merge(crate::queue::router())
        .merge(crate::appointments::router())
        .merge(crate::exports::router())
        .merge(crate::desk::router())
        .merge(crate::fhir::router());
    if state.config.test_routes {
        routes = routes
            .route("/v1/_test/panic", axum::routing::get(deliberate_panic))
            .route(
                "/v1/_test/echo",
                axum::routing::post(echo).put(echo).patch(echo),
            );
    }
    let router = routes
        .route_layer(from_fn(crate::http::middleware::tag_route))
        .fallback(|| async { ApiError::NotFound("no resource at this path".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone());
    let http = http_state(&state);
    ServiceBuilder::new()
        .layer(from_fn_with_state(
            http.clone(),
            crate::http::middleware::request_context,
        ))
        .layer(from_fn(crate::http::conditional::encoded_etags))
        // Files served by byte ranges (`Accept-Ranges: bytes`) go out as stored: a range, a
        // length and a resumed download must all count the same bytes.
        .layer(
            CompressionLayer::new().compress_when(DefaultPredicate::new().and(
                |_: StatusCode, _: Version, h: &HeaderMap, _: &Extensions| {
                    !h.contains_key(http::header::ACCEPT_RANGES)
                },
            )),
        )
        .map_response(|res: http::Response<_>| res.map(axum::body::Body::new))
        // FHIR answers (errors from the guards below included) leave as FHIR.
        .layer(from_fn(crate::fhir::outcome::render))
        .layer(from_fn_with_state(http, crate::http::middleware::guards))
        .layer(from_fn_with_state(state, crate::ops::maintenance::gate))
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

impl crate::http::extract::BodyRules for Echo {}

async fn echo(
    crate::http::extract::JsonBody(body): crate::http::extract::JsonBody<Echo>,
) -> axum::Json<Echo> {
    axum::Json(body)
}

pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    tls: Option<Arc<crate::http::tls::Certificates>>,
}

fn bind_address(listen: &str) -> String {
    if listen.starts_with(':') {
        format!("127.0.0.1{listen}")
    } else {
        listen.to_string()
    }
}

impl Application {
    /// Binds the listeners, then opens and migrates the database and makes sure an active
    /// admin exists. Nothing is served yet. What can fail without the database (TLS files, the
    /// addresses, the notifier's CA file) fails first, so a wrong setting leaves no database and
    /// no password behind.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::http::tls::Certificates::load(cert, key)?),
            (None, None) => None,
            _ => anyhow::bail!("set both CAREQ_TLS_CERT and CAREQ_TLS_KEY, or neither"),
        };
        let notifier = Arc::new(crate::queue::notify::Notifier::from_config(&config)?);
        let addr = bind_address(&config.listen);
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding {addr} (CAREQ_LISTEN)"))?;
        let metrics_listener = match &config.metrics_listen {
            Some(listen) => {
                let addr = bind_address(listen);
                Some(
                    TcpListener::bind(&addr)
                        .await
                        .with_context(|| format!("binding {addr} (CAREQ_METRICS_LISTEN)"))?,
                )
            }
            None => None,
        };
        let db = crate::store::Store::open(crate::store::Options {
            url: config.database_url.clone(),
            max_bytes: config.db_max_bytes,
            busy_timeout: std::time::Duration::from_millis(config.db_busy_timeout_ms),
            write_queue: config.write_queue,
        })
        .await
        .context("opening the database")?;
        backfill(&db).await.context("opening the database")?;
        admin::ensure(&db, &config)
            .await
            .context("making sure an active admin exists")?;
        let cursor_seal = crate::http::cursor_seal::CursorSeal::load(&db)
            .await
            .map_err(|e| anyhow::anyhow!("loading the cursor secret: {}", e.problem().detail))?;
        let public_url = match &config.public_url {
            Some(url) => url.clone(),
            // Port 0 is resolved: links name the port actually bound.
            None => crate::config::PublicUrl::of_address(
                tls.is_some(),
                listener.local_addr().context("reading the bound address")?,
            ),
        };
        let state = AppState {
            db,
            metrics: Arc::new(Metrics::default()),
            throttle: Arc::new(LoginThrottle::new(config.login_attempts)),
            limiter: Arc::new(RateLimiter::new(config.rate_per_second, config.rate_burst)),
            kiosk_limiter: Arc::new(RateLimiter::per_minute(
                config.kiosk_per_minute,
                config.kiosk_burst,
                "this kiosk has issued too many tickets; wait a moment",
            )),
            public_url,
            cursor_seal,
            hashing: Arc::new(crate::auth::password::HashGate::new(
                config.password_hash_slots,
                config.password_hash_per_address,
            )),
            maintenance: Arc::new(Maintenance::default()),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            events: crate::queue::live::channel(),
            sockets: Arc::default(),
            notifier,
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            jobs: Arc::new(tokio::sync::Notify::new()),
            config: Arc::new(config),
        };
        crate::exports::runner::spawn(state.clone());
        tokio::spawn(crate::queue::live::relay_announcements(state.clone()));
        // Histogram samples are folded into buckets now and then; the task ends with the app.
        let metrics = Arc::downgrade(&state.metrics);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                match metrics.upgrade() {
                    Some(m) => m.upkeep(),
                    None => return,
                }
            }
        });
        Ok(Self {
            listener,
            metrics_listener,
            state,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served without a token, when `CAREQ_METRICS_LISTEN` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let address = self.local_addr();
        let public_url = &self.state.public_url;
        tracing::info!(address = %address, tls = self.tls.is_some(), public_url = %public_url, "careq listening");
        if self.tls.is_none() && !address.ip().is_loopback() {
            tracing::warn!(
                address = %address,
                "serving plain HTTP on a non-loopback address: bearer tokens need TLS \
                 (RFC 6750 §5.3); set CAREQ_TLS_CERT and CAREQ_TLS_KEY or put careq behind a \
                 TLS proxy"
            );
        }
        if self.state.config.public_url.is_none() && address.ip().is_unspecified() {
            tracing::warn!(
                public_url = %public_url,
                "links (FHIR fullUrl, Bundle links, Location) name the unspecified address \
                 careq listens on; set CAREQ_PUBLIC_URL to the origin clients use"
            );
        }
        let acceptor = match &self.tls {
            Some(certs) => {
                reload_on_sighup(certs.clone());
                Some(certs.acceptor().map_err(std::io::Error::other)?)
            }
            None => None,
        };
        let router = app(self.state.clone());
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(listener) = self.metrics_listener {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(address = %addr, "metrics listening");
            }
            let metrics_app = ServiceBuilder::new()
                .layer(from_fn_with_state(
                    http_state(&self.state),
                    crate::http::middleware::request_context,
                ))
                .service(
                    crate::ops::metrics_only_router()
                        .fallback(|| async {
                            ApiError::NotFound("only /metrics is served here".into())
                        })
                        .with_state(self.state.clone()),
                )
                .boxed_clone();
            let config = self.state.config.clone();
            tokio::spawn(async move {
                let _ = server::serve(listener, metrics_app, config, None, async {
                    let _ = metrics_stopped.await;
                })
                .await;
            });
        }
        let stopping = self.state.stopping.clone();
        let shutdown = async move {
            shutdown.await;
            // Live boards hear "going away" (1001) and reconnect at once, to the next process.
            stopping.send_replace(true);
        };
        let result = server::serve(
            self.listener,
            router,
            self.state.config.clone(),
            acceptor,
            shutdown,
        )
        .await;
        // Give the sockets' close frames a moment to leave.
        for _ in 0..40 {
            if self.state.sockets.total() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = stop_metrics.send(());
        self.state.db.close().await;
        result
    }
}

/// Brings stored patients up to what this version's searches and duplicate checks read (their
/// search keys and identity keys). Every command that opens the database runs it right after
/// opening, before anything else reads or writes patients.
pub async fn backfill(db: &Store) -> anyhow::Result<()> {
    crate::patients::records::backfill(db).await.map_err(|e| {
        // An operator reads this: the cause, not the API's words for an unexpected error.
        let why = match &e {
            ApiError::Internal(cause) => cause.clone(),
            other => other.problem().detail,
        };
        anyhow::anyhow!("giving stored patients their search and duplicate keys: {why}")
    })
}

/// Re-reads the certificate and key on every SIGHUP; a failed read keeps the pair in use.
fn reload_on_sighup(certs: Arc<crate::http::tls::Certificates>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangups.recv().await.is_some() {
            match certs.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "TLS certificate reload failed; keeping the old one")
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = certs;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
