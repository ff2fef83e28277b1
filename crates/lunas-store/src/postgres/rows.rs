//! Row ⇄ domain type mapping for PostgreSQL. The column lists are the SQLite ones, so both
//! backends read the same shapes.

use lunas_core::{
    from_millis, Attempt, Delivery, DeliveryState, Event, EventType, Observation,
    ObservationVerdict, Source, TxRecord,
};
use lunas_protocol::{State, TxKind};

pub(crate) use crate::columns::*;
use sqlx::postgres::PgRow;
use sqlx::Row;

fn bad(col: usize, what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: format!("unknown {what} {value:?}").into(),
    }
}

fn json<T: serde::de::DeserializeOwned>(col: usize, text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: e.into(),
    })
}

pub(crate) fn tx_from_row(r: &PgRow) -> Result<TxRecord, sqlx::Error> {
    let kind: String = r.try_get(3)?;
    let state: String = r.try_get(4)?;
    let payments: String = r.try_get(18)?;
    let unconfirmed: Option<String> = r.try_get(21)?;
    Ok(TxRecord {
        id: r.try_get(0)?,
        provider_id: r.try_get(1)?,
        reference: r.try_get(2)?,
        kind: TxKind::parse(&kind).ok_or_else(|| bad(3, "kind", &kind))?,
        state: State::parse(&state).ok_or_else(|| bad(4, "state", &state))?,
        needs_review: r.try_get(5)?,
        amount: r.try_get(6)?,
        product_code: r.try_get(7)?,
        customer_id: r.try_get(8)?,
        provider_transaction_id: r.try_get(9)?,
        order_id: r.try_get(10)?,
        response_code: r.try_get(11)?,
        message: r.try_get(12)?,
        serial_number: r.try_get(13)?,
        pin: r.try_get(14)?,
        activation_code: r.try_get(15)?,
        balance_after: r.try_get(16)?,
        total_paid: r.try_get(17)?,
        payments: json(18, &payments)?,
        created_at: from_millis(r.try_get(19)?),
        updated_at: from_millis(r.try_get(20)?),
        unconfirmed: unconfirmed.map(|s| json(21, &s)).transpose()?,
        next_check_at: r.try_get::<Option<i64>, _>(22)?.map(from_millis),
        check_attempts: r.try_get(23)?,
        extra: lunas_core::TxExtra::from_column(r.try_get::<Option<String>, _>(24)?.as_deref())
            .map_err(|e| sqlx::Error::ColumnDecode {
                index: "24".into(),
                source: e.into(),
            })?,
    })
}

pub(crate) fn observation_from_row(r: &PgRow) -> Result<Observation, sqlx::Error> {
    let source: String = r.try_get(3)?;
    let verdict: String = r.try_get(9)?;
    Ok(Observation {
        id: r.try_get(0)?,
        provider_id: r.try_get(1)?,
        reference: r.try_get(2)?,
        source: Source::parse(&source).ok_or_else(|| bad(3, "source", &source))?,
        received_at: from_millis(r.try_get(4)?),
        content_type: r.try_get(5)?,
        remote_addr: r.try_get(6)?,
        body: r.try_get(7)?,
        body_size: r.try_get::<i64, _>(8)? as usize,
        verdict: ObservationVerdict::parse(&verdict).ok_or_else(|| bad(9, "verdict", &verdict))?,
        detail: r.try_get(10)?,
        body_sha256: r.try_get(11)?,
        repeats: r.try_get::<i64, _>(12)?,
        last_received_at: r.try_get::<Option<i64>, _>(13)?.map(from_millis),
        pruned_at: r.try_get::<Option<i64>, _>(14)?.map(from_millis),
    })
}

pub(crate) fn event_from_row(r: &PgRow) -> Result<Event, sqlx::Error> {
    let event_type: String = r.try_get(2)?;
    let data: String = r.try_get(5)?;
    Ok(Event {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| bad(2, "event type", &event_type))?,
        transaction_id: r.try_get(3)?,
        created_at: from_millis(r.try_get(4)?),
        data: json(5, &data)?,
    })
}

pub(crate) fn delivery_from_row(r: &PgRow) -> Result<Delivery, sqlx::Error> {
    let state: String = r.try_get(6)?;
    Ok(Delivery {
        id: r.try_get(0)?,
        event_seq: r.try_get(1)?,
        event_id: r.try_get(2)?,
        event_type: r.try_get(3)?,
        transaction_id: r.try_get(4)?,
        endpoint: r.try_get(5)?,
        state: DeliveryState::parse(&state).ok_or_else(|| bad(6, "delivery state", &state))?,
        attempts: r.try_get(7)?,
        next_attempt_at: from_millis(r.try_get(8)?),
        last_status: r.try_get::<Option<i64>, _>(9)?.map(|s| s as u16),
        last_error: r.try_get(10)?,
        created_at: from_millis(r.try_get(11)?),
        updated_at: from_millis(r.try_get(12)?),
        history: Vec::new(),
    })
}

pub(crate) fn attempt_from_row(r: &PgRow) -> Result<Attempt, sqlx::Error> {
    Ok(Attempt {
        at: from_millis(r.try_get(0)?),
        status: r.try_get::<Option<i64>, _>(1)?.map(|s| s as u16),
        latency_us: r.try_get::<Option<i64>, _>(2)?.unwrap_or(0),
        response: r.try_get(3)?,
        error: r.try_get(4)?,
    })
}
