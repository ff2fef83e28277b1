//! Deterministic outcomes chosen by customer number, in the manner of IAK's sandbox test
//! numbers (protocols.md §2.6). Only the last four digits matter.
//!
//! Prepaid (`customer_id`/`hp` of a top-up):
//! - `1<rc>`, `rc` a documented prepaid failure code written in three digits (`1007` → rc 07,
//!   `1014` → rc 14, `1106` → rc 106): the top-up fails with that rc.
//! - `1039` or `1201` (the pending codes): the top-up stays in process, answering rc `39` or
//!   `201` (IAK's "UNDEFINED RESPONSE CODE", which its table counts as pending), until
//!   `POST /sandbox/report` ends it, even in production.
//! - anything else: the top-up succeeds.
//!
//! Postpaid (`hp` of an inquiry), IAK's newer scheme:
//! - `0000`: success, one bill; `0999`: several bills.
//! - `0<rc>` (`0001`, `0014`, `0103`, ...): the inquiry fails with that rc.
//! - `1<rc>`: the inquiry succeeds and the payment ends with that rc: `1037` failed,
//!   `1039` pending (status 3) until reported, `1105` biller error; `1000` success.
//! - anything else: success, one bill.
//! - the document's own numbers: `6391601202` (three bills, paid), `6391601207` (pending).

use lunas_protocol::iak::{rc, RcClass};

/// How a prepaid top-up ends when nobody intervenes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepaidOutcome {
    Succeed,
    Fail {
        rc: String,
    },
    /// Stays in process, answering with `rc` (`39`, or `201` for IAK's "undefined" code);
    /// only a report ends it.
    StayPending {
        rc: String,
    },
}

/// How a postpaid inquiry for a customer number goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostpaidScenario {
    /// The inquiry fails with `rc`.
    InquiryFails { rc: String },
    /// The inquiry finds `bills` periods; a payment ends as `payment` says.
    Bills {
        bills: usize,
        payment: PaymentOutcome,
    },
}

/// How a postpaid payment ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Succeed,
    Fail {
        rc: String,
    },
    /// Status 3 (rc 39) until reported.
    Pending,
}

/// The last four characters of a number, when they are four digits.
fn suffix(number: &str) -> Option<[u8; 4]> {
    let bytes = number.trim().as_bytes();
    let tail = bytes.get(bytes.len().checked_sub(4)?..)?;
    if tail.iter().all(u8::is_ascii_digit) {
        Some([tail[0], tail[1], tail[2], tail[3]])
    } else {
        None
    }
}

/// `007` → `07`, `106` → `106`: IAK writes codes under 100 with two digits.
fn rc_of(digits: &[u8]) -> String {
    let n = digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    if n < 100 {
        format!("{n:02}")
    } else {
        n.to_string()
    }
}

/// The outcome of a top-up to `customer_id`.
pub fn prepaid(customer_id: &str) -> PrepaidOutcome {
    let Some(tail) = suffix(customer_id) else {
        return PrepaidOutcome::Succeed;
    };
    if tail[0] != b'1' {
        return PrepaidOutcome::Succeed;
    }
    let code = rc_of(&tail[1..]);
    match rc::prepaid_class(&code) {
        RcClass::Failed => PrepaidOutcome::Fail { rc: code },
        RcClass::Pending => PrepaidOutcome::StayPending { rc: code },
        _ => PrepaidOutcome::Succeed,
    }
}

/// The scenario of an inquiry for `hp` at a biller that owes `several` periods on `0999`.
/// The customer numbers of IAK's check-status document (seed 003) behave as its examples:
/// `6391601202` owes three periods and is paid; `6391601207` stays in process.
pub fn postpaid(hp: &str, several: usize) -> PostpaidScenario {
    match hp.trim() {
        "6391601202" => {
            return PostpaidScenario::Bills {
                bills: 3,
                payment: PaymentOutcome::Succeed,
            }
        }
        "6391601207" => {
            return PostpaidScenario::Bills {
                bills: 1,
                payment: PaymentOutcome::Pending,
            }
        }
        _ => {}
    }
    let one = PostpaidScenario::Bills {
        bills: 1,
        payment: PaymentOutcome::Succeed,
    };
    let Some(tail) = suffix(hp) else {
        return one;
    };
    match (tail[0], &tail[1..]) {
        (b'0', b"000") => one,
        (b'0', b"999") => PostpaidScenario::Bills {
            bills: several,
            payment: PaymentOutcome::Succeed,
        },
        (b'0', rest) => {
            let code = rc_of(rest);
            match rc::postpaid(&code) {
                Some(info) if info.class != RcClass::Success => {
                    PostpaidScenario::InquiryFails { rc: code }
                }
                _ => one,
            }
        }
        (b'1', rest) => {
            let code = rc_of(rest);
            let payment = match rc::postpaid_class(&code) {
                RcClass::Pending => PaymentOutcome::Pending,
                RcClass::Failed => PaymentOutcome::Fail { rc: code },
                _ => PaymentOutcome::Succeed,
            };
            PostpaidScenario::Bills { bills: 1, payment }
        }
        _ => one,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepaid_numbers() {
        assert_eq!(prepaid("0817777215"), PrepaidOutcome::Succeed);
        assert_eq!(
            prepaid("081200001007"),
            PrepaidOutcome::Fail { rc: "07".into() }
        );
        assert_eq!(
            prepaid("081200001106"),
            PrepaidOutcome::Fail { rc: "106".into() }
        );
        assert_eq!(
            prepaid("081200001039"),
            PrepaidOutcome::StayPending { rc: "39".into() }
        );
        assert_eq!(
            prepaid("081200001201"),
            PrepaidOutcome::StayPending { rc: "201".into() }
        );
        assert_eq!(prepaid("081200001000"), PrepaidOutcome::Succeed);
        // 204 refuses a request; it is no transaction outcome.
        assert_eq!(prepaid("081200001204"), PrepaidOutcome::Succeed);
        assert_eq!(prepaid("12"), PrepaidOutcome::Succeed);
        assert_eq!(prepaid("156378300|8483"), PrepaidOutcome::Succeed);
    }

    #[test]
    fn postpaid_numbers() {
        let bills = |n, payment| PostpaidScenario::Bills { bills: n, payment };
        assert_eq!(
            postpaid("530000000000", 8),
            bills(1, PaymentOutcome::Succeed)
        );
        assert_eq!(
            postpaid("530000000999", 8),
            bills(8, PaymentOutcome::Succeed)
        );
        assert_eq!(
            postpaid("530000000014", 8),
            PostpaidScenario::InquiryFails { rc: "14".into() }
        );
        assert_eq!(
            postpaid("530000000103", 8),
            PostpaidScenario::InquiryFails { rc: "103".into() }
        );
        assert_eq!(
            postpaid("530000001037", 8),
            bills(1, PaymentOutcome::Fail { rc: "37".into() })
        );
        assert_eq!(
            postpaid("530000001039", 8),
            bills(1, PaymentOutcome::Pending)
        );
        assert_eq!(
            postpaid("530000001105", 8),
            bills(1, PaymentOutcome::Fail { rc: "105".into() })
        );
        // The document's own numbers behave as its examples.
        assert_eq!(postpaid("6391601202", 8), bills(3, PaymentOutcome::Succeed));
        assert_eq!(postpaid("6391601207", 8), bills(1, PaymentOutcome::Pending));
    }
}
