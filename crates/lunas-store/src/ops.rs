//! The writes a backend's single writer takes from its queue, and what it answers. Shared by
//! the backends so that a new write is added once and each backend must handle it.

use crate::model::*;

/// A job is moved once into the writer's queue; the common one (an ingest) is kept inline
/// rather than boxed, so the callback path allocates nothing more.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum WriteOp {
    /// An ingest and the SHA-256 of its body, computed by the caller before the job is queued
    /// (the single writer only runs SQL).
    Ingest(Ingest, String),
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
pub(crate) fn kept_body(body: &[u8], verdict: lunas_core::ObservationVerdict) -> &[u8] {
    if verdict.changes_nothing() {
        &body[..body.len().min(lunas_core::UNCHANGED_BODY_CAP)]
    } else {
        body
    }
}
