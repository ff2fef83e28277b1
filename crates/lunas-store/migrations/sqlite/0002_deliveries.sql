-- Deliveries: one row per (event, endpoint); the durable retry queue.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    event_seq       INTEGER NOT NULL REFERENCES events (seq),
    transaction_id  INTEGER REFERENCES transactions (id),   -- NULL for provider-level events
    endpoint        TEXT    NOT NULL,
    state           TEXT    NOT NULL,           -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0, -- attempts in the current schedule
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (event_seq, endpoint)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_order ON deliveries (endpoint, transaction_id, event_seq);
CREATE INDEX deliveries_transaction ON deliveries (transaction_id);

-- Every attempt, for the timeline and the dashboard.
CREATE TABLE delivery_attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries (id),
    attempted_at INTEGER NOT NULL,
    status       INTEGER,
    latency_ms   INTEGER NOT NULL,
    response     TEXT,
    error        TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

-- How far each endpoint's fan-out has read the event feed.
CREATE TABLE endpoint_cursors (
    endpoint TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
