"""How soon a run starts: from `run_now` to its first AI call, over N runs with an idle worker.

    .venv/bin/python -m bench.start_latency [--database-url URL] [--redis-url URL] [--runs N]
                                            [--keywords K]

`automation serve` runs in a process of its own, its worker calling an OpenAI-compatible server
on 127.0.0.1 that this process runs (on a thread) and that notes when each request arrives.
There are N sites of K keywords each, with the default automation config. For each site, after
a pause of random length (so that `run_now` falls anywhere in the worker's polling cycle):
`run_now`, then wait for the server's next request; the time between the two is the start
latency. The run is then cancelled and the worker let go idle again before the next site.

Printed: p50, p99 and the worst of the start latency, of `run_now`'s answer, and of the time
from the answer to the first call (the worker's part: arq's poll, the slice's start); the CPU
`automation serve` spent a run from `run_now` to the first call (all its threads, the API's
part and the worker's; the mean of the runs after the first); and the first run's start latency
beside the worst of the others' (a process's first requests also prepare statements and
connections; p99 over 50 runs is close to the worst run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobStatus

from app.workers.queue import run_job_id
from bench.backends import Backends, backends
from bench.cpu import cpu_seconds, machine_speed
from bench.pipeline import make_keywords
from bench.service import Service, call, create_site, serve
from tests.servers.openai_compatible import OpenAICompatibleServer

FIRST_CALL_TIMEOUT_SECONDS = 30
IDLE_SECONDS = (0.3, 0.8)


async def first_call_after(server: OpenAICompatibleServer, seen: int, since: float) -> float:
    """When the first request after the first `seen` ones arrived (time.monotonic())."""
    async with asyncio.timeout(FIRST_CALL_TIMEOUT_SECONDS):
        # The server answers on a thread of its own and offers nothing to await.
        while len(server.requests) <= seen:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
    arrived = server.requests[seen].arrived
    if arrived < since:
        raise SystemExit("an AI call arrived before run_now: the worker was not idle")
    return arrived


async def until_idle(
    client: httpx.AsyncClient, server: OpenAICompatibleServer, jobs: ArqRedis, site: int, run: str
) -> None:
    """Until the site has no active run, the AI server answers nothing, and the run's slice
    job is over (a cancelled run's slice still settles its last item)."""
    slice_job = Job(run_job_id(run, 0), jobs)
    while True:
        current = await call(client, "GET", "/api/v1/automation/current_run/", {"site_id": site})
        if (
            current["run"] is None
            and server.in_flight == 0
            and await slice_job.status() in (JobStatus.complete, JobStatus.not_found)
        ):
            return
        await asyncio.sleep(0.05)


@dataclass
class Starts:
    """Per run, seconds from sending `run_now`: to its answer, to the first AI call."""

    answered: list[float] = field(default_factory=list)
    called: list[float] = field(default_factory=list)
    # CPU seconds `automation serve` spent from sending `run_now` to seeing the first call.
    cpu: list[float] = field(default_factory=list)


async def measure(
    service: Service, server: OpenAICompatibleServer, redis_url: str, runs: int, keywords: int
) -> Starts:
    starts = Starts()
    chance = random.Random(20261207)  # noqa: S311 - pauses, not secrets
    jobs = await create_pool(RedisSettings.from_dsn(redis_url))
    async with service.client() as client, contextlib.aclosing(jobs):
        sites = [await create_site(client, f"Site {n}") for n in range(runs)]
        words = make_keywords(keywords * runs)
        for n, site in enumerate(sites):
            body = {"keywords": words[n * keywords : (n + 1) * keywords]}
            await call(client, "POST", "/api/v1/planner/keywords/", {"site_id": site}, body)
        for site in sites:
            await asyncio.sleep(chance.uniform(*IDLE_SECONDS))
            seen = len(server.requests)
            cpu = cpu_seconds(service.pid)
            sent = time.monotonic()
            started = await call(client, "POST", "/api/v1/automation/run_now/", {"site_id": site})
            starts.answered.append(time.monotonic() - sent)
            starts.called.append(await first_call_after(server, seen, sent) - sent)
            starts.cpu.append(cpu_seconds(service.pid) - cpu)
            await call(client, "POST", "/api/v1/automation/cancel/", {"run_id": started["run_id"]})
            await until_idle(client, server, jobs, site, started["run_id"])
    return starts


def summary(label: str, samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"{label:34}p50 {cuts[49] * 1000:6.1f} ms   p99 {cuts[98] * 1000:6.1f} ms   "
        f"max {max(samples) * 1000:6.1f} ms"
    )


async def run(args: argparse.Namespace, found: Backends) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="ca-bench-start-"))
    try:
        async with OpenAICompatibleServer(latency_ms=args.latency_ms) as server:
            provider = {
                "AI_PROVIDER": "openai",
                "AI_BASE_URL": server.base_url,
                "AI_API_KEY": "bench",
            }
            async with serve(found, data_dir, provider) as service:
                starts = await measure(service, server, found.redis_url, args.runs, args.keywords)
        after = [c - a for c, a in zip(starts.called, starts.answered, strict=True)]
        print(f"\n== {args.runs} runs, each of {args.keywords} keywords, an idle worker")
        print(summary("run_now -> first AI call:", starts.called))
        print(summary("run_now answered:", starts.answered))
        print(summary("answered -> first AI call:", after))
        print(
            f"{'serve CPU, run_now -> first call:':34}"
            f"{statistics.mean(starts.cpu[1:]) * 1000:6.1f} ms a run (mean, after the first)"
        )
        print(
            f"{'the first run (of the process):':34}{starts.called[0] * 1000:6.1f} ms   "
            f"(answered {starts.answered[0] * 1000:.1f}, then {after[0] * 1000:.1f} ms)   "
            f"slowest of the others {max(starts.called[1:]) * 1000:6.1f} ms"
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server (any database on it)")
    parser.add_argument("--redis-url", help="a Redis database no arq worker uses")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keywords", type=int, default=5, help="per site")
    parser.add_argument("--latency-ms", type=int, default=20, help="of the AI server")
    args = parser.parse_args()
    print(machine_speed(), flush=True)
    with backends(args.database_url, args.redis_url) as found:
        asyncio.run(run(args, found))
    print(machine_speed())


if __name__ == "__main__":
    main()
