# SPDX-License-Identifier: Apache-2.0
"""Every column under a row MAC, edited in the database one at a time (issue 15). SECURITY.md
("Integrity of stored rows", "API keys"): keyring, key-version, API-key and app rows carry an
HMAC-SHA256 over every security-relevant column; a row changed behind the service's back (scopes
widened, expiry extended, deletion_allowed flipped, a wrapped key swapped, ...) is refused and
logged, requests that need it get 500 integrity_failure, and other rows keep working.

Each victim row gets exactly one edit (or one documented swap), with the service stopped, and
the next start must refuse it -- in a way that fails when that column is left out of its MAC
(server/apps.c apikey_mac and app_mac, server/keyrings.c keyring_mac and version_mac): each check
is one that would pass without the MAC (a changed key id or hash would fail the key's own hash
check with 401, not 500; rotating a key needs no key text; reading a keyring unwraps no KEK)."""
import sqlite3
import time

import pytest

from conftest import CRYPTO_SCOPES, SECRETS, expect, new_text, uniq
from test_audit import make_key

DAY = 86400


def sql(db, *stmts):
    con = sqlite3.connect(db, timeout=30)
    try:
        out = [con.execute(*s) if isinstance(s, tuple) else con.execute(s) for s in stmts]
        assert all(c.rowcount != 0 for c in out), stmts
        con.commit()
    finally:
        con.close()


def one(db, query, params=()):
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(query, params).fetchone()
    finally:
        con.close()


def refused_500(r):
    expect(r, 500, "integrity_failure")


# ----------------------------------------------------------------------------------------------
# API-key rows: apikey_mac binds id, app, hash, scopes, keyrings, created_at, expires_at,
# revoked_at, rate, burst and grace_until (SECURITY.md "API keys"); last_used_at is outside.

API_KEY_EDITS = ["id", "app_id", "hash", "scopes", "keyrings", "created_at", "expires_at",
                 "revoked_at", "rate", "burst", "grace_until"]


def new_key(srv, app, **body):
    body.setdefault("scopes", ["encrypt"])
    obj = expect(srv.admin.post(f"/v1/apps/{app}/keys", body), 201)
    SECRETS.add(obj["key"], "API key")
    SECRETS.add(obj["key"][20:63], "API key secret part")
    return obj


@pytest.fixture(scope="module")
def key_rows(tmp_path_factory):
    """One server; a victim key per MAC'd column (plus a control with last_used_at edited), each
    edited once while the service is stopped, then the service started again."""
    from conftest import DataDir, Server
    dd = DataDir(tmp_path_factory.mktemp("keyrows"))
    srv = Server(dd.path, admin_key=dd.admin_key)
    srv.datadir = dd
    srv.start()
    kr, kr2 = srv.create_keyring(), srv.create_keyring()
    app, other_app = uniq("app"), uniq("app")
    for a in (app, other_app):
        expect(srv.admin.post("/v1/apps", {"name": a}), 201)
    victims = {}
    for col in API_KEY_EDITS + ["last_used_at", "bystander"]:
        victims[col] = new_key(srv, app, keyrings=[kr], rate=1, burst=1)
    expect(srv.admin.delete(f"/v1/apps/{app}/keys/{victims['revoked_at']['id']}"), 204)
    for col, k in victims.items():      # each (but the revoked one) works before the edit
        r = srv.client(k["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"})
        expect(r, 401 if col == "revoked_at" else 200)
        time.sleep(1.05)                # rate 1/s, burst 1: one request per key per second
    srv.stop()

    db, now = dd.db, int(time.time())
    new_id = "".join(reversed(victims["id"]["id"]))
    bystander_hash = one(db, "SELECT hash FROM api_keys WHERE id = ?",
                         (victims["bystander"]["id"],))[0]
    other_app_id = one(db, "SELECT id FROM apps WHERE name = ?", (other_app,))[0]
    edits = {
        "id": ("id", new_id),
        "app_id": ("app_id", other_app_id),                         # the key moved to another app
        "hash": ("hash", bystander_hash),                           # another key's hash copied
        "scopes": ("scopes", "encrypt decrypt keyrings:admin apps:admin audit:read"),
        "keyrings": ("keyrings", f"{kr} {kr2}"),                   # allow-list widened
        "created_at": ("created_at", now - 30 * DAY),
        "expires_at": ("expires_at", now + 3000 * DAY),             # expiry extended
        "revoked_at": ("revoked_at", None),                         # revocation undone
        "rate": ("rate", 0),                                        # rate limit lifted
        "burst": ("burst", 1000000),
        "grace_until": ("grace_until", now + 300 * DAY),
        "last_used_at": ("last_used_at", now - 5 * DAY),            # outside the MAC: harmless
    }
    for victim, (col, value) in edits.items():
        sql(db, (f"UPDATE api_keys SET {col} = ? WHERE id = ?", (value, victims[victim]["id"])))
    victims["id"]["moved_to"] = new_id
    srv.start()
    yield {"srv": srv, "victims": victims, "kr": kr, "kr2": kr2, "app": app}
    srv.stop()


@pytest.mark.parametrize("column", API_KEY_EDITS)
def test_edited_api_key_column_is_refused(key_rows, column):
    """Guarantee: an API-key row with any MAC'd column edited no longer authenticates, and the
    service refuses to rotate it (500 integrity_failure, logged api_key_integrity_failure)."""
    srv, v, kr = key_rows["srv"], key_rows["victims"][column], key_rows["kr"]
    key_id = v.get("moved_to", v["id"])
    text = v["key"]
    if column == "id":
        text = make_key(key_id=key_id, secret=v["key"][20:63])     # the key under its new id
    api = srv.client(text)
    # (a changed id or hash would also fail the key's own hash check, with 401: the row's MAC is
    # checked first, so 500 says the MAC refused it; rotating it below needs no key text)
    refused_500(api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}))
    refused_500(api.post(f"/v1/keyrings/{key_rows['kr2']}/encrypt", {"text": "x"}))
    refused_500(api.get("/v1/apps"))
    # rotating the row (admin) reads it through its MAC too: refused, nothing issued
    refused_500(srv.admin.post(f"/v1/apps/{key_rows['app']}/keys/{key_id}/rotate",
                               {"grace_period": "1h"}))
    assert f'"key_id":"{key_id}"' in srv.stdout() and "api_key_integrity_failure" in srv.stdout()


def test_api_key_columns_outside_the_mac_and_bystanders(key_rows):
    """last_used_at is outside the MAC (SECURITY.md): editing it is harmless. Other keys keep
    working while their neighbours are refused."""
    srv, kr = key_rows["srv"], key_rows["kr"]
    for name in ("last_used_at", "bystander"):
        expect(srv.client(key_rows["victims"][name]["key"]).post(
            f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    expect(srv.admin.get(f"/v1/apps/{key_rows['app']}/keys"), 200)


# ----------------------------------------------------------------------------------------------
# app rows: app_mac binds id, name and created_at; the description is outside.

APP_EDITS = ["id", "name", "created_at"]


def test_edited_app_columns_are_refused(start_server):
    """Guarantee: an app row with its id, name or created_at edited is refused (500
    integrity_failure for reading it and for its keys), left out of listings and logged
    app_integrity_failure; its description is outside the MAC."""
    srv = start_server()
    kr = srv.create_keyring()
    apps, keys = {}, {}
    for col in APP_EDITS + ["description", "bystander"]:
        apps[col] = uniq("app")
        expect(srv.admin.post("/v1/apps", {"name": apps[col], "description": "d"}), 201)
        keys[col] = new_key(srv, apps[col], keyrings=[kr])
    srv.stop()
    db = srv.datadir.db
    renamed = uniq("renamed")
    sql(db, ("UPDATE apps SET id = id + 100000 WHERE name = ?", (apps["id"],)),
        ("UPDATE apps SET name = ? WHERE name = ?", (renamed, apps["name"])),
        ("UPDATE apps SET created_at = created_at - 1000 WHERE name = ?", (apps["created_at"],)),
        ("UPDATE apps SET description = 'edited' WHERE name = ?", (apps["description"],)))
    # the id edit is carried into the app's key rows too (an attacker keeps them attached)
    sql(db, ("UPDATE api_keys SET app_id = app_id + 100000 WHERE id = ?", (keys["id"]["id"],)))
    apps["name"] = renamed
    srv.start()
    listed = {a["name"] for a in expect(srv.admin.get("/v1/apps"), 200)["apps"]}
    for col in APP_EDITS:
        name = apps[col]
        refused_500(srv.admin.get(f"/v1/apps/{name}"))
        refused_500(srv.admin.get(f"/v1/apps/{name}/keys"))
        refused_500(srv.client(keys[col]["key"]).post(f"/v1/keyrings/{kr}/encrypt",
                                                      {"text": "x"}))
        assert name not in listed, (col, listed)
        assert f'"app":"{name}"' in srv.stdout(), col
    assert "app_integrity_failure" in srv.stdout()
    for col in ("description", "bystander"):
        assert expect(srv.admin.get(f"/v1/apps/{apps[col]}"), 200)["name"] == apps[col]
        expect(srv.client(keys[col]["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}),
               200)
        assert apps[col] in listed


# ----------------------------------------------------------------------------------------------
# keyring and key-version rows: keyring_mac binds name, algorithm, deterministic,
# rotation_period, deletion_allowed, latest_version, min_decryption_version,
# min_encryption_version, created_at, updated_at and rotated_at; version_mac binds the
# keyring's name, version, root_key_id, wrapped, created_at and encryptions_reserved.

KEYRING_EDITS = ["name", "name_swapped", "algorithm", "deterministic", "rotation_period", "deletion_allowed",
                 "latest_version", "min_decryption_version", "min_encryption_version",
                 "created_at", "updated_at", "rotated_at"]
VERSION_EDITS = ["version", "root_key_id", "wrapped", "wrapped_across_keyrings", "created_at",
                 "encryptions_reserved", "keyring_id"]


@pytest.fixture(scope="module")
def keyring_rows(tmp_path_factory):
    from conftest import DataDir, Server
    dd = DataDir(tmp_path_factory.mktemp("krrows"))
    srv = Server(dd.path, admin_key=dd.admin_key)
    srv.datadir = dd
    srv.start()
    api, key = srv.issue_key(CRYPTO_SCOPES)
    names = {}
    for col in ["kr:" + c for c in KEYRING_EDITS] + ["kv:" + c for c in VERSION_EDITS] + [
            "kr:name_swapped/peer", "kv:wrapped_across_keyrings/peer", "kv:keyring_id/peer",
            "bystander"]:
        names[col] = srv.create_keyring(deletion_allowed=col == "kr:name_swapped")
        api.encrypt(names[col], text=new_text("row"))          # reserves a block of v1
        expect(srv.admin.post(f"/v1/keyrings/{names[col]}/rotate", {}), 200)
    expect(srv.admin.patch(f"/v1/keyrings/{names['kr:min_decryption_version']}",
                           {"min_decryption_version": 2, "min_encryption_version": 2}), 200)
    expect(srv.admin.patch(f"/v1/keyrings/{names['kr:min_encryption_version']}",
                           {"min_encryption_version": 2}), 200)   # version 1 retired
    text = new_text("bystander")
    by_ct = api.encrypt(names["bystander"], text=text)["ciphertext"]
    srv.stop()

    db, renamed = dd.db, uniq("renamed")

    def kid(col):
        return one(db, "SELECT id FROM keyrings WHERE name = ?", (names[col],))[0]

    def kv(col, v, field="wrapped"):
        return one(db, f"SELECT {field} FROM key_versions WHERE keyring_id = ? AND version = ?",
                   (kid(col), v))[0]

    sql(db, ("UPDATE keyrings SET name = ? WHERE name = ?", (renamed, names["kr:name"])),
        ("UPDATE keyrings SET algorithm = 'xchacha20-poly1305' WHERE name = ?",
         (names["kr:algorithm"],)),
        ("UPDATE keyrings SET deterministic = 1 WHERE name = ?", (names["kr:deterministic"],)),
        ("UPDATE keyrings SET rotation_period = 3600 WHERE name = ?",
         (names["kr:rotation_period"],)),
        ("UPDATE keyrings SET deletion_allowed = 1 WHERE name = ?",
         (names["kr:deletion_allowed"],)),
        # rolled back to version 1: the newest version row goes too, so the count still fits
        ("DELETE FROM key_versions WHERE keyring_id = ? AND version = 2",
         (kid("kr:latest_version"),)),
        ("UPDATE keyrings SET latest_version = 1 WHERE name = ?", (names["kr:latest_version"],)),
        ("UPDATE keyrings SET min_decryption_version = 1 WHERE name = ?",   # retired v1 back
         (names["kr:min_decryption_version"],)),
        ("UPDATE keyrings SET min_encryption_version = 1 WHERE name = ?",
         (names["kr:min_encryption_version"],)),
        *[(f"UPDATE keyrings SET {c} = {c} - 1000 WHERE name = ?", (names["kr:" + c],))
          for c in ("created_at", "updated_at", "rotated_at")])
    # two keyrings trade names and take each other's key versions along: every version row still
    # matches its keyring's name, so only the keyring row's MAC over its name can tell that the
    # settings (deletion_allowed here) now sit on the other keyring's keys
    a, b = names["kr:name_swapped"], names["kr:name_swapped/peer"]
    ka, kb = kid("kr:name_swapped"), kid("kr:name_swapped/peer")
    sql(db, ("UPDATE keyrings SET name = 'swap-tmp' WHERE name = ?", (a,)),
        ("UPDATE keyrings SET name = ? WHERE name = ?", (a, b)),
        ("UPDATE keyrings SET name = ? WHERE name = 'swap-tmp'", (b,)),
        ("UPDATE key_versions SET keyring_id = -1 WHERE keyring_id = ?", (ka,)),
        ("UPDATE key_versions SET keyring_id = ? WHERE keyring_id = ?", (ka, kb)),
        ("UPDATE key_versions SET keyring_id = ? WHERE keyring_id = -1", (kb,)))
    # key versions: version numbers 1 and 2 traded (their wrapped keys trade places)
    k = kid("kv:version")
    sql(db, ("UPDATE key_versions SET version = 3 WHERE keyring_id = ? AND version = 1", (k,)),
        ("UPDATE key_versions SET version = 1 WHERE keyring_id = ? AND version = 2", (k,)),
        ("UPDATE key_versions SET version = 2 WHERE keyring_id = ? AND version = 3", (k,)))
    sql(db, ("UPDATE key_versions SET root_key_id = '0123456789abcdef' WHERE keyring_id = ? "
             "AND version = 1", (kid("kv:root_key_id"),)))
    # "a wrapped key swapped": v1 and v2 of one keyring, and v1 of two keyrings
    w1, w2 = kv("kv:wrapped", 1), kv("kv:wrapped", 2)
    sql(db, ("UPDATE key_versions SET wrapped = ? WHERE keyring_id = ? AND version = 1",
             (w2, kid("kv:wrapped"))),
        ("UPDATE key_versions SET wrapped = ? WHERE keyring_id = ? AND version = 2",
         (w1, kid("kv:wrapped"))))
    a, b = "kv:wrapped_across_keyrings", "kv:wrapped_across_keyrings/peer"
    wa, wb = kv(a, 1), kv(b, 1)
    sql(db, ("UPDATE key_versions SET wrapped = ? WHERE keyring_id = ? AND version = 1",
             (wb, kid(a))),
        ("UPDATE key_versions SET wrapped = ? WHERE keyring_id = ? AND version = 1", (wa, kid(b))))
    sql(db, ("UPDATE key_versions SET created_at = created_at - 1000 WHERE keyring_id = ? AND "
             "version = 1", (kid("kv:created_at"),)))
    assert kv("kv:encryptions_reserved", 1, "encryptions_reserved") > 0
    sql(db, ("UPDATE key_versions SET encryptions_reserved = 0 WHERE keyring_id = ? AND "
             "version = 1", (kid("kv:encryptions_reserved"),)))           # counts rolled back
    # whole version rows moved between two keyrings
    a, b = "kv:keyring_id", "kv:keyring_id/peer"
    ka, kb = kid(a), kid(b)
    sql(db, ("UPDATE key_versions SET keyring_id = -1 WHERE keyring_id = ? AND version = 1", (ka,)),
        ("UPDATE key_versions SET keyring_id = ? WHERE keyring_id = ? AND version = 1", (ka, kb)),
        ("UPDATE key_versions SET keyring_id = ? WHERE keyring_id = -1 AND version = 1", (kb,)))
    names["kr:name"] = renamed
    srv.start()
    yield {"srv": srv, "names": names, "api": srv.client(key["key"]), "by_ct": by_ct,
           "by_text": text}
    srv.stop()


def keyring_refused(rows, name):
    srv = rows["srv"]
    refused_500(srv.admin.get(f"/v1/keyrings/{name}"))
    refused_500(rows["api"].post(f"/v1/keyrings/{name}/encrypt", {"text": "x"}))
    refused_500(srv.admin.post(f"/v1/keyrings/{name}/rotate", {}))
    refused_500(srv.admin.delete(f"/v1/keyrings/{name}"))
    logged = [ln for ln in srv.stdout().splitlines() if "keyring_integrity_failure" in ln]
    assert any(f'"keyring":"{name}"' in ln for ln in logged), (name, logged[-5:])


@pytest.mark.parametrize("column", KEYRING_EDITS)
def test_edited_keyring_column_is_refused(keyring_rows, column):
    """Guarantee: a keyring row with any MAC'd column edited (deletion_allowed flipped, a
    retired version re-enabled, the latest version rolled back, ...) is refused: reading,
    encrypting, rotating and deleting it answer 500 integrity_failure, and it is logged."""
    keyring_refused(keyring_rows, keyring_rows["names"]["kr:" + column])
    if column == "name_swapped":
        keyring_refused(keyring_rows, keyring_rows["names"]["kr:name_swapped/peer"])


@pytest.mark.parametrize("column", VERSION_EDITS)
def test_edited_key_version_column_is_refused(keyring_rows, column):
    """Guarantee: a key-version row with any MAC'd column edited, a wrapped key swapped between
    versions or keyrings, or version rows moved to another keyring, makes its keyring refused
    (500 integrity_failure), before any KEK is unwrapped."""
    names = keyring_rows["names"]
    keyring_refused(keyring_rows, names["kv:" + column])
    if column in ("wrapped_across_keyrings", "keyring_id"):
        keyring_refused(keyring_rows, names[f"kv:{column}/peer"])


def test_other_keyrings_keep_working(keyring_rows):
    api, names = keyring_rows["api"], keyring_rows["names"]
    assert api.decrypt(names["bystander"], keyring_rows["by_ct"])["text"] == keyring_rows["by_text"]
    expect(keyring_rows["srv"].admin.get(f"/v1/keyrings/{names['bystander']}"), 200)
    listed = {k["name"] for k in expect(keyring_rows["srv"].admin.get("/v1/keyrings"),
                                        200)["keyrings"]}
    assert names["bystander"] in listed
