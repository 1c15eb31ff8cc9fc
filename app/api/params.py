"""Query and path parameters shared by the routers: ids and pagination."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from app.schemas import MAX_ID, MAX_LIMIT, MAX_OFFSET, Pagination


def id_path(description: str) -> Any:
    return Path(ge=1, le=MAX_ID, description=description)


def id_query(description: str) -> Any:
    return Query(ge=1, le=MAX_ID, description=description)


async def pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> Pagination:
    return Pagination(limit=limit, offset=offset)
