"""Column helpers shared by the model modules."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Numeric, String
from sqlalchemy.orm import MappedColumn, mapped_column

Credits = Annotated[Decimal, mapped_column(Numeric(12, 2))]


def one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    """A CHECK that keeps a text column inside an enum's values."""
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_valid")


def enum_column(default: StrEnum) -> MappedColumn[str]:
    return mapped_column(String(32), default=default.value, server_default=default.value)


def account_fk() -> MappedColumn[int]:
    return mapped_column(BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), index=True)


def site_fk() -> MappedColumn[int]:
    return mapped_column(BigInteger, ForeignKey("sites.id", ondelete="CASCADE"), index=True)
