# SPDX-License-Identifier: Apache-2.0
"""Static checks of the Dify deployment examples (no container engine runs here): the compose
override runs the env init container before api and worker and hands them the secrets through a
tmpfs only, and the Kubernetes example does the same with a memory-backed emptyDir; both call
`env decrypt` with options the binary knows, and no secret is inline."""
import os

import yaml

SRC = os.environ.get("DG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def load(rel):
    with open(os.path.join(SRC, rel)) as f:
        return list(yaml.safe_load_all(f))


def decrypt_args_ok(args):
    assert args[:2] == ["env", "decrypt"], args
    opts = {a for a in args if a.startswith("--")}
    assert opts <= {"--environment", "--keyring", "--wait", "--format", "--out"}, opts
    out = args[args.index("--out") + 1]
    assert args[args.index("--format") + 1] == "shell"
    return out


def test_compose_override():
    (doc,) = load("deploy/compose/docker-compose.difyguard.yaml")
    s = doc["services"]
    init = s["dify-env"]
    out = decrypt_args_ok(init["command"])
    assert init["restart"] == "no" and init["read_only"] is True
    assert init["environment"]["DIFYGUARD_TOKEN"].startswith("${")     # never inline
    assert init["environment"]["DIFYGUARD_ADDR"].startswith("https://")
    vol = doc["volumes"]["dify-env"]["driver_opts"]
    assert vol["type"] == "tmpfs" and "mode=0700" in vol["o"]
    for name in ("api", "worker"):
        svc = s[name]
        assert svc["depends_on"]["dify-env"]["condition"] == "service_completed_successfully"
        assert "dify-env:/run/dify-env:ro" in svc["volumes"]
        assert f". {out} && exec" in svc["entrypoint"][-1]
    assert any(v.startswith("dify-env:/run/dify-env") and not v.endswith(":ro")
               for v in init["volumes"])


def test_kubernetes_init_container():
    (dep,) = load("deploy/dify/init-container.yaml")
    spec = dep["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    out = decrypt_args_ok(init["args"])
    env = {e["name"]: e for e in init["env"]}
    assert "secretKeyRef" in env["DIFYGUARD_TOKEN"]["valueFrom"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["dify-env"]["emptyDir"]["medium"] == "Memory"
    (api,) = spec["containers"]
    assert f". {out} && exec" in api["command"][-1]
    assert {"name": "dify-env", "mountPath": "/run/dify-env", "readOnly": True} in \
        api["volumeMounts"]
    assert {e["name"]: e.get("value") for e in api["env"]}["KEY_PROVIDER_TYPE"] == "difyguard"
    assert not any(e["name"] == "DIFYGUARD_TOKEN" for e in api["env"])


def test_the_patch_applies_by_content(tmp_path):
    """dify-key-provider.patch: three hunks, applied with GNU patch to files holding the lines
    its hunks name (the patch's own context, not Dify's code)."""
    import subprocess
    patch = os.path.join(SRC, "integrations", "dify", "dify-key-provider.patch")
    files, cur = {}, None
    for line in open(patch):
        if line.startswith("+++ b/"):
            cur = line[6:].strip()
            files[cur] = ["# before\n"] * 30
        elif cur and line[:1] in (" ", "-") and not line.startswith("---"):
            files[cur].append(line[1:])
    assert len(files) == 3
    for path, lines in files.items():
        p = tmp_path / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(lines + ["# after\n"]))
    r = subprocess.run(["patch", "-p1", "-i", patch], cwd=tmp_path, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'DIFYGUARD = "difyguard"' in (tmp_path / "api/libs/key_providers/"
                                         "key_provider_type.py").read_text()
    assert "return DifyguardKeyProvider" in (tmp_path / "api/extensions/"
                                             "ext_key_provider.py").read_text()
    assert '"difyguard"] = Field(' in (tmp_path / "api/configs/middleware/__init__.py").read_text()
