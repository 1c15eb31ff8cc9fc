"""Enqueueing: the only place that knows arq's job names and ids (SPEC §15: arq stays behind
`app/workers/`). Job ids are deterministic, so enqueueing one twice is a no-op."""

from __future__ import annotations

from arq.connections import ArqRedis
from redis.asyncio import Redis

RUN_JOB = "run_automation"


def run_job_id(run_id: str, slice_no: int) -> str:
    return f"run:{run_id}:slice:{slice_no}"


async def enqueue_run(redis: Redis, run_id: str, slice_no: int) -> bool:
    """Queue slice `slice_no` of the run; False if that slice was already queued or done."""
    queue = (
        redis if isinstance(redis, ArqRedis) else ArqRedis(connection_pool=redis.connection_pool)
    )
    job = await queue.enqueue_job(RUN_JOB, run_id, slice_no, _job_id=run_job_id(run_id, slice_no))
    return job is not None
