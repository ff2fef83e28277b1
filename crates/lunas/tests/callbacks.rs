//! Provider callbacks through the real gateway: every format lands in the right state with its
//! evidence; every bad input is refused cleanly and changes nothing.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};

#[tokio::test]
async fn an_iak_callback_in_every_format_lands_with_its_evidence() {
    let gw = TestGateway::start().await;
    let cases = [
        ("json-v1", Format::Json, ApiVersion::V1),
        ("json-v2", Format::Json, ApiVersion::V2),
        ("xml-v1", Format::Xml, ApiVersion::V1),
        ("xml-v2", Format::Xml, ApiVersion::V2),
    ];
    for (reference, format, version) in cases {
        let (status, ack) = gw
            .callback(
                "iak",
                iak_body(reference, PrepaidStatus::Success, format, version),
                &[],
            )
            .await;
        assert_eq!(status, 200, "{reference}: {ack}");
        assert!(ack.contains("SUCCESS"), "{ack}");
        let tx = gw
            .transaction("iak", reference)
            .await
            .expect("created from the callback");
        assert_eq!(tx["state"], "succeeded");
        assert_eq!(tx["kind"], "prepaid");
        assert_eq!(tx["amount"], 25000);
        assert_eq!(tx["serial_number"], "123456789");
        assert_eq!(tx["balance_after"], 997_061_249_i64);
        let timeline = tx["timeline"].as_array().unwrap();
        assert_eq!(timeline[0]["type"], "observation");
        assert_eq!(timeline[0]["verdict"], "created");
        assert!(timeline[0]["body"].as_str().unwrap().contains(reference));
        assert_eq!(timeline[1]["event_type"], "transaction.succeeded");
    }
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_changes_nothing() {
    let gw = TestGateway::start().await;
    let mut cb = prepaid_callback("order009", PrepaidStatus::Success, IAK_USER, "wrong-key");
    let (status, body) = gw
        .callback("iak", cb.encode(Format::Json, ApiVersion::V2), &[])
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"code\":\"bad_signature\""), "{body}");
    assert!(
        gw.transaction("iak", "order009").await.is_none(),
        "nothing created"
    );
    cb.sign = "not-even-hex".into();
    let (status, _) = gw
        .callback("iak", cb.encode(Format::Xml, ApiVersion::V1), &[])
        .await;
    assert_eq!(status, 401);
    assert!(gw.events().await.is_empty());
}

#[tokio::test]
async fn fifty_copies_of_one_callback_at_once_yield_one_event() {
    let gw = TestGateway::start().await;
    let body = iak_body(
        "order050",
        PrepaidStatus::Success,
        Format::Json,
        ApiVersion::V2,
    );
    let sends: Vec<_> = (0..50)
        .map(|_| gw.callback("iak", body.clone(), &[]))
        .collect();
    for (status, _) in futures::future::join_all(sends).await {
        assert_eq!(status, 200);
    }
    let events = gw.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "transaction.succeeded");
    let tx = gw.transaction("iak", "order050").await.unwrap();
    let verdicts = arrivals(&tx, |_| true);
    assert_eq!(verdicts.len(), 50, "every copy is counted as evidence");
    assert_eq!(verdicts.iter().filter(|v| *v == "duplicate").count(), 49);
    // ...and the copies are stored once: the first and one duplicate counted 48 more times.
    let kept: Vec<_> = tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "observation")
        .map(|e| {
            (
                e["verdict"].as_str().unwrap(),
                e["repeats"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(kept, [("created", 0), ("duplicate", 48)]);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let gw = TestGateway::start().await;
    let (status, _) = gw
        .callback(
            "iak",
            iak_body(
                "order077",
                PrepaidStatus::Failed,
                Format::Xml,
                ApiVersion::V1,
            ),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let gw = gw.restart().await;
    let tx = gw
        .transaction("iak", "order077")
        .await
        .expect("still there");
    assert_eq!(tx["state"], "failed");
    // The same callback after the restart is a duplicate, not a second event.
    gw.callback(
        "iak",
        iak_body(
            "order077",
            PrepaidStatus::Failed,
            Format::Xml,
            ApiVersion::V1,
        ),
        &[],
    )
    .await;
    assert_eq!(gw.events().await.len(), 1);
}

#[tokio::test]
async fn every_answer_names_its_request_id() {
    let gw = TestGateway::start().await;
    let mut ids = std::collections::HashSet::new();
    for reference in ["rid-1", "rid-2"] {
        let res = gw
            .callback_response(
                "iak",
                iak_body(
                    reference,
                    PrepaidStatus::Success,
                    Format::Json,
                    ApiVersion::V2,
                ),
                &[],
            )
            .await;
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 12, "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 2, "one id per request");
}

#[tokio::test]
async fn answers_forbid_framing_sniffing_referrers_and_caching() {
    let gw = TestGateway::start().await;
    for path in ["/api/v1/transactions", "/login", "/healthz"] {
        let res = gw
            .client
            .get(gw.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            h["content-security-policy"], "frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
}
