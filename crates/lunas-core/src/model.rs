//! Transactions, observations, facts and events.

use lunas_protocol::{State, TxKind};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// RFC 3339 in UTC with exactly three decimals (`2026-12-01T15:04:05.000Z`), the one time
/// format of every API and event: fixed width, so times sort as text too.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds since the Unix epoch, as the stores keep times.
pub fn to_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of [`to_millis`].
pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// One payment into a virtual account, identified by the provider's `reference_id`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VaPayment {
    pub reference_id: String,
    pub amount: i64,
    pub paid_time: Option<String>,
}

/// One refund out of a virtual account, as the provider reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VaRefund {
    pub amount: i64,
    pub refund_time: Option<String>,
}

/// Why a transaction is flagged for review: one entry per distinct contradiction, so that a
/// replayed message raises no second alarm while a new contradiction always does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Flag {
    /// What kind of problem: `conflict`, `mismatch`, `different_goods`, `payment_after_final`,
    /// `paid_again`, `overpaid`, `closed_with_money`, `unconfirmed_payment`, `inferred_failure`,
    /// `unresolved`, `contradictory_message`, `refund_exceeds_payments`.
    pub reason: String,
    /// Tells this contradiction apart from others of its reason (never a customer's goods in
    /// clear: those are digested).
    pub key: String,
    /// When it was seen first (RFC 3339).
    pub at: String,
}

/// The most flags one transaction keeps; past it the transaction stays flagged but no new
/// alarm is raised (a replayed, altered callback cannot grow a record or the event feed
/// without bound).
pub const MAX_FLAGS: usize = 32;

/// What lunas keeps about a transaction beyond its columns: a VA's terms and refunds, why it is
/// flagged, and what the reconciler still has to watch. The stores keep it as one JSON column.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TxExtra {
    /// VA: whether it takes several payments (from the first message that said so; a later
    /// message cannot change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_use: Option<bool>,
    /// VA: `CLOSED`, `OPEN` or `PARTIAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_system: Option<String>,
    /// VA: when it stops taking payments (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// VA: every distinct refund seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<VaRefund>,
    /// The outcome was inferred by lunas (a grace period ran out), not reported by the
    /// provider: it is provisional, and a real outcome wins over it. Holds the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred: Option<String>,
    /// Keep asking the provider until then (ms), although the state is final: a provisional
    /// failure, an open or multi-use VA that may still take payments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_until: Option<i64>,
    /// Since when the provider has said it has no record of the transaction (ms); grace periods
    /// count from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered_since: Option<i64>,
    /// Why the transaction is flagged, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// How lunas learnt of the transaction: `registration` or `order`; none: a provider's
    /// message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The order lunas placed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<crate::order::OrderState>,
    /// When retention erased the customer goods (PIN, activation code, token/serial number)
    /// from the transaction, its events and its observations' bodies (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_erased_at: Option<i64>,
}

impl TxExtra {
    pub fn is_empty(&self) -> bool {
        *self == TxExtra::default()
    }

    /// The JSON the stores keep (`None` when there is nothing to keep).
    pub fn to_column(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).expect("extra serialises"))
    }

    /// Reads the stored JSON back.
    pub fn from_column(text: Option<&str>) -> Result<Self, serde_json::Error> {
        match text {
            None | Some("") => Ok(TxExtra::default()),
            Some(t) => serde_json::from_str(t),
        }
    }

    /// VA: the total refunded so far.
    pub fn total_refunded(&self) -> Option<i64> {
        (!self.refunds.is_empty()).then(|| {
            self.refunds
                .iter()
                .fold(0i64, |acc, r| acc.saturating_add(r.amount))
        })
    }
}

/// Everything lunas knows about one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRecord {
    /// The store's id; 0 before the first insert.
    pub id: i64,
    pub provider_id: String,
    /// IAK/IDSL `ref_id`, MCPayment `external_id`.
    pub reference: String,
    pub kind: TxKind,
    pub state: State,
    pub needs_review: bool,
    pub amount: Option<i64>,
    pub product_code: Option<String>,
    pub customer_id: Option<String>,
    pub provider_transaction_id: Option<String>,
    pub order_id: Option<String>,
    pub response_code: Option<String>,
    pub message: Option<String>,
    /// Serial number; for PLN the electricity token. Customer goods: never logged.
    pub serial_number: Option<String>,
    /// Voucher PIN. Customer goods: never logged.
    pub pin: Option<String>,
    /// eSIM activation code. Customer goods: never logged.
    pub activation_code: Option<String>,
    pub balance_after: Option<i64>,
    /// VA: what has been paid so far.
    pub total_paid: Option<i64>,
    /// VA: every distinct payment seen.
    pub payments: Vec<VaPayment>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// A final outcome a callback claimed but the provider has not yet confirmed
    /// (`confirm_callbacks = true`).
    pub unconfirmed: Option<Claim>,
    /// When the reconciler will next ask the provider (`None`: nothing to ask). Kept by the store.
    pub next_check_at: Option<OffsetDateTime>,
    /// Status checks made so far. Kept by the store.
    pub check_attempts: i64,
    /// VA terms, refunds, review flags and what the reconciler watches.
    pub extra: TxExtra,
}

/// An outcome a message claimed, held until the provider confirms it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    /// The state the callback claimed, by name.
    pub state: String,
    pub detail: Detail,
    /// When it was claimed (RFC 3339).
    pub at: String,
    /// VA: the payments the claim listed (the provider must show them too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<VaPayment>,
}

/// How far a fact is to be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trust {
    /// The provider's own status API said it, or the account does not ask for confirmation.
    Authoritative,
    /// A callback on an account with `confirm_callbacks = true`: a final outcome is held as a
    /// [`Claim`] until a status check agrees.
    NeedsConfirmation,
}

impl TxRecord {
    /// A new transaction in its kind's initial state.
    pub fn new(provider_id: &str, reference: &str, kind: TxKind, now: OffsetDateTime) -> Self {
        TxRecord {
            id: 0,
            provider_id: provider_id.to_owned(),
            reference: reference.to_owned(),
            kind,
            state: kind.initial_state(),
            needs_review: false,
            amount: None,
            product_code: None,
            customer_id: None,
            provider_transaction_id: None,
            order_id: None,
            response_code: None,
            message: None,
            serial_number: None,
            pin: None,
            activation_code: None,
            balance_after: None,
            total_paid: None,
            payments: Vec::new(),
            created_at: now,
            updated_at: now,
            unconfirmed: None,
            next_check_at: None,
            check_attempts: 0,
            extra: TxExtra::default(),
        }
    }

    /// Whether the reconciler still has something to ask the provider at `now`: an open
    /// outcome, a claim to confirm, or a final state that is watched (a provisional failure, an
    /// open or multi-use VA until it expires).
    pub fn wants_check(&self, now: OffsetDateTime) -> bool {
        if self
            .extra
            .order
            .as_ref()
            .is_some_and(|o| o.awaits_payment() && o.submission.is_answered())
        {
            // An inquired bill nobody asked to pay: nothing to learn.
            return false;
        }
        !self.state.is_final()
            || self.unconfirmed.is_some()
            || self
                .extra
                .watch_until
                .is_some_and(|until| to_millis(now) < until)
    }

    /// The transaction as the admin API and every event show it (the README's interfaces).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "provider_id": self.provider_id,
            "ref": self.reference,
            "kind": self.kind.as_str(),
            "state": self.state.as_str(),
            "needs_review": self.needs_review,
            "amount": self.amount,
            "product_code": self.product_code,
            "customer_id": self.customer_id,
            "provider_transaction_id": self.provider_transaction_id,
            "response_code": self.response_code,
            "message": self.message,
            "serial_number": self.serial_number,
            "pin": self.pin,
            "activation_code": self.activation_code,
            "balance_after": self.balance_after,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        });
        let m = v.as_object_mut().expect("an object");
        if let Some(claim) = &self.unconfirmed {
            m.insert("unconfirmed_state".into(), json!(claim.state));
        }
        if let Some(reason) = &self.extra.inferred {
            m.insert("inferred".into(), json!(reason));
        }
        if let Some(at) = self.extra.goods_erased_at {
            m.insert("goods_erased_at".into(), json!(rfc3339(from_millis(at))));
        }
        m.insert(
            "origin".into(),
            json!(self.extra.origin.as_deref().unwrap_or("callback")),
        );
        if let Some(order) = &self.extra.order {
            m.insert(
                "submission".into(),
                json!(order.shown_submission().as_str()),
            );
            if let Some(bill) = &order.bill {
                m.insert("bill".into(), json!(bill));
            }
        }
        if !self.extra.flags.is_empty() {
            let reasons: Vec<Value> = self
                .extra
                .flags
                .iter()
                .map(|f| json!({"reason": f.reason, "at": f.at}))
                .collect();
            m.insert("review_reasons".into(), Value::Array(reasons));
        }
        if self.kind == TxKind::Va {
            let x = &self.extra;
            m.insert("order_id".into(), json!(self.order_id));
            m.insert("va_number".into(), json!(self.customer_id));
            m.insert("total_paid".into(), json!(self.total_paid));
            m.insert("payments".into(), json!(self.payments));
            m.insert("payment_system".into(), json!(x.payment_system));
            m.insert("is_multi_use".into(), json!(x.multi_use));
            m.insert(
                "expires_at".into(),
                json!(x.expires_at.map(|t| rfc3339(from_millis(t)))),
            );
            m.insert("total_refunded".into(), json!(x.total_refunded()));
            m.insert("refunds".into(), json!(x.refunds));
        }
        v
    }
}

/// What one verified provider message says about a transaction, provider-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub kind: TxKind,
    pub reference: String,
    /// The state the message reports; `None` when it reports nothing lunas can apply (an
    /// unknown MCPayment status): the message is recorded and changes nothing.
    pub state: Option<State>,
    pub detail: Detail,
    /// VA: the payments the message lists.
    pub payments: Vec<VaPayment>,
    /// VA: the refunds the message lists.
    pub refunds: Vec<VaRefund>,
    /// How the fact was come by.
    pub basis: Basis,
}

impl Fact {
    /// A fact the provider reported, with no payments or refunds.
    pub fn reported(kind: TxKind, reference: &str, state: Option<State>, detail: Detail) -> Self {
        Fact {
            kind,
            reference: reference.to_owned(),
            state,
            detail,
            payments: Vec::new(),
            refunds: Vec::new(),
            basis: Basis::Reported,
        }
    }
}

/// How a fact was come by, which decides how far it can move a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Basis {
    /// The provider said it.
    #[default]
    Reported,
    /// The message contradicts itself (a success status with a failure code, money in a
    /// currency other than rupiah): it is recorded, changes nothing, and flags the transaction.
    Contradictory(String),
    /// The provider said it has no record of the transaction (yet). Grace periods count from
    /// the first such answer.
    Unanswered,
    /// The message states a value outside the documented set (an unknown status): it is
    /// recorded, changes nothing, and flags a known transaction so that a person looks at it.
    Unrecognized(String),
    /// lunas inferred the state because a grace period ran out: provisional, flagged, watched
    /// until `watch_until`, and overturned by any real outcome.
    Inferred {
        reason: String,
        watch_until: OffsetDateTime,
    },
}

/// The descriptive fields a message may carry; `None` means "not said".
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Detail {
    pub amount: Option<i64>,
    pub product_code: Option<String>,
    pub customer_id: Option<String>,
    pub provider_transaction_id: Option<String>,
    pub order_id: Option<String>,
    pub response_code: Option<String>,
    pub message: Option<String>,
    pub serial_number: Option<String>,
    pub pin: Option<String>,
    pub activation_code: Option<String>,
    pub balance_after: Option<i64>,
    pub total_paid: Option<i64>,
    /// VA: whether the account takes several payments (and may expire after being paid).
    #[serde(default)]
    pub multi_use: Option<bool>,
    /// VA: `CLOSED`, `OPEN` or `PARTIAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_system: Option<String>,
    /// VA: when it stops taking payments.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<OffsetDateTime>,
}

/// Where an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A provider POSTed it to `/callbacks/{provider_id}`.
    Callback,
    /// lunas asked the provider's check-status API.
    Check,
    /// lunas placed an order (or repeated it to learn its outcome).
    Order,
    /// A person resolved the transaction's review (who, when and why).
    Review,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Callback => "callback",
            Source::Check => "check",
            Source::Order => "order",
            Source::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "callback" => Some(Source::Callback),
            "check" => Some(Source::Check),
            "order" => Some(Source::Order),
            "review" => Some(Source::Review),
            _ => None,
        }
    }
}

/// What lunas concluded about an observation. Stored with it, shown in the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservationVerdict {
    /// Unknown ref: the transaction was created from this message.
    Created,
    /// The transaction moved to a new state.
    Applied,
    /// Late detail (e.g. an `sn` after success) was merged; state unchanged.
    Updated,
    /// Nothing new: the same state (and detail) again.
    Duplicate,
    /// A pending (or earlier) state after a later one: ignored.
    Stale,
    /// A different final state after a final one: state kept, flagged for review.
    Conflict,
    /// The message reports nothing lunas can apply (unknown status): recorded only.
    Unrecognized,
    /// The message is about a transaction of another kind under the same ref.
    KindMismatch,
    /// The message names the ref but another provider transaction (another `tr_id`,
    /// `transaction_id` or `order_id`): not applied, flagged for review.
    Mismatch,
    /// Refused: the signature does not verify.
    BadSignature,
    /// Refused: the body could not be parsed.
    Malformed,
    /// Refused: the source address is not on the provider's allow-list.
    ForbiddenSource,
    /// A callback claimed a final outcome that waits for the provider to confirm it.
    Unconfirmed,
    /// A status check got no usable answer (timeout, 5xx, garbage, refusal): nothing changes.
    CheckFailed,
    /// An order request is leaving (committed first): it may reach the provider from now on.
    Sent,
    /// An order request got no definite answer (timeout, reset, 5xx, garbage): its outcome is
    /// unknown and is asked for with the same ref.
    NoAnswer,
    /// A person resolved the review: the flag is cleared, the chosen state kept or set.
    Resolved,
    /// The provider has no record of the transaction (yet): nothing changes; a grace period
    /// runs from the first such answer.
    NotFound,
}

/// The fields of a transaction (and of its events) that hold customer goods.
pub const GOODS_FIELDS: [&str; 3] = ["serial_number", "pin", "activation_code"];

/// The most observations one transaction keeps in full. Beyond it, a message that changes
/// nothing is counted on the latest observation of the same verdict instead of stored, so a
/// flood naming one transaction cannot grow its timeline (or the disk) without bound.
pub const MAX_OBSERVATIONS_PER_TRANSACTION: i64 = 200;

/// How much of the body of a message that changed nothing is kept (its full size and SHA-256
/// are kept too): the message that set the state keeps its whole body; a copy that changes
/// nothing is evidence that it arrived, not of anything new.
pub const UNCHANGED_BODY_CAP: usize = 4096;

/// How many bodies of messages that change nothing (and repeat no earlier body) one provider
/// account keeps a minute, on each node; past it such a message is counted on the
/// transaction's latest observation of the same verdict (or kept without its body). A holder
/// of many validly signed callbacks (IAK's sign covers only the ref) cannot grow the evidence
/// by padding copies of them apart.
pub const UNCHANGED_BODIES_PER_MINUTE: u32 = 60;

impl ObservationVerdict {
    /// A message with this verdict changed nothing: a repeat of it need not be stored again
    /// (it is counted on the observation it repeats).
    pub fn changes_nothing(self) -> bool {
        matches!(
            self,
            ObservationVerdict::Duplicate
                | ObservationVerdict::Stale
                | ObservationVerdict::BadSignature
                | ObservationVerdict::Malformed
                | ObservationVerdict::ForbiddenSource
                | ObservationVerdict::CheckFailed
        )
    }

    pub const ALL: [ObservationVerdict; 18] = [
        ObservationVerdict::Created,
        ObservationVerdict::Applied,
        ObservationVerdict::Updated,
        ObservationVerdict::Duplicate,
        ObservationVerdict::Stale,
        ObservationVerdict::Conflict,
        ObservationVerdict::Unrecognized,
        ObservationVerdict::KindMismatch,
        ObservationVerdict::Mismatch,
        ObservationVerdict::BadSignature,
        ObservationVerdict::Malformed,
        ObservationVerdict::ForbiddenSource,
        ObservationVerdict::Unconfirmed,
        ObservationVerdict::CheckFailed,
        ObservationVerdict::Sent,
        ObservationVerdict::NoAnswer,
        ObservationVerdict::Resolved,
        ObservationVerdict::NotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObservationVerdict::Created => "created",
            ObservationVerdict::Applied => "applied",
            ObservationVerdict::Updated => "updated",
            ObservationVerdict::Duplicate => "duplicate",
            ObservationVerdict::Stale => "stale",
            ObservationVerdict::Conflict => "conflict",
            ObservationVerdict::Unrecognized => "unrecognized",
            ObservationVerdict::KindMismatch => "kind_mismatch",
            ObservationVerdict::Mismatch => "mismatch",
            ObservationVerdict::BadSignature => "bad_signature",
            ObservationVerdict::Malformed => "malformed",
            ObservationVerdict::ForbiddenSource => "forbidden_source",
            ObservationVerdict::Unconfirmed => "unconfirmed",
            ObservationVerdict::CheckFailed => "check_failed",
            ObservationVerdict::Sent => "sent",
            ObservationVerdict::NoAnswer => "no_answer",
            ObservationVerdict::Resolved => "resolved",
            ObservationVerdict::NotFound => "not_found",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ObservationVerdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Whether the message was refused before it could touch any transaction.
    pub fn is_rejection(self) -> bool {
        matches!(
            self,
            ObservationVerdict::BadSignature
                | ObservationVerdict::Malformed
                | ObservationVerdict::ForbiddenSource
        )
    }
}

/// An observation about to be stored: the raw evidence of one callback or status check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObservation {
    pub provider_id: String,
    /// The ref it is about, when one could be read.
    pub reference: Option<String>,
    pub source: Source,
    pub received_at: OffsetDateTime,
    pub content_type: Option<String>,
    pub remote_addr: Option<String>,
    /// The raw body, capped (see `body_size` for the full length).
    pub body: Vec<u8>,
    pub body_size: usize,
    /// For refusals, the verdict; for accepted messages the store fills it from [`decide`].
    pub verdict: Option<ObservationVerdict>,
    /// A human-readable note (the parse error, the check's outcome).
    pub detail: Option<String>,
}

/// The kinds of events lunas emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    TransactionPending,
    TransactionSucceeded,
    TransactionFailed,
    TransactionUpdated,
    TransactionConflict,
    /// A message reported another product, customer, amount or identity than the one asked
    /// for: the asked values are kept and the transaction is flagged.
    TransactionMismatch,
    /// No outcome within the provider's window: flagged for review.
    TransactionUnresolved,
    /// A person resolved the transaction's review (the flag is cleared).
    TransactionResolved,
    VaPaymentReceived,
    VaPaid,
    VaExpired,
    VaCanceled,
    VaRefunded,
    /// A provider account's deposit fell below its `low_balance` threshold.
    ProviderBalanceLow,
}

impl EventType {
    pub const ALL: [EventType; 14] = [
        EventType::TransactionPending,
        EventType::TransactionSucceeded,
        EventType::TransactionFailed,
        EventType::TransactionUpdated,
        EventType::TransactionConflict,
        EventType::TransactionMismatch,
        EventType::TransactionUnresolved,
        EventType::TransactionResolved,
        EventType::VaPaymentReceived,
        EventType::VaPaid,
        EventType::VaExpired,
        EventType::VaCanceled,
        EventType::VaRefunded,
        EventType::ProviderBalanceLow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TransactionPending => "transaction.pending",
            EventType::TransactionSucceeded => "transaction.succeeded",
            EventType::TransactionFailed => "transaction.failed",
            EventType::TransactionUpdated => "transaction.updated",
            EventType::TransactionConflict => "transaction.conflict",
            EventType::TransactionMismatch => "transaction.mismatch",
            EventType::TransactionUnresolved => "transaction.unresolved",
            EventType::TransactionResolved => "transaction.resolved",
            EventType::VaPaymentReceived => "va.payment_received",
            EventType::VaPaid => "va.paid",
            EventType::VaExpired => "va.expired",
            EventType::VaCanceled => "va.canceled",
            EventType::VaRefunded => "va.refunded",
            EventType::ProviderBalanceLow => "provider.balance_low",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The event a transaction entering `state` emits.
    pub fn for_state(state: State) -> Option<Self> {
        match state {
            State::Pending => Some(EventType::TransactionPending),
            State::Succeeded => Some(EventType::TransactionSucceeded),
            State::Failed => Some(EventType::TransactionFailed),
            State::Paid => Some(EventType::VaPaid),
            State::Expired => Some(EventType::VaExpired),
            State::Canceled => Some(EventType::VaCanceled),
            State::Refunded => Some(EventType::VaRefunded),
            State::AwaitingPayment | State::PartiallyPaid => None,
        }
    }
}

/// An event about to be stored. `data` is final: it is what every consumer will receive.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub data: Value,
}

impl NewEvent {
    /// An event whose data is the transaction, plus `extra` members (e.g. the payment of a
    /// `va.payment_received`, the evidence of a conflict).
    pub fn about(event_type: EventType, tx: &TxRecord, extra: &[(&str, Value)]) -> Self {
        let mut data = tx.to_json();
        if let Value::Object(m) = &mut data {
            for (k, v) in extra {
                m.insert((*k).to_owned(), v.clone());
            }
        }
        NewEvent { event_type, data }
    }
}

/// A stored event, as the feed and the deliveries see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The feed cursor (monotonic per store).
    pub seq: i64,
    /// The stable id (`evt_...`), used as `webhook-id`.
    pub id: String,
    pub event_type: EventType,
    /// `None` for provider-level events (`provider.balance_low`).
    pub transaction_id: Option<i64>,
    pub created_at: OffsetDateTime,
    pub data: Value,
}

impl Event {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.event_type.as_str(),
            "created_at": rfc3339(self.created_at),
            "data": self.data,
        })
    }
}

/// A stored observation, as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub id: i64,
    pub provider_id: String,
    pub reference: Option<String>,
    pub source: Source,
    pub received_at: OffsetDateTime,
    pub content_type: Option<String>,
    pub remote_addr: Option<String>,
    pub body: Vec<u8>,
    pub body_size: usize,
    pub verdict: ObservationVerdict,
    pub detail: Option<String>,
    /// SHA-256 of the body as received (hex); kept when the body itself is pruned.
    pub body_sha256: Option<String>,
    /// How many more times the same message (or, past the per-transaction cap or the
    /// account's budget of kept bodies, one with the same verdict) arrived after this one; the
    /// last of them at `last_received_at`.
    pub repeats: i64,
    pub last_received_at: Option<OffsetDateTime>,
    /// When retention erased the body (the digest stays).
    pub pruned_at: Option<OffsetDateTime>,
}

impl Observation {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("source".into(), json!(self.source.as_str()));
        m.insert("received_at".into(), json!(rfc3339(self.received_at)));
        m.insert("verdict".into(), json!(self.verdict.as_str()));
        m.insert("detail".into(), json!(self.detail));
        m.insert("content_type".into(), json!(self.content_type));
        m.insert("remote_addr".into(), json!(self.remote_addr));
        m.insert("body".into(), json!(String::from_utf8_lossy(&self.body)));
        m.insert("body_size".into(), json!(self.body_size));
        m.insert(
            "body_truncated".into(),
            json!(self.pruned_at.is_none() && self.body.len() < self.body_size),
        );
        m.insert("body_sha256".into(), json!(self.body_sha256));
        m.insert("repeats".into(), json!(self.repeats));
        m.insert(
            "last_received_at".into(),
            json!(self.last_received_at.map(rfc3339)),
        );
        m.insert("body_pruned_at".into(), json!(self.pruned_at.map(rfc3339)));
        Value::Object(m)
    }
}

/// The provider-level events a reported deposit balance raises: `provider.balance_low` when it
/// crosses below the account's threshold. (Balances of concurrent purchases arrive in any
/// order, so a rise between two purchases says nothing; a rise within one purchase is a
/// conflict of that transaction, see the transition rules.)
pub fn balance_events(
    provider_id: &str,
    previous: Option<i64>,
    balance: i64,
    low_balance: Option<i64>,
    at: OffsetDateTime,
) -> Vec<NewEvent> {
    let mut events = Vec::new();
    if let Some(threshold) = low_balance {
        if balance < threshold && previous.is_none_or(|p| p >= threshold) {
            events.push(NewEvent {
                event_type: EventType::ProviderBalanceLow,
                data: json!({
                    "provider_id": provider_id,
                    "balance": balance,
                    "threshold": threshold,
                    "at": rfc3339(at),
                }),
            });
        }
    }
    events
}
