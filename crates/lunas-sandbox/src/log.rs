//! What the sandbox did, for `GET /sandbox/log` and [`crate::Sandbox::log`]: every request it
//! answered and every callback it sent (or deliberately did not send).
//!
//! Nothing here ever holds an API key, hash key or secret: requests are recorded by path,
//! account, command, ref and answer; callbacks by URL, body and outcome. (The bodies carry the
//! `sign`/`mcp-signature` digests, which is what a receiver sees anyway.)

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The most records of each kind kept; older ones are dropped first.
pub const CAPACITY: usize = 10_000;

/// One request the sandbox answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub method: String,
    pub path: String,
    /// The account id, once the request was matched to one.
    pub account: Option<String>,
    /// `top-up`, `check-status`, `balance`, `pricelist`, `inq-pasca`, `pay-pasca`,
    /// `checkstatus`, `pricelist-pasca`, `va-create`, `va-inquiry`, `va-cancel`, `report`,
    /// `va-pay`, `deposit`.
    pub command: Option<String>,
    /// The transaction's ref (`ref_id`, MCPayment `external_id`), or the postpaid `tr_id`.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// The answered response code (`rc`, `response_code`), when the answer has one.
    pub rc: Option<String>,
    /// The HTTP status answered; for `drop_after_commit`, that of the answer withheld.
    pub http_status: u16,
    /// The fault applied, if any: to a check-status call `5xx`, `timeout` or `garbage`; to an
    /// order `5xx_before_commit`, `5xx_after_commit`, `drop_after_commit` or
    /// `hang_after_commit`.
    pub fault: Option<String>,
}

/// What became of one callback attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// The receiver accepted it (IAK/IDSL: any 2xx; MCPayment: 200).
    Accepted,
    /// The receiver answered with another HTTP status.
    Rejected,
    /// No answer: connection refused, timeout, or similar.
    Error,
    /// Not sent, on purpose: the `drop` fault knob.
    Dropped,
    /// Not sent: the account has no callback URL.
    Skipped,
}

/// Why a callback was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    /// The final outcome of a prepaid top-up.
    Final,
    /// A second copy of the final callback (`duplicate` fault).
    Duplicate,
    /// A final callback that contradicts the first (`conflicting` fault).
    Conflicting,
    /// A stale "in process" callback after the final one (`out_of_order` fault).
    OutOfOrder,
    /// A payment into a virtual account.
    Payment,
    /// A virtual account expired.
    Expired,
    /// A paid virtual account was refunded or voided (`POST /sandbox/va/refund`).
    Refund,
}

impl CallbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackKind::Final => "final",
            CallbackKind::Duplicate => "duplicate",
            CallbackKind::Conflicting => "conflicting",
            CallbackKind::OutOfOrder => "out_of_order",
            CallbackKind::Payment => "payment",
            CallbackKind::Expired => "expired",
            CallbackKind::Refund => "refund",
        }
    }
}

/// One callback attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub account: String,
    pub url: Option<String>,
    #[serde(rename = "ref")]
    pub reference: String,
    pub kind: CallbackKind,
    /// 1 for the first try, 2 for the first retry, ...; 0 when nothing was sent.
    pub attempt: u32,
    pub outcome: CallbackOutcome,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Why no answer came, when none did.
    pub error: Option<String>,
    /// Whether the signature was made wrong on purpose (`wrong_signature` fault).
    pub signature_wrong: bool,
    pub content_type: String,
    /// The `mcp-signature` header, for MCPayment callbacks.
    pub mcp_signature: Option<String>,
    /// The body sent, exactly.
    pub body: String,
    /// The start of the receiver's answer (at most 1 KiB).
    pub response_body: Option<String>,
}

/// Everything recorded, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSnapshot {
    pub requests: Vec<RequestRecord>,
    pub callbacks: Vec<CallbackRecord>,
}

impl LogSnapshot {
    /// The callbacks about one ref, oldest first.
    pub fn callbacks_for(&self, reference: &str) -> Vec<&CallbackRecord> {
        self.callbacks
            .iter()
            .filter(|c| c.reference == reference)
            .collect()
    }
}

/// The bounded in-memory log.
#[derive(Debug, Default)]
pub(crate) struct Log {
    seq: u64,
    requests: VecDeque<RequestRecord>,
    callbacks: VecDeque<CallbackRecord>,
}

impl Log {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn request(&mut self, mut record: RequestRecord) {
        record.seq = self.next_seq();
        if self.requests.len() == CAPACITY {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
    }

    pub(crate) fn callback(&mut self, mut record: CallbackRecord) -> CallbackRecord {
        record.seq = self.next_seq();
        if self.callbacks.len() == CAPACITY {
            self.callbacks.pop_front();
        }
        self.callbacks.push_back(record.clone());
        record
    }

    /// A copy, optionally only the records of one account and/or one ref.
    pub(crate) fn snapshot(&self, account: Option<&str>, reference: Option<&str>) -> LogSnapshot {
        let keep = |acc: Option<&str>, r: Option<&str>| {
            account.is_none_or(|a| acc == Some(a)) && reference.is_none_or(|x| r == Some(x))
        };
        LogSnapshot {
            requests: self
                .requests
                .iter()
                .filter(|r| keep(r.account.as_deref(), r.reference.as_deref()))
                .cloned()
                .collect(),
            callbacks: self
                .callbacks
                .iter()
                .filter(|c| keep(Some(&c.account), Some(&c.reference)))
                .cloned()
                .collect(),
        }
    }
}
