//! Production sends each final callback by itself after the delay and retries it;
//! development sends only what `POST /sandbox/report` asks for. Callback formats and names per
//! account. Time moves only when the test moves the manual clock.

mod common;

use std::time::Duration;

use common::*;
use lunas_protocol::iak::prepaid::{PrepaidCallback, PrepaidStatus};
use lunas_protocol::iak::Verdict;
use lunas_protocol::{ApiVersion, Format, Secret};
use lunas_sandbox::{CallbackKind, CallbackOutcome, Clock, Sandbox};

#[tokio::test]
async fn production_sends_the_final_callback_after_the_delay() {
    let h = Harness::standard().await;
    let r = h
        .top_up_as(PROD_USER, PROD_KEY, "p1", "0817777215", "xld25000")
        .await;
    assert_eq!(r.rc, "39");

    // Nothing is due before the 2 s delay has passed.
    assert_eq!(h.run_due().await, 0);
    h.advance(Duration::from_millis(1999));
    assert_eq!(h.run_due().await, 0);
    assert_eq!(h.check_status_as(PROD_USER, PROD_KEY, "p1").await.rc, "39");
    assert!(h.receiver.received().is_empty());

    h.advance(Duration::from_millis(1));
    assert_eq!(h.run_due().await, 1);
    let got = h.receiver.at("/iak-prod");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("content-type").as_deref(),
        Some("application/json")
    );
    let cb = PrepaidCallback::parse(&got[0].body).unwrap();
    assert_eq!(cb.format, Format::Json);
    assert_eq!(cb.version, ApiVersion::V2);
    assert_eq!(cb.message.ref_id, "p1");
    assert_eq!(cb.message.verdict(), Verdict::Succeeded);
    assert!(cb.message.verify(PROD_USER, &Secret::new(PROD_KEY)));
    assert!(cb.message.sn.is_some());
    assert_eq!(cb.message.balance, r.balance.unwrap());

    // Check-status agrees, and nothing more is sent.
    let cs = h.check_status_as(PROD_USER, PROD_KEY, "p1").await;
    assert_eq!(cs.status, Some(PrepaidStatus::Success));
    assert_eq!(cs.sn, Some(cb.message.sn.clone().unwrap()));
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.run_due().await, 0);
    assert_eq!(h.receiver.received().len(), 1);
}

#[tokio::test]
async fn production_outcomes_follow_the_customer_number() {
    let h = Harness::standard().await;
    h.top_up_as(PROD_USER, PROD_KEY, "ok", "0817777215", "xld25000")
        .await;
    h.top_up_as(PROD_USER, PROD_KEY, "bad", "081200001016", "xld25000")
        .await;
    h.top_up_as(PROD_USER, PROD_KEY, "stuck", "081200001039", "xld25000")
        .await;
    h.advance(Duration::from_secs(2));
    assert_eq!(h.run_due().await, 2);
    let by_ref = |r: &str| {
        h.receiver
            .received()
            .iter()
            .map(|c| PrepaidCallback::parse(&c.body).unwrap().message)
            .find(|c| c.ref_id == r)
    };
    assert_eq!(by_ref("ok").unwrap().rc, "00");
    let bad = by_ref("bad").unwrap();
    assert_eq!((bad.status, bad.rc.as_str()), (PrepaidStatus::Failed, "16"));
    assert_eq!(bad.message, "NUMBER NOT MATCH WITH OPERATOR");
    assert!(by_ref("stuck").is_none());
    assert_eq!(
        h.check_status_as(PROD_USER, PROD_KEY, "stuck").await.rc,
        "39"
    );

    // A report ends the one that stays in process, even in production.
    let report = h.report("stuck", "success").await;
    assert_eq!(report.status, 200, "{}", report.text());
    assert_eq!(by_ref("stuck").unwrap().rc, "00");
}

#[tokio::test]
async fn production_retries_until_the_receiver_accepts() {
    let h = Harness::standard().await;
    h.receiver.fail_next(2);
    h.top_up_as(PROD_USER, PROD_KEY, "r1", "0817777215", "xld25000")
        .await;
    h.advance(Duration::from_secs(2));
    assert_eq!(h.run_due().await, 1, "first attempt");
    h.advance(Duration::from_millis(999));
    assert_eq!(h.run_due().await, 0, "the first retry waits 1 s");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.run_due().await, 1, "second attempt");
    h.advance(Duration::from_secs(5));
    assert_eq!(h.run_due().await, 1, "third attempt");
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.run_due().await, 0, "accepted: no more");

    let got = h.receiver.at("/iak-prod");
    assert_eq!(got.len(), 3);
    assert!(
        got.windows(2).all(|w| w[0].body == w[1].body),
        "retries resend the same body"
    );

    let log = h.log().await;
    let attempts: Vec<_> = log
        .callbacks_for("r1")
        .iter()
        .map(|c| (c.attempt, c.outcome, c.http_status))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, CallbackOutcome::Rejected, Some(500)),
            (2, CallbackOutcome::Rejected, Some(500)),
            (3, CallbackOutcome::Accepted, Some(200)),
        ]
    );
}

#[tokio::test]
async fn production_gives_up_after_the_last_retry() {
    let h = Harness::standard().await;
    h.receiver.fail_next(10);
    h.top_up_as(PROD_USER, PROD_KEY, "g1", "0817777215", "xld25000")
        .await;
    for _ in 0..5 {
        h.advance(Duration::from_secs(10));
        h.run_due().await;
    }
    assert_eq!(
        h.receiver.at("/iak-prod").len(),
        3,
        "one try and two retries"
    );
    assert_eq!(h.sandbox.pending_jobs(), 0);
}

#[tokio::test]
async fn an_unreachable_receiver_is_an_error_and_retried() {
    let h = Harness::start(
        r#"
[sandbox]
[[sandbox.accounts]]
kind = "iak"
username = "081200000001"
api_key = "prod-key-not-real"
environment = "production"
callback_url = "http://127.0.0.1:9/closed"
callback_delay_ms = 0
retry_delays_ms = [0]
callback_timeout_ms = 2000
"#,
    )
    .await;
    h.top_up_as(PROD_USER, PROD_KEY, "u1", "0817777215", "xld25000")
        .await;
    assert_eq!(h.run_due().await, 2, "the try and its zero-delay retry");
    let log = h.sandbox.log();
    assert_eq!(log.callbacks.len(), 2);
    assert!(log
        .callbacks
        .iter()
        .all(|c| c.outcome == CallbackOutcome::Error && c.error.is_some()));
}

#[tokio::test]
async fn development_never_sends_by_itself() {
    let h = Harness::standard().await;
    h.top_up("d1", "0817777215", "xld25000").await;
    h.top_up("d2", "081200001007", "xld25000").await;
    h.advance(Duration::from_secs(48 * 3600));
    assert_eq!(h.run_due().await, 0);
    assert!(h.receiver.received().is_empty());
    assert_eq!(h.check_status("d1").await.rc, "39");
    assert_eq!(h.sandbox.pending_jobs(), 0);
}

#[tokio::test]
async fn a_report_sends_the_callback_and_answers_with_it() {
    let h = Harness::standard().await;
    h.top_up("order001", "0817777215", "hsteam12000").await;
    let answer = h.report("order001", "success").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["account"], "iak");
    assert_eq!(body["kind"], "prepaid");
    assert_eq!(body["status"], 1);
    assert_eq!(body["rc"], "00");
    assert_eq!(body["callback"]["http_status"], 200);
    assert_eq!(body["callback"]["outcome"], "accepted");
    assert_eq!(
        body["callback"]["response_body"],
        r#"{"message":"SUCCESS"}"#
    );
    let sent = body["callback"]["body"].as_str().unwrap();

    let got = h.receiver.at("/iak");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text(), sent);
    let cb = PrepaidCallback::parse(&got[0].body).unwrap().message;
    assert_eq!(cb.status, PrepaidStatus::Success);
    assert!(cb.pin.is_some());
    assert!(cb.verify(IAK_USER, &Secret::new(IAK_KEY)));

    // One action per transaction.
    let again = h.report("order001", "failed").await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["error"]["code"], "already_final");
    assert_eq!(h.receiver.received().len(), 1);
}

#[tokio::test]
async fn a_failed_report_uses_rc_07_unless_the_number_says_otherwise() {
    let h = Harness::standard().await;
    h.top_up("f1", "0817777215", "xld25000").await;
    let body = h.report("f1", "failed").await.json();
    assert_eq!(
        (body["status"].as_i64(), body["rc"].as_str()),
        (Some(2), Some("07"))
    );
    let cb = PrepaidCallback::parse(&h.receiver.at("/iak")[0].body)
        .unwrap()
        .message;
    assert_eq!(cb.message, "FAILED");
    assert_eq!(cb.verdict(), Verdict::Failed);
}

#[tokio::test]
async fn report_refusals_are_clear() {
    let h = Harness::standard().await;
    let unknown = h.report("nope", "success").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "unknown_ref");

    let bad = h
        .post(
            "/sandbox/report",
            "application/json",
            r#"{"ref":"x","outcome":"maybe"}"#,
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "invalid_body");

    // The same ref at two accounts needs "account".
    h.top_up("same", "0817777215", "xld25000").await;
    h.top_up_as(IDSL_USER, IDSL_KEY, "same", "0817777215", "xld25000")
        .await;
    let ambiguous = h.report("same", "success").await;
    assert_eq!(ambiguous.status, 400);
    assert_eq!(ambiguous.json()["error"]["code"], "ambiguous_ref");
    let chosen = h
        .post(
            "/sandbox/report",
            "application/json",
            r#"{"ref":"same","outcome":"success","account":"idsl"}"#,
        )
        .await;
    assert_eq!(chosen.status, 200);
    assert_eq!(chosen.json()["account"], "idsl");
    let mcp = h
        .post(
            "/sandbox/report",
            "application/json",
            r#"{"ref":"same","outcome":"success","account":"mcp"}"#,
        )
        .await;
    assert_eq!(mcp.status, 400);
}

#[tokio::test]
async fn a_development_callback_the_receiver_refuses_is_not_retried() {
    let h = Harness::standard().await;
    h.receiver.fail_next(1);
    h.top_up("n1", "0817777215", "xld25000").await;
    let body = h.report("n1", "success").await.json();
    assert_eq!(body["callback"]["http_status"], 500);
    assert_eq!(body["callback"]["outcome"], "rejected");
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.run_due().await, 0);
    assert_eq!(h.receiver.received().len(), 1);
}

#[tokio::test]
async fn xml_v1_accounts_get_xml_callbacks_with_v1_names() {
    let h = Harness::standard().await;
    h.top_up_as(IDSL_USER, IDSL_KEY, "x1", "0817777215", "xld25000")
        .await;
    h.report("x1", "success").await;
    let got = h.receiver.at("/idsl");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("content-type").as_deref(),
        Some("application/xml")
    );
    let text = got[0].text();
    assert!(text.starts_with("<?xml"), "{text}");
    assert!(text.contains("<code>xld25000</code>"), "{text}");
    assert!(text.contains("<hp>0817777215</hp>"), "{text}");
    let cb = PrepaidCallback::parse(&got[0].body).unwrap();
    assert_eq!(cb.format, Format::Xml);
    assert_eq!(cb.version, ApiVersion::V1);
    assert!(cb.message.verify(IDSL_USER, &Secret::new(IDSL_KEY)));
}

#[tokio::test]
async fn serve_dispatches_by_itself_and_shuts_down_gracefully() {
    let receiver = Receiver::start().await;
    let text = STANDARD
        .replace("{callback}", &receiver.url)
        .replace("callback_delay_ms = 2000", "callback_delay_ms = 0");
    let sandbox = Sandbox::with_clock(config(&text), Clock::manual(START)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sandbox.clone().serve(listener, async {
        let _ = stopped.await;
    }));

    let req = lunas_protocol::iak::prepaid::PrepaidRequest::new(
        PROD_USER,
        &Secret::new(PROD_KEY),
        lunas_protocol::iak::prepaid::PrepaidCommand::TopUp {
            ref_id: "s1".into(),
            customer_id: "0817777215".into(),
            product_code: "xld25000".into(),
        },
    );
    let answer = bounded(
        client()
            .post(format!("{url}/api/top-up"))
            .body(req.encode(Format::Json, ApiVersion::V2))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);

    // No run_due here: the dispatcher sends it.
    let got = receiver.wait_for(1).await;
    let cb = PrepaidCallback::parse(&got[0].body).unwrap().message;
    assert_eq!(cb.ref_id, "s1");

    stop.send(()).unwrap();
    bounded(server).await.unwrap().unwrap();
    assert!(
        bounded(client().get(format!("{url}/sandbox/log")).send())
            .await
            .is_err(),
        "the listener is closed"
    );
    assert_eq!(sandbox.log().callbacks[0].kind, CallbackKind::Final);
}
