-- SPDX-License-Identifier: Apache-2.0
-- 0004_certificates (PostgreSQL): the certificate inventory (issue 9). Keep in step with
-- migrations/sqlite/0004_certificates.sql.

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
    recursive     BOOLEAN NOT NULL,
    expect_chain  BOOLEAN NOT NULL,
    renew_before  BIGINT NOT NULL,
    warning       BIGINT NOT NULL,
    critical      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Every certificate seen at a slot of a source (a file and position, or an endpoint's leaf),
-- in the order seen: the first row of a slot is its first sighting, each later one a rotation
-- (rotation = true), committed with its audit event. Sources of every origin, so no foreign
-- key; deleting an API source deletes its rows in the same transaction.
CREATE TABLE cert_history (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id    TEXT NOT NULL,
    slot         TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    subject      TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    serial       TEXT NOT NULL,
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    seen_at      BIGINT NOT NULL,
    rotation     BOOLEAN NOT NULL
);

CREATE INDEX cert_history_by_source ON cert_history (source_id, slot, id);
