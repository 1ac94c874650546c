//! Building the application (database, migrations, listener) and running it until shutdown.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::throttle::{LoginThrottle, RateLimiter};
use crate::config::Config;
use crate::http::{app, server, AppState};
use crate::ops::maintenance::Maintenance;
use crate::telemetry::Metrics;
use tokio::sync::Semaphore;

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens the database, migrates it and binds the listener. Nothing is served yet.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = crate::db::Db::open(crate::db::Options {
            url: config.database_url.clone(),
            max_bytes: config.db_max_bytes,
            busy_timeout: std::time::Duration::from_millis(config.db_busy_timeout_ms),
            write_queue: config.write_queue,
        })
        .await
        .context("opening the database")?;
        let generated = crate::users::bootstrap_admin(&db, config.admin_password.as_deref())
            .await
            .map_err(|e| anyhow::anyhow!("creating the first admin: {}", e.problem().detail))?;
        if let Some(password) = generated {
            // Shown once on the terminal, never logged.
            eprintln!(
                "careq: created user `admin` with password {password}\n\
                 careq: it is shown only this once; change it with `careq user passwd admin`"
            );
        }
        let addr = if config.listen.starts_with(':') {
            format!("127.0.0.1{}", config.listen)
        } else {
            config.listen.clone()
        };
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let state = AppState {
            db,
            metrics: Arc::new(Metrics::default()),
            throttle: Arc::new(LoginThrottle::new(config.login_attempts)),
            limiter: Arc::new(RateLimiter::new(config.rate_per_second, config.rate_burst)),
            hashing: Arc::new(crate::auth::password::HashGate::new(
                config.password_hash_slots,
            )),
            maintenance: Arc::new(Maintenance::default()),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            events: crate::queue::live::channel(),
            config: Arc::new(config),
        };
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        tracing::info!(address = %self.local_addr(), "careq listening");
        let router = app(self.state.clone());
        let result =
            server::serve(self.listener, router, self.state.config.clone(), shutdown).await;
        self.state.db.close().await;
        result
    }
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
