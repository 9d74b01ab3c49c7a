# SPDX-License-Identifier: Apache-2.0
"""Command line: --help on every command, usage errors exit 2, version, init --json."""
import json
import os
import re
import stat

import pytest

import conftest
from conftest import run_cli

COMMANDS = ["init", "serve", "admin-key", "rotate-root-key"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_exits_zero_and_names_variables(cmd):
    proc = run_cli([cmd, "--help"])
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    text = proc.stdout + proc.stderr
    assert "usage" in text.lower(), text[:300]
    assert "DIFYGUARD_" in text, f"{cmd} --help does not mention DIFYGUARD_ variables"
    assert "DIFYGUARD_DATA_DIR" in text, text[:500]


def test_serve_help_lists_every_documented_flag():
    proc = run_cli(["serve", "--help"])
    assert proc.returncode == 0
    text = proc.stdout + proc.stderr
    for flag in ["--listen", "--data-dir", "--tls-cert", "--tls-key", "--tls-terminated-upstream",
                 "--max-body-bytes", "--max-batch-items", "--max-batch-bytes",
                 "--kek-max-encryptions", "--max-connections", "--max-connections-per-ip",
                 "--idle-timeout", "--threads", "--log-level", "--config"]:
        assert flag in text, f"serve --help lacks {flag}"
        var = "DIFYGUARD_" + flag[2:].upper().replace("-", "_")
        assert var in text, f"serve --help lacks {var}"


def test_help_short_flag_and_top_level():
    assert run_cli(["serve", "-h"]).returncode == 0
    top = run_cli(["--help"])
    assert top.returncode == 0, top.stderr
    text = top.stdout + top.stderr
    for cmd in COMMANDS + ["version"]:
        assert cmd in text, f"top-level help lacks {cmd}"
    assert run_cli(["version", "--help"]).returncode == 0


@pytest.mark.parametrize("cmd", COMMANDS + ["version"])
def test_unknown_flag_exits_2(cmd):
    proc = run_cli([cmd, "--no-such-flag"])
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one clear stderr line: {proc.stderr!r}"
    assert "no-such-flag" in lines[0] or "option" in lines[0], lines[0]
    assert proc.stdout == "", proc.stdout


def test_unknown_command_and_no_command_exit_2():
    proc = run_cli(["frobnicate"])
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.strip()
    proc = run_cli([])
    assert proc.returncode == 2, (proc.returncode, proc.stderr)


@pytest.mark.parametrize("args", [
    ["serve", "--max-body-bytes", "lots"], ["serve", "--threads", "-1"],
    ["serve", "--idle-timeout", "soon"], ["init", "stray-positional"],
    ["rotate-root-key", "--data-dir", "/nonexistent-dg"],          # --new-key missing
])
def test_bad_flag_values_exit_2(args):
    proc = run_cli(args)
    assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
    assert proc.stderr.strip()


def project_version():
    """The version, written once: project(difyguard VERSION x.y.z) in CMakeLists.txt."""
    src = os.environ.get("DG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(src, "CMakeLists.txt")) as f:
        m = re.search(r"project\(difyguard VERSION ([0-9.]+)", f.read())
    assert m, "no project version in CMakeLists.txt"
    return m.group(1)


def test_version():
    proc = run_cli(["version"])
    assert proc.returncode == 0, proc.stderr
    assert project_version() in proc.stdout.split(), proc.stdout


@pytest.mark.skipif(bool(conftest.PG_SUITE_URL), reason="checks the SQLite file init makes")
def test_init_json_output(tmp_path):
    d = tmp_path / "fresh"
    proc = run_cli(["init", "--data-dir", str(d), "--json"])
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    from conftest import SECRETS, register_root_key
    SECRETS.add(info["key"], "admin key (test_init_json_output)")
    register_root_key(str(d / "root.key"))
    assert set(info) >= {"key", "root_key_id", "data_dir", "database"}
    assert "admin_key" not in info     # issue 14: one name for a key's text, as the API's
    assert info["key"].startswith("dgk_") and len(info["key"]) == 69
    assert len(info["root_key_id"]) == 16
    assert os.path.exists(d / "root.key") and os.path.exists(d / "difyguard.db")
    assert stat.S_IMODE(os.stat(d / "root.key").st_mode) == 0o600
    assert info["key"] not in proc.stderr


def test_env_variable_sets_data_dir(tmp_path):
    d = tmp_path / "via-env"
    proc = run_cli(["init", "--json"], env={"DIFYGUARD_DATA_DIR": str(d)})
    assert proc.returncode == 0, proc.stderr
    from conftest import SECRETS, register_root_key
    SECRETS.add(json.loads(proc.stdout)["key"], "admin key (env init)")
    register_root_key(str(d / "root.key"))
    assert os.path.exists(d / "root.key")
