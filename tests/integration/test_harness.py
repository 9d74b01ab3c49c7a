# SPDX-License-Identifier: Apache-2.0
"""The harness itself: the log scan finds secrets in every form it promises to look for."""
import json

from conftest import SecretRegistry, b64, b64url


def test_secret_scan_finds_every_form(tmp_path):
    reg = SecretRegistry()
    data = b"pt-scan-\x00\xfe/+binary secret bytes 0123456789"
    reg.add_bytes(data, "plaintext")
    reg.add_text("pt-text-ключ-0123", "text")
    reg.add("dgk_" + "A" * 65, "key")
    reg.add("short", "too short to scan")
    log = tmp_path / "server.log"
    reg.add_log(str(log))
    forms = {
        "raw": data,
        "base64": b64(data).encode(),
        "base64 json-escaped": json.dumps({"v": b64(data)}).replace("/", "\\/").encode(),
        "base64url": b64url(data).encode(),
        "hex": data.hex().encode(),
        "text json-escaped": json.dumps({"v": "pt-text-ключ-0123"}).encode(),
        "key": b'{"auth": "Bearer dgk_' + b"A" * 65 + b'"}',
    }
    for name, content in forms.items():
        log.write_bytes(b'{"level":"info"} ' + content + b"\n")
        assert reg.scan(), f"scan missed the {name} form"
    log.write_bytes(b'{"level":"info","msg":"short"}\n')
    assert not reg.scan()
    big = bytes(range(256)) * 8
    reg.add_bytes(big, "big plaintext")
    log.write_bytes(b64(big[:48]).encode())
    assert reg.scan(), "a prefix of a long plaintext's base64 is found"
