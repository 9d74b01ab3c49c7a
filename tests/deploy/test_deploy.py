# SPDX-License-Identifier: Apache-2.0
"""deploy/ checks that need no running service: the Prometheus config and alert rules
(promtool check config, promtool test rules, and proof that each rule's two tests bite), the
Alertmanager config and its routing by severity (amtool), the Grafana dashboard (what
make_dashboard.py writes, every panel with a PromQL target), and the collector and Fluent Bit
examples' syntax. tests/integration/test_prometheus.py evaluates the expressions against a real
Prometheus scraping a real difyguard."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

SRC = os.environ.get("DG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(SRC, "deploy")


def need(tool):
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (scripts/deps.sh installs prometheus and "
                    "prometheus-alertmanager)")
    return path


def run(*args, cwd=None):
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=120)


def rules():
    with open(os.path.join(DEPLOY, "prometheus", "alerts.yml")) as f:
        return [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]


def test_prometheus_config_and_rules_check():
    r = run(need("promtool"), "check", "config", os.path.join(DEPLOY, "prometheus", "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_alert_rules_unit_tests_pass():
    r = run(need("promtool"), "test", "rules", "alerts_test.yml", cwd=os.path.join(DEPLOY, "prometheus"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_rule_has_a_firing_and_a_quiet_test():
    with open(os.path.join(DEPLOY, "prometheus", "alerts_test.yml")) as f:
        tests = yaml.safe_load(f)["tests"]
    fires, quiet = set(), set()
    for t in tests:
        for a in t["alert_rule_test"]:
            (fires if a["exp_alerts"] else quiet).add(a["alertname"])
    names = {r["alert"] for r in rules()}
    assert names - fires == set(), f"rules without a test that fires them: {names - fires}"
    assert names - quiet == set(), f"rules without a test that they stay quiet: {names - quiet}"
    for r in rules():
        assert r["labels"]["severity"] in ("critical", "warning", "info"), r["alert"]
        assert "component" in r["labels"] and r["annotations"].get("summary"), r["alert"]


@pytest.mark.parametrize("mode", ["never", "always"])
def test_each_rules_tests_fail_when_the_rule_is_broken(tmp_path, mode):
    """The unit tests bite: with every expression replaced by one that never fires, each rule's
    firing test must fail; with every expression made to always fire, each rule's quiet test must
    fail. Each alert_rule_test checks one alert name, so promtool's failures name the rules whose
    tests caught the break; a rule missing from them has tests that do not bite."""
    promtool = need("promtool")
    src = os.path.join(DEPLOY, "prometheus")
    shutil.copy(os.path.join(src, "alerts_test.yml"), tmp_path / "alerts_test.yml")
    with open(os.path.join(src, "alerts.yml")) as f:
        doc = yaml.safe_load(f)
    names = set()
    for rule in doc["groups"][0]["rules"]:
        names.add(rule["alert"])
        rule["expr"] = "vector(1) == 2" if mode == "never" else f"({rule['expr']}) or on() vector(1)"
    with open(tmp_path / "alerts.yml", "w") as f:
        yaml.safe_dump(doc, f)
    r = run(promtool, "test", "rules", "alerts_test.yml", cwd=str(tmp_path))
    assert r.returncode != 0
    caught = set(re.findall(r"alertname: (\w+), time:", r.stdout + r.stderr))
    assert names - caught == set(), f"tests that still pass with their rule broken ({mode}): {names - caught}"


def test_alertmanager_config_and_routing():
    amtool = need("amtool")
    cfg = os.path.join(DEPLOY, "alertmanager", "alertmanager.yml")
    r = run(amtool, "check-config", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    want = {"critical": "dingtalk-oncall,email-security", "warning": "slack-warnings",
            "info": "slack-info"}
    for severity, receivers in want.items():
        r = run(amtool, "config", "routes", "test", f"--config.file={cfg}",
                f"--verify.receivers={receivers}", f"severity={severity}", "alertname=X")
        assert r.returncode == 0, (severity, r.stdout + r.stderr)
    with open(cfg) as f:
        am = yaml.safe_load(f)
    assert len(am["inhibit_rules"]) >= 2
    hook = [w["url"] for rc in am["receivers"] for w in rc.get("webhook_configs", [])]
    assert any("dingtalk" in u for u in hook), "critical alerts reach DingTalk through a webhook adapter"


def dashboard_exprs():
    with open(os.path.join(DEPLOY, "grafana", "difyguard.json")) as f:
        dash = json.load(f)
    return dash, [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_dashboard_is_what_the_generator_writes(tmp_path):
    out = tmp_path / "d.json"
    r = run(sys.executable, os.path.join(DEPLOY, "grafana", "make_dashboard.py"), str(out))
    assert r.returncode == 0, r.stderr
    with open(out) as a, open(os.path.join(DEPLOY, "grafana", "difyguard.json")) as b:
        assert json.load(a) == json.load(b), "run deploy/grafana/make_dashboard.py"


def test_dashboard_panels_have_promql():
    dash, exprs = dashboard_exprs()
    assert dash["uid"] and dash["title"] == "difyguard"
    assert len(exprs) >= 30
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p.get("targets"), p["title"]
    text = " ".join(exprs)
    for metric in ("difyguard_http_request_duration_seconds_bucket", "difyguard_crypto_operations_total",
                   "difyguard_audit_backlog", "difyguard_cert_not_after_timestamp_seconds",
                   "difyguard_compliance_control_status", "process_cpu_seconds_total"):
        assert metric in text, metric


def test_collector_and_fluent_bit_examples_parse():
    with open(os.path.join(DEPLOY, "otel-collector", "config.yaml")) as f:
        col = yaml.safe_load(f)
    assert col["receivers"]["otlp"]["protocols"]["http"]
    assert col["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    for name in ("fluent-bit.conf", "parsers.conf"):
        with open(os.path.join(DEPLOY, "fluent-bit", name)) as f:
            for line in f:
                s = line.strip()
                assert s == "" or s.startswith("#") or re.match(r"^\[[A-Z]+\]$", s) or \
                    re.match(r"^[A-Za-z_.]+\s+\S", s), f"{name}: {line!r}"
