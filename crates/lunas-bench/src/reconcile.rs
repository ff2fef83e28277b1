//! The reconciler's cost: a table of `large` transactions of which `due` are due for a status
//! check, against a table of `due` transactions in all (every one due). Both are filled through
//! the Store API (`register`, many at once so group commit batches them). Measured in this
//! process, on the real SQLite store and the real `Reconciler`:
//!
//! - the claim alone (`Store::claim_checks`, 64 at a time, until nothing is due);
//! - full ticks (`Reconciler::step`: claim within the rate budget, ask an IAK check-status stub
//!   on 127.0.0.1 that answers "still in process", record each check) until nothing is due;
//! - an idle tick when nothing is due.
//!
//! A tick must cost in proportion to the due work, not to the table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use lunas_core::Detail;
use lunas_protocol::TxKind;
use lunas_store::{Registration, Store, StoreOptions};
use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::servers::CheckStub;
use crate::util::{
    fresh_dir, group, histogram, ms, rate, record, secs, table, Percentiles, Result, Section,
};

#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub work_dir: PathBuf,
    /// Transactions in the large table.
    pub large: u64,
    /// Transactions due (in both tables; the small table holds only these).
    pub due: u64,
    /// Registrations in flight while filling.
    pub fill_concurrency: usize,
}

/// What one table measured.
struct TableRun {
    label: String,
    total: u64,
    due: u64,
    fill: Duration,
    db_bytes: u64,
    claim: Histogram<u64>,
    claims: u64,
    claimed: u64,
    claim_total: Duration,
    tick: Histogram<u64>,
    ticks: u64,
    checked: u64,
    tick_total: Duration,
    idle_tick: Histogram<u64>,
    idle_claim: Histogram<u64>,
    stub_calls: u64,
}

const BATCH: usize = 64;

pub async fn run(o: &ReconcileOptions) -> Result<Section> {
    let dir = fresh_dir(&o.work_dir, "reconcile")?;
    let mut problems = Vec::new();
    let large = measure(&dir, "large", o.large, o.due, o, &mut problems).await?;
    let small = measure(&dir, "small", o.due, o.due, o, &mut problems).await?;

    let lp = Percentiles::of(&large.tick);
    let sp = Percentiles::of(&small.tick);
    let lc = Percentiles::of(&large.claim);
    let sc = Percentiles::of(&small.claim);
    let li = Percentiles::of(&large.idle_tick);
    let si = Percentiles::of(&small.idle_tick);
    let per_check = |r: &TableRun| r.tick_total.as_secs_f64() * 1e6 / r.checked.max(1) as f64;
    let per_claim = |r: &TableRun| r.claim_total.as_secs_f64() * 1e6 / r.claimed.max(1) as f64;

    let mut body = String::new();
    let _ = writeln!(
        body,
        "Two SQLite stores filled through `Store::register` ({} registrations in flight, so \
         group commit batches them): **large** = {} transactions of which {} are due (the \
         others: 4% pending with a check scheduled a day ahead, the rest with no check \
         scheduled, as settled transactions have), **small** = {} transactions, all due. The due \
         ones are spread through the table (every {}th row). Measured in-process with the real \
         store and `lunas::reconcile::Reconciler`; the IAK check-status endpoint is a stub on \
         127.0.0.1 that answers \"in process\" (status 0, rc 39) at once, so each check is \
         recorded and rescheduled. Rate budget raised (`rate_per_minute = 1000000`) so a tick \
         takes a full batch of {BATCH}.\n",
        o.fill_concurrency,
        group(o.large),
        group(o.due),
        group(o.due),
        (o.large / o.due.max(1)).max(1),
    );
    let rows: Vec<Vec<String>> = [&large, &small]
        .iter()
        .map(|r| {
            let t = Percentiles::of(&r.tick);
            let c = Percentiles::of(&r.claim);
            let i = Percentiles::of(&r.idle_tick);
            vec![
                r.label.clone(),
                group(r.total),
                group(r.due),
                format!(
                    "{} s ({}/s)",
                    secs(r.fill),
                    rate(r.total as f64 / r.fill.as_secs_f64().max(1e-9))
                ),
                format!("{:.0} MiB", r.db_bytes as f64 / 1048576.0),
                format!(
                    "{} / {} / {} ({} claims)",
                    ms(c.p50),
                    ms(c.p99),
                    ms(c.max),
                    r.claims
                ),
                format!("{:.1}", per_claim(r)),
                ms(Percentiles::of(&r.idle_claim).p50),
                format!("{} ({} checks)", group(r.ticks), group(r.checked)),
                format!("{} / {} / {}", ms(t.p50), ms(t.p99), ms(t.max)),
                format!("{:.0}", per_check(r)),
                format!("{} / {}", ms(i.p50), ms(i.max)),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "table",
            "transactions",
            "due",
            "fill",
            "db size",
            "claim of 64: p50 / p99 / max ms",
            "claim µs per due tx",
            "idle claim p50 ms",
            "ticks",
            "tick of 64 checks: p50 / p99 / max ms",
            "tick µs per check",
            "idle tick p50 / max ms",
        ],
        &rows,
    ));
    let tick_ratio = lp.p50 as f64 / sp.p50.max(1) as f64;
    let claim_ratio = lc.p50 as f64 / sc.p50.max(1) as f64;
    let idle_ratio = li.p50 as f64 / si.p50.max(1) as f64;
    let _ = writeln!(
        body,
        "\n**Large table / small table, median cost: a tick {tick_ratio:.2}×, a claim \
         {claim_ratio:.2}×, an idle tick {idle_ratio:.2}×** for a table {}× larger. Draining all \
         {} due transactions took {} s (large) and {} s (small): {} and {} checks/s. The stub \
         answered {} and {} check-status calls.",
        group(o.large / o.due.max(1)),
        group(o.due),
        secs(large.tick_total),
        secs(small.tick_total),
        rate(large.checked as f64 / large.tick_total.as_secs_f64().max(1e-9)),
        rate(small.checked as f64 / small.tick_total.as_secs_f64().max(1e-9)),
        group(large.stub_calls),
        group(small.stub_calls),
    );
    for r in [&large, &small] {
        if r.checked != r.due {
            problems.push(format!(
                "{}: the ticks checked {} transactions, {} were due",
                r.label, r.checked, r.due
            ));
        }
        if r.claimed != r.due {
            problems.push(format!(
                "{}: the claims leased {} transactions, {} were due",
                r.label, r.claimed, r.due
            ));
        }
    }
    let verdict = if tick_ratio < 2.0 && idle_ratio < 2.0 {
        "in proportion to the due work"
    } else {
        "**grows with the table**"
    };
    let headline = vec![format!(
        "Reconciler: a tick of {BATCH} checks costs {} ms with {} stored / {} due and {} ms with {} stored ({tick_ratio:.2}×); an idle tick {} ms vs {} ms: {verdict}.",
        ms(lp.p50),
        group(o.large),
        group(o.due),
        ms(sp.p50),
        group(o.due),
        ms(li.p50),
        ms(si.p50),
    )];
    Ok(Section {
        title: "Reconciler: cost per tick against table size".into(),
        body,
        headline,
        problems,
    })
}

async fn measure(
    dir: &Path,
    label: &str,
    total: u64,
    due: u64,
    o: &ReconcileOptions,
    problems: &mut Vec<String>,
) -> Result<TableRun> {
    let db = dir.join(format!("{label}.db"));
    let store: Arc<dyn Store> = lunas_store::open(
        &format!("sqlite://{}", db.display()),
        &StoreOptions::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let now = OffsetDateTime::now_utc();
    eprintln!("reconcile: filling {label}: {total} transactions, {due} due");
    let fill_started = Instant::now();
    fill(&store, total, due, now, o.fill_concurrency).await?;
    let fill = fill_started.elapsed();
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(db.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);

    // The claim alone, until nothing is due.
    let lease = Duration::from_secs(60);
    let mut claim = histogram();
    let (mut claims, mut claimed) = (0, 0);
    let claim_started = Instant::now();
    loop {
        let t = Instant::now();
        let got = store
            .claim_checks("iak", now, lease, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if got.is_empty() {
            break;
        }
        record(&mut claim, t.elapsed());
        claims += 1;
        claimed += got.len() as u64;
    }
    let claim_total = claim_started.elapsed();
    let mut idle_claim = histogram();
    for _ in 0..20 {
        let t = Instant::now();
        let got = store
            .claim_checks("iak", now, lease, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        record(&mut idle_claim, t.elapsed());
        if !got.is_empty() {
            problems.push(format!(
                "{label}: a claim after the drain leased {}",
                got.len()
            ));
        }
    }

    // Full ticks after the leases expired: everything due again.
    let stub = CheckStub::start().await?;
    let config = reconcile_config(&db, &stub.url())?;
    let reconciler = lunas::reconcile::Reconciler::new(Arc::clone(&store), &config.providers)?;
    let at = now + lease + Duration::from_secs(1);
    let mut tick = histogram();
    let (mut ticks, mut checked) = (0, 0);
    let tick_started = Instant::now();
    loop {
        let t = Instant::now();
        let report = reconciler.step(at).await.map_err(|e| e.to_string())?;
        if report.checked == 0 {
            break;
        }
        record(&mut tick, t.elapsed());
        ticks += 1;
        checked += report.checked as u64;
        if report.failed > 0 {
            problems.push(format!(
                "{label}: {} checks failed in one tick (the stub should always answer)",
                report.failed
            ));
        }
    }
    let tick_total = tick_started.elapsed();
    let mut idle_tick = histogram();
    for _ in 0..20 {
        let t = Instant::now();
        reconciler.step(at).await.map_err(|e| e.to_string())?;
        record(&mut idle_tick, t.elapsed());
    }
    let stub_calls = stub.calls.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "reconcile: {label}: claim p50 {} ms, tick p50 {} ms, idle tick p50 {} ms",
        ms(Percentiles::of(&claim).p50),
        ms(Percentiles::of(&tick).p50),
        ms(Percentiles::of(&idle_tick).p50)
    );
    drop(reconciler);
    drop(store);
    Ok(TableRun {
        label: label.to_owned(),
        total,
        due,
        fill,
        db_bytes,
        claim,
        claims,
        claimed,
        claim_total,
        tick,
        ticks,
        checked,
        tick_total,
        idle_tick,
        idle_claim,
        stub_calls,
    })
}

/// Registers `total` prepaid transactions of which `due` (spread evenly) are due at `now`.
async fn fill(
    store: &Arc<dyn Store>,
    total: u64,
    due: u64,
    now: OffsetDateTime,
    concurrency: usize,
) -> Result<()> {
    let every = (total / due.max(1)).max(1);
    let mut set = JoinSet::new();
    let mut due_left = due;
    for i in 0..total {
        let is_due = due_left > 0 && i % every == 0;
        if is_due {
            due_left -= 1;
        }
        let (at, check_after) = if is_due {
            // Registered two hours ago with a first check after a minute: overdue.
            (
                now - Duration::from_secs(7200),
                Some(Duration::from_secs(60)),
            )
        } else if i % 25 == 1 {
            (now, Some(Duration::from_secs(86_400)))
        } else {
            (now, None)
        };
        let reg = Registration {
            provider_id: "iak".into(),
            reference: format!("r{i}"),
            kind: TxKind::Prepaid,
            detail: Detail {
                amount: Some(25_000),
                product_code: Some("xld25000".into()),
                customer_id: Some(format!("0812{:08}", i % 100_000_000)),
                ..Detail::default()
            },
            at,
            check_after,
            origin: "registration",
            order: None,
            lease: None,
        };
        let store = Arc::clone(store);
        set.spawn(async move { store.register(reg).await.map(|_| ()) });
        if set.len() >= concurrency {
            if let Some(done) = set.join_next().await {
                done.map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    if due_left > 0 {
        return Err(format!("could not place {due_left} due transactions"));
    }
    Ok(())
}

/// A configuration whose `iak` account asks the stub, with the rate budget raised.
fn reconcile_config(db: &Path, stub: &str) -> Result<lunas::config::Config> {
    let text = format!(
        r#"
[storage]
url = "sqlite://{db}"

[[providers]]
id = "iak"
kind = "iak"
username = "{user}"
api_key = "{key}"
prepaid_url = "{stub}"
postpaid_url = "{stub}"
[providers.reconcile]
rate_per_minute = 1000000
timeout_ms = 10000
"#,
        db = db.display(),
        user = crate::gateway::IAK_USER,
        key = crate::gateway::IAK_KEY,
    );
    lunas::config::Config::from_parts(Some(&text), &[], &|_| None).map_err(|e| e.to_string())
}
