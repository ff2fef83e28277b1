//! Configuration: defaults, then `lunas.toml`, then `LUNAS__SECTION__KEY` environment variables,
//! validated once at start with a message naming every mistake.
//!
//! Environment variables address any key: `LUNAS__SERVER__LISTEN=0.0.0.0:8080`,
//! `LUNAS__PROVIDERS__0__API_KEY=...` (a number segment indexes an array). Their values are
//! text; numeric and boolean settings accept text. Any secret may be written `env:VAR_NAME` to
//! be read from that variable instead.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use std::sync::Arc;

use lunas_protocol::Secret;
use serde::Deserialize;

use crate::providers::{self, Provider};
use crate::secrets;

/// Everything wrong with a configuration, one mistake per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl ConfigError {
    fn one(msg: impl Into<String>) -> Self {
        ConfigError(vec![msg.into()])
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    providers: Vec<RawProvider>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
    #[serde(default)]
    delivery: RawDelivery,
    #[serde(default)]
    retention: RawRetention,
    /// Read by `lunas sandbox` and `lunas demo`; kept as written here.
    #[serde(default)]
    sandbox: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct RawServer {
    listen: Option<String>,
    admin_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    body_limit: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    read_timeout_ms: Option<u64>,
    #[serde(default)]
    tokens: Vec<RawToken>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    max_connections: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    max_connections_per_address: Option<u64>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    trusted_proxies: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    session_ttl: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    secure_cookies: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct RawToken {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    name: Option<String>,
    token: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    scopes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawStorage {
    url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    busy_timeout_ms: Option<u64>,
}

/// A provider section: the keys every provider has; the rest are the provider's own, parsed
/// by its module (`providers::build`).
#[derive(Debug, Deserialize)]
struct RawProvider {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    id: Option<String>,
    kind: Option<String>,
    environment: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    confirm_callbacks: Option<bool>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    callback_ips: Vec<String>,
    #[serde(default)]
    reconcile: RawReconcile,
    #[serde(default)]
    orders: RawOrders,
    /// Below this deposit balance (rupiah), emit `provider.balance_low`.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    low_balance: Option<u64>,
    #[serde(flatten)]
    rest: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
struct RawOrders {
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    rate_per_minute: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct RawReconcile {
    first_check_after: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string_list")]
    backoff: Option<Vec<String>>,
    give_up_after: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    rate_per_minute: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    timeout_ms: Option<u64>,
    not_found_grace: Option<String>,
    postpaid_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRetention {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    bodies: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    goods: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    observations: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    events: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    balances: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDelivery {
    /// Waits after each failed attempt, e.g. ["5s", "5m", "30m", "2h", "5h", "10h", "10h"].
    #[serde(default, deserialize_with = "lenient::opt_string_list")]
    schedule: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    concurrency: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    per_endpoint: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    poll_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    lease_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct RawEndpoint {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    id: Option<String>,
    url: Option<String>,
    /// One secret, or several during a changeover (the first is the new one).
    #[serde(default, deserialize_with = "lenient::string_list")]
    secret: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    events: Vec<String>,
    /// `false`: deliveries to it wait (paused), nothing is lost.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    enabled: Option<bool>,
    /// `hold` (default) or `deliver_later`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    on_dead_letter: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The validated configuration.

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub providers: Vec<ProviderConfig>,
    pub endpoints: Vec<EndpointConfig>,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
    /// The `[sandbox]` table, for `lunas sandbox` and `lunas demo`.
    pub sandbox: Option<toml::Value>,
    /// The file the configuration came from, if any.
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Required by `lunas serve`; other commands do without.
    pub admin_token: Option<Secret>,
    /// Tokens with some of the admin token's rights (`[[server.tokens]]`).
    pub tokens: Vec<ApiToken>,
    /// The largest callback body accepted, in bytes.
    pub body_limit: usize,
    /// How long a client may take to send a request's head (and, between requests, how long a
    /// kept-alive connection may stay silent), and then its body.
    pub read_timeout: Duration,
    /// Open connections at most, over all clients; more are closed at once.
    pub max_connections: usize,
    /// Open connections at most from one client address (trusted proxies excepted).
    pub max_connections_per_address: usize,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// How long a dashboard login lasts.
    pub session_ttl: Duration,
    /// Whether the dashboard's cookie carries `Secure` (served over HTTPS, also behind a proxy).
    pub secure_cookies: bool,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub url: String,
    pub busy_timeout: Duration,
}

/// Production or development: which provider hosts and keys an account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Production,
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

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub id: String,
    /// `iak`, `idsl`, `mcp`: the provider's own name for its kind.
    pub kind: &'static str,
    pub environment: Environment,
    /// What the provider knows: its keys, callbacks, status API and orders.
    pub provider: Arc<dyn Provider>,
    pub confirm_callbacks: bool,
    /// Empty: callbacks accepted from any address.
    pub callback_ips: Vec<IpNet>,
    pub reconcile: ReconcileConfig,
    pub orders: OrdersConfig,
    /// Below this deposit balance (rupiah) the account emits `provider.balance_low`.
    pub low_balance: Option<i64>,
}

/// How lunas places orders with a provider account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersConfig {
    /// Order requests per minute to this account, at most (a burst of as many is allowed).
    pub rate_per_minute: u32,
    /// Per request: an order whose answer does not come within it is `unknown`.
    pub timeout: Duration,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        OrdersConfig {
            rate_per_minute: 600,
            timeout: Duration::from_secs(30),
        }
    }
}

/// When and how often the reconciler asks a provider about open transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// The first check of a transaction with no outcome, after it was first seen.
    pub first_check_after: Duration,
    /// The waits between later checks; the last one repeats.
    pub backoff: Vec<Duration>,
    /// After this long without an outcome, stop and flag the transaction for review. IAK says
    /// a production callback may take up to 24 hours.
    pub give_up_after: Duration,
    /// Check-status calls per minute to this provider, at most.
    pub rate_per_minute: u32,
    /// Per call.
    pub timeout: Duration,
    /// Prepaid `06` (no such transaction) counts as failed only once the transaction is this old
    /// (a top-up may not be visible at once).
    pub not_found_grace: Duration,
    /// Postpaid status 0 (payment request not received) counts as failed only once the
    /// transaction is this old.
    pub postpaid_grace: Duration,
}

impl ReconcileConfig {
    /// The wait before the next check after `attempts` checks.
    pub fn wait_after(&self, attempts: i64) -> Duration {
        let i = (attempts.max(1) as usize - 1).min(self.backoff.len().saturating_sub(1));
        self.backoff
            .get(i)
            .copied()
            .unwrap_or(self.first_check_after)
    }
}

/// How events are delivered to endpoints.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub policy: lunas_core::RetryPolicy,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts in flight at once, in all.
    pub concurrency: usize,
    /// Attempts in flight at once to one endpoint.
    pub per_endpoint: usize,
    /// How often the worker looks for due retries when nothing wakes it.
    pub poll: Duration,
    /// How long a claimed delivery stays leased to its attempt.
    pub lease: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            policy: lunas_core::RetryPolicy::default(),
            timeout: Duration::from_secs(15),
            concurrency: 32,
            per_endpoint: 8,
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(60),
        }
    }
}

/// How long evidence is kept (`[retention]`); `None`: forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Raw bodies of observations (their SHA-256 stays).
    pub bodies: Option<Duration>,
    /// Customer goods (PIN, activation code, token) of final transactions.
    pub goods: Option<Duration>,
    /// Observation rows.
    pub observations: Option<Duration>,
    /// Events with their deliveries (never one still pending).
    pub events: Option<Duration>,
    /// Deposit balance samples.
    pub balances: Option<Duration>,
    /// How often `lunas serve` prunes.
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let days = |n: u64| Some(Duration::from_secs(n * 86_400));
        RetentionConfig {
            bodies: days(90),
            goods: days(90),
            observations: None,
            events: days(400),
            balances: days(400),
            interval: Duration::from_secs(3600),
        }
    }
}

impl RetentionConfig {
    /// The cutoffs at `now`: what is older goes.
    pub fn cutoffs(&self, now: time::OffsetDateTime) -> lunas_store::PruneCutoffs {
        let before = |keep: Option<Duration>| {
            keep.map(|d| lunas_core::to_millis(now) - d.as_millis() as i64)
        };
        lunas_store::PruneCutoffs {
            bodies: before(self.bodies),
            goods: before(self.goods),
            observations: before(self.observations),
            events: before(self.events),
            balances: before(self.balances),
        }
    }
}

fn retention(raw: RawRetention, errors: &mut Vec<String>) -> RetentionConfig {
    let defaults = RetentionConfig::default();
    let keep = |field: &str,
                value: Option<String>,
                default: Option<Duration>,
                errors: &mut Vec<String>| {
        match value.as_deref().map(str::trim) {
            None => default,
            Some("off" | "forever") => None,
            Some(text) => match parse_duration(text) {
                Ok(d) if d >= Duration::from_secs(3600) => Some(d),
                Ok(_) => {
                    errors.push(format!(
                        "retention.{field}: keep for an hour at least, or \"off\" to keep forever"
                    ));
                    default
                }
                Err(e) => {
                    errors.push(format!(
                        "retention.{field}: {e} (or \"off\" to keep forever)"
                    ));
                    default
                }
            },
        }
    };
    let interval = match raw.interval.as_deref().map(parse_duration) {
        None => defaults.interval,
        Some(Ok(d)) if d >= Duration::from_secs(60) => d,
        Some(Ok(_)) => {
            errors.push("retention.interval: at least 1m".into());
            defaults.interval
        }
        Some(Err(e)) => {
            errors.push(format!("retention.interval: {e}"));
            defaults.interval
        }
    };
    RetentionConfig {
        bodies: keep("bodies", raw.bodies, defaults.bodies, errors),
        goods: keep("goods", raw.goods, defaults.goods, errors),
        observations: keep(
            "observations",
            raw.observations,
            defaults.observations,
            errors,
        ),
        events: keep("events", raw.events, defaults.events, errors),
        balances: keep("balances", raw.balances, defaults.balances, errors),
        interval,
    }
}

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 5s, 5m, 2h"))?;
    let ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?}: unknown unit (use ms, s, m, h or d)")),
    };
    Ok(Duration::from_millis(n.saturating_mul(ms)))
}

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The key of its deliveries (default: the URL).
    pub id: String,
    pub url: url::Url,
    /// The signing secrets: one, or several while the merchant changes over (each delivery is
    /// signed with every one, as Standard Webhooks allows).
    pub secrets: Vec<Secret>,
    pub events: Vec<String>,
    /// `false`: events are still queued for it, but nothing is sent until it is enabled.
    pub enabled: bool,
    pub on_dead_letter: DeadLetterPolicy,
}

/// What a dead-lettered event does to the later events of the same transaction at one
/// endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeadLetterPolicy {
    /// They wait until it is redelivered (order per transaction is never broken); they are
    /// shown as held.
    #[default]
    Hold,
    /// They are delivered anyway (the endpoint copes with a gap in a transaction's events).
    DeliverLater,
}

impl DeadLetterPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterPolicy::Hold => "hold",
            DeadLetterPolicy::DeliverLater => "deliver_later",
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_STORAGE: &str = "sqlite://lunas.db";
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Open connections at most, over all clients.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Open connections at most from one client address.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

impl Config {
    /// Loads `path` (or `lunas.toml` in the working directory when it exists and no path is
    /// given), overlays the `LUNAS__` environment, and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let (text, source) =
            match path {
                Some(p) => (
                    Some(std::fs::read_to_string(p).map_err(|e| {
                        ConfigError::one(format!("cannot read config file {}: {e}", p.display()))
                    })?),
                    Some(p.to_path_buf()),
                ),
                None if Path::new("lunas.toml").exists() => {
                    let p = Path::new("lunas.toml");
                    (
                        Some(std::fs::read_to_string(p).map_err(|e| {
                            ConfigError::one(format!("cannot read lunas.toml: {e}"))
                        })?),
                        Some(p.to_path_buf()),
                    )
                }
                None => (None, None),
            };
        let mut config = Self::from_parts(text.as_deref(), &env, &|name| std::env::var(name).ok())?;
        config.source = source;
        Ok(config)
    }

    /// Builds a configuration from a file's text, environment pairs and a variable lookup
    /// (for `env:VAR` secrets). The pure core of [`Config::load`].
    pub fn from_parts(
        text: Option<&str>,
        env: &[(String, String)],
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Value = match text {
            Some(t) => toml::from_str(t)
                .map_err(|e| ConfigError::one(format!("config file is not valid TOML: {e}")))?,
            None => toml::Value::Table(toml::Table::new()),
        };
        overlay_env(&mut value, env)?;
        // Every section is read on its own, and every key nobody reads is named, so that one
        // run reports every mistake: unknown keys, mistyped values, and (below) the checks.
        let mut errors = Vec::new();
        let raw = read_sections(value, &mut errors);
        match validate(raw, lookup) {
            Ok(config) if errors.is_empty() => Ok(config),
            Ok(_) => Err(ConfigError(errors)),
            Err(ConfigError(more)) => {
                errors.extend(more);
                Err(ConfigError(errors))
            }
        }
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }
}

/// The sections of the file, each read on its own: a section that cannot be read is left out
/// (its mistakes named), and the others are still checked.
fn read_sections(value: toml::Value, errors: &mut Vec<String>) -> RawConfig {
    const SECTIONS: [&str; 7] = [
        "server",
        "storage",
        "providers",
        "endpoints",
        "delivery",
        "retention",
        "sandbox",
    ];
    let mut table = match value {
        toml::Value::Table(t) => t,
        _ => return RawConfig::default(),
    };
    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            errors.push(format!(
                "{key}: unknown section (sections: {})",
                SECTIONS.join(", ")
            ));
        }
    }
    let mut list = |name: &str, errors: &mut Vec<String>| -> Vec<toml::Value> {
        match table.remove(name) {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items,
            Some(_) => {
                errors.push(format!("{name}: must be a list of [[{name}]] tables"));
                Vec::new()
            }
        }
    };
    let providers = list("providers", errors);
    let endpoints = list("endpoints", errors);
    RawConfig {
        server: section(table.remove("server"), "server", errors).unwrap_or_default(),
        storage: section(table.remove("storage"), "storage", errors).unwrap_or_default(),
        delivery: section(table.remove("delivery"), "delivery", errors).unwrap_or_default(),
        retention: section(table.remove("retention"), "retention", errors).unwrap_or_default(),
        providers: providers
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| section(Some(v), &format!("providers[{i}]"), errors))
            .collect(),
        endpoints: endpoints
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| section(Some(v), &format!("endpoints[{i}]"), errors))
            .collect(),
        sandbox: table.remove("sandbox"),
    }
}

/// One section, naming every key it does not know and every mistyped value: a value that
/// cannot be read is named and left out, and the section is read again without it.
fn section<T: serde::de::DeserializeOwned>(
    value: Option<toml::Value>,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let mut value = value?;
    for _ in 0..64 {
        let mut unknown = Vec::new();
        let read = serde_ignored::deserialize(value.clone(), |path| unknown.push(path.to_string()));
        match read {
            Ok(t) => {
                for key in unknown {
                    errors.push(format!("{name}.{key}: unknown key"));
                }
                return Some(t);
            }
            Err(e) => {
                let text = e.to_string();
                // toml names the value's place on a last line: "in `a.b`".
                let (message, place) = match text.trim().rsplit_once("\nin `") {
                    Some((m, p)) => (
                        m.trim().to_owned(),
                        Some(p.trim_end_matches('`').to_owned()),
                    ),
                    None => (text.trim().replace('\n', " "), None),
                };
                match place.filter(|p| remove_path(&mut value, p)) {
                    Some(p) => errors.push(format!("{name}.{p}: {message}")),
                    None => {
                        errors.push(format!("{name}: {message}"));
                        return None;
                    }
                }
            }
        }
    }
    errors.push(format!("{name}: too many mistakes to read it"));
    None
}

/// Removes the value at a dotted path; whether there was one.
fn remove_path(value: &mut toml::Value, path: &str) -> bool {
    let mut node = value;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let toml::Value::Table(t) = node else {
            return false;
        };
        if parts.peek().is_none() {
            return t.remove(part).is_some();
        }
        match t.get_mut(part) {
            Some(next) => node = next,
            None => return false,
        }
    }
    false
}

/// Applies `LUNAS__A__B__C=value` to the table: `a.b.c = "value"`.
fn overlay_env(value: &mut toml::Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    for (key, raw) in env {
        let Some(path) = key.strip_prefix("LUNAS__") else {
            continue;
        };
        let segments: Vec<String> = path.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if segments.iter().any(String::is_empty) {
            errors.push(format!("environment variable {key}: empty path segment"));
            continue;
        }
        if let Err(e) = set_path(value, &segments, toml::Value::String(raw.clone())) {
            errors.push(format!("environment variable {key}: {e}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(errors))
    }
}

fn set_path(node: &mut toml::Value, path: &[String], leaf: toml::Value) -> Result<(), String> {
    let Some((head, rest)) = path.split_first() else {
        *node = leaf;
        return Ok(());
    };
    let child = match node {
        toml::Value::Table(t) => {
            if rest.is_empty() {
                t.insert(head.clone(), leaf);
                return Ok(());
            }
            let next_is_index = rest[0].parse::<usize>().is_ok();
            t.entry(head.clone()).or_insert_with(|| {
                if next_is_index {
                    toml::Value::Array(Vec::new())
                } else {
                    toml::Value::Table(toml::Table::new())
                }
            })
        }
        toml::Value::Array(items) => {
            let i: usize = head
                .parse()
                .map_err(|_| format!("{head:?} is not an array index"))?;
            if i > items.len() {
                return Err(format!(
                    "index {i} skips past the end of a list of {}",
                    items.len()
                ));
            }
            if i == items.len() {
                items.push(toml::Value::Table(toml::Table::new()));
            }
            if rest.is_empty() {
                items[i] = leaf;
                return Ok(());
            }
            &mut items[i]
        }
        _ => return Err(format!("{head:?} is inside a value that is not a table")),
    };
    set_path(child, rest, leaf)
}

fn validate(
    raw: RawConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut errors = Vec::new();
    let secret = |what: &str, value: &str, errors: &mut Vec<String>| -> Option<Secret> {
        match secrets::resolve_with(value, lookup) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(format!("{what}: {e}"));
                None
            }
        }
    };

    let listen_text = raw.server.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        errors.push(format!(
            "server.listen: {listen_text:?} is not an address like 127.0.0.1:8080"
        ));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let admin_token = raw
        .server
        .admin_token
        .as_deref()
        .and_then(|t| secret("server.admin_token", t, &mut errors));
    if let Some(t) = &admin_token {
        check_token("server.admin_token", t, &mut errors);
    }
    let mut tokens: Vec<ApiToken> = Vec::new();
    for (i, t) in raw.server.tokens.into_iter().enumerate() {
        let place = format!("server.tokens[{i}]");
        let name = match t.name.filter(|n| !n.trim().is_empty()) {
            Some(n) if tokens.iter().any(|x| x.name == n) => {
                errors.push(format!("{place}: name {n:?} is used by another token"));
                continue;
            }
            Some(n) => n,
            None => {
                errors.push(format!(
                    "{place}: name is required (it names the caller in logs and timelines)"
                ));
                continue;
            }
        };
        let Some(token) = t
            .token
            .as_deref()
            .and_then(|v| secret(&format!("{place}.token"), v, &mut errors))
        else {
            if t.token.is_none() {
                errors.push(format!("{place}: token is required"));
            }
            continue;
        };
        check_token(&format!("{place}.token"), &token, &mut errors);
        let mut scopes = Vec::new();
        for s in &t.scopes {
            match Scope::parse(s) {
                Some(scope) => scopes.push(scope),
                None => errors.push(format!(
                    "{place}.scopes: {s:?} is not one of read, orders, admin"
                )),
            }
        }
        if t.scopes.is_empty() {
            errors.push(format!(
                "{place}.scopes: name at least one of read, orders, admin"
            ));
        }
        let same_as_admin = admin_token
            .as_ref()
            .is_some_and(|a| a.expose() == token.expose());
        if same_as_admin || tokens.iter().any(|x| x.token.expose() == token.expose()) {
            errors.push(format!("{place}.token: is the same as another token"));
        }
        tokens.push(ApiToken {
            name,
            token,
            scopes,
        });
    }
    let body_limit = match raw.server.body_limit {
        None => DEFAULT_BODY_LIMIT,
        Some(n) if (1024..=16 * 1024 * 1024).contains(&n) => n as usize,
        Some(n) => {
            errors.push(format!(
                "server.body_limit: {n} is outside 1024..=16777216 bytes"
            ));
            DEFAULT_BODY_LIMIT
        }
    };

    let read_timeout = match raw.server.read_timeout_ms {
        None => Duration::from_secs(30),
        Some(ms) if (100..=600_000).contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            errors.push(format!(
                "server.read_timeout_ms: {ms} is outside 100..=600000"
            ));
            Duration::from_secs(30)
        }
    };

    let count =
        |field: &str, value: Option<u64>, default: usize, errors: &mut Vec<String>| match value {
            None => default,
            Some(n) if (1..=1_000_000).contains(&n) => n as usize,
            Some(n) => {
                errors.push(format!("server.{field}: {n} is outside 1..=1000000"));
                default
            }
        };
    let max_connections = count(
        "max_connections",
        raw.server.max_connections,
        DEFAULT_MAX_CONNECTIONS,
        &mut errors,
    );
    let max_connections_per_address = count(
        "max_connections_per_address",
        raw.server.max_connections_per_address,
        DEFAULT_MAX_CONNECTIONS_PER_ADDRESS.min(max_connections),
        &mut errors,
    );
    let trusted_proxies = ip_ranges(
        "server.trusted_proxies",
        &raw.server.trusted_proxies,
        &mut errors,
    );
    let session_ttl = match raw.server.session_ttl.as_deref().map(parse_duration) {
        None => Duration::from_secs(12 * 3600),
        Some(Ok(d)) if d >= Duration::from_secs(60) && d <= Duration::from_secs(30 * 86_400) => d,
        Some(Ok(_)) => {
            errors.push("server.session_ttl: must be between 1m and 30d".into());
            Duration::from_secs(12 * 3600)
        }
        Some(Err(e)) => {
            errors.push(format!("server.session_ttl: {e}"));
            Duration::from_secs(12 * 3600)
        }
    };
    let secure_cookies = raw
        .server
        .secure_cookies
        .unwrap_or(!trusted_proxies.is_empty());

    let url = raw.storage.url.unwrap_or_else(|| DEFAULT_STORAGE.into());
    // A PostgreSQL URL may hold a password: it may be given as env:VAR like any secret.
    let url = if url.starts_with("env:") {
        secret("storage.url", &url, &mut errors)
            .map(|s| s.expose().to_owned())
            .unwrap_or_else(|| DEFAULT_STORAGE.into())
    } else {
        url
    };
    if !(url.starts_with("sqlite://")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        errors.push(format!(
            "storage.url: {url:?} must start with sqlite:// or postgres://"
        ));
    }
    let busy_timeout = Duration::from_millis(raw.storage.busy_timeout_ms.unwrap_or(5000));

    let mut providers = Vec::new();
    let mut seen = HashSet::new();
    for (i, p) in raw.providers.into_iter().enumerate() {
        let name = match &p.id {
            Some(id) => format!("providers[{i}] ({id:?})"),
            None => format!("providers[{i}]"),
        };
        if let Some(provider) = validate_provider(&name, p, &secret, &mut errors) {
            if !seen.insert(provider.id.clone()) {
                errors.push(format!(
                    "{name}: id {:?} is used by another provider",
                    provider.id
                ));
            }
            providers.push(provider);
        }
    }

    let mut endpoints = Vec::new();
    for (i, e) in raw.endpoints.into_iter().enumerate() {
        let name = format!("endpoints[{i}]");
        let url = match e
            .url
            .as_deref()
            .map(|u| http_url(&format!("{name}.url"), u))
        {
            Some(Ok(u)) => Some(u),
            Some(Err(msg)) => {
                errors.push(msg);
                None
            }
            None => {
                errors.push(format!("{name}: url is required"));
                None
            }
        };
        if e.secret.is_empty() {
            errors.push(format!(
                "{name}: secret is required (a whsec_... value, or a list of them during a changeover)"
            ));
        }
        let mut secrets = Vec::new();
        for (k, text) in e.secret.iter().enumerate() {
            let place = if e.secret.len() == 1 {
                format!("{name}.secret")
            } else {
                format!("{name}.secret[{k}]")
            };
            if let Some(s) = secret(&place, text, &mut errors) {
                if s.expose().starts_with("whsec_") {
                    secrets.push(s);
                } else {
                    errors.push(format!(
                        "{place}: must start with whsec_ (a Standard Webhooks secret)"
                    ));
                }
            }
        }
        let events = if e.events.is_empty() {
            vec!["*".to_owned()]
        } else {
            e.events
        };
        // A filter that matches no event type is a typo that would silently deliver nothing.
        for pattern in &events {
            let matches_some = lunas_core::EventType::ALL
                .iter()
                .any(|t| lunas_core::event_matches(std::slice::from_ref(pattern), t.as_str()));
            if !matches_some {
                let types: Vec<&str> = lunas_core::EventType::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect();
                errors.push(format!(
                    "{name}.events: {pattern:?} matches no event type (use \"*\", \"transaction.*\", \"va.*\", \"provider.*\" or one of: {})",
                    types.join(", ")
                ));
            }
        }
        let on_dead_letter = match e.on_dead_letter.as_deref().map(str::trim) {
            None | Some("hold") => DeadLetterPolicy::Hold,
            Some("deliver_later") => DeadLetterPolicy::DeliverLater,
            Some(other) => {
                errors.push(format!(
                    "{name}.on_dead_letter: {other:?} is not hold or deliver_later"
                ));
                DeadLetterPolicy::Hold
            }
        };
        if let (Some(url), false) = (url, secrets.is_empty() || secrets.len() < e.secret.len()) {
            let id = e.id.unwrap_or_else(|| url.to_string());
            if endpoints.iter().any(|x: &EndpointConfig| x.id == id) {
                errors.push(format!("{name}: id {id:?} is used by another endpoint"));
            }
            endpoints.push(EndpointConfig {
                id,
                url,
                secrets,
                events,
                enabled: e.enabled.unwrap_or(true),
                on_dead_letter,
            });
        }
    }

    let mut delivery = DeliveryConfig::default();
    if let Some(schedule) = raw.delivery.schedule {
        let parsed: Result<Vec<Duration>, String> =
            schedule.iter().map(|s| parse_duration(s)).collect();
        match parsed {
            Ok(waits) => delivery.policy.schedule = waits,
            Err(e) => errors.push(format!("delivery.schedule: {e}")),
        }
    }
    if let Some(ms) = raw.delivery.timeout_ms {
        if ms == 0 {
            errors.push("delivery.timeout_ms: must be positive".into());
        }
        delivery.timeout = Duration::from_millis(ms);
        delivery.lease = delivery.lease.max(delivery.timeout * 2);
    }
    if let Some(n) = raw.delivery.concurrency {
        delivery.concurrency = n.max(1) as usize;
    }
    if let Some(n) = raw.delivery.per_endpoint {
        delivery.per_endpoint = n.max(1) as usize;
    }
    if let Some(ms) = raw.delivery.poll_ms {
        delivery.poll = Duration::from_millis(ms.max(10));
    }
    if let Some(ms) = raw.delivery.lease_ms {
        delivery.lease = Duration::from_millis(ms);
        if delivery.lease <= delivery.timeout {
            errors.push(
                "delivery.lease_ms: must be longer than delivery.timeout_ms (an attempt ends before its lease)"
                    .into(),
            );
        }
    }

    let retention = retention(raw.retention, &mut errors);

    if errors.is_empty() {
        Ok(Config {
            server: ServerConfig {
                listen,
                admin_token,
                tokens,
                body_limit,
                read_timeout,
                max_connections,
                max_connections_per_address,
                trusted_proxies,
                session_ttl,
                secure_cookies,
            },
            storage: StorageConfig { url, busy_timeout },
            providers,
            endpoints,
            delivery,
            retention,
            sandbox: raw.sandbox,
            source: None,
        })
    } else {
        Err(ConfigError(errors))
    }
}

use crate::providers::SecretFn;

fn validate_provider(
    name: &str,
    p: RawProvider,
    secret: &SecretFn<'_>,
    errors: &mut Vec<String>,
) -> Option<ProviderConfig> {
    let before = errors.len();
    let id = match p.id {
        Some(id)
            if !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id
        }
        Some(id) => {
            errors.push(format!(
                "{name}: id {id:?} may hold only letters, digits, '-' and '_'"
            ));
            return None;
        }
        None => {
            errors.push(format!(
                "{name}: id is required (it appears in /callbacks/{{id}})"
            ));
            return None;
        }
    };
    let Some(kind) = p.kind else {
        errors.push(format!("{name}: kind is required ({})", providers::KINDS));
        return None;
    };
    let environment = match p.environment.as_deref().unwrap_or("production") {
        "production" => Environment::Production,
        "development" => Environment::Development,
        other => {
            errors.push(format!(
                "{name}: environment {other:?} is not production or development"
            ));
            Environment::Production
        }
    };
    let provider = providers::build(
        &kind,
        &mut providers::Builder {
            name: name.to_owned(),
            environment,
            table: p.rest,
            secret,
            errors,
        },
    );
    let callback_ips = ip_ranges(&format!("{name}: callback_ips"), &p.callback_ips, errors);
    let provider = provider?;
    if errors.len() > before {
        return None;
    }
    let mut reconcile = provider.default_reconcile();
    let mut duration = |field: &str, value: &Option<String>, slot: &mut Duration| {
        if let Some(v) = value {
            match parse_duration(v) {
                Ok(d) => *slot = d,
                Err(e) => errors.push(format!("{name}.reconcile.{field}: {e}")),
            }
        }
    };
    let r = &p.reconcile;
    duration(
        "first_check_after",
        &r.first_check_after,
        &mut reconcile.first_check_after,
    );
    duration(
        "give_up_after",
        &r.give_up_after,
        &mut reconcile.give_up_after,
    );
    duration(
        "not_found_grace",
        &r.not_found_grace,
        &mut reconcile.not_found_grace,
    );
    duration(
        "postpaid_grace",
        &r.postpaid_grace,
        &mut reconcile.postpaid_grace,
    );
    if let Some(list) = &r.backoff {
        match list
            .iter()
            .map(|s| parse_duration(s))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(v) if !v.is_empty() => reconcile.backoff = v,
            Ok(_) => errors.push(format!(
                "{name}.reconcile.backoff: must list at least one wait"
            )),
            Err(e) => errors.push(format!("{name}.reconcile.backoff: {e}")),
        }
    }
    if let Some(n) = r.rate_per_minute {
        if n == 0 {
            errors.push(format!(
                "{name}.reconcile.rate_per_minute: must be positive"
            ));
        }
        reconcile.rate_per_minute = n.clamp(1, 100_000) as u32;
    }
    if let Some(ms) = r.timeout_ms {
        reconcile.timeout = Duration::from_millis(ms.max(1));
    }
    let mut orders = OrdersConfig::default();
    if let Some(n) = p.orders.rate_per_minute {
        if n == 0 {
            errors.push(format!("{name}.orders.rate_per_minute: must be positive"));
        }
        orders.rate_per_minute = n.clamp(1, 1_000_000) as u32;
    }
    if let Some(ms) = p.orders.timeout_ms {
        orders.timeout = Duration::from_millis(ms.max(1));
    }
    if errors.len() > before {
        return None;
    }
    Some(ProviderConfig {
        id,
        kind: provider.kind(),
        environment,
        provider,
        confirm_callbacks: p.confirm_callbacks.unwrap_or(false),
        callback_ips,
        reconcile,
        orders,
        low_balance: p.low_balance.map(|v| v.min(i64::MAX as u64) as i64),
    })
}

/// What a token may do (product contract, "Scoped tokens").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Transactions, events, providers: reading only.
    Read,
    /// Place and pay orders, register transactions.
    Orders,
    /// Everything, including check, redeliver, resolve and the dashboard.
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "read" => Some(Scope::Read),
            "orders" => Some(Scope::Orders),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Orders => "orders",
            Scope::Admin => "admin",
        }
    }
}

/// A token of `[[server.tokens]]`.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Names the caller in logs and timelines.
    pub name: String,
    pub token: Secret,
    pub scopes: Vec<Scope>,
}

impl ApiToken {
    /// Whether the token may do what `scope` covers (`admin` covers everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// A token must be long, and visible ASCII only: a space, a line break or a non-ASCII letter
/// makes a token that a header cannot carry the same way a form does.
/// Addresses and CIDR ranges, each mistake reported.
fn ip_ranges(field: &str, given: &[String], errors: &mut Vec<String>) -> Vec<IpNet> {
    let mut ranges = Vec::new();
    for ip in given {
        let parsed = ip
            .parse::<IpNet>()
            .or_else(|_| ip.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => ranges.push(net),
            Err(_) => errors.push(format!(
                "{field} entry {ip:?} is not an IP address or CIDR range"
            )),
        }
    }
    ranges
}

fn check_token(place: &str, token: &Secret, errors: &mut Vec<String>) {
    let token = token.expose();
    if token.len() < 16 {
        errors.push(format!("{place}: must be at least 16 characters"));
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        errors.push(format!(
            "{place}: must be visible ASCII characters only (no spaces, no accents)"
        ));
    }
}

fn http_url(field: &str, value: &str) -> Result<url::Url, String> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(_) => Err(format!("{field}: {value:?} is not an http(s) URL")),
        Err(e) => Err(format!("{field}: {value:?} is not a URL ({e})")),
    }
}

/// Deserializers that take settings written as text (environment variables) or typed (TOML).
pub(crate) mod lenient {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Bool(bool),
        Int(i64),
        Text(String),
    }

    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Scalar>::deserialize(d)? {
            None => Ok(None),
            Some(Scalar::Int(i)) if i >= 0 => Ok(Some(i as u64)),
            Some(Scalar::Text(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("{s:?} is not a whole number"))),
            Some(_) => Err(D::Error::custom("expected a whole number")),
        }
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Option::<Scalar>::deserialize(d)? {
            None => Ok(None),
            Some(Scalar::Bool(b)) => Ok(Some(b)),
            Some(Scalar::Text(s)) => match s.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(D::Error::custom(format!("{s:?} is not true or false"))),
            },
            Some(_) => Err(D::Error::custom("expected true or false")),
        }
    }

    /// A text setting that TOML may have read as a number (`username = 81234567890`).
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Option::<Scalar>::deserialize(d)? {
            None => Ok(None),
            Some(Scalar::Text(s)) => Ok(Some(s)),
            Some(Scalar::Int(i)) => Ok(Some(i.to_string())),
            Some(Scalar::Bool(_)) => Err(D::Error::custom("expected text")),
        }
    }

    pub fn opt_string_list<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        string_list(d).map(Some)
    }

    /// A list, or (from an environment variable) comma-separated text.
    pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum List {
            Many(Vec<String>),
            One(String),
        }
        Ok(match List::deserialize(d)? {
            List::Many(v) => v,
            List::One(s) => s
                .split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let vars = env.clone();
        Config::from_parts(Some(text), &env, &move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    const GOOD: &str = r#"
[server]
admin_token = "env:TOKEN"
[[providers]]
id = "iak"
kind = "iak"
username = "081234567890"
api_key = "env:IAK_KEY"
[[providers]]
id = "mcp"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "env:MCP_SECRET"
hash_key = "env:MCP_HASH"
callback_ips = ["52.220.38.194", "10.0.0.0/8"]
"#;

    fn good_env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TOKEN", "0123456789abcdef0123"),
            ("IAK_KEY", "k"),
            ("MCP_SECRET", "s"),
            ("MCP_HASH", "h"),
        ]
    }

    #[test]
    fn defaults_file_and_environment_layer_in_that_order() {
        let mut env = good_env();
        env.push(("LUNAS__SERVER__LISTEN", "0.0.0.0:9000"));
        env.push(("LUNAS__PROVIDERS__0__CONFIRM_CALLBACKS", "true"));
        let c = load(GOOD, &env).unwrap();
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.storage.url, DEFAULT_STORAGE);
        assert!(c.providers[0].confirm_callbacks);
        // The account's own keys reach its provider: the default host, the username.
        let tx = lunas_core::TxRecord::new(
            "iak",
            "r1",
            lunas_protocol::TxKind::Prepaid,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let asked = c.providers[0].provider.status_request(&tx).unwrap();
        assert_eq!(asked.url, "https://prepaid.iak.id/api/check-status");
        let body = String::from_utf8(asked.body).unwrap();
        assert!(body.contains("\"username\":\"081234567890\""), "{body}");
        assert_eq!(c.providers[1].callback_ips.len(), 2);
        assert_eq!(
            c.server.admin_token.as_ref().unwrap().expose(),
            "0123456789abcdef0123"
        );
    }

    #[test]
    fn every_mistake_is_named() {
        let text = r#"
[server]
listen = "localhost"
admin_token = "short"
[storage]
url = "mysql://x"
[[providers]]
id = "a"
kind = "iakk"
[[providers]]
id = "b"
kind = "iak"
prepaid_url = "ftp://x"
hash_key = "h"
[[providers]]
id = "c"
kind = "mcp"
merchant_id = "m"
secret_unbound_id = "env:UNSET_VAR"
hash_key = "h"
callback_ips = ["not-an-ip"]
[[endpoints]]
url = "https://merchant.example/hook"
secret = "plain"
events = ["transactoin.*"]
"#;
        let err = load(text, &[]).unwrap_err();
        let all = err.to_string();
        for needle in [
            "server.listen",
            "admin_token: must be at least 16",
            "storage.url",
            "kind \"iakk\" is not one of iak, idsl, mcp",
            "username is required for a iak provider",
            "api_key is required",
            "prepaid_url: \"ftp://x\" is not an http(s) URL",
            "hash_key does not apply to a iak provider",
            "UNSET_VAR is not set",
            "\"not-an-ip\" is not an IP address",
            "must start with whsec_",
            "\"transactoin.*\" matches no event type",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn unknown_keys_mistyped_values_and_failed_checks_come_in_one_report() {
        let text = r#"
[server]
listn = "x"
admin_token = "short"
body_limit = "a lot"
[storage]
url = "mysql://x"
[delivery]
timeout_ms = "soon"
[[providers]]
id = "a"
kind = "iak"
username = "u"
api_key = "k"
[providers.reconcile]
first_check = "1s"
[[endpoints]]
url = "https://merchant.example/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
events = ["transactoin.*"]
[extra]
x = 1
"#;
        let all = load(text, &[]).unwrap_err().to_string();
        for needle in [
            "server.listn: unknown key",
            "providers[0].reconcile.first_check: unknown key",
            "extra: unknown section",
            "server.body_limit: \"a lot\" is not a whole number",
            "delivery.timeout_ms: \"soon\" is not a whole number",
            "storage.url",
            "matches no event type",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn an_admin_token_must_be_long_visible_ascii() {
        for bad in [
            "                ",
            " padded-token-0123456789 ",
            "tökén-0123456789abc",
            "short",
        ] {
            let text = format!("[server]\nadmin_token = \"{bad}\"\n");
            let err = load(&text, &[]).unwrap_err().to_string();
            assert!(err.contains("server.admin_token"), "{bad:?}: {err}");
        }
        assert!(load("[server]\nadmin_token = \"good-token_0123456789\"\n", &[]).is_ok());
    }

    #[test]
    fn typos_and_duplicate_ids_are_refused() {
        let err = load("[server]\nlisten_addr = \"x\"\n", &[]).unwrap_err();
        assert!(
            err.to_string().contains("server.listen_addr: unknown key"),
            "{err}"
        );
        let dup = format!("{GOOD}\n[[providers]]\nid = \"iak\"\nkind = \"idsl\"\nusername = \"u\"\napi_key = \"k\"\n");
        let err = load(&dup, &good_env()).unwrap_err();
        assert!(
            err.to_string().contains("is used by another provider"),
            "{err}"
        );
    }

    #[test]
    fn an_environment_index_may_add_a_provider() {
        let mut env = good_env();
        for (k, v) in [
            ("LUNAS__PROVIDERS__2__ID", "idsl"),
            ("LUNAS__PROVIDERS__2__KIND", "idsl"),
            ("LUNAS__PROVIDERS__2__USERNAME", "0899"),
            ("LUNAS__PROVIDERS__2__API_KEY", "x"),
            ("LUNAS__PROVIDERS__2__PREPAID_URL", "http://127.0.0.1:8090"),
        ] {
            env.push((k, v));
        }
        let c = load(GOOD, &env).unwrap();
        assert_eq!(c.providers[2].id, "idsl");
        let mut env = good_env();
        env.push(("LUNAS__PROVIDERS__7__ID", "x"));
        assert!(load(GOOD, &env)
            .unwrap_err()
            .to_string()
            .contains("skips past the end"));
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = load(GOOD, &good_env()).unwrap();
        let dump = format!("{c:?}");
        assert!(!dump.contains("0123456789abcdef0123"));
    }
}
