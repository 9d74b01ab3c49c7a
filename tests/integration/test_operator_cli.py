# SPDX-License-Identifier: Apache-2.0
"""Operator experience of the CLI and of what consumes its output (issue 14)."""
import json
import os
import re
import socket
import subprocess

import pytest

from conftest import SECRETS, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bootstrap_job_extracts_the_key_from_real_init_output(tmp_path):
    """The Kubernetes bootstrap Job reads init's JSON with sed: run that very sed on real output."""
    data = tmp_path / "data"
    os.makedirs(data)
    proc = run_cli(["init", "--data-dir", str(data), "--json"])
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    SECRETS.add(info["key"], "admin key (bootstrap sed)")
    assert "admin_key" not in info
    job = open(os.path.join(ROOT, "deploy/kustomize/bootstrap/job.yaml")).read()
    m = re.search(r"sed -n '([^']*)' /run/bootstrap/init.json", job)
    assert m, "the bootstrap Job no longer reads init.json with sed"
    init_json = tmp_path / "init.json"
    init_json.write_text(proc.stdout)
    out = subprocess.run(["sed", "-n", m.group(1), str(init_json)], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == info["key"], "the Job's sed does not extract the admin key"


def test_chaos_drill_reads_the_key_field():
    drill = open(os.path.join(ROOT, "tests/chaos/drill.py")).read()
    assert '["admin_key"]' not in drill and 'json.loads(proc.stdout)["key"]' in drill


# --- the admin client ------------------------------------------------------------------------

import stat  # noqa: E402
import time  # noqa: E402

from conftest import free_port, new_text, register_api_key, uniq  # noqa: E402


def env_of(server, token=None, **extra):
    env = {"DIFYGUARD_ADDR": server.url,
           "DIFYGUARD_TOKEN": server.admin_key if token is None else token}
    env.update(extra)
    return env


def cli(server, *args, code=0, env=None):
    proc = run_cli(list(args), env=env if env is not None else env_of(server))
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def test_help_command_is_the_commands_help():
    for args in (["serve"], ["keyring"], ["keyring", "update"], ["audit", "events"],
                 ["completion"]):
        via_help = run_cli(["help"] + args)
        direct = run_cli(args + ["--help"])
        assert via_help.returncode == 0 == direct.returncode, (args, via_help.stderr)
        assert via_help.stdout == direct.stdout and via_help.stdout, args
    assert run_cli(["help"]).returncode == 0
    assert run_cli(["help", "frobnicate"]).returncode == 2


def test_version_names_commit_and_libraries():
    proc = run_cli(["version"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("difyguard ")
    assert re.match(r"commit: ([0-9a-f]{7,40}|unknown)$", lines[1]), lines
    for lib in ("libsodium", "OpenSSL", "libmicrohttpd", "jansson", "SQLite", "libcurl"):
        assert lib in lines[2], lines[2]
    j = json.loads(run_cli(["version", "--json"]).stdout)
    assert j["version"] == lines[0].split()[1] and j["commit"] == lines[1].split()[1]
    # the commit is taken at build time, not at configure time: it is the tree's HEAD
    src = os.environ.get("DG_SOURCE_DIR", ROOT)
    head = subprocess.run(["git", "-C", src, "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode == 0 and os.path.realpath(src) == os.path.realpath(ROOT):
        assert j["commit"] == head.stdout.strip(), "a stale commit: rebuild after committing"


def test_listening_line_and_build_info_name_the_commit(server):
    commit = json.loads(run_cli(["version", "--json"]).stdout)["commit"]
    listening = [json.loads(ln) for ln in server.stdout().splitlines()
                 if '"msg":"listening"' in ln]
    assert listening and listening[0]["commit"] == commit, listening
    metrics = server.client(None).get("/metrics").text
    assert f'revision="{commit}"' in metrics


def test_bash_completion_completes_commands_and_options():
    script = run_cli(["completion", "bash"]).stdout
    bin_path = os.environ["DIFYGUARD_BIN"]

    def complete(*words):
        words = [bin_path] + list(words)
        prog = (script + "\nCOMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + ")\n"
                f"COMP_CWORD={len(words) - 1}\n_difyguard\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
        out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, check=True)
        return out.stdout.split()
    assert "keyring" in complete("key")
    assert set(complete("keyring", "")) >= {"update", "delete", "create"}
    assert "--min-decryption-version" in complete("keyring", "update", "--min")
    assert "--rotation-period" in complete("serve", "--rot") or \
        complete("keyring", "create", "--rot") == ["--rotation-period"]
    zsh = run_cli(["completion", "zsh"])
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef difyguard")
    assert run_cli(["completion", "fish"]).returncode == 2


def test_keyring_update_delete_durations_bools_and_output(server):
    name = uniq("kr")
    kr = json.loads(cli(server, "keyring", "create", name, "--rotation-period", "1h30m",
                        "--deletion-allowed", "false", "--output", "json").stdout)
    assert kr["rotation_period"] == 5400 and kr["deletion_allowed"] is False
    cli(server, "keyring", "rotate", name)
    kr = json.loads(cli(server, "keyring", "update", name, "--min-decryption-version", "2",
                        "--json").stdout)
    assert kr["min_decryption_version"] == 2 and kr["min_encryption_version"] == 0
    # delete is refused while deletion is not allowed: exit 1, the API's message
    proc = cli(server, "keyring", "delete", name, code=1)
    assert "deletion_allowed is false" in proc.stderr
    cli(server, "keyring", "update", name, "--deletion-allowed", "true")
    proc = cli(server, "keyring", "delete", name)
    assert "Deleted keyring" in proc.stdout
    cli(server, "keyring", "show", name, code=1)
    # --json false is text; --output table with --json contradicts; a bad --output is usage
    text = cli(server, "keyring", "list", "--json", "false").stdout
    assert text.startswith("NAME"), text[:80]
    cli(server, "keyring", "list", "--output", "yaml", code=2)
    cli(server, "keyring", "list", "--output", "table", "--json", code=2)
    cli(server, "keyring", "update", name, code=2)                     # nothing to change
    cli(server, "keyring", "update", name, "--rotation-period", "1x", code=2)


def test_audit_events_public_key_and_export(server, tmp_path):
    name = uniq("kr")
    cli(server, "keyring", "create", name)
    events = json.loads(cli(server, "audit", "events", "--keyring", name, "--op",
                            "keyring.get", "--json").stdout)["events"]
    assert events == []
    cli(server, "keyring", "show", name)
    events = json.loads(cli(server, "audit", "events", "--op", "keyring.get", "--keyring", name,
                            "--json").stdout)["events"]
    assert len(events) == 1 and events[0]["keyring"] == name
    table = cli(server, "audit", "events", "--limit", "2").stdout
    assert table.splitlines()[0].split()[:2] == ["TIME", "OP"]
    keys = cli(server, "audit", "public-key").stdout
    assert "PUBLIC KEY" in keys.splitlines()[0]
    out = tmp_path / "trail.ndjson"
    proc = cli(server, "audit", "export", "-o", str(out))
    assert out.stat().st_size > 0 and (tmp_path / "trail.ndjson.keys").read_text().strip()
    assert "difyguard audit verify" in proc.stderr
    v = run_cli(["audit", "verify", str(out), "--public-key", f"@{out}.keys", "--json"])
    assert v.returncode == 0 and json.loads(v.stdout)["valid"] is True, v.stderr
    v = run_cli(["audit", "verify", str(out), "--public-key", f"@{out}.keys", "--output", "json"])
    assert v.returncode == 0 and json.loads(v.stdout)["valid"] is True, v.stderr
    assert run_cli(["audit", "verify", str(out), "--public-key", f"@{out}.keys", "--output",
                    "xml"]).returncode == 2


def test_client_config_file(server, tmp_path):
    cfg = tmp_path / "client.json"
    cfg.write_text(json.dumps({"addr": server.url, "token": server.admin_key}))
    os.chmod(cfg, 0o644)
    env = {"DIFYGUARD_CLIENT_CONFIG": str(cfg), "DIFYGUARD_ADDR": "", "DIFYGUARD_TOKEN": ""}
    env = {"DIFYGUARD_CLIENT_CONFIG": str(cfg)}
    proc = run_cli(["keyring", "list"], env=env)
    assert proc.returncode == 2 and "chmod 600" in proc.stderr, proc.stderr
    os.chmod(cfg, 0o600)
    proc = run_cli(["keyring", "list", "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "keyrings" in json.loads(proc.stdout)
    # the environment wins over the file
    proc = run_cli(["keyring", "list"], env=dict(env, DIFYGUARD_TOKEN="dgk_" + "x" * 65))
    assert proc.returncode in (1, 2), proc.stderr
    cfg.write_text(json.dumps({"addr": server.url, "password": "x"}))
    proc = run_cli(["keyring", "list"], env=env)
    assert proc.returncode == 2 and '"password"' in proc.stderr


# --- start-up messages that lead somewhere ---------------------------------------------------

def test_startup_messages(tmp_path):
    empty = tmp_path / "empty"
    proc = run_cli(["serve", "--data-dir", str(empty), "--listen", "127.0.0.1:0"], timeout=60)
    assert proc.returncode == 1 and "difyguard init --data-dir" in proc.stderr, proc.stderr
    data = tmp_path / "d"
    assert run_cli(["init", "--data-dir", str(data)]).returncode == 0
    proc = run_cli(["serve", "--data-dir", str(data), "--listen", "localhost"], timeout=60)
    assert proc.returncode == 2 and "a port is required" in proc.stderr, proc.stderr
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        proc = run_cli(["serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"],
                       timeout=60)
    assert proc.returncode == 1 and "already in use" in proc.stderr, proc.stderr
    bad = tmp_path / "bad.pem"
    bad.write_text("junk\n")
    os.chmod(bad, 0o600)
    proc = run_cli(["serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{free_port()}",
                    "--tls-cert", str(bad), "--tls-key", str(bad)], timeout=60)
    assert proc.returncode != 0 and "--tls-cert" in proc.stderr, proc.stderr
    assert "already in use" not in proc.stderr


# --- the key file rule as the README states it -------------------------------------------------

@pytest.mark.parametrize("mode,ok", [(0o600, True), (0o400, True), (0o640, True), (0o440, True),
                                     (0o644, False), (0o660, False), (0o620, False),
                                     (0o602, False)])
def test_root_key_mode_rule_as_documented(tmp_path, mode, ok):
    from conftest import DataDir, run_serve_expecting_exit, Server
    dd = DataDir(tmp_path / "d")
    os.chmod(dd.root_key, mode)
    if ok:
        srv = Server(dd.path, admin_key=dd.admin_key)
        srv.start()
        srv.stop()
        return
    rc, err, _ = run_serve_expecting_exit(dd.path, f"127.0.0.1:{free_port()}")
    assert rc == 1 and "too open" in err and "defaultMode 0400" in err, (oct(mode), rc, err)
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "defaultMode: 0400" in readme and f"`0{mode:o}`" in readme


def test_every_command_and_audit_subcommand_has_help():
    top = run_cli(["--help"]).stdout
    cmds = re.findall(r"^  ([a-z-]+)\s{2,}", top, flags=re.M)
    assert {"init", "serve", "audit", "keyring", "help", "completion", "version"} <= set(cmds)
    for cmd in cmds:
        proc = run_cli(["help", cmd])
        assert proc.returncode == 0 and "usage" in proc.stdout.lower(), (cmd, proc.stderr)
    audit = run_cli(["audit", "--help"]).stdout
    for sub in ("verify", "events", "public-key", "export"):
        assert f"audit {sub}" in audit, audit
    for sub in ("events", "public-key", "export"):
        text = run_cli(["audit", sub, "--help"]).stdout
        assert text.startswith(f"usage: difyguard audit {sub}") and "DIFYGUARD_ADDR" in text, text
        assert "--output" in text and "DIFYGUARD_TOKEN" in text


def test_sub_second_timeout(tmp_path):
    """--timeout takes milliseconds too: a server that accepts and never answers times out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        addr = f"http://127.0.0.1:{s.getsockname()[1]}"
        env = {"DIFYGUARD_ADDR": addr, "DIFYGUARD_TOKEN": "dgk_" + "A" * 16 + "B" * 43 + "000000"}
        proc = run_cli(["keyring", "list", "--timeout", "500ms"], env=env, timeout=60)
        assert proc.returncode == 1 and "timed out" in proc.stderr.lower(), proc.stderr
        proc = run_cli(["keyring", "list", "--timeout", "1s500ms"], env=env, timeout=60)
        assert proc.returncode == 1 and "timed out" in proc.stderr.lower(), proc.stderr
    assert run_cli(["keyring", "list", "--timeout", "500xs"], env=env).returncode == 2
