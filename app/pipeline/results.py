"""Stage result JSON (SPEC §7): the counters of each stage, and the SQL that adds to them.

Counters are added in the same statement that checks the run's fence and adds the item's cost to
`total_credits_used`, inside the item's own transaction: a result is exact even when a worker dies
mid-stage, and two items finishing at once cannot lose each other's counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, TextClause, func, literal, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

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

# The counters that say how many of a stage's input items it has handled: processed, or failed
# (a failed item is not tried again in the same run). The stages count the same toward their
# per-run limit (`Stage.taken_counters`; tests/test_pipeline_catalog.py keeps them in step).
HANDLED: dict[int, tuple[str, ...]] = {
    1: ("keywords_processed", "errors"),
    2: ("clusters_processed", "errors"),
    3: ("ideas_processed",),
    4: ("tasks_processed", "errors"),
    5: ("content_processed", "errors"),
    # A failed image counts in `images_processed` as well as in `errors`.
    6: ("images_processed",),
    7: ("approved_count",),
}

Number = int | Decimal
_KEY = re.compile(r"[a-z_]+")


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


@lru_cache(maxsize=256)
def progress_statement(
    stage: int, keys: tuple[str, ...], with_credits: bool, with_event: bool = False
) -> TextClause:
    """`UPDATE automation_runs SET stage_N_result = stage_N_result || {key: old + :dN, ...}`
    (and `total_credits_used + :credits`) for the run holding `:fence`, returning its id; with
    `with_event`, the same statement inserts the item's run event (`:kind`, `:level`,
    `:message`, `:data` as JSON) if the fence held, returning its run's id.

    Built once per shape: every item of a run commits one, so it is a prepared statement, not
    an expression compiled again each time.
    """
    column = f"stage_{stage}_result"
    pairs = []
    for n, key in enumerate(keys):
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a result key: {key!r}")
        pairs.append(
            f"'{key}', coalesce(({column}->>'{key}')::numeric, 0) + CAST(:d{n} AS numeric)"
        )
    sets = [
        f"{column} = coalesce({column}, '{{}}'::jsonb) || jsonb_build_object({', '.join(pairs)})"
    ]
    if with_credits:
        sets.append("total_credits_used = total_credits_used + CAST(:credits AS numeric)")
    where = "WHERE id = :run_pk AND fence = :fence RETURNING id"
    sql = f"UPDATE automation_runs SET {', '.join(sets)} {where}"  # noqa: S608 - keys checked
    if with_event:
        sql = (
            f"WITH run AS ({sql}) "  # noqa: S608 - keys checked
            "INSERT INTO run_events (run_pk, stage, kind, level, message, data) "
            f"SELECT id, {stage}, CAST(:kind AS varchar), CAST(:level AS varchar), "
            "CAST(:message AS text), CAST(:data AS jsonb) FROM run RETURNING run_pk"
        )
    return text(sql)


def appended_in_result(stage: int, key: str, values: Sequence[int]) -> ColumnElement[Any]:
    """`stage_N_result` with `values` added at the end of its list `key`, as one SQL expression:
    like the counters, two transactions appending at once keep each other's values."""
    column = result_column(stage)
    listed = func.coalesce(column[key], literal([], JSONB)).op("||")(
        func.to_jsonb(literal(list(values), ARRAY(BigInteger)))
    )
    appended: ColumnElement[Any] = func.jsonb_set(
        func.coalesce(column, literal({}, JSONB)), literal([key], ARRAY(Text)), listed
    )
    return appended


def set_in_result(stage: int, values: dict[str, Any]) -> ColumnElement[Any]:
    """`stage_N_result || values` as one SQL expression."""
    column = result_column(stage)
    merged: ColumnElement[Any] = func.coalesce(column, literal({}, JSONB)).op("||")(
        literal(values, JSONB)
    )
    return merged


def handled_in(stage: int, result: dict[str, Any] | None) -> int:
    """How many input items the stage has handled, by its result (0 before it started)."""
    return sum(int((result or {}).get(counter, 0)) for counter in HANDLED[stage])
