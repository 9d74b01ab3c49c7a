# SPDX-License-Identifier: Apache-2.0
"""Walk every table and JSON field Dify encrypts, tenant by tenant, and re-encrypt what its local
RSA provider made into difyguard values (or back, with --rollback).

Inside Dify's api container, with difyguard_key_provider.py and migrate_hybrid.py beside this file
(or on PYTHONPATH) and the DIFYGUARD_* variables set:

    python migrate_command.py --dry-run          # counts only, nothing written
    python migrate_command.py                    # migrate every tenant
    python migrate_command.py --tenant ID ...    # only these tenants
    python migrate_command.py --rollback         # difyguard values -> HYBRID under each
                                                 # tenant's RSA public key

How it finds values: every string in the listed columns (and, for JSON columns, every string
inside them) that is base64 of a value the tenant's RSA key decrypts (forward), or of a value
difyguard decrypts for the tenant (rollback). OAEP's and the AEADs' integrity checks make a
false match negligible, so no per-provider credential schema is needed and non-secret fields are
left alone. Each (tenant, table) is one transaction; a row is updated only if it did not change
since it was read. Re-running is safe and resumes an interrupted run: migrated values no longer
decrypt under RSA and are skipped (and rolled-back ones no longer decrypt under difyguard).
Prints one line per (tenant, table) with what changed, and a total.
"""
import argparse
import base64
import binascii
import json
import os
import sys

import migrate_hybrid as mh

# (table, column): the columns Dify encrypts per tenant (tenant_id column, id primary key).
TABLES = [
    ("provider_credentials", "encrypted_config"),
    ("provider_model_credentials", "encrypted_config"),
    ("load_balancing_model_configs", "encrypted_config"),
    ("tool_builtin_providers", "encrypted_credentials"),
    ("tool_api_providers", "credentials_str"),
    ("tool_mcp_providers", "encrypted_credentials"),
    ("tool_mcp_providers", "encrypted_headers"),
    ("tool_mcp_providers", "server_url"),
    ("workflows", "environment_variables"),
]


def _leaves(value, path=()):
    """(path, string) for every string in a JSON value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))


def _set(value, path, new):
    if not path:
        return new
    value[path[0]] = _set(value[path[0]], path[1:], new)
    return value


def _b64(s):
    if len(s) < 28:          # shorter than any value either provider makes
        return None
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None


class Walker:
    def __init__(self, conn, provider, *, paramstyle="qmark", private_key_loader=None,
                 rollback=False, dry_run=False, out=print):
        self.conn, self.p, self.rollback, self.dry_run, self.out = (
            conn, provider, rollback, dry_run, out)
        self.ph = "?" if paramstyle == "qmark" else "%s"
        self.loader = private_key_loader or mh.dify_private_key
        self.total = 0
        self.missing = set()

    def tenants(self):
        cur = self.conn.cursor()
        cur.execute("SELECT id, encrypt_public_key FROM tenants ORDER BY id")
        return [(str(r[0]), r[1]) for r in cur.fetchall()]

    def run(self, only=None):
        for tenant, public in self.tenants():
            if only and tenant not in only:
                continue
            keys = {"public": public}
            for table, column in TABLES:
                n = self.table(tenant, keys, table, column)
                if n:
                    verb = "would change" if self.dry_run else "changed"
                    self.out(f"tenant {tenant}: {table}.{column}: {verb} {n} value(s)")
                self.total += n
        self.out(f"total: {'would change' if self.dry_run else 'changed'} {self.total} "
                 f"value(s)")
        return self.total

    def _rsa(self, tenant, keys):
        if "oaep" not in keys:
            keys["key"] = mh._rsa_key(tenant, self.loader)
            keys["oaep"] = mh.PKCS1_OAEP.new(keys["key"])
        return keys["key"], keys["oaep"]

    def table(self, tenant, keys, table, column):
        if (table, column) in self.missing:
            return 0
        cur = self.conn.cursor()
        try:
            cur.execute(f"SELECT id, {column} FROM {table} WHERE tenant_id = {self.ph}",
                        (tenant,))
        except Exception:               # noqa: BLE001 -- any driver's "no such table/column"
            self.conn.rollback()
            self.missing.add((table, column))
            self.out(f"{table}.{column}: not in this Dify version's database, skipped")
            return 0
        rows = cur.fetchall()
        found = []        # (row index, parsed value, is_json, path, raw bytes)
        parsed = []
        for ri, (_, text) in enumerate(rows):
            if not isinstance(text, str) or not text:
                parsed.append(None)
                continue
            try:
                val, is_json = json.loads(text), True
            except ValueError:
                val, is_json = text, False
            parsed.append((val, is_json))
            for path, s in _leaves(val):
                raw = _b64(s)
                if raw is not None:
                    found.append((ri, path, raw))
        new = self._forward(tenant, keys, found) if not self.rollback else \
            self._backward(tenant, keys, found)
        if not new:
            return 0
        changed_rows = {}
        for (ri, path, _), token in new:
            val, is_json = changed_rows.get(ri, parsed[ri])
            changed_rows[ri] = (_set(val, path, token), is_json)
        for ri, (val, is_json) in changed_rows.items():
            text = json.dumps(val) if is_json else val
            cur.execute(f"UPDATE {table} SET {column} = {self.ph} WHERE id = {self.ph} AND "
                        f"{column} = {self.ph}", (text, rows[ri][0], rows[ri][1]))
            if cur.rowcount != 1:
                self.conn.rollback()
                raise ValueError(f"{table} row {rows[ri][0]} changed while migrating: run again")
        if self.dry_run:
            self.conn.rollback()
        else:
            self.conn.commit()
        return len(new)

    def _forward(self, tenant, keys, found):
        cands = [(f, raw) for f in found for raw in [f[2]]
                 if raw.startswith(mh.HYBRID) or len(raw) in (128, 256, 384, 512)]
        if not cands:
            return []
        key, oaep = self._rsa(tenant, keys)
        texts, where = [], []
        for f, raw in cands:
            try:
                text = mh._rsa_decrypt(key, oaep, raw)
            except ValueError:
                raise ValueError(f"tenant {tenant}: a HYBRID value does not decrypt with the "
                                 "tenant's RSA key") from None
            if text is not None:
                texts.append(text)
                where.append(f)
        out = []
        for start in range(0, len(texts), 1000):
            blobs = self.p.batch_encrypt(tenant, texts[start:start + 1000])
            out += [(f, base64.b64encode(b).decode())
                    for f, b in zip(where[start:start + 1000], blobs)]
        return out

    def _backward(self, tenant, keys, found):
        cands = [(f, f[2]) for f in found if mh._looks_difyguard(f[2])]
        if not cands:
            return []
        bad = {k for k, _ in mh._not_difyguard(
            self.p, tenant, [(k, raw) for k, (_, raw) in enumerate(cands)], 1000)}
        mine = [c for k, c in enumerate(cands) if k not in bad]
        if not mine:
            return []
        tokens = [base64.b64encode(raw).decode() for _, raw in mine]
        back = mh.rollback_tokens(tenant, tokens, keys["public"], provider=self.p)
        return [(f, t) for (f, _), t in zip(mine, back)]


def _dify_connection():
    """A DB-API connection to Dify's database, through Dify's own app (api container)."""
    from app_factory import create_app         # Dify's
    from extensions.ext_database import db     # Dify's
    app = create_app()
    ctx = app.app_context()
    ctx.push()
    conn = db.engine.raw_connection()
    style = getattr(db.engine.dialect, "paramstyle", "pyformat")
    return conn, ("qmark" if style == "qmark" else "format")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="count, write nothing")
    ap.add_argument("--rollback", action="store_true", help="difyguard values -> HYBRID")
    ap.add_argument("--tenant", action="append", help="only this tenant (repeatable)")
    a = ap.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from difyguard_key_provider import DifyguardKeyProvider
    try:
        conn, style = _dify_connection()
        Walker(conn, DifyguardKeyProvider(), paramstyle=style, rollback=a.rollback,
               dry_run=a.dry_run).run(set(a.tenant or ()))
    except ValueError as e:
        print(f"migrate: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
