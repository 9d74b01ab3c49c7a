# SPDX-License-Identifier: Apache-2.0
"""Mutual TLS (issue 9, --tls-client-ca): a client without a certificate, with one another CA
issued, with an expired one, or with one not meant for TLS clients is refused during the
handshake (TLS 1.2 and 1.3); a client the CA issued gets through, and the subject of its
certificate is in the audit event of each request."""
import json
import os
import ssl

import pytest

import certkit
from conftest import expect, uniq


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    import conftest
    conftest.require_binary()
    d = tmp_path_factory.mktemp("mtls")
    w = type("World", (), {})()
    w.pki, w.clients = certkit.Pki("Server"), certkit.Pki("Clients")
    leaf = w.pki.leaf("localhost", sans=("localhost", "127.0.0.1"))
    crt = certkit.write(d / "tls.crt", leaf.pem + w.pki.inter.pem)
    key = certkit.write_key(d / "tls.key", leaf)
    w.ca = certkit.write(d / "ca.pem", w.pki.root.pem)
    client_ca = certkit.write(d / "client-ca.pem", w.clients.root.pem)

    def client(name, pki=None, **kw):
        c = (pki or w.clients).leaf(name, client=True, server=False, **kw)
        chain = (pki or w.clients).inter.pem
        return (certkit.write(d / f"{name}.crt", c.pem + chain),
                certkit.write_key(d / f"{name}.key", c))
    w.good = client("dify-api")
    w.foreign = client("intruder", pki=certkit.Pki("Other"))
    w.expired = client("late", start=-60, days=30)
    w.server_only = (lambda c: (certkit.write(d / "srv.crt", c.pem + w.clients.inter.pem),
                                certkit.write_key(d / "srv.key", c)))(
        w.clients.leaf("not-a-client", client=False, server=True))
    w.srv = certkit.TlsServer(conftest.DataDir(d / "data"),
                              ["--tls-cert", crt, "--tls-key", key, "--tls-client-ca", client_ca],
                              w.ca, client_cert=w.good)
    yield w
    w.srv.stop()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_client_the_ca_issued_gets_through(world, version):
    c = certkit.peer_cert(world.srv.port, ca=world.ca, cert=world.good, version=version)
    assert c.subject.rfc4514_string() == "CN=localhost"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("who", ["none", "foreign", "expired", "server_only"])
def test_other_clients_are_refused_at_the_handshake(world, version, who):
    cert = None if who == "none" else getattr(world, who)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        certkit.peer_cert(world.srv.port, ca=world.ca, cert=cert, version=version)


def test_the_client_subject_is_in_the_audit_event(world):
    admin = world.srv.admin
    name = uniq("mtls")
    expect(admin.post("/v1/keyrings", {"name": name}), 201)
    text = admin.get("/v1/audit/export").text
    events = [json.loads(ln) for ln in text.splitlines() if '"type":"event"' in ln]
    created = [e for e in events if e["op"] == "keyring.create"]
    assert created and created[-1]["client_cert"] == "CN=dify-api", created
    assert all(e.get("client_cert") == "CN=dify-api" for e in events if e["method"] != "SYSTEM")
    assert expect(admin.get("/v1/audit/verify"), 200)["valid"] is True
    # refused at the handshake: never reaches the API, so never an event
    assert not any(e.get("client_cert", "").startswith("CN=intruder") for e in events)
    listed = expect(admin.get("/v1/audit/events", params={"op": "keyring.create"}), 200)
    assert any(e.get("client_cert") == "CN=dify-api" for e in listed["events"])
