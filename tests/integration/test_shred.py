# SPDX-License-Identifier: Apache-2.0
"""Crypto-shredding leaves no copy of the deleted key versions in the SQLite WAL (security
review, issue 6, finding 2); when the WAL cannot be flushed the operator is told (log line and
metric) and the flush is retried."""
import os
import sqlite3

from conftest import expect, new_text, poll_until


def wrapped_keks(db, keyring):
    con = sqlite3.connect(db, timeout=30)
    try:
        return [r[0] for r in con.execute(
            "SELECT v.wrapped FROM key_versions AS v JOIN keyrings AS k ON k.id = v.keyring_id "
            "WHERE k.name = ?", (keyring,))]
    finally:
        con.close()


def wal_bytes(db):
    try:
        with open(db + "-wal", "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def metric(srv, name):
    for line in srv.client().get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[-1])
    raise AssertionError(f"no {name} in /metrics")


def shreddable(srv):
    name = srv.create_keyring(deletion_allowed=True)
    srv.admin.encrypt(name, text=new_text("shred"))
    expect(srv.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    keks = wrapped_keks(srv.datadir.db, name)
    assert len(keks) == 2 and all(len(k) > 32 for k in keks)
    assert any(k in wal_bytes(srv.datadir.db) for k in keks), "the probe sees the WAL"
    return name, keks


def test_delete_leaves_no_wrapped_kek_in_the_wal(start_server):
    srv = start_server()
    name, keks = shreddable(srv)
    expect(srv.admin.delete(f"/v1/keyrings/{name}"), 204)
    wal = wal_bytes(srv.datadir.db)
    assert not any(k in wal for k in keks), "a deleted wrapped KEK is still in the WAL"
    with open(srv.datadir.db, "rb") as f:
        data = f.read()
    assert not any(k in data for k in keks)
    assert metric(srv, "difyguard_shred_checkpoint_failures_total") == 0
    assert "shred_checkpoint_failed" not in srv.stdout() + srv.stderr()


def test_flush_blocked_by_a_reader_is_alerted_and_retried(start_server):
    srv = start_server(args=["--maintenance-interval", "1"])
    name, keks = shreddable(srv)
    reader = sqlite3.connect(srv.datadir.db, timeout=30, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM keyrings").fetchall()   # an old snapshot, held
        expect(srv.admin.delete(f"/v1/keyrings/{name}"), 204)      # the deletion stands
        assert metric(srv, "difyguard_shred_checkpoint_failures_total") >= 1
        assert "shred_checkpoint_failed" in srv.stdout()
        expect(srv.admin.get(f"/v1/keyrings/{name}"), 404)
    finally:
        reader.execute("COMMIT")
        reader.close()
    # the maintenance thread flushes it once the reader is gone
    poll_until(lambda: "shred_checkpoint_done" in srv.stdout(), what="the retried flush")
    # (the audit janitor may have written a checkpoint since: only the keys must be gone)
    assert not any(k in wal_bytes(srv.datadir.db) for k in keks)
    assert os.path.exists(srv.datadir.db)
