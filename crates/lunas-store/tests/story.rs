//! One story told to the store: what a gateway does to it, and what it must remember.

use std::sync::Arc;
use std::time::Duration;

use lunas_core::{Detail, Fact, NewObservation, ObservationVerdict as V, Source};
use lunas_protocol::{State, TxKind};
use lunas_store::sqlite::SqliteStore;
use lunas_store::{Ingest, Registration, Store, StoreError, StoreOptions, TxQuery};
use time::OffsetDateTime;

fn observation(provider: &str, reference: &str, body: &str) -> NewObservation {
    NewObservation {
        provider_id: provider.into(),
        reference: Some(reference.into()),
        source: Source::Callback,
        received_at: OffsetDateTime::now_utc(),
        content_type: Some("application/json".into()),
        remote_addr: Some("127.0.0.1".into()),
        body: body.as_bytes().to_vec(),
        body_size: body.len(),
        verdict: None,
        detail: None,
    }
}

fn fact(reference: &str, state: State, balance: Option<i64>) -> Fact {
    Fact {
        kind: TxKind::Prepaid,
        reference: reference.into(),
        state: Some(state),
        detail: Detail {
            balance_after: balance,
            amount: Some(25_000),
            ..Detail::default()
        },
        payments: vec![],
    }
}

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("lunas.db"), &StoreOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_callback_is_stored_with_its_evidence_and_events_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir).await;
        let out = store
            .ingest(Ingest::accepted(
                observation("iak", "order001", "{}"),
                fact("order001", State::Pending, None),
            ))
            .await
            .unwrap();
        assert_eq!(out.verdict, V::Created);
        let out = store
            .ingest(Ingest::accepted(
                observation("iak", "order001", "{\"status\":\"1\"}"),
                fact("order001", State::Succeeded, Some(996_994_749)),
            ))
            .await
            .unwrap();
        assert_eq!(out.verdict, V::Applied);
        assert_eq!(out.events.len(), 1);
        let refused = store
            .ingest(Ingest::refused(NewObservation {
                verdict: Some(V::BadSignature),
                ..observation("iak", "order001", "forged")
            }))
            .await
            .unwrap();
        assert_eq!(
            (refused.verdict, refused.record.is_none()),
            (V::BadSignature, true)
        );
    }
    let store = open(&dir).await;
    let tx = store
        .transaction("iak", "order001")
        .await
        .unwrap()
        .expect("kept across restart");
    assert_eq!(tx.state, State::Succeeded);
    assert_eq!(tx.balance_after, Some(996_994_749));
    let timeline = store.timeline(tx.id).await.unwrap();
    let verdicts: Vec<_> = timeline.observations.iter().map(|o| o.verdict).collect();
    assert_eq!(
        verdicts,
        [V::Created, V::Applied, V::BadSignature],
        "a refusal is kept as evidence of its ref"
    );
    let types: Vec<_> = timeline
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["transaction.pending", "transaction.succeeded"]);
    let feed = store.events_after(0, 10).await.unwrap();
    assert_eq!(feed.len(), 2);
    assert!(store
        .events_after(feed[1].seq, 10)
        .await
        .unwrap()
        .is_empty());
    let health = store.provider_health().await.unwrap();
    assert_eq!(
        (
            health[0].callbacks,
            health[0].bad_signatures,
            health[0].last_balance
        ),
        (3, 1, Some(996_994_749))
    );
}

#[tokio::test]
async fn the_same_callback_fifty_times_at_once_yields_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir).await);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .ingest(Ingest::accepted(
                        observation("iak", "dup", "{}"),
                        fact("dup", State::Succeeded, None),
                    ))
                    .await
                    .unwrap()
                    .verdict
            })
        })
        .collect();
    let mut verdicts = Vec::new();
    for t in tasks {
        verdicts.push(t.await.unwrap());
    }
    assert_eq!(verdicts.iter().filter(|v| **v == V::Created).count(), 1);
    assert_eq!(verdicts.iter().filter(|v| **v == V::Duplicate).count(), 49);
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn registration_is_idempotent_and_lists_filter_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    for i in 0..5 {
        let reg = Registration {
            provider_id: "iak".into(),
            reference: format!("r{i}"),
            kind: TxKind::Prepaid,
            detail: Detail {
                customer_id: Some(format!("0812{i}")),
                ..Detail::default()
            },
            at: OffsetDateTime::now_utc(),
            check_after: None,
        };
        let (rec, created) = store.register(reg.clone()).await.unwrap();
        assert!(created);
        let (again, created) = store.register(reg).await.unwrap();
        assert!(!created);
        assert_eq!(again.id, rec.id);
    }
    let page = store
        .list_transactions(&TxQuery {
            limit: 2,
            ..TxQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|t| t.reference.as_str())
            .collect::<Vec<_>>(),
        ["r4", "r3"]
    );
    let next = store
        .list_transactions(&TxQuery {
            limit: 2,
            cursor: page.next_cursor,
            ..TxQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        next.items
            .iter()
            .map(|t| t.reference.as_str())
            .collect::<Vec<_>>(),
        ["r2", "r1"]
    );
    let found = store
        .list_transactions(&TxQuery {
            search: Some("08123".into()),
            limit: 10,
            ..TxQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].reference, "r3");
    let none = store
        .list_transactions(&TxQuery {
            state: Some(State::Succeeded),
            limit: 10,
            ..TxQuery::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

#[tokio::test]
async fn a_locked_database_is_reported_unavailable_and_nothing_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lunas.db");
    let options = StoreOptions {
        busy_timeout: Duration::from_millis(50),
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(&path, &options).await.unwrap();
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store
        .ingest(Ingest::accepted(
            observation("iak", "x", "{}"),
            fact("x", State::Succeeded, None),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    locker.execute_batch("ROLLBACK").unwrap();
    assert!(store.transaction("iak", "x").await.unwrap().is_none());
    // Once the lock is gone the same write goes through.
    let ok = store
        .ingest(Ingest::accepted(
            observation("iak", "x", "{}"),
            fact("x", State::Succeeded, None),
        ))
        .await
        .unwrap();
    assert_eq!(ok.verdict, V::Created);
}

#[tokio::test]
async fn balances_are_kept_and_a_fall_below_the_threshold_is_announced_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    for (i, balance) in [900_000, 900_000, 400_000, 300_000, 700_000, 200_000]
        .iter()
        .enumerate()
    {
        let mut ingest = Ingest::accepted(
            observation("iak", &format!("b{i}"), "{}"),
            fact(&format!("b{i}"), State::Succeeded, Some(*balance)),
        );
        ingest.low_balance = Some(500_000);
        store.ingest(ingest).await.unwrap();
    }
    let history = store
        .balance_history("iak", OffsetDateTime::UNIX_EPOCH, 100)
        .await
        .unwrap();
    let balances: Vec<i64> = history.iter().map(|s| s.balance).collect();
    assert_eq!(
        balances,
        [900_000, 400_000, 300_000, 700_000, 200_000],
        "repeats are not kept"
    );
    let low: Vec<_> = store
        .events_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type.as_str() == "provider.balance_low")
        .collect();
    assert_eq!(low.len(), 2, "once per fall below the threshold");
    assert_eq!(low[0].data["balance"], 400_000);
    assert_eq!(low[0].transaction_id, None);
    assert_eq!(low[1].data["balance"], 200_000);
}
