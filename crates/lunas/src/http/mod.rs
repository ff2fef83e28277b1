//! The gateway's HTTP surface: provider callbacks, the admin API, health.

pub mod api;
pub mod callbacks;
pub mod dashboard;
pub mod openapi;
pub mod orders;
pub mod serve;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lunas_protocol::Secret;
use lunas_store::{Store, StoreError};
use serde_json::json;

use crate::config::ProviderConfig;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub providers: Arc<HashMap<String, ProviderConfig>>,
    pub admin_token: Arc<Secret>,
    /// `[[server.tokens]]`: tokens with some of the admin token's rights.
    pub tokens: Arc<Vec<crate::config::ApiToken>>,
    pub body_limit: usize,
    /// How long a callback's body may take to arrive.
    pub read_timeout: std::time::Duration,
    /// Wakes the delivery worker when new events are committed.
    pub wake: Arc<tokio::sync::Notify>,
    /// Wakes the reconciler when a callback claim waits for confirmation.
    pub check_wake: Arc<tokio::sync::Notify>,
    pub reconciler: Arc<crate::reconcile::Reconciler>,
    pub orders: Arc<crate::orders::Orders>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub endpoints: Arc<Vec<crate::config::EndpointConfig>>,
    /// How deliveries are made (the timeout of a test event's POST).
    pub delivery: Arc<crate::config::DeliveryConfig>,
    pub filters: Arc<Vec<lunas_store::EndpointFilter>>,
    /// Refused callbacks kept as evidence, per account and kind of refusal.
    pub refusals: Arc<lunas_core::rate::KeyedBuckets>,
    /// Dashboard logins per client address.
    pub logins: Arc<lunas_core::rate::KeyedBuckets>,
    /// How long a dashboard login lasts, and whether its cookie is `Secure`.
    pub session_ttl: std::time::Duration,
    pub secure_cookies: bool,
}

/// The gateway's routes.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route(
            openapi::TRANSACTIONS,
            get(api::list_transactions).post(api::register_transaction),
        )
        .route(openapi::TRANSACTION, get(api::show_transaction))
        .route(openapi::EVENTS, get(api::events))
        .route(openapi::PROVIDERS, get(api::providers))
        .route(openapi::TRANSACTION_CHECK, post(api::check_transaction))
        .route(openapi::TRANSACTION_RESOLVE, post(api::resolve_transaction))
        .route(openapi::PROVIDER_BALANCE, get(api::balance_history))
        .route(openapi::EVENT_REDELIVER, post(api::redeliver_event))
        .route(
            openapi::TRANSACTION_REDELIVER,
            post(api::redeliver_transaction),
        )
        .route(openapi::DELIVERIES, get(api::deliveries))
        .route(openapi::DELIVERIES_REDELIVER, post(api::redeliver_dead))
        .route(openapi::ENDPOINTS, get(api::endpoints))
        .route(openapi::ENDPOINT_TEST, post(api::test_endpoint))
        .route(openapi::ORDERS, post(orders::place))
        .route(openapi::ORDER_PAY, post(orders::pay))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::require_admin,
        ));
    Router::new()
        .route(openapi::CALLBACK, post(callbacks::receive))
        .route(openapi::OPENAPI, get(openapi::document))
        .route(openapi::HEALTHZ, get(healthz))
        .route(openapi::READYZ, get(readyz))
        .route(openapi::METRICS, get(metrics))
        .merge(admin)
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            serve::BodyBounds {
                limit: state.body_limit,
                read_timeout: state.read_timeout,
            },
            serve::bounded_body,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(request_span))
        .with_state(state)
}

/// Headers every answer carries: no framing (clickjacking), no content sniffing, no referrer
/// leaving the dashboard, and nothing kept in caches (pages and answers carry customer goods).
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::{header, HeaderValue};
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Gives every request an id: each log line written while answering it carries the id, and
/// the answer names it in `x-request-id`, so one request can be followed through the logs.
async fn request_span(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let span = tracing::info_span!("request", id = %&id[20..], method = %req.method(), path = %req.uri().path());
    let mut response = next.run(req).instrument(span).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id[20..]) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// An error answer: `{"error": {"code", "message"}}` with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error");
        match e {
            StoreError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "storage is unavailable; retry later",
            ),
            StoreError::Invalid(m) => ApiError::bad_request("invalid", m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    app.store.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}

async fn metrics(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Result<axum::response::Response, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let stats = app.store.queue_stats(now).await?;
    let endpoints = app.store.endpoint_stats().await?;
    for e in app.endpoints.iter() {
        let held = endpoints
            .iter()
            .find(|s| s.endpoint == e.id)
            .map_or(0, |s| crate::delivery::held(e, s));
        app.metrics.held(&e.id, held);
    }
    let body = app.metrics.render(&stats, now);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not served on {}", uri.path()),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found("not_found", format!("no route for {}", uri.path()))
}
