//! IAK postpaid: `POST /api/v1/bill/check` with `commands` `inq-pasca`, `pay-pasca`,
//! `checkstatus`, and `POST /api/v1/bill/check/{type}` with `pricelist-pasca`. Synchronous, no
//! callbacks: check-status is how a merchant learns a lost payment's outcome.
//!
//! Rules (protocols.md §2):
//! - answers are `{"data":{..},"meta":[]}` (XML `<mp>`), in the request's format;
//! - a wrong `sign` or unknown username is response code 100 INVALID SIGNATURE, a malformed
//!   body 107 (HTTP 400), an unknown command 101 (HTTP 400);
//! - an inquiry of an unknown product code is 20; a `ref_id` already used for another bill is
//!   11 (the same inquiry again is answered again); the outcome follows the test-number scheme
//!   of [`super::scenario::postpaid`];
//! - a payment debits `selling_price` from the deposit (17 when short; the inquiry stays
//!   payable), gives it back when the payment fails, and answers 06 for an unknown `tr_id`,
//!   01 for a bill already paid;
//! - check-status answers status 0 / 42 for an inquiry never paid, 1 / 00 paid, 2 / 37 (or the
//!   scenario's code) failed, 3 / 39 in process; a payment in process is settled by
//!   `POST /sandbox/report`.

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use lunas_protocol::iak::postpaid::{
    PostpaidCommand, PostpaidRequest, PostpaidResult, PostpaidStatus,
};
use lunas_protocol::iak::rc;
use lunas_protocol::{xml, Decoded, Format, ProtocolError};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::catalogue::{self, BillShape, Biller};
use super::scenario::{self, PaymentOutcome, PostpaidScenario};
use super::{held, held_mut, refusal_format, Transactions};
use crate::control::TransactionInfo;
use crate::faults::{self, CheckFault, OrderFault};
use crate::http::{self, Refusal, Seen};
use crate::providers::{Report, Reported};
use crate::state::State;
use crate::{clock, Sandbox};

/// What reports and the transaction list call a bill.
pub(super) const KIND: &str = "postpaid";
/// The sequence of postpaid `tr_id`s, shared by every IAK/IDSL account.
const TR_IDS: &str = "iak.postpaid.tr_id";
/// The first postpaid `tr_id`.
const FIRST_TR_ID: i64 = 9_732_795;

/// Account names on bills, chosen by customer number.
const NAMES: [&str; 4] = ["JAORAH", "CATH", "BUDI SANTOSO", "SITI AMINAH"];
/// Indonesian month abbreviations, as bill periods are written.
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MEI", "JUN", "JUL", "AGU", "SEP", "OKT", "NOV", "DES",
];

/// One period of a postpaid bill.
#[derive(Debug, Clone)]
pub(crate) struct BillPeriod {
    /// `YYYYMM`.
    pub yyyymm: String,
    /// `MAR 2021`.
    pub label: String,
}

/// A postpaid inquiry and, once made, its payment.
#[derive(Debug, Clone)]
pub(crate) struct PostpaidTx {
    pub ref_id: String,
    pub tr_id: i64,
    pub biller: &'static Biller,
    pub hp: String,
    pub tr_name: String,
    pub periods: Vec<BillPeriod>,
    pub payment: PaymentOutcome,
    pub status: PostpaidStatus,
    pub response_code: String,
    pub paid_at: Option<OffsetDateTime>,
    pub noref: Option<String>,
    /// When the inquiry was made.
    pub created_at: OffsetDateTime,
}

impl PostpaidTx {
    pub fn bills(&self) -> i64 {
        i64::try_from(self.periods.len()).unwrap_or(i64::MAX)
    }

    pub fn nominal(&self) -> i64 {
        self.biller.bill.saturating_mul(self.bills())
    }

    pub fn admin(&self) -> i64 {
        self.biller.admin.saturating_mul(self.bills())
    }

    /// What the customer pays: `nominal + admin`.
    pub fn price(&self) -> i64 {
        self.nominal().saturating_add(self.admin())
    }

    /// What the deposit is debited: `price` less the commission.
    pub fn selling_price(&self) -> i64 {
        self.price()
            .saturating_sub(self.biller.commission.saturating_mul(self.bills()))
    }
}

/// The handler of both postpaid paths.
pub(crate) async fn handle(AxumState(sb): AxumState<Sandbox>, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let (response, seen) = answer(&sb, &path, &body).await;
    sb.seen("POST", &path, response.status(), seen);
    response
}

/// The message IAK writes with a postpaid response code (the Indonesian texts of seed 003
/// where it gives them).
fn message(code: &str) -> String {
    match code {
        "00" => "PAYMENT SUCCESS",
        "37" => "PEMBAYARAN GAGAL",
        "39" => "PENDING / TRANSAKSI SEDANG DIPROSES",
        "42" => "REQUEST PEMBAYARAN BELUM DITERIMA",
        other => rc::postpaid(other).map_or("GENERAL ERROR", |r| r.text),
    }
    .to_owned()
}

fn bare(code: &str) -> PostpaidResult {
    PostpaidResult {
        response_code: code.to_owned(),
        message: Some(message(code)),
        ..PostpaidResult::default()
    }
}

fn command_name(c: &PostpaidCommand) -> &'static str {
    match c {
        PostpaidCommand::Inquiry { .. } => "inq-pasca",
        PostpaidCommand::Payment { .. } => "pay-pasca",
        PostpaidCommand::CheckStatus { .. } => "checkstatus",
        PostpaidCommand::PriceList { .. } => "pricelist-pasca",
    }
}

async fn answer(sb: &Sandbox, path: &str, bytes: &[u8]) -> (Response, Seen) {
    let mut seen = Seen::default();
    let Decoded {
        message: req,
        format,
        ..
    } = match PostpaidRequest::parse(path, bytes) {
        Ok(d) => d,
        Err(e) => {
            let format = refusal_format(bytes);
            let (code, status) = match &e {
                ProtocolError::UnknownValue { field, .. } if field == "commands" => {
                    ("101", StatusCode::BAD_REQUEST)
                }
                ProtocolError::UnknownValue { field, .. } if field == "path" => {
                    ("117", StatusCode::NOT_FOUND)
                }
                _ => ("107", StatusCode::BAD_REQUEST),
            };
            seen.rc = Some(code.to_owned());
            let mut body = bare(code);
            body.message = Some(format!("{} ({e})", message(code)));
            return (http::provider(status, format, body.encode(format)), seen);
        }
    };
    seen.command = Some(command_name(&req.command));
    seen.reference = match &req.command {
        PostpaidCommand::Inquiry { ref_id, .. } | PostpaidCommand::CheckStatus { ref_id } => {
            Some(ref_id.clone())
        }
        PostpaidCommand::Payment { tr_id } => Some(tr_id.to_string()),
        PostpaidCommand::PriceList { .. } => None,
    };
    let Some(index) = sb.iak_account(&req.username, |key| req.verify(key)) else {
        seen.rc = Some("100".to_owned());
        let body = bare("100").encode(format);
        return (http::provider(StatusCode::OK, format, body), seen);
    };
    seen.account = Some(sb.inner.accounts[index].id.clone());

    if matches!(req.command, PostpaidCommand::CheckStatus { .. }) {
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

    if let PostpaidCommand::PriceList {
        product_type,
        status,
        ..
    } = &req.command
    {
        seen.rc = Some("00".to_owned());
        let body = price_list(product_type.as_deref(), status.as_deref(), format);
        return (http::provider(StatusCode::OK, format, body), seen);
    }

    // A payment is an order: it meets the order faults, re-sent or not.
    let order_fault = match req.command {
        PostpaidCommand::Payment { .. } => sb.order_fault(index),
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
        match &req.command {
            PostpaidCommand::Inquiry {
                code, hp, ref_id, ..
            } => inquiry(&mut st, index, code, hp, ref_id, now),
            PostpaidCommand::Payment { tr_id } => pay(&mut st, index, *tr_id, now),
            PostpaidCommand::CheckStatus { ref_id } => {
                match held(&st, index).and_then(|h| h.postpaid.get(ref_id)) {
                    Some(tx) => {
                        let mut r = view(tx, Some(st.accounts[index].balance));
                        r.status = Some(tx.status);
                        r
                    }
                    None => bare("06"),
                }
            }
            PostpaidCommand::PriceList { .. } => bare("00"),
        }
    };
    seen.rc = Some(result.response_code.clone());
    let response = http::provider(StatusCode::OK, format, result.encode(format));
    let response = sb.order_answer(order_fault, response, &mut seen).await;
    (response, seen)
}

fn inquiry(
    st: &mut State,
    index: usize,
    code: &str,
    hp: &str,
    ref_id: &str,
    now: OffsetDateTime,
) -> PostpaidResult {
    let Some(biller) = catalogue::biller(code) else {
        return PostpaidResult {
            code: Some(code.to_owned()),
            hp: Some(hp.to_owned()),
            ref_id: Some(ref_id.to_owned()),
            ..bare("20")
        };
    };
    if let Some(tx) = held(st, index).and_then(|h| h.postpaid.get(ref_id)) {
        if tx.biller.code == code && tx.hp == hp && tx.status == PostpaidStatus::NotReceived {
            return inquiry_view(tx);
        }
        return PostpaidResult {
            ref_id: Some(ref_id.to_owned()),
            ..bare("11")
        };
    }
    let (bills, payment) = match scenario::postpaid(hp, biller.several) {
        PostpaidScenario::InquiryFails { rc } => {
            return PostpaidResult {
                code: Some(code.to_owned()),
                hp: Some(hp.to_owned()),
                ref_id: Some(ref_id.to_owned()),
                message: rc::postpaid(&rc).map(|r| r.text.to_owned()),
                ..bare(&rc)
            };
        }
        PostpaidScenario::Bills { bills, payment } => (bills, payment),
    };
    let sum: usize = hp
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| usize::from(d - b'0'))
        .sum();
    let tx = PostpaidTx {
        ref_id: ref_id.to_owned(),
        tr_id: st.next_in(TR_IDS, FIRST_TR_ID),
        biller,
        hp: hp.to_owned(),
        tr_name: NAMES[sum % NAMES.len()].to_owned(),
        periods: periods(now, bills),
        payment,
        status: PostpaidStatus::NotReceived,
        response_code: "42".to_owned(),
        paid_at: None,
        noref: None,
        created_at: now,
    };
    let result = inquiry_view(&tx);
    if let Some(h) = held_mut(st, index) {
        h.postpaid_by_tr.insert(tx.tr_id, tx.ref_id.clone());
        h.postpaid.insert(tx.ref_id.clone(), tx);
    }
    result
}

/// The `bills` periods ending last month, oldest first.
fn periods(now: OffsetDateTime, bills: usize) -> Vec<BillPeriod> {
    let now = now.to_offset(clock::WIB);
    let last = i32::from(u8::from(now.month())) - 2 + now.year() * 12; // last month, 0-based
    let bills = i32::try_from(bills).unwrap_or(1);
    (0..bills)
        .rev()
        .map(|back| {
            let m = last - back;
            let (year, month0) = (m.div_euclid(12), m.rem_euclid(12));
            let month0 = usize::try_from(month0).unwrap_or(0);
            BillPeriod {
                yyyymm: format!("{year:04}{:02}", month0 + 1),
                label: format!("{} {year}", MONTHS[month0]),
            }
        })
        .collect()
}

fn pay(st: &mut State, index: usize, tr_id: i64, now: OffsetDateTime) -> PostpaidResult {
    let acc = &mut st.accounts[index];
    let balance = acc.balance;
    let Some(h) = acc.held.get_mut::<Transactions>() else {
        return bare("06");
    };
    let Some(ref_id) = h.postpaid_by_tr.get(&tr_id).cloned() else {
        return PostpaidResult {
            tr_id: Some(tr_id),
            ..bare("06")
        };
    };
    let Some(tx) = h.postpaid.get_mut(&ref_id) else {
        return bare("06");
    };
    match tx.status {
        PostpaidStatus::Success => {
            let mut r = view(tx, Some(balance));
            r.response_code = "01".to_owned();
            r.message = Some(message("01"));
            return r;
        }
        PostpaidStatus::Failed | PostpaidStatus::Processing => return view(tx, Some(balance)),
        PostpaidStatus::NotReceived => {}
    }
    let cost = tx.selling_price();
    if balance < cost {
        let mut r = inquiry_view(tx);
        r.response_code = "17".to_owned();
        r.message = Some(message("17"));
        r.balance = Some(balance);
        return r;
    }
    let mut balance = balance - cost;
    match tx.payment.clone() {
        PaymentOutcome::Succeed => settle_success(tx, now),
        PaymentOutcome::Fail { rc } => {
            tx.status = PostpaidStatus::Failed;
            tx.response_code = rc;
            tx.paid_at = Some(now);
            tx.noref = Some(String::new());
            balance += cost;
        }
        PaymentOutcome::Pending => {
            tx.status = PostpaidStatus::Processing;
            tx.response_code = "39".to_owned();
        }
    }
    let result = view(tx, Some(balance));
    acc.balance = balance;
    result
}

fn settle_success(tx: &mut PostpaidTx, now: OffsetDateTime) {
    tx.status = PostpaidStatus::Success;
    tx.response_code = "00".to_owned();
    tx.paid_at = Some(now);
    tx.noref = Some(format!("{}", 1_600_000 + tx.tr_id % 100_000));
}

/// Ends a payment in process as a report says; `None` when it is not in process. Returns
/// the check-status answer after the change.
fn settle(
    st: &mut State,
    index: usize,
    ref_id: &str,
    success: bool,
    now: OffsetDateTime,
) -> Option<PostpaidResult> {
    let acc = &mut st.accounts[index];
    let tx = acc
        .held
        .get_mut::<Transactions>()?
        .postpaid
        .get_mut(ref_id)?;
    if tx.status != PostpaidStatus::Processing {
        return None;
    }
    if success {
        settle_success(tx, now);
    } else {
        tx.status = PostpaidStatus::Failed;
        tx.response_code = match &tx.payment {
            PaymentOutcome::Fail { rc } => rc.clone(),
            _ => "37".to_owned(),
        };
        tx.paid_at = Some(now);
        tx.noref = Some(String::new());
        acc.balance = acc.balance.saturating_add(tx.selling_price());
    }
    let tx = acc.held.get::<Transactions>()?.postpaid.get(ref_id)?;
    let mut r = view(tx, Some(acc.balance));
    r.status = Some(tx.status);
    Some(r)
}

/// The answer to an inquiry: the bill, without `balance`.
fn inquiry_view(tx: &PostpaidTx) -> PostpaidResult {
    PostpaidResult {
        tr_id: Some(tx.tr_id),
        code: Some(tx.biller.code.to_owned()),
        datetime: None,
        hp: Some(tx.hp.clone()),
        tr_name: Some(tx.tr_name.clone()),
        period: Some(period(tx)),
        nominal: Some(tx.nominal()),
        admin: Some(tx.admin()),
        status: None,
        response_code: "00".to_owned(),
        message: Some("INQUIRY SUCCESS".to_owned()),
        price: Some(tx.price()),
        selling_price: Some(tx.selling_price()),
        balance: None,
        noref: None,
        ref_id: Some(tx.ref_id.clone()),
        desc: Some(desc(tx)),
    }
}

/// The answer to a payment (and, with `status`, to check-status): the bill with the payment's
/// code, time, reference and the deposit.
fn view(tx: &PostpaidTx, balance: Option<i64>) -> PostpaidResult {
    PostpaidResult {
        // The transaction's time: when it was paid, or (status 0, as seed 003 shows) inquired;
        // the document's answer for a payment in process (status 3) has none.
        datetime: (tx.status != PostpaidStatus::Processing)
            .then(|| clock::iak_datetime(tx.paid_at.unwrap_or(tx.created_at))),
        response_code: tx.response_code.clone(),
        message: Some(message(&tx.response_code)),
        balance,
        noref: tx.noref.clone(),
        ..inquiry_view(tx)
    }
}

/// `201405,201407` for several periods, `202103` for one.
fn period(tx: &PostpaidTx) -> String {
    match (tx.periods.first(), tx.periods.last()) {
        (Some(a), Some(b)) if tx.periods.len() > 1 => format!("{},{}", a.yyyymm, b.yyyymm),
        (Some(a), _) => a.yyyymm.clone(),
        _ => String::new(),
    }
}

/// The biller-specific `desc`, shaped as in the documents.
fn desc(tx: &PostpaidTx) -> Value {
    let b = tx.biller;
    let paid = tx.status == PostpaidStatus::Success;
    match b.shape {
        BillShape::Telkom => {
            let detail: Vec<Value> = tx
                .periods
                .iter()
                .map(|p| {
                    json!({
                        "periode": p.label,
                        "nilai_tagihan": b.bill.to_string(),
                        "admin": b.admin.to_string(),
                        "total": b.bill + b.admin,
                    })
                })
                .collect();
            json!({
                "kode_area": "0751",
                "divre": "01",
                "datel": "0006",
                "jumlah_tagihan": tx.periods.len(),
                "tagihan": {"detail": detail},
            })
        }
        BillShape::Pln => {
            let detail: Vec<Value> = tx
                .periods
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut row = json!({
                        "periode": p.yyyymm,
                        "nilai_tagihan": b.bill.to_string(),
                        "admin": b.admin.to_string(),
                        "denda": "0",
                        "total": b.bill + b.admin,
                    });
                    if paid {
                        let start = 80_000 + i * 250;
                        row["meter_awal"] = json!(format!("{start:08}"));
                        row["meter_akhir"] = json!(format!("{:08}", start + 250));
                    }
                    row
                })
                .collect();
            let mut d = json!({
                "tarif": "R1",
                "daya": 1300,
                "lembar_tagihan": tx.periods.len().to_string(),
                "tagihan": {"detail": detail},
            });
            if paid {
                d["lembar_tagihan_sisa"] = json!(0);
            }
            d
        }
        BillShape::Bpjs => json!({
            "kode_cabang": "0901",
            "nama_cabang": "JAKARTA PUSAT",
            "sisa_pembayaran": "0",
            "jumlah_peserta": "2",
        }),
        BillShape::Empty => Value::String(String::new()),
    }
}

/// The `pricelist-pasca` answer: `{"data":{"pasca":[..]},"meta":[]}`, in XML
/// `<mp><data><pasca>..</pasca></data></mp>`.
fn price_list(product_type: Option<&str>, status: Option<&str>, format: Format) -> String {
    let only_inactive = status.is_some_and(|s| s.trim().eq_ignore_ascii_case("non active"));
    let items: Vec<Value> = catalogue::POSTPAID
        .iter()
        .filter(|b| product_type.is_none_or(|t| t == b.product_type))
        .filter(|_| !only_inactive)
        .map(|b| {
            json!({
                "code": b.code,
                "name": b.name,
                "status": 1,
                "fee": b.admin,
                "komisi": b.commission,
                "type": b.product_type,
                "category": "postpaid",
            })
        })
        .collect();
    let mut data = Map::new();
    data.insert("pasca".to_owned(), Value::Array(items));
    match format {
        Format::Json => json!({"data": data, "meta": []}).to_string(),
        Format::Xml => {
            let mut root = Map::new();
            root.insert("data".to_owned(), Value::Object(data));
            xml::to_document("mp", &root)
        }
    }
}

/// `POST /sandbox/report` on a bill: settles its payment in process as the report says.
pub(super) fn report(r: &Report<'_>, st: &mut State) -> Result<Reported, Refusal> {
    let Some(result) = settle(st, r.index, r.reference, r.success, r.now) else {
        return Err((
            StatusCode::CONFLICT,
            "not_in_process",
            "the postpaid transaction has no payment in process to settle".to_owned(),
        ));
    };
    Ok(Reported {
        kind: KIND,
        status: result.status.map_or(0, |s| s.code()),
        rc: result.response_code,
        plan: None,
    })
}

/// A bill as `GET /sandbox/transactions` lists it.
pub(super) fn info(account: &str, tx: &PostpaidTx) -> TransactionInfo {
    TransactionInfo {
        account: account.to_owned(),
        kind: KIND.to_owned(),
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
