"""What the domain needs from an encryption box, so services never import app.integrations.

app.integrations.crypto.SecretBox satisfies this; the composition roots build it from the
application secret and pass it in.
"""

from __future__ import annotations

from typing import Protocol


class Sealer(Protocol):
    def encrypt(self, plaintext: str, *, associated_data: str = "") -> str: ...

    def decrypt(self, token: str, *, associated_data: str = "") -> str: ...
