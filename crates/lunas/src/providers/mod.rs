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
