//! The delivery queue in SQLite: fan-out from the event feed, leased claims that keep each
//! transaction's events in order per endpoint, attempts, redelivery.

use lunas_core::{event_matches, to_millis};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::rows::{event_from_row, EVENT_COLUMNS};
use crate::model::*;

pub(crate) fn init_endpoints(c: &Connection, endpoints: &[EndpointFilter]) -> rusqlite::Result<()> {
    let max: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    for e in endpoints {
        c.prepare_cached(
            "INSERT OR IGNORE INTO endpoint_cursors (endpoint, last_seq) VALUES (?1, ?2)",
        )?
        .execute(params![e.id, max])?;
    }
    Ok(())
}

pub(crate) fn fan_out(
    c: &Connection,
    endpoints: &[EndpointFilter],
    now: i64,
    limit: usize,
) -> rusqlite::Result<usize> {
    let mut created = 0;
    for e in endpoints {
        let cursor: i64 = c
            .prepare_cached("SELECT last_seq FROM endpoint_cursors WHERE endpoint = ?1")?
            .query_row([&e.id], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let rows: Vec<(i64, String, Option<i64>)> = c
            .prepare_cached(
                "SELECT seq, type, transaction_id FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![cursor, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last().map(|r| r.0) else {
            continue;
        };
        for (seq, event_type, tx) in &rows {
            if event_matches(&e.events, event_type) {
                created += c
                    .prepare_cached(
                        "INSERT OR IGNORE INTO deliveries (event_seq, transaction_id, endpoint, state, attempts, \
                         next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4)",
                    )?
                    .execute(params![seq, tx, e.id, now])?;
            }
        }
        c.prepare_cached(
            "INSERT INTO endpoint_cursors (endpoint, last_seq) VALUES (?1, ?2) \
             ON CONFLICT (endpoint) DO UPDATE SET last_seq = excluded.last_seq",
        )?
        .execute(params![e.id, last])?;
    }
    Ok(created)
}

pub(crate) fn claim(
    c: &Connection,
    now: i64,
    lease_ms: i64,
    limit: usize,
    endpoints: &[String],
    past_dead: bool,
) -> rusqlite::Result<Vec<DeliveryJob>> {
    let mut sql = String::from(
        "SELECT d.id, d.endpoint, d.attempts, e.seq FROM deliveries d JOIN events e ON e.seq = d.event_seq \
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 AND (d.lease_until IS NULL OR d.lease_until <= ?1) \
         AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.endpoint = d.endpoint \
             AND p.transaction_id = d.transaction_id AND p.event_seq < d.event_seq AND p.state <> 'delivered' \
             AND NOT (?2 AND p.state = 'dead'))",
    );
    let mut args: Vec<rusqlite::types::Value> = vec![now.into(), past_dead.into()];
    let marks: Vec<String> = (0..endpoints.len())
        .map(|i| format!("?{}", i + 3))
        .collect();
    sql.push_str(&format!(" AND d.endpoint IN ({})", marks.join(", ")));
    args.extend(
        endpoints
            .iter()
            .map(|e| rusqlite::types::Value::from(e.clone())),
    );
    sql.push_str(&format!(
        " ORDER BY d.next_attempt_at, d.id LIMIT {}",
        limit.max(1)
    ));
    let picked: Vec<(i64, String, i64, i64)> = c
        .prepare(&sql)?
        .query_map(params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut jobs = Vec::with_capacity(picked.len());
    for (id, endpoint, attempts, seq) in picked {
        c.prepare_cached("UPDATE deliveries SET lease_until = ?1 WHERE id = ?2")?
            .execute(params![now + lease_ms, id])?;
        let event = c
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"
            ))?
            .query_row([seq], event_from_row)?;
        jobs.push(DeliveryJob {
            delivery_id: id,
            endpoint,
            attempts,
            event,
        });
    }
    Ok(jobs)
}

pub(crate) fn record_attempt(c: &Connection, r: &AttemptRecord) -> rusqlite::Result<()> {
    let a = &r.attempt;
    let at = to_millis(a.at);
    c.prepare_cached(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status, latency_ms, latency_us, response, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![r.delivery_id, at, a.status.map(i64::from), a.latency_us / 1000, a.latency_us, a.response, a.error])?;
    let (state, next) = match r.next {
        AttemptNext::Delivered => ("delivered", at),
        AttemptNext::RetryAt(t) => ("pending", to_millis(t)),
        AttemptNext::Dead => ("dead", at),
    };
    c.prepare_cached(
        "UPDATE deliveries SET state = ?1, attempts = attempts + 1, next_attempt_at = ?2, lease_until = NULL, \
         last_status = ?3, last_error = ?4, updated_at = ?5 WHERE id = ?6",
    )?
    .execute(params![state, next, a.status.map(i64::from), a.error, at, r.delivery_id])?;
    Ok(())
}

/// Queues one event again for every endpoint whose filters match it.
fn requeue_event(
    c: &Connection,
    seq: i64,
    endpoints: &[EndpointFilter],
    now: i64,
) -> rusqlite::Result<usize> {
    let (event_type, tx): (String, Option<i64>) = c
        .prepare_cached("SELECT type, transaction_id FROM events WHERE seq = ?1")?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut n = 0;
    for e in endpoints
        .iter()
        .filter(|e| event_matches(&e.events, &event_type))
    {
        n += c
            .prepare_cached(
                "INSERT INTO deliveries (event_seq, transaction_id, endpoint, state, attempts, next_attempt_at, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4) \
                 ON CONFLICT (event_seq, endpoint) DO UPDATE SET state = 'pending', attempts = 0, \
                 next_attempt_at = ?4, lease_until = NULL, updated_at = ?4",
            )?
            .execute(params![seq, tx, e.id, now])?;
    }
    Ok(n)
}

pub(crate) fn redeliver(
    c: &Connection,
    what: &Redeliver,
    endpoints: &[EndpointFilter],
    now: i64,
) -> rusqlite::Result<usize> {
    match what {
        Redeliver::Event(id) => {
            let seq: Option<i64> = c
                .prepare_cached("SELECT seq FROM events WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            match seq {
                Some(seq) => requeue_event(c, seq, endpoints, now),
                None => Ok(0),
            }
        }
        Redeliver::Transaction(tx) => {
            let seqs: Vec<i64> = c
                .prepare_cached("SELECT seq FROM events WHERE transaction_id = ?1 ORDER BY seq")?
                .query_map([tx], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut n = 0;
            for seq in seqs {
                n += requeue_event(c, seq, endpoints, now)?;
            }
            Ok(n)
        }
        Redeliver::Dead { since, until, endpoint } => c
            .prepare_cached(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?1, lease_until = NULL, \
                 updated_at = ?1 WHERE state = 'dead' \
                 AND (?2 IS NULL OR endpoint = ?2) \
                 AND event_seq IN (SELECT seq FROM events WHERE (?3 IS NULL OR created_at >= ?3) \
                                   AND (?4 IS NULL OR created_at < ?4))",
            )?
            .execute(params![now, endpoint, since.map(to_millis), until.map(to_millis)]),
    }
}
