//! The single writer: group commit.
//!
//! Every write goes through one thread that owns the only write connection. It blocks for the
//! first queued job, takes whatever else is queued (up to `max_batch`), runs each job in its
//! own savepoint inside one `BEGIN IMMEDIATE` transaction, commits once (one fsync under WAL +
//! `synchronous = FULL`), and only then answers every job of the batch. A job that fails rolls
//! back its savepoint alone; a commit that fails fails the whole batch, and nothing of it is
//! acknowledged.

use lunas_core::{
    decide, give_up, to_millis, Decision, NewEvent, NewObservation, ObservationVerdict, Source,
    Trust, TxRecord,
};
use std::collections::HashMap;

use lunas_core::rate::KeyedBuckets;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::rows::{tx_from_row, TX_COLUMNS};
use super::unavailable;
use crate::model::*;
use crate::ops::{Keep, Prepared, WriteOp, WriteResult};
use crate::StoreError;

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
    // Each provider's last committed balance, so a callback needs no read to compare with it.
    let mut balances: HashMap<String, Option<i64>> = HashMap::new();
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let results = commit_batch(&mut conn, &jobs, &mut balances);
        for (job, result) in jobs.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// What a batch changes in the provider counters, written once per provider at its end
/// instead of once per callback (the counters are a hot row every callback would update).
#[derive(Debug, Default, Clone)]
pub(crate) struct BatchState {
    deltas: HashMap<String, ProviderDelta>,
    /// The last balance per provider as of the jobs so far (committed ones underneath).
    balances: HashMap<String, Option<i64>>,
}

#[derive(Debug, Default, Clone)]
struct ProviderDelta {
    callbacks: i64,
    rejected: i64,
    bad_signatures: i64,
    last_callback_at: Option<i64>,
    /// (at, balance) of the latest reported balance.
    last_balance: Option<(i64, i64)>,
}

impl BatchState {
    /// The provider's last balance: from this batch, from the cache, or read once.
    fn last_balance(&mut self, c: &Connection, provider_id: &str) -> rusqlite::Result<Option<i64>> {
        if let Some(b) = self.balances.get(provider_id) {
            return Ok(*b);
        }
        let stored: Option<i64> = c
            .prepare_cached("SELECT last_balance FROM provider_stats WHERE provider_id = ?1")?
            .query_row([provider_id], |r| r.get(0))
            .optional()?
            .flatten();
        self.balances.insert(provider_id.to_owned(), stored);
        Ok(stored)
    }

    /// Writes the counters of the batch.
    fn flush(&self, c: &Connection) -> rusqlite::Result<()> {
        for (provider_id, d) in &self.deltas {
            let (balance_at, balance) = d.last_balance.unzip();
            c.prepare_cached(
                "INSERT INTO provider_stats (provider_id, callbacks, rejected, bad_signatures, last_callback_at, \
                 last_balance, last_balance_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (provider_id) DO UPDATE SET callbacks = callbacks + ?2, rejected = rejected + ?3, \
                 bad_signatures = bad_signatures + ?4, \
                 last_callback_at = COALESCE(?5, last_callback_at), \
                 last_balance = COALESCE(?6, last_balance), \
                 last_balance_at = COALESCE(?7, last_balance_at)",
            )?
            .execute(params![
                provider_id,
                d.callbacks,
                d.rejected,
                d.bad_signatures,
                d.last_callback_at,
                balance,
                balance_at
            ])?;
        }
        Ok(())
    }
}

fn commit_batch(
    conn: &mut Connection,
    jobs: &[Job],
    balances: &mut HashMap<String, Option<i64>>,
) -> Vec<Result<WriteResult, StoreError>> {
    let fail_all = |e: rusqlite::Error| {
        let err = unavailable(e);
        jobs.iter().map(|_| Err(err.clone())).collect()
    };
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let mut state = BatchState {
        deltas: HashMap::new(),
        balances: balances.clone(),
    };
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let before = state.clone();
        let result = tx.savepoint().and_then(|sp| {
            let out = apply(&sp, &job.op, &mut state)?;
            sp.commit()?;
            Ok(out)
        });
        if result.is_err() {
            // The job's writes were rolled back: so are its counters.
            state = before;
        }
        results.push(result.map_err(unavailable));
    }
    if let Err(e) = state.flush(&tx) {
        balances.clear();
        return fail_all(e);
    }
    match tx.commit() {
        Ok(()) => {
            *balances = state.balances;
            results
        }
        Err(e) => {
            balances.clear();
            fail_all(e)
        }
    }
}

fn apply(c: &Connection, op: &WriteOp, state: &mut BatchState) -> rusqlite::Result<WriteResult> {
    match op {
        WriteOp::Ingest(ingest, prepared) => {
            self::ingest(c, ingest, prepared, state).map(WriteResult::Ingested)
        }
        WriteOp::Register(reg) => {
            register(c, reg).map(|(r, created)| WriteResult::Registered(r, created))
        }
        WriteOp::Ping { now } => c
            .execute(
                "INSERT INTO heartbeat (id, at) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                [now],
            )
            .map(|_| WriteResult::Pong),
        WriteOp::StartSession(row) => {
            c.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1",
                [row.created_at],
            )?;
            c.execute(
                "INSERT INTO sessions (id_digest, created_at, expires_at, remote_addr) \
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    row.id_digest,
                    row.created_at,
                    row.expires_at,
                    row.remote_addr
                ],
            )
            .map(|_| WriteResult::Pong)
        }
        WriteOp::Prune {
            now,
            cutoffs,
            batch,
        } => prune(c, *now, cutoffs, *batch).map(WriteResult::Pruned),
        WriteOp::EndSession { id_digest, now } => c
            .execute(
                "DELETE FROM sessions WHERE id_digest = ?1 OR expires_at <= ?2",
                rusqlite::params![id_digest, now],
            )
            .map(|_| WriteResult::Pong),
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
            past_dead,
        } => super::delivery::claim(c, *now, *lease_ms, *limit, endpoints, *past_dead)
            .map(WriteResult::Claimed),
        WriteOp::RecordAttempt(record) => {
            super::delivery::record_attempt(c, record).map(|()| WriteResult::Pong)
        }
        WriteOp::Redeliver {
            what,
            endpoints,
            now,
        } => super::delivery::redeliver(c, what, endpoints, *now).map(WriteResult::Count),
        WriteOp::ClaimChecks {
            provider_id,
            now,
            lease_ms,
            limit,
        } => claim_checks(c, provider_id, *now, *lease_ms, *limit).map(WriteResult::Checks),
        WriteOp::ClaimCheckOf { id, now, lease_ms } => {
            claim_check_of(c, *id, *now, *lease_ms).map(WriteResult::Flag)
        }
        WriteOp::RecordCheck(check) => record_check(c, check, state).map(WriteResult::Ingested),
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

/// Inserts a new transaction or updates a stored one; returns it with its id. The reconciler's
/// columns (`next_check_at`, `check_attempts`, lease) are kept by [`schedule`].
fn save_tx(c: &Connection, rec: &TxRecord) -> rusqlite::Result<TxRecord> {
    let payments = serde_json::to_string(&rec.payments).expect("payments serialise");
    let unconfirmed = rec
        .unconfirmed
        .as_ref()
        .map(|u| serde_json::to_string(u).expect("claims serialise"));
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
        unconfirmed,
        rec.extra.to_column(),
    ];
    let mut saved = rec.clone();
    if rec.id == 0 {
        c.prepare_cached(
            "INSERT INTO transactions (provider_id, ref, kind, state, needs_review, amount, product_code, \
             customer_id, provider_transaction_id, order_id, response_code, message, serial_number, pin, \
             activation_code, balance_after, total_paid, payments, created_at, updated_at, unconfirmed, extra) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
        )?
        .execute(values)?;
        saved.id = c.last_insert_rowid();
    } else {
        c.prepare_cached(
            "UPDATE transactions SET provider_id = ?1, ref = ?2, kind = ?3, state = ?4, needs_review = ?5, \
             amount = ?6, product_code = ?7, customer_id = ?8, provider_transaction_id = ?9, order_id = ?10, \
             response_code = ?11, message = ?12, serial_number = ?13, pin = ?14, activation_code = ?15, \
             balance_after = ?16, total_paid = ?17, payments = ?18, created_at = ?19, updated_at = ?20, \
             unconfirmed = ?21, extra = ?22 WHERE id = ?23",
        )?
        .execute(rusqlite::params_from_iter(
            values.iter().copied().chain(std::iter::once(&rec.id as &dyn rusqlite::ToSql)),
        ))?;
    }
    Ok(saved)
}

/// Sets when the reconciler asks next: `Keep` leaves a scheduled check alone (or schedules one
/// `first` from now when there is none), `At` sets it, and a transaction with nothing to ask
/// about is unscheduled whatever is asked. Returns the record with the schedule it now has.
fn schedule(
    c: &Connection,
    mut rec: TxRecord,
    when: When,
    now: i64,
    count_attempt: bool,
) -> rusqlite::Result<TxRecord> {
    let next = if !rec.wants_check(lunas_core::from_millis(now)) {
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
    // `rec` carries the stored schedule (read with it, or NULL when just inserted): an
    // unchanged schedule needs no write, which saves a statement on most callbacks.
    if count_attempt || next != rec.next_check_at.map(to_millis) {
        c.prepare_cached(
            "UPDATE transactions SET next_check_at = ?1, check_attempts = check_attempts + ?2, \
             check_lease_until = CASE WHEN ?2 = 1 THEN NULL ELSE check_lease_until END WHERE id = ?3",
        )?
        .execute(params![next, i64::from(count_attempt), rec.id])?;
    }
    rec.next_check_at = next.map(lunas_core::from_millis);
    if count_attempt {
        rec.check_attempts += 1;
    }
    Ok(rec)
}

#[derive(Debug, Clone, Copy)]
enum When {
    /// Keep the scheduled check; with none, schedule one this long from now.
    Keep(Option<std::time::Duration>),
    /// Check at this time (ms), or never.
    At(Option<i64>),
}

fn insert_event(
    c: &Connection,
    tx_id: Option<i64>,
    at: i64,
    e: &NewEvent,
) -> rusqlite::Result<Event> {
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

/// Saves a decision's record (when changed), its schedule and its events.
fn commit_decision(
    c: &Connection,
    decision: Decision,
    at: i64,
    when: When,
    count_attempt: bool,
) -> rusqlite::Result<(ObservationVerdict, Option<TxRecord>, Vec<Event>)> {
    let record = if decision.changed {
        save_tx(c, &decision.record)?
    } else {
        decision.record
    };
    if record.id == 0 {
        // Nothing was created (a message about an unknown ref that states nothing usable).
        return Ok((decision.verdict, None, Vec::new()));
    }
    let record = schedule(c, record, when, at, count_attempt)?;
    let events = decision
        .events
        .iter()
        .map(|e| insert_event(c, Some(record.id), at, e))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((decision.verdict, Some(record), events))
}

fn insert_observation(
    c: &Connection,
    obs: &NewObservation,
    digest: &str,
    budget: Option<&KeyedBuckets>,
    verdict: ObservationVerdict,
    record: Option<&TxRecord>,
    linked: Option<i64>,
) -> rusqlite::Result<i64> {
    let transaction_id = record.map(|r| r.id).or(linked);
    let at = to_millis(obs.received_at);
    let keep = match (transaction_id, verdict.changes_nothing()) {
        (Some(tx), true) => {
            let budget = || budget.is_none_or(|b| b.allow(&obs.provider_id, obs.received_at));
            keep_unchanged(c, tx, digest, verdict, budget)?
        }
        _ => Keep::Row,
    };
    if let Keep::Repeats(id) = keep {
        c.prepare_cached(
            "UPDATE observations SET repeats = repeats + 1, last_received_at = ?1 WHERE id = ?2",
        )?
        .execute(params![at, id])?;
        return Ok(id);
    }
    c.prepare_cached(
        "INSERT INTO observations (provider_id, ref, transaction_id, source, received_at, content_type, \
         remote_addr, body, body_size, verdict, detail, body_sha256) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        obs.provider_id,
        obs.reference.as_deref().or(record.map(|r| r.reference.as_str())),
        transaction_id,
        obs.source.as_str(),
        at,
        obs.content_type,
        obs.remote_addr,
        crate::ops::kept_body(&obs.body, verdict, keep),
        obs.body_size as i64,
        verdict.as_str(),
        obs.detail,
        digest,
    ])?;
    Ok(c.last_insert_rowid())
}

/// How a message that changed nothing is kept ([`crate::ops::unchanged_gets_row`]): counted on an
/// observation of the transaction with the same body and verdict if there is one.
fn keep_unchanged(
    c: &Connection,
    transaction_id: i64,
    digest: &str,
    verdict: ObservationVerdict,
    within_budget: impl FnOnce() -> bool,
) -> rusqlite::Result<Keep> {
    let same_body = c
        .prepare_cached(
            "SELECT id FROM observations WHERE transaction_id = ?1 AND body_sha256 = ?2 \
             AND verdict = ?3 ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![transaction_id, digest, verdict.as_str()], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(id) = same_body {
        return Ok(Keep::Repeats(id));
    }
    let kept: i64 = c
        .prepare_cached("SELECT count(*) FROM observations WHERE transaction_id = ?1")?
        .query_row([transaction_id], |r| r.get(0))?;
    if crate::ops::unchanged_gets_row(kept, within_budget) {
        return Ok(Keep::Row);
    }
    c.prepare_cached(
        "SELECT id FROM observations WHERE transaction_id = ?1 AND verdict = ?2 \
         ORDER BY id DESC LIMIT 1",
    )?
    .query_row(params![transaction_id, verdict.as_str()], |r| r.get(0))
    .optional()
    .map(Keep::folded_onto)
}

/// Keeps the balance history, and raises the provider-level events of a reported balance
/// ([`lunas_core::balance_events`]). Runs before the counters are updated, so the previous
/// balance is still the one stored.
fn sample_balance(
    c: &Connection,
    state: &mut BatchState,
    provider_id: &str,
    at: i64,
    balance: Option<i64>,
    low_balance: Option<i64>,
) -> rusqlite::Result<Vec<Event>> {
    let Some(balance) = balance else {
        return Ok(Vec::new());
    };
    let previous = state.last_balance(c, provider_id)?;
    state.balances.insert(provider_id.to_owned(), Some(balance));
    if previous != Some(balance) {
        c.prepare_cached(
            "INSERT INTO balance_samples (provider_id, at, balance) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![provider_id, at, balance])?;
    }
    lunas_core::balance_events(
        provider_id,
        previous,
        balance,
        low_balance,
        lunas_core::from_millis(at),
    )
    .iter()
    .map(|e| insert_event(c, None, at, e))
    .collect()
}

/// Counts the observation in the provider's health counters (written at the batch's end).
fn count_for_provider(
    state: &mut BatchState,
    obs: &NewObservation,
    verdict: ObservationVerdict,
    balance: Option<i64>,
) {
    let at = to_millis(obs.received_at);
    let d = state.deltas.entry(obs.provider_id.clone()).or_default();
    if obs.source == Source::Callback {
        d.callbacks += 1;
        d.last_callback_at = Some(d.last_callback_at.map_or(at, |t| t.max(at)));
    }
    d.rejected += i64::from(verdict.is_rejection());
    d.bad_signatures += i64::from(verdict == ObservationVerdict::BadSignature);
    if let Some(b) = balance {
        d.last_balance = Some((at, b));
    }
}

fn ingest(
    c: &Connection,
    ingest: &Ingest,
    prepared: &Prepared,
    state: &mut BatchState,
) -> rusqlite::Result<Ingested> {
    let obs = &ingest.observation;
    let at = to_millis(obs.received_at);
    let (verdict, record, events, linked) = match &ingest.fact {
        None => {
            // A refused message changes nothing, but if it names a known transaction it joins
            // that transaction's evidence (a forged callback is worth seeing in its timeline).
            let linked = match &obs.reference {
                Some(reference) => select_tx(c, &obs.provider_id, reference)?.map(|t| t.id),
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
            let current = select_tx(c, &obs.provider_id, &fact.reference)?;
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
            let (verdict, record, events) = commit_decision(c, decision, at, when, false)?;
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
    )?;
    let balance = ingest.fact.as_ref().and_then(|f| f.detail.balance_after);
    let mut events = events;
    events.extend(sample_balance(
        c,
        state,
        &obs.provider_id,
        at,
        balance,
        ingest.low_balance,
    )?);
    count_for_provider(state, obs, verdict, balance);
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
    rec.describe(&reg.detail);
    rec.extra.origin = Some(reg.origin.to_owned());
    rec.extra.order = reg.order.clone();
    let at = to_millis(reg.at);
    let rec = save_tx(c, &rec)?;
    if let Some(lease) = reg.lease {
        c.prepare_cached("UPDATE transactions SET check_lease_until = ?1 WHERE id = ?2")?
            .execute(params![at + lease.as_millis() as i64, rec.id])?;
    }
    Ok((
        schedule(c, rec, When::Keep(reg.check_after), at, false)?,
        true,
    ))
}

/// Leases up to `limit` transactions of `provider_id` whose check is due.
fn claim_checks(
    c: &Connection,
    provider_id: &str,
    now: i64,
    lease_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<TxRecord>> {
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT id FROM transactions WHERE next_check_at IS NOT NULL AND next_check_at <= ?1 \
             AND provider_id = ?2 AND (check_lease_until IS NULL OR check_lease_until <= ?1) \
             ORDER BY next_check_at LIMIT ?3",
        )?
        .query_map(params![now, provider_id, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        c.prepare_cached("UPDATE transactions SET check_lease_until = ?1 WHERE id = ?2")?
            .execute(params![now + lease_ms, id])?;
        out.push(
            c.prepare_cached(&format!(
                "SELECT {TX_COLUMNS} FROM transactions WHERE id = ?1"
            ))?
            .query_row([id], tx_from_row)?,
        );
    }
    Ok(out)
}

/// Leases one transaction for a forced check, unless a check of it is already under way.
fn claim_check_of(c: &Connection, id: i64, now: i64, lease_ms: i64) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE transactions SET check_lease_until = ?1 WHERE id = ?2 \
             AND (check_lease_until IS NULL OR check_lease_until <= ?3)",
        )?
        .execute(params![now + lease_ms, id, now])?;
    Ok(n == 1)
}

/// Records a status check: its observation, the fact it established (if any), the next check
/// (or none), and, when the provider's window has passed, the flag for review.
fn record_check(
    c: &Connection,
    check: &CheckRecord,
    state: &mut BatchState,
) -> rusqlite::Result<Ingested> {
    let obs = &check.observation;
    let at = to_millis(obs.received_at);
    let mut current = c
        .prepare_cached(&format!(
            "SELECT {TX_COLUMNS} FROM transactions WHERE id = ?1"
        ))?
        .query_row([check.transaction_id], tx_from_row)?;
    let order_changed = take_order(&mut current, check);
    let next = check.next_check_at.map(to_millis);
    let resolved = check
        .resolution
        .as_ref()
        .map(|r| lunas_core::resolve(&current, r, obs.received_at));
    let (verdict, record, mut events) = match (resolved, &check.fact) {
        (Some(decision), _) => commit_decision(c, decision, at, When::At(None), false)?,
        (None, Some(fact)) => {
            let mut decision = decide(
                Some(&current),
                &current.provider_id,
                fact,
                Trust::Authoritative,
                obs.received_at,
            );
            decision.changed |= order_changed;
            commit_decision(c, decision, at, When::At(next), !check.keep_lease)?
        }
        (None, None) => {
            let (_, record, events) = commit_decision(
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
        let (_, r, more) = commit_decision(c, decision, at, When::At(None), false)?;
        record = r.unwrap_or(record);
        events.extend(more);
    }
    let digest = crate::body_digest(&obs.body);
    let observation_id = insert_observation(c, obs, &digest, None, verdict, Some(&record), None)?;
    let balance = check.fact.as_ref().and_then(|f| f.detail.balance_after);
    events.extend(sample_balance(
        c,
        state,
        &obs.provider_id,
        at,
        balance,
        check.low_balance,
    )?);
    count_for_provider(state, obs, verdict, balance);
    Ok(Ingested {
        verdict,
        observation_id,
        record: Some(record),
        events,
    })
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
fn prune(
    c: &Connection,
    now: i64,
    cut: &PruneCutoffs,
    batch: usize,
) -> rusqlite::Result<PruneReport> {
    let mut report = PruneReport::default();
    let batch = batch as i64;
    if let Some(cutoff) = cut.goods {
        let ids: Vec<(i64, Option<String>)> = c
            .prepare(&format!(
                "SELECT id, extra FROM transactions WHERE updated_at < ?1 \
                 AND state IN ({}) \
                 AND (pin IS NOT NULL OR activation_code IS NOT NULL OR serial_number IS NOT NULL) \
                 LIMIT ?2",
                crate::ops::final_states_sql()
            ))?
            .query_map(params![cutoff, batch], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, extra) in &ids {
            let mut extra = lunas_core::TxExtra::from_column(extra.as_deref()).unwrap_or_default();
            extra.goods_erased_at = Some(now);
            c.execute(
                "UPDATE transactions SET pin = NULL, activation_code = NULL, serial_number = NULL, \
                 extra = ?1 WHERE id = ?2",
                params![extra.to_column(), id],
            )?;
            c.execute(
                "UPDATE observations SET body = X'', pruned_at = ?1 \
                 WHERE transaction_id = ?2 AND pruned_at IS NULL",
                params![now, id],
            )?;
            let events: Vec<(i64, String)> = c
                .prepare("SELECT seq, data FROM events WHERE transaction_id = ?1")?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (seq, data) in events {
                if let Some(data) = crate::ops::without_goods(&data) {
                    c.execute(
                        "UPDATE events SET data = ?1 WHERE seq = ?2",
                        params![data, seq],
                    )?;
                }
            }
        }
        report.goods = ids.len();
    }
    if let Some(cutoff) = cut.bodies {
        report.bodies = c.execute(
            "UPDATE observations SET body = X'', pruned_at = ?1 WHERE id IN \
             (SELECT id FROM observations WHERE received_at < ?2 AND pruned_at IS NULL \
              ORDER BY received_at LIMIT ?3)",
            params![now, cutoff, batch],
        )?;
    }
    if let Some(cutoff) = cut.observations {
        report.observations = c.execute(
            "DELETE FROM observations WHERE id IN \
             (SELECT id FROM observations WHERE received_at < ?1 ORDER BY received_at LIMIT ?2)",
            params![cutoff, batch],
        )?;
    }
    if let Some(cutoff) = cut.events {
        let seqs: Vec<i64> = c
            .prepare(
                "SELECT seq FROM events e WHERE created_at < ?1 AND NOT EXISTS \
                 (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.state = 'pending') \
                 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![cutoff, batch], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for seq in &seqs {
            c.prepare_cached(
                "DELETE FROM delivery_attempts WHERE delivery_id IN \
                 (SELECT id FROM deliveries WHERE event_seq = ?1)",
            )?
            .execute([seq])?;
            report.deliveries += c
                .prepare_cached("DELETE FROM deliveries WHERE event_seq = ?1")?
                .execute([seq])?;
            c.prepare_cached("DELETE FROM events WHERE seq = ?1")?
                .execute([seq])?;
        }
        report.events = seqs.len();
    }
    if let Some(cutoff) = cut.balances {
        report.balances = c.execute(
            "DELETE FROM balance_samples WHERE id IN \
             (SELECT id FROM balance_samples WHERE at < ?1 ORDER BY id LIMIT ?2)",
            params![cutoff, batch],
        )?;
    }
    Ok(report)
}
