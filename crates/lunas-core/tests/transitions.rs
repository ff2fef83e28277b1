//! The transition rules of the README's transition rules, one scenario per rule.

use lunas_core::{
    decide, give_up, Basis, Detail, EventType, Fact, ObservationVerdict as V, Trust, TxRecord,
    VaPayment,
};
use lunas_protocol::{State, TxKind};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
}

fn prepaid(state: State) -> Fact {
    Fact {
        kind: TxKind::Prepaid,
        reference: "order001".into(),
        state: Some(state),
        detail: Detail {
            response_code: Some(if state == State::Failed { "07" } else { "00" }.into()),
            ..Detail::default()
        },
        payments: vec![],
        refunds: vec![],
        basis: Basis::Reported,
    }
}

fn with_sn(mut f: Fact, sn: &str) -> Fact {
    f.detail.serial_number = Some(sn.into());
    f
}

fn types(d: &lunas_core::Decision) -> Vec<&'static str> {
    d.events.iter().map(|e| e.event_type.as_str()).collect()
}

/// Applies facts in order, as the store would, returning each decision.
fn run(facts: &[Fact]) -> Vec<lunas_core::Decision> {
    let mut current: Option<TxRecord> = None;
    let mut out = Vec::new();
    for f in facts {
        let d = decide(current.as_ref(), "iak", f, Trust::Authoritative, now());
        if d.changed {
            current = Some(d.record.clone());
        }
        out.push(d);
    }
    out
}

#[test]
fn a_verified_callback_for_an_unknown_ref_creates_the_transaction() {
    let d = &run(&[prepaid(State::Succeeded)])[0];
    assert_eq!(d.verdict, V::Created);
    assert_eq!(d.record.state, State::Succeeded);
    assert_eq!(types(d), ["transaction.succeeded"]);
    assert_eq!(d.events[0].data["state"], "succeeded");
}

#[test]
fn pending_then_final_applies_once() {
    let d = run(&[
        prepaid(State::Pending),
        prepaid(State::Succeeded),
        prepaid(State::Succeeded),
    ]);
    assert_eq!(types(&d[0]), ["transaction.pending"]);
    assert_eq!(
        (d[1].verdict, types(&d[1])),
        (V::Applied, vec!["transaction.succeeded"])
    );
    assert_eq!(
        (d[2].verdict, d[2].changed, d[2].events.len()),
        (V::Duplicate, false, 0)
    );
}

#[test]
fn pending_after_final_is_stale_and_changes_nothing() {
    let d = run(&[prepaid(State::Failed), prepaid(State::Pending)]);
    assert_eq!((d[1].verdict, d[1].changed), (V::Stale, false));
    assert_eq!(d[1].record.state, State::Failed);
}

#[test]
fn a_different_final_state_is_a_conflict_flagged_once() {
    let d = run(&[
        prepaid(State::Succeeded),
        prepaid(State::Failed),
        prepaid(State::Failed),
    ]);
    assert_eq!(d[1].verdict, V::Conflict);
    assert_eq!(
        d[1].record.state,
        State::Succeeded,
        "the first final state is kept"
    );
    assert!(d[1].record.needs_review);
    assert_eq!(types(&d[1]), ["transaction.conflict"]);
    assert_eq!(d[1].events[0].data["conflict"]["reported_state"], "failed");
    assert_eq!(
        (d[2].verdict, d[2].events.len()),
        (V::Conflict, 0),
        "already flagged"
    );
}

#[test]
fn a_late_serial_number_is_merged_once_and_never_overwritten() {
    let d = run(&[
        prepaid(State::Succeeded),
        with_sn(prepaid(State::Succeeded), "1234-5678"),
        with_sn(prepaid(State::Succeeded), "9999-9999"),
    ]);
    assert_eq!(
        (d[1].verdict, types(&d[1])),
        (V::Updated, vec!["transaction.updated"])
    );
    assert_eq!(d[1].record.serial_number.as_deref(), Some("1234-5678"));
    assert_eq!(d[2].verdict, V::Duplicate);
    assert_eq!(d[2].record.serial_number.as_deref(), Some("1234-5678"));
}

#[test]
fn a_message_about_another_kind_changes_nothing() {
    let mut f = prepaid(State::Succeeded);
    let d = run(&[f.clone()]);
    f.kind = TxKind::Postpaid;
    let again = decide(Some(&d[0].record), "iak", &f, Trust::Authoritative, now());
    assert_eq!((again.verdict, again.changed), (V::KindMismatch, false));
}

#[test]
fn an_unrecognized_status_is_recorded_without_change() {
    let d = run(&[prepaid(State::Pending)]);
    let mut f = prepaid(State::Pending);
    f.state = None;
    let again = decide(Some(&d[0].record), "iak", &f, Trust::Authoritative, now());
    assert_eq!((again.verdict, again.changed), (V::Unrecognized, false));
}

fn va(state: State, payments: &[(&str, i64)], total_paid: i64) -> Fact {
    Fact {
        kind: TxKind::Va,
        reference: "ext-0001".into(),
        state: Some(state),
        detail: Detail {
            amount: Some(150_000),
            total_paid: Some(total_paid),
            ..Detail::default()
        },
        payments: payments
            .iter()
            .map(|(r, a)| VaPayment {
                reference_id: (*r).into(),
                amount: *a,
                paid_time: None,
            })
            .collect(),
        refunds: vec![],
        basis: Basis::Reported,
    }
}

#[test]
fn partial_payments_accumulate_to_paid() {
    let d = run(&[
        va(State::AwaitingPayment, &[], 0),
        va(State::PartiallyPaid, &[("p1", 50_000)], 50_000),
        va(State::Paid, &[("p1", 50_000), ("p2", 100_000)], 150_000),
        va(State::Paid, &[("p1", 50_000), ("p2", 100_000)], 150_000),
    ]);
    assert!(d[0].events.is_empty(), "a new VA awaits payment silently");
    assert_eq!(
        (d[1].verdict, types(&d[1])),
        (V::Applied, vec!["va.payment_received"])
    );
    assert_eq!(d[1].events[0].data["payment"]["reference_id"], "p1");
    assert_eq!(types(&d[2]), ["va.payment_received", "va.paid"]);
    assert_eq!(d[2].record.total_paid, Some(150_000));
    assert_eq!(d[3].verdict, V::Duplicate);
}

fn multi_use(mut f: Fact, amount: i64) -> Fact {
    f.detail.multi_use = Some(true);
    f.detail.amount = Some(amount);
    f
}

#[test]
fn a_multi_use_va_reports_each_new_payment() {
    let d = run(&[
        multi_use(va(State::Paid, &[("a", 10_000)], 10_000), 10_000),
        multi_use(
            va(State::Paid, &[("a", 10_000), ("b", 10_000)], 20_000),
            10_000,
        ),
    ]);
    assert_eq!(types(&d[0]), ["va.payment_received", "va.paid"]);
    assert_eq!(
        (d[1].verdict, types(&d[1])),
        (V::Updated, vec!["va.payment_received"])
    );
    assert_eq!(d[1].record.payments.len(), 2);
    assert_eq!(d[1].record.total_paid, Some(20_000));
}

#[test]
fn a_paid_va_can_be_refunded_and_a_single_use_one_cannot_also_expire() {
    let d = run(&[
        va(State::Paid, &[("a", 150_000)], 150_000),
        va(State::Expired, &[("a", 150_000)], 150_000),
        va(State::Refunded, &[("a", 150_000)], 150_000),
        va(State::Canceled, &[], 150_000),
    ]);
    assert_eq!(d[1].verdict, V::Conflict, "expired after paid, single-use");
    assert_eq!(d[1].record.state, State::Paid, "the money received is kept");
    assert!(d[1].record.needs_review);
    assert_eq!(types(&d[1]), ["transaction.conflict"]);
    assert_eq!(
        (d[2].verdict, types(&d[2])),
        (V::Applied, vec!["va.refunded"])
    );
    assert_eq!(d[3].verdict, V::Conflict, "canceled after refunded");
    assert_eq!(
        types(&d[3]),
        ["transaction.conflict"],
        "another contradiction raises its own alarm"
    );
}

#[test]
fn a_multi_use_va_may_expire_after_its_payments() {
    let expired = multi_use(va(State::Expired, &[("a", 10_000)], 10_000), 10_000);
    let d = run(&[
        multi_use(va(State::Paid, &[("a", 10_000)], 10_000), 10_000),
        expired,
    ]);
    assert_eq!((d[1].verdict, d[1].record.needs_review), (V::Stale, false));
}

#[test]
fn an_unpaid_va_expires() {
    let d = run(&[
        va(State::AwaitingPayment, &[], 0),
        va(State::Expired, &[], 0),
        va(State::AwaitingPayment, &[], 0),
    ]);
    assert_eq!(types(&d[1]), ["va.expired"]);
    assert_eq!(d[2].verdict, V::Stale);
}

#[test]
fn event_types_round_trip_their_names() {
    for e in EventType::ALL {
        assert_eq!(EventType::parse(e.as_str()), Some(e));
    }
    for v in V::ALL {
        assert_eq!(V::parse(v.as_str()), Some(v));
    }
}

/// Applies (fact, trust) pairs in order.
fn run_trusted(steps: &[(Fact, Trust)]) -> Vec<lunas_core::Decision> {
    let mut current: Option<TxRecord> = None;
    let mut out = Vec::new();
    for (f, t) in steps {
        let d = decide(current.as_ref(), "iak", f, *t, now());
        if d.changed {
            current = Some(d.record.clone());
        }
        out.push(d);
    }
    out
}

#[test]
fn a_claimed_outcome_waits_for_the_provider_and_keeps_the_callbacks_serial_number() {
    let d = run_trusted(&[
        (
            with_sn(prepaid(State::Succeeded), "TOKEN-1"),
            Trust::NeedsConfirmation,
        ),
        (prepaid(State::Pending), Trust::Authoritative),
        (prepaid(State::Succeeded), Trust::Authoritative),
    ]);
    assert_eq!(
        (d[0].verdict, d[0].record.state),
        (V::Unconfirmed, State::Pending)
    );
    assert!(
        d[0].events.is_empty(),
        "nothing is announced before the provider agrees"
    );
    assert_eq!(d[0].record.unconfirmed.as_ref().unwrap().state, "succeeded");
    assert!(
        d[1].record.unconfirmed.is_some(),
        "pending at the provider: the claim waits"
    );
    assert_eq!(d[2].record.state, State::Succeeded);
    assert!(d[2].record.unconfirmed.is_none());
    assert_eq!(d[2].record.serial_number.as_deref(), Some("TOKEN-1"));
    assert_eq!(types(&d[2]), ["transaction.succeeded"]);
    assert_eq!(d[2].events[0].data["serial_number"], "TOKEN-1");
}

#[test]
fn a_forged_outcome_cannot_win_against_the_provider() {
    let d = run_trusted(&[
        (prepaid(State::Pending), Trust::Authoritative),
        (prepaid(State::Succeeded), Trust::NeedsConfirmation),
        (prepaid(State::Failed), Trust::Authoritative),
    ]);
    assert_eq!(d[1].verdict, V::Unconfirmed);
    assert_eq!(
        d[2].record.state,
        State::Failed,
        "the provider's answer is the outcome"
    );
    assert!(d[2].record.needs_review);
    assert_eq!(types(&d[2]), ["transaction.failed", "transaction.conflict"]);
    assert_eq!(
        d[2].events[1].data["conflict"]["callback_claimed_state"],
        "succeeded"
    );
    // A replay of the forged claim after the outcome is settled is an ordinary conflict.
    let again = decide(
        Some(&d[2].record),
        "iak",
        &prepaid(State::Succeeded),
        Trust::NeedsConfirmation,
        now(),
    );
    assert_eq!(
        (again.verdict, again.record.state),
        (V::Conflict, State::Failed)
    );
}

#[test]
fn giving_up_flags_once() {
    let d = run(&[prepaid(State::Pending)]);
    let g = give_up(&d[0].record, now());
    assert!(g.record.needs_review);
    assert_eq!(types(&g), ["transaction.unresolved"]);
}
