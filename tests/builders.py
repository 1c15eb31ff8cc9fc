"""Planner, writer and run rows for tests, inserted straight through the ORM; a run and an
article's statuses through their doors (`app.runs.states`, `app.writer.states`), as the app
moves them.

Plain async functions with keyword overrides, like `tests.factories`: each commits its row and
returns it fully loaded, so a test can read its columns after the session has closed.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import Base, unit_of_work
from app.models.automation import AutomationRun, RunStatus, TriggerType
from app.models.planner import Cluster, ContentIdea, Keyword
from app.models.tenancy import Site
from app.models.writer import Content, ContentStatus, Image, ImageType, SiteStatus, Task
from app.runs.events import RunLog
from app.runs.states import create_run, set_run_state
from app.writer import states as content_states
from tests.factories import Tenant

Row = TypeVar("Row", bound=Base)
SessionFactory = async_sessionmaker[AsyncSession]

_counter = itertools.count(1)


async def insert(session_factory: SessionFactory, row: Row) -> Row:
    """Commit one row and load every column (server defaults included)."""
    async with unit_of_work(session_factory) as session:
        session.add(row)
        await session.flush()
        await session.refresh(row)
    return row


async def create_site(session_factory: SessionFactory, tenant: Tenant, **overrides: Any) -> Site:
    fields: dict[str, Any] = {"name": f"Site {next(_counter)}", "url": "https://example.com"}
    fields.update(overrides)
    return await insert(session_factory, Site(account_id=tenant.account_id, **fields))


def _owned(tenant: Tenant, overrides: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"account_id": tenant.account_id, "site_id": tenant.site_id}
    fields.update(overrides)
    return fields


async def create_keyword(
    session_factory: SessionFactory, tenant: Tenant, **overrides: Any
) -> Keyword:
    fields = {"keyword": f"keyword {next(_counter)}", "volume": 100, "difficulty": 30}
    return await insert(session_factory, Keyword(**_owned(tenant, {**fields, **overrides})))


async def create_cluster(
    session_factory: SessionFactory, tenant: Tenant, **overrides: Any
) -> Cluster:
    fields = {"name": f"Cluster {next(_counter)}", "description": "Related keywords"}
    return await insert(session_factory, Cluster(**_owned(tenant, {**fields, **overrides})))


async def create_idea(
    session_factory: SessionFactory, tenant: Tenant, *, cluster_id: int, **overrides: Any
) -> ContentIdea:
    fields: dict[str, Any] = {
        "cluster_id": cluster_id,
        "title": f"Idea {next(_counter)}",
        "outline": [{"heading": "Why it matters", "covers": "the basics"}],
        "target_keywords": ["running shoes"],
        "target_word_count": 1200,
    }
    return await insert(session_factory, ContentIdea(**_owned(tenant, {**fields, **overrides})))


async def create_task(session_factory: SessionFactory, tenant: Tenant, **overrides: Any) -> Task:
    fields = {"title": f"Task {next(_counter)}", "description": "Write it"}
    return await insert(session_factory, Task(**_owned(tenant, {**fields, **overrides})))


async def create_content(
    session_factory: SessionFactory,
    tenant: Tenant,
    *,
    status: str = ContentStatus.REVIEW,
    site_status: str = SiteStatus.NOT_PUBLISHED,
    **overrides: Any,
) -> Content:
    """An article written as stage 4 writes one (a draft), then walked to `status` and
    `site_status` through the content door (`walk_content`)."""
    n = next(_counter)
    fields: dict[str, Any] = {
        "title": f"Article {n}",
        "html": f"<h2>Article {n}</h2><p>Some words about running shoes.</p>",
        "word_count": 7,
        "meta_title": f"Article {n} | Example",
        "meta_description": "Everything about running shoes.",
    }
    async with unit_of_work(session_factory) as session:
        content = Content(**_owned(tenant, {**fields, **overrides}))
        session.add(content)
        await session.flush()
        await walk_content(session, content.id, status, site_status)
        await session.refresh(content)
    return content


def _step(
    operation: Callable[..., Awaitable[list[int]]], **arguments: Any
) -> Callable[[AsyncSession, int], Awaitable[list[int]]]:
    async def step(session: AsyncSession, content_id: int) -> list[int]:
        return await operation(session, Content.id == content_id, **arguments)

    return step


async def _schedule(session: AsyncSession, content_id: int) -> list[int]:
    return await content_states.schedule(session, {content_id: datetime.now(UTC)})


async def _mark_ready(session: AsyncSession, content_id: int) -> list[int]:
    return [content_id] if await content_states.mark_ready(session, content_id) else []


_APPROVE = _step(content_states.approve)
_REJECT = _step(content_states.reject)
_CLAIM = _step(content_states.claim, now=datetime(2000, 1, 1, tzinfo=UTC), limit=1)
_PUBLISHED = _step(
    content_states.record_published,
    published_at=datetime(2000, 1, 1, tzinfo=UTC),
    external_id=None,
    external_url=None,
)
_FAILED = _step(content_states.record_failed, reason="failed on the way")
_TO_APPROVED = (_mark_ready, _APPROVE)
# The door operations that take a draft to each state an article can be in.
CONTENT_ROUTES: dict[tuple[ContentStatus, SiteStatus], tuple[Any, ...]] = {
    (ContentStatus.DRAFT, SiteStatus.NOT_PUBLISHED): (),
    (ContentStatus.REVIEW, SiteStatus.NOT_PUBLISHED): (_mark_ready,),
    (ContentStatus.APPROVED, SiteStatus.NOT_PUBLISHED): _TO_APPROVED,
    (ContentStatus.REJECTED, SiteStatus.NOT_PUBLISHED): (_mark_ready, _REJECT),
    (ContentStatus.APPROVED, SiteStatus.SCHEDULED): (*_TO_APPROVED, _schedule),
    (ContentStatus.APPROVED, SiteStatus.PUBLISHING): (*_TO_APPROVED, _schedule, _CLAIM),
    (ContentStatus.APPROVED, SiteStatus.FAILED): (*_TO_APPROVED, _schedule, _CLAIM, _FAILED),
    (ContentStatus.PUBLISHED, SiteStatus.PUBLISHED): (
        *_TO_APPROVED,
        _schedule,
        _CLAIM,
        _PUBLISHED,
    ),
}
# Columns the walk writes besides the statuses: put back as they were before it, so an
# article reads as if inserted in its state with the caller's values.
_WALKED_COLUMNS = (
    "scheduled_publish_at",
    "published_at",
    "external_id",
    "external_url",
    "publish_error",
    "publish_attempts",
    "publish_claimed_at",
)


async def walk_content(
    session: AsyncSession, content_id: int, status: str, site_status: str
) -> None:
    """Take an article to (`status`, `site_status`) through the door's operations. Each step
    moves the article only from the state it expects, so the walk starts from wherever on the
    route the article is; a state no article ever reaches is refused."""
    target = (ContentStatus(status), SiteStatus(site_status))
    if target not in CONTENT_ROUTES:
        raise ValueError(f"no article is ever {status} and {site_status} on its site")
    this = Content.id == content_id
    columns = [getattr(Content, name) for name in _WALKED_COLUMNS]
    before = (await session.execute(select(*columns).where(this))).one()
    for step in CONTENT_ROUTES[target]:
        await step(session, content_id)
    await session.execute(
        update(Content)
        .where(this)
        .values(dict(zip(_WALKED_COLUMNS, before, strict=True)))
        .execution_options(synchronize_session="fetch")
    )
    reached = (await session.execute(select(Content.status, Content.site_status).where(this))).one()
    if tuple(reached) != target:
        raise ValueError(f"content {content_id} is {tuple(reached)}, not {target}, after the walk")


async def create_image(
    session_factory: SessionFactory, tenant: Tenant, *, content_id: int, **overrides: Any
) -> Image:
    fields: dict[str, Any] = {
        "content_id": content_id,
        "image_type": ImageType.IN_ARTICLE,
        "position": 1,
        "prompt": "A pair of running shoes on a forest trail",
    }
    return await insert(session_factory, Image(**_owned(tenant, {**fields, **overrides})))


async def create_automation_run(
    session_factory: SessionFactory,
    tenant: Tenant,
    run_log: RunLog,
    *,
    status: RunStatus = RunStatus.RUNNING,
    site_id: int | None = None,
    initial_snapshot: dict[str, Any] | None = None,
) -> AutomationRun:
    """A run started the way `run_now` starts one (`app.runs.states.create_run`), then moved to
    `status` through the state door: every status is one transition away from running."""
    async with unit_of_work(session_factory) as session:
        run = await create_run(
            session,
            run_log,
            account_id=tenant.account_id,
            site_id=site_id or tenant.site_id,
            trigger_type=TriggerType.MANUAL,
            initial_snapshot=initial_snapshot or {},
        )
        if status != RunStatus.RUNNING:
            run = await set_run_state(session, run_log, run.id, status)
    return run


@dataclass(frozen=True)
class PipelineRows:
    """One site's rows at every step of the pipeline, up to an article in review."""

    keyword_ids: list[int]
    cluster_id: int
    idea_id: int
    task_id: int
    content_id: int
    image_ids: list[int]


async def create_pipeline_rows(
    session_factory: SessionFactory, tenant: Tenant, *, content_status: str = "review"
) -> PipelineRows:
    """A cluster of two keywords, its idea, task, article and two images, in one transaction."""
    n = next(_counter)
    async with unit_of_work(session_factory) as session:
        cluster = Cluster(**_owned(tenant, {"name": f"Pipeline cluster {n}"}))
        session.add(cluster)
        await session.flush()
        keywords = [
            Keyword(
                **_owned(
                    tenant,
                    {
                        "keyword": f"pipeline keyword {n}.{i}",
                        "cluster_id": cluster.id,
                        "status": "mapped",
                    },
                )
            )
            for i in (1, 2)
        ]
        idea = ContentIdea(
            **_owned(
                tenant,
                {"cluster_id": cluster.id, "title": f"Pipeline idea {n}", "status": "queued"},
            )
        )
        session.add_all([*keywords, idea])
        await session.flush()
        task = Task(
            **_owned(
                tenant,
                {
                    "idea_id": idea.id,
                    "cluster_id": cluster.id,
                    "title": f"Pipeline task {n}",
                    "status": "completed",
                },
            )
        )
        session.add(task)
        await session.flush()
        content = Content(
            **_owned(
                tenant,
                {
                    "task_id": task.id,
                    "title": f"Pipeline article {n}",
                    "html": "<p>Hello</p>",
                    "word_count": 1,
                },
            )
        )
        session.add(content)
        await session.flush()
        await walk_content(session, content.id, content_status, SiteStatus.NOT_PUBLISHED)
        images = [
            Image(
                **_owned(
                    tenant,
                    {
                        "content_id": content.id,
                        "image_type": kind,
                        "position": position,
                        "prompt": f"{kind} image",
                    },
                )
            )
            for kind, position in (("featured", 0), ("in_article", 1))
        ]
        session.add_all(images)
        await session.flush()
    return PipelineRows(
        keyword_ids=[k.id for k in keywords],
        cluster_id=cluster.id,
        idea_id=idea.id,
        task_id=task.id,
        content_id=content.id,
        image_ids=[i.id for i in images],
    )


DOMAIN_TABLES = (
    "accounts",
    "sites",
    "keywords",
    "clusters",
    "content_ideas",
    "tasks",
    "contents",
    "images",
    "credit_transactions",
    "automation_configs",
    "automation_runs",
    "run_events",
)


async def snapshot(session_factory: SessionFactory) -> dict[str, list[dict[str, Any]]]:
    """Every row of the domain tables, to show that a refused request changed nothing."""
    rows: dict[str, list[dict[str, Any]]] = {}
    async with session_factory() as session:
        for table in DOMAIN_TABLES:
            result = await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))  # noqa: S608
            rows[table] = [dict(row) for row in result.mappings()]
    return rows


def png_bytes(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid PNG of one colour (8-bit RGB, no interlace)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    scanline = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(scanline * height))
        + chunk(b"IEND", b"")
    )
