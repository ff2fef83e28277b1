//! The load generator: N workers over keep-alive connections, closed loop (each worker sends
//! its next callback as soon as the last is answered) or open loop at a fixed rate, for a
//! fixed duration, a fixed number of requests, or until told to stop. Every answer is checked
//! (status and exact acknowledgement body); latencies go to an HDR histogram.
//!
//! In the open loop each request has a scheduled send time. Two latencies are kept: from the
//! actual send (what the server took) and from the scheduled time, so that a stalled server is
//! also charged for the requests it delayed (no coordinated omission); the second includes the
//! timer's granularity (about 1 ms) in the generator.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::mix::{Class, KnownPool, Mix, MixOptions, Outcome, Request, SUCCESS_JSON};
use crate::util::{histogram, record, Percentiles};

/// When a run stops.
#[derive(Debug, Clone)]
pub enum Stop {
    After(Duration),
    Requests(u64),
    /// When the flag is raised (the crash harness raises it when it kills the gateway).
    Flag(Arc<AtomicBool>),
}

/// A hook called with each callback just before it is sent.
pub type OnSend = Arc<dyn Fn(&Request) + Send + Sync>;

/// One run's parameters.
#[derive(Clone)]
pub struct LoadSpec {
    pub label: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The target is the baseline server: every answer is `{"message":"SUCCESS"}`.
    pub baseline: bool,
    pub concurrency: usize,
    /// Requests per second, open loop; `None`: closed loop, as fast as answers come.
    pub rate: Option<f64>,
    pub stop: Stop,
    pub seed: u64,
    /// Unique per run: refs are `<prefix>-w<worker>-<n>`.
    pub prefix: String,
    pub known: Option<Arc<KnownPool>>,
    pub mix: MixOptions,
    /// Keep the outcome of every acknowledged callback (the crash harness checks them).
    pub keep_outcomes: bool,
    /// Called with each callback just before it is sent (the delivery benchmark notes the time).
    pub on_send: Option<OnSend>,
}

impl LoadSpec {
    pub fn new(label: impl Into<String>, base: String, concurrency: usize, stop: Stop) -> Self {
        let label = label.into();
        LoadSpec {
            prefix: label.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            label,
            base,
            baseline: false,
            concurrency,
            rate: None,
            stop,
            seed: 1,
            known: None,
            mix: MixOptions::default(),
            keep_outcomes: false,
            on_send: None,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub label: String,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub sent: u64,
    /// Answered with the expected status and body.
    pub ok: u64,
    /// Everything else, by kind (`status 503 storage_unavailable`, `transport: ...`).
    pub failures: BTreeMap<String, u64>,
    /// A few failures in full, to show.
    pub samples: Vec<String>,
    /// From the send to the whole answer.
    pub latency: Histogram<u64>,
    /// From the scheduled send time (open loop; the same as `latency` in the closed loop).
    pub scheduled_latency: Histogram<u64>,
    pub classes: BTreeMap<Class, u64>,
    pub created: u64,
    /// Acknowledged callbacks, when `keep_outcomes`.
    pub acked: Vec<Outcome>,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(&self.latency)
    }

    pub fn scheduled_percentiles(&self) -> Percentiles {
        Percentiles::of(&self.scheduled_latency)
    }
}

/// A client for load: keep-alive, no idle limit, Nagle off, bounded per request.
pub fn client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1) * 2)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the load client builds")
}

struct Worker {
    ok: u64,
    sent: u64,
    failures: BTreeMap<String, u64>,
    samples: Vec<String>,
    latency: Histogram<u64>,
    scheduled_latency: Histogram<u64>,
    classes: BTreeMap<Class, u64>,
    created: u64,
    acked: Vec<Outcome>,
    last: Instant,
}

/// Runs the load and returns what it measured.
pub async fn run(client: &reqwest::Client, spec: &LoadSpec) -> LoadResult {
    let started = Instant::now();
    let budget = Arc::new(AtomicU64::new(match spec.stop {
        Stop::Requests(n) => n,
        _ => u64::MAX,
    }));
    let mut set = JoinSet::new();
    for w in 0..spec.concurrency {
        let client = client.clone();
        let spec = spec.clone();
        let budget = Arc::clone(&budget);
        set.spawn(async move { worker(client, spec, w, started, budget).await });
    }
    let mut result = LoadResult {
        label: spec.label.clone(),
        concurrency: spec.concurrency,
        elapsed: Duration::ZERO,
        sent: 0,
        ok: 0,
        failures: BTreeMap::new(),
        samples: Vec::new(),
        latency: histogram(),
        scheduled_latency: histogram(),
        classes: BTreeMap::new(),
        created: 0,
        acked: Vec::new(),
    };
    let mut last = started;
    while let Some(done) = set.join_next().await {
        let w = done.expect("a load worker panicked");
        result.sent += w.sent;
        result.ok += w.ok;
        result.created += w.created;
        for (k, v) in w.failures {
            *result.failures.entry(k).or_default() += v;
        }
        for s in w.samples {
            if result.samples.len() < 5 {
                result.samples.push(s);
            }
        }
        result
            .latency
            .add(&w.latency)
            .expect("histograms of the same bounds");
        result
            .scheduled_latency
            .add(&w.scheduled_latency)
            .expect("histograms of the same bounds");
        for (k, v) in w.classes {
            *result.classes.entry(k).or_default() += v;
        }
        result.acked.extend(w.acked);
        last = last.max(w.last);
    }
    // Throughput over the measured window: requests in flight at the end still count, and so
    // does the time they took.
    result.elapsed = last.duration_since(started);
    result
}

async fn worker(
    client: reqwest::Client,
    spec: LoadSpec,
    w: usize,
    started: Instant,
    budget: Arc<AtomicU64>,
) -> Worker {
    let mut mix = Mix::new(
        spec.seed.wrapping_mul(1_000_003).wrapping_add(w as u64),
        format!("{}-w{w}", spec.prefix),
        spec.known.clone(),
        spec.mix,
    );
    let mut me = Worker {
        ok: 0,
        sent: 0,
        failures: BTreeMap::new(),
        samples: Vec::new(),
        latency: histogram(),
        scheduled_latency: histogram(),
        classes: BTreeMap::new(),
        created: 0,
        acked: Vec::new(),
        last: started,
    };
    let deadline = match spec.stop {
        Stop::After(d) => Some(started + d),
        _ => None,
    };
    // Open loop: worker w sends its k-th request at started + (k * concurrency + w) / rate.
    let interval = spec
        .rate
        .map(|r| Duration::from_secs_f64(spec.concurrency as f64 / r.max(1e-9)));
    let offset = spec
        .rate
        .map(|r| Duration::from_secs_f64(w as f64 / r.max(1e-9)))
        .unwrap_or_default();
    let mut k: u32 = 0;
    loop {
        if let Stop::Flag(flag) = &spec.stop {
            if flag.load(Ordering::Relaxed) {
                break;
            }
        }
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            break;
        }
        let scheduled = match interval {
            Some(iv) => {
                let at = started + offset + iv * k;
                k += 1;
                if deadline.is_some_and(|d| at >= d) {
                    break;
                }
                // Pacing the load is the one place the harness waits on the clock.
                tokio::time::sleep_until(at.into()).await;
                at
            }
            None => {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    break;
                }
                now
            }
        };
        let req = mix.next_request();
        if let Some(f) = &spec.on_send {
            f(&req);
        }
        let sent_at = Instant::now();
        let verdict = send(&client, &spec, &req).await;
        let done = Instant::now();
        me.sent += 1;
        me.last = me.last.max(done);
        match verdict {
            Ok(()) => {
                me.ok += 1;
                record(&mut me.latency, done.duration_since(sent_at));
                record(&mut me.scheduled_latency, done.duration_since(scheduled));
                *me.classes.entry(req.class).or_default() += 1;
                if req.creates {
                    me.created += 1;
                }
                if spec.keep_outcomes {
                    me.acked.push(req.outcome.clone());
                }
            }
            Err((kind, detail)) => {
                let transport = kind.starts_with("transport");
                *me.failures.entry(kind).or_default() += 1;
                if me.samples.len() < 3 {
                    me.samples.push(detail);
                }
                // A dead server (the crash harness killed it): stop rather than spin.
                if transport && matches!(spec.stop, Stop::Flag(_)) {
                    break;
                }
            }
        }
    }
    me
}

/// Sends one callback and checks its answer: `Err((kind, detail))` when it is not the exact
/// acknowledgement.
async fn send(
    client: &reqwest::Client,
    spec: &LoadSpec,
    req: &Request,
) -> Result<(), (String, String)> {
    let url = format!("{}/callbacks/{}", spec.base, req.provider);
    let mut builder = client.post(&url).body(req.body.clone());
    for (k, v) in req.headers() {
        builder = builder.header(k, v);
    }
    let res = builder.send().await.map_err(|e| {
        (
            format!("transport: {}", transport_kind(&e)),
            format!("{url}: {e}"),
        )
    })?;
    let status = res.status().as_u16();
    let body = res.bytes().await.map_err(|e| {
        (
            format!("transport: {}", transport_kind(&e)),
            format!("{url}: reading the answer: {e}"),
        )
    })?;
    let expected: &[u8] = if spec.baseline {
        SUCCESS_JSON.as_bytes()
    } else {
        &req.ack
    };
    if status == 200 && body == expected {
        return Ok(());
    }
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            if status == 200 {
                "unexpected body".into()
            } else {
                "-".into()
            }
        });
    Err((
        format!("status {status} {code}"),
        format!(
            "{} {} → {status}: {}",
            req.class.as_str(),
            req.outcome.reference,
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ),
    ))
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}
