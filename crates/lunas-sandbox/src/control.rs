//! The sandbox's own endpoints, for developers, tests and demos:
//!
//! - `POST /sandbox/report` `{"ref", "outcome": "success"|"failed", "account"?}` ends a
//!   prepaid top-up still in process and sends its callback(s) at once, as clicking SUCCESS or
//!   FAILED in IAK's sandbox report does (one action per transaction), or settles a postpaid
//!   payment in process. 200 with the callbacks sent and the receivers' answers; 404 unknown
//!   ref; 409 when the transaction is not in process; 400 when the ref exists in several
//!   accounts and `account` is missing.
//! - `POST /sandbox/va/pay` `{"external_id", "amount", "account"?}` simulates a bank paying
//!   into a virtual account. 200 with the VA's new state and the callback outcome; 404
//!   unknown VA; 409 expired, cancelled or fully paid; 400 an amount the VA does not take.
//! - `POST /sandbox/deposit` `{"account", "amount"}` adds to an IAK/IDSL deposit (IAK's "+"
//!   button). 200 `{"account", "balance"}`.
//! - `GET /sandbox/log[?account=..&ref=..]` lists what the sandbox did ([`crate::log`]).
//! - `GET /sandbox/accounts` lists the accounts and their deposits (no secrets).
//! - `GET /sandbox/transactions?ref=..[&account=..]` lists every provider-side transaction
//!   held under a ref: prepaid top-ups and postpaid bills by `ref_id`, VAs by `external_id`,
//!   in every account or only the one named. 200 `{"items": [..]}` ([`TransactionInfo`]);
//!   400 without `ref`; 404 unknown account.
//!
//! Errors are `{"error": {"code", "message"}}`.

use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::Response;
use lunas_protocol::iak::postpaid::{PostpaidResult, PostpaidStatus};
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::VaTransaction;
use serde::{Deserialize, Serialize};

use crate::config::AccountKind;
use crate::http::{self, Seen};
use crate::log::CallbackRecord;
use crate::state::{PostpaidTx, PrepaidTx, Va};
use crate::{clock, iak, mcp, postpaid, Sandbox};

/// The body of `POST /sandbox/report`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    #[serde(rename = "ref")]
    pub reference: String,
    pub outcome: ReportOutcome,
    #[serde(default)]
    pub account: Option<String>,
}

/// The outcome a report chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportOutcome {
    Success,
    Failed,
}

/// The answer of `POST /sandbox/report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportAnswer {
    pub account: String,
    #[serde(rename = "ref")]
    pub reference: String,
    /// `prepaid` or `postpaid`.
    pub kind: String,
    /// The transaction's status code after the report (prepaid 1/2, postpaid 1/2).
    pub status: i64,
    /// Its response code after the report.
    pub rc: String,
    /// Every callback the report caused, in sending order (none for postpaid).
    pub callbacks: Vec<CallbackRecord>,
    /// The first of them: the final callback and the receiver's answer.
    pub callback: Option<CallbackRecord>,
}

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

/// The body of `POST /sandbox/deposit`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DepositRequest {
    pub account: String,
    pub amount: i64,
}

/// The query of `GET /sandbox/log`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

/// The query of `GET /sandbox/transactions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionsQuery {
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
}

/// One provider-side transaction, as `GET /sandbox/transactions` lists it. Fields that do not
/// apply to its kind are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionInfo {
    pub account: String,
    /// `prepaid`, `postpaid` or `va`.
    pub kind: String,
    /// The prepaid or postpaid `ref_id`, or the VA's `external_id`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Prepaid `process`, `success` or `failed`; postpaid `inquired`, `processing`, `paid` or
    /// `failed`; a VA's `transaction_status` (`ACTIVE`, `PAID`, `EXPIRED`, `CANCELED`).
    pub status: String,
    /// The response code check-status would answer (prepaid `rc`, postpaid `response_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rc: Option<String>,
    /// IAK's `tr_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tr_id: Option<i64>,
    /// MCPayment's `transaction_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// MCPayment's `order_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// When the top-up, the inquiry or the VA was made: RFC 3339, UTC.
    pub created_at: String,
    /// Postpaid: whether the bill is paid; VA: whether any payment was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid: Option<bool>,
    /// Postpaid: when the payment succeeded or failed; VA: the last payment. RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    /// The prepaid `product_code` or the postpaid biller `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    /// The prepaid `customer_id` or the postpaid `hp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// In rupiah: the prepaid `price`, the postpaid `price` (nominal and admin) or the VA's
    /// `amount` (0 for an OPEN VA).
    pub amount: i64,
    /// Postpaid: what the deposit is (or would be) debited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selling_price: Option<i64>,
    /// VA: the sum of its payments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_paid_amount: Option<i64>,
}

impl TransactionInfo {
    fn prepaid(account: &str, tx: &PrepaidTx) -> Self {
        TransactionInfo {
            account: account.to_owned(),
            kind: "prepaid".to_owned(),
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

    fn postpaid(account: &str, tx: &PostpaidTx) -> Self {
        TransactionInfo {
            account: account.to_owned(),
            kind: "postpaid".to_owned(),
            reference: tx.ref_id.clone(),
            status: match tx.status {
                PostpaidStatus::NotReceived => "inquired",
                PostpaidStatus::Processing => "processing",
                PostpaidStatus::Success => "paid",
                PostpaidStatus::Failed => "failed",
            }
            .to_owned(),
            rc: Some(tx.response_code.clone()),
            tr_id: Some(tx.tr_id),
            transaction_id: None,
            order_id: None,
            created_at: clock::rfc3339(tx.created_at),
            paid: Some(tx.status == PostpaidStatus::Success),
            paid_at: tx.paid_at.map(clock::rfc3339),
            product_code: Some(tx.biller.code.to_owned()),
            customer_id: Some(tx.hp.clone()),
            amount: tx.price(),
            selling_price: Some(tx.selling_price()),
            total_paid_amount: None,
        }
    }

    fn va(account: &str, va: &Va) -> Self {
        TransactionInfo {
            account: account.to_owned(),
            kind: "va".to_owned(),
            reference: va.external_id.clone(),
            status: va.status.as_str().to_owned(),
            rc: None,
            tr_id: None,
            transaction_id: Some(va.transaction_id.clone()),
            order_id: Some(va.order_id.clone()),
            created_at: clock::rfc3339(va.created_at),
            paid: Some(!va.payments.is_empty()),
            paid_at: va.payments.last().map(|p| clock::rfc3339(p.at)),
            product_code: None,
            customer_id: None,
            amount: va.amount,
            selling_price: None,
            total_paid_amount: Some(va.total_paid()),
        }
    }
}

/// The answer of `GET /sandbox/transactions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransactionsAnswer {
    pub items: Vec<TransactionInfo>,
}

/// A refusal of a control request: HTTP status, error code, message.
type Refusal = (StatusCode, &'static str, String);

fn refuse((status, code, message): Refusal) -> Response {
    http::error(status, code, message)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

/// Which transaction a report names.
enum Target {
    Prepaid(usize),
    Postpaid(usize),
}

/// `POST /sandbox/report`.
pub(crate) async fn report(AxumState(sb): AxumState<Sandbox>, body: Bytes) -> Response {
    let mut seen = Seen {
        command: Some("report"),
        ..Seen::default()
    };
    let response = match parse::<ReportRequest>(&body) {
        Err(r) => refuse(r),
        Ok(req) => {
            seen.reference = Some(req.reference.clone());
            seen.account = req.account.clone();
            do_report(&sb, req, &mut seen).await
        }
    };
    sb.seen("POST", "/sandbox/report", response.status(), seen);
    response
}

/// What a report decided before any callback is sent.
enum Reported {
    /// The answer is ready (postpaid, or a refusal).
    Done(Response),
    /// A prepaid top-up ended: its callbacks remain to be sent.
    Prepaid {
        account: String,
        tx: crate::state::PrepaidTx,
        plan: Option<crate::callbacks::Plan>,
    },
}

async fn do_report(sb: &Sandbox, req: ReportRequest, seen: &mut Seen) -> Response {
    let reference = req.reference.clone();
    let (account, tx, plan) = match decide_report(sb, req, seen) {
        Reported::Done(response) => return response,
        Reported::Prepaid { account, tx, plan } => (account, tx, plan),
    };
    let callbacks = match plan {
        Some(plan) => sb.execute(plan).await,
        None => Vec::new(),
    };
    seen.rc = Some(tx.rc.clone());
    http::json(
        StatusCode::OK,
        &ReportAnswer {
            account,
            reference,
            kind: "prepaid".to_owned(),
            status: tx.status.code(),
            rc: tx.rc,
            callback: callbacks.first().cloned(),
            callbacks,
        },
    )
}

fn decide_report(sb: &Sandbox, req: ReportRequest, seen: &mut Seen) -> Reported {
    use Reported::Done;
    if let Some(id) = &req.account {
        match sb.account_index(id) {
            Some(i) if sb.inner.accounts[i].kind != AccountKind::Mcp => {}
            Some(_) => {
                return Done(http::error(
                    StatusCode::BAD_REQUEST,
                    "not_reportable",
                    format!(
                        "{id} is an MCPayment account; pay into a VA with /sandbox/va/pay instead"
                    ),
                ))
            }
            None => {
                return Done(http::error(
                    StatusCode::NOT_FOUND,
                    "unknown_account",
                    format!("no account {id}"),
                ))
            }
        }
    }
    let now = sb.now();
    let success = req.outcome == ReportOutcome::Success;
    let mut st = sb.lock();
    sb.settle(&mut st, now);
    let mut targets = Vec::new();
    for (i, account) in sb.inner.accounts.iter().enumerate() {
        if req.account.as_deref().is_some_and(|a| a != account.id) {
            continue;
        }
        if st.accounts[i].prepaid.contains_key(&req.reference) {
            targets.push(Target::Prepaid(i));
        }
        if st.accounts[i].postpaid.contains_key(&req.reference) {
            targets.push(Target::Postpaid(i));
        }
    }
    let target = match targets.len() {
        0 => {
            return Done(http::error(
                StatusCode::NOT_FOUND,
                "unknown_ref",
                format!(
                    "no prepaid or postpaid transaction has ref {}",
                    req.reference
                ),
            ))
        }
        1 => targets.remove(0),
        _ => {
            return Done(http::error(
                StatusCode::BAD_REQUEST,
                "ambiguous_ref",
                format!(
                    "ref {} names several transactions; say which with \"account\"",
                    req.reference
                ),
            ))
        }
    };
    match target {
        Target::Postpaid(i) => {
            let id = sb.inner.accounts[i].id.clone();
            seen.account = Some(id.clone());
            let Some(result) = postpaid::settle(&mut st, i, &req.reference, success, now) else {
                return Done(http::error(
                    StatusCode::CONFLICT,
                    "not_in_process",
                    "the postpaid transaction has no payment in process to settle",
                ));
            };
            seen.rc = Some(result.response_code.clone());
            Done(http::json(
                StatusCode::OK,
                &postpaid_answer(id, req.reference, &result),
            ))
        }
        Target::Prepaid(i) => {
            let id = sb.inner.accounts[i].id.clone();
            seen.account = Some(id.clone());
            let status = st.accounts[i].prepaid[&req.reference].status;
            if status != PrepaidStatus::Process {
                let word = if status == PrepaidStatus::Success {
                    "succeeded"
                } else {
                    "failed"
                };
                return Done(http::error(
                    StatusCode::CONFLICT,
                    "already_final",
                    format!("the transaction already {word}; a report acts once"),
                ));
            }
            let plan = iak::finalize(sb, &mut st, i, &req.reference, Some(success), now);
            let tx = st.accounts[i].prepaid[&req.reference].clone();
            Reported::Prepaid {
                account: id,
                tx,
                plan,
            }
        }
    }
}

fn postpaid_answer(account: String, reference: String, r: &PostpaidResult) -> ReportAnswer {
    ReportAnswer {
        account,
        reference,
        kind: "postpaid".to_owned(),
        status: r.status.map_or(0, |s| s.code()),
        rc: r.response_code.clone(),
        callbacks: Vec::new(),
        callback: None,
    }
}

/// `POST /sandbox/va/pay`.
pub(crate) async fn va_pay(AxumState(sb): AxumState<Sandbox>, body: Bytes) -> Response {
    let mut seen = Seen {
        command: Some("va-pay"),
        ..Seen::default()
    };
    let response = match parse::<PayRequest>(&body) {
        Err(r) => refuse(r),
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
        Err(r) => return refuse(r),
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
                paid_time: crate::clock::mcp_time(paid.payment.at),
            },
            va: paid.va,
            callback: callbacks.first().cloned(),
            scheduled: sb.waiting(&req.external_id),
            callbacks,
        },
    )
}

fn decide_pay(sb: &Sandbox, req: &PayRequest, seen: &mut Seen) -> Result<mcp::Paid, Refusal> {
    let now = sb.now();
    let mut st = sb.lock();
    sb.settle(&mut st, now);
    // An expiry found on the way queued a callback: let the dispatcher send it.
    sb.inner.wake.notify_one();
    let owners: Vec<usize> = sb
        .inner
        .accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind == AccountKind::Mcp)
        .filter(|(_, a)| req.account.as_deref().is_none_or(|id| id == a.id))
        .filter(|(i, _)| st.accounts[*i].vas.contains_key(&req.external_id))
        .map(|(i, _)| i)
        .collect();
    let index = match owners.as_slice() {
        [i] => *i,
        [] => {
            return Err((
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no virtual account with external_id {}", req.external_id),
            ))
        }
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "ambiguous_external_id",
                "several accounts have a VA with this external_id; say which with \"account\""
                    .to_owned(),
            ))
        }
    };
    seen.account = Some(sb.inner.accounts[index].id.clone());
    mcp::pay(sb, &mut st, index, &req.external_id, req.amount, now)
}

/// `POST /sandbox/deposit`.
pub(crate) async fn deposit(AxumState(sb): AxumState<Sandbox>, body: Bytes) -> Response {
    let mut seen = Seen {
        command: Some("deposit"),
        ..Seen::default()
    };
    let response = match parse::<DepositRequest>(&body) {
        Err(r) => refuse(r),
        Ok(req) => {
            seen.account = Some(req.account.clone());
            match sb.account_index(&req.account) {
                None => http::error(
                    StatusCode::NOT_FOUND,
                    "unknown_account",
                    format!("no account {}", req.account),
                ),
                Some(i) if sb.inner.accounts[i].kind == AccountKind::Mcp => http::error(
                    StatusCode::BAD_REQUEST,
                    "no_deposit",
                    "MCPayment accounts have no deposit",
                ),
                Some(_) if req.amount <= 0 => http::error(
                    StatusCode::BAD_REQUEST,
                    "invalid_amount",
                    "amount must be a positive number of rupiah",
                ),
                Some(i) => {
                    let mut st = sb.lock();
                    match st.accounts[i].balance.checked_add(req.amount) {
                        Some(balance) => {
                            st.accounts[i].balance = balance;
                            drop(st);
                            http::json(
                                StatusCode::OK,
                                &serde_json::json!({"account": req.account, "balance": balance}),
                            )
                        }
                        None => http::error(
                            StatusCode::BAD_REQUEST,
                            "invalid_amount",
                            "the deposit would overflow",
                        ),
                    }
                }
            }
        }
    };
    sb.seen("POST", "/sandbox/deposit", response.status(), seen);
    response
}

/// `GET /sandbox/log`.
pub(crate) async fn log(
    AxumState(sb): AxumState<Sandbox>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return http::error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the log takes only ?account= and ?ref=",
        );
    };
    let snapshot = sb
        .lock()
        .log
        .snapshot(q.account.as_deref(), q.reference.as_deref());
    http::json(StatusCode::OK, &snapshot)
}

/// `GET /sandbox/accounts`.
pub(crate) async fn accounts(AxumState(sb): AxumState<Sandbox>) -> Response {
    http::json(StatusCode::OK, &sb.account_infos())
}

/// `GET /sandbox/transactions`.
pub(crate) async fn transactions(
    AxumState(sb): AxumState<Sandbox>,
    query: Result<Query<TransactionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return http::error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the transactions list takes only ?ref= and ?account=, each once",
        );
    };
    let Some(reference) = q.reference.filter(|r| !r.is_empty()) else {
        return http::error(
            StatusCode::BAD_REQUEST,
            "missing_ref",
            "?ref= is required: the ref_id or external_id whose transactions to list",
        );
    };
    if let Some(id) = &q.account {
        if sb.account_index(id).is_none() {
            return http::error(
                StatusCode::NOT_FOUND,
                "unknown_account",
                format!("no account {id}"),
            );
        }
    }
    let items = sb.transactions(&reference, q.account.as_deref());
    http::json(StatusCode::OK, &TransactionsAnswer { items })
}

impl Sandbox {
    /// Every provider-side transaction held under `reference` (a prepaid or postpaid `ref_id`,
    /// a VA's `external_id`), in account order, of every account or only of `account`. Each
    /// account holds at most one of each kind per ref.
    pub fn transactions(&self, reference: &str, account: Option<&str>) -> Vec<TransactionInfo> {
        let now = self.now();
        let mut st = self.lock();
        // What time decided by now shows, as check-status would show it.
        self.settle(&mut st, now);
        self.inner.wake.notify_one();
        let mut items = Vec::new();
        for (a, held) in self.inner.accounts.iter().zip(&st.accounts) {
            if account.is_some_and(|id| id != a.id) {
                continue;
            }
            if let Some(tx) = held.prepaid.get(reference) {
                items.push(TransactionInfo::prepaid(&a.id, tx));
            }
            if let Some(tx) = held.postpaid.get(reference) {
                items.push(TransactionInfo::postpaid(&a.id, tx));
            }
            if let Some(va) = held.vas.get(reference) {
                items.push(TransactionInfo::va(&a.id, va));
            }
        }
        items
    }

    /// How many deliveries about `reference` wait in the outbox.
    fn waiting(&self, reference: &str) -> usize {
        self.lock()
            .outbox
            .values()
            .filter(|j| matches!(j, crate::state::Job::Deliver(d) if d.reference == reference))
            .count()
    }
}
