//! Dashboard sessions are real: a random id per login (never derived from the admin token),
//! kept server-side with an expiry, ended everywhere by logging out; CSRF tokens keyed per
//! session; login attempts limited per client address (behind a trusted proxy: the forwarded
//! one) and counted; `Secure` cookies when asked for.

mod common;

use common::*;
use sha2::Digest;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with `token`; the `Set-Cookie` header and where it was sent.
async fn login(gw: &TestGateway, token: &str, forwarded: Option<&str>) -> (Option<String>, String) {
    let mut req = no_redirects()
        .post(gw.url("/login"))
        .form(&[("token", token)]);
    if let Some(addr) = forwarded {
        req = req.header("x-forwarded-for", addr);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let cookie = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    (cookie, location)
}

/// The `name=value` part of a `Set-Cookie`.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn page(gw: &TestGateway, cookie: &str, path: &str) -> (u16, String, String) {
    let res = no_redirects()
        .get(gw.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, res.text().await.unwrap())
}

fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..at + 64].to_owned()
}

#[tokio::test]
async fn each_login_is_its_own_random_session_and_logging_out_ends_it_everywhere() {
    let gw = TestGateway::start_http_only("").await;
    let (a, to) = login(&gw, TOKEN, None).await;
    assert_eq!(to, "/transactions");
    let a = a.expect("a session cookie");
    assert!(
        a.contains("HttpOnly") && a.contains("SameSite=Strict") && a.contains("Max-Age=43200"),
        "{a}"
    );
    assert!(!a.contains("Secure"), "plain HTTP by default: {a}");
    let (b, _) = login(&gw, TOKEN, None).await;
    let (a, b) = (pair(&a), pair(&b.unwrap()));
    assert_ne!(a, b, "two logins, two sessions");

    // The value says nothing about the admin token: the old digest of it opens nothing.
    let old = format!(
        "lunas_session={}",
        hex::encode(sha2::Sha256::digest(
            format!("lunas-dashboard-session:{TOKEN}").as_bytes()
        ))
    );
    let (status, location, _) = page(&gw, &old, "/transactions").await;
    assert_eq!((status, location.as_str()), (303, "/login?expired=1"));

    // Both sessions work; their CSRF tokens differ and do not cross over.
    let (status, _, page_a) = page(&gw, &a, "/deliveries").await;
    assert_eq!(status, 200);
    let (_, _, page_b) = page(&gw, &b, "/deliveries").await;
    let (csrf_a, csrf_b) = (csrf_in(&page_a), csrf_in(&page_b));
    assert_ne!(csrf_a, csrf_b);
    assert!(!page_a.contains(TOKEN));
    let redeliver = |cookie: &str, csrf: &str| {
        no_redirects()
            .post(gw.url("/deliveries/redeliver"))
            .header("cookie", cookie.to_owned())
            .form(&[("csrf", csrf.to_owned())])
            .send()
    };
    assert_eq!(redeliver(&a, &csrf_b).await.unwrap().status().as_u16(), 403);
    assert_eq!(redeliver(&a, &csrf_a).await.unwrap().status().as_u16(), 303);

    // Logging out needs the session's form token too (no cross-site logout)...
    let logout = |csrf: &str| {
        no_redirects()
            .post(gw.url("/logout"))
            .header("cookie", a.clone())
            .form(&[("csrf", csrf.to_owned())])
            .send()
    };
    assert_eq!(logout(&csrf_b).await.unwrap().status().as_u16(), 403);
    // ...and ends A (a copy of its cookie opens nothing), and only A.
    let out = logout(&csrf_a).await.unwrap();
    assert_eq!(out.status().as_u16(), 303);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, location, _) = page(&gw, &a, "/transactions").await;
    assert_eq!((status, location.as_str()), (303, "/login?expired=1"));
    let (status, _, _) = page(&gw, &b, "/transactions").await;
    assert_eq!(status, 200);

    // Sessions live in the store: a restarted gateway still knows B.
    let gw = gw.restart().await;
    let (status, _, _) = page(&gw, &b, "/transactions").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn login_attempts_are_limited_per_client_address_and_counted() {
    // Behind a trusted proxy (here: the loopback) the client is the forwarded address.
    let gw = TestGateway::start_with_env(
        "",
        &[
            ("LUNAS__SERVER__TRUSTED_PROXIES", "127.0.0.1"),
            ("LUNAS__SERVER__SECURE_COOKIES", "true"),
        ],
    )
    .await;
    for _ in 0..10 {
        let (cookie, to) = login(&gw, "wrong-token-0123456789", Some("198.51.100.7")).await;
        assert_eq!((cookie, to.as_str()), (None, "/login?failed=1"));
    }
    // The eleventh attempt from that address is refused, even with the right token.
    let (cookie, to) = login(&gw, TOKEN, Some("198.51.100.7")).await;
    assert_eq!((cookie, to.as_str()), (None, "/login?wait=1"));
    let res = reqwest::get(gw.url("/login?wait=1")).await.unwrap();
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Too many login attempts"));
    // Another address logs in; behind HTTPS its cookie is Secure.
    let (cookie, to) = login(&gw, TOKEN, Some("198.51.100.8")).await;
    assert_eq!(to, "/transactions");
    assert!(cookie.unwrap().contains("; Secure"));

    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lunas_auth_failures_total{type=\"login_failed\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lunas_auth_failures_total{type=\"login_rate_limited\"} 1"),
        "{metrics}"
    );
}
