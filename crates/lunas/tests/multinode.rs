//! Three `lunas serve` processes on one PostgreSQL database, callbacks spread over all of them
//! (copies of one callback sent to different nodes at once), one node SIGKILLed mid-run.
//! Checked: no acknowledged callback lost, no transaction finalized twice, every event
//! delivered at least once and in order per transaction, nothing left stuck once the dead
//! node's leases end. Runs when `LUNAS_TEST_POSTGRES_URL` is set; skipped otherwise.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::process::{Served, BOUND};
use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};
use serde_json::Value;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const REFS: usize = 60;
/// Attempts in flight per node.
const PER_NODE: usize = 4;

/// What the merchant's endpoint received: (webhook-id, ref, type), in arrival order.
#[derive(Default)]
struct Inbox {
    arrivals: Vec<(String, String, String)>,
    /// Events already refused once (each event's first attempt fails for some refs, so that
    /// retries are part of the run).
    refused: HashSet<String>,
}

/// The merchant's endpoint: records what arrives; while its gate is closed it holds every
/// request unanswered (so a node can be killed with attempts surely in flight).
struct Merchant {
    inbox: Mutex<Inbox>,
    open: tokio::sync::watch::Sender<bool>,
    held: AtomicUsize,
}

impl Merchant {
    fn arrivals(&self) -> Vec<(String, String, String)> {
        self.inbox.lock().unwrap().arrivals.clone()
    }
}

async fn receive(
    State(merchant): State<Arc<Merchant>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    merchant.held.fetch_add(1, Ordering::SeqCst);
    let _ = merchant.open.subscribe().wait_for(|open| *open).await;
    merchant.held.fetch_sub(1, Ordering::SeqCst);
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let reference = v["data"]["ref"].as_str().unwrap_or_default().to_owned();
    let event_type = v["type"].as_str().unwrap_or_default().to_owned();
    let mut inbox = merchant.inbox.lock().unwrap();
    let flaky = reference
        .rsplit('-')
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n % 7 == 3);
    if flaky && inbox.refused.insert(id.clone()) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    inbox.arrivals.push((id, reference, event_type));
    StatusCode::OK
}

async fn start_receiver(open: bool) -> (SocketAddr, Arc<Merchant>) {
    let merchant = Arc::new(Merchant {
        inbox: Mutex::new(Inbox::default()),
        open: tokio::sync::watch::Sender::new(open),
        held: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&merchant));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, merchant)
}

/// The final outcome a ref gets in this run.
fn outcome(i: usize) -> (PrepaidStatus, &'static str) {
    if i % 4 == 1 {
        (PrepaidStatus::Failed, "failed")
    } else {
        (PrepaidStatus::Success, "succeeded")
    }
}

/// POSTs a callback to node `first`, and to the next live node whenever a node does not answer
/// 200 (a provider retries until it is acknowledged). Returns whether it was acknowledged.
async fn deliver_callback(
    client: &reqwest::Client,
    nodes: &[SocketAddr],
    alive: &[AtomicBool],
    first: usize,
    body: &str,
) -> bool {
    for attempt in 0..12 {
        let n = (first + attempt) % nodes.len();
        if !alive[n].load(Ordering::SeqCst) {
            continue;
        }
        let sent = client
            .post(format!("http://{}/callbacks/iak", nodes[n]))
            .body(body.to_owned())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if matches!(&sent, Ok(r) if r.status() == 200) {
            return true;
        }
    }
    false
}

/// Every event of the feed, oldest first, read from one node.
async fn feed(client: &reqwest::Client, node: SocketAddr) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let page: Value = client
            .get(format!(
                "http://{node}/api/v1/events?after={after}&limit=1000"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return all;
        }
        after = page["next_cursor"].as_str().unwrap().to_owned();
        all.extend(events);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_killed_lose_nothing_and_keep_order() {
    if postgres_admin_url().is_none() {
        skip(
            "three_nodes_one_killed_lose_nothing_and_keep_order",
            "it needs PostgreSQL: set LUNAS_TEST_POSTGRES_URL (the whole suite then runs on \
             PostgreSQL; without it, on SQLite)",
        );
        return;
    }
    eprintln!("the black-box suite and this test run on PostgreSQL (LUNAS_TEST_POSTGRES_URL)");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lunas.db");
    let (rx_addr, merchant) = start_receiver(false).await;
    let extra = format!(
        r#"
[[endpoints]]
id = "merchant"
url = "http://{rx_addr}/hook"
secret = "{SECRET}"

[delivery]
per_endpoint = {PER_NODE}
concurrency = {PER_NODE}
schedule = ["100ms", "200ms", "300ms", "500ms", "500ms", "1s", "1s", "2s", "2s", "5s"]
timeout_ms = 1000
lease_ms = 2000
poll_ms = 50
"#
    );
    // Lock waits across nodes last one group commit; leave them room on a loaded machine.
    let text = config_text(&db, &extra).replace("busy_timeout_ms = 200", "busy_timeout_ms = 5000");
    let config = dir.path().join("lunas.toml");
    std::fs::write(&config, text).unwrap();

    let mut served = Vec::new();
    for _ in 0..3 {
        served.push(Served::start(dir.path(), &config, &[("LUNAS_LOG", "warn,lunas=info")]).await);
    }
    let nodes: Arc<Vec<SocketAddr>> = Arc::new(served.iter().map(|s| s.addr).collect());
    let alive: Arc<Vec<AtomicBool>> = Arc::new((0..3).map(|_| AtomicBool::new(true)).collect());
    let client = reqwest::Client::new();
    let acked = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(Mutex::new(Vec::<String>::new()));
    let killed_tx = tokio::sync::watch::Sender::new(false);

    // Every ref: a pending callback to one node, then its final callback sent twice at once,
    // to two different nodes. Twenty refs at a time.
    let limit = Arc::new(tokio::sync::Semaphore::new(20));
    let mut tasks = Vec::new();
    for i in 0..REFS {
        let (client, nodes, alive, acked, lost, limit) = (
            client.clone(),
            Arc::clone(&nodes),
            Arc::clone(&alive),
            Arc::clone(&acked),
            Arc::clone(&lost),
            Arc::clone(&limit),
        );
        let mut killed = killed_tx.subscribe();
        tasks.push(tokio::spawn(async move {
            if i >= REFS / 2 {
                // The second half is sent after the kill, to the nodes still up.
                let _ = killed.wait_for(|k| *k).await;
            }
            let _permit = limit.acquire_owned().await.unwrap();
            let reference = format!("mn-{i}");
            let pending = iak_body(
                &reference,
                PrepaidStatus::Process,
                Format::Json,
                ApiVersion::V2,
            );
            if !deliver_callback(&client, &nodes, &alive, i, &pending).await {
                lost.lock().unwrap().push(format!("{reference} pending"));
            }
            let (status, _) = outcome(i);
            let fin = iak_body(&reference, status, Format::Json, ApiVersion::V2);
            let (a, b) = tokio::join!(
                deliver_callback(&client, &nodes, &alive, i + 1, &fin),
                deliver_callback(&client, &nodes, &alive, i + 2, &fin)
            );
            if !(a && b) {
                lost.lock().unwrap().push(format!("{reference} final"));
            }
            acked.fetch_add(1, Ordering::SeqCst);
        }));
    }

    // Mid-run, node 0 dies without a word, once every node has its full share of attempts in
    // flight (held by the merchant): its callbacks in flight fail, its leases are left behind.
    tokio::time::timeout(BOUND, async {
        while merchant.held.load(Ordering::SeqCst) < 3 * PER_NODE {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("every node has attempts in flight in time");
    alive[0].store(false, Ordering::SeqCst);
    let killed = served.remove(0);
    let killed_log = killed.kill().await;
    killed_tx.send_replace(true);
    merchant.open.send_replace(true);
    for t in tasks {
        tokio::time::timeout(BOUND, t)
            .await
            .expect("every callback is answered in time")
            .unwrap();
    }
    assert!(
        lost.lock().unwrap().is_empty(),
        "callbacks no live node acknowledged: {:?}",
        lost.lock().unwrap()
    );

    // Every acknowledged callback is there, with the outcome it carried.
    let survivor = served[0].addr;
    for i in 0..REFS {
        let reference = format!("mn-{i}");
        let tx: Value = client
            .get(format!(
                "http://{survivor}/api/v1/transactions/iak/{reference}"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(tx["state"], outcome(i).1, "{reference}: {tx}");
        assert_eq!(tx["needs_review"], false, "{reference}: {tx}");
    }

    // Exactly one final event per transaction, after exactly one pending one.
    let events = feed(&client, survivor).await;
    let mut per_tx: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for e in &events {
        per_tx
            .entry(e["data"]["ref"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                e["id"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
            ));
    }
    assert_eq!(per_tx.len(), REFS);
    for (i, (reference, evs)) in (0..REFS).map(|i| {
        let r = format!("mn-{i}");
        (i, (r.clone(), per_tx[&r].clone()))
    }) {
        let types: Vec<&str> = evs.iter().map(|(_, t)| t.as_str()).collect();
        let fin = format!("transaction.{}", outcome(i).1);
        assert_eq!(
            types,
            ["transaction.pending", fin.as_str()],
            "{reference}: one pending, then one final event"
        );
    }

    // Every event reaches the merchant, the dead node's leased ones included once their lease
    // ends (bounded wait, no fixed sleep).
    let wanted: HashSet<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let arrived_all = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let got: HashSet<String> = merchant.arrivals().iter().map(|a| a.0.clone()).collect();
            if wanted.is_subset(&got) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let arrivals = merchant.arrivals();
    assert!(
        arrived_all.is_ok(),
        "events never delivered: {:?}\nkilled node's log: {killed_log:#?}",
        wanted
            .iter()
            .filter(|id| !arrivals.iter().any(|a| &a.0 == *id))
            .collect::<Vec<_>>()
    );

    // In order per transaction: the first arrival of each event follows the feed's order.
    for (reference, evs) in &per_tx {
        let mut firsts: Vec<&str> = Vec::new();
        for (id, r, _) in &arrivals {
            if r == reference && !firsts.contains(&id.as_str()) {
                firsts.push(id);
            }
        }
        let feed_order: Vec<&str> = evs.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(firsts, feed_order, "{reference}: delivered out of order");
    }

    // Nothing stuck: no delivery left pending or dead on the survivors' view.
    let settled = tokio::time::timeout(BOUND, async {
        loop {
            let stats: Value = client
                .get(format!("http://{survivor}/api/v1/endpoints"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let endpoint = &stats["items"][0];
            if endpoint["pending"] == 0 && endpoint["dead"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "deliveries left pending or dead");

    for s in served {
        s.kill().await;
    }
    drop_storage(&db);
}

/// `--role api` answers callbacks but delivers nothing; `--role worker` serves only health and
/// delivers. Runs on either backend (two processes on one SQLite file work too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_roles_split_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lunas.db");
    let (rx_addr, merchant) = start_receiver(true).await;
    let extra = format!(
        r#"
[[endpoints]]
id = "merchant"
url = "http://{rx_addr}/hook"
secret = "{SECRET}"

[delivery]
poll_ms = 50
"#
    );
    let text = config_text(&db, &extra).replace("busy_timeout_ms = 200", "busy_timeout_ms = 5000");
    let config = dir.path().join("lunas.toml");
    std::fs::write(&config, text).unwrap();
    let start = |role: &'static str| {
        let (dir, config) = (dir.path().to_owned(), config.clone());
        async move {
            let mut cmd = common::process::lunas(&dir);
            cmd.args(["serve", "--role", role, "--config"])
                .arg(&config)
                .env("LUNAS_LOG", "warn,lunas=info");
            Served::start_command(cmd).await
        }
    };
    let api = start("api").await;
    let client = reqwest::Client::new();
    let body = iak_body(
        "roles-1",
        PrepaidStatus::Success,
        Format::Json,
        ApiVersion::V2,
    );
    let res = client
        .post(api.url("/callbacks/iak"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The API node has no delivery worker: nothing reaches the merchant until a worker runs.
    let worker = start("worker").await;
    let health = client.get(worker.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client.get(worker.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let admin = client
        .get(worker.url("/api/v1/transactions"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 404, "a worker serves no API");
    tokio::time::timeout(BOUND, async {
        while merchant.arrivals().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the worker delivers the event the API node committed");
    let arrivals = merchant.arrivals();
    assert_eq!(arrivals[0].1, "roles-1");
    assert_eq!(arrivals[0].2, "transaction.succeeded");
    api.kill().await;
    worker.kill().await;
    drop_storage(&db);
}
