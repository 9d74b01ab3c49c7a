# SPDX-License-Identifier: Apache-2.0
"""No secret in the logs, at the most verbose level (issue 15). SECURITY.md "What is logged":
never plaintext, ciphertext, key bytes, wrapped keys, Authorization headers or request and
response bodies. Every request below goes through conftest.Api, which registers everything
secret-ish it sends or receives (tokens, plaintexts, ciphertexts, data keys, wrapped keys,
context values); this server runs at --log-level debug (every request logged), and its log is
scanned right here, as well as with all the others at the end of the session."""
import base64
import json

from conftest import SECRETS, b64, b64url, expect, join_ciphertext, new_bytes, new_text, \
    split_ciphertext, uniq


def url(kr, op):
    return f"/v1/keyrings/{kr}/{op}"


def tampered(ct):
    version, blob = split_ciphertext(ct)
    b = bytearray(blob)
    b[-1] ^= 1
    return join_ciphertext(version, bytes(b))


def test_no_secrets_logged_at_debug_level(start_server):
    """Guarantee: success and failure paths of every crypto route (encrypt, decrypt, rewrap,
    datakey; single, batch, octet-stream; wrong context, wrong keyring, tampered and malformed
    ciphertexts, retired versions, refused keys) leave no secret in the log, even at debug."""
    srv = start_server(args=["--log-level", "debug"])
    kr, other = srv.create_keyring(), srv.create_keyring()
    det = srv.create_keyring(deterministic=True)
    crypto, key = srv.issue_key(["encrypt", "decrypt", "rewrap", "datakey", "datakey:plaintext"])
    narrow, _ = srv.issue_key(["encrypt"], keyrings=[kr])
    ctx = {"tenant": f"tenant-{uniq('ctx')}", "row": f"row-{uniq('ctx')}"}
    wrong = {"tenant": f"tenant-{uniq('ctx')}"}
    ok = 0

    def call(api, path, body, status, **kw):
        nonlocal ok
        r = api.post(path, body, **kw)
        expect(r, status)
        ok += r.status_code == 200
        return r

    # encrypt: text, bytes, deterministic, batch (with a failing item), octet-stream
    ct = call(crypto, url(kr, "encrypt"), {"text": new_text("dbg"), "context": ctx},
              200).json()["ciphertext"]
    call(crypto, url(kr, "encrypt"), {"plaintext": b64(new_bytes(200, "dbg")), "context": ctx},
         200)
    dct = call(crypto, url(det, "encrypt"), {"text": new_text("det"), "context": ctx},
               200).json()["ciphertext"]
    batch = call(crypto, url(kr, "encrypt"),
                 {"items": [{"text": new_text("b1"), "context": ctx, "reference": uniq("ref")},
                            {"text": new_text("b2"), "key_version": 7}]}, 200).json()
    assert "error" in batch["items"][1], batch
    octet = new_bytes(3000, "octet")
    r = crypto.post(url(kr, "encrypt"), data=octet, headers={
        "Content-Type": "application/octet-stream",
        "X-Difyguard-Context": b64url(json.dumps(ctx).encode())})
    expect(r, 200)
    ok += 1
    oct_ct = r.json()["ciphertext"]
    # encrypt refused: scope, allow-list, no key, unknown keyring, malformed context
    call(narrow, url(other, "encrypt"), {"text": new_text("denied"), "context": ctx}, 403)
    call(srv.client(None), url(kr, "encrypt"), {"text": new_text("nokey"), "context": ctx}, 401)
    call(crypto, url(uniq("nokr"), "encrypt"), {"text": new_text("nokr"), "context": ctx}, 404)
    call(crypto, url(kr, "encrypt"), {"text": new_text("badctx"), "context": {"k": 5}}, 400)

    # decrypt: right, wrong context, wrong keyring, tampered, malformed, octet out, batch
    call(crypto, url(kr, "decrypt"), {"ciphertext": ct, "context": ctx}, 200)
    call(crypto, url(det, "decrypt"), {"ciphertext": dct, "context": ctx}, 200)
    call(crypto, url(kr, "decrypt"), {"ciphertext": ct, "context": wrong}, 422)
    call(crypto, url(other, "decrypt"), {"ciphertext": ct, "context": ctx}, 422)
    call(crypto, url(kr, "decrypt"), {"ciphertext": tampered(ct), "context": ctx}, 422)
    call(crypto, url(kr, "decrypt"), {"ciphertext": ct[:-3] + "!!!", "context": ctx}, 400)
    r = crypto.post(url(kr, "decrypt"), {"ciphertext": oct_ct, "context": ctx},
                    headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200 and r.content == octet
    ok += 1
    call(crypto, url(kr, "decrypt"),
         {"items": [{"ciphertext": ct, "context": ctx}, {"ciphertext": ct, "context": wrong},
                    {"ciphertext": tampered(oct_ct), "context": ctx}]}, 200)

    # rewrap: after a rotation; wrong context; retired version
    expect(srv.admin.post(f"/v1/keyrings/{kr}/rotate", {}), 200)
    new_ct = call(crypto, url(kr, "rewrap"), {"ciphertext": ct, "context": ctx},
                  200).json()["ciphertext"]
    assert split_ciphertext(new_ct)[0] == 2
    call(crypto, url(kr, "rewrap"), {"ciphertext": ct, "context": wrong}, 422)
    call(crypto, url(kr, "rewrap"), {"items": [{"ciphertext": ct, "context": ctx},
                                               {"ciphertext": tampered(ct)}]}, 200)

    # datakey: with and without the plaintext key, deterministic keyring refused; then the
    # wrapped key opened by decrypt (the data key itself in the answer)
    dk = call(crypto, url(kr, "datakey"), {"context": ctx, "include_plaintext": True},
              200).json()
    SECRETS.add_bytes(base64.b64decode(dk["plaintext_key"]), "data key")
    call(crypto, url(kr, "datakey"), {"context": ctx}, 200)
    call(crypto, url(det, "datakey"), {"context": ctx}, 400)
    call(crypto, url(kr, "decrypt"), {"ciphertext": dk["wrapped_key"], "context": ctx}, 200)
    call(crypto, url(kr, "decrypt"), {"ciphertext": dk["wrapped_key"], "context": wrong}, 422)

    # a retired version refuses decryption
    expect(srv.admin.patch(f"/v1/keyrings/{kr}",
                           {"min_decryption_version": 2, "min_encryption_version": 2}), 200)
    call(crypto, url(kr, "decrypt"), {"ciphertext": ct, "context": ctx}, 422)
    call(crypto, url(kr, "decrypt"), {"ciphertext": new_ct, "context": ctx}, 200)

    srv.stop()
    log = srv.stdout() + srv.stderr()
    requests_logged = [json.loads(ln) for ln in srv.stdout().splitlines()
                       if '"msg":"request"' in ln]
    assert sum(1 for x in requests_logged if x.get("status") == 200) >= ok, (
        "--log-level debug logs every request, successes included", ok, len(requests_logged))
    assert key["key"] not in log
    hits = [label for path, label in SECRETS.scan() if path in (srv.stdout_path,
                                                                srv.stderr_path)]
    assert not hits, f"secrets in the debug log: {sorted(set(hits))[:20]}"
