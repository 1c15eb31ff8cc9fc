"""Migrations: they build exactly the models' schema, undo cleanly, and seed the credit prices."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import conv

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.db import Base, create_engine
from app.migrate import alembic_config, downgrade, upgrade


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """An empty database on the same server as the test database; dropped afterwards."""
    name = f"migrations_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url, pool_size=1)
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
    engine = create_engine(url, pool_size=1)
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

    engine: AsyncEngine = create_engine(url, pool_size=1)
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
