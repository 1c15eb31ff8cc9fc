"""Credits: what each AI operation costs, the ledger, and each site's budget allocation."""

from __future__ import annotations

from datetime import datetime
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
    Numeric,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdMixin, TimestampMixin
from app.models._types import Credits, EnumText, account_fk, enum_column, one_of


class Operation(StrEnum):
    """The five AI functions that cost credits."""

    CLUSTERING = "clustering"
    IDEA_GENERATION = "idea_generation"
    CONTENT_GENERATION = "content_generation"
    IMAGE_PROMPT_EXTRACTION = "image_prompt_extraction"
    IMAGE_GENERATION = "image_generation"


class Pricing(StrEnum):
    PER_UNIT = "per_unit"
    PER_TOKEN = "per_token"


class TransactionKind(StrEnum):
    TOPUP = "topup"
    RESERVE = "reserve"
    SETTLE = "settle"
    RELEASE = "release"
    ADJUSTMENT = "adjustment"


DEFAULT_BUDGET_PERCENTAGES = {
    Operation.CLUSTERING: Decimal(15),
    Operation.IDEA_GENERATION: Decimal(10),
    Operation.CONTENT_GENERATION: Decimal(40),
    Operation.IMAGE_PROMPT_EXTRACTION: Decimal(5),
    Operation.IMAGE_GENERATION: Decimal(30),
}


class CreditCostConfig(IdMixin, TimestampMixin, Base):
    """The price of one operation: `credits_per_unit` for every `unit_size` units, or by tokens."""

    __tablename__ = "credit_cost_configs"
    __table_args__ = (
        one_of("operation", Operation),
        one_of("pricing", Pricing),
        CheckConstraint("credits_per_unit >= 0 AND unit_size > 0", name="unit_price"),
        CheckConstraint(
            "credits_per_1k_tokens >= 0 AND min_credits_per_call >= 0", name="token_price"
        ),
        CheckConstraint("budget_percentage BETWEEN 0 AND 100", name="budget_percentage_range"),
    )

    operation: Mapped[Operation] = mapped_column(EnumText(Operation), unique=True)
    pricing: Mapped[Pricing] = enum_column(Pricing.PER_UNIT)
    unit: Mapped[str] = mapped_column(String(32))
    unit_size: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    credits_per_unit: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    credits_per_1k_tokens: Mapped[Decimal] = mapped_column(
        Numeric(10, 4), default=Decimal(0), server_default="0"
    )
    min_credits_per_call: Mapped[Decimal] = mapped_column(
        Numeric(10, 4), default=Decimal(0), server_default="0"
    )
    budget_percentage: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")


class CreditTransaction(IdMixin, Base):
    """One movement of an account's credits. `idempotency_key` makes a retried movement a no-op."""

    __tablename__ = "credit_transactions"
    __table_args__ = (
        one_of("kind", TransactionKind),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        Index("ix_credit_transactions_account_id_id", "account_id", "id"),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("sites.id", ondelete="SET NULL"), index=True
    )
    run_pk: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("automation_runs.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[TransactionKind] = mapped_column(EnumText(TransactionKind, 16))
    operation: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[Credits] = mapped_column()
    balance_after: Mapped[Credits] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _percentage(operation: Operation) -> Mapped[Decimal]:
    value = DEFAULT_BUDGET_PERCENTAGES[operation]
    return mapped_column(Numeric(5, 2), default=value, server_default=str(value))


class SiteAIBudgetAllocation(IdMixin, TimestampMixin, Base):
    __tablename__ = "site_ai_budget_allocations"
    __table_args__ = (
        *(
            CheckConstraint(f"{op.value}_percentage BETWEEN 0 AND 100", name=f"{op.value}_range")
            for op in Operation
        ),
        CheckConstraint(
            " + ".join(f"{op.value}_percentage" for op in Operation) + " = 100",
            name="sums_to_100",
        ),
    )

    account_id: Mapped[int] = account_fk()
    site_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sites.id", ondelete="CASCADE"), unique=True
    )
    use_global_defaults: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    clustering_percentage: Mapped[Decimal] = _percentage(Operation.CLUSTERING)
    idea_generation_percentage: Mapped[Decimal] = _percentage(Operation.IDEA_GENERATION)
    content_generation_percentage: Mapped[Decimal] = _percentage(Operation.CONTENT_GENERATION)
    image_prompt_extraction_percentage: Mapped[Decimal] = _percentage(
        Operation.IMAGE_PROMPT_EXTRACTION
    )
    image_generation_percentage: Mapped[Decimal] = _percentage(Operation.IMAGE_GENERATION)
