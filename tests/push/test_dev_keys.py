"""`reckon dev` makes its Web Push key pair once and keeps it in the data directory."""

from __future__ import annotations

import stat
from pathlib import Path

from py_vapid import Vapid02

from app.cli.demo import dev_vapid_keys


def test_development_keys_are_made_once_private_to_the_user_and_sign(tmp_path: Path) -> None:
    first = dev_vapid_keys(tmp_path / "data")
    again = dev_vapid_keys(tmp_path / "data")
    assert first == again
    assert stat.S_IMODE((tmp_path / "data" / "vapid.json").stat().st_mode) == 0o600
    header = Vapid02.from_string(first.private_key).sign(
        {"aud": "https://push.example.net", "sub": "mailto:ops@reckon.test", "exp": 4102444800}
    )["Authorization"]
    assert Vapid02.verify(header)
    assert f"k={first.public_key}" in header
