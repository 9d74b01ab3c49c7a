# SPDX-License-Identifier: Apache-2.0
"""Malformed requests are 400 invalid_request and never echo what they were given."""
import json

import pytest

from conftest import expect, new_text


@pytest.fixture(scope="module")
def kr(server):
    return server.create_keyring()


def url(name, op="encrypt"):
    return f"/v1/keyrings/{name}/{op}"


@pytest.mark.parametrize("raw", [
    '{"text": ', "{", "", "null", "[]", '"text"', "{'text': 'x'}", '{"text": "x",}',
    '{"text": "x"} trailing', '{"text": "\\ud800"}', b'{"text": "\xff\xfe"}',
])
def test_malformed_json_400(crypto, kr, raw):
    expect(crypto.post(url(kr), data=raw), 400, "invalid_request")


@pytest.mark.parametrize("body", [
    {"text": 123}, {"plaintext": 5}, {"text": None}, {"text": ["a"]},
    {"text": "x", "context": []}, {"text": "x", "context": "a=b"}, {"text": "x", "context": {"a": 1}},
    {"text": "x", "context": {"a": None}}, {"text": "x", "context": {"a": {"b": "c"}}},
    {"text": "x", "key_version": "1"}, {"text": "x", "key_version": 1.5},
    {"text": "x", "key_version": 0}, {"text": "x", "key_version": -1},
    {"text": "x", "unknown": True}, {}, {"context": {}},
    {"text": "x", "plaintext": "eA=="},
    {"text": "x", "context": {"a\u0000b": "c"}}, {"text": "x", "context": {"a": "b\u0000"}},
])
def test_wrong_types_encrypt_400(crypto, kr, body):
    expect(crypto.post(url(kr), body), 400, "invalid_request")


@pytest.mark.parametrize("body", [
    {}, {"ciphertext": 7}, {"ciphertext": ["dg:v1:AAAA"]}, {"ciphertext": None},
    {"ciphertext": "dg:v1:AAAA", "context": 1}, {"ciphertext": "dg:v1:AAAA", "extra": 1},
])
def test_wrong_types_decrypt_400(crypto, kr, body):
    expect(crypto.post(url(kr, "decrypt"), body), 400, "invalid_request")


@pytest.mark.parametrize("body", [
    {"include_plaintext": "yes"}, {"context": []}, {"other": 1},
])
def test_wrong_types_datakey_400(crypto, kr, body):
    expect(crypto.post(url(kr, "datakey"), body), 400, "invalid_request")


def test_duplicate_top_level_keys_400(crypto, kr):
    """A repeated member is ambiguous (which one wins?): refused like a repeated context key."""
    expect(crypto.post(url(kr), data='{"text": "x", "text": "y"}'), 400, "invalid_request")


def test_duplicate_context_keys_400(crypto, kr):
    t = new_text("dup")
    raw = '{"text": %s, "context": {"tenant": "a", "tenant": "b"}}' % json.dumps(t)
    r = crypto.post(url(kr), data=raw)
    body = expect(r, 400, "invalid_request")
    assert t not in r.text
    ct = crypto.encrypt(kr, text=t, context={"tenant": "a"})["ciphertext"]
    raw = '{"ciphertext": %s, "context": {"tenant": "a", "x": "1", "tenant": "a"}}' % json.dumps(ct)
    expect(crypto.post(url(kr, "decrypt"), data=raw), 400, "invalid_request")
    # in a batch item: the item fails, or the whole call is refused
    raw = '{"items": [{"ciphertext": %s, "context": {"tenant": "a", "tenant": "a"}}]}' % \
        json.dumps(ct)
    r = crypto.post(url(kr, "decrypt"), data=raw)
    if r.status_code == 200:
        assert r.json()["items"][0]["error"]["code"] == "invalid_request"
    else:
        expect(r, 400, "invalid_request")
    assert body["error"]["message"]


@pytest.mark.parametrize("b64", [
    "not base64!", "YWJj=", "YQ", "YQ=", "YQ===", "Y Q==", "YWJj\n", "-_-_", "YW Jj",
    "YR==",    # non-canonical: unused bits set
])
def test_invalid_base64_plaintext_400(crypto, kr, b64):
    expect(crypto.post(url(kr), {"plaintext": b64}), 400, "invalid_request")


def test_error_bodies_do_not_echo_input(crypto, kr):
    t = new_text("echo")
    r = crypto.post(url(kr), data='{"text": %s, "context": 5}' % json.dumps(t))
    expect(r, 400, "invalid_request")
    assert t not in r.text
    ct = crypto.encrypt(kr, text=t)["ciphertext"]
    r = crypto.post(url(kr, "decrypt"), {"ciphertext": ct, "context": {"a": "b"}})
    expect(r, 422, "decryption_failed")
    assert ct not in r.text and ct.split(":")[2][:20] not in r.text and t not in r.text


def test_content_type_other_than_json_or_octets(crypto, kr):
    r = crypto.post(url(kr), data='{"text": "x"}', headers={"Content-Type": "text/plain"})
    assert r.status_code in (200, 400), r.status_code
    if r.status_code == 400:
        expect(r, 400, "invalid_request")
