//! MCPayment (iFortepay) PG3 virtual accounts: `POST /va` (create), `/va/inquiry`,
//! `/va/cancel`, bank payments simulated by `POST /sandbox/va/pay`, expiry, and the payment
//! callbacks (protocols.md §4).
//!
//! Rules:
//! - the account is the one whose `Authorization: Basic base64(merchant_id:secret_unbound_id)`
//!   the request carries, else HTTP 401 `{"response_code":"04"}`; a sub-merchant account also
//!   needs its `sub-merchant-id` header;
//! - `x-req-signature` must be `sha256(hash_key + external_id + order_id)` of the body's ids,
//!   else HTTP 401 `{"response_code":"99","response_message":"Invalid Signature"}`;
//! - a body the protocol parser refuses, or a rule below broken, is HTTP 400 with
//!   `response_code` 01; a VA not found is HTTP 404 with 02; a refused cancel HTTP 400 with 03;
//! - answers are `{"response_code":"00","response_message":"Success","data":{..}}`, the data
//!   a [`VaTransaction`];
//! - CLOSED takes exactly `amount` (once, or repeatedly when `is_multi_use`), PARTIAL takes
//!   instalments until `amount` is reached, OPEN (always multi-use) takes any amount until
//!   cancelled or expired;
//! - every payment sends a `PAID` callback whose `payment_history` lists every payment so far,
//!   signed with `mcp-signature`; an `ACTIVE` VA that reaches its `expired_time` becomes
//!   `EXPIRED` and sends one `EXPIRED` callback. Callbacks are sent in both environments and
//!   retried until the receiver answers 200 (three tries by default).

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use lunas_protocol::mcp::{
    self, CreateVaRequest, McpResponse, PaymentDetails, PaymentRecord, PaymentSystem,
    TransactionStatus, VaLookupRequest, VaTransaction,
};
use lunas_protocol::ProtocolError;
use time::OffsetDateTime;

use crate::callbacks::{Delivery, Plan};
use crate::clock;
use crate::config::AccountCredentials;
use crate::faults::{self, CheckFault, OrderFault};
use crate::http::{self, Seen};
use crate::log::{CallbackKind, CallbackOutcome};
use crate::state::{State, Va, VaPayment};
use crate::Sandbox;

/// How many payments an inquiry lists, newest last (the documents say "the latest 5").
const INQUIRY_HISTORY: usize = 5;

fn envelope(
    status: StatusCode,
    code: &str,
    message: &str,
    data: Option<VaTransaction>,
) -> Response {
    let body = McpResponse {
        response_code: code.to_owned(),
        response_message: Some(message.to_owned()),
        data,
        error: None,
    };
    http::json(status, &body)
}

/// A refusal: the HTTP status, the response code and its message.
type Refusal = (StatusCode, &'static str, String);

fn bad_request(reason: impl Into<String>) -> Refusal {
    (
        StatusCode::BAD_REQUEST,
        "01",
        format!("Request Parameter Error: {}", reason.into()),
    )
}

fn not_found() -> Refusal {
    (StatusCode::NOT_FOUND, "02", "Data Not Found".to_owned())
}

fn respond(result: Result<VaTransaction, Refusal>, seen: &mut Seen) -> Response {
    match result {
        Ok(data) => {
            seen.rc = Some("00".to_owned());
            envelope(StatusCode::OK, "00", "Success", Some(data))
        }
        Err((status, code, message)) => {
            seen.rc = Some(code.to_owned());
            envelope(status, code, &message, None)
        }
    }
}

/// `POST /va`.
pub(crate) async fn create(
    AxumState(sb): AxumState<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut seen = Seen {
        command: Some("va-create"),
        ..Seen::default()
    };
    let response = match authenticate_create(&sb, &headers, &body, &mut seen) {
        Err(refusal) => respond(Err(refusal), &mut seen),
        // A VA create is an order: it meets the order faults, re-sent or not.
        Ok((index, req)) => match sb.order_fault(index) {
            Some(OrderFault::ServerErrorBeforeCommit) => {
                seen.fault = Some(OrderFault::ServerErrorBeforeCommit.as_str());
                faults::server_error()
            }
            fault => {
                seen.fault = fault.map(OrderFault::as_str);
                let response = respond(do_create(&sb, index, &req), &mut seen);
                sb.order_answer(fault, response, &mut seen).await
            }
        },
    };
    sb.seen("POST", mcp::PATH_CREATE, response.status(), seen);
    response
}

/// `POST /va/inquiry`.
pub(crate) async fn inquiry(
    AxumState(sb): AxumState<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut seen = Seen {
        command: Some("va-inquiry"),
        ..Seen::default()
    };
    let response = match authenticate(&sb, &headers, &body, &mut seen) {
        Err(refusal) => respond(Err(refusal), &mut seen),
        Ok((index, req)) => {
            let fault = sb.check_status_fault(index);
            seen.fault = fault.map(CheckFault::as_str);
            match fault {
                Some(CheckFault::ServerError) => faults::server_error(),
                Some(CheckFault::Garbage(n)) => faults::garbage(n),
                Some(CheckFault::Hang(d)) if !sb.hang(d).await => faults::server_error(),
                _ => {
                    let now = sb.now();
                    let mut st = sb.lock();
                    sb.settle(&mut st, now);
                    let result = find(&st, index, &req).map(|va| view(va, INQUIRY_HISTORY));
                    drop(st);
                    sb.inner.wake.notify_one();
                    respond(result, &mut seen)
                }
            }
        }
    };
    sb.seen("POST", mcp::PATH_INQUIRY, response.status(), seen);
    response
}

/// `POST /va/cancel`.
pub(crate) async fn cancel(
    AxumState(sb): AxumState<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut seen = Seen {
        command: Some("va-cancel"),
        ..Seen::default()
    };
    let result = authenticate(&sb, &headers, &body, &mut seen).and_then(|(index, req)| {
        let now = sb.now();
        let mut st = sb.lock();
        sb.settle(&mut st, now);
        find(&st, index, &req)?;
        let va = st.accounts[index]
            .vas
            .get_mut(&req.external_id)
            .ok_or_else(not_found)?;
        if !va.payable() {
            return Err((
                StatusCode::BAD_REQUEST,
                "03",
                format!(
                    "Failed Request: a {} virtual account cannot be cancelled",
                    va.status.as_str()
                ),
            ));
        }
        va.status = TransactionStatus::Canceled;
        Ok(view(va, INQUIRY_HISTORY))
    });
    sb.inner.wake.notify_one();
    let response = respond(result, &mut seen);
    sb.seen("POST", mcp::PATH_CANCEL, response.status(), seen);
    response
}

impl Sandbox {
    /// The MCPayment account whose credentials the `Authorization` header carries.
    fn mcp_account(&self, headers: &HeaderMap) -> Result<usize, Refusal> {
        let unauthorized = || {
            (
                StatusCode::UNAUTHORIZED,
                "04",
                "Unauthorized Merchant".to_owned(),
            )
        };
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let index = self
            .inner
            .accounts
            .iter()
            .position(|a| match &a.credentials {
                AccountCredentials::Mcp(c) => c.verify_authorization(given),
                AccountCredentials::Iak { .. } => false,
            })
            .ok_or_else(unauthorized)?;
        if let AccountCredentials::Mcp(c) = &self.inner.accounts[index].credentials {
            if let Some(sub) = &c.sub_merchant_id {
                let header = headers
                    .get(mcp::HEADER_SUB_MERCHANT)
                    .and_then(|v| v.to_str().ok());
                if header != Some(sub.as_str()) {
                    return Err(unauthorized());
                }
            }
        }
        Ok(index)
    }

    /// Checks `x-req-signature` for these ids.
    fn check_signature(
        &self,
        index: usize,
        headers: &HeaderMap,
        external_id: &str,
        order_id: &str,
    ) -> Result<(), Refusal> {
        let AccountCredentials::Mcp(c) = &self.inner.accounts[index].credentials else {
            return Err(not_found());
        };
        let given = headers
            .get(mcp::HEADER_REQUEST_SIGNATURE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if c.verify_request_signature(external_id, order_id, given) {
            Ok(())
        } else {
            Err((
                StatusCode::UNAUTHORIZED,
                "99",
                "Invalid Signature".to_owned(),
            ))
        }
    }
}

fn parse_error(e: &ProtocolError) -> Refusal {
    bad_request(e.to_string())
}

/// Authenticates an inquiry or cancel: `(account, request)`.
fn authenticate(
    sb: &Sandbox,
    headers: &HeaderMap,
    body: &[u8],
    seen: &mut Seen,
) -> Result<(usize, VaLookupRequest), Refusal> {
    let index = sb.mcp_account(headers)?;
    seen.account = Some(sb.inner.accounts[index].id.clone());
    let req = VaLookupRequest::parse(body).map_err(|e| parse_error(&e))?;
    seen.reference = Some(req.external_id.clone());
    sb.check_signature(index, headers, &req.external_id, &req.order_id)?;
    Ok((index, req))
}

/// The VA a lookup names: its `external_id`, `order_id` and `transaction_id` must all match.
fn find<'a>(st: &'a State, index: usize, req: &VaLookupRequest) -> Result<&'a Va, Refusal> {
    let va = st.accounts[index]
        .vas
        .get(&req.external_id)
        .ok_or_else(not_found)?;
    if va.order_id != req.order_id || va.transaction_id != req.transaction_id {
        return Err(not_found());
    }
    Ok(va)
}

/// The VA number prefix of a bank, so numbers look like the bank's.
fn bank_prefix(channel: &str) -> &'static str {
    match channel.to_ascii_uppercase().as_str() {
        "BCA" | "BCA-POLYTRON" => "39358",
        "BNI" => "8808",
        "BRI" => "26215",
        "MANDIRI" => "89022",
        "PERMATA" => "8625",
        "CIMB" => "5919",
        "BSI" => "9347",
        _ => "7007",
    }
}

/// Authenticates a create request: `(account, request)`.
fn authenticate_create(
    sb: &Sandbox,
    headers: &HeaderMap,
    body: &[u8],
    seen: &mut Seen,
) -> Result<(usize, CreateVaRequest), Refusal> {
    let index = sb.mcp_account(headers)?;
    seen.account = Some(sb.inner.accounts[index].id.clone());
    let req = CreateVaRequest::parse(body).map_err(|e| parse_error(&e))?;
    seen.reference = Some(req.external_id.clone());
    sb.check_signature(index, headers, &req.external_id, &req.order_id)?;
    Ok((index, req))
}

/// Creates the VA an authenticated request asks for.
fn do_create(sb: &Sandbox, index: usize, req: &CreateVaRequest) -> Result<VaTransaction, Refusal> {
    let id_ok = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !id_ok(&req.external_id, 64) {
        return Err(bad_request(
            "external_id must be 1 to 64 letters, digits or '-'",
        ));
    }
    if !id_ok(&req.order_id, 25) {
        return Err(bad_request(
            "order_id must be 1 to 25 letters, digits or '-'",
        ));
    }
    if !req.currency.eq_ignore_ascii_case("IDR") {
        return Err(bad_request("currency must be IDR"));
    }
    if !req.payment_method.eq_ignore_ascii_case("bank_transfer") {
        return Err(bad_request("payment_method must be bank_transfer"));
    }
    if req.payment_channel.trim().is_empty() {
        return Err(bad_request("payment_channel is required"));
    }
    let d = &req.payment_details;
    let system = d.payment_system.unwrap_or(PaymentSystem::Closed);
    let multi_use = system == PaymentSystem::Open || d.is_multi_use.unwrap_or(false);
    let amount = match system {
        PaymentSystem::Open => 0,
        _ => d.amount.unwrap_or(0),
    };
    let now = sb.now();
    let expires_at = match &d.expired_time {
        Some(text) => {
            let t = clock::parse_time(text).ok_or_else(|| {
                bad_request("payment_details.expired_time must be ISO-8601, e.g. 2021-04-28T10:21:20.163+07:00")
            })?;
            if t <= now {
                return Err(bad_request("payment_details.expired_time is in the past"));
            }
            t
        }
        // 24 hours for a single CLOSED and a PARTIAL VA, ten years for multi-use and OPEN.
        None if system == PaymentSystem::Partial || !multi_use => now + time::Duration::days(1),
        None => now + time::Duration::days(3652),
    };
    let va_digits = d
        .va_number
        .clone()
        .filter(|v| !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()));
    if d.va_number.is_some() && va_digits.is_none() {
        return Err(bad_request(
            "payment_details.va_number must be at most 12 digits",
        ));
    }

    let mut st = sb.lock();
    sb.settle(&mut st, now);
    if st.accounts[index].vas.contains_key(&req.external_id) {
        return Err(bad_request(format!(
            "external_id {} already exists",
            req.external_id
        )));
    }
    let va_number = format!(
        "{}{}",
        bank_prefix(&req.payment_channel),
        va_digits.unwrap_or_else(|| st.digits(11))
    );
    let va = Va {
        transaction_id: st.uuid(),
        external_id: req.external_id.clone(),
        order_id: req.order_id.clone(),
        channel: req.payment_channel.to_ascii_uppercase(),
        system,
        multi_use,
        amount,
        billing_name: d.billing_name.clone().unwrap_or_default(),
        va_number,
        description: d.transaction_description.clone().unwrap_or_default(),
        created_at: now,
        expires_at,
        status: TransactionStatus::Active,
        payments: Vec::new(),
        customer: req.customer_details.clone(),
        items: req.item_details.clone(),
        billing_address: req.billing_address.clone(),
        callback_url: req.callback_url.clone(),
        additional_data: None,
    };
    let data = view(&va, INQUIRY_HISTORY);
    st.accounts[index].vas.insert(va.external_id.clone(), va);
    drop(st);
    sb.inner.wake.notify_one();
    Ok(data)
}

/// The VA as MCPayment describes it, listing at most `history` payments (newest last).
fn view(va: &Va, history: usize) -> VaTransaction {
    let last = va.payments.last();
    let skip = va.payments.len().saturating_sub(history);
    let payments: Vec<PaymentRecord> = va.payments[skip..]
        .iter()
        .map(|p| PaymentRecord {
            paid_amount: Some(p.amount),
            paid_time: Some(clock::mcp_time(p.at)),
            reference_id: Some(p.reference_id.clone()),
        })
        .collect();
    let mut tx = VaTransaction::new(
        &va.transaction_id,
        &va.external_id,
        &va.order_id,
        va.status.clone(),
    );
    tx.reference_id = last.map(|p| p.reference_id.clone());
    tx.currency = Some("IDR".to_owned());
    tx.payment_method = Some("BANK_TRANSFER".to_owned());
    tx.payment_channel = Some(va.channel.clone());
    tx.payment_system = Some(va.system);
    tx.transaction_time = Some(clock::mcp_time(last.map_or(va.created_at, |p| p.at)));
    tx.payment_details = Some(PaymentDetails {
        payment_system: Some(va.system),
        billing_name: Some(va.billing_name.clone()),
        va_number: Some(va.va_number.clone()),
        amount: Some(va.amount),
        total_fee_amount: Some(0),
        total_promo_amount: Some(0),
        total_amount: Some(va.amount),
        total_paid_amount: Some(va.total_paid()),
        is_multi_use: Some(va.multi_use),
        is_customer_paying_fee: Some(false),
        expired_time: Some(clock::mcp_time(va.expires_at)),
        paid_time: last.map(|p| clock::mcp_time(p.at)),
        transaction_description: Some(va.description.clone()),
    });
    tx.customer_details = Some(va.customer.clone());
    tx.item_details = va.items.clone();
    tx.billing_address = va.billing_address.clone();
    tx.issuer = last.map(|_| va.channel.clone());
    tx.additional_data = va.additional_data.clone();
    tx.callback_url = va.callback_url.clone();
    tx.payment_history = (!payments.is_empty()).then_some(payments);
    tx.transaction_type = last.map(|_| "on_us".to_owned());
    tx
}

/// Why a simulated payment is refused: HTTP status, error code, message.
pub(crate) type PayRefusal = (StatusCode, &'static str, String);

/// The result of a simulated payment.
pub(crate) struct Paid {
    pub account: usize,
    pub payment: VaPayment,
    pub va: VaTransaction,
    pub plan: Plan,
}

/// Takes a payment of `amount` into the VA `external_id` of account `index`.
pub(crate) fn pay(
    sb: &Sandbox,
    st: &mut State,
    index: usize,
    external_id: &str,
    amount: i64,
    now: OffsetDateTime,
) -> Result<Paid, PayRefusal> {
    let conflict = |msg: String| (StatusCode::CONFLICT, "not_payable", msg);
    let invalid = |msg: String| (StatusCode::BAD_REQUEST, "invalid_amount", msg);
    let reference_id = st.next_payment_reference();
    let va = st.accounts[index].vas.get_mut(external_id).ok_or_else(|| {
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
    let signature = match &account.credentials {
        AccountCredentials::Mcp(c) => {
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
        AccountCredentials::Iak { .. } => String::new(),
    };
    Delivery {
        account: index,
        reference: va.external_id.clone(),
        kind,
        url: va
            .callback_url
            .clone()
            .or_else(|| account.callback_url.clone()),
        body: body.encode(),
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
    let mut plan = Plan::default();
    if decisions.drop {
        let record = primary.record(
            &account.id,
            now,
            CallbackOutcome::Dropped,
            None,
            Some("not sent: drop fault".to_owned()),
            None,
        );
        plan.dropped.push(st.log.callback(record));
        return plan;
    }
    plan.deliveries.push((due, primary.clone()));
    if decisions.duplicate {
        plan.deliveries.push((
            due,
            Delivery {
                kind: CallbackKind::Duplicate,
                ..primary
            },
        ));
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
pub(crate) fn expire_due(sb: &Sandbox, st: &mut State, now: OffsetDateTime) {
    let mut expired = Vec::new();
    for (index, acc) in st.accounts.iter_mut().enumerate() {
        for va in acc.vas.values_mut() {
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
        st.schedule(now, crate::state::Job::Deliver(d));
    }
}
