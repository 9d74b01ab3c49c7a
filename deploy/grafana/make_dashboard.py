#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes difyguard.json, the importable Grafana dashboard: edit the panels here, then run
#   /usr/bin/python3 deploy/grafana/make_dashboard.py deploy/grafana/difyguard.json
# tests/deploy/test_deploy.py checks the committed file is what this writes, and
# tests/integration/test_prometheus.py evaluates every expression against a real Prometheus.
import json, sys
R = '$__rate_interval'
I = 'instance=~"$instance"'
rows = [
 ("Traffic", [
  ("Requests per second by route", "timeseries", "reqps", [("sum by (route, method) (rate(difyguard_http_request_duration_seconds_count{%s}[%s]))" % (I, R), "{{method}} {{route}}")]),
  ("Latency p50 / p99 by route", "timeseries", "s", [
     ("histogram_quantile(0.5, sum by (route, le) (rate(difyguard_http_request_duration_seconds_bucket{%s}[%s])))" % (I, R), "p50 {{route}}"),
     ("histogram_quantile(0.99, sum by (route, le) (rate(difyguard_http_request_duration_seconds_bucket{%s}[%s])))" % (I, R), "p99 {{route}}")]),
  ("Error ratio (5xx) by route", "timeseries", "percentunit", [("sum by (route) (rate(difyguard_http_request_duration_seconds_count{%s,status_class=\"5xx\"}[%s])) / sum by (route) (rate(difyguard_http_request_duration_seconds_count{%s}[%s]))" % (I, R, I, R), "{{route}}")]),
  ("Client errors (4xx) by route", "timeseries", "reqps", [("sum by (route) (rate(difyguard_http_request_duration_seconds_count{%s,status_class=\"4xx\"}[%s]))" % (I, R), "{{route}}")]),
  ("In flight, connections, 413/429", "timeseries", "short", [
     ("sum(difyguard_http_requests_in_flight{%s})" % I, "in flight"),
     ("sum(difyguard_http_connections_open{%s})" % I, "connections"),
     ("sum by (reason) (rate(difyguard_http_rejected_total{%s}[%s]))" % (I, R), "{{reason}} /s")]),
  ("Refused authentications by reason", "timeseries", "reqps", [("sum by (reason) (rate(difyguard_auth_failures_total{%s}[%s]))" % (I, R), "{{reason}}")]),
 ]),
 ("Per-app usage", [
  ("Crypto operations by app", "timeseries", "ops", [("sum by (app, op) (rate(difyguard_crypto_operations_total{%s}[%s]))" % (I, R), "{{app}} {{op}}")]),
  ("Crypto errors by app and outcome", "timeseries", "ops", [("sum by (app, outcome) (rate(difyguard_crypto_operations_total{%s,outcome!=\"ok\"}[%s]))" % (I, R), "{{app}} {{outcome}}")]),
  ("Crypto operations by keyring", "timeseries", "ops", [("sum by (keyring, op) (rate(difyguard_crypto_operations_total{%s}[%s]))" % (I, R), "{{keyring}} {{op}}")]),
  ("Batch size p50 / p99", "timeseries", "short", [
     ("histogram_quantile(0.5, sum by (op, le) (rate(difyguard_crypto_batch_items_bucket{%s}[%s])))" % (I, R), "p50 {{op}}"),
     ("histogram_quantile(0.99, sum by (op, le) (rate(difyguard_crypto_batch_items_bucket{%s}[%s])))" % (I, R), "p99 {{op}}")]),
  ("Rate-limited requests by app", "timeseries", "reqps", [("sum by (app) (rate(difyguard_rate_limited_total{%s}[%s]))" % (I, R), "{{app}}")]),
  ("API keys expiring within 30 days (days left)", "table", "d", [("sort((difyguard_api_key_expiry_timestamp_seconds{%s} - time()) / 86400 < 30)" % I, "{{app}} {{key_id}}")]),
 ]),
 ("Audit trail", [
  ("Audit backlog", "timeseries", "short", [("max by (instance) (difyguard_audit_backlog{%s})" % I, "{{instance}}")]),
  ("Group commit p99 duration and size", "timeseries", "s", [
     ("histogram_quantile(0.99, sum by (instance, le) (rate(difyguard_audit_group_commit_seconds_bucket{%s}[%s])))" % (I, R), "p99 commit {{instance}}"),
     ("sum by (instance) (rate(difyguard_audit_group_commit_events_sum{%s}[%s])) / sum by (instance) (rate(difyguard_audit_group_commit_events_count{%s}[%s]))" % (I, R, I, R), "mean events/commit {{instance}}")]),
  ("Audit write failures", "stat", "short", [("sum(increase(difyguard_audit_write_failures_total{%s}[1h]))" % I, "last hour")]),
  ("Audit chain valid (1 ok, 0 broken, -1 not verified)", "stat", "short", [("min(difyguard_audit_chain_valid{%s})" % I, "chain")]),
  ("Since last checkpoint", "stat", "s", [("time() - max(difyguard_audit_last_checkpoint_timestamp_seconds{%s} > 0)" % I, "age")]),
 ]),
 ("Keys, certificates, compliance", [
  ("Latest key version: share of its encryption bound", "timeseries", "percentunit", [("difyguard_keyring_latest_version_encryptions{%s} / on (job, instance) group_left difyguard_key_version_encryption_limit{%s}" % (I, I), "{{keyring}}")]),
  ("Latest key version age / rotation period", "timeseries", "percentunit", [("difyguard_keyring_latest_version_age_seconds{%s} / (difyguard_keyring_rotation_period_seconds{%s} > 0)" % (I, I), "{{keyring}}")]),
  ("Next rotation (days)", "table", "d", [("(difyguard_keyring_next_rotation_timestamp_seconds{%s} > 0) - time()" % I, "{{keyring}}")]),
  ("Certificates: days to expiry", "table", "d", [("(difyguard_cert_not_after_timestamp_seconds{%s} - time()) / 86400" % I, "{{cert_id}}")]),
  ("Certificates expired or past renewal", "stat", "short", [
     ("sum(difyguard_cert_expired{%s})" % I, "expired"),
     ("count(time() > difyguard_cert_renewal_due_timestamp_seconds{%s})" % I, "renewal overdue")]),
  ("Compliance controls failing", "table", "short", [("difyguard_compliance_control_status{%s,result=\"fail\"} == 1" % I, "{{pack}} {{control}}")]),
 ]),
 ("Resources and dependencies", [
  ("CPU (cores)", "timeseries", "short", [("rate(process_cpu_seconds_total{job=\"difyguard\",%s}[%s])" % (I, R), "{{instance}}")]),
  ("Resident memory", "timeseries", "bytes", [("process_resident_memory_bytes{job=\"difyguard\",%s}" % I, "{{instance}}")]),
  ("Open file descriptors / limit", "timeseries", "percentunit", [("process_open_fds{job=\"difyguard\",%s} / process_max_fds{job=\"difyguard\",%s}" % (I, I), "{{instance}}")]),
  ("Database pool", "timeseries", "short", [
     ("sum by (backend) (difyguard_db_pool_in_use{%s})" % I, "in use {{backend}}"),
     ("sum by (backend) (difyguard_db_pool_waiting{%s})" % I, "waiting {{backend}}"),
     ("sum by (backend) (rate(difyguard_db_pool_wait_seconds_total{%s}[%s]))" % (I, R), "wait s/s {{backend}}"),
     ("sum by (backend) (rate(difyguard_db_errors_total{%s}[%s]))" % (I, R), "errors/s {{backend}}")]),
  ("Trace spans exported / dropped", "timeseries", "short", [
     ("sum(rate(difyguard_trace_spans_exported_total{%s}[%s]))" % (I, R), "exported/s"),
     ("sum by (reason) (rate(difyguard_trace_spans_dropped_total{%s}[%s]))" % (I, R), "dropped/s {{reason}}")]),
  ("Version", "table", "short", [("difyguard_build_info{%s}" % I, "{{version}} {{revision}}")]),
 ]),
]
panels, pid, y = [], 1, 0
for title, ps in rows:
    panels.append({"type": "row", "title": title, "id": pid, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
    pid += 1; y += 1
    for i, (ptitle, ptype, unit, targets) in enumerate(ps):
        w = 12 if ptype == "timeseries" else 8 if ptype == "stat" else 12
        x = (i % 2) * 12 if ptype != "stat" else (i % 3) * 8
        panels.append({
            "type": ptype, "title": ptitle, "id": pid,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": w, "x": x, "y": y + (i // 2) * 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
            "targets": [{"refId": chr(65 + k), "expr": e, "legendFormat": lf,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}} for k, (e, lf) in enumerate(targets)],
        })
        pid += 1
    y += ((len(ps) + 1) // 2) * 8
dash = {
  "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
  "title": "difyguard", "uid": "difyguard-overview", "tags": ["difyguard", "dify", "secrets"],
  "description": "difyguard: throughput, latency and errors by route and app, audit trail, keys, certificates, compliance, resources. Metrics: README.md (Metrics).",
  "timezone": "browser", "schemaVersion": 38, "version": 1, "editable": True, "refresh": "30s",
  "time": {"from": "now-6h", "to": "now"},
  "templating": {"list": [
    {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source", "current": {}},
    {"name": "instance", "type": "query", "label": "Instance", "datasource": {"type": "prometheus", "uid": "${datasource}"},
     "query": {"query": "label_values(difyguard_build_info, instance)", "refId": "instance"},
     "definition": "label_values(difyguard_build_info, instance)",
     "includeAll": True, "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "refresh": 2},
  ]},
  "annotations": {"list": []},
  "panels": panels,
}
json.dump(dash, open(sys.argv[1], "w"), indent=2)
print(sum(len(p.get("targets", [])) for p in panels), "expressions in", len(panels), "panels")
