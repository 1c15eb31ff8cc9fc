"""Many sites at once under the provider-wide cap: does each site get its turn?

    .venv/bin/python -m bench.pipeline --sites K [--keywords N] [--big-site M] [--cap C]
                                       [--latency-ms L] [--provider local|openai]

K sites of N keywords each (and, with --big-site, one more site of M keywords that starts
first) run at the same time in one worker with AI_MAX_CONCURRENCY = C. Each run has
`ai_concurrency` 4 and batch sizes 4, so together they want far more calls in flight than the
cap allows; the gate serves the sites round-robin. With `--provider openai` the calls go through
the `openai` provider to an OpenAI-compatible server on 127.0.0.1 that answers after L ms.

Printed: every site's completion time (from the first run's start), the max/min ratio over the
K equal sites (1.0 is perfectly fair), and a timeline of the calls in flight (the gate's permits
in Redis, and with `openai` the server's own count) against the cap.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from app.ai.gate import ProviderGate
from app.config import Settings
from app.db import create_engine, create_session_factory, unit_of_work
from app.main import create_app
from app.models.automation import AutomationRun
from app.tenancy.service import create_account, create_site
from app.workers.worker import build_worker, close_worker
from bench.ai_server import AIServerProcess
from bench.pipeline import (
    check_redis_free,
    fresh_database,
    make_keywords,
    provider_setup,
    stage_calls,
)

CONFIG = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    "ai_concurrency": 4,
    **{f"stage_{n}_batch_size": 4 for n in (2, 4, 5, 6)},
}
SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class SiteRun:
    name: str
    keywords: int
    run_id: str


@dataclass(frozen=True)
class Finished:
    site: SiteRun
    started: datetime
    completed: datetime
    calls: int
    status: str


@dataclass
class Timeline:
    """(seconds since start, permits held, calls the server has in flight or -1)."""

    samples: list[tuple[float, int, int]]


async def run_sites(server_url: str, redis_url: str, args: Any) -> None:
    await check_redis_free(redis_url)
    data_dir = Path(tempfile.mkdtemp(prefix="ca-bench-sites-"))
    try:
        async with (
            fresh_database(server_url) as url,
            provider_setup(args.provider, args.latency_ms) as provider,
        ):
            settings = Settings(
                database_url=url,
                redis_url=redis_url,
                data_dir=data_dir,
                log_level="WARNING",
                ai_max_concurrency=args.cap,
                worker_max_jobs=args.sites + 2,
                **provider.settings,
            )
            runs = await start_sites(settings, args)
            finished, timeline = await work(settings, runs, provider.server)
            report(finished, timeline, args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def start_sites(settings: Settings, args: Any) -> list[SiteRun]:
    """One account, its sites fed and configured; the big site's run starts first."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1)
    sizes = ([("big", args.big_site)] if args.big_site else []) + [
        (f"small-{n + 1}", args.keywords) for n in range(args.sites)
    ]
    async with unit_of_work(create_session_factory(engine)) as session:
        created = await create_account(
            session,
            name="Bench",
            email="bench@example.com",
            password="bench-password",
            credits=Decimal(10_000_000),
        )
        site_ids = [
            (await create_site(session, created.account.id, name=name)).id for name, _ in sizes
        ]
    await engine.dispose()
    app = create_app(settings)
    runs = []
    async with app.router.lifespan_context(app), _client(app, created.api_key) as client:
        for site_id, (_, count) in zip(site_ids, sizes, strict=True):
            params = {"site_id": site_id}
            await _call(client, "POST", "/api/v1/planner/keywords/", params, _batch(count))
            await _call(client, "PUT", "/api/v1/automation/update_config/", params, CONFIG)
        for site_id, (name, count) in zip(site_ids, sizes, strict=True):
            started = await _call(
                client, "POST", "/api/v1/automation/run_now/", {"site_id": site_id}
            )
            runs.append(SiteRun(name, count, started["run_id"]))
    return runs


async def work(
    settings: Settings, runs: list[SiteRun], server: AIServerProcess | None
) -> tuple[list[Finished], Timeline]:
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    gate = ProviderGate(redis, settings.ai_provider, settings.ai_max_concurrency)
    timeline = Timeline([])
    worker = build_worker(settings, burst=True, handle_signals=False)
    began = time.monotonic()
    sampler = asyncio.create_task(_sample(timeline, began, gate, server))
    try:
        await worker.async_run()
    finally:
        sampler.cancel()
        await close_worker(worker)
        await redis.aclose()
    return await read_runs(settings, runs), timeline


async def _sample(
    timeline: Timeline, began: float, gate: ProviderGate, server: AIServerProcess | None
) -> None:
    while True:
        held = await gate.in_flight()
        serving = await server.in_flight() if server is not None else -1
        timeline.samples.append((time.monotonic() - began, held, serving))
        await asyncio.sleep(SAMPLE_SECONDS)


async def read_runs(settings: Settings, runs: list[SiteRun]) -> list[Finished]:
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1)
    by_id = {r.run_id: r for r in runs}
    async with unit_of_work(create_session_factory(engine)) as session:
        rows = list(
            await session.scalars(select(AutomationRun).where(AutomationRun.run_id.in_(by_id)))
        )
    await engine.dispose()
    finished = []
    for row in rows:
        if row.completed_at is None:
            raise SystemExit(f"run {row.run_id} did not end: {row.status}")
        finished.append(
            Finished(
                by_id[row.run_id],
                row.started_at,
                row.completed_at,
                sum(stage_calls(row).values()),
                f"{row.status}/{row.stopped_reason}",
            )
        )
    return sorted(finished, key=lambda f: f.completed)


def report(finished: list[Finished], timeline: Timeline, args: Any) -> None:
    origin = min(f.started for f in finished)
    print(
        f"\n== {len(finished)} sites at once, provider {args.provider} (L = {args.latency_ms} ms), "
        f"AI_MAX_CONCURRENCY {args.cap}, each run ai_concurrency 4"
    )
    print("site        keywords  AI calls  completed after s  status")
    for f in finished:
        after = (f.completed - origin).total_seconds()
        print(f"{f.site.name:<10}  {f.site.keywords:8}  {f.calls:8}  {after:17.1f}  {f.status}")
    small = [(f.completed - origin).total_seconds() for f in finished if f.site.name != "big"]
    print(
        f"equal sites: completion min {min(small):.1f} s, median {statistics.median(small):.1f} s, "
        f"max {max(small):.1f} s, max/min {max(small) / min(small):.2f}"
    )
    big = [f for f in finished if f.site.name == "big"]
    if big:
        after = (big[0].completed - origin).total_seconds()
        print(f"the big site ({big[0].site.keywords} keywords) completed after {after:.1f} s")
    _print_timeline(timeline, args.cap)


def _print_timeline(timeline: Timeline, cap: int) -> None:
    samples = timeline.samples
    if not samples:
        return
    held = [h for _, h, _ in samples]
    serving = [s for _, _, s in samples if s >= 0]
    busy = [h for h in held if h > 0]
    at_cap = sum(1 for h in busy if h >= cap) / max(len(busy), 1)
    print(
        f"calls in flight (gate permits, sampled every {SAMPLE_SECONDS} s): max {max(held)} of "
        f"cap {cap}; at the cap in {100 * at_cap:.0f}% of the busy samples"
        + (f"; the server saw at most {max(serving)} at once" if serving else "")
    )
    step = max(1, len(samples) // 24)
    print("   t s  permits  server  " + "bar (# = one call in flight, | = the cap)")
    for t, h, s in samples[::step]:
        bar = ("#" * h).ljust(cap) + "|"
        shown = f"{s:6}" if s >= 0 else "     -"
        print(f"{t:6.1f}  {h:7}  {shown}  {bar}")


def _batch(count: int) -> dict[str, Any]:
    return {"keywords": make_keywords(count)}


@asynccontextmanager
async def _client(app: Any, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers=headers, timeout=300
    ) as client:
        yield client


async def _call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    params: dict[str, Any],
    body: dict[str, Any] | None = None,
) -> Any:
    response = await client.request(method, path, params=params, json=body)
    if response.status_code != 200:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()
