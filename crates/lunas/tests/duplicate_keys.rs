//! One policy for repeated keys in every parser (IAK JSON and XML, MCPayment JSON): a key
//! repeated with the same value, or an informational key repeated, is accepted (the last value
//! kept); a key lunas decides on repeated with different values is refused 400
//! `duplicate_field` and changes nothing.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format};

/// Inserts `extra` (raw JSON members) right after the first `{` of `data`.
fn with_members(body: &str, extra: &str) -> String {
    body.replacen("{\"data\":{", &format!("{{\"data\":{{{extra},"), 1)
}

#[tokio::test]
async fn iak_json_repeats_follow_the_policy() {
    let gw = TestGateway::start().await;
    let body = iak_body(
        "dup-json",
        PrepaidStatus::Success,
        Format::Json,
        ApiVersion::V2,
    );
    assert!(body.starts_with("{\"data\":{"), "{body}");
    // A differing status (the message says both "failed" and "success"): refused.
    let (code, answer) = gw
        .callback("iak", with_members(&body, "\"status\":\"2\""), &[])
        .await;
    let message = assert_error((code, &answer), 400, "duplicate_field");
    assert!(message.contains("\"status\""), "{message}");
    // A whole second envelope that disagrees: refused.
    let twice = format!(
        "{{\"data\":{{\"ref_id\":\"dup-json\",\"status\":\"2\"}},{}",
        &body[1..]
    );
    let (code, answer) = gw.callback("iak", twice, &[]).await;
    assert_error((code, &answer), 400, "duplicate_field");
    assert!(
        gw.transaction("iak", "dup-json").await.is_none(),
        "nothing changed"
    );
    // The same status twice, and a free-text message twice with different words: accepted.
    let fine = with_members(&body, "\"status\":\"1\",\"message\":\"first words\"");
    let (code, answer) = gw.callback("iak", fine, &[]).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        gw.record("iak", "dup-json").await.unwrap()["state"],
        "succeeded"
    );
}

#[tokio::test]
async fn iak_xml_repeats_follow_the_policy() {
    let gw = TestGateway::start().await;
    let body = iak_body(
        "dup-xml",
        PrepaidStatus::Success,
        Format::Xml,
        ApiVersion::V1,
    );
    let at = body.find("<mp>").unwrap() + 4;
    let insert = |extra: &str| format!("{}{extra}{}", &body[..at], &body[at..]);
    let (code, answer) = gw.callback("iak", insert("<status>2</status>"), &[]).await;
    assert_error((code, &answer), 400, "duplicate_field");
    assert!(gw.transaction("iak", "dup-xml").await.is_none());
    let (code, answer) = gw
        .callback(
            "iak",
            insert("<status>1</status><message>other words</message>"),
            &[],
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        gw.record("iak", "dup-xml").await.unwrap()["state"],
        "succeeded"
    );
}

#[tokio::test]
async fn mcp_repeats_follow_the_policy_and_the_documents_example_is_accepted() {
    let gw = TestGateway::start().await;
    let va = va_callback(
        "dup-va",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        50_000,
        &[("P-1", 50_000)],
        false,
    );
    let (body, sig) = mcp_callback(&va);
    let tail = |extra: &str| format!("{},{extra}}}", &body[..body.len() - 1]);
    // A second transaction_status that disagrees: refused.
    let (code, answer) = gw
        .callback(
            "mcp",
            tail("\"transaction_status\":\"EXPIRED\""),
            &[
                ("mcp-signature", &sig),
                ("content-type", "application/json"),
            ],
        )
        .await;
    assert_error((code, &answer), 400, "duplicate_field");
    assert!(gw.transaction("mcp", "dup-va").await.is_none());
    // As the document's own example: response_code and additional_data again at the end.
    let (code, answer) = gw
        .callback(
            "mcp",
            tail("\"response_code\":\"00\",\"additional_data\":\"free text\",\"additional_data\":\"more\""),
            &[("mcp-signature", &sig), ("content-type", "application/json")],
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(gw.record("mcp", "dup-va").await.unwrap()["state"], "paid");
}
