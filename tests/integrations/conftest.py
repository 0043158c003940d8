"""Fixtures for provider clients: a real httpx.AsyncClient (respx intercepts its transport)
and Stripe's published fixtures for realistic response bodies."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

# A copy of Stripe's published fixtures (openapi/fixtures3.json, MIT; LICENSE beside it).
STRIPE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/stripe/fixtures3.json"


@cache
def _stripe_resources() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads(STRIPE_FIXTURES.read_text())["resources"]
    return resources


def stripe_fixture(name: str, **overrides: Any) -> dict[str, Any]:
    """A deep copy of Stripe's published fixture for `name`, with top-level overrides."""
    body: dict[str, Any] = copy.deepcopy(_stripe_resources()[name])
    body.update(overrides)
    return body


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client
