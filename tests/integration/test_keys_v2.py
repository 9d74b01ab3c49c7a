# SPDX-License-Identifier: Apache-2.0
"""API keys, issue 3: rate limits with Retry-After, immediate revocation, grace-period rotation,
last_used_at, key rows edited in the database, malformed and unknown keys; and JWT bearer
tokens (HS256 / RS256 minted here without a JWT library) with every refusal case."""
import base64
import datetime
import hashlib
import hmac
import json
import secrets as pysecrets
import sqlite3
import subprocess
import time

import pytest

from conftest import (SECRETS, expect, new_text, poll_until, register_api_key, uniq)
from test_audit import (B62, all_events, audit_hash, auditor_of, find_event, hmacs,
                        make_key, rid)

def ts(s):
    return datetime.datetime.strptime(s.split(".")[0].rstrip("Z"),
                                      "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


def new_app(server):
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    return app


def create_key(server, app, **body):
    obj = expect(server.admin.post(f"/v1/apps/{app}/keys", body), 201)
    register_api_key(obj["key"])
    return obj


def key_row(server, app, key_id):
    listing = expect(server.admin.get(f"/v1/apps/{app}/keys"), 200)
    rows = [k for k in listing["keys"] if k["id"] == key_id]
    assert len(rows) == 1, listing
    return rows[0]


# ----------------------------------------------------------------------------------------------
# key objects

def test_new_key_fields(server):
    app = new_app(server)
    obj = create_key(server, app, scopes=["encrypt"], rate=5, burst=10)
    assert (obj["rate"], obj["burst"]) == (5, 10), obj
    assert obj["grace_until"] is None and obj["last_used_at"] is None, obj
    plain = create_key(server, app, scopes=["encrypt"])
    assert plain["rate"] == 0, "rate defaults to 0 (unlimited)"
    only_rate = create_key(server, app, scopes=["encrypt"], rate=3)
    assert only_rate["burst"] == 3, "burst defaults to the rate"
    row = key_row(server, app, obj["id"])
    assert (row["rate"], row["burst"], row["grace_until"], row["last_used_at"]) == (
        5, 10, None, None), row


@pytest.mark.parametrize("extra", [{"rate": -1}, {"rate": "fast"}, {"burst": -2},
                                   {"rate": 1.5}, {"rate": 2, "burst": "x"}])
def test_bad_rate_fields_400(server, extra):
    app = new_app(server)
    expect(server.admin.post(f"/v1/apps/{app}/keys", {"scopes": ["encrypt"], **extra}), 400,
           "invalid_request")


# ----------------------------------------------------------------------------------------------
# rate limits

def test_rate_limit_429_with_retry_after(server):
    kr = server.create_keyring()
    app = new_app(server)
    obj = create_key(server, app, scopes=["encrypt"], rate=2, burst=2)
    api = server.client(obj["key"])
    limited = []
    ok = 0
    rids = []
    for _ in range(30):
        if len(limited) >= 3:
            break
        r_id = rid("rl")
        r = api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}, headers={"X-Request-Id": r_id})
        if r.status_code == 429:
            expect(r, 429, "rate_limited")
            limited.append(r)
            rids.append(r_id)
        else:
            expect(r, 200)
            ok += 1
    assert limited, "30 quick requests on a key with rate 2 burst 2 were never limited"
    assert ok >= 2, f"only {ok} requests passed: the burst of 2 was not honoured"
    for r in limited:
        ra = r.headers.get("Retry-After")
        assert ra is not None and ra.strip().isdigit() and int(ra) >= 1, (
            f"Retry-After must be whole seconds >= 1, got {ra!r}")
    time.sleep(int(limited[-1].headers["Retry-After"]))
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    # a 429 is audited as denied
    aud = auditor_of(server)
    e = find_event(aud, audit_hash(aud, rids[0]), app=app)
    assert (e["status"], e["outcome"], e["op"]) == (429, "denied", "encrypt"), e
    # other keys are not limited by this one
    other = create_key(server, app, scopes=["encrypt"])
    for _ in range(5):
        expect(server.client(other["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)


# ----------------------------------------------------------------------------------------------
# revocation, rotation, last use

def test_revocation_is_immediate(server):
    kr = server.create_keyring()
    app = new_app(server)
    obj = create_key(server, app, scopes=["encrypt", "decrypt"])
    keep = create_key(server, app, scopes=["encrypt"])
    api = server.client(obj["key"])
    ct = api.encrypt(kr, text=new_text("revoke2"))["ciphertext"]
    expect(server.admin.delete(f"/v1/apps/{app}/keys/{obj['id']}"), 204)
    expect(api.post(f"/v1/keyrings/{kr}/decrypt", {"ciphertext": ct}), 401, "unauthenticated")
    expect(server.client(keep["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    assert key_row(server, app, obj["id"])["revoked_at"] is not None


def test_rotation_with_grace_period(server):
    kr = server.create_keyring()
    app = new_app(server)
    old = create_key(server, app, scopes=["encrypt", "decrypt"], keyrings=[kr], rate=100)
    old_api = server.client(old["key"])
    ct = old_api.encrypt(kr, text=new_text("rot"))["ciphertext"]
    t0 = time.time()
    new = expect(server.admin.post(f"/v1/apps/{app}/keys/{old['id']}/rotate",
                                   {"grace_period": "3s"}), 201)
    t1 = time.time()
    register_api_key(new["key"])
    assert new["id"] != old["id"] and new["key"] != old["key"], new
    assert new["app"] == app and sorted(new["scopes"]) == sorted(old["scopes"]), new
    assert new["keyrings"] == [kr] and new["revoked_at"] is None, new
    assert (new["rate"], new["burst"]) == (old["rate"], old["burst"]), new
    new_api = server.client(new["key"])
    # both work right away
    assert old_api.decrypt(kr, ct)["text"].startswith("pt-rot-")
    assert new_api.decrypt(kr, ct)["text"].startswith("pt-rot-")
    row = key_row(server, app, old["id"])
    assert row["grace_until"] is not None, row
    grace = ts(row["grace_until"]).timestamp()
    assert t0 + 3 - 1.5 <= grace <= t1 + 3 + 1.5, (t0, t1, row)     # whole-second timestamps

    def old_refused():
        r = old_api.post(f"/v1/keyrings/{kr}/decrypt", {"ciphertext": ct})
        if r.status_code == 200:
            return False
        expect(r, 401, "unauthenticated")
        return True

    poll_until(old_refused, deadline=30, interval=0.25, what="old key refused after its grace")
    assert new_api.decrypt(kr, ct)["text"].startswith("pt-rot-")
    expect(old_api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 401, "unauthenticated")


def test_rotation_default_grace_and_errors(server):
    app = new_app(server)
    old = create_key(server, app, scopes=["encrypt"])
    t0 = time.time()
    new = expect(server.admin.post(f"/v1/apps/{app}/keys/{old['id']}/rotate"), 201)
    t1 = time.time()
    register_api_key(new["key"])
    grace = ts(key_row(server, app, old["id"])["grace_until"]).timestamp()
    assert t0 + 86400 - 1.5 <= grace <= t1 + 86400 + 1.5, f"default grace is 24h: {grace - t0}"
    other = create_key(server, app, scopes=["encrypt"])
    for bad in ({"grace_period": "31d"}, {"grace_period": "soon"}, {"grace_period": -1},
                {"other": 1}):
        expect(server.admin.post(f"/v1/apps/{app}/keys/{other['id']}/rotate", bad), 400,
               "invalid_request")
    expect(server.admin.post(f"/v1/apps/{app}/keys/{'Z' * 16}/rotate", {}), 404, "not_found")
    expect(server.admin.post(f"/v1/apps/{uniq('none')}/keys/{other['id']}/rotate", {}), 404,
           "not_found")
    enc, _ = server.issue_key(["encrypt"])
    expect(enc.post(f"/v1/apps/{app}/keys/{other['id']}/rotate", {}), 403, "forbidden")


def test_last_used_at_set_after_use(server):
    kr = server.create_keyring()
    app = new_app(server)
    obj = create_key(server, app, scopes=["encrypt"])
    unused = create_key(server, app, scopes=["encrypt"])
    assert key_row(server, app, obj["id"])["last_used_at"] is None
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    expect(server.client(obj["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    row = poll_until(lambda: (lambda r: r if r["last_used_at"] else None)(
        key_row(server, app, obj["id"])), deadline=45, interval=0.5,
        what="last_used_at set after use")
    assert ts(row["last_used_at"]) >= before.replace(microsecond=0), row
    assert key_row(server, app, unused["id"])["last_used_at"] is None


# ----------------------------------------------------------------------------------------------
# rows edited in the database

def _refused(r):
    assert r.status_code in (401, 500), (r.status_code, r.text[:300])
    expect(r, r.status_code, "unauthenticated" if r.status_code == 401 else "integrity_failure")


@pytest.mark.parametrize("column,value", [
    ("scopes", "encrypt decrypt keyrings:admin apps:admin audit:read"),
    ("rate", 0),
    ("burst", 1000000),
])
def test_edited_key_row_refused(start_server, column, value):
    srv = start_server()
    kr = srv.create_keyring()
    app = new_app(srv)
    victim = create_key(srv, app, scopes=["encrypt"], keyrings=[kr], rate=1, burst=1)
    bystander = create_key(srv, app, scopes=["encrypt"], keyrings=[kr])
    expect(srv.client(victim["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    srv.stop()
    con = sqlite3.connect(srv.datadir.db)
    try:
        n = con.execute(f"UPDATE api_keys SET {column} = ? WHERE id = ?",
                        (value, victim["id"])).rowcount
        con.commit()
    finally:
        con.close()
    assert n == 1
    srv.start()
    api = srv.client(victim["key"])
    _refused(api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}))
    _refused(api.get("/v1/apps"))
    _refused(api.get("/v1/keyrings"))
    expect(srv.client(bystander["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    expect(srv.admin.get("/v1/keyrings"), 200)
    assert "integrity" in (srv.stdout() + srv.stderr()).lower(), "the edited row is reported"


def test_malformed_and_unknown_keys_401(server):
    kr = server.create_keyring()
    for key in (make_key(good_checksum=False), make_key(),
                make_key(key_id=server.admin_key[4:20])):
        expect(server.client(key).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 401,
               "unauthenticated")
    bad_crc = server.admin_key[:-1] + ("0" if server.admin_key[-1] != "0" else "1")
    expect(server.client(bad_crc).get("/v1/keyrings"), 401, "unauthenticated")


# ----------------------------------------------------------------------------------------------
# JWT

ISS = "https://idp.test"
AUD = "difyguard"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _seg(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


class Idp:
    """Signing keys for test tokens and the server's --jwt-config pointing at them."""

    def __init__(self, d):
        self.dir = d
        self.hs_secret = "".join(pysecrets.choice(B62) for _ in range(48)).encode()
        SECRETS.add(self.hs_secret, "JWT HS256 secret")
        (d / "hs1.secret").write_bytes(self.hs_secret)
        (d / "hs1.secret").chmod(0o600)
        self.rsa_key = d / "rs1.key.pem"
        self.rsa_pub = d / "rs1.pub.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", str(self.rsa_key)], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(self.rsa_key), "-pubout", "-out",
                        str(self.rsa_pub)], check=True, capture_output=True)
        self.config = d / "jwt.json"
        self.config.write_text(json.dumps({
            "issuer": ISS, "audience": AUD, "leeway": 30, "role_claim": "role",
            "roles": {"dify-api": ["encrypt", "decrypt"], "auditor": ["audit:read"]},
            "keys": [{"kid": "hs1", "alg": "HS256", "secret_file": str(d / "hs1.secret")},
                     {"kid": "rs1", "alg": "RS256", "public_key_file": str(self.rsa_pub)}]}))

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": ISS, "aud": AUD, "sub": f"user-{pysecrets.token_hex(6)}", "iat": now,
             "nbf": now - 5, "exp": now + 300, "role": "dify-api"}
        for k, v in over.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def token(self, alg="HS256", kid="hs1", claims=None, header=None, hs_key=None):
        h = {"alg": alg, "typ": "JWT", "kid": kid}
        for k, v in (header or {}).items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        signing_input = f"{_seg(h)}.{_seg(claims or self.claims())}".encode()
        if alg == "HS256":
            sig = hmac.new(hs_key or self.hs_secret, signing_input, hashlib.sha256).digest()
        elif alg == "RS256":
            sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.rsa_key)],
                                 input=signing_input, capture_output=True, check=True).stdout
        elif alg == "none":
            sig = b""
        else:
            raise AssertionError(alg)
        tok = signing_input.decode() + "." + b64url(sig)
        SECRETS.add(tok, "JWT")
        if sig:
            SECRETS.add(b64url(sig), "JWT signature")
        return tok


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    return Idp(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def jwt_server(start_server, idp):
    srv = start_server(args=["--jwt-config", str(idp.config)])
    srv.kr = srv.create_keyring()
    return srv


def test_jwt_hs256_and_rs256_encrypt_decrypt(jwt_server, idp):
    srv, kr = jwt_server, jwt_server.kr
    aud = auditor_of(srv)
    for alg, kid in (("HS256", "hs1"), ("RS256", "rs1")):
        sub = f"user-{pysecrets.token_hex(8)}"
        api = srv.client(idp.token(alg, kid, idp.claims(sub=sub)))
        text = new_text(f"jwt-{alg}")
        r_id = rid("jwt")
        ct = expect(api.post(f"/v1/keyrings/{kr}/encrypt", {"text": text},
                             headers={"X-Request-Id": r_id}), 200)["ciphertext"]
        assert api.decrypt(kr, ct)["text"] == text
        e = find_event(aud, audit_hash(aud, r_id), app=f"jwt:{ISS}")
        assert (e["op"], e["outcome"], e["app"]) == ("encrypt", "ok", f"jwt:{ISS}"), e
        assert hmacs(e, "sub") == [audit_hash(aud, sub)], f"the JWT sub is HMAC-ed: {e}"
        assert sub not in json.dumps(e), e
    assert len(all_events(aud, app=f"jwt:{ISS}")) >= 4


def _refusals(idp):
    now = int(time.time())
    rsa_pub_pem = idp.rsa_pub.read_bytes()
    good = idp.token()
    return {
        "alg none": idp.token("none", "hs1"),
        "alg none, no kid": idp.token("none", "hs1", header={"kid": None}),
        "alg NONE": idp.token("none", "hs1", header={"alg": "NONE"}),
        "typ not JWT": idp.token(header={"typ": "JWE"}),
        "HS256 keyed with the RS256 public key": idp.token("HS256", "rs1", hs_key=rsa_pub_pem),
        "unknown kid": idp.token("HS256", "hs9"),
        "wrong iss": idp.token(claims=idp.claims(iss="https://evil.test")),
        "wrong aud": idp.token(claims=idp.claims(aud="someone-else")),
        "expired": idp.token(claims=idp.claims(exp=now - 3600, iat=now - 7200, nbf=now - 7200)),
        "nbf in the future": idp.token(claims=idp.claims(nbf=now + 3600)),
        "no exp": idp.token(claims=idp.claims(exp=None)),
        "unmapped role": idp.token(claims=idp.claims(role="nobody")),
        "bad signature": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "RS256 token under the HS kid": idp.token("RS256", "hs1"),
    }


def test_jwt_refusals_401(jwt_server, idp):
    srv, kr = jwt_server, jwt_server.kr
    for what, tok in _refusals(idp).items():
        r = srv.client(tok).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"})
        assert r.status_code == 401, f"{what}: expected 401, got {r.status_code}: {r.text[:200]}"
        expect(r, 401, "unauthenticated")
    # the genuine token still works
    expect(srv.client(idp.token()).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)


def test_jwt_role_without_scope_403(jwt_server, idp):
    srv, kr = jwt_server, jwt_server.kr
    tok = idp.token(claims=idp.claims(role="auditor"))
    expect(srv.client(tok).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 403, "forbidden")
    expect(srv.client(tok).get("/v1/audit/verify"), 200)
    dify = idp.token(claims=idp.claims(role="dify-api"))
    expect(srv.client(dify).get("/v1/keyrings"), 403, "forbidden")
    expect(srv.client(dify).get("/v1/audit/events"), 403, "forbidden")


def test_jwt_not_accepted_without_config(server, idp):
    kr = server.create_keyring()
    expect(server.client(idp.token()).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 401,
           "unauthenticated")
