-- SPDX-License-Identifier: Apache-2.0
-- 0001_init (SQLite): the initial schema. Forward-only: never edit it once released; add
-- 0002_what.sql instead. The runner (server/store/store_sqlite_db.c) wraps this file in one
-- BEGIN IMMEDIATE transaction and records it in schema_version, so it must not contain BEGIN or
-- COMMIT itself. Keep in step with migrations/postgres/0001_init.sql (tests/unit/store compares
-- table, column and index names).
-- Timestamps are unix seconds. MACs and wrapped keys are computed by the server; this schema only
-- stores them. Tables are STRICT so a stray text value cannot sneak into an INTEGER or BLOB column.

CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  INTEGER NOT NULL
) STRICT;

-- Small settings: node id, init marker.
CREATE TABLE meta (
    key    TEXT NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;

-- Random service keys (row MAC, API-key hash, audit), wrapped by the root key.
CREATE TABLE service_keys (
    purpose      TEXT NOT NULL PRIMARY KEY,
    root_key_id  TEXT NOT NULL,
    wrapped      BLOB NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- AUTOINCREMENT: ids of deleted (crypto-shredded) keyrings are never handed out again.
CREATE TABLE keyrings (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    name                    TEXT NOT NULL UNIQUE,
    algorithm               TEXT NOT NULL,
    deterministic           INTEGER NOT NULL,
    rotation_period         INTEGER NOT NULL,
    deletion_allowed        INTEGER NOT NULL,
    latest_version          INTEGER NOT NULL,
    min_decryption_version  INTEGER NOT NULL,
    min_encryption_version  INTEGER NOT NULL,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    rotated_at              INTEGER NOT NULL,
    mac                     BLOB NOT NULL
) STRICT;

-- KEK versions, wrapped by the root key; each row records which root key wrapped it.
CREATE TABLE key_versions (
    keyring_id            INTEGER NOT NULL REFERENCES keyrings (id) ON DELETE CASCADE,
    version               INTEGER NOT NULL,
    root_key_id           TEXT NOT NULL,
    wrapped               BLOB NOT NULL,
    created_at            INTEGER NOT NULL,
    encryptions_reserved  INTEGER NOT NULL,
    mac                   BLOB NOT NULL,
    PRIMARY KEY (keyring_id, version)
) STRICT;

CREATE TABLE apps (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- API keys: only a keyed hash of the secret is stored. revoked_at is NULL while the key is live.
CREATE TABLE api_keys (
    id          TEXT NOT NULL PRIMARY KEY,
    app_id      INTEGER NOT NULL REFERENCES apps (id),
    hash        BLOB NOT NULL,
    scopes      TEXT NOT NULL,
    keyrings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    mac         BLOB NOT NULL
) STRICT;

CREATE INDEX api_keys_by_app ON api_keys (app_id, created_at);
