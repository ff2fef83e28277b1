//! The transition rules of the README's transition rules, observed over HTTP: what state a sequence of
//! callbacks leaves, which verdict each observation got, and which events the feed shows.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format};

async fn send(gw: &TestGateway, reference: &str, status: PrepaidStatus) {
    let (code, body) = gw
        .callback(
            "iak",
            iak_body(reference, status, Format::Json, ApiVersion::V2),
            &[],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("SUCCESS"), "{body}");
}

#[tokio::test]
async fn a_pending_transaction_moves_to_its_final_state() {
    let gw = TestGateway::start().await;
    send(&gw, "t-pending", PrepaidStatus::Process).await;
    assert_eq!(
        gw.record("iak", "t-pending").await.unwrap()["state"],
        "pending"
    );
    send(&gw, "t-pending", PrepaidStatus::Success).await;
    let tx = gw.record("iak", "t-pending").await.unwrap();
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["response_code"], "00");
    assert_eq!(tx["serial_number"], "123456789");
    assert_eq!(
        gw.verdicts("iak", "t-pending").await,
        ["created", "applied"]
    );
    assert_eq!(
        gw.event_types().await,
        ["transaction.pending", "transaction.succeeded"]
    );
}

#[tokio::test]
async fn the_same_final_state_again_is_a_duplicate_with_no_new_event() {
    let gw = TestGateway::start().await;
    send(&gw, "t-dup", PrepaidStatus::Success).await;
    let before = gw.record("iak", "t-dup").await.unwrap();
    // The duplicate is acknowledged like any callback, so the provider stops sending it.
    send(&gw, "t-dup", PrepaidStatus::Success).await;
    // The same outcome in the other format is still the same outcome.
    let (code, _) = gw
        .callback(
            "iak",
            iak_body("t-dup", PrepaidStatus::Success, Format::Xml, ApiVersion::V1),
            &[],
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(gw.record("iak", "t-dup").await.unwrap(), before);
    assert_eq!(
        gw.verdicts("iak", "t-dup").await,
        ["created", "duplicate", "duplicate"]
    );
    assert_eq!(gw.event_types().await, ["transaction.succeeded"]);
}

#[tokio::test]
async fn a_pending_callback_after_the_final_one_is_stale_and_changes_nothing() {
    let gw = TestGateway::start().await;
    send(&gw, "t-stale", PrepaidStatus::Failed).await;
    let before = gw.record("iak", "t-stale").await.unwrap();
    send(&gw, "t-stale", PrepaidStatus::Process).await;
    let after = gw.record("iak", "t-stale").await.unwrap();
    assert_eq!(after, before, "a final state never moves backwards");
    assert_eq!(after["state"], "failed");
    assert_eq!(gw.verdicts("iak", "t-stale").await, ["created", "stale"]);
    assert_eq!(gw.event_types().await, ["transaction.failed"]);
}

#[tokio::test]
async fn a_different_final_state_is_a_conflict_flagged_once_for_review() {
    let gw = TestGateway::start().await;
    send(&gw, "t-conflict", PrepaidStatus::Success).await;
    send(&gw, "t-conflict", PrepaidStatus::Failed).await;
    let tx = gw.record("iak", "t-conflict").await.unwrap();
    assert_eq!(tx["state"], "succeeded", "the first final state is kept");
    assert_eq!(tx["needs_review"], true);
    assert_eq!(tx["response_code"], "00", "the kept state's detail is kept");

    // A second contradiction is recorded but does not raise the alarm twice.
    send(&gw, "t-conflict", PrepaidStatus::Failed).await;
    assert_eq!(
        gw.verdicts("iak", "t-conflict").await,
        ["created", "conflict", "conflict"]
    );
    let events = gw.events().await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["transaction.succeeded", "transaction.conflict"]);
    let conflict = &events[1]["data"];
    assert_eq!(conflict["state"], "succeeded");
    assert_eq!(conflict["needs_review"], true);
    assert_eq!(conflict["conflict"]["reported_state"], "failed");
    assert_eq!(conflict["conflict"]["reported_response_code"], "07");

    // The admin list finds it among the transactions to review.
    let (_, list) = gw.get("/api/v1/transactions?needs_review=true").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["ref"], "t-conflict");
}

#[tokio::test]
async fn a_late_serial_number_is_merged_and_announced_as_an_update() {
    let gw = TestGateway::start().await;
    let mut cb = prepaid_callback("t-late-sn", PrepaidStatus::Success, IAK_USER, IAK_KEY);
    cb.sn = None;
    let (code, _) = gw
        .callback("iak", cb.encode(Format::Json, ApiVersion::V2), &[])
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        gw.record("iak", "t-late-sn").await.unwrap()["serial_number"],
        serde_json::Value::Null
    );
    cb.sn = Some("5512-3456-7890-1234-5678".into());
    let (code, _) = gw
        .callback("iak", cb.encode(Format::Xml, ApiVersion::V2), &[])
        .await;
    assert_eq!(code, 200);
    let tx = gw.record("iak", "t-late-sn").await.unwrap();
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["serial_number"], "5512-3456-7890-1234-5678");
    assert_eq!(
        gw.verdicts("iak", "t-late-sn").await,
        ["created", "updated"]
    );
    let events = gw.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["type"], "transaction.updated");
    assert_eq!(
        events[1]["data"]["serial_number"],
        "5512-3456-7890-1234-5678"
    );

    // A different sn later does not overwrite the customer's goods once delivered.
    cb.sn = Some("9999-0000-0000-0000-0000".into());
    gw.callback("iak", cb.encode(Format::Json, ApiVersion::V2), &[])
        .await;
    assert_eq!(
        gw.record("iak", "t-late-sn").await.unwrap()["serial_number"],
        "5512-3456-7890-1234-5678"
    );
}

#[tokio::test]
async fn a_verified_callback_for_an_unknown_ref_creates_the_transaction() {
    let gw = TestGateway::start().await;
    assert!(gw.transaction("iak", "t-unknown").await.is_none());
    send(&gw, "t-unknown", PrepaidStatus::Failed).await;
    let tx = gw.record("iak", "t-unknown").await.expect("created");
    assert_eq!(tx["state"], "failed");
    assert_eq!(tx["kind"], "prepaid");
    assert_eq!(gw.verdicts("iak", "t-unknown").await, ["created"]);
}

#[tokio::test]
async fn each_distinct_payment_into_a_multi_use_va_is_one_event() {
    let gw = TestGateway::start().await;
    let first = va_callback(
        "va-multi",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50000,
        &[("PAY-A", 50000)],
        true,
    );
    assert_eq!(gw.mcp(&first).await.0, 200);
    let tx = gw.record("mcp", "va-multi").await.unwrap();
    assert_eq!(tx["state"], "paid");
    // The provider reports the second payment, alone in its history.
    let second = va_callback(
        "va-multi",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50000,
        &[("PAY-B", 50000)],
        true,
    );
    assert_eq!(gw.mcp(&second).await.0, 200);
    // And then the whole history again: nothing new.
    let both = va_callback(
        "va-multi",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50000,
        &[("PAY-A", 50000), ("PAY-B", 50000)],
        true,
    );
    assert_eq!(gw.mcp(&both).await.0, 200);

    let tx = gw.record("mcp", "va-multi").await.unwrap();
    assert_eq!(tx["state"], "paid");
    let refs: Vec<&str> = tx["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reference_id"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["PAY-A", "PAY-B"]);
    assert_eq!(tx["total_paid"], 100000);

    let events = gw.events().await;
    let received: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "va.payment_received")
        .map(|e| e["data"]["payment"]["reference_id"].as_str().unwrap())
        .collect();
    assert_eq!(received, ["PAY-A", "PAY-B"]);
    assert_eq!(events.iter().filter(|e| e["type"] == "va.paid").count(), 1);
    assert_eq!(
        gw.verdicts("mcp", "va-multi").await,
        ["created", "updated", "duplicate"]
    );
}

#[tokio::test]
async fn a_partial_va_is_partially_paid_until_the_total_is_reached() {
    let gw = TestGateway::start().await;
    let open = va_callback(
        "va-partial",
        TransactionStatus::Active,
        PaymentSystem::Partial,
        150000,
        &[],
        false,
    );
    assert_eq!(gw.mcp(&open).await.0, 200);
    assert_eq!(
        gw.record("mcp", "va-partial").await.unwrap()["state"],
        "awaiting_payment"
    );
    assert!(gw.events().await.is_empty(), "an open VA is no news");

    let one = va_callback(
        "va-partial",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        150000,
        &[("P1", 50000)],
        false,
    );
    assert_eq!(gw.mcp(&one).await.0, 200);
    let tx = gw.record("mcp", "va-partial").await.unwrap();
    assert_eq!(tx["state"], "partially_paid");
    assert_eq!(tx["total_paid"], 50000);

    let all = va_callback(
        "va-partial",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        150000,
        &[("P1", 50000), ("P2", 100000)],
        false,
    );
    assert_eq!(gw.mcp(&all).await.0, 200);
    let tx = gw.record("mcp", "va-partial").await.unwrap();
    assert_eq!(tx["state"], "paid");
    assert_eq!(tx["total_paid"], 150000);
    assert_eq!(
        gw.event_types().await,
        ["va.payment_received", "va.payment_received", "va.paid"]
    );
    let events = gw.events().await;
    assert_eq!(events[2]["data"]["state"], "paid");
}

#[tokio::test]
async fn an_unpaid_va_expires() {
    let gw = TestGateway::start().await;
    let open = va_callback(
        "va-expire",
        TransactionStatus::Active,
        PaymentSystem::Closed,
        75000,
        &[],
        false,
    );
    assert_eq!(gw.mcp(&open).await.0, 200);
    let expired = va_callback(
        "va-expire",
        TransactionStatus::Expired,
        PaymentSystem::Closed,
        75000,
        &[],
        false,
    );
    assert_eq!(gw.mcp(&expired).await.0, 200);
    let tx = gw.record("mcp", "va-expire").await.unwrap();
    assert_eq!(tx["state"], "expired");
    assert_eq!(tx["needs_review"], false);
    assert_eq!(gw.event_types().await, ["va.expired"]);
    // An ACTIVE report after expiry is stale.
    assert_eq!(gw.mcp(&open).await.0, 200);
    assert_eq!(
        gw.record("mcp", "va-expire").await.unwrap()["state"],
        "expired"
    );
    assert_eq!(
        gw.verdicts("mcp", "va-expire").await,
        ["created", "applied", "stale"]
    );
    assert_eq!(gw.event_types().await, ["va.expired"]);
}

#[tokio::test]
async fn a_paid_va_reported_expired_keeps_its_money_and_emits_no_expiry() {
    let gw = TestGateway::start().await;
    let paid = va_callback(
        "va-paid-expired",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        75000,
        &[("PX", 75000)],
        false,
    );
    assert_eq!(gw.mcp(&paid).await.0, 200);
    let expired = va_callback(
        "va-paid-expired",
        TransactionStatus::Expired,
        PaymentSystem::Closed,
        75000,
        &[("PX", 75000)],
        false,
    );
    assert_eq!(gw.mcp(&expired).await.0, 200);
    let tx = gw.record("mcp", "va-paid-expired").await.unwrap();
    assert_eq!(tx["state"], "paid", "money received is never un-received");
    let types = gw.event_types().await;
    assert!(
        !types.iter().any(|t| t == "va.expired"),
        "no va.expired for a paid VA: {types:?}"
    );
}

#[tokio::test]

async fn a_single_use_va_reported_expired_after_paid_is_a_conflict() {
    // paid and expired are both final; a different final state after a final one is a
    // conflict: state kept, needs_review set, one transaction.conflict event.
    let gw = TestGateway::start().await;
    let paid = va_callback(
        "va-closed",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        75000,
        &[("PX", 75000)],
        false,
    );
    assert_eq!(gw.mcp(&paid).await.0, 200);
    let mut expired = paid.clone();
    expired.transaction_status = TransactionStatus::Expired;
    assert_eq!(gw.mcp(&expired).await.0, 200);
    let tx = gw.record("mcp", "va-closed").await.unwrap();
    assert_eq!(tx["state"], "paid");
    assert_eq!(tx["needs_review"], true, "{tx}");
    assert_eq!(
        gw.event_types().await,
        ["va.payment_received", "va.paid", "transaction.conflict"]
    );
}
