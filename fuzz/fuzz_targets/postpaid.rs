//! IAK postpaid answers (inquiry, payment, check-status) and requests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunas_protocol::iak::postpaid::{PostpaidRequest, PostpaidResult};
use lunas_protocol::Format;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = PostpaidResult::parse(data) {
        let _ = d.message.verdict();
        if d.format == Format::Json {
            let again = d.message.encode(Format::Json);
            let back = PostpaidResult::parse(again.as_bytes()).expect("an encoded answer parses");
            assert_eq!(back.message, d.message);
        }
    }
    let _ = PostpaidRequest::parse("/api/v1/bill/check", data);
});
