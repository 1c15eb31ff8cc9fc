"""Column helpers shared by the model modules."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from sqlalchemy import BigInteger, CheckConstraint, Dialect, ForeignKey, Numeric, String
from sqlalchemy.orm import MappedColumn, mapped_column
from sqlalchemy.types import TypeDecorator

Credits = Annotated[Decimal, mapped_column(Numeric(12, 2))]

E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """An enum column as the database has it, a VARCHAR holding the member's value (kept inside
    the values by `one_of`); Python reads and writes the member. A string that is one of the
    values is taken too, any other is refused before it reaches the database."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int = 32) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


def one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    """A CHECK that keeps a text column inside an enum's values."""
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_valid")


def enum_column(default: E) -> MappedColumn[E]:
    return mapped_column(EnumText(type(default)), default=default, server_default=default.value)


def account_fk() -> MappedColumn[int]:
    return mapped_column(BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), index=True)


def site_fk() -> MappedColumn[int]:
    return mapped_column(BigInteger, ForeignKey("sites.id", ondelete="CASCADE"), index=True)
