//! The sandbox writes what the seed documents show, byte for byte: the same transaction as
//! the documents' order003 (failed top-up) and order001 (top-up answer) gives the fixtures of
//! the protocol library, with only the ids the sandbox generates itself (`tr_id`) put in.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidCallback;
use lunas_protocol::sign::{iak_sign, IakSignInput};
use lunas_protocol::Secret;

const DOC_USER: &str = "123123123";
const DOC_KEY: &str = "TESTKEY-not-real-0001";

fn fixture(path: &str) -> String {
    let full = format!(
        "{}/../lunas-protocol/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// An account with the documents' username, whose deposit makes the documents' balances.
async fn documents_account(format: &str, version: &str, deposit: i64) -> Harness {
    Harness::start(&format!(
        r#"
[sandbox]
[[sandbox.accounts]]
kind = "iak"
username = "{DOC_USER}"
api_key = "{DOC_KEY}"
callback_url = "{{callback}}/cb"
callback_format = "{format}"
api_version = "{version}"
deposit = {deposit}
"#
    ))
    .await
}

/// Ends order003 as the documents do (xld50000 to 0817777215, failed, rc 07) and returns the
/// body the receiver got with its `tr_id`.
async fn order003(h: &Harness) -> (String, i64) {
    let r = h
        .top_up_as(DOC_USER, DOC_KEY, "order003", "0817777215", "xld50000")
        .await;
    assert_eq!(h.report("order003", "failed").await.status, 200);
    let got = h.receiver.at("/cb");
    assert_eq!(got.len(), 1);
    (got[0].text(), r.tr_id.unwrap())
}

#[tokio::test]
async fn a_json_v1_failed_callback_is_the_documents_order003() {
    let h = documents_account("json", "v1", 997_011_249).await;
    let (body, tr_id) = order003(&h).await;
    let expected = fixture("iak/callback_order003_signed.json")
        .trim_end()
        .replace(r#""tr_id":"3486""#, &format!(r#""tr_id":"{tr_id}""#));
    assert_eq!(body, expected);
}

#[tokio::test]
async fn an_xml_v1_failed_callback_is_laid_out_as_the_documents() {
    let h = documents_account("xml", "v1", 997_011_249).await;
    let (body, tr_id) = order003(&h).await;
    let sign = iak_sign(
        DOC_USER,
        &Secret::new(DOC_KEY),
        IakSignInput::RefId("order003"),
    );
    let expected = fixture("iak/callback_failed.xml")
        .trim_end()
        .replace("96e1028f6beaa817ee3670a39c01c69d", &sign)
        .replace("<tr_id>3486</tr_id>", &format!("<tr_id>{tr_id}</tr_id>"));
    assert_eq!(body, expected);
}

#[tokio::test]
async fn a_json_v2_failed_callback_has_the_documents_v2_fields() {
    let h = documents_account("json", "v2", 997_011_249).await;
    let (body, tr_id) = order003(&h).await;
    let mut expected: serde_json::Value =
        serde_json::from_str(&fixture("iak/callback_v2_failed.json")).unwrap();
    expected["data"]["tr_id"] = tr_id.to_string().into();
    expected["data"]["sign"] = iak_sign(
        DOC_USER,
        &Secret::new(DOC_KEY),
        IakSignInput::RefId("order003"),
    )
    .into();
    let got: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got, expected);
    // The key order is the documents' too.
    assert_eq!(
        body,
        PrepaidCallback::parse(body.as_bytes())
            .unwrap()
            .message
            .encode(lunas_protocol::Format::Json, lunas_protocol::ApiVersion::V2)
    );
}

#[tokio::test]
async fn the_first_top_up_answer_is_the_documents_order001() {
    let h = documents_account("json", "v2", 997_061_249 + 25_000).await;
    let req = lunas_protocol::iak::prepaid::PrepaidRequest::parse(
        "/api/top-up",
        fixture("iak/topup_request_v2.json").as_bytes(),
    )
    .unwrap()
    .message;
    let resigned = lunas_protocol::iak::prepaid::PrepaidRequest::new(
        DOC_USER,
        &Secret::new(DOC_KEY),
        req.command,
    );
    let answer = h
        .post(
            "/api/top-up",
            "application/json",
            resigned.encode(lunas_protocol::Format::Json, lunas_protocol::ApiVersion::V2),
        )
        .await;
    let tr_id = lunas_protocol::iak::prepaid::PrepaidResult::parse(&answer.body)
        .unwrap()
        .message
        .tr_id
        .unwrap();
    let expected = fixture("iak/topup_response.json")
        .trim_end()
        .replace(r#""tr_id":3482"#, &format!(r#""tr_id":{tr_id}"#));
    assert_eq!(answer.text(), expected);
}

/// The documents' success callbacks (a game voucher with its `pin`, an eSIM with its
/// `activation_code`, any other product), as IAK and as IDSL, in JSON: the sandbox's have the
/// same fields in the same order.
#[tokio::test]
async fn success_callbacks_have_the_documents_fields_in_their_order() {
    for kind in ["iak", "idsl"] {
        for (example, product, reference) in [
            ("callback_game", "hsteam12000", "order001"),
            ("callback_esim", "esimtsel10gb", "order004"),
            ("callback_other", "xld25000", "order002"),
        ] {
            let h = Harness::start(&format!(
                r#"
[sandbox]
[[sandbox.accounts]]
kind = "{kind}"
username = "{DOC_USER}"
api_key = "{DOC_KEY}"
callback_url = "{{callback}}/cb"
callback_format = "json"
api_version = "v1"
"#
            ))
            .await;
            h.top_up_as(DOC_USER, DOC_KEY, reference, "0817777215", product)
                .await;
            assert_eq!(h.report(reference, "success").await.status, 200);
            let got = h.receiver.at("/cb");
            let sent: serde_json::Value = serde_json::from_str(&got[0].text()).unwrap();
            let shown: serde_json::Value =
                serde_json::from_str(&fixture(&format!("{kind}/{example}.json"))).unwrap();
            assert_eq!(
                key_paths(&sent),
                key_paths(&shown),
                "{kind} {example}: {}",
                got[0].text()
            );
        }
    }
}
