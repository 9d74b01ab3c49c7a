# SPDX-License-Identifier: Apache-2.0
"""Re-encrypt values made by Dify's local RSA provider into difyguard values, and back.

Dify's local provider stores base64 of either
  "HYBRID:" | RSA-OAEP (SHA-1) of a 16-byte AES key | EAX nonce (16) | EAX tag (16) | AES-128-EAX
  ciphertext
or, in rows from before the hybrid format, RSA-OAEP of the whole text. The tenant's private key
is a PEM Dify keeps in its storage at privkeys/<tenant_id>/private.pem.

  migrate_tokens(tenant_id, tokens) -> tokens   RSA values -> difyguard values; values that are
                                                already difyguard's are returned unchanged
  rollback_tokens(tenant_id, tokens, public_pem) -> tokens
                                                difyguard values -> HYBRID values under the
                                                tenant's RSA public key (for going back to
                                                KEY_PROVIDER_TYPE=local)
Both keep order, work in batches (one difyguard call per 1000 values) and raise ValueError for a
value they cannot read, naming its position, never its content. Runs inside Dify's api container
(pycryptodome is a Dify dependency; the tenant's key is read the way Dify reads it), or anywhere
with a private_key_loader.
"""
import base64
import binascii
import os

try:                                    # as Dify installs it
    from Crypto.Cipher import AES, PKCS1_OAEP
    from Crypto.PublicKey import RSA
except ImportError:                     # Debian's python3-pycryptodome
    from Cryptodome.Cipher import AES, PKCS1_OAEP
    from Cryptodome.PublicKey import RSA

HYBRID = b"HYBRID:"
NONCE = TAG = 16
AES_KEY = 16


def dify_private_key(tenant_id: str) -> bytes:
    """The tenant's private key PEM from Dify's storage (inside Dify's api container)."""
    try:
        from extensions.ext_storage import storage  # Dify's storage abstraction
    except ImportError:
        raise ValueError("Dify's storage is not importable: run inside the api container or "
                         "pass private_key_loader") from None
    try:
        return storage.load(f"privkeys/{tenant_id}/private.pem")
    except Exception:                   # noqa: BLE001 -- any storage error means: no key
        raise ValueError(f"private key of tenant {tenant_id} not found") from None


def _provider(provider):
    if provider is not None:
        return provider
    from difyguard_key_provider import DifyguardKeyProvider
    return DifyguardKeyProvider()


def _rsa_key(tenant_id, private_key_loader):
    try:
        pem = (private_key_loader or dify_private_key)(tenant_id)
    except ValueError:
        raise
    except Exception:                   # noqa: BLE001
        raise ValueError(f"private key of tenant {tenant_id} not found") from None
    if not pem:
        raise ValueError(f"private key of tenant {tenant_id} not found")
    try:
        return RSA.import_key(pem)
    except (ValueError, IndexError, TypeError):
        raise ValueError(f"private key of tenant {tenant_id} cannot be read") from None


def _rsa_decrypt(key, oaep, raw: bytes):
    """The text of a HYBRID or legacy value; None when raw is neither (e.g. difyguard's)."""
    k = key.size_in_bytes()
    try:
        if raw.startswith(HYBRID):
            body = raw[len(HYBRID):]
            if len(body) < k + NONCE + TAG:
                raise ValueError
            aes_key = oaep.decrypt(body[:k])
            if len(aes_key) != AES_KEY:
                raise ValueError
            nonce, tag, ct = body[k:k + NONCE], body[k + NONCE:k + NONCE + TAG], body[k + NONCE + TAG:]
            pt = AES.new(aes_key, AES.MODE_EAX, nonce=nonce).decrypt_and_verify(ct, tag)
        elif len(raw) == k:
            pt = oaep.decrypt(raw)      # OAEP's check tells a legacy value from anything else
        else:
            return None
        return pt.decode("utf-8")
    except (ValueError, TypeError, UnicodeDecodeError):
        if raw.startswith(HYBRID):
            raise ValueError("undecryptable") from None
        return None


def _decode(i, token):
    try:
        return base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError(f"value {i} is not base64") from None


def _looks_difyguard(raw):
    return len(raw) >= 21 and raw[0] in (1, 2, 3) and int.from_bytes(raw[1:5], "big") > 0


def _not_difyguard(p, tenant_id, pairs, batch):
    """The (position, bytes) pairs that do not decrypt under difyguard for this tenant."""
    bad = [(i, raw) for i, raw in pairs if not _looks_difyguard(raw)]
    maybe = [(i, raw) for i, raw in pairs if _looks_difyguard(raw)]
    for start in range(0, len(maybe), batch):
        chunk = maybe[start:start + batch]
        try:
            p.batch_decrypt(tenant_id, [raw for _, raw in chunk])
        except ValueError:
            for i, raw in chunk:        # one by one, to find which
                try:
                    p.decrypt(tenant_id, raw)
                except ValueError:
                    bad.append((i, raw))
    return sorted(bad, key=lambda x: x[0])


def migrate_tokens(tenant_id: str, tokens: list, *, provider=None, private_key_loader=None,
                   batch=1000) -> list:
    """RSA values of one tenant -> difyguard values (base64, as Dify stores them). Values that
    already decrypt under difyguard for this tenant are returned unchanged (the private key is
    then not even read)."""
    p = _provider(provider)
    out = list(tokens)
    raws = [(i, _decode(i, t)) for i, t in enumerate(tokens)]
    rsa = [(i, raw) for i, raw in raws if raw.startswith(HYBRID)]
    rsa += _not_difyguard(p, tenant_id, [(i, raw) for i, raw in raws
                                         if not raw.startswith(HYBRID)], batch)
    if not rsa:
        return out
    key = _rsa_key(tenant_id, private_key_loader)
    oaep = PKCS1_OAEP.new(key)
    todo, texts = [], []
    for i, raw in sorted(rsa, key=lambda x: x[0]):
        try:
            text = _rsa_decrypt(key, oaep, raw)
        except ValueError:
            text = None
        if text is None:
            raise ValueError(f"value {i} cannot be decrypted with the tenant's RSA key nor "
                             "by difyguard")
        todo.append(i)
        texts.append(text)
    for start in range(0, len(todo), batch):
        blobs = p.batch_encrypt(tenant_id, texts[start:start + batch])
        for i, blob in zip(todo[start:start + batch], blobs):
            out[i] = base64.b64encode(blob).decode()
    return out


def rollback_tokens(tenant_id: str, tokens: list, public_pem, *, provider=None,
                    batch=1000) -> list:
    """difyguard values of one tenant -> HYBRID values under its RSA public key (the PEM still in
    tenants.encrypt_public_key for tenants created before the switch). HYBRID values, and legacy
    ones (RSA-size values difyguard cannot decrypt), are returned unchanged."""
    pem = public_pem.encode() if isinstance(public_pem, str) else (public_pem or b"")
    if b"BEGIN" not in pem:
        raise ValueError(f"tenant {tenant_id} has no RSA public key: give it a key pair first")
    try:
        pub = RSA.import_key(pem)
    except (ValueError, IndexError, TypeError):
        raise ValueError(f"public key of tenant {tenant_id} cannot be read") from None
    p = _provider(provider)
    oaep = PKCS1_OAEP.new(pub)
    out = list(tokens)
    raws = [(i, _decode(i, t)) for i, t in enumerate(tokens)]
    others = [(i, raw) for i, raw in raws if not raw.startswith(HYBRID)]
    bad = {i for i, _ in _not_difyguard(p, tenant_id, others, batch)}
    for i, raw in others:
        if i in bad and len(raw) != pub.size_in_bytes():
            raise ValueError(f"value {i} is neither a difyguard value of this tenant nor an RSA "
                             "value")
    mine = [(i, raw) for i, raw in others if i not in bad]
    for start in range(0, len(mine), batch):
        chunk = mine[start:start + batch]
        texts = p.batch_decrypt(tenant_id, [raw for _, raw in chunk])
        for (i, _), text in zip(chunk, texts):
            aes_key = os.urandom(AES_KEY)
            cipher = AES.new(aes_key, AES.MODE_EAX)
            ct, tag = cipher.encrypt_and_digest(text.encode("utf-8"))
            out[i] = base64.b64encode(HYBRID + oaep.encrypt(aes_key) + cipher.nonce + tag
                                      + ct).decode()
    return out
