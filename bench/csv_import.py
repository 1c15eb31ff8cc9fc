"""How long a keyword CSV import of the largest accepted size takes, and the memory it needs.

    .venv/bin/python -m bench.csv_import [--database-url URL] [--redis-url URL] [--rows N]

Without URLs it starts embedded servers in a temporary folder. It makes its own database on
the server, imports the file through the real API (in process), prints the figures, and drops
the database.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import async_url, create_engine, create_session_factory, unit_of_work
from app.main import create_app
from app.migrate import upgrade
from app.tenancy.service import create_account
from bench.backends import backends


def make_csv(rows: int) -> bytes:
    lines = ["keyword,volume,difficulty,intent"]
    lines += [
        f"keyword number {i} about topic {i % 97},{i % 5000},{i % 100},informational"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


async def run(server_url: str, redis_url: str, rows: int) -> None:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    server = make_url(async_url(server_url))
    admin = create_engine(server.render_as_string(hide_password=False), pool_size=2)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url, pool_size=4)
        async with unit_of_work(create_session_factory(engine)) as session:
            created = await create_account(
                session,
                name="Bench",
                email="bench@example.com",
                password="bench-password",
                credits=Decimal(0),
                site_name="Bench site",
            )
        await engine.dispose()
        assert created.site is not None
        data = make_csv(rows)
        settings = Settings(
            database_url=url,
            redis_url=redis_url,
            data_dir=Path(tempfile.mkdtemp()),
            log_level="WARNING",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                started = time.perf_counter()
                response = await client.post(
                    "/api/v1/planner/keywords/import/",
                    params={"site_id": created.site.id},
                    files={"file": ("k.csv", data, "text/csv")},
                    headers={"Authorization": f"Bearer {created.api_key}"},
                    timeout=300,
                )
                elapsed = time.perf_counter() - started
                rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = response.json()
        print(f"file: {len(data) / 1024 / 1024:.2f} MiB, {rows} rows")
        print(
            f"status {response.status_code}: created {result['created']}, "
            f"duplicates {result['duplicates']}, errors {len(result['errors'])}"
        )
        print(f"import: {elapsed:.2f} s, {rows / elapsed:,.0f} rows/s")
        print(
            f"peak RSS: {rss_after / 1024:.0f} MiB (growth during the import: "
            f"{(rss_after - rss_before) / 1024:.0f} MiB)"
        )
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server (any database on it)")
    parser.add_argument("--redis-url")
    parser.add_argument("--rows", type=int, default=80_000, help="about 5 MB at the default")
    args = parser.parse_args()
    with backends(args.database_url, args.redis_url) as servers:
        asyncio.run(run(servers.database_url, servers.redis_url, args.rows))


if __name__ == "__main__":
    main()
