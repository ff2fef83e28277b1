//! PostgreSQL: the backend for several lunas nodes on one database (and for managed Postgres).
//!
//! Each node runs one writer task doing group commit (see [`writer`]): the writes queued in
//! this process go into one transaction, each in its own savepoint, and are answered only
//! after the commit, which is durable (`synchronous_commit = on`) before it returns. Rows are
//! the coordination between nodes: the transaction a fact is about is locked
//! (`FOR NO KEY UPDATE`) while `decide` runs on it; reconciliation checks and deliveries are
//! leased with `FOR UPDATE SKIP LOCKED` and a lease column, so a crashed node's work comes
//! back when its lease ends; events are inserted under one advisory lock held to commit, so
//! the feed's `seq` order is commit order. Reads use a small pool of their own.
//!
//! Times are BIGINT milliseconds since the Unix epoch, as in SQLite, so both backends map rows
//! the same way. Migrations are embedded (`migrations/postgres/*.sql`), counted in
//! `lunas_migrations`, and run under an advisory lock, so nodes starting together migrate once.

mod delivery;
mod rows;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use lunas_core::{from_millis, to_millis};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Row};
use time::OffsetDateTime;

use crate::model::*;
use crate::ops::{WriteOp, WriteResult};
use crate::{Store, StoreError};
use rows::{
    attempt_from_row, delivery_from_row, event_from_row, observation_from_row, tx_from_row,
    ATTEMPT_COLUMNS, DELIVERY_COLUMNS, EVENT_COLUMNS, OBSERVATION_COLUMNS, TX_COLUMNS,
};
use writer::Writer;

/// The migrations, applied in order; `lunas_migrations` records which ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_extra.sql"),
    include_str!("../../migrations/postgres/0003_latency_us.sql"),
    include_str!("../../migrations/postgres/0004_sessions_evidence.sql"),
];

/// The advisory lock migrations run under.
const MIGRATE_LOCK: i64 = 0x6c75_6e61_7300;

/// Read connections per node.
const READERS: u32 = 4;

/// The PostgreSQL store.
pub struct PostgresStore {
    writer: Writer,
    pool: PgPool,
    /// Migrations that ran when the store was opened.
    migrated: usize,
    /// Bodies kept of messages that change nothing, per account ([`crate::ops::Prepared`]).
    evidence: std::sync::Arc<lunas_core::rate::KeyedBuckets>,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url)
        .map(|o| o.application_name("lunas"))
        .map_err(|e| StoreError::Invalid(format!("storage.url: {e}")))
}

/// Runs the migrations not yet applied, under an advisory lock. Returns how many ran.
pub async fn migrate(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATE_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS lunas_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let done: i32 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM lunas_migrations")
        .fetch_one(&mut *tx)
        .await?;
    let mut ran = 0;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO lunas_migrations (version, applied_at) VALUES ($1, $2)")
            .bind((i + 1) as i32)
            .bind(to_millis(OffsetDateTime::now_utc()))
            .execute(&mut *tx)
            .await?;
        ran += 1;
    }
    tx.commit().await?;
    Ok(ran)
}

impl PostgresStore {
    /// Connects to the database `url` names (`postgres://user:password@host:port/db?sslmode=...`)
    /// and runs its migrations.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = connect_options(url)?;
        let acquire = options.busy_timeout.max(Duration::from_secs(5));
        let lock_timeout = format!("{}ms", options.busy_timeout.as_millis().max(1));
        let pool = PgPoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .acquire_timeout(acquire)
            .after_connect(move |conn, _| {
                // A read never waits on a lock longer than a write would.
                let lock_timeout = lock_timeout.clone();
                Box::pin(async move {
                    sqlx::query("SELECT set_config('lock_timeout', $1, false)")
                        .bind(lock_timeout)
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            })
            .connect_with(connect.clone())
            .await
            .map_err(|e| unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        let migrated = migrate(&pool).await.map_err(unavailable)?;
        let writes = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(acquire)
            .connect_with(connect)
            .await
            .map_err(|e| unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        let lock_timeout = options.busy_timeout.as_millis().max(1) as u64;
        let writer = Writer::start(writes, options.max_batch, lock_timeout);
        Ok(PostgresStore {
            writer,
            pool,
            migrated,
            evidence: crate::ops::evidence_budget(),
        })
    }

    async fn submit(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        self.writer.submit(op).await
    }
}

fn unexpected(other: WriteResult) -> StoreError {
    StoreError::Unavailable(format!("writer answered {other:?}"))
}

async fn attempts_of(pool: &PgPool, ids: &[i64]) -> Result<Vec<(i64, Attempt)>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ATTEMPT_COLUMNS}, delivery_id FROM delivery_attempts WHERE delivery_id = ANY($1) \
         ORDER BY delivery_id, id"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok((r.try_get(5)?, attempt_from_row(r)?)))
    .collect()
}

/// Fills each delivery's `history` with its attempts, oldest first.
async fn with_history(pool: &PgPool, deliveries: &mut [Delivery]) -> Result<(), sqlx::Error> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
    let mut by_id: std::collections::HashMap<i64, Vec<Attempt>> = Default::default();
    for (id, a) in attempts_of(pool, &ids).await? {
        by_id.entry(id).or_default().push(a);
    }
    for d in deliveries {
        d.history = by_id.remove(&d.id).unwrap_or_default();
    }
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn ingest(&self, ingest: Ingest) -> Result<Ingested, StoreError> {
        let prepared = crate::ops::Prepared::new(&ingest, &self.evidence);
        match self.submit(WriteOp::Ingest(ingest, prepared)).await? {
            WriteResult::Ingested(i) => Ok(i),
            other => Err(unexpected(other)),
        }
    }

    async fn register(&self, registration: Registration) -> Result<(TxRecord, bool), StoreError> {
        match self
            .submit(WriteOp::Register(Box::new(registration)))
            .await?
        {
            WriteResult::Registered(rec, created) => Ok((rec, created)),
            other => Err(unexpected(other)),
        }
    }

    async fn transaction(
        &self,
        provider_id: &str,
        reference: &str,
    ) -> Result<Option<TxRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TX_COLUMNS} FROM transactions WHERE provider_id = $1 AND ref = $2"
        ))
        .bind(provider_id)
        .bind(reference)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .map(|r| tx_from_row(&r))
        .transpose()
        .map_err(unavailable)
    }

    async fn timeline(
        &self,
        transaction_id: i64,
        page: TimelinePage,
    ) -> Result<Timeline, StoreError> {
        let run = async {
            let mut observations = sqlx::query(&format!(
                "SELECT {OBSERVATION_COLUMNS} FROM observations WHERE transaction_id = $1 \
                 AND id < $2 ORDER BY id DESC LIMIT $3"
            ))
            .bind(transaction_id)
            .bind(page.before.unwrap_or(i64::MAX))
            .bind(page.limit as i64 + 1)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(observation_from_row)
            .collect::<Result<Vec<_>, _>>()?;
            let events = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE transaction_id = $1 ORDER BY seq"
            ))
            .bind(transaction_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
            let mut deliveries = sqlx::query(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq \
                 WHERE d.transaction_id = $1 ORDER BY d.event_seq, d.endpoint"
            ))
            .bind(transaction_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>, _>>()?;
            with_history(&self.pool, &mut deliveries).await?;
            let older_observations = crate::older(&mut observations, page.limit);
            Ok::<_, sqlx::Error>(Timeline {
                observations,
                older_observations,
                events,
                deliveries,
            })
        };
        run.await.map_err(unavailable)
    }

    async fn list_transactions(&self, query: &TxQuery) -> Result<Page<TxRecord>, StoreError> {
        let q = query;
        let mut b = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "SELECT {TX_COLUMNS} FROM transactions WHERE true"
        ));
        if let Some(p) = &q.provider_id {
            b.push(" AND provider_id = ").push_bind(p.clone());
        }
        if let Some(s) = q.state {
            b.push(" AND state = ").push_bind(s.as_str());
        }
        if let Some(k) = q.kind {
            b.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(n) = q.needs_review {
            b.push(" AND needs_review = ").push_bind(n);
        }
        if let Some(t) = q.since {
            b.push(" AND created_at >= ").push_bind(to_millis(t));
        }
        if let Some(t) = q.until {
            b.push(" AND created_at < ").push_bind(to_millis(t));
        }
        if let Some(s) = &q.search {
            // A part of the ref, the customer number or the provider's id.
            b.push(" AND (strpos(ref, ")
                .push_bind(s.clone())
                .push(") > 0 OR strpos(coalesce(customer_id, ''), ")
                .push_bind(s.clone())
                .push(") > 0 OR strpos(coalesce(provider_transaction_id, ''), ")
                .push_bind(s.clone())
                .push(") > 0)");
        }
        if let Some(cursor) = q.cursor {
            b.push(" AND id < ").push_bind(cursor);
        }
        let limit = q.limit.clamp(1, 500);
        b.push(" ORDER BY id DESC LIMIT ")
            .push_bind((limit + 1) as i64);
        let mut items = b
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(tx_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|t| t.id)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit.clamp(1, 1000) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)
    }

    async fn provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError> {
        sqlx::query(
            "SELECT provider_id, callbacks, rejected, bad_signatures, last_callback_at, last_balance, \
             last_balance_at FROM provider_stats ORDER BY provider_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| {
            Ok(ProviderHealth {
                provider_id: r.try_get(0)?,
                callbacks: r.try_get(1)?,
                rejected: r.try_get(2)?,
                bad_signatures: r.try_get(3)?,
                last_callback_at: r.try_get::<Option<i64>, _>(4)?.map(from_millis),
                last_balance: r.try_get(5)?,
                last_balance_at: r.try_get::<Option<i64>, _>(6)?.map(from_millis),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(unavailable)
    }

    async fn balance_history(
        &self,
        provider_id: &str,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<BalanceSample>, StoreError> {
        let mut samples = sqlx::query(
            "SELECT at, balance FROM balance_samples WHERE provider_id = $1 AND at >= $2 \
             ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(provider_id)
        .bind(to_millis(since))
        .bind(limit.clamp(1, 10_000) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| {
            Ok(BalanceSample {
                at: from_millis(r.try_get(0)?),
                balance: r.try_get(1)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(unavailable)?;
        samples.reverse();
        Ok(samples)
    }

    async fn queue_stats(&self, now: OffsetDateTime) -> Result<QueueStats, StoreError> {
        // The first count uses the partial index on next_check_at: cost follows the open work.
        let r = sqlx::query(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE next_check_at <= $1), MIN(created_at) \
             FROM transactions WHERE next_check_at IS NOT NULL",
        )
        .bind(to_millis(now))
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let d = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'), \
                    (SELECT COUNT(*) FROM deliveries WHERE state = 'dead')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let read = || -> Result<QueueStats, sqlx::Error> {
            Ok(QueueStats {
                open_transactions: r.try_get(0)?,
                due_checks: r.try_get(1)?,
                oldest_open_at: r.try_get::<Option<i64>, _>(2)?.map(from_millis),
                pending_deliveries: d.try_get(0)?,
                dead_deliveries: d.try_get(1)?,
            })
        };
        read().map_err(unavailable)
    }

    fn migrations_run(&self) -> usize {
        self.migrated
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        let now = to_millis(OffsetDateTime::now_utc());
        match self.submit(WriteOp::Ping { now }).await? {
            WriteResult::Pong => Ok(()),
            other => Err(unexpected(other)),
        }
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
        match self.submit(op).await? {
            WriteResult::Pruned(report) => Ok(report),
            other => Err(StoreError::Unavailable(format!(
                "writer answered {other:?}"
            ))),
        }
    }

    async fn start_session(&self, session: SessionRow) -> Result<(), StoreError> {
        match self.submit(WriteOp::StartSession(session)).await? {
            WriteResult::Pong => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn session(&self, id_digest: &str, now: i64) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id_digest, created_at, expires_at, remote_addr FROM sessions \
             WHERE id_digest = $1 AND expires_at > $2",
        )
        .bind(id_digest)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|r| {
            Ok::<_, sqlx::Error>(SessionRow {
                id_digest: r.try_get(0)?,
                created_at: r.try_get(1)?,
                expires_at: r.try_get(2)?,
                remote_addr: r.try_get(3)?,
            })
        })
        .transpose()
        .map_err(unavailable)
    }

    async fn end_session(&self, id_digest: &str, now: i64) -> Result<(), StoreError> {
        match self
            .submit(WriteOp::EndSession {
                id_digest: id_digest.to_owned(),
                now,
            })
            .await?
        {
            WriteResult::Pong => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn claim_checks(
        &self,
        provider_id: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<TxRecord>, StoreError> {
        let op = WriteOp::ClaimChecks {
            provider_id: provider_id.to_owned(),
            now: to_millis(now),
            lease_ms: lease.as_millis() as i64,
            limit,
        };
        match self.submit(op).await? {
            WriteResult::Checks(txs) => Ok(txs),
            other => Err(unexpected(other)),
        }
    }

    async fn claim_check(
        &self,
        transaction_id: i64,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let op = WriteOp::ClaimCheckOf {
            id: transaction_id,
            now: to_millis(now),
            lease_ms: lease.as_millis() as i64,
        };
        match self.submit(op).await? {
            WriteResult::Flag(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    async fn record_check(&self, check: CheckRecord) -> Result<Ingested, StoreError> {
        match self.submit(WriteOp::RecordCheck(Box::new(check))).await? {
            WriteResult::Ingested(i) => Ok(i),
            other => Err(unexpected(other)),
        }
    }

    async fn init_endpoints(&self, endpoints: &[EndpointFilter]) -> Result<(), StoreError> {
        self.submit(WriteOp::InitEndpoints(endpoints.to_vec()))
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
        match self.submit(op).await? {
            WriteResult::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease: Duration,
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
        match self.submit(op).await? {
            WriteResult::Claimed(jobs) => Ok(jobs),
            other => Err(unexpected(other)),
        }
    }

    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), StoreError> {
        self.submit(WriteOp::RecordAttempt(record))
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
        match self.submit(op).await? {
            WriteResult::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        let limit = query.limit.clamp(1, 500);
        let mut items = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE ($1::text IS NULL OR d.state = $1) AND ($2::text IS NULL OR d.endpoint = $2) \
             AND ($3::bigint IS NULL OR d.id < $3) ORDER BY d.id DESC LIMIT $4"
        ))
        .bind(query.state.map(|s| s.as_str()))
        .bind(&query.endpoint)
        .bind(query.cursor)
        .bind((limit + 1) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .iter()
        .map(delivery_from_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|d| d.id)
        } else {
            None
        };
        with_history(&self.pool, &mut items)
            .await
            .map_err(unavailable)?;
        Ok(Page { items, next_cursor })
    }

    async fn endpoint_stats(&self) -> Result<Vec<EndpointStats>, StoreError> {
        sqlx::query(
            "SELECT d.endpoint, \
               COUNT(*) FILTER (WHERE d.state = 'pending'), COUNT(*) FILTER (WHERE d.state = 'delivered'), \
               COUNT(*) FILTER (WHERE d.state = 'dead'), \
               COUNT(*) FILTER (WHERE d.state = 'pending' AND EXISTS (SELECT 1 FROM deliveries p \
                  WHERE p.endpoint = d.endpoint AND p.transaction_id = d.transaction_id \
                  AND p.event_seq < d.event_seq AND p.state = 'dead')), \
               (SELECT a.status FROM delivery_attempts a JOIN deliveries x ON x.id = a.delivery_id \
                  WHERE x.endpoint = d.endpoint ORDER BY a.id DESC LIMIT 1), \
               (SELECT MAX(a.attempted_at) FROM delivery_attempts a JOIN deliveries x ON x.id = a.delivery_id \
                  WHERE x.endpoint = d.endpoint), \
               (SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries x ON x.id = a.delivery_id \
                  WHERE x.endpoint = d.endpoint AND a.status = 410) \
             FROM deliveries d GROUP BY d.endpoint ORDER BY d.endpoint",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| {
            Ok(EndpointStats {
                endpoint: r.try_get(0)?,
                pending: r.try_get(1)?,
                delivered: r.try_get(2)?,
                dead: r.try_get(3)?,
                held: r.try_get(4)?,
                last_status: r.try_get::<Option<i64>, _>(5)?.map(|s| s as u16),
                last_attempt_at: r.try_get::<Option<i64>, _>(6)?.map(from_millis),
                gone: r.try_get(7)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(unavailable)
    }
}

// --- Administration: scratch databases (tests, CI) ------------------------------------------

/// `url` with its database replaced by `database`.
pub fn database_url(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_at = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_at..].find('/') {
        Some(slash) => &base[..authority_at + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Invalid(format!(
            "{name:?}: a scratch database name is 1 to 63 of [a-z0-9_]"
        )));
    }
    Ok(())
}

/// Creates the database `name` through the server `admin_url` points at, and returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    check_name(name)?;
    let mut conn = sqlx::PgConnection::connect_with(&connect_options(admin_url)?)
        .await
        .map_err(unavailable)?;
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .map_err(unavailable)?;
    let _ = conn.close().await;
    Ok(database_url(admin_url, name))
}

/// Drops the database `name` (ending its sessions first), if it exists.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    check_name(name)?;
    let mut conn = sqlx::PgConnection::connect_with(&connect_options(admin_url)?)
        .await
        .map_err(unavailable)?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .map_err(unavailable)?;
    let _ = conn.close().await;
    Ok(())
}

/// The names of the databases on the server `admin_url` points at that start with `prefix`.
pub async fn list_databases(admin_url: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut conn = sqlx::PgConnection::connect_with(&connect_options(admin_url)?)
        .await
        .map_err(unavailable)?;
    let names = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
    )
    .bind(prefix)
    .fetch_all(&mut conn)
    .await
    .map_err(unavailable)?;
    let _ = conn.close().await;
    Ok(names)
}
