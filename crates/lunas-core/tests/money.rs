//! Money correctness: every payment counted, every contradiction flagged, nothing asked for
//! silently rewritten or invented. One scenario per rule; each names the audit finding it
//! answers.

use lunas_core::{
    decide, give_up, Basis, Decision, Detail, Fact, ObservationVerdict as V, Trust, TxRecord,
    VaPayment, VaRefund,
};
use lunas_protocol::{State, TxKind};
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

fn types(d: &Decision) -> Vec<&'static str> {
    d.events.iter().map(|e| e.event_type.as_str()).collect()
}

/// Applies (fact, trust) pairs in order, as the store would, starting from `start`.
fn run_from(start: Option<TxRecord>, steps: &[(Fact, Trust)]) -> Vec<Decision> {
    let mut current = start;
    let mut out = Vec::new();
    for (f, t) in steps {
        let d = decide(current.as_ref(), "p", f, *t, now());
        if d.changed {
            current = Some(d.record.clone());
        }
        out.push(d);
    }
    out
}

fn run(facts: &[Fact]) -> Vec<Decision> {
    let steps: Vec<(Fact, Trust)> = facts
        .iter()
        .map(|f| (f.clone(), Trust::Authoritative))
        .collect();
    run_from(None, &steps)
}

// --- prepaid ------------------------------------------------------------------------------

fn top_up(state: State) -> Fact {
    let rc = match state {
        State::Succeeded => "00",
        State::Failed => "07",
        _ => "39",
    };
    Fact::reported(
        TxKind::Prepaid,
        "order001",
        Some(state),
        Detail {
            amount: Some(25_000),
            product_code: Some("xld25000".into()),
            customer_id: Some("081234567890".into()),
            provider_transaction_id: Some("3482".into()),
            response_code: Some(rc.into()),
            ..Detail::default()
        },
    )
}

fn sn(mut f: Fact, value: &str) -> Fact {
    f.detail.serial_number = Some(value.into());
    f
}

/// A transaction the merchant registered: product, customer and amount asked for.
fn registered(kind: TxKind, amount: i64) -> TxRecord {
    let mut rec = TxRecord::new("p", "order001", kind, now());
    rec.id = 1;
    rec.describe(&Detail {
        amount: Some(amount),
        product_code: Some("xld25000".into()),
        customer_id: Some("081234567890".into()),
        ..Detail::default()
    });
    rec
}

#[test]
fn goods_of_a_pending_message_are_never_kept_in_confirm_mode_or_out() {
    // Finding 3: a status-0 callback (anyone can replay one) carrying a forged sn and pin.
    let mut forged = sn(top_up(State::Pending), "9999-FORGED");
    forged.detail.pin = Some("0000".into());
    let mut real = sn(top_up(State::Succeeded), "REAL-TOKEN");
    real.detail.pin = None;
    let d = run_from(
        None,
        &[
            (top_up(State::Pending), Trust::Authoritative),
            (forged, Trust::NeedsConfirmation),
            (real, Trust::Authoritative),
        ],
    );
    assert_eq!(d[1].record.serial_number, None);
    assert_eq!(d[1].record.pin, None);
    assert_eq!(d[2].record.serial_number.as_deref(), Some("REAL-TOKEN"));
    assert_eq!(d[2].record.pin, None);
    assert_eq!(types(&d[2]), ["transaction.succeeded"]);
    assert_eq!(d[2].events[0].data["serial_number"], "REAL-TOKEN");
    assert_eq!(d[2].events[0].data["pin"], serde_json::Value::Null);
}

#[test]
fn an_empty_token_is_no_token_and_the_real_one_follows() {
    // Finding 4.
    let d = run(&[
        sn(top_up(State::Succeeded), ""),
        sn(top_up(State::Succeeded), "  "),
        sn(top_up(State::Succeeded), "1234-5678-9012"),
    ]);
    assert_eq!(d[0].record.serial_number, None);
    assert_eq!(d[1].verdict, V::Duplicate);
    assert_eq!(
        (d[2].verdict, types(&d[2])),
        (V::Updated, vec!["transaction.updated"])
    );
    assert_eq!(d[2].events[0].data["serial_number"], "1234-5678-9012");
}

#[test]
fn two_different_tokens_are_a_conflict_each_announced_once() {
    // Finding 11: callback 1111, callback 2222, check 3333, then 2222 replayed.
    let d = run(&[
        sn(top_up(State::Succeeded), "1111"),
        sn(top_up(State::Succeeded), "2222"),
        sn(top_up(State::Succeeded), "3333"),
        sn(top_up(State::Succeeded), "2222"),
    ]);
    assert_eq!(d[1].record.serial_number.as_deref(), Some("1111"));
    assert!(d[1].record.needs_review);
    assert_eq!(types(&d[1]), ["transaction.conflict"]);
    let c = &d[1].events[0].data["conflict"];
    assert_eq!(
        (
            c["reason"].as_str(),
            c["kept"].as_str(),
            c["reported"].as_str()
        ),
        (Some("different_goods"), Some("1111"), Some("2222"))
    );
    assert_eq!(types(&d[2]), ["transaction.conflict"], "a third token");
    assert_eq!(d[2].events[0].data["conflict"]["reported"], "3333");
    assert!(d[3].events.is_empty(), "a replay raises no second alarm");
    assert!(!d[3].changed);
}

#[test]
fn an_inferred_failure_is_provisional_and_a_real_success_wins() {
    // Finding 6.
    let until = now() + Duration::hours(24);
    let mut inferred = Fact::reported(
        TxKind::Prepaid,
        "order001",
        Some(State::Failed),
        Detail {
            response_code: Some("06".into()),
            ..Detail::default()
        },
    );
    inferred.basis = Basis::Inferred {
        reason: "not_found".into(),
        watch_until: until,
    };
    let d = run(&[top_up(State::Pending), inferred.clone()]);
    let failed = &d[1];
    assert_eq!(failed.record.state, State::Failed);
    assert!(failed.record.needs_review, "an inferred failure is flagged");
    assert_eq!(failed.record.extra.inferred.as_deref(), Some("not_found"));
    assert_eq!(types(failed), ["transaction.failed"]);
    assert_eq!(failed.events[0].data["inferred"], "not_found");
    assert!(
        failed.record.wants_check(now() + Duration::hours(2)),
        "still asked about until the provider's window ends"
    );
    assert!(!failed.record.wants_check(until));

    // The provider's real answer arrives: success with the token.
    let real = decide(
        Some(&failed.record),
        "p",
        &sn(top_up(State::Succeeded), "TOKEN-9"),
        Trust::Authoritative,
        now(),
    );
    assert_eq!(real.verdict, V::Applied);
    assert_eq!(real.record.state, State::Succeeded);
    assert_eq!(real.record.serial_number.as_deref(), Some("TOKEN-9"));
    assert_eq!(real.record.extra.inferred, None);
    assert_eq!(types(&real), ["transaction.succeeded"]);
    assert_eq!(real.events[0].data["previous_state"], "failed");
    assert!(!real.record.wants_check(now()), "settled for real");

    // An inference never overrides a real outcome.
    let again = decide(
        Some(&real.record),
        "p",
        &inferred,
        Trust::Authoritative,
        now(),
    );
    assert_eq!((again.verdict, again.changed), (V::Stale, false));
}

#[test]
fn a_real_failure_confirms_an_inferred_one_without_a_second_failed_event() {
    let mut inferred = top_up(State::Failed);
    inferred.basis = Basis::Inferred {
        reason: "not_found".into(),
        watch_until: now() + Duration::hours(24),
    };
    let d = run(&[top_up(State::Pending), inferred, top_up(State::Failed)]);
    assert_eq!(d[2].record.extra.inferred, None);
    assert_eq!(types(&d[2]), ["transaction.updated"]);
    assert!(!d[2].record.wants_check(now()));
}

#[test]
fn a_contradiction_after_give_up_still_raises_an_alarm() {
    // Finding 8: unresolved, then success, then failure.
    let d = run(&[top_up(State::Pending)]);
    let g = give_up(&d[0].record, now());
    assert_eq!(types(&g), ["transaction.unresolved"]);
    let d = run_from(
        Some(g.record),
        &[
            (top_up(State::Succeeded), Trust::Authoritative),
            (top_up(State::Failed), Trust::Authoritative),
        ],
    );
    assert_eq!(types(&d[0]), ["transaction.succeeded"]);
    assert_eq!(
        (d[1].verdict, types(&d[1])),
        (V::Conflict, vec!["transaction.conflict"])
    );
    assert_eq!(d[1].record.state, State::Succeeded);
}

#[test]
fn what_was_asked_for_is_never_rewritten() {
    // Finding 13: registered xld25000 / 081234567890 / 25,000; success says otherwise.
    let rec = registered(TxKind::Prepaid, 25_000);
    let mut other = sn(top_up(State::Succeeded), "SN-1");
    other.detail.product_code = Some("hsteam12000".into());
    other.detail.customer_id = Some("089999999999".into());
    other.detail.amount = Some(99_000);
    let d = decide(Some(&rec), "p", &other, Trust::Authoritative, now());
    assert_eq!(d.record.state, State::Succeeded, "the outcome applies");
    assert_eq!(d.record.product_code.as_deref(), Some("xld25000"));
    assert_eq!(d.record.customer_id.as_deref(), Some("081234567890"));
    assert_eq!(d.record.amount, Some(25_000));
    assert!(d.record.needs_review);
    assert_eq!(types(&d), ["transaction.succeeded", "transaction.mismatch"]);
    let m = d.events[1].data["mismatch"].as_array().unwrap();
    let fields: Vec<(&str, String, String)> = m
        .iter()
        .map(|x| {
            (
                x["field"].as_str().unwrap(),
                x["asked"].to_string(),
                x["reported"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (
                "product_code",
                "\"xld25000\"".into(),
                "\"hsteam12000\"".into()
            ),
            (
                "customer_id",
                "\"081234567890\"".into(),
                "\"089999999999\"".into()
            ),
            ("amount", "25000".into(), "99000".into()),
        ]
    );
}

#[test]
fn a_lower_price_is_kept_quietly_but_a_higher_postpaid_price_is_a_mismatch() {
    let rec = registered(TxKind::Postpaid, 52_370);
    let mut check = Fact::reported(
        TxKind::Postpaid,
        "order001",
        Some(State::Succeeded),
        Detail {
            amount: Some(152_370),
            ..Detail::default()
        },
    );
    let d = decide(Some(&rec), "p", &check, Trust::Authoritative, now());
    assert_eq!(d.record.amount, Some(52_370));
    assert_eq!(types(&d), ["transaction.succeeded", "transaction.mismatch"]);
    check.detail.amount = Some(50_000);
    let d = decide(Some(&rec), "p", &check, Trust::Authoritative, now());
    assert_eq!(types(&d), ["transaction.succeeded"]);
    assert!(!d.record.needs_review);
}

#[test]
fn a_message_about_another_provider_transaction_is_not_applied() {
    // Finding 10 (callback side): same ref, another tr_id.
    let d = run(&[top_up(State::Pending)]);
    let mut other = top_up(State::Succeeded);
    other.detail.provider_transaction_id = Some("9999".into());
    let o = decide(Some(&d[0].record), "p", &other, Trust::Authoritative, now());
    assert_eq!(o.verdict, V::Mismatch);
    assert_eq!(o.record.state, State::Pending);
    assert_eq!(o.record.provider_transaction_id.as_deref(), Some("3482"));
    assert!(o.record.needs_review);
    assert_eq!(types(&o), ["transaction.mismatch"]);
    assert_eq!(
        o.events[0].data["mismatch"][0]["field"],
        "provider_transaction_id"
    );
}

#[test]
fn a_message_that_contradicts_itself_settles_nothing_and_is_flagged() {
    // Finding 14: status 1 with rc 14 (the gateway marks it contradictory).
    let d = run(&[top_up(State::Succeeded)]);
    let mut odd = top_up(State::Pending);
    odd.basis = Basis::Contradictory("status 1 contradicts rc 14".into());
    let o = decide(Some(&d[0].record), "p", &odd, Trust::Authoritative, now());
    assert_eq!(o.verdict, V::Conflict);
    assert_eq!(o.record.state, State::Succeeded);
    assert_eq!(types(&o), ["transaction.conflict"]);
    assert_eq!(
        o.events[0].data["conflict"]["reason"],
        "contradictory_message"
    );
    // Nothing is created from such a message either.
    let new = decide(None, "p", &odd, Trust::Authoritative, now());
    assert_eq!((new.verdict, new.changed), (V::Unrecognized, false));
}

#[test]
fn a_deposit_that_rises_while_a_purchase_succeeds_is_flagged() {
    let mut pending = top_up(State::Pending);
    pending.detail.balance_after = Some(1_000_000);
    let mut ok = top_up(State::Succeeded);
    ok.detail.balance_after = Some(1_500_000);
    let d = run(&[pending, ok]);
    assert_eq!(
        types(&d[1]),
        ["transaction.succeeded", "transaction.conflict"]
    );
    assert_eq!(d[1].events[1].data["conflict"]["reason"], "balance_rose");
}

#[test]
fn every_event_carries_the_previous_state() {
    // Finding 15.
    let d = run(&[top_up(State::Pending), top_up(State::Succeeded)]);
    assert_eq!(
        d[0].events[0].data["previous_state"],
        serde_json::Value::Null
    );
    assert_eq!(d[1].events[0].data["previous_state"], "pending");
}

#[test]
fn a_conflict_carries_what_the_contradicting_message_reported() {
    // Finding 15.
    let mut failed = top_up(State::Failed);
    failed.detail.amount = Some(30_000);
    let d = run(&[sn(top_up(State::Succeeded), "SN"), failed]);
    let c = &d[1].events[0].data["conflict"];
    assert_eq!(c["reported_state"], "failed");
    assert_eq!(c["reported_amount"], 30_000);
    assert_eq!(c["reported_product_code"], "xld25000");
    assert_eq!(d[1].events[0].data["previous_state"], "succeeded");
}

// --- virtual accounts ---------------------------------------------------------------------

fn va(status: State, amount: i64, payments: &[(&str, i64)], total_paid: Option<i64>) -> Fact {
    let mut f = Fact::reported(
        TxKind::Va,
        "ext-1",
        Some(status),
        Detail {
            amount: Some(amount),
            provider_transaction_id: Some("mcp-1".into()),
            order_id: Some("ord-1".into()),
            total_paid,
            payment_system: Some("CLOSED".into()),
            multi_use: Some(false),
            ..Detail::default()
        },
    );
    f.payments = payments
        .iter()
        .map(|(r, a)| VaPayment {
            reference_id: (*r).into(),
            amount: *a,
            paid_time: None,
        })
        .collect();
    f
}

fn system(mut f: Fact, s: &str, multi: bool) -> Fact {
    f.detail.payment_system = Some(s.into());
    f.detail.multi_use = Some(multi);
    f
}

#[test]
fn a_payment_after_cancel_or_expiry_is_recorded_announced_and_flagged() {
    // Finding 1, with a history and without one.
    for last in [State::Canceled, State::Expired, State::Refunded] {
        for history in [true, false] {
            let paid = if history {
                va(State::Paid, 50_000, &[("r1", 50_000)], Some(50_000))
            } else {
                va(State::Paid, 50_000, &[], Some(50_000))
            };
            let d = run(&[
                va(State::AwaitingPayment, 50_000, &[], None),
                va(last, 50_000, &[], None),
                paid,
            ]);
            let p = &d[2];
            assert_eq!(p.record.state, last, "{last:?}: the final state is kept");
            assert_eq!(
                p.record.total_paid,
                Some(50_000),
                "{last:?}: the money is counted"
            );
            assert!(p.record.needs_review, "{last:?}");
            assert_eq!(
                types(p),
                ["va.payment_received", "transaction.conflict"],
                "{last:?} history={history}"
            );
            assert_eq!(
                p.events[1].data["conflict"]["reason"],
                "payment_after_final"
            );
            assert_eq!(p.events[0].data["total_paid"], 50_000);
        }
    }
}

#[test]
fn paid_only_when_the_money_covers_the_amount() {
    // Finding 2: PAID for 40,000 of 100,000 in seed 002's "Body raw" shape (top-level
    // reference, no total_paid_amount, no history); PAID with no amount at all.
    let mut body_raw = va(State::Paid, 100_000, &[("top-ref", 40_000)], None);
    body_raw.detail.payment_system = Some("PARTIAL".into());
    let d = run(&[
        system(
            va(State::AwaitingPayment, 100_000, &[], None),
            "PARTIAL",
            false,
        ),
        body_raw,
        va(State::Paid, 100_000, &[], None),
    ]);
    assert_eq!(d[1].record.state, State::PartiallyPaid);
    assert_eq!(types(&d[1]), ["va.payment_received"]);
    assert_eq!(d[1].record.total_paid, Some(40_000));
    assert_eq!(d[2].record.state, State::PartiallyPaid, "no money, no paid");
    assert!(d[2].events.is_empty());

    let nothing = run(&[va(State::Paid, 100_000, &[], None)]);
    assert_eq!(nothing[0].record.state, State::AwaitingPayment);
    assert!(nothing[0].events.is_empty(), "no va.paid with a total of 0");
}

#[test]
fn a_va_paid_below_its_created_amount_is_partly_paid_and_a_mismatch() {
    // Finding 13: created for 50,000; a message says total 40,000, paid 40,000.
    let mut rec = TxRecord::new("p", "ext-1", TxKind::Va, now());
    rec.id = 1;
    rec.describe(&Detail {
        amount: Some(50_000),
        ..Detail::default()
    });
    let d = decide(
        Some(&rec),
        "p",
        &va(State::Paid, 40_000, &[("r1", 40_000)], Some(40_000)),
        Trust::Authoritative,
        now(),
    );
    assert_eq!(d.record.state, State::PartiallyPaid);
    assert_eq!(d.record.amount, Some(50_000));
    assert_eq!(types(&d), ["va.payment_received", "transaction.mismatch"]);
}

#[test]
fn a_confirmed_va_takes_no_new_payment_the_provider_does_not_show() {
    // Finding 5: a paid VA; a callback adds 5,000,000 that the inquiry does not show.
    let d = run(&[va(State::Paid, 50_000, &[("r1", 50_000)], Some(50_000))]);
    let claim = va(
        State::Paid,
        50_000,
        &[("r1", 50_000), ("r2", 5_000_000)],
        Some(5_050_000),
    );
    let held = decide(
        Some(&d[0].record),
        "p",
        &claim,
        Trust::NeedsConfirmation,
        now(),
    );
    assert_eq!(held.verdict, V::Unconfirmed);
    assert_eq!(held.record.total_paid, Some(50_000), "nothing applied yet");
    assert!(held.events.is_empty());
    assert!(held.record.wants_check(now()), "asked about at once");
    let inquiry = va(State::Paid, 50_000, &[("r1", 50_000)], Some(50_000));
    let checked = decide(
        Some(&held.record),
        "p",
        &inquiry,
        Trust::Authoritative,
        now(),
    );
    assert_eq!(checked.record.total_paid, Some(50_000));
    assert!(checked.record.unconfirmed.is_none());
    assert!(checked.record.needs_review);
    assert_eq!(types(&checked), ["transaction.conflict"]);
    assert_eq!(
        checked.events[0].data["conflict"]["reason"],
        "unconfirmed_payment"
    );
}

#[test]
fn open_and_multi_use_vas_are_watched_until_they_expire() {
    // Finding 7.
    let expires = now() + Duration::days(3);
    let mut first = system(
        va(State::Paid, 10_000, &[("a", 10_000)], Some(10_000)),
        "OPEN",
        true,
    );
    first.detail.expires_at = Some(expires);
    let d = run(&[first]);
    assert_eq!(d[0].record.state, State::Paid);
    assert!(d[0].record.wants_check(now() + Duration::days(1)));
    assert!(!d[0].record.wants_check(expires));
    // A single-use CLOSED VA is done once paid.
    let mut closed = va(State::Paid, 10_000, &[("a", 10_000)], Some(10_000));
    closed.detail.expires_at = Some(expires);
    assert!(!run(&[closed])[0].record.wants_check(now()));
}

#[test]
fn payments_are_counted_once_with_their_running_totals() {
    // Finding 15: one message with three payments.
    let d = run(&[
        system(
            va(State::AwaitingPayment, 90_000, &[], None),
            "PARTIAL",
            false,
        ),
        va(
            State::Paid,
            90_000,
            &[("a", 30_000), ("b", 30_000), ("c", 30_000)],
            Some(90_000),
        ),
    ]);
    assert_eq!(
        types(&d[1]),
        [
            "va.payment_received",
            "va.payment_received",
            "va.payment_received",
            "va.paid"
        ]
    );
    let totals: Vec<i64> = d[1]
        .events
        .iter()
        .map(|e| e.data["total_paid"].as_i64().unwrap())
        .collect();
    assert_eq!(totals, [30_000, 60_000, 90_000, 90_000]);
    assert_eq!(d[1].events[3].data["previous_state"], "awaiting_payment");
}

#[test]
fn a_payment_whose_amount_changes_is_a_mismatch_and_the_total_still_grows_by_an_event() {
    // Finding 9: the same reference 60k → 90k → 100k.
    let d = run(&[
        system(
            va(State::AwaitingPayment, 100_000, &[], None),
            "PARTIAL",
            false,
        ),
        va(
            State::PartiallyPaid,
            100_000,
            &[("a", 60_000)],
            Some(60_000),
        ),
        va(
            State::PartiallyPaid,
            100_000,
            &[("a", 90_000)],
            Some(90_000),
        ),
    ]);
    assert_eq!(
        d[2].record.payments[0].amount, 60_000,
        "the first amount is kept"
    );
    assert_eq!(d[2].record.total_paid, Some(90_000));
    assert_eq!(
        types(&d[2]),
        ["va.payment_received", "transaction.mismatch"]
    );
    assert_eq!(d[2].events[0].data["payment"]["amount"], 30_000);
}

#[test]
fn a_total_that_disagrees_with_a_complete_history_is_flagged() {
    // Finding 9.
    let d = run(&[va(State::Paid, 50_000, &[("a", 20_000)], Some(50_000))]);
    assert!(d[0].record.needs_review);
    assert!(types(&d[0]).contains(&"transaction.mismatch"));
}

#[test]
fn overpayment_and_a_single_use_va_paid_twice_are_flagged() {
    // Finding 9.
    let over = run(&[va(State::Paid, 50_000, &[("a", 70_000)], Some(70_000))]);
    assert_eq!(
        types(&over[0]),
        ["va.payment_received", "va.paid", "transaction.conflict"]
    );
    assert_eq!(over[0].events[2].data["conflict"]["reason"], "overpaid");

    let twice = run(&[
        va(State::Paid, 50_000, &[("a", 50_000)], Some(50_000)),
        va(
            State::Paid,
            50_000,
            &[("a", 50_000), ("b", 50_000)],
            Some(100_000),
        ),
    ]);
    assert_eq!(
        types(&twice[1]),
        ["va.payment_received", "transaction.conflict"]
    );
    assert_eq!(twice[1].events[1].data["conflict"]["reason"], "paid_again");
}

#[test]
fn a_payment_of_nothing_is_no_payment() {
    // Finding 9.
    let d = run(&[va(State::PartiallyPaid, 50_000, &[("z", 0)], Some(0))]);
    assert!(d[0].record.payments.is_empty());
    assert!(d[0].events.is_empty());
}

#[test]
fn a_va_message_about_another_transaction_id_is_not_applied() {
    // Finding 10: same external_id, another transaction_id / order_id.
    let d = run(&[va(State::AwaitingPayment, 50_000, &[], None)]);
    let mut other = va(State::Paid, 50_000, &[("x", 50_000)], Some(50_000));
    other.detail.provider_transaction_id = Some("mcp-OTHER".into());
    other.detail.order_id = Some("ord-OTHER".into());
    let o = decide(Some(&d[0].record), "p", &other, Trust::Authoritative, now());
    assert_eq!(o.verdict, V::Mismatch);
    assert_eq!(o.record.state, State::AwaitingPayment);
    assert_eq!(o.record.provider_transaction_id.as_deref(), Some("mcp-1"));
    assert_eq!(o.record.total_paid, None);
    assert_eq!(types(&o), ["transaction.mismatch"]);
}

#[test]
fn a_partial_refund_keeps_its_amounts() {
    // Finding 12: 10,000 of 50,000 refunded.
    let mut refund = va(State::Refunded, 50_000, &[("a", 50_000)], Some(50_000));
    refund.refunds = vec![VaRefund {
        amount: 10_000,
        refund_time: Some("2022-03-11T14:31:20.939+07:00".into()),
    }];
    let d = run(&[
        va(State::Paid, 50_000, &[("a", 50_000)], Some(50_000)),
        refund,
    ]);
    assert_eq!(d[1].record.state, State::Refunded);
    assert_eq!(d[1].record.extra.total_refunded(), Some(10_000));
    assert_eq!(types(&d[1]), ["va.refunded"]);
    let e = &d[1].events[0].data;
    assert_eq!(e["total_refunded"], 10_000);
    assert_eq!(e["refund"][0]["amount"], 10_000);
    assert_eq!(
        e["refunds"][0]["refund_time"],
        "2022-03-11T14:31:20.939+07:00"
    );
}

#[test]
fn a_va_that_expires_with_money_in_is_flagged() {
    // Finding 14.
    let d = run(&[
        system(
            va(
                State::PartiallyPaid,
                100_000,
                &[("a", 30_000)],
                Some(30_000),
            ),
            "PARTIAL",
            false,
        ),
        va(State::Expired, 100_000, &[("a", 30_000)], Some(30_000)),
    ]);
    assert_eq!(d[1].record.state, State::Expired);
    assert_eq!(types(&d[1]), ["va.expired", "transaction.conflict"]);
    assert_eq!(
        d[1].events[1].data["conflict"]["reason"],
        "closed_with_money"
    );
}

#[test]
fn whether_cancel_after_paid_is_a_conflict_depends_on_the_va_not_the_message() {
    // Finding 14: the contradicting message claims to be multi-use; the VA is not.
    let mut cancel = va(State::Canceled, 50_000, &[], None);
    cancel.detail.multi_use = Some(true);
    let d = run(&[
        va(State::Paid, 50_000, &[("a", 50_000)], Some(50_000)),
        cancel,
    ]);
    assert_eq!(d[1].verdict, V::Conflict);
    assert_eq!(types(&d[1]), ["transaction.conflict"]);
}

#[test]
fn a_resolution_clears_the_flag_and_a_replay_does_not_raise_it_again() {
    use lunas_core::{resolve, Resolution};
    let d = run(&[top_up(State::Succeeded), top_up(State::Failed)]);
    assert!(d[1].record.needs_review);
    let resolution = |state| Resolution {
        state,
        note: "the provider's portal shows it".into(),
        by: "ops".into(),
    };
    // Set another state: its own event, then the resolution.
    let r = resolve(&d[1].record, &resolution(State::Failed), now());
    assert_eq!(r.verdict, V::Resolved);
    assert_eq!(
        (r.record.state, r.record.needs_review),
        (State::Failed, false)
    );
    assert_eq!(types(&r), ["transaction.failed", "transaction.resolved"]);
    let e = &r.events[1].data;
    assert_eq!(e["resolution"]["note"], "the provider's portal shows it");
    assert_eq!(e["resolution"]["by"], "ops");
    assert_eq!(e["previous_state"], "succeeded");
    // Keep the state: the resolution alone.
    let kept = resolve(&d[1].record, &resolution(State::Succeeded), now());
    assert_eq!(types(&kept), ["transaction.resolved"]);
    // The contradiction that was flagged, replayed: already seen, no new flag.
    let again = decide(
        Some(&kept.record),
        "p",
        &top_up(State::Failed),
        Trust::Authoritative,
        now(),
    );
    assert!(!again.record.needs_review);
    assert!(again.events.is_empty());
}
