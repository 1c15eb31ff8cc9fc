"""How a burst of bad logins slows everyone else: `/me` latency alone and during K parallel
bad logins.

    .venv/bin/python -m bench.logins [--database-url URL] [--redis-url URL] [--requests N]
                                     [--seconds S] [--parallel K ...] [--polite]

The API runs as deployed (`uvicorn --factory app.main:create_app`, production argon2 cost) in a
process of its own, on a database the bench makes and drops. Without URLs it starts embedded
servers in a temporary folder. Each bad login is a wrong password for an email of its own from
an address of its own (`X-Forwarded-For`, which uvicorn trusts from 127.0.0.1), so that no
throttle refuses it before its password is checked: what is measured is the hashing. For each
K it prints `/me` p50/p99 over N sequential requests (or as many as S seconds allow) and their
statuses, and how the bad logins were answered. The bad logins come from a process of their own
and by default retry at once after a refusal, as an attacker would.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx

from app.db import create_engine, create_session_factory, unit_of_work
from app.tenancy.security import CHECK_WORKERS
from app.tenancy.service import create_account
from bench.backends import backends
from bench.pipeline import fresh_database

START_TIMEOUT_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def api_process(database_url: str, redis_url: str, data_dir: Path) -> AsyncIterator[str]:
    """The API in its own process; yields its base URL once it answers."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url) as probe:
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                while True:
                    try:
                        if (await probe.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)  # uvicorn gives no readiness signal
        yield base_url
    finally:
        process.terminate()
        await process.wait()


def _percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49] * 1000:6.1f} ms   p99 {cuts[98] * 1000:6.1f} ms"


async def _me_latencies(
    client: httpx.AsyncClient, key: str, requests: int, seconds: float
) -> tuple[list[float], Counter[int]]:
    """`requests` sequential calls of /me, or as many as fit in `seconds`."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    until = time.perf_counter() + seconds
    while len(latencies) < requests and time.perf_counter() < until:
        started = time.perf_counter()
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        latencies.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
    return latencies, statuses


def _statuses(answers: Counter[int] | Counter[str]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(answers.items(), key=str))


@dataclass
class LoadResult:
    answers: Counter[str] = field(default_factory=Counter)
    times: list[float] = field(default_factory=list)


def _load_process(
    base_url: str,
    k: int,
    first_number: int,
    polite: bool,
    ready: Event,
    stop: Event,
    out: Queue[LoadResult],
) -> None:
    """K clients sending bad logins until `stop`, in a process of their own: the clients' own
    work must not delay the `/me` client's."""
    out.put(asyncio.run(_load(base_url, k, first_number, polite, ready, stop)))


async def _load(
    base_url: str, k: int, first_number: int, polite: bool, ready: Event, stop: Event
) -> LoadResult:
    result = LoadResult()
    numbers = itertools.count(first_number)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            n = next(numbers)
            started = time.perf_counter()
            try:
                response = await client.post(
                    "/api/v1/auth/login",
                    json={"email": f"nobody{n}@example.com", "password": "wrong password"},
                    headers={"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"},
                )
            except httpx.TransportError as exc:
                result.answers[type(exc).__name__] += 1
                continue
            result.times.append(time.perf_counter() - started)
            result.answers[str(response.status_code)] += 1
            ready.set()
            if polite and "retry-after" in response.headers:
                await asyncio.sleep(float(response.headers["retry-after"]))

    limits = httpx.Limits(max_connections=k)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(k)))
    return result


async def measure(
    base_url: str, key: str, requests: int, seconds: float, parallel: list[int], polite: bool
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        await _me_latencies(client, key, 20, seconds)  # warm the connection pool
        alone, statuses = await _me_latencies(client, key, requests, seconds)
        label = "/me alone:"
        print(f"{label:28}{_percentiles(alone)} ({_statuses(statuses)})", flush=True)
        spawn = multiprocessing.get_context("spawn")
        for k in parallel:
            ready, stop, out = spawn.Event(), spawn.Event(), spawn.Queue()
            load = spawn.Process(
                target=_load_process, args=(base_url, k, k * 1_000_000, polite, ready, stop, out)
            )
            load.start()
            await asyncio.to_thread(ready.wait)
            started = time.perf_counter()
            latencies, statuses = await _me_latencies(client, key, requests, seconds)
            elapsed = time.perf_counter() - started
            # Each client finishes the login it has sent: the server is idle for the next K.
            stop.set()
            result: LoadResult = await asyncio.to_thread(out.get)
            await asyncio.to_thread(load.join)
            label = f"/me during {k} bad logins:"
            print(f"{label:28}{_percentiles(latencies)} ({_statuses(statuses)})")
            answered = sum(result.answers.values())
            print(
                f"    bad logins answered: {answered} ({_statuses(result.answers)}), "
                f"{answered / elapsed:.0f}/s, median answer "
                f"{statistics.median(result.times) * 1000:.0f} ms",
                flush=True,
            )


async def run(
    server_url: str,
    redis_url: str,
    requests: int,
    seconds: float,
    parallel: list[int],
    polite: bool,
) -> None:
    async with fresh_database(server_url) as url:
        engine = create_engine(url, pool_size=2)
        async with unit_of_work(create_session_factory(engine)) as session:
            created = await create_account(
                session,
                name="Bench",
                email="bench@example.com",
                password="bench-password",
                credits=Decimal(0),
            )
        await engine.dispose()
        data_dir = Path(tempfile.mkdtemp(prefix="ca-bench-data-"))
        try:
            async with api_process(url, redis_url, data_dir) as base_url:
                await measure(base_url, created.api_key, requests, seconds, parallel, polite)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server (any database on it)")
    parser.add_argument("--redis-url")
    parser.add_argument("--requests", type=int, default=100, help="/me requests per figure")
    parser.add_argument("--seconds", type=float, default=30, help="at most, per figure")
    parser.add_argument("--parallel", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--polite",
        action="store_true",
        help="bad-login clients wait as `Retry-After` says (by default they retry at once)",
    )
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, password checks at once: {CHECK_WORKERS}", flush=True)
    with backends(args.database_url, args.redis_url) as servers:
        asyncio.run(
            run(
                servers.database_url,
                servers.redis_url,
                args.requests,
                args.seconds,
                args.parallel,
                args.polite,
            )
        )


if __name__ == "__main__":
    main()
