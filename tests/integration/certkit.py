# SPDX-License-Identifier: Apache-2.0
"""Certificates made by the tests (python3-cryptography over OpenSSL): a CA with intermediates,
leaves of any validity, key and digest, client certificates for mutual TLS, PEM files, and a
small TLS server the tests start to be probed. Private keys written here are registered with the
log scan: none may ever reach a log."""
import datetime
import os
import socket
import ssl
import threading
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import conftest

DAY = datetime.timedelta(days=1)


def now():
    return datetime.datetime.utcnow().replace(microsecond=0)


def key(kind="ec", bits=2048):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return ec.generate_private_key(ec.SECP256R1() if kind == "ec" else ec.SECP384R1())


class Cert:
    """A certificate and its key."""

    def __init__(self, cert, k):
        self.cert = cert
        self.key = k

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self):
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    @property
    def serial(self):
        """Uppercase hex in whole bytes, as OpenSSL prints it (a leading 0 when needed)."""
        s = format(self.cert.serial_number, "X")
        return "0" * (len(s) % 2) + s

    @property
    def fingerprint(self):
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self):
        return self.cert.subject.rfc4514_string()


def make(cn, issuer=None, *, days=90, start=-1, k=None, ca=False, sans=("default",),
         digest="sha256", client=False, server=True):
    """A certificate for cn valid from now+start days for `days` days, issued by issuer (a
    Cert) or self-signed. sans: DNS names (default [cn]); () for none."""
    k = k or key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer.cert.subject if issuer else name)
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now() + start * DAY).not_valid_after(now() + (start + days) * DAY)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()),
                        critical=False))
    if issuer is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                          False), critical=True)
    else:
        names = [cn] if sans == ("default",) else list(sans)
        if names:
            alt = [x509.IPAddress(__import__("ipaddress").ip_address(n)) if n[0].isdigit()
                   else x509.DNSName(n) for n in names]
            b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        uses = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        b = b.add_extension(x509.ExtendedKeyUsage(uses), critical=False)
    h = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1(), "sha384": hashes.SHA384()}[digest]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # SHA-1 on purpose
        c = b.sign((issuer or Cert(None, k)).key, h)
    return Cert(c, k)


class Pki:
    """A root CA and an intermediate issuing leaves."""

    def __init__(self, name="Test"):
        self.root = make(f"{name} Root CA", ca=True, days=3650, start=-30)
        self.inter = make(f"{name} Intermediate CA", issuer=self.root, ca=True, days=1000,
                          start=-20)

    def leaf(self, cn, **kw):
        return make(cn, issuer=self.inter, **kw)

    def chain_pem(self, leaf):
        return leaf.pem + self.inter.pem


def write(path, text, mode=0o644):
    data = text.encode() if isinstance(text, str) else text
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return str(path)


def write_key(path, cert):
    """A private key file (0600), registered as a secret for the log scan."""
    write(path, cert.key_pem, 0o600)
    conftest.SECRETS.add(cert.key_pem.strip(), f"private key {path}")
    return str(path)


class TlsEndpoint:
    """A local TLS server the tests probe: answers every handshake with the current certificate
    (swap with .serve(cert)); each connection is closed after the handshake."""

    def __init__(self, tmp, cert):
        self.tmp = str(tmp)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self._stop = False
        self.serve(cert)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def serve(self, cert, chain=""):
        crt = write(os.path.join(self.tmp, f"ep-{cert.serial}.crt"), cert.pem + chain)
        k = write_key(os.path.join(self.tmp, f"ep-{cert.serial}.key"), cert)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, k)
        self.ctx = ctx

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as s:
                    self.handshakes += 1
                    s.unwrap()
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self._stop = True
        self.sock.close()


class TlsServer:
    """`difyguard serve` on TLS: the CA of its certificate (ca) verifies it; client_cert is a
    (cert, key) file pair for mutual TLS. Stopped with SIGTERM (exit 0) by stop()."""

    def __init__(self, datadir, tls_args, ca, client_cert=None, extra=()):
        import subprocess
        import time

        import requests

        self.datadir, self.ca, self.client_cert = datadir, str(ca), client_cert
        self.port = conftest.free_port()
        self.stdout_path = conftest._CTX.log_path(f"serve-tls-{self.port}.stdout")
        self.stderr_path = conftest._CTX.log_path(f"serve-tls-{self.port}.stderr")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                conftest._with_database([conftest.BIN, "serve", "--data-dir", datadir.path,
                                         "--listen", f"127.0.0.1:{self.port}"]
                                        + list(tls_args) + list(extra)),
                stdout=out, stderr=err, env=conftest.child_env(), stdin=subprocess.DEVNULL)
        conftest._LIVE_SERVERS.append(self)
        end = time.monotonic() + conftest.READY_DEADLINE
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.stderr()}")
            try:
                if self.api().get("/healthz", timeout=2).status_code == 200:
                    return
            except requests.exceptions.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"TLS server never answered: {self.stderr()}")

    @property
    def url(self):
        return f"https://localhost:{self.port}"

    def api(self, token=None, cert=True):
        a = conftest.Api(self.url, token)
        a.session.verify = self.ca
        a.session.trust_env = False          # REQUESTS_CA_BUNDLE would override verify
        if cert and self.client_cert is not None:
            a.session.cert = self.client_cert
        return a

    @property
    def admin(self):
        return self.api(self.datadir.admin_key)

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stdout(self):
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        import signal
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=conftest.STOP_DEADLINE)
        if self in conftest._LIVE_SERVERS:
            conftest._LIVE_SERVERS.remove(self)
        assert self.proc.returncode == 0, self.stderr()


def peer_cert(port, ca=None, cert=None, version=None, ciphers=None, host="localhost"):
    """A new TLS connection's server certificate (a cryptography Certificate); raises
    ssl.SSLError / OSError when the handshake fails."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(str(ca))
    if cert is not None:
        ctx.load_cert_chain(*cert)
    if version is not None:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=host) as t:
            der = t.getpeercert(binary_form=True)
            # TLS 1.3 sends a refusal of the client's certificate after the client's side of the
            # handshake: a request shows it.
            t.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            if not t.recv(64).startswith(b"HTTP/1.1 200"):
                raise ConnectionError("no answer")
            return x509.load_der_x509_certificate(der)


def serial_of(c):
    s = format(c.serial_number, "X")
    return "0" * (len(s) % 2) + s
