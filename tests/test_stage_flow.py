"""Items flow through the run's `ai_concurrency` slots (SPEC §7, issue 13): with no delay within
stages, a slow AI call holds one slot and the next items take the others, whatever their batch;
with a delay, batches are kept. A pause mid-window lets the items in flight finish and starts
nothing more. On a real worker, against an OpenAI-compatible server on 127.0.0.1 whose answers
take longer for some items than for others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models.automation import RunStatus
from app.models.billing import TransactionKind
from app.models.writer import Image
from app.workers.worker import build_worker, close_worker
from tests.builders import create_content
from tests.engine import configure, ledger_rows, load_run, start, until_holds, work
from tests.factories import Tenant, create_tenant
from tests.servers.openai_compatible import OpenAICompatibleServer, Reply

SessionFactory = async_sessionmaker[AsyncSession]
# The slow answer: long enough that, on a busy machine, the other calls all fit in it.
SLOW_SECONDS = 4.0
DRAFTS = 6


@pytest.fixture
async def server() -> AsyncIterator[OpenAICompatibleServer]:
    async with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture
def openai_settings(settings: Settings, server: OpenAICompatibleServer) -> Settings:
    return settings.model_copy(
        update={
            "ai_provider": "openai",
            "ai_base_url": server.base_url,
            "ai_api_key": SecretStr("test-key"),
            "ai_max_retries": 0,
            "ai_timeout_seconds": 30,
        }
    )


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=Decimal(100000))


async def drafts(session_factory: SessionFactory, tenant: Tenant) -> None:
    """Articles waiting for their image prompts (stage 5: one call each)."""
    for _ in range(DRAFTS):
        await create_content(session_factory, tenant, status="draft")


async def prompts_stage(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> None:
    """Stage 5 alone with two slots: its calls are the only ones the server sees."""
    await configure(client, tenant, ai_concurrency=2, stage_6_enabled=False, **fields)


@asynccontextmanager
async def worker_running(settings: Settings) -> AsyncIterator[None]:
    worker = build_worker(settings, poll_delay=0.01, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        await close_worker(worker)
        await asyncio.wait([task])


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def until_saved_as_partial(session_factory: SessionFactory, run_id: str) -> None:
    """The slice saved stage 5 as stopped part-way: its worker is done with the run."""
    async with asyncio.timeout(30):
        while True:
            run = await load_run(session_factory, run_id)
            if (run.stage_5_result or {}).get("partial"):
                return
            await asyncio.sleep(0.02)


class TestASlowCallHoldsOneSlotOnly:
    async def test_with_no_delay_the_other_items_pass_the_slow_one_whatever_their_batch(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        openai_settings: Settings,
        server: OpenAICompatibleServer,
        tenant: Tenant,
    ) -> None:
        """Batches of 2 in 2 slots; the first call takes seconds, the others none. Behind a
        batch barrier the third call would wait for the first; in the window, the five others
        go through the second slot while the first is out, and never more than two at once."""
        await drafts(session_factory, tenant)
        await prompts_stage(client, tenant, stage_5_batch_size=2)
        server.script(Reply(delay=SLOW_SECONDS))
        run_id = await start(client, tenant)

        await work(openai_settings)

        run = await load_run(session_factory, run_id)
        assert run.status == RunStatus.COMPLETED, run.error_message
        assert run.stage_5_result is not None
        assert run.stage_5_result["content_processed"] == DRAFTS
        assert run.stage_5_result["batches_run"] == DRAFTS // 2
        slow, *others = server.requests
        assert len(others) == DRAFTS - 1
        assert all(r.arrived < slow.arrived + SLOW_SECONDS for r in others)
        assert server.max_in_flight == 2
        # While the slow call was out the second slot was busy again and again: calls in flight
        # went from 2 to 1 and back once per other item.
        during = [n for t, n in server.in_flight_log if t < slow.arrived + SLOW_SECONDS]
        assert during.count(2) == DRAFTS - 1

    async def test_with_a_delay_batches_are_kept(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        openai_settings: Settings,
        server: OpenAICompatibleServer,
        tenant: Tenant,
    ) -> None:
        """`within_stage_delay` set: a batch ends with its slowest call, the delay passes, and
        only then do the next batch's calls go out."""
        await drafts(session_factory, tenant)
        await prompts_stage(client, tenant, stage_5_batch_size=2, within_stage_delay=1)
        server.script(Reply(delay=1.0))
        run_id = await start(client, tenant)

        await work(openai_settings)

        run = await load_run(session_factory, run_id)
        assert run.status == RunStatus.COMPLETED, run.error_message
        first, second, third, *_ = server.requests
        assert second.arrived < first.arrived + 1.0
        assert third.arrived >= first.arrived + 1.0 + 1.0
        assert server.max_in_flight == 2


class TestAPauseMidWindow:
    async def test_the_items_in_flight_finish_and_nothing_else_starts(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        openai_settings: Settings,
        server: OpenAICompatibleServer,
        tenant: Tenant,
    ) -> None:
        """Every call takes a second; the pause comes while two are out, and the item admitted
        ahead of them has held its credits. Both calls are written and charged; no other call
        goes out, no other hold is taken, the stage is saved as partial and the run is paused
        (the third hold stays with it). Resumed, the run does the rest, reusing that hold, and
        holds and charges each item once."""
        await drafts(session_factory, tenant)
        await prompts_stage(client, tenant, stage_5_batch_size=10)
        server.always = Reply(delay=1.0)
        run_id = await start(client, tenant)

        async with worker_running(openai_settings):
            await until(lambda: server.in_flight == 2)
            await until_holds(session_factory, (await load_run(session_factory, run_id)).id, 3)
            response = await client.post(
                "/api/v1/automation/pause/", params={"run_id": run_id}, headers=tenant.headers
            )
            assert response.status_code == 200, response.text
            await until_saved_as_partial(session_factory, run_id)
            await asyncio.sleep(0.5)  # a call started after the pause would have arrived
            run = await load_run(session_factory, run_id)

        assert run.status == RunStatus.PAUSED
        assert run.stage_5_result is not None
        assert run.stage_5_result["content_processed"] == 2
        assert len(server.requests) == 2
        async with session_factory() as session:
            images = await session.scalar(
                select(func.count()).where(Image.site_id == tenant.site_id)
            )
            holds = await session.scalar(ledger_rows(TransactionKind.RESERVE, run.id))
            settles = await session.scalar(ledger_rows(TransactionKind.SETTLE, run.id))
        assert images == 2 * (1 + 2)  # a featured and two in-article prompts each
        assert (holds, settles) == (3, 2)

        server.always = None
        response = await client.post(
            "/api/v1/automation/resume/", params={"run_id": run_id}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        await work(openai_settings)
        done = await load_run(session_factory, run_id)
        assert done.status == RunStatus.COMPLETED, done.error_message
        assert done.stage_5_result is not None
        assert done.stage_5_result["content_processed"] == DRAFTS
        assert len(server.requests) == DRAFTS
        async with session_factory() as session:
            holds = await session.scalar(ledger_rows(TransactionKind.RESERVE, done.id))
            settles = await session.scalar(ledger_rows(TransactionKind.SETTLE, done.id))
        assert (holds, settles) == (DRAFTS, DRAFTS)
