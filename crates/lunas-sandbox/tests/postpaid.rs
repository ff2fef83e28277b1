//! IAK postpaid over real HTTP: the documented test-number scheme, inquiry → payment →
//! check-status, the response codes, the deposit, XML, the price list.

mod common;

use common::*;
use lunas_protocol::iak::postpaid::{
    PostpaidCommand, PostpaidRequest, PostpaidResult, PostpaidStatus,
};
use lunas_protocol::iak::Verdict;
use lunas_protocol::{xml, Format, Secret};

fn inquiry(code: &str, hp: &str, ref_id: &str) -> PostpaidCommand {
    PostpaidCommand::Inquiry {
        code: code.into(),
        hp: hp.into(),
        ref_id: ref_id.into(),
        month: None,
        year: None,
        nomor_identitas: None,
    }
}

fn check(ref_id: &str) -> PostpaidCommand {
    PostpaidCommand::CheckStatus {
        ref_id: ref_id.into(),
    }
}

#[tokio::test]
async fn inquiry_payment_and_check_status_succeed_for_0000() {
    let h = Harness::standard().await;
    let start = h.sandbox.balance("iak").unwrap();
    let inq = h
        .postpaid(
            inquiry("TELKOMPSTN", "6391600000", "091283746520"),
            Format::Json,
        )
        .await;
    assert_eq!(inq.response_code, "00");
    assert_eq!(inq.message.as_deref(), Some("INQUIRY SUCCESS"));
    assert_eq!(inq.nominal, Some(49_870));
    assert_eq!(inq.admin, Some(2_500));
    assert_eq!(inq.price, Some(52_370));
    assert_eq!(inq.selling_price, Some(51_170));
    assert_eq!(inq.status, None);
    let desc = inq.desc.clone().unwrap();
    assert_eq!(desc["jumlah_tagihan"], 1);
    assert_eq!(desc["tagihan"]["detail"][0]["total"], 52_370);
    assert_eq!(desc["tagihan"]["detail"][0]["periode"], "APR 2024");
    assert_eq!(inq.period.as_deref(), Some("202404"));

    // Before the payment: status 0, rc 42.
    let before = h.postpaid(check("091283746520"), Format::Json).await;
    assert_eq!(before.status, Some(PostpaidStatus::NotReceived));
    assert_eq!(before.response_code, "42");
    assert_eq!(before.verdict(), Verdict::NotReceived);
    assert_eq!(before.balance, Some(start));

    let tr_id = inq.tr_id.unwrap();
    let paid = h
        .postpaid(PostpaidCommand::Payment { tr_id }, Format::Json)
        .await;
    assert_eq!(paid.response_code, "00");
    assert_eq!(paid.message.as_deref(), Some("PAYMENT SUCCESS"));
    assert_eq!(paid.balance, Some(start - 51_170));
    assert_eq!(paid.datetime.as_deref(), Some("20240501100000"));
    assert!(paid.noref.is_some());
    assert_eq!(h.sandbox.balance("iak"), Some(start - 51_170));

    let after = h.postpaid(check("091283746520"), Format::Json).await;
    assert_eq!(after.status, Some(PostpaidStatus::Success));
    assert_eq!(after.verdict(), Verdict::Succeeded);
    assert_eq!(after.tr_id, Some(tr_id));

    // Paying twice is refused: the invoice has been paid.
    let twice = h
        .postpaid(PostpaidCommand::Payment { tr_id }, Format::Json)
        .await;
    assert_eq!(twice.response_code, "01");
    assert_eq!(h.sandbox.balance("iak"), Some(start - 51_170));
}

#[tokio::test]
async fn answers_are_wrapped_with_meta_as_documented() {
    let h = Harness::standard().await;
    let req = PostpaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        inquiry("PLNPOSTPAID", "530000000000", "pln-1"),
    );
    let answer = h
        .post(&req.path(), "application/json", req.encode(Format::Json))
        .await;
    let value = answer.json();
    assert_eq!(value["meta"], serde_json::json!([]));
    assert_eq!(value["data"]["desc"]["tarif"], "R1");
    assert_eq!(value["data"]["desc"]["daya"], 1300);
    assert_eq!(value["data"]["desc"]["lembar_tagihan"], "1");
    assert_eq!(value["data"]["desc"]["tagihan"]["detail"][0]["denda"], "0");
}

#[tokio::test]
async fn several_bills_for_0999() {
    let h = Harness::standard().await;
    let telkom = h
        .postpaid(inquiry("TELKOMPSTN", "6391600999", "t3"), Format::Json)
        .await;
    assert_eq!(telkom.desc.as_ref().unwrap()["jumlah_tagihan"], 3);
    assert_eq!(telkom.nominal, Some(3 * 49_870));
    assert_eq!(telkom.period.as_deref(), Some("202402,202404"));
    let pln = h
        .postpaid(inquiry("PLNPOSTPAID", "530000000999", "p8"), Format::Json)
        .await;
    assert_eq!(pln.desc.as_ref().unwrap()["lembar_tagihan"], "8");
    assert_eq!(pln.price, Some(8 * 302_500));
}

#[tokio::test]
async fn inquiries_fail_with_the_rc_in_0_rc() {
    let h = Harness::standard().await;
    for (hp, rc) in [
        ("530000000014", "14"),
        ("530000000001", "01"),
        ("530000000103", "103"),
    ] {
        let r = h
            .postpaid(
                inquiry("PLNPOSTPAID", hp, &format!("inq-{hp}")),
                Format::Json,
            )
            .await;
        assert_eq!(r.response_code, rc, "{hp}");
        assert_eq!(r.verdict(), Verdict::Failed, "{hp}");
    }
    // A failed inquiry leaves nothing to check.
    let cs = h.postpaid(check("inq-530000000014"), Format::Json).await;
    assert_eq!(cs.response_code, "06");
}

#[tokio::test]
async fn payment_results_follow_1_rc() {
    let h = Harness::standard().await;
    let start = h.sandbox.balance("iak").unwrap();
    let pay = |hp: &'static str, r: &'static str| {
        let h = &h;
        async move {
            let inq = h.postpaid(inquiry("TELKOMPSTN", hp, r), Format::Json).await;
            assert_eq!(inq.response_code, "00", "{hp}");
            h.postpaid(
                PostpaidCommand::Payment {
                    tr_id: inq.tr_id.unwrap(),
                },
                Format::Json,
            )
            .await
        }
    };
    let failed = pay("6391601037", "r37").await;
    assert_eq!(failed.response_code, "37");
    assert_eq!(failed.verdict(), Verdict::Failed);
    let biller = pay("6391601105", "r105").await;
    assert_eq!(biller.response_code, "105");
    assert_eq!(
        h.sandbox.balance("iak"),
        Some(start),
        "failed payments are refunded"
    );

    let cs = h.postpaid(check("r37"), Format::Json).await;
    assert_eq!(cs.status, Some(PostpaidStatus::Failed));
    assert_eq!(cs.message.as_deref(), Some("PEMBAYARAN GAGAL"));
    assert_eq!(cs.noref.as_deref(), Some(""));

    let pending = pay("6391601039", "r39").await;
    assert_eq!(pending.response_code, "39");
    assert_eq!(pending.verdict(), Verdict::Pending);
    let cs = h.postpaid(check("r39"), Format::Json).await;
    assert_eq!(cs.status, Some(PostpaidStatus::Processing));
    assert_eq!(cs.response_code, "39");
    assert_eq!(cs.datetime, None);
    assert_eq!(
        cs.message.as_deref(),
        Some("PENDING / TRANSAKSI SEDANG DIPROSES")
    );
}

#[tokio::test]
async fn a_pending_payment_is_settled_by_report() {
    let h = Harness::standard().await;
    let start = h.sandbox.balance("iak").unwrap();
    for (r, outcome) in [("s-ok", "success"), ("s-bad", "failed")] {
        let inq = h
            .postpaid(inquiry("PLNPOSTPAID", "530000001039", r), Format::Json)
            .await;
        h.postpaid(
            PostpaidCommand::Payment {
                tr_id: inq.tr_id.unwrap(),
            },
            Format::Json,
        )
        .await;
        let report = h.report(r, outcome).await;
        assert_eq!(report.status, 200, "{}", report.text());
        assert_eq!(report.json()["kind"], "postpaid");
        assert_eq!(report.json()["callback"], serde_json::Value::Null);
        assert_eq!(h.report(r, outcome).await.status, 409);
    }
    let ok = h.postpaid(check("s-ok"), Format::Json).await;
    assert_eq!(ok.verdict(), Verdict::Succeeded);
    let bad = h.postpaid(check("s-bad"), Format::Json).await;
    assert_eq!(
        (bad.status, bad.response_code.as_str()),
        (Some(PostpaidStatus::Failed), "37")
    );
    assert_eq!(h.sandbox.balance("iak"), Some(start - 301_900));
    assert!(
        h.receiver.received().is_empty(),
        "postpaid has no callbacks"
    );

    // An inquiry never paid has nothing to settle.
    h.postpaid(
        inquiry("PLNPOSTPAID", "530000000000", "unpaid"),
        Format::Json,
    )
    .await;
    assert_eq!(h.report("unpaid", "success").await.status, 409);
}

#[tokio::test]
async fn refusals_use_the_postpaid_codes() {
    let h = Harness::standard().await;
    let bad_sign = PostpaidRequest::new(IAK_USER, &Secret::new("wrong"), check("x"));
    let answer = h
        .post(
            &bad_sign.path(),
            "application/json",
            bad_sign.encode(Format::Json),
        )
        .await;
    let r = PostpaidResult::parse(&answer.body).unwrap().message;
    assert_eq!(r.response_code, "100");
    assert_eq!(r.verdict(), Verdict::Rejected);

    let unknown_product = h
        .postpaid(inquiry("NOSUCH", "530000000000", "np"), Format::Json)
        .await;
    assert_eq!(unknown_product.response_code, "20");

    let unknown_tr = h
        .postpaid(PostpaidCommand::Payment { tr_id: 42 }, Format::Json)
        .await;
    assert_eq!(unknown_tr.response_code, "06");
    assert_eq!(
        h.postpaid(check("nothing"), Format::Json)
            .await
            .response_code,
        "06"
    );

    let malformed = h
        .post("/api/v1/bill/check", "application/json", "{\"commands\":")
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(
        PostpaidResult::parse(&malformed.body)
            .unwrap()
            .message
            .response_code,
        "107"
    );
    let command = h
        .post(
            "/api/v1/bill/check",
            "application/json",
            r#"{"commands":"pay-everything","username":"081234567890","sign":"x"}"#,
        )
        .await;
    assert_eq!(
        PostpaidResult::parse(&command.body)
            .unwrap()
            .message
            .response_code,
        "101"
    );

    // A ref used for another bill is a duplicate; the same inquiry again is answered again.
    let first = h
        .postpaid(inquiry("TELKOMPSTN", "6391600000", "dup"), Format::Json)
        .await;
    let same = h
        .postpaid(inquiry("TELKOMPSTN", "6391600000", "dup"), Format::Json)
        .await;
    assert_eq!(same.tr_id, first.tr_id);
    let other = h
        .postpaid(inquiry("PLNPOSTPAID", "530000000000", "dup"), Format::Json)
        .await;
    assert_eq!(other.response_code, "11");
}

#[tokio::test]
async fn a_short_deposit_is_17_and_the_bill_stays_payable() {
    let h = Harness::start(
        r#"
[sandbox]
[[sandbox.accounts]]
kind = "iak"
username = "081234567890"
api_key = "TESTKEY-not-real-0001"
callback_url = "{callback}/iak"
deposit = 1000
"#,
    )
    .await;
    let inq = h
        .postpaid(inquiry("TELKOMPSTN", "6391600000", "short"), Format::Json)
        .await;
    let tr_id = inq.tr_id.unwrap();
    let short = h
        .postpaid(PostpaidCommand::Payment { tr_id }, Format::Json)
        .await;
    assert_eq!(short.response_code, "17");
    assert_eq!(
        h.postpaid(check("short"), Format::Json).await.response_code,
        "42"
    );
    h.post(
        "/sandbox/deposit",
        "application/json",
        r#"{"account":"iak","amount":100000}"#,
    )
    .await;
    let paid = h
        .postpaid(PostpaidCommand::Payment { tr_id }, Format::Json)
        .await;
    assert_eq!(paid.response_code, "00");
    assert_eq!(paid.balance, Some(101_000 - 51_170));
}

#[tokio::test]
async fn xml_requests_get_xml_answers() {
    let h = Harness::standard().await;
    let inq = h
        .postpaid(inquiry("TELKOMPSTN", "6391600999", "x1"), Format::Xml)
        .await;
    assert_eq!(inq.response_code, "00");
    let req = PostpaidRequest::new(IAK_USER, &Secret::new(IAK_KEY), check("x1"));
    let answer = h
        .post(&req.path(), "application/xml", req.encode(Format::Xml))
        .await;
    assert_eq!(answer.content_type.as_deref(), Some("application/xml"));
    let parsed = PostpaidResult::parse(&answer.body).unwrap();
    assert_eq!(parsed.format, Format::Xml);
    assert_eq!(parsed.message.status, Some(PostpaidStatus::NotReceived));
    let detail = &parsed.message.desc.unwrap()["tagihan"]["detail"];
    assert_eq!(detail.as_array().map(Vec::len), Some(3), "{detail}");
}

#[tokio::test]
async fn a_biller_without_detail_answers_an_empty_desc() {
    let h = Harness::standard().await;
    let r = h
        .postpaid(inquiry("HPTHREE", "08991230000", "three"), Format::Json)
        .await;
    assert_eq!(r.desc, Some(serde_json::Value::String(String::new())));
}

#[tokio::test]
async fn the_price_list_is_listed_by_type() {
    let h = Harness::standard().await;
    let list = |t: Option<&str>| {
        PostpaidRequest::new(
            IAK_USER,
            &Secret::new(IAK_KEY),
            PostpaidCommand::PriceList {
                product_type: t.map(str::to_owned),
                status: None,
                province: None,
            },
        )
    };
    let all = list(None);
    let answer = h
        .post(&all.path(), "application/json", all.encode(Format::Json))
        .await;
    let v = answer.json();
    assert_eq!(v["meta"], serde_json::json!([]));
    let codes: Vec<_> = v["data"]["pasca"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["TELKOMPSTN", "PLNPOSTPAID", "BPJS", "HPTHREE"]);
    assert_eq!(v["data"]["pasca"][0]["status"], 1);

    let pln = list(Some("pln"));
    assert_eq!(pln.path(), "/api/v1/bill/check/pln");
    let answer = h
        .post(&pln.path(), "application/xml", pln.encode(Format::Xml))
        .await;
    let (root, value) = xml::parse(&answer.body).unwrap();
    assert_eq!(root, "mp");
    assert_eq!(value["data"]["pasca"]["code"], "PLNPOSTPAID");
}

/// Seed 003 (IAK's postpaid check-status document): its example numbers behave as its examples,
/// and the status-0 answer carries `datetime` like the others.
#[tokio::test]
async fn the_check_status_documents_numbers_behave_as_its_examples() {
    let h = Harness::standard().await;
    let inq = h
        .postpaid(
            inquiry("TELKOMPSTN", "6391601202", "seed003-a"),
            Format::Json,
        )
        .await;
    assert_eq!(inq.desc.as_ref().unwrap()["jumlah_tagihan"], 3);
    assert_eq!(
        inq.desc.as_ref().unwrap()["tagihan"]["detail"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Each answer has the fields of the document's example of its status, in its order.
    let same_fields = |answer: Answer, example: &str| {
        let got: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        let shown: serde_json::Value =
            serde_json::from_str(&protocol_fixture(&format!("postpaid/{example}.json"))).unwrap();
        assert_eq!(
            key_paths(&got),
            key_paths(&shown),
            "{example}: {}",
            answer.text()
        );
    };
    same_fields(
        h.postpaid_raw(check("seed003-a"), Format::Json).await,
        "checkstatus_not_received",
    );
    let before = h.postpaid(check("seed003-a"), Format::Json).await;
    assert_eq!(
        (before.status, before.response_code.as_str()),
        (Some(PostpaidStatus::NotReceived), "42")
    );
    let when = before.datetime.clone().expect("status 0 carries datetime");
    assert_eq!(when.len(), 14, "YmdHis: {when}");
    assert!(when.bytes().all(|b| b.is_ascii_digit()), "{when}");
    h.postpaid(
        PostpaidCommand::Payment {
            tr_id: inq.tr_id.unwrap(),
        },
        Format::Json,
    )
    .await;
    same_fields(
        h.postpaid_raw(check("seed003-a"), Format::Json).await,
        "checkstatus_success",
    );
    let paid = h.postpaid(check("seed003-a"), Format::Json).await;
    assert_eq!(
        (paid.status, paid.response_code.as_str()),
        (Some(PostpaidStatus::Success), "00")
    );

    let inq = h
        .postpaid(
            inquiry("TELKOMPSTN", "6391601207", "seed003-b"),
            Format::Json,
        )
        .await;
    let paying = h
        .postpaid(
            PostpaidCommand::Payment {
                tr_id: inq.tr_id.unwrap(),
            },
            Format::Json,
        )
        .await;
    assert_eq!(paying.response_code, "39");
    h.advance(std::time::Duration::from_secs(24 * 3600));
    h.run_due().await;
    same_fields(
        h.postpaid_raw(check("seed003-b"), Format::Json).await,
        "checkstatus_processing",
    );
    let still = h.postpaid(check("seed003-b"), Format::Json).await;
    assert_eq!(
        (still.status, still.response_code.as_str()),
        (Some(PostpaidStatus::Processing), "39")
    );
}
