//! Evidence stays bounded: a replayed message is counted on the observation it repeats, a
//! transaction keeps a bounded number of observations of messages that changed nothing, refusals
//! are sampled (all counted), and a refused source's body is never read.

mod common;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};
use serde_json::Value;

/// A validly signed IAK callback for `reference` with an unknown field of `pad` bytes (IAK's
/// sign covers the ref only, so anyone who saw one callback can pad and replay it).
fn padded(reference: &str, status: PrepaidStatus, pad: &str) -> String {
    let mut body: Value =
        serde_json::from_str(&iak_body(reference, status, Format::Json, ApiVersion::V2)).unwrap();
    body["data"]["padding"] = Value::String(pad.to_owned());
    body.to_string()
}

fn kept(tx: &Value) -> Vec<(String, i64)> {
    tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "observation")
        .map(|e| {
            (
                e["verdict"].as_str().unwrap().to_owned(),
                e["repeats"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn metric(gw: &TestGateway, line: &str) -> String {
    let text = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("{line} in {text}"))
        .to_owned()
}

#[tokio::test]
async fn a_replayed_padded_callback_is_stored_once_and_counted() {
    let gw = TestGateway::start_http_only("").await;
    let big = "x".repeat(60_000);
    let body = padded("replayed", PrepaidStatus::Success, &big);
    for _ in 0..300 {
        assert_eq!(gw.callback("iak", body.clone(), &[]).await.0, 200);
    }
    let tx = gw.transaction("iak", "replayed").await.unwrap();
    assert_eq!(
        kept(&tx),
        [("created".to_owned(), 0), ("duplicate".to_owned(), 298)]
    );
    assert_eq!(gw.verdicts("iak", "replayed").await.len(), 300);
    assert_eq!(gw.event_types().await, ["transaction.succeeded"]);
    // The message that set the state keeps its whole body; the copy keeps 4 KB of it, with
    // its full size and digest.
    let observations: Vec<&serde_json::Value> = tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "observation")
        .collect();
    assert!(observations[0]["body"].as_str().unwrap().len() > 60_000);
    let copy = observations[1];
    assert!(copy["body"].as_str().unwrap().len() <= lunas_core::UNCHANGED_BODY_CAP);
    assert!(copy["body_size"].as_u64().unwrap() > 60_000);
    assert_eq!(copy["body_truncated"], true);
    assert_eq!(copy["body_sha256"], observations[0]["body_sha256"]);
}

/// Copies padded apart (IAK's sign covers only the ref) keep the account's budget of bodies a
/// minute; the rest are counted on the latest copy. The transaction's cap of observations is
/// tested at the store, where time can be made to pass.
#[tokio::test]
async fn copies_padded_apart_keep_a_budget_of_bodies_and_the_rest_are_counted() {
    let gw = TestGateway::start_http_only("").await;
    let started = std::time::Instant::now();
    // Every copy differs (a new padding each time), so none is a byte-for-byte repeat.
    for i in 0..250 {
        let body = padded("flooded", PrepaidStatus::Success, &format!("pad-{i}"));
        assert_eq!(gw.callback("iak", body, &[]).await.0, 200);
    }
    let (_, tx) = gw
        .get("/api/v1/transactions/iak/flooded?observations_limit=200")
        .await;
    let rows = kept(&tx);
    let copies = rows.len() - 1;
    assert!(
        budget_within(started.elapsed()).contains(&copies),
        "{rows:?}"
    );
    assert_eq!(tx["older_observations"], serde_json::Value::Null);
    assert_eq!(rows[0], ("created".to_owned(), 0));
    // Every copy is counted: a row each, the rest on the latest at the time.
    let counted: i64 = rows[1..].iter().map(|(_, repeats)| 1 + repeats).sum();
    assert_eq!(counted, 249);
    assert!(rows[1..].iter().all(|(verdict, _)| verdict == "duplicate"));
    // The API shows a page (50 by default) and the cursor of the older ones.
    let tx = gw.transaction("iak", "flooded").await.unwrap();
    assert_eq!(kept(&tx).len(), 50);
    let before = tx["older_observations"].as_i64().expect("a cursor");
    let (_, older) = gw
        .get(&format!(
            "/api/v1/transactions/iak/flooded?observations_before={before}&observations_limit=200"
        ))
        .await;
    assert_eq!(kept(&older).len(), rows.len() - 50);
    assert_eq!(older["older_observations"], serde_json::Value::Null);
    // A message that changes something is always kept, also past the budget.
    let failed = padded("flooded", PrepaidStatus::Failed, "a different outcome");
    gw.callback("iak", failed, &[]).await;
    let tx = gw.transaction("iak", "flooded").await.unwrap();
    assert_eq!(kept(&tx).last().unwrap().0, "conflict");
}

/// How many bodies the budget may have let through in `elapsed`: the burst, and one more for
/// every second of refill (60 a minute) while the test ran.
fn budget_within(elapsed: std::time::Duration) -> std::ops::RangeInclusive<usize> {
    let budget = lunas_core::UNCHANGED_BODIES_PER_MINUTE as usize;
    budget..=budget + elapsed.as_secs() as usize + 1
}

/// The budget is the account's, not the transaction's: copies spread over many transactions
/// keep no more bodies than copies of one.
#[tokio::test]
async fn copies_spread_over_many_transactions_keep_no_more() {
    let gw = TestGateway::start_http_only("").await;
    let started = std::time::Instant::now();
    let refs: Vec<String> = (0..50).map(|i| format!("spread-{i}")).collect();
    let pad = "p".repeat(20_000);
    for r in &refs {
        let body = padded(r, PrepaidStatus::Success, "");
        assert_eq!(gw.callback("iak", body, &[]).await.0, 200);
    }
    for round in 0..6 {
        for r in &refs {
            let body = padded(r, PrepaidStatus::Success, &format!("{pad}{round}"));
            assert_eq!(gw.callback("iak", body, &[]).await.0, 200);
        }
    }
    let (mut bodies, mut counted) = (0usize, 0i64);
    for r in &refs {
        let tx = gw.transaction("iak", r).await.unwrap();
        for o in tx["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "observation" && e["verdict"] == "duplicate")
        {
            bodies += usize::from(!o["body"].as_str().unwrap_or("").is_empty());
            counted += 1 + o["repeats"].as_i64().unwrap();
        }
    }
    assert_eq!(counted, 300, "every copy is counted");
    let allowed = budget_within(started.elapsed());
    assert!(
        allowed.contains(&bodies),
        "{bodies} bodies kept, {allowed:?} allowed"
    );
}

#[tokio::test]
async fn forged_callbacks_are_sampled_as_evidence_and_all_counted() {
    let gw = TestGateway::start_http_only("").await;
    assert_eq!(
        gw.callback(
            "iak",
            iak_body(
                "known",
                PrepaidStatus::Success,
                Format::Json,
                ApiVersion::V2
            ),
            &[]
        )
        .await
        .0,
        200
    );
    for i in 0..100 {
        // A wrong sign, a different body every time, naming the known ref.
        let mut forged: Value = serde_json::from_str(&padded(
            "known",
            PrepaidStatus::Failed,
            &format!("forged-{i}"),
        ))
        .unwrap();
        forged["data"]["sign"] = Value::String("0".repeat(32));
        assert_eq!(gw.callback("iak", forged.to_string(), &[]).await.0, 401);
    }
    let tx = gw.transaction("iak", "known").await.unwrap();
    let forged: Vec<_> = kept(&tx)
        .into_iter()
        .filter(|(v, _)| v == "bad_signature")
        .collect();
    assert!(
        !forged.is_empty() && forged.len() <= lunas::app::REFUSALS_KEPT_PER_MINUTE as usize,
        "a sample is kept: {forged:?}"
    );
    assert!(metric(
        &gw,
        r#"lunas_callbacks_total{provider="iak",verdict="bad_signature"}"#
    )
    .await
    .ends_with(" 100"));
}

#[tokio::test]
async fn a_forbidden_source_is_refused_before_its_body_is_read() {
    let gw = TestGateway::start_http_only(&format!(
        r#"
[[providers]]
id = "fenced"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
callback_ips = ["52.220.38.194"]
"#
    ))
    .await;
    let body = padded("fenced-1", PrepaidStatus::Success, &"y".repeat(60_000));
    let size = body.len();
    let (status, answer) = gw.callback("fenced", body, &[]).await;
    assert_error((status, &answer), 403, "forbidden_source");
    // What was kept of it: who, when and how big, not the body.
    let (rows, longest, declared) = kept_bodies(&gw, "fenced").await;
    assert_eq!((rows, longest, declared), (1, 0, size as i64));
}

/// For the observations of `provider`: how many, the longest body kept, the largest size seen.
async fn kept_bodies(gw: &TestGateway, provider: &str) -> (i64, i64, i64) {
    let sql = "SELECT count(*), COALESCE(max(length(body)), 0), COALESCE(max(body_size), 0) \
               FROM observations WHERE provider_id = ";
    if postgres_admin_url().is_some() {
        use sqlx::{Connection, Row};
        let mut c = sqlx::PgConnection::connect(&storage_url(&gw.db_path()))
            .await
            .unwrap();
        let row = sqlx::query(&format!("{sql}$1"))
            .bind(provider)
            .fetch_one(&mut c)
            .await
            .unwrap();
        (
            row.get::<i64, _>(0),
            row.get::<i32, _>(1) as i64,
            row.get::<i64, _>(2),
        )
    } else {
        let c = rusqlite::Connection::open(gw.db_path()).unwrap();
        c.query_row(&format!("{sql}?1"), [provider], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
    }
}
