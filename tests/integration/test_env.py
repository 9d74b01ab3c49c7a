# SPDX-License-Identifier: Apache-2.0
"""`difyguard env encrypt|decrypt|exec|check` against the real server: dotenv fidelity (quotes,
escapes, multiline values, comments, export, CRLF, a BOM, duplicates), idempotent encryption,
values bound to their variable and environment (tampered, swapped, moved values and the wrong
environment fail, and nothing is written or run), decrypt's file modes, exec's environment,
exit status and signals, waiting for a server that comes up late, and scope restrictions.
Every clear value is registered as a secret: the session-end scan fails if one reaches a log or
CLI stderr."""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest

import conftest
from conftest import SECRETS, BIN, child_env, expect, free_port, poll_until, run_cli, uniq

CT = re.compile(r"dg:v[1-9][0-9]*:[A-Za-z0-9_-]+")

# (name, as written in the file, the value it means)
CASES = [
    ("PLAIN", "PLAIN=plain-value-1234", "plain-value-1234"),
    ("SPACED", "SPACED = spaced value 5678   ", "spaced value 5678"),
    ("EXPORTED", "export EXPORTED=exported-9abc", "exported-9abc"),
    ("SINGLE", "SINGLE='single $HOME \\n # kept'", "single $HOME \\n # kept"),
    ("DOUBLE", 'DOUBLE="tab\\there \\"q\\" back\\\\slash \\$x"', 'tab\there "q" back\\slash $x'),
    ("HASHQ", 'HASHQ="a # inside quotes" # a comment', "a # inside quotes"),
    ("HASHBARE", "HASHBARE=pass#word # comment", "pass#word"),
    ("EQUALS", "EQUALS=a=b==c", "a=b==c"),
    ("BACKSL", "BACKSL=C:\\path\\to\\x", "C:\\path\\to\\x"),
    ("MULTI", 'MULTI="line one\nline two\n  line three"', "line one\nline two\n  line three"),
    ("MULTI1", "MULTI1='-----BEGIN KEY-----\nabc\n-----END KEY-----'",
     "-----BEGIN KEY-----\nabc\n-----END KEY-----"),
    ("UNICODE", "UNICODE=pässwörd-✓-secret", "pässwörd-✓-secret"),
    ("EMPTY", "EMPTY=", ""),
    ("EMPTYQ", 'EMPTYQ=""', ""),
    ("CELERY_BROKER_URL", "CELERY_BROKER_URL=redis://:difyai-pw-0042@redis:6379/1",
     "redis://:difyai-pw-0042@redis:6379/1"),
]


def fidelity_text(crlf=False, bom=False):
    lines = ["# Dify env secrets", "", "   # an indented comment"]
    for _, written, _ in CASES:
        lines.append(written)
    lines.append("")
    text = "\n".join(lines) + "\n"
    if crlf:
        text = text.replace("\n", "\r\n")
    if bom:
        text = "\ufeff" + text
    return text


def register_values():
    for _, _, value in CASES:
        SECRETS.add_text(value, "dotenv value")


@pytest.fixture(scope="module")
def kr(server):
    return server.create_keyring(uniq("dotenv"))


@pytest.fixture(scope="module")
def key(server, kr):
    api, _ = server.issue_key(["encrypt", "decrypt"], keyrings=[kr])
    return api.token


def env_of(server, token, extra=None):
    e = {"DIFYGUARD_ADDR": server.url, "DIFYGUARD_TOKEN": token}
    e.update(extra or {})
    return e


def env_cli(server, token, *args, extra=None, ok=True):
    proc = run_cli(["env"] + list(args), env=env_of(server, token, extra))
    if ok:
        assert proc.returncode == 0, (args, proc.returncode, proc.stderr)
        assert proc.stderr == "", proc.stderr
    return proc


def one_line(proc, code):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("difyguard: "), proc.stderr
    return lines[0]


def write(path, text):
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return str(path)


def encrypt(server, key, kr, path, *extra, env="prod"):
    proc = env_cli(server, key, "encrypt", str(path), "--keyring", kr, "--environment", env,
                   *extra)
    for ct in CT.findall(proc.stdout):
        conftest.register_ciphertext(ct)
    return proc.stdout


def exec_env(server, key, kr, path, names, env="prod", extra=None):
    """The values the command sees, through env exec."""
    code = ("import json,os,sys; json.dump({k: os.environ.get(k) for k in sys.argv[1:]}, "
            "sys.stdout)")
    proc = env_cli(server, key, "exec", str(path), "--keyring", kr, "--environment", env, "--",
                   sys.executable, "-c", code, *names, extra=extra)
    return json.loads(proc.stdout)


# ---- fidelity -------------------------------------------------------------------------------

@pytest.mark.parametrize("crlf,bom", [(False, False), (True, True)])
def test_encrypt_keeps_the_file_and_decrypts_to_the_same_values(server, key, kr, tmp_path,
                                                                 crlf, bom):
    register_values()
    src = fidelity_text(crlf=crlf, bom=bom)
    path = write(tmp_path / "app.env", src)
    encrypt(server, key, kr, path, "--out", str(tmp_path / "app.enc.env"))
    with open(tmp_path / "app.enc.env", "rb") as f:      # bytes: CRLF as written
        out = f.read().decode("utf-8")
    for ct in CT.findall(out):
        conftest.register_ciphertext(ct)
    # every non-empty value is now a ciphertext; empty ones stay empty
    names = [n for n, _, _ in CASES]
    for name, _, value in CASES:
        if value:
            assert value not in out
    # comments, blank lines, export prefixes, quoting, BOM and line ends are kept
    assert out.startswith("\ufeff# Dify env secrets" if bom else "# Dify env secrets")
    inner = sum(v.count("\n") for _, _, v in CASES)      # line breaks inside values
    assert out.count("\n") == src.count("\n") - inner
    assert out.count("\r\n") == (out.count("\n") if crlf else 0)
    assert "\n   # an indented comment" in out
    assert re.search(r"^export EXPORTED=dg:v1:", out, re.M)
    assert re.search(r"^SINGLE='dg:v1:[A-Za-z0-9_-]+'$", out.replace("\r", ""), re.M)
    assert re.search(r'^HASHQ="dg:v1:[A-Za-z0-9_-]+" # a comment$', out.replace("\r", ""), re.M)
    assert re.search(r"^SPACED = dg:v1:[A-Za-z0-9_-]+   $", out.replace("\r", ""), re.M)
    assert "\nEMPTY=" in out.replace("\r", "") and '\nEMPTYQ=""' in out.replace("\r", "")
    enc = str(tmp_path / "app.enc.env")
    # what a command sees is the original meaning of every value
    got = exec_env(server, key, kr, enc, names)
    assert got == {n: v for n, _, v in CASES}
    # and decrypt writes a file that means the same (read back through exec of the clear file:
    # no encrypted values left, so nothing to decrypt)
    clear = tmp_path / "out" / "sub" / "clear.env"
    env_cli(server, key, "decrypt", enc, "--keyring", kr, "--environment", "prod",
            "--out", str(clear))
    assert stat.S_IMODE(os.stat(clear).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(clear.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(clear.parent.parent).st_mode) == 0o700
    assert not CT.search(clear.read_text())
    assert exec_env(server, key, kr, clear, names) == {n: v for n, _, v in CASES}
    # encrypting the clear file again gives a file that still means the same
    again = write(tmp_path / "again.env", encrypt(server, key, kr, clear))
    assert exec_env(server, key, kr, again, names) == {n: v for n, _, v in CASES}


def test_encrypt_is_idempotent_and_selective(server, key, kr, tmp_path):
    SECRETS.add_text("db-password-77aa", "dotenv value")
    SECRETS.add_text("api-key-88bb-value", "dotenv value")
    path = write(tmp_path / "a.env", "DB_HOST=db\nDB_PASSWORD=db-password-77aa\n"
                                     "OPENAI_API_KEY=api-key-88bb-value\n")
    once = encrypt(server, key, kr, path, "--only", "DB_*,*_KEY", "--except", "DB_HOST")
    assert once.startswith("DB_HOST=db\nDB_PASSWORD=dg:v1:")
    assert len(CT.findall(once)) == 2
    p2 = write(tmp_path / "b.env", once)
    # what is already encrypted is left alone: unchanged
    assert encrypt(server, key, kr, p2, "--only", "DB_*,*_KEY", "--except", "DB_HOST") == once
    # --in-place keeps the mode; --out writes elsewhere
    os.chmod(path, 0o640)
    env_cli(server, key, "encrypt", path, "--keyring", kr, "--environment", "prod", "--in-place")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    text = open(path).read()
    assert len(CT.findall(text)) == 3 and "db-password" not in text
    for ct in CT.findall(text):
        conftest.register_ciphertext(ct)
    proc = env_cli(server, key, "encrypt", path, "--keyring", kr, "--environment", "prod",
                   "--in-place", "--out", str(tmp_path / "x"), ok=False)
    one_line(proc, 2)


def test_decrypt_to_stdout_and_required_out(server, key, kr, tmp_path):
    SECRETS.add_text("stdout-secret-1111", "dotenv value")
    enc = write(tmp_path / "e.env", encrypt(server, key, kr,
                                            write(tmp_path / "c.env", "S=stdout-secret-1111\n")))
    proc = env_cli(server, key, "decrypt", enc, "--keyring", kr, "--environment", "prod",
                   "--out", "-")
    assert proc.stdout == "S=stdout-secret-1111\n"
    proc = env_cli(server, key, "decrypt", enc, "--keyring", kr, "--environment", "prod",
                   ok=False)
    one_line(proc, 2)
    proc = env_cli(server, key, "decrypt", enc, "--keyring", kr, "--out", "-", ok=False)
    assert "--environment" in one_line(proc, 2)


# ---- binding and tampering: fail closed --------------------------------------------------------

@pytest.fixture
def pair(server, key, kr, tmp_path):
    SECRETS.add_text("alpha-secret-value", "dotenv value")
    SECRETS.add_text("bravo-secret-value", "dotenv value")
    text = encrypt(server, key, kr, write(tmp_path / "p.env",
                                         "ALPHA=alpha-secret-value\nBRAVO=bravo-secret-value\n"))
    a, b = CT.findall(text)
    return a, b


def refused(server, key, kr, tmp_path, text, env="prod", why=None):
    """decrypt and exec both refuse the file; no output file, the command never runs."""
    path = write(tmp_path / "bad.env", text)
    out = tmp_path / "never.env"
    proc = env_cli(server, key, "decrypt", path, "--keyring", kr, "--environment", env,
                   "--out", str(out), ok=False)
    line = one_line(proc, 1)
    assert not out.exists()
    marker = tmp_path / "ran"
    proc = env_cli(server, key, "exec", path, "--keyring", kr, "--environment", env, "--",
                   "touch", str(marker), ok=False)
    one_line(proc, 1)
    assert not marker.exists()
    assert proc.stdout == ""
    if why:
        assert why in line, line
    return line


def test_swapped_moved_and_wrong_environment_fail(server, key, kr, tmp_path, pair):
    a, b = pair
    # the untouched file works
    assert exec_env(server, key, kr, write(tmp_path / "ok.env", f"ALPHA={a}\nBRAVO={b}\n"),
                    ["ALPHA", "BRAVO"]) == {"ALPHA": "alpha-secret-value",
                                            "BRAVO": "bravo-secret-value"}
    line = refused(server, key, kr, tmp_path, f"ALPHA={b}\nBRAVO={a}\n",
                   why="decryption_failed")
    assert "2 of 2" in line
    refused(server, key, kr, tmp_path, f"OTHER={a}\n", why="OTHER")
    refused(server, key, kr, tmp_path, f"ALPHA={a}\n", env="staging", why="decryption_failed")


def test_tampered_values_fail(server, key, kr, tmp_path, pair):
    a, _ = pair
    head, blob = a.rsplit(":", 1)
    flipped = head + ":" + blob[:20] + ("A" if blob[20] != "A" else "B") + blob[21:]
    refused(server, key, kr, tmp_path, f"ALPHA={flipped}\n")
    refused(server, key, kr, tmp_path, f"ALPHA={a[:-4]}\n")
    # a damaged ciphertext is never passed on as a clear value
    refused(server, key, kr, tmp_path, f"ALPHA=dg:v1:{blob[:10]}!!\n", why="damaged")
    refused(server, key, kr, tmp_path, f"ALPHA={a.replace('dg:v1:', 'dg:v2:')}\n")


def test_syntax_errors_and_duplicates(server, key, kr, tmp_path):
    SECRETS.add_text("dup-secret-value-1", "dotenv value")
    for text, where in [("A=1\nB='unterminated\n", ":2:"), ("A=1\nnot an assignment\n", ":2:"),
                        ('A="x" trailing\n', ":1:"), ("A=1\rB=2\n", ":1:"),
                        ("A=1\nA=dup-secret-value-1\n", ":2:")]:
        path = write(tmp_path / "s.env", text)
        proc = env_cli(server, key, "decrypt", path, "--keyring", kr, "--environment", "prod",
                       "--out", "-", ok=False)
        line = one_line(proc, 1)
        assert where in line, line
        assert "dup-secret-value-1" not in line
    proc = run_cli(["env", "check", path])
    assert proc.returncode == 1 and "defined again (first on line 1)" in proc.stdout


# ---- exec ------------------------------------------------------------------------------------

def test_exec_environment_and_exit_status(server, key, kr, tmp_path, pair):
    a, _ = pair
    path = write(tmp_path / "x.env", f"ALPHA={a}\nCLEAR=visible\n")
    got = exec_env(server, key, kr, path, ["ALPHA", "CLEAR", "DIFYGUARD_TOKEN", "DIFYGUARD_ADDR",
                                            "DIFYGUARD_OTHER", "KEEP_ME"],
                   extra={"DIFYGUARD_OTHER": "x", "KEEP_ME": "kept", "ALPHA": "from-outside"})
    assert got == {"ALPHA": "alpha-secret-value", "CLEAR": "visible", "DIFYGUARD_TOKEN": None,
                   "DIFYGUARD_ADDR": None, "DIFYGUARD_OTHER": None, "KEEP_ME": "kept"}
    proc = env_cli(server, key, "exec", path, "--keyring", kr, "--environment", "prod", "--",
                   sys.executable, "-c", "import sys; sys.exit(7)", ok=False)
    assert proc.returncode == 7 and proc.stderr == ""
    proc = env_cli(server, key, "exec", path, "--keyring", kr, "--environment", "prod", "--",
                   str(tmp_path / "no-such-command"), ok=False)
    assert "cannot run" in one_line(proc, 127)
    proc = env_cli(server, key, "exec", path, "--keyring", kr, "--environment", "prod", ok=False)
    one_line(proc, 2)


def test_exec_signals_reach_the_command(server, key, kr, tmp_path, pair):
    a, _ = pair
    path = write(tmp_path / "sig.env", f"ALPHA={a}\n")
    ready, got = tmp_path / "ready", tmp_path / "got"
    code = (f"import os,signal,sys,time\n"
            f"def h(s,f):\n open({str(got)!r},'w').write(str(s)); sys.exit(42)\n"
            f"signal.signal(signal.SIGTERM,h)\n"
            f"open({str(ready)!r},'w').write(os.environ['ALPHA'][:5])\n"
            f"time.sleep(60)\n")
    err = conftest._CTX.log_path("cli-env-exec-signal.stderr")
    with open(err, "wb") as ef:
        proc = subprocess.Popen([BIN, "env", "exec", path, "--keyring", kr, "--environment",
                                 "prod", "--", sys.executable, "-c", code],
                                env=child_env(env_of(server, key)), stderr=ef,
                                stdout=subprocess.DEVNULL)
        poll_until(lambda: ready.exists() and ready.read_text() == "alpha", deadline=30,
                   what="the command started")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 42
    assert got.read_text() == str(int(signal.SIGTERM))


# ---- the init container: waiting, scopes --------------------------------------------------------

def test_waits_for_a_server_that_comes_up_late(start_server, new_datadir, tmp_path, monkeypatch):
    dd = new_datadir()
    port = free_port()
    # encrypt against a first server on the same data dir, then stop it
    s1 = start_server(datadir=dd)
    kr = s1.create_keyring("dotenv")
    SECRETS.add_text("late-secret-value", "dotenv value")
    enc = write(tmp_path / "late.env", encrypt(
        s1, dd.admin_key, kr, write(tmp_path / "l.env", "LATE=late-secret-value\n")))
    s1.stop()
    addr = f"http://127.0.0.1:{port}"
    env = child_env({"DIFYGUARD_ADDR": addr, "DIFYGUARD_TOKEN": dd.admin_key})
    # nobody listening and a short wait: one line, exit 1
    proc = run_cli(["env", "decrypt", enc, "--environment", "prod", "--wait", "1",
                    "--out", "-"], env={"DIFYGUARD_ADDR": addr, "DIFYGUARD_TOKEN": dd.admin_key})
    one_line(proc, 1)
    err = conftest._CTX.log_path("cli-env-wait.stderr")
    with open(err, "wb") as ef:
        cli = subprocess.Popen([BIN, "env", "decrypt", enc, "--environment", "prod",
                                "--wait", "60", "--out", "-"], env=env, stderr=ef,
                               stdout=subprocess.PIPE)
        time.sleep(2)
        assert cli.poll() is None, "env decrypt gave up before --wait"
        monkeypatch.setattr(conftest, "free_port", lambda: port)
        start_server(datadir=dd)
        out, _ = cli.communicate(timeout=90)
    assert cli.returncode == 0
    assert out.decode() == "LATE=late-secret-value\n"


def test_decrypt_only_key_on_one_keyring(server, kr, tmp_path, pair):
    a, _ = pair
    api, _ = server.issue_key(["decrypt"], keyrings=[kr])
    path = write(tmp_path / "d.env", f"ALPHA={a}\n")
    proc = env_cli(server, api.token, "decrypt", path, "--keyring", kr, "--environment", "prod",
                   "--out", "-")
    assert proc.stdout == "ALPHA=alpha-secret-value\n"
    # no encrypt scope
    SECRETS.add_text("new-secret-value-99", "dotenv value")
    proc = env_cli(server, api.token, "encrypt", write(tmp_path / "n.env",
                                                      "N=new-secret-value-99\n"),
                   "--keyring", kr, "--environment", "prod", ok=False)
    assert "403" in one_line(proc, 1)
    # another keyring is not allowed either
    other = server.create_keyring(uniq("other"))
    proc = env_cli(server, api.token, "decrypt", path, "--keyring", other, "--environment",
                   "prod", "--out", "-", ok=False)
    assert "403" in one_line(proc, 1)


# ---- check ------------------------------------------------------------------------------------

def test_check_without_decrypting(server, key, kr, tmp_path, pair):
    a, b = pair
    SECRETS.add_text("clear-password-123", "dotenv value")
    good = write(tmp_path / "g.env", f"# ok\nDB_HOST=db\nALPHA={a}\nexport BRAVO='{b}'\nE=\n")
    proc = run_cli(["env", "check", good])
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"ALPHA\s+encrypted v1", proc.stdout)
    assert re.search(r"BRAVO\s+encrypted v1", proc.stdout)
    assert re.search(r"DB_HOST\s+clear", proc.stdout) and re.search(r"E\s+empty", proc.stdout)
    bad = write(tmp_path / "b.env", "DB_PASSWORD=clear-password-123\n"
                                    "CELERY_BROKER_URL=redis://:clear-password-123@r:6379/1\n"
                                    f"ALPHA=dg:v1:{a[6:16]}*\nOK=fine\n")
    proc = run_cli(["env", "check", bad])
    assert proc.returncode == 1
    assert "clear-password-123" not in proc.stdout + proc.stderr
    assert ":1: DB_PASSWORD" in proc.stdout and ":2: CELERY_BROKER_URL" in proc.stdout
    assert ":3: ALPHA" in proc.stdout and ":4:" not in proc.stdout
    assert "3 problems" in proc.stderr


def test_decrypt_for_a_shell(server, key, kr, tmp_path):
    """--format shell: export lines a POSIX shell sources to exactly the values (the pattern of
    the compose and Kubernetes examples, where the Dify image sources a tmpfs file)."""
    register_values()
    SECRETS.add_text("it's a 'quoted' `cmd` $(x)", "dotenv value")
    cases = CASES + [("QUOTES", "QUOTES=\"it's a 'quoted' `cmd` $(x)\"",
                      "it's a 'quoted' `cmd` $(x)")]
    src = "\n".join(w for _, w, _ in cases) + "\n"
    enc = write(tmp_path / "s.env", encrypt(server, key, kr, write(tmp_path / "c.env", src)))
    out = tmp_path / "run" / "env.sh"
    env_cli(server, key, "decrypt", enc, "--keyring", kr, "--environment", "prod",
            "--format", "shell", "--out", str(out))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    names = [n for n, _, _ in cases]
    code = ("import json,os,sys; json.dump({k: os.environ.get(k) for k in sys.argv[1:]}, "
            "sys.stdout)")
    proc = subprocess.run(["/bin/sh", "-c", f'. "$1" && shift && exec "$@"', "sh", str(out),
                           sys.executable, "-c", code] + names,
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {n: v for n, _, v in cases}
    proc = env_cli(server, key, "decrypt", enc, "--keyring", kr, "--environment", "prod",
                   "--format", "yaml", "--out", "-", ok=False)
    one_line(proc, 2)


def test_over_tls_with_the_environment_from_a_variable(start_server, tmp_path):
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    key.chmod(0o600)
    conftest.register_root_key(str(key))
    srv = start_server(args=["--tls-cert", str(crt), "--tls-key", str(key)], wait=False)
    env = {"DIFYGUARD_ADDR": f"https://localhost:{srv.port}", "DIFYGUARD_TOKEN": srv.admin_key,
           "DIFYGUARD_CACERT": str(crt), "DIFYGUARD_ENVIRONMENT": "staging"}
    SECRETS.add_text("tls-dotenv-secret-1", "dotenv value")
    src = write(tmp_path / "t.env", "T=tls-dotenv-secret-1\n")

    def encrypted():
        p = run_cli(["keyring", "create", "dotenv"], env=env)
        p = run_cli(["env", "encrypt", src], env=env)
        return p if p.returncode == 0 else None
    proc = poll_until(encrypted, what="https listener")
    for ct in CT.findall(proc.stdout):
        conftest.register_ciphertext(ct)
    enc = write(tmp_path / "t.enc", proc.stdout)
    proc = run_cli(["env", "decrypt", enc, "--out", "-"], env=env)
    assert proc.returncode == 0 and proc.stdout == "T=tls-dotenv-secret-1\n", proc.stderr
    # bound to the environment the variable named
    proc = run_cli(["env", "decrypt", enc, "--out", "-", "--environment", "prod"], env=env)
    one_line(proc, 1)
    # an unknown CA is refused at once: not retried until --wait
    t0 = time.monotonic()
    proc = run_cli(["env", "decrypt", enc, "--out", "-", "--wait", "600"],
                   env={k: v for k, v in env.items() if k != "DIFYGUARD_CACERT"})
    one_line(proc, 1)
    assert time.monotonic() - t0 < 300
    srv.stop()
