//! Every signature the providers use, and constant-time verification.
//!
//! - IAK and IDSL: `md5(username + api_key + X)`, lowercase hex, where X depends on the call
//!   ([`IakSignInput`]). The same formula signs callbacks (X = `ref_id`).
//! - MCPayment: requests carry `x-req-signature = sha256(hash_key + external_id + order_id)` and
//!   `Authorization: Basic base64(merchant_id:secret_unbound_id)`; callbacks carry
//!   `mcp-signature = sha256(transaction_id + x-req-signature [+ sub_merchant_id])`, all lowercase
//!   hex of the concatenated strings.
//!
//! Received signatures are compared with [`hex_digest_eq`]: case-insensitively and in time that
//! does not depend on where the first differing byte is.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// What follows `username + api_key` in an IAK/IDSL `sign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IakSignInput<'a> {
    /// Top-up, check-status, callbacks and postpaid inquiry: the merchant's `ref_id`.
    RefId(&'a str),
    /// Prepaid balance: the literal `bl`.
    Balance,
    /// Prepaid and postpaid price list: the literal `pl`.
    PriceList,
    /// Postpaid check-status: the literal `cs`.
    CheckStatus,
    /// Prepaid check-operator: the literal `op`.
    CheckOperator,
    /// Postpaid payment: the inquiry's `tr_id` in decimal.
    TrId(i64),
    /// Inquiries signed with another field (PLN `customer_id`/`hp`, game `game_code`, OVO
    /// `customer_id`).
    Field(&'a str),
}

impl IakSignInput<'_> {
    /// The suffix text that is hashed after `username + api_key`.
    pub fn suffix(&self) -> std::borrow::Cow<'_, str> {
        match self {
            IakSignInput::RefId(s) | IakSignInput::Field(s) => (*s).into(),
            IakSignInput::Balance => "bl".into(),
            IakSignInput::PriceList => "pl".into(),
            IakSignInput::CheckStatus => "cs".into(),
            IakSignInput::CheckOperator => "op".into(),
            IakSignInput::TrId(id) => id.to_string().into(),
        }
    }
}

/// `md5(username + api_key + suffix)` as lowercase hex.
pub fn iak_sign(username: &str, api_key: &Secret, input: IakSignInput<'_>) -> String {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(api_key.expose().as_bytes());
    h.update(input.suffix().as_bytes());
    hex::encode(h.finalize())
}

/// Whether `given` is the IAK sign of `input`, compared in constant time, case-insensitively.
pub fn iak_verify(username: &str, api_key: &Secret, input: IakSignInput<'_>, given: &str) -> bool {
    hex_digest_eq(&iak_sign(username, api_key, input), given)
}

/// MCPayment's `x-req-signature`: `sha256(hash_key + external_id + order_id)`, lowercase hex.
pub fn mcp_request_signature(hash_key: &Secret, external_id: &str, order_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(hash_key.expose().as_bytes());
    h.update(external_id.as_bytes());
    h.update(order_id.as_bytes());
    hex::encode(h.finalize())
}

/// MCPayment's callback `mcp-signature`:
/// `sha256(transaction_id + x_req_signature + sub_merchant_id)`, the last part empty for a
/// merchant without sub-merchants.
pub fn mcp_callback_signature(
    hash_key: &Secret,
    transaction_id: &str,
    external_id: &str,
    order_id: &str,
    sub_merchant_id: Option<&str>,
) -> String {
    let req = mcp_request_signature(hash_key, external_id, order_id);
    let mut h = Sha256::new();
    h.update(transaction_id.as_bytes());
    h.update(req.as_bytes());
    if let Some(sub) = sub_merchant_id {
        h.update(sub.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Whether `given` is the `mcp-signature` for this transaction, in constant time.
pub fn mcp_callback_verify(
    hash_key: &Secret,
    transaction_id: &str,
    external_id: &str,
    order_id: &str,
    sub_merchant_id: Option<&str>,
    given: &str,
) -> bool {
    let expected = mcp_callback_signature(
        hash_key,
        transaction_id,
        external_id,
        order_id,
        sub_merchant_id,
    );
    hex_digest_eq(&expected, given)
}

/// MCPayment's `Authorization` header value: `Basic base64(merchant_id:secret_unbound_id)`.
pub fn mcp_basic_auth(merchant_id: &str, secret_unbound_id: &Secret) -> String {
    let raw = format!("{merchant_id}:{}", secret_unbound_id.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Compares an expected lowercase hex digest with a received one: ASCII case is ignored and
/// surrounding white space trimmed; the comparison of equal-length values takes the same time
/// wherever they differ. A length mismatch returns early, which reveals only the length of a
/// digest, a public fact.
pub fn hex_digest_eq(expected_lower: &str, given: &str) -> bool {
    let given = given.trim().as_bytes();
    let expected = expected_lower.as_bytes();
    if given.len() != expected.len() {
        return false;
    }
    let folded: Vec<u8> = given.iter().map(u8::to_ascii_lowercase).collect();
    folded.ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_ignores_case_and_rejects_near_misses() {
        let d = "b51553c9ece19d0acb34c12439fee339";
        assert!(hex_digest_eq(d, d));
        assert!(hex_digest_eq(d, &d.to_uppercase()));
        assert!(hex_digest_eq(d, &format!(" {d}\n")));
        assert!(!hex_digest_eq(d, "b51553c9ece19d0acb34c12439fee338"));
        assert!(!hex_digest_eq(d, &d[..31]));
        assert!(!hex_digest_eq(d, ""));
    }
}
