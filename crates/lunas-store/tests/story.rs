//! One story told to the store: what a gateway does to it, and what it must remember. Every
//! test runs against each available backend: SQLite always, PostgreSQL when
//! `LUNAS_TEST_POSTGRES_URL` names a server (a fresh database per test, dropped afterwards).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lunas_core::{Basis, Detail, Fact, NewObservation, ObservationVerdict as V, Source};
use lunas_protocol::{State, TxKind};
use lunas_store::sqlite::SqliteStore;
use lunas_store::{
    AttemptNext, AttemptRecord, EndpointFilter, Ingest, Registration, SessionRow, Store,
    StoreError, StoreOptions, TimelinePage, TxQuery,
};
use time::OffsetDateTime;

/// A database of one backend, empty at first; dropped (PostgreSQL) when the test ends.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
}

impl Db {
    fn label(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres { .. } => "postgres",
        }
    }

    /// Opens a store on this database (again: a restart, or another node).
    async fn open_with(&self, options: &StoreOptions) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(dir) => Arc::new(
                SqliteStore::open(dir.path().join("lunas.db"), options)
                    .await
                    .unwrap(),
            ),
            Db::Postgres { url, .. } => lunas_store::open(url, options).await.unwrap(),
        }
    }

    async fn open(&self) -> Arc<dyn Store> {
        self.open_with(&StoreOptions::default()).await
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres { admin, name, .. } = self {
            let (admin, db) = (admin.clone(), name.clone());
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(lunas_store::postgres::drop_database(&admin, &db))
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop the test database {name}: {dropped:?}");
            }
        }
    }
}

/// Every backend this run can test: SQLite, and PostgreSQL when `LUNAS_TEST_POSTGRES_URL` is
/// set (otherwise that leg is skipped, and says so).
async fn backends() -> Vec<Db> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut all = vec![Db::Sqlite(tempfile::tempdir().unwrap())];
    match std::env::var("LUNAS_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let name = format!(
                "lunas_test_{}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
            );
            let url = lunas_store::postgres::create_database(&admin, &name)
                .await
                .unwrap_or_else(|e| panic!("LUNAS_TEST_POSTGRES_URL={admin}: {e}"));
            all.push(Db::Postgres { admin, name, url });
        }
        _ => eprintln!(
            "SKIPPED the PostgreSQL leg: set LUNAS_TEST_POSTGRES_URL (e.g. postgres://root@127.0.0.1:5432/test) to run it"
        ),
    }
    all
}

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
        refunds: vec![],
        basis: Basis::Reported,
    }
}

#[tokio::test]
async fn a_callback_is_stored_with_its_evidence_and_events_and_survives_a_restart() {
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        a_callback_is_stored_with_its_evidence_and_events_and_survives_a_restart_on(&db).await;
    }
}

async fn a_callback_is_stored_with_its_evidence_and_events_and_survives_a_restart_on(db: &Db) {
    {
        let store = db.open().await;
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
    let store = db.open().await;
    let tx = store
        .transaction("iak", "order001")
        .await
        .unwrap()
        .expect("kept across restart");
    assert_eq!(tx.state, State::Succeeded);
    assert_eq!(tx.balance_after, Some(996_994_749));
    let timeline = store
        .timeline(tx.id, TimelinePage::newest(100))
        .await
        .unwrap();
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
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        the_same_callback_fifty_times_at_once_yields_one_event_on(&db).await;
    }
}

async fn the_same_callback_fifty_times_at_once_yields_one_event_on(db: &Db) {
    let store = db.open().await;
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
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        registration_is_idempotent_and_lists_filter_and_page_on(&db).await;
    }
}

async fn registration_is_idempotent_and_lists_filter_and_page_on(db: &Db) {
    let store = db.open().await;
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
            origin: "registration",
            order: None,
            lease: None,
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
    // A part of a ref, of a customer number, case as stored.
    for part in ["3", "812"] {
        let found = store
            .list_transactions(&TxQuery {
                search: Some(part.into()),
                limit: 10,
                ..TxQuery::default()
            })
            .await
            .unwrap();
        assert!(
            found.items.iter().any(|t| t.reference == "r3"),
            "{part:?} finds r3"
        );
    }
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
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        a_locked_database_is_reported_unavailable_on(&db).await;
    }
}

async fn a_locked_database_is_reported_unavailable_on(db: &Db) {
    let options = StoreOptions {
        busy_timeout: Duration::from_millis(50),
        ..StoreOptions::default()
    };
    let store = db.open_with(&options).await;
    // Another process holds the lock a write needs: SQLite's database lock, or PostgreSQL's
    // lock on the transactions table.
    enum Locker {
        Sqlite(rusqlite::Connection),
        Postgres(sqlx::PgConnection),
    }
    let mut locker = match db {
        Db::Sqlite(dir) => {
            let c = rusqlite::Connection::open(dir.path().join("lunas.db")).unwrap();
            c.execute_batch("BEGIN EXCLUSIVE").unwrap();
            Locker::Sqlite(c)
        }
        Db::Postgres { url, .. } => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            Locker::Postgres(c)
        }
    };
    let err = store
        .ingest(Ingest::accepted(
            observation("iak", "x", "{}"),
            fact("x", State::Succeeded, None),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    match &mut locker {
        Locker::Sqlite(c) => c.execute_batch("ROLLBACK").unwrap(),
        Locker::Postgres(c) => {
            sqlx::raw_sql("ROLLBACK").execute(c).await.unwrap();
        }
    }
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
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        balances_are_kept_and_a_fall_below_the_threshold_is_announced_once_on(&db).await;
    }
}

async fn balances_are_kept_and_a_fall_below_the_threshold_is_announced_once_on(db: &Db) {
    let store = db.open().await;
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

/// Several nodes on one database: each store below is what one `lunas serve` process holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_callback_sent_to_three_nodes_at_once_decide_once() {
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        let nodes = [db.open().await, db.open().await, db.open().await];
        let mut tasks = Vec::new();
        for round in 0..30 {
            let store = Arc::clone(&nodes[round % 3]);
            tasks.push(tokio::spawn(async move {
                let reference = format!("multi-{}", round % 5);
                store
                    .ingest(Ingest::accepted(
                        observation("iak", &reference, "{}"),
                        fact(&reference, State::Succeeded, Some(1_000_000 - round as i64)),
                    ))
                    .await
                    .unwrap()
                    .verdict
            }));
        }
        let mut verdicts = Vec::new();
        for t in tasks {
            verdicts.push(t.await.unwrap());
        }
        assert_eq!(
            verdicts.iter().filter(|v| **v == V::Created).count(),
            5,
            "{}: one creation per ref: {verdicts:?}",
            db.label()
        );
        assert_eq!(verdicts.iter().filter(|v| **v == V::Duplicate).count(), 25);
        let events = nodes[1].events_after(0, 100).await.unwrap();
        assert_eq!(events.len(), 5, "one event per ref");
        // The feed is gap-free and in order, whichever node wrote what.
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        let health = nodes[2].provider_health().await.unwrap();
        assert_eq!(health[0].callbacks, 30, "every copy is counted once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_are_leased_to_one_node_and_come_back_when_the_lease_ends() {
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        let (a, b) = (db.open().await, db.open().await);
        let t0 = OffsetDateTime::now_utc();
        for i in 0..6 {
            a.register(Registration {
                provider_id: "iak".into(),
                reference: format!("chk{i}"),
                kind: TxKind::Prepaid,
                detail: Detail::default(),
                at: t0,
                check_after: Some(Duration::from_secs(60)),
                origin: "registration",
                order: None,
                lease: None,
            })
            .await
            .unwrap();
        }
        let due = t0 + Duration::from_secs(61);
        let lease = Duration::from_secs(30);
        let (got_a, got_b) = tokio::join!(
            a.claim_checks("iak", due, lease, 4),
            b.claim_checks("iak", due, lease, 4)
        );
        let (got_a, got_b) = (got_a.unwrap(), got_b.unwrap());
        let mut ids: Vec<i64> = got_a.iter().chain(&got_b).map(|t| t.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            got_a.len() + got_b.len(),
            "{}: no transaction leased twice",
            db.label()
        );
        assert_eq!(ids.len(), 6, "all six due checks are leased");
        assert!(a
            .claim_checks("iak", due, lease, 10)
            .await
            .unwrap()
            .is_empty());
        let forced = b.claim_check(ids[0], due, lease).await.unwrap();
        assert!(!forced, "a forced check waits for the lease");
        // The node holding them dies: once the lease ends, another node takes them all.
        let later = due + lease + Duration::from_millis(1);
        assert_eq!(
            b.claim_checks("iak", later, lease, 10).await.unwrap().len(),
            6
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_keep_order_per_transaction_whichever_node_claims() {
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        let (a, b) = (db.open().await, db.open().await);
        let endpoints = [EndpointFilter {
            id: "app".into(),
            events: vec!["*".into()],
        }];
        a.init_endpoints(&endpoints).await.unwrap();
        b.init_endpoints(&endpoints).await.unwrap();
        for (state, body) in [(State::Pending, "p"), (State::Succeeded, "s")] {
            a.ingest(Ingest::accepted(
                observation("iak", "ordered", body),
                fact("ordered", state, None),
            ))
            .await
            .unwrap();
        }
        let now = OffsetDateTime::now_utc();
        let (fa, fb) = tokio::join!(
            a.fan_out(&endpoints, now, 100),
            b.fan_out(&endpoints, now, 100)
        );
        assert_eq!(
            fa.unwrap() + fb.unwrap(),
            2,
            "{}: each delivery made once",
            db.label()
        );
        let lease = Duration::from_secs(30);
        let app = ["app".to_owned()];
        let (ca, cb) = tokio::join!(
            a.claim_deliveries(now, lease, 10, &app, false),
            b.claim_deliveries(now, lease, 10, &app, false)
        );
        let claimed: Vec<_> = ca.unwrap().into_iter().chain(cb.unwrap()).collect();
        assert_eq!(claimed.len(), 1, "only the first event may be in flight");
        assert_eq!(claimed[0].event.event_type.as_str(), "transaction.pending");
        // Its node dies mid-attempt; after the lease the other node retries it, and only once
        // it is delivered does the second event become claimable.
        let later = now + lease + Duration::from_millis(1);
        let again = b
            .claim_deliveries(later, lease, 10, &app, false)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery_id, claimed[0].delivery_id);
        b.record_attempt(AttemptRecord {
            delivery_id: again[0].delivery_id,
            attempt: lunas_store::Attempt {
                at: later,
                status: Some(200),
                latency_us: 3_000,
                response: None,
                error: None,
            },
            next: AttemptNext::Delivered,
        })
        .await
        .unwrap();
        let next = a
            .claim_deliveries(later, lease, 10, &app, false)
            .await
            .unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].event.event_type.as_str(), "transaction.succeeded");
        let stats = b.endpoint_stats().await.unwrap();
        assert_eq!((stats[0].pending, stats[0].delivered), (1, 1));
    }
}

#[tokio::test]
async fn a_dead_letter_holds_later_events_unless_the_claim_goes_past_it() {
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        let store = db.open().await;
        let endpoints = [EndpointFilter {
            id: "app".into(),
            events: vec!["*".into()],
        }];
        store.init_endpoints(&endpoints).await.unwrap();
        for (state, body) in [(State::Pending, "p"), (State::Succeeded, "s")] {
            store
                .ingest(Ingest::accepted(
                    observation("iak", "dead-first", body),
                    fact("dead-first", state, None),
                ))
                .await
                .unwrap();
        }
        let now = OffsetDateTime::now_utc();
        store.fan_out(&endpoints, now, 100).await.unwrap();
        let lease = Duration::from_secs(30);
        let app = ["app".to_owned()];
        let first = store
            .claim_deliveries(now, lease, 10, &app, false)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        store
            .record_attempt(AttemptRecord {
                delivery_id: first[0].delivery_id,
                attempt: lunas_store::Attempt {
                    at: now,
                    status: Some(500),
                    latency_us: 1_000,
                    response: None,
                    error: None,
                },
                next: AttemptNext::Dead,
            })
            .await
            .unwrap();
        assert!(store
            .claim_deliveries(now, lease, 10, &app, false)
            .await
            .unwrap()
            .is_empty());
        let stats = store.endpoint_stats().await.unwrap();
        assert_eq!((stats[0].pending, stats[0].dead, stats[0].held), (1, 1, 1));
        let past = store
            .claim_deliveries(now, lease, 10, &app, true)
            .await
            .unwrap();
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].event.event_type.as_str(), "transaction.succeeded");
    }
}

#[tokio::test]
async fn timelines_come_in_pages_of_observations_newest_first() {
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        let store = db.open().await;
        // Eleven distinct messages about one transaction (each body differs).
        for i in 0..11 {
            let state = if i == 0 {
                State::Pending
            } else {
                State::Succeeded
            };
            store
                .ingest(Ingest::accepted(
                    observation("iak", "paged", &format!("{{\"n\":{i}}}")),
                    fact("paged", state, None),
                ))
                .await
                .unwrap();
        }
        let tx = store.transaction("iak", "paged").await.unwrap().unwrap();
        let mut seen = Vec::new();
        let mut page = TimelinePage::newest(4);
        loop {
            let t = store.timeline(tx.id, page).await.unwrap();
            let bodies: Vec<String> = t
                .observations
                .iter()
                .map(|o| String::from_utf8(o.body.clone()).unwrap())
                .collect();
            assert!(bodies.len() <= 4);
            // Each page is in time order, and comes before the page already seen.
            seen.splice(0..0, bodies);
            assert_eq!(t.events.len(), 2, "events come whole");
            match t.older_observations {
                Some(before) => page.before = Some(before),
                None => break,
            }
        }
        let expected: Vec<String> = (0..11).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(seen, expected);
    }
}

/// Copies of a message that change nothing, each different (padded apart): a transaction keeps
/// at most its cap of observations, and an account keeps at most its budget of their bodies
/// a minute, however many transactions the copies name; the rest are counted.
#[tokio::test]
async fn evidence_of_messages_that_change_nothing_is_bounded_per_transaction_and_per_account() {
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        let store = db.open().await;
        let t0 = OffsetDateTime::now_utc() - time::Duration::hours(2);
        let at = |obs: NewObservation, seconds: i64| NewObservation {
            received_at: t0 + time::Duration::seconds(seconds),
            ..obs
        };
        let copy = |reference: &str, n: usize, seconds: i64| {
            let body = format!(
                "{{\"ref\":\"{reference}\",\"pad\":\"{}{n}\"}}",
                "x".repeat(5000)
            );
            Ingest::accepted(
                at(observation("iak", reference, &body), seconds),
                fact(reference, State::Succeeded, None),
            )
        };
        // One transaction, 250 copies a second apart: the budget refills as fast, so only the
        // transaction's cap applies.
        let cap = lunas_core::MAX_OBSERVATIONS_PER_TRANSACTION as usize;
        for n in 0..cap + 50 {
            store.ingest(copy("capped", n, n as i64)).await.unwrap();
        }
        let tx = store.transaction("iak", "capped").await.unwrap().unwrap();
        let t = store
            .timeline(tx.id, TimelinePage::newest(500))
            .await
            .unwrap();
        assert_eq!(t.observations.len(), cap);
        let last = t.observations.last().unwrap();
        assert_eq!((last.verdict, last.repeats), (V::Duplicate, 50));
        assert_eq!(last.body.len(), lunas_core::UNCHANGED_BODY_CAP);

        // An hour later, 100 transactions, then 3 copies of each at one instant: the account's
        // budget keeps bodies of the first copies; the others are counted on the transaction's
        // earlier copy, or kept without a body when it has none.
        let later = 3600;
        let refs: Vec<String> = (0..100).map(|i| format!("spread-{i}")).collect();
        for r in &refs {
            let body = format!("{{\"ref\":\"{r}\"}}");
            store
                .ingest(Ingest::accepted(
                    at(observation("iak", r, &body), later),
                    fact(r, State::Succeeded, None),
                ))
                .await
                .unwrap();
        }
        for n in 1..=3 {
            for r in &refs {
                store.ingest(copy(r, n, later + 1)).await.unwrap();
            }
        }
        let budget = lunas_core::UNCHANGED_BODIES_PER_MINUTE as usize;
        let (mut with_body, mut without_body, mut repeats) = (0, 0, 0);
        for r in &refs {
            let tx = store.transaction("iak", r).await.unwrap().unwrap();
            let t = store
                .timeline(tx.id, TimelinePage::newest(50))
                .await
                .unwrap();
            assert_eq!(
                t.observations.len(),
                2,
                "{r}: created, then one row of copies"
            );
            let copies = &t.observations[1];
            assert_eq!(copies.verdict, V::Duplicate);
            assert!(copies.body_size > 5000 && copies.body_sha256.is_some());
            if copies.body.is_empty() {
                without_body += 1;
            } else {
                with_body += 1;
            }
            repeats += copies.repeats;
        }
        assert_eq!((with_body, without_body), (budget, 100 - budget));
        assert_eq!(repeats, 200, "every copy is counted");

        // Another account has a budget of its own.
        let body = "{\"other\":1}";
        let other = |b: &str, v| {
            Ingest::accepted(
                at(observation("iak-2", "own", b), v),
                fact("own", State::Succeeded, None),
            )
        };
        store.ingest(other(body, later)).await.unwrap();
        store
            .ingest(other("{\"other\":2}", later + 1))
            .await
            .unwrap();
        let tx = store.transaction("iak-2", "own").await.unwrap().unwrap();
        let t = store
            .timeline(tx.id, TimelinePage::newest(50))
            .await
            .unwrap();
        assert_eq!(t.observations[1].body, b"{\"other\":2}");
    }
}

#[tokio::test]
async fn sessions_expire_and_end_and_readiness_writes() {
    for db in backends().await {
        eprintln!("backend: {}", db.label());
        let store = db.open().await;
        store.ping().await.unwrap();
        let row = SessionRow {
            id_digest: "a".repeat(64),
            created_at: 1_000,
            expires_at: 2_000,
            remote_addr: Some("192.0.2.1".into()),
        };
        store.start_session(row.clone()).await.unwrap();
        assert_eq!(
            store.session(&row.id_digest, 1_999).await.unwrap(),
            Some(row.clone())
        );
        assert_eq!(
            store.session(&row.id_digest, 2_000).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(store.session(&"b".repeat(64), 1_500).await.unwrap(), None);
        // Another node sees it; ending it ends it for every node.
        let other = db.open().await;
        assert!(other
            .session(&row.id_digest, 1_500)
            .await
            .unwrap()
            .is_some());
        other.end_session(&row.id_digest, 1_500).await.unwrap();
        assert_eq!(store.session(&row.id_digest, 1_500).await.unwrap(), None);
    }
}
