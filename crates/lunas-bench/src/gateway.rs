//! The gateway under test: `lunas serve --config <file>` as a child process, its configuration
//! (the providers of the test harness, every provider URL pointing at 127.0.0.1), and the admin
//! API reads the harness checks state with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lunas_protocol::mcp::Credentials;
use lunas_protocol::Secret;
use serde_json::Value;
use tokio::process::Command;

use crate::util::{ChildServer, Result};

pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
pub const IAK_USER: &str = "123123123";
pub const IAK_KEY: &str = "BENCHKEY-not-real-0001";
pub const IDSL_USER: &str = "081234567890";
pub const IDSL_KEY: &str = "bench-idsl-key-XYZ";
pub const MCP_MERCHANT: &str = "MCP2099010101";
pub const MCP_SECRET_UNBOUND: &str = "0x00aabbccddeeff0011";
pub const MCP_HASH_KEY: &str = "HASHKEY-bench-not-real";
/// The body limit configured for every gateway the harness starts (the default, stated).
pub const BODY_LIMIT: usize = 65536;
/// A Standard Webhooks secret for the receiving endpoint.
pub const ENDPOINT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn mcp_credentials() -> Credentials {
    Credentials {
        merchant_id: MCP_MERCHANT.into(),
        secret_unbound_id: Secret::new(MCP_SECRET_UNBOUND),
        hash_key: Secret::new(MCP_HASH_KEY),
        sub_merchant_id: None,
    }
}

/// Where check-status calls would go: nothing listens on 127.0.0.1:9, so no traffic leaves the
/// machine even if a reconciler runs.
const NOWHERE: &str = "http://127.0.0.1:9/";

/// A gateway configuration: the three provider accounts of the test harness (IAK, IDSL,
/// MCPayment), optionally one endpoint, `extra` appended.
pub fn config_text(db: &Path, endpoint: Option<&str>, extra: &str) -> String {
    let endpoint = endpoint
        .map(|url| {
            format!(
                r#"
[[endpoints]]
id = "bench"
url = "{url}"
secret = "{ENDPOINT_SECRET}"
events = ["*"]
"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_token = "{ADMIN_TOKEN}"
body_limit = {BODY_LIMIT}

[storage]
url = "sqlite://{db}"

[[providers]]
id = "iak"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
prepaid_url = "{NOWHERE}"
postpaid_url = "{NOWHERE}"
[providers.reconcile]
first_check_after = "24h"

[[providers]]
id = "idsl"
kind = "idsl"
username = "{IDSL_USER}"
api_key = "{IDSL_KEY}"
prepaid_url = "{NOWHERE}"
postpaid_url = "{NOWHERE}"
[providers.reconcile]
first_check_after = "24h"

[[providers]]
id = "mcp"
kind = "mcp"
merchant_id = "{MCP_MERCHANT}"
secret_unbound_id = "{MCP_SECRET_UNBOUND}"
hash_key = "{MCP_HASH_KEY}"
base_url = "{NOWHERE}"
[providers.reconcile]
first_check_after = "24h"
{endpoint}
{extra}
"#,
        db = db.display()
    )
}

/// An IAK account (the harness's credentials) that accepts callbacks only from
/// `callback_ips` (a TOML list), to append to a configuration.
pub fn fenced_iak(id: &str, callback_ips: &str) -> String {
    format!(
        r#"
[[providers]]
id = "{id}"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"
prepaid_url = "{NOWHERE}"
postpaid_url = "{NOWHERE}"
callback_ips = {callback_ips}
[providers.reconcile]
first_check_after = "24h"
"#
    )
}

/// How to start the gateway.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub endpoint: Option<String>,
    pub storage_url: Option<String>,
}

impl GatewaySpec {
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("lunas.db")
    }

    /// Writes the configuration and starts `lunas serve` with the log level of `LUNAS_LOG`
    /// (default `info`, as a deployment runs); its log goes to `<dir>/lunas.log` (appended
    /// across restarts).
    pub async fn start(&self) -> Result<ChildServer> {
        let level = std::env::var("LUNAS_LOG").unwrap_or_else(|_| "info".into());
        self.start_logging(&level).await
    }

    /// [`GatewaySpec::start`] with this `LUNAS_LOG` level.
    pub async fn start_logging(&self, level: &str) -> Result<ChildServer> {
        let cmd = self.command(level)?;
        ChildServer::spawn(cmd, &self.dir.join("lunas.log")).await
    }

    /// [`GatewaySpec::start`] with `server` (lines of `[server]`, e.g. `read_timeout_ms = 2000`)
    /// and `extra` (tables appended to the configuration, e.g. another provider account).
    pub async fn start_configured(&self, server: &str, extra: &str) -> Result<ChildServer> {
        let level = std::env::var("LUNAS_LOG").unwrap_or_else(|_| "info".into());
        let cmd = self.command_configured(&level, server, extra)?;
        ChildServer::spawn(cmd, &self.dir.join("lunas.log")).await
    }

    /// The `lunas serve` command, its configuration written.
    pub fn command(&self, level: &str) -> Result<Command> {
        self.command_configured(level, "", "")
    }

    /// [`GatewaySpec::command`] with `server` lines in `[server]` and `extra` appended.
    pub fn command_configured(&self, level: &str, server: &str, extra: &str) -> Result<Command> {
        let config = self.dir.join("lunas.toml");
        let mut text = config_text(&self.db_path(), self.endpoint.as_deref(), extra);
        if !server.is_empty() {
            let limit = format!("body_limit = {BODY_LIMIT}\n");
            text = text.replacen(&limit, &format!("{limit}{}\n", server.trim_end()), 1);
        }
        if let Some(url) = &self.storage_url {
            text = text.replacen(
                &format!("url = \"sqlite://{}\"", self.db_path().display()),
                &format!("url = \"{url}\""),
                1,
            );
        }
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        if !self.bin.exists() {
            return Err(format!(
                "{} does not exist: build it with `cargo build --release -p lunas` (or pass --lunas-bin)",
                self.bin.display()
            ));
        }
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg("--config")
            .arg(&config)
            .current_dir(&self.dir)
            .env_clear()
            .env("NO_COLOR", "1")
            .env("LUNAS_LOG", level);
        Ok(cmd)
    }
}

/// The admin API, as the harness reads it.
pub struct Admin {
    pub client: reqwest::Client,
    pub base: String,
}

impl Admin {
    pub fn new(server: &ChildServer) -> Admin {
        Admin {
            client: reqwest::Client::new(),
            base: format!("http://{}", server.addr),
        }
    }

    /// `GET path` with the admin token, as JSON.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| format!("GET {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("GET {path}: {e}: {text}"))
    }

    /// Registers a transaction the merchant started (`POST /api/v1/transactions`).
    pub async fn register(&self, provider: &str, reference: &str, kind: &str) -> Result<()> {
        let res = self
            .client
            .post(format!("{}/api/v1/transactions", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"provider_id": provider, "ref": reference, "kind": kind})
                    .to_string(),
            )
            .send()
            .await
            .map_err(|e| format!("register {reference}: {e}"))?;
        match res.status().as_u16() {
            200 | 201 => Ok(()),
            s => Err(format!(
                "register {reference}: {s} {}",
                res.text().await.unwrap_or_default()
            )),
        }
    }

    /// Every transaction, keyed by (provider, ref), as the list shows it.
    pub async fn all_transactions(&self) -> Result<HashMap<(String, String), Value>> {
        let mut out = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/transactions?limit=500&cursor={c}"),
                None => "/api/v1/transactions?limit=500".to_owned(),
            };
            let page = self.get(&path).await?;
            for item in page["items"].as_array().into_iter().flatten() {
                let key = (
                    item["provider_id"].as_str().unwrap_or_default().to_owned(),
                    item["ref"].as_str().unwrap_or_default().to_owned(),
                );
                out.insert(key, item.clone());
            }
            match &page["next_cursor"] {
                Value::Null => break,
                Value::String(s) => cursor = Some(s.clone()),
                other => cursor = Some(other.to_string()),
            }
        }
        Ok(out)
    }

    /// Every event of the feed, oldest first.
    pub async fn all_events(&self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(c) => format!("/api/v1/events?limit=1000&after={c}"),
                None => "/api/v1/events?limit=1000".to_owned(),
            };
            let page = self.get(&path).await?;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                break;
            }
            out.extend(events);
            match &page["next_cursor"] {
                Value::Null => break,
                Value::String(s) => after = Some(s.clone()),
                other => after = Some(other.to_string()),
            }
        }
        Ok(out)
    }
}

/// The (provider, ref) an event is about.
pub fn event_subject(event: &Value) -> (String, String) {
    (
        event["data"]["provider_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        event["data"]["ref"].as_str().unwrap_or_default().to_owned(),
    )
}
