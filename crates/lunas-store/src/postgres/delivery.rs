//! The delivery queue in PostgreSQL: fan-out from the event feed (a cursor row per endpoint,
//! locked while one node fans it out), leased claims that keep each transaction's events in
//! order per endpoint whichever node claims them, attempts, redelivery.

use std::collections::HashMap;

use lunas_core::{event_matches, to_millis};
use sqlx::{PgConnection, Row};

use super::rows::{event_from_row, EVENT_COLUMNS};
use crate::model::*;

pub(crate) async fn init_endpoints(
    c: &mut PgConnection,
    endpoints: &[EndpointFilter],
) -> Result<(), sqlx::Error> {
    let max: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0)::bigint FROM events")
        .fetch_one(&mut *c)
        .await?;
    for e in endpoints {
        sqlx::query(
            "INSERT INTO endpoint_cursors (endpoint, last_seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&e.id)
        .bind(max)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Creates the deliveries of the events each endpoint has not seen yet. An endpoint whose
/// cursor another node is advancing right now is skipped (that node is doing the work), so
/// fan-out never waits and never creates a delivery twice. Events become visible in `seq`
/// order (see the writer's feed lock), so a cursor never passes an event not yet committed.
pub(crate) async fn fan_out(
    c: &mut PgConnection,
    endpoints: &[EndpointFilter],
    now: i64,
    limit: usize,
) -> Result<usize, sqlx::Error> {
    let mut sorted: Vec<&EndpointFilter> = endpoints.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut created = 0;
    for e in sorted {
        sqlx::query(
            "INSERT INTO endpoint_cursors (endpoint, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        )
        .bind(&e.id)
        .execute(&mut *c)
        .await?;
        let cursor: Option<i64> = sqlx::query_scalar(
            "SELECT last_seq FROM endpoint_cursors WHERE endpoint = $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(&e.id)
        .fetch_optional(&mut *c)
        .await?;
        let Some(cursor) = cursor else {
            continue;
        };
        let rows = sqlx::query(
            "SELECT seq, type, transaction_id FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(cursor)
        .bind(limit.max(1) as i64)
        .fetch_all(&mut *c)
        .await?;
        let Some(last) = rows.last().map(|r| r.try_get::<i64, _>(0)).transpose()? else {
            continue;
        };
        let mut seqs = Vec::new();
        let mut txs: Vec<Option<i64>> = Vec::new();
        for r in &rows {
            let event_type: String = r.try_get(1)?;
            if event_matches(&e.events, &event_type) {
                seqs.push(r.try_get::<i64, _>(0)?);
                txs.push(r.try_get(2)?);
            }
        }
        if !seqs.is_empty() {
            created += sqlx::query(
                "INSERT INTO deliveries (event_seq, transaction_id, endpoint, state, attempts, next_attempt_at, \
                 created_at, updated_at) \
                 SELECT s, t, $3, 'pending', 0, $4, $4, $4 FROM UNNEST($1::bigint[], $2::bigint[]) AS u (s, t) \
                 ON CONFLICT (event_seq, endpoint) DO NOTHING",
            )
            .bind(&seqs)
            .bind(&txs)
            .bind(&e.id)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected() as usize;
        }
        sqlx::query("UPDATE endpoint_cursors SET last_seq = $2 WHERE endpoint = $1")
            .bind(&e.id)
            .bind(last)
            .execute(&mut *c)
            .await?;
    }
    Ok(created)
}

/// Leases up to `limit` due deliveries to `endpoints`.
///
/// Order per transaction and endpoint across nodes: a delivery is eligible only when no
/// earlier event of its transaction is undelivered to the same endpoint. That test reads the
/// earlier delivery rows plainly (not through `SKIP LOCKED`), so an earlier delivery that
/// another node holds — claimed, or being recorded — still counts as undelivered until its
/// `delivered` state is committed; only the candidate rows themselves are taken with
/// `FOR UPDATE SKIP LOCKED`. Two nodes therefore can never hold two events of one transaction
/// for one endpoint at once.
pub(crate) async fn claim(
    c: &mut PgConnection,
    now: i64,
    lease_ms: i64,
    limit: usize,
    endpoints: &[String],
    past_dead: bool,
) -> Result<Vec<DeliveryJob>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE deliveries SET lease_until = $2 \
         FROM (SELECT d.id AS picked_id FROM deliveries d \
               WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
               AND (d.lease_until IS NULL OR d.lease_until <= $1) AND d.endpoint = ANY($3) \
               AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.endpoint = d.endpoint \
                   AND p.transaction_id = d.transaction_id AND p.event_seq < d.event_seq \
                   AND p.state <> 'delivered' AND NOT ($5 AND p.state = 'dead')) \
               ORDER BY d.next_attempt_at, d.id LIMIT $4 FOR UPDATE SKIP LOCKED) picked \
         WHERE id = picked.picked_id \
         RETURNING id, endpoint, attempts, event_seq, next_attempt_at",
    )
    .bind(now)
    .bind(now + lease_ms)
    .bind(endpoints)
    .bind(limit.max(1) as i64)
    .bind(past_dead)
    .fetch_all(&mut *c)
    .await?;
    let mut picked = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<i64, _>(4)?,
                r.try_get::<i64, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<i64, _>(2)?,
                r.try_get::<i64, _>(3)?,
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    picked.sort();
    let seqs: Vec<i64> = picked.iter().map(|p| p.4).collect();
    let events: HashMap<i64, Event> = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ANY($1)"
    ))
    .bind(&seqs)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| event_from_row(r).map(|e| (e.seq, e)))
    .collect::<Result<_, _>>()?;
    picked
        .into_iter()
        .map(|(_, id, endpoint, attempts, seq)| {
            let event = events.get(&seq).cloned().ok_or(sqlx::Error::RowNotFound)?;
            Ok(DeliveryJob {
                delivery_id: id,
                endpoint,
                attempts,
                event,
            })
        })
        .collect()
}

pub(crate) async fn record_attempt(
    c: &mut PgConnection,
    r: &AttemptRecord,
) -> Result<(), sqlx::Error> {
    let a = &r.attempt;
    let at = to_millis(a.at);
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status, latency_ms, latency_us, response, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.delivery_id)
    .bind(at)
    .bind(a.status.map(i64::from))
    .bind(a.latency_us / 1000)
    .bind(a.latency_us)
    .bind(&a.response)
    .bind(&a.error)
    .execute(&mut *c)
    .await?;
    let (state, next) = match r.next {
        AttemptNext::Delivered => ("delivered", at),
        AttemptNext::RetryAt(t) => ("pending", to_millis(t)),
        AttemptNext::Dead => ("dead", at),
    };
    sqlx::query(
        "UPDATE deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, lease_until = NULL, \
         last_status = $3, last_error = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(state)
    .bind(next)
    .bind(a.status.map(i64::from))
    .bind(&a.error)
    .bind(at)
    .bind(r.delivery_id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Queues one event again for every endpoint whose filters match it.
async fn requeue_event(
    c: &mut PgConnection,
    seq: i64,
    endpoints: &[EndpointFilter],
    now: i64,
) -> Result<usize, sqlx::Error> {
    let row = sqlx::query("SELECT type, transaction_id FROM events WHERE seq = $1")
        .bind(seq)
        .fetch_one(&mut *c)
        .await?;
    let event_type: String = row.try_get(0)?;
    let tx: Option<i64> = row.try_get(1)?;
    let mut n = 0;
    for e in endpoints
        .iter()
        .filter(|e| event_matches(&e.events, &event_type))
    {
        n += sqlx::query(
            "INSERT INTO deliveries (event_seq, transaction_id, endpoint, state, attempts, next_attempt_at, \
             created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) \
             ON CONFLICT (event_seq, endpoint) DO UPDATE SET state = 'pending', attempts = 0, \
             next_attempt_at = $4, lease_until = NULL, updated_at = $4",
        )
        .bind(seq)
        .bind(tx)
        .bind(&e.id)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected() as usize;
    }
    Ok(n)
}

pub(crate) async fn redeliver(
    c: &mut PgConnection,
    what: &Redeliver,
    endpoints: &[EndpointFilter],
    now: i64,
) -> Result<usize, sqlx::Error> {
    match what {
        Redeliver::Event(id) => {
            let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?;
            match seq {
                Some(seq) => requeue_event(c, seq, endpoints, now).await,
                None => Ok(0),
            }
        }
        Redeliver::Transaction(tx) => {
            let seqs: Vec<i64> = sqlx::query_scalar(
                "SELECT seq FROM events WHERE transaction_id = $1 ORDER BY seq",
            )
            .bind(tx)
            .fetch_all(&mut *c)
            .await?;
            let mut n = 0;
            for seq in seqs {
                n += requeue_event(c, seq, endpoints, now).await?;
            }
            Ok(n)
        }
        Redeliver::Dead {
            since,
            until,
            endpoint,
        } => Ok(sqlx::query(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL, \
             updated_at = $1 WHERE state = 'dead' \
             AND ($2::text IS NULL OR endpoint = $2) \
             AND event_seq IN (SELECT seq FROM events WHERE ($3::bigint IS NULL OR created_at >= $3) \
                               AND ($4::bigint IS NULL OR created_at < $4))",
        )
        .bind(now)
        .bind(endpoint)
        .bind(since.map(to_millis))
        .bind(until.map(to_millis))
        .execute(&mut *c)
        .await?
        .rows_affected() as usize),
    }
}
