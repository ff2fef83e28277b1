//! Every body lunas delivers to an endpoint validates against the OpenAPI document's
//! `webhooks` schema of its type: a merchant can generate a handler from the document.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format};
use serde_json::{json, Value};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An endpoint that keeps every body and answers 204.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

fn iak(reference: &str, status: PrepaidStatus, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value =
        serde_json::from_str(&iak_body(reference, status, Format::Json, ApiVersion::V2)).unwrap();
    edit(&mut v["data"]);
    v.to_string()
}

#[tokio::test]
async fn every_delivered_body_validates_against_the_webhooks_schema_of_its_type() {
    let (url, got) = receiver().await;
    let gw = TestGateway::start_with(&format!(
        "[[endpoints]]\nid = \"shop\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n"
    ))
    .await;
    // transaction.pending, .succeeded, .failed, .updated, .conflict, .resolved
    gw.callback("iak", iak("s-1", PrepaidStatus::Process, |_| {}), &[])
        .await;
    gw.callback(
        "iak",
        iak("s-1", PrepaidStatus::Success, |d| d["sn"] = json!("")),
        &[],
    )
    .await;
    gw.callback(
        "iak",
        iak("s-1", PrepaidStatus::Success, |d| {
            d["sn"] = json!("TOKEN-1")
        }),
        &[],
    )
    .await;
    gw.callback("iak", iak("f-1", PrepaidStatus::Failed, |_| {}), &[])
        .await;
    gw.callback("iak", iak("c-1", PrepaidStatus::Success, |_| {}), &[])
        .await;
    gw.callback("iak", iak("c-1", PrepaidStatus::Failed, |_| {}), &[])
        .await;
    let (status, body) = gw
        .post_json(
            "/api/v1/transactions/iak/c-1/resolve",
            &json!({"state": "succeeded", "note": "checked with IAK"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // transaction.mismatch: another product than the one registered.
    gw.post_json(
        "/api/v1/transactions",
        &json!({"provider_id": "iak", "ref": "m-1", "kind": "prepaid", "product_code": "htelkomsel10000"}),
    )
    .await;
    gw.callback("iak", iak("m-1", PrepaidStatus::Success, |_| {}), &[])
        .await;
    // va.payment_received, va.paid, va.expired, va.canceled, va.refunded
    let partial = va_callback(
        "v-1",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        100_000,
        &[("p1", 40_000)],
        true,
    );
    gw.mcp(&partial).await;
    let paid = va_callback(
        "v-1",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        100_000,
        &[("p1", 40_000), ("p2", 60_000)],
        true,
    );
    gw.mcp(&paid).await;
    gw.mcp(&va_callback(
        "v-2",
        TransactionStatus::Expired,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    ))
    .await;
    gw.mcp(&va_callback(
        "v-3",
        TransactionStatus::Canceled,
        PaymentSystem::Closed,
        50_000,
        &[],
        false,
    ))
    .await;
    let mut refunded = va_callback(
        "v-4",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("p", 50_000)],
        false,
    );
    gw.mcp(&refunded).await;
    refunded.transaction_status = TransactionStatus::Refunded;
    refunded.refund_history = Some(vec![lunas_protocol::mcp::RefundRecord {
        refund_time: Some("2026-12-01T10:00:00.000+07:00".into()),
        refund_amount: Some(50_000),
    }]);
    gw.mcp(&refunded).await;
    // endpoint.test
    let (status, _) = gw
        .post_json("/api/v1/endpoints/shop/test", &json!({}))
        .await;
    assert_eq!(status, 200);

    // Everything in the feed is delivered (bounded wait), plus the test event.
    let (_, feed) = gw.get("/api/v1/events?limit=500").await;
    let committed = feed["events"].as_array().unwrap().len();
    tokio::time::timeout(Duration::from_secs(20), async {
        while got.lock().unwrap().len() < committed + 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every event is delivered");

    let (_, spec) = gw.get("/api/v1/openapi.json").await;
    let mut seen = std::collections::BTreeSet::new();
    for body in got.lock().unwrap().iter() {
        let value: Value = serde_json::from_str(body).unwrap();
        let event_type = value["type"].as_str().unwrap().to_owned();
        assert!(
            spec["webhooks"][&event_type].is_object(),
            "{event_type} has no webhook in the document"
        );
        let mut schema = spec.clone();
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        schema["$ref"] = json!(format!(
            "#/components/schemas/{}",
            lunas::http::openapi::webhook_schema_name(&event_type)
        ));
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{event_type}: {errors:?}\n{body}");
        seen.insert(event_type);
    }
    let expected = [
        "endpoint.test",
        "transaction.conflict",
        "transaction.failed",
        "transaction.mismatch",
        "transaction.pending",
        "transaction.resolved",
        "transaction.succeeded",
        "transaction.updated",
        "va.canceled",
        "va.expired",
        "va.paid",
        "va.payment_received",
        "va.refunded",
    ];
    for t in expected {
        assert!(seen.contains(t), "no {t} was delivered; seen: {seen:?}");
    }

    // The schemas do refuse what a handler could not rely on.
    let mut schema = spec.clone();
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    schema["$ref"] = json!("#/components/schemas/VaPaymentReceivedWebhook");
    let validator = jsonschema::validator_for(&schema).unwrap();
    let delivered: Value = got
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .find(|v| v["type"] == "va.payment_received")
        .unwrap();
    assert!(validator.is_valid(&delivered));
    for (path, broken) in [
        ("type", json!("va.paid")),
        ("data.payment", Value::Null),
        ("data.previous_state", json!(7)),
        ("data.state", json!("gone")),
        ("data.amount", json!("100000")),
    ] {
        let mut v = delivered.clone();
        let (head, last) = path.rsplit_once('.').map_or(("", path), |(h, l)| (h, l));
        let target = if head.is_empty() {
            &mut v
        } else {
            &mut v[head]
        };
        if broken.is_null() {
            target.as_object_mut().unwrap().remove(last);
        } else {
            target[last] = broken;
        }
        assert!(!validator.is_valid(&v), "{path} broken must not validate");
    }
}
