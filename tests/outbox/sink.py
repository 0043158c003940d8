"""A tiny HTTP sink on 127.0.0.1 that records each request's Idempotency-Key, and the outbox
handler that posts to it (loaded by worker subprocesses through JOB_MODULES)."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from typing import Any

import httpx

from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import RetryableError
from app.outbox.models import OutboxEvent

SINK_URL_ENV = "RECKON_TEST_SINK_URL"
TOPIC = "sink.post"


class Sink:
    """Applies an effect once per key, as an idempotent provider would, and counts requests."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.effects: dict[str, dict[str, Any]] = {}
        self.first_seen: list[str] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/effects"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self._record(headers.get("idempotency-key", ""), body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _record(self, key: str, body: bytes) -> None:
        self.requests[key] += 1
        if key not in self.effects:
            self.effects[key] = json.loads(body)
            self.first_seen.append(key)


def register_handlers(dispatcher: Dispatcher) -> None:
    url = os.environ[SINK_URL_ENV]
    client = httpx.AsyncClient(timeout=5.0)

    async def post(ctx: HandlerContext, event: OutboxEvent) -> None:
        try:
            response = await client.post(
                url,
                json={"aggregate_id": str(event.aggregate_id), **event.payload},
                headers={"Idempotency-Key": ctx.idempotency_key(event)},
            )
        except httpx.HTTPError as error:
            raise RetryableError(str(error)) from error
        if response.status_code >= 500:
            raise RetryableError(f"sink answered {response.status_code}")

    dispatcher.register(TOPIC, post)
