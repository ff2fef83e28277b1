-- Deposit balances as the providers report them, for the balance chart and low-balance alerts.
CREATE TABLE balance_samples (
    id          INTEGER PRIMARY KEY,
    provider_id TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    balance     INTEGER NOT NULL
);
CREATE INDEX balance_samples_provider ON balance_samples (provider_id, at);
