//! The servers the harness runs itself: the baseline (a child process that answers every
//! callback 200 `{"message":"SUCCESS"}` and does nothing else), the merchant's receiver (in
//! process: verifies each Standard Webhooks signature and records what arrived), and an IAK
//! check-status stub for the reconciler benchmark (in process).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{oneshot, Notify};

use crate::gateway::ENDPOINT_SECRET;
use crate::mix::SUCCESS_JSON;
use crate::util::{ChildServer, Result};

/// Runs the baseline server in this process (the hidden `baseline-server` subcommand): the
/// same route as lunas' callbacks, reads the body, answers 200 `{"message":"SUCCESS"}`.
pub fn baseline_main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let app = Router::new().route(
            "/callbacks/{provider_id}",
            post(|_body: Bytes| async { ([("content-type", "application/json")], SUCCESS_JSON) }),
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("baseline listening on http://{addr}");
        axum::serve(listener, app).await.map_err(|e| e.to_string())
    })
}

/// Starts the baseline as a child process (this binary, `baseline-server`).
pub async fn start_baseline(dir: &Path) -> Result<ChildServer> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("baseline-server").current_dir(dir);
    ChildServer::spawn(cmd, &dir.join("baseline.log")).await
}

/// One event as the receiver got it.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub at: Instant,
    pub provider: String,
    pub reference: String,
}

/// What the receiver has seen.
#[derive(Default)]
pub struct Received {
    /// Receipts per `webhook-id` (more than one: delivered more than once).
    pub by_id: HashMap<String, Vec<Receipt>>,
    pub total: u64,
    pub bad_signatures: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

/// The merchant's endpoint, in this process, on 127.0.0.1:0.
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Received>>,
    /// Notified on every receipt.
    pub arrived: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    pub async fn start() -> Result<Receiver> {
        let received = Arc::new(Mutex::new(Received::default()));
        let arrived = Arc::new(Notify::new());
        let webhook = standardwebhooks::Webhook::new(ENDPOINT_SECRET)
            .map_err(|e| format!("the endpoint secret: {e:?}"))?;
        let state = Arc::new((webhook, Arc::clone(&received), Arc::clone(&arrived)));
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Receiver {
            addr,
            received,
            arrived,
            stop: Some(tx),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// Waits until `enough` says the receipts are complete, or `bound` passes. Returns whether
    /// they completed.
    pub async fn wait_for(
        &self,
        bound: std::time::Duration,
        enough: impl Fn(&Received) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if enough(&self.received.lock().expect("receiver lock")) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return enough(&self.received.lock().expect("receiver lock"));
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

type ReceiverState = Arc<(standardwebhooks::Webhook, Arc<Mutex<Received>>, Arc<Notify>)>;

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let (webhook, received, arrived) = &*state;
    if webhook.verify(&body, &headers).is_err() {
        received.lock().expect("receiver lock").bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let receipt = Receipt {
        at,
        provider: v["data"]["provider_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        reference: v["data"]["ref"].as_str().unwrap_or_default().to_owned(),
    };
    {
        let mut r = received.lock().expect("receiver lock");
        r.total += 1;
        r.first.get_or_insert(at);
        r.last = Some(at);
        r.by_id.entry(id).or_default().push(receipt);
    }
    arrived.notify_waiters();
    StatusCode::NO_CONTENT
}

/// An IAK check-status stub: answers every prepaid check-status with "still in process"
/// (status 0, rc 39) for the ref asked about, so each check is recorded and rescheduled.
pub struct CheckStub {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
}

impl CheckStub {
    pub async fn start() -> Result<CheckStub> {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&calls);
        let app = Router::new().fallback(move |uri: axum::http::Uri, body: Bytes| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                check_answer(uri.path(), &body)
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(CheckStub {
            addr,
            calls,
            stop: Some(tx),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for CheckStub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The stub's answer to one request.
fn check_answer(
    path: &str,
    body: &[u8],
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    use lunas_protocol::iak::prepaid::{
        PrepaidCommand, PrepaidRequest, PrepaidResult, PrepaidStatus,
    };
    let json = [("content-type", "application/json")];
    let Ok(decoded) = PrepaidRequest::parse(path, body) else {
        return (StatusCode::BAD_REQUEST, json, "{}".into());
    };
    let PrepaidCommand::CheckStatus { ref_id } = decoded.message.command else {
        return (StatusCode::BAD_REQUEST, json, "{}".into());
    };
    let answer = PrepaidResult {
        ref_id: Some(ref_id),
        status: Some(PrepaidStatus::Process),
        product_code: Some("xld25000".into()),
        customer_id: Some("081234567890".into()),
        price: Some(25_000),
        message: Some("PROCESS".into()),
        balance: Some(1_000_000),
        tr_id: Some(1),
        rc: "39".into(),
        ..PrepaidResult::default()
    };
    (
        StatusCode::OK,
        json,
        answer.encode(lunas_protocol::Format::Json, decoded.version),
    )
}
