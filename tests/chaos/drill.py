#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Chaos drill: run difyguard under encrypt load while injecting one fault at a time, then check
that nothing acknowledged was lost (every 200 the clients got has its event in the trail), that
the audit trail verifies (on the server and offline with `difyguard audit verify`), and that the
service answers again by itself (the fault's recovery time). Prints a table:
fault / acknowledged / found in the trail / recovery time / verdict.

  tests/chaos/drill.py [--seconds N] [--only FAULT,...]
Faults: kill9 (kill -9 mid-load, then a restart as a supervisor would), sigstop (the process
stopped for longer than the clients' timeout), disk_full (the data directory's filesystem filled:
a small tmpfs), clock (the wall clock stepped a day forward, then back behind the start, through
libfaketime), tls_rotate (the served certificate replaced under load the way the kubelet updates
a cert-manager secret mount: an atomic swap of its ..data link; recovery is the time until a new
connection gets the new certificate), db_restart (the service on a PostgreSQL server started by
the drill, scripts/pgtest.sh, which is stopped under load and started again: requests fail
closed with 503 meanwhile; recovery is the time from the restart to the next acknowledged
request). Exit status 1 when any fault loses an acknowledged request, breaks the trail or
does not recover; 2 when the drill itself cannot run."""
import argparse
import json
import os
import ssl
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

BIN = os.environ.get("DIFYGUARD_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "server", "difyguard")
CLIENT_TIMEOUT = 2.0
RECOVERY_DEADLINE = 30.0
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One `difyguard serve` on a data dir; restartable."""

    def __init__(self, data_dir, log_path, env=None, extra=()):
        self.data_dir = data_dir
        self.env = dict(os.environ, **(env or {}))
        self.extra = list(extra)
        self.port = free_port()
        self.proc = None
        self.log = open(log_path, "ab")
        self.verify = True           # a CA file when serving TLS
        self.scheme = "http"

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}",
             "--audit-checkpoint-interval", "1s"] + self.extra,
            stdout=self.log, stderr=self.log, env=self.env, stdin=subprocess.DEVNULL)
        return self.wait_ready()

    def wait_ready(self, deadline=RECOVERY_DEADLINE):
        t0 = time.monotonic()
        while time.monotonic() - t0 < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/readyz", timeout=1, verify=self.verify).status_code == 200:
                    return time.monotonic() - t0
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("serve did not become ready")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def api(node, token, method, path, body=None, timeout=10):
    return requests.request(method, node.url + path, json=body, timeout=timeout,
                            verify=node.verify, headers={"Authorization": f"Bearer {token}"})


class Load:
    """Clients encrypting in a loop with the load key; counts what was acknowledged (200)."""

    def __init__(self, node, token, keyring, threads=4):
        self.node, self.token, self.keyring = node, token, keyring
        self.acked = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.last_ok = 0.0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        s = requests.Session()   # verify per request: REQUESTS_CA_BUNDLE beats Session.verify
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                r = s.post(f"{self.node.url}/v1/keyrings/{self.keyring}/encrypt",
                           json={"text": f"chaos-{n}"}, timeout=CLIENT_TIMEOUT,
                           verify=self.node.verify,
                           headers={"Authorization": f"Bearer {self.token}"})
                ok = r.status_code == 200
            except requests.RequestException as e:
                if os.environ.get("DG_CHAOS_DEBUG"):
                    print("load:", e, file=sys.stderr)
                ok = False
                s = requests.Session()
                time.sleep(0.05)
            with self.lock:
                if ok:
                    self.acked += 1
                    self.last_ok = time.monotonic()
                else:
                    self.failed += 1

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=CLIENT_TIMEOUT + 5)

    def ok_after(self, t0, deadline=RECOVERY_DEADLINE):
        """Seconds from t0 to an acknowledged request after it, polled right away: the first
        one, within the polling interval (None: none in time)."""
        end = t0 + deadline
        while time.monotonic() < end:
            with self.lock:
                if self.last_ok > t0:
                    return self.last_ok - t0
            time.sleep(0.02)
        return None


def setup(root, log_path, env=None, extra=(), ca=None, db=()):
    """init, serve (TLS when ca is given; db: --database arguments), a keyring and an app key
    allowed to encrypt on it."""
    data = os.path.join(root, "data")
    proc = subprocess.run([BIN, "init", "--data-dir", data, "--json"] + list(db),
                          capture_output=True, text=True, check=True)
    admin = json.loads(proc.stdout)["key"]
    node = Node(data, log_path, env=env, extra=list(extra) + list(db))
    if ca is not None:
        node.scheme, node.verify = "https", ca
    node.start()
    assert api(node, admin, "POST", "/v1/keyrings", {"name": "chaos"}).status_code == 201
    assert api(node, admin, "POST", "/v1/apps", {"name": "load"}).status_code == 201
    r = api(node, admin, "POST", "/v1/apps/load/keys",
            {"scopes": ["encrypt"], "keyrings": ["chaos"]})
    assert r.status_code == 201, r.text
    key = r.json()
    return node, admin, key["key"], key["id"]


def found_in_trail(node, admin, key_id):
    """Encrypt events of the load key answered 200, paged through /v1/audit/events."""
    count, cursor = 0, None
    while True:
        params = {"key_id": key_id, "op": "encrypt", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = requests.get(node.url + "/v1/audit/events", params=params, timeout=30,
                         verify=node.verify, headers={"Authorization": f"Bearer {admin}"})
        if r.status_code != 200:
            raise RuntimeError(f"GET /v1/audit/events: {r.status_code} {r.text[:300]}")
        page = r.json()
        count += sum(e.get("count", 1) for e in page["events"] if e["status"] == 200)
        cursor = page.get("next_cursor")
        if not cursor:
            return count


def trail_verifies(node, admin, work):
    """Both the server's whole-trail check and the offline verifier on an export."""
    h = {"Authorization": f"Bearer {admin}"}
    get = lambda path, timeout: requests.get(node.url + path, headers=h, timeout=timeout,  # noqa: E731
                                             verify=node.verify)
    v = get("/v1/audit/verify", 60).json()
    if not v.get("valid"):
        return False, f"server: {v.get('error')}"
    export = os.path.join(work, "trail.ndjson")
    with open(export, "wb") as f:
        f.write(get("/v1/audit/export", 60).content)
    keys = get("/v1/audit/public-key", 10).json()
    args = [BIN, "audit", "verify", export]
    for k in keys["keys"]:
        args += ["--public-key", k["public_key"]]
    proc = subprocess.run(args, capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout.strip() or proc.stderr.strip()


# --- faults: each returns (recovery seconds or None, note) with the load running -------------

def fault_kill9(node, load, seconds):
    node.proc.kill()
    node.proc.wait()
    t0 = time.monotonic()
    node.start()                       # the supervisor's restart
    return load.ok_after(t0), "restarted"


def fault_sigstop(node, load, seconds):
    node.proc.send_signal(signal.SIGSTOP)
    time.sleep(CLIENT_TIMEOUT * 2 + 1)
    t0 = time.monotonic()
    node.proc.send_signal(signal.SIGCONT)
    return load.ok_after(t0), f"stopped {CLIENT_TIMEOUT * 2 + 1:.0f}s"


def fault_disk_full(node, load, seconds):
    """Fill the filesystem and keep it full (space the server frees, its reserve included, is
    taken again) for a while, then free it."""
    junk = os.path.join(os.path.dirname(node.data_dir), "junk")
    fd = os.open(junk, os.O_WRONLY | os.O_CREAT, 0o600)
    end = time.monotonic() + max(2.0, seconds / 2)
    try:
        while time.monotonic() < end:
            try:
                os.write(fd, b"\0" * (1 << 16))
            except OSError:
                time.sleep(0.02)
    finally:
        os.close(fd)
    with load.lock:
        during = load.acked
    os.unlink(junk)
    t0 = time.monotonic()
    rec = load.ok_after(t0)
    if node.proc.poll() is not None:
        return None, f"the server exited ({node.proc.returncode}) on a full disk"
    return rec, f"{during} acked before space returned"


def fault_clock(node, load, seconds):
    stamp = node.env["FAKETIME_TIMESTAMP_FILE"]
    with open(stamp, "w") as f:
        f.write("+1d\n")
    time.sleep(max(1.0, seconds / 2))
    with open(stamp, "w") as f:
        f.write("-2h\n")
    t0 = time.monotonic()
    rec = load.ok_after(t0)
    time.sleep(max(1.0, seconds / 2))
    return rec, "+1 day, then -2 hours"


class Mount:
    """A Kubernetes secret volume as the kubelet writes it: tls.crt and tls.key are links through
    ..data, which one atomic rename points at a new version's directory. Certificates are made
    with the openssl command: a CA and leaves for localhost and 127.0.0.1."""

    def __init__(self, root):
        self.root, self.n = root, 0
        os.makedirs(root)
        self.ca = os.path.join(root, "ca.pem")
        self.ca_key = os.path.join(root, "ca.key")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "30",
                      "-subj", "/CN=difyguard chaos CA")
        self.install()
        for f in ("tls.crt", "tls.key"):
            os.symlink(f"..data/{f}", os.path.join(root, f))

    @staticmethod
    def _openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def install(self):
        """A new leaf in a new version directory, then the swap; its serial (hex, upper)."""
        self.n += 1
        d = os.path.join(self.root, f"..v{self.n}")
        os.makedirs(d)
        key, csr, crt = (os.path.join(d, x) for x in ("tls.key", "tls.csr", "tls.crt"))
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", key, "-out", csr, "-subj", f"/CN=localhost v{self.n}")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-out", crt, "-days", "20", "-extfile", ext)
        os.chmod(key, 0o600)
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(f"..v{self.n}", tmp)
        os.replace(tmp, os.path.join(self.root, "..data"))
        with open(crt, "rb") as f:
            return __import__("ssl").PEM_cert_to_DER_cert(f.read().decode())

    @property
    def args(self):
        return ["--tls-cert", os.path.join(self.root, "tls.crt"),
                "--tls-key", os.path.join(self.root, "tls.key"), "--tls-reload-interval", "1s"]


def served_der(node):
    """The certificate a new TLS connection gets (DER), verified against the mount's CA."""
    ctx = ssl.create_default_context(cafile=node.verify)
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert(binary_form=True)


def fault_tls_rotate(node, load, seconds):
    with load.lock:
        failed0 = load.failed
    new = node.mount.install()
    t0 = time.monotonic()
    while time.monotonic() - t0 < RECOVERY_DEADLINE:
        try:
            if served_der(node) == new:
                rec = time.monotonic() - t0
                # the load goes on over the new certificate
                going = load.ok_after(time.monotonic()) is not None
                return (rec if going else None), \
                    f"new certificate served after {rec:.1f}s; {load.failed - failed0} failed"
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.05)
    return None, "the new certificate was never served"


PGTEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "pgtest.sh")


def fault_db_restart(node, load, seconds):
    down = max(2.0, seconds / 2)
    with load.lock:
        acked0, failed0 = load.acked, load.failed
    subprocess.run([PGTEST, "stop", node.pg_dir], check=True, capture_output=True)
    time.sleep(down)
    with load.lock:
        acked_down, failed_down = load.acked - acked0, load.failed - failed0
    ready = requests.get(node.url + "/readyz", timeout=5).status_code
    t0 = time.monotonic()
    subprocess.run([PGTEST, "start", node.pg_dir], check=True, capture_output=True)
    rec = load.ok_after(t0)
    if ready != 503:
        return None, f"/readyz answered {ready} with the database down"
    return rec, (f"down {down:.0f}s: {failed_down} refused, {acked_down} acked, /readyz 503")


FAULTS = {
    "kill9": (fault_kill9, None),
    "sigstop": (fault_sigstop, None),
    "disk_full": (fault_disk_full, "tmpfs"),
    "clock": (fault_clock, "faketime"),
    "tls_rotate": (fault_tls_rotate, "tls"),
    "db_restart": (fault_db_restart, "postgres"),
}


def drill(name, seconds, work):
    fn, needs = FAULTS[name]
    root = os.path.join(work, name)
    os.makedirs(root)
    env, mounted = None, False
    if needs == "tmpfs":
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", root],
                          capture_output=True).returncode != 0:
            return [name, "-", "-", "-", "SKIP (cannot mount a tmpfs here)"], True
        mounted = True
    if needs == "faketime":
        if not os.path.exists(FAKETIME_LIB):
            return [name, "-", "-", "-", "SKIP (libfaketime missing: apt-get install faketime)"], True
        stamp = os.path.join(work, f"{name}.faketime")
        with open(stamp, "w") as f:
            f.write("+0\n")
        env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": stamp,
               "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
               # an ASan build wants its runtime first; libfaketime only wraps clock calls
               "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                                ":verify_asan_link_order=0").lstrip(":")}
    node, extra, mount, db, pg_dir = None, (), None, (), None
    if needs == "tls":
        mount = Mount(os.path.join(root, "tls"))
        extra = mount.args
    if needs == "postgres":
        pg_dir = os.path.join(root, "pg")
        for d in (work, root):            # the cluster runs as the postgres user when we are root
            os.chmod(d, 0o755)
        proc = subprocess.run([PGTEST, "start", pg_dir], capture_output=True, text=True)
        if proc.returncode != 0:
            return [name, "-", "-", "-", f"SKIP (no PostgreSQL: {proc.stderr.strip()[:80]})"], True
        db = ("--database", proc.stdout.strip())
    try:
        node, admin, key, key_id = setup(root, os.path.join(work, f"{name}.serve.log"), env=env,
                                         extra=extra, ca=mount.ca if mount else None, db=db)
        node.mount, node.pg_dir = mount, pg_dir
        load = Load(node, key, "chaos")
        load.start()
        time.sleep(seconds / 2)
        recovery, note = fn(node, load, seconds)
        time.sleep(seconds / 2)
        load.stop()
        if node.proc.poll() is not None:      # a crash is a failure, but count what we can
            node.start()
        try:
            found = found_in_trail(node, admin, key_id)
            ok_trail, why = trail_verifies(node, admin, work)
        except (RuntimeError, requests.RequestException) as e:
            return [name, str(load.acked), "?", "-", f"FAIL: the trail cannot be read ({e})"], False
        lost = load.acked > found
        good = not lost and ok_trail and recovery is not None
        verdict = "ok" if good else "FAIL: " + "; ".join(
            x for x in [f"{load.acked - found} acknowledged not in the trail" if lost else "",
                        f"trail does not verify ({why})" if not ok_trail else "",
                        "no recovery" if recovery is None else ""] if x)
        rec = f"{recovery:.2f}s" if recovery is not None else "-"
        return [name, str(load.acked), str(found), rec, f"{verdict} ({note})"], good
    finally:
        if node is not None:
            node.stop()
        if pg_dir is not None:
            subprocess.run([PGTEST, "stop", pg_dir], capture_output=True)
        if mounted:
            subprocess.run(["umount", "-l", root], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="load per fault (default 6)")
    ap.add_argument("--only", default=",".join(FAULTS), help="comma-separated faults")
    args = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        print(f"drill: no difyguard binary at {BIN} (set DIFYGUARD_BIN)")
        return 2
    work = tempfile.mkdtemp(prefix="dg-chaos-")
    rows, failed = [], False
    try:
        for name in args.only.split(","):
            row, good = drill(name.strip(), args.seconds, work)
            rows.append(row)
            failed |= not good
    finally:
        if os.environ.get("DG_CHAOS_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"drill: kept {work}")
    head = ["fault", "acknowledged", "found in trail", "recovery", "verdict"]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
