"""The planner: keywords, the clusters they fall into, and the content ideas of each cluster."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._types import account_fk, enum_column, one_of, site_fk


class KeywordStatus(StrEnum):
    NEW = "new"
    MAPPED = "mapped"


class ClusterStatus(StrEnum):
    NEW = "new"
    MAPPED = "mapped"


class IdeaStatus(StrEnum):
    NEW = "new"
    QUEUED = "queued"


class Keyword(IdMixin, TimestampMixin, Base):
    __tablename__ = "keywords"
    __table_args__ = (
        Index(
            "uq_keywords_site_id_keyword_lower", "site_id", func.lower(text("keyword")), unique=True
        ),
        Index("ix_keywords_site_id_status", "site_id", "status"),
        one_of("status", KeywordStatus),
        CheckConstraint("volume IS NULL OR volume >= 0", name="volume_not_negative"),
        CheckConstraint(
            "difficulty IS NULL OR difficulty BETWEEN 0 AND 100", name="difficulty_range"
        ),
        CheckConstraint("keyword = btrim(keyword) AND keyword <> ''", name="keyword_trimmed"),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = site_fk()
    keyword: Mapped[str] = mapped_column(String(500))
    volume: Mapped[int | None] = mapped_column(BigInteger)
    difficulty: Mapped[int | None] = mapped_column(Integer)
    intent: Mapped[str | None] = mapped_column(String(50))
    cluster_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("clusters.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[KeywordStatus] = enum_column(KeywordStatus.NEW)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class Cluster(IdMixin, TimestampMixin, Base):
    __tablename__ = "clusters"
    __table_args__ = (
        Index("uq_clusters_site_id_name_lower", "site_id", func.lower(text("name")), unique=True),
        one_of("status", ClusterStatus),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = site_fk()
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    keywords_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[ClusterStatus] = enum_column(ClusterStatus.NEW)


class ContentIdea(IdMixin, TimestampMixin, Base):
    __tablename__ = "content_ideas"
    __table_args__ = (
        Index("ix_content_ideas_site_id_status", "site_id", "status"),
        one_of("status", IdeaStatus),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = site_fk()
    cluster_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    outline: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    content_type: Mapped[str] = mapped_column(String(50), default="post", server_default="post")
    content_structure: Mapped[str] = mapped_column(
        String(50), default="article", server_default="article"
    )
    target_keywords: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    target_word_count: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[IdeaStatus] = enum_column(IdeaStatus.NEW)
