//! IAK/IDSL prepaid answers and requests (the gateway reads answers, the sandbox requests).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunas_protocol::iak::prepaid::{BalanceResult, PrepaidRequest, PrepaidResult, PriceListResult};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = PrepaidResult::parse(data) {
        let again = d.message.encode(d.format, d.version);
        let back = PrepaidResult::parse(again.as_bytes()).expect("an encoded answer parses");
        assert_eq!(back.message, d.message);
    }
    let _ = BalanceResult::parse(data);
    let _ = PriceListResult::parse(data);
    for path in ["/api/top-up", "/api/check-status", "/api/pricelist/pulsa", "/v1/legacy/index"] {
        let _ = PrepaidRequest::parse(path, data);
    }
});
