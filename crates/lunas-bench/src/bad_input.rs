//! The bad-input campaign: every class of bad callback, sent while valid load runs, each
//! answered with its expected status and JSON error code; slow-loris connections that must not
//! block anyone; and the proof that no state changed (every transaction and event that is not
//! the valid load's is the same before and after).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lunas_protocol::iak::prepaid::{PrepaidCallback, PrepaidStatus};
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format, Secret};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::gateway::{event_subject, mcp_credentials, Admin, GatewaySpec, BODY_LIMIT};
use crate::gateway::{IAK_KEY, IAK_USER, IDSL_KEY, IDSL_USER};
use crate::load::{self, LoadSpec, Stop};
use crate::mix::va;
use crate::util::{fresh_dir, group, ms, rate, secs, table, Result, Section};

#[derive(Debug, Clone)]
pub struct BadInputOptions {
    pub lunas_bin: PathBuf,
    pub work_dir: PathBuf,
    pub seed: u64,
    /// Requests per class.
    pub per_class: usize,
    /// Bad requests in flight at once.
    pub concurrency: usize,
    /// Workers of the valid load that runs meanwhile.
    pub load_concurrency: usize,
    /// Slow-loris connections of each kind.
    pub slowloris: usize,
    /// How long a slow-loris connection takes to send its request (or stays idle).
    pub slowloris_window: Duration,
    /// Seconds per fuzz target (0: skip fuzzing).
    pub fuzz_secs: u64,
}

/// One bad request: raw bytes for one connection, and the answer it must get.
struct Bad {
    bytes: Vec<u8>,
    status: u16,
    code: &'static str,
}

/// A class of bad input.
struct Class {
    name: &'static str,
    what: &'static str,
    make: fn(&mut ChaCha8Rng, usize) -> Bad,
}

const CLASSES: &[Class] = &[
    Class {
        name: "malformed JSON",
        what: "syntax errors, trailing garbage, NUL in a string; IAK, IDSL and MCPayment",
        make: malformed_json,
    },
    Class {
        name: "truncated JSON",
        what: "a valid signed callback cut at a random byte",
        make: truncated_json,
    },
    Class {
        name: "truncated XML",
        what: "a valid signed XML callback cut at a random byte",
        make: truncated_xml,
    },
    Class {
        name: "XML billion laughs",
        what: "nested entity definitions in a DOCTYPE",
        make: billion_laughs,
    },
    Class {
        name: "XML external entity",
        what: "a SYSTEM entity naming file:///etc/passwd",
        make: external_entity,
    },
    Class {
        name: "XML undeclared entity",
        what: "`&xxe;` with no DOCTYPE",
        make: undeclared_entity,
    },
    Class {
        name: "XML too deep / too many elements",
        what: "40 nested levels, or 10 001 elements",
        make: xml_too_large,
    },
    Class {
        name: "wrong IAK/IDSL sign",
        what: "a forged outcome for a known pending transaction (wrong key), JSON and XML",
        make: wrong_iak_sign,
    },
    Class {
        name: "wrong mcp-signature",
        what: "a forged VA payment: wrong, empty, missing, or another VA's signature",
        make: wrong_mcp_signature,
    },
    Class {
        name: "missing field",
        what: "a mandatory field removed",
        make: missing_field,
    },
    Class {
        name: "invalid field",
        what: "an amount that is not whole rupiah",
        make: invalid_field,
    },
    Class {
        name: "empty body",
        what: "no bytes, or only white space",
        make: empty_body,
    },
    Class {
        name: "neither JSON nor XML",
        what: "a form-encoded body",
        make: unknown_format,
    },
    Class {
        name: "oversized, Content-Length",
        what: "a body over `body_limit` with its Content-Length (sent in full, or only declared: 10 GB)",
        make: oversized_declared,
    },
    Class {
        name: "oversized, chunked",
        what: "a body over `body_limit` in chunks, no Content-Length",
        make: oversized_chunked,
    },
    Class {
        name: "unknown provider",
        what: "a valid callback to /callbacks/<unconfigured>",
        make: unknown_provider,
    },
];

/// Transactions that bad input tries to change: pending IAK/IDSL ones and awaiting VAs.
const VICTIMS: usize = 20;

pub async fn run(o: &BadInputOptions) -> Result<Section> {
    let dir = fresh_dir(&o.work_dir, "bad-input")?;
    let spec = GatewaySpec {
        bin: o.lunas_bin.clone(),
        dir: dir.clone(),
        endpoint: None,
        storage_url: None,
    };
    let gw = spec.start().await?;
    eprintln!("bad-input: lunas pid {} on {}", gw.pid, gw.addr);
    let admin = Admin::new(&gw);
    let mut problems = Vec::new();
    seed_victims(&admin).await?;
    let before_txs = admin.all_transactions().await?;
    let before_events = admin.all_events().await?;

    // The valid load, until the campaign ends.
    let flag = Arc::new(AtomicBool::new(false));
    let mut s = LoadSpec::new(
        "bi-load",
        format!("http://{}", gw.addr),
        o.load_concurrency,
        Stop::Flag(Arc::clone(&flag)),
    );
    s.seed = o.seed;
    let client = load::client(o.load_concurrency);
    let load = tokio::spawn(async move { load::run(&client, &s).await });

    let started = Instant::now();
    let slow = tokio::spawn(slowloris(gw.addr, o.slowloris, o.slowloris_window));
    let results = campaign(gw.addr, o).await;
    let campaign_time = started.elapsed();
    let slow = slow.await.map_err(|e| format!("slow-loris task: {e}"))?;
    flag.store(true, Ordering::Relaxed);
    let load = load.await.map_err(|e| format!("load task: {e}"))?;
    let total_time = started.elapsed();

    let after_txs = admin.all_transactions().await?;
    let after_events = admin.all_events().await?;
    let peak_rss = gw.peak_rss_kib();
    gw.kill9().await?;

    // --- the answers -----------------------------------------------------------------------
    let mut body = String::new();
    let _ = writeln!(
        body,
        "{} requests of each class ({} in flight, one connection each, raw HTTP/1.1 so sizes \
         and framing are exactly as written), sent while {} workers send the valid ingest mix. \
         `body_limit` = {BODY_LIMIT}. Before the campaign {VICTIMS} IAK and {VICTIMS} VA \
         transactions were created pending / awaiting payment as targets of the forgeries.\n",
        o.per_class, o.concurrency, o.load_concurrency
    );
    let mut rows = Vec::new();
    let (mut sent_total, mut right_total) = (0, 0);
    for (class, r) in CLASSES.iter().zip(&results) {
        sent_total += r.sent;
        right_total += r.right;
        let wrong: Vec<String> = r.wrong.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        rows.push(vec![
            class.name.to_owned(),
            class.what.to_owned(),
            r.expected.clone(),
            group(r.sent as u64),
            group(r.right as u64),
            if wrong.is_empty() {
                "0".into()
            } else {
                wrong.join("; ")
            },
        ]);
        if r.right != r.sent {
            problems.push(format!(
                "{}: {} of {} answered wrongly: {}",
                class.name,
                r.sent - r.right,
                r.sent,
                wrong.join("; ")
            ));
        }
    }
    body.push_str(&table(
        &[
            "class",
            "what",
            "expected",
            "sent",
            "answered correctly",
            "otherwise",
        ],
        &rows,
    ));

    // --- slow loris ----------------------------------------------------------------------------
    let _ = writeln!(
        body,
        "\n**Slow loris.** {} connections of each kind over a window of {} s: the request head \
         dribbled a byte at a time (then a valid callback), the body dribbled a byte at a time \
         (a valid callback), and connections that send nothing at all.\n",
        o.slowloris,
        o.slowloris_window.as_secs()
    );
    let mut srows = Vec::new();
    for (kind, outcomes) in &slow {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut longest = Duration::ZERO;
        for oc in outcomes {
            *counts.entry(oc.label()).or_default() += 1;
            longest = longest.max(oc.elapsed);
        }
        srows.push(vec![
            (*kind).to_owned(),
            counts
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; "),
            secs(longest),
        ]);
        for oc in outcomes {
            // 200: it finished within the gateway's read timeout; 408: its body did not
            // (`server.read_timeout_ms`), which is the gateway protecting itself. Anything else
            // is wrong.
            if let SlowEnd::Answered(status) = oc.end {
                if status != 200 && status != 408 {
                    problems.push(format!("slow loris {kind}: answered {status}"));
                }
            }
        }
    }
    body.push_str(&table(&["kind", "outcome", "longest s"], &srows));
    let idle_open = slow
        .iter()
        .filter(|(k, _)| *k == "idle")
        .flat_map(|(_, v)| v)
        .filter(|o| matches!(o.end, SlowEnd::StillOpen))
        .count();
    if idle_open > 0 {
        let _ = writeln!(
            body,
            "\nNote: {idle_open} idle connections were still open when the window ended: the \
             window is shorter than the gateway's `server.read_timeout_ms`, after which it closes \
             a silent connection."
        );
    }
    let lp = load.percentiles();
    let _ = writeln!(
        body,
        "\n**The valid load meanwhile** ({} s): {} callbacks answered correctly at {} req/s, \
         p50 {} ms, p99 {} ms, max {} ms; {} wrong.",
        secs(load.elapsed),
        group(load.ok),
        rate(load.throughput()),
        ms(lp.p50),
        ms(lp.p99),
        ms(lp.max),
        group(load.failed())
    );
    if load.failed() > 0 {
        problems.push(format!(
            "the valid load got {} wrong answers during the campaign: {:?}; e.g. {:?}",
            load.failed(),
            load.failures,
            load.samples
        ));
    }

    // --- no state changed ------------------------------------------------------------------------
    let ours = |(_, r): &(String, String)| r.starts_with("bi-load-") || r.starts_with("slow-");
    let not_load_before = before_txs.keys().filter(|k| !ours(k)).count();
    let not_load_after = after_txs.keys().filter(|k| !ours(k)).count();
    let changed: Vec<String> = before_txs
        .iter()
        .filter(|(k, v)| after_txs.get(*k) != Some(*v))
        .map(|(k, _)| format!("{}/{}", k.0, k.1))
        .collect();
    let appeared: Vec<String> = after_txs
        .keys()
        .filter(|k| !ours(k) && !before_txs.contains_key(*k))
        .map(|k| format!("{}/{}", k.0, k.1))
        .collect();
    let ev_not_load = |evs: &[Value]| evs.iter().filter(|e| !ours(&event_subject(e))).count();
    let (ev_before, ev_after) = (ev_not_load(&before_events), ev_not_load(&after_events));
    let load_txs = after_txs.keys().filter(|k| ours(k)).count();
    let _ = writeln!(
        body,
        "\n**No state changed.** Transactions other than the valid load's (and the slow-loris \
         callbacks'): {not_load_before} before, {not_load_after} after; changed: {}; new: {}. \
         Their events: {ev_before} before, {ev_after} after. (The valid load created {} \
         transactions meanwhile; refused callbacks are kept as evidence in the observations, \
         which change no transaction.)",
        changed.len(),
        appeared.len(),
        group(load_txs as u64),
    );
    if !changed.is_empty() || !appeared.is_empty() || ev_before != ev_after {
        problems.push(format!(
            "state changed: {} transactions changed {:?}, {} appeared {:?}, events {ev_before} → {ev_after}",
            changed.len(),
            &changed[..changed.len().min(5)],
            appeared.len(),
            &appeared[..appeared.len().min(5)]
        ));
    }
    let _ = writeln!(
        body,
        "\nCampaign {} s (with the slow-loris window {} s); lunas peak RSS {}.",
        secs(campaign_time),
        secs(total_time),
        peak_rss.map_or("unknown".into(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        )),
    );

    let mut headline = vec![format!(
        "Bad input: {} of {} bad requests in {} classes answered correctly; non-load state {}; valid load meanwhile p99 {} ms, {} wrong.",
        group(right_total as u64),
        group(sent_total as u64),
        CLASSES.len(),
        if changed.is_empty() && appeared.is_empty() && ev_before == ev_after {
            "unchanged"
        } else {
            "**changed**"
        },
        ms(lp.p99),
        load.failed()
    )];

    // --- fuzzing -----------------------------------------------------------------------------
    if o.fuzz_secs > 0 {
        let (text, line, fuzz_problems) = crate::fuzz::run_all(o.fuzz_secs).await;
        body.push_str("\n**Fuzzing.** ");
        body.push_str(&text);
        headline.push(line);
        problems.extend(fuzz_problems);
    } else {
        body.push_str("\n**Fuzzing:** skipped (`--fuzz-secs 0`).\n");
    }

    Ok(Section {
        title: "Bad input: malformed, oversized, forged, hostile and slow requests under load"
            .into(),
        body,
        headline,
        problems,
    })
}

/// Creates the pending transactions the forgeries aim at, through valid callbacks.
async fn seed_victims(admin: &Admin) -> Result<()> {
    for i in 0..VICTIMS {
        let (provider, user, key) = if i % 2 == 0 {
            ("iak", IAK_USER, IAK_KEY)
        } else {
            ("idsl", IDSL_USER, IDSL_KEY)
        };
        let cb = iak_callback(&victim(i), PrepaidStatus::Process, user, key);
        post_ok(
            admin,
            provider,
            cb.encode(Format::Json, ApiVersion::V2),
            None,
        )
        .await?;
        let tx = va(
            &va_victim(i),
            TransactionStatus::Active,
            PaymentSystem::Closed,
            &[],
        );
        let sig =
            mcp_credentials().callback_signature(&tx.transaction_id, &tx.external_id, &tx.order_id);
        post_ok(admin, "mcp", tx.encode(), Some(sig)).await?;
    }
    Ok(())
}

async fn post_ok(admin: &Admin, provider: &str, body: String, sig: Option<String>) -> Result<()> {
    let mut req = admin
        .client
        .post(format!("{}/callbacks/{provider}", admin.base))
        .body(body);
    if let Some(sig) = sig {
        req = req.header("mcp-signature", sig);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    if res.status() != 200 {
        return Err(format!(
            "seeding a victim: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        ));
    }
    Ok(())
}

fn victim(i: usize) -> String {
    format!("victim-{i}")
}

fn va_victim(i: usize) -> String {
    format!("va-victim-{i}")
}

fn iak_callback(reference: &str, status: PrepaidStatus, user: &str, key: &str) -> PrepaidCallback {
    let (rc, message) = match status {
        PrepaidStatus::Success => ("00", "SUCCESS"),
        PrepaidStatus::Failed => ("07", "FAILED"),
        PrepaidStatus::Process => ("39", "PROCESS"),
    };
    PrepaidCallback {
        ref_id: reference.into(),
        status,
        product_code: "xld25000".into(),
        customer_id: "0817777215".into(),
        price: 25000,
        message: message.into(),
        sn: (status == PrepaidStatus::Success).then(|| "123456789".into()),
        pin: None,
        activation_code: None,
        balance: 997_061_249,
        tr_id: 3482,
        rc: rc.into(),
        sign: String::new(),
    }
    .signed(user, &Secret::new(key))
}

// --- the classes ---------------------------------------------------------------------------------

fn post(path: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn bad(path: &str, body: &[u8], extra: &[(&str, &str)], status: u16, code: &'static str) -> Bad {
    Bad {
        bytes: post(path, body, extra),
        status,
        code,
    }
}

/// A signed IAK/IDSL callback (the right key) for a victim: (path, body).
fn valid_iak(rng: &mut ChaCha8Rng, format: Format) -> (String, String) {
    let i = rng.gen_range(0..VICTIMS);
    let (provider, user, key) = if rng.gen_bool(0.5) {
        ("iak", IAK_USER, IAK_KEY)
    } else {
        ("idsl", IDSL_USER, IDSL_KEY)
    };
    let version = if rng.gen_bool(0.5) {
        ApiVersion::V1
    } else {
        ApiVersion::V2
    };
    let cb = iak_callback(&victim(i), PrepaidStatus::Success, user, key);
    (format!("/callbacks/{provider}"), cb.encode(format, version))
}

fn malformed_json(rng: &mut ChaCha8Rng, n: usize) -> Bad {
    let r = format!("bad-{n}");
    let bodies = [
        format!(r#"{{"data": {{"ref_id": "{r}", "status": "2""#),
        format!(r#"{{"data": {{"ref_id": "{r}",}}}}"#),
        format!(r#"{{"data": {{"ref_id": "{r}"}}}} trailing"#),
        format!("{{\"data\": {{\"ref_id\": \"{r}\u{0}\""),
        format!(r#"{{"data": {{"ref_id": '{r}'}}}}"#),
    ];
    let body = &bodies[n % bodies.len()];
    match rng.gen_range(0..3) {
        0 => bad("/callbacks/iak", body.as_bytes(), &[], 400, "invalid_json"),
        1 => bad("/callbacks/idsl", body.as_bytes(), &[], 400, "invalid_json"),
        _ => bad(
            "/callbacks/mcp",
            format!(r#"{{"external_id": "{r}", "#).as_bytes(),
            &[("mcp-signature", "00")],
            400,
            "invalid_json",
        ),
    }
}

fn truncated_json(rng: &mut ChaCha8Rng, _: usize) -> Bad {
    if rng.gen_bool(0.3) {
        let tx = va(
            &va_victim(rng.gen_range(0..VICTIMS)),
            TransactionStatus::Paid,
            PaymentSystem::Closed,
            &[("T1", 100_000)],
        );
        let sig =
            mcp_credentials().callback_signature(&tx.transaction_id, &tx.external_id, &tx.order_id);
        let body = tx.encode();
        let cut = rng.gen_range(1..body.trim_end().len());
        return bad(
            "/callbacks/mcp",
            &body.as_bytes()[..cut],
            &[("mcp-signature", &sig)],
            400,
            "invalid_json",
        );
    }
    let (path, body) = valid_iak(rng, Format::Json);
    let cut = rng.gen_range(1..body.trim_end().len());
    bad(&path, &body.as_bytes()[..cut], &[], 400, "invalid_json")
}

fn truncated_xml(rng: &mut ChaCha8Rng, _: usize) -> Bad {
    let (path, body) = valid_iak(rng, Format::Xml);
    // Cut after the root element has opened: before it there is no document to speak of.
    let root = body.find("<mp>").expect("an IAK XML body has <mp>") + 1;
    let cut = rng.gen_range(root..body.trim_end().len());
    bad(&path, &body.as_bytes()[..cut], &[], 400, "invalid_xml")
}

fn billion_laughs(rng: &mut ChaCha8Rng, _: usize) -> Bad {
    let (path, body) = valid_iak(rng, Format::Xml);
    let laughs = r#"<!DOCTYPE mp [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<mp>"#;
    let body = body.replacen("<mp>", laughs, 1).replacen(
        "<message>SUCCESS</message>",
        "<message>&lol9;</message>",
        1,
    );
    bad(&path, body.as_bytes(), &[], 400, "xml_doctype")
}

fn external_entity(rng: &mut ChaCha8Rng, _: usize) -> Bad {
    let (path, body) = valid_iak(rng, Format::Xml);
    let body = body
        .replacen(
            "<mp>",
            "<!DOCTYPE mp [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<mp>",
            1,
        )
        .replacen("<message>SUCCESS</message>", "<message>&xxe;</message>", 1);
    bad(&path, body.as_bytes(), &[], 400, "xml_doctype")
}

fn undeclared_entity(rng: &mut ChaCha8Rng, _: usize) -> Bad {
    let (path, body) = valid_iak(rng, Format::Xml);
    let body = body.replacen("<message>SUCCESS</message>", "<message>&xxe;</message>", 1);
    bad(&path, body.as_bytes(), &[], 400, "xml_entity")
}

fn xml_too_large(rng: &mut ChaCha8Rng, n: usize) -> Bad {
    let (path, body) = valid_iak(rng, Format::Xml);
    let inner = if n % 2 == 0 {
        format!("{}x{}", "<a>".repeat(40), "</a>".repeat(40))
    } else {
        "<a/>".repeat(10_001)
    };
    let body = body.replacen("<mp>", &format!("<mp>{inner}"), 1);
    bad(&path, body.as_bytes(), &[], 400, "xml_too_large")
}

fn wrong_iak_sign(rng: &mut ChaCha8Rng, n: usize) -> Bad {
    let i = rng.gen_range(0..VICTIMS);
    let (path, user) = if i % 2 == 0 {
        ("/callbacks/iak", IAK_USER)
    } else {
        ("/callbacks/idsl", IDSL_USER)
    };
    let status = if n % 2 == 0 {
        PrepaidStatus::Success
    } else {
        PrepaidStatus::Failed
    };
    let cb = iak_callback(&victim(i), status, user, "not-the-key");
    let format = if rng.gen_bool(0.5) {
        Format::Json
    } else {
        Format::Xml
    };
    let body = cb.encode(format, ApiVersion::V2);
    bad(path, body.as_bytes(), &[], 401, "bad_signature")
}

fn wrong_mcp_signature(rng: &mut ChaCha8Rng, n: usize) -> Bad {
    let i = rng.gen_range(0..VICTIMS);
    let tx = va(
        &va_victim(i),
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        &[(&format!("F{n}"), 100_000)],
    );
    let creds = mcp_credentials();
    let right = creds.callback_signature(&tx.transaction_id, &tx.external_id, &tx.order_id);
    let body = tx.encode();
    let (sig, with_header) = match n % 4 {
        0 => (format!("0000{}", &right[4..]), true),
        1 => (String::new(), true),
        2 => (String::new(), false),
        _ => {
            let other = (i + 1) % VICTIMS;
            (
                creds.callback_signature(
                    &format!("trx-{}", va_victim(other)),
                    &va_victim(other),
                    &format!("ORD-{}", va_victim(other)),
                ),
                true,
            )
        }
    };
    let headers: Vec<(&str, &str)> = if with_header {
        vec![("mcp-signature", sig.as_str())]
    } else {
        Vec::new()
    };
    bad(
        "/callbacks/mcp",
        body.as_bytes(),
        &headers,
        401,
        "bad_signature",
    )
}

fn missing_field(rng: &mut ChaCha8Rng, n: usize) -> Bad {
    let (path, body) = valid_iak(rng, Format::Json);
    let mut v: Value = serde_json::from_str(&body).expect("valid JSON");
    let fields = [
        "ref_id", "status", "price", "message", "balance", "tr_id", "rc", "sign",
    ];
    v["data"]
        .as_object_mut()
        .expect("data")
        .remove(fields[n % fields.len()]);
    bad(&path, v.to_string().as_bytes(), &[], 400, "missing_field")
}

fn invalid_field(rng: &mut ChaCha8Rng, n: usize) -> Bad {
    let (path, body) = valid_iak(rng, Format::Json);
    let mut v: Value = serde_json::from_str(&body).expect("valid JSON");
    let garbage = [
        ("price", json!("25.000,00")),
        ("price", json!("abc")),
        ("price", json!("25000.5")),
        ("price", json!(25000.5)),
        ("price", json!("99999999999999999999")),
        ("balance", json!("lots")),
        ("tr_id", json!({"id": 1})),
    ];
    let (field, value) = &garbage[n % garbage.len()];
    v["data"][*field] = value.clone();
    bad(&path, v.to_string().as_bytes(), &[], 400, "invalid_field")
}

fn empty_body(_: &mut ChaCha8Rng, n: usize) -> Bad {
    let paths = ["/callbacks/iak", "/callbacks/idsl", "/callbacks/mcp"];
    let body: &[u8] = if n % 2 == 0 { b"" } else { b"   \r\n\t " };
    bad(paths[n % 3], body, &[], 400, "empty_body")
}

fn unknown_format(_: &mut ChaCha8Rng, n: usize) -> Bad {
    let body = format!("ref_id=victim-{}&status=1&sign=00", n % VICTIMS);
    bad(
        "/callbacks/iak",
        body.as_bytes(),
        &[],
        400,
        "unknown_format",
    )
}

fn oversized_declared(rng: &mut ChaCha8Rng, n: usize) -> Bad {
    let (path, mut body) = valid_iak(rng, Format::Json);
    if n % 3 == 0 {
        // Declared only: the gateway must answer from the header, reading nothing.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n"
        );
        return Bad {
            bytes: head.into_bytes(),
            status: 413,
            code: "body_too_large",
        };
    }
    let pad = BODY_LIMIT + 1 - body.len() + rng.gen_range(0..4096);
    body.push_str(&" ".repeat(pad));
    bad(&path, body.as_bytes(), &[], 413, "body_too_large")
}

fn oversized_chunked(rng: &mut ChaCha8Rng, _: usize) -> Bad {
    let (path, mut body) = valid_iak(rng, Format::Json);
    let pad = BODY_LIMIT + 1 - body.len() + rng.gen_range(0..4096);
    body.push_str(&" ".repeat(pad));
    let chunk = rng.gen_range(100..8192);
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for piece in body.as_bytes().chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    Bad {
        bytes: out,
        status: 413,
        code: "body_too_large",
    }
}

fn unknown_provider(rng: &mut ChaCha8Rng, n: usize) -> Bad {
    let (_, body) = valid_iak(rng, Format::Json);
    let path = ["/callbacks/nosuch", "/callbacks/IAK", "/callbacks/iak2"][n % 3];
    bad(path, body.as_bytes(), &[], 404, "unknown_provider")
}

// --- sending ---------------------------------------------------------------------------------

struct ClassResult {
    expected: String,
    sent: usize,
    right: usize,
    wrong: BTreeMap<String, usize>,
}

async fn campaign(addr: SocketAddr, o: &BadInputOptions) -> Vec<ClassResult> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0xbad);
    // Every request of every class, interleaved.
    let mut jobs = Vec::new();
    for n in 0..o.per_class {
        for (c, class) in CLASSES.iter().enumerate() {
            jobs.push((c, (class.make)(&mut rng, n)));
        }
    }
    let mut results: Vec<ClassResult> = CLASSES
        .iter()
        .map(|_| ClassResult {
            expected: String::new(),
            sent: 0,
            right: 0,
            wrong: BTreeMap::new(),
        })
        .collect();
    let mut set = JoinSet::new();
    let mut jobs = jobs.into_iter();
    loop {
        while set.len() < o.concurrency.max(1) {
            let Some((c, job)) = jobs.next() else { break };
            set.spawn(async move {
                let answer = raw_exchange(addr, &job.bytes).await;
                (c, job.status, job.code, answer)
            });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let (c, status, code, answer) = done.expect("a bad-input task panicked");
        let r = &mut results[c];
        r.expected = format!("{status} {code}");
        r.sent += 1;
        match answer {
            Ok((got, body)) => {
                let got_code = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| {
                        let has_message = v["error"]["message"]
                            .as_str()
                            .is_some_and(|m| !m.is_empty());
                        v["error"]["code"].as_str().map(|c| {
                            if has_message {
                                c.to_owned()
                            } else {
                                format!("{c} (no message)")
                            }
                        })
                    })
                    .unwrap_or_else(|| "no JSON error".into());
                if got == status && got_code == code {
                    r.right += 1;
                } else {
                    *r.wrong.entry(format!("{got} {got_code}")).or_default() += 1;
                }
            }
            Err(e) => *r.wrong.entry(e).or_default() += 1,
        }
    }
    results
}

/// Sends `request` on a new connection (writing and reading at once, so an early answer is
/// read even if the server stops reading) and returns the status and body.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Result<(u16, String)> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let request = request.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&request).await;
        let _ = wr.flush().await;
        // Keep the write half open until the answer is read (dropping it would half-close).
        wr
    });
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) => {
                    if answer.is_empty() {
                        return Err(format!("read: {e}"));
                    }
                    break;
                }
            }
            if response_complete(&answer) {
                break;
            }
        }
        Ok(answer)
    })
    .await;
    writer.abort();
    let answer = read.map_err(|_| "no answer within 30 s".to_owned())??;
    parse_response(&answer)
}

fn parse_response(answer: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer ({} bytes)", answer.len()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// Whether `answer` holds a whole response with a `content-length` body.
fn response_complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .is_some_and(|n| body.len() >= n)
}

// --- slow loris ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum SlowEnd {
    Answered(u16),
    /// The server closed the connection before the request was complete.
    Cut,
    /// Still open (idle kind) when the window ended.
    StillOpen,
    Error,
}

#[derive(Debug, Clone, Copy)]
struct SlowOutcome {
    end: SlowEnd,
    elapsed: Duration,
}

impl SlowOutcome {
    fn label(&self) -> String {
        match self.end {
            SlowEnd::Answered(s) => format!("completed, answered {s}"),
            SlowEnd::Cut => "cut by the server".into(),
            SlowEnd::StillOpen => "still open at the end of the window".into(),
            SlowEnd::Error => "client error".into(),
        }
    }
}

async fn slowloris(
    addr: SocketAddr,
    n: usize,
    window: Duration,
) -> Vec<(&'static str, Vec<SlowOutcome>)> {
    let mut set = JoinSet::new();
    for i in 0..n {
        for kind in ["head dribbled", "body dribbled", "idle"] {
            set.spawn(async move { (kind, slow_one(addr, kind, i, window).await) });
        }
    }
    let mut by: BTreeMap<&'static str, Vec<SlowOutcome>> = BTreeMap::new();
    while let Some(done) = set.join_next().await {
        let (kind, outcome) = done.expect("a slow-loris task panicked");
        by.entry(kind).or_default().push(outcome);
    }
    by.into_iter().collect()
}

async fn slow_one(addr: SocketAddr, kind: &str, i: usize, window: Duration) -> SlowOutcome {
    let started = Instant::now();
    let end = |end| SlowOutcome {
        end,
        elapsed: started.elapsed(),
    };
    let Ok(stream) = TcpStream::connect(addr).await else {
        return end(SlowEnd::Error);
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (user, key) = (IAK_USER, IAK_KEY);
    let reference = format!("slow-{}-{i}", kind.split(' ').next().unwrap_or("x"));
    let body = iak_callback(&reference, PrepaidStatus::Success, user, key)
        .encode(Format::Json, ApiVersion::V2);
    let head = format!(
        "POST /callbacks/iak HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The reader notices the server closing (or answering) while bytes are still dribbling.
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if response_complete(&answer) {
                break;
            }
        }
        answer
    });
    let (slow, fast) = match kind {
        "head dribbled" => (head.as_bytes().to_vec(), body.into_bytes()),
        "body dribbled" => {
            wr.write_all(head.as_bytes()).await.ok();
            (body.into_bytes(), Vec::new())
        }
        _ => (Vec::new(), Vec::new()),
    };
    if slow.is_empty() {
        // Idle: send nothing, see whether the server hangs up within the window.
        return match tokio::time::timeout(window, reader).await {
            Ok(Ok(answer)) if answer.is_empty() => end(SlowEnd::Cut),
            Ok(Ok(answer)) => match parse_response(&answer) {
                Ok((s, _)) => end(SlowEnd::Answered(s)),
                Err(_) => end(SlowEnd::Cut),
            },
            Ok(Err(_)) => end(SlowEnd::Error),
            Err(_) => end(SlowEnd::StillOpen),
        };
    }
    // Pacing the bytes is what is measured here: the one wait on the clock.
    let pause = window / slow.len().max(1) as u32;
    for b in &slow {
        if reader.is_finished() {
            break;
        }
        if wr.write_all(std::slice::from_ref(b)).await.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    if !reader.is_finished() {
        let _ = wr.write_all(&fast).await;
    }
    match tokio::time::timeout(Duration::from_secs(30), reader).await {
        Ok(Ok(answer)) => match parse_response(&answer) {
            Ok((s, _)) => end(SlowEnd::Answered(s)),
            Err(_) => end(SlowEnd::Cut),
        },
        _ => end(SlowEnd::Error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_builds_a_request_with_its_expectation() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for class in CLASSES {
            for n in 0..8 {
                let b = (class.make)(&mut rng, n);
                assert!(b.bytes.starts_with(b"POST /callbacks/"), "{}", class.name);
                assert!((400..500).contains(&b.status));
                assert!(!b.code.is_empty());
            }
        }
    }

    #[test]
    fn reads_a_raw_response() {
        let raw = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 5\r\n\r\nhello";
        assert!(response_complete(raw));
        assert_eq!(parse_response(raw).unwrap(), (413, "hello".into()));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhel"
        ));
    }
}
