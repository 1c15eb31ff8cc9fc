"""The faults every topology is put through, as steps a scenario composes: start runs, inject
the fault while they are mid-stage, then check what a client saw and what the database holds."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text

from tests.blackbox.deployment import Audit, Deployment, Seen, Service, Tenant, Watcher, audit

REDIS_OUTAGE_SECONDS = 20
# A run is moving again this soon after its backend is back (SPEC §13).
RECOVERY_SECONDS = 60
# Requests sent this long after a backend is back may still meet the outage: the answer to a
# request in flight, a pooled connection found dead.
GRACE_SECONDS = 2
RUN_SECONDS = 240
KEYWORDS = 6
RUNS = 2


@dataclass
class Outcome:
    """What one scenario measured."""

    fault: str
    runs: list[str]
    statuses: dict[str, str]
    recovery_seconds: float | None
    audit: Audit
    exited: dict[str, int | None]
    problems: list[Seen]
    notes: dict[str, object] = field(default_factory=dict)

    def assert_clean(self) -> None:
        assert self.exited == {}, f"processes exited: {self.exited}"
        assert self.statuses == dict.fromkeys(self.runs, "completed"), self.statuses
        assert self.problems == [], self.problems[:20]
        assert self.recovery_seconds is not None, "no item was done after the fault"
        assert self.recovery_seconds <= RECOVERY_SECONDS, self.recovery_seconds
        assert self.audit.clean(), self.audit


@dataclass(frozen=True)
class Injected:
    """When the fault began and when what it took away was back (`time.time()`); from when the
    runs had to be moving again: the backend's return, or the fault itself when it left the
    runs' backends and workers alone."""

    down: float
    up: float
    moving_from: float
    notes: dict[str, object] = field(default_factory=dict)
    # The runs the fault stopped, whose next item is waited for (empty: all the scene's runs).
    stopped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scene:
    """The runs in progress when the fault comes, each of its own tenant, and a tenant with no
    run for a fault that needs one (made beforehand: `create-account` takes seconds, in which
    the runs could end before the fault)."""

    tenants: list[Tenant]
    runs: list[str]
    spare: Tenant


Fault = Callable[[Deployment, Scene], Awaitable[Injected]]


@asynccontextmanager
async def running(deployment: Deployment) -> AsyncIterator[tuple[Scene, Watcher]]:
    """RUNS tenants with a run each, and a client watching the API throughout."""
    tenants = [await deployment.new_tenant() for _ in range(RUNS)]
    spare = await deployment.new_tenant()
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
        runs = [await deployment.start_run(http, tenant, KEYWORDS) for tenant in tenants]
    watcher = Watcher(deployment.url, tenants[0])
    async with watcher.watching():
        # Mid-stage: the first run has written a few items, and has more to do.
        await deployment.wait_for_items(runs[0], 4)
        yield Scene(tenants, runs, spare), watcher


async def scenario(deployment: Deployment, name: str, fault: Fault) -> Outcome:
    """Runs in progress, the fault, the runs to their end; what it all came to."""
    async with running(deployment) as (scene, watcher):
        runs = scene.runs
        injected = await fault(deployment, scene)
        statuses = await deployment.wait_until_over(runs, RUN_SECONDS)
    return Outcome(
        fault=name,
        runs=runs,
        statuses=statuses,
        recovery_seconds=await deployment.first_item_after(
            injected.stopped or runs, injected.moving_from
        ),
        audit=await audit(deployment.engine, runs),
        exited=deployment.exited(),
        problems=watcher.problems((injected.down, injected.up + GRACE_SECONDS)),
        notes=injected.notes,
    )


async def redis_outage(deployment: Deployment, scene: Scene) -> Injected:
    """Redis stopped for 20 s. Only what needs Redis may answer 503 meanwhile; a pause and a
    resume are made and answered as at any time (the worker learns of them from the run row,
    and the resumed run's slice is queued once Redis is back)."""
    down = time.time()
    await deployment.redis.stop()
    async with httpx.AsyncClient(base_url=deployment.url) as http:
        await asyncio.sleep(REDIS_OUTAGE_SECONDS / 2)
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert "redis" in ready.json()["error"]["message"]
        tenant, run_id = scene.tenants[-1], scene.runs[-1]
        for action, status in (("pause", "paused"), ("resume", "running")):
            changed = await http.post(
                f"/api/v1/automation/{action}/?run_id={run_id}", headers=tenant.headers
            )
            assert changed.status_code == 200, changed.text
            assert changed.json()["status"] == status
        await asyncio.sleep(REDIS_OUTAGE_SECONDS / 2)
    await deployment.redis.start()
    up = time.time()
    return Injected(down, up, up, {"readyz_while_down": ready.json()["error"]["message"]})


async def postgres_restart(deployment: Deployment, scene: Scene) -> Injected:
    down = time.time()
    await deployment.postgres.stop()
    await deployment.postgres.start()
    up = time.time()
    return Injected(down, up, up, {"down_seconds": round(up - down, 1)})


async def slice_holder(deployment: Deployment, run_id: str) -> Service | None:
    """The worker process driving the run now (its latest slice says which pid took it)."""
    async with deployment.engine.connect() as conn:
        pid = await conn.scalar(
            text(
                "SELECT (e.data->'worker'->>'pid')::int FROM run_events e "
                "JOIN automation_runs r ON r.id = e.run_pk WHERE r.run_id = :run_id "
                "AND e.kind = 'slice_started' ORDER BY e.id DESC LIMIT 1"
            ),
            {"run_id": run_id},
        )
    holders = [w for w in deployment.workers if w.process and w.process.pid == pid]
    return holders[0] if holders else None


async def worker_killed(deployment: Deployment, scene: Scene) -> Injected:
    """SIGKILL of the worker driving the first run: its runs go on in the other worker once
    their lease lapses. The killed worker is started again afterwards, as a supervisor would."""
    victim = await slice_holder(deployment, scene.runs[0])
    assert victim is not None, "the first run has a worker"
    held = [run for run in scene.runs if await slice_holder(deployment, run) is victim]
    down = time.time()
    assert await victim.stop(signal.SIGKILL) == -signal.SIGKILL
    await victim.start()
    return Injected(down, down, down, {"killed": victim.name}, stopped=tuple(held))


async def api_terminated_mid_request(deployment: Deployment, scene: Scene) -> Injected:
    """SIGTERM while a request is on its way in and a client follows a run's live stream: that
    request is answered in full, the stream ends (its client would reconnect) rather than hold
    the shutdown, the process exits cleanly, and a new one takes over on the same port."""
    api = deployment.api
    body_rest = asyncio.Event()
    following = asyncio.Event()

    async def follow(http: httpx.AsyncClient) -> int:
        lines = 0
        path = f"/api/v1/automation/runs/{scene.runs[0]}/events"
        async with http.stream("GET", path, headers=scene.tenants[0].headers) as stream:
            async for _ in stream.aiter_lines():
                lines += 1
                following.set()
        return lines

    async def body() -> AsyncIterator[bytes]:
        yield b'{"keywords": [{"keyword": "kept across a restart"'
        await body_rest.wait()
        yield b"}]}"

    tenant = scene.spare
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
        stream = asyncio.create_task(follow(http))
        await following.wait()
        request = asyncio.create_task(
            http.post(
                f"/api/v1/planner/keywords/?site_id={tenant.site_id}",
                content=body(),
                headers={**tenant.headers, "Content-Type": "application/json"},
            )
        )
        # The request's head and first bytes are out; nothing on the server says when it has
        # read them, so it is given a moment.
        await asyncio.sleep(0.5)
        down = time.time()
        assert api.process is not None
        api.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        body_rest.set()
        answered = await request
        exit_status = await api.stop()
        streamed = await stream
    assert answered.status_code == 200, answered.text
    assert answered.json()["created"] == 1
    # `automation api` is uvicorn, which ends by raising the signal it shut down on again.
    assert exit_status in (0, -signal.SIGTERM), api.log()[-3000:]
    assert streamed > 0
    await api.start()
    await deployment.wait_until_ready()
    # In `serve` the worker went down with the API: the runs move again once it is back.
    moving_from = time.time() if api.command == "serve" else down
    return Injected(down, time.time(), moving_from, {"answered_in_flight": answered.status_code})
