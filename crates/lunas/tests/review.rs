//! Working the review queue (the README's review API): a flagged transaction is resolved through the
//! API and the command line, with who, when and why in its timeline, and
//! `transaction.resolved` for the merchant.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};
use serde_json::{json, Value};

async fn flagged(gw: &TestGateway, reference: &str) {
    for status in [PrepaidStatus::Success, PrepaidStatus::Failed] {
        let (code, _) = gw
            .callback(
                "iak",
                iak_body(reference, status, Format::Json, ApiVersion::V2),
                &[],
            )
            .await;
        assert_eq!(code, 200);
    }
    assert_eq!(
        gw.record("iak", reference).await.unwrap()["needs_review"],
        true
    );
}

#[tokio::test]
async fn resolving_clears_the_flag_sets_the_state_and_says_who_and_why() {
    let gw = TestGateway::start().await;
    flagged(&gw, "rv-1").await;
    let (code, tx) = gw
        .post_json(
            "/api/v1/transactions/iak/rv-1/resolve",
            &json!({"state": "failed", "note": "IAK support confirmed the top-up failed"}),
        )
        .await;
    assert_eq!(code, 200, "{tx}");
    assert_eq!(
        (tx["state"].as_str(), &tx["needs_review"]),
        (Some("failed"), &json!(false))
    );
    let types = gw.event_types().await;
    assert_eq!(
        types,
        [
            "transaction.succeeded",
            "transaction.conflict",
            "transaction.failed",
            "transaction.resolved"
        ]
    );
    let events = gw.events().await;
    let resolved = &events[3]["data"];
    assert_eq!(
        resolved["resolution"]["note"],
        "IAK support confirmed the top-up failed"
    );
    assert_eq!(resolved["resolution"]["by"], "admin (API)");
    assert_eq!(resolved["previous_state"], "succeeded");
    let detail = gw.transaction("iak", "rv-1").await.unwrap();
    let review: Vec<&Value> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "review")
        .collect();
    assert_eq!(review.len(), 1);
    assert_eq!(review[0]["verdict"], "resolved");
    assert!(review[0]["detail"]
        .as_str()
        .unwrap()
        .contains("succeeded → failed"));
    // It leaves the review queue.
    let (_, list) = gw.get("/api/v1/transactions?needs_review=true").await;
    assert_eq!(list["items"], json!([]));
    // Resolved already: nothing left to resolve.
    let (code, body) = gw
        .post_json(
            "/api/v1/transactions/iak/rv-1/resolve",
            &json!({"state": "failed", "note": "again"}),
        )
        .await;
    assert_error((code, &body.to_string()), 409, "not_flagged");
}

#[tokio::test]
async fn keeping_the_state_emits_only_the_resolution() {
    let gw = TestGateway::start().await;
    flagged(&gw, "rv-2").await;
    let (code, tx) = gw
        .post_json(
            "/api/v1/transactions/iak/rv-2/resolve",
            &json!({"state": "succeeded", "note": "the customer received the credit"}),
        )
        .await;
    assert_eq!((code, tx["state"].as_str()), (200, Some("succeeded")));
    assert_eq!(
        gw.event_types().await.last().map(String::as_str),
        Some("transaction.resolved")
    );
    assert!(!gw
        .event_types()
        .await
        .iter()
        .any(|t| t == "transaction.failed"));
}

#[tokio::test]
async fn a_bad_resolution_is_refused_and_changes_nothing() {
    let gw = TestGateway::start().await;
    flagged(&gw, "rv-3").await;
    let before = gw.snapshot().await;
    for (body, code, error) in [
        (
            json!({"state": "paid", "note": "x"}),
            422,
            "invalid_resolution",
        ),
        (
            json!({"state": "pending", "note": "x"}),
            422,
            "invalid_resolution",
        ),
        (json!({"state": "failed"}), 422, "invalid_resolution"),
        (
            json!({"state": "failed", "note": "  "}),
            422,
            "invalid_resolution",
        ),
        (
            json!({"state": "failed", "note": "x", "extra": 1}),
            422,
            "invalid_resolution",
        ),
    ] {
        let (got, answer) = gw
            .post_json("/api/v1/transactions/iak/rv-3/resolve", &body)
            .await;
        assert_error((got, &answer.to_string()), code, error);
    }
    let (code, answer) = gw
        .post_json(
            "/api/v1/transactions/iak/nope/resolve",
            &json!({"state": "failed", "note": "x"}),
        )
        .await;
    assert_error((code, &answer.to_string()), 404, "not_found");
    assert_eq!(gw.snapshot().await, before);
}
