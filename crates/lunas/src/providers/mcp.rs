//! MCPayment (iFortepay) PG3 virtual-account callbacks: JSON, signed by the `mcp-signature`
//! header over the ids in the body.

use axum::http::HeaderMap;
use lunas_core::{Detail, Fact, VaPayment};
use lunas_protocol::mcp::{VaTransaction, HEADER_SIGNATURE};
use lunas_protocol::state::va_state;
use lunas_protocol::{ack, TxKind};

use super::{Refusal, Verified};
use crate::config::{Credentials, ProviderConfig};

pub fn verify_callback(
    provider: &ProviderConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, Refusal> {
    let Credentials::Mcp(credentials) = &provider.credentials else {
        unreachable!("an MCP provider always has MCP credentials")
    };
    let tx = VaTransaction::parse_callback(body).map_err(|e| Refusal::malformed(&e))?;
    let Some(signature) = headers.get(HEADER_SIGNATURE).and_then(|v| v.to_str().ok()) else {
        return Err(Refusal::bad_signature(
            tx.external_id,
            "the mcp-signature header is missing",
        ));
    };
    if !credentials.verify_callback(&tx, signature) {
        return Err(Refusal::bad_signature(
            tx.external_id,
            "mcp-signature is not sha256(transaction_id + x-req-signature) for this merchant",
        ));
    }
    Ok(Verified::new(fact_of(&tx), ack::mcp(), "json"))
}

/// What a VA message states, provider-neutral. Payments are keyed by their `reference_id`; a
/// message with no `payment_history` but a paid status counts its top-level reference as one
/// payment (seed 002's first example has that shape).
pub fn fact_of(tx: &VaTransaction) -> Fact {
    let details = tx.payment_details.as_ref();
    let mut payments: Vec<VaPayment> = tx
        .payment_history
        .iter()
        .flatten()
        .filter_map(|p| {
            let amount = p.paid_amount?;
            let key = p
                .reference_id
                .clone()
                .or_else(|| p.paid_time.as_ref().map(|t| format!("{t}/{amount}")))?;
            Some(VaPayment {
                reference_id: key,
                amount,
                paid_time: p.paid_time.clone(),
            })
        })
        .collect();
    let state = va_state(tx);
    if payments.is_empty()
        && matches!(
            state,
            Some(lunas_protocol::State::Paid | lunas_protocol::State::PartiallyPaid)
        )
    {
        if let (Some(reference), Some(amount)) = (&tx.reference_id, details.and_then(|d| d.amount))
        {
            payments.push(VaPayment {
                reference_id: reference.clone(),
                amount,
                paid_time: details.and_then(|d| d.paid_time.clone()),
            });
        }
    }
    Fact {
        kind: TxKind::Va,
        reference: tx.external_id.clone(),
        state,
        detail: Detail {
            amount: tx.total_amount(),
            product_code: tx.payment_channel.clone(),
            customer_id: details.and_then(|d| d.va_number.clone()),
            provider_transaction_id: Some(tx.transaction_id.clone()),
            order_id: Some(tx.order_id.clone()),
            response_code: tx.response_code.clone(),
            message: Some(tx.transaction_status.as_str().to_owned()),
            serial_number: None,
            pin: None,
            activation_code: None,
            balance_after: None,
            total_paid: details.and_then(|d| d.total_paid_amount),
        },
        payments,
    }
}
