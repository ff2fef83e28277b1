//! The load's callbacks: correctly signed, in a realistic mix. IAK and IDSL prepaid callbacks
//! in JSON and XML with v1 and v2 field names, MCPayment VA callbacks with `mcp-signature`;
//! one-step outcomes and two-step stories (a pending, then its outcome), exact duplicates of
//! earlier callbacks, and callbacks for refs registered beforehand as well as for refs lunas
//! has never heard of (which it creates).
//!
//! Each worker has its own generator with its own refs, so a transaction's messages are sent
//! in order by one worker and never race each other; a duplicate is always sent after the
//! original was answered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use lunas_protocol::iak::prepaid::{PrepaidCallback, PrepaidStatus};
use lunas_protocol::mcp::{PaymentDetails, PaymentRecord, PaymentSystem, TransactionStatus};
use lunas_protocol::mcp::{VaTransaction, HEADER_SIGNATURE};
use lunas_protocol::{ack, ApiVersion, Format, Secret};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::gateway::{mcp_credentials, IAK_KEY, IAK_USER, IDSL_KEY, IDSL_USER};

/// The acknowledgement lunas owes a JSON callback (IAK/IDSL JSON, MCPayment), and the one
/// the baseline server gives to everything.
pub const SUCCESS_JSON: &str = r#"{"message":"SUCCESS"}"#;

/// What kind of callback a request is (for the report's mix table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    IakJsonV2,
    IakJsonV1,
    IakXmlV2,
    IakXmlV1,
    IdslJsonV2,
    IdslXmlV1,
    McpVa,
    Duplicate,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::IakJsonV2 => "IAK JSON v2",
            Class::IakJsonV1 => "IAK JSON v1",
            Class::IakXmlV2 => "IAK XML v2",
            Class::IakXmlV1 => "IAK XML v1",
            Class::IdslJsonV2 => "IDSL JSON v2",
            Class::IdslXmlV1 => "IDSL XML v1",
            Class::McpVa => "MCPayment VA",
            Class::Duplicate => "exact duplicate",
        }
    }
}

/// What an acknowledged callback commits lunas to: the transaction exists, is in one of
/// `states`, and (if `event` is named) has that event in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub provider: &'static str,
    pub reference: String,
    pub states: &'static [&'static str],
    pub event: Option<&'static str>,
}

/// One callback to send and the answer it must get.
#[derive(Debug, Clone)]
pub struct Request {
    pub provider: &'static str,
    pub body: Bytes,
    pub mcp_signature: Option<String>,
    /// The exact body of the expected 200 answer.
    pub ack: Bytes,
    pub class: Class,
    pub outcome: Outcome,
    /// The first message about a ref that was unknown to lunas.
    pub creates: bool,
}

impl Request {
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![(
            "content-type",
            if self.body.first() == Some(&b'<') {
                "application/xml".to_owned()
            } else {
                "application/json".to_owned()
            },
        )];
        if let Some(sig) = &self.mcp_signature {
            h.push((HEADER_SIGNATURE, sig.clone()));
        }
        h
    }
}

/// Refs registered through the admin API before the load, handed out once each.
#[derive(Debug, Default)]
pub struct KnownPool {
    refs: Vec<String>,
    next: AtomicUsize,
}

impl KnownPool {
    pub fn new(refs: Vec<String>) -> Self {
        KnownPool {
            refs,
            next: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Option<String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.refs.get(i).cloned()
    }
}

/// The proportions of the mix.
#[derive(Debug, Clone, Copy)]
pub struct MixOptions {
    /// Share of requests that repeat an earlier callback byte for byte.
    pub duplicates: f64,
    /// Share of new IAK stories about a ref registered beforehand.
    pub known: f64,
    /// Share of new stories told in two messages (pending first).
    pub two_step: f64,
    /// Only outcomes that end a story (for delivery counting: each callback one story).
    pub finals_only: bool,
}

impl Default for MixOptions {
    fn default() -> Self {
        MixOptions {
            duplicates: 0.10,
            known: 0.10,
            two_step: 0.30,
            finals_only: false,
        }
    }
}

/// A story's second message, waiting to be sent.
#[derive(Debug, Clone)]
enum Next {
    Iak {
        brand: Brand,
        reference: String,
        format: Format,
        version: ApiVersion,
        status: PrepaidStatus,
    },
    VaPaid {
        reference: String,
        partial: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Brand {
    Iak,
    Idsl,
}

/// One worker's generator.
pub struct Mix {
    rng: ChaCha8Rng,
    prefix: String,
    n: u64,
    pending: VecDeque<Next>,
    recent: VecDeque<Request>,
    known: Option<Arc<KnownPool>>,
    options: MixOptions,
    ack_json: Bytes,
    ack_xml: Bytes,
    iak_key: Secret,
    idsl_key: Secret,
}

impl Mix {
    /// `prefix` makes this worker's refs unique (include the run and the worker in it).
    pub fn new(
        seed: u64,
        prefix: String,
        known: Option<Arc<KnownPool>>,
        options: MixOptions,
    ) -> Self {
        Mix {
            rng: ChaCha8Rng::seed_from_u64(seed),
            prefix,
            n: 0,
            pending: VecDeque::new(),
            recent: VecDeque::new(),
            known,
            options,
            ack_json: Bytes::from_static(SUCCESS_JSON.as_bytes()),
            ack_xml: Bytes::from(ack::iak(Format::Xml).body),
            iak_key: Secret::new(IAK_KEY),
            idsl_key: Secret::new(IDSL_KEY),
        }
    }

    /// The next callback to send.
    pub fn next_request(&mut self) -> Request {
        if !self.options.finals_only
            && !self.recent.is_empty()
            && self.rng.gen_bool(self.options.duplicates)
        {
            let i = self.rng.gen_range(0..self.recent.len());
            let mut dup = self.recent[i].clone();
            dup.class = Class::Duplicate;
            dup.creates = false;
            return dup;
        }
        // Finish a story now and then, so a few are always under way.
        let finish = !self.pending.is_empty() && (self.pending.len() > 8 || self.rng.gen_bool(0.5));
        let req = if finish {
            let next = self.pending.pop_front().expect("not empty");
            self.second(next)
        } else {
            self.first()
        };
        if self.recent.len() == 32 {
            self.recent.pop_front();
        }
        self.recent.push_back(req.clone());
        req
    }

    fn fresh_ref(&mut self) -> String {
        self.n += 1;
        format!("{}-{}", self.prefix, self.n)
    }

    fn first(&mut self) -> Request {
        let roll = self.rng.gen_range(0..100);
        let (brand, format, version, class) = match roll {
            0..=29 => (Brand::Iak, Format::Json, ApiVersion::V2, Class::IakJsonV2),
            30..=39 => (Brand::Iak, Format::Json, ApiVersion::V1, Class::IakJsonV1),
            40..=49 => (Brand::Iak, Format::Xml, ApiVersion::V2, Class::IakXmlV2),
            50..=54 => (Brand::Iak, Format::Xml, ApiVersion::V1, Class::IakXmlV1),
            55..=64 => (Brand::Idsl, Format::Json, ApiVersion::V2, Class::IdslJsonV2),
            65..=69 => (Brand::Idsl, Format::Xml, ApiVersion::V1, Class::IdslXmlV1),
            _ => return self.first_va(),
        };
        let known = if brand == Brand::Iak && self.rng.gen_bool(self.options.known) {
            self.known.as_ref().and_then(|k| k.take())
        } else {
            None
        };
        let creates = known.is_none();
        let reference = known.unwrap_or_else(|| self.fresh_ref());
        let two_step = !self.options.finals_only && self.rng.gen_bool(self.options.two_step);
        let outcome = if self.rng.gen_bool(0.8) {
            PrepaidStatus::Success
        } else {
            PrepaidStatus::Failed
        };
        if two_step {
            self.pending.push_back(Next::Iak {
                brand,
                reference: reference.clone(),
                format,
                version,
                status: outcome,
            });
            self.iak(
                brand,
                reference,
                format,
                version,
                PrepaidStatus::Process,
                class,
                creates,
            )
        } else {
            self.iak(brand, reference, format, version, outcome, class, creates)
        }
    }

    fn first_va(&mut self) -> Request {
        let reference = self.fresh_ref();
        if self.options.finals_only || !self.rng.gen_bool(self.options.two_step) {
            return self.va_paid(reference, false, true);
        }
        let partial = self.rng.gen_bool(0.5);
        self.pending.push_back(Next::VaPaid {
            reference: reference.clone(),
            partial,
        });
        if partial {
            // A PARTIAL VA: half of the total paid, still ACTIVE.
            let tx = va(
                &reference,
                TransactionStatus::Active,
                PaymentSystem::Partial,
                &[("P1", 50_000)],
            );
            self.va_request(
                tx,
                Outcome {
                    provider: "mcp",
                    reference,
                    states: &["partially_paid", "paid"],
                    event: Some("va.payment_received"),
                },
                true,
            )
        } else {
            // A closed VA announced before payment.
            let tx = va(
                &reference,
                TransactionStatus::Active,
                PaymentSystem::Closed,
                &[],
            );
            self.va_request(
                tx,
                Outcome {
                    provider: "mcp",
                    reference,
                    states: &["awaiting_payment", "paid"],
                    event: None,
                },
                true,
            )
        }
    }

    fn second(&mut self, next: Next) -> Request {
        match next {
            Next::Iak {
                brand,
                reference,
                format,
                version,
                status,
            } => {
                let class = match (brand, format, version) {
                    (Brand::Iak, Format::Json, ApiVersion::V2) => Class::IakJsonV2,
                    (Brand::Iak, Format::Json, ApiVersion::V1) => Class::IakJsonV1,
                    (Brand::Iak, Format::Xml, ApiVersion::V2) => Class::IakXmlV2,
                    (Brand::Iak, Format::Xml, ApiVersion::V1) => Class::IakXmlV1,
                    (Brand::Idsl, Format::Xml, _) => Class::IdslXmlV1,
                    (Brand::Idsl, Format::Json, _) => Class::IdslJsonV2,
                };
                self.iak(brand, reference, format, version, status, class, false)
            }
            Next::VaPaid { reference, partial } => self.va_paid(reference, partial, false),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn iak(
        &mut self,
        brand: Brand,
        reference: String,
        format: Format,
        version: ApiVersion,
        status: PrepaidStatus,
        class: Class,
        creates: bool,
    ) -> Request {
        let (rc, message) = match status {
            PrepaidStatus::Success => ("00", "SUCCESS"),
            PrepaidStatus::Failed => ("07", "FAILED"),
            PrepaidStatus::Process => ("39", "PROCESS"),
        };
        let (user, key, provider) = match brand {
            Brand::Iak => (IAK_USER, &self.iak_key, "iak"),
            Brand::Idsl => (IDSL_USER, &self.idsl_key, "idsl"),
        };
        let products = [
            ("xld25000", 25_000),
            ("hpln20000", 20_500),
            ("htelkomsel10000", 10_650),
            ("ffdm70", 19_500),
        ];
        // One purchase keeps its product, customer, provider id and deposit across its
        // callbacks (as a provider's do; lunas flags a message that changes them).
        let h = reference.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let (product, price) = products[(h % products.len() as u64) as usize];
        let customer = format!("0812{:08}", (h >> 8) % 100_000_000);
        let cb = PrepaidCallback {
            ref_id: reference.clone(),
            status,
            product_code: product.into(),
            customer_id: customer,
            price,
            message: message.into(),
            sn: (status == PrepaidStatus::Success)
                .then(|| format!("{:016}", self.rng.gen_range(0..u64::MAX / 2))),
            pin: None,
            activation_code: None,
            balance: 1_000_000 + ((h >> 16) % 999_000_000) as i64,
            tr_id: 1 + ((h >> 24) % 999_999_999) as i64,
            rc: rc.into(),
            sign: String::new(),
        }
        .signed(user, key);
        let (states, event): (&'static [&'static str], _) = match status {
            PrepaidStatus::Process => (
                &["pending", "succeeded", "failed"],
                creates.then_some("transaction.pending"),
            ),
            PrepaidStatus::Success => (&["succeeded"], Some("transaction.succeeded")),
            PrepaidStatus::Failed => (&["failed"], Some("transaction.failed")),
        };
        Request {
            provider,
            body: Bytes::from(cb.encode(format, version)),
            mcp_signature: None,
            ack: match format {
                Format::Json => self.ack_json.clone(),
                Format::Xml => self.ack_xml.clone(),
            },
            class,
            outcome: Outcome {
                provider,
                reference,
                states,
                event,
            },
            creates,
        }
    }

    fn va_paid(&mut self, reference: String, partial: bool, creates: bool) -> Request {
        let tx = if partial {
            va(
                &reference,
                TransactionStatus::Paid,
                PaymentSystem::Partial,
                &[("P1", 50_000), ("P2", 50_000)],
            )
        } else {
            va(
                &reference,
                TransactionStatus::Paid,
                PaymentSystem::Closed,
                &[("P1", 100_000)],
            )
        };
        self.va_request(
            tx,
            Outcome {
                provider: "mcp",
                reference,
                states: &["paid"],
                event: Some("va.paid"),
            },
            creates,
        )
    }

    fn va_request(&mut self, tx: VaTransaction, outcome: Outcome, creates: bool) -> Request {
        let sig =
            mcp_credentials().callback_signature(&tx.transaction_id, &tx.external_id, &tx.order_id);
        Request {
            provider: "mcp",
            body: Bytes::from(tx.encode()),
            mcp_signature: Some(sig),
            ack: self.ack_json.clone(),
            class: Class::McpVa,
            outcome,
            creates,
        }
    }
}

/// A VA callback of 100 000 rupiah: `payments` are (reference_id, amount) of its history.
pub fn va(
    external_id: &str,
    status: TransactionStatus,
    system: PaymentSystem,
    payments: &[(&str, i64)],
) -> VaTransaction {
    let total = 100_000;
    let mut tx = VaTransaction::new(
        &format!("trx-{external_id}"),
        external_id,
        &format!("ORD-{external_id}"),
        status,
    );
    tx.response_code = Some("00".into());
    tx.currency = Some("IDR".into());
    tx.payment_method = Some("BANK_TRANSFER".into());
    tx.payment_channel = Some("BRI".into());
    let paid: i64 = payments.iter().map(|(_, a)| a).sum();
    tx.payment_details = Some(PaymentDetails {
        payment_system: Some(system),
        va_number: Some("8808123456789012".into()),
        amount: Some(total),
        total_amount: Some(total),
        total_paid_amount: Some(paid),
        is_multi_use: Some(false),
        ..PaymentDetails::default()
    });
    if !payments.is_empty() {
        tx.payment_history = Some(
            payments
                .iter()
                .enumerate()
                .map(|(i, (r, a))| PaymentRecord {
                    paid_amount: Some(*a),
                    paid_time: Some(format!("2026-05-01T10:0{i}:00.000+07:00")),
                    reference_id: Some(format!("{external_id}-{r}")),
                })
                .collect(),
        );
    }
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn provider(id: &str) -> lunas::config::ProviderConfig {
        let dir = std::env::temp_dir();
        let text = crate::gateway::config_text(&dir.join("unused.db"), None, "");
        let config = lunas::config::Config::from_parts(Some(&text), &[], &|_| None)
            .expect("the bench configuration is valid");
        config.provider(id).expect("configured").clone()
    }

    /// Every generated callback verifies with the gateway's own provider code, reads the ref
    /// the generator meant, and expects the acknowledgement lunas gives.
    #[test]
    fn every_generated_callback_verifies_with_the_gateway() {
        let known = Arc::new(KnownPool::new(
            (0..20).map(|i| format!("known-{i}")).collect(),
        ));
        let mut mix = Mix::new(7, "t".into(), Some(known), MixOptions::default());
        let providers: BTreeMap<&str, _> = ["iak", "idsl", "mcp"]
            .into_iter()
            .map(|p| (p, provider(p)))
            .collect();
        let mut classes = BTreeMap::new();
        for _ in 0..2000 {
            let req = mix.next_request();
            *classes.entry(req.class).or_insert(0) += 1;
            let mut headers = axum::http::HeaderMap::new();
            for (k, v) in req.headers() {
                headers.insert(k, v.parse().unwrap());
            }
            let verified = providers[req.provider]
                .provider
                .verify_callback(&headers, &req.body)
                .unwrap_or_else(|r| panic!("{:?} refused: {}", req.class, r.message));
            assert_eq!(verified.fact.reference, req.outcome.reference);
            assert_eq!(verified.ack.body.as_bytes(), &req.ack[..]);
            assert_eq!(verified.ack.status, 200);
        }
        assert_eq!(classes.len(), 8, "every class appears: {classes:?}");
    }

    #[test]
    fn refs_are_unique_per_prefix_and_finals_only_has_no_pending() {
        let options = MixOptions {
            finals_only: true,
            ..MixOptions::default()
        };
        let mut mix = Mix::new(1, "w0".into(), None, options);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let req = mix.next_request();
            assert!(
                seen.insert(req.outcome.reference.clone()),
                "one message per ref"
            );
            assert!(req.creates);
            assert!(req.outcome.event.is_some());
            assert_eq!(req.outcome.states.len(), 1);
        }
    }
}
