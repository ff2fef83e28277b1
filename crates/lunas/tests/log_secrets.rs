//! Logs never carry a secret or the customer's goods (the README's guarantees): the real binary runs at
//! `LUNAS_LOG=debug`, takes callbacks carrying a pin, an eSIM activation code and a PLN token,
//! forged and malformed ones, admin API calls and merchant deliveries, and then its whole
//! standard error is searched for every one of those values.

mod common;

use std::path::Path;
use std::time::Duration;

use common::process::*;
use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format};
use serde_json::json;

const LOG_IAK_KEY: &str = "IAK-LOGTEST-KEY-7f3a9c";
const LOG_IDSL_KEY: &str = "IDSL-LOGTEST-KEY-2b8e41";
const LOG_HASH_KEY: &str = "MCP-LOGTEST-HASH-c0ffee";
const LOG_UNBOUND: &str = "0xLOGTEST-UNBOUND-5e5e5e";
const LOG_TOKEN: &str = "admin-LOGTEST-token-9d9d9d9d";
const LOG_WHSEC: &str = "whsec_TE9HVEVTVHdlYmhvb2tzZWNyZXQ=";
const PIN: &str = "PIN-804417-GAME";
const ACTIVATION: &str = "LPA:1$esim.example.id$ACT-LOGTEST-31337";
const PLN_TOKEN: &str = "5531-8812-0043-7761-2290";
const FORGED_PIN: &str = "PIN-FORGED-660021";

/// Every value that must never reach the log.
const NEVER: &[&str] = &[
    LOG_IAK_KEY,
    LOG_IDSL_KEY,
    LOG_HASH_KEY,
    LOG_UNBOUND,
    LOG_TOKEN,
    LOG_WHSEC,
    PIN,
    ACTIVATION,
    PLN_TOKEN,
    FORGED_PIN,
];

/// A merchant endpoint that accepts every delivery and reports how many it got.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |body: String| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(body);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hooks/lunas"), rx)
}

fn config(dir: &Path, hook: &str) -> std::path::PathBuf {
    let path = dir.join("lunas.toml");
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_token = "env:LOG_ADMIN_TOKEN"

[storage]
url = "{db}"

[[providers]]
id = "iak"
kind = "iak"
username = "{IAK_USER}"
api_key = "env:LOG_IAK_KEY"

[[providers]]
id = "idsl"
kind = "idsl"
username = "{IDSL_USER}"
api_key = "{LOG_IDSL_KEY}"
prepaid_url = "http://127.0.0.1:9/"

[[providers]]
id = "mcp"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "{LOG_UNBOUND}"
hash_key = "env:LOG_HASH_KEY"

[[endpoints]]
url = "{hook}"
secret = "{LOG_WHSEC}"
"#,
        db = storage_url(&dir.join("lunas.db"))
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Drives the gateway through everything that could leak, and returns its whole log.
async fn exercise(format: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (hook, mut delivered) = receiver().await;
    let config = config(dir.path(), &hook);
    let mut env = vec![
        ("LUNAS_LOG", "debug"),
        ("LOG_ADMIN_TOKEN", LOG_TOKEN),
        ("LOG_IAK_KEY", LOG_IAK_KEY),
        ("LOG_HASH_KEY", LOG_HASH_KEY),
    ];
    if let Some(f) = format {
        env.push(("LUNAS_LOG_FORMAT", f));
    }
    let served = Served::start(dir.path(), &config, &env).await;
    let client = reqwest::Client::new();
    let post = |provider: &str, body: String, headers: Vec<(&'static str, String)>| {
        let mut req = client
            .post(served.url(&format!("/callbacks/{provider}")))
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap())
        }
    };

    // A game voucher with its pin, an eSIM with its activation code, a PLN token.
    let mut game = prepaid_callback("log-game", PrepaidStatus::Success, IAK_USER, LOG_IAK_KEY);
    game.pin = Some(PIN.into());
    game.sn = Some("SN-GAME-1".into());
    assert_eq!(
        post("iak", game.encode(Format::Json, ApiVersion::V2), vec![])
            .await
            .0,
        200
    );
    let mut esim = prepaid_callback("log-esim", PrepaidStatus::Success, IDSL_USER, LOG_IDSL_KEY);
    esim.activation_code = Some(ACTIVATION.into());
    assert_eq!(
        post("idsl", esim.encode(Format::Xml, ApiVersion::V1), vec![])
            .await
            .0,
        200
    );
    // A validly signed ref that tries to start a log line of its own and colour the terminal.
    let forge = prepaid_callback(
        "log-forge\nFORGED-LINE lunas: all good\u{1b}[31m",
        PrepaidStatus::Success,
        IAK_USER,
        LOG_IAK_KEY,
    );
    let (status, _) = post("iak", forge.encode(Format::Json, ApiVersion::V2), vec![]).await;
    assert!(status == 200 || status == 400, "{status}");
    // The token arrives late, after the success: merged and announced as an update.
    let mut pln = prepaid_callback("log-pln", PrepaidStatus::Success, IAK_USER, LOG_IAK_KEY);
    pln.sn = None;
    pln.product_code = "pln20000".into();
    assert_eq!(
        post("iak", pln.encode(Format::Xml, ApiVersion::V2), vec![])
            .await
            .0,
        200
    );
    pln.sn = Some(PLN_TOKEN.into());
    assert_eq!(
        post("iak", pln.encode(Format::Json, ApiVersion::V1), vec![])
            .await
            .0,
        200
    );
    // A forged callback carrying goods, a conflicting one, malformed ones, an oversize one.
    let mut forged = prepaid_callback("log-game", PrepaidStatus::Failed, IAK_USER, "guess");
    forged.pin = Some(FORGED_PIN.into());
    assert_eq!(
        post("iak", forged.encode(Format::Json, ApiVersion::V2), vec![])
            .await
            .0,
        401
    );
    let mut conflict = prepaid_callback("log-game", PrepaidStatus::Failed, IAK_USER, LOG_IAK_KEY);
    conflict.pin = Some(FORGED_PIN.into());
    assert_eq!(
        post("iak", conflict.encode(Format::Json, ApiVersion::V2), vec![])
            .await
            .0,
        200
    );
    let mut garbage: serde_json::Value =
        serde_json::from_str(&game.encode(Format::Json, ApiVersion::V2)).unwrap();
    garbage["data"]["price"] = json!(PLN_TOKEN);
    assert_eq!(post("iak", garbage.to_string(), vec![]).await.0, 400);
    garbage["data"]["price"] = json!("1");
    garbage["data"]["status"] = json!(PIN);
    // Signed, with a status IAK does not document: kept, flagged, never echoed.
    assert_eq!(post("iak", garbage.to_string(), vec![]).await.0, 422);
    let doctype = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE mp [<!ENTITY p \"{PIN}\">]><mp><ref_id>&p;</ref_id></mp>"
    );
    assert_eq!(post("iak", doctype, vec![]).await.0, 400);
    let huge = format!(
        "{{\"data\":{{\"pin\":\"{PIN}\",\"x\":\"{}\"}}}}",
        " ".repeat(70_000)
    );
    let (status, _) = raw_http(served.addr, &sized_post("/callbacks/iak", huge.as_bytes())).await;
    assert_eq!(status, 413);
    let (status, _) = raw_http(
        served.addr,
        &chunked_post("/callbacks/iak", huge.as_bytes(), 8192),
    )
    .await;
    assert_eq!(status, 413);
    // MCPayment: a good payment, and one with a wrong signature.
    let va = va_callback(
        "log-va",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        10000,
        &[("LV1", 10000)],
        false,
    );
    let sig = lunas_protocol::sign::mcp_callback_signature(
        &lunas_protocol::Secret::new(LOG_HASH_KEY),
        &va.transaction_id,
        &va.external_id,
        &va.order_id,
        None,
    );
    assert_eq!(
        post("mcp", va.encode(), vec![("mcp-signature", sig)])
            .await
            .0,
        200
    );
    assert_eq!(
        post("mcp", va.encode(), vec![("mcp-signature", "0".repeat(64))])
            .await
            .0,
        401
    );

    // The admin API, with the right token, a wrong one and none.
    let admin = |path: &str, token: Option<&str>| {
        let mut req = client.get(served.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        admin("/api/v1/transactions/iak/log-game", Some(LOG_TOKEN)).await,
        200
    );
    assert_eq!(
        admin("/api/v1/transactions?q=log-pln", Some(LOG_TOKEN)).await,
        200
    );
    assert_eq!(admin("/api/v1/events", Some(LOG_TOKEN)).await, 200);
    assert_eq!(admin("/api/v1/providers", Some(LOG_TOKEN)).await, 200);
    assert_eq!(
        admin("/api/v1/transactions", Some(&format!("{LOG_TOKEN}-wrong"))).await,
        401
    );
    assert_eq!(admin("/api/v1/events", None).await, 401);
    let res = client
        .post(served.url("/api/v1/transactions"))
        .bearer_auth(LOG_TOKEN)
        .json(&json!({"provider_id": "iak", "ref": "log-reg", "kind": "prepaid", "customer_id": PLN_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);

    // Wait until the merchant has every event that carries goods, so delivery logs are in.
    let mut got = Vec::new();
    while !(got.iter().any(|b: &String| b.contains(PLN_TOKEN))
        && got.iter().any(|b| b.contains(PIN))
        && got.iter().any(|b| b.contains(ACTIVATION)))
    {
        let body = tokio::time::timeout(Duration::from_secs(30), delivered.recv())
            .await
            .expect("deliveries arrive")
            .expect("the receiver runs");
        got.push(body);
    }
    served.kill().await
}

fn assert_clean(log: &[String]) {
    let text = log.join("\n");
    assert!(
        !log.iter().any(|l| l.starts_with("FORGED-LINE")),
        "a ref started a log line of its own:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape character reached the log"
    );
    assert!(
        text.contains("callback committed") && text.contains("callback refused"),
        "the log is not empty of callbacks:\n{text}"
    );
    for secret in NEVER {
        assert!(
            !text.contains(secret),
            "{secret:?} appears in the log:\n{}",
            log.iter()
                .filter(|l| l.contains(secret))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[tokio::test]
async fn debug_text_logs_hold_no_secret_and_no_customer_goods() {
    assert_clean(&exercise(None).await);
}

#[tokio::test]
async fn debug_json_logs_hold_no_secret_and_no_customer_goods() {
    let log = exercise(Some("json")).await;
    let parsed = log
        .iter()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    assert!(parsed * 2 > log.len(), "JSON lines: {log:#?}");
    assert_clean(&log);
}
