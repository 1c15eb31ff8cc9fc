"""Shared API schemas: input base class, list envelope, pagination, credit amounts."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

T = TypeVar("T")

MAX_LIMIT = 500
# Ids are PostgreSQL BIGINTs: a larger number is bad input, not a server error.
MAX_ID = 2**63 - 1


def id_path(description: str) -> Any:
    return Path(ge=1, le=MAX_ID, description=description)


def id_query(description: str) -> Any:
    return Query(ge=1, le=MAX_ID, description=description)


CreditAmount = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


class InputModel(BaseModel):
    """Request bodies: unknown fields and NUL characters are refused."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """A page of a list."""

    items: list[T]
    total: int = Field(description="How many items match, over all pages.")
    limit: int
    offset: int


class Pagination(BaseModel):
    limit: int
    offset: int


M = TypeVar("M", bound=BaseModel)


def page_of(model: type[M], rows: Sequence[object], total: int, page: Pagination) -> Page[M]:
    """A page of `rows` (ORM objects) shown as `model`."""
    items = [model.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> Pagination:
    return Pagination(limit=limit, offset=offset)
