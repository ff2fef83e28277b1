//! One module per provider family: how its callbacks are verified and what they say.
//!
//! A callback becomes a [`Verified`] only inside these modules, after its signature checked out
//! on the received bytes; the rest of the gateway can act on nothing else. A message that fails
//! becomes a [`Refusal`] naming the problem.

pub mod iak;
pub mod mcp;

use axum::http::{HeaderMap, StatusCode};
use lunas_core::{Fact, ObservationVerdict};
use lunas_protocol::ack::Ack;
use lunas_protocol::{ProtocolError, ProviderKind};

use crate::config::ProviderConfig;

/// A callback whose signature verified, and what it states.
#[derive(Debug)]
pub struct Verified {
    pub fact: Fact,
    /// The answer the provider expects once the callback is committed.
    pub ack: Ack,
    /// `json` or `xml`, for the logs.
    pub format: &'static str,
    _sealed: Seal,
}

/// Private to this module: nothing outside it can make a [`Verified`].
#[derive(Debug)]
struct Seal;

impl Verified {
    fn new(fact: Fact, ack: Ack, format: &'static str) -> Self {
        Verified {
            fact,
            ack,
            format,
            _sealed: Seal,
        }
    }
}

/// Why a callback was refused, and how to answer.
#[derive(Debug)]
pub struct Refusal {
    pub verdict: ObservationVerdict,
    /// The ref the message names, when one could be read (to file the evidence).
    pub reference: Option<String>,
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn malformed(e: &ProtocolError) -> Self {
        Refusal {
            verdict: ObservationVerdict::Malformed,
            reference: None,
            status: StatusCode::BAD_REQUEST,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// The longest ref lunas accepts (as registration does).
pub const MAX_REF_LEN: usize = 128;

/// Checks what the protocol parsers leave to the gateway: a usable ref, and no negative money.
fn check_ref(field: &str, value: &str) -> Result<(), Refusal> {
    if value.trim().is_empty() {
        return Err(Refusal::malformed(&ProtocolError::MissingField(
            field.to_owned(),
        )));
    }
    ref_problem(value).map_or(Ok(()), |reason| {
        Err(Refusal::malformed(&ProtocolError::InvalidField {
            field: field.to_owned(),
            reason,
        }))
    })
}

/// What is wrong with a ref, if anything. Refs are exact (`ABC` and `abc` are two
/// transactions), so a ref with surrounding white space or control characters is refused
/// rather than silently made into another transaction.
pub fn ref_problem(value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return Some("is empty".into());
    }
    if value.len() > MAX_REF_LEN {
        return Some(format!("is longer than {MAX_REF_LEN} characters"));
    }
    if value.trim() != value {
        return Some("has white space at its start or end".into());
    }
    if value.chars().any(char::is_control) {
        return Some("contains a control character".into());
    }
    None
}

fn check_amount(field: &str, value: Option<i64>) -> Result<(), Refusal> {
    match value {
        Some(v) if v < 0 => Err(Refusal::malformed(&ProtocolError::InvalidField {
            field: field.to_owned(),
            reason: format!("{v} is negative; amounts are whole rupiah, zero or more"),
        })),
        _ => Ok(()),
    }
}

impl Refusal {
    fn bad_signature(reference: String, message: impl Into<String>) -> Self {
        Refusal {
            verdict: ObservationVerdict::BadSignature,
            reference: Some(reference),
            status: StatusCode::UNAUTHORIZED,
            code: "bad_signature",
            message: message.into(),
        }
    }
}

/// Verifies a callback for `provider` and reads what it states.
pub fn verify_callback(
    provider: &ProviderConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, Refusal> {
    match provider.kind {
        ProviderKind::Iak | ProviderKind::Idsl => iak::verify_callback(provider, body),
        ProviderKind::Mcp => mcp::verify_callback(provider, headers, body),
    }
}

/// What a status check established.
#[derive(Debug)]
pub enum CheckOutcome {
    /// The provider answered about the transaction (final or still pending).
    Answered(Fact),
    /// The provider has no such transaction (prepaid or postpaid `06`, MCPayment `02`).
    NotFound,
    /// Postpaid status 0: the payment request never arrived (the fact says pending).
    NotReceived(Fact),
    /// No usable answer: transport error, timeout, 5xx, garbage, a refused request. Never an
    /// outcome.
    Failed(String),
}

/// One status check's evidence and outcome.
#[derive(Debug)]
pub struct Checked {
    pub outcome: CheckOutcome,
    /// The provider's answer (capped), or empty when none came.
    pub response: Vec<u8>,
    pub content_type: Option<String>,
    /// What was asked and what came back, for the timeline (never a key or a sign).
    pub summary: String,
}

/// Asks the provider about `tx` with its own check-status API.
pub async fn check_status(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    tx: &lunas_core::TxRecord,
) -> Checked {
    match provider.kind {
        ProviderKind::Iak | ProviderKind::Idsl => iak::check_status(client, provider, tx).await,
        ProviderKind::Mcp => mcp::check_status(client, provider, tx).await,
    }
}

/// How much of a check's answer is kept as evidence.
pub(crate) const CHECK_BODY_CAP: usize = 16 * 1024;

/// POSTs a check-status request and reads the answer, within the client's timeout.
pub(crate) async fn post(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<(u16, Option<String>, Vec<u8>), String> {
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{what}: timed out")
        } else if e.is_connect() {
            format!("{what}: could not connect")
        } else {
            format!("{what}: request failed ({e})")
        }
    })?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{what}: the answer was cut off ({e})"))?;
    Ok((status, content_type, body.to_vec()))
}

/// `base` + `path`, whether or not `base` ends with a slash.
pub(crate) fn join(base: &url::Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}
