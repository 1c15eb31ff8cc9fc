"""The arq worker's options and the resources its jobs share.

`worker_options(settings)` is the single description of the worker: `WorkerSettings` (for the
`arq` command), `automation worker` and the in-process worker of `automation serve` use it.
"""

from __future__ import annotations

import socket
from typing import Any

from arq.connections import RedisSettings

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.workers.cron import CRON_JOBS

# A job starts within ~100 ms of being enqueued (arq polls Redis; its default is 0.5 s).
POLL_DELAY_SECONDS = 0.05
# Every function sets its own timeout; this default only guards one registered without.
DEFAULT_JOB_TIMEOUT_SECONDS = 60
# The health key is refreshed this often; `arq ... --check` fails once it has expired.
HEALTH_CHECK_INTERVAL_SECONDS = 30


async def startup(ctx: dict[str, Any]) -> None:
    """Open what jobs share: a database engine and its session factory (arq adds `redis`)."""
    settings: Settings = ctx["settings"]
    engine = create_engine(_required(settings.database_url, "DATABASE_URL"), settings.db_pool_size)
    ctx["engine"] = engine
    ctx["session_factory"] = create_session_factory(engine)


async def shutdown(ctx: dict[str, Any]) -> None:
    if "engine" in ctx:
        await ctx["engine"].dispose()


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `arq.worker.Worker` for these settings."""
    _required(settings.database_url, "DATABASE_URL")
    return {
        "redis_settings": RedisSettings.from_dsn(_required(settings.redis_url, "REDIS_URL")),
        "cron_jobs": CRON_JOBS,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {"settings": settings},
        "poll_delay": POLL_DELAY_SECONDS,
        "job_timeout": DEFAULT_JOB_TIMEOUT_SECONDS,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        # One key per host (container), so that a health check tells about this worker only.
        "health_check_key": f"arq:health-check:{socket.gethostname()}",
    }


def _required(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"the worker needs {name}")
    return value
