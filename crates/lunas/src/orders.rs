//! Orders: lunas places top-ups, bill payments and virtual accounts itself, exactly once.
//!
//! The life of an order:
//! 1. it is committed (`submission: not_sent`) holding the transaction's check lease, before a
//!    byte leaves;
//! 2. the submission becomes `sent` (committed) just before the request goes out;
//! 3. the answer is recorded: `accepted` or `rejected` with the state the provider gave (through
//!    the same transition rules as callbacks), or `unknown` for anything that is not a definite
//!    answer (timeout, reset, 5xx, garbage). A connection refused before sending puts it back
//!    to `not_sent`.
//!
//! An order left `not_sent`, `sent` or `unknown` (the process died, the answer never came) is
//! the reconciler's: when the lease ends it sends a `not_sent` order, and settles the others
//! with the same ref — by repeating the request where the provider documents that as its status
//! check (IAK top-up), else with the provider's status API. An order is never re-sent under
//! another ref and never called `failed` until the provider says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lunas_core::{
    Detail, NewObservation, ObservationVerdict, OrderSpec, OrderState, PayState, Source,
    Submission, TxRecord,
};
use lunas_protocol::{State, TxKind};
use lunas_store::{CheckRecord, Ingested, Registration, Store, StoreError};
use time::OffsetDateTime;

use crate::config::ProviderConfig;
use crate::providers::{self, OrderOutcome, SendError};
use lunas_core::rate::Bucket;

/// How long an order's lease lasts: longer than its request can take.
pub fn lease_for(config: &ProviderConfig) -> Duration {
    config.orders.timeout * 2 + Duration::from_secs(5)
}

/// Why an order was not placed (or not paid).
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The order cannot be sent as it is (a field missing or malformed, a kind the provider
    /// does not offer): 422.
    #[error("{0}")]
    Unplaceable(String),
    /// The ref is known with other fields: 409.
    #[error("{0}")]
    RefConflict(String),
    /// The account's order budget is spent for now: 429.
    #[error("the order budget of {provider_id:?} is spent; try again in {} s", retry_after.as_secs().max(1))]
    RateLimited {
        provider_id: String,
        retry_after: Duration,
    },
    /// The bill costs more than the merchant allowed: 422, the inquiry is kept.
    #[error(
        "the bill costs {price}, more than max_amount {max}; pay it with POST .../pay if you agree"
    )]
    OverMaxAmount {
        price: i64,
        max: i64,
        tx: Box<TxRecord>,
    },
    /// The bill's price is not the amount the merchant confirmed: 409.
    #[error("the bill costs {price}, not {asked}")]
    AmountChanged { price: i64, asked: i64 },
    /// Nothing to pay, or paid already with another amount: 409.
    #[error("{0}")]
    NotPayable(String),
    #[error("no order {reference:?} for provider {provider_id:?}")]
    NotFound {
        provider_id: String,
        reference: String,
    },
    /// Another request works on this transaction right now: 409.
    #[error("another request is working on this order right now; try again shortly")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An order as the API takes it.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub provider_id: String,
    pub reference: String,
    pub spec: OrderSpec,
    /// Postpaid: pay at once when the bill costs at most this.
    pub pay_up_to: Option<i64>,
}

/// One provider account's order desk.
struct Desk {
    config: ProviderConfig,
    client: reqwest::Client,
    bucket: Mutex<Bucket>,
}

/// Places orders and settles their requests.
pub struct Orders {
    store: Arc<dyn Store>,
    desks: HashMap<String, Arc<Desk>>,
    /// Wakes the reconciler (an order whose outcome is unknown is asked about at once).
    check_wake: Arc<tokio::sync::Notify>,
    /// Wakes the deliverer (events were committed).
    wake: Arc<tokio::sync::Notify>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Orders {
    pub fn new(
        store: Arc<dyn Store>,
        providers: &[ProviderConfig],
        check_wake: Arc<tokio::sync::Notify>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Result<Self, String> {
        let now = OffsetDateTime::now_utc();
        let mut desks = HashMap::new();
        for p in providers {
            let client =
                providers::client(p.orders.timeout).map_err(|e| format!("{:?}: {e}", p.id))?;
            desks.insert(
                p.id.clone(),
                Arc::new(Desk {
                    config: p.clone(),
                    client,
                    bucket: Mutex::new(Bucket::new(p.orders.rate_per_minute, now)),
                }),
            );
        }
        Ok(Orders {
            store,
            desks,
            check_wake,
            wake,
            metrics: Arc::default(),
        })
    }

    /// Counts orders in `metrics` (the gateway's registry).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    fn desk(&self, provider_id: &str) -> Result<&Arc<Desk>, OrderError> {
        self.desks.get(provider_id).ok_or_else(|| {
            OrderError::Unplaceable(format!("no provider account {provider_id:?} is configured"))
        })
    }

    /// Places an order: 201 (`true`) when new, the existing transaction (`false`) when the same
    /// order came before.
    pub async fn place(&self, order: NewOrder) -> Result<(TxRecord, bool), OrderError> {
        let desk = self.desk(&order.provider_id)?;
        let provider = &desk.config.provider;
        let kind = kind_of(&order.spec);
        if !provider.kinds().contains(&kind) {
            return Err(OrderError::Unplaceable(format!(
                "kind: a {} provider takes no {} orders",
                desk.config.kind,
                kind.as_str()
            )));
        }
        // A request that cannot be built is refused before anything is committed.
        provider
            .order_request(&order.reference, &order.spec)
            .map_err(OrderError::Unplaceable)?;
        if let Some(existing) = self
            .store
            .transaction(&order.provider_id, &order.reference)
            .await?
        {
            return same_order(existing, &order.spec).map(|tx| (tx, false));
        }
        self.take_budget(desk)?;
        let now = OffsetDateTime::now_utc();
        let (tx, created) = self
            .store
            .register(Registration {
                provider_id: order.provider_id.clone(),
                reference: order.reference.clone(),
                kind,
                detail: asked(&order.spec),
                at: now,
                // Due at once, but leased to this request: if it dies, the reconciler takes
                // over when the lease ends.
                check_after: Some(Duration::ZERO),
                origin: "order",
                order: Some(OrderState::new(order.spec.clone())),
                lease: Some(lease_for(&desk.config)),
            })
            .await?;
        if !created {
            // Another request registered the same ref at the same moment.
            return same_order(tx, &order.spec).map(|tx| (tx, false));
        }
        let done = self.submit_on(desk, tx).await?;
        let tx = done.record.expect("an order concerns a transaction");
        match order.pay_up_to {
            Some(max) if kind == TxKind::Postpaid => {
                let Some(bill) = tx.extra.order.as_ref().and_then(|o| o.bill.clone()) else {
                    return Ok((tx, true));
                };
                if bill.price > max {
                    return Err(OrderError::OverMaxAmount {
                        price: bill.price,
                        max,
                        tx: Box::new(tx),
                    });
                }
                let tx = self
                    .pay(&order.provider_id, &order.reference, bill.price)
                    .await?;
                Ok((tx, true))
            }
            _ => Ok((tx, true)),
        }
    }

    /// Pays an inquired bill if it costs exactly `amount`; a bill is paid at most once.
    pub async fn pay(
        &self,
        provider_id: &str,
        reference: &str,
        amount: i64,
    ) -> Result<TxRecord, OrderError> {
        let desk = self.desk(provider_id)?;
        let not_found = || OrderError::NotFound {
            provider_id: provider_id.to_owned(),
            reference: reference.to_owned(),
        };
        let tx = self
            .store
            .transaction(provider_id, reference)
            .await?
            .ok_or_else(not_found)?;
        let Some(order) = tx.extra.order.clone() else {
            return Err(not_found());
        };
        let Some(bill) = order.bill.clone() else {
            return Err(OrderError::NotPayable(
                "there is no bill to pay: the inquiry has no answer yet, or was refused".into(),
            ));
        };
        if let Some(pay) = &order.pay {
            return if pay.amount == amount {
                Ok(tx)
            } else {
                Err(OrderError::NotPayable(format!(
                    "the bill is paid (or being paid) already, for {}",
                    pay.amount
                )))
            };
        }
        if bill.price != amount {
            return Err(OrderError::AmountChanged {
                price: bill.price,
                asked: amount,
            });
        }
        self.take_budget(desk)?;
        let now = OffsetDateTime::now_utc();
        if !self
            .store
            .claim_check(tx.id, now, lease_for(&desk.config))
            .await?
        {
            return Err(OrderError::Busy);
        }
        let mut paying = order;
        paying.pay = Some(PayState {
            amount,
            submission: Submission::NotSent,
            attempts: 0,
        });
        // The payment is committed before it is sent.
        let done = self
            .store
            .record_check(step(
                &desk.config,
                &tx,
                paying,
                note(
                    now,
                    ObservationVerdict::Sent,
                    "payment committed, not sent yet".into(),
                ),
                None,
                Some(now),
                true,
            ))
            .await?;
        let tx = done.record.expect("a transaction");
        let done = self.submit_on(desk, tx).await?;
        Ok(done.record.expect("a transaction"))
    }

    fn take_budget(&self, desk: &Desk) -> Result<(), OrderError> {
        let now = OffsetDateTime::now_utc();
        let mut bucket = desk.bucket.lock().expect("bucket lock");
        if bucket.available(now) == 0 {
            let per_call = 60_000 / u64::from(desk.config.orders.rate_per_minute.max(1));
            return Err(OrderError::RateLimited {
                provider_id: desk.config.id.clone(),
                retry_after: Duration::from_millis(per_call.max(1000)),
            });
        }
        bucket.take(1);
        Ok(())
    }

    async fn submit_on(&self, desk: &Desk, tx: TxRecord) -> Result<Ingested, StoreError> {
        let done = submit(self.store.as_ref(), &desk.config, &desk.client, tx).await?;
        self.metrics.events(&done.events);
        if let Some(order) = done.record.as_ref().and_then(|r| r.extra.order.as_ref()) {
            self.metrics
                .order(&desk.config.id, order.shown_submission().as_str());
        }
        if !done.events.is_empty() {
            self.wake.notify_one();
        }
        let unknown = done
            .record
            .as_ref()
            .and_then(|r| r.extra.order.as_ref())
            .is_some_and(|o| !o.shown_submission().is_answered());
        if unknown {
            self.check_wake.notify_one();
        }
        Ok(done)
    }

    /// Holds until `tx` is final or `wait` has passed; the transaction as it then is.
    pub async fn wait_for(&self, tx: TxRecord, wait: Duration) -> Result<TxRecord, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut tx = tx;
        while !tx.state.is_final() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(now) = self
                .store
                .transaction(&tx.provider_id, &tx.reference)
                .await?
            {
                tx = now;
            }
        }
        Ok(tx)
    }
}

/// The transaction kind an order makes.
pub fn kind_of(spec: &OrderSpec) -> TxKind {
    match spec {
        OrderSpec::Prepaid { .. } => TxKind::Prepaid,
        OrderSpec::Postpaid { .. } | OrderSpec::PostpaidPay { .. } => TxKind::Postpaid,
        OrderSpec::Va(_) => TxKind::Va,
    }
}

/// What the merchant asked for, as the transaction keeps it (and mismatches are judged by).
fn asked(spec: &OrderSpec) -> Detail {
    match spec {
        OrderSpec::Prepaid {
            product_code,
            customer_id,
        }
        | OrderSpec::Postpaid {
            product_code,
            customer_id,
            ..
        } => Detail {
            product_code: Some(product_code.clone()),
            customer_id: Some(customer_id.clone()),
            ..Detail::default()
        },
        OrderSpec::PostpaidPay { amount, .. } => Detail {
            amount: Some(*amount),
            ..Detail::default()
        },
        OrderSpec::Va(va) => Detail {
            amount: Some(va.amount),
            product_code: Some(va.payment_channel.clone()),
            order_id: Some(va.order_id.clone()),
            payment_system: Some(va.payment_system.to_ascii_uppercase()),
            multi_use: Some(va.multi_use || va.payment_system.eq_ignore_ascii_case("OPEN")),
            ..Detail::default()
        },
    }
}

/// The existing transaction if it is this same order, else a ref conflict.
fn same_order(existing: TxRecord, spec: &OrderSpec) -> Result<TxRecord, OrderError> {
    match &existing.extra.order {
        Some(o) if o.spec == *spec => Ok(existing),
        Some(_) => Err(OrderError::RefConflict(format!(
            "{:?} is already an order with other fields",
            existing.reference
        ))),
        None => Err(OrderError::RefConflict(format!(
            "{:?} is already known as a transaction lunas did not place",
            existing.reference
        ))),
    }
}

fn note(at: OffsetDateTime, verdict: ObservationVerdict, detail: String) -> Note {
    Note {
        at,
        verdict,
        detail,
        body: Vec::new(),
        content_type: None,
    }
}

/// One step's evidence.
struct Note {
    at: OffsetDateTime,
    verdict: ObservationVerdict,
    detail: String,
    body: Vec<u8>,
    content_type: Option<String>,
}

/// The record of one step of an order.
fn step(
    config: &ProviderConfig,
    tx: &TxRecord,
    order: OrderState,
    note: Note,
    fact: Option<lunas_core::Fact>,
    next_check_at: Option<OffsetDateTime>,
    keep_lease: bool,
) -> CheckRecord {
    CheckRecord {
        transaction_id: tx.id,
        observation: NewObservation {
            provider_id: config.id.clone(),
            reference: Some(tx.reference.clone()),
            source: Source::Order,
            received_at: note.at,
            content_type: note.content_type,
            remote_addr: None,
            body_size: note.body.len(),
            body: note.body,
            verdict: Some(note.verdict),
            detail: Some(note.detail),
        },
        fact,
        next_check_at,
        give_up: false,
        low_balance: config.low_balance,
        order: Some(order),
        keep_lease,
        resolution: None,
    }
}

/// Sends the request `tx`'s order is waiting on, and records what came of it. The caller
/// holds the transaction's check lease; it is released when the answer is recorded.
pub async fn submit(
    store: &dyn Store,
    config: &ProviderConfig,
    client: &reqwest::Client,
    tx: TxRecord,
) -> Result<Ingested, StoreError> {
    let provider = &config.provider;
    let mut order = tx.extra.order.clone().expect("only an order is submitted");
    let (spec, _) = order.current();
    let now = OffsetDateTime::now_utc();
    let request = match provider.order_request(&tx.reference, &spec) {
        Ok(r) => r,
        Err(why) => {
            // It cannot be built (the configuration changed since): nothing leaves, ever.
            order.set_current(Submission::Rejected, false);
            let fact = refused(&tx, &why);
            return store
                .record_check(step(
                    config,
                    &tx,
                    order,
                    note(now, ObservationVerdict::Applied, format!("not sent: {why}")),
                    Some(fact),
                    None,
                    false,
                ))
                .await;
        }
    };
    let attempt = match &order.pay {
        Some(p) if order.bill.is_some() => p.attempts + 1,
        _ => order.attempts + 1,
    };
    let what = format!("POST {} (attempt {attempt})", request.url);
    // Committed before the first byte leaves: from here the request may be at the provider.
    order.set_current(Submission::Sent, true);
    let sending = Note {
        at: now,
        verdict: ObservationVerdict::Sent,
        detail: format!("sending {what}"),
        body: masked(&request.body),
        content_type: Some("application/json".into()),
    };
    let lease_end = now + lease_for(config);
    store
        .record_check(step(
            config,
            &tx,
            order.clone(),
            sending,
            None,
            Some(lease_end),
            true,
        ))
        .await?;
    let answer = providers::send(client, &request).await;
    let at = OffsetDateTime::now_utc();
    let r = &config.reconcile;
    let (submission, fact, note, next) = match answer {
        Err(SendError::NotSent(why)) => (
            Submission::NotSent,
            None,
            self::note(
                at,
                ObservationVerdict::NoAnswer,
                format!("{why}: not sent; it will be sent again with the same ref"),
            ),
            Some(at + Duration::from_secs(5)),
        ),
        Err(SendError::Unknown(why)) => (
            Submission::Unknown,
            None,
            self::note(
                at,
                ObservationVerdict::NoAnswer,
                format!("{why}: the outcome is unknown; asking the provider"),
            ),
            Some(at),
        ),
        Ok(answer) => {
            let body = answer.body[..answer.body.len().min(providers::ANSWER_CAP)].to_vec();
            let evidence = |verdict, detail: String| Note {
                at,
                verdict,
                detail,
                body: body.clone(),
                content_type: answer.content_type.clone(),
            };
            match provider.read_order(&tx.reference, &spec, &answer) {
                OrderOutcome::Accepted { fact, bill } => {
                    if bill.is_some() {
                        order.bill = bill;
                    }
                    (
                        Submission::Accepted,
                        Some(fact),
                        // The verdict is the transition's (filled in by the store).
                        evidence(
                            ObservationVerdict::Applied,
                            format!("{what} → HTTP {}: accepted", answer.status),
                        ),
                        Some(at + r.first_check_after),
                    )
                }
                OrderOutcome::Rejected { fact, why } => (
                    Submission::Rejected,
                    Some(fact),
                    evidence(
                        ObservationVerdict::Applied,
                        format!("{what} → HTTP {}: refused: {why}", answer.status),
                    ),
                    None,
                ),
                OrderOutcome::Unknown(why) => (
                    Submission::Unknown,
                    None,
                    evidence(
                        ObservationVerdict::NoAnswer,
                        format!(
                            "{what} → HTTP {}: no definite answer ({why}); asking the provider",
                            answer.status
                        ),
                    ),
                    Some(at),
                ),
            }
        }
    };
    order.set_current(submission, false);
    store
        .record_check(step(config, &tx, order, note, fact, next, false))
        .await
}

/// The failed (VA: canceled) state of an order that could not be sent.
fn refused(tx: &TxRecord, why: &str) -> lunas_core::Fact {
    let state = if tx.kind == TxKind::Va {
        State::Canceled
    } else {
        State::Failed
    };
    lunas_core::Fact::reported(
        tx.kind,
        &tx.reference,
        Some(state),
        Detail {
            message: Some(format!("not sent: {why}")),
            ..Detail::default()
        },
    )
}

/// A request body as evidence: every `sign` and signature-like value masked.
fn masked(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut m)) => {
            for key in ["sign", "signature"] {
                if m.contains_key(key) {
                    m.insert(key.into(), serde_json::Value::String("••••".into()));
                }
            }
            serde_json::to_vec(&m).unwrap_or_default()
        }
        _ => b"(not JSON; not kept)".to_vec(),
    }
}
