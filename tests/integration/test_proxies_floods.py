# SPDX-License-Identifier: Apache-2.0
"""Client addresses in the trail (X-Forwarded-For only from trusted proxies) and coalescing of
unknown-key floods into counted events."""
import time

from conftest import expect, uniq


def hmac_of(api, value):
    return expect(api.post("/v1/audit/hash", {"value": value}), 200)["hmac"]


def events(api, **params):
    return expect(api.get("/v1/audit/events", params=params), 200)["events"]


def last_event(api, op):
    evs = events(api, op=op, limit=1)      # newest first (issue 14)
    return evs[0]


def test_forwarded_for_only_from_trusted_proxies(start_server):
    for trusted, expected in ((False, "127.0.0.1"), (True, "203.0.113.7")):
        args = ["--trusted-proxies", "127.0.0.1"] if trusted else []
        srv = start_server(args=args)
        expect(srv.admin.get("/v1/keyrings", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}),
               200)
        ev = last_event(srv.admin, "keyring.list")
        assert ev["hmac"]["client"] == hmac_of(srv.admin, expected), (trusted, ev)
        srv.stop()


def test_unknown_key_flood_is_coalesced(start_server):
    srv = start_server()
    bad = "dgk_" + "A" * 16 + "B" * 43 + "000000"     # well formed, wrong checksum
    unknown = srv.client(bad)
    n = 30
    for _ in range(n):
        expect(unknown.get("/v1/keyrings"), 401, "unauthenticated")
    # every refusal is accounted for, in fewer events than requests
    def denied():
        evs = [e for e in events(srv.admin, op="keyring.list", outcome="denied", limit=1000)
               if e["status"] == 401]
        return evs if sum(e["count"] for e in evs) >= n else None
    end = time.monotonic() + 20
    evs = denied()
    while evs is None and time.monotonic() < end:
        time.sleep(0.2)
        evs = denied()
    assert evs is not None, "not every 401 reached the trail"
    assert sum(e["count"] for e in evs) == n
    assert len(evs) < n
    assert expect(srv.admin.get("/v1/audit/verify"), 200)["valid"] is True


def test_auth_failures_counted_per_reason(start_server):
    srv = start_server()

    def count(reason):
        text = srv.client().get("/metrics").text
        for line in text.splitlines():
            if line.startswith(f'difyguard_auth_failures_total{{reason="{reason}"}}'):
                return int(line.split()[-1])
        raise AssertionError(f"no counter for {reason}: {text[:300]}")

    before = count("malformed")
    for _ in range(3):
        expect(srv.client("not-a-key").get("/v1/keyrings"), 401, "unauthenticated")
    assert count("malformed") == before + 3
    assert "# TYPE difyguard_auth_failures_total counter" in srv.client().get("/metrics").text


def test_audit_sink_failure_answers_503_and_counts(start_server):
    """A database another process holds locked past the busy timeout: the audit writer cannot
    commit, so the request is answered 503 (never 200 without its event) and counted."""
    import sqlite3

    srv = start_server()
    name = uniq("sink")
    expect(srv.admin.post("/v1/keyrings", {"name": name}), 201)
    expect(srv.admin.post(f"/v1/keyrings/{name}/encrypt", {"text": "warm"}), 200)

    def failures():
        for line in srv.client().get("/metrics").text.splitlines():
            if line.startswith("difyguard_audit_write_failures_total "):
                return int(line.split()[-1])
        raise AssertionError("no audit failure counter")

    before = failures()
    db = sqlite3.connect(srv.datadir.db, timeout=30, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        r = srv.admin.post(f"/v1/keyrings/{name}/encrypt", {"text": "while locked"}, timeout=60)
        expect(r, 503, "unavailable")
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert failures() >= before + 1
    expect(srv.admin.post(f"/v1/keyrings/{name}/encrypt", {"text": "after"}), 200)
    assert expect(srv.admin.get("/v1/audit/verify"), 200)["valid"] is True
