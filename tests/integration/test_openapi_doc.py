# SPDX-License-Identifier: Apache-2.0
"""docs/openapi.yaml itself: valid OpenAPI 3.1 / JSON Schema 2020-12, complete for the routes of
api-shapes.md, and the response checker really rejects what the document does not allow.
These tests need no server."""
import json
import os
import re

import pytest
from jsonschema import Draft202012Validator
from requests.structures import CaseInsensitiveDict

from openapi_check import ContractError

def route_table():
    """Every (path template, method, audit op, scopes) of server/handlers/routes.c, the one
    route table the server has: one route per line, in its C initializer form."""
    src = os.environ.get("DG_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(src, "server", "handlers", "routes.c"), encoding="utf-8") as f:
        text = f.read()
    rows = re.findall(r'\{"(GET|POST|PATCH|DELETE|PUT)", "(/[^"]*)", (h_\w+), ([^,]+), '
                      r'(NULL|"[^"]*"),', text)
    assert len(rows) >= 27, f"routes.c: {len(rows)} routes parsed"
    return [(path, method.lower(), op.strip('"') if op != "NULL" else None, scopes.strip())
            for method, path, _fn, scopes, op in rows]


ENDPOINTS = {(path, method) for path, method, _op, _scopes in route_table()}
CRYPTO = ["encrypt", "decrypt", "rewrap", "datakey"]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def walk_refs(node, out):
    if isinstance(node, dict):
        if "$ref" in node:
            out.append(node["$ref"])
        for v in node.values():
            walk_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            walk_refs(v, out)


def test_document_is_openapi_31(openapi):
    doc = openapi.doc
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    bearer = doc["components"]["securitySchemes"]["bearerAuth"]
    assert bearer["type"] == "http" and bearer["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]


def test_document_version_is_the_project_version(openapi):
    src = os.environ.get("DG_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(src, "CMakeLists.txt")) as f:
        m = re.search(r"project\(difyguard VERSION ([0-9.]+)", f.read())
    assert m and openapi.doc["info"]["version"] == m.group(1), "docs/openapi.yaml info.version"


def test_every_schema_is_valid_json_schema_2020_12(openapi):
    for name, schema in openapi.doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    # inline schemas in operations too
    for path, method, op in operations(openapi.doc):
        for media in (op.get("requestBody", {}).get("content") or {}).values():
            if "schema" in media:
                Draft202012Validator.check_schema(media["schema"])


def test_every_ref_resolves(openapi):
    refs = []
    walk_refs(openapi.doc, refs)
    assert refs
    for ref in set(refs):
        openapi.deref({"$ref": ref})          # raises ContractError when dangling


def test_every_route_of_the_table_is_documented_and_nothing_else(openapi):
    """docs/openapi.yaml documents exactly the routes of server/handlers/routes.c."""
    have = {(p, m) for p, m, _ in operations(openapi.doc)}
    missing = ENDPOINTS - have
    assert not missing, f"routes missing from docs/openapi.yaml: {sorted(missing)}"
    extra = have - ENDPOINTS
    assert not extra, f"documented operations the server does not route: {sorted(extra)}"


def test_routes_with_an_audit_op_are_the_authenticated_ones():
    """Public routes (health, readiness, metrics) are never audited; every other route is."""
    for path, method, op, scopes in route_table():
        public = path in ("/healthz", "/readyz", "/metrics")
        assert (op is None) == public, (path, method, op)


def test_v1_operations_document_auth_and_common_errors(openapi):
    for path, method, op in operations(openapi.doc):
        codes = set(op["responses"])
        # a body over --max-body-bytes is refused on every path, whether the route reads one
        assert "413" in codes, f"{method.upper()} {path} lacks 413"
        if not path.startswith("/v1/"):
            assert op.get("security") == [], f"{method} {path} must not need auth"
            continue
        assert "security" not in op, f"{method} {path} must use the global bearer security"
        for c in ("401", "403", "429", "500", "503"):
            assert c in codes, f"{method.upper()} {path} lacks {c}"
        if "requestBody" in op:
            assert "400" in codes, f"{method.upper()} {path}: 400"
        if "{" in path:
            # a path parameter spelled with percent-encoding is refused before routing (400)
            assert "400" in codes and "404" in codes, f"{method.upper()} {path} lacks 400/404"
        rl = openapi.deref(op["responses"]["429"])
        assert "Retry-After" in rl["headers"]


def test_every_response_has_request_id_and_errors_use_error_schema(openapi):
    error_props = None
    for path, method, op in operations(openapi.doc):
        for code, resp in op["responses"].items():
            resp = openapi.deref(resp)
            assert "X-Request-Id" in resp.get("headers", {}), f"{method} {path} {code}"
            if int(code) >= 400 and path.startswith("/v1/"):
                schema = openapi.deref(resp["content"]["application/json"]["schema"])
                # every error schema is the Error object (directly or through allOf)
                refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("allOf", [])]
                assert "#/components/schemas/Error" in refs, f"{method} {path} {code}: {schema}"
                error_props = True
    assert error_props


def test_crypto_calls_take_single_or_batch_bodies(openapi):
    for op_name in CRYPTO:
        op = openapi.doc["paths"][f"/v1/keyrings/{{name}}/{op_name}"]["post"]
        req = op["requestBody"]["content"]["application/json"]["schema"]
        assert len(req["oneOf"]) == 2, op_name
        res = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert len(res["oneOf"]) == 2, op_name
        assert "422" in op["responses"] or op_name == "datakey"
    enc = openapi.doc["paths"]["/v1/keyrings/{name}/encrypt"]["post"]
    assert "application/octet-stream" in enc["requestBody"]["content"]
    params = {openapi.deref(p)["name"] for p in enc["parameters"]}
    assert {"X-Difyguard-Context", "key_version"} <= params
    dec = openapi.doc["paths"]["/v1/keyrings/{name}/decrypt"]["post"]
    assert "application/octet-stream" in dec["responses"]["200"]["content"]


def test_fixed_shapes_reject_unknown_properties(openapi):
    """Every object schema with listed properties is closed (additionalProperties: false)."""
    for name, schema in openapi.doc["components"]["schemas"].items():
        if schema.get("type") == "object" and "properties" in schema:
            assert schema.get("additionalProperties") is False, name
        if schema.get("type") == "object":
            assert "required" in schema or name in {"KeyringPatch", "DatakeyRequest",
                                                    "DatakeyBatchItem", "Empty",
                                                    "EncryptRequest", "EncryptBatchItem",
                                                    "Context"}, f"{name} lacks required"


def schema_ok(openapi, name, instance):
    v = Draft202012Validator({"$ref": f"#/components/schemas/{name}"}, resolver=openapi.resolver)
    return not list(v.iter_errors(instance))


def test_schemas_accept_and_reject_samples(openapi):
    err = {"error": {"code": "decryption_failed", "message": "decryption failed",
                     "request_id": "abc-1"}}
    assert schema_ok(openapi, "Error", err)
    assert schema_ok(openapi, "ErrorDecrypt", err)
    assert not schema_ok(openapi, "ErrorNotFound", err)
    assert not schema_ok(openapi, "Error", {"error": {**err["error"], "plaintext": "x"}})
    assert schema_ok(openapi, "EncryptRequest", {"text": "x", "context": {"a": "b"}})
    assert schema_ok(openapi, "EncryptRequest", {"plaintext": "eA=="})
    assert not schema_ok(openapi, "EncryptRequest", {"text": "x", "plaintext": "eA=="})
    assert not schema_ok(openapi, "EncryptRequest", {"context": {}})
    assert not schema_ok(openapi, "EncryptRequest", {"plaintext": "eA"})      # unpadded
    assert not schema_ok(openapi, "EncryptRequest", {"text": "x", "context": {"a": 1}})
    assert schema_ok(openapi, "EncryptResponse", {"ciphertext": "dg:v1:AQ_-", "key_version": 1})
    assert not schema_ok(openapi, "EncryptResponse", {"ciphertext": "dg:v01:AQ", "key_version": 1})
    assert not schema_ok(openapi, "EncryptResponse", {"ciphertext": "dg:v1:AQ==", "key_version": 1})
    batch = {"items": [{"ciphertext": "dg:v2:AA", "key_version": 2, "reference": "r1"},
                       {"error": {"code": "invalid_request", "message": "bad"},
                        "reference": "r2"}], "ok": 1, "failed": 1}
    assert schema_ok(openapi, "EncryptBatchResponse", batch)
    assert not schema_ok(openapi, "EncryptBatchResponse", {"items": batch["items"]})
    assert schema_ok(openapi, "Health", {"status": "ok"})
    assert not schema_ok(openapi, "Health", {"status": "ready"})
    ts = "2026-11-28T20:21:00Z"
    key = {"id": "A" * 16, "app": "app-1", "scopes": ["encrypt"], "keyrings": None,
           "created_at": ts, "expires_at": ts, "revoked_at": None}
    assert schema_ok(openapi, "ApiKey", key)
    assert not schema_ok(openapi, "ApiKey", {**key, "key": "dgk_" + "a" * 65})
    assert schema_ok(openapi, "ApiKeyIssued", {**key, "key": "dgk_" + "a" * 65})


class FakeReq:
    def __init__(self, method, url):
        self.method, self.url = method, url


def fake_check(openapi, method, path, status, body, ctype="application/json", rid="r-1"):
    headers = CaseInsensitiveDict()
    if ctype:
        headers["Content-Type"] = ctype
    if rid:
        headers["X-Request-Id"] = rid
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    openapi.check(method, path, status, headers, raw)


def test_checker_rejects_what_the_document_does_not_allow(openapi):
    err = {"error": {"code": "not_found", "message": "no such keyring", "request_id": "r-1"}}
    fake_check(openapi, "GET", "/v1/keyrings/kr1", 404, err)
    fake_check(openapi, "DELETE", "/v1/keyrings/kr1", 204, b"", ctype=None)
    fake_check(openapi, "GET", "/healthz", 200, {"status": "ok"})
    with pytest.raises(ContractError):          # status not documented for the operation
        fake_check(openapi, "GET", "/v1/keyrings", 404, err)
    with pytest.raises(ContractError):          # wrong error code for the status
        fake_check(openapi, "GET", "/v1/keyrings/kr1", 404,
                   {"error": {**err["error"], "code": "conflict"}})
    with pytest.raises(ContractError):          # undocumented path
        fake_check(openapi, "GET", "/v1/nothing", 200, {})
    with pytest.raises(ContractError):          # undocumented method
        fake_check(openapi, "PUT", "/v1/keyrings", 200, {})
    with pytest.raises(ContractError):          # missing X-Request-Id
        fake_check(openapi, "GET", "/healthz", 200, {"status": "ok"}, rid=None)
    with pytest.raises(ContractError):          # undocumented content type
        fake_check(openapi, "GET", "/healthz", 200, b"ok", ctype="text/plain")
    with pytest.raises(ContractError):          # body on a 204
        fake_check(openapi, "DELETE", "/v1/keyrings/kr1", 204, {"x": 1})
    with pytest.raises(ContractError):          # not JSON
        fake_check(openapi, "GET", "/healthz", 200, b"{", ctype="application/json")
    with pytest.raises(ContractError):          # 429 without Retry-After
        fake_check(openapi, "GET", "/v1/keyrings", 429,
                   {"error": {**err["error"], "code": "rate_limited"}})
