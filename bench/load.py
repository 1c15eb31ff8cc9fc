"""A keep-alive HTTP load generator that costs the machine little, for the read benchmarks.

httpx spends about half a millisecond of CPU per request: at thousands of requests a second it
would take a core from the server under measure (this kind has two). Here each connection is an
asyncio protocol that writes a prepared GET and lets `httptools` (uvicorn's parser) find the end
of the answer, a few microseconds a request.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

WARM_UP_SECONDS = 1.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `get()` sends the request and waits for the whole answer."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[int] | None = None
        self._lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(self._parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("the server closed the connection")
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(self._lost)

    async def get(self, request: bytes) -> int:
        if self._lost is not None or self._transport is None:
            raise ConnectionResetError("connection lost")
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._answer

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass
class Figures:
    """What one path got: latencies in seconds of the answered requests, statuses counted."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    # What `on_measure_start` answered when the warm-up ended.
    measure_started_with: float | None = None
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1]


def _request(host: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def load(
    base_url: str,
    target: str,
    *,
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    on_measure_start: Callable[[], float] | None = None,
) -> Figures:
    """`concurrency` connections each sending GET `target` back to back for `seconds` (after a
    warm-up of their own); every answer counts, whatever its status. `on_measure_start` is
    called when the warm-up ends (to read a counter then)."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    request = _request(parts.netloc, target, headers)
    loop = asyncio.get_running_loop()
    connections = [
        (await loop.create_connection(_Connection, parts.hostname, parts.port))[1]
        for _ in range(concurrency)
    ]
    figures = Figures(seconds)
    began = time.perf_counter()
    measure_from = began + WARM_UP_SECONDS
    until = measure_from + seconds

    async def mark_start() -> None:
        await asyncio.sleep(measure_from - time.perf_counter())
        if on_measure_start is not None:
            figures.measure_started_with = on_measure_start()

    async def client(connection: _Connection) -> None:
        while (started := time.perf_counter()) < until:
            status = await connection.get(request)
            if started >= measure_from:
                figures.latencies.append(time.perf_counter() - started)
                figures.statuses[status] += 1

    try:
        await asyncio.gather(mark_start(), *(client(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    return figures
