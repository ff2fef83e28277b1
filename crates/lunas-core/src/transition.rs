//! The transition rules (the README's transition rules): how a verified message changes a transaction.
//!
//! - A final state never moves backwards; a pending (or earlier) state after it is *stale*.
//! - The same final state again is a *duplicate*: recorded, no new event.
//! - A different final state after a final one is a *conflict*: the state is kept,
//!   `needs_review` is set and `transaction.conflict` is emitted. Every distinct contradiction
//!   raises its own alarm (also after give-up or another flag); the same one replayed raises
//!   none (see [`Flag`]).
//! - An unknown ref is *created* from a verified message.
//! - Late detail (an `sn` after success) is merged and emitted as `transaction.updated`.
//! - What was asked for is never rewritten: another product, customer, a price above the known
//!   amount (a VA amount other than the created one) keeps the known value, applies the outcome,
//!   flags the transaction and emits `transaction.mismatch`. A message naming another provider
//!   transaction (`tr_id`, `transaction_id`, `order_id`) is not applied at all.
//! - Customer goods (sn, pin, activation code) come only from a message that settles the
//!   transaction as a success; an empty value is no value; a second, different value is a
//!   conflict.
//! - Money that arrives is never dropped: each distinct payment (`reference_id`) is one
//!   `va.payment_received` with the running total; a payment after a final state is recorded,
//!   announced and flagged. A VA is `paid` only when the paid total covers its amount.
//! - An inferred failure (a grace period ran out) is provisional: flagged, watched until the
//!   provider's window ends, and overturned by any real outcome.

use lunas_protocol::{State, TxKind};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::model::{
    rfc3339, to_millis, Basis, Claim, Detail, EventType, Fact, Flag, NewEvent,
    ObservationVerdict as V, Trust, TxRecord, VaPayment, VaRefund, MAX_FLAGS,
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
/// that would move money or settle anything — a final state, a payment, a refund, customer
/// goods — is not applied: it is kept as the transaction's [`TxRecord::unconfirmed`] claim
/// until an authoritative fact (a status check) arrives. That fact then decides: the same
/// outcome commits (with the claim's goods), a different one commits the provider's outcome
/// and flags the disagreement; payments the provider does not show are never applied.
///
/// Every event about the transaction carries `previous_state`: its state before this message.
pub fn decide(
    current: Option<&TxRecord>,
    provider_id: &str,
    fact: &Fact,
    trust: Trust,
    now: OffsetDateTime,
) -> Decision {
    let fact = clean(fact);
    let decision = decide_authoritative(current, provider_id, &fact, now);
    let mut decision = match trust {
        Trust::NeedsConfirmation if moves_anything(current, &decision) => {
            hold(current, provider_id, &fact, &decision, now)
        }
        Trust::NeedsConfirmation => decision,
        Trust::Authoritative => settle_claim(current, &fact, decision, now),
    };
    let previous = current.map(|c| c.state.as_str());
    for e in &mut decision.events {
        if let Value::Object(m) = &mut e.data {
            m.insert("previous_state".into(), json!(previous));
        }
    }
    decision
}

/// A person's decision about a flagged transaction (the README's review API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The final state chosen (kept or set).
    pub state: State,
    /// Why: shown in the timeline and carried by `transaction.resolved`.
    pub note: String,
    /// Who: the token's name, the dashboard, or the command line's user.
    pub by: String,
}

/// Applies a resolution: clears `needs_review`, keeps or sets the chosen final state, stops
/// whatever lunas was still waiting for (a held claim, a provisional failure's watch), and
/// emits the state's own event when it changed, then `transaction.resolved`. The flags stay
/// in the record, so a replay of a contradiction already seen does not raise it again.
pub fn resolve(current: &TxRecord, r: &Resolution, now: OffsetDateTime) -> Decision {
    let mut rec = current.clone();
    let state_changed = rec.state != r.state;
    rec.state = r.state;
    rec.needs_review = false;
    rec.unconfirmed = None;
    rec.extra.inferred = None;
    rec.extra.watch_until = None;
    rec.updated_at = now;
    let mut events = Vec::new();
    if state_changed {
        events.extend(EventType::for_state(r.state).map(|e| NewEvent::about(e, &rec, &[])));
    }
    events.push(NewEvent::about(
        EventType::TransactionResolved,
        &rec,
        &[(
            "resolution",
            json!({"state": r.state.as_str(), "note": r.note, "by": r.by, "at": rfc3339(now)}),
        )],
    ));
    for e in &mut events {
        if let Value::Object(m) = &mut e.data {
            m.insert("previous_state".into(), json!(current.state.as_str()));
        }
    }
    Decision {
        verdict: V::Resolved,
        record: rec,
        changed: true,
        events,
    }
}

/// No outcome within the provider's window: flag the transaction and say so once. A watched
/// final state (a provisional failure, an open VA) is only no longer watched.
pub fn give_up(current: &TxRecord, now: OffsetDateTime) -> Decision {
    let mut rec = current.clone();
    if current.state.is_final() && current.unconfirmed.is_none() {
        rec.extra.watch_until = None;
        let changed = rec != *current;
        return Decision {
            verdict: V::Duplicate,
            record: rec,
            changed,
            events: Vec::new(),
        };
    }
    if !raise(&mut rec, "unresolved", "unresolved".into(), now) {
        return unchanged(current, V::Duplicate);
    }
    rec.updated_at = now;
    let event = NewEvent::about(EventType::TransactionUnresolved, &rec, &[]);
    Decision {
        verdict: V::Applied,
        record: rec,
        changed: true,
        events: vec![event],
    }
}

/// An empty or blank good is no good: it never counts as a token.
fn clean(fact: &Fact) -> Fact {
    let mut f = fact.clone();
    for slot in [
        &mut f.detail.serial_number,
        &mut f.detail.pin,
        &mut f.detail.activation_code,
    ] {
        if slot.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *slot = None;
        }
    }
    f
}

/// Whether an (authoritative) decision would move money or settle anything.
fn moves_anything(current: Option<&TxRecord>, d: &Decision) -> bool {
    if !matches!(d.verdict, V::Created | V::Applied | V::Updated) {
        return false;
    }
    let r = &d.record;
    let settles = |s: State| s.is_final() || s == State::PartiallyPaid;
    let Some(c) = current else {
        return settles(r.state) || r.total_paid.unwrap_or(0) > 0;
    };
    (r.state != c.state && settles(r.state))
        || r.total_paid.unwrap_or(0) > c.total_paid.unwrap_or(0)
        || r.payments.len() > c.payments.len()
        || r.extra.refunds.len() > c.extra.refunds.len()
        || r.serial_number != c.serial_number
        || r.pin != c.pin
        || r.activation_code != c.activation_code
}

/// Keeps a claimed outcome without applying it.
fn hold(
    current: Option<&TxRecord>,
    provider_id: &str,
    fact: &Fact,
    would: &Decision,
    now: OffsetDateTime,
) -> Decision {
    let mut rec = current
        .cloned()
        .unwrap_or_else(|| TxRecord::new(provider_id, &fact.reference, fact.kind, now));
    rec.unconfirmed = Some(Claim {
        state: would.record.state.as_str().to_owned(),
        detail: fact.detail.clone(),
        at: rfc3339(now),
        payments: fact.payments.clone(),
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
        fill(&mut rec, &described);
        fill_terms(&mut rec, d);
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
    let about_it = matches!(
        decision.verdict,
        V::Applied | V::Updated | V::Duplicate | V::Conflict | V::Stale
    );
    if !about_it
        || fact.state.is_none()
        || matches!(
            fact.basis,
            Basis::Unanswered | Basis::Contradictory(_) | Basis::Unrecognized(_)
        )
    {
        return decision;
    }
    let reported = decision.record.state;
    if !(reported.is_final() || reported == State::PartiallyPaid) {
        // Still open at the provider: the claim waits.
        return decision;
    }
    let rec = &mut decision.record;
    rec.unconfirmed = None;
    rec.updated_at = now;
    decision.changed = true;
    let mut later = Vec::new();
    if claim.state == reported.as_str() {
        // Confirmed: keep what only the callback carried (sn, pin, activation code).
        fill(rec, &claim.detail);
        if reported == State::Succeeded {
            later.extend(merge_goods(rec, &claim.detail, now));
        }
        for e in &mut decision.events {
            patch_detail(&mut e.data, rec);
        }
        let missing: Vec<&VaPayment> = claim
            .payments
            .iter()
            .filter(|p| {
                !rec.payments
                    .iter()
                    .any(|q| q.reference_id == p.reference_id)
            })
            .collect();
        if !missing.is_empty() {
            let key = missing
                .iter()
                .map(|p| p.reference_id.as_str())
                .collect::<Vec<_>>()
                .join(",");
            if raise(rec, "unconfirmed_payment", key, now) {
                later.push((
                    EventType::TransactionConflict,
                    vec![(
                        "conflict",
                        json!({
                            "reason": "unconfirmed_payment",
                            "callback_claimed_payments": missing,
                            "provider_reported_total_paid": rec.total_paid,
                        }),
                    )],
                ));
            }
        }
    } else if raise(rec, "conflict", format!("state:{}", claim.state), now) {
        // The same key as an ordinary conflict: a replay of the claim after the outcome is
        // settled is the same contradiction, not a new one.
        later.push((
            EventType::TransactionConflict,
            vec![(
                "conflict",
                json!({
                    "reason": "callback_not_confirmed",
                    "callback_claimed_state": claim.state,
                    "callback_claimed_response_code": claim.detail.response_code,
                    "callback_claimed_payments": claim.payments,
                    "provider_reported_state": reported.as_str(),
                    "provider_reported_response_code": fact.detail.response_code,
                }),
            )],
        ));
    }
    let snapshot = rec.clone();
    for (t, extra) in later {
        decision.events.push(NewEvent::about(t, &snapshot, &extra));
    }
    decision
}

/// Overwrites, in an event already built, the fields a confirmed claim may have filled in.
fn patch_detail(data: &mut Value, rec: &TxRecord) {
    let full = rec.to_json();
    for k in [
        "amount",
        "product_code",
        "customer_id",
        "provider_transaction_id",
        "serial_number",
        "pin",
        "activation_code",
        "needs_review",
        "unconfirmed_state",
    ] {
        if let Value::Object(m) = data {
            match full.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
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

/// Flags `rec` for review for a contradiction not seen before. Returns whether it is new (and
/// so must be announced); a contradiction already flagged changes nothing, and past
/// [`MAX_FLAGS`] the transaction stays flagged without new alarms.
fn raise(rec: &mut TxRecord, reason: &str, key: String, now: OffsetDateTime) -> bool {
    if rec
        .extra
        .flags
        .iter()
        .any(|f| f.reason == reason && f.key == key)
    {
        return false;
    }
    rec.needs_review = true;
    if rec.extra.flags.len() >= MAX_FLAGS {
        return false;
    }
    rec.extra.flags.push(Flag {
        reason: reason.to_owned(),
        key,
        at: rfc3339(now),
    });
    true
}

/// A short, stable digest, so that a flag's key never holds a customer's goods in clear.
fn digest(value: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in value.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Events a decision will emit, built from the final record when the decision is done (so each
/// carries the final flags), with per-event members such as a payment's running total.
#[derive(Default)]
struct Pending {
    events: Vec<(EventType, Vec<(&'static str, Value)>)>,
}

impl Pending {
    fn push(&mut self, t: EventType, extra: Vec<(&'static str, Value)>) {
        self.events.push((t, extra));
    }

    fn build(self, rec: &TxRecord) -> Vec<NewEvent> {
        self.events
            .into_iter()
            .map(|(t, extra)| NewEvent::about(t, rec, &extra))
            .collect()
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
    if let Basis::Contradictory(why) = &fact.basis {
        return contradictory(current, fact, "contradictory_message", why, now);
    }
    if let Basis::Unrecognized(why) = &fact.basis {
        return contradictory(current, fact, "unrecognized_status", why, now);
    }
    if let Some(d) = other_transaction(current, fact, now) {
        return d;
    }
    let Some(target) = fact.state.filter(|s| s.applies_to(fact.kind)) else {
        return unchanged(current, V::Unrecognized);
    };
    let mut d = match fact.kind {
        TxKind::Prepaid | TxKind::Postpaid => decide_simple(current, fact, target, now),
        TxKind::Va => decide_va(current, fact, target, now),
    };
    track_unanswered(current, fact, &mut d, now);
    d
}

/// Keeps when the provider first said it has no record of the transaction, so that grace
/// periods count from there; any other answer ends the streak.
fn track_unanswered(current: &TxRecord, fact: &Fact, d: &mut Decision, now: OffsetDateTime) {
    let since = match fact.basis {
        Basis::Unanswered => current.extra.unanswered_since.or(Some(to_millis(now))),
        _ => None,
    };
    if d.record.extra.unanswered_since != since {
        d.record.extra.unanswered_since = since;
        d.changed = true;
    }
    if matches!(fact.basis, Basis::Unanswered) && matches!(d.verdict, V::Duplicate | V::Stale) {
        d.verdict = V::NotFound;
    }
}

/// A message that contradicts itself: recorded, nothing applied, flagged and announced once.
/// A message that cannot settle anything (it contradicts itself, or states a value lunas does
/// not know) flags the transaction once per distinct message, with `reason`.
fn contradictory(
    current: &TxRecord,
    fact: &Fact,
    reason: &str,
    why: &str,
    now: OffsetDateTime,
) -> Decision {
    let mut rec = current.clone();
    if !raise(&mut rec, reason, digest(why), now) {
        return unchanged(current, V::Conflict);
    }
    rec.updated_at = now;
    let event = NewEvent::about(
        EventType::TransactionConflict,
        &rec,
        &[(
            "conflict",
            json!({
                "reason": reason,
                "why": why,
                "reported_state": fact.state.map(State::as_str),
                "reported_response_code": fact.detail.response_code,
                "reported_message": fact.detail.message,
            }),
        )],
    );
    Decision {
        verdict: V::Conflict,
        record: rec,
        changed: true,
        events: vec![event],
    }
}

/// A message that names this ref but another provider transaction is not about this one: it
/// is not applied; the transaction is flagged and `transaction.mismatch` says what differs.
fn other_transaction(current: &TxRecord, fact: &Fact, now: OffsetDateTime) -> Option<Decision> {
    let d = &fact.detail;
    let mut differs = Vec::new();
    // IAK postpaid numbers its inquiry and its payment separately; only prepaid `tr_id`s and
    // MCPayment ids name one transaction for its whole life.
    if current.kind != TxKind::Postpaid {
        differs.extend(differing(
            "provider_transaction_id",
            &current.provider_transaction_id,
            &d.provider_transaction_id,
        ));
    }
    differs.extend(differing("order_id", &current.order_id, &d.order_id));
    if differs.is_empty() {
        return None;
    }
    let mut rec = current.clone();
    let key = differs
        .iter()
        .map(|m| format!("{}={}", m["field"].as_str().unwrap_or(""), m["reported"]))
        .collect::<Vec<_>>()
        .join(";");
    if !raise(&mut rec, "mismatch", key, now) {
        return Some(unchanged(current, V::Mismatch));
    }
    rec.updated_at = now;
    let event = NewEvent::about(
        EventType::TransactionMismatch,
        &rec,
        &[
            ("mismatch", Value::Array(differs)),
            ("reported_state", json!(fact.state.map(State::as_str))),
        ],
    );
    Some(Decision {
        verdict: V::Mismatch,
        record: rec,
        changed: true,
        events: vec![event],
    })
}

fn differing(field: &str, known: &Option<String>, reported: &Option<String>) -> Option<Value> {
    match (known, reported) {
        (Some(k), Some(r)) if !k.trim().eq_ignore_ascii_case(r.trim()) => {
            Some(json!({"field": field, "asked": k, "reported": r}))
        }
        _ => None,
    }
}

/// The reported values that differ from what is known (asked for, or first reported): they
/// are kept out of the record and listed for `transaction.mismatch`.
fn mismatches(rec: &TxRecord, d: &Detail) -> Vec<Value> {
    let mut out = Vec::new();
    out.extend(differing(
        "product_code",
        &rec.product_code,
        &d.product_code,
    ));
    out.extend(differing("customer_id", &rec.customer_id, &d.customer_id));
    if let (Some(known), Some(reported)) = (rec.amount, d.amount) {
        let bad = match rec.kind {
            // A price above what was asked is money the merchant did not agree to spend.
            TxKind::Prepaid | TxKind::Postpaid => reported > known,
            // A VA takes the amount it was created for, no other.
            TxKind::Va => reported != known,
        };
        if bad {
            out.push(json!({"field": "amount", "asked": known, "reported": reported}));
        }
    }
    out
}

/// Flags and announces the mismatches not seen before.
fn announce_mismatches(
    rec: &mut TxRecord,
    found: Vec<Value>,
    pending: &mut Pending,
    now: OffsetDateTime,
) {
    let fresh: Vec<Value> = found
        .into_iter()
        .filter(|m| {
            let key = format!("{}={}", m["field"].as_str().unwrap_or(""), m["reported"]);
            raise(rec, "mismatch", key, now)
        })
        .collect();
    if !fresh.is_empty() {
        pending.push(
            EventType::TransactionMismatch,
            vec![("mismatch", Value::Array(fresh))],
        );
    }
}

fn create(provider_id: &str, fact: &Fact, now: OffsetDateTime) -> Decision {
    let Some(target) = fact.state.filter(|s| s.applies_to(fact.kind)) else {
        // A message that states nothing lunas can apply creates nothing.
        return Decision {
            verdict: V::Unrecognized,
            record: TxRecord::new(provider_id, &fact.reference, fact.kind, now),
            changed: false,
            events: Vec::new(),
        };
    };
    if matches!(fact.basis, Basis::Contradictory(_) | Basis::Unrecognized(_)) {
        return Decision {
            verdict: V::Unrecognized,
            record: TxRecord::new(provider_id, &fact.reference, fact.kind, now),
            changed: false,
            events: Vec::new(),
        };
    }
    let initial = TxRecord::new(provider_id, &fact.reference, fact.kind, now);
    let mut d = match fact.kind {
        TxKind::Prepaid | TxKind::Postpaid => decide_simple(&initial, fact, target, now),
        TxKind::Va => decide_va(&initial, fact, target, now),
    };
    if d.record.state == State::Pending {
        // A transaction first heard of as pending is announced as such.
        d.events.insert(
            0,
            NewEvent::about(EventType::TransactionPending, &d.record, &[]),
        );
    }
    d.verdict = V::Created;
    d.changed = true;
    d
}

/// Prepaid and postpaid: `pending` → `succeeded` | `failed`.
fn decide_simple(current: &TxRecord, fact: &Fact, target: State, now: OffsetDateTime) -> Decision {
    let mut rec = current.clone();
    let mut pending = Pending::default();
    let found = mismatches(&rec, &fact.detail);
    let verdict;
    if let Basis::Inferred {
        reason,
        watch_until,
    } = &fact.basis
    {
        // An inference never overrides anything the provider said.
        if current.state.is_final() {
            return unchanged(current, V::Stale);
        }
        rec.state = target;
        overwrite_status(&mut rec, &fact.detail);
        rec.extra.inferred = Some(reason.clone());
        rec.extra.watch_until = Some(to_millis(*watch_until));
        raise(&mut rec, "inferred_failure", "inferred".into(), now);
        pending.push(EventType::for_state(target).expect("a final state"), vec![]);
        verdict = V::Applied;
    } else if current.extra.inferred.is_some() {
        // A real outcome wins over an inferred one.
        match target {
            State::Succeeded => {
                rec.state = State::Succeeded;
                overwrite_status(&mut rec, &fact.detail);
                fill(&mut rec, &fact.detail);
                pending
                    .events
                    .extend(merge_goods(&mut rec, &fact.detail, now));
                pending
                    .events
                    .insert(0, (EventType::TransactionSucceeded, vec![]));
                verdict = V::Applied;
            }
            State::Failed => {
                overwrite_status(&mut rec, &fact.detail);
                fill(&mut rec, &fact.detail);
                pending.push(EventType::TransactionUpdated, vec![]);
                verdict = V::Updated;
            }
            _ => return unchanged(current, V::Stale),
        }
        rec.extra.inferred = None;
        rec.extra.watch_until = None;
    } else if rec.state == target {
        // Same state again: fill only what was missing (late sn, pin, activation code).
        fill(&mut rec, &fact.detail);
        if target == State::Succeeded {
            pending
                .events
                .extend(merge_goods(&mut rec, &fact.detail, now));
        }
        let detail_changed = {
            let mut a = rec.clone();
            let mut b = current.clone();
            a.extra.flags.clear();
            b.extra.flags.clear();
            a.needs_review = false;
            b.needs_review = false;
            a != b
        };
        verdict = if detail_changed && target.is_final() {
            pending
                .events
                .insert(0, (EventType::TransactionUpdated, vec![]));
            V::Updated
        } else {
            // Detail of a transaction still in process (its price, the provider's id) is kept
            // quietly; the outcome event will carry it.
            V::Duplicate
        };
    } else if rec.state.is_final() {
        if !target.is_final() {
            verdict = V::Stale;
        } else {
            verdict = V::Conflict;
            if raise(
                &mut rec,
                "conflict",
                format!("state:{}", target.as_str()),
                now,
            ) {
                pending.push(
                    EventType::TransactionConflict,
                    vec![("conflict", reported_conflict("state_changed", fact))],
                );
            }
        }
    } else {
        rec.state = target;
        overwrite_status(&mut rec, &fact.detail);
        fill(&mut rec, &fact.detail);
        let goods = if target == State::Succeeded {
            merge_goods(&mut rec, &fact.detail, now)
        } else {
            Vec::new()
        };
        if let Some(e) = EventType::for_state(target) {
            pending.push(e, vec![]);
        }
        pending.events.extend(goods);
        if let (State::Succeeded, Some(before), Some(after)) =
            (target, current.balance_after, fact.detail.balance_after)
        {
            // A purchase costs money: the deposit it reports cannot rise while it succeeds.
            if after > before && raise(&mut rec, "balance_rose", format!("{before}>{after}"), now) {
                pending.push(
                    EventType::TransactionConflict,
                    vec![(
                        "conflict",
                        json!({
                            "reason": "balance_rose",
                            "balance_before": before,
                            "balance_reported": after,
                        }),
                    )],
                );
            }
        }
        verdict = V::Applied;
    }
    announce_mismatches(&mut rec, found, &mut pending, now);
    finish(current, rec, verdict, pending, now)
}

/// Wraps up a decision: `changed` when the record differs, events built from the final record.
fn finish(
    current: &TxRecord,
    mut rec: TxRecord,
    verdict: V,
    pending: Pending,
    now: OffsetDateTime,
) -> Decision {
    let changed = rec != *current;
    if changed {
        rec.updated_at = now;
    }
    let events = pending.build(&rec);
    Decision {
        verdict,
        record: rec,
        changed,
        events,
    }
}

/// What a contradicting message reported, for `transaction.conflict`.
fn reported_conflict(reason: &str, fact: &Fact) -> Value {
    let d = &fact.detail;
    json!({
        "reason": reason,
        "reported_state": fact.state.map(State::as_str),
        "reported_response_code": d.response_code,
        "reported_message": d.message,
        "reported_amount": d.amount,
        "reported_product_code": d.product_code,
        "reported_customer_id": d.customer_id,
        "reported_serial_number": d.serial_number,
        "reported_pin": d.pin,
        "reported_activation_code": d.activation_code,
        "reported_total_paid": d.total_paid,
        "reported_payments": fact.payments,
    })
}

/// Customer goods from a message that settles the transaction as a success: a missing one is
/// filled in; a different one is a conflict (announced once per value), the first kept.
fn merge_goods(
    rec: &mut TxRecord,
    d: &Detail,
    now: OffsetDateTime,
) -> Vec<(EventType, Vec<(&'static str, Value)>)> {
    let mut out = Vec::new();
    for (field, reported) in [
        ("serial_number", &d.serial_number),
        ("pin", &d.pin),
        ("activation_code", &d.activation_code),
    ] {
        let Some(reported) = reported else { continue };
        let slot = match field {
            "serial_number" => &mut rec.serial_number,
            "pin" => &mut rec.pin,
            _ => &mut rec.activation_code,
        };
        match slot {
            None => *slot = Some(reported.clone()),
            Some(kept) if kept.trim() == reported.trim() => {}
            Some(kept) => {
                let kept = kept.clone();
                let key = format!("{field}:{}", digest(reported.trim()));
                if raise(rec, "different_goods", key, now) {
                    out.push((
                        EventType::TransactionConflict,
                        vec![(
                            "conflict",
                            json!({
                                "reason": "different_goods",
                                "field": field,
                                "kept": kept,
                                "reported": reported,
                            }),
                        )],
                    ));
                }
            }
        }
    }
    out
}

/// Fills in the descriptive fields the record does not know yet. What is known (asked for, or
/// first reported) is never overwritten: a different value is a mismatch.
fn fill(rec: &mut TxRecord, d: &Detail) {
    fn set<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
        if slot.is_none() && value.is_some() {
            *slot = value.clone();
        }
    }
    set(&mut rec.amount, &d.amount);
    set(&mut rec.product_code, &d.product_code);
    set(&mut rec.customer_id, &d.customer_id);
    set(&mut rec.provider_transaction_id, &d.provider_transaction_id);
    set(&mut rec.order_id, &d.order_id);
    set(&mut rec.response_code, &d.response_code);
    set(&mut rec.message, &d.message);
    set(&mut rec.balance_after, &d.balance_after);
}

/// A state change reports the current truth about the outcome: its code, message, balance.
fn overwrite_status(rec: &mut TxRecord, d: &Detail) {
    if d.response_code.is_some() {
        rec.response_code = d.response_code.clone();
    }
    if d.message.is_some() {
        rec.message = d.message.clone();
    }
    if d.balance_after.is_some() {
        rec.balance_after = d.balance_after;
    }
}

/// VA terms (single or multi use, system, expiry) from the first message that states them.
fn fill_terms(rec: &mut TxRecord, d: &Detail) {
    let x = &mut rec.extra;
    if x.multi_use.is_none() {
        x.multi_use = d.multi_use;
    }
    if x.payment_system.is_none() {
        x.payment_system = d.payment_system.clone();
    }
    if x.expires_at.is_none() {
        x.expires_at = d.expires_at.map(to_millis);
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

/// How many payments MCPayment's inquiry lists at most (the latest ones): a shorter history
/// is complete, so it must add up to the reported total.
const LISTED_PAYMENTS: usize = 5;

/// Virtual accounts: payments accumulate; the state only moves forward.
fn decide_va(current: &TxRecord, fact: &Fact, target: State, now: OffsetDateTime) -> Decision {
    let mut rec = current.clone();
    let mut pending = Pending::default();
    let mut found = mismatches(&rec, &fact.detail);
    let d = &fact.detail;
    // What the VA was before this message decides what this message may do.
    let multi_use = rec.extra.multi_use == Some(true);
    let open = rec
        .extra
        .payment_system
        .as_deref()
        .or(d.payment_system.as_deref())
        .is_some_and(|s| s.eq_ignore_ascii_case("OPEN"));
    let takes_more = multi_use || open;
    fill(&mut rec, d);
    fill_terms(&mut rec, d);

    // Payments: each distinct reference once, the first amount kept; the running total grows
    // by what each adds, and by what a reported total says beyond the listed payments.
    let before = rec.total_paid.unwrap_or(0);
    let mut sum: i64 = rec.payments.iter().map(|p| p.amount).sum();
    let mut running = before;
    let mut received = Vec::new();
    // A payment of nothing is no payment.
    for p in fact.payments.iter().filter(|p| p.amount > 0) {
        if let Some(known) = rec
            .payments
            .iter()
            .find(|q| q.reference_id == p.reference_id)
        {
            if known.amount != p.amount {
                found.push(json!({
                    "field": format!("payment {}", p.reference_id),
                    "asked": known.amount,
                    "reported": p.amount,
                }));
            }
            continue;
        }
        rec.payments.push(p.clone());
        sum = sum.saturating_add(p.amount);
        let total = running.max(sum);
        if total > running {
            received.push((json!(p), total));
            running = total;
        }
    }
    if let Some(reported) = d.total_paid.filter(|t| *t > running) {
        received.push((
            json!({"reference_id": null, "amount": reported - running, "paid_time": null}),
            reported,
        ));
        running = reported;
    }
    if let (Some(total), false) = (d.total_paid, fact.payments.is_empty()) {
        let listed: i64 = fact.payments.iter().map(|p| p.amount).sum();
        if listed > total || (listed < total && fact.payments.len() < LISTED_PAYMENTS) {
            found.push(json!({
                "field": "total_paid_amount",
                "asked": listed,
                "reported": total,
            }));
        }
    }
    if running > 0 || rec.total_paid.is_some() {
        rec.total_paid = Some(running);
    }
    let money_in = running > before;

    // Refunds: each distinct (time, amount) once.
    let mut refunded = Vec::new();
    for r in &fact.refunds {
        if !rec.extra.refunds.contains(r) {
            rec.extra.refunds.push(r.clone());
            refunded.push(r.clone());
        }
    }

    // The state the message supports: `paid` only when the money covers the amount.
    let required = rec.amount.unwrap_or(0);
    let covered = if open || required <= 0 {
        running > 0
    } else {
        running >= required
    };
    let effective = match target {
        State::Paid if !covered && running > 0 => State::PartiallyPaid,
        State::Paid if !covered => State::AwaitingPayment,
        State::AwaitingPayment if running > 0 => State::PartiallyPaid,
        t => t,
    };
    let moves = match (va_rank(current.state), va_rank(effective)) {
        _ if current.state == effective => false,
        (Some(from), Some(to)) => to > from,
        // An open VA may expire, be canceled or refunded; a paid one only refunded.
        (Some(_), None) => current.state != State::Paid || effective == State::Refunded,
        // Expired, canceled, refunded: nothing follows.
        (None, _) => false,
    };
    let mut verdict = if moves {
        V::Applied
    } else if current.state == effective {
        V::Duplicate
    } else {
        V::Stale
    };
    if moves {
        rec.state = effective;
        overwrite_status(&mut rec, d);
    }

    for (payment, total) in received {
        pending.push(
            EventType::VaPaymentReceived,
            vec![("payment", payment), ("total_paid", json!(total))],
        );
    }
    if moves {
        if let Some(e) = EventType::for_state(effective) {
            pending.push(e, refund_members(&rec, &refunded));
        }
    } else if !refunded.is_empty() && rec.state == State::Refunded {
        // A further refund of a refunded VA.
        pending.push(EventType::VaRefunded, refund_members(&rec, &refunded));
    }
    if (money_in || !refunded.is_empty()) && !moves {
        verdict = V::Updated;
    }

    // Contradictions, each announced once.
    let terminal = |s: State| va_rank(s).is_none();
    let mut conflicts: Vec<(&str, String, Value)> = Vec::new();
    if money_in && terminal(current.state) {
        conflicts.push((
            "payment_after_final",
            format!("{}:{running}", current.state.as_str()),
            json!({"reason": "payment_after_final", "state": current.state.as_str(), "total_paid": running}),
        ));
    }
    if money_in && current.state == State::Paid && !takes_more {
        conflicts.push((
            "paid_again",
            format!("{running}"),
            json!({"reason": "paid_again", "total_paid": running, "amount": rec.amount}),
        ));
    }
    if !takes_more && current.state != State::Paid && required > 0 && running > required && money_in
    {
        conflicts.push((
            "overpaid",
            format!("{running}"),
            json!({"reason": "overpaid", "total_paid": running, "amount": required}),
        ));
    }
    if moves && matches!(effective, State::Expired | State::Canceled) && running > 0 {
        conflicts.push((
            "closed_with_money",
            effective.as_str().to_owned(),
            json!({"reason": "closed_with_money", "state": effective.as_str(), "total_paid": running, "amount": rec.amount}),
        ));
    }
    let contradicts_state = !moves
        && current.state != effective
        && ((terminal(current.state) && terminal(effective))
            || (current.state == State::Paid
                && matches!(effective, State::Expired | State::Canceled)
                && !takes_more));
    if contradicts_state {
        conflicts.push((
            "conflict",
            format!("state:{}", effective.as_str()),
            reported_conflict("state_changed", fact),
        ));
        verdict = V::Conflict;
    }
    if let Some(refunded_total) = rec.extra.total_refunded() {
        if refunded_total > running && !refunded.is_empty() {
            conflicts.push((
                "refund_exceeds_payments",
                format!("{refunded_total}"),
                json!({"reason": "refund_exceeds_payments", "total_refunded": refunded_total, "total_paid": running}),
            ));
        }
    }
    for (reason, key, evidence) in conflicts {
        if raise(&mut rec, reason, key, now) {
            pending.push(EventType::TransactionConflict, vec![("conflict", evidence)]);
        }
    }

    // An open or multi-use VA that is paid still takes payments: watch it until it expires.
    rec.extra.watch_until = if rec.state == State::Paid && takes_more_now(&rec) {
        rec.extra.expires_at
    } else if terminal(rec.state) || matches!(effective, State::Expired | State::Canceled) {
        None
    } else {
        rec.extra.watch_until
    };

    announce_mismatches(&mut rec, found, &mut pending, now);
    if verdict == V::Duplicate && rec != *current && current.state.is_final() {
        let mut a = rec.clone();
        let mut b = current.clone();
        a.extra.flags.clear();
        b.extra.flags.clear();
        a.needs_review = b.needs_review;
        if a != b {
            // Late detail about a settled VA.
            pending
                .events
                .insert(0, (EventType::TransactionUpdated, vec![]));
            verdict = V::Updated;
        }
    }
    finish(current, rec, verdict, pending, now)
}

fn takes_more_now(rec: &TxRecord) -> bool {
    rec.extra.multi_use == Some(true)
        || rec
            .extra
            .payment_system
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("OPEN"))
}

/// The members of a `va.refunded`: the refunds this message added and the total refunded.
fn refund_members(rec: &TxRecord, added: &[VaRefund]) -> Vec<(&'static str, Value)> {
    if rec.state != State::Refunded {
        return Vec::new();
    }
    vec![
        ("refund", json!(added)),
        ("total_refunded", json!(rec.extra.total_refunded())),
    ]
}

impl TxRecord {
    /// Fills in the descriptive fields a message carries that the record does not know yet
    /// (what a registration or a held claim describes). Known values are never overwritten;
    /// customer goods are not touched (they come only from a message that settles).
    pub fn describe(&mut self, d: &Detail) {
        fill(self, d);
        fill_terms(self, d);
    }
}
