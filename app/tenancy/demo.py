"""The demo businesses: seeded by `reckon dev` (app/cli/demo.py) and linked from the start page
in development."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoTenant:
    name: str
    slug: str
    currency: str
    timezone: str


DEMO_TENANTS = [
    DemoTenant("Nile Hair & Beauty", "nile-salon", "EGP", "Africa/Cairo"),
    DemoTenant("Pine Ridge Cabins", "pine-cabins", "USD", "America/Denver"),
]
