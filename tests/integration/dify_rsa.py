# SPDX-License-Identifier: Apache-2.0
"""Values in the format of Dify's local RSA provider, made by the tests (from the format as
documented: "HYBRID:" | RSA-OAEP(SHA-1) of a 16-byte AES key | EAX nonce 16 | tag 16 |
AES-128-EAX ciphertext; legacy values are RSA-OAEP of the whole text). Needs
pycryptodome (Debian's python3-pycryptodome names it Cryptodome)."""
import os

try:                                    # pycryptodome as pip installs it (Dify's image)
    from Crypto.Cipher import AES, PKCS1_OAEP
    from Crypto.PublicKey import RSA
except ImportError:                     # Debian's python3-pycryptodome
    from Cryptodome.Cipher import AES, PKCS1_OAEP
    from Cryptodome.PublicKey import RSA

PREFIX = b"HYBRID:"


def new_key(bits=2048):
    return RSA.generate(bits)


def hybrid_encrypt(public_key, text: str) -> bytes:
    aes_key = os.urandom(16)
    wrapped = PKCS1_OAEP.new(public_key).encrypt(aes_key)
    cipher = AES.new(aes_key, AES.MODE_EAX)
    ct, tag = cipher.encrypt_and_digest(text.encode("utf-8"))
    return PREFIX + wrapped + cipher.nonce + tag + ct


def legacy_encrypt(public_key, text: str) -> bytes:
    return PKCS1_OAEP.new(public_key).encrypt(text.encode("utf-8"))
