# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the difyguard integration tests: the real binary on a temp SQLite data dir.

- Every HTTP response goes through openapi_check (docs/openapi.yaml) automatically, and must
  carry Cache-Control: no-store.
- Every secret a test uses (plaintexts and their encodings, the admin key, issued API keys,
  data keys, root key files) is registered, and so is everything secret-ish any request sends
  or any answer holds (bearer tokens, plaintexts, ciphertexts, wrapped data keys, data keys,
  new API keys, context values: conftest.register_exchange); at the end of the session all
  captured server logs and CLI stderr are scanned for them and the session fails if any
  appears.
- Tests never assert on speed; eventual effects are polled with generous deadlines.
"""
import base64
import itertools
import json
import os
import re
import secrets as pysecrets
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

import openapi_check

BIN = os.environ.get("DIFYGUARD_BIN", "/work/main/build/server/difyguard")
READY_DEADLINE = 20.0      # seconds for a server to answer /healthz
STOP_DEADLINE = 30.0       # seconds for a server to exit after SIGTERM
HTTP_TIMEOUT = 60.0

CRYPTO_SCOPES = ["encrypt", "decrypt", "rewrap", "datakey", "datakey:plaintext"]


# ----------------------------------------------------------------------------------------------
# encodings

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def split_ciphertext(ct: str):
    """'dg:v3:AAAA' -> (3, blob bytes)."""
    parts = ct.split(":")
    assert len(parts) == 3 and parts[0] == "dg" and parts[1].startswith("v"), ct
    return int(parts[1][1:]), unb64url(parts[2])


def join_ciphertext(version, blob: bytes) -> str:
    return f"dg:v{version}:{b64url(blob)}"


# ----------------------------------------------------------------------------------------------
# the secret registry and log scan

class SecretRegistry:
    """Byte strings that must never appear in a log. Too-short values are not distinctive."""

    MIN_LEN = 8

    def __init__(self):
        self._items = {}
        self._lock = threading.Lock()
        self.logs = []

    def add(self, value, label):
        if isinstance(value, str):
            value = value.encode("utf-8")
        if len(value) < self.MIN_LEN:
            return
        with self._lock:
            self._items[value] = label
            if b"/" in value:                          # JSON encoders may escape '/'
                self._items[value.replace(b"/", b"\\/")] = label + " (json-escaped)"

    def add_bytes(self, data: bytes, label):
        """A plaintext or key: its raw bytes, standard base64, base64url and hex."""
        forms = [data]
        if len(data) > 96:
            forms.append(data[:48])        # 48 = 3*16: base64 of the prefix is a prefix
        for d in forms:
            self.add(d, label)
            self.add(b64(d), label + " (base64)")
            self.add(b64url(d), label + " (base64url)")
            self.add(d.hex(), label + " (hex)")

    def add_text(self, text: str, label):
        self.add_bytes(text.encode("utf-8"), label)
        # json-escaped forms of non-ASCII text
        esc = json.dumps(text)[1:-1]
        if esc != text:
            self.add(esc, label + " (json-escaped)")

    def add_log(self, path):
        with self._lock:
            self.logs.append(path)

    def scan(self):
        """Returns a list of (log, label) hits. Every value is at least MIN_LEN bytes, so any
        occurrence starts with one of the values' MIN_LEN-byte prefixes: one pass over each
        log looks those up, however many values are registered."""
        hits = []
        with self._lock:
            items = dict(self._items)
            logs = list(dict.fromkeys(self.logs))
        by_prefix = {}
        for value, label in items.items():
            by_prefix.setdefault(value[:self.MIN_LEN], []).append((value, label))
        n = self.MIN_LEN
        for path in logs:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            found = set()
            for i in range(len(data) - n + 1):
                cands = by_prefix.get(data[i:i + n])
                if cands:
                    for value, label in cands:
                        if data.startswith(value, i) and value not in found:
                            found.add(value)
                            hits.append((path, label))
        return hits


SECRETS = SecretRegistry()

# Fields of request and response bodies that hold something secret-ish: plaintexts (text, or
# base64 bytes), ciphertexts and wrapped data keys (SECURITY.md "What is logged": never
# ciphertext, wrapped keys, plaintext or key bytes), data keys, new API keys, context values.
_B64_SECRET_FIELDS = ("plaintext", "plaintext_key")
_TEXT_SECRET_FIELDS = ("text",)
_CT_FIELDS = ("ciphertext", "wrapped_key")


def register_ciphertext(ct, label="ciphertext"):
    """A ciphertext or wrapped key text: whole, its base64url blob, and the blob's first 40
    characters (a log that cut it short still leaks it)."""
    if not isinstance(ct, str):
        return
    SECRETS.add(ct, label)
    blob = ct.split(":", 2)[-1]
    SECRETS.add(blob, label + " (blob)")
    if len(blob) > 40:
        SECRETS.add(blob[:40], label + " (blob prefix)")


def register_context(ctx):
    if isinstance(ctx, dict):
        for v in ctx.values():
            if isinstance(v, str):
                SECRETS.add_text(v, "context value")


def register_body(obj, depth=0):
    """Everything secret-ish in a request or response JSON body, walking batches."""
    if depth > 4:
        return
    if isinstance(obj, list):
        for x in obj:
            register_body(x, depth + 1)
        return
    if not isinstance(obj, dict):
        return
    for k, v in obj.items():
        if k in _TEXT_SECRET_FIELDS and isinstance(v, str):
            SECRETS.add_text(v, f"body {k}")
        elif k in _B64_SECRET_FIELDS and isinstance(v, str):
            try:
                SECRETS.add_bytes(base64.b64decode(v, validate=True), f"body {k}")
            except ValueError:
                SECRETS.add(v, f"body {k}")
        elif k in _CT_FIELDS:
            register_ciphertext(v, f"body {k}")
        elif k == "context":
            register_context(v)
        elif k == "key" and isinstance(v, str) and v.startswith("dgk_"):
            register_api_key(v)
        elif isinstance(v, (dict, list)):
            register_body(v, depth + 1)


def register_exchange(req_headers, req_body, resp):
    """What a test sent and received: bearer tokens, context headers, JSON and raw bodies."""
    auth = req_headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        SECRETS.add(auth[7:], "bearer token")
    hctx = req_headers.get("X-Difyguard-Context")
    if hctx:
        SECRETS.add(hctx, "context header")
        try:
            register_context(json.loads(unb64url(hctx)))
        except ValueError:
            pass
    if isinstance(req_body, (bytes, bytearray)) and req_body:
        ctype = req_headers.get("Content-Type", "")
        if ctype.startswith("application/octet-stream"):
            SECRETS.add_bytes(bytes(req_body), "octet-stream body")
        else:
            try:
                register_body(json.loads(req_body))
            except ValueError:
                pass
    rtype = resp.headers.get("Content-Type", "")
    if rtype.startswith("application/octet-stream") and resp.content:
        SECRETS.add_bytes(resp.content, "octet-stream answer")
    elif rtype.startswith("application/json") and resp.content:
        try:
            register_body(resp.json())
        except ValueError:
            pass
_LIVE_SERVERS = []
_counter = itertools.count(1)


def uniq(prefix="t"):
    """A unique lowercase name valid for keyrings and apps."""
    return f"{prefix}-{next(_counter)}-{pysecrets.token_hex(3)}"


def new_text(label="pt"):
    """A distinctive UTF-8 plaintext, registered as a secret."""
    t = f"pt-{label}-{pysecrets.token_urlsafe(18)}"
    SECRETS.add_text(t, f"plaintext {label}")
    return t


def new_bytes(n, label="bytes"):
    data = os.urandom(n)
    SECRETS.add_bytes(data, f"plaintext {label} ({n} bytes)")
    return data


# ----------------------------------------------------------------------------------------------
# HTTP client that checks every response against docs/openapi.yaml

_UNSET = object()


class Api:
    """Bearer client of one server. Every response is checked against docs/openapi.yaml."""

    def __init__(self, base, token=None):
        self.base = base
        self.token = token
        self.session = requests.Session()

    def with_token(self, token):
        return Api(self.base, token)

    def request(self, method, path, *, json_body=_UNSET, data=None, headers=None, token=_UNSET,
                params=None, timeout=HTTP_TIMEOUT, check=True):
        h = dict(headers or {})
        tok = self.token if token is _UNSET else token
        if tok is not None and "Authorization" not in h:
            h["Authorization"] = f"Bearer {tok}"
        if json_body is not _UNSET:
            data = json.dumps(json_body).encode("utf-8")
            h.setdefault("Content-Type", "application/json")
        elif data is not None and isinstance(data, str):
            data = data.encode("utf-8")
            h.setdefault("Content-Type", "application/json")
        resp = self.session.request(method, self.base + path, data=data, headers=h,
                                    params=params, timeout=timeout)
        register_exchange(h, data, resp)
        if check:
            openapi_check.check_response(resp)
            check_no_store(resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=_UNSET, **kw):
        if body is not _UNSET:
            kw["json_body"] = body
        return self.request("POST", path, **kw)

    def patch(self, path, body=_UNSET, **kw):
        if body is not _UNSET:
            kw["json_body"] = body
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- conveniences used all over the tests -------------------------------------------------
    def encrypt(self, keyring, text=None, plaintext=None, context=None, key_version=None):
        body = {}
        if text is not None:
            body["text"] = text
        if plaintext is not None:
            body["plaintext"] = b64(plaintext)
        if context is not None:
            body["context"] = context
        if key_version is not None:
            body["key_version"] = key_version
        return expect(self.post(f"/v1/keyrings/{keyring}/encrypt", body), 200)

    def decrypt(self, keyring, ciphertext, context=None):
        body = {"ciphertext": ciphertext}
        if context is not None:
            body["context"] = context
        return expect(self.post(f"/v1/keyrings/{keyring}/decrypt", body), 200)


def check_no_store(resp):
    """SECURITY.md "Transport": every answer carries Cache-Control: no-store (answers may hold
    secrets; no proxy or client cache may keep one)."""
    cc = resp.headers.get("Cache-Control")
    assert cc is not None and "no-store" in [d.strip().lower() for d in cc.split(",")], (
        f"{resp.request.method} {resp.request.url} -> {resp.status_code}: Cache-Control {cc!r}")


def expect(resp, status, code=None):
    """Assert the status (and error code); return the parsed JSON body (or None)."""
    body = None
    if resp.content and resp.headers.get("Content-Type", "").startswith("application/json"):
        body = resp.json()
    assert resp.status_code == status, (
        f"{resp.request.method} {resp.request.url}: expected {status} {code or ''}, "
        f"got {resp.status_code}: {resp.text[:500]}")
    if code is not None:
        assert body is not None and "error" in body, f"expected an error body, got {resp.text!r}"
        assert body["error"]["code"] == code, (
            f"{resp.request.method} {resp.request.url}: expected error {code}, got {body}")
    if body is not None and status >= 400:
        # every error body repeats the response's request id
        assert body["error"]["request_id"] == resp.headers.get("X-Request-Id"), body
    return body


# ----------------------------------------------------------------------------------------------
# processes

def child_env(extra=None):
    """The environment for difyguard children: no DIFYGUARD_* leaks in from ctest or the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFYGUARD_")}
    env.update(extra or {})
    return env


def require_binary():
    if not os.path.exists(BIN):
        if os.environ.get("DIFYGUARD_BIN"):
            pytest.fail(f"DIFYGUARD_BIN={BIN} does not exist")
        pytest.skip(f"difyguard binary not built at {BIN} (set DIFYGUARD_BIN)")


class Ctx:
    """Per-session places for logs; numbering of process outputs."""

    def __init__(self, logdir):
        self.logdir = logdir
        self._n = itertools.count(1)

    def log_path(self, stem):
        p = os.path.join(str(self.logdir), f"{next(self._n):03d}-{stem}")
        SECRETS.add_log(p)
        return p


_CTX = None


def run_cli(args, timeout=120, env=None, input_text=None):
    """Run `difyguard args...`; stderr is captured to a scanned log. Returns CompletedProcess
    with .stdout and .stderr as text."""
    require_binary()
    proc = subprocess.run([BIN] + _with_database(args), capture_output=True, timeout=timeout,
                          env=child_env(env), input=input_text, text=True)
    if _CTX is not None:
        name = "cli-" + (args[0] if args else "none").replace("/", "_") + ".stderr"
        with open(_CTX.log_path(name), "w") as f:
            f.write(proc.stderr)
    return proc


# DG_TEST_PG_URL, or DG_PG_URL with DG_TEST_PG_SUITE=1 (ctest integration_postgres_suite): every
# data dir gets a database of its own on that PostgreSQL server, passed as --database to every
# command naming the data dir. Tests that work on the SQLite file skip (DataDir.db).
PG_SUITE_URL = os.environ.get("DG_TEST_PG_URL") or (
    os.environ.get("DG_PG_URL") if os.environ.get("DG_TEST_PG_SUITE") == "1" else None)
_PG_DBS = {}
_PG_N = itertools.count(1)


def pg_database_for(data_dir):
    """The --database arguments of a data dir (none on SQLite); a new database the first time."""
    if not PG_SUITE_URL:
        return []
    key = os.path.abspath(str(data_dir))
    if key not in _PG_DBS:
        name = f"dgs_{os.getpid()}_{next(_PG_N)}"
        out = subprocess.run(["psql", "-qtAX", PG_SUITE_URL, "-c", f"CREATE DATABASE {name}"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        base, _, query = PG_SUITE_URL.partition("?")
        _PG_DBS[key] = base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")
    return ["--database", _PG_DBS[key]]


def _with_database(args):
    """args of a command naming --data-dir D, plus D's --database on PostgreSQL."""
    args = list(args)
    if PG_SUITE_URL and "--data-dir" in args and "--database" not in args:
        i = args.index("--data-dir")
        if i + 1 < len(args):
            args += pg_database_for(args[i + 1])
    return args


def init_data_dir(data_dir):
    """`difyguard init --data-dir D --json`; registers the admin key and root key as secrets."""
    os.makedirs(data_dir, exist_ok=True)
    proc = run_cli(["init", "--data-dir", str(data_dir), "--json"])
    assert proc.returncode == 0, f"init failed ({proc.returncode}): {proc.stderr}"
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"init --json printed no JSON object: {proc.stdout[:300]!r}")
    for k in ("key", "root_key_id", "data_dir", "database"):
        assert k in info, f"init --json lacks {k}: keys {sorted(info)}"
    SECRETS.add(info["key"], "admin key")
    SECRETS.add(info["key"][20:63], "admin key secret part")
    register_root_key(os.path.join(str(data_dir), "root.key"))
    return info


def register_root_key(path):
    try:
        with open(path, "rb") as f:
            content = f.read().strip()
    except OSError:
        return
    SECRETS.add(content, f"root key {path}")
    try:
        SECRETS.add_bytes(base64.b64decode(content), f"root key bytes {path}")
    except ValueError:
        pass


def run_serve_expecting_exit(data_dir, listen, extra=(), deadline=READY_DEADLINE):
    """Start `serve` that must refuse to run; returns (exit code, stderr text). A server still
    running after the deadline is killed and the test fails."""
    require_binary()
    err_path = _CTX.log_path("serve-refused.stderr")
    out_path = _CTX.log_path("serve-refused.stdout")
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen(_with_database([BIN, "serve", "--data-dir", str(data_dir),
                                                "--listen", listen] + list(extra)), stdout=out, stderr=err, env=child_env(),
                                stdin=subprocess.DEVNULL)
    try:
        rc = proc.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail(f"serve --listen {listen} {' '.join(extra)} kept running; expected a refusal")
    with open(err_path, "r", errors="replace") as f:
        err_text = f.read()
    with open(out_path, "r", errors="replace") as f:
        out_text = f.read()
    return rc, err_text, out_text


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `difyguard serve` process on a data dir."""

    def __init__(self, data_dir, args=(), admin_key=None, env=None):
        self.data_dir = str(data_dir)
        self.args = list(args)
        self.admin_key = admin_key
        self.env = env
        self.proc = None
        self.port = None
        self.stdout_path = self.stderr_path = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def client(self, token=None):
        return Api(self.url, token)

    @property
    def admin(self):
        return Api(self.url, self.admin_key)

    def start(self, wait=True):
        require_binary()
        for attempt in range(3):
            self.port = free_port()
            self.stdout_path = _CTX.log_path(f"serve-{self.port}.stdout")
            self.stderr_path = _CTX.log_path(f"serve-{self.port}.stderr")
            out = open(self.stdout_path, "wb")
            err = open(self.stderr_path, "wb")
            self.proc = subprocess.Popen(
                _with_database([BIN, "serve", "--data-dir", self.data_dir,
                                "--listen", f"127.0.0.1:{self.port}"] + self.args),
                stdout=out, stderr=err, env=child_env(self.env), stdin=subprocess.DEVNULL)
            out.close()
            err.close()
            _LIVE_SERVERS.append(self)
            if not wait:
                return self
            status = self.wait_ready()
            if status == "ready":
                return self
            if status == "foreign":
                # another process (a parallel test run) took the port first
                self.kill()
                continue
            # exited early: retry only when the port was taken meanwhile
            text = self.stderr().lower()
            if "in use" in text or "bind" in text:
                continue
            pytest.fail(f"difyguard serve exited with {self.proc.returncode} before ready; "
                        f"stderr: {self.stderr()[:1000]}")
        pytest.fail("difyguard serve could not bind a free port three times")

    def wait_ready(self, deadline=READY_DEADLINE):
        end = time.monotonic() + deadline
        probe = Api(self.url)
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                _forget(self)
                return "exited"
            try:
                r = probe.get("/healthz", timeout=2, check=False)
                if r.status_code == 200:
                    openapi_check.check_response(r)
                    return self._identify(probe)
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"difyguard serve did not answer /healthz within {deadline}s; "
                    f"stderr: {self.stderr()[:1000]}")

    def _identify(self, probe):
        """The port answered: make sure it is this process on this data dir, not a server of a
        parallel run that bound the same port while ours failed to."""
        if self.proc.poll() is not None:
            _forget(self)
            return "exited"
        if self.admin_key:
            r = probe.get("/v1/keyrings", token=self.admin_key, timeout=10, check=False)
            if r.status_code == 401:
                return "foreign"
        return "ready"

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, "r", errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, expect_rc=0):
        """SIGTERM, wait, and assert the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"difyguard serve did not exit within {STOP_DEADLINE}s of SIGTERM")
        _forget(self)
        rc = self.proc.returncode
        if expect_rc is not None:
            assert rc == expect_rc, (f"difyguard serve exited {rc} after SIGTERM (expected "
                                     f"{expect_rc}); stderr: {self.stderr()[-1000:]}")
        return rc

    def wait_exit(self, deadline=STOP_DEADLINE):
        """Wait for the process to exit on its own (no further signal); returns the code."""
        try:
            self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"difyguard serve did not exit within {deadline}s")
        _forget(self)
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        _forget(self)

    def restart(self, args=None):
        """Stop (asserting exit 0) and start a new process on the same data dir."""
        self.stop()
        if args is not None:
            self.args = list(args)
        return self.start()

    # -- admin helpers -----------------------------------------------------------------------
    def create_keyring(self, name=None, **fields):
        name = name or uniq("kr")
        body = {"name": name}
        body.update(fields)
        expect(self.admin.post("/v1/keyrings", body), 201)
        return name

    def issue_key(self, scopes, keyrings=None, expires_in=None, app=None):
        """Create an app (unless given) and a key; returns (Api, key object)."""
        admin = self.admin
        if app is None:
            app = uniq("app")
            expect(admin.post("/v1/apps", {"name": app, "description": "integration test"}), 201)
        body = {"scopes": list(scopes)}
        if keyrings is not None:
            body["keyrings"] = list(keyrings)
        if expires_in is not None:
            body["expires_in"] = expires_in
        obj = expect(admin.post(f"/v1/apps/{app}/keys", body), 201)
        register_api_key(obj["key"])
        return Api(self.url, obj["key"]), obj


def register_api_key(key):
    SECRETS.add(key, "API key")
    SECRETS.add(key[20:63], "API key secret part")


def _forget(server):
    try:
        _LIVE_SERVERS.remove(server)
    except ValueError:
        pass


# ----------------------------------------------------------------------------------------------
# fixtures

# ----------------------------------------------------------------------------------------------
# the log schema (docs/logs.md, docs/log-schema.json): every line of every server of the run

_SERVE_LOG = re.compile(r"^\d+-serve-.*\.(stdout|stderr)$")


def log_validator():
    import jsonschema
    src = os.environ.get("DG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(src, "docs", "log-schema.json")) as f:
        schema = json.load(f)
    return jsonschema.Draft202012Validator(schema)


def log_line_problems(validator, line, stream):
    """Why one line of a server's output breaks the schema ([] when it does not). stdout is the
    log; stderr holds log lines too (before logging is set up, the store's) and, by contract,
    the one-line "difyguard: ..." reason of a refused start."""
    if stream == "stderr" and line.startswith("difyguard: "):
        return []
    try:
        obj = json.loads(line)
    except ValueError:
        return ["not JSON"]
    return [e.message for e in validator.iter_errors(obj)]


def check_server_logs(paths):
    validator = log_validator()
    bad = []
    for path in paths:
        name = os.path.basename(path)
        if not _SERVE_LOG.match(name):
            continue
        try:
            with open(path, "r", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    line = line.rstrip("\n")
                    if line == "":
                        continue
                    for why in log_line_problems(validator, line, name.rsplit(".", 1)[1]):
                        bad.append(f"{name}:{n}: {why}: {line[:200]}")
        except FileNotFoundError:
            continue
    return bad


@pytest.fixture(scope="session", autouse=True)
def _session(tmp_path_factory):
    """Session set-up; at teardown stop stragglers, check every server log line against the log
    schema and scan every captured log for secrets."""
    global _CTX
    _CTX = Ctx(tmp_path_factory.mktemp("logs"))
    yield _CTX
    for s in list(_LIVE_SERVERS):
        s.kill()
    with SECRETS._lock:
        logs = list(dict.fromkeys(SECRETS.logs))
    bad = check_server_logs(logs)
    if bad:
        pytest.fail(f"server log lines that break docs/log-schema.json ({len(bad)}):\n" +
                    "\n".join("  " + b for b in bad[:30]))
    hits = SECRETS.scan()
    if hits:
        lines = "\n".join(f"  {label} in {path}" for path, label in hits[:50])
        pytest.fail(f"secrets found in server logs or CLI stderr ({len(hits)} hits):\n{lines}")


@pytest.fixture(scope="session")
def openapi():
    return openapi_check.spec()


class DataDir:
    def __init__(self, path):
        self.path = str(path)
        self.info = init_data_dir(self.path)

    @property
    def admin_key(self):
        return self.info["key"]

    @property
    def root_key(self):
        return os.path.join(self.path, "root.key")

    @property
    def db(self):
        if PG_SUITE_URL:  # the test edits or reads the SQLite file behind the service's back
            pytest.skip("works on the SQLite file (the suite runs on PostgreSQL)")
        return os.path.join(self.path, "difyguard.db")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A module-scoped server with default flags; stopped with SIGTERM (exit 0) at the end."""
    require_binary()
    dd = DataDir(tmp_path_factory.mktemp("data"))
    srv = Server(dd.path, admin_key=dd.admin_key)
    srv.datadir = dd
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def crypto(server):
    """A client of the module server holding every crypto scope on every keyring."""
    api, _ = server.issue_key(CRYPTO_SCOPES)
    return api


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(args=[...], datadir=None, env=None) -> Server (init'd data dir unless given).
    Servers still running at the end of the test are stopped and must exit 0."""
    started = []

    def factory(args=(), datadir=None, wait=True, env=None):
        require_binary()
        if datadir is None:
            datadir = DataDir(tmp_path / f"data{len(started)}")
        srv = Server(datadir.path, args=args, admin_key=datadir.admin_key, env=env)
        srv.datadir = datadir
        started.append(srv)
        srv.start(wait=wait)
        return srv

    yield factory
    for srv in started:
        if srv.running():
            srv.stop()


@pytest.fixture
def new_datadir(tmp_path):
    """Factory: an init'd data dir without a server."""
    n = itertools.count()

    def factory():
        require_binary()
        return DataDir(tmp_path / f"dd{next(n)}")

    return factory


def poll_until(fn, deadline=20.0, interval=0.1, what="condition"):
    """Call fn() until it returns a truthy value; fail after the deadline."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what} not reached within {deadline}s (last: {last!r})")


# ----------------------------------------------------------------------------------------------
# openapi coverage: every documented (path, method, status) must be exercised by a full run

_COVERAGE = {"full": False, "deselected": False, "missing": None}


def pytest_deselected(items):
    if items:
        _COVERAGE["deselected"] = True


def pytest_collection_finish(session):
    """The check applies only when every test file of this directory was collected and nothing
    was deselected (-k, -m, a file or node id on the command line runs a subset)."""
    here = os.path.dirname(os.path.abspath(__file__))
    wanted = {f for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py")}
    got = {os.path.basename(str(item.fspath)) for item in session.items}
    _COVERAGE["full"] = wanted <= got


def pytest_sessionfinish(session, exitstatus):
    """A full run that never exercised a documented (path, method, status) fails."""
    spec = openapi_check._instance
    if spec is None or not os.path.exists(BIN):
        return
    if not _COVERAGE["full"] or _COVERAGE["deselected"]:
        return
    _COVERAGE["missing"] = spec.missing()
    if _COVERAGE["missing"] and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    """How much of docs/openapi.yaml the run exercised; on a full run, what was missed (the
    session fails then: pytest_sessionfinish)."""
    spec = openapi_check._instance
    if spec is None or not spec.seen:
        return
    documented = spec.documented()
    seen = spec.seen & documented
    terminalreporter.write_line(
        f"openapi: {len(seen)}/{len(documented)} documented (path, method, status) exercised")
    missing = _COVERAGE["missing"]
    if missing:
        terminalreporter.write_line(
            f"FAILED openapi coverage: {len(missing)} documented (path, method, status) never "
            "exercised; test each, or remove what the server can never answer:", red=True)
        for path, method, code in missing:
            terminalreporter.write_line(f"  {method.upper()} {path} {code}", red=True)
