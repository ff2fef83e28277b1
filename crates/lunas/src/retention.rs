//! Retention: evidence is kept as long as `[retention]` says, then erased or deleted, in small
//! batches so that callbacks committing meanwhile wait little. `lunas serve` (the worker role)
//! runs it every `retention.interval`; `lunas prune` runs it once.
//!
//! What goes, and what stays (see [`lunas_store::PruneCutoffs`]):
//! - raw bodies of observations: erased, their SHA-256 and size kept, so the timeline still
//!   says what arrived, when, from where and with what verdict;
//! - customer goods of final transactions: erased from the transaction, its events' data and
//!   its observations' bodies; `goods_erased_at` says when;
//! - observations, events with their deliveries (never one still pending), balance samples:
//!   deleted. Transactions themselves are kept.

use std::sync::Arc;

use lunas_store::{PruneReport, Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::config::RetentionConfig;

/// Rows of each kind one batch touches at most.
const BATCH: usize = 500;

pub struct Retention {
    store: Arc<dyn Store>,
    config: RetentionConfig,
}

impl Retention {
    pub fn new(store: Arc<dyn Store>, config: RetentionConfig) -> Self {
        Retention { store, config }
    }

    /// Prunes everything due at `now`, batch after batch, and says how much went.
    pub async fn run_once(&self, now: OffsetDateTime) -> Result<PruneReport, StoreError> {
        let cutoffs = self.config.cutoffs(now);
        let mut total = PruneReport::default();
        loop {
            let pass = self.store.prune(cutoffs, now, BATCH).await?;
            total.add(&pass);
            if pass.total() == 0 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Runs every `retention.interval` until `stop` is notified.
    pub async fn run(self: Arc<Self>, stop: Arc<Notify>) {
        loop {
            match self.run_once(OffsetDateTime::now_utc()).await {
                Ok(r) if r.total() > 0 => tracing::info!(
                    bodies_erased = r.bodies,
                    goods_erased = r.goods,
                    observations_deleted = r.observations,
                    events_deleted = r.events,
                    deliveries_deleted = r.deliveries,
                    balance_samples_deleted = r.balances,
                    "retention pruned old evidence"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "retention could not prune; it tries again at the next interval")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.interval) => {}
                _ = stop.notified() => return,
            }
        }
    }
}

/// One line per kind, for people: what a run removed.
pub fn describe(r: &PruneReport) -> String {
    format!(
        "raw bodies erased: {}\ntransactions whose goods were erased: {}\nobservations deleted: {}\n\
         events deleted: {} (with {} deliveries)\nbalance samples deleted: {}",
        r.bodies, r.goods, r.observations, r.events, r.deliveries, r.balances
    )
}
