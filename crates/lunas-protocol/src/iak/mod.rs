//! IAK (mobilepulsa) and its white label IDSL: prepaid top-ups with callbacks, postpaid bills
//! without. IDSL's documents are IAK's with the brand replaced (same paths, fields and signs), so
//! one codec serves both; [`Brand`] carries the differences.

pub mod postpaid;
pub mod prepaid;
pub mod rc;

pub use rc::{RcClass, RcInfo};

/// Which of the two sellers of the same API an account belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Brand {
    Iak,
    Idsl,
}

impl Brand {
    pub fn as_str(self) -> &'static str {
        match self {
            Brand::Iak => "iak",
            Brand::Idsl => "idsl",
        }
    }

    /// IDSL's check-balance takes and returns an optional `currency` (`IDR` | `USD`).
    pub fn has_balance_currency(self) -> bool {
        matches!(self, Brand::Idsl)
    }
}

/// The field names of an account's API version. v2 renamed `hp` → `customer_id` and
/// `code`/`pulsa_code` → `product_code` (and all other "pulsa" words to "product").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ApiVersion {
    V1,
    #[default]
    V2,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }

    /// Which version a decoded message used, given the index of the matched name in a
    /// `[v2, v1, ...]` lookup (see [`crate::fields`]).
    pub(crate) fn from_match(index: usize) -> Self {
        if index == 0 {
            ApiVersion::V2
        } else {
            ApiVersion::V1
        }
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = crate::ProtocolError;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "v1" | "1" => Ok(ApiVersion::V1),
            "v2" | "2" => Ok(ApiVersion::V2),
            _ => Err(crate::ProtocolError::invalid(
                "api_version",
                "expected v1 or v2",
            )),
        }
    }
}

/// What a provider's answer or callback says about a transaction, once its status field and its
/// response code are read together. Only `Succeeded` and `Failed` are final, and only when the
/// two agree: a message whose status and code disagree is not trusted to end a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Final success (status 1 with rc `00`).
    Succeeded,
    /// Final failure (status 2 with a failure code).
    Failed,
    /// Still in process, or a message that cannot be trusted to be final.
    Pending,
    /// Postpaid check-status 0 / rc `42`: the payment request never reached IAK.
    NotReceived,
    /// The provider has no such transaction (prepaid rc `06`, postpaid rc `06`).
    NotFound,
    /// The request itself was refused (bad sign, IP not allowed, bad format, maintenance,
    /// suspended account): says nothing about the transaction.
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Succeeded => "succeeded",
            Verdict::Failed => "failed",
            Verdict::Pending => "pending",
            Verdict::NotReceived => "not_received",
            Verdict::NotFound => "not_found",
            Verdict::Rejected => "rejected",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Verdict::Succeeded | Verdict::Failed)
    }
}
