//! The `[sandbox]` table of `lunas.toml` (product.md §7) and its validation.
//!
//! [`SandboxConfig`] is what serde reads; [`SandboxConfig::validate`] turns it into a
//! [`ValidSandbox`] whose accounts carry resolved secrets, defaults filled in and every rule
//! checked, so the rest of the crate never re-checks configuration.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use lunas_protocol::mcp::Credentials;
use lunas_protocol::{ApiVersion, Format, ProviderKind, Secret};
use serde::Deserialize;

/// The default address of the sandbox.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// The deposit an account starts with when none is configured (IAK's sandbox examples show
/// balances just under a billion rupiah).
pub const DEFAULT_DEPOSIT: i64 = 1_000_000_000;
/// IAK/IDSL production: how long after a top-up its final callback is sent, by default.
pub const DEFAULT_IAK_CALLBACK_DELAY_MS: u64 = 3_000;
/// IAK/IDSL production: the waits before each retry of a callback the receiver did not accept.
pub const DEFAULT_IAK_RETRY_DELAYS_MS: [u64; 4] = [5_000, 30_000, 120_000, 600_000];
/// MCPayment: the waits before each retry; two retries make the documented three tries.
pub const DEFAULT_MCP_RETRY_DELAYS_MS: [u64; 2] = [5_000, 30_000];
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
        }
    }
}

/// The provider an account emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Iak,
    Idsl,
    Mcp,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        self.provider().as_str()
    }

    pub fn provider(self) -> ProviderKind {
        match self {
            AccountKind::Iak => ProviderKind::Iak,
            AccountKind::Idsl => ProviderKind::Idsl,
            AccountKind::Mcp => ProviderKind::Mcp,
        }
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

/// One `[[sandbox.accounts]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// `iak`, `idsl` or `mcp`.
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
            AccountCredentials::Mcp(_) => None,
        }
    }

    /// Whether an unaccepted callback of this account is tried again: always for MCPayment
    /// (which sends on payment in both environments), only in production for IAK/IDSL.
    pub fn retries_callbacks(&self) -> bool {
        self.kind == AccountKind::Mcp || self.environment == Environment::Production
    }
}

/// An account's resolved credentials.
#[derive(Debug, Clone)]
pub enum AccountCredentials {
    Iak { username: String, api_key: Secret },
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
    pub fn validate(self) -> Result<ValidSandbox, ConfigError> {
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
            if let Some(user) = account.username() {
                if accounts.iter().any(|a| a.username() == Some(user)) {
                    return Err(ConfigError::new(
                        format!("{at}.username"),
                        format!(
                            "username {user:?} is used by two IAK/IDSL accounts; requests find \
                             their account by username, so each must be unique"
                        ),
                    ));
                }
            }
            if let AccountCredentials::Mcp(c) = &account.credentials {
                let clash = accounts.iter().any(|a| {
                    matches!(&a.credentials, AccountCredentials::Mcp(o) if o.merchant_id == c.merchant_id)
                });
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
            }
            accounts.push(account);
        }
        Ok(ValidSandbox {
            listen: self.listen,
            seed: self.seed,
            accounts,
        })
    }
}

impl AccountConfig {
    fn validate(self, index: usize) -> Result<Account, ConfigError> {
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
        let require = |value: Option<String>, name: &str| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError::new(key(name), "is required for this kind"))
        };
        let require_secret = |value: &Option<SecretSpec>, name: &str| match value {
            Some(spec) => spec.resolve(&key(name)),
            None => Err(ConfigError::new(key(name), "is required for this kind")),
        };
        let refuse = |present: bool, name: &str, why: &str| {
            if present {
                Err(ConfigError::new(key(name), why.to_owned()))
            } else {
                Ok(())
            }
        };

        let credentials = match self.kind {
            AccountKind::Iak | AccountKind::Idsl => {
                let why = "is an MCPayment setting; IAK/IDSL accounts use username and api_key";
                refuse(self.merchant_id.is_some(), "merchant_id", why)?;
                refuse(self.secret_unbound_id.is_some(), "secret_unbound_id", why)?;
                refuse(self.hash_key.is_some(), "hash_key", why)?;
                refuse(self.sub_merchant_id.is_some(), "sub_merchant_id", why)?;
                AccountCredentials::Iak {
                    username: require(self.username.clone(), "username")?,
                    api_key: require_secret(&self.api_key, "api_key")?,
                }
            }
            AccountKind::Mcp => {
                let why = "is an IAK/IDSL setting; MCPayment accounts use merchant_id, \
                           secret_unbound_id and hash_key";
                refuse(self.username.is_some(), "username", why)?;
                refuse(self.api_key.is_some(), "api_key", why)?;
                let why = "applies only to IAK/IDSL callbacks (MCPayment callbacks are JSON)";
                refuse(self.callback_format.is_some(), "callback_format", why)?;
                refuse(self.api_version.is_some(), "api_version", why)?;
                refuse(
                    self.deposit.is_some(),
                    "deposit",
                    "applies only to IAK/IDSL accounts",
                )?;
                AccountCredentials::Mcp(Credentials {
                    merchant_id: require(self.merchant_id.clone(), "merchant_id")?,
                    secret_unbound_id: require_secret(
                        &self.secret_unbound_id,
                        "secret_unbound_id",
                    )?,
                    hash_key: require_secret(&self.hash_key, "hash_key")?,
                    sub_merchant_id: self.sub_merchant_id.clone().filter(|s| !s.is_empty()),
                })
            }
        };

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
            None if self.kind != AccountKind::Mcp => {
                return Err(ConfigError::new(
                    key("callback_url"),
                    "is required for IAK/IDSL accounts (where the callbacks go)",
                ))
            }
            None => None,
        };

        let deposit = self.deposit.unwrap_or(DEFAULT_DEPOSIT);
        if deposit < 0 {
            return Err(ConfigError::new(key("deposit"), "must not be negative"));
        }
        let is_mcp = self.kind == AccountKind::Mcp;
        let delay_ms = self.callback_delay_ms.unwrap_or(if is_mcp {
            0
        } else {
            DEFAULT_IAK_CALLBACK_DELAY_MS
        });
        let timeout_ms = self
            .callback_timeout_ms
            .unwrap_or(DEFAULT_CALLBACK_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(ConfigError::new(
                key("callback_timeout_ms"),
                "must be more than 0",
            ));
        }
        let retry_delays_ms = self.retry_delays_ms.unwrap_or_else(|| {
            if is_mcp {
                DEFAULT_MCP_RETRY_DELAYS_MS.to_vec()
            } else {
                DEFAULT_IAK_RETRY_DELAYS_MS.to_vec()
            }
        });
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
            credentials,
            callback_url,
            callback_format: self.callback_format.unwrap_or(CallbackFormat::Json).into(),
            api_version: self.api_version.unwrap_or(CallbackVersion::V2).into(),
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
}
