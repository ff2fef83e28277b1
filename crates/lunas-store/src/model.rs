//! What the store takes and returns, beyond the domain types of `lunas-core`.

use std::time::Duration;

pub use lunas_core::{
    Detail, Event, Fact, NewObservation, Observation, ObservationVerdict, Trust, TxRecord,
};
use lunas_protocol::{State, TxKind};
use time::OffsetDateTime;

/// Tuning of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a write waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// The most writes one group commit takes.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            max_batch: 512,
        }
    }
}

/// One observation to store, with the fact it states when it was accepted (`None` for a
/// refused message, whose `observation.verdict` says why).
#[derive(Debug, Clone)]
pub struct Ingest {
    pub observation: NewObservation,
    pub fact: Option<Fact>,
    /// How far to believe the fact (see [`Trust`]).
    pub trust: Trust,
    /// When the transaction still awaits its outcome and has no check scheduled, ask the
    /// provider this long from now (`None`: schedule nothing).
    pub check_after: Option<Duration>,
    /// The account's low-balance threshold: a reported balance crossing below it emits
    /// `provider.balance_low`.
    pub low_balance: Option<i64>,
}

impl Ingest {
    /// An accepted message, believed as it is, with no check scheduled.
    pub fn accepted(observation: NewObservation, fact: Fact) -> Self {
        Ingest {
            observation,
            fact: Some(fact),
            trust: Trust::Authoritative,
            check_after: None,
            low_balance: None,
        }
    }

    /// A refused message, kept as evidence.
    pub fn refused(observation: NewObservation) -> Self {
        Ingest {
            observation,
            fact: None,
            trust: Trust::Authoritative,
            check_after: None,
            low_balance: None,
        }
    }
}

/// The result of one status check.
#[derive(Debug, Clone)]
pub struct CheckRecord {
    pub transaction_id: i64,
    /// The request and answer (or the error), as evidence; `verdict` is used when there is no fact.
    pub observation: NewObservation,
    /// What the provider established, if its answer was usable.
    pub fact: Option<Fact>,
    /// When to ask again, if the transaction is still open afterwards.
    pub next_check_at: Option<OffsetDateTime>,
    /// The provider's window has passed: flag for review and stop asking.
    pub give_up: bool,
    /// The account's low-balance threshold (see [`Ingest::low_balance`]).
    pub low_balance: Option<i64>,
    /// The order's new state (orders lunas places), saved with the check.
    pub order: Option<lunas_core::OrderState>,
    /// Keep the check lease and count no attempt: the caller goes on working on the
    /// transaction (an order request about to leave).
    pub keep_lease: bool,
    /// A person's resolution of the review, applied instead of a fact.
    pub resolution: Option<lunas_core::Resolution>,
}

/// One reported deposit balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceSample {
    pub at: OffsetDateTime,
    pub balance: i64,
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub verdict: ObservationVerdict,
    pub observation_id: i64,
    /// The transaction after the change (`None` for refusals).
    pub record: Option<TxRecord>,
    /// The events committed with it.
    pub events: Vec<Event>,
}

/// A transaction the merchant tells lunas about.
#[derive(Debug, Clone)]
pub struct Registration {
    pub provider_id: String,
    pub reference: String,
    pub kind: TxKind,
    pub detail: Detail,
    pub at: OffsetDateTime,
    /// Ask the provider this long after registration if no outcome arrives before.
    pub check_after: Option<Duration>,
    /// How lunas learnt of it: `registration` or `order`.
    pub origin: &'static str,
    /// The order lunas is placing, for an order.
    pub order: Option<lunas_core::OrderState>,
    /// Hold the check lease this long from `at` (the caller works on the transaction now; if
    /// it dies, the reconciler takes over when the lease ends).
    pub lease: Option<Duration>,
}

/// A filter over transactions, with cursor pagination.
#[derive(Debug, Clone, Default)]
pub struct TxQuery {
    pub provider_id: Option<String>,
    pub state: Option<State>,
    pub kind: Option<TxKind>,
    pub needs_review: Option<bool>,
    /// Created at or after.
    pub since: Option<OffsetDateTime>,
    /// Created before.
    pub until: Option<OffsetDateTime>,
    /// A part of the ref, the customer number or the provider's transaction id.
    pub search: Option<String>,
    /// Return transactions older than this cursor (from a previous page).
    pub cursor: Option<i64>,
    pub limit: usize,
}

/// One page of results and the cursor of the next, if any.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<i64>,
}

/// A transaction's evidence.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// One page of observations: the newest `limit` before the page's cursor, oldest first.
    pub observations: Vec<Observation>,
    /// The cursor of the page of older observations, when there are any.
    pub older_observations: Option<i64>,
    pub events: Vec<Event>,
    /// Deliveries of those events, each with its attempts.
    pub deliveries: Vec<Delivery>,
}

/// What the store knows of one provider account's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderHealth {
    pub provider_id: String,
    pub callbacks: i64,
    pub rejected: i64,
    pub bad_signatures: i64,
    pub last_callback_at: Option<OffsetDateTime>,
    pub last_balance: Option<i64>,
    pub last_balance_at: Option<OffsetDateTime>,
}

pub use lunas_core::{Attempt, Delivery, DeliveryState};

/// An endpoint as the store needs it: its key and its event filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointFilter {
    pub id: String,
    pub events: Vec<String>,
}

/// A delivery claimed for an attempt (leased until the attempt is recorded or the lease ends).
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub delivery_id: i64,
    pub endpoint: String,
    /// Attempts already made in the current schedule.
    pub attempts: i64,
    pub event: Event,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptNext {
    Delivered,
    RetryAt(OffsetDateTime),
    Dead,
}

/// One attempt's result, to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub attempt: Attempt,
    pub next: AttemptNext,
}

/// What to deliver again.
#[derive(Debug, Clone)]
pub enum Redeliver {
    /// One event (by its `evt_...` id), to every endpoint whose filters match.
    Event(String),
    /// Every event of one transaction.
    Transaction(i64),
    /// Every dead-lettered delivery whose event was created in the window.
    Dead {
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        endpoint: Option<String>,
    },
}

/// A filter over deliveries.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub state: Option<DeliveryState>,
    pub endpoint: Option<String>,
    pub cursor: Option<i64>,
    pub limit: usize,
}

/// Delivery counters of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    pub endpoint: String,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
    pub last_status: Option<u16>,
    pub last_attempt_at: Option<OffsetDateTime>,
    /// Attempts answered 410 Gone: surfaced, never acted on silently.
    pub gone: i64,
    /// Pending deliveries behind a dead-lettered earlier event of the same transaction: they
    /// wait for it to be redelivered (unless the endpoint delivers past dead letters).
    pub held: i64,
}

/// Sizes of the work queues, for `/metrics` and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Transactions with an outcome still to learn (a check scheduled).
    pub open_transactions: i64,
    /// Of those, the ones whose check is due now.
    pub due_checks: i64,
    /// When the oldest open transaction was created.
    pub oldest_open_at: Option<OffsetDateTime>,
    pub pending_deliveries: i64,
    pub dead_deliveries: i64,
}

/// A dashboard session as stored: the SHA-256 digest of its random id (never the id itself),
/// when it began and ends (unix milliseconds), and who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_digest: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub remote_addr: Option<String>,
}

/// Which observations of a transaction's timeline to read: the newest `limit` with an id below
/// `before` (all when `before` is `None`). Events and deliveries come whole: their number is
/// bounded by the transaction's state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePage {
    pub limit: usize,
    pub before: Option<i64>,
}

impl TimelinePage {
    /// The newest `limit` observations.
    pub fn newest(limit: usize) -> Self {
        TimelinePage {
            limit,
            before: None,
        }
    }
}

/// What retention removes, as cutoffs in unix milliseconds: older than a cutoff goes; `None`
/// keeps that kind of data forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneCutoffs {
    /// Observations' raw bodies received before it are erased (their SHA-256 stays).
    pub bodies: Option<i64>,
    /// Customer goods of transactions final and unchanged since before it are erased, from the
    /// transaction, its events and its observations' bodies.
    pub goods: Option<i64>,
    /// Observations received before it are deleted.
    pub observations: Option<i64>,
    /// Events created before it are deleted with their deliveries, unless one is still pending.
    pub events: Option<i64>,
    /// Balance samples taken before it are deleted.
    pub balances: Option<i64>,
}

/// How much one pass of retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub bodies: usize,
    pub goods: usize,
    pub observations: usize,
    pub events: usize,
    pub deliveries: usize,
    pub balances: usize,
}

impl PruneReport {
    pub fn total(&self) -> usize {
        self.bodies + self.goods + self.observations + self.events + self.deliveries + self.balances
    }

    pub fn add(&mut self, other: &PruneReport) {
        self.bodies += other.bodies;
        self.goods += other.goods;
        self.observations += other.observations;
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.balances += other.balances;
    }
}
