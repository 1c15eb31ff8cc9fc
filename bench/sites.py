"""Many sites at once under the provider-wide cap: does each site get its turn?

    .venv/bin/python -m bench.pipeline --sites K [--keywords N] [--big-site M] [--cap C]
                                       [--latency-ms L] [--provider local|openai]
                                       [--worker-processes W] [--account-per-site]

K sites of N keywords each (and, with --big-site, one more site of M keywords that starts
first) run at the same time with AI_MAX_CONCURRENCY = C. Each run has `ai_concurrency` 4 and
batch sizes 4, so together they want far more calls in flight than the cap allows; the gate
serves the sites round-robin. With `--provider openai` the calls go through the `openai`
provider to an OpenAI-compatible server on 127.0.0.1 that answers after L ms.

The sites belong to one account (an agency's: every hold and settle of every run takes that
account's row), or with `--account-per-site` each to an account of its own.

With `--worker-processes W` the service runs as deployed: one `automation api` and W
`automation worker` processes (the console script, each with WORKER_MAX_JOBS enough for its
share of the runs), the sites fed and started through the API over HTTP. Without it, one
worker runs inside this process.

Printed: every site's completion time (from the first run's start), the max/min ratio over the
K equal sites (1.0 is perfectly fair), the calls in flight against the cap while every site
still had work (mean and share of samples at the cap), a timeline of the calls in flight (the
gate's permits in Redis, and with `openai` the server's own count), and with worker processes
each one's resident memory (peak, from /proc), and the CPU each part of the deployment spent per
AI call, with the calls in flight the machine's CPUs and the workers' event loops pay for at that
cost and the CPU a call that 95 % of the cap needs (`bench/cpu.py`).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select

from app.ai.gate import ProviderGate
from app.config import Settings
from app.db import create_engine, create_session_factory, unit_of_work
from app.main import create_app
from app.models.automation import AutomationRun, RunStatus
from app.tenancy.service import create_account, create_site
from app.workers.worker import build_worker, close_worker
from bench.ai_server import AIServerProcess
from bench.cpu import CpuMeter, CpuUse
from bench.cpu import report as report_cpu
from bench.pipeline import (
    check_redis_free,
    fresh_database,
    make_keywords,
    provider_setup,
    stage_calls,
)
from tests.blackbox.deployment import READY_SECONDS, Service, pid_of
from tests.console import bearer, environment_without_settings, free_port

CONFIG = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    "ai_concurrency": 4,
    **{f"stage_{n}_batch_size": 4 for n in (2, 4, 5, 6)},
}
SAMPLE_SECONDS = 0.25
WATCH_SECONDS = 0.5


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
    """(seconds since start, permits held, calls the server has in flight or -1, each worker
    process's resident memory in KiB)."""

    samples: list[tuple[float, int, int, list[int]]]


async def run_sites(server_url: str, redis_url: str, args: Any) -> None:
    await check_redis_free(redis_url)
    data_dir = Path(tempfile.mkdtemp(prefix="ca-bench-sites-"))
    try:
        async with (
            fresh_database(server_url) as url,
            provider_setup(args.provider, args.latency_ms, args.latency_jitter) as provider,
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
            cpu = None
            if args.worker_processes:
                finished, timeline, memory, cpu = await run_deployed(
                    settings, args, provider.server
                )
            else:
                finished, timeline = await run_in_process(settings, args, provider.server)
                memory = {}
            report(finished, timeline, memory, args)
            if cpu is not None:
                calls = sum(f.calls for f in finished)
                report_cpu(cpu, calls, args.latency_ms, args.cap, of="the cap", worker="workers")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def run_in_process(
    settings: Settings, args: Any, server: AIServerProcess | None
) -> tuple[list[Finished], Timeline]:
    """The API in this process (ASGI), then one worker here until the queue is empty."""
    sites = await make_sites(settings, args)
    app = create_app(settings)
    async with app.router.lifespan_context(app), _asgi_client(app) as client:
        runs = await start_sites(client, sites, args)
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    gate = ProviderGate(redis, settings.ai_provider, settings.ai_max_concurrency)
    timeline = Timeline([])
    worker = build_worker(settings, burst=True, handle_signals=False)
    sampler = asyncio.create_task(_sample(timeline, time.monotonic(), gate, server, [], None))
    try:
        await worker.async_run()
    finally:
        sampler.cancel()
        await close_worker(worker)
        await redis.aclose()
    return await read_runs(settings, runs), timeline


async def run_deployed(
    settings: Settings, args: Any, server: AIServerProcess | None
) -> tuple[list[Finished], Timeline, dict[str, int], CpuUse]:
    """`automation api` and W `automation worker` processes; the runs started over HTTP, then
    watched until every one has ended. Returns each worker's peak resident memory in KiB, and
    the CPU each part spent from the sites' feeding to the last run's end."""
    assert settings.redis_url is not None
    assert settings.data_dir is not None
    folder = Path(settings.data_dir)
    env = _environment(settings, args)
    api = Service("api", "api", env, folder)
    workers = [
        Service(f"worker-{n + 1}", "worker", env, folder) for n in range(args.worker_processes)
    ]
    sites = await make_sites(settings, args)
    redis = Redis.from_url(settings.redis_url)
    gate = ProviderGate(redis, settings.ai_provider, settings.ai_max_concurrency)
    timeline = Timeline([])
    try:
        for service in (api, *workers):
            await service.start()
        await _until_ready(api, workers, env["PORT"])
        meter = CpuMeter.of(
            settings.database_url,
            redis,
            {"workers": [pid_of(w) for w in workers], "API": [pid_of(api)]},
            None if server is None else server.pid,
        )
        await meter.start()
        async with _http_client(f"http://127.0.0.1:{env['PORT']}") as client:
            runs = await start_sites(client, sites, args)
        pids = [pid_of(w) for w in workers]
        began = time.monotonic()
        sampler = asyncio.create_task(_sample(timeline, began, gate, server, pids, meter))
        try:
            await _until_over(settings, runs, [api, *workers])
        finally:
            sampler.cancel()
        cpu = await meter.stop()
        memory = {w.name: _peak_rss_kib(pid_of(w)) for w in workers}
    finally:
        for service in (api, *workers):
            if service.running:
                await service.stop()
        await redis.aclose()
    return await read_runs(settings, runs), timeline, memory, cpu


def _environment(settings: Settings, args: Any) -> dict[str, str]:
    """The processes' settings: this bench's database, Redis, provider and cap; each worker
    takes its share of the runs at once (a run holds one job while it is driven)."""
    assert settings.database_url is not None
    assert settings.redis_url is not None
    provider = {
        "AI_PROVIDER": settings.ai_provider,
        "AI_BASE_URL": settings.ai_base_url or "",
        "AI_API_KEY": settings.ai_api_key.get_secret_value(),
        "LOCAL_AI_LATENCY_MS": str(settings.local_ai_latency_ms),
    }
    share = -(-(args.sites + (1 if args.big_site else 0)) // args.worker_processes)
    return environment_without_settings(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        PORT=str(free_port()),
        DATA_DIR=str(settings.data_dir),
        LOG_JSON="false",
        AI_MAX_CONCURRENCY=str(settings.ai_max_concurrency),
        WORKER_MAX_JOBS=str(share + 2),
        **{name: value for name, value in provider.items() if value},
    )


async def _until_ready(api: Service, workers: list[Service], port: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        async with asyncio.timeout(READY_SECONDS):
            while True:
                if not api.running:
                    raise SystemExit(f"automation api exited:\n{api.log()}")
                with suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            for worker in workers:
                while "Starting worker for" not in worker.log():
                    if not worker.running:
                        raise SystemExit(f"{worker.name} exited:\n{worker.log()}")
                    await asyncio.sleep(0.1)


async def _until_over(settings: Settings, runs: list[SiteRun], services: list[Service]) -> None:
    """Until every run has ended (a process that exits meanwhile ends the bench)."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=2)
    ids = [r.run_id for r in runs]
    try:
        while True:
            for service in services:
                if not service.running:
                    raise SystemExit(f"{service.name} exited:\n{service.log()[-4000:]}")
            async with engine.connect() as conn:
                active = await conn.scalar(
                    select(func.count())
                    .select_from(AutomationRun)
                    .where(
                        AutomationRun.run_id.in_(ids),
                        AutomationRun.status.in_([RunStatus.RUNNING, RunStatus.PAUSED]),
                    )
                )
            if not active:
                return
            await asyncio.sleep(WATCH_SECONDS)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class BenchSite:
    site_id: int
    api_key: str  # of the site's account


async def make_sites(settings: Settings, args: Any) -> list[BenchSite]:
    """The sites (the big one first): of one account, or with `--account-per-site` each of its
    own."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=2)
    sites = []
    async with unit_of_work(create_session_factory(engine)) as session:
        if args.account_per_site:
            for name, _ in _sizes(args):
                created = await create_account(
                    session,
                    name=f"Bench {name}",
                    email=f"bench-{name}@example.com",
                    password="bench-password",
                    credits=Decimal(10_000_000),
                    site_name=name,
                )
                assert created.site is not None
                sites.append(BenchSite(created.site.id, created.api_key))
        else:
            created = await create_account(
                session,
                name="Bench",
                email="bench@example.com",
                password="bench-password",
                credits=Decimal(10_000_000),
            )
            for name, _ in _sizes(args):
                site = await create_site(session, created.account.id, name=name)
                sites.append(BenchSite(site.id, created.api_key))
    await engine.dispose()
    return sites


def _sizes(args: Any) -> list[tuple[str, int]]:
    return ([("big", args.big_site)] if args.big_site else []) + [
        (f"small-{n + 1}", args.keywords) for n in range(args.sites)
    ]


async def start_sites(
    client: httpx.AsyncClient, sites: list[BenchSite], args: Any
) -> list[SiteRun]:
    """Feed and configure every site, then start the runs, the big site's first."""
    sizes = _sizes(args)
    for site, (_, count) in zip(sites, sizes, strict=True):
        call = _caller(client, site)
        await call("POST", "/api/v1/planner/keywords/", _batch(count))
        await call("PUT", "/api/v1/automation/update_config/", CONFIG)
    runs = []
    for site, (name, count) in zip(sites, sizes, strict=True):
        started = await _caller(client, site)("POST", "/api/v1/automation/run_now/")
        runs.append(SiteRun(name, count, started["run_id"]))
    return runs


async def _sample(
    timeline: Timeline,
    began: float,
    gate: ProviderGate,
    server: AIServerProcess | None,
    pids: list[int],
    meter: CpuMeter | None,
) -> None:
    while True:
        if meter is not None:
            meter.sample()
        held = await gate.in_flight()
        serving = await server.in_flight() if server is not None else -1
        rss = [_rss_kib(pid) for pid in pids]
        timeline.samples.append((time.monotonic() - began, held, serving, rss))
        await asyncio.sleep(SAMPLE_SECONDS)


def _status_kib(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status (VmRSS now, VmHWM the peak), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def _peak_rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmHWM")


async def read_runs(settings: Settings, runs: list[SiteRun]) -> list[Finished]:
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=2)
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


def report(finished: list[Finished], timeline: Timeline, memory: dict[str, int], args: Any) -> None:
    origin = min(f.started for f in finished)
    where = (
        f"one automation api and {args.worker_processes} automation worker processes"
        if args.worker_processes
        else "one worker in this process"
    )
    print(
        f"\n== {len(finished)} sites at once, provider {args.provider} (L = {args.latency_ms} ms), "
        f"AI_MAX_CONCURRENCY {args.cap}, each run ai_concurrency 4; {where}; "
        f"{'an account per site' if args.account_per_site else 'one account'}"
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
    _print_saturation(timeline, args.cap, min(small))
    _print_timeline(timeline, args.cap)
    for name, kib in memory.items():
        print(f"{name}: peak RSS {kib / 1024:.0f} MiB")


def _print_saturation(timeline: Timeline, cap: int, first_done: float) -> None:
    """The calls in flight while every site still had work: from the first call to the first
    site's completion (the samples' clock starts at most a moment after the runs'). A permit
    covers the item's bookkeeping around its call too; the server counts the calls themselves."""
    samples = [(h, s) for t, h, s, _ in timeline.samples if t <= first_done]
    start = next((i for i, (h, _) in enumerate(samples) if h > 0), len(samples))
    window = samples[start:]
    if not window:
        return
    held = [h for h, _ in window]
    mean = statistics.fmean(held)
    at_cap = sum(1 for h in held if h >= cap) / len(held)
    print(
        f"while every site had work ({len(window)} samples): gate permits held mean "
        f"{mean:.1f} of cap {cap} ({100 * mean / cap:.0f}%), at the cap in "
        f"{100 * at_cap:.0f}% of samples"
    )
    serving = [s for _, s in window if s >= 0]
    if serving:
        served = statistics.fmean(serving)
        print(
            f"  calls the AI server was answering: mean {served:.1f} ({100 * served / cap:.0f}% "
            "of the cap)"
        )


def _print_timeline(timeline: Timeline, cap: int) -> None:
    samples = timeline.samples
    if not samples:
        return
    held = [h for _, h, _, _ in samples]
    serving = [s for _, _, s, _ in samples if s >= 0]
    busy = [h for h in held if h > 0]
    at_cap = sum(1 for h in busy if h >= cap) / max(len(busy), 1)
    print(
        f"calls in flight (gate permits, sampled every {SAMPLE_SECONDS} s): max {max(held)} of "
        f"cap {cap}; at the cap in {100 * at_cap:.0f}% of the busy samples"
        + (f"; the server saw at most {max(serving)} at once" if serving else "")
    )
    step = max(1, len(samples) // 24)
    print("   t s  permits  server  RSS MiB   bar (# = one call in flight, | = the cap)")
    for t, h, s, rss in samples[::step]:
        bar = ("#" * h).ljust(cap) + "|"
        shown = f"{s:6}" if s >= 0 else "     -"
        memory = "/".join(f"{kib // 1024}" for kib in rss) or "-"
        print(f"{t:6.1f}  {h:7}  {shown}  {memory:>7}   {bar}")


def _batch(count: int) -> dict[str, Any]:
    return {"keywords": make_keywords(count)}


@asynccontextmanager
async def _asgi_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", timeout=300
    ) as client:
        yield client


@asynccontextmanager
async def _http_client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        yield client


def _caller(client: httpx.AsyncClient, site: BenchSite) -> Callable[..., Awaitable[Any]]:
    """Calls to the API about the site, with its account's key."""

    async def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await client.request(
            method,
            path,
            params={"site_id": site.site_id},
            json=body,
            headers=bearer(site.api_key),
        )
        if response.status_code != 200:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    return call
