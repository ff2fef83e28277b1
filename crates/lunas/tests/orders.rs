//! Orders against `lunas sandbox`: lunas places top-ups, bill payments and virtual accounts
//! itself, exactly once, and never calls an order `failed` while its outcome is unknown. Each
//! fault knob of the sandbox (503 before or after the provider recorded the order, a dropped
//! connection, an answer later than lunas waits) leaves exactly one provider-side transaction,
//! the right final state and exactly one final event. The sandbox runs on a manual clock; the
//! reconciler is stepped with explicit times.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lunas::app::Gateway;
use lunas::config::Config;
use lunas::reconcile::Reconciler;
use lunas_sandbox::{Clock, Sandbox, SandboxConfig};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

const TOKEN: &str = "test-admin-token-0123456789";
const USER: &str = "081200000001";
const KEY: &str = "prod-key-not-real";

struct World {
    gw: SocketAddr,
    sb: SocketAddr,
    sandbox: Sandbox,
    reconciler: Arc<Reconciler>,
    client: reqwest::Client,
    dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    t0: OffsetDateTime,
}

fn gateway_text(db: &str, sb: SocketAddr) -> String {
    format!(
        r#"
[server]
admin_token = "{TOKEN}"
[storage]
url = "{db}"
[[providers]]
id = "iak"
kind = "iak"
username = "{USER}"
api_key = "{KEY}"
prepaid_url = "http://{sb}"
postpaid_url = "http://{sb}"
[providers.orders]
timeout_ms = 400
[providers.reconcile]
first_check_after = "60s"
backoff = ["60s"]
timeout_ms = 2000
[[providers]]
id = "mcp"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
base_url = "http://{sb}"
[providers.orders]
timeout_ms = 400
[providers.reconcile]
first_check_after = "60s"
backoff = ["60s"]
timeout_ms = 2000
"#
    )
}

async fn start_gateway(
    db: &str,
    sb: SocketAddr,
    listener: tokio::net::TcpListener,
) -> (
    Arc<Reconciler>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let config = Config::from_parts(Some(&gateway_text(db, sb)), &[], &|_| None)
        .expect("valid gateway config");
    let gateway = Gateway::build(&config).await.unwrap();
    let reconciler = gateway.reconciler();
    let server = tokio::spawn(gateway.serve_http(listener, std::future::pending()));
    (reconciler, server)
}

/// A gateway and a sandbox wired to each other; `faults` are the sandbox accounts' fault knobs
/// (the same for the IAK and the MCPayment account).
async fn world(faults: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (gw, sb) = (
        gw_listener.local_addr().unwrap(),
        sb_listener.local_addr().unwrap(),
    );
    let db = common::storage_url(&dir.path().join("lunas.db"));
    let (reconciler, server) = start_gateway(&db, sb, gw_listener).await;
    let sandbox_text = format!(
        r#"
seed = 5
[[accounts]]
id = "iak"
kind = "iak"
username = "{USER}"
api_key = "{KEY}"
environment = "production"
callback_url = "http://{gw}/callbacks/iak"
callback_delay_ms = 1000
[accounts.faults]
order_hang_ms = 1500
{faults}
[[accounts]]
id = "mcp"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
callback_url = "http://{gw}/callbacks/mcp"
[accounts.faults]
order_hang_ms = 1500
{faults}
"#
    );
    let sandbox_config =
        SandboxConfig::deserialize(toml::from_str::<toml::Value>(&sandbox_text).unwrap()).unwrap();
    let t0 = OffsetDateTime::now_utc();
    let sandbox = Sandbox::with_clock(sandbox_config, Clock::manual(t0)).unwrap();
    let router = sandbox.router();
    tokio::spawn(async move { axum::serve(sb_listener, router).await });
    World {
        gw,
        sb,
        sandbox,
        reconciler,
        client: reqwest::Client::new(),
        dir,
        server,
        t0,
    }
}

impl World {
    async fn order(&self, body: Value) -> (u16, Value) {
        self.post("/api/v1/orders", body).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(format!("http://{}{path}", self.gw))
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

    async fn tx(&self, provider: &str, reference: &str) -> Value {
        let res = self
            .client
            .get(format!(
                "http://{}/api/v1/transactions/{provider}/{reference}",
                self.gw
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    async fn event_types(&self) -> Vec<String> {
        let res = self
            .client
            .get(format!("http://{}/api/v1/events", self.gw))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every provider-side transaction the sandbox holds under `reference`.
    async fn at_provider(&self, reference: &str) -> Vec<Value> {
        let res = self
            .client
            .get(format!(
                "http://{}/sandbox/transactions?ref={reference}",
                self.sb
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["items"].as_array().unwrap().clone()
    }

    /// The provider's own processing: time passes and due callbacks are sent.
    async fn provider_works(&self, secs: u64) {
        self.sandbox.clock().advance(Duration::from_secs(secs));
        self.sandbox.run_due().await;
    }

    async fn step(&self, after_secs: u64) -> lunas::reconcile::StepReport {
        self.reconciler
            .step(self.t0 + Duration::from_secs(after_secs))
            .await
            .unwrap()
    }

    /// The order requests the sandbox received for `reference` (a postpaid payment: the
    /// bill's `tr_id`).
    async fn order_requests(&self, reference: &str) -> usize {
        let log = self.sandbox.log();
        let log = serde_json::to_value(&log).unwrap();
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["ref"] == reference
                    && matches!(
                        r["command"].as_str(),
                        Some("top-up" | "pay-pasca" | "va-create")
                    )
            })
            .count()
    }
}

fn top_up(reference: &str, customer: &str) -> Value {
    json!({"provider_id": "iak", "ref": reference, "kind": "prepaid",
           "product_code": "xld25000", "customer_id": customer})
}

fn va(reference: &str) -> Value {
    json!({"provider_id": "mcp", "ref": reference, "kind": "va", "order_id": format!("ORD-{reference}"),
           "amount": 50000, "payment_channel": "BRI", "billing_name": "Budi",
           "customer": {"email": "budi@example.com", "full_name": "Budi Santoso"}})
}

fn finals(types: &[String]) -> usize {
    types
        .iter()
        .filter(|t| matches!(t.as_str(), "transaction.succeeded" | "transaction.failed"))
        .count()
}

#[tokio::test]
async fn a_top_up_is_placed_once_and_settled_by_its_callback() {
    let w = world("").await;
    let (code, tx) = w.order(top_up("o-1", "081234560000")).await;
    assert_eq!(code, 201, "{tx}");
    assert_eq!(
        (
            tx["origin"].as_str(),
            tx["submission"].as_str(),
            tx["state"].as_str()
        ),
        (Some("order"), Some("accepted"), Some("pending"))
    );
    assert_eq!(tx["product_code"], "xld25000");
    w.provider_works(2).await;
    let tx = w.tx("iak", "o-1").await;
    assert_eq!(tx["state"], "succeeded");
    assert!(tx["serial_number"].is_string());
    assert_eq!(w.at_provider("o-1").await.len(), 1);
    assert_eq!(finals(&w.event_types().await), 1);
    let metrics = w
        .client
        .get(format!("http://{}/metrics", w.gw))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"lunas_orders_total{provider="iak",verdict="accepted"} 1"#),
        "{metrics}"
    );

    // The same order again is the same transaction: nothing is sent again.
    let (code, again) = w.order(top_up("o-1", "081234560000")).await;
    assert_eq!((code, again["state"].as_str()), (200, Some("succeeded")));
    assert_eq!(w.order_requests("o-1").await, 1);
    // The same ref with other fields is a conflict.
    let (code, body) = w.order(top_up("o-1", "081299999999")).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("ref_conflict")),
        "{body}"
    );
    // A ref lunas did not place is one too.
    let (code, _) = w
        .post(
            "/api/v1/transactions",
            json!({"provider_id": "iak", "ref": "reg-1", "kind": "prepaid"}),
        )
        .await;
    assert_eq!(code, 201);
    let (code, _) = w.order(top_up("reg-1", "081234560000")).await;
    assert_eq!(code, 409);
}

#[tokio::test]
async fn the_providers_own_refusal_is_a_definite_failure() {
    let w = world("").await;
    let mut body = top_up("o-bad", "081234560000");
    body["product_code"] = json!("nosuchproduct");
    let (code, tx) = w.order(body).await;
    assert_eq!(code, 201, "{tx}");
    assert_eq!(
        (
            tx["state"].as_str(),
            tx["submission"].as_str(),
            tx["response_code"].as_str()
        ),
        (Some("failed"), Some("rejected"), Some("20"))
    );
    assert_eq!(w.event_types().await, ["transaction.failed"]);
}

#[tokio::test]
async fn an_order_that_cannot_be_sent_is_refused_and_changes_nothing() {
    let w = world("").await;
    for (body, code) in [
        (
            json!({"provider_id": "iak", "ref": "x", "kind": "prepaid"}),
            422,
        ),
        (
            json!({"provider_id": "iak", "ref": "x", "kind": "va", "amount": 1}),
            422,
        ),
        (
            json!({"provider_id": "mcp", "ref": "x", "kind": "prepaid", "product_code": "a", "customer_id": "b"}),
            422,
        ),
        (
            json!({"provider_id": "nope", "ref": "x", "kind": "prepaid", "product_code": "a", "customer_id": "b"}),
            422,
        ),
        (
            json!({"provider_id": "iak", "ref": " x", "kind": "prepaid", "product_code": "a", "customer_id": "b"}),
            422,
        ),
        (
            json!({"provider_id": "iak", "ref": "x", "kind": "prepaid", "product_code": "a", "customer_id": "b", "colour": "red"}),
            422,
        ),
    ] {
        let (got, answer) = w.order(body.clone()).await;
        assert_eq!(got, code, "{body} → {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    let res = w
        .client
        .post(format!("http://{}/api/v1/orders", w.gw))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(w.at_provider("x").await.is_empty());
}

/// Each fault leaves the top-up unknown (never failed), and the reconciler settles it with the
/// same ref: exactly one transaction at the provider, succeeded, one final event.
#[tokio::test]
async fn every_order_fault_leaves_exactly_one_top_up_and_the_right_outcome() {
    for fault in [
        "order_5xx_before_commit = 1",
        "order_5xx_after_commit = 1",
        "order_drop_after_commit = 1",
        "order_hang_after_commit = 1",
    ] {
        let w = world(fault).await;
        let (code, tx) = w.order(top_up("f-1", "081234560000")).await;
        assert_eq!(code, 201, "{fault}: {tx}");
        assert_eq!(
            (tx["state"].as_str(), tx["submission"].as_str()),
            (Some("pending"), Some("unknown")),
            "{fault}: never failed while unknown"
        );
        let expected_before = usize::from(fault != "order_5xx_before_commit = 1");
        assert_eq!(w.at_provider("f-1").await.len(), expected_before, "{fault}");
        // Settled with the same ref (IAK: the top-up repeated is its status check).
        let report = w.step(1).await;
        assert_eq!(report.checked, 1, "{fault}");
        let tx = w.tx("iak", "f-1").await;
        assert_eq!(tx["submission"], "accepted", "{fault}: {tx}");
        assert_eq!(w.at_provider("f-1").await.len(), 1, "{fault}: exactly one");
        w.provider_works(3).await;
        w.step(200).await;
        let tx = w.tx("iak", "f-1").await;
        assert_eq!(tx["state"], "succeeded", "{fault}");
        assert_eq!(w.at_provider("f-1").await.len(), 1, "{fault}");
        let types = w.event_types().await;
        assert!(
            !types.iter().any(|t| t == "transaction.failed"),
            "{fault}: {types:?}"
        );
        assert_eq!(finals(&types), 1, "{fault}: {types:?}");
    }
}

#[tokio::test]
async fn a_bill_is_inquired_then_paid_once_for_the_agreed_price() {
    let w = world("").await;
    let (code, tx) = w
        .order(
            json!({"provider_id": "iak", "ref": "b-1", "kind": "postpaid",
                      "product_code": "PLNPOSTPAID", "customer_id": "530000000000"}),
        )
        .await;
    assert_eq!(code, 201, "{tx}");
    let price = tx["bill"]["price"].as_i64().expect("a bill");
    let bill = tx["bill"]["tr_id"].as_str().unwrap().to_owned();
    assert!(tx["bill"]["tr_id"].is_string());
    assert_eq!(
        (tx["state"].as_str(), tx["submission"].as_str()),
        (Some("pending"), Some("accepted"))
    );
    assert!(
        w.tx("iak", "b-1").await["next_check_at"].is_null(),
        "an inquiry alone is not followed"
    );
    let (code, body) = w
        .post("/api/v1/orders/iak/b-1/pay", json!({"amount": price - 1}))
        .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("amount_changed"))
    );
    let (code, paid) = w
        .post("/api/v1/orders/iak/b-1/pay", json!({"amount": price}))
        .await;
    assert_eq!(code, 200, "{paid}");
    assert_eq!(
        (paid["state"].as_str(), paid["submission"].as_str()),
        (Some("succeeded"), Some("accepted"))
    );
    // Asked again: the same answer, no second payment.
    let (code, again) = w
        .post("/api/v1/orders/iak/b-1/pay", json!({"amount": price}))
        .await;
    assert_eq!((code, again["state"].as_str()), (200, Some("succeeded")));
    assert_eq!(w.order_requests(&bill).await, 1, "pay-pasca once");
    let items = w.at_provider("b-1").await;
    assert_eq!(items.len(), 1);
    assert_eq!(finals(&w.event_types().await), 1);
}

#[tokio::test]
async fn a_bill_over_max_amount_is_kept_unpaid() {
    let w = world("").await;
    let (code, body) = w
        .order(json!({"provider_id": "iak", "ref": "b-2", "kind": "postpaid", "pay": true, "max_amount": 1,
                      "product_code": "PLNPOSTPAID", "customer_id": "530000000000"}))
        .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (422, Some("over_max_amount")),
        "{body}"
    );
    let price = body["bill"]["price"].as_i64().unwrap();
    let bill = body["bill"]["tr_id"].as_str().unwrap().to_owned();
    assert_eq!(w.order_requests(&bill).await, 0, "nothing paid");
    let (code, paid) = w
        .post("/api/v1/orders/iak/b-2/pay", json!({"amount": price}))
        .await;
    assert_eq!((code, paid["state"].as_str()), (200, Some("succeeded")));

    // Within max_amount it is paid at once.
    let (code, tx) = w
        .order(json!({"provider_id": "iak", "ref": "b-3", "kind": "postpaid", "pay": true, "max_amount": 10_000_000,
                      "product_code": "PLNPOSTPAID", "customer_id": "530000000000"}))
        .await;
    assert_eq!(
        (code, tx["state"].as_str()),
        (201, Some("succeeded")),
        "{tx}"
    );
}

#[tokio::test]
async fn a_payment_whose_answer_is_lost_is_settled_by_check_status_not_paid_twice() {
    for fault in [
        "order_5xx_after_commit = 1",
        "order_drop_after_commit = 1",
        "order_hang_after_commit = 1",
    ] {
        let w = world(fault).await;
        let (_, tx) = w
            .order(
                json!({"provider_id": "iak", "ref": "b-4", "kind": "postpaid",
                          "product_code": "PLNPOSTPAID", "customer_id": "530000000000"}),
            )
            .await;
        let price = tx["bill"]["price"].as_i64().unwrap();
        let bill = tx["bill"]["tr_id"].as_str().unwrap().to_owned();
        let (code, paid) = w
            .post("/api/v1/orders/iak/b-4/pay", json!({"amount": price}))
            .await;
        assert_eq!(code, 200, "{fault}: {paid}");
        assert_eq!(
            (paid["state"].as_str(), paid["submission"].as_str()),
            (Some("pending"), Some("unknown")),
            "{fault}"
        );
        w.step(1).await;
        let tx = w.tx("iak", "b-4").await;
        assert_eq!(tx["state"], "succeeded", "{fault}: {tx}");
        // Paid once at the provider (a hung request is logged only when answered, so the
        // provider's own record is what counts).
        let at_provider = w.at_provider("b-4").await;
        assert_eq!(at_provider.len(), 1, "{fault}: {at_provider:?}");
        assert_eq!(at_provider[0]["status"], "paid", "{fault}: {at_provider:?}");
        assert!(
            w.order_requests(&bill).await <= 1,
            "{fault}: pay-pasca at most once"
        );
        assert_eq!(finals(&w.event_types().await), 1, "{fault}");
    }
}

#[tokio::test]
async fn a_virtual_account_is_created_once_and_paid() {
    let w = world("").await;
    let (code, tx) = w.order(va("v-1")).await;
    assert_eq!(code, 201, "{tx}");
    assert_eq!(
        (tx["state"].as_str(), tx["submission"].as_str()),
        (Some("awaiting_payment"), Some("accepted"))
    );
    assert!(
        tx["va_number"].as_str().is_some_and(|n| !n.is_empty()),
        "{tx}"
    );
    assert!(tx["expires_at"].is_string(), "{tx}");
    let res = w
        .client
        .post(format!("http://{}/sandbox/va/pay", w.sb))
        .json(&json!({"external_id": "v-1", "amount": 50000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tx = w.tx("mcp", "v-1").await;
    assert_eq!(tx["state"], "paid");
    assert_eq!(w.at_provider("v-1").await.len(), 1);
}

#[tokio::test]
async fn every_order_fault_leaves_exactly_one_virtual_account() {
    for fault in [
        "order_5xx_before_commit = 1",
        "order_5xx_after_commit = 1",
        "order_drop_after_commit = 1",
        "order_hang_after_commit = 1",
    ] {
        let w = world(fault).await;
        let (code, tx) = w.order(va("v-f")).await;
        assert_eq!(code, 201, "{fault}: {tx}");
        assert_eq!(tx["submission"], "unknown", "{fault}");
        assert_eq!(tx["state"], "awaiting_payment", "{fault}");
        w.step(1).await;
        let tx = w.tx("mcp", "v-f").await;
        assert_eq!(
            w.at_provider("v-f").await.len(),
            1,
            "{fault}: exactly one VA"
        );
        if fault == "order_5xx_before_commit = 1" {
            // It never reached MCPayment: the repeat made it.
            assert_eq!(tx["submission"], "accepted", "{fault}: {tx}");
            assert!(tx["va_number"].is_string());
        } else {
            // It exists, but MCPayment offers no way to look it up without its
            // transaction_id: it stays unknown (never canceled) until a person or a payment
            // callback says more.
            assert_eq!(tx["submission"], "unknown", "{fault}: {tx}");
            assert_eq!(tx["state"], "awaiting_payment", "{fault}");
        }
    }
}

/// The gateway dies between committing an order and hearing its answer; a new process on the
/// same database settles it with the same ref when the order's lease ends.
#[tokio::test]
async fn an_order_survives_the_gateway_dying_before_the_answer() {
    let mut w = world("order_hang_after_commit = 1").await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let sent = client
        .post(format!("http://{}/api/v1/orders", w.gw))
        .bearer_auth(TOKEN)
        .json(&top_up("k-1", "081234560000"))
        .send()
        .await;
    assert!(
        sent.is_err(),
        "no answer: the gateway is waiting for the provider"
    );
    // The process dies while the provider holds the order.
    w.server.abort();
    let _ = (&mut w.server).await;
    // The new process listens where the old one did (the provider calls back there).
    let listener = tokio::net::TcpListener::bind(w.gw).await.unwrap();
    let db = common::storage_url(&w.dir.path().join("lunas.db"));
    let (reconciler, server) = start_gateway(&db, w.sb, listener).await;
    w.reconciler = reconciler;
    w.server = server;
    let tx = w.tx("iak", "k-1").await;
    assert_eq!(
        (tx["state"].as_str(), tx["submission"].as_str()),
        (Some("pending"), Some("sent"))
    );
    assert_eq!(
        w.step(1).await.checked,
        0,
        "leased to the request that died"
    );
    w.step(120).await;
    let tx = w.tx("iak", "k-1").await;
    assert_eq!(tx["submission"], "accepted", "{tx}");
    w.provider_works(3).await;
    assert_eq!(w.tx("iak", "k-1").await["state"], "succeeded");
    assert_eq!(w.at_provider("k-1").await.len(), 1);
    assert_eq!(finals(&w.event_types().await), 1);
}

#[tokio::test]
async fn wait_holds_the_answer_until_the_order_is_final() {
    let w = world("").await;
    let sandbox = w.sandbox.clone();
    // The provider finishes a second after the order is placed.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sandbox.clock().advance(Duration::from_secs(2));
        sandbox.run_due().await;
    });
    let (code, tx) = w
        .post("/api/v1/orders?wait=5", top_up("w-1", "081234560000"))
        .await;
    assert_eq!(
        (code, tx["state"].as_str()),
        (201, Some("succeeded")),
        "{tx}"
    );
    let (code, body) = w
        .post("/api/v1/orders?wait=61", top_up("w-2", "0812"))
        .await;
    assert_eq!(code, 400, "{body}");
}

#[tokio::test]
async fn an_order_that_could_not_connect_is_kept_unsent_never_failed() {
    // The provider cannot be reached at all: nothing left, so nothing is unknown either.
    let gw = common::TestGateway::start_http_only(
        r#"
[[providers]]
id = "iakdown"
kind = "iak"
username = "u"
api_key = "k"
prepaid_url = "http://127.0.0.1:9"
"#,
    )
    .await;
    let (code, tx) = gw
        .post_json(
            "/api/v1/orders",
            &json!({"provider_id": "iakdown", "ref": "down-1", "kind": "prepaid",
                    "product_code": "xld25000", "customer_id": "081234560000"}),
        )
        .await;
    assert_eq!(code, 201, "{tx}");
    assert_eq!(
        (tx["state"].as_str(), tx["submission"].as_str()),
        (Some("pending"), Some("not_sent"))
    );
    let detail = gw.transaction("iakdown", "down-1").await.unwrap();
    assert!(detail["next_check_at"].is_string(), "it will be sent again");
    assert!(gw.event_types().await.is_empty(), "nothing failed");
}

#[tokio::test]
async fn the_order_budget_of_an_account_answers_429_with_retry_after() {
    let gw = common::TestGateway::start_http_only(
        r#"
[[providers]]
id = "iakslow"
kind = "iak"
username = "u"
api_key = "k"
prepaid_url = "http://127.0.0.1:9"
[providers.orders]
rate_per_minute = 1
"#,
    )
    .await;
    let order = |reference: &str| {
        json!({"provider_id": "iakslow", "ref": reference, "kind": "prepaid",
               "product_code": "xld25000", "customer_id": "081234560000"})
    };
    let (code, _) = gw.post_json("/api/v1/orders", &order("slow-1")).await;
    assert_eq!(code, 201);
    let res = gw
        .client
        .post(gw.url("/api/v1/orders"))
        .bearer_auth(common::TOKEN)
        .json(&order("slow-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        gw.transaction("iakslow", "slow-2").await.is_none(),
        "nothing committed"
    );
}
