"""Accounts, users, sites and API keys: who owns what."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._types import Credits, EnumText, account_fk, one_of


class Account(IdMixin, TimestampMixin, Base):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("credits >= 0", name="credits_not_negative"),)

    name: Mapped[str] = mapped_column(String(200))
    credits: Mapped[Credits] = mapped_column(default=Decimal("0"), server_default="0")


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", func.lower(text("email")), unique=True),)

    account_id: Mapped[int] = account_fk()
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")


class Site(IdMixin, TimestampMixin, Base):
    __tablename__ = "sites"

    account_id: Mapped[int] = account_fk()
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")


class ApiKey(IdMixin, Base):
    """An API key: `ak_<prefix>_<secret>`. Only the prefix and a hash of the whole key are kept."""

    __tablename__ = "api_keys"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = account_fk()
    name: Mapped[str] = mapped_column(String(200), default="default", server_default="default")
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginScope(StrEnum):
    EMAIL = "email"
    ADDRESS = "address"


class LoginFailures(Base):
    """Login attempts of one email, or from one client address, counted in a window (failed
    ones, and ones whose password is being checked); the window's end also ends a block."""

    __tablename__ = "login_failures"
    __table_args__ = (one_of("scope", LoginScope),)

    scope: Mapped[LoginScope] = mapped_column(EnumText(LoginScope, 16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
