//! IAK and IDSL (its white label): prepaid callbacks (JSON `{"data":{..}}` or XML `<mp>`, v1 or
//! v2 names) signed `md5(username + api_key + ref_id)` inside the body; prepaid check-status
//! (`/api/check-status`, v1 `/v1/legacy/index` with `commands=inquiry`); postpaid
//! `POST /api/v1/bill/check` (`inq-pasca`, `pay-pasca`, `checkstatus`); top-up orders.
//!
//! Configuration keys: `username`, `api_key`, `prepaid_url`, `postpaid_url` (defaults per
//! environment for IAK; an IDSL account names its own), `api_version` (`v1` | `v2`).

use axum::http::HeaderMap;
use lunas_core::{Basis, Detail, Fact, TxRecord};
use lunas_protocol::iak::postpaid::{PostpaidCommand, PostpaidRequest, PostpaidResult};
use lunas_protocol::iak::prepaid::{
    PrepaidCallback, PrepaidCommand, PrepaidRequest, PrepaidResult, PrepaidStatus,
};
use lunas_protocol::iak::rc::{postpaid_class, prepaid_class, RcClass};
use lunas_protocol::state::state_for_verdict;
use lunas_protocol::{
    ack, ApiVersion, Brand, Format, ProtocolError, Secret, State, TxKind, Verdict,
};
use serde::Deserialize;

use super::{
    Bill, Builder, CheckOutcome, HttpAnswer, HttpRequest, OrderOutcome, OrderSpec, Provider,
    Refusal, Verified,
};
use crate::config::{lenient, parse_duration, Environment, ReconcileConfig};

/// An IAK or IDSL account.
#[derive(Debug)]
pub struct Iak {
    brand: Brand,
    username: String,
    api_key: Secret,
    prepaid_url: Option<url::Url>,
    postpaid_url: Option<url::Url>,
    api_version: ApiVersion,
}

/// The account's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    username: Option<String>,
    api_key: Option<String>,
    prepaid_url: Option<String>,
    postpaid_url: Option<String>,
    api_version: Option<String>,
}

/// Builds an IAK or IDSL account from its configuration section.
pub fn build(b: &mut Builder<'_>, brand: Brand) -> Option<std::sync::Arc<dyn Provider>> {
    let kind = brand_kind(brand);
    let keys: Keys = b.parse(
        kind,
        &[
            "username",
            "api_key",
            "prepaid_url",
            "postpaid_url",
            "api_version",
        ],
    )?;
    let before = b.errors.len();
    let username = b.required("username", kind, keys.username);
    let api_key = b.required_secret("api_key", kind, keys.api_key);
    let api_version = match keys.api_version.as_deref() {
        None => ApiVersion::V2,
        Some(v) => v.parse().unwrap_or_else(|_| {
            b.errors
                .push(format!("{}: api_version {v:?} is not v1 or v2", b.name));
            ApiVersion::V2
        }),
    };
    let prepaid_url = b.url("prepaid_url", keys.prepaid_url.as_deref());
    let postpaid_url = b.url("postpaid_url", keys.postpaid_url.as_deref());
    if b.errors.len() > before {
        return None;
    }
    // The documented hosts (protocols.md §1.1, §2.1); IDSL's own are not documented.
    let u = |s: &str| url::Url::parse(s).ok();
    let (prepaid_default, postpaid_default) = match (brand, b.environment) {
        (Brand::Iak, Environment::Production) => {
            (u("https://prepaid.iak.id"), u("https://mobilepulsa.net"))
        }
        (Brand::Iak, Environment::Development) => (
            u("https://prepaid.iak.dev"),
            u("https://testpostpaid.mobilepulsa.net"),
        ),
        (Brand::Idsl, _) => (None, None),
    };
    Some(std::sync::Arc::new(Iak {
        brand,
        username: username?,
        api_key: api_key?,
        prepaid_url: prepaid_url.or(prepaid_default),
        postpaid_url: postpaid_url.or(postpaid_default),
        api_version,
    }))
}

fn brand_kind(brand: Brand) -> &'static str {
    match brand {
        Brand::Iak => "iak",
        Brand::Idsl => "idsl",
    }
}

/// Whether a prepaid message's status and rc contradict each other (a success status with a
/// failure code, or a failure status with the success code): such a message settles nothing.
fn contradiction(status: Option<PrepaidStatus>, rc: &str) -> Option<String> {
    let class = prepaid_class(rc);
    match (status, class) {
        (Some(PrepaidStatus::Success), RcClass::Failed)
        | (Some(PrepaidStatus::Failed), RcClass::Success) => Some(format!(
            "status {} contradicts rc {rc}",
            status.map_or(-1, PrepaidStatus::code)
        )),
        _ => None,
    }
}

impl Iak {
    /// A callback whose status is outside IAK's documented set: if it is signed, it is kept
    /// and flags its transaction (no state change); unsigned, it is refused like any forgery.
    fn unrecognized_status(&self, body: &[u8], status: &str) -> Result<Verified, Refusal> {
        let (ref_id, sign) =
            PrepaidCallback::signed_ref(body).map_err(|e| Refusal::malformed(&e))?;
        super::check_ref("ref_id", &ref_id)?;
        if !lunas_protocol::sign::iak_verify(
            &self.username,
            &self.api_key,
            lunas_protocol::sign::IakSignInput::RefId(&ref_id),
            &sign,
        ) {
            return Err(Refusal::bad_signature(
                ref_id,
                "sign is not md5(username + api_key + ref_id) for this account",
            ));
        }
        let mut fact = Fact::reported(TxKind::Prepaid, &ref_id, None, Detail::default());
        fact.basis = Basis::Unrecognized(format!(
            "status {} is not one IAK documents (0, 1 or 2)",
            super::shown_value(status)
        ));
        let format = if body.trim_ascii_start().starts_with(b"<") {
            Format::Xml
        } else {
            Format::Json
        };
        Ok(Verified::new(fact, ack::iak(format), format.as_str()))
    }

    fn url(&self, postpaid: bool) -> Result<&url::Url, String> {
        let (url, key) = if postpaid {
            (&self.postpaid_url, "postpaid_url")
        } else {
            (&self.prepaid_url, "prepaid_url")
        };
        url.as_ref()
            .ok_or_else(|| format!("no {key} is configured for this account"))
    }

    fn prepaid(&self, command: PrepaidCommand) -> Result<HttpRequest, String> {
        let base = self.url(false)?;
        let req = PrepaidRequest::new(&self.username, &self.api_key, command);
        Ok(HttpRequest::post_json(
            super::join(base, &req.path(self.api_version)),
            req.encode(Format::Json, self.api_version),
        ))
    }

    fn postpaid(&self, command: PostpaidCommand) -> Result<HttpRequest, String> {
        let base = self.url(true)?;
        let req = PostpaidRequest::new(&self.username, &self.api_key, command);
        Ok(HttpRequest::post_json(
            super::join(base, &req.path()),
            req.encode(Format::Json),
        ))
    }
}

/// What a prepaid answer (top-up or check-status) states about `reference`.
fn prepaid_fact(reference: &str, res: &PrepaidResult) -> Fact {
    let mut fact = Fact::reported(
        TxKind::Prepaid,
        reference,
        state_for_verdict(res.verdict()),
        Detail {
            amount: res.price,
            product_code: res.product_code.clone(),
            customer_id: res.customer_id.clone(),
            provider_transaction_id: res.tr_id.map(|t| t.to_string()),
            response_code: Some(res.rc.clone()),
            message: res.message.clone(),
            serial_number: res.sn.clone(),
            pin: res.pin.clone(),
            activation_code: res.activation_code.clone(),
            balance_after: res.balance,
            ..Detail::default()
        },
    );
    if let Some(why) = contradiction(res.status, &res.rc) {
        fact.basis = Basis::Contradictory(why);
    }
    fact
}

/// What a postpaid answer states about `reference`.
fn postpaid_fact(reference: &str, res: &PostpaidResult, state: Option<State>) -> Fact {
    Fact::reported(
        TxKind::Postpaid,
        reference,
        state,
        Detail {
            amount: res.price,
            product_code: res.code.clone(),
            customer_id: res.hp.clone(),
            provider_transaction_id: res.tr_id.map(|t| t.to_string()),
            response_code: Some(res.response_code.clone()),
            message: res.message.clone(),
            balance_after: res.balance,
            ..Detail::default()
        },
    )
}

/// The same fact, failed: a refusal of the request itself.
fn failed(mut fact: Fact) -> Fact {
    fact.state = Some(State::Failed);
    fact
}

fn another_ref(answered: Option<&str>, asked: &str) -> Option<String> {
    answered
        .filter(|r| *r != asked)
        .map(|other| format!("the answer is about ref_id {other}, not {asked}"))
}

impl Provider for Iak {
    fn kind(&self) -> &'static str {
        brand_kind(self.brand)
    }

    fn kinds(&self) -> &'static [TxKind] {
        &[TxKind::Prepaid, TxKind::Postpaid]
    }

    fn default_reconcile(&self) -> ReconcileConfig {
        let d = |s: &str| parse_duration(s).expect("valid default");
        ReconcileConfig {
            first_check_after: d("60s"),
            backoff: ["1m", "2m", "5m", "10m", "30m", "1h", "2h"]
                .iter()
                .map(|s| d(s))
                .collect(),
            give_up_after: d("24h"),
            rate_per_minute: 60,
            timeout: d("30s"),
            not_found_grace: d("10m"),
            postpaid_grace: d("1h"),
        }
    }

    fn reports_balance(&self) -> bool {
        true
    }

    fn verify_callback(&self, _headers: &HeaderMap, body: &[u8]) -> Result<Verified, Refusal> {
        // The sign sits inside the body, so the body is parsed (by the pure, bounded parser)
        // before the sign can be checked; nothing acts on its content until the check passes.
        let decoded = match PrepaidCallback::parse(body) {
            Ok(decoded) => decoded,
            Err(ProtocolError::UnknownValue { field, value }) if field == "status" => {
                return self.unrecognized_status(body, &value)
            }
            Err(e) => return Err(Refusal::malformed(&e)),
        };
        let cb = decoded.message;
        super::check_ref("ref_id", &cb.ref_id)?;
        super::check_amount("price", Some(cb.price))?;
        if !cb.verify(&self.username, &self.api_key) {
            return Err(Refusal::bad_signature(
                cb.ref_id,
                "sign is not md5(username + api_key + ref_id) for this account",
            ));
        }
        let basis =
            contradiction(Some(cb.status), &cb.rc).map_or(Basis::Reported, Basis::Contradictory);
        let mut fact = Fact::reported(
            TxKind::Prepaid,
            &cb.ref_id,
            state_for_verdict(cb.verdict()),
            Detail {
                amount: Some(cb.price),
                product_code: Some(cb.product_code),
                customer_id: Some(cb.customer_id),
                provider_transaction_id: Some(cb.tr_id.to_string()),
                response_code: Some(cb.rc),
                message: Some(cb.message),
                serial_number: cb.sn,
                pin: cb.pin,
                activation_code: cb.activation_code,
                balance_after: Some(cb.balance),
                ..Detail::default()
            },
        );
        fact.basis = basis;
        Ok(Verified::new(
            fact,
            ack::iak(decoded.format),
            decoded.format.as_str(),
        ))
    }

    fn status_request(&self, tx: &TxRecord) -> Result<HttpRequest, String> {
        let ref_id = tx.reference.clone();
        if tx.kind == TxKind::Postpaid {
            self.postpaid(PostpaidCommand::CheckStatus { ref_id })
        } else {
            self.prepaid(PrepaidCommand::CheckStatus { ref_id })
        }
    }

    fn read_status(&self, tx: &TxRecord, answer: &HttpAnswer) -> (CheckOutcome, String) {
        // Only a 200 carries an outcome; 400 is a refused request, anything else means "ask
        // later" (protocols.md §1.3). Neither may settle a transaction.
        if answer.status != 200 {
            return (
                CheckOutcome::Failed(format!("HTTP {}", answer.status)),
                "no outcome".into(),
            );
        }
        if tx.kind == TxKind::Postpaid {
            return read_postpaid_status(tx, answer);
        }
        let res = match about_it(
            PrepaidResult::parse(&answer.body),
            |r| r.ref_id.as_deref(),
            tx,
        ) {
            Ok(res) => res,
            Err((why, note)) => return (CheckOutcome::Failed(why), note),
        };
        let verdict = res.verdict();
        let note = format!(
            "status {}, rc {}",
            status_text(res.status.map(PrepaidStatus::code)),
            res.rc
        );
        let outcome = match verdict {
            Verdict::Succeeded | Verdict::Failed | Verdict::Pending | Verdict::NotReceived => {
                CheckOutcome::Answered(prepaid_fact(&tx.reference, &res))
            }
            Verdict::NotFound => CheckOutcome::NotFound,
            Verdict::Rejected => CheckOutcome::Failed(format!(
                "request refused: rc {} {}",
                res.rc,
                res.message.unwrap_or_default()
            )),
        };
        (outcome, note)
    }

    fn order_request(&self, reference: &str, order: &OrderSpec) -> Result<HttpRequest, String> {
        match order {
            OrderSpec::Prepaid {
                product_code,
                customer_id,
            } => self.prepaid(PrepaidCommand::TopUp {
                ref_id: reference.to_owned(),
                customer_id: customer_id.clone(),
                product_code: product_code.clone(),
            }),
            OrderSpec::Postpaid {
                product_code,
                customer_id,
                month,
                year,
                nomor_identitas,
            } => self.postpaid(PostpaidCommand::Inquiry {
                code: product_code.clone(),
                hp: customer_id.clone(),
                ref_id: reference.to_owned(),
                month: month.clone(),
                year: year.clone(),
                nomor_identitas: nomor_identitas.clone(),
            }),
            OrderSpec::PostpaidPay { bill_id, .. } => {
                let tr_id = bill_id
                    .parse::<i64>()
                    .map_err(|_| format!("the bill's tr_id {bill_id:?} is not a number"))?;
                self.postpaid(PostpaidCommand::Payment { tr_id })
            }
            OrderSpec::Va(_) => Err(format!(
                "an {} account has no virtual accounts",
                self.kind()
            )),
        }
    }

    fn read_order(&self, reference: &str, order: &OrderSpec, answer: &HttpAnswer) -> OrderOutcome {
        match order {
            OrderSpec::Prepaid { .. } => read_top_up(reference, answer),
            OrderSpec::Postpaid { .. } | OrderSpec::PostpaidPay { .. } => {
                read_postpaid_order(reference, order, answer)
            }
            OrderSpec::Va(_) => OrderOutcome::Unknown("not an IAK order".into()),
        }
    }

    fn repeat_is_status(&self, _tx: &TxRecord, order: &OrderSpec) -> bool {
        // "Re-sending a top-up with an already used ref_id does not create a new transaction;
        // it behaves as a check-status for that ref_id" (IAK's top-up page).
        matches!(order, OrderSpec::Prepaid { .. })
    }
}

/// A status answer read and about the transaction asked about; else why the check got no
/// outcome, and the note for the timeline.
fn about_it<T>(
    parsed: lunas_protocol::Result<lunas_protocol::Decoded<T>>,
    answered_ref: fn(&T) -> Option<&str>,
    tx: &TxRecord,
) -> Result<T, (String, String)> {
    let res = parsed
        .map_err(|e| (format!("unreadable answer: {e}"), e.to_string()))?
        .message;
    match another_ref(answered_ref(&res), &tx.reference) {
        Some(why) => Err((why, "an answer about another transaction".into())),
        None => Ok(res),
    }
}

/// A status code for the timeline, or "none".
fn status_text(code: Option<i64>) -> String {
    code.map_or_else(|| "none".to_owned(), |c| c.to_string())
}

fn read_postpaid_status(tx: &TxRecord, answer: &HttpAnswer) -> (CheckOutcome, String) {
    let res = match about_it(
        PostpaidResult::parse(&answer.body),
        |r| r.ref_id.as_deref(),
        tx,
    ) {
        Ok(res) => res,
        Err((why, note)) => return (CheckOutcome::Failed(why), note),
    };
    let verdict = res.verdict();
    let note = format!(
        "status {}, response_code {}",
        status_text(res.status.map(|s| s.code())),
        res.response_code
    );
    // Postpaid `00` also means "inquiry succeeded": only a stated status is an outcome.
    if res.status.is_none()
        && matches!(
            verdict,
            Verdict::Succeeded | Verdict::Failed | Verdict::NotReceived
        )
    {
        return (
            CheckOutcome::Failed(format!(
                "the answer has response_code {} but no status",
                res.response_code
            )),
            note,
        );
    }
    let fact = postpaid_fact(&tx.reference, &res, state_for_verdict(verdict));
    let outcome = match verdict {
        Verdict::Succeeded | Verdict::Failed | Verdict::Pending => CheckOutcome::Answered(fact),
        Verdict::NotReceived => CheckOutcome::NotReceived(fact),
        Verdict::NotFound => CheckOutcome::NotFound,
        Verdict::Rejected => CheckOutcome::Failed(format!(
            "request refused: {} {}",
            res.response_code,
            res.message.unwrap_or_default()
        )),
    };
    (outcome, note)
}

/// A top-up's answer: the transaction's state (its first answer is PROCESS), or IAK's refusal.
fn read_top_up(reference: &str, answer: &HttpAnswer) -> OrderOutcome {
    let parsed = PrepaidResult::parse(&answer.body).map(|d| d.message);
    // "400 Bad Request → failed (check data error_details); any other HTTP status → treat as
    // pending" (protocols.md §1.3): only a readable refusal in a 400 is definite.
    let res = match (answer.status, parsed) {
        (200 | 400, Ok(res)) => res,
        (status, _) => {
            return OrderOutcome::Unknown(format!("HTTP {status} without a readable answer"))
        }
    };
    if let Some(why) = another_ref(res.ref_id.as_deref(), reference) {
        return OrderOutcome::Unknown(why);
    }
    let fact = prepaid_fact(reference, &res);
    if matches!(fact.basis, Basis::Contradictory(_)) {
        return OrderOutcome::Unknown(format!("status and rc {} contradict each other", res.rc));
    }
    match (answer.status, res.verdict()) {
        (200, Verdict::Succeeded | Verdict::Pending) => OrderOutcome::Accepted { fact, bill: None },
        (_, Verdict::Failed | Verdict::Rejected) => OrderOutcome::Rejected {
            why: format!("rc {} {}", res.rc, res.message.clone().unwrap_or_default()),
            fact: failed(fact),
        },
        (_, verdict) => OrderOutcome::Unknown(format!(
            "HTTP {} with rc {} ({})",
            answer.status,
            res.rc,
            match verdict {
                Verdict::NotFound => "no such transaction",
                Verdict::NotReceived => "not received",
                _ => "no outcome",
            }
        )),
    }
}

/// A postpaid inquiry's or payment's answer.
fn read_postpaid_order(reference: &str, order: &OrderSpec, answer: &HttpAnswer) -> OrderOutcome {
    let res = match (answer.status, PostpaidResult::parse(&answer.body)) {
        (200 | 400, Ok(d)) => d.message,
        (status, _) => {
            return OrderOutcome::Unknown(format!("HTTP {status} without a readable answer"))
        }
    };
    if let Some(why) = another_ref(res.ref_id.as_deref(), reference) {
        return OrderOutcome::Unknown(why);
    }
    let class = postpaid_class(&res.response_code);
    let why = || {
        format!(
            "response_code {} {}",
            res.response_code,
            res.message.clone().unwrap_or_default()
        )
    };
    match order {
        OrderSpec::Postpaid { .. } => match (class, res.tr_id, res.price) {
            (RcClass::Success, Some(tr_id), Some(price)) => OrderOutcome::Accepted {
                fact: postpaid_fact(reference, &res, Some(State::Pending)),
                bill: Some(Bill {
                    tr_id: tr_id.to_string(),
                    price,
                    amount: res.nominal,
                    admin: res.admin,
                    period: res.period.clone(),
                    customer_name: res.tr_name.clone(),
                    desc: res.desc.clone(),
                }),
            },
            (RcClass::Success, _, _) => {
                OrderOutcome::Unknown("an inquiry success without tr_id or price".into())
            }
            (RcClass::Failed | RcClass::Rejected | RcClass::NotFound, _, _) => {
                OrderOutcome::Rejected {
                    fact: postpaid_fact(reference, &res, Some(State::Failed)),
                    why: why(),
                }
            }
            _ => OrderOutcome::Unknown(why()),
        },
        _ => match (answer.status, res.verdict()) {
            (200, Verdict::Succeeded) => OrderOutcome::Accepted {
                fact: postpaid_fact(reference, &res, Some(State::Succeeded)),
                bill: None,
            },
            (200, Verdict::Pending) => OrderOutcome::Accepted {
                fact: postpaid_fact(reference, &res, Some(State::Pending)),
                bill: None,
            },
            (_, Verdict::Failed | Verdict::Rejected | Verdict::NotFound) => {
                OrderOutcome::Rejected {
                    fact: postpaid_fact(reference, &res, Some(State::Failed)),
                    why: why(),
                }
            }
            _ => OrderOutcome::Unknown(why()),
        },
    }
}
