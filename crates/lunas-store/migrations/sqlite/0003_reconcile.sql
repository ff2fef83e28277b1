-- Reconciliation: when to ask the provider next, who is asking, and a held callback claim.
ALTER TABLE transactions ADD COLUMN next_check_at INTEGER;
ALTER TABLE transactions ADD COLUMN check_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN check_lease_until INTEGER;
ALTER TABLE transactions ADD COLUMN unconfirmed TEXT;
-- Only transactions with a check scheduled are indexed: a reconciler tick costs in proportion
-- to the due work, not to the table.
CREATE INDEX transactions_due ON transactions (next_check_at) WHERE next_check_at IS NOT NULL;
