"""The run read endpoints (SPEC §6, §11): the current run, history, logs, progress, the pipeline
overview, the live card, a run's detail and its event stream, the log files; and bad input."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Message

from app.api import automation as automation_api
from app.config import Settings
from app.db import unit_of_work
from app.models.automation import AutomationRun, RunStatus
from app.runs.events import RunLog
from tests.builders import (
    create_automation_run,
    create_cluster,
    create_content,
    create_idea,
    create_keyword,
    create_pipeline_rows,
    create_site,
    create_task,
)
from tests.engine import configure, feed, load_run, start, start_fed, work
from tests.factories import Tenant, create_tenant

API = "/api/v1/automation"
SessionFactory = async_sessionmaker[AsyncSession]

STAGE_NAMES = [
    "Keywords → Clusters",
    "Clusters → Ideas",
    "Ideas → Tasks",
    "Tasks → Content",
    "Content → Image prompts",
    "Image prompts → Images",
    "Review → Published",
]
RUN_SUMMARY_FIELDS = {
    "run_id",
    "status",
    "current_stage",
    "trigger_type",
    "started_at",
    "completed_at",
    "stopped_reason",
    "total_credits_used",
    "awaiting_review",
}


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=Decimal(100000))


@pytest.fixture
def run_log(settings: Settings) -> RunLog:
    return RunLog(settings.log_path)


@pytest.fixture
def quick_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The event stream re-reads the run every 10 ms instead of every half second."""
    monkeypatch.setattr(automation_api, "STREAM_POLL_SECONDS", 0.01)


async def get(
    client: httpx.AsyncClient, tenant: Tenant, path: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(f"{API}/{path}", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def act(client: httpx.AsyncClient, tenant: Tenant, action: str, run_id: str) -> None:
    response = await client.post(
        f"{API}/{action}/", params={"run_id": run_id}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text


async def completed_run(client: httpx.AsyncClient, tenant: Tenant, settings: Settings) -> str:
    """20 keywords through all seven stages on a real worker; one cluster goes on past stage 1,
    which keeps the run to a few articles."""
    await feed(client, tenant, 20)
    await configure(client, tenant, max_clusters_per_run=1)
    run_id = await start(client, tenant)
    await work(settings)
    return run_id


async def pending_everywhere(session_factory: SessionFactory, tenant: Tenant) -> None:
    """Rows waiting at every stage, a different number at each: 7 at stage 1 down to 1 at 7."""
    rows = await create_pipeline_rows(session_factory, tenant)  # 2 images (6), 1 in review (7)
    for _ in range(7):
        await create_keyword(session_factory, tenant)
    for _ in range(6):
        await create_cluster(session_factory, tenant)
    for _ in range(5):
        await create_idea(session_factory, tenant, cluster_id=rows.cluster_id)
    for _ in range(4):
        await create_task(session_factory, tenant)
    for _ in range(3):
        await create_content(session_factory, tenant, status="draft")


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: int | None


def parse_sse(body: str) -> list[SseEvent]:
    events: list[SseEvent] = []
    for block in body.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if not lines:
            continue
        fields: dict[str, list[str]] = {}
        for line in lines:
            name, _, value = line.partition(": ")
            fields.setdefault(name, []).append(value)
        event_id = fields.get("id")
        events.append(
            SseEvent(
                event=fields["event"][0],
                data="\n".join(fields.get("data", [])),
                id=int(event_id[0]) if event_id else None,
            )
        )
    return events


class LiveStream:
    """A GET through the ASGI app that reports its first chunk (httpx's ASGI transport gives the
    body only once the response is over)."""

    def __init__(self, app: FastAPI, path: str, tenant: Tenant) -> None:
        self.app = app
        self.path = path
        self.tenant = tenant
        self.first_chunk = asyncio.Event()
        self.chunks: list[bytes] = []

    async def read(self) -> str:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"authorization", self.tenant.headers["Authorization"].encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        requested = False
        never = asyncio.Event()

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()  # the client stays connected until the stream ends
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200
            elif message["type"] == "http.response.body" and message.get("body"):
                self.chunks.append(message["body"])
                self.first_chunk.set()

        await self.app(scope, receive, send)
        return b"".join(self.chunks).decode()


class TestCurrentRun:
    async def test_is_null_when_the_site_has_no_run(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        assert await get(client, tenant, "current_run/", site_id=tenant.site_id) == {"run": None}

    async def test_is_the_run_that_run_now_started(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await feed(client, tenant, 3)
        run_id = await start(client, tenant)

        run = (await get(client, tenant, "current_run/", site_id=tenant.site_id))["run"]

        assert run["run_id"] == run_id
        assert run["site_id"] == tenant.site_id
        assert (run["status"], run["trigger_type"], run["current_stage"]) == (
            "running",
            "manual",
            1,
        )
        assert run["initial_snapshot"]["stage_1_initial"] == 3
        assert [run[f"stage_{n}_result"] for n in range(1, 8)] == [None] * 7
        assert run["total_credits_used"] == 0
        assert run["stopped_reason"] is None

    async def test_is_null_again_once_the_run_is_cancelled(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start_fed(client, tenant)
        await act(client, tenant, "cancel", run_id)

        assert await get(client, tenant, "current_run/", site_id=tenant.site_id) == {"run": None}


class TestHistory:
    async def test_lists_the_sites_runs_newest_first(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        run_log: RunLog,
        tenant: Tenant,
    ) -> None:
        started = []
        for _ in range(3):
            started.append(await start_fed(client, tenant))
            await act(client, tenant, "cancel", started[-1])
        other_site = await create_site(session_factory, tenant)
        await create_automation_run(session_factory, tenant, run_log, site_id=other_site.id)

        page = await get(client, tenant, "history/", site_id=tenant.site_id)

        assert [run["run_id"] for run in page["items"]] == started[::-1]
        assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
        assert page["items"][0].keys() == RUN_SUMMARY_FIELDS
        assert {run["status"] for run in page["items"]} == {"cancelled"}
        assert {run["stopped_reason"] for run in page["items"]} == {"cancelled"}

    async def test_a_cancelled_run_shows_its_end_time(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await feed(client, tenant, 3)
        run_id = await start(client, tenant)
        await act(client, tenant, "cancel", run_id)

        (row,) = (await get(client, tenant, "history/", site_id=tenant.site_id))["items"]

        cancelled = await load_run(session_factory, run_id)
        assert cancelled.cancelled_at is not None
        assert row["completed_at"] is not None
        assert datetime.fromisoformat(row["completed_at"]) == cancelled.cancelled_at
        detail = await get(client, tenant, f"runs/{run_id}/")
        assert detail["completed_at"] == detail["cancelled_at"] == row["completed_at"]

    async def test_filters_by_status_trigger_and_start_time(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        run_log: RunLog,
        tenant: Tenant,
    ) -> None:
        runs = {}
        for name, status, trigger, started in (
            ("a", RunStatus.COMPLETED, "manual", "2026-01-10T12:00:00+00:00"),
            ("b", RunStatus.CANCELLED, "manual", "2026-01-20T00:00:00+00:00"),
            ("c", RunStatus.FAILED, "scheduled", "2026-01-20T12:00:00+00:00"),
            ("d", RunStatus.RUNNING, "scheduled", "2026-01-25T08:30:00+00:00"),
        ):
            run = await create_automation_run(session_factory, tenant, run_log, status=status)
            async with unit_of_work(session_factory) as session:
                await session.execute(
                    update(AutomationRun)
                    .where(AutomationRun.id == run.id)
                    .values(trigger_type=trigger, started_at=datetime.fromisoformat(started))
                )
            runs[run.run_id] = name

        async def names(**filters: str) -> tuple[list[str], int]:
            page = await get(client, tenant, "history/", site_id=tenant.site_id, **filters)
            return [runs[run["run_id"]] for run in page["items"]], page["total"]

        assert await names() == (["d", "c", "b", "a"], 4)
        assert await names(status="completed") == (["a"], 1)
        assert await names(trigger_type="scheduled") == (["d", "c"], 2)
        assert await names(status="failed", trigger_type="scheduled") == (["c"], 1)
        assert await names(status="paused") == ([], 0)
        # From `started_after` included to `started_before` excluded, in any offset.
        assert await names(
            started_after="2026-01-15T00:00:00Z", started_before="2026-01-20T12:00:00Z"
        ) == (["b"], 1)
        assert await names(started_after="2026-01-20T13:00:00+01:00") == (["d", "c"], 2)
        assert await names(started_before="2026-01-20T00:00:00.000001Z") == (["b", "a"], 2)
        assert await names(
            started_after="2026-01-21T00:00:00Z", started_before="2026-01-01T00:00:00Z"
        ) == ([], 0)

    async def test_limit_and_offset_choose_the_page(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        run_log: RunLog,
        tenant: Tenant,
    ) -> None:
        runs = [
            await create_automation_run(
                session_factory, tenant, run_log, status=RunStatus.COMPLETED
            )
            for _ in range(4)
        ]

        page = await get(client, tenant, "history/", site_id=tenant.site_id, limit=2, offset=1)

        assert [run["run_id"] for run in page["items"]] == [runs[2].run_id, runs[1].run_id]
        assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)

    async def test_shows_the_last_20_runs_by_default(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        run_log: RunLog,
        tenant: Tenant,
    ) -> None:
        runs = [
            await create_automation_run(
                session_factory, tenant, run_log, status=RunStatus.CANCELLED
            )
            for _ in range(21)
        ]

        page = await get(client, tenant, "history/", site_id=tenant.site_id)

        assert [run["run_id"] for run in page["items"]] == [r.run_id for r in runs[:0:-1]]
        assert page["total"] == 21


class TestLogs:
    async def test_gives_the_last_lines_oldest_first(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start_fed(client, tenant)
        await act(client, tenant, "pause", run_id)
        await act(client, tenant, "resume", run_id)
        await act(client, tenant, "pause", run_id)

        every = await get(client, tenant, "logs/", run_id=run_id)
        last_two = await get(client, tenant, "logs/", run_id=run_id, lines=2)

        assert len(every["lines"]) == 4
        assert "started (manual)" in every["lines"][0]
        assert last_two["run_id"] == run_id
        assert last_two["lines"] == every["lines"][2:]
        assert last_two["lines"][0].endswith("INFO Run resumed: continuing at stage 1")
        assert last_two["lines"][1].endswith(
            "INFO Run paused: takes effect after the item in flight"
        )
        assert last_two["log"] == "\n".join(last_two["lines"])

    @pytest.mark.parametrize("lines", [0, 5001, "all"])
    async def test_lines_outside_1_to_5000_is_400_naming_lines(
        self, client: httpx.AsyncClient, tenant: Tenant, lines: int | str
    ) -> None:
        run_id = await start_fed(client, tenant)

        response = await client.get(
            f"{API}/logs/", params={"run_id": run_id, "lines": lines}, headers=tenant.headers
        )

        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert [problem["field"] for problem in error["details"]] == ["lines"]

    async def test_5000_lines_is_allowed(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        run_id = await start_fed(client, tenant)
        assert len((await get(client, tenant, "logs/", run_id=run_id, lines=5000))["lines"]) == 1

    async def test_a_missing_run_id_is_400_naming_it(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.get(f"{API}/logs/", headers=tenant.headers)

        assert response.status_code == 400
        assert response.json()["error"]["message"] == "invalid input: run_id"

    async def test_an_unknown_run_is_404(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        response = await client.get(
            f"{API}/logs/", params={"run_id": "run_never_started"}, headers=tenant.headers
        )

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


class TestRunProgress:
    async def test_without_any_run_shows_what_is_pending(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await feed(client, tenant, 5)

        progress = await get(client, tenant, "run_progress/", site_id=tenant.site_id)

        assert progress["run"] is None
        assert progress["global_progress"] == {
            "total_items": 5,
            "completed_items": 0,
            "percentage": 0,
            "eta_seconds": None,
        }
        assert [(s["status"], s["input_count"]) for s in progress["stages"]] == [("pending", 5)] + [
            ("pending", 0)
        ] * 6
        assert progress["metrics"] == {
            "credits_used": 0,
            "duration_seconds": 0,
            "projected_remaining_credits": None,
        }
        assert progress["initial_snapshot"] is None

    async def test_an_active_run_is_running_at_stage_1(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await feed(client, tenant, 5)
        run_id = await start(client, tenant)

        progress = await get(client, tenant, "run_progress/", site_id=tenant.site_id)

        assert progress["run"]["run_id"] == run_id
        assert progress["run"]["status"] == "running"
        assert [s["status"] for s in progress["stages"]] == ["running"] + ["pending"] * 6
        assert progress["stages"][0]["input_count"] == 5
        assert progress["global_progress"]["percentage"] == 0

    async def test_a_completed_run_is_100_percent_with_every_stage_completed(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        run_id = await completed_run(client, tenant, settings)

        progress = await get(client, tenant, "run_progress/", site_id=tenant.site_id)

        run = await load_run(session_factory, run_id)
        assert progress.keys() == {
            "run",
            "global_progress",
            "stages",
            "metrics",
            "initial_snapshot",
        }
        assert progress["run"].keys() == RUN_SUMMARY_FIELDS
        assert (progress["run"]["run_id"], progress["run"]["status"]) == (run_id, "completed")
        assert progress["global_progress"].keys() == {
            "total_items",
            "completed_items",
            "percentage",
            "eta_seconds",
        }
        assert progress["global_progress"]["percentage"] == 100
        assert progress["global_progress"]["eta_seconds"] is None
        total = progress["global_progress"]["total_items"]
        assert progress["global_progress"]["completed_items"] == total > 0
        assert [s.keys() for s in progress["stages"]] == [
            {"number", "name", "status", "input_count", "processed_count"}
        ] * 7
        assert [(s["number"], s["name"]) for s in progress["stages"]] == list(
            enumerate(STAGE_NAMES, start=1)
        )
        assert [s["status"] for s in progress["stages"]] == ["completed"] * 7
        assert progress["stages"][0]["processed_count"] == 20
        assert all(s["processed_count"] == s["input_count"] for s in progress["stages"])
        # Stage 7 only counts the articles left for review when auto-approval is off.
        assert all(s["processed_count"] > 0 for s in progress["stages"][:6])
        assert progress["metrics"].keys() == {
            "credits_used",
            "duration_seconds",
            "projected_remaining_credits",
        }
        assert progress["metrics"]["projected_remaining_credits"] is None
        assert progress["metrics"]["credits_used"] == float(run.total_credits_used) > 0
        assert progress["metrics"]["duration_seconds"] >= 0
        assert progress["initial_snapshot"] == run.initial_snapshot

    async def test_a_run_id_chooses_an_earlier_run(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        first = await start_fed(client, tenant)
        await act(client, tenant, "cancel", first)
        await start_fed(client, tenant)

        progress = await get(client, tenant, "run_progress/", site_id=tenant.site_id, run_id=first)

        assert (progress["run"]["run_id"], progress["run"]["status"]) == (first, "cancelled")

    async def test_the_latest_run_shows_once_no_run_is_active(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start_fed(client, tenant)
        await act(client, tenant, "cancel", run_id)

        progress = await get(client, tenant, "run_progress/", site_id=tenant.site_id)

        assert (progress["run"]["run_id"], progress["run"]["stopped_reason"]) == (
            run_id,
            "cancelled",
        )


class TestInitialSnapshot:
    async def test_records_each_stages_pending_count_when_the_run_starts(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await pending_everywhere(session_factory, tenant)
        overview = await get(client, tenant, "pipeline_overview/", site_id=tenant.site_id)

        run_id = await start(client, tenant)

        expected = {f"stage_{n}_initial": 8 - n for n in range(1, 8)}
        expected["total_initial_items"] = 28
        assert [stage["pending"] for stage in overview["stages"]] == [7, 6, 5, 4, 3, 2, 1]
        run = await get(client, tenant, f"runs/{run_id}/")
        assert run["initial_snapshot"] == expected
        progress = await get(client, tenant, "run_progress/", site_id=tenant.site_id)
        assert progress["initial_snapshot"] == expected


class TestPipelineOverview:
    async def test_each_stage_has_its_name_pending_count_and_rows_by_status(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await pending_everywhere(session_factory, tenant)

        overview = await get(client, tenant, "pipeline_overview/", site_id=tenant.site_id)

        assert [(s["number"], s["name"], s["pending"]) for s in overview["stages"]] == [
            (n, name, 8 - n) for n, name in enumerate(STAGE_NAMES, start=1)
        ]
        assert [s["type"] for s in overview["stages"]] == [
            "AI",
            "AI",
            "local",
            "AI",
            "AI",
            "AI",
            "review",
        ]
        assert [s["counts"] for s in overview["stages"]] == [
            {"new": 7, "mapped": 2},
            {"new": 7},
            {"new": 5, "queued": 1},
            {"queued": 4, "completed": 1},
            {"draft": 3, "review": 1},
            {"pending": 2},
            {"draft": 3, "review": 1},
        ]
        assert overview["total_pending"] == 28

    async def test_an_empty_site_has_nothing_pending(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        overview = await get(client, tenant, "pipeline_overview/", site_id=tenant.site_id)

        assert [(s["pending"], s["counts"]) for s in overview["stages"]] == [(0, {})] * 7
        assert overview["total_pending"] == 0


class TestCurrentProcessing:
    async def test_a_run_no_worker_has_taken_yet_is_at_stage_1_with_nothing_in_flight(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await feed(client, tenant, 20)
        run_id = await start(client, tenant)

        card = await get(client, tenant, "current_processing/", site_id=tenant.site_id)

        assert card == {
            "run_id": run_id,
            "status": "running",
            "stage": 1,
            "stage_name": "Keywords → Clusters",
            "batch": 0,
            "batches": 0,
            "items": [],
            "processed": 0,
            "total": 20,
            "updated_at": None,
        }

    async def test_a_run_id_names_the_run(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        run_id = await start_fed(client, tenant)
        await act(client, tenant, "pause", run_id)

        card = await get(
            client, tenant, "current_processing/", site_id=tenant.site_id, run_id=run_id
        )

        assert (card["run_id"], card["status"], card["stage"]) == (run_id, "paused", 1)

    async def test_is_404_when_no_run_is_active(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start_fed(client, tenant)
        await act(client, tenant, "cancel", run_id)

        response = await client.get(
            f"{API}/current_processing/", params={"site_id": tenant.site_id}, headers=tenant.headers
        )

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


class TestARunOfAnotherSiteOfTheSameAccount:
    @pytest.mark.parametrize("path", ["current_processing/", "run_progress/"])
    async def test_is_404_for_this_site(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        run_log: RunLog,
        tenant: Tenant,
        path: str,
    ) -> None:
        other_site = await create_site(session_factory, tenant)
        run = await create_automation_run(session_factory, tenant, run_log, site_id=other_site.id)

        response = await client.get(
            f"{API}/{path}",
            params={"site_id": tenant.site_id, "run_id": run.run_id},
            headers=tenant.headers,
        )

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


class TestRunDetail:
    async def test_shows_the_run_with_its_stage_results_and_totals(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start_fed(client, tenant)
        await act(client, tenant, "pause", run_id)

        run = await get(client, tenant, f"runs/{run_id}/")

        assert run.keys() == {
            "run_id",
            "site_id",
            "trigger_type",
            "status",
            "current_stage",
            "started_at",
            "paused_at",
            "resumed_at",
            "cancelled_at",
            "completed_at",
            "total_credits_used",
            "initial_snapshot",
            *(f"stage_{n}_result" for n in range(1, 8)),
            "error_message",
            "stopped_reason",
            "heartbeat_at",
        }
        assert (run["run_id"], run["site_id"], run["status"]) == (
            run_id,
            tenant.site_id,
            "paused",
        )
        assert run["paused_at"] is not None
        assert run["completed_at"] is None

    async def test_an_unknown_run_is_404(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        response = await client.get(f"{API}/runs/run_never_started/", headers=tenant.headers)

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


class TestRunEventStream:
    @pytest.mark.usefixtures("quick_stream")
    async def test_a_completed_run_streams_its_log_its_progress_then_ends(
        self, client: httpx.AsyncClient, settings: Settings, tenant: Tenant
    ) -> None:
        run_id = await completed_run(client, tenant, settings)
        log = await get(client, tenant, "logs/", run_id=run_id, lines=5000)

        response = await client.get(f"{API}/runs/{run_id}/events", headers=tenant.headers)

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.text)
        logs = [e for e in events if e.event == "log"]
        assert [e.data for e in logs] == log["lines"]
        ids = [e.id for e in logs if e.id is not None]
        assert len(ids) == len(logs)
        assert ids == sorted(set(ids))
        progress = [json.loads(e.data) for e in events if e.event == "progress"]
        assert progress[-1] == await get(
            client, tenant, "run_progress/", site_id=tenant.site_id, run_id=run_id
        )
        assert progress[-1]["global_progress"]["percentage"] == 100
        assert (events[-1].event, json.loads(events[-1].data)) == ("end", {"status": "completed"})

    @pytest.mark.usefixtures("quick_stream")
    async def test_last_event_id_resumes_after_that_event(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start_fed(client, tenant)
        for action in ("pause", "resume", "cancel"):
            await act(client, tenant, action, run_id)
        every = parse_sse(
            (await client.get(f"{API}/runs/{run_id}/events", headers=tenant.headers)).text
        )
        logs = [e for e in every if e.event == "log"]
        assert len(logs) == 4
        seen = logs[1].id

        response = await client.get(
            f"{API}/runs/{run_id}/events",
            headers={**tenant.headers, "Last-Event-ID": str(seen)},
        )

        later = parse_sse(response.text)
        assert [(e.id, e.data) for e in later if e.event == "log"] == [
            (e.id, e.data) for e in logs[2:]
        ]
        assert later[-1].event == "end"

    @pytest.mark.usefixtures("quick_stream")
    async def test_a_stream_opened_on_a_running_run_ends_when_the_run_is_cancelled(
        self, app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start_fed(client, tenant)
        stream = LiveStream(app, f"{API}/runs/{run_id}/events", tenant)
        reading = asyncio.create_task(stream.read())

        await asyncio.wait_for(stream.first_chunk.wait(), timeout=10)
        await act(client, tenant, "cancel", run_id)
        events = parse_sse(await asyncio.wait_for(reading, timeout=10))

        progress = [json.loads(e.data) for e in events if e.event == "progress"]
        assert progress[0]["run"]["status"] == "running"
        assert progress[-1]["run"]["status"] == "cancelled"
        assert "Run cancelled" in [e for e in events if e.event == "log"][-1].data
        assert (events[-1].event, json.loads(events[-1].data)) == ("end", {"status": "cancelled"})


class TestRunLogFiles:
    async def test_a_run_writes_its_log_and_one_file_per_stage(
        self, client: httpx.AsyncClient, settings: Settings, tenant: Tenant
    ) -> None:
        run_id = await completed_run(client, tenant, settings)

        folder = (
            settings.log_path / "automation" / str(tenant.account_id) / str(tenant.site_id) / run_id
        )
        run_log = (folder / "automation_run.log").read_text(encoding="utf-8").splitlines()
        assert f"Run {run_id} started (manual)" in run_log[0]
        assert run_log[-1].endswith("INFO Run completed")
        for n, name in enumerate(STAGE_NAMES, start=1):
            stage_log = (folder / f"stage_{n}.log").read_text(encoding="utf-8")
            assert f"Stage {n} ({name}) started" in stage_log
            assert f"Stage {n} complete" in stage_log


# Stands for the tenant's own site, so that only the parameter under test is wrong.
SITE = object()


class TestBadParameters:
    @pytest.mark.parametrize(
        ("method", "path", "params", "field"),
        [
            ("GET", "current_run/", {"site_id": "abc"}, "site_id"),
            ("GET", "current_run/", {"site_id": 0}, "site_id"),
            ("GET", "current_run/", {}, "site_id"),
            ("POST", "run_now/", {"site_id": "abc"}, "site_id"),
            ("GET", "pipeline_overview/", {"site_id": -1}, "site_id"),
            ("GET", "history/", {"site_id": "1.5"}, "site_id"),
            ("GET", "history/", {"site_id": SITE, "limit": 0}, "limit"),
            ("GET", "history/", {"site_id": SITE, "limit": 501}, "limit"),
            ("GET", "history/", {"site_id": SITE, "offset": -1}, "offset"),
            ("GET", "history/", {"site_id": SITE, "status": "done"}, "status"),
            ("GET", "history/", {"site_id": SITE, "trigger_type": "cron"}, "trigger_type"),
            ("GET", "history/", {"site_id": SITE, "started_after": "yesterday"}, "started_after"),
            ("GET", "history/", {"site_id": SITE, "started_after": "2026-01-31"}, "started_after"),
            (
                "GET",
                "history/",
                {"site_id": SITE, "started_after": "2026-01-31T00:00:00"},
                "started_after",
            ),
            ("GET", "history/", {"site_id": SITE, "started_after": "1769817600"}, "started_after"),
            (
                "GET",
                "history/",
                {"site_id": SITE, "started_before": "2026-02-30T00:00:00Z"},
                "started_before",
            ),
            (
                "GET",
                "history/",
                {"site_id": SITE, "started_before": "0001-01-01T00:00:00+14:00"},
                "started_before",
            ),
            ("POST", "pause/", {"run_id": "r" * 65}, "run_id"),
            ("POST", "resume/", {}, "run_id"),
            ("POST", "cancel/", {"run_id": ""}, "run_id"),
            ("GET", "logs/", {"run_id": "r" * 65}, "run_id"),
            ("GET", "run_progress/", {"site_id": SITE, "run_id": "r" * 65}, "run_id"),
            ("GET", "current_processing/", {"site_id": SITE, "run_id": "r" * 65}, "run_id"),
            ("GET", f"runs/{'r' * 65}/", {}, "run_id"),
            ("GET", f"runs/{'r' * 65}/events", {}, "run_id"),
        ],
    )
    async def test_is_400_naming_the_parameter(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        method: str,
        path: str,
        params: dict[str, Any],
        field: str,
    ) -> None:
        params = {k: tenant.site_id if v is SITE else v for k, v in params.items()}
        response = await client.request(
            method, f"{API}/{path}", params=params, headers=tenant.headers
        )

        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert [problem["field"] for problem in error["details"]] == [field]

    async def test_a_bad_last_event_id_is_400_naming_it(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        run_id = await start_fed(client, tenant)

        response = await client.get(
            f"{API}/runs/{run_id}/events", headers={**tenant.headers, "Last-Event-ID": "-1"}
        )

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == "last-event-id"
