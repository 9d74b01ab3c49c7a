-- SPDX-License-Identifier: Apache-2.0
-- 0002_audit (SQLite): the tamper-evident audit trail, daily usage roll-ups, and per-key rate
-- limits, grace periods and last use. Keep in step with migrations/postgres/0002_audit.sql.

-- One row per event; line is the exact NDJSON text that was hashed (docs/audit.md). The other
-- columns are copies for filtering and never trusted for verification.
CREATE TABLE audit_events (
    chain_id  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    time_ms   INTEGER NOT NULL,
    app       TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    op        TEXT NOT NULL,
    keyring   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    status    INTEGER NOT NULL,
    hash      BLOB NOT NULL,
    line      TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq)
) STRICT;

CREATE INDEX audit_events_by_time ON audit_events (time_ms);

-- Signed checkpoints (periodic, export, anchor, key_change), each the exact line.
CREATE TABLE audit_checkpoints (
    chain_id  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    time_ms   INTEGER NOT NULL,
    line      TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq, kind, time_ms)
) STRICT;

-- Daily roll-ups, kept when old events are pruned. day is YYYY-MM-DD (UTC).
CREATE TABLE usage_daily (
    day      TEXT NOT NULL,
    app      TEXT NOT NULL,
    op       TEXT NOT NULL,
    keyring  TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (day, app, op, keyring, outcome)
) STRICT;

-- API keys: requests per second and burst (0 = unlimited); a rotated key keeps working until
-- grace_until; last_used_at is flushed from memory now and then (not per request).
ALTER TABLE api_keys ADD COLUMN rate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN burst INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN grace_until INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
