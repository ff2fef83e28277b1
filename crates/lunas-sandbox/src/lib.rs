//! `lunas sandbox`: the providers' side, as their documents describe it.
//!
//! A library so that the `lunas` binary (`lunas sandbox`, `lunas demo`) and tests can run it:
//! build a [`Sandbox`] from the `[sandbox]` configuration ([`SandboxConfig`]), then either
//! [`Sandbox::serve`] it on a listener (HTTP plus a background callback dispatcher) or mount
//! [`Sandbox::router`] yourself and drive callbacks with [`Sandbox::run_due`], which makes
//! time-based behaviour testable without sleeping (see [`Clock::manual`]).
//!
//! It emulates, per configured account, one provider family per folder:
//! - [`iak`]: IAK and IDSL prepaid, v2 paths and v1 `/v1/legacy/index` with `commands`, JSON
//!   and XML, and IAK postpaid `POST /api/v1/bill/check`;
//! - [`mcp`]: MCPayment PG3 virtual accounts `/va`, `/va/inquiry`, `/va/cancel`, and the
//!   control `POST /sandbox/va/pay`;
//!
//! and, for every provider, the controls `POST /sandbox/report`, `POST /sandbox/deposit`,
//! `GET /sandbox/log`, `GET /sandbox/accounts`, `GET /sandbox/transactions` ([`control`]).
//!
//! The families are listed once, in the registry (`src/providers.rs`): each implements one
//! trait that parses its own account keys, mounts its routes, keeps its per-account state and
//! answers the generic controls. Adding a provider is a folder and one line there.
//!
//! Architecture invariant: the sandbox shares only `lunas-protocol` with the gateway, and
//! builds and parses every provider message with it. It never reuses gateway code, so that it
//! can catch the gateway's mistakes.

pub mod callbacks;
pub mod clock;
pub mod config;
pub mod control;
pub mod faults;
mod http;
pub mod iak;
pub mod log;
pub mod mcp;
mod providers;
mod state;

/// IAK's products and test numbers, at the paths they had before the provider folders.
pub use iak::{catalogue, scenario};

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};

pub use clock::Clock;
pub use config::{
    Account, AccountConfig, AccountCredentials, AccountKind, CallbackFormat, CallbackVersion,
    ConfigError, Environment, FaultConfig, Faults, SandboxConfig, SecretSpec, ValidSandbox,
};
pub use log::{CallbackKind, CallbackOutcome, CallbackRecord, LogSnapshot, RequestRecord};

use state::State;

/// The largest request body the sandbox reads.
pub const BODY_LIMIT: usize = 256 * 1024;

/// The provider emulator. Cheap to clone: clones share one world.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    accounts: Vec<Account>,
    /// `sandbox.token`: what `/sandbox/*` requires, when set.
    token: Option<lunas_protocol::Secret>,
    seed: u64,
    clock: Clock,
    client: reqwest::Client,
    state: Mutex<State>,
    /// Wakes the dispatcher when work is scheduled.
    wake: Notify,
    /// Set once `serve`'s shutdown signal fires.
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field(
                "accounts",
                &self
                    .inner
                    .accounts
                    .iter()
                    .map(|a| &a.id)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A summary of one account, as `GET /sandbox/accounts` shows it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountInfo {
    pub id: String,
    pub kind: String,
    pub environment: String,
    /// What identifies the account to its family: the IAK/IDSL username, the MCPayment
    /// merchant id.
    pub login: String,
    /// The deposit in rupiah (IAK/IDSL; an MCPayment account has none and shows the default
    /// it was given, 1 000 000 000).
    pub balance: i64,
    pub callback_url: Option<String>,
}

impl Sandbox {
    /// Validates `config` and builds a sandbox on the system clock.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, ConfigError> {
        Sandbox::with_clock(config, Clock::system())
    }

    /// Validates `config` and builds a sandbox on `clock` (a [`Clock::manual`] in tests).
    pub fn with_clock(config: SandboxConfig, clock: Clock) -> Result<Sandbox, ConfigError> {
        Sandbox::from_valid(config.validate()?, clock)
    }

    /// Builds a sandbox from an already validated configuration. Fails only when no HTTP
    /// client for callbacks can be made (no TLS support on the machine).
    pub fn from_valid(valid: ValidSandbox, clock: Clock) -> Result<Sandbox, ConfigError> {
        // Callbacks go straight to their URL: never through a proxy from the environment, and
        // a redirect is an answer like any other, not followed.
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("lunas-sandbox")
            .build()
            .map_err(|e| {
                ConfigError::new(
                    "sandbox",
                    format!("cannot make the callback HTTP client: {e}"),
                )
            })?;
        let state = State::new(valid.seed, &valid.accounts);
        Ok(Sandbox {
            inner: Arc::new(Inner {
                accounts: valid.accounts,
                token: valid.token,
                seed: valid.seed,
                clock,
                client,
                state: Mutex::new(state),
                wake: Notify::new(),
                shutdown: watch::channel(false).0,
            }),
        })
    }

    /// The HTTP interface: every provider path (each family mounts its own) and every
    /// control path.
    pub fn router(&self) -> Router {
        let router = providers::PROVIDERS
            .iter()
            .fold(Router::new(), |router, family| family.routes(router));
        router
            .route("/sandbox/report", post(control::report))
            .route("/sandbox/deposit", post(control::deposit))
            .route("/sandbox/log", get(control::log))
            .route("/sandbox/accounts", get(control::accounts))
            .route("/sandbox/transactions", get(control::transactions))
            .fallback(http::not_found)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                control::require_token,
            ))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.clone())
    }

    /// Whether `/sandbox/*` asks for a token.
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    /// Serves the sandbox on `listener` and sends callbacks in the background until
    /// `shutdown` completes; then stops accepting connections, lets requests in flight finish
    /// (a hanging check-status or order fault is cut short) and returns.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let dispatcher = tokio::spawn(self.clone().dispatch());
        let inner = self.inner.clone();
        let signal = async move {
            shutdown.await;
            inner.shutdown.send_replace(true);
        };
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(signal)
            .await;
        self.inner.shutdown.send_replace(true);
        let _ = dispatcher.await;
        served
    }

    /// The background dispatcher: [`Sandbox::run_due`] whenever work may be due.
    async fn dispatch(self) {
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            if *stop.borrow() {
                return;
            }
            // Not raced against shutdown: an attempt in flight is finished, so every callback
            // a receiver got is also in the log.
            self.run_due().await;
            let wait = self.until_next_due().min(Duration::from_millis(250));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.wake.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// How long until the next scheduled job, by this sandbox's clock.
    fn until_next_due(&self) -> Duration {
        let now = self.now();
        let next = self.lock().next_due();
        match next {
            Some(due) if due > now => Duration::try_from(due - now).unwrap_or(Duration::ZERO),
            Some(_) => Duration::ZERO,
            None => Duration::from_secs(3600),
        }
    }

    /// Waits `d`, or less if the sandbox is shutting down; `false` when cut short.
    pub(crate) async fn hang(&self, d: Duration) -> bool {
        let mut stop = self.inner.shutdown.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// The sandbox's current time.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The clock the sandbox runs on.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The validated accounts.
    pub fn accounts(&self) -> &[Account] {
        &self.inner.accounts
    }

    /// Each account with its current deposit.
    pub fn account_infos(&self) -> Vec<AccountInfo> {
        let st = self.lock();
        self.inner
            .accounts
            .iter()
            .zip(&st.accounts)
            .map(|(a, s)| AccountInfo {
                id: a.id.clone(),
                kind: a.kind.as_str().to_owned(),
                environment: a.environment.as_str().to_owned(),
                login: a.kind.family().login(a),
                balance: s.balance,
                callback_url: a.callback_url.clone(),
            })
            .collect()
    }

    /// The deposit of an IAK/IDSL account, by id.
    pub fn balance(&self, account: &str) -> Option<i64> {
        let index = self.account_index(account)?;
        Some(self.lock().accounts[index].balance)
    }

    /// Everything the sandbox did so far.
    pub fn log(&self) -> LogSnapshot {
        self.lock().log.snapshot(None, None)
    }

    /// How many jobs (callbacks, retries, production outcomes) are scheduled.
    pub fn pending_jobs(&self) -> usize {
        self.lock().outbox.len()
    }

    /// When the next scheduled job falls due, if any.
    pub fn next_due(&self) -> Option<OffsetDateTime> {
        self.lock().next_due()
    }

    fn account_index(&self, id: &str) -> Option<usize> {
        self.inner.accounts.iter().position(|a| a.id == id)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies everything time has decided by `now`: outcomes whose delay has passed
    /// (production top-ups), then what each family decides by time alone (VA expiries). Their
    /// callbacks go to the outbox.
    fn settle(&self, st: &mut State, now: OffsetDateTime) {
        for job in st.take_due(now, true) {
            if let state::Job::Finalize { account, ref_id } = job {
                let family = self.inner.accounts[account].kind.family();
                if let Some(plan) = family.finalize(self, st, account, &ref_id, now) {
                    Sandbox::enqueue(st, plan);
                }
            }
        }
        for family in providers::PROVIDERS {
            family.pass_time(self, st, now);
        }
    }
}
