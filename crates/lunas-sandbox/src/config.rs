//! The `[sandbox]` table of `lunas.toml` (the README's interfaces) and its validation.
//!
//! [`SandboxConfig`] is what serde reads; [`SandboxConfig::validate`] turns it into a
//! [`ValidSandbox`] whose accounts carry resolved secrets, defaults filled in and every rule
//! checked, so the rest of the crate never re-checks configuration.
//!
//! This module holds the whole schema of `[[sandbox.accounts]]` (serde must know every key to
//! refuse a misspelt one with its line) and the meaning of the common keys: `kind`, `id`,
//! `environment`, `callback_url`, `deposit`, the delays and retries, `faults`. What a
//! provider's own keys mean (which are required, which apply, how they become credentials) is
//! its family's business (`Provider::configure` in its folder, listed in `src/providers.rs`); a
//! key one family reads is refused on another family's account with the reason the first
//! gives. The first mistake found is reported.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use lunas_protocol::mcp::Credentials;
use lunas_protocol::{ApiVersion, Format, ProviderKind, Secret};
use serde::{Deserialize, Deserializer};

use crate::providers::{self, Provider, PROVIDERS};

/// The families' own defaults, at the paths they always had.
pub use crate::iak::{DEFAULT_IAK_CALLBACK_DELAY_MS, DEFAULT_IAK_RETRY_DELAYS_MS};
pub use crate::mcp::DEFAULT_MCP_RETRY_DELAYS_MS;

/// The default address of the sandbox.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// The deposit an account starts with when none is configured (IAK's sandbox examples show
/// balances just under a billion rupiah).
pub const DEFAULT_DEPOSIT: i64 = 1_000_000_000;
/// How long the sandbox waits for a receiver to answer a callback, by default.
pub const DEFAULT_CALLBACK_TIMEOUT_MS: u64 = 10_000;
/// How long a check-status "timeout" fault or an `order_hang_after_commit` fault hangs, by
/// default: longer than the 30 s client timeout IAK suggests.
pub const DEFAULT_HANG_MS: u64 = 35_000;
/// The longest a hanging fault may hang.
pub const MAX_HANG_MS: u64 = 120_000;
/// The longest any configured delay may be: a week, beyond IAK's 24-hour callback window.
pub const MAX_DELAY_MS: u64 = 7 * 24 * 3600 * 1000;

/// Refuses a delay longer than [`MAX_DELAY_MS`].
fn bounded_delay(at: String, ms: u64) -> Result<Duration, ConfigError> {
    if ms > MAX_DELAY_MS {
        Err(ConfigError::new(
            at,
            format!("{ms} ms is more than a week ({MAX_DELAY_MS} ms)"),
        ))
    } else {
        Ok(Duration::from_millis(ms))
    }
}

/// The `[sandbox]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Where `lunas sandbox` listens (default `127.0.0.1:8090`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Seeds every random choice (ids, serial numbers, fault decisions), so that the same
    /// configuration and the same requests give the same results.
    #[serde(default)]
    pub seed: u64,
    /// The emulated provider accounts (`[[sandbox.accounts]]`).
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// When set, the `/sandbox/*` controls and log (which shows valid signs) answer only
    /// requests with `Authorization: Bearer <token>`; `env:NAME` reads it from the environment.
    /// The provider paths need no token: they check their own signatures, as the providers do.
    #[serde(default)]
    pub token: Option<SecretSpec>,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("the default address parses")
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: default_listen(),
            seed: 0,
            accounts: Vec::new(),
            token: None,
        }
    }
}

/// The provider an account emulates: one of the kinds of the sandbox's registry of provider
/// families, read from the configuration's `kind` (`iak`, `idsl`, `mcp`). Each family names
/// its own kinds as constants (`AccountKind::Iak`, ...).
#[derive(Clone, Copy)]
pub struct AccountKind {
    name: &'static str,
    family: &'static dyn Provider,
}

impl AccountKind {
    /// The kind `name`, served by `family` (for the families' constants).
    pub(crate) const fn new(name: &'static str, family: &'static dyn Provider) -> Self {
        AccountKind { name, family }
    }

    /// The kind called `name` (`iak`, `idsl`, `mcp`), if the sandbox emulates it.
    pub fn parse(name: &str) -> Option<AccountKind> {
        providers::kind(name)
    }

    pub fn as_str(self) -> &'static str {
        self.name
    }

    pub fn provider(self) -> ProviderKind {
        self.family.protocol(self)
    }

    /// The family that emulates this kind.
    pub(crate) fn family(self) -> &'static dyn Provider {
        self.family
    }
}

impl PartialEq for AccountKind {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for AccountKind {}

impl std::hash::Hash for AccountKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl<'de> Deserialize<'de> for AccountKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        AccountKind::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown variant `{name}`, expected one of {}",
                providers::kind_names()
            ))
        })
    }
}

/// Whether the sandbox sends final callbacks by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Final callbacks are sent automatically after `callback_delay_ms`, retried on failure.
    Production,
    /// Prepaid transactions stay in process until `POST /sandbox/report` ends them (as in
    /// IAK's sandbox report); nothing is sent by itself.
    #[default]
    Development,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Development => "development",
        }
    }
}

/// The encoding of an IAK/IDSL account's callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackFormat {
    Json,
    Xml,
}

impl From<CallbackFormat> for Format {
    fn from(f: CallbackFormat) -> Self {
        match f {
            CallbackFormat::Json => Format::Json,
            CallbackFormat::Xml => Format::Xml,
        }
    }
}

/// The field names of an IAK/IDSL account's callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackVersion {
    V1,
    V2,
}

impl From<CallbackVersion> for ApiVersion {
    fn from(v: CallbackVersion) -> Self {
        match v {
            CallbackVersion::V1 => ApiVersion::V1,
            CallbackVersion::V2 => ApiVersion::V2,
        }
    }
}

/// A secret as written in the configuration: the value itself, or `env:VAR` to read it from
/// the environment at validation time. Its `Debug` never shows a literal value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretSpec(String);

impl SecretSpec {
    pub fn new(spec: impl Into<String>) -> Self {
        SecretSpec(spec.into())
    }

    /// Resolves `env:VAR` from the environment; any other text is the secret itself.
    pub fn resolve(&self, at: &str) -> Result<Secret, ConfigError> {
        match self.0.strip_prefix("env:") {
            Some(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                Ok(_) => Err(ConfigError::new(
                    at,
                    format!("environment variable {var} is empty"),
                )),
                Err(_) => Err(ConfigError::new(
                    at,
                    format!("environment variable {var} is not set"),
                )),
            },
            None if self.0.is_empty() => Err(ConfigError::new(at, "must not be empty")),
            None => Ok(Secret::new(self.0.clone())),
        }
    }
}

impl fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.strip_prefix("env:") {
            Some(_) => write!(f, "{:?}", self.0),
            None => f.write_str("[redacted]"),
        }
    }
}

/// One `[[sandbox.accounts]]` entry: every key any family reads, so that serde refuses a
/// misspelt one. A family declares which of the provider keys it reads (and checks them);
/// a key no family had before needs its field here, and its `None` in [`AccountConfig::new`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// `iak`, `idsl` or `mcp`: the kinds of the registry.
    pub kind: AccountKind,
    /// The account's name in logs and control requests; defaults to the kind.
    #[serde(default)]
    pub id: Option<String>,
    /// IAK/IDSL: the registered phone number that requests carry as `username`.
    #[serde(default)]
    pub username: Option<String>,
    /// IAK/IDSL: the key every `sign` is made with.
    #[serde(default)]
    pub api_key: Option<SecretSpec>,
    /// MCPayment: the merchant id of the `Authorization` header.
    #[serde(default)]
    pub merchant_id: Option<String>,
    /// MCPayment: the secret of the `Authorization` header.
    #[serde(default)]
    pub secret_unbound_id: Option<SecretSpec>,
    /// MCPayment: the key of `x-req-signature` and `mcp-signature`.
    #[serde(default)]
    pub hash_key: Option<SecretSpec>,
    /// MCPayment: set for a sub-merchant; requests must then carry it as `sub-merchant-id`
    /// and callbacks sign it.
    #[serde(default)]
    pub sub_merchant_id: Option<String>,
    #[serde(default)]
    pub environment: Environment,
    /// Where callbacks go. Required for IAK/IDSL; for MCPayment a create request's
    /// `callback_url` is used when present.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// IAK/IDSL: `json` (default) or `xml`.
    #[serde(default)]
    pub callback_format: Option<CallbackFormat>,
    /// MCPayment: which of seed 002's callback examples the callbacks follow, field for field
    /// and in order: `example_request` (default) or `body_raw`.
    #[serde(default)]
    pub callback_layout: Option<lunas_protocol::mcp::CallbackLayout>,
    /// IAK/IDSL: `v1` (`code`, `hp`) or `v2` (`product_code`, `customer_id`, default) names.
    #[serde(default)]
    pub api_version: Option<CallbackVersion>,
    /// IAK/IDSL: the starting deposit in rupiah.
    #[serde(default)]
    pub deposit: Option<i64>,
    /// Production: milliseconds between a top-up (or a VA payment) and its callback.
    #[serde(default)]
    pub callback_delay_ms: Option<u64>,
    /// How long to wait for the receiver's answer.
    #[serde(default)]
    pub callback_timeout_ms: Option<u64>,
    /// The waits before each retry of an unaccepted callback; the number of entries is the
    /// number of retries.
    #[serde(default)]
    pub retry_delays_ms: Option<Vec<u64>>,
    /// Deliberate misbehaviour (`[sandbox.accounts.faults]`).
    #[serde(default)]
    pub faults: FaultConfig,
}

impl AccountConfig {
    /// An account of `kind` with nothing else set, for building configurations in code:
    /// `AccountConfig { username: Some(..), ..AccountConfig::new(AccountKind::Iak) }`.
    pub fn new(kind: AccountKind) -> Self {
        AccountConfig {
            kind,
            id: None,
            username: None,
            api_key: None,
            merchant_id: None,
            secret_unbound_id: None,
            hash_key: None,
            sub_merchant_id: None,
            environment: Environment::default(),
            callback_url: None,
            callback_format: None,
            callback_layout: None,
            api_version: None,
            deposit: None,
            callback_delay_ms: None,
            callback_timeout_ms: None,
            retry_delays_ms: None,
            faults: FaultConfig::default(),
        }
    }
}

/// `[sandbox.accounts.faults]`: deliberate misbehaviour, decided per transaction from the
/// sandbox `seed`, the account id and the transaction's ref, so the same ref always meets the
/// same faults. Probabilities are between 0 (never) and 1 (always); counts are numbers of
/// calls: check-status calls for the `check_status_*` knobs, order requests for the `order_*`
/// knobs, each taken in the order the knobs are listed here.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Probability of sending the final callback twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Probability of never sending the final callback (the outcome still changes).
    #[serde(default)]
    pub drop: f64,
    /// Probability of sending a stale "in process" callback after the final one (VA: an
    /// `ACTIVE` callback after the payment).
    #[serde(default)]
    pub out_of_order: f64,
    /// Probability of signing the final callback wrongly.
    #[serde(default)]
    pub wrong_signature: f64,
    /// Probability of following the final callback with a correctly signed one that says the
    /// opposite (success ⇄ failed; VA: `EXPIRED` after `PAID`).
    #[serde(default)]
    pub conflicting: f64,
    /// Up to this many milliseconds are added to each automatic callback's delay.
    #[serde(default)]
    pub delay_jitter_ms: u64,
    /// The first N check-status calls of the account answer HTTP 503.
    #[serde(default)]
    pub check_status_5xx: u32,
    /// The next N check-status calls hang for `check_status_hang_ms` before answering.
    #[serde(default)]
    pub check_status_timeout: u32,
    /// The next N check-status calls answer HTTP 200 with a body no parser accepts.
    #[serde(default)]
    pub check_status_garbage: u32,
    /// How long a hanging check-status waits (default 35 000, at most 120 000).
    #[serde(default)]
    pub check_status_hang_ms: Option<u64>,
    /// The first N order requests of the account (prepaid top-up, postpaid `pay-pasca`, VA
    /// create) answer HTTP 503 without doing anything.
    #[serde(default)]
    pub order_5xx_before_commit: u32,
    /// The next N order requests are carried out, then answered HTTP 503 instead.
    #[serde(default)]
    pub order_5xx_after_commit: u32,
    /// The next N order requests are carried out, then the connection is closed unanswered.
    #[serde(default)]
    pub order_drop_after_commit: u32,
    /// The next N order requests are carried out, then answered after `order_hang_ms`.
    #[serde(default)]
    pub order_hang_after_commit: u32,
    /// How long a hanging order waits before its answer (default 35 000, at most 120 000).
    #[serde(default)]
    pub order_hang_ms: Option<u64>,
}

/// A configuration mistake: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sandbox configuration: {at}: {reason}")]
pub struct ConfigError {
    /// The key in error, e.g. `sandbox.accounts[1] (iak).api_key`.
    pub at: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(at: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            at: at.into(),
            reason: reason.into(),
        }
    }
}

/// A validated configuration, ready to run.
#[derive(Debug, Clone)]
pub struct ValidSandbox {
    pub listen: SocketAddr,
    pub seed: u64,
    pub accounts: Vec<Account>,
    /// Required on `/sandbox/*` when set.
    pub token: Option<Secret>,
}

/// A validated account.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub kind: AccountKind,
    pub environment: Environment,
    pub credentials: AccountCredentials,
    pub callback_url: Option<String>,
    pub callback_format: Format,
    /// MCPayment callbacks' layout.
    pub callback_layout: lunas_protocol::mcp::CallbackLayout,
    pub api_version: ApiVersion,
    pub deposit: i64,
    pub callback_delay: Duration,
    pub callback_timeout: Duration,
    pub retry_delays: Vec<Duration>,
    pub faults: Faults,
}

impl Account {
    /// The IAK/IDSL username, if this is such an account.
    pub fn username(&self) -> Option<&str> {
        match &self.credentials {
            AccountCredentials::Iak { username, .. } => Some(username),
            _ => None,
        }
    }

    /// Whether an unaccepted callback of this account is tried again: in production always,
    /// in development when its family says so (MCPayment, which sends on payment in both
    /// environments).
    pub fn retries_callbacks(&self) -> bool {
        self.kind.family().retries_in_development() || self.environment == Environment::Production
    }
}

/// An account's resolved credentials, in the shape of its family (each family reads its own
/// variant; a family whose credentials have a new shape adds one).
#[derive(Debug, Clone)]
pub enum AccountCredentials {
    /// IAK/IDSL: the username requests carry and the key of every `sign`.
    Iak { username: String, api_key: Secret },
    /// MCPayment: the merchant's ids and keys.
    Mcp(Credentials),
}

/// Validated fault knobs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub duplicate: f64,
    pub drop: f64,
    pub out_of_order: f64,
    pub wrong_signature: f64,
    pub conflicting: f64,
    pub delay_jitter: Duration,
    pub check_status_5xx: u32,
    pub check_status_timeout: u32,
    pub check_status_garbage: u32,
    pub check_status_hang: Duration,
    pub order_5xx_before_commit: u32,
    pub order_5xx_after_commit: u32,
    pub order_drop_after_commit: u32,
    pub order_hang_after_commit: u32,
    pub order_hang: Duration,
}

impl SandboxConfig {
    /// Checks every rule, resolves `env:` secrets and fills in defaults.
    pub fn validate(mut self) -> Result<ValidSandbox, ConfigError> {
        // An account without an id is named after its kind: `iak`, then `iak-2`, `iak-3`, ...
        // skipping ids given explicitly.
        let mut taken: Vec<String> = self.accounts.iter().filter_map(|a| a.id.clone()).collect();
        for raw in self.accounts.iter_mut().filter(|a| a.id.is_none()) {
            let kind = raw.kind.as_str();
            let id = std::iter::once(kind.to_owned())
                .chain((2..).map(|n| format!("{kind}-{n}")))
                .find(|id| !taken.contains(id))
                .expect("an unused id");
            taken.push(id.clone());
            raw.id = Some(id);
        }
        let mut accounts: Vec<Account> = Vec::with_capacity(self.accounts.len());
        for (i, raw) in self.accounts.into_iter().enumerate() {
            let account = raw.validate(i)?;
            let at = format!("sandbox.accounts[{i}] ({})", account.id);
            if accounts.iter().any(|a| a.id == account.id) {
                return Err(ConfigError::new(
                    format!("{at}.id"),
                    format!(
                        "account id {:?} is used twice; give each account its own id",
                        account.id
                    ),
                ));
            }
            account
                .kind
                .family()
                .check_unique(&account, &accounts, &at)?;
            accounts.push(account);
        }
        let token = match &self.token {
            None => None,
            Some(spec) => {
                let token = spec.resolve("sandbox.token")?;
                let t = token.expose();
                if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ConfigError::new(
                        "sandbox.token",
                        "must be at least 16 visible ASCII characters (no spaces)",
                    ));
                }
                Some(token)
            }
        };
        Ok(ValidSandbox {
            listen: self.listen,
            seed: self.seed,
            accounts,
            token,
        })
    }
}

/// An account's keys as its family's [`Provider::configure`] reads them: the entry as written,
/// and helpers that name the key in error.
pub(crate) struct AccountKeys<'a> {
    pub raw: &'a AccountConfig,
    /// Where the account is: `sandbox.accounts[0] (iak)`.
    at: &'a str,
}

impl AccountKeys<'_> {
    /// The full name of `key`, for messages: `sandbox.accounts[0] (iak).api_key`.
    pub fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.at)
    }

    /// A text key the account's kind cannot do without.
    pub fn required(&self, value: &Option<String>, key: &str) -> Result<String, ConfigError> {
        value
            .clone()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ConfigError::new(self.at(key), "is required for this kind"))
    }

    /// A secret the account's kind cannot do without, resolved.
    pub fn required_secret(
        &self,
        value: &Option<SecretSpec>,
        key: &str,
    ) -> Result<Secret, ConfigError> {
        match value {
            Some(spec) => spec.resolve(&self.at(key)),
            None => Err(ConfigError::new(self.at(key), "is required for this kind")),
        }
    }
}

impl AccountConfig {
    fn validate(self, index: usize) -> Result<Account, ConfigError> {
        let family = self.kind.family();
        let id = self
            .id
            .clone()
            .unwrap_or_else(|| self.kind.as_str().to_owned());
        let at = format!("sandbox.accounts[{index}] ({id})");
        let key = |k: &str| format!("{at}.{k}");
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::new(
                key("id"),
                "must be non-empty and use only letters, digits, '-' and '_'",
            ));
        }

        // A key only other families read is a mistake: say whose it is and what this kind uses.
        for other in PROVIDERS {
            for k in other.keys() {
                let own = family.keys().iter().any(|mine| mine.name == k.name);
                if !own && (k.set)(&self) {
                    let why = k
                        .elsewhere
                        .replace("{label}", family.label())
                        .replace("{uses}", family.uses());
                    return Err(ConfigError::new(key(k.name), why));
                }
            }
        }
        if self.deposit.is_some() && !family.has_deposit() {
            return Err(ConfigError::new(
                key("deposit"),
                format!("applies only to {} accounts", providers::deposit_labels()),
            ));
        }
        let settings = family.configure(
            self.kind,
            &AccountKeys {
                raw: &self,
                at: &at,
            },
        )?;

        let callback_url = match self.callback_url {
            Some(url) => {
                let parsed = reqwest::Url::parse(&url).map_err(|e| {
                    ConfigError::new(key("callback_url"), format!("not a URL ({e})"))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError::new(
                        key("callback_url"),
                        "must be an http:// or https:// URL",
                    ));
                }
                Some(url)
            }
            None if family.needs_callback_url() => {
                return Err(ConfigError::new(
                    key("callback_url"),
                    format!(
                        "is required for {} accounts (where the callbacks go)",
                        family.label()
                    ),
                ))
            }
            None => None,
        };

        let deposit = self.deposit.unwrap_or(DEFAULT_DEPOSIT);
        if deposit < 0 {
            return Err(ConfigError::new(key("deposit"), "must not be negative"));
        }
        let delay_ms = self
            .callback_delay_ms
            .unwrap_or_else(|| family.default_callback_delay_ms());
        let timeout_ms = self
            .callback_timeout_ms
            .unwrap_or(DEFAULT_CALLBACK_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(ConfigError::new(
                key("callback_timeout_ms"),
                "must be more than 0",
            ));
        }
        let retry_delays_ms = self
            .retry_delays_ms
            .unwrap_or_else(|| family.default_retry_delays_ms().to_vec());
        if retry_delays_ms.len() > 20 {
            return Err(ConfigError::new(
                key("retry_delays_ms"),
                "at most 20 retries may be configured",
            ));
        }
        let retry_delays = retry_delays_ms
            .into_iter()
            .map(|ms| bounded_delay(key("retry_delays_ms"), ms))
            .collect::<Result<Vec<_>, _>>()?;
        let callback_delay = bounded_delay(key("callback_delay_ms"), delay_ms)?;
        let callback_timeout = bounded_delay(key("callback_timeout_ms"), timeout_ms)?;
        let faults = self.faults.validate(&key("faults"))?;

        Ok(Account {
            id,
            kind: self.kind,
            environment: self.environment,
            credentials: settings.credentials,
            callback_url,
            callback_format: settings.callback_format,
            callback_layout: settings.callback_layout,
            api_version: settings.api_version,
            deposit,
            callback_delay,
            callback_timeout,
            retry_delays,
            faults,
        })
    }
}

impl FaultConfig {
    fn validate(self, at: &str) -> Result<Faults, ConfigError> {
        for (name, p) in [
            ("duplicate", self.duplicate),
            ("drop", self.drop),
            ("out_of_order", self.out_of_order),
            ("wrong_signature", self.wrong_signature),
            ("conflicting", self.conflicting),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::new(
                    format!("{at}.{name}"),
                    format!("{p} is not a probability between 0 and 1"),
                ));
            }
        }
        let hang = |name: &str, ms: Option<u64>| {
            let ms = ms.unwrap_or(DEFAULT_HANG_MS);
            if ms > MAX_HANG_MS {
                Err(ConfigError::new(
                    format!("{at}.{name}"),
                    format!("at most {MAX_HANG_MS} ms"),
                ))
            } else {
                Ok(Duration::from_millis(ms))
            }
        };
        Ok(Faults {
            duplicate: self.duplicate,
            drop: self.drop,
            out_of_order: self.out_of_order,
            wrong_signature: self.wrong_signature,
            conflicting: self.conflicting,
            delay_jitter: bounded_delay(format!("{at}.delay_jitter_ms"), self.delay_jitter_ms)?,
            check_status_5xx: self.check_status_5xx,
            check_status_timeout: self.check_status_timeout,
            check_status_garbage: self.check_status_garbage,
            check_status_hang: hang("check_status_hang_ms", self.check_status_hang_ms)?,
            order_5xx_before_commit: self.order_5xx_before_commit,
            order_5xx_after_commit: self.order_5xx_after_commit,
            order_drop_after_commit: self.order_drop_after_commit,
            order_hang_after_commit: self.order_hang_after_commit,
            order_hang: hang("order_hang_ms", self.order_hang_ms)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_secret_never_shows_in_debug() {
        let s = SecretSpec::new("very-secret");
        assert!(!format!("{s:?}").contains("very-secret"));
        assert_eq!(format!("{:?}", SecretSpec::new("env:X")), "\"env:X\"");
    }

    #[test]
    fn a_key_of_another_family_is_refused_with_its_reason() {
        let iak = || AccountConfig {
            username: Some("0812".into()),
            api_key: Some(SecretSpec::new("k")),
            callback_url: Some("http://127.0.0.1:1/cb".into()),
            ..AccountConfig::new(AccountKind::Iak)
        };
        let mcp = || AccountConfig {
            merchant_id: Some("M".into()),
            secret_unbound_id: Some(SecretSpec::new("s")),
            hash_key: Some(SecretSpec::new("h")),
            ..AccountConfig::new(AccountKind::Mcp)
        };
        let error = |account: AccountConfig| {
            let config = SandboxConfig {
                accounts: vec![account],
                ..SandboxConfig::default()
            };
            let e = config.validate().unwrap_err();
            format!("{}: {}", e.at, e.reason)
        };
        for (account, expected) in [
            (
                AccountConfig {
                    sub_merchant_id: Some("x".into()),
                    ..iak()
                },
                "sandbox.accounts[0] (iak).sub_merchant_id: is an MCPayment setting; IAK/IDSL \
                 accounts use username and api_key",
            ),
            (
                AccountConfig {
                    api_key: Some(SecretSpec::new("k")),
                    ..mcp()
                },
                "sandbox.accounts[0] (mcp).api_key: is an IAK/IDSL setting; MCPayment accounts \
                 use merchant_id, secret_unbound_id and hash_key",
            ),
            (
                AccountConfig {
                    api_version: Some(CallbackVersion::V1),
                    ..mcp()
                },
                "sandbox.accounts[0] (mcp).api_version: applies only to IAK/IDSL callbacks \
                 (MCPayment callbacks are JSON)",
            ),
            (
                AccountConfig {
                    deposit: Some(5),
                    ..mcp()
                },
                "sandbox.accounts[0] (mcp).deposit: applies only to IAK/IDSL accounts",
            ),
            (
                AccountConfig {
                    callback_url: None,
                    ..iak()
                },
                "sandbox.accounts[0] (iak).callback_url: is required for IAK/IDSL accounts \
                 (where the callbacks go)",
            ),
            (
                AccountConfig {
                    merchant_id: None,
                    ..mcp()
                },
                "sandbox.accounts[0] (mcp).merchant_id: is required for this kind",
            ),
        ] {
            assert_eq!(error(account), expected);
        }
        assert!(SandboxConfig {
            accounts: vec![iak(), mcp()],
            ..SandboxConfig::default()
        }
        .validate()
        .is_ok());
    }
}
