//! Sending callbacks: planning (with the fault knobs), the outbox, one attempt over HTTP,
//! retries, and [`Sandbox::run_due`], the one step that both tests and the background
//! dispatcher of [`Sandbox::serve`] use.
//!
//! An attempt is accepted as the account's family says: any 2xx by default (IAK/IDSL, which
//! document no answer), only 200 for MCPayment, as its documents say. An unaccepted attempt is
//! retried after the account's `retry_delays_ms` in production, and in development too when
//! the family says so (MCPayment); an IAK/IDSL development account's callbacks are sent once,
//! when reported.

use std::time::Duration;

use axum::http::header;
use time::OffsetDateTime;

use crate::clock;
use crate::log::{CallbackKind, CallbackOutcome, CallbackRecord};
use crate::state::Job;
use crate::Sandbox;

/// The most of a receiver's answer kept in the log.
const RESPONSE_KEEP: usize = 1024;

/// One callback to send.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub account: usize,
    pub reference: String,
    pub kind: CallbackKind,
    pub url: Option<String>,
    pub body: String,
    pub content_type: &'static str,
    pub mcp_signature: Option<String>,
    pub signature_wrong: bool,
    /// The attempt this delivery makes, from 1.
    pub attempt: u32,
}

/// The callbacks one event produces: some to send at once, some later.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Deliveries with the time each falls due, in sending order.
    pub deliveries: Vec<(OffsetDateTime, Delivery)>,
    /// Records of callbacks not sent on purpose (`drop` fault).
    pub dropped: Vec<CallbackRecord>,
}

impl Plan {
    /// The plan of an event's first callback under the account's fault decisions: with `drop`
    /// nothing is sent and the callback is logged as dropped (`None`: plan nothing more);
    /// otherwise it is due at `due`, twice with `duplicate`.
    pub(crate) fn primary(
        log: &mut crate::log::Log,
        account_id: &str,
        now: OffsetDateTime,
        due: OffsetDateTime,
        primary: Delivery,
        decisions: &crate::faults::Decisions,
    ) -> (Plan, bool) {
        let mut plan = Plan::default();
        if decisions.drop {
            let record = primary.record(
                account_id,
                now,
                CallbackOutcome::Dropped,
                None,
                Some("not sent: drop fault".to_owned()),
                None,
            );
            plan.dropped.push(log.callback(record));
            return (plan, false);
        }
        plan.deliveries.push((due, primary.clone()));
        if decisions.duplicate {
            plan.deliveries.push((
                due,
                Delivery {
                    kind: CallbackKind::Duplicate,
                    ..primary
                },
            ));
        }
        (plan, true)
    }
}

/// What came back from one attempt.
#[derive(Debug)]
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
    response_body: Option<String>,
}

impl Delivery {
    /// A log record of this delivery with the given result.
    pub(crate) fn record(
        &self,
        account_id: &str,
        now: OffsetDateTime,
        outcome: CallbackOutcome,
        status: Option<u16>,
        error: Option<String>,
        response_body: Option<String>,
    ) -> CallbackRecord {
        CallbackRecord {
            seq: 0,
            at: clock::rfc3339(now),
            account: account_id.to_owned(),
            url: self.url.clone(),
            reference: self.reference.clone(),
            kind: self.kind,
            attempt: if matches!(outcome, CallbackOutcome::Dropped | CallbackOutcome::Skipped) {
                0
            } else {
                self.attempt
            },
            outcome,
            http_status: status,
            error,
            signature_wrong: self.signature_wrong,
            content_type: self.content_type.to_owned(),
            mcp_signature: self.mcp_signature.clone(),
            body: self.body.clone(),
            response_body,
        }
    }
}

async fn send(client: &reqwest::Client, d: &Delivery, url: &str, timeout: Duration) -> Attempt {
    let mut request = client
        .post(url)
        .timeout(timeout)
        .header(header::CONTENT_TYPE, d.content_type)
        .body(d.body.clone());
    if let Some(sig) = &d.mcp_signature {
        request = request.header(lunas_protocol::mcp::HEADER_SIGNATURE, sig);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.bytes().await.ok().map(|b| {
                let keep = &b[..b.len().min(RESPONSE_KEEP)];
                String::from_utf8_lossy(keep).into_owned()
            });
            Attempt {
                status: Some(status),
                error: None,
                response_body: body,
            }
        }
        Err(e) => Attempt {
            status: None,
            error: Some(describe(&e)),
            response_body: None,
        },
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

impl Sandbox {
    /// Sends every callback that is due now: production outcomes whose delay has passed,
    /// VA expiries, scheduled follow-ups and retries. Repeats until nothing more is due (so a
    /// retry with a zero delay is made in the same call) and returns the number of attempts
    /// made. The background dispatcher of [`Sandbox::serve`] calls exactly this; once
    /// `serve` is shutting down, the attempt in flight is finished and the rest left queued.
    pub async fn run_due(&self) -> usize {
        let mut attempts = 0;
        loop {
            let now = self.now();
            let due = {
                let mut st = self.lock();
                self.settle(&mut st, now);
                st.take_due(now, false)
            };
            if due.is_empty() {
                return attempts;
            }
            let mut jobs = due.into_iter();
            while let Some(job) = jobs.next() {
                if *self.inner.shutdown.borrow() {
                    // Shutting down: what was not started goes back, nothing is half-sent.
                    let mut st = self.lock();
                    for job in std::iter::once(job).chain(jobs) {
                        st.schedule(now, job);
                    }
                    return attempts;
                }
                if let Job::Deliver(d) = job {
                    if d.url.is_some() {
                        attempts += 1;
                    }
                    self.deliver(d).await;
                }
            }
        }
    }

    /// Makes one attempt (or records why none is made), logs it, and schedules the retry of an
    /// unaccepted attempt when the account retries.
    pub(crate) async fn deliver(&self, d: Delivery) -> CallbackRecord {
        let account = &self.inner.accounts[d.account];
        let Some(url) = d.url.clone() else {
            let now = self.now();
            let record = d.record(
                &account.id,
                now,
                CallbackOutcome::Skipped,
                None,
                Some("no callback URL: configure callback_url".to_owned()),
                None,
            );
            return self.lock().log.callback(record);
        };
        let attempt = send(&self.inner.client, &d, &url, account.callback_timeout).await;
        let accepted = attempt
            .status
            .is_some_and(|s| account.kind.family().accepts(s));
        let outcome = match (accepted, attempt.status) {
            (true, _) => CallbackOutcome::Accepted,
            (false, Some(_)) => CallbackOutcome::Rejected,
            (false, None) => CallbackOutcome::Error,
        };
        let now = self.now();
        tracing::info!(
            account = %account.id,
            reference = %d.reference,
            kind = d.kind.as_str(),
            attempt = d.attempt,
            status = ?attempt.status,
            error = attempt.error.as_deref().unwrap_or("-"),
            accepted,
            "sandbox callback"
        );
        let record = d.record(
            &account.id,
            now,
            outcome,
            attempt.status,
            attempt.error,
            attempt.response_body,
        );
        let mut st = self.lock();
        let record = st.log.callback(record);
        if !accepted && account.retries_callbacks() {
            let index = usize::try_from(d.attempt.saturating_sub(1)).unwrap_or(usize::MAX);
            if let Some(wait) = account.retry_delays.get(index) {
                let mut retry = d;
                retry.attempt += 1;
                st.schedule(now + *wait, Job::Deliver(retry));
                drop(st);
                self.inner.wake.notify_one();
            }
        }
        record
    }

    /// Carries a plan out: the deliveries due now are sent at once, in order (their records are
    /// returned, with those of dropped callbacks); later ones go to the outbox.
    pub(crate) async fn execute(&self, plan: Plan) -> Vec<CallbackRecord> {
        let mut records = plan.dropped;
        let now = self.now();
        let mut later = Vec::new();
        for (due, d) in plan.deliveries {
            if due <= now && later.is_empty() {
                records.push(self.deliver(d).await);
            } else {
                later.push((due, d));
            }
        }
        if !later.is_empty() {
            let mut st = self.lock();
            for (due, d) in later {
                st.schedule(due, Job::Deliver(d));
            }
            drop(st);
            self.inner.wake.notify_one();
        }
        records
    }

    /// How many deliveries about `reference` wait in the outbox.
    pub(crate) fn waiting(&self, reference: &str) -> usize {
        self.lock()
            .outbox
            .values()
            .filter(|j| matches!(j, Job::Deliver(d) if d.reference == reference))
            .count()
    }

    /// Puts a plan's deliveries in the outbox, to be sent by [`Sandbox::run_due`].
    pub(crate) fn enqueue(st: &mut crate::state::State, plan: Plan) {
        for (due, d) in plan.deliveries {
            st.schedule(due, Job::Deliver(d));
        }
    }
}
