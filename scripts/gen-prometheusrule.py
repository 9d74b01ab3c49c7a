#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write deploy/kustomize/base/prometheusrule.yaml: the Prometheus Operator's PrometheusRule
holding exactly the groups of deploy/prometheus/alerts.yml (the file promtool tests). Run it
after editing alerts.yml; tests/deploy/kustomize_check.py fails while the two differ."""
import os
import sys

import yaml

SRC = os.environ.get("DG_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..")
RULES = os.path.join(SRC, "deploy", "prometheus", "alerts.yml")
OUT = os.path.join(SRC, "deploy", "kustomize", "base", "prometheusrule.yaml")

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by scripts/gen-prometheusrule.py: do not edit.
# The alert rules (and their promtool tests) live in deploy/prometheus/; kustomize_check.py
# fails when this file and alerts.yml differ.
"""


def rule():
    with open(RULES) as f:
        groups = yaml.safe_load(f)["groups"]
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "difyguard",
                         "labels": {"app.kubernetes.io/component": "alerts"}},
            "spec": {"groups": groups}}


def main():
    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, s):  # multi-line expressions stay readable
        return dumper.represent_scalar("tag:yaml.org,2002:str", s,
                                       style="|" if "\n" in s else None)

    Dumper.add_representer(str, text)
    with open(OUT, "w") as f:
        f.write(HEADER)
        yaml.dump(rule(), f, Dumper=Dumper, sort_keys=False, width=100, allow_unicode=True)
    print(f"wrote {os.path.relpath(OUT, SRC)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
