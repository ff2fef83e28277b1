-- Dashboard sessions: random ids, kept only as SHA-256 digests, each with an expiry; logging
-- out deletes the row, so a copied cookie stops working on every node at once.
CREATE TABLE sessions (
    id_digest   TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    remote_addr TEXT
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Readiness writes here: ready means a write could be committed just now.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at BIGINT NOT NULL
);

-- Bounded evidence: a repeated message is counted on the observation it repeats (repeats,
-- last_received_at) instead of stored again; the body's digest stays when retention erases
-- the body itself (pruned_at).
ALTER TABLE observations ADD COLUMN body_sha256 TEXT;
ALTER TABLE observations ADD COLUMN repeats BIGINT NOT NULL DEFAULT 0;
ALTER TABLE observations ADD COLUMN last_received_at BIGINT;
ALTER TABLE observations ADD COLUMN pruned_at BIGINT;
CREATE INDEX observations_received ON observations (received_at);
