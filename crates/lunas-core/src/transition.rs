//! The transition rules (product.md §3): how a verified message changes a transaction.
//!
//! - A final state never moves backwards; a pending (or earlier) state after it is *stale*.
//! - The same final state again is a *duplicate*: recorded, no new event.
//! - A different final state after a final one is a *conflict*: the state is kept,
//!   `needs_review` is set and `transaction.conflict` is emitted (once per flagging).
//! - An unknown ref is *created* from a verified message.
//! - Late detail (an `sn` after success) is merged and emitted as `transaction.updated`.
//! - VA: each distinct payment (`reference_id`) is one `va.payment_received`; a VA is `paid`
//!   when the provider says so (the protocol layer holds PARTIAL VAs at `partially_paid` until
//!   the total is reached).

use lunas_protocol::{State, TxKind};
use serde_json::json;
use time::OffsetDateTime;

use crate::model::{
    rfc3339, Claim, Detail, EventType, Fact, NewEvent, ObservationVerdict as V, Trust, TxRecord,
    VaPayment,
};

/// The outcome of applying one fact to a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: V,
    /// The transaction after the fact (equal to the input when nothing changed).
    pub record: TxRecord,
    /// Whether `record` differs from what is stored and must be written.
    pub changed: bool,
    /// Events to commit with the change, in order.
    pub events: Vec<NewEvent>,
}

/// Applies `fact` to `current` (the stored transaction, `None` if the ref is unknown).
///
/// With [`Trust::NeedsConfirmation`] (a callback on an account that confirms callbacks), a fact
/// that would settle an outcome is not applied: it is kept as the transaction's
/// [`TxRecord::unconfirmed`] claim until an authoritative fact (a status check) arrives. That
/// fact then decides: the same outcome commits (with the claim's detail, e.g. the sn), a
/// different one commits the provider's outcome, flags the transaction and emits
/// `transaction.conflict`.
pub fn decide(
    current: Option<&TxRecord>,
    provider_id: &str,
    fact: &Fact,
    trust: Trust,
    now: OffsetDateTime,
) -> Decision {
    let decision = decide_authoritative(current, provider_id, fact, now);
    let settles = fact
        .state
        .is_some_and(|s| s.is_final() || s == State::PartiallyPaid);
    let changes = matches!(decision.verdict, V::Created | V::Applied | V::Updated);
    match trust {
        Trust::NeedsConfirmation
            if settles && changes && current.is_none_or(|c| !c.state.is_final()) =>
        {
            hold(current, provider_id, fact, now)
        }
        Trust::NeedsConfirmation => decision,
        Trust::Authoritative => settle_claim(current, fact, decision, now),
    }
}

/// Keeps a claimed outcome without applying it.
fn hold(
    current: Option<&TxRecord>,
    provider_id: &str,
    fact: &Fact,
    now: OffsetDateTime,
) -> Decision {
    let mut rec = current
        .cloned()
        .unwrap_or_else(|| TxRecord::new(provider_id, &fact.reference, fact.kind, now));
    let claimed = fact.state.expect("only a stated outcome is held");
    rec.unconfirmed = Some(Claim {
        state: claimed.as_str().to_owned(),
        detail: fact.detail.clone(),
        at: rfc3339(now),
    });
    if current.is_none() {
        // Describe the new transaction (what it is, for whom), but not its outcome.
        let d = &fact.detail;
        let described = Detail {
            amount: d.amount,
            product_code: d.product_code.clone(),
            customer_id: d.customer_id.clone(),
            provider_transaction_id: d.provider_transaction_id.clone(),
            order_id: d.order_id.clone(),
            ..Detail::default()
        };
        rec.merge(&described, true);
    }
    rec.updated_at = now;
    Decision {
        verdict: V::Unconfirmed,
        record: rec,
        changed: true,
        events: Vec::new(),
    }
}

/// An authoritative fact meets a held claim: confirm it, or flag the disagreement.
fn settle_claim(
    current: Option<&TxRecord>,
    fact: &Fact,
    mut decision: Decision,
    now: OffsetDateTime,
) -> Decision {
    let Some(claim) = current.and_then(|c| c.unconfirmed.clone()) else {
        return decision;
    };
    let Some(reported) = fact
        .state
        .filter(|s| s.is_final() || *s == State::PartiallyPaid)
    else {
        // Still pending at the provider: the claim waits.
        return decision;
    };
    let rec = &mut decision.record;
    rec.unconfirmed = None;
    rec.updated_at = now;
    decision.changed = true;
    if claim.state == reported.as_str() {
        // Confirmed: keep what only the callback carried (sn, pin, activation code).
        rec.merge(&claim.detail, false);
        let snapshot = rec.clone();
        for e in &mut decision.events {
            let extra: Vec<(String, serde_json::Value)> = ["payment", "conflict"]
                .iter()
                .filter_map(|k| e.data.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect();
            let extra: Vec<(&str, serde_json::Value)> =
                extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            *e = NewEvent::about(e.event_type, &snapshot, &extra);
        }
    } else {
        let first_flag = !rec.needs_review;
        rec.needs_review = true;
        if first_flag {
            let evidence = json!({
                "callback_claimed_state": claim.state,
                "callback_claimed_response_code": claim.detail.response_code,
                "provider_reported_state": reported.as_str(),
                "provider_reported_response_code": fact.detail.response_code,
            });
            let snapshot = rec.clone();
            decision.events.push(NewEvent::about(
                EventType::TransactionConflict,
                &snapshot,
                &[("conflict", evidence)],
            ));
        }
    }
    decision
}

/// No outcome within the provider's window: flag the transaction and say so once.
pub fn give_up(current: &TxRecord, now: OffsetDateTime) -> Decision {
    if current.needs_review && current.next_check_at.is_none() {
        return unchanged(current, V::Duplicate);
    }
    let mut rec = current.clone();
    rec.needs_review = true;
    rec.updated_at = now;
    let event = NewEvent::about(EventType::TransactionUnresolved, &rec, &[]);
    Decision {
        verdict: V::Applied,
        record: rec,
        changed: true,
        events: vec![event],
    }
}

fn decide_authoritative(
    current: Option<&TxRecord>,
    provider_id: &str,
    fact: &Fact,
    now: OffsetDateTime,
) -> Decision {
    let Some(current) = current else {
        return create(provider_id, fact, now);
    };
    if current.kind != fact.kind {
        return unchanged(current, V::KindMismatch);
    }
    let Some(target) = fact.state.filter(|s| s.applies_to(fact.kind)) else {
        return unchanged(current, V::Unrecognized);
    };
    match fact.kind {
        TxKind::Prepaid | TxKind::Postpaid => decide_simple(current, fact, target, now),
        TxKind::Va => decide_va(current, fact, target, now),
    }
}

fn unchanged(current: &TxRecord, verdict: V) -> Decision {
    Decision {
        verdict,
        record: current.clone(),
        changed: false,
        events: Vec::new(),
    }
}

fn create(provider_id: &str, fact: &Fact, now: OffsetDateTime) -> Decision {
    let mut rec = TxRecord::new(provider_id, &fact.reference, fact.kind, now);
    merge(&mut rec, &fact.detail, true);
    let mut events = Vec::new();
    let verdict = match fact.state.filter(|s| s.applies_to(fact.kind)) {
        Some(target) => {
            if fact.kind == TxKind::Va {
                add_payments(&mut rec, &fact.payments, &mut Vec::new());
            }
            rec.state = target;
            V::Created
        }
        // A message that states nothing lunas can apply creates nothing.
        None => {
            return Decision {
                verdict: V::Unrecognized,
                record: rec,
                changed: false,
                events,
            }
        }
    };
    for p in &rec.payments {
        events.push(NewEvent::about(
            EventType::VaPaymentReceived,
            &rec,
            &[("payment", json!(p))],
        ));
    }
    if verdict == V::Created {
        if let Some(e) = EventType::for_state(rec.state) {
            events.push(NewEvent::about(e, &rec, &[]));
        }
    }
    Decision {
        verdict,
        record: rec,
        changed: true,
        events,
    }
}

/// Prepaid and postpaid: `pending` → `succeeded` | `failed`.
fn decide_simple(current: &TxRecord, fact: &Fact, target: State, now: OffsetDateTime) -> Decision {
    let mut rec = current.clone();
    if rec.state == target {
        // Same state again: merge only what was missing (late sn, pin, activation code).
        if merge(&mut rec, &fact.detail, false) {
            rec.updated_at = now;
            if !target.is_final() {
                // Detail of a transaction still in process (its price, the provider's id) is
                // kept quietly; the outcome event will carry it.
                return Decision {
                    verdict: V::Duplicate,
                    record: rec,
                    changed: true,
                    events: Vec::new(),
                };
            }
            let event = NewEvent::about(EventType::TransactionUpdated, &rec, &[]);
            return Decision {
                verdict: V::Updated,
                record: rec,
                changed: true,
                events: vec![event],
            };
        }
        return unchanged(current, V::Duplicate);
    }
    if rec.state.is_final() {
        if !target.is_final() {
            return unchanged(current, V::Stale);
        }
        return conflict(current, fact, target, now);
    }
    rec.state = target;
    merge(&mut rec, &fact.detail, true);
    rec.updated_at = now;
    let events = EventType::for_state(target)
        .map(|e| vec![NewEvent::about(e, &rec, &[])])
        .unwrap_or_default();
    Decision {
        verdict: V::Applied,
        record: rec,
        changed: true,
        events,
    }
}

/// A different final state after a final one: keep the state, flag it, say so once.
fn conflict(current: &TxRecord, fact: &Fact, reported: State, now: OffsetDateTime) -> Decision {
    if current.needs_review {
        return unchanged(current, V::Conflict);
    }
    let mut rec = current.clone();
    rec.needs_review = true;
    rec.updated_at = now;
    let evidence = json!({
        "reported_state": reported.as_str(),
        "reported_response_code": fact.detail.response_code,
        "reported_message": fact.detail.message,
    });
    let event = NewEvent::about(
        EventType::TransactionConflict,
        &rec,
        &[("conflict", evidence)],
    );
    Decision {
        verdict: V::Conflict,
        record: rec,
        changed: true,
        events: vec![event],
    }
}

/// How far along the payment path a VA state is; `None` for the terminal states.
fn va_rank(state: State) -> Option<u8> {
    match state {
        State::AwaitingPayment => Some(0),
        State::PartiallyPaid => Some(1),
        State::Paid => Some(2),
        _ => None,
    }
}

/// Virtual accounts: payments accumulate; the state only moves forward.
fn decide_va(current: &TxRecord, fact: &Fact, target: State, now: OffsetDateTime) -> Decision {
    let mut rec = current.clone();
    let mut new_payments = Vec::new();
    add_payments(&mut rec, &fact.payments, &mut new_payments);
    let moves = match (va_rank(current.state), va_rank(target)) {
        _ if current.state == target => false,
        // Forward along awaiting → partially paid → paid.
        (Some(from), Some(to)) => to > from,
        // An open VA may expire, be canceled or refunded; a paid one only refunded.
        (Some(_), None) => current.state != State::Paid || target == State::Refunded,
        // Expired, canceled, refunded: nothing follows.
        (None, _) => false,
    };
    if moves {
        rec.state = target;
        merge(&mut rec, &fact.detail, true);
    } else if current.state == target {
        merge(&mut rec, &fact.detail, false);
    }
    if !moves && new_payments.is_empty() {
        if rec == *current {
            let terminal = |s: State| va_rank(s).is_none();
            // A single-use VA that was paid cannot also expire or be canceled: that is a
            // different final outcome. A multi-use VA may well expire after payments.
            let paid_then_closed = current.state == State::Paid
                && matches!(target, State::Expired | State::Canceled)
                && fact.detail.multi_use != Some(true);
            return if current.state == target {
                unchanged(current, V::Duplicate)
            } else if (terminal(current.state) && terminal(target)) || paid_then_closed {
                conflict(current, fact, target, now)
            } else {
                unchanged(current, V::Stale)
            };
        }
        rec.updated_at = now;
        if !current.state.is_final() {
            // Detail of a VA still open is kept quietly, as for other kinds.
            return Decision {
                verdict: V::Duplicate,
                record: rec,
                changed: true,
                events: Vec::new(),
            };
        }
        let event = NewEvent::about(EventType::TransactionUpdated, &rec, &[]);
        return Decision {
            verdict: V::Updated,
            record: rec,
            changed: true,
            events: vec![event],
        };
    }
    rec.updated_at = now;
    let mut events: Vec<NewEvent> = new_payments
        .iter()
        .map(|p| NewEvent::about(EventType::VaPaymentReceived, &rec, &[("payment", json!(p))]))
        .collect();
    if moves {
        events.extend(EventType::for_state(target).map(|e| NewEvent::about(e, &rec, &[])));
    }
    let verdict = if moves { V::Applied } else { V::Updated };
    Decision {
        verdict,
        record: rec,
        changed: true,
        events,
    }
}

fn add_payments(rec: &mut TxRecord, payments: &[VaPayment], added: &mut Vec<VaPayment>) {
    for p in payments {
        if !rec
            .payments
            .iter()
            .any(|q| q.reference_id == p.reference_id)
        {
            rec.payments.push(p.clone());
            added.push(p.clone());
        }
    }
    let sum = rec
        .payments
        .iter()
        .try_fold(0i64, |acc, p| acc.checked_add(p.amount));
    rec.total_paid = [rec.total_paid, sum].into_iter().flatten().max();
}

impl TxRecord {
    /// Copies the fields a message carries into the record. With `overwrite`, every carried
    /// field replaces the stored one (a state change reports the current truth); without, only
    /// missing fields are filled. Customer goods (sn, pin, activation code) are never
    /// overwritten once known. Returns whether anything changed.
    pub fn merge(&mut self, d: &Detail, overwrite: bool) -> bool {
        merge(self, d, overwrite)
    }
}

fn merge(rec: &mut TxRecord, d: &Detail, overwrite: bool) -> bool {
    let before = rec.clone();
    fn set<T: Clone>(slot: &mut Option<T>, value: &Option<T>, overwrite: bool) {
        if value.is_some() && (overwrite || slot.is_none()) {
            *slot = value.clone();
        }
    }
    set(&mut rec.amount, &d.amount, overwrite);
    set(&mut rec.product_code, &d.product_code, overwrite);
    set(&mut rec.customer_id, &d.customer_id, overwrite);
    set(
        &mut rec.provider_transaction_id,
        &d.provider_transaction_id,
        overwrite,
    );
    set(&mut rec.order_id, &d.order_id, overwrite);
    set(&mut rec.response_code, &d.response_code, overwrite);
    set(&mut rec.message, &d.message, overwrite);
    set(&mut rec.balance_after, &d.balance_after, overwrite);
    set(&mut rec.serial_number, &d.serial_number, false);
    set(&mut rec.pin, &d.pin, false);
    set(&mut rec.activation_code, &d.activation_code, false);
    if let Some(paid) = d.total_paid {
        rec.total_paid = Some(rec.total_paid.map_or(paid, |p| p.max(paid)));
    }
    *rec != before
}
