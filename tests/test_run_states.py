"""The run state machine (SPEC §5): every transition through the one door (`set_run_state`), then
the same rules as a user meets them through the API: pause, resume and cancel, one active run per
site however many requests race, and the credit check before a run starts."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from redis.asyncio import Redis
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.errors import AlreadyRunning, InvalidTransition, NotFound
from app.models.automation import AutomationRun, RunEvent, RunStatus, StoppedReason, TriggerType
from app.models.planner import Keyword
from app.runs.events import RunLog
from app.runs.signals import read_signal
from app.runs.states import create_run, set_run_state
from app.workers.queue import run_job_id
from tests.builders import create_automation_run, create_content, create_keyword
from tests.engine import configure, feed, load_run, start
from tests.factories import Tenant, create_tenant

RUNNING, PAUSED, CANCELLED, COMPLETED, FAILED = (
    RunStatus.RUNNING,
    RunStatus.PAUSED,
    RunStatus.CANCELLED,
    RunStatus.COMPLETED,
    RunStatus.FAILED,
)
# SPEC §5, written out here rather than read from the module under test.
SPEC_TRANSITIONS = {
    (RUNNING, PAUSED),
    (PAUSED, RUNNING),
    (RUNNING, CANCELLED),
    (PAUSED, CANCELLED),
    (RUNNING, COMPLETED),
    (RUNNING, FAILED),
}
ALL_PAIRS = list(itertools.product(RunStatus, RunStatus))
ALLOWED_PAIRS = [pair for pair in ALL_PAIRS if pair in SPEC_TRANSITIONS]
REFUSED_PAIRS = [pair for pair in ALL_PAIRS if pair not in SPEC_TRANSITIONS]
# The times each status stamps (a cancelled run has ended too), and the stopped_reason it sets
# when none is given.
STAMPED = {
    PAUSED: ("paused_at",),
    RUNNING: ("resumed_at",),
    CANCELLED: ("cancelled_at", "completed_at"),
    COMPLETED: ("completed_at",),
    FAILED: ("completed_at",),
}
TIMESTAMPS = ("paused_at", "resumed_at", "cancelled_at", "completed_at")
DEFAULT_REASON = {CANCELLED: "cancelled", COMPLETED: "completed", FAILED: "failed"}
EVENT_KIND = {
    PAUSED: "run_paused",
    RUNNING: "run_resumed",
    CANCELLED: "run_cancelled",
    COMPLETED: "run_completed",
    FAILED: "run_failed",
}

SessionFactory = async_sessionmaker[AsyncSession]


def as_params(pairs: list[tuple[RunStatus, RunStatus]]) -> list[Any]:
    return [pytest.param(f, t, id=f"{f.value}->{t.value}") for f, t in pairs]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    """An account whose site has a keyword waiting, so that `run_now` has something to do."""
    tenant = await create_tenant(session_factory)
    await create_keyword(session_factory, tenant)
    return tenant


@pytest.fixture
def run_log(settings: Settings) -> RunLog:
    return RunLog(settings.log_path)


@dataclass(frozen=True)
class Recorded:
    """Everything a state change may write: the run's row, its events and its log file."""

    row: dict[str, Any]
    events: list[RunEvent]
    log_file: str


async def recorded(
    session_factory: SessionFactory, run_log: RunLog, run: AutomationRun
) -> Recorded:
    async with session_factory() as session:
        row = (
            await session.execute(select(AutomationRun.__table__).where(AutomationRun.id == run.id))
        ).mappings()
        events = await session.scalars(
            select(RunEvent).where(RunEvent.run_pk == run.id).order_by(RunEvent.id)
        )
        return Recorded(
            dict(row.one()),
            list(events),
            (run_log.folder(run) / "automation_run.log").read_text(encoding="utf-8"),
        )


async def run_count(session_factory: SessionFactory, site_id: int) -> int:
    async with session_factory() as session:
        count = await session.scalar(select(func.count()).where(AutomationRun.site_id == site_id))
    return int(count or 0)


async def act(
    client: httpx.AsyncClient, tenant: Tenant, action: str, run_id: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/automation/{action}/", params={"run_id": run_id}, headers=tenant.headers
    )


async def current_run(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any] | None:
    response = await client.get(
        "/api/v1/automation/current_run/",
        params={"site_id": tenant.site_id},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    run: dict[str, Any] | None = response.json()["run"]
    return run


async def log_of(client: httpx.AsyncClient, tenant: Tenant, run_id: str) -> list[str]:
    response = await client.get(
        "/api/v1/automation/logs/", params={"run_id": run_id}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    lines: list[str] = response.json()["lines"]
    return lines


def queue_of(redis: Redis) -> ArqRedis:
    return ArqRedis(connection_pool=redis.connection_pool)


class TestEveryAllowedTransition:
    @pytest.mark.parametrize(("from_", "to"), as_params(ALLOWED_PAIRS))
    async def test_moves_the_run_stamps_its_time_and_records_one_event(
        self,
        session_factory: SessionFactory,
        run_log: RunLog,
        tenant: Tenant,
        from_: RunStatus,
        to: RunStatus,
    ) -> None:
        run = await create_automation_run(session_factory, tenant, run_log, status=from_)
        before = await recorded(session_factory, run_log, run)
        asked_at = datetime.now(UTC)

        async with unit_of_work(session_factory) as session:
            moved = await set_run_state(session, run_log, run.id, to)

        after = await recorded(session_factory, run_log, run)
        assert moved.status == after.row["status"] == to
        for name in STAMPED[to]:
            assert asked_at <= after.row[name] <= datetime.now(UTC)
        untouched = [name for name in TIMESTAMPS if name not in STAMPED[to]]
        assert [after.row[name] for name in untouched] == [before.row[name] for name in untouched]
        assert after.row["stopped_reason"] == DEFAULT_REASON.get(to)
        new_events = after.events[len(before.events) :]
        assert [(e.kind, e.data) for e in new_events] == [
            (EVENT_KIND[to], {"from": from_, "to": to, "stopped_reason": DEFAULT_REASON.get(to)})
        ]
        assert after.log_file.startswith(before.log_file)
        assert new_events[0].message in after.log_file.removeprefix(before.log_file)


class TestEveryRefusedTransition:
    @pytest.mark.parametrize(("from_", "to"), as_params(REFUSED_PAIRS))
    async def test_raises_invalid_transition_and_changes_nothing(
        self,
        session_factory: SessionFactory,
        run_log: RunLog,
        tenant: Tenant,
        from_: RunStatus,
        to: RunStatus,
    ) -> None:
        run = await create_automation_run(session_factory, tenant, run_log, status=from_)
        before = await recorded(session_factory, run_log, run)

        async with session_factory() as session:
            with pytest.raises(InvalidTransition) as refused:
                await set_run_state(session, run_log, run.id, to)
            # Even a caller that commits after the refusal writes nothing.
            await session.commit()

        after = await recorded(session_factory, run_log, run)
        assert refused.value.code == "invalid_transition"
        assert refused.value.details == {"run_id": run.run_id, "status": from_, "requested": to}
        assert f"a run that is {from_.value}" in refused.value.message
        assert after.row == before.row
        assert [e.id for e in after.events] == [e.id for e in before.events]
        assert after.log_file == before.log_file


class TestTheDoorsOptions:
    async def test_a_given_stopped_reason_replaces_the_default(
        self, session_factory: SessionFactory, run_log: RunLog, tenant: Tenant
    ) -> None:
        run = await create_automation_run(session_factory, tenant, run_log)
        async with unit_of_work(session_factory) as session:
            await set_run_state(
                session,
                run_log,
                run.id,
                COMPLETED,
                stopped_reason=StoppedReason.CREDIT_BUDGET_REACHED,
            )
        assert (await load_run(session_factory, run.run_id)).stopped_reason == (
            "credit_budget_reached"
        )

    async def test_a_failure_keeps_its_error_message_and_logs_it_as_an_error(
        self, session_factory: SessionFactory, run_log: RunLog, tenant: Tenant
    ) -> None:
        run = await create_automation_run(session_factory, tenant, run_log)
        async with unit_of_work(session_factory) as session:
            await set_run_state(
                session, run_log, run.id, FAILED, error_message="the AI provider refused the key"
            )
        after = await recorded(session_factory, run_log, run)
        assert after.row["error_message"] == "the AI provider refused the key"
        assert after.row["stopped_reason"] == "failed"
        last = after.events[-1]
        assert last.level == "error"
        assert "the AI provider refused the key" in last.message
        assert "ERROR" in after.log_file.splitlines()[-1]

    async def test_an_unknown_run_is_not_found(
        self, session_factory: SessionFactory, run_log: RunLog
    ) -> None:
        async with session_factory() as session:
            with pytest.raises(NotFound):
                await set_run_state(session, run_log, 987_654_321, PAUSED)


class TestOneActiveRunPerSiteInTheDatabase:
    @pytest.mark.parametrize("status", [RUNNING, PAUSED])
    async def test_a_second_run_beside_an_active_one_is_refused(
        self, session_factory: SessionFactory, run_log: RunLog, tenant: Tenant, status: RunStatus
    ) -> None:
        await create_automation_run(session_factory, tenant, run_log, status=status)
        with pytest.raises(AlreadyRunning):
            await create_automation_run(session_factory, tenant, run_log)
        assert await run_count(session_factory, tenant.site_id) == 1

    @pytest.mark.parametrize("status", [CANCELLED, COMPLETED, FAILED])
    async def test_a_new_run_after_a_finished_one_starts(
        self, session_factory: SessionFactory, run_log: RunLog, tenant: Tenant, status: RunStatus
    ) -> None:
        await create_automation_run(session_factory, tenant, run_log, status=status)
        async with unit_of_work(session_factory) as session:
            run = await create_run(
                session,
                run_log,
                account_id=tenant.account_id,
                site_id=tenant.site_id,
                trigger_type=TriggerType.SCHEDULED,
                initial_snapshot={},
            )
        assert run.status == RUNNING
        assert await run_count(session_factory, tenant.site_id) == 2


class TestPauseResumeCancelThroughTheApi:
    """No worker runs here: a started run stays running in Postgres until the API moves it."""

    async def test_pausing_a_running_run_answers_paused_and_tells_the_worker(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        redis: Redis,
        tenant: Tenant,
    ) -> None:
        run_id = await start(client, tenant)

        response = await act(client, tenant, "pause", run_id)
        paused = await load_run(session_factory, run_id)

        assert response.status_code == 200, response.text
        assert response.json() == {
            "run_id": run_id,
            "status": "paused",
            "message": "Automation paused",
        }
        run = await current_run(client, tenant)
        assert run is not None
        assert (run["status"], run["stopped_reason"]) == ("paused", None)
        assert run["paused_at"] is not None
        assert await read_signal(redis, run_id, paused.slice) == "pause"
        assert "Run paused" in (await log_of(client, tenant, run_id))[-1]

    async def test_pausing_a_paused_run_is_400_invalid_transition_and_changes_nothing(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start(client, tenant)
        await act(client, tenant, "pause", run_id)
        run_before = await current_run(client, tenant)
        log_before = await log_of(client, tenant, run_id)

        response = await act(client, tenant, "pause", run_id)

        assert response.status_code == 400
        assert response.json() == {
            "error": {
                "code": "invalid_transition",
                "message": "cannot pause a run that is paused",
                "details": {"run_id": run_id, "status": "paused", "requested": "paused"},
            }
        }
        assert await current_run(client, tenant) == run_before
        assert await log_of(client, tenant, run_id) == log_before

    async def test_resuming_a_running_run_is_400_invalid_transition(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start(client, tenant)

        response = await act(client, tenant, "resume", run_id)

        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["message"]) == (
            "invalid_transition",
            "cannot resume a run that is running",
        )

    async def test_cancelling_a_cancelled_run_is_400_invalid_transition(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start(client, tenant)
        assert (await act(client, tenant, "cancel", run_id)).status_code == 200

        response = await act(client, tenant, "cancel", run_id)

        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["message"]) == (
            "invalid_transition",
            "cannot cancel a run that is cancelled",
        )
        assert error["details"]["status"] == "cancelled"

    async def test_resuming_a_paused_run_runs_it_again_in_a_new_queued_slice(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        redis: Redis,
        tenant: Tenant,
    ) -> None:
        run_id = await start(client, tenant)
        await act(client, tenant, "pause", run_id)
        paused = await load_run(session_factory, run_id)

        response = await act(client, tenant, "resume", run_id)

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "running"
        resumed = await load_run(session_factory, run_id)
        assert resumed.slice == paused.slice + 1
        assert resumed.resumed_at is not None
        assert resumed.current_stage == paused.current_stage
        job = Job(run_job_id(run_id, resumed.slice), queue_of(redis))
        assert await job.status() == JobStatus.queued
        assert await read_signal(redis, run_id, paused.slice) == "pause"
        assert await read_signal(redis, run_id, resumed.slice) is None
        assert "Run resumed: continuing at stage 1" in (await log_of(client, tenant, run_id))[-1]

    async def test_cancelling_a_paused_run_ends_it_as_cancelled(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        run_id = await start(client, tenant)
        await act(client, tenant, "pause", run_id)

        response = await act(client, tenant, "cancel", run_id)

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        run = await load_run(session_factory, run_id)
        assert (run.status, run.stopped_reason) == ("cancelled", "cancelled")
        assert run.cancelled_at is not None
        assert await current_run(client, tenant) is None


class TestCancelFreesTheSite:
    async def test_cancel_then_an_immediate_run_now_starts_a_new_run(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        first = await start(client, tenant)
        assert (await act(client, tenant, "cancel", first)).status_code == 200

        second = await start(client, tenant)

        assert second != first
        run = await current_run(client, tenant)
        assert run is not None
        assert (run["run_id"], run["status"]) == (second, "running")
        assert (await load_run(session_factory, first)).status == "cancelled"
        assert await run_count(session_factory, tenant.site_id) == 2


class TestOneActiveRunPerSiteThroughTheApi:
    async def test_twenty_concurrent_run_now_start_exactly_one_run(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/automation/run_now/",
                    params={"site_id": tenant.site_id},
                    headers=tenant.headers,
                )
                for _ in range(20)
            )
        )

        started = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 400]
        assert len(started) == 1, [r.text for r in responses]
        assert len(refused) == 19, [r.text for r in responses]
        assert {r.json()["error"]["code"] for r in refused} == {"already_running"}
        assert await run_count(session_factory, tenant.site_id) == 1
        run = await current_run(client, tenant)
        assert run is not None
        assert run["run_id"] == started[0].json()["run_id"]

    async def test_run_now_beside_a_paused_run_is_400_already_running_naming_it(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        run_id = await start(client, tenant)
        await act(client, tenant, "pause", run_id)

        response = await client.post(
            "/api/v1/automation/run_now/",
            params={"site_id": tenant.site_id},
            headers=tenant.headers,
        )

        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "already_running"
        assert error["details"] == {"run_id": run_id, "status": "paused"}
        assert await run_count(session_factory, tenant.site_id) == 1


class TestTheCreditCheckBeforeARun:
    async def test_run_now_without_enough_credits_is_400_with_estimate_and_balance(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(0))
        await feed(client, tenant, 10)

        response = await client.post(
            "/api/v1/automation/run_now/",
            params={"site_id": tenant.site_id},
            headers=tenant.headers,
        )

        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "insufficient_credits"
        details = error["details"]
        assert details["estimated_credits"] > 0
        assert details["required_with_buffer"] == pytest.approx(
            details["estimated_credits"] * 1.2, abs=0.01
        )
        assert details["current_balance"] == 0
        assert details["sufficient"] is False
        assert await run_count(session_factory, tenant.site_id) == 0
        assert await current_run(client, tenant) is None


async def run_now(client: httpx.AsyncClient, tenant: Tenant) -> httpx.Response:
    return await client.post(
        "/api/v1/automation/run_now/", params={"site_id": tenant.site_id}, headers=tenant.headers
    )


def nothing_to_do(response: httpx.Response) -> dict[str, Any]:
    """The error of a `nothing_to_do` answer."""
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "nothing_to_do"
    return error


class TestRunNowWithNothingToDo:
    async def test_an_empty_site_is_400_with_the_pending_counts_and_nothing_starts(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        redis: Redis,
    ) -> None:
        empty = await create_tenant(session_factory)

        error = nothing_to_do(await run_now(client, empty))

        assert error["message"] == (
            "nothing to do: no enabled stage has pending items; add keywords first"
        )
        assert error["details"] == {
            "pending": {f"stage_{n}": 0 for n in range(1, 8)},
            "total_pending": 0,
            "disabled_stages": [],
            "auto_approval_enabled": True,
        }
        assert await run_count(session_factory, empty.site_id) == 0
        assert await current_run(client, empty) is None
        assert await queue_of(redis).queued_jobs() == []

    async def test_items_waiting_only_for_disabled_stages_are_not_work(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await feed(client, tenant, 3)
        await configure(client, tenant, stage_1_enabled=False)

        error = nothing_to_do(await run_now(client, tenant))

        assert "disabled stages have pending items: 1" in error["message"]
        assert error["details"]["pending"]["stage_1"] == 3
        assert error["details"]["disabled_stages"] == [1]
        assert await run_count(session_factory, tenant.site_id) == 0

    async def test_articles_in_review_are_work_only_where_stage_7_approves_them(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await create_content(session_factory, tenant)
        await publishing(client, tenant, auto_approval_enabled=False)

        error = nothing_to_do(await run_now(client, tenant))

        assert "1 articles in review wait for approval by hand" in error["message"]
        assert error["details"]["pending"]["stage_7"] == 1
        assert error["details"]["auto_approval_enabled"] is False

        await publishing(client, tenant, auto_approval_enabled=True)

        response = await run_now(client, tenant)
        assert response.status_code == 200, response.text

    async def test_one_item_pending_in_any_enabled_stage_starts_a_run(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await create_content(session_factory, tenant, status="draft")

        response = await run_now(client, tenant)

        assert response.status_code == 200, response.text
        run = await current_run(client, tenant)
        assert run is not None
        assert run["initial_snapshot"]["stage_5_initial"] == 1

    async def test_keywords_added_while_run_now_decides_never_give_an_empty_run(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        """The check counts in the transaction that creates the run: a run_now racing the
        first keyword either sees it (and the run has it in its snapshot) or starts nothing."""
        tenant = await create_tenant(session_factory)

        async def add_keyword(n: int, delay: float) -> httpx.Response:
            await asyncio.sleep(delay)
            return await client.post(
                f"/api/v1/planner/keywords/?site_id={tenant.site_id}",
                json={"keywords": [{"keyword": f"race {n}"}]},
                headers=tenant.headers,
            )

        for n, delay in enumerate([0, 0.002, 0.005, 0.01, 0.02] * 2):
            added, answered = await asyncio.gather(add_keyword(n, delay), run_now(client, tenant))
            assert added.status_code == 200, added.text
            if answered.status_code == 200:
                run = await current_run(client, tenant)
                assert run is not None
                assert run["initial_snapshot"]["total_initial_items"] >= 1
                assert (await act(client, tenant, "cancel", run["run_id"])).status_code == 200
            else:
                nothing_to_do(answered)
                assert await current_run(client, tenant) is None
            async with unit_of_work(session_factory) as session:
                await session.execute(delete(Keyword).where(Keyword.site_id == tenant.site_id))


async def publishing(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> None:
    response = await client.put(
        f"/api/v1/publishing/settings/?site_id={tenant.site_id}",
        json=fields,
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
