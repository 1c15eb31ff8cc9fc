"""Fixtures on real PostgreSQL and Redis; each test process's own log (tests/process_log.py).

TEST_DATABASE_URL / TEST_REDIS_URL name servers to use; where unset, embedded servers are started
once for the test session, before the pytest-xdist workers. Each worker gets its own database
(built by `alembic upgrade head`) and its own Redis database number; every test starts from empty
tables and an empty Redis.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import async_url, create_engine, create_session_factory
from app.embedded import EmbeddedServices
from app.main import create_app
from app.migrate import upgrade
from app.tenancy import security
from tests import process_log

# A claim outlives any test session; a crashed session's claim frees itself.
CLAIM_SECONDS = 3 * 3600


def _worker_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw"))


def redis_url_with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = str(db)
        # Written out: urlunsplit would drop the `//` of a scheme it does not know.
        return f"unix://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> Iterator[None]:
    """Production argon2 parameters cost ~0.1 s a hash; tests create hundreds of users.
    Verification reads the parameters from the hash, so only the cost changes."""
    standard = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    security._hasher = standard


EMBEDDED = pytest.StashKey[EmbeddedServices]()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(process_log, "process_log")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Where the environment names no servers, embedded ones are started here, in the process
    that starts the xdist workers (or runs the tests itself, without xdist): before the workers
    exist, so that they start once (pgserver's first start as root creates a system user, which
    two processes did at once) and the workers inherit their URLs in the environment; stopped
    after the workers are gone (`pytest_unconfigure`)."""
    config = session.config
    if os.environ.get("PYTEST_XDIST_WORKER") or config.option.collectonly:
        return
    if os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL"):
        return
    embedded = EmbeddedServices(Path(tempfile.mkdtemp(prefix="ca-test-")), database="postgres")
    config.stash[EMBEDDED] = embedded
    if not os.environ.get("TEST_DATABASE_URL"):
        os.environ["TEST_DATABASE_URL"] = embedded.start_postgres()
    if not os.environ.get("TEST_REDIS_URL"):
        os.environ["TEST_REDIS_URL"] = embedded.start_redis()


def pytest_unconfigure(config: pytest.Config) -> None:
    embedded = config.stash.get(EMBEDDED, None)
    if embedded is not None:
        embedded.stop()
        shutil.rmtree(embedded.data_dir, ignore_errors=True)


@pytest.fixture
def server_folder() -> Iterator[Path]:
    """A folder for a test's own embedded PostgreSQL. Never under `tmp_path`: as root, pgserver
    runs postgres as the user `pgserver`, which must traverse the folder's parents, and every
    pytest session starting on the machine resets /tmp/pytest-of-root to 0700, which failed an
    initdb under way there with "Permission denied"."""
    path = Path(tempfile.mkdtemp(prefix="ca-server-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def servers() -> tuple[str, str]:
    """(database server URL, redis server URL): the environment's (see `pytest_sessionstart`)."""
    return os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"]


@pytest.fixture(scope="session")
async def database_url(servers: tuple[str, str]) -> AsyncIterator[str]:
    """A fresh database for this worker, migrated to head; dropped at the end."""
    server_url = make_url(async_url(servers[0]))
    name = f"test_{_worker_number()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url.render_as_string(hide_password=False))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    yield url
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(scope="session")
def redis_url(servers: tuple[str, str]) -> Iterator[str]:
    """A Redis database (1..15) of this worker's own: claimed in database 0, so that two test
    sessions on one server (say, a benchmark beside the suite) never flush each other's jobs."""
    claims = SyncRedis.from_url(redis_url_with_db(servers[1], 0))
    for offset in range(15):
        db = 1 + (_worker_number() + offset) % 15
        if claims.set(f"ca-test-claim:{db}", os.getpid(), nx=True, ex=CLAIM_SECONDS):
            break
    else:
        raise RuntimeError("every Redis test database 1..15 is claimed by another session")
    yield redis_url_with_db(servers[1], db)
    claims.delete(f"ca-test-claim:{db}")
    claims.close()


@pytest.fixture(scope="session")
def settings(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("data"),
        log_json=False,
        log_level="WARNING",
    )


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def clean_state(engine: AsyncEngine, redis: Redis) -> None:
    """Every test starts with no tenant data and an empty Redis database.

    Every tenant row hangs off an account with ON DELETE CASCADE, so deleting the accounts
    empties them all (much faster than TRUNCATE of every table); seeded rows stay. Login
    counts belong to no account: they go too.
    """
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM accounts"))
        await conn.execute(text("DELETE FROM login_failures"))
    await redis.flushdb()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
