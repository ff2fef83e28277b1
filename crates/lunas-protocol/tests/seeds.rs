//! Every example payload of the seed documents (and the wire shapes protocols.md cites), read
//! and written back: what the parser gets out of each, and that encoding the parsed model gives
//! the provider's own message again (same fields in the same order, same JSON types; XML
//! callbacks byte for byte).

use lunas_protocol::iak::postpaid::{
    PostpaidCommand, PostpaidRequest, PostpaidResult, PostpaidStatus,
};
use lunas_protocol::iak::prepaid::{
    BalanceResult, PrepaidCallback, PrepaidCommand, PrepaidRequest, PrepaidResult, PrepaidStatus,
    PriceListResult,
};
use lunas_protocol::mcp::{
    CallbackLayout, CreateVaRequest, Credentials, PaymentSystem, TransactionStatus,
    VaLookupRequest, VaTransaction,
};
use lunas_protocol::state::{va_state, State};
use lunas_protocol::{ApiVersion, Format, Secret, Verdict};
use serde_json::Value;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A JSON document as compared here: its value, and its keys in document order (two `Value`s
/// compare equal whatever their key order).
#[derive(Debug, PartialEq)]
struct Json {
    value: Value,
    keys: Vec<String>,
}

fn json(bytes: &[u8]) -> Json {
    let value: Value = serde_json::from_slice(bytes).expect("fixture is valid JSON");
    let mut keys = Vec::new();
    key_paths(&value, "", &mut keys);
    Json { value, keys }
}

/// Every key as a path (`data.desc.kode_area`, an array's items as `detail[].total`), in order.
fn key_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = format!("{prefix}{k}");
                out.push(path.clone());
                key_paths(v, &format!("{path}."), out);
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{}[].", prefix.trim_end_matches('.')), out);
            }
        }
        _ => {}
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .trim_end()
        .to_owned()
}

const CALLBACKS: [&str; 4] = [
    "callback_game",
    "callback_esim",
    "callback_other",
    "callback_failed",
];

#[test]
fn iak_and_idsl_seed_callbacks_parse_in_json_and_xml_alike() {
    for brand in ["iak", "idsl"] {
        for name in CALLBACKS {
            let from_json =
                PrepaidCallback::parse(&fixture(&format!("{brand}/{name}.json"))).unwrap();
            let from_xml =
                PrepaidCallback::parse(&fixture(&format!("{brand}/{name}.xml"))).unwrap();
            assert_eq!(from_json.format, Format::Json);
            assert_eq!(from_xml.format, Format::Xml);
            assert_eq!(from_json.version, ApiVersion::V1, "the seeds show v1 names");
            assert_eq!(from_json.message, from_xml.message, "{brand}/{name}");
        }
    }
}

#[test]
fn seed_callback_fields_are_read_with_their_values() {
    let game = PrepaidCallback::parse(&fixture("iak/callback_game.json"))
        .unwrap()
        .message;
    assert_eq!(game.ref_id, "order001");
    assert_eq!(game.status, PrepaidStatus::Success);
    assert_eq!(game.product_code, "hsteam12000");
    assert_eq!(game.customer_id, "0817777215");
    assert_eq!(game.price, 16500);
    assert_eq!(game.sn.as_deref(), Some("ABCD-EFGH-IJKL-MNOP"));
    assert_eq!(game.pin.as_deref(), Some("123456789"));
    assert_eq!(game.balance, 996994749);
    assert_eq!(game.tr_id, 3487);
    assert_eq!(game.rc, "00");
    assert_eq!(game.verdict(), Verdict::Succeeded);

    let esim = PrepaidCallback::parse(&fixture("idsl/callback_esim.xml"))
        .unwrap()
        .message;
    assert_eq!(
        esim.activation_code.as_deref(),
        Some("LPA:1$v1-aktivasi-esim.com$9876543210123456789ABCDEFGHGFEDC")
    );
    assert_eq!(esim.pin, None);

    let failed = PrepaidCallback::parse(&fixture("iak/callback_failed.json"))
        .unwrap()
        .message;
    assert_eq!(failed.status, PrepaidStatus::Failed);
    assert_eq!(failed.sn, None);
    assert_eq!(failed.verdict(), Verdict::Failed);
}

#[test]
fn encoding_a_seed_callback_gives_the_seed_back() {
    for brand in ["iak", "idsl"] {
        for name in CALLBACKS {
            let json_bytes = fixture(&format!("{brand}/{name}.json"));
            let cb = PrepaidCallback::parse(&json_bytes).unwrap().message;
            assert_eq!(
                json(cb.encode(Format::Json, ApiVersion::V1).as_bytes()),
                json(&json_bytes)
            );
            // The XML writer lays a document out exactly as the seeds do.
            let xml_bytes = fixture(&format!("{brand}/{name}.xml"));
            assert_eq!(
                cb.encode(Format::Xml, ApiVersion::V1),
                text(&xml_bytes),
                "{brand}/{name}"
            );
        }
    }
}

#[test]
fn v2_callbacks_use_product_code_and_customer_id() {
    let bytes = fixture("iak/callback_v2_success.json");
    let cb = PrepaidCallback::parse(&bytes).unwrap();
    assert_eq!(cb.version, ApiVersion::V2);
    assert_eq!(cb.message.product_code, "xld25000");
    assert_eq!(cb.message.customer_id, "0817777215");
    assert_eq!(
        json(cb.message.encode(Format::Json, ApiVersion::V2).as_bytes()),
        json(&bytes)
    );
    let failed = PrepaidCallback::parse(&fixture("iak/callback_v2_failed.json")).unwrap();
    assert_eq!(failed.message.verdict(), Verdict::Failed);
    // The same transaction under v1 names is the same model.
    let v1 = PrepaidCallback::parse(&fixture("iak/callback_other.json")).unwrap();
    assert_eq!(v1.message, cb.message);
}

#[test]
fn the_computed_order003_callback_verifies_and_its_doc_twin_does_not() {
    let key = Secret::new("TESTKEY-not-real-0001");
    let signed = PrepaidCallback::parse(&fixture("iak/callback_order003_signed.json"))
        .unwrap()
        .message;
    assert!(signed.verify("123123123", &key));
    assert!(!signed.verify("123123124", &key));
    assert!(!signed.verify("123123123", &Secret::new("TESTKEY-not-real-0002")));
    // The documents' sign is a placeholder that no credentials reproduce.
    let doc = PrepaidCallback::parse(&fixture("iak/callback_failed.json"))
        .unwrap()
        .message;
    assert!(!doc.verify("123123123", &key));
    // The sign covers only the ref: an altered status still verifies (why confirm mode exists).
    let mut forged = signed.clone();
    forged.status = PrepaidStatus::Success;
    forged.rc = "00".into();
    assert!(forged.verify("123123123", &key));
}

#[test]
fn prepaid_answers_carry_numbers_and_read_back_identically() {
    for (name, verdict) in [
        ("iak/topup_response.json", Verdict::Pending),
        ("iak/checkstatus_success.json", Verdict::Succeeded),
        ("iak/checkstatus_failed.json", Verdict::Failed),
    ] {
        let bytes = fixture(name);
        let res = PrepaidResult::parse(&bytes).unwrap();
        assert_eq!(res.message.verdict(), verdict, "{name}");
        assert_eq!(
            json(res.message.encode(Format::Json, res.version).as_bytes()),
            json(&bytes),
            "{name}"
        );
    }
    let xml = PrepaidResult::parse(&fixture("iak/topup_response.xml")).unwrap();
    assert_eq!(xml.format, Format::Xml);
    assert_eq!(xml.message.status, Some(PrepaidStatus::Process));
    assert_eq!(xml.message.balance, Some(69000));
    assert_eq!(xml.message.tr_id, Some(6159309));
    let again =
        PrepaidResult::parse(xml.message.encode(Format::Xml, ApiVersion::V2).as_bytes()).unwrap();
    assert_eq!(again.message, xml.message);
}

#[test]
fn the_top_up_request_example_reads_as_a_v2_top_up() {
    let req = PrepaidRequest::parse("/api/top-up", &fixture("iak/topup_request_v2.json")).unwrap();
    assert_eq!(req.version, ApiVersion::V2);
    assert_eq!(
        req.message.command,
        PrepaidCommand::TopUp {
            ref_id: "order001".into(),
            customer_id: "0817777215".into(),
            product_code: "xld25000".into()
        }
    );
    assert_eq!(
        json(req.message.encode(Format::Json, ApiVersion::V2).as_bytes()),
        json(&fixture("iak/topup_request_v2.json"))
    );
}

#[test]
fn balance_answers_in_v2_and_v1_shapes() {
    let v2 = BalanceResult::parse(&fixture("iak/balance_v2.json"))
        .unwrap()
        .message;
    assert_eq!(v2.balance, Some(997136249));
    assert_eq!(v2.rc.as_deref(), Some("00"));
    assert_eq!(
        json(v2.encode(Format::Json).as_bytes()),
        json(&fixture("iak/balance_v2.json"))
    );
    let xml = BalanceResult::parse(&fixture("iak/balance_v2.xml"))
        .unwrap()
        .message;
    assert_eq!(xml, v2);
    let v1 = BalanceResult::parse(&fixture("iak/balance_v1.json"))
        .unwrap()
        .message;
    assert_eq!((v1.balance, v1.rc), (Some(997136249), None));
}

#[test]
fn price_lists_in_v2_object_and_v1_array_shapes() {
    let bytes = fixture("iak/pricelist_v2.json");
    let v2 = PriceListResult::parse(&bytes).unwrap();
    assert_eq!(v2.version, ApiVersion::V2);
    assert_eq!(v2.message.pricelist.len(), 2);
    assert_eq!(v2.message.pricelist[0].product_price, 30000);
    assert_eq!(
        json(v2.message.encode(Format::Json, ApiVersion::V2).as_bytes()),
        json(&bytes)
    );

    let bytes = fixture("iak/pricelist_v1.json");
    let v1 = PriceListResult::parse(&bytes).unwrap();
    assert_eq!(v1.version, ApiVersion::V1);
    assert_eq!(v1.message.pricelist[0].product_code, "alfamart100");
    assert_eq!(v1.message.pricelist[0].active_period.as_deref(), Some("0"));
    assert_eq!(
        json(v1.message.encode(Format::Json, ApiVersion::V1).as_bytes()),
        json(&bytes)
    );
}

#[test]
fn postpaid_check_status_examples_of_seed_003() {
    for (name, status, rc, verdict) in [
        (
            "checkstatus_success",
            PostpaidStatus::Success,
            "00",
            Verdict::Succeeded,
        ),
        (
            "checkstatus_not_received",
            PostpaidStatus::NotReceived,
            "42",
            Verdict::NotReceived,
        ),
        (
            "checkstatus_processing",
            PostpaidStatus::Processing,
            "39",
            Verdict::Pending,
        ),
        (
            "checkstatus_failed",
            PostpaidStatus::Failed,
            "37",
            Verdict::Failed,
        ),
    ] {
        let bytes = fixture(&format!("postpaid/{name}.json"));
        let res = PostpaidResult::parse(&bytes).unwrap().message;
        assert_eq!(res.status, Some(status), "{name}");
        assert_eq!(res.response_code, rc);
        assert_eq!(res.verdict(), verdict, "{name}");
        assert_eq!(res.ref_id.as_deref(), Some("091283746520"));
        assert!(matches!(res.desc, Some(Value::Object(_))));
        assert_eq!(
            json(res.encode(Format::Json).as_bytes()),
            json(&bytes),
            "{name}"
        );
    }
    let processing = PostpaidResult::parse(&fixture("postpaid/checkstatus_processing.json"))
        .unwrap()
        .message;
    assert_eq!(
        processing.message.as_deref(),
        Some("PENDING / TRANSAKSI SEDANG DIPROSES")
    );
    assert_eq!(
        processing.balance,
        Some(99_995_833_900),
        "balances exceed 32 bits"
    );
    assert_eq!(processing.datetime, None, "this example has no datetime");
    let failed = PostpaidResult::parse(&fixture("postpaid/checkstatus_failed.json"))
        .unwrap()
        .message;
    assert_eq!(failed.noref.as_deref(), Some(""));
    let vector = PostpaidResult::parse(&fixture("postpaid/checkstatus_processing_vector.json"))
        .unwrap()
        .message;
    assert_eq!(vector, processing);
}

#[test]
fn postpaid_requests_inquiry_and_payment_examples() {
    let cs = PostpaidRequest::parse(
        "/api/v1/bill/check",
        &fixture("postpaid/checkstatus_request.json"),
    )
    .unwrap();
    assert_eq!(
        cs.message.command,
        PostpaidCommand::CheckStatus {
            ref_id: "091283746520".into()
        }
    );
    assert_eq!(cs.message.username, "123123123");
    let inq = PostpaidRequest::parse(
        "/api/v1/bill/check",
        &fixture("postpaid/inquiry_request.xml"),
    )
    .unwrap();
    assert_eq!(inq.format, Format::Xml);
    assert!(
        matches!(&inq.message.command, PostpaidCommand::Inquiry { code, hp, .. } if code == "PLNPOSTPAID" && hp == "530000000001")
    );
    let pay = PostpaidRequest::parse(
        "/api/v1/bill/check",
        &fixture("postpaid/payment_request.json"),
    )
    .unwrap();
    assert_eq!(
        pay.message.command,
        PostpaidCommand::Payment { tr_id: 9732795 }
    );
    assert_eq!(
        json(pay.message.encode(Format::Json).as_bytes()),
        json(&fixture("postpaid/payment_request.json")),
        "tr_id stays a string, as the documents send it"
    );

    let bytes = fixture("postpaid/inquiry_response.json");
    let inquiry = PostpaidResult::parse(&bytes).unwrap().message;
    assert_eq!(
        (inquiry.tr_id, inquiry.price, inquiry.status),
        (Some(9732432), Some(137110), None)
    );
    assert_eq!(json(inquiry.encode(Format::Json).as_bytes()), json(&bytes));
    let bytes = fixture("postpaid/payment_response_pln.json");
    let payment = PostpaidResult::parse(&bytes).unwrap().message;
    assert_eq!(payment.verdict(), Verdict::Succeeded);
    assert_eq!(
        payment.noref.as_deref(),
        Some("004212C9245F1BA43A77CEBD5CD5DA39")
    );
    assert_eq!(json(payment.encode(Format::Json).as_bytes()), json(&bytes));
}

#[test]
fn postpaid_desc_may_be_an_empty_string() {
    let bytes = fixture("postpaid/error_empty_desc.json");
    let res = PostpaidResult::parse(&bytes).unwrap().message;
    assert_eq!(res.desc, Some(Value::String(String::new())));
    assert_eq!(res.verdict(), Verdict::Failed);
    assert_eq!(json(res.encode(Format::Json).as_bytes()), json(&bytes));
}

#[test]
fn postpaid_answers_survive_a_trip_through_xml() {
    let res = PostpaidResult::parse(&fixture("postpaid/checkstatus_success.json"))
        .unwrap()
        .message;
    let xml = res.encode(Format::Xml);
    let back = PostpaidResult::parse(xml.as_bytes()).unwrap().message;
    // XML keeps every scalar as text, so `desc` comes back with string leaves; the rest is equal.
    assert_eq!(
        PostpaidResult {
            desc: None,
            ..back.clone()
        },
        PostpaidResult { desc: None, ..res }
    );
    let detail = &back.desc.unwrap()["tagihan"]["detail"];
    assert_eq!(detail.as_array().map(Vec::len), Some(3));
}

fn mcp_credentials() -> Credentials {
    Credentials {
        merchant_id: "MCP2099010101".into(),
        secret_unbound_id: Secret::new("0x00aabbccddeeff0011"),
        hash_key: Secret::new("HASHKEY-not-real-01"),
        sub_merchant_id: None,
    }
}

#[test]
fn both_mcp_callback_variants_of_seed_002_parse_and_write_back() {
    for (name, layout) in [
        ("callback_body_raw", CallbackLayout::BodyRaw),
        ("callback_curl", CallbackLayout::ExampleRequest),
    ] {
        let bytes = fixture(&format!("mcp/{name}.json"));
        let tx = VaTransaction::parse_callback(&bytes).unwrap();
        assert_eq!(tx.transaction_id, "8393c208-8b83-49eb-8c0b-0b50016e7401");
        assert_eq!(tx.transaction_status, TransactionStatus::Paid);
        assert_eq!(
            json(tx.encode_callback(layout).as_bytes()),
            json(&bytes),
            "{name}"
        );
        let expected = "c1bcd77ad1618dff5fab05937b495da7df1ca4e76c7de1e5db94106ae9f6c6e3";
        assert!(mcp_credentials().verify_callback(&tx, expected));
        assert!(mcp_credentials().verify_callback(&tx, &expected.to_uppercase()));
        assert!(!mcp_credentials().verify_callback(&tx, &expected.replace('c', "d")));
    }
    let raw = VaTransaction::parse_callback(&fixture("mcp/callback_body_raw.json")).unwrap();
    assert_eq!(
        raw.payment_system(),
        Some(PaymentSystem::Closed),
        "top-level placement"
    );
    assert_eq!(
        raw.refund_history.as_ref().unwrap()[0].refund_amount,
        Some(1000)
    );
    assert_eq!(va_state(&raw), Some(State::Paid));

    let curl = VaTransaction::parse_callback(&fixture("mcp/callback_curl.json")).unwrap();
    assert_eq!(
        curl.payment_system(),
        Some(PaymentSystem::Partial),
        "inside payment_details"
    );
    assert_eq!(
        (curl.total_amount(), curl.total_paid()),
        (Some(150000), Some(50000))
    );
    assert_eq!(va_state(&curl), Some(State::PartiallyPaid));
    assert_eq!(
        curl.payment_details.as_ref().unwrap().is_multi_use,
        Some(true)
    );
}

#[test]
fn mcp_requests_read_and_write_back() {
    let bytes = fixture("mcp/create_request.json");
    let create = CreateVaRequest::parse(&bytes).unwrap();
    assert_eq!(create.payment_details.amount, Some(150000));
    // Requests lunas sends: no example in the documents gives their key order, so the values
    // are compared, not the order.
    assert_eq!(json(create.encode().as_bytes()).value, json(&bytes).value);
    let bytes = fixture("mcp/inquiry_request.json");
    let inquiry = VaLookupRequest::parse(&bytes).unwrap();
    assert_eq!(inquiry.payment_method, "BANK_TRANSFER");
    assert_eq!(json(inquiry.encode().as_bytes()).value, json(&bytes).value);
}

#[test]
fn a_desc_number_of_many_digits_comes_back_as_the_same_number() {
    // Found by the `postpaid` fuzz target: without correctly rounded float parsing, a long
    // literal read back from its own shortest spelling landed one ulp away.
    let body = r#"{"data":{"response_code":"00","desc":{"x":13358888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888810}},"meta":[]}"#;
    let res = PostpaidResult::parse(body.as_bytes()).unwrap().message;
    let back = PostpaidResult::parse(res.encode(Format::Json).as_bytes())
        .unwrap()
        .message;
    assert_eq!(back, res);
}
