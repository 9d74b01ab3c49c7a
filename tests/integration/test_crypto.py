# SPDX-License-Identifier: Apache-2.0
"""Encrypt, decrypt, rewrap and datakey: single calls, formats, versions and failure modes."""
import json

import pytest

from conftest import (SECRETS, b64url, expect, join_ciphertext, new_bytes, new_text,
                      split_ciphertext, unb64, unb64url)

ALGORITHMS = [
    ("aes-256-gcm", {}),
    ("xchacha20-poly1305", {"algorithm": "xchacha20-poly1305"}),
    ("aes-256-siv", {"deterministic": True}),
]


def enc_url(name, op="encrypt"):
    return f"/v1/keyrings/{name}/{op}"


# ---------------------------------------------------------------------------------------------
# happy paths

def test_encrypt_decrypt_text(server, crypto):
    name = server.create_keyring()
    text = new_text("hello")
    ctx = {"tenant": "t-1", "field": "provider_key"}
    res = crypto.encrypt(name, text=text, context=ctx)
    assert res["key_version"] == 1
    assert res["ciphertext"].startswith("dg:v1:")
    assert text not in res["ciphertext"]
    out = crypto.decrypt(name, res["ciphertext"], context=ctx)
    assert out["text"] == text
    assert unb64(out["plaintext"]) == text.encode()


def test_encrypt_decrypt_binary_plaintext(server, crypto):
    name = server.create_keyring()
    data = new_bytes(200, "binary") + b"\x00\xff"
    res = crypto.encrypt(name, plaintext=data)
    out = crypto.decrypt(name, res["ciphertext"])
    assert unb64(out["plaintext"]) == data
    assert "text" not in out                       # not valid UTF-8 (and holds NUL)


def test_text_absent_for_nul(server, crypto):
    name = server.create_keyring()
    data = b"pt-nul-" + b"\x00" + new_text("nul").encode()
    SECRETS.add_bytes(data, "plaintext with NUL")
    res = crypto.encrypt(name, plaintext=data)
    out = crypto.decrypt(name, res["ciphertext"])
    assert unb64(out["plaintext"]) == data and "text" not in out


def test_unicode_text_round_trip(server, crypto):
    name = server.create_keyring()
    text = new_text("uni") + " ключ 秘密 🔑"
    SECRETS.add_text(text, "unicode plaintext")
    ctx = {"租户": "测试", "e\u0301": "not normalised"}
    res = crypto.encrypt(name, text=text, context=ctx)
    assert crypto.decrypt(name, res["ciphertext"], context=ctx)["text"] == text
    # no Unicode normalisation: the composed form is another context
    expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": res["ciphertext"],
                                                  "context": {"租户": "测试", "é": "not normalised"}}),
           422, "decryption_failed")


def test_context_key_order_does_not_matter(server, crypto):
    name = server.create_keyring()
    text = new_text("order")
    ct = crypto.encrypt(name, text=text, context={"a": "1", "b": "2", "c": "3"})["ciphertext"]
    raw = '{"ciphertext": %s, "context": {"c": "3", "a": "1", "b": "2"}}' % json.dumps(ct)
    out = expect(crypto.post(enc_url(name, "decrypt"), data=raw), 200)
    assert out["text"] == text


def test_absent_context_is_empty_context(server, crypto):
    name = server.create_keyring()
    text = new_text("empty-ctx")
    ct = crypto.encrypt(name, text=text)["ciphertext"]
    assert crypto.decrypt(name, ct, context={})["text"] == text
    ct2 = crypto.encrypt(name, text=text, context={})["ciphertext"]
    assert crypto.decrypt(name, ct2)["text"] == text


def test_context_limit_32_pairs(server, crypto):
    name = server.create_keyring()
    ctx32 = {f"k{i:02d}": f"v{i}" for i in range(32)}
    text = new_text("ctx32")
    ct = crypto.encrypt(name, text=text, context=ctx32)["ciphertext"]
    assert crypto.decrypt(name, ct, context=ctx32)["text"] == text
    ctx33 = dict(ctx32, k32="v32")
    expect(crypto.post(enc_url(name), {"text": text, "context": ctx33}), 400, "invalid_request")


@pytest.mark.parametrize("alg,fields", ALGORITHMS, ids=[a for a, _ in ALGORITHMS])
def test_round_trip_every_algorithm(server, crypto, alg, fields):
    name = server.create_keyring(**fields)
    kr = expect(server.admin.get(f"/v1/keyrings/{name}"), 200)
    assert kr["algorithm"] == alg
    for text in [new_text(alg), "x" * 1 + new_text("p"), new_text("long") * 40]:
        ct = crypto.encrypt(name, text=text, context={"alg": f"ctx-{alg}"})["ciphertext"]
        assert crypto.decrypt(name, ct, context={"alg": f"ctx-{alg}"})["text"] == text
        expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": ct, "context": {"alg": "x"}}),
               422, "decryption_failed")


def test_randomized_encryption_differs_each_time(server, crypto):
    name = server.create_keyring()
    text = new_text("rand")
    a = crypto.encrypt(name, text=text)["ciphertext"]
    b = crypto.encrypt(name, text=text)["ciphertext"]
    assert a != b


def test_deterministic_equality(server, crypto):
    name = server.create_keyring(deterministic=True)
    text = new_text("det")
    ctx = {"table": "providers", "column": "api_key"}
    a = crypto.encrypt(name, text=text, context=ctx)["ciphertext"]
    b = crypto.encrypt(name, text=text, context=dict(reversed(list(ctx.items()))))["ciphertext"]
    assert a == b
    c = crypto.encrypt(name, text=text, context={"table": "providers", "column": "other"})
    assert c["ciphertext"] != a
    d = crypto.encrypt(name, text=new_text("det2"), context=ctx)["ciphertext"]
    assert d != a
    # another deterministic keyring gives another ciphertext
    other = server.create_keyring(deterministic=True)
    assert crypto.encrypt(other, text=text, context=ctx)["ciphertext"] != a
    assert crypto.decrypt(name, a, context=ctx)["text"] == text


def test_deterministic_keyring_refuses_datakey(server, crypto):
    name = server.create_keyring(deterministic=True)
    expect(crypto.post(enc_url(name, "datakey"), {}), 400, "invalid_request")


@pytest.mark.parametrize("alg,fields", ALGORITHMS, ids=[a for a, _ in ALGORITHMS])
def test_ciphertext_overhead_at_most_64(server, crypto, alg, fields):
    name = server.create_keyring(**fields)
    for n in [1, 2, 3, 15, 16, 17, 31, 32, 33, 100, 132, 1000]:
        data = new_bytes(n, f"overhead {alg}")
        ct = crypto.encrypt(name, plaintext=data, context={"n": str(n)})["ciphertext"]
        version, blob = split_ciphertext(ct)
        assert version == 1
        assert len(blob) - n <= 64, f"{alg}: overhead {len(blob) - n} for {n} bytes"
        assert len(blob) > n


MEASURED = {}


@pytest.mark.parametrize("alg,fields", ALGORITHMS, ids=[a for a, _ in ALGORITHMS])
def test_132_bytes_fit_varchar_255(server, crypto, alg, fields):
    name = server.create_keyring(**fields)
    data = new_bytes(132, f"varchar {alg}")
    ct = crypto.encrypt(name, plaintext=data)["ciphertext"]
    MEASURED[alg] = len(ct)
    print(f"\n[varchar(255)] {alg}: 132-byte plaintext -> {len(ct)}-char ciphertext at v1")
    assert len(ct) <= 255, f"{alg}: {len(ct)} chars"
    # at version 999 the prefix grows by two characters and must still fit
    assert len(ct) + 2 <= 255 or alg == "aes-256-siv"


def test_decrypt_as_octet_stream(server, crypto):
    name = server.create_keyring()
    data = new_bytes(300, "octet-out")
    ct = crypto.encrypt(name, plaintext=data)["ciphertext"]
    r = crypto.post(enc_url(name, "decrypt"), {"ciphertext": ct},
                    headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].split(";")[0] == "application/octet-stream"
    assert r.content == data


def test_octet_stream_encrypt_1mib_round_trip(server, crypto):
    name = server.create_keyring()
    data = new_bytes(1 << 20, "1MiB")
    ctx = {"blob": "big", "tenant": "t9"}
    r = crypto.post(enc_url(name), data=data,
                    headers={"Content-Type": "application/octet-stream",
                             "X-Difyguard-Context": b64url(json.dumps(ctx).encode())})
    res = expect(r, 200)
    assert res["key_version"] == 1
    version, blob = split_ciphertext(res["ciphertext"])
    assert len(blob) - len(data) <= 64
    out = crypto.decrypt(name, res["ciphertext"], context=ctx)
    assert unb64(out["plaintext"]) == data
    r = crypto.post(enc_url(name, "decrypt"), {"ciphertext": res["ciphertext"], "context": ctx},
                    headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200 and r.content == data
    # the context travelled: without it decryption fails
    expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": res["ciphertext"]}), 422,
           "decryption_failed")


def test_octet_stream_encrypt_key_version_query(server, crypto):
    name = server.create_keyring()
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    data = new_bytes(64, "octet-v1")
    r = crypto.post(enc_url(name), data=data, params={"key_version": "1"},
                    headers={"Content-Type": "application/octet-stream"})
    res = expect(r, 200)
    assert res["key_version"] == 1 and res["ciphertext"].startswith("dg:v1:")
    r = crypto.post(enc_url(name), data=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert expect(r, 200)["key_version"] == 2
    assert unb64(crypto.decrypt(name, res["ciphertext"])["plaintext"]) == data
    r = crypto.post(enc_url(name), data=data, params={"key_version": "3"},
                    headers={"Content-Type": "application/octet-stream"})
    expect(r, 422, "unknown_key_version")


def test_octet_stream_bad_context_header(server, crypto):
    name = server.create_keyring()
    data = new_bytes(16, "octet-bad")
    for hdr in ["!!!notbase64!!!", b64url(b"[1,2]"), b64url(b'{"a": 1}'), b64url(b"{")]:
        r = crypto.post(enc_url(name), data=data,
                        headers={"Content-Type": "application/octet-stream",
                                 "X-Difyguard-Context": hdr})
        expect(r, 400, "invalid_request")


# ---------------------------------------------------------------------------------------------
# datakey

def test_datakey_without_plaintext(server, crypto):
    name = server.create_keyring()
    ctx = {"purpose": "file-encryption"}
    res = expect(crypto.post(enc_url(name, "datakey"), {"context": ctx}), 200)
    assert "plaintext_key" not in res
    assert res["key_version"] == 1 and res["wrapped_key"].startswith("dg:v1:")
    key = unb64(crypto.decrypt(name, res["wrapped_key"], context=ctx)["plaintext"])
    SECRETS.add_bytes(key, "data key (via decrypt)")
    assert len(key) == 32
    res2 = expect(crypto.post(enc_url(name, "datakey"), {"context": ctx,
                                                          "include_plaintext": False}), 200)
    assert "plaintext_key" not in res2
    assert res2["wrapped_key"] != res["wrapped_key"]


def test_datakey_with_plaintext(server, crypto):
    name = server.create_keyring()
    ctx = {"purpose": "dk"}
    res = expect(crypto.post(enc_url(name, "datakey"), {"context": ctx,
                                                         "include_plaintext": True}), 200)
    key = unb64(res["plaintext_key"])
    SECRETS.add_bytes(key, "data key plaintext")
    assert len(key) == 32
    back = unb64(crypto.decrypt(name, res["wrapped_key"], context=ctx)["plaintext"])
    assert back == key
    expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": res["wrapped_key"]}), 422,
           "decryption_failed")


def test_datakey_plaintext_needs_scope(server):
    name = server.create_keyring()
    api, _ = server.issue_key(["datakey", "decrypt"])
    res = expect(api.post(enc_url(name, "datakey"), {}), 200)
    assert "plaintext_key" not in res
    expect(api.post(enc_url(name, "datakey"), {"include_plaintext": True}), 403, "forbidden")
    no_dk, _ = server.issue_key(["encrypt"])
    expect(no_dk.post(enc_url(name, "datakey"), {}), 403, "forbidden")


# ---------------------------------------------------------------------------------------------
# versions, rotation, rewrap

def test_rotation_keeps_old_ciphertexts(server, crypto):
    name = server.create_keyring()
    t1, t2 = new_text("v1"), new_text("v2")
    c1 = crypto.encrypt(name, text=t1)["ciphertext"]
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    r2 = crypto.encrypt(name, text=t2)
    assert r2["key_version"] == 2 and r2["ciphertext"].startswith("dg:v2:")
    assert crypto.decrypt(name, c1)["text"] == t1
    assert crypto.decrypt(name, r2["ciphertext"])["text"] == t2


def test_min_decryption_version_disables_old(server, crypto):
    name = server.create_keyring()
    t1 = new_text("old")
    c1 = crypto.encrypt(name, text=t1)["ciphertext"]
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    c2 = crypto.encrypt(name, text=t1)["ciphertext"]
    expect(server.admin.patch(f"/v1/keyrings/{name}", {"min_encryption_version": 2,
                                                        "min_decryption_version": 2}), 200)
    expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": c1}), 422,
           "key_version_disabled")
    expect(crypto.post(enc_url(name, "rewrap"), {"ciphertext": c1}), 422,
           "key_version_disabled")
    assert crypto.decrypt(name, c2)["text"] == t1
    # lowering it again re-enables the version (nothing was destroyed)
    expect(server.admin.patch(f"/v1/keyrings/{name}", {"min_decryption_version": 1}), 200)
    assert crypto.decrypt(name, c1)["text"] == t1


def test_key_version_bounds_on_encrypt(server, crypto):
    name = server.create_keyring()
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    text = new_text("kv")
    assert crypto.encrypt(name, text=text, key_version=1)["key_version"] == 1
    assert crypto.encrypt(name, text=text, key_version=2)["key_version"] == 2
    expect(server.admin.patch(f"/v1/keyrings/{name}", {"min_encryption_version": 2}), 200)
    expect(crypto.post(enc_url(name), {"text": text, "key_version": 1}), 422,
           "key_version_disabled")
    expect(crypto.post(enc_url(name), {"text": text, "key_version": 3}), 422,
           "unknown_key_version")
    assert crypto.encrypt(name, text=text)["key_version"] == 2


def test_decrypt_unknown_version(server, crypto):
    name = server.create_keyring()
    ct = crypto.encrypt(name, text=new_text("unk"))["ciphertext"]
    _, blob = split_ciphertext(ct)
    forged = bytearray(blob)
    forged[1:5] = (9).to_bytes(4, "big")
    expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": join_ciphertext(9, forged)}),
           422, "unknown_key_version")


def test_rewrap_to_latest(server, crypto):
    name = server.create_keyring()
    text = new_text("rewrap")
    ctx = {"row": "42"}
    c1 = crypto.encrypt(name, text=text, context=ctx)["ciphertext"]
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    r = expect(crypto.post(enc_url(name, "rewrap"), {"ciphertext": c1, "context": ctx}), 200)
    assert r["key_version"] == 3 and r["ciphertext"].startswith("dg:v3:")
    assert crypto.decrypt(name, r["ciphertext"], context=ctx)["text"] == text
    # rewrapping a latest-version ciphertext stays at the latest version
    r2 = expect(crypto.post(enc_url(name, "rewrap"), {"ciphertext": r["ciphertext"],
                                                       "context": ctx}), 200)
    assert r2["key_version"] == 3
    assert crypto.decrypt(name, r2["ciphertext"], context=ctx)["text"] == text
    expect(crypto.post(enc_url(name, "rewrap"), {"ciphertext": c1, "context": {"row": "43"}}),
           422, "decryption_failed")


def test_rewrap_deterministic(server, crypto):
    name = server.create_keyring(deterministic=True)
    text = new_text("det-rewrap")
    c1 = crypto.encrypt(name, text=text)["ciphertext"]
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    r = expect(crypto.post(enc_url(name, "rewrap"), {"ciphertext": c1}), 200)
    assert r["key_version"] == 2
    assert r["ciphertext"] == crypto.encrypt(name, text=text)["ciphertext"]
    assert crypto.decrypt(name, r["ciphertext"])["text"] == text


# ---------------------------------------------------------------------------------------------
# failures

def test_wrong_context_422(server, crypto):
    name = server.create_keyring()
    ct = crypto.encrypt(name, text=new_text("ctx"), context={"tenant": "a"})["ciphertext"]
    for ctx in [{"tenant": "b"}, {}, {"tenant": "a", "x": "y"}, {"Tenant": "a"}]:
        expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": ct, "context": ctx}), 422,
               "decryption_failed")
    expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": ct}), 422, "decryption_failed")


@pytest.mark.parametrize("alg,fields", ALGORITHMS, ids=[a for a, _ in ALGORITHMS])
def test_tampered_ciphertext_422(server, crypto, alg, fields):
    name = server.create_keyring(**fields)
    ct = crypto.encrypt(name, text=new_text("tamper"))["ciphertext"]
    version, blob = split_ciphertext(ct)
    positions = sorted({5, 6, 20, 36, 37, len(blob) // 2, len(blob) - 17, len(blob) - 1})
    for pos in positions:
        if pos < 5 or pos >= len(blob):
            continue
        for bit in (0x01, 0x80):
            t = bytearray(blob)
            t[pos] ^= bit
            expect(crypto.post(enc_url(name, "decrypt"),
                               {"ciphertext": join_ciphertext(version, t)}), 422,
                   "decryption_failed")


def test_truncated_ciphertext_422(server, crypto):
    name = server.create_keyring()
    ct = crypto.encrypt(name, text=new_text("trunc") * 3)["ciphertext"]
    version, blob = split_ciphertext(ct)
    for cut in (1, 2, 16):
        expect(crypto.post(enc_url(name, "decrypt"),
                           {"ciphertext": join_ciphertext(version, blob[:-cut])}),
               422, "decryption_failed")


def test_foreign_keyring_422(server, crypto):
    a = server.create_keyring()
    b = server.create_keyring()
    ct = crypto.encrypt(a, text=new_text("foreign"), context={"k": "v"})["ciphertext"]
    expect(crypto.post(enc_url(b, "decrypt"), {"ciphertext": ct, "context": {"k": "v"}}), 422,
           "decryption_failed")
    expect(crypto.post(enc_url(b, "rewrap"), {"ciphertext": ct, "context": {"k": "v"}}), 422,
           "decryption_failed")
    # and across algorithms
    x = server.create_keyring(algorithm="xchacha20-poly1305")
    expect(crypto.post(enc_url(x, "decrypt"), {"ciphertext": ct, "context": {"k": "v"}}),
           422, "decryption_failed")


def test_version_mismatch_prefix_vs_blob_400(server, crypto):
    name = server.create_keyring()
    ct = crypto.encrypt(name, text=new_text("mismatch"))["ciphertext"]
    expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
    forged = ct.replace("dg:v1:", "dg:v2:", 1)
    expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": forged}), 400,
           "malformed_ciphertext")
    expect(crypto.post(enc_url(name, "rewrap"), {"ciphertext": forged}), 400,
           "malformed_ciphertext")


def noncanonical(ct):
    """Set unused trailing bits of the last base64url character (same bytes when decoded
    leniently). Returns None when the blob length leaves no unused bits."""
    prefix, text = ct.rsplit(":", 1)
    rem = len(unb64url(text)) % 3
    if rem == 0:
        return None
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    idx = alphabet.index(text[-1]) ^ 0x01       # the lowest bit is unused when rem is 1 or 2
    bad = text[:-1] + alphabet[idx]
    assert unb64url(bad) == unb64url(text)       # a lenient decoder sees the same bytes
    return f"{prefix}:{bad}"


def test_non_canonical_base64url_400(server, crypto):
    name = server.create_keyring()
    tried = 0
    for n in range(10, 16):
        data = new_bytes(n, "noncanon")
        ct = crypto.encrypt(name, plaintext=data)["ciphertext"]
        bad = noncanonical(ct)
        if bad is None:
            continue
        tried += 1
        expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": bad}), 400,
               "malformed_ciphertext")
        assert unb64(crypto.decrypt(name, ct)["plaintext"]) == data
    assert tried >= 2


@pytest.mark.parametrize("text", [
    "", "dg:v1:", "dg:v0:AAAA", "dg:v01:AAAA", "dg:v1:AA==", "dg:v1:AA+/", "xx:v1:AAAA",
    "dg:1:AAAA", "dg:v1:AAAA:AAAA", "dg:v-1:AAAA", "dg:v99999999999:AAAA", "dg:v1:AAAAAAAA",
    "dg:v1: AAAA",
])
def test_malformed_ciphertext_text_400(server, crypto, text):
    name = server.create_keyring()
    expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": text}), 400,
           "malformed_ciphertext")


def test_unknown_format_byte_400(server, crypto):
    name = server.create_keyring()
    ct = crypto.encrypt(name, text=new_text("fmt"))["ciphertext"]
    version, blob = split_ciphertext(ct)
    for fmt in (0x00, 0x04, 0xFF):
        t = bytearray(blob)
        t[0] = fmt
        expect(crypto.post(enc_url(name, "decrypt"), {"ciphertext": join_ciphertext(version, t)}),
               400, "malformed_ciphertext")


def test_unknown_keyring_404(server, crypto):
    for op, body in [("encrypt", {"text": "x"}), ("decrypt", {"ciphertext": "dg:v1:AAAA"}),
                     ("rewrap", {"ciphertext": "dg:v1:AAAA"}), ("datakey", {})]:
        expect(crypto.post(f"/v1/keyrings/no-such-kr-{op}/{op}", body), 404, "not_found")


# ---------------------------------------------------------------------------------------------
# the README's varchar(255) table

# Versions 1 to 100 are measured: only the number of decimal digits of the version changes the
# length (the prefix "dg:v<N>:"; the blob holds it in 4 fixed bytes), so version 100 stands for
# every version up to 999. (Rotating to 999 takes a minute; the checks below pin the prefix.)
VARCHAR_VERSIONS = (1, 9, 10, 99, 100)


@pytest.fixture(scope="module")
def rotated_to_100(server):
    """A randomized and a deterministic keyring rotated up to version 100."""
    names = {"aes-256-gcm": server.create_keyring(), "aes-256-siv":
             server.create_keyring(deterministic=True)}
    for name in names.values():
        for _ in range(99):
            expect(server.admin.post(f"/v1/keyrings/{name}/rotate", {}), 200)
        assert expect(server.admin.get(f"/v1/keyrings/{name}"), 200)["latest_version"] == 100
    return names


def largest_fitting(crypto, name, version):
    """The largest plaintext (bytes) whose ciphertext at this key version fits 255 characters,
    from real ciphertexts of 130 to 170 bytes."""
    fits = []
    for n in range(130, 171):
        ct = crypto.encrypt(name, plaintext=new_bytes(n, "varchar"), context={"n": str(n)},
                            key_version=version)["ciphertext"]
        assert ct.startswith(f"dg:v{version}:") and split_ciphertext(ct)[0] == version, ct
        if len(ct) <= 255:
            fits.append(n)
    assert fits == list(range(130, max(fits) + 1)), fits        # a prefix: monotone in n
    return max(fits)


def test_varchar_255_table(server, crypto, rotated_to_100):
    """Guarantee (README "How large a secret fits a varchar(255) column?", SECURITY.md
    "Ciphertext"): a 133-byte secret fits varchar(255) for key versions below 100 and 132 bytes
    for versions below 1000 (deterministic keyrings: 165 and 164); 134 bytes never fit. Measured
    on real ciphertexts at versions 1 to 100, and both documents state the same numbers."""
    import os
    import re
    got = {(alg, v): largest_fitting(crypto, name, v)
           for alg, name in rotated_to_100.items() for v in VARCHAR_VERSIONS}
    want = {("aes-256-gcm", v): 133 if v < 100 else 132 for v in VARCHAR_VERSIONS}
    want.update({("aes-256-siv", v): 165 if v < 100 else 164 for v in VARCHAR_VERSIONS})
    assert got == want, got
    src = os.environ.get("DG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(src, "README.md")) as f:
        readme = " ".join(f.read().split())
    with open(os.path.join(src, "SECURITY.md")) as f:
        security = " ".join(f.read().split())
    m = re.search(r"leaves \*\*(\d+) bytes of plaintext\*\* for key versions up to (\d+) "
                  r"\((\d+) below version (\d+); deterministic keyrings (\d+) and (\d+)\)", readme)
    assert m, "README's varchar(255) sentence changed: update this test with it"
    assert tuple(map(int, m.groups())) == (132, 999, 133, 100, 164, 165), m.group(0)
    m = re.search(r"plaintexts up to (\d+) bytes while the key version is below (\d+), and up to "
                  r"(\d+) bytes for versions below (\d+) \(deterministic: (\d+) and (\d+)\)",
                  security)
    assert m, "SECURITY.md's varchar(255) sentence changed: update this test with it"
    assert tuple(map(int, m.groups())) == (133, 100, 132, 1000, 165, 164), m.group(0)
