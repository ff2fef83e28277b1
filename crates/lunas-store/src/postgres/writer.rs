//! The writer task of one node: group commit on PostgreSQL.
//!
//! Every write of this process goes through one task that owns one connection. It waits for
//! the first queued job, takes whatever else is queued (up to `max_batch`), and runs the batch
//! as one transaction in two phases:
//!
//! 1. **Jobs**, each in its own savepoint. A job locks the transaction row it decides on
//!    (`SELECT ... FOR NO KEY UPDATE`; a new ref is inserted with `ON CONFLICT DO NOTHING` and,
//!    when another node won the insert, locked and decided again), so `decide` always runs on
//!    the latest committed state, whichever node holds the other copy of a callback. Jobs that
//!    lock a known row run first, sorted by (provider, ref), so that batches of different
//!    nodes take shared rows in one order. Claims take rows with `FOR UPDATE SKIP LOCKED` and
//!    never wait. A job that fails rolls back its savepoint alone; should the batch still be
//!    chosen as a deadlock victim, it is rolled back whole and run again (nothing of it was
//!    answered yet).
//! 2. **The tail**, under the feed lock (a transaction-level advisory lock, held to commit): the
//!    jobs' events are inserted, then the provider counters, balance samples and
//!    `provider.balance_low` are updated. Because every event is inserted under that lock and
//!    the lock is released only by the commit, event `seq` order is commit order across all
//!    nodes: a feed reader (fan-out, `GET /events`) can never see seq N+1 before seq N and skip
//!    it. The tail waits for nothing but the lock, so it cannot deadlock with the jobs phase of
//!    another node; the shared counter rows are only written here, so they are never contended
//!    outside it.
//!
//! Then one commit (`synchronous_commit = on`: durable before it returns), and only then is every
//! job answered. A commit that fails fails the whole batch and nothing of it is acknowledged.

use lunas_core::rate::KeyedBuckets;
use lunas_core::{
    decide, from_millis, give_up, to_millis, Decision, NewEvent, NewObservation,
    ObservationVerdict, Source, Trust, TxRecord,
};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::rows::{tx_from_row, TX_COLUMNS};
use super::unavailable;
use crate::model::*;
use crate::ops::{Keep, Prepared, WriteOp, WriteResult};
use crate::StoreError;

/// The advisory lock every event insert is made under (see the module documentation).
pub(crate) const FEED_LOCK: i64 = 0x6c75_6e61_7301;

/// What a job leaves for the tail of the batch: its events and its provider counters.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    at: i64,
    events: Vec<(i64, NewEvent)>,
    counted: Option<Counted>,
}

impl Tail {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.counted.is_none()
    }
}

/// One observation's contribution to its provider's counters and balance history.
#[derive(Debug)]
struct Counted {
    provider_id: String,
    callback: bool,
    rejected: bool,
    bad_signature: bool,
    balance: Option<i64>,
    low_balance: Option<i64>,
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteResult, StoreError>>,
}

/// The handle the store keeps; dropping it lets the task finish its queue and end.
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

/// How many jobs may wait for the writer before submitters wait too (backpressure).
const QUEUE: usize = 8192;

/// How often a batch chosen as a deadlock victim is run again.
const BATCH_TRIES: usize = 5;

impl Writer {
    pub(crate) fn start(pool: PgPool, max_batch: usize, lock_timeout_ms: u64) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx, max_batch.max(1), lock_timeout_ms));
        Writer { queue }
    }

    /// Queues a write and waits until it is committed (or failed).
    pub(crate) async fn submit(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Job>, max_batch: usize, lock_timeout_ms: u64) {
    let mut jobs = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut tries = 0;
        let results = loop {
            match commit_batch(&pool, &jobs, lock_timeout_ms).await {
                Ok(results) => break results,
                // A deadlock victim (or serialization failure): everything rolled back, so
                // the other node's batch goes on; do the whole batch again.
                Err(e) if retryable(&e) && tries < BATCH_TRIES => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "group commit retried");
                }
                Err(e) => {
                    tracing::warn!(error = %e, jobs = jobs.len(), "group commit failed; nothing of it is acknowledged");
                    let err = unavailable(e);
                    break jobs.iter().map(|_| Err(err.clone())).collect();
                }
            }
        };
        for (job, result) in jobs.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

type Staged = Result<(WriteResult, Tail), StoreError>;

/// The transaction row a job locks, if it is known before running it: jobs run in this order
/// (keyed jobs first, by key; the rest as queued), so that two nodes' batches lock the rows
/// they share in the same order and do not deadlock.
fn lock_key(op: &WriteOp) -> Option<(&str, &str)> {
    match op {
        WriteOp::Ingest(
            Ingest {
                observation,
                fact: Some(fact),
                ..
            },
            _,
        ) => Some((observation.provider_id.as_str(), fact.reference.as_str())),
        WriteOp::Register(r) => Some((r.provider_id.as_str(), r.reference.as_str())),
        _ => None,
    }
}

/// Runs one batch. `Err` means the transaction as a whole failed (nothing committed).
async fn commit_batch(
    pool: &PgPool,
    jobs: &[Job],
    lock_timeout_ms: u64,
) -> Result<Vec<Result<WriteResult, StoreError>>, sqlx::Error> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| {
        let key = lock_key(&jobs[i].op);
        (key.is_none(), key, i)
    });
    let mut tx = pool.begin().await?;
    // Per transaction, so that a connection pooler in transaction mode cannot lose them.
    sqlx::query(
        "SELECT set_config('lock_timeout', $1, true), set_config('synchronous_commit', 'on', true)",
    )
    .bind(format!("{lock_timeout_ms}ms"))
    .execute(&mut *tx)
    .await?;
    let mut staged: Vec<(usize, Staged)> = Vec::with_capacity(jobs.len());
    for &i in &order {
        staged.push((i, run_job(&mut tx, &jobs[i].op).await?));
    }
    if staged
        .iter()
        .any(|(_, s)| matches!(s, Ok((_, tail)) if !tail.is_empty()))
    {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(FEED_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    let mut results: Vec<Option<Result<WriteResult, StoreError>>> =
        (0..jobs.len()).map(|_| None).collect();
    for (i, s) in staged {
        results[i] = Some(match s {
            Ok((mut result, tail)) => {
                finish(&mut tx, &mut result, tail).await?;
                Ok(result)
            }
            Err(e) => Err(e),
        });
    }
    tx.commit().await?;
    Ok(results
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect())
}

/// Whether a failed transaction may succeed if tried again at once.
fn retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// Runs one job in its savepoint. A job that fails rolls back to it and fails alone; the
/// outer `Err` fails the transaction (a broken connection, or a deadlock, which only a full
/// rollback resolves: the locks the batch's earlier jobs hold are part of the cycle).
async fn run_job(c: &mut PgConnection, op: &WriteOp) -> Result<Staged, sqlx::Error> {
    sqlx::query("SAVEPOINT job").execute(&mut *c).await?;
    match apply(c, op).await {
        Ok(out) => {
            sqlx::query("RELEASE SAVEPOINT job")
                .execute(&mut *c)
                .await?;
            Ok(Ok(out))
        }
        Err(e) if retryable(&e) => Err(e),
        Err(e) => {
            sqlx::query("ROLLBACK TO SAVEPOINT job")
                .execute(&mut *c)
                .await?;
            sqlx::query("RELEASE SAVEPOINT job")
                .execute(&mut *c)
                .await?;
            Ok(Err(unavailable(e)))
        }
    }
}

fn plain(result: WriteResult) -> (WriteResult, Tail) {
    (result, Tail::default())
}

async fn apply(c: &mut PgConnection, op: &WriteOp) -> Result<(WriteResult, Tail), sqlx::Error> {
    use super::delivery;
    Ok(match op {
        WriteOp::Ingest(i, prepared) => {
            let (ingested, tail) = ingest(c, i, prepared).await?;
            (WriteResult::Ingested(ingested), tail)
        }
        WriteOp::Register(reg) => {
            let (rec, created) = register(c, reg).await?;
            plain(WriteResult::Registered(rec, created))
        }
        WriteOp::Ping { now } => {
            // Ready means a write could proceed: nothing holds a lock that blocks writing
            // transactions (the writes' own lock, taken and released at once), and a row can
            // be written and committed.
            sqlx::query("LOCK TABLE transactions IN ROW EXCLUSIVE MODE")
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO heartbeat (id, at) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            )
            .bind(now)
            .execute(&mut *c)
            .await?;
            plain(WriteResult::Pong)
        }
        WriteOp::StartSession(row) => {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(row.created_at)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "INSERT INTO sessions (id_digest, created_at, expires_at, remote_addr) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&row.id_digest)
            .bind(row.created_at)
            .bind(row.expires_at)
            .bind(&row.remote_addr)
            .execute(&mut *c)
            .await?;
            plain(WriteResult::Pong)
        }
        WriteOp::Prune {
            now,
            cutoffs,
            batch,
        } => plain(WriteResult::Pruned(prune(c, *now, cutoffs, *batch).await?)),
        WriteOp::EndSession { id_digest, now } => {
            sqlx::query("DELETE FROM sessions WHERE id_digest = $1 OR expires_at <= $2")
                .bind(id_digest)
                .bind(now)
                .execute(&mut *c)
                .await?;
            plain(WriteResult::Pong)
        }
        WriteOp::InitEndpoints(endpoints) => {
            delivery::init_endpoints(c, endpoints).await?;
            plain(WriteResult::Pong)
        }
        WriteOp::FanOut {
            endpoints,
            now,
            limit,
        } => plain(WriteResult::Count(
            delivery::fan_out(c, endpoints, *now, *limit).await?,
        )),
        WriteOp::Claim {
            now,
            lease_ms,
            limit,
            endpoints,
            past_dead,
        } => plain(WriteResult::Claimed(
            delivery::claim(c, *now, *lease_ms, *limit, endpoints, *past_dead).await?,
        )),
        WriteOp::RecordAttempt(record) => {
            delivery::record_attempt(c, record).await?;
            plain(WriteResult::Pong)
        }
        WriteOp::Redeliver {
            what,
            endpoints,
            now,
        } => plain(WriteResult::Count(
            delivery::redeliver(c, what, endpoints, *now).await?,
        )),
        WriteOp::ClaimChecks {
            provider_id,
            now,
            lease_ms,
            limit,
        } => plain(WriteResult::Checks(
            claim_checks(c, provider_id, *now, *lease_ms, *limit).await?,
        )),
        WriteOp::ClaimCheckOf { id, now, lease_ms } => plain(WriteResult::Flag(
            claim_check_of(c, *id, *now, *lease_ms).await?,
        )),
        WriteOp::RecordCheck(check) => {
            let (ingested, tail) = record_check(c, check).await?;
            (WriteResult::Ingested(ingested), tail)
        }
    })
}

/// The tail of one job, under the feed lock: its events, then its provider counters.
async fn finish(
    c: &mut PgConnection,
    result: &mut WriteResult,
    tail: Tail,
) -> Result<(), sqlx::Error> {
    if tail.is_empty() {
        return Ok(());
    }
    let mut events = Vec::with_capacity(tail.events.len() + 1);
    for (tx_id, e) in &tail.events {
        events.push(insert_event(c, Some(*tx_id), tail.at, e).await?);
    }
    if let Some(counted) = &tail.counted {
        events.extend(sample_balance(c, counted, tail.at).await?);
        count_for_provider(c, counted, tail.at).await?;
    }
    if let WriteResult::Ingested(ingested) = result {
        ingested.events = events;
    }
    Ok(())
}

async fn select_tx(
    c: &mut PgConnection,
    provider_id: &str,
    reference: &str,
    lock: bool,
) -> Result<Option<TxRecord>, sqlx::Error> {
    let sql = format!(
        "SELECT {TX_COLUMNS} FROM transactions WHERE provider_id = $1 AND ref = $2{}",
        if lock { " FOR NO KEY UPDATE" } else { "" }
    );
    sqlx::query(&sql)
        .bind(provider_id)
        .bind(reference)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| tx_from_row(&r))
        .transpose()
}

async fn lock_tx_by_id(c: &mut PgConnection, id: i64) -> Result<TxRecord, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {TX_COLUMNS} FROM transactions WHERE id = $1 FOR NO KEY UPDATE"
    ))
    .bind(id)
    .fetch_one(&mut *c)
    .await?;
    tx_from_row(&row)
}

/// Inserts a new transaction or updates a stored one; returns it with its id, or `None` when
/// another node inserted the same ref first (the caller locks that row and decides again).
/// The reconciler's columns (`next_check_at`, `check_attempts`, lease) are kept by [`schedule`].
async fn save_tx(c: &mut PgConnection, rec: &TxRecord) -> Result<Option<TxRecord>, sqlx::Error> {
    let payments = serde_json::to_string(&rec.payments).expect("payments serialise");
    let unconfirmed = rec
        .unconfirmed
        .as_ref()
        .map(|u| serde_json::to_string(u).expect("claims serialise"));
    let sql = if rec.id == 0 {
        "INSERT INTO transactions (kind, state, needs_review, amount, product_code, customer_id, \
         provider_transaction_id, order_id, response_code, message, serial_number, pin, activation_code, \
         balance_after, total_paid, payments, created_at, updated_at, unconfirmed, extra, provider_id, ref) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
         ON CONFLICT (provider_id, ref) DO NOTHING RETURNING id"
    } else {
        // The key columns are never written, so this takes a FOR NO KEY UPDATE lock only.
        "UPDATE transactions SET kind = $1, state = $2, needs_review = $3, amount = $4, product_code = $5, \
         customer_id = $6, provider_transaction_id = $7, order_id = $8, response_code = $9, message = $10, \
         serial_number = $11, pin = $12, activation_code = $13, balance_after = $14, total_paid = $15, \
         payments = $16, created_at = $17, updated_at = $18, unconfirmed = $19, extra = $20 \
         WHERE provider_id = $21 AND ref = $22 AND id = $23 RETURNING id"
    };
    let mut query = sqlx::query(sql)
        .bind(rec.kind.as_str())
        .bind(rec.state.as_str())
        .bind(rec.needs_review)
        .bind(rec.amount)
        .bind(&rec.product_code)
        .bind(&rec.customer_id)
        .bind(&rec.provider_transaction_id)
        .bind(&rec.order_id)
        .bind(&rec.response_code)
        .bind(&rec.message)
        .bind(&rec.serial_number)
        .bind(&rec.pin)
        .bind(&rec.activation_code)
        .bind(rec.balance_after)
        .bind(rec.total_paid)
        .bind(payments)
        .bind(to_millis(rec.created_at))
        .bind(to_millis(rec.updated_at))
        .bind(unconfirmed)
        .bind(rec.extra.to_column())
        .bind(&rec.provider_id)
        .bind(&rec.reference);
    if rec.id != 0 {
        query = query.bind(rec.id);
    }
    let row = query.fetch_optional(&mut *c).await?;
    Ok(match row {
        Some(row) => {
            let mut saved = rec.clone();
            saved.id = row.try_get(0)?;
            Some(saved)
        }
        None if rec.id == 0 => None,
        None => return Err(sqlx::Error::RowNotFound),
    })
}

#[derive(Debug, Clone, Copy)]
enum When {
    /// Keep the scheduled check; with none, schedule one this long from now.
    Keep(Option<std::time::Duration>),
    /// Check at this time (ms), or never.
    At(Option<i64>),
}

/// Sets when the reconciler asks next (as the SQLite backend does): `Keep` leaves a scheduled
/// check alone (or schedules one `first` from now when there is none), `At` sets it, and a
/// transaction with nothing to ask about is unscheduled whatever is asked. Counting an attempt
/// releases the check lease.
async fn schedule(
    c: &mut PgConnection,
    mut rec: TxRecord,
    when: When,
    now: i64,
    count_attempt: bool,
) -> Result<TxRecord, sqlx::Error> {
    let next = if !rec.wants_check(from_millis(now)) {
        None
    } else {
        match when {
            When::Keep(first) => rec
                .next_check_at
                .map(to_millis)
                .or(first.map(|d| now + d.as_millis() as i64)),
            When::At(at) => at,
        }
    };
    sqlx::query(
        "UPDATE transactions SET next_check_at = $1, check_attempts = check_attempts + $2, \
         check_lease_until = CASE WHEN $2 = 1 THEN NULL ELSE check_lease_until END WHERE id = $3",
    )
    .bind(next)
    .bind(i64::from(count_attempt))
    .bind(rec.id)
    .execute(&mut *c)
    .await?;
    rec.next_check_at = next.map(from_millis);
    if count_attempt {
        rec.check_attempts += 1;
    }
    Ok(rec)
}

async fn insert_event(
    c: &mut PgConnection,
    tx_id: Option<i64>,
    at: i64,
    e: &NewEvent,
) -> Result<Event, sqlx::Error> {
    let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO events (id, transaction_id, type, created_at, data) VALUES ($1, $2, $3, $4, $5) \
         RETURNING seq",
    )
    .bind(&id)
    .bind(tx_id)
    .bind(e.event_type.as_str())
    .bind(at)
    .bind(e.data.to_string())
    .fetch_one(&mut *c)
    .await?;
    Ok(Event {
        seq,
        id,
        event_type: e.event_type,
        transaction_id: tx_id,
        created_at: from_millis(at),
        data: e.data.clone(),
    })
}

type Committed = (ObservationVerdict, Option<TxRecord>, Vec<(i64, NewEvent)>);

/// Saves a decision's record (when changed) and its schedule, and stages its events for the
/// tail. `None`: the record was new and another node inserted the same ref first.
async fn commit_decision(
    c: &mut PgConnection,
    decision: Decision,
    at: i64,
    when: When,
    count_attempt: bool,
) -> Result<Option<Committed>, sqlx::Error> {
    let record = if decision.changed {
        match save_tx(c, &decision.record).await? {
            Some(saved) => saved,
            None => return Ok(None),
        }
    } else {
        decision.record
    };
    if record.id == 0 {
        // Nothing was created (a message about an unknown ref that states nothing usable).
        return Ok(Some((decision.verdict, None, Vec::new())));
    }
    let record = schedule(c, record, when, at, count_attempt).await?;
    let events = decision
        .events
        .into_iter()
        .map(|e| (record.id, e))
        .collect();
    Ok(Some((decision.verdict, Some(record), events)))
}

async fn insert_observation(
    c: &mut PgConnection,
    obs: &NewObservation,
    digest: &str,
    budget: Option<&KeyedBuckets>,
    verdict: ObservationVerdict,
    record: Option<&TxRecord>,
    linked: Option<i64>,
) -> Result<i64, sqlx::Error> {
    let transaction_id = record.map(|r| r.id).or(linked);
    let at = to_millis(obs.received_at);
    let keep = match (transaction_id, verdict.changes_nothing()) {
        (Some(tx), true) => {
            let budget = || budget.is_none_or(|b| b.allow(&obs.provider_id, obs.received_at));
            keep_unchanged(c, tx, digest, verdict, budget).await?
        }
        _ => Keep::Row,
    };
    if let Keep::Repeats(id) = keep {
        sqlx::query(
            "UPDATE observations SET repeats = repeats + 1, last_received_at = $1 WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *c)
        .await?;
        return Ok(id);
    }
    sqlx::query_scalar(
        "INSERT INTO observations (provider_id, ref, transaction_id, source, received_at, content_type, \
         remote_addr, body, body_size, verdict, detail, body_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(&obs.provider_id)
    .bind(
        obs.reference
            .as_deref()
            .or(record.map(|r| r.reference.as_str())),
    )
    .bind(transaction_id)
    .bind(obs.source.as_str())
    .bind(at)
    .bind(&obs.content_type)
    .bind(&obs.remote_addr)
    .bind(crate::ops::kept_body(&obs.body, verdict, keep))
    .bind(obs.body_size as i64)
    .bind(verdict.as_str())
    .bind(&obs.detail)
    .bind(digest)
    .fetch_one(&mut *c)
    .await
}

/// How a message that changed nothing is kept ([`crate::ops::unchanged_gets_row`]): counted
/// on an observation of the transaction with the same body and verdict if there is one.
async fn keep_unchanged(
    c: &mut PgConnection,
    transaction_id: i64,
    digest: &str,
    verdict: ObservationVerdict,
    within_budget: impl FnOnce() -> bool,
) -> Result<Keep, sqlx::Error> {
    let same_body: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM observations WHERE transaction_id = $1 AND body_sha256 = $2 \
         AND verdict = $3 ORDER BY id DESC LIMIT 1",
    )
    .bind(transaction_id)
    .bind(digest)
    .bind(verdict.as_str())
    .fetch_optional(&mut *c)
    .await?;
    if let Some(id) = same_body {
        return Ok(Keep::Repeats(id));
    }
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM observations WHERE transaction_id = $1")
            .bind(transaction_id)
            .fetch_one(&mut *c)
            .await?;
    if crate::ops::unchanged_gets_row(kept, within_budget) {
        return Ok(Keep::Row);
    }
    sqlx::query_scalar(
        "SELECT id FROM observations WHERE transaction_id = $1 AND verdict = $2 \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(transaction_id)
    .bind(verdict.as_str())
    .fetch_optional(&mut *c)
    .await
    .map(Keep::folded_onto)
}

/// Keeps the balance history, and raises the provider-level events of a reported balance
/// ([`lunas_core::balance_events`]). Runs before the counters are updated, so the previous
/// balance is still the one stored.
async fn sample_balance(
    c: &mut PgConnection,
    counted: &Counted,
    at: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let Some(balance) = counted.balance else {
        return Ok(Vec::new());
    };
    let previous: Option<i64> =
        sqlx::query_scalar("SELECT last_balance FROM provider_stats WHERE provider_id = $1")
            .bind(&counted.provider_id)
            .fetch_optional(&mut *c)
            .await?
            .flatten();
    if previous != Some(balance) {
        sqlx::query("INSERT INTO balance_samples (provider_id, at, balance) VALUES ($1, $2, $3)")
            .bind(&counted.provider_id)
            .bind(at)
            .bind(balance)
            .execute(&mut *c)
            .await?;
    }
    let mut out = Vec::new();
    for e in lunas_core::balance_events(
        &counted.provider_id,
        previous,
        balance,
        counted.low_balance,
        from_millis(at),
    ) {
        out.push(insert_event(c, None, at, &e).await?);
    }
    Ok(out)
}

/// Keeps the provider health counters current.
async fn count_for_provider(
    c: &mut PgConnection,
    counted: &Counted,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider_stats AS s (provider_id, callbacks, rejected, bad_signatures, last_callback_at, \
         last_balance, last_balance_at) VALUES ($1, $2, $3, $4, CASE WHEN $2 = 1 THEN $5 END, $6, \
         CASE WHEN $6::bigint IS NOT NULL THEN $5 END) \
         ON CONFLICT (provider_id) DO UPDATE SET callbacks = s.callbacks + $2, rejected = s.rejected + $3, \
         bad_signatures = s.bad_signatures + $4, \
         last_callback_at = CASE WHEN $2 = 1 THEN $5 ELSE s.last_callback_at END, \
         last_balance = COALESCE($6, s.last_balance), \
         last_balance_at = CASE WHEN $6::bigint IS NOT NULL THEN $5 ELSE s.last_balance_at END",
    )
    .bind(&counted.provider_id)
    .bind(i64::from(counted.callback))
    .bind(i64::from(counted.rejected))
    .bind(i64::from(counted.bad_signature))
    .bind(at)
    .bind(counted.balance)
    .execute(&mut *c)
    .await?;
    Ok(())
}

fn counted(
    obs: &NewObservation,
    verdict: ObservationVerdict,
    balance: Option<i64>,
    low_balance: Option<i64>,
) -> Counted {
    Counted {
        provider_id: obs.provider_id.clone(),
        callback: obs.source == Source::Callback,
        rejected: verdict.is_rejection(),
        bad_signature: verdict == ObservationVerdict::BadSignature,
        balance,
        low_balance,
    }
}

/// Locks the transaction a fact is about (a new one: none), decides, and saves; decides again
/// on the row another node inserted first, should that happen.
async fn decide_locked(
    c: &mut PgConnection,
    ingest: &Ingest,
    fact: &lunas_core::Fact,
) -> Result<Committed, sqlx::Error> {
    let obs = &ingest.observation;
    let at = to_millis(obs.received_at);
    loop {
        let current = select_tx(c, &obs.provider_id, &fact.reference, true).await?;
        let decision = decide(
            current.as_ref(),
            &obs.provider_id,
            fact,
            ingest.trust,
            obs.received_at,
        );
        // A held claim is checked at once; anything else keeps its schedule.
        let when = if decision.verdict == ObservationVerdict::Unconfirmed {
            When::At(Some(at))
        } else {
            When::Keep(ingest.check_after)
        };
        if let Some(done) = commit_decision(c, decision, at, when, false).await? {
            return Ok(done);
        }
        // Lost the insert race: the row is committed now; lock it and decide on it.
    }
}

async fn ingest(
    c: &mut PgConnection,
    ingest: &Ingest,
    prepared: &Prepared,
) -> Result<(Ingested, Tail), sqlx::Error> {
    let obs = &ingest.observation;
    let at = to_millis(obs.received_at);
    let (verdict, record, events, linked) = match &ingest.fact {
        None => {
            // A refused message changes nothing, but if it names a known transaction it joins
            // that transaction's evidence.
            let linked = match &obs.reference {
                Some(reference) => select_tx(c, &obs.provider_id, reference, false)
                    .await?
                    .map(|t| t.id),
                None => None,
            };
            (
                obs.verdict.unwrap_or(ObservationVerdict::Malformed),
                None,
                Vec::new(),
                linked,
            )
        }
        Some(fact) => {
            let (verdict, record, events) = decide_locked(c, ingest, fact).await?;
            (verdict, record, events, None)
        }
    };
    let observation_id = insert_observation(
        c,
        obs,
        &prepared.digest,
        Some(&prepared.budget),
        verdict,
        record.as_ref(),
        linked,
    )
    .await?;
    let balance = ingest.fact.as_ref().and_then(|f| f.detail.balance_after);
    Ok((
        Ingested {
            verdict,
            observation_id,
            record,
            events: Vec::new(),
        },
        Tail {
            at,
            events,
            counted: Some(counted(obs, verdict, balance, ingest.low_balance)),
        },
    ))
}

async fn register(
    c: &mut PgConnection,
    reg: &Registration,
) -> Result<(TxRecord, bool), sqlx::Error> {
    if let Some(existing) = select_tx(c, &reg.provider_id, &reg.reference, false).await? {
        return Ok((existing, false));
    }
    let mut rec = TxRecord::new(&reg.provider_id, &reg.reference, reg.kind, reg.at);
    rec.describe(&reg.detail);
    rec.extra.origin = Some(reg.origin.to_owned());
    rec.extra.order = reg.order.clone();
    let at = to_millis(reg.at);
    match save_tx(c, &rec).await? {
        Some(rec) => {
            if let Some(lease) = reg.lease {
                sqlx::query("UPDATE transactions SET check_lease_until = $1 WHERE id = $2")
                    .bind(at + lease.as_millis() as i64)
                    .bind(rec.id)
                    .execute(&mut *c)
                    .await?;
            }
            Ok((
                schedule(c, rec, When::Keep(reg.check_after), at, false).await?,
                true,
            ))
        }
        None => {
            // Another node registered (or a callback created) it first.
            let existing = select_tx(c, &reg.provider_id, &reg.reference, false)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            Ok((existing, false))
        }
    }
}

/// Leases up to `limit` transactions of `provider_id` whose check is due; rows another node
/// is working on are skipped, never waited for.
async fn claim_checks(
    c: &mut PgConnection,
    provider_id: &str,
    now: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<TxRecord>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "UPDATE transactions SET check_lease_until = $1 \
         FROM (SELECT id AS due_id FROM transactions WHERE provider_id = $2 AND next_check_at IS NOT NULL \
               AND next_check_at <= $3 AND (check_lease_until IS NULL OR check_lease_until <= $3) \
               ORDER BY next_check_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) due \
         WHERE id = due.due_id RETURNING {TX_COLUMNS}"
    ))
    .bind(now + lease_ms)
    .bind(provider_id)
    .bind(now)
    .bind(limit.max(1) as i64)
    .fetch_all(&mut *c)
    .await?;
    let mut out = rows
        .iter()
        .map(tx_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|t| (t.next_check_at, t.id));
    Ok(out)
}

/// Leases one transaction for a forced check, unless a check of it is already under way.
async fn claim_check_of(
    c: &mut PgConnection,
    id: i64,
    now: i64,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE transactions SET check_lease_until = $1 WHERE id = $2 \
         AND (check_lease_until IS NULL OR check_lease_until <= $3)",
    )
    .bind(now + lease_ms)
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a status check: its observation, the fact it established (if any), the next check
/// (or none), and, when the provider's window has passed, the flag for review.
async fn record_check(
    c: &mut PgConnection,
    check: &CheckRecord,
) -> Result<(Ingested, Tail), sqlx::Error> {
    let obs = &check.observation;
    let at = to_millis(obs.received_at);
    let mut current = lock_tx_by_id(c, check.transaction_id).await?;
    let order_changed = take_order(&mut current, check);
    let next = check.next_check_at.map(to_millis);
    let existing = |done: Option<Committed>| done.ok_or(sqlx::Error::RowNotFound);
    let resolved = check
        .resolution
        .as_ref()
        .map(|r| lunas_core::resolve(&current, r, obs.received_at));
    let (verdict, record, mut events) = match (resolved, &check.fact) {
        (Some(decision), _) => {
            existing(commit_decision(c, decision, at, When::At(None), false).await?)?
        }
        (None, Some(fact)) => {
            let mut decision = decide(
                Some(&current),
                &current.provider_id,
                fact,
                Trust::Authoritative,
                obs.received_at,
            );
            decision.changed |= order_changed;
            existing(commit_decision(c, decision, at, When::At(next), !check.keep_lease).await?)?
        }
        (None, None) => {
            let (_, record, events) = existing(
                commit_decision(
                    c,
                    Decision {
                        verdict: ObservationVerdict::CheckFailed,
                        record: current.clone(),
                        changed: order_changed,
                        events: vec![],
                    },
                    at,
                    When::At(next),
                    !check.keep_lease,
                )
                .await?,
            )?;
            (
                obs.verdict.unwrap_or(ObservationVerdict::CheckFailed),
                record,
                events,
            )
        }
    };
    // The transaction exists, so the decision always has a record.
    let mut record = record.unwrap_or(current);
    if check.give_up && record.wants_check(obs.received_at) {
        let decision = give_up(&record, obs.received_at);
        let (_, r, more) =
            existing(commit_decision(c, decision, at, When::At(None), false).await?)?;
        record = r.unwrap_or(record);
        events.extend(more);
    }
    let digest = crate::body_digest(&obs.body);
    let observation_id =
        insert_observation(c, obs, &digest, None, verdict, Some(&record), None).await?;
    let balance = check.fact.as_ref().and_then(|f| f.detail.balance_after);
    Ok((
        Ingested {
            verdict,
            observation_id,
            record: Some(record),
            events: Vec::new(),
        },
        Tail {
            at,
            events,
            counted: Some(counted(obs, verdict, balance, check.low_balance)),
        },
    ))
}

/// Puts the order state a check carries into the transaction; whether it changed.
fn take_order(current: &mut TxRecord, check: &CheckRecord) -> bool {
    match &check.order {
        Some(order) if current.extra.order.as_ref() != Some(order) => {
            current.extra.order = Some(order.clone());
            true
        }
        _ => false,
    }
}

/// One pass of retention (see [`crate::PruneCutoffs`]).
async fn prune(
    c: &mut PgConnection,
    now: i64,
    cut: &PruneCutoffs,
    batch: usize,
) -> Result<PruneReport, sqlx::Error> {
    use sqlx::Row;
    let mut report = PruneReport::default();
    let batch = batch as i64;
    if let Some(cutoff) = cut.goods {
        let rows = sqlx::query(&format!(
            "SELECT id, extra FROM transactions WHERE updated_at < $1 \
             AND state IN ({}) \
             AND (pin IS NOT NULL OR activation_code IS NOT NULL OR serial_number IS NOT NULL) \
             LIMIT $2 FOR UPDATE",
            crate::ops::final_states_sql()
        ))
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *c)
        .await?;
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let extra: Option<String> = row.try_get(1)?;
            let mut extra = lunas_core::TxExtra::from_column(extra.as_deref()).unwrap_or_default();
            extra.goods_erased_at = Some(now);
            sqlx::query(
                "UPDATE transactions SET pin = NULL, activation_code = NULL, serial_number = NULL, \
                 extra = $1 WHERE id = $2",
            )
            .bind(extra.to_column())
            .bind(id)
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "UPDATE observations SET body = ''::bytea, pruned_at = $1 \
                 WHERE transaction_id = $2 AND pruned_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *c)
            .await?;
            let events = sqlx::query("SELECT seq, data FROM events WHERE transaction_id = $1")
                .bind(id)
                .fetch_all(&mut *c)
                .await?;
            for e in &events {
                let seq: i64 = e.try_get(0)?;
                let data: String = e.try_get(1)?;
                if let Some(data) = crate::ops::without_goods(&data) {
                    sqlx::query("UPDATE events SET data = $1 WHERE seq = $2")
                        .bind(data)
                        .bind(seq)
                        .execute(&mut *c)
                        .await?;
                }
            }
        }
        report.goods = rows.len();
    }
    if let Some(cutoff) = cut.bodies {
        report.bodies = sqlx::query(
            "UPDATE observations SET body = ''::bytea, pruned_at = $1 WHERE id IN \
             (SELECT id FROM observations WHERE received_at < $2 AND pruned_at IS NULL \
              ORDER BY received_at LIMIT $3)",
        )
        .bind(now)
        .bind(cutoff)
        .bind(batch)
        .execute(&mut *c)
        .await?
        .rows_affected() as usize;
    }
    if let Some(cutoff) = cut.observations {
        report.observations = sqlx::query(
            "DELETE FROM observations WHERE id IN \
             (SELECT id FROM observations WHERE received_at < $1 ORDER BY received_at LIMIT $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&mut *c)
        .await?
        .rows_affected() as usize;
    }
    if let Some(cutoff) = cut.events {
        let seqs: Vec<i64> = sqlx::query_scalar(
            "SELECT seq FROM events e WHERE created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.state = 'pending') \
             ORDER BY seq LIMIT $2",
        )
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *c)
        .await?;
        sqlx::query(
            "DELETE FROM delivery_attempts WHERE delivery_id IN \
             (SELECT id FROM deliveries WHERE event_seq = ANY($1))",
        )
        .bind(&seqs)
        .execute(&mut *c)
        .await?;
        report.deliveries = sqlx::query("DELETE FROM deliveries WHERE event_seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *c)
            .await?
            .rows_affected() as usize;
        sqlx::query("DELETE FROM events WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *c)
            .await?;
        report.events = seqs.len();
    }
    if let Some(cutoff) = cut.balances {
        report.balances = sqlx::query(
            "DELETE FROM balance_samples WHERE id IN \
             (SELECT id FROM balance_samples WHERE at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&mut *c)
        .await?
        .rows_affected() as usize;
    }
    Ok(report)
}
