//! The sandbox's own endpoints, for developers, tests and demos:
//!
//! - `POST /sandbox/report` `{"ref", "outcome": "success"|"failed", "account"?}` ends a
//!   prepaid top-up still in process and sends its callback(s) at once, as clicking SUCCESS or
//!   FAILED in IAK's sandbox report does (one action per transaction), or settles a postpaid
//!   payment in process. 200 with the callbacks sent and the receivers' answers; 404 unknown
//!   ref; 409 when the transaction is not in process; 400 when the ref exists in several
//!   accounts and `account` is missing.
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
//!
//! With `sandbox.token` set, every `/sandbox/*` path (these, and the ones a family mounts)
//! answers only `Authorization: Bearer <token>`; else 401 `unauthorized`.
//!
//! These endpoints are the same for every provider: they ask the account's family (the
//! registry's `Provider`) what it holds under a ref and how a report ends it. A control that
//! only one family has is mounted by its folder, as MCPayment's `POST /sandbox/va/pay` is
//! (`src/mcp/payments.rs`; its types are re-exported here).

use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::http::{self, Refusal, Seen};
use crate::log::CallbackRecord;
use crate::providers::{self, Report, Reported};
use crate::Sandbox;

/// MCPayment's control, at the path it always had.
pub use crate::mcp::payments::{PayAnswer, PayRequest, PaymentInfo};

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

/// The answer of `GET /sandbox/transactions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransactionsAnswer {
    pub items: Vec<TransactionInfo>,
}

/// `POST /sandbox/report`.
pub(crate) async fn report(AxumState(sb): AxumState<Sandbox>, body: Bytes) -> Response {
    let mut seen = Seen {
        command: Some("report"),
        ..Seen::default()
    };
    let response = match http::parse_json::<ReportRequest>(&body) {
        Err(r) => http::refuse(r),
        Ok(req) => {
            seen.reference = Some(req.reference.clone());
            seen.account = req.account.clone();
            do_report(&sb, req, &mut seen).await
        }
    };
    sb.seen("POST", "/sandbox/report", response.status(), seen);
    response
}

async fn do_report(sb: &Sandbox, req: ReportRequest, seen: &mut Seen) -> Response {
    let (account, reported) = match decide_report(sb, &req, seen) {
        Ok(decided) => decided,
        Err(r) => return http::refuse(r),
    };
    // The lock is released: the callbacks a report caused are sent before it is answered.
    let callbacks = match reported.plan {
        Some(plan) => sb.execute(plan).await,
        None => Vec::new(),
    };
    seen.rc = Some(reported.rc.clone());
    http::json(
        StatusCode::OK,
        &ReportAnswer {
            account,
            reference: req.reference,
            kind: reported.kind.to_owned(),
            status: reported.status,
            rc: reported.rc,
            callback: callbacks.first().cloned(),
            callbacks,
        },
    )
}

/// Finds the one transaction a report names and has its family end it: the account's id and
/// what changed.
fn decide_report(
    sb: &Sandbox,
    req: &ReportRequest,
    seen: &mut Seen,
) -> Result<(String, Reported), Refusal> {
    if let Some(id) = &req.account {
        let Some(i) = sb.account_index(id) else {
            return Err((
                StatusCode::NOT_FOUND,
                "unknown_account",
                format!("no account {id}"),
            ));
        };
        if let Err(instead) = sb.inner.accounts[i].kind.family().report_kinds() {
            return Err((
                StatusCode::BAD_REQUEST,
                "not_reportable",
                format!("{id} {instead}"),
            ));
        }
    }
    let now = sb.now();
    let mut st = sb.lock();
    sb.settle(&mut st, now);
    let mut targets = Vec::new();
    for (i, account) in sb.inner.accounts.iter().enumerate() {
        if req.account.as_deref().is_some_and(|a| a != account.id) {
            continue;
        }
        let family = account.kind.family();
        for kind in family.reportable(&*st.accounts[i].held, &req.reference) {
            targets.push((i, kind));
        }
    }
    let (index, kind) = match targets.as_slice() {
        [target] => *target,
        [] => {
            return Err((
                StatusCode::NOT_FOUND,
                "unknown_ref",
                format!(
                    "no {} transaction has ref {}",
                    providers::report_kind_names(),
                    req.reference
                ),
            ))
        }
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "ambiguous_ref",
                format!(
                    "ref {} names several transactions; say which with \"account\"",
                    req.reference
                ),
            ))
        }
    };
    let account = &sb.inner.accounts[index];
    seen.account = Some(account.id.clone());
    let report = Report {
        sb,
        index,
        kind,
        reference: &req.reference,
        success: req.outcome == ReportOutcome::Success,
        now,
    };
    let reported = account.kind.family().report(report, &mut st)?;
    Ok((account.id.clone(), reported))
}

/// `POST /sandbox/deposit`.
pub(crate) async fn deposit(AxumState(sb): AxumState<Sandbox>, body: Bytes) -> Response {
    let mut seen = Seen {
        command: Some("deposit"),
        ..Seen::default()
    };
    let response = match http::parse_json::<DepositRequest>(&body) {
        Err(r) => http::refuse(r),
        Ok(req) => {
            seen.account = Some(req.account.clone());
            match sb.account_index(&req.account) {
                None => http::error(
                    StatusCode::NOT_FOUND,
                    "unknown_account",
                    format!("no account {}", req.account),
                ),
                Some(i) if !sb.inner.accounts[i].kind.family().has_deposit() => http::error(
                    StatusCode::BAD_REQUEST,
                    "no_deposit",
                    format!(
                        "{} accounts have no deposit",
                        sb.inner.accounts[i].kind.family().label()
                    ),
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
            items.extend(a.kind.family().transactions(a, &*held.held, reference));
        }
        items
    }
}

/// Lets a request to `/sandbox/*` through only with the configured token (when one is).
pub(crate) async fn require_token(
    AxumState(sb): AxumState<Sandbox>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let (Some(token), true) = (&sb.inner.token, req.uri().path().starts_with("/sandbox/")) {
        use subtle::ConstantTimeEq;
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(token.expose().as_bytes())) {
            let mut answer = http::error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the sandbox's controls need Authorization: Bearer <sandbox.token>",
            );
            answer.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            return answer;
        }
    }
    next.run(req).await
}
