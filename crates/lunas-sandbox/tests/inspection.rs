//! `GET /sandbox/log` and `GET /sandbox/accounts`: what the sandbox did, without secrets; and
//! the answers to paths and bodies it does not serve.

mod common;

use common::*;
use lunas_sandbox::{AccountInfo, CallbackOutcome};

#[tokio::test]
async fn the_log_lists_requests_and_callbacks() {
    let h = Harness::standard().await;
    h.top_up("order001", "0817777215", "xld25000").await;
    h.check_status("order001").await;
    h.top_up_as(IAK_USER, "wrong-key", "order002", "0817777215", "xld25000")
        .await;
    h.report("order001", "success").await;

    let log = h.log().await;
    let requests: Vec<_> = log
        .requests
        .iter()
        .map(|r| {
            (
                r.path.as_str(),
                r.account.as_deref(),
                r.command.as_deref(),
                r.reference.as_deref(),
                r.rc.as_deref(),
                r.http_status,
            )
        })
        .collect();
    assert_eq!(
        requests,
        [
            (
                "/api/top-up",
                Some("iak"),
                Some("top-up"),
                Some("order001"),
                Some("39"),
                200
            ),
            (
                "/api/check-status",
                Some("iak"),
                Some("check-status"),
                Some("order001"),
                Some("39"),
                200
            ),
            (
                "/api/top-up",
                None,
                Some("top-up"),
                Some("order002"),
                Some("204"),
                200
            ),
            (
                "/sandbox/report",
                Some("iak"),
                Some("report"),
                Some("order001"),
                Some("00"),
                200
            ),
        ]
    );
    assert!(log.requests.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(log.requests[0].at, "2024-05-01T03:00:00Z");

    assert_eq!(log.callbacks.len(), 1);
    let c = &log.callbacks[0];
    assert_eq!(
        c.url.as_deref(),
        Some(format!("{}/iak", h.receiver.url).as_str())
    );
    assert_eq!(c.reference, "order001");
    assert_eq!(c.attempt, 1);
    assert_eq!(c.http_status, Some(200));
    assert_eq!(c.outcome, CallbackOutcome::Accepted);
    assert_eq!(c.body, h.receiver.at("/iak")[0].text());
    assert_eq!(c.content_type, "application/json");
}

#[tokio::test]
async fn the_log_filters_by_account_and_ref() {
    let h = Harness::standard().await;
    h.top_up("a1", "0817777215", "xld25000").await;
    h.top_up_as(IDSL_USER, IDSL_KEY, "b1", "0817777215", "xld25000")
        .await;
    let only = h.get("/sandbox/log?account=idsl").await;
    let log: lunas_sandbox::LogSnapshot = serde_json::from_slice(&only.body).unwrap();
    assert_eq!(log.requests.len(), 1);
    assert_eq!(log.requests[0].reference.as_deref(), Some("b1"));
    let by_ref = h.get("/sandbox/log?ref=a1").await;
    let log: lunas_sandbox::LogSnapshot = serde_json::from_slice(&by_ref.body).unwrap();
    assert_eq!(log.requests.len(), 1);
    assert_eq!(h.get("/sandbox/log?nonsense=1").await.status, 400);
}

#[tokio::test]
async fn no_secret_is_ever_served() {
    let h = Harness::standard().await;
    h.top_up("s1", "0817777215", "xld25000").await;
    h.report("s1", "success").await;
    let headers = mcp_credentials().request_headers("ext", "ord");
    h.post_with("/va", "application/json", "{}", &headers).await;
    let log = h.get("/sandbox/log").await.text();
    let accounts = h.get("/sandbox/accounts").await.text();
    for secret in [IAK_KEY, PROD_KEY, IDSL_KEY, MCP_SECRET, MCP_HASH] {
        assert!(!log.contains(secret), "{secret} in the log");
        assert!(!accounts.contains(secret), "{secret} in the accounts");
    }
    assert!(!log.contains("TUNQ"), "no Authorization header either");
}

#[tokio::test]
async fn accounts_show_their_deposits() {
    let h = Harness::standard().await;
    h.top_up("d1", "0817777215", "xld50000").await;
    let answer = h.get("/sandbox/accounts").await;
    let accounts: Vec<AccountInfo> = serde_json::from_slice(&answer.body).unwrap();
    let ids: Vec<_> = accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["iak", "iak-prod", "idsl", "mcp"]);
    assert_eq!(accounts[0].balance, 1_000_000_000 - 50_000);
    assert_eq!(accounts[0].environment, "development");
    assert_eq!(accounts[1].environment, "production");
    assert_eq!(accounts[3].login, MCP_MERCHANT);
}

#[tokio::test]
async fn unknown_paths_and_oversize_bodies_get_clear_answers() {
    let h = Harness::standard().await;
    // On IAK's paths, IAK's own answer (rc 117); elsewhere, the sandbox's.
    let missing = h.post("/api/launch", "application/json", "{}").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["data"]["rc"], "117");
    let missing = h.post("/launch", "application/json", "{}").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "not_found");
    let wrong_method = h.get("/api/top-up").await;
    assert_eq!(wrong_method.status, 405);
    let huge = h
        .post("/api/top-up", "application/json", "x".repeat(300 * 1024))
        .await;
    assert_eq!(huge.status, 413);
    let deposit = h
        .post(
            "/sandbox/deposit",
            "application/json",
            r#"{"account":"mcp","amount":5}"#,
        )
        .await;
    assert_eq!(deposit.status, 400);
    let deposit = h
        .post(
            "/sandbox/deposit",
            "application/json",
            r#"{"account":"iak","amount":-5}"#,
        )
        .await;
    assert_eq!(deposit.status, 400);
    let deposit = h
        .post(
            "/sandbox/deposit",
            "application/json",
            r#"{"account":"nobody","amount":5}"#,
        )
        .await;
    assert_eq!(deposit.status, 404);
    let pay = h
        .post(
            "/sandbox/va/pay",
            "application/json",
            r#"{"external_id":"x","amount":"lots"}"#,
        )
        .await;
    assert_eq!(pay.status, 400);
}

#[tokio::test]
async fn with_a_token_the_controls_and_the_log_answer_only_its_holder() {
    let token = "sandbox-token-0123456789";
    let h =
        Harness::start(&STANDARD.replace("[sandbox]", &format!("[sandbox]\ntoken = \"{token}\"")))
            .await;
    // The provider paths need no token: they check their own signs.
    h.top_up("order001", "0817777215", "xld25000").await;
    for path in [
        "/sandbox/log",
        "/sandbox/accounts",
        "/sandbox/transactions?ref=order001",
    ] {
        let answer = h.get(path).await;
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(answer.json()["error"]["code"], "unauthorized");
        let with = h
            .client
            .get(format!("{}{path}", h.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(with.status().as_u16(), 200, "{path}");
    }
    for path in ["/sandbox/report", "/sandbox/va/pay", "/sandbox/deposit"] {
        assert_eq!(
            h.post(path, "application/json", "{}").await.status,
            401,
            "{path}"
        );
    }
}

#[test]
fn a_short_or_blank_sandbox_token_is_refused() {
    for bad in ["short", "                    ", "has a space in it, long"] {
        let e = lunas_sandbox::Sandbox::new(config(&format!("[sandbox]\ntoken = \"{bad}\"")))
            .unwrap_err();
        assert_eq!(e.at, "sandbox.token", "{bad:?}");
    }
}
