//! Deliberate misbehaviour, deterministic given the seed.
//!
//! Callback faults are decided once per transaction (per payment, for a virtual account) from
//! `(seed, account id, ref, knob)`, so the decision for one ref does not depend on what other
//! transactions did or in which order they came: the same configuration replays the same
//! faults. Check-status faults are counts: the first `check_status_5xx` check-status calls of
//! an account fail with HTTP 503, the next `check_status_timeout` hang, the next
//! `check_status_garbage` answer garbage, and every later call is answered normally.
//!
//! Order faults are counts too, of an account's order requests (prepaid top-up, postpaid
//! `pay-pasca`, VA create), re-sent ones included: the first `order_5xx_before_commit` answer
//! HTTP 503 and change nothing, the next `order_5xx_after_commit` are carried out and then
//! answered HTTP 503, the next `order_drop_after_commit` are carried out and then left
//! unanswered (the connection is closed), the next `order_hang_after_commit` are carried out
//! and answered only after `order_hang_ms`, and every later order is answered normally. The
//! two 503 answers are the same, so a client cannot tell whether its order went through.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::Limited;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Faults;
use crate::http::Seen;
use crate::Sandbox;

/// The callback faults that apply to one transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decisions {
    pub drop: bool,
    pub duplicate: bool,
    pub out_of_order: bool,
    pub wrong_signature: bool,
    pub conflicting: bool,
    /// Extra delay added to an automatic callback.
    pub jitter: Duration,
}

/// FNV-1a, a stable hash (the standard library's may change between releases).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn rng(seed: u64, account: &str, reference: &str, knob: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ fnv1a(&[account, reference, knob]))
}

fn roll(seed: u64, account: &str, reference: &str, knob: &str, p: f64) -> bool {
    p > 0.0 && rng(seed, account, reference, knob).gen::<f64>() < p
}

/// Decides the callback faults of one transaction.
pub fn decide(seed: u64, account: &str, reference: &str, faults: &Faults) -> Decisions {
    let jitter_ms = u64::try_from(faults.delay_jitter.as_millis()).unwrap_or(u64::MAX);
    let jitter = if jitter_ms == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(rng(seed, account, reference, "delay").gen_range(0..=jitter_ms))
    };
    Decisions {
        drop: roll(seed, account, reference, "drop", faults.drop),
        duplicate: roll(seed, account, reference, "duplicate", faults.duplicate),
        out_of_order: roll(
            seed,
            account,
            reference,
            "out_of_order",
            faults.out_of_order,
        ),
        wrong_signature: roll(
            seed,
            account,
            reference,
            "wrong_signature",
            faults.wrong_signature,
        ),
        conflicting: roll(seed, account, reference, "conflicting", faults.conflicting),
        jitter,
    }
}

/// How a check-status call misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFault {
    /// HTTP 503 with an HTML error page.
    ServerError,
    /// No answer for this long (then the normal answer, if the client still listens).
    Hang(Duration),
    /// HTTP 200 with a body no parser accepts; the number picks one of two kinds of garbage.
    Garbage(u32),
}

impl CheckFault {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckFault::ServerError => "5xx",
            CheckFault::Hang(_) => "timeout",
            CheckFault::Garbage(_) => "garbage",
        }
    }
}

/// The fault of an account's check-status call number `index` (0 for the first call).
pub fn check_status(index: u32, faults: &Faults) -> Option<CheckFault> {
    let errors = faults.check_status_5xx;
    let hangs = errors.saturating_add(faults.check_status_timeout);
    let garbage = hangs.saturating_add(faults.check_status_garbage);
    if index < errors {
        Some(CheckFault::ServerError)
    } else if index < hangs {
        Some(CheckFault::Hang(faults.check_status_hang))
    } else if index < garbage {
        Some(CheckFault::Garbage(index - hangs))
    } else {
        None
    }
}

/// How an order request misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFault {
    /// HTTP 503 before anything is done: no transaction is created or changed.
    ServerErrorBeforeCommit,
    /// The order is carried out, then answered HTTP 503.
    ServerErrorAfterCommit,
    /// The order is carried out, then the connection is closed without an answer.
    DropAfterCommit,
    /// The order is carried out, then answered normally after this long.
    HangAfterCommit(Duration),
}

impl OrderFault {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderFault::ServerErrorBeforeCommit => "5xx_before_commit",
            OrderFault::ServerErrorAfterCommit => "5xx_after_commit",
            OrderFault::DropAfterCommit => "drop_after_commit",
            OrderFault::HangAfterCommit(_) => "hang_after_commit",
        }
    }
}

/// The fault of an account's order request number `index` (0 for the first request).
pub fn order(index: u32, faults: &Faults) -> Option<OrderFault> {
    let before = faults.order_5xx_before_commit;
    let after = before.saturating_add(faults.order_5xx_after_commit);
    let drops = after.saturating_add(faults.order_drop_after_commit);
    let hangs = drops.saturating_add(faults.order_hang_after_commit);
    if index < before {
        Some(OrderFault::ServerErrorBeforeCommit)
    } else if index < after {
        Some(OrderFault::ServerErrorAfterCommit)
    } else if index < drops {
        Some(OrderFault::DropAfterCommit)
    } else if index < hangs {
        Some(OrderFault::HangAfterCommit(faults.order_hang))
    } else {
        None
    }
}

/// An answer that is never sent: the connection is closed instead, and an HTTP/1.1 client
/// sees it end without any answer. Its body fails on the first read, which comes before the
/// head is written to the socket; hyper then closes the connection rather than send a head it
/// cannot complete (the order tests prove it). `status` is only what the log records: the
/// status of the answer withheld.
pub fn dropped(status: StatusCode) -> Response {
    // A body longer than a limit of zero fails as soon as it is read.
    let failing = Limited::new(Body::from("withheld"), 0);
    (
        status,
        Body::from_stream(Body::new(failing).into_data_stream()),
    )
        .into_response()
}

/// The answer of a [`CheckFault::ServerError`], and of both 503 order faults.
pub fn server_error() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><head><title>503 Service Temporarily Unavailable</title></head>\
         <body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>",
    )
        .into_response()
}

/// The answer of a [`CheckFault::Garbage`]: alternately an HTML page and truncated JSON, both
/// with HTTP 200, as a misbehaving proxy or a crashed upstream produce them.
pub fn garbage(n: u32) -> Response {
    if n % 2 == 0 {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Bad Gateway: upstream closed the connection</body></html>",
        )
            .into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"data":{"ref_id":"#,
        )
            .into_response()
    }
}

impl Sandbox {
    /// Counts a check-status call of the account and returns the fault it meets, if any.
    pub(crate) fn check_status_fault(&self, index: usize) -> Option<CheckFault> {
        let faults = &self.inner.accounts[index].faults;
        let mut st = self.lock();
        let calls = &mut st.accounts[index].check_status_calls;
        let n = *calls;
        *calls = calls.saturating_add(1);
        check_status(n, faults)
    }

    /// Counts an order request of the account and returns the fault it meets, if any.
    pub(crate) fn order_fault(&self, index: usize) -> Option<OrderFault> {
        let faults = &self.inner.accounts[index].faults;
        let mut st = self.lock();
        let calls = &mut st.accounts[index].order_calls;
        let n = *calls;
        *calls = calls.saturating_add(1);
        order(n, faults)
    }

    /// What an order request carried out under `fault` is answered: its normal `answer`, or
    /// what the fault makes of it. A hang cut short by shutdown answers HTTP 503.
    pub(crate) async fn order_answer(
        &self,
        fault: Option<OrderFault>,
        answer: Response,
        seen: &mut Seen,
    ) -> Response {
        match fault {
            None => answer,
            Some(OrderFault::ServerErrorBeforeCommit | OrderFault::ServerErrorAfterCommit) => {
                seen.rc = None;
                server_error()
            }
            Some(OrderFault::DropAfterCommit) => dropped(answer.status()),
            Some(OrderFault::HangAfterCommit(d)) => {
                if self.hang(d).await {
                    answer
                } else {
                    seen.rc = None;
                    server_error()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_deterministic_and_honour_certainty() {
        let always = Faults {
            duplicate: 1.0,
            drop: 1.0,
            out_of_order: 1.0,
            wrong_signature: 1.0,
            conflicting: 1.0,
            ..Faults::default()
        };
        let d = decide(7, "iak", "order001", &always);
        assert!(d.drop && d.duplicate && d.out_of_order && d.wrong_signature && d.conflicting);
        let never = decide(7, "iak", "order001", &Faults::default());
        assert_eq!(never, Decisions::default());
        let half = Faults {
            duplicate: 0.5,
            delay_jitter: Duration::from_millis(1000),
            ..Faults::default()
        };
        let a: Vec<_> = (0..50)
            .map(|i| decide(1, "iak", &format!("r{i}"), &half))
            .collect();
        let b: Vec<_> = (0..50)
            .map(|i| decide(1, "iak", &format!("r{i}"), &half))
            .collect();
        assert_eq!(a, b);
        let dups = a.iter().filter(|d| d.duplicate).count();
        assert!((10..=40).contains(&dups), "{dups}");
        assert!(a.iter().all(|d| d.jitter <= Duration::from_millis(1000)));
    }

    #[test]
    fn check_status_faults_come_in_order() {
        let f = Faults {
            check_status_5xx: 1,
            check_status_timeout: 1,
            check_status_garbage: 2,
            check_status_hang: Duration::from_millis(5),
            ..Faults::default()
        };
        let got: Vec<_> = (0..5).map(|i| check_status(i, &f)).collect();
        assert_eq!(
            got,
            vec![
                Some(CheckFault::ServerError),
                Some(CheckFault::Hang(Duration::from_millis(5))),
                Some(CheckFault::Garbage(0)),
                Some(CheckFault::Garbage(1)),
                None
            ]
        );
    }

    #[test]
    fn order_faults_come_in_the_order_of_the_knobs() {
        let f = Faults {
            order_5xx_before_commit: 1,
            order_5xx_after_commit: 2,
            order_drop_after_commit: 1,
            order_hang_after_commit: 1,
            order_hang: Duration::from_millis(7),
            ..Faults::default()
        };
        let got: Vec<_> = (0..7).map(|i| order(i, &f)).collect();
        assert_eq!(
            got,
            vec![
                Some(OrderFault::ServerErrorBeforeCommit),
                Some(OrderFault::ServerErrorAfterCommit),
                Some(OrderFault::ServerErrorAfterCommit),
                Some(OrderFault::DropAfterCommit),
                Some(OrderFault::HangAfterCommit(Duration::from_millis(7))),
                None,
                None
            ]
        );
        assert_eq!(order(0, &Faults::default()), None);
    }
}
