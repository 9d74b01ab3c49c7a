-- SPDX-License-Identifier: Apache-2.0
-- 0003_apps_mac (SQLite): a row MAC on apps, as keyrings, key versions and API keys have. API keys
-- refer to their app by id and the audit trail names it, so the MAC (HMAC-SHA256 with the row-mac
-- service key, computed by the server) binds id, name and created_at. NULL only for rows from
-- before this migration: the server adds their MAC on its first start after it. Keep in step with
-- migrations/postgres/0003_apps_mac.sql.

ALTER TABLE apps ADD COLUMN mac BLOB;
