//! The order fault knobs (`order_5xx_before_commit`, `order_5xx_after_commit`,
//! `order_drop_after_commit`, `order_hang_after_commit`) on each kind of order — prepaid
//! top-up, postpaid `pay-pasca`, VA create — as a client that retries meets them, and
//! `GET /sandbox/transactions`, which proves how many provider-side transactions exist.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lunas_protocol::iak::postpaid::{PostpaidCommand, PostpaidRequest, PostpaidResult};
use lunas_protocol::iak::prepaid::{PrepaidCommand, PrepaidRequest, PrepaidResult};
use lunas_protocol::mcp::{CreateVaRequest, CustomerDetails, McpResponse, PaymentDetails};
use lunas_protocol::{ApiVersion, Format, Secret};
use lunas_sandbox::control::{TransactionInfo, TransactionsAnswer};

/// How long a hanging order waits in these tests: short, as the wait is real time.
const HANG_MS: u64 = 600;
/// A client timeout shorter than [`HANG_MS`].
const CLIENT_TIMEOUT: Duration = Duration::from_millis(200);

/// The postpaid bill every postpaid order pays: TELKOMPSTN, one bill that pays successfully.
const BILL_HP: &str = "6391600000";
/// What that bill's payment debits from the deposit.
const BILL_SELLING_PRICE: i64 = 51_170;
/// What a top-up of `xld25000` debits from the deposit.
const TOP_UP_PRICE: i64 = 25_000;

/// One development IAK account and one MCPayment account, both with the fault table `faults`.
fn with_faults(faults: &str) -> String {
    format!(
        r#"
[sandbox]
seed = 5

[[sandbox.accounts]]
kind = "iak"
username = "081234567890"
api_key = "TESTKEY-not-real-0001"
callback_url = "{{callback}}/iak"
[sandbox.accounts.faults]
{faults}

[[sandbox.accounts]]
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
callback_url = "{{callback}}/mcp"
[sandbox.accounts.faults]
{faults}
"#
    )
}

/// The three kinds of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prepaid,
    Postpaid,
    Va,
}

/// One order request, ready to be sent (and sent again).
struct Order {
    kind: Kind,
    reference: String,
    path: String,
    content_type: &'static str,
    body: String,
    headers: Vec<(&'static str, String)>,
}

impl Order {
    async fn send(&self, h: &Harness) -> Result<Answer, reqwest::Error> {
        self.send_within(h, None).await
    }

    async fn send_within(
        &self,
        h: &Harness,
        timeout: Option<Duration>,
    ) -> Result<Answer, reqwest::Error> {
        h.try_post_with(
            &self.path,
            self.content_type,
            self.body.clone(),
            &self.headers,
            timeout,
        )
        .await
    }

    /// Sends the order and expects an answer.
    async fn answered(&self, h: &Harness) -> Answer {
        self.send(h)
            .await
            .unwrap_or_else(|e| panic!("{:?} order unanswered: {e}", self.kind))
    }
}

/// A v2 JSON top-up of `xld25000` on the IAK account.
fn top_up(reference: &str) -> Order {
    let req = PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        PrepaidCommand::TopUp {
            ref_id: reference.into(),
            customer_id: "0817777215".into(),
            product_code: "xld25000".into(),
        },
    );
    Order {
        kind: Kind::Prepaid,
        reference: reference.to_owned(),
        path: req.path(ApiVersion::V2),
        content_type: Format::Json.content_type(),
        body: req.encode(Format::Json, ApiVersion::V2),
        headers: Vec::new(),
    }
}

/// The same top-up in v1 XML (`/v1/legacy/index`, `commands` `topup`).
fn top_up_v1_xml(reference: &str) -> Order {
    let req = PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        PrepaidCommand::TopUp {
            ref_id: reference.into(),
            customer_id: "0817777215".into(),
            product_code: "xld25000".into(),
        },
    );
    Order {
        kind: Kind::Prepaid,
        reference: reference.to_owned(),
        path: req.path(ApiVersion::V1),
        content_type: Format::Xml.content_type(),
        body: req.encode(Format::Xml, ApiVersion::V1),
        headers: Vec::new(),
    }
}

/// Inquires the bill of [`BILL_HP`] under `reference` (an inquiry is no order) and returns the
/// `pay-pasca` that pays it.
async fn payment(h: &Harness, reference: &str) -> Order {
    let inquiry = h
        .postpaid(
            PostpaidCommand::Inquiry {
                code: "TELKOMPSTN".into(),
                hp: BILL_HP.into(),
                ref_id: reference.into(),
                month: None,
                year: None,
                nomor_identitas: None,
            },
            Format::Json,
        )
        .await;
    assert_eq!(inquiry.response_code, "00");
    let req = PostpaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        PostpaidCommand::Payment {
            tr_id: inquiry.tr_id.expect("the inquiry has a tr_id"),
        },
    );
    Order {
        kind: Kind::Postpaid,
        reference: reference.to_owned(),
        path: req.path(),
        content_type: Format::Json.content_type(),
        body: req.encode(Format::Json),
        headers: Vec::new(),
    }
}

/// A CLOSED VA create for 50 000 rupiah.
fn va_create(reference: &str) -> Order {
    let order_id = format!("ORD-{reference}");
    let req = CreateVaRequest {
        external_id: reference.into(),
        order_id: order_id.clone(),
        currency: "IDR".into(),
        payment_method: "bank_transfer".into(),
        payment_channel: "BNI".into(),
        payment_details: PaymentDetails {
            billing_name: Some("Budi Santoso".into()),
            amount: Some(50_000),
            transaction_description: Some("order fault test".into()),
            ..PaymentDetails::default()
        },
        customer_details: CustomerDetails {
            email: Some("budi@example.co.id".into()),
            full_name: Some("Budi Santoso".into()),
            phone: None,
        },
        item_details: None,
        billing_address: None,
        callback_url: None,
        shipping_address: None,
        additional_data: None,
    };
    Order {
        kind: Kind::Va,
        reference: reference.to_owned(),
        path: "/va".to_owned(),
        content_type: "application/json",
        body: req.encode(),
        headers: mcp_credentials().request_headers(reference, &order_id),
    }
}

/// Starts a sandbox with the fault table `faults` and readies an order of `kind`.
async fn ready(faults: &str, kind: Kind, reference: &str) -> (Harness, Order) {
    let h = Harness::start(&with_faults(faults)).await;
    let order = match kind {
        Kind::Prepaid => top_up(reference),
        Kind::Postpaid => payment(&h, reference).await,
        Kind::Va => va_create(reference),
    };
    (h, order)
}

/// `GET /sandbox/transactions?ref=..`.
async fn held(h: &Harness, reference: &str) -> Vec<TransactionInfo> {
    let answer = h
        .get(&format!("/sandbox/transactions?ref={reference}"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    serde_json::from_slice::<TransactionsAnswer>(&answer.body)
        .unwrap_or_else(|e| panic!("the list parses ({e}): {}", answer.text()))
        .items
}

/// The deposit a committed order left: the IAK orders debit it, a VA does not.
fn debit(kind: Kind) -> i64 {
    match kind {
        Kind::Prepaid => TOP_UP_PRICE,
        Kind::Postpaid => BILL_SELLING_PRICE,
        Kind::Va => 0,
    }
}

/// Asserts that the order of `order` was carried out exactly once: one transaction of its
/// kind, in the state a first order leaves, and the deposit debited once. Returns it.
async fn committed_once(h: &Harness, order: &Order) -> TransactionInfo {
    let items = held(h, &order.reference).await;
    let (kind, status) = match order.kind {
        Kind::Prepaid => ("prepaid", "process"),
        Kind::Postpaid => ("postpaid", "paid"),
        Kind::Va => ("va", "ACTIVE"),
    };
    assert_eq!(items.len(), 1, "{items:?}");
    let tx = items.into_iter().next().unwrap();
    assert_eq!(
        (tx.account.as_str(), tx.kind.as_str(), tx.status.as_str()),
        (
            if order.kind == Kind::Va { "mcp" } else { "iak" },
            kind,
            status
        ),
        "{tx:?}"
    );
    assert_eq!(tx.reference, order.reference);
    if order.kind == Kind::Postpaid {
        assert_eq!(tx.paid, Some(true));
    }
    assert_eq!(
        h.sandbox.balance("iak"),
        Some(1_000_000_000 - debit(order.kind)),
        "the deposit is debited once"
    );
    tx
}

/// Asserts that nothing of `order` was carried out: no prepaid transaction or VA, an unpaid
/// bill, the deposit untouched.
async fn nothing_committed(h: &Harness, order: &Order) {
    let items = held(h, &order.reference).await;
    match order.kind {
        Kind::Prepaid | Kind::Va => assert!(items.is_empty(), "{items:?}"),
        Kind::Postpaid => {
            assert_eq!(items.len(), 1, "{items:?}");
            assert_eq!(items[0].status, "inquired");
            assert_eq!(items[0].paid, Some(false));
            assert_eq!(items[0].rc.as_deref(), Some("42"));
        }
    }
    assert_eq!(h.sandbox.balance("iak"), Some(1_000_000_000));
}

/// Asserts that `answer` is the normal answer to the first `order`.
fn first_answer(order: &Order, answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.text());
    match order.kind {
        Kind::Prepaid => {
            let r = PrepaidResult::parse(&answer.body).unwrap().message;
            assert_eq!(r.rc, "39");
        }
        Kind::Postpaid => {
            let r = PostpaidResult::parse(&answer.body).unwrap().message;
            assert_eq!(r.response_code, "00");
        }
        Kind::Va => {
            let r = McpResponse::parse(&answer.body).unwrap();
            assert!(r.is_success(), "{}", answer.text());
        }
    }
}

/// Asserts that `answer` is the normal answer to `order` sent again after it was carried out:
/// prepaid answers as check-status, postpaid says the bill is already paid, VA create refuses
/// an `external_id` that exists.
fn repeat_answer(order: &Order, answer: &Answer, tx: &TransactionInfo) {
    match order.kind {
        Kind::Prepaid => {
            assert_eq!(answer.status, 200, "{}", answer.text());
            let r = PrepaidResult::parse(&answer.body).unwrap().message;
            assert_eq!(r.rc, "39");
            assert_eq!(r.tr_id, tx.tr_id, "the one transaction, not a new one");
        }
        Kind::Postpaid => {
            assert_eq!(answer.status, 200, "{}", answer.text());
            let r = PostpaidResult::parse(&answer.body).unwrap().message;
            assert_eq!(r.response_code, "01");
            assert_eq!(r.tr_id, tx.tr_id);
        }
        Kind::Va => {
            assert_eq!(answer.status, 400, "{}", answer.text());
            let r = McpResponse::parse(&answer.body).unwrap();
            assert_eq!(r.response_code, "01");
            assert!(
                r.response_message
                    .as_deref()
                    .is_some_and(|m| m.contains("already exists")),
                "{}",
                answer.text()
            );
        }
    }
}

/// The log's fault of each request of this command, in order.
async fn logged_faults(h: &Harness, command: &str) -> Vec<(Option<String>, u16)> {
    h.log()
        .await
        .requests
        .into_iter()
        .filter(|r| r.command.as_deref() == Some(command))
        .map(|r| (r.fault, r.http_status))
        .collect()
}

fn command(kind: Kind) -> &'static str {
    match kind {
        Kind::Prepaid => "top-up",
        Kind::Postpaid => "pay-pasca",
        Kind::Va => "va-create",
    }
}

/// `order_5xx_before_commit = 1`: 503, nothing carried out; the retry is the first order.
async fn before_commit(kind: Kind) {
    let (h, order) = ready("order_5xx_before_commit = 1", kind, "before-1").await;
    let answer = order.answered(&h).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    nothing_committed(&h, &order).await;

    let retry = order.answered(&h).await;
    first_answer(&order, &retry);
    committed_once(&h, &order).await;
    assert_eq!(
        logged_faults(&h, command(kind)).await,
        [(Some("5xx_before_commit".to_owned()), 503), (None, 200)]
    );
}

/// `order_5xx_after_commit = 1`: carried out, then 503; the retry finds the one transaction.
async fn after_commit(kind: Kind) {
    let (h, order) = ready("order_5xx_after_commit = 1", kind, "after-1").await;
    let answer = order.answered(&h).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    let tx = committed_once(&h, &order).await;

    let retry = order.answered(&h).await;
    repeat_answer(&order, &retry, &tx);
    assert_eq!(
        committed_once(&h, &order).await,
        tx,
        "the retry changed nothing"
    );
}

/// `order_drop_after_commit = 1`: carried out, then no answer at all; the retry finds the one
/// transaction.
async fn drop_after_commit(kind: Kind) {
    let (h, order) = ready("order_drop_after_commit = 1", kind, "drop-1").await;
    let err = match order.send(&h).await {
        Ok(answer) => panic!(
            "expected no answer, got HTTP {}: {}",
            answer.status,
            answer.text()
        ),
        Err(e) => e,
    };
    assert!(!err.is_timeout(), "the connection is closed at once: {err}");
    // hyper's words for a connection that ended before any answer.
    let mut causes = Vec::new();
    let mut cause: Option<&dyn std::error::Error> = Some(&err);
    while let Some(c) = cause {
        causes.push(c.to_string());
        cause = c.source();
    }
    assert!(
        causes
            .iter()
            .any(|c| c.contains("connection closed before message completed")),
        "{causes:?}"
    );
    let tx = committed_once(&h, &order).await;

    let retry = order.answered(&h).await;
    repeat_answer(&order, &retry, &tx);
    assert_eq!(committed_once(&h, &order).await, tx);
    assert_eq!(
        logged_faults(&h, command(kind)).await,
        [
            (Some("drop_after_commit".to_owned()), 200),
            (None, retry.status)
        ],
        "the dropped answer is logged with the status it would have had"
    );
}

/// `order_hang_after_commit = 2`: the first order outlasts a client's timeout but is carried
/// out; the retry hangs too and then gets the normal answer for an order already made.
async fn hang_after_commit(kind: Kind) {
    let (h, order) = ready(
        &format!("order_hang_after_commit = 2\norder_hang_ms = {HANG_MS}"),
        kind,
        "hang-1",
    )
    .await;
    let err = match order.send_within(&h, Some(CLIENT_TIMEOUT)).await {
        Ok(answer) => panic!("expected a timeout, got HTTP {}", answer.status),
        Err(e) => e,
    };
    assert!(err.is_timeout(), "{err}");
    let tx = committed_once(&h, &order).await;

    let sent = Instant::now();
    let retry = order.answered(&h).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(HANG_MS),
        "answered after {:?}",
        sent.elapsed()
    );
    repeat_answer(&order, &retry, &tx);
    assert_eq!(committed_once(&h, &order).await, tx);
}

#[tokio::test]
async fn prepaid_5xx_before_commit_creates_nothing() {
    before_commit(Kind::Prepaid).await;
}

#[tokio::test]
async fn postpaid_5xx_before_commit_pays_nothing() {
    before_commit(Kind::Postpaid).await;
}

#[tokio::test]
async fn va_5xx_before_commit_creates_nothing() {
    before_commit(Kind::Va).await;
}

#[tokio::test]
async fn prepaid_5xx_after_commit_keeps_one_transaction() {
    after_commit(Kind::Prepaid).await;
}

#[tokio::test]
async fn postpaid_5xx_after_commit_pays_once() {
    after_commit(Kind::Postpaid).await;
}

#[tokio::test]
async fn va_5xx_after_commit_keeps_one_va() {
    after_commit(Kind::Va).await;
}

#[tokio::test]
async fn prepaid_drop_after_commit_closes_the_connection_and_keeps_one_transaction() {
    drop_after_commit(Kind::Prepaid).await;
}

#[tokio::test]
async fn postpaid_drop_after_commit_closes_the_connection_and_pays_once() {
    drop_after_commit(Kind::Postpaid).await;
}

#[tokio::test]
async fn va_drop_after_commit_closes_the_connection_and_keeps_one_va() {
    drop_after_commit(Kind::Va).await;
}

#[tokio::test]
async fn prepaid_hang_after_commit_answers_late_and_keeps_one_transaction() {
    hang_after_commit(Kind::Prepaid).await;
}

#[tokio::test]
async fn postpaid_hang_after_commit_answers_late_and_pays_once() {
    hang_after_commit(Kind::Postpaid).await;
}

#[tokio::test]
async fn va_hang_after_commit_answers_late_and_keeps_one_va() {
    hang_after_commit(Kind::Va).await;
}

#[tokio::test]
async fn v1_xml_top_ups_meet_the_knobs_in_their_order() {
    let h = Harness::start(&with_faults(
        "order_5xx_before_commit = 1\norder_5xx_after_commit = 1",
    ))
    .await;
    let order = top_up_v1_xml("v1-order");
    assert_eq!(order.answered(&h).await.status, 503);
    nothing_committed(&h, &order).await;
    assert_eq!(order.answered(&h).await.status, 503);
    let tx = committed_once(&h, &order).await;
    let retry = order.answered(&h).await;
    assert_eq!(retry.status, 200);
    assert!(
        retry.text().starts_with('<'),
        "answered in XML: {}",
        retry.text()
    );
    repeat_answer(&order, &retry, &tx);
    assert_eq!(
        logged_faults(&h, "top-up").await,
        [
            (Some("5xx_before_commit".to_owned()), 503),
            (Some("5xx_after_commit".to_owned()), 503),
            (None, 200)
        ]
    );
}

#[tokio::test]
async fn inquiries_and_check_status_are_no_orders() {
    let h = Harness::start(&with_faults("order_5xx_before_commit = 1")).await;
    // The inquiry and two check-status calls leave the one count to the payment.
    let pay = payment(&h, "not-an-order").await;
    let status = h
        .postpaid(
            PostpaidCommand::CheckStatus {
                ref_id: "not-an-order".into(),
            },
            Format::Json,
        )
        .await;
    assert_eq!(status.response_code, "42");
    assert_eq!(h.check_status("nothing-here").await.rc, "06");
    assert_eq!(pay.answered(&h).await.status, 503);
    assert_eq!(pay.answered(&h).await.status, 200);
    // Each account counts its own orders: the MCPayment account still has its count.
    let va = va_create("va-count");
    assert_eq!(va.answered(&h).await.status, 503);
    first_answer(&va, &va.answered(&h).await);
    // A refused request is no order of the account: a wrong sign does not use up a count.
    let h = Harness::start(&with_faults("order_5xx_before_commit = 1")).await;
    let forged = h
        .top_up_as(IAK_USER, "wrong-key", "forged", "0817777215", "xld25000")
        .await;
    assert_eq!(forged.rc, "204");
    assert_eq!(top_up("real").answered(&h).await.status, 503);
}

#[tokio::test]
async fn transactions_lists_every_kind_under_a_ref_across_accounts() {
    let h = Harness::standard().await;
    // One ref used by a top-up and a bill of the IAK account and a VA of the MCPayment one.
    h.top_up("shared-1", "0817777215", "xld25000").await;
    let pay = payment(&h, "shared-1").await;
    first_answer(&pay, &pay.answered(&h).await);
    let va = va_create("shared-1");
    first_answer(&va, &va.answered(&h).await);

    let items = held(&h, "shared-1").await;
    let kinds: Vec<_> = items
        .iter()
        .map(|t| (t.account.as_str(), t.kind.as_str(), t.status.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("iak", "prepaid", "process"),
            ("iak", "postpaid", "paid"),
            ("mcp", "va", "ACTIVE")
        ]
    );
    let prepaid = &items[0];
    assert_eq!(prepaid.rc.as_deref(), Some("39"));
    assert!(prepaid.tr_id.is_some());
    assert_eq!(prepaid.product_code.as_deref(), Some("xld25000"));
    assert_eq!(prepaid.customer_id.as_deref(), Some("0817777215"));
    assert_eq!(prepaid.amount, TOP_UP_PRICE);
    assert_eq!(prepaid.created_at, "2024-05-01T03:00:00Z");
    let bill = &items[1];
    assert_eq!(bill.paid, Some(true));
    assert_eq!(bill.selling_price, Some(BILL_SELLING_PRICE));
    assert_eq!(bill.customer_id.as_deref(), Some(BILL_HP));
    assert!(bill.paid_at.is_some());
    let va = &items[2];
    assert!(va.transaction_id.is_some() && va.tr_id.is_none());
    assert_eq!(va.order_id.as_deref(), Some("ORD-shared-1"));
    assert_eq!((va.amount, va.paid), (50_000, Some(false)));

    // The raw JSON has the documented names.
    let raw = h.get("/sandbox/transactions?ref=shared-1").await.json();
    assert_eq!(raw["items"][0]["ref"], "shared-1");
    assert!(raw["items"][0]["transaction_id"].is_null());
    assert!(raw["items"][2]["transaction_id"].is_string());

    // `account` narrows the list; a payment moves the VA's status.
    let only_mcp = h
        .get("/sandbox/transactions?ref=shared-1&account=mcp")
        .await
        .json();
    assert_eq!(only_mcp["items"].as_array().unwrap().len(), 1);
    assert_eq!(only_mcp["items"][0]["kind"], "va");
    assert_eq!(h.pay("shared-1", 50_000).await.status, 200);
    let after: Vec<_> = held(&h, "shared-1").await;
    assert_eq!(after[2].status, "PAID");
    assert_eq!(after[2].total_paid_amount, Some(50_000));

    assert!(held(&h, "unknown-ref").await.is_empty());
    let none = h
        .get("/sandbox/transactions?ref=shared-1&account=iak-prod")
        .await;
    assert_eq!(none.json()["items"], serde_json::json!([]));
}

#[tokio::test]
async fn transactions_refuses_a_missing_ref_and_an_unknown_account() {
    let h = Harness::standard().await;
    for path in ["/sandbox/transactions", "/sandbox/transactions?ref="] {
        let a = h.get(path).await;
        assert_eq!(a.status, 400, "{path}");
        assert_eq!(a.content_type.as_deref(), Some("application/json"));
        let body = a.json();
        assert_eq!(body["error"]["code"], "missing_ref");
        assert!(body["error"]["message"].as_str().unwrap().contains("ref"));
    }
    let a = h.get("/sandbox/transactions?ref=x&account=nobody").await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["error"]["code"], "unknown_account");
    assert!(a.text().contains("nobody"));
    let a = h.get("/sandbox/transactions?ref=x&colour=red").await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["code"], "invalid_query");
}
