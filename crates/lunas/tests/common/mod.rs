//! A real gateway on port 0 with a temporary SQLite database, and helpers that speak to it as
//! providers and as the merchant would.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use lunas::app::Gateway;
use lunas::config::Config;
use lunas_protocol::iak::prepaid::{PrepaidCallback, PrepaidStatus};
use lunas_protocol::mcp::{Credentials, VaTransaction};
use lunas_protocol::{ApiVersion, Format, Secret};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-admin-token-0123456789";
pub const IAK_USER: &str = "123123123";
pub const IAK_KEY: &str = "TESTKEY-not-real-0001";
pub const IDSL_USER: &str = "081234567890";
pub const IDSL_KEY: &str = "sandbox-key-XYZ";

pub fn mcp_credentials() -> Credentials {
    Credentials {
        merchant_id: "MCP2099010101".into(),
        secret_unbound_id: Secret::new("0x00aabbccddeeff0011"),
        hash_key: Secret::new("HASHKEY-not-real-01"),
        sub_merchant_id: None,
    }
}

/// The configuration every test starts from; `extra` is appended (more providers, settings).
pub fn config_text(db: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_token = "{TOKEN}"

[storage]
url = "sqlite://{db}"
busy_timeout_ms = 200

[[providers]]
id = "iak"
kind = "iak"
username = "{IAK_USER}"
api_key = "{IAK_KEY}"

[[providers]]
id = "idsl"
kind = "idsl"
username = "{IDSL_USER}"
api_key = "{IDSL_KEY}"
prepaid_url = "http://127.0.0.1:9/"

[[providers]]
id = "mcp"
kind = "mcp"
merchant_id = "MCP2099010101"
secret_unbound_id = "0x00aabbccddeeff0011"
hash_key = "HASHKEY-not-real-01"
{extra}
"#,
        db = db.display()
    )
}

pub struct TestGateway {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub extra: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    pub async fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra.to_owned()).await
    }

    async fn start_in(dir: tempfile::TempDir, extra: String) -> Self {
        let text = config_text(&dir.path().join("lunas.db"), &extra);
        let config = Config::from_parts(Some(&text), &[], &|_| None).expect("test config is valid");
        let gateway = Gateway::build(&config).await.expect("gateway builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(listener, async move {
            let _ = rx.await;
        }));
        TestGateway {
            addr,
            client: reqwest::Client::new(),
            dir,
            extra,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("lunas.db")
    }

    /// Stops the gateway (finishing requests in flight) and starts a new one on the same
    /// database, as a process restart would.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let extra = std::mem::take(&mut self.extra);
        Self::start_in(dir, extra).await
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a callback body; returns the status and the body text.
    pub async fn callback(
        &self,
        provider: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut req = self
            .client
            .post(self.url(&format!("/callbacks/{provider}")))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The transaction as the admin API shows it, or `None` when unknown.
    pub async fn transaction(&self, provider: &str, reference: &str) -> Option<Value> {
        let (status, body) = self
            .get(&format!("/api/v1/transactions/{provider}/{reference}"))
            .await;
        (status == 200).then_some(body)
    }

    pub async fn events(&self) -> Vec<Value> {
        let (_, body) = self.get("/api/v1/events?limit=1000").await;
        body["events"].as_array().cloned().unwrap_or_default()
    }
}

/// A correctly signed IAK-family prepaid callback.
pub fn prepaid_callback(
    reference: &str,
    status: PrepaidStatus,
    user: &str,
    key: &str,
) -> PrepaidCallback {
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

pub fn iak_body(
    reference: &str,
    status: PrepaidStatus,
    format: Format,
    version: ApiVersion,
) -> String {
    prepaid_callback(reference, status, IAK_USER, IAK_KEY).encode(format, version)
}

/// An MCPayment VA callback body with its `mcp-signature`.
pub fn mcp_callback(tx: &VaTransaction) -> (String, String) {
    let sig =
        mcp_credentials().callback_signature(&tx.transaction_id, &tx.external_id, &tx.order_id);
    (tx.encode(), sig)
}
