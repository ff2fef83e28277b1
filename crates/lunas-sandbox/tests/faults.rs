//! Every fault knob, as a callback handler or a reconciler would meet it, and the promise
//! that the same seed replays the same faults.

mod common;

use std::time::Duration;

use common::*;
use lunas_protocol::iak::postpaid::{PostpaidCommand, PostpaidRequest, PostpaidResult};
use lunas_protocol::iak::prepaid::{
    PrepaidCallback, PrepaidCommand, PrepaidRequest, PrepaidResult, PrepaidStatus,
};
use lunas_protocol::iak::Verdict;
use lunas_protocol::mcp::{
    CreateVaRequest, CustomerDetails, McpResponse, PaymentDetails, PaymentSystem,
    TransactionStatus, VaLookupRequest, VaTransaction,
};
use lunas_protocol::{ApiVersion, Format, Secret};
use lunas_sandbox::{CallbackKind, CallbackOutcome};

/// One development IAK account and one MCPayment account with the given fault table.
fn with_faults(faults: &str) -> String {
    format!(
        r#"
[sandbox]
seed = 11

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

fn iak_callbacks(h: &Harness) -> Vec<PrepaidCallback> {
    h.receiver
        .at("/iak")
        .iter()
        .map(|r| PrepaidCallback::parse(&r.body).unwrap().message)
        .collect()
}

async fn reported(h: &Harness, ref_id: &str, outcome: &str) -> serde_json::Value {
    h.top_up(ref_id, "0817777215", "xld25000").await;
    let answer = h.report(ref_id, outcome).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

#[tokio::test]
async fn duplicate_sends_the_final_callback_twice() {
    let h = Harness::start(&with_faults("duplicate = 1.0")).await;
    let body = reported(&h, "dup", "success").await;
    assert_eq!(body["callbacks"].as_array().unwrap().len(), 2);
    let got = h.receiver.at("/iak");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    let kinds: Vec<_> = h.sandbox.log().callbacks.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CallbackKind::Final, CallbackKind::Duplicate]);
}

#[tokio::test]
async fn drop_never_sends_but_the_outcome_stands() {
    let h = Harness::start(&with_faults("drop = 1.0")).await;
    let body = reported(&h, "gone", "success").await;
    assert_eq!(body["callback"]["outcome"], "dropped");
    assert_eq!(body["callback"]["attempt"], 0);
    assert!(h.receiver.received().is_empty());
    // Check-status still tells the truth: that is how a merchant recovers.
    let cs = h.check_status("gone").await;
    assert_eq!(cs.verdict(), Verdict::Succeeded);
    assert!(cs.sn.is_some());
}

#[tokio::test]
async fn out_of_order_sends_a_stale_pending_after_the_final() {
    let h = Harness::start(&with_faults("out_of_order = 1.0")).await;
    reported(&h, "ooo", "failed").await;
    let cbs = iak_callbacks(&h);
    assert_eq!(cbs.len(), 2);
    assert_eq!(cbs[0].status, PrepaidStatus::Failed);
    assert_eq!(cbs[1].status, PrepaidStatus::Process);
    assert_eq!(cbs[1].rc, "39");
    assert!(
        cbs[1].verify(IAK_USER, &Secret::new(IAK_KEY)),
        "it verifies: only its order is wrong"
    );
}

#[tokio::test]
async fn wrong_signature_makes_the_final_callback_fail_verification() {
    let h = Harness::start(&with_faults("wrong_signature = 1.0")).await;
    let body = reported(&h, "forged", "success").await;
    assert_eq!(body["callback"]["signature_wrong"], true);
    let cbs = iak_callbacks(&h);
    assert_eq!(cbs.len(), 1);
    assert!(!cbs[0].verify(IAK_USER, &Secret::new(IAK_KEY)));
    assert_eq!(cbs[0].sign.len(), 32, "still an md5 digest");
}

#[tokio::test]
async fn conflicting_follows_the_final_with_the_opposite_outcome() {
    let h = Harness::start(&with_faults("conflicting = 1.0")).await;
    reported(&h, "c-ok", "success").await;
    reported(&h, "c-bad", "failed").await;
    let cbs = iak_callbacks(&h);
    let verdicts: Vec<_> = cbs
        .iter()
        .map(|c| (c.ref_id.as_str(), c.verdict()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("c-ok", Verdict::Succeeded),
            ("c-ok", Verdict::Failed),
            ("c-bad", Verdict::Failed),
            ("c-bad", Verdict::Succeeded),
        ]
    );
    assert!(cbs
        .iter()
        .all(|c| c.verify(IAK_USER, &Secret::new(IAK_KEY))));
    // The sandbox's own truth is the first outcome.
    assert_eq!(h.check_status("c-ok").await.verdict(), Verdict::Succeeded);
    assert_eq!(h.check_status("c-bad").await.verdict(), Verdict::Failed);
}

#[tokio::test]
async fn every_callback_fault_at_once_keeps_its_order() {
    let h = Harness::start(&with_faults(
        "duplicate = 1.0\nout_of_order = 1.0\nconflicting = 1.0",
    ))
    .await;
    reported(&h, "all", "success").await;
    let kinds: Vec<_> = h.sandbox.log().callbacks.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            CallbackKind::Final,
            CallbackKind::Duplicate,
            CallbackKind::Conflicting,
            CallbackKind::OutOfOrder
        ]
    );
}

#[tokio::test]
async fn delay_jitter_postpones_production_callbacks_within_its_bound() {
    let h = Harness::start(
        r#"
[sandbox]
seed = 3
[[sandbox.accounts]]
kind = "iak"
username = "081200000001"
api_key = "prod-key-not-real"
environment = "production"
callback_url = "{callback}/p"
callback_delay_ms = 1000
[sandbox.accounts.faults]
delay_jitter_ms = 60000
"#,
    )
    .await;
    for i in 0..10 {
        h.top_up_as(
            PROD_USER,
            PROD_KEY,
            &format!("j{i}"),
            "0817777215",
            "xld25000",
        )
        .await;
    }
    h.advance(Duration::from_millis(999));
    assert_eq!(h.run_due().await, 0, "never earlier than the base delay");
    let mut seen = 0;
    let mut steps_with_sends = 0;
    for _ in 0..61 {
        h.advance(Duration::from_secs(1));
        let n = h.run_due().await;
        seen += n;
        steps_with_sends += usize::from(n > 0);
    }
    assert_eq!(seen, 10, "all sent within delay + jitter");
    assert!(steps_with_sends > 1, "the jitter spreads them out");
}

#[tokio::test]
async fn mcp_callbacks_meet_the_same_faults() {
    let h = Harness::start(&with_faults(
        "duplicate = 1.0\nwrong_signature = 1.0\nconflicting = 1.0\nout_of_order = 1.0",
    ))
    .await;
    let req = CreateVaRequest {
        external_id: "va-f".into(),
        order_id: "ORD-1".into(),
        currency: "IDR".into(),
        payment_method: "bank_transfer".into(),
        payment_channel: "BNI".into(),
        payment_details: PaymentDetails {
            billing_name: Some("Budi".into()),
            payment_system: Some(PaymentSystem::Closed),
            amount: Some(5_000),
            transaction_description: Some("x".into()),
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
    let headers = mcp_credentials().request_headers("va-f", "ORD-1");
    assert_eq!(
        h.post_with("/va", "application/json", req.encode(), &headers)
            .await
            .status,
        200
    );
    let body = h.pay("va-f", 5_000).await.json();
    assert_eq!(body["callbacks"].as_array().unwrap().len(), 4);
    let got: Vec<_> = h
        .receiver
        .at("/mcp")
        .iter()
        .map(|r| {
            let tx = VaTransaction::parse_callback(&r.body).unwrap();
            let ok = mcp_credentials().verify_callback(&tx, &r.header("mcp-signature").unwrap());
            (tx.transaction_status, ok)
        })
        .collect();
    assert_eq!(
        got,
        [
            (TransactionStatus::Paid, false),
            (TransactionStatus::Paid, false),
            (TransactionStatus::Expired, true),
            (TransactionStatus::Active, true),
        ]
    );
}

#[tokio::test]
async fn check_status_fails_5xx_then_hangs_then_answers_garbage_then_recovers() {
    let h = Harness::start(&with_faults(
        "check_status_5xx = 2\ncheck_status_timeout = 1\ncheck_status_garbage = 2\ncheck_status_hang_ms = 3000",
    ))
    .await;
    h.top_up("cs", "0817777215", "xld25000").await;
    let req = PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        PrepaidCommand::CheckStatus {
            ref_id: "cs".into(),
        },
    );
    let body = req.encode(Format::Json, ApiVersion::V2);

    for _ in 0..2 {
        let a = h
            .post("/api/check-status", "application/json", body.clone())
            .await;
        assert_eq!(a.status, 503);
        assert!(PrepaidResult::parse(&a.body).is_err());
    }
    let hung = tokio::time::timeout(
        Duration::from_millis(300),
        h.client
            .post(format!("{}/api/check-status", h.url))
            .body(body.clone())
            .send(),
    )
    .await;
    assert!(hung.is_err(), "no answer within a client's timeout");
    for _ in 0..2 {
        let a = h
            .post("/api/check-status", "application/json", body.clone())
            .await;
        assert_eq!(a.status, 200);
        assert!(PrepaidResult::parse(&a.body).is_err(), "{}", a.text());
    }
    let a = h
        .post("/api/check-status", "application/json", body.clone())
        .await;
    assert_eq!(PrepaidResult::parse(&a.body).unwrap().message.rc, "39");

    // Top-ups are not check-status: they were never affected.
    let faults: Vec<_> = h
        .sandbox
        .log()
        .requests
        .iter()
        .map(|r| (r.command.clone().unwrap(), r.fault.clone()))
        .collect();
    assert_eq!(faults[0], ("top-up".to_owned(), None));
    let kinds: Vec<_> = faults[1..].iter().map(|(_, f)| f.as_deref()).collect();
    assert_eq!(
        kinds,
        [
            Some("5xx"),
            Some("5xx"),
            Some("garbage"),
            Some("garbage"),
            None
        ],
        "the hanging call is logged when it answers"
    );
}

#[tokio::test]
async fn check_status_faults_apply_to_postpaid_and_va_inquiry_too() {
    let h = Harness::start(&with_faults(
        "check_status_5xx = 1\ncheck_status_garbage = 1",
    ))
    .await;
    let req = PostpaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        PostpaidCommand::CheckStatus { ref_id: "x".into() },
    );
    let path = req.path();
    let send = || h.post(&path, "application/json", req.encode(Format::Json));
    assert_eq!(send().await.status, 503);
    assert!(PostpaidResult::parse(&send().await.body).is_err());
    assert_eq!(
        PostpaidResult::parse(&send().await.body)
            .unwrap()
            .message
            .response_code,
        "06"
    );

    let lookup = VaLookupRequest {
        external_id: "nope".into(),
        order_id: "ORD".into(),
        transaction_id: "t".into(),
        payment_method: "BANK_TRANSFER".into(),
        payment_channel: "BNI".into(),
    };
    let headers = mcp_credentials().request_headers("nope", "ORD");
    let send = || h.post_with("/va/inquiry", "application/json", lookup.encode(), &headers);
    assert_eq!(send().await.status, 503);
    assert!(McpResponse::parse(&send().await.body).is_err());
    assert_eq!(
        McpResponse::parse(&send().await.body)
            .unwrap()
            .response_code,
        "02"
    );
}

#[tokio::test]
async fn the_same_seed_replays_the_same_faults_and_ids() {
    let run = || async {
        let h = Harness::start(&with_faults(
            "duplicate = 0.5\ndrop = 0.3\nconflicting = 0.3",
        ))
        .await;
        for i in 0..12 {
            h.top_up(&format!("s{i}"), "0817777215", "hsteam12000")
                .await;
            h.report(&format!("s{i}"), "success").await;
        }
        h.sandbox
            .log()
            .callbacks
            .iter()
            .map(|c| {
                (
                    c.reference.clone(),
                    c.kind,
                    c.outcome == CallbackOutcome::Dropped,
                    c.body.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let a = run().await;
    let b = run().await;
    assert_eq!(a, b);
    let kinds: std::collections::HashSet<_> = a.iter().map(|c| (c.1, c.2)).collect();
    assert!(
        kinds.len() >= 3,
        "a mix of faults at these probabilities: {kinds:?}"
    );
}
