//! Delivery of events to the merchant's endpoints (the README's delivery section).
//!
//! Every committed event is fanned out to each endpoint whose filters match, as a durable
//! delivery row. The worker leases due deliveries, POSTs each as a Standard Webhooks message
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, body `{"type","timestamp","data"}`), and records the attempt. 2xx is
//! delivered; anything else is retried on the schedule with jitter (a longer `Retry-After` is
//! honoured), then dead-lettered, never dropped. A transaction's events reach an endpoint in
//! order: an event waits while an earlier one of the same transaction is undelivered there.
//! Each endpoint has its own share of the concurrency, so a slow or dead endpoint cannot stall
//! the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lunas_core::Attempt;
use lunas_store::{AttemptNext, AttemptRecord, DeliveryJob, EndpointFilter, Store, StoreError};
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::{DeadLetterPolicy, DeliveryConfig, EndpointConfig};
use crate::metrics::Metrics;

/// How much of an endpoint's answer is kept with the attempt.
const RESPONSE_SNIPPET: usize = 512;

/// An endpoint ready to sign and send.
struct Endpoint {
    config: EndpointConfig,
    /// One per secret, the newest first.
    webhooks: Vec<standardwebhooks::Webhook>,
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    pub fanned_out: usize,
    pub attempted: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// The delivery worker.
pub struct Deliverer {
    store: Arc<dyn Store>,
    endpoints: HashMap<String, Endpoint>,
    filters: Vec<EndpointFilter>,
    client: reqwest::Client,
    config: DeliveryConfig,
    in_flight: Mutex<HashMap<String, usize>>,
    metrics: Arc<Metrics>,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        endpoints: &[EndpointConfig],
        config: DeliveryConfig,
    ) -> Result<Self, String> {
        let map = endpoints
            .iter()
            .map(|e| Ok((e.id.clone(), Endpoint::new(e)?)))
            .collect::<Result<HashMap<_, _>, String>>()?;
        let client = http_client(&config)?;
        let filters = endpoints
            .iter()
            .map(|e| EndpointFilter {
                id: e.id.clone(),
                events: e.events.clone(),
            })
            .collect();
        Ok(Deliverer {
            store,
            endpoints: map,
            filters,
            client,
            config,
            in_flight: Mutex::new(HashMap::new()),
            metrics: Arc::default(),
        })
    }

    /// Counts attempts in `metrics` (the gateway's registry).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The endpoints' ids and filters, as the store needs them.
    pub fn filters(&self) -> &[EndpointFilter] {
        &self.filters
    }

    /// Starts new endpoints at the current end of the event feed.
    pub async fn init(&self) -> Result<(), StoreError> {
        self.store.init_endpoints(&self.filters).await
    }

    /// One deterministic round: fan out new events, claim what is due at `now`, attempt each
    /// (concurrently) and record the results. Tests drive the worker with this.
    pub async fn step(self: &Arc<Self>, now: OffsetDateTime) -> Result<StepReport, StoreError> {
        let mut report = StepReport {
            fanned_out: self.store.fan_out(&self.filters, now, 1000).await?,
            ..Default::default()
        };
        let jobs = self.claim(now).await?;
        let mut set = JoinSet::new();
        for job in jobs {
            let me = Arc::clone(self);
            set.spawn(async move { me.attempt(job, now).await });
        }
        while let Some(done) = set.join_next().await {
            report.attempted += 1;
            match done {
                Ok(Ok(true)) => report.delivered += 1,
                Ok(Ok(false)) => report.failed += 1,
                Ok(Err(e)) => return Err(e),
                Err(e) => {
                    return Err(StoreError::Unavailable(format!(
                        "delivery task failed: {e}"
                    )))
                }
            }
        }
        Ok(report)
    }

    /// Runs until `stop` is notified: claims due work whenever there is room, wakes on `wake`
    /// (new events) or every `poll` interval. Attempts in flight are finished before returning.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, stop: Arc<Notify>) {
        if self.endpoints.is_empty() {
            stop.notified().await;
            return;
        }
        let mut set: JoinSet<()> = JoinSet::new();
        let stopped = stop.notified();
        tokio::pin!(stopped);
        loop {
            let now = OffsetDateTime::now_utc();
            let mut claimed = 0;
            match self.store.fan_out(&self.filters, now, 1000).await {
                Ok(_) => match self.claim(now).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let me = Arc::clone(&self);
                            set.spawn(async move {
                                if let Err(e) = me.attempt(job, OffsetDateTime::now_utc()).await {
                                    tracing::warn!(error = %e, "delivery attempt not recorded; its lease will expire and it will be retried");
                                }
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim deliveries"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot fan out events"),
            }
            if claimed > 0 {
                // Reap what finished and go round again at once: there may be more due.
                while set.try_join_next().is_some() {}
                continue;
            }
            tokio::select! {
                _ = &mut stopped => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
                Some(_) = set.join_next(), if !set.is_empty() => {}
            }
        }
        // Finish the attempts in flight; what cannot finish in time is released by its lease.
        let _ = tokio::time::timeout(self.config.timeout + Duration::from_secs(1), async {
            while set.join_next().await.is_some() {}
        })
        .await;
    }

    /// Claims due deliveries for the endpoints that have room, and counts them in flight.
    async fn claim(&self, now: OffsetDateTime) -> Result<Vec<DeliveryJob>, StoreError> {
        // Each endpoint is claimed for separately, up to its free share, so one endpoint with a
        // long queue can neither take every slot nor strand leased work it has no room for.
        // A disabled endpoint is paused: its deliveries wait, none is sent.
        let mut ids: Vec<&String> = self
            .endpoints
            .iter()
            .filter(|(_, e)| e.config.enabled)
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        let mut jobs = Vec::new();
        for id in ids {
            let past_dead =
                self.endpoints[id].config.on_dead_letter == DeadLetterPolicy::DeliverLater;
            let (room, total_free) = {
                let in_flight = self.in_flight.lock().expect("in-flight lock");
                let busy: usize = in_flight.values().sum();
                let mine = in_flight.get(id).copied().unwrap_or(0);
                (
                    self.config.per_endpoint.saturating_sub(mine),
                    self.config.concurrency.saturating_sub(busy),
                )
            };
            let limit = room.min(total_free);
            if limit == 0 {
                continue;
            }
            let claimed = self
                .store
                .claim_deliveries(
                    now,
                    self.config.lease,
                    limit,
                    std::slice::from_ref(id),
                    past_dead,
                )
                .await?;
            *self
                .in_flight
                .lock()
                .expect("in-flight lock")
                .entry(id.clone())
                .or_default() += claimed.len();
            jobs.extend(claimed);
        }
        Ok(jobs)
    }

    /// POSTs one delivery and records the outcome. Returns whether it was delivered.
    async fn attempt(&self, job: DeliveryJob, now: OffsetDateTime) -> Result<bool, StoreError> {
        let result = self.send(&job, now).await;
        {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock");
            if let Some(n) = in_flight.get_mut(&job.endpoint) {
                *n = n.saturating_sub(1);
            }
        }
        let delivered = result.next == AttemptNext::Delivered;
        let outcome = match result.next {
            AttemptNext::Delivered => "delivered",
            AttemptNext::RetryAt(_) => "retry",
            AttemptNext::Dead => "dead",
        };
        let latency = Duration::from_micros(result.attempt.latency_us.max(0) as u64);
        self.metrics.delivery(&job.endpoint, outcome, latency);
        self.store.record_attempt(result).await?;
        Ok(delivered)
    }

    async fn send(&self, job: &DeliveryJob, now: OffsetDateTime) -> AttemptRecord {
        let tried = self.post(job).await;
        let delivered = tried.status.is_some_and(|s| (200..300).contains(&s));
        let next = if delivered {
            tracing::debug!(endpoint = %job.endpoint, event = %job.event.id, latency_ms = tried.latency_us as f64 / 1000.0, "event delivered");
            AttemptNext::Delivered
        } else {
            if tried.status == Some(410) {
                tracing::warn!(endpoint = %job.endpoint, "endpoint answered 410 Gone; deliveries continue on their schedule");
            }
            let draw = rand::thread_rng().gen_range(0..1000);
            match self
                .config
                .policy
                .next_wait(job.attempts as usize + 1, tried.retry_after, draw)
            {
                Some(wait) => AttemptNext::RetryAt(now + wait),
                None => {
                    let held = self
                        .endpoints
                        .get(&job.endpoint)
                        .is_some_and(|e| e.config.on_dead_letter == DeadLetterPolicy::Hold)
                        && job.event.transaction_id.is_some();
                    if held {
                        tracing::warn!(
                            endpoint = %job.endpoint,
                            event = %job.event.id,
                            "delivery dead-lettered after its schedule; later events of its transaction are held for this endpoint until it is redelivered (lunas events redeliver --event {})",
                            job.event.id
                        );
                    } else {
                        tracing::warn!(endpoint = %job.endpoint, event = %job.event.id, "delivery dead-lettered after its schedule");
                    }
                    AttemptNext::Dead
                }
            }
        };
        AttemptRecord {
            delivery_id: job.delivery_id,
            attempt: Attempt {
                at: now,
                status: tried.status,
                latency_us: tried.latency_us,
                response: tried.response,
                error: tried.error,
            },
            next,
        }
    }

    /// Signs and POSTs the event once.
    async fn post(&self, job: &DeliveryJob) -> Tried {
        let Some(endpoint) = self.endpoints.get(&job.endpoint) else {
            // Claims name configured endpoints only; kept for completeness.
            return Tried::error("endpoint no longer configured", 0);
        };
        post_signed(
            &self.client,
            endpoint,
            &job.event.id,
            message_body(&job.event),
            self.config.timeout,
        )
        .await
    }
}

impl Endpoint {
    fn new(e: &EndpointConfig) -> Result<Self, String> {
        let webhooks = e
            .secrets
            .iter()
            .map(|s| {
                standardwebhooks::Webhook::new(s.expose()).map_err(|err| {
                    format!(
                        "endpoint {:?}: a secret is not a valid whsec_ key ({err})",
                        e.id
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Endpoint {
            config: e.clone(),
            webhooks,
        })
    }
}

fn http_client(config: &DeliveryConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("lunas/", env!("CARGO_PKG_VERSION")))
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Signs `body` as message `id` with every secret of the endpoint and POSTs it once.
async fn post_signed(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    id: &str,
    body: String,
    timeout: Duration,
) -> Tried {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Signed with every secret of the endpoint, space-separated: a receiver holding either
    // the new or the old secret verifies it during a changeover.
    let mut signatures = Vec::with_capacity(endpoint.webhooks.len());
    for webhook in &endpoint.webhooks {
        match webhook.sign(id, timestamp, body.as_bytes()) {
            Ok(s) => signatures.push(s),
            Err(e) => return Tried::error(format!("cannot sign: {e}"), 0),
        }
    }
    let signature = signatures.join(" ");
    let started = Instant::now();
    let response = client
        .post(endpoint.config.url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match response {
        Ok(res) => {
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let response = read_snippet(res).await;
            Tried {
                status: Some(status),
                latency_us: started.elapsed().as_micros() as i64,
                response,
                error: None,
                retry_after,
            }
        }
        Err(e) => {
            let what = if e.is_timeout() {
                format!("timed out after {} ms", timeout.as_millis())
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                format!("request failed: {}", error_chain(&e))
            };
            Tried::error(what, started.elapsed().as_micros() as i64)
        }
    }
}

/// The deliveries held at `endpoint` behind a dead letter: none where it delivers past them.
pub fn held(endpoint: &EndpointConfig, stats: &lunas_store::EndpointStats) -> i64 {
    match endpoint.on_dead_letter {
        DeadLetterPolicy::Hold => stats.held,
        DeadLetterPolicy::DeliverLater => 0,
    }
}

/// The type of the event [`send_test`] sends. It is never stored, retried or counted, and
/// no subscription filters it out.
pub const TEST_EVENT_TYPE: &str = "endpoint.test";

/// What a test event's one POST came back with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestDelivery {
    pub endpoint: String,
    pub url: String,
    /// The `webhook-id` it was signed with.
    pub webhook_id: String,
    /// The endpoint answered 2xx.
    pub delivered: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    /// The first 512 bytes of the endpoint's answer.
    pub response: Option<String>,
    /// Why no answer came (connection refused, timeout).
    pub error: Option<String>,
    /// The body sent, as it was signed.
    pub body: String,
}

/// Signs and POSTs one `endpoint.test` event to the endpoint `endpoint_id` now, exactly as a
/// delivery is signed (every secret of the endpoint), so that a merchant can check the
/// handler's verification before a real event comes. Nothing is stored. `Err`: no such
/// endpoint, or its secrets cannot sign.
pub async fn send_test(
    endpoints: &[EndpointConfig],
    config: &DeliveryConfig,
    endpoint_id: &str,
    now: OffsetDateTime,
) -> Result<TestDelivery, String> {
    let configured = endpoints
        .iter()
        .find(|e| e.id == endpoint_id)
        .ok_or_else(|| format!("no endpoint {endpoint_id:?} is configured"))?;
    let endpoint = Endpoint::new(configured)?;
    let id = format!("msg_test_{}", uuid::Uuid::now_v7().simple());
    let body = serde_json::json!({
        "type": TEST_EVENT_TYPE,
        "timestamp": lunas_core::rfc3339(now),
        "data": {
            "endpoint": endpoint_id,
            "message": "a test event from lunas: if your handler verified this signature, \
                        it will verify real deliveries too; answer 2xx",
        },
    })
    .to_string();
    let tried = post_signed(
        &http_client(config)?,
        &endpoint,
        &id,
        body.clone(),
        config.timeout,
    )
    .await;
    Ok(TestDelivery {
        endpoint: endpoint_id.to_owned(),
        url: configured.url.to_string(),
        webhook_id: id,
        delivered: tried.status.is_some_and(|s| (200..300).contains(&s)),
        status: tried.status,
        latency_ms: tried.latency_us as f64 / 1000.0,
        response: tried.response,
        error: tried.error,
        body,
    })
}

/// What one POST came back with.
struct Tried {
    status: Option<u16>,
    /// Microseconds.
    latency_us: i64,
    response: Option<String>,
    error: Option<String>,
    retry_after: Option<Duration>,
}

impl Tried {
    fn error(what: impl Into<String>, latency_us: i64) -> Self {
        Tried {
            status: None,
            latency_us,
            response: None,
            error: Some(what.into()),
            retry_after: None,
        }
    }
}

/// The body every endpoint receives for an event: the same bytes on every attempt.
pub fn message_body(event: &lunas_core::Event) -> String {
    serde_json::json!({
        "type": event.event_type.as_str(),
        "timestamp": lunas_core::rfc3339(event.created_at),
        "data": event.data,
    })
    .to_string()
}

async fn read_snippet(res: reqwest::Response) -> Option<String> {
    let bytes = res.bytes().await.ok()?;
    if bytes.is_empty() {
        return None;
    }
    let cut = &bytes[..bytes.len().min(RESPONSE_SNIPPET)];
    Some(String::from_utf8_lossy(cut).into_owned())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
