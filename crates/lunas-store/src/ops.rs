//! The writes a backend's single writer takes from its queue, and what it answers. Shared by
//! the backends so that a new write is added once and each backend must handle it.

use std::sync::Arc;

use lunas_core::rate::KeyedBuckets;
use lunas_core::ObservationVerdict;

use crate::model::*;

/// What an ingest's caller computes before queueing it: the SHA-256 of the body, and the
/// account's budget of bodies kept for messages that change nothing.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub digest: String,
    pub budget: Arc<KeyedBuckets>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("digest", &self.digest)
            .finish()
    }
}

impl Prepared {
    pub fn new(ingest: &Ingest, budget: &Arc<KeyedBuckets>) -> Self {
        Prepared {
            digest: crate::body_digest(&ingest.observation.body),
            budget: Arc::clone(budget),
        }
    }
}

/// The budget every store keeps of bodies of messages that change nothing:
/// [`lunas_core::UNCHANGED_BODIES_PER_MINUTE`] per provider account, on each node.
pub(crate) fn evidence_budget() -> Arc<KeyedBuckets> {
    Arc::new(KeyedBuckets::new(lunas_core::UNCHANGED_BODIES_PER_MINUTE))
}

/// How an observation of a message that changes nothing is kept (a message that changes
/// something always gets its own row and its whole body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Counted on this earlier observation (same body and verdict; or, past the caps, the
    /// latest of the same verdict).
    Repeats(i64),
    /// A row of its own with [`kept_body`] of its body.
    Row,
    /// A row of its own with its size and digest, but none of its body: the account spent its
    /// budget of kept bodies, and the transaction has no observation of this verdict to count it on.
    RowWithoutBody,
}

/// The rule for a message that changes nothing and repeats no earlier body of the
/// transaction: a row with its first bytes while the transaction is under its cap and the
/// account under its budget (`within_budget` takes from the budget only when asked).
pub(crate) fn unchanged_gets_row(observations: i64, within_budget: impl FnOnce() -> bool) -> bool {
    observations < lunas_core::MAX_OBSERVATIONS_PER_TRANSACTION && within_budget()
}

impl Keep {
    /// Past the caps: counted on the transaction's latest observation of the same verdict, if
    /// there is one.
    pub(crate) fn folded_onto(latest_same_verdict: Option<i64>) -> Keep {
        latest_same_verdict.map_or(Keep::RowWithoutBody, Keep::Repeats)
    }
}

/// A job is moved once into the writer's queue; the common one (an ingest) is kept inline
/// rather than boxed, so the callback path allocates nothing more.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum WriteOp {
    /// An ingest and what the caller prepared for it before the job is queued (the single
    /// writer only runs SQL).
    Ingest(Ingest, Prepared),
    Register(Box<Registration>),
    /// Writes the heartbeat row at `now`: readiness is a real commit.
    Ping {
        now: i64,
    },
    StartSession(SessionRow),
    /// One pass of retention: at most `batch` rows of each kind.
    Prune {
        now: i64,
        cutoffs: PruneCutoffs,
        batch: usize,
    },
    EndSession {
        id_digest: String,
        now: i64,
    },
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
        past_dead: bool,
    },
    RecordAttempt(AttemptRecord),
    Redeliver {
        what: Redeliver,
        endpoints: Vec<EndpointFilter>,
        now: i64,
    },
    ClaimChecks {
        provider_id: String,
        now: i64,
        lease_ms: i64,
        limit: usize,
    },
    ClaimCheckOf {
        id: i64,
        now: i64,
        lease_ms: i64,
    },
    RecordCheck(Box<CheckRecord>),
}

#[derive(Debug)]
pub(crate) enum WriteResult {
    Ingested(Ingested),
    Registered(TxRecord, bool),
    Pong,
    Count(usize),
    Claimed(Vec<DeliveryJob>),
    Checks(Vec<TxRecord>),
    Flag(bool),
    Pruned(PruneReport),
}

/// The states in which a transaction expects nothing more, as an SQL list: `'succeeded', ...`.
pub(crate) fn final_states_sql() -> String {
    lunas_protocol::State::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An event's data with the customer goods taken out (`null`), or `None` when it had none.
pub(crate) fn without_goods(data: &str) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(data).ok()?;
    let fields = value.as_object_mut()?;
    let mut changed = false;
    for k in lunas_core::GOODS_FIELDS {
        if fields.get(k).is_some_and(|v| !v.is_null()) {
            fields.insert(k.into(), serde_json::Value::Null);
            changed = true;
        }
    }
    changed.then(|| value.to_string())
}

/// What of a body an observation stores: all of it, or — for a message that changed nothing —
/// its first [`lunas_core::UNCHANGED_BODY_CAP`] bytes (its full size and digest are kept).
pub(crate) fn kept_body(body: &[u8], verdict: ObservationVerdict, keep: Keep) -> &[u8] {
    if keep == Keep::RowWithoutBody {
        &[]
    } else if verdict.changes_nothing() {
        &body[..body.len().min(lunas_core::UNCHANGED_BODY_CAP)]
    } else {
        body
    }
}
