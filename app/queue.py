"""The jobs the domain queues, as an interface: arq's implementation is `ArqQueue` in
`app/workers/queue.py` (SPEC §15: arq stays behind `app/workers/`). The API finds it on
`app.state.queue`, the worker in its bundle of dependencies.

Job ids are deterministic, so queueing a job that is already queued (or done) is a no-op that
answers False.
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    async def enqueue_run(self, run_id: str, slice_no: int) -> bool:
        """Queue slice `slice_no` of the run; False if that slice was already queued or done."""
        ...

    async def enqueue_notification(self, run_id: str) -> bool:
        """Queue the notification of the run's end; False if it was already queued or sent."""
        ...

    async def enqueue_publish(self) -> bool:
        """Queue a publish pass for the start of the next second, beside the cron's."""
        ...

    async def slice_waiting(self, run_id: str, slice_no: int) -> bool:
        """Whether the run's slice job is still queued, not yet taken by any worker."""
        ...

    async def slice_error(self, run_id: str, slice_no: int) -> str | None:
        """Why the run's slice job failed, while the queue still keeps its result."""
        ...
