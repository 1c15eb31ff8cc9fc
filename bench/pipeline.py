"""How close a whole run comes to the time its AI calls need, with and without concurrency.

    .venv/bin/python -m bench.pipeline [--keywords N] [--latency-ms L] [--latency-jitter]
                                       [--concurrency C] [--batch-size B]
                                       [--only concurrent|sequential] [--provider local|openai]
                                       [--database-url URL] [--redis-url URL]

Servers: the URLs given, else TEST_DATABASE_URL / TEST_REDIS_URL, else embedded ones in a
temporary folder. Each scenario gets its own database (migrated, dropped at the end); the
Redis database of the URL must not be served by another arq worker.

Each scenario feeds N keywords through the API (in process), starts a worker in this process
and waits until it is idle and listening for jobs (a deployed worker is up before a run starts,
so its start is not counted in the run), starts a run with `run_now`, and stops the worker once
the run is over; the local provider takes L ms a call (with `--provider openai`, the
OpenAI-compatible server answers after L ms; with `--latency-jitter` after a lognormal time of
mean L whose 99th percentile is 5 L).

- concurrent: `ai_concurrency` C, batch sizes B (default C) for the AI stages (2, 4, 5, 6), 20
  for 1 and 3.
- sequential (the reference's way): `ai_concurrency` 1, batch sizes 1 — except stage 1, which
  keeps 20 in both: its batch size is how many keywords one call clusters, so changing it would
  change the clusters and hence all the later work.

Delays are 0, so each stage's items flow through a window of `ai_concurrency` slots (stage 1's
calls of 20 keywords too). The lower bound is the sum over the stages of
ceil(AI calls of the stage / ai_concurrency) x L; the issue's bound, the sum over all batches of
ceil(AI calls in the batch / ai_concurrency) x L with stage 1's calls one after the other, is
printed beside it. The target (issue 13) is a makespan within 1.15 times the bound for the
concurrent scenario, 1.25 with jitter. Per stage it also prints the calls' measured durations;
per run, the time with no call in flight, the CPU the process used and the machine's load
average, since a busy machine slows the run and not the provider's sleeps, and the CPU per AI
call of each part (the worker, PostgreSQL, Redis, the AI server) with the calls in flight the
machine's CPUs pay for at that cost (`bench/cpu.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from app.ai import registry
from app.ai.base import AIProvider, Answer
from app.ai.schemas import (
    ArticleBrief,
    ArticleOut,
    ClusterBrief,
    ClusteringOut,
    ContentBrief,
    IdeasOut,
    ImageOut,
    ImagePromptsOut,
    KeywordBrief,
)
from app.config import Settings
from app.db import async_url, create_engine, create_session_factory, unit_of_work
from app.main import create_app
from app.migrate import upgrade
from app.models.automation import AutomationRun
from app.serve import settle
from app.tenancy.service import create_account
from app.workers.wakeups import wake_channel
from app.workers.worker import build_worker, close_worker
from bench.ai_server import AIServerProcess
from bench.backends import backends
from bench.cpu import CpuMeter, CpuUse, machine_speed, process_cpu
from bench.cpu import report as report_cpu

T = TypeVar("T")

# The run's end is polled every 50 ms; PostgreSQL's processes are looked for every second (a
# scan of /proc, in this process, whose CPU is the worker's).
METER_EVERY_POLLS = 20
# The runner's worker is this process, in `bench.cpu`'s report.
WORKER_PART = "the worker (this process)"

TOPICS = (
    "running shoes", "sourdough bread", "espresso machine", "indoor plants", "electric bikes",
    "budget travel", "home office chair", "dog training", "vegan protein", "solar panels",
    "mechanical keyboard", "yoga mat", "air fryer", "hiking boots", "baby stroller",
    "standing desk", "noise cancelling headphones", "cast iron skillet", "backyard chickens",
    "watercolor painting", "car insurance", "mortgage refinancing", "wedding photography",
    "camping tent", "aquarium filter",
)  # fmt: skip
MODIFIERS = (
    "best", "cheap", "for beginners", "review", "how to choose", "vs alternatives",
    "2026 guide", "common mistakes", "near me", "for small spaces", "care tips", "buying guide",
    "pros and cons", "on a budget", "for experts", "checklist", "faq", "at home", "top rated",
    "ideas", "for kids", "for seniors", "under 100 dollars", "troubleshooting",
)  # fmt: skip
# Past len(TOPICS) x len(MODIFIERS) keywords, modifiers are combined with these.
QUALIFIERS = ("online", "in winter", "for women", "for men", "uk", "reddit")
# Stage results: the AI calls a stage made (stage 1 makes one per batch; 3 and 7 make none).
CALL_COUNTERS = {
    1: ("batches_run",),
    2: ("clusters_processed", "errors"),
    4: ("tasks_processed", "errors"),
    5: ("content_processed", "errors"),
    6: ("images_processed",),
}
CREDITS = Decimal(10_000_000)
# The goals for the concurrent scenario, with constant and with jittered latencies.
TARGET_RATIO = 1.15
TARGET_RATIO_JITTER = 1.25


def make_keywords(count: int) -> list[dict[str, Any]]:
    """A keyword research export sorted by volume: the topics mixed, a few keywords of the same
    topic in a batch, so clustering yields many clusters of uneven size. Deterministic."""
    phrases = [*MODIFIERS, *(f"{m} {q}" for q in QUALIFIERS for m in MODIFIERS)]
    per_topic = math.ceil(count / len(TOPICS))
    if per_topic > len(phrases):
        raise SystemExit(f"--keywords: at most {len(TOPICS) * len(phrases)}")
    pairs = [(topic, phrase) for topic in TOPICS for phrase in phrases[:per_topic]]
    random.Random(20260101).shuffle(pairs)  # noqa: S311 - a fixed mix, not a secret
    return [
        {"keyword": f"{p} {t}" if i % 2 else f"{t} {p}", "volume": 10 * (count - i) + 10}
        for i, (t, p) in enumerate(pairs[:count])
    ]


@dataclass(frozen=True)
class Scenario:
    name: str
    concurrency: int
    batch_sizes: dict[int, int]

    def config(self) -> dict[str, int]:
        sizes = {f"stage_{n}_batch_size": size for n, size in self.batch_sizes.items()}
        return {
            "within_stage_delay": 0,
            "between_stage_delay": 0,
            "ai_concurrency": self.concurrency,
            **sizes,
        }

    def describe(self) -> str:
        sizes = " ".join(f"{n}:{size}" for n, size in self.batch_sizes.items())
        return f"ai_concurrency {self.concurrency}, batch sizes {sizes}, delays 0"


def scenarios(concurrency: int, batch_size: int) -> dict[str, Scenario]:
    b = batch_size
    return {
        "concurrent": Scenario("concurrent", concurrency, {1: 20, 2: b, 3: 20, 4: b, 5: b, 6: b}),
        "sequential": Scenario("sequential", 1, {1: 20, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}),
    }


@dataclass
class Calls:
    """Every AI call as (stage, start, end) on the monotonic clock, and the process's CPU
    seconds at each stage's first call and last answer."""

    spans: list[tuple[int, float, float]] = field(default_factory=list)
    cpu: dict[int, list[float]] = field(default_factory=dict)

    async def timed(self, stage: int, call: Awaitable[Answer[T]]) -> Answer[T]:
        started = time.monotonic()
        self.cpu.setdefault(stage, [time.process_time()] * 2)
        try:
            return await call
        finally:
            self.spans.append((stage, started, time.monotonic()))
            self.cpu[stage][1] = time.process_time()

    def cpu_per_call(self, stage: int, calls: int) -> float | None:
        """CPU ms per AI call from the stage's first call to its last answer (the stage's own
        work, not its opening and closing)."""
        if stage not in self.cpu or not calls:
            return None
        first, last = self.cpu[stage]
        return 1000 * (last - first) / calls

    def idle(self, start: float, end: float) -> tuple[float, float, float, int]:
        """Seconds in [start, end] with no call in flight: before the first call, between
        calls (and in how many gaps), after the last."""
        spans = sorted((s, e) for _, s, e in self.spans)
        if not spans:
            return end - start, 0.0, 0.0, 0
        between, gaps, reach = 0.0, 0, spans[0][1]
        for s, e in spans[1:]:
            if s > reach:
                between += s - reach
                gaps += 1
            reach = max(reach, e)
        return spans[0][0] - start, between, end - reach, gaps


class TimedProvider:
    """The configured provider, each call timed into `calls`."""

    def __init__(self, inner: AIProvider, calls: Calls) -> None:
        self.inner = inner
        self.calls = calls
        self.name = inner.name

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]:
        return await self.calls.timed(1, self.inner.cluster_keywords(keywords))

    async def generate_ideas(self, cluster: ClusterBrief) -> Answer[IdeasOut]:
        return await self.calls.timed(2, self.inner.generate_ideas(cluster))

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]:
        return await self.calls.timed(4, self.inner.generate_content(brief))

    async def generate_image_prompts(
        self, article: ArticleBrief, in_article_count: int
    ) -> Answer[ImagePromptsOut]:
        return await self.calls.timed(
            5, self.inner.generate_image_prompts(article, in_article_count)
        )

    async def generate_image(self, prompt: str, *, featured: bool) -> Answer[ImageOut]:
        return await self.calls.timed(6, self.inner.generate_image(prompt, featured=featured))

    async def aclose(self) -> None:
        await self.inner.aclose()


@contextmanager
def timed_provider(name: str, calls: Calls) -> Iterator[None]:
    """The worker's provider, timed: the registry is a plain table so that a fake can stand in."""
    standard = registry.PROVIDERS[name]

    def factory(settings: Settings) -> AIProvider:
        return TimedProvider(standard(settings), calls)

    registry.PROVIDERS[name] = factory
    try:
        yield
    finally:
        registry.PROVIDERS[name] = standard


@dataclass(frozen=True)
class Work:
    """How long the worker ran (monotonic start, wall and process CPU seconds), and the
    machine's load average before and after: other processes slow a run down; with an idle
    worker, the CPU each part of the machine's work spent meanwhile (`bench.cpu`)."""

    started: float
    wall: float
    cpu: float
    load: tuple[float, float]
    parts: CpuUse | None = None


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    makespan: float
    calls: dict[int, int]
    bound: dict[int, float]
    batch_bound: float
    elapsed: dict[int, float]
    clusters: int
    work: Work
    timed: Calls

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_bound(self) -> float:
        return sum(self.bound.values())

    @property
    def ratio(self) -> float:
        return self.makespan / self.total_bound if self.total_bound else math.inf


def waves(calls: int, batch_size: int, concurrency: int) -> int:
    """sum over the batches of ceil(calls in the batch / concurrency)."""
    full, rest = divmod(calls, batch_size)
    return full * math.ceil(batch_size / concurrency) + math.ceil(rest / concurrency)


def stage_calls(run: AutomationRun) -> dict[int, int]:
    counts = {}
    for stage, counters in CALL_COUNTERS.items():
        result = getattr(run, f"stage_{stage}_result") or {}
        counts[stage] = sum(int(result.get(counter, 0)) for counter in counters)
    return counts


def stage_elapsed(run: AutomationRun) -> dict[int, float]:
    elapsed = {}
    for stage in range(1, 8):
        result = getattr(run, f"stage_{stage}_result") or {}
        if result.get("started_at") and result.get("completed_at"):
            span = datetime.fromisoformat(result["completed_at"]) - datetime.fromisoformat(
                result["started_at"]
            )
            elapsed[stage] = span.total_seconds()
    return elapsed


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new database on the server, migrated to head; dropped at the end."""
    name = f"bench_{os.urandom(4).hex()}"
    server = make_url(async_url(server_url))
    admin = create_engine(server.render_as_string(hide_password=False), pool_size=2)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def check_redis_free(redis_url: str) -> None:
    """Another worker on this Redis database would take the run's jobs (and ours, its)."""
    redis = Redis.from_url(redis_url)
    try:
        queued = await redis.zcard("arq:queue")
        workers = [key async for key in redis.scan_iter(match="arq:health-check:*")]
    finally:
        await redis.aclose()
    if queued or workers:
        raise SystemExit(
            f"{redis_url} is in use by an arq worker ({queued} jobs queued, {len(workers)} "
            "workers): pass --redis-url with another database number"
        )


@dataclass(frozen=True)
class ProviderSetup:
    settings: dict[str, Any]
    server: AIServerProcess | None


@asynccontextmanager
async def provider_setup(
    provider: str, latency_ms: int, jitter: bool = False
) -> AsyncIterator[ProviderSetup]:
    """The settings that make the worker's provider answer after `latency_ms`: the local one,
    or the `openai` one talking to an OpenAI-compatible server on 127.0.0.1 (its own process),
    whose latencies are lognormal of that mean with `jitter`."""
    if provider == "local":
        if jitter:
            raise SystemExit("--latency-jitter: with --provider openai")
        yield ProviderSetup({"local_ai_latency_ms": latency_ms}, None)
        return
    async with AIServerProcess(latency_ms=latency_ms, jitter=jitter) as server:
        openai = {"ai_provider": "openai", "ai_base_url": server.base_url, "ai_api_key": "bench"}
        yield ProviderSetup(openai, server)


async def run_scenario(
    server_url: str, redis_url: str, keywords: list[dict[str, Any]], args: Any, s: Scenario
) -> Outcome:
    await check_redis_free(redis_url)
    data_dir = Path(tempfile.mkdtemp(prefix="ca-bench-data-"))
    calls = Calls()
    latency_ms = args.latency_ms
    try:
        async with (
            fresh_database(server_url) as url,
            provider_setup(args.provider, latency_ms, args.latency_jitter) as provider,
        ):
            settings = Settings(
                database_url=url,
                redis_url=redis_url,
                data_dir=data_dir,
                log_level="WARNING",
                ai_max_concurrency=args.cap,
                **provider.settings,
            )
            with timed_provider(settings.ai_provider, calls):
                async with idle_worker(settings, provider.server) as worker:
                    run_id = await start(settings, keywords, s, worker.begin)
                    work = await worker.until_over(run_id)
            run = await read_run(url, run_id)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    await forget_run(redis_url, run_id)
    if run.completed_at is None or run.stopped_reason != "completed":
        raise SystemExit(
            f"run {run_id} did not complete: {run.status} ({run.stopped_reason}) "
            f"{run.error_message or ''}"
        )
    counts = stage_calls(run)
    latency = latency_ms / 1000
    return Outcome(
        scenario=s,
        makespan=(run.completed_at - run.started_at).total_seconds(),
        calls=counts,
        bound={stage: latency * math.ceil(n / s.concurrency) for stage, n in counts.items()},
        batch_bound=sum(
            latency * (n if stage == 1 else waves(n, s.batch_sizes[stage], s.concurrency))
            for stage, n in counts.items()
        ),
        elapsed=stage_elapsed(run),
        clusters=int((run.stage_1_result or {}).get("clusters_created", 0)),
        work=work,
        timed=calls,
    )


async def drain(settings: Settings) -> Work:
    """Run a burst worker in this process until no job is left (each slice queues the next)."""
    load = os.getloadavg()[0]
    # The production poll delay: with 0, a burst worker re-reads the queue of the run's job (arq
    # keeps it there until it ends) in a tight loop, on the run's event loop.
    worker = build_worker(settings, burst=True, handle_signals=False)
    started, cpu = time.monotonic(), process_cpu()
    try:
        await worker.async_run()
    finally:
        await close_worker(worker)
    return Work(
        started, time.monotonic() - started, process_cpu() - cpu, (load, os.getloadavg()[0])
    )


class IdleWorker:
    """A worker in this process, started and listening for jobs before the run is (as a
    deployed one waits), so its start is not counted in the run; stopped once the run is over."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        running: asyncio.Task[None],
        server: AIServerProcess | None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.running = running
        self.started = 0.0
        self.cpu = 0.0
        self.load = 0.0
        server_pid = None if server is None else server.pid
        self.meter = CpuMeter.of(settings.database_url, redis, {}, server_pid, own=WORKER_PART)

    async def begin(self) -> None:
        """The run is about to start: the worker's time and CPU are counted from here."""
        await until_listening(self.redis)
        self.load = os.getloadavg()[0]
        await self.meter.start()
        self.started, self.cpu = time.monotonic(), process_cpu()

    async def until_over(self, run_id: str) -> Work:
        assert self.settings.database_url is not None
        engine = create_engine(self.settings.database_url, pool_size=2)
        ended = ("completed", "failed", "cancelled")
        polls = 0
        try:
            while True:
                polls += 1
                if polls % METER_EVERY_POLLS == 0:
                    self.meter.sample()
                async with engine.connect() as connection:
                    status = await connection.scalar(
                        select(AutomationRun.status).where(AutomationRun.run_id == run_id)
                    )
                if status in ended:
                    break
                if self.running.done():
                    raise SystemExit(f"the worker stopped before run {run_id} was over")
                await asyncio.sleep(0.05)
        finally:
            await engine.dispose()
        wall, cpu = time.monotonic() - self.started, process_cpu() - self.cpu
        parts = await self.meter.stop()
        return Work(self.started, wall, cpu, (self.load, os.getloadavg()[0]), parts)


@asynccontextmanager
async def idle_worker(
    settings: Settings, server: AIServerProcess | None
) -> AsyncIterator[IdleWorker]:
    worker = build_worker(settings, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    try:
        yield IdleWorker(settings, redis, running, server)
    finally:
        await close_worker(worker)
        await asyncio.wait([running])
        await redis.aclose()


async def until_listening(redis: Redis) -> None:
    """Until a worker listens for the announcements of new jobs: it has started and is idle."""
    async with asyncio.timeout(60):
        while True:
            counts: list[tuple[bytes, int]] = await redis.pubsub_numsub(wake_channel(redis))
            if counts[0][1]:
                return
            await asyncio.sleep(0.01)


async def read_run(url: str, run_id: str) -> AutomationRun:
    engine = create_engine(url, pool_size=2)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            run = await session.scalar(select(AutomationRun).where(AutomationRun.run_id == run_id))
    finally:
        await engine.dispose()
    if run is None:
        raise SystemExit(f"run {run_id} is gone")
    return run


async def start(
    settings: Settings,
    keywords: list[dict[str, Any]],
    s: Scenario,
    before_run: Callable[[], Awaitable[None]],
) -> str:
    """An account with plenty of credits, its site fed and configured, `before_run` awaited,
    and a run started."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=2)
    async with unit_of_work(create_session_factory(engine)) as session:
        created = await create_account(
            session,
            name="Bench",
            email="bench@example.com",
            password="bench-password",
            credits=CREDITS,
            site_name="Bench site",
        )
    await engine.dispose()
    assert created.site is not None
    site = {"site_id": created.site.id}
    headers = {"Authorization": f"Bearer {created.api_key}"}
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await settle(app)  # as `automation api` and `serve` do beside their start
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers, timeout=300
        ) as client:
            for method, path, body in (
                ("POST", "/api/v1/planner/keywords/", {"keywords": keywords}),
                ("PUT", "/api/v1/automation/update_config/", s.config()),
                ("POST", "/api/v1/automation/run_now/", None),
            ):
                if path.endswith("/run_now/"):
                    await before_run()
                response = await client.request(method, path, params=site, json=body)
                if response.status_code != 200:
                    raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    run_id: str = response.json()["run_id"]
    return run_id


async def forget_run(redis_url: str, run_id: str) -> None:
    """Drop the run's job and result keys, so the Redis database is left as it was."""
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"*{run_id}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def report(o: Outcome, latency_ms: int) -> None:
    s = o.scenario
    print(f"\n== {s.name}: {s.describe()}")
    print(
        f"makespan {o.makespan:.2f} s (run started_at -> completed_at); "
        f"worker wall clock {o.work.wall:.2f} s; {o.clusters} clusters"
    )
    print("stage  AI calls  bound s  elapsed s  ratio  mean call ms  max call ms  CPU ms/call")
    for stage in range(1, 8):
        n = o.calls.get(stage, 0)
        bound = o.bound.get(stage, 0.0)
        elapsed = o.elapsed.get(stage, 0.0)
        durations = [e - b for st, b, e in o.timed.spans if st == stage]
        ratio = f"{elapsed / bound:5.2f}" if bound else "    -"
        mean = f"{1000 * sum(durations) / len(durations):12.0f}" if durations else " " * 12
        longest = f"{1000 * max(durations):11.0f}" if durations else " " * 11
        cpu = o.timed.cpu_per_call(stage, len(durations))
        per_call = f"{cpu:12.1f}" if cpu is not None else ""
        print(
            f"{stage:5}  {n:8}  {bound:7.2f}  {elapsed:9.2f}  {ratio}  {mean}  {longest}"
            f"  {per_call}"
        )
    print(
        f"total  {o.total_calls:8}  {o.total_bound:7.2f}  {o.makespan:9.2f}  {o.ratio:5.2f}"
        f"   (L = {latency_ms} ms); the issue's batch bound {o.batch_bound:.2f} s, "
        f"ratio {o.makespan / o.batch_bound if o.batch_bound else math.inf:.2f}"
    )
    timed = len(o.timed.spans)
    if timed != o.total_calls:
        print(f"note: the provider saw {timed} calls, the stage results count {o.total_calls}")
    before, between, after, gaps = o.timed.idle(o.work.started, o.work.started + o.work.wall)
    per_gap = f", {1000 * between / gaps:.1f} ms each" if gaps else ""
    print(
        f"no AI call in flight: {before + between + after:.2f} s of the wall clock "
        f"(before the first call {before:.2f} s, between calls {between:.2f} s in {gaps} "
        f"gaps{per_gap}, after the last {after:.2f} s)"
    )
    print(
        f"CPU of this process (event loop and the provider's threads) during the run: "
        f"{o.work.cpu:.1f} s, {1000 * o.work.cpu / max(o.total_calls, 1):.0f} ms per AI call; "
        f"load average {o.work.load[0]:.1f} before, {o.work.load[1]:.1f} after "
        f"({os.cpu_count()} CPUs)"
    )
    if o.work.parts is not None:
        slots = o.scenario.concurrency
        of = f"the run's {slots} slot{'s' if slots > 1 else ''}"
        report_cpu(o.work.parts, o.total_calls, latency_ms, slots, of=of, worker=WORKER_PART)


def summary(outcomes: list[Outcome], jitter: bool) -> None:
    print("\nscenario    | makespan s | AI calls | lower bound s | ratio")
    for o in outcomes:
        print(
            f"{o.scenario.name:<11} | {o.makespan:10.2f} | {o.total_calls:8} | "
            f"{o.total_bound:13.2f} | {o.ratio:5.2f}"
        )
    by_name = {o.scenario.name: o for o in outcomes}
    if "concurrent" in by_name:
        ratio = by_name["concurrent"].ratio
        target = TARGET_RATIO_JITTER if jitter else TARGET_RATIO
        verdict = "met" if ratio <= target else "missed"
        print(f"target: concurrent makespan within {target}x the bound: {verdict}")
    if {"concurrent", "sequential"} <= by_name.keys():
        speed_up = by_name["sequential"].makespan / by_name["concurrent"].makespan
        print(f"speed-up concurrent vs sequential: {speed_up:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")


async def run(database_url: str, redis_url: str, args: argparse.Namespace) -> None:
    if args.sites:
        from bench.sites import run_sites

        await run_sites(database_url, redis_url, args)
        return
    keywords = make_keywords(args.keywords)
    chosen = scenarios(args.concurrency, args.batch_size or args.concurrency)
    names = [args.only] if args.only else list(chosen)
    latency = f"{args.latency_ms} ms" + (" (lognormal mean)" if args.latency_jitter else "")
    print(
        f"pipeline benchmark: {len(keywords)} keywords, {args.provider} provider latency "
        f"{latency}, stage 1 clusters 20 keywords a call in every scenario"
    )
    outcomes = []
    for name in names:
        outcome = await run_scenario(database_url, redis_url, keywords, args, chosen[name])
        report(outcome, args.latency_ms)
        outcomes.append(outcome)
    summary(outcomes, args.latency_jitter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keywords", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=100, help="each local AI call")
    parser.add_argument(
        "--latency-jitter",
        action="store_true",
        help="with --provider openai: lognormal latencies of mean L, 99th percentile 5 L",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="the concurrent scenario's")
    parser.add_argument(
        "--batch-size", type=int, help="of stages 2, 4, 5, 6 when concurrent (default: C)"
    )
    parser.add_argument("--only", choices=["concurrent", "sequential"])
    parser.add_argument(
        "--provider",
        choices=["local", "openai"],
        default="local",
        help="openai: the openai provider against an OpenAI-compatible server on 127.0.0.1",
    )
    parser.add_argument(
        "--cap", type=int, default=16, help="AI_MAX_CONCURRENCY, calls in flight in all"
    )
    parser.add_argument(
        "--sites", type=int, default=0, help="K sites of N keywords at once (see bench/sites.py)"
    )
    parser.add_argument(
        "--big-site", type=int, default=0, help="with --sites: one more site of M keywords"
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="with --sites: W `automation worker` processes and an `automation api` "
        "(default: one worker in this process)",
    )
    parser.add_argument(
        "--account-per-site",
        action="store_true",
        help="with --sites: each site of an account of its own (default: one account)",
    )
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL"))
    args = parser.parse_args()
    print(machine_speed(), flush=True)
    with backends(args.database_url, args.redis_url) as servers:
        asyncio.run(run(servers.database_url, servers.redis_url, args))
    print(machine_speed())


if __name__ == "__main__":
    main()
