//! Delivery: events per second end to end, from the provider's callback to the merchant's 2xx,
//! through a gateway with one endpoint (a receiver in this process on 127.0.0.1:0) and the
//! default `[delivery]` settings.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::gateway::GatewaySpec;
use crate::load::{self, LoadSpec, Stop};
use crate::mix::{MixOptions, Request};
use crate::servers::Receiver;
use crate::util::{
    fresh_dir, group, histogram, ms, rate, record, secs, Percentiles, Result, Section,
};

#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub lunas_bin: PathBuf,
    pub work_dir: PathBuf,
    pub seed: u64,
    /// Callbacks to send (each a new transaction with its outcome).
    pub callbacks: u64,
    pub concurrency: usize,
    /// How long to wait for the last event after the last callback.
    pub drain_bound: Duration,
}

pub async fn run(o: &DeliveryOptions) -> Result<Section> {
    let dir = fresh_dir(&o.work_dir, "delivery")?;
    let receiver = Receiver::start().await?;
    let spec = GatewaySpec {
        bin: o.lunas_bin.clone(),
        dir: dir.clone(),
        endpoint: Some(receiver.url()),
        storage_url: None,
    };
    let gw = spec.start().await?;
    eprintln!("delivery: lunas pid {} on {}", gw.pid, gw.addr);
    let mut problems = Vec::new();

    // When each transaction's callback was sent, to measure each event end to end.
    let sent_at: Arc<Mutex<HashMap<(String, String), Instant>>> = Arc::default();
    // Every event each transaction must produce.
    let mut s = LoadSpec::new(
        "delivery",
        format!("http://{}", gw.addr),
        o.concurrency,
        Stop::Requests(o.callbacks),
    );
    s.seed = o.seed;
    s.keep_outcomes = true;
    s.mix = MixOptions {
        finals_only: true,
        ..MixOptions::default()
    };
    let noted = Arc::clone(&sent_at);
    s.on_send = Some(Arc::new(move |r: &Request| {
        noted.lock().expect("sent-at lock").insert(
            (r.outcome.provider.to_owned(), r.outcome.reference.clone()),
            Instant::now(),
        );
    }));
    let started = Instant::now();
    let client = load::client(o.concurrency);
    let ingest = load::run(&client, &s).await;
    let ingest_done = Instant::now();
    if ingest.failed() > 0 {
        problems.push(format!(
            "{} callbacks were not acknowledged: {:?}; e.g. {:?}",
            ingest.failed(),
            ingest.failures,
            ingest.samples
        ));
    }
    // A paid VA produces two events (the payment and `va.paid`), an IAK outcome one.
    let expected: usize = ingest
        .acked
        .iter()
        .map(|o| if o.event == Some("va.paid") { 2 } else { 1 })
        .sum();
    let complete = receiver
        .wait_for(o.drain_bound, |r| r.by_id.len() >= expected)
        .await;
    let peak_rss = gw.peak_rss_kib();
    gw.kill9().await?;

    let received = receiver.received.lock().expect("receiver lock");
    let distinct = received.by_id.len();
    let duplicates = received.total - distinct as u64;
    if !complete {
        problems.push(format!(
            "only {distinct} of {expected} events arrived within {} s of the last callback",
            o.drain_bound.as_secs()
        ));
    }
    if received.bad_signatures > 0 {
        problems.push(format!(
            "{} deliveries had a signature the receiver could not verify",
            received.bad_signatures
        ));
    }
    let sent_at = sent_at.lock().expect("sent-at lock");
    let mut e2e = histogram();
    for receipts in received.by_id.values() {
        let first = &receipts[0];
        if let Some(t) = sent_at.get(&(first.provider.clone(), first.reference.clone())) {
            record(&mut e2e, first.at.saturating_duration_since(*t));
        }
    }
    let last = received.last.unwrap_or(ingest_done);
    let span = last.saturating_duration_since(started);
    let events_per_s = distinct as f64 / span.as_secs_f64().max(1e-9);
    let drain = last.saturating_duration_since(ingest_done);
    // Events that arrived after the last callback was acknowledged: the backlog's own rate.
    let after_ingest = received
        .by_id
        .values()
        .filter(|r| r[0].at > ingest_done)
        .count();
    let drain_rate = after_ingest as f64 / drain.as_secs_f64().max(1e-9);
    let p = Percentiles::of(&e2e);
    let ip = ingest.percentiles();

    let mut body = String::new();
    let _ = writeln!(
        body,
        "{} callbacks (IAK/IDSL outcomes and paid VAs, each a new transaction), sent by {} \
         workers as fast as lunas acknowledged them, to a gateway with one `[[endpoints]]` (a \
         receiver in the harness process that verifies every Standard Webhooks signature and \
         answers 204) and the default `[delivery]` settings (concurrency 32, 8 per endpoint).\n",
        group(o.callbacks),
        o.concurrency
    );
    let _ = writeln!(
        body,
        "| figure | value |\n|---|---|\n\
         | callbacks acknowledged | {} ({} callbacks/s over {} s; p99 {} ms) |\n\
         | events expected / delivered (distinct) | {} / {} |\n\
         | deliveries received more than once | {} |\n\
         | first callback → last event | {} s |\n\
         | **end-to-end delivery throughput** | **{} events/s** |\n\
         | backlog after the last callback: events, drained in, rate | {}, {} s, {} events/s |\n\
         | callback sent → event received, p50 / p90 / p99 / max | {} / {} / {} / {} ms |\n\
         | lunas peak RSS | {} |",
        group(ingest.ok),
        rate(ingest.throughput()),
        secs(ingest.elapsed),
        ms(ip.p99),
        group(expected as u64),
        group(distinct as u64),
        group(duplicates),
        secs(span),
        rate(events_per_s),
        group(after_ingest as u64),
        secs(drain),
        rate(drain_rate),
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.max),
        peak_rss.map_or("unknown".into(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        )),
    );
    let headline = vec![format!(
        "Delivery: {} events/s end to end (callback → merchant 2xx), {} of {} events delivered, {} received twice.",
        rate(events_per_s),
        group(distinct as u64),
        group(expected as u64),
        group(duplicates)
    )];
    Ok(Section {
        title: "Delivery: events per second, callback to merchant 2xx".into(),
        body,
        headline,
        problems,
    })
}
