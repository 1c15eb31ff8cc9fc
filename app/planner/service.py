"""Planner logic: adding keywords (JSON or CSV), listing, disabling."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from pydantic import ValidationError
from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import fetch_page
from app.errors import NotFound
from app.models.planner import Cluster, ContentIdea, Keyword
from app.models.tenancy import Site
from app.planner.csv_import import RawRow
from app.planner.schemas import (
    MAX_KEYWORD_LENGTH,
    MAX_VOLUME,
    ImportResult,
    KeywordIn,
    RowError,
)

_SPACES = re.compile(r"\s+")
_WHOLE = re.compile(r"\d+(\.0+)?", re.ASCII)


@dataclass
class _Prepared:
    rows: list[dict[str, object]] = field(default_factory=list)
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)


def normalise_keyword(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _parse_int(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    cleaned = value.replace(",", "").replace("_", "").strip()
    if not (cleaned.isascii() and cleaned.isdigit()) and not _WHOLE.fullmatch(cleaned):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    number = int(cleaned.split(".")[0])
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {number}")
    return number


def from_csv_rows(rows: Iterable[RawRow]) -> list[tuple[int, KeywordIn | str]]:
    """CSV rows as keyword inputs, or the message of why a row cannot be one: every check of
    the JSON input applies, and a row that fails one is that row's error, not the file's."""
    out: list[tuple[int, KeywordIn | str]] = []
    for raw in rows:
        try:
            entry = KeywordIn(
                keyword=raw.keyword,
                volume=_parse_int(raw.volume, "volume", 0, MAX_VOLUME),
                difficulty=_parse_int(raw.difficulty, "difficulty", 0, 100),
                intent=raw.intent,
            )
        except ValueError as exc:
            out.append((raw.row, _row_message(exc)))
            continue
        out.append((raw.row, entry))
    return out


def _row_message(exc: ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])} {error['msg'][:1].lower()}"
        f"{error['msg'][1:]}"
        for error in exc.errors()
    )


def _prepare(site: Site, entries: Sequence[tuple[int, KeywordIn | str]]) -> _Prepared:
    prepared = _Prepared()
    seen: set[str] = set()
    for row, entry in entries:
        if isinstance(entry, str):
            prepared.errors.append(RowError(row=row, message=entry))
            continue
        keyword = normalise_keyword(entry.keyword)
        if not keyword:
            prepared.errors.append(RowError(row=row, message="keyword is empty"))
            continue
        if len(keyword) > MAX_KEYWORD_LENGTH:
            prepared.errors.append(
                RowError(row=row, message=f"keyword is longer than {MAX_KEYWORD_LENGTH} characters")
            )
            continue
        folded = keyword.lower()
        if folded in seen:
            prepared.duplicates += 1
            continue
        seen.add(folded)
        prepared.rows.append(
            {
                "account_id": site.account_id,
                "site_id": site.id,
                "keyword": keyword,
                "volume": entry.volume,
                "difficulty": entry.difficulty,
                "intent": entry.intent.strip().lower() if entry.intent else None,
            }
        )
    return prepared


async def add_keywords(
    session: AsyncSession, site: Site, entries: Sequence[tuple[int, KeywordIn | str]]
) -> ImportResult:
    """Add keywords; a keyword the site already has (in any case) is a duplicate, not an error."""
    prepared = _prepare(site, entries)
    created = 0
    if prepared.rows:
        # One statement, executed for many rows: SQLAlchemy sends them in pages of multi-row
        # VALUES ("insertmanyvalues"), compiled once, with RETURNING of the rows it inserted.
        # On the table, not the entity: the ORM's bulk path adds nothing here but time.
        table = cast(Table, Keyword.__table__)
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=[table.c.site_id, func.lower(table.c.keyword)])
            .returning(table.c.id)
        )
        created = len((await session.execute(stmt, prepared.rows)).all())
    duplicates = prepared.duplicates + len(prepared.rows) - created
    return ImportResult(created=created, duplicates=duplicates, errors=prepared.errors)


async def list_keywords(
    session: AsyncSession,
    site: Site,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    cluster_id: int | None = None,
    disabled: bool | None = None,
    search: str | None = None,
) -> tuple[list[Keyword], int]:
    stmt = select(Keyword).where(Keyword.site_id == site.id)
    if status is not None:
        stmt = stmt.where(Keyword.status == status)
    if cluster_id is not None:
        stmt = stmt.where(Keyword.cluster_id == cluster_id)
    if disabled is not None:
        stmt = stmt.where(Keyword.disabled == disabled)
    if search:
        stmt = stmt.where(Keyword.keyword.icontains(search, autoescape=True))
    return await fetch_page(session, stmt.order_by(Keyword.id), limit=limit, offset=offset)


async def get_keyword(session: AsyncSession, account_id: int, keyword_id: int) -> Keyword:
    keyword = await session.scalar(
        select(Keyword).where(Keyword.id == keyword_id, Keyword.account_id == account_id)
    )
    if keyword is None:
        raise NotFound(f"keyword {keyword_id} not found")
    return keyword


async def set_disabled(
    session: AsyncSession, account_id: int, keyword_id: int, disabled: bool
) -> Keyword:
    keyword = await get_keyword(session, account_id, keyword_id)
    keyword.disabled = disabled
    await session.flush()
    await session.refresh(keyword)
    return keyword


async def list_clusters(
    session: AsyncSession, site: Site, *, limit: int, offset: int, status: str | None = None
) -> tuple[list[Cluster], int]:
    stmt = select(Cluster).where(Cluster.site_id == site.id)
    if status is not None:
        stmt = stmt.where(Cluster.status == status)
    return await fetch_page(session, stmt.order_by(Cluster.id), limit=limit, offset=offset)


async def list_ideas(
    session: AsyncSession,
    site: Site,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    cluster_id: int | None = None,
) -> tuple[list[ContentIdea], int]:
    stmt = select(ContentIdea).where(ContentIdea.site_id == site.id)
    if status is not None:
        stmt = stmt.where(ContentIdea.status == status)
    if cluster_id is not None:
        stmt = stmt.where(ContentIdea.cluster_id == cluster_id)
    return await fetch_page(session, stmt.order_by(ContentIdea.id), limit=limit, offset=offset)
