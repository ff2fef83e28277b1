//! The gateway as a library: built from a configuration, served on any listener, stopped by a
//! future. `main` and the tests use the same entry points.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use lunas_store::{StoreError, StoreOptions};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, AppState};

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
        Ok(Gateway {
            state: AppState {
                store,
                providers: Arc::new(providers),
                admin_token: Arc::new(admin_token),
                body_limit: config.server.body_limit,
            },
        })
    }

    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn serve(
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
