//! Retention: after `[retention]`'s periods, raw bodies are erased (their digest stays),
//! customer goods are erased from the transaction, its events and its bodies, and old events
//! and balance samples go — by `lunas serve` on its interval, or `lunas prune` at once.

mod common;

use std::time::Duration;

use common::process::*;
use common::*;
use lunas::config::RetentionConfig;
use lunas::retention::Retention;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(86_400);

async fn retention(gw: &TestGateway) -> Retention {
    let store = lunas_store::open(&storage_url(&gw.db_path()), &Default::default())
        .await
        .unwrap();
    Retention::new(store, RetentionConfig::default())
}

#[tokio::test]
async fn goods_and_bodies_are_erased_after_their_period_and_old_events_deleted() {
    let gw = TestGateway::start_http_only("").await;
    let mut cb = prepaid_callback("kept-1", PrepaidStatus::Success, IAK_USER, IAK_KEY);
    cb.pin = Some("PIN-0123-4567".into());
    cb.sn = Some("5555-6666-7777-8888".into());
    let body = cb.encode(Format::Json, ApiVersion::V2);
    assert_eq!(gw.callback("iak", body.clone(), &[]).await.0, 200);
    assert_eq!(gw.callback("iak", body, &[]).await.0, 200);
    // A transaction still pending keeps everything it has.
    let pending = iak_body(
        "open-1",
        PrepaidStatus::Process,
        Format::Json,
        ApiVersion::V2,
    );
    assert_eq!(gw.callback("iak", pending, &[]).await.0, 200);

    let r = retention(&gw).await;
    let now = OffsetDateTime::now_utc();
    // Nothing is old yet.
    assert_eq!(r.run_once(now).await.unwrap().total(), 0);

    // 91 days on: goods and raw bodies go; what happened stays readable.
    let report = r.run_once(now + 91 * DAY).await.unwrap();
    assert_eq!(report.goods, 1, "{report:?}");
    assert!(report.bodies >= 1, "{report:?}");
    let tx = gw.transaction("iak", "kept-1").await.unwrap();
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["pin"], serde_json::Value::Null);
    assert_eq!(tx["serial_number"], serde_json::Value::Null);
    assert!(tx["goods_erased_at"].is_string(), "{tx}");
    let observations: Vec<_> = tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "observation")
        .collect();
    assert_eq!(observations.len(), 2);
    for o in &observations {
        assert_eq!(o["body"], "", "{o}");
        assert!(o["body_pruned_at"].is_string(), "{o}");
        assert_eq!(o["body_sha256"].as_str().unwrap().len(), 64);
        assert!(o["body_size"].as_u64().unwrap() > 100);
    }
    assert!(!tx.to_string().contains("PIN-0123-4567"));
    let events = gw.events().await;
    assert!(!serde_json::to_string(&events)
        .unwrap()
        .contains("PIN-0123-4567"));
    assert!(!serde_json::to_string(&events)
        .unwrap()
        .contains("5555-6666"));
    let open = gw.transaction("iak", "open-1").await.unwrap();
    assert_eq!(open["state"], "pending");
    assert!(open["goods_erased_at"].is_null());

    // A second run finds nothing more to do at the same time.
    assert_eq!(r.run_once(now + 91 * DAY).await.unwrap().total(), 0);

    // 401 days on: the events go; the transactions stay.
    let report = r.run_once(now + 401 * DAY).await.unwrap();
    assert_eq!(report.events, 2, "{report:?}");
    assert!(gw.events().await.is_empty());
    assert!(gw.transaction("iak", "kept-1").await.is_some());
}

#[tokio::test]
async fn lunas_prune_applies_the_configured_retention_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lunas.db");
    let config = dir.path().join("lunas.toml");
    std::fs::write(
        &config,
        config_text(&db, "[retention]\nbodies = \"off\"\nevents = \"2h\"\n"),
    )
    .unwrap();
    let mut cmd = lunas(dir.path());
    cmd.args(["migrate", "--config"]).arg(&config);
    assert_eq!(run(cmd).await.0, 0);
    let mut cmd = lunas(dir.path());
    cmd.args(["prune", "--config"]).arg(&config);
    let (code, out, err) = run(cmd).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("raw bodies erased: 0"), "{out}");
    assert!(out.contains("events deleted: 0"), "{out}");
    drop_storage(&db);

    // A period shorter than an hour is a mistake, named.
    std::fs::write(&config, config_text(&db, "[retention]\ngoods = \"5m\"\n")).unwrap();
    let mut cmd = lunas(dir.path());
    cmd.args(["prune", "--config"]).arg(&config);
    let (code, _, err) = run(cmd).await;
    assert_ne!(code, 0);
    assert!(err.contains("retention.goods"), "{err}");
}
