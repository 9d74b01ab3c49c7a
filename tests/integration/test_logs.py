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
        return out if any(o.get("request_id") == "req-1.a_b" for o in out) else None
    out = poll_until(lines, deadline=20, what="the request line")
    for o in out:
        assert list(v.iter_errors(o)) == [], o
    line = next(o for o in out if o.get("request_id") == "req-1.a_b")
    assert line["msg"] == "request" and line["trace_id"] == tid and len(line["span_id"]) == 16
    assert line["route"] == "/v1/keyrings/{name}/encrypt" and line["status"] == 200
    assert line["app"] == key["app"] and line["key_id"] == key["id"] and line["duration_ms"] >= 0
    nf = [o for o in out if o.get("msg") == "request" and o.get("status") == 404]
    assert nf and nf[0]["trace_id"] == "" and nf[0]["level"] == "info"


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
