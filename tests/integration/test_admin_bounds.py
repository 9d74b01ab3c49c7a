# SPDX-License-Identifier: Apache-2.0
"""Admin scopes are bounded by the API key's keyring allow-list, scopes and expiry (issue 6,
finding 1). A `keyrings:admin` key restricted to some keyrings administers, lists and creates
only those; an `apps:admin` key issues, rotates and revokes only keys within its own scopes,
allow-list and expiry; the audit signing key changes only with a key without an allow-list.
Allow-list matches are exact ("tenant-42" does not grant "tenant-4")."""
import datetime

import pytest

from conftest import expect, new_text, register_api_key, uniq


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")


def forbidden(resp, what):
    """A 403 whose message names what refused: scope, allow-list or expiry."""
    body = expect(resp, 403, "forbidden")
    assert body["error"]["message"].startswith(what + ":"), body
    return body


def new_app(server):
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    return app


def listed(api):
    return {k["name"] for k in expect(api.get("/v1/keyrings"), 200)["keyrings"]}


# ---- keyrings:admin and the allow-list --------------------------------------------------------

def test_restricted_keyring_admin_cannot_touch_other_keyrings(server):
    a, b = server.create_keyring(), server.create_keyring()
    admin = server.admin
    api, _ = server.issue_key(["keyrings:admin"], keyrings=[a])
    ct = admin.encrypt(b, text=new_text("other-tenant"))["ciphertext"]

    forbidden(api.get(f"/v1/keyrings/{b}"), "allow-list")
    forbidden(api.patch(f"/v1/keyrings/{b}", {"deletion_allowed": True}), "allow-list")
    forbidden(api.post(f"/v1/keyrings/{b}/rotate", {}), "allow-list")
    expect(admin.patch(f"/v1/keyrings/{b}", {"deletion_allowed": True}), 200)
    forbidden(api.delete(f"/v1/keyrings/{b}"), "allow-list")
    # B is untouched: same version, still decrypts (no crypto-shredding of another tenant)
    kr = expect(admin.get(f"/v1/keyrings/{b}"), 200)
    assert kr["latest_version"] == 1, kr
    assert admin.decrypt(b, ct)["text"].startswith("pt-other-tenant-")
    # an unknown keyring outside the allow-list: 403 as well, nothing learned
    forbidden(api.get("/v1/keyrings/" + uniq("absent")), "allow-list")

    # its own keyring: every admin route works
    expect(api.get(f"/v1/keyrings/{a}"), 200)
    expect(api.post(f"/v1/keyrings/{a}/rotate", {}), 200)
    expect(api.patch(f"/v1/keyrings/{a}", {"deletion_allowed": True}), 200)
    expect(api.delete(f"/v1/keyrings/{a}"), 204)


def test_restricted_keyring_admin_lists_only_its_keyrings(server):
    a, b, c = server.create_keyring(), server.create_keyring(), server.create_keyring()
    api, _ = server.issue_key(["keyrings:admin"], keyrings=[a, c])
    assert listed(api) == {a, c}
    assert {a, b, c} <= listed(server.admin)
    unrestricted, _ = server.issue_key(["keyrings:admin"])
    assert {a, b, c} <= listed(unrestricted)


def test_restricted_keyring_admin_creates_only_allowed_names(server):
    mine, other = uniq("mine"), uniq("other")
    api, _ = server.issue_key(["keyrings:admin"], keyrings=[mine])
    forbidden(api.post("/v1/keyrings", {"name": other}), "allow-list")
    expect(server.admin.get(f"/v1/keyrings/{other}"), 404, "not_found")
    expect(api.post("/v1/keyrings", {"name": mine}), 201)
    # a bad body is still a 400, not a 403
    expect(api.post("/v1/keyrings", {"name": 5}), 400, "invalid_request")


def test_allow_list_match_is_exact(server):
    base = uniq("tenant")
    t42, t4, t420 = f"{base}-42", f"{base}-4", f"{base}-420"
    for name in (t42, t4, t420):
        server.create_keyring(name)
    api, _ = server.issue_key(["keyrings:admin", "encrypt"], keyrings=[t42])
    expect(api.get(f"/v1/keyrings/{t42}"), 200)
    for name in (t4, t420, base, f"{t42}x"):
        forbidden(api.get(f"/v1/keyrings/{name}"), "allow-list")
    forbidden(api.patch(f"/v1/keyrings/{t4}", {"deletion_allowed": True}), "allow-list")
    forbidden(api.post(f"/v1/keyrings/{t4}/rotate", {}), "allow-list")
    expect(api.post(f"/v1/keyrings/{t4}/encrypt", {"text": "x"}), 403, "forbidden")
    assert listed(api) == {t42}
    # and in key issuing: a minter for tenant-42 cannot grant tenant-4
    minter, _ = server.issue_key(["apps:admin", "encrypt"], keyrings=[t42])
    forbidden(minter.post(f"/v1/apps/{new_app(server)}/keys",
                          {"scopes": ["encrypt"], "keyrings": [t4]}), "allow-list")


def test_scope_refusal_names_the_scope(server):
    api, _ = server.issue_key(["encrypt"])
    forbidden(api.get("/v1/keyrings"), "scope")
    forbidden(api.patch(f"/v1/keyrings/{server.create_keyring()}", {}), "scope")
    forbidden(api.post(f"/v1/apps/{new_app(server)}/keys", {"scopes": ["encrypt"]}), "scope")


# ---- apps:admin: issuing keys -----------------------------------------------------------------

def test_restricted_minter_cannot_escalate(server):
    a, b = server.create_keyring(), server.create_keyring()
    minter, mobj = server.issue_key(["apps:admin", "encrypt"], keyrings=[a], expires_in="1h")
    app = new_app(server)
    keys = f"/v1/apps/{app}/keys"
    # the reported attack: a 365-day key with every scope for the admin app
    forbidden(minter.post("/v1/apps/admin/keys",
                          {"scopes": ["encrypt", "decrypt", "rewrap", "datakey",
                                      "datakey:plaintext", "keyrings:admin", "apps:admin",
                                      "audit:read"], "expires_in": "365d"}), "scope")
    forbidden(minter.post(keys, {"scopes": ["decrypt"], "keyrings": [a]}), "scope")
    forbidden(minter.post(keys, {"scopes": ["encrypt", "keyrings:admin"], "keyrings": [a],
                                 "expires_in": "30m"}), "scope")
    # no allow-list means every keyring: more than the minter has
    forbidden(minter.post(keys, {"scopes": ["encrypt"], "expires_in": "30m"}), "allow-list")
    forbidden(minter.post(keys, {"scopes": ["encrypt"], "keyrings": [b], "expires_in": "30m"}),
              "allow-list")
    forbidden(minter.post(keys, {"scopes": ["encrypt"], "keyrings": [a, b],
                                 "expires_in": "30m"}), "allow-list")
    # the default lifetime (90d) and anything past the minter's own hour
    forbidden(minter.post(keys, {"scopes": ["encrypt"], "keyrings": [a]}), "expiry")
    forbidden(minter.post(keys, {"scopes": ["encrypt"], "keyrings": [a], "expires_in": "2h"}),
              "expiry")
    assert expect(server.admin.get(keys), 200)["keys"] == [], "nothing was issued"

    # within its bounds: allowed, including passing on apps:admin itself
    ok = expect(minter.post(keys, {"scopes": ["encrypt"], "keyrings": [a],
                                   "expires_in": "30m"}), 201)
    register_api_key(ok["key"])
    assert ts(ok["expires_at"]) <= ts(mobj["expires_at"])
    sub = expect(minter.post(keys, {"scopes": ["apps:admin", "encrypt"], "keyrings": [a],
                                    "expires_in": 1800}), 201)
    register_api_key(sub["key"])
    server.client(ok["key"]).encrypt(a, text=new_text("bounded"))


def test_restricted_minter_rotates_and_revokes_only_within_bounds(server):
    a = server.create_keyring()
    app = new_app(server)
    minter, _ = server.issue_key(["apps:admin", "encrypt"], keyrings=[a], expires_in="1h")
    admin = server.admin
    strong = expect(admin.post(f"/v1/apps/{app}/keys",
                               {"scopes": ["encrypt", "decrypt", "apps:admin"]}), 201)
    register_api_key(strong["key"])
    long_lived = expect(admin.post(f"/v1/apps/{app}/keys",
                                   {"scopes": ["encrypt"], "keyrings": [a]}), 201)
    register_api_key(long_lived["key"])
    own = expect(minter.post(f"/v1/apps/{app}/keys",
                             {"scopes": ["encrypt"], "keyrings": [a], "expires_in": 600}), 201)
    register_api_key(own["key"])

    # rotating a more powerful key would hand its new text to the weaker caller
    forbidden(minter.post(f"/v1/apps/{app}/keys/{strong['id']}/rotate", {}), "scope")
    # a 90-day key rotated now would outlive the minter's hour
    forbidden(minter.post(f"/v1/apps/{app}/keys/{long_lived['id']}/rotate", {}), "expiry")
    rows = {k["id"]: k for k in expect(admin.get(f"/v1/apps/{app}/keys"), 200)["keys"]}
    assert rows[strong["id"]]["grace_until"] is None and len(rows) == 3, rows
    new = expect(minter.post(f"/v1/apps/{app}/keys/{own['id']}/rotate",
                             {"grace_period": "1m"}), 201)
    register_api_key(new["key"])

    forbidden(minter.delete(f"/v1/apps/{app}/keys/{strong['id']}"), "scope")
    expect(server.client(strong["key"]).get(f"/v1/apps/{app}/keys"), 200)
    expect(minter.delete(f"/v1/apps/{app}/keys/{new['id']}"), 204)
    # an allow-list-bound key may be revoked only by a minter covering its keyrings
    other = server.create_keyring()
    narrow, _ = server.issue_key(["apps:admin", "encrypt"], keyrings=[other])
    forbidden(narrow.delete(f"/v1/apps/{app}/keys/{long_lived['id']}"), "allow-list")
    expect(admin.delete(f"/v1/apps/{app}/keys/{long_lived['id']}"), 204)


def test_key_in_grace_is_bounded_by_its_grace_end(server):
    a = server.create_keyring()
    app = new_app(server)
    minter, mobj = server.issue_key(["apps:admin", "encrypt"], keyrings=[a], expires_in="90d")
    keys = f"/v1/apps/{app}/keys"
    rotated = expect(server.admin.post(f"/v1/apps/{mobj['app']}/keys/{mobj['id']}/rotate",
                                       {"grace_period": "1h"}), 201)
    register_api_key(rotated["key"])
    # still working for an hour: it may not mint anything that outlives that hour
    forbidden(minter.post(keys, {"scopes": ["encrypt"], "keyrings": [a], "expires_in": "2h"}),
              "expiry")
    k = expect(minter.post(keys, {"scopes": ["encrypt"], "keyrings": [a],
                                  "expires_in": "10m"}), 201)
    register_api_key(k["key"])


def test_unrestricted_admin_key_is_not_bounded(server):
    app = new_app(server)
    k = expect(server.admin.post(f"/v1/apps/{app}/keys",
                                 {"scopes": ["apps:admin", "keyrings:admin", "encrypt"],
                                  "expires_in": "365d"}), 201)
    register_api_key(k["key"])
    assert k["keyrings"] is None
    # a key holding every scope but an allow-list is restricted
    full, _ = server.issue_key(["encrypt", "decrypt", "rewrap", "datakey", "datakey:plaintext",
                                "keyrings:admin", "apps:admin", "audit:read", "certs:read",
                                "certs:write", "compliance:read"], keyrings=[uniq("kr")])
    forbidden(full.post(f"/v1/apps/{app}/keys", {"scopes": ["encrypt"]}), "allow-list")


# ---- global operations ------------------------------------------------------------------------

def test_audit_key_rotation_needs_a_key_without_allow_list(server):
    restricted, _ = server.issue_key(["audit:read", "keyrings:admin"],
                                     keyrings=[server.create_keyring()])
    before = expect(server.admin.get("/v1/audit/public-key"), 200)
    forbidden(restricted.post("/v1/audit/rotate-key"), "allow-list")
    assert expect(server.admin.get("/v1/audit/public-key"), 200) == before, "key unchanged"
