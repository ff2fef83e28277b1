//! Orders: how fast lunas places top-ups (`POST /api/v1/orders` → `lunas serve` → the
//! sandbox), as a ratio to the same generator sending the top-ups to the sandbox directly; and
//! the crash harness for orders: `kill -9` of the gateway at random moments under order load,
//! then a check that no acknowledged order was lost, none was sent twice, and every one was
//! settled by reconciling.
//!
//! The sandbox runs in this process (an IAK account on the real clock); the gateway is
//! `lunas serve` as a child process whose IAK account points at it.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lunas_protocol::iak::prepaid::{PrepaidCommand, PrepaidRequest};
use lunas_protocol::{ApiVersion, Format, Secret};
use lunas_sandbox::{Sandbox, SandboxConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::gateway::{Admin, ADMIN_TOKEN, IAK_KEY, IAK_USER};
use crate::util::{
    fresh_dir, group, histogram, ms, rate, record, ChildServer, Percentiles, Result, Section,
};

#[derive(Debug, Clone)]
pub struct OrdersOptions {
    pub lunas_bin: PathBuf,
    pub work_dir: PathBuf,
    pub concurrency: usize,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub struct OrderCrashOptions {
    pub lunas_bin: PathBuf,
    pub work_dir: PathBuf,
    pub seed: u64,
    pub kills: usize,
    pub concurrency: usize,
    pub min_uptime: Duration,
    pub max_uptime: Duration,
    /// How long reconciling may take after the last restart.
    pub settle_bound: Duration,
}

/// The sandbox in this process: one IAK account in `environment`, its callbacks to `gateway`.
async fn start_sandbox(
    listener: tokio::net::TcpListener,
    environment: &str,
    gateway: Option<SocketAddr>,
) -> Result<Sandbox> {
    let callback = gateway.map_or_else(
        || "http://127.0.0.1:9/callbacks/iak".to_owned(),
        |a| format!("http://{a}/callbacks/iak"),
    );
    let text = format!(
        r#"
[[accounts]]
id = "iak"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
environment = "{environment}"
deposit = 10000000000000
callback_url = "{callback}"
callback_delay_ms = 300
retry_delays_ms = [500, 1000, 2000]
"#
    );
    let value: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
    let config =
        <SandboxConfig as serde::Deserialize>::deserialize(value).map_err(|e| e.to_string())?;
    let sandbox = Sandbox::new(config).map_err(|e| e.to_string())?;
    let router = sandbox.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let runner = sandbox.clone();
    // Production outcomes and callbacks fall due on the real clock.
    tokio::spawn(async move {
        loop {
            runner.run_due().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    Ok(sandbox)
}

fn gateway_config(db: &Path, sandbox: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_token = "{ADMIN_TOKEN}"

[storage]
url = "sqlite://{db}"

[[providers]]
id = "iak"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
prepaid_url = "http://{sandbox}"
postpaid_url = "http://{sandbox}"
[providers.orders]
rate_per_minute = 10000000
timeout_ms = 1000
[providers.reconcile]
first_check_after = "2s"
backoff = ["2s"]
timeout_ms = 1000
rate_per_minute = 100000
"#,
        db = db.display()
    )
}

async fn start_gateway(bin: &Path, dir: &Path, sandbox: SocketAddr) -> Result<ChildServer> {
    let config = dir.join("lunas.toml");
    std::fs::write(&config, gateway_config(&dir.join("lunas.db"), sandbox))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    if !bin.exists() {
        return Err(format!(
            "{} does not exist: build it with `cargo build --release -p lunas`",
            bin.display()
        ));
    }
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("LUNAS_LOG", "info");
    ChildServer::spawn(cmd, &dir.join("lunas.log")).await
}

fn order_body(reference: &str) -> String {
    json!({"provider_id": "iak", "ref": reference, "kind": "prepaid",
           "product_code": "xld25000", "customer_id": "081234560000"})
    .to_string()
}

fn top_up_body(reference: &str) -> String {
    PrepaidRequest::new(
        IAK_USER,
        &Secret::new(IAK_KEY),
        PrepaidCommand::TopUp {
            ref_id: reference.into(),
            customer_id: "081234560000".into(),
            product_code: "xld25000".into(),
        },
    )
    .encode(Format::Json, ApiVersion::V2)
}

/// What one closed-loop run did.
struct Run {
    ok: u64,
    failed: u64,
    elapsed: Duration,
    latency: Percentiles,
}

/// Where a closed loop sends, and how it judges the answers.
struct Target {
    url: String,
    /// Send the admin token.
    bearer: bool,
    /// Refs are `<prefix>-<n>`.
    prefix: &'static str,
    /// The body for a ref.
    make: fn(&str) -> String,
    /// Whether an HTTP status is the expected answer.
    good: fn(u16) -> bool,
}

/// `concurrency` workers send requests to `target` until `duration` passes.
async fn closed_loop(
    client: &reqwest::Client,
    target: Target,
    concurrency: usize,
    duration: Duration,
) -> Run {
    let Target {
        url,
        bearer,
        prefix,
        make,
        good,
    } = target;
    let counter = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(histogram()));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, counter, hist, ok, failed) = (
            client.clone(),
            url.clone(),
            Arc::clone(&counter),
            Arc::clone(&hist),
            Arc::clone(&ok),
            Arc::clone(&failed),
        );
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut local = histogram();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let reference = format!("{prefix}-{n}");
                let mut req = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(make(&reference));
                if bearer {
                    req = req.bearer_auth(ADMIN_TOKEN);
                }
                let t = Instant::now();
                let status = match req.send().await {
                    Ok(res) => {
                        let s = res.status().as_u16();
                        let _ = res.bytes().await;
                        s
                    }
                    Err(_) => 0,
                };
                record(&mut local, t.elapsed());
                if good(status) {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            hist.lock().expect("histogram lock").add(&local).ok();
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let latency = Percentiles::of(&hist.lock().expect("histogram lock"));
    Run {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latency,
    }
}

/// Orders per second through lunas against top-ups per second straight to the sandbox.
pub async fn run(o: &OrdersOptions) -> Result<Section> {
    let dir = fresh_dir(&o.work_dir, "orders")?;
    let mut problems = Vec::new();
    let sb_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let sb = sb_listener.local_addr().map_err(|e| e.to_string())?;
    // Development: no callbacks, so both runs measure placing alone.
    let sandbox = start_sandbox(sb_listener, "development", None).await?;
    let gateway = start_gateway(&o.lunas_bin, &dir, sb).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    eprintln!("orders: the sandbox directly, {} workers", o.concurrency);
    let direct = closed_loop(
        &client,
        Target {
            url: format!("http://{sb}/api/top-up"),
            bearer: false,
            prefix: "direct",
            make: top_up_body,
            good: |s| s == 200,
        },
        o.concurrency,
        o.duration,
    )
    .await;
    eprintln!("orders: through lunas, {} workers", o.concurrency);
    let through = closed_loop(
        &client,
        Target {
            url: format!("http://{}/api/v1/orders", gateway.addr),
            bearer: true,
            prefix: "order",
            make: order_body,
            good: |s| s == 201,
        },
        o.concurrency,
        o.duration,
    )
    .await;
    let rss = gateway.peak_rss_kib();
    drop(gateway);
    let direct_rate = direct.ok as f64 / direct.elapsed.as_secs_f64();
    let lunas_rate = through.ok as f64 / through.elapsed.as_secs_f64();
    if direct.failed > 0 {
        problems.push(format!(
            "{} direct top-ups were not answered 200",
            direct.failed
        ));
    }
    if through.failed > 0 {
        problems.push(format!("{} orders were not answered 201", through.failed));
    }
    // Exactly one provider-side transaction per order placed.
    let placed = through.ok + through.failed;
    let mut held = 0u64;
    let mut doubles = 0;
    for n in 0..placed {
        match sandbox.transactions(&format!("order-{n}"), None).len() {
            0 => {}
            1 => held += 1,
            _ => doubles += 1,
        }
    }
    if held < through.ok {
        problems.push(format!(
            "{} orders answered 201 but only {held} transactions are at the provider",
            through.ok
        ));
    }
    if doubles > 0 {
        problems.push(format!(
            "{doubles} refs have more than one transaction at the provider"
        ));
    }
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Closed loop, {} workers, {:.0} s each, one IAK top-up per request (unique refs). The sandbox \
         runs in the harness's process (development mode: no callbacks); lunas is `lunas serve` \
         (SQLite) committing each order twice before it leaves (`not_sent`, `sent`) and once after.\n",
        o.concurrency,
        o.duration.as_secs_f64()
    );
    let _ = writeln!(
        body,
        "| | per second | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|"
    );
    for (label, r, per_s) in [
        ("top-ups straight to the sandbox", &direct, direct_rate),
        ("orders through lunas", &through, lunas_rate),
    ] {
        let _ = writeln!(
            body,
            "| {label} | {} | {} | {} | {} |",
            rate(per_s),
            ms(r.latency.p50),
            ms(r.latency.p99),
            ms(r.latency.max)
        );
    }
    let ratio = if direct_rate > 0.0 {
        lunas_rate / direct_rate
    } else {
        0.0
    };
    let _ = writeln!(
        body,
        "\nRatio: **{ratio:.2}** of the direct rate; {} orders placed, {} provider-side transactions, \
         none twice; gateway peak RSS {} MiB.",
        group(through.ok),
        group(held),
        rss.map_or_else(|| "?".into(), |k| format!("{:.0}", k as f64 / 1024.0))
    );
    Ok(Section {
        title: "Orders".into(),
        body,
        headline: vec![format!(
            "orders: {} /s through lunas, {ratio:.2} of the same generator straight to the sandbox",
            rate(lunas_rate)
        )],
        problems,
    })
}

/// What the harness learnt of one order.
#[derive(Default)]
struct Ledger {
    /// Answered 201 or 200: lunas committed it.
    acknowledged: HashSet<String>,
    /// Sent, whatever came back (including nothing).
    attempted: HashSet<String>,
}

/// `kill -9` under order load, restart each time; afterwards every acknowledged order is in
/// lunas, every order in lunas is at the provider exactly once, and every one is final.
pub async fn crash(o: &OrderCrashOptions) -> Result<Section> {
    let dir = fresh_dir(&o.work_dir, "crash-orders")?;
    let mut problems = Vec::new();
    let sb_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let sb = sb_listener.local_addr().map_err(|e| e.to_string())?;
    // The sandbox's callbacks go nowhere: every outcome is learnt by reconciling, which is what
    // this harness proves (the gateway also moves to another port at each restart).
    let sandbox = start_sandbox(sb_listener, "production", None).await?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let counter = Arc::new(AtomicU64::new(0));
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let started = Instant::now();
    let mut gateway = start_gateway(&o.lunas_bin, &dir, sb).await?;
    for epoch in 0..o.kills {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..o.concurrency {
            let (ledger, counter, stop) =
                (Arc::clone(&ledger), Arc::clone(&counter), Arc::clone(&stop));
            let url = format!("http://{}/api/v1/orders", gateway.addr);
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("a client");
                while !stop.load(Ordering::Relaxed) {
                    let reference = format!("k{epoch}-{}", counter.fetch_add(1, Ordering::Relaxed));
                    ledger
                        .lock()
                        .expect("ledger")
                        .attempted
                        .insert(reference.clone());
                    let res = client
                        .post(&url)
                        .bearer_auth(ADMIN_TOKEN)
                        .header("content-type", "application/json")
                        .body(order_body(&reference))
                        .send()
                        .await;
                    match res {
                        Ok(r) if matches!(r.status().as_u16(), 200 | 201) => {
                            ledger
                                .lock()
                                .expect("ledger")
                                .acknowledged
                                .insert(reference);
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }));
        }
        let uptime = rng.gen_range(o.min_uptime.as_millis()..=o.max_uptime.as_millis());
        tokio::time::sleep(Duration::from_millis(uptime as u64)).await;
        gateway.kill9().await?;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        gateway = start_gateway(&o.lunas_bin, &dir, sb).await?;
    }
    // Settle: the last gateway runs its reconciler; wait until every order in it is final.
    let admin = Admin::new(&gateway);
    let settle_started = Instant::now();
    let mut orders: Vec<Value>;
    loop {
        orders = admin.all_transactions().await?.into_values().collect();
        let open = orders.iter().filter(|t| t["state"] == "pending").count();
        if open == 0 || settle_started.elapsed() > o.settle_bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled_in = settle_started.elapsed();
    let ledger = ledger.lock().expect("ledger");
    let in_lunas: HashSet<String> = orders
        .iter()
        .filter_map(|t| t["ref"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<&String> = ledger.acknowledged.difference(&in_lunas).collect();
    let unresolved = orders.iter().filter(|t| t["state"] == "pending").count();
    let failed = orders.iter().filter(|t| t["state"] == "failed").count();
    let mut at_provider: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    for r in ledger.attempted.iter().chain(in_lunas.iter()) {
        let n = sandbox.transactions(r, None).len();
        if n > 0 {
            at_provider.insert(r.clone(), n);
        }
    }
    let twice = at_provider.values().filter(|n| **n > 1).count();
    // Refs are the merchant's: lunas holds no order under a ref the merchant never sent.
    let unknown_refs = in_lunas
        .iter()
        .filter(|r| !ledger.attempted.contains(*r))
        .count();
    let not_placed = in_lunas
        .iter()
        .filter(|r| !at_provider.contains_key(*r))
        .count();
    if !lost.is_empty() {
        problems.push(format!(
            "{} acknowledged orders are not in lunas",
            lost.len()
        ));
    }
    if twice > 0 {
        problems.push(format!("{twice} refs were placed twice at the provider"));
    }
    if unknown_refs > 0 {
        problems.push(format!(
            "{unknown_refs} orders in lunas under refs the merchant never used"
        ));
    }
    if unresolved > 0 {
        problems.push(format!(
            "{unresolved} orders still pending after {:.0} s of reconciling",
            settled_in.as_secs_f64()
        ));
    }
    if not_placed > 0 {
        problems.push(format!(
            "{not_placed} orders in lunas never reached the provider"
        ));
    }
    if failed > 0 {
        problems.push(format!(
            "{failed} orders ended failed (every test number here succeeds)"
        ));
    }
    let mut body = String::new();
    let _ = writeln!(
        body,
        "`kill -9` of `lunas serve` {} times at random moments ({}–{} ms after start) under order \
         load ({} workers, IAK top-ups to the sandbox in production mode, which calls back), restarting \
         on the same database each time; then the last gateway reconciles until every order is final.\n",
        o.kills,
        o.min_uptime.as_millis(),
        o.max_uptime.as_millis(),
        o.concurrency
    );
    let _ = writeln!(
        body,
        "| orders sent | acknowledged | in lunas | at the provider | lost | placed twice | unresolved | settled in |\n|---|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
        group(ledger.attempted.len() as u64),
        group(ledger.acknowledged.len() as u64),
        group(in_lunas.len() as u64),
        group(at_provider.len() as u64),
        lost.len(),
        twice,
        unresolved,
        settled_in.as_secs_f64()
    );
    let _ = writeln!(body, "\nTotal {:.0} s.", started.elapsed().as_secs_f64());
    Ok(Section {
        title: "Crash: orders".into(),
        body,
        headline: vec![format!(
            "crash (orders): {} kills, {} acknowledged, {} lost, {} placed twice, {} unresolved",
            o.kills,
            group(ledger.acknowledged.len() as u64),
            lost.len(),
            twice,
            unresolved
        )],
        problems,
    })
}
