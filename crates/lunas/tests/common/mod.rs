//! A real gateway on port 0 with a temporary database, and helpers that speak to it as
//! providers and as the merchant would.
//!
//! The database is SQLite by default. When `LUNAS_TEST_POSTGRES_URL` names a PostgreSQL server
//! (e.g. `postgres://root@127.0.0.1:5432/test`), every gateway gets a fresh PostgreSQL database
//! instead, created through that URL and dropped when the gateway is dropped (or, should the
//! test process die first, by the next test process or `.ci/run`).
#![allow(dead_code)]

pub mod process;

use std::net::SocketAddr;
use std::path::PathBuf;

use lunas::app::Gateway;
use lunas::config::Config;
use lunas_protocol::iak::prepaid::{PrepaidCallback, PrepaidStatus};
use lunas_protocol::mcp::{
    Credentials, PaymentDetails, PaymentRecord, PaymentSystem, TransactionStatus, VaTransaction,
};
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

/// The PostgreSQL server the tests use, if any (`LUNAS_TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("LUNAS_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Prints why a test that needs one backend does not run on this one.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test} on this backend: {why}");
}

/// Scratch PostgreSQL databases of this process, by the path they stand for.
static SCRATCH: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());

/// Runs the future `f` makes on a thread and runtime of its own (usable from sync code inside
/// a test's runtime).
fn block_on<T, F, Fut>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
    .join()
    .unwrap()
}

/// Drops the scratch databases left by test processes that are gone.
fn sweep_dead(admin: &str) {
    let admin = admin.to_owned();
    block_on(move || async move {
        let Ok(names) = lunas_store::postgres::list_databases(&admin, "lunas_t_").await else {
            return;
        };
        for name in names {
            let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = lunas_store::postgres::drop_database(&admin, &name).await;
            }
        }
    });
}

/// The storage URL for a test database at `db`: the SQLite file itself, or the PostgreSQL
/// database standing for that path (created the first time it is asked for).
pub fn storage_url(db: &std::path::Path) -> String {
    let Some(admin) = postgres_admin_url() else {
        return format!("sqlite://{}", db.display());
    };
    let mut scratch = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, name)) = scratch.iter().find(|(p, _)| p == db) {
        return lunas_store::postgres::database_url(&admin, name);
    }
    if scratch.is_empty() {
        sweep_dead(&admin);
    }
    let name = format!("lunas_t_{}_{}", std::process::id(), scratch.len());
    let (a, n) = (admin.clone(), name.clone());
    let url = block_on(move || async move { lunas_store::postgres::create_database(&a, &n).await })
        .unwrap_or_else(|e| panic!("LUNAS_TEST_POSTGRES_URL={admin}: {e}"));
    scratch.push((db.to_path_buf(), name));
    url
}

/// Drops the PostgreSQL database standing for `db`, if one was made.
pub fn drop_storage(db: &std::path::Path) {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let name = {
        let mut scratch = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = scratch.iter().position(|(p, _)| p == db) else {
            return;
        };
        scratch.remove(i).1
    };
    let _ =
        block_on(move || async move { lunas_store::postgres::drop_database(&admin, &name).await });
}

/// A lock another process holds on the gateway's storage, so that writes cannot proceed:
/// SQLite's exclusive database lock, or an exclusive lock on PostgreSQL's transactions table.
pub enum StorageLock {
    Sqlite(rusqlite::Connection),
    Postgres(sqlx::PgConnection),
}

impl StorageLock {
    pub async fn take(db: &std::path::Path) -> StorageLock {
        if postgres_admin_url().is_some() {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&storage_url(db)).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            StorageLock::Postgres(c)
        } else {
            let c = rusqlite::Connection::open(db).unwrap();
            c.execute_batch("BEGIN EXCLUSIVE").unwrap();
            StorageLock::Sqlite(c)
        }
    }

    pub async fn release(self) {
        match self {
            StorageLock::Sqlite(c) => c.execute_batch("ROLLBACK").unwrap(),
            StorageLock::Postgres(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
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
url = "{url}"
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
        url = storage_url(db)
    )
}

pub struct TestGateway {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub extra: String,
    /// `LUNAS__...` overrides applied on top of the configuration file.
    pub env: Vec<(String, String)>,
    /// Only the HTTP side runs: no reconciler or deliverer in the background, so a test
    /// decides when a check happens (`POST .../check`).
    pub http_only: bool,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    pub async fn start_with(extra: &str) -> Self {
        Self::start_with_env(extra, &[]).await
    }

    /// Starts with `extra` appended to the configuration and `LUNAS__...` overrides (the way to
    /// set `[server]` keys such as `body_limit`).
    pub async fn start_with_env(extra: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::start_in(dir, extra.to_owned(), env, false).await
    }

    /// Starts with `extra` appended to the configuration, serving HTTP only (see
    /// [`TestGateway::http_only`]).
    pub async fn start_http_only(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra.to_owned(), Vec::new(), true).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        extra: String,
        env: Vec<(String, String)>,
        http_only: bool,
    ) -> Self {
        let text = config_text(&dir.path().join("lunas.db"), &extra);
        let config =
            Config::from_parts(Some(&text), &env, &|_| None).expect("test config is valid");
        let gateway = Gateway::build(&config).await.expect("gateway builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let stop = async move {
            let _ = rx.await;
        };
        let task = if http_only {
            tokio::spawn(gateway.serve_http(listener, stop))
        } else {
            tokio::spawn(gateway.serve(listener, stop))
        };
        TestGateway {
            addr,
            client: reqwest::Client::new(),
            dir,
            extra,
            env,
            http_only,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("lunas.db")
    }

    /// Holds a lock on this gateway's storage that stops every write (see [`StorageLock`]).
    pub async fn lock_storage(&self) -> StorageLock {
        StorageLock::take(&self.db_path()).await
    }

    /// Stops the gateway (finishing requests in flight) and starts a new one on the same
    /// database, as a process restart would.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let extra = std::mem::take(&mut self.extra);
        let env = std::mem::take(&mut self.env);
        Self::start_in(dir, extra, env, self.http_only).await
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

    /// POSTs a callback and returns the whole response (status, headers, body).
    pub async fn callback_response(
        &self,
        provider: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url(&format!("/callbacks/{provider}")))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// POSTs a signed MCPayment callback.
    pub async fn mcp(&self, tx: &VaTransaction) -> (u16, String) {
        let (body, sig) = mcp_callback(tx);
        self.callback("mcp", body, &[("mcp-signature", sig.as_str())])
            .await
    }

    /// GETs with a query string (encoded properly) and the admin token.
    pub async fn get_query(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let res = self
            .client
            .get(self.url(&format!("{path}?{encoded}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Sends `method path` with the given `Authorization` header (none when `None`).
    pub async fn request_as(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.json().await.unwrap_or(Value::Null))
    }

    /// Every transaction (as the list shows them) and every event: what "no state changed"
    /// compares.
    pub async fn snapshot(&self) -> (Vec<Value>, Vec<Value>) {
        let (status, body) = self.get("/api/v1/transactions?limit=500").await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().cloned().unwrap_or_default();
        (items, self.events().await)
    }

    /// The transaction as the list shows it (without the detail view's timeline and
    /// deliveries), or `None` when unknown.
    pub async fn record(&self, provider: &str, reference: &str) -> Option<Value> {
        self.transaction(provider, reference).await.map(|mut t| {
            let m = t.as_object_mut().unwrap();
            m.remove("timeline");
            m.remove("deliveries");
            m.remove("next_check_at");
            m.remove("older_observations");
            t
        })
    }

    /// The verdict of every message a transaction's observations record, oldest first (an
    /// observation that was repeated counts once per arrival).
    pub async fn verdicts(&self, provider: &str, reference: &str) -> Vec<String> {
        let tx = self
            .transaction(provider, reference)
            .await
            .unwrap_or_else(|| panic!("{provider}/{reference} is known"));
        arrivals(&tx, |_| true)
    }

    /// The event types in the feed, oldest first.
    pub async fn event_types(&self) -> Vec<String> {
        self.events()
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        drop_storage(&self.db_path());
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

/// Checks that an answer is `{"error": {"code", "message"}}` with this status and code, and
/// returns the message.
#[track_caller]
pub fn assert_error(got: (u16, &str), status: u16, code: &str) -> String {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "wanted {status} {code}, got: {body}");
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("the error body is not JSON ({e}): {body:?}"));
    assert_eq!(v["error"]["code"], code, "{body}");
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error.message is a string: {body}"));
    assert!(!message.is_empty(), "{body}");
    message.to_owned()
}

/// The protocol crate's fixture directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lunas-protocol/tests/fixtures")
}

/// A seed fixture's text.
pub fn fixture(rel: &str) -> String {
    let path = fixtures_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An IAK/IDSL callback fixture with its placeholder `sign` replaced by the right one for
/// these credentials; every other byte is kept as the seed wrote it.
pub fn resign_iak(text: &str, user: &str, key: &str) -> String {
    let decoded = PrepaidCallback::parse(text.as_bytes()).expect("the fixture parses");
    let cb = decoded.message;
    let sign = lunas_protocol::sign::iak_sign(
        user,
        &Secret::new(key),
        lunas_protocol::sign::IakSignInput::RefId(&cb.ref_id),
    );
    assert!(text.contains(&cb.sign));
    text.replacen(&cb.sign, &sign, 1)
}

/// An MCPayment fixture as sent (its bytes unchanged) and the `mcp-signature` for it.
pub fn mcp_fixture(rel: &str) -> (String, String) {
    let text = fixture(rel);
    let tx = VaTransaction::parse_callback(text.as_bytes()).expect("the fixture parses");
    let sig =
        mcp_credentials().callback_signature(&tx.transaction_id, &tx.external_id, &tx.order_id);
    (text, sig)
}

/// A VA callback: `payments` are (reference_id, amount) of `payment_history`.
pub fn va_callback(
    external_id: &str,
    status: TransactionStatus,
    system: PaymentSystem,
    total: i64,
    payments: &[(&str, i64)],
    multi_use: bool,
) -> VaTransaction {
    let mut tx = VaTransaction::new(
        &format!("trx-{external_id}"),
        external_id,
        &format!("ORD-{external_id}"),
        status,
    );
    tx.response_code = Some("00".into());
    tx.currency = Some("IDR".into());
    tx.payment_method = Some("BANK_TRANSFER".into());
    tx.payment_channel = Some("BRI".into());
    let paid: i64 = payments.iter().map(|(_, a)| a).sum();
    tx.payment_details = Some(PaymentDetails {
        payment_system: Some(system),
        va_number: Some("8808123456789012".into()),
        amount: Some(total),
        total_amount: Some(total),
        total_paid_amount: Some(paid),
        is_multi_use: Some(multi_use),
        ..PaymentDetails::default()
    });
    if !payments.is_empty() {
        tx.payment_history = Some(
            payments
                .iter()
                .enumerate()
                .map(|(i, (r, a))| PaymentRecord {
                    paid_amount: Some(*a),
                    paid_time: Some(format!("2024-05-01T10:0{i}:00.000+07:00")),
                    reference_id: Some((*r).to_owned()),
                })
                .collect(),
        );
    }
    tx
}

/// A correctly signed IAK callback with its fields as a JSON object, to edit before sending.
pub fn iak_json(reference: &str, status: PrepaidStatus) -> Value {
    serde_json::from_str(&iak_body(reference, status, Format::Json, ApiVersion::V2)).unwrap()
}

/// Sends raw bytes to the gateway over one TCP connection and reads the answer: the way to
/// send what an HTTP client would not (a chunked body of a chosen size). Returns the status
/// and the body.
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything; what it said still counts.
    let _ = stream.write_all(request).await;
    let _ = stream.flush().await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        if response_complete(&answer) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    (status, body.to_owned())
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

/// A POST of `body` to `path` with its `Content-Length`. For bodies the server refuses before
/// reading them: an HTTP client may report the broken upload instead of the answer.
pub fn sized_post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A chunked POST of `body` to `path`, in chunks of `chunk` bytes, with no `Content-Length`.
pub fn chunked_post(path: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The verdict of every message the observations of `tx` (a transaction as the API shows it)
/// record that `keep` selects, oldest first: a repeated observation counts once per arrival.
pub fn arrivals(tx: &Value, keep: impl Fn(&Value) -> bool) -> Vec<String> {
    tx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "observation" && keep(e))
        .flat_map(|e| {
            let n = 1 + e["repeats"].as_u64().unwrap_or(0) as usize;
            std::iter::repeat_n(e["verdict"].as_str().unwrap().to_owned(), n)
        })
        .collect()
}
