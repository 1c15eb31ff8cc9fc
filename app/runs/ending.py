"""The end of a run on the worker side: one door for it (SPEC §5, §9b).

`end_run` moves a run to `completed` or `failed` through the run door (`set_run_state`), only
while the caller still holds the run's fence (as every write of a worker to the run is fenced),
releases the credit holds the run left dangling in the same transaction, and registers what
follows the commit (`app.effects`): clearing the run's live state in Redis and, where the site
wants one, queueing the notification of its end. `end_run_unless_moved` answers a lost race
instead of raising: a pause, a cancel or another end got there first, or another worker took
the run.

A cancel from the API keeps only the transition (`app.runs.service.cancel_run`): the item in
flight settles its own hold, then the runner that stopped for it calls `settle_cancelled`.
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import NotRequired, TypedDict, Unpack

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.credits.charges import release_dangling
from app.effects import after_commit
from app.errors import InvalidTransition
from app.models.automation import AutomationRun, RunStatus, StoppedReason
from app.notifications.service import has_notification
from app.outage import Outage
from app.queue import JobQueue
from app.runs.events import RunLog
from app.runs.signals import clear_live
from app.runs.states import lock_run, set_run_state

ENDS = frozenset({RunStatus.COMPLETED, RunStatus.FAILED})


class Lost(StrEnum):
    """Why `end_run_unless_moved` left the run as it was."""

    # Its status changed first: a pause, a cancel, or another end.
    MOVED = "moved"
    # Its fence moved on: another worker holds the run now.
    TAKEN = "taken"


class Ending(TypedDict):
    """What `end_run` takes besides the run and its new status, for the callers that pass it on."""

    fence: int
    redis: Redis
    queue: JobQueue
    stopped_reason: NotRequired[StoppedReason | None]
    error_message: NotRequired[str | None]
    note: NotRequired[str | None]


class RunTaken(Exception):
    """The run's fence moved on: another worker holds the run, so this one must not end it."""


async def end_run(
    session: AsyncSession,
    run_log: RunLog,
    run_pk: int,
    to: RunStatus,
    *,
    fence: int,
    redis: Redis,
    queue: JobQueue,
    stopped_reason: StoppedReason | None = None,
    error_message: str | None = None,
    note: str | None = None,
) -> AutomationRun:
    """End the run held under `fence`; raises `RunTaken` if the fence moved on and
    `InvalidTransition` if the run is no longer running."""
    if to not in ENDS:
        raise ValueError(f"a run ends completed or failed, not {to.value}")
    held = await lock_run(session, run_pk)
    if held.fence != fence:
        raise RunTaken(f"run {held.run_id} is held under fence {held.fence}, not {fence}")
    run = await set_run_state(
        session,
        run_log,
        run_pk,
        to,
        stopped_reason=stopped_reason,
        error_message=error_message,
        note=note,
    )
    await release_dangling(session, run_pk)
    outage = Outage(f"run {run.run_id}")
    _clear_live_after_commit(session, redis, run.run_id, outage)
    if await has_notification(session, run.site_id):
        # Lost with Redis, it is queued again by the reaper (`_requeue_lost_notifications`).
        after_commit(
            session,
            partial(queue.enqueue_notification, run.run_id),
            name="queue run notification",
            outage=outage,
        )
    return run


async def end_run_unless_moved(
    session: AsyncSession,
    run_log: RunLog,
    run_pk: int,
    to: RunStatus,
    **ending: Unpack[Ending],
) -> AutomationRun | Lost:
    """`end_run`, answering why not when the race was lost instead of raising."""
    try:
        return await end_run(session, run_log, run_pk, to, **ending)
    except RunTaken:
        return Lost.TAKEN
    except InvalidTransition:
        return Lost.MOVED


async def settle_cancelled(session: AsyncSession, run_pk: int, *, fence: int, redis: Redis) -> bool:
    """The worker's part of a cancel made from the API: release the holds the run still has and,
    once that is committed, clear its live state. False (nothing done) if the fence moved on."""
    run = await lock_run(session, run_pk)
    if run.fence != fence:
        return False
    await release_dangling(session, run_pk)
    _clear_live_after_commit(session, redis, run.run_id, Outage(f"run {run.run_id}"))
    return True


def _clear_live_after_commit(
    session: AsyncSession, redis: Redis, run_id: str, outage: Outage
) -> None:
    # Left behind, it expires on its own (`LIVE_TTL_SECONDS`).
    after_commit(
        session, partial(clear_live, redis, run_id), name="clear live state", outage=outage
    )
