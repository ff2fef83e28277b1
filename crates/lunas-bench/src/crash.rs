//! The crash harness: under load, `kill -9` the gateway at random moments, restart it on the
//! same database each time, and check afterwards that every callback that was answered 200 is
//! in the store (in the state it implies, with its event) and that every event in the store
//! reaches the merchant's endpoint at least once.
//!
//! The gateway is `lunas serve` as a child process; the endpoint is a receiver in this process
//! that stays up across the kills (it verifies every signature and counts receipts per
//! `webhook-id`). State is read through the admin API of the last, unkilled gateway.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::gateway::{event_subject, Admin, GatewaySpec};
use crate::load::{self, LoadSpec, Stop};
use crate::mix::Outcome;
use crate::servers::Receiver;
use crate::util::{fresh_dir, group, secs, Result, Section};

#[derive(Debug, Clone)]
pub struct CrashOptions {
    pub lunas_bin: PathBuf,
    pub work_dir: PathBuf,
    pub seed: u64,
    pub kills: usize,
    pub concurrency: usize,
    /// Each kill comes at a uniformly random moment this long after the gateway is up.
    pub min_uptime: Duration,
    pub max_uptime: Duration,
    /// How long to wait, after the last restart, for every event to be delivered. Deliveries
    /// leased by a killed gateway are retried when their lease (60 s) runs out.
    pub delivery_bound: Duration,
    /// Whether an event still undelivered at the bound is a failure. A smoke run's bound is
    /// shorter than the 60 s lease of an attempt cut by a kill, so it only reports them.
    pub require_delivery: bool,
    pub postgres: Option<String>,
}

pub async fn run(o: &CrashOptions) -> Result<Section> {
    let mut problems = Vec::new();
    let mut body = String::new();
    if let Some(url) = &o.postgres {
        let _ = writeln!(body, "{}\n", postgres_note(o, url).await);
    }
    let dir = fresh_dir(&o.work_dir, "crash")?;
    let receiver = Receiver::start().await?;
    let spec = GatewaySpec {
        bin: o.lunas_bin.clone(),
        dir: dir.clone(),
        endpoint: Some(receiver.url()),
        storage_url: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let mut acked: Vec<Outcome> = Vec::new();
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut unanswered: HashMap<String, u64> = HashMap::new();
    let mut restart_times = Vec::new();
    let mut startup_kills = 0;
    let started = Instant::now();
    for epoch in 0..o.kills {
        if epoch % 5 == 4 {
            // Now and then also kill a gateway that is still starting (opening the database,
            // recovering the WAL, migrating), before it listens.
            let mut child = spec
                .command("info")?
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start lunas: {e}"))?;
            tokio::time::sleep(Duration::from_micros(rng.gen_range(0..=30_000))).await;
            let _ = child.start_kill();
            let _ = child.wait().await;
            startup_kills += 1;
        }
        let t = Instant::now();
        let gw = spec.start().await?;
        restart_times.push(t.elapsed());
        let flag = Arc::new(AtomicBool::new(false));
        let mut s = LoadSpec::new(
            format!("crash-e{epoch}"),
            format!("http://{}", gw.addr),
            o.concurrency,
            Stop::Flag(Arc::clone(&flag)),
        );
        s.seed = o.seed.wrapping_add(epoch as u64);
        s.keep_outcomes = true;
        let client = load::client(o.concurrency);
        let load = tokio::spawn(async move { load::run(&client, &s).await });
        let uptime = rng.gen_range(o.min_uptime..=o.max_uptime);
        // The moment of the kill is what is being varied: the one wait here is on purpose.
        tokio::time::sleep(uptime).await;
        gw.kill9().await?;
        flag.store(true, Ordering::Relaxed);
        let r = load.await.map_err(|e| format!("load task: {e}"))?;
        sent += r.sent;
        failed += r.failed();
        for (k, v) in &r.failures {
            *unanswered.entry(k.clone()).or_default() += v;
        }
        acked.extend(r.acked);
        if epoch % 10 == 9 || epoch + 1 == o.kills {
            eprintln!(
                "crash: {} kills, {} callbacks acknowledged so far",
                epoch + 1,
                acked.len()
            );
        }
    }
    let kill_phase = started.elapsed();

    // The last start: nothing is killed any more. Check the store, then wait for delivery.
    let gw = spec.start().await?;
    let admin = Admin::new(&gw);
    let txs = admin.all_transactions().await?;
    let events = admin.all_events().await?;
    let mut types: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for e in &events {
        types
            .entry(event_subject(e))
            .or_default()
            .insert(e["type"].as_str().unwrap_or_default().to_owned());
    }
    // The last acknowledged message of each transaction says the most.
    let mut latest: HashMap<(String, String), &Outcome> = HashMap::new();
    let mut needed_events = 0u64;
    for o in &acked {
        latest.insert((o.provider.to_owned(), o.reference.clone()), o);
    }
    let (mut found, mut lost) = (0u64, Vec::new());
    for o in &acked {
        let key = (o.provider.to_owned(), o.reference.clone());
        let Some(tx) = txs.get(&key) else {
            lost.push(format!("{}/{}: not in the store", o.provider, o.reference));
            continue;
        };
        let state = tx["state"].as_str().unwrap_or_default();
        if !o.states.contains(&state) {
            lost.push(format!(
                "{}/{}: state {state}, but an acknowledged callback implied one of {:?}",
                o.provider, o.reference, o.states
            ));
            continue;
        }
        if let Some(event) = o.event {
            needed_events += 1;
            if !types.get(&key).is_some_and(|t| t.contains(event)) {
                lost.push(format!(
                    "{}/{}: no {event} event in the feed",
                    o.provider, o.reference
                ));
                continue;
            }
        }
        found += 1;
    }
    let distinct_txs_acked = latest.len();
    let acked_keys: HashSet<&(String, String)> = latest.keys().collect();
    let committed_unacked = txs.keys().filter(|k| !acked_keys.contains(k)).count();

    let event_ids: HashSet<String> = events
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    let wait_started = Instant::now();
    let all_delivered = receiver
        .wait_for(o.delivery_bound, |r| {
            event_ids.iter().all(|id| r.by_id.contains_key(id))
        })
        .await;
    let waited = wait_started.elapsed();
    gw.kill9().await?;
    let received = receiver.received.lock().expect("receiver lock");
    let undelivered = event_ids
        .iter()
        .filter(|id| !received.by_id.contains_key(*id))
        .count();
    let unknown = received
        .by_id
        .keys()
        .filter(|id| !event_ids.contains(*id))
        .count();
    let duplicates: u64 = received.by_id.values().map(|v| v.len() as u64 - 1).sum();
    let twice = received.by_id.values().filter(|v| v.len() > 1).count();

    if o.kills < 50 {
        let _ = writeln!(
            body,
            "(A reduced run: {} kills; the full run makes at least 50.)\n",
            o.kills
        );
    }
    let _ = writeln!(
        body,
        "{} times: start `lunas serve` on the same database, send the ingest mix with {} \
         workers, and `kill -9` it at a random moment {}–{} ms after it is up (seeded). Then \
         start it once more, read every transaction and event through the admin API, and wait \
         (at most {} s) until the receiver has every event of the store. Every fifth time the \
         gateway is also killed once while starting (0–30 ms after exec, before it listens): \
         {startup_kills} such kills. Kill phase: {} s; restart to listening: median {} ms.\n",
        o.kills,
        o.concurrency,
        o.min_uptime.as_millis(),
        o.max_uptime.as_millis(),
        o.delivery_bound.as_secs(),
        secs(kill_phase),
        median_ms(&mut restart_times),
    );
    let _ = writeln!(
        body,
        "| figure | count |\n|---|---|\n\
         | callbacks sent | {} |\n\
         | **acknowledged (answered 200 with the ack)** | **{}** ({} transactions) |\n\
         | not answered (in flight at a kill: connection cut) | {} |\n\
         | **found** (in the store, in the state implied, with its event) | **{}** |\n\
         | **lost** (acknowledged but missing, wrong, or without its event) | **{}** |\n\
         | transactions committed although never acknowledged (killed before the answer) | {} |\n\
         | events in the store | {} (acknowledged callbacks needed {}) |\n\
         | events delivered at least once | {} (waited {} s after the last restart) |\n\
         | events not delivered | {} |\n\
         | **duplicate deliveries** (receipts beyond the first) | **{}** ({} events received more than once) |\n\
         | receipts of events not in the store / with a bad signature | {} / {} |",
        group(sent),
        group(acked.len() as u64),
        group(distinct_txs_acked as u64),
        group(failed),
        group(found),
        group(lost.len() as u64),
        group(committed_unacked as u64),
        group(event_ids.len() as u64),
        group(needed_events),
        group((event_ids.len() - undelivered) as u64),
        secs(waited),
        group(undelivered as u64),
        group(duplicates),
        group(twice as u64),
        group(unknown as u64),
        group(received.bad_signatures),
    );
    if !unanswered.is_empty() {
        let mut kinds: Vec<_> = unanswered.iter().collect();
        kinds.sort();
        let _ = writeln!(
            body,
            "\nUnanswered requests by kind: {}.",
            kinds
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(other) = unanswered.keys().find(|k| !k.starts_with("transport")) {
            problems.push(format!(
                "answers other than the acknowledgement or a cut connection: {other}"
            ));
        }
    }
    if !lost.is_empty() {
        problems.push(format!(
            "{} acknowledged callbacks lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    if (!all_delivered || undelivered > 0) && o.require_delivery {
        problems.push(format!(
            "{undelivered} events were not delivered within {} s",
            o.delivery_bound.as_secs()
        ));
    } else if undelivered > 0 {
        let _ = writeln!(
            body,
            "\n{undelivered} events were still undelivered at this run's short bound ({} s): an \
             attempt cut by a kill keeps its delivery leased for 60 s before it is retried. The \
             full run waits long enough for those and counts any left as a failure.",
            o.delivery_bound.as_secs()
        );
    }
    if received.bad_signatures > 0 || unknown > 0 {
        problems.push(format!(
            "{} deliveries with a bad signature, {unknown} of events not in the store",
            received.bad_signatures
        ));
    }
    let headline = vec![format!(
        "Crash: {} kills (-9) under load; {} acknowledged, {} found, **{} lost**; {} events, {} undelivered, {} duplicate deliveries.",
        o.kills,
        group(acked.len() as u64),
        group(found),
        lost.len(),
        group(event_ids.len() as u64),
        undelivered,
        group(duplicates)
    )];
    Ok(Section {
        title: "Crash harness: kill -9 under load".into(),
        body,
        headline,
        problems,
    })
}

fn median_ms(v: &mut [Duration]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort();
    format!("{:.0}", v[v.len() / 2].as_secs_f64() * 1000.0)
}

/// What happens with a PostgreSQL URL: lunas has no PostgreSQL backend yet, and says so.
async fn postgres_note(o: &CrashOptions, url: &str) -> String {
    let Ok(dir) = fresh_dir(&o.work_dir, "crash-postgres") else {
        return "PostgreSQL: not supported yet (could not prepare a directory to try).".into();
    };
    let spec = GatewaySpec {
        bin: o.lunas_bin.clone(),
        dir: dir.clone(),
        endpoint: None,
        storage_url: Some(url.to_owned()),
    };
    match spec.start().await {
        Ok(gw) => {
            let _ = gw.kill9().await;
            "PostgreSQL: **not supported yet** by this harness — lunas started with the URL, but \
             the crash run below is on SQLite only."
                .into()
        }
        Err(e) => {
            let why = e
                .lines()
                .find(|l| l.contains("PostgreSQL") || l.contains("postgres"))
                .unwrap_or("the gateway refused the URL")
                .trim()
                .to_owned();
            eprintln!("crash: --postgres: not supported yet ({why})");
            format!(
                "PostgreSQL: **not supported yet** — `lunas serve` with `--postgres` URL refused \
                 to start: \"{why}\". The crash run below is on SQLite only."
            )
        }
    }
}
