# SPDX-License-Identifier: Apache-2.0
"""The break-glass admin key (security review, issue 6, findings 3 and 5): never shown unless its
audit event is written with it, and usable within seconds even while unknown key ids flood the
service."""
import json
import sqlite3

from conftest import expect, register_api_key, run_cli


def count(db, sql, args=()):
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql, args).fetchone()[0]
    finally:
        con.close()


def execute(db, sql):
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


def test_admin_key_fails_closed_when_its_audit_event_cannot_be_written(new_datadir, start_server):
    dd = new_datadir()
    keys_before = count(dd.db, "SELECT count(*) FROM api_keys")
    # every audit insert fails (as a full disk or a broken trail would); key rows still could
    execute(dd.db, "CREATE TRIGGER test_no_audit BEFORE INSERT ON audit_events "
                   "BEGIN SELECT RAISE(ABORT, 'audit refused'); END")
    proc = run_cli(["admin-key", "--data-dir", dd.path, "--json"])
    assert proc.returncode == 1, (proc.returncode, proc.stdout[:200], proc.stderr)
    assert "dgk_" not in proc.stdout and "dgk_" not in proc.stderr
    assert count(dd.db, "SELECT count(*) FROM api_keys") == keys_before, "no key row is left"

    execute(dd.db, "DROP TRIGGER test_no_audit")
    proc = run_cli(["admin-key", "--data-dir", dd.path, "--json"])
    assert proc.returncode == 0, proc.stderr
    key = json.loads(proc.stdout)["admin_key"]
    register_api_key(key)
    assert count(dd.db, "SELECT count(*) FROM api_keys") == keys_before + 1
    key_id = key[4:20]
    assert count(dd.db, "SELECT count(*) FROM audit_events WHERE op = 'admin_key.break_glass' "
                        "AND key_id = ? AND status = 201", (key_id,)) == 1
    srv = start_server(datadir=dd)
    expect(srv.client(key).get("/v1/keyrings"), 200)
    assert expect(srv.admin.get("/v1/audit/verify"), 200)["valid"] is True
