# SPDX-License-Identifier: Apache-2.0
"""JWT principals (issue 6): rate limits per (iss, sub) from the --jwt-config `rate`/`burst`
(finding 4), and the key-issuing bounds for a principal without a key row (finding 1: scopes
bound, no expiry bound). Tokens are HS256, minted by test_keys_v2.Idp."""
import json

import pytest

from conftest import expect, free_port, register_api_key, run_serve_expecting_exit, uniq
from test_keys_v2 import Idp


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    return Idp(tmp_path_factory.mktemp("idp-limits"))


def jwt_config(idp, path, **extra):
    cfg = {"issuer": "https://idp.test", "audience": "difyguard",
           "roles": {"dify-api": ["encrypt", "decrypt"], "ops": ["apps:admin", "encrypt"]},
           "keys": [{"kid": "hs1", "alg": "HS256", "secret_file": str(idp.dir / "hs1.secret")}]}
    cfg.update(extra)
    path.write_text(json.dumps(cfg))
    return str(path)


def hammer(api, path, tries=30, want_limited=3):
    """Quick requests until want_limited are refused with 429; returns (ok count, 429s)."""
    ok, limited = 0, []
    for _ in range(tries):
        if len(limited) >= want_limited:
            break
        r = api.post(path, {"text": "x"})
        if r.status_code == 429:
            expect(r, 429, "rate_limited")
            limited.append(r)
        else:
            expect(r, 200)
            ok += 1
    return ok, limited


def test_jwt_rate_limit_per_subject(start_server, idp, tmp_path):
    srv = start_server(args=["--jwt-config",
                             jwt_config(idp, tmp_path / "jwt.json", rate=1, burst=2)])
    kr = srv.create_keyring()
    path = f"/v1/keyrings/{kr}/encrypt"
    alice = srv.client(idp.token(claims=idp.claims(sub="alice")))
    ok, limited = hammer(alice, path)
    assert limited, "30 quick requests of one subject at rate 1, burst 2 were never limited"
    assert ok >= 2, f"only {ok} requests passed: the burst of 2 was not honoured"
    for r in limited:
        ra = r.headers.get("Retry-After")
        assert ra is not None and ra.strip().isdigit() and int(ra) >= 1, ra
    # another subject has its own bucket: its burst is untouched
    bob = srv.client(idp.token(claims=idp.claims(sub="bob")))
    expect(bob.post(path, {"text": "x"}), 200)
    metrics = srv.client().get("/metrics").text
    assert 'difyguard_auth_failures_total{reason="rate_limited"}' in metrics


def test_jwt_unlimited_by_default(start_server, idp, tmp_path):
    srv = start_server(args=["--jwt-config", jwt_config(idp, tmp_path / "jwt.json")])
    kr = srv.create_keyring()
    api = srv.client(idp.token(claims=idp.claims(sub="carol")))
    ok, limited = hammer(api, f"/v1/keyrings/{kr}/encrypt", tries=25)
    assert (ok, limited) == (25, [])


@pytest.mark.parametrize("extra", [{"rate": -1}, {"rate": "10"}, {"burst": 1.5},
                                   {"rate": 1000001}])
def test_jwt_bad_rate_config_is_a_usage_error(new_datadir, idp, tmp_path, extra):
    dd = new_datadir()
    rc, err, _ = run_serve_expecting_exit(
        dd.path, f"127.0.0.1:{free_port()}",
        extra=["--jwt-config", jwt_config(idp, tmp_path / "bad.json", **extra)])
    assert rc == 2, (extra, rc, err)
    assert "rate and burst" in err, err


def test_jwt_principal_issues_keys_within_its_scopes_only(start_server, idp, tmp_path):
    srv = start_server(args=["--jwt-config", jwt_config(idp, tmp_path / "jwt.json")])
    app = uniq("app")
    expect(srv.admin.post("/v1/apps", {"name": app}), 201)
    ops = srv.client(idp.token(claims=idp.claims(role="ops")))
    r = ops.post(f"/v1/apps/{app}/keys", {"scopes": ["decrypt"]})
    body = expect(r, 403, "forbidden")
    assert body["error"]["message"].startswith("scope:"), body
    forbidden = expect(ops.post("/v1/apps/admin/keys",
                                {"scopes": ["keyrings:admin", "apps:admin"]}), 403, "forbidden")
    assert forbidden["error"]["message"].startswith("scope:"), forbidden
    # within its scopes: no allow-list to respect and no expiry bound (documented)
    k = expect(ops.post(f"/v1/apps/{app}/keys", {"scopes": ["encrypt"], "expires_in": "365d"}),
               201)
    register_api_key(k["key"])
    assert k["keyrings"] is None
