"""The OpenAI-compatible test server in a process of its own, for the benchmarks: answering
hundreds of requests takes CPU that must not be counted against the process under measure."""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType

import httpx

# Distinct images of each shape the server renders; later requests get one of them again.
IMAGE_VARIANTS = 16


class AIServerProcess:
    """`async with AIServerProcess(latency_ms=L) as server:` `server.base_url` is AI_BASE_URL;
    `await server.in_flight()` counts the requests it is answering. With `jitter` the latencies
    are lognormal, of mean L and 99th percentile 5 L."""

    def __init__(self, *, latency_ms: int, jitter: bool = False) -> None:
        self.latency_ms = latency_ms
        self.jitter = jitter
        self.base_url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._client = httpx.AsyncClient(timeout=5)

    async def __aenter__(self) -> AIServerProcess:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.servers.openai_compatible",
            "--latency-ms",
            str(self.latency_ms),
            *(["--latency-jitter"] if self.jitter else []),
            # The images a hosted model would draw are not this machine's work.
            "--image-variants",
            str(IMAGE_VARIANTS),
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout=60)
        if not line:
            raise SystemExit("the OpenAI-compatible server did not start")
        self.base_url = line.decode().strip()
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def in_flight(self) -> int:
        stats = await self._client.get(self.base_url.removesuffix("/v1") + "/stats")
        return int(stats.json()["in_flight"])

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.aclose()
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
