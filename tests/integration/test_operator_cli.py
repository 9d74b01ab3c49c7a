# SPDX-License-Identifier: Apache-2.0
"""Operator experience of the CLI and of what consumes its output (issue 14)."""
import json
import os
import re
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
