//! The admin API under `/api/v1`, behind a bearer token.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lunas_core::{rfc3339, Detail};
use lunas_protocol::{State as TxState, TxKind};
use lunas_store::{Registration, TxQuery};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{ApiError, AppState};
use crate::config::Scope;

/// Lets a request through only with `Authorization: Bearer <admin token>`.
/// Who called: the admin token (`admin`) or the name of a `[[server.tokens]]` token.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// The scope an API route needs: reading is `read`; placing orders and registering
/// transactions is `orders`; everything else (check, resolve, redeliver) is `admin`.
fn scope_for(method: &axum::http::Method, path: &str) -> Scope {
    if *method == axum::http::Method::GET {
        Scope::Read
    } else if path == super::openapi::ORDERS
        || path == super::openapi::TRANSACTIONS
        || (path.starts_with("/api/v1/orders/") && path.ends_with("/pay"))
    {
        Scope::Orders
    } else {
        Scope::Admin
    }
}

fn same(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Lets a request through when its bearer token may do what the route needs: the admin token
/// may do everything, a `[[server.tokens]]` token what its scopes allow. 401 for no or a
/// wrong token, 403 `forbidden_scope` for a token without the scope; each refusal is counted
/// and logged (never the token).
pub async fn require_admin(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let need = scope_for(request.method(), request.uri().path());
    let path = request.uri().path().to_owned();
    let refuse = |reason: &str, status: StatusCode, code: &'static str, message: String| {
        app.metrics.auth_failure(reason);
        tracing::warn!(path = %path, reason, "API request refused");
        ApiError::new(status, code, message).into_response()
    };
    let Some(given) = given else {
        return refuse(
            "missing",
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a token as Authorization: Bearer <token>".into(),
        );
    };
    // Every token is compared, so the time taken does not tell which one nearly matched.
    let admin = same(&given, app.admin_token.expose());
    let named = app.tokens.iter().fold(None, |found, t| {
        if same(&given, t.token.expose()) {
            Some(t)
        } else {
            found
        }
    });
    let caller = match (admin, named) {
        (true, _) => "admin".to_owned(),
        (false, Some(t)) if t.allows(need) => t.name.clone(),
        (false, Some(t)) => {
            let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
            return refuse(
                "forbidden_scope",
                StatusCode::FORBIDDEN,
                "forbidden_scope",
                format!(
                    "the token {:?} has the scopes [{}]; this needs {}",
                    t.name,
                    scopes.join(", "),
                    need.as_str()
                ),
            );
        }
        (false, None) => {
            return refuse(
                "wrong",
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the token is not one this gateway knows".into(),
            )
        }
    };
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    provider_id: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    needs_review: Option<String>,
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

fn time_param(name: &str, v: &Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name}: {s:?} is not an RFC 3339 time"),
                )
            })
        })
        .transpose()
}

fn int_param(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            s.parse::<i64>().map_err(|_| {
                ApiError::bad_request("invalid_query", format!("{name}: {s:?} is not a number"))
            })
        })
        .transpose()
}

/// `GET /api/v1/transactions`
pub async fn list_transactions(
    State(app): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let state = p
        .state
        .as_deref()
        .map(|s| {
            TxState::parse(s).ok_or_else(|| {
                ApiError::bad_request("invalid_query", format!("state: {s:?} is not a state"))
            })
        })
        .transpose()?;
    let kind = p
        .kind
        .as_deref()
        .map(|s| {
            TxKind::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("kind: {s:?} is not prepaid, postpaid or va"),
                )
            })
        })
        .transpose()?;
    let needs_review = match p.needs_review.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("needs_review: {other:?} is not true or false"),
            ))
        }
    };
    let limit = int_param("limit", &p.limit)?.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: must be between 1 and 500",
        ));
    }
    let query = TxQuery {
        provider_id: p.provider_id,
        state,
        kind,
        needs_review,
        since: time_param("since", &p.since)?,
        until: time_param("until", &p.until)?,
        search: p.q.filter(|s| !s.is_empty()),
        cursor: int_param("cursor", &p.cursor)?,
        limit: limit as usize,
    };
    let page = app.store.list_transactions(&query).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    })))
}

#[derive(Debug, Default, Deserialize)]
pub struct TimelineParams {
    observations_before: Option<String>,
    observations_limit: Option<String>,
}

/// Observations per timeline page when the request names none, and at most.
pub const TIMELINE_PAGE: usize = 50;
pub const TIMELINE_PAGE_MAX: i64 = 200;

/// `GET /api/v1/transactions/{provider_id}/{ref}`: the transaction and its timeline (the newest
/// observations; `older_observations` is the cursor of the page before them).
pub async fn show_transaction(
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
    Query(p): Query<TimelineParams>,
) -> Result<Json<Value>, ApiError> {
    let limit =
        int_param("observations_limit", &p.observations_limit)?.unwrap_or(TIMELINE_PAGE as i64);
    if !(1..=TIMELINE_PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("observations_limit: must be between 1 and {TIMELINE_PAGE_MAX}"),
        ));
    }
    let page = lunas_store::TimelinePage {
        limit: limit as usize,
        before: int_param("observations_before", &p.observations_before)?,
    };
    let tx = find_transaction(&app, &provider_id, &reference).await?;
    let timeline = app.store.timeline(tx.id, page).await?;
    Ok(Json(detail_json(&tx, &timeline)))
}

/// The transaction a path names, or a 404 saying which.
async fn find_transaction(
    app: &AppState,
    provider_id: &str,
    reference: &str,
) -> Result<lunas_core::TxRecord, ApiError> {
    app.store
        .transaction(provider_id, reference)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "transaction_not_found",
                format!("no transaction {reference:?} for provider {provider_id:?}"),
            )
        })
}

/// A transaction with `timeline`: its observations and events merged in time order.
pub fn detail_json(tx: &lunas_core::TxRecord, timeline: &lunas_store::Timeline) -> Value {
    let mut entries: Vec<(OffsetDateTime, u8, Value)> = Vec::new();
    for o in &timeline.observations {
        let mut v = o.to_json();
        v["type"] = json!("observation");
        v["at"] = json!(rfc3339(o.received_at));
        entries.push((o.received_at, 0, v));
    }
    for e in &timeline.events {
        let mut v = e.to_json();
        v["event_type"] = v["type"].take();
        v["type"] = json!("event");
        v["at"] = json!(rfc3339(e.created_at));
        entries.push((e.created_at, 1, v));
    }
    for d in &timeline.deliveries {
        for a in &d.history {
            let mut v = a.to_json();
            v["type"] = json!("delivery_attempt");
            v["endpoint"] = json!(d.endpoint);
            v["event_id"] = json!(d.event_id);
            v["event_type"] = json!(d.event_type);
            entries.push((a.at, 2, v));
        }
    }
    entries.sort_by_key(|e| (e.0, e.1));
    let mut body = tx.to_json();
    // When lunas will next ask the provider (null: nothing left to ask).
    body["next_check_at"] = json!(tx.next_check_at.map(lunas_core::rfc3339));
    body["timeline"] = Value::Array(entries.into_iter().map(|(_, _, v)| v).collect());
    // Older observations are a page away: pass this as `observations_before`.
    body["older_observations"] = json!(timeline.older_observations);
    body["deliveries"] = Value::Array(timeline.deliveries.iter().map(|d| d.to_json()).collect());
    body
}

/// `POST /api/v1/transactions`: register a transaction the merchant started.
pub async fn register_transaction(
    State(app): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request("invalid_json", e.body_text()))?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid_body", "expected a JSON object"))?;
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::bad_request(
                "invalid_field",
                format!("{name}: expected a string"),
            )),
        }
    };
    let required = |name: &str| -> Result<String, ApiError> {
        text(name)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request("missing_field", format!("{name} is required")))
    };
    let provider_id = required("provider_id")?;
    let reference = required("ref")?;
    if let Some(problem) = crate::providers::ref_problem(&reference) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("ref: {problem}"),
        ));
    }
    let kind_text = required("kind")?;
    let kind = TxKind::parse(&kind_text).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_field",
            format!("kind: {kind_text:?} is not prepaid, postpaid or va"),
        )
    })?;
    let provider = app.providers.get(&provider_id).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_provider",
            format!("no provider account {provider_id:?} is configured"),
        )
    })?;
    let fits = provider.provider.kinds().contains(&kind);
    if !fits {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!(
                "kind: a {} provider has no {} transactions",
                provider.kind,
                kind.as_str()
            ),
        ));
    }
    let amount = match obj.get("amount") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            lunas_protocol::parse_int_text(&match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            })
            .map_err(|e| ApiError::bad_request("invalid_field", format!("amount: {e}")))?,
        ),
    };
    if amount.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "amount: must be zero or more whole rupiah",
        ));
    }
    let provider_transaction_id = text("provider_transaction_id")?;
    let order_id = text("order_id")?;
    if kind == TxKind::Va && (order_id.is_none() || provider_transaction_id.is_none()) {
        return Err(ApiError::bad_request(
            "missing_field",
            "a va transaction needs order_id and provider_transaction_id (MCPayment's transaction_id) to be checked",
        ));
    }
    let registration = Registration {
        provider_id,
        reference,
        kind,
        detail: Detail {
            amount,
            product_code: text("product_code")?,
            customer_id: text("customer_id")?,
            provider_transaction_id,
            order_id,
            ..Detail::default()
        },
        check_after: Some(provider.reconcile.first_check_after),
        at: OffsetDateTime::now_utc(),
        origin: "registration",
        order: None,
        lease: None,
    };
    let (tx, created) = app.store.register(registration).await?;
    if tx.kind != kind {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "kind_mismatch",
            format!(
                "{:?} is already known as a {} transaction",
                tx.reference,
                tx.kind.as_str()
            ),
        ));
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(tx.to_json())).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct EventParams {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/events?after=<cursor>`: the event feed, oldest first.
pub async fn events(
    State(app): State<AppState>,
    Query(p): Query<EventParams>,
) -> Result<Json<Value>, ApiError> {
    let after = int_param("after", &p.after)?.unwrap_or(0);
    let limit = int_param("limit", &p.limit)?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: must be between 1 and 1000",
        ));
    }
    let events = app.store.events_after(after, limit as usize).await?;
    let next = events.last().map_or(after, |e| e.seq);
    Ok(Json(json!({
        "events": events.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "next_cursor": next.to_string(),
    })))
}

/// `GET /api/v1/providers`: each configured account with its health.
pub async fn providers(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let health = app.store.provider_health().await?;
    let mut ids: Vec<&String> = app.providers.keys().collect();
    ids.sort();
    let items: Vec<Value> = ids
        .into_iter()
        .map(|id| {
            let p = &app.providers[id];
            let h = health.iter().find(|h| &h.provider_id == id);
            json!({
                "id": id,
                "kind": p.kind,
                "environment": p.environment.as_str(),
                "confirm_callbacks": p.confirm_callbacks,
                "callbacks": h.map_or(0, |h| h.callbacks),
                "rejected": h.map_or(0, |h| h.rejected),
                "signature_failures": h.map_or(0, |h| h.bad_signatures),
                "last_callback_at": h.and_then(|h| h.last_callback_at).map(rfc3339),
                "last_balance": h.and_then(|h| h.last_balance),
                "last_balance_at": h.and_then(|h| h.last_balance_at).map(rfc3339),
            })
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

fn queued(n: usize) -> Json<Value> {
    Json(json!({"queued": n}))
}

/// `POST /api/v1/events/{id}/redeliver`: send one event again to every matching endpoint.
pub async fn redeliver_event(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n = app
        .store
        .redeliver(
            lunas_store::Redeliver::Event(id.clone()),
            &app.filters,
            OffsetDateTime::now_utc(),
        )
        .await?;
    if n == 0 {
        let exists = !app.filters.is_empty();
        return Err(ApiError::not_found(
            "event_not_found",
            if exists {
                format!("no event {id:?} that any endpoint subscribes to")
            } else {
                "no endpoints are configured".to_owned()
            },
        ));
    }
    app.wake.notify_one();
    Ok(queued(n))
}

/// `POST /api/v1/transactions/{provider_id}/{ref}/redeliver`: every event of one transaction.
pub async fn redeliver_transaction(
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tx = find_transaction(&app, &provider_id, &reference).await?;
    let n = app
        .store
        .redeliver(
            lunas_store::Redeliver::Transaction(tx.id),
            &app.filters,
            OffsetDateTime::now_utc(),
        )
        .await?;
    app.wake.notify_one();
    Ok(queued(n))
}

#[derive(Debug, Default, Deserialize)]
pub struct DeadLetterWindow {
    since: Option<String>,
    until: Option<String>,
    endpoint: Option<String>,
}

/// `POST /api/v1/deliveries/redeliver`: every dead-lettered delivery whose event falls in the
/// window (all of them without one).
pub async fn redeliver_dead(
    State(app): State<AppState>,
    body: Option<Json<DeadLetterWindow>>,
) -> Result<Json<Value>, ApiError> {
    let w = body.map(|Json(w)| w).unwrap_or_default();
    let what = lunas_store::Redeliver::Dead {
        since: time_param("since", &w.since)?,
        until: time_param("until", &w.until)?,
        endpoint: w.endpoint,
    };
    let n = app
        .store
        .redeliver(what, &app.filters, OffsetDateTime::now_utc())
        .await?;
    app.wake.notify_one();
    Ok(queued(n))
}

#[derive(Debug, Default, Deserialize)]
pub struct DeliveryParams {
    state: Option<String>,
    endpoint: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/deliveries`: deliveries with their attempts, newest first (`state=dead` for the
/// dead letters).
pub async fn deliveries(
    State(app): State<AppState>,
    Query(p): Query<DeliveryParams>,
) -> Result<Json<Value>, ApiError> {
    let state = p
        .state
        .as_deref()
        .map(|s| {
            lunas_core::DeliveryState::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("state: {s:?} is not pending, delivered or dead"),
                )
            })
        })
        .transpose()?;
    let limit = int_param("limit", &p.limit)?.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: must be between 1 and 500",
        ));
    }
    let page = app
        .store
        .list_deliveries(&lunas_store::DeliveryQuery {
            state,
            endpoint: p.endpoint,
            cursor: int_param("cursor", &p.cursor)?,
            limit: limit as usize,
        })
        .await?;
    Ok(Json(json!({
        "items": page.items.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    })))
}

/// `GET /api/v1/endpoints`: each configured endpoint with its delivery counters. A 410 Gone
/// answer is counted and shown here; it disables nothing. Deliveries held behind a dead
/// letter and those of a disabled endpoint are shown as such; so are deliveries left to an
/// endpoint that is no longer configured (they wait: nothing sends them).
pub async fn endpoints(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let stats = app.store.endpoint_stats().await?;
    let removed: Vec<Value> = stats
        .iter()
        .filter(|s| s.pending > 0 && !app.endpoints.iter().any(|e| e.id == s.endpoint))
        .map(|s| json!({"id": s.endpoint, "pending": s.pending, "dead": s.dead}))
        .collect();
    let items: Vec<Value> = app
        .endpoints
        .iter()
        .map(|e| {
            let s = stats.iter().find(|s| s.endpoint == e.id);
            json!({
                "id": e.id,
                "url": e.url.as_str(),
                "events": e.events,
                "enabled": e.enabled,
                "on_dead_letter": e.on_dead_letter.as_str(),
                "held": s.map_or(0, |s| crate::delivery::held(e, s)),
                "pending": s.map_or(0, |s| s.pending),
                "delivered": s.map_or(0, |s| s.delivered),
                "dead": s.map_or(0, |s| s.dead),
                "last_status": s.and_then(|s| s.last_status),
                "last_attempt_at": s.and_then(|s| s.last_attempt_at).map(rfc3339),
                "gone_answers": s.map_or(0, |s| s.gone),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "unconfigured": removed})))
}

/// `POST /api/v1/endpoints/{id}/test`: one signed `endpoint.test` event, sent now; the answer
/// says what the endpoint replied (200 whatever it replied: `delivered` tells).
pub async fn test_endpoint(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !app.endpoints.iter().any(|e| e.id == id) {
        return Err(ApiError::not_found(
            "unknown_endpoint",
            format!("no endpoint {id:?} is configured"),
        ));
    }
    let sent = crate::delivery::send_test(
        &app.endpoints,
        &app.delivery,
        &id,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot_sign", e))?;
    tracing::info!(
        endpoint = %id,
        delivered = sent.delivered,
        status = sent.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        "test event sent"
    );
    Ok(Json(serde_json::to_value(sent).unwrap_or_default()))
}

/// The body of `POST .../resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveIn {
    pub state: Option<String>,
    pub note: Option<String>,
}

/// The longest resolution note kept.
const MAX_NOTE: usize = 2000;

/// Resolves the review of a flagged transaction (the README's review API): clears `needs_review`, keeps
/// or sets `state`, records who, when and why. Used by the API, the dashboard and the CLI.
pub async fn resolve_review(
    store: &dyn lunas_store::Store,
    provider_id: &str,
    reference: &str,
    state: Option<&str>,
    note: Option<&str>,
    by: &str,
) -> Result<lunas_store::Ingested, ApiError> {
    let tx = store
        .transaction(provider_id, reference)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "not_found",
                format!("no transaction {reference:?} for provider {provider_id:?}"),
            )
        })?;
    let invalid =
        |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_resolution", m);
    let finals: Vec<&str> = TxState::ALL
        .iter()
        .filter(|s| s.is_final() && s.applies_to(tx.kind))
        .map(|s| s.as_str())
        .collect();
    let state_text = state
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("state is required: one of {}", finals.join(", "))))?;
    let state = TxState::parse(state_text)
        .filter(|s| s.is_final() && s.applies_to(tx.kind))
        .ok_or_else(|| {
            invalid(format!(
                "state {state_text:?} is not a final state of a {} transaction: one of {}",
                tx.kind.as_str(),
                finals.join(", ")
            ))
        })?;
    let note = note
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            invalid("note is required: say why, for whoever reads the timeline".into())
        })?;
    if note.chars().count() > MAX_NOTE {
        return Err(invalid(format!(
            "note is longer than {MAX_NOTE} characters"
        )));
    }
    if !tx.needs_review {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_flagged",
            format!("{reference:?} is not flagged for review"),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let body = json!({"state": state.as_str(), "note": note, "by": by}).to_string();
    let done = store
        .record_check(lunas_store::CheckRecord {
            transaction_id: tx.id,
            observation: lunas_core::NewObservation {
                provider_id: tx.provider_id.clone(),
                reference: Some(tx.reference.clone()),
                source: lunas_core::Source::Review,
                received_at: now,
                content_type: Some("application/json".into()),
                remote_addr: None,
                body_size: body.len(),
                body: body.into_bytes(),
                verdict: Some(lunas_core::ObservationVerdict::Resolved),
                detail: Some(format!(
                    "resolved by {by}: {} ({note})",
                    if state == tx.state {
                        format!("kept {}", state.as_str())
                    } else {
                        format!("{} → {}", tx.state.as_str(), state.as_str())
                    }
                )),
            },
            fact: None,
            next_check_at: None,
            give_up: false,
            low_balance: None,
            order: None,
            keep_lease: true,
            resolution: Some(lunas_core::Resolution {
                state,
                note: note.to_owned(),
                by: by.to_owned(),
            }),
        })
        .await?;
    Ok(done)
}

/// `POST /api/v1/transactions/{provider_id}/{ref}/resolve`.
pub async fn resolve_transaction(
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
    caller: Option<axum::Extension<Caller>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request("invalid_json", e.body_text()))?;
    let input: ResolveIn = serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_resolution",
            e.to_string(),
        )
    })?;
    let done = resolve_review(
        app.store.as_ref(),
        &provider_id,
        &reference,
        input.state.as_deref(),
        input.note.as_deref(),
        &caller.map_or_else(|| "admin API".to_owned(), |c| format!("{} (API)", c.0 .0)),
    )
    .await?;
    app.metrics.events(&done.events);
    app.wake.notify_one();
    let tx = done.record.expect("a resolution concerns a transaction");
    Ok(Json(tx.to_json()))
}

/// `POST /api/v1/transactions/{provider_id}/{ref}/check`: ask the provider now.
pub async fn check_transaction(
    State(app): State<AppState>,
    Path((provider_id, reference)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    use crate::reconcile::CheckError;
    let done = app
        .reconciler
        .check_now(&provider_id, &reference)
        .await
        .map_err(|e| match e {
            CheckError::NotFound { .. } => {
                ApiError::not_found("transaction_not_found", e.to_string())
            }
            CheckError::Busy => {
                ApiError::new(StatusCode::CONFLICT, "check_in_progress", e.to_string())
            }
            CheckError::Store(s) => ApiError::from(s),
        })?;
    if !done.events.is_empty() {
        app.wake.notify_one();
    }
    let tx = done.record.expect("a check always concerns a transaction");
    let mut body = tx.to_json();
    body["check"] =
        json!({"verdict": done.verdict.as_str(), "observation_id": done.observation_id});
    Ok(Json(body))
}

#[derive(Debug, Default, Deserialize)]
pub struct BalanceParams {
    since: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/providers/{provider_id}/balance`: the deposit balances the provider reported.
pub async fn balance_history(
    State(app): State<AppState>,
    Path(provider_id): Path<String>,
    Query(p): Query<BalanceParams>,
) -> Result<Json<Value>, ApiError> {
    if !app.providers.contains_key(&provider_id) {
        return Err(ApiError::not_found(
            "unknown_provider",
            format!("no provider account {provider_id:?} is configured"),
        ));
    }
    let since = time_param("since", &p.since)?
        .unwrap_or(OffsetDateTime::now_utc() - time::Duration::days(7));
    let limit = int_param("limit", &p.limit)?.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: must be between 1 and 10000",
        ));
    }
    let samples = app
        .store
        .balance_history(&provider_id, since, limit as usize)
        .await?;
    let threshold = app.providers[&provider_id].low_balance;
    Ok(Json(json!({
        "provider_id": provider_id,
        "low_balance": threshold,
        "items": samples.iter().map(|s| json!({"at": rfc3339(s.at), "balance": s.balance})).collect::<Vec<_>>(),
    })))
}
