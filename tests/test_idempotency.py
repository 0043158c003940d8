"""The Idempotency-Key mechanism every POST reuses."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from litestar import Litestar, Request, Response, Router, post
from litestar.serialization import encode_json
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.db import set_tenant
from app.edge.asgi import create_app
from app.edge.http import IDEMPOTENCY_PROBE, idempotent, manager_only, principal
from app.edge.idempotency import request_fingerprint
from app.settings import Settings
from app.tenancy.service import create_user
from tests.checkout.support import get_booking, local_slot, open_shop
from tests.factories import sign_up

Client = AsyncTestClient[Litestar]


def _user(email: str) -> dict[str, str]:
    return {"email": email, "password": "long enough pw", "role": "staff"}


async def _user_count(owner_engine: AsyncEngine, tenant_id: uuid.UUID) -> int:
    async with owner_engine.connect() as connection:
        return int(
            (
                await connection.execute(
                    text("SELECT count(*) FROM users WHERE tenant_id = :t"), {"t": tenant_id}
                )
            ).scalar_one()
        )


async def test_same_key_and_body_replays_the_first_response(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    headers = {**business.headers, "Idempotency-Key": "create-user-1"}
    first = await client.post("/api/v1/users", json=_user("a@example.com"), headers=headers)
    second = await client.post("/api/v1/users", json=_user("a@example.com"), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await _user_count(owner_engine, business.tenant_id) == 2  # owner + one staff


async def test_same_key_with_different_body_is_422_reused(client: Client) -> None:
    business = await sign_up(client)
    headers = {**business.headers, "Idempotency-Key": "create-user-2"}
    await client.post("/api/v1/users", json=_user("a@example.com"), headers=headers)
    reused = await client.post("/api/v1/users", json=_user("b@example.com"), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["type"] == "idempotency_key_reused"


async def test_domain_errors_are_replayed_too(client: Client) -> None:
    business = await sign_up(client)
    await client.post("/api/v1/users", json=_user("dup@example.com"), headers=business.headers)
    headers = {**business.headers, "Idempotency-Key": "dup-user"}
    first = await client.post("/api/v1/users", json=_user("dup@example.com"), headers=headers)
    second = await client.post("/api/v1/users", json=_user("dup@example.com"), headers=headers)
    assert first.status_code == second.status_code == 409
    assert second.headers.get("idempotent-replayed") == "true"


async def test_keys_are_scoped_per_tenant(client: Client, owner_engine: AsyncEngine) -> None:
    one, two = await sign_up(client), await sign_up(client)
    for business in (one, two):
        response = await client.post(
            "/api/v1/users",
            json=_user("same@example.com"),
            headers={**business.headers, "Idempotency-Key": "shared-key"},
        )
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers


async def test_concurrent_duplicates_do_not_both_execute(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    headers = {**business.headers, "Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *[
            client.post("/api/v1/users", json=_user("race@example.com"), headers=headers)
            for _ in range(8)
        ]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"] == "idempotency_key_in_progress"
    assert await _user_count(owner_engine, business.tenant_id) == 2


async def test_overlong_key_is_rejected(client: Client) -> None:
    business = await sign_up(client)
    response = await client.post(
        "/api/v1/users",
        json=_user("a@example.com"),
        headers={**business.headers, "Idempotency-Key": "k" * 300},
    )
    assert response.status_code == 422


class Crash(Exception):
    """Stands for the process dying at a probe point."""


@dataclass
class Probe:
    """The test-only probe idempotent() calls at its crash windows; records the holder's
    backend pid and can crash at one point (once) or hold the work open until released."""

    owner_engine: AsyncEngine
    crash_at: str | None = None
    kill_backend_at: str | None = None
    pids: list[int] = field(default_factory=list)

    async def __call__(self, point: str, connection: AsyncConnection) -> None:
        if point == "locked":
            self.pids.append(
                int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            )
        if point == self.kill_backend_at:
            self.kill_backend_at = None
            await terminate(self.owner_engine, self.pids[-1])
        if point == self.crash_at:
            self.crash_at = None
            raise Crash(point)


async def terminate(owner_engine: AsyncEngine, pid: int) -> None:
    async with owner_engine.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def probed_app(settings: Settings, probe: Probe, *routes: Any) -> Litestar:
    app = create_app(settings, extra_routers=[Router("/", route_handlers=list(routes))])
    app.state[IDEMPOTENCY_PROBE] = probe
    return app


async def _count(owner_engine: AsyncEngine, sql: str, **params: Any) -> int:
    async with owner_engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def test_crash_after_commit_replays_the_booking_response_unchanged(
    settings: Settings, owner_engine: AsyncEngine
) -> None:
    """The booking and its response commit together; the process 'dies' before answering.
    The retry gets the very response the first attempt would have sent (the booking's id and
    checkout URL), not a 409, and the booking exists once."""
    probe = Probe(owner_engine)
    async with AsyncTestClient(app=probed_app(settings, probe)) as client:
        shop = await open_shop(client)
        body = booking_body(shop)
        headers = {**shop.business.headers, "Idempotency-Key": "book-crash-after-commit"}
        probe.crash_at = "committed"
        first = await client.post("/api/v1/bookings", json=body, headers=headers)
        assert first.status_code == 500
        retry = await client.post("/api/v1/bookings", json=body, headers=headers)
        assert retry.status_code == 201, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        booking = retry.json()
        assert booking["payment"]["checkout_url"]
        stored = await get_booking(client, shop, booking["id"])
        assert {k: booking[k] for k in ("id", "status", "start", "end", "total")} == {
            k: stored[k] for k in ("id", "status", "start", "end", "total")
        }
        again = await client.post("/api/v1/bookings", json=body, headers=headers)
        assert again.content == retry.content
    bookings = "SELECT count(*) FROM bookings WHERE tenant_id = :t"
    assert await _count(owner_engine, bookings, t=shop.business.tenant_id) == 1


async def test_crash_after_commit_replays_exactly_what_was_stored_with_the_work(
    settings: Settings, owner_engine: AsyncEngine
) -> None:
    sent: list[bytes] = []

    @post("/test/users", guards=[manager_only])
    async def create(
        request: Request[Any, Any, Any], session: AsyncSession, data: dict[str, str]
    ) -> Response[bytes]:
        actor = principal(request)

        async def run() -> tuple[int, Any]:
            user = await create_user(
                session, actor, email=data["email"], password="long enough pw", role="staff"
            )
            content = {"id": str(user.user_id), "at": str(uuid.uuid4())}
            sent.append(encode_json(content))
            return 201, content

        return await idempotent(request, actor.tenant_id, run)

    probe = Probe(owner_engine, crash_at="committed")
    async with AsyncTestClient(app=probed_app(settings, probe, create)) as client:
        business = await sign_up(client)
        probe.crash_at = "committed"
        headers = {**business.headers, "Idempotency-Key": "crash-1"}
        first = await client.post(
            "/test/users", json={"email": "once@example.com"}, headers=headers
        )
        assert first.status_code == 500
        retry = await client.post(
            "/test/users", json={"email": "once@example.com"}, headers=headers
        )
        assert (retry.status_code, retry.content) == (201, sent[0])
    assert len(sent) == 1  # the operation ran once
    assert await _user_count(owner_engine, business.tenant_id) == 2  # owner + one staff


async def test_holder_dying_before_commit_leaves_nothing_and_retry_runs_at_once(
    settings: Settings, owner_engine: AsyncEngine
) -> None:
    """The work and its response are written, then the holder's connection is killed before
    COMMIT: none of it survives, and the retry (no lease to wait out) runs it once."""
    probe = Probe(owner_engine)
    async with AsyncTestClient(app=probed_app(settings, probe)) as client:
        business = await sign_up(client)
        headers = {**business.headers, "Idempotency-Key": "die-before-commit"}
        probe.kill_backend_at = "worked"
        first = await client.post("/api/v1/users", json=_user("a@example.com"), headers=headers)
        assert first.status_code == 503  # the connection was lost: retry, not a 500
        assert await _user_count(owner_engine, business.tenant_id) == 1
        retry = await client.post("/api/v1/users", json=_user("a@example.com"), headers=headers)
        assert retry.status_code == 201, retry.text
        assert "idempotent-replayed" not in retry.headers
    assert await _user_count(owner_engine, business.tenant_id) == 2


@asynccontextmanager
async def served(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app on uvicorn: the test client runs one request at a time, these tests need a
    request in flight while others arrive."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield http
    finally:
        server.should_exit = True
        await serving


async def _until(flag: threading.Event, seconds: float = 10) -> None:
    """The app may run on another thread's loop: coordinate with thread-safe flags."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not flag.is_set():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _held_route(
    started: threading.Event, release: threading.Event, runs: list[int], *, backdate: bool = False
) -> Any:
    @post("/test/held", guards=[manager_only])
    async def held(
        request: Request[Any, Any, Any], session: AsyncSession, data: dict[str, str]
    ) -> Response[bytes]:
        actor = principal(request)

        async def run() -> tuple[int, Any]:
            runs.append(1)
            user = await create_user(
                session, actor, email=data["email"], password="long enough pw", role="staff"
            )
            if backdate:
                async with session.begin():
                    await set_tenant(session, actor.tenant_id)
                    await session.execute(
                        text(
                            "UPDATE idempotency_keys SET locked_at = now() - interval '1 hour' "
                            "WHERE key = :key"
                        ),
                        {"key": request.headers["idempotency-key"]},
                    )
            started.set()
            await _until(release, 30)
            return 201, {"id": str(user.user_id)}

        return await idempotent(request, actor.tenant_id, run)

    return held


async def test_holder_killed_mid_work_is_taken_over_immediately(
    settings: Settings, owner_engine: AsyncEngine
) -> None:
    started, release, runs = threading.Event(), threading.Event(), []
    probe = Probe(owner_engine)
    app = probed_app(settings, probe, _held_route(started, release, runs))
    async with served(app) as client:
        business = await sign_up(client)
        headers = {**business.headers, "Idempotency-Key": "killed-holder"}
        body = {"email": "held@example.com"}
        holder = asyncio.create_task(client.post("/test/held", json=body, headers=headers))
        await _until(started)
        busy = await client.post("/test/held", json=body, headers=headers)
        assert busy.status_code == 409
        assert busy.json()["type"] == "idempotency_key_in_progress"
        await terminate(owner_engine, probe.pids[0])
        release.set()
        assert (await holder).status_code == 503  # its connection was killed: retry, not a 500
        started.clear()
        taken_over = await client.post("/test/held", json=body, headers=headers)
        assert taken_over.status_code == 201, taken_over.text
    assert len(runs) == 2  # the dead holder's run, and the one that committed
    assert await _user_count(owner_engine, business.tenant_id) == 2


async def test_request_longer_than_the_old_lease_never_runs_twice(
    settings: Settings, owner_engine: AsyncEngine
) -> None:
    """The holder's claim looks as old as a lease ever allowed (its own transaction sets
    locked_at an hour back) while it still works: a duplicate is still 'in progress',
    because the holder's row lock, not a clock, says so."""
    started, release, runs = threading.Event(), threading.Event(), []
    app = probed_app(
        settings, Probe(owner_engine), _held_route(started, release, runs, backdate=True)
    )
    async with served(app) as client:
        business = await sign_up(client)
        headers = {**business.headers, "Idempotency-Key": "long-one"}
        body = {"email": "long@example.com"}
        holder = asyncio.create_task(client.post("/test/held", json=body, headers=headers))
        await _until(started)
        for _ in range(3):
            duplicate = await client.post("/test/held", json=body, headers=headers)
            assert duplicate.status_code == 409, duplicate.text
            assert duplicate.json()["type"] == "idempotency_key_in_progress"
        release.set()
        first = await holder
        assert first.status_code == 201
        replay = await client.post("/test/held", json=body, headers=headers)
        assert (replay.status_code, replay.content) == (201, first.content)
    assert len(runs) == 1
    assert await _user_count(owner_engine, business.tenant_id) == 2


async def test_a_key_left_executed_by_an_older_release_is_409_outcome_unknown(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    body = _user("legacy@example.com")
    headers = {**business.headers, "Idempotency-Key": "legacy"}
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO idempotency_keys (tenant_id, id, key, request_hash, status) "
                "VALUES (:t, :id, 'legacy', :hash, 'executed')"
            ),
            {
                "t": business.tenant_id,
                "id": uuid.uuid4(),
                "hash": request_fingerprint("POST", "/api/v1/users", encode_json(body)),
            },
        )
    response = await client.post("/api/v1/users", json=body, headers=headers)
    assert response.status_code == 409
    assert response.json()["type"] == "idempotency_outcome_unknown"
    assert await _user_count(owner_engine, business.tenant_id) == 1


def booking_body(shop: Any) -> dict[str, Any]:
    return {
        "service_id": shop.service_id,
        "branch_id": shop.branch_id,
        "resource_id": shop.resource_id,
        "start": local_slot(3, 10).isoformat(),
        "customer": {"name": "Layla Hassan", "email": "layla@example.com"},
        "payment": {"provider": "sandbox"},
    }
