"""The one door through which an article's `status` and `site_status` change (SPEC §4, §9).

```
status       draft ──mark_ready──▶ review ──approve──▶ approved ──record_published──▶ published
             review | approved ──reject──▶ rejected ──approve (by hand)──▶ approved

site_status  not_published ──schedule──▶ scheduled ──claim──▶ publishing
             publishing ──record_published | record_failed──▶ published | failed
             publishing ──claim (stale)──▶ publishing ──release_claim──▶ scheduled
             failed ──requeue──▶ scheduled
             not_published | scheduled | failed ──reject──▶ not_published
```

`move` builds one guarded UPDATE for any number of rows: only rows still in an allowed
from-status change (compare-and-set, so two writers racing on a row never both move it), a
claim picks its rows `FOR UPDATE SKIP LOCKED` in the same statement, and the ids that moved are
returned. A (from, to) pair missing from the tables is refused with `ForbiddenMove` before any
SQL runs. The named operations below are the only writers of either column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Update, bindparam, case, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db import Executor
from app.models.writer import Content, ContentStatus, Image, ImageStatus, SiteStatus

DRAFT, REVIEW, APPROVED, REJECTED, PUBLISHED = (
    ContentStatus.DRAFT,
    ContentStatus.REVIEW,
    ContentStatus.APPROVED,
    ContentStatus.REJECTED,
    ContentStatus.PUBLISHED,
)
NOT_PUBLISHED, SCHEDULED, PUBLISHING, SITE_PUBLISHED, FAILED = (
    SiteStatus.NOT_PUBLISHED,
    SiteStatus.SCHEDULED,
    SiteStatus.PUBLISHING,
    SiteStatus.PUBLISHED,
    SiteStatus.FAILED,
)

STATUS_MOVES: dict[ContentStatus, frozenset[ContentStatus]] = {
    DRAFT: frozenset({REVIEW}),
    REVIEW: frozenset({APPROVED, REJECTED}),
    # A reviewer may change their mind until publishing has started.
    APPROVED: frozenset({REJECTED, PUBLISHED}),
    REJECTED: frozenset({APPROVED}),
    PUBLISHED: frozenset(),
}

SITE_STATUS_MOVES: dict[SiteStatus, frozenset[SiteStatus]] = {
    # Rejecting an article that never had a slot leaves it where it is.
    NOT_PUBLISHED: frozenset({SCHEDULED, NOT_PUBLISHED}),
    SCHEDULED: frozenset({PUBLISHING, NOT_PUBLISHED}),
    # A claim whose worker died is claimed again, or handed back when its site is switched off.
    PUBLISHING: frozenset({PUBLISHING, SCHEDULED, SITE_PUBLISHED, FAILED}),
    FAILED: frozenset({SCHEDULED, NOT_PUBLISHED}),
    SITE_PUBLISHED: frozenset(),
}

# Once publishing has started, a review decision can no longer be taken back.
REVIEWABLE_SITE_STATUSES = frozenset({NOT_PUBLISHED, SCHEDULED, FAILED})

S = TypeVar("S", ContentStatus, SiteStatus)
OrderBy = ColumnElement[Any] | InstrumentedAttribute[Any]


class ForbiddenMove(ValueError):
    """Code asked for a move the tables do not have: a bug, never a user's request (those are
    answered with `InvalidTransition` by the service that took them)."""

    def __init__(self, column: str, from_: StrEnum, to: StrEnum) -> None:
        super().__init__(f"{column} cannot move from {from_.value} to {to.value}")
        self.column = column
        self.from_ = from_
        self.to = to


@dataclass(frozen=True)
class Step(Generic[S]):
    """Rows whose column is one of `from_` take `to`; with `to` None the column is only checked."""

    from_: frozenset[S]
    to: S | None = None

    @classmethod
    def of(cls, from_: Iterable[S], to: S | None = None) -> Step[S]:
        return cls(frozenset(from_), to)


@dataclass(frozen=True)
class Pick:
    """Take at most `limit` of the matching rows in this order, skipping rows that another
    transaction holds: two claims running at once never take the same row."""

    limit: int
    order_by: tuple[OrderBy, ...] = (Content.id,)


def check(step: Step[S] | None, table: Mapping[S, frozenset[S]], column: str) -> None:
    """Refuse a step whose (from, to) pairs are not all in the table."""
    if step is None or step.to is None:
        return
    for from_ in sorted(step.from_):
        if step.to not in table[from_]:
            raise ForbiddenMove(column, from_, step.to)


async def move(
    session: AsyncSession,
    *where: ColumnElement[bool],
    status: Step[ContentStatus] | None = None,
    site_status: Step[SiteStatus] | None = None,
    values: Mapping[str, Any] | None = None,
    pick: Pick | None = None,
) -> list[int]:
    """Move every article matching `where` and the steps' from-statuses in one UPDATE; returns
    the ids that moved (ascending). Other columns the move sets go in `values`."""
    statement = _moving(*where, status=status, site_status=site_status, values=values, pick=pick)
    moved = await session.scalars(statement.execution_options(synchronize_session="fetch"))
    return sorted(moved)


def _moving(
    *where: ColumnElement[bool],
    status: Step[ContentStatus] | None = None,
    site_status: Step[SiteStatus] | None = None,
    values: Mapping[str, Any] | None = None,
    pick: Pick | None = None,
) -> Update:
    """`move`'s guarded UPDATE, returning the ids that moved."""
    check(status, STATUS_MOVES, "status")
    check(site_status, SITE_STATUS_MOVES, "site_status")
    sets = dict(values or {})
    if {"status", "site_status"} & sets.keys():
        raise ValueError("statuses move through `status` and `site_status` steps, not `values`")
    guard = list(where)
    if status is not None:
        guard.append(_one_of(Content.status, status.from_))
        if status.to is not None:
            sets["status"] = status.to
    if site_status is not None:
        guard.append(_one_of(Content.site_status, site_status.from_))
        if site_status.to is not None:
            sets["site_status"] = site_status.to
    if not sets:
        raise ValueError("a move must set something")
    if pick is not None:
        # MATERIALIZED: the locking SELECT runs once, so the limit holds however it is planned.
        picked = (
            select(Content.id)
            .where(*guard)
            .order_by(*pick.order_by)
            .limit(pick.limit)
            .with_for_update(of=Content, skip_locked=True)
            .cte("picked")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        guard.append(Content.id.in_(select(picked.c.id)))
    return update(Content).where(*guard).values(**sets).returning(Content.id)


def _one_of(column: InstrumentedAttribute[S], statuses: frozenset[S]) -> ColumnElement[bool]:
    """`column IN (...)`, or `column = ...` for one status: an IN list is rendered again at
    every execution of a statement built once (stage 6 moves an article for every image)."""
    if len(statuses) == 1:
        (status,) = statuses
        return column == status
    return column.in_(statuses)


# The named operations: what the pipeline, the reviewer and the publisher do to an article.

# Stage 6 runs this for every image it stores: built once (an expression built per call took
# more of the worker's CPU than PostgreSQL takes to run it), and with no session's articles to
# keep in step (stage 6 runs it on its item's Core connection, which has none).
_READY = _moving(
    Content.id == bindparam("content_id"),
    ~exists().where(Image.content_id == Content.id, Image.status == ImageStatus.PENDING),
    status=Step.of({DRAFT}, REVIEW),
).execution_options(synchronize_session=False)


async def mark_ready(session: Executor, content_id: int) -> bool:
    """Stage 6: a draft with no image left pending goes to review; whether it moved."""
    moved = await session.execute(_READY, {"content_id": content_id})
    return moved.first() is not None


async def approve(
    session: AsyncSession, *where: ColumnElement[bool], by_hand: bool = False
) -> list[int]:
    """Approve articles in review (stage 7 and the reviewer); a reviewer may also approve one
    they rejected, as long as publishing has not started."""
    if by_hand:
        return await move(
            session,
            *where,
            status=Step.of({REVIEW, REJECTED}, APPROVED),
            site_status=Step.of(REVIEWABLE_SITE_STATUSES),
        )
    return await move(session, *where, status=Step.of({REVIEW}, APPROVED))


async def reject(session: AsyncSession, *where: ColumnElement[bool]) -> list[int]:
    """Reject articles in review or approved ones not yet being published: they leave the
    publishing queue."""
    return await move(
        session,
        *where,
        status=Step.of({REVIEW, APPROVED}, REJECTED),
        site_status=Step.of(REVIEWABLE_SITE_STATUSES, NOT_PUBLISHED),
        values={"scheduled_publish_at": None},
    )


async def schedule(session: AsyncSession, slots: Mapping[int, datetime]) -> list[int]:
    """Give approved, unscheduled articles their slots (article id → publish time)."""
    if not slots:
        return []
    return await move(
        session,
        Content.id.in_(slots),
        status=Step.of({APPROVED}),
        site_status=Step.of({NOT_PUBLISHED}, SCHEDULED),
        values={"scheduled_publish_at": case(slots, value=Content.id)},
    )


async def claim(
    session: AsyncSession,
    *where: ColumnElement[bool],
    now: datetime,
    limit: int,
    order_by: Sequence[OrderBy] = (Content.id,),
) -> list[int]:
    """Claim up to `limit` approved articles to publish (scheduled ones, or ones whose claim
    went stale, as `where` says), skipping rows another transaction holds; each claim counts as
    an attempt."""
    return await move(
        session,
        *where,
        status=Step.of({APPROVED}),
        site_status=Step.of({SCHEDULED, PUBLISHING}, PUBLISHING),
        values={"publish_claimed_at": now, "publish_attempts": Content.publish_attempts + 1},
        pick=Pick(limit, tuple(order_by)),
    )


async def release_claim(session: AsyncSession, *where: ColumnElement[bool]) -> list[int]:
    """Hand claimed articles back to the queue, keeping their slot."""
    return await move(
        session,
        *where,
        site_status=Step.of({PUBLISHING}, SCHEDULED),
        values={"publish_claimed_at": None},
    )


async def record_published(
    session: AsyncSession,
    *where: ColumnElement[bool],
    published_at: datetime,
    external_id: str | None,
    external_url: str | None,
) -> list[int]:
    """A claimed article is live on its site."""
    return await move(
        session,
        *where,
        status=Step.of({APPROVED}, PUBLISHED),
        site_status=Step.of({PUBLISHING}, SITE_PUBLISHED),
        values={
            "published_at": published_at,
            "external_id": external_id,
            "external_url": external_url,
            "publish_error": None,
            "publish_claimed_at": None,
        },
    )


async def record_failed(
    session: AsyncSession, *where: ColumnElement[bool], reason: str
) -> list[int]:
    """A claimed article could not be published; the reason is kept for the queue to show."""
    return await move(
        session,
        *where,
        site_status=Step.of({PUBLISHING}, FAILED),
        values={"publish_error": reason[:2000], "publish_claimed_at": None},
    )


async def requeue(session: AsyncSession, *where: ColumnElement[bool], at: datetime) -> list[int]:
    """Put failed publications back in the queue, due at `at`, with their attempts reset."""
    return await move(
        session,
        *where,
        site_status=Step.of({FAILED}, SCHEDULED),
        values={"scheduled_publish_at": at, "publish_error": None, "publish_attempts": 0},
    )
