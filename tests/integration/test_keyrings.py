# SPDX-License-Identifier: Apache-2.0
"""Keyring administration: create, list, get, rotate, patch, delete (crypto-shredding)."""
import pytest

from conftest import expect, new_text, uniq


def test_create_defaults(server):
    name = uniq("kr")
    kr = expect(server.admin.post("/v1/keyrings", {"name": name}), 201)
    assert kr["name"] == name
    assert kr["algorithm"] == "aes-256-gcm"
    assert kr["deterministic"] is False
    assert kr["rotation_period"] == 90 * 86400
    assert kr["deletion_allowed"] is False
    assert kr["latest_version"] == 1
    assert kr["min_decryption_version"] == 1 and kr["min_encryption_version"] == 0  # 0 = latest
    assert kr["next_rotation_at"] is not None
    assert [v["version"] for v in kr["versions"]] == [1]
    assert kr["versions"][0]["encryptions"] == 0
    assert kr["versions"][0]["root_key_id"] == server.datadir.info["root_key_id"]


def test_create_deterministic_and_xchacha(server):
    det = expect(server.admin.post("/v1/keyrings", {"name": uniq("det"), "deterministic": True}),
                 201)
    assert det["deterministic"] is True and det["algorithm"] == "aes-256-siv"
    assert det["rotation_period"] == 0 and det["next_rotation_at"] is None
    xc = expect(server.admin.post("/v1/keyrings", {
        "name": uniq("xc"), "algorithm": "xchacha20-poly1305", "rotation_period": "12h",
        "deletion_allowed": True}), 201)
    assert xc["algorithm"] == "xchacha20-poly1305"
    assert xc["rotation_period"] == 12 * 3600 and xc["deletion_allowed"] is True
    off = expect(server.admin.post("/v1/keyrings", {"name": uniq("off"), "rotation_period": 0}),
                 201)
    assert off["rotation_period"] == 0 and off["next_rotation_at"] is None


def test_create_duplicate_is_409(server):
    name = server.create_keyring()
    expect(server.admin.post("/v1/keyrings", {"name": name}), 409, "conflict")


@pytest.mark.parametrize("body", [
    {"name": "Upper"}, {"name": "-lead"}, {"name": ""}, {"name": "a" * 64}, {"name": "sp ace"},
    {"name": "ok-name", "unknown_field": 1}, {"name": 7}, {},
    {"name": "ok-name", "algorithm": "rot13"},
    {"name": "ok-name", "rotation_period": "10m"},        # below 1h
    {"name": "ok-name", "rotation_period": -5},
    {"name": "ok-name", "rotation_period": "soon"},
    {"name": "ok-name", "deletion_allowed": "yes"},
    {"name": "ok-name", "deterministic": True, "algorithm": "aes-256-gcm"},
])
def test_create_rejects_bad_fields(server, body):
    expect(server.admin.post("/v1/keyrings", body), 400, "invalid_request")


def test_list_and_get(server):
    a = server.create_keyring()
    b = server.create_keyring()
    listing = expect(server.admin.get("/v1/keyrings"), 200)
    names = [k["name"] for k in listing["keyrings"]]
    assert a in names and b in names
    one = expect(server.admin.get(f"/v1/keyrings/{a}"), 200)
    assert one["name"] == a
    expect(server.admin.get("/v1/keyrings/" + uniq("missing")), 404, "not_found")


def test_rotate_adds_a_version(server):
    name = server.create_keyring()
    kr = expect(server.admin.post(f"/v1/keyrings/{name}/rotate"), 200)
    assert kr["latest_version"] == 2
    assert [v["version"] for v in kr["versions"]] == [1, 2]
    kr = expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    assert kr["latest_version"] == 3
    expect(server.admin.post("/v1/keyrings/" + uniq("missing") + "/rotate", {}), 404,
           "not_found")


def test_encryptions_are_counted(server, crypto):
    name = server.create_keyring()
    for _ in range(3):
        crypto.encrypt(name, text=new_text("count"))
    kr = expect(server.admin.get(f"/v1/keyrings/{name}"), 200)
    # a durable upper bound: at least what was done, never above the limit
    assert 3 <= kr["versions"][0]["encryptions"] <= kr["versions"][0]["encryption_limit"]


def test_patch(server):
    name = server.create_keyring()
    admin = server.admin
    expect(admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    kr = expect(admin.patch(f"/v1/keyrings/{name}", {"rotation_period": "30d",
                                                      "deletion_allowed": True}), 200)
    assert kr["rotation_period"] == 30 * 86400 and kr["deletion_allowed"] is True
    kr = expect(admin.patch(f"/v1/keyrings/{name}", {"min_decryption_version": 2,
                                                      "min_encryption_version": 2}), 200)
    assert kr["min_decryption_version"] == 2 and kr["min_encryption_version"] == 2
    expect(admin.patch("/v1/keyrings/" + uniq("missing"), {"deletion_allowed": True}), 404,
           "not_found")


@pytest.mark.parametrize("body", [
    {"min_decryption_version": 0},
    {"min_decryption_version": 3},                          # above latest (2)
    {"min_encryption_version": 3},
    {"min_decryption_version": 2, "min_encryption_version": 1},  # min_encryption below it
    {"min_encryption_version": -1},
    {"rotation_period": "5m"},
    {"deletion_allowed": 1},
    {"latest_version": 5},                                  # not patchable
    {"min_decryption_version": "1"},
])
def test_patch_rejects_bad_fields(server, body):
    name = server.create_keyring()
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    expect(server.admin.patch(f"/v1/keyrings/{name}", body), 400, "invalid_request")


def test_delete_needs_deletion_allowed_then_shreds(server, crypto):
    admin = server.admin
    name = server.create_keyring()
    text = new_text("shred")
    ct = crypto.encrypt(name, text=text)["ciphertext"]
    expect(admin.delete(f"/v1/keyrings/{name}"), 409, "conflict")
    assert crypto.decrypt(name, ct)["text"] == text            # still there
    expect(admin.patch(f"/v1/keyrings/{name}", {"deletion_allowed": True}), 200)
    r = admin.delete(f"/v1/keyrings/{name}")
    expect(r, 204)
    assert r.content == b""
    expect(admin.get(f"/v1/keyrings/{name}"), 404, "not_found")
    expect(crypto.post(f"/v1/keyrings/{name}/decrypt", {"ciphertext": ct}), 404, "not_found")
    expect(admin.delete(f"/v1/keyrings/{name}"), 404, "not_found")
    # a new keyring of the same name has new keys: the old ciphertext is gone for good
    server.create_keyring(name)
    expect(crypto.post(f"/v1/keyrings/{name}/decrypt", {"ciphertext": ct}), 422,
           "decryption_failed")


def test_keyring_admin_needs_scope(server):
    api, _ = server.issue_key(["encrypt", "decrypt"])
    expect(api.post("/v1/keyrings", {"name": uniq("kr")}), 403, "forbidden")
    expect(api.get("/v1/keyrings"), 403, "forbidden")
    name = server.create_keyring()
    expect(api.post(f"/v1/keyrings/{name}/rotate", {}), 403, "forbidden")
    expect(api.patch(f"/v1/keyrings/{name}", {"deletion_allowed": True}), 403, "forbidden")
    expect(api.delete(f"/v1/keyrings/{name}"), 403, "forbidden")
    # GET one: any crypto scope that covers the keyring
    expect(api.get(f"/v1/keyrings/{name}"), 200)
    limited, _ = server.issue_key(["encrypt"], keyrings=[server.create_keyring()])
    expect(limited.get(f"/v1/keyrings/{name}"), 403, "forbidden")


def test_automatic_rotation_at_90_percent_of_bound(start_server):
    from conftest import CRYPTO_SCOPES, poll_until
    srv = start_server(args=["--kek-max-encryptions", "10"])
    name = srv.create_keyring()
    kr = expect(srv.admin.get(f"/v1/keyrings/{name}"), 200)
    assert kr["versions"][0]["encryption_limit"] == 10
    api, _ = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("bound")
    cts = [api.encrypt(name, text=text)["ciphertext"] for _ in range(9)]

    def rotated():
        return expect(srv.admin.get(f"/v1/keyrings/{name}"), 200)["latest_version"] >= 2

    poll_until(rotated, what="rotation at 90% of the KEK bound")
    assert api.encrypt(name, text=text)["key_version"] >= 2
    # version 1 never exceeds its bound: explicit use stops with key_version_disabled
    v1_ok = sum(1 for c in cts if c.startswith("dg:v1:"))
    refused = False
    for _ in range(5):
        r = api.post(f"/v1/keyrings/{name}/encrypt", {"text": text, "key_version": 1})
        if r.status_code == 200:
            v1_ok += 1
            continue
        expect(r, 422, "key_version_disabled")
        refused = True
        break
    assert refused and v1_ok <= 10, v1_ok
    for c in cts:
        assert api.decrypt(name, c)["text"] == text
