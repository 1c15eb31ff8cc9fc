"""Automation config shapes: what `config/` answers and what `update_config/` accepts."""

from __future__ import annotations

import re
from datetime import datetime, time
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.models.automation import AutomationConfig, Frequency
from app.schemas import (
    CreditAmount,
    InputModel,
    OutputModel,
    PlainDecimalText,
    _scalar_types,
    decimal_schema,
    format_time,
    null_refused,
    storable,
)

MAX_DELAY_SECONDS = 3600
# Numeric(12, 2): the largest amount the column holds.
MAX_CREDITS = Decimal("9999999999.99")
MAX_LIMIT = 1_000_000
# `HH:MM`, or `HH:MM:00` as reference clients send it: the schedule runs to the minute.
SCHEDULED_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:00)?$"
MAX_URL_LENGTH = 2000
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 200
# The update fields that null clears rather than refuses.
NULLABLE = frozenset({"notification_url"})

# Numbers also as text of digits ("20"), as the reference's Django REST API took them and its
# clients send them; booleans stay JSON's own (a "true" is refused).
DIGITS = r"^[0-9]+$"


def digits_schema(minimum: int, maximum: int, description: str) -> WithJsonSchema:
    """The document of an integer from `minimum` to `maximum` that may come as text of digits."""
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": minimum, "maximum": maximum},
                {"type": "string", "pattern": DIGITS},
            ],
            "description": f"{description} A number, or the same as text of digits.",
        }
    )


BatchSize = Annotated[int, Field(ge=1, le=1000), digits_schema(1, 1000, "Items per batch, 1-1000.")]
Delay = Annotated[
    int, Field(ge=0, le=MAX_DELAY_SECONDS), digits_schema(0, MAX_DELAY_SECONDS, "Seconds, 0-3600.")
]
Limit = Annotated[
    int,
    Field(ge=0, le=MAX_LIMIT),
    digits_schema(0, MAX_LIMIT, "Most items per run; 0 = unlimited."),
]
WeekDay = Annotated[int, Field(ge=0, le=6), digits_schema(0, 6, "0 = Monday ... 6 = Sunday.")]
MonthDay = Annotated[
    int, Field(ge=1, le=31), digits_schema(1, 31, "Day 1-31; the month's last day if shorter.")
]
Concurrency = Annotated[
    int, Field(ge=1, le=64), digits_schema(1, 64, "AI calls in flight per run, 1-64.")
]
InArticleImages = Annotated[
    int, Field(ge=0, le=10), digits_schema(0, 10, "In-article images per article, 0-10.")
]
ScheduledTime = Annotated[
    str,
    Field(
        pattern=SCHEDULED_TIME_PATTERN,
        description="Wall-clock time in the site's time zone, 24-hour `HH:MM`, or `HH:MM:00` "
        "(the schedule runs to the minute).",
        examples=["02:00", "02:00:00"],
    ),
]
# What `config/` answers and an update cannot change: a client may send the body it read back
# as it is, so these are taken and ignored (as Django REST ignores read-only fields).
READ_ONLY = frozenset({"site_id", "last_run_at", "next_run_at", "notification_secret_set"})
ReadOnly = Annotated[
    Any,
    Field(
        description="Read-only, as `config/` answers it: sent back, it is ignored.",
        json_schema_extra={"readOnly": True},
    ),
]


class ConfigOut(OutputModel):
    """A site's automation config: schedule, batch sizes, delays, stage switches, per-run
    limits. `next_run_at` is when the scheduler will start the next run (null while disabled)."""

    site_id: int
    enabled: bool
    frequency: Frequency
    scheduled_time: str = Field(description="24-hour `HH:MM` in the site's time zone.")
    weekly_day: int = Field(description="Weekly runs: 0 = Monday ... 6 = Sunday.")
    monthly_day: int = Field(description="Monthly runs: day 1-31, the month's last day if shorter.")
    stage_1_batch_size: int
    stage_2_batch_size: int
    stage_3_batch_size: int
    stage_4_batch_size: int
    stage_5_batch_size: int
    stage_6_batch_size: int
    within_stage_delay: int = Field(description="Seconds between batches.")
    between_stage_delay: int = Field(description="Seconds between stages.")
    stage_1_enabled: bool
    stage_2_enabled: bool
    stage_3_enabled: bool
    stage_4_enabled: bool
    stage_5_enabled: bool
    stage_6_enabled: bool
    stage_7_enabled: bool
    max_keywords_per_run: int = Field(description="0 = unlimited, like every per-run limit.")
    max_clusters_per_run: int
    max_ideas_per_run: int
    max_tasks_per_run: int
    max_content_per_run: int
    max_images_per_run: int
    max_approvals_per_run: int
    max_credits_per_run: CreditAmount = Field(description="Credits one run may spend; 0 = no cap.")
    ai_concurrency: int = Field(description="AI calls in flight per run.")
    max_in_article_images: int = Field(
        description="In-article images per article (plus 1 featured)."
    )
    last_run_at: datetime | None
    next_run_at: datetime | None
    notification_url: str | None = Field(
        description="Receives a signed POST when a run completes, fails or stops on its credit "
        "budget; null: no notifications."
    )
    notification_secret_set: bool = Field(
        description="Whether the secret that signs notifications is set (it is never returned)."
    )

    @model_validator(mode="before")
    @classmethod
    def _secret_as_flag(cls, value: Any) -> Any:
        # Read from the row field by field, so that the secret never enters the answer.
        if isinstance(value, AutomationConfig):
            fields = {
                name: getattr(value, name) for name in cls.model_fields if hasattr(value, name)
            }
            fields["notification_secret_set"] = bool(value.notification_secret)
            return fields
        return value

    @field_validator("scheduled_time", mode="before")
    @classmethod
    def _as_hh_mm(cls, value: Any) -> Any:
        return format_time(value) if isinstance(value, time) else value


class ConfigUpdate(InputModel):
    """Config fields to change; the others keep their values. Leave a field out rather than
    sending null: every field has a value, so null is refused (but by `notification_url`).
    The body `config/` answers can be sent back as it is: its read-only fields are ignored."""

    model_config = ConfigDict(json_schema_extra=null_refused(*NULLABLE))

    site_id: ReadOnly = None
    last_run_at: ReadOnly = None
    next_run_at: ReadOnly = None
    notification_secret_set: ReadOnly = None
    enabled: bool | None = None
    frequency: Frequency | None = None
    scheduled_time: ScheduledTime | None = None
    weekly_day: WeekDay | None = None
    monthly_day: MonthDay | None = None
    stage_1_batch_size: BatchSize | None = None
    stage_2_batch_size: BatchSize | None = None
    stage_3_batch_size: BatchSize | None = None
    stage_4_batch_size: BatchSize | None = None
    stage_5_batch_size: BatchSize | None = None
    stage_6_batch_size: BatchSize | None = None
    within_stage_delay: Delay | None = None
    between_stage_delay: Delay | None = None
    stage_1_enabled: bool | None = None
    stage_2_enabled: bool | None = None
    stage_3_enabled: bool | None = None
    stage_4_enabled: bool | None = None
    stage_5_enabled: bool | None = None
    stage_6_enabled: bool | None = None
    stage_7_enabled: bool | None = None
    max_keywords_per_run: Limit | None = None
    max_clusters_per_run: Limit | None = None
    max_ideas_per_run: Limit | None = None
    max_tasks_per_run: Limit | None = None
    max_content_per_run: Limit | None = None
    max_images_per_run: Limit | None = None
    max_approvals_per_run: Limit | None = None
    max_credits_per_run: (
        Annotated[
            Decimal,
            PlainDecimalText,
            Field(ge=0, le=MAX_CREDITS, decimal_places=2),
            decimal_schema(MAX_CREDITS),
        ]
        | None
    ) = None
    ai_concurrency: Concurrency | None = None
    max_in_article_images: InArticleImages | None = None
    notification_url: Annotated[str, Field(max_length=MAX_URL_LENGTH)] | None = Field(
        None,
        description="Where run notifications go (https; checked to reach a public address). "
        "Null or an empty string stops notifications and forgets the secret.",
    )
    notification_secret: (
        Annotated[SecretStr, Field(min_length=MIN_SECRET_LENGTH, max_length=MAX_SECRET_LENGTH)]
        | None
    ) = Field(
        None,
        description="Signs each notification (HMAC-SHA256); write-only. Needed with the first "
        "`notification_url`; send it again to rotate it.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _json_types(cls, value: Any, info: ValidationInfo) -> Any:
        """InputModel's JSON types, but a whole number may come as text of digits."""
        if (
            isinstance(value, str)
            and info.field_name is not None
            and int in _scalar_types(cls.model_fields[info.field_name].annotation)
        ):
            if not re.fullmatch(DIGITS, value):
                raise ValueError("must be a whole number (or its digits as text)")
            return int(value)
        return super()._json_types(value, info)

    @field_validator("*", mode="after")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Validators run on given values only: a left-out field never gets here.
        if value is None and info.field_name not in NULLABLE | READ_ONLY:
            raise ValueError("must not be null; leave the field out to keep its value")
        return value

    @field_validator("notification_secret", mode="after")
    @classmethod
    def _secret_storable(cls, value: SecretStr | None) -> SecretStr | None:
        # The base class checks plain strings only.
        if value is not None:
            storable(value.get_secret_value())
        return value

    def changes(self) -> dict[str, Any]:
        """The fields sent, as column values."""
        values = self.model_dump(exclude_unset=True, exclude=set(READ_ONLY))
        if "scheduled_time" in values:
            values["scheduled_time"] = time.fromisoformat(values["scheduled_time"])
        if "frequency" in values:
            values["frequency"] = Frequency(values["frequency"]).value
        if "notification_url" in values:
            values["notification_url"] = values["notification_url"] or None
        if self.notification_secret is not None:
            values["notification_secret"] = self.notification_secret.get_secret_value()
        return values
