# SPDX-License-Identifier: Apache-2.0
"""A raw-socket fuzz of the HTTP front end against a running server (issue 6): arbitrary bytes
in the method, path, query and headers, mixed with valid authenticated requests from other
threads. In CI this also runs against the ASan+UBSan build (ctest in build-asan).

Asserted:
- every valid request succeeds (no 503 from a group commit a fuzzed request broke);
- every answer difyguard itself gave (it carries X-Request-Id; libmicrohttpd's own refusals of
  unparseable requests do not) to anything but the public health and metrics routes is in the
  trail exactly once: the trail's counts add up to the answers, and each answer that is not a
  folded refusal has its own event, found by the HMAC of its request id;
- the trail verifies, and the server is still healthy.

The run is bounded (DG_FRONT_FUZZ_N requests, default 600) and reproducible (DG_FRONT_FUZZ_SEED
is printed on failure)."""
import concurrent.futures
import os
import random
import socket
import time

import rawhttp
from conftest import CRYPTO_SCOPES, expect, poll_until
from test_audit import all_events, audit_hash, auditor_of, hmacs

N = int(os.environ.get("DG_FRONT_FUZZ_N", "600"))
PUBLIC = {"/healthz", "/readyz", "/metrics"}

METHODS = [b"GET", b"POST", b"PATCH", b"DELETE", b"PUT", b"HEAD", b"OPTIONS", b"G\xc3", b"\xff",
           b"get", b"GETT", b"M-SEARCH", b"\x7f", b"A" * 40]
SEGMENTS = [b"v1", b"keyrings", b"apps", b"audit", b"events", b"export", b"verify", b"keys",
            b"encrypt", b"decrypt", b"rotate", b"usage", b"healthz", b"metrics", b"readyz",
            b"", b".", b"..", b"%2F", b"%2e%2e", b"%00", b"%ff", b"\xc3\xa9", b"\xff", b"a" * 70,
            b"x;y", b"%76%31", b"~", b"*", b"kr"]
HEADER_NAMES = [b"X-Forwarded-For", b"traceparent", b"X-Request-Id", b"Accept", b"Content-Type",
                b"X-Difyguard-Context", b"Cookie", b"Authorization", b"x-\xff", b"Expect"]
JUNK_VALUES = [b"", b"\xff\xfe", b"a" * 300, b"1.2.3.4, 5.6.7.8", b"::1", b"00-" + b"0" * 32,
               b"Bearer ", b"Bearer dgk_x", b"Basic Zm9vOmJhcg==", b"100-continue",
               b"application/octet-stream", b"\xc3", b"%00", b"r-" + b"9" * 80]


def fuzz_request(rnd, auth, keyring):
    """One mutated request: (bytes, whether it carries the valid key)."""
    if rnd.random() < 0.5:
        path = rnd.choice([b"/v1/keyrings", b"/v1/keyrings/" + keyring.encode() + b"/encrypt",
                           b"/v1/apps", b"/v1/audit/events", b"/healthz", b"/nope"])
        if rnd.random() < 0.6:
            segs = path.split(b"/")
            i = rnd.randrange(len(segs))
            segs[i] = rnd.choice(SEGMENTS)
            path = b"/".join(segs)
    else:
        path = b"/" + b"/".join(rnd.choice(SEGMENTS) for _ in range(rnd.randint(0, 6)))
    if rnd.random() < 0.3:
        path += b"/" * rnd.randint(1, 2)
    if rnd.random() < 0.3:
        path += b"?" + rnd.choice([b"limit=5", b"from=%ff", b"a=b&a=c", b"\xff=1", b"op=" * 30])
    headers, keyed = [], False
    if rnd.random() < 0.6:
        headers.append((b"Authorization", b"Bearer " + auth.encode()))
        keyed = True
    for _ in range(rnd.randint(0, 4)):
        headers.append((rnd.choice(HEADER_NAMES), rnd.choice(JUNK_VALUES)))
    body = b""
    if rnd.random() < 0.3:
        body = rnd.choice([b'{"text":"fz"}', b"{", b"\xff" * 10, b'{"items":[]}', b"[]"])
    return rawhttp.build(rnd.choice(METHODS), path, headers, body), keyed


def send(port, raw):
    try:
        return rawhttp.request(port, raw, timeout=30)
    except (ConnectionError, socket.timeout, OSError):
        return None


def test_front_end_fuzz(start_server):
    seed = int(os.environ.get("DG_FRONT_FUZZ_SEED", str(random.SystemRandom().randrange(1 << 30))))
    rnd = random.Random(seed)
    srv = start_server()
    kr = srv.create_keyring()
    api, key = srv.issue_key(CRYPTO_SCOPES)
    aud = auditor_of(srv)
    setup_events = sum(e["count"] for e in all_events(aud))   # everything before the fuzz
    reqs = [fuzz_request(rnd, srv.admin_key, kr) for _ in range(N)]

    def valid(i):
        return api.post(f"/v1/keyrings/{kr}/encrypt", {"text": f"valid-{i}"}).status_code

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as ex:
        fuzzed = list(ex.map(lambda r: send(srv.port, r[0]), reqs))
        ok = list(ex.map(valid, range(N // 3)))
    assert set(ok) == {200}, (f"valid requests failed beside the fuzz (seed {seed}): "
                              f"{sorted(set(ok))}")
    ours = [r for r in fuzzed if r is not None and r.header("x-request-id")]
    # the public routes' own answers (a status object, or the metrics text) are not audited
    audited = [r for r in ours
               if not (r.body.startswith(b'{"status":') or r.body.startswith(b"# HELP"))]
    expected = setup_events + len(audited) + len(ok) + 1   # + the all_events call above

    def counted():
        n = sum(e["count"] for e in all_events(aud))
        return n if n >= expected else None
    poll_until(counted, deadline=30, interval=0.5,
               what=f"every answered request in the trail (seed {seed})")
    # all_events itself adds one event per page fetched after the first count; recount exactly
    evs = all_events(aud)
    total = sum(e["count"] for e in evs)
    assert total >= expected, (seed, total, expected)
    assert total <= expected + 80, (seed, total, expected)     # only our own audit queries
    # each answer that is not a folded refusal has exactly one event of its own
    by_rid = {}
    for e in evs:
        for h in hmacs(e, "request_id"):
            by_rid[h] = by_rid.get(h, 0) + 1
    own = [r for r in audited if r.status not in (400, 401, 404, 405, 413)]
    for r in own[:150]:
        h = audit_hash(aud, r.header("x-request-id"))
        assert by_rid.get(h) == 1, (seed, r.status, r.body[:200])
    assert expect(aud.get("/v1/audit/verify"), 200)["valid"] is True, seed
    expect(srv.client().get("/healthz"), 200)
    print(f"front-end fuzz: seed {seed}, {N} fuzzed ({len(ours)} answered by difyguard, "
          f"{len(audited)} audited), {len(ok)} valid, {time.monotonic() - t0:.1f}s")
