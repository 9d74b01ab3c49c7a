# SPDX-License-Identifier: Apache-2.0
"""Secret key files follow the root key's rule (issue 6, finding 5): a JWT `secret_file` and the
`--tls-key` are refused at start (exit 2, one clear line, never the content) when readable or
writable by others or writable by their group; a symlink is followed (Kubernetes secret mounts),
and 0440 / 0400 (Kubernetes `defaultMode`) are accepted."""
import json
import os
import subprocess

import pytest
import requests

import conftest
from conftest import expect, free_port, run_serve_expecting_exit, uniq
from test_keys_v2 import Idp

TOO_OPEN = [0o644, 0o604, 0o620, 0o602, 0o666]


@pytest.fixture
def idp(tmp_path):
    return Idp(tmp_path)


@pytest.fixture
def tls_files(tmp_path):
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    key.chmod(0o600)
    conftest.register_root_key(str(key))       # a private key: must never reach a log
    return str(crt), str(key)


def one_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one clear stderr line, got {lines!r}"
    return lines[0]


def jwt_config(idp, path, secret_file):
    path.write_text(json.dumps({
        "issuer": "https://idp.test", "audience": "difyguard",
        "roles": {"dify-api": ["encrypt", "decrypt"]},
        "keys": [{"kid": "hs1", "alg": "HS256", "secret_file": str(secret_file)}]}))
    return str(path)


@pytest.mark.parametrize("mode", TOO_OPEN)
def test_exposed_jwt_secret_file_refused(new_datadir, idp, tmp_path, mode):
    secret = idp.dir / "hs1.secret"
    secret.chmod(mode)
    dd = new_datadir()
    rc, err, out = run_serve_expecting_exit(
        dd.path, f"127.0.0.1:{free_port()}",
        extra=["--jwt-config", jwt_config(idp, tmp_path / "jwt.json", secret)])
    assert rc == 2, f"mode {oct(mode)}: exit {rc}; stderr {err!r}"
    line = one_line(err)
    assert "secret_file" in line and str(secret) in line and "too open" in line, line
    assert idp.hs_secret.decode() not in err + out


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640, 0o440])
def test_jwt_secret_file_modes_accepted_and_symlink_followed(start_server, idp, tmp_path, mode):
    secret = idp.dir / "hs1.secret"
    secret.chmod(mode)
    link = tmp_path / "mounted-secret"          # a Kubernetes mount is a symlink chain
    os.symlink(secret, link)
    srv = start_server(args=["--jwt-config", jwt_config(idp, tmp_path / "jwt.json", link)])
    kr = srv.create_keyring()
    expect(srv.client(idp.token()).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)


def test_symlink_to_exposed_jwt_secret_refused(new_datadir, idp, tmp_path):
    secret = idp.dir / "hs1.secret"
    secret.chmod(0o644)
    link = tmp_path / "mounted-secret"
    os.symlink(secret, link)
    rc, err, _ = run_serve_expecting_exit(
        new_datadir().path, f"127.0.0.1:{free_port()}",
        extra=["--jwt-config", jwt_config(idp, tmp_path / "jwt.json", link)])
    assert rc == 2 and "too open" in one_line(err), (rc, err)


@pytest.mark.parametrize("mode", TOO_OPEN)
def test_exposed_tls_key_refused(new_datadir, tls_files, mode):
    crt, key = tls_files
    os.chmod(key, mode)
    rc, err, out = run_serve_expecting_exit(new_datadir().path, f"127.0.0.1:{free_port()}",
                                            extra=["--tls-cert", crt, "--tls-key", key])
    assert rc == 2, f"mode {oct(mode)}: exit {rc}; stderr {err!r}"
    line = one_line(err)
    assert "--tls-key" in line and key in line and "too open" in line, line
    with open(key) as f:
        pem = f.read()
    body = "".join(pem.strip().splitlines()[1:-1])
    assert body[:40] not in err + out


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_tls_key_through_symlink_0440(start_server, tls_files, tmp_path):
    crt, key = tls_files
    os.chmod(key, 0o440)
    link = tmp_path / "tls-key-link"
    os.symlink(key, link)
    srv = start_server(args=["--tls-cert", crt, "--tls-key", str(link)], wait=False)
    api = conftest.Api(f"https://localhost:{srv.port}", srv.admin_key)
    api.session.verify = False              # what is checked here is that the key loads
    api.session.trust_env = False           # REQUESTS_CA_BUNDLE would override verify

    def up():
        assert srv.proc.poll() is None, srv.stderr()
        try:
            return api.get("/healthz", check=False).status_code == 200
        except requests.exceptions.ConnectionError:     # not listening yet
            return False
    conftest.poll_until(up, what="TLS listener with a 0440 key behind a symlink")
    name = uniq("tls")
    expect(api.post("/v1/keyrings", {"name": name}), 201)
