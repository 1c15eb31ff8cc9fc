"""The job that sends a run's notification once the run is over (SPEC §9; `app.notifications`).

A fault of PostgreSQL or Redis while the job reads the run or records the outcome is retried by
arq a few times with growing pauses. The last try ends without an error and the job keeps no
result, so nothing in Redis blocks its id: the reaper queues it again later
(`app.runs.reaper`). The run's `notification_sent` / `notification_failed` event is
what says a notification is done, never arq.
"""

from __future__ import annotations

from typing import Any

import structlog
from arq.worker import Retry

from app.config import Settings
from app.errors import is_backend_down
from app.notifications import delivery, service
from app.stages.context import WorkerDeps

log = structlog.get_logger(__name__)

# Slack for the two transactions around the delivery.
MARGIN_SECONDS = 10
# The pause before try n + 1 is n times this; after the last try the reaper takes over.
RETRY_STEP_SECONDS = 5.0
TRIES = 5
DEFERRED = "deferred_to_reaper"


def notify_timeout(settings: Settings) -> float:
    """Every attempt timing out, with the longest pause after each."""
    per_attempt = settings.publish_timeout_seconds + delivery.MAX_BACKOFF_SECONDS
    return settings.publish_max_attempts * per_attempt + MARGIN_SECONDS


async def notify_run(ctx: dict[str, Any], run_id: str) -> str:
    deps: WorkerDeps = ctx["deps"]
    try:
        return await service.notify_run(deps.session_factory, deps.log, deps.settings, run_id)
    except Exception as exc:
        if not is_backend_down(exc):
            raise
        tries = int(ctx.get("job_try", 1))
        log.warning("run notification deferred", run_id=run_id, error=repr(exc), job_try=tries)
        if tries >= TRIES:
            return DEFERRED
        raise Retry(defer=RETRY_STEP_SECONDS * tries) from exc
