#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Render every kustomization under deploy/kustomize (the overlays and the bootstrap) with
`kubectl kustomize` and check the objects an operator would apply:
- every container (init containers too) runs as non-root, with a read-only root filesystem, no
  privilege escalation, all capabilities dropped, and CPU and memory limits;
- long-running containers (Deployments) have readiness and liveness probes;
- every image is pinned to a tag or digest (never latest, never untagged);
- no secret value is inline: no Secret objects in the render, no literal env values for
  secret-looking names;
- every Secret and ConfigMap referenced is defined in the render, made by a Certificate, or
  declared external in the base's header comment;
- Services, PodDisruptionBudgets and autoscalers select or target the Deployment;
- the PrometheusRule holds exactly the groups of deploy/prometheus/alerts.yml (the rules promtool
  tests), so the cluster alerts on what CI tested.
Prints one line per problem; exit 1 when there is any."""
import os
import re
import subprocess
import sys

import yaml

SRC = os.environ.get("DG_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
ROOT = os.path.join(SRC, "deploy", "kustomize")
SECRETISH = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET|PASS|CREDENTIAL|DATABASE|DSN|URL)", re.I)


def kustomizations():
    out = []
    for d in sorted(os.listdir(os.path.join(ROOT, "overlays"))):
        out.append(os.path.join(ROOT, "overlays", d))
    out.append(os.path.join(ROOT, "bootstrap"))
    return out


def external_names():
    """`#   Secret NAME ...` lines in the base kustomization's header comment."""
    names = set()
    with open(os.path.join(ROOT, "base", "kustomization.yaml")) as f:
        for line in f:
            m = re.match(r"#\s+(Secret|ConfigMap)\s+([a-z0-9-]+)\s", line)
            if m:
                names.add((m.group(1), m.group(2)))
    return names


def render(path):
    proc = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"kubectl kustomize {path} failed:\n{proc.stderr}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def pod_specs(objs):
    for o in objs:
        spec = o.get("spec", {})
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o, spec["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield o, spec["jobTemplate"]["spec"]["template"]["spec"]


def check_container(where, c, pod, long_running, problems):
    sc = c.get("securityContext", {})
    psc = pod.get("securityContext", {})
    name = f"{where} container {c['name']}"
    if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        problems.append(f"{name}: not runAsNonRoot")
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    if uid == 0:
        problems.append(f"{name}: runAsUser 0")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{name}: root filesystem not read-only")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: privilege escalation not disabled")
    if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
        problems.append(f"{name}: capabilities not all dropped")
    limits = c.get("resources", {}).get("limits", {})
    if "cpu" not in limits or "memory" not in limits:
        problems.append(f"{name}: no cpu and memory limits")
    if long_running and not (c.get("readinessProbe") and c.get("livenessProbe")):
        problems.append(f"{name}: no readiness and liveness probes")
    image = c.get("image", "")
    tag = image.rsplit("/", 1)[-1]
    if "@sha256:" not in image and (":" not in tag or tag.endswith(":latest")):
        problems.append(f"{name}: image {image!r} not pinned to a tag or digest")
    for e in c.get("env", []) or []:
        if "value" in e and SECRETISH.search(e["name"]):
            problems.append(f"{name}: env {e['name']} has an inline value")


def referenced(pod):
    refs = set()
    for v in pod.get("volumes", []) or []:
        if "secret" in v:
            refs.add(("Secret", v["secret"]["secretName"]))
        if "configMap" in v:
            refs.add(("ConfigMap", v["configMap"]["name"]))
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        for e in c.get("env", []) or []:
            vf = e.get("valueFrom", {})
            if "secretKeyRef" in vf:
                refs.add(("Secret", vf["secretKeyRef"]["name"]))
            if "configMapKeyRef" in vf:
                refs.add(("ConfigMap", vf["configMapKeyRef"]["name"]))
        for ef in c.get("envFrom", []) or []:
            if "secretRef" in ef:
                refs.add(("Secret", ef["secretRef"]["name"]))
            if "configMapRef" in ef:
                refs.add(("ConfigMap", ef["configMapRef"]["name"]))
    return refs


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check(path, external):
    problems = []
    objs = render(path)
    where = os.path.relpath(path, SRC)
    defined = {(o["kind"], o["metadata"]["name"]) for o in objs}
    defined |= {("Secret", o["spec"]["secretName"]) for o in objs if o["kind"] == "Certificate"}
    for o in objs:
        if o["kind"] == "Secret":
            problems.append(f"{where}: Secret {o['metadata']['name']} is inline in the render")
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    for o, pod in pod_specs(objs):
        w = f"{where}: {o['kind']}/{o['metadata']['name']}"
        for c in pod.get("initContainers") or []:
            check_container(w, c, pod, False, problems)
        for c in pod.get("containers") or []:
            check_container(w, c, pod, o["kind"] == "Deployment", problems)
        for ref in referenced(pod):
            if ref not in defined and ref not in external:
                problems.append(f"{w}: {ref[0]} {ref[1]} is neither defined nor declared external")
    for o in objs:
        w = f"{where}: {o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Service", "PodDisruptionBudget"):
            sel = o["spec"].get("selector", {})
            sel = sel.get("matchLabels", sel) if o["kind"] == "PodDisruptionBudget" else sel
            if not any(matches(sel, d["spec"]["template"]["metadata"]["labels"])
                       for d in deployments):
                problems.append(f"{w}: selects no Deployment's pods")
        if o["kind"] == "HorizontalPodAutoscaler":
            t = o["spec"]["scaleTargetRef"]
            if not any(d["metadata"]["name"] == t["name"] for d in deployments):
                problems.append(f"{w}: targets no Deployment")
    rules = [o for o in objs if o["kind"] == "PrometheusRule"]
    if deployments and len(rules) != 1:
        problems.append(f"{where}: {len(rules)} PrometheusRules (want 1)")
    with open(os.path.join(SRC, "deploy", "prometheus", "alerts.yml")) as f:
        tested = yaml.safe_load(f)["groups"]
    for o in rules:
        if o["spec"].get("groups") != tested:
            problems.append(f"{where}: PrometheusRule/{o['metadata']['name']} differs from "
                            "deploy/prometheus/alerts.yml (run scripts/gen-prometheusrule.py)")
    return objs, problems


def main():
    external = external_names()
    if not external:
        print("FAIL: the base declares no external objects")
        return 1
    problems = []
    for path in kustomizations():
        objs, p = check(path, external)
        problems += p
        print(f"{os.path.relpath(path, SRC)}: {len(objs)} objects")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
