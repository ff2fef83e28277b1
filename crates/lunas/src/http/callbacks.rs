//! `POST /callbacks/{provider_id}`: the hot path.
//!
//! Order of business: find the account; check the source address; read the body within the
//! limit; verify the signature on those bytes and read the message (provider module); store the
//! observation, the transition and its events in one durable commit; only then answer the
//! provider with the acknowledgement it expects. A refused message is stored as evidence and
//! answered 4xx; it never changes a transaction. A storage failure is a 503, so the provider
//! retries.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use lunas_core::{NewObservation, ObservationVerdict, Source};
use lunas_store::{Ingest, Trust};
use time::OffsetDateTime;

use super::{ApiError, AppState};
use crate::providers::Refusal;

/// How much of a refused body is kept as evidence.
const REFUSED_BODY_CAP: usize = 4096;

pub async fn receive(
    State(app): State<AppState>,
    Path(provider_id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(provider) = app.providers.get(&provider_id) else {
        return ApiError::not_found(
            "unknown_provider",
            format!("no provider account {provider_id:?} is configured"),
        )
        .into_response();
    };
    let received_at = OffsetDateTime::now_utc();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let declared_size = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let observation =
        |body: &[u8], cap: usize, verdict: Option<ObservationVerdict>, reference, detail| {
            NewObservation {
                provider_id: provider_id.clone(),
                reference,
                source: Source::Callback,
                received_at,
                content_type: content_type.clone(),
                remote_addr: Some(peer.ip().to_string()),
                body: body[..body.len().min(cap)].to_vec(),
                body_size: if body.is_empty() {
                    declared_size
                } else {
                    body.len()
                },
                verdict,
                detail,
            }
        };

    if !provider.callback_ips.is_empty()
        && !provider
            .callback_ips
            .iter()
            .any(|net| net.contains(&peer.ip()))
    {
        // Refused before its body is read: nothing it sends is kept.
        let refusal = Refusal {
            verdict: ObservationVerdict::ForbiddenSource,
            reference: None,
            status: StatusCode::FORBIDDEN,
            code: "forbidden_source",
            message: format!(
                "{} is not an allowed callback source for {provider_id:?}",
                peer.ip()
            ),
        };
        return refuse(
            &app,
            &provider_id,
            observation(&[], 0, Some(refusal.verdict), None, None),
            refusal,
            started,
        )
        .await;
    }

    if declared_size > app.body_limit {
        app.metrics
            .callback(&provider_id, "too_large", started.elapsed());
        return too_large(app.body_limit);
    }
    let collected = tokio::time::timeout(
        app.read_timeout,
        Limited::new(body, app.body_limit).collect(),
    )
    .await;
    let Ok(collected) = collected else {
        app.metrics
            .callback(&provider_id, "timeout", started.elapsed());
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {} ms",
                app.read_timeout.as_millis()
            ),
        )
        .into_response();
    };
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            app.metrics
                .callback(&provider_id, "too_large", started.elapsed());
            return too_large(app.body_limit);
        }
        Err(e) => {
            return ApiError::bad_request(
                "unreadable_body",
                format!("the request body could not be read: {e}"),
            )
            .into_response()
        }
    };

    let verified = match provider.provider.verify_callback(&headers, &bytes) {
        Ok(v) => v,
        Err(refusal) => {
            let obs = observation(
                &bytes,
                REFUSED_BODY_CAP,
                Some(refusal.verdict),
                refusal.reference.clone(),
                Some(refusal.message.clone()),
            );
            return refuse(&app, &provider_id, obs, refusal, started).await;
        }
    };
    let reference = verified.fact.reference.clone();
    // A message that contradicts itself is kept and flags its transaction, but is not
    // acknowledged as accepted.
    let contradiction = match &verified.fact.basis {
        lunas_core::Basis::Contradictory(why) => Some(("contradictory_message", why.clone())),
        lunas_core::Basis::Unrecognized(why) => Some(("unrecognized_status", why.clone())),
        _ => None,
    };
    let obs = observation(
        &bytes,
        usize::MAX,
        None,
        Some(reference.clone()),
        verified.note.clone(),
    );
    match app
        .store
        .ingest(Ingest {
            observation: obs,
            fact: Some(verified.fact),
            trust: if provider.confirm_callbacks {
                Trust::NeedsConfirmation
            } else {
                Trust::Authoritative
            },
            check_after: Some(provider.reconcile.first_check_after),
            low_balance: provider.low_balance,
        })
        .await
    {
        Ok(done) => {
            app.metrics
                .callback(&provider_id, done.verdict.as_str(), started.elapsed());
            app.metrics.events(&done.events);
            if !done.events.is_empty() {
                app.wake.notify_one();
            }
            if done.verdict == ObservationVerdict::Unconfirmed {
                // The claim is checked at once, not on the next tick.
                app.check_wake.notify_one();
            }
            tracing::info!(
                provider = %provider_id,
                reference = %reference,
                format = verified.format,
                verdict = done.verdict.as_str(),
                state = done.record.as_ref().map(|r| r.state.as_str()).unwrap_or("-"),
                events = done.events.len(),
                micros = started.elapsed().as_micros() as u64,
                "callback committed"
            );
            if let Some((code, why)) = contradiction {
                let said = if code == "unrecognized_status" {
                    format!("the message states what lunas does not know ({why})")
                } else {
                    format!("the message contradicts itself ({why})")
                };
                return ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    code,
                    format!("{said}; it was kept as evidence and changed nothing"),
                )
                .into_response();
            }
            let ack = verified.ack;
            (
                StatusCode::from_u16(ack.status).unwrap_or(StatusCode::OK),
                [(header::CONTENT_TYPE, ack.content_type)],
                ack.body,
            )
                .into_response()
        }
        Err(e) => {
            app.metrics
                .callback(&provider_id, "storage_unavailable", started.elapsed());
            tracing::warn!(provider = %provider_id, reference = %reference, error = %e, "callback not committed");
            ApiError::from(e).into_response()
        }
    }
}

/// Answers a refused message. Refusals are evidence of a misconfiguration or an attack, so a
/// sample is kept and logged — a few per minute per account and kind of refusal — and every
/// one is counted in `lunas_callbacks_total`; a flood of them cannot fill the disk or the log.
async fn refuse(
    app: &AppState,
    provider_id: &str,
    obs: NewObservation,
    refusal: Refusal,
    started: Instant,
) -> Response {
    let key = format!("{provider_id}\n{}", refusal.verdict.as_str());
    if app.refusals.allow(&key, obs.received_at) {
        tracing::warn!(
            provider = %provider_id,
            reference = refusal.reference.as_deref().unwrap_or("-"),
            remote = obs.remote_addr.as_deref().unwrap_or("-"),
            code = refusal.code,
            "callback refused (a sample of such refusals is kept as evidence; all are counted)"
        );
        if let Err(e) = app.store.ingest(Ingest::refused(obs)).await {
            tracing::warn!(provider = %provider_id, error = %e, "refused callback could not be kept as evidence");
        }
    }
    app.metrics
        .callback(provider_id, refusal.verdict.as_str(), started.elapsed());
    ApiError::new(refusal.status, refusal.code, refusal.message).into_response()
}

use super::serve::too_large;
