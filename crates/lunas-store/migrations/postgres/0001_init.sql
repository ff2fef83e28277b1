-- The PostgreSQL schema: the same tables and columns as the SQLite one (times are BIGINT
-- milliseconds since the Unix epoch, JSON is TEXT so event bodies keep their bytes), plus the
-- lease columns that let several nodes share the work.

-- Transactions: one row per (provider account, ref).
CREATE TABLE transactions (
    id                      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider_id             TEXT    NOT NULL,
    ref                     TEXT    NOT NULL,
    kind                    TEXT    NOT NULL,
    state                   TEXT    NOT NULL,
    needs_review            BOOLEAN NOT NULL DEFAULT false,
    amount                  BIGINT,
    product_code            TEXT,
    customer_id             TEXT,
    provider_transaction_id TEXT,
    order_id                TEXT,
    response_code           TEXT,
    message                 TEXT,
    serial_number           TEXT,
    pin                     TEXT,
    activation_code         TEXT,
    balance_after           BIGINT,
    total_paid              BIGINT,
    payments                TEXT    NOT NULL DEFAULT '[]',
    created_at              BIGINT  NOT NULL,
    updated_at              BIGINT  NOT NULL,
    -- Reconciliation: when to ask the provider next, who is asking (a lease), a held claim.
    next_check_at           BIGINT,
    check_attempts          BIGINT  NOT NULL DEFAULT 0,
    check_lease_until       BIGINT,
    unconfirmed             TEXT,
    UNIQUE (provider_id, ref)
);
CREATE INDEX transactions_state ON transactions (state, id);
CREATE INDEX transactions_review ON transactions (needs_review, id);
CREATE INDEX transactions_customer ON transactions (customer_id);
CREATE INDEX transactions_created ON transactions (created_at);
-- Only transactions with a check scheduled are indexed: a reconciler tick costs in proportion
-- to the due work, not to the table.
CREATE INDEX transactions_due ON transactions (provider_id, next_check_at) WHERE next_check_at IS NOT NULL;

-- Observations: every callback received and every status check made, append-only.
CREATE TABLE observations (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider_id    TEXT   NOT NULL,
    ref            TEXT,
    transaction_id BIGINT REFERENCES transactions (id),
    source         TEXT   NOT NULL,
    received_at    BIGINT NOT NULL,
    content_type   TEXT,
    remote_addr    TEXT,
    body           BYTEA  NOT NULL,
    body_size      BIGINT NOT NULL,
    verdict        TEXT   NOT NULL,
    detail         TEXT
);
CREATE INDEX observations_transaction ON observations (transaction_id, id);

-- Events: the transactional outbox. seq is the feed cursor; rows are only ever inserted while
-- the writer holds the feed lock (an advisory lock held to commit), so seq order is commit
-- order and a reader never sees seq N+1 before seq N. Provider-level events (a low deposit
-- balance) have no transaction.
CREATE TABLE events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT   NOT NULL UNIQUE,
    transaction_id BIGINT REFERENCES transactions (id),
    type           TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    data           TEXT   NOT NULL
);
CREATE INDEX events_transaction ON events (transaction_id, seq);
CREATE INDEX events_created ON events (created_at);

-- Provider health counters, kept current by every ingest.
CREATE TABLE provider_stats (
    provider_id      TEXT   PRIMARY KEY,
    callbacks        BIGINT NOT NULL DEFAULT 0,
    rejected         BIGINT NOT NULL DEFAULT 0,
    bad_signatures   BIGINT NOT NULL DEFAULT 0,
    last_callback_at BIGINT,
    last_balance     BIGINT,
    last_balance_at  BIGINT
);

-- Deliveries: one row per (event, endpoint); the durable retry queue.
CREATE TABLE deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq       BIGINT NOT NULL REFERENCES events (seq),
    transaction_id  BIGINT REFERENCES transactions (id),   -- NULL for provider-level events
    endpoint        TEXT   NOT NULL,
    state           TEXT   NOT NULL,           -- pending | delivered | dead
    attempts        BIGINT NOT NULL DEFAULT 0, -- attempts in the current schedule
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (event_seq, endpoint)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_order ON deliveries (endpoint, transaction_id, event_seq);
CREATE INDEX deliveries_transaction ON deliveries (transaction_id);
CREATE INDEX deliveries_state ON deliveries (state, id);

-- Every attempt, for the timeline and the dashboard.
CREATE TABLE delivery_attempts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES deliveries (id),
    attempted_at BIGINT NOT NULL,
    status       BIGINT,
    latency_ms   BIGINT NOT NULL,
    response     TEXT,
    error        TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

-- How far each endpoint's fan-out has read the event feed.
CREATE TABLE endpoint_cursors (
    endpoint TEXT   PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

-- Deposit balances as the providers report them, for the balance chart and low-balance alerts.
CREATE TABLE balance_samples (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider_id TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    balance     BIGINT NOT NULL
);
CREATE INDEX balance_samples_provider ON balance_samples (provider_id, at);
