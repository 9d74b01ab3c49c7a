# SPDX-License-Identifier: Apache-2.0
"""Checks HTTP responses against docs/openapi.yaml.

Every response the integration tests receive goes through check_response(): the path and method
must be documented, the status code must be documented for that operation, documented required
headers must be present, and a JSON body must validate (jsonschema, draft 2020-12, with $ref
resolution against the whole document). A response that does not conform raises
ContractError, which fails the test: the published document cannot drift from the server.
"""
import json
import os
import re
import threading

import jsonschema
import yaml
from jsonschema import Draft202012Validator


class ContractError(AssertionError):
    """The server answered something docs/openapi.yaml does not allow."""


def default_spec_path():
    src = os.environ.get("DG_SOURCE_DIR")
    if not src:
        src = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    return os.path.join(src, "docs", "openapi.yaml")


class OpenApi:
    def __init__(self, path=None):
        self.path = path or default_spec_path()
        with open(self.path, "r", encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        if not isinstance(self.doc, dict) or self.doc.get("openapi") != "3.1.0":
            raise ContractError(f"{self.path}: not an OpenAPI 3.1.0 document")
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self._routes = []
        for template, item in self.doc.get("paths", {}).items():
            segs = template.strip("/").split("/")
            rx = "^/" + "/".join(
                "[^/]+" if s.startswith("{") and s.endswith("}") else re.escape(s) for s in segs
            ) + "$"
            literal = sum(1 for s in segs if not s.startswith("{"))
            self._routes.append((re.compile(rx), literal, template, item))
        # Most literal segments first, so /v1/keyrings/x/rotate never matches a {name} route.
        self._routes.sort(key=lambda r: -r[1])
        self._lock = threading.Lock()
        self.seen = set()          # (template, method, status) actually exercised

    # -- helpers -------------------------------------------------------------------------------
    def deref(self, obj):
        """Follow a $ref (components/responses, headers, ...) to its object."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            if not ref.startswith("#/"):
                raise ContractError(f"external $ref not supported: {ref}")
            node = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if part not in node:
                    raise ContractError(f"unresolvable $ref {ref}")
                node = node[part]
            obj = node
            seen += 1
            if seen > 32:
                raise ContractError(f"$ref loop at {ref}")
        return obj

    def route(self, path):
        path = path.split("?", 1)[0]
        for rx, _, template, item in self._routes:
            if rx.match(path):
                return template, item
        return None, None

    def validate_schema(self, schema, instance, where):
        validator = Draft202012Validator(schema, resolver=self.resolver)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            lines = []
            for e in errors[:5]:
                loc = "/".join(str(p) for p in e.absolute_path) or "(root)"
                lines.append(f"  at {loc}: {e.message[:300]}")
                for sub in (e.context or [])[:4]:
                    sloc = "/".join(str(p) for p in sub.absolute_path) or "(root)"
                    lines.append(f"      - {sloc}: {sub.message[:200]}")
            body = json.dumps(instance)[:600]
            raise ContractError(f"{where}: body does not match docs/openapi.yaml\n"
                                + "\n".join(lines) + f"\n  body: {body}")

    def documented(self):
        """Every (path template, method, status) the document promises."""
        out = set()
        for path, item in self.doc.get("paths", {}).items():
            for method, op in item.items():
                if isinstance(op, dict) and "responses" in op:
                    for code in op["responses"]:
                        out.add((path, method, int(code)))
        return out

    def missing(self):
        """Documented combinations no response of this process has exercised, sorted."""
        with self._lock:
            seen = set(self.seen)
        return sorted(self.documented() - seen)

    # -- the check -------------------------------------------------------------------------------
    def check(self, method, path, status, headers, body):
        """headers: a case-insensitive mapping; body: bytes."""
        method = method.lower()
        template, item = self.route(path)
        where = f"{method.upper()} {path} -> {status}"
        if template is None:
            raise ContractError(f"{where}: path not documented in docs/openapi.yaml")
        op = item.get(method)
        if op is None:
            raise ContractError(f"{where}: method not documented for {template}")
        responses = op.get("responses", {})
        resp = responses.get(str(status))
        if resp is None:
            resp = responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if resp is None:
            raise ContractError(
                f"{where}: status {status} not documented for {method.upper()} {template} "
                f"(documented: {sorted(responses)}); body: {body[:300]!r}")
        resp = self.deref(resp)
        with self._lock:
            self.seen.add((template, method, status))

        for hname, hdef in (resp.get("headers") or {}).items():
            hdef = self.deref(hdef)
            if hdef.get("required") and headers.get(hname) is None:
                raise ContractError(f"{where}: documented header {hname} missing")
            if headers.get(hname) is not None and "schema" in hdef:
                val = headers.get(hname)
                schema = self.deref(hdef["schema"])
                inst = val
                if schema.get("type") == "integer":
                    try:
                        inst = int(val)
                    except ValueError:
                        raise ContractError(f"{where}: header {hname}={val!r} not an integer")
                self.validate_schema(hdef["schema"], inst, f"{where} header {hname}")

        content = resp.get("content")
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not content:
            if body:
                raise ContractError(f"{where}: documented without a body, got "
                                    f"{len(body)} bytes ({ctype}): {body[:200]!r}")
            return
        media = content.get(ctype)
        if media is None:
            raise ContractError(f"{where}: Content-Type {ctype!r} not documented "
                                f"(documented: {sorted(content)})")
        if ctype == "application/json" or ctype.endswith("+json"):
            try:
                instance = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise ContractError(f"{where}: body is not JSON ({e}): {body[:200]!r}")
            if "schema" in media:
                self.validate_schema(media["schema"], instance, where)


_instance = None
_instance_lock = threading.Lock()


def spec():
    """The process-wide parsed document."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = OpenApi()
        return _instance


def check_response(resp):
    """Check a requests.Response; returns it for chaining."""
    req = resp.request
    from urllib.parse import urlsplit
    path = urlsplit(req.url).path
    spec().check(req.method, path, resp.status_code, resp.headers, resp.content or b"")
    return resp
