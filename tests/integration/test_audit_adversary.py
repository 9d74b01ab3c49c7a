# SPDX-License-Identifier: Apache-2.0
"""The audit trail against an attacker with write access to the database (security review,
issue 6): rows inserted, deleted, edited and reordered, keys injected, settings rows swapped.
Whatever they do, a tampered trail never verifies -- online (/v1/audit/verify, the service's
start-up check) or offline (`difyguard audit verify` on an export) -- and nothing they wrote is
ever signed by the service.

The attacker here holds no audit signing key (an Ed25519 key of their own, at most) and cannot
read the root key file. Rolling the whole database back to an earlier copy of itself is the
limit of what the service can see alone: the test at the end shows how an auditor's kept
export checkpoint (--since) catches it."""
import base64
import hashlib
import json
import os
import sqlite3

import pytest

from conftest import expect, new_text, poll_until, run_serve_expecting_exit, uniq
from test_audit import (Forger, all_events, assert_invalid, assert_valid, auditor_of, cli_verify,
                        export_text, is_checkpoint, is_event, join_lines, lines_of, parse,
                        public_keys)


# ----------------------------------------------------------------------------------------------
# the attacker's tools

def db_of(srv):
    return sqlite3.connect(srv.datadir.db, timeout=30, isolation_level=None)


def event_line(obj):
    """An event line exactly as the writer formats it, its hash recomputed (no key needed)."""
    body = dict(obj)
    body.pop("hash", None)
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    h = hashlib.sha256(b"difyguard-audit-v1\n" + text.encode()).hexdigest()
    return text[:-1] + f',"hash":"{h}"}}', h


def insert_event(conn, obj, line, h):
    conn.execute("INSERT INTO audit_events (chain_id, seq, time_ms, app, key_id, op, keyring, "
                 "outcome, status, hash, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (obj["chain_id"], obj["seq"], 1795897260000, obj["app"] or "",
                  obj["key_id"] or "", obj["op"], obj["keyring"] or "", obj["outcome"],
                  obj["status"], bytes.fromhex(h), line))


def chain_lines(conn, chain):
    return [(seq, line) for seq, line in conn.execute(
        "SELECT seq, line FROM audit_events WHERE chain_id = ? ORDER BY seq", (chain,))]


def own_chain(srv):
    """The service's chain id: the sealed settings row "v1:<mac>:<chain id>"."""
    conn = db_of(srv)
    (value,) = conn.execute("SELECT value FROM meta WHERE key = 'audit_chain_id'").fetchone()
    conn.close()
    return value.rsplit(":", 1)[-1]


def forged_checkpoint(forger, chain, seq, h, kind="periodic", time="2026-11-28T20:21:00.000Z"):
    msg = "\n".join(["difyguard-audit-checkpoint-v1", chain, str(seq), h, time, kind, "", ""])
    sig = base64.b64encode(forger.sign((msg + "\n").encode())).decode()
    o = {"type": "checkpoint", "chain_id": chain, "seq": seq, "hash": h, "time": time,
         "kind": kind, "signatures": [{"key_id": forger.key_id, "sig": sig}]}
    return json.dumps(o, separators=(",", ":"))


def traffic(srv, n=6):
    kr = srv.create_keyring()
    api, _ = srv.issue_key(["encrypt", "decrypt"])
    for i in range(n):
        api.encrypt(kr, text=new_text(f"adv{i}"))
    return kr, api


def fabricate(conn, template, chain, n, start_seq=1, prev="0" * 64):
    """n events of a chain, linked from prev; returns the last hash."""
    for i in range(n):
        obj = dict(template)
        obj.update(chain_id=chain, seq=start_seq + i, prev_hash=prev, status=200, outcome="ok")
        line, prev = event_line(obj)
        insert_event(conn, obj, line, prev)
    return prev


def verify_online(srv):
    return expect(auditor_of(srv).get("/v1/audit/verify"), 200)


# ----------------------------------------------------------------------------------------------
# forged history never gets the service's signature

def test_fabricated_chain_is_never_signed(start_server, tmp_path):
    """(a) a whole chain inserted into audit_events, even with a checkpoint of the attacker's own
    key, is left out of every export and makes /v1/audit/verify report it."""
    srv = start_server()
    traffic(srv)
    aud = auditor_of(srv)
    template = parse(chain_lines(db_of(srv), own_chain(srv))[-1][1])
    conn = db_of(srv)
    fake = "feedfacefeedface"
    last = fabricate(conn, template, fake, 3)
    forger = Forger(tmp_path)
    conn.execute("INSERT INTO audit_checkpoints (chain_id, seq, kind, time_ms, line) VALUES "
                 "(?, 3, 'periodic', 1795897260000, ?)",
                 (fake, forged_checkpoint(forger, fake, 3, last)))
    unsigned = "deadbeefdeadbeef"
    fabricate(conn, template, unsigned, 2)
    conn.close()
    text = export_text(aud)
    assert fake not in text and unsigned not in text, "a fabricated chain was exported"
    assert_valid(cli_verify(tmp_path, text, public_keys(aud)), "export beside fabricated chains")
    body = verify_online(srv)
    assert body["valid"] is False and ("feedface" in body["error"] or "deadbeef" in body["error"])
    # asking for the chain by id gives nothing either
    assert export_text(aud, chain_id=fake) == ""


def test_events_appended_to_a_closed_chain_are_not_signed(start_server, tmp_path):
    """Another chain (here the break-glass command's) extended behind its last checkpoint: the
    export stops at that checkpoint; the appended events are never signed."""
    from conftest import run_cli
    srv = start_server()
    traffic(srv)
    proc = run_cli(["admin-key", "--data-dir", srv.data_dir, "--json"])
    assert proc.returncode == 0, proc.stderr
    from conftest import register_api_key
    register_api_key(json.loads(proc.stdout)["key"])
    conn = db_of(srv)
    own = own_chain(srv)
    chains = [c for (c,) in conn.execute("SELECT DISTINCT chain_id FROM audit_events")]
    cli = [c for c in chains if c != own]
    assert len(cli) == 1, chains
    seq, line = chain_lines(conn, cli[0])[-1]
    obj = parse(line)
    fabricate(conn, obj, cli[0], 2, start_seq=seq + 1, prev=obj["hash"])
    conn.close()
    aud = auditor_of(srv)
    text = export_text(aud)
    cli_lines = [parse(x) for x in lines_of(text) if parse(x)["chain_id"] == cli[0]]
    assert [o["seq"] for o in cli_lines if is_event(o)] == [seq], cli_lines
    assert cli_lines[-1]["kind"] == "export" and cli_lines[-1]["seq"] == seq
    assert_valid(cli_verify(tmp_path, text, public_keys(aud)), "export of an extended CLI chain")


def test_reordered_and_edited_rows_never_verify(start_server, tmp_path):
    srv = start_server()
    traffic(srv)
    aud = auditor_of(srv)
    keys = public_keys(aud)
    chain = own_chain(srv)
    conn = db_of(srv)
    rows = chain_lines(conn, chain)
    (s1, l1), (s2, l2) = rows[2], rows[3]
    conn.execute("UPDATE audit_events SET line = ? WHERE chain_id = ? AND seq = ?", (l2, chain, s1))
    conn.execute("UPDATE audit_events SET line = ? WHERE chain_id = ? AND seq = ?", (l1, chain, s2))
    conn.close()
    assert_invalid(cli_verify(tmp_path, export_text(aud), keys), "swapped events")
    assert verify_online(srv)["valid"] is False
    conn = db_of(srv)
    conn.execute("UPDATE audit_events SET line = ? WHERE chain_id = ? AND seq = ?", (l1, chain, s1))
    conn.execute("UPDATE audit_events SET line = ? WHERE chain_id = ? AND seq = ?", (l2, chain, s2))
    obj = parse(rows[4][1])
    obj["status"] += 1              # a change whatever the event (the janitor's come first)
    edited, _ = event_line(obj)             # its own hash recomputed: the link breaks
    conn.execute("UPDATE audit_events SET line = ? WHERE chain_id = ? AND seq = ?",
                 (edited, chain, rows[4][0]))
    conn.close()
    assert_invalid(cli_verify(tmp_path, export_text(aud), keys), "an edited event")
    assert verify_online(srv)["valid"] is False


# ----------------------------------------------------------------------------------------------
# the service's own chain at start

def stopped_with_traffic(start_server):
    srv = start_server(args=["--audit-checkpoint-interval", "1s"])
    traffic(srv, n=8)
    chain = own_chain(srv)
    srv.stop()
    return srv, chain


def expect_refused(srv, extra=()):
    rc, err, out = run_serve_expecting_exit(srv.data_dir, "127.0.0.1:0", extra=extra)
    assert rc == 1, (rc, err[-500:], out[-500:])
    assert "audit chain" in (err + out), (err[-500:], out[-500:])


def test_deleted_tail_refused_at_start(start_server):
    """(b) deleting the newest events (with or without the checkpoints after them) and
    restarting no longer continues the chain from the cut."""
    srv, chain = stopped_with_traffic(start_server)
    conn = db_of(srv)
    top = chain_lines(conn, chain)[-1][0]
    conn.execute("DELETE FROM audit_events WHERE chain_id = ? AND seq > ?", (chain, top - 3))
    conn.close()
    expect_refused(srv)
    conn = db_of(srv)
    conn.execute("DELETE FROM audit_checkpoints WHERE chain_id = ? AND seq > ?", (chain, top - 3))
    conn.close()
    expect_refused(srv)


def test_history_rewritten_and_checkpoints_dropped_refused_at_start(start_server):
    srv, chain = stopped_with_traffic(start_server)
    conn = db_of(srv)
    rows = chain_lines(conn, chain)
    prev = "0" * 64
    for i, (seq, line) in enumerate(rows):
        obj = parse(line)
        obj["prev_hash"] = prev
        if i == 2:
            obj["latency_us"] += 1          # the one change the rewrite hides
        new, prev = event_line(obj)
        conn.execute("UPDATE audit_events SET line = ?, hash = ? WHERE chain_id = ? AND seq = ?",
                     (new, bytes.fromhex(prev), chain, seq))
    conn.execute("DELETE FROM audit_checkpoints WHERE chain_id = ?", (chain,))
    conn.close()
    expect_refused(srv)


def test_swapped_chain_id_and_junk_checkpoint_refused_at_start(start_server, tmp_path):
    srv, chain = stopped_with_traffic(start_server)
    conn = db_of(srv)
    (sealed,) = conn.execute("SELECT value FROM meta WHERE key = 'audit_chain_id'").fetchone()
    assert sealed.startswith("v1:") and sealed.endswith(chain), sealed
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_chain_id'",
                 (sealed[:-len(chain)] + "0123456789abcdef",))
    conn.close()
    expect_refused(srv)
    conn = db_of(srv)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_chain_id'", (sealed,))
    seq, line = chain_lines(conn, chain)[-1]
    forger = Forger(tmp_path)
    conn.execute("INSERT INTO audit_checkpoints (chain_id, seq, kind, time_ms, line) VALUES "
                 "(?, ?, 'periodic', 9999999999999, ?)",
                 (chain, seq, forged_checkpoint(forger, chain, seq, parse(line)["hash"])))
    conn.close()
    expect_refused(srv)


def test_new_chain_after_a_break_keeps_the_evidence(start_server, tmp_path):
    srv, chain = stopped_with_traffic(start_server)
    conn = db_of(srv)
    top = chain_lines(conn, chain)[-1][0]
    conn.execute("DELETE FROM audit_events WHERE chain_id = ? AND seq > ?", (chain, top - 2))
    conn.close()
    expect_refused(srv)
    srv.args = srv.args + ["--audit-new-chain"]
    srv.start()
    aud = auditor_of(srv)
    restart = all_events(aud, op="audit.chain_restart")
    assert len(restart) == 1 and restart[0]["chain_id"] != chain and restart[0]["seq"] == 1
    assert "audit_chain_restarted" in srv.stdout()
    # the broken chain stays evident: verify reports it, the export holds what still verifies
    body = verify_online(srv)
    assert body["valid"] is False and chain in body["error"], body
    text = export_text(aud)
    assert_valid(cli_verify(tmp_path, text, public_keys(aud)), "export after a restarted chain")
    old = [parse(x) for x in lines_of(text) if parse(x)["chain_id"] == chain]
    assert all(o["seq"] <= top - 2 for o in old), old[-1]


def test_database_from_before_seals_is_sealed_at_first_start(start_server):
    """Settings rows written before seals existed are trusted once, sealed and logged."""
    srv, chain = stopped_with_traffic(start_server)
    conn = db_of(srv)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_chain_id'", (chain,))
    conn.execute("DELETE FROM meta WHERE key LIKE 'audit_head:%'")
    conn.close()
    srv.start()
    assert "audit_meta_sealed" in srv.stdout()
    conn = db_of(srv)
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'audit_%'"))
    conn.close()
    assert rows["audit_chain_id"].startswith("v1:") and rows["audit_chain_id"].endswith(chain)
    assert rows[f"audit_head:{chain}"].startswith("v1:"), rows
    assert verify_online(srv)["valid"] is True
    srv.stop()
    srv.start()                         # and from now on it is checked like any other
    assert verify_online(srv)["valid"] is True


# ----------------------------------------------------------------------------------------------
# keys and exports

def test_injected_audit_key_is_not_served_or_trusted(start_server, tmp_path):
    """(c) the retired audit keys are a sealed settings row: an injected key is ignored."""
    srv = start_server()
    traffic(srv)
    aud = auditor_of(srv)
    forger = Forger(tmp_path)
    entry = f"{forger.key_id}:{forger.pk_b64}:1700000000:1700000001;"
    conn = db_of(srv)
    for value in (entry, "v1:" + "0" * 64 + ":" + entry):   # unsealed, and a made-up seal
        conn.execute("INSERT INTO meta (key, value) VALUES ('audit_retired_keys', ?) ON CONFLICT "
                     "(key) DO UPDATE SET value = excluded.value", (value,))
        keys = expect(aud.get("/v1/audit/public-key"), 200)["keys"]
        assert forger.pk_b64 not in {k["public_key"] for k in keys}, keys
    # a chain the forger signed is not accepted online either
    template = parse(chain_lines(conn, own_chain(srv))[-1][1])
    last = fabricate(conn, template, "abababababababab", 2)
    conn.execute("INSERT INTO audit_checkpoints (chain_id, seq, kind, time_ms, line) VALUES "
                 "(?, 2, 'periodic', 1795897260000, ?)",
                 ("abababababababab", forged_checkpoint(forger, "abababababababab", 2, last)))
    conn.close()
    assert "abababababababab" not in export_text(aud)
    assert verify_online(srv)["valid"] is False
    metrics = srv.client().get("/metrics").text
    assert any(line.startswith("difyguard_audit_unverified_chains_total ") and
               int(line.split()[-1]) >= 1 for line in metrics.splitlines()), metrics[-600:]


def test_export_cannot_be_cut_at_an_earlier_export(start_server, tmp_path):
    """An earlier export's checkpoint is never re-emitted: a later export cut where the earlier
    one ended does not verify (docs/audit.md, rule 7)."""
    srv = start_server()
    traffic(srv, n=3)
    aud = auditor_of(srv)
    keys = public_keys(aud)
    first = [parse(x) for x in lines_of(export_text(aud))]
    cut_seq = first[-1]["seq"]
    traffic(srv, n=3)
    second = lines_of(export_text(aud))
    objs = [parse(x) for x in second]
    exports = [o for o in objs if o.get("kind") == "export"]
    assert len(exports) == len({o["chain_id"] for o in objs}), exports
    assert all(not (o.get("kind") == "export" and o["seq"] == cut_seq) for o in objs[:-1])
    idx = max(i for i, o in enumerate(objs) if is_event(o) and o["seq"] <= cut_seq)
    while idx + 1 < len(objs) and is_checkpoint(objs[idx + 1]) and objs[idx + 1]["seq"] == cut_seq:
        idx += 1
    assert_invalid(cli_verify(tmp_path, join_lines(second[:idx + 1]), keys),
                   "an export cut where an earlier export ended")
    assert_valid(cli_verify(tmp_path, join_lines(second), keys), "the whole later export")


def test_rollback_is_caught_with_a_kept_checkpoint(start_server, tmp_path):
    """What --since adds: the database rolled back whole to an earlier copy of itself (events,
    checkpoints and sealed settings together) is consistent, so the service starts; the export
    checkpoint the auditor kept from an export in between no longer fits."""
    import shutil
    srv = start_server()
    traffic(srv, n=3)
    auditor_of(srv)                     # its key exists in the snapshot too
    srv.stop()
    snap = tmp_path / "snapshot"
    os.makedirs(snap)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(srv.datadir.db + suffix):
            shutil.copy2(srv.datadir.db + suffix, str(snap / ("db" + suffix)))
    srv.start()
    traffic(srv, n=3)
    aud = auditor_of(srv)
    kept = [x for x in lines_of(export_text(aud))
            if parse(x).get("kind") == "export" and parse(x)["chain_id"] == own_chain(srv)][0]
    keys = public_keys(aud)
    srv.stop()
    for suffix in ("", "-wal", "-shm"):
        p = srv.datadir.db + suffix
        if os.path.exists(p):
            os.remove(p)
        if os.path.exists(str(snap / ("db" + suffix))):
            shutil.copy2(str(snap / ("db" + suffix)), p)
    srv.start()
    text = export_text(auditor_of(srv))
    assert_valid(cli_verify(tmp_path, text, keys), "the rolled-back trail on its own")
    chain = parse(kept)["chain_id"]
    since = [x for x in lines_of(export_text(auditor_of(srv), chain_id=chain,
                                             after_seq=str(parse(kept)["seq"])))]
    assert_invalid(cli_verify(tmp_path, join_lines(since) if since else "", keys, since=kept),
                   "a rolled-back trail against the auditor's kept checkpoint")


# ----------------------------------------------------------------------------------------------
# retention

def test_pruned_events_are_in_an_archive_that_verifies(start_server, tmp_path):
    """A leftover file with the archive's name used to count as written; archives did not
    verify on their own. Now each archive verifies alone, and events are pruned only behind
    one."""
    srv = start_server(args=["--audit-retention", "1s", "--audit-checkpoint-interval", "1s"])
    aud = auditor_of(srv)
    traffic(srv, n=4)
    chain = own_chain(srv)
    adir = os.path.join(srv.data_dir, "audit-archive")
    os.makedirs(adir, exist_ok=True)
    for n in range(1, 400):                 # junk where the archives will go
        with open(os.path.join(adir, f"audit-{chain}-upto-{n}.ndjson"), "w") as f:
            f.write("junk\n")

    def anchor():
        objs = [parse(x) for x in lines_of(export_text(aud))]
        a = [o for o in objs if o.get("kind") == "anchor" and o["chain_id"] == chain]
        return a[-1] if a else None
    a = poll_until(anchor, deadline=90, interval=1.0, what="a prune behind an anchor")
    keys = public_keys(aud)
    path = os.path.join(adir, f"audit-{chain}-upto-{a['seq']}.ndjson")
    with open(path, "rb") as f:
        archived = f.read().decode()
    assert_valid(cli_verify(tmp_path, archived, keys), "the archive of pruned events")
    objs = [parse(x) for x in lines_of(archived)]
    assert objs[-1]["kind"] == "export" and objs[-1]["seq"] == a["seq"]
    assert [o["seq"] for o in objs if is_event(o)][-1] == a["seq"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
