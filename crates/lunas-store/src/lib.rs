//! # lunas-store
//!
//! The only place in lunas with SQL. [`Store`] is the small interface the gateway uses; each
//! backend implements it with its own migrations: [`sqlite::SqliteStore`] (one node) and
//! [`postgres::PostgresStore`] (one node or several on one database). Both are built around
//! group commit — one writer takes whatever writes are queued, applies them in one
//! transaction (each in its own savepoint) and commits once, durably, then answers them all.
//! Nothing is acknowledged before that commit.

mod columns;
mod model;
mod ops;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use model::*;

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be written or read right now (locked, disk full, gone). Callers
    /// answer 503 so providers retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Invalid input that the store refuses (e.g. a bad URL scheme).
    #[error("{0}")]
    Invalid(String),
}

/// The storage interface, grouped by aggregate: transactions with their observations and
/// events (written together, atomically), and the reads of the admin API.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores an observation and, for an accepted message, applies its fact to the
    /// transaction with [`lunas_core::decide`] and stores the resulting events, all in one
    /// durable commit. Returns only after that commit.
    async fn ingest(&self, ingest: Ingest) -> Result<Ingested, StoreError>;

    /// Registers a transaction the merchant started. Returns it and whether it was created
    /// (`false`: it was already known and is returned as stored).
    async fn register(&self, registration: Registration) -> Result<(TxRecord, bool), StoreError>;

    /// One transaction by its provider account and ref.
    async fn transaction(
        &self,
        provider_id: &str,
        reference: &str,
    ) -> Result<Option<TxRecord>, StoreError>;

    /// A transaction's observations (one page) and events, oldest first.
    async fn timeline(
        &self,
        transaction_id: i64,
        page: TimelinePage,
    ) -> Result<Timeline, StoreError>;

    /// Transactions matching `query`, newest first, one page.
    async fn list_transactions(&self, query: &TxQuery) -> Result<Page<TxRecord>, StoreError>;

    /// Events with a cursor greater than `after`, oldest first, at most `limit`.
    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// Health counters per provider account that has been heard from.
    async fn provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError>;

    /// Reported deposit balances of one provider account since `since`, oldest first, at most
    /// `limit` (the newest when there are more).
    async fn balance_history(
        &self,
        provider_id: &str,
        since: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<BalanceSample>, StoreError>;

    /// Sizes of the work queues at `now`.
    async fn queue_stats(&self, now: OffsetDateTime) -> Result<QueueStats, StoreError>;

    /// Whether the store can serve reads and commit a write now: it writes a heartbeat row,
    /// so a full disk or a lock held elsewhere shows here.
    async fn ping(&self) -> Result<(), StoreError>;

    // --- Retention ---------------------------------------------------------------------------

    /// One pass of retention at `now` (at most `batch` rows of each kind, so writes in flight
    /// wait little); call again until the report is empty.
    async fn prune(
        &self,
        cutoffs: PruneCutoffs,
        now: OffsetDateTime,
        batch: usize,
    ) -> Result<PruneReport, StoreError>;

    // --- Dashboard sessions -----------------------------------------------------------------

    /// Stores a new session (and forgets expired ones).
    async fn start_session(&self, session: SessionRow) -> Result<(), StoreError>;

    /// The session with this id digest, if it exists and has not expired at `now` (unix ms).
    async fn session(&self, id_digest: &str, now: i64) -> Result<Option<SessionRow>, StoreError>;

    /// Ends a session (logout); ending one that does not exist is not an error.
    async fn end_session(&self, id_digest: &str, now: i64) -> Result<(), StoreError>;

    /// How many schema migrations ran when the store was opened (0: it was up to date).
    fn migrations_run(&self) -> usize;

    // --- Reconciliation ---------------------------------------------------------------------

    /// Leases up to `limit` transactions of `provider_id` whose status check is due at `now`.
    /// A lease that is not released by [`Store::record_check`] expires, so a crashed checker
    /// loses no work, and no two checkers hold the same transaction.
    async fn claim_checks(
        &self,
        provider_id: &str,
        now: OffsetDateTime,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<TxRecord>, StoreError>;

    /// Leases one transaction for a check made now (a forced check); `false` when another
    /// check of it holds the lease.
    async fn claim_check(
        &self,
        transaction_id: i64,
        now: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError>;

    /// Records a status check and applies what it established, releasing the lease.
    async fn record_check(&self, check: CheckRecord) -> Result<Ingested, StoreError>;

    // --- Delivery to the merchant's endpoints -------------------------------------------

    /// Starts each endpoint not seen before at the current end of the event feed (a new
    /// endpoint receives events from now on; older ones can be redelivered).
    async fn init_endpoints(&self, endpoints: &[EndpointFilter]) -> Result<(), StoreError>;

    /// Creates the deliveries of events each endpoint has not yet seen, at most `limit` events
    /// per endpoint. Returns how many deliveries were created.
    async fn fan_out(
        &self,
        endpoints: &[EndpointFilter],
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// Leases up to `limit` deliveries that are due, to the endpoints in `endpoints` only,
    /// skipping any delivery whose transaction has an earlier event not yet delivered to the
    /// same endpoint (events reach each endpoint in order per transaction). With `past_dead`,
    /// an earlier dead-lettered event does not hold the later ones back.
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease: std::time::Duration,
        limit: usize,
        endpoints: &[String],
        past_dead: bool,
    ) -> Result<Vec<DeliveryJob>, StoreError>;

    /// Records an attempt and what follows it; releases the lease.
    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), StoreError>;

    /// Queues deliveries again, due now. Returns how many.
    async fn redeliver(
        &self,
        what: Redeliver,
        endpoints: &[EndpointFilter],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError>;

    /// Deliveries matching `query`, newest first, with their attempts.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError>;

    /// Delivery counters per endpoint.
    async fn endpoint_stats(&self) -> Result<Vec<EndpointStats>, StoreError>;
}

/// Turns up to `limit + 1` observations read newest first into one page, oldest first, and
/// the cursor of the older page if the extra one was there.
pub(crate) fn older(observations: &mut Vec<Observation>, limit: usize) -> Option<i64> {
    let more = observations.len() > limit;
    observations.truncate(limit);
    observations.reverse();
    more.then(|| observations.first().map(|o| o.id)).flatten()
}

/// The digest kept with every observation's body (hex SHA-256): repeats are recognised by it,
/// and it stays when retention erases the body.
pub(crate) fn body_digest(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// Opens the store a URL names (`sqlite://PATH` or `postgres://...`), running its migrations.
pub async fn open(
    url: &str,
    options: &StoreOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = sqlite::SqliteStore::open(path, options).await?;
        return Ok(std::sync::Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PostgresStore::open(url, options).await?;
        return Ok(std::sync::Arc::new(store));
    }
    Err(StoreError::Invalid(format!(
        "unsupported storage URL {url:?}: expected sqlite://PATH or postgres://..."
    )))
}
