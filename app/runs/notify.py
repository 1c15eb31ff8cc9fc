"""Run notifications: a signed POST to the site's `notification_url` when a run completes, fails
or stops on its credit budget.

The body is signed like the webhook publisher's (`app.publishing.signing`) and sent through the
SSRF-guarded `OutboundClient`. Network errors, timeouts, 429 and 5xx answers are retried with
exponential backoff (a `Retry-After` is honoured, within bounds) up to `publish_max_attempts`; any
other answer is final. Every attempt of one run's notification carries the same delivery id, so a
receiver can drop a repeat (arq delivers a job at least once). The outcome is a run event,
`notification_sent` or `notification_failed`, so it shows in the run's log; the run itself is
never changed by its notification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx
import structlog
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from app.config import Settings
from app.db import unit_of_work
from app.models.automation import (
    AutomationConfig,
    AutomationRun,
    RunEvent,
    RunStatus,
    StoppedReason,
    TriggerType,
)
from app.models.tenancy import Site
from app.outbound import OutboundClient, OutboundError, UnsafeUrl
from app.pipeline.catalog import STAGE_NAMES
from app.pipeline.results import COUNTERS
from app.publishing.signing import signed_headers
from app.runs.events import RunLog
from app.schemas import CreditAmount

log = structlog.get_logger(__name__)

SENT = "notification_sent"
FAILED = "notification_failed"
NOTIFICATION_EVENTS = (SENT, FAILED)
# The longest pause between two attempts, whatever the backoff or a `Retry-After` asks.
MAX_BACKOFF_SECONDS = 30.0
BACKOFF = wait_exponential_jitter(initial=1, max=MAX_BACKOFF_SECONDS, jitter=1)
# A delivery error is kept in the run's log up to this length.
EXCERPT_CHARS = 200


class NotificationEvent(StrEnum):
    COMPLETED = "run.completed"
    FAILED = "run.failed"
    BUDGET_REACHED = "run.budget_reached"


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


class StageSummary(BaseModel):
    """One stage of the run: its counters as the run detail page shows them."""

    stage: int
    name: str
    skipped: bool
    partial: bool
    errors: int
    counts: dict[str, float]


class RunNotification(BaseModel):
    """The body of a notification."""

    event: NotificationEvent
    delivery_id: str
    run_id: str
    site_id: int
    site_name: str
    status: RunStatus
    stopped_reason: StoppedReason | None
    error_message: str | None
    trigger_type: TriggerType
    started_at: datetime
    completed_at: datetime | None
    total_credits_used: CreditAmount
    stages: list[StageSummary]
    link: str


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
        status=RunStatus(run.status),
        stopped_reason=StoppedReason(run.stopped_reason) if run.stopped_reason else None,
        error_message=run.error_message,
        trigger_type=TriggerType(run.trigger_type),
        started_at=run.started_at,
        completed_at=run.completed_at,
        total_credits_used=run.total_credits_used,
        stages=stages,
        link=settings.absolute(f"/automation/runs/{run.run_id}"),
    )


class RetryableAnswer(Exception):
    """A 429 or 5xx answer: worth another attempt, after `retry_after` seconds if it said so."""

    def __init__(self, status_code: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after


class _Backoff(wait_base):
    """The exponential backoff, or the receiver's `Retry-After` when it sent one."""

    def __init__(self, base: wait_base) -> None:
        self.base = base

    def __call__(self, retry_state: RetryCallState) -> float:
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(failure, RetryableAnswer) and failure.retry_after is not None:
            return min(failure.retry_after, MAX_BACKOFF_SECONDS)
        return min(float(self.base(retry_state)), MAX_BACKOFF_SECONDS)


@dataclass(frozen=True)
class Delivery:
    """How one notification went."""

    sent: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


async def send(
    client: OutboundClient,
    url: str,
    secret: str,
    body: bytes,
    delivery_id: str,
    *,
    attempts: int,
    backoff: wait_base = BACKOFF,
) -> Delivery:
    """POST the signed body, retrying what may pass on another attempt; never raises for the
    receiver's faults (they end in a `Delivery` that says what went wrong)."""
    made = 0
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=_Backoff(backoff),
        retry=retry_if_exception_type((httpx.TransportError, RetryableAnswer)),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                made += 1
                # Signed again on each attempt: the timestamp must be fresh for the receiver.
                headers = signed_headers(secret, body, delivery_id)
                response = await client.request("POST", url, headers=headers, content=body)
                if response.status_code == 429 or response.status_code >= 500:
                    raise RetryableAnswer(response.status_code, _retry_after(response))
                if response.is_success:
                    return Delivery(True, made, response.status_code)
                return Delivery(False, made, response.status_code, f"HTTP {response.status_code}")
    except RetryableAnswer as exc:
        return Delivery(False, made, exc.status_code, str(exc))
    except UnsafeUrl as exc:
        return Delivery(False, made, None, exc.message)
    except OutboundError as exc:
        return Delivery(False, made, None, str(exc))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Delivery(False, made, None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    raise AssertionError("the loop returns or raises")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


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
