"""Planner, writer and run rows for tests, inserted straight through the ORM (a run through the
state door, as the engine makes one).

Plain async functions with keyword overrides, like `tests.factories`: each commits its row and
returns it fully loaded, so a test can read its columns after the session has closed.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import Base, unit_of_work
from app.models.automation import AutomationRun, RunStatus, TriggerType
from app.models.planner import Cluster, ContentIdea, Keyword
from app.models.tenancy import Site
from app.models.writer import Content, ContentStatus, Image, ImageType, Task
from app.runs.events import RunLog
from app.runs.states import create_run, set_run_state
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
    session_factory: SessionFactory, tenant: Tenant, **overrides: Any
) -> Content:
    n = next(_counter)
    fields: dict[str, Any] = {
        "title": f"Article {n}",
        "html": f"<h2>Article {n}</h2><p>Some words about running shoes.</p>",
        "word_count": 7,
        "meta_title": f"Article {n} | Example",
        "meta_description": "Everything about running shoes.",
        "status": ContentStatus.REVIEW.value,
    }
    return await insert(session_factory, Content(**_owned(tenant, {**fields, **overrides})))


async def create_image(
    session_factory: SessionFactory, tenant: Tenant, *, content_id: int, **overrides: Any
) -> Image:
    fields: dict[str, Any] = {
        "content_id": content_id,
        "image_type": ImageType.IN_ARTICLE.value,
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
                    "status": content_status,
                },
            )
        )
        session.add(content)
        await session.flush()
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
