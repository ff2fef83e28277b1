//! # lunas-protocol
//!
//! The wire protocols of the providers lunas speaks, in both directions, with no I/O: IAK and
//! IDSL prepaid (callbacks, top-up, check-status, balance, price list), IAK postpaid
//! (`inq-pasca`, `pay-pasca`, `checkstatus`), and MCPayment PG3 virtual accounts (create,
//! inquiry, cancel, callback). Both the gateway and the sandbox build on this crate; nothing else
//! is shared between them.
//!
//! Every parser takes raw bytes and returns a typed [`ProtocolError`] on bad input; none panics.
//! Every message type also encodes itself exactly as the provider writes it.
//!
//! Architecture invariant: this crate performs no I/O and depends on no async runtime.

pub mod ack;
pub mod codec;
pub mod error;
mod fields;
pub mod iak;
pub mod json;
pub mod mcp;
pub mod secret;
pub mod sign;
pub mod state;
pub mod xml;

pub use codec::Format;
pub use error::{ProtocolError, Result};
pub use fields::parse_int_text;
pub use iak::{ApiVersion, Brand, Verdict};
pub use secret::Secret;
pub use state::{State, TxKind};

/// A parsed message with the format and naming it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    pub message: T,
    pub format: Format,
    pub version: ApiVersion,
}

/// The provider families lunas supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Iak,
    Idsl,
    Mcp,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Iak => "iak",
            ProviderKind::Idsl => "idsl",
            ProviderKind::Mcp => "mcp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "iak" => Some(ProviderKind::Iak),
            "idsl" => Some(ProviderKind::Idsl),
            "mcp" => Some(ProviderKind::Mcp),
            _ => None,
        }
    }

    /// The IAK-family brand, `None` for MCPayment.
    pub fn brand(self) -> Option<Brand> {
        match self {
            ProviderKind::Iak => Some(Brand::Iak),
            ProviderKind::Idsl => Some(Brand::Idsl),
            ProviderKind::Mcp => None,
        }
    }
}
