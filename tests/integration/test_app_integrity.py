# SPDX-License-Identifier: Apache-2.0
"""App rows carry a row MAC (security review, issue 6, finding 6): an app row altered in the
database (two names swapped, so one app's keys would act as the other) is refused and logged;
rows from before migration 0003 get their MAC on the first start after it."""
import sqlite3

from conftest import CRYPTO_SCOPES, expect, uniq


def sql(db, *stmts):
    con = sqlite3.connect(db, timeout=30)
    try:
        for s in stmts:
            con.execute(*s) if isinstance(s, tuple) else con.execute(s)
        con.commit()
    finally:
        con.close()


def swap_names(db, a, b):
    sql(db, ("UPDATE apps SET name = 'swap-tmp' WHERE name = ?", (a,)),
        ("UPDATE apps SET name = ? WHERE name = ?", (a, b)),
        ("UPDATE apps SET name = ? WHERE name = 'swap-tmp'", (b,)))


def two_apps(srv):
    a, b = uniq("app-a"), uniq("app-b")
    for name in (a, b):
        expect(srv.admin.post("/v1/apps", {"name": name}), 201)
    kr = srv.create_keyring()
    api_a, key_a = srv.issue_key(CRYPTO_SCOPES + ["apps:admin"], app=a)
    expect(api_a.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    return a, b, kr, key_a


def listed(srv):
    return {x["name"] for x in expect(srv.admin.get("/v1/apps"), 200)["apps"]}


def test_swapped_app_names_are_refused(start_server):
    srv = start_server()
    a, b, kr, key_a = two_apps(srv)
    srv.stop()
    swap_names(srv.datadir.db, a, b)

    srv.start()
    api_a = srv.client(key_a["key"])
    # key_a's row names app id of `a`, which now carries b's name: it must not act as b
    r = api_a.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"})
    expect(r, 500, "integrity_failure")
    expect(srv.admin.get(f"/v1/apps/{a}"), 500, "integrity_failure")
    expect(srv.admin.get(f"/v1/apps/{b}/keys"), 500, "integrity_failure")
    expect(srv.admin.post(f"/v1/apps/{b}/keys", {"scopes": ["encrypt"]}), 500,
           "integrity_failure")
    expect(srv.admin.delete(f"/v1/apps/{b}/keys/{key_a['id']}"), 500, "integrity_failure")
    names = listed(srv)
    assert a not in names and b not in names and "admin" in names, names
    assert "app_integrity_failure" in srv.stdout()

    srv.stop()
    swap_names(srv.datadir.db, a, b)                    # undone: everything works again
    srv.start()
    expect(srv.client(key_a["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    assert {a, b} <= listed(srv)


def test_rows_from_before_the_migration_get_their_mac(start_server):
    srv = start_server()
    a, b, kr, key_a = two_apps(srv)
    srv.stop()
    # the database as the previous release left it: no mac column, schema version 2 (so
    # neither the certificate tables of 0004)
    sql(srv.datadir.db, "ALTER TABLE apps DROP COLUMN mac", "DROP INDEX api_keys_by_created",
        "DROP TABLE cert_history", "DROP TABLE cert_sources",
        "DELETE FROM schema_version WHERE version >= 3",
        "DELETE FROM meta WHERE key = 'apps_mac_since'")

    srv.start()
    out = srv.stdout()
    assert out.count("app_mac_added") == 3, out            # admin, a, b
    expect(srv.client(key_a["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    assert {"admin", a, b} <= listed(srv)
    srv.stop()

    # from now on a row without a MAC is refused, not sealed again
    sql(srv.datadir.db, ("UPDATE apps SET mac = NULL WHERE name = ?", (a,)))
    srv.start()
    assert "app_mac_added" not in srv.stdout()
    expect(srv.client(key_a["key"]).post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 500,
           "integrity_failure")
    expect(srv.admin.get(f"/v1/apps/{a}"), 500, "integrity_failure")
    expect(srv.admin.get(f"/v1/apps/{b}"), 200)
