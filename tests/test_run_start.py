"""How soon a run starts (issue 13, `bench.start_latency`): `run_now` answers after its
transaction, and a slice takes the run before its first item; every statement in either is a
round trip to PostgreSQL that the run's first AI call waits for. Counted, not timed."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import serve
from app.ai.base import Answer
from app.ai.local import LocalProvider
from app.ai.schemas import ClusteringOut, KeywordBrief
from app.config import Settings
from app.http_server import HttpServer
from app.runs.events import RunLog
from app.stages.context import WorkerDeps
from app.stages.runner import run_slice
from app.workers.queue import ArqQueue
from tests.engine import feed, start
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=Decimal(100000))


@contextmanager
def statements_on(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent through `engine` in the block, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


class TestRunNowStatements:
    async def test_the_first_run_of_a_site_takes_a_dozen_statements(
        self, client: httpx.AsyncClient, app: FastAPI, tenant: Tenant
    ) -> None:
        """Besides the site's look-up (and the caller's key, when not remembered): the active
        run, the config (inserted: the site's first run), the pending counts, the auto-approval
        setting, the prices, the history, the pending keywords and the clusters (the foresight),
        the balance, the run and its event. Each of the estimate's inputs is read once; the
        run is one insert, refused by the index when the site has an active run."""
        await feed(client, tenant, 5)

        with statements_on(app.state.engine) as sent:
            await start(client, tenant)

        run_now = [statement for statement, _ in sent if "FROM api_keys" not in statement]
        assert len(run_now) <= 13, "\n".join(run_now)


class FirstCallStops(LocalProvider):
    """The local provider, whose first call (stage 1's) stops the slice there."""

    def __init__(self) -> None:
        super().__init__(latency_ms=0)
        self.called = asyncio.Event()

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]:
        self.called.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")


class TestSliceStartStatements:
    async def test_a_slice_takes_the_run_in_four_statements_before_it_records_so(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        session_factory: SessionFactory,
        redis: Redis,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """Whether the slice is current (outside a transaction), then in one transaction: the
        fence raised with the run read back, the config, the prices; then the `slice_started`
        event."""
        await feed(client, tenant, 5)
        run_id = await start(client, tenant)
        provider = FirstCallStops()
        deps = WorkerDeps(
            session_factory=session_factory,
            redis=redis,
            provider=provider,
            log=RunLog(settings.log_path),
            settings=settings,
            queue=ArqQueue(redis),
        )

        with statements_on(engine) as sent:
            running = asyncio.create_task(run_slice(deps, run_id, 0))
            try:
                async with asyncio.timeout(30):
                    await provider.called.wait()
            finally:
                running.cancel()
                await asyncio.wait([running])

        recorded = next(
            n for n, (_, parameters) in enumerate(sent) if "slice_started" in str(parameters)
        )
        assert recorded <= 4, "\n".join(statement for statement, _ in sent[:recorded])


class TestAServingProcessStartsWarm:
    async def test_serve_prepares_the_clustering_and_the_routes_then_sets_all_aside(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The first `run_now` of `automation serve` neither imports the estimate's clustering,
        nor prepares the API's routes, nor meets a full garbage collection of every module's
        objects."""
        done: list[str] = []
        monkeypatch.setattr(serve, "prepare_clustering", lambda: done.append("clustering"))
        monkeypatch.setattr(gc, "freeze", lambda: done.append("freeze"))
        app = FastAPI()
        monkeypatch.setattr(app, "openapi", lambda: done.append("routes"))

        await serve.settle(app)

        assert done == ["clustering", "routes", "freeze"]

    async def test_the_api_alone_settles_beside_its_start_too(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`automation api` settles its app as `serve` does, while the server starts."""
        settled: list[FastAPI] = []
        served: list[FastAPI] = []

        async def settle(app: FastAPI) -> None:
            settled.append(app)

        async def run_server(server: HttpServer) -> None:
            served.append(server.app)
            await asyncio.sleep(0)  # the settling task runs meanwhile

        monkeypatch.setattr(serve, "settle", settle)
        monkeypatch.setattr(HttpServer, "serve", run_server)

        await serve.serve_api(settings)

        assert settled == served
        assert len(settled) == 1
