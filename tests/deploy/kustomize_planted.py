#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The manifest check catches what it is for: on a copy of deploy/kustomize each planted
violation makes tests/deploy/kustomize_check.py fail with a line naming it."""
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("DG_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
CHECK = os.path.join(SRC, "tests", "deploy", "kustomize_check.py")
BASE = "deploy/kustomize/base/deployment.yaml"
PLANTS = [
    (BASE, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "read-only"),
    (BASE, "          readinessProbe:", "          readinessProbeX:", "probes"),
    (BASE, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "escalation"),
    (BASE, "              memory: 512Mi\n", "", "limits"),
    (BASE, "name: difyguard-database", "name: difyguard-db-typo", "neither defined"),
    ("deploy/kustomize/overlays/prod/kustomization.yaml", 'newTag: "0.1.0"', 'newTag: "latest"',
     "not pinned"),
    (BASE, "          env:\n", "          env:\n            - name: DIFYGUARD_TOKEN\n"
     "              value: dgk_inline\n", "inline value"),
    ("deploy/kustomize/base/service.yaml", "    app.kubernetes.io/name: difyguard\n",
     "    app.kubernetes.io/name: difyguard\n    tier: api\n", "selects no"),
    # an alert edited in the tested rules but not regenerated into the cluster's PrometheusRule
    ("deploy/prometheus/alerts.yml", "for: 2m", "for: 20m", "differs from"),
]


def run(tree):
    env = dict(os.environ, DG_SOURCE_DIR=tree)
    return subprocess.run([sys.executable, CHECK], env=env, capture_output=True, text=True)


def main():
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (path, old, new, want) in enumerate(PLANTS):
            tree = os.path.join(tmp, str(i))
            shutil.copytree(os.path.join(SRC, "deploy"), os.path.join(tree, "deploy"))
            os.makedirs(os.path.join(tree, "tests", "deploy"))
            target = os.path.join(tree, path)
            with open(target) as f:
                text = f.read()
            if text.count(old) != 1:
                print(f"FAIL: plant {i}: {old!r} occurs {text.count(old)} times in {path}")
                bad += 1
                continue
            with open(target, "w") as f:
                f.write(text.replace(old, new))
            proc = run(tree)
            if want is None:
                continue                    # a control: only that the plant applied
            if proc.returncode == 0 or want not in proc.stdout:
                print(f"FAIL: plant {i} ({want}) not caught:\n{proc.stdout}{proc.stderr}")
                bad += 1
            else:
                print(f"ok: plant {i} caught ({want})")
    clean = run(SRC)
    if clean.returncode != 0:
        print("FAIL: the tree as it is fails:\n" + clean.stdout + clean.stderr)
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
