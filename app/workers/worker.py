"""The arq worker: its options, the resources its jobs share, and how it is started and stopped.

`worker_options(settings)` is the single description of the worker: `WorkerSettings` (for the
`arq` command), `automation worker` and the in-process worker of `automation serve` use it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from app.ai.registry import create_provider
from app.config import Settings
from app.db import create_engine, create_session_factory, open_first_connection
from app.redis import mend_redis_py
from app.runs.events import RunLog
from app.stages.context import WorkerDeps
from app.workers.cron import CRON_JOBS
from app.workers.jobs import job_functions
from app.workers.queue import ArqQueue
from app.workers.resilient import ResilientWorker

# arq polls Redis for jobs (its default: every 0.5 s). A job queued to start at once wakes the
# idle workers (`app.workers.wakeups`), so the poll only bounds what nobody announces (deferred
# jobs, retries, cron ticks, a wake-up lost with Redis): within 50 ms (SPEC §9b). An idle
# worker's polling costs about 1.2 % of a core at 50 ms (2.6 % at 20 ms).
POLL_DELAY_SECONDS = 0.05
# Every function sets its own timeout; this default only guards one registered without.
DEFAULT_JOB_TIMEOUT_SECONDS = 60
# The health key is refreshed this often; `arq ... --check` fails once it has expired.
HEALTH_CHECK_INTERVAL_SECONDS = 30


async def startup(ctx: dict[str, Any]) -> None:
    """Open what jobs share: a database engine, its session factory, the AI provider, the run
    log, the job queue (arq adds `redis`)."""
    mend_redis_py()
    settings: Settings = ctx["settings"]
    engine = create_engine(_required(settings.database_url, "DATABASE_URL"), settings.db_pool_size)
    ctx["engine"] = engine
    ctx["first_connection"] = asyncio.create_task(open_first_connection(engine))
    ctx["session_factory"] = create_session_factory(engine)
    ctx["deps"] = WorkerDeps(
        session_factory=ctx["session_factory"],
        redis=ctx["redis"],
        provider=create_provider(settings),
        log=RunLog(settings.log_path),
        settings=settings,
        queue=ArqQueue(ctx["redis"]),
    )


async def _startup_for_good(ctx: dict[str, Any]) -> None:
    """`startup` in a process that only runs the worker, then everything made so far (the
    modules, the provider's SDK, the engine) set aside from the garbage collector: it lives as
    long as the process, and a full collection otherwise walks it all with the event loop
    stopped (100-250 ms) whenever the objects kept grow by a quarter, as they do in the first
    runs. `automation serve` does the same in `app.serve.settle`."""
    await startup(ctx)
    gc.freeze()


async def shutdown(ctx: dict[str, Any]) -> None:
    if "deps" in ctx:
        await ctx["deps"].provider.aclose()
    if "first_connection" in ctx:
        ctx["first_connection"].cancel()
        await asyncio.wait([ctx["first_connection"]])
    if "engine" in ctx:
        await ctx["engine"].dispose()


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `arq.worker.Worker` for these settings."""
    _required(settings.database_url, "DATABASE_URL")
    return {
        "redis_settings": _redis_settings(_required(settings.redis_url, "REDIS_URL")),
        "functions": job_functions(settings),
        "cron_jobs": CRON_JOBS,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {"settings": settings},
        "poll_delay": POLL_DELAY_SECONDS,
        "max_jobs": settings.worker_max_jobs,
        "job_timeout": DEFAULT_JOB_TIMEOUT_SECONDS,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        # One key per host (container), so that a health check tells about this worker only.
        "health_check_key": f"arq:health-check:{socket.gethostname()}",
    }


def _redis_settings(url: str) -> RedisSettings:
    """The worker's connection: a dropped connection is retried at once by the client, as the
    API's is (`app.redis`); an outage is waited out by `ResilientWorker`, not by arq's retries."""
    return dataclasses.replace(
        RedisSettings.from_dsn(url),
        conn_retries=0,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[ConnectionError, TimeoutError],
    )


def build_worker(settings: Settings, **overrides: Any) -> ResilientWorker:
    """A worker for these settings; `overrides` (`burst`, `handle_signals`, ...) win.

    Call it inside the event loop that will run the worker: arq binds the worker to it.
    """
    return ResilientWorker(**{**worker_options(settings), **overrides})


def run_worker(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM (its own handlers), in a new event loop."""
    with _redis_close_deprecation_ignored():
        build_worker(settings, on_startup=_startup_for_good).run()


async def close_worker(worker: Worker) -> None:
    """Stop the worker (cancelling its jobs in flight, which arq queues again) and close it.

    arq's `close()` cancels the jobs in flight, then gathers them, and that gather re-raises a
    job's cancellation before the pool is closed and `on_shutdown` runs. So a job still running
    at shutdown is waited for here and the close finished; a cancellation of this task itself
    still goes up.
    """
    jobs = list(worker.tasks.values())
    with _redis_close_deprecation_ignored():
        try:
            await worker.close()
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            if jobs:
                await asyncio.wait(jobs)
            worker.tasks.clear()  # all done: arq's second pass only closes its resources
            await worker.close()


@contextmanager
def _redis_close_deprecation_ignored() -> Iterator[None]:
    # arq 0.28 closes its pool with redis-py's deprecated `close()` (python-arq/arq#418).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
        yield


def _required(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"the worker needs {name}")
    return value
