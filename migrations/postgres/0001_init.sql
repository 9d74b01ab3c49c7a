-- SPDX-License-Identifier: Apache-2.0
-- 0001_init (PostgreSQL): the initial schema. Forward-only: never edit it once released; add
-- 0002_what.sql instead.
-- The runner wraps this file in one transaction under an advisory lock and records it in
-- schema_version, so it must not contain BEGIN or COMMIT itself.
-- Keep in step with migrations/sqlite/0001_init.sql (tests/unit/store compares table, column and
-- index names).
-- Timestamps are unix seconds (BIGINT). Key versions are uint32 in C, hence BIGINT here.

CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  BIGINT NOT NULL
);

-- Small settings: node id, init marker.
CREATE TABLE meta (
    key    TEXT NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Random service keys (row MAC, API-key hash, audit), wrapped by the root key.
CREATE TABLE service_keys (
    purpose      TEXT NOT NULL PRIMARY KEY,
    root_key_id  TEXT NOT NULL,
    wrapped      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Identity columns never reuse the ids of deleted (crypto-shredded) keyrings.
CREATE TABLE keyrings (
    id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                    TEXT NOT NULL UNIQUE,
    algorithm               TEXT NOT NULL,
    deterministic           BOOLEAN NOT NULL,
    rotation_period         BIGINT NOT NULL,
    deletion_allowed        BOOLEAN NOT NULL,
    latest_version          BIGINT NOT NULL,
    min_decryption_version  BIGINT NOT NULL,
    min_encryption_version  BIGINT NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    rotated_at              BIGINT NOT NULL,
    mac                     BYTEA NOT NULL
);

-- KEK versions, wrapped by the root key; each row records which root key wrapped it.
CREATE TABLE key_versions (
    keyring_id            BIGINT NOT NULL REFERENCES keyrings (id) ON DELETE CASCADE,
    version               BIGINT NOT NULL,
    root_key_id           TEXT NOT NULL,
    wrapped               BYTEA NOT NULL,
    created_at            BIGINT NOT NULL,
    encryptions_reserved  BIGINT NOT NULL,
    mac                   BYTEA NOT NULL,
    PRIMARY KEY (keyring_id, version)
);

CREATE TABLE apps (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- API keys: only a keyed hash of the secret is stored. revoked_at is NULL while the key is live.
CREATE TABLE api_keys (
    id          TEXT NOT NULL PRIMARY KEY,
    app_id      BIGINT NOT NULL REFERENCES apps (id),
    hash        BYTEA NOT NULL,
    scopes      TEXT NOT NULL,
    keyrings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    mac         BYTEA NOT NULL
);

CREATE INDEX api_keys_by_app ON api_keys (app_id, created_at);
