//! IAK and IDSL prepaid: `/api/top-up`, `/api/check-status`, `/api/check-balance`,
//! `/api/pricelist[/{type}[/{operator}]]` (v2) and `/v1/legacy/index[/{type}[/{operator}]]`
//! with `commands` (v1), in JSON or XML, answered in the format and names of the request.
//!
//! Rules, as the documents give them (protocols.md §1):
//! - the account is the one whose `username` the request carries; a wrong `sign` (or an
//!   unknown username) is answered rc 204 WRONG AUTHENTICATION;
//! - a malformed body is rc 107 (HTTP 400), an unknown v1 command rc 205 (HTTP 400), a path
//!   with too many segments rc 117 (HTTP 404); every other answer is HTTP 200;
//! - a top-up debits the product's price from the deposit and first answers status 0, rc 39
//!   PROCESS; when the deposit is short it fails at once with rc 17, an unknown product with
//!   rc 20, an inactive one with rc 106; these immediate failures are kept (check-status
//!   repeats them) but send no callback;
//! - a top-up with a `ref_id` already used answers as check-status does (and creates nothing);
//! - a failed top-up gives its price back; `balance` in answers is the deposit at that time,
//!   and in callbacks the deposit once the outcome is applied;
//! - check-status of an unknown `ref_id` is rc 06.
//!
//! How a top-up ends: see [`super::scenario`]. Production accounts end it by themselves after
//! `callback_delay_ms`; development accounts only when `POST /sandbox/report` says so.

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use lunas_protocol::iak::prepaid::{
    BalanceResult, PrepaidCallback, PrepaidCommand, PrepaidRequest, PrepaidResult, PrepaidStatus,
    PriceListResult,
};
use lunas_protocol::iak::rc;
use lunas_protocol::sign::{iak_sign, IakSignInput};
use lunas_protocol::{ApiVersion, Decoded, ProtocolError, Secret};
use time::OffsetDateTime;

use super::catalogue::{self, Goods, Product};
use super::scenario::{self, PrepaidOutcome};
use super::{held, held_mut, refusal_format};
use crate::callbacks::{Delivery, Plan};
use crate::config::{AccountCredentials, AccountKind, Environment};
use crate::control::TransactionInfo;
use crate::faults::{self, CheckFault, OrderFault};
use crate::http::{self, Refusal, Seen};
use crate::log::CallbackKind;
use crate::providers::{Report, Reported};
use crate::state::{Job, State};
use crate::{clock, Sandbox};

/// What reports and the transaction list call a top-up.
pub(super) const KIND: &str = "prepaid";
/// The sequence of prepaid `tr_id`s, shared by every IAK/IDSL account.
const TR_IDS: &str = "iak.prepaid.tr_id";
/// The first prepaid `tr_id`.
const FIRST_TR_ID: i64 = 6_159_301;

/// Customer numbers longer than this are refused with rc 203 NUMBER IS TOO LONG.
const MAX_CUSTOMER_ID: usize = 32;

/// Names printed on PLN tokens, chosen by customer number.
const PLN_NAMES: [&str; 4] = [
    "PT INDOBEST ARTHA KREASI",
    "BUDI SANTOSO",
    "SITI AMINAH",
    "AGUS SETIAWAN",
];

/// What a successful top-up delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub sn: Option<String>,
    pub pin: Option<String>,
    pub activation_code: Option<String>,
}

/// A prepaid top-up.
#[derive(Debug, Clone)]
pub(crate) struct PrepaidTx {
    pub ref_id: String,
    pub customer_id: String,
    pub product_code: String,
    pub price: i64,
    pub tr_id: i64,
    pub status: PrepaidStatus,
    pub rc: String,
    /// How it ends when nobody intervenes.
    pub outcome: PrepaidOutcome,
    pub delivered: Delivered,
    /// When the top-up was received.
    pub created_at: OffsetDateTime,
}

/// The handler of every prepaid path.
pub(crate) async fn handle(AxumState(sb): AxumState<Sandbox>, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let (response, seen) = answer(&sb, &path, &body).await;
    sb.seen("POST", &path, response.status(), seen);
    response
}

/// The rc and HTTP status that refuse a request the protocol parser did not accept.
fn refusal(e: &ProtocolError) -> (&'static str, StatusCode) {
    match e {
        ProtocolError::UnknownValue { field, .. } if field == "commands" => {
            ("205", StatusCode::BAD_REQUEST)
        }
        ProtocolError::UnknownValue { field, .. } if field == "path" => {
            ("117", StatusCode::NOT_FOUND)
        }
        _ => ("107", StatusCode::BAD_REQUEST),
    }
}

/// An answer that carries only a response code and its text.
fn bare(code: &str, reference: Option<&str>) -> PrepaidResult {
    PrepaidResult {
        ref_id: reference.map(str::to_owned),
        message: rc::prepaid(code).map(|r| r.text.to_owned()),
        rc: code.to_owned(),
        ..PrepaidResult::default()
    }
}

fn command_name(c: &PrepaidCommand) -> &'static str {
    match c {
        PrepaidCommand::TopUp { .. } => "top-up",
        PrepaidCommand::CheckStatus { .. } => "check-status",
        PrepaidCommand::Balance { .. } => "balance",
        PrepaidCommand::PriceList { .. } => "pricelist",
        PrepaidCommand::InquiryPln { .. } => "inquiry-pln",
    }
}

async fn answer(sb: &Sandbox, path: &str, bytes: &[u8]) -> (Response, Seen) {
    let mut seen = Seen::default();
    let Decoded {
        message: req,
        format,
        version,
    } = match PrepaidRequest::parse(path, bytes) {
        Ok(d) => d,
        Err(e) => {
            let format = refusal_format(bytes);
            let (code, status) = refusal(&e);
            seen.rc = Some(code.to_owned());
            let mut body = bare(code, None);
            body.message = Some(format!(
                "{} ({e})",
                rc::prepaid(code).map_or("ERROR", |r| r.text)
            ));
            return (
                http::provider(status, format, body.encode(format, ApiVersion::V2)),
                seen,
            );
        }
    };
    seen.command = Some(command_name(&req.command));
    let reference = match &req.command {
        PrepaidCommand::TopUp { ref_id, .. } | PrepaidCommand::CheckStatus { ref_id } => {
            Some(ref_id.as_str())
        }
        _ => None,
    };
    seen.reference = reference.map(str::to_owned);

    let Some(index) = sb.iak_account(&req.username, |key| req.verify(key)) else {
        seen.rc = Some("204".to_owned());
        let body = bare("204", reference).encode(format, version);
        return (http::provider(StatusCode::OK, format, body), seen);
    };
    let account = &sb.inner.accounts[index];
    seen.account = Some(account.id.clone());

    if matches!(req.command, PrepaidCommand::CheckStatus { .. }) {
        if let Some(fault) = sb.check_status_fault(index) {
            seen.fault = Some(fault.as_str());
            match fault {
                CheckFault::ServerError => return (faults::server_error(), seen),
                CheckFault::Garbage(n) => return (faults::garbage(n), seen),
                CheckFault::Hang(d) => {
                    if !sb.hang(d).await {
                        return (faults::server_error(), seen);
                    }
                }
            }
        }
    }

    // A top-up is an order: it meets the order faults, re-sent or not.
    let order_fault = match req.command {
        PrepaidCommand::TopUp { .. } => sb.order_fault(index),
        _ => None,
    };
    if let Some(fault) = order_fault {
        seen.fault = Some(fault.as_str());
        if fault == OrderFault::ServerErrorBeforeCommit {
            return (faults::server_error(), seen);
        }
    }

    let now = sb.now();
    // The lock is held in this block only: never across the await below.
    let result = {
        let mut st = sb.lock();
        sb.settle(&mut st, now);
        match &req.command {
            PrepaidCommand::TopUp {
                ref_id,
                customer_id,
                product_code,
            } => top_up(sb, &mut st, index, ref_id, customer_id, product_code, now),
            PrepaidCommand::CheckStatus { ref_id } => {
                match held(&st, index).and_then(|h| h.prepaid.get(ref_id)) {
                    Some(tx) => view(tx, st.accounts[index].balance),
                    None => bare("06", Some(ref_id)),
                }
            }
            PrepaidCommand::Balance { .. } => {
                let balance = st.accounts[index].balance;
                drop(st);
                let result = match version {
                    ApiVersion::V1 => BalanceResult {
                        balance: Some(balance),
                        ..BalanceResult::default()
                    },
                    ApiVersion::V2 => BalanceResult {
                        balance: Some(balance),
                        currency: (account.kind == AccountKind::Idsl).then(|| "IDR".to_owned()),
                        message: Some("SUCCESS".to_owned()),
                        rc: Some("00".to_owned()),
                    },
                };
                seen.rc = result.rc.clone();
                return (
                    http::provider(StatusCode::OK, format, result.encode(format)),
                    seen,
                );
            }
            PrepaidCommand::InquiryPln { customer_id } => {
                drop(st);
                let result = pln_inquiry(customer_id);
                seen.rc = Some(result.rc.clone());
                return (
                    http::provider(StatusCode::OK, format, result.encode(format, version)),
                    seen,
                );
            }
            PrepaidCommand::PriceList {
                product_type,
                operator,
                status,
            } => {
                drop(st);
                let result = PriceListResult {
                    pricelist: catalogue::price_list(
                        product_type.as_deref(),
                        operator.as_deref(),
                        status.as_deref(),
                    ),
                    rc: Some("00".to_owned()),
                    message: Some("SUCCESS".to_owned()),
                };
                seen.rc = Some("00".to_owned());
                return (
                    http::provider(StatusCode::OK, format, result.encode(format, version)),
                    seen,
                );
            }
        }
    };
    sb.inner.wake.notify_one();
    seen.rc = Some(result.rc.clone());
    let response = http::provider(StatusCode::OK, format, result.encode(format, version));
    let response = sb.order_answer(order_fault, response, &mut seen).await;
    (response, seen)
}

fn top_up(
    sb: &Sandbox,
    st: &mut State,
    index: usize,
    ref_id: &str,
    customer_id: &str,
    product_code: &str,
    now: OffsetDateTime,
) -> PrepaidResult {
    if let Some(tx) = held(st, index).and_then(|h| h.prepaid.get(ref_id)) {
        return view(tx, st.accounts[index].balance);
    }
    let account = &sb.inner.accounts[index];
    let product = catalogue::prepaid(product_code);
    let balance = st.accounts[index].balance;
    let price = product.map_or(0, |p| p.price);
    let refused = match product {
        None => Some("20"),
        Some(p) if !p.active => Some("106"),
        Some(_) if customer_id.trim().is_empty() => Some("14"),
        Some(_) if customer_id.len() > MAX_CUSTOMER_ID => Some("203"),
        Some(p) if balance < p.price => Some("17"),
        Some(_) => None,
    };
    let (status, code, outcome) = match refused {
        Some(code) => (
            PrepaidStatus::Failed,
            code,
            PrepaidOutcome::Fail {
                rc: code.to_owned(),
            },
        ),
        None => {
            st.accounts[index].balance -= price;
            let outcome = scenario::prepaid(customer_id);
            let code = match &outcome {
                PrepaidOutcome::StayPending { rc } if rc == "201" => "201",
                _ => "39",
            };
            (PrepaidStatus::Process, code, outcome)
        }
    };
    let tx = PrepaidTx {
        ref_id: ref_id.to_owned(),
        customer_id: customer_id.to_owned(),
        product_code: product_code.to_owned(),
        price,
        tr_id: st.next_in(TR_IDS, FIRST_TR_ID),
        status,
        rc: code.to_owned(),
        outcome,
        delivered: Delivered::default(),
        created_at: now,
    };
    if tx.status == PrepaidStatus::Process
        && account.environment == Environment::Production
        && !matches!(tx.outcome, PrepaidOutcome::StayPending { .. })
    {
        let jitter = faults::decide(sb.inner.seed, &account.id, ref_id, &account.faults).jitter;
        st.schedule(
            now + account.callback_delay + jitter,
            Job::Finalize {
                account: index,
                ref_id: ref_id.to_owned(),
            },
        );
    }
    let result = view(&tx, st.accounts[index].balance);
    if let Some(h) = held_mut(st, index) {
        h.prepaid.insert(ref_id.to_owned(), tx);
    }
    result
}

/// The message IAK writes for a transaction in this status with this rc.
fn message(status: PrepaidStatus, code: &str) -> String {
    match status {
        PrepaidStatus::Process => "PROCESS".to_owned(),
        PrepaidStatus::Success => "SUCCESS".to_owned(),
        PrepaidStatus::Failed => rc::prepaid(code).map_or("FAILED", |r| r.text).to_owned(),
    }
}

/// The answer to a PLN meter inquiry, shaped as IAK's (`status`, `customer_id`, `meter_no`,
/// `subscriber_id`, `name`, `segment_power`, `message`, `rc`). The test numbers of top-ups
/// apply: a number ending `1<rc>` with a failure rc (`...1014`) fails with that rc.
fn pln_inquiry(customer_id: &str) -> PrepaidResult {
    match scenario::prepaid(customer_id) {
        PrepaidOutcome::Fail { rc: code } => PrepaidResult {
            status: Some(PrepaidStatus::Failed),
            customer_id: Some(customer_id.to_owned()),
            message: Some(message(PrepaidStatus::Failed, &code)),
            rc: code,
            ..PrepaidResult::default()
        },
        _ => PrepaidResult {
            status: Some(PrepaidStatus::Success),
            customer_id: Some(customer_id.to_owned()),
            meter_no: Some(customer_id.to_owned()),
            subscriber_id: Some(customer_id.to_owned()),
            name: Some(format!(
                "PELANGGAN {}",
                customer_id
                    .chars()
                    .skip(customer_id.chars().count().saturating_sub(4))
                    .collect::<String>()
            )),
            segment_power: Some("R1M /000000900".to_owned()),
            message: Some("SUCCESS".to_owned()),
            rc: "00".to_owned(),
            ..PrepaidResult::default()
        },
    }
}

/// The check-status answer for a transaction.
fn view(tx: &PrepaidTx, balance: i64) -> PrepaidResult {
    let success = tx.status == PrepaidStatus::Success;
    PrepaidResult {
        ref_id: Some(tx.ref_id.clone()),
        status: Some(tx.status),
        product_code: Some(tx.product_code.clone()),
        customer_id: Some(tx.customer_id.clone()),
        price: Some(tx.price),
        message: Some(message(tx.status, &tx.rc)),
        sn: tx.delivered.sn.clone().filter(|_| success),
        pin: tx.delivered.pin.clone().filter(|_| success),
        activation_code: tx.delivered.activation_code.clone().filter(|_| success),
        balance: Some(balance),
        tr_id: Some(tx.tr_id),
        rc: tx.rc.clone(),
        ..PrepaidResult::default()
    }
}

/// What a successful top-up of `product` to `customer_id` delivers (documented `sn` formats).
fn goods(
    st: &mut State,
    product: Option<&Product>,
    customer_id: &str,
    now: OffsetDateTime,
) -> Delivered {
    let kind = product.map_or(Goods::Serial, |p| p.goods);
    match kind {
        Goods::Serial => Delivered {
            sn: Some(st.digits(12)),
            ..Delivered::default()
        },
        Goods::Game { pin } => {
            let sn = (0..4).map(|_| st.letters(4)).collect::<Vec<_>>().join("-");
            Delivered {
                sn: Some(sn),
                pin: pin.then(|| st.digits(9)),
                activation_code: None,
            }
        }
        Goods::Esim => Delivered {
            sn: Some(format!("8962{}", st.digits(15))),
            pin: None,
            activation_code: Some(format!(
                "LPA:1$v1-aktivasi-esim.com${}",
                st.alphanumeric(32)
            )),
        },
        Goods::PlnToken => {
            let token = (0..5).map(|_| st.digits(4)).collect::<Vec<_>>().join("-");
            let sum: u32 = customer_id
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|d| u32::from(d - b'0'))
                .sum();
            let name = PLN_NAMES[usize::try_from(sum).unwrap_or(0) % PLN_NAMES.len()];
            // kWh at Rp 1.444,70 per kWh, in tenths, rounded down.
            let face: i64 = product.and_then(|p| p.nominal.parse().ok()).unwrap_or(0);
            let tenths = face.saturating_mul(1_000) / 144_470;
            Delivered {
                sn: Some(format!(
                    "{token}/{name}/R1 /000001300/{}.{}",
                    tenths / 10,
                    tenths % 10
                )),
                ..Delivered::default()
            }
        }
        Goods::Voucher => {
            let code = st.alphanumeric(12);
            let expires = clock::date(now + time::Duration::days(365));
            Delivered {
                sn: Some(format!("{code} / {expires}")),
                ..Delivered::default()
            }
        }
    }
}

/// Ends a top-up still in process: by its scenario (`decision` `None`), or as a report says
/// (`Some(true)` success, `Some(false)` failed). Returns the callbacks to send, or `None` when
/// there is nothing to end.
pub(crate) fn finalize(
    sb: &Sandbox,
    st: &mut State,
    index: usize,
    ref_id: &str,
    decision: Option<bool>,
    now: OffsetDateTime,
) -> Option<Plan> {
    let tx = held(st, index)?.prepaid.get(ref_id)?;
    if tx.status != PrepaidStatus::Process {
        return None;
    }
    let success = match (decision, &tx.outcome) {
        (Some(s), _) => s,
        (None, PrepaidOutcome::Succeed) => true,
        (None, PrepaidOutcome::Fail { .. }) => false,
        (None, PrepaidOutcome::StayPending { .. }) => return None,
    };
    let code = match (&tx.outcome, success) {
        (_, true) => "00".to_owned(),
        (PrepaidOutcome::Fail { rc }, false) => rc.clone(),
        (_, false) => "07".to_owned(),
    };
    let product = catalogue::prepaid(&tx.product_code);
    let customer_id = tx.customer_id.clone();
    let price = tx.price;
    let delivered = if success {
        goods(st, product, &customer_id, now)
    } else {
        Delivered::default()
    };
    let acc = &mut st.accounts[index];
    if !success {
        acc.balance = acc.balance.saturating_add(price);
    }
    let balance = acc.balance;
    let tx = acc
        .held
        .get_mut::<super::Transactions>()?
        .prepaid
        .get_mut(ref_id)?;
    tx.status = if success {
        PrepaidStatus::Success
    } else {
        PrepaidStatus::Failed
    };
    tx.rc = code;
    tx.delivered = delivered;
    let tx = tx.clone();
    Some(plan(sb, st, index, &tx, balance, now))
}

/// The callback of a transaction in its current state.
fn callback(tx: &PrepaidTx, balance: i64) -> PrepaidCallback {
    PrepaidCallback {
        ref_id: tx.ref_id.clone(),
        status: tx.status,
        product_code: tx.product_code.clone(),
        customer_id: tx.customer_id.clone(),
        price: tx.price,
        message: message(tx.status, &tx.rc),
        sn: tx.delivered.sn.clone(),
        pin: tx.delivered.pin.clone(),
        activation_code: tx.delivered.activation_code.clone(),
        balance,
        tr_id: tx.tr_id,
        rc: tx.rc.clone(),
        sign: String::new(),
    }
}

/// Plans the callbacks of a top-up that just ended, with the account's faults.
fn plan(
    sb: &Sandbox,
    st: &mut State,
    index: usize,
    tx: &PrepaidTx,
    balance: i64,
    now: OffsetDateTime,
) -> Plan {
    let account = &sb.inner.accounts[index];
    let AccountCredentials::Iak { username, api_key } = &account.credentials else {
        return Plan::default();
    };
    let decisions = faults::decide(sb.inner.seed, &account.id, &tx.ref_id, &account.faults);
    let format = account.callback_format;
    let version = account.api_version;
    let delivery = |cb: &PrepaidCallback, kind: CallbackKind, wrong: bool| Delivery {
        account: index,
        reference: tx.ref_id.clone(),
        kind,
        url: account.callback_url.clone(),
        body: cb.encode(format, version),
        content_type: format.content_type(),
        mcp_signature: None,
        signature_wrong: wrong,
        attempt: 1,
    };
    let signed = callback(tx, balance).signed(username, api_key);
    let mut first = signed.clone();
    if decisions.wrong_signature {
        // Signed with a key that is not the account's: verifies against nothing.
        first.sign = iak_sign(
            username,
            &Secret::new(format!("not-the-key-of-{username}")),
            IakSignInput::RefId(&tx.ref_id),
        );
    }
    let primary = delivery(&first, CallbackKind::Final, decisions.wrong_signature);
    let (mut plan, sent) = Plan::primary(&mut st.log, &account.id, now, now, primary, &decisions);
    if !sent {
        return plan;
    }
    if decisions.conflicting {
        let mut opposite = tx.clone();
        if tx.status == PrepaidStatus::Success {
            opposite.status = PrepaidStatus::Failed;
            opposite.rc = "07".to_owned();
            opposite.delivered = Delivered::default();
        } else {
            opposite.status = PrepaidStatus::Success;
            opposite.rc = "00".to_owned();
            opposite.delivered = goods(
                st,
                catalogue::prepaid(&tx.product_code),
                &tx.customer_id,
                now,
            );
        }
        let cb = callback(&opposite, balance).signed(username, api_key);
        plan.deliveries
            .push((now, delivery(&cb, CallbackKind::Conflicting, false)));
    }
    if decisions.out_of_order {
        let mut stale = tx.clone();
        stale.status = PrepaidStatus::Process;
        stale.rc = "39".to_owned();
        stale.delivered = Delivered::default();
        let cb = callback(&stale, balance).signed(username, api_key);
        plan.deliveries
            .push((now, delivery(&cb, CallbackKind::OutOfOrder, false)));
    }
    plan
}

/// `POST /sandbox/report` on a top-up: ends it as the report says and plans its callbacks, as
/// clicking SUCCESS or FAILED in IAK's sandbox report does (once per transaction).
pub(super) fn report(r: &Report<'_>, st: &mut State) -> Result<Reported, Refusal> {
    let unknown = || {
        (
            StatusCode::NOT_FOUND,
            "unknown_ref",
            format!("no prepaid transaction has ref {}", r.reference),
        )
    };
    let status = held(st, r.index)
        .and_then(|h| h.prepaid.get(r.reference))
        .ok_or_else(unknown)?
        .status;
    if status != PrepaidStatus::Process {
        let word = if status == PrepaidStatus::Success {
            "succeeded"
        } else {
            "failed"
        };
        return Err((
            StatusCode::CONFLICT,
            "already_final",
            format!("the transaction already {word}; a report acts once"),
        ));
    }
    let plan = finalize(r.sb, st, r.index, r.reference, Some(r.success), r.now);
    let tx = held(st, r.index)
        .and_then(|h| h.prepaid.get(r.reference))
        .ok_or_else(unknown)?;
    Ok(Reported {
        kind: KIND,
        status: tx.status.code(),
        rc: tx.rc.clone(),
        plan,
    })
}

/// A top-up as `GET /sandbox/transactions` lists it.
pub(super) fn info(account: &str, tx: &PrepaidTx) -> TransactionInfo {
    TransactionInfo {
        account: account.to_owned(),
        kind: KIND.to_owned(),
        reference: tx.ref_id.clone(),
        status: match tx.status {
            PrepaidStatus::Process => "process",
            PrepaidStatus::Success => "success",
            PrepaidStatus::Failed => "failed",
        }
        .to_owned(),
        rc: Some(tx.rc.clone()),
        tr_id: Some(tx.tr_id),
        transaction_id: None,
        order_id: None,
        created_at: clock::rfc3339(tx.created_at),
        paid: None,
        paid_at: None,
        product_code: Some(tx.product_code.clone()),
        customer_id: Some(tx.customer_id.clone()),
        amount: tx.price,
        selling_price: None,
        total_paid_amount: None,
    }
}
