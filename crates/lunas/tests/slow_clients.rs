//! Slow and silent clients cannot hold connections: a request head must arrive within
//! `server.read_timeout_ms` (also the longest a kept-alive connection may stay silent), and a
//! callback body within the same time, else 408. Meanwhile other clients are served.

mod common;

use std::time::Duration;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::{ApiVersion, Format};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(10);

async fn gateway() -> TestGateway {
    TestGateway::start_with_env("", &[("LUNAS__SERVER__READ_TIMEOUT_MS", "300")]).await
}

/// Reads until the server closes the connection (bounded); returns what it said.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let gw = gateway().await;
    let mut silent = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    assert_eq!(until_closed(&mut silent).await, "", "closed without a word");
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off_while_others_are_served() {
    let gw = gateway().await;
    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"POST /callbacks/iak HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Another client is served while the slow one dawdles.
    let (status, _) = gw
        .callback(
            "iak",
            iak_body(
                "while-slow",
                PrepaidStatus::Success,
                Format::Json,
                ApiVersion::V2,
            ),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let said = until_closed(&mut slow).await;
    assert!(!said.contains("200 OK"), "{said}");
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408_and_changes_nothing() {
    let gw = gateway().await;
    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(
        b"POST /callbacks/iak HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"data\":",
    )
    .await
    .unwrap();
    let said = until_closed(&mut slow).await;
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(said.contains("request_timeout"), "{said}");
    assert!(gw.events().await.is_empty());
}

#[tokio::test]
async fn a_kept_alive_connection_that_goes_silent_is_closed() {
    let gw = gateway().await;
    let mut idle = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let said = until_closed(&mut idle).await;
    assert!(said.starts_with("HTTP/1.1 200"), "answered first: {said}");
}

#[tokio::test]
async fn an_http2_connection_that_goes_silent_after_its_preface_is_closed() {
    let gw = gateway().await;
    let mut silent = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    // The HTTP/2 prior-knowledge preface and an empty SETTINGS frame, then nothing.
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // The server's SETTINGS, maybe a GOAWAY; then the connection ends.
    until_closed(&mut silent).await;
}

/// The idle limit holds for HTTP/2 as for HTTP/1: a silent HTTP/2 client is let go about
/// `read_timeout` after its last request, not when a keep-alive ping finally goes unanswered
/// (which took another `read_timeout` or more).
#[tokio::test]
async fn a_silent_http2_connection_ends_at_the_idle_limit() {
    let read_timeout = Duration::from_secs(4);
    let gw = TestGateway::start_with_env(
        "",
        &[(
            "LUNAS__SERVER__READ_TIMEOUT_MS",
            &read_timeout.as_millis().to_string(),
        )],
    )
    .await;
    let started = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    until_closed(&mut silent).await;
    let lived = started.elapsed();
    assert!(lived >= read_timeout, "not before the limit: {lived:?}");
    assert!(
        lived < read_timeout + read_timeout / 2,
        "closed {lived:?} after connecting; the limit is {read_timeout:?}"
    );
}

#[tokio::test]
async fn a_trickled_body_on_an_api_or_login_route_is_answered_408() {
    let gw = gateway().await;
    for head in [
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\ntoken=",
        "POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{",
    ] {
        let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        slow.write_all(head.as_bytes()).await.unwrap();
        let said = until_closed(&mut slow).await;
        assert!(said.starts_with("HTTP/1.1 408"), "{head}: {said}");
    }
    // A body above the limit is refused before it is read, on every route.
    let res = gw
        .client
        .post(gw.url("/login"))
        .form(&[("token", "x".repeat(70_000))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let gw = TestGateway::start_with_env(
        "",
        &[
            ("LUNAS__SERVER__READ_TIMEOUT_MS", "30000"),
            ("LUNAS__SERVER__MAX_CONNECTIONS_PER_ADDRESS", "4"),
        ],
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(gw.addr).await.unwrap());
    }
    // Give the server a moment to admit them (they are silent, so it waits for them).
    let client_from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(Some(ip.parse().unwrap()))
            .build()
            .unwrap()
    };
    // A fifth connection from the same address is closed at once, well within the 30 s a
    // silent admitted one would be given...
    let mut fifth = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), fifth.read_to_end(&mut buf))
        .await
        .expect("the fifth connection is closed")
        .ok();
    // ...while another address is served.
    let res = client_from("127.0.0.2")
        .get(gw.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    drop(held);
}
