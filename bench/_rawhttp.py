"""A lean keep-alive HTTP/1.1 load generator for the benchmarks whose client would otherwise
cost as much CPU as the server it measures (httpx spends 1-2 ms per request; the client shares
the same two cores as the API). Requests are built to bytes before the clock starts; each
connection sends one, reads the status line, the headers and a Content-Length body, and sends
the next. A connection that breaks is opened again and the request sent again (counted), as a
provider redelivers.

It speaks only what the benchmarks need: requests with a body or none, answers with
Content-Length.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

REDELIVERED = "connection broken, delivered again"


@dataclass
class Answer:
    status: int
    body: bytes


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.answers[key] = self.answers.get(key, 0) + 1


def post_bytes(base: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    return request_bytes("POST", base, path, body, headers)


def request_bytes(
    method: str, base: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    host = urlsplit(base).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    headers = headers or {}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> Answer:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        closing = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                closing = True
        body = await self.reader.readexactly(length) if length else b""
        if closing:
            await self.close()
        return Answer(status, body)


async def send(connection: Connection, request: bytes, tally: Tally, tries: int = 3) -> Answer:
    for attempt in range(tries):
        try:
            return await connection.exchange(request)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            await connection.close()
            tally.count(REDELIVERED)
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


async def closed_loop(
    bases: list[str],
    requests: Iterable[bytes],
    connections: int,
    classify: Callable[[Answer], str],
) -> tuple[float, Tally]:
    """`connections` keep-alive connections spread over `bases`, each sending the next request
    as soon as its answer is read: the maximum rate. Returns requests/s and the tally."""
    queue: Iterator[bytes] = iter(requests)
    tally = Tally()
    pool = [Connection(bases[i % len(bases)]) for i in range(connections)]
    sent = 0

    async def worker(connection: Connection) -> None:
        nonlocal sent
        for request in queue:
            started = time.perf_counter()
            answer = await send(connection, request, tally)
            tally.latencies.append(time.perf_counter() - started)
            tally.count(classify(answer))
            sent += 1

    for connection in pool:
        await connection.open()
    began = time.perf_counter()
    try:
        await asyncio.gather(*(worker(connection) for connection in pool))
    finally:
        elapsed = time.perf_counter() - began
        for connection in pool:
            await connection.close()
    return sent / elapsed, tally


class Pool:
    """Keep-alive connections spread over `bases`, opened as requests need them (an open loop
    sends more at once than a closed one) and reused once answered."""

    def __init__(self, bases: list[str]) -> None:
        self.bases = bases
        self.idle: list[Connection] = []
        self.opened = 0

    async def send(self, request: bytes, tally: Tally) -> Answer:
        if self.idle:
            connection = self.idle.pop()
        else:
            connection = Connection(self.bases[self.opened % len(self.bases)])
            self.opened += 1
        try:
            return await send(connection, request, tally)
        finally:
            self.idle.append(connection)

    async def close(self) -> None:
        idle, self.idle = self.idle, []
        for connection in idle:
            await connection.close()
