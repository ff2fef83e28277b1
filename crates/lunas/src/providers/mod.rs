//! Providers: one folder per provider family, behind one trait, with one registry ([`build`]).
//!
//! A provider knows its own configuration keys, how its callbacks are verified and what they
//! say, how to ask its status API and read the answer, and how to place an order and read that
//! answer. Every one of those is a pure function: the provider builds an [`HttpRequest`] and
//! reads an [`HttpAnswer`]; the gateway does the HTTP once ([`send`]), with its timeouts, rate
//! budgets and evidence.
//!
//! A callback becomes a [`Verified`] only inside these modules, after its signature checked out
//! on the received bytes; the rest of the gateway can act on nothing else. A message that fails
//! becomes a [`Refusal`] naming the problem.
//!
//! Adding a provider: a folder here with a type implementing [`Provider`] and a `build`
//! function that parses its keys, and one line in [`build`].

pub mod iak;
pub mod mcp;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
pub use lunas_core::{Bill, OrderSpec, VaSpec};
use lunas_core::{Fact, ObservationVerdict, TxRecord};
use lunas_protocol::ack::Ack;
use lunas_protocol::{ProtocolError, Secret, TxKind};

use crate::config::{Environment, ReconcileConfig};

/// Everything one provider family knows. Implementations are pure: no I/O, no clock.
pub trait Provider: Send + Sync + fmt::Debug {
    /// The `kind` of the configuration (`iak`, `idsl`, `mcp`, ...).
    fn kind(&self) -> &'static str;

    /// The transaction kinds the account offers.
    fn kinds(&self) -> &'static [TxKind];

    /// The reconciler's default schedule for this provider.
    fn default_reconcile(&self) -> ReconcileConfig;

    /// Whether the account reports a deposit balance (drawn on the dashboard).
    fn reports_balance(&self) -> bool;

    /// Verifies a callback on its raw bytes and reads what it states.
    fn verify_callback(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, Refusal>;

    /// The status request for `tx`, or why it cannot be asked.
    fn status_request(&self, tx: &TxRecord) -> Result<HttpRequest, String>;

    /// Reads the answer to [`Provider::status_request`]: the outcome and a short note for the
    /// timeline.
    fn read_status(&self, tx: &TxRecord, answer: &HttpAnswer) -> (CheckOutcome, String);

    /// The request that places `order` under `reference`, or why it cannot be sent.
    fn order_request(&self, reference: &str, order: &OrderSpec) -> Result<HttpRequest, String>;

    /// Reads the answer to [`Provider::order_request`].
    fn read_order(&self, reference: &str, order: &OrderSpec, answer: &HttpAnswer) -> OrderOutcome;

    /// Whether repeating the order request with the same ref is the provider's documented way
    /// to learn its outcome (IAK top-up: the same `ref_id` again answers as check-status does).
    /// Then an order whose outcome is unknown is settled by repeating it, which also places an
    /// order the provider never received.
    fn repeat_is_status(&self, tx: &TxRecord, order: &OrderSpec) -> bool {
        let _ = (tx, order);
        false
    }
}

/// Resolves a secret setting (`env:VAR` or the value itself): `(where, value, errors)`.
pub type SecretFn<'a> = dyn Fn(&str, &str, &mut Vec<String>) -> Option<Secret> + 'a;

/// What the configuration gives a provider's `build`: its section's own keys, and the means to
/// report mistakes.
pub struct Builder<'a> {
    /// Where the section is, for messages (`providers[0]`).
    pub name: String,
    pub environment: Environment,
    /// The section's keys, less the common ones (`id`, `kind`, `environment`,
    /// `confirm_callbacks`, `callback_ips`, `low_balance`, `reconcile`, `orders`).
    pub table: toml::Table,
    /// Resolves a secret (`env:VAR` or the value itself).
    pub secret: &'a SecretFn<'a>,
    pub errors: &'a mut Vec<String>,
}

impl Builder<'_> {
    /// Reads the section into the provider's own settings (whose keys are `known`), naming
    /// every key that does not apply and any mistyped one.
    pub fn parse<T: serde::de::DeserializeOwned>(
        &mut self,
        kind: &str,
        known: &[&str],
    ) -> Option<T> {
        let mut table = self.table.clone();
        let unknown: Vec<String> = table
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            table.remove(&key);
            self.errors.push(format!(
                "{}: {key} does not apply to a {kind} provider (its keys: {})",
                self.name,
                known.join(", ")
            ));
        }
        match toml::Value::Table(table).try_into::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.errors.push(format!(
                    "{}: {}",
                    self.name,
                    e.message().trim_end_matches('\n').replace('\n', " ")
                ));
                None
            }
        }
    }

    /// A required text setting.
    pub fn required(&mut self, field: &str, kind: &str, value: Option<String>) -> Option<String> {
        match value {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                self.errors.push(format!(
                    "{}: {field} is required for a {kind} provider",
                    self.name
                ));
                None
            }
        }
    }

    /// A required secret setting.
    pub fn required_secret(
        &mut self,
        field: &str,
        kind: &str,
        value: Option<String>,
    ) -> Option<Secret> {
        let v = self.required(field, kind, value)?;
        (self.secret)(&format!("{}.{field}", self.name), &v, self.errors)
    }

    /// An optional http(s) URL setting.
    pub fn url(&mut self, field: &str, value: Option<&str>) -> Option<url::Url> {
        let v = value?;
        match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            Ok(_) => {
                self.errors.push(format!(
                    "{}.{field}: {v:?} is not an http(s) URL",
                    self.name
                ));
                None
            }
            Err(e) => {
                self.errors
                    .push(format!("{}.{field}: {v:?} is not a URL ({e})", self.name));
                None
            }
        }
    }
}

/// The provider kinds lunas knows, for messages.
pub const KINDS: &str = "iak, idsl, mcp";

/// The registry: builds the provider of `kind` from its configuration section.
pub fn build(kind: &str, b: &mut Builder<'_>) -> Option<Arc<dyn Provider>> {
    match kind {
        "iak" => iak::build(b, lunas_protocol::Brand::Iak),
        "idsl" => iak::build(b, lunas_protocol::Brand::Idsl),
        "mcp" => mcp::build(b),
        other => {
            b.errors
                .push(format!("{}: kind {other:?} is not one of {KINDS}", b.name));
            None
        }
    }
}

/// A request to a provider, built by the provider and sent by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A JSON POST.
    pub fn post_json(url: String, body: String) -> Self {
        HttpRequest {
            url,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
        }
    }
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The connection was refused or could not be made: not a byte of the request left.
    NotSent(String),
    /// The request may have reached the provider (a timeout, a reset, a cut-off answer).
    Unknown(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotSent(why) | SendError::Unknown(why) => f.write_str(why),
        }
    }
}

/// How much of an answer is kept as evidence.
pub(crate) const ANSWER_CAP: usize = 16 * 1024;

/// Sends `request` with `client` (whose timeouts apply) and reads the whole answer.
pub async fn send(
    client: &reqwest::Client,
    request: &HttpRequest,
) -> Result<HttpAnswer, SendError> {
    let mut builder = client.post(&request.url).body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let what = format!("POST {}", request.url);
    let response = builder.send().await.map_err(|e| {
        if e.is_connect() {
            SendError::NotSent(format!("{what}: could not connect"))
        } else if e.is_timeout() {
            SendError::Unknown(format!("{what}: timed out"))
        } else {
            SendError::Unknown(format!("{what}: the request failed ({e})"))
        }
    })?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.map_err(|e| {
        if e.is_timeout() {
            SendError::Unknown(format!("{what}: timed out reading the answer"))
        } else {
            SendError::Unknown(format!("{what}: the answer was cut off ({e})"))
        }
    })?;
    Ok(HttpAnswer {
        status,
        content_type,
        body: body.to_vec(),
    })
}

/// `base` + `path`, whether or not `base` ends with a slash.
pub(crate) fn join(base: &url::Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

/// An HTTP client for calls to providers with this timeout.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("lunas/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// A callback whose signature verified, and what it states.
#[derive(Debug)]
pub struct Verified {
    pub fact: Fact,
    /// The answer the provider expects once the callback is committed.
    pub ack: Ack,
    /// `json` or `xml`, for the logs.
    pub format: &'static str,
    /// What the observation should say about the message beyond its verdict.
    pub note: Option<String>,
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
            note: None,
            _sealed: Seal,
        }
    }

    /// Says, in the observation, which keys the body repeated (accepted: see
    /// `lunas_protocol::json`).
    fn with_repeated_keys(mut self, keys: &[String]) -> Self {
        if !keys.is_empty() {
            self.note = Some(format!(
                "repeated keys accepted, the last value kept: {}",
                keys.join(", ")
            ));
        }
        self
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
}

/// The longest ref lunas accepts (as registration does).
pub const MAX_REF_LEN: usize = 128;

/// Checks what the protocol parsers leave to the gateway: a usable ref, and no negative money.
/// A value from a message, quoted for an error or an event only when it looks like a status
/// code (short, letters and digits): anything else might be customer goods in the wrong field.
fn shown_value(value: &str) -> String {
    if value.len() <= 12 && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("{value:?}")
    } else {
        "(a value not shown)".into()
    }
}

fn check_ref(field: &str, value: &str) -> Result<(), Refusal> {
    if value.trim().is_empty() {
        return Err(Refusal::malformed(&ProtocolError::MissingField(
            field.to_owned(),
        )));
    }
    ref_problem(value).map_or(Ok(()), |reason| {
        Err(Refusal::malformed(&ProtocolError::InvalidField {
            field: field.to_owned(),
            reason,
        }))
    })
}

/// What is wrong with a ref, if anything. Refs are exact (`ABC` and `abc` are two
/// transactions), so a ref with surrounding white space or control characters is refused
/// rather than silently made into another transaction.
pub fn ref_problem(value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return Some("is empty".into());
    }
    if value.len() > MAX_REF_LEN {
        return Some(format!("is longer than {MAX_REF_LEN} characters"));
    }
    if value.trim() != value {
        return Some("has white space at its start or end".into());
    }
    if value.chars().any(char::is_control) {
        return Some("contains a control character".into());
    }
    None
}

fn check_amount(field: &str, value: Option<i64>) -> Result<(), Refusal> {
    match value {
        Some(v) if v < 0 => Err(Refusal::malformed(&ProtocolError::InvalidField {
            field: field.to_owned(),
            reason: format!("{v} is negative; amounts are whole rupiah, zero or more"),
        })),
        _ => Ok(()),
    }
}

impl Refusal {
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

/// What a status check established.
#[derive(Debug)]
pub enum CheckOutcome {
    /// The provider answered about the transaction (final or still pending).
    Answered(Fact),
    /// The provider has no such transaction (prepaid or postpaid `06`, MCPayment `02`).
    NotFound,
    /// Postpaid status 0: the payment request never arrived (the fact says pending).
    NotReceived(Fact),
    /// No usable answer: transport error, timeout, 5xx, garbage, a refused request. Never an
    /// outcome.
    Failed(String),
}

/// One status check's evidence and outcome.
#[derive(Debug)]
pub struct Checked {
    pub outcome: CheckOutcome,
    /// The provider's answer (capped), or empty when none came.
    pub response: Vec<u8>,
    pub content_type: Option<String>,
    /// What was asked and what came back, for the timeline (never a key or a sign).
    pub summary: String,
}

/// Asks the provider about `tx` with its own status API.
pub async fn check_status(
    client: &reqwest::Client,
    provider: &dyn Provider,
    tx: &TxRecord,
) -> Checked {
    let request = match provider.status_request(tx) {
        Ok(r) => r,
        Err(why) => {
            return Checked {
                outcome: CheckOutcome::Failed(why.clone()),
                response: Vec::new(),
                content_type: None,
                summary: format!("not asked: {why}"),
            }
        }
    };
    let asked = format!("POST {}", request.url);
    match send(client, &request).await {
        Ok(answer) => {
            let (outcome, note) = provider.read_status(tx, &answer);
            Checked {
                outcome,
                response: answer.body[..answer.body.len().min(ANSWER_CAP)].to_vec(),
                content_type: answer.content_type,
                summary: format!("{asked} → HTTP {}: {note}", answer.status),
            }
        }
        Err(e) => Checked {
            outcome: CheckOutcome::Failed(e.to_string()),
            response: Vec::new(),
            content_type: None,
            summary: e.to_string(),
        },
    }
}

/// What an order's answer established.
#[derive(Debug, Clone)]
pub enum OrderOutcome {
    /// The provider took the order; the fact is its state (often still pending).
    Accepted { fact: Fact, bill: Option<Bill> },
    /// The provider refused the order itself (unknown product, wrong number, a bill it will
    /// not pay): a definite answer, the transaction fails.
    Rejected { fact: Fact, why: String },
    /// The answer says nothing definite (5xx, garbage, an answer about another ref): the order
    /// may have reached the provider.
    Unknown(String),
}
