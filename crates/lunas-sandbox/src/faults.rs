//! Deliberate misbehaviour, deterministic given the seed.
//!
//! Callback faults are decided once per transaction (per payment, for a virtual account) from
//! `(seed, account id, ref, knob)`, so the decision for one ref does not depend on what other
//! transactions did or in which order they came: the same configuration replays the same
//! faults. Check-status faults are counts: the first `check_status_5xx` check-status calls of
//! an account fail with HTTP 503, the next `check_status_timeout` hang, the next
//! `check_status_garbage` answer garbage, and every later call is answered normally.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Faults;

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

/// The answer of a [`CheckFault::ServerError`].
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
}
