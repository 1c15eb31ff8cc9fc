"""Publishing settings and queue shapes (SPEC §9)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator

from app.models.publishing import WEEKDAYS, SchedulingMode
from app.schemas import TIME_PATTERN, InputModel, OutputModel, Page, format_time, null_refused

MAX_TIME_SLOTS = 96
MAX_QUEUE_LIMIT = 10_000
MAX_TARGET = 100_000

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
QueueStatus = Literal["scheduled", "publishing", "failed"]
WallTime = Annotated[
    str,
    Field(
        pattern=TIME_PATTERN,
        description="Wall-clock time in the site's time zone, 24-hour `HH:MM`.",
        examples=["09:00"],
    ),
]
Target = Annotated[int, Field(ge=0, le=MAX_TARGET, description="Informational; never blocks.")]


class PublishingSettingsOut(OutputModel):
    """How a site's approved content is approved and scheduled for publishing.

    `publish_days` and the times apply to `time_slots` and `stagger`; `immediate` publishes as
    soon as content is approved, on any day. Times are in the site's time zone.
    """

    site_id: int
    auto_approval_enabled: bool = Field(
        description="Stage 7 approves content in review (up to `max_approvals_per_run`); off, "
        "it only counts what awaits review. On by default, as in the reference."
    )
    auto_publish_enabled: bool = Field(
        description="Approved content is scheduled into the next free slots, then published "
        "through the site's integration when due (`none`: marked published here, read through "
        "the API). On by default, as in the reference."
    )
    scheduling_mode: SchedulingMode
    publish_days: list[Weekday] = Field(description="Days slots fall on, Monday first.")
    publish_time_slots: list[str] = Field(description="`time_slots` mode: `HH:MM`, sorted.")
    stagger_start_time: str = Field(description="`stagger` mode: the first slot of a day.")
    stagger_end_time: str = Field(description="`stagger` mode: the last possible slot of a day.")
    stagger_interval_minutes: int = Field(description="`stagger` mode: minutes between slots.")
    daily_publish_target: int
    weekly_publish_target: int
    monthly_publish_target: int
    queue_limit: int = Field(description="Most items in `scheduled` at once; 0 stops scheduling.")
    updated_at: datetime
    next_slots: list[datetime] = Field(
        default_factory=list,
        description="The next free slots (UTC, up to 5) by these settings: what the next "
        "approved articles would get. Slots of content already scheduled are not free.",
    )

    @field_validator("stagger_start_time", "stagger_end_time", mode="before")
    @classmethod
    def _as_hh_mm(cls, value: Any) -> Any:
        return format_time(value) if isinstance(value, time) else value


class PublishingSettingsUpdate(InputModel):
    """Settings to change; the others keep their values. Leave a field out rather than sending
    null. Days and time slots are stored in order, each once."""

    model_config = ConfigDict(json_schema_extra=null_refused())

    auto_approval_enabled: bool | None = None
    auto_publish_enabled: bool | None = None
    scheduling_mode: SchedulingMode | None = None
    publish_days: Annotated[list[Weekday], Field(max_length=7)] | None = None
    publish_time_slots: Annotated[list[WallTime], Field(max_length=MAX_TIME_SLOTS)] | None = None
    stagger_start_time: WallTime | None = None
    stagger_end_time: WallTime | None = None
    stagger_interval_minutes: (
        Annotated[int, Field(ge=1, le=1440, description="Minutes, 1-1440.")] | None
    ) = None
    daily_publish_target: Target | None = None
    weekly_publish_target: Target | None = None
    monthly_publish_target: Target | None = None
    queue_limit: Annotated[int, Field(ge=0, le=MAX_QUEUE_LIMIT, description="0-10000.")] | None = (
        None
    )

    @field_validator("*", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Validators run on given values only: a left-out field never gets here.
        if value is None:
            raise ValueError("must not be null; leave the field out to keep its value")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields sent, as column values."""
        values = self.model_dump(exclude_unset=True)
        if "publish_days" in values:
            values["publish_days"] = [day for day in WEEKDAYS if day in values["publish_days"]]
        if "publish_time_slots" in values:
            values["publish_time_slots"] = sorted(set(values["publish_time_slots"]))
        for field in ("stagger_start_time", "stagger_end_time"):
            if field in values:
                values[field] = time.fromisoformat(values[field])
        if "scheduling_mode" in values:
            values["scheduling_mode"] = SchedulingMode(values["scheduling_mode"]).value
        return values


class QueueItemOut(OutputModel):
    """An article in the publishing queue and its slot."""

    id: int
    title: str
    status: str
    site_status: str
    scheduled_publish_at: datetime | None = Field(description="The slot, in UTC.")
    scheduled_local: datetime | None = Field(
        description="The same slot in the site's time zone, with its UTC offset."
    )
    publish_attempts: int
    publish_error: str | None
    external_url: str | None


class QueueSummary(OutputModel):
    """The site's queue against its limit."""

    scheduled: int = Field(description="Items in `scheduled` now.")
    queue_limit: int
    waiting: int = Field(description="Approved items not yet given a slot.")
    auto_publish_enabled: bool = Field(
        description="Whether approved content is scheduled (on by default)."
    )
    timezone: str = Field(description="The site's time zone, which `scheduled_local` uses.")


class QueuePage(Page[QueueItemOut]):
    """A page of the publishing queue, with the queue's summary."""

    summary: QueueSummary
