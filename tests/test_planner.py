"""Planner API: adding keywords as JSON, importing CSV, listing, filtering, disabling."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models.planner import Keyword
from tests.factories import Tenant, create_tenant

KEYWORDS = "/api/v1/planner/keywords/"
IMPORT = "/api/v1/planner/keywords/import/"


@pytest.fixture
async def tenant(session_factory: async_sessionmaker[AsyncSession]) -> Tenant:
    return await create_tenant(session_factory)


async def keyword_rows(
    session_factory: async_sessionmaker[AsyncSession], site_id: int
) -> list[Keyword]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(Keyword).where(Keyword.site_id == site_id).order_by(Keyword.id)
        )
        return list(rows)


async def upload(
    client: httpx.AsyncClient,
    tenant: Tenant,
    data: bytes,
    filename: str = "keywords.csv",
    content_type: str = "text/csv",
) -> httpx.Response:
    return await client.post(
        IMPORT,
        params={"site_id": tenant.site_id},
        files={"file": (filename, data, content_type)},
        headers=tenant.headers,
    )


class TestAddKeywordsAsJson:
    async def test_adds_keywords_trimmed_with_their_metrics(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await client.post(
            KEYWORDS,
            params={"site_id": tenant.site_id},
            json={
                "keywords": [
                    {
                        "keyword": "  best   running shoes ",
                        "volume": 1200,
                        "difficulty": 40,
                        "intent": "Commercial",
                    },
                    {"keyword": "trail shoes"},
                ]
            },
            headers=tenant.headers,
        )
        assert response.status_code == 200
        assert response.json() == {"created": 2, "duplicates": 0, "errors": []}
        rows = await keyword_rows(session_factory, tenant.site_id)
        assert [(r.keyword, r.volume, r.difficulty, r.intent, r.status) for r in rows] == [
            ("best running shoes", 1200, 40, "commercial", "new"),
            ("trail shoes", None, None, None, "new"),
        ]

    async def test_existing_keyword_in_another_case_is_a_duplicate(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        body = {"keywords": [{"keyword": "Running Shoes"}]}
        await client.post(
            KEYWORDS, params={"site_id": tenant.site_id}, json=body, headers=tenant.headers
        )
        again = {
            "keywords": [
                {"keyword": "running shoes"},
                {"keyword": "RUNNING SHOES"},
                {"keyword": "new one"},
            ]
        }
        response = await client.post(
            KEYWORDS, params={"site_id": tenant.site_id}, json=again, headers=tenant.headers
        )
        assert response.json() == {"created": 1, "duplicates": 2, "errors": []}

    async def test_same_keyword_on_two_sites_is_allowed(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        created = await client.post(
            "/api/v1/sites/", json={"name": "Second"}, headers=tenant.headers
        )
        for site_id in (tenant.site_id, created.json()["id"]):
            response = await client.post(
                KEYWORDS,
                params={"site_id": site_id},
                json={"keywords": [{"keyword": "shoes"}]},
                headers=tenant.headers,
            )
            assert response.json()["created"] == 1

    async def test_blank_keyword_is_a_row_error_and_the_rest_is_added(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        body = {"keywords": [{"keyword": "ok"}, {"keyword": "   "}, {"keyword": "x" * 501}]}
        response = await client.post(
            KEYWORDS, params={"site_id": tenant.site_id}, json=body, headers=tenant.headers
        )
        assert response.json() == {
            "created": 1,
            "duplicates": 0,
            "errors": [
                {"row": 2, "message": "keyword is empty"},
                {"row": 3, "message": "keyword is longer than 500 characters"},
            ],
        }

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"keywords": [{"keyword": "a", "volume": "many"}]}, "keywords.0.volume"),
            ({"keywords": [{"keyword": "a", "difficulty": 101}]}, "keywords.0.difficulty"),
            ({"keywords": [{"keyword": "a", "volume": -1}]}, "keywords.0.volume"),
            ({"keywords": [{"keyword": "a", "colour": "red"}]}, "keywords.0.colour"),
            ({"keywords": [{"keyword": "a\u0000b"}]}, "keywords.0.keyword"),
            ({"keywords": []}, "keywords"),
            ({}, "keywords"),
        ],
    )
    async def test_invalid_body_is_400_naming_the_field_and_adds_nothing(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
        body: dict[str, object],
        field: str,
    ) -> None:
        response = await client.post(
            KEYWORDS, params={"site_id": tenant.site_id}, json=body, headers=tenant.headers
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert field in error["message"]
        assert await keyword_rows(session_factory, tenant.site_id) == []

    @pytest.mark.parametrize("site_id", ["", "abc", "0", "-3"])
    async def test_missing_or_bad_site_id_is_400(
        self, client: httpx.AsyncClient, tenant: Tenant, site_id: str
    ) -> None:
        response = await client.post(
            f"{KEYWORDS}?site_id={site_id}" if site_id else KEYWORDS,
            json={"keywords": [{"keyword": "a"}]},
            headers=tenant.headers,
        )
        assert response.status_code == 400
        assert "site_id" in response.json()["error"]["message"]

    async def test_unknown_site_is_404(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        response = await client.post(
            KEYWORDS,
            params={"site_id": 999999},
            json={"keywords": [{"keyword": "a"}]},
            headers=tenant.headers,
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


class TestImportCsv:
    async def test_imports_a_plain_csv(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        data = b"keyword,volume,difficulty,intent\nrunning shoes,1200,40,commercial\ntrail,,,\n"
        response = await upload(client, tenant, data)
        assert response.status_code == 200
        assert response.json() == {"created": 2, "duplicates": 0, "errors": []}
        rows = await keyword_rows(session_factory, tenant.site_id)
        assert [(r.keyword, r.volume, r.difficulty, r.intent) for r in rows] == [
            ("running shoes", 1200, 40, "commercial"),
            ("trail", None, None, None),
        ]

    async def test_utf8_bom_is_ignored(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await upload(client, tenant, "\ufeffkeyword,volume\nzapatos,10\n".encode())
        assert response.json() == {"created": 1, "duplicates": 0, "errors": []}
        assert [r.keyword for r in await keyword_rows(session_factory, tenant.site_id)] == [
            "zapatos"
        ]

    async def test_blank_lines_and_extra_columns_are_skipped(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        data = (
            b"Notes,Keyword,Volume,Source\r\n"
            b"x,alpha,5,gsc\r\n"
            b"\r\n"
            b",,,\r\n"
            b"y,beta,7,ahrefs,one-more-cell\r\n"
        )
        response = await upload(client, tenant, data)
        assert response.json() == {"created": 2, "duplicates": 0, "errors": []}
        rows = await keyword_rows(session_factory, tenant.site_id)
        assert [(r.keyword, r.volume) for r in rows] == [("alpha", 5), ("beta", 7)]

    async def test_duplicate_rows_and_existing_keywords_in_another_case_are_counted(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await client.post(
            KEYWORDS,
            params={"site_id": tenant.site_id},
            json={"keywords": [{"keyword": "Blue Widgets"}]},
            headers=tenant.headers,
        )
        data = b"keyword\nblue widgets\nred widgets\nRED WIDGETS\nred  widgets\ngreen\n"
        response = await upload(client, tenant, data)
        assert response.json() == {"created": 2, "duplicates": 3, "errors": []}

    async def test_rows_in_error_are_reported_with_their_row_number(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        data = (
            b"keyword,volume,difficulty\n"
            b"good,1 200,10\n"
            b"bad volume,lots,10\n"
            b"bad difficulty,5,150\n"
            b",5,5\n"
            b'fine,"1,500",\n'
        )
        response = await upload(client, tenant, data)
        body = response.json()
        assert response.status_code == 200
        assert (body["created"], body["duplicates"]) == (1, 0)
        assert body["errors"] == [
            {"row": 2, "message": "volume must be a whole number, got '1 200'"},
            {"row": 3, "message": "volume must be a whole number, got 'lots'"},
            {"row": 4, "message": "difficulty must be between 0 and 100, got 150"},
            {"row": 5, "message": "keyword is empty"},
        ]
        rows = await keyword_rows(session_factory, tenant.site_id)
        assert [(r.keyword, r.volume) for r in rows] == [("fine", 1500)]

    async def test_semicolon_separated_export_is_read(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        response = await upload(client, tenant, b"keyword;volume\ncaf\xc3\xa9 au lait;30\n")
        assert response.json()["created"] == 1
        rows = await keyword_rows(session_factory, tenant.site_id)
        assert [(r.keyword, r.volume) for r in rows] == [("café au lait", 30)]

    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
            (b"keyword\nabc\x00def\n", "not a CSV file"),
            ("keyword\ncaf\xe9\n".encode("latin-1"), "not UTF-8"),
            (b"volume,intent\n10,commercial\n", "no 'keyword' column"),
            (b"", "empty"),
            (b"\n\n  \n", "empty"),
            (b'keyword\n"unterminated\n', "not valid CSV"),
        ],
        ids=["binary", "nul-bytes", "latin-1", "no-keyword-column", "empty", "blank", "bad-quote"],
    )
    async def test_bad_file_is_400_and_imports_nothing(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
        data: bytes,
        fragment: str,
    ) -> None:
        response = await upload(client, tenant, data)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_file"
        assert fragment in error["message"]
        assert await keyword_rows(session_factory, tenant.site_id) == []

    async def test_file_over_5_mb_is_413_and_imports_nothing(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        line = b"some keyword that is fairly long to fill the file quickly %d\n"
        data = b"keyword\n" + b"".join(line % i for i in range(100_000))
        assert len(data) > 5 * 1024 * 1024
        response = await upload(client, tenant, data)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        assert await keyword_rows(session_factory, tenant.site_id) == []

    async def test_body_far_over_the_limit_is_refused_before_it_is_read(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        data = b"keyword\n" + b"x" * (7 * 1024 * 1024)
        response = await upload(client, tenant, data)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        assert await keyword_rows(session_factory, tenant.site_id) == []

    async def test_streamed_body_without_length_over_the_limit_is_413(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
            yield b'{"keywords": ['
            for _ in range(7000):
                yield b'{"keyword": "' + b"k" * 1000 + b'"},'
            yield b'{"keyword": "last"}]}'

        response = await client.post(
            KEYWORDS,
            params={"site_id": tenant.site_id},
            content=chunks(),
            headers={**tenant.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 413

    async def test_missing_file_field_is_400(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.post(
            IMPORT,
            params={"site_id": tenant.site_id},
            data={"other": "x"},
            headers=tenant.headers,
        )
        assert response.status_code == 400
        assert "file" in response.json()["error"]["message"]

    async def test_large_file_is_imported_in_chunks(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        data = b"keyword,volume\n" + b"".join(b"keyword %d,%d\n" % (i, i) for i in range(5000))
        response = await upload(client, tenant, data)
        assert response.json() == {"created": 5000, "duplicates": 0, "errors": []}
        async with session_factory() as session:
            count = await session.scalar(
                select(func.count()).where(Keyword.site_id == tenant.site_id)
            )
        assert count == 5000


class TestListKeywords:
    async def seed(self, client: httpx.AsyncClient, tenant: Tenant, n: int) -> None:
        body = {"keywords": [{"keyword": f"kw {i:03d}", "volume": i} for i in range(n)]}
        await client.post(
            KEYWORDS, params={"site_id": tenant.site_id}, json=body, headers=tenant.headers
        )

    async def test_pages_through_keywords_in_order(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await self.seed(client, tenant, 7)
        response = await client.get(
            KEYWORDS,
            params={"site_id": tenant.site_id, "limit": 3, "offset": 3},
            headers=tenant.headers,
        )
        body = response.json()
        assert (body["total"], body["limit"], body["offset"]) == (7, 3, 3)
        assert [k["keyword"] for k in body["items"]] == ["kw 003", "kw 004", "kw 005"]

    async def test_offset_past_the_end_is_an_empty_page(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await self.seed(client, tenant, 2)
        response = await client.get(
            KEYWORDS, params={"site_id": tenant.site_id, "offset": 10}, headers=tenant.headers
        )
        assert response.json() == {"items": [], "total": 2, "limit": 50, "offset": 10}

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"limit": 0}, "limit"),
            ({"limit": 501}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"offset": -1}, "offset"),
            ({"status": "archived"}, "status"),
            ({"disabled": "perhaps"}, "disabled"),
        ],
    )
    async def test_bad_list_parameters_are_400_naming_them(
        self, client: httpx.AsyncClient, tenant: Tenant, params: dict[str, str | int], field: str
    ) -> None:
        response = await client.get(
            KEYWORDS, params={"site_id": tenant.site_id, **params}, headers=tenant.headers
        )
        assert response.status_code == 400
        assert field in response.json()["error"]["message"]

    async def test_limit_500_is_allowed(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        response = await client.get(
            KEYWORDS, params={"site_id": tenant.site_id, "limit": 500}, headers=tenant.headers
        )
        assert response.status_code == 200

    async def test_filters_by_disabled_and_search(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await self.seed(client, tenant, 3)
        listing = await client.get(
            KEYWORDS, params={"site_id": tenant.site_id}, headers=tenant.headers
        )
        first = listing.json()["items"][0]["id"]
        await client.patch(f"{KEYWORDS}{first}/", json={"disabled": True}, headers=tenant.headers)
        disabled = await client.get(
            KEYWORDS,
            params={"site_id": tenant.site_id, "disabled": True},
            headers=tenant.headers,
        )
        assert [k["id"] for k in disabled.json()["items"]] == [first]
        found = await client.get(
            KEYWORDS,
            params={"site_id": tenant.site_id, "search": "002"},
            headers=tenant.headers,
        )
        assert [k["keyword"] for k in found.json()["items"]] == ["kw 002"]
        literal = await client.get(
            KEYWORDS,
            params={"site_id": tenant.site_id, "search": "%"},
            headers=tenant.headers,
        )
        assert literal.json()["total"] == 0


class TestDisableKeyword:
    async def test_disable_and_enable_again(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await client.post(
            KEYWORDS,
            params={"site_id": tenant.site_id},
            json={"keywords": [{"keyword": "a"}]},
            headers=tenant.headers,
        )
        keyword_id = (
            await client.get(KEYWORDS, params={"site_id": tenant.site_id}, headers=tenant.headers)
        ).json()["items"][0]["id"]
        off = await client.patch(
            f"{KEYWORDS}{keyword_id}/", json={"disabled": True}, headers=tenant.headers
        )
        assert off.status_code == 200
        assert off.json()["disabled"] is True
        on = await client.patch(
            f"{KEYWORDS}{keyword_id}/", json={"disabled": False}, headers=tenant.headers
        )
        assert on.json()["disabled"] is False

    @pytest.mark.parametrize(
        "body", [{}, {"disabled": "sometimes"}, {"disabled": True, "keyword": "renamed"}]
    )
    async def test_bad_patch_is_400(
        self, client: httpx.AsyncClient, tenant: Tenant, body: dict[str, object]
    ) -> None:
        response = await client.patch(f"{KEYWORDS}1/", json=body, headers=tenant.headers)
        assert response.status_code == 400

    async def test_unknown_keyword_is_404(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        response = await client.patch(
            f"{KEYWORDS}424242/", json={"disabled": True}, headers=tenant.headers
        )
        assert response.status_code == 404
