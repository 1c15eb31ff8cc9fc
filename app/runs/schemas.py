"""Run API shapes: the run, its progress, the live card, the pipeline overview, the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from app.models.automation import AutomationRun, RunStatus, StoppedReason, TriggerType
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

    total_items: int
    completed_items: int
    percentage: int


class StageProgress(BaseModel):
    """One stage of a run: what it had to do and what it did."""

    number: int
    name: str
    status: str = Field(description="`pending`, `running`, `paused`, `completed` or `skipped`.")
    input_count: int
    processed_count: int


class RunMetrics(BaseModel):
    """Credits and time a run took so far."""

    credits_used: CreditAmount
    duration_seconds: int


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
        # Read from stage 7's result: the row has no column of its own for it.
        if isinstance(value, AutomationRun):
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
