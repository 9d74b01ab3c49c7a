# SPDX-License-Identifier: Apache-2.0
"""/metrics: the series of the README's Metrics table after a short load, clean under
`promtool check metrics`, bounded labels (route templates, never raw paths or client-chosen
names), --metrics-listen serving only the public routes, --metrics-on-api=false."""
import re
import shutil
import subprocess

import pytest
import requests

from conftest import CRYPTO_SCOPES, b64, expect, free_port, new_text, poll_until, uniq

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def parse(text):
    """{(name, frozenset(labels)): value}; labels as (name, value) pairs."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def series(parsed, name, **labels):
    want = set(labels.items())
    return [v for (n, ls), v in parsed.items() if n == name and want <= set(ls)]


def promtool_check(text):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing (scripts/deps.sh installs prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"promtool check metrics: {r.stdout}{r.stderr}"


def load(srv, api, keyring):
    """Encrypt, decrypt, a batch, a 404 on an unknown keyring, a 401 and a 413."""
    ct = api.encrypt(keyring, text=new_text("m"))["ciphertext"]
    api.decrypt(keyring, ct)
    expect(api.post(f"/v1/keyrings/{keyring}/encrypt",
                    {"items": [{"text": new_text("b1")}, {"plaintext": b64(b"xyzxyzxyz")},
                               {"text": "x", "key_version": 99}]}), 200)
    expect(api.post("/v1/keyrings/no-such-keyring-here/encrypt", {"text": "x"}), 404)
    expect(srv.client("dgk_notakey").get("/v1/keyrings"), 401)


@pytest.fixture(scope="module")
def msrv(tmp_path_factory):
    from conftest import DataDir, Server
    dd = DataDir(tmp_path_factory.mktemp("mdata"))
    port = free_port()
    srv = Server(dd.path, args=["--metrics-listen", f"127.0.0.1:{port}"], admin_key=dd.admin_key)
    srv.datadir = dd
    srv.metrics_url = f"http://127.0.0.1:{port}"
    srv.start()
    yield srv
    srv.stop()


def test_series_after_load_and_promtool_clean(msrv):
    keyring = msrv.create_keyring()
    api, key = msrv.issue_key(CRYPTO_SCOPES)
    load(msrv, api, keyring)
    text = requests.get(msrv.metrics_url + "/metrics", timeout=30).text
    promtool_check(text)
    m = parse(text)
    enc = "/v1/keyrings/{name}/encrypt"
    assert series(m, "difyguard_http_request_duration_seconds_count", route=enc, method="POST",
                  status_class="2xx")[0] >= 2
    assert series(m, "difyguard_http_request_duration_seconds_count", route=enc,
                  status_class="4xx")[0] >= 1
    assert series(m, "difyguard_http_request_duration_seconds_bucket", route=enc, le="+Inf")
    app = key["app"]
    assert series(m, "difyguard_crypto_operations_total", op="encrypt", keyring=keyring, app=app,
                  outcome="ok")[0] == 3
    assert series(m, "difyguard_crypto_operations_total", op="encrypt", keyring=keyring, app=app,
                  outcome="unknown_key_version")[0] == 1
    assert series(m, "difyguard_crypto_operations_total", op="decrypt", keyring=keyring,
                  outcome="ok")[0] == 1
    # a keyring name that does not exist never becomes a label
    assert series(m, "difyguard_crypto_operations_total", op="encrypt", keyring="", app=app,
                  outcome="not_found")[0] == 1
    assert "no-such-keyring-here" not in text
    assert series(m, "difyguard_crypto_batch_items_count", op="encrypt")[0] == 1
    assert series(m, "difyguard_key_version_encryptions", keyring=keyring, version="1")[0] == 3
    assert series(m, "difyguard_keyring_rotation_period_seconds", keyring=keyring)
    assert series(m, "difyguard_auth_failures_total", reason="malformed")[0] >= 1
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                 "process_start_time_seconds", "difyguard_build_info",
                 "difyguard_http_requests_in_flight", "difyguard_http_connections_open",
                 "difyguard_audit_backlog", "difyguard_audit_group_commit_seconds_count",
                 "difyguard_audit_last_checkpoint_timestamp_seconds", "difyguard_audit_chain_valid",
                 "difyguard_db_pool_connections", "difyguard_db_pool_waiting",
                 "difyguard_db_pool_wait_seconds_total", "difyguard_db_errors_total"):
        assert series(m, name), name
    assert series(m, "difyguard_build_info")[0] == 1
    assert series(m, "difyguard_audit_group_commit_events_count")[0] >= 1
    # routes are templates: no concrete keyring path in any label
    assert f"/v1/keyrings/{keyring}" not in text


def test_api_key_series_appear_after_the_refresh(msrv):
    api, key = msrv.issue_key(["encrypt"])
    keyid = key["id"]

    def seen():
        m = parse(requests.get(msrv.metrics_url + "/metrics", timeout=30).text)
        return series(m, "difyguard_api_key_expiry_timestamp_seconds", key_id=keyid)
    exp = poll_until(seen, deadline=40, interval=0.5, what="the key's expiry series")
    assert exp[0] > 0


def test_413_and_429_counted(start_server):
    srv = start_server(args=["--max-body-bytes", "1k"])
    keyring = srv.create_keyring()
    admin = srv.admin
    app = uniq("app")
    expect(admin.post("/v1/apps", {"name": app, "description": "rl"}), 201)
    obj = expect(admin.post(f"/v1/apps/{app}/keys", {"scopes": ["encrypt"], "rate": 1, "burst": 1}), 201)
    from conftest import register_api_key, Api
    register_api_key(obj["key"])
    api = Api(srv.url, obj["key"])
    codes = [api.post(f"/v1/keyrings/{keyring}/encrypt", {"text": "x"}).status_code for _ in range(5)]
    assert 429 in codes
    expect(admin.post("/v1/apps", data="{" + " " * 2048 + "}"), 413)
    m = parse(requests.get(srv.url + "/metrics", timeout=30).text)
    assert series(m, "difyguard_http_rejected_total", reason="rate_limited")[0] >= 1
    assert series(m, "difyguard_http_rejected_total", reason="too_large")[0] >= 1
    assert series(m, "difyguard_rate_limited_total", app=app)[0] >= 1


def test_metrics_listener_serves_only_public_routes(msrv):
    base = msrv.metrics_url
    assert requests.get(base + "/healthz", timeout=10).status_code == 200
    assert requests.get(base + "/readyz", timeout=10).status_code == 200
    # every /v1 route is absent there, with or without a valid key
    for method, path in (("GET", "/v1/keyrings"), ("POST", "/v1/apps"), ("GET", "/v1/audit/events")):
        r = requests.request(method, base + path, timeout=10,
                             headers={"Authorization": f"Bearer {msrv.admin_key}"})
        assert r.status_code == 404, (path, r.status_code)
    # the API listener keeps /metrics by default
    assert msrv.client().get("/metrics").status_code == 200


def test_metrics_on_api_false(start_server):
    port = free_port()
    srv = start_server(args=["--metrics-listen", f"127.0.0.1:{port}", "--metrics-on-api=false"])
    expect(srv.client().get("/metrics"), 404, "not_found")
    assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
    assert srv.client().get("/healthz").status_code == 200


def test_metrics_on_api_false_needs_a_metrics_listener(new_datadir):
    from conftest import run_serve_expecting_exit
    dd = new_datadir()
    rc, err, _ = run_serve_expecting_exit(dd.path, f"127.0.0.1:{free_port()}",
                                          ["--metrics-on-api=false"])
    assert rc == 2 and "--metrics-listen" in err
