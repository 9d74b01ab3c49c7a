# SPDX-License-Identifier: Apache-2.0
"""Dify key provider backed by difyguard (install as api/libs/key_providers/difyguard_key_provider.py
and select with KEY_PROVIDER_TYPE=difyguard after applying dify-key-provider.patch).

Dify encrypts every secret database field (provider and model credentials, load-balancing
configs, tool and MCP credentials, secret workflow variables) through its key provider. This one
sends each value to difyguard's keyring (DIFYGUARD_KEYRING, default "dify") with the tenant id
in the encryption context, so a value of one tenant never decrypts as another's.

Settings, read from the environment when the provider is constructed:
  DIFYGUARD_ADDR     base URL, http:// or https:// (default http://127.0.0.1:8080)
  DIFYGUARD_TOKEN    the API key (scopes encrypt and decrypt on the keyring); required
  DIFYGUARD_KEYRING  keyring name (default dify)
  DIFYGUARD_CACERT   PEM CA file that signed difyguard's certificate (https; default: system CAs)
  DIFYGUARD_TIMEOUT  seconds one call may take (default 10)

Contract Dify's callers rely on:
  - every failure (transport, TLS, timeout, HTTP status, malformed, empty or foreign input) is a
    ValueError, whose message holds neither the value nor the API key;
  - encrypt returns the raw ciphertext bytes (difyguard's blob: the plaintext + 53 bytes), which
    Dify base64-encodes: less than what Dify's local RSA provider stores for the same secret;
  - one kept-alive connection, shared by all threads under a lock, honouring the timeout.
Standard library only.
"""
import base64
import binascii
import http.client
import json
import math
import os
import re
import ssl
import threading
import urllib.parse
import uuid

from libs.key_providers.base import BaseKeyProvider

CONTEXT_KEY = "dify_tenant_id"   # the encryption context of every value: {CONTEXT_KEY: tenant id}
BATCH_MAX_ITEMS = 1000           # difyguard's default batch limits (items, 4 MiB): stay below
BATCH_MAX_BYTES = 3 << 20
BLOB_OVERHEAD_MIN = 5 + 16       # header + tag (deterministic keyrings); randomized: 53
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")
_CT = re.compile(r"dg:v([1-9][0-9]{0,9}):([A-Za-z0-9_-]+)\Z")
_RETRYABLE = (http.client.RemoteDisconnected, http.client.CannotSendRequest,
              http.client.ResponseNotReady, ConnectionResetError, BrokenPipeError)


class DifyguardKeyProvider(BaseKeyProvider):
    """Envelope encryption of Dify's secret fields by a difyguard service."""

    def __init__(self):
        addr = os.environ.get("DIFYGUARD_ADDR") or "http://127.0.0.1:8080"
        token = os.environ.get("DIFYGUARD_TOKEN") or ""
        keyring = os.environ.get("DIFYGUARD_KEYRING") or "dify"
        cacert = os.environ.get("DIFYGUARD_CACERT") or None
        timeout = os.environ.get("DIFYGUARD_TIMEOUT") or "10"
        u = urllib.parse.urlsplit(addr)
        if (u.scheme not in ("http", "https") or not u.hostname or u.username or u.password
                or u.query or u.fragment):
            raise ValueError("difyguard: DIFYGUARD_ADDR must be a plain http:// or https:// URL")
        if not token or any(c <= " " or c > "~" for c in token):
            raise ValueError("difyguard: DIFYGUARD_TOKEN must hold the API key")
        if not _NAME.match(keyring):
            raise ValueError("difyguard: DIFYGUARD_KEYRING is not a keyring name")
        try:
            self._timeout = float(timeout)
        except ValueError:
            self._timeout = -1.0
        if not math.isfinite(self._timeout) or self._timeout <= 0:
            raise ValueError("difyguard: DIFYGUARD_TIMEOUT must be a positive number of seconds")
        try:
            self._port = u.port
        except ValueError:
            raise ValueError("difyguard: DIFYGUARD_ADDR has a bad port") from None
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._ssl = None
        if self._https:
            try:
                self._ssl = ssl.create_default_context(cafile=cacert)
            except (OSError, ssl.SSLError):
                raise ValueError("difyguard: DIFYGUARD_CACERT cannot be read") from None
        self._prefix = u.path.rstrip("/")
        self._keyring = keyring
        self._headers = {"Authorization": "Bearer " + token,
                         "Content-Type": "application/json", "Accept": "application/json"}
        self._lock = threading.Lock()
        self._conn = None

    # ---- Dify's interface --------------------------------------------------------------------

    def generate_key_pair(self, tenant_id: str) -> str:
        """Nothing to provision: every tenant's values live in one keyring, bound to the tenant
        by the encryption context. Returns a non-secret reference that nothing depends on."""
        _tenant(tenant_id)
        return "difyguard:" + self._keyring

    def encrypt(self, tenant_id: str, text: str) -> bytes:
        return self.batch_encrypt(tenant_id, [text])[0]

    def get_decrypt_decoding(self, tenant_id: str):
        return _tenant(tenant_id)

    def decrypt_with_decoding(self, encrypted_text: bytes, decoding) -> str:
        return self.batch_decrypt(decoding, [encrypted_text])[0]

    # ---- batches -----------------------------------------------------------------------------

    def batch_encrypt(self, tenant_id: str, texts: list) -> list:
        """Encrypt many values of one tenant: order kept, batches split at the service's limits,
        a bad item raises ValueError."""
        tenant_id = _tenant(tenant_id)
        items = []
        for text in texts:
            if not isinstance(text, str):
                raise ValueError("difyguard: a value to encrypt must be a str")
            items.append({"text": text, "context": _context(tenant_id)})
        out = []
        for res in self._run("encrypt", items):
            out.append(_blob_of(res.get("ciphertext")))
        return out

    def batch_decrypt(self, tenant_id: str, values: list) -> list:
        """Decrypt many values of one tenant (bytes as encrypt returned them)."""
        tenant_id = _tenant(tenant_id)
        items = [{"ciphertext": _text_of(v), "context": _context(tenant_id)} for v in values]
        out = []
        for res in self._run("decrypt", items):
            b64 = res.get("plaintext")
            if not isinstance(b64, str):
                raise ValueError("difyguard: malformed answer")
            try:
                out.append(base64.b64decode(b64, validate=True).decode("utf-8"))
            except (binascii.Error, ValueError):
                raise ValueError("difyguard: the value is not UTF-8 text") from None
        return out

    # ---- the service -------------------------------------------------------------------------

    def _run(self, op, items):
        """Results of the items in order, in as few calls as the batch limits allow."""
        results, batch, size = [], [], 0
        for it in items:
            n = len(json.dumps(it)) + 1
            if batch and (len(batch) >= BATCH_MAX_ITEMS or size + n > BATCH_MAX_BYTES):
                results.extend(self._batch(op, batch))
                batch, size = [], 0
            batch.append(it)
            size += n
        if batch:
            results.extend(self._batch(op, batch))
        return results

    def _batch(self, op, items):
        answer = self._post(f"/v1/keyrings/{self._keyring}/{op}", {"items": items})
        res = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(res, list) or len(res) != len(items):
            raise ValueError("difyguard: malformed answer")
        for i, r in enumerate(res):
            if not isinstance(r, dict):
                raise ValueError("difyguard: malformed answer")
            if "error" in r:
                code = r["error"].get("code") if isinstance(r["error"], dict) else None
                raise ValueError(f"difyguard: {op} failed for item {i}: {_code(code)}")
        return res

    def _connect(self):
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                               context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _post(self, path, body):
        data = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        with self._lock:
            for attempt in (0, 1):
                reused = self._conn is not None
                if self._conn is None:
                    self._conn = self._connect()
                try:
                    self._conn.request("POST", self._prefix + path, body=data,
                                       headers=self._headers)
                    resp = self._conn.getresponse()
                    raw = resp.read()
                    status = resp.status
                    if resp.will_close:
                        self._drop()
                    break
                except _RETRYABLE:
                    # the kept-alive connection was closed by the server: one fresh attempt
                    self._drop()
                    if attempt == 0 and reused:
                        continue
                    raise ValueError("difyguard: the connection was closed") from None
                except ssl.SSLError:
                    self._drop()
                    raise ValueError("difyguard: TLS failure") from None
                except TimeoutError:
                    self._drop()
                    raise ValueError("difyguard: timed out") from None
                except (OSError, http.client.HTTPException) as e:
                    self._drop()
                    raise ValueError(f"difyguard: transport failure ({type(e).__name__})") \
                        from None
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if status < 200 or status > 299:
            err = answer.get("error") if isinstance(answer, dict) else None
            code = err.get("code") if isinstance(err, dict) else None
            raise ValueError(f"difyguard: HTTP {status}: {_code(code)}")
        if not isinstance(answer, dict):
            raise ValueError("difyguard: malformed answer")
        return answer

    def _drop(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        self._conn = None

    def close(self):
        with self._lock:
            self._drop()


# ---- formats -----------------------------------------------------------------------------------

def _tenant(tenant_id):
    """The tenant id as the context holds it: a non-empty str (a uuid.UUID in its text form)."""
    if isinstance(tenant_id, uuid.UUID):
        tenant_id = str(tenant_id)
    if not isinstance(tenant_id, str) or not tenant_id or "\x00" in tenant_id:
        raise ValueError("difyguard: tenant id missing")
    return tenant_id


def _context(tenant_id):
    """The encryption context binding a value to its tenant (a permanent format)."""
    return {CONTEXT_KEY: tenant_id}


def _code(code):
    """An error code from the service, shown only when it has the shape of one."""
    return code if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code) else "error"


def _blob_of(text):
    """'dg:v<N>:<base64url>' -> the blob bytes (N is repeated inside it)."""
    m = _CT.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError("difyguard: malformed answer")
    blob = base64.urlsafe_b64decode(m.group(2) + "=" * (-len(m.group(2)) % 4))
    if len(blob) < BLOB_OVERHEAD_MIN or int.from_bytes(blob[1:5], "big") != int(m.group(1)):
        raise ValueError("difyguard: malformed answer")
    return blob


def _text_of(value):
    """The blob bytes Dify stored -> difyguard's ciphertext text."""
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes) or len(value) < BLOB_OVERHEAD_MIN:
        raise ValueError("difyguard: not a difyguard value")
    if value[0] not in (1, 2, 3):
        raise ValueError("difyguard: not a difyguard value (values of another key provider, "
                         "such as HYBRID: RSA ones, must be migrated first)")
    version = int.from_bytes(value[1:5], "big")
    if version == 0:
        raise ValueError("difyguard: not a difyguard value")
    return f"dg:v{version}:" + base64.urlsafe_b64encode(value).rstrip(b"=").decode()
