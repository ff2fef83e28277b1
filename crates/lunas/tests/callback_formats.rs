//! Every callback format a provider sends, through the real gateway: IAK and IDSL in JSON and
//! XML with v1 and v2 names and values as strings or numbers, the seed fixtures re-signed with
//! the test credentials, and both MCPayment seed variants. Each lands in the right state with
//! the right fields and evidence, and is answered with the acknowledgement its provider expects.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};
use serde_json::{json, Value};

/// What a user should find after one IAK/IDSL fixture was delivered.
struct Expect {
    fixture: &'static str,
    reference: &'static str,
    state: &'static str,
    event: &'static str,
    product_code: &'static str,
    amount: i64,
    serial_number: Option<&'static str>,
    pin: Option<&'static str>,
    activation_code: Option<&'static str>,
    balance_after: i64,
    provider_transaction_id: &'static str,
    response_code: &'static str,
    message: &'static str,
}

const ESIM_CODE: &str = "LPA:1$v1-aktivasi-esim.com$9876543210123456789ABCDEFGHGFEDC";

fn seed_fixtures() -> Vec<Expect> {
    let success = |fixture, sn, pin, activation_code| Expect {
        fixture,
        reference: "order001",
        state: "succeeded",
        event: "transaction.succeeded",
        product_code: "hsteam12000",
        amount: 16500,
        serial_number: sn,
        pin,
        activation_code,
        balance_after: 996_994_749,
        provider_transaction_id: "3487",
        response_code: "00",
        message: "SUCCESS",
    };
    let failed = |fixture| Expect {
        fixture,
        reference: "order003",
        state: "failed",
        event: "transaction.failed",
        product_code: "xld50000",
        amount: 50000,
        serial_number: None,
        pin: None,
        activation_code: None,
        balance_after: 997_011_249,
        provider_transaction_id: "3486",
        response_code: "07",
        message: "FAILED",
    };
    let other = |fixture| Expect {
        fixture,
        reference: "order002",
        state: "succeeded",
        event: "transaction.succeeded",
        product_code: "xld25000",
        amount: 25000,
        serial_number: Some("123456789"),
        pin: None,
        activation_code: None,
        balance_after: 997_061_249,
        provider_transaction_id: "3482",
        response_code: "00",
        message: "SUCCESS",
    };
    vec![
        success(
            "callback_esim.json",
            Some("ABCD-EFGH-IJKL-MNOP"),
            None,
            Some(ESIM_CODE),
        ),
        success(
            "callback_esim.xml",
            Some("ABCD-EFGH-IJKL-MNOP"),
            None,
            Some(ESIM_CODE),
        ),
        success(
            "callback_game.json",
            Some("ABCD-EFGH-IJKL-MNOP"),
            Some("123456789"),
            None,
        ),
        success(
            "callback_game.xml",
            Some("ABCD-EFGH-IJKL-MNOP"),
            Some("123456789"),
            None,
        ),
        failed("callback_failed.json"),
        failed("callback_failed.xml"),
        other("callback_other.json"),
        other("callback_other.xml"),
    ]
}

/// Checks the acknowledgement an IAK-family provider gets: 200, in the callback's own format.
#[track_caller]
fn assert_iak_ack(status: u16, content_type: &str, body: &str, xml: bool) {
    assert_eq!(status, 200, "{body}");
    if xml {
        assert!(
            content_type.starts_with("application/xml"),
            "{content_type}"
        );
        assert!(body.trim_start().starts_with("<?xml"), "{body}");
        assert!(body.contains("<mp>"), "{body}");
        assert!(body.contains("<message>SUCCESS</message>"), "{body}");
    } else {
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let v: Value = serde_json::from_str(body).expect("a JSON acknowledgement");
        assert_eq!(v, json!({"message": "SUCCESS"}));
    }
}

async fn send_and_check_fixture(gw: &TestGateway, provider: &str, body: &str, e: &Expect) {
    let xml = e.fixture.ends_with(".xml");
    // The format is sniffed, never trusted from Content-Type: the header is a lie half the time.
    let declared = if xml {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let res = gw
        .callback_response(provider, body.to_owned(), &[("content-type", declared)])
        .await;
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let ack = res.text().await.unwrap();
    assert_iak_ack(status, &content_type, &ack, xml);

    let tx = gw
        .transaction(provider, e.reference)
        .await
        .unwrap_or_else(|| panic!("{provider} {}: created from the callback", e.fixture));
    let what = format!("{provider} {}", e.fixture);
    assert_eq!(tx["provider_id"], provider, "{what}");
    assert_eq!(tx["ref"], e.reference, "{what}");
    assert_eq!(tx["kind"], "prepaid", "{what}");
    assert_eq!(tx["state"], e.state, "{what}");
    assert_eq!(tx["needs_review"], false, "{what}");
    assert_eq!(tx["product_code"], e.product_code, "{what}");
    assert_eq!(tx["customer_id"], "0817777215", "{what}");
    assert_eq!(tx["amount"], e.amount, "{what}");
    assert_eq!(tx["serial_number"], json!(e.serial_number), "{what}");
    assert_eq!(tx["pin"], json!(e.pin), "{what}");
    assert_eq!(tx["activation_code"], json!(e.activation_code), "{what}");
    assert_eq!(tx["balance_after"], e.balance_after, "{what}");
    assert_eq!(
        tx["provider_transaction_id"], e.provider_transaction_id,
        "{what}"
    );
    assert_eq!(tx["response_code"], e.response_code, "{what}");
    assert_eq!(tx["message"], e.message, "{what}");

    // The evidence: the raw bytes as received, how they came, and the event they caused.
    let timeline = tx["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 2, "{what}: {timeline:?}");
    let obs = &timeline[0];
    assert_eq!(obs["type"], "observation", "{what}");
    assert_eq!(obs["source"], "callback", "{what}");
    assert_eq!(obs["verdict"], "created", "{what}");
    assert_eq!(
        obs["body"], body,
        "{what}: the raw body is kept byte for byte"
    );
    assert_eq!(obs["body_size"], body.len(), "{what}");
    assert_eq!(obs["body_truncated"], false, "{what}");
    assert_eq!(obs["content_type"], declared, "{what}");
    assert_eq!(obs["remote_addr"], "127.0.0.1", "{what}");
    let event = &timeline[1];
    assert_eq!(event["type"], "event", "{what}");
    assert_eq!(event["event_type"], e.event, "{what}");
    assert_eq!(event["data"]["state"], e.state, "{what}");
    assert_eq!(event["data"]["ref"], e.reference, "{what}");
}

#[tokio::test]
async fn every_iak_seed_fixture_re_signed_lands_in_its_state_with_its_fields() {
    for e in seed_fixtures() {
        let gw = TestGateway::start().await;
        let body = resign_iak(&fixture(&format!("iak/{}", e.fixture)), IAK_USER, IAK_KEY);
        send_and_check_fixture(&gw, "iak", &body, &e).await;
    }
}

#[tokio::test]
async fn every_idsl_seed_fixture_re_signed_lands_in_its_state_with_its_fields() {
    for e in seed_fixtures() {
        let gw = TestGateway::start().await;
        let body = resign_iak(
            &fixture(&format!("idsl/{}", e.fixture)),
            IDSL_USER,
            IDSL_KEY,
        );
        send_and_check_fixture(&gw, "idsl", &body, &e).await;
    }
}

#[tokio::test]
async fn the_iak_v2_seed_fixtures_re_signed_land_too() {
    let gw = TestGateway::start().await;
    for (fixture_name, reference, state) in [
        ("iak/callback_v2_success.json", "order002", "succeeded"),
        ("iak/callback_v2_failed.json", "order003", "failed"),
    ] {
        let body = resign_iak(&fixture(fixture_name), IAK_USER, IAK_KEY);
        let (status, ack) = gw.callback("iak", body, &[]).await;
        assert_iak_ack(status, "application/json", &ack, false);
        let tx = gw.record("iak", reference).await.expect("created");
        assert_eq!(tx["state"], state);
        assert_eq!(tx["customer_id"], "0817777215", "v2 name customer_id read");
        assert!(
            tx["product_code"].as_str().unwrap().starts_with("xld"),
            "v2 name product_code read: {tx}"
        );
    }
}

#[tokio::test]
async fn the_seed_fixture_signed_for_the_documented_account_verifies_as_is() {
    // callback_order003_signed.json carries the sign of the documented test account.
    let gw = TestGateway::start().await;
    let (status, ack) = gw
        .callback("iak", fixture("iak/callback_order003_signed.json"), &[])
        .await;
    assert_iak_ack(status, "application/json", &ack, false);
    assert_eq!(
        gw.record("iak", "order003").await.unwrap()["state"],
        "failed"
    );
}

#[tokio::test]
async fn a_seed_fixture_with_its_placeholder_sign_is_refused() {
    // The documents' sign is a placeholder; the gateway must not take it for a real one.
    let gw = TestGateway::start().await;
    let (status, body) = gw
        .callback("iak", fixture("iak/callback_other.json"), &[])
        .await;
    assert_error((status, &body), 401, "bad_signature");
    assert!(gw.transaction("iak", "order002").await.is_none());
}

#[tokio::test]
async fn iak_and_idsl_callbacks_in_json_and_xml_with_v1_and_v2_names_all_land() {
    let gw = TestGateway::start().await;
    for provider in ["iak", "idsl"] {
        let (user, key) = if provider == "iak" {
            (IAK_USER, IAK_KEY)
        } else {
            (IDSL_USER, IDSL_KEY)
        };
        for (format, version) in [
            (Format::Json, ApiVersion::V1),
            (Format::Json, ApiVersion::V2),
            (Format::Xml, ApiVersion::V1),
            (Format::Xml, ApiVersion::V2),
        ] {
            let reference = format!("{provider}-{}-{version:?}", format.as_str());
            let body = prepaid_callback(&reference, PrepaidStatus::Failed, user, key)
                .encode(format, version);
            let res = gw.callback_response(provider, body, &[]).await;
            let status = res.status().as_u16();
            let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
            let ack = res.text().await.unwrap();
            assert_iak_ack(status, &ct, &ack, format == Format::Xml);
            let tx = gw.record(provider, &reference).await.expect("created");
            assert_eq!(tx["state"], "failed", "{reference}");
            assert_eq!(tx["product_code"], "xld25000", "{reference}");
            assert_eq!(tx["customer_id"], "0817777215", "{reference}");
            assert_eq!(tx["amount"], 25000, "{reference}");
            assert_eq!(tx["response_code"], "07", "{reference}");
        }
    }
    let types = gw.event_types().await;
    assert_eq!(types.len(), 8);
    assert!(types.iter().all(|t| t == "transaction.failed"), "{types:?}");
}

#[tokio::test]
async fn an_iak_callback_with_numbers_instead_of_strings_lands_the_same() {
    let gw = TestGateway::start().await;
    let mut cb = iak_json("numbers-1", PrepaidStatus::Success);
    let data = cb["data"].as_object_mut().unwrap();
    for (k, v) in [
        ("status", json!(1)),
        ("price", json!(25000)),
        ("balance", json!(997_061_249_i64)),
        ("tr_id", json!(3482)),
        ("customer_id", json!(817777215)),
        ("sn", json!(123456789)),
    ] {
        data.insert(k.into(), v);
    }
    let (status, ack) = gw.callback("iak", cb.to_string(), &[]).await;
    assert_iak_ack(status, "application/json", &ack, false);
    let tx = gw.record("iak", "numbers-1").await.expect("created");
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["amount"], 25000);
    assert_eq!(tx["balance_after"], 997_061_249_i64);
    assert_eq!(tx["provider_transaction_id"], "3482");
    assert_eq!(tx["customer_id"], "817777215");
    assert_eq!(tx["serial_number"], "123456789");

    // Whole amounts written as decimals with a zero fraction are whole rupiah too.
    let mut cb = iak_json("numbers-2", PrepaidStatus::Success);
    cb["data"]["price"] = json!("25000.00");
    let (status, _) = gw.callback("iak", cb.to_string(), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        gw.record("iak", "numbers-2").await.unwrap()["amount"],
        25000
    );
}

#[tokio::test]
async fn an_iak_process_callback_lands_pending() {
    let gw = TestGateway::start().await;
    let (status, ack) = gw
        .callback(
            "idsl",
            prepaid_callback("proc-1", PrepaidStatus::Process, IDSL_USER, IDSL_KEY)
                .encode(Format::Xml, ApiVersion::V1),
            &[],
        )
        .await;
    assert_iak_ack(status, "application/xml", &ack, true);
    let tx = gw.record("idsl", "proc-1").await.unwrap();
    assert_eq!(tx["state"], "pending");
    assert_eq!(gw.event_types().await, ["transaction.pending"]);
}

#[tokio::test]
async fn an_iak_callback_is_refused_on_the_idsl_account_and_the_reverse() {
    // Each account verifies with its own credentials.
    let gw = TestGateway::start().await;
    let (status, body) = gw
        .callback(
            "idsl",
            iak_body(
                "cross-1",
                PrepaidStatus::Success,
                Format::Json,
                ApiVersion::V2,
            ),
            &[],
        )
        .await;
    assert_error((status, &body), 401, "bad_signature");
    let idsl = prepaid_callback("cross-2", PrepaidStatus::Success, IDSL_USER, IDSL_KEY)
        .encode(Format::Json, ApiVersion::V2);
    let (status, body) = gw.callback("iak", idsl, &[]).await;
    assert_error((status, &body), 401, "bad_signature");
    assert!(gw.snapshot().await.0.is_empty());
}

#[tokio::test]
async fn the_mcp_seed_body_raw_lands_paid_with_its_payment() {
    let gw = TestGateway::start().await;
    let (body, sig) = mcp_fixture("mcp/callback_body_raw.json");
    let res = gw
        .callback_response(
            "mcp",
            body.clone(),
            &[
                ("mcp-signature", sig.as_str()),
                ("content-type", "application/json"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let ack: Value = res.json().await.unwrap();
    assert_eq!(ack, json!({"message": "SUCCESS"}));

    let tx = gw.transaction("mcp", "ext-0001").await.expect("created");
    assert_eq!(tx["kind"], "va");
    assert_eq!(tx["state"], "paid");
    assert_eq!(tx["amount"], 150000);
    assert_eq!(tx["total_paid"], 150000);
    assert_eq!(tx["order_id"], "ORD-0001");
    assert_eq!(
        tx["provider_transaction_id"],
        "8393c208-8b83-49eb-8c0b-0b50016e7401"
    );
    assert_eq!(tx["product_code"], "BRI");
    assert_eq!(tx["response_code"], "00");
    let payments = tx["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["reference_id"], "REF20210428100814");
    assert_eq!(payments[0]["amount"], 150000);

    let timeline = tx["timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["type"], "observation");
    assert_eq!(timeline[0]["verdict"], "created");
    assert_eq!(timeline[0]["body"], body.as_str());
    assert_eq!(timeline[0]["content_type"], "application/json");
    let events: Vec<&Value> = timeline[1..].iter().collect();
    assert_eq!(events.len(), 2, "{timeline:?}");
    assert_eq!(events[0]["event_type"], "va.payment_received");
    assert_eq!(
        events[0]["data"]["payment"]["reference_id"],
        "REF20210428100814"
    );
    assert_eq!(events[1]["event_type"], "va.paid");
    assert_eq!(gw.event_types().await, ["va.payment_received", "va.paid"]);
}

#[tokio::test]
async fn the_mcp_documents_example_request_with_its_repeated_keys_lands_too() {
    // Seed 002's "Example Request" as written: `response_code` and `additional_data` appear
    // twice (the same code; free text that differs). One repeated-key rule accepts it.
    let gw = TestGateway::start().await;
    let (body, sig) = mcp_fixture("mcp/callback_example_request.json");
    assert_eq!(body.matches("\"response_code\"").count(), 2);
    let (status, ack) = gw
        .callback("mcp", body, &[("mcp-signature", sig.as_str())])
        .await;
    assert_eq!(status, 200, "{ack}");
    let tx = gw.record("mcp", "ext-0001").await.expect("created");
    assert_eq!(
        (tx["state"].as_str(), tx["total_paid"].as_i64()),
        (Some("partially_paid"), Some(50000))
    );
    // Its evidence says what was repeated.
    let tx = gw.transaction("mcp", "ext-0001").await.unwrap();
    let observation = tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "observation")
        .unwrap();
    assert_eq!(
        observation["detail"],
        "repeated keys accepted, the last value kept: response_code, additional_data"
    );
}

#[tokio::test]
async fn the_mcp_seed_curl_variant_lands_partially_paid() {
    // A PARTIAL VA reported PAID with 50 000 of 150 000 paid is partially paid, not paid.
    let gw = TestGateway::start().await;
    let (body, sig) = mcp_fixture("mcp/callback_curl.json");
    let (status, ack) = gw
        .callback("mcp", body.clone(), &[("mcp-signature", sig.as_str())])
        .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        serde_json::from_str::<Value>(&ack).unwrap(),
        json!({"message": "SUCCESS"})
    );
    let tx = gw.transaction("mcp", "ext-0001").await.expect("created");
    assert_eq!(tx["state"], "partially_paid");
    assert_eq!(tx["amount"], 150000);
    assert_eq!(tx["total_paid"], 50000);
    assert_eq!(tx["customer_id"], "8808123456789012", "the VA number");
    assert_eq!(tx["product_code"], "BNI");
    assert_eq!(tx["payments"][0]["reference_id"], "REF-PAY-0001");
    assert_eq!(tx["timeline"][0]["body"], body.as_str());
    assert_eq!(gw.event_types().await, ["va.payment_received"]);
}

#[tokio::test]
async fn an_mcp_signature_header_is_read_whatever_its_case() {
    let gw = TestGateway::start().await;
    let (body, sig) = mcp_fixture("mcp/callback_body_raw.json");
    let (status, ack) = gw
        .callback(
            "mcp",
            body,
            &[("MCP-Signature", sig.to_uppercase().as_str())],
        )
        .await;
    assert_eq!(status, 200, "{ack}");
}
