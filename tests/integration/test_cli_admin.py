# SPDX-License-Identifier: Apache-2.0
"""The admin client: `difyguard app|key|keyring ...` over the HTTP API. Full key lifecycle
(create, list, show without the secret, revoke at once, rotate with a grace period), keyrings,
usage, --json, --help, exit codes (0 ok, 1 failure, 2 usage), one stderr line per failure, and
the token never taken from argv nor echoed. Every key the CLI prints is registered as a secret,
so the session-end scan fails if one reaches a server log or CLI stderr."""
import datetime
import json
import os
import re
import subprocess
import time

import pytest

import conftest
from conftest import (SECRETS, expect, free_port, new_text, poll_until, register_api_key,
                      run_cli, uniq)

GROUPS = {
    "app": ["create", "list", "show", "usage"],
    "key": ["create", "list", "show", "revoke", "rotate"],
    "keyring": ["create", "list", "show", "rotate", "update", "delete"],
}


def env_of(server, token=None):
    return {"DIFYGUARD_ADDR": server.url,
            "DIFYGUARD_TOKEN": server.admin_key if token is None else token}


def cli(server, *args, token=None, ok=True):
    proc = run_cli(list(args), env=env_of(server, token))
    if ok:
        assert proc.returncode == 0, (args, proc.returncode, proc.stderr)
        assert proc.stderr == "", proc.stderr
    return proc


def cli_json(server, *args):
    proc = cli(server, *args, "--json")
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"--json prints one line: {proc.stdout!r}"
    return json.loads(lines[0])


def one_error_line(proc, code):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one stderr line: {proc.stderr!r}"
    assert lines[0].startswith("difyguard: "), lines[0]
    return lines[0]


def new_key(server, app, *args):
    """`key create APP ARGS` in text mode: returns (key text, key id)."""
    proc = cli(server, "key", "create", app, *args)
    lines = proc.stdout.splitlines()
    key = lines[-1]
    assert key.startswith("dgk_") and " " not in key, f"the last line is the key: {lines!r}"
    register_api_key(key)
    assert proc.stdout.count(key) == 1, "the key is printed once"
    ids = [ln.split()[-1] for ln in lines if ln.startswith("id:")]
    assert len(ids) == 1 and ids[0] in key, lines
    return key, ids[0]


def status_code(server, token, keyring):
    r = server.client(token).post(f"/v1/keyrings/{keyring}/encrypt", {"text": new_text("cli")})
    return r.status_code


@pytest.fixture(scope="module")
def keyring(server):
    return server.create_keyring()


# ---- help and usage ---------------------------------------------------------------------------

@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_help_lists_subcommands_and_variables(group):
    proc = run_cli([group, "--help"])
    assert proc.returncode == 0, proc.stderr
    for sub in GROUPS[group]:
        assert f"{group} {sub}" in proc.stdout
    for var in ("DIFYGUARD_ADDR", "DIFYGUARD_TOKEN", "DIFYGUARD_CACERT"):
        assert var in proc.stdout
    bare = run_cli([group])
    assert bare.returncode == 2 and bare.stdout == "" and "usage" in bare.stderr


@pytest.mark.parametrize("group,sub", [(g, s) for g in sorted(GROUPS) for s in GROUPS[g]])
def test_subcommand_help(group, sub):
    proc = run_cli([group, sub, "--help"])
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith(f"usage: difyguard {group} {sub}"), text[:200]
    for flag, var in [("--addr", "DIFYGUARD_ADDR"), ("--cacert", "DIFYGUARD_CACERT"),
                      ("--json", "DIFYGUARD_JSON"), ("--timeout", "DIFYGUARD_TIMEOUT")]:
        assert flag in text and var in text, (flag, text)
    assert "DIFYGUARD_TOKEN" in text and "--token" not in text


# What a command grants or changes is a flag only (issue 6, finding 2): no DIFYGUARD_* variable
FLAG_ONLY = {
    ("app", "create"): ["--description"],
    ("app", "usage"): ["--from", "--to"],
    ("key", "create"): ["--scope", "--keyring", "--expires-in", "--rate", "--burst"],
    ("key", "rotate"): ["--grace-period"],
    ("keyring", "create"): ["--algorithm", "--deterministic", "--rotation-period",
                            "--deletion-allowed"],
}


@pytest.mark.parametrize("group,sub", sorted(FLAG_ONLY))
def test_help_marks_grant_options_flag_only(group, sub):
    text = run_cli([group, sub, "--help"]).stdout
    for flag in FLAG_ONLY[(group, sub)]:
        lines = [ln for ln in text.splitlines() if ln.lstrip().startswith(flag + " ")]
        assert len(lines) == 1, (flag, text)
        assert "flag only" in lines[0], lines[0]
        var = "DIFYGUARD_" + flag[2:].upper().replace("-", "_")
        assert re.search(var + r"\b", text) is None, (var, text)
    for var in ("DIFYGUARD_ADDR", "DIFYGUARD_CACERT", "DIFYGUARD_TIMEOUT", "DIFYGUARD_JSON"):
        assert var in text


def test_top_level_help_lists_admin_commands():
    text = run_cli(["--help"]).stdout
    for group in GROUPS:
        assert f"  {group} " in text, text


@pytest.mark.parametrize("args", [
    ["app", "frobnicate"],
    ["app", "show"],
    ["app", "list", "extra"],
    ["key", "show", "only-app"],
    ["key", "create", "some-app"],                             # no --scope
    ["key", "create", "some-app", "--scope", "encrypt,,decrypt"],
    ["key", "create", "some-app", "--scope"],
    ["key", "create", "some-app", "--scope", "encrypt", "--expires-in", "soon"],
    ["key", "create", "some-app", "--scope", "encrypt", "--rate", "-1"],
    ["key", "rotate", "some-app", "some-id", "--grace-period", "1y"],
    ["keyring", "create", "kr", "--rotation-period", "often"],
    ["app", "usage", "some-app", "--from", "2026-02-30x"],
    ["app", "list", "--no-such-flag"],
    ["app", "list", "--addr", "ftp://127.0.0.1:1"],
    ["app", "list", "--addr", "127.0.0.1:8080"],               # the scheme is required
])
def test_usage_errors_exit_2_with_one_line(server, args):
    proc = run_cli(args, env=env_of(server))
    one_error_line(proc, 2)
    assert proc.stdout == ""


def test_token_is_never_a_flag_nor_echoed(server):
    token = "dgk_" + os.urandom(24).hex()
    SECRETS.add(token, "token passed as a flag")
    for args in (["app", "list", "--token", token], ["key", "list", "a", f"--token={token}"]):
        proc = run_cli(args, env=env_of(server))
        line = one_error_line(proc, 2)
        assert "DIFYGUARD_TOKEN" in line and token not in proc.stderr + proc.stdout


def test_missing_token_is_a_usage_error(server):
    proc = run_cli(["app", "list"], env={"DIFYGUARD_ADDR": server.url})
    assert "DIFYGUARD_TOKEN" in one_error_line(proc, 2)


def test_address_with_credentials_is_refused_without_echo(server):
    pw = "pw-" + os.urandom(12).hex()
    SECRETS.add(pw, "password in --addr")
    addr = server.url.replace("http://", f"http://admin:{pw}@")
    proc = run_cli(["app", "list", "--addr", addr], env=env_of(server))
    one_error_line(proc, 2)
    assert pw not in proc.stderr


# ---- API failures -----------------------------------------------------------------------------

def test_api_errors_are_one_line_with_status_and_code(server):
    name = uniq("app")
    cli(server, "app", "create", name)
    line = one_error_line(cli(server, "app", "create", name, ok=False), 1)
    assert line.startswith("difyguard: POST /v1/apps: 409 conflict: "), line
    line = one_error_line(cli(server, "app", "show", "no-such-app", ok=False), 1)
    assert line.startswith("difyguard: GET /v1/apps/no-such-app: 404 not_found: "), line
    line = one_error_line(cli(server, "keyring", "rotate", "no-such-kr", ok=False), 1)
    assert "404 not_found" in line
    line = one_error_line(cli(server, "key", "create", name, "--scope", "no-such-scope",
                              ok=False), 1)
    assert "400 invalid_request" in line


def test_bad_and_forbidden_tokens(server, keyring):
    bad = "dgk_" + os.urandom(30).hex()
    SECRETS.add(bad, "unknown token")
    proc = cli(server, "app", "list", token=bad, ok=False)
    assert "401 unauthenticated" in one_error_line(proc, 1)
    assert proc.stdout == ""
    app = uniq("app")
    cli(server, "app", "create", app)
    crypto_key, _ = new_key(server, app, "--scope", "encrypt")
    proc = cli(server, "keyring", "list", token=crypto_key, ok=False)
    assert "403 forbidden" in one_error_line(proc, 1)


def test_unreachable_server_is_one_line_exit_1():
    port = free_port()
    proc = run_cli(["app", "list", "--timeout", "5s"],
                   env={"DIFYGUARD_ADDR": f"http://127.0.0.1:{port}",
                        "DIFYGUARD_TOKEN": "dgk_" + "x" * 40})
    line = one_error_line(proc, 1)
    assert line.startswith("difyguard: GET /v1/apps: "), line


# ---- apps -------------------------------------------------------------------------------------

def test_app_create_list_show(server):
    name = uniq("app")
    proc = cli(server, "app", "create", name, "--description", "made by the CLI test")
    assert name in proc.stdout and "made by the CLI test" in proc.stdout
    listed = cli(server, "app", "list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "CREATED", "DESCRIPTION"]
    assert any(ln.split()[0] == name for ln in listed[1:])
    shown = cli_json(server, "app", "show", name)
    assert shown["name"] == name and shown["description"] == "made by the CLI test"
    apps = cli_json(server, "app", "list")["apps"]
    assert name in [a["name"] for a in apps]
    assert expect(server.admin.get(f"/v1/apps/{name}"), 200)["name"] == name


def test_app_usage_counts_requests(server, keyring):
    app = uniq("app")
    cli(server, "app", "create", app)
    key, _ = new_key(server, app, "--scope", "encrypt")
    assert status_code(server, key, keyring) == 200
    today = time.strftime("%Y-%m-%d", time.gmtime())

    def counted():
        u = cli_json(server, "app", "usage", app)
        return [x for x in u["usage"] if x["op"] == "encrypt" and x["keyring"] == keyring]
    rows = poll_until(counted, what="usage roll-up")
    assert rows[0]["count"] >= 1 and rows[0]["outcome"] == "ok" and rows[0]["day"] == today
    text = cli(server, "app", "usage", app, "--from", today, "--to", today).stdout
    assert "DAY" in text and "encrypt" in text and keyring in text
    empty = cli_json(server, "app", "usage", app, "--from", "2020-01-01", "--to", "2020-01-31")
    assert empty["usage"] == [] and empty["from"] == "2020-01-01"


# ---- keys: the lifecycle ----------------------------------------------------------------------

def test_key_lifecycle_create_list_show_rotate_revoke(server, keyring):
    app = uniq("app")
    other = server.create_keyring()
    cli(server, "app", "create", app)
    key, kid = new_key(server, app, "--scope", "encrypt", "--scope", "decrypt,rewrap",
                       "--keyring", keyring, "--expires-in", "30d", "--rate", "50")
    assert status_code(server, key, keyring) == 200
    assert status_code(server, key, other) == 403          # keyring allow-list from --keyring

    listed = cli(server, "key", "list", app).stdout
    assert kid in listed and "active" in listed and key not in listed
    assert key[len("dgk_") + 16:] not in listed
    shown = cli(server, "key", "show", app, kid).stdout
    assert kid in shown and key not in shown and "encrypt,decrypt,rewrap" in shown
    obj = cli_json(server, "key", "show", app, kid)
    assert "key" not in obj and obj["id"] == kid and obj["rate"] == 50 and obj["burst"] == 50
    assert obj["scopes"] == ["encrypt", "decrypt", "rewrap"] and obj["keyrings"] == [keyring]

    # rotate: a new key, printed once; the old one keeps working during the grace period
    proc = cli(server, "key", "rotate", app, kid, "--grace-period", "1h")
    new = proc.stdout.splitlines()[-1]
    register_api_key(new)
    assert new.startswith("dgk_") and new != key and proc.stdout.count(new) == 1
    assert kid in proc.stdout and "1h" in proc.stdout
    assert status_code(server, new, keyring) == 200
    assert status_code(server, key, keyring) == 200
    keys = {k["id"]: k for k in cli_json(server, "key", "list", app)["keys"]}
    assert keys[kid]["grace_until"] is not None and len(keys) == 2
    new_id = [i for i in keys if i != kid][0]
    assert new_id in new and keys[new_id]["scopes"] == ["encrypt", "decrypt", "rewrap"]
    assert "grace" in cli(server, "key", "show", app, kid).stdout

    # revoke: refused from the next request on
    proc = cli(server, "key", "revoke", app, kid)
    assert kid in proc.stdout
    assert status_code(server, key, keyring) == 401
    assert status_code(server, new, keyring) == 200
    assert cli_json(server, "key", "show", app, kid)["revoked_at"] is not None
    assert "revoked" in cli(server, "key", "list", app).stdout
    line = one_error_line(cli(server, "key", "rotate", app, kid, ok=False), 1)
    assert "409 conflict" in line
    assert "no key" in one_error_line(cli(server, "key", "show", app, "nope", ok=False), 1)


def test_rotation_grace_period_ends(server, keyring):
    app = uniq("app")
    cli(server, "app", "create", app)
    key, kid = new_key(server, app, "--scope", "encrypt")
    out = cli_json(server, "key", "rotate", app, kid, "--grace-period", "2s")
    register_api_key(out["key"])
    assert out["id"] != kid and out["key"].startswith("dgk_")
    poll_until(lambda: status_code(server, key, keyring) == 401, what="old key refused")
    assert status_code(server, out["key"], keyring) == 200


def test_key_create_json(server, keyring):
    app = uniq("app")
    cli(server, "app", "create", app)
    proc = run_cli(["key", "create", app, "--json", "--scope", "encrypt,decrypt"],
                   env=env_of(server))
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    register_api_key(obj["key"])
    assert obj["scopes"] == ["encrypt", "decrypt"] and obj["keyrings"] is None
    assert obj["app"] == app and obj["revoked_at"] is None
    assert status_code(server, obj["key"], keyring) == 200


# A shell left with these must not change what a command grants (issue 6, finding 2).
STRAY = {"DIFYGUARD_SCOPE": "keyrings:admin,apps:admin", "DIFYGUARD_KEYRING": "stray-kr",
         "DIFYGUARD_EXPIRES_IN": "365d", "DIFYGUARD_RATE": "7", "DIFYGUARD_BURST": "9",
         "DIFYGUARD_GRACE_PERIOD": "30d", "DIFYGUARD_DELETION_ALLOWED": "true",
         "DIFYGUARD_DETERMINISTIC": "true", "DIFYGUARD_ALGORITHM": "xchacha20-poly1305",
         "DIFYGUARD_ROTATION_PERIOD": "1h", "DIFYGUARD_DESCRIPTION": "from the environment",
         "DIFYGUARD_FROM": "2000-01-01", "DIFYGUARD_TO": "2000-01-02"}


def test_stray_variables_do_not_widen_a_new_key(server):
    app = uniq("app")
    cli(server, "app", "create", app)
    env = dict(env_of(server), **STRAY)
    # without --scope the variable does not stand in: a usage error, and no key issued
    proc = run_cli(["key", "create", app], env=env)
    assert "--scope is required" in one_error_line(proc, 2)
    assert expect(server.admin.get(f"/v1/apps/{app}/keys"), 200)["keys"] == []
    proc = run_cli(["key", "create", app, "--scope", "encrypt", "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    register_api_key(obj["key"])
    assert obj["scopes"] == ["encrypt"] and obj["keyrings"] is None, obj
    assert (obj["rate"], obj["burst"]) == (0, 0), obj
    life = (datetime.datetime.fromisoformat(obj["expires_at"].rstrip("Z"))
            - datetime.datetime.fromisoformat(obj["created_at"].rstrip("Z"))).total_seconds()
    assert abs(life - 90 * 86400) <= 5, "the server default, not DIFYGUARD_EXPIRES_IN"
    # rotation: the default grace period (24h), not DIFYGUARD_GRACE_PERIOD
    t0 = time.time()
    proc = run_cli(["key", "rotate", app, obj["id"], "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    register_api_key(json.loads(proc.stdout)["key"])
    rows = expect(server.admin.get(f"/v1/apps/{app}/keys"), 200)["keys"]
    grace = [k["grace_until"] for k in rows if k["id"] == obj["id"]][0]
    until = datetime.datetime.fromisoformat(grace.rstrip("Z")).replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert abs(until - (t0 + 86400)) <= 60, grace


def test_stray_variables_do_not_change_keyrings_or_apps(server):
    env = dict(env_of(server), **STRAY)
    name = uniq("kr")
    proc = run_cli(["keyring", "create", name, "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    kr = json.loads(proc.stdout)
    assert kr["deletion_allowed"] is False and kr["deterministic"] is False, kr
    assert kr["algorithm"] == "aes-256-gcm" and kr["rotation_period"] == 90 * 86400, kr
    app = uniq("app")
    proc = run_cli(["app", "create", app, "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["description"] in ("", None)
    # the flags themselves still work
    proc = run_cli(["keyring", "create", uniq("kr"), "--json", "--deletion-allowed"],
                   env=env_of(server))
    assert json.loads(proc.stdout)["deletion_allowed"] is True
    # global settings still come from the environment: DIFYGUARD_JSON
    proc = run_cli(["app", "show", app], env=dict(env, DIFYGUARD_JSON="true"))
    assert json.loads(proc.stdout)["name"] == app


def test_key_revoked_json(server):
    app = uniq("app")
    cli(server, "app", "create", app)
    _, kid = new_key(server, app, "--scope", "decrypt")
    assert cli_json(server, "key", "revoke", app, kid) == {"app": app, "id": kid,
                                                            "revoked": True}
    assert "404 not_found" in one_error_line(cli(server, "key", "revoke", app, "nope",
                                                 ok=False), 1)


# ---- keyrings ---------------------------------------------------------------------------------

def test_keyring_create_list_show_rotate(server):
    name = uniq("kr")
    proc = cli(server, "keyring", "create", name, "--rotation-period", "2h")
    assert name in proc.stdout and "aes-256-gcm" in proc.stdout and "2h" in proc.stdout
    listed = cli(server, "keyring", "list").stdout.splitlines()
    assert listed[0].split()[:3] == ["NAME", "ALGORITHM", "VERSION"]
    assert any(ln.split()[0] == name for ln in listed[1:])
    kr = cli_json(server, "keyring", "show", name)
    assert kr["rotation_period"] == 7200 and kr["latest_version"] == 1
    proc = cli(server, "keyring", "rotate", name)
    assert "version 2" in proc.stdout
    assert cli_json(server, "keyring", "rotate", name)["latest_version"] == 3
    assert expect(server.admin.get(f"/v1/keyrings/{name}"), 200)["latest_version"] == 3
    assert name in [k["name"] for k in cli_json(server, "keyring", "list")["keyrings"]]
    line = one_error_line(cli(server, "keyring", "create", name, ok=False), 1)
    assert "409 conflict" in line


def test_keyring_create_options(server):
    det = cli_json(server, "keyring", "create", uniq("det"), "--deterministic",
                   "--deletion-allowed")
    assert det["algorithm"] == "aes-256-siv" and det["deterministic"] is True
    assert det["deletion_allowed"] is True and det["rotation_period"] == 0
    x = cli_json(server, "keyring", "create", uniq("x"), "--algorithm", "xchacha20-poly1305",
                 "--rotation-period", "0")
    assert x["algorithm"] == "xchacha20-poly1305" and x["next_rotation_at"] is None
    line = one_error_line(cli(server, "keyring", "create", uniq("y"), "--algorithm", "rot13",
                              ok=False), 1)
    assert "400 invalid_request" in line


# ---- TLS --------------------------------------------------------------------------------------

@pytest.fixture
def tls_files(tmp_path):
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    key.chmod(0o600)
    conftest.register_root_key(str(key))       # a private key: must never reach a log
    return str(crt), str(key)


def test_https_with_cacert(start_server, tls_files):
    crt, key = tls_files
    srv = start_server(args=["--tls-cert", crt, "--tls-key", key], wait=False)
    addr = f"https://localhost:{srv.port}"
    env = {"DIFYGUARD_ADDR": addr, "DIFYGUARD_TOKEN": srv.admin_key}

    def listed():
        p = run_cli(["app", "list", "--json"], env=dict(env, DIFYGUARD_CACERT=crt))
        return p if p.returncode == 0 else None
    proc = poll_until(listed, what="https listener")
    assert "admin" in [a["name"] for a in json.loads(proc.stdout)["apps"]]
    proc = run_cli(["app", "list", "--cacert", crt], env=env)
    assert proc.returncode == 0 and "admin" in proc.stdout
    # SSL_CERT_FILE is honoured when neither --cacert nor DIFYGUARD_CACERT is given (issue 14)
    proc = run_cli(["app", "list"], env=dict(env, SSL_CERT_FILE=crt))
    assert proc.returncode == 0 and "admin" in proc.stdout, proc.stderr
    # ...and DIFYGUARD_CACERT wins over it
    proc = run_cli(["app", "list"], env=dict(env, SSL_CERT_FILE="/nonexistent/ca.pem",
                                             DIFYGUARD_CACERT=crt))
    assert proc.returncode == 0, proc.stderr
    # an unknown CA is refused, in one line
    line = one_error_line(run_cli(["app", "list"], env=env), 1)
    assert line.startswith("difyguard: GET /v1/apps: "), line
    srv.stop()


def test_plain_http_ignores_proxy_variables(server):
    """A proxy would see the bearer token of a plain-http call: the client never uses one."""
    env = dict(env_of(server), http_proxy="http://127.0.0.1:1", HTTP_PROXY="http://127.0.0.1:1",
               ALL_PROXY="http://127.0.0.1:1", NO_PROXY="", no_proxy="")
    proc = run_cli(["app", "list", "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "admin" in [a["name"] for a in json.loads(proc.stdout)["apps"]]
