"""Enqueueing: the only place that knows arq's job names and ids (SPEC §15: arq stays behind
`app/workers/`). `ArqQueue` is the `app.queue.JobQueue` the API and the jobs are given. Job ids
are deterministic, so enqueueing one twice is a no-op. A job due at once is announced to the idle
workers (`app.workers.wakeups`), which take it without waiting for their next poll."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from redis.asyncio import Redis

from app.workers.wakeups import announce_job

RUN_JOB = "run_automation"
NOTIFY_JOB = "notify_run"
PUBLISH_JOB = "publish_due"


def run_job_id(run_id: str, slice_no: int) -> str:
    return f"run:{run_id}:slice:{slice_no}"


def notify_job_id(run_id: str) -> str:
    return f"notify:{run_id}"


class ArqQueue:
    """The job queue on arq, over a Redis client's connection pool."""

    def __init__(self, redis: Redis) -> None:
        self._redis = (
            redis
            if isinstance(redis, ArqRedis)
            else ArqRedis(connection_pool=redis.connection_pool)
        )

    async def enqueue_run(self, run_id: str, slice_no: int) -> bool:
        """Queue slice `slice_no` of the run; False if that slice was already queued or done."""
        job_id = run_job_id(run_id, slice_no)
        job = await self._redis.enqueue_job(RUN_JOB, run_id, slice_no, _job_id=job_id)
        return await self._announced(job)

    async def slice_waiting(self, run_id: str, slice_no: int) -> bool:
        """Whether the run's slice job is still in the queue, not yet taken by any worker (all
        of them are busy): the run is not stalled, only waiting its turn."""
        status = await Job(run_job_id(run_id, slice_no), self._redis).status()
        return status in (JobStatus.queued, JobStatus.deferred)

    async def slice_error(self, run_id: str, slice_no: int) -> str | None:
        """Why the run's slice job failed, while arq still keeps its result; None if it did not
        fail or the result is gone."""
        info = await Job(run_job_id(run_id, slice_no), self._redis).result_info()
        if info is None or info.success:
            return None
        return f"{type(info.result).__name__}: {info.result}"

    async def enqueue_notification(self, run_id: str) -> bool:
        """Queue the notification of the run's end; False if it was already queued or sent."""
        job = await self._redis.enqueue_job(NOTIFY_JOB, run_id, _job_id=notify_job_id(run_id))
        return await self._announced(job)

    async def enqueue_publish(self) -> bool:
        """Queue a publish pass for the start of the next second, beside the cron's (an article
        came due now: an immediate slot, a retry). Whatever is committed before then goes out in
        that one pass: a stage approving a batch, or many approvals at once, make one pass, not
        many."""
        second = int(time.time()) + 1
        job = await self._redis.enqueue_job(
            PUBLISH_JOB,
            _job_id=f"publish:{second}",
            _defer_until=datetime.fromtimestamp(second, UTC),
        )
        return job is not None

    async def _announced(self, job: Job | None) -> bool:
        """Whether the job was queued (None: it was already); if it was, the workers hear it."""
        if job is None:
            return False
        await announce_job(self._redis)
        return True
