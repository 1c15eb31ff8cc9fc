"""The writer: tasks, the articles written for them, and their images."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._types import EnumText, account_fk, enum_column, one_of, site_fk


class TaskStatus(StrEnum):
    QUEUED = "queued"
    COMPLETED = "completed"
    FAILED = "failed"


class ContentStatus(StrEnum):
    DRAFT = "draft"
    REVIEW = "review"
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"


class SiteStatus(StrEnum):
    NOT_PUBLISHED = "not_published"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"


class ImageType(StrEnum):
    FEATURED = "featured"
    IN_ARTICLE = "in_article"


class ImageStatus(StrEnum):
    PENDING = "pending"
    GENERATED = "generated"
    FAILED = "failed"


# The random part of an image's file name and URL (app/media.py): 128 bits, so that the URL of
# one image cannot be found from another's or from the ids.
URL_TOKEN_BYTES = 16


def new_url_token() -> str:
    return secrets.token_urlsafe(URL_TOKEN_BYTES)


class Task(IdMixin, TimestampMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_site_id_status", "site_id", "status"),
        one_of("status", TaskStatus),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = site_fk()
    idea_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("content_ideas.id", ondelete="SET NULL"), unique=True
    )
    cluster_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("clusters.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[TaskStatus] = enum_column(TaskStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(Text)


class Content(IdMixin, TimestampMixin, Base):
    __tablename__ = "contents"
    __table_args__ = (
        Index("ix_contents_site_id_status", "site_id", "status"),
        Index(
            "ix_contents_site_status_scheduled_publish_at", "site_status", "scheduled_publish_at"
        ),
        one_of("status", ContentStatus),
        one_of("site_status", SiteStatus),
        CheckConstraint("word_count >= 0", name="word_count_not_negative"),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = site_fk()
    task_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tasks.id", ondelete="SET NULL"), unique=True
    )
    title: Mapped[str] = mapped_column(String(500))
    html: Mapped[str] = mapped_column(Text, default="", server_default="")
    word_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    meta_title: Mapped[str] = mapped_column(String(300), default="", server_default="")
    meta_description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    status: Mapped[ContentStatus] = enum_column(ContentStatus.DRAFT)
    site_status: Mapped[SiteStatus] = enum_column(SiteStatus.NOT_PUBLISHED)
    scheduled_publish_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    external_id: Mapped[str | None] = mapped_column(String(200))
    external_url: Mapped[str | None] = mapped_column(String(2000))
    publish_error: Mapped[str | None] = mapped_column(Text)
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When a publisher claimed the content (`publishing`); a stale claim means its worker died.
    publish_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Image(IdMixin, TimestampMixin, Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("content_id", "image_type", "position"),
        Index("ix_images_site_id_status", "site_id", "status"),
        one_of("image_type", ImageType),
        one_of("status", ImageStatus),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = site_fk()
    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contents.id", ondelete="CASCADE"), index=True
    )
    image_type: Mapped[ImageType] = mapped_column(EnumText(ImageType))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    prompt: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    url_token: Mapped[str] = mapped_column(String(32), default=new_url_token)
    status: Mapped[ImageStatus] = enum_column(ImageStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
