//! `/metrics`: the counters a dashboard or an alert reads move when the gateway works.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};

async fn scrape(gw: &TestGateway) -> String {
    let res = gw.client.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    res.text().await.unwrap()
}

/// The value of the sample whose line starts with `prefix` (name and labels), or 0.
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn counters_and_gauges_follow_the_traffic() {
    let gw = TestGateway::start().await;
    let before = scrape(&gw).await;
    assert_eq!(value(&before, "lunas_open_transactions "), 0.0);

    gw.callback(
        "iak",
        iak_body("m1", PrepaidStatus::Process, Format::Json, ApiVersion::V2),
        &[],
    )
    .await;
    gw.callback(
        "iak",
        iak_body("m2", PrepaidStatus::Success, Format::Xml, ApiVersion::V1),
        &[],
    )
    .await;
    gw.callback(
        "iak",
        iak_body("m2", PrepaidStatus::Success, Format::Xml, ApiVersion::V1),
        &[],
    )
    .await;
    let mut forged = prepaid_callback("m3", PrepaidStatus::Success, IAK_USER, IAK_KEY);
    forged.sign = "0".repeat(32);
    gw.callback("iak", forged.encode(Format::Json, ApiVersion::V2), &[])
        .await;

    let after = scrape(&gw).await;
    assert!(after.contains("# TYPE lunas_callbacks counter"), "{after}");
    assert_eq!(
        value(
            &after,
            r#"lunas_callbacks_total{provider="iak",verdict="created"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            r#"lunas_callbacks_total{provider="iak",verdict="duplicate"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"lunas_callbacks_total{provider="iak",verdict="bad_signature"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"lunas_events_total{type="transaction.succeeded"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&after, r#"lunas_events_total{type="transaction.pending"}"#),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"lunas_callback_duration_seconds_count{provider="iak"}"#
        ),
        4.0
    );
    assert_eq!(
        value(&after, "lunas_open_transactions "),
        1.0,
        "m1 is still pending"
    );
    assert!(value(&after, "lunas_oldest_open_transaction_age_seconds ") >= 0.0);
    assert!(after.trim_end().ends_with("# EOF"));
}
