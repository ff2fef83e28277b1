//! The VA wire types. They mirror MCPayment's JSON field for field (optional where any example
//! omits a field); amounts are whole rupiah in `i64`, read from numbers or numeric strings.

use serde::{Deserialize, Serialize};

use crate::error::{ProtocolError, Result};
use crate::fields::lenient;

/// A VA's `transaction_status`. Parsed case-insensitively; a value outside the documented set
/// is kept as [`TransactionStatus::Other`], never rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TransactionStatus {
    /// Created, unpaid (or open for more payments).
    Active,
    /// Waiting for the bank or vendor.
    Processing,
    Paid,
    Expired,
    Canceled,
    Refunded,
    Void,
    /// Wallet and payment-page wording for paid.
    Success,
    Failed,
    Other(String),
}

impl TransactionStatus {
    pub fn as_str(&self) -> &str {
        match self {
            TransactionStatus::Active => "ACTIVE",
            TransactionStatus::Processing => "PROCESSING",
            TransactionStatus::Paid => "PAID",
            TransactionStatus::Expired => "EXPIRED",
            TransactionStatus::Canceled => "CANCELED",
            TransactionStatus::Refunded => "REFUNDED",
            TransactionStatus::Void => "VOID",
            TransactionStatus::Success => "SUCCESS",
            TransactionStatus::Failed => "FAILED",
            TransactionStatus::Other(s) => s,
        }
    }
}

impl From<String> for TransactionStatus {
    fn from(s: String) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "ACTIVE" => TransactionStatus::Active,
            "PROCESSING" => TransactionStatus::Processing,
            "PAID" => TransactionStatus::Paid,
            "EXPIRED" => TransactionStatus::Expired,
            "CANCELED" | "CANCELLED" => TransactionStatus::Canceled,
            "REFUNDED" | "REFUND" => TransactionStatus::Refunded,
            "VOID" => TransactionStatus::Void,
            "SUCCESS" => TransactionStatus::Success,
            "FAILED" => TransactionStatus::Failed,
            _ => TransactionStatus::Other(s),
        }
    }
}

impl From<TransactionStatus> for String {
    fn from(s: TransactionStatus) -> Self {
        s.as_str().to_owned()
    }
}

/// How a VA takes money (protocols.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PaymentSystem {
    /// Exactly `amount`, once (or repeatedly when multi-use).
    Closed,
    /// Any amount, until cancelled.
    Open,
    /// A fixed total paid in instalments.
    Partial,
}

impl PaymentSystem {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentSystem::Closed => "CLOSED",
            PaymentSystem::Open => "OPEN",
            PaymentSystem::Partial => "PARTIAL",
        }
    }
}

impl TryFrom<String> for PaymentSystem {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "CLOSED" => Ok(PaymentSystem::Closed),
            "OPEN" => Ok(PaymentSystem::Open),
            "PARTIAL" => Ok(PaymentSystem::Partial),
            _ => Err(format!(
                "unknown payment_system {s:?} (expected OPEN, CLOSED or PARTIAL)"
            )),
        }
    }
}

impl From<PaymentSystem> for String {
    fn from(p: PaymentSystem) -> Self {
        p.as_str().to_owned()
    }
}

/// `payment_details` of a callback, an inquiry or a create answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_system: Option<PaymentSystem>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub billing_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub va_number: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub amount: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub total_fee_amount: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub total_promo_amount: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub total_amount: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub total_paid_amount: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub is_multi_use: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub is_customer_paying_fee: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_description: Option<String>,
}

/// `customer_details`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomerDetails {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
}

/// One entry of `item_details`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemDetail {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub item_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub amount: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub qty: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `billing_address` and `shipping_address`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
}

/// One payment into a VA. `reference_id` tells payments of a multi-use or partial VA apart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentRecord {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub paid_amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_time: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub reference_id: Option<String>,
}

/// One refund of a VA payment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RefundRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_time: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub refund_amount: Option<i64>,
}

/// A VA transaction as MCPayment describes it: the body of a callback, and the `data` of an
/// inquiry, create or cancel answer. Both callback variants of seed 002 fit: `payment_system`
/// sits at the top level in one and inside `payment_details` in the other, so both places are
/// kept (see [`VaTransaction::payment_system`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaTransaction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<String>,
    pub transaction_id: String,
    pub external_id: String,
    pub order_id: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_system: Option<PaymentSystem>,
    pub transaction_status: TransactionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_details: Option<PaymentDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_details: Option<CustomerDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_details: Option<Vec<ItemDetail>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_history: Option<Vec<RefundRecord>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_history: Option<Vec<PaymentRecord>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<String>,
}

impl VaTransaction {
    /// A transaction with the mandatory fields only.
    pub fn new(
        transaction_id: &str,
        external_id: &str,
        order_id: &str,
        status: TransactionStatus,
    ) -> Self {
        VaTransaction {
            response_code: None,
            transaction_id: transaction_id.to_owned(),
            external_id: external_id.to_owned(),
            order_id: order_id.to_owned(),
            reference_id: None,
            currency: None,
            payment_method: None,
            payment_channel: None,
            payment_system: None,
            transaction_status: status,
            transaction_time: None,
            payment_details: None,
            customer_details: None,
            item_details: None,
            billing_address: None,
            shipping_address: None,
            issuer: None,
            additional_data: None,
            callback_url: None,
            refund_history: None,
            payment_history: None,
            transaction_type: None,
        }
    }

    /// Parses a callback body. Does not check `mcp-signature`: see
    /// [`super::Credentials::verify_callback`].
    pub fn parse_callback(bytes: &[u8]) -> Result<Self> {
        parse_json(bytes)
    }

    /// [`Self::parse_callback`], and the keys the body repeated (accepted under the one
    /// repeated-key rule of [`crate::json`]; seed 002's own example repeats two).
    pub fn parse_callback_noting(bytes: &[u8]) -> Result<(Self, Vec<String>)> {
        parse_json_noting(bytes)
    }

    /// The callback body MCPayment would send.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("VA types always serialise")
    }

    /// The callback body as one of seed 002's two examples lays it out: its fields in its
    /// order (a field this message does not have is left out). The "Example Request" shows no
    /// refund: a refund or void callback in that layout ends with the "Body raw"'s
    /// `refund_history` and `transaction_type`.
    pub fn encode_callback(&self, layout: CallbackLayout) -> String {
        let value = serde_json::to_value(self).expect("VA types always serialise");
        let mut out = laid_out(&value, layout.keys());
        if layout == CallbackLayout::ExampleRequest && self.refund_history.is_some() {
            if let (serde_json::Value::Object(out), serde_json::Value::Object(refund)) =
                (&mut out, laid_out(&value, REFUND_FIELDS))
            {
                out.extend(refund);
            }
        }
        out.to_string()
    }

    /// `payment_system`, wherever this message put it.
    pub fn payment_system(&self) -> Option<PaymentSystem> {
        self.payment_system
            .or_else(|| self.payment_details.as_ref().and_then(|d| d.payment_system))
    }

    /// The amount due: `total_amount`, else `amount`.
    pub fn total_amount(&self) -> Option<i64> {
        let d = self.payment_details.as_ref()?;
        d.total_amount.or(d.amount)
    }

    /// What has been paid so far: `total_paid_amount`, else the sum of `payment_history`.
    pub fn total_paid(&self) -> Option<i64> {
        if let Some(paid) = self
            .payment_details
            .as_ref()
            .and_then(|d| d.total_paid_amount)
        {
            return Some(paid);
        }
        let history = self.payment_history.as_ref()?;
        history
            .iter()
            .try_fold(0i64, |acc, p| acc.checked_add(p.paid_amount.unwrap_or(0)))
    }
}

/// The two callback bodies seed 002 shows: the "Body raw" (a top-level `reference_id` and
/// `payment_system`, a short `payment_details`) and the "Example Request" (the curl example:
/// `response_code` first, the full `payment_details`, `payment_history` before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackLayout {
    #[default]
    ExampleRequest,
    BodyRaw,
}

/// Keys in order; for an object (or an array of objects) the keys of its own, in order.
type Layout = &'static [(&'static str, &'static [&'static str])];

const ITEM: &[&str] = &["item_id", "name", "amount", "qty", "description"];
const ADDRESS: &[&str] = &[
    "phone",
    "address",
    "city",
    "postal_code",
    "country",
    "full_name",
];
const PAYMENT: &[&str] = &["paid_amount", "paid_time", "reference_id"];
const REFUND: &[&str] = &["refund_time", "refund_amount"];

const EXAMPLE_REQUEST: Layout = &[
    ("response_code", &[]),
    ("transaction_id", &[]),
    ("external_id", &[]),
    ("order_id", &[]),
    ("currency", &[]),
    ("transaction_status", &[]),
    ("transaction_time", &[]),
    ("payment_method", &[]),
    ("payment_channel", &[]),
    ("additional_data", &[]),
    ("callback_url", &[]),
    ("customer_details", &["email", "full_name", "phone"]),
    ("item_details", ITEM),
    ("payment_history", PAYMENT),
    (
        "payment_details",
        &[
            "payment_system",
            "billing_name",
            "va_number",
            "amount",
            "total_fee_amount",
            "total_promo_amount",
            "total_amount",
            "total_paid_amount",
            "is_multi_use",
            "is_customer_paying_fee",
            "expired_time",
            "transaction_description",
        ],
    ),
    ("billing_address", ADDRESS),
    ("shipping_address", ADDRESS),
    ("issuer", &[]),
];

/// What a refund or void callback adds to the "Example Request" layout.
const REFUND_FIELDS: Layout = &[("refund_history", REFUND), ("transaction_type", &[])];

const BODY_RAW: Layout = &[
    ("transaction_id", &[]),
    ("external_id", &[]),
    ("order_id", &[]),
    ("reference_id", &[]),
    ("currency", &[]),
    ("payment_method", &[]),
    ("payment_channel", &[]),
    ("payment_system", &[]),
    ("transaction_status", &[]),
    ("transaction_time", &[]),
    (
        "payment_details",
        &[
            "amount",
            "expired_time",
            "transaction_description",
            "total_amount",
            "paid_time",
        ],
    ),
    ("customer_details", &["phone", "email", "full_name"]),
    ("item_details", ITEM),
    ("billing_address", ADDRESS),
    ("shipping_address", ADDRESS),
    ("response_code", &[]),
    ("issuer", &[]),
    ("additional_data", &[]),
    ("refund_history", REFUND),
    ("payment_history", PAYMENT),
    ("transaction_type", &[]),
];

impl CallbackLayout {
    fn keys(self) -> Layout {
        match self {
            CallbackLayout::ExampleRequest => EXAMPLE_REQUEST,
            CallbackLayout::BodyRaw => BODY_RAW,
        }
    }
}

/// `value`'s fields named by `layout`, in its order.
fn laid_out(value: &serde_json::Value, layout: Layout) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (key, inner) in layout {
        let Some(v) = value.get(*key) else { continue };
        let v = match v {
            serde_json::Value::Object(_) if !inner.is_empty() => only(v, inner),
            serde_json::Value::Array(items) if !inner.is_empty() => {
                items.iter().map(|item| only(item, inner)).collect()
            }
            other => other.clone(),
        };
        out.insert((*key).to_owned(), v);
    }
    serde_json::Value::Object(out)
}

/// An object's `keys`, in that order.
fn only(value: &serde_json::Value, keys: &[&str]) -> serde_json::Value {
    keys.iter()
        .filter_map(|k| value.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The request body of create VA (`POST /va`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateVaRequest {
    pub external_id: String,
    pub order_id: String,
    pub currency: String,
    pub payment_method: String,
    pub payment_channel: String,
    pub payment_details: PaymentDetails,
    pub customer_details: CustomerDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_details: Option<Vec<ItemDetail>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Free text the merchant gets back in the callbacks and inquiries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_data: Option<String>,
}

impl CreateVaRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let req: Self = parse_json(bytes)?;
        let d = &req.payment_details;
        if d.billing_name.as_deref().is_none_or(str::is_empty) {
            return Err(ProtocolError::MissingField(
                "payment_details.billing_name".into(),
            ));
        }
        if d.transaction_description.is_none() {
            return Err(ProtocolError::MissingField(
                "payment_details.transaction_description".into(),
            ));
        }
        let system = d.payment_system.unwrap_or(PaymentSystem::Closed);
        match (system, d.amount) {
            (PaymentSystem::Open, _) => {}
            (_, None) => return Err(ProtocolError::MissingField("payment_details.amount".into())),
            (_, Some(a)) if a <= 0 => {
                return Err(ProtocolError::invalid(
                    "payment_details.amount",
                    "must be positive",
                ))
            }
            _ => {}
        }
        Ok(req)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("VA types always serialise")
    }
}

/// The request body of `/va/inquiry` and `/va/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaLookupRequest {
    pub external_id: String,
    pub order_id: String,
    pub transaction_id: String,
    pub payment_method: String,
    pub payment_channel: String,
}

impl VaLookupRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        parse_json(bytes)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("VA types always serialise")
    }
}

/// MCPayment's answer envelope: `{"response_code", "response_message", "data"?, "error"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpResponse {
    pub response_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<VaTransaction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl McpResponse {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        parse_json(bytes)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("VA types always serialise")
    }

    pub fn is_success(&self) -> bool {
        self.response_code.trim() == "00"
    }
}

/// Parses JSON into a wire type, naming the field path of any problem.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    parse_json_noting(bytes).map(|(value, _)| value)
}

/// [`parse_json`], and the keys the body repeated.
fn parse_json_noting<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(T, Vec<String>)> {
    match crate::codec::sniff(bytes)? {
        crate::codec::Format::Json => {}
        crate::codec::Format::Xml => {
            return Err(ProtocolError::InvalidJson(
                "MCPayment messages are JSON, not XML".into(),
            ))
        }
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let (tree, repeated) = crate::json::parse_noting(bytes, MCP_DECISIVE)?;
    let value = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde reports a missing field as "missing field `name` at line ..".
        if let Some(name) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            let full = if path == "." {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            return ProtocolError::MissingField(full);
        }
        let reason = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        ProtocolError::InvalidField {
            field: path,
            reason,
        }
    })?;
    Ok((value, repeated))
}

/// The MCPayment fields lunas decides on: repeated with different values, a message is refused
/// (see [`crate::json`]).
const MCP_DECISIVE: &[&str] = &[
    "transaction_id",
    "external_id",
    "order_id",
    "transaction_status",
    "response_code",
    "currency",
    "amount",
    "total_amount",
    "paid_amount",
    "total_paid_amount",
    "refund_amount",
    "payment_system",
    "payment_details",
    "payment_history",
    "refund_history",
    "va_number",
    "is_multi_use",
    "expired_time",
    "transaction_type",
    "reference_id",
];
