# SPDX-License-Identifier: Apache-2.0
"""Durations and timestamps have bounds (issue 6, finding 3): every duration input is at most
3650 days (10 years), every timestamp at most 9999-12-31T23:59:59Z. Larger values used to
overflow "now + period" (a keyring rotating on every maintenance tick, a UBSan abort) and
"seconds * 1000" (audit event filters); they are now a 400 or a usage error (exit 2)."""
import time

import pytest

from conftest import expect, free_port, run_serve_expecting_exit, uniq

INT64_MAX = 2**63 - 1
TOO_LONG = [INT64_MAX, 315360001, "106751991167300d", "3651d", "87601h", "9223372036854775807"]


def parse_ts(s):
    return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.mark.parametrize("period", TOO_LONG)
def test_keyring_create_refuses_rotation_period_over_ten_years(server, period):
    r = server.admin.post("/v1/keyrings", {"name": uniq("huge"), "rotation_period": period})
    body = expect(r, 400, "invalid_request")
    assert "3650d" in body["error"]["message"], body


@pytest.mark.parametrize("period", TOO_LONG)
def test_keyring_patch_refuses_rotation_period_over_ten_years(server, period):
    name = server.create_keyring()
    body = expect(server.admin.patch(f"/v1/keyrings/{name}", {"rotation_period": period}), 400,
                  "invalid_request")
    assert "3650d" in body["error"]["message"], body
    kr = expect(server.admin.get(f"/v1/keyrings/{name}"), 200)
    assert kr["rotation_period"] == 90 * 86400, "a refused PATCH changes nothing"


def test_rotation_period_of_ten_years_is_accepted(server):
    name = uniq("decade")
    kr = expect(server.admin.post("/v1/keyrings", {"name": name, "rotation_period": "3650d"}),
                201)
    assert kr["rotation_period"] == 3650 * 86400
    assert parse_ts(kr["next_rotation_at"]) - parse_ts(kr["created_at"]) == 3650 * 86400
    kr = expect(server.admin.patch(f"/v1/keyrings/{name}", {"rotation_period": 315360000}), 200)
    assert kr["rotation_period"] == 315360000 and kr["latest_version"] == 1


@pytest.mark.parametrize("query", [
    {"from": "99999999999999999"}, {"to": "99999999999999999"},
    {"from": "9223372036854775807"}, {"from": "99999999999999999999999"},
    {"from": "253402300800"}, {"to": "-1"},
])
def test_audit_event_filter_times_out_of_range_400(server, query):
    body = expect(server.admin.get("/v1/audit/events", params=query), 400, "invalid_request")
    assert "9999-12-31" in body["error"]["message"], body


def test_audit_event_filter_times_in_range(server):
    for query in ({"from": "0"}, {"to": "253402300799"}, {"to": "9999-12-31T23:59:59Z"},
                  {"from": "2026-01-01T00:00:00.5Z"}):
        expect(server.admin.get("/v1/audit/events", params=dict(query, limit=1)), 200)


@pytest.mark.parametrize("flag,value", [
    ("--idle-timeout", "9223372036854775807"), ("--shutdown-grace", "3651d"),
    ("--maintenance-interval", "106751991167300d"), ("--audit-retention", "87601h"),
])
def test_serve_refuses_durations_over_ten_years(new_datadir, flag, value):
    dd = new_datadir()
    rc, err, _ = run_serve_expecting_exit(dd.path, f"127.0.0.1:{free_port()}",
                                          extra=[flag, value])
    assert rc == 2, (flag, value, rc, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and flag in lines[0] and "3650d" in lines[0], err
