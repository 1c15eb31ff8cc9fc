"""A run's progress plan (SPEC §5) and the figures read from it: how many items each stage is to
handle, fixed when the run starts, re-planned when a stage ends; no table is counted to read it.

- **At the start** each stage's items are the pending snapshot plus what the stages before it
  are projected to feed it (the estimate's projection), with the credits projected for it and,
  once the site has a completed run, the seconds an item of it took there.
- **A stage's input** is its planned items while it has not ended, raised to what it has
  handled when that is more (the total grows with the items done, so the percentage does not
  fall); once it has ended, what it handled (a stage that did less lets the total fall).
- **At a stage's end** the runner re-plans the stages after it from what is really pending then
  (`app.runs.planning`). That can raise the total, so the re-plan also stores the percentage
  the run had just before (`floor`): the percentage shown is never below it. Between two
  re-plans the items handled only grow and the stages' inputs only grow with them or fall, so
  the percentage never decreases, with no reader ever writing: each reads one row, and the
  re-plan is written in the transaction that moves the run to its next stage.
- A completed run is 100 %, every stage's input what it handled. A failed or cancelled run keeps
  its plan and its results, so its figures never change afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from app.models.automation import RunStatus
from app.pipeline.catalog import STAGE_NUMBERS
from app.pipeline.results import handled_in

# The counter of each stage's result that says how many of its items it processed.
PROCESSED_COUNTER = {
    1: "keywords_processed",
    2: "clusters_processed",
    3: "ideas_processed",
    4: "tasks_processed",
    5: "content_processed",
    6: "images_processed",
    7: "approved_count",
}
# Stages without an AI call: unmeasured (no run of the site did them yet), they count as taking
# no time, a few milliseconds an item against the AI stages' seconds.
LOCAL_STAGES = frozenset({3, 7})
LAST_STAGE = 7


Basis = Literal["formula", "history", "snapshot"]


class StagePlan(BaseModel):
    """One stage of the plan."""

    model_config = ConfigDict(frozen=True)

    items: int = Field(ge=0, description="The input items the stage is planned to handle.")
    credits: Decimal = Field(
        Decimal(0), description="Credits projected for the stage; what it spent once it ended."
    )
    seconds_per_item: float | None = Field(
        None, description="Seconds an item took in the site's completed runs; None without any."
    )


class ProgressPlan(BaseModel):
    """What `automation_runs.progress_plan` holds."""

    model_config = ConfigDict(frozen=True)

    basis: Basis = Field(
        description="How downstream items were projected: the reference formula, the site's "
        "history, or not at all (runs from before the plan: the snapshot's counts)."
    )
    stages: tuple[StagePlan, ...] = Field(min_length=7, max_length=7)
    floor: int = Field(
        0, ge=0, le=100, description="The percentage the run had when it was last re-planned."
    )
    between_stage_delay: int = Field(0, ge=0)
    replanned_after: int = Field(0, ge=0, le=7, description="0: as planned at the start.")
    foreseen: dict[str, str | None] | None = Field(
        None,
        description="The clusters per keyword and ideas per cluster foreseen at the start "
        "(`app.credits.yields`); the site's later estimates compare them with what the run made.",
    )

    def stage(self, number: int) -> StagePlan:
        return self.stages[number - 1]

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class RunState(Protocol):
    """What the figures read of a run: an `AutomationRun`, or the same columns read without the
    ORM for a status poll (`app.runs.reads.RunRow`)."""

    @property
    def status(self) -> RunStatus: ...
    @property
    def current_stage(self) -> int: ...
    @property
    def paused_at(self) -> datetime | None: ...
    @property
    def resumed_at(self) -> datetime | None: ...
    @property
    def progress_plan(self) -> dict[str, Any]: ...
    @property
    def stage_1_result(self) -> dict[str, Any] | None: ...
    @property
    def stage_2_result(self) -> dict[str, Any] | None: ...
    @property
    def stage_3_result(self) -> dict[str, Any] | None: ...
    @property
    def stage_4_result(self) -> dict[str, Any] | None: ...
    @property
    def stage_5_result(self) -> dict[str, Any] | None: ...
    @property
    def stage_6_result(self) -> dict[str, Any] | None: ...
    @property
    def stage_7_result(self) -> dict[str, Any] | None: ...


def plan_of(run: RunState) -> ProgressPlan:
    return ProgressPlan.model_validate(run.progress_plan)


def snapshot_plan(snapshot: Mapping[str, Any]) -> ProgressPlan:
    """A plan of the snapshot's counts alone, nothing projected."""
    return ProgressPlan(
        basis="snapshot",
        stages=tuple(
            StagePlan(items=int(snapshot.get(f"stage_{n}_initial", 0))) for n in STAGE_NUMBERS
        ),
    )


@dataclass(frozen=True)
class StageFigures:
    number: int
    status: str
    input_count: int
    processed_count: int
    handled: int
    ended: bool


@dataclass(frozen=True)
class Figures:
    stages: tuple[StageFigures, ...]
    total_items: int
    completed_items: int
    percentage: int
    eta_seconds: int | None
    credits_remaining: Decimal | None


def result_of(run: RunState, stage: int) -> dict[str, Any]:
    result: dict[str, Any] | None = getattr(run, f"stage_{stage}_result")
    return result or {}


def stage_status(run: RunState, stage: int, result: dict[str, Any]) -> str:
    """The stage's status, from the run and the stage's result (`result_of`)."""
    if result.get("skipped"):
        return "skipped"
    if result.get("completed_at") and not result.get("partial"):
        return "completed"
    if stage == run.current_stage and run.status in (RunStatus.RUNNING, RunStatus.PAUSED):
        return str(run.status)
    if stage < run.current_stage:
        return "completed"
    return "pending"


def figures(run: RunState, plan: ProgressPlan, now: datetime) -> Figures:
    stages = []
    for n in STAGE_NUMBERS:
        result = result_of(run, n)
        handled = handled_in(n, result)
        status = stage_status(run, n, result)
        # Whether the stage has nothing more to do in this run. Every stage of a completed run
        # has: one stopped by the credit budget before the last stage ends it as well.
        ended = run.status == RunStatus.COMPLETED or status in ("completed", "skipped")
        stages.append(
            StageFigures(
                number=n,
                status=status,
                input_count=handled if ended else max(plan.stage(n).items, handled),
                processed_count=int(result.get(PROCESSED_COUNTER[n], 0)),
                handled=handled,
                ended=ended,
            )
        )
    total = sum(s.input_count for s in stages)
    completed = sum(s.handled for s in stages)
    active = run.status in (RunStatus.RUNNING, RunStatus.PAUSED)
    running = run.status == RunStatus.RUNNING
    return Figures(
        stages=tuple(stages),
        total_items=total,
        completed_items=completed,
        percentage=percentage(run.status, plan.floor, completed, total),
        eta_seconds=eta_seconds(run, plan, stages, now) if running else None,
        credits_remaining=credits_remaining(run, plan, stages) if active else None,
    )


def percentage(status: RunStatus, floor: int, completed: int, total: int) -> int:
    """Whole percent, rounded down (100 only once every item is handled), never below `floor`;
    100 for a completed run."""
    if status == RunStatus.COMPLETED:
        return 100
    raw = 100 * completed // total if total else 0
    return max(floor, min(raw, 100))


def credits_remaining(run: RunState, plan: ProgressPlan, stages: Sequence[StageFigures]) -> Decimal:
    """The credits projected for the stages not ended, less what they spent so far."""
    left = Decimal(0)
    for stage in stages:
        if not stage.ended:
            spent = Decimal(str(result_of(run, stage.number).get("credits_used", 0)))
            left += max(Decimal(0), plan.stage(stage.number).credits - spent)
    return left


def eta_seconds(
    run: RunState, plan: ProgressPlan, stages: Sequence[StageFigures], now: datetime
) -> int | None:
    """Items left per stage times the seconds an item of that stage takes, plus the delays
    after the stages left that have items (the runner does not pause after a skipped stage);
    None while a stage with items left has no known pace."""
    pausing = sum(
        1
        for stage in stages
        if run.current_stage <= stage.number < LAST_STAGE and stage.input_count > 0
    )
    seconds = float(plan.between_stage_delay * pausing)
    for stage in stages:
        left = stage.input_count - stage.handled
        if stage.ended or left <= 0:
            continue
        pace = _pace(run, plan, stage, now)
        if pace is None:
            if stage.number in LOCAL_STAGES:
                continue
            return None
        seconds += left * pace
    return math.ceil(seconds)


def _pace(run: RunState, plan: ProgressPlan, stage: StageFigures, now: datetime) -> float | None:
    """Seconds an item of the stage takes: its own pace in this run so far and the site's
    history, weighed by the share of its items it has handled; either alone without the other.
    Early in a stage its own pace is a few items long and slow (the first items wait for their
    answers, later ones overlap), so the history counts most until the stage is well under way.
    """
    history = plan.stage(stage.number).seconds_per_item
    own = _own_pace(run, stage, now) if stage.number == run.current_stage else None
    if own is None:
        return history
    if history is None:
        return own
    done = stage.handled / stage.input_count
    return done * own + (1 - done) * history


def _own_pace(run: RunState, stage: StageFigures, now: datetime) -> float | None:
    """The stage's seconds so far (less the last pause, when it was in this stage) over the
    items it handled; None before its first."""
    started_at = result_of(run, stage.number).get("started_at")
    if not stage.handled or not started_at:
        return None
    started = datetime.fromisoformat(started_at)
    elapsed = (now - started).total_seconds()
    if run.paused_at and run.resumed_at and started <= run.paused_at < run.resumed_at:
        elapsed -= (run.resumed_at - run.paused_at).total_seconds()
    return max(elapsed, 0.0) / stage.handled
