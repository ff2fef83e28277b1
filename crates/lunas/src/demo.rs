//! `lunas demo`: the gateway, the sandbox (IAK in production mode, IDSL in development mode,
//! MCPayment), a demo merchant receiver that verifies every event it gets, and a gentle stream of
//! realistic traffic — on one machine, embedded SQLite, in one command.
//!
//! The traffic is a fixed script over deterministic refs and a fixed sandbox seed, so every run
//! shows the same story: top-ups of every product kind, postpaid bills, VA payments (full and in
//! instalments), failures, lost callbacks that the reconciler recovers, duplicates, a conflict
//! flagged for review, and development-mode transactions settled by the sandbox report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use lunas_protocol::iak::postpaid::{PostpaidCommand, PostpaidRequest, PostpaidResult};
use lunas_protocol::iak::prepaid::{PrepaidCommand, PrepaidRequest};
use lunas_protocol::mcp::{
    CreateVaRequest, Credentials, CustomerDetails, McpResponse, PaymentDetails, PaymentSystem,
};
use lunas_protocol::{ApiVersion, Format, Secret};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::app::{self, Gateway};
use crate::config::Config;

const IAK_USER: &str = "081234567890";
const IAK_KEY: &str = "demo-iak-key";
const IDSL_USER: &str = "089900000002";
const IDSL_KEY: &str = "demo-idsl-key";
const MCP_MERCHANT: &str = "MCP2099010101";
const MCP_SECRET: &str = "demo-mcp-secret";
const MCP_HASH: &str = "demo-mcp-hash-key";
const ENDPOINT_SECRET: &str = "whsec_ZGVtby1tZXJjaGFudC1lbmRwb2ludC1zZWNyZXQ=";

/// Where the demo listens and keeps its data.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub gateway: SocketAddr,
    pub sandbox: SocketAddr,
    /// Holds `lunas-demo.db`.
    pub dir: PathBuf,
    /// Seconds between traffic steps.
    pub pace: Duration,
    /// Stop the traffic after this many steps (`None`: until the demo is stopped, going round
    /// the script with fresh refs).
    pub steps: Option<usize>,
}

/// What a running demo exposes.
pub struct Running {
    pub gateway: SocketAddr,
    pub sandbox: SocketAddr,
    pub receiver: SocketAddr,
    pub admin_token: String,
    pub database: PathBuf,
    stop: Arc<Notify>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the traffic and the servers, letting requests and attempts in flight finish.
    pub async fn stop(self) {
        self.stop.notify_waiters();
        for handle in self.servers {
            let _ = tokio::time::timeout(Duration::from_secs(20), handle).await;
        }
    }
}

fn gateway_config(opts: &DemoOptions, receiver: SocketAddr, token: &str) -> String {
    let sb = opts.sandbox;
    format!(
        r#"
[server]
listen = "{gw}"
admin_token = "{token}"
[storage]
url = "sqlite://{db}"
[[providers]]
id = "iak"
kind = "iak"
environment = "production"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
prepaid_url = "http://{sb}"
postpaid_url = "http://{sb}"
low_balance = 999500000
[providers.reconcile]
first_check_after = "8s"
backoff = ["8s", "15s", "30s"]
[[providers]]
id = "idsl"
kind = "idsl"
environment = "development"
username = "{IDSL_USER}"
api_key = "{IDSL_KEY}"
prepaid_url = "http://{sb}"
postpaid_url = "http://{sb}"
confirm_callbacks = true
[providers.reconcile]
first_check_after = "20s"
backoff = ["20s", "40s"]
[[providers]]
id = "mcp"
kind = "mcp"
environment = "development"
merchant_id = "{MCP_MERCHANT}"
secret_unbound_id = "{MCP_SECRET}"
hash_key = "{MCP_HASH}"
base_url = "http://{sb}"
[providers.reconcile]
first_check_after = "10s"
backoff = ["10s", "30s"]
[[endpoints]]
id = "demo-merchant"
url = "http://{receiver}/hooks/lunas"
secret = "{ENDPOINT_SECRET}"
events = ["*"]
[delivery]
schedule = ["2s", "10s", "1m"]
"#,
        gw = opts.gateway,
        db = opts.dir.join("lunas-demo.db").display(),
    )
}

fn sandbox_config(gw: SocketAddr) -> String {
    format!(
        r#"
seed = 2024
[[accounts]]
id = "iak"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
environment = "production"
callback_url = "http://{gw}/callbacks/iak"
callback_delay_ms = 2500
[accounts.faults]
duplicate = 0.25
drop = 0.2
conflicting = 0.12
out_of_order = 0.15
delay_jitter_ms = 2000
[[accounts]]
id = "idsl"
kind = "idsl"
username = "{IDSL_USER}"
api_key = "{IDSL_KEY}"
environment = "development"
callback_url = "http://{gw}/callbacks/idsl"
callback_format = "xml"
api_version = "v1"
[[accounts]]
id = "mcp"
kind = "mcp"
merchant_id = "{MCP_MERCHANT}"
secret_unbound_id = "{MCP_SECRET}"
hash_key = "{MCP_HASH}"
callback_url = "http://{gw}/callbacks/mcp"
[accounts.faults]
drop = 0.2
"#
    )
}

/// Starts everything; returns once all three servers listen. The traffic runs in the
/// background until [`Running::stop`].
pub async fn start(opts: DemoOptions) -> Result<Running, String> {
    let stop = Arc::new(Notify::new());
    std::fs::create_dir_all(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
    let token = format!("demo-{:016x}", rand::random::<u64>());

    // The merchant's receiver: verifies each event like a real app would, and says what it got.
    let receiver_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let receiver = receiver_listener.local_addr().map_err(|e| e.to_string())?;
    let webhook =
        Arc::new(standardwebhooks::Webhook::new(ENDPOINT_SECRET).map_err(|e| format!("{e:?}"))?);
    let hooks = axum::Router::new().route(
        "/hooks/lunas",
        axum::routing::post(move |headers: HeaderMap, body: bytes::Bytes| {
            let webhook = Arc::clone(&webhook);
            async move { receive(&webhook, &headers, &body) }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver_listener, hooks).await });

    let gw_listener = app::bind(opts.gateway).await.map_err(|e| e.to_string())?;
    let gw = gw_listener.local_addr().map_err(|e| e.to_string())?;
    let sb_listener = app::bind(opts.sandbox).await.map_err(|e| e.to_string())?;
    let sb = sb_listener.local_addr().map_err(|e| e.to_string())?;
    let opts = DemoOptions {
        gateway: gw,
        sandbox: sb,
        ..opts
    };

    let config = Config::from_parts(Some(&gateway_config(&opts, receiver, &token)), &[], &|_| {
        None
    })
    .map_err(|e| e.to_string())?;
    let gateway = Gateway::build(&config).await.map_err(|e| e.to_string())?;
    let sandbox_toml: toml::Value =
        toml::from_str(&sandbox_config(gw)).map_err(|e| e.to_string())?;
    let sandbox_config =
        lunas_sandbox::SandboxConfig::deserialize(sandbox_toml).map_err(|e| e.to_string())?;
    let sandbox = lunas_sandbox::Sandbox::new(sandbox_config).map_err(|e| e.to_string())?;

    let s1 = Arc::clone(&stop);
    let gateway_task = tokio::spawn(async move {
        let _ = gateway
            .serve(gw_listener, async move { s1.notified().await })
            .await;
    });
    let s2 = Arc::clone(&stop);
    let sandbox_task = tokio::spawn(async move {
        let _ = sandbox
            .serve(sb_listener, async move { s2.notified().await })
            .await;
    });
    let traffic = Traffic {
        client: reqwest::Client::new(),
        gw,
        sb,
        token: token.clone(),
    };
    let (pace, steps) = (opts.pace, opts.steps);
    let s3 = Arc::clone(&stop);
    tokio::spawn(async move {
        tokio::select! {
            _ = traffic.run(pace, steps) => {}
            _ = s3.notified() => {}
        }
    });
    Ok(Running {
        gateway: gw,
        sandbox: sb,
        receiver,
        admin_token: token,
        database: opts.dir.join("lunas-demo.db"),
        stop,
        servers: vec![gateway_task, sandbox_task],
    })
}

fn receive(
    webhook: &standardwebhooks::Webhook,
    headers: &HeaderMap,
    body: &[u8],
) -> axum::http::StatusCode {
    if webhook.verify(body, headers).is_err() {
        tracing::warn!(target: "demo::merchant", "an event failed signature verification");
        return axum::http::StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(body).unwrap_or_default();
    let data = &event["data"];
    tracing::info!(
        target: "demo::merchant",
        event = event["type"].as_str().unwrap_or("?"),
        provider = data["provider_id"].as_str().unwrap_or("?"),
        reference = data["ref"].as_str().unwrap_or("?"),
        state = data["state"].as_str().unwrap_or("?"),
        needs_review = data["needs_review"].as_bool().unwrap_or(false),
        "merchant received a verified event"
    );
    axum::http::StatusCode::OK
}

/// One scripted action.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// IAK (production) top-up: product, customer number.
    Iak(&'static str, &'static str),
    /// IDSL (development) top-up, settled by the sandbox report a few steps later.
    Idsl(&'static str, &'static str, bool),
    /// IAK postpaid bill: biller, customer number.
    Bill(&'static str, &'static str),
    /// MCPayment VA: amount, instalments.
    Va(i64, u32),
    /// A top-up lunas places itself (`POST /api/v1/orders`): product, customer number.
    Order(&'static str, &'static str),
}

/// How many steps one round of the script has (`lunas demo --once`).
pub const SCRIPT_LEN: usize = SCRIPT.len();

const SCRIPT: &[Step] = &[
    Step::Iak("xld25000", "081710001234"),
    Step::Order("hpln20000", "081712340000"),
    Step::Va(150_000, 1),
    Step::Iak("hpln20000", "081720002345"),
    Step::Idsl("tseldata25000", "081730003456", true),
    Step::Iak("hsteam12000", "081740004567"),
    Step::Bill("TELKOMPSTN", "6391600000"),
    Step::Iak("esimtsel10gb", "081750005678"),
    Step::Iak("xld50000", "081760001007"),
    Step::Va(300_000, 3),
    Step::Iak("hindosat10000", "081770007890"),
    Step::Idsl("hpln50000", "081780008901", false),
    Step::Bill("PLNPOSTPAID", "530000001039"),
    Step::Iak("tseldata25000", "081790009012"),
    Step::Iak("htelkomsel10000", "081700001014"),
    Step::Iak("hmobilelegend110", "081711110123"),
    Step::Va(75_000, 1),
    Step::Order("xld50000", "081799991014"),
    Step::Iak("xld25000", "081722221234"),
    Step::Iak("hpln50000", "081733332345"),
    Step::Idsl("xld25000", "081744443456", true),
    Step::Iak("esimtsel10gb", "081755554567"),
    Step::Bill("TELKOMPSTN", "6391601037"),
    Step::Iak("hsteam12000", "081766665678"),
    Step::Iak("xld50000", "081777776789"),
    Step::Iak("hindosat10000", "081788887890"),
];

/// A prepaid account as the merchant's code talks to it.
struct Prepaid {
    provider: &'static str,
    user: &'static str,
    key: &'static str,
    format: Format,
    version: ApiVersion,
}

const IAK: Prepaid = Prepaid {
    provider: "iak",
    user: IAK_USER,
    key: IAK_KEY,
    format: Format::Json,
    version: ApiVersion::V2,
};
const IDSL: Prepaid = Prepaid {
    provider: "idsl",
    user: IDSL_USER,
    key: IDSL_KEY,
    format: Format::Xml,
    version: ApiVersion::V1,
};

struct Traffic {
    client: reqwest::Client,
    gw: SocketAddr,
    sb: SocketAddr,
    token: String,
}

impl Traffic {
    async fn run(self, pace: Duration, steps: Option<usize>) {
        let mut reports: Vec<(usize, String, bool)> = Vec::new();
        // Round after round until stopped (or `steps`), each step with a ref of its own.
        for i in 0.. {
            if steps.is_some_and(|n| i >= n) {
                break;
            }
            let step = SCRIPT[i % SCRIPT.len()];
            let reference = format!("demo-{:05}", i + 1);
            if let Err(e) = self.act(step, &reference, i, &mut reports).await {
                tracing::warn!(target: "demo::traffic", reference = %reference, error = %e, "demo step failed");
            }
            // Development-mode transactions are settled by hand, as in IAK's sandbox report.
            let due: Vec<(usize, String, bool)> = reports
                .iter()
                .filter(|(at, _, _)| *at <= i)
                .cloned()
                .collect();
            reports.retain(|(at, _, _)| *at > i);
            for (_, r, ok) in due {
                let outcome = if ok { "success" } else { "failed" };
                let _ = self
                    .client
                    .post(format!("http://{}/sandbox/report", self.sb))
                    .json(&json!({"ref": r, "outcome": outcome}))
                    .send()
                    .await;
                tracing::info!(target: "demo::traffic", reference = %r, outcome, "sandbox report clicked");
            }
            tokio::time::sleep(pace).await;
        }
    }

    async fn act(
        &self,
        step: Step,
        reference: &str,
        i: usize,
        reports: &mut Vec<(usize, String, bool)>,
    ) -> Result<(), String> {
        match step {
            Step::Iak(product, customer) => self.top_up(&IAK, product, customer, reference).await,
            Step::Idsl(product, customer, ok) => {
                self.top_up(&IDSL, product, customer, reference).await?;
                reports.push((i + 3, reference.to_owned(), ok));
                Ok(())
            }
            Step::Bill(code, hp) => {
                let inquiry = self
                    .postpaid(PostpaidCommand::Inquiry {
                        code: code.into(),
                        hp: hp.into(),
                        ref_id: reference.into(),
                        month: None,
                        year: None,
                        nomor_identitas: None,
                    })
                    .await?;
                let tr_id = inquiry.tr_id.ok_or("the inquiry gave no tr_id")?;
                self.register(
                    json!({"provider_id": "iak", "ref": reference, "kind": "postpaid",
                    "product_code": code, "customer_id": hp, "amount": inquiry.price}),
                )
                .await?;
                let paid = self.postpaid(PostpaidCommand::Payment { tr_id }).await?;
                if paid.response_code == "39" {
                    reports.push((i + 4, reference.to_owned(), true));
                }
                tracing::info!(target: "demo::traffic", reference, biller = code, response_code = %paid.response_code, "bill paid");
                Ok(())
            }
            Step::Va(amount, instalments) => self.va(reference, amount, instalments).await,
            Step::Order(product, customer) => {
                let res = self
                    .client
                    .post(format!("http://{}/api/v1/orders", self.gw))
                    .bearer_auth(&self.token)
                    .json(
                        &json!({"provider_id": "iak", "ref": reference, "kind": "prepaid",
                                  "product_code": product, "customer_id": customer}),
                    )
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !res.status().is_success() {
                    return Err(format!("the order was answered {}", res.status()));
                }
                tracing::info!(target: "demo::traffic", reference, product, "order placed by lunas");
                Ok(())
            }
        }
    }

    async fn top_up(
        &self,
        account: &Prepaid,
        product: &str,
        customer: &str,
        reference: &str,
    ) -> Result<(), String> {
        let Prepaid {
            provider,
            user,
            key,
            format,
            version,
        } = *account;
        let req = PrepaidRequest::new(
            user,
            &Secret::new(key),
            PrepaidCommand::TopUp {
                ref_id: reference.into(),
                customer_id: customer.into(),
                product_code: product.into(),
            },
        );
        self.client
            .post(format!("http://{}{}", self.sb, req.path(version)))
            .body(req.encode(format, version))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        self.register(
            json!({"provider_id": provider, "ref": reference, "kind": "prepaid",
            "product_code": product, "customer_id": customer}),
        )
        .await?;
        tracing::info!(target: "demo::traffic", provider, reference, product, "top-up bought");
        Ok(())
    }

    async fn postpaid(&self, command: PostpaidCommand) -> Result<PostpaidResult, String> {
        let req = PostpaidRequest::new(IAK_USER, &Secret::new(IAK_KEY), command);
        let res = self
            .client
            .post(format!("http://{}{}", self.sb, req.path()))
            .body(req.encode(Format::Json))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let bytes = res.bytes().await.map_err(|e| e.to_string())?;
        PostpaidResult::parse(&bytes)
            .map(|d| d.message)
            .map_err(|e| e.to_string())
    }

    async fn va(&self, reference: &str, amount: i64, instalments: u32) -> Result<(), String> {
        let order = format!("ORD-{reference}");
        let system = if instalments > 1 {
            PaymentSystem::Partial
        } else {
            PaymentSystem::Closed
        };
        let req = CreateVaRequest {
            external_id: reference.into(),
            order_id: order.clone(),
            currency: "IDR".into(),
            payment_method: "bank_transfer".into(),
            payment_channel: "BRI".into(),
            payment_details: PaymentDetails {
                billing_name: Some("Budi Santoso".into()),
                payment_system: Some(system),
                is_multi_use: Some(instalments > 1),
                amount: Some(amount),
                transaction_description: Some(format!("Order {order}")),
                ..PaymentDetails::default()
            },
            customer_details: CustomerDetails {
                email: Some("budi@example.co.id".into()),
                full_name: Some("Budi Santoso".into()),
                phone: Some("081234567890".into()),
            },
            item_details: None,
            billing_address: None,
            callback_url: None,
            shipping_address: None,
            additional_data: None,
        };
        let credentials = Credentials {
            merchant_id: MCP_MERCHANT.into(),
            secret_unbound_id: Secret::new(MCP_SECRET),
            hash_key: Secret::new(MCP_HASH),
            sub_merchant_id: None,
        };
        let mut builder = self
            .client
            .post(format!("http://{}/va", self.sb))
            .body(req.encode());
        for (k, v) in credentials.request_headers(reference, &order) {
            builder = builder.header(k, v);
        }
        let answer = builder.send().await.map_err(|e| e.to_string())?;
        let created = McpResponse::parse(&answer.bytes().await.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let va = created.data.ok_or("the VA was not created")?;
        self.register(json!({"provider_id": "mcp", "ref": reference, "kind": "va", "amount": amount,
            "product_code": "BRI", "order_id": order, "provider_transaction_id": va.transaction_id}))
            .await?;
        let part = amount / i64::from(instalments);
        for k in 0..instalments {
            let pay = if k + 1 == instalments {
                amount - part * i64::from(instalments - 1)
            } else {
                part
            };
            self.client
                .post(format!("http://{}/sandbox/va/pay", self.sb))
                .json(&json!({"external_id": reference, "amount": pay}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
        }
        tracing::info!(target: "demo::traffic", reference, amount, instalments, "virtual account paid");
        Ok(())
    }

    async fn register(&self, body: Value) -> Result<(), String> {
        let res = self
            .client
            .post(format!("http://{}/api/v1/transactions", self.gw))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("registration answered {}", res.status()))
        }
    }
}
