//! `/metrics` in the Prometheus/OpenMetrics text format. One registry per gateway (no
//! process-global state), so two gateways in one process keep separate counts. Labels are
//! provider account ids, endpoint ids and verdicts: all bounded by configuration.

use std::time::Duration;

use lunas_core::Event;
use lunas_store::QueueStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderVerdict {
    provider: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointOutcome {
    endpoint: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

fn fast_buckets() -> Histogram {
    // 0.25 ms .. about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

fn slow_buckets() -> Histogram {
    // 1 ms .. about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    callbacks: Family<ProviderVerdict, Counter>,
    callback_seconds: Timings<ProviderLabel>,
    events: Family<TypeLabel, Counter>,
    checks: Family<ProviderVerdict, Counter>,
    orders: Family<ProviderVerdict, Counter>,
    auth_failures: Family<TypeLabel, Counter>,
    deliveries: Family<EndpointOutcome, Counter>,
    delivery_seconds: Timings<EndpointLabel>,
    open_transactions: Gauge,
    due_checks: Gauge,
    oldest_open_seconds: Gauge,
    pending_deliveries: Gauge,
    dead_deliveries: Gauge,
    held_deliveries: Family<EndpointLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lunas");
        let callbacks = Family::<ProviderVerdict, Counter>::default();
        registry.register(
            "callbacks",
            "Provider callbacks received, by provider account and verdict",
            callbacks.clone(),
        );
        let callback_seconds: Timings<ProviderLabel> = Family::new_with_constructor(fast_buckets);
        registry.register(
            "callback_duration_seconds",
            "Time from a callback's arrival to its answer, commit included",
            callback_seconds.clone(),
        );
        let events = Family::<TypeLabel, Counter>::default();
        registry.register(
            "events",
            "Events committed (state transitions and alerts), by type",
            events.clone(),
        );
        let checks = Family::<ProviderVerdict, Counter>::default();
        registry.register(
            "checks",
            "Status checks made by the reconciler, by provider account and verdict",
            checks.clone(),
        );
        let orders = Family::<ProviderVerdict, Counter>::default();
        registry.register(
            "orders",
            "Order requests answered, by provider account and submission (accepted, rejected, unknown, not_sent)",
            orders.clone(),
        );
        let auth_failures = Family::<TypeLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "API requests refused: no token, a wrong token, or a token without the scope (type)",
            auth_failures.clone(),
        );
        let deliveries = Family::<EndpointOutcome, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts to endpoints, by outcome (delivered, retry, dead)",
            deliveries.clone(),
        );
        let delivery_seconds: Timings<EndpointLabel> = Family::new_with_constructor(slow_buckets);
        registry.register(
            "delivery_duration_seconds",
            "Delivery attempt latency, by endpoint",
            delivery_seconds.clone(),
        );
        let open_transactions = Gauge::default();
        registry.register(
            "open_transactions",
            "Transactions whose outcome is still to learn",
            open_transactions.clone(),
        );
        let due_checks = Gauge::default();
        registry.register(
            "checks_due",
            "Open transactions whose status check is due now",
            due_checks.clone(),
        );
        let oldest_open_seconds = Gauge::default();
        registry.register(
            "oldest_open_transaction_age_seconds",
            "Age of the oldest transaction still without an outcome",
            oldest_open_seconds.clone(),
        );
        let pending_deliveries = Gauge::default();
        registry.register(
            "deliveries_pending",
            "Deliveries waiting for an attempt or a retry",
            pending_deliveries.clone(),
        );
        let dead_deliveries = Gauge::default();
        registry.register(
            "deliveries_dead",
            "Dead-lettered deliveries awaiting redelivery",
            dead_deliveries.clone(),
        );
        let held_deliveries = Family::<EndpointLabel, Gauge>::default();
        registry.register(
            "deliveries_held",
            "Deliveries waiting behind a dead-lettered earlier event of their transaction (endpoints that hold)",
            held_deliveries.clone(),
        );
        Metrics {
            registry,
            callbacks,
            callback_seconds,
            events,
            checks,
            orders,
            auth_failures,
            deliveries,
            delivery_seconds,
            open_transactions,
            due_checks,
            oldest_open_seconds,
            pending_deliveries,
            dead_deliveries,
            held_deliveries,
        }
    }

    /// Sets the held deliveries of each endpoint (read when `/metrics` is scraped).
    pub fn held(&self, endpoint: &str, held: i64) {
        self.held_deliveries
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.to_owned(),
            })
            .set(held);
    }

    /// A callback was answered with `verdict` after `took`.
    pub fn callback(&self, provider: &str, verdict: &str, took: Duration) {
        self.callbacks
            .get_or_create(&ProviderVerdict {
                provider: provider.to_owned(),
                verdict: verdict.to_owned(),
            })
            .inc();
        self.callback_seconds
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Events were committed.
    pub fn events(&self, events: &[Event]) {
        for e in events {
            self.events
                .get_or_create(&TypeLabel {
                    r#type: e.event_type.as_str().to_owned(),
                })
                .inc();
        }
    }

    /// A status check was recorded with `verdict`.
    pub fn check(&self, provider: &str, verdict: &str) {
        self.checks
            .get_or_create(&ProviderVerdict {
                provider: provider.to_owned(),
                verdict: verdict.to_owned(),
            })
            .inc();
    }

    /// An API request was refused: `missing`, `wrong` or `forbidden_scope`.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&TypeLabel {
                r#type: reason.to_owned(),
            })
            .inc();
    }

    /// An order request ended with `submission`.
    pub fn order(&self, provider: &str, submission: &str) {
        self.orders
            .get_or_create(&ProviderVerdict {
                provider: provider.to_owned(),
                verdict: submission.to_owned(),
            })
            .inc();
    }

    /// A delivery attempt ended with `outcome` (`delivered`, `retry` or `dead`).
    pub fn delivery(&self, endpoint: &str, outcome: &str, latency: Duration) {
        self.deliveries
            .get_or_create(&EndpointOutcome {
                endpoint: endpoint.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.delivery_seconds
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.to_owned(),
            })
            .observe(latency.as_secs_f64());
    }

    /// The text exposition, with the queue gauges set from `stats` at `now`.
    pub fn render(&self, stats: &QueueStats, now: OffsetDateTime) -> String {
        self.open_transactions.set(stats.open_transactions);
        self.due_checks.set(stats.due_checks);
        self.oldest_open_seconds.set(
            stats
                .oldest_open_at
                .map_or(0, |t| (now - t).whole_seconds().max(0)),
        );
        self.pending_deliveries.set(stats.pending_deliveries);
        self.dead_deliveries.set(stats.dead_deliveries);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
