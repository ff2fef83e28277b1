//! The registry of emulated providers: one folder per provider family behind one trait,
//! [`Provider`], and one list, [`PROVIDERS`].
//!
//! A family knows the `kind`s of `[[sandbox.accounts]]` it serves, the account keys it reads
//! and how, the routes it answers, the state it keeps per account, what its transactions look
//! like to `GET /sandbox/transactions`, how `POST /sandbox/report` ends them, and how its
//! callbacks are accepted and retried. The rest of the sandbox (configuration, router, the
//! controls, the outbox) asks an account's family through [`crate::AccountKind`] and never
//! names a provider.
//!
//! Adding a provider: a folder `src/<name>/` with a type implementing [`Provider`] (and the
//! `AccountKind` constants of its kinds), and one line in [`PROVIDERS`].

use std::any::Any;
use std::fmt;

use axum::Router;
use lunas_protocol::{ApiVersion, Format, ProviderKind};
use time::OffsetDateTime;

use crate::callbacks::Plan;
use crate::config::{Account, AccountConfig, AccountCredentials, AccountKeys, ConfigError};
use crate::control::TransactionInfo;
use crate::http::Refusal;
use crate::state::State;
use crate::{iak, mcp, AccountKind, Sandbox};

/// Every provider family the sandbox emulates, in the order configuration mistakes about their
/// keys are reported.
pub(crate) static PROVIDERS: &[&dyn Provider] = &[&iak::Iak, &mcp::Mcp];

/// Everything one provider family knows. The sandbox keeps one instance per family; what
/// differs between accounts is in their [`Account`] and their [`Held`] state.
pub(crate) trait Provider: Sync {
    /// The kinds it serves, as the configuration's `kind` names them.
    fn kinds(&self) -> &'static [AccountKind];

    /// How messages name the family: `IAK/IDSL`, `MCPayment`.
    fn label(&self) -> &'static str;

    /// The protocol crate's name for `kind` (one of [`Provider::kinds`]).
    fn protocol(&self, kind: AccountKind) -> ProviderKind;

    // Configuration.

    /// The keys of `[[sandbox.accounts]]` it reads beyond the common ones, in the order their
    /// mistakes are reported. An account of another family that sets one is refused.
    fn keys(&self) -> &'static [Key];

    /// What its accounts are identified by, for messages: `username and api_key`.
    fn uses(&self) -> &'static str;

    /// Reads its keys of an account of `kind`: the first mistake, or its settings.
    fn configure(&self, kind: AccountKind, keys: &AccountKeys<'_>)
        -> Result<Settings, ConfigError>;

    /// Refuses an account that clashes with an `earlier` one (the same login), at `at`.
    fn check_unique(
        &self,
        account: &Account,
        earlier: &[Account],
        at: &str,
    ) -> Result<(), ConfigError> {
        let _ = (account, earlier, at);
        Ok(())
    }

    /// Whether its accounts have a deposit (`deposit` key, `POST /sandbox/deposit`).
    fn has_deposit(&self) -> bool;

    /// Whether an account must configure `callback_url`.
    fn needs_callback_url(&self) -> bool;

    /// `callback_delay_ms` when none is configured.
    fn default_callback_delay_ms(&self) -> u64;

    /// `retry_delays_ms` when none is configured.
    fn default_retry_delays_ms(&self) -> &'static [u64];

    // Behaviour.

    /// Adds its provider paths (and any control of its own) to the sandbox's router.
    fn routes(&self, router: Router<Sandbox>) -> Router<Sandbox>;

    /// What `GET /sandbox/accounts` shows as the account's login.
    fn login(&self, account: &Account) -> String;

    /// Whether a callback answered with HTTP `status` is accepted (else it may be retried).
    fn accepts(&self, status: u16) -> bool {
        (200..300).contains(&status)
    }

    /// Whether unaccepted callbacks are retried in development too (always in production).
    fn retries_in_development(&self) -> bool {
        false
    }

    /// The state an account of this family starts with.
    fn new_held(&self) -> Box<dyn Held>;

    /// The account's transactions held under `reference`, as `GET /sandbox/transactions`
    /// lists them.
    fn transactions(
        &self,
        account: &Account,
        held: &dyn Held,
        reference: &str,
    ) -> Vec<TransactionInfo>;

    /// Ends a transaction by itself, as its scheduled [`crate::state::Job::Finalize`] falls due:
    /// the callbacks to send, or `None` when there is nothing to end.
    fn finalize(
        &self,
        sb: &Sandbox,
        st: &mut State,
        index: usize,
        reference: &str,
        now: OffsetDateTime,
    ) -> Option<Plan> {
        let _ = (sb, st, index, reference, now);
        None
    }

    /// Applies what time alone decides by `now` to every account of the family (expiry).
    fn pass_time(&self, sb: &Sandbox, st: &mut State, now: OffsetDateTime) {
        let _ = (sb, st, now);
    }

    /// What `POST /sandbox/report` ends: the kinds of transaction it names (`prepaid`), or,
    /// when the family has none, what the account is and what to do instead (`is an
    /// MCPayment account; pay into a VA with /sandbox/va/pay instead`).
    fn report_kinds(&self) -> Result<&'static [&'static str], &'static str>;

    /// The kinds of the account's transactions held under `reference` that a report can name.
    fn reportable(&self, held: &dyn Held, reference: &str) -> Vec<&'static str> {
        let _ = (held, reference);
        Vec::new()
    }

    /// Ends the account's transaction of `kind` under `reference` as a report says.
    fn report(&self, report: Report<'_>, st: &mut State) -> Result<Reported, Refusal> {
        let _ = (report, st);
        Err((
            axum::http::StatusCode::BAD_REQUEST,
            "not_reportable",
            "nothing of this account can be reported".to_owned(),
        ))
    }
}

/// A key of `[[sandbox.accounts]]` that only some families read.
pub(crate) struct Key {
    pub name: &'static str,
    /// Whether an account sets it.
    pub set: fn(&AccountConfig) -> bool,
    /// Why an account of a family that does not read it refuses it, after `<key>: `; `{label}`
    /// and `{uses}` become that family's [`Provider::label`] and [`Provider::uses`].
    pub elsewhere: &'static str,
}

/// What a family reads from its own keys, for the account's public fields.
pub(crate) struct Settings {
    pub credentials: AccountCredentials,
    pub callback_format: Format,
    pub callback_layout: lunas_protocol::mcp::CallbackLayout,
    pub api_version: ApiVersion,
}

/// A report, as [`Provider::report`] receives it.
pub(crate) struct Report<'a> {
    pub sb: &'a Sandbox,
    pub index: usize,
    /// One of what [`Provider::reportable`] said.
    pub kind: &'static str,
    pub reference: &'a str,
    pub success: bool,
    pub now: OffsetDateTime,
}

/// What a report changed: the answer's fields, and the callbacks to send before answering.
pub(crate) struct Reported {
    /// `prepaid`, `postpaid`, ...
    pub kind: &'static str,
    pub status: i64,
    pub rc: String,
    pub plan: Option<Plan>,
}

/// The state a family keeps per account (its transactions), inside the sandbox's one
/// [`State`]. Any `Debug + Send` type is one; each family reads back its own type with
/// `held.get::<T>()` or `held.get_mut::<T>()`.
pub(crate) trait Held: Any + Send + fmt::Debug {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Send + fmt::Debug> Held for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl dyn Held {
    /// The state as the family's own type; `None` when it is another family's.
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }

    /// The state as the family's own type, to change; `None` when it is another family's.
    pub(crate) fn get_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.as_any_mut().downcast_mut()
    }
}

/// The kind called `name`, if a family serves it.
pub(crate) fn kind(name: &str) -> Option<AccountKind> {
    PROVIDERS
        .iter()
        .flat_map(|p| p.kinds())
        .find(|k| k.as_str() == name)
        .copied()
}

/// Every kind, in registry order: `` `iak`, `idsl`, `mcp` ``.
pub(crate) fn kind_names() -> String {
    PROVIDERS
        .iter()
        .flat_map(|p| p.kinds())
        .map(|k| format!("`{}`", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The families whose accounts have a deposit, for messages: `IAK/IDSL`.
pub(crate) fn deposit_labels() -> String {
    labels(
        PROVIDERS
            .iter()
            .filter(|p| p.has_deposit())
            .map(|p| p.label()),
    )
}

/// The kinds of transaction a report can end, for messages: `prepaid or postpaid`.
pub(crate) fn report_kind_names() -> String {
    labels(
        PROVIDERS
            .iter()
            .filter_map(|p| p.report_kinds().ok())
            .flatten()
            .copied(),
    )
}

/// `a`, `a or b`, ... without repeats.
fn labels(names: impl Iterator<Item = &'static str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_served_once_by_the_family_it_names() {
        let mut names = Vec::new();
        for family in PROVIDERS {
            for kind in family.kinds() {
                assert!(!names.contains(&kind.as_str()), "{} twice", kind.as_str());
                names.push(kind.as_str());
                assert_eq!(kind.family().label(), family.label());
                assert_eq!(self::kind(kind.as_str()), Some(*kind));
                assert_eq!(kind.provider().as_str(), kind.as_str());
            }
        }
        assert_eq!(names, ["iak", "idsl", "mcp"]);
        assert_eq!(kind_names(), "`iak`, `idsl`, `mcp`");
        assert_eq!(AccountKind::Idsl, kind("idsl").unwrap());
        assert_eq!(kind("paypal"), None);
    }

    #[test]
    fn no_two_families_declare_a_key_differently() {
        let keys: Vec<&Key> = PROVIDERS.iter().flat_map(|p| p.keys()).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert!(a.name != b.name || a.elsewhere == b.elsewhere, "{}", a.name);
            }
        }
    }

    #[test]
    fn messages_list_the_families() {
        assert_eq!(deposit_labels(), "IAK/IDSL");
        assert_eq!(report_kind_names(), "prepaid or postpaid");
    }
}
