//! Every class of bad callback input (the README's guarantees): each is answered with the right status and
//! a JSON error naming the problem, and none changes any state — no transaction created or
//! changed, no event written.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format};
use serde_json::{json, Value};

/// A gateway holding one succeeded transaction, `known`, that bad input will try to change.
async fn gateway_with_known() -> TestGateway {
    let gw = TestGateway::start().await;
    let (status, _) = gw
        .callback(
            "iak",
            iak_body(
                "known",
                PrepaidStatus::Success,
                Format::Json,
                ApiVersion::V2,
            ),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    gw
}

/// Sends `body` to `provider` and checks the answer and that nothing changed.
async fn refused(
    gw: &TestGateway,
    provider: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
    status: u16,
    code: &str,
) -> String {
    let before = gw.snapshot().await;
    let (got, text) = gw.callback(provider, body, headers).await;
    let message = assert_error((got, &text), status, code);
    assert_eq!(gw.snapshot().await, before, "{code}: nothing may change");
    message
}

fn xml_body(reference: &str) -> String {
    iak_body(
        reference,
        PrepaidStatus::Failed,
        Format::Xml,
        ApiVersion::V2,
    )
}

#[tokio::test]
async fn a_wrong_iak_sign_is_401_and_changes_nothing() {
    let gw = gateway_with_known().await;
    // A forged FAILED for a known success, and a forged callback for an unknown ref.
    let forged = prepaid_callback("known", PrepaidStatus::Failed, IAK_USER, "not-the-key");
    let msg = refused(
        &gw,
        "iak",
        forged.encode(Format::Json, ApiVersion::V2),
        &[],
        401,
        "bad_signature",
    )
    .await;
    assert!(msg.contains("sign"), "{msg}");
    let forged = prepaid_callback("new-ref", PrepaidStatus::Success, IAK_USER, "not-the-key");
    refused(
        &gw,
        "iak",
        forged.encode(Format::Xml, ApiVersion::V1),
        &[],
        401,
        "bad_signature",
    )
    .await;
    assert!(gw.transaction("iak", "new-ref").await.is_none());
    // The forgery against the known ref is kept as evidence in its timeline.
    assert_eq!(
        gw.verdicts("iak", "known").await,
        ["created", "bad_signature"]
    );
}

#[tokio::test]
async fn a_missing_or_wrong_mcp_signature_is_401_and_changes_nothing() {
    let gw = TestGateway::start().await;
    let va = va_callback(
        "va-forged",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        10000,
        &[("F1", 10000)],
        false,
    );
    let (body, sig) = mcp_callback(&va);
    let msg = refused(&gw, "mcp", body.clone(), &[], 401, "bad_signature").await;
    assert!(msg.contains("mcp-signature"), "{msg}");
    let wrong = sig.replace(&sig[..4], "0000");
    refused(
        &gw,
        "mcp",
        body.clone(),
        &[("mcp-signature", wrong.as_str())],
        401,
        "bad_signature",
    )
    .await;
    refused(
        &gw,
        "mcp",
        body.clone(),
        &[("mcp-signature", "")],
        401,
        "bad_signature",
    )
    .await;
    // A signature over other ids does not carry over: the amount is not what is signed, the
    // ids are.
    let mut other = va.clone();
    other.external_id = "va-other".into();
    refused(
        &gw,
        "mcp",
        other.encode(),
        &[("mcp-signature", sig.as_str())],
        401,
        "bad_signature",
    )
    .await;
    assert!(gw.transaction("mcp", "va-forged").await.is_none());
    assert!(gw.transaction("mcp", "va-other").await.is_none());
}

#[tokio::test]
async fn malformed_json_is_400() {
    let gw = gateway_with_known().await;
    for body in [
        r#"{"data": {"ref_id": "known", "status": "2""#,
        r#"{"data": {"ref_id": "known",}}"#,
        r#"{"data": {"ref_id": "known"}} trailing"#,
        "{\"data\": {\"ref_id\": \"kn\u{0}own\"",
    ] {
        let msg = refused(&gw, "iak", body, &[], 400, "invalid_json").await;
        assert!(msg.to_lowercase().contains("json"), "{msg}");
    }
    // MCPayment speaks JSON only.
    let msg = refused(
        &gw,
        "mcp",
        r#"{"external_id": "x", "#,
        &[("mcp-signature", "00")],
        400,
        "invalid_json",
    )
    .await;
    assert!(msg.to_lowercase().contains("json"), "{msg}");
    refused(
        &gw,
        "mcp",
        xml_body("x"),
        &[("mcp-signature", "00")],
        400,
        "invalid_json",
    )
    .await;
}

#[tokio::test]
async fn truncated_xml_is_400() {
    let gw = gateway_with_known().await;
    let whole = xml_body("known");
    for cut in [
        whole.len() / 2,
        whole.len() - 3,
        whole.find("<mp>").unwrap() + 2,
    ] {
        let msg = refused(&gw, "iak", whole[..cut].to_owned(), &[], 400, "invalid_xml").await;
        assert!(msg.contains("XML"), "{msg}");
    }
    // Mismatched tags are no better.
    let swapped = whole.replacen("</rc>", "</rcx>", 1);
    refused(&gw, "iak", swapped, &[], 400, "invalid_xml").await;
}

#[tokio::test]
async fn xml_with_a_doctype_or_entities_is_400() {
    let gw = gateway_with_known().await;
    let body = xml_body("known");
    let laughs = r#"<!DOCTYPE mp [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<mp>"#;
    let billion_laughs = body.replacen("<mp>", laughs, 1).replacen(
        "<message>FAILED</message>",
        "<message>&lol9;</message>",
        1,
    );
    let msg = refused(&gw, "iak", billion_laughs, &[], 400, "xml_doctype").await;
    assert!(msg.contains("DOCTYPE"), "{msg}");

    let external = body
        .replacen(
            "<mp>",
            "<!DOCTYPE mp [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<mp>",
            1,
        )
        .replacen("<message>FAILED</message>", "<message>&xxe;</message>", 1);
    let msg = refused(&gw, "iak", external, &[], 400, "xml_doctype").await;
    assert!(!msg.contains("root:"), "{msg}");

    // A bare DOCTYPE with no entity at all is refused too.
    let bare = body.replacen("<mp>", "<!DOCTYPE mp>\n<mp>", 1);
    refused(&gw, "iak", bare, &[], 400, "xml_doctype").await;

    // An entity reference with no DOCTYPE names the entity.
    let undeclared = body.replacen("<message>FAILED</message>", "<message>&xxe;</message>", 1);
    let msg = refused(&gw, "iak", undeclared, &[], 400, "xml_entity").await;
    assert!(msg.contains("xxe"), "{msg}");
}

#[tokio::test]
async fn a_missing_mandatory_field_is_400_naming_the_field() {
    let gw = gateway_with_known().await;
    for field in [
        "ref_id", "status", "price", "message", "balance", "tr_id", "rc", "sign",
    ] {
        let mut cb = iak_json("known", PrepaidStatus::Failed);
        cb["data"].as_object_mut().unwrap().remove(field);
        let msg = refused(&gw, "iak", cb.to_string(), &[], 400, "missing_field").await;
        assert!(msg.contains(field), "{field}: {msg}");
    }
    // In XML too, and a null is no value.
    let xml = xml_body("known");
    let start = xml.find("<tr_id>").unwrap();
    let end = xml.find("</tr_id>").unwrap() + "</tr_id>".len();
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    let msg = refused(&gw, "iak", without, &[], 400, "missing_field").await;
    assert!(msg.contains("tr_id"), "{msg}");
    let mut cb = iak_json("known", PrepaidStatus::Failed);
    cb["data"]["price"] = Value::Null;
    let msg = refused(&gw, "iak", cb.to_string(), &[], 400, "missing_field").await;
    assert!(msg.contains("price"), "{msg}");
    // Neither the v1 nor the v2 name of the product code.
    let mut cb = iak_json("known", PrepaidStatus::Failed);
    cb["data"].as_object_mut().unwrap().remove("product_code");
    let msg = refused(&gw, "iak", cb.to_string(), &[], 400, "missing_field").await;
    assert!(msg.contains("product_code"), "{msg}");

    // MCPayment: the ids the signature covers are mandatory.
    let va = va_callback(
        "va-missing",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        10000,
        &[],
        false,
    );
    let (body, sig) = mcp_callback(&va);
    for field in [
        "external_id",
        "order_id",
        "transaction_id",
        "transaction_status",
    ] {
        let mut v: Value = serde_json::from_str(&body).unwrap();
        v.as_object_mut().unwrap().remove(field);
        let msg = refused(
            &gw,
            "mcp",
            v.to_string(),
            &[("mcp-signature", sig.as_str())],
            400,
            "missing_field",
        )
        .await;
        assert!(msg.contains(field), "{field}: {msg}");
    }
}

#[tokio::test]
async fn a_signed_unknown_iak_status_is_kept_changes_nothing_and_flags_the_transaction() {
    let gw = gateway_with_known().await;
    for value in [json!("5"), json!("SUCCESS"), json!(9), json!("")] {
        let mut cb = iak_json("known", PrepaidStatus::Failed);
        cb["data"]["status"] = value.clone();
        let (code, body) = gw.callback("iak", cb.to_string(), &[]).await;
        let message = assert_error((code, &body), 422, "unrecognized_status");
        assert!(message.contains("status"), "{value}: {message}");
    }
    let tx = gw.record("iak", "known").await.unwrap();
    assert_eq!(tx["state"], "succeeded", "the state stays");
    assert_eq!(tx["needs_review"], true, "a person is asked to look");
    let types = gw.event_types().await;
    assert_eq!(types[0], "transaction.succeeded");
    assert!(
        types[1..].iter().all(|t| t == "transaction.conflict"),
        "{types:?}"
    );
    let conflict = &gw.events().await[1];
    assert_eq!(
        conflict["data"]["conflict"]["reason"],
        "unrecognized_status"
    );
    // Unsigned, the same message is a forgery; about an unknown ref, it creates nothing.
    let mut forged = iak_json("known", PrepaidStatus::Failed);
    forged["data"]["status"] = json!("7");
    forged["data"]["sign"] = json!("0".repeat(32));
    refused(&gw, "iak", forged.to_string(), &[], 401, "bad_signature").await;
    let mut stranger = iak_json("stranger", PrepaidStatus::Failed);
    stranger["data"]["status"] = json!("7");
    let (code, _) = gw.callback("iak", stranger.to_string(), &[]).await;
    assert_eq!(code, 422);
    assert!(gw.transaction("iak", "stranger").await.is_none());
}

#[tokio::test]
async fn a_signed_unknown_mcp_status_is_kept_and_creates_nothing() {
    let gw = TestGateway::start().await;
    for status in ["BOGUS", "FAILED"] {
        let reference = format!("va-{status}");
        let va = va_callback(
            &reference,
            TransactionStatus::Other(status.into()),
            PaymentSystem::Closed,
            10000,
            &[],
            false,
        );
        let (body, sig) = mcp_callback(&va);
        let msg = refused(
            &gw,
            "mcp",
            body,
            &[("mcp-signature", sig.as_str())],
            422,
            "unrecognized_status",
        )
        .await;
        assert!(
            msg.contains("transaction_status") && msg.contains(status),
            "{msg}"
        );
        assert!(gw.transaction("mcp", &reference).await.is_none());
    }
    // A known VA is flagged by it, and keeps its state.
    let open = va_callback(
        "va-known",
        TransactionStatus::Active,
        PaymentSystem::Closed,
        10000,
        &[],
        false,
    );
    let (body, sig) = mcp_callback(&open);
    assert_eq!(
        gw.callback("mcp", body, &[("mcp-signature", sig.as_str())])
            .await
            .0,
        200
    );
    let failed = va_callback(
        "va-known",
        TransactionStatus::Failed,
        PaymentSystem::Closed,
        10000,
        &[],
        false,
    );
    let (body, sig) = mcp_callback(&failed);
    assert_eq!(
        gw.callback("mcp", body, &[("mcp-signature", sig.as_str())])
            .await
            .0,
        422
    );
    let tx = gw.record("mcp", "va-known").await.unwrap();
    assert_eq!(
        (tx["state"].as_str(), tx["needs_review"].as_bool()),
        (Some("awaiting_payment"), Some(true))
    );
}

#[tokio::test]
async fn a_garbage_amount_is_400_naming_the_field() {
    let gw = gateway_with_known().await;
    for (field, value) in [
        ("price", json!("25.000,00")),
        ("price", json!("abc")),
        ("price", json!("25000.5")),
        ("price", json!(25000.5)),
        ("price", json!("99999999999999999999")),
        ("price", json!(true)),
        ("balance", json!("lots")),
        ("tr_id", json!({"id": 1})),
    ] {
        let mut cb = iak_json("known", PrepaidStatus::Failed);
        cb["data"][field] = value.clone();
        let msg = refused(&gw, "iak", cb.to_string(), &[], 400, "invalid_field").await;
        assert!(msg.contains(field), "{field}={value}: {msg}");
    }
    let va = va_callback(
        "va-garbage",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        10000,
        &[],
        false,
    );
    let (body, sig) = mcp_callback(&va);
    let mut v: Value = serde_json::from_str(&body).unwrap();
    v["payment_details"]["total_amount"] = json!("sepuluh ribu");
    let msg = refused(
        &gw,
        "mcp",
        v.to_string(),
        &[("mcp-signature", sig.as_str())],
        400,
        "invalid_field",
    )
    .await;
    assert!(msg.contains("total_amount"), "{msg}");
}

#[tokio::test]
async fn disagreeing_v1_and_v2_names_are_400() {
    let gw = gateway_with_known().await;
    let mut cb = iak_json("known", PrepaidStatus::Failed);
    cb["data"]["code"] = json!("other-product");
    let msg = refused(&gw, "iak", cb.to_string(), &[], 400, "conflicting_fields").await;
    assert!(
        msg.contains("code") && msg.contains("product_code"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_empty_body_is_400() {
    let gw = gateway_with_known().await;
    for body in ["", "   \r\n\t "] {
        refused(&gw, "iak", body, &[], 400, "empty_body").await;
        refused(&gw, "idsl", body, &[], 400, "empty_body").await;
        refused(&gw, "mcp", body, &[], 400, "empty_body").await;
    }
    // Neither JSON nor XML.
    refused(
        &gw,
        "iak",
        "ref_id=known&status=2",
        &[],
        400,
        "unknown_format",
    )
    .await;
    // The right envelope is required.
    refused(&gw, "iak", "[1, 2, 3]", &[], 400, "unknown_format").await;
    let msg = refused(
        &gw,
        "iak",
        r#"{"ref_id": "known"}"#,
        &[],
        400,
        "bad_envelope",
    )
    .await;
    assert!(msg.contains("data"), "{msg}");
}

#[tokio::test]
async fn an_unknown_provider_is_404() {
    let gw = gateway_with_known().await;
    let (_, providers_before) = gw.get("/api/v1/providers").await;
    let msg = refused(
        &gw,
        "nosuch",
        iak_body("known", PrepaidStatus::Failed, Format::Json, ApiVersion::V2),
        &[],
        404,
        "unknown_provider",
    )
    .await;
    assert!(msg.contains("nosuch"), "{msg}");
    let (_, providers_after) = gw.get("/api/v1/providers").await;
    assert_eq!(providers_before, providers_after);
}

#[tokio::test]
async fn a_body_over_the_default_limit_is_413_with_or_without_content_length() {
    let gw = gateway_with_known().await;
    // A valid callback padded with white space past 64 KiB.
    let mut big = iak_body("known", PrepaidStatus::Failed, Format::Json, ApiVersion::V2);
    big.push_str(&" ".repeat(64 * 1024));
    let before = gw.snapshot().await;
    let (status, body) = raw_http(gw.addr, &sized_post("/callbacks/iak", big.as_bytes())).await;
    let msg = assert_error((status, &body), 413, "body_too_large");
    assert!(msg.contains("65536"), "the limit is named: {msg}");

    // Chunked, no Content-Length: the limit is enforced while reading.
    let (status, body) = raw_http(
        gw.addr,
        &chunked_post("/callbacks/iak", big.as_bytes(), 4096),
    )
    .await;
    assert_error((status, &body), 413, "body_too_large");
    assert_eq!(gw.snapshot().await, before);

    // Just under the limit is fine, chunked too.
    let mut fits = iak_body("fits", PrepaidStatus::Failed, Format::Json, ApiVersion::V2);
    let pad = 64 * 1024 - fits.len();
    fits.push_str(&" ".repeat(pad));
    assert_eq!(fits.len(), 64 * 1024);
    let (status, body) = raw_http(
        gw.addr,
        &chunked_post("/callbacks/iak", fits.as_bytes(), 1000),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(gw.record("iak", "fits").await.unwrap()["state"], "failed");
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let gw = TestGateway::start_with_env("", &[("LUNAS__SERVER__BODY_LIMIT", "2048")]).await;
    let mut big = iak_body(
        "limited",
        PrepaidStatus::Failed,
        Format::Json,
        ApiVersion::V2,
    );
    big.push_str(&" ".repeat(2048));
    let before = gw.snapshot().await;
    let (status, body) = raw_http(gw.addr, &sized_post("/callbacks/iak", big.as_bytes())).await;
    let msg = assert_error((status, &body), 413, "body_too_large");
    assert!(msg.contains("2048"), "{msg}");
    let (status, body) = raw_http(
        gw.addr,
        &chunked_post("/callbacks/iak", big.as_bytes(), 100),
    )
    .await;
    assert_error((status, &body), 413, "body_too_large");
    assert_eq!(gw.snapshot().await, before);
    // A normal callback still fits.
    let (status, _) = gw
        .callback(
            "iak",
            iak_body(
                "limited",
                PrepaidStatus::Failed,
                Format::Json,
                ApiVersion::V2,
            ),
            &[],
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_callback_from_outside_the_allow_list_is_403() {
    let extra = format!(
        r#"
[[providers]]
id = "iak-locked"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
callback_ips = ["10.9.9.9"]

[[providers]]
id = "iak-local"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
callback_ips = ["10.9.9.9", "127.0.0.1"]

[[providers]]
id = "iak-range"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
callback_ips = ["127.0.0.0/8"]
"#
    );
    let gw = TestGateway::start_with(&extra).await;
    let body = iak_body(
        "allow-1",
        PrepaidStatus::Success,
        Format::Json,
        ApiVersion::V2,
    );
    let msg = refused(
        &gw,
        "iak-locked",
        body.clone(),
        &[],
        403,
        "forbidden_source",
    )
    .await;
    assert!(
        msg.contains("127.0.0.1"),
        "the refused address is named: {msg}"
    );
    assert!(gw.transaction("iak-locked", "allow-1").await.is_none());

    let (status, ack) = gw.callback("iak-local", body.clone(), &[]).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        gw.record("iak-local", "allow-1").await.unwrap()["state"],
        "succeeded"
    );
    let (status, ack) = gw.callback("iak-range", body, &[]).await;
    assert_eq!(status, 200, "{ack}");
}

#[tokio::test]
async fn a_locked_database_is_503_then_the_same_callback_succeeds_once_released() {
    let gw = gateway_with_known().await;
    let before = gw.snapshot().await;
    let body = iak_body(
        "during-lock",
        PrepaidStatus::Success,
        Format::Xml,
        ApiVersion::V1,
    );

    let lock = gw.lock_storage().await;
    let (status, text) = gw.callback("iak", body.clone(), &[]).await;
    let msg = assert_error((status, &text), 503, "storage_unavailable");
    assert!(msg.contains("retry"), "{msg}");
    // A callback the provider will retry, for a known ref too.
    let (status, text) = gw
        .callback(
            "iak",
            iak_body("known", PrepaidStatus::Failed, Format::Json, ApiVersion::V2),
            &[],
        )
        .await;
    assert_error((status, &text), 503, "storage_unavailable");
    let (status, ready) = gw.get("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["error"]["code"], "storage_unavailable");
    let (status, _) = gw.get("/healthz").await;
    assert_eq!(status, 200, "the process is still alive");
    lock.release().await;

    assert_eq!(gw.snapshot().await, before, "the 503s changed nothing");
    let (status, ready) = gw.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let (status, ack) = gw.callback("iak", body, &[]).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        gw.record("iak", "during-lock").await.unwrap()["state"],
        "succeeded"
    );
    assert_eq!(gw.verdicts("iak", "during-lock").await, ["created"]);
}

#[tokio::test]
async fn a_refused_callback_is_kept_as_evidence_with_its_verdict() {
    // Rejections are stored (capped) so a dispute can see them, and counted per provider.
    let gw = gateway_with_known().await;
    let forged = prepaid_callback("known", PrepaidStatus::Failed, IAK_USER, "bad");
    gw.callback("iak", forged.encode(Format::Json, ApiVersion::V2), &[])
        .await;
    gw.callback("iak", "{not json", &[]).await;
    let tx = gw.transaction("iak", "known").await.unwrap();
    let forged_obs = tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["verdict"] == "bad_signature")
        .expect("the forgery is in the timeline");
    assert!(forged_obs["body"].as_str().unwrap().contains("known"));
    assert!(forged_obs["detail"].as_str().unwrap().contains("sign"));
    let (_, providers) = gw.get("/api/v1/providers").await;
    let iak = providers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "iak")
        .unwrap()
        .clone();
    assert_eq!(iak["signature_failures"], 1);
    assert_eq!(iak["rejected"], 2);
}

#[tokio::test]

async fn an_empty_ref_is_a_missing_field() {
    // A ref is the transaction's identity; an empty one is as good as absent. The admin API
    // itself refuses an empty ref on registration, and has no route to show one.
    let gw = TestGateway::start().await;
    for reference in ["", "   "] {
        for format in [Format::Json, Format::Xml] {
            let body = iak_body(reference, PrepaidStatus::Success, format, ApiVersion::V2);
            let msg = refused(&gw, "iak", body, &[], 400, "missing_field").await;
            assert!(msg.contains("ref_id"), "{msg}");
        }
    }
    let mut va = va_callback(
        "x",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        1000,
        &[("E1", 1000)],
        false,
    );
    va.external_id = String::new();
    let (body, sig) = mcp_callback(&va);
    let msg = refused(
        &gw,
        "mcp",
        body,
        &[("mcp-signature", sig.as_str())],
        400,
        "missing_field",
    )
    .await;
    assert!(msg.contains("external_id"), "{msg}");
}

#[tokio::test]

async fn a_negative_amount_is_400() {
    let gw = gateway_with_known().await;
    let mut cb = iak_json("known", PrepaidStatus::Failed);
    cb["data"]["price"] = json!("-25000");
    let msg = refused(&gw, "iak", cb.to_string(), &[], 400, "invalid_field").await;
    assert!(msg.contains("price"), "{msg}");
    let (status, body) = gw
        .post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "iak", "ref": "neg", "kind": "prepaid", "amount": -5}),
        )
        .await;
    let msg = assert_error((status, &body.to_string()), 400, "invalid_field");
    assert!(msg.contains("amount"), "{msg}");
}
