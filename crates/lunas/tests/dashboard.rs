//! The dashboard driven in a real headless browser (Debian's chromium and chromedriver, which
//! `.ci/run` installs): log in, find a transaction, open its timeline, reveal a masked PIN,
//! redeliver a dead letter and see it succeed. Without a browser the test says so and skips,
//! unless `LUNAS_REQUIRE_BROWSER` is set (CI sets it), in which case a missing browser fails it.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use fantoccini::{ClientBuilder, Locator};
use lunas::app::Gateway;
use lunas::config::Config;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format, Secret};
use time::OffsetDateTime;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn browser() -> Option<(&'static str, &'static str)> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        .iter()
        .all(|p| std::path::Path::new(p).exists());
    if found {
        return Some(("/usr/bin/chromium", "/usr/bin/chromedriver"));
    }
    if std::env::var_os("LUNAS_REQUIRE_BROWSER").is_some() {
        panic!("LUNAS_REQUIRE_BROWSER is set but chromium/chromedriver are not installed");
    }
    eprintln!("SKIPPED: the dashboard browser test needs chromium and chromium-driver (apt-get install chromium chromium-driver)");
    None
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port and waits (bounded) until it accepts connections.
async fn chromedriver(path: &str) -> (Driver, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let addr = format!("127.0.0.1:{port}");
    tokio::time::timeout(Duration::from_secs(20), async {
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("chromedriver listens");
    (driver, format!("http://{addr}"))
}

/// A merchant endpoint that refuses the first delivery and accepts the rest.
async fn flaky_receiver() -> (SocketAddr, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let counter = Arc::clone(&counter);
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

#[tokio::test]
async fn an_operator_logs_in_reads_a_timeline_and_redelivers_a_dead_letter() {
    let Some((chromium, chromedriver_path)) = browser() else {
        return;
    };
    eprintln!("the dashboard browser test runs in {chromium} through {chromedriver_path}");

    let (receiver, seen) = flaky_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[endpoints]]\nid = \"shop\"\nurl = \"http://{receiver}/hooks\"\nsecret = \"{SECRET}\"\n[delivery]\nschedule = []\n"
    );
    let config = Config::from_parts(
        Some(&config_text(&dir.path().join("lunas.db"), &extra)),
        &[],
        &|_| None,
    )
    .unwrap();
    let gateway = Gateway::build(&config).await.unwrap();
    let deliverer = gateway.deliverer();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve_http(listener, std::future::pending()));

    // A game voucher whose PIN must stay masked until revealed.
    let mut cb = prepaid_callback("browser-1", PrepaidStatus::Success, IAK_USER, IAK_KEY);
    cb.pin = Some("PIN-4242-SECRET".into());
    let cb = cb.signed(IAK_USER, &Secret::new(IAK_KEY));
    let res = reqwest::Client::new()
        .post(format!("http://{gw}/callbacks/iak"))
        .body(cb.encode(Format::Json, ApiVersion::V2))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let first = deliverer.step(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(
        first.failed, 1,
        "the endpoint refused it and the schedule is empty: a dead letter"
    );

    let (_driver, webdriver) = chromedriver(chromedriver_path).await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1400,1000"]
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("a browser session");

    let result = async {
        let base = format!("http://{gw}");
        let wait = |locator: Locator<'static>| {
            let client = client.clone();
            async move {
                client
                    .wait()
                    .at_most(Duration::from_secs(15))
                    .for_element(locator)
                    .await
            }
        };
        // Not logged in: sent to the login page.
        client.goto(&format!("{base}/transactions")).await?;
        wait(Locator::Id("token")).await?;
        assert!(client.current_url().await?.path().ends_with("/login"));
        client
            .find(Locator::Id("token"))
            .await?
            .send_keys("not-the-token")
            .await?;
        client.find(Locator::Id("login")).await?.click().await?;
        let refused = wait(Locator::Css(".flash")).await?.text().await?;
        assert!(refused.contains("That is not the admin token"), "{refused}");
        client
            .find(Locator::Id("token"))
            .await?
            .send_keys(TOKEN)
            .await?;
        client.find(Locator::Id("login")).await?.click().await?;
        wait(Locator::Css("form.filters")).await?;

        // Find the transaction with the search box, open its timeline.
        client
            .find(Locator::Css("input[name=q]"))
            .await?
            .send_keys("browser-1")
            .await?;
        client
            .find(Locator::Css("form.filters button"))
            .await?
            .click()
            .await?;
        let searched = url::Url::parse(&format!(
            "{base}/transactions?q=browser-1&provider_id=&kind=&state="
        ))
        .unwrap();
        client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_url(&searched)
            .await?;
        client
            .find(Locator::LinkText("browser-1"))
            .await?
            .click()
            .await?;
        let timeline = wait(Locator::Css("table.timeline")).await?.text().await?;
        let h1 = client.find(Locator::Css("h1")).await?.text().await?;
        assert!(h1.contains("browser-1") && h1.contains("succeeded"), "{h1}");
        assert!(timeline.contains("transaction.succeeded"), "{timeline}");
        assert!(
            timeline.contains("HTTP 500"),
            "the failed attempt is in the timeline: {timeline}"
        );

        // The PIN is masked until revealed.
        let pin = client
            .find(Locator::XPath(
                "//dt[text()='PIN']/following-sibling::dd[1]",
            ))
            .await?;
        assert!(!pin.text().await?.contains("PIN-4242-SECRET"));
        pin.find(Locator::Css("summary")).await?.click().await?;
        assert!(pin.text().await?.contains("PIN-4242-SECRET"));

        // The dead letter, redelivered with a click.
        client
            .goto(&format!("{base}/deliveries?state=dead"))
            .await?;
        let dead = wait(Locator::Css("button.redeliver")).await?;
        let listing = client.find(Locator::Css("main")).await?.text().await?;
        assert!(
            listing.contains("transaction.succeeded") && listing.contains("dead"),
            "{listing}"
        );
        dead.click().await?;
        let flash = wait(Locator::Css(".flash")).await?.text().await?;
        assert!(flash.contains("1 deliveries queued"), "{flash}");
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    if let Err(e) = result {
        let _ = client.close().await;
        panic!("browser step failed: {e}");
    }

    // The worker takes the redelivery; the endpoint accepts it this time.
    let again = deliverer.step(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(again.delivered, 1);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    client
        .goto(&format!("http://{gw}/deliveries?state=delivered"))
        .await
        .unwrap();
    let delivered = client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        delivered.contains("transaction.succeeded") && delivered.contains("delivered"),
        "{delivered}"
    );

    // A contradiction, worked off the review queue: the form, the flag cleared, who and why in
    // the timeline.
    for status in [PrepaidStatus::Success, PrepaidStatus::Failed] {
        let cb = prepaid_callback("browser-2", status, IAK_USER, IAK_KEY);
        let res = reqwest::Client::new()
            .post(format!("http://{gw}/callbacks/iak"))
            .body(cb.encode(Format::Json, ApiVersion::V2))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let result = async {
        client.goto(&format!("http://{gw}/review")).await?;
        let form = client.find(Locator::Css("form.resolve")).await?;
        form.find(Locator::Css("select[name=state]"))
            .await?
            .select_by_value("failed")
            .await?;
        form.find(Locator::Css("input[name=note]"))
            .await?
            .send_keys("IAK support confirmed the failure")
            .await?;
        form.find(Locator::Css("button")).await?.click().await?;
        let flash = client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(".flash"))
            .await?
            .text()
            .await?;
        assert!(flash.contains("Resolved: failed"), "{flash}");
        let timeline = client
            .find(Locator::Css("table.timeline"))
            .await?
            .text()
            .await?;
        assert!(
            timeline.contains("resolved by dashboard")
                && timeline.contains("IAK support confirmed"),
            "{timeline}"
        );
        assert!(timeline.contains("transaction.resolved"), "{timeline}");
        client.goto(&format!("http://{gw}/review")).await?;
        let queue = client.find(Locator::Css("main")).await?.text().await?;
        assert!(queue.contains("Nothing to review."), "{queue}");
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    if let Err(e) = result {
        let _ = client.close().await;
        panic!("browser step failed: {e}");
    }
    client.close().await.unwrap();
}
