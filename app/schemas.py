"""Shared schema bases of every domain and the API: input and output base classes, the list
envelope, pagination, credit amounts. No FastAPI here: the query and path parameters are in
`app.api.params`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import time
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

T = TypeVar("T")

MAX_LIMIT = 500
# Ids are PostgreSQL BIGINTs, and so is OFFSET: a larger number is bad input, not a server error.
MAX_ID = 2**63 - 1
MAX_OFFSET = 2**63 - 1
# Characters PostgreSQL cannot store in text: NUL, and lone UTF-16 surrogates (not encodable
# as UTF-8). JSON can spell both (`\u0000`, `\ud800`), and a URL can carry NUL (`%00`).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A wall-clock time of day, 24-hour `HH:MM`, as schedules and publishing slots take it.
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def storable(value: str) -> str:
    """`value`, or ValueError when it holds a character PostgreSQL refuses in text."""
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain NUL characters or lone surrogates")
    return value


# Every string query, path or header parameter is one of these, so that a character the
# database refuses is a 400 naming the parameter rather than a 500 from the query.
Text = Annotated[str, AfterValidator(storable)]


CreditAmount = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
# A decimal sent as text: digits, and at most two after the point (no sign, exponent or spaces).
_DECIMAL_TEXT = r"^[0-9]+(\.[0-9]{1,2})?$"


def _plain_decimal_text(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(_DECIMAL_TEXT, value):
        raise ValueError("must be a number with at most 2 decimal places, such as 12.5")
    return value


PlainDecimalText = BeforeValidator(_plain_decimal_text)


def decimal_schema(maximum: Decimal) -> WithJsonSchema:
    """The document of a decimal from 0 to `maximum` with `PlainDecimalText`: a JSON number,
    or the same as text ("12.50")."""
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": float(maximum)},
                {"type": "string", "pattern": _DECIMAL_TEXT},
            ],
            "description": "At most 2 decimal places: a number, or the same as text.",
        }
    )


def not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without its `null` alternative."""
    options = schema.get("anyOf")
    if not options:
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) != 1:
        return {**schema, "anyOf": kept}
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**kept[0], **rest}


def null_refused(*nullable: str) -> Callable[[dict[str, Any]], None]:
    """The `json_schema_extra` of an input model whose optional fields may be left out but not
    sent as null (but `nullable`): `X | None = None` reads "optional" to pydantic and
    "nullable" to the document, so the document drops the null."""

    def extra(schema: dict[str, Any]) -> None:
        properties = schema.get("properties", {})
        for name, field in properties.items():
            if name not in nullable:
                properties[name] = not_null(field)

    return extra


def format_time(value: time) -> str:
    return value.strftime("%H:%M")


class VariantModel(BaseModel):
    """One shape of a discriminated union in a request body: unknown fields, NUL characters
    and lone surrogates are refused. Pydantic allows no before-validator on the tag, so the
    JSON types of InputModel are each field's own (`Annotated[bool, Strict()]`)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value) if isinstance(value, str) else value


class InputModel(VariantModel):
    """Request bodies: unknown fields, NUL characters and lone surrogates are refused, and
    integers and booleans are JSON's, as the document says: an integer field takes 5 or 5.0
    but not "5" or true, a boolean field true or false only (pydantic's lax mode takes more,
    its strict mode refuses 5.0)."""

    @field_validator("*", mode="before")
    @classmethod
    def _json_types(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or info.field_name is None:
            return value
        kinds = _scalar_types(cls.model_fields[info.field_name].annotation)
        if bool in kinds and not isinstance(value, bool):
            raise ValueError("must be true or false")
        if int in kinds and isinstance(value, (bool, str)):
            raise ValueError("must be a whole number, not text or true/false")
        return value


def _scalar_types(annotation: Any) -> set[Any]:
    """The plain types a field's annotation may hold, through Annotated and unions."""
    if get_origin(annotation) is Annotated:
        return _scalar_types(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return {kind for arg in get_args(annotation) for kind in _scalar_types(arg)}
    return {annotation}


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
