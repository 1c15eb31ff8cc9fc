"""arq's worker, made to outlive Redis outages (SPEC §13).

arq 0.28's `Worker` ends its main loop on the first `ConnectionError`: a Redis restart stopped
`automation worker`, and `automation serve` with it. Here the worker waits for Redis instead, with
capped backoff, logging the outage once when it starts and once when it ends, and polls again
when Redis answers. Jobs in flight go on meanwhile: they wait out the outage where they need
Redis (see `app.stages.runner`). Between two polls it listens for the announcements of new jobs
(`app.workers.wakeups`) and polls at once on one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from arq.connections import create_pool, log_redis_info
from arq.constants import in_progress_key_prefix
from arq.worker import Worker, logger

from app.errors import is_backend_down
from app.outage import Outage, redis_probe, retry_through_outage, wait_until_reachable
from app.workers.wakeups import Wakeups


class ResilientWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outage = Outage("worker")

    async def main(self) -> None:
        """arq's main loop, with the connection waited for, every poll riding out outages, and
        the wait between polls cut short when a job is announced."""
        if self._pool is None:
            self._pool = await retry_through_outage(
                self._outage, self._create_pool, [self._probe_connection]
            )
        logger.info(
            "Starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions)
        )
        await retry_through_outage(
            self._outage, lambda: log_redis_info(self.pool, logger.info), [redis_probe(self.pool)]
        )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        async with Wakeups(self.pool) as wakeups:
            while True:
                await self._poll_iteration()
                if self.burst and await self._burst_over():
                    return
                await wakeups.wait(self.poll_delay_s)

    async def _create_pool(self) -> Any:
        return await create_pool(
            self.redis_settings,
            job_deserializer=self.job_deserializer,
            job_serializer=self.job_serializer,
            default_queue_name=self.queue_name,
            expires_extra_ms=self.expires_extra_ms,
        )

    async def _probe_connection(self) -> None:
        pool = await self._create_pool()
        await pool.aclose()

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as exc:
            if not is_backend_down(exc):
                raise
            await wait_until_reachable(self._outage, [redis_probe(self.pool)], exc)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, one job at a time, for the jobs no worker is running: a job whose start fails
        on Redis gives back the place it took (arq leaves its semaphore and counter taken, so
        repeated outages would leave the worker with no room for jobs).

        arq keeps a job queued until it ends, and checks each queued job's in-progress key on
        every poll: three Redis round trips a job, dozens of polls a second. A job this worker
        runs is passed over; those another worker runs are found in one MGET of their keys (arq
        checks again, under WATCH, the ones it tries)."""
        waiting = [job_id for job_id in job_ids if not self._running_here(job_id)]
        if not waiting:
            return
        keys = [in_progress_key_prefix + job_id.decode() for job_id in waiting]
        running = await self.pool.mget(keys)
        for job_id, elsewhere in zip(waiting, running, strict=True):
            if elsewhere is not None:
                continue
            try:
                await super().start_jobs([job_id])
            except Exception as exc:
                if is_backend_down(exc):
                    self._release_sem_dec_counter_on_complete()
                raise

    def _running_here(self, job_id: bytes) -> bool:
        running = self.tasks.get(job_id.decode())
        return running is not None and not running.done()

    async def _burst_over(self) -> bool:
        """arq's end of a burst: the job budget spent, or the queue empty; running jobs done."""
        if 0 <= self.max_burst_jobs <= self._jobs_started():
            done = True
        else:
            try:
                done = await self.pool.zcard(self.queue_name) == 0
            except Exception as exc:
                if not is_backend_down(exc):
                    raise
                return False
        if done:
            await asyncio.gather(*self.tasks.values())
        return done
