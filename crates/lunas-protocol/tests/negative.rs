//! Bad input of every class gets a typed error naming the problem, never a panic.

use lunas_protocol::iak::postpaid::{PostpaidRequest, PostpaidResult};
use lunas_protocol::iak::prepaid::{
    PrepaidCallback, PrepaidRequest, PrepaidResult, PriceListResult,
};
use lunas_protocol::mcp::{
    CreateVaRequest, McpResponse, TransactionStatus, VaLookupRequest, VaTransaction,
};
use lunas_protocol::ProtocolError as E;
use proptest::prelude::*;

const GOOD: &str = r#"{"data":{"ref_id":"order003","status":"2","code":"xld50000","hp":"0817777215","price":"50000","message":"FAILED","balance":"997011249","tr_id":"3486","rc":"07","sign":"509bb7bba23e3c2eff70b381cb4534f2"}}"#;
const GOOD_XML: &str = "<?xml version=\"1.0\"?><mp><ref_id>order003</ref_id><status>2</status><code>xld50000</code><hp>0817777215</hp><price>50000</price><message>FAILED</message><balance>997011249</balance><tr_id>3486</tr_id><rc>07</rc><sign>509bb7bba23e3c2eff70b381cb4534f2</sign></mp>";

fn callback_error(body: &str) -> E {
    PrepaidCallback::parse(body.as_bytes()).expect_err(body)
}

#[test]
fn the_reference_bodies_are_accepted() {
    assert!(PrepaidCallback::parse(GOOD.as_bytes()).is_ok());
    assert!(PrepaidCallback::parse(GOOD_XML.as_bytes()).is_ok());
}

#[test]
fn numbers_may_arrive_as_numbers_or_strings() {
    let numeric = GOOD
        .replace(r#""status":"2""#, r#""status":2"#)
        .replace(r#""price":"50000""#, r#""price":50000"#)
        .replace(r#""tr_id":"3486""#, r#""tr_id":3486"#);
    let a = PrepaidCallback::parse(numeric.as_bytes()).unwrap().message;
    let b = PrepaidCallback::parse(GOOD.as_bytes()).unwrap().message;
    assert_eq!(a, b);
}

#[test]
fn empty_and_unknown_formats() {
    assert_eq!(callback_error(""), E::Empty);
    assert_eq!(callback_error(" \n"), E::Empty);
    assert_eq!(callback_error("ref_id=order003&status=1"), E::UnknownFormat);
}

#[test]
fn truncated_bodies() {
    assert!(matches!(
        callback_error(&GOOD[..GOOD.len() - 10]),
        E::InvalidJson(_)
    ));
    assert!(matches!(
        callback_error(&GOOD_XML[..GOOD_XML.len() - 10]),
        E::InvalidXml(_)
    ));
    assert!(matches!(
        callback_error("<mp><ref_id>order003</ref_id>"),
        E::InvalidXml(_)
    ));
}

#[test]
fn hostile_xml_is_refused_before_any_expansion() {
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE mp [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><mp><ref_id>&c;</ref_id></mp>"#;
    assert_eq!(callback_error(laughs), E::XmlDoctype);
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE mp [<!ENTITY x SYSTEM "file:///etc/passwd">]><mp><ref_id>&x;</ref_id></mp>"#;
    assert_eq!(callback_error(xxe), E::XmlDoctype);
    let entity = GOOD_XML.replace("order003", "&x;");
    assert!(matches!(callback_error(&entity), E::XmlEntity(_)));
    // The five predefined entities and character references are ordinary text.
    let escaped = GOOD_XML.replace("FAILED</message>", "GAGAL &amp; &#65;</message>");
    let cb = PrepaidCallback::parse(escaped.as_bytes()).unwrap().message;
    assert_eq!(cb.message, "GAGAL & A");
}

#[test]
fn wrong_envelopes() {
    assert!(matches!(
        callback_error(r#"{"ref_id":"x"}"#),
        E::Envelope(_)
    ));
    assert!(matches!(callback_error(r#"{"data":"x"}"#), E::Envelope(_)));
    assert!(matches!(
        callback_error(r#"[1,2]"#),
        E::InvalidJson(_) | E::UnknownFormat
    ));
    assert!(matches!(
        callback_error("<data><ref_id>x</ref_id></data>"),
        E::Envelope(_)
    ));
}

#[test]
fn each_missing_mandatory_field_is_named() {
    let full: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    for field in [
        "ref_id", "status", "code", "hp", "price", "message", "balance", "tr_id", "rc", "sign",
    ] {
        let mut v = full.clone();
        v["data"].as_object_mut().unwrap().remove(field);
        let err = callback_error(&v.to_string());
        let expected = match field {
            "code" => "product_code",
            "hp" => "customer_id",
            f => f,
        };
        assert_eq!(err, E::MissingField(expected.into()), "{field}");
        let mut v = full.clone();
        v["data"][field] = serde_json::Value::Null;
        assert_eq!(
            callback_error(&v.to_string()),
            E::MissingField(expected.into()),
            "{field}: null"
        );
    }
}

#[test]
fn unknown_status_values_and_bad_numbers() {
    for status in ["3", "9", "-1", "SUCCESS", ""] {
        let body = GOOD.replace(r#""status":"2""#, &format!(r#""status":"{status}""#));
        assert!(
            matches!(callback_error(&body), E::UnknownValue { ref field, .. } if field == "status"),
            "{status}"
        );
    }
    for price in [
        r#""16500.5""#,
        r#""Rp 16.500""#,
        "16500.5",
        "true",
        r#""1e5""#,
        "99999999999999999999",
    ] {
        let body = GOOD.replace(r#""price":"50000""#, &format!(r#""price":{price}"#));
        assert!(
            matches!(callback_error(&body), E::InvalidField { ref field, .. } if field == "price"),
            "{price}"
        );
    }
    let body = GOOD
        .replace(r#""sn":"#, "")
        .replace(r#""rc":"07""#, r#""rc":{"a":1}"#);
    assert!(matches!(callback_error(&body), E::InvalidField { ref field, .. } if field == "rc"));
}

#[test]
fn v1_and_v2_names_that_disagree_are_refused() {
    let body = GOOD.replace(
        r#""code":"xld50000""#,
        r#""code":"xld50000","product_code":"xld10000""#,
    );
    assert!(matches!(callback_error(&body), E::ConflictingFields { .. }));
    let same = GOOD.replace(
        r#""code":"xld50000""#,
        r#""code":"xld50000","product_code":"xld50000""#,
    );
    assert!(PrepaidCallback::parse(same.as_bytes()).is_ok());
}

#[test]
fn answers_requests_and_postpaid_bad_input() {
    assert_eq!(
        PrepaidResult::parse(br#"{"data":{"status":1}}"#).unwrap_err(),
        E::MissingField("rc".into())
    );
    assert!(matches!(
        PrepaidRequest::parse("/api/top-up", br#"{"username":"u","ref_id":"r","customer_id":"c","sign":"s"}"#),
        Err(E::MissingField(f)) if f == "product_code"
    ));
    assert!(matches!(
        PrepaidRequest::parse("/api/nope", br#"{"username":"u","sign":"s"}"#),
        Err(E::UnknownValue { field, .. }) if field == "path"
    ));
    for path in [
        "/api/pricelistpulsa",
        "/v1/legacy/indexpulsa",
        "/api/top-up/x",
    ] {
        assert!(
            matches!(
                PrepaidRequest::parse(path, br#"{"commands":"pricelist","username":"u","ref_id":"r","customer_id":"c","product_code":"p","sign":"s"}"#),
                Err(E::UnknownValue { field, .. }) if field == "path"
            ),
            "{path}"
        );
    }
    assert!(matches!(
        PrepaidRequest::parse("/v1/legacy/index", br#"{"commands":"steal","username":"u","sign":"s"}"#),
        Err(E::UnknownValue { field, .. }) if field == "commands"
    ));
    assert!(matches!(
        PostpaidResult::parse(br#"{"data":{"status":4,"response_code":"00"},"meta":[]}"#),
        Err(E::UnknownValue { field, .. }) if field == "status"
    ));
    assert!(matches!(
        PostpaidResult::parse(br#"{"data":{"response_code":"00","desc":[1]},"meta":[]}"#),
        Err(E::InvalidField { field, .. }) if field == "desc"
    ));
    assert!(matches!(
        PostpaidRequest::parse("/api/v1/bill/check", br#"{"commands":"pay-pasca","username":"u","tr_id":"12x","sign":"s"}"#),
        Err(E::InvalidField { field, .. }) if field == "tr_id"
    ));
    assert!(matches!(
        PriceListResult::parse(br#"{"data":[{"pulsa_code":"x"}]}"#),
        Err(E::MissingField(f)) if f == "product_price"
    ));
}

const MCP_GOOD: &str = r#"{"transaction_id":"t1","external_id":"e1","order_id":"o1","transaction_status":"PAID","payment_details":{"amount":10000,"total_amount":10000}}"#;

#[test]
fn mcp_errors_name_the_field_path() {
    assert!(VaTransaction::parse_callback(MCP_GOOD.as_bytes()).is_ok());
    let missing = MCP_GOOD.replace(r#""transaction_id":"t1","#, "");
    assert_eq!(
        VaTransaction::parse_callback(missing.as_bytes()).unwrap_err(),
        E::MissingField("transaction_id".into())
    );
    let bad_amount = MCP_GOOD.replace(r#""amount":10000"#, r#""amount":"sepuluh ribu""#);
    assert!(matches!(
        VaTransaction::parse_callback(bad_amount.as_bytes()),
        Err(E::InvalidField { field, .. }) if field == "payment_details.amount"
    ));
    let string_amount = MCP_GOOD.replace(r#""amount":10000"#, r#""amount":"10000""#);
    let tx = VaTransaction::parse_callback(string_amount.as_bytes()).unwrap();
    assert_eq!(tx.payment_details.unwrap().amount, Some(10000));
    let bad_system = MCP_GOOD.replace(
        r#""payment_details":{"#,
        r#""payment_details":{"payment_system":"HALF","#,
    );
    assert!(matches!(
        VaTransaction::parse_callback(bad_system.as_bytes()),
        Err(E::InvalidField { field, .. }) if field == "payment_details.payment_system"
    ));
    assert!(matches!(
        VaTransaction::parse_callback(&MCP_GOOD.as_bytes()[..40]),
        Err(E::InvalidJson(_))
    ));
    assert!(matches!(
        VaTransaction::parse_callback(b"<mp/>"),
        Err(E::InvalidJson(_))
    ));
    assert!(matches!(
        VaTransaction::parse_callback(format!("{MCP_GOOD} trailing").as_bytes()),
        Err(E::InvalidJson(_))
    ));
}

#[test]
fn an_unknown_mcp_status_is_kept_not_rejected() {
    let body = MCP_GOOD.replace("PAID", "PAYMENT ERROR");
    let tx = VaTransaction::parse_callback(body.as_bytes()).unwrap();
    assert_eq!(
        tx.transaction_status,
        TransactionStatus::Other("PAYMENT ERROR".into())
    );
    assert_eq!(
        lunas_protocol::state::va_state(&tx),
        None,
        "recorded, changes nothing"
    );
    let lower = MCP_GOOD.replace("PAID", "paid");
    assert_eq!(
        VaTransaction::parse_callback(lower.as_bytes())
            .unwrap()
            .transaction_status,
        TransactionStatus::Paid
    );
}

#[test]
fn create_requests_are_validated() {
    let base = r#"{"external_id":"e","order_id":"o","currency":"IDR","payment_method":"bank_transfer","payment_channel":"BRI","payment_details":{"billing_name":"B","amount":AMOUNT,"transaction_description":"d"PS},"customer_details":{"email":"a@b.c","full_name":"B"}}"#;
    let make = |amount: &str, ps: &str| base.replace("AMOUNT", amount).replace("PS", ps);
    assert!(CreateVaRequest::parse(make("10000", "").as_bytes()).is_ok());
    assert!(matches!(
        CreateVaRequest::parse(make("0", "").as_bytes()),
        Err(E::InvalidField { field, .. }) if field == "payment_details.amount"
    ));
    assert!(CreateVaRequest::parse(make("0", r#","payment_system":"OPEN""#).as_bytes()).is_ok());
    assert!(matches!(
        CreateVaRequest::parse(make("null", "").as_bytes()),
        Err(E::MissingField(f)) if f == "payment_details.amount"
    ));
    assert!(matches!(
        VaLookupRequest::parse(br#"{"external_id":"e"}"#),
        Err(E::MissingField(_))
    ));
    assert!(
        matches!(McpResponse::parse(br#"{"data":null}"#), Err(E::MissingField(f)) if f == "response_code")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes never make a parser panic.
    #[test]
    fn no_parser_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = PrepaidCallback::parse(&bytes);
        let _ = PrepaidResult::parse(&bytes);
        let _ = PostpaidResult::parse(&bytes);
        let _ = PrepaidRequest::parse("/v1/legacy/index", &bytes);
        let _ = PostpaidRequest::parse("/api/v1/bill/check", &bytes);
        let _ = VaTransaction::parse_callback(&bytes);
        let _ = lunas_protocol::xml::parse(&bytes);
    }

    /// Mutating one byte of a valid body yields a parse or a typed error, never a panic.
    #[test]
    fn no_parser_panics_on_mutated_bodies(pos in 0usize..400, byte in any::<u8>()) {
        for good in [GOOD.as_bytes(), GOOD_XML.as_bytes(), MCP_GOOD.as_bytes()] {
            let mut b = good.to_vec();
            let i = pos % b.len();
            b[i] = byte;
            let _ = PrepaidCallback::parse(&b);
            let _ = VaTransaction::parse_callback(&b);
            let _ = PostpaidResult::parse(&b);
        }
    }
}
