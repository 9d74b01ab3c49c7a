# SPDX-License-Identifier: Apache-2.0
"""Bootstrapping under a root key provisioned from outside (a Kubernetes Secret, SOPS, an agent):
`init` adopts an existing key file that passes the key-file rule when the database is new, never
rewrites or removes it, and refuses one that is too open or malformed without creating anything."""
import base64
import json
import os
import stat

import pytest

import conftest
from conftest import SECRETS, Server, expect, new_text, register_root_key, run_cli


def provisioned_key(tmp_path, mode=0o400):
    """A root key laid out as a Kubernetes secret volume does it: secret/..data/root.key with
    secret/root.key a symlink into the current ..data directory."""
    secret = tmp_path / "secret"
    data = secret / "..2026_12_01_00_00_00.000000001"
    data.mkdir(parents=True)
    key = data / "root.key"
    key.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    os.chmod(key, mode)
    os.symlink(data.name, secret / "..data")
    os.symlink("..data/root.key", secret / "root.key")
    register_root_key(str(key))
    return str(secret / "root.key"), key.read_bytes()


def init(data_dir, root_key):
    return run_cli(["init", "--data-dir", str(data_dir), "--root-key", root_key, "--json"])


@pytest.mark.skipif(bool(conftest.PG_SUITE_URL), reason="checks the SQLite file init makes")
def test_init_adopts_a_provisioned_root_key_and_serves_with_it(tmp_path):
    path, content = provisioned_key(tmp_path)
    data = tmp_path / "data"
    proc = init(data, path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    SECRETS.add(info["key"], "admin key (adopted root key)")
    assert info["root_key_adopted"] is True
    with open(path, "rb") as f:
        assert f.read() == content, "the provisioned key file was rewritten"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o400
    assert os.path.exists(data / "difyguard.db")
    assert not os.path.exists(data / "root.key"), "init wrote a second root key"

    srv = Server(data, args=["--root-key", path], admin_key=info["key"])
    srv.start()
    try:
        name = "adopted"
        expect(srv.admin.post("/v1/keyrings", {"name": name}), 201)
        text = new_text("adopted")
        ct = srv.admin.encrypt(name, text=text)["ciphertext"]
        assert srv.admin.decrypt(name, ct)["text"] == text
    finally:
        srv.stop()

    # a second init finds the database initialised: refused, and the key file is left alone
    again = init(data, path)
    assert again.returncode == 1, again.stderr
    assert "already initialised" in again.stderr
    with open(path, "rb") as f:
        assert f.read() == content


def test_a_fresh_key_is_still_created_and_reported_as_not_adopted(tmp_path):
    data = tmp_path / "data"
    proc = run_cli(["init", "--data-dir", str(data), "--json"])
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    SECRETS.add(info["key"], "admin key (fresh)")
    register_root_key(str(data / "root.key"))
    assert info["root_key_adopted"] is False
    assert stat.S_IMODE(os.stat(data / "root.key").st_mode) == 0o600


def test_a_provisioned_key_too_open_is_refused_and_kept(tmp_path):
    path, content = provisioned_key(tmp_path, mode=0o644)
    data = tmp_path / "data"
    proc = init(data, path)
    assert proc.returncode == 1
    assert "too open" in proc.stderr and "0644" in proc.stderr, proc.stderr
    assert os.path.exists(path), "a refused provisioned key was removed"
    with open(path, "rb") as f:
        assert f.read() == content
    assert not os.path.exists(data / "difyguard.db")


def test_a_malformed_provisioned_key_is_refused_and_kept(tmp_path):
    bad = tmp_path / "root.key"
    bad.write_bytes(b"not a root key\n")
    os.chmod(bad, 0o600)
    data = tmp_path / "data"
    proc = init(data, str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip()
    assert bad.read_bytes() == b"not a root key\n"
    assert not os.path.exists(data / "difyguard.db")
