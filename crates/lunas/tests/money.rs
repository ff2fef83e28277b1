//! Money correctness observed over HTTP, against `lunas serve` with a scripted provider for
//! status checks: every payment counted, every contradiction flagged and announced, nothing
//! asked for silently rewritten, no token taken from a message that cannot settle. Each test
//! names the audit finding it answers. Runs on SQLite, and on PostgreSQL where a URL is given.

mod common;

use std::sync::{Arc, Mutex};

use axum::response::IntoResponse;
use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, RefundRecord, TransactionStatus, VaTransaction};
use lunas_protocol::{ApiVersion, Format};
use serde_json::{json, Value};

/// A provider whose status API answers whatever the test sets, to any path.
#[derive(Clone)]
struct Scripted {
    answer: Arc<Mutex<String>>,
    addr: std::net::SocketAddr,
}

impl Scripted {
    async fn start() -> Self {
        let answer = Arc::new(Mutex::new(String::from("{}")));
        let shared = Arc::clone(&answer);
        let app = axum::Router::new().fallback(move || {
            let body = shared.lock().unwrap().clone();
            async move { ([("content-type", "application/json")], body).into_response() }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Scripted { answer, addr }
    }

    fn answer(&self, body: Value) {
        *self.answer.lock().unwrap() = body.to_string();
    }
}

/// A gateway with two more accounts whose status API is `provider`: `iaks` (IAK) and `mcps`
/// (MCPayment); `confirm` sets `confirm_callbacks` on both.
async fn gateway(provider: &Scripted, confirm: bool) -> TestGateway {
    let addr = provider.addr;
    TestGateway::start_http_only(&format!(
        r#"
[[providers]]
id = "iaks"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
prepaid_url = "http://{addr}"
postpaid_url = "http://{addr}"
confirm_callbacks = {confirm}
[providers.reconcile]
not_found_grace = "0s"
postpaid_grace = "0s"

[[providers]]
id = "mcps"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
base_url = "http://{addr}"
confirm_callbacks = {confirm}
"#
    ))
    .await
}

/// A signed IAK callback with its fields as JSON, edited by `edit`, sent to `provider`.
async fn iak(
    gw: &TestGateway,
    provider: &str,
    reference: &str,
    status: PrepaidStatus,
    edit: impl FnOnce(&mut Value),
) -> (u16, String) {
    let mut v: Value =
        serde_json::from_str(&iak_body(reference, status, Format::Json, ApiVersion::V2)).unwrap();
    edit(&mut v["data"]);
    gw.callback(provider, v.to_string(), &[]).await
}

/// The check-status answer IAK gives for a prepaid `ref_id`.
fn iak_answer(reference: &str, status: i64, rc: &str, sn: Option<&str>) -> Value {
    let mut data = json!({
        "ref_id": reference, "status": status, "product_code": "xld25000",
        "customer_id": "0817777215", "price": 25000, "message": "answer",
        "balance": 997_061_249, "tr_id": 3482, "rc": rc,
    });
    if let Some(sn) = sn {
        data["sn"] = json!(sn);
    }
    json!({ "data": data })
}

async fn check(gw: &TestGateway, provider: &str, reference: &str) -> Value {
    let (status, body) = gw
        .post_json(
            &format!("/api/v1/transactions/{provider}/{reference}/check"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn va(gw: &TestGateway, provider: &str, tx: &VaTransaction) -> (u16, String) {
    let (body, sig) = mcp_callback(tx);
    gw.callback(provider, body, &[("mcp-signature", sig.as_str())])
        .await
}

/// Events of one type, in feed order.
async fn events_of(gw: &TestGateway, kind: &str) -> Vec<Value> {
    gw.events()
        .await
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

#[tokio::test]
async fn a_payment_after_cancel_is_recorded_announced_and_flagged() {
    // Finding 1: VA for 50,000, CANCELED, then PAID with total_paid_amount and no history.
    let gw = TestGateway::start().await;
    let open = va_callback(
        "v-cancel",
        TransactionStatus::Active,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    );
    assert_eq!(gw.mcp(&open).await.0, 200);
    let canceled = va_callback(
        "v-cancel",
        TransactionStatus::Canceled,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    );
    assert_eq!(gw.mcp(&canceled).await.0, 200);
    let mut paid = va_callback(
        "v-cancel",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    );
    paid.payment_details.as_mut().unwrap().total_paid_amount = Some(50_000);
    assert_eq!(gw.mcp(&paid).await.0, 200);

    let tx = gw.record("mcp", "v-cancel").await.unwrap();
    assert_eq!(tx["state"], "canceled");
    assert_eq!(tx["total_paid"], 50_000, "the money is counted");
    assert_eq!(tx["needs_review"], true);
    assert_eq!(
        gw.event_types().await,
        ["va.canceled", "va.payment_received", "transaction.conflict"]
    );
    let conflict = &events_of(&gw, "transaction.conflict").await[0]["data"];
    assert_eq!(conflict["conflict"]["reason"], "payment_after_final");
    assert_eq!(conflict["previous_state"], "canceled");
}

#[tokio::test]
async fn a_partial_va_is_not_paid_before_the_money_is_in() {
    // Finding 2: seed 002's "Body raw" shape: top-level reference_id, amount 40,000,
    // total_amount 100,000, no total_paid_amount, no history.
    let gw = TestGateway::start().await;
    let mut tx = va_callback(
        "v-part",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        100_000,
        &[],
        false,
    );
    tx.reference_id = Some("pay-ref-1".into());
    let d = tx.payment_details.as_mut().unwrap();
    d.amount = Some(40_000);
    d.total_paid_amount = None;
    assert_eq!(gw.mcp(&tx).await.0, 200);
    let rec = gw.record("mcp", "v-part").await.unwrap();
    assert_eq!(rec["state"], "partially_paid");
    assert_eq!(rec["total_paid"], 40_000);
    assert_eq!(gw.event_types().await, ["va.payment_received"]);

    // A PAID with no paid amount and no payment details at all is no payment.
    let mut bare = va_callback(
        "v-bare",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    );
    bare.payment_details = None;
    assert_eq!(gw.mcp(&bare).await.0, 200);
    assert_eq!(
        gw.record("mcp", "v-bare").await.unwrap()["state"],
        "awaiting_payment"
    );
    assert!(events_of(&gw, "va.paid").await.is_empty());
}

#[tokio::test]
async fn confirm_mode_takes_no_goods_from_a_pending_callback() {
    // Finding 3: a replayed status-0 callback with a forged sn and pin, then check-status
    // says success with the real token.
    let provider = Scripted::start().await;
    let gw = gateway(&provider, true).await;
    let (code, _) = iak(&gw, "iaks", "c-goods", PrepaidStatus::Process, |d| {
        d["sn"] = json!("9999-FORGED");
        d["pin"] = json!("4321");
    })
    .await;
    assert_eq!(code, 200);
    provider.answer(iak_answer("c-goods", 1, "00", Some("REAL-TOKEN")));
    check(&gw, "iaks", "c-goods").await;
    let tx = gw.record("iaks", "c-goods").await.unwrap();
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["serial_number"], "REAL-TOKEN");
    assert_eq!(tx["pin"], Value::Null);
    let ok = &events_of(&gw, "transaction.succeeded").await[0]["data"];
    assert_eq!(ok["serial_number"], "REAL-TOKEN");
    assert_eq!(ok["pin"], Value::Null);
}

#[tokio::test]
async fn an_empty_token_does_not_lock_out_the_real_one() {
    // Finding 4: PLN success with sn "", then the real token.
    let gw = TestGateway::start().await;
    let (code, _) = iak(&gw, "iak", "pln-1", PrepaidStatus::Success, |d| {
        d["sn"] = json!("")
    })
    .await;
    assert_eq!(code, 200);
    let (code, _) = iak(&gw, "iak", "pln-1", PrepaidStatus::Success, |d| {
        d["sn"] = json!("1234-5678-9012-3456-7890")
    })
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        gw.event_types().await,
        ["transaction.succeeded", "transaction.updated"]
    );
    let updated = &events_of(&gw, "transaction.updated").await[0]["data"];
    assert_eq!(updated["serial_number"], "1234-5678-9012-3456-7890");
}

#[tokio::test]
async fn confirm_mode_applies_no_new_payment_the_inquiry_does_not_show() {
    // Finding 5: a paid VA; a callback adds 5,000,000 that the inquiry does not list.
    let provider = Scripted::start().await;
    let gw = gateway(&provider, true).await;
    let paid = va_callback(
        "v-conf",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("r1", 50_000)],
        false,
    );
    provider.answer(json!({"response_code": "00", "response_message": "Success", "data": paid}));
    assert_eq!(va(&gw, "mcps", &paid).await.0, 200);
    check(&gw, "mcps", "v-conf").await;
    assert_eq!(gw.record("mcps", "v-conf").await.unwrap()["state"], "paid");

    let more = va_callback(
        "v-conf",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("r1", 50_000), ("r2", 5_000_000)],
        false,
    );
    assert_eq!(va(&gw, "mcps", &more).await.0, 200);
    let held = gw.record("mcps", "v-conf").await.unwrap();
    assert_eq!(held["total_paid"], 50_000, "held until the provider agrees");
    assert_eq!(held["unconfirmed_state"], "paid");
    check(&gw, "mcps", "v-conf").await;
    let tx = gw.record("mcps", "v-conf").await.unwrap();
    assert_eq!(tx["total_paid"], 50_000);
    assert_eq!(tx["needs_review"], true);
    assert_eq!(tx.get("unconfirmed_state"), None);
    let conflicts = events_of(&gw, "transaction.conflict").await;
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        conflicts[0]["data"]["conflict"]["reason"],
        "unconfirmed_payment"
    );
    assert_eq!(events_of(&gw, "va.payment_received").await.len(), 1);
}

#[tokio::test]
async fn an_inferred_failure_is_flagged_kept_checked_and_overturned_by_the_provider() {
    // Finding 6: rc 06 for the whole grace period (here 0s, counted from the first such
    // answer), then the provider finds the top-up after all.
    let provider = Scripted::start().await;
    let gw = gateway(&provider, false).await;
    let (code, _) = gw
        .post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "iaks", "ref": "nf-1", "kind": "prepaid"}),
        )
        .await;
    assert_eq!(code, 201);
    provider.answer(
        json!({"data": {"ref_id": "nf-1", "rc": "06", "message": "TRANSACTION NOT FOUND"}}),
    );
    check(&gw, "iaks", "nf-1").await;
    assert_eq!(
        gw.record("iaks", "nf-1").await.unwrap()["state"],
        "pending",
        "the grace period starts at the first not-found answer"
    );
    check(&gw, "iaks", "nf-1").await;
    let failed = gw.transaction("iaks", "nf-1").await.unwrap();
    assert_eq!(failed["state"], "failed");
    assert_eq!(
        failed["needs_review"], true,
        "an inferred failure is flagged"
    );
    assert_eq!(failed["inferred"], "not_found");
    assert!(failed["next_check_at"].is_string(), "and still checked");
    let ev = &events_of(&gw, "transaction.failed").await[0]["data"];
    assert_eq!(ev["inferred"], "not_found");

    provider.answer(iak_answer("nf-1", 1, "00", Some("LATE-TOKEN")));
    check(&gw, "iaks", "nf-1").await;
    let tx = gw.transaction("iaks", "nf-1").await.unwrap();
    assert_eq!(tx["state"], "succeeded", "the real outcome wins");
    assert_eq!(tx["serial_number"], "LATE-TOKEN");
    assert_eq!(tx["next_check_at"], Value::Null);
    let ok = &events_of(&gw, "transaction.succeeded").await[0]["data"];
    assert_eq!(ok["previous_state"], "failed");
    assert_eq!(ok["serial_number"], "LATE-TOKEN");
}

#[tokio::test]
async fn a_postpaid_grace_counts_from_the_first_not_received_answer() {
    // Finding 6: a bill registered at inquiry is not "failed" before the provider has said
    // "not received" for the whole grace period.
    let provider = Scripted::start().await;
    let gw = gateway(&provider, false).await;
    gw.post_json(
        "/api/v1/transactions",
        &json!({"provider_id": "iaks", "ref": "bill-1", "kind": "postpaid"}),
    )
    .await;
    provider.answer(json!({"data": {"ref_id": "bill-1", "status": 0, "response_code": "42", "message": "PAYMENT NOT RECEIVED"}}));
    check(&gw, "iaks", "bill-1").await;
    assert_eq!(
        gw.record("iaks", "bill-1").await.unwrap()["state"],
        "pending"
    );
    check(&gw, "iaks", "bill-1").await;
    let tx = gw.transaction("iaks", "bill-1").await.unwrap();
    assert_eq!(tx["state"], "failed");
    assert_eq!(tx["inferred"], "not_received");
    assert!(tx["next_check_at"].is_string(), "still checked");
}

#[tokio::test]
async fn a_multi_use_va_stays_reconciled_after_its_first_payment() {
    // Finding 7.
    let gw = TestGateway::start().await;
    let mut tx = va_callback(
        "v-open",
        TransactionStatus::Paid,
        PaymentSystem::Open,
        10_000,
        &[("a", 10_000)],
        true,
    );
    tx.payment_details.as_mut().unwrap().expired_time =
        Some("2099-01-01T00:00:00.000+07:00".into());
    assert_eq!(gw.mcp(&tx).await.0, 200);
    let rec = gw.transaction("mcp", "v-open").await.unwrap();
    assert_eq!(rec["state"], "paid");
    assert!(rec["next_check_at"].is_string(), "{rec}");
    assert_eq!(rec["expires_at"], "2098-12-31T17:00:00.000Z");

    let mut single = va_callback(
        "v-single",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        10_000,
        &[("a", 10_000)],
        false,
    );
    single.payment_details.as_mut().unwrap().expired_time =
        Some("2099-01-01T00:00:00.000+07:00".into());
    assert_eq!(gw.mcp(&single).await.0, 200);
    assert_eq!(
        gw.transaction("mcp", "v-single").await.unwrap()["next_check_at"],
        Value::Null
    );
}

#[tokio::test]
async fn a_contradiction_after_give_up_is_announced() {
    // Finding 8: unresolved, then success, then failure.
    let provider = Scripted::start().await;
    let gw = TestGateway::start_http_only(&format!(
        r#"
[[providers]]
id = "iakg"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
prepaid_url = "http://{}"
[providers.reconcile]
give_up_after = "0s"
"#,
        provider.addr
    ))
    .await;
    gw.post_json(
        "/api/v1/transactions",
        &json!({"provider_id": "iakg", "ref": "gu-1", "kind": "prepaid"}),
    )
    .await;
    provider.answer(iak_answer("gu-1", 0, "39", None));
    check(&gw, "iakg", "gu-1").await;
    assert_eq!(gw.event_types().await, ["transaction.unresolved"]);
    assert_eq!(
        iak(&gw, "iakg", "gu-1", PrepaidStatus::Success, |_| {})
            .await
            .0,
        200
    );
    assert_eq!(
        iak(&gw, "iakg", "gu-1", PrepaidStatus::Failed, |_| {})
            .await
            .0,
        200
    );
    assert_eq!(
        gw.event_types().await,
        [
            "transaction.unresolved",
            "transaction.succeeded",
            "transaction.conflict"
        ]
    );
}

#[tokio::test]
async fn growing_amounts_histories_that_do_not_add_up_and_overpayments_are_flagged() {
    // Finding 9.
    let gw = TestGateway::start().await;
    // The same payment reference with a growing amount.
    for amount in [60_000, 90_000] {
        let tx = va_callback(
            "v-grow",
            TransactionStatus::Active,
            PaymentSystem::Partial,
            100_000,
            &[("p1", amount)],
            false,
        );
        assert_eq!(gw.mcp(&tx).await.0, 200);
    }
    let rec = gw.record("mcp", "v-grow").await.unwrap();
    assert_eq!(
        rec["payments"][0]["amount"], 60_000,
        "the first amount is kept"
    );
    assert_eq!(rec["total_paid"], 90_000);
    assert_eq!(rec["needs_review"], true);
    let received = events_of(&gw, "va.payment_received").await;
    assert_eq!(received.len(), 2, "the total grew: an event says so");
    assert_eq!(received[1]["data"]["total_paid"], 90_000);
    assert_eq!(events_of(&gw, "transaction.mismatch").await.len(), 1);

    // total_paid_amount unequal to the (complete) history.
    let mut odd = va_callback(
        "v-sum",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("a", 20_000)],
        false,
    );
    odd.payment_details.as_mut().unwrap().total_paid_amount = Some(50_000);
    gw.mcp(&odd).await;
    assert_eq!(
        gw.record("mcp", "v-sum").await.unwrap()["needs_review"],
        true
    );

    // Overpayment, and a single-use CLOSED VA paid twice.
    gw.mcp(&va_callback(
        "v-over",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("a", 50_000)],
        false,
    ))
    .await;
    gw.mcp(&va_callback(
        "v-over",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("a", 50_000), ("b", 50_000)],
        false,
    ))
    .await;
    let reasons: Vec<String> = events_of(&gw, "transaction.conflict")
        .await
        .iter()
        .filter(|e| e["data"]["ref"] == "v-over")
        .map(|e| e["data"]["conflict"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["paid_again"]);

    // A payment of 0 is no payment.
    gw.mcp(&va_callback(
        "v-zero",
        TransactionStatus::Active,
        PaymentSystem::Partial,
        50_000,
        &[("z", 0)],
        false,
    ))
    .await;
    let zero = gw.record("mcp", "v-zero").await.unwrap();
    assert_eq!(zero["payments"], json!([]));
    assert_eq!(zero["state"], "awaiting_payment");
}

#[tokio::test]
async fn answers_and_callbacks_about_another_transaction_are_not_applied() {
    // Finding 10.
    let provider = Scripted::start().await;
    let gw = gateway(&provider, false).await;
    gw.post_json(
        "/api/v1/transactions",
        &json!({"provider_id": "iaks", "ref": "mine-1", "kind": "prepaid"}),
    )
    .await;
    provider.answer(iak_answer("someone-else", 1, "00", Some("THEIR-TOKEN")));
    let done = check(&gw, "iaks", "mine-1").await;
    assert_eq!(done["check"]["verdict"], "check_failed", "{done}");
    let tx = gw.record("iaks", "mine-1").await.unwrap();
    assert_eq!(
        (tx["state"].as_str(), &tx["serial_number"]),
        (Some("pending"), &Value::Null)
    );

    // A VA callback with the same external_id but another transaction and order.
    gw.mcp(&va_callback(
        "v-id",
        TransactionStatus::Active,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    ))
    .await;
    let mut other = va_callback(
        "v-id",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("x", 50_000)],
        false,
    );
    other.transaction_id = "trx-OTHER".into();
    other.order_id = "ORD-OTHER".into();
    assert_eq!(gw.mcp(&other).await.0, 200);
    let rec = gw.record("mcp", "v-id").await.unwrap();
    assert_eq!(rec["state"], "awaiting_payment");
    assert_eq!(rec["provider_transaction_id"], "trx-v-id");
    assert_eq!(rec["order_id"], "ORD-v-id");
    assert_eq!(rec["needs_review"], true);
    assert_eq!(gw.verdicts("mcp", "v-id").await, ["created", "mismatch"]);
    assert_eq!(events_of(&gw, "transaction.mismatch").await.len(), 1);
}

#[tokio::test]
async fn two_different_tokens_for_one_purchase_are_conflicts() {
    // Finding 11: callback 1111, callback 2222, check 3333.
    let provider = Scripted::start().await;
    let gw = gateway(&provider, false).await;
    iak(&gw, "iaks", "tok-1", PrepaidStatus::Success, |d| {
        d["sn"] = json!("1111")
    })
    .await;
    iak(&gw, "iaks", "tok-1", PrepaidStatus::Success, |d| {
        d["sn"] = json!("2222")
    })
    .await;
    provider.answer(iak_answer("tok-1", 1, "00", Some("3333")));
    check(&gw, "iaks", "tok-1").await;
    let tx = gw.record("iaks", "tok-1").await.unwrap();
    assert_eq!(tx["serial_number"], "1111");
    assert_eq!(tx["needs_review"], true);
    let reported: Vec<Value> = events_of(&gw, "transaction.conflict")
        .await
        .iter()
        .map(|e| e["data"]["conflict"]["reported"].clone())
        .collect();
    assert_eq!(reported, [json!("2222"), json!("3333")]);
}

#[tokio::test]
async fn a_partial_refund_keeps_its_amount() {
    // Finding 12: 10,000 of 50,000 refunded.
    let gw = TestGateway::start().await;
    gw.mcp(&va_callback(
        "v-ref",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("a", 50_000)],
        false,
    ))
    .await;
    let mut refund = va_callback(
        "v-ref",
        TransactionStatus::Refunded,
        PaymentSystem::Closed,
        50_000,
        &[("a", 50_000)],
        false,
    );
    refund.refund_history = Some(vec![RefundRecord {
        refund_time: Some("2022-03-11T14:31:20.939+07:00".into()),
        refund_amount: Some(10_000),
    }]);
    assert_eq!(gw.mcp(&refund).await.0, 200);
    let rec = gw.record("mcp", "v-ref").await.unwrap();
    assert_eq!(rec["state"], "refunded");
    assert_eq!(rec["total_refunded"], 10_000);
    assert_eq!(rec["refunds"][0]["amount"], 10_000);
    let ev = &events_of(&gw, "va.refunded").await[0]["data"];
    assert_eq!(ev["total_refunded"], 10_000);
    assert_eq!(
        ev["refund"][0]["refund_time"],
        "2022-03-11T14:31:20.939+07:00"
    );
}

#[tokio::test]
async fn what_was_asked_for_is_never_silently_rewritten() {
    // Finding 13: registered xld25000 / 081234567890 / 25,000; a signed success says
    // hsteam12000 / 089999999999 / 99,000.
    let gw = TestGateway::start().await;
    let (code, _) = gw
        .post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "iak", "ref": "ask-1", "kind": "prepaid",
                    "product_code": "xld25000", "customer_id": "081234567890", "amount": 25000}),
        )
        .await;
    assert_eq!(code, 201);
    iak(&gw, "iak", "ask-1", PrepaidStatus::Success, |d| {
        d["product_code"] = json!("hsteam12000");
        d["customer_id"] = json!("089999999999");
        d["price"] = json!("99000");
    })
    .await;
    let tx = gw.record("iak", "ask-1").await.unwrap();
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(
        (&tx["product_code"], &tx["customer_id"], &tx["amount"]),
        (&json!("xld25000"), &json!("081234567890"), &json!(25000))
    );
    assert_eq!(tx["needs_review"], true);
    let m = &events_of(&gw, "transaction.mismatch").await[0]["data"]["mismatch"];
    assert_eq!(m.as_array().unwrap().len(), 3, "{m}");
    assert_eq!(
        m[2],
        json!({"field": "amount", "asked": 25000, "reported": 99000})
    );

    // A VA created for 50,000 reported paid at 40,000.
    gw.mcp(&va_callback(
        "v-ask",
        TransactionStatus::Active,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    ))
    .await;
    gw.mcp(&va_callback(
        "v-ask",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        40_000,
        &[("a", 40_000)],
        false,
    ))
    .await;
    let v = gw.record("mcp", "v-ask").await.unwrap();
    assert_eq!(
        (v["state"].as_str(), &v["amount"]),
        (Some("partially_paid"), &json!(50000))
    );
    assert_eq!(v["needs_review"], true);
}

#[tokio::test]
async fn a_postpaid_check_price_above_the_registered_amount_is_a_mismatch() {
    // Finding 13.
    let provider = Scripted::start().await;
    let gw = gateway(&provider, false).await;
    gw.post_json(
        "/api/v1/transactions",
        &json!({"provider_id": "iaks", "ref": "bill-2", "kind": "postpaid", "amount": 52370}),
    )
    .await;
    provider.answer(json!({"data": {"ref_id": "bill-2", "status": 1, "response_code": "00", "price": 152370, "message": "PAYMENT SUCCESS"}}));
    check(&gw, "iaks", "bill-2").await;
    let tx = gw.record("iaks", "bill-2").await.unwrap();
    assert_eq!(
        (tx["state"].as_str(), &tx["amount"]),
        (Some("succeeded"), &json!(52370))
    );
    assert_eq!(tx["needs_review"], true);
    assert_eq!(
        events_of(&gw, "transaction.mismatch").await[0]["data"]["mismatch"][0],
        json!({"field": "amount", "asked": 52370, "reported": 152370})
    );
}

#[tokio::test]
async fn messages_that_contradict_themselves_settle_nothing() {
    // Finding 14: status 1 with rc 14, status 2 with rc 00 after success, a currency other
    // than IDR, a postpaid answer with rc 00 and no status.
    let provider = Scripted::start().await;
    let gw = gateway(&provider, false).await;
    iak(&gw, "iak", "odd-1", PrepaidStatus::Success, |_| {}).await;
    let (code, body) = iak(&gw, "iak", "odd-1", PrepaidStatus::Failed, |d| {
        d["rc"] = json!("00")
    })
    .await;
    assert_error((code, &body), 422, "contradictory_message");
    let (code, _) = iak(&gw, "iak", "odd-2", PrepaidStatus::Success, |d| {
        d["rc"] = json!("14")
    })
    .await;
    assert_eq!(code, 422);
    assert_eq!(gw.record("iak", "odd-2").await, None, "nothing created");
    let tx = gw.record("iak", "odd-1").await.unwrap();
    assert_eq!(
        (tx["state"].as_str(), &tx["needs_review"]),
        (Some("succeeded"), &json!(true))
    );
    assert_eq!(
        events_of(&gw, "transaction.conflict").await[0]["data"]["conflict"]["reason"],
        "contradictory_message"
    );

    gw.mcp(&va_callback(
        "v-usd",
        TransactionStatus::Active,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    ))
    .await;
    let mut usd = va_callback(
        "v-usd",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("a", 50_000)],
        false,
    );
    usd.currency = Some("USD".into());
    assert_eq!(gw.mcp(&usd).await.0, 422);
    let v = gw.record("mcp", "v-usd").await.unwrap();
    assert_eq!(
        (v["state"].as_str(), &v["total_paid"]),
        (Some("awaiting_payment"), &Value::Null)
    );
    assert_eq!(v["needs_review"], true);

    gw.post_json(
        "/api/v1/transactions",
        &json!({"provider_id": "iaks", "ref": "bill-3", "kind": "postpaid"}),
    )
    .await;
    provider.answer(json!({"data": {"ref_id": "bill-3", "response_code": "00", "price": 52370}}));
    let done = check(&gw, "iaks", "bill-3").await;
    assert_eq!(done["check"]["verdict"], "check_failed");
    assert_eq!(
        gw.record("iaks", "bill-3").await.unwrap()["state"],
        "pending"
    );
}

#[tokio::test]
async fn refs_with_surrounding_space_or_control_characters_are_refused() {
    // Finding 14: "ABC", "abc", " ABC ", "ABC\n" must not make four transactions.
    let gw = TestGateway::start().await;
    for bad in [" ABC ", "ABC\n", "AB\u{1b}C"] {
        // Correctly signed for exactly that ref.
        let mut cb = prepaid_callback(bad, PrepaidStatus::Success, IAK_USER, IAK_KEY);
        cb.sn = None;
        let (code, body) = gw
            .callback("iak", cb.encode(Format::Json, ApiVersion::V2), &[])
            .await;
        assert_error((code, &body), 400, "invalid_field");
        let (code, body) = gw
            .post_json(
                "/api/v1/transactions",
                &json!({"provider_id": "iak", "ref": bad, "kind": "prepaid"}),
            )
            .await;
        assert_eq!(code, 400, "{body}");
    }
    let (items, _) = gw.snapshot().await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn a_va_that_expires_with_money_in_is_flagged() {
    // Finding 14.
    let gw = TestGateway::start().await;
    gw.mcp(&va_callback(
        "v-exp",
        TransactionStatus::Active,
        PaymentSystem::Partial,
        100_000,
        &[("a", 30_000)],
        false,
    ))
    .await;
    gw.mcp(&va_callback(
        "v-exp",
        TransactionStatus::Expired,
        PaymentSystem::Partial,
        100_000,
        &[("a", 30_000)],
        false,
    ))
    .await;
    let v = gw.record("mcp", "v-exp").await.unwrap();
    assert_eq!(
        (v["state"].as_str(), &v["needs_review"]),
        (Some("expired"), &json!(true))
    );
    assert_eq!(
        events_of(&gw, "transaction.conflict").await[0]["data"]["conflict"]["reason"],
        "closed_with_money"
    );
}

#[tokio::test]
async fn events_carry_the_previous_state_and_running_totals() {
    // Finding 15: one message with three payments.
    let gw = TestGateway::start().await;
    gw.mcp(&va_callback(
        "v-run",
        TransactionStatus::Active,
        PaymentSystem::Partial,
        90_000,
        &[],
        false,
    ))
    .await;
    gw.mcp(&va_callback(
        "v-run",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        90_000,
        &[("a", 30_000), ("b", 30_000), ("c", 30_000)],
        false,
    ))
    .await;
    let events = gw.events().await;
    let seen: Vec<(String, i64, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["total_paid"].as_i64().unwrap(),
                e["data"]["previous_state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let aw = "awaiting_payment".to_owned();
    assert_eq!(
        seen,
        [
            ("va.payment_received".into(), 30_000, aw.clone()),
            ("va.payment_received".into(), 60_000, aw.clone()),
            ("va.payment_received".into(), 90_000, aw.clone()),
            ("va.paid".into(), 90_000, aw),
        ]
    );
}

#[tokio::test]
async fn a_void_off_us_with_another_response_code_is_a_refund_like_the_sandbox_sends() {
    // What `POST /sandbox/va/refund {"void": true, "off_us": true, "response_code": "05"}`
    // sends, as iFortepay's callback document describes refunds and voids.
    let gw = TestGateway::start().await;
    gw.mcp(&va_callback(
        "v-void",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        40_000,
        &[("a", 40_000)],
        false,
    ))
    .await;
    let mut void = va_callback(
        "v-void",
        TransactionStatus::Void,
        PaymentSystem::Closed,
        40_000,
        &[("a", 40_000)],
        false,
    );
    void.response_code = Some("05".into());
    void.transaction_type = Some("off_us".into());
    void.refund_history = Some(vec![RefundRecord {
        refund_time: Some("2026-12-01T10:00:00.000+07:00".into()),
        refund_amount: Some(40_000),
    }]);
    assert_eq!(gw.mcp(&void).await.0, 200);
    let rec = gw.record("mcp", "v-void").await.unwrap();
    assert_eq!(
        (rec["state"].as_str(), rec["total_refunded"].as_i64()),
        (Some("refunded"), Some(40_000))
    );
    assert_eq!(events_of(&gw, "va.refunded").await.len(), 1);
}

#[tokio::test]
async fn seed_003s_check_status_answers_as_written_settle_a_bill_as_their_status_says() {
    let provider = Scripted::start().await;
    let gw = gateway(&provider, false).await;
    for (example, reference, state) in [
        ("checkstatus_success", "seed003-paid", "succeeded"),
        (
            "checkstatus_not_received",
            "seed003-not-received",
            "pending",
        ),
        ("checkstatus_processing", "seed003-processing", "pending"),
        ("checkstatus_failed", "seed003-failed", "failed"),
    ] {
        gw.post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "iaks", "ref": reference, "kind": "postpaid"}),
        )
        .await;
        // The document's answer, about this bill.
        let answer =
            fixture(&format!("postpaid/{example}.json")).replace("091283746520", reference);
        provider.answer(serde_json::from_str(&answer).unwrap());
        check(&gw, "iaks", reference).await;
        let tx = gw.transaction("iaks", reference).await.unwrap();
        assert_eq!(tx["state"], state, "{example}: {tx}");
        let last = tx["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|e| e["type"] == "observation")
            .unwrap()
            .clone();
        assert_eq!(last["source"], "check", "{example}");
        assert_ne!(last["verdict"], "malformed", "{example}: {last}");
        if state == "succeeded" {
            assert_eq!(tx["amount"], 137_110, "the bill's price: {tx}");
        }
    }
}
