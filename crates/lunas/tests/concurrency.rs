//! Many callbacks at once and a restart in between: duplicates collapse to one event whatever
//! the format, every distinct callback that was acknowledged is committed, and state,
//! observations and events survive the process.

mod common;

use common::*;
use futures::future::join_all;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format};

#[tokio::test]
async fn fifty_copies_of_one_xml_callback_at_once_yield_one_event() {
    let gw = TestGateway::start().await;
    let body = prepaid_callback("xml-50", PrepaidStatus::Failed, IDSL_USER, IDSL_KEY)
        .encode(Format::Xml, ApiVersion::V1);
    let sends: Vec<_> = (0..50)
        .map(|_| gw.callback("idsl", body.clone(), &[]))
        .collect();
    for (status, ack) in join_all(sends).await {
        assert_eq!(status, 200, "{ack}");
        assert!(ack.contains("<message>SUCCESS</message>"), "{ack}");
    }
    assert_eq!(gw.event_types().await, ["transaction.failed"]);
    let verdicts = gw.verdicts("idsl", "xml-50").await;
    assert_eq!(verdicts.len(), 50);
    assert_eq!(verdicts.iter().filter(|v| *v == "created").count(), 1);
    assert_eq!(verdicts.iter().filter(|v| *v == "duplicate").count(), 49);
}

#[tokio::test]
async fn fifty_copies_of_one_mcp_callback_at_once_yield_one_payment_and_one_paid() {
    let gw = TestGateway::start().await;
    let va = va_callback(
        "va-50",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        80000,
        &[("PAY-50", 80000)],
        false,
    );
    let sends: Vec<_> = (0..50).map(|_| gw.mcp(&va)).collect();
    for (status, ack) in join_all(sends).await {
        assert_eq!(status, 200, "{ack}");
        assert_eq!(ack, r#"{"message":"SUCCESS"}"#);
    }
    assert_eq!(gw.event_types().await, ["va.payment_received", "va.paid"]);
    let tx = gw.record("mcp", "va-50").await.unwrap();
    assert_eq!(tx["state"], "paid");
    assert_eq!(tx["payments"].as_array().unwrap().len(), 1);
    assert_eq!(tx["total_paid"], 80000);
    assert_eq!(gw.verdicts("mcp", "va-50").await.len(), 50);
}

#[tokio::test]
async fn a_success_and_a_failure_racing_leave_one_final_state_and_one_conflict() {
    // Whichever lands first wins; the other is a conflict. Never both final events unflagged.
    let gw = TestGateway::start().await;
    let ok = iak_body("race", PrepaidStatus::Success, Format::Json, ApiVersion::V2);
    let ko = iak_body("race", PrepaidStatus::Failed, Format::Xml, ApiVersion::V2);
    let sends: Vec<_> = (0..20)
        .map(|i| gw.callback("iak", if i % 2 == 0 { ok.clone() } else { ko.clone() }, &[]))
        .collect();
    for (status, _) in join_all(sends).await {
        assert_eq!(status, 200);
    }
    let tx = gw.record("iak", "race").await.unwrap();
    assert_eq!(tx["needs_review"], true);
    let types = gw.event_types().await;
    assert_eq!(types.len(), 2, "{types:?}");
    assert!(
        types[0] == "transaction.succeeded" || types[0] == "transaction.failed",
        "{types:?}"
    );
    assert_eq!(types[1], "transaction.conflict");
    let first = if types[0] == "transaction.succeeded" {
        "succeeded"
    } else {
        "failed"
    };
    assert_eq!(tx["state"], first);
}

#[tokio::test]
async fn two_hundred_distinct_callbacks_at_once_are_all_committed() {
    let gw = TestGateway::start().await;
    let mut sends = Vec::new();
    for i in 0..200 {
        let gw = &gw;
        sends.push(async move {
            let reference = format!("many-{i:03}");
            let (provider, want, status) = match i % 4 {
                0 => (
                    "iak",
                    "succeeded",
                    gw.callback(
                        "iak",
                        iak_body(
                            &reference,
                            PrepaidStatus::Success,
                            Format::Json,
                            ApiVersion::V2,
                        ),
                        &[],
                    )
                    .await
                    .0,
                ),
                1 => (
                    "iak",
                    "failed",
                    gw.callback(
                        "iak",
                        iak_body(
                            &reference,
                            PrepaidStatus::Failed,
                            Format::Xml,
                            ApiVersion::V1,
                        ),
                        &[],
                    )
                    .await
                    .0,
                ),
                2 => (
                    "idsl",
                    "succeeded",
                    gw.callback(
                        "idsl",
                        prepaid_callback(&reference, PrepaidStatus::Success, IDSL_USER, IDSL_KEY)
                            .encode(Format::Xml, ApiVersion::V2),
                        &[],
                    )
                    .await
                    .0,
                ),
                _ => {
                    let va = va_callback(
                        &reference,
                        TransactionStatus::Paid,
                        PaymentSystem::Closed,
                        1000 + i,
                        &[(&format!("P-{i}"), 1000 + i)],
                        false,
                    );
                    ("mcp", "paid", gw.mcp(&va).await.0)
                }
            };
            (provider, reference, want, status)
        });
    }
    let results = join_all(sends).await;
    for (provider, reference, _, status) in &results {
        assert_eq!(*status, 200, "{provider}/{reference}");
    }
    for (provider, reference, want, _) in &results {
        let tx = gw
            .record(provider, reference)
            .await
            .unwrap_or_else(|| panic!("{provider}/{reference} was acknowledged, so it is stored"));
        assert_eq!(tx["state"], *want, "{provider}/{reference}");
    }
    let (_, list) = gw.get("/api/v1/transactions?limit=500").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 200);
    // One event each, two for a paid VA (the payment and the paid state).
    assert_eq!(gw.events().await.len(), 150 + 100);
}

#[tokio::test]
async fn mcp_state_observations_and_events_survive_a_restart() {
    let gw = TestGateway::start().await;
    let first = va_callback(
        "va-restart",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        150000,
        &[("R1", 50000)],
        false,
    );
    assert_eq!(gw.mcp(&first).await.0, 200);
    let before = gw.transaction("mcp", "va-restart").await.unwrap();
    let events_before = gw.events().await;
    assert_eq!(before["state"], "partially_paid");

    let gw = gw.restart().await;
    assert_eq!(
        gw.transaction("mcp", "va-restart").await.unwrap(),
        before,
        "state and timeline are as they were"
    );
    assert_eq!(gw.events().await, events_before);
    // The same callback again is recognised as a duplicate across the restart.
    assert_eq!(gw.mcp(&first).await.0, 200);
    assert_eq!(gw.events().await, events_before);
    // And the rest of the payment completes it.
    let rest = va_callback(
        "va-restart",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        150000,
        &[("R1", 50000), ("R2", 100000)],
        false,
    );
    assert_eq!(gw.mcp(&rest).await.0, 200);
    let tx = gw.record("mcp", "va-restart").await.unwrap();
    assert_eq!(tx["state"], "paid");
    assert_eq!(
        gw.event_types().await,
        ["va.payment_received", "va.payment_received", "va.paid"]
    );
    assert_eq!(
        gw.verdicts("mcp", "va-restart").await,
        ["created", "duplicate", "applied"]
    );
}

#[tokio::test]
async fn a_conflict_flag_and_provider_counters_survive_a_restart() {
    let gw = TestGateway::start().await;
    for status in [PrepaidStatus::Success, PrepaidStatus::Failed] {
        gw.callback(
            "iak",
            iak_body("flagged", status, Format::Json, ApiVersion::V2),
            &[],
        )
        .await;
    }
    let forged = prepaid_callback("flagged", PrepaidStatus::Failed, IAK_USER, "wrong");
    gw.callback("iak", forged.encode(Format::Json, ApiVersion::V2), &[])
        .await;
    let (_, providers_before) = gw.get("/api/v1/providers").await;
    let gw = gw.restart().await;
    let tx = gw.record("iak", "flagged").await.unwrap();
    assert_eq!(tx["needs_review"], true);
    assert_eq!(tx["state"], "succeeded");
    let (_, providers_after) = gw.get("/api/v1/providers").await;
    assert_eq!(providers_before, providers_after);
}
