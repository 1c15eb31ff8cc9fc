"""The job that sends a run's notification once the run is over (SPEC §9; `app.runs.notify`)."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.runs import notify
from app.stages.context import Engine

# Slack for the two transactions around the delivery.
MARGIN_SECONDS = 10


def notify_timeout(settings: Settings) -> float:
    """Every attempt timing out, with the longest pause after each."""
    per_attempt = settings.publish_timeout_seconds + notify.MAX_BACKOFF_SECONDS
    return settings.publish_max_attempts * per_attempt + MARGIN_SECONDS


async def notify_run(ctx: dict[str, Any], run_id: str) -> str:
    engine: Engine = ctx["engine_deps"]
    return await notify.notify_run(engine.session_factory, engine.log, engine.settings, run_id)
