//! The admin API as the merchant uses it: bearer auth, listing with every filter and cursor
//! pagination, transaction detail with its timeline, registering transactions, the event feed,
//! provider health, health checks, and an OpenAPI document that matches the routes.

mod common;

use std::collections::BTreeSet;

use common::*;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{PaymentSystem, TransactionStatus};
use lunas_protocol::{ApiVersion, Format};
use reqwest::Method;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn time_of(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("a time string"), &Rfc3339)
        .unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}"))
}

async fn iak(gw: &TestGateway, reference: &str, status: PrepaidStatus) {
    let (code, body) = gw
        .callback(
            "iak",
            iak_body(reference, status, Format::Json, ApiVersion::V2),
            &[],
        )
        .await;
    assert_eq!(code, 200, "{body}");
}

/// The refs a list query returns (one page of up to 500).
async fn refs(gw: &TestGateway, query: &[(&str, &str)]) -> BTreeSet<String> {
    let mut q = query.to_vec();
    q.push(("limit", "500"));
    let (status, body) = gw.get_query("/api/v1/transactions", &q).await;
    assert_eq!(status, 200, "{query:?}: {body}");
    assert!(body["next_cursor"].is_null(), "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ref"].as_str().unwrap().to_owned())
        .collect()
}

/// A list query and the refs it must return.
type FilterCase = (Vec<(&'static str, &'static str)>, Vec<&'static str>);

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Nine transactions of every provider, kind and state, one flagged for review.
async fn populated() -> TestGateway {
    let gw = TestGateway::start().await;
    iak(&gw, "a-ok", PrepaidStatus::Success).await;
    iak(&gw, "a-fail", PrepaidStatus::Failed).await;
    iak(&gw, "a-pend", PrepaidStatus::Process).await;
    iak(&gw, "a-conf", PrepaidStatus::Success).await;
    iak(&gw, "a-conf", PrepaidStatus::Failed).await;
    let mut d = prepaid_callback("d-ok", PrepaidStatus::Success, IDSL_USER, IDSL_KEY);
    d.customer_id = "0899000111".into();
    let (code, _) = gw
        .callback("idsl", d.encode(Format::Xml, ApiVersion::V1), &[])
        .await;
    assert_eq!(code, 200);
    let paid = va_callback(
        "m-paid",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        20000,
        &[("MP1", 20000)],
        false,
    );
    assert_eq!(gw.mcp(&paid).await.0, 200);
    let part = va_callback(
        "m-part",
        TransactionStatus::Paid,
        PaymentSystem::Partial,
        20000,
        &[("MQ1", 5000)],
        false,
    );
    assert_eq!(gw.mcp(&part).await.0, 200);
    let (code, body) = gw
        .post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "iak", "ref": "r-post", "kind": "postpaid", "customer_id": "5300001"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    gw
}

#[tokio::test]
async fn every_admin_route_requires_the_bearer_token() {
    let gw = TestGateway::start().await;
    iak(&gw, "auth-1", PrepaidStatus::Success).await;
    let register = json!({"provider_id": "iak", "ref": "auth-2", "kind": "prepaid"});
    let routes: [(Method, &str, Option<&Value>, u16); 5] = [
        (Method::GET, "/api/v1/transactions", None, 200),
        (Method::POST, "/api/v1/transactions", Some(&register), 201),
        (Method::GET, "/api/v1/transactions/iak/auth-1", None, 200),
        (Method::GET, "/api/v1/events", None, 200),
        (Method::GET, "/api/v1/providers", None, 200),
    ];
    let right = format!("Bearer {TOKEN}");
    for (method, path, body, ok) in routes {
        for auth in [
            None,
            Some("Bearer wrong-token-0123456789abcdef".to_owned()),
            Some(format!("Bearer {TOKEN}x")),
            Some(format!("Basic {TOKEN}")),
            Some(TOKEN.to_owned()),
            Some("Bearer ".to_owned()),
        ] {
            let (status, headers, v) = gw
                .request_as(method.clone(), path, auth.as_deref(), body)
                .await;
            assert_error((status, &v.to_string()), 401, "unauthorized");
            assert_eq!(headers["www-authenticate"], "Bearer", "{method} {path}");
        }
        let (status, _, v) = gw
            .request_as(method.clone(), path, Some(&right), body)
            .await;
        assert_eq!(status, ok, "{method} {path}: {v}");
    }
    // A refused registration registered nothing.
    assert_eq!(
        gw.verdicts("iak", "auth-1").await,
        ["created"],
        "refused requests left no trace"
    );
    // The document and the health checks are public.
    for path in ["/api/v1/openapi.json", "/healthz", "/readyz"] {
        let (status, _, v) = gw.request_as(Method::GET, path, None, None).await;
        assert_eq!(status, 200, "{path}: {v}");
    }
}

#[tokio::test]

async fn the_bearer_scheme_is_case_insensitive() {
    // RFC 9110 §11.1: the authentication scheme is a case-insensitive token.
    let gw = TestGateway::start().await;
    for scheme in ["bearer", "BEARER"] {
        let (status, _, v) = gw
            .request_as(
                Method::GET,
                "/api/v1/transactions",
                Some(&format!("{scheme} {TOKEN}")),
                None,
            )
            .await;
        assert_eq!(status, 200, "{scheme}: {v}");
    }
}

#[tokio::test]
async fn the_list_filters_by_provider_state_kind_review_and_search() {
    let gw = populated().await;
    let all = set(&[
        "a-ok", "a-fail", "a-pend", "a-conf", "d-ok", "m-paid", "m-part", "r-post",
    ]);
    assert_eq!(refs(&gw, &[]).await, all);
    let cases: Vec<FilterCase> = vec![
        (vec![("provider_id", "idsl")], vec!["d-ok"]),
        (vec![("provider_id", "mcp")], vec!["m-paid", "m-part"]),
        (
            vec![("provider_id", "iak")],
            vec!["a-ok", "a-fail", "a-pend", "a-conf", "r-post"],
        ),
        (vec![("provider_id", "nosuch")], vec![]),
        (vec![("state", "failed")], vec!["a-fail"]),
        (vec![("state", "pending")], vec!["a-pend", "r-post"]),
        (vec![("state", "succeeded")], vec!["a-ok", "a-conf", "d-ok"]),
        (vec![("state", "partially_paid")], vec!["m-part"]),
        (vec![("state", "paid")], vec!["m-paid"]),
        (vec![("state", "expired")], vec![]),
        (vec![("kind", "va")], vec!["m-paid", "m-part"]),
        (vec![("kind", "postpaid")], vec!["r-post"]),
        (
            vec![("kind", "prepaid")],
            vec!["a-ok", "a-fail", "a-pend", "a-conf", "d-ok"],
        ),
        (vec![("needs_review", "true")], vec!["a-conf"]),
        (vec![("q", "a-fail")], vec!["a-fail"]),
        (vec![("q", "0899000111")], vec!["d-ok"]),
        (vec![("q", "5300001")], vec!["r-post"]),
        (
            vec![("q", "0817777215")],
            vec!["a-ok", "a-fail", "a-pend", "a-conf"],
        ),
        // A part of the ref finds it too.
        (
            vec![("q", "a-")],
            vec!["a-ok", "a-fail", "a-pend", "a-conf"],
        ),
        (vec![("q", "-fai")], vec!["a-fail"]),
        (vec![("q", "zzz")], vec![]),
        (
            vec![("provider_id", "iak"), ("state", "succeeded")],
            vec!["a-ok", "a-conf"],
        ),
        (
            vec![
                ("kind", "prepaid"),
                ("needs_review", "false"),
                ("state", "succeeded"),
            ],
            vec!["a-ok", "d-ok"],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(refs(&gw, &query).await, set(&want), "{query:?}");
    }
    let not_review = refs(&gw, &[("needs_review", "false")]).await;
    assert_eq!(not_review.len(), all.len() - 1);
    assert!(!not_review.contains("a-conf"));
}

#[tokio::test]
async fn since_and_until_split_the_list_at_a_creation_time() {
    let gw = populated().await;
    let (_, body) = gw.get("/api/v1/transactions?limit=500").await;
    let items = body["items"].as_array().unwrap().clone();
    let all: BTreeSet<String> = items
        .iter()
        .map(|t| t["ref"].as_str().unwrap().to_owned())
        .collect();
    for pivot in &items {
        let at = pivot["created_at"].as_str().unwrap();
        let t = time_of(&pivot["created_at"]);
        let since = refs(&gw, &[("since", at)]).await;
        let until = refs(&gw, &[("until", at)]).await;
        // "since" is inclusive, "until" exclusive: together they are everything, once.
        assert!(since.contains(pivot["ref"].as_str().unwrap()));
        assert!(since.is_disjoint(&until), "{at}");
        assert_eq!(
            since.union(&until).cloned().collect::<BTreeSet<_>>(),
            all,
            "{at}"
        );
        for item in &items {
            let r = item["ref"].as_str().unwrap();
            assert_eq!(
                since.contains(r),
                time_of(&item["created_at"]) >= t,
                "{r} since {at}"
            );
        }
    }
    // A window in the future or the past is empty; offsets other than Z are understood.
    assert!(refs(&gw, &[("since", "2999-01-01T00:00:00Z")])
        .await
        .is_empty());
    assert!(refs(&gw, &[("until", "2000-01-01T00:00:00+07:00")])
        .await
        .is_empty());
    assert_eq!(
        refs(
            &gw,
            &[
                ("since", "2000-01-01T07:00:00+07:00"),
                ("until", "2999-01-01T00:00:00Z")
            ]
        )
        .await,
        all
    );
}

#[tokio::test]
async fn cursor_pagination_visits_every_transaction_once_newest_first() {
    let gw = TestGateway::start().await;
    let created: Vec<String> = (0..23).map(|i| format!("page-{i:02}")).collect();
    for r in &created {
        iak(&gw, r, PrepaidStatus::Success).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("limit", "5")];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let (status, body) = gw.get_query("/api/v1/transactions", &q).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|t| t["ref"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items.len(), 5, "only the last page is short");
                cursor = Some(c.to_owned());
            }
            None => break,
        }
        // A transaction arriving mid-way shows on the first page, not in the ones to come.
        if pages == 2 {
            iak(&gw, "page-late", PrepaidStatus::Success).await;
        }
        assert!(pages < 10, "the cursor must end");
    }
    assert_eq!(pages, 5);
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "no duplicates, no gaps, newest first");

    // The cursor composes with a filter.
    let mut filtered = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("limit", "2"), ("state", "succeeded"), ("q", "page-07")];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let (_, body) = gw.get_query("/api/v1/transactions", &q).await;
        filtered.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["ref"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(filtered, ["page-07"]);
}

#[tokio::test]
async fn bad_query_values_are_400_naming_the_parameter() {
    let gw = populated().await;
    for (path, param, value) in [
        ("/api/v1/transactions", "state", "done"),
        ("/api/v1/transactions", "kind", "topup"),
        ("/api/v1/transactions", "needs_review", "yes"),
        ("/api/v1/transactions", "since", "yesterday"),
        ("/api/v1/transactions", "since", "2024-01-01"),
        ("/api/v1/transactions", "until", "2024-13-01T00:00:00Z"),
        ("/api/v1/transactions", "cursor", "abc"),
        ("/api/v1/transactions", "limit", "0"),
        ("/api/v1/transactions", "limit", "501"),
        ("/api/v1/transactions", "limit", "ten"),
        ("/api/v1/events", "after", "evt_x"),
        ("/api/v1/events", "limit", "0"),
        ("/api/v1/events", "limit", "1001"),
    ] {
        let (status, body) = gw.get_query(path, &[(param, value)]).await;
        let msg = assert_error((status, &body.to_string()), 400, "invalid_query");
        assert!(msg.contains(param), "{path}?{param}={value}: {msg}");
    }
}

#[tokio::test]
async fn the_detail_shows_the_timeline_in_time_order() {
    let gw = TestGateway::start().await;
    let mut cb = prepaid_callback("detail-1", PrepaidStatus::Process, IAK_USER, IAK_KEY);
    cb.sn = None;
    let send = |cb: &lunas_protocol::iak::prepaid::PrepaidCallback, format| {
        let body = cb.encode(format, ApiVersion::V2);
        let gw = &gw;
        async move {
            gw.callback("iak", body, &[]).await;
        }
    };
    send(&cb, Format::Json).await;
    cb.status = PrepaidStatus::Success;
    cb.rc = "00".into();
    send(&cb, Format::Xml).await;
    cb.sn = Some("1234-5678".into());
    send(&cb, Format::Json).await;
    send(&cb, Format::Json).await;
    let forged = prepaid_callback("detail-1", PrepaidStatus::Failed, IAK_USER, "wrong");
    send(&forged, Format::Json).await;

    let tx = gw.transaction("iak", "detail-1").await.unwrap();
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["serial_number"], "1234-5678");
    let timeline = tx["timeline"].as_array().unwrap();
    let times: Vec<OffsetDateTime> = timeline.iter().map(|e| time_of(&e["at"])).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time order: {timeline:?}"
    );
    let observations: Vec<&str> = timeline
        .iter()
        .filter(|e| e["type"] == "observation")
        .map(|e| e["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        observations,
        [
            "created",
            "applied",
            "updated",
            "duplicate",
            "bad_signature"
        ]
    );
    let events: Vec<&str> = timeline
        .iter()
        .filter(|e| e["type"] == "event")
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "transaction.pending",
            "transaction.succeeded",
            "transaction.updated"
        ]
    );
    // Each event follows the observation that caused it.
    for (n, event) in events.iter().enumerate() {
        let pos = timeline
            .iter()
            .position(|e| e["event_type"] == *event)
            .unwrap();
        let before = timeline[..pos]
            .iter()
            .filter(|e| e["type"] == "observation")
            .count();
        assert!(before > n, "{event} comes after its observation");
    }
    for e in timeline.iter().filter(|e| e["type"] == "event") {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
        assert_eq!(e["data"]["ref"], "detail-1");
    }
    // Times are RFC 3339 UTC.
    assert!(tx["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(time_of(&tx["updated_at"]) >= time_of(&tx["created_at"]));
}

#[tokio::test]
async fn an_unknown_transaction_is_404_and_a_ref_with_slashes_can_be_looked_up() {
    let gw = TestGateway::start().await;
    let (status, body) = gw.get("/api/v1/transactions/iak/nosuch").await;
    let msg = assert_error((status, &body.to_string()), 404, "transaction_not_found");
    assert!(msg.contains("nosuch"), "{msg}");
    let (status, body) = gw.get("/api/v1/transactions/nosuch/x").await;
    assert_error((status, &body.to_string()), 404, "transaction_not_found");

    // Merchants' refs often hold slashes, spaces and other characters.
    let reference = "INV/2024/07 #1?x=ü";
    iak(&gw, reference, PrepaidStatus::Success).await;
    let encoded: String = url::form_urlencoded::byte_serialize(reference.as_bytes()).collect();
    let encoded = encoded.replace('+', "%20");
    let (status, body) = gw.get(&format!("/api/v1/transactions/iak/{encoded}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ref"], reference);
    assert_eq!(refs(&gw, &[("q", reference)]).await, set(&[reference]));
}

#[tokio::test]
async fn registering_a_transaction_answers_201_then_200_then_409_for_another_kind() {
    let gw = TestGateway::start().await;
    let body = json!({
        "provider_id": "iak", "ref": "reg-1", "kind": "prepaid",
        "product_code": "xld25000", "customer_id": "0817777215", "amount": 25000
    });
    let (status, created) = gw.post_json("/api/v1/transactions", &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["provider_id"], "iak");
    assert_eq!(created["ref"], "reg-1");
    assert_eq!(created["kind"], "prepaid");
    assert_eq!(created["state"], "pending");
    assert_eq!(created["needs_review"], false);
    assert_eq!(created["amount"], 25000);
    assert_eq!(created["product_code"], "xld25000");
    assert_eq!(created["customer_id"], "0817777215");
    assert!(time_of(&created["created_at"]) <= OffsetDateTime::now_utc());

    // The same again (even with other details) is the one already known, as stored.
    let mut again = body.clone();
    again["amount"] = json!("30000");
    let (status, known) = gw.post_json("/api/v1/transactions", &again).await;
    assert_eq!(status, 200, "{known}");
    assert_eq!(known, created);

    let mut other_kind = body.clone();
    other_kind["kind"] = json!("postpaid");
    let (status, conflict) = gw.post_json("/api/v1/transactions", &other_kind).await;
    let msg = assert_error((status, &conflict.to_string()), 409, "kind_mismatch");
    assert!(msg.contains("prepaid"), "{msg}");
    assert_eq!(gw.record("iak", "reg-1").await.unwrap(), created);
    assert!(gw.events().await.is_empty(), "registering is not an event");

    // An amount may be a numeric string; a VA starts awaiting payment.
    let (status, va) = gw
        .post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "mcp", "ref": "reg-va", "kind": "va", "amount": "150000",
                    "order_id": "ORD-reg-va", "provider_transaction_id": "trx-reg-va"}),
        )
        .await;
    assert_eq!(status, 201, "{va}");
    assert_eq!(va["state"], "awaiting_payment");
    assert_eq!(va["amount"], 150000);
    assert_eq!(va["order_id"], "ORD-reg-va");
}

#[tokio::test]
async fn an_invalid_registration_is_400_and_registers_nothing() {
    let gw = TestGateway::start().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "missing_field", "provider_id"),
        (
            json!({"ref": "bad-1", "kind": "prepaid"}),
            "missing_field",
            "provider_id",
        ),
        (
            json!({"provider_id": "iak", "kind": "prepaid"}),
            "missing_field",
            "ref",
        ),
        (
            json!({"provider_id": "iak", "ref": "", "kind": "prepaid"}),
            "missing_field",
            "ref",
        ),
        (
            json!({"provider_id": "iak", "ref": "bad-1"}),
            "missing_field",
            "kind",
        ),
        (
            json!({"provider_id": "iak", "ref": "bad-1", "kind": "topup"}),
            "invalid_field",
            "kind",
        ),
        (
            json!({"provider_id": "nosuch", "ref": "bad-1", "kind": "prepaid"}),
            "unknown_provider",
            "nosuch",
        ),
        (
            json!({"provider_id": "iak", "ref": "bad-1", "kind": "va", "order_id": "o", "provider_transaction_id": "t"}),
            "invalid_field",
            "kind",
        ),
        (
            json!({"provider_id": "mcp", "ref": "bad-1", "kind": "prepaid"}),
            "invalid_field",
            "kind",
        ),
        (
            json!({"provider_id": "mcp", "ref": "bad-1", "kind": "va"}),
            "missing_field",
            "order_id",
        ),
        (
            json!({"provider_id": "mcp", "ref": "bad-1", "kind": "va", "order_id": "o"}),
            "missing_field",
            "provider_transaction_id",
        ),
        (
            json!({"provider_id": "mcp", "ref": "bad-1", "kind": "va", "provider_transaction_id": "t"}),
            "missing_field",
            "order_id",
        ),
        (
            json!({"provider_id": "iak", "ref": "bad-1", "kind": "prepaid", "amount": 25000.5}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"provider_id": "iak", "ref": "bad-1", "kind": "prepaid", "amount": "25000.5"}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"provider_id": "iak", "ref": "bad-1", "kind": "prepaid", "amount": "dua puluh"}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"provider_id": "iak", "ref": "bad-1", "kind": "prepaid", "amount": [1]}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"provider_id": "iak", "ref": "bad-1", "kind": "prepaid", "customer_id": {"a": 1}}),
            "invalid_field",
            "customer_id",
        ),
        (
            json!({"provider_id": "iak", "ref": "x".repeat(129), "kind": "prepaid"}),
            "invalid_field",
            "ref",
        ),
        (json!(["iak", "bad-1", "prepaid"]), "invalid_body", "object"),
    ];
    for (body, code, names) in cases {
        let (status, answer) = gw.post_json("/api/v1/transactions", &body).await;
        let msg = assert_error((status, &answer.to_string()), 400, code);
        assert!(msg.contains(names), "{body}: {msg}");
    }
    // Not JSON at all.
    let res = gw
        .client
        .post(gw.url("/api/v1/transactions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"provider_id\": ")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_error((status, &res.text().await.unwrap()), 400, "invalid_json");
    assert_eq!(gw.snapshot().await, (vec![], vec![]));
}

#[tokio::test]
async fn a_registered_transaction_is_completed_by_its_callback() {
    let gw = TestGateway::start().await;
    let (status, registered) = gw
        .post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "iak", "ref": "reg-cb", "kind": "prepaid", "product_code": "xld25000"}),
        )
        .await;
    assert_eq!(status, 201);
    iak(&gw, "reg-cb", PrepaidStatus::Success).await;
    let tx = gw.record("iak", "reg-cb").await.unwrap();
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["serial_number"], "123456789");
    assert_eq!(tx["created_at"], registered["created_at"]);
    assert_eq!(gw.verdicts("iak", "reg-cb").await, ["applied"]);
    assert_eq!(gw.event_types().await, ["transaction.succeeded"]);

    let (status, _) = gw
        .post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "mcp", "ref": "reg-va", "kind": "va", "amount": 42000,
                    "order_id": "ORD-reg-va", "provider_transaction_id": "trx-reg-va"}),
        )
        .await;
    assert_eq!(status, 201);
    let paid = va_callback(
        "reg-va",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        42000,
        &[("RV1", 42000)],
        false,
    );
    assert_eq!(gw.mcp(&paid).await.0, 200);
    let tx = gw.record("mcp", "reg-va").await.unwrap();
    assert_eq!(tx["state"], "paid");
    assert_eq!(tx["provider_transaction_id"], "trx-reg-va");
    assert_eq!(gw.verdicts("mcp", "reg-va").await, ["applied"]);
    // A registration after the callback returns what the callback made.
    let (status, known) = gw
        .post_json(
            "/api/v1/transactions",
            &json!({"provider_id": "iak", "ref": "reg-cb", "kind": "prepaid"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(known["state"], "succeeded");
}

#[tokio::test]
async fn the_event_feed_continues_from_its_cursor() {
    let gw = TestGateway::start().await;
    iak(&gw, "feed-1", PrepaidStatus::Process).await;
    iak(&gw, "feed-1", PrepaidStatus::Success).await;
    iak(&gw, "feed-2", PrepaidStatus::Failed).await;
    let va = va_callback(
        "feed-3",
        TransactionStatus::Paid,
        PaymentSystem::Closed,
        1000,
        &[("F3", 1000)],
        false,
    );
    assert_eq!(gw.mcp(&va).await.0, 200);
    let all = gw.events().await;
    let types: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "transaction.pending",
            "transaction.succeeded",
            "transaction.failed",
            "va.payment_received",
            "va.paid"
        ]
    );
    for e in &all {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
        time_of(&e["created_at"]);
        assert!(
            e["data"]["ref"].is_string() && e["data"]["state"].is_string(),
            "{e}"
        );
    }

    let mut paged = Vec::new();
    let mut after = "0".to_owned();
    let mut cursors = Vec::new();
    loop {
        let (status, body) = gw
            .get_query("/api/v1/events", &[("after", &after), ("limit", "2")])
            .await;
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().unwrap();
        let next = body["next_cursor"].as_str().unwrap().to_owned();
        if events.is_empty() {
            assert_eq!(next, after, "an empty page keeps the cursor");
            break;
        }
        paged.extend(events.iter().cloned());
        cursors.push(next.clone());
        after = next;
    }
    assert_eq!(paged, all, "pages join into the whole feed, in order");
    assert_eq!(cursors.len(), 3);
    let ids: BTreeSet<&str> = paged.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 5, "event ids are unique");

    // From the last cursor, only what happens next.
    iak(&gw, "feed-2", PrepaidStatus::Success).await;
    let (_, body) = gw.get_query("/api/v1/events", &[("after", &after)]).await;
    let newer = body["events"].as_array().unwrap();
    assert_eq!(newer.len(), 1);
    assert_eq!(newer[0]["type"], "transaction.conflict");
    assert_eq!(newer[0]["data"]["ref"], "feed-2");
}

#[tokio::test]
async fn providers_show_callbacks_signature_failures_and_last_balance() {
    let gw = TestGateway::start().await;
    let (_, before) = gw.get("/api/v1/providers").await;
    for p in before["items"].as_array().unwrap() {
        assert_eq!(p["callbacks"], 0, "{p}");
        assert_eq!(p["signature_failures"], 0, "{p}");
        assert!(p["last_balance"].is_null(), "{p}");
        assert!(p["last_callback_at"].is_null(), "{p}");
    }
    iak(&gw, "prov-1", PrepaidStatus::Success).await;
    let mut later = prepaid_callback("prov-2", PrepaidStatus::Success, IAK_USER, IAK_KEY);
    later.balance = 500_000;
    gw.callback("iak", later.encode(Format::Xml, ApiVersion::V1), &[])
        .await;
    let forged = prepaid_callback("prov-3", PrepaidStatus::Success, IAK_USER, "wrong");
    gw.callback("iak", forged.encode(Format::Json, ApiVersion::V2), &[])
        .await;
    let va = va_callback(
        "prov-va",
        TransactionStatus::Active,
        PaymentSystem::Closed,
        1000,
        &[],
        false,
    );
    assert_eq!(gw.mcp(&va).await.0, 200);
    gw.callback("mcp", va.encode(), &[("mcp-signature", "bad")])
        .await;

    let (status, body) = gw.get("/api/v1/providers").await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["iak", "idsl", "mcp"]);
    let by = |id: &str| items.iter().find(|p| p["id"] == id).unwrap();
    let iak_p = by("iak");
    assert_eq!(iak_p["kind"], "iak");
    assert_eq!(iak_p["callbacks"], 3);
    assert_eq!(iak_p["signature_failures"], 1);
    assert_eq!(iak_p["last_balance"], 500_000);
    time_of(&iak_p["last_callback_at"]);
    time_of(&iak_p["last_balance_at"]);
    let idsl = by("idsl");
    assert_eq!(idsl["kind"], "idsl");
    assert_eq!(idsl["callbacks"], 0);
    assert!(idsl["last_balance"].is_null());
    let mcp = by("mcp");
    assert_eq!(mcp["kind"], "mcp");
    assert_eq!(mcp["callbacks"], 2);
    assert_eq!(mcp["signature_failures"], 1);
    assert!(
        mcp["last_balance"].is_null(),
        "a VA says nothing of a balance"
    );
    // No secret is shown.
    let text = body.to_string();
    for secret in [
        IAK_KEY,
        IDSL_KEY,
        "HASHKEY-not-real-01",
        "0x00aabbccddeeff0011",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn healthz_and_readyz_answer_and_readyz_fails_while_storage_is_locked() {
    let gw = TestGateway::start().await;
    let (status, body) = gw.get("/healthz").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = gw.get("/readyz").await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    let lock = gw.lock_storage().await;
    let (status, body) = gw.get("/readyz").await;
    assert_error((status, &body.to_string()), 503, "storage_unavailable");
    let (status, _) = gw.get("/healthz").await;
    assert_eq!(status, 200);
    lock.release().await;
    let (status, _) = gw.get("/readyz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn readyz_means_a_write_commits_not_only_that_the_database_answers() {
    let gw = TestGateway::start().await;
    let (status, _) = gw.get("/readyz").await;
    assert_eq!(status, 200);
    // Every write now fails (as on a full disk) while connections and locks are fine.
    let refuse = refuse_writes(&gw).await;
    let (status, body) = gw.get("/readyz").await;
    assert_error((status, &body.to_string()), 503, "storage_unavailable");
    let (status, _) = gw.get("/healthz").await;
    assert_eq!(status, 200, "alive, not ready");
    refuse.undo().await;
    let (status, _) = gw.get("/readyz").await;
    assert_eq!(status, 200);
}

/// A trigger that makes every write of the heartbeat row fail, as a full disk would.
struct RefuseWrites(std::path::PathBuf);

async fn refuse_writes(gw: &TestGateway) -> RefuseWrites {
    let db = gw.db_path();
    if postgres_admin_url().is_some() {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&storage_url(&db))
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_write() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no space left on device'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON heartbeat FOR EACH ROW EXECUTE FUNCTION refuse_write();",
        )
        .execute(&mut c)
        .await
        .unwrap();
    } else {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TRIGGER refuse_insert BEFORE INSERT ON heartbeat BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END; \
             CREATE TRIGGER refuse_update BEFORE UPDATE ON heartbeat BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
        )
        .unwrap();
    }
    RefuseWrites(db)
}

impl RefuseWrites {
    async fn undo(self) {
        if postgres_admin_url().is_some() {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&storage_url(&self.0))
                .await
                .unwrap();
            sqlx::raw_sql("DROP TRIGGER refuse ON heartbeat; DROP FUNCTION refuse_write();")
                .execute(&mut c)
                .await
                .unwrap();
        } else {
            let c = rusqlite::Connection::open(&self.0).unwrap();
            c.execute_batch("DROP TRIGGER refuse_insert; DROP TRIGGER refuse_update;")
                .unwrap();
        }
    }
}

/// A concrete URL for a documented path, with the path parameters of a real transaction and
/// event so that every operation can answer for real.
fn concrete(path: &str, event_id: &str) -> String {
    path.replace("{provider_id}", "iak")
        .replace("{ref}", "doc-1")
        .replace("{id}", event_id)
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let gw = TestGateway::start().await;
    iak(&gw, "doc-1", PrepaidStatus::Success).await;
    let event_id = gw.events().await[0]["id"].as_str().unwrap().to_owned();
    let (status, _, doc) = gw
        .request_as(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");

    // The routes the README's interfaces names are all documented.
    for (method, path) in [
        ("post", "/callbacks/{provider_id}"),
        ("get", "/api/v1/transactions"),
        ("post", "/api/v1/transactions"),
        ("get", "/api/v1/transactions/{provider_id}/{ref}"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/providers"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is documented"
        );
    }

    // Every operation has its own operationId.
    let mut ids = std::collections::HashSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        }
    }

    let right = format!("Bearer {TOKEN}");
    let mut operations = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            operations += 1;
            let url = concrete(path, &event_id);
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            let req = gw.client.request(m.clone(), gw.url(&url));
            let req = if path.starts_with("/callbacks/") {
                req.body(iak_body(
                    "doc-1",
                    PrepaidStatus::Success,
                    Format::Json,
                    ApiVersion::V2,
                ))
            } else if m == Method::POST {
                req.json(&json!({"provider_id": "iak", "ref": "doc-2", "kind": "prepaid"}))
            } else {
                req
            };
            let res = req.header("authorization", &right).send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert_ne!(status, 405, "{method} {url}: {body}");
            if status == 404 {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_ne!(
                    v["error"]["code"], "not_found",
                    "{method} {url} is documented but not routed"
                );
            }
            assert!(
                documented.iter().any(|c| c.as_str() == status.to_string()),
                "{method} {url} answered {status}, which the document does not list ({documented:?}): {body}"
            );
            // An operation that needs the token says so, and refuses without it.
            if op.get("security").is_some() {
                let (status, _, v) = gw.request_as(m.clone(), &url, None, None).await;
                assert_eq!(status, 401, "{method} {url}: {v}");
                assert!(documented.iter().any(|c| *c == "401"), "{method} {path}");
            } else if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                panic!("{method} {path} is an admin route without security in the document");
            }
        }
    }
    assert!(operations >= 9);

    // Paths the document does not list are not served.
    for (method, path) in [
        (Method::GET, "/api/v1/nothing"),
        (Method::GET, "/api/v2/transactions"),
        (Method::POST, "/callbacks"),
        (Method::POST, "/callbacks/iak/extra"),
        (Method::GET, "/api/v1/transactions/iak"),
        // (The dashboard's HTML pages, `/`, `/transactions`, ..., are not part of the API.)
        (Method::GET, "/api/v1"),
        (Method::GET, "/api/v1/openapi.yaml"),
    ] {
        assert!(
            !paths.contains_key(path),
            "{path} is not meant to be documented"
        );
        let (status, _, v) = gw
            .request_as(method.clone(), path, Some(&right), None)
            .await;
        let msg = assert_error((status, &v.to_string()), 404, "not_found");
        assert!(msg.contains(path), "{method} {path}: {msg}");
    }
}

#[tokio::test]

async fn a_wrong_method_on_a_known_path_is_405_with_a_json_error() {
    // the README's interfaces: error bodies are JSON {"error": {"code", "message"}}.
    let gw = TestGateway::start().await;
    let right = format!("Bearer {TOKEN}");
    for (method, path) in [
        (Method::GET, "/callbacks/iak"),
        (Method::DELETE, "/api/v1/transactions"),
        (Method::POST, "/healthz"),
    ] {
        let res = gw
            .client
            .request(method.clone(), gw.url(path))
            .header("authorization", &right)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert_eq!(status, 405, "{method} {path}");
        let body = res.text().await.unwrap();
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{method} {path}: body {body:?} is not JSON"));
        assert!(v["error"]["code"].is_string(), "{body}");
    }
}

/// The OpenAPI document passes a real validator (Python's `openapi-spec-validator`), and every
/// successful JSON answer has a schema. Without the validator installed the check says
/// SKIPPED (CI installs it and sets LUNAS_REQUIRE_VALIDATOR, so there it cannot skip).
#[test]
fn the_openapi_document_is_valid_and_every_answer_has_a_schema() {
    let doc = lunas::http::openapi::spec();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (code, answer) in op["responses"].as_object().unwrap() {
                if !code.starts_with('2') {
                    continue;
                }
                let content = answer["content"].as_object();
                assert!(
                    content.is_some_and(|c| c.values().all(|m| m.get("schema").is_some())),
                    "{method} {path} {code} has no schema: {answer}"
                );
            }
        }
    }
    let have = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var_os("LUNAS_REQUIRE_VALIDATOR").is_some() {
            panic!("LUNAS_REQUIRE_VALIDATOR is set but openapi-spec-validator is not installed");
        }
        eprintln!(
            "SKIPPED: validating the OpenAPI document needs `pip install openapi-spec-validator`"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the document does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("the OpenAPI document validates (openapi-spec-validator)");
}
