//! Small helpers shared by the handlers: answers in each provider's format, the controls'
//! JSON bodies and refusals, and request records for the log.

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use lunas_protocol::Format;
use serde::Serialize;

use crate::clock;
use crate::log::RequestRecord;
use crate::Sandbox;

/// An IAK/IDSL answer body in `format`.
pub(crate) fn provider(status: StatusCode, format: Format, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The error body of the control endpoints: `{"error": {"code", "message"}}`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json(
        status,
        &serde_json::json!({"error": {"code": code, "message": message.into()}}),
    )
}

/// A refusal of a control request: HTTP status, error code, message.
pub(crate) type Refusal = (StatusCode, &'static str, String);

/// The answer that carries a [`Refusal`].
pub(crate) fn refuse((status, code, message): Refusal) -> Response {
    error(status, code, message)
}

/// A control request's JSON body, or why it is refused.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

/// The answer to any path the sandbox does not serve.
pub(crate) async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("the sandbox serves no {method} {}", uri.path()),
    )
}

/// What the log keeps of one answered request.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub account: Option<String>,
    pub command: Option<&'static str>,
    pub reference: Option<String>,
    pub rc: Option<String>,
    pub fault: Option<&'static str>,
}

impl Sandbox {
    /// Records an answered request, and traces it (never a body: bodies carry signatures
    /// and customer goods).
    pub(crate) fn seen(&self, method: &str, path: &str, status: StatusCode, seen: Seen) {
        tracing::info!(
            method,
            path,
            account = seen.account.as_deref().unwrap_or("-"),
            command = seen.command.unwrap_or("-"),
            reference = seen.reference.as_deref().unwrap_or("-"),
            rc = seen.rc.as_deref().unwrap_or("-"),
            status = status.as_u16(),
            fault = seen.fault.unwrap_or("-"),
            "sandbox request"
        );
        let record = RequestRecord {
            seq: 0,
            at: clock::rfc3339(self.now()),
            method: method.to_owned(),
            path: path.to_owned(),
            account: seen.account,
            command: seen.command.map(str::to_owned),
            reference: seen.reference,
            rc: seen.rc,
            http_status: status.as_u16(),
            fault: seen.fault.map(str::to_owned),
        };
        self.lock().log.request(record);
    }
}
