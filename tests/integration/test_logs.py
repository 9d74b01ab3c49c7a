# SPDX-License-Identifier: Apache-2.0
"""The log schema (docs/logs.md, docs/log-schema.json): a request's line carries every field the
schema requires of it, and the checker conftest runs over every server log of the session
rejects lines that break the schema (so a full run whose servers wrote such a line fails)."""
import json

from conftest import (CRYPTO_SCOPES, check_server_logs, expect, log_line_problems, log_validator,
                      new_text, poll_until)


def test_request_lines_match_the_schema(start_server):
    srv = start_server(args=["--log-level", "debug"])
    keyring = srv.create_keyring()
    api, key = srv.issue_key(CRYPTO_SCOPES)
    tid = "4bf92f3577b34da6a3ce929d0e0e4736"
    api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": new_text("l")},
             headers={"traceparent": f"00-{tid}-00f067aa0ba902b7-01", "X-Request-Id": "req-1.a_b"})
    expect(api.post("/v1/keyrings/nope-nope/encrypt", {"text": "x"}), 404)
    v = log_validator()

    def lines():
        out = [json.loads(l) for l in srv.stdout().splitlines() if l.strip()]
        return out if any(o.get("request_id") == "req-1.a_b" for o in out) and any(
            o.get("msg") == "request" and o.get("status") == 404 for o in out) else None
    out = poll_until(lines, deadline=20, what="the request line")
    for o in out:
        assert list(v.iter_errors(o)) == [], o
    line = next(o for o in out if o.get("request_id") == "req-1.a_b")
    assert line["msg"] == "request" and line["trace_id"] == tid and len(line["span_id"]) == 16
    assert line["route"] == "/v1/keyrings/{name}/encrypt" and line["status"] == 200
    assert line["app"] == key["app"] and line["key_id"] == key["id"] and line["duration_ms"] >= 0
    assert "error" not in line                      # a success has no error code
    assert len(line["client"]) == 64                # the client address, HMAC-ed (issue 14)
    nf = [o for o in out if o.get("msg") == "request" and o.get("status") == 404]
    assert nf and "trace_id" not in nf[0] and nf[0]["level"] == "info"   # empty fields omitted
    assert nf[0]["error"] == "not_found" and nf[0]["client"] == line["client"]
    assert not any(v == "" for o in out for v in o.values()), "a line with an empty field"


def test_a_stalled_stdout_never_blocks_requests(tmp_path):
    """stdout is a pipe nobody reads: requests keep being answered, the lines that do not fit are
    dropped and counted, and a log_lines_dropped line says so once the pipe is read again."""
    import os
    import subprocess
    from conftest import BIN, DataDir, child_env, free_port, register_api_key, Api, pg_database_for
    dd = DataDir(tmp_path / "d")
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--data-dir", dd.path, "--listen",
                             f"127.0.0.1:{port}", "--log-level", "debug", "--log-buffer", "16KiB"]
                            + pg_database_for(dd.path),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env())
    try:
        api = Api(f"http://127.0.0.1:{port}", dd.admin_key)
        def up():
            try:
                return api.get("/healthz", check=False).status_code == 200
            except OSError:
                return False
        poll_until(up, deadline=30, what="the server")
        # a 64 KiB pipe and a 16 KiB buffer: enough debug request lines to overflow both
        big = "x" * 3000
        for i in range(1500):
            r = api.get("/v1/keyrings/" + "k" * 60, headers={"X-Request-Id": f"r{i}"}, check=False)
            assert r.status_code == 404
            if i % 500 == 0:
                api.get("/v1/apps", params={"q": big}, check=False)
        def dropped():
            m = api.get("/metrics", check=False).text
            for line in m.splitlines():
                if line.startswith("difyguard_log_lines_dropped_total "):
                    return float(line.split()[1]) > 0
        poll_until(dropped, deadline=60, what="dropped log lines counted")
        # now read: the writer drains, and the next line reports the drops
        out = b""
        os.set_blocking(proc.stdout.fileno(), False)

        def report():
            nonlocal out
            api.get("/v1/keyrings/nope", check=False)
            try:
                out += proc.stdout.read() or b""
            except (BlockingIOError, TypeError):
                pass
            return b'"msg":"log_lines_dropped"' in out
        poll_until(report, deadline=60, what="the log_lines_dropped line")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_checker_rejects_lines_that_break_the_schema(tmp_path):
    v = log_validator()
    good = {"ts": "2026-11-28T20:21:00.123Z", "level": "info", "msg": "listening", "addr": "x"}
    assert log_line_problems(v, json.dumps(good), "stdout") == []
    bad = [
        "plain text",
        json.dumps({"level": "info", "msg": "x"}),                               # no ts
        json.dumps(dict(good, level="fatal")),
        json.dumps(dict(good, msg="Not Snake")),
        json.dumps(dict(good, nested={"a": 1})),
        json.dumps(dict(good, msg="request")),                                   # request fields missing
        json.dumps(dict(good, trace_id="XYZ")),
    ]
    for line in bad:
        assert log_line_problems(v, line, "stdout"), line
    assert log_line_problems(v, "difyguard: refusing plain HTTP", "stderr") == []
    assert log_line_problems(v, "difyguard: refusing plain HTTP", "stdout")
    p = tmp_path / "001-serve-1.stdout"
    p.write_text(json.dumps(good) + "\n" + bad[1] + "\n")
    assert len(check_server_logs([str(p)])) == 1
