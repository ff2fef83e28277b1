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
//!
//! Errors are `{"error": {"code", "message"}}`.

use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::Response;
use lunas_protocol::iak::postpaid::PostpaidResult;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::VaTransaction;
use serde::{Deserialize, Serialize};

use crate::config::AccountKind;
use crate::http::{self, Seen};
use crate::log::CallbackRecord;
use crate::{iak, mcp, postpaid, Sandbox};

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

impl Sandbox {
    /// How many deliveries about `reference` wait in the outbox.
    fn waiting(&self, reference: &str) -> usize {
        self.lock()
            .outbox
            .values()
            .filter(|j| matches!(j, crate::state::Job::Deliver(d) if d.reference == reference))
            .count()
    }
}
