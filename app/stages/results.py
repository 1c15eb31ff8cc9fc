"""Stage result JSON (SPEC §7): the counters of each stage, and the SQL that adds to them.

Counters are added in the same statement that checks the run's fence and adds the item's cost to
`total_credits_used`, inside the item's own transaction: a result is exact even when a worker dies
mid-stage, and two items finishing at once cannot lose each other's counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Numeric, func, literal
from sqlalchemy.dialects.postgresql import JSONB

from app.models.automation import AutomationRun

COUNTERS: dict[int, tuple[str, ...]] = {
    1: ("keywords_processed", "clusters_created", "batches_run", "credits_used"),
    2: ("clusters_processed", "ideas_created", "batches_run", "credits_used"),
    3: ("ideas_processed", "tasks_created", "batches_run"),
    4: ("tasks_processed", "content_created", "total_words", "batches_run", "credits_used"),
    5: ("content_processed", "prompts_created", "batches_run", "credits_used"),
    6: ("images_processed", "images_generated", "images_failed", "batches_run", "credits_used"),
    7: ("ready_for_review", "approved_count", "scheduled_count"),
}

Number = int | Decimal


def result_column(stage: int) -> Any:
    return getattr(AutomationRun, f"stage_{stage}_result")


def initial_result(stage: int, *, skipped: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    result: dict[str, Any] = dict.fromkeys(COUNTERS[stage], 0)
    result.update(
        errors=0,
        time_elapsed=0,
        skipped=skipped,
        partial=False,
        started_at=now,
        completed_at=now if skipped else None,
    )
    return result


def add_to_result(stage: int, deltas: dict[str, Number]) -> ColumnElement[Any]:
    """`stage_N_result || {key: old + delta, ...}` as one SQL expression."""
    column = result_column(stage)
    pairs: list[Any] = []
    for key, delta in deltas.items():
        old = func.coalesce(column[key].astext.cast(Numeric), 0)
        pairs += [literal(key), old + literal(delta, Numeric())]
    merged: ColumnElement[Any] = func.coalesce(column, literal({}, JSONB)).op("||")(
        func.jsonb_build_object(*pairs)
    )
    return merged


def set_in_result(stage: int, values: dict[str, Any]) -> ColumnElement[Any]:
    """`stage_N_result || values` as one SQL expression."""
    column = result_column(stage)
    merged: ColumnElement[Any] = func.coalesce(column, literal({}, JSONB)).op("||")(
        literal(values, JSONB)
    )
    return merged
