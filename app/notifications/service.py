"""Run notifications: a signed POST to the site's `notification_url` when a run completes, fails
or stops on its credit budget.

The body (`schemas`) is signed like the webhook publisher's (`app.outbound.signing`) and sent
through the SSRF-guarded `OutboundClient`, retried as `delivery` says up to
`publish_max_attempts`. Every attempt of one run's notification carries the same delivery id, so a
receiver can drop a repeat (arq delivers a job at least once). The outcome is a run event,
`notification_sent` or `notification_failed`, so it shows in the run's log; the run itself is
never changed by its notification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity.wait import wait_base

from app.config import Settings
from app.db import unit_of_work
from app.models.automation import (
    AutomationConfig,
    AutomationRun,
    RunEvent,
    RunStatus,
    StoppedReason,
)
from app.models.tenancy import Site
from app.notifications.delivery import BACKOFF, Delivery, send
from app.notifications.schemas import NotificationEvent, RunNotification, StageSummary
from app.outbound.client import OutboundClient
from app.pipeline.catalog import STAGE_NAMES
from app.pipeline.results import COUNTERS

log = structlog.get_logger(__name__)

SENT = "notification_sent"
FAILED = "notification_failed"
NOTIFICATION_EVENTS = (SENT, FAILED)
# A delivery error is kept in the run's log up to this length.
EXCERPT_CHARS = 200


class RunLog(Protocol):
    """Where the outcome is recorded: the run's log (`app.runs.events.RunLog`, which the caller
    passes in; this package sits below the runs package and does not import it)."""

    async def record(
        self,
        session: AsyncSession,
        run: AutomationRun,
        kind: str,
        message: str,
        *,
        level: str = "info",
        data: dict[str, Any] | None = None,
    ) -> object: ...


def event_of(status: str, stopped_reason: str | None) -> NotificationEvent | None:
    """What a run's end is announced as; None for a run that is not over or was cancelled (the
    user did that themselves)."""
    if status == RunStatus.FAILED:
        return NotificationEvent.FAILED
    if status == RunStatus.COMPLETED:
        if stopped_reason == StoppedReason.CREDIT_BUDGET_REACHED:
            return NotificationEvent.BUDGET_REACHED
        return NotificationEvent.COMPLETED
    return None


def delivery_id_of(run_id: str) -> str:
    """The same for every attempt and every re-delivery of one run's notification."""
    return f"run-notification:{run_id}"


def payload_of(
    run: AutomationRun, site: Site, event: NotificationEvent, settings: Settings
) -> RunNotification:
    stages = []
    for number, name in STAGE_NAMES.items():
        result: dict[str, Any] | None = getattr(run, f"stage_{number}_result")
        if result is None:
            continue
        stages.append(
            StageSummary(
                stage=number,
                name=name,
                skipped=bool(result.get("skipped")),
                partial=bool(result.get("partial")),
                errors=int(result.get("errors", 0)),
                counts={key: float(result.get(key, 0)) for key in COUNTERS[number]},
            )
        )
    return RunNotification(
        event=event,
        delivery_id=delivery_id_of(run.run_id),
        run_id=run.run_id,
        site_id=site.id,
        site_name=site.name,
        status=run.status,
        stopped_reason=run.stopped_reason,
        error_message=run.error_message,
        trigger_type=run.trigger_type,
        started_at=run.started_at,
        completed_at=run.completed_at,
        total_credits_used=run.total_credits_used,
        stages=stages,
        link=settings.absolute(f"/automation/runs/{run.run_id}"),
    )


@dataclass(frozen=True)
class _Pending:
    """A notification to send, read in one short transaction (no connection held while the
    receiver is called)."""

    run: AutomationRun
    event: NotificationEvent
    url: str
    secret: str
    body: bytes


async def notify_run(
    session_factory: async_sessionmaker[AsyncSession],
    run_log: RunLog,
    settings: Settings,
    run_id: str,
    *,
    backoff: wait_base = BACKOFF,
) -> str:
    """Send the run's notification unless it has none to send; returns what happened."""
    async with unit_of_work(session_factory) as session:
        pending = await _pending(session, run_id, settings)
    if isinstance(pending, str):
        return pending
    async with OutboundClient(settings) as client:
        delivery = await send(
            client,
            pending.url,
            pending.secret,
            pending.body,
            delivery_id_of(run_id),
            attempts=settings.publish_max_attempts,
            backoff=backoff,
        )
    async with unit_of_work(session_factory) as session:
        await _record(session, run_log, pending, delivery)
    log.info("run notification", run_id=run_id, sent=delivery.sent, attempts=delivery.attempts)
    return SENT if delivery.sent else FAILED


async def _pending(session: AsyncSession, run_id: str, settings: Settings) -> _Pending | str:
    run = await session.scalar(select(AutomationRun).where(AutomationRun.run_id == run_id))
    if run is None:
        return "no_run"
    event = event_of(run.status, run.stopped_reason)
    if event is None:
        return "not_notified"
    done = await session.scalar(
        select(RunEvent.id).where(RunEvent.run_pk == run.id, RunEvent.kind.in_(NOTIFICATION_EVENTS))
    )
    if done is not None:
        return "already_notified"
    config = await session.scalar(
        select(AutomationConfig).where(AutomationConfig.site_id == run.site_id)
    )
    if config is None or not config.notification_url or not config.notification_secret:
        return "no_url"
    site = await session.get_one(Site, run.site_id)
    payload = payload_of(run, site, event, settings)
    body = json.dumps(payload.model_dump(mode="json"), separators=(",", ":")).encode()
    return _Pending(run, event, config.notification_url, config.notification_secret, body)


async def _record(
    session: AsyncSession, run_log: RunLog, pending: _Pending, delivery: Delivery
) -> None:
    # The host only: a URL's path or query may carry a token of the receiver's.
    host = httpx.URL(pending.url).host
    tries = f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
    data: dict[str, Any] = {
        "event": pending.event.value,
        "host": host,
        "attempts": delivery.attempts,
        "status_code": delivery.status_code,
        "delivery_id": delivery_id_of(pending.run.run_id),
    }
    if delivery.sent:
        await run_log.record(
            session,
            pending.run,
            SENT,
            f"Notification {pending.event.value} sent to {host} "
            f"(HTTP {delivery.status_code}, {tries})",
            data=data,
        )
    else:
        error = (delivery.error or "")[:EXCERPT_CHARS]
        await run_log.record(
            session,
            pending.run,
            FAILED,
            f"Notification {pending.event.value} to {host} failed after {tries}: {error}",
            level="warning",
            data={**data, "error": error},
        )


async def has_notification(session: AsyncSession, site_id: int) -> bool:
    """Whether the site wants its runs' ends notified (so no job is queued for the others)."""
    url = await session.scalar(
        select(AutomationConfig.notification_url).where(AutomationConfig.site_id == site_id)
    )
    return bool(url)
