-- SPDX-License-Identifier: Apache-2.0
-- 0004_certificates (SQLite): the certificate inventory (issue 9). Keep in step with
-- migrations/postgres/0004_certificates.sql.

-- Certificate sources added over the API (POST /v1/certificates). Sources from the --cert-sources
-- file and the listeners' own certificates live in the configuration, not here. kind is file,
-- dir, pem or endpoint; target the path or host:port ('' for pem); pem the uploaded text (''
-- for other kinds). Durations are seconds, 0 meaning the service default.
CREATE TABLE cert_sources (
    id            TEXT NOT NULL PRIMARY KEY,
    kind          TEXT NOT NULL,
    target        TEXT NOT NULL,
    server_name   TEXT NOT NULL,
    pem           TEXT NOT NULL,
    recursive     INTEGER NOT NULL,
    expect_chain  INTEGER NOT NULL,
    renew_before  INTEGER NOT NULL,
    warning       INTEGER NOT NULL,
    critical      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

-- Every certificate seen at a slot of a source (a file and position, or an endpoint's leaf),
-- in the order seen: the first row of a slot is its first sighting, each later one a rotation
-- (rotation = 1), committed with its audit event. Sources of every origin, so no foreign key;
-- deleting an API source deletes its rows in the same transaction.
CREATE TABLE cert_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id    TEXT NOT NULL,
    slot         TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    subject      TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    serial       TEXT NOT NULL,
    not_before   INTEGER NOT NULL,
    not_after    INTEGER NOT NULL,
    seen_at      INTEGER NOT NULL,
    rotation     INTEGER NOT NULL
) STRICT;

CREATE INDEX cert_history_by_source ON cert_history (source_id, slot, id);
