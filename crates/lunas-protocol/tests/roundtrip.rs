//! Round-trip properties for every message type of `lunas-protocol`.
//!
//! Each property builds a model value, produces its wire form in one of the formats and naming
//! variants the type supports, parses that wire form back, and checks that the parser returns
//! the model it started from. Where the parser also reports the format and the naming it read,
//! those are checked too.
//!
//! What the XML parser does with text shapes these generators. A leaf element keeps its text
//! verbatim (no trimming), and an empty leaf `<a></a>` reads back as the empty string, so an
//! optional text field that is `Some("")` survives XML as well as JSON; the generators therefore
//! produce empty optional strings for both formats. An element with no children and no text
//! cannot tell an empty object from an empty string, and XML text has no types, which is why the
//! postpaid `desc` generator for XML only builds non-empty objects of non-empty strings.

use lunas_protocol::iak::postpaid::{
    PostpaidCommand, PostpaidRequest, PostpaidResult, PostpaidStatus,
};
use lunas_protocol::iak::prepaid::{
    BalanceResult, PrepaidCallback, PrepaidCommand, PrepaidRequest, PrepaidResult, PrepaidStatus,
    PriceItem, PriceListResult,
};
use lunas_protocol::mcp::{
    Address, CreateVaRequest, CustomerDetails, ItemDetail, McpResponse, PaymentDetails,
    PaymentRecord, PaymentSystem, RefundRecord, TransactionStatus, VaLookupRequest, VaTransaction,
};
use lunas_protocol::{ApiVersion, Format, Secret};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// Generators of text and numbers.
// ---------------------------------------------------------------------------------------------

/// The characters text is drawn from: letters and digits, every character JSON or XML must
/// escape (`<`, `>`, `&`, `"`, `'`, `\`), brackets that could close a CDATA section, non-ASCII
/// letters of two, three and four UTF-8 bytes, spaces and punctuation. Control characters
/// (including `\r`, `\n` and `\t`) are left out.
const TEXT_CLASS: &str = r##"[a-zA-Z0-9 <>&"'éñüß中😀._:=+#?%{}\[\]\\/-]"##;

/// The same characters without `/`, for values that become a path segment.
const SEGMENT_CLASS: &str = r##"[a-zA-Z0-9 <>&"'éñüß中😀._:=+#?%{}\[\]\\-]"##;

fn from_class(class: &str, min: usize, max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("{class}{{{min},{max}}}"))
        .expect("the character classes are valid regular expressions")
        .boxed()
}

/// A required text field: never empty.
fn text() -> BoxedStrategy<String> {
    from_class(TEXT_CLASS, 1, 16)
}

/// Any text, the empty string included.
fn any_text() -> BoxedStrategy<String> {
    from_class(TEXT_CLASS, 0, 16)
}

/// An optional text field; when present it may be empty.
fn opt_text() -> BoxedStrategy<Option<String>> {
    option::of(any_text()).boxed()
}

/// A non-empty path segment: no `/`, since the path parsers split on it.
fn segment() -> BoxedStrategy<String> {
    from_class(SEGMENT_CLASS, 1, 12)
}

/// An XML element name.
fn xml_name() -> BoxedStrategy<String> {
    from_class("[a-z_][a-z0-9_]", 0, 7)
}

/// Any `i64`, with extra weight on small values, on values beyond 32 bits in both signs, and on
/// the two ends of the range.
fn amount() -> BoxedStrategy<i64> {
    prop_oneof![
        any::<i64>(),
        -100_000i64..100_000,
        (1i64 << 32)..(1i64 << 48),
        -(1i64 << 48)..-(1i64 << 32),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(1i64 << 32),
    ]
    .boxed()
}

/// A strictly positive `i64`, for amounts that must be above zero.
fn positive_amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        1i64..=i64::MAX,
        1i64..100_000,
        (1i64 << 32)..(1i64 << 48),
        Just(i64::MAX),
    ]
}

fn opt_amount() -> BoxedStrategy<Option<i64>> {
    option::of(amount()).boxed()
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Json), Just(Format::Xml)]
}

fn version() -> impl Strategy<Value = ApiVersion> {
    prop_oneof![Just(ApiVersion::V1), Just(ApiVersion::V2)]
}

// ---------------------------------------------------------------------------------------------
// Generators of IAK prepaid messages.
// ---------------------------------------------------------------------------------------------

fn prepaid_status() -> impl Strategy<Value = PrepaidStatus> {
    prop_oneof![
        Just(PrepaidStatus::Process),
        Just(PrepaidStatus::Success),
        Just(PrepaidStatus::Failed),
    ]
}

prop_compose! {
    fn prepaid_callback()(
        ref_id in text(),
        status in prepaid_status(),
        product_code in text(),
        customer_id in text(),
        price in amount(),
        message in text(),
        sn in opt_text(),
        pin in opt_text(),
        activation_code in opt_text(),
        balance in amount(),
        tr_id in amount(),
        rc in text(),
        sign in text(),
    ) -> PrepaidCallback {
        PrepaidCallback {
            ref_id,
            status,
            product_code,
            customer_id,
            price,
            message,
            sn,
            pin,
            activation_code,
            balance,
            tr_id,
            rc,
            sign,
        }
    }
}

prop_compose! {
    fn prepaid_result()(
        ref_id in opt_text(),
        status in option::of(prepaid_status()),
        product_code in opt_text(),
        customer_id in opt_text(),
        price in opt_amount(),
        message in opt_text(),
        (sn, pin, activation_code) in (opt_text(), opt_text(), opt_text()),
        balance in opt_amount(),
        tr_id in opt_amount(),
        (meter_no, subscriber_id, name, segment_power) in (opt_text(), opt_text(), opt_text(), opt_text()),
        rc in text(),
    ) -> PrepaidResult {
        PrepaidResult {
            ref_id,
            status,
            product_code,
            customer_id,
            price,
            message,
            sn,
            pin,
            activation_code,
            balance,
            tr_id,
            meter_no,
            subscriber_id,
            name,
            segment_power,
            rc,
        }
    }
}

prop_compose! {
    /// A balance answer; the parser refuses one with neither `balance` nor `rc`, so at least one
    /// of the two is present.
    fn balance_result()(
        balance in opt_amount(),
        currency in opt_text(),
        message in opt_text(),
        rc in opt_text(),
        fallback_rc in text(),
    ) -> BalanceResult {
        let rc = if balance.is_none() && rc.is_none() { Some(fallback_rc) } else { rc };
        BalanceResult { balance, currency, message, rc }
    }
}

prop_compose! {
    fn price_item()(
        product_code in text(),
        product_description in opt_text(),
        product_nominal in opt_text(),
        product_details in opt_text(),
        product_price in amount(),
        product_type in opt_text(),
        active_period in opt_text(),
        status in opt_text(),
        icon_url in opt_text(),
        product_category in opt_text(),
    ) -> PriceItem {
        PriceItem {
            product_code,
            product_description,
            product_nominal,
            product_details,
            product_price,
            product_type,
            active_period,
            status,
            icon_url,
            product_category,
        }
    }
}

prop_compose! {
    /// A price list in the naming of `version`. v1 answers carry only the list, so `rc` and
    /// `message` are `None` for v1.
    fn price_list_result(version: ApiVersion)(
        pricelist in vec(price_item(), 0..4),
        rc in opt_text(),
        message in opt_text(),
    ) -> PriceListResult {
        match version {
            ApiVersion::V1 => PriceListResult { pricelist, rc: None, message: None },
            ApiVersion::V2 => PriceListResult { pricelist, rc, message },
        }
    }
}

/// The path segments of a price-list request. The operator is a segment after the product type,
/// so an operator without a product type has no path that says so; it is generated only
/// together with a product type.
fn price_list_segments() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    prop_oneof![
        Just((None, None)),
        segment().prop_map(|t| (Some(t), None)),
        (segment(), segment()).prop_map(|(t, o)| (Some(t), Some(o))),
    ]
}

fn prepaid_command() -> impl Strategy<Value = PrepaidCommand> {
    prop_oneof![
        (text(), text(), text()).prop_map(|(ref_id, customer_id, product_code)| {
            PrepaidCommand::TopUp {
                ref_id,
                customer_id,
                product_code,
            }
        }),
        text().prop_map(|ref_id| PrepaidCommand::CheckStatus { ref_id }),
        opt_text().prop_map(|currency| PrepaidCommand::Balance { currency }),
        (price_list_segments(), opt_text()).prop_map(|((product_type, operator), status)| {
            PrepaidCommand::PriceList {
                product_type,
                operator,
                status,
            }
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Generators of IAK postpaid messages.
// ---------------------------------------------------------------------------------------------

fn postpaid_status() -> impl Strategy<Value = PostpaidStatus> {
    prop_oneof![
        Just(PostpaidStatus::NotReceived),
        Just(PostpaidStatus::Success),
        Just(PostpaidStatus::Failed),
        Just(PostpaidStatus::Processing),
    ]
}

fn postpaid_command() -> impl Strategy<Value = PostpaidCommand> {
    prop_oneof![
        (text(), text(), text(), opt_text(), opt_text(), opt_text()).prop_map(
            |(code, hp, ref_id, month, year, nomor_identitas)| PostpaidCommand::Inquiry {
                code,
                hp,
                ref_id,
                month,
                year,
                nomor_identitas,
            }
        ),
        amount().prop_map(|tr_id| PostpaidCommand::Payment { tr_id }),
        text().prop_map(|ref_id| PostpaidCommand::CheckStatus { ref_id }),
        (option::of(segment()), opt_text(), opt_text()).prop_map(
            |(product_type, status, province)| PostpaidCommand::PriceList {
                product_type,
                status,
                province,
            }
        ),
    ]
}

/// A JSON scalar: integers of both signs and beyond 64-bit signed, fractions with a short exact
/// decimal spelling (so that parsing gives back the same `f64` without serde_json's
/// `float_roundtrip` feature), strings, booleans and `null`.
fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        amount().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000i32..1_000_000, 0u32..4)
            .prop_map(|(n, k)| Value::from(f64::from(n) / f64::from(1u32 << k))),
        any_text().prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn json_object_of(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    vec((any_text(), values), 0..4).prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

/// Any small JSON value: scalars, objects, arrays, and arrays of objects, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    json_scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            json_object_of(inner.clone()),
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(json_object_of(inner), 0..3).prop_map(Value::Array),
        ]
    })
}

/// A postpaid `desc` for JSON: absent, `""`, or any small object.
fn json_desc() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::String(String::new()))),
        json_object_of(json_value()).prop_map(Some),
    ]
}

fn xml_object_of(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    vec((xml_name(), values), 1..4).prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

/// A postpaid `desc` for XML: absent, `""`, or a non-empty object without arrays whose leaves
/// are non-empty strings. XML text has no types and an empty element reads back as `""`, so
/// numbers, booleans, `null`, empty objects and arrays cannot come back as they went.
fn xml_desc() -> impl Strategy<Value = Option<Value>> {
    let value = text()
        .prop_map(Value::String)
        .prop_recursive(3, 16, 3, xml_object_of);
    prop_oneof![
        Just(None),
        Just(Some(Value::String(String::new()))),
        xml_object_of(value).prop_map(Some),
    ]
}

prop_compose! {
    fn postpaid_result(format: Format)(
        tr_id in opt_amount(),
        code in opt_text(),
        datetime in opt_text(),
        hp in opt_text(),
        tr_name in opt_text(),
        period in opt_text(),
        nominal in opt_amount(),
        admin in opt_amount(),
        status in option::of(postpaid_status()),
        response_code in text(),
        message in opt_text(),
        price in opt_amount(),
        selling_price in opt_amount(),
        balance in opt_amount(),
        noref in opt_text(),
        ref_id in opt_text(),
        desc in match format {
            Format::Json => json_desc().boxed(),
            Format::Xml => xml_desc().boxed(),
        },
    ) -> PostpaidResult {
        PostpaidResult {
            tr_id,
            code,
            datetime,
            hp,
            tr_name,
            period,
            nominal,
            admin,
            status,
            response_code,
            message,
            price,
            selling_price,
            balance,
            noref,
            ref_id,
            desc,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generators of MCPayment messages.
// ---------------------------------------------------------------------------------------------

/// Every name the status parser maps to a known status, aliases included.
const KNOWN_STATUS_NAMES: &[&str] = &[
    "ACTIVE",
    "PROCESSING",
    "PAID",
    "EXPIRED",
    "CANCELED",
    "CANCELLED",
    "REFUNDED",
    "REFUND",
    "VOID",
    "SUCCESS",
    "FAILED",
];

fn transaction_status() -> impl Strategy<Value = TransactionStatus> {
    prop_oneof![
        Just(TransactionStatus::Active),
        Just(TransactionStatus::Processing),
        Just(TransactionStatus::Paid),
        Just(TransactionStatus::Expired),
        Just(TransactionStatus::Canceled),
        Just(TransactionStatus::Refunded),
        Just(TransactionStatus::Void),
        Just(TransactionStatus::Success),
        Just(TransactionStatus::Failed),
        from_class("[A-Z][A-Z_]", 0, 11)
            .prop_filter("a known status name is not `Other`", |s| {
                !KNOWN_STATUS_NAMES.contains(&s.as_str())
            })
            .prop_map(TransactionStatus::Other),
    ]
}

fn payment_system() -> impl Strategy<Value = PaymentSystem> {
    prop_oneof![
        Just(PaymentSystem::Closed),
        Just(PaymentSystem::Open),
        Just(PaymentSystem::Partial),
    ]
}

prop_compose! {
    fn payment_details()(
        payment_system in option::of(payment_system()),
        billing_name in opt_text(),
        va_number in opt_text(),
        amount in opt_amount(),
        total_fee_amount in opt_amount(),
        total_promo_amount in opt_amount(),
        total_amount in opt_amount(),
        total_paid_amount in opt_amount(),
        is_multi_use in option::of(any::<bool>()),
        is_customer_paying_fee in option::of(any::<bool>()),
        expired_time in opt_text(),
        paid_time in opt_text(),
        transaction_description in opt_text(),
    ) -> PaymentDetails {
        PaymentDetails {
            payment_system,
            billing_name,
            va_number,
            amount,
            total_fee_amount,
            total_promo_amount,
            total_amount,
            total_paid_amount,
            is_multi_use,
            is_customer_paying_fee,
            expired_time,
            paid_time,
            transaction_description,
        }
    }
}

prop_compose! {
    fn customer_details()(
        phone in opt_text(),
        email in opt_text(),
        full_name in opt_text(),
    ) -> CustomerDetails {
        CustomerDetails { phone, email, full_name }
    }
}

prop_compose! {
    fn item_detail()(
        item_id in opt_text(),
        name in opt_text(),
        amount in opt_amount(),
        qty in opt_amount(),
        description in opt_text(),
    ) -> ItemDetail {
        ItemDetail { item_id, name, amount, qty, description }
    }
}

prop_compose! {
    fn address()(
        phone in opt_text(),
        address in opt_text(),
        city in opt_text(),
        postal_code in opt_text(),
        country in opt_text(),
        full_name in opt_text(),
    ) -> Address {
        Address { phone, address, city, postal_code, country, full_name }
    }
}

prop_compose! {
    fn payment_record()(
        paid_amount in opt_amount(),
        paid_time in opt_text(),
        reference_id in opt_text(),
    ) -> PaymentRecord {
        PaymentRecord { paid_amount, paid_time, reference_id }
    }
}

prop_compose! {
    fn refund_record()(
        refund_time in opt_text(),
        refund_amount in opt_amount(),
    ) -> RefundRecord {
        RefundRecord { refund_time, refund_amount }
    }
}

prop_compose! {
    fn va_transaction()(
        response_code in opt_text(),
        transaction_id in text(),
        external_id in text(),
        order_id in text(),
        reference_id in opt_text(),
        currency in opt_text(),
        payment_method in opt_text(),
        payment_channel in opt_text(),
        payment_system in option::of(payment_system()),
        transaction_status in transaction_status(),
        transaction_time in opt_text(),
        payment_details in option::of(payment_details()),
        customer_details in option::of(customer_details()),
        item_details in option::of(vec(item_detail(), 0..3)),
        billing_address in option::of(address()),
        shipping_address in option::of(address()),
        issuer in opt_text(),
        additional_data in opt_text(),
        callback_url in opt_text(),
        refund_history in option::of(vec(refund_record(), 0..3)),
        payment_history in option::of(vec(payment_record(), 0..3)),
        transaction_type in opt_text(),
    ) -> VaTransaction {
        VaTransaction {
            response_code,
            transaction_id,
            external_id,
            order_id,
            reference_id,
            currency,
            payment_method,
            payment_channel,
            payment_system,
            transaction_status,
            transaction_time,
            payment_details,
            customer_details,
            item_details,
            billing_address,
            shipping_address,
            issuer,
            additional_data,
            callback_url,
            refund_history,
            payment_history,
            transaction_type,
        }
    }
}

prop_compose! {
    /// A create-VA request that the parser's checks accept: a non-empty billing name, a
    /// transaction description, and a positive amount unless the VA is OPEN (an OPEN VA takes
    /// any amount, so its `amount` may be absent, zero or negative).
    fn create_va_request()(
        external_id in text(),
        order_id in text(),
        currency in text(),
        payment_method in text(),
        payment_channel in text(),
        details in payment_details(),
        billing_name in text(),
        transaction_description in any_text(),
        positive in positive_amount(),
        customer_details in customer_details(),
        item_details in option::of(vec(item_detail(), 0..3)),
        billing_address in option::of(address()),
        callback_url in opt_text(),
    ) -> CreateVaRequest {
        let amount = match details.payment_system {
            Some(PaymentSystem::Open) => details.amount,
            _ => Some(positive),
        };
        let payment_details = PaymentDetails {
            billing_name: Some(billing_name),
            transaction_description: Some(transaction_description),
            amount,
            ..details
        };
        CreateVaRequest {
            external_id,
            order_id,
            currency,
            payment_method,
            payment_channel,
            payment_details,
            customer_details,
            item_details,
            billing_address,
            callback_url,
            shipping_address: None,
            additional_data: None,
        }
    }
}

prop_compose! {
    fn va_lookup_request()(
        external_id in text(),
        order_id in text(),
        transaction_id in text(),
        payment_method in text(),
        payment_channel in text(),
    ) -> VaLookupRequest {
        VaLookupRequest { external_id, order_id, transaction_id, payment_method, payment_channel }
    }
}

prop_compose! {
    fn mcp_response()(
        response_code in text(),
        response_message in opt_text(),
        data in option::of(va_transaction()),
        error in opt_text(),
    ) -> McpResponse {
        McpResponse { response_code, response_message, data, error }
    }
}

// ---------------------------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_prepaid_callback_parses_back_to_itself_in_every_format_and_version(
        callback in prepaid_callback(),
        format in format(),
        version in version(),
    ) {
        let wire = callback.encode(format, version);
        let decoded = PrepaidCallback::parse(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded.format, format);
        prop_assert_eq!(decoded.version, version);
        prop_assert_eq!(decoded.message, callback);
    }

    #[test]
    fn a_prepaid_result_parses_back_to_itself_in_every_format_and_version(
        result in prepaid_result(),
        format in format(),
        version in version(),
    ) {
        let wire = result.encode(format, version);
        let decoded = PrepaidResult::parse(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded.format, format);
        // Only the product code and the customer id have names that differ between versions;
        // an answer with neither (a refusal) says nothing about its version and reads as v2.
        let expected_version = if result.product_code.is_some() || result.customer_id.is_some() {
            version
        } else {
            ApiVersion::V2
        };
        prop_assert_eq!(decoded.version, expected_version);
        prop_assert_eq!(decoded.message, result);
    }

    #[test]
    fn a_balance_result_parses_back_to_itself_in_both_formats(
        result in balance_result(),
        format in format(),
    ) {
        // A balance answer has the same field names in v1 and v2, so its encoder takes no
        // version and its parser always reports v2.
        let wire = result.encode(format);
        let decoded = BalanceResult::parse(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded.format, format);
        prop_assert_eq!(decoded.version, ApiVersion::V2);
        prop_assert_eq!(decoded.message, result);
    }

    #[test]
    fn a_price_list_parses_back_to_itself_in_every_format_and_version(
        (version, result) in version().prop_flat_map(|v| (Just(v), price_list_result(v))),
        format in format(),
    ) {
        let wire = result.encode(format, version);
        let decoded = PriceListResult::parse(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded.format, format);
        // The version is read from the items' field names, so an empty list reads as v2.
        let expected_version = if result.pricelist.is_empty() { ApiVersion::V2 } else { version };
        prop_assert_eq!(decoded.version, expected_version);
        prop_assert_eq!(decoded.message, result);
    }

    #[test]
    fn a_prepaid_request_parses_back_to_itself_at_its_own_path_for_every_command(
        username in text(),
        key in text(),
        command in prepaid_command(),
        format in format(),
        version in version(),
    ) {
        let request = PrepaidRequest::new(&username, &Secret::new(key), command);
        let path = request.path(version);
        let wire = request.encode(format, version);
        let decoded = PrepaidRequest::parse(&path, wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{path}\n{wire}")))?;
        prop_assert_eq!(decoded.format, format);
        prop_assert_eq!(decoded.version, version);
        prop_assert_eq!(decoded.message, request);
    }

    #[test]
    fn a_prepaid_request_sign_verifies_with_its_key_and_not_with_another(
        username in text(),
        key in text(),
        other_key in text(),
        command in prepaid_command(),
    ) {
        prop_assume!(key != other_key);
        let request = PrepaidRequest::new(&username, &Secret::new(key.clone()), command);
        prop_assert!(request.verify(&Secret::new(key)));
        prop_assert!(!request.verify(&Secret::new(other_key)));
    }

    #[test]
    fn a_postpaid_request_parses_back_to_itself_at_its_own_path_for_every_command(
        username in text(),
        key in text(),
        command in postpaid_command(),
        format in format(),
    ) {
        let request = PostpaidRequest::new(&username, &Secret::new(key), command);
        let path = request.path();
        let wire = request.encode(format);
        let decoded = PostpaidRequest::parse(&path, wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{path}\n{wire}")))?;
        prop_assert_eq!(decoded.format, format);
        // Postpaid has a single naming, which the parser reports as v1.
        prop_assert_eq!(decoded.version, ApiVersion::V1);
        prop_assert_eq!(decoded.message, request);
    }

    #[test]
    fn a_postpaid_result_parses_back_to_itself_in_both_formats(
        (format, result) in format().prop_flat_map(|f| (Just(f), postpaid_result(f))),
    ) {
        let wire = result.encode(format);
        let decoded = PostpaidResult::parse(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded.format, format);
        prop_assert_eq!(decoded.version, ApiVersion::V1);
        prop_assert_eq!(decoded.message, result);
    }

    #[test]
    fn a_va_transaction_parses_back_to_itself_as_a_callback(tx in va_transaction()) {
        let wire = tx.encode();
        let decoded = VaTransaction::parse_callback(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded, tx);
    }

    #[test]
    fn a_valid_create_va_request_parses_back_to_itself(request in create_va_request()) {
        let wire = request.encode();
        let decoded = CreateVaRequest::parse(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded, request);
    }

    #[test]
    fn a_va_lookup_request_parses_back_to_itself(request in va_lookup_request()) {
        let wire = request.encode();
        let decoded = VaLookupRequest::parse(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded, request);
    }

    #[test]
    fn an_mcpayment_response_parses_back_to_itself(response in mcp_response()) {
        let wire = response.encode();
        let decoded = McpResponse::parse(wire.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{wire}")))?;
        prop_assert_eq!(decoded, response);
    }
}

// The generators above promise some shapes that the properties rely on; these checks keep the
// promises honest.

#[test]
fn the_text_generators_cover_the_characters_that_need_escaping() {
    for c in ['<', '>', '&', '"', '\'', '\\', 'é', 'ñ', ' '] {
        assert!(TEXT_CLASS.contains(c), "{c:?}");
        assert!(SEGMENT_CLASS.contains(c), "{c:?}");
    }
    assert!(!SEGMENT_CLASS.contains('/'));
}

#[test]
fn an_empty_optional_string_survives_xml() {
    let result = PrepaidResult {
        message: Some(String::new()),
        rc: "00".into(),
        ..Default::default()
    };
    let wire = result.encode(Format::Xml, ApiVersion::V2);
    assert_eq!(
        PrepaidResult::parse(wire.as_bytes()).unwrap().message,
        result
    );
}

#[test]
fn every_known_status_name_is_excluded_from_other() {
    for name in KNOWN_STATUS_NAMES {
        assert!(!matches!(
            TransactionStatus::from((*name).to_owned()),
            TransactionStatus::Other(_)
        ));
    }
}

#[test]
fn a_json_desc_object_keeps_its_types_through_json() {
    let mut desc = Map::new();
    desc.insert("n".into(), Value::from(u64::MAX));
    desc.insert("f".into(), Value::from(0.125));
    desc.insert(
        "list".into(),
        serde_json::json!([{"a": 1}, {"b": [true, null]}]),
    );
    let result = PostpaidResult {
        response_code: "00".into(),
        desc: Some(Value::Object(desc)),
        ..Default::default()
    };
    let wire = result.encode(Format::Json);
    assert_eq!(
        PostpaidResult::parse(wire.as_bytes()).unwrap().message,
        result
    );
}
