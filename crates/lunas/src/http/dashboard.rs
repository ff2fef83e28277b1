//! The dashboard: server-rendered HTML behind a login with the admin token. No CDN, no
//! framework; the only script re-fetches the transaction rows every few seconds.
//!
//! Pages: transactions (filters, search, live), one transaction with its whole timeline (every
//! callback's raw body and verdict, every status check, event and delivery attempt), the
//! needs-review queue with the evidence side by side, deliveries with dead letters and redelivery,
//! and provider health with the deposit balance drawn over time. Customer goods (PIN, activation
//! code, serial numbers/PLN tokens) are masked until revealed.
//!
//! Sessions are server-side: logging in with the admin token creates a random session id, kept
//! in the store only as its SHA-256 digest, with an expiry (`server.session_ttl`); logging out
//! deletes it on every node. The cookie is `HttpOnly; SameSite=Strict` (and `Secure` when
//! served over HTTPS). Every form carries a CSRF token keyed with the session's id, so it says
//! nothing about the admin token. Login attempts are limited per client address and logged.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use lunas_core::{rfc3339, DeliveryState, Observation, ObservationVerdict, TxRecord};
use lunas_protocol::{State as TxState, TxKind};
use lunas_store::{DeliveryQuery, Redeliver, TxQuery};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::AppState;

const COOKIE: &str = "lunas_session";

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/transactions") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/transactions", get(transactions))
        .route("/transactions/{provider_id}/{ref}", get(transaction))
        .route("/transactions/{provider_id}/{ref}/check", post(check))
        .route("/transactions/{provider_id}/{ref}/resolve", post(resolve))
        .route(
            "/transactions/{provider_id}/{ref}/redeliver",
            post(redeliver_transaction),
        )
        .route("/review", get(review))
        .route("/deliveries", get(deliveries))
        .route("/deliveries/redeliver", post(redeliver))
        .route("/providers", get(providers))
}

/// The store's name for a session id: its SHA-256, so a copy of the database opens nothing.
fn id_digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The CSRF token of a session: keyed with its random id.
fn csrf_of(id: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(id.as_bytes()).expect("any key length");
    mac.update(b"lunas-dashboard-csrf");
    hex::encode(mac.finalize().into_bytes())
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn now_millis() -> i64 {
    lunas_core::to_millis(OffsetDateTime::now_utc())
}

/// The session cookie's value in a request, if any.
fn cookie_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A request from a logged-in user; anyone else is sent to the login page.
pub struct Session {
    csrf: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(id) = cookie_of(&parts.headers) else {
            return Err(Redirect::to("/login").into_response());
        };
        match app.store.session(&id_digest(&id), now_millis()).await {
            Ok(Some(_)) => Ok(Session { csrf: csrf_of(&id) }),
            Ok(None) => Err(Redirect::to("/login?expired=1").into_response()),
            Err(e) => Err(super::ApiError::from(e).into_response()),
        }
    }
}

/// `None` when the form's CSRF token is right; otherwise the answer to send.
fn csrf_refusal(session: &Session, given: &str) -> Option<Response> {
    (!same(given, &session.csrf)).then(|| {
        (
            StatusCode::FORBIDDEN,
            "the form is stale: reload the page and try again",
        )
            .into_response()
    })
}

// ---------------------------------------------------------------------------------------------
// Layout

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#102a43;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.4rem;align-items:center}
header a{color:#d9e2ec;text-decoration:none}header a.on,header a:hover{color:#fff;font-weight:600}
header .brand{font-weight:700;color:#fff;margin-right:1rem}header form{margin-left:auto}
main{padding:1rem 1.2rem;max-width:1400px}h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0001}
th,td{padding:.4rem .55rem;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}th{background:#f0f4f8;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.state{padding:.1rem .45rem;border-radius:.6rem;font-size:.85em;white-space:nowrap}
.succeeded,.paid{background:#d3f9d8;color:#1b5e20}.failed,.expired,.canceled{background:#ffe3e3;color:#a61e1e}
.pending,.awaiting_payment,.partially_paid{background:#fff3bf;color:#7c5a00}.refunded{background:#e5dbff;color:#4b2991}
.review{background:#ff922b;color:#fff;padding:.1rem .4rem;border-radius:.3rem;font-size:.8em}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:.8rem}input,select,button{font:inherit;padding:.3rem .45rem}
button{cursor:pointer;border:1px solid #486581;background:#fff;border-radius:.3rem}button.primary{background:#243b53;color:#fff}
pre{white-space:pre-wrap;word-break:break-all;background:#f0f4f8;padding:.5rem;margin:.3rem 0;max-height:22rem;overflow:auto}
.flash{background:#e3f2fd;border:1px solid #90caf9;padding:.5rem .8rem;margin-bottom:1rem}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.card{background:#fff;padding:.8rem;box-shadow:0 1px 2px #0001}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dl.kv dt{color:#52606d}
details.secret summary{cursor:pointer;color:#486581}.muted{color:#829ab1}.bad{color:#a61e1e}
.timeline td:first-child{white-space:nowrap}svg{background:#fff;box-shadow:0 1px 2px #0001}
"#;

fn page(s: &Session, title: &str, active: &str, body: Markup) -> Html<String> {
    let nav = [
        ("/transactions", "Transactions"),
        ("/review", "Needs review"),
        ("/deliveries", "Deliveries"),
        ("/providers", "Providers"),
    ];
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · lunas" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    header {
                        span.brand { "lunas" }
                        @for (href, label) in nav {
                            a href=(href) class=(if active == href { "on" } else { "" }) { (label) }
                        }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button { "Log out" }
                        }
                    }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

fn state_badge(state: TxState) -> Markup {
    html! { span class={ "state " (state.as_str()) } { (state.as_str()) } }
}

fn money(amount: Option<i64>) -> Markup {
    match amount {
        Some(a) => html! { "Rp " (group_thousands(a)) },
        None => html! { span.muted { "—" } },
    }
}

/// `1234567` → `1.234.567`, as rupiah are written in Indonesia.
pub fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn when(t: OffsetDateTime) -> String {
    rfc3339(t)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}

/// A raw body as evidence, its customer goods (serial number or token, PIN, activation code)
/// blanked out, in JSON (any depth) and in IAK's XML alike; the transaction's own fields reveal
/// the kept goods on request.
fn masked_body(body: &[u8]) -> String {
    const GOODS: [&str; 3] = ["sn", "pin", "activation_code"];
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        fn walk(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, x) in m.iter_mut() {
                        if GOODS.contains(&k.as_str()) && !x.is_null() {
                            *x = serde_json::Value::String("••••".into());
                        } else {
                            walk(x);
                        }
                    }
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        let mut value = value;
        walk(&mut value);
        return value.to_string();
    }
    let mut text = String::from_utf8_lossy(body).into_owned();
    for tag in GOODS {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut from = 0;
        while let Some(start) = text[from..].find(&open).map(|i| from + i + open.len()) {
            let Some(end) = text[start..].find(&close).map(|i| start + i) else {
                break;
            };
            text.replace_range(start..end, "••••");
            from = start + "••••".len() + close.len();
        }
        // A JSON body cut short (a refusal's or a repeat's kept part) does not parse: mask
        // `"pin": "..."` wherever it appears, even with its closing quote cut off.
        let key = format!("\"{tag}\"");
        let mut from = 0;
        while let Some(at) = text[from..].find(&key).map(|i| from + i + key.len()) {
            let rest = &text[at..];
            let after_colon = rest
                .trim_start()
                .strip_prefix(':')
                .map(|r| rest.len() - r.trim_start().len());
            let Some(offset) = after_colon else {
                from = at;
                continue;
            };
            let start = at + offset;
            if !text[start..].starts_with('"') {
                from = start;
                continue;
            }
            let value = start + 1;
            let mut end = text.len();
            let mut escaped = false;
            for (i, c) in text[value..].char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = value + i;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            text.replace_range(value..end, "••••");
            from = value + "••••".len();
        }
    }
    text
}

/// Evidence with customer goods blanked out (a conflict's `kept`/`reported` tokens, reported
/// serial numbers, PINs, activation codes): the transaction page reveals the kept ones on
/// request.
fn mask_goods(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const GOODS: [&str; 3] = ["serial_number", "pin", "activation_code"];
    match v {
        Value::Object(m) => {
            let goods_pair = m
                .get("field")
                .and_then(Value::as_str)
                .is_some_and(|f| GOODS.contains(&f));
            Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        let secret = GOODS.iter().any(|g| k.ends_with(g))
                            || (goods_pair && matches!(k.as_str(), "kept" | "reported"));
                        let shown = if secret && !x.is_null() {
                            Value::String("••••".into())
                        } else {
                            mask_goods(x)
                        };
                        (k.clone(), shown)
                    })
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(mask_goods).collect()),
        other => other.clone(),
    }
}

/// Customer goods: hidden until the operator reveals them.
fn secret(value: &Option<String>) -> Markup {
    match value {
        Some(v) => html! { details.secret { summary { "•••• reveal" } code { (v) } } },
        None => html! { span.muted { "—" } },
    }
}

fn tx_link(tx: &TxRecord) -> String {
    tx_path(&tx.provider_id, &tx.reference)
}

/// The page of one transaction.
fn tx_path(provider_id: &str, reference: &str) -> String {
    format!(
        "/transactions/{}/{}",
        urlencode(provider_id),
        urlencode(reference)
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn flash(message: &Option<String>) -> Markup {
    html! { @if let Some(m) = message { div.flash { (m) } } }
}

// ---------------------------------------------------------------------------------------------
// Login

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    failed: Option<String>,
    expired: Option<String>,
    wait: Option<String>,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { "Log in · lunas" } style { (PreEscaped(STYLE)) } }
                body {
                    header { span.brand { "lunas" } }
                    main {
                        h1 { "Log in" }
                        @if q.failed.is_some() { div.flash.bad { "That is not the admin token." } }
                        @if q.wait.is_some() { div.flash.bad { "Too many login attempts from your address: wait a minute and try again." } }
                        @if q.expired.is_some() { div.flash { "Your session has ended: log in again." } }
                        form method="post" action="/login" {
                            p { label { "Admin token " input type="password" name="token" id="token" autofocus required size="40"; } }
                            button.primary type="submit" id="login" { "Log in" }
                        }
                        p.muted { "The token is the server's " code { "admin_token" } "; " code { "lunas demo" } " prints it." }
                    }
                }
            }
        }
        .into_string(),
    )
}

fn session_cookie(app: &AppState, value: &str, max_age: u64) -> String {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

async fn login(
    State(app): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let remote = peer.ip().to_string();
    if !app.logins.allow(&remote, now) {
        app.metrics.auth_failure("login_rate_limited");
        tracing::warn!(remote = %remote, "dashboard login refused: too many attempts from this address");
        return Redirect::to("/login?wait=1").into_response();
    }
    if !same(form.token.trim(), app.admin_token.expose()) {
        app.metrics.auth_failure("login_failed");
        tracing::warn!(remote = %remote, "dashboard login failed: wrong admin token");
        return Redirect::to("/login?failed=1").into_response();
    }
    let id = {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let created_at = lunas_core::to_millis(now);
    let ttl = app.session_ttl;
    let row = lunas_store::SessionRow {
        id_digest: id_digest(&id),
        created_at,
        expires_at: created_at + ttl.as_millis() as i64,
        remote_addr: Some(remote.clone()),
    };
    if let Err(e) = app.store.start_session(row).await {
        return super::ApiError::from(e).into_response();
    }
    tracing::info!(remote = %remote, "dashboard login");
    (
        [(header::SET_COOKIE, session_cookie(&app, &id, ttl.as_secs()))],
        Redirect::to("/transactions"),
    )
        .into_response()
}

async fn logout(
    State(app): State<AppState>,
    s: Session,
    headers: axum::http::HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&s, &form.csrf) {
        return refusal;
    }
    if let Some(id) = cookie_of(&headers) {
        if let Err(e) = app.store.end_session(&id_digest(&id), now_millis()).await {
            return super::ApiError::from(e).into_response();
        }
        tracing::info!("dashboard logout");
    }
    (
        [(header::SET_COOKIE, session_cookie(&app, "", 0))],
        Redirect::to("/login"),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Transactions

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    provider_id: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    needs_review: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    fragment: Option<String>,
    flash: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

async fn transactions(
    s: Session,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Response {
    let query = TxQuery {
        provider_id: nonempty(&q.provider_id),
        state: nonempty(&q.state).and_then(|s| TxState::parse(&s)),
        kind: nonempty(&q.kind).and_then(|s| TxKind::parse(&s)),
        needs_review: (q.needs_review.as_deref() == Some("true")).then_some(true),
        search: nonempty(&q.q),
        cursor: nonempty(&q.cursor).and_then(|c| c.parse().ok()),
        limit: 50,
        ..TxQuery::default()
    };
    let page_of = match app.store.list_transactions(&query).await {
        Ok(p) => p,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let rows = html! {
        @for tx in &page_of.items {
            tr {
                td { a href=(tx_link(tx)) { (tx.reference) } }
                td { (tx.provider_id) }
                td { (tx.kind.as_str()) }
                td { (state_badge(tx.state)) " " @if tx.needs_review { span.review { "review" } } }
                td { (tx.product_code.as_deref().unwrap_or("")) }
                td { (tx.customer_id.as_deref().unwrap_or("")) }
                td.num { (money(tx.amount)) }
                td.muted { (when(tx.created_at)) }
            }
        }
        @if page_of.items.is_empty() { tr { td colspan="8" .muted { "No transactions match." } } }
    };
    if q.fragment.as_deref() == Some("rows") {
        return Html(rows.into_string()).into_response();
    }
    let mut providers: Vec<&String> = app.providers.keys().collect();
    providers.sort();
    let next = page_of.next_cursor.map(|c| {
        let mut params: Vec<(String, String)> = vec![("cursor".into(), c.to_string())];
        for (k, v) in [
            ("provider_id", &q.provider_id),
            ("state", &q.state),
            ("kind", &q.kind),
            ("needs_review", &q.needs_review),
            ("q", &q.q),
        ] {
            if let Some(v) = nonempty(v) {
                params.push((k.into(), v));
            }
        }
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        format!("/transactions?{}", query.join("&"))
    });
    let selected =
        |current: &Option<String>, value: &str| nonempty(current).as_deref() == Some(value);
    page(
        &s,
        "Transactions",
        "/transactions",
        html! {
            h1 { "Transactions" }
            (flash(&q.flash))
            form.filters method="get" action="/transactions" {
                input type="search" name="q" placeholder="ref or customer number" value=(q.q.clone().unwrap_or_default());
                select name="provider_id" {
                    option value="" { "all providers" }
                    @for p in &providers { option value=(p) selected[selected(&q.provider_id, p)] { (p) } }
                }
                select name="kind" {
                    option value="" { "all kinds" }
                    @for k in ["prepaid", "postpaid", "va"] { option value=(k) selected[selected(&q.kind, k)] { (k) } }
                }
                select name="state" {
                    option value="" { "all states" }
                    @for s in TxState::ALL { option value=(s.as_str()) selected[selected(&q.state, s.as_str())] { (s.as_str()) } }
                }
                label { input type="checkbox" name="needs_review" value="true" checked[q.needs_review.as_deref() == Some("true")]; " needs review" }
                button.primary type="submit" { "Filter" }
            }
            table {
                thead { tr { th { "Ref" } th { "Provider" } th { "Kind" } th { "State" } th { "Product" } th { "Customer" } th { "Amount" } th { "Created (UTC), newest first" } } }
                tbody id="rows" { (rows) }
            }
            @if let Some(href) = next { p { a href=(href) { "Older →" } } }
            p.muted { "Updates every 3 seconds." }
            script { (PreEscaped(LIVE_ROWS)) }
        },
    )
    .into_response()
}

/// Refreshes the rows in place (only on the first page: older pages do not change).
const LIVE_ROWS: &str = r#"
(function(){
  if (new URLSearchParams(location.search).has('cursor')) return;
  setInterval(async function(){
    var u = new URL(location.href); u.searchParams.set('fragment','rows');
    try { var r = await fetch(u, {credentials:'same-origin'}); if (r.ok) document.getElementById('rows').innerHTML = await r.text(); } catch (e) {}
  }, 3000);
})();
"#;

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    flash: Option<String>,
    /// Show the observations older than this one (a page of the timeline).
    before: Option<String>,
}

async fn transaction(
    s: Session,
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let tx = match app.store.transaction(&provider_id, &reference).await {
        Ok(Some(tx)) => tx,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                page(&s, "Not found", "", html! { h1 { "No such transaction" } }),
            )
                .into_response()
        }
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let before = q.before.as_deref().and_then(|b| b.parse::<i64>().ok());
    let timeline = match app
        .store
        .timeline(
            tx.id,
            lunas_store::TimelinePage {
                limit: super::api::TIMELINE_PAGE,
                before,
            },
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    // One list in time order: observations, events and delivery attempts.
    enum Entry<'a> {
        Observation(&'a Observation),
        Event(&'a lunas_core::Event),
        Attempt(&'a lunas_core::Delivery, &'a lunas_core::Attempt),
    }
    let mut entries: Vec<(OffsetDateTime, u8, Entry)> = Vec::new();
    for o in &timeline.observations {
        entries.push((o.received_at, 0, Entry::Observation(o)));
    }
    for e in &timeline.events {
        entries.push((e.created_at, 1, Entry::Event(e)));
    }
    for d in &timeline.deliveries {
        for a in &d.history {
            entries.push((a.at, 2, Entry::Attempt(d, a)));
        }
    }
    entries.sort_by_key(|e| (e.0, e.1));
    let action = |what: &str| format!("{}/{what}", tx_link(&tx));
    page(
        &s,
        &tx.reference,
        "/transactions",
        html! {
            h1 { (tx.provider_id) " / " (tx.reference) " " (state_badge(tx.state)) " " @if tx.needs_review { span.review { "needs review" } } }
            (flash(&q.flash))
            div.grid {
                div.card {
                    dl.kv {
                        dt { "Kind" } dd { (tx.kind.as_str()) }
                        dt { "Origin" } dd {
                            (match tx.extra.origin.as_deref() { Some("order") => "placed by lunas", Some("registration") => "registered by the merchant", _ => "a provider's message" })
                            @if let Some(order) = &tx.extra.order {
                                " · request " strong { (order.shown_submission().as_str().replace('_', " ")) }
                                @if let Some(bill) = &order.bill { " · bill " (money(Some(bill.price))) @if order.pay.is_none() { " (not paid)" } }
                            }
                        }
                        dt { "Product / channel" } dd { (tx.product_code.as_deref().unwrap_or("—")) }
                        dt { "Customer" } dd { (tx.customer_id.as_deref().unwrap_or("—")) }
                        dt { "Amount" } dd { (money(tx.amount)) }
                        @if tx.kind == TxKind::Va { dt { "Paid so far" } dd { (money(tx.total_paid)) } dt { "Order" } dd { (tx.order_id.as_deref().unwrap_or("—")) } }
                        dt { "Provider id" } dd { (tx.provider_transaction_id.as_deref().unwrap_or("—")) }
                        dt { "Response" } dd { (tx.response_code.as_deref().unwrap_or("—")) " " (tx.message.as_deref().unwrap_or("")) }
                        dt { "Serial number / token" } dd { (secret(&tx.serial_number)) }
                        dt { "PIN" } dd { (secret(&tx.pin)) }
                        dt { "Activation code" } dd { (secret(&tx.activation_code)) }
                        dt { "Balance after" } dd { (money(tx.balance_after)) }
                        @if let Some(claim) = &tx.unconfirmed { dt { "Unconfirmed claim" } dd { (claim.state) " (waiting for the provider to confirm)" } }
                        dt { "Next check" } dd { (tx.next_check_at.map(when).unwrap_or_else(|| "—".into())) " (" (tx.check_attempts) " made)" }
                        dt { "Created / updated" } dd { (when(tx.created_at)) " / " (when(tx.updated_at)) }
                    }
                }
                div.card {
                    form method="post" action=(action("check")) {
                        input type="hidden" name="csrf" value=(s.csrf);
                        button.primary type="submit" id="check" { "Ask the provider now" }
                    }
                    p {}
                    form method="post" action=(action("redeliver")) {
                        input type="hidden" name="csrf" value=(s.csrf);
                        button type="submit" id="redeliver-all" { "Deliver all its events again" }
                    }
                    @if tx.needs_review {
                        h2 { "Resolve the review" }
                        (resolve_form(&action("resolve"), &s.csrf, &tx))
                    }
                }
            }
            h2 { "Timeline" }
            @if before.is_some() {
                p { a href=(tx_link(&tx)) { "← The newest observations" } }
            }
            @if let Some(older) = timeline.older_observations {
                p.muted {
                    "Showing the " (timeline.observations.len()) " most recent observations of this page. "
                    a href=(format!("{}?before={older}", tx_link(&tx))) { "Older observations →" }
                }
            }
            table.timeline {
                thead { tr { th { "When (UTC)" } th { "What" } th { "Detail" } } }
                tbody {
                    @for (_, _, entry) in &entries {
                        @match entry {
                            Entry::Observation(o) => tr {
                                td { (when(o.received_at)) }
                                td { (o.source.as_str()) " · " strong class=(if o.verdict.is_rejection() || matches!(o.verdict, ObservationVerdict::CheckFailed | ObservationVerdict::NoAnswer) { "bad" } else { "" }) { (o.verdict.as_str()) } }
                                td {
                                    @if let Some(d) = &o.detail { div { (d) } }
                                    @if let Some(a) = &o.remote_addr { div.muted { "from " (a) } }
                                    @if o.repeats > 0 {
                                        div.muted { "the same message came " (o.repeats) " more time" @if o.repeats > 1 { "s" } @if let Some(t) = o.last_received_at { ", last at " (when(t)) } }
                                    }
                                    @if o.pruned_at.is_some() {
                                        div.muted { "raw body (" (o.body_size) " bytes) erased by retention; SHA-256 " code { (o.body_sha256.as_deref().unwrap_or("-")) } }
                                    } @else {
                                        details { summary { "raw body (" (o.body_size) " bytes" @if o.body.len() < o.body_size { ", truncated" } ")" } pre { (masked_body(&o.body)) } }
                                    }
                                }
                            },
                            Entry::Event(e) => tr {
                                td { (when(e.created_at)) }
                                td { "event · " strong { (e.event_type.as_str()) } }
                                td.muted { (e.id) }
                            },
                            Entry::Attempt(d, a) => tr {
                                td { (when(a.at)) }
                                td { "delivery · " (d.endpoint) }
                                td {
                                    (d.event_type) " → "
                                    @match a.status { Some(st) => strong class=(if (200..300).contains(&st) { "" } else { "bad" }) { "HTTP " (st) }, None => strong.bad { (a.error.as_deref().unwrap_or("no answer")) } }
                                    " in " (format!("{:.2}", a.latency_us as f64 / 1000.0)) " ms"
                                    @if let Some(r) = &a.response { details { summary { "answer" } pre { (r) } } }
                                }
                            },
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

fn back_to(tx_path: &str, message: &str) -> Response {
    Redirect::to(&format!("{tx_path}?flash={}", urlencode(message))).into_response()
}

async fn check(
    s: Session,
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&s, &form.csrf) {
        return refusal;
    }
    let path = tx_path(&provider_id, &reference);
    match app.reconciler.check_now(&provider_id, &reference).await {
        Ok(done) => {
            if !done.events.is_empty() {
                app.wake.notify_one();
            }
            back_to(
                &path,
                &format!("Asked the provider: {}.", done.verdict.as_str()),
            )
        }
        Err(e) => back_to(&path, &format!("Could not check: {e}")),
    }
}

#[derive(Deserialize)]
pub struct ResolveForm {
    csrf: String,
    state: Option<String>,
    note: Option<String>,
}

async fn resolve(
    s: Session,
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
    Form(form): Form<ResolveForm>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&s, &form.csrf) {
        return refusal;
    }
    let path = tx_path(&provider_id, &reference);
    match super::api::resolve_review(
        app.store.as_ref(),
        &provider_id,
        &reference,
        form.state.as_deref(),
        form.note.as_deref(),
        "dashboard",
    )
    .await
    {
        Ok(done) => {
            app.metrics.events(&done.events);
            app.wake.notify_one();
            let state = done.record.map_or("", |r| r.state.as_str());
            back_to(
                &path,
                &format!("Resolved: {state}; the review flag is cleared."),
            )
        }
        Err(e) => back_to(&path, &format!("Not resolved: {}", e.message)),
    }
}

/// The form that resolves a flagged transaction's review.
fn resolve_form(action: &str, csrf: &str, tx: &lunas_core::TxRecord) -> Markup {
    let finals: Vec<&str> = lunas_protocol::State::ALL
        .iter()
        .filter(|s| s.is_final() && s.applies_to(tx.kind))
        .map(|s| s.as_str())
        .collect();
    html! {
        form method="post" action=(action) class="resolve" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Final state "
                select name="state" {
                    @for s in &finals { option value=(s) selected[*s == tx.state.as_str()] { (s) } }
                }
            }
            " "
            label { "Why " input type="text" name="note" required size="40" placeholder="what you checked, and what you decided"; }
            " "
            button.primary type="submit" { "Resolve" }
        }
    }
}

async fn redeliver_transaction(
    s: Session,
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&s, &form.csrf) {
        return refusal;
    }
    let path = tx_path(&provider_id, &reference);
    let tx = match app.store.transaction(&provider_id, &reference).await {
        Ok(Some(tx)) => tx,
        _ => return back_to(&path, "No such transaction."),
    };
    match app
        .store
        .redeliver(
            Redeliver::Transaction(tx.id),
            &app.filters,
            OffsetDateTime::now_utc(),
        )
        .await
    {
        Ok(n) => {
            app.wake.notify_one();
            back_to(&path, &format!("{n} deliveries queued."))
        }
        Err(e) => back_to(&path, &format!("Could not queue: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Needs review

/// Cases per page of the review queue, and observations read per case.
const REVIEW_PAGE: usize = 20;
const REVIEW_OBSERVATIONS: usize = 20;

#[derive(Deserialize, Default)]
pub struct ReviewQuery {
    cursor: Option<String>,
}

async fn review(s: Session, State(app): State<AppState>, Query(q): Query<ReviewQuery>) -> Response {
    let (flagged, next) = match app
        .store
        .list_transactions(&TxQuery {
            needs_review: Some(true),
            limit: REVIEW_PAGE,
            cursor: nonempty(&q.cursor).and_then(|c| c.parse().ok()),
            ..TxQuery::default()
        })
        .await
    {
        Ok(p) => (p.items, p.next_cursor),
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let first_page = q.cursor.is_none();
    let mut cases = Vec::new();
    for tx in flagged {
        // The latest observations suffice to show what was kept and what contradicted it.
        let timeline = match app
            .store
            .timeline(
                tx.id,
                lunas_store::TimelinePage::newest(REVIEW_OBSERVATIONS),
            )
            .await
        {
            Ok(t) => t,
            Err(e) => return super::ApiError::from(e).into_response(),
        };
        // What set the outcome, and what contradicted it.
        let kept = timeline
            .observations
            .iter()
            .rfind(|o| {
                matches!(
                    o.verdict,
                    ObservationVerdict::Created | ObservationVerdict::Applied
                )
            })
            .cloned();
        let contradicting = timeline
            .observations
            .iter()
            .rfind(|o| {
                matches!(
                    o.verdict,
                    ObservationVerdict::Conflict
                        | ObservationVerdict::Unconfirmed
                        | ObservationVerdict::Mismatch
                )
            })
            .cloned();
        let why = timeline
            .events
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.event_type.as_str(),
                    "transaction.conflict"
                        | "transaction.unresolved"
                        | "transaction.mismatch"
                        | "transaction.failed"
                ) && (e.event_type.as_str() != "transaction.failed"
                    || e.data.get("inferred").is_some())
            })
            .map(|e| {
                let evidence = ["conflict", "mismatch", "inferred"]
                    .iter()
                    .find_map(|k| e.data.get(*k).cloned());
                (e.event_type.as_str(), evidence)
            });
        cases.push((tx, kept, contradicting, why));
    }
    let side = |title: &str, o: &Option<Observation>| {
        html! {
            div.card {
                h2 { (title) }
                @match o {
                    Some(o) => {
                        p { (o.source.as_str()) " · " strong { (o.verdict.as_str()) } " · " (when(o.received_at)) }
                        @if let Some(d) = &o.detail { p { (d) } }
                        pre { (masked_body(&o.body)) }
                    }
                    None => p.muted { "—" },
                }
            }
        }
    };
    page(
        &s,
        "Needs review",
        "/review",
        html! {
            h1 { "Needs review" }
            @if !first_page { p { a href="/review" { "← The newest cases" } } }
            @if cases.is_empty() { p.muted { "Nothing to review." } }
            @for (tx, kept, contradicting, why) in &cases {
                h2 { a href=(tx_link(tx)) { (tx.provider_id) " / " (tx.reference) } " " (state_badge(tx.state)) }
                @if let Some((kind, evidence)) = why {
                    p { strong { (kind) } @if let Some(ev) = evidence { " — " code { (mask_goods(ev).to_string()) } } }
                }
                @if !tx.extra.flags.is_empty() {
                    p.muted { "Flagged for: "
                        @for (i, f) in tx.extra.flags.iter().enumerate() {
                            @if i > 0 { ", " } (f.reason.replace('_', " ")) " (" (f.at) ")"
                        }
                    }
                }
                div.grid { (side("The outcome lunas kept", kept)) (side("What contradicted it", contradicting)) }
                (resolve_form(&format!("{}/resolve", tx_link(tx)), &s.csrf, tx))
            }
            @if let Some(cursor) = next {
                p { a href=(format!("/review?cursor={cursor}")) { "More cases →" } }
            }
        },
    )
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Deliveries

#[derive(Deserialize, Default)]
pub struct DeliveriesQuery {
    state: Option<String>,
    flash: Option<String>,
}

async fn deliveries(
    s: Session,
    State(app): State<AppState>,
    Query(q): Query<DeliveriesQuery>,
) -> Response {
    let state = nonempty(&q.state).and_then(|s| DeliveryState::parse(&s));
    let page_of = match app
        .store
        .list_deliveries(&DeliveryQuery {
            state,
            limit: 100,
            ..DeliveryQuery::default()
        })
        .await
    {
        Ok(p) => p,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let stats = app.store.endpoint_stats().await.unwrap_or_default();
    page(
        &s,
        "Deliveries",
        "/deliveries",
        html! {
            h1 { "Deliveries" }
            (flash(&q.flash))
            table {
                thead { tr { th { "Endpoint" } th { "URL" } th { "Pending" } th { "Held" } th { "Delivered" } th { "Dead" } th { "Last status" } th { "410 answers" } } }
                tbody {
                    @for e in app.endpoints.iter() {
                        @let st = stats.iter().find(|x| x.endpoint == e.id);
                        tr {
                            td { (e.id) @if !e.enabled { " " span.muted { "(paused: enabled = false)" } } }
                            td { (e.url.as_str()) }
                            td.num { (st.map_or(0, |x| x.pending)) }
                            td.num title="waiting behind a dead letter of their transaction" { (st.map_or(0, |x| crate::delivery::held(e, x))) }
                            td.num { (st.map_or(0, |x| x.delivered)) }
                            td.num { (st.map_or(0, |x| x.dead)) }
                            td { (st.and_then(|x| x.last_status).map(|x| x.to_string()).unwrap_or_else(|| "—".into())) }
                            td.num { (st.map_or(0, |x| x.gone)) }
                        }
                    }
                    @for x in stats.iter().filter(|x| x.pending > 0 && !app.endpoints.iter().any(|e| e.id == x.endpoint)) {
                        tr {
                            td { (x.endpoint) " " span.muted { "(no longer configured: nothing sends these)" } }
                            td { "—" } td.num { (x.pending) } td.num { "—" } td.num { (x.delivered) } td.num { (x.dead) } td { "—" } td.num { (x.gone) }
                        }
                    }
                    @if app.endpoints.is_empty() { tr { td colspan="8" .muted { "No [[endpoints]] are configured." } } }
                }
            }
            p {
                "Show: "
                a href="/deliveries" { "all" } " · " a href="/deliveries?state=dead" id="dead-letters" { "dead letters" } " · "
                a href="/deliveries?state=pending" { "pending" } " · " a href="/deliveries?state=delivered" { "delivered" }
            }
            @if state == Some(DeliveryState::Dead) && !page_of.items.is_empty() {
                form method="post" action="/deliveries/redeliver" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    input type="hidden" name="all_dead" value="1";
                    button.primary type="submit" id="redeliver-dead" { "Deliver all dead letters again" }
                }
            }
            table {
                thead { tr { th { "Event" } th { "Endpoint" } th { "State" } th { "Attempts" } th { "Last" } th { "" } } }
                tbody {
                    @for d in &page_of.items {
                        tr {
                            td { (d.event_type) br; span.muted { (d.event_id) } }
                            td { (d.endpoint) }
                            td { strong class=(if d.state == DeliveryState::Dead { "bad" } else { "" }) { (d.state.as_str()) } }
                            td.num { (d.history.len()) }
                            td {
                                @match d.last_status { Some(s) => { "HTTP " (s) }, None => { (d.last_error.as_deref().unwrap_or("—")) } }
                            }
                            td {
                                form method="post" action="/deliveries/redeliver" {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    input type="hidden" name="event_id" value=(d.event_id);
                                    button type="submit" class="redeliver" { "Redeliver" }
                                }
                            }
                        }
                    }
                    @if page_of.items.is_empty() { tr { td colspan="6" .muted { "None." } } }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct RedeliverForm {
    csrf: String,
    event_id: Option<String>,
    all_dead: Option<String>,
}

async fn redeliver(
    s: Session,
    State(app): State<AppState>,
    Form(form): Form<RedeliverForm>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&s, &form.csrf) {
        return refusal;
    }
    let what = match (form.event_id, form.all_dead) {
        (Some(id), _) => Redeliver::Event(id),
        (None, Some(_)) => Redeliver::Dead {
            since: None,
            until: None,
            endpoint: None,
        },
        (None, None) => return Redirect::to("/deliveries").into_response(),
    };
    let message = match app
        .store
        .redeliver(what, &app.filters, OffsetDateTime::now_utc())
        .await
    {
        Ok(n) => {
            app.wake.notify_one();
            format!("{n} deliveries queued; they go out within seconds.")
        }
        Err(e) => format!("Could not queue: {e}"),
    };
    Redirect::to(&format!("/deliveries?flash={}", urlencode(&message))).into_response()
}

// ---------------------------------------------------------------------------------------------
// Providers

async fn providers(s: Session, State(app): State<AppState>) -> Response {
    let health = app.store.provider_health().await.unwrap_or_default();
    let mut ids: Vec<&String> = app.providers.keys().collect();
    ids.sort();
    let since = OffsetDateTime::now_utc() - time::Duration::days(7);
    let mut charts = Vec::new();
    for id in &ids {
        let samples = app
            .store
            .balance_history(id, since, 2000)
            .await
            .unwrap_or_default();
        if app.providers[*id].provider.reports_balance() {
            charts.push(((*id).clone(), samples, app.providers[*id].low_balance));
        }
    }
    page(
        &s,
        "Providers",
        "/providers",
        html! {
            h1 { "Providers" }
            table {
                thead { tr { th { "Account" } th { "Kind" } th { "Environment" } th { "Callbacks" } th { "Rejected" } th { "Signature failures" } th { "Last callback (UTC)" } th { "Last balance" } } }
                tbody {
                    @for id in &ids {
                        @let p = &app.providers[*id];
                        @let h = health.iter().find(|h| &&h.provider_id == id);
                        tr {
                            td { (id) } td { (p.kind) } td { (p.environment.as_str()) }
                            td.num { (h.map_or(0, |h| h.callbacks)) }
                            td.num { (h.map_or(0, |h| h.rejected)) }
                            td.num { strong class=(if h.is_some_and(|h| h.bad_signatures > 0) { "bad" } else { "" }) { (h.map_or(0, |h| h.bad_signatures)) } }
                            td { (h.and_then(|h| h.last_callback_at).map(when).unwrap_or_else(|| "—".into())) }
                            td.num { (money(h.and_then(|h| h.last_balance))) }
                        }
                    }
                }
            }
            @for (id, samples, threshold) in &charts {
                h2 { "Deposit balance: " (id) @if let Some(t) = threshold { span.muted { " (alert below Rp " (group_thousands(*t)) ")" } } }
                (balance_chart(samples, *threshold))
            }
        },
    )
    .into_response()
}

/// The balance over time as an inline SVG polyline, with the alert threshold dashed.
fn balance_chart(samples: &[lunas_store::BalanceSample], threshold: Option<i64>) -> Markup {
    const W: i64 = 900;
    const H: i64 = 180;
    const PAD: i64 = 10;
    if samples.len() < 2 {
        return html! { p.muted { "Not enough reported balances yet (" (samples.len()) ")." } };
    }
    let t0 = samples[0].at.unix_timestamp();
    let t1 = samples[samples.len() - 1].at.unix_timestamp().max(t0 + 1);
    let mut lo = samples.iter().map(|s| s.balance).min().unwrap_or(0);
    let mut hi = samples.iter().map(|s| s.balance).max().unwrap_or(0);
    if let Some(t) = threshold {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    let hi = hi.max(lo + 1);
    // Integer arithmetic throughout: positions in whole pixels, money never as a float.
    let x = |t: i64| PAD + (t - t0) as i128 as i64 * (W - 2 * PAD) / (t1 - t0);
    let y = |b: i64| PAD + ((hi - b) as i128 * (H - 2 * PAD) as i128 / (hi - lo) as i128) as i64;
    let points: Vec<String> = samples
        .iter()
        .map(|s| format!("{},{}", x(s.at.unix_timestamp()), y(s.balance)))
        .collect();
    html! {
        svg width=(W) height=(H) viewBox=(format!("0 0 {W} {H}")) role="img" aria-label="deposit balance over time" {
            @if let Some(t) = threshold {
                line x1=(PAD) x2=(W - PAD) y1=(y(t)) y2=(y(t)) stroke="#e03131" stroke-dasharray="6 4" {}
            }
            polyline fill="none" stroke="#1c7ed6" stroke-width="2" points=(points.join(" ")) {}
            text x=(PAD) y="14" font-size="11" fill="#52606d" { "Rp " (group_thousands(hi)) }
            text x=(PAD) y=(H - 2) font-size="11" fill="#52606d" { "Rp " (group_thousands(lo)) }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn goods_are_masked_in_json_cut_short_too() {
        let cut = br#"{"data":{"ref_id":"a","pin" : "1234-5678","sn":"5531-8812-00"#;
        let shown = super::masked_body(cut);
        assert!(
            !shown.contains("1234-5678") && !shown.contains("5531-8812"),
            "{shown}"
        );
        assert!(shown.contains("\"ref_id\":\"a\""), "{shown}");
        let escaped = br#"{"data":{"pin":"12\"34","x":1"#;
        assert!(
            !super::masked_body(escaped).contains("34"),
            "{}",
            super::masked_body(escaped)
        );
    }

    use super::*;

    #[test]
    fn rupiah_are_grouped_with_dots() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1.000");
        assert_eq!(group_thousands(99_995_833_900), "99.995.833.900");
        assert_eq!(group_thousands(-25000), "-25.000");
    }

    #[test]
    fn refs_are_escaped_in_links() {
        assert_eq!(urlencode("a/b c"), "a%2Fb%20c");
    }
}
