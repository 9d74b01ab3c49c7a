# SPDX-License-Identifier: Apache-2.0
"""Operator experience of the API (issue 14): Vault-style version retirement, batch counts,
errors that say what to send, 405 Allow, one key's metadata, audit event order and filters,
query checking, time forms, usage defaults, keyring pages."""
import datetime
import time

import pytest

from conftest import CRYPTO_SCOPES, expect, new_text, uniq


def enc(name, op="encrypt"):
    return f"/v1/keyrings/{name}/{op}"


# --- min_encryption_version 0 = latest ------------------------------------------------------

def test_retire_versions_with_one_field(server, crypto):
    admin = server.admin
    name = server.create_keyring()
    kr = expect(admin.get(f"/v1/keyrings/{name}"), 200)
    assert kr["min_encryption_version"] == 0                  # the latest, as in Vault
    old = crypto.encrypt(name, text=new_text("v1"))["ciphertext"]
    expect(admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    # Vault's way: min_decryption_version alone
    kr = expect(admin.patch(f"/v1/keyrings/{name}", {"min_decryption_version": 2}), 200)
    assert kr["min_decryption_version"] == 2 and kr["min_encryption_version"] == 0
    expect(crypto.post(enc(name, "decrypt"), {"ciphertext": old}), 422, "key_version_disabled")
    # explicit versions below min_decryption_version are refused for encryption too
    expect(crypto.post(enc(name), {"text": "x", "key_version": 1}), 422, "key_version_disabled")
    assert crypto.encrypt(name, text=new_text("v2"))["key_version"] == 2


def test_explicit_min_encryption_is_raised_with_min_decryption(server):
    admin = server.admin
    name = server.create_keyring()
    expect(admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    expect(admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    expect(admin.patch(f"/v1/keyrings/{name}", {"min_encryption_version": 1}), 200)
    kr = expect(admin.patch(f"/v1/keyrings/{name}", {"min_decryption_version": 2}), 200)
    assert kr["min_encryption_version"] == 2, kr


def test_inconsistent_versions_say_what_to_send(server):
    admin = server.admin
    name = server.create_keyring()
    expect(admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    body = expect(admin.patch(f"/v1/keyrings/{name}", {"min_decryption_version": 2,
                                                        "min_encryption_version": 1}), 400)
    msg = body["error"]["message"]
    assert "min_encryption_version 0 (latest) or a version from 2 to 2" in msg, msg
    body = expect(admin.patch(f"/v1/keyrings/{name}", {"min_decryption_version": 3}), 400)
    assert "latest_version (2)" in body["error"]["message"], body


# --- batches: counts and the single call's messages ----------------------------------------

def test_batch_counts_and_item_messages_match_single_calls(server, crypto):
    name = server.create_keyring()
    other = server.create_keyring()
    good = crypto.encrypt(name, text=new_text("b"))["ciphertext"]
    foreign = crypto.encrypt(other, text=new_text("f"))["ciphertext"]
    single = expect(crypto.post(enc(name, "decrypt"), {"ciphertext": foreign}), 422)
    bad_field = expect(crypto.post(enc(name, "decrypt"), {"ciphertext": good, "nonce": "x"}), 400)
    res = expect(crypto.post(enc(name, "decrypt"), {"items": [
        {"ciphertext": good}, {"ciphertext": foreign}, {"ciphertext": good, "nonce": "x"}]}), 200)
    assert res["ok"] == 1 and res["failed"] == 2, res
    assert res["items"][1]["error"] == {"code": single["error"]["code"],
                                        "message": single["error"]["message"]}
    assert res["items"][2]["error"]["message"] == bad_field["error"]["message"]
    res = expect(crypto.post(enc(name, "decrypt"), {"items": [{"ciphertext": foreign}]}), 200)
    assert res["ok"] == 0 and res["failed"] == 1


# --- actionable errors ------------------------------------------------------------------------

def test_unknown_field_named_with_hint(server, crypto):
    name = server.create_keyring()
    body = expect(crypto.post(enc(name), {"batch_input": [{"text": "x"}]}), 400)
    assert body["error"]["message"] == \
        'unknown field "batch_input" (a batch is {"items":[...]})', body
    body = expect(crypto.post(enc(name), {"text": "x", "contxt": {}}), 400)
    assert body["error"]["message"] == 'unknown field "contxt" (did you mean "context"?)', body
    body = expect(server.admin.post("/v1/keyrings", {"name": uniq("kr"), "rotaton": "1d"}), 400)
    assert '"rotaton"' in body["error"]["message"], body
    # a name that is not a plain short name is never shown back
    body = expect(crypto.post(enc(name), {"text": "x", "s3cr3t value!": 1}), 400)
    assert "s3cr3t" not in body["error"]["message"], body


def test_scope_errors_name_the_scope(server):
    app = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": app}), 201)
    body = expect(server.admin.post(f"/v1/apps/{app}/keys", {"scopes": ["encypt"]}), 400)
    assert body["error"]["message"] == 'unknown scope "encypt" (did you mean "encrypt"?)', body
    body = expect(server.admin.post(f"/v1/apps/{app}/keys", {"scopes": ["everything"]}), 400)
    assert "known scopes:" in body["error"]["message"] and "compliance:read" in \
        body["error"]["message"], body
    api, _ = server.issue_key(["encrypt"])
    body = expect(api.get("/v1/keyrings"), 403, "forbidden")
    assert body["error"]["message"] == "scope: needs keyrings:admin", body
    name = server.create_keyring()
    limited, _ = server.issue_key(["encrypt"], keyrings=[uniq("elsewhere")])
    body = expect(limited.post(enc(name), {"text": "x"}), 403)
    msg = body["error"]["message"]
    assert msg.startswith(f'allow-list: keyring "{name}" is not in the API key') and \
        "elsewhere" in msg, body                     # the keyring and the list that refused


def test_not_found_says_what(server, crypto):
    missing = uniq("missing")
    body = expect(server.admin.get(f"/v1/keyrings/{missing}"), 404, "not_found")
    assert body["error"]["message"] == "keyring not found"
    body = expect(crypto.post(enc(missing), {"text": "x"}), 404, "not_found")
    assert body["error"]["message"] == "keyring not found"
    body = expect(server.admin.get(f"/v1/apps/{missing}"), 404, "not_found")
    assert body["error"]["message"] == "app not found"


# --- one key ---------------------------------------------------------------------------------

def test_get_one_key(server):
    api, obj = server.issue_key(["encrypt"])
    app = obj["app"]
    got = expect(server.admin.get(f"/v1/apps/{app}/keys/{obj['id']}"), 200)
    assert got["id"] == obj["id"] and got["scopes"] == ["encrypt"] and "key" not in got
    other = uniq("app")
    expect(server.admin.post("/v1/apps", {"name": other}), 201)
    body = expect(server.admin.get(f"/v1/apps/{other}/keys/{obj['id']}"), 404, "not_found")
    assert body["error"]["message"].startswith("key not found"), body
    expect(server.admin.get(f"/v1/apps/{uniq('nope')}/keys/{obj['id']}"), 404, "not_found")
    expect(api.get(f"/v1/apps/{app}/keys/{obj['id']}"), 403, "forbidden")


# --- audit events ----------------------------------------------------------------------------

def test_audit_events_order_keyring_filter_and_cursor(server, crypto):
    a, b = server.create_keyring(), server.create_keyring()
    for i in range(3):
        crypto.encrypt(a, text=new_text(f"a{i}"))
        crypto.encrypt(b, text=new_text(f"b{i}"))
    admin = server.admin
    page = expect(admin.get("/v1/audit/events", params={"keyring": a}), 200)
    evs = page["events"]
    assert page["order"] == "desc"
    assert [e["op"] for e in evs] == ["encrypt"] * 3, evs
    assert all(e["keyring"] == a for e in evs)
    times = [e["time"] for e in evs]
    assert times == sorted(times, reverse=True)
    asc = expect(admin.get("/v1/audit/events", params={"keyring": a, "order": "asc"}), 200)
    assert [e["seq"] for e in asc["events"]] == [e["seq"] for e in reversed(evs)]
    # walking pages of one in both orders yields the same events
    for order in ("asc", "desc"):
        seen, cursor = [], None
        while True:
            q = {"keyring": a, "order": order, "limit": 1}
            if cursor:
                q["cursor"] = cursor
            p = expect(admin.get("/v1/audit/events", params=q), 200)
            seen += [e["seq"] for e in p["events"]]
            cursor = p["next_cursor"]
            if cursor is None:
                break
        want = [e["seq"] for e in evs]
        assert seen == (want if order == "desc" else list(reversed(want))), (order, seen)


@pytest.mark.parametrize("params,needle", [
    ({"keyrng": "x"}, 'unknown query parameter "keyrng"'),
    ({"order": "newest"}, "order must be asc"),
    ({"op": "encrpyt"}, 'unknown op "encrpyt" (did you mean "encrypt"?)'),
    ({"outcome": "failed"}, "outcome must be one of ok, denied, invalid, error"),
    ({"cursor": "abc"}, "cursor must be"),
])
def test_audit_events_bad_query_named(server, params, needle):
    body = expect(server.admin.get("/v1/audit/events", params=params), 400, "invalid_request")
    assert needle in body["error"]["message"], body


def test_time_forms_alike(server, crypto):
    name = server.create_keyring()
    crypto.encrypt(name, text=new_text("t"))
    today = datetime.datetime.now(datetime.timezone.utc).date()
    tomorrow = today + datetime.timedelta(days=1)
    admin = server.admin

    def count(**q):
        q["keyring"] = name
        return len(expect(admin.get("/v1/audit/events", params=q), 200)["events"])
    assert count() == 1
    assert count(**{"from": today.isoformat()}) == 1
    assert count(**{"from": today.isoformat() + "T00:00:00Z"}) == 1
    assert count(**{"from": today.isoformat() + "T02:00:00+02:00"}) == 1
    assert count(**{"from": str(int(time.time()) - 3600)}) == 1
    assert count(to=today.isoformat()) == 1                 # a day as `to`: that whole day
    assert count(**{"from": tomorrow.isoformat()}) == 0
    expect(admin.get("/v1/audit/events", params={"from": "2026-02-30"}), 400)


def test_usage_defaults_to_30_days(server, crypto):
    api, obj = server.issue_key(CRYPTO_SCOPES)
    name = server.create_keyring()
    api.encrypt(name, text=new_text("u"))
    app = obj["app"]
    today = datetime.datetime.now(datetime.timezone.utc).date()
    body = expect(server.admin.get(f"/v1/apps/{app}/usage"), 200)
    assert body["to"] == today.isoformat()
    assert body["from"] == (today - datetime.timedelta(days=29)).isoformat()
    same = expect(server.admin.get(f"/v1/apps/{app}/usage", params={
        "from": today.isoformat() + "T00:00:00Z", "to": str(int(time.time()))}), 200)
    assert same["from"] == same["to"] == today.isoformat()
    assert same["usage"] == body["usage"]          # only today's requests so far
    body = expect(server.admin.get(f"/v1/apps/{app}/usage", params={"day": "x"}), 400)
    assert 'unknown query parameter "day"' in body["error"]["message"]


# --- keyring pages -----------------------------------------------------------------------------

def test_keyrings_pages_and_names(server):
    prefix = uniq("pg")
    names = sorted(server.create_keyring(f"{prefix}-{i:02d}") for i in range(7))
    limited, _ = server.issue_key(["keyrings:admin"], keyrings=names)
    seen, cursor, pages = [], None, 0
    while True:
        q = {"limit": 3, "view": "names"}
        if cursor:
            q["cursor"] = cursor
        page = expect(limited.get("/v1/keyrings", params=q), 200)
        assert len(page["names"]) <= 3
        seen += page["names"]
        cursor = page["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == names and pages == 3, (seen, pages)
    full = expect(limited.get("/v1/keyrings", params={"limit": 2}), 200)
    assert [k["name"] for k in full["keyrings"]] == names[:2]
    assert full["next_cursor"] == names[1]
    for bad in ({"limit": 0}, {"view": "ids"}, {"page": 2}):
        expect(server.admin.get("/v1/keyrings", params=bad), 400, "invalid_request")


def test_every_documented_audit_op_is_a_valid_filter(server, openapi):
    """The op filter of /v1/audit/events accepts exactly the operations docs/openapi.yaml lists
    (AuditOp): an op added to the trail but not to the filter's list would be unfindable."""
    ops = openapi.doc["components"]["schemas"]["AuditOp"]["enum"]
    assert "compliance.run" in ops and "cert.rotation" in ops, ops
    for op in ops:
        expect(server.admin.get("/v1/audit/events", params={"op": op, "limit": 1}), 200)
    body = expect(server.admin.get("/v1/audit/events", params={"op": "compliance.runs"}), 400)
    assert "compliance.run" in body["error"]["message"], body
