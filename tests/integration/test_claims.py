# SPDX-License-Identifier: Apache-2.0
"""Claims of README.md and SECURITY.md that no test checked (issue 15): an admin change commits
its audit event in the same transaction or not at all; --audit-durable=false answers without
waiting for the trail and still writes every event in order; /readyz turns 503 while the service
drains on SIGTERM; the README's varchar(255) table. (Cache-Control: no-store is checked on every
response in conftest.Api.)

The trail is made unwritable with a SQLite trigger that aborts every insert into audit_events:
the rest of the database works, so whatever still succeeds did so without its event."""
import json
import signal
import sqlite3

import pytest

from conftest import SECRETS, expect, new_text, poll_until, uniq
from test_audit import all_events, auditor_of, hmacs, audit_hash, rid, verify_api

BLOCK = ("CREATE TRIGGER t15_no_audit BEFORE INSERT ON audit_events "
         "BEGIN SELECT RAISE(ABORT, 'audit blocked by the test'); END;")
UNBLOCK = "DROP TRIGGER t15_no_audit"


def db_exec(srv, stmt):
    con = sqlite3.connect(srv.datadir.db, timeout=30, isolation_level=None)
    try:
        con.execute(stmt)
    finally:
        con.close()


def unavailable(r):
    expect(r, 503, "unavailable")


# ----------------------------------------------------------------------------------------------
# admin changes and their events

def test_admin_change_whose_event_cannot_be_written_is_not_made(start_server):
    """Guarantee (SECURITY.md "Durability", README "Audit trail"): admin changes (keyrings, apps,
    keys) commit their event in the same database transaction as the change; a change whose
    event cannot be written is refused (503) and not made."""
    srv = start_server()
    admin = srv.admin
    kr = srv.create_keyring()
    doomed = srv.create_keyring(deletion_allowed=True)
    app = uniq("app")
    expect(admin.post("/v1/apps", {"name": app}), 201)
    api, key = srv.issue_key(["encrypt"], app=app)
    victim_api, victim = srv.issue_key(["encrypt"], app=app)
    expect(victim_api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    before = expect(admin.get(f"/v1/keyrings/{kr}"), 200)
    keys_before = {k["id"] for k in expect(admin.get(f"/v1/apps/{app}/keys"), 200)["keys"]}

    db_exec(srv, BLOCK)
    new_kr, new_app = uniq("kr"), uniq("app")
    unavailable(admin.post("/v1/keyrings", {"name": new_kr}))
    unavailable(admin.patch(f"/v1/keyrings/{kr}", {"rotation_period": "2d"}))
    unavailable(admin.post(f"/v1/keyrings/{kr}/rotate", {}))
    unavailable(admin.delete(f"/v1/keyrings/{doomed}"))
    unavailable(admin.post("/v1/apps", {"name": new_app}))
    unavailable(admin.post(f"/v1/apps/{app}/keys", {"scopes": ["encrypt"]}))
    unavailable(admin.post(f"/v1/apps/{app}/keys/{key['id']}/rotate", {"grace_period": "1h"}))
    unavailable(admin.delete(f"/v1/apps/{app}/keys/{victim['id']}"))
    db_exec(srv, UNBLOCK)

    # nothing of it happened, in memory or in the database (after a restart)
    for phase in ("running", "restarted"):
        admin = srv.admin                       # (a restart moves the server to a new port)
        expect(admin.get(f"/v1/keyrings/{new_kr}"), 404, "not_found")
        after = expect(admin.get(f"/v1/keyrings/{kr}"), 200)
        for field in ("latest_version", "rotation_period", "updated_at"):
            assert after[field] == before[field], (phase, field, before, after)
        expect(admin.get(f"/v1/keyrings/{doomed}"), 200)
        expect(admin.get(f"/v1/apps/{new_app}"), 404, "not_found")
        keys_now = {k["id"] for k in expect(admin.get(f"/v1/apps/{app}/keys"), 200)["keys"]}
        assert keys_now == keys_before, (phase, keys_before, keys_now)
        expect(srv.client(victim["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
        grace = [k for k in expect(admin.get(f"/v1/apps/{app}/keys"), 200)["keys"]
                 if k["id"] == key["id"]]
        assert grace and grace[0].get("grace_until") is None, (phase, grace)
        if phase == "running":
            srv.restart()
    verify_api(auditor_of(srv))


@pytest.mark.xfail(strict=True, reason="POST /v1/audit/rotate-key writes the new signing key, "
                   "its sealed list and the key_change checkpoint outside the request event's "
                   "transaction: answered 503, yet the key has changed (issue 15 report)")
def test_audit_key_rotation_whose_event_cannot_be_written_is_not_made(start_server):
    """What the admin routes guarantee, for the audit signing key: a rotation answered 503
    (its event could not be written) has not happened."""
    srv = start_server()
    rotator, _ = srv.issue_key(["keyrings:admin", "audit:read"])
    before = expect(rotator.get("/v1/audit/public-key"), 200)["keys"]
    db_exec(srv, BLOCK)
    unavailable(rotator.post("/v1/audit/rotate-key"))
    db_exec(srv, UNBLOCK)
    assert expect(rotator.get("/v1/audit/public-key"), 200)["keys"] == before


# ----------------------------------------------------------------------------------------------
# --audit-durable

def test_audit_durable_false_answers_without_waiting_and_writes_in_order(start_server):
    """Guarantee (README --audit-durable, SECURITY.md "Durability"): by default a request is
    answered only once its event is committed (503 when it cannot be); with
    --audit-durable=false answers do not wait for the trail, and every event is still written,
    in request order."""
    durable = start_server()
    lazy = start_server(args=["--audit-durable=false"])
    for srv in (durable, lazy):
        srv.kr = srv.create_keyring()
        srv.api, _ = srv.issue_key(["encrypt"])
    # the trail cannot be written: the durable server cannot answer, the other does not wait
    for srv in (durable, lazy):
        db_exec(srv, BLOCK)
    unavailable(durable.api.post(f"/v1/keyrings/{durable.kr}/encrypt", {"text": "x"}))
    expect(lazy.api.post(f"/v1/keyrings/{lazy.kr}/encrypt", {"text": "x"}), 200)
    for srv in (durable, lazy):
        db_exec(srv, UNBLOCK)

    # every answered request is written, in order, shortly after
    app = uniq("app")
    expect(lazy.admin.post("/v1/apps", {"name": app}), 201)
    api, _ = lazy.issue_key(["encrypt"], app=app)
    aud = auditor_of(lazy)
    ids = [rid("lazy") for _ in range(40)]
    for r in ids:
        expect(api.post(f"/v1/keyrings/{lazy.kr}/encrypt", {"text": new_text("lazy")},
                        headers={"X-Request-Id": r}), 200)
    want = [audit_hash(aud, r) for r in ids]
    events = poll_until(lambda: (lambda evs: evs if len(evs) >= len(ids) else None)(
        all_events(aud, app=app)), deadline=30, what="the events of 40 answered requests")
    events.sort(key=lambda e: e["seq"])
    assert [hmacs(e, "request_id") for e in events] == [[h] for h in want], \
        "events not written once each in request order"
    assert len({e["chain_id"] for e in events}) == 1
    verify_api(aud)


# ----------------------------------------------------------------------------------------------
# SIGTERM: drain

def test_draining_is_not_ready_and_finishes_in_flight_requests(start_server):
    """Guarantee (README "Configuration"): on SIGTERM the service turns not-ready (/readyz 503
    not_ready, as docs/openapi.yaml says), answers new API requests 503 with Connection: close,
    and finishes the requests in flight with their real answers (within --shutdown-grace), then
    exits 0."""
    import rawhttp
    srv = start_server(args=["--shutdown-grace", "60s"])
    kr = srv.create_keyring()
    api, key = srv.issue_key(["encrypt", "decrypt"])
    text = new_text("in-flight")
    raw = rawhttp.build("POST", f"/v1/keyrings/{kr}/encrypt",
                        [("Authorization", f"Bearer {key['key']}"),
                         ("Content-Type", "application/json")],
                        json.dumps({"text": text}).encode())
    expect(srv.client().get("/readyz"), 200)
    slow, rest = rawhttp.start_in_flight(srv.port, raw)     # in flight: body still arriving

    srv.proc.send_signal(signal.SIGTERM)

    def not_ready():
        r = srv.client().get("/readyz", timeout=10)
        return [r] if r.status_code == 503 else None     # (a 503 Response is falsy)
    r = poll_until(not_ready, deadline=20, interval=0.05, what="/readyz 503 while draining")[0]
    assert r.json() == {"status": "not_ready"}, r.text
    r = srv.client(key["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "new"}, timeout=10)
    expect(r, 503, "unavailable")
    assert r.headers.get("Connection", "").lower() == "close", r.headers
    assert srv.running(), "the service left before its in-flight request was done"

    slow.sendall(rest)
    import time
    answer = rawhttp.read_response(slow, time.monotonic() + 30)
    slow.close()
    assert answer is not None and answer.status == 200, answer and (answer.status, answer.body)
    ct = json.loads(answer.body)["ciphertext"]
    SECRETS.add(ct, "ciphertext")
    assert srv.wait_exit() == 0, srv.stderr()[-800:]
    srv.start()
    assert srv.client(key["key"]).decrypt(kr, ct)["text"] == text
