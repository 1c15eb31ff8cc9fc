"""The service as deployed, for the read and start benchmarks: `automation serve` (API, worker
and cron in one process) on a database the bench makes and drops, with one account to call it.

Without URLs, PostgreSQL and Redis are embedded servers in a temporary folder.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from app.db import create_engine, create_session_factory, unit_of_work
from app.tenancy.service import create_account
from bench.backends import Backends
from bench.pipeline import check_redis_free, fresh_database
from tests.console import AUTOMATION, environment_without_settings, free_port

START_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Service:
    base_url: str
    database_url: str
    api_key: str
    account_id: int
    pid: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=self.auth, timeout=60)


async def wait_until_answering(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient() as probe, asyncio.timeout(START_TIMEOUT_SECONDS):
        while True:
            if process.returncode is not None:
                raise SystemExit(f"{url}: the process ended with {process.returncode}")
            try:
                if (await probe.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # uvicorn gives no readiness signal


@asynccontextmanager
async def subprocess_serving(
    args: list[str], env: dict[str, str], ready_url: str, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
    try:
        await wait_until_answering(ready_url, process)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


@asynccontextmanager
async def serve(
    backends: Backends, data_dir: Path, settings: dict[str, str]
) -> AsyncIterator[Service]:
    """`automation serve` on a fresh database with one account of ample credits; `settings`
    are extra environment variables (the AI provider's)."""
    await check_redis_free(backends.redis_url)
    async with fresh_database(backends.database_url) as url:
        engine = create_engine(url, pool_size=2)
        async with unit_of_work(create_session_factory(engine)) as session:
            created = await create_account(
                session,
                name="Bench",
                email="bench@example.com",
                password="bench-password",
                credits=Decimal(10_000_000),
            )
        await engine.dispose()
        port = free_port()
        env = environment_without_settings(
            DATABASE_URL=url,
            REDIS_URL=backends.redis_url,
            DATA_DIR=str(data_dir),
            HOST="127.0.0.1",
            PORT=str(port),
            **settings,
        )
        base_url = f"http://127.0.0.1:{port}"
        async with subprocess_serving(
            [AUTOMATION, "serve"], env, f"{base_url}/healthz", data_dir / "serve.log"
        ) as process:
            yield Service(base_url, url, created.api_key, created.account.id, process.pid)


@dataclass(frozen=True)
class Floor:
    base_url: str
    pid: int


@asynccontextmanager
async def floor_app(database_url: str, log: Path) -> AsyncIterator[Floor]:
    """`bench.floor_app` in a uvicorn process of its own."""
    port = free_port()
    env = environment_without_settings(FLOOR_DATABASE_URL=database_url)
    args = [sys.executable, "-m", "uvicorn", "--factory", "bench.floor_app:create_app"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    base_url = f"http://127.0.0.1:{port}"
    async with subprocess_serving(args, env, f"{base_url}/floor?prefix=none", log) as process:
        yield Floor(base_url, process.pid)


async def call(
    client: httpx.AsyncClient, method: str, path: str, params: dict[str, Any], body: Any = None
) -> Any:
    response = await client.request(method, path, params=params, json=body)
    if response.status_code >= 300:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    return response.json() if response.content else None


async def create_site(client: httpx.AsyncClient, name: str) -> int:
    site = await call(client, "POST", "/api/v1/sites/", {}, {"name": name, "url": ""})
    site_id: int = site["id"]
    return site_id
