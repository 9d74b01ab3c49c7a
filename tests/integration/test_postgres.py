# SPDX-License-Identifier: Apache-2.0
"""The PostgreSQL backend through the real binary (issue 12): `init`, `migrate` and `serve` with
`--database` naming a database of a throwaway cluster that scripts/pgtest.sh started (DG_PG_URL,
DG_PG_DIR; ctest integration_postgres). Crypto, rotation, apps and keys, the audit trail and its
verification; migrations racing; a newer schema refused; the password never shown; PostgreSQL
stopped under load: fail closed with 503, /readyz not ready, recovery without a restart, and no
acknowledged request missing from a trail that verifies."""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

from conftest import (CRYPTO_SCOPES, SECRETS, Server, expect, init_data_dir, new_text,
                      poll_until, run_cli, uniq)

SRC = os.environ.get("DG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PGTEST = os.path.join(SRC, "scripts", "pgtest.sh")
PG_URL = os.environ.get("DG_PG_URL")
PG_DIR = os.environ.get("DG_PG_DIR")
# Trust authentication ignores it, but libpq keeps it: it must show up nowhere.
PASSWORD = "pw-" + "Zq9" * 6
SECRETS.add(PASSWORD, "PostgreSQL password")



@pytest.fixture(scope="module", autouse=True)
def cluster():
    """The cluster of DG_PG_URL, or (run alone: a mutant's pytest node) one of our own. Its
    directory is outside pytest's (0700: the postgres user could not enter it as root) and short
    (a unix socket path has at most 107 bytes)."""
    global PG_URL, PG_DIR
    if os.environ.get("DG_PG_URL"):
        yield
        return
    d = tempfile.mkdtemp(prefix="dg-pg.")
    os.chmod(d, 0o755)
    PG_DIR = os.path.join(d, "c")
    PG_URL = subprocess.run([PGTEST, "start", PG_DIR], check=True, capture_output=True,
                            text=True, timeout=180).stdout.strip()
    try:
        yield
    finally:
        subprocess.run([PGTEST, "stop", PG_DIR], timeout=120, stdout=subprocess.DEVNULL)
        shutil.rmtree(d, ignore_errors=True)


def psql(sql, db=None):
    url = PG_URL if db is None else db_url(db, password=False)
    out = subprocess.run(["psql", "-qtAX", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def db_url(db, password=True):
    """DG_PG_URL (postgresql:///postgres?host=DIR&user=U) for database db."""
    u = urllib.parse.urlsplit(PG_URL)
    q = u.query + (f"&password={PASSWORD}" if password else "")
    return f"{u.scheme}://{u.netloc}/{db}?{q}"


def fresh_db():
    name = uniq("dg").replace("-", "_").replace(".", "_").lower()
    psql(f"CREATE DATABASE {name}")
    return name


def pg_ctl(action):
    subprocess.run([PGTEST, action, PG_DIR], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)


@pytest.fixture
def pgserver(tmp_path):
    """Factory: an init'd data dir on a new database and a server on it."""
    started = []

    def factory(db=None):
        db = db or fresh_db()
        url = db_url(db)
        dd = tmp_path / f"data{len(started)}"
        os.makedirs(dd)
        proc = run_cli(["init", "--data-dir", str(dd), "--database", url, "--json"])
        assert proc.returncode == 0, proc.stderr
        info = json.loads(proc.stdout)
        SECRETS.add(info["key"], "admin key")
        assert PASSWORD not in proc.stdout and "postgres:" in info["database"]
        srv = Server(str(dd), args=["--database", url], admin_key=info["key"])
        srv.db = db
        started.append(srv)
        return srv.start()

    yield factory
    for s in started:
        s.stop()


def test_crypto_apps_keys_audit(pgserver):
    srv = pgserver()
    admin = srv.admin
    kr = srv.create_keyring()
    app = uniq("app")
    expect(admin.post("/v1/apps", {"name": app, "description": "pg"}), 201)
    api, key = srv.issue_key(CRYPTO_SCOPES, keyrings=[kr], app=app)
    text = new_text("pg")
    ct1 = api.encrypt(kr, text=text)["ciphertext"]
    assert api.decrypt(kr, ct1)["text"] == text
    expect(admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)
    ct2 = api.encrypt(kr, text=text)["ciphertext"]
    assert ct2.split(":")[1] != ct1.split(":")[1], "rotation did not change the version"
    assert api.decrypt(kr, ct1)["text"] == text  # the old version still decrypts
    # the rows are in PostgreSQL
    assert int(psql("SELECT count(*) FROM key_versions", srv.db)) == 2
    assert int(psql("SELECT count(*) FROM audit_events", srv.db)) > 0
    # revoke: the very next request is refused
    expect(admin.delete(f"/v1/apps/{app}/keys/{key['id']}"), 204)
    expect(api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}), 401, "unauthenticated")
    body = poll_until(lambda: (lambda b: b if b["valid"] else None)(
        expect(admin.get("/v1/audit/verify"), 200)), what="audit verifies")
    assert body["valid"] is True
    metrics = srv.client().get("/metrics")
    assert 'difyguard_db_pool_connections{backend="postgres"}' in metrics.text
    assert 'difyguard_db_circuit_open{backend="postgres"} 0' in metrics.text
    srv.stop()
    for path in (srv.stdout_path, srv.stderr_path):
        with open(path) as f:
            assert PASSWORD not in f.read()


def test_migrations_race_and_newer_schema(tmp_path):
    db = fresh_db()
    url = db_url(db)
    procs = [subprocess.Popen([os.environ["DIFYGUARD_BIN"], "migrate", "--data-dir",
                               str(tmp_path / f"d{i}"), "--database", url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "(postgres)" in out and PASSWORD not in out + err
    assert psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version",
                db) == "1,2,3,4"
    psql("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)", db)
    proc = run_cli(["migrate", "--data-dir", str(tmp_path / "d9"), "--database", url])
    assert proc.returncode != 0 and "newer than this build" in proc.stderr
    assert PASSWORD not in proc.stderr


def test_unreachable_database_is_refused_without_password(tmp_path):
    url = f"postgresql://dg:{PASSWORD}@%2Fno%2Fsuch%2Fdir/dg"
    proc = run_cli(["migrate", "--data-dir", str(tmp_path), "--database", url])
    assert proc.returncode != 0 and "cannot connect to PostgreSQL" in proc.stderr
    assert PASSWORD not in proc.stderr


def test_database_stopped_fails_closed_and_recovers(pgserver):
    srv = pgserver()
    kr = srv.create_keyring()
    api, _ = srv.issue_key(["encrypt"], keyrings=[kr])
    probe = srv.client()
    acked, statuses, unexpected, stop = [], {}, [], threading.Event()

    def load():
        while not stop.is_set():
            try:
                r = api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "under load"}, check=False,
                             timeout=30)
            except Exception:  # noqa: BLE001 -- a refused connection counts as not acknowledged
                continue
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code not in (200, 503):
                unexpected.append((r.status_code, r.text[:200]))
            if r.status_code == 200:
                acked.append(1)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        outage(probe, acked, statuses)
    finally:
        stop.set()
        t.join(timeout=60)
    assert not unexpected, f"only 200 or 503 while PostgreSQL comes and goes: {unexpected[:5]}"
    assert srv.running()
    # every acknowledged encryption has its event, and the trail verifies
    events = int(psql("SELECT count(*) FROM audit_events WHERE op = 'encrypt' "
                      "AND outcome = 'ok'", srv.db))
    assert events >= len(acked), f"{len(acked)} acknowledged, {events} events"
    body = expect(srv.admin.get("/v1/audit/verify"), 200)
    assert body["valid"] is True, body


def outage(probe, acked, statuses):
    """Stop PostgreSQL under load, check the service fails closed, start it, see it recover."""
    try:
        poll_until(lambda: len(acked) >= 20, what="some encryptions before the outage")
        pg_ctl("stop")
        poll_until(lambda: probe.get("/readyz", check=False).status_code == 503,
                   what="/readyz not ready while PostgreSQL is down")
        before = statuses.get(503, 0)
        poll_until(lambda: statuses.get(503, 0) > before, what="503 while PostgreSQL is down")
        poll_until(lambda: 'difyguard_db_circuit_open{backend="postgres"} 1'
                   in probe.get("/metrics", check=False).text,
                   what="the circuit breaker open while PostgreSQL is down")
        m = probe.get("/metrics", check=False).text
        assert 'difyguard_db_errors_total{backend="postgres"} 0' not in m
    finally:
        pg_ctl("start")
    poll_until(lambda: probe.get("/readyz", check=False).status_code == 200, deadline=30,
               what="/readyz ready again without a restart")
    n0 = len(acked)
    poll_until(lambda: len(acked) > n0 + 10, deadline=30, what="encryptions succeed again")


# ----------------------------------------------------------------------------------------------
# several replicas on one database

SYNC_DEADLINE = 6.0  # README: changes reach other replicas within 2 s; 3x that for slow CI


def replicas(pgserver, tmp_path, n=2, extra=()):
    """n servers on one database, sharing the root key (a Secret mounted in every pod)."""
    first = pgserver()
    url = db_url(first.db)
    out = [first]
    for i in range(1, n):
        dd = tmp_path / f"replica{i}"
        os.makedirs(dd)
        shutil.copy(os.path.join(first.data_dir, "root.key"), dd / "root.key")
        os.chmod(dd / "root.key", 0o600)
        srv = Server(str(dd), args=["--database", url] + list(extra),
                     admin_key=first.admin_key)
        srv.db = first.db
        out.append(srv.start())
    return out


def test_two_replicas_behave_as_one(pgserver, tmp_path):
    a, b = replicas(pgserver, tmp_path)
    try:
        kr = a.create_keyring()
        app = uniq("app")
        expect(a.admin.post("/v1/apps", {"name": app, "description": "pg"}), 201)
        # a key minted on A is accepted by B at once (its Bloom filter learns ids from the store)
        api_a, key = a.issue_key(CRYPTO_SCOPES, keyrings=[kr], app=app)
        api_b = b.client(api_a.token)
        text = new_text("replicas")
        ct1 = expect(api_b.post(f"/v1/keyrings/{kr}/encrypt", {"text": text}), 200)["ciphertext"]
        assert api_a.decrypt(kr, ct1)["text"] == text
        assert ct1.startswith("dg:v1:")

        # rotated through A: B encrypts with version 2 within the bound
        expect(a.admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)
        poll_until(lambda: api_b.encrypt(kr, text=text)["ciphertext"].startswith("dg:v2:"),
                   deadline=SYNC_DEADLINE, what="B encrypts with the version rotated on A")

        # version 1 disabled through A: B refuses it within the bound
        expect(a.admin.patch(f"/v1/keyrings/{kr}", {"min_encryption_version": 2,
                                                   "min_decryption_version": 2}), 200)
        poll_until(lambda: api_b.post(f"/v1/keyrings/{kr}/decrypt", {"ciphertext": ct1},
                                      check=False).status_code == 422,
                   deadline=SYNC_DEADLINE, what="B refuses the version disabled on A")

        # the key revoked through A: B refuses it within the bound
        expect(a.admin.delete(f"/v1/apps/{app}/keys/{key['id']}"), 204)
        poll_until(lambda: api_b.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"},
                                      check=False).status_code == 401,
                   deadline=SYNC_DEADLINE, what="B refuses the key revoked on A")

        # each replica writes its own chain; verify covers both, on either replica
        chains = int(psql("SELECT count(DISTINCT chain_id) FROM audit_events", a.db))
        assert chains >= 2, chains
        for s in (a, b):
            body = expect(s.admin.get("/v1/audit/verify"), 200)
            assert body["valid"] is True and body["chains"] >= 2, body
    finally:
        b.stop()


def test_encryption_counts_across_replicas(pgserver, tmp_path):
    """Each replica reserves a range of encryptions of its own: the durable count is an upper
    bound of what both did (with a reservation that only raised a shared value, the second
    replica would count inside the first one's range)."""
    block = 16
    first = pgserver()
    first.stop()
    first.args += ["--reserve-block", str(block)]
    first.start()
    dd = tmp_path / "replica-count"
    os.makedirs(dd)
    shutil.copy(os.path.join(first.data_dir, "root.key"), dd / "root.key")
    os.chmod(dd / "root.key", 0o600)
    b = Server(str(dd), args=["--database", db_url(first.db), "--reserve-block", str(block)],
               admin_key=first.admin_key).start()
    try:
        kr = first.create_keyring()
        api_a, _ = first.issue_key(["encrypt"], keyrings=[kr])
        api_b = b.client(api_a.token)
        n_a, n_b = 3 * block + 1, 2 * block + 1
        for _ in range(n_a):
            api_a.encrypt(kr, text="a")
        for _ in range(n_b):
            api_b.encrypt(kr, text="b")
        n_a2 = 3 * block  # A goes on inside the range it reserved before B, then past it
        for _ in range(n_a2):
            api_a.encrypt(kr, text="a")
        done = n_a + n_b + n_a2
        reserved = int(psql("SELECT v.encryptions_reserved FROM key_versions v JOIN keyrings k "
                            f"ON k.id = v.keyring_id WHERE k.name = '{kr}'", first.db))
        assert reserved >= done, f"reserved {reserved} < {done} done"
    finally:
        b.stop()


def test_connections_killed_and_a_replica_killed(pgserver, tmp_path):
    """pg_terminate_backend on every connection, twice, under load on two replicas, then one
    replica killed with SIGKILL mid-load: the other keeps serving, no acknowledged encryption is
    missing from the trail, and every chain (the dead replica's too) verifies."""
    a, b = replicas(pgserver, tmp_path)
    kr = a.create_keyring()
    api_a, _ = a.issue_key(["encrypt"], keyrings=[kr])
    api_b = b.client(api_a.token)
    acked, unexpected, stop = {"a": 0, "b": 0}, [], threading.Event()

    def load(name, api):
        while not stop.is_set():
            try:
                r = api.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"}, check=False,
                             timeout=30)
            except Exception:  # noqa: BLE001 -- B killed: not acknowledged
                continue
            if r.status_code == 200:
                acked[name] += 1
            elif r.status_code != 503:
                unexpected.append((r.status_code, r.text[:200]))

    threads = [threading.Thread(target=load, args=(n, api), daemon=True)
               for n, api in (("a", api_a), ("b", api_b))]
    for t in threads:
        t.start()
    try:
        for _ in range(2):
            n0 = acked["a"] + acked["b"]
            poll_until(lambda: acked["a"] + acked["b"] > n0 + 20, what="encryptions")
            psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                 f"WHERE datname = '{a.db}' AND pid <> pg_backend_pid()")
        n0 = acked["b"]
        poll_until(lambda: acked["b"] > n0 + 10, what="encryptions on B")
        b.kill()
        n0 = acked["a"]
        poll_until(lambda: acked["a"] > n0 + 20, deadline=30, what="A serves on")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not unexpected, unexpected[:5]
    done = acked["a"] + acked["b"]
    events = int(psql("SELECT count(*) FROM audit_events WHERE op = 'encrypt' "
                      "AND outcome = 'ok'", a.db))
    assert events >= done, f"{done} acknowledged, {events} events"
    body = expect(a.admin.get("/v1/audit/verify"), 200)
    assert body["valid"] is True and body["chains"] >= 2, body
    assert body["events"] >= done, f"{done} acknowledged, {body['events']} events verified"


def test_notify_brings_changes_without_polling(pgserver, tmp_path):
    """LISTEN/NOTIFY: with polling every hour (and key rows trusted for two), a rotation and a
    revocation through A still reach B."""
    a, b = replicas(pgserver, tmp_path, extra=["--replica-sync-interval", "1h"])
    try:
        kr = a.create_keyring()
        app = uniq("app")
        expect(a.admin.post("/v1/apps", {"name": app, "description": "pg"}), 201)
        api_a, key = a.issue_key(["encrypt"], keyrings=[kr], app=app)
        api_b = b.client(api_a.token)
        assert api_b.encrypt(kr, text="before")["ciphertext"].startswith("dg:v1:")
        expect(a.admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)
        poll_until(lambda: api_b.encrypt(kr, text="after")["ciphertext"].startswith("dg:v2:"),
                   deadline=SYNC_DEADLINE, what="B learns of the rotation by NOTIFY")
        expect(a.admin.delete(f"/v1/apps/{app}/keys/{key['id']}"), 204)
        poll_until(lambda: api_b.post(f"/v1/keyrings/{kr}/encrypt", {"text": "x"},
                                      check=False).status_code == 401,
                   deadline=SYNC_DEADLINE, what="B learns of the revocation by NOTIFY")
    finally:
        b.stop()


def test_rapid_rotations_with_sync_racing(pgserver, tmp_path):
    """Rotations in quick succession on both replicas while each syncs from the database (every
    change is also NOTIFYed to the replica that made it): a sync that reads a keyring row and its
    versions across a rotation must not mark the keyring broken, nor undo a newer local change."""
    a, b = replicas(pgserver, tmp_path)
    try:
        kr = a.create_keyring()
        api_a, _ = a.issue_key(["encrypt"], keyrings=[kr])
        api_b = b.client(api_a.token)
        for _ in range(60):  # one replica alone: its own syncs race its rotations, never 409
            expect(a.admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)
        api_a.encrypt(kr, text="a")
        for i in range(40):
            src = a if i % 2 == 0 else b
            r = src.admin.post(f"/v1/keyrings/{kr}/rotate", {}, check=False)
            assert r.status_code in (200, 409), r.text  # 409: the other replica rotated first
            api_a.encrypt(kr, text="a")
            api_b.encrypt(kr, text="b")
        latest = int(psql(f"SELECT latest_version FROM keyrings WHERE name = '{kr}'", a.db))
        for s in (a, b):
            poll_until(lambda: expect(s.admin.get(f"/v1/keyrings/{kr}"), 200)["latest_version"]
                       == latest, deadline=SYNC_DEADLINE, what="both replicas at the latest version")
        for s in (a, b):
            for line in open(s.stdout_path):
                assert "keyring_integrity_failure" not in line, line
    finally:
        b.stop()


def test_password_from_pgpassfile(tmp_path):
    """A role that must give a password (SCRAM): difyguard gets it from PGPASSFILE like any libpq
    client, the URL carries none, and neither a refusal nor a log line shows it."""
    secret = "pgpass-" + "Kx7" * 6
    SECRETS.add(secret, "PostgreSQL password (PGPASSFILE)")
    role, db = f"dgpw_{os.getpid()}", fresh_db()
    psql(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
    psql(f"ALTER DATABASE {db} OWNER TO {role}")
    hba = os.path.join(PG_DIR, "data", "pg_hba.conf")
    with open(hba) as f:
        rules = f.read()
    with open(hba, "w") as f:
        f.write(f"local all {role} scram-sha-256\n" + rules)
    psql("SELECT pg_reload_conf()")
    u = urllib.parse.urlsplit(PG_URL)
    host = urllib.parse.parse_qs(u.query)["host"][0]
    url = f"postgresql:///{db}?host={host}&user={role}"
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:{role}:{secret}\n")
    os.chmod(passfile, 0o600)
    dd = tmp_path / "data"
    os.makedirs(dd)
    refused = run_cli(["init", "--data-dir", str(dd), "--database", url, "--json"],
                      env={"PGPASSFILE": str(tmp_path / "none")})
    assert refused.returncode != 0 and "cannot connect to PostgreSQL" in refused.stderr
    proc = run_cli(["init", "--data-dir", str(dd), "--database", url, "--json"],
                   env={"PGPASSFILE": str(passfile)})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    SECRETS.add(info["key"], "admin key")
    srv = Server(str(dd), args=["--database", url], admin_key=info["key"],
                 env={"PGPASSFILE": str(passfile)}).start()
    try:
        kr = srv.create_keyring()
        api, _ = srv.issue_key(["encrypt", "decrypt"], keyrings=[kr])
        assert api.decrypt(kr, api.encrypt(kr, text="pw")["ciphertext"])["text"] == "pw"
    finally:
        srv.stop()
    for out in (refused.stdout + refused.stderr, proc.stdout + proc.stderr):
        assert secret not in out


def test_statement_timeout_fails_closed(pgserver):
    """A table locked by someone else for longer than the statement timeout (5 s): the request
    that needs it is answered 503 instead of hanging until the lock goes, and the service works
    again once it is gone."""
    srv = pgserver()
    locker = subprocess.Popen(["psql", "-qtAX", db_url(srv.db, password=False), "-c",
                               "BEGIN; LOCK TABLE keyrings IN ACCESS EXCLUSIVE MODE; "
                               "SELECT pg_sleep(60); COMMIT;"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(os.environ, PGAPPNAME="dg_locker"))
    try:
        poll_until(lambda: psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                "c.oid = l.relation WHERE c.relname = 'keyrings' AND "
                                "l.mode = 'AccessExclusiveLock' AND l.granted", srv.db) == "1",
                   what="the lock held")
        r = srv.admin.post("/v1/keyrings", {"name": uniq("kr")}, check=False, timeout=55)
        assert r.status_code == 503, r.text
        assert locker.poll() is None, "the lock went before the request ended"
    finally:  # the server notices a killed client only when its sleep ends: end it there
        psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE application_name = 'dg_locker'")
        locker.wait(timeout=30)
    poll_until(lambda: srv.admin.post("/v1/keyrings", {"name": uniq("kr")},
                                      check=False).status_code == 201,
               deadline=30, what="keyrings created again once the lock is gone")


def test_tls_to_postgresql_verify_full(tmp_path):
    """`sslmode=verify-full` reaches libpq as given: against a cluster serving TLS on 127.0.0.1
    with a certificate our CA issued for that address, every connection of the pool is
    encrypted (pg_stat_ssl); with another CA, or a name the certificate does not carry, `init`
    and `serve` refuse to start with libpq's reason and no password in it."""
    import pwd
    import certkit
    from conftest import free_port, run_serve_expecting_exit

    pki, other = certkit.Pki("PG"), certkit.Pki("Other")
    d = tempfile.mkdtemp(prefix="dg-pgtls.")
    os.chmod(d, 0o755)
    owner = pwd.getpwnam("postgres") if os.getuid() == 0 else None
    leaf = pki.leaf("localhost", sans=("localhost", "127.0.0.1"))
    crt, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    certkit.write(crt, pki.chain_pem(leaf))
    certkit.write_key(key, leaf)
    if owner is not None:               # the cluster runs as postgres; its key must be its own
        for f in (crt, key):
            os.chown(f, owner.pw_uid, owner.pw_gid)
    ca = certkit.write(tmp_path / "ca.pem", pki.root.pem)
    wrong_ca = certkit.write(tmp_path / "other-ca.pem", other.root.pem)
    port = free_port()
    cdir = os.path.join(d, "c")
    env = dict(os.environ, PGTEST_OPTS=f"-c listen_addresses=127.0.0.1 -c port={port} "
                                       f"-c ssl=on -c ssl_cert_file={crt} -c ssl_key_file={key}")
    subprocess.run([PGTEST, "start", cdir], check=True, capture_output=True, env=env, timeout=180)
    user = "postgres" if owner is not None else pwd.getpwuid(os.getuid()).pw_name

    def conninfo(host, root, db="postgres"):
        return (f"host={host} hostaddr=127.0.0.1 port={port} dbname={db} user={user} "
                f"password={PASSWORD} sslmode=verify-full sslrootcert={root}")
    try:
        subprocess.run(["psql", "-qtAX", conninfo("127.0.0.1", ca), "-c", "CREATE DATABASE tls"],
                       check=True, capture_output=True, timeout=60)
        good = conninfo("127.0.0.1", ca, "tls")
        dd = tmp_path / "data"
        proc = run_cli(["init", "--data-dir", str(dd), "--database", good, "--json"])
        assert proc.returncode == 0, proc.stderr
        info = json.loads(proc.stdout)
        SECRETS.add(info["key"], "admin key")
        assert PASSWORD not in proc.stdout
        srv = Server(str(dd), args=["--database", good], admin_key=info["key"]).start()
        kr = srv.create_keyring()
        ct = expect(srv.admin.post(f"/v1/keyrings/{kr}/encrypt", {"text": "over tls"}),
                    200)["ciphertext"]
        assert expect(srv.admin.post(f"/v1/keyrings/{kr}/decrypt", {"ciphertext": ct}),
                      200)["text"] == "over tls"
        rows = subprocess.run(
            ["psql", "-qtAX", conninfo("127.0.0.1", ca), "-c",
             "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
             "WHERE a.datname = 'tls'"], check=True, capture_output=True, text=True,
            timeout=60).stdout.split()
        assert rows and set(rows) == {"t"}, rows     # every pooled connection is TLS
        srv.stop()
        for bad, why in [(conninfo("127.0.0.1", wrong_ca, "tls"), "certificate verify failed"),
                         (conninfo("db.example", ca, "tls"), "does not match host name")]:
            proc = run_cli(["init", "--data-dir", str(tmp_path / uniq("d")), "--database", bad])
            assert proc.returncode != 0 and why in proc.stderr, proc.stderr
            assert PASSWORD not in proc.stderr + proc.stdout
            rc, err, _ = run_serve_expecting_exit(str(dd), f"127.0.0.1:{free_port()}",
                                                  extra=["--database", bad])
            assert rc != 0 and why in err and PASSWORD not in err, err
    finally:
        subprocess.run([PGTEST, "stop", cdir], timeout=120, capture_output=True, env=env)
        shutil.rmtree(d, ignore_errors=True)
