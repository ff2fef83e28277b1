//! MCPayment (iFortepay) PG3 virtual-account callbacks: JSON, signed by the `mcp-signature`
//! header over the ids in the body.

use axum::http::HeaderMap;
use lunas_core::{Basis, Detail, Fact, VaPayment, VaRefund};
use lunas_protocol::mcp::{TransactionStatus, VaTransaction, HEADER_SIGNATURE};
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
    super::check_ref("external_id", &tx.external_id)?;
    super::check_ref("transaction_id", &tx.transaction_id)?;
    if let TransactionStatus::Other(value) = &tx.transaction_status {
        // The protocol layer keeps unknown values; a callback must state an outcome lunas knows.
        return Err(Refusal::malformed(
            &lunas_protocol::ProtocolError::UnknownValue {
                field: "transaction_status".into(),
                value: value.clone(),
            },
        ));
    }
    if let Some(d) = &tx.payment_details {
        for (field, value) in [
            ("payment_details.amount", d.amount),
            ("payment_details.total_amount", d.total_amount),
            ("payment_details.total_paid_amount", d.total_paid_amount),
        ] {
            super::check_amount(field, value)?;
        }
    }
    for p in tx.payment_history.iter().flatten() {
        super::check_amount("payment_history.paid_amount", p.paid_amount)?;
    }
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
    let refunds = tx
        .refund_history
        .iter()
        .flatten()
        .filter_map(|r| {
            Some(VaRefund {
                amount: r.refund_amount?,
                refund_time: r.refund_time.clone(),
            })
        })
        .collect();
    // Money in another currency is not rupiah: lunas cannot count it.
    let basis = match tx.currency.as_deref().map(str::trim) {
        Some(c) if !c.eq_ignore_ascii_case("IDR") => {
            Basis::Contradictory(format!("currency {c} is not IDR"))
        }
        _ => Basis::Reported,
    };
    let expires_at = details
        .and_then(|d| d.expired_time.as_deref())
        .and_then(|t| {
            time::OffsetDateTime::parse(t.trim(), &time::format_description::well_known::Rfc3339)
                .ok()
        });
    Fact {
        kind: TxKind::Va,
        reference: tx.external_id.clone(),
        state,
        refunds,
        basis,
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
            multi_use: details.and_then(|d| d.is_multi_use),
            payment_system: tx.payment_system().map(|p| p.as_str().to_owned()),
            expires_at,
        },
        payments,
    }
}

/// MCPayment `POST /va/inquiry` with the merchant's headers.
pub async fn check_status(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    tx: &lunas_core::TxRecord,
) -> super::Checked {
    use lunas_protocol::mcp::{McpResponse, VaLookupRequest, PATH_INQUIRY};

    use super::{CheckOutcome, Checked};

    let Credentials::Mcp(credentials) = &provider.credentials else {
        unreachable!("an MCP provider always has MCP credentials")
    };
    let not_asked = |why: String| Checked {
        outcome: CheckOutcome::Failed(why.clone()),
        response: Vec::new(),
        content_type: None,
        summary: format!("not asked: {why}"),
    };
    let Some(base) = &provider.base_url else {
        return not_asked(format!("no base_url is configured for {:?}", provider.id));
    };
    let (Some(transaction_id), Some(order_id)) = (&tx.provider_transaction_id, &tx.order_id) else {
        return not_asked(
            "the transaction has no MCPayment transaction_id or order_id to ask with".into(),
        );
    };
    let request = VaLookupRequest {
        external_id: tx.reference.clone(),
        order_id: order_id.clone(),
        transaction_id: transaction_id.clone(),
        payment_method: "BANK_TRANSFER".into(),
        payment_channel: tx.product_code.clone().unwrap_or_default(),
    };
    let url = super::join(base, PATH_INQUIRY);
    let mut builder = client
        .post(&url)
        .header("content-type", "application/json")
        .body(request.encode());
    for (name, value) in credentials.request_headers(&tx.reference, order_id) {
        builder = builder.header(name, value);
    }
    let asked = format!("POST {url}");
    let (status, content_type, bytes) = match super::post(builder, &asked).await {
        Ok(a) => a,
        Err(e) => {
            return Checked {
                outcome: CheckOutcome::Failed(e.clone()),
                response: Vec::new(),
                content_type: None,
                summary: e,
            }
        }
    };
    let keep = bytes[..bytes.len().min(super::CHECK_BODY_CAP)].to_vec();
    let done = |outcome: CheckOutcome, note: String| Checked {
        outcome,
        response: keep.clone(),
        content_type: content_type.clone(),
        summary: format!("{asked} → HTTP {status}: {note}"),
    };
    let parsed = McpResponse::parse(&bytes);
    match (status, parsed) {
        (200, Ok(res)) if res.is_success() => match res.data {
            Some(data) if data.external_id == tx.reference => {
                let note = format!("transaction_status {}", data.transaction_status.as_str());
                done(CheckOutcome::Answered(fact_of(&data)), note)
            }
            Some(data) => done(
                CheckOutcome::Failed(format!(
                    "the answer is about {:?}, not {:?}",
                    data.external_id, tx.reference
                )),
                "wrong transaction".into(),
            ),
            None => done(
                CheckOutcome::Failed("a success without data".into()),
                "no data".into(),
            ),
        },
        (_, Ok(res)) if res.response_code.trim() == "02" => {
            done(CheckOutcome::NotFound, "data not found".into())
        }
        (_, Ok(res)) => done(
            CheckOutcome::Failed(format!(
                "response_code {} {}",
                res.response_code,
                res.response_message.unwrap_or_default()
            )),
            "no outcome".into(),
        ),
        (_, Err(e)) => done(
            CheckOutcome::Failed(format!("unreadable answer: {e}")),
            e.to_string(),
        ),
    }
}
