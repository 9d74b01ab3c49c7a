# SPDX-License-Identifier: Apache-2.0
"""The audit trail's HMACs against an independent computation (issue 15). Every other audit test
takes its expected HMACs from the server's own POST /v1/audit/hash, so a server that HMAC-ed with
an empty or wrong key would pass them all. Here the test opens the `audit-hmac` service key itself,
with the root key file and the layout SECURITY.md documents ("Root-key wrapping":
XChaCha20-Poly1305, 0x01 || nonce(24) || ciphertext || tag(16), AAD "difyguard/v1/svckey/" ||
purpose), and computes HMAC-SHA256 with Python's hmac module."""
import base64
import hashlib
import hmac
import sqlite3

import nacl.bindings as nacl_bindings         # python3-nacl, installed by scripts/deps.sh
import nacl.exceptions as nacl_exceptions
import pytest

from conftest import SECRETS, expect, new_text, poll_until, uniq
from test_audit import all_events, audit_hash, auditor_of, hmacs, make_key, rid



def root_key_bytes(datadir):
    """The root key file: standard base64 of 32 bytes and a newline (SECURITY.md)."""
    with open(datadir.root_key, "rb") as f:
        key = base64.b64decode(f.read().strip(), validate=True)
    assert len(key) == 32, len(key)
    return key


def root_key_id(key):
    """SECURITY.md: first 8 bytes of BLAKE2b-256 keyed with the root key over
    "difyguard/v1/root-key-id", in hex."""
    return hashlib.blake2b(b"difyguard/v1/root-key-id", key=key, digest_size=32).digest()[:8].hex()


def service_key(datadir, purpose):
    """Unwrap a service key row with the root key, independently of the server."""
    con = sqlite3.connect(datadir.db, timeout=30)
    try:
        row = con.execute("SELECT root_key_id, wrapped FROM service_keys WHERE purpose = ?",
                          (purpose,)).fetchone()
    finally:
        con.close()
    assert row is not None, f"no service key {purpose!r}"
    rk_id, wrapped = row
    rk = root_key_bytes(datadir)
    assert rk_id == root_key_id(rk) == datadir.info["root_key_id"], (rk_id, datadir.info)
    assert wrapped[0] == 0x01 and len(wrapped) == 1 + 24 + 32 + 16, wrapped[:1]
    SECRETS.add_bytes(bytes(wrapped), f"wrapped service key {purpose}")
    key = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        bytes(wrapped[25:]), f"difyguard/v1/svckey/{purpose}".encode(), bytes(wrapped[1:25]), rk)
    assert len(key) == 32 and key != bytes(32), "the service key is 32 random bytes"
    with pytest.raises(nacl_exceptions.CryptoError):     # the purpose is bound as AAD
        nacl_bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            bytes(wrapped[25:]), b"difyguard/v1/svckey/other", bytes(wrapped[1:25]), rk)
    SECRETS.add_bytes(key, f"service key {purpose}")
    return key


def h(key, value):
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def test_audit_hmacs_use_the_audit_hmac_service_key(start_server):
    """Guarantee (SECURITY.md "Audit trail", docs/audit.md `hmac`): context values, references,
    request ids, client addresses, unknown keyring names and unknown key ids are
    HMAC-SHA256 under the `audit-hmac` service key, which only the root key opens; and
    hmac_key_id names that key. Fails when the server HMACs with any other key (an empty one)."""
    srv = start_server()
    key = service_key(srv.datadir, "audit-hmac")
    key_id = hashlib.blake2b(b"difyguard/audit-hmac-id", key=key, digest_size=32).digest()[:8]
    aud = auditor_of(srv)
    kr = srv.create_keyring()
    app = uniq("app")
    expect(srv.admin.post("/v1/apps", {"name": app}), 201)
    api, _ = srv.issue_key(["encrypt", "decrypt"], app=app)

    tenant, row, ref = (f"ctx-{uniq('v')}", f"row-{uniq('v')}", f"ref-{uniq('v')}")
    for v in (tenant, row, ref):
        SECRETS.add(v, "context value or reference")
    r_single, r_batch, r_kr = rid("hk"), rid("hk"), rid("hk")
    ctx = {"tenant": tenant, "row": row}
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", {"text": new_text("hk"), "context": ctx},
                    headers={"X-Request-Id": r_single}), 200)
    expect(api.post(f"/v1/keyrings/{kr}/encrypt",
                    {"items": [{"text": new_text("hk1"), "reference": ref, "context": ctx}]},
                    headers={"X-Request-Id": r_batch}), 200)
    missing = uniq("nokr")
    expect(api.post(f"/v1/keyrings/{missing}/encrypt", {"text": "x"},
                    headers={"X-Request-Id": r_kr}), 404, "not_found")

    events = {}
    for e in all_events(aud, app=app):
        for r in (r_single, r_batch, r_kr):
            if hmacs(e, "request_id") == [h(key, r)]:
                events[r] = e
    assert set(events) == {r_single, r_batch, r_kr}, (
        "events whose request id HMAC is HMAC-SHA256(audit-hmac key, X-Request-Id): "
        f"{sorted(events)} of 3; events: {all_events(aud, app=app)}")
    want_ctx = [h(key, row), h(key, tenant)]           # canonical (bytewise) key order
    for r, e in events.items():
        assert e["hmac_key_id"] == key_id.hex(), e
        assert hmacs(e, "client") == [h(key, "127.0.0.1")], e
    assert hmacs(events[r_single], "context") == want_ctx, events[r_single]
    assert hmacs(events[r_batch], "context") == want_ctx, events[r_batch]
    assert hmacs(events[r_batch], "reference") == [h(key, ref)], events[r_batch]
    assert hmacs(events[r_kr], "keyring") == [h(key, missing)], events[r_kr]
    assert events[r_kr]["keyring"] is None, events[r_kr]

    # an unknown key id (401, folded and written shortly after the answer)
    unknown = make_key()
    r_key = rid("hk")
    expect(srv.client(unknown).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"},
                                    headers={"X-Request-Id": r_key}), 401, "unauthenticated")

    def unknown_key_event():
        for e in all_events(aud, op="encrypt", outcome="denied"):
            if h(key, r_key) in hmacs(e, "request_id"):
                return e
        return None
    e = poll_until(unknown_key_event, deadline=30, interval=0.25, what="the unknown-key 401 event")
    assert hmacs(e, "key_id") == [h(key, unknown[4:20])], e

    # the search helper computes the same HMAC
    assert audit_hash(aud, tenant) == h(key, tenant)
