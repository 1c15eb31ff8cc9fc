"""The body of a run notification: what a receiver gets when a run completes, fails or stops on
its credit budget."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from app.models.automation import RunStatus, StoppedReason, TriggerType
from app.schemas import CreditAmount


class NotificationEvent(StrEnum):
    COMPLETED = "run.completed"
    FAILED = "run.failed"
    BUDGET_REACHED = "run.budget_reached"


class StageSummary(BaseModel):
    """One stage of the run: its counters as the run detail page shows them."""

    stage: int
    name: str
    skipped: bool
    partial: bool
    errors: int
    counts: dict[str, float]


class RunNotification(BaseModel):
    """The body of a notification."""

    event: NotificationEvent
    delivery_id: str
    run_id: str
    site_id: int
    site_name: str
    status: RunStatus
    stopped_reason: StoppedReason | None
    error_message: str | None
    trigger_type: TriggerType
    started_at: datetime
    completed_at: datetime | None
    total_credits_used: CreditAmount
    stages: list[StageSummary]
    link: str
