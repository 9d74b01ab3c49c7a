# SPDX-License-Identifier: Apache-2.0
"""Batch calls: order, references, per-item errors, per-item context, limits."""
import json

import pytest

from conftest import CRYPTO_SCOPES, SECRETS, b64, expect, new_bytes, new_text, unb64, uniq


def url(name, op):
    return f"/v1/keyrings/{name}/{op}"


def test_batch_encrypt_decrypt_order_and_reference(server, crypto):
    name = server.create_keyring()
    texts = [new_text(f"b{i}") for i in range(20)]
    items = [{"text": t, "context": {"i": str(i)}, "reference": f"ref-{i}"}
             for i, t in enumerate(texts)]
    res = expect(crypto.post(url(name, "encrypt"), {"items": items}), 200)
    assert len(res["items"]) == 20
    for i, it in enumerate(res["items"]):
        assert it["reference"] == f"ref-{i}"
        assert it["key_version"] == 1 and it["ciphertext"].startswith("dg:v1:")
    dec = [{"ciphertext": it["ciphertext"], "context": {"i": str(i)}, "reference": f"d{i}"}
           for i, it in enumerate(res["items"])]
    out = expect(crypto.post(url(name, "decrypt"), {"items": dec}), 200)
    assert [it["text"] for it in out["items"]] == texts
    assert [it["reference"] for it in out["items"]] == [f"d{i}" for i in range(20)]


def test_batch_reference_optional(server, crypto):
    name = server.create_keyring()
    res = expect(crypto.post(url(name, "encrypt"), {"items": [{"text": new_text("nr")}]}), 200)
    assert "reference" not in res["items"][0]


def test_batch_mixed_good_and_bad(server, crypto):
    name = server.create_keyring()
    good = new_text("good")
    ct = crypto.encrypt(name, text=good, context={"t": "1"})["ciphertext"]
    other = server.create_keyring()
    foreign = crypto.encrypt(other, text=new_text("foreign"))["ciphertext"]
    items = [
        {"ciphertext": ct, "context": {"t": "1"}, "reference": "ok-1"},
        {"ciphertext": ct, "context": {"t": "2"}, "reference": "wrong-ctx"},
        {"ciphertext": "dg:v1:!!", "reference": "malformed"},
        {"ciphertext": foreign, "reference": "foreign"},
        {"ciphertext": ct, "reference": "no-ctx"},          # context is never inherited
        {"ciphertext": 5, "reference": "wrong-type"},
        {"ciphertext": ct, "context": {"t": "1"}},           # no reference
    ]
    res = expect(crypto.post(url(name, "decrypt"), {"items": items}), 200)
    out = res["items"]
    assert len(out) == len(items)
    assert out[0]["text"] == good and out[0]["reference"] == "ok-1"
    assert out[1]["error"]["code"] == "decryption_failed" and out[1]["reference"] == "wrong-ctx"
    assert out[2]["error"]["code"] == "malformed_ciphertext" and out[2]["reference"] == "malformed"
    assert out[3]["error"]["code"] == "decryption_failed" and out[3]["reference"] == "foreign"
    assert out[4]["error"]["code"] == "decryption_failed" and out[4]["reference"] == "no-ctx"
    assert out[5]["error"]["code"] == "invalid_request" and out[5]["reference"] == "wrong-type"
    assert out[6]["text"] == good and "reference" not in out[6]
    for it in out:
        if "error" in it:
            assert good not in json.dumps(it)


def test_batch_encrypt_mixed(server, crypto):
    name = server.create_keyring()
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    expect(server.admin.patch(f"/v1/keyrings/{name}", {"min_encryption_version": 2}), 200)
    t = new_text("enc-mixed")
    items = [
        {"text": t, "reference": "a"},
        {"plaintext": "not base64!", "reference": "b"},
        {"text": t, "key_version": 1, "reference": "c"},
        {"text": t, "key_version": 7, "reference": "d"},
        {"text": t, "plaintext": b64(b"both"), "reference": "e"},
        {"plaintext": b64(new_bytes(40, "batch-bin")), "context": {"x": "y"}, "reference": "f"},
        {"text": t, "context": {"x": 1}, "reference": "g"},
    ]
    out = expect(crypto.post(url(name, "encrypt"), {"items": items}), 200)["items"]
    assert [o.get("reference") for o in out] == list("abcdefg")
    assert out[0]["key_version"] == 2
    assert out[1]["error"]["code"] == "invalid_request"
    assert out[2]["error"]["code"] == "key_version_disabled"
    assert out[3]["error"]["code"] == "unknown_key_version"
    assert out[4]["error"]["code"] == "invalid_request"
    assert out[5]["key_version"] == 2
    assert out[6]["error"]["code"] == "invalid_request"


def test_batch_rewrap_and_datakey(server, crypto):
    name = server.create_keyring()
    texts = [new_text(f"rw{i}") for i in range(5)]
    cts = [crypto.encrypt(name, text=t, context={"n": str(i)})["ciphertext"]
           for i, t in enumerate(texts)]
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    items = [{"ciphertext": c, "context": {"n": str(i)}, "reference": str(i)}
             for i, c in enumerate(cts)]
    items.append({"ciphertext": cts[0], "reference": "bad"})
    out = expect(crypto.post(url(name, "rewrap"), {"items": items}), 200)["items"]
    for i in range(5):
        assert out[i]["key_version"] == 2 and out[i]["reference"] == str(i)
        assert crypto.decrypt(name, out[i]["ciphertext"], context={"n": str(i)})["text"] == texts[i]
    assert out[5]["error"]["code"] == "decryption_failed" and out[5]["reference"] == "bad"

    dk = expect(crypto.post(url(name, "datakey"), {"items": [
        {"context": {"f": "1"}, "include_plaintext": True, "reference": "k1"},
        {"context": {"f": "2"}, "reference": "k2"},
    ]}), 200)["items"]
    assert dk[0]["reference"] == "k1" and dk[1]["reference"] == "k2"
    key = unb64(dk[0]["plaintext_key"])
    SECRETS.add_bytes(key, "batch data key")
    assert len(key) == 32 and "plaintext_key" not in dk[1]
    assert unb64(crypto.decrypt(name, dk[0]["wrapped_key"], context={"f": "1"})["plaintext"]) == key
    assert dk[0]["wrapped_key"] != dk[1]["wrapped_key"]


def test_batch_request_level_faults(server, crypto):
    name = server.create_keyring()
    expect(crypto.post(url(name, "encrypt"), {"items": []}), 400, "invalid_request")
    expect(crypto.post(url(name, "encrypt"), {"items": "x"}), 400, "invalid_request")
    expect(crypto.post(url(name, "encrypt"), {"items": [{"text": "x"}], "text": "y"}), 400,
           "invalid_request")
    expect(crypto.post(url("no-such-batch-kr", "encrypt"), {"items": [{"text": "x"}]}), 404,
           "not_found")
    expect(crypto.post(url(name, "encrypt"), {"items": [{"text": "x"}]}, token=None), 401,
           "unauthenticated")
    # a batch cannot be answered as raw bytes
    r = crypto.post(url(name, "decrypt"), {"items": [{"ciphertext": "dg:v1:AAAA"}]},
                    headers={"Accept": "application/octet-stream"})
    assert r.status_code in (200, 400), r.status_code
    if r.status_code == 200:
        assert r.headers["Content-Type"].startswith("application/json")


def test_batch_reference_too_long(server, crypto):
    name = server.create_keyring()
    out = crypto.post(url(name, "encrypt"), {"items": [
        {"text": new_text("ref"), "reference": "r" * 256},
        {"text": new_text("ref"), "reference": "r" * 257},
    ]})
    body = expect(out, 200) if out.status_code == 200 else expect(out, 400, "invalid_request")
    if out.status_code == 200:
        assert body["items"][0]["reference"] == "r" * 256
        assert body["items"][1]["error"]["code"] == "invalid_request"


def test_batch_default_item_limit(server, crypto):
    name = server.create_keyring()
    ok = [{"text": "t"} for _ in range(1000)]
    out = expect(crypto.post(url(name, "encrypt"), {"items": ok}), 200)
    assert len(out["items"]) == 1000
    expect(crypto.post(url(name, "encrypt"), {"items": ok + [{"text": "t"}]}), 413,
           "batch_too_large")


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A server with small limits: 4 KiB bodies, 3 batch items, 2 KiB batches."""
    import conftest
    conftest.require_binary()
    dd = conftest.DataDir(tmp_path_factory.mktemp("limited"))
    srv = conftest.Server(dd.path, args=["--max-body-bytes", "4096", "--max-batch-items", "3",
                                         "--max-batch-bytes", "2048"], admin_key=dd.admin_key)
    srv.datadir = dd
    srv.start()
    srv.kr = srv.create_keyring()
    srv.crypto, _ = srv.issue_key(conftest.CRYPTO_SCOPES)
    yield srv
    srv.stop()


def test_batch_too_many_items_413(limited):
    api = limited.crypto
    items = [{"text": f"i{i}"} for i in range(3)]
    expect(api.post(url(limited.kr, "encrypt"), {"items": items}), 200)
    expect(api.post(url(limited.kr, "encrypt"), {"items": items + [{"text": "x"}]}), 413,
           "batch_too_large")
    cts = [{"ciphertext": "dg:v1:AAAA"}] * 4
    expect(api.post(url(limited.kr, "decrypt"), {"items": cts}), 413, "batch_too_large")


def test_batch_too_many_bytes_413(limited):
    api = limited.crypto
    items = [{"text": "y" * 900}, {"text": "z" * 900}, {"text": "w" * 900}]   # ~2.7 KiB < 4 KiB
    body = json.dumps({"items": items})
    assert 2048 < len(body) < 4096
    expect(api.post(url(limited.kr, "encrypt"), data=body), 413, "batch_too_large")
    small = [{"text": "y" * 500}, {"text": "z" * 500}]
    expect(api.post(url(limited.kr, "encrypt"), {"items": small}), 200)


def test_body_too_large_413(limited):
    api = limited.crypto
    big = {"text": "q" * 5000}
    expect(api.post(url(limited.kr, "encrypt"), big), 413, "too_large")
    r = api.post(url(limited.kr, "encrypt"), data=b"\x01" * 5000,
                 headers={"Content-Type": "application/octet-stream"})
    expect(r, 413, "too_large")
    expect(limited.admin.post("/v1/apps", {"name": "big-app", "description": "d" * 5000}), 413,
           "too_large")
    # just under the limit still works
    fits = {"text": "q" * 3000}
    expect(api.post(url(limited.kr, "encrypt"), fits), 200)


def test_single_request_limit_below_the_batch_limit(start_server):
    """Guarantee (README --max-body-bytes, --max-batch-bytes): --max-body-bytes bounds every
    request that is not a batch, even when the batch limit is larger: with 1 KiB and 1 MiB, a
    single request over 1 KiB is 413 too_large on every route that takes a body, and a batch of
    the same size is accepted."""
    srv = start_server(args=["--max-body-bytes", "1KiB", "--max-batch-bytes", "1MiB"])
    kr = srv.create_keyring()
    api, _ = srv.issue_key(CRYPTO_SCOPES + ["keyrings:admin", "apps:admin",
                                          "audit:read"])
    pad = "p" * 1100                               # over 1 KiB in any body it is put in
    ct = api.encrypt(kr, text="fits")["ciphertext"]
    over = [
        (url(kr, "encrypt"), {"text": pad}),
        (url(kr, "encrypt"), {"text": "x", "context": {"k": pad}}),
        (url(kr, "decrypt"), {"ciphertext": ct, "context": {"k": pad}}),
        (url(kr, "rewrap"), {"ciphertext": ct, "context": {"k": pad}}),
        (url(kr, "datakey"), {"context": {"k": pad}}),
        ("/v1/apps", {"name": uniq("app"), "description": pad}),
        ("/v1/keyrings", {"name": uniq("kr"), "x": pad}),
        ("/v1/audit/hash", {"value": pad}),
        (f"/v1/keyrings/{kr}/rotate", {"x": pad}),
    ]
    for path, body in over:
        assert len(json.dumps(body)) > 1024
        expect(api.post(path, body), 413, "too_large")
    expect(api.patch(f"/v1/keyrings/{kr}", {"rotation_period": "90d", "x": pad}), 413,
           "too_large")
    r = api.post(url(kr, "encrypt"), data=b"\x01" * 1100,
                 headers={"Content-Type": "application/octet-stream"})
    expect(r, 413, "too_large")
    # the same size as a batch is a batch: accepted, up to the batch limit
    items = [{"text": pad}]
    assert len(json.dumps({"items": items})) > 1024
    body = expect(api.post(url(kr, "encrypt"), {"items": items}), 200)
    assert len(body["items"]) == 1 and "ciphertext" in body["items"][0], body
    many = [{"text": pad} for _ in range(200)]     # ~220 KiB
    assert len(expect(api.post(url(kr, "encrypt"), {"items": many}), 200)["items"]) == 200
    # and a single request under 1 KiB still works
    expect(api.post(url(kr, "encrypt"), {"text": "p" * 900}), 200)
    expect(api.post("/v1/audit/hash", {"value": "v" * 900}), 200)
