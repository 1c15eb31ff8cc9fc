"""Run API shapes: the run, its progress, the live card, the pipeline overview, the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from app.models.automation import RunStatus, StoppedReason, TriggerType
from app.schemas import CreditAmount, OutputModel


class RunOut(OutputModel):
    """A run with its per-stage results (SPEC §7 shapes) and totals."""

    run_id: str
    site_id: int
    trigger_type: TriggerType
    status: RunStatus
    current_stage: int
    started_at: datetime
    paused_at: datetime | None
    resumed_at: datetime | None
    cancelled_at: datetime | None
    completed_at: datetime | None
    total_credits_used: CreditAmount
    initial_snapshot: dict[str, Any] | None
    stage_1_result: dict[str, Any] | None
    stage_2_result: dict[str, Any] | None
    stage_3_result: dict[str, Any] | None
    stage_4_result: dict[str, Any] | None
    stage_5_result: dict[str, Any] | None
    stage_6_result: dict[str, Any] | None
    stage_7_result: dict[str, Any] | None
    error_message: str | None
    stopped_reason: StoppedReason | None
    heartbeat_at: datetime | None


class CurrentRunOut(BaseModel):
    """The site's active run, if any."""

    run: RunOut | None = Field(description="The running or paused run, or null.")


class RunStarted(BaseModel):
    """A run was started; a worker picks it up at once."""

    run_id: str
    status: RunStatus
    message: str


class RunChanged(BaseModel):
    """A run's state changed."""

    run_id: str
    status: RunStatus
    message: str


class LogOut(BaseModel):
    """The tail of a run's log."""

    run_id: str
    lines: list[str] = Field(description="The last lines of the run's log, oldest first.")
    log: str = Field(description="The same lines joined by newlines.")


class InFlight(BaseModel):
    """An item being processed right now."""

    id: int
    title: str


class ProcessingOut(BaseModel):
    """What the run is doing right now."""

    run_id: str
    status: RunStatus
    stage: int
    stage_name: str
    batch: int = Field(description="The batch in progress (1-based); 0 between batches.")
    batches: int = Field(description="Batches the stage is expected to take.")
    items: list[InFlight] = Field(description="The items in flight right now.")
    processed: int = Field(description="Items of the stage done so far.")
    total: int = Field(description="Items of the stage in all.")
    updated_at: datetime | None


class StageOverview(BaseModel):
    """One stage of the pipeline and what waits for it."""

    number: int
    name: str
    type: str = Field(description="`AI`, `local` or `review`.")
    pending: int = Field(description="Rows waiting for this stage.")
    counts: dict[str, int] = Field(description="The stage's input rows by status.")


class PipelineOverview(BaseModel):
    """What waits for each stage of a site's pipeline."""

    stages: list[StageOverview]
    total_pending: int


class GlobalProgress(BaseModel):
    """Items done over items to do, across all stages of the run."""

    total_items: int = Field(
        description="The items the run is to handle: the sum of the stages' `input_count`. Fixed "
        "at the start from the pending items and the estimate's projection of what each stage "
        "feeds the next; re-planned when a stage ends, from what is really pending then; raised "
        "as real counts exceed the plan. Without a run, what the site has pending."
    )
    completed_items: int = Field(
        description="The items the run has handled: processed, or failed (a failed item is not "
        "tried again in the same run)."
    )
    percentage: int = Field(
        ge=0,
        le=100,
        description="completed_items / total_items in whole percent, rounded down, never lower "
        "than it has been in this run: when a re-plan raises the total, it holds until the items "
        "catch up. 100 once the run has completed. A finished, failed or cancelled run's "
        "figures never change.",
    )
    eta_seconds: int | None = Field(
        ge=0,
        description="Seconds the running run has left: each stage's items left times the seconds "
        "an item of that stage takes (in its current stage, this run's pace so far and the "
        "site's completed runs' pace, weighed by the share of the stage done; theirs alone for "
        "the stages not reached yet), plus the delays "
        "between the stages left. Null while unknown: the run is not running (paused, over, or "
        "never started), or an AI stage with items left has no pace yet (on a site's first "
        "run, until that stage starts). Stages 3 and 7 make no AI call: without a pace they "
        "count as no time.",
    )


class StageProgress(BaseModel):
    """One stage of a run: what it had to do and what it did."""

    number: int
    name: str
    status: str = Field(description="`pending`, `running`, `paused`, `completed` or `skipped`.")
    input_count: int = Field(
        description="The items the stage is to handle: once it has ended, those it handled "
        "(processed or failed); before, the run's plan for it (raised to what it handled when "
        "that is more). Read from the run alone: what is added to the site later does not "
        "change it."
    )
    processed_count: int = Field(description="The items the stage processed without failing.")


class RunMetrics(BaseModel):
    """Credits and time a run took so far."""

    credits_used: CreditAmount
    duration_seconds: int
    projected_remaining_credits: CreditAmount | None = Field(
        description="Credits the active run is projected to spend still: the projection of the "
        "stages it has not ended (re-estimated at each stage's end), less what they spent so "
        "far. Null once the run is over, or without a run."
    )


class RunSummary(OutputModel):
    """A run in a list."""

    run_id: str
    status: RunStatus
    current_stage: int
    trigger_type: TriggerType
    started_at: datetime
    completed_at: datetime | None
    stopped_reason: StoppedReason | None
    total_credits_used: CreditAmount
    awaiting_review: int | None = Field(
        None,
        description="Articles the run left in review to approve by hand, as auto-approval is "
        "off; null where stage 7 approves them or has not ended.",
    )

    @model_validator(mode="before")
    @classmethod
    def _awaiting_review(cls, value: Any) -> Any:
        # Read from stage 7's result: the row has no column of its own for it. A run's row is
        # an `AutomationRun`, or its columns as a status poll reads them (`app.runs.reads`).
        if hasattr(value, "stage_7_result"):
            fields = {
                name: getattr(value, name) for name in cls.model_fields if hasattr(value, name)
            }
            fields["awaiting_review"] = (value.stage_7_result or {}).get("awaiting_review")
            return fields
        return value


class RunProgress(BaseModel):
    """A run's progress over the whole pipeline (`run` null when the site never ran)."""

    run: RunSummary | None
    global_progress: GlobalProgress
    stages: list[StageProgress]
    metrics: RunMetrics
    initial_snapshot: dict[str, Any] | None
