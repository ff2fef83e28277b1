//! The outside world of the sandbox tests: the sandbox itself on a real port, a manual clock,
//! and a recording callback receiver that can be told to fail.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use lunas_protocol::iak::postpaid::{PostpaidCommand, PostpaidRequest, PostpaidResult};
use lunas_protocol::iak::prepaid::{PrepaidCommand, PrepaidRequest, PrepaidResult};
use lunas_protocol::mcp::Credentials;
use lunas_protocol::{ApiVersion, Decoded, Format, Secret};
use lunas_sandbox::{Clock, LogSnapshot, Sandbox, SandboxConfig};
use serde::Deserialize;
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Every await on the network is bounded by this, so a bug fails a test instead of hanging it.
pub const LIMIT: Duration = Duration::from_secs(10);

/// When the manual clock of every test starts: 2024-05-01 10:00 WIB.
pub const START: OffsetDateTime = datetime!(2024-05-01 03:00 UTC);

pub const IAK_USER: &str = "081234567890";
pub const IAK_KEY: &str = "TESTKEY-not-real-0001";
pub const PROD_USER: &str = "081200000001";
pub const PROD_KEY: &str = "prod-key-not-real";
pub const IDSL_USER: &str = "089900000002";
pub const IDSL_KEY: &str = "idsl-key-not-real";
pub const MCP_MERCHANT: &str = "MCP2099010101";
pub const MCP_SECRET: &str = "0x00aabbccddeeff0011";
pub const MCP_HASH: &str = "HASHKEY-not-real-01";

/// Four accounts: IAK development (JSON v2), IAK production (2 s delay, two retries), IDSL
/// development (XML v1 callbacks) and MCPayment (two retries). `{callback}` is replaced by the
/// receiver's URL.
pub const STANDARD: &str = r#"
[sandbox]
seed = 7

[[sandbox.accounts]]
id = "iak"
kind = "iak"
username = "081234567890"
api_key = "TESTKEY-not-real-0001"
environment = "development"
callback_url = "{callback}/iak"

[[sandbox.accounts]]
id = "iak-prod"
kind = "iak"
username = "081200000001"
api_key = "prod-key-not-real"
environment = "production"
callback_url = "{callback}/iak-prod"
callback_delay_ms = 2000
retry_delays_ms = [1000, 5000]

[[sandbox.accounts]]
id = "idsl"
kind = "idsl"
username = "089900000002"
api_key = "idsl-key-not-real"
callback_url = "{callback}/idsl"
callback_format = "xml"
api_version = "v1"

[[sandbox.accounts]]
id = "mcp"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
callback_url = "{callback}/mcp"
retry_delays_ms = [1000, 5000]
"#;

#[derive(Deserialize)]
struct File {
    sandbox: SandboxConfig,
}

/// Parses the `[sandbox]` table of a `lunas.toml` text.
pub fn config(text: &str) -> SandboxConfig {
    toml::from_str::<File>(text)
        .expect("test configuration parses")
        .sandbox
}

/// Awaits `f`, failing the test after [`LIMIT`].
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("gave up waiting")
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    fail_next: AtomicUsize,
    arrived: Notify,
}

/// A merchant's callback endpoint that records everything and answers 200 `{"message":
/// "SUCCESS"}`, or 500 while told to fail.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    state.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    state.arrived.notify_waiters();
    let failing = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        (StatusCode::INTERNAL_SERVER_ERROR, "receiver down").into_response()
    } else {
        (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"message":"SUCCESS"}"#,
        )
            .into_response()
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, state }
    }

    /// Makes the next `n` callbacks fail with HTTP 500.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// What arrived at one path (one account).
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until at least `n` callbacks arrived in total.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        bounded(async {
            loop {
                let arrived = self.state.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                let got = self.received();
                if got.len() >= n {
                    return got;
                }
                arrived.await;
            }
        })
        .await
    }
}

/// A sandbox on a real port with a manual clock, no background dispatcher (tests step it with
/// `run_due`), and a receiver.
pub struct Harness {
    pub sandbox: Sandbox,
    pub url: String,
    pub clock: Clock,
    pub client: reqwest::Client,
    pub receiver: Receiver,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

impl Harness {
    /// Starts the standard four accounts.
    pub async fn standard() -> Harness {
        Harness::start(STANDARD).await
    }

    /// Starts a sandbox from a configuration text in which `{callback}` is the receiver's URL.
    pub async fn start(text: &str) -> Harness {
        let receiver = Receiver::start().await;
        let clock = Clock::manual(START);
        let sandbox = Sandbox::with_clock(
            config(&text.replace("{callback}", &receiver.url)),
            clock.clone(),
        )
        .expect("configuration validates");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = sandbox.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Harness {
            sandbox,
            url,
            clock,
            client: client(),
            receiver,
        }
    }

    pub async fn post(&self, path: &str, content_type: &str, body: impl Into<String>) -> Answer {
        self.post_with(path, content_type, body, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<String>,
        headers: &[(&str, String)],
    ) -> Answer {
        self.try_post_with(path, content_type, body, headers, None)
            .await
            .expect("request answered")
    }

    /// Like [`Harness::post_with`], but a request that gets no answer (a closed connection, or
    /// no answer within `timeout`) is the client's error rather than a failed test.
    pub async fn try_post_with(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<String>,
        headers: &[(&str, String)],
        timeout: Option<Duration>,
    ) -> Result<Answer, reqwest::Error> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body.into());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(timeout) = timeout {
            req = req.timeout(timeout);
        }
        let response = bounded(req.send()).await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = bounded(response.bytes()).await?;
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = bounded(self.client.get(format!("{}{path}", self.url)).send())
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = bounded(response.bytes()).await.unwrap();
        Answer {
            status,
            content_type,
            body,
        }
    }

    /// Sends a signed prepaid request and parses the answer with the protocol library.
    pub async fn prepaid(
        &self,
        user: &str,
        key: &str,
        command: PrepaidCommand,
        format: Format,
        version: ApiVersion,
    ) -> (Answer, Decoded<PrepaidResult>) {
        let req = PrepaidRequest::new(user, &Secret::new(key), command);
        let answer = self
            .post(
                &req.path(version),
                format.content_type(),
                req.encode(format, version),
            )
            .await;
        let parsed = PrepaidResult::parse(&answer.body)
            .unwrap_or_else(|e| panic!("answer parses ({e}): {}", answer.text()));
        (answer, parsed)
    }

    /// A v2 JSON top-up on the development IAK account.
    pub async fn top_up(&self, ref_id: &str, customer: &str, product: &str) -> PrepaidResult {
        self.top_up_as(IAK_USER, IAK_KEY, ref_id, customer, product)
            .await
    }

    pub async fn top_up_as(
        &self,
        user: &str,
        key: &str,
        ref_id: &str,
        customer: &str,
        product: &str,
    ) -> PrepaidResult {
        let (answer, parsed) = self
            .prepaid(
                user,
                key,
                PrepaidCommand::TopUp {
                    ref_id: ref_id.into(),
                    customer_id: customer.into(),
                    product_code: product.into(),
                },
                Format::Json,
                ApiVersion::V2,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        parsed.message
    }

    pub async fn check_status_as(&self, user: &str, key: &str, ref_id: &str) -> PrepaidResult {
        let (answer, parsed) = self
            .prepaid(
                user,
                key,
                PrepaidCommand::CheckStatus {
                    ref_id: ref_id.into(),
                },
                Format::Json,
                ApiVersion::V2,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        parsed.message
    }

    pub async fn check_status(&self, ref_id: &str) -> PrepaidResult {
        self.check_status_as(IAK_USER, IAK_KEY, ref_id).await
    }

    /// Sends a signed postpaid request (development IAK account) and parses the answer.
    pub async fn postpaid(&self, command: PostpaidCommand, format: Format) -> PostpaidResult {
        let answer = self.postpaid_raw(command, format).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        PostpaidResult::parse(&answer.body)
            .unwrap_or_else(|e| panic!("answer parses ({e}): {}", answer.text()))
            .message
    }

    /// A postpaid request as sent, and the answer as it came.
    pub async fn postpaid_raw(&self, command: PostpaidCommand, format: Format) -> Answer {
        let req = PostpaidRequest::new(IAK_USER, &Secret::new(IAK_KEY), command);
        self.post(&req.path(), format.content_type(), req.encode(format))
            .await
    }

    /// `POST /sandbox/report`.
    pub async fn report(&self, reference: &str, outcome: &str) -> Answer {
        self.post(
            "/sandbox/report",
            "application/json",
            serde_json::json!({"ref": reference, "outcome": outcome}).to_string(),
        )
        .await
    }

    /// `POST /sandbox/va/pay`.
    pub async fn pay(&self, external_id: &str, amount: i64) -> Answer {
        self.post(
            "/sandbox/va/pay",
            "application/json",
            serde_json::json!({"external_id": external_id, "amount": amount}).to_string(),
        )
        .await
    }

    /// `run_due`, bounded.
    pub async fn run_due(&self) -> usize {
        bounded(self.sandbox.run_due()).await
    }

    pub fn advance(&self, by: Duration) {
        assert!(self.clock.advance(by));
    }

    /// The log as `GET /sandbox/log` serves it.
    pub async fn log(&self) -> LogSnapshot {
        let answer = self.get("/sandbox/log").await;
        assert_eq!(answer.status, 200);
        serde_json::from_slice(&answer.body).expect("log parses")
    }
}

pub fn mcp_credentials() -> Credentials {
    Credentials {
        merchant_id: MCP_MERCHANT.into(),
        secret_unbound_id: Secret::new(MCP_SECRET),
        hash_key: Secret::new(MCP_HASH),
        sub_merchant_id: None,
    }
}

/// Every key of a JSON document as a path (`payment_details.amount`; an array's items as
/// `item_details[].name`), in document order, each once.
#[allow(dead_code)]
pub fn key_paths(v: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let path = format!("{prefix}{k}");
                    if !out.contains(&path) {
                        out.push(path.clone());
                    }
                    walk(v, &format!("{path}."), out);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{}[].", prefix.trim_end_matches('.')), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, "", &mut out);
    out
}

/// A fixture of the protocol library's tests (the documents' examples).
#[allow(dead_code)]
pub fn protocol_fixture(path: &str) -> String {
    let full = format!(
        "{}/../lunas-protocol/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}
