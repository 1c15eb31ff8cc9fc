"""A TCP proxy on 127.0.0.1 in front of a real Redis (TCP or unix socket), which a test can cut:
the connections through it drop and new ones are refused, as when Redis restarts or the network
between a worker and Redis fails. Nothing about Redis is imitated; its bytes pass through."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit


@dataclass
class CuttableProxy:
    target: str  # the Redis URL the proxy forwards to
    port: int = 0
    cut_off: bool = False
    # Connections refused while cut off, and connections passed through: what a test can watch.
    refused: int = 0
    passed: int = 0
    _pipes: set[asyncio.StreamWriter] = field(default_factory=set)

    def url(self) -> str:
        """A Redis URL through the proxy, for the target's database."""
        parts = urlsplit(self.target)
        if parts.scheme == "unix":
            db = dict(parse_qsl(parts.query)).get("db", "0")
        else:
            db = parts.path.lstrip("/") or "0"
        return f"redis://127.0.0.1:{self.port}/{db}"

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._pipes):
            writer.close()

    def restore(self) -> None:
        self.cut_off = False

    async def _connect_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self.target)
        if parts.scheme == "unix":
            return await asyncio.open_unix_connection(parts.path)
        return await asyncio.open_connection(parts.hostname, parts.port or 6379)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            self.refused += 1
            writer.close()
            return
        self.passed += 1
        upstream_reader, upstream_writer = await self._connect_target()
        self._pipes.update((writer, upstream_writer))
        try:
            await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))
        finally:
            for end in (writer, upstream_writer):
                self._pipes.discard(end)
                end.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    sink.close()


@asynccontextmanager
async def cuttable_proxy(target: str) -> AsyncIterator[CuttableProxy]:
    proxy = CuttableProxy(target)
    server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        proxy.cut()
        server.close()
        await server.wait_closed()
