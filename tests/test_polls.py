"""The status polls answered before FastAPI's routing (`app.api.polls`), and the pooled
connections they read on (`app.db.driver_connection`)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import Message, Receive, Scope, Send

from app.api.errors import all_routes
from app.api.polls import POLLED, PolledReads
from app.config import Settings
from app.db import create_poll_pool
from app.models.automation import AutomationRun, RunStatus
from app.models.tenancy import ApiKey
from app.runs.events import RunLog
from app.schemas import MAX_ID
from app.tenancy.key_cache import KeyCache
from tests.builders import create_automation_run, create_site
from tests.engine import configure, start_fed, work
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]
CURRENT_RUN = "/api/v1/automation/current_run/"
RUN_PROGRESS = "/api/v1/automation/run_progress/"


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=Decimal(100000))


class Endpoint:
    """Stands for what comes after `PolledReads`: notes that it was reached, answers 299."""

    def __init__(self) -> None:
        self.reached = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached = True
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def poll(
    app: FastAPI, path: str, query: str, key: str, method: str = "GET"
) -> tuple[Endpoint, list[Message]]:
    """`PolledReads` alone, in front of an `Endpoint`, on the app's state."""
    endpoint = Endpoint()
    sent: list[Message] = []
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(b"authorization", key.encode())],
        "app": app,
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    routes = {r.path: r for r in all_routes(app.routes) if isinstance(r, APIRoute)}
    await PolledReads(endpoint, routes=routes)(scope, receive, send)
    return endpoint, sent


async def remembered(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """The app checks the tenant's key (and remembers it) on a request through its endpoints."""
    assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200


class TestPolledReads:
    async def test_each_poll_answers_as_its_endpoint_byte_for_byte_without_reaching_it(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        # A completed run, with every stage's result, then a paused one.
        await configure(client, tenant)
        first = await start_fed(client, tenant)
        await work(settings)
        await _answers_alike(app, client, tenant, {RUN_PROGRESS: first})
        second = await start_fed(client, tenant)
        paused = await client.post(
            f"/api/v1/automation/pause/?run_id={second}", headers=tenant.headers
        )
        assert paused.status_code == 200
        await _answers_alike(app, client, tenant, {CURRENT_RUN: second, RUN_PROGRESS: second})

    @pytest.mark.parametrize(
        ("method", "query", "scheme"),
        [
            ("POST", "site_id={site}", "Bearer"),
            ("GET", "", "Bearer"),
            ("GET", "site_id=", "Bearer"),
            ("GET", "site_id=0", "Bearer"),
            ("GET", f"site_id={MAX_ID + 1}", "Bearer"),
            ("GET", "site_id=-{site}", "Bearer"),
            ("GET", "site_id=%3{site}", "Bearer"),
            ("GET", "site_id={site}&limit=5", "Bearer"),
            ("GET", "run_id=r&site_id={site}", "Bearer"),
            ("GET", "site_id={site}", "Basic"),
            ("GET", "site_id={site}", "Token"),
        ],
    )
    async def test_any_other_request_goes_on_to_the_endpoint(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        tenant: Tenant,
        method: str,
        query: str,
        scheme: str,
    ) -> None:
        await remembered(client, tenant)
        for path in POLLED:
            q = query.format(site=tenant.site_id)
            endpoint, _ = await poll(app, path, q, f"{scheme} {tenant.api_key}", method)
            assert endpoint.reached, (path, method, q, scheme)

    async def test_a_key_not_remembered_goes_on_and_one_remembered_is_answered(
        self, app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        query = f"site_id={tenant.site_id}"
        endpoint, _ = await poll(app, CURRENT_RUN, query, f"Bearer {tenant.api_key}")
        assert endpoint.reached
        await remembered(client, tenant)
        # The scheme's case does not matter to HTTPBearer either.
        endpoint, sent = await poll(app, CURRENT_RUN, query, f"bearer {tenant.api_key}")
        assert not endpoint.reached
        assert sent[1]["body"] == b'{"run":null}'

    async def test_another_accounts_site_and_a_site_that_never_ran_go_on_to_the_endpoint(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        tenant: Tenant,
    ) -> None:
        other = await create_tenant(session_factory)
        await remembered(client, tenant)
        for path in POLLED:
            endpoint, _ = await poll(
                app, path, f"site_id={other.site_id}", f"Bearer {tenant.api_key}"
            )
            assert endpoint.reached
            answer = await client.get(f"{path}?site_id={other.site_id}", headers=tenant.headers)
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "not_found"
        endpoint, _ = await poll(
            app, RUN_PROGRESS, f"site_id={tenant.site_id}", f"Bearer {tenant.api_key}"
        )
        assert endpoint.reached
        progress = await client.get(
            f"{RUN_PROGRESS}?site_id={tenant.site_id}", headers=tenant.headers
        )
        assert progress.status_code == 200
        assert progress.json()["run"] is None

    async def test_a_key_revoked_by_this_process_is_refused_by_the_next_poll(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        url = f"{CURRENT_RUN}?site_id={tenant.site_id}"
        assert (await client.get(url, headers=tenant.headers)).status_code == 200
        assert (await client.get(url, headers=tenant.headers)).status_code == 200
        logout = await client.post("/api/v1/auth/logout", headers=tenant.headers)
        assert logout.status_code == 204
        refused = await client.get(url, headers=tenant.headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"

    async def test_a_key_revoked_in_the_database_is_refused_by_the_polls_within_two_seconds(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        url = f"{CURRENT_RUN}?site_id={tenant.site_id}"
        assert (await client.get(url, headers=tenant.headers)).status_code == 200
        async with session_factory() as session, session.begin():
            await session.execute(
                update(ApiKey).where(ApiKey.user_id == tenant.user_id).values(revoked_at=func.now())
            )
        revoked_at = time.monotonic()
        while (await client.get(url, headers=tenant.headers)).status_code == 200:
            assert time.monotonic() - revoked_at <= 2
            await asyncio.sleep(0.05)

    async def test_a_polled_answer_is_counted_under_its_route_template(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        url = f"{CURRENT_RUN}?site_id={tenant.site_id}"
        await client.get(url, headers=tenant.headers)
        before = _count(await client.get("/metrics"), CURRENT_RUN)
        for _ in range(3):
            assert (await client.get(url, headers=tenant.headers)).status_code == 200
        assert _count(await client.get("/metrics"), CURRENT_RUN) == before + 3

    async def test_a_poll_shows_the_runs_status_as_soon_as_it_changed(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        run_log = RunLog(settings.log_path)
        site = await create_site(session_factory, tenant)
        run = await create_automation_run(session_factory, tenant, run_log, site_id=site.id)
        url = f"{CURRENT_RUN}?site_id={site.id}"
        assert (await client.get(url, headers=tenant.headers)).json()["run"]["status"] == "running"
        await client.post(f"/api/v1/automation/pause/?run_id={run.run_id}", headers=tenant.headers)
        shown = (await client.get(url, headers=tenant.headers)).json()["run"]
        assert shown["status"] == RunStatus.PAUSED


class TestAnswersKeptByTheRowsVersion:
    async def test_a_poll_shows_a_stages_counters_as_soon_as_the_row_changed(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """The answers are kept until the run's row changes: a counter written between two
        polls (here by hand, as a worker's commit would) is in the next one, of both reads."""
        run_log = RunLog(settings.log_path)
        site = await create_site(session_factory, tenant)
        run = await create_automation_run(session_factory, tenant, run_log, site_id=site.id)
        progress = f"{RUN_PROGRESS}?site_id={site.id}"
        current = f"{CURRENT_RUN}?site_id={site.id}"
        for url in (progress, current, progress, current):
            assert (await client.get(url, headers=tenant.headers)).status_code == 200
        async with session_factory() as session:
            await session.execute(
                update(AutomationRun)
                .where(AutomationRun.id == run.id)
                .values(stage_1_result={"keywords_processed": 7}, total_credits_used=3)
            )
            await session.commit()

        shown = (await client.get(progress, headers=tenant.headers)).json()
        assert shown["stages"][0]["processed_count"] == 7
        assert shown["metrics"]["credits_used"] == 3
        run_shown = (await client.get(current, headers=tenant.headers)).json()["run"]
        assert run_shown["stage_1_result"] == {"keywords_processed": 7}

    async def test_the_duration_of_a_run_not_ended_goes_on_with_the_clock(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """A paused run's row does not change, but its duration does: an answer that reads the
        clock is kept within its second only."""
        run_log = RunLog(settings.log_path)
        site = await create_site(session_factory, tenant)
        await create_automation_run(
            session_factory, tenant, run_log, site_id=site.id, status=RunStatus.PAUSED
        )
        url = f"{RUN_PROGRESS}?site_id={site.id}"
        first = (await client.get(url, headers=tenant.headers)).json()["metrics"]
        await asyncio.sleep(1.1)  # the clock is what is tested: it has to move on
        later = (await client.get(url, headers=tenant.headers)).json()["metrics"]
        assert later["duration_seconds"] >= first["duration_seconds"] + 1


class TestAPollOnALostConnection:
    async def test_is_a_503_and_the_next_poll_reads_on_a_new_connection(
        self, client: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
    ) -> None:
        url = f"{CURRENT_RUN}?site_id={tenant.site_id}"
        assert (await client.get(url, headers=tenant.headers)).status_code == 200
        async with engine.connect() as locker, engine.connect() as admin:
            # The next poll's statement waits for the table; the server then ends its session.
            await locker.execute(text("LOCK TABLE sites IN ACCESS EXCLUSIVE MODE"))
            polling = asyncio.create_task(client.get(url, headers=tenant.headers))
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND query LIKE '%automation_runs%'"
            )
            for _ in range(500):
                if await admin.scalar(text(waiting)):
                    break
                await asyncio.sleep(0.01)
            ended = await admin.scalar(
                text(waiting.replace("count(*)", "count(pg_terminate_backend(pid))"))
            )
            await locker.rollback()
        assert ended == 1
        lost = await polling
        assert lost.status_code == 503
        assert lost.json()["error"]["code"] == "unavailable"
        assert (await client.get(url, headers=tenant.headers)).status_code == 200

    async def test_a_connection_left_mid_operation_is_closed_and_answered_503(
        self, client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A statement failed as PostgreSQL went away and its connection went back to the pool
        before asyncpg saw it close: the next poll on it meets asyncpg's state error (as in the
        black-box PostgreSQL restart, once in a while). Not a 500: a 503, that connection closed,
        and the poll after reads on another."""
        url = f"{RUN_PROGRESS}?site_id={tenant.site_id}"
        assert (await client.get(url, headers=tenant.headers)).status_code == 200
        broken: list[asyncpg.Connection] = []
        fetchrow = asyncpg.Connection.fetchrow

        async def mid_operation(
            self: asyncpg.Connection, query: str, *args: object
        ) -> asyncpg.Record | None:
            if not broken:
                broken.append(self)
                raise asyncpg.InternalClientError(
                    "cannot switch to state 12; another operation (2) is in progress"
                )
            return await fetchrow(self, query, *args)

        monkeypatch.setattr(asyncpg.Connection, "fetchrow", mid_operation)
        answered = await client.get(url, headers=tenant.headers)

        assert answered.status_code == 503, answered.text
        assert answered.json()["error"]["code"] == "unavailable"
        assert broken[0].is_closed()
        assert (await client.get(url, headers=tenant.headers)).status_code == 200


class TestThePollPool:
    @pytest.fixture
    async def pool(self, database_url: str) -> AsyncIterator[asyncpg.Pool]:
        pool = await create_poll_pool(database_url)
        yield pool
        await pool.close()

    async def test_a_connection_the_server_closed_is_replaced_when_next_taken(
        self, engine: AsyncEngine, pool: asyncpg.Pool
    ) -> None:
        pid = await pool.fetchval("SELECT pg_backend_pid()")
        async with engine.connect() as admin:
            assert await admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.2)  # the closed socket is seen by the event loop
        assert await pool.fetchval("SELECT pg_backend_pid()") != pid

    async def test_a_connection_whose_statement_failed_is_used_again(
        self, pool: asyncpg.Pool
    ) -> None:
        pid = await pool.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(asyncpg.DivisionByZeroError):
            await pool.fetchval("SELECT 1 / 0")
        assert await pool.fetchval("SELECT pg_backend_pid()") == pid

    async def test_json_is_read_as_the_engine_reads_it(
        self, engine: AsyncEngine, pool: asyncpg.Pool
    ) -> None:
        query = """SELECT '{"a": [1, 2.5, null]}'::jsonb, '"text"'::json"""
        async with engine.connect() as connection:
            from_engine = tuple((await connection.execute(text(query))).one())
        from_pool = await pool.fetchrow(query)
        assert from_pool is not None
        assert tuple(from_pool) == from_engine == ({"a": [1, 2.5, None]}, "text")


async def _answers_alike(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, runs: dict[str, str]
) -> None:
    """Each path's endpoint and `PolledReads` answer the same, showing the run given."""
    query = f"site_id={tenant.site_id}"
    for path, run_id in runs.items():
        # Not remembered: the request goes on to the endpoint, which remembers the key.
        app.state.key_cache = KeyCache()
        from_endpoint = await client.get(f"{path}?{query}", headers=tenant.headers)
        assert from_endpoint.status_code == 200
        assert from_endpoint.json()["run"]["run_id"] == run_id
        polled = await client.get(f"{path}?{query}", headers=tenant.headers)
        endpoint, sent = await poll(app, path, query, f"Bearer {tenant.api_key}")

        assert not endpoint.reached
        assert sent[0]["status"] == 200
        assert sent[1]["body"] == from_endpoint.content == polled.content
        assert _without_request_id(polled) == _without_request_id(from_endpoint)


def _without_request_id(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.items() if k != "x-request-id"]


def _count(metrics: httpx.Response, route: str) -> float:
    found = re.search(
        rf'http_requests_total\{{method="GET",route="{re.escape(route)}",status="200"\}} (\S+)',
        metrics.text,
    )
    return float(found[1]) if found else 0.0
