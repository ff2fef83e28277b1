//! The reconciler (the README's reconciliation): no transaction stays unknown.
//!
//! Transactions whose outcome is overdue are leased from the store (a crash loses no work, two
//! checkers never hold the same transaction), asked about with the provider's own check-status
//! API, and moved by the same transition rules as callbacks. Provider errors, timeouts, 5xx,
//! refusals and garbage are never an outcome: the transaction waits for the next check, on a
//! per-provider backoff and within a per-provider rate budget. A "not found" (prepaid `06`) or a
//! postpaid "payment not received" (status 0) becomes an *inferred* `failed` only when the
//! provider has said so for a whole grace period: flagged for review and still checked until
//! the provider's window ends, so that a real outcome can overturn it. After the window an open
//! transaction is flagged `needs_review` with a `transaction.unresolved` event, and checks stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lunas_core::rate::Bucket;
use lunas_core::{
    Basis, Detail, Fact, NewObservation, ObservationVerdict, Source, Submission, TxRecord,
};
use lunas_protocol::{State, TxKind};
use lunas_store::{CheckRecord, Ingested, Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::ProviderConfig;
use crate::metrics::Metrics;
use crate::orders;
use crate::providers::{self, CheckOutcome};

/// How long a claimed check is leased: longer than any check can take.
fn lease_for(config: &ProviderConfig) -> Duration {
    config.reconcile.timeout * 2 + Duration::from_secs(30)
}

struct Checker {
    config: ProviderConfig,
    /// For order requests (the orders' timeout).
    order_client: reqwest::Client,
    client: reqwest::Client,
    bucket: Mutex<Bucket>,
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    pub checked: usize,
    /// Checks that settled an outcome (or flagged a conflict).
    pub settled: usize,
    /// Checks with no usable answer.
    pub failed: usize,
    /// Transactions flagged for review because their window passed.
    pub gave_up: usize,
}

/// Why a forced check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no transaction {reference:?} for provider {provider_id:?}")]
    NotFound {
        provider_id: String,
        reference: String,
    },
    #[error("a check of this transaction is already under way")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The reconciler.
pub struct Reconciler {
    store: Arc<dyn Store>,
    checkers: HashMap<String, Arc<Checker>>,
    /// The most checks claimed per provider per step.
    batch: usize,
    poll: Duration,
    metrics: Arc<Metrics>,
}

impl Reconciler {
    pub fn new(store: Arc<dyn Store>, providers: &[ProviderConfig]) -> Result<Self, String> {
        let now = OffsetDateTime::now_utc();
        let mut checkers = HashMap::new();
        for p in providers {
            let client =
                providers::client(p.reconcile.timeout).map_err(|e| format!("{:?}: {e}", p.id))?;
            let order_client =
                providers::client(p.orders.timeout).map_err(|e| format!("{:?}: {e}", p.id))?;
            let bucket = Mutex::new(Bucket::new(p.reconcile.rate_per_minute, now));
            checkers.insert(
                p.id.clone(),
                Arc::new(Checker {
                    config: p.clone(),
                    order_client,
                    client,
                    bucket,
                }),
            );
        }
        Ok(Reconciler {
            store,
            checkers,
            batch: 64,
            poll: Duration::from_secs(1),
            metrics: Arc::default(),
        })
    }

    /// Counts checks in `metrics` (the gateway's registry).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// One deterministic round at `now`: for each provider, claim the due transactions within
    /// its rate budget, check them concurrently, record the results.
    pub async fn step(&self, now: OffsetDateTime) -> Result<StepReport, StoreError> {
        let mut report = StepReport::default();
        let mut set = JoinSet::new();
        let mut ids: Vec<&String> = self.checkers.keys().collect();
        ids.sort();
        for id in ids {
            let checker = Arc::clone(&self.checkers[id]);
            let budget = checker
                .bucket
                .lock()
                .expect("bucket lock")
                .available(now)
                .min(self.batch);
            if budget == 0 {
                continue;
            }
            let due = self
                .store
                .claim_checks(id, now, lease_for(&checker.config), budget)
                .await?;
            checker.bucket.lock().expect("bucket lock").take(due.len());
            for tx in due {
                let store = Arc::clone(&self.store);
                let checker = Arc::clone(&checker);
                set.spawn(async move { check_one(store.as_ref(), &checker, tx, now).await });
            }
        }
        while let Some(done) = set.join_next().await {
            let done =
                done.map_err(|e| StoreError::Unavailable(format!("check task failed: {e}")))??;
            report.checked += 1;
            if let Some(rec) = &done.record {
                self.metrics.check(&rec.provider_id, done.verdict.as_str());
            }
            self.metrics.events(&done.events);
            match done.verdict {
                ObservationVerdict::CheckFailed => report.failed += 1,
                ObservationVerdict::Applied
                | ObservationVerdict::Conflict
                | ObservationVerdict::Updated => report.settled += 1,
                _ => {}
            }
            if done
                .events
                .iter()
                .any(|e| e.event_type == lunas_core::EventType::TransactionUnresolved)
            {
                report.gave_up += 1;
            }
        }
        Ok(report)
    }

    /// Checks one transaction now, whatever its schedule (the admin API and `lunas tx check`).
    pub async fn check_now(
        &self,
        provider_id: &str,
        reference: &str,
    ) -> Result<Ingested, CheckError> {
        let not_found = || CheckError::NotFound {
            provider_id: provider_id.to_owned(),
            reference: reference.to_owned(),
        };
        let checker = self.checkers.get(provider_id).ok_or_else(not_found)?;
        let tx = self
            .store
            .transaction(provider_id, reference)
            .await?
            .ok_or_else(not_found)?;
        let now = OffsetDateTime::now_utc();
        if !self
            .store
            .claim_check(tx.id, now, lease_for(&checker.config))
            .await?
        {
            return Err(CheckError::Busy);
        }
        let done = check_one(self.store.as_ref(), checker, tx, now).await?;
        self.metrics.check(provider_id, done.verdict.as_str());
        self.metrics.events(&done.events);
        Ok(done)
    }

    /// Runs until `stop` is notified, stepping when woken (a claim to confirm) or every poll
    /// interval. A check in flight at stop is finished; one that cannot finish is released by
    /// its lease.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, stop: Arc<Notify>) {
        if self.checkers.is_empty() {
            stop.notified().await;
            return;
        }
        let stopped = stop.notified();
        tokio::pin!(stopped);
        loop {
            let step = self.step(OffsetDateTime::now_utc());
            tokio::pin!(step);
            let result = tokio::select! {
                r = &mut step => r,
                _ = &mut stopped => {
                    // Let the checks under way finish and be recorded.
                    let _ = step.await;
                    return;
                }
            };
            match result {
                Ok(report) if report.checked > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconciler step failed; retrying"),
            }
            tokio::select! {
                _ = &mut stopped => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}

/// Asks the provider about one leased transaction and records what came back.
async fn check_one(
    store: &dyn Store,
    checker: &Checker,
    tx: TxRecord,
    now: OffsetDateTime,
) -> Result<Ingested, StoreError> {
    let config = &checker.config;
    if let Some(order) = &tx.extra.order {
        let (spec, submission) = order.current();
        let resend = match submission {
            // Committed, never left (or surely never arrived): send it.
            Submission::NotSent => true,
            // It may be at the provider: where repeating it is the provider's own status
            // check, that is how its outcome is learnt (and how it is placed if it never
            // arrived); otherwise the status API is asked below.
            Submission::Sent | Submission::Unknown => config.provider.repeat_is_status(&tx, &spec),
            Submission::Accepted | Submission::Rejected => false,
        };
        if resend {
            return orders::submit(store, config, &checker.order_client, tx).await;
        }
    }
    let checked = providers::check_status(&checker.client, config.provider.as_ref(), &tx).await;
    let age: Duration = (now - tx.created_at).try_into().unwrap_or_default();
    let r = &config.reconcile;
    // Grace periods count from the provider's first "no such transaction" answer, not from
    // registration: a bill registered at inquiry may be paid much later.
    let unanswered_for = |grace: Duration| {
        tx.extra.unanswered_since.is_some_and(|since| {
            let since = lunas_core::from_millis(since);
            (now - since).try_into().unwrap_or(Duration::ZERO) >= grace
        })
    };
    // The provider's window, until which an inferred failure is still checked.
    let window_end = tx.created_at + r.give_up_after;
    // An order whose answer was lost is known to the provider once its status API answers.
    let order = tx.extra.order.clone().map(|mut o| {
        if matches!(checked.outcome, CheckOutcome::Answered(_))
            && !o.shown_submission().is_answered()
        {
            o.set_current(Submission::Accepted, false);
        }
        o
    });
    let fact = match checked.outcome {
        CheckOutcome::Answered(fact) => Some(fact),
        CheckOutcome::NotFound if tx.kind != TxKind::Va && unanswered_for(r.not_found_grace) => {
            Some(inferred_failure(
                &tx,
                "06",
                "not_found: the provider has had no such transaction for the whole grace period",
                window_end,
            ))
        }
        CheckOutcome::NotReceived(_) if unanswered_for(r.postpaid_grace) => Some(inferred_failure(
            &tx,
            "42",
            "not_received: the payment request has not reached the provider for the whole grace period",
            window_end,
        )),
        // Within the grace period the answer is "still open".
        CheckOutcome::NotFound => Some(unanswered(&tx, None)),
        CheckOutcome::NotReceived(fact) => Some(unanswered(&tx, Some(fact))),
        CheckOutcome::Failed(why) => {
            tracing::info!(provider = %config.id, reference = %tx.reference, why = %why, "status check gave no outcome");
            None
        }
    };
    let attempts = tx.check_attempts + 1;
    let give_up = age >= r.give_up_after;
    let observation = NewObservation {
        provider_id: config.id.clone(),
        reference: Some(tx.reference.clone()),
        source: Source::Check,
        received_at: now,
        content_type: checked.content_type,
        remote_addr: None,
        body_size: checked.response.len(),
        body: checked.response,
        verdict: fact.is_none().then_some(ObservationVerdict::CheckFailed),
        detail: Some(checked.summary),
    };
    let done = store
        .record_check(CheckRecord {
            transaction_id: tx.id,
            observation,
            fact,
            next_check_at: Some(now + r.wait_after(attempts)),
            give_up,
            low_balance: config.low_balance,
            order,
            keep_lease: false,
            resolution: None,
        })
        .await?;
    if let Some(rec) = &done.record {
        tracing::info!(
            provider = %config.id,
            reference = %tx.reference,
            verdict = done.verdict.as_str(),
            state = rec.state.as_str(),
            attempts,
            "status checked"
        );
    }
    Ok(done)
}

/// A failure lunas infers when a grace period runs out: provisional, flagged, and checked
/// until the provider's window ends.
fn inferred_failure(tx: &TxRecord, code: &str, message: &str, window_end: OffsetDateTime) -> Fact {
    let mut fact = Fact::reported(
        tx.kind,
        &tx.reference,
        Some(State::Failed),
        Detail {
            response_code: Some(code.into()),
            message: Some(message.into()),
            ..Detail::default()
        },
    );
    fact.basis = Basis::Inferred {
        reason: message.split(':').next().unwrap_or(message).to_owned(),
        watch_until: window_end,
    };
    fact
}

/// The provider has no record of the transaction (yet): still open, and the grace period runs.
fn unanswered(tx: &TxRecord, answer: Option<Fact>) -> Fact {
    let mut fact = answer.unwrap_or_else(|| {
        Fact::reported(
            tx.kind,
            &tx.reference,
            Some(tx.kind.initial_state()),
            Detail::default(),
        )
    });
    fact.basis = Basis::Unanswered;
    fact
}
