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

/// Refused callbacks kept as evidence per account and kind of refusal, per minute (all are
/// counted).
pub const REFUSALS_KEPT_PER_MINUTE: u32 = 6;
/// Dashboard login attempts per client address per minute.
pub const LOGINS_PER_MINUTE: u32 = 10;

/// A built gateway, ready to serve.
pub struct Gateway {
    state: AppState,
    retention: Arc<crate::retention::Retention>,
    limits: http::serve::Limits,
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
        let store_for_retention = Arc::clone(&store);
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
        let check_wake = Arc::new(Notify::new());
        let wake = Arc::new(Notify::new());
        let orders = Arc::new(
            crate::orders::Orders::new(
                Arc::clone(&store),
                &config.providers,
                Arc::clone(&check_wake),
                Arc::clone(&wake),
            )
            .map_err(StartError::Config)?
            .with_metrics(Arc::clone(&metrics)),
        );
        Ok(Gateway {
            state: AppState {
                store,
                providers: Arc::new(providers),
                admin_token: Arc::new(admin_token),
                tokens: Arc::new(config.server.tokens.clone()),
                body_limit: config.server.body_limit,
                read_timeout: config.server.read_timeout,
                wake,
                check_wake,
                reconciler,
                orders,
                metrics,
                endpoints: Arc::new(config.endpoints.clone()),
                delivery: Arc::new(config.delivery.clone()),
                filters: Arc::new(deliverer.filters().to_vec()),
                refusals: Arc::new(lunas_core::rate::KeyedBuckets::new(
                    REFUSALS_KEPT_PER_MINUTE,
                )),
                logins: Arc::new(lunas_core::rate::KeyedBuckets::new(LOGINS_PER_MINUTE)),
                session_ttl: config.server.session_ttl,
                secure_cookies: config.server.secure_cookies,
            },
            deliverer,
            limits: http::serve::Limits::from_config(&config.server),
            retention: Arc::new(crate::retention::Retention::new(
                Arc::clone(&store_for_retention),
                config.retention.clone(),
            )),
        })
    }

    /// The reconciler, for driving it step by step (tests, tools).
    pub fn reconciler(&self) -> Arc<Reconciler> {
        Arc::clone(&self.state.reconciler)
    }

    /// Retention, for running it at a chosen time (tests, tools).
    pub fn retention(&self) -> Arc<crate::retention::Retention> {
        Arc::clone(&self.retention)
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
        let workers = self.start_workers();
        let served = self.serve_http(listener, shutdown).await;
        workers.stop().await;
        served
    }

    /// Serves as `role` until `shutdown` completes (see [`Role`]).
    pub async fn serve_role(
        self,
        role: Role,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        match role {
            Role::All => self.serve(listener, shutdown).await,
            Role::Api => self.serve_http(listener, shutdown).await,
            Role::Worker => {
                let workers = self.start_workers();
                let store = Arc::clone(&self.state.store);
                let health = axum::Router::new()
                    .route(
                        "/healthz",
                        axum::routing::get(|| async {
                            axum::Json(serde_json::json!({"status": "ok"}))
                        }),
                    )
                    .route(
                        "/readyz",
                        axum::routing::get(move || async move {
                            match store.ping().await {
                                Ok(()) => Ok(axum::Json(serde_json::json!({"status": "ready"}))),
                                Err(e) => Err((
                                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                    e.to_string(),
                                )),
                            }
                        }),
                    );
                let served =
                    http::serve::serve(listener, health, self.limits.clone(), shutdown).await;
                workers.stop().await;
                served
            }
        }
    }

    /// Starts the delivery worker and the reconciler in the background.
    fn start_workers(&self) -> Workers {
        let stop = Arc::new(Notify::new());
        let stop_checks = Arc::new(Notify::new());
        let worker = tokio::spawn(
            Arc::clone(&self.deliverer).run(Arc::clone(&self.state.wake), Arc::clone(&stop)),
        );
        let checker = tokio::spawn(
            Arc::clone(&self.state.reconciler)
                .run(Arc::clone(&self.state.check_wake), Arc::clone(&stop_checks)),
        );
        let stop_pruning = Arc::new(Notify::new());
        let pruner = tokio::spawn(Arc::clone(&self.retention).run(Arc::clone(&stop_pruning)));
        Workers {
            stop,
            stop_checks,
            stop_pruning,
            worker,
            checker,
            pruner,
        }
    }

    /// Serves HTTP only, without the background workers (which the caller then drives with
    /// their `step` methods). Stops when `shutdown` completes.
    pub async fn serve_http(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = self.limits.clone();
        http::serve::serve(listener, self.router(), limits, shutdown).await
    }
}

/// What one `lunas serve` process does. With several nodes on one PostgreSQL database, API
/// nodes (stateless HTTP) and worker nodes can be scaled apart; every node may also do both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// HTTP only: provider callbacks, the admin API, health and metrics.
    Api,
    /// The delivery worker and the reconciler; HTTP answers only /healthz and /readyz.
    Worker,
    /// Both.
    #[default]
    All,
}

impl Role {
    /// The role as `--role` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
            Role::All => "all",
        }
    }
}

/// The background workers of a serving gateway.
struct Workers {
    stop: Arc<Notify>,
    stop_checks: Arc<Notify>,
    stop_pruning: Arc<Notify>,
    worker: tokio::task::JoinHandle<()>,
    checker: tokio::task::JoinHandle<()>,
    pruner: tokio::task::JoinHandle<()>,
}

impl Workers {
    /// Stops them: checks first (their results may make events), then deliveries.
    async fn stop(self) {
        self.stop_pruning.notify_one();
        let _ = self.pruner.await;
        self.stop_checks.notify_one();
        let _ = self.checker.await;
        self.stop.notify_one();
        let _ = self.worker.await;
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
