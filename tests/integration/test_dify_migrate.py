# SPDX-License-Identifier: Apache-2.0
"""Migrating Dify's local-RSA values to difyguard and back (integrations/dify/migrate_hybrid.py
and migrate_command.py) against the real server: HYBRID and legacy values made by the test as
Dify's local provider makes them, order kept, idempotent (already migrated values unchanged, the
private key not even read), batches, ValueError for undecryptable values and a missing key, and
the table walker over a database shaped like Dify's (SQLite here), with --dry-run, resuming and
rollback."""
import base64
import json
import os
import sqlite3
import sys

import pytest

from conftest import SECRETS

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("DG_SOURCE_DIR", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "dify_stub"))
sys.path.insert(0, os.path.join(SRC, "integrations", "dify"))

import dify_rsa  # noqa: E402
import difyguard_key_provider as dkp  # noqa: E402
import migrate_command as mc  # noqa: E402
import migrate_hybrid as mh  # noqa: E402

T1 = "0d5e6f70-8192-4a3b-bc4d-5e6f708192a3"
T2 = "a1b2c3d4-e5f6-4789-8abc-def012345678"


@pytest.fixture(scope="module")
def prov(server):
    kr = server.create_keyring("dify")
    api, _ = server.issue_key(["encrypt", "decrypt"], keyrings=[kr])
    old = {k: os.environ.get(k) for k in ("DIFYGUARD_ADDR", "DIFYGUARD_TOKEN")}
    os.environ.update({"DIFYGUARD_ADDR": server.url, "DIFYGUARD_TOKEN": api.token})
    try:
        yield dkp.DifyguardKeyProvider()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def keys():
    return {T1: dify_rsa.new_key(), T2: dify_rsa.new_key()}


def b64(b):
    return base64.b64encode(b).decode()


def secret(t):
    SECRETS.add_text(t, "dify value")
    return t


def test_migrate_tokens(prov, keys):
    k = keys[T1]
    texts = [secret(f"openai-key-{i:03d}-abcdef") for i in range(5)] + [""]
    tokens = [b64(dify_rsa.hybrid_encrypt(k.publickey(), texts[0])),
              b64(dify_rsa.legacy_encrypt(k.publickey(), texts[1])),
              b64(prov.encrypt(T1, texts[2])),                       # already migrated
              b64(dify_rsa.hybrid_encrypt(k.publickey(), texts[3])),
              b64(dify_rsa.legacy_encrypt(k.publickey(), texts[4])),
              b64(dify_rsa.hybrid_encrypt(k.publickey(), texts[5]))]
    reads = []

    def loader(tenant):
        reads.append(tenant)
        return k.export_key()
    out = mh.migrate_tokens(T1, tokens, provider=prov, private_key_loader=loader)
    assert reads == [T1]
    assert out[2] == tokens[2]
    assert [prov.decrypt(T1, base64.b64decode(t)) for t in out] == texts
    assert all(base64.b64decode(t)[0] == 1 for t in out)
    # stored size: smaller than the RSA values it replaces
    assert all(len(o) < len(t) for o, t in zip(out, tokens) if t != tokens[2])

    # idempotent: the second run changes nothing and never reads the key

    def no_key(tenant):
        raise AssertionError("the private key was read")
    assert mh.migrate_tokens(T1, out, provider=prov, private_key_loader=no_key) == out
    # and back
    back = mh.rollback_tokens(T1, out, k.publickey().export_key(), provider=prov)
    oaep = mh.PKCS1_OAEP.new(k)
    assert all(base64.b64decode(t).startswith(b"HYBRID:") for t in back)
    assert [mh._rsa_decrypt(k, oaep, base64.b64decode(t)) for t in back] == texts
    assert mh.rollback_tokens(T1, back, k.publickey().export_key(), provider=prov) == back


def test_migrate_refuses_what_it_cannot_read(prov, keys):
    k, other = keys[T1], keys[T2]
    t = secret("undecryptable-secret-1")
    good = b64(dify_rsa.hybrid_encrypt(k.publickey(), secret("fine-secret-value-2")))
    for bad in [b64(dify_rsa.hybrid_encrypt(other.publickey(), t)),       # another tenant's key
                b64(dify_rsa.legacy_encrypt(other.publickey(), t)),
                b64(prov.encrypt(T2, t)),                                 # difyguard, T2
                "not base64!", b64(b"HYBRID:" + b"x" * 40)]:
        with pytest.raises(ValueError) as ei:
            mh.migrate_tokens(T1, [good, bad], provider=prov,
                              private_key_loader=lambda _: k.export_key())
        assert "value 1" in str(ei.value) and t not in str(ei.value)
    with pytest.raises(ValueError) as ei:
        mh.migrate_tokens(T1, [good], provider=prov, private_key_loader=lambda _: None)
    assert "private key" in str(ei.value)
    with pytest.raises(ValueError):
        mh.rollback_tokens(T1, [b64(prov.encrypt(T1, t))], "difyguard:dify", provider=prov)


def test_migrate_in_batches(prov, keys):
    k = keys[T1]
    texts = [f"batch-migrate-{i:05d}" for i in range(1500)]
    tokens = [b64(dify_rsa.legacy_encrypt(k.publickey(), t)) for t in texts]
    out = mh.migrate_tokens(T1, tokens, provider=prov,
                            private_key_loader=lambda _: k.export_key())
    assert prov.batch_decrypt(T1, [base64.b64decode(t) for t in out]) == texts


def dify_db(path, keys):
    """A database with the tables and columns Dify encrypts (a SQLite stand-in)."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE tenants (id TEXT PRIMARY KEY, encrypt_public_key TEXT);
        CREATE TABLE provider_credentials (id TEXT PRIMARY KEY, tenant_id TEXT,
                                           encrypted_config TEXT);
        CREATE TABLE tool_mcp_providers (id TEXT PRIMARY KEY, tenant_id TEXT,
            encrypted_credentials TEXT, encrypted_headers TEXT, server_url TEXT);
        CREATE TABLE workflows (id TEXT PRIMARY KEY, tenant_id TEXT,
                                environment_variables TEXT);
    """)
    expect = {}
    for n, (tenant, k) in enumerate(keys.items()):
        pub = k.publickey()
        db.execute("INSERT INTO tenants VALUES (?, ?)", (tenant, pub.export_key().decode()))
        key_text = secret(f"sk-tenant{n}-provider-key")
        cfg = {"openai_api_key": b64(dify_rsa.hybrid_encrypt(pub, key_text)),
               "openai_api_base": "https://api.example.com/v1",
               "not_a_secret_b64": b64(os.urandom(40)),
               # shaped like a difyguard blob (format 1, version 1) but not one
               "looks_like_ours": b64(b"\x01\x00\x00\x00\x01" + os.urandom(60))}
        db.execute("INSERT INTO provider_credentials VALUES (?, ?, ?)",
                   (f"pc{n}", tenant, json.dumps(cfg)))
        url = secret(f"https://mcp.example.com/{n}/sse?key=url-secret")
        hdr = secret(f"Bearer header-secret-{n}")
        db.execute("INSERT INTO tool_mcp_providers VALUES (?, ?, ?, ?, ?)",
                   (f"mcp{n}", tenant, "{}",
                    json.dumps({"Authorization": b64(dify_rsa.hybrid_encrypt(pub, hdr))}),
                    b64(dify_rsa.hybrid_encrypt(pub, url))))
        var = secret(f"workflow-secret-{n}")
        env = [{"name": "API", "value_type": "secret",
                "value": b64(dify_rsa.legacy_encrypt(pub, var))},
               {"name": "PLAIN", "value_type": "string", "value": "hello"}]
        db.execute("INSERT INTO workflows VALUES (?, ?, ?)", (f"wf{n}", tenant, json.dumps(env)))
        expect[tenant] = {"cfg": key_text, "url": url, "hdr": hdr, "var": var,
                          "b64": cfg["not_a_secret_b64"], "ours": cfg["looks_like_ours"]}
    db.commit()
    return db, expect


def snapshot(db):
    return [db.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
            for t in ("provider_credentials", "tool_mcp_providers", "workflows")]


def test_walker(prov, keys, tmp_path):
    db, expect = dify_db(str(tmp_path / "dify.db"), keys)
    loader = lambda tenant: keys[tenant].export_key()          # noqa: E731
    lines = []
    before = snapshot(db)
    n = mc.Walker(db, prov, private_key_loader=loader, dry_run=True, out=lines.append).run()
    assert n == 8 and snapshot(db) == before and "would change 8" in lines[-1]
    assert mc.Walker(db, prov, private_key_loader=loader, out=lines.append).run() == 8
    for tenant, e in expect.items():
        cfg = json.loads(db.execute("SELECT encrypted_config FROM provider_credentials "
                                    "WHERE tenant_id = ?", (tenant,)).fetchone()[0])
        assert prov.decrypt(tenant, base64.b64decode(cfg["openai_api_key"])) == e["cfg"]
        assert cfg["openai_api_base"] == "https://api.example.com/v1"
        assert cfg["not_a_secret_b64"] == e["b64"]
        hdr, url = db.execute("SELECT encrypted_headers, server_url FROM tool_mcp_providers "
                              "WHERE tenant_id = ?", (tenant,)).fetchone()
        assert prov.decrypt(tenant, base64.b64decode(json.loads(hdr)["Authorization"])) == \
            e["hdr"]
        assert prov.decrypt(tenant, base64.b64decode(url)) == e["url"]
        env = json.loads(db.execute("SELECT environment_variables FROM workflows WHERE "
                                    "tenant_id = ?", (tenant,)).fetchone()[0])
        assert prov.decrypt(tenant, base64.b64decode(env[0]["value"])) == e["var"]
        assert env[1]["value"] == "hello"
    # resumable and idempotent: nothing left to do, the key not read

    def no_key(tenant):
        raise AssertionError("key read")
    assert mc.Walker(db, prov, private_key_loader=no_key, out=lines.append).run() == 0
    # rollback: back to values the tenant's RSA key decrypts
    assert mc.Walker(db, prov, rollback=True, out=lines.append).run() == 8
    for tenant, e in expect.items():
        k = keys[tenant]
        url = db.execute("SELECT server_url FROM tool_mcp_providers WHERE tenant_id = ?",
                         (tenant,)).fetchone()[0]
        assert mh._rsa_decrypt(k, mh.PKCS1_OAEP.new(k), base64.b64decode(url)) == e["url"]
        cfg = json.loads(db.execute("SELECT encrypted_config FROM provider_credentials "
                                    "WHERE tenant_id = ?", (tenant,)).fetchone()[0])
        assert cfg["looks_like_ours"] == e["ours"] and cfg["not_a_secret_b64"] == e["b64"]
    assert mc.Walker(db, prov, rollback=True, out=lines.append).run() == 0
    assert not any(e["cfg"] in ln for e in expect.values() for ln in lines)
