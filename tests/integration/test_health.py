# SPDX-License-Identifier: Apache-2.0
"""/healthz, /readyz and request ids."""
import re

from conftest import expect, poll_until

RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def test_healthz(server):
    r = server.client().get("/healthz")
    assert expect(r, 200) == {"status": "ok"}


def test_readyz_becomes_ready(server):
    api = server.client()

    def ready():
        r = api.get("/readyz")
        return r.status_code == 200 and r.json() == {"status": "ready"}

    poll_until(ready, what="/readyz 200 ready")


def test_health_needs_no_auth_even_with_a_bad_token(server):
    api = server.client("dgk_not-a-key")
    assert expect(api.get("/healthz"), 200) == {"status": "ok"}


def test_request_id_is_echoed(server):
    r = server.admin.get("/v1/keyrings", headers={"X-Request-Id": "it-echo.1_A"})
    expect(r, 200)
    assert r.headers["X-Request-Id"] == "it-echo.1_A"
    r = server.client().get("/healthz", headers={"X-Request-Id": "h-2"})
    assert r.headers["X-Request-Id"] == "h-2"


def test_request_id_generated_when_absent_or_invalid(server):
    api = server.admin
    r1 = api.get("/v1/keyrings")
    r2 = api.get("/v1/keyrings")
    assert RID.match(r1.headers["X-Request-Id"])
    assert r1.headers["X-Request-Id"] != r2.headers["X-Request-Id"]
    for bad in ["has space", "x" * 65, "semi;colon", "ünïcode"]:
        try:
            r = api.get("/v1/keyrings", headers={"X-Request-Id": bad.encode("utf-8")})
        except ValueError:
            continue
        expect(r, 200)
        assert r.headers["X-Request-Id"] != bad
        assert RID.match(r.headers["X-Request-Id"])


def test_request_id_in_error_bodies(server):
    r = server.admin.get("/v1/keyrings/no-such-keyring", headers={"X-Request-Id": "err-rid-7"})
    body = expect(r, 404, "not_found")
    assert body["error"]["request_id"] == "err-rid-7"
    r = server.client().get("/v1/keyrings")          # no token
    body = expect(r, 401, "unauthenticated")
    assert RID.match(body["error"]["request_id"])
    assert body["error"]["request_id"] == r.headers["X-Request-Id"]


def test_unlisted_method_is_405(server, openapi):
    # 405 belongs to no documented operation, so this one response is checked by hand against
    # the Error schema instead of through the per-operation check.
    # RFC 9110: the Allow header names the methods the path has (the route table's)
    allow = {"/v1/keyrings": "GET, POST", "/v1/apps": "GET, POST",
             "/v1/keyrings/x/encrypt": "POST", "/healthz": "GET",
             "/v1/keyrings/x": "GET, PATCH, DELETE", "/v1/apps/a/keys/k": "GET, DELETE",
             "/v1/audit/events": "GET", "/v1/certificates/c": "GET, DELETE"}
    for method, path in [("PUT", "/v1/keyrings"), ("DELETE", "/v1/apps"),
                         ("GET", "/v1/keyrings/x/encrypt"), ("POST", "/healthz"),
                         ("POST", "/v1/keyrings/x"), ("PUT", "/v1/apps/a/keys/k"),
                         ("DELETE", "/v1/audit/events"), ("PATCH", "/v1/certificates/c")]:
        r = server.admin.request(method, path, check=False)
        assert r.status_code == 405, (method, path, r.status_code)
        assert r.headers.get("Allow") == allow[path], (method, path, r.headers.get("Allow"))
        documented = {m.upper() for m in openapi.doc["paths"].get(
            path.replace("/x", "/{name}").replace("/a/keys/k", "/{app}/keys/{id}")
                .replace("/certificates/c", "/certificates/{id}"), {}) if m != "parameters"}
        assert set(allow[path].split(", ")) == documented, (path, documented)
        assert RID.match(r.headers["X-Request-Id"])
        body = r.json()
        openapi.validate_schema({"$ref": "#/components/schemas/Error"}, body, f"{method} {path}")
        assert body["error"]["code"] == "method_not_allowed"
        assert body["error"]["request_id"] == r.headers["X-Request-Id"]
