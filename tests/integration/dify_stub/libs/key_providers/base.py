# SPDX-License-Identifier: Apache-2.0
"""Stand-in for Dify's libs.key_providers.base (the documented interface, written here)."""
import abc
from typing import Any


class BaseKeyProvider(abc.ABC):
    @abc.abstractmethod
    def generate_key_pair(self, tenant_id: str) -> str:
        """A reference Dify stores in tenants.encrypt_public_key."""

    @abc.abstractmethod
    def encrypt(self, tenant_id: str, text: str) -> bytes:
        """Raw ciphertext bytes; Dify stores their base64."""

    @abc.abstractmethod
    def get_decrypt_decoding(self, tenant_id: str) -> Any:
        """A context reused across decryptions of one tenant."""

    @abc.abstractmethod
    def decrypt_with_decoding(self, encrypted_text: bytes, decoding: Any) -> str:
        """The text, or ValueError."""

    def decrypt(self, tenant_id: str, encrypted_text: bytes) -> str:
        return self.decrypt_with_decoding(encrypted_text, self.get_decrypt_decoding(tenant_id))
