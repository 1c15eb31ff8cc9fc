"""Status reads under load: req/s and p50/p99 of the paths clients poll, beside `/healthz` and
a raw-asyncpg floor, with the site's run paused and then with another site's run in progress.

    .venv/bin/python -m bench.api_reads [--database-url URL] [--redis-url URL] [--seconds S]
                                        [--concurrency C] [--keywords N] [--busy-keywords M]

`automation serve` runs in a process of its own (API, worker and cron, as deployed), its worker
calling an OpenAI-compatible server on 127.0.0.1 (another process) that answers after
`--latency-ms`. The bench makes an account, a site with N keywords whose run it starts and
pauses, and a second site of M keywords. Each path gets C keep-alive connections sending
requests back to back for S seconds (after a second of warm-up), one path at a time.

The floor is `bench.floor_app`: FastAPI on the same uvicorn, one asyncpg query (the API key's
row) and a small JSON answer, in a process of its own; what the service adds to that is what
its reads cost beyond the framework and one database round trip. Compare within one run: the
figures move with the machine's load, the ratios much less.

Then the second site's run starts, and the same paths are measured while that run works in
the same `serve` process (its state is printed before and after: it must still be running).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from bench.ai_server import AIServerProcess
from bench.backends import Backends, backends
from bench.cpu import cpu_seconds, machine_speed
from bench.load import Figures, load
from bench.pipeline import make_keywords
from bench.service import (
    Floor,
    Service,
    call,
    create_site,
    floor_app,
    serve,
)

BUSY_CONFIG = {"within_stage_delay": 0, "between_stage_delay": 0, "ai_concurrency": 4}


@dataclass(frozen=True)
class Read:
    label: str
    base_url: str
    target: str
    # The process that answers: its CPU time per request is printed beside the rate, a figure
    # that the machine's other load moves much less than the rate.
    pid: int


@dataclass(frozen=True)
class Measured:
    read: Read
    figures: Figures
    cpu_seconds: float

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000 / max(1, len(self.figures.latencies))


async def paused_run(client: httpx.AsyncClient, site_id: int) -> str:
    """Starts the site's run and pauses it; returns its id once the worker has let go of it."""
    started = await call(client, "POST", "/api/v1/automation/run_now/", {"site_id": site_id})
    run_id: str = started["run_id"]
    await call(client, "POST", "/api/v1/automation/pause/", {"run_id": run_id})
    return run_id


async def run_state(client: httpx.AsyncClient, site_id: int) -> str:
    current = await call(client, "GET", "/api/v1/automation/current_run/", {"site_id": site_id})
    run = current["run"]
    if run is None:
        return "no active run"
    stages = sum(1 for n in range(1, 8) if run.get(f"stage_{n}_result"))
    return f"{run['status']}, stage {run['current_stage']}, {stages} stage results"


def paths(service: Service, floor: Floor, site_id: int, prefix: str) -> list[Read]:
    auto = "/api/v1/automation"
    url, pid = service.base_url, service.pid
    return [
        Read("/healthz", url, "/healthz", pid),
        Read("floor (FastAPI + asyncpg)", floor.base_url, f"/floor?prefix={prefix}", floor.pid),
        Read("current_run", url, f"{auto}/current_run/?site_id={site_id}", pid),
        Read("run_progress", url, f"{auto}/run_progress/?site_id={site_id}", pid),
        Read(
            "planner/keywords ?limit=20",
            url,
            f"/api/v1/planner/keywords/?site_id={site_id}&limit=20",
            pid,
        ),
    ]


async def measure(
    service: Service, reads: list[Read], concurrency: int, seconds: float
) -> list[Measured]:
    results = []
    for read in reads:
        figures = await load(
            read.base_url,
            read.target,
            headers=service.auth,
            concurrency=concurrency,
            seconds=seconds,
            on_measure_start=partial(cpu_seconds, read.pid),
        )
        assert figures.measure_started_with is not None
        used = cpu_seconds(read.pid) - figures.measure_started_with
        results.append(Measured(read, figures, used))
        print(f"  measured {read.label}", flush=True)
    return results


def table(title: str, results: list[Measured]) -> None:
    healthz = results[0].figures.rate
    print(f"\n{title}")
    print(
        f"{'path':28}{'req/s':>7}{'of healthz':>11}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'CPU ms/req':>11}  statuses"
    )
    for m in results:
        f = m.figures
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(f.statuses.items()))
        print(
            f"{m.read.label:28}{f.rate:7.0f}{f.rate / healthz:10.0%} "
            f"{f.percentile(50) * 1000:7.1f}{f.percentile(99) * 1000:8.1f}"
            f"{m.cpu_ms_per_request:11.2f}  {statuses}"
        )


async def run(args: argparse.Namespace, found: Backends) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="ca-bench-reads-"))
    try:
        async with AIServerProcess(latency_ms=args.latency_ms) as ai:
            provider = {"AI_PROVIDER": "openai", "AI_BASE_URL": ai.base_url, "AI_API_KEY": "bench"}
            async with (
                serve(found, data_dir, provider) as service,
                floor_app(service.database_url, data_dir / "floor.log") as floor,
                service.client() as client,
            ):
                await bench(args, service, floor, client)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def bench(
    args: argparse.Namespace, service: Service, floor: Floor, client: httpx.AsyncClient
) -> None:
    site_id = await create_site(client, "Paused")
    busy_id = await create_site(client, "Busy")
    keywords = make_keywords(args.keywords + args.busy_keywords)
    keyword_path = "/api/v1/planner/keywords/"
    await call(
        client, "POST", keyword_path, {"site_id": site_id}, {"keywords": keywords[: args.keywords]}
    )
    await call(
        client, "POST", keyword_path, {"site_id": busy_id}, {"keywords": keywords[args.keywords :]}
    )
    await call(
        client, "PUT", "/api/v1/automation/update_config/", {"site_id": busy_id}, BUSY_CONFIG
    )
    await paused_run(client, site_id)
    await asyncio.sleep(1)
    print(f"site {site_id}: {await run_state(client, site_id)}", flush=True)
    prefix = "_".join(service.api_key.split("_")[:2])
    measured = paths(service, floor, site_id, prefix)
    c, s = args.concurrency, args.seconds
    table(
        f"== a paused run of {args.keywords} keywords; c = {c}, {s:g} s per path",
        await measure(service, measured, c, s),
    )
    await call(client, "POST", "/api/v1/automation/run_now/", {"site_id": busy_id})
    await asyncio.sleep(2)
    print(f"\nbusy site {busy_id}: {await run_state(client, busy_id)}", flush=True)
    results = await measure(service, measured, c, s)
    print(f"busy site {busy_id} after: {await run_state(client, busy_id)}")
    table(
        f"== the same, with a run of {args.busy_keywords} keywords in progress in the same "
        f"serve process (AI latency {args.latency_ms} ms)",
        results,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server (any database on it)")
    parser.add_argument("--redis-url", help="a Redis database no arq worker uses")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--keywords", type=int, default=60, help="of the paused run")
    parser.add_argument("--busy-keywords", type=int, default=400, help="of the run in progress")
    parser.add_argument("--latency-ms", type=int, default=100, help="of the AI server")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; {machine_speed()}", flush=True)
    with backends(args.database_url, args.redis_url) as found:
        asyncio.run(run(args, found))
    print(machine_speed())


if __name__ == "__main__":
    main()
