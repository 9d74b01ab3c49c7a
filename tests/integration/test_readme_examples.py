# SPDX-License-Identifier: Apache-2.0
"""The README's shell examples run (issue 14): every `sh` block that talks to a running server is
extracted, its placeholders filled in (the address and token, ciphertexts the earlier lines
printed, key ids, the audit public key, a file to encrypt) and each command run in order
against a test server; curl runs with --fail-with-body, so an example the API refuses fails
here. Blocks that start their own server or need outside tools are listed and skipped by name."""
import json
import os
import re
import subprocess

import pytest

from conftest import BIN, SECRETS, child_env, expect

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Blocks whose first command line starts with one of these are not run here, and why.
NOT_RUN = {
    "scripts/quickstart.sh": "builds and starts its own server (CI runs it elsewhere)",
    "scripts/test.sh": "the whole test suite",
    "difyguard serve": "starts a server of its own with files the example assumes",
    "difyguard keyring create dify\n": "installs into a Dify checkout (test_dify_deploy.py applies "
                                        "the patch, test_dify_provider.py runs the provider)",
    "difyguard init  --data-dir /etc/difyguard": "needs a PostgreSQL server named in the example "
                                                 "(test_postgres.py runs both forms)",
    "python migrate_command.py": "runs inside Dify's api container (test_dify_migrate.py runs "
                                 "the migration on a stand-in of Dify's tables)",
}


def sh_blocks():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def commands(block):
    """The block's commands: comment lines dropped, continuation lines joined."""
    out, cur = [], ""
    for line in block.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        out.append(cur + line)
        cur = ""
    return out


def runnable_blocks():
    blocks = []
    for b in sh_blocks():
        cmds = commands(b)
        if not cmds or any((cmds[0] + "\n").startswith(p) for p in NOT_RUN):
            continue
        blocks.append(cmds)
    return blocks


def find_key(obj, key):
    """The first value of `key` anywhere in a parsed JSON document."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = find_key(v, key)
            if found is not None:
                return found
    return None


class Runner:
    def __init__(self, srv, cwd):
        self.srv, self.cwd = srv, cwd
        self.ct = {}
        bindir = cwd / "bin"
        bindir.mkdir()
        os.symlink(BIN, bindir / "difyguard")
        self.env = child_env({"DG": srv.url, "TOKEN": srv.admin_key,
                              "DIFYGUARD_ADDR": srv.url, "DIFYGUARD_TOKEN": srv.admin_key,
                              "PATH": f"{bindir}:{os.environ['PATH']}"})
        (cwd / "big.bin").write_bytes(os.urandom(20000))
        # the env walk-through's clear file
        (cwd / "dify.env").write_text("# Dify\nDB_PASSWORD='readme-db-secret'\n"
                                      "SECRET_KEY=\"readme-secret-key\"\nLOG_LEVEL=INFO\n")
        SECRETS.add("readme-db-secret", "README env example value")
        SECRETS.add("readme-secret-key", "README env example value")

    def key_id(self, app):
        keys = expect(self.srv.admin.get(f"/v1/apps/{app}/keys"), 200)["keys"]
        return max(keys, key=lambda k: k["created_at"])["id"]

    def fill(self, cmd):
        cmd = cmd.replace("http://127.0.0.1:8080", self.srv.url)
        cmd = cmd.replace("DIFYGUARD_TOKEN=dgk_...", f"DIFYGUARD_TOKEN={self.srv.admin_key}")
        if "dg:v1:AQAAAAF..." in cmd:
            cmd = cmd.replace("dg:v1:AQAAAAF...", self.ct["providers"])
        if '"dg:v1:..."' in cmd:
            cmd = cmd.replace("dg:v1:...", self.ct["file"])
        m = re.search(r"/apps/([a-z0-9-]+)/keys/KEYID|key rotate (\S+) KEYID", cmd)
        if m:
            cmd = cmd.replace("KEYID", self.key_id(m.group(1) or m.group(2)))
        if "--expect-head" in cmd:   # the head the auditor's report.json names
            with open(self.cwd / "report.json") as f:
                h = find_key(json.load(f), "audit_heads")[0]
            cmd = re.sub(r"--expect-head \S+", f"--expect-head {h['chain_id']}:{h['seq']}:{h['hash']}",
                         cmd)
        cmd = cmd.replace("/run/dify/env", str(self.cwd / "run" / "dify" / "env"))
        cmd = cmd.replace("-- /entrypoint.sh", "-- sh -c 'test -n \"$DB_PASSWORD\"'")
        if "BASE64KEY" in cmd:
            keys = expect(self.srv.admin.get("/v1/audit/public-key"), 200)["keys"]
            cmd = cmd.replace("BASE64KEY", keys[0]["public_key"])
        return cmd

    def run(self, cmd):
        filled = self.fill(cmd)
        if filled.startswith("export "):                 # kept for the block's later commands
            for var, val in re.findall(r"(\w+)=(\S+)", filled.split("#")[0]):
                self.env[var] = val
            return ""
        script = 'curl() { command curl --fail-with-body "$@"; }\nset -eo pipefail\n' + filled
        p = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env,
                           capture_output=True, timeout=120)
        out = p.stdout.decode(errors="replace")   # a raw decrypt prints bytes
        assert p.returncode == 0, f"README example failed ({p.returncode}):\n{cmd}\n{out}" \
                                  f"\n{p.stderr.decode(errors='replace')}"
        self.learn(cmd, out)
        return out

    def learn(self, cmd, out):
        for line in out.splitlines():
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if isinstance(j, dict) and "key" in j and str(j.get("key", "")).startswith("dgk_"):
                SECRETS.add(j["key"], "API key (README example)")
            if isinstance(j, dict) and "ciphertext" in j:
                self.ct["file" if "big.bin" in cmd else "providers"] = j["ciphertext"]
        for line in out.splitlines():
            if line.startswith("dgk_"):
                SECRETS.add(line.strip(), "API key (README CLI example)")


def test_readme_has_the_examples_this_test_runs():
    blocks = runnable_blocks()
    flat = "\n".join("\n".join(b) for b in blocks)
    assert len(blocks) >= 3, blocks
    for needle in ("/v1/keyrings/tenant-42/encrypt", "/v1/audit/events", "difyguard keyring update",
                   "difyguard audit export -o"):
        assert needle in flat, needle


@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_readme_block_runs(start_server, tmp_path, index):
    blocks = runnable_blocks()
    srv = start_server()
    runner = Runner(srv, tmp_path)
    # the API walk-through (the first block) sets up what the others read (apps, events)
    if index > 0:
        for cmd in blocks[0]:
            runner.run(cmd)
    for cmd in blocks[index]:
        runner.run(cmd)
