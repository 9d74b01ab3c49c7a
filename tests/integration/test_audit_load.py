# SPDX-License-Identifier: Apache-2.0
"""The audit trail under load and across a crash: many concurrent clients against encrypt and
decrypt; afterwards every response the clients received is exactly one audit event and the
chain verifies. With kill -9 in the middle of the load, every request that got a response is
in the trail after a restart. Counts only, never speed."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

import openapi_check
from conftest import expect, new_text, uniq
from test_audit import (all_events, audit_hash, auditor_of, cli_verify, event_count, export_text,
                        hmacs, make_key, public_keys, rid, verify_api)

THREADS = 16
LOAD_SECONDS = 5.0
CRASH_AFTER = 2.0


class Client(threading.Thread):
    """One app, one key, one connection: encrypt then decrypt until told to stop. Counts every
    response received, whatever its status; remembers the request ids that got one."""

    def __init__(self, srv, kr, stop):
        super().__init__(daemon=True)
        self.app = uniq("load")
        expect(srv.admin.post("/v1/apps", {"name": self.app}), 201)
        self.api, self.key = srv.issue_key(["encrypt", "decrypt"], keyrings=[kr], app=self.app)
        self.kr = kr
        self.stop = stop
        self.answered = []            # request ids that got a response
        self.statuses = {}
        self.no_response = 0
        self.contract_errors = []
        self.text = new_text("load")

    def call(self, path, body):
        r_id = rid("ld")
        try:
            r = self.api.post(path, body, headers={"X-Request-Id": r_id}, timeout=30,
                              check=False)
        except requests.RequestException:
            self.no_response += 1
            return None
        self.answered.append(r_id)
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        try:
            openapi_check.check_response(r)
            assert r.headers.get("X-Request-Id") == r_id, r.headers.get("X-Request-Id")
        except AssertionError as e:
            self.contract_errors.append(str(e)[:300])
        return r

    def run(self):
        while not self.stop.is_set():
            r = self.call(f"/v1/keyrings/{self.kr}/encrypt", {"text": self.text})
            if r is None or r.status_code != 200:
                if r is None and self.stop.is_set():
                    return
                continue
            self.call(f"/v1/keyrings/{self.kr}/decrypt", {"ciphertext": r.json()["ciphertext"]})


def run_load(srv, seconds, kill_after=None):
    kr = srv.create_keyring()
    stop = threading.Event()
    clients = [Client(srv, kr, stop) for _ in range(THREADS)]
    for c in clients:
        c.start()
    if kill_after is not None:
        time.sleep(kill_after)
        srv.kill()                       # SIGKILL, no shutdown
    else:
        time.sleep(seconds)
    stop.set()
    for c in clients:
        c.join(timeout=90)
        assert not c.is_alive(), "a load client hung"
    return clients


def verify_everything(srv, tmp_path):
    aud = auditor_of(srv)
    verify_api(aud)
    proc = cli_verify(tmp_path, export_text(aud), public_keys(aud))
    assert proc.returncode == 0, f"audit verify after load: {proc.stdout} {proc.stderr}"


def test_every_response_is_one_event(start_server, tmp_path):
    srv = start_server()
    clients = run_load(srv, LOAD_SECONDS)
    aud = auditor_of(srv)
    total = sum(len(c.answered) for c in clients)
    assert total >= THREADS, f"only {total} responses under load"
    for c in clients:
        assert not c.contract_errors, c.contract_errors[:3]
        assert c.no_response == 0, f"{c.no_response} requests of {c.app} got no response"
        # every request under load succeeded (an overloaded server answering 503 would still
        # audit each answer): answered and audited means answered 200 here
        assert set(c.statuses) == {200}, f"{c.app}: statuses under load {c.statuses}"
    for c in clients:
        events = all_events(aud, app=c.app)
        assert event_count(events) == len(c.answered), (
            f"{c.app}: {len(c.answered)} responses {c.statuses} but "
            f"{event_count(events)} audited requests in {len(events)} events")
        assert all(e["key_id"] == c.key["id"] and e["status"] == 200 for e in events), events
    verify_everything(srv, tmp_path)


def test_kill_9_loses_no_answered_request(start_server, tmp_path):
    srv = start_server()
    clients = run_load(srv, None, kill_after=CRASH_AFTER)
    answered = [r for c in clients for r in c.answered]
    assert answered, "no request was answered before the kill"
    for c in clients:
        assert not c.contract_errors, c.contract_errors[:3]
    srv.start()                          # same data dir, new process
    aud = auditor_of(srv)

    def hashes(chunk):
        api = srv.client(aud.token)     # its own session per worker
        return [audit_hash(api, r) for r in chunk]

    chunks = [answered[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        expected = {h: None for part in pool.map(hashes, chunks) for h in part}
    present = set()
    n_events = 0
    for c in clients:
        events = all_events(aud, app=c.app)
        n_events += event_count(events)
        for e in events:
            present.update(hmacs(e, "request_id"))
    missing = [h for h in expected if h not in present]
    assert not missing, (f"{len(missing)} of {len(expected)} answered requests have no audit "
                         f"event after kill -9 and restart")
    assert n_events >= len(answered), (n_events, len(answered))
    verify_everything(srv, tmp_path)
    # the restarted server keeps auditing on a valid chain
    api = srv.client(clients[0].key["key"])
    expect(api.post(f"/v1/keyrings/{clients[0].kr}/encrypt", {"text": "after"}), 200)
    verify_everything(srv, tmp_path)


def test_failed_authentication_floods_are_counted_and_harmless(start_server, tmp_path):
    """Floods of unknown-key 401s may be folded into events with a count, but every 401 is
    counted, and the folding never costs a legitimate request its answer."""
    srv = start_server()
    kr = srv.create_keyring()
    api, _ = srv.issue_key(["encrypt"], keyrings=[kr])
    bad = srv.client(make_key())
    stop = threading.Event()
    flood = {"401": 0, "other": 0}

    def attacker():
        a = srv.client(bad.token)
        while not stop.is_set():
            r = a.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}, check=False)
            flood["401" if r.status_code == 401 else "other"] += 1

    t0 = time.time() - 1
    th = threading.Thread(target=attacker, daemon=True)
    th.start()
    statuses = {}
    end = time.monotonic() + 3.5            # crosses several second boundaries
    while time.monotonic() < end:
        r = api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}, check=False)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    stop.set()
    th.join(timeout=60)
    assert statuses.keys() == {200}, f"legitimate requests during a 401 flood: {statuses}"
    assert flood["other"] == 0 and flood["401"] > 0, flood
    aud = auditor_of(srv)

    def counted():
        evs = [e for e in all_events(aud, op="encrypt", outcome="denied",
                                     **{"from": str(int(t0))}) if e["status"] == 401]
        return event_count(evs) == flood["401"]

    end = time.monotonic() + 20
    while not counted() and time.monotonic() < end:
        time.sleep(0.25)
    evs = [e for e in all_events(aud, op="encrypt", outcome="denied", **{"from": str(int(t0))})
           if e["status"] == 401]
    assert event_count(evs) == flood["401"], (
        f"{flood['401']} 401s answered, {event_count(evs)} counted in {len(evs)} events")
    verify_everything(srv, tmp_path)
