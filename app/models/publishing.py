"""Publishing: when a site's approved content goes out, and through which publisher."""

from __future__ import annotations

from datetime import time
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, Time
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._types import account_fk, enum_column, one_of


class SchedulingMode(StrEnum):
    TIME_SLOTS = "time_slots"
    STAGGER = "stagger"
    IMMEDIATE = "immediate"


class IntegrationKind(StrEnum):
    NONE = "none"
    WORDPRESS = "wordpress"
    WEBHOOK = "webhook"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PublishingSettings(IdMixin, TimestampMixin, Base):
    __tablename__ = "publishing_settings"
    __table_args__ = (
        one_of("scheduling_mode", SchedulingMode),
        CheckConstraint("stagger_interval_minutes BETWEEN 1 AND 1440", name="stagger_interval"),
        CheckConstraint("stagger_start_time < stagger_end_time", name="stagger_window"),
        CheckConstraint("queue_limit >= 0", name="queue_limit_not_negative"),
        CheckConstraint(
            "daily_publish_target >= 0 AND weekly_publish_target >= 0 "
            "AND monthly_publish_target >= 0",
            name="targets_not_negative",
        ),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sites.id", ondelete="CASCADE"), unique=True
    )
    # On for a new site, as in the reference (003): stage 7 approves and schedules its articles.
    # Sites that existed before revision 0008 were given rows that keep them as they were (off).
    auto_approval_enabled: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default="true"
    )
    auto_publish_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    scheduling_mode: Mapped[SchedulingMode] = enum_column(SchedulingMode.TIME_SLOTS)
    publish_days: Mapped[list[str]] = mapped_column(
        JSONB,
        default=lambda: list(WEEKDAYS[:5]),
        server_default='["mon", "tue", "wed", "thu", "fri"]',
    )
    publish_time_slots: Mapped[list[str]] = mapped_column(
        JSONB,
        default=lambda: ["09:00", "14:00", "18:00"],
        server_default='["09:00", "14:00", "18:00"]',
    )
    stagger_start_time: Mapped[time] = mapped_column(
        Time, default=time(9, 0), server_default="09:00"
    )
    stagger_end_time: Mapped[time] = mapped_column(
        Time, default=time(18, 0), server_default="18:00"
    )
    stagger_interval_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    daily_publish_target: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    weekly_publish_target: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    monthly_publish_target: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    queue_limit: Mapped[int] = mapped_column(Integer, default=100, server_default="100")


class PublishingIntegration(IdMixin, TimestampMixin, Base):
    """The site's publisher. `secret` (application password or signing key) is never returned."""

    __tablename__ = "publishing_integrations"
    __table_args__ = (one_of("kind", IntegrationKind),)

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sites.id", ondelete="CASCADE"), unique=True
    )
    kind: Mapped[IntegrationKind] = enum_column(IntegrationKind.NONE)
    endpoint_url: Mapped[str | None] = mapped_column(String(2000))
    username: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
