//! Ingest: lunas' durable callback throughput and latency against a do-nothing baseline, the
//! latency at half of lunas' maximum throughput, commit-per-request (concurrency 1) against
//! group commit, and the gateway's peak RSS.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::{Admin, GatewaySpec};
use crate::load::{self, LoadResult, LoadSpec, Stop};
use crate::mix::KnownPool;
use crate::servers;
use crate::util::{
    fresh_dir, group, ms, rate, secs, table, ChildServer, Percentiles, Result, Section,
};

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub lunas_bin: PathBuf,
    pub work_dir: PathBuf,
    pub seed: u64,
    /// Concurrencies of the closed-loop sweep; the best is "maximum throughput".
    pub concurrency: Vec<usize>,
    /// Length of each measured run.
    pub duration: Duration,
    /// Fixed request count per run instead of a duration.
    pub requests: Option<u64>,
    /// Unmeasured warm-up before each server's runs.
    pub warmup: Duration,
    /// Length of the concurrency-1 (commit per request) run.
    pub serial_duration: Duration,
    /// Refs registered through the admin API before each lunas run, for the "known" share.
    pub known_per_run: usize,
}

/// One line of the sweep: lunas and the baseline at the same concurrency.
struct Pair {
    concurrency: usize,
    lunas: LoadResult,
    baseline: LoadResult,
}

pub async fn run(o: &IngestOptions) -> Result<Section> {
    let dir = fresh_dir(&o.work_dir, "ingest")?;
    let mut problems = Vec::new();
    let stop = || match o.requests {
        Some(n) => Stop::Requests(n),
        None => Stop::After(o.duration),
    };
    let max_c = o.concurrency.iter().copied().max().unwrap_or(64);

    // --- lunas -------------------------------------------------------------------------------
    let spec = GatewaySpec {
        bin: o.lunas_bin.clone(),
        dir: dir.join("lunas"),
        endpoint: None,
        storage_url: None,
    };
    std::fs::create_dir_all(&spec.dir).map_err(|e| e.to_string())?;
    let gw = spec.start().await?;
    eprintln!("ingest: lunas pid {} on {}", gw.pid, gw.addr);
    let base = format!("http://{}", gw.addr);
    let client = load::client(max_c);

    let warm = {
        let mut s = LoadSpec::new("ingest-warmup", base.clone(), max_c, Stop::After(o.warmup));
        s.seed = o.seed;
        load::run(&client, &s).await
    };
    check(&warm, &mut problems);

    let mut lunas_runs = Vec::new();
    for (i, &c) in o.concurrency.iter().enumerate() {
        let known = register_known(&gw, &format!("known{i}"), o.known_per_run).await?;
        let mut s = LoadSpec::new(format!("ingest-c{c}"), base.clone(), c, stop());
        s.seed = o.seed + i as u64;
        s.known = Some(Arc::clone(&known));
        let r = load::run(&client, &s).await;
        eprintln!(
            "ingest: lunas c={c}: {} req/s, p99 {} ms, {} failed",
            rate(r.throughput()),
            ms(r.percentiles().p99),
            r.failed()
        );
        check(&r, &mut problems);
        lunas_runs.push(r);
    }
    let best = lunas_runs
        .iter()
        .max_by(|a, b| a.throughput().total_cmp(&b.throughput()))
        .expect("at least one concurrency");
    let max_tput = best.throughput();
    let best_c = best.concurrency;

    // Commit per request: one request in flight, so every commit holds one callback.
    let serial = {
        let mut s = LoadSpec::new(
            "ingest-serial",
            base.clone(),
            1,
            Stop::After(o.serial_duration),
        );
        s.seed = o.seed + 100;
        load::run(&client, &s).await
    };
    check(&serial, &mut problems);
    eprintln!(
        "ingest: lunas c=1: {} req/s, p50 {} ms",
        rate(serial.throughput()),
        ms(serial.percentiles().p50)
    );

    // Half of the maximum, open loop.
    let half = {
        let mut s = LoadSpec::new("ingest-half", base.clone(), max_c, stop());
        s.seed = o.seed + 200;
        s.rate = Some(max_tput / 2.0);
        load::run(&client, &s).await
    };
    check(&half, &mut problems);
    eprintln!(
        "ingest: lunas at {} req/s: p99 {} ms",
        rate(max_tput / 2.0),
        ms(half.percentiles().p99)
    );
    let peak_rss = gw.peak_rss_kib();
    gw.kill9().await?;

    // The same at the best concurrency without a log line per callback.
    let quiet = {
        // `lunas::cli=info` keeps the start-up lines, which say where it listens.
        let gw = spec.start_logging("warn,lunas::cli=info").await?;
        let base = format!("http://{}", gw.addr);
        let mut s = LoadSpec::new(
            "ingest-quiet-warmup",
            base.clone(),
            best_c,
            Stop::After(o.warmup),
        );
        s.seed = o.seed + 300;
        check(&load::run(&client, &s).await, &mut problems);
        let mut s = LoadSpec::new(format!("ingest-quiet-c{best_c}"), base, best_c, stop());
        s.seed = o.seed + 301;
        let r = load::run(&client, &s).await;
        check(&r, &mut problems);
        eprintln!(
            "ingest: lunas c={best_c}, LUNAS_LOG=warn: {} req/s",
            rate(r.throughput())
        );
        gw.kill9().await?;
        r
    };
    let db_size = std::fs::metadata(spec.db_path()).map(|m| m.len()).ok();

    // --- the baseline ---------------------------------------------------------------------------
    let bdir = dir.join("baseline");
    std::fs::create_dir_all(&bdir).map_err(|e| e.to_string())?;
    let baseline = servers::start_baseline(&bdir).await?;
    eprintln!("ingest: baseline pid {} on {}", baseline.pid, baseline.addr);
    let bbase = format!("http://{}", baseline.addr);
    let bclient = load::client(max_c);
    {
        let mut s = LoadSpec::new(
            "baseline-warmup",
            bbase.clone(),
            max_c,
            Stop::After(o.warmup),
        );
        s.baseline = true;
        let r = load::run(&bclient, &s).await;
        check(&r, &mut problems);
    }
    let mut pairs = Vec::new();
    for (i, (&c, lunas)) in o.concurrency.iter().zip(lunas_runs).enumerate() {
        let mut s = LoadSpec::new(format!("baseline-c{c}"), bbase.clone(), c, stop());
        s.baseline = true;
        s.seed = o.seed + i as u64;
        let r = load::run(&bclient, &s).await;
        eprintln!(
            "ingest: baseline c={c}: {} req/s, p99 {} ms",
            rate(r.throughput()),
            ms(r.percentiles().p99)
        );
        check(&r, &mut problems);
        pairs.push(Pair {
            concurrency: c,
            lunas,
            baseline: r,
        });
    }
    let bserial = {
        let mut s = LoadSpec::new("baseline-serial", bbase, 1, Stop::After(o.serial_duration));
        s.baseline = true;
        load::run(&bclient, &s).await
    };
    check(&bserial, &mut problems);
    let baseline_rss = baseline.peak_rss_kib();
    baseline.kill9().await?;

    Ok(report(
        o,
        &pairs,
        &serial,
        &bserial,
        &half,
        &quiet,
        max_tput,
        best_c,
        peak_rss,
        baseline_rss,
        db_size,
        problems,
    ))
}

/// Registers `n` prepaid transactions with the admin API (16 at a time) and returns them as a
/// pool for the load.
pub async fn register_known(gw: &ChildServer, tag: &str, n: usize) -> Result<Arc<KnownPool>> {
    let admin = Arc::new(Admin::new(gw));
    let refs: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    let mut set = tokio::task::JoinSet::new();
    for chunk in refs.chunks(n.div_ceil(16).max(1)) {
        let admin = Arc::clone(&admin);
        let chunk = chunk.to_vec();
        set.spawn(async move {
            for r in chunk {
                admin.register("iak", &r, "prepaid").await?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(Arc::new(KnownPool::new(refs)))
}

fn check(r: &LoadResult, problems: &mut Vec<String>) {
    if r.failed() > 0 {
        problems.push(format!(
            "{}: {} of {} answers were wrong: {:?}; e.g. {:?}",
            r.label,
            r.failed(),
            r.sent,
            r.failures,
            r.samples
        ));
    }
}

fn row(label: &str, r: &LoadResult) -> Vec<String> {
    let p = r.percentiles();
    vec![
        label.to_owned(),
        r.concurrency.to_string(),
        group(r.ok),
        secs(r.elapsed),
        rate(r.throughput()),
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.max),
        group(r.failed()),
    ]
}

const HEADER: [&str; 10] = [
    "server",
    "concurrency",
    "answered",
    "seconds",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "wrong",
];

#[allow(clippy::too_many_arguments)]
fn report(
    o: &IngestOptions,
    pairs: &[Pair],
    serial: &LoadResult,
    bserial: &LoadResult,
    half: &LoadResult,
    quiet: &LoadResult,
    max_tput: f64,
    best_c: usize,
    peak_rss: Option<u64>,
    baseline_rss: Option<u64>,
    db_size: Option<u64>,
    problems: Vec<String>,
) -> Section {
    let max_base = pairs
        .iter()
        .map(|p| p.baseline.throughput())
        .fold(0.0, f64::max);
    let ratio = max_tput / max_base.max(1e-9);
    let hp: Percentiles = half.percentiles();
    let hs: Percentiles = half.scheduled_percentiles();
    let max_c = half.concurrency;
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Closed-loop load, {} per run{}, every answer checked (status 200 and the exact \
         acknowledgement body). lunas runs as `target/release/lunas serve` (a child process; \
         SQLite WAL, synchronous=FULL, group commit; log level info to a file); the baseline \
         is a minimal axum server in a child process (this binary's `baseline-server`) that \
         reads the body and answers 200 `{{\"message\":\"SUCCESS\"}}`. The load generator runs in \
         the harness process on the same machine, so all three share the cores.\n",
        match o.requests {
            Some(n) => format!("{} requests", group(n)),
            None => format!("{} s", o.duration.as_secs_f64()),
        },
        if o.warmup > Duration::ZERO {
            format!(" after a {} s warm-up", o.warmup.as_secs_f64())
        } else {
            String::new()
        }
    );
    let mut rows = Vec::new();
    for p in pairs {
        rows.push(row("lunas", &p.lunas));
        rows.push(row("baseline", &p.baseline));
    }
    body.push_str(&table(&HEADER, &rows));
    let _ = writeln!(body);
    let ratios: Vec<String> = pairs
        .iter()
        .map(|p| {
            format!(
                "{:.2} at concurrency {}",
                p.lunas.throughput() / p.baseline.throughput().max(1e-9),
                p.concurrency
            )
        })
        .collect();
    let _ = writeln!(
        body,
        "**Durable ingest throughput: {} callbacks/s (concurrency {best_c}) = {:.2} of the \
         baseline's {} req/s** (target ≥ 0.25, aim 0.5). Per concurrency: {}.\n",
        rate(max_tput),
        ratio,
        rate(max_base),
        ratios.join("; ")
    );
    let _ = writeln!(
        body,
        "**At half of lunas' maximum ({} req/s offered, open loop, {max_c} connections): {} \
         answered at {} req/s, p50 {} ms, p90 {} ms, p99 {} ms, max {} ms** (target p99 < 5 \
         ms). Measured from the scheduled send time instead (charging any stall for the \
         requests it delayed, and the generator's ~1 ms timer granularity): p50 {} ms, p99 {} \
         ms, max {} ms{}.\n",
        rate(max_tput / 2.0),
        group(half.ok),
        rate(half.throughput()),
        ms(hp.p50),
        ms(hp.p90),
        ms(hp.p99),
        ms(hp.max),
        ms(hs.p50),
        ms(hs.p99),
        ms(hs.max),
        if half.failed() > 0 {
            format!(", {} wrong answers", half.failed())
        } else {
            String::new()
        }
    );
    let sp = serial.percentiles();
    let bp = bserial.percentiles();
    let _ = writeln!(
        body,
        "**Commit per request vs group commit.** With one request in flight every commit holds \
         one callback: lunas answers {} req/s (p50 {} ms, p99 {} ms; the baseline {} req/s, \
         p50 {} ms): on average a request with its own commit takes {:.2} ms more than a \
         do-nothing answer. With concurrency {best_c} the commits are shared: {} req/s, {:.1}× \
         the serial rate.\n",
        rate(serial.throughput()),
        ms(sp.p50),
        ms(sp.p99),
        rate(bserial.throughput()),
        ms(bp.p50),
        (1000.0 / serial.throughput().max(1e-9) - 1000.0 / bserial.throughput().max(1e-9)).max(0.0),
        rate(max_tput),
        max_tput / serial.throughput().max(1e-9)
    );
    let qp = quiet.percentiles();
    let _ = writeln!(
        body,
        "**Logging.** The runs above log one line per callback (`LUNAS_LOG=info`, the \
         default). With `LUNAS_LOG=warn` at concurrency {best_c}: {} req/s ({:+.0}%), p50 {} \
         ms, p99 {} ms.\n",
        rate(quiet.throughput()),
        (quiet.throughput() / max_tput.max(1e-9) - 1.0) * 100.0,
        ms(qp.p50),
        ms(qp.p99),
    );
    let _ = writeln!(
        body,
        "**Peak RSS** (VmHWM of the process, after all lunas runs): lunas {}, baseline {}. \
         Database after the runs: {}.\n",
        peak_rss.map_or("unknown".into(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        )),
        baseline_rss.map_or("unknown".into(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        )),
        db_size.map_or("unknown".into(), |b| format!(
            "{:.1} MiB",
            b as f64 / 1048576.0
        )),
    );
    let mut mix = std::collections::BTreeMap::new();
    let mut created = 0;
    for p in pairs {
        for (k, v) in &p.lunas.classes {
            *mix.entry(k.as_str()).or_insert(0u64) += v;
        }
        created += p.lunas.created;
    }
    let total: u64 = mix.values().sum();
    let mix_text: Vec<String> = mix
        .iter()
        .map(|(k, v)| format!("{k} {:.0}%", *v as f64 * 100.0 / total.max(1) as f64))
        .collect();
    let _ = writeln!(
        body,
        "Mix of the lunas sweep ({} callbacks): {}; {} of them created a transaction lunas had \
         not heard of; 10% of new IAK stories used a ref registered beforehand through the \
         admin API; 30% of stories sent a pending callback before the outcome.",
        group(total),
        mix_text.join(", "),
        group(created)
    );
    let headline = vec![
        format!(
            "Ingest: {} durable callbacks/s = {:.2} of the do-nothing baseline ({} req/s); target ≥ 0.25, aim 0.5: {}.",
            rate(max_tput),
            ratio,
            rate(max_base),
            if ratio >= 0.5 { "met, aim reached" } else if ratio >= 0.25 { "met" } else { "**not met**" }
        ),
        format!(
            "Ingest at half load ({} req/s): p99 {} ms; target < 5 ms: {}.",
            rate(max_tput / 2.0),
            ms(hp.p99),
            if hp.p99 < 5000 { "met" } else { "**not met**" }
        ),
        format!(
            "Commit per request (concurrency 1): {} req/s; group commit gives {:.1}× that. Peak RSS of lunas: {}.",
            rate(serial.throughput()),
            max_tput / serial.throughput().max(1e-9),
            peak_rss.map_or("unknown".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
        ),
    ];
    Section {
        title: "Ingest: durable callback throughput and latency".into(),
        body,
        headline,
        problems,
    }
}
