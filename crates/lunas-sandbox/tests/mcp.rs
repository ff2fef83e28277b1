//! MCPayment virtual accounts over real HTTP: create, inquiry, cancel, simulated payments for
//! every payment system, expiry, and the signed, retried callbacks.

mod common;

use std::time::Duration;

use common::*;
use lunas_protocol::mcp::{
    CreateVaRequest, CustomerDetails, McpResponse, PaymentDetails, PaymentSystem,
    TransactionStatus, VaLookupRequest, VaTransaction,
};
use lunas_protocol::state::{va_state, State};
use lunas_sandbox::CallbackOutcome;

fn create_request(
    external_id: &str,
    system: PaymentSystem,
    multi_use: bool,
    amount: i64,
) -> CreateVaRequest {
    CreateVaRequest {
        external_id: external_id.into(),
        order_id: format!("ORD-{external_id}"),
        currency: "IDR".into(),
        payment_method: "bank_transfer".into(),
        payment_channel: "BRI".into(),
        payment_details: PaymentDetails {
            billing_name: Some("Budi Santoso".into()),
            payment_system: Some(system),
            is_multi_use: Some(multi_use),
            amount: Some(amount),
            transaction_description: Some(format!("Order {external_id}")),
            ..PaymentDetails::default()
        },
        customer_details: CustomerDetails {
            email: Some("budi@example.co.id".into()),
            full_name: Some("Budi Santoso".into()),
            phone: Some("081234567890".into()),
        },
        item_details: None,
        billing_address: None,
        callback_url: None,
        shipping_address: None,
        additional_data: None,
    }
}

impl Harness {
    async fn mcp_call(
        &self,
        path: &str,
        external_id: &str,
        order_id: &str,
        body: String,
    ) -> (Answer, McpResponse) {
        let headers = mcp_credentials().request_headers(external_id, order_id);
        let answer = self
            .post_with(path, "application/json", body, &headers)
            .await;
        let parsed = McpResponse::parse(&answer.body)
            .unwrap_or_else(|e| panic!("answer parses ({e}): {}", answer.text()));
        (answer, parsed)
    }

    async fn create_va(&self, req: &CreateVaRequest) -> VaTransaction {
        let (answer, parsed) = self
            .mcp_call("/va", &req.external_id, &req.order_id, req.encode())
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(parsed.is_success());
        parsed.data.expect("create answers the VA")
    }

    async fn lookup(&self, path: &str, va: &VaTransaction) -> (Answer, McpResponse) {
        let req = VaLookupRequest {
            external_id: va.external_id.clone(),
            order_id: va.order_id.clone(),
            transaction_id: va.transaction_id.clone(),
            payment_method: "BANK_TRANSFER".into(),
            payment_channel: "BRI".into(),
        };
        self.mcp_call(path, &va.external_id, &va.order_id, req.encode())
            .await
    }

    async fn inquiry(&self, va: &VaTransaction) -> VaTransaction {
        let (answer, parsed) = self.lookup("/va/inquiry", va).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        parsed.data.unwrap()
    }

    /// The VA callbacks received, parsed and checked against their `mcp-signature`.
    fn va_callbacks(&self) -> Vec<(VaTransaction, bool)> {
        self.receiver
            .at("/mcp")
            .iter()
            .map(|r| {
                let tx = VaTransaction::parse_callback(&r.body).unwrap();
                let ok =
                    mcp_credentials().verify_callback(&tx, &r.header("mcp-signature").unwrap());
                (tx, ok)
            })
            .collect()
    }
}

#[tokio::test]
async fn create_answers_an_active_va_in_the_envelope() {
    let h = Harness::standard().await;
    let va = h
        .create_va(&create_request(
            "ext-0001",
            PaymentSystem::Closed,
            false,
            150_000,
        ))
        .await;
    assert_eq!(va.transaction_status, TransactionStatus::Active);
    assert_eq!(va.external_id, "ext-0001");
    assert_eq!(va.order_id, "ORD-ext-0001");
    assert_eq!(va.transaction_id.len(), 36);
    let d = va.payment_details.as_ref().unwrap();
    assert_eq!(d.amount, Some(150_000));
    assert_eq!(d.total_paid_amount, Some(0));
    assert!(d.va_number.as_ref().unwrap().starts_with("26215"));
    assert_eq!(
        d.expired_time.as_deref(),
        Some("2024-05-02T10:00:00.000+07:00"),
        "a single CLOSED VA lives 24 hours"
    );
    assert_eq!(va_state(&va), Some(State::AwaitingPayment));
    assert_eq!(h.inquiry(&va).await, va);
}

#[tokio::test]
async fn authorization_and_signature_are_checked() {
    let h = Harness::standard().await;
    let req = create_request("ext-auth", PaymentSystem::Closed, false, 10_000);

    let none = h.post("/va", "application/json", req.encode()).await;
    assert_eq!(none.status, 401);
    assert_eq!(McpResponse::parse(&none.body).unwrap().response_code, "04");

    let mut headers = mcp_credentials().request_headers(&req.external_id, &req.order_id);
    headers[0].1 = "Basic TUNQMjA5OTAxMDEwMTp3cm9uZw==".into();
    let wrong_auth = h
        .post_with("/va", "application/json", req.encode(), &headers)
        .await;
    assert_eq!(wrong_auth.status, 401);

    let mut headers = mcp_credentials().request_headers(&req.external_id, &req.order_id);
    headers[1].1 = mcp_credentials().request_signature("other", &req.order_id);
    let wrong_sig = h
        .post_with("/va", "application/json", req.encode(), &headers)
        .await;
    assert_eq!(wrong_sig.status, 401);
    let body = McpResponse::parse(&wrong_sig.body).unwrap();
    assert_eq!(body.response_code, "99");
    assert_eq!(body.response_message.as_deref(), Some("Invalid Signature"));

    let malformed = h
        .mcp_call(
            "/va",
            &req.external_id,
            &req.order_id,
            "{\"external_id\":1".into(),
        )
        .await;
    assert_eq!(malformed.0.status, 400);
    assert_eq!(malformed.1.response_code, "01");

    let mut no_amount = req.clone();
    no_amount.payment_details.amount = None;
    let (answer, parsed) = h
        .mcp_call("/va", &req.external_id, &req.order_id, no_amount.encode())
        .await;
    assert_eq!((answer.status, parsed.response_code.as_str()), (400, "01"));

    // Nothing was created by the refused requests.
    h.create_va(&req).await;
    let (dup, parsed) = h
        .mcp_call("/va", &req.external_id, &req.order_id, req.encode())
        .await;
    assert_eq!((dup.status, parsed.response_code.as_str()), (400, "01"));
}

#[tokio::test]
async fn a_closed_va_takes_exactly_its_amount_once() {
    let h = Harness::standard().await;
    let va = h
        .create_va(&create_request(
            "closed-1",
            PaymentSystem::Closed,
            false,
            150_000,
        ))
        .await;
    let wrong = h.pay("closed-1", 100_000).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.json()["error"]["code"], "invalid_amount");
    assert!(h.receiver.received().is_empty());

    let paid = h.pay("closed-1", 150_000).await;
    assert_eq!(paid.status, 200, "{}", paid.text());
    let body = paid.json();
    assert_eq!(body["transaction_status"], "PAID");
    assert_eq!(body["total_paid_amount"], 150_000);
    assert_eq!(body["callback"]["http_status"], 200);
    assert_eq!(body["callback"]["outcome"], "accepted");
    assert_eq!(body["scheduled"], 0);

    let callbacks = h.va_callbacks();
    assert_eq!(callbacks.len(), 1);
    let (cb, signature_ok) = &callbacks[0];
    assert!(signature_ok, "mcp-signature verifies");
    assert_eq!(cb.transaction_status, TransactionStatus::Paid);
    assert_eq!(cb.response_code.as_deref(), Some("00"));
    assert_eq!(cb.transaction_id, va.transaction_id);
    assert_eq!(cb.payment_history.as_ref().unwrap().len(), 1);
    assert_eq!(cb.total_paid(), Some(150_000));
    assert_eq!(cb.issuer.as_deref(), Some("BRI"));
    assert_eq!(va_state(cb), Some(State::Paid));
    assert_eq!(
        h.receiver.at("/mcp")[0].header("content-type").as_deref(),
        Some("application/json")
    );

    let again = h.pay("closed-1", 150_000).await;
    assert_eq!(again.status, 409);
    let inquiry = h.inquiry(&va).await;
    assert_eq!(inquiry.transaction_status, TransactionStatus::Paid);
    assert_eq!(inquiry.payment_history.unwrap().len(), 1);
}

#[tokio::test]
async fn a_partial_va_accumulates_until_the_total() {
    let h = Harness::standard().await;
    let va = h
        .create_va(&create_request(
            "part-1",
            PaymentSystem::Partial,
            true,
            150_000,
        ))
        .await;
    assert_eq!(h.pay("part-1", 200_000).await.status, 400, "more than due");
    let first = h.pay("part-1", 50_000).await.json();
    assert_eq!(first["transaction_status"], "ACTIVE");
    assert_eq!(first["total_paid_amount"], 50_000);
    let second = h.pay("part-1", 100_000).await.json();
    assert_eq!(second["transaction_status"], "PAID");
    assert_ne!(
        first["payment"]["reference_id"],
        second["payment"]["reference_id"]
    );
    assert_eq!(h.pay("part-1", 1).await.status, 409, "fully paid");

    let callbacks = h.va_callbacks();
    assert_eq!(callbacks.len(), 2);
    assert!(callbacks.iter().all(|(_, ok)| *ok));
    let (one, _) = &callbacks[0];
    assert_eq!(one.payment_details.as_ref().unwrap().amount, Some(50_000));
    assert_eq!(one.total_amount(), Some(150_000));
    assert_eq!(va_state(one), Some(State::PartiallyPaid));
    let (two, _) = &callbacks[1];
    let history = two.payment_history.as_ref().unwrap();
    assert_eq!(history.len(), 2);
    assert_ne!(history[0].reference_id, history[1].reference_id);
    assert_eq!(two.total_paid(), Some(150_000));
    assert_eq!(va_state(two), Some(State::Paid));
    assert_eq!(
        h.inquiry(&va).await.transaction_status,
        TransactionStatus::Paid
    );
}

/// A callback reports a payment, an inquiry the VA: after 30,000 of 100,000 the callback says
/// `PAID` (that payment went through) and an inquiry at the same moment `ACTIVE` (more can be
/// paid), and both carry the same money: the amount paid so far, the total and the payment's
/// history entry, so both read as partially paid.
#[tokio::test]
async fn a_partly_paid_va_reads_the_same_in_its_callback_and_an_inquiry() {
    let h = Harness::standard().await;
    let va = h
        .create_va(&create_request(
            "part-2",
            PaymentSystem::Partial,
            true,
            100_000,
        ))
        .await;
    assert_eq!(h.pay("part-2", 30_000).await.status, 200);
    let callbacks = h.va_callbacks();
    let (callback, _) = &callbacks[0];
    let inquiry = h.inquiry(&va).await;
    assert_eq!(callback.transaction_status, TransactionStatus::Paid);
    assert_eq!(inquiry.transaction_status, TransactionStatus::Active);
    for tx in [callback, &inquiry] {
        assert_eq!(tx.total_paid(), Some(30_000));
        assert_eq!(tx.total_amount(), Some(100_000));
        assert_eq!(va_state(tx), Some(State::PartiallyPaid));
    }
    let history = |tx: &VaTransaction| {
        tx.payment_history
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.reference_id.clone(), p.paid_amount))
            .collect::<Vec<_>>()
    };
    assert_eq!(history(callback), history(&inquiry));
    assert_eq!(history(callback).len(), 1);
}

#[tokio::test]
async fn open_and_multi_use_vas_take_repeated_payments() {
    let h = Harness::standard().await;
    let open = h
        .create_va(&create_request("open-1", PaymentSystem::Open, true, 0))
        .await;
    assert_eq!(
        open.payment_details
            .as_ref()
            .unwrap()
            .expired_time
            .as_deref(),
        Some("2034-05-01T10:00:00.000+07:00"),
        "OPEN lives ten years"
    );
    for amount in [12_345, 50_000, 10_007] {
        assert_eq!(h.pay("open-1", amount).await.status, 200);
    }
    // Less than IDR 10,000 is not taken (iFortepay's minimum for an OPEN VA).
    assert_eq!(h.pay("open-1", 9_999).await.status, 400);
    h.create_va(&create_request(
        "multi-1",
        PaymentSystem::Closed,
        true,
        20_000,
    ))
    .await;
    assert_eq!(h.pay("multi-1", 20_000).await.status, 200);
    assert_eq!(h.pay("multi-1", 20_000).await.status, 200);
    assert_eq!(h.pay("multi-1", 19_999).await.status, 400);

    let open_cbs: Vec<_> = h
        .va_callbacks()
        .into_iter()
        .filter(|(c, _)| c.external_id == "open-1")
        .collect();
    assert_eq!(open_cbs.len(), 3);
    assert_eq!(open_cbs[2].0.total_paid(), Some(72_352));
    assert_eq!(open_cbs[2].0.payment_history.as_ref().unwrap().len(), 3);
    let inquiry = h.inquiry(&open).await;
    assert_eq!(inquiry.payment_history.unwrap().len(), 3);
    assert_eq!(
        h.va_callbacks()
            .iter()
            .filter(|(c, _)| c.external_id == "multi-1")
            .count(),
        2
    );
}

#[tokio::test]
async fn inquiry_lists_only_the_latest_five_payments() {
    let h = Harness::standard().await;
    let va = h
        .create_va(&create_request("many", PaymentSystem::Open, true, 0))
        .await;
    for i in 1..=7 {
        h.pay("many", i * 10_000).await;
    }
    let history = h.inquiry(&va).await.payment_history.unwrap();
    let amounts: Vec<_> = history.iter().map(|p| p.paid_amount.unwrap()).collect();
    assert_eq!(amounts, [30_000, 40_000, 50_000, 60_000, 70_000]);
    let last = h.va_callbacks().pop().unwrap().0;
    assert_eq!(
        last.payment_history.unwrap().len(),
        7,
        "callbacks list every payment"
    );
}

#[tokio::test]
async fn an_expired_va_refuses_payment_and_says_so_once() {
    let h = Harness::standard().await;
    let va = h
        .create_va(&create_request(
            "exp-1",
            PaymentSystem::Closed,
            false,
            10_000,
        ))
        .await;
    h.advance(Duration::from_secs(24 * 3600 - 1));
    assert_eq!(h.run_due().await, 0);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.run_due().await, 1);
    let callbacks = h.va_callbacks();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(
        callbacks[0].0.transaction_status,
        TransactionStatus::Expired
    );
    assert!(callbacks[0].1);
    assert_eq!(va_state(&callbacks[0].0), Some(State::Expired));

    let refused = h.pay("exp-1", 10_000).await;
    assert_eq!(refused.status, 409);
    assert!(refused.text().contains("expired"));
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.run_due().await, 0, "the EXPIRED callback is sent once");
    assert_eq!(
        h.inquiry(&va).await.transaction_status,
        TransactionStatus::Expired
    );
}

#[tokio::test]
async fn a_payment_after_expiry_but_before_any_step_is_still_refused() {
    let h = Harness::standard().await;
    let mut req = create_request("exp-2", PaymentSystem::Partial, true, 10_000);
    req.payment_details.expired_time = Some("2024-05-01T10:30:00.000+07:00".into());
    h.create_va(&req).await;
    h.pay("exp-2", 4_000).await;
    h.advance(Duration::from_secs(1800));
    // No run_due in between: the payment itself notices the expiry.
    assert_eq!(h.pay("exp-2", 6_000).await.status, 409);
    assert_eq!(h.run_due().await, 1);
    let last = h.va_callbacks().pop().unwrap().0;
    assert_eq!(last.transaction_status, TransactionStatus::Expired);
    assert_eq!(last.total_paid(), Some(4_000));
}

#[tokio::test]
async fn cancel_stops_payments() {
    let h = Harness::standard().await;
    let va = h
        .create_va(&create_request("can-1", PaymentSystem::Open, true, 0))
        .await;
    let (answer, parsed) = h.lookup("/va/cancel", &va).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        parsed.data.unwrap().transaction_status,
        TransactionStatus::Canceled
    );
    assert_eq!(h.pay("can-1", 10_000).await.status, 409);
    let (again, parsed) = h.lookup("/va/cancel", &va).await;
    assert_eq!((again.status, parsed.response_code.as_str()), (400, "03"));

    let paid = h
        .create_va(&create_request(
            "can-2",
            PaymentSystem::Closed,
            false,
            5_000,
        ))
        .await;
    h.pay("can-2", 5_000).await;
    let (refused, _) = h.lookup("/va/cancel", &paid).await;
    assert_eq!(
        refused.status, 400,
        "a paid single-use VA cannot be cancelled"
    );
}

#[tokio::test]
async fn lookups_of_unknown_vas_are_data_not_found() {
    let h = Harness::standard().await;
    let mut va = h
        .create_va(&create_request(
            "look-1",
            PaymentSystem::Closed,
            false,
            5_000,
        ))
        .await;
    va.transaction_id = "00000000-0000-4000-8000-000000000000".into();
    let (answer, parsed) = h.lookup("/va/inquiry", &va).await;
    assert_eq!((answer.status, parsed.response_code.as_str()), (404, "02"));
    assert_eq!(h.pay("nope", 1).await.status, 404);
}

#[tokio::test]
async fn callbacks_are_retried_until_200_three_tries_by_default() {
    let h = Harness::start(
        r#"
[sandbox]
[[sandbox.accounts]]
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
callback_url = "{callback}/mcp"
"#,
    )
    .await;
    h.receiver.fail_next(5);
    h.create_va(&create_request(
        "retry-1",
        PaymentSystem::Closed,
        false,
        5_000,
    ))
    .await;
    let body = h.pay("retry-1", 5_000).await.json();
    assert_eq!(body["callback"]["http_status"], 500);
    assert_eq!(body["scheduled"], 1);
    h.advance(Duration::from_secs(5));
    assert_eq!(h.run_due().await, 1);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.run_due().await, 1);
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.run_due().await, 0);
    assert_eq!(h.receiver.at("/mcp").len(), 3);
    let outcomes: Vec<_> = h.log().await.callbacks.iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, [CallbackOutcome::Rejected; 3]);
}

#[tokio::test]
async fn a_create_request_callback_url_is_used() {
    let h = Harness::standard().await;
    let mut req = create_request("url-1", PaymentSystem::Closed, false, 5_000);
    req.callback_url = Some(format!("{}/elsewhere", h.receiver.url));
    h.create_va(&req).await;
    h.pay("url-1", 5_000).await;
    assert_eq!(h.receiver.at("/elsewhere").len(), 1);
    assert!(h.receiver.at("/mcp").is_empty());
}

#[tokio::test]
async fn a_sub_merchant_needs_its_header_and_signs_callbacks_with_it() {
    let h = Harness::start(
        r#"
[sandbox]
[[sandbox.accounts]]
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
sub_merchant_id = "submerchant-a"
callback_url = "{callback}/mcp"
"#,
    )
    .await;
    let req = create_request("sub-1", PaymentSystem::Closed, false, 5_000);
    let (without, _) = h
        .mcp_call("/va", "sub-1", &req.order_id, req.encode())
        .await;
    assert_eq!(without.status, 401);
    let mut creds = mcp_credentials();
    creds.sub_merchant_id = Some("submerchant-a".into());
    let headers = creds.request_headers("sub-1", &req.order_id);
    let answer = h
        .post_with("/va", "application/json", req.encode(), &headers)
        .await;
    assert_eq!(answer.status, 200);
    h.pay("sub-1", 5_000).await;
    let got = &h.receiver.at("/mcp")[0];
    let tx = VaTransaction::parse_callback(&got.body).unwrap();
    let signature = got.header("mcp-signature").unwrap();
    assert!(creds.verify_callback(&tx, &signature));
    assert!(!mcp_credentials().verify_callback(&tx, &signature));
}

/// Refund and void callbacks as iFortepay's callback document shows them: `REFUNDED` (or
/// `VOID`), `refund_history`, `transaction_type` `on_us`/`off_us`, and the response code asked
/// for; signed like every callback.
#[tokio::test]
async fn refunds_and_voids_send_the_documents_callbacks() {
    let h = Harness::standard().await;
    let va = h
        .create_va(&create_request(
            "refund-1",
            PaymentSystem::Closed,
            false,
            150_000,
        ))
        .await;
    let refund = |body: serde_json::Value| {
        h.post("/sandbox/va/refund", "application/json", body.to_string())
    };
    // Nothing paid yet: nothing to refund.
    assert_eq!(
        refund(serde_json::json!({"external_id": "refund-1"}))
            .await
            .status,
        409
    );
    assert_eq!(h.pay("refund-1", 150_000).await.status, 200);
    assert_eq!(
        refund(serde_json::json!({"external_id": "refund-1", "amount": 150_001}))
            .await
            .status,
        400
    );
    let answer = refund(serde_json::json!({
        "external_id": "refund-1", "amount": 50_000, "off_us": true, "response_code": "05"
    }))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(
        (
            body["transaction_status"].as_str(),
            body["total_refunded"].as_i64()
        ),
        (Some("REFUNDED"), Some(50_000))
    );
    let (callback, signed) = h.va_callbacks().last().cloned().unwrap();
    assert!(signed);
    assert_eq!(callback.transaction_status, TransactionStatus::Refunded);
    assert_eq!(callback.response_code.as_deref(), Some("05"));
    assert_eq!(callback.transaction_type.as_deref(), Some("off_us"));
    let history = callback.refund_history.clone().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].refund_amount, Some(50_000));
    assert!(history[0].refund_time.is_some());
    // The inquiry agrees.
    let now = h.inquiry(&va).await;
    assert_eq!(now.transaction_status, TransactionStatus::Refunded);
    assert_eq!(now.refund_history.unwrap().len(), 1);
    // The rest, as a void.
    let answer = refund(serde_json::json!({"external_id": "refund-1", "void": true})).await;
    assert_eq!(answer.json()["total_refunded"], 150_000);
    let (callback, _) = h.va_callbacks().last().cloned().unwrap();
    assert_eq!(callback.transaction_status, TransactionStatus::Void);
    assert_eq!(callback.transaction_type.as_deref(), Some("on_us"));
    assert_eq!(callback.refund_history.unwrap().len(), 2);
    // Nothing is left.
    assert_eq!(
        refund(serde_json::json!({"external_id": "refund-1"}))
            .await
            .status,
        409
    );
}

#[tokio::test]
async fn a_va_without_the_customers_email_or_an_open_one_under_10000_is_refused() {
    let h = Harness::standard().await;
    let mut req = create_request("no-mail", PaymentSystem::Closed, false, 50_000);
    req.customer_details.email = None;
    let headers = mcp_credentials().request_headers("no-mail", &req.order_id);
    let answer = h
        .post_with("/va", "application/json", req.encode(), &headers)
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.text().contains("customer_details.email"),
        "{}",
        answer.text()
    );
    let req = create_request("open-small", PaymentSystem::Open, true, 5_000);
    let headers = mcp_credentials().request_headers("open-small", &req.order_id);
    let answer = h
        .post_with("/va", "application/json", req.encode(), &headers)
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("10000"), "{}", answer.text());
}

/// Seed 002: what the merchant gave at creation (addresses, items, additional data) comes back
/// in the callbacks and the inquiries, as the document's callback shows.
#[tokio::test]
async fn what_was_given_at_creation_comes_back_in_callbacks_and_inquiries() {
    use lunas_protocol::mcp::{Address, ItemDetail};
    let h = Harness::standard().await;
    let address = |city: &str| Address {
        phone: Some("081234567890".into()),
        address: Some("Jl. Sudirman 1".into()),
        city: Some(city.into()),
        postal_code: Some("10220".into()),
        country: Some("ID".into()),
        full_name: Some("Budi Santoso".into()),
    };
    let mut req = create_request("given-1", PaymentSystem::Closed, false, 75_000);
    req.billing_address = Some(address("Jakarta"));
    req.shipping_address = Some(address("Bandung"));
    req.item_details = Some(vec![ItemDetail {
        item_id: Some("SKU-1".into()),
        name: Some("Voucher".into()),
        amount: Some(75_000),
        qty: Some(1),
        description: Some("one voucher".into()),
    }]);
    req.additional_data = Some("note from the shop".into());
    let va = h.create_va(&req).await;
    assert_eq!(h.pay("given-1", 75_000).await.status, 200);
    let (callback, _) = h.va_callbacks().last().cloned().unwrap();
    let inquiry = h.inquiry(&va).await;
    for tx in [&va, &callback, &inquiry] {
        assert_eq!(tx.billing_address, req.billing_address);
        assert_eq!(tx.shipping_address, req.shipping_address);
        assert_eq!(tx.item_details, req.item_details);
        assert_eq!(tx.additional_data, req.additional_data);
    }
}

/// Seed 002 shows two callback bodies; an account's `callback_layout` picks one, and a paid
/// callback then has that example's fields in that example's order (the "Body raw" also shows
/// `refund_history`, which only a refund has).
#[tokio::test]
async fn a_paid_callback_has_the_fields_of_the_documents_example_in_its_order() {
    for (layout, example, only_in_example) in [
        ("example_request", "callback_curl.json", vec![]),
        (
            "body_raw",
            "callback_body_raw.json",
            vec![
                "refund_history",
                "refund_history[].refund_time",
                "refund_history[].refund_amount",
            ],
        ),
    ] {
        let h = Harness::start(&format!(
            r#"
[sandbox]
[[sandbox.accounts]]
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
callback_url = "{{callback}}/mcp"
callback_layout = "{layout}"
"#
        ))
        .await;
        let fixture = |name: &str| protocol_fixture(&format!("mcp/{name}"));
        // The document's create request, with the addresses and free text its callbacks show.
        let mut req: CreateVaRequest =
            serde_json::from_str(&fixture("create_request.json")).unwrap();
        req.payment_details.expired_time = None;
        req.callback_url = Some(format!("{}/mcp", h.receiver.url));
        let documented: serde_json::Value = serde_json::from_str(&fixture(example)).unwrap();
        req.billing_address = serde_json::from_value(documented["billing_address"].clone()).ok();
        req.shipping_address = serde_json::from_value(documented["shipping_address"].clone()).ok();
        req.additional_data = Some("catatan bebas".into());
        h.create_va(&req).await;
        assert_eq!(h.pay("ext-0001", 150_000).await.status, 200);
        let got = h.receiver.at("/mcp");
        let body: serde_json::Value = serde_json::from_str(&got[0].text()).unwrap();
        let (sent, shown) = (key_paths(&body), key_paths(&documented));
        let expected: Vec<String> = shown
            .iter()
            .filter(|p| !only_in_example.contains(&p.as_str()))
            .cloned()
            .collect();
        assert_eq!(sent, expected, "{layout}: {}", got[0].text());
        // Either way the gateway's reading of it is the same: paid in full.
        let tx = VaTransaction::parse_callback(got[0].text().as_bytes()).unwrap();
        assert_eq!(va_state(&tx), Some(State::Paid));
        assert_eq!(tx.total_paid(), Some(150_000));

        // A refund: the "Body raw" shows its fields where they go; the "Example Request" shows
        // none, so they come last.
        let refunded = h
            .post(
                "/sandbox/va/refund",
                "application/json",
                serde_json::json!({"external_id": "ext-0001", "amount": 1000}).to_string(),
            )
            .await;
        assert_eq!(refunded.status, 200, "{}", refunded.text());
        let got = h.receiver.at("/mcp");
        let body: serde_json::Value = serde_json::from_str(&got[1].text()).unwrap();
        let mut expected = key_paths(&documented);
        if layout == "example_request" {
            expected.extend(
                [
                    "refund_history",
                    "refund_history[].refund_time",
                    "refund_history[].refund_amount",
                    "transaction_type",
                ]
                .map(String::from),
            );
        }
        assert_eq!(
            key_paths(&body),
            expected,
            "{layout} refund: {}",
            got[1].text()
        );
    }
}
