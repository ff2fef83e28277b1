//! The answer each provider expects from a callback receiver.
//!
//! MCPayment: HTTP 200 with `Content-Type: application/json` and `{"message":"SUCCESS"}`
//! (protocols.md §4.9); anything else makes it retry. IAK and IDSL do not document the body they
//! expect, only that the merchant answers; lunas answers 200 in the callback's own format with
//! the same `SUCCESS` message, which no IAK client can misread.

use crate::codec::Format;

/// An HTTP answer to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// The acknowledgement of an IAK/IDSL callback received in `format`.
pub fn iak(format: Format) -> Ack {
    let body = match format {
        Format::Json => r#"{"message":"SUCCESS"}"#.to_owned(),
        Format::Xml => format!(
            "{}\n<mp>\n<message>SUCCESS</message>\n</mp>",
            crate::xml::DECLARATION
        ),
    };
    Ack {
        status: 200,
        content_type: format.content_type(),
        body,
    }
}

/// The acknowledgement of an MCPayment callback.
pub fn mcp() -> Ack {
    Ack {
        status: 200,
        content_type: "application/json",
        body: r#"{"message":"SUCCESS"}"#.to_owned(),
    }
}

/// Whether a receiver's answer counts as acknowledged for MCPayment: HTTP 200. (Used by the
/// sandbox to decide on retries, as MCPayment does.)
pub fn mcp_accepts(status: u16) -> bool {
    status == 200
}
