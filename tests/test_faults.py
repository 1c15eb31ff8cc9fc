"""The API through PostgreSQL and Redis restarts: a clear 503 while one is down, nothing lost,
and back to normal once it is up, without restarting the API.

These tests stop and start servers of their own (an embedded PostgreSQL, a redis-server
process), never the shared test servers.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.embedded import EmbeddedServices
from app.main import create_app
from app.migrate import upgrade
from app.tenancy import throttle
from app.tenancy.key_cache import KeyCache
from app.tenancy.usage import USAGE_KEY
from tests.factories import Tenant, create_tenant
from tests.servers.redis_server import RedisServer


@asynccontextmanager
async def api_client(
    settings: Settings, key_cache: KeyCache | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    if key_cache is not None:
        app.state.key_cache = key_cache
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ca-fault-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def own_postgres(folder: Path) -> AsyncIterator[tuple[EmbeddedServices, str]]:
    embedded = EmbeddedServices(folder / "pg", database="postgres")
    url = embedded.start_postgres()
    await asyncio.to_thread(upgrade, url)
    yield embedded, url
    embedded.stop()


@pytest.fixture
async def own_redis(folder: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(folder, persistent=False)
    await server.start()
    yield server
    await server.stop()


async def _tenant_on(database_url: str) -> Tenant:
    engine = create_engine(database_url, pool_size=2)
    try:
        return await create_tenant(create_session_factory(engine))
    finally:
        await engine.dispose()


class TestPostgresRestart:
    async def test_requests_get_503_while_it_is_down_and_succeed_after_with_the_data_kept(
        self, settings: Settings, own_postgres: tuple[EmbeddedServices, str]
    ) -> None:
        embedded, url = own_postgres
        tenant = await _tenant_on(url)
        async with api_client(settings.model_copy(update={"database_url": url})) as client:
            assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200

            embedded.stop()
            down = await client.get("/api/v1/me", headers=tenant.headers)
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "unavailable"
            assert down.headers["retry-after"] == "5"
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["error"]["details"]["redis"] == "ok"
            assert "database" in ready.json()["error"]["message"]

            embedded.start_postgres()
            back = await client.get("/api/v1/me", headers=tenant.headers)
            assert back.status_code == 200
            assert back.json()["account"]["id"] == tenant.account_id
            assert (await client.get("/readyz")).status_code == 200


class TestRedisRestart:
    async def test_api_keeps_answering_while_redis_is_down_and_notes_key_use_again_after(
        self,
        settings: Settings,
        own_redis: RedisServer,
        database_url: str,
    ) -> None:
        tenant = await _tenant_on(database_url)
        # Every use is due to be noted (a process notes a key's use every 10 s by default).
        every_use = KeyCache(note_every_seconds=0)
        on_own_redis = settings.model_copy(update={"redis_url": own_redis.url})
        async with api_client(on_own_redis, every_use) as client:
            assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200

            await own_redis.stop()
            during = await client.get("/api/v1/me", headers=tenant.headers)
            assert during.status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert "redis" in ready.json()["error"]["message"]
            assert ready.json()["error"]["details"]["database"] == "ok"

            await own_redis.start()
            assert (await client.get("/readyz")).status_code == 200
            after = await client.get("/api/v1/me", headers=tenant.headers)
            assert after.status_code == 200
            probe = Redis.from_url(own_redis.url)
            try:
                assert await probe.hlen(USAGE_KEY) == 1
            finally:
                await probe.aclose()

    async def test_failed_logins_count_and_block_through_a_redis_outage_and_restart(
        self,
        settings: Settings,
        own_redis: RedisServer,
        database_url: str,
    ) -> None:
        tenant = await _tenant_on(database_url)
        wrong = {"email": tenant.email, "password": "a wrong guess"}
        right = {"email": tenant.email, "password": tenant.password}
        before = throttle.EMAIL_MAX_FAILURES // 2
        async with api_client(settings.model_copy(update={"redis_url": own_redis.url})) as client:
            for _ in range(before):
                assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401

            await own_redis.stop()
            for _ in range(throttle.EMAIL_MAX_FAILURES - before):
                assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
            assert (await client.post("/api/v1/auth/login", json=right)).status_code == 429

            await own_redis.start()
            assert (await client.post("/api/v1/auth/login", json=right)).status_code == 429
