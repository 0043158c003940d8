"""Provider names have one list (app.payments.provider_names) and outbox topics one constant
each, in their domain: no module under app/ spells a list of providers or a topic again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.bookings import events
from app.bookings.payment_events import TOPIC_FETCH_FEE
from app.notifications.service import REMINDER_TOPIC
from app.payments import provider_names
from app.payments.types import TOPIC_CHECKOUT, TOPIC_REFUND
from app.payouts.service import TOPIC_REQUESTED
from app.reconciliation.service import TOPIC_FOUND

ROOT = Path(__file__).resolve().parents[1]
NAMES = frozenset(provider_names.PAYMENT_PROVIDERS)
# Each topic and the one module that spells it.
TOPICS = {
    **{
        value: "app/bookings/events.py"
        for name, value in vars(events).items()
        if name.startswith("BOOKING_")
    },
    TOPIC_CHECKOUT: "app/payments/types.py",
    TOPIC_REFUND: "app/payments/types.py",
    TOPIC_FETCH_FEE: "app/bookings/payment_events.py",
    TOPIC_REQUESTED: "app/payouts/service.py",
    TOPIC_FOUND: "app/reconciliation/service.py",
    REMINDER_TOPIC: "app/notifications/service.py",
}
# The web pages (app/web) are being reworked elsewhere this round and still spell their own
# lists; they move to app.payments.provider_names there, and then this exclusion goes.
NOT_YET_MOVED = "app/edge/web/"


def provider_lists(source: str) -> list[tuple[int, tuple[str, ...]]]:
    """Tuples, lists, sets, Literal[...] and dict keys naming two or more providers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        elements: list[ast.expr | None] = []
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = list(node.elts)
        elif isinstance(node, ast.Dict):
            elements = list(node.keys)
        names = {e.value for e in elements if isinstance(e, ast.Constant) and e.value in NAMES}
        if len(names) >= 2:
            found.append((node.lineno, tuple(sorted(names))))
    return found


def topic_literals(source: str) -> list[tuple[int, str]]:
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and node.value in TOPICS
    ]


def sources() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(ROOT)), path.read_text())
        for path in sorted((ROOT / "app").rglob("*.py"))
    ]


def test_only_provider_names_lists_the_providers() -> None:
    found = [
        (name, line, names)
        for name, source in sources()
        if name != "app/payments/provider_names.py"
        for line, names in provider_lists(source)
        if not name.startswith(NOT_YET_MOVED)
    ]
    assert found == []


def test_every_topic_is_spelled_once_in_its_domain() -> None:
    found = [
        (name, line, topic)
        for name, source in sources()
        for line, topic in topic_literals(source)
        if TOPICS[topic] != name
    ]
    assert found == []
    spelled = {topic for name, source in sources() for _, topic in topic_literals(source)}
    assert spelled == set(TOPICS)


@pytest.mark.parametrize(
    "source",
    [
        'PROVIDERS = ("stripe", "kashier")',
        'ONLINE = frozenset({"stripe", "kashier", "sandbox"})',
        'choices = ["cash", "sandbox"]',
        'provider: Literal["stripe", "kashier", "cash", "sandbox"]',
        'KEYS = {"stripe": 1, "kashier": 2}',
    ],
)
def test_the_scan_catches_a_second_list(source: str) -> None:
    assert provider_lists(source) != []


def test_the_scan_catches_a_topic_spelled_inline() -> None:
    assert topic_literals('await stage(session, t, "booking.refunded", "booking", b, {})') != []
    assert topic_literals('filename = "booking.ics"\nif provider == "stripe": pass') == []


def test_the_one_list() -> None:
    assert provider_names.PAYMENT_PROVIDERS == ("stripe", "kashier", "cash", "sandbox")
    assert provider_names.ROUTED_PROVIDERS == ("stripe", "kashier")
    assert {"stripe", "kashier", "sandbox"} == provider_names.ONLINE_PROVIDERS
    assert {"cash"} == provider_names.PAY_AT_VENUE
