//! IAK/IDSL prepaid callbacks, JSON and XML: parse never panics, and whatever parses
//! re-encodes to a body that parses to the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunas_protocol::iak::prepaid::PrepaidCallback;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = PrepaidCallback::parse(data) {
        let again = decoded.message.encode(decoded.format, decoded.version);
        let back = PrepaidCallback::parse(again.as_bytes()).expect("an encoded callback parses");
        assert_eq!(back.message, decoded.message);
    }
});
