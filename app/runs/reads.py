"""The run reads clients poll (the dashboard, monitoring scripts), in one round trip each.

Plain SQL on asyncpg's own pool (`app.db.create_poll_pool`): asyncpg prepares each statement
once per connection, then only binds and runs it, where SQLAlchemy's execution of the same
prebuilt statement cost more CPU than the rest of the request, and an ORM load more again. The
site's check (another account's site is a 404, as a missing one) is in the same statement as
the read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from app.db import poll_row
from app.errors import NotFound
from app.models.automation import AutomationRun, RunStatus, StoppedReason, TriggerType
from app.runs.schemas import RunOut
from app.runs.states import ACTIVE


def _columns(names: Iterable[str]) -> str:
    # Through the table, so that a name that is no column fails at import, not at the first read.
    return ", ".join(f"r.{AutomationRun.__table__.c[name].name}" for name in names)


_ACTIVE = ", ".join(f"'{status.value}'" for status in sorted(ACTIVE))

# Only the model's column names and the statuses' constants are put into the statements.
# The columns `RunOut` shows, for the site's active run.
_SITE_ACTIVE_RUN = f"""
SELECT s.id AS found_site_id, r.xmin::text::bigint AS version, {_columns(RunOut.model_fields)}
FROM sites s
LEFT JOIN automation_runs r ON r.site_id = s.id AND r.status IN ({_ACTIVE})
WHERE s.id = $1 AND s.account_id = $2
"""  # noqa: S608


async def site_active_run(
    pool: asyncpg.Pool, account_id: int, site_id: int
) -> asyncpg.Record | None:
    """The account's site's active run (the columns of `RunOut`, and its row's `version`, which
    every committed update changes), or None; NotFound when the site is not the account's."""
    found = await poll_row(pool, _SITE_ACTIVE_RUN, site_id, account_id)
    if found is None:
        raise NotFound(f"site {site_id} not found")
    return found if found["run_id"] is not None else None


@dataclass(frozen=True, slots=True)
class RunRow:
    """The columns of a run that its progress shows and is computed from (`app.runs.plan`): an
    `AutomationRun` without the ORM's load."""

    run_id: str
    status: RunStatus
    trigger_type: TriggerType
    current_stage: int
    started_at: datetime
    paused_at: datetime | None
    resumed_at: datetime | None
    cancelled_at: datetime | None
    completed_at: datetime | None
    stopped_reason: StoppedReason | None
    total_credits_used: Decimal
    initial_snapshot: dict[str, Any] | None
    progress_plan: dict[str, Any]
    stage_1_result: dict[str, Any] | None
    stage_2_result: dict[str, Any] | None
    stage_3_result: dict[str, Any] | None
    stage_4_result: dict[str, Any] | None
    stage_5_result: dict[str, Any] | None
    stage_6_result: dict[str, Any] | None
    stage_7_result: dict[str, Any] | None

    @classmethod
    def of(cls, record: asyncpg.Record) -> RunRow:
        values = {name: record[name] for name in _RUN_ROW_COLUMNS}
        stopped = values["stopped_reason"]
        values["status"] = RunStatus(values["status"])
        values["trigger_type"] = TriggerType(values["trigger_type"])
        values["stopped_reason"] = None if stopped is None else StoppedReason(stopped)
        return cls(**values)


_RUN_ROW_COLUMNS = tuple(field.name for field in fields(RunRow))
# The active run if there is one, else the latest (started last).
_SITE_RUN_TO_SHOW = f"""
SELECT s.id AS found_site_id, r.xmin::text::bigint AS version, {_columns(_RUN_ROW_COLUMNS)}
FROM sites s
LEFT JOIN automation_runs r ON r.site_id = s.id
WHERE s.id = $1 AND s.account_id = $2
ORDER BY CASE WHEN r.status IN ({_ACTIVE}) THEN 0 ELSE 1 END, r.started_at DESC, r.id DESC
LIMIT 1
"""  # noqa: S608


async def site_run_to_show(
    pool: asyncpg.Pool, account_id: int, site_id: int
) -> asyncpg.Record | None:
    """The account's site's active run, else its latest, else None (the columns of `RunRow`, and
    the row's `version`); NotFound when the site is not the account's."""
    found = await poll_row(pool, _SITE_RUN_TO_SHOW, site_id, account_id)
    if found is None:
        raise NotFound(f"site {site_id} not found")
    return found if found["run_id"] is not None else None
