# SPDX-License-Identifier: Apache-2.0
"""Encryption bounds per key version (rotation at 90%, refusal at 100%, durable counts) and the
TLS listener (served from PEM files, plain HTTP refused on it)."""
import subprocess
import time

import pytest
import requests

import conftest
from conftest import BIN, Api, child_env, expect, free_port, new_text, uniq


def poll(fn, deadline=20.0, every=0.1):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(every)
    return fn()


def test_rotation_at_ninety_percent_and_refusal_at_the_bound(start_server):
    srv = start_server(args=["--kek-max-encryptions", "20", "--reserve-block", "3"])
    name = uniq("bound")
    expect(srv.admin.post("/v1/keyrings", {"name": name}), 201)
    text = new_text()
    cts = [srv.admin.encrypt(name, text=text)["ciphertext"] for _ in range(18)]
    assert all(ct.startswith("dg:v1:") for ct in cts)

    # the 18th encryption crossed 90% of 20: the maintenance thread rotates soon after
    def rotated():
        kr = expect(srv.admin.get(f"/v1/keyrings/{name}"), 200)
        return kr if kr["latest_version"] == 2 else None
    kr = poll(rotated)
    assert kr is not None, "no automatic rotation after 90% of the bound"
    assert kr["versions"][0]["encryptions"] == 18
    assert kr["versions"][0]["encryption_limit"] == 20
    assert srv.admin.encrypt(name, text=text)["key_version"] == 2

    # version 1 can still be chosen explicitly until its bound, then it is refused
    for _ in range(2):
        assert srv.admin.encrypt(name, text=text, key_version=1)["key_version"] == 1
    expect(srv.admin.post(f"/v1/keyrings/{name}/encrypt", {"text": text, "key_version": 1}),
           422, "key_version_disabled")
    # everything made under version 1 still decrypts
    assert srv.admin.decrypt(name, cts[0])["text"] == text


def test_encryption_counts_survive_a_restart(start_server):
    srv = start_server(args=["--reserve-block", "4"])
    name = uniq("count")
    expect(srv.admin.post("/v1/keyrings", {"name": name}), 201)
    for _ in range(10):
        srv.admin.encrypt(name, text=new_text())
    srv.stop()
    srv.start()
    kr = expect(srv.admin.get(f"/v1/keyrings/{name}"), 200)
    # reserved in blocks of 4 before use: never fewer than were done, at most one block more
    assert 10 <= kr["versions"][0]["encryptions"] <= 14, kr["versions"][0]


def test_next_rotation_follows_the_period(server):
    name = uniq("period")
    kr = expect(server.admin.post("/v1/keyrings", {"name": name, "rotation_period": "2h"}), 201)
    assert kr["rotation_period"] == 7200
    created = time.strptime(kr["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    nxt = time.strptime(kr["next_rotation_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert time.mktime(nxt) - time.mktime(created) == 7200
    expect(server.admin.post("/v1/keyrings", {"name": uniq("p"), "rotation_period": "59m"}),
           400, "invalid_request")
    off = expect(server.admin.patch(f"/v1/keyrings/{name}", {"rotation_period": 0}), 200)
    assert off["next_rotation_at"] is None


@pytest.fixture
def tls_files(tmp_path):
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    key.chmod(0o600)
    conftest.register_root_key(str(key))       # a private key: must never reach a log
    return str(crt), str(key)


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_tls_listener(new_datadir, tls_files, host):
    crt, key = tls_files
    dd = new_datadir()
    port = free_port()
    err_path = conftest._CTX.log_path(f"serve-tls-{port}.stderr")
    out = open(conftest._CTX.log_path(f"serve-tls-{port}.stdout"), "wb")
    err = open(err_path, "wb")
    proc = subprocess.Popen(conftest._with_database(
                                [BIN, "serve", "--data-dir", dd.path, "--listen", f"{host}:{port}",
                                 "--tls-cert", crt, "--tls-key", key]),
                            stdout=out, stderr=err, env=child_env(), stdin=subprocess.DEVNULL)
    out.close()
    err.close()
    try:
        api = Api(f"https://localhost:{port}", dd.admin_key)
        api.session.verify = crt
        api.session.trust_env = False     # REQUESTS_CA_BUNDLE would override verify

        def up():
            if proc.poll() is not None:
                pytest.fail(f"serve exited {proc.returncode}: {open(err_path).read()[:500]}")
            try:
                return api.get("/healthz").status_code == 200
            except requests.exceptions.ConnectionError as e:
                up.last = e
                return False
        assert poll(up), f"TLS listener never answered: {getattr(up, 'last', None)}"
        name = uniq("tls")
        expect(api.post("/v1/keyrings", {"name": name}), 201)
        text = new_text()
        ct = api.encrypt(name, text=text)["ciphertext"]
        assert api.decrypt(name, ct)["text"] == text
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
