# SPDX-License-Identifier: Apache-2.0
"""API keys and apps: authentication, scopes, allow-lists, revocation, expiry."""
import datetime
import secrets
import zlib

import pytest

from conftest import expect, new_text, poll_until, register_api_key, uniq

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62_crc(text):
    v = zlib.crc32(text.encode())
    out = ""
    for _ in range(6):
        out = B62[v % 62] + out
        v //= 62
    return out


def make_key(key_id=None, secret=None):
    """A well-formed key text (valid checksum)."""
    key_id = key_id or "".join(secrets.choice(B62) for _ in range(16))
    secret = secret or "".join(secrets.choice(B62) for _ in range(43))
    body = "dgk_" + key_id + secret
    key = body + base62_crc(body)
    register_api_key(key)
    return key


def ts(s):
    return datetime.datetime.strptime(s.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------------------------------------
# apps

def test_apps_create_list_get(server):
    admin = server.admin
    name = uniq("app")
    app = expect(admin.post("/v1/apps", {"name": name, "description": "Dify api"}), 201)
    assert app["name"] == name and app["description"] == "Dify api"
    expect(admin.post("/v1/apps", {"name": name}), 409, "conflict")
    listing = expect(admin.get("/v1/apps"), 200)
    assert name in [a["name"] for a in listing["apps"]]
    got = expect(admin.get(f"/v1/apps/{name}"), 200)
    assert got == app
    expect(admin.get("/v1/apps/" + uniq("missing")), 404, "not_found")
    bare = expect(admin.post("/v1/apps", {"name": uniq("app")}), 201)
    assert bare["description"] is None      # none is null, never ""


@pytest.mark.parametrize("body", [{"name": "Bad Name"}, {}, {"name": 3},
                                  {"name": "ok-app", "extra": True},
                                  {"name": "ok-app", "description": 5}])
def test_apps_create_rejects_bad_fields(server, body):
    expect(server.admin.post("/v1/apps", body), 400, "invalid_request")


def test_apps_need_scope(server):
    api, _ = server.issue_key(["encrypt", "keyrings:admin"])
    expect(api.get("/v1/apps"), 403, "forbidden")
    expect(api.post("/v1/apps", {"name": uniq("app")}), 403, "forbidden")
    expect(api.get(f"/v1/apps/{uniq('x')}"), 403, "forbidden")


# ---------------------------------------------------------------------------------------------
# keys

def test_key_create(server):
    admin = server.admin
    app = uniq("app")
    expect(admin.post("/v1/apps", {"name": app}), 201)
    kr = server.create_keyring()
    obj = expect(admin.post(f"/v1/apps/{app}/keys",
                            {"scopes": ["encrypt", "decrypt"], "keyrings": [kr],
                             "expires_in": "30d"}), 201)
    register_api_key(obj["key"])
    assert obj["app"] == app and obj["scopes"] == ["encrypt", "decrypt"]
    assert obj["keyrings"] == [kr] and obj["revoked_at"] is None
    assert obj["key"].startswith("dgk_") and obj["key"][4:20] == obj["id"]
    assert base62_crc(obj["key"][:-6]) == obj["key"][-6:]
    life = ts(obj["expires_at"]) - ts(obj["created_at"])
    assert abs(life.total_seconds() - 30 * 86400) <= 5
    default = expect(admin.post(f"/v1/apps/{app}/keys", {"scopes": ["rewrap"]}), 201)
    register_api_key(default["key"])
    assert default["keyrings"] is None
    life = ts(default["expires_at"]) - ts(default["created_at"])
    assert abs(life.total_seconds() - 90 * 86400) <= 5
    assert default["key"] != obj["key"] and default["id"] != obj["id"]
    api = server.client(obj["key"])
    assert api.decrypt(kr, api.encrypt(kr, text=new_text("newkey"))["ciphertext"])


def test_key_list(server):
    admin = server.admin
    app = uniq("app")
    expect(admin.post("/v1/apps", {"name": app}), 201)
    a = expect(admin.post(f"/v1/apps/{app}/keys", {"scopes": ["encrypt"]}), 201)
    b = expect(admin.post(f"/v1/apps/{app}/keys", {"scopes": ["decrypt"], "keyrings": ["x1"]}),
               201)
    register_api_key(a["key"])
    register_api_key(b["key"])
    listing = expect(admin.get(f"/v1/apps/{app}/keys"), 200)
    by_id = {k["id"]: k for k in listing["keys"]}
    assert set(by_id) == {a["id"], b["id"]}
    assert all("key" not in k for k in listing["keys"])
    assert by_id[b["id"]]["keyrings"] == ["x1"] and by_id[a["id"]]["keyrings"] is None
    expect(admin.delete(f"/v1/apps/{app}/keys/{a['id']}"), 204)
    listing = expect(admin.get(f"/v1/apps/{app}/keys"), 200)
    revoked = [k for k in listing["keys"] if k["id"] == a["id"]][0]
    assert revoked["revoked_at"] is not None


def test_key_revocation_is_immediate(server):
    admin = server.admin
    app = uniq("app")
    expect(admin.post("/v1/apps", {"name": app}), 201)
    kr = server.create_keyring()
    obj = expect(admin.post(f"/v1/apps/{app}/keys", {"scopes": ["encrypt", "decrypt"]}), 201)
    other = expect(admin.post(f"/v1/apps/{app}/keys", {"scopes": ["rewrap"]}), 201)
    register_api_key(obj["key"])
    register_api_key(other["key"])
    api = server.client(obj["key"])
    ct = api.encrypt(kr, text=new_text("revoke"))["ciphertext"]
    r = admin.delete(f"/v1/apps/{app}/keys/{obj['id']}")
    expect(r, 204)
    assert r.content == b""
    # the very next request is refused: no cache grace period
    expect(api.post(f"/v1/keyrings/{kr}/decrypt", {"ciphertext": ct}), 401, "unauthenticated")
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 401, "unauthenticated")
    expect(admin.delete(f"/v1/apps/{app}/keys/" + "Z" * 16), 404, "not_found")
    expect(admin.delete(f"/v1/apps/{uniq('none')}/keys/{other['id']}"), 404, "not_found")
    # the app's other key still works
    expect(server.client(other["key"]).post(f"/v1/keyrings/{kr}/rewrap", {"ciphertext": ct}),
           200)


def test_key_for_unknown_app_404(server):
    expect(server.admin.post(f"/v1/apps/{uniq('none')}/keys", {"scopes": ["encrypt"]}), 404,
           "not_found")
    expect(server.admin.get(f"/v1/apps/{uniq('none')}/keys"), 404, "not_found")


@pytest.mark.parametrize("body", [
    {"scopes": []}, {"scopes": ["encrypt", "fly"]}, {"scopes": "encrypt"}, {},
    {"scopes": ["encrypt"], "expires_in": "366d"}, {"scopes": ["encrypt"], "expires_in": "0s"},
    {"scopes": ["encrypt"], "expires_in": "later"}, {"scopes": ["encrypt"], "expires_in": -1},
    {"scopes": ["encrypt"], "keyrings": "all"}, {"scopes": ["encrypt"], "keyrings": ["Bad Name"]},
    {"scopes": ["encrypt"], "other": 1},
])
def test_key_create_rejects_bad_fields(server, body):
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    expect(server.admin.post(f"/v1/apps/{app}/keys", body), 400, "invalid_request")


def test_key_max_lifetime_365d_accepted(server):
    api, obj = server.issue_key(["encrypt"], expires_in="365d")
    life = ts(obj["expires_at"]) - ts(obj["created_at"])
    assert abs(life.total_seconds() - 365 * 86400) <= 5
    _, obj2 = server.issue_key(["encrypt"], expires_in=3600)
    assert abs((ts(obj2["expires_at"]) - ts(obj2["created_at"])).total_seconds() - 3600) <= 5


def test_missing_or_malformed_key_401(server):
    api = server.client()
    expect(api.get("/v1/keyrings"), 401, "unauthenticated")
    for bad in ["", "Bearer", "dgk_", "not-a-key", "dgk_" + "a" * 65, "dgk_" + "!" * 65]:
        expect(api.get("/v1/keyrings", headers={"Authorization": f"Bearer {bad}"}), 401,
               "unauthenticated")
    expect(api.get("/v1/keyrings", headers={"Authorization": f"Basic {server.admin_key}"}), 401,
           "unauthenticated")


def test_altered_key_401(server):
    key = server.admin_key
    # change one character anywhere (prefix excluded): checksum or secret no longer match
    for pos in (4, 12, 20, 40, len(key) - 7, len(key) - 1):
        c = key[pos]
        repl = "A" if c != "A" else "B"
        bad = key[:pos] + repl + key[pos + 1:]
        expect(server.client(bad).get("/v1/keyrings"), 401, "unauthenticated")
    expect(server.client(key + "x").get("/v1/keyrings"), 401, "unauthenticated")
    expect(server.client(key[:-1]).get("/v1/keyrings"), 401, "unauthenticated")
    expect(server.admin.get("/v1/keyrings"), 200)


def test_well_formed_unknown_key_401(server):
    expect(server.client(make_key()).get("/v1/keyrings"), 401, "unauthenticated")
    # a known id with another secret and a valid checksum
    real = server.admin_key
    forged = make_key(key_id=real[4:20])
    assert forged != real
    expect(server.client(forged).get("/v1/keyrings"), 401, "unauthenticated")


def test_wrong_scope_403(server):
    kr = server.create_keyring()
    enc_only, _ = server.issue_key(["encrypt"])
    ct = enc_only.encrypt(kr, text=new_text("scope"))["ciphertext"]
    expect(enc_only.post(f"/v1/keyrings/{kr}/decrypt", {"ciphertext": ct}), 403, "forbidden")
    expect(enc_only.post(f"/v1/keyrings/{kr}/rewrap", {"ciphertext": ct}), 403, "forbidden")
    expect(enc_only.post(f"/v1/keyrings/{kr}/datakey", {}), 403, "forbidden")
    dec_only, _ = server.issue_key(["decrypt"])
    expect(dec_only.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 403, "forbidden")
    expect(dec_only.post(f"/v1/keyrings/{kr}/encrypt", {"items": [{"text": "x"}]}), 403,
           "forbidden")
    assert dec_only.decrypt(kr, ct)["text"].startswith("pt-scope-")


def test_keyring_outside_allow_list_403(server):
    a = server.create_keyring()
    b = server.create_keyring()
    api, obj = server.issue_key(["encrypt", "decrypt", "rewrap", "datakey"], keyrings=[a])
    assert obj["keyrings"] == [a]
    ct = api.encrypt(a, text=new_text("allow"))["ciphertext"]
    expect(api.post(f"/v1/keyrings/{b}/encrypt", {"text": "x"}), 403, "forbidden")
    expect(api.post(f"/v1/keyrings/{b}/decrypt", {"ciphertext": ct}), 403, "forbidden")
    expect(api.post(f"/v1/keyrings/{b}/rewrap", {"ciphertext": ct}), 403, "forbidden")
    expect(api.post(f"/v1/keyrings/{b}/datakey", {}), 403, "forbidden")
    expect(api.get(f"/v1/keyrings/{b}"), 403, "forbidden")
    # an unknown keyring outside the allow-list reveals nothing either
    expect(api.post("/v1/keyrings/not-there-at-all/encrypt", {"text": "x"}), 403, "forbidden")
    expect(api.get(f"/v1/keyrings/{a}"), 200)


def test_expired_key_becomes_401(server):
    kr = server.create_keyring()
    api, obj = server.issue_key(["encrypt"], expires_in="1s")
    life = ts(obj["expires_at"]) - ts(obj["created_at"])
    assert life.total_seconds() <= 2

    def refused():
        r = api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"})
        if r.status_code == 200:
            return False
        expect(r, 401, "unauthenticated")
        return True

    poll_until(refused, deadline=30, interval=0.25, what="expired key refused with 401")
