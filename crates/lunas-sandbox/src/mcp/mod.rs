//! MCPayment (iFortepay) PG3 virtual accounts, the kind `mcp` (protocols.md §4):
//!
//! - `va.rs`: `POST /va` (create), `/va/inquiry`, `/va/cancel`;
//! - `payments.rs`: bank payments simulated by `POST /sandbox/va/pay`, the payment callbacks,
//!   and expiry.
//!
//! Rules:
//! - the account is the one whose `Authorization: Basic base64(merchant_id:secret_unbound_id)`
//!   the request carries, else HTTP 401 `{"response_code":"04"}`; a sub-merchant account also
//!   needs its `sub-merchant-id` header;
//! - `x-req-signature` must be `sha256(hash_key + external_id + order_id)` of the body's ids,
//!   else HTTP 401 `{"response_code":"99","response_message":"Invalid Signature"}`;
//! - a body the protocol parser refuses, or a rule below broken, is HTTP 400 with
//!   `response_code` 01; a VA not found is HTTP 404 with 02; a refused cancel HTTP 400 with 03;
//! - answers are `{"response_code":"00","response_message":"Success","data":{..}}`, the data
//!   a [`VaTransaction`](lunas_protocol::mcp::VaTransaction);
//! - CLOSED takes exactly `amount` (once, or repeatedly when `is_multi_use`), PARTIAL takes
//!   instalments until `amount` is reached, OPEN (always multi-use) takes any amount until
//!   cancelled or expired;
//! - every payment sends a `PAID` callback whose `payment_history` lists every payment so far,
//!   signed with `mcp-signature`; an `ACTIVE` VA that reaches its `expired_time` becomes
//!   `EXPIRED` and sends one `EXPIRED` callback. Callbacks are sent in both environments and
//!   retried until the receiver answers 200 (three tries by default).
//!
//! This file is the family as the registry sees it (`Mcp`): its account keys
//! (`merchant_id`, `secret_unbound_id`, `hash_key`, `sub_merchant_id`), its routes, the VAs it
//! holds per account and how `GET /sandbox/transactions` lists them. MCPayment accounts have no
//! deposit and nothing to report: a VA is paid with `POST /sandbox/va/pay`.

pub(crate) mod payments;
pub(crate) mod va;

use std::collections::HashMap;

use axum::routing::post;
use axum::Router;
use lunas_protocol::mcp::{
    Address, Credentials, CustomerDetails, ItemDetail, PaymentSystem, TransactionStatus,
};
use lunas_protocol::{ApiVersion, Format, ProviderKind};
use time::OffsetDateTime;

use crate::config::{Account, AccountCredentials, AccountKeys, ConfigError};
use crate::control::TransactionInfo;
use crate::providers::{Held, Key, Provider, Settings};
use crate::state::State;
use crate::{clock, AccountKind, Sandbox};

/// MCPayment: the waits before each retry; two retries make the documented three tries.
pub const DEFAULT_MCP_RETRY_DELAYS_MS: [u64; 2] = [5_000, 30_000];

/// The kind of this family.
#[allow(non_upper_case_globals)]
impl AccountKind {
    /// MCPayment (`kind = "mcp"`).
    pub const Mcp: AccountKind = AccountKind::new("mcp", &Mcp);
}

/// Why another family's account refuses a key of this one.
const SETTING: &str = "is an MCPayment setting; {label} accounts use {uses}";

/// The MCPayment family, as the registry holds it.
pub(crate) struct Mcp;

/// What an MCPayment account holds: its virtual accounts by `external_id`.
#[derive(Debug, Default)]
pub(crate) struct VirtualAccounts {
    pub vas: HashMap<String, Va>,
}

/// One payment into a virtual account.
#[derive(Debug, Clone)]
pub(crate) struct VaPayment {
    pub amount: i64,
    pub at: OffsetDateTime,
    pub reference_id: String,
}

/// An MCPayment virtual account.
#[derive(Debug, Clone)]
pub(crate) struct Va {
    pub transaction_id: String,
    pub external_id: String,
    pub order_id: String,
    pub channel: String,
    pub system: PaymentSystem,
    pub multi_use: bool,
    /// The amount due (CLOSED: each payment; PARTIAL: the total; OPEN: 0).
    pub amount: i64,
    pub billing_name: String,
    pub va_number: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub status: TransactionStatus,
    pub payments: Vec<VaPayment>,
    pub customer: CustomerDetails,
    pub items: Option<Vec<ItemDetail>>,
    pub billing_address: Option<Address>,
    pub shipping_address: Option<Address>,
    pub callback_url: Option<String>,
    pub additional_data: Option<String>,
    /// Refunds (and a void) made by `POST /sandbox/va/refund`, oldest first.
    pub refunds: Vec<VaRefund>,
    /// `on_us` or `off_us` once a refund said which (the document's `transaction_type`).
    pub transaction_type: Option<String>,
}

/// One refund of a VA's money.
#[derive(Debug, Clone)]
pub(crate) struct VaRefund {
    pub amount: i64,
    pub at: OffsetDateTime,
}

impl Va {
    pub fn total_refunded(&self) -> i64 {
        self.refunds
            .iter()
            .fold(0i64, |acc, r| acc.saturating_add(r.amount))
    }

    pub fn total_paid(&self) -> i64 {
        self.payments
            .iter()
            .fold(0i64, |acc, p| acc.saturating_add(p.amount))
    }

    /// Whether a payment can still be made (time aside).
    pub fn payable(&self) -> bool {
        match self.status {
            TransactionStatus::Active => true,
            TransactionStatus::Paid => self.multi_use && self.system != PaymentSystem::Partial,
            _ => false,
        }
    }
}

/// The VAs of account `index`, if it is an MCPayment account.
fn held(st: &State, index: usize) -> Option<&VirtualAccounts> {
    st.accounts.get(index)?.held.get()
}

/// The VAs of account `index`, to change, if it is an MCPayment account.
fn held_mut(st: &mut State, index: usize) -> Option<&mut VirtualAccounts> {
    st.accounts.get_mut(index)?.held.get_mut()
}

/// The account's credentials, if it is an MCPayment account.
fn credentials(account: &Account) -> Option<&Credentials> {
    match &account.credentials {
        AccountCredentials::Mcp(c) => Some(c),
        _ => None,
    }
}

impl Provider for Mcp {
    fn kinds(&self) -> &'static [AccountKind] {
        const KINDS: &[AccountKind] = &[AccountKind::Mcp];
        KINDS
    }

    fn label(&self) -> &'static str {
        "MCPayment"
    }

    fn protocol(&self, _kind: AccountKind) -> ProviderKind {
        ProviderKind::Mcp
    }

    fn keys(&self) -> &'static [Key] {
        const KEYS: &[Key] = &[
            Key {
                name: "merchant_id",
                set: |c| c.merchant_id.is_some(),
                elsewhere: SETTING,
            },
            Key {
                name: "secret_unbound_id",
                set: |c| c.secret_unbound_id.is_some(),
                elsewhere: SETTING,
            },
            Key {
                name: "hash_key",
                set: |c| c.hash_key.is_some(),
                elsewhere: SETTING,
            },
            Key {
                name: "sub_merchant_id",
                set: |c| c.sub_merchant_id.is_some(),
                elsewhere: SETTING,
            },
        ];
        KEYS
    }

    fn uses(&self) -> &'static str {
        "merchant_id, secret_unbound_id and hash_key"
    }

    fn configure(
        &self,
        _kind: AccountKind,
        keys: &AccountKeys<'_>,
    ) -> Result<Settings, ConfigError> {
        let raw = keys.raw;
        Ok(Settings {
            credentials: AccountCredentials::Mcp(Credentials {
                merchant_id: keys.required(&raw.merchant_id, "merchant_id")?,
                secret_unbound_id: keys
                    .required_secret(&raw.secret_unbound_id, "secret_unbound_id")?,
                hash_key: keys.required_secret(&raw.hash_key, "hash_key")?,
                sub_merchant_id: raw.sub_merchant_id.clone().filter(|s| !s.is_empty()),
            }),
            // Callbacks are JSON, in the one naming MCPayment has.
            callback_format: Format::Json,
            callback_layout: raw.callback_layout.unwrap_or_default(),
            api_version: ApiVersion::V2,
        })
    }

    fn check_unique(
        &self,
        account: &Account,
        earlier: &[Account],
        at: &str,
    ) -> Result<(), ConfigError> {
        let Some(c) = credentials(account) else {
            return Ok(());
        };
        let clash = earlier
            .iter()
            .filter_map(credentials)
            .any(|o| o.merchant_id == c.merchant_id);
        if clash {
            return Err(ConfigError::new(
                format!("{at}.merchant_id"),
                format!(
                    "merchant_id {:?} is used by two MCPayment accounts; requests find \
                     their account by it, so each must be unique",
                    c.merchant_id
                ),
            ));
        }
        Ok(())
    }

    fn has_deposit(&self) -> bool {
        false
    }

    fn needs_callback_url(&self) -> bool {
        // A create request may bring its own.
        false
    }

    fn default_callback_delay_ms(&self) -> u64 {
        0
    }

    fn default_retry_delays_ms(&self) -> &'static [u64] {
        &DEFAULT_MCP_RETRY_DELAYS_MS
    }

    fn routes(&self, router: Router<Sandbox>) -> Router<Sandbox> {
        router
            .route("/va", post(va::create))
            .route("/va/inquiry", post(va::inquiry))
            .route("/va/cancel", post(va::cancel))
            .route("/sandbox/va/pay", post(payments::va_pay))
            .route("/sandbox/va/refund", post(payments::va_refund))
    }

    fn login(&self, account: &Account) -> String {
        credentials(account).map_or_else(String::new, |c| c.merchant_id.clone())
    }

    fn accepts(&self, status: u16) -> bool {
        lunas_protocol::ack::mcp_accepts(status)
    }

    fn retries_in_development(&self) -> bool {
        true
    }

    fn new_held(&self) -> Box<dyn Held> {
        Box::new(VirtualAccounts::default())
    }

    fn transactions(
        &self,
        account: &Account,
        held: &dyn Held,
        reference: &str,
    ) -> Vec<TransactionInfo> {
        held.get::<VirtualAccounts>()
            .and_then(|h| h.vas.get(reference))
            .map(|va| info(&account.id, va))
            .into_iter()
            .collect()
    }

    fn pass_time(&self, sb: &Sandbox, st: &mut State, now: OffsetDateTime) {
        payments::expire_due(sb, st, now);
    }

    fn report_kinds(&self) -> Result<&'static [&'static str], &'static str> {
        Err("is an MCPayment account; pay into a VA with /sandbox/va/pay instead")
    }
}

/// A VA as `GET /sandbox/transactions` lists it.
fn info(account: &str, va: &Va) -> TransactionInfo {
    TransactionInfo {
        account: account.to_owned(),
        kind: "va".to_owned(),
        reference: va.external_id.clone(),
        status: va.status.as_str().to_owned(),
        rc: None,
        tr_id: None,
        transaction_id: Some(va.transaction_id.clone()),
        order_id: Some(va.order_id.clone()),
        created_at: clock::rfc3339(va.created_at),
        paid: Some(!va.payments.is_empty()),
        paid_at: va.payments.last().map(|p| clock::rfc3339(p.at)),
        product_code: None,
        customer_id: None,
        amount: va.amount,
        selling_price: None,
        total_paid_amount: Some(va.total_paid()),
    }
}
