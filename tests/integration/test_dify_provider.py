# SPDX-License-Identifier: Apache-2.0
"""The Dify key provider (integrations/dify/difyguard_key_provider.py) against the real server,
inside a stand-in of Dify's BaseKeyProvider (tests/integration/dify_stub, written here): round
trips through Dify's interface, tenant binding, what Dify stores is smaller than what its local
RSA provider stores, every failure a ValueError without the value or the API key in it, one
kept-alive connection shared by threads, batches split at the server's limit, the timeout, and
TLS verification."""
import base64
import http.client
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import conftest
from conftest import SECRETS, uniq

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("DG_SOURCE_DIR", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "dify_stub"))
sys.path.insert(0, os.path.join(SRC, "integrations", "dify"))

import difyguard_key_provider as dkp  # noqa: E402
from libs.key_providers.base import BaseKeyProvider  # noqa: E402

TENANT_A = "8e7c4f52-1c3a-4a1b-9d7e-2f0c5b6a7d01"
TENANT_B = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f40506"
TEXTS = ["sk-provider-key-0123456789abcdef", "", "pässwörd ✓ with spaces",
         '{"api_key": "json-secret-xyz", "n": 1}', "x" * 10000]


@pytest.fixture(scope="module")
def dify(server):
    kr = server.create_keyring("dify")
    api, _ = server.issue_key(["encrypt", "decrypt"], keyrings=[kr])
    return api.token


def provider(monkeypatch, server, token, **env):
    base = {"DIFYGUARD_ADDR": server.url, "DIFYGUARD_TOKEN": token}
    base.update(env)
    for k in ("DIFYGUARD_ADDR", "DIFYGUARD_TOKEN", "DIFYGUARD_KEYRING", "DIFYGUARD_CACERT",
              "DIFYGUARD_TIMEOUT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in base.items():
        if v is not None:
            monkeypatch.setenv(k, v)
    return dkp.DifyguardKeyProvider()


def register(text):
    SECRETS.add_text(text, "dify value")


def value_error(fn, *secrets):
    """fn() raises ValueError whose message and chain hold none of the secrets."""
    with pytest.raises(ValueError) as ei:
        fn()
    msg = str(ei.value)
    for s in secrets:
        if s:
            assert s not in msg, msg
    assert ei.value.__cause__ is None
    return msg


def test_is_a_dify_key_provider_and_round_trips(monkeypatch, server, dify):
    p = provider(monkeypatch, server, dify)
    assert isinstance(p, BaseKeyProvider)
    assert p.generate_key_pair(TENANT_A) == "difyguard:dify"
    for t in TEXTS:
        register(t)
        blob = p.encrypt(TENANT_A, t)
        assert isinstance(blob, bytes)
        # the raw blob, not base64 text: format byte, version, plaintext + 53 bytes
        assert blob[0] == 1 and int.from_bytes(blob[1:5], "big") == 1
        assert len(blob) == len(t.encode()) + 53
        stored = base64.b64encode(blob).decode()        # what Dify's encrypter keeps
        assert p.decrypt(TENANT_A, base64.b64decode(stored)) == t
        dec = p.get_decrypt_decoding(TENANT_A)
        assert p.decrypt_with_decoding(blob, dec) == t
        assert p.decrypt_with_decoding(bytearray(blob), dec) == t


def test_tenant_binding(monkeypatch, server, dify):
    p = provider(monkeypatch, server, dify)
    t = "tenant-bound-secret-4242"
    register(t)
    blob = p.encrypt(TENANT_A, t)
    msg = value_error(lambda: p.decrypt(TENANT_B, blob), t, dify)
    assert "decryption_failed" in msg
    assert p.decrypt(TENANT_A, blob) == t
    # Dify's StringUUID may hand over a uuid.UUID: the same tenant
    import uuid
    assert p.decrypt(uuid.UUID(TENANT_A), blob) == t


def test_stored_size_below_the_rsa_provider(monkeypatch, server, dify):
    import dify_rsa
    key = dify_rsa.new_key()
    p = provider(monkeypatch, server, dify)
    for t in ["k", "sk-" + "a" * 48, "y" * 1000]:
        register(t) if len(t) >= 8 else None
        ours = len(base64.b64encode(p.encrypt(TENANT_A, t)))
        theirs = len(base64.b64encode(dify_rsa.hybrid_encrypt(key.publickey(), t)))
        assert ours < theirs, (t[:8], ours, theirs)


def test_every_failure_is_a_value_error(monkeypatch, server, dify):
    p = provider(monkeypatch, server, dify)
    t = "failure-secret-value-77"
    register(t)
    blob = p.encrypt(TENANT_A, t)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    value_error(lambda: p.decrypt(TENANT_A, tampered), t, dify)
    value_error(lambda: p.decrypt(TENANT_A, b""), dify)
    value_error(lambda: p.decrypt(TENANT_A, blob[:10]), dify)
    value_error(lambda: p.decrypt(TENANT_A, b"HYBRID:" + os.urandom(300)), dify)
    value_error(lambda: p.decrypt(TENANT_A, b"\x01\x00\x00\x00\x00" + os.urandom(60)), dify)
    value_error(lambda: p.decrypt(TENANT_A, b"\x01\x00\x00\x00\x09" + blob[5:]), t, dify)
    value_error(lambda: p.decrypt(TENANT_A, "not bytes"), dify)
    value_error(lambda: p.decrypt("", blob), dify)
    value_error(lambda: p.encrypt(TENANT_A, None), dify)
    value_error(lambda: p.encrypt(TENANT_A, "lone \ud800 surrogate"), dify)
    # a wrong key: 401, the key not in the message
    bad = dify[:-6] + ("AAAAAA" if not dify.endswith("AAAAAA") else "BBBBBB")
    q = provider(monkeypatch, server, bad)
    assert "401" in value_error(lambda: q.encrypt(TENANT_A, t), t, dify, bad)
    # another keyring the key is not allowed on: 403
    other = server.create_keyring(uniq("other"))
    q = provider(monkeypatch, server, dify, DIFYGUARD_KEYRING=other)
    assert "403" in value_error(lambda: q.encrypt(TENANT_A, t), t, dify)
    # nobody listening
    port = conftest.free_port()
    q = provider(monkeypatch, server, dify, DIFYGUARD_ADDR=f"http://127.0.0.1:{port}")
    value_error(lambda: q.encrypt(TENANT_A, t), t, dify)
    value_error(lambda: q.decrypt(TENANT_A, blob), t, dify)
    # bad settings fail at construction, as ValueError
    for env in [{"DIFYGUARD_TOKEN": None}, {"DIFYGUARD_ADDR": "ftp://x"},
                {"DIFYGUARD_ADDR": f"http://user:{dify}@h"}, {"DIFYGUARD_KEYRING": "Bad/Name"},
                {"DIFYGUARD_TIMEOUT": "0"}, {"DIFYGUARD_TIMEOUT": "nan"}]:
        value_error(lambda: provider(monkeypatch, server, dify, **env), dify)


def test_timeout(monkeypatch, server, dify):
    """A server that accepts and never answers: ValueError once DIFYGUARD_TIMEOUT passes."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass
    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        q = provider(monkeypatch, server, dify,
                     DIFYGUARD_ADDR=f"http://127.0.0.1:{lsock.getsockname()[1]}",
                     DIFYGUARD_TIMEOUT="0.5")
        assert "timed out" in value_error(lambda: q.encrypt(TENANT_A, "timeout-secret-1"), dify)
    finally:
        stop.set()
        th.join()
        for s in held:
            s.close()
        lsock.close()


def test_one_kept_alive_connection_across_threads(monkeypatch, server, dify):
    connects = []
    orig = http.client.HTTPConnection.connect

    def counting(self):
        connects.append(1)
        return orig(self)
    monkeypatch.setattr(http.client.HTTPConnection, "connect", counting)
    p = provider(monkeypatch, server, dify)
    errors = []

    def worker(n):
        try:
            for i in range(25):
                t = f"thread-{n}-secret-{i:04d}"
                tenant = TENANT_A if i % 2 else TENANT_B
                assert p.decrypt(tenant, p.encrypt(tenant, t)) == t
        except Exception as e:          # noqa: BLE001 -- reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(connects) == 1, f"{len(connects)} connections for 400 calls"


def test_reconnects_after_the_server_restarts(monkeypatch, start_server):
    srv = start_server()
    kr = srv.create_keyring("dify")
    api, _ = srv.issue_key(["encrypt", "decrypt"], keyrings=[kr])
    p = provider(monkeypatch, srv, api.token)
    blob = p.encrypt(TENANT_A, "restart-secret-value")
    register("restart-secret-value")
    port = srv.port
    srv.stop()
    value_error(lambda: p.decrypt(TENANT_A, blob), api.token)
    monkeypatch.setattr(conftest, "free_port", lambda: port)
    srv.start()
    assert p.decrypt(TENANT_A, blob) == "restart-secret-value"


def test_batches_keep_order_and_split(monkeypatch, server, dify):
    p = provider(monkeypatch, server, dify)
    texts = [f"batch-secret-{i:05d}" for i in range(2300)]       # above 1000: three calls
    for t in texts[:20]:
        register(t)
    blobs = p.batch_encrypt(TENANT_A, texts)
    assert len(blobs) == len(texts)
    assert p.batch_decrypt(TENANT_A, blobs) == texts
    assert p.decrypt(TENANT_A, blobs[1234]) == texts[1234]
    bad = list(blobs[:5])
    bad[3] = bad[3][:-1] + bytes([bad[3][-1] ^ 1])
    assert "item 3" in value_error(lambda: p.batch_decrypt(TENANT_A, bad), dify, *texts[:5])
    value_error(lambda: p.batch_decrypt(TENANT_B, blobs[:2]), dify, *texts[:2])


def test_tls_verified(monkeypatch, start_server, tmp_path):
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    key.chmod(0o600)
    conftest.register_root_key(str(key))
    srv = start_server(args=["--tls-cert", str(crt), "--tls-key", str(key)], wait=False)
    addr = f"https://localhost:{srv.port}"

    p = provider(monkeypatch, srv, srv.admin_key, DIFYGUARD_ADDR=addr, DIFYGUARD_CACERT=str(crt))

    def up():
        try:
            return p._post("/v1/keyrings", {"name": "dify"})
        except ValueError as e:
            return None if "transport" in str(e) or "closed" in str(e) else pytest.fail(str(e))
    conftest.poll_until(up, what="https listener")
    register("tls-secret-value-1")
    assert p.decrypt(TENANT_A, p.encrypt(TENANT_A, "tls-secret-value-1")) == "tls-secret-value-1"
    # without the CA (system store only): refused as ValueError
    q = provider(monkeypatch, srv, srv.admin_key, DIFYGUARD_ADDR=addr)
    assert "TLS" in value_error(lambda: q.encrypt(TENANT_A, "tls-secret-value-1"),
                                srv.admin_key)
    srv.stop()
