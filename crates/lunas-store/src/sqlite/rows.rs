//! Row ⇄ domain type mapping for SQLite.

use lunas_core::{
    from_millis, Attempt, Delivery, DeliveryState, Event, EventType, Observation,
    ObservationVerdict, Source, TxRecord,
};
use lunas_protocol::{State, TxKind};

pub(crate) use crate::columns::*;
use rusqlite::types::Type;
use rusqlite::Row;

fn bad(col: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

pub(crate) fn tx_from_row(r: &Row<'_>) -> rusqlite::Result<TxRecord> {
    let kind: String = r.get(3)?;
    let state: String = r.get(4)?;
    let payments: String = r.get(18)?;
    Ok(TxRecord {
        id: r.get(0)?,
        provider_id: r.get(1)?,
        reference: r.get(2)?,
        kind: TxKind::parse(&kind).ok_or_else(|| bad(3, "kind", &kind))?,
        state: State::parse(&state).ok_or_else(|| bad(4, "state", &state))?,
        needs_review: r.get(5)?,
        amount: r.get(6)?,
        product_code: r.get(7)?,
        customer_id: r.get(8)?,
        provider_transaction_id: r.get(9)?,
        order_id: r.get(10)?,
        response_code: r.get(11)?,
        message: r.get(12)?,
        serial_number: r.get(13)?,
        pin: r.get(14)?,
        activation_code: r.get(15)?,
        balance_after: r.get(16)?,
        total_paid: r.get(17)?,
        payments: serde_json::from_str(&payments)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(18, Type::Text, e.into()))?,
        created_at: from_millis(r.get(19)?),
        updated_at: from_millis(r.get(20)?),
        unconfirmed: r
            .get::<_, Option<String>>(21)?
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(21, Type::Text, e.into()))?,
        next_check_at: r.get::<_, Option<i64>>(22)?.map(from_millis),
        check_attempts: r.get(23)?,
        extra: lunas_core::TxExtra::from_column(r.get::<_, Option<String>>(24)?.as_deref())
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(24, Type::Text, e.into()))?,
    })
}

pub(crate) fn observation_from_row(r: &Row<'_>) -> rusqlite::Result<Observation> {
    let source: String = r.get(3)?;
    let verdict: String = r.get(9)?;
    Ok(Observation {
        id: r.get(0)?,
        provider_id: r.get(1)?,
        reference: r.get(2)?,
        source: Source::parse(&source).ok_or_else(|| bad(3, "source", &source))?,
        received_at: from_millis(r.get(4)?),
        content_type: r.get(5)?,
        remote_addr: r.get(6)?,
        body: r.get(7)?,
        body_size: r.get::<_, i64>(8)? as usize,
        verdict: ObservationVerdict::parse(&verdict).ok_or_else(|| bad(9, "verdict", &verdict))?,
        detail: r.get(10)?,
        body_sha256: r.get(11)?,
        repeats: r.get::<_, i64>(12)?,
        last_received_at: r.get::<_, Option<i64>>(13)?.map(from_millis),
        pruned_at: r.get::<_, Option<i64>>(14)?.map(from_millis),
    })
}

pub(crate) fn event_from_row(r: &Row<'_>) -> rusqlite::Result<Event> {
    let event_type: String = r.get(2)?;
    let data: String = r.get(5)?;
    Ok(Event {
        seq: r.get(0)?,
        id: r.get(1)?,
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| bad(2, "event type", &event_type))?,
        transaction_id: r.get(3)?,
        created_at: from_millis(r.get(4)?),
        data: serde_json::from_str(&data)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, Type::Text, e.into()))?,
    })
}

pub(crate) fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    let state: String = r.get(6)?;
    Ok(Delivery {
        id: r.get(0)?,
        event_seq: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        transaction_id: r.get(4)?,
        endpoint: r.get(5)?,
        state: DeliveryState::parse(&state).ok_or_else(|| bad(6, "delivery state", &state))?,
        attempts: r.get(7)?,
        next_attempt_at: from_millis(r.get(8)?),
        last_status: r.get::<_, Option<i64>>(9)?.map(|s| s as u16),
        last_error: r.get(10)?,
        created_at: from_millis(r.get(11)?),
        updated_at: from_millis(r.get(12)?),
        history: Vec::new(),
    })
}

pub(crate) fn attempt_from_row(r: &Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        at: from_millis(r.get(0)?),
        status: r.get::<_, Option<i64>>(1)?.map(|s| s as u16),
        latency_us: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
        response: r.get(3)?,
        error: r.get(4)?,
    })
}
