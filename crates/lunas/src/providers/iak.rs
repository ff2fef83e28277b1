//! IAK and IDSL: prepaid callbacks (JSON `{"data":{..}}` or XML `<mp>`, v1 or v2 names), signed
//! `md5(username + api_key + ref_id)` inside the body.

use lunas_core::{Detail, Fact};
use lunas_protocol::iak::prepaid::PrepaidCallback;
use lunas_protocol::state::state_for_verdict;
use lunas_protocol::{ack, TxKind};

use super::{Refusal, Verified};
use crate::config::{Credentials, ProviderConfig};

pub fn verify_callback(provider: &ProviderConfig, body: &[u8]) -> Result<Verified, Refusal> {
    let Credentials::Iak { username, api_key } = &provider.credentials else {
        unreachable!("an IAK-family provider always has IAK credentials")
    };
    // The sign sits inside the body, so the body is parsed (by the pure, bounded parser) before
    // the sign can be checked; nothing acts on its content until the check passes.
    let decoded = PrepaidCallback::parse(body).map_err(|e| Refusal::malformed(&e))?;
    let cb = decoded.message;
    if !cb.verify(username, api_key) {
        return Err(Refusal::bad_signature(
            cb.ref_id,
            "sign is not md5(username + api_key + ref_id) for this account",
        ));
    }
    let fact = Fact {
        kind: TxKind::Prepaid,
        reference: cb.ref_id.clone(),
        state: state_for_verdict(cb.verdict()),
        detail: Detail {
            amount: Some(cb.price),
            product_code: Some(cb.product_code),
            customer_id: Some(cb.customer_id),
            provider_transaction_id: Some(cb.tr_id.to_string()),
            order_id: None,
            response_code: Some(cb.rc),
            message: Some(cb.message),
            serial_number: cb.sn,
            pin: cb.pin,
            activation_code: cb.activation_code,
            balance_after: Some(cb.balance),
            total_paid: None,
        },
        payments: Vec::new(),
    };
    Ok(Verified::new(
        fact,
        ack::iak(decoded.format),
        decoded.format.as_str(),
    ))
}
