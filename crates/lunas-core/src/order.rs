//! Orders: what lunas asks a provider for on the merchant's behalf (a top-up, a bill inquiry
//! and payment, a virtual account), and how far each request got.
//!
//! The rule that keeps money safe: an order is committed before its first byte leaves; an
//! answer that is not definite leaves the submission `unknown` and the transaction open, to be
//! settled by asking the provider with the same ref — never re-sent under another ref, never
//! called `failed` until the provider says so.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an order asks the provider for (the ref is the transaction's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderSpec {
    /// A prepaid top-up.
    Prepaid {
        product_code: String,
        customer_id: String,
    },
    /// A postpaid bill: the inquiry (no money moves); paying it is [`OrderState::pay`].
    Postpaid {
        product_code: String,
        customer_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        month: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        year: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nomor_identitas: Option<String>,
    },
    /// Payment of an inquired bill (IAK `pay-pasca` with the inquiry's `tr_id`).
    PostpaidPay { bill_id: String, amount: i64 },
    /// A virtual account.
    Va(VaSpec),
}

/// What a VA order asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaSpec {
    pub order_id: String,
    pub amount: i64,
    pub payment_channel: String,
    /// `CLOSED`, `OPEN` or `PARTIAL`.
    pub payment_system: String,
    #[serde(default)]
    pub multi_use: bool,
    pub billing_name: String,
    pub description: String,
    pub email: String,
    pub full_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A postpaid bill, as an inquiry returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    /// What pays it (IAK: the inquiry's `tr_id`).
    pub tr_id: String,
    /// What paying it costs the merchant (IAK `price` = nominal + admin).
    pub price: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<Value>,
}

/// How far an order request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Submission {
    /// Committed; nothing has left (or what left surely never reached the provider).
    NotSent,
    /// On its way: the request may be at the provider.
    Sent,
    /// No definite answer (timeout, reset, 5xx, garbage): it may have reached the provider.
    Unknown,
    /// The provider took it.
    Accepted,
    /// The provider refused it.
    Rejected,
}

impl Submission {
    pub fn as_str(self) -> &'static str {
        match self {
            Submission::NotSent => "not_sent",
            Submission::Sent => "sent",
            Submission::Unknown => "unknown",
            Submission::Accepted => "accepted",
            Submission::Rejected => "rejected",
        }
    }

    /// Whether the provider has answered it, one way or the other.
    pub fn is_answered(self) -> bool {
        matches!(self, Submission::Accepted | Submission::Rejected)
    }
}

/// An order lunas placed, as the transaction keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// What was asked for.
    pub spec: OrderSpec,
    pub submission: Submission,
    /// Postpaid: the bill the inquiry returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill: Option<Bill>,
    /// Postpaid: the payment of the bill, once asked for (at most one per bill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay: Option<PayState>,
    /// Requests sent so far (the same ref each time).
    #[serde(default)]
    pub attempts: u32,
}

/// The payment of an inquired bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayState {
    /// The price the merchant agreed to pay.
    pub amount: i64,
    pub submission: Submission,
    #[serde(default)]
    pub attempts: u32,
}

impl OrderState {
    pub fn new(spec: OrderSpec) -> Self {
        OrderState {
            spec,
            submission: Submission::NotSent,
            bill: None,
            pay: None,
            attempts: 0,
        }
    }

    /// The request whose answer is still awaited: the payment of a bill once it is asked for,
    /// else the order itself.
    pub fn current(&self) -> (OrderSpec, Submission) {
        match (&self.pay, &self.bill) {
            (Some(pay), Some(bill)) => (
                OrderSpec::PostpaidPay {
                    bill_id: bill.tr_id.clone(),
                    amount: pay.amount,
                },
                pay.submission,
            ),
            _ => (self.spec.clone(), self.submission),
        }
    }

    /// Sets the submission of the request [`OrderState::current`] names, counting a send.
    pub fn set_current(&mut self, submission: Submission, sent: bool) {
        match (&mut self.pay, &self.bill) {
            (Some(pay), Some(_)) => {
                pay.submission = submission;
                pay.attempts += u32::from(sent);
            }
            _ => {
                self.submission = submission;
                self.attempts += u32::from(sent);
            }
        }
    }

    /// A postpaid bill inquired but not (yet) asked to be paid: nothing to follow.
    pub fn awaits_payment(&self) -> bool {
        matches!(self.spec, OrderSpec::Postpaid { .. }) && self.pay.is_none()
    }

    /// The submission as the API shows it: the payment's once a bill is being paid.
    pub fn shown_submission(&self) -> Submission {
        self.current().1
    }
}
