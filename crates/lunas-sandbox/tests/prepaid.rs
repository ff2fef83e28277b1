//! IAK/IDSL prepaid over real HTTP: every path, both formats, both versions, every refusal,
//! the deposit and the goods. Every answer is parsed with the protocol library.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::{
    BalanceResult, PrepaidCallback, PrepaidCommand, PrepaidRequest, PrepaidStatus, PriceListResult,
};
use lunas_protocol::iak::Verdict;
use lunas_protocol::{ApiVersion, Format, Secret};

fn top_up(ref_id: &str, customer: &str, product: &str) -> PrepaidCommand {
    PrepaidCommand::TopUp {
        ref_id: ref_id.into(),
        customer_id: customer.into(),
        product_code: product.into(),
    }
}

#[tokio::test]
async fn a_top_up_first_answers_process_and_debits_the_deposit() {
    let h = Harness::standard().await;
    let before = h.sandbox.balance("iak").unwrap();

    let r = h.top_up("order001", "0817777215", "xld25000").await;

    assert_eq!(r.status, Some(PrepaidStatus::Process));
    assert_eq!(r.rc, "39");
    assert_eq!(r.message.as_deref(), Some("PROCESS"));
    assert_eq!(r.verdict(), Verdict::Pending);
    assert_eq!(r.price, Some(25_000));
    assert_eq!(r.balance, Some(before - 25_000));
    assert_eq!(r.product_code.as_deref(), Some("xld25000"));
    assert_eq!(r.customer_id.as_deref(), Some("0817777215"));
    assert!(r.tr_id.is_some());
    assert_eq!(h.sandbox.balance("iak"), Some(before - 25_000));
}

#[tokio::test]
async fn every_format_and_version_is_answered_in_kind() {
    let h = Harness::standard().await;
    for (i, (format, version)) in [
        (Format::Json, ApiVersion::V2),
        (Format::Xml, ApiVersion::V2),
        (Format::Json, ApiVersion::V1),
        (Format::Xml, ApiVersion::V1),
    ]
    .into_iter()
    .enumerate()
    {
        let ref_id = format!("fmt-{i}");
        let (answer, parsed) = h
            .prepaid(
                IAK_USER,
                IAK_KEY,
                top_up(&ref_id, "0817777215", "xld25000"),
                format,
                version,
            )
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type.as_deref(), Some(format.content_type()));
        assert_eq!(parsed.format, format);
        assert_eq!(parsed.version, version, "{}", answer.text());
        assert_eq!(parsed.message.rc, "39");

        let (answer, parsed) = h
            .prepaid(
                IAK_USER,
                IAK_KEY,
                PrepaidCommand::CheckStatus {
                    ref_id: ref_id.clone(),
                },
                format,
                version,
            )
            .await;
        assert_eq!(parsed.format, format);
        assert_eq!(parsed.version, version, "{}", answer.text());
        assert_eq!(parsed.message.ref_id.as_deref(), Some(ref_id.as_str()));
    }
    let v1 = h
        .post(
            "/v1/legacy/index",
            "application/json",
            PrepaidRequest::new(
                IAK_USER,
                &Secret::new(IAK_KEY),
                PrepaidCommand::CheckStatus {
                    ref_id: "fmt-2".into(),
                },
            )
            .encode(Format::Json, ApiVersion::V1),
        )
        .await;
    assert!(v1.text().contains(r#""hp":"0817777215""#), "{}", v1.text());
    assert!(v1.text().contains(r#""code":"xld25000""#));
}

#[tokio::test]
async fn the_format_is_sniffed_from_the_body_not_the_content_type() {
    let h = Harness::standard().await;
    let req = PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        top_up("o1", "0817", "xld25000"),
    );
    let answer = h
        .post(
            "/api/top-up",
            "application/json",
            req.encode(Format::Xml, ApiVersion::V2),
        )
        .await;
    assert_eq!(answer.content_type.as_deref(), Some("application/xml"));
    assert!(answer.text().starts_with("<?xml"));
}

#[tokio::test]
async fn a_wrong_sign_or_unknown_username_is_rc_204_in_both_formats() {
    let h = Harness::standard().await;
    for format in [Format::Json, Format::Xml] {
        let (_, wrong_key) = h
            .prepaid(
                IAK_USER,
                "not-the-key",
                top_up("x1", "0817", "xld25000"),
                format,
                ApiVersion::V2,
            )
            .await;
        assert_eq!(wrong_key.message.rc, "204");
        assert_eq!(
            wrong_key.message.message.as_deref(),
            Some("WRONG AUTHENTICATION")
        );
        assert_eq!(wrong_key.message.verdict(), Verdict::Rejected);
        assert_eq!(wrong_key.format, format);

        let (_, stranger) = h
            .prepaid(
                "0800000000",
                IAK_KEY,
                PrepaidCommand::Balance { currency: None },
                format,
                ApiVersion::V2,
            )
            .await;
        assert_eq!(stranger.message.rc, "204");
    }
    // Another account's key does not sign for this username.
    let (_, crossed) = h
        .prepaid(
            IAK_USER,
            PROD_KEY,
            PrepaidCommand::CheckStatus { ref_id: "x".into() },
            Format::Json,
            ApiVersion::V2,
        )
        .await;
    assert_eq!(crossed.message.rc, "204");
    // Nothing was created or debited.
    assert_eq!(h.check_status("x1").await.rc, "06");
}

#[tokio::test]
async fn malformed_bodies_are_rc_107_and_change_nothing() {
    let h = Harness::standard().await;
    let before = h.sandbox.balance("iak");
    for (body, xml) in [
        ("{\"username\":", false),
        ("ref_id=1&sign=2", false),
        ("", false),
        ("<mp><username>081234567890</mp>", true),
        (
            "<?xml version=\"1.0\"?><!DOCTYPE mp [<!ENTITY x \"y\">]><mp>&x;</mp>",
            true,
        ),
        ("{\"username\":\"081234567890\",\"ref_id\":\"a\"}", false),
        ("[1,2,3]", false),
    ] {
        let answer = h.post("/api/top-up", "application/json", body).await;
        assert_eq!(answer.status, 400, "{body}");
        let parsed = lunas_protocol::iak::prepaid::PrepaidResult::parse(&answer.body)
            .unwrap_or_else(|e| panic!("{body}: {e}: {}", answer.text()));
        assert_eq!(parsed.message.rc, "107", "{body}");
        assert_eq!(parsed.format == Format::Xml, xml, "{body}");
    }
    assert_eq!(h.sandbox.balance("iak"), before);
}

#[tokio::test]
async fn an_unknown_v1_command_is_rc_205() {
    let h = Harness::standard().await;
    let answer = h
        .post(
            "/v1/legacy/index",
            "application/json",
            r#"{"commands":"launch","username":"081234567890","sign":"x"}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    let parsed = lunas_protocol::iak::prepaid::PrepaidResult::parse(&answer.body).unwrap();
    assert_eq!(parsed.message.rc, "205");
}

#[tokio::test]
async fn a_resent_top_up_answers_as_check_status_without_debiting_again() {
    let h = Harness::standard().await;
    let first = h.top_up("order001", "0817777215", "xld25000").await;
    let again = h.top_up("order001", "0899999999", "xld50000").await;
    assert_eq!(again.tr_id, first.tr_id);
    assert_eq!(again.product_code.as_deref(), Some("xld25000"));
    assert_eq!(again.customer_id.as_deref(), Some("0817777215"));
    assert_eq!(again.balance, first.balance);

    h.report("order001", "success").await;
    let after = h.top_up("order001", "0817777215", "xld25000").await;
    assert_eq!(after.status, Some(PrepaidStatus::Success));
    assert_eq!(after.rc, "00");
    assert!(after.sn.is_some());
}

#[tokio::test]
async fn unknown_refs_are_rc_06() {
    let h = Harness::standard().await;
    let r = h.check_status("never-sent").await;
    assert_eq!(r.rc, "06");
    assert_eq!(r.verdict(), Verdict::NotFound);
}

#[tokio::test]
async fn unknown_and_inactive_products_fail_at_once_and_are_remembered() {
    let h = Harness::standard().await;
    let before = h.sandbox.balance("iak").unwrap();
    let unknown = h.top_up("u1", "0817777215", "nosuchproduct").await;
    assert_eq!(unknown.rc, "20");
    assert_eq!(unknown.status, Some(PrepaidStatus::Failed));
    assert_eq!(unknown.verdict(), Verdict::Failed);
    let inactive = h.top_up("u2", "0817777215", "xld10000").await;
    assert_eq!(inactive.rc, "106");
    assert_eq!(h.check_status("u1").await.rc, "20");
    assert_eq!(h.sandbox.balance("iak"), Some(before));
    // No callback is ever sent for them, and no report can change them.
    assert_eq!(h.report("u1", "success").await.status, 409);
    assert_eq!(h.run_due().await, 0);
    assert!(h.receiver.received().is_empty());
}

#[tokio::test]
async fn a_short_deposit_is_rc_17_until_topped_up() {
    let h = Harness::start(
        r#"
[sandbox]
[[sandbox.accounts]]
kind = "iak"
username = "081234567890"
api_key = "TESTKEY-not-real-0001"
callback_url = "{callback}/iak"
deposit = 30000
"#,
    )
    .await;
    let first = h.top_up("d1", "0817777215", "xld25000").await;
    assert_eq!(first.rc, "39");
    assert_eq!(first.balance, Some(5_000));
    let short = h.top_up("d2", "0817777215", "xld25000").await;
    assert_eq!(short.rc, "17");
    assert_eq!(short.status, Some(PrepaidStatus::Failed));
    assert_eq!(short.balance, Some(5_000));
    assert_eq!(short.message.as_deref(), Some("INSUFFICIENT DEPOSIT"));

    let topped = h
        .post(
            "/sandbox/deposit",
            "application/json",
            r#"{"account":"iak","amount":100000}"#,
        )
        .await;
    assert_eq!(topped.status, 200);
    assert_eq!(topped.json()["balance"], 105_000);
    assert_eq!(h.top_up("d3", "0817777215", "xld25000").await.rc, "39");
}

#[tokio::test]
async fn a_failed_top_up_gives_the_deposit_back_and_the_callback_shows_it() {
    let h = Harness::standard().await;
    let start = h.sandbox.balance("iak").unwrap();
    let r = h.top_up("f1", "081200001014", "xld50000").await;
    assert_eq!(r.balance, Some(start - 50_000));

    let report = h.report("f1", "failed").await;
    assert_eq!(report.status, 200, "{}", report.text());

    let got = h.receiver.at("/iak");
    assert_eq!(got.len(), 1);
    let cb = PrepaidCallback::parse(&got[0].body).unwrap().message;
    assert_eq!(cb.status, PrepaidStatus::Failed);
    assert_eq!(cb.rc, "14", "the scenario's rc for a number ending in 1014");
    assert_eq!(cb.balance, start);
    assert_eq!(cb.sn, None);
    assert_eq!(h.sandbox.balance("iak"), Some(start));
    assert_eq!(h.check_status("f1").await.balance, Some(start));
}

#[tokio::test]
async fn balance_answers_in_v1_and_v2_shapes() {
    let h = Harness::standard().await;
    let (answer, v2) = h
        .prepaid(
            IAK_USER,
            IAK_KEY,
            PrepaidCommand::Balance { currency: None },
            Format::Json,
            ApiVersion::V2,
        )
        .await;
    let b = BalanceResult::parse(&answer.body).unwrap().message;
    assert_eq!(v2.message.rc, "00");
    assert_eq!(b.balance, Some(1_000_000_000));
    assert_eq!(b.rc.as_deref(), Some("00"));
    assert_eq!(b.currency, None);

    let req = PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        PrepaidCommand::Balance { currency: None },
    );
    for format in [Format::Json, Format::Xml] {
        let answer = h
            .post(
                &req.path(ApiVersion::V1),
                format.content_type(),
                req.encode(format, ApiVersion::V1),
            )
            .await;
        let b = BalanceResult::parse(&answer.body).unwrap().message;
        assert_eq!(b.balance, Some(1_000_000_000));
        assert_eq!(b.rc, None, "v1 answers carry only the balance");
    }

    // IDSL's v2 balance carries a currency.
    let req = PrepaidRequest::new(
        IDSL_USER,
        &Secret::new(IDSL_KEY),
        PrepaidCommand::Balance {
            currency: Some("IDR".into()),
        },
    );
    let answer = h
        .post(
            "/api/check-balance",
            "application/xml",
            req.encode(Format::Xml, ApiVersion::V2),
        )
        .await;
    let b = BalanceResult::parse(&answer.body).unwrap().message;
    assert_eq!(b.currency.as_deref(), Some("IDR"));
}

#[tokio::test]
async fn price_lists_filter_by_type_operator_and_status() {
    let h = Harness::standard().await;
    let list =
        |t: Option<&str>, op: Option<&str>, status: Option<&str>| PrepaidCommand::PriceList {
            product_type: t.map(str::to_owned),
            operator: op.map(str::to_owned),
            status: status.map(str::to_owned),
        };
    for (format, version) in [
        (Format::Json, ApiVersion::V2),
        (Format::Xml, ApiVersion::V2),
        (Format::Json, ApiVersion::V1),
        (Format::Xml, ApiVersion::V1),
    ] {
        let req = PrepaidRequest::new(IAK_USER, &Secret::new(IAK_KEY), list(None, None, None));
        let answer = h
            .post(
                &req.path(version),
                format.content_type(),
                req.encode(format, version),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let all = PriceListResult::parse(&answer.body).unwrap();
        assert_eq!(all.version, version);
        let codes: Vec<_> = all
            .message
            .pricelist
            .iter()
            .map(|p| p.product_code.as_str())
            .collect();
        for code in [
            "xld25000",
            "hsteam12000",
            "esimtsel10gb",
            "hpln20000",
            "tseldata25000",
        ] {
            assert!(codes.contains(&code), "{code} in {codes:?}");
        }
        assert!(all.message.pricelist.iter().all(|p| p.product_price > 0));
    }

    let req = PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        list(Some("pulsa"), Some("xl"), Some("active")),
    );
    assert_eq!(req.path(ApiVersion::V2), "/api/pricelist/pulsa/xl");
    let answer = h
        .post(
            &req.path(ApiVersion::V2),
            "application/json",
            req.encode(Format::Json, ApiVersion::V2),
        )
        .await;
    let xl = PriceListResult::parse(&answer.body).unwrap().message;
    let codes: Vec<_> = xl
        .pricelist
        .iter()
        .map(|p| p.product_code.as_str())
        .collect();
    assert_eq!(codes, ["xld25000", "xld50000"]);
    assert_eq!(xl.rc.as_deref(), Some("00"));

    let req = PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        list(Some("game"), None, None),
    );
    let answer = h
        .post(
            &req.path(ApiVersion::V1),
            "application/json",
            req.encode(Format::Json, ApiVersion::V1),
        )
        .await;
    let games = PriceListResult::parse(&answer.body).unwrap().message;
    assert!(games
        .pricelist
        .iter()
        .all(|p| p.product_type.as_deref() == Some("game")));
    assert_eq!(games.pricelist.len(), 2);

    // The price list is signed with "pl": a top-up sign does not do.
    let bad = h
        .post(
            "/api/pricelist",
            "application/json",
            format!(
                r#"{{"username":"{IAK_USER}","sign":"{}"}}"#,
                lunas_protocol::sign::iak_sign(
                    IAK_USER,
                    &Secret::new(IAK_KEY),
                    lunas_protocol::sign::IakSignInput::Balance
                )
            ),
        )
        .await;
    assert!(bad.text().contains("\"204\""), "{}", bad.text());
    // Too many path segments is not a page.
    let deep = h
        .post("/api/pricelist/a/b/c", "application/json", "{}")
        .await;
    assert_eq!(deep.status, 404);
}

#[tokio::test]
async fn goods_follow_the_documented_formats() {
    let h = Harness::standard().await;
    for (ref_id, product) in [
        ("g-game", "hsteam12000"),
        ("g-esim", "esimtsel10gb"),
        ("g-pln", "hpln20000"),
        ("g-pulsa", "xld25000"),
        ("g-voucher", "alfamart100"),
        ("g-data", "tseldata25000"),
    ] {
        h.top_up(ref_id, "0817777215", product).await;
        assert_eq!(h.report(ref_id, "success").await.status, 200);
    }
    let game = h.check_status("g-game").await;
    let sn = game.sn.unwrap();
    assert_eq!(sn.len(), 19, "{sn}");
    assert_eq!(sn.split('-').count(), 4);
    assert!(game.pin.unwrap().chars().all(|c| c.is_ascii_digit()));

    let esim = h.check_status("g-esim").await;
    assert!(esim
        .activation_code
        .unwrap()
        .starts_with("LPA:1$v1-aktivasi-esim.com$"));
    assert_eq!(esim.pin, None);

    // 0123-4567-8901-2345-6789/NAME/R1 /000001300/13.8
    let pln = h.check_status("g-pln").await.sn.unwrap();
    let parts: Vec<_> = pln.split('/').collect();
    assert_eq!(parts.len(), 5, "{pln}");
    assert_eq!(parts[0].len(), 24);
    assert_eq!(parts[0].split('-').count(), 5);
    assert!(parts[0]
        .split('-')
        .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_digit())));
    assert!(!parts[1].is_empty());
    assert_eq!(parts[2], "R1 ");
    assert_eq!(parts[3], "000001300");
    assert_eq!(parts[4], "13.8");

    let pulsa = h.check_status("g-pulsa").await;
    assert!(pulsa.sn.unwrap().chars().all(|c| c.is_ascii_digit()));
    assert_eq!(pulsa.pin, None);

    let voucher = h.check_status("g-voucher").await.sn.unwrap();
    assert!(voucher.contains(" / 2025-05-01"), "{voucher}");

    // The callbacks carry the same goods.
    let cb = PrepaidCallback::parse(&h.receiver.at("/iak")[0].body)
        .unwrap()
        .message;
    assert!(cb.pin.is_some());
    assert!(cb.verify(IAK_USER, &Secret::new(IAK_KEY)));
}

#[tokio::test]
async fn idsl_accounts_are_served_on_the_same_paths() {
    let h = Harness::standard().await;
    let r = h
        .top_up_as(IDSL_USER, IDSL_KEY, "idsl-1", "0817777215", "hpln50000")
        .await;
    assert_eq!(r.rc, "39");
    // Refs are per account: the IAK account has no idsl-1.
    assert_eq!(h.check_status("idsl-1").await.rc, "06");
    assert_eq!(
        h.check_status_as(IDSL_USER, IDSL_KEY, "idsl-1").await.rc,
        "39"
    );
}

#[tokio::test]
async fn a_one_item_xml_price_list_still_reads_as_a_list() {
    let h = Harness::standard().await;
    for version in [ApiVersion::V2, ApiVersion::V1] {
        let req = PrepaidRequest::new(
            IAK_USER,
            &Secret::new(IAK_KEY),
            PrepaidCommand::PriceList {
                product_type: Some("esim".into()),
                operator: None,
                status: None,
            },
        );
        let answer = h
            .post(
                &req.path(version),
                "application/xml",
                req.encode(Format::Xml, version),
            )
            .await;
        let list = PriceListResult::parse(&answer.body)
            .unwrap_or_else(|e| panic!("{e}: {}", answer.text()))
            .message;
        assert_eq!(list.pricelist.len(), 1, "{}", answer.text());
        assert_eq!(list.pricelist[0].product_code, "esimtsel10gb");
    }
}
