//! The `lunas` binary as an operator runs it: `--help`, `serve` on port 0 with a config file
//! (killed with SIGKILL under load and restarted on the same database), `migrate`, `tx list`
//! and `tx show`, and clear errors for every kind of bad configuration.

mod common;

use std::path::{Path, PathBuf};

use common::process::*;
use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format};
use serde_json::Value;

fn write_config(dir: &Path, db: &Path, extra: &str) -> PathBuf {
    let path = dir.join("lunas.toml");
    std::fs::write(&path, config_text(db, extra)).unwrap();
    path
}

async fn post_callback(
    client: &reqwest::Client,
    served_url: String,
    body: String,
    sig: Option<String>,
) -> Result<u16, reqwest::Error> {
    let mut req = client.post(served_url).body(body);
    if let Some(s) = sig {
        req = req.header("mcp-signature", s);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    res.bytes().await?;
    Ok(status)
}

#[tokio::test]
async fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = lunas(dir.path());
    cmd.arg("--help");
    let (code, out, _) = run(cmd).await;
    assert_eq!(code, 0);
    for word in ["serve", "migrate", "tx", "sign", "--config"] {
        assert!(out.contains(word), "--help mentions {word}:\n{out}");
    }
    let mut cmd = lunas(dir.path());
    cmd.args(["tx", "--help"]);
    let (code, out, _) = run(cmd).await;
    assert_eq!(code, 0);
    assert!(out.contains("list") && out.contains("show"), "{out}");
    let mut cmd = lunas(dir.path());
    cmd.args(["tx", "list", "--help"]);
    let (_, out, _) = run(cmd).await;
    for flag in [
        "--provider",
        "--state",
        "--kind",
        "--needs-review",
        "--json",
    ] {
        assert!(out.contains(flag), "tx list --help mentions {flag}:\n{out}");
    }
}

#[tokio::test]
async fn serve_survives_sigkill_under_load_with_every_acknowledged_callback_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("lunas.db");
    let config = write_config(dir.path(), &db, "");
    let served = Served::start(dir.path(), &config, &[]).await;
    let client = reqwest::Client::new();

    // A first batch, all answered before the kill.
    let mut acked: Vec<(String, String, &str)> = Vec::new();
    for i in 0..10 {
        let reference = format!("pre-{i}");
        let body = iak_body(
            &reference,
            PrepaidStatus::Success,
            Format::Json,
            ApiVersion::V2,
        );
        let status = post_callback(&client, served.url("/callbacks/iak"), body, None)
            .await
            .unwrap();
        assert_eq!(status, 200);
        acked.push(("iak".into(), reference, "succeeded"));
    }

    // Then a burst, killed while it is in flight.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..150 {
        let client = client.clone();
        let tx = tx.clone();
        let (provider, reference, body, sig, want) = if i % 3 == 2 {
            let reference = format!("burst-va-{i}");
            let va = va_callback(
                &reference,
                TransactionStatus::Paid,
                PaymentSystem::Closed,
                5000,
                &[(&format!("B{i}"), 5000)],
                false,
            );
            let (body, sig) = mcp_callback(&va);
            ("mcp", reference, body, Some(sig), "paid")
        } else {
            let reference = format!("burst-{i}");
            let body = iak_body(
                &reference,
                PrepaidStatus::Failed,
                Format::Xml,
                ApiVersion::V1,
            );
            ("iak", reference, body, None, "failed")
        };
        let url = served.url(&format!("/callbacks/{provider}"));
        tasks.push(tokio::spawn(async move {
            let result = post_callback(&client, url, body, sig).await;
            let _ = tx.send(());
            (provider.to_owned(), reference, want, result)
        }));
    }
    drop(tx);
    for _ in 0..40 {
        tokio::time::timeout(BOUND, rx.recv())
            .await
            .expect("answers come");
    }
    served.kill().await;
    let mut lost_in_flight = 0;
    for task in tasks {
        let (provider, reference, want, result) = task.await.unwrap();
        match result {
            Ok(200) => acked.push((provider, reference, want)),
            Ok(other) => panic!("{provider}/{reference}: answered {other}"),
            Err(_) => lost_in_flight += 1,
        }
    }
    eprintln!(
        "{} acknowledged, {lost_in_flight} cut off by the kill",
        acked.len()
    );
    assert!(
        acked.len() >= 50,
        "the burst was under way when it was killed"
    );

    // Restarted on the same database, every acknowledged callback is there.
    let served = Served::start(dir.path(), &config, &[]).await;
    for (provider, reference, want) in &acked {
        let res = client
            .get(served.url(&format!("/api/v1/transactions/{provider}/{reference}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            200,
            "{provider}/{reference} was acknowledged before the kill, so it survives"
        );
        let tx: Value = res.json().await.unwrap();
        assert_eq!(tx["state"], *want, "{provider}/{reference}");
    }
    // And the restarted gateway takes new callbacks.
    let body = iak_body(
        "after-restart",
        PrepaidStatus::Success,
        Format::Json,
        ApiVersion::V2,
    );
    assert_eq!(
        post_callback(&client, served.url("/callbacks/iak"), body, None)
            .await
            .unwrap(),
        200
    );
    served.kill().await;

    // The CLI reads the same database.
    let mut cmd = lunas(dir.path());
    cmd.args(["tx", "list", "--json", "--limit", "500", "--config"])
        .arg(&config);
    let (code, out, err) = run(cmd).await;
    assert_eq!(code, 0, "{err}");
    let listed: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(listed.len() > acked.len(), "{} listed", listed.len());
    assert!(listed.len() <= 10 + 150 + 1, "{} listed", listed.len());
    let mut cmd = lunas(dir.path());
    cmd.args(["tx", "show", "iak", "after-restart", "--config"])
        .arg(&config);
    let (code, out, err) = run(cmd).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["state"], "succeeded");
}

#[tokio::test]
async fn migrate_creates_the_schema_on_a_fresh_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new").join("dir").join("fresh.db");
    let config = dir.path().join("migrate.toml");
    std::fs::write(
        &config,
        format!("[storage]\nurl = \"sqlite://{}\"\n", db.display()),
    )
    .unwrap();
    // The first run says what it did; the second that there was nothing to do.
    for expected in [
        "migrations; the schema is up to date",
        "already up to date; nothing changed",
    ] {
        let mut cmd = lunas(dir.path());
        cmd.args(["migrate", "--config"]).arg(&config);
        let (code, out, err) = run(cmd).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(expected), "{out}");
    }
    assert!(db.exists());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert!(version >= 1);
    for table in ["transactions", "observations", "events"] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "table {table}");
    }
    // The environment selects the database as well as the file does.
    let other = dir.path().join("by-env.db");
    let mut cmd = lunas(dir.path());
    cmd.arg("migrate").env(
        "LUNAS__STORAGE__URL",
        format!("sqlite://{}", other.display()),
    );
    let (code, _, err) = run(cmd).await;
    assert_eq!(code, 0, "{err}");
    assert!(other.exists());
}

#[tokio::test]
async fn tx_list_and_show_read_what_the_gateway_wrote() {
    let mut gw = TestGateway::start().await;
    for (reference, status) in [
        ("cli-ok", PrepaidStatus::Success),
        ("cli-fail", PrepaidStatus::Failed),
        ("cli-pend", PrepaidStatus::Process),
        ("cli-conf", PrepaidStatus::Success),
        ("cli-conf", PrepaidStatus::Failed),
    ] {
        gw.callback(
            "iak",
            iak_body(reference, status, Format::Json, ApiVersion::V2),
            &[],
        )
        .await;
    }
    let va = va_callback(
        "cli-va",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        12345,
        &[("C1", 12345)],
        false,
    );
    assert_eq!(gw.mcp(&va).await.0, 200);
    gw.stop().await;
    let dir = gw.dir.path().to_owned();
    let config = write_config(&dir, &gw.db_path(), "");

    let tx_list = |args: &[&str]| {
        let mut cmd = lunas(&dir);
        cmd.args(["tx", "list"])
            .args(args)
            .arg("--config")
            .arg(&config);
        run(cmd)
    };
    let (code, table, err) = tx_list(&[]).await;
    assert_eq!(code, 0, "{err}");
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["PROVIDER", "REF", "KIND", "STATE", "AMOUNT"] {
        assert!(header.contains(col), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 5, "{table}");
    let row = |r: &str| {
        *rows
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(r))
            .unwrap_or_else(|| panic!("{r} in:\n{table}"))
    };
    assert!(row("cli-fail").contains("failed"));
    assert!(row("cli-va").contains("paid") && row("cli-va").contains("12345"));
    assert!(row("cli-conf").contains("yes"), "the review flag shows");

    let json_refs = |out: &str| -> Vec<String> {
        out.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("JSON lines");
                v["ref"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let (_, out, _) = tx_list(&["--json"]).await;
    assert_eq!(
        json_refs(&out),
        ["cli-va", "cli-conf", "cli-pend", "cli-fail", "cli-ok"],
        "newest first"
    );
    for (args, want) in [
        (vec!["--provider", "mcp"], vec!["cli-va"]),
        (vec!["--state", "failed"], vec!["cli-fail"]),
        (vec!["--kind", "va"], vec!["cli-va"]),
        (vec!["--needs-review"], vec!["cli-conf"]),
        (vec!["--search", "cli-pend"], vec!["cli-pend"]),
        (vec!["--limit", "2"], vec!["cli-va", "cli-conf"]),
    ] {
        let mut all = vec!["--json"];
        all.extend(args.iter());
        let (code, out, err) = tx_list(&all).await;
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(json_refs(&out), want, "{args:?}");
    }
    let (code, _, err) = tx_list(&["--state", "done"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("--state") && err.contains("done"), "{err}");

    let mut cmd = lunas(&dir);
    cmd.args(["tx", "show", "iak", "cli-conf", "--config"])
        .arg(&config);
    let (code, out, err) = run(cmd).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).expect("tx show prints JSON");
    assert_eq!(shown["state"], "succeeded");
    assert_eq!(shown["needs_review"], true);
    let kinds: Vec<&str> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "observation").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "event").count(), 2);

    let mut cmd = lunas(&dir);
    cmd.args(["tx", "show", "iak", "nosuch", "--config"])
        .arg(&config);
    let (code, _, err) = run(cmd).await;
    assert_ne!(code, 0);
    assert!(err.contains("nosuch"), "{err}");
}

/// Runs `lunas serve` with a config that must be refused; returns stderr.
async fn refused_config(text: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = lunas(dir.path());
    cmd.arg("serve")
        .arg("--config")
        .arg(&path)
        .envs(env.iter().copied());
    let (code, out, err) = run(cmd).await;
    assert_ne!(
        code, 0,
        "serve must refuse:\n{text}\nstdout: {out}\nstderr: {err}"
    );
    assert!(!err.contains("listening on"), "{err}");
    err
}

/// A configuration text, the environment it runs in, and what its error must say.
type ConfigCase = (String, Vec<(&'static str, &'static str)>, Vec<&'static str>);

fn base_config(db: &str, provider: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n[storage]\nurl = \"sqlite://{db}\"\n{provider}"
    )
}

#[tokio::test]
async fn serve_refuses_bad_configurations_with_clear_messages() {
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("x.db");
    let db = db.to_str().unwrap();
    let cases: Vec<ConfigCase> = vec![
        (
            base_config(db, "[[providers]]\nid = \"p\"\nkind = \"iakk\"\nusername = \"u\"\napi_key = \"k\"\n"),
            vec![],
            vec!["kind \"iakk\"", "iak, idsl, mcp"],
        ),
        (
            base_config(db, "[[providers]]\nid = \"p\"\nkind = \"iak\"\nusername = \"u\"\n"),
            vec![],
            vec!["api_key is required"],
        ),
        (
            base_config(db, "[[providers]]\nid = \"m\"\nkind = \"mcp\"\nmerchant_id = \"M\"\nsecret_unbound_id = \"s\"\n"),
            vec![],
            vec!["hash_key is required"],
        ),
        (
            base_config(db, "[[providers]]\nid = \"p\"\nkind = \"idsl\"\nusername = \"u\"\napi_key = \"k\"\nprepaid_url = \"not a url\"\n"),
            vec![],
            vec!["prepaid_url", "not a url"],
        ),
        (
            base_config(db, "[[providers]]\nid = \"m\"\nkind = \"mcp\"\nmerchant_id = \"M\"\nsecret_unbound_id = \"s\"\nhash_key = \"h\"\nbase_url = \"ftp://example.com\"\n"),
            vec![],
            vec!["base_url", "ftp://example.com"],
        ),
        (
            format!("[storage]\nurl = \"sqlite://{db}\"\n[server]\nlisten = \"127.0.0.1:0\"\n"),
            vec![],
            vec!["admin_token is required"],
        ),
        (
            base_config(db, "[[providers]]\nid = \"p\"\nkind = \"iak\"\nusername = \"u\"\napi_key = \"env:LUNAS_TEST_SURELY_UNSET_KEY\"\n"),
            vec![],
            vec!["LUNAS_TEST_SURELY_UNSET_KEY is not set"],
        ),
        (
            format!("[server]\nlisten = \"127.0.0.1:0\"\nadmin_token = \"env:LUNAS_TEST_UNSET_TOKEN\"\n[storage]\nurl = \"sqlite://{db}\"\n"),
            vec![],
            vec!["LUNAS_TEST_UNSET_TOKEN is not set"],
        ),
        (
            base_config(db, "[[providers]]\nid = \"p\"\nkind = \"iak\"\nusername = \"u\"\napi_key = \"env:LUNAS_TEST_EMPTY\"\n"),
            vec![("LUNAS_TEST_EMPTY", "")],
            vec!["LUNAS_TEST_EMPTY is empty"],
        ),
        (
            base_config(db, "[[providers]]\nid = \"p\"\nkind = \"iak\"\nusername = \"u\"\napi_key = \"k\"\ncallback_ips = [\"not-an-ip\"]\n"),
            vec![],
            vec!["not-an-ip"],
        ),
        (
            base_config(db, "[server2]\n"),
            vec![],
            vec!["server2"],
        ),
        (
            base_config(db, ""),
            vec![("LUNAS__SERVER__LISTEN", "localhost")],
            vec!["server.listen", "localhost"],
        ),
        (
            "[server\nlisten = 1".to_owned(),
            vec![],
            vec!["TOML"],
        ),
    ];
    for (text, env, needles) in cases {
        let err = refused_config(&text, &env).await;
        for needle in needles {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        assert!(err.starts_with("error:"), "one clear error: {err}");
    }
    assert!(!scratch.path().join("x.db").exists(), "nothing was created");
}

#[tokio::test]
async fn serve_names_a_config_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    for path in [dir.path().join("missing.toml"), dir.path().to_path_buf()] {
        let mut cmd = lunas(dir.path());
        cmd.arg("serve").arg("--config").arg(&path);
        let (code, _, err) = run(cmd).await;
        assert_ne!(code, 0);
        assert!(err.contains("cannot read config file"), "{err}");
        assert!(err.contains(path.to_str().unwrap()), "{err}");
    }
}

#[tokio::test]
async fn serve_with_env_secrets_and_lunas_env_overrides_takes_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let config = dir.path().join("env.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nadmin_token = \"env:TEST_ADMIN_TOKEN\"\n[storage]\nurl = \"sqlite://{}\"\n\
             [[providers]]\nid = \"iak\"\nkind = \"iak\"\nusername = \"{IAK_USER}\"\napi_key = \"env:TEST_IAK_KEY\"\n",
            db.display()
        ),
    )
    .unwrap();
    // The listen address comes from the environment, over the default.
    let served = Served::start(
        dir.path(),
        &config,
        &[
            ("TEST_ADMIN_TOKEN", TOKEN),
            ("TEST_IAK_KEY", IAK_KEY),
            ("LUNAS__SERVER__LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let body = iak_body("env-1", PrepaidStatus::Success, Format::Xml, ApiVersion::V2);
    assert_eq!(
        post_callback(&client, served.url("/callbacks/iak"), body, None)
            .await
            .unwrap(),
        200
    );
    let res = client
        .get(served.url("/api/v1/transactions/iak/env-1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    served.kill().await;
}

#[tokio::test]
async fn order_places_a_top_up_once_from_the_command_line() {
    use serde::Deserialize;
    let dir = tempfile::tempdir().unwrap();
    let sb_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb = sb_listener.local_addr().unwrap();
    let sandbox_config = lunas_sandbox::SandboxConfig::deserialize(
        toml::from_str::<toml::Value>(&format!(
            r#"
[[accounts]]
id = "iak"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
environment = "development"
callback_url = "http://127.0.0.1:9/callbacks/iak"
"#
        ))
        .unwrap(),
    )
    .unwrap();
    let sandbox = lunas_sandbox::Sandbox::new(sandbox_config).unwrap();
    let router = sandbox.router();
    tokio::spawn(async move { axum::serve(sb_listener, router).await });
    let db = dir.path().join("lunas.db");
    let path = dir.path().join("lunas.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[storage]
url = "{url}"
[[providers]]
id = "iak"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
prepaid_url = "http://{sb}"
"#,
            url = storage_url(&db)
        ),
    )
    .unwrap();
    let order = |reference: &str| {
        let mut cmd = lunas(dir.path());
        cmd.args([
            "--config",
            path.to_str().unwrap(),
            "order",
            "prepaid",
            "iak",
            reference,
        ]);
        cmd.args(["--product", "xld25000", "--customer", "081234560000"]);
        cmd
    };
    let (code, out, err) = run(order("cli-1")).await;
    assert_eq!(code, 0, "{err}");
    let tx: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            tx["origin"].as_str(),
            tx["submission"].as_str(),
            tx["state"].as_str()
        ),
        (Some("order"), Some("accepted"), Some("pending")),
        "{tx}"
    );
    // Again: the same transaction, nothing sent twice.
    let (code, _, err) = run(order("cli-1")).await;
    assert_eq!(code, 0, "{err}");
    let res: Value = reqwest::get(format!("http://{sb}/sandbox/transactions?ref=cli-1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["items"].as_array().unwrap().len(), 1, "{res}");
    // A ref placed with other fields is refused in words.
    let mut cmd = lunas(dir.path());
    cmd.args([
        "--config",
        path.to_str().unwrap(),
        "order",
        "prepaid",
        "iak",
        "cli-1",
    ]);
    cmd.args(["--product", "xld50000", "--customer", "081234560000"]);
    let (code, _, err) = run(cmd).await;
    assert_ne!(code, 0);
    assert!(err.contains("already an order with other fields"), "{err}");
}

#[tokio::test]
async fn tx_resolve_clears_a_review_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lunas.db");
    let path = write_config(dir.path(), &db, "");
    // Two contradicting callbacks, written to the same database as the gateway would.
    let store = lunas_store::open(&storage_url(&db), &lunas_store::StoreOptions::default())
        .await
        .unwrap();
    for status in [PrepaidStatus::Success, PrepaidStatus::Failed] {
        let cb = prepaid_callback("cli-rv", status, IAK_USER, IAK_KEY);
        let fact = lunas_core::Fact::reported(
            lunas_protocol::TxKind::Prepaid,
            &cb.ref_id,
            Some(if status == PrepaidStatus::Success {
                lunas_protocol::State::Succeeded
            } else {
                lunas_protocol::State::Failed
            }),
            lunas_core::Detail::default(),
        );
        let obs = lunas_core::NewObservation {
            provider_id: "iak".into(),
            reference: Some("cli-rv".into()),
            source: lunas_core::Source::Callback,
            received_at: time::OffsetDateTime::now_utc(),
            content_type: None,
            remote_addr: None,
            body: Vec::new(),
            body_size: 0,
            verdict: None,
            detail: None,
        };
        store
            .ingest(lunas_store::Ingest::accepted(obs, fact))
            .await
            .unwrap();
    }
    drop(store);
    let mut cmd = lunas(dir.path());
    cmd.args([
        "--config",
        path.to_str().unwrap(),
        "tx",
        "resolve",
        "iak",
        "cli-rv",
    ]);
    cmd.args(["--state", "failed", "--note", "checked with IAK support"]);
    let (code, out, err) = run(cmd).await;
    assert_eq!(code, 0, "{err}");
    let tx: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (tx["state"].as_str(), &tx["needs_review"]),
        (Some("failed"), &Value::Bool(false))
    );
    // Not flagged any more: a clear refusal.
    let mut cmd = lunas(dir.path());
    cmd.args([
        "--config",
        path.to_str().unwrap(),
        "tx",
        "resolve",
        "iak",
        "cli-rv",
    ]);
    cmd.args(["--state", "failed", "--note", "again"]);
    let (code, _, err) = run(cmd).await;
    assert_ne!(code, 0);
    assert!(err.contains("not flagged for review"), "{err}");
}

#[tokio::test]
async fn a_read_only_command_does_not_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = lunas(dir.path());
    cmd.args(["tx", "list"]);
    let (code, _, err) = run(cmd).await;
    assert_ne!(code, 0);
    assert!(err.contains("there is no database at"), "{err}");
    assert!(!dir.path().join("lunas.db").exists(), "nothing created");
}

#[test]
fn every_command_and_option_says_what_it_is_for() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(format!("{path} {}", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&lunas::cli::Cli::command(), "lunas", &mut missing);
    assert!(missing.is_empty(), "without help text: {missing:?}");
}

#[tokio::test]
async fn events_test_sends_a_signed_test_event_and_exits_by_the_answer() {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    // A handler that verifies with the official library and answers 204, or 400.
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = std::sync::Arc::clone(&seen);
            async move {
                let ok = standardwebhooks::Webhook::new(SECRET)
                    .unwrap()
                    .verify(body.as_bytes(), &headers)
                    .is_ok();
                seen.lock().unwrap().push(body);
                if ok {
                    axum::http::StatusCode::NO_CONTENT
                } else {
                    axum::http::StatusCode::BAD_REQUEST
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let endpoint = |secret: &str| {
        format!(
            "[[endpoints]]\nid = \"shop\"\nurl = \"http://{addr}/hook\"\nsecret = \"{secret}\"\n"
        )
    };
    write_config(dir.path(), &dir.path().join("lunas.db"), &endpoint(SECRET));
    let mut cmd = lunas(dir.path());
    cmd.args(["--config", "lunas.toml", "events", "test", "shop"]);
    let (code, out, err) = run(cmd).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("answered 204"), "{out}");
    assert!(out.contains("delivered"), "{out}");
    assert!(got.lock().unwrap()[0].contains("\"endpoint.test\""));
    assert!(!dir.path().join("lunas.db").exists(), "needs no database");

    // Signed with another secret: the handler refuses it, and the command says so.
    write_config(
        dir.path(),
        &dir.path().join("lunas.db"),
        &endpoint("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
    );
    let mut cmd = lunas(dir.path());
    cmd.args(["--config", "lunas.toml", "events", "test", "shop"]);
    let (code, out, _) = run(cmd).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("answered 400") && out.contains("not delivered"),
        "{out}"
    );

    let mut cmd = lunas(dir.path());
    cmd.args(["--config", "lunas.toml", "events", "test", "nope"]);
    let (code, _, err) = run(cmd).await;
    assert_ne!(code, 0);
    assert!(err.contains("no endpoint \"nope\" is configured"), "{err}");
}
