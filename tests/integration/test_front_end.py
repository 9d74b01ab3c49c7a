# SPDX-License-Identifier: Apache-2.0
"""The HTTP front end as an attacker sees it (security review, issue 6): what a request may be
spelled as, what reaches a handler, and what the trail records of requests that never do.

Guarantees tested here:
- Only the canonical spelling of a path is routed; every other spelling (empty, '.' or '..'
  segments, percent-encoding, a trailing '/') is refused before routing, and audited.
- Client-chosen bytes (an odd method) never reach the trail raw, and never fail other clients'
  requests in the same group commit.
- X-Forwarded-For from a trusted proxy: every header line, the right hop.
- A chunked body over the limit is not read to its end.
- A keyring name that does not exist is never stored in clear.
- Refused authentications of a known key id fold into counted events.
"""
import concurrent.futures
import socket
import time

import pytest

import rawhttp
from conftest import CRYPTO_SCOPES, expect, new_text, poll_until, register_api_key, uniq
from test_audit import audit_hash, make_key


def events(api, **params):
    params.setdefault("limit", 1000)
    return expect(api.get("/v1/audit/events", params=params), 200)["events"]


def folded(api, **match):
    """Sum of counts of events matching every field given (e.g. status=400, route="unknown")."""
    return sum(e["count"] for e in events(api, op=match.get("op", "unknown"))
               if all(e.get(k) == v for k, v in match.items()))


@pytest.fixture
def env(start_server):
    srv = start_server()
    kr = srv.create_keyring()
    api, key = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("front")
    ct = api.encrypt(kr, text=text, context={"row": "1"})["ciphertext"]
    return srv, kr, api, ct, text


NONCANONICAL = [
    "//v1/keyrings/{kr}/decrypt",
    "/v1//keyrings/{kr}/decrypt",
    "/v1/keyrings/{kr}/decrypt/",
    "/v1/./keyrings/{kr}/decrypt",
    "/v1/keyrings/x/../{kr}/decrypt",
    "/v1/keyrings/{kr}/%64ecrypt",
    "/%76%31/keyrings/{kr}/decrypt",
    "/v1/keyrings/{kr}%2Fdecrypt",
    "/v1/keyrings/{kr}/decrypt%2F",
]


def test_noncanonical_paths_refused_before_routing_and_audited(env):
    srv, kr, api, ct, text = env
    body = ('{"ciphertext": "%s", "context": {"row": "1"}}' % ct).encode()
    auth = [("Authorization", "Bearer " + api.token), ("Content-Type", "application/json")]
    for target in NONCANONICAL:
        r = rawhttp.request(srv.port, rawhttp.build("POST", target.format(kr=kr), auth, body))
        assert r is not None, target
        assert r.status == 400, (target, r.status, r.body[:200])
        assert b"invalid_request" in r.body and text.encode() not in r.body, target
    # the canonical spelling still works
    r = rawhttp.request(srv.port, rawhttp.build("POST", f"/v1/keyrings/{kr}/decrypt", auth, body))
    assert r.status == 200 and text.encode() in r.body
    # each refusal is in the trail (folded, route "unknown"), and none reached a handler
    poll_until(lambda: folded(srv.admin, status=400, route="unknown") >= len(NONCANONICAL),
               what="every refused spelling in the trail")
    assert folded(srv.admin, status=400, route="unknown") == len(NONCANONICAL)
    decrypts = [e for e in events(srv.admin, op="decrypt") if e["status"] == 200]
    assert len(decrypts) == 1, decrypts
    assert expect(srv.admin.get("/v1/audit/verify"), 200)["valid"] is True


def test_unrouted_and_public_routes(env):
    """Unknown paths and methods are audited as "unknown"; /healthz, /readyz and /metrics are not
    (the route decides, whatever the spelling)."""
    srv, kr, api, ct, text = env
    before = len(events(srv.admin, op="unknown"))
    for target in ("/nope", "/v1/nope", "/healthz/x"):
        r = rawhttp.request(srv.port, rawhttp.build("GET", target))
        assert r.status == 404, target
    r = rawhttp.request(srv.port, rawhttp.build("PUT", f"/v1/keyrings/{kr}"))
    assert r.status == 405
    poll_until(lambda: folded(srv.admin, route="unknown", status=404) >= 3,
               what="404s in the trail")
    assert folded(srv.admin, route="unknown", status=405, method="PUT") == 1
    for target in ("/healthz", "/readyz", "/metrics"):
        assert rawhttp.request(srv.port, rawhttp.build("GET", target)).status == 200
    time.sleep(1.5)                     # folded events are written within ~1.25 s
    routes = {e["route"] for e in events(srv.admin)}
    assert not routes & {"/healthz", "/readyz", "/metrics"}, routes
    assert len(events(srv.admin, op="unknown")) >= before + 2


ODD_METHODS = [b"G\xc3", b"\xff\xfe", b"POST\xe2\x82", b"GETX", b"get"]


def test_odd_methods_never_fail_other_requests(env):
    """A method with bytes >= 0x80 (or a character cut in two) used to fail the whole group
    commit: other clients' valid requests got 503 and the odd request left no trace."""
    srv, kr, api, ct, text = env
    auth = [("Authorization", "Bearer " + srv.admin_key)]
    rounds = 12

    def odd(i):
        m = ODD_METHODS[i % len(ODD_METHODS)]
        return rawhttp.request(srv.port, rawhttp.build(m, "/v1/keyrings", auth)).status

    def valid(i):
        return api.post(f"/v1/keyrings/{kr}/encrypt", {"text": f"v{i}"}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
        futs = [ex.submit(odd, i) for i in range(rounds * len(ODD_METHODS))]
        oks = [ex.submit(valid, i) for i in range(rounds * 8)]
        odd_status = [f.result() for f in futs]
        ok_status = [f.result() for f in oks]
    assert set(ok_status) == {200}, sorted(set(ok_status))
    assert set(odd_status) == {405}, sorted(set(odd_status))
    n_odd = len(odd_status) - sum(1 for i in range(len(odd_status))
                                  if ODD_METHODS[i % len(ODD_METHODS)] in (b"GETX", b"get"))
    poll_until(lambda: folded(srv.admin, status=405, method="OTHER") >= len(odd_status),
               what="every odd-method request in the trail")
    assert folded(srv.admin, status=405, method="OTHER") == len(odd_status), n_odd
    methods = {e["method"] for e in events(srv.admin)}
    # SYSTEM: the janitor's own events (scheduled compliance runs, automatic rotations)
    assert methods <= {"GET", "POST", "PATCH", "DELETE", "OTHER", "SYSTEM"}, methods
    assert expect(srv.admin.get("/v1/audit/verify"), 200)["valid"] is True


def test_forwarded_for_every_line_right_hop(start_server):
    srv = start_server(args=["--trusted-proxies", "127.0.0.1,10.0.0.2"])
    auth = ("Authorization", "Bearer " + srv.admin_key)
    cases = [
        # (header lines, the client the trail must record)
        ([("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.9")],
         "203.0.113.9"),
        ([("X-Forwarded-For", "198.51.100.1, 203.0.113.8, 10.0.0.2")], "203.0.113.8"),
        ([("X-Forwarded-For", "203.0.113.7"), ("x-forwarded-for", "10.0.0.2")], "203.0.113.7"),
        ([("X-Forwarded-For", "not-an-ip")], "127.0.0.1"),
    ]
    for lines, want in cases:
        rid = "xff-" + uniq("r")
        r = rawhttp.request(srv.port, rawhttp.build("GET", "/v1/keyrings",
                                                     [auth, ("X-Request-Id", rid)] + lines))
        assert r.status == 200
        h_rid = audit_hash(srv.admin, rid)
        ev = poll_until(lambda: [e for e in events(srv.admin, op="keyring.list")
                                 if e["hmac"].get("request_id") == h_rid],
                        what="the request's event")[0]
        assert ev["hmac"]["client"] == audit_hash(srv.admin, want), (lines, want)


def test_chunked_body_over_the_limit_stops_being_read(start_server):
    srv = start_server(args=["--max-body-bytes", "64KiB", "--max-batch-bytes", "64KiB"])
    kr = srv.create_keyring()
    head = (f"POST /v1/keyrings/{kr}/encrypt HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {srv.admin_key}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"a" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    total, refused = 0, False
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(head)
        try:
            for _ in range(4096):           # up to 256 MiB: far more than any buffer holds
                s.sendall(frame)
                total += len(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            refused = True
    assert refused, f"the server read {total} bytes of a body over its 64 KiB limit"
    assert total < 64 << 20, total
    poll_until(lambda: folded(srv.admin, status=413) >= 1, what="the 413 in the trail")
    # the server is fine afterwards
    expect(srv.admin.post(f"/v1/keyrings/{kr}/encrypt", {"text": "after"}), 200)


def test_names_of_missing_keyrings_never_in_clear(env):
    srv, kr, api, ct, text = env
    secretish = "tenant-" + uniq("acme")          # a name someone guesses: never stored
    narrow, _ = srv.issue_key(["encrypt"], keyrings=[kr])
    cases = [
        (srv.client(None), f"/v1/keyrings/{secretish}/encrypt", 401),
        (narrow, f"/v1/keyrings/{secretish}/encrypt", 403),
        (api, f"/v1/keyrings/{secretish}/encrypt", 404),
    ]
    for client, path, status in cases:
        expect(client.post(path, {"text": "x"}), status)
    h = audit_hash(srv.admin, secretish)

    def evs():
        got = [e for e in events(srv.admin, op="encrypt") if e["hmac"].get("keyring") == h]
        return got if sum(e["count"] for e in got) >= 3 else None
    got = poll_until(evs, what="three refusals naming the HMAC")
    assert all(e["keyring"] is None for e in got), got
    r = srv.admin.get("/v1/audit/export")
    expect(r, 200)
    assert secretish not in r.text
    # an existing keyring refused by scope is named in clear
    expect(narrow.post(f"/v1/keyrings/{kr}/decrypt", {"ciphertext": ct}), 403)
    poll_until(lambda: [e for e in events(srv.admin, op="decrypt")
                        if e["status"] == 403 and e["keyring"] == kr], what="403 naming kr")


def test_wrong_secrets_of_a_known_key_fold(start_server):
    srv = start_server()
    api, key = srv.issue_key(["encrypt"])
    wrong = make_key(key_id=key["id"])              # the real id, a made-up secret
    n = 40
    t0 = time.monotonic()
    for _ in range(n):
        expect(srv.client(wrong).get("/v1/keyrings"), 401, "unauthenticated")
    seconds = time.monotonic() - t0

    def evs():
        got = [e for e in events(srv.admin, op="keyring.list", key_id=key["id"])
               if e["status"] == 401]
        return got if sum(e["count"] for e in got) >= n else None
    got = poll_until(evs, what="every refusal counted")
    assert sum(e["count"] for e in got) == n
    assert len(got) <= int(seconds) + 2, (len(got), seconds)
    assert all(e["app"] == key["app"] for e in got)
    register_api_key(wrong)


def test_flood_of_made_up_key_ids_folds(start_server):
    """Made-up key ids do not tell floods apart: however many distinct ids one client sends in a
    second, the trail gets one event per route and second, with the count (a flood of distinct ids
    used to become one pending event each)."""
    srv = start_server()
    keys = [make_key() for _ in range(600)]
    t0 = time.monotonic()

    def hit(k):
        return srv.client(k).get("/v1/keyrings", check=False).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        got = list(ex.map(hit, keys))
    seconds = time.monotonic() - t0
    assert set(got) == {401}, set(got)

    def evs():
        e = [x for x in events(srv.admin, op="keyring.list") if x["status"] == 401]
        return e if sum(x["count"] for x in e) >= len(keys) else None
    got_evs = poll_until(evs, what="every refusal counted")
    assert sum(e["count"] for e in got_evs) == len(keys)
    assert len(got_evs) <= int(seconds) + 2, (len(got_evs), seconds)
