-- Transactions: one row per (provider account, ref).
CREATE TABLE transactions (
    id                      INTEGER PRIMARY KEY,
    provider_id             TEXT    NOT NULL,
    ref                     TEXT    NOT NULL,
    kind                    TEXT    NOT NULL,
    state                   TEXT    NOT NULL,
    needs_review            INTEGER NOT NULL DEFAULT 0,
    amount                  INTEGER,
    product_code            TEXT,
    customer_id             TEXT,
    provider_transaction_id TEXT,
    order_id                TEXT,
    response_code           TEXT,
    message                 TEXT,
    serial_number           TEXT,
    pin                     TEXT,
    activation_code         TEXT,
    balance_after           INTEGER,
    total_paid              INTEGER,
    payments                TEXT    NOT NULL DEFAULT '[]',
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    UNIQUE (provider_id, ref)
);
CREATE INDEX transactions_state ON transactions (state, id);
CREATE INDEX transactions_review ON transactions (needs_review, id);
CREATE INDEX transactions_customer ON transactions (customer_id);

-- Observations: every callback received and every status check made, append-only.
CREATE TABLE observations (
    id             INTEGER PRIMARY KEY,
    provider_id    TEXT    NOT NULL,
    ref            TEXT,
    transaction_id INTEGER REFERENCES transactions (id),
    source         TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    content_type   TEXT,
    remote_addr    TEXT,
    body           BLOB    NOT NULL,
    body_size      INTEGER NOT NULL,
    verdict        TEXT    NOT NULL,
    detail         TEXT
);
CREATE INDEX observations_transaction ON observations (transaction_id, id);

-- Events: the transactional outbox. seq is the feed cursor. Provider-level events (a low
-- deposit balance) have no transaction.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE,
    transaction_id INTEGER REFERENCES transactions (id),
    type           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    data           TEXT    NOT NULL
);
CREATE INDEX events_transaction ON events (transaction_id, seq);

-- Provider health counters, kept current by every ingest.
CREATE TABLE provider_stats (
    provider_id      TEXT PRIMARY KEY,
    callbacks        INTEGER NOT NULL DEFAULT 0,
    rejected         INTEGER NOT NULL DEFAULT 0,
    bad_signatures   INTEGER NOT NULL DEFAULT 0,
    last_callback_at INTEGER,
    last_balance     INTEGER,
    last_balance_at  INTEGER
);
