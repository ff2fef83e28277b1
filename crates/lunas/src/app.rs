//! The gateway as a library: built from a configuration, served on any listener, stopped by a
//! future. `main` and the tests use the same entry points.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use lunas_store::{StoreError, StoreOptions};
use tokio::net::TcpListener;

use tokio::sync::Notify;

use crate::config::Config;
use crate::delivery::Deliverer;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::reconcile::Reconciler;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A built gateway, ready to serve.
pub struct Gateway {
    state: AppState,
    deliverer: Arc<Deliverer>,
}

impl Gateway {
    /// Opens the store (running migrations) and prepares the routes.
    pub async fn build(config: &Config) -> Result<Gateway, StartError> {
        let admin_token = config.server.admin_token.clone().ok_or_else(|| {
            StartError::Config(
                "server.admin_token is required to serve: set admin_token = \"env:LUNAS_ADMIN_TOKEN\" in [server] \
                 or LUNAS__SERVER__ADMIN_TOKEN"
                    .into(),
            )
        })?;
        let options = StoreOptions {
            busy_timeout: config.storage.busy_timeout,
            ..StoreOptions::default()
        };
        let store = lunas_store::open(&config.storage.url, &options).await?;
        let providers: HashMap<_, _> = config
            .providers
            .iter()
            .map(|p| (p.id.clone(), p.clone()))
            .collect();
        let metrics = Arc::new(Metrics::new());
        let deliverer = Deliverer::new(
            Arc::clone(&store),
            &config.endpoints,
            config.delivery.clone(),
        )
        .map_err(StartError::Config)?
        .with_metrics(Arc::clone(&metrics));
        deliverer.init().await?;
        let deliverer = Arc::new(deliverer);
        let reconciler = Arc::new(
            Reconciler::new(Arc::clone(&store), &config.providers)
                .map_err(StartError::Config)?
                .with_metrics(Arc::clone(&metrics)),
        );
        Ok(Gateway {
            state: AppState {
                store,
                providers: Arc::new(providers),
                admin_token: Arc::new(admin_token),
                body_limit: config.server.body_limit,
                wake: Arc::new(Notify::new()),
                check_wake: Arc::new(Notify::new()),
                reconciler,
                metrics,
                endpoints: Arc::new(config.endpoints.clone()),
                filters: Arc::new(deliverer.filters().to_vec()),
            },
            deliverer,
        })
    }

    /// The reconciler, for driving it step by step (tests, tools).
    pub fn reconciler(&self) -> Arc<Reconciler> {
        Arc::clone(&self.state.reconciler)
    }

    /// The delivery worker, for driving it step by step (tests, tools).
    pub fn deliverer(&self) -> Arc<Deliverer> {
        Arc::clone(&self.deliverer)
    }

    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// Serves HTTP and runs the workers until `shutdown` completes; then finishes the requests
    /// and delivery attempts in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = Arc::new(Notify::new());
        let stop_checks = Arc::new(Notify::new());
        let worker = tokio::spawn(
            Arc::clone(&self.deliverer).run(Arc::clone(&self.state.wake), Arc::clone(&stop)),
        );
        let checker = tokio::spawn(
            Arc::clone(&self.state.reconciler)
                .run(Arc::clone(&self.state.check_wake), Arc::clone(&stop_checks)),
        );
        let served = self.serve_http(listener, shutdown).await;
        // Checks first (their results may make events), then deliveries.
        stop_checks.notify_one();
        let _ = checker.await;
        stop.notify_one();
        let _ = worker.await;
        served
    }

    /// Serves HTTP only, without the background workers (which the caller then drives with
    /// their `step` methods). Stops when `shutdown` completes.
    pub async fn serve_http(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Binds the configured address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

/// Completes on Ctrl-C or SIGTERM.
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
        _ = ctrl_c => {}
        _ = term => {}
    }
}
