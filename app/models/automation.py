"""Automation: a site's pipeline config, its runs, and each run's events."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._types import Credits, EnumText, account_fk, enum_column, one_of, site_fk

BATCHED_STAGES = range(1, 7)
DEFAULT_BATCH_SIZES = {1: 20, 2: 1, 3: 20, 4: 1, 5: 1, 6: 1}
PER_RUN_LIMITS = ("keywords", "clusters", "ideas", "tasks", "content", "images", "approvals")


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class TriggerType(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"


class RunStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"


class StoppedReason(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    CREDIT_BUDGET_REACHED = "credit_budget_reached"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    FAILED = "failed"


def _batch_size(stage: int) -> Mapped[int]:
    default = DEFAULT_BATCH_SIZES[stage]
    return mapped_column(Integer, default=default, server_default=str(default))


def _flag() -> Mapped[bool]:
    return mapped_column(Boolean, default=True, server_default="true")


def _limit() -> Mapped[int]:
    return mapped_column(Integer, default=0, server_default="0")


def _result() -> Mapped[dict[str, Any] | None]:
    return mapped_column(JSONB)


class AutomationConfig(IdMixin, TimestampMixin, Base):
    __tablename__ = "automation_configs"
    __table_args__ = (
        one_of("frequency", Frequency),
        *(
            CheckConstraint(f"stage_{n}_batch_size BETWEEN 1 AND 1000", name=f"stage_{n}_batch")
            for n in BATCHED_STAGES
        ),
        *(
            CheckConstraint(f"max_{name}_per_run >= 0", name=f"max_{name}_not_negative")
            for name in PER_RUN_LIMITS
        ),
        CheckConstraint("max_credits_per_run >= 0", name="max_credits_not_negative"),
        CheckConstraint("within_stage_delay >= 0 AND between_stage_delay >= 0", name="delays"),
        CheckConstraint("ai_concurrency BETWEEN 1 AND 64", name="ai_concurrency_range"),
        CheckConstraint("weekly_day BETWEEN 0 AND 6", name="weekly_day_range"),
        CheckConstraint("monthly_day BETWEEN 1 AND 31", name="monthly_day_range"),
        CheckConstraint("max_in_article_images BETWEEN 0 AND 10", name="in_article_images"),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sites.id", ondelete="CASCADE"), unique=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    frequency: Mapped[Frequency] = enum_column(Frequency.DAILY)
    scheduled_time: Mapped[time] = mapped_column(Time, default=time(2, 0), server_default="02:00")
    weekly_day: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    monthly_day: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    stage_1_batch_size: Mapped[int] = _batch_size(1)
    stage_2_batch_size: Mapped[int] = _batch_size(2)
    stage_3_batch_size: Mapped[int] = _batch_size(3)
    stage_4_batch_size: Mapped[int] = _batch_size(4)
    stage_5_batch_size: Mapped[int] = _batch_size(5)
    stage_6_batch_size: Mapped[int] = _batch_size(6)
    within_stage_delay: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    between_stage_delay: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    stage_1_enabled: Mapped[bool] = _flag()
    stage_2_enabled: Mapped[bool] = _flag()
    stage_3_enabled: Mapped[bool] = _flag()
    stage_4_enabled: Mapped[bool] = _flag()
    stage_5_enabled: Mapped[bool] = _flag()
    stage_6_enabled: Mapped[bool] = _flag()
    stage_7_enabled: Mapped[bool] = _flag()
    max_keywords_per_run: Mapped[int] = _limit()
    max_clusters_per_run: Mapped[int] = _limit()
    max_ideas_per_run: Mapped[int] = _limit()
    max_tasks_per_run: Mapped[int] = _limit()
    max_content_per_run: Mapped[int] = _limit()
    max_images_per_run: Mapped[int] = _limit()
    max_approvals_per_run: Mapped[int] = _limit()
    max_credits_per_run: Mapped[Credits] = mapped_column(default=Decimal("0"), server_default="0")
    ai_concurrency: Mapped[int] = mapped_column(Integer, default=4, server_default="4")
    max_in_article_images: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Called when a run completes, fails or stops on its budget; the secret signs each call and
    # is never returned by the API.
    notification_url: Mapped[str | None] = mapped_column(String(2000))
    notification_secret: Mapped[str | None] = mapped_column(Text)


class AutomationRun(IdMixin, Base):
    __tablename__ = "automation_runs"
    __table_args__ = (
        # The database's half of "at most one active run per site" (the Redis lease is the other).
        Index(
            "uq_automation_runs_one_active_per_site",
            "site_id",
            unique=True,
            postgresql_where=text("status IN ('running', 'paused')"),
        ),
        Index("ix_automation_runs_site_id_started_at", "site_id", "started_at"),
        one_of("status", RunStatus),
        one_of("trigger_type", TriggerType),
        CheckConstraint("current_stage BETWEEN 1 AND 7", name="current_stage_range"),
        CheckConstraint(
            "stopped_reason IS NULL OR stopped_reason IN ("
            + ", ".join(f"'{r.value}'" for r in StoppedReason)
            + ")",
            name="stopped_reason_valid",
        ),
    )

    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = site_fk()
    trigger_type: Mapped[TriggerType] = enum_column(TriggerType.MANUAL)
    status: Mapped[RunStatus] = enum_column(RunStatus.RUNNING)
    current_stage: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    total_credits_used: Mapped[Credits] = mapped_column(default=Decimal("0"), server_default="0")
    initial_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # How many items each stage is to handle: fixed at the start, re-planned at each stage's
    # end; what the run's progress is read from (app.runs.plan.ProgressPlan).
    progress_plan: Mapped[dict[str, Any]] = mapped_column(JSONB)
    stage_1_result: Mapped[dict[str, Any] | None] = _result()
    stage_2_result: Mapped[dict[str, Any] | None] = _result()
    stage_3_result: Mapped[dict[str, Any] | None] = _result()
    stage_4_result: Mapped[dict[str, Any] | None] = _result()
    stage_5_result: Mapped[dict[str, Any] | None] = _result()
    stage_6_result: Mapped[dict[str, Any] | None] = _result()
    stage_7_result: Mapped[dict[str, Any] | None] = _result()
    error_message: Mapped[str | None] = mapped_column(Text)
    stopped_reason: Mapped[StoppedReason | None] = mapped_column(EnumText(StoppedReason))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Raised each time a worker takes the site lease; stage commits check it (fencing).
    fence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Which slice of work the run is on: the arq job id is run:{run_id}:slice:{slice}.
    slice: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The current stage's progress: the last row id a finished batch reached, so that items that
    # failed in this run are not picked again (they keep their pending state for the next run).
    stage_cursor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class RunEvent(IdMixin, Base):
    """One line of a run's log: also what the SSE stream and the logs endpoint read."""

    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_run_pk_id", "run_pk", "id"),)

    run_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("automation_runs.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    stage: Mapped[int | None] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(50))
    level: Mapped[str] = mapped_column(String(10), default="info", server_default="info")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
