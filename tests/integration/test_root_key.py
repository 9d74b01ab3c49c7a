# SPDX-License-Identifier: Apache-2.0
"""Root key rotation against a running service (security review, issue 6, finding 1): one
server per database (a lock beside it), rotate-root-key and migrate refused while it serves,
new key versions wrapped only under the root key the database expects, and recovery of a
database whose rows are wrapped under several root keys."""
import base64
import os
import sqlite3

from conftest import (CRYPTO_SCOPES, expect, free_port, new_text, poll_until, register_api_key,
                      register_root_key, run_cli, run_serve_expecting_exit)


def lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def write_root_key(path):
    content = base64.b64encode(os.urandom(32)) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, content)
    os.close(fd)
    register_root_key(str(path))
    return str(path)


def root_ids(db):
    """Every root key id the database records: meta, service keys, key versions."""
    con = sqlite3.connect(db)
    try:
        meta = con.execute("SELECT value FROM meta WHERE key = 'root_key_id'").fetchall()
        svc = con.execute("SELECT purpose, root_key_id FROM service_keys").fetchall()
        kv = con.execute("SELECT keyring_id, version, root_key_id FROM key_versions").fetchall()
    finally:
        con.close()
    return sorted(meta), sorted(svc), sorted(kv)


def test_second_server_rotation_and_migrate_refused_while_serving(start_server, tmp_path):
    srv = start_server()
    kr = srv.create_keyring()
    api, crypto_key = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("lock")
    ct = api.encrypt(kr, text=text)["ciphertext"]
    before = root_ids(srv.datadir.db)
    with open(srv.datadir.root_key, "rb") as f:
        root_before = f.read()

    # a second server on the same database is refused at start, in one line
    rc, err, _ = run_serve_expecting_exit(srv.data_dir, f"127.0.0.1:{free_port()}")
    assert rc == 1, (rc, err)
    assert len(lines(err)) == 1 and "in use" in err, err

    # rotate-root-key refuses and changes nothing
    new_key = write_root_key(tmp_path / "new.key")
    proc = run_cli(["rotate-root-key", "--data-dir", srv.data_dir, "--new-key", new_key])
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "stop difyguard serve first" in proc.stderr, proc.stderr
    assert root_ids(srv.datadir.db) == before
    with open(srv.datadir.root_key, "rb") as f:
        assert f.read() == root_before
    assert not [n for n in os.listdir(srv.data_dir) if n.startswith("root.key.")], \
        os.listdir(srv.data_dir)

    # so does migrate
    proc = run_cli(["migrate", "--data-dir", srv.data_dir])
    assert proc.returncode == 1 and "stop difyguard serve first" in proc.stderr, proc.stderr

    # break-glass keeps working while the server runs
    proc = run_cli(["admin-key", "--data-dir", srv.data_dir, "--json"])
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.split('"key":"')[1].split('"')[0]
    register_api_key(key)
    expect(srv.client(key).get("/v1/keyrings"), 200)

    # the running server is unaffected; once stopped, the rotation goes through
    assert api.decrypt(kr, ct)["text"] == text
    srv.stop()
    proc = run_cli(["rotate-root-key", "--data-dir", srv.data_dir, "--new-key", new_key])
    assert proc.returncode == 0, proc.stderr
    srv.start()
    assert srv.client(crypto_key["key"]).decrypt(kr, ct)["text"] == text


def set_meta_root_key_id(db, value):
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute("UPDATE meta SET value = ? WHERE key = 'root_key_id'", (value,))
        con.commit()
    finally:
        con.close()


def test_new_versions_only_under_the_root_key_the_database_expects(start_server):
    """The database moved to another root key behind the server's back (a rotation that did not
    take the lock): manual and automatic rotations and new keyrings are refused instead of being
    wrapped under the stale key; existing versions keep working."""
    srv = start_server(args=["--kek-max-encryptions", "20", "--reserve-block", "5",
                             "--maintenance-interval", "1"])
    kr = srv.create_keyring()
    api, _ = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("stale-root")
    ct = api.encrypt(kr, text=text)["ciphertext"]
    own_id = srv.datadir.info["root_key_id"]
    set_meta_root_key_id(srv.datadir.db, "0123456789abcdef")
    before = root_ids(srv.datadir.db)[2]

    expect(srv.admin.post("/v1/keyrings", {"name": "stale-new"}), 409, "conflict")
    expect(srv.admin.post(f"/v1/keyrings/{kr}/rotate", {}), 409, "conflict")
    # 90% of the encryption bound: the automatic rotation is refused too
    for _ in range(17):
        api.encrypt(kr, text=text)
    poll_until(lambda: srv.stdout().count("root_key_mismatch") >= 3, what="refused rotation")
    assert root_ids(srv.datadir.db)[2] == before, "no key version was added"
    assert expect(srv.admin.get(f"/v1/keyrings/{kr}"), 200)["latest_version"] == 1
    assert api.decrypt(kr, ct)["text"] == text

    # back under the server's root key: changes work again
    set_meta_root_key_id(srv.datadir.db, own_id)
    expect(srv.admin.post("/v1/keyrings", {"name": "stale-new"}), 201)
    expect(srv.admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)


def version_rows(db, keyring):
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT v.version, v.root_key_id, v.wrapped, v.mac FROM key_versions AS v "
            "JOIN keyrings AS k ON k.id = v.keyring_id WHERE k.name = ? ORDER BY v.version",
            (keyring,)).fetchall()
    finally:
        con.close()


def put_version_rows(db, keyring, rows):
    con = sqlite3.connect(db)
    try:
        for version, rk, wrapped, mac in rows:
            con.execute("UPDATE key_versions SET root_key_id = ?, wrapped = ?, mac = ? "
                        "WHERE version = ? AND keyring_id = "
                        "(SELECT id FROM keyrings WHERE name = ?)",
                        (rk, wrapped, mac, version, keyring))
        con.commit()
    finally:
        con.close()


def test_recovery_rewraps_rows_left_under_an_older_root_key(start_server, tmp_path):
    """The state the race produced: service keys under the new root key, a key version still
    under the old one (its row MAC is genuine). The recovery names the old key with --old-key."""
    srv = start_server()
    good, stale = srv.create_keyring(), srv.create_keyring()
    api, key = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("recover")
    ct_good = api.encrypt(good, text=text)["ciphertext"]
    ct_stale = api.encrypt(stale, text=text)["ciphertext"]
    old_id = srv.datadir.info["root_key_id"]
    srv.stop()
    under_old = version_rows(srv.datadir.db, stale)

    new_key = write_root_key(tmp_path / "new.key")
    proc = run_cli(["rotate-root-key", "--data-dir", srv.data_dir, "--new-key", new_key])
    assert proc.returncode == 0, proc.stderr
    put_version_rows(srv.datadir.db, stale, under_old)     # a version wrapped by a stale server

    srv.start()
    api = srv.client(key["key"])
    assert api.decrypt(good, ct_good)["text"] == text
    expect(api.post(f"/v1/keyrings/{stale}/decrypt", {"ciphertext": ct_stale}), 500,
           "integrity_failure")
    srv.stop()

    # without the old key the command says which key it needs and changes nothing
    retired = os.path.join(srv.data_dir, f"root.key.retired-{old_id}")
    root_key = srv.datadir.root_key
    proc = run_cli(["rotate-root-key", "--data-dir", srv.data_dir, "--new-key", root_key])
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "--old-key" in proc.stderr and old_id in proc.stderr, proc.stderr
    assert version_rows(srv.datadir.db, stale) == under_old
    proc = run_cli(["rotate-root-key", "--data-dir", srv.data_dir, "--new-key", root_key,
                    "--old-key", retired])
    assert proc.returncode == 0, proc.stderr
    with open(root_key, "rb") as f, open(new_key, "rb") as g:
        assert f.read() == g.read(), "the root key file already held the new key"
    assert {r[1] for r in version_rows(srv.datadir.db, stale)} != {old_id}
    _, svc, kv = root_ids(srv.datadir.db)
    assert len({r[1] for r in svc} | {r[2] for r in kv}) == 1, (svc, kv)

    srv.start()
    api = srv.client(key["key"])
    assert api.decrypt(stale, ct_stale)["text"] == text
    assert api.decrypt(good, ct_good)["text"] == text
    expect(srv.admin.post(f"/v1/keyrings/{stale}/rotate", {}), 200)


def test_interrupted_service_key_phase_can_be_run_again(start_server, tmp_path):
    """A rotation cut off while it rewrapped the service keys one by one (as releases before
    this fix did): the service keys are split between the two root keys, root.key is still the
    old key. Running the same command again finishes the rotation."""
    srv = start_server()
    kr = srv.create_keyring()
    api, key = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("interrupted")
    ct = api.encrypt(kr, text=text)["ciphertext"]
    old_id = srv.datadir.info["root_key_id"]
    srv.stop()
    con = sqlite3.connect(srv.datadir.db)
    svc_old = con.execute("SELECT purpose, root_key_id, wrapped, created_at "
                          "FROM service_keys ORDER BY purpose").fetchall()
    con.close()
    assert len(svc_old) >= 2

    new_key = write_root_key(tmp_path / "new.key")
    proc = run_cli(["rotate-root-key", "--data-dir", srv.data_dir, "--new-key", new_key])
    assert proc.returncode == 0, proc.stderr
    # undo the tail of that run: half the service keys, the recorded id and root.key go back
    con = sqlite3.connect(srv.datadir.db)
    for purpose, rk, wrapped, created in svc_old[1:]:
        con.execute("UPDATE service_keys SET root_key_id = ?, wrapped = ?, created_at = ? "
                    "WHERE purpose = ?", (rk, wrapped, created, purpose))
    con.execute("UPDATE meta SET value = ? WHERE key = 'root_key_id'", (old_id,))
    con.commit()
    con.close()
    retired = os.path.join(srv.data_dir, f"root.key.retired-{old_id}")
    os.replace(retired, srv.datadir.root_key)
    assert len({r[1] for r in root_ids(srv.datadir.db)[1]}) == 2

    proc = run_cli(["rotate-root-key", "--data-dir", srv.data_dir, "--new-key", new_key])
    assert proc.returncode == 0, proc.stderr
    meta, svc, kv = root_ids(srv.datadir.db)
    ids = {r[1] for r in svc} | {r[2] for r in kv} | {meta[0][0]}
    assert len(ids) == 1 and old_id not in ids, (meta, svc, kv)
    assert os.path.exists(retired)
    srv.start()
    assert srv.client(key["key"]).decrypt(kr, ct)["text"] == text
