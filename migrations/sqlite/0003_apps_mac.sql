-- SPDX-License-Identifier: Apache-2.0
-- 0003_apps_mac (SQLite): a row MAC on apps (as keyrings, key versions and API keys have), and an
-- index on API key creation time. Keep in step with migrations/postgres/0003_apps_mac.sql.

-- API keys refer to their app by id and callers and the audit trail know it by name, so the MAC
-- (HMAC-SHA256 with the row-mac service key, computed by the server) binds id, name and
-- created_at. NULL only for rows from before this migration: the server adds their MAC on its
-- first start after it.
ALTER TABLE apps ADD COLUMN mac BLOB;

-- Each server learns of keys other processes minted (difyguard admin-key, other replicas) by
-- reading the ids created since its last look, at most every few seconds.
CREATE INDEX api_keys_by_created ON api_keys (created_at);
