//! MCPayment VA callbacks, answers and requests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunas_protocol::mcp::{CreateVaRequest, McpResponse, VaLookupRequest, VaTransaction};

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = VaTransaction::parse_callback(data) {
        let _ = lunas_protocol::state::va_state(&tx);
        let back = VaTransaction::parse_callback(tx.encode().as_bytes()).expect("an encoded callback parses");
        assert_eq!(back, tx);
    }
    let _ = McpResponse::parse(data);
    let _ = CreateVaRequest::parse(data);
    let _ = VaLookupRequest::parse(data);
});
