"""What the pages need from the composition root (app/edge/asgi.py builds it from Settings), so
nothing under app/edge/web reads settings itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.edge.web.memo import FreeDayMemo
from app.presentation.links import ManageLinks

STATE_KEY = "web"


@dataclass(frozen=True, slots=True)
class DemoBusiness:
    name: str
    slug: str


@dataclass(frozen=True)
class WebConfig:
    environment: str
    public_base_url: str
    links: ManageLinks = field(repr=False)
    # How long a booking POST waits for the outbox to open a Stripe/Kashier checkout page
    # before showing the waiting page instead (the JSON route waits the same way).
    checkout_wait_seconds: float = 3.0
    demo_businesses: tuple[DemoBusiness, ...] = ()
    # The month calendar's free days, reused while the calendar rows they came from hold.
    free_days: FreeDayMemo = field(default_factory=FreeDayMemo, repr=False, compare=False)

    @property
    def development(self) -> bool:
        return self.environment != "production"

    @property
    def sandbox_base_url(self) -> str | None:
        """Where the sandbox provider's page lives; never offered in production."""
        return None if self.environment == "production" else self.public_base_url


def web_config(state: Any) -> WebConfig:
    config = state.get(STATE_KEY)
    if not isinstance(config, WebConfig):
        raise RuntimeError("app.state.web is not set: register the web pages in app/edge/asgi.py")
    return config
