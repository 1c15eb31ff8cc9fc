"""Migrations: they build exactly the models' schema, undo cleanly, seed the credit prices, and
move the images of an older deployment to unguessable names."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import conv

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.config import Settings
from app.db import Base, create_engine
from app.main import create_app
from app.migrate import alembic_config, downgrade, upgrade
from app.runs.plan import ProgressPlan
from tests.builders import png_bytes


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """An empty database on the same server as the test database; dropped afterwards."""
    name = f"migrations_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url, pool_size=2)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url, pool_size=2)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(text(sql)))
    finally:
        await engine.dispose()


async def _schema_differences(url: str) -> list[Any]:
    """What autogenerate would put in a new migration: empty when models and database agree."""

    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))

    engine: AsyncEngine = create_engine(url, pool_size=2)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


def _model_check_constraints() -> set[tuple[str, str]]:
    """(table, name) of every CHECK the models declare, as the naming convention names it."""
    pattern = Base.metadata.naming_convention["ck"]
    assert isinstance(pattern, str)
    names: set[tuple[str, str]] = set()
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint):
                name = constraint.name
                if not isinstance(name, conv):  # not yet converted by the convention
                    name = pattern % {"table_name": table.name, "constraint_name": name}
                names.add((table.name, str(name)))
    return names


async def _database_check_constraints(url: str) -> set[tuple[str, str]]:
    rows = await _query(
        url,
        "SELECT rel.relname, con.conname FROM pg_constraint con "
        "JOIN pg_class rel ON rel.oid = con.conrelid "
        "JOIN pg_namespace ns ON ns.oid = rel.relnamespace "
        "WHERE ns.nspname = 'public' AND con.contype = 'c'",
    )
    return {(table, name) for table, name in rows}


async def _public_relations(url: str) -> set[str]:
    rows = await _query(
        url,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public'",
    )
    return {name for (name,) in rows}


class TestUpgradeBuildsTheModelsSchema:
    async def test_autogenerate_finds_nothing_to_add_after_upgrade_head(
        self, fresh_database: str
    ) -> None:
        await asyncio.to_thread(upgrade, fresh_database)
        assert await _schema_differences(fresh_database) == []

    async def test_every_check_constraint_of_the_models_is_in_the_database(
        self, fresh_database: str
    ) -> None:
        # Autogenerate does not compare CHECK constraints, so they are compared by name here.
        await asyncio.to_thread(upgrade, fresh_database)
        assert await _database_check_constraints(fresh_database) == _model_check_constraints()

    def test_there_is_one_head(self, database_url: str) -> None:
        script = ScriptDirectory.from_config(alembic_config(database_url))
        assert len(script.get_heads()) == 1


class TestDowngradeUndoesEverything:
    async def test_downgrade_to_base_leaves_only_alembic_version_and_upgrade_works_again(
        self, fresh_database: str
    ) -> None:
        await asyncio.to_thread(upgrade, fresh_database)

        await asyncio.to_thread(downgrade, fresh_database, "base")
        assert await _public_relations(fresh_database) == {
            "alembic_version",
            "alembic_version_pkc",
        }
        assert await _query(fresh_database, "SELECT * FROM alembic_version") == []

        await asyncio.to_thread(upgrade, fresh_database)
        assert await _schema_differences(fresh_database) == []
        assert await _query(fresh_database, "SELECT count(*) FROM credit_cost_configs") == [(5,)]


class TestCreditCostsAreSeeded:
    async def test_the_spec_default_prices_and_budget_shares_are_there(
        self, engine: AsyncEngine
    ) -> None:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT operation, pricing, unit, unit_size, credits_per_unit, "
                    "budget_percentage, is_active FROM credit_cost_configs ORDER BY operation"
                )
            )
            seeded = {row.operation: tuple(row)[1:] for row in rows}
        # SPEC section 8: clustering 1 per 5 keywords; ideas 2 per cluster; content 1 per
        # 500 words; image prompts 0.5 per prompt; images 2 per image; shares 15/10/40/5/30.
        assert seeded == {
            "clustering": ("per_unit", "keyword", 5, Decimal(1), Decimal(15), True),
            "idea_generation": ("per_unit", "cluster", 1, Decimal(2), Decimal(10), True),
            "content_generation": ("per_unit", "word", 500, Decimal(1), Decimal(40), True),
            "image_prompt_extraction": ("per_unit", "prompt", 1, Decimal("0.5"), Decimal(5), True),
            "image_generation": ("per_unit", "image", 1, Decimal(2), Decimal(30), True),
        }


class TestMediaMovesToUnguessableNames:
    """Migration 0005 on a deployment whose images were served at sequential paths."""

    async def test_drafts_move_and_attempted_publications_keep_their_urls(
        self, fresh_database: str, media_settings: Settings
    ) -> None:
        old = await _deployment_before_tokens(fresh_database, media_settings)

        await asyncio.to_thread(_upgrade, fresh_database, media_settings)

        rows = await _images(fresh_database)
        assert len({token for _, token in rows.values()}) == len(rows)
        assert all(len(token) == 22 for _, token in rows.values())
        async with _media_client(media_settings) as client:
            for name in ("review", "scheduled"):
                url, token = rows[old[name].id]
                assert url == old[name].url.removesuffix(".png") + f"-{token}.png"
                assert (await client.get(url)).content == old[name].data
                assert (await client.get(old[name].url)).status_code == 404
                assert not old[name].file.exists()
            for name in ("published", "failed"):
                assert rows[old[name].id][0] == old[name].url
                assert (await client.get(old[name].url)).content == old[name].data
            pending_url, pending_token = rows[old["pending"].id]
            assert pending_url is None
            assert (await client.get(old["pending"].path)).status_code == 404
            # Where stage 6 will write it: the stray file is replaced then.
            assert (
                old["pending"].file.with_name(f"{old['pending'].id}-{pending_token}.png").is_file()
            )
        assert rows[old["external"].id][0] == old["external"].url
        lost_url, lost_token = rows[old["lost"].id]
        assert lost_url == old["lost"].url.removesuffix(".png") + f"-{lost_token}.png"

    async def test_an_upgrade_rolled_back_after_moving_files_finds_them_again(
        self, fresh_database: str, media_settings: Settings
    ) -> None:
        old = await _deployment_before_tokens(fresh_database, media_settings)
        await asyncio.to_thread(_upgrade, fresh_database, media_settings)
        first = await _images(fresh_database)
        # The files moved but the database went back: as when a later migration fails.
        await asyncio.to_thread(downgrade, fresh_database, "0004")
        for image in old.values():
            await _execute(
                fresh_database, "UPDATE images SET url = :url WHERE id = :id", image.row()
            )

        await asyncio.to_thread(_upgrade, fresh_database, media_settings)

        again = await _images(fresh_database)
        assert again[old["review"].id] == first[old["review"].id]
        async with _media_client(media_settings) as client:
            moved = await client.get(again[old["review"].id][0] or "")
        assert moved.content == old["review"].data

    async def test_after_a_downgrade_the_urls_still_name_the_files_and_survive_an_upgrade(
        self, fresh_database: str, media_settings: Settings
    ) -> None:
        old = await _deployment_before_tokens(fresh_database, media_settings)
        await asyncio.to_thread(_upgrade, fresh_database, media_settings)
        first = await _images(fresh_database)

        await asyncio.to_thread(downgrade, fresh_database, "0004")
        await asyncio.to_thread(_upgrade, fresh_database, media_settings)

        again = await _images(fresh_database)
        for name in ("review", "scheduled", "published", "failed"):
            assert again[old[name].id][0] == first[old[name].id][0]
        assert again[old["review"].id] == first[old["review"].id]

    async def test_without_the_media_folder_it_refuses_and_changes_nothing(
        self, fresh_database: str, media_settings: Settings, tmp_path: Path
    ) -> None:
        old = await _deployment_before_tokens(fresh_database, media_settings)
        elsewhere = media_settings.model_copy(update={"media_dir": tmp_path / "not-mounted"})

        with pytest.raises(RuntimeError, match="media folder"):
            await asyncio.to_thread(_upgrade, fresh_database, elsewhere)

        version = await _query(fresh_database, "SELECT version_num FROM alembic_version")
        assert version == [("0004",)]
        assert old["review"].file.read_bytes() == old["review"].data


class TestReferenceBehaviours:
    """Migration 0008 on a deployment with runs cancelled by the earlier code."""

    async def test_a_run_cancelled_before_has_its_cancellation_as_its_end(
        self, fresh_database: str
    ) -> None:
        await asyncio.to_thread(upgrade, fresh_database, "0007")
        account = await _execute(
            fresh_database, "INSERT INTO accounts (name) VALUES ('a') RETURNING id", {}
        )
        site = await _execute(
            fresh_database,
            "INSERT INTO sites (account_id, name) VALUES (:a, 's') RETURNING id",
            {"a": account},
        )
        runs = {}
        for status, cancelled, completed in (
            ("cancelled", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None),
            ("completed", None, datetime(2026, 1, 3, tzinfo=UTC)),
            ("running", None, None),
        ):
            runs[status] = await _execute(
                fresh_database,
                "INSERT INTO automation_runs (run_id, account_id, site_id, status, "
                "cancelled_at, completed_at) VALUES (:r, :a, :s, :status, :cancelled, :completed) "
                "RETURNING id",
                {
                    "r": f"run_{status}",
                    "a": account,
                    "s": site,
                    "status": status,
                    "cancelled": cancelled,
                    "completed": completed,
                },
            )

        await asyncio.to_thread(upgrade, fresh_database)

        rows = await _query(
            fresh_database,
            "SELECT status, cancelled_at = completed_at, completed_at::text "
            "FROM automation_runs ORDER BY id",
        )
        assert rows == [
            ("cancelled", True, "2026-01-02 03:04:05+00"),
            ("completed", None, "2026-01-03 00:00:00+00"),
            ("running", None, None),
        ]

    async def test_new_sites_publish_by_default_and_existing_sites_keep_what_they_had(
        self, fresh_database: str
    ) -> None:
        await asyncio.to_thread(upgrade, fresh_database, "0007")
        account = await _execute(
            fresh_database, "INSERT INTO accounts (name) VALUES ('a') RETURNING id", {}
        )
        sites = {}
        for name in ("saved_on", "saved_default", "never_saved"):
            sites[name] = await _execute(
                fresh_database,
                "INSERT INTO sites (account_id, name) VALUES (:a, :n) RETURNING id",
                {"a": account, "n": name},
            )
        await _execute(
            fresh_database,
            "INSERT INTO publishing_settings (account_id, site_id, auto_approval_enabled, "
            "auto_publish_enabled) VALUES (:a, :s, true, false)",
            {"a": account, "s": sites["saved_on"]},
        )
        await _execute(
            fresh_database,
            "INSERT INTO publishing_settings (account_id, site_id) VALUES (:a, :s)",
            {"a": account, "s": sites["saved_default"]},
        )

        await asyncio.to_thread(upgrade, fresh_database)
        sites["new"] = await _execute(
            fresh_database,
            "INSERT INTO sites (account_id, name) VALUES (:a, 'new') RETURNING id",
            {"a": account},
        )
        await _execute(
            fresh_database,
            "INSERT INTO publishing_settings (account_id, site_id) VALUES (:a, :s)",
            {"a": account, "s": sites["new"]},
        )

        rows = await _query(
            fresh_database,
            "SELECT site_id, auto_approval_enabled, auto_publish_enabled FROM publishing_settings",
        )
        flags = {site: (approval, publish) for site, approval, publish in rows}
        assert flags == {
            sites["saved_on"]: (True, False),
            sites["saved_default"]: (False, False),
            sites["never_saved"]: (False, False),
            sites["new"]: (True, True),
        }


class TestRunProgressPlan:
    """Migration 0009 on a deployment with runs from before the progress plan."""

    async def test_each_run_is_planned_by_the_counts_of_its_snapshot(
        self, fresh_database: str
    ) -> None:
        await asyncio.to_thread(upgrade, fresh_database, "0008")
        account = await _execute(
            fresh_database, "INSERT INTO accounts (name) VALUES ('a') RETURNING id", {}
        )
        site = await _execute(
            fresh_database,
            "INSERT INTO sites (account_id, name) VALUES (:a, 's') RETURNING id",
            {"a": account},
        )
        snapshot = {f"stage_{n}_initial": 10 * n for n in range(1, 8)} | {
            "total_initial_items": 280
        }
        for status, taken in (("cancelled", snapshot), ("completed", None)):
            await _execute(
                fresh_database,
                "INSERT INTO automation_runs (run_id, account_id, site_id, status, "
                "initial_snapshot) VALUES (:r, :a, :s, :status, CAST(:snapshot AS jsonb)) "
                "RETURNING id",
                {
                    "r": f"run_{status}",
                    "a": account,
                    "s": site,
                    "status": status,
                    "snapshot": json.dumps(taken) if taken else None,
                },
            )

        await asyncio.to_thread(upgrade, fresh_database)

        rows = await _query(
            fresh_database, "SELECT run_id, progress_plan FROM automation_runs ORDER BY id"
        )
        plans = {run_id: ProgressPlan.model_validate(plan) for run_id, plan in rows}
        assert plans["run_cancelled"].basis == "snapshot"
        assert [s.items for s in plans["run_cancelled"].stages] == [10, 20, 30, 40, 50, 60, 70]
        assert [s.items for s in plans["run_completed"].stages] == [0] * 7
        assert plans["run_cancelled"].floor == 0


@dataclass(frozen=True)
class _OldImage:
    id: int
    url: str  # "" for none
    path: str  # where the earlier code served its file
    file: Path
    data: bytes

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url or None}


@pytest.fixture
def media_settings(settings: Settings, tmp_path: Path) -> Settings:
    media = tmp_path / "media"
    media.mkdir()
    return settings.model_copy(update={"media_dir": media})


def _upgrade(database_url: str, settings: Settings) -> None:
    config = alembic_config(database_url)
    config.attributes["settings"] = settings
    command.upgrade(config, "head")


async def _execute(url: str, sql: str, params: dict[str, Any]) -> Any:
    engine = create_engine(url, pool_size=2)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


async def _images(url: str) -> dict[int, tuple[str | None, str]]:
    rows = await _query(url, "SELECT id, url, url_token FROM images")
    return {image_id: (image_url, token) for image_id, image_url, token in rows}


async def _deployment_before_tokens(url: str, settings: Settings) -> dict[str, _OldImage]:
    """At revision 0004, one image per case, stored at `{account}/{site}/{content}/{id}.png`."""
    await asyncio.to_thread(upgrade, url, "0004")
    account = await _execute(url, "INSERT INTO accounts (name) VALUES ('a') RETURNING id", {})
    site = await _execute(
        url, "INSERT INTO sites (account_id, name) VALUES (:a, 's') RETURNING id", {"a": account}
    )
    cases = {  # name: (content status, site status, image status, stored here)
        "review": ("review", "not_published", "generated", True),
        "scheduled": ("approved", "scheduled", "generated", True),
        "published": ("published", "published", "generated", True),
        "failed": ("approved", "failed", "generated", True),
        # A file an attempt wrote without recording it: no row names it, yet it was served.
        "pending": ("review", "not_published", "pending", True),
        "lost": ("review", "not_published", "generated", False),
        "external": ("review", "not_published", "generated", False),
    }
    images: dict[str, _OldImage] = {}
    for n, (name, (status, site_status, image_status, stored)) in enumerate(cases.items()):
        content = await _execute(
            url,
            "INSERT INTO contents (account_id, site_id, title, status, site_status) "
            "VALUES (:a, :s, :name, :status, :site_status) RETURNING id",
            {"a": account, "s": site, "name": name, "status": status, "site_status": site_status},
        )
        image = await _execute(
            url,
            "INSERT INTO images (account_id, site_id, content_id, image_type, prompt, status) "
            "VALUES (:a, :s, :c, 'featured', 'p', :status) RETURNING id",
            {"a": account, "s": site, "c": content, "status": image_status},
        )
        relative = f"{account}/{site}/{content}/{image}.png"
        file = settings.media_path / relative
        data = png_bytes(rgb=(n, n, n))
        if stored:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        image_url = {
            "pending": None,
            "external": f"https://cdn.example.com/{image}.png",
        }.get(name, f"{settings.media_url}/{relative}")
        await _execute(
            url, "UPDATE images SET url = :url WHERE id = :id", {"id": image, "url": image_url}
        )
        path = f"{settings.media_url}/{relative}"
        images[name] = _OldImage(image, image_url or "", path, file, data)
    return images


@asynccontextmanager
async def _media_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The media as the API serves them (no database needed)."""
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
