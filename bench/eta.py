"""How far off a run's ETA (`run_progress`'s `global_progress.eta_seconds`) is, run after run.

    .venv/bin/python -m bench.eta [--runs R] [--keywords N] [--latency-ms L] [--concurrency C]
                                  [--between-stage-delay D] [--database-url URL] [--redis-url URL]

One site runs R times, each run fed N new keywords, through the `openai` provider talking to the
OpenAI-compatible test server on 127.0.0.1 (its own process, every call answered after L ms),
with a worker in this process. While a run goes, `run_progress` is read every
0.2 s through the API (in process). Once it is over, at 25, 50 and 75 % of its duration the
ETA read then is set against the time the run really had left: error = predicted - actual
(negative: too early), also as a share of the actual time left. "—" where the ETA was unknown
(null): a site's first run has no pace for the AI stages it has not reached yet.

Runs use `ai_concurrency` C, batch sizes C for the AI stages 2, 4, 5, 6 (20 for 1 and 3),
`within_stage_delay` 0 and `between_stage_delay` D. Servers: as bench.pipeline (the URLs
given, else TEST_DATABASE_URL / TEST_REDIS_URL, else embedded ones).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from app.db import create_engine, create_session_factory, unit_of_work
from app.main import create_app
from app.tenancy.service import create_account
from bench.backends import backends
from bench.pipeline import (
    check_redis_free,
    drain,
    forget_run,
    fresh_database,
    make_keywords,
    provider_setup,
)

SAMPLE_SECONDS = 0.2
FRACTIONS = (0.25, 0.50, 0.75)
API = "/api/v1/automation"


@dataclass(frozen=True)
class Sample:
    at: float
    percentage: int
    eta: int | None
    stage: int


@dataclass(frozen=True)
class Point:
    """The ETA read at a fraction of the run's duration, against the time it really had left."""

    fraction: float
    percentage: int
    stage: int
    predicted: int | None
    actual: float

    @property
    def error(self) -> float | None:
        return None if self.predicted is None else self.predicted - self.actual

    @property
    def relative(self) -> float | None:
        error = self.error
        return None if error is None or self.actual <= 0 else error / self.actual


@dataclass(frozen=True)
class Measured:
    number: int
    run_id: str
    duration: float
    samples: int
    points: list[Point]
    items: int


async def sample_run(client: httpx.AsyncClient, site: dict[str, Any], run_id: str) -> list[Sample]:
    """Read the run's progress until it is over."""
    samples: list[Sample] = []
    while True:
        response = await client.get(f"{API}/run_progress/", params={**site, "run_id": run_id})
        if response.status_code != 200:
            raise SystemExit(f"run_progress: {response.status_code} {response.text}")
        body = response.json()
        status = body["run"]["status"]
        if status not in ("running", "paused"):
            return samples
        glob = body["global_progress"]
        stage = body["run"]["current_stage"]
        samples.append(Sample(time.monotonic(), glob["percentage"], glob["eta_seconds"], stage))
        await asyncio.sleep(SAMPLE_SECONDS)


def points(samples: list[Sample], start: float, end: float) -> list[Point]:
    measured = []
    for fraction in FRACTIONS:
        moment = start + fraction * (end - start)
        near = min(samples, key=lambda s: abs(s.at - moment))
        measured.append(Point(fraction, near.percentage, near.stage, near.eta, end - near.at))
    return measured


async def one_run(
    client: httpx.AsyncClient,
    settings: Settings,
    site: dict[str, Any],
    keywords: list[dict[str, Any]],
    number: int,
) -> Measured:
    response = await client.post(
        "/api/v1/planner/keywords/", params=site, json={"keywords": keywords}
    )
    if response.status_code != 200:
        raise SystemExit(f"keywords: {response.status_code} {response.text}")
    response = await client.post(f"{API}/run_now/", params=site)
    if response.status_code != 200:
        raise SystemExit(f"run_now: {response.status_code} {response.text}")
    run_id: str = response.json()["run_id"]
    start = time.monotonic()
    sampler = asyncio.create_task(sample_run(client, site, run_id))
    await drain(settings)
    samples = await sampler
    end = time.monotonic()
    progress = (await client.get(f"{API}/run_progress/", params={**site, "run_id": run_id})).json()
    if progress["run"]["status"] != "completed":
        raise SystemExit(f"run {run_id} ended {progress['run']['status']}")
    if not samples:
        raise SystemExit(f"run {run_id} ended before it was read once")
    return Measured(
        number,
        run_id,
        end - start,
        len(samples),
        points(samples, start, end),
        progress["global_progress"]["total_items"],
    )


def _seconds(value: float | None) -> str:
    return f"{'—':>7}" if value is None else f"{value:7.1f}"


def _share(value: float | None) -> str:
    return f"{'—':>8}" if value is None else f"{100 * value:+6.0f} %"


def report(runs: list[Measured]) -> None:
    print("\nrun  duration s  items  at    bar %  stage  ETA s   left s  error s  error")
    for run in runs:
        for n, point in enumerate(run.points):
            head = f"{run.number:3}  {run.duration:10.1f}  {run.items:5}" if n == 0 else " " * 22
            print(
                f"{head}  {int(100 * point.fraction):2} %  {point.percentage:5}  {point.stage:5}  "
                f"{_seconds(point.predicted)}  {point.actual:7.1f}  {_seconds(point.error)}  "
                f"{_share(point.relative)}"
            )
    later = [p.relative for run in runs[1:] for p in run.points if p.relative is not None]
    first = [p.relative for p in runs[0].points if p.relative is not None]
    known = sum(p.predicted is not None for run in runs for p in run.points)
    print(f"\nETA known at {known} of {sum(len(r.points) for r in runs)} points")
    if first:
        print(f"first run: mean |error| {100 * statistics.mean(abs(e) for e in first):.0f} %")
    if later:
        print(
            f"runs 2-{len(runs)} (with history): mean |error| "
            f"{100 * statistics.mean(abs(e) for e in later):.0f} %, "
            f"max |error| {100 * max(abs(e) for e in later):.0f} %"
        )


async def run(database_url: str, redis_url: str, args: argparse.Namespace) -> None:
    await check_redis_free(redis_url)
    data_dir = Path(tempfile.mkdtemp(prefix="ca-bench-data-"))
    run_ids: list[str] = []
    print(
        f"ETA benchmark: {args.runs} runs of {args.keywords} keywords on one site, openai "
        f"provider against the test server ({args.latency_ms} ms a call), ai_concurrency "
        f"{args.concurrency}, between_stage_delay {args.between_stage_delay} s"
    )
    try:
        async with (
            fresh_database(database_url) as url,
            provider_setup("openai", args.latency_ms) as provider,
        ):
            settings = Settings(
                database_url=url,
                redis_url=redis_url,
                data_dir=data_dir,
                log_level="WARNING",
                **provider.settings,
            )
            measured = await runs_of_one_site(settings, url, args, run_ids)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        for run_id in run_ids:
            await forget_run(redis_url, run_id)
    report(measured)


async def runs_of_one_site(
    settings: Settings, url: str, args: argparse.Namespace, run_ids: list[str]
) -> list[Measured]:
    """A site with plenty of credits, configured, run `args.runs` times one after the other."""
    engine = create_engine(url, pool_size=2)
    async with unit_of_work(create_session_factory(engine)) as session:
        created = await create_account(
            session,
            name="Bench",
            email="bench@example.com",
            password="bench-password",
            credits=Decimal(10_000_000),
            site_name="Bench site",
        )
    await engine.dispose()
    assert created.site is not None
    site = {"site_id": created.site.id}
    config = {
        "within_stage_delay": 0,
        "between_stage_delay": args.between_stage_delay,
        "ai_concurrency": args.concurrency,
        **{f"stage_{n}_batch_size": args.concurrency for n in (2, 4, 5, 6)},
    }
    keywords = make_keywords(args.runs * args.keywords)
    measured = []
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {created.api_key}"},
            timeout=300,
        ) as client,
    ):
        response = await client.put(f"{API}/update_config/", params=site, json=config)
        if response.status_code != 200:
            raise SystemExit(f"config: {response.status_code} {response.text}")
        for n in range(args.runs):
            batch = keywords[n * args.keywords : (n + 1) * args.keywords]
            result = await one_run(client, settings, site, batch, n + 1)
            run_ids.append(result.run_id)
            print(
                f"run {n + 1}: {result.duration:.1f} s, {result.items} items, "
                f"{result.samples} reads"
            )
            measured.append(result)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--keywords", type=int, default=30, help="new keywords for each run")
    parser.add_argument("--latency-ms", type=int, default=100, help="each AI call")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--between-stage-delay", type=int, default=1)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL"))
    args = parser.parse_args()
    if args.runs < 1 or args.keywords < 1:
        parser.error("--runs and --keywords must be at least 1")
    with backends(args.database_url, args.redis_url) as servers:
        asyncio.run(run(servers.database_url, servers.redis_url, args))


if __name__ == "__main__":
    main()
