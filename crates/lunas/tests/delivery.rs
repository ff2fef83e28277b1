//! Delivery to the merchant: a recording receiver on port 0 that can fail, hang, throttle or
//! hang up; the worker driven step by step with an explicit clock (no sleeps).

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use common::*;
use hmac::{Hmac, Mac};
use lunas::app::Gateway;
use lunas::config::Config;
use lunas::delivery::Deliverer;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};
use serde_json::Value;
use time::OffsetDateTime;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver answers to one request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// 429 with `Retry-After: n`.
    Throttle(u64),
    /// Never answers (the attempt times out).
    Hang,
}

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    received: Vec<Received>,
    arrived: Arc<tokio::sync::Notify>,
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    /// A receiver that answers `replies` in order, then 200 to everything.
    async fn start(replies: &[Reply]) -> Self {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.iter().copied().collect(),
            ..Script::default()
        }));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(record))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, script }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Waits (bounded) until `n` requests have arrived.
    async fn wait_for(&self, n: usize) {
        let arrived = Arc::clone(&self.script.lock().unwrap().arrived);
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = arrived.notified();
                if self.received().len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("the deliveries arrive");
    }

    fn types(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

async fn record(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let reply = {
        let mut s = script.lock().unwrap();
        s.received.push(Received { headers, body });
        s.arrived.notify_waiters();
        s.replies.pop_front().unwrap_or(Reply::Status(200))
    };
    match reply {
        Reply::Status(code) => (StatusCode::from_u16(code).unwrap(), "ok").into_response(),
        Reply::Throttle(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
    }
}

/// A listener that accepts connections and closes them without a word.
async fn hang_up_listener() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    addr
}

/// A gateway serving HTTP only; its delivery worker is driven by the test.
struct Manual {
    gw_addr: SocketAddr,
    deliverer: Arc<Deliverer>,
    client: reqwest::Client,
    dir: tempfile::TempDir,
    extra: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Manual {
    async fn start(extra: &str) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), extra.to_owned()).await
    }

    async fn start_in(dir: tempfile::TempDir, extra: String) -> Self {
        let text = config_text(&dir.path().join("lunas.db"), &extra);
        let config = Config::from_parts(Some(&text), &[], &|_| None).expect("valid test config");
        let gateway = Gateway::build(&config).await.unwrap();
        let deliverer = gateway.deliverer();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw_addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.serve_http(listener, async move {
            let _ = rx.await;
        }));
        Manual {
            gw_addr,
            deliverer,
            client: reqwest::Client::new(),
            dir,
            extra,
            stop: Some(tx),
        }
    }

    async fn restart(mut self) -> Self {
        let _ = self.stop.take().map(|s| s.send(()));
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Self::start_in(dir, std::mem::take(&mut self.extra)).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.gw_addr, path)
    }

    async fn callback(&self, reference: &str, status: PrepaidStatus) {
        let body = iak_body(reference, status, Format::Json, ApiVersion::V2);
        let res = self
            .client
            .post(self.url("/callbacks/iak"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn step(&self, at: OffsetDateTime) -> lunas::delivery::StepReport {
        self.deliverer.step(at).await.unwrap()
    }
}

fn endpoint(url: &str, extra: &str) -> String {
    format!("[[endpoints]]\nid = \"merchant\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nevents = [\"transaction.*\", \"va.*\"]\n{extra}")
}

fn delivery(schedule: &str, timeout_ms: u64) -> String {
    format!("[delivery]\nschedule = {schedule}\ntimeout_ms = {timeout_ms}\n")
}

/// Verifies a Standard Webhooks message independently of lunas' signer: HMAC-SHA256 over
/// `id.timestamp.body` with the base64-decoded secret, compared to every `v1,` signature.
fn verify_independently(r: &Received) -> bool {
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[tokio::test]
async fn every_event_arrives_signed_as_standard_webhooks_and_verifies_independently() {
    let rx = Receiver::start(&[]).await;
    let gw = Manual::start(&endpoint(&rx.url(), "")).await;
    gw.callback("order001", PrepaidStatus::Process).await;
    gw.callback("order001", PrepaidStatus::Success).await;
    let report = gw.step(now()).await;
    assert_eq!(report.fanned_out, 2);
    // One event per transaction per step: the second waits for the first to be delivered.
    assert_eq!(report.delivered, 1);
    assert_eq!(gw.step(now()).await.delivered, 1);
    let received = rx.received();
    assert_eq!(rx.types(), ["transaction.pending", "transaction.succeeded"]);
    let feed = gw.get("/api/v1/events").await;
    for (r, event) in received.iter().zip(feed["events"].as_array().unwrap()) {
        assert!(verify_independently(r), "signature must verify");
        assert_eq!(r.headers["webhook-id"], event["id"].as_str().unwrap());
        assert_eq!(r.headers["content-type"], "application/json");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["type"], event["type"]);
        assert_eq!(body["data"], event["data"], "exactly as committed");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        // The reference implementation accepts it too.
        let wh = standardwebhooks::Webhook::new(SECRET).unwrap();
        wh.verify(r.body.as_bytes(), &r.headers)
            .expect("standardwebhooks verifies");
    }
    let tx = gw.get("/api/v1/transactions/iak/order001").await;
    let attempts: Vec<&Value> = tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "delivery_attempt")
        .collect();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status"], 200);
    assert_eq!(tx["deliveries"][0]["state"], "delivered");
}

#[tokio::test]
async fn during_a_secret_changeover_every_delivery_verifies_with_the_old_and_the_new_secret() {
    const NEW: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let rx = Receiver::start(&[]).await;
    let gw = Manual::start(&format!(
        "[[endpoints]]\nid = \"merchant\"\nurl = \"{}\"\nsecret = [\"{NEW}\", \"{SECRET}\"]\n",
        rx.url()
    ))
    .await;
    gw.callback("rot-1", PrepaidStatus::Success).await;
    assert_eq!(gw.step(now()).await.delivered, 1);
    let r = &rx.received()[0];
    assert_eq!(
        r.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2,
        "one signature per secret"
    );
    for secret in [NEW, SECRET] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(r.body.as_bytes(), &r.headers)
            .unwrap_or_else(|e| panic!("verifies with {secret}: {e}"));
    }
    // A secret in the list that is not a whsec_ key is named.
    let err = Config::from_parts(
        Some(&config_text(
            std::path::Path::new("/nonexistent/x.db"),
            &format!(
                "[[endpoints]]\nurl = \"{}\"\nsecret = [\"{NEW}\", \"plain\"]\n",
                rx.url()
            ),
        )),
        &[],
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("endpoints[0].secret[1]: must start with whsec_"),
        "{err}"
    );
}

#[tokio::test]
async fn a_flaky_endpoint_gets_the_same_message_until_it_accepts() {
    let rx = Receiver::start(&[Reply::Status(500), Reply::Status(503)]).await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&rx.url(), ""),
        delivery("[\"10s\", \"1m\", \"1h\"]", 2000)
    ))
    .await;
    gw.callback("order002", PrepaidStatus::Success).await;
    let t0 = now();
    assert_eq!(gw.step(t0).await.failed, 1);
    assert_eq!(
        gw.step(t0 + Duration::from_secs(5)).await.attempted,
        0,
        "not due before its wait"
    );
    assert_eq!(gw.step(t0 + Duration::from_secs(12)).await.failed, 1);
    assert_eq!(gw.step(t0 + Duration::from_secs(30)).await.attempted, 0);
    assert_eq!(gw.step(t0 + Duration::from_secs(80)).await.delivered, 1);
    let received = rx.received();
    assert_eq!(received.len(), 3);
    assert!(
        received.iter().all(|r| r.body == received[0].body),
        "the same bytes every time"
    );
    assert!(received
        .iter()
        .all(|r| r.headers["webhook-id"] == received[0].headers["webhook-id"]));
    assert!(received.iter().all(verify_independently));
    let tx = gw.get("/api/v1/transactions/iak/order002").await;
    let statuses: Vec<&Value> = tx["deliveries"][0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [500, 503, 200]);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let rx = Receiver::start(&[Reply::Throttle(120)]).await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&rx.url(), ""),
        delivery("[\"5s\"]", 2000)
    ))
    .await;
    gw.callback("order003", PrepaidStatus::Success).await;
    let t0 = now();
    assert_eq!(gw.step(t0).await.failed, 1);
    assert_eq!(
        gw.step(t0 + Duration::from_secs(60)).await.attempted,
        0,
        "the endpoint asked for 120 s"
    );
    assert_eq!(gw.step(t0 + Duration::from_secs(121)).await.delivered, 1);
}

#[tokio::test]
async fn events_of_one_transaction_stay_in_order_while_others_flow() {
    let rx = Receiver::start(&[Reply::Status(500)]).await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&rx.url(), ""),
        delivery("[\"10s\"]", 2000)
    ))
    .await;
    gw.callback("slow", PrepaidStatus::Process).await; // its first delivery fails
    gw.callback("slow", PrepaidStatus::Success).await;
    gw.callback("other", PrepaidStatus::Failed).await;
    let t0 = now();
    let first = gw.step(t0).await;
    assert_eq!(
        (first.attempted, first.failed, first.delivered),
        (2, 1, 1),
        "another transaction is not held up"
    );
    assert_eq!(
        gw.step(t0 + Duration::from_secs(1)).await.attempted,
        0,
        "succeeded waits for pending"
    );
    assert_eq!(gw.step(t0 + Duration::from_secs(11)).await.delivered, 1);
    assert_eq!(gw.step(t0 + Duration::from_secs(12)).await.delivered, 1);
    let order: Vec<(String, String)> = rx
        .received()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(&r.body).unwrap();
            (
                v["data"]["ref"].as_str().unwrap().to_owned(),
                v["type"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(r, _)| r == "slow")
        .collect();
    let types: Vec<&str> = order.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "transaction.pending",
            "transaction.pending",
            "transaction.succeeded"
        ]
    );
}

#[tokio::test]
async fn a_hanging_endpoint_times_out_without_holding_up_another() {
    let good = Receiver::start(&[]).await;
    let bad = Receiver::start(&[Reply::Hang]).await;
    let extra = format!(
        "[[endpoints]]\nid = \"good\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n[[endpoints]]\nid = \"bad\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n{}",
        good.url(),
        bad.url(),
        delivery("[\"10s\"]", 300)
    );
    let gw = Manual::start(&extra).await;
    gw.callback("order004", PrepaidStatus::Success).await;
    let report = gw.step(now()).await;
    assert_eq!((report.delivered, report.failed), (1, 1));
    assert_eq!(good.received().len(), 1);
    let dead = gw.get("/api/v1/deliveries?endpoint=bad").await;
    let error = dead["items"][0]["history"][0]["error"].as_str().unwrap();
    assert!(error.contains("timed out"), "{error}");
}

#[tokio::test]
async fn a_closed_connection_is_a_failed_attempt_that_is_retried() {
    let addr = hang_up_listener().await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&format!("http://{addr}/hook"), ""),
        delivery("[\"10s\"]", 2000)
    ))
    .await;
    gw.callback("order005", PrepaidStatus::Success).await;
    let t0 = now();
    assert_eq!(gw.step(t0).await.failed, 1);
    let list = gw.get("/api/v1/deliveries?endpoint=merchant").await;
    let item = &list["items"][0];
    assert_eq!(item["state"], "pending");
    assert!(item["history"][0]["error"].is_string());
    assert_eq!(item["history"][0]["status"], Value::Null);
}

#[tokio::test]
async fn after_the_schedule_a_delivery_is_dead_lettered_then_redelivered_on_request() {
    let rx = Receiver::start(&[Reply::Status(500), Reply::Status(410)]).await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&rx.url(), ""),
        delivery("[\"1s\"]", 2000)
    ))
    .await;
    gw.callback("order006", PrepaidStatus::Success).await;
    let t0 = now();
    assert_eq!(gw.step(t0).await.failed, 1);
    assert_eq!(gw.step(t0 + Duration::from_secs(2)).await.failed, 1);
    assert_eq!(
        gw.step(t0 + Duration::from_secs(60)).await.attempted,
        0,
        "dead: no more attempts"
    );
    let dead = gw.get("/api/v1/deliveries?state=dead").await;
    assert_eq!(dead["items"].as_array().unwrap().len(), 1);
    let endpoints = gw.get("/api/v1/endpoints").await;
    assert_eq!(endpoints["items"][0]["gone_answers"], 1, "410 is surfaced");
    assert_eq!(endpoints["items"][0]["dead"], 1);

    let (status, body) = gw
        .post("/api/v1/deliveries/redeliver", serde_json::json!({}))
        .await;
    assert_eq!((status, &body["queued"]), (200, &Value::from(1)));
    assert_eq!(gw.step(t0 + Duration::from_secs(61)).await.delivered, 1);
    assert_eq!(rx.received().len(), 3);

    // One event again, and a whole transaction again, on request.
    let event_id = gw.get("/api/v1/events").await["events"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = gw
        .post(&format!("/api/v1/events/{event_id}/redeliver"), Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(gw.step(t0 + Duration::from_secs(62)).await.delivered, 1);
    let (status, body) = gw
        .post("/api/v1/transactions/iak/order006/redeliver", Value::Null)
        .await;
    assert_eq!((status, body["queued"].as_u64()), (200, Some(1)));
    assert_eq!(gw.step(t0 + Duration::from_secs(63)).await.delivered, 1);
    assert_eq!(rx.received().len(), 5);
    let (status, _) = gw
        .post("/api/v1/events/evt_nope/redeliver", Value::Null)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn retries_survive_a_restart_and_events_failed_during_an_outage_are_not_lost() {
    let rx = Receiver::start(&[Reply::Status(502), Reply::Status(502), Reply::Status(502)]).await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&rx.url(), ""),
        delivery("[\"10s\", \"10s\"]", 2000)
    ))
    .await;
    for r in ["a", "b", "c"] {
        gw.callback(r, PrepaidStatus::Success).await;
    }
    let t0 = now();
    assert_eq!(gw.step(t0).await.failed, 3, "the endpoint is down");
    let gw = gw.restart().await;
    let report = gw.step(t0 + Duration::from_secs(11)).await;
    assert_eq!(report.delivered, 3, "the queue outlived the process");
    let mut refs: Vec<String> = rx
        .received()
        .iter()
        .skip(3)
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["data"]["ref"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    refs.sort();
    assert_eq!(refs, ["a", "b", "c"]);
}

#[tokio::test]
async fn filters_choose_what_each_endpoint_receives() {
    let rx = Receiver::start(&[]).await;
    let extra = format!(
        "[[endpoints]]\nurl = \"{}\"\nsecret = \"{SECRET}\"\nevents = [\"transaction.failed\"]\n",
        rx.url()
    );
    let gw = Manual::start(&extra).await;
    gw.callback("ok", PrepaidStatus::Success).await;
    gw.callback("ko", PrepaidStatus::Failed).await;
    gw.step(now()).await;
    assert_eq!(rx.types(), ["transaction.failed"]);
}

#[tokio::test]
async fn the_running_gateway_delivers_on_its_own() {
    let rx = Receiver::start(&[]).await;
    let gw = TestGateway::start_with(&endpoint(&rx.url(), "")).await;
    let (status, _) = gw
        .callback(
            "iak",
            iak_body("live", PrepaidStatus::Success, Format::Xml, ApiVersion::V1),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    rx.wait_for(1).await;
    assert!(verify_independently(&rx.received()[0]));
}

#[tokio::test]
async fn lunas_events_redeliver_requeues_dead_letters_from_the_command_line() {
    let rx = Receiver::start(&[Reply::Status(500)]).await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&rx.url(), ""),
        delivery("[]", 2000)
    ))
    .await;
    gw.callback("cli", PrepaidStatus::Success).await;
    assert_eq!(gw.step(now()).await.failed, 1);
    let config_path = gw.dir.path().join("lunas.toml");
    std::fs::write(
        &config_path,
        config_text(&gw.dir.path().join("lunas.db"), &gw.extra),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lunas"))
        .args(["events", "redeliver", "--dead", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "queued 1 deliveries"
    );
    assert_eq!(gw.step(now() + Duration::from_secs(1)).await.delivered, 1);
}

#[tokio::test]
async fn a_test_event_is_signed_like_a_delivery_and_says_what_the_endpoint_answered() {
    let rx = Receiver::start(&[Reply::Status(401)]).await;
    let gw = Manual::start(&endpoint(&rx.url(), "")).await;
    // The handler refuses the first: the answer says so, and nothing is stored or retried.
    let (status, refused) = gw
        .post("/api/v1/endpoints/merchant/test", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["delivered"], false);
    assert_eq!(refused["status"], 401);
    let (_, sent) = gw
        .post("/api/v1/endpoints/merchant/test", serde_json::json!({}))
        .await;
    assert_eq!(
        (sent["delivered"].as_bool(), sent["status"].as_u64()),
        (Some(true), Some(200))
    );
    let received = rx.received();
    assert_eq!(received.len(), 2);
    let r = &received[1];
    assert_eq!(
        r.headers["webhook-id"],
        sent["webhook_id"].as_str().unwrap()
    );
    assert_eq!(r.body, sent["body"].as_str().unwrap());
    assert!(verify_independently(r));
    standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .verify(r.body.as_bytes(), &r.headers)
        .expect("standardwebhooks verifies");
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["type"], "endpoint.test");
    assert_eq!(body["data"]["endpoint"], "merchant");
    assert_eq!(
        gw.get("/api/v1/events").await["events"],
        serde_json::json!([])
    );
    assert_eq!(gw.step(now()).await, lunas::delivery::StepReport::default());
    assert_eq!(rx.received().len(), 2, "never retried");

    let (status, unknown) = gw
        .post("/api/v1/endpoints/nope/test", serde_json::json!({}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(unknown["error"]["code"], "unknown_endpoint");
}

#[tokio::test]
async fn a_test_event_to_an_endpoint_that_is_down_says_why() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw = Manual::start(&endpoint(&format!("http://{closed}/hook"), "")).await;
    let (status, sent) = gw
        .post("/api/v1/endpoints/merchant/test", serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(sent["delivered"], false);
    assert_eq!(sent["status"], Value::Null);
    assert_eq!(sent["error"], "could not connect");
}

/// The held deliveries of `endpoint` as `/api/v1/endpoints` and `/metrics` show them.
async fn held(gw: &Manual, endpoint: &str) -> (i64, String) {
    let list = gw.get("/api/v1/endpoints").await;
    let api = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == endpoint)
        .unwrap()["held"]
        .as_i64()
        .unwrap();
    let text = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("lunas_deliveries_held{{endpoint=\"{endpoint}\"}}")))
        .unwrap_or("")
        .to_owned();
    (api, line)
}

#[tokio::test]
async fn events_behind_a_dead_letter_are_held_and_shown_until_it_is_redelivered() {
    let rx = Receiver::start(&[Reply::Status(500)]).await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&rx.url(), ""),
        delivery("[]", 2000)
    ))
    .await;
    gw.callback("held", PrepaidStatus::Process).await; // its only attempt fails: dead
    gw.callback("held", PrepaidStatus::Success).await;
    let t0 = now();
    assert_eq!(gw.step(t0).await.failed, 1);
    assert_eq!(
        gw.step(t0 + Duration::from_secs(60)).await.attempted,
        0,
        "held"
    );
    let (api, metric) = held(&gw, "merchant").await;
    assert_eq!(api, 1);
    assert!(metric.ends_with(" 1"), "{metric}");
    let list = gw.get("/api/v1/endpoints").await;
    assert_eq!(list["items"][0]["on_dead_letter"], "hold");
    assert_eq!(list["items"][0]["dead"], 1);
    // Redelivering the dead letter releases the rest, in order.
    let (status, _) = gw
        .post("/api/v1/deliveries/redeliver", serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
    gw.step(t0 + Duration::from_secs(61)).await;
    gw.step(t0 + Duration::from_secs(62)).await;
    assert_eq!(
        rx.types(),
        [
            "transaction.pending",
            "transaction.pending",
            "transaction.succeeded"
        ]
    );
    assert_eq!(held(&gw, "merchant").await.0, 0);
}

#[tokio::test]
async fn an_endpoint_that_delivers_later_events_goes_past_a_dead_letter() {
    let rx = Receiver::start(&[Reply::Status(500)]).await;
    let gw = Manual::start(&format!(
        "{}{}",
        endpoint(&rx.url(), "on_dead_letter = \"deliver_later\"\n"),
        delivery("[]", 2000)
    ))
    .await;
    gw.callback("gap", PrepaidStatus::Process).await;
    gw.callback("gap", PrepaidStatus::Success).await;
    let t0 = now();
    assert_eq!(gw.step(t0).await.failed, 1);
    assert_eq!(gw.step(t0 + Duration::from_secs(1)).await.delivered, 1);
    assert_eq!(rx.types(), ["transaction.pending", "transaction.succeeded"]);
    assert_eq!(held(&gw, "merchant").await.0, 0);
}

#[tokio::test]
async fn a_disabled_endpoint_is_paused_and_an_unconfigured_one_is_shown() {
    let rx = Receiver::start(&[]).await;
    let gw = Manual::start(&endpoint(&rx.url(), "enabled = false\n")).await;
    gw.callback("paused", PrepaidStatus::Success).await;
    let report = gw.step(now()).await;
    assert_eq!(
        (report.fanned_out, report.attempted),
        (1, 0),
        "queued, not sent"
    );
    assert!(rx.received().is_empty());
    let list = gw.get("/api/v1/endpoints").await;
    assert_eq!(list["items"][0]["enabled"], false);
    assert_eq!(list["items"][0]["pending"], 1);
    // Enabled again (a restart with the endpoint on): what waited is delivered.
    let mut gw = gw;
    gw.extra = endpoint(&rx.url(), "");
    let gw = gw.restart().await;
    assert_eq!(gw.step(now()).await.delivered, 1);
    // Removed from the configuration with a delivery still queued: shown, not silently kept.
    let mut gw = gw;
    gw.extra = endpoint(&rx.url(), "enabled = false\n");
    let gw = gw.restart().await;
    gw.callback("orphan", PrepaidStatus::Failed).await;
    assert_eq!(gw.step(now()).await.attempted, 0);
    let mut gw = gw;
    gw.extra = String::new();
    let gw = gw.restart().await;
    let list = gw.get("/api/v1/endpoints").await;
    assert_eq!(list["unconfigured"][0]["id"], "merchant", "{list}");
    assert_eq!(list["unconfigured"][0]["pending"], 1);
}
