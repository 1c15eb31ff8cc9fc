"""Automation runs (SPEC §6): start, steer and watch a site's runs.

Paths are the reference's; the site is chosen by `site_id`, the run by `run_id`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api import polls
from app.api.deps import (
    API_REDIS,
    PrincipalDep,
    QueueDep,
    RedisDep,
    SessionDep,
    SiteDep,
    SiteIdQuery,
)
from app.api.errors import ERROR_RESPONSES
from app.db import unit_of_work
from app.effects import after_commit
from app.errors import NotFound, is_backend_down
from app.http_server import shutting_down
from app.models.automation import AutomationRun, RunEvent, RunStatus, TriggerType
from app.queue import JobQueue
from app.runs import progress, service
from app.runs.events import RunLog
from app.runs.schemas import (
    CurrentRunOut,
    LogOut,
    PipelineOverview,
    ProcessingOut,
    RunChanged,
    RunOut,
    RunProgress,
    RunStarted,
    RunSummary,
)
from app.runs.signals import send_signal
from app.schemas import MAX_ID, MAX_OFFSET, Page, Pagination, Text, page_of
from app.tenancy import service as tenancy

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1/automation", tags=["automation"], responses=ERROR_RESPONSES)

RunIdQuery = Annotated[Text, Query(min_length=1, max_length=64, description="The run's `run_id`.")]
RunIdPath = Annotated[Text, Path(min_length=1, max_length=64, description="The run's `run_id`.")]
OptionalRunId = Annotated[
    Text | None,
    Query(min_length=1, max_length=64, description="The run's `run_id`."),
]
# RFC 3339, the profile of ISO 8601 that names an instant: a date, a time and its offset.
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _instant(value: Any) -> Any:
    """An ISO 8601 date and time with its offset, as an aware datetime in UTC."""
    if not isinstance(value, str):
        return value
    if not _INSTANT.fullmatch(value.upper()):
        raise ValueError(
            "must be an ISO 8601 date and time with its offset, e.g. 2026-01-31T00:00:00Z"
        )
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def _instant_query(description: str) -> Any:
    return Query(description=description + " An ISO 8601 date and time with its offset.")


StartedAfter = Annotated[
    datetime | None,
    _instant_query("Only runs started at or after this instant."),
    BeforeValidator(_instant),
]
StartedBefore = Annotated[
    datetime | None,
    _instant_query("Only runs started before this instant."),
    BeforeValidator(_instant),
]
# The SSE stream checks for new events this often (and sends a keep-alive comment when idle).
STREAM_POLL_SECONDS = 0.5
STREAM_KEEPALIVE_SECONDS = 15


async def get_run_log(request: Request) -> RunLog:
    run_log: RunLog = request.app.state.run_log
    return run_log


RunLogDep = Annotated[RunLog, Depends(get_run_log)]


async def get_run(
    session: SessionDep, principal: PrincipalDep, run_id: RunIdQuery
) -> AutomationRun:
    return await service.find_run(session, principal.account_id, run_id)


RunDep = Annotated[AutomationRun, Depends(get_run)]


@router.post(
    "/run_now/",
    response_model=RunStarted,
    summary="Start a run now",
    description="Checks that no run is active for the site (400 `already_running`), that some "
    "enabled stage has pending items (400 `nothing_to_do`, with the pending counts: nothing is "
    "started), and the balance against 1.2 times the estimate (400 `insufficient_credits`), "
    "records the pending counts "
    "as `initial_snapshot`, and answers at once with the `run_id`; a worker picks the run up "
    "within about 100 ms.",
)
async def run_now(
    site: SiteDep, session: SessionDep, queue: QueueDep, run_log: RunLogDep
) -> RunStarted:
    run = await service.start_run(session, run_log, site, TriggerType.MANUAL)
    _queue_slice(session, queue, run)
    return RunStarted(run_id=run.run_id, status=run.status, message="Automation started")


# A state change is answered once it is committed in PostgreSQL, the truth; what follows in
# Redis (the signal, the queued slice: effects after the commit) is best effort. A signal lost
# with Redis is made up for by the runner, which reads the run row at every batch boundary (and
# before every item while Redis is down); a slice not queued is queued by the reaper once Redis
# is back. So a client is never told "retry" for a change that was made.
STATE_CHANGE_NOTE = (
    " The change is made once it is committed, also while Redis is unreachable: the worker then "
    "learns of it from the database."
)


@router.post(
    "/pause/",
    response_model=RunChanged,
    summary="Pause a run after its item in flight",
    description="Takes effect after the item in flight." + STATE_CHANGE_NOTE,
)
async def pause(
    run: RunDep, session: SessionDep, redis: RedisDep, run_log: RunLogDep
) -> RunChanged:
    run = await service.pause_run(session, run_log, run)
    _signal(session, redis, run, "pause")
    return RunChanged(run_id=run.run_id, status=run.status, message="Automation paused")


@router.post(
    "/resume/",
    response_model=RunChanged,
    summary="Resume a paused run at its stage",
    description="Continues from the stage it was paused in, in a new slice." + STATE_CHANGE_NOTE,
)
async def resume(
    run: RunDep, session: SessionDep, queue: QueueDep, run_log: RunLogDep
) -> RunChanged:
    run = await service.resume_run(session, run_log, run)
    _queue_slice(session, queue, run)
    return RunChanged(run_id=run.run_id, status=run.status, message="Automation resumed")


@router.post(
    "/cancel/",
    response_model=RunChanged,
    summary="Cancel a run after its item in flight",
    description="The site is free at once: a new run can start while the cancelled one's last "
    "item finishes." + STATE_CHANGE_NOTE,
)
async def cancel(
    run: RunDep, session: SessionDep, redis: RedisDep, run_log: RunLogDep
) -> RunChanged:
    run = await service.cancel_run(session, run_log, run)
    _signal(session, redis, run, "cancel")
    return RunChanged(run_id=run.run_id, status=run.status, message="Automation cancelled")


@router.get("/current_run/", response_model=CurrentRunOut, summary="The site's active run")
async def current_run(
    request: Request, principal: PrincipalDep, site_id: SiteIdQuery
) -> CurrentRunOut:
    return await polls.current_run_of(request.app.state.poll_pool, principal.account_id, site_id)


@router.get(
    "/pipeline_overview/",
    response_model=PipelineOverview,
    summary="Pending rows per stage, and their statuses",
)
async def pipeline_overview(site: SiteDep, session: SessionDep) -> PipelineOverview:
    return await progress.pipeline_overview(session, site.id)


@router.get(
    "/current_processing/",
    response_model=ProcessingOut,
    summary="What a run is processing right now",
    description="The stage, batch n of m, the items in flight (id and title) and the stage's "
    "processed/total. Without `run_id`: the site's active run (404 when there is none).",
)
async def current_processing(
    site: SiteDep,
    session: SessionDep,
    principal: PrincipalDep,
    redis: RedisDep,
    run_id: OptionalRunId = None,
) -> ProcessingOut:
    run = await _site_run(session, site.id, principal.account_id, run_id, active_only=True)
    return await progress.current_processing(redis, run)


@router.get(
    "/run_progress/",
    response_model=RunProgress,
    summary="A run's progress over the whole pipeline",
    description="Without `run_id`: the site's active run, else its latest. `run` is null when "
    "the site has never run.",
)
async def run_progress(
    request: Request,
    principal: PrincipalDep,
    *,
    # In this order, as the OpenAPI document had them when the site came from `SiteDep`.
    run_id: OptionalRunId = None,
    site_id: SiteIdQuery,
) -> RunProgress:
    if run_id is None:
        pool = request.app.state.poll_pool
        latest = await polls.latest_progress_of(pool, principal.account_id, site_id)
        if latest is not None:
            return latest
    async with request.app.state.read_session_factory() as session:
        if run_id is None:
            return await progress.progress_without_run(session, site_id)
        site = await tenancy.get_site(session, principal.account_id, site_id)
        run = await _site_run(session, site.id, principal.account_id, run_id)
    return progress.run_progress(run)


@router.get(
    "/history/",
    response_model=Page[RunSummary],
    summary="A site's runs, newest first",
    description='The last 20 by default. Filters (000 "Viewing History"): `status`, '
    "`trigger_type`, and the start time from `started_after` (included) to `started_before` "
    "(excluded); a bad value is a 400 naming it.",
)
async def history(
    site: SiteDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Runs per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Runs to skip.")] = 0,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    trigger_type: Annotated[
        TriggerType | None, Query(description="Only runs started this way.")
    ] = None,
    started_after: StartedAfter = None,
    started_before: StartedBefore = None,
) -> Page[RunSummary]:
    filters = service.HistoryFilters(status, trigger_type, started_after, started_before)
    rows, total = await service.history(session, site.id, filters, limit=limit, offset=offset)
    return page_of(RunSummary, rows, total, Pagination(limit=limit, offset=offset))


@router.get("/logs/", response_model=LogOut, summary="The last lines of a run's log")
async def logs(
    run: RunDep,
    session: SessionDep,
    lines: Annotated[
        int, Query(ge=1, le=service.MAX_LOG_LINES, description="How many lines (1..5000).")
    ] = 100,
) -> LogOut:
    text = await service.log_lines(session, run, lines)
    return LogOut(run_id=run.run_id, lines=text, log="\n".join(text))


@router.get("/runs/{run_id}/", response_model=RunOut, summary="One run")
async def run_detail(
    session: SessionDep,
    principal: PrincipalDep,
    run_id: RunIdPath,
) -> RunOut:
    return RunOut.model_validate(await service.find_run(session, principal.account_id, run_id))


@router.get(
    "/runs/{run_id}/events",
    summary="A run's log and progress, live (Server-Sent Events)",
    description="`log` events carry each log line (id = the event's id: reconnecting with "
    "`Last-Event-ID` resumes after it); `progress` events carry the run's progress whenever it "
    "changes; the stream ends with an `end` event once the run is over.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_events(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    run_id: RunIdPath,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, le=MAX_ID, description="The id of the last `log` event received."),
    ] = None,
) -> StreamingResponse:
    run = await service.find_run(session, principal.account_id, run_id)
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    stream = _event_stream(request, factory, run.id, last_event_id or 0)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _event_stream(
    request: Request,
    factory: async_sessionmaker[AsyncSession],
    run_pk: int,
    after: int,
) -> AsyncIterator[str]:
    last_progress = ""
    idle = 0.0
    # A server shutting down ends the stream: the client reconnects with `Last-Event-ID`.
    while not shutting_down(request.app) and not await request.is_disconnected():
        try:
            run, events, state = await _stream_step(factory, run_pk, after)
        except Exception as exc:
            if not is_backend_down(exc):
                raise
            events = []  # the database is away: the stream waits for it, kept alive
        else:
            for event in events:
                after = event.id
                yield _sse("log", service.format_event(event), event.id)
            snapshot = state.model_dump_json()
            if snapshot != last_progress:
                last_progress = snapshot
                yield _sse("progress", snapshot)
            if run.status not in (RunStatus.RUNNING, RunStatus.PAUSED) and not events:
                yield _sse("end", json.dumps({"status": run.status}))
                return
        idle = 0.0 if events else idle + STREAM_POLL_SECONDS
        if idle >= STREAM_KEEPALIVE_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(STREAM_POLL_SECONDS)


async def _stream_step(
    factory: async_sessionmaker[AsyncSession], run_pk: int, after: int
) -> tuple[AutomationRun, list[RunEvent], RunProgress]:
    """The run, its events after `after`, and its progress, read together."""
    async with unit_of_work(factory) as session:
        # The run before its events: an end seen here has its last events committed already.
        run = await session.get_one(AutomationRun, run_pk, populate_existing=True)
        events = list(
            await session.scalars(
                select(RunEvent)
                .where(RunEvent.run_pk == run_pk, RunEvent.id > after)
                .order_by(RunEvent.id)
                .limit(500)
            )
        )
        state = progress.run_progress(run)
    return run, events, state


def _sse(event: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"{head}event: {event}\n{body}\n"


async def _site_run(
    session: AsyncSession,
    site_id: int,
    account_id: int,
    run_id: str | None,
    *,
    active_only: bool = False,
) -> AutomationRun:
    if run_id is None:
        run = await service.active_run(session, site_id) if active_only else None
        if run is None:
            raise NotFound("no active run for this site")
        return run
    run = await service.find_run(session, account_id, run_id)
    if run.site_id != site_id:
        raise NotFound("run not found")
    return run


def _queue_slice(session: AsyncSession, queue: JobQueue, run: AutomationRun) -> None:
    """Queue the run's slice once the run is committed. If Redis fails then, the run is
    committed anyway and the reaper queues it once Redis answers again, so the answer stays a
    success."""
    action = partial(queue.enqueue_run, run.run_id, run.slice)
    after_commit(session, action, name="queue run slice", outage=API_REDIS)


def _signal(session: AsyncSession, redis: Redis, run: AutomationRun, signal: str) -> None:
    """Send the runner the signal once the change is committed (lost, the runner reads the
    change from the run row at its next batch boundary)."""
    action = partial(send_signal, redis, run.run_id, signal, run.slice)
    after_commit(session, action, name=f"send {signal} signal", outage=API_REDIS)
