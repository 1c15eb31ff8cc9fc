"""Helpers for engine tests: keywords to feed, a fast config, a worker that runs until the queue
is empty, and reads of a run and its ledger."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models.automation import AutomationRun
from app.models.billing import CreditTransaction, TransactionKind
from app.runs.states import ACTIVE
from app.workers.worker import build_worker, close_worker
from tests.factories import Tenant

TOPICS = (
    "running shoes",
    "sourdough bread",
    "espresso machine",
    "indoor plants",
    "electric bikes",
    "budget travel",
    "home office chair",
    "dog training",
    "vegan protein",
    "solar panels",
)
MODIFIERS = (
    "best",
    "cheap",
    "for beginners",
    "review",
    "how to choose",
    "vs alternatives",
    "2026 guide",
    "common mistakes",
    "near me",
    "for small spaces",
    "care tips",
    "buying guide",
    "pros and cons",
    "on a budget",
    "for experts",
    "checklist",
    "faq",
    "at home",
    "top rated",
    "ideas",
)

# Delays off, so that a test run takes as long as its work.
FAST = {"within_stage_delay": 0, "between_stage_delay": 0}


def keywords(count: int) -> list[dict[str, Any]]:
    pairs = itertools.islice(itertools.product(MODIFIERS, TOPICS), count)
    return [
        {"keyword": f"{m} {t}" if i % 2 else f"{t} {m}", "volume": 100 + i}
        for i, (m, t) in enumerate(pairs)
    ]


async def feed(client: httpx.AsyncClient, tenant: Tenant, count: int) -> None:
    response = await client.post(
        f"/api/v1/planner/keywords/?site_id={tenant.site_id}",
        json={"keywords": keywords(count)},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == count


async def configure(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = await client.put(
        f"/api/v1/automation/update_config/?site_id={tenant.site_id}",
        json={**FAST, **fields},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    config: dict[str, Any] = response.json()
    return config


async def start(client: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await client.post(
        f"/api/v1/automation/run_now/?site_id={tenant.site_id}", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    run_id: str = response.json()["run_id"]
    return run_id


_fed = itertools.count(1)


async def start_fed(client: httpx.AsyncClient, tenant: Tenant) -> str:
    """`run_now` on a site given one new keyword first: a site with nothing pending in any
    enabled stage is refused (400 `nothing_to_do`)."""
    response = await client.post(
        f"/api/v1/planner/keywords/?site_id={tenant.site_id}",
        json={"keywords": [{"keyword": f"waiting keyword {next(_fed)}"}]},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    return await start(client, tenant)


async def work(settings: Settings) -> None:
    """Run a worker until no job is left (each slice queues the next before it ends)."""
    worker = build_worker(settings, burst=True, poll_delay=0, handle_signals=False)
    try:
        await worker.async_run()
    finally:
        await close_worker(worker)


async def load_run(session_factory: async_sessionmaker[AsyncSession], run_id: str) -> AutomationRun:
    async with session_factory() as session:
        run = await session.scalar(select(AutomationRun).where(AutomationRun.run_id == run_id))
    assert run is not None
    return run


async def charged(session_factory: async_sessionmaker[AsyncSession], run_pk: int) -> Decimal:
    """What the ledger charged the run: the settle rows, as a positive amount."""
    async with session_factory() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(CreditTransaction.amount), 0)).where(
                CreditTransaction.run_pk == run_pk,
                CreditTransaction.kind == TransactionKind.SETTLE,
            )
        )
    return -Decimal(total or 0)


def ledger_rows(kind: TransactionKind, run_pk: int) -> Any:
    """How many ledger rows of this kind the run has: a count to execute."""
    return select(func.count()).where(
        CreditTransaction.run_pk == run_pk, CreditTransaction.kind == kind
    )


async def until_holds(
    session_factory: async_sessionmaker[AsyncSession], run_pk: int, count: int
) -> None:
    """Until the run's items have made `count` credit holds."""
    holds = ledger_rows(TransactionKind.RESERVE, run_pk)
    async with asyncio.timeout(30):
        while True:
            async with session_factory() as session:
                if await session.scalar(holds) == count:
                    return
            await asyncio.sleep(0.02)


async def work_until_over(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    run_id: str,
    within: float = 90,
) -> AutomationRun:
    """Run a worker until the run is over. A burst worker would not do after a worker was
    killed: arq keeps the dead worker's job queued until its in-progress key expires."""
    worker = build_worker(settings, poll_delay=0.01, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    try:
        async with asyncio.timeout(within):
            while True:
                run = await load_run(session_factory, run_id)
                if run.status not in ACTIVE:
                    break
                await asyncio.sleep(0.05)
            # The job that ended the run still records its end in arq: closing the worker now
            # would cancel that mid-write.
            jobs = [task for task in worker.tasks.values() if not task.done()]
            if jobs:
                await asyncio.wait(jobs)
    finally:
        # As `automation serve` stops it: close (its jobs are over or queued again), then wait.
        await close_worker(worker)
        await asyncio.wait([task])
    return run
