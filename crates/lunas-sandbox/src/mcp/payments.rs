//! Bank payments into MCPayment virtual accounts, their callbacks, and expiry.
//!
//! - `POST /sandbox/va/pay` `{"external_id", "amount", "account"?}` simulates a bank paying
//!   into a virtual account. 200 with the VA's new state and the callback outcome; 404
//!   unknown VA; 409 expired, cancelled or fully paid; 400 an amount the VA does not take.
//!   Errors are `{"error": {"code", "message"}}`, as every control's.
//! - `POST /sandbox/va/refund` `{"external_id", "amount"?, "account"?, "void"?, "off_us"?,
//!   "response_code"?}` refunds money paid into a VA (all of what is left unless `amount`
//!   says less), or voids it (`"void": true`), as iFortepay's refund and void callbacks show:
//!   status `REFUNDED` (or `VOID`), `refund_history`, `transaction_type` `on_us`/`off_us`,
//!   and the `response_code` asked for (default `00`). 200 with the VA and the callback; 404
//!   unknown VA; 409 nothing paid or already refunded in full; 400 an amount over what is left.
//! - Every payment plans a `PAID` callback (with the account's callback faults); an `ACTIVE`
//!   VA whose time has come becomes `EXPIRED` and queues one `EXPIRED` callback.

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::Response;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus, VaTransaction};
use rand::Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::va::{view, INQUIRY_HISTORY};
use super::{credentials, held, held_mut, Va, VaPayment, VaRefund, VirtualAccounts};
use crate::callbacks::{Delivery, Plan};
use crate::faults;
use crate::http::{self, Refusal, Seen};
use crate::log::{CallbackKind, CallbackRecord};
use crate::state::{Job, State};
use crate::{clock, Sandbox};

/// The sequence of payment references, shared by every MCPayment account.
const PAYMENTS: &str = "mcp.payment";

/// The body of `POST /sandbox/va/pay`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub external_id: String,
    pub amount: i64,
    #[serde(default)]
    pub account: Option<String>,
}

/// One payment, as `POST /sandbox/va/pay` reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentInfo {
    pub reference_id: String,
    pub paid_amount: i64,
    pub paid_time: String,
}

/// The answer of `POST /sandbox/va/pay`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayAnswer {
    pub account: String,
    pub external_id: String,
    pub transaction_id: String,
    /// The VA's status after the payment (`PAID`, or `ACTIVE` for a PARTIAL VA not yet
    /// fully paid).
    pub transaction_status: String,
    pub total_amount: i64,
    pub total_paid_amount: i64,
    pub payment: PaymentInfo,
    /// The VA as `/va/inquiry` now shows it.
    pub va: VaTransaction,
    /// The callbacks sent at once, in order (none when delayed; see `scheduled`).
    pub callbacks: Vec<CallbackRecord>,
    /// The first of them: the payment callback and the receiver's answer.
    pub callback: Option<CallbackRecord>,
    /// How many callbacks of this payment wait in the outbox (a delay, or retries).
    pub scheduled: usize,
}

/// `POST /sandbox/va/pay`.
pub(super) async fn va_pay(AxumState(sb): AxumState<Sandbox>, body: Bytes) -> Response {
    let mut seen = Seen {
        command: Some("va-pay"),
        ..Seen::default()
    };
    let response = match http::parse_json::<PayRequest>(&body) {
        Err(r) => http::refuse(r),
        Ok(req) => {
            seen.reference = Some(req.external_id.clone());
            do_pay(&sb, req, &mut seen).await
        }
    };
    sb.seen("POST", "/sandbox/va/pay", response.status(), seen);
    response
}

async fn do_pay(sb: &Sandbox, req: PayRequest, seen: &mut Seen) -> Response {
    let paid = match decide_pay(sb, &req, seen) {
        Ok(p) => p,
        Err(r) => return http::refuse(r),
    };
    let callbacks = sb.execute(paid.plan).await;
    let details = paid.va.payment_details.clone().unwrap_or_default();
    seen.rc = Some("00".to_owned());
    http::json(
        StatusCode::OK,
        &PayAnswer {
            account: sb.inner.accounts[paid.account].id.clone(),
            external_id: paid.va.external_id.clone(),
            transaction_id: paid.va.transaction_id.clone(),
            transaction_status: paid.va.transaction_status.as_str().to_owned(),
            total_amount: details.total_amount.unwrap_or(0),
            total_paid_amount: details.total_paid_amount.unwrap_or(0),
            payment: PaymentInfo {
                reference_id: paid.payment.reference_id.clone(),
                paid_amount: paid.payment.amount,
                paid_time: clock::mcp_time(paid.payment.at),
            },
            va: paid.va,
            callback: callbacks.first().cloned(),
            scheduled: sb.waiting(&req.external_id),
            callbacks,
        },
    )
}

fn decide_pay(sb: &Sandbox, req: &PayRequest, seen: &mut Seen) -> Result<Paid, Refusal> {
    let now = sb.now();
    let mut st = sb.lock();
    sb.settle(&mut st, now);
    // An expiry found on the way queued a callback: let the dispatcher send it.
    sb.inner.wake.notify_one();
    let index = owner(sb, &st, &req.external_id, req.account.as_deref())?;
    seen.account = Some(sb.inner.accounts[index].id.clone());
    pay(sb, &mut st, index, &req.external_id, req.amount, now)
}

/// The account that holds the VA `external_id` (of those `account` allows).
fn owner(
    sb: &Sandbox,
    st: &State,
    external_id: &str,
    account: Option<&str>,
) -> Result<usize, Refusal> {
    let owners: Vec<usize> = sb
        .inner
        .accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| account.is_none_or(|id| id == a.id))
        .filter(|(i, _)| held(st, *i).is_some_and(|h| h.vas.contains_key(external_id)))
        .map(|(i, _)| i)
        .collect();
    match owners.as_slice() {
        [i] => Ok(*i),
        [] => Err((
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no virtual account with external_id {external_id}"),
        )),
        _ => Err((
            StatusCode::BAD_REQUEST,
            "ambiguous_external_id",
            "several accounts have a VA with this external_id; say which with \"account\""
                .to_owned(),
        )),
    }
}

/// The body of `POST /sandbox/va/refund`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub external_id: String,
    /// Rupiah to refund; default all that is paid and not yet refunded.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub account: Option<String>,
    /// A void (status `VOID`) rather than a refund.
    #[serde(default)]
    pub void: bool,
    /// `transaction_type: "off_us"` (another bank's customer) rather than `on_us`.
    #[serde(default)]
    pub off_us: bool,
    /// The callback's `response_code` (default `00`).
    #[serde(default)]
    pub response_code: Option<String>,
}

/// The answer of `POST /sandbox/va/refund`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundAnswer {
    pub account: String,
    pub external_id: String,
    pub transaction_status: String,
    pub refunded_amount: i64,
    pub total_refunded: i64,
    /// The VA as `/va/inquiry` now shows it.
    pub va: VaTransaction,
    /// The refund callback and the receiver's answer.
    pub callbacks: Vec<CallbackRecord>,
}

/// `POST /sandbox/va/refund`.
pub(super) async fn va_refund(AxumState(sb): AxumState<Sandbox>, body: Bytes) -> Response {
    let mut seen = Seen {
        command: Some("va-refund"),
        ..Seen::default()
    };
    let response = match http::parse_json::<RefundRequest>(&body) {
        Err(r) => http::refuse(r),
        Ok(req) => {
            seen.reference = Some(req.external_id.clone());
            match decide_refund(&sb, &req, &mut seen) {
                Err(r) => http::refuse(r),
                Ok((index, va, refunded, plan)) => {
                    let callbacks = sb.execute(plan).await;
                    let total_refunded = va.total_refunded();
                    http::json(
                        StatusCode::OK,
                        &RefundAnswer {
                            account: sb.inner.accounts[index].id.clone(),
                            external_id: va.external_id.clone(),
                            transaction_status: va.status.as_str().to_owned(),
                            refunded_amount: refunded,
                            total_refunded,
                            va: view(&va, INQUIRY_HISTORY),
                            callbacks,
                        },
                    )
                }
            }
        }
    };
    sb.seen("POST", "/sandbox/va/refund", response.status(), seen);
    response
}

fn decide_refund(
    sb: &Sandbox,
    req: &RefundRequest,
    seen: &mut Seen,
) -> Result<(usize, Va, i64, Plan), Refusal> {
    let now = sb.now();
    let mut st = sb.lock();
    sb.settle(&mut st, now);
    let index = owner(sb, &st, &req.external_id, req.account.as_deref())?;
    seen.account = Some(sb.inner.accounts[index].id.clone());
    let response_code = req.response_code.clone().unwrap_or_else(|| "00".to_owned());
    if response_code.is_empty()
        || response_code.len() > 8
        || !response_code.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_response_code",
            "response_code must be a short code like 00 or 05".to_owned(),
        ));
    }
    let va = held_mut(&mut st, index)
        .and_then(|h| h.vas.get_mut(&req.external_id))
        .expect("the owner holds it");
    let left = va.total_paid().saturating_sub(va.total_refunded());
    if left <= 0 {
        return Err((
            StatusCode::CONFLICT,
            "not_refundable",
            if va.payments.is_empty() {
                "nothing was paid into this virtual account".to_owned()
            } else {
                "everything paid into this virtual account was refunded already".to_owned()
            },
        ));
    }
    let amount = req.amount.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            format!("amount must be between 1 and the {left} rupiah paid and not refunded"),
        ));
    }
    va.refunds.push(VaRefund { amount, at: now });
    va.status = if req.void {
        TransactionStatus::Void
    } else {
        TransactionStatus::Refunded
    };
    va.transaction_type = Some(if req.off_us { "off_us" } else { "on_us" }.to_owned());
    let va = va.clone();
    let mut body = view(&va, usize::MAX);
    body.response_code = Some(response_code.clone());
    body.transaction_time = Some(clock::mcp_time(now));
    let account = &sb.inner.accounts[index];
    let key = format!("{}#refund{}", va.external_id, va.refunds.len());
    let decisions = faults::decide(sb.inner.seed, &account.id, &key, &account.faults);
    let primary = delivery(sb, index, &va, &body, CallbackKind::Refund, false);
    let (plan, _) = Plan::primary(&mut st.log, &account.id, now, now, primary, &decisions);
    seen.rc = Some(response_code);
    Ok((index, va, amount, plan))
}

/// The result of a simulated payment.
struct Paid {
    account: usize,
    payment: VaPayment,
    va: VaTransaction,
    plan: Plan,
}

/// Takes a payment of `amount` into the VA `external_id` of account `index`.
fn pay(
    sb: &Sandbox,
    st: &mut State,
    index: usize,
    external_id: &str,
    amount: i64,
    now: OffsetDateTime,
) -> Result<Paid, Refusal> {
    let conflict = |msg: String| (StatusCode::CONFLICT, "not_payable", msg);
    let invalid = |msg: String| (StatusCode::BAD_REQUEST, "invalid_amount", msg);
    let reference_id = next_payment_reference(st);
    let va = held_mut(st, index)
        .and_then(|h| h.vas.get_mut(external_id))
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no virtual account with external_id {external_id}"),
            )
        })?;
    match va.status {
        TransactionStatus::Expired => {
            return Err(conflict(format!(
                "the virtual account expired at {}",
                clock::mcp_time(va.expires_at)
            )))
        }
        TransactionStatus::Canceled => {
            return Err(conflict("the virtual account was cancelled".to_owned()))
        }
        _ => {}
    }
    if now >= va.expires_at {
        return Err(conflict(format!(
            "the virtual account expired at {}",
            clock::mcp_time(va.expires_at)
        )));
    }
    if !va.payable() {
        return Err(conflict(format!(
            "the virtual account is {} and takes no more payments",
            va.status.as_str()
        )));
    }
    if amount <= 0 {
        return Err(invalid(
            "amount must be a positive number of rupiah".to_owned(),
        ));
    }
    match va.system {
        PaymentSystem::Open
            if amount < super::va::OPEN_MINIMUM && !va.channel.eq_ignore_ascii_case("BNI") =>
        {
            return Err(invalid(format!(
                "an OPEN virtual account takes at least {} rupiah",
                super::va::OPEN_MINIMUM
            )))
        }
        PaymentSystem::Closed if amount != va.amount => {
            return Err(invalid(format!(
                "a CLOSED virtual account takes exactly {} rupiah, not {amount}",
                va.amount
            )))
        }
        PaymentSystem::Partial => {
            let remaining = va.amount.saturating_sub(va.total_paid());
            if amount > remaining {
                return Err(invalid(format!(
                    "{amount} rupiah is more than the {remaining} still due"
                )));
            }
        }
        _ => {}
    }
    let payment = VaPayment {
        amount,
        at: now,
        reference_id,
    };
    let before = va.clone();
    va.payments.push(payment.clone());
    va.status = match va.system {
        PaymentSystem::Partial if va.total_paid() < va.amount => TransactionStatus::Active,
        _ => TransactionStatus::Paid,
    };
    let va = va.clone();
    let plan = plan_payment(sb, st, index, &before, &va, &payment, now);
    Ok(Paid {
        account: index,
        payment,
        va: view(&va, INQUIRY_HISTORY),
        plan,
    })
}

/// The callback of one payment: `PAID`, this payment's amount and reference, every payment
/// so far in `payment_history`.
fn payment_callback(va: &Va, payment: &VaPayment) -> VaTransaction {
    let mut tx = view(va, usize::MAX);
    tx.response_code = Some("00".to_owned());
    tx.transaction_status = TransactionStatus::Paid;
    tx.reference_id = Some(payment.reference_id.clone());
    tx.transaction_time = Some(clock::mcp_time(payment.at));
    if let Some(d) = tx.payment_details.as_mut() {
        d.amount = Some(payment.amount);
        d.total_amount = Some(va.amount);
        d.paid_time = Some(clock::mcp_time(payment.at));
    }
    tx
}

fn delivery(
    sb: &Sandbox,
    index: usize,
    va: &Va,
    body: &VaTransaction,
    kind: CallbackKind,
    wrong: bool,
) -> Delivery {
    let account = &sb.inner.accounts[index];
    let signature = match credentials(account) {
        Some(c) => {
            let right =
                c.callback_signature(&body.transaction_id, &body.external_id, &body.order_id);
            if wrong {
                // A signature over the right ids with a key that is not the account's.
                let mut other = c.clone();
                other.hash_key = format!("not-the-key-of-{}", c.merchant_id).as_str().into();
                other.callback_signature(&body.transaction_id, &body.external_id, &body.order_id)
            } else {
                right
            }
        }
        None => String::new(),
    };
    Delivery {
        account: index,
        reference: va.external_id.clone(),
        kind,
        url: va
            .callback_url
            .clone()
            .or_else(|| account.callback_url.clone()),
        body: body.encode_callback(account.callback_layout),
        content_type: "application/json",
        mcp_signature: Some(signature),
        signature_wrong: wrong,
        attempt: 1,
    }
}

fn plan_payment(
    sb: &Sandbox,
    st: &mut State,
    index: usize,
    before: &Va,
    after: &Va,
    payment: &VaPayment,
    now: OffsetDateTime,
) -> Plan {
    let account = &sb.inner.accounts[index];
    let key = format!("{}#{}", after.external_id, after.payments.len());
    let decisions = faults::decide(sb.inner.seed, &account.id, &key, &account.faults);
    let due = now + account.callback_delay + decisions.jitter;
    let body = payment_callback(after, payment);
    let primary = delivery(
        sb,
        index,
        after,
        &body,
        CallbackKind::Payment,
        decisions.wrong_signature,
    );
    let (mut plan, sent) = Plan::primary(&mut st.log, &account.id, now, due, primary, &decisions);
    if !sent {
        return plan;
    }
    if decisions.conflicting {
        let mut expired = view(after, usize::MAX);
        expired.response_code = Some("00".to_owned());
        expired.transaction_status = TransactionStatus::Expired;
        plan.deliveries.push((
            due,
            delivery(sb, index, after, &expired, CallbackKind::Conflicting, false),
        ));
    }
    if decisions.out_of_order {
        let mut stale = view(before, usize::MAX);
        stale.response_code = Some("00".to_owned());
        stale.transaction_status = TransactionStatus::Active;
        plan.deliveries.push((
            due,
            delivery(sb, index, before, &stale, CallbackKind::OutOfOrder, false),
        ));
    }
    plan
}

/// Expires every `ACTIVE` VA whose time has come and queues its one `EXPIRED` callback. (A
/// paid multi-use VA simply stops taking payments: it stays `PAID`.)
pub(super) fn expire_due(sb: &Sandbox, st: &mut State, now: OffsetDateTime) {
    let mut expired = Vec::new();
    for (index, acc) in st.accounts.iter_mut().enumerate() {
        let Some(held) = acc.held.get_mut::<VirtualAccounts>() else {
            continue;
        };
        for va in held.vas.values_mut() {
            if va.status == TransactionStatus::Active && now >= va.expires_at {
                va.status = TransactionStatus::Expired;
                expired.push((index, va.clone()));
            }
        }
    }
    expired.sort_by_key(|(_, va)| va.expires_at);
    for (index, va) in expired {
        let mut body = view(&va, usize::MAX);
        body.response_code = Some("00".to_owned());
        body.transaction_time = Some(clock::mcp_time(va.expires_at));
        let d = delivery(sb, index, &va, &body, CallbackKind::Expired, false);
        st.schedule(now, Job::Deliver(d));
    }
}

/// A payment reference, unique within the sandbox.
fn next_payment_reference(st: &mut State) -> String {
    let n = st.next_in(PAYMENTS, 1);
    let noise: u32 = st.rng.gen_range(0..10_000);
    format!("SBX{n:08}{noise:04}")
}
