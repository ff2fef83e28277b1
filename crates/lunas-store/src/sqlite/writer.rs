//! The single writer: group commit.
//!
//! Every write goes through one thread that owns the only write connection. It blocks for the
//! first queued job, takes whatever else is queued (up to `max_batch`), runs each job in its
//! own savepoint inside one `BEGIN IMMEDIATE` transaction, commits once (one fsync under WAL +
//! `synchronous = FULL`), and only then answers every job of the batch. A job that fails rolls
//! back its savepoint alone; a commit that fails fails the whole batch, and nothing of it is
//! acknowledged.

use lunas_core::{decide, to_millis, NewEvent, ObservationVerdict, Source, TxRecord};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::rows::{tx_from_row, TX_COLUMNS};
use super::unavailable;
use crate::model::*;
use crate::StoreError;

#[derive(Debug)]
pub(crate) enum WriteOp {
    Ingest(Ingest),
    Register(Registration),
    Ping,
    InitEndpoints(Vec<EndpointFilter>),
    FanOut {
        endpoints: Vec<EndpointFilter>,
        now: i64,
        limit: usize,
    },
    Claim {
        now: i64,
        lease_ms: i64,
        limit: usize,
        endpoints: Vec<String>,
    },
    RecordAttempt(AttemptRecord),
    Redeliver {
        what: Redeliver,
        endpoints: Vec<EndpointFilter>,
        now: i64,
    },
}

#[derive(Debug)]
pub(crate) enum WriteResult {
    Ingested(Ingested),
    Registered(TxRecord, bool),
    Pong,
    Count(usize),
    Claimed(Vec<DeliveryJob>),
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteResult, StoreError>>,
}

/// The handle the store keeps; dropping it lets the thread finish its queue and exit.
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

/// How many jobs may wait for the writer before submitters wait too (backpressure).
const QUEUE: usize = 8192;

impl Writer {
    pub(crate) fn start(conn: Connection, max_batch: usize) -> Result<Self, StoreError> {
        let (queue, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("lunas-sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1)))
            .map_err(unavailable)?;
        Ok(Writer { queue })
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

fn run(mut conn: Connection, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let results = commit_batch(&mut conn, &jobs);
        for (job, result) in jobs.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

fn commit_batch(conn: &mut Connection, jobs: &[Job]) -> Vec<Result<WriteResult, StoreError>> {
    let fail_all = |e: rusqlite::Error| {
        let err = unavailable(e);
        jobs.iter().map(|_| Err(err.clone())).collect()
    };
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = tx.savepoint().and_then(|sp| {
            let out = apply(&sp, &job.op)?;
            sp.commit()?;
            Ok(out)
        });
        results.push(result.map_err(unavailable));
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(e),
    }
}

fn apply(c: &Connection, op: &WriteOp) -> rusqlite::Result<WriteResult> {
    match op {
        WriteOp::Ingest(ingest) => self::ingest(c, ingest).map(WriteResult::Ingested),
        WriteOp::Register(reg) => {
            register(c, reg).map(|(r, created)| WriteResult::Registered(r, created))
        }
        WriteOp::Ping => Ok(WriteResult::Pong),
        WriteOp::InitEndpoints(endpoints) => {
            super::delivery::init_endpoints(c, endpoints).map(|()| WriteResult::Pong)
        }
        WriteOp::FanOut {
            endpoints,
            now,
            limit,
        } => super::delivery::fan_out(c, endpoints, *now, *limit).map(WriteResult::Count),
        WriteOp::Claim {
            now,
            lease_ms,
            limit,
            endpoints,
        } => {
            super::delivery::claim(c, *now, *lease_ms, *limit, endpoints).map(WriteResult::Claimed)
        }
        WriteOp::RecordAttempt(record) => {
            super::delivery::record_attempt(c, record).map(|()| WriteResult::Pong)
        }
        WriteOp::Redeliver {
            what,
            endpoints,
            now,
        } => super::delivery::redeliver(c, what, endpoints, *now).map(WriteResult::Count),
    }
}

fn select_tx(
    c: &Connection,
    provider_id: &str,
    reference: &str,
) -> rusqlite::Result<Option<TxRecord>> {
    c.prepare_cached(&format!(
        "SELECT {TX_COLUMNS} FROM transactions WHERE provider_id = ?1 AND ref = ?2"
    ))?
    .query_row(params![provider_id, reference], tx_from_row)
    .optional()
}

/// Inserts a new transaction or updates a stored one; returns it with its id.
fn save_tx(c: &Connection, rec: &TxRecord) -> rusqlite::Result<TxRecord> {
    let payments = serde_json::to_string(&rec.payments).expect("payments serialise");
    let values = params![
        rec.provider_id,
        rec.reference,
        rec.kind.as_str(),
        rec.state.as_str(),
        rec.needs_review,
        rec.amount,
        rec.product_code,
        rec.customer_id,
        rec.provider_transaction_id,
        rec.order_id,
        rec.response_code,
        rec.message,
        rec.serial_number,
        rec.pin,
        rec.activation_code,
        rec.balance_after,
        rec.total_paid,
        payments,
        to_millis(rec.created_at),
        to_millis(rec.updated_at),
    ];
    let mut saved = rec.clone();
    if rec.id == 0 {
        c.prepare_cached(
            "INSERT INTO transactions (provider_id, ref, kind, state, needs_review, amount, product_code, \
             customer_id, provider_transaction_id, order_id, response_code, message, serial_number, pin, \
             activation_code, balance_after, total_paid, payments, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        )?
        .execute(values)?;
        saved.id = c.last_insert_rowid();
    } else {
        c.prepare_cached(
            "UPDATE transactions SET provider_id = ?1, ref = ?2, kind = ?3, state = ?4, needs_review = ?5, \
             amount = ?6, product_code = ?7, customer_id = ?8, provider_transaction_id = ?9, order_id = ?10, \
             response_code = ?11, message = ?12, serial_number = ?13, pin = ?14, activation_code = ?15, \
             balance_after = ?16, total_paid = ?17, payments = ?18, created_at = ?19, updated_at = ?20 \
             WHERE id = ?21",
        )?
        .execute(rusqlite::params_from_iter(values.iter().copied().chain(std::iter::once(&rec.id as &dyn rusqlite::ToSql))))?;
    }
    Ok(saved)
}

fn insert_event(c: &Connection, tx_id: i64, at: i64, e: &NewEvent) -> rusqlite::Result<Event> {
    let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
    c.prepare_cached("INSERT INTO events (id, transaction_id, type, created_at, data) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![id, tx_id, e.event_type.as_str(), at, e.data.to_string()])?;
    Ok(Event {
        seq: c.last_insert_rowid(),
        id,
        event_type: e.event_type,
        transaction_id: tx_id,
        created_at: lunas_core::from_millis(at),
        data: e.data.clone(),
    })
}

fn ingest(c: &Connection, ingest: &Ingest) -> rusqlite::Result<Ingested> {
    let obs = &ingest.observation;
    let at = to_millis(obs.received_at);
    let mut linked = None;
    let (verdict, record, events) = match &ingest.fact {
        None => {
            // A refused message changes nothing, but if it names a known transaction it joins
            // that transaction's evidence (a forged callback is worth seeing in its timeline).
            if let Some(reference) = &obs.reference {
                linked = select_tx(c, &obs.provider_id, reference)?.map(|t| t.id);
            }
            (
                obs.verdict.unwrap_or(ObservationVerdict::Malformed),
                None,
                Vec::new(),
            )
        }
        Some(fact) => {
            let current = select_tx(c, &obs.provider_id, &fact.reference)?;
            let decision = decide(current.as_ref(), &obs.provider_id, fact, obs.received_at);
            let record = if decision.changed {
                save_tx(c, &decision.record)?
            } else {
                decision.record
            };
            let events = decision
                .events
                .iter()
                .map(|e| insert_event(c, record.id, at, e))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            (decision.verdict, Some(record), events)
        }
    };
    c.prepare_cached(
        "INSERT INTO observations (provider_id, ref, transaction_id, source, received_at, content_type, \
         remote_addr, body, body_size, verdict, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        obs.provider_id,
        obs.reference.as_deref().or(record.as_ref().map(|r| r.reference.as_str())),
        record.as_ref().map(|r| r.id).or(linked),
        obs.source.as_str(),
        at,
        obs.content_type,
        obs.remote_addr,
        obs.body,
        obs.body_size as i64,
        verdict.as_str(),
        obs.detail,
    ])?;
    let observation_id = c.last_insert_rowid();
    let is_callback = i64::from(obs.source == Source::Callback);
    let balance = ingest.fact.as_ref().and_then(|f| f.detail.balance_after);
    c.prepare_cached(
        "INSERT INTO provider_stats (provider_id, callbacks, rejected, bad_signatures, last_callback_at, \
         last_balance, last_balance_at) VALUES (?1, ?2, ?3, ?4, CASE WHEN ?2 = 1 THEN ?5 END, ?6, \
         CASE WHEN ?6 IS NOT NULL THEN ?5 END) \
         ON CONFLICT (provider_id) DO UPDATE SET callbacks = callbacks + ?2, rejected = rejected + ?3, \
         bad_signatures = bad_signatures + ?4, \
         last_callback_at = CASE WHEN ?2 = 1 THEN ?5 ELSE last_callback_at END, \
         last_balance = COALESCE(?6, last_balance), \
         last_balance_at = CASE WHEN ?6 IS NOT NULL THEN ?5 ELSE last_balance_at END",
    )?
    .execute(params![
        obs.provider_id,
        is_callback,
        i64::from(verdict.is_rejection()),
        i64::from(verdict == ObservationVerdict::BadSignature),
        at,
        balance,
    ])?;
    Ok(Ingested {
        verdict,
        observation_id,
        record,
        events,
    })
}

fn register(c: &Connection, reg: &Registration) -> rusqlite::Result<(TxRecord, bool)> {
    if let Some(existing) = select_tx(c, &reg.provider_id, &reg.reference)? {
        return Ok((existing, false));
    }
    let mut rec = TxRecord::new(&reg.provider_id, &reg.reference, reg.kind, reg.at);
    rec.merge(&reg.detail, true);
    Ok((save_tx(c, &rec)?, true))
}
