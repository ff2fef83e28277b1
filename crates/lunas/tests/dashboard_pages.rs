//! The dashboard's pages over plain HTTP (the browser test drives the same pages in
//! chromium): customer goods never appear in clear in a raw body, on a transaction's page or
//! on the review queue.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};

/// Logs in with the admin token; the session cookie.
async fn login(gw: &TestGateway) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(gw.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

async fn page(gw: &TestGateway, cookie: &str, path: &str) -> String {
    let res = gw
        .client
        .get(gw.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn raw_bodies_show_no_customer_goods_in_json_or_xml() {
    let gw = TestGateway::start().await;
    // A voucher PIN in JSON, then a contradicting callback in XML with another token: flagged.
    let mut first = prepaid_callback("goods-1", PrepaidStatus::Success, IAK_USER, IAK_KEY);
    first.pin = Some("PIN-7777-SECRET".into());
    first.sn = Some("SN-1111-SECRET".into());
    let (code, _) = gw
        .callback("iak", first.encode(Format::Json, ApiVersion::V2), &[])
        .await;
    assert_eq!(code, 200);
    let mut second = prepaid_callback("goods-1", PrepaidStatus::Success, IAK_USER, IAK_KEY);
    second.sn = Some("SN-2222-SECRET".into());
    let (code, _) = gw
        .callback("iak", second.encode(Format::Xml, ApiVersion::V1), &[])
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        gw.record("iak", "goods-1").await.unwrap()["needs_review"],
        true
    );

    let cookie = login(&gw).await;
    // The review queue shows the raw bodies side by side: no goods in clear.
    let review = page(&gw, &cookie, "/review").await;
    for secret in ["SN-1111-SECRET", "SN-2222-SECRET", "PIN-7777-SECRET"] {
        assert!(!review.contains(secret), "/review shows {secret} in clear");
    }
    assert!(review.contains("••••"));
    // The transaction's page: a good appears only in its own field, hidden until revealed,
    // never in a raw body.
    let html = page(&gw, &cookie, "/transactions/iak/goods-1").await;
    assert!(
        !html.contains("SN-2222-SECRET"),
        "the contradicting token is masked"
    );
    for kept in ["SN-1111-SECRET", "PIN-7777-SECRET"] {
        assert_eq!(
            html.matches(kept).count(),
            1,
            "{kept} only in its reveal field"
        );
    }
    assert!(html.contains("reveal"));
}

#[tokio::test]
async fn the_deliveries_page_shows_a_paused_endpoint_and_held_counts() {
    let gw = TestGateway::start_with(
        "[[endpoints]]\nid = \"shop\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nenabled = false\n",
    )
    .await;
    let cookie = login(&gw).await;
    let html = page(&gw, &cookie, "/deliveries").await;
    assert!(html.contains("Held"), "{html}");
    assert!(html.contains("(paused: enabled = false)"), "{html}");
}
