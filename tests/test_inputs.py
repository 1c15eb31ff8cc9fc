"""No input gives a 5xx (SPEC §4, §13): integers beyond their columns, characters PostgreSQL
refuses, CSV rows in error, methods a path does not take, URLs that are not web addresses; and
a bug's 500 leaves the connection usable."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, get_args

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import AfterValidator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.errors import all_routes
from app.config import Settings
from app.main import create_app
from app.models.planner import Keyword
from app.outbound.client import Policy, UnsafeUrl, check_url
from app.planner.schemas import MAX_VOLUME
from app.schemas import storable
from tests.console import free_port
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]
BEYOND_BIGINT = 2**63
BIGINT_MAX = 2**63 - 1

# Every list endpoint, with the query it needs besides the page.
LISTS = [
    ("/api/v1/sites/", False),
    ("/api/v1/auth/keys/", False),
    ("/api/v1/billing/transactions/", False),
    ("/api/v1/planner/keywords/", True),
    ("/api/v1/planner/clusters/", True),
    ("/api/v1/planner/ideas/", True),
    ("/api/v1/writer/tasks/", True),
    ("/api/v1/writer/content/", True),
    ("/api/v1/writer/images/", True),
    ("/api/v1/publishing/queue/", True),
    ("/api/v1/automation/history/", True),
]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory)


def site_query(tenant: Tenant, needs_site: bool, **more: Any) -> dict[str, Any]:
    return ({"site_id": tenant.site_id} if needs_site else {}) | more


def assert_invalid(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["message"]
    assert field in [problem["field"] for problem in error["details"]]


class TestOffsetsBeyondBigint:
    @pytest.mark.parametrize(("path", "needs_site"), LISTS)
    async def test_an_offset_past_2_63_is_a_400_naming_it(
        self, client: httpx.AsyncClient, tenant: Tenant, path: str, needs_site: bool
    ) -> None:
        params = site_query(tenant, needs_site, offset=BEYOND_BIGINT)
        response = await client.get(path, params=params, headers=tenant.headers)
        assert_invalid(response, "offset")

    @pytest.mark.parametrize(("path", "needs_site"), LISTS)
    async def test_the_largest_offset_is_an_empty_page(
        self, client: httpx.AsyncClient, tenant: Tenant, path: str, needs_site: bool
    ) -> None:
        params = site_query(tenant, needs_site, offset=BIGINT_MAX)
        response = await client.get(path, params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []


class TestKeywordVolumes:
    async def test_a_volume_beyond_int4_is_stored(
        self, client: httpx.AsyncClient, tenant: Tenant, session_factory: SessionFactory
    ) -> None:
        response = await client.post(
            "/api/v1/planner/keywords/",
            params={"site_id": tenant.site_id},
            json={"keywords": [{"keyword": "google", "volume": 2**31}]},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text
        async with session_factory() as session:
            assert await session.scalar(select(Keyword.volume)) == 2**31

    async def test_a_volume_beyond_its_bound_is_a_400_naming_it(
        self, client: httpx.AsyncClient, tenant: Tenant, session_factory: SessionFactory
    ) -> None:
        response = await client.post(
            "/api/v1/planner/keywords/",
            params={"site_id": tenant.site_id},
            json={"keywords": [{"keyword": "ok"}, {"keyword": "big", "volume": MAX_VOLUME + 1}]},
            headers=tenant.headers,
        )
        assert_invalid(response, "keywords.1.volume")
        async with session_factory() as session:
            assert await session.scalar(select(Keyword.id)) is None

    async def test_every_bad_csv_row_is_a_row_error_and_the_good_rows_are_imported(
        self, client: httpx.AsyncClient, tenant: Tenant, session_factory: SessionFactory
    ) -> None:
        data = (
            "keyword,volume,difficulty,intent\n"
            "first good,10,5,informational\n"
            f"too much volume,{BEYOND_BIGINT},5,\n"
            f"{'k' * 2001},1,1,\n"
            f"long intent,1,1,{'i' * 51}\n"
            f"second good,{2**31},,\n"
        ).encode()
        response = await client.post(
            "/api/v1/planner/keywords/import/",
            params={"site_id": tenant.site_id},
            files={"file": ("keywords.csv", data, "text/csv")},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["created"], body["duplicates"]) == (2, 0)
        assert [(e["row"], e["message"]) for e in body["errors"]] == [
            (3, f"volume must be between 0 and {MAX_VOLUME}, got {BEYOND_BIGINT}"),
            (4, "keyword string should have at most 2000 characters"),
            (5, "intent string should have at most 50 characters"),
        ]
        async with session_factory() as session:
            rows = (await session.execute(select(Keyword.keyword, Keyword.volume))).all()
        assert sorted(rows) == [("first good", 10), ("second good", 2**31)]


# Each place a string from the URL reached a query before it was checked.
NUL_PLACES = [
    ("GET", "/api/v1/automation/runs/%00/", {}, "run_id"),
    ("GET", "/api/v1/automation/runs/%00/events", {}, "run_id"),
    ("GET", "/api/v1/automation/logs/?run_id=%00", {}, "run_id"),
    ("POST", "/api/v1/automation/pause/?run_id=%00", {}, "run_id"),
    ("POST", "/api/v1/automation/resume/?run_id=%00", {}, "run_id"),
    ("POST", "/api/v1/automation/cancel/?run_id=%00", {}, "run_id"),
    ("GET", "/api/v1/automation/current_processing/?run_id=a%00b", {"site": True}, "run_id"),
    ("GET", "/api/v1/automation/run_progress/?run_id=%00", {"site": True}, "run_id"),
    ("GET", "/api/v1/billing/transactions/?run_id=%00", {}, "run_id"),
    ("GET", "/api/v1/planner/keywords/?search=%00", {"site": True}, "search"),
]


class TestCharactersPostgresRefuses:
    @pytest.mark.parametrize(("method", "url", "extra", "field"), NUL_PLACES)
    async def test_a_nul_in_a_parameter_is_a_400_naming_it(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        method: str,
        url: str,
        extra: dict[str, bool],
        field: str,
    ) -> None:
        if extra.get("site"):
            url += f"&site_id={tenant.site_id}"
        response = await client.request(method, url, headers=tenant.headers)
        assert_invalid(response, field)

    async def test_a_lone_surrogate_in_a_body_is_a_400(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.post(
            "/api/v1/sites/",
            content=b'{"name": "site \\ud800"}',
            headers=tenant.headers | {"Content-Type": "application/json"},
        )
        assert_invalid(response, "name")

    def test_the_check_refuses_nul_and_lone_surrogates_only(self) -> None:
        assert storable("naïve café 🍵 \t\n") == "naïve café 🍵 \t\n"
        for bad in ("a\x00b", "\ud800", "x\udfffy"):
            with pytest.raises(ValueError, match="NUL"):
                storable(bad)

    async def test_a_key_with_a_nul_is_a_401_without_a_query(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        key = "ak_\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00_secret"
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401, response.text

    def test_every_string_parameter_is_checked(self, app: FastAPI) -> None:
        """A new query, path or header parameter of type str must use `Text`."""
        unchecked = [
            f"{route.path} {param.name}"
            for route in all_routes(app.routes)
            if isinstance(route, APIRoute)
            for param in parameters(route.dependant)
            if str in (param.field_info.annotation, *get_args(param.field_info.annotation))
            and storable not in validators(param.field_info.metadata)
        ]
        assert unchecked == []


def parameters(dependant: Dependant) -> Iterator[ModelField]:
    yield from (*dependant.query_params, *dependant.path_params, *dependant.header_params)
    for sub_dependant in dependant.dependencies:
        yield from parameters(sub_dependant)


def validators(metadata: list[Any]) -> list[Any]:
    return [m.func for m in metadata if isinstance(m, AfterValidator)]


class TestJsonTypes:
    @pytest.mark.parametrize("value", [0, 1, "true"])
    async def test_a_boolean_field_takes_only_true_or_false(
        self, client: httpx.AsyncClient, tenant: Tenant, session_factory: SessionFactory, value: Any
    ) -> None:
        await client.post(
            "/api/v1/planner/keywords/",
            params={"site_id": tenant.site_id},
            json={"keywords": [{"keyword": "shoes"}]},
            headers=tenant.headers,
        )
        async with session_factory() as session:
            keyword_id = await session.scalar(select(Keyword.id))
        response = await client.patch(
            f"/api/v1/planner/keywords/{keyword_id}/",
            json={"disabled": value},
            headers=tenant.headers,
        )
        assert_invalid(response, "disabled")

    @pytest.mark.parametrize(
        ("value", "accepted"), [(5, True), (5.0, True), (False, False), ("5", False)]
    )
    async def test_an_integer_field_takes_numbers_only(
        self, client: httpx.AsyncClient, tenant: Tenant, value: Any, accepted: bool
    ) -> None:
        response = await client.post(
            "/api/v1/planner/keywords/",
            params={"site_id": tenant.site_id},
            json={"keywords": [{"keyword": "shoes", "difficulty": value}]},
            headers=tenant.headers,
        )
        if accepted:
            assert response.status_code == 200, response.text
        else:
            assert_invalid(response, "keywords.0.difficulty")


class TestMethodNotAllowed:
    async def test_allow_names_every_method_of_the_path(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.delete("/api/v1/sites/", headers=tenant.headers)
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.json()["error"]["code"] == "method_not_allowed"

    async def test_patch_of_the_import_path_is_a_405_not_a_keyword_update(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.patch(
            "/api/v1/planner/keywords/import/",
            params={"site_id": tenant.site_id},
            json={"disabled": True},
            headers=tenant.headers,
        )
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == "POST"
        assert response.json()["error"]["code"] == "method_not_allowed"


class TestSiteUrls:
    @pytest.mark.parametrize(
        "url", ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi", "http://"]
    )
    async def test_a_url_that_is_not_http_is_refused_naming_it(
        self, client: httpx.AsyncClient, tenant: Tenant, url: str
    ) -> None:
        created = await client.post(
            "/api/v1/sites/", json={"name": "x", "url": url}, headers=tenant.headers
        )
        patched = await client.patch(
            f"/api/v1/sites/{tenant.site_id}/", json={"url": url}, headers=tenant.headers
        )
        assert_invalid(created, "url")
        assert_invalid(patched, "url")

    @pytest.mark.parametrize("url", ["", "https://example.com", "HTTP://example.com/blog?x=1"])
    async def test_http_urls_and_none_are_taken(
        self, client: httpx.AsyncClient, tenant: Tenant, url: str
    ) -> None:
        response = await client.post(
            "/api/v1/sites/", json={"name": "x", "url": url}, headers=tenant.headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["url"] == url


class TestRefusedAddressesStayUnsaid:
    async def test_a_name_resolving_to_loopback_is_refused_without_the_address(self) -> None:
        async def internal(host: str, port: int) -> list[str]:
            return ["10.20.30.40"]

        with pytest.raises(UnsafeUrl) as refused:
            await check_url(
                "https://intranet.example.com/",
                Policy(allow_http=False, allow_private=False),
                resolver=internal,
            )
        assert "intranet.example.com" in refused.value.message
        assert "does not resolve to a public address" in refused.value.message
        assert "10.20.30.40" not in f"{refused.value.message} {refused.value.details}"


@pytest.fixture
async def live_app_with_a_bug(settings: Settings) -> AsyncIterator[str]:
    """The real app behind uvicorn on a free port, with one route that fails like a bug."""
    app = create_app(settings)

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await task


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on an open connection; its status and body."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(
        int(v) for k, _, v in (x.partition(": ") for x in lines) if k.lower() == "content-length"
    )
    return int(lines[0].split()[1]), await reader.readexactly(length)


class TestUnexpectedErrors:
    async def test_a_500_answers_the_error_body_and_keeps_the_connection(
        self, live_app_with_a_bug: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        host, port = live_app_with_a_bug.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            with caplog.at_level(logging.ERROR):
                status, body = await exchange(reader, writer, "/bug")
            again, _ = await exchange(reader, writer, "/healthz")
        finally:
            writer.close()
        assert status == 500
        assert json.loads(body) == {
            "error": {"code": "internal_error", "message": "internal server error", "details": None}
        }
        assert again == 200
        (logged,) = [r for r in caplog.records if "unhandled error" in r.getMessage()]
        # structlog renders the traceback of the exception it is given as `exc_info`.
        assert isinstance(logged.msg, dict)
        assert repr(logged.msg["exc_info"]) == "RuntimeError('a bug')"
