//! IAK and IDSL (IAK's white label), the kinds `iak` and `idsl`: one family, whose accounts
//! are found by the `username` requests carry and authenticated by their `sign`.
//!
//! - `prepaid.rs`: top-up, check-status, balance and price list, v2 and v1, JSON and XML;
//! - `postpaid.rs`: inquiry, payment, check-status and price list of bills;
//! - `catalogue.rs`: the products and billers; `scenario.rs`: outcomes by customer number.
//!
//! This file is the family as the registry sees it (`Iak`): its account keys (`username`,
//! `api_key`, `callback_format`, `api_version`; `deposit` is common but applies here), its
//! routes, what it holds per account, its transactions as `GET /sandbox/transactions` lists
//! them, and `POST /sandbox/report`, which ends a top-up or a bill payment in process.

pub mod catalogue;
mod postpaid;
mod prepaid;
pub mod scenario;

use std::collections::HashMap;

use axum::routing::post;
use axum::Router;
use lunas_protocol::{codec, Format, ProviderKind, Secret};

use crate::config::{
    Account, AccountCredentials, AccountKeys, CallbackFormat, CallbackVersion, ConfigError,
};
use crate::control::TransactionInfo;
use crate::http::Refusal;
use crate::providers::{Held, Key, Provider, Report, Reported, Settings};
use crate::state::State;
use crate::{AccountKind, Sandbox};

/// IAK/IDSL production: how long after a top-up its final callback is sent, by default.
pub const DEFAULT_IAK_CALLBACK_DELAY_MS: u64 = 3_000;
/// IAK/IDSL production: the waits before each retry of a callback the receiver did not accept.
pub const DEFAULT_IAK_RETRY_DELAYS_MS: [u64; 4] = [5_000, 30_000, 120_000, 600_000];

/// The kinds of this family.
#[allow(non_upper_case_globals)]
impl AccountKind {
    /// IAK (`kind = "iak"`).
    pub const Iak: AccountKind = AccountKind::new("iak", &Iak);
    /// IDSL, IAK's white label (`kind = "idsl"`): IAK's API, plus a `currency` in balances.
    pub const Idsl: AccountKind = AccountKind::new("idsl", &Iak);
}

/// Why another family's account refuses a credential of this one.
const SETTING: &str = "is an IAK/IDSL setting; {label} accounts use {uses}";
/// Why another family's account refuses a callback setting of this one.
const CALLBACKS: &str = "applies only to IAK/IDSL callbacks ({label} callbacks are JSON)";

/// The IAK family, as the registry holds it.
pub(crate) struct Iak;

/// What an IAK/IDSL account holds.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    /// Prepaid top-ups by `ref_id`.
    pub prepaid: HashMap<String, prepaid::PrepaidTx>,
    /// Postpaid inquiries by `ref_id`.
    pub postpaid: HashMap<String, postpaid::PostpaidTx>,
    /// Postpaid `tr_id` → `ref_id`.
    pub postpaid_by_tr: HashMap<i64, String>,
}

/// The transactions of account `index`, if it is an IAK/IDSL account.
fn held(st: &State, index: usize) -> Option<&Transactions> {
    st.accounts.get(index)?.held.get()
}

/// The transactions of account `index`, to change, if it is an IAK/IDSL account.
fn held_mut(st: &mut State, index: usize) -> Option<&mut Transactions> {
    st.accounts.get_mut(index)?.held.get_mut()
}

impl Provider for Iak {
    fn kinds(&self) -> &'static [AccountKind] {
        const KINDS: &[AccountKind] = &[AccountKind::Iak, AccountKind::Idsl];
        KINDS
    }

    fn label(&self) -> &'static str {
        "IAK/IDSL"
    }

    fn protocol(&self, kind: AccountKind) -> ProviderKind {
        if kind == AccountKind::Idsl {
            ProviderKind::Idsl
        } else {
            ProviderKind::Iak
        }
    }

    fn keys(&self) -> &'static [Key] {
        const KEYS: &[Key] = &[
            Key {
                name: "username",
                set: |c| c.username.is_some(),
                elsewhere: SETTING,
            },
            Key {
                name: "api_key",
                set: |c| c.api_key.is_some(),
                elsewhere: SETTING,
            },
            Key {
                name: "callback_format",
                set: |c| c.callback_format.is_some(),
                elsewhere: CALLBACKS,
            },
            Key {
                name: "api_version",
                set: |c| c.api_version.is_some(),
                elsewhere: CALLBACKS,
            },
        ];
        KEYS
    }

    fn uses(&self) -> &'static str {
        "username and api_key"
    }

    fn configure(
        &self,
        _kind: AccountKind,
        keys: &AccountKeys<'_>,
    ) -> Result<Settings, ConfigError> {
        let raw = keys.raw;
        Ok(Settings {
            credentials: AccountCredentials::Iak {
                username: keys.required(&raw.username, "username")?,
                api_key: keys.required_secret(&raw.api_key, "api_key")?,
            },
            callback_format: raw.callback_format.unwrap_or(CallbackFormat::Json).into(),
            callback_layout: Default::default(),
            api_version: raw.api_version.unwrap_or(CallbackVersion::V2).into(),
        })
    }

    fn check_unique(
        &self,
        account: &Account,
        earlier: &[Account],
        at: &str,
    ) -> Result<(), ConfigError> {
        match account.username() {
            Some(user) if earlier.iter().any(|a| a.username() == Some(user)) => {
                Err(ConfigError::new(
                    format!("{at}.username"),
                    format!(
                        "username {user:?} is used by two IAK/IDSL accounts; requests find \
                         their account by username, so each must be unique"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn has_deposit(&self) -> bool {
        true
    }

    fn needs_callback_url(&self) -> bool {
        true
    }

    fn default_callback_delay_ms(&self) -> u64 {
        DEFAULT_IAK_CALLBACK_DELAY_MS
    }

    fn default_retry_delays_ms(&self) -> &'static [u64] {
        &DEFAULT_IAK_RETRY_DELAYS_MS
    }

    fn routes(&self, router: Router<Sandbox>) -> Router<Sandbox> {
        router
            .route("/api/top-up", post(prepaid::handle))
            .route("/api/check-status", post(prepaid::handle))
            .route("/api/check-balance", post(prepaid::handle))
            .route("/api/pricelist", post(prepaid::handle))
            .route("/api/pricelist/{*rest}", post(prepaid::handle))
            .route("/v1/legacy/index", post(prepaid::handle))
            .route("/v1/legacy/index/{*rest}", post(prepaid::handle))
            // Any other path on the prepaid host is IAK's rc 117 (PAGE NOT FOUND), in the body
            // format of the request, as IAK answers it.
            .route("/api/{*rest}", post(prepaid::handle))
            // The official SDKs write the postpaid path with a trailing slash, and may leave
            // the price list's type segment empty.
            .route("/api/v1/bill/check", post(postpaid::handle))
            .route("/api/v1/bill/check/", post(postpaid::handle))
            .route("/api/v1/bill/check/{*rest}", post(postpaid::handle))
    }

    fn login(&self, account: &Account) -> String {
        account.username().unwrap_or_default().to_owned()
    }

    fn new_held(&self) -> Box<dyn Held> {
        Box::new(Transactions::default())
    }

    fn transactions(
        &self,
        account: &Account,
        held: &dyn Held,
        reference: &str,
    ) -> Vec<TransactionInfo> {
        let Some(held) = held.get::<Transactions>() else {
            return Vec::new();
        };
        let prepaid = held
            .prepaid
            .get(reference)
            .map(|tx| prepaid::info(&account.id, tx));
        let postpaid = held
            .postpaid
            .get(reference)
            .map(|tx| postpaid::info(&account.id, tx));
        prepaid.into_iter().chain(postpaid).collect()
    }

    fn finalize(
        &self,
        sb: &Sandbox,
        st: &mut State,
        index: usize,
        reference: &str,
        now: time::OffsetDateTime,
    ) -> Option<crate::callbacks::Plan> {
        prepaid::finalize(sb, st, index, reference, None, now)
    }

    fn report_kinds(&self) -> Result<&'static [&'static str], &'static str> {
        Ok(&[prepaid::KIND, postpaid::KIND])
    }

    fn reportable(&self, held: &dyn Held, reference: &str) -> Vec<&'static str> {
        let Some(held) = held.get::<Transactions>() else {
            return Vec::new();
        };
        let prepaid = held
            .prepaid
            .contains_key(reference)
            .then_some(prepaid::KIND);
        let postpaid = held
            .postpaid
            .contains_key(reference)
            .then_some(postpaid::KIND);
        prepaid.into_iter().chain(postpaid).collect()
    }

    fn report(&self, report: Report<'_>, st: &mut State) -> Result<Reported, Refusal> {
        if report.kind == postpaid::KIND {
            postpaid::report(&report, st)
        } else {
            prepaid::report(&report, st)
        }
    }
}

impl Sandbox {
    /// The IAK/IDSL account with this username whose key `verifies` the request's sign.
    fn iak_account(&self, username: &str, verifies: impl Fn(&Secret) -> bool) -> Option<usize> {
        self.inner
            .accounts
            .iter()
            .position(|a| a.username() == Some(username))
            .filter(|&i| match &self.inner.accounts[i].credentials {
                AccountCredentials::Iak { api_key, .. } => verifies(api_key),
                _ => false,
            })
    }
}

/// The format to refuse a body in: XML if it looks like XML, JSON otherwise.
fn refusal_format(bytes: &[u8]) -> Format {
    codec::sniff(bytes).unwrap_or(Format::Json)
}
