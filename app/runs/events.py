"""A run's log: each event is a row in `run_events` (what the logs endpoint and the live stream
read, whichever machine wrote it) and a line in the reference's log files
(`LOG_DIR/automation/{account_id}/{site_id}/{run_id}/automation_run.log` and `stage_N.log`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.automation import RunEvent

log = structlog.get_logger(__name__)


class RunIdentity(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def run_id(self) -> str: ...
    @property
    def account_id(self) -> int: ...
    @property
    def site_id(self) -> int: ...


class RunLog:
    """Writes run events; one per process, knowing where the log files go."""

    def __init__(self, log_dir: Path) -> None:
        self.root = log_dir / "automation"

    def folder(self, run: RunIdentity) -> Path:
        return self.root / str(run.account_id) / str(run.site_id) / run.run_id

    async def record(
        self,
        session: AsyncSession,
        run: RunIdentity,
        kind: str,
        message: str,
        *,
        stage: int | None = None,
        level: str = "info",
        data: dict[str, Any] | None = None,
    ) -> RunEvent:
        """Add the event to the session (committed with the change it describes) and the files."""
        event = RunEvent(
            run_pk=run.id, stage=stage, kind=kind, level=level, message=message, data=data
        )
        session.add(event)
        self.mirror(run, stage, level, message)
        return event

    async def record_many(
        self,
        session: AsyncSession,
        run: RunIdentity,
        kind: str,
        lines: Sequence[tuple[str, dict[str, Any] | None]],
        *,
        stage: int | None = None,
        level: str = "info",
    ) -> None:
        """Events of one kind (a local batch's items, each a message and its data) in one
        INSERT with the change they describe, and in the files."""
        same = {"run_pk": run.id, "stage": stage, "kind": kind, "level": level}
        rows = [{**same, "message": message, "data": data} for message, data in lines]
        await session.execute(insert(RunEvent), rows)
        self.mirror(run, stage, level, *(message for message, _ in lines))

    def mirror(self, run: RunIdentity, stage: int | None, level: str, *messages: str) -> None:
        """The events' lines in the files, for event rows written some other way (an item's
        event is inserted by the statement that adds its counters, a local batch's items' by one
        INSERT): each file is opened once for them all."""
        stamp = f"[{_stamp()}] {level.upper()}"
        self._append(run, stage, "".join(f"{stamp} {message}\n" for message in messages))

    def _append(self, run: RunIdentity, stage: int | None, lines: str) -> None:
        folder = self.folder(run)
        names = ["automation_run.log"] + ([f"stage_{stage}.log"] if stage else [])
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name in names:
                with open(folder / name, "a", encoding="utf-8") as file:
                    file.write(lines)
        except OSError as exc:
            # The files mirror the rows; a full disk must not fail the run that Postgres records.
            log.warning("run log file not written", run_id=run.run_id, error=str(exc))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
