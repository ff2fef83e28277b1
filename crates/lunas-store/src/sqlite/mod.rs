//! SQLite: WAL, `synchronous = FULL` (every commit is fsync'd before it returns), one writer
//! thread doing group commit, a small pool of read connections.

mod delivery;
mod rows;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lunas_core::to_millis;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use time::OffsetDateTime;

use crate::model::*;
use crate::ops::{WriteOp, WriteResult};
use crate::{Store, StoreError};
use rows::{
    attempt_from_row, delivery_from_row, event_from_row, observation_from_row, tx_from_row,
    ATTEMPT_COLUMNS, DELIVERY_COLUMNS, EVENT_COLUMNS, OBSERVATION_COLUMNS, TX_COLUMNS,
};
use writer::Writer;

/// The migrations, applied in order; `PRAGMA user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_deliveries.sql"),
    include_str!("../../migrations/sqlite/0003_reconcile.sql"),
    include_str!("../../migrations/sqlite/0004_balances.sql"),
    include_str!("../../migrations/sqlite/0005_due_by_provider.sql"),
    include_str!("../../migrations/sqlite/0006_extra.sql"),
    include_str!("../../migrations/sqlite/0007_latency_us.sql"),
    include_str!("../../migrations/sqlite/0008_sessions_evidence.sql"),
];

const READERS: usize = 4;

/// The SQLite store.
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<ReaderPool>,
    /// Migrations that ran when the store was opened.
    migrated: usize,
    /// Bodies kept of messages that change nothing, per account ([`crate::ops::Prepared`]).
    evidence: std::sync::Arc<lunas_core::rate::KeyedBuckets>,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    options: StoreOptions,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn configure(conn: &Connection, options: &StoreOptions) -> rusqlite::Result<()> {
    conn.busy_timeout(options.busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Runs the migrations not yet applied. Returns how many ran.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<usize> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let mut ran = 0;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        ran += 1;
    }
    Ok(ran)
}

fn attempts_of(c: &Connection, delivery_id: i64) -> rusqlite::Result<Vec<lunas_core::Attempt>> {
    c.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE delivery_id = ?1 ORDER BY id"
    ))?
    .query_map([delivery_id], attempt_from_row)?
    .collect()
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs its migrations.
    pub async fn open(path: impl AsRef<Path>, options: &StoreOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let options = options.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, options))
            .await
            .map_err(unavailable)?
    }

    fn open_blocking(path: PathBuf, options: StoreOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| unavailable(format!("{}: {e}", dir.display())))?;
        }
        let mut conn =
            Connection::open(&path).map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        configure(&conn, &options).map_err(unavailable)?;
        let migrated = migrate(&mut conn).map_err(unavailable)?;
        let writer = Writer::start(conn, options.max_batch)?;
        let readers = Arc::new(ReaderPool {
            path,
            idle: Mutex::new(Vec::new()),
            options,
        });
        Ok(SqliteStore {
            writer,
            readers,
            migrated,
            evidence: crate::ops::evidence_budget(),
        })
    }

    /// Runs `f` on a read connection on the blocking pool.
    /// Submits a write whose only answer is that it was committed.
    async fn pong(&self, op: WriteOp) -> Result<(), StoreError> {
        match self.writer.submit(op).await? {
            WriteResult::Pong => Ok(()),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = match pool.idle.lock().expect("reader pool lock").pop() {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &pool.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(unavailable)?;
                    configure(&c, &pool.options).map_err(unavailable)?;
                    c
                }
            };
            let result = f(&conn).map_err(unavailable);
            let mut idle = pool.idle.lock().expect("reader pool lock");
            if idle.len() < READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(unavailable)?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(&self, ingest: Ingest) -> Result<Ingested, StoreError> {
        let prepared = crate::ops::Prepared::new(&ingest, &self.evidence);
        match self
            .writer
            .submit(WriteOp::Ingest(ingest, prepared))
            .await?
        {
            WriteResult::Ingested(i) => Ok(i),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn register(&self, registration: Registration) -> Result<(TxRecord, bool), StoreError> {
        match self
            .writer
            .submit(WriteOp::Register(Box::new(registration)))
            .await?
        {
            WriteResult::Registered(rec, created) => Ok((rec, created)),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn transaction(
        &self,
        provider_id: &str,
        reference: &str,
    ) -> Result<Option<TxRecord>, StoreError> {
        let (p, r) = (provider_id.to_owned(), reference.to_owned());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TX_COLUMNS} FROM transactions WHERE provider_id = ?1 AND ref = ?2"
            ))?
            .query_row(params![p, r], tx_from_row)
            .optional()
        })
        .await
    }

    async fn timeline(
        &self,
        transaction_id: i64,
        page: TimelinePage,
    ) -> Result<Timeline, StoreError> {
        self.read(move |c| {
            let mut observations = c
                .prepare_cached(&format!(
                    "SELECT {OBSERVATION_COLUMNS} FROM observations WHERE transaction_id = ?1 \
                     AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ))?
                .query_map(
                    params![
                        transaction_id,
                        page.before.unwrap_or(i64::MAX),
                        page.limit as i64 + 1
                    ],
                    observation_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let older_observations = crate::older(&mut observations, page.limit);
            let events = c
                .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE transaction_id = ?1 ORDER BY seq"))?
                .query_map([transaction_id], event_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut deliveries = c
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq \
                     WHERE d.transaction_id = ?1 ORDER BY d.event_seq, d.endpoint"
                ))?
                .query_map([transaction_id], delivery_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for d in &mut deliveries {
                d.history = attempts_of(c, d.id)?;
            }
            Ok(Timeline {
                observations,
                older_observations,
                events,
                deliveries,
            })
        })
        .await
    }

    async fn list_transactions(&self, query: &TxQuery) -> Result<Page<TxRecord>, StoreError> {
        let q = query.clone();
        self.read(move |c| {
            let mut sql = format!("SELECT {TX_COLUMNS} FROM transactions WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
                args.push(v);
                sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
            };
            if let Some(p) = &q.provider_id {
                arg(&mut sql, " AND provider_id = ?", p.clone().into());
            }
            if let Some(s) = q.state {
                arg(&mut sql, " AND state = ?", s.as_str().to_owned().into());
            }
            if let Some(k) = q.kind {
                arg(&mut sql, " AND kind = ?", k.as_str().to_owned().into());
            }
            if let Some(n) = q.needs_review {
                arg(&mut sql, " AND needs_review = ?", i64::from(n).into());
            }
            if let Some(t) = q.since {
                arg(
                    &mut sql,
                    " AND created_at >= ?",
                    lunas_core::to_millis(t).into(),
                );
            }
            if let Some(t) = q.until {
                arg(
                    &mut sql,
                    " AND created_at < ?",
                    lunas_core::to_millis(t).into(),
                );
            }
            if let Some(s) = &q.search {
                arg(
                    &mut sql,
                    // A part of the ref, the customer number or the provider's id.
                    " AND (instr(ref, ?) > 0 OR instr(coalesce(customer_id, ''), ?) > 0 \
                     OR instr(coalesce(provider_transaction_id, ''), ?) > 0)",
                    s.clone().into(),
                );
            }
            if let Some(cursor) = q.cursor {
                arg(&mut sql, " AND id < ?", cursor.into());
            }
            let limit = q.limit.clamp(1, 500);
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
            let mut items = c
                .prepare(&sql)?
                .query_map(rusqlite::params_from_iter(args), tx_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|t| t.id)
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let limit = limit.clamp(1, 1000) as i64;
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?
            .query_map(params![after, limit], event_from_row)?
            .collect()
        })
        .await
    }

    async fn provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT provider_id, callbacks, rejected, bad_signatures, last_callback_at, last_balance, \
                 last_balance_at FROM provider_stats ORDER BY provider_id",
            )?
            .query_map([], |r| {
                Ok(ProviderHealth {
                    provider_id: r.get(0)?,
                    callbacks: r.get(1)?,
                    rejected: r.get(2)?,
                    bad_signatures: r.get(3)?,
                    last_callback_at: r.get::<_, Option<i64>>(4)?.map(lunas_core::from_millis),
                    last_balance: r.get(5)?,
                    last_balance_at: r.get::<_, Option<i64>>(6)?.map(lunas_core::from_millis),
                })
            })?
            .collect()
        })
        .await
    }

    async fn claim_checks(
        &self,
        provider_id: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<TxRecord>, StoreError> {
        let op = WriteOp::ClaimChecks {
            provider_id: provider_id.to_owned(),
            now: to_millis(now),
            lease_ms: lease.as_millis() as i64,
            limit,
        };
        match self.writer.submit(op).await? {
            WriteResult::Checks(txs) => Ok(txs),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn claim_check(
        &self,
        transaction_id: i64,
        now: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let op = WriteOp::ClaimCheckOf {
            id: transaction_id,
            now: to_millis(now),
            lease_ms: lease.as_millis() as i64,
        };
        match self.writer.submit(op).await? {
            WriteResult::Flag(b) => Ok(b),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn record_check(&self, check: CheckRecord) -> Result<Ingested, StoreError> {
        match self
            .writer
            .submit(WriteOp::RecordCheck(Box::new(check)))
            .await?
        {
            WriteResult::Ingested(i) => Ok(i),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn init_endpoints(&self, endpoints: &[EndpointFilter]) -> Result<(), StoreError> {
        self.writer
            .submit(WriteOp::InitEndpoints(endpoints.to_vec()))
            .await
            .map(|_| ())
    }

    async fn fan_out(
        &self,
        endpoints: &[EndpointFilter],
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let op = WriteOp::FanOut {
            endpoints: endpoints.to_vec(),
            now: to_millis(now),
            limit,
        };
        match self.writer.submit(op).await? {
            WriteResult::Count(n) => Ok(n),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease: std::time::Duration,
        limit: usize,
        endpoints: &[String],
        past_dead: bool,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        let op = WriteOp::Claim {
            now: to_millis(now),
            lease_ms: lease.as_millis() as i64,
            limit,
            endpoints: endpoints.to_vec(),
            past_dead,
        };
        match self.writer.submit(op).await? {
            WriteResult::Claimed(jobs) => Ok(jobs),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), StoreError> {
        self.writer
            .submit(WriteOp::RecordAttempt(record))
            .await
            .map(|_| ())
    }

    async fn redeliver(
        &self,
        what: Redeliver,
        endpoints: &[EndpointFilter],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let op = WriteOp::Redeliver {
            what,
            endpoints: endpoints.to_vec(),
            now: to_millis(now),
        };
        match self.writer.submit(op).await? {
            WriteResult::Count(n) => Ok(n),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        let q = query.clone();
        self.read(move |c| {
            let limit = q.limit.clamp(1, 500);
            let mut items = c
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq \
                     WHERE (?1 IS NULL OR d.state = ?1) AND (?2 IS NULL OR d.endpoint = ?2) \
                     AND (?3 IS NULL OR d.id < ?3) ORDER BY d.id DESC LIMIT ?4"
                ))?
                .query_map(
                    params![q.state.map(|s| s.as_str()), q.endpoint, q.cursor, (limit + 1) as i64],
                    delivery_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|d| d.id)
            } else {
                None
            };
            for d in &mut items {
                d.history = attempts_of(c, d.id)?;
            }
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn endpoint_stats(&self) -> Result<Vec<EndpointStats>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT d.endpoint, \
                   SUM(d.state = 'pending'), SUM(d.state = 'delivered'), SUM(d.state = 'dead'), \
                   SUM(d.state = 'pending' AND EXISTS (SELECT 1 FROM deliveries p WHERE p.endpoint = d.endpoint \
                      AND p.transaction_id = d.transaction_id AND p.event_seq < d.event_seq AND p.state = 'dead')), \
                   (SELECT a.status FROM delivery_attempts a JOIN deliveries x ON x.id = a.delivery_id \
                      WHERE x.endpoint = d.endpoint ORDER BY a.id DESC LIMIT 1), \
                   (SELECT MAX(a.attempted_at) FROM delivery_attempts a JOIN deliveries x ON x.id = a.delivery_id \
                      WHERE x.endpoint = d.endpoint), \
                   (SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries x ON x.id = a.delivery_id \
                      WHERE x.endpoint = d.endpoint AND a.status = 410) \
                 FROM deliveries d GROUP BY d.endpoint ORDER BY d.endpoint",
            )?
            .query_map([], |r| {
                Ok(EndpointStats {
                    endpoint: r.get(0)?,
                    pending: r.get(1)?,
                    delivered: r.get(2)?,
                    dead: r.get(3)?,
                    last_status: r.get::<_, Option<i64>>(5)?.map(|s| s as u16),
                    last_attempt_at: r.get::<_, Option<i64>>(6)?.map(lunas_core::from_millis),
                    gone: r.get(7)?,
                    held: r.get(4)?,
                })
            })?
            .collect()
        })
        .await
    }

    async fn balance_history(
        &self,
        provider_id: &str,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<BalanceSample>, StoreError> {
        let (p, since, limit) = (
            provider_id.to_owned(),
            to_millis(since),
            limit.clamp(1, 10_000) as i64,
        );
        self.read(move |c| {
            let mut samples = c
                .prepare_cached(
                    "SELECT at, balance FROM balance_samples WHERE provider_id = ?1 AND at >= ?2 \
                     ORDER BY at DESC, id DESC LIMIT ?3",
                )?
                .query_map(params![p, since, limit], |r| {
                    Ok(BalanceSample {
                        at: lunas_core::from_millis(r.get(0)?),
                        balance: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            samples.reverse();
            Ok(samples)
        })
        .await
    }

    async fn queue_stats(&self, now: OffsetDateTime) -> Result<QueueStats, StoreError> {
        let now = to_millis(now);
        self.read(move |c| {
            // Both counts use the partial index on next_check_at: cost follows the open work.
            let (open, due, oldest): (i64, i64, Option<i64>) = c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(next_check_at <= ?1), 0), MIN(created_at) \
                 FROM transactions WHERE next_check_at IS NOT NULL",
                [now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let (pending, dead): (i64, i64) = c.query_row(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'), \
                        (SELECT COUNT(*) FROM deliveries WHERE state = 'dead')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(QueueStats {
                open_transactions: open,
                due_checks: due,
                oldest_open_at: oldest.map(lunas_core::from_millis),
                pending_deliveries: pending,
                dead_deliveries: dead,
            })
        })
        .await
    }

    fn migrations_run(&self) -> usize {
        self.migrated
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .await?;
        let now = to_millis(OffsetDateTime::now_utc());
        self.pong(WriteOp::Ping { now }).await
    }

    async fn prune(
        &self,
        cutoffs: PruneCutoffs,
        now: OffsetDateTime,
        batch: usize,
    ) -> Result<PruneReport, StoreError> {
        let op = WriteOp::Prune {
            now: to_millis(now),
            cutoffs,
            batch,
        };
        match self.writer.submit(op).await? {
            WriteResult::Pruned(report) => Ok(report),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn start_session(&self, session: SessionRow) -> Result<(), StoreError> {
        self.pong(WriteOp::StartSession(session)).await
    }

    async fn session(&self, id_digest: &str, now: i64) -> Result<Option<SessionRow>, StoreError> {
        let id_digest = id_digest.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT id_digest, created_at, expires_at, remote_addr FROM sessions \
                 WHERE id_digest = ?1 AND expires_at > ?2",
                rusqlite::params![id_digest, now],
                |r| {
                    Ok(SessionRow {
                        id_digest: r.get(0)?,
                        created_at: r.get(1)?,
                        expires_at: r.get(2)?,
                        remote_addr: r.get(3)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn end_session(&self, id_digest: &str, now: i64) -> Result<(), StoreError> {
        self.pong(WriteOp::EndSession {
            id_digest: id_digest.to_owned(),
            now,
        })
        .await
    }
}
