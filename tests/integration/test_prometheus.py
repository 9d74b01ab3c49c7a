# SPDX-License-Identifier: Apache-2.0
"""A real Prometheus (the Debian package) scrapes a real difyguard under a short load: its query
API returns the expected series, every alert rule of deploy/prometheus/alerts.yml is loaded and
evaluated without error, and every PromQL expression of the rules and of the Grafana dashboard
evaluates without error against it. Well under a minute: 1 s scrape and evaluation intervals,
polled with generous deadlines (never a fixed sleep as the assertion)."""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest
import requests
import yaml

import conftest
from conftest import CRYPTO_SCOPES, DataDir, Server, expect, free_port, new_text, poll_until

SRC = os.environ.get("DG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(SRC, "deploy")


def rule_exprs():
    with open(os.path.join(DEPLOY, "prometheus", "alerts.yml")) as f:
        return [(r["alert"], r["expr"]) for g in yaml.safe_load(f)["groups"] for r in g["rules"]]


def dashboard_exprs():
    with open(os.path.join(DEPLOY, "grafana", "difyguard.json")) as f:
        dash = json.load(f)
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            e = t["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
            out.append((p["title"], e))
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    prom = shutil.which("prometheus")
    if prom is None:
        pytest.fail("prometheus missing (scripts/deps.sh installs the Debian package)")
    import conftest
    dd = DataDir(tmp_path_factory.mktemp("pdata"))
    mport = free_port()
    srv = Server(dd.path, args=["--metrics-listen", f"127.0.0.1:{mport}"], admin_key=dd.admin_key)
    srv.start()
    work = tmp_path_factory.mktemp("prom")
    shutil.copy(os.path.join(DEPLOY, "prometheus", "alerts.yml"), work / "alerts.yml")
    cfg = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
           "rule_files": ["alerts.yml"],
           "scrape_configs": [{"job_name": "difyguard",
                               "static_configs": [{"targets": [f"127.0.0.1:{mport}"]}]}]}
    with open(work / "prometheus.yml", "w") as f:
        yaml.safe_dump(cfg, f)
    pport = free_port()
    log = open(conftest._CTX.log_path("prometheus.log"), "wb")
    proc = subprocess.Popen([prom, f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={work / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{pport}"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{pport}"

    def ready():
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited {proc.returncode}; see {log.name}")
        try:
            return requests.get(base + "/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False
    try:
        poll_until(ready, deadline=30, interval=0.2, what="prometheus ready")
        yield srv, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        srv.stop()


def query(base, expr):
    r = requests.get(base + "/api/v1/query", params={"query": expr}, timeout=20)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


def short_load(srv, stop):
    keyring = srv.create_keyring()
    api, _ = srv.issue_key(CRYPTO_SCOPES)
    while not stop.is_set():
        ct = api.encrypt(keyring, text=new_text("p"))["ciphertext"]
        api.decrypt(keyring, ct)
        expect(api.post(f"/v1/keyrings/{keyring}/encrypt",
                        {"items": [{"text": new_text("q")} for _ in range(5)]}), 200)
        expect(srv.client("dgk_bogus").get("/v1/keyrings"), 401)
        time.sleep(0.05)
    return keyring


@pytest.mark.skipif(bool(conftest.PG_SUITE_URL), reason="queries the SQLite pool series")
def test_prometheus_scrapes_rules_and_dashboard_evaluate(stack):
    srv, base = stack
    stop = threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("keyring", short_load(srv, stop)))
    t.start()
    try:
        enc = 'difyguard_http_request_duration_seconds_count{job="difyguard",route="/v1/keyrings/{name}/encrypt",status_class="2xx"}'
        poll_until(lambda: query(base, 'up{job="difyguard"} == 1'), deadline=30,
                   what="the difyguard target up")
        # a few scrapes with traffic, so rate() over 1m has two or more points
        poll_until(lambda: query(base, f"increase({enc}[1m]) > 0"), deadline=40, interval=0.5,
                   what="encrypt requests counted by Prometheus")
        poll_until(lambda: query(base, 'sum(rate(difyguard_crypto_operations_total{op="decrypt",outcome="ok"}[1m])) > 0'),
                   deadline=40, interval=0.5, what="crypto operations rate")
    finally:
        stop.set()
        t.join(timeout=60)
    keyring = result["keyring"]
    for expr in ('difyguard_build_info{job="difyguard"}', "process_cpu_seconds_total",
                 "process_resident_memory_bytes", "process_open_fds",
                 f'difyguard_key_version_encryptions{{keyring="{keyring}"}}',
                 'difyguard_auth_failures_total{reason="malformed"} > 0',
                 'difyguard_crypto_batch_items_count{op="encrypt"} > 0',
                 "difyguard_audit_group_commit_seconds_count > 0",
                 'difyguard_db_pool_connections{backend="sqlite"} == 1',
                 "difyguard_api_key_expiry_timestamp_seconds",
                 'histogram_quantile(0.99, sum by (le) (rate(difyguard_http_request_duration_seconds_bucket{route="/v1/keyrings/{name}/encrypt"}[1m]))) > 0'):
        assert query(base, expr), f"no series for {expr}"
    # every alert rule loaded and evaluated without error
    def rules_evaluated():
        groups = requests.get(base + "/api/v1/rules", timeout=20).json()["data"]["groups"]
        rs = [r for g in groups for r in g["rules"]]
        # health is "unknown" until a rule's first evaluation, then "ok" or "err"
        return rs if rs and all(r.get("health") != "unknown" for r in rs) else None
    rs = poll_until(rules_evaluated, deadline=30, what="rules evaluated")
    assert {r["name"] for r in rs} == {n for n, _ in rule_exprs()}
    bad = [(r["name"], r.get("lastError")) for r in rs if r.get("health") != "ok"]
    assert bad == [], f"rules that fail to evaluate: {bad}"
    # DifyguardDown stays quiet; nothing under this short load should fire as critical
    firing = [a for a in requests.get(base + "/api/v1/alerts", timeout=20).json()["data"]["alerts"]
              if a["labels"].get("severity") == "critical" and a["state"] == "firing"]
    assert firing == [], firing
    for name, expr in rule_exprs():
        query(base, expr)  # asserts success
    for title, expr in dashboard_exprs():
        query(base, expr)
