//! Behind a reverse proxy: with `server.trusted_proxies`, a callback's source is the address the
//! proxy forwards (`X-Forwarded-For` or `Forwarded`), so `callback_ips` still works; a client
//! that is not a trusted proxy cannot claim an address.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};

async fn gateway() -> TestGateway {
    TestGateway::start_with_env(
        &format!(
            r#"
[[providers]]
id = "fenced"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
callback_ips = ["52.220.38.194"]
"#
        ),
        &[("LUNAS__SERVER__TRUSTED_PROXIES", "127.0.0.1/32")],
    )
    .await
}

async fn send(
    client: &reqwest::Client,
    gw: &TestGateway,
    reference: &str,
    header: Option<(&str, &str)>,
) -> u16 {
    let body = iak_body(
        reference,
        PrepaidStatus::Success,
        Format::Json,
        ApiVersion::V2,
    );
    let mut req = client
        .post(gw.url("/callbacks/fenced"))
        .header("content-type", "application/json")
        .body(body);
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn callback_sources_come_from_trusted_proxies_only() {
    let gw = gateway().await;
    let proxy = reqwest::Client::new();
    // Through the proxy, from the provider's address: accepted.
    assert_eq!(
        send(
            &proxy,
            &gw,
            "via-xff",
            Some(("x-forwarded-for", "52.220.38.194"))
        )
        .await,
        200
    );
    assert_eq!(
        send(
            &proxy,
            &gw,
            "via-forwarded",
            Some(("forwarded", "for=52.220.38.194;proto=https"))
        )
        .await,
        200
    );
    // What a client wrote before the proxy's own hop is not believed.
    assert_eq!(
        send(
            &proxy,
            &gw,
            "spoofed",
            Some(("x-forwarded-for", "52.220.38.194, 203.0.113.9"))
        )
        .await,
        403
    );
    // The proxy itself is not the provider.
    assert_eq!(send(&proxy, &gw, "bare", None).await, 403);
    // A client that is not a trusted proxy cannot claim the provider's address.
    let outsider = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    assert_eq!(
        send(
            &outsider,
            &gw,
            "outsider",
            Some(("x-forwarded-for", "52.220.38.194"))
        )
        .await,
        403
    );
    assert!(gw.transaction("fenced", "via-xff").await.is_some());
    assert!(gw.transaction("fenced", "spoofed").await.is_none());
}
