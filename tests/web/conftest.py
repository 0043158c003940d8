"""Page tests share the session's test client: start each with no cookies (a `?lang=`
switch sets one)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient


@pytest.fixture(autouse=True)
def fresh_cookies(client: AsyncTestClient[Litestar]) -> None:
    client.cookies.clear()
