//! MCPayment (iFortepay) PG3 virtual accounts: callbacks (JSON, signed by the `mcp-signature`
//! header over the ids in the body), `POST /va/inquiry` as the status API, and `POST /va` to
//! create a VA (an order).
//!
//! Configuration keys: `merchant_id`, `secret_unbound_id`, `hash_key`, `sub_merchant_id`,
//! `base_url` (default per environment).

use std::sync::Arc;

use axum::http::HeaderMap;
use lunas_core::{Basis, Detail, Fact, TxRecord, VaPayment, VaRefund};
use lunas_protocol::mcp::{
    self, CreateVaRequest, CustomerDetails, McpResponse, PaymentDetails, PaymentSystem,
    TransactionStatus, VaLookupRequest, VaTransaction, HEADER_SIGNATURE, PATH_CREATE, PATH_INQUIRY,
};
use lunas_protocol::state::va_state;
use lunas_protocol::{ack, State, TxKind};
use serde::Deserialize;

use super::{
    Builder, CheckOutcome, HttpAnswer, HttpRequest, OrderOutcome, OrderSpec, Provider, Refusal,
    Verified,
};
use crate::config::{lenient, parse_duration, Environment, ReconcileConfig};

/// An MCPayment merchant (or sub-merchant) account.
#[derive(Debug)]
pub struct Mcp {
    credentials: mcp::Credentials,
    base_url: Option<url::Url>,
}

/// The account's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    merchant_id: Option<String>,
    secret_unbound_id: Option<String>,
    hash_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    sub_merchant_id: Option<String>,
    base_url: Option<String>,
}

/// Builds an MCPayment account from its configuration section.
pub fn build(b: &mut Builder<'_>) -> Option<Arc<dyn Provider>> {
    let keys: Keys = b.parse(
        "mcp",
        &[
            "merchant_id",
            "secret_unbound_id",
            "hash_key",
            "sub_merchant_id",
            "base_url",
        ],
    )?;
    let before = b.errors.len();
    let merchant_id = b.required("merchant_id", "mcp", keys.merchant_id);
    let secret_unbound_id = b.required_secret("secret_unbound_id", "mcp", keys.secret_unbound_id);
    let hash_key = b.required_secret("hash_key", "mcp", keys.hash_key);
    let base_url = b.url("base_url", keys.base_url.as_deref());
    if b.errors.len() > before {
        return None;
    }
    // The documented hosts (protocols.md §4.1).
    let default = match b.environment {
        Environment::Production => "https://api.ifortepay.id",
        Environment::Development => "https://api-stage.ifortepay.id",
    };
    Some(Arc::new(Mcp {
        credentials: mcp::Credentials {
            merchant_id: merchant_id?,
            secret_unbound_id: secret_unbound_id?,
            hash_key: hash_key?,
            sub_merchant_id: keys.sub_merchant_id,
        },
        base_url: base_url.or_else(|| url::Url::parse(default).ok()),
    }))
}

impl Mcp {
    fn request(
        &self,
        path: &str,
        external_id: &str,
        order_id: &str,
        body: String,
    ) -> Result<HttpRequest, String> {
        let base = self
            .base_url
            .as_ref()
            .ok_or("no base_url is configured for this account")?;
        let mut request = HttpRequest::post_json(super::join(base, path), body);
        for (name, value) in self.credentials.request_headers(external_id, order_id) {
            request.headers.push((name.to_owned(), value));
        }
        Ok(request)
    }
}

impl Provider for Mcp {
    fn kind(&self) -> &'static str {
        "mcp"
    }

    fn kinds(&self) -> &'static [TxKind] {
        &[TxKind::Va]
    }

    fn default_reconcile(&self) -> ReconcileConfig {
        let d = |s: &str| parse_duration(s).expect("valid default");
        ReconcileConfig {
            first_check_after: d("5m"),
            backoff: ["5m", "15m", "1h", "6h"].iter().map(|s| d(s)).collect(),
            give_up_after: d("7d"),
            rate_per_minute: 60,
            timeout: d("30s"),
            not_found_grace: d("10m"),
            postpaid_grace: d("1h"),
        }
    }

    fn reports_balance(&self) -> bool {
        false
    }

    fn verify_callback(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, Refusal> {
        let (tx, repeated) =
            VaTransaction::parse_callback_noting(body).map_err(|e| Refusal::malformed(&e))?;
        super::check_ref("external_id", &tx.external_id)?;
        super::check_ref("transaction_id", &tx.transaction_id)?;
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
        if !self.credentials.verify_callback(&tx, signature) {
            return Err(Refusal::bad_signature(
                tx.external_id,
                "mcp-signature is not sha256(transaction_id + x-req-signature) for this merchant",
            ));
        }
        let mut fact = fact_of(&tx);
        if let TransactionStatus::Failed | TransactionStatus::Other(_) = &tx.transaction_status {
            // Signed, but with a status iFortepay does not document for a VA: kept, changes
            // nothing, and a person is asked to look.
            fact.state = None;
            fact.basis = Basis::Unrecognized(format!(
                "transaction_status {} is not a VA status lunas knows",
                super::shown_value(tx.transaction_status.as_str())
            ));
        }
        Ok(Verified::new(fact, ack::mcp(), "json").with_repeated_keys(&repeated))
    }

    fn status_request(&self, tx: &TxRecord) -> Result<HttpRequest, String> {
        let (Some(transaction_id), Some(order_id)) = (&tx.provider_transaction_id, &tx.order_id)
        else {
            return Err(
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
        self.request(PATH_INQUIRY, &tx.reference, order_id, request.encode())
    }

    fn read_status(&self, tx: &TxRecord, answer: &HttpAnswer) -> (CheckOutcome, String) {
        match (answer.status, McpResponse::parse(&answer.body)) {
            (200, Ok(res)) if res.is_success() => match res.data {
                Some(data) if data.external_id == tx.reference => {
                    let note = format!("transaction_status {}", data.transaction_status.as_str());
                    (CheckOutcome::Answered(fact_of(&data)), note)
                }
                Some(data) => (
                    CheckOutcome::Failed(format!(
                        "the answer is about {:?}, not {:?}",
                        data.external_id, tx.reference
                    )),
                    "wrong transaction".into(),
                ),
                None => (
                    CheckOutcome::Failed("a success without data".into()),
                    "no data".into(),
                ),
            },
            (_, Ok(res)) if res.response_code.trim() == "02" => {
                (CheckOutcome::NotFound, "data not found".into())
            }
            (_, Ok(res)) => (
                CheckOutcome::Failed(format!(
                    "response_code {} {}",
                    res.response_code,
                    res.response_message.unwrap_or_default()
                )),
                "no outcome".into(),
            ),
            (_, Err(e)) => (
                CheckOutcome::Failed(format!("unreadable answer: {e}")),
                e.to_string(),
            ),
        }
    }

    fn order_request(&self, reference: &str, order: &OrderSpec) -> Result<HttpRequest, String> {
        let OrderSpec::Va(va) = order else {
            return Err("an mcp account has only virtual accounts".into());
        };
        let system = PaymentSystem::try_from(va.payment_system.clone())?;
        let expired_time = va
            .expires_at
            .as_deref()
            .map(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map(wib)
                    .map_err(|_| format!("expires_at {t:?} is not an RFC 3339 time"))
            })
            .transpose()?;
        let request = CreateVaRequest {
            external_id: reference.to_owned(),
            order_id: va.order_id.clone(),
            currency: "IDR".into(),
            payment_method: "bank_transfer".into(),
            payment_channel: va.payment_channel.clone(),
            payment_details: PaymentDetails {
                payment_system: Some(system),
                billing_name: Some(va.billing_name.clone()),
                amount: Some(va.amount),
                is_multi_use: Some(va.multi_use || system == PaymentSystem::Open),
                expired_time,
                transaction_description: Some(va.description.clone()),
                ..PaymentDetails::default()
            },
            customer_details: CustomerDetails {
                phone: va.phone.clone(),
                email: Some(va.email.clone()),
                full_name: Some(va.full_name.clone()),
            },
            item_details: None,
            billing_address: None,
            callback_url: None,
            shipping_address: None,
            additional_data: None,
        };
        self.request(PATH_CREATE, reference, &va.order_id, request.encode())
    }

    fn repeat_is_status(&self, tx: &TxRecord, order: &OrderSpec) -> bool {
        // The inquiry needs MCPayment's transaction_id, which only the create answer (or a
        // payment callback) gives. Until it is known, repeating the create with the same
        // external_id makes the VA if it was never made, and is refused (making nothing) if it
        // was.
        matches!(order, OrderSpec::Va(_)) && tx.provider_transaction_id.is_none()
    }

    fn read_order(&self, reference: &str, _order: &OrderSpec, answer: &HttpAnswer) -> OrderOutcome {
        match (answer.status, McpResponse::parse(&answer.body)) {
            (200, Ok(res)) if res.is_success() => match res.data {
                Some(data) if data.external_id == reference => {
                    let fact = fact_of(&data);
                    if matches!(fact.basis, Basis::Contradictory(_)) {
                        return OrderOutcome::Unknown("a VA in another currency".into());
                    }
                    OrderOutcome::Accepted { fact, bill: None }
                }
                Some(data) => OrderOutcome::Unknown(format!(
                    "the answer is about {:?}, not {reference:?}",
                    data.external_id
                )),
                None => OrderOutcome::Unknown("a success without data".into()),
            },
            // The external_id is taken: this VA (an earlier attempt whose answer was lost) or
            // another. Either way nothing new was made, and nothing is known of it.
            (_, Ok(res))
                if res
                    .response_message
                    .as_deref()
                    .is_some_and(|m| m.to_ascii_lowercase().contains("already exist")) =>
            {
                OrderOutcome::Unknown(format!(
                    "MCPayment already has a VA with external_id {reference}; lunas cannot look it up without its transaction_id"
                ))
            }
            // Request Parameter Error, Failed Request, Unauthorized Merchant: the VA was not made.
            (status, Ok(res))
                if status < 500 && matches!(res.response_code.trim(), "01" | "03" | "04") =>
            {
                let why = format!(
                    "response_code {} {}",
                    res.response_code,
                    res.response_message.unwrap_or_default()
                );
                OrderOutcome::Rejected {
                    fact: Fact::reported(
                        TxKind::Va,
                        reference,
                        Some(State::Canceled),
                        Detail {
                            response_code: Some(res.response_code.clone()),
                            message: Some(why.clone()),
                            ..Detail::default()
                        },
                    ),
                    why,
                }
            }
            (status, _) => {
                OrderOutcome::Unknown(format!("HTTP {status} without a definite answer"))
            }
        }
    }
}

/// A time as MCPayment writes it: `YYYY-mm-ddTHH:mm:ss.vvv+07:00` (Western Indonesia Time).
pub fn wib(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::macros::offset!(+7));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+07:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
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
