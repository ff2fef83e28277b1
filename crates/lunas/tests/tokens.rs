//! Scoped tokens: a merchant's application holds a `read` + `orders` token, never the admin
//! one; outside its scopes a request is `403 forbidden_scope`; every refusal is counted.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const SHOP: &str = "shop-token-0123456789abcdef";
const READER: &str = "reader-token-0123456789abcdef";

async fn gateway() -> TestGateway {
    TestGateway::start_http_only(&format!(
        r#"
[[server.tokens]]
name = "shop"
token = "{SHOP}"
scopes = ["read", "orders"]
[[server.tokens]]
name = "reporting"
token = "{READER}"
scopes = ["read"]
[[providers]]
id = "down"
kind = "iak"
username = "u"
api_key = "k"
prepaid_url = "http://127.0.0.1:9"
"#
    ))
    .await
}

async fn call(gw: &TestGateway, method: Method, path: &str, token: &str) -> (u16, String) {
    let mut req = gw
        .client
        .request(method.clone(), gw.url(path))
        .bearer_auth(token);
    if method == Method::POST {
        req = req.json(
            &json!({"provider_id": "down", "ref": "t-1", "kind": "prepaid",
                               "product_code": "xld25000", "customer_id": "081234560000"}),
        );
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn each_token_may_do_what_its_scopes_allow_and_no_more() {
    let gw = gateway().await;
    // The shop places an order and reads it.
    let (code, body) = call(&gw, Method::POST, "/api/v1/orders", SHOP).await;
    assert_eq!(code, 201, "{body}");
    let (code, _) = call(&gw, Method::GET, "/api/v1/transactions/down/t-1", SHOP).await;
    assert_eq!(code, 200);
    // It may not check, resolve or redeliver.
    let (code, body) = call(
        &gw,
        Method::POST,
        "/api/v1/transactions/down/t-1/check",
        SHOP,
    )
    .await;
    let message = assert_error((code, &body), 403, "forbidden_scope");
    assert!(
        message.contains("\"shop\"") && message.contains("admin"),
        "{message}"
    );
    // The reporting token reads, and places nothing.
    let (code, _) = call(&gw, Method::GET, "/api/v1/transactions", READER).await;
    assert_eq!(code, 200);
    let (code, body) = call(&gw, Method::POST, "/api/v1/orders", READER).await;
    assert_error((code, &body), 403, "forbidden_scope");
    // The admin token may do everything; a wrong one nothing.
    let (code, _) = call(
        &gw,
        Method::POST,
        "/api/v1/transactions/down/t-1/check",
        TOKEN,
    )
    .await;
    assert_ne!(code, 403);
    let (code, body) = call(
        &gw,
        Method::GET,
        "/api/v1/transactions",
        "not-a-token-0123456789",
    )
    .await;
    assert_error((code, &body), 401, "unauthorized");
    assert!(!body.contains("not-a-token"), "the token is never echoed");
    let metrics = gw
        .client
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"lunas_auth_failures_total{type="forbidden_scope"} 2"#)
            && metrics.contains(r#"lunas_auth_failures_total{type="wrong"} 1"#),
        "{metrics}"
    );
}

#[test]
fn token_settings_are_checked() {
    for (tokens, wanted) in [
        ("[[server.tokens]]\nname = \"a\"\ntoken = \"short\"\nscopes = [\"read\"]\n", "at least 16"),
        ("[[server.tokens]]\nname = \"a\"\ntoken = \"long-enough-token-123\"\nscopes = [\"write\"]\n", "not one of read, orders, admin"),
        ("[[server.tokens]]\nname = \"a\"\ntoken = \"long-enough-token-123\"\n", "name at least one of"),
        ("[[server.tokens]]\ntoken = \"long-enough-token-123\"\nscopes = [\"read\"]\n", "name is required"),
        (&format!("[[server.tokens]]\nname = \"a\"\ntoken = \"{TOKEN}\"\nscopes = [\"read\"]\n"), "same as another token"),
    ] {
        let text = format!("[server]\nadmin_token = \"{TOKEN}\"\n{tokens}");
        let err = lunas::config::Config::from_parts(Some(&text), &[], &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(wanted), "{tokens}: {err}");
    }
}
