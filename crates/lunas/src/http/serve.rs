//! Connections: how the router is served so that no client can hold the gateway.
//!
//! - A connection is admitted only under `max_connections` overall and
//!   `max_connections_per_address` from one source address (trusted proxies excepted); others
//!   are closed at once, before a byte is read.
//! - HTTP/1 and HTTP/2 alike: a connection with no request in flight for `read_timeout` is
//!   closed (for HTTP/1 that also bounds how long a request's head may take; for HTTP/2 it
//!   covers a client that sends the preface and falls silent). A connection that does not
//!   finish within `read_timeout` after being told to close is dropped.
//! - Request bodies are bounded in size and time on every route (see [`bounded_body`]).
//! - Behind trusted reverse proxies, the client address comes from `X-Forwarded-For` or
//!   `Forwarded` (see [`client_address`]); it is what handlers see as `ConnectInfo`.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, TryAcquireError};

use super::ApiError;

/// What bounds the connections of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    pub read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub trusted_proxies: Arc<Vec<IpNet>>,
}

impl Limits {
    /// The limits a configuration sets.
    pub fn from_config(server: &crate::config::ServerConfig) -> Self {
        Limits {
            read_timeout: server.read_timeout,
            max_connections: server.max_connections,
            max_connections_per_address: server.max_connections_per_address,
            trusted_proxies: Arc::new(server.trusted_proxies.clone()),
        }
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// How many client connections fit in `descriptors` file descriptors, at most `wanted`: a
/// quarter (at most 256) is kept for the database, the listener and outgoing requests.
fn fitting_connections(descriptors: u64, wanted: usize) -> usize {
    let reserve = (descriptors / 4).min(256);
    let fitting = usize::try_from(descriptors.saturating_sub(reserve)).unwrap_or(usize::MAX);
    wanted.min(fitting.max(16))
}

/// Open connections per source address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

impl PerAddress {
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressGuard> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressGuard {
            table: Arc::clone(self),
            ip,
        })
    }
}

struct AddressGuard {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        let mut map = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish (30 s at most).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut limits = limits;
    // Raise the descriptor limit as far as allowed; if the connections could still use up
    // the descriptors the database and outgoing requests need, admit fewer.
    if let Ok(descriptors) = rlimit::increase_nofile_limit(u64::MAX) {
        let fitting = fitting_connections(descriptors, limits.max_connections);
        if fitting < limits.max_connections {
            tracing::warn!(
                descriptors,
                configured = limits.max_connections,
                admitted = fitting,
                "server.max_connections is more than this process's file descriptors allow; \
                 admitting fewer (raise LimitNOFILE / ulimit -n to admit more)"
            );
            limits.max_connections = fitting;
            limits.max_connections_per_address = limits.max_connections_per_address.min(fitting);
        }
    }
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut refused_logged = std::time::Instant::now() - Duration::from_secs(60);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                if refused_logged.elapsed() >= Duration::from_secs(10) {
                    refused_logged = std::time::Instant::now();
                    tracing::warn!(
                        limit = limits.max_connections,
                        "connection refused: server.max_connections are open"
                    );
                }
                continue;
            }
        };
        let guard = if limits.trusted(peer.ip()) {
            None
        } else {
            match per_address.enter(peer.ip(), limits.max_connections_per_address) {
                Some(guard) => Some(guard),
                None => {
                    if refused_logged.elapsed() >= Duration::from_secs(10) {
                        refused_logged = std::time::Instant::now();
                        tracing::warn!(
                            remote = %peer.ip(),
                            limit = limits.max_connections_per_address,
                            "connection refused: server.max_connections_per_address are open from this address"
                        );
                    }
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let limits = limits.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _guard = guard;
            connection(stream, peer, router, &limits, &mut stop).await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: having them all back means all ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(30), slots.acquire_many(all)).await;
    Ok(())
}

/// Serves one connection until it ends, falls idle, or the server stops.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    limits: &Limits,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::Service as _;

    // A client that connects and says nothing is let go: the protocol detection below would
    // otherwise wait for its first byte forever.
    let mut first = [0u8; 1];
    if !matches!(
        tokio::time::timeout(limits.read_timeout, stream.peek(&mut first)).await,
        Ok(Ok(1))
    ) {
        return;
    }
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = Arc::clone(&activity);
        let limits = limits.clone();
        hyper::service::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            let client = client_address(peer, req.headers(), &limits.trusted_proxies);
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(client));
            let mut router = router.clone();
            let busy = activity.begin();
            async move {
                let answer = router.call(req.map(axum::body::Body::new)).await;
                drop(busy);
                answer
            }
        })
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .max_header_list_size(32 * 1024)
        .keep_alive_interval(Some(limits.read_timeout))
        .keep_alive_timeout(limits.read_timeout.min(Duration::from_secs(20)));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let idle = limits.read_timeout;
    // When the connection was told to close, and whether it was for being idle.
    let mut closing: Option<(tokio::time::Instant, bool)> = None;
    loop {
        let wake = match closing {
            Some((deadline, _)) => deadline,
            None => activity.idle_deadline(idle),
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some((tokio::time::Instant::now() + Duration::from_secs(30), false));
            }
            _ = tokio::time::sleep_until(wake) => match closing {
                // Told to close for being idle: a request that raced the GOAWAY gets its time;
                // otherwise the connection ends now. An HTTP/2 client that reads nothing would
                // keep it open until a keep-alive ping went unanswered.
                Some((_, true)) if activity.in_flight() > 0 => {
                    closing = Some((tokio::time::Instant::now() + idle, false));
                }
                // Told to close and still open: the client is not reading.
                Some(_) => return,
                None if activity.is_idle(idle) => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some((tokio::time::Instant::now() + IDLE_GRACE.min(idle), true));
                }
                None => {}
            },
        }
    }
}

/// How long a connection told to close for being idle has to go (time for the GOAWAY to be
/// written; an HTTP/1 connection with nothing in flight closes at once).
const IDLE_GRACE: Duration = Duration::from_millis(250);

/// Requests in flight on a connection, and when the last one began or ended.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<tokio::time::Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(tokio::time::Instant::now()),
        }
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Busy(Arc::clone(self))
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    fn idle_deadline(&self, idle: Duration) -> tokio::time::Instant {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) + idle
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && tokio::time::Instant::now() >= self.idle_deadline(idle)
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
/// address in `X-Forwarded-For` (or else `Forwarded: for=`) that is not itself a trusted
/// proxy. Addresses a client wrote before the first trusted proxy are not believed.
pub fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> SocketAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if trusted.is_empty() || !is_trusted(&peer.ip()) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| parse_hop(hop.trim()))
        .collect();
    if hops.is_empty() {
        hops = headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.eq_ignore_ascii_case("for")
                        .then(|| parse_hop(v.trim().trim_matches('"')))
                        .flatten()
                })
            })
            .collect();
    }
    for hop in hops.iter().rev() {
        if !is_trusted(hop) {
            return SocketAddr::new(*hop, 0);
        }
    }
    peer
}

/// One hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// The bounds of request bodies outside `/callbacks` (which reads its own body, so that a
/// refusal there is counted per provider): at most `limit` bytes, all within `read_timeout`;
/// else 413 or 408 and the handler never runs.
#[derive(Clone, Copy)]
pub struct BodyBounds {
    pub limit: usize,
    pub read_timeout: Duration,
}

/// Reads a request's body within its bounds before any handler sees it.
pub async fn bounded_body(
    State(bounds): State<BodyBounds>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path().starts_with("/callbacks/")
        || (matches!(*req.method(), Method::GET | Method::HEAD)
            && !req.headers().contains_key(header::CONTENT_LENGTH)
            && !req.headers().contains_key(header::TRANSFER_ENCODING))
    {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > bounds.limit) {
        return too_large(bounds.limit);
    }
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(
        bounds.read_timeout,
        Limited::new(body, bounds.limit).collect(),
    )
    .await;
    let bytes = match collected {
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the body did not arrive within {} ms",
                    bounds.read_timeout.as_millis()
                ),
            )
            .into_response()
        }
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(bounds.limit)
        }
        Ok(Err(e)) => {
            return ApiError::bad_request(
                "unreadable_body",
                format!("the request body could not be read: {e}"),
            )
            .into_response()
        }
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

pub fn too_large(limit: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body exceeds the limit of {limit} bytes"),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn connections_leave_descriptors_for_the_database_and_outgoing_requests() {
        assert_eq!(fitting_connections(256, 2048), 192);
        assert_eq!(fitting_connections(1024, 2048), 768);
        assert_eq!(fitting_connections(65536, 2048), 2048);
        assert_eq!(fitting_connections(20, 2048), 16);
    }

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let proxy: SocketAddr = "10.0.0.5:40000".parse().unwrap();
        let outsider: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let xff = headers(&[("x-forwarded-for", "1.1.1.1, 52.220.38.194, 10.0.0.7")]);
        // The nearest address before the trusted hops; what the client wrote first is ignored.
        assert_eq!(
            client_address(proxy, &xff, &trusted).ip().to_string(),
            "52.220.38.194"
        );
        // An untrusted peer's headers are not believed.
        assert_eq!(client_address(outsider, &xff, &trusted), outsider);
        // Without trusted proxies nothing changes.
        assert_eq!(client_address(proxy, &xff, &[]), proxy);
        let fwd = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
        )]);
        assert_eq!(
            client_address(proxy, &fwd, &trusted).ip().to_string(),
            "2001:db8::1"
        );
        // Only trusted hops: the proxy itself.
        let inner = headers(&[("x-forwarded-for", "10.1.1.1")]);
        assert_eq!(client_address(proxy, &inner, &trusted), proxy);
        let garbage = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(client_address(proxy, &garbage, &trusted), proxy);
    }
}
