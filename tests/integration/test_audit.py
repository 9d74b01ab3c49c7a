# SPDX-License-Identifier: Apache-2.0
"""The audit trail (issue 3): events for every /v1 request, filters and cursors, HMAC-ed fields,
no secrets in the trail, /v1/audit/verify, and offline verification of exports with
`difyguard audit verify` -- including every kind of tampering the verifier must catch, --since,
per-app usage roll-ups, and retention pruning behind an anchor checkpoint.

The helpers at the top are also used by test_keys_v2.py and test_audit_load.py."""
import base64
import datetime
import hashlib
import json
import os
import re
import secrets as pysecrets
import subprocess
import time
import zlib

import pytest

from conftest import (CRYPTO_SCOPES, SECRETS, expect, new_text, poll_until, register_api_key,
                      run_cli, uniq)

HEX64 = re.compile(r"^[0-9a-f]{64}$")
# the retention the retention test runs with: the smallest the server accepts
RETENTION = os.environ.get("DG_TEST_AUDIT_RETENTION", "1s")


# ----------------------------------------------------------------------------------------------
# helpers (shared with the other issue-3 test files)

def auditor_of(server):
    """A client with scope audit:read; its key is kept on the server object (the client is made
    afresh, so it follows the server to a new port after a restart)."""
    token = getattr(server, "_auditor_token", None)
    if token is None:
        api, _ = server.issue_key(["audit:read"])
        token = server._auditor_token = api.token
    return server.client(token)


def rid(prefix="r"):
    """A unique client request id (the trail keeps only its HMAC)."""
    return f"{prefix}-{pysecrets.token_hex(12)}"


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def audit_hash(api, value):
    """POST /v1/audit/hash -> the hex HMAC the trail uses for value."""
    body = expect(api.post("/v1/audit/hash", {"value": value}), 200)
    assert HEX64.match(body["hmac"]), body
    assert body["key_id"], body
    return body["hmac"]


def all_events(api, limit=1000, **params):
    """Every event matching the filters, walking next_cursor; fails on a repeated event."""
    events, seen, cursor, pages = [], set(), None, 0
    while True:
        p = {k: v for k, v in params.items() if v is not None}
        p["limit"] = limit
        if cursor is not None:
            p["cursor"] = cursor
        body = expect(api.get("/v1/audit/events", params=p), 200)
        assert len(body["events"]) <= limit, (len(body["events"]), limit)
        for e in body["events"]:
            k = (e["chain_id"], e["seq"])
            assert k not in seen, f"event {k} returned twice while paging ({params})"
            seen.add(k)
            events.append(e)
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            return events
        assert body["events"], "an empty page with a next_cursor"
        assert pages < 100000


def event_count(events):
    """Requests represented by events (coalesced events carry count > 1)."""
    return sum(int(e.get("count", 1) or 1) for e in events)


def event_text(e):
    return json.dumps(e, sort_keys=True)


def find_event(api, h_request_id, **filters):
    """The one event (matching filters) of the request whose X-Request-Id has this HMAC."""
    hits = [e for e in all_events(api, **filters) if h_request_id in hmacs(e, "request_id")]
    assert len(hits) == 1, (f"{len(hits)} events with request id HMAC {h_request_id} "
                            f"({filters}): {hits[:3]}")
    return hits[0]


def find_event_eventually(api, h_request_id, deadline=20.0, **filters):
    """find_event for events the server may write a little after its answer: failed
    authentications are folded per (client, route, second) and written when that second is
    over (so they are not durable before the 401 is sent)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if any(h_request_id in hmacs(e, "request_id") for e in all_events(api, **filters)):
            break
        time.sleep(0.25)
    return find_event(api, h_request_id, **filters)


def public_keys(api):
    body = expect(api.get("/v1/audit/public-key"), 200)
    keys = body["keys"]
    assert keys, body
    for k in keys:
        assert k["algorithm"] == "ed25519", k
        assert len(base64.b64decode(k["public_key"], validate=True)) == 32, k
    assert sum(1 for k in keys if k["active"]) == 1, keys
    return [k["public_key"] for k in keys]


def export_text(api, **params):
    r = api.get("/v1/audit/export", params=params or None)
    expect(r, 200)
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/x-ndjson", ctype
    return r.content.decode("utf-8")


def lines_of(text):
    assert text.endswith("\n"), "an export ends with a newline"
    lines = text[:-1].split("\n")
    assert all(lines), "an export has no empty lines"
    return lines


def join_lines(lines):
    return "\n".join(lines) + "\n"


def parse(line):
    return json.loads(line)


def is_checkpoint(obj):
    return obj.get("type") == "checkpoint"


def is_event(obj):
    return obj.get("type") == "event"


def hmacs(e, field):
    """The HMAC-ed values of an event field ("request_id", "context", ...) as a list."""
    v = (e.get("hmac") or {}).get(field)
    return [] if v is None else (v if isinstance(v, list) else [v])


def verify_api(api):
    body = expect(api.get("/v1/audit/verify"), 200)
    assert body["valid"] is True, f"/v1/audit/verify: {body}"
    return body


def cli_verify(tmp_path, content, keys, since=None, name=None):
    """Write content (str or bytes) to a file and run `difyguard audit verify` on it."""
    path = tmp_path / (name or f"export-{pysecrets.token_hex(4)}.ndjson")
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(data)
    SECRETS.add_log(str(path))       # exports are scanned for secrets at session end too
    args = ["audit", "verify", str(path)]
    for k in keys:
        args += ["--public-key", k]
    if since is not None:
        sp = tmp_path / f"since-{pysecrets.token_hex(4)}.json"
        sp.write_text(since if since.endswith("\n") else since + "\n")
        args += ["--since", str(sp)]
    proc = run_cli(args)
    return proc


def assert_valid(proc, what="export"):
    assert proc.returncode == 0, (f"audit verify of a genuine {what} exited {proc.returncode}: "
                                  f"{proc.stdout[-500:]} {proc.stderr[-500:]}")


def assert_invalid(proc, what, line=None):
    assert proc.returncode == 1, (f"audit verify of {what}: expected exit 1, got "
                                  f"{proc.returncode}: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    out = (proc.stdout + proc.stderr).strip()
    assert out, f"audit verify of {what} gave no reason"
    if line is not None:
        assert f"line {line}:" in out, f"{what}: the message does not name line {line}: {out}"


B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def make_key(key_id=None, secret=None, good_checksum=True):
    """A well-formed API key text (dgk_ + id + secret + base62 CRC-32) that was never issued."""
    key_id = key_id or "".join(pysecrets.choice(B62) for _ in range(16))
    secret = secret or "".join(pysecrets.choice(B62) for _ in range(43))
    body = "dgk_" + key_id + secret
    v, crc = zlib.crc32(body.encode()), ""
    for _ in range(6):
        crc = B62[v % 62] + crc
        v //= 62
    if not good_checksum:
        crc = crc[:-1] + ("0" if crc[-1] != "0" else "1")
    key = body + crc
    register_api_key(key)
    return key


def registered_secrets():
    with SECRETS._lock:            # the harness registry: every plaintext, key and encoding
        return dict(SECRETS._items)


# ----------------------------------------------------------------------------------------------
# fixtures

MADE_CIPHERTEXTS = []


@pytest.fixture(scope="module")
def auditor(server):
    return auditor_of(server)


@pytest.fixture(scope="module")
def keyring(server):
    return server.create_keyring()


def traffic(server, keyring, n=4):
    """Some ok, invalid and denied events on the module server; returns the app's client."""
    api, obj = server.issue_key(CRYPTO_SCOPES)
    for i in range(n):
        ctx = {"tenant": f"tenant-value-{pysecrets.token_hex(8)}"}
        ct = api.encrypt(keyring, text=new_text(f"traffic{i}"), context=ctx)["ciphertext"]
        MADE_CIPHERTEXTS.append(ct)
        api.decrypt(keyring, ct, context=ctx)
    expect(api.post(f"/v1/keyrings/{keyring}/decrypt", {"ciphertext": "dg:v1:AAAA"}), 400)
    expect(server.client(None).get("/v1/keyrings"), 401, "unauthenticated")
    return api, obj


@pytest.fixture(scope="module")
def trail(server, keyring, auditor, tmp_path_factory):
    """A genuine export of the module server with events after every periodic checkpoint, and
    the public keys that verify it."""
    traffic(server, keyring, n=5)
    keys = public_keys(auditor)
    for _ in range(5):
        text = export_text(auditor)
        lines = lines_of(text)
        objs = [parse(line) for line in lines]
        last_cp = max(i for i, o in enumerate(objs) if is_checkpoint(o))
        prev_cps = [i for i, o in enumerate(objs[:-1]) if is_checkpoint(o)]
        # the final line is the export checkpoint, and events precede it past any earlier one
        if last_cp == len(lines) - 1 and is_event(objs[-2]) and (
                not prev_cps or any(is_event(o) for o in objs[prev_cps[-1] + 1:])):
            break
        traffic(server, keyring, n=1)
    else:
        pytest.fail("no export ending in an export checkpoint right after events: "
                    + "\n".join(lines[-3:]))
    assert parse(lines[-1])["kind"] == "export", lines[-1]
    event_idx = [i for i, o in enumerate(objs) if is_event(o)]
    assert len(event_idx) >= 10, f"only {len(event_idx)} events in the export"
    return {"text": text, "lines": lines, "objs": objs, "events": event_idx, "keys": keys,
            "dir": tmp_path_factory.mktemp("exports")}


# ----------------------------------------------------------------------------------------------
# events, filters, cursors

def test_events_listed_and_filtered(server, keyring, auditor):
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    api, obj = server.issue_key(["encrypt", "decrypt"], app=app)
    t0 = time.time() - 2
    cts = []
    for i in range(3):
        cts.append(api.encrypt(keyring, text=new_text(f"ev{i}"), context={"k": "v"})["ciphertext"])
    MADE_CIPHERTEXTS.extend(cts)
    api.decrypt(keyring, cts[0], context={"k": "v"})
    api.decrypt(keyring, cts[1], context={"k": "v"})
    expect(api.post(f"/v1/keyrings/{keyring}/decrypt", {"ciphertext": "dg:v1:AAAA"}), 400)
    expect(api.post(f"/v1/keyrings/{keyring}/decrypt", {"ciphertext": cts[2],
                                                        "context": {"k": "other"}}), 422)
    t1 = time.time() + 2

    # durable before the response: visible at once, no polling
    evs = all_events(auditor, app=app)
    assert len(evs) == 7, [(e["op"], e["status"]) for e in evs]
    assert all(e["app"] == app and e["key_id"] == obj["id"] for e in evs), evs
    assert all(e["keyring"] == keyring for e in evs), evs
    assert sorted((e["op"], e["status"], e["outcome"]) for e in evs) == sorted(
        [("encrypt", 200, "ok")] * 3 + [("decrypt", 200, "ok")] * 2
        + [("decrypt", 400, "invalid"), ("decrypt", 422, "invalid")])
    for e in evs:
        assert HEX64.match(e["hash"]) and HEX64.match(e["prev_hash"]), e
        assert isinstance(e["seq"], int) and e["seq"] >= 1, e

    assert len(all_events(auditor, app=app, op="encrypt")) == 3
    assert len(all_events(auditor, app=app, outcome="ok")) == 5
    inv = all_events(auditor, app=app, op="decrypt", outcome="invalid")
    assert sorted(e["status"] for e in inv) == [400, 422]
    assert len(all_events(auditor, app=app, key_id=obj["id"])) == 7
    assert all_events(auditor, app=app, outcome="denied") == []
    assert all_events(auditor, app=uniq("nobody")) == []

    # time windows, RFC 3339 and unix seconds
    assert len(all_events(auditor, app=app, **{"from": rfc3339(t0), "to": rfc3339(t1)})) == 7
    assert len(all_events(auditor, app=app, **{"from": str(int(t0))})) == 7
    assert all_events(auditor, app=app, **{"from": rfc3339(t1 + 60)}) == []
    assert all_events(auditor, app=app, to=str(int(t0 - 60))) == []

    # cursor pagination: small pages walk everything exactly once
    keys_all = {(e["chain_id"], e["seq"]) for e in evs}
    for limit in (1, 2, 3):
        paged = all_events(auditor, limit=limit, app=app)
        assert {(e["chain_id"], e["seq"]) for e in paged} == keys_all, limit
        assert len(paged) == 7


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "1001"}, {"limit": "many"}, {"cursor": "not a cursor!"},
    {"from": "yesterday"}, {"to": "2026-13-45T99:00:00Z"},
])
def test_events_bad_query_400(auditor, params):
    expect(auditor.get("/v1/audit/events", params=params), 400, "invalid_request")


def test_audit_endpoints_need_audit_read(server, keyring):
    api, _ = server.issue_key(CRYPTO_SCOPES + ["keyrings:admin"])
    for path in ("/v1/audit/events", "/v1/audit/export", "/v1/audit/verify",
                 "/v1/audit/public-key"):
        expect(api.get(path), 403, "forbidden")
        expect(server.client(None).get(path), 401, "unauthenticated")
    expect(api.post("/v1/audit/hash", {"value": "x"}), 403, "forbidden")


def test_denied_requests_are_audited(server, keyring, auditor):
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    api, obj = server.issue_key(["encrypt"], app=app)
    ct = api.encrypt(keyring, text=new_text("deny"))["ciphertext"]
    MADE_CIPHERTEXTS.append(ct)
    t0 = time.time() - 2

    # 403: scope missing
    r403 = rid("forbid")
    expect(api.post(f"/v1/keyrings/{keyring}/decrypt", {"ciphertext": ct},
                    headers={"X-Request-Id": r403}), 403, "forbidden")
    e = find_event(auditor, audit_hash(auditor, r403), app=app)
    assert (e["op"], e["status"], e["outcome"]) == ("decrypt", 403, "denied"), e
    assert e["key_id"] == obj["id"], e
    assert r403 not in event_text(e)

    # 401: the key revoked (known key, so its app and id are in clear)
    expect(server.admin.delete(f"/v1/apps/{app}/keys/{obj['id']}"), 204)
    r401 = rid("revoked")
    expect(api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": "x"},
                    headers={"X-Request-Id": r401}), 401, "unauthenticated")
    e = find_event_eventually(auditor, audit_hash(auditor, r401), outcome="denied", op="encrypt")
    assert (e["status"], e["outcome"]) == (401, "denied"), e
    assert r401 not in event_text(e)

    # 401: no key at all. Such refusals fold per client, route, method, status, key and second,
    # so the event may carry another request's id: identify ours by a keyring of this test
    # alone (named in clear: it exists) and by the count of the refusals we made.
    mine = server.create_keyring()
    rnone = [rid("nokey") for _ in range(3)]
    for r in rnone:
        expect(server.client(None).post(f"/v1/keyrings/{mine}/encrypt", {"text": "x"},
                                        headers={"X-Request-Id": r}), 401, "unauthenticated")
    hs = {audit_hash(auditor, r) for r in rnone}

    def denied_401():
        evs = [e for e in all_events(auditor, op="encrypt", **{"from": str(int(t0))})
               if e["keyring"] == mine]
        return evs if event_count(evs) >= len(rnone) else None

    evs = poll_until(denied_401, deadline=20, interval=0.25, what="the 401s without a key audited")
    assert event_count(evs) == len(rnone), evs
    for e in evs:
        assert (e["status"], e["outcome"], e["app"], e["key_id"]) == (401, "denied", None, None), e
        assert "key_id" not in (e.get("hmac") or {}), e
        assert set(hmacs(e, "request_id")) <= hs and hmacs(e, "request_id"), e
        assert all(r not in event_text(e) for r in rnone), e


def test_revoked_key_401_names_the_existing_key(server, keyring, auditor):
    """docs/audit.md: key_id is "the API key id used, when it exists"; only ids that do not
    exist are HMAC-ed. A revoked key still exists: its 401 names it in clear."""
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    api, obj = server.issue_key(["encrypt"], app=app)
    expect(server.admin.delete(f"/v1/apps/{app}/keys/{obj['id']}"), 204)
    r_id = rid("revoked")
    expect(api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": "x"},
                    headers={"X-Request-Id": r_id}), 401, "unauthenticated")
    e = find_event_eventually(auditor, audit_hash(auditor, r_id), op="encrypt", outcome="denied")
    assert e["key_id"] == obj["id"], f"the revoked key's id is not in its 401 event: {e}"


def test_unknown_names_are_hmac_ed(server, keyring, auditor):
    unknown = make_key()
    r_id = rid("unknown-key")
    expect(server.client(unknown).post(f"/v1/keyrings/{keyring}/encrypt", {"text": "x"},
                                       headers={"X-Request-Id": r_id}), 401, "unauthenticated")
    e = find_event_eventually(auditor, audit_hash(auditor, r_id), op="encrypt", outcome="denied")
    assert e["key_id"] is None and e["app"] is None, e
    assert hmacs(e, "key_id") == [audit_hash(auditor, unknown[4:20])], e
    assert unknown[4:20] not in event_text(e)
    missing = uniq("nokr")
    r_id = rid("unknown-kr")
    expect(server.admin.post(f"/v1/keyrings/{missing}/rotate", {},
                             headers={"X-Request-Id": r_id}), 404, "not_found")
    e = find_event(auditor, audit_hash(auditor, r_id), op="keyring.rotate")
    assert e["keyring"] is None and hmacs(e, "keyring") == [audit_hash(auditor, missing)], e
    assert missing not in event_text(e)
    assert e["outcome"] == "invalid" and e["status"] == 404, e


# ----------------------------------------------------------------------------------------------
# HMAC-ed fields, no secrets

def test_context_and_references_only_as_hmacs(server, keyring, auditor):
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    api, _ = server.issue_key(["encrypt", "decrypt"], app=app)
    cval = f"tenant-{pysecrets.token_hex(10)}"
    ref = f"ref-{pysecrets.token_hex(10)}"
    r1, r2, r3 = rid("ctx"), rid("ctx"), rid("batch")
    ct = expect(api.post(f"/v1/keyrings/{keyring}/encrypt",
                         {"text": new_text("ctx"), "context": {"tenant": cval}},
                         headers={"X-Request-Id": r1}), 200)["ciphertext"]
    MADE_CIPHERTEXTS.append(ct)
    expect(api.post(f"/v1/keyrings/{keyring}/decrypt", {"ciphertext": ct,
                                                        "context": {"tenant": cval}},
                    headers={"X-Request-Id": r2}), 200)
    batch = expect(api.post(f"/v1/keyrings/{keyring}/encrypt",
                            {"items": [{"text": new_text("b1"), "reference": ref},
                                       {"text": new_text("b2"), "context": {"tenant": cval}}]},
                            headers={"X-Request-Id": r3}), 200)
    MADE_CIPHERTEXTS.extend(i["ciphertext"] for i in batch["items"])

    hc, href = audit_hash(auditor, cval), audit_hash(auditor, ref)
    assert audit_hash(auditor, cval) == hc, "the HMAC of a value is stable"
    assert audit_hash(auditor, cval + "x") != hc
    for r in (r1, r2):
        e = find_event(auditor, audit_hash(auditor, r), app=app)
        assert hmacs(e, "context") == [hc], f"context value HMAC missing from {e}"
        assert cval not in event_text(e) and r not in event_text(e), e
    e = find_event(auditor, audit_hash(auditor, r3), app=app)
    assert hmacs(e, "reference") == [href] and hmacs(e, "context") == [hc], e
    assert ref not in event_text(e) and cval not in event_text(e), e
    text = export_text(auditor)
    for clear in (cval, ref, r1, r2, r3):
        assert clear not in text, f"{clear!r} in clear in the export"


def test_hash_endpoint(auditor):
    a = audit_hash(auditor, "some value")
    assert audit_hash(auditor, "some value") == a
    assert audit_hash(auditor, "some valuE") != a
    assert HEX64.match(audit_hash(auditor, ""))
    for bad in ({}, {"value": 5}, {"value": "x", "extra": 1}, {"value": None}):
        expect(auditor.post("/v1/audit/hash", bad), 400, "invalid_request")


def test_no_secrets_in_the_export(server, keyring, auditor, tmp_path):
    api, _ = traffic(server, keyring, n=3)
    dk = expect(api.post(f"/v1/keyrings/{keyring}/datakey", {"include_plaintext": True}), 200)
    SECRETS.add_bytes(base64.b64decode(dk["plaintext_key"]), "data key")
    MADE_CIPHERTEXTS.append(dk["wrapped_key"])
    text = export_text(auditor)
    path = tmp_path / "export.ndjson"
    path.write_text(text)
    SECRETS.add_log(str(path))
    raw = text.encode("utf-8")
    hits = [label for value, label in registered_secrets().items() if value in raw]
    assert not hits, f"secrets in the audit export: {hits[:20]}"
    assert MADE_CIPHERTEXTS
    for ct in MADE_CIPHERTEXTS:
        assert ct.split(":")[2] not in text, f"a ciphertext ({ct[:16]}...) in the audit export"


# ----------------------------------------------------------------------------------------------
# verification: API, CLI, tampering

def test_verify_api_and_public_key(server, keyring, auditor):
    traffic(server, keyring, n=2)
    body = verify_api(auditor)
    assert body["events"] >= 8 and body["chains"] >= 1, body
    assert "error" not in body or not body["error"], body
    keys = expect(auditor.get("/v1/audit/public-key"), 200)["keys"]
    for k in keys:
        assert re.match(r"^[0-9a-f]{16}$", k["key_id"]), k
    public_keys(auditor)


def test_genuine_export_verifies(trail):
    assert_valid(cli_verify(trail["dir"], trail["text"], trail["keys"]))


def test_verify_json_stdin_key_file_and_env(trail, tmp_path):
    n_ev = len(trail["events"])
    n_cp = sum(1 for o in trail["objs"] if is_checkpoint(o))
    path = tmp_path / "export.ndjson"
    path.write_text(trail["text"])
    keys = []
    for k in trail["keys"]:
        keys += ["--public-key", k]
    proc = run_cli(["audit", "verify", str(path), "--json"] + keys)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    heads = res.pop("heads")
    assert res == {"valid": True, "events": n_ev, "checkpoints": n_cp, "chains": 1}, res
    last = trail["objs"][trail["events"][-1]]
    assert [(h["chain_id"], h["seq"], h["hash"]) for h in heads] == [
        (last["chain_id"], last["seq"], last["hash"])], heads
    proc = run_cli(["audit", "verify", "-"] + keys, input_text=trail["text"])
    assert proc.returncode == 0, ("FILE - reads standard input", proc.stderr)
    assert f"{n_ev} events" in proc.stdout, proc.stdout
    kf = tmp_path / "keys.txt"
    kf.write_text("\n".join(trail["keys"]) + "\n")
    proc = run_cli(["audit", "verify", str(path), "--public-key", f"@{kf}"])
    assert proc.returncode == 0, ("--public-key @FILE", proc.stderr)
    proc = run_cli(["audit", "verify", str(path)], env={"DIFYGUARD_PUBLIC_KEY": trail["keys"][0]})
    assert proc.returncode == 0, ("DIFYGUARD_PUBLIC_KEY", proc.stderr)
    # a failure in JSON names the line
    bad = list(trail["lines"])
    li = trail["events"][2]
    bad[li] = bad[li].replace('"seq":', '"seq": ', 1)
    path.write_text(join_lines(bad))
    proc = run_cli(["audit", "verify", str(path), "--json"] + keys)
    assert proc.returncode == 1, proc.returncode
    res = json.loads(proc.stdout)
    assert res["valid"] is False and res["line"] == li + 1 and res["error"], res


def test_verify_usage_errors(trail, tmp_path):
    proc = run_cli(["audit", "verify", str(tmp_path / "missing.ndjson"), "--public-key",
                    trail["keys"][0]])
    assert proc.returncode == 1, ("an unreadable file is exit 1", proc.returncode)
    path = tmp_path / "e.ndjson"
    path.write_text(trail["text"])
    assert run_cli(["audit", "verify", str(path)]).returncode == 2, "no --public-key"
    assert run_cli(["audit", "verify", str(path), "--public-key", "not base64!"]).returncode == 2


def _flips(trail):
    """(line index, byte offset, bit) for several event lines and positions."""
    ev = trail["events"]
    picks = sorted({ev[0], ev[1], ev[len(ev) // 2], ev[-1]})
    out = []
    for li in picks:
        n = len(trail["lines"][li].encode())
        for off in sorted({0, 1, n // 3, n // 2, n - 70, n - 2, n - 1}):
            out.append((li, off, (li + off) % 7))
    return out


def test_flipped_bit_in_any_event_detected(trail):
    for li, off, bit in _flips(trail):
        lines = [line.encode() for line in trail["lines"]]
        b = bytearray(lines[li])
        b[off] ^= 1 << bit
        if b[off] in (0x0A, 0x0D):
            b[off] ^= 1 << bit
            b[off] ^= 1 << ((bit + 1) % 7)
        lines[li] = bytes(b)
        proc = cli_verify(trail["dir"], b"\n".join(lines) + b"\n", trail["keys"])
        assert_invalid(proc, f"a bit flipped in line {li + 1} at byte {off}", line=li + 1)


def _mutate(trail, kind):
    lines = list(trail["lines"])
    ev = trail["events"]
    mid = ev[len(ev) // 2]
    if kind == "delete-middle":
        del lines[mid]
    elif kind == "delete-first":
        del lines[ev[0]]
    elif kind == "delete-last-event":
        del lines[ev[-1]]
    elif kind == "swap":
        a = next(i for i in ev if i + 1 in ev and i > ev[0])
        lines[a], lines[a + 1] = lines[a + 1], lines[a]
    elif kind == "truncated-tail":
        lines = lines[:-1]
    elif kind == "duplicate-seq":
        lines.insert(mid + 1, lines[mid])
    elif kind == "duplicate-last-event":
        lines.insert(ev[-1] + 1, lines[ev[-1]])
    elif kind == "torn":
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
    elif kind == "torn-no-newline":
        return "\n".join(lines)[:-len(lines[-1]) // 2]
    elif kind == "event-after-checkpoint":
        lines.append(lines[ev[len(ev) // 3]])
    elif kind == "empty":
        return ""
    elif kind == "cut-at-periodic":
        cps = [i for i, o in enumerate(trail["objs"][:-1])
               if is_checkpoint(o) and o["kind"] == "periodic"]
        if not cps:
            pytest.skip("no periodic checkpoint in this export")
        lines = lines[: cps[-1] + 1]
    elif kind == "crlf":
        return "\r\n".join(lines) + "\r\n"
    elif kind == "blank-line":
        lines.insert(mid, "")
    elif kind == "no-checkpoints":
        lines = [line for line in lines if is_event(parse(line))]
    else:
        raise AssertionError(kind)
    return join_lines(lines)


@pytest.mark.parametrize("kind", [
    "delete-middle", "delete-first", "delete-last-event", "swap", "truncated-tail",
    "duplicate-seq", "duplicate-last-event", "torn", "torn-no-newline",
    "event-after-checkpoint", "no-checkpoints", "empty", "cut-at-periodic", "crlf", "blank-line",
])
def test_tampered_export_detected(trail, kind):
    assert_invalid(cli_verify(trail["dir"], _mutate(trail, kind), trail["keys"]), kind)


def test_export_resigned_with_another_key_refused(trail, start_server):
    other = start_server()
    other_keys = public_keys(auditor_of(other))
    assert not set(other_keys) & set(trail["keys"]), "two data dirs share an audit key"
    # the genuine export under the wrong key
    assert_invalid(cli_verify(trail["dir"], trail["text"], other_keys), "another key")
    # the other server's own export verifies under its key, not under ours
    api, _ = other.issue_key(["encrypt"])
    kr = other.create_keyring()
    api.encrypt(kr, text=new_text("other"))
    text = export_text(auditor_of(other))
    assert_valid(cli_verify(trail["dir"], text, other_keys), "export of the second server")
    assert_invalid(cli_verify(trail["dir"], text, trail["keys"]), "a trail signed by another key")
    # our events followed by the other server's checkpoint: a re-signed tail
    mixed = [line for line in trail["lines"][:-1]]
    mixed.append(lines_of(text)[-1])
    assert_invalid(cli_verify(trail["dir"], join_lines(mixed), trail["keys"] + other_keys),
                   "a checkpoint from another trail")


class Forger:
    """An attacker with write access to an export and an Ed25519 key of their own: alters an
    event, recomputes every hash after it and re-signs every checkpoint (the formats of
    server/audit/format.h). Only the auditor's public key can tell."""

    def __init__(self, d):
        self.dir = d
        self.key = d / f"forger-{pysecrets.token_hex(4)}.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(self.key)],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", str(self.key), "-pubout", "-outform",
                              "DER"], check=True, capture_output=True).stdout
        self.pk = der[-32:]
        self.pk_b64 = base64.b64encode(self.pk).decode()
        self.key_id = hashlib.sha256(self.pk).hexdigest()[:16]

    def sign(self, msg):
        m = self.dir / "msg.bin"
        m.write_bytes(msg)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(self.key), "-rawin",
                              "-in", str(m)], check=True, capture_output=True).stdout
        assert len(sig) == 64
        return sig

    def forge(self, lines, alter_seq):
        out, prev, hashes, altered = [], {}, {}, False
        for line in lines:
            o = json.loads(line)
            chain = o["chain_id"]
            if o["type"] == "event":
                body = line[: line.rindex(',"hash":"')] + "}"
                if o["seq"] == alter_seq:
                    assert '"status":200,' in body, body
                    body = body.replace('"status":200,', '"status":201,', 1)
                    altered = True
                if chain in prev:
                    body = body.replace(f'"prev_hash":"{o["prev_hash"]}"',
                                        f'"prev_hash":"{prev[chain]}"', 1)
                h = hashlib.sha256(b"difyguard-audit-v1\n" + body.encode()).hexdigest()
                prev[chain], hashes[(chain, o["seq"])] = h, h
                out.append(body[:-1] + f',"hash":"{h}"}}')
            else:
                o["hash"] = hashes.get((chain, o["seq"]), o["hash"])
                msg = "difyguard-audit-checkpoint-v1\n" + "\n".join(
                    [chain, str(o["seq"]), o["hash"], o["time"], o["kind"],
                     o.get("new_key_id", ""), o.get("new_public_key", "")]) + "\n"
                sig = base64.b64encode(self.sign(msg.encode())).decode()
                o["signatures"] = [{"key_id": self.key_id, "sig": sig}]
                out.append(json.dumps(o, separators=(",", ":")))
        assert altered, f"no event with seq {alter_seq}"
        return join_lines(out)


def test_forged_and_resigned_trail_refused(trail):
    ok_events = [parse(trail["lines"][i]) for i in trail["events"]
                 if parse(trail["lines"][i])["status"] == 200]
    victim = ok_events[len(ok_events) // 2]["seq"]
    forger = Forger(trail["dir"])
    forged = forger.forge(trail["lines"], victim)
    # the forgery is perfect under the forger's own key (so the test forges correctly) ...
    assert_valid(cli_verify(trail["dir"], forged, [forger.pk_b64]), "forgery under its own key")
    # ... and refused under the trail's real key
    assert_invalid(cli_verify(trail["dir"], forged, trail["keys"]),
                   "an altered trail re-signed with another key")


def test_export_since_checkpoint(server, keyring, auditor, trail, tmp_path):
    first = export_text(auditor)
    since = lines_of(first)[-1]
    cp = parse(since)
    assert is_checkpoint(cp) and cp["kind"] == "export", since
    traffic(server, keyring, n=3)
    tail = export_text(auditor, chain_id=cp["chain_id"], after_seq=str(cp["seq"]))
    tlines = lines_of(tail)
    tobjs = [parse(line) for line in tlines]
    evs = [o for o in tobjs if is_event(o)]
    assert evs and evs[0]["seq"] == cp["seq"] + 1, (cp["seq"], evs[:1])
    assert evs[0]["prev_hash"] == cp["hash"], (evs[0], cp)
    assert all(o["chain_id"] == cp["chain_id"] for o in tobjs)
    keys = trail["keys"]
    assert_valid(cli_verify(tmp_path, tail, keys, since=since), "export after a checkpoint")
    # the auditor's kept checkpoint altered: refused
    bad = dict(cp)
    bad["hash"] = ("0" if cp["hash"][0] != "0" else "1") + cp["hash"][1:]
    assert_invalid(cli_verify(tmp_path, tail, keys, since=json.dumps(bad, separators=(",", ":"))),
                   "--since with an altered checkpoint")
    # the first event after the checkpoint removed: no longer starts right after it
    first_ev = next(i for i, o in enumerate(tobjs) if is_event(o))
    cut = tlines[:first_ev] + tlines[first_ev + 1:]
    assert_invalid(cli_verify(tmp_path, join_lines(cut), keys, since=since),
                   "--since export missing its first event")
    # an older checkpoint does not vouch for a later start
    older = [line for line in trail["lines"] if is_checkpoint(parse(line))][0]
    if parse(older)["seq"] != cp["seq"]:
        assert_invalid(cli_verify(tmp_path, tail, keys, since=older), "--since an older checkpoint")


def test_signing_key_rotation(start_server, tmp_path):
    srv = start_server()
    aud = auditor_of(srv)
    kr = srv.create_keyring()
    api, _ = srv.issue_key(["encrypt"])
    api.encrypt(kr, text=new_text("before-rotation"))
    old = public_keys(aud)
    assert len(old) == 1
    expect(aud.post("/v1/audit/rotate-key"), 403, "forbidden")     # needs keyrings:admin too
    rot, _ = srv.issue_key(["audit:read", "keyrings:admin"])
    body = expect(rot.post("/v1/audit/rotate-key"), 200)
    keys = expect(aud.get("/v1/audit/public-key"), 200)["keys"]
    assert {k["key_id"] for k in keys} == {k["key_id"] for k in body["keys"]}
    active = [k for k in keys if k["active"]]
    assert len(keys) == 2 and len(active) == 1 and active[0]["key_id"] == body["key_id"], keys
    new = active[0]["public_key"]
    assert new not in old
    api.encrypt(kr, text=new_text("after-rotation"))
    text = export_text(aud)
    changes = [parse(line) for line in lines_of(text) if parse(line).get("kind") == "key_change"]
    assert len(changes) == 1 and changes[0]["new_key_id"] == body["key_id"], changes
    assert len(changes[0]["signatures"]) == 2, changes[0]
    verify_api(aud)
    # the auditor's old key carries over to the new one through the key change
    assert_valid(cli_verify(tmp_path, text, old), "export across a key change, old key")
    assert_valid(cli_verify(tmp_path, text, old + [new]), "export across a key change, both")
    # the new key alone cannot vouch for checkpoints made before it existed
    assert_invalid(cli_verify(tmp_path, text, [new]), "pre-rotation checkpoints under the new key")
    # the key change line removed: the new key's checkpoints are no longer accepted
    cut = [line for line in lines_of(text) if parse(line).get("kind") != "key_change"]
    assert_invalid(cli_verify(tmp_path, join_lines(cut), old), "export without its key change")
    e = all_events(aud, op="audit.rotate_key", order="asc")
    assert [x["status"] for x in e] == [403, 200], e
    # newest first by default
    e = all_events(aud, op="audit.rotate_key")
    assert [x["status"] for x in e] == [200, 403], e


# ----------------------------------------------------------------------------------------------
# usage roll-ups

def usage_counts(api, app, days=1):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    frm = (today - datetime.timedelta(days=days)).isoformat()
    to = (today + datetime.timedelta(days=1)).isoformat()
    body = expect(api.get(f"/v1/apps/{app}/usage", params={"from": frm, "to": to}), 200)
    assert body["app"] == app and body["from"] == frm and body["to"] == to, body
    out = {}
    for u in body["usage"]:
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", u["day"]), u
        k = (u["op"], u["keyring"], u["outcome"])
        out[k] = out.get(k, 0) + u["count"]
    return out


def test_usage_by_day_op_keyring_outcome(server, auditor):
    a = server.create_keyring()
    b = server.create_keyring()
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    api, _ = server.issue_key(["encrypt", "decrypt"], keyrings=[a], app=app)
    cts = [api.encrypt(a, text=new_text(f"use{i}"))["ciphertext"] for i in range(3)]
    MADE_CIPHERTEXTS.extend(cts)
    api.decrypt(a, cts[0])
    api.decrypt(a, cts[1])
    expect(api.post(f"/v1/keyrings/{a}/decrypt", {"ciphertext": cts[2], "context": {"x": "y"}}),
           422)
    expect(api.post(f"/v1/keyrings/{b}/encrypt", {"text": "x"}), 403, "forbidden")
    expect(api.post(f"/v1/keyrings/{b}/encrypt", {"text": "x"}), 403, "forbidden")
    want = {("encrypt", a, "ok"): 3, ("decrypt", a, "ok"): 2, ("decrypt", a, "invalid"): 1,
            ("encrypt", b, "denied"): 2}
    last = {}

    def matches():
        last["usage"] = usage_counts(server.admin, app)
        return last["usage"] == want

    end = time.monotonic() + 30             # roll-ups commit with the events; allow a lag
    while not matches() and time.monotonic() < end:
        time.sleep(0.5)
    assert last["usage"] == want
    assert usage_counts(auditor, app) == want, "audit:read may read usage too"
    enc_only, _ = server.issue_key(["encrypt"])
    expect(enc_only.get(f"/v1/apps/{app}/usage"), 403, "forbidden")
    day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    expect(server.admin.get(f"/v1/apps/{uniq('nobody')}/usage",
                            params={"from": day, "to": day}), 404, "not_found")
    expect(server.admin.get(f"/v1/apps/{app}/usage", params={"from": "last week"}), 400,
           "invalid_request")


# ----------------------------------------------------------------------------------------------
# retention

def test_retention_prunes_behind_an_anchor_and_still_verifies(start_server, tmp_path):
    """Guarantee (SECURITY.md "Retention"): with --audit-retention old events are archived, then
    pruned behind a signed anchor; the pruned export and every archive verify offline on their
    own, and together they still hold every event (here: each of the app's five requests, once,
    with its answer)."""
    import glob
    srv = start_server(args=["--audit-retention", RETENTION,
                             "--audit-checkpoint-interval", "1s"])
    aud = auditor_of(srv)
    kr = srv.create_keyring()
    app = uniq("app")
    expect(srv.admin.post("/v1/apps", {"name": app}), 201)
    api, _ = srv.issue_key(["encrypt"], app=app)
    for i in range(5):
        api.encrypt(kr, text=new_text(f"ret{i}"))
    first_seq = min((e["seq"] for e in all_events(aud, limit=1000)), default=0)

    def pruned():
        # with a 1s retention even the newest events may be gone by the time we look
        oldest = min((e["seq"] for e in all_events(aud, limit=1000)), default=None)
        return not all_events(aud, app=app) and (oldest is None or oldest > first_seq)

    poll_until(pruned, deadline=90, interval=1.0, what="events older than the retention pruned")
    text = export_text(aud)
    objs = [parse(line) for line in lines_of(text)]
    assert is_checkpoint(objs[0]) and objs[0]["kind"] == "anchor", objs[0]
    first_ev = next((i for i, o in enumerate(objs) if is_event(o)), len(objs))
    anchor = max((o for o in objs[:first_ev] if o.get("kind") == "anchor"), key=lambda o: o["seq"])
    if first_ev < len(objs):          # (with a 1s retention every event may be pruned already)
        ev = objs[first_ev]
        assert ev["seq"] == anchor["seq"] + 1 and ev["prev_hash"] == anchor["hash"], (anchor, ev)
    verify_api(aud)
    keys = public_keys(aud)
    assert_valid(cli_verify(tmp_path, text, keys), "pruned export")
    # without its anchor the pruned export no longer verifies
    assert_invalid(cli_verify(tmp_path, join_lines(lines_of(text)[1:]), keys),
                   "a pruned export without its anchor")

    # the archives: each verifies alone; with the live trail they hold every event once
    chain = anchor["chain_id"]
    paths = glob.glob(os.path.join(srv.data_dir, "audit-archive", f"audit-{chain}-upto-*.ndjson"))
    assert paths, "events were pruned but no archive was written"
    kept = {}
    for path in sorted(paths):
        with open(path, "rb") as f:
            archived = f.read().decode("utf-8")
        SECRETS.add_log(path)
        assert_valid(cli_verify(tmp_path, archived, keys), f"archive {os.path.basename(path)}")
        for o in map(parse, lines_of(archived)):
            if is_event(o):
                assert kept.setdefault((o["chain_id"], o["seq"]), o["hash"]) == o["hash"], o
    assert max(seq for c, seq in kept if c == chain) >= anchor["seq"], (anchor, sorted(kept)[-3:])
    for o in objs:
        if is_event(o):
            kept.setdefault((o["chain_id"], o["seq"]), o["hash"])
    seqs = sorted(seq for c, seq in kept if c == chain)
    assert seqs == list(range(1, seqs[-1] + 1)), "archives and trail leave a gap in the chain"
    mine = []
    for path in paths:
        with open(path) as f:
            mine += [o for o in map(parse, lines_of(f.read())) if is_event(o) and o["app"] == app]
    mine = {o["seq"]: o for o in mine}.values()
    assert sorted((o["op"], o["status"]) for o in mine) == [("encrypt", 200)] * 5, list(mine)
    # daily roll-ups survive pruning
    assert usage_counts(srv.admin, app).get(("encrypt", kr, "ok")) == 5
