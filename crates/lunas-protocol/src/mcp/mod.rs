//! MCPayment (iFortepay) PG3 virtual accounts: create, inquiry, cancel, and the payment callback
//! (seed 002, protocols.md §4).
//!
//! Requests carry `Authorization: Basic base64(merchant_id:secret_unbound_id)`,
//! `x-req-signature: sha256(hash_key + external_id + order_id)` and `x-version: v3`; callbacks
//! carry `mcp-signature: sha256(transaction_id + x-req-signature [+ sub_merchant_id])`. Neither
//! signature covers an amount or a status.

mod va;

pub use va::*;

use crate::secret::Secret;
use crate::sign;

/// Header names, lowercase as HTTP/2 and most servers normalise them.
pub const HEADER_SIGNATURE: &str = "mcp-signature";
pub const HEADER_REQUEST_SIGNATURE: &str = "x-req-signature";
pub const HEADER_VERSION: &str = "x-version";
pub const HEADER_SUB_MERCHANT: &str = "sub-merchant-id";
/// The `x-version` value the documents give (the merchant-info version, not the PG version).
pub const VERSION: &str = "v3";

/// Paths relative to the MCPayment base URL.
pub const PATH_CREATE: &str = "/va";
pub const PATH_INQUIRY: &str = "/va/inquiry";
pub const PATH_CANCEL: &str = "/va/cancel";

/// An MCPayment merchant's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub merchant_id: String,
    pub secret_unbound_id: Secret,
    pub hash_key: Secret,
    /// Set only for a sub-merchant; then `hash_key` is the sub-merchant's.
    pub sub_merchant_id: Option<String>,
}

impl Credentials {
    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        sign::mcp_basic_auth(&self.merchant_id, &self.secret_unbound_id)
    }

    /// The `x-req-signature` header value for a request about `external_id`/`order_id`.
    pub fn request_signature(&self, external_id: &str, order_id: &str) -> String {
        sign::mcp_request_signature(&self.hash_key, external_id, order_id)
    }

    /// Every header a request about `external_id`/`order_id` needs, besides `Content-Type`.
    pub fn request_headers(
        &self,
        external_id: &str,
        order_id: &str,
    ) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("authorization", self.authorization()),
            (
                HEADER_REQUEST_SIGNATURE,
                self.request_signature(external_id, order_id),
            ),
            (HEADER_VERSION, VERSION.to_owned()),
        ];
        if let Some(sub) = &self.sub_merchant_id {
            headers.push((HEADER_SUB_MERCHANT, sub.clone()));
        }
        headers
    }

    /// Whether an `Authorization` header is this merchant's. The scheme is matched
    /// case-insensitively (as HTTP says), the credentials in constant time.
    pub fn verify_authorization(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.authorization();
        let expected_token = expected.strip_prefix("Basic ").unwrap_or(&expected);
        let Some((scheme, token)) = given.trim().split_once(' ') else {
            return false;
        };
        let token = token.trim().as_bytes();
        scheme.eq_ignore_ascii_case("basic")
            && token.len() == expected_token.len()
            && bool::from(token.ct_eq(expected_token.as_bytes()))
    }

    /// Whether an `x-req-signature` is right for `external_id`/`order_id`.
    pub fn verify_request_signature(&self, external_id: &str, order_id: &str, given: &str) -> bool {
        sign::hex_digest_eq(&self.request_signature(external_id, order_id), given)
    }

    /// The `mcp-signature` a callback for this transaction carries.
    pub fn callback_signature(
        &self,
        transaction_id: &str,
        external_id: &str,
        order_id: &str,
    ) -> String {
        sign::mcp_callback_signature(
            &self.hash_key,
            transaction_id,
            external_id,
            order_id,
            self.sub_merchant_id.as_deref(),
        )
    }

    /// Whether a callback's `mcp-signature` header is right for the ids in its body.
    pub fn verify_callback(&self, tx: &VaTransaction, given: &str) -> bool {
        let expected = self.callback_signature(&tx.transaction_id, &tx.external_id, &tx.order_id);
        sign::hex_digest_eq(&expected, given)
    }
}

/// One row of MCPayment's PG3 `response_code` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseCode {
    pub code: &'static str,
    pub message: &'static str,
}

/// PG3 response codes (protocols.md §4.8).
pub const RESPONSE_CODES: &[ResponseCode] = &[
    ResponseCode {
        code: "00",
        message: "Success",
    },
    ResponseCode {
        code: "01",
        message: "Request Parameter Error",
    },
    ResponseCode {
        code: "02",
        message: "Data Not Found",
    },
    ResponseCode {
        code: "03",
        message: "Failed Request",
    },
    ResponseCode {
        code: "04",
        message: "Unauthorized Merchant",
    },
    ResponseCode {
        code: "98",
        message: "System Error",
    },
    ResponseCode {
        code: "99",
        message: "Unknown Error",
    },
];

/// The message for a response code, if documented.
pub fn response_message(code: &str) -> Option<&'static str> {
    RESPONSE_CODES
        .iter()
        .find(|r| r.code == code.trim())
        .map(|r| r.message)
}
