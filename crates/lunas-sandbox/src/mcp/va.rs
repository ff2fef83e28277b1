//! MCPayment's virtual account API: `POST /va` creates a VA, `/va/inquiry` shows it (with its
//! latest payments), `/va/cancel` cancels one still payable. Requests are authenticated by
//! their `Authorization` (and `sub-merchant-id`) headers and signed with `x-req-signature`;
//! the rules are in [`super`].

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use lunas_protocol::mcp::{
    self, CreateVaRequest, McpResponse, PaymentDetails, PaymentRecord, PaymentSystem, RefundRecord,
    TransactionStatus, VaLookupRequest, VaTransaction,
};
use lunas_protocol::ProtocolError;

use super::{credentials, held, held_mut, Va};
use crate::clock;
use crate::faults::{self, CheckFault, OrderFault};
use crate::http::{self, Seen};
use crate::state::State;
use crate::Sandbox;

/// How many payments an inquiry lists, newest last (the documents say "the latest 5").
pub(super) const INQUIRY_HISTORY: usize = 5;

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
        let va = held_mut(&mut st, index)
            .and_then(|h| h.vas.get_mut(&req.external_id))
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
            .position(|a| credentials(a).is_some_and(|c| c.verify_authorization(given)))
            .ok_or_else(unauthorized)?;
        if let Some(c) = credentials(&self.inner.accounts[index]) {
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
        let Some(c) = credentials(&self.inner.accounts[index]) else {
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
    let va = held(st, index)
        .and_then(|h| h.vas.get(&req.external_id))
        .ok_or_else(not_found)?;
    if va.order_id != req.order_id || va.transaction_id != req.transaction_id {
        return Err(not_found());
    }
    Ok(va)
}

/// The least an OPEN VA takes (iFortepay's PG3 page; BNI excepted).
pub(super) const OPEN_MINIMUM: i64 = 10_000;

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
    // iFortepay's create page marks the customer's email and full name mandatory.
    let filled = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if !filled(&req.customer_details.email) {
        return Err(bad_request("customer_details.email is required"));
    }
    if !filled(&req.customer_details.full_name) {
        return Err(bad_request("customer_details.full_name is required"));
    }
    let d = &req.payment_details;
    let system = d.payment_system.unwrap_or(PaymentSystem::Closed);
    // An OPEN VA takes any amount from IDR 10,000 (BNI excepted), so one asking for less is
    // refused.
    if system == PaymentSystem::Open
        && !req.payment_channel.eq_ignore_ascii_case("BNI")
        && d.amount.is_some_and(|a| a > 0 && a < OPEN_MINIMUM)
    {
        return Err(bad_request(format!(
            "an OPEN virtual account takes at least {OPEN_MINIMUM} rupiah"
        )));
    }
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
    if held(&st, index).is_some_and(|h| h.vas.contains_key(&req.external_id)) {
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
        shipping_address: req.shipping_address.clone(),
        callback_url: req.callback_url.clone(),
        additional_data: req.additional_data.clone(),
        refunds: Vec::new(),
        transaction_type: None,
    };
    let data = view(&va, INQUIRY_HISTORY);
    if let Some(h) = held_mut(&mut st, index) {
        h.vas.insert(va.external_id.clone(), va);
    }
    drop(st);
    sb.inner.wake.notify_one();
    Ok(data)
}

/// The VA as MCPayment describes it, listing at most `history` payments (newest last).
pub(super) fn view(va: &Va, history: usize) -> VaTransaction {
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
    tx.shipping_address = va.shipping_address.clone();
    tx.issuer = last.map(|_| va.channel.clone());
    tx.additional_data = va.additional_data.clone();
    tx.callback_url = va.callback_url.clone();
    tx.payment_history = (!payments.is_empty()).then_some(payments);
    tx.refund_history = (!va.refunds.is_empty()).then(|| {
        va.refunds
            .iter()
            .map(|r| RefundRecord {
                refund_time: Some(clock::mcp_time(r.at)),
                refund_amount: Some(r.amount),
            })
            .collect()
    });
    tx.transaction_type = va
        .transaction_type
        .clone()
        .or_else(|| last.map(|_| "on_us".to_owned()));
    tx
}
