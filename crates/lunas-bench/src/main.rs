//! `lunas-bench`: the benchmarks and the reliability harness of issue 9.
//!
//! Subcommands: `ingest`, `delivery`, `reconcile`, `crash`, `bad-input`, and `all` (every one,
//! then `BENCHMARKS.md`). Each prints its section of the report as Markdown on standard output
//! and progress on standard error, and exits non-zero when a correctness check failed (a lost
//! callback, a wrong answer, changed state). `--smoke` runs a tiny version of everything.
//!
//! Benchmarks are not tests: nothing here is timed against a threshold in `cargo nextest run`.
//! All traffic goes to 127.0.0.1; every process the harness starts is killed when it ends.

mod bad_input;
mod crash;
mod delivery;
mod fuzz;
mod gateway;
mod ingest;
mod load;
mod mix;
mod orders;
mod reconcile;
mod report;
mod servers;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::util::{repo_root, Section};

#[derive(Parser)]
#[command(
    name = "lunas-bench",
    about = "Benchmarks and reliability harness for lunas (issue 9)",
    after_help = "Build first: cargo build --release -p lunas -p lunas-bench\n\
                  Full suite:  target/release/lunas-bench all   (writes BENCHMARKS.md)\n\
                  Quick check: target/release/lunas-bench all --smoke"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// The gateway binary (build it with `cargo build --release -p lunas`).
    #[arg(long, global = true, default_value_os_t = repo_root().join("target/release/lunas"))]
    lunas_bin: PathBuf,
    /// Where databases, configurations and logs go. Must be on a real disk: fsync is measured.
    #[arg(long, global = true, default_value_os_t = repo_root().join("target/lunas-bench"))]
    work_dir: PathBuf,
    /// A tiny version of everything (seconds, not minutes): checks the harness, not speed.
    #[arg(long, global = true)]
    smoke: bool,
    /// Seed of every random choice (the mix, kill moments, bad inputs).
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Durable ingest throughput and latency against a do-nothing baseline; p99 at half load;
    /// commit per request; peak RSS.
    Ingest(IngestArgs),
    /// Events per second end to end, callback to merchant 2xx.
    Delivery(DeliveryArgs),
    /// The reconciler's cost per tick with a large table against a small one.
    Reconcile(ReconcileArgs),
    /// kill -9 under load, restart, check nothing acknowledged was lost and everything is delivered.
    Crash(CrashArgs),
    /// Every class of bad input under load, slow loris, hostile connections, evidence floods,
    /// page sizes, a login brute force, and the fuzz targets.
    BadInput(BadInputArgs),
    /// Orders per second through lunas against the same generator straight to the sandbox.
    Orders(OrdersArgs),
    /// Everything above, then BENCHMARKS.md.
    All(Box<AllArgs>),
    /// (internal) The baseline server: answers every callback 200 and does nothing.
    #[command(hide = true)]
    BaselineServer,
}

#[derive(Args, Clone, Default)]
struct IngestArgs {
    /// Closed-loop concurrencies to sweep (comma-separated) [full: 16,64,256; smoke: 8,32].
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    /// Seconds per measured run [full: 20; smoke: 1].
    #[arg(long)]
    duration: Option<f64>,
    /// A fixed number of requests per run instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up seconds before each server's runs [full: 5; smoke: 0.5].
    #[arg(long)]
    warmup: Option<f64>,
    /// Seconds of the concurrency-1 run [full: 10; smoke: 1].
    #[arg(long)]
    serial_duration: Option<f64>,
    /// Refs registered beforehand per run [full: 2000; smoke: 50].
    #[arg(long)]
    known: Option<usize>,
}

#[derive(Args, Clone, Default)]
struct DeliveryArgs {
    /// Callbacks to send [full: 20000; smoke: 300].
    #[arg(long)]
    callbacks: Option<u64>,
    /// Workers sending them [default: 32].
    #[arg(long)]
    delivery_concurrency: Option<usize>,
}

#[derive(Args, Clone, Default)]
struct ReconcileArgs {
    /// Transactions in the large table [full: 1000000; smoke: 20000].
    #[arg(long)]
    large: Option<u64>,
    /// Transactions due (the small table holds only these) [full: 10000; smoke: 200].
    #[arg(long)]
    due: Option<u64>,
}

#[derive(Args, Clone, Default)]
struct CrashArgs {
    /// How many times to kill -9 the gateway [full: 50; smoke: 3].
    #[arg(long)]
    kills: Option<usize>,
    /// Load workers [default: 16].
    #[arg(long)]
    crash_concurrency: Option<usize>,
    /// Shortest and longest time the gateway is up before a kill, ms [full: 100,800; smoke: 100,300].
    #[arg(long, value_delimiter = ',', num_args = 2)]
    uptime_ms: Option<Vec<u64>>,
    /// Seconds to wait for every event to be delivered after the last restart [full: 150; smoke:
    /// 10, and events still leased by a killed gateway are then only reported].
    #[arg(long)]
    delivery_bound: Option<u64>,
    /// Also run on PostgreSQL (lunas has no PostgreSQL backend yet: reported as not supported).
    #[arg(long)]
    postgres: Option<String>,
    /// How many times to kill -9 the gateway under order load [full: 20; smoke: 2].
    #[arg(long)]
    order_kills: Option<usize>,
}

#[derive(Args, Clone, Default)]
struct OrdersArgs {
    /// Closed-loop workers [full: 32; smoke: 4].
    #[arg(long)]
    order_concurrency: Option<usize>,
    /// Seconds per run [full: 15; smoke: 1].
    #[arg(long)]
    order_duration: Option<f64>,
}

#[derive(Args, Clone, Default)]
struct BadInputArgs {
    /// Requests per class [full: 200; smoke: 4].
    #[arg(long)]
    per_class: Option<usize>,
    /// Slow-loris connections of each kind [full: 8; smoke: 2].
    #[arg(long)]
    slowloris: Option<usize>,
    /// Seconds a slow-loris connection takes to send its request [full: 40; smoke: 2].
    #[arg(long)]
    slowloris_secs: Option<u64>,
    /// Seconds per fuzz target; 0 skips fuzzing [full: 60; smoke: 2].
    #[arg(long)]
    fuzz_secs: Option<u64>,
    /// The gateway's `server.read_timeout_ms` [full: its default, 30000; smoke: 2000].
    #[arg(long)]
    read_timeout_ms: Option<u64>,
    /// Silent HTTP/2 connections (preface and empty SETTINGS, then nothing) [full: 300; smoke: 20].
    #[arg(long)]
    h2_silent: Option<usize>,
    /// Connections trickling a request body to /login and /api/v1/orders [full: 500; smoke: 20].
    #[arg(long)]
    trickle: Option<usize>,
    /// Callbacks of each evidence flood [full: 10000; smoke: 300].
    #[arg(long)]
    evidence: Option<usize>,
    /// Wrong dashboard logins from one address [full: 2000; smoke: 100].
    #[arg(long)]
    logins: Option<usize>,
    /// Callbacks a second of the valid load, open loop; 0: closed loop, as fast as answers
    /// come [full: 1000; smoke: 200].
    #[arg(long)]
    load_rate: Option<f64>,
    /// Seconds the valid load runs alone first, the reference for its latency [full: 10; smoke: 1].
    #[arg(long)]
    alone_secs: Option<f64>,
}

#[derive(Args, Clone, Default)]
struct AllArgs {
    /// Where to write the report [full: BENCHMARKS.md at the repository root; smoke:
    /// <work-dir>/BENCHMARKS.smoke.md, so a smoke run never replaces the real one].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    ingest: IngestArgs,
    #[command(flatten)]
    delivery: DeliveryArgs,
    #[command(flatten)]
    reconcile: ReconcileArgs,
    #[command(flatten)]
    crash: CrashArgs,
    #[command(flatten)]
    bad_input: BadInputArgs,
    #[command(flatten)]
    orders: OrdersArgs,
}

fn pick<T>(given: Option<T>, smoke: bool, small: T, full: T) -> T {
    given.unwrap_or(if smoke { small } else { full })
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl Common {
    fn ingest(&self, a: &IngestArgs) -> ingest::IngestOptions {
        let s = self.smoke;
        ingest::IngestOptions {
            lunas_bin: self.lunas_bin.clone(),
            work_dir: self.work_dir.clone(),
            seed: self.seed,
            concurrency: pick(a.concurrency.clone(), s, vec![8, 32], vec![16, 64, 256]),
            duration: seconds(pick(a.duration, s, 1.0, 20.0)),
            requests: a.requests,
            warmup: seconds(pick(a.warmup, s, 0.5, 5.0)),
            serial_duration: seconds(pick(a.serial_duration, s, 1.0, 10.0)),
            known_per_run: pick(a.known, s, 50, 2000),
        }
    }

    fn delivery(&self, a: &DeliveryArgs) -> delivery::DeliveryOptions {
        delivery::DeliveryOptions {
            lunas_bin: self.lunas_bin.clone(),
            work_dir: self.work_dir.clone(),
            seed: self.seed,
            callbacks: pick(a.callbacks, self.smoke, 300, 20_000),
            concurrency: a.delivery_concurrency.unwrap_or(32),
            drain_bound: Duration::from_secs(120),
        }
    }

    fn reconcile(&self, a: &ReconcileArgs) -> reconcile::ReconcileOptions {
        reconcile::ReconcileOptions {
            work_dir: self.work_dir.clone(),
            large: pick(a.large, self.smoke, 20_000, 1_000_000),
            due: pick(a.due, self.smoke, 200, 10_000),
            fill_concurrency: 2048,
        }
    }

    fn crash(&self, a: &CrashArgs) -> crash::CrashOptions {
        let s = self.smoke;
        let uptime = pick(a.uptime_ms.clone(), s, vec![100, 300], vec![100, 800]);
        crash::CrashOptions {
            lunas_bin: self.lunas_bin.clone(),
            work_dir: self.work_dir.clone(),
            seed: self.seed,
            kills: pick(a.kills, s, 3, 50),
            concurrency: a.crash_concurrency.unwrap_or(16),
            min_uptime: Duration::from_millis(uptime[0].min(uptime[1])),
            max_uptime: Duration::from_millis(uptime[0].max(uptime[1])),
            delivery_bound: Duration::from_secs(pick(a.delivery_bound, s, 10, 150)),
            require_delivery: !s,
            postgres: a.postgres.clone(),
        }
    }

    fn orders(&self, a: &OrdersArgs) -> orders::OrdersOptions {
        orders::OrdersOptions {
            lunas_bin: self.lunas_bin.clone(),
            work_dir: self.work_dir.clone(),
            concurrency: pick(a.order_concurrency, self.smoke, 4, 32),
            duration: seconds(pick(a.order_duration, self.smoke, 1.0, 15.0)),
        }
    }

    fn order_crash(&self, a: &CrashArgs) -> orders::OrderCrashOptions {
        let s = self.smoke;
        orders::OrderCrashOptions {
            lunas_bin: self.lunas_bin.clone(),
            work_dir: self.work_dir.clone(),
            seed: self.seed,
            kills: pick(a.order_kills, s, 2, 20),
            concurrency: a.crash_concurrency.unwrap_or(16),
            min_uptime: Duration::from_millis(200),
            max_uptime: Duration::from_millis(if s { 500 } else { 1500 }),
            settle_bound: Duration::from_secs(if s { 30 } else { 90 }),
        }
    }

    fn bad_input(&self, a: &BadInputArgs) -> bad_input::BadInputOptions {
        let s = self.smoke;
        bad_input::BadInputOptions {
            lunas_bin: self.lunas_bin.clone(),
            work_dir: self.work_dir.clone(),
            seed: self.seed,
            per_class: pick(a.per_class, s, 4, 200),
            concurrency: 8,
            load_concurrency: 8,
            load_rate: match a.load_rate {
                Some(r) if r <= 0.0 => None,
                Some(r) => Some(r),
                None => Some(if s { 200.0 } else { 1000.0 }),
            },
            slowloris: pick(a.slowloris, s, 2, 8),
            slowloris_window: Duration::from_secs(pick(a.slowloris_secs, s, 2, 40)),
            fuzz_secs: pick(a.fuzz_secs, s, 2, 60),
            read_timeout: a
                .read_timeout_ms
                .or(s.then_some(2000))
                .map(Duration::from_millis),
            h2_silent: pick(a.h2_silent, s, 20, 300),
            trickle: pick(a.trickle, s, 20, 500),
            evidence: pick(a.evidence, s, 300, 10_000),
            logins: pick(a.logins, s, 100, 2000),
            alone: seconds(pick(a.alone_secs, s, 1.0, 10.0)),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::BaselineServer = cli.command {
        return match servers::baseline_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baseline: {e}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        // Ctrl-C or SIGTERM: drop the work, which kills every child (they are `kill_on_drop`).
        tokio::select! {
            r = run(cli) => r,
            _ = interrupted() => Err("interrupted".to_owned()),
        }
    });
    // Let the runtime drop its tasks (and with them the children) before exiting.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("lunas-bench: some correctness checks failed (see the report)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs the command; `Ok(false)` when a correctness check failed.
async fn run(cli: Cli) -> Result<bool, String> {
    let c = cli.common;
    std::fs::create_dir_all(&c.work_dir).map_err(|e| format!("{}: {e}", c.work_dir.display()))?;
    let section = |s: Section| {
        println!("{}", s.markdown());
        // The lines `all` would put in the summary, for whoever updates the report by hand.
        for line in &s.headline {
            eprintln!("summary: {line}");
        }
        s.problems.is_empty()
    };
    match cli.command {
        Cmd::Ingest(a) => Ok(section(ingest::run(&c.ingest(&a)).await?)),
        Cmd::Delivery(a) => Ok(section(delivery::run(&c.delivery(&a)).await?)),
        Cmd::Reconcile(a) => Ok(section(reconcile::run(&c.reconcile(&a)).await?)),
        Cmd::Crash(a) => {
            let callbacks = section(crash::run(&c.crash(&a)).await?);
            let orders = section(orders::crash(&c.order_crash(&a)).await?);
            Ok(callbacks && orders)
        }
        Cmd::Orders(a) => Ok(section(orders::run(&c.orders(&a)).await?)),
        Cmd::BadInput(a) => Ok(section(bad_input::run(&c.bad_input(&a)).await?)),
        Cmd::All(a) => all(&c, &a).await,
        Cmd::BaselineServer => unreachable!("handled before the runtime starts"),
    }
}

async fn all(c: &Common, a: &AllArgs) -> Result<bool, String> {
    let started = Instant::now();
    let load_before = report::loadavg();
    let fsync_before = report::fsync_latency(&c.work_dir);
    let command = std::iter::once("target/release/lunas-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    // A part that cannot run is reported as such; the others still run.
    let part = |name: &str, r: Result<Section, String>| {
        r.unwrap_or_else(|e| {
            eprintln!("{name}: {e}");
            Section {
                title: name.to_owned(),
                body: format!("The run failed: {e}\n"),
                headline: vec![format!("{name}: **failed to run**: {e}")],
                problems: vec![e],
            }
        })
    };
    let mut sections = Vec::new();
    eprintln!("== ingest");
    sections.push(part("ingest", ingest::run(&c.ingest(&a.ingest)).await));
    eprintln!("== delivery");
    sections.push(part(
        "delivery",
        delivery::run(&c.delivery(&a.delivery)).await,
    ));
    eprintln!("== reconcile");
    sections.push(part(
        "reconcile",
        reconcile::run(&c.reconcile(&a.reconcile)).await,
    ));
    eprintln!("== crash");
    sections.push(part("crash", crash::run(&c.crash(&a.crash)).await));
    eprintln!("== crash (orders)");
    sections.push(part(
        "crash (orders)",
        orders::crash(&c.order_crash(&a.crash)).await,
    ));
    eprintln!("== orders");
    sections.push(part("orders", orders::run(&c.orders(&a.orders)).await));
    eprintln!("== bad-input");
    sections.push(part(
        "bad-input",
        bad_input::run(&c.bad_input(&a.bad_input)).await,
    ));
    let machine = report::machine(&c.work_dir, &c.lunas_bin, &load_before, &fsync_before);
    let doc = report::document(&sections, &machine, &command, c.smoke, started.elapsed());
    let out = a.out.clone().unwrap_or_else(|| {
        if c.smoke {
            c.work_dir.join("BENCHMARKS.smoke.md")
        } else {
            repo_root().join("BENCHMARKS.md")
        }
    });
    std::fs::write(&out, &doc).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{doc}");
    eprintln!(
        "lunas-bench: wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(sections.iter().all(|s| s.problems.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "lunas-bench",
            "all",
            "--smoke",
            "--concurrency",
            "4,8",
            "--kills",
            "2",
            "--postgres",
            "postgres://x",
        ])
        .unwrap();
        let Cmd::All(a) = cli.command else {
            panic!("all")
        };
        assert!(cli.common.smoke);
        assert_eq!(cli.common.ingest(&a.ingest).concurrency, vec![4, 8]);
        let crash = cli.common.crash(&a.crash);
        assert_eq!(crash.kills, 2);
        assert!(!crash.require_delivery);
    }
}
