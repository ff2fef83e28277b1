//! The command line. Each subcommand is documented here; `lunas --help` prints it all.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lunas_protocol::sign::{self, IakSignInput};
use serde::Deserialize;

use crate::app::{self, Gateway};
use crate::config::Config;
use crate::{logging, secrets};

/// lunas makes the asynchronous outcome of IAK, IDSL and MCPayment transactions reliable:
/// it verifies provider callbacks, keeps every transaction's state and evidence, asks the
/// providers when a callback is overdue, and forwards signed events to your application.
#[derive(Debug, Parser)]
#[command(name = "lunas", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: lunas.toml when it exists). Every key can also be set as
    /// LUNAS__SECTION__KEY in the environment; secrets may be written env:VAR_NAME.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: provider callbacks at /callbacks/{provider_id}, the admin API at
    /// /api/v1 (bearer token), /healthz and /readyz.
    Serve(ServeArgs),
    /// Run the provider emulator (IAK, IDSL, MCPayment) described by the [sandbox] section of
    /// the configuration: provider APIs, callbacks, /sandbox/report, /sandbox/va/pay,
    /// /sandbox/log, fault knobs. See the README, "The sandbox".
    Sandbox,
    /// Everything on one machine: the gateway (embedded SQLite), the sandbox (IAK in production
    /// mode, IDSL in development mode, MCPayment), a demo merchant that verifies the events it
    /// receives, and a stream of realistic traffic. Stops cleanly on Ctrl-C.
    Demo(DemoArgs),
    /// Create or upgrade the database schema named by storage.url, then exit.
    Migrate,
    /// Apply [retention] once now: erase old raw bodies and customer goods, delete old
    /// observations, events and balance samples as configured; print what went. `lunas serve`
    /// does the same every retention.interval.
    Prune,
    /// Inspect transactions in the store.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Place an order with a provider: lunas commits it, sends it exactly once and follows it
    /// to its outcome (a running `lunas serve` settles an order whose answer is lost). Prints
    /// the transaction as JSON.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Compute or verify a provider signature, to debug an integration.
    ///
    /// Secrets may be written `env:VAR_NAME` to read them from the environment.
    #[command(subcommand)]
    Sign(SignCommand),
    /// Work with the events delivered to your endpoints.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// A prepaid top-up.
    Prepaid {
        /// The provider account id.
        provider_id: String,
        /// The order's ref (IAK/IDSL ref_id): unique per order.
        reference: String,
        /// The product code, e.g. xld25000, hpln20000.
        #[arg(long)]
        product: String,
        /// The customer's number (phone, PLN meter, game id).
        #[arg(long)]
        customer: String,
        /// Wait up to this many seconds (at most 60) for the outcome.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// A postpaid bill: the inquiry, and with --pay the payment when the bill costs at most
    /// --max-amount.
    Postpaid {
        /// The provider account id (as in /callbacks/{provider_id}).
        provider_id: String,
        /// The transaction's ref (IAK/IDSL ref_id, MCPayment external_id).
        reference: String,
        /// The product code, e.g. xld25000, PLNPOSTPAID.
        #[arg(long)]
        product: String,
        /// The customer's number (phone, meter, bill id).
        #[arg(long)]
        customer: String,
        /// Pay at once (needs --max-amount).
        #[arg(long, requires = "max_amount")]
        pay: bool,
        /// The most the bill may cost to be paid at once, in rupiah.
        #[arg(long)]
        max_amount: Option<i64>,
        /// Wait up to this many seconds (at most 60) for the outcome.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Pay an inquired bill, only if it costs exactly --amount.
    Pay {
        /// The provider account id (as in /callbacks/{provider_id}).
        provider_id: String,
        /// The transaction's ref (IAK/IDSL ref_id, MCPayment external_id).
        reference: String,
        /// The bill's price you agree to pay, in rupiah.
        #[arg(long)]
        amount: i64,
        /// Wait up to this many seconds (at most 60) for the outcome.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// A virtual account.
    Va {
        /// The provider account id (as in /callbacks/{provider_id}).
        provider_id: String,
        /// The VA's external_id.
        reference: String,
        /// The merchant's order id (order_id).
        #[arg(long)]
        order_id: String,
        /// In rupiah (OPEN: 0 for any amount).
        #[arg(long)]
        amount: i64,
        /// The bank, e.g. BRI, BNI, MANDIRI.
        #[arg(long)]
        channel: String,
        /// The name shown to the payer.
        #[arg(long)]
        billing_name: String,
        /// The customer's e-mail address.
        #[arg(long)]
        email: String,
        /// The customer's full name.
        #[arg(long)]
        full_name: String,
        /// The customer's phone number.
        #[arg(long)]
        phone: Option<String>,
        /// CLOSED, OPEN or PARTIAL.
        #[arg(long, default_value = "CLOSED")]
        system: String,
        /// A CLOSED VA that takes its amount repeatedly.
        #[arg(long)]
        multi_use: bool,
        /// When it stops taking payments (RFC 3339).
        #[arg(long)]
        expires_at: Option<String>,
        /// Wait up to this many seconds (at most 60) for the outcome.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// api: HTTP only (callbacks, admin API); worker: the delivery worker and the reconciler
    /// only (HTTP answers /healthz and /readyz); all: both. Several nodes of any role may share
    /// one PostgreSQL database.
    #[arg(long, value_enum, default_value_t = app::Role::All)]
    pub role: app::Role,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Queue deliveries again, due now: one event, every event of one transaction, or every
    /// dead-lettered delivery (optionally within a time window). A running `lunas serve` picks
    /// them up within its poll interval.
    Redeliver(Redeliver),
    /// Sign and send one `endpoint.test` event to an endpoint now, as deliveries are signed,
    /// and say what it answered (exit 0 for 2xx). Needs no database and no running server.
    Test(TestEvent),
}

#[derive(Debug, Args)]
pub struct TestEvent {
    /// The endpoint's id (see [[endpoints]] in the configuration).
    pub endpoint: String,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(false)))]
pub struct Redeliver {
    /// One event, by its id (evt_...).
    #[arg(long, group = "what")]
    pub event: Option<String>,
    /// Every event of one transaction: PROVIDER_ID REF.
    #[arg(long, group = "what", num_args = 2, value_names = ["PROVIDER_ID", "REF"])]
    pub transaction: Option<Vec<String>>,
    /// Every dead-lettered delivery.
    #[arg(long, group = "what")]
    pub dead: bool,
    /// With --dead: events created at or after this RFC 3339 time.
    #[arg(long, requires = "dead")]
    pub since: Option<String>,
    /// With --dead: events created before this RFC 3339 time.
    #[arg(long, requires = "dead")]
    pub until: Option<String>,
    /// With --dead: only this endpoint (its id, or its URL when it has none).
    #[arg(long, requires = "dead")]
    pub endpoint: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the gateway listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Where the sandbox listens.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub sandbox_listen: std::net::SocketAddr,
    /// Where the demo database lives (created if missing; replaced at each start).
    #[arg(long, default_value = "lunas-demo")]
    pub dir: PathBuf,
    /// Milliseconds between two steps of traffic.
    #[arg(long, default_value_t = 1500)]
    pub pace_ms: u64,
    /// Play the script once, then leave the gateway idle (by default the traffic goes on
    /// until Ctrl-C).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// List transactions, newest first.
    List(TxList),
    /// Ask the provider's check-status API about one transaction now and apply the answer,
    /// as the reconciler would; prints the transaction afterwards.
    Check {
        /// The provider account id.
        provider_id: String,
        /// The transaction's ref.
        reference: String,
    },
    /// Resolve the review of a flagged transaction: clear the flag, keep or set its final
    /// state, and record who and why in its timeline (emits transaction.resolved).
    Resolve {
        /// The provider account id (as in /callbacks/{provider_id}).
        provider_id: String,
        /// The transaction's ref (IAK/IDSL ref_id, MCPayment external_id).
        reference: String,
        /// The final state to keep or set (succeeded, failed; VA: paid, expired, canceled,
        /// refunded).
        #[arg(long)]
        state: String,
        /// Why: what you checked and what you decided.
        #[arg(long)]
        note: String,
    },
    /// Show one transaction with its timeline (observations and events), as JSON.
    Show {
        /// The provider account id (as in /callbacks/{provider_id}).
        provider_id: String,
        /// The transaction's ref (IAK/IDSL ref_id, MCPayment external_id).
        reference: String,
    },
}

#[derive(Debug, Args)]
pub struct TxList {
    /// Only this provider account.
    #[arg(long)]
    pub provider: Option<String>,
    /// pending, succeeded, failed, awaiting_payment, partially_paid, paid, expired, canceled, refunded
    #[arg(long)]
    pub state: Option<String>,
    /// prepaid, postpaid or va
    #[arg(long)]
    pub kind: Option<String>,
    /// Only transactions flagged for review.
    #[arg(long)]
    pub needs_review: bool,
    /// A part of the ref, the customer number or the provider's transaction id.
    #[arg(long)]
    pub search: Option<String>,
    /// At most this many (up to 500).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// IAK / IDSL `sign`: md5(username + api_key + X), X chosen by one of the flags.
    Iak(IakSign),
    /// MCPayment `x-req-signature` (request) or, with --transaction-id, the callback
    /// `mcp-signature`.
    Mcp(McpSign),
    /// MCPayment `Authorization` header: Basic base64(merchant_id:secret_unbound_id).
    McpAuth(McpAuth),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(false)))]
pub struct IakSign {
    /// The account's username (its registered phone number).
    #[arg(long)]
    pub username: String,
    /// The API key (sandbox or production), or env:VAR.
    #[arg(long)]
    pub api_key: String,
    /// Top-up, check-status, callback, postpaid inquiry: the ref_id.
    #[arg(long, group = "input")]
    pub ref_id: Option<String>,
    /// Prepaid balance (X = "bl").
    #[arg(long, group = "input")]
    pub balance: bool,
    /// Price list, prepaid or postpaid (X = "pl").
    #[arg(long, group = "input")]
    pub pricelist: bool,
    /// Postpaid check-status (X = "cs").
    #[arg(long, group = "input")]
    pub checkstatus: bool,
    /// Prepaid check-operator (X = "op").
    #[arg(long, group = "input")]
    pub operator: bool,
    /// Postpaid payment: the inquiry's tr_id.
    #[arg(long, group = "input")]
    pub tr_id: Option<i64>,
    /// Any other signed field (PLN customer_id, game_code, ...).
    #[arg(long, group = "input")]
    pub field: Option<String>,
    /// Check this signature instead of printing one; exits 1 when it does not match.
    #[arg(long)]
    pub verify: Option<String>,
}

#[derive(Debug, Args)]
pub struct McpSign {
    /// The merchant's hash key, or env:VAR.
    #[arg(long)]
    pub hash_key: String,
    /// The VA external_id the signature covers.
    #[arg(long)]
    pub external_id: String,
    /// The order_id the signature covers.
    #[arg(long)]
    pub order_id: String,
    /// Compute the callback `mcp-signature` for this MCPayment transaction_id.
    #[arg(long)]
    pub transaction_id: Option<String>,
    /// Sub-merchant id, appended to the callback signature input.
    #[arg(long, requires = "transaction_id")]
    pub sub_merchant_id: Option<String>,
    /// Check this signature instead of printing one; exits 1 when it does not match.
    #[arg(long)]
    pub verify: Option<String>,
}

#[derive(Debug, Args)]
pub struct McpAuth {
    /// The MCPayment merchant id.
    #[arg(long)]
    pub merchant_id: String,
    /// The secret unbound id, or env:VAR.
    #[arg(long)]
    pub secret_unbound_id: String,
}

/// Runs a parsed command line. Returns the process exit code, or an error message.
pub fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Sign(cmd) => sign(cmd),
        Command::Serve(a) => runtime()?.block_on(serve(cli.config, a.role)),
        Command::Sandbox => runtime()?.block_on(sandbox(cli.config)),
        Command::Demo(a) => runtime()?.block_on(demo(a)),
        Command::Migrate => runtime()?.block_on(migrate(cli.config)),
        Command::Prune => runtime()?.block_on(prune(cli.config)),
        Command::Tx(cmd) => runtime()?.block_on(tx(cli.config, cmd)),
        Command::Order(cmd) => runtime()?.block_on(order(cli.config, cmd)),
        Command::Events(EventsCommand::Redeliver(a)) => {
            runtime()?.block_on(redeliver(cli.config, a))
        }
        Command::Events(EventsCommand::Test(a)) => runtime()?.block_on(test_event(cli.config, a)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn load(path: Option<PathBuf>) -> Result<Config, String> {
    Config::load(path.as_deref()).map_err(|e| e.to_string())
}

async fn serve(path: Option<PathBuf>, role: app::Role) -> Result<ExitCode, String> {
    let config = load(path)?;
    logging::init();
    let gateway = Gateway::build(&config).await.map_err(|e| e.to_string())?;
    let listener = app::bind(config.server.listen)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        %addr,
        storage = %redacted(&config.storage.url),
        providers = config.providers.len(),
        role = role.as_str(),
        "lunas gateway listening on http://{addr}"
    );
    if config.providers.is_empty() {
        tracing::warn!(
            "no provider accounts are configured: every callback will be answered 404 and nothing \
             is reconciled; add [[providers]] sections (see the README, \"Configuration\")"
        );
    }
    gateway
        .serve_role(role, listener, app::shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("lunas gateway stopped");
    Ok(ExitCode::SUCCESS)
}

/// A storage URL fit for a log line: any password replaced.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = match rest.rsplit_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{user}:[redacted]@{host}"),
            None => format!("{auth}@{host}"),
        },
        None => rest.to_owned(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{rest}?{q}"),
        None => format!("{scheme}://{rest}"),
    }
}

/// The `[sandbox]` section of a configuration, read by the sandbox's own rules.
pub fn sandbox_config(config: &Config) -> Result<lunas_sandbox::SandboxConfig, String> {
    let table = config.sandbox.clone().ok_or_else(|| {
        "the configuration has no [sandbox] section: add one with [[sandbox.accounts]] (see the README)".to_owned()
    })?;
    lunas_sandbox::SandboxConfig::deserialize(table)
        .map_err(|e| format!("sandbox configuration: {e}"))
}

async fn sandbox(path: Option<PathBuf>) -> Result<ExitCode, String> {
    let config = load(path)?;
    let sandbox_config = sandbox_config(&config)?;
    logging::init();
    let listen = sandbox_config.listen;
    let sandbox = lunas_sandbox::Sandbox::new(sandbox_config).map_err(|e| e.to_string())?;
    let listener = app::bind(listen).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    for a in sandbox.account_infos() {
        tracing::info!(account = %a.id, kind = %a.kind, environment = %a.environment, "sandbox account");
    }
    tracing::info!(%addr, "lunas sandbox listening on http://{addr}");
    if let Some(warning) = sandbox_exposure(addr, sandbox.has_token()) {
        tracing::warn!("{warning}");
    }
    sandbox
        .serve(listener, app::shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// What to say when the sandbox can be reached from other machines.
pub fn sandbox_exposure(addr: std::net::SocketAddr, has_token: bool) -> Option<String> {
    if addr.ip().is_loopback() {
        return None;
    }
    Some(if has_token {
        format!(
            "the sandbox listens on {addr}, reachable from other machines; its /sandbox controls need sandbox.token. \
             It signs callbacks with its accounts' keys: never give it a production key"
        )
    } else {
        format!(
            "the sandbox listens on {addr}, reachable from other machines, and its /sandbox controls and log \
             (which shows valid signs) are open to anyone who reaches it: set sandbox.token, or listen on 127.0.0.1"
        )
    })
}

async fn demo(a: DemoArgs) -> Result<ExitCode, String> {
    logging::init();
    let db = a.dir.join("lunas-demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let running = crate::demo::start(crate::demo::DemoOptions {
        gateway: a.listen,
        sandbox: a.sandbox_listen,
        dir: a.dir,
        pace: std::time::Duration::from_millis(a.pace_ms),
        steps: a.once.then_some(crate::demo::SCRIPT_LEN),
    })
    .await?;
    println!(
        "\nlunas demo is running (Ctrl-C to stop)\n\n  \
         dashboard    http://{gw}/   (log in with the admin token)\n  \
         admin token  {token}\n  \
         sandbox      http://{sb}   (GET /sandbox/log shows what the providers did)\n  \
         merchant     http://{rx}/hooks/lunas   (verifies every event; see the log lines)\n  \
         database     {db}\n\n  \
         try:  curl -s -H 'Authorization: Bearer {token}' http://{gw}/api/v1/transactions\n        \
         curl -s -H 'Authorization: Bearer {token}' 'http://{gw}/api/v1/transactions?needs_review=true'\n",
        gw = running.gateway,
        sb = running.sandbox,
        rx = running.receiver,
        token = running.admin_token,
        db = running.database.display(),
    );
    app::shutdown_signal().await;
    running.stop().await;
    println!("lunas demo stopped");
    Ok(ExitCode::SUCCESS)
}

async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn lunas_store::Store>, String> {
    let options = lunas_store::StoreOptions {
        busy_timeout: config.storage.busy_timeout,
        ..Default::default()
    };
    lunas_store::open(&config.storage.url, &options)
        .await
        .map_err(|e| e.to_string())
}

async fn test_event(path: Option<PathBuf>, a: TestEvent) -> Result<ExitCode, String> {
    let config = load(path)?;
    let sent = crate::delivery::send_test(
        &config.endpoints,
        &config.delivery,
        &a.endpoint,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    println!(
        "sent {} to {} ({}) as {}",
        crate::delivery::TEST_EVENT_TYPE,
        sent.endpoint,
        sent.url,
        sent.webhook_id
    );
    println!("body: {}", sent.body);
    match (sent.status, &sent.error) {
        (Some(status), _) => println!(
            "answered {status} in {:.1} ms{}",
            sent.latency_ms,
            sent.response
                .as_deref()
                .map(|r| format!(": {}", r.trim()))
                .unwrap_or_default()
        ),
        (None, Some(error)) => println!("no answer: {error}"),
        (None, None) => println!("no answer"),
    }
    if sent.delivered {
        println!("delivered: the endpoint answered 2xx");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "not delivered: a delivery would be retried. Check that the endpoint verifies \
             webhook-signature with the secret configured here and answers 2xx."
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn redeliver(path: Option<PathBuf>, a: Redeliver) -> Result<ExitCode, String> {
    use time::format_description::well_known::Rfc3339;
    let config = load(path)?;
    if config.endpoints.is_empty() {
        return Err("no [[endpoints]] are configured: there is nowhere to deliver to".into());
    }
    let store = open_existing(&config).await?;
    let filters: Vec<lunas_store::EndpointFilter> = config
        .endpoints
        .iter()
        .map(|e| lunas_store::EndpointFilter {
            id: e.id.clone(),
            events: e.events.clone(),
        })
        .collect();
    let time = |name: &str, v: &Option<String>| -> Result<Option<time::OffsetDateTime>, String> {
        v.as_deref()
            .map(|s| {
                time::OffsetDateTime::parse(s, &Rfc3339)
                    .map_err(|_| format!("--{name}: {s:?} is not an RFC 3339 time"))
            })
            .transpose()
    };
    let what = if let Some(id) = a.event {
        lunas_store::Redeliver::Event(id)
    } else if let Some(t) = a.transaction {
        let tx = store
            .transaction(&t[0], &t[1])
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no transaction {:?} for provider {:?}", t[1], t[0]))?;
        lunas_store::Redeliver::Transaction(tx.id)
    } else {
        lunas_store::Redeliver::Dead {
            since: time("since", &a.since)?,
            until: time("until", &a.until)?,
            endpoint: a.endpoint,
        }
    };
    let n = store
        .redeliver(what, &filters, time::OffsetDateTime::now_utc())
        .await
        .map_err(|e| e.to_string())?;
    println!("queued {n} deliveries");
    Ok(ExitCode::SUCCESS)
}

async fn migrate(path: Option<PathBuf>) -> Result<ExitCode, String> {
    let config = load(path)?;
    let store = open_store(&config).await?;
    let where_ = redacted(&config.storage.url);
    match store.migrations_run() {
        0 => println!("{where_}: the schema was already up to date; nothing changed"),
        1 => println!("{where_}: applied 1 migration; the schema is up to date"),
        n => println!("{where_}: applied {n} migrations; the schema is up to date"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn prune(path: Option<PathBuf>) -> Result<ExitCode, String> {
    let config = load(path)?;
    let store = open_existing(&config).await?;
    let retention = crate::retention::Retention::new(store, config.retention.clone());
    let report = retention
        .run_once(time::OffsetDateTime::now_utc())
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", crate::retention::describe(&report));
    Ok(ExitCode::SUCCESS)
}

/// Opens the store for a command that only reads or changes existing data: a SQLite database
/// that does not exist is an error, not a new empty file.
async fn open_existing(config: &Config) -> Result<std::sync::Arc<dyn lunas_store::Store>, String> {
    if let Some(path) = config.storage.url.strip_prefix("sqlite://") {
        if !std::path::Path::new(path).exists() {
            return Err(format!(
                "there is no database at {path}: point storage.url (or --config) at the gateway's \
                 database, or create one with `lunas migrate`"
            ));
        }
    }
    open_store(config).await
}

async fn order(path: Option<PathBuf>, cmd: OrderCommand) -> Result<ExitCode, String> {
    use crate::orders::{NewOrder, Orders};
    use lunas_core::{OrderSpec, VaSpec};
    let config = load(path)?;
    let store = open_store(&config).await?;
    let notify = || std::sync::Arc::new(tokio::sync::Notify::new());
    let orders = Orders::new(
        std::sync::Arc::clone(&store),
        &config.providers,
        notify(),
        notify(),
    )?;
    let placed = |provider_id: String, reference: String, spec, pay_up_to| NewOrder {
        provider_id,
        reference,
        spec,
        pay_up_to,
    };
    let (tx, wait) = match cmd {
        OrderCommand::Prepaid {
            provider_id,
            reference,
            product,
            customer,
            wait,
        } => {
            let spec = OrderSpec::Prepaid {
                product_code: product,
                customer_id: customer,
            };
            let (tx, _) = orders
                .place(placed(provider_id, reference, spec, None))
                .await
                .map_err(|e| e.to_string())?;
            (tx, wait)
        }
        OrderCommand::Postpaid {
            provider_id,
            reference,
            product,
            customer,
            pay,
            max_amount,
            wait,
        } => {
            let spec = OrderSpec::Postpaid {
                product_code: product,
                customer_id: customer,
                month: None,
                year: None,
                nomor_identitas: None,
            };
            let (tx, _) = orders
                .place(placed(
                    provider_id,
                    reference,
                    spec,
                    max_amount.filter(|_| pay),
                ))
                .await
                .map_err(|e| e.to_string())?;
            (tx, wait)
        }
        OrderCommand::Pay {
            provider_id,
            reference,
            amount,
            wait,
        } => (
            orders
                .pay(&provider_id, &reference, amount)
                .await
                .map_err(|e| e.to_string())?,
            wait,
        ),
        OrderCommand::Va {
            provider_id,
            reference,
            order_id,
            amount,
            channel,
            billing_name,
            email,
            full_name,
            phone,
            system,
            multi_use,
            expires_at,
            wait,
        } => {
            let spec = OrderSpec::Va(VaSpec {
                order_id,
                amount,
                payment_channel: channel,
                payment_system: system.to_ascii_uppercase(),
                multi_use,
                description: billing_name.clone(),
                billing_name,
                email,
                full_name,
                phone,
                expires_at,
            });
            let (tx, _) = orders
                .place(placed(provider_id, reference, spec, None))
                .await
                .map_err(|e| e.to_string())?;
            (tx, wait)
        }
    };
    let tx = orders
        .wait_for(tx, std::time::Duration::from_secs(wait.min(60)))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&tx.to_json()).expect("JSON serialises")
    );
    Ok(ExitCode::SUCCESS)
}

async fn tx(path: Option<PathBuf>, cmd: TxCommand) -> Result<ExitCode, String> {
    let config = load(path)?;
    let store = open_existing(&config).await?;
    match cmd {
        TxCommand::Check {
            provider_id,
            reference,
        } => {
            let reconciler = crate::reconcile::Reconciler::new(
                std::sync::Arc::clone(&store),
                &config.providers,
            )?;
            let done = reconciler
                .check_now(&provider_id, &reference)
                .await
                .map_err(|e| e.to_string())?;
            let tx = done.record.expect("a check always concerns a transaction");
            let mut body = tx.to_json();
            body["check"] = serde_json::json!({"verdict": done.verdict.as_str()});
            println!(
                "{}",
                serde_json::to_string_pretty(&body).expect("JSON serialises")
            );
        }
        TxCommand::Resolve {
            provider_id,
            reference,
            state,
            note,
        } => {
            let who = std::env::var("USER").unwrap_or_else(|_| "someone".into());
            let done = crate::http::api::resolve_review(
                store.as_ref(),
                &provider_id,
                &reference,
                Some(&state),
                Some(&note),
                &format!("the command line ({who})"),
            )
            .await
            .map_err(|e| e.message)?;
            let tx = done.record.expect("a resolution concerns a transaction");
            println!(
                "{}",
                serde_json::to_string_pretty(&tx.to_json()).expect("JSON serialises")
            );
        }
        TxCommand::Show {
            provider_id,
            reference,
        } => {
            let Some(tx) = store
                .transaction(&provider_id, &reference)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Err(format!(
                    "no transaction {reference:?} for provider {provider_id:?}"
                ));
            };
            let timeline = store
                .timeline(
                    tx.id,
                    lunas_store::TimelinePage::newest(crate::http::api::TIMELINE_PAGE_MAX as usize),
                )
                .await
                .map_err(|e| e.to_string())?;
            let body = crate::http::api::detail_json(&tx, &timeline);
            println!(
                "{}",
                serde_json::to_string_pretty(&body).expect("JSON serialises")
            );
        }
        TxCommand::List(a) => {
            let state = a
                .state
                .as_deref()
                .map(|s| {
                    lunas_protocol::State::parse(s)
                        .ok_or_else(|| format!("--state: {s:?} is not a state"))
                })
                .transpose()?;
            let kind = a
                .kind
                .as_deref()
                .map(|s| {
                    lunas_protocol::TxKind::parse(s)
                        .ok_or_else(|| format!("--kind: {s:?} is not prepaid, postpaid or va"))
                })
                .transpose()?;
            let query = lunas_store::TxQuery {
                provider_id: a.provider,
                state,
                kind,
                needs_review: a.needs_review.then_some(true),
                search: a.search,
                limit: a.limit.clamp(1, 500),
                ..Default::default()
            };
            let page = store
                .list_transactions(&query)
                .await
                .map_err(|e| e.to_string())?;
            if a.json {
                for t in &page.items {
                    println!("{}", t.to_json());
                }
            } else {
                println!(
                    "{:<12} {:<24} {:<9} {:<17} {:>6} {:>12}  CREATED (newest first)",
                    "PROVIDER", "REF", "KIND", "STATE", "REVIEW", "AMOUNT"
                );
                for t in &page.items {
                    println!(
                        "{:<12} {:<24} {:<9} {:<17} {:>6} {:>12}  {}",
                        t.provider_id,
                        t.reference,
                        t.kind.as_str(),
                        t.state.as_str(),
                        if t.needs_review { "yes" } else { "" },
                        t.amount.map(|a| a.to_string()).unwrap_or_default(),
                        lunas_core::rfc3339(t.created_at),
                    );
                }
                if page.next_cursor.is_some() {
                    println!("(more: raise --limit or narrow the filters)");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(cmd: SignCommand) -> Result<ExitCode, String> {
    let (computed, verify) = match cmd {
        SignCommand::Iak(a) => {
            let key = secrets::resolve(&a.api_key)?;
            let input = if let Some(r) = a.ref_id.as_deref() {
                IakSignInput::RefId(r)
            } else if a.balance {
                IakSignInput::Balance
            } else if a.pricelist {
                IakSignInput::PriceList
            } else if a.checkstatus {
                IakSignInput::CheckStatus
            } else if a.operator {
                IakSignInput::CheckOperator
            } else if let Some(id) = a.tr_id {
                IakSignInput::TrId(id)
            } else if let Some(f) = a.field.as_deref() {
                IakSignInput::Field(f)
            } else {
                unreachable!("clap requires one input flag")
            };
            (sign::iak_sign(&a.username, &key, input), a.verify)
        }
        SignCommand::Mcp(a) => {
            let key = secrets::resolve(&a.hash_key)?;
            let sig = match a.transaction_id.as_deref() {
                Some(tx) => sign::mcp_callback_signature(
                    &key,
                    tx,
                    &a.external_id,
                    &a.order_id,
                    a.sub_merchant_id.as_deref(),
                ),
                None => sign::mcp_request_signature(&key, &a.external_id, &a.order_id),
            };
            (sig, a.verify)
        }
        SignCommand::McpAuth(a) => {
            let secret = secrets::resolve(&a.secret_unbound_id)?;
            (sign::mcp_basic_auth(&a.merchant_id, &secret), None)
        }
    };
    match verify {
        None => {
            println!("{computed}");
            Ok(ExitCode::SUCCESS)
        }
        Some(given) if sign::hex_digest_eq(&computed, &given) => {
            println!("valid");
            Ok(ExitCode::SUCCESS)
        }
        Some(_) => {
            println!("invalid: expected {computed}");
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod exposure_tests {
    #[test]
    fn a_sandbox_reachable_from_other_machines_is_warned_about() {
        let local: std::net::SocketAddr = "127.0.0.1:8090".parse().unwrap();
        let public: std::net::SocketAddr = "0.0.0.0:8090".parse().unwrap();
        assert_eq!(super::sandbox_exposure(local, false), None);
        let open = super::sandbox_exposure(public, false).unwrap();
        assert!(
            open.contains("open to anyone") && open.contains("sandbox.token"),
            "{open}"
        );
        let guarded = super::sandbox_exposure(public, true).unwrap();
        assert!(guarded.contains("need sandbox.token"), "{guarded}");
    }
}
