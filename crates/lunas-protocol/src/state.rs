//! The normalized model every provider maps onto (the README's concepts): transaction kinds and states.

use crate::iak::Verdict;
use crate::mcp::{TransactionStatus, VaTransaction};

/// What kind of transaction a ref names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxKind {
    /// IAK/IDSL top-up.
    Prepaid,
    /// IAK/IDSL bill payment.
    Postpaid,
    /// MCPayment virtual account.
    Va,
}

impl TxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TxKind::Prepaid => "prepaid",
            TxKind::Postpaid => "postpaid",
            TxKind::Va => "va",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "prepaid" => Some(TxKind::Prepaid),
            "postpaid" => Some(TxKind::Postpaid),
            "va" => Some(TxKind::Va),
            _ => None,
        }
    }

    /// The state a transaction of this kind starts in.
    pub fn initial_state(self) -> State {
        match self {
            TxKind::Prepaid | TxKind::Postpaid => State::Pending,
            TxKind::Va => State::AwaitingPayment,
        }
    }
}

/// A transaction's normalized state. Prepaid and postpaid: `pending` → `succeeded` | `failed`.
/// VA: `awaiting_payment` → `partially_paid` → `paid`, or → `expired` | `canceled`, and
/// `refunded` where the provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Succeeded,
    Failed,
    AwaitingPayment,
    PartiallyPaid,
    Paid,
    Expired,
    Canceled,
    Refunded,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Pending,
        State::Succeeded,
        State::Failed,
        State::AwaitingPayment,
        State::PartiallyPaid,
        State::Paid,
        State::Expired,
        State::Canceled,
        State::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::AwaitingPayment => "awaiting_payment",
            State::PartiallyPaid => "partially_paid",
            State::Paid => "paid",
            State::Expired => "expired",
            State::Canceled => "canceled",
            State::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether no further outcome is expected. (A paid multi-use VA can still take payments;
    /// those are events, not state changes.)
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            State::Pending | State::AwaitingPayment | State::PartiallyPaid
        )
    }

    /// Whether the state belongs to transactions of `kind`.
    pub fn applies_to(self, kind: TxKind) -> bool {
        match kind {
            TxKind::Prepaid | TxKind::Postpaid => {
                matches!(self, State::Pending | State::Succeeded | State::Failed)
            }
            TxKind::Va => !matches!(self, State::Pending | State::Succeeded | State::Failed),
        }
    }
}

/// The state an IAK/IDSL verdict leads to; `None` for verdicts that say nothing about the
/// transaction (not found, request refused).
pub fn state_for_verdict(verdict: Verdict) -> Option<State> {
    match verdict {
        Verdict::Succeeded => Some(State::Succeeded),
        Verdict::Failed => Some(State::Failed),
        Verdict::Pending | Verdict::NotReceived => Some(State::Pending),
        Verdict::NotFound | Verdict::Rejected => None,
    }
}

/// The state an MCPayment VA message describes; `None` for a status outside the VA model
/// (`FAILED`, unknown values), which is recorded but changes nothing.
pub fn va_state(tx: &VaTransaction) -> Option<State> {
    let paid = tx.total_paid().unwrap_or(0);
    let some_paid = if paid > 0 {
        State::PartiallyPaid
    } else {
        State::AwaitingPayment
    };
    match &tx.transaction_status {
        TransactionStatus::Paid | TransactionStatus::Success => match tx.total_amount() {
            Some(total) if total > 0 && paid > 0 && paid < total => Some(State::PartiallyPaid),
            _ => Some(State::Paid),
        },
        TransactionStatus::Active | TransactionStatus::Processing => Some(some_paid),
        TransactionStatus::Expired => Some(State::Expired),
        TransactionStatus::Canceled => Some(State::Canceled),
        TransactionStatus::Refunded | TransactionStatus::Void => Some(State::Refunded),
        TransactionStatus::Failed | TransactionStatus::Other(_) => None,
    }
}
