//! Deliveries of events to the merchant's endpoints, and the retry policy.

use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::model::rfc3339;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or for an earlier event of its transaction).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// The retry schedule ran out: dead-lettered, kept for redelivery.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

/// One attempt to POST an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: OffsetDateTime,
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    /// How long the endpoint took to answer, in microseconds.
    pub latency_us: i64,
    /// The start of the endpoint's answer.
    pub response: Option<String>,
    /// The transport error (timeout, refused connection), when there was no answer.
    pub error: Option<String>,
}

impl Attempt {
    pub fn to_json(&self) -> Value {
        json!({
            "at": rfc3339(self.at),
            "status": self.status,
            // Milliseconds with microsecond precision.
            "latency_ms": self.latency_us as f64 / 1000.0,
            "response": self.response,
            "error": self.error,
        })
    }
}

/// An event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub event_seq: i64,
    pub event_id: String,
    pub event_type: String,
    /// `None` for provider-level events.
    pub transaction_id: Option<i64>,
    pub endpoint: String,
    pub state: DeliveryState,
    /// Attempts in the current schedule (reset by a redelivery).
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Every attempt ever made, oldest first (filled where a view needs it).
    pub history: Vec<Attempt>,
}

impl Delivery {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "endpoint": self.endpoint,
            "state": self.state.as_str(),
            "attempts": self.attempts,
            "next_attempt_at": (self.state == DeliveryState::Pending).then(|| rfc3339(self.next_attempt_at)),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "history": self.history.iter().map(Attempt::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Whether an event type matches an endpoint's filters: `*` matches everything, `prefix.*`
/// matches `prefix.` and anything below it, anything else matches exactly.
pub fn event_matches(patterns: &[String], event_type: &str) -> bool {
    patterns.iter().any(|p| {
        if p == "*" {
            true
        } else if let Some(prefix) = p.strip_suffix(".*") {
            event_type
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        } else {
            p == event_type
        }
    })
}

/// When to try again after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The waits after the 1st, 2nd, ... failed attempt; when they run out, the delivery is dead.
    pub schedule: Vec<Duration>,
    /// Jitter in percent of each wait (10 = ±10 %).
    pub jitter_percent: u32,
    /// The longest wait a `Retry-After` may ask for.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 27.5 hours in all,
    /// as the Standard Webhooks reference service does.
    fn default() -> Self {
        let s = Duration::from_secs;
        RetryPolicy {
            schedule: vec![
                s(5),
                s(300),
                s(1800),
                s(7200),
                s(18_000),
                s(36_000),
                s(36_000),
            ],
            jitter_percent: 10,
            max_retry_after: s(86_400),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `failed_attempts` failures (1 after the first),
    /// or `None` when the schedule is exhausted. `draw` in 0..1000 places the wait within
    /// the jitter (0: shortest, 500: as scheduled, 999: longest); a `Retry-After` longer than
    /// the scheduled wait is honoured, up to `max_retry_after`.
    pub fn next_wait(
        &self,
        failed_attempts: usize,
        retry_after: Option<Duration>,
        draw: u32,
    ) -> Option<Duration> {
        let base = *self.schedule.get(failed_attempts.checked_sub(1)?)?;
        let base_ms = base.as_millis() as i128;
        let offset = i128::from(draw.min(999)) * 2 - 1000; // -1000..=998
        let spread = base_ms * i128::from(self.jitter_percent) * offset / 100_000;
        let jittered = Duration::from_millis((base_ms + spread).max(0) as u64);
        Some(match retry_after {
            Some(ra) => jittered.max(ra.min(self.max_retry_after)),
            None => jittered,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_exactly_by_prefix_or_everything() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(event_matches(&p(&["*"]), "va.paid"));
        assert!(event_matches(
            &p(&["transaction.*"]),
            "transaction.succeeded"
        ));
        assert!(!event_matches(
            &p(&["transaction.*"]),
            "transactionx.succeeded"
        ));
        assert!(!event_matches(&p(&["transaction.*"]), "va.paid"));
        assert!(event_matches(&p(&["va.paid"]), "va.paid"));
        assert!(!event_matches(&p(&["va.paid"]), "va.payment_received"));
        assert!(!event_matches(&p(&[]), "va.paid"));
    }

    #[test]
    fn the_schedule_runs_out_and_retry_after_is_honoured() {
        let policy = RetryPolicy {
            jitter_percent: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.next_wait(1, None, 500), Some(Duration::from_secs(5)));
        assert_eq!(
            policy.next_wait(7, None, 500),
            Some(Duration::from_secs(36_000))
        );
        assert_eq!(policy.next_wait(8, None, 500), None);
        assert_eq!(policy.next_wait(0, None, 500), None);
        assert_eq!(
            policy.next_wait(1, Some(Duration::from_secs(120)), 500),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            policy.next_wait(1, Some(Duration::from_secs(1)), 500),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            policy.next_wait(1, Some(Duration::from_secs(10 * 86_400)), 500),
            Some(Duration::from_secs(86_400))
        );
        let total: u64 = RetryPolicy::default()
            .schedule
            .iter()
            .map(|d| d.as_secs())
            .sum();
        assert!(
            (86_400..=2 * 86_400).contains(&total),
            "about a day in all: {total}"
        );
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = RetryPolicy::default();
        let lo = policy.next_wait(2, None, 0).unwrap();
        let hi = policy.next_wait(2, None, 999).unwrap();
        assert_eq!(lo, Duration::from_secs(270));
        assert!(hi > Duration::from_secs(329) && hi <= Duration::from_secs(330));
    }
}
