"""Schemathesis against the live OpenAPI schema of the app, in process: every operation, as
the owner of a signed-up business, through its examples, coverage (boundary values, missing
and malformed parameters, unexpected methods such as OPTIONS) and fuzzing phases. Whatever
it sends, the answer is never a 5xx. And OPTIONS on every route answers Allow or 405.

Kept bounded (a few derandomized examples per operation) so it runs in well under a minute.
"""

from __future__ import annotations

import dataclasses
import re
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from schemathesis.checks import not_a_server_error
from schemathesis.generation.feedback import FeedbackSources

# The builder schemathesis' own pytest plugin uses for one operation's test (examples,
# coverage, fuzzing). Its lazy `from_fixture` loader fails under pytest 9 (`_nodeid`), and
# the schema can only be loaded once the app has its test settings, so it is called here.
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.python import asgi

from app.edge.asgi import create_app
from app.settings import Settings
from tests.factories import PASSWORD, sign_up

Client = AsyncTestClient[Litestar]

MAX_EXAMPLES = 5
# An endless text/event-stream: a fuzzer cannot judge a response that never ends. Its errors
# are tested in tests/events; its OPTIONS is swept below like every route's.
NOT_FUZZED = {("GET", "/api/v1/events/stream")}

CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    "suppress-health-check": ["all"],
}


@pytest.fixture
def fuzzed_app(settings: Settings) -> Iterator[Litestar]:
    """The app on schemathesis' own event loop, with rate-limit counters of its own."""
    app = create_app(dataclasses.replace(settings, redis_namespace=f"fuzz-{uuid.uuid4().hex[:8]}"))
    try:
        yield app
    finally:
        asgi.shutdown_lifespans()


def owner_token(app: Litestar) -> str:
    with asgi.get_client(app) as client:
        response = client.post(
            "/api/v1/signup",
            json={
                "business_name": "Fuzzed business",
                "slug": f"fuzz-{uuid.uuid4().hex[:10]}",
                "email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com",
                "password": PASSWORD,
                "currency": "EGP",
                "timezone": "Africa/Cairo",
            },
        )
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def fuzz_one(schema: schemathesis.BaseSchema, operation: Any, calls: list[str]) -> str | None:
    """Run one operation's phases; the failure report, or None."""

    def check(case: schemathesis.Case) -> None:
        calls.append(case.method)
        case.call_and_validate(checks=[not_a_server_error])

    test = build_operation_test(
        config=schema.config,
        operation=operation,
        test_func=check,
        given_kwargs={},
        feedback=FeedbackSources(),
    )
    try:
        test()
    except (Exception, BaseExceptionGroup) as failure:  # schemathesis' FailureGroup is a BEG
        return "".join(traceback.format_exception_only(failure))
    return None


def test_fuzzing_every_operation_finds_no_server_error(
    fuzzed_app: Litestar, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = schemathesis.Config.from_dict(CONFIG)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", fuzzed_app, config=config)
    schema.config.update(headers={"Authorization": f"Bearer {owner_token(fuzzed_app)}"})

    fuzzed: list[str] = []
    calls: list[str] = []
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in NOT_FUZZED:
            continue
        fuzzed.append(operation.label)
        failure = fuzz_one(schema, operation, calls)
        if failure is not None:
            failures[operation.label] = failure

    methods = sorted(set(calls))
    record_property("operations_fuzzed", len(fuzzed))
    record_property("requests_sent", len(calls))
    with capsys.disabled():
        print(
            f"\nschemathesis: {len(fuzzed)} operations fuzzed, {len(calls)} requests, "
            f"methods {', '.join(methods)}"
        )
    assert not failures, "\n".join(f"== {label}\n{text}" for label, text in failures.items())
    assert len(fuzzed) >= 60  # the whole API, not a schema that quietly lost its routes
    assert "OPTIONS" in methods  # unexpected methods were tried, not only the documented ones


def _concrete(path: str) -> str:
    """A request path for a route template: any value for each parameter will do."""
    return re.sub(
        r"\{(\w+):(\w+)\}",
        lambda m: {"uuid": str(uuid.uuid4()), "int": "1"}.get(m.group(2), "x"),
        path,
    )


async def test_options_on_every_route_answers_allow_or_405(app: Litestar, client: Client) -> None:
    business = await sign_up(client)
    paths = sorted({r.path for r in app.routes if isinstance(r, HTTPRoute)})
    assert len(paths) > 50
    for path in paths:
        for headers in ({}, business.headers):
            response = await client.options(_concrete(path), headers=headers)
            assert response.status_code in (200, 204, 405), (path, response.text)
            if response.status_code != 405:
                assert "OPTIONS" in response.headers["allow"], path


@pytest.mark.parametrize(
    "path", ["/api/v1/signup", "/api/v1/auth/token", "/api/v1/bookings", "/public/any/bookings"]
)
async def test_json_body_nested_past_the_parser_limit_is_400_problem(
    client: Client, path: str
) -> None:
    business = await sign_up(client)
    depth = 100_000  # far past Python's recursion limit
    body = b'{"email":' + b"[" * depth + b"]" * depth + b"}"

    response = await client.post(
        path, content=body, headers={**business.headers, "content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "bad_request"
