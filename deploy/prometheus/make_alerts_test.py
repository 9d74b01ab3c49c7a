#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes alerts_test.yml: for each rule of alerts.yml a test that fires it and one that does not.
# The inputs are the cases below; the expected annotations come from a promtool run of the firing
# case (so they show how each template renders): review the diff before committing.
#   /usr/bin/python3 deploy/prometheus/make_alerts_test.py deploy/prometheus
import re, subprocess, sys, yaml, os, copy
D = sys.argv[1]
J = 'job="difyguard",instance="dg-0:8080"'
base = {"job": "difyguard", "instance": "dg-0:8080"}
# name: (fire series, fire eval, extra labels of the alert, quiet series, quiet eval)
C = {}
def case(name, fire, t, labels, quiet, tq=None, comment=""):
    C[name] = (fire, t, labels, quiet, tq or t, comment)

case("DifyguardDown", [("up{%s}" % J, "0x10")], "5m", {"severity": "critical", "component": "service"},
     [("up{%s}" % J, "1x10")], comment="down for 5m fires; up does not")
h = 'difyguard_http_request_duration_seconds_count{%s,route="/v1/keyrings/{name}/encrypt",method="POST",status_class="%s"}'
case("DifyguardHighErrorRate",
     [(h % (J, "2xx"), "0+60x20"), (h % (J, "5xx"), "0+10x20")], "15m",
     {"severity": "critical", "component": "http"},
     [(h % (J, "2xx"), "0+600x20"), (h % (J, "5xx"), "0+10x20")], comment="10/70 = 14% 5xx fires; 10/610 = 1.6% does not")
b = 'difyguard_http_request_duration_seconds_bucket{%s,route="/v1/keyrings/{name}/encrypt",method="POST",status_class="2xx",le="%s"}'
case("DifyguardHighLatencyP99",
     [(b % (J, "0.1"), "0+10x30"), (b % (J, "0.5"), "0+10x30"), (b % (J, "1"), "0+1000x30"), (b % (J, "+Inf"), "0+1000x30")], "20m",
     {"severity": "warning", "component": "http", "route": "/v1/keyrings/{name}/encrypt"},
     [(b % (J, "0.1"), "0+1000x30"), (b % (J, "0.5"), "0+1000x30"), (b % (J, "1"), "0+1000x30"), (b % (J, "+Inf"), "0+1000x30")],
     comment="99% of requests between 0.5 s and 1 s fires; all under 100 ms does not")
case("DifyguardHighCPU", [("process_cpu_seconds_total{%s}" % J, "0+60x30")], "25m",
     {"severity": "warning", "component": "resources"},
     [("process_cpu_seconds_total{%s}" % J, "0+30x30")], comment="one core busy fires; half a core does not")
case("DifyguardHighMemory", [("process_resident_memory_bytes{%s}" % J, "2e9x30")], "20m",
     {"severity": "warning", "component": "resources"},
     [("process_resident_memory_bytes{%s}" % J, "2e8x30")])
case("DifyguardAuditBacklog", [("difyguard_audit_backlog{%s}" % J, "20000x10")], "8m",
     {"severity": "warning", "component": "audit"},
     [("difyguard_audit_backlog{%s}" % J, "500x10")])
case("DifyguardAuditWriteFailures", [("difyguard_audit_write_failures_total{%s}" % J, "0 0 0 3 3 3")], "4m",
     {"severity": "critical", "component": "audit"},
     [("difyguard_audit_write_failures_total{%s}" % J, "3x10")], comment="a rise fires; a constant count (failures long ago) does not")
case("DifyguardAuditChainInvalid", [("difyguard_audit_chain_valid{%s}" % J, "1 1 0 0")], "3m",
     {"severity": "critical", "component": "audit"},
     [("difyguard_audit_chain_valid{%s}" % J, "-1 -1 1 1")], comment="0 fires; -1 (not verified yet) and 1 do not")
P = 'difyguard_db_pool_%s{%s,backend="sqlite"}'
case("DifyguardDbPoolExhausted",
     [(P % ("wait_seconds_total", J), "0+30x30"), (P % ("waits_total", J), "0+60x30"), (P % ("waiting", J), "4x30")], "20m",
     {"severity": "warning", "component": "database", "backend": "sqlite"},
     [(P % ("wait_seconds_total", J), "0+0.06x30"), (P % ("waits_total", J), "0+60x30"), (P % ("waiting", J), "1x30")],
     comment="0.5 s mean wait fires; 1 ms does not")
case("DifyguardDbErrors", [((P % ("errors_total", J)).replace("pool_", ""), "0 0 1 2 2")], "4m",
     {"severity": "warning", "component": "database", "backend": "sqlite"},
     [((P % ("errors_total", J)).replace("pool_", ""), "2x10")])
C_ = 'difyguard_cert_%s{%s,cert_id="api-tls"}'
# time() at eval 1h is 3600: not_after at 3600 + 10 days fires the 30-day warning, 60 days does not
case("DifyguardCertExpiringSoon", [(C_ % ("not_after_timestamp_seconds", J), "867600x200")], "2h",
     {"severity": "warning", "component": "certificates", "cert_id": "api-tls"},
     [(C_ % ("not_after_timestamp_seconds", J), "5191200x200")], comment="10 days left fires; 60 days do not")
case("DifyguardCertExpiryCritical", [(C_ % ("not_after_timestamp_seconds", J), "176400x60")], "20m",
     {"severity": "critical", "component": "certificates", "cert_id": "api-tls"},
     [(C_ % ("not_after_timestamp_seconds", J), "867600x60")], comment="2 days left fires; 10 days do not")
case("DifyguardCertExpired", [(C_ % ("expired", J), "0 1 1")], "2m",
     {"severity": "critical", "component": "certificates", "cert_id": "api-tls"},
     [(C_ % ("expired", J), "0 0 0")])
case("DifyguardCertRenewalOverdue", [(C_ % ("renewal_due_timestamp_seconds", J), "0x200")], "3h",
     {"severity": "warning", "component": "certificates", "cert_id": "api-tls"},
     [(C_ % ("renewal_due_timestamp_seconds", J), "86400x200")], comment="due at 0, evaluated at 3h fires; due tomorrow does not")
cs = 'difyguard_compliance_control_status{%s,pack="soc2",control="AUD-01",result="%s"}'
case("DifyguardComplianceFailing", [(cs % (J, "fail"), "1x30"), (cs % (J, "pass"), "0x30")], "20m",
     {"severity": "warning", "component": "compliance", "pack": "soc2", "control": "AUD-01", "result": "fail"},
     [(cs % (J, "fail"), "0x30"), (cs % (J, "pass"), "1x30")])
K = '%s{%s,keyring="tenant-42"}'
case("DifyguardKeyPastCryptoperiod",
     [(K % ("difyguard_keyring_latest_version_age_seconds", J), "8000000+60x30"), (K % ("difyguard_keyring_rotation_period_seconds", J), "7776000x30")], "20m",
     {"severity": "warning", "component": "keys", "keyring": "tenant-42"},
     [(K % ("difyguard_keyring_latest_version_age_seconds", J), "8000000+60x30"), (K % ("difyguard_keyring_rotation_period_seconds", J), "0x30")],
     comment="past a 90-day period fires; no rotation period (0) does not")
case("DifyguardKeyVersionNearBound",
     [(K % ("difyguard_keyring_latest_version_encryptions", J), "980x30"), ("difyguard_key_version_encryption_limit{%s}" % J, "1000x30")], "20m",
     {"severity": "warning", "component": "keys", "keyring": "tenant-42"},
     [(K % ("difyguard_keyring_latest_version_encryptions", J), "500x30"), ("difyguard_key_version_encryption_limit{%s}" % J, "1000x30")])
A = 'difyguard_api_key_expiry_timestamp_seconds{%s,app="dify-api",key_id="k1"}'
case("DifyguardApiKeyExpiringSoon", [(A % J, "180000x200")], "2h",
     {"severity": "info", "component": "api_keys", "app": "dify-api", "key_id": "k1"},
     [(A % J, "8640000x200")], comment="2 days left fires; 100 days do not")
case("DifyguardShredNotFlushed", [("difyguard_shred_checkpoint_failures_total{%s}" % J, "0 0 1 1")], "3m",
     {"severity": "warning", "component": "keys"},
     [("difyguard_shred_checkpoint_failures_total{%s}" % J, "1x5")])
T = 'difyguard_trace_spans_dropped_total{%s,reason="queue_full"}'
case("DifyguardTraceSpansDropped", [(T % J, "0 0 50 100")], "3m",
     {"severity": "info", "component": "tracing", "reason": "queue_full"},
     [(T % J, "100x5")])

rules = yaml.safe_load(open(os.path.join(D, "alerts.yml")))
names = [r["alert"] for r in rules["groups"][0]["rules"]]
assert sorted(names) == sorted(C), (set(names) ^ set(C))

def test_for(name, series, t, labels, fire, ann=None):
    exp = []
    if fire:
        l = dict(base); l.update(labels)
        if name == "DifyguardDown" or True:
            pass
        e = {"exp_labels": l}
        if ann is not None:
            e["exp_annotations"] = ann
        exp = [e]
    return {"name": f"{name} {'fires' if fire else 'stays quiet'}", "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [{"eval_time": t, "alertname": name, "exp_alerts": exp}]}

def got_annotations(name, series, t, labels):
    doc = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m",
           "tests": [test_for(name, series, t, labels, True, {"x": "y"})]}
    p = os.path.join(D, ".gen_test.yml")
    yaml.safe_dump(doc, open(p, "w"), sort_keys=False)
    r = subprocess.run(["promtool", "test", "rules", p], capture_output=True, text=True); out = r.stdout + r.stderr
    os.unlink(p); print(name, out[:2000]) if "got" not in out else None
    m = re.search(r"got:\[\s*0:\s*Labels:\{(.*?)\}\s*Annotations:\{(.*?)\}\s*\]", out, re.S)
    assert m, out
    gotl = dict((k, bytes(v, "utf-8").decode("unicode_escape")) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
    want = dict(base); want.update(labels); want["alertname"] = name
    assert gotl == want, (name, gotl, want)
    return dict((k, bytes(v, "utf-8").decode("unicode_escape")) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))

tests = []
for name in names:
    fire, t, labels, quiet, tq, comment = C[name]
    ann = got_annotations(name, fire, t, labels)
    tests.append(test_for(name, fire, t, labels, True, ann))
    tests.append(test_for(name, quiet, tq, labels, False))
hdr = """# SPDX-License-Identifier: Apache-2.0
# promtool test rules alerts_test.yml: for every rule of alerts.yml, a test that fires it (with its
# exact labels and rendered annotations) and one that does not. At eval time T, time() is T seconds
# since the epoch of the test. Run by tests/deploy/test_deploy.py (ctest label "deploy").
"""
doc = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": tests}
open(os.path.join(D, "alerts_test.yml"), "w").write(hdr + yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True))
print(len(tests), "tests")
