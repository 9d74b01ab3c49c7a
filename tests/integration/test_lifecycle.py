# SPDX-License-Identifier: Apache-2.0
"""The server process: restart, shutdown, root key rules, root key rotation, break-glass admin
keys, configuration layers, and rows tampered in the database."""
import base64
import glob
import json
import os
import secrets
import signal
import sqlite3
import stat
import threading
import time

import pytest
import requests

import conftest
from conftest import (CRYPTO_SCOPES, SECRETS, Api, expect, free_port, new_text,
                      poll_until, register_api_key, register_root_key, run_cli,
                      run_serve_expecting_exit)
from openapi_check import ContractError


def stderr_lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


# ---------------------------------------------------------------------------------------------
# restart

def test_restart_keeps_everything(start_server):
    srv = start_server()
    admin = srv.admin
    kr = srv.create_keyring()
    det = srv.create_keyring(deterministic=True)
    xc = srv.create_keyring(algorithm="xchacha20-poly1305")
    api, key = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("restart")
    ctx = {"tenant": "t1"}
    ct = api.encrypt(kr, text=text, context=ctx)["ciphertext"]
    dct = api.encrypt(det, text=text, context=ctx)["ciphertext"]
    xct = api.encrypt(xc, text=text)["ciphertext"]
    expect(admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)
    ct2 = api.encrypt(kr, text=text, context=ctx)["ciphertext"]
    before = expect(admin.get(f"/v1/keyrings/{kr}"), 200)

    srv.restart()
    api = srv.client(key["key"])
    assert api.decrypt(kr, ct, context=ctx)["text"] == text
    assert api.decrypt(kr, ct2, context=ctx)["text"] == text
    assert api.decrypt(xc, xct)["text"] == text
    assert api.encrypt(det, text=text, context=ctx)["ciphertext"] == dct
    after = expect(srv.admin.get(f"/v1/keyrings/{kr}"), 200)
    for k in ("name", "algorithm", "latest_version", "min_decryption_version",
              "min_encryption_version", "rotation_period", "created_at"):
        assert after[k] == before[k], k
    # counts are durable upper bounds: never lower after a restart
    for vb, va in zip(before["versions"], after["versions"]):
        assert va["encryptions"] >= vb["encryptions"]
    # the app's key (checked above) and the admin key still authenticate
    expect(srv.admin.get("/v1/keyrings"), 200)
    assert api.encrypt(kr, text=text)["key_version"] == 2


def test_kill_9_under_load_never_under_counts(start_server):
    """Guarantee (SECURITY.md "Bounds and rotation"): encryption counts are durable -- blocks are
    reserved in the database before they are used -- so a crash (kill -9 under load) may
    over-count by about a block but never under-counts: after a restart each version's count is
    at least the encryptions that were answered. (Single encrypts from two clients, so at most
    two are in flight when the kill lands: a count that lagged by even part of a block would
    show, since the block is far larger.)"""
    block, threads = 64, 2
    srv = start_server(args=["--reserve-block", str(block)])
    kr = srv.create_keyring()
    _, key = srv.issue_key(["encrypt"], keyrings=[kr])
    answered = [0] * threads
    stop = threading.Event()

    def worker(i):
        api = Api(srv.url, key["key"])
        while not stop.is_set():
            try:
                r = api.post(f"/v1/keyrings/{kr}/encrypt", {"text": f"count-{i}"}, timeout=30,
                             check=False)
            except requests.RequestException:
                return                          # killed
            if r.status_code == 200:
                answered[i] += 1

    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    target = 10 * block + secrets.randbelow(block)      # anywhere inside a block
    poll_until(lambda: sum(answered) >= target, deadline=120, interval=0.005,
               what="encryptions spanning many reservation blocks")
    srv.kill()                                  # SIGKILL, no shutdown
    stop.set()
    for t in ts:
        t.join(timeout=60)
    done = sum(answered)
    srv.start()
    got = expect(srv.admin.get(f"/v1/keyrings/{kr}"), 200)["versions"][0]["encryptions"]
    assert got >= done, f"{done} encryptions answered before kill -9, {got} counted after restart"
    # over-counting is bounded: a block, plus what was in flight (counted, never answered)
    assert got <= done + block + threads, (done, got)


# ---------------------------------------------------------------------------------------------
# shutdown

def test_sigterm_exits_zero_when_idle(start_server):
    srv = start_server()
    expect(srv.admin.get("/v1/keyrings"), 200)
    assert srv.stop() == 0


def test_sigterm_exits_zero_with_requests_in_flight(start_server):
    """Guarantee (README "Configuration"): SIGTERM under load finishes the requests in flight
    with their real answers -- here one whose body is still arriving when the signal lands gets
    its ciphertext, which decrypts after a restart -- and exits 0."""
    import rawhttp
    srv = start_server()
    kr = srv.create_keyring()
    _, key = srv.issue_key(["encrypt", "decrypt"])
    done = threading.Event()
    contract_errors = []
    counts = [0]
    lock = threading.Lock()

    def worker(n):
        api = Api(srv.url, key["key"])
        for i in range(2000):
            if done.is_set():
                return
            try:
                body = {"items": [{"text": f"in-flight-{n}-{i}-{j}"} for j in range(50)]}
                r = api.post(f"/v1/keyrings/{kr}/encrypt", body, timeout=30)
                if r.status_code == 200:
                    with lock:
                        counts[0] += 1
            except ContractError as e:
                contract_errors.append(e)
                return
            except requests.RequestException:
                return                       # the server went away: expected

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    poll_until(lambda: counts[0] >= 8, what="some requests served")

    # one request whose body is still arriving when SIGTERM lands
    text = new_text("slow-request")
    raw = rawhttp.build("POST", f"/v1/keyrings/{kr}/encrypt",
                        [("Authorization", f"Bearer {key['key']}"),
                         ("Content-Type", "application/json")],
                        json.dumps({"text": text}).encode())
    slow, rest = rawhttp.start_in_flight(srv.port, raw)

    srv.proc.send_signal(signal.SIGTERM)
    slow.sendall(rest)
    answer = rawhttp.read_response(slow, time.monotonic() + 30)
    slow.close()
    rc = srv.wait_exit()
    done.set()
    for t in threads:
        t.join(timeout=60)
    assert rc == 0, f"exit {rc} after SIGTERM with requests in flight; {srv.stderr()[-800:]}"
    assert not contract_errors, contract_errors[0]
    assert answer is not None and answer.status == 200, (
        "the request in flight at SIGTERM got no real answer: "
        f"{answer and (answer.status, answer.body[:300])}")
    ct = json.loads(answer.body)["ciphertext"]
    SECRETS.add(ct, "ciphertext")
    srv.start()
    assert srv.client(key["key"]).decrypt(kr, ct)["text"] == text


# ---------------------------------------------------------------------------------------------
# root key file rules

@pytest.mark.parametrize("mode", [0o644, 0o604, 0o620, 0o602, 0o666])
def test_exposed_root_key_refused(new_datadir, mode):
    dd = new_datadir()
    with open(dd.root_key, "rb") as f:
        content = f.read()
    os.chmod(dd.root_key, mode)
    rc, err, out = run_serve_expecting_exit(dd.path, f"127.0.0.1:{free_port()}")
    assert rc == 1, f"mode {oct(mode)}: exit {rc}; stderr {err!r}"
    lines = stderr_lines(err)
    assert len(lines) == 1, f"expected one clear stderr line, got {lines!r}"
    assert "root" in lines[0].lower() or "root.key" in lines[0], lines[0]
    assert content.strip().decode() not in err + out
    assert base64.b64decode(content.strip()).hex() not in err + out
    os.chmod(dd.root_key, 0o600)


def test_root_key_created_0600_and_symlink_accepted(new_datadir, start_server, tmp_path):
    dd = new_datadir()
    st = os.stat(dd.root_key)
    assert stat.S_IMODE(st.st_mode) == 0o600
    # Kubernetes secret mounts: root.key is a symlink to the real file
    secret_dir = tmp_path / "k8s-secret" / "..data"
    secret_dir.mkdir(parents=True)
    target = secret_dir / "root.key"
    os.rename(dd.root_key, target)
    os.symlink(target, dd.root_key)
    srv = start_server(datadir=dd)
    expect(srv.admin.get("/v1/keyrings"), 200)


def test_missing_root_key_refused(new_datadir):
    dd = new_datadir()
    os.rename(dd.root_key, dd.root_key + ".moved")
    rc, err, _ = run_serve_expecting_exit(dd.path, f"127.0.0.1:{free_port()}")
    assert rc == 1, (rc, err)
    assert len(stderr_lines(err)) == 1, err


def test_wrong_root_key_refused(new_datadir):
    dd = new_datadir()
    other = base64.b64encode(os.urandom(32)) + b"\n"
    SECRETS.add(other.strip(), "substitute root key")
    with open(dd.root_key, "wb") as f:
        f.write(other)
    rc, err, out = run_serve_expecting_exit(dd.path, f"127.0.0.1:{free_port()}")
    assert rc == 1, (rc, err)
    assert len(stderr_lines(err)) == 1, err


def test_init_twice_does_not_overwrite(new_datadir):
    dd = new_datadir()
    with open(dd.root_key, "rb") as f:
        key_before = f.read()
    st_before = os.stat(dd.root_key)
    with open(dd.db, "rb") as f:
        db_before = f.read()
    proc = run_cli(["init", "--data-dir", dd.path, "--json"])
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert proc.stdout.strip() == "" or '"key"' not in proc.stdout
    assert len(stderr_lines(proc.stderr)) == 1, proc.stderr
    with open(dd.root_key, "rb") as f:
        assert f.read() == key_before
    st_after = os.stat(dd.root_key)
    assert (st_after.st_mtime_ns, st_after.st_ino, st_after.st_mode) == \
        (st_before.st_mtime_ns, st_before.st_ino, st_before.st_mode)
    with open(dd.db, "rb") as f:
        assert f.read() == db_before


def test_plain_http_on_non_loopback_refused(new_datadir):
    dd = new_datadir()
    rc, err, _ = run_serve_expecting_exit(dd.path, f"0.0.0.0:{free_port()}")
    assert rc == 2, (rc, err)
    lines = stderr_lines(err)
    assert len(lines) == 1 and ("tls" in lines[0].lower()), lines


def test_tls_cert_without_key_is_usage_error(new_datadir, tmp_path):
    dd = new_datadir()
    cert = tmp_path / "c.pem"
    cert.write_text("not a cert\n")
    rc, err, _ = run_serve_expecting_exit(dd.path, f"127.0.0.1:{free_port()}",
                                          extra=["--tls-cert", str(cert)])
    assert rc == 2, (rc, err)


# ---------------------------------------------------------------------------------------------
# admin-key and rotate-root-key

def test_admin_key_command_mints_working_key(start_server):
    srv = start_server()
    proc = run_cli(["admin-key", "--data-dir", srv.data_dir, "--json"])
    assert proc.returncode == 0, proc.stderr
    key = json.loads(proc.stdout)["key"]
    register_api_key(key)
    assert key.startswith("dgk_") and key != srv.admin_key
    api = srv.client(key)
    expect(api.get("/v1/keyrings"), 200)
    expect(api.post("/v1/keyrings", {"name": conftest.uniq("bg")}), 201)
    expect(api.post("/v1/apps", {"name": conftest.uniq("bg")}), 201)
    expect(srv.admin.get("/v1/keyrings"), 200)            # the first admin key still works
    # plain output prints the key too
    proc = run_cli(["admin-key", "--data-dir", srv.data_dir])
    assert proc.returncode == 0, proc.stderr
    plain = [w for w in proc.stdout.split() if w.startswith("dgk_")]
    assert plain, proc.stdout[:200]
    register_api_key(plain[0])
    expect(srv.client(plain[0]).get("/v1/keyrings"), 200)


def test_admin_key_needs_root_key(new_datadir):
    dd = new_datadir()
    os.rename(dd.root_key, dd.root_key + ".away")
    proc = run_cli(["admin-key", "--data-dir", dd.path, "--json"])
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "dgk_" not in proc.stdout


def test_rotate_root_key_then_restart(start_server, tmp_path):
    srv = start_server()
    kr = srv.create_keyring()
    det = srv.create_keyring(deterministic=True)
    api, key = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("rootrot")
    ct = api.encrypt(kr, text=text, context={"a": "b"})["ciphertext"]
    dct = api.encrypt(det, text=text)["ciphertext"]
    expect(srv.admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)
    ct2 = api.encrypt(kr, text=text)["ciphertext"]
    old_id = srv.datadir.info["root_key_id"]
    with open(srv.datadir.root_key, "rb") as f:
        old_content = f.read()
    srv.stop()

    new_key = tmp_path / "new-root.key"
    content = base64.b64encode(os.urandom(32)) + b"\n"
    fd = os.open(new_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, content)
    os.close(fd)
    register_root_key(str(new_key))
    proc = run_cli(["rotate-root-key", "--data-dir", srv.data_dir, "--new-key", str(new_key)])
    assert proc.returncode == 0, proc.stderr
    with open(srv.datadir.root_key, "rb") as f:
        assert f.read().strip() == content.strip()
    assert stat.S_IMODE(os.stat(srv.datadir.root_key).st_mode) == 0o600
    # the old key is kept beside the new one, named by its id
    olds = glob.glob(os.path.join(srv.data_dir, f"root.key.*{old_id}"))
    assert len(olds) == 1, os.listdir(srv.data_dir)
    with open(olds[0], "rb") as f:
        assert f.read() == old_content
    assert stat.S_IMODE(os.stat(olds[0]).st_mode) == 0o600

    srv.start()
    api = srv.client(key["key"])
    assert api.decrypt(kr, ct, context={"a": "b"})["text"] == text
    assert api.decrypt(kr, ct2)["text"] == text
    assert api.encrypt(det, text=text)["ciphertext"] == dct
    info = expect(srv.admin.get(f"/v1/keyrings/{kr}"), 200)
    ids = {v["root_key_id"] for v in info["versions"]}
    assert len(ids) == 1 and old_id not in ids
    expect(srv.admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)
    ct3 = api.encrypt(kr, text=text)["ciphertext"]
    assert api.decrypt(kr, ct3)["text"] == text

    # the old root key no longer opens the data dir
    srv.stop()
    os.replace(olds[0], srv.datadir.root_key)
    os.chmod(srv.datadir.root_key, 0o600)
    rc, err, _ = run_serve_expecting_exit(srv.data_dir, f"127.0.0.1:{free_port()}")
    assert rc == 1, (rc, err)
    # docs/api-shapes.md and SECURITY.md: "the old one kept as DIR/root.key.retired-<id>"
    assert os.path.basename(olds[0]) == f"root.key.retired-{old_id}", olds[0]


# ---------------------------------------------------------------------------------------------
# configuration layers: flags > DIFYGUARD_* variables > config file

def batch(n):
    return {"items": [{"text": f"cfg-{i}"} for i in range(n)]}


def test_config_layers(start_server, tmp_path, new_datadir):
    dd = new_datadir()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"max-batch-items": 2}))

    srv = start_server(args=["--config", str(cfg)], datadir=dd)
    kr = srv.create_keyring()
    api, key = srv.issue_key(["encrypt"])
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", batch(2)), 200)
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", batch(3)), 413, "batch_too_large")
    srv.stop()

    srv2 = start_server(args=["--config", str(cfg)], datadir=dd,
                        env={"DIFYGUARD_MAX_BATCH_ITEMS": "4"})
    api = srv2.client(key["key"])
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", batch(4)), 200)
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", batch(5)), 413, "batch_too_large")
    srv2.stop()

    srv3 = start_server(args=["--config", str(cfg), "--max-batch-items", "6"], datadir=dd,
                        env={"DIFYGUARD_MAX_BATCH_ITEMS": "4"})
    api = srv3.client(key["key"])
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", batch(6)), 200)
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", batch(7)), 413, "batch_too_large")


def test_bad_config_file_is_usage_error(new_datadir, tmp_path):
    dd = new_datadir()
    for text in ['{"no-such-option": 1}', '{"max-batch-items": "many"}', "{"]:
        cfg = tmp_path / "bad.json"
        cfg.write_text(text)
        rc, err, _ = run_serve_expecting_exit(dd.path, f"127.0.0.1:{free_port()}",
                                              extra=["--config", str(cfg)])
        assert rc == 2, (text, rc, err)
        assert len(stderr_lines(err)) == 1, err


# ---------------------------------------------------------------------------------------------
# rows altered directly in the database are refused

def table_with(db, column):
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')]
            if column in cols:
                return t, cols
    finally:
        con.close()
    pytest.fail(f"no table with a {column} column in {db}")


def test_tampered_keyring_row_refused(start_server):
    srv = start_server()
    victim = srv.create_keyring()
    other = srv.create_keyring()
    api, key = srv.issue_key(CRYPTO_SCOPES)
    text = new_text("tamper-row")
    vct = api.encrypt(victim, text=text)["ciphertext"]
    oct_ = api.encrypt(other, text=text)["ciphertext"]
    srv.stop()

    db = srv.datadir.db
    table, _ = table_with(db, "deletion_allowed")
    assert table == "keyrings", table
    con = sqlite3.connect(db)
    n = con.execute("UPDATE keyrings SET deletion_allowed = 1 WHERE name = ?", (victim,)).rowcount
    con.commit()
    con.close()
    assert n == 1

    srv.start()
    api = srv.client(key["key"])
    admin = srv.admin
    expect(api.post(f"/v1/keyrings/{victim}/encrypt", {"text": "x"}), 500, "integrity_failure")
    expect(api.post(f"/v1/keyrings/{victim}/decrypt", {"ciphertext": vct}), 500,
           "integrity_failure")
    expect(admin.get(f"/v1/keyrings/{victim}"), 500, "integrity_failure")
    # the forged deletion_allowed must not let anyone shred it
    expect(admin.delete(f"/v1/keyrings/{victim}"), 500, "integrity_failure")
    # other keyrings keep working
    assert api.decrypt(other, oct_)["text"] == text
    assert api.decrypt(other, api.encrypt(other, text=text)["ciphertext"])["text"] == text
    expect(admin.get(f"/v1/keyrings/{other}"), 200)
    logs = (srv.stdout() + srv.stderr()).lower()
    assert "integrity" in logs, "the refused row is reported in the logs"


def test_tampered_api_key_row_refused(start_server):
    srv = start_server()
    kr = srv.create_keyring()
    api, key = srv.issue_key(["encrypt"], keyrings=[kr])
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 200)
    srv.stop()
    db = srv.datadir.db
    table, cols = table_with(db, "scopes")
    id_col = "id" if "id" in cols else "key_id"
    con = sqlite3.connect(db)
    n = con.execute(f'UPDATE "{table}" SET scopes = ? WHERE {id_col} = ?',
                    ("encrypt decrypt keyrings:admin apps:admin", key["id"])).rowcount
    con.commit()
    con.close()
    assert n == 1
    srv.start()
    api = srv.client(key["key"])
    r = api.get("/v1/apps")
    assert r.status_code in (401, 500), r.status_code
    expect(r, r.status_code, "integrity_failure" if r.status_code == 500 else "unauthenticated")
    r = api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"})
    assert r.status_code in (401, 500), r.status_code
    expect(srv.admin.get("/v1/keyrings"), 200)
