# SPDX-License-Identifier: Apache-2.0
"""difyguard's own TLS (issue 9): the certificate of a Kubernetes-style secret mount replaced by
an atomic symlink swap while a client holds a keep-alive connection (the old connection keeps
working, new ones get the new serial), broken new pairs refused while the old one serves on
(logged, counted, shown in the inventory), SIGHUP reloading the TLS files and the JWT
configuration, the TLS versions and ciphers, and settings refused at start."""
import http.client
import json
import os
import signal
import ssl
import subprocess
import time

import pytest

import certkit
import conftest
from conftest import expect, poll_until, run_serve_expecting_exit
from test_keys_v2 import Idp


class SecretMount:
    """A directory as the kubelet mounts a secret: tls.crt and tls.key are links through
    ..data, which an atomic rename points at a new directory for each version."""

    def __init__(self, root, chain=""):
        self.root = str(root)
        self.chain = chain
        self.n = 0
        os.makedirs(self.root, exist_ok=True)

    def publish(self, cert, key=None, chain=None):
        """cert with its chain (default: the intermediate of the test PKI) and key."""
        chain = self.chain if chain is None else chain
        self.n += 1
        d = os.path.join(self.root, f"..v{self.n}")
        os.makedirs(d)
        certkit.write(os.path.join(d, "tls.crt"), cert.pem + chain)
        certkit.write_key(os.path.join(d, "tls.key"), key or cert)
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(f"..v{self.n}", tmp)
        os.replace(tmp, os.path.join(self.root, "..data"))     # the atomic swap
        for f in ("tls.crt", "tls.key"):
            if not os.path.islink(os.path.join(self.root, f)):
                os.symlink(f"..data/{f}", os.path.join(self.root, f))

    @property
    def args(self):
        return ["--tls-cert", os.path.join(self.root, "tls.crt"),
                "--tls-key", os.path.join(self.root, "tls.key")]


@pytest.fixture
def pki():
    return certkit.Pki()


@pytest.fixture
def mount(tmp_path, pki):
    m = SecretMount(tmp_path / "secret", chain=pki.inter.pem)
    m.ca = certkit.write(tmp_path / "ca.pem", pki.root.pem)
    return m


def new_serial(srv):
    return certkit.serial_of(certkit.peer_cert(srv.port, ca=srv.ca))


def metric(srv, name):
    for line in srv.api().get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


def served_chain(pki, cn="localhost", **kw):
    return pki.leaf(cn, sans=("localhost", "127.0.0.1"), **kw)


def test_symlink_swap_under_a_held_keep_alive_connection(new_datadir, pki, mount):
    a, b = served_chain(pki), served_chain(pki)
    mount.publish(a)
    srv = certkit.TlsServer(new_datadir(), mount.args + ["--tls-reload-interval", "1s"], mount.ca)
    ctx = ssl.create_default_context(cafile=mount.ca)
    held = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=30)
    held.request("GET", "/healthz")
    assert held.getresponse().read() == b'{"status":"ok"}'
    sock = held.sock
    assert certkit.serial_of(certkit.x509.load_der_x509_certificate(
        sock.getpeercert(binary_form=True))) == a.serial
    assert new_serial(srv) == a.serial

    mount.publish(b)
    poll_until(lambda: new_serial(srv) == b.serial, what="the new certificate on a new connection")
    # the held connection was never broken: the same socket answers, still under the old pair
    held.request("GET", "/healthz")
    assert held.getresponse().read() == b'{"status":"ok"}'
    assert held.sock is sock
    assert certkit.serial_of(certkit.x509.load_der_x509_certificate(
        sock.getpeercert(binary_form=True))) == a.serial
    held.close()
    assert metric(srv, "difyguard_tls_reloads_total") == 1
    # the inventory shows the listener's new certificate and its rotation
    src = poll_until(lambda: (lambda s: s if s["rotations"] == 1 else None)(
        expect(srv.admin.get("/v1/certificates/listener-api"), 200)), what="the rotation")
    leaf = [c for c in src["certificates"] if c["leaf"]][0]
    assert leaf["serial"] == b.serial and src["error"] is None and src["origin"] == "listener"
    assert '"msg":"tls_reloaded"' in srv.stdout()
    srv.stop()


def test_broken_new_pairs_are_refused_and_the_old_one_serves(new_datadir, pki, mount, tmp_path):
    a, b, c = served_chain(pki), served_chain(pki), served_chain(pki)
    mount.publish(a)
    srv = certkit.TlsServer(new_datadir(), mount.args + ["--tls-reload-interval", "1s"], mount.ca)
    cases = [
        (dict(cert=b, key=c), "does not match"),                          # key mismatch
        (dict(cert=served_chain(pki, start=-60, days=30)), "expired at"),  # expired
        (dict(cert=served_chain(pki, start=3, days=30)), "not valid before"),
    ]
    for n, (pair, why) in enumerate(cases, start=1):
        mount.publish(**pair)

        def refused():
            src = expect(srv.admin.get("/v1/certificates/listener-api"), 200)
            return src if src["error"] and why in src["error"] else None
        src = poll_until(refused, what=f"the refusal ({why})")
        assert src["status"] == "error"
        assert [c for c in src["certificates"] if c["leaf"]][0]["serial"] == a.serial
        assert new_serial(srv) == a.serial                 # the old pair serves on
        assert metric(srv, "difyguard_tls_reload_refusals_total") == n
    # an unreadable file too: the link points nowhere
    os.remove(os.path.join(mount.root, f"..v{mount.n}", "tls.crt"))
    poll_until(lambda: metric(srv, "difyguard_tls_reload_refusals_total") == 4,
               what="the refusal of a missing file")
    assert new_serial(srv) == a.serial
    assert srv.stdout().count('"msg":"tls_reload_refused"') == 4    # once per change
    # a good pair ends it
    mount.publish(b)
    poll_until(lambda: new_serial(srv) == b.serial, what="the good pair")
    poll_until(lambda: expect(srv.admin.get("/v1/certificates/listener-api"),
                              200)["error"] is None, what="the error cleared")
    srv.stop()


def test_sighup_reloads_tls_and_jwt_at_once(new_datadir, pki, mount, tmp_path):
    idp = Idp(tmp_path)
    a, b = served_chain(pki), served_chain(pki)
    mount.publish(a)
    srv = certkit.TlsServer(new_datadir(), mount.args + ["--tls-reload-interval", "1h",
                                                         "--jwt-config", str(idp.config)],
                            mount.ca)
    new_secret = b"n" * 16 + os.urandom(16).hex().encode()
    conftest.SECRETS.add(new_secret, "JWT HS256 secret (rotated)")
    token = idp.token(hs_key=new_secret)
    kr = srv.admin.post("/v1/keyrings", {"name": conftest.uniq("hup")}).json()["name"]
    jwt_api = srv.api(token)
    expect(jwt_api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 401, "unauthenticated")
    mount.publish(b)
    (tmp_path / "hs1.secret").write_bytes(new_secret)
    srv.proc.send_signal(signal.SIGHUP)
    poll_until(lambda: new_serial(srv) == b.serial, what="the pair after SIGHUP")
    poll_until(lambda: jwt_api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"},
                                    check=False).status_code == 200,
               what="the new JWT key after SIGHUP")
    assert srv.running()
    assert '"msg":"sighup_reload","tls":"reloaded","jwt":"reloaded"' in srv.stdout()
    # a bad JWT configuration on SIGHUP is refused; the one in use stays
    idp.config.write_text("{not json")
    srv.proc.send_signal(signal.SIGHUP)
    poll_until(lambda: '"jwt":"refused"' in srv.stdout(), what="the refused JWT config")
    expect(jwt_api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    srv.stop()


def test_tls_versions_and_ciphers(new_datadir, pki, mount):
    mount.publish(served_chain(pki))
    srv = certkit.TlsServer(new_datadir(), mount.args, mount.ca)
    certkit.peer_cert(srv.port, ca=mount.ca, version=ssl.TLSVersion.TLSv1_2)
    certkit.peer_cert(srv.port, ca=mount.ca, version=ssl.TLSVersion.TLSv1_3)
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises((ssl.SSLError, OSError)):
            certkit.peer_cert(srv.port, ca=mount.ca, version=old)
    # a TLS 1.3 client offering an X25519 key share (OpenSSL's default) is answered at once,
    # not asked for another share (a HelloRetryRequest is a second ServerHello)
    trace = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}",
                            "-tls1_3", "-trace", "-CAfile", mount.ca], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30).stdout
    assert trace.count("ServerHello") == 1 and "ecdh_x25519" in trace, trace[-2000:]
    # TLS 1.2 with a CBC (non-AEAD) suite only: refused
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(mount.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA")
    with pytest.raises((ssl.SSLError, OSError)):
        with ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", srv.port)),
                             server_hostname="localhost"):
            pass
    srv.stop()
    srv13 = certkit.TlsServer(new_datadir(), mount.args + ["--tls-min-version", "1.3",
                                                           "--tls-ciphers", "AES-256-GCM"],
                              mount.ca)
    certkit.peer_cert(srv13.port, ca=mount.ca, version=ssl.TLSVersion.TLSv1_3)
    with pytest.raises((ssl.SSLError, OSError)):
        certkit.peer_cert(srv13.port, ca=mount.ca, version=ssl.TLSVersion.TLSv1_2)
    srv13.stop()


@pytest.mark.parametrize("extra,why", [
    (["--tls-min-version", "1.1"], "--tls-min-version must be 1.2 or 1.3"),
    (["--tls-ciphers", "AES-128-CBC-NOPE"], "--tls-ciphers"),
    (["--tls-ciphers", "AES-128-GCM;rm"], "--tls-ciphers"),
    (["--cert-critical", "40d"], "--cert-critical must not exceed --cert-warning"),
])
def test_bad_tls_settings_are_usage_errors(new_datadir, pki, mount, extra, why):
    mount.publish(served_chain(pki))
    rc, err, _ = run_serve_expecting_exit(new_datadir().path, f"127.0.0.1:{conftest.free_port()}",
                                          mount.args + extra)
    assert rc == 2 and why in err, err


def test_bad_pair_at_start_is_refused(new_datadir, pki, mount):
    a, b = served_chain(pki), served_chain(pki)
    mount.publish(a, key=b)
    rc, err, _ = run_serve_expecting_exit(new_datadir().path, f"127.0.0.1:{conftest.free_port()}",
                                          mount.args)
    assert rc == 2 and "--tls-key does not match the certificate" in err, err
    mount.publish(served_chain(pki, start=-60, days=30))
    rc, err, _ = run_serve_expecting_exit(new_datadir().path, f"127.0.0.1:{conftest.free_port()}",
                                          mount.args)
    assert rc == 2 and "expired at" in err, err
    rc, err, _ = run_serve_expecting_exit(new_datadir().path, f"127.0.0.1:{conftest.free_port()}",
                                          ["--tls-client-ca", mount.ca])
    assert rc == 2 and "--tls-client-ca needs --tls-cert" in err, err


def test_metrics_listener_over_tls_follows_the_api_certificate(new_datadir, pki, mount):
    """--metrics-tls serves --metrics-listen with the API's pair: Prometheus scrapes it over
    TLS, plain HTTP there gets no answer, and a rotated pair reaches it too (one TLS identity,
    one reload)."""
    import requests
    a, b = served_chain(pki), served_chain(pki)
    mount.publish(a)
    mport = conftest.free_port()
    srv = certkit.TlsServer(new_datadir(), mount.args + [
        "--tls-reload-interval", "1s", "--metrics-listen", f"127.0.0.1:{mport}",
        "--metrics-tls"], mount.ca)
    s = requests.Session()
    s.trust_env = False
    r = s.get(f"https://localhost:{mport}/metrics", verify=mount.ca, timeout=10)
    assert r.status_code == 200 and "difyguard_build_info" in r.text
    assert s.get(f"https://localhost:{mport}/v1/keyrings", verify=mount.ca,
                 timeout=10).status_code == 404          # still only the public routes
    with pytest.raises(requests.exceptions.RequestException):
        s.get(f"http://127.0.0.1:{mport}/metrics", timeout=5)
    assert certkit.serial_of(certkit.peer_cert(mport, ca=mount.ca)) == a.serial
    mount.publish(b)
    poll_until(lambda: certkit.serial_of(certkit.peer_cert(mport, ca=mount.ca)) == b.serial,
               what="the new certificate on the metrics listener")
    srv.stop()


def test_metrics_tls_needs_a_metrics_listener_and_a_pair(new_datadir, mount, pki):
    mount.publish(served_chain(pki))
    code, err, _ = run_serve_expecting_exit(new_datadir().path, f"127.0.0.1:{conftest.free_port()}",
                                            extra=mount.args + ["--metrics-tls"])
    assert code == 2 and "--metrics-tls needs --metrics-listen" in err, err
    code, err, _ = run_serve_expecting_exit(new_datadir().path, f"127.0.0.1:{conftest.free_port()}",
                                            extra=["--metrics-listen",
                                                f"127.0.0.1:{conftest.free_port()}",
                                                "--metrics-tls"])
    assert code == 2 and "--tls-cert/--tls-key" in err, err
