# SPDX-License-Identifier: Apache-2.0
"""OTLP/HTTP trace export to a local receiver the test starts: the server span continues the
client's W3C trace (its trace id, its span as parent, its tracestate), child spans for
authentication, key lookup, crypto and the audit commit hang off the server span, the trace id is
in the audit event and the request log line; sampling follows the parent's flag; with the
receiver hanging or gone, requests still complete (the export never holds a request: its timeout
is set far beyond the requests' own) and the dropped-span counter goes up. No speed assertions."""
import json
import os
import secrets
import socket
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

import conftest
from conftest import CRYPTO_SCOPES, expect, free_port, new_text, poll_until


class Receiver:
    """An OTLP/HTTP JSON receiver on loopback: keeps every span it is sent."""

    def __init__(self):
        self.spans = []
        self.posts = 0
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with outer.lock:
                    outer.posts += 1
                    outer.headers = dict(self.headers)
                    for rs in body["resourceSpans"]:
                        res = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                        for ss in rs["scopeSpans"]:
                            for sp in ss["spans"]:
                                sp["_resource"] = res
                                outer.spans.append(sp)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def of(self, trace_id):
        with self.lock:
            return [s for s in self.spans if s["traceId"] == trace_id]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Hanging:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                return

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


def otel_env(port, **extra):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_SERVICE_NAME": "difyguard-test",
           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci,team=sec%20ops",
           "OTEL_BSP_SCHEDULE_DELAY": "100",
           "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-token=tok-" + secrets.token_hex(8)}
    env.update(extra)
    return env


def ids():
    return secrets.token_hex(16), secrets.token_hex(8)


def attrs(span):
    return {a["key"]: list(a["value"].values())[0] for a in span.get("attributes", [])}


def metric(srv, name, **labels):
    from test_metrics import parse, series
    return sum(series(parse(srv.client().get("/metrics").text), name, **labels))


def test_spans_continue_the_client_trace(start_server):
    rx = Receiver()
    try:
        srv = start_server(args=["--log-level", "debug"], env=otel_env(rx.port))
        keyring = srv.create_keyring()
        api, key = srv.issue_key(CRYPTO_SCOPES)
        tid, pid = ids()
        h = {"traceparent": f"00-{tid}-{pid}-01", "tracestate": "vendor=abc,other=1"}
        r = api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": new_text("t")}, headers=h)
        expect(r, 200)
        spans = poll_until(lambda: len(rx.of(tid)) >= 5 and rx.of(tid), deadline=30,
                           what="the request's spans at the receiver")
        server = [s for s in spans if s["kind"] == 2]
        assert len(server) == 1, spans
        sv = server[0]
        assert sv["parentSpanId"] == pid and sv["name"] == "POST /v1/keyrings/{name}/encrypt"
        assert sv["traceState"] == "vendor=abc,other=1"
        a = attrs(sv)
        assert a["http.route"] == "/v1/keyrings/{name}/encrypt" and a["http.request.method"] == "POST"
        assert a["http.response.status_code"] == "200" and a["difyguard.app"] == key["app"]
        assert a["difyguard.request_id"] == r.headers["X-Request-Id"]
        children = {s["name"]: s for s in spans if s is not sv}
        assert set(children) == {"authenticate", "key lookup", "crypto", "audit commit"}, children
        for c in children.values():
            assert c["parentSpanId"] == sv["spanId"] and c["kind"] == 1
            assert int(sv["startTimeUnixNano"]) <= int(c["startTimeUnixNano"]) <= int(c["endTimeUnixNano"]) <= int(sv["endTimeUnixNano"])
        res = sv["_resource"]
        assert res["service.name"]["stringValue"] == "difyguard-test"
        assert res["team"]["stringValue"] == "sec ops"
        assert rx.headers.get("x-collector-token", "").startswith("tok-")
        # the trace id in the audit event and in the request's log line
        ev = expect(srv.admin.get("/v1/audit/events", params={"op": "encrypt", "limit": 50}), 200)
        assert any(e.get("trace_id") == tid for e in ev["events"]), ev
        def logged():
            for line in srv.stdout().splitlines():
                j = json.loads(line)
                if j.get("msg") == "request" and j.get("trace_id") == tid:
                    return j
        line = poll_until(logged, deadline=20, what="the request log line")
        assert line["span_id"] == sv["spanId"] and line["route"] == "/v1/keyrings/{name}/encrypt"
        # the collector's header value (a credential) never reaches the logs
        assert "tok-" not in srv.stdout() + srv.stderr()
    finally:
        rx.close()


def test_sampling_follows_the_parent_and_the_ratio(start_server):
    rx = Receiver()
    try:
        srv = start_server(env=otel_env(rx.port, OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                                        OTEL_TRACES_SAMPLER_ARG="0"))
        keyring = srv.create_keyring()
        api, _ = srv.issue_key(["encrypt"])
        off, pid = ids()
        on, pid2 = ids()
        expect(api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": "a"},
                        headers={"traceparent": f"00-{off}-{pid}-00"}), 200)
        expect(api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": "b"}), 200)  # root: ratio 0
        expect(api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": "c"},
                        headers={"traceparent": f"00-{on}-{pid2}-01"}), 200)
        poll_until(lambda: len(rx.of(on)) >= 5, deadline=30, what="the sampled request's spans")
        # spans are sent in order: the earlier requests' would have come in the same or an earlier batch
        assert rx.of(off) == []
        with rx.lock:
            assert {s["traceId"] for s in rx.spans} == {on}
    finally:
        rx.close()


def test_a_hanging_or_dead_collector_never_holds_requests(start_server):
    hang = Hanging()
    try:
        srv = start_server(env=otel_env(hang.port, OTEL_TRACES_SAMPLER="always_on",
                                        OTEL_EXPORTER_OTLP_TIMEOUT="120000",
                                        OTEL_BSP_MAX_QUEUE_SIZE="32",
                                        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="8",
                                        OTEL_BSP_SCHEDULE_DELAY="20"))
        keyring = srv.create_keyring()
        api, _ = srv.issue_key(["encrypt"])
        lat = []
        # Each request would wait up to 120 s if it waited for the export; its own timeout is 20 s.
        for i in range(200):
            t0 = time.monotonic()
            expect(api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": "x"}, timeout=20), 200)
            lat.append(time.monotonic() - t0)
        dropped = poll_until(lambda: metric(srv, "difyguard_trace_spans_dropped_total",
                                            reason="queue_full"), deadline=20,
                             what="spans dropped on a full queue")
        assert dropped > 0
        print(f"\nhanging collector: {len(lat)} requests, median {statistics.median(lat)*1000:.2f} ms, "
              f"max {max(lat)*1000:.1f} ms; {dropped:.0f} spans dropped (queue full)")
        # stop() asserts exit 0 within 30 s: the exporter's last batch does not hold the shutdown
        t0 = time.monotonic()
        srv.stop()
        print(f"shutdown with a hanging collector took {time.monotonic() - t0:.1f} s")
    finally:
        hang.close()
    # a collector that is gone: exports fail (counted), requests are answered
    port = free_port()
    srv = start_server(env=otel_env(port, OTEL_TRACES_SAMPLER="always_on",
                                    OTEL_EXPORTER_OTLP_TIMEOUT="2000"))
    keyring = srv.create_keyring()
    api, _ = srv.issue_key(["encrypt"])
    for _ in range(20):
        expect(api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": "x"}, timeout=20), 200)
    failed = poll_until(lambda: metric(srv, "difyguard_trace_spans_dropped_total",
                                       reason="export_failed"), deadline=30,
                        what="spans dropped on failed exports")
    assert failed > 0


def test_bad_otel_settings_refuse_to_start(new_datadir):
    from conftest import run_serve_expecting_exit, child_env
    import subprocess
    from conftest import BIN
    dd = new_datadir()
    for env, word in ((otel_env(free_port(), OTEL_TRACES_SAMPLER="sometimes"), "OTEL_TRACES_SAMPLER"),
                      (otel_env(free_port(), OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="2"), "OTEL_TRACES_SAMPLER_ARG"),
                      (otel_env(free_port(), OTEL_EXPORTER_OTLP_PROTOCOL="grpc"), "http/json"),
                      (otel_env(free_port(), OTEL_EXPORTER_OTLP_HEADERS="bad key=secretvalue1"), "OTEL_EXPORTER_OTLP_HEADERS")):
        p = subprocess.run(conftest._with_database(
                               [BIN, "serve", "--data-dir", dd.path, "--listen",
                                f"127.0.0.1:{free_port()}"]),
                           env=child_env(env), capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and word in p.stderr, (env, p.stderr)
        assert "secretvalue1" not in p.stderr and "tok-" not in p.stderr
