"""Encryption at rest for provider secrets (OAuth refresh tokens, API keys).

AES-256-GCM with a key derived by HKDF-SHA256 from the application secret passed in (never
read from settings here). Tokens look like `v1.<key id>.<base64url(nonce|ciphertext)>`; the
key id lets a rotated secret (`previous=`) still decrypt old rows. `associated_data` binds a
ciphertext to its row (e.g. f"{tenant_id}:{resource_id}:gcal") so a value copied into another
tenant's row fails to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"
_INFO = b"reckon/integrations/secret-box/v1"
_NONCE_BYTES = 12


class DecryptionFailed(Exception):
    """The token is malformed, was encrypted with an unknown key, or was tampered with."""


def _derive(secret: str | bytes) -> tuple[str, AESGCM]:
    material = secret.encode() if isinstance(secret, str) else secret
    if len(material) < 16:
        raise ValueError("the encryption secret must be at least 16 bytes")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material)
    key_id = hashlib.sha256(key).hexdigest()[:8]
    return key_id, AESGCM(key)


class SecretBox:
    def __init__(self, secret: str | bytes, *, previous: Sequence[str | bytes] = ()) -> None:
        self._key_id, self._current = _derive(secret)
        self._keys = dict(_derive(s) for s in previous)
        self._keys[self._key_id] = self._current

    def encrypt(self, plaintext: str, *, associated_data: str = "") -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext.encode(), associated_data.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self._key_id}.{blob}"

    def decrypt(self, token: str, *, associated_data: str = "") -> str:
        version, _, rest = token.partition(".")
        key_id, _, blob = rest.partition(".")
        if version != _VERSION or not blob:
            raise DecryptionFailed("not a secret-box token")
        aead = self._keys.get(key_id)
        if aead is None:
            raise DecryptionFailed("encrypted with an unknown key")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated_data.encode())
        except (InvalidTag, ValueError):
            raise DecryptionFailed("ciphertext or associated data does not authenticate") from None
        return plain.decode()

    def needs_rotation(self, token: str) -> bool:
        """True when `token` was sealed with a previous key and should be re-encrypted."""
        return token.split(".")[1:2] != [self._key_id]
