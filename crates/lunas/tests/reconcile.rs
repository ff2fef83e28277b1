//! The reconciler against `lunas sandbox`: every registered transaction, or one announced by a
//! pending callback, reaches its true outcome (or review) with no callback at all. The sandbox
//! runs on a manual clock and sends callbacks only when stepped; the reconciler is stepped with
//! explicit times. No sleeps.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lunas::app::Gateway;
use lunas::config::Config;
use lunas::reconcile::Reconciler;
use lunas_protocol::iak::postpaid::{PostpaidCommand, PostpaidRequest, PostpaidResult};
use lunas_protocol::iak::prepaid::{
    PrepaidCallback, PrepaidCommand, PrepaidRequest, PrepaidResult, PrepaidStatus,
};
use lunas_protocol::mcp::{
    CreateVaRequest, CustomerDetails, McpResponse, PaymentDetails, PaymentSystem,
};
use lunas_protocol::{ApiVersion, Format, Secret};
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
    /// When the test began: registrations happen now, checks are stepped from here.
    t0: OffsetDateTime,
}

/// A gateway and a sandbox wired to each other. `account` adds lines to the sandbox's IAK
/// account (environment, faults); `provider` adds lines to the gateway's IAK provider.
async fn world(account: &str, provider: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (gw, sb) = (
        gw_listener.local_addr().unwrap(),
        sb_listener.local_addr().unwrap(),
    );
    let gateway_text = format!(
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
{provider}
[providers.reconcile]
first_check_after = "60s"
backoff = ["60s"]
give_up_after = "24h"
timeout_ms = 500
[[providers]]
id = "mcp"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
base_url = "http://{sb}"
[providers.reconcile]
first_check_after = "60s"
backoff = ["60s"]
timeout_ms = 500
"#,
        db = common::storage_url(&dir.path().join("lunas.db"))
    );
    let config =
        Config::from_parts(Some(&gateway_text), &[], &|_| None).expect("valid gateway config");
    let gateway = Gateway::build(&config).await.unwrap();
    let reconciler = gateway.reconciler();
    tokio::spawn(gateway.serve_http(gw_listener, std::future::pending()));

    let sandbox_text = format!(
        r#"
seed = 3
[[accounts]]
id = "iak"
kind = "iak"
username = "{USER}"
api_key = "{KEY}"
callback_url = "http://{gw}/callbacks/iak"
callback_delay_ms = 1000
{account}
[[accounts]]
id = "mcp"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
callback_url = "http://{gw}/callbacks/mcp"
[accounts.faults]
drop = 1.0
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
        t0,
    }
}

impl World {
    /// The merchant buys a top-up at the provider and tells lunas about it.
    async fn top_up(&self, reference: &str, customer: &str) {
        let req = PrepaidRequest::new(
            USER,
            &Secret::new(KEY),
            PrepaidCommand::TopUp {
                ref_id: reference.into(),
                customer_id: customer.into(),
                product_code: "xld25000".into(),
            },
        );
        let res = self
            .client
            .post(format!("http://{}/api/top-up", self.sb))
            .body(req.encode(Format::Json, ApiVersion::V2))
            .send()
            .await
            .unwrap();
        let first = PrepaidResult::parse(&res.bytes().await.unwrap())
            .unwrap()
            .message;
        assert_eq!(first.rc, "39", "a top-up starts in process");
        self.register(json!({"provider_id": "iak", "ref": reference, "kind": "prepaid", "customer_id": customer})).await;
    }

    async fn register(&self, body: Value) {
        let res = self
            .client
            .post(format!("http://{}/api/v1/transactions", self.gw))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
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

    async fn post(&self, url: String, body: Value) -> (u16, Value) {
        let res = self.client.post(url).json(&body).send().await.unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }
}

fn verdicts(tx: &Value, source: &str) -> Vec<String> {
    common::arrivals(tx, |e| e["source"] == source)
}

#[tokio::test]
async fn a_dropped_callback_is_recovered_by_asking_the_provider() {
    let w = world(
        "environment = \"production\"\n[accounts.faults]\ndrop = 1.0",
        "",
    )
    .await;
    w.top_up("drop-1", "081200001234").await;
    w.provider_works(2).await;
    assert_eq!(
        w.tx("iak", "drop-1").await["state"],
        "pending",
        "no callback came"
    );
    assert_eq!(
        w.step(30).await.checked,
        0,
        "not due before first_check_after"
    );
    let report = w.step(61).await;
    assert_eq!((report.checked, report.settled), (1, 1));
    let tx = w.tx("iak", "drop-1").await;
    assert_eq!(tx["state"], "succeeded");
    assert!(tx["serial_number"].is_string(), "the check carries the sn");
    assert_eq!(verdicts(&tx, "check"), ["applied"]);
    assert_eq!(w.event_types().await, ["transaction.succeeded"]);
    assert_eq!(
        w.step(200).await.checked,
        0,
        "a settled transaction is not asked again"
    );
}

#[tokio::test]
async fn development_mode_stays_in_process_until_the_window_passes_then_needs_review() {
    let w = world("environment = \"development\"", "").await;
    w.top_up("dev-1", "081200005678").await;
    w.provider_works(60).await;
    assert_eq!(w.step(61).await.checked, 1);
    assert_eq!(w.tx("iak", "dev-1").await["state"], "pending");
    assert_eq!(
        w.step(121).await.checked,
        1,
        "asked again after the backoff"
    );
    let report = w.step(25 * 3600).await;
    assert_eq!(report.gave_up, 1);
    let tx = w.tx("iak", "dev-1").await;
    assert_eq!(
        (tx["state"].as_str(), tx["needs_review"].as_bool()),
        (Some("pending"), Some(true))
    );
    assert_eq!(w.event_types().await, ["transaction.unresolved"]);
    assert_eq!(
        w.step(26 * 3600).await.checked,
        0,
        "given up: no more checks"
    );
    // The sandbox report still settles it, by callback.
    let (status, _) = w
        .post(
            format!("http://{}/sandbox/report", w.sb),
            json!({"ref": "dev-1", "outcome": "failed"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(w.tx("iak", "dev-1").await["state"], "failed");
}

#[tokio::test]
async fn check_status_errors_garbage_and_timeouts_are_never_an_outcome() {
    let w = world(
        "environment = \"production\"\n[accounts.faults]\ndrop = 1.0\ncheck_status_5xx = 2\ncheck_status_timeout = 1\ncheck_status_hang_ms = 2000\ncheck_status_garbage = 1",
        "",
    )
    .await;
    w.top_up("flaky-1", "081200001111").await;
    w.provider_works(2).await;
    for (i, at) in [61, 122, 183, 244].iter().enumerate() {
        let report = w.step(*at).await;
        assert_eq!(
            (report.checked, report.failed),
            (1, 1),
            "check {i} has no usable answer"
        );
        assert_eq!(w.tx("iak", "flaky-1").await["state"], "pending");
    }
    assert_eq!(w.step(305).await.settled, 1);
    let tx = w.tx("iak", "flaky-1").await;
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(
        verdicts(&tx, "check"),
        [
            "check_failed",
            "check_failed",
            "check_failed",
            "check_failed",
            "applied"
        ]
    );
    // The two identical 503 answers are stored once and counted twice.
    let checks: Vec<(&str, i64)> = tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "check")
        .map(|e| {
            (
                e["detail"].as_str().unwrap(),
                e["repeats"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        checks[0].0.contains("HTTP 503") && checks[0].1 == 1,
        "{checks:?}"
    );
    assert!(checks[1].0.contains("timed out"), "{checks:?}");
    assert!(
        checks[2].0.contains("unreadable") || checks[2].0.contains("HTTP"),
        "{checks:?}"
    );
}

#[tokio::test]
async fn a_conflicting_second_callback_is_flagged_and_the_provider_keeps_the_first() {
    let w = world(
        "environment = \"production\"\n[accounts.faults]\nconflicting = 1.0",
        "",
    )
    .await;
    w.top_up("conf-1", "081200002222").await;
    w.provider_works(2).await;
    let tx = w.tx("iak", "conf-1").await;
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["needs_review"], true);
    assert_eq!(
        w.event_types().await,
        ["transaction.succeeded", "transaction.conflict"]
    );
    // A check (forced) agrees with the first outcome and changes nothing.
    let (status, body) = w.post_admin("/api/v1/transactions/iak/conf-1/check").await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["state"].as_str(), body["check"]["verdict"].as_str()),
        (Some("succeeded"), Some("duplicate"))
    );
}

impl World {
    async fn post_admin(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .post(format!("http://{}{path}", self.gw))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn forged_callback(&self, reference: &str, status: PrepaidStatus) -> u16 {
        let (rc, msg) = if status == PrepaidStatus::Success {
            ("00", "SUCCESS")
        } else {
            ("07", "FAILED")
        };
        let body = PrepaidCallback {
            ref_id: reference.into(),
            status,
            product_code: "xld25000".into(),
            customer_id: "081200001007".into(),
            price: 25000,
            message: msg.into(),
            sn: Some("FORGED-SN".into()),
            pin: None,
            activation_code: None,
            balance: 1,
            tr_id: 1,
            rc: rc.into(),
            sign: String::new(),
        }
        .signed(USER, &Secret::new(KEY))
        .encode(Format::Json, ApiVersion::V2);
        let res = self
            .client
            .post(format!("http://{}/callbacks/iak", self.gw))
            .body(body)
            .send()
            .await
            .unwrap();
        res.status().as_u16()
    }
}

#[tokio::test]
async fn with_confirmation_a_forged_success_cannot_change_the_outcome() {
    // The provider fails this top-up (customer number ending 1007) and its callback is lost.
    let w = world(
        "environment = \"production\"\n[accounts.faults]\ndrop = 1.0",
        "confirm_callbacks = true",
    )
    .await;
    w.top_up("forge-1", "081200001007").await;
    w.provider_works(2).await;
    // An attacker replays a validly signed callback with the status changed to success.
    assert_eq!(
        w.forged_callback("forge-1", PrepaidStatus::Success).await,
        200,
        "acknowledged: it is stored"
    );
    let held = w.tx("iak", "forge-1").await;
    assert_eq!(
        (held["state"].as_str(), held["unconfirmed_state"].as_str()),
        (Some("pending"), Some("succeeded"))
    );
    assert!(
        w.event_types().await.is_empty(),
        "nothing announced on a claim"
    );
    // The claim is checked at once (not after first_check_after).
    let report = w.step(1).await;
    assert_eq!(report.checked, 1);
    let tx = w.tx("iak", "forge-1").await;
    assert_eq!(
        tx["state"], "failed",
        "the provider's answer is the outcome"
    );
    assert_eq!(tx["needs_review"], true);
    assert_ne!(tx["serial_number"], "FORGED-SN");
    assert_eq!(
        w.event_types().await,
        ["transaction.failed", "transaction.conflict"]
    );
    // Replaying it again changes nothing either. It names another tr_id than the provider's
    // answer did, which is said once (transaction.mismatch); a further replay says nothing.
    for _ in 0..2 {
        assert_eq!(
            w.forged_callback("forge-1", PrepaidStatus::Success).await,
            200
        );
    }
    assert_eq!(w.tx("iak", "forge-1").await["state"], "failed");
    assert_eq!(
        w.event_types().await,
        [
            "transaction.failed",
            "transaction.conflict",
            "transaction.mismatch"
        ]
    );
}

#[tokio::test]
async fn with_confirmation_a_genuine_callback_commits_once_the_provider_agrees() {
    let w = world("environment = \"production\"", "confirm_callbacks = true").await;
    w.top_up("genuine-1", "081200003333").await;
    w.provider_works(2).await; // the sandbox sends the real success callback
    let held = w.tx("iak", "genuine-1").await;
    assert_eq!(
        (held["state"].as_str(), held["unconfirmed_state"].as_str()),
        (Some("pending"), Some("succeeded"))
    );
    assert_eq!(verdicts(&held, "callback"), ["unconfirmed"]);
    assert_eq!(w.step(1).await.settled, 1, "checked at once");
    let tx = w.tx("iak", "genuine-1").await;
    assert_eq!(
        (tx["state"].as_str(), tx["needs_review"].as_bool()),
        (Some("succeeded"), Some(false))
    );
    assert!(tx.get("unconfirmed_state").is_none());
    assert_eq!(w.event_types().await, ["transaction.succeeded"]);
}

#[tokio::test]
async fn an_unknown_ref_becomes_failed_only_after_the_not_found_grace() {
    let w = world("environment = \"production\"", "").await;
    w.register(json!({"provider_id": "iak", "ref": "never-sent", "kind": "prepaid"}))
        .await;
    assert_eq!(w.step(61).await.checked, 1);
    assert_eq!(
        w.tx("iak", "never-sent").await["state"],
        "pending",
        "06 within the grace period"
    );
    // The grace period (10 minutes) counts from the first not-found answer, at 61 s: at 11
    // minutes it has not passed yet; at the next check, a minute later, it has.
    w.step(11 * 60).await;
    assert_eq!(w.tx("iak", "never-sent").await["state"], "pending");
    w.step(12 * 60).await;
    let tx = w.tx("iak", "never-sent").await;
    assert_eq!(tx["state"], "failed");
    assert_eq!(tx["response_code"], "06");
    assert!(tx["message"].as_str().unwrap().starts_with("not_found"));
    assert_eq!(tx["inferred"], "not_found", "a provisional failure");
    assert_eq!(tx["needs_review"], true);
}

async fn postpaid_call(w: &World, command: PostpaidCommand) -> PostpaidResult {
    let req = PostpaidRequest::new(USER, &Secret::new(KEY), command);
    let res = w
        .client
        .post(format!("http://{}{}", w.sb, req.path()))
        .body(req.encode(Format::Json))
        .send()
        .await
        .unwrap();
    PostpaidResult::parse(&res.bytes().await.unwrap())
        .unwrap()
        .message
}

#[tokio::test]
async fn a_pending_postpaid_payment_is_followed_to_success() {
    let w = world("environment = \"production\"", "").await;
    let inquiry = postpaid_call(
        &w,
        PostpaidCommand::Inquiry {
            code: "TELKOMPSTN".into(),
            hp: "6391601039".into(),
            ref_id: "bill-1".into(),
            month: None,
            year: None,
            nomor_identitas: None,
        },
    )
    .await;
    let tr_id = inquiry.tr_id.expect("the inquiry gives a tr_id");
    let paid = postpaid_call(&w, PostpaidCommand::Payment { tr_id }).await;
    assert_eq!(paid.response_code, "39", "the payment is in process");
    w.register(json!({"provider_id": "iak", "ref": "bill-1", "kind": "postpaid"}))
        .await;
    assert_eq!(w.step(61).await.checked, 1);
    assert_eq!(w.tx("iak", "bill-1").await["state"], "pending");
    let (status, _) = w
        .post(
            format!("http://{}/sandbox/report", w.sb),
            json!({"ref": "bill-1", "outcome": "success"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(w.step(122).await.settled, 1);
    let tx = w.tx("iak", "bill-1").await;
    assert_eq!(
        (tx["state"].as_str(), tx["kind"].as_str()),
        (Some("succeeded"), Some("postpaid"))
    );
    assert!(tx["amount"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn a_postpaid_payment_never_received_fails_after_the_grace_period() {
    let w = world("environment = \"production\"", "").await;
    postpaid_call(
        &w,
        PostpaidCommand::Inquiry {
            code: "PLNPOSTPAID".into(),
            hp: "530000000000".into(),
            ref_id: "bill-2".into(),
            month: None,
            year: None,
            nomor_identitas: None,
        },
    )
    .await;
    w.register(json!({"provider_id": "iak", "ref": "bill-2", "kind": "postpaid"}))
        .await;
    w.step(61).await;
    assert_eq!(
        w.tx("iak", "bill-2").await["state"],
        "pending",
        "status 0 within the grace period"
    );
    w.step(2 * 3600).await;
    let tx = w.tx("iak", "bill-2").await;
    assert_eq!(tx["state"], "failed");
    assert!(tx["message"].as_str().unwrap().starts_with("not_received"));
}

#[tokio::test]
async fn a_check_claimed_by_a_crashed_worker_is_taken_over_when_its_lease_ends() {
    let w = world(
        "environment = \"production\"\n[accounts.faults]\ndrop = 1.0",
        "",
    )
    .await;
    w.top_up("crash-1", "081200004444").await;
    w.provider_works(2).await;
    // Another worker claims the check and dies before recording anything.
    let other = lunas_store::open(
        &common::storage_url(&w.dir.path().join("lunas.db")),
        &Default::default(),
    )
    .await
    .unwrap();
    let t = w.t0 + Duration::from_secs(61);
    let claimed = other
        .claim_checks("iak", t, Duration::from_secs(31), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    drop(other);
    assert_eq!(w.step(61).await.checked, 0, "leased by the other worker");
    assert_eq!(
        w.step(61 + 32).await.settled,
        1,
        "taken over after the lease"
    );
    assert_eq!(w.tx("iak", "crash-1").await["state"], "succeeded");
}

#[tokio::test]
async fn a_va_paid_without_a_callback_is_found_paid_by_inquiry() {
    let w = world("environment = \"production\"", "").await;
    let req = CreateVaRequest {
        external_id: "va-1".into(),
        order_id: "ORD-va-1".into(),
        currency: "IDR".into(),
        payment_method: "bank_transfer".into(),
        payment_channel: "BRI".into(),
        payment_details: PaymentDetails {
            billing_name: Some("Budi".into()),
            payment_system: Some(PaymentSystem::Closed),
            amount: Some(150_000),
            transaction_description: Some("order".into()),
            ..PaymentDetails::default()
        },
        customer_details: CustomerDetails {
            email: Some("b@example.co.id".into()),
            full_name: Some("Budi".into()),
            phone: None,
        },
        item_details: None,
        billing_address: None,
        callback_url: None,
        shipping_address: None,
        additional_data: None,
    };
    let creds = common::mcp_credentials();
    let mut builder = w
        .client
        .post(format!("http://{}/va", w.sb))
        .body(req.encode());
    for (k, v) in creds.request_headers("va-1", "ORD-va-1") {
        builder = builder.header(k, v);
    }
    let created =
        McpResponse::parse(&builder.send().await.unwrap().bytes().await.unwrap()).unwrap();
    let va = created.data.expect("created");
    w.register(json!({
        "provider_id": "mcp", "ref": "va-1", "kind": "va", "amount": 150000, "product_code": "BRI",
        "order_id": "ORD-va-1", "provider_transaction_id": va.transaction_id
    }))
    .await;
    let (status, _) = w
        .post(
            format!("http://{}/sandbox/va/pay", w.sb),
            json!({"external_id": "va-1", "amount": 150000}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        w.tx("mcp", "va-1").await["state"],
        "awaiting_payment",
        "the callback was dropped"
    );
    assert_eq!(w.step(61).await.settled, 1);
    let tx = w.tx("mcp", "va-1").await;
    assert_eq!(tx["state"], "paid");
    assert_eq!(tx["total_paid"], 150000);
    assert_eq!(w.event_types().await, ["va.payment_received", "va.paid"]);
}
